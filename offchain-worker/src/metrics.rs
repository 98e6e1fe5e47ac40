//! Prometheus metrics (`GET /metrics`). Labels never carry account ids or commitments.

use prometheus_client::encoding::text::encode;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    pub route: String,
    pub status: u16,
}

pub struct Metrics {
    registry: Registry,
    /// Requests handled, by outcome (completed, rejected reason, …).
    pub jobs: Family<Outcome, Counter>,
    /// FHE evaluation time per request.
    pub eval_seconds: Histogram,
    /// Persisted, unsettled jobs.
    pub backlog: Gauge,
    /// Epoch ends handled (reset / retrain).
    pub epoch_ends: Family<Outcome, Counter>,
    /// API answers by route and status.
    pub api: Family<Route, Counter>,
    pub best_block: Gauge,
    pub finalized_block: Gauge,
    /// Connections to the node re-established after an outage.
    pub reconnects: Counter,
    /// Attempts that failed and will be retried (evaluation or submission).
    pub retries: Counter,
    /// Vault totals (`store::vault::VaultStats`), copied in when `/metrics` is read.
    pub vault_accesses: Gauge,
    pub vault_cache_hits: Gauge,
    pub vault_cache_misses: Gauge,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("smidl_worker");
        let jobs = Family::<Outcome, Counter>::default();
        let eval_seconds = Histogram::new(exponential_buckets(0.0001, 4.0, 10));
        let backlog = Gauge::default();
        let epoch_ends = Family::<Outcome, Counter>::default();
        let api = Family::<Route, Counter>::default();
        let best_block = Gauge::default();
        let finalized_block = Gauge::default();
        let reconnects = Counter::default();
        let retries = Counter::default();
        let vault_accesses = Gauge::default();
        let vault_cache_hits = Gauge::default();
        let vault_cache_misses = Gauge::default();
        registry.register(
            "vault_accesses",
            "ORAM accesses made by the vaults since start (each one tree path on the storage)",
            vault_accesses.clone(),
        );
        registry.register(
            "vault_cache_hits",
            "Vault reads served from memory since start",
            vault_cache_hits.clone(),
        );
        registry.register(
            "vault_cache_misses",
            "Vault reads that went to the ORAM since start",
            vault_cache_misses.clone(),
        );
        registry.register(
            "reconnects",
            "Node connections re-established after an outage",
            reconnects.clone(),
        );
        registry.register(
            "retries",
            "Failed request attempts that will be retried",
            retries.clone(),
        );
        registry.register(
            "jobs",
            "Inference requests handled, by outcome",
            jobs.clone(),
        );
        registry.register(
            "eval_seconds",
            "Homomorphic evaluation time per request",
            eval_seconds.clone(),
        );
        registry.register(
            "backlog",
            "Persisted requests not yet settled",
            backlog.clone(),
        );
        registry.register(
            "epoch_ends",
            "Epoch ends handled, by action",
            epoch_ends.clone(),
        );
        registry.register(
            "api_requests",
            "API requests by route and status",
            api.clone(),
        );
        registry.register("best_block", "Best block seen", best_block.clone());
        registry.register(
            "finalized_block",
            "Finalized block processed",
            finalized_block.clone(),
        );
        Self {
            registry,
            jobs,
            eval_seconds,
            backlog,
            epoch_ends,
            api,
            best_block,
            finalized_block,
            reconnects,
            retries,
            vault_accesses,
            vault_cache_hits,
            vault_cache_misses,
        }
    }
}

impl Metrics {
    pub fn job(&self, outcome: &str) {
        self.jobs
            .get_or_create(&Outcome {
                outcome: outcome.to_string(),
            })
            .inc();
    }

    pub fn set_vault(&self, v: crate::store::vault::VaultStats) {
        let g = |x: u64| i64::try_from(x).unwrap_or(i64::MAX);
        self.vault_accesses.set(g(v.accesses));
        self.vault_cache_hits.set(g(v.cache_hits));
        self.vault_cache_misses.set(g(v.cache_misses));
    }

    pub fn render(&self) -> String {
        let mut s = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut s, &self.registry);
        s
    }
}
