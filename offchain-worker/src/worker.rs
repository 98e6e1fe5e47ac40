//! The worker's shared state: settings, the store, the chain connection, the signing key and
//! the decrypted models (in memory only).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use smidl_fhe::{ServerKey, ServerModel};
use subxt::utils::H256;
use subxt_signer::sr25519::Keypair;
use tokio::sync::{watch, Notify};

use crate::chain::{self, ChainError, Client};
use crate::dp::{Mechanism, NoisePlan};
use crate::metrics::Metrics;
use crate::store::{AccountId, Hash, Store, StoreError};
use crate::submitter::Submitter;
use crate::wire::ModelInstall;
use smidl_dp::fit::fitting_plans;
pub use smidl_dp::fit::{check_noise_fits, NoiseDoesNotFit};

/// Operator settings (see `smidl-worker --help`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub rpc_url: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Requests evaluated at once (each FHE evaluation also uses rayon threads).
    pub concurrency: usize,
    /// Blocks to keep an ended epoch's results after its last request settled, so clients
    /// can fetch them, before the controlled deletion.
    pub result_retention_blocks: u32,
    pub max_input_bytes: usize,
    pub max_eval_key_bytes: usize,
    pub max_model_bytes: usize,
    /// Open HTTP connections at most; further ones wait in the listen backlog.
    pub max_connections: usize,
    /// Whether the API is served over TLS (then models may be installed from other hosts).
    pub tls: bool,
    /// How long a graceful shutdown waits for in-flight evaluations and submissions.
    pub drain_timeout: std::time::Duration,
}

impl Settings {
    pub fn new(rpc_url: String, listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            rpc_url,
            listen,
            data_dir,
            concurrency: 2,
            result_retention_blocks: 5,
            max_input_bytes: 8 << 20,
            max_eval_key_bytes: 160 << 20,
            max_model_bytes: 64 << 20,
            max_connections: 256,
            tls: false,
            drain_timeout: std::time::Duration::from_secs(60),
        }
    }
}

/// What the worker keeps (sealed) per model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelRecord {
    pub install: ModelInstall,
    /// The next version the owner staged for an authorised retrain; becomes `install` when
    /// the finalized chain shows the retrain.
    pub staged: Option<ModelInstall>,
}

impl ModelRecord {
    /// The salted commitment of the installed server model (what the chain must show).
    pub fn commitment(&self) -> [u8; 32] {
        crate::commit::weights(&self.install.weights_salt, &self.install.server_model)
    }
}

/// A model ready to evaluate.
pub struct LoadedModel {
    pub model_id: u32,
    pub server: ServerModel,
    pub commitment: [u8; 32],
    /// Output sensitivity per head, in output grid units.
    pub sensitivity: Vec<u64>,
}

impl LoadedModel {
    /// `commitment` is the salted weights commitment the chain holds for `server`.
    pub fn new(model_id: u32, server: ServerModel, commitment: [u8; 32]) -> Self {
        let sensitivity = server.output_sensitivity().grid_units;
        Self {
            model_id,
            commitment,
            server,
            sensitivity,
        }
    }

    /// The noise plan for each output head at per-query ε (micro-ε), refused if its 2^-40
    /// tail does not fit the output headroom. With m heads each gets ε/m (Laplace) or ρ/m
    /// (Gaussian), so the release as a whole costs what the chain charged.
    pub fn fitting_noise_plans(
        &self,
        mechanism: Mechanism,
        epsilon_micro: u64,
    ) -> Result<Vec<NoisePlan>, NoiseDoesNotFit> {
        fitting_plans(
            &self.sensitivity,
            self.server.max_offset(),
            mechanism,
            epsilon_micro,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("model {0} is not installed on this worker")]
    ModelNotInstalled(u32),
    #[error("stored model {0} is unreadable: {1}")]
    BadModel(u32, String),
    #[error("FHE engine: {0}")]
    Fhe(#[from] smidl_fhe::FheError),
    #[error("background task failed: {0}")]
    Join(String),
    #[error("model {0}: the loaded weights are not the ones the chain commits to; not answering")]
    StaleModel(u32),
    #[error("request {0} on chain no longer matches the evaluated job (re-org); not submitting")]
    StaleJob(u64),
}

/// Prepared evaluation keys kept in memory (each is tens of MB for networks).
const KEY_CACHE: usize = 8;

/// A prepared server key is cached per (client account, model, evaluation key commitment).
type KeyCacheId = (AccountId, u32, Hash);

pub struct Worker {
    pub settings: Settings,
    pub store: Arc<Store>,
    /// The node connection; replaced by [`Worker::reconnect`] after an outage.
    client: RwLock<Client>,
    pub signer: Keypair,
    pub account: AccountId,
    pub metrics: Metrics,
    models: RwLock<HashMap<u32, Arc<LoadedModel>>>,
    keys: Mutex<Vec<(KeyCacheId, Arc<ServerKey>)>>,
    /// Latest best and finalized blocks seen by the follower.
    pub best: watch::Sender<Option<(u64, H256)>>,
    pub finalized: watch::Sender<Option<(u64, H256)>>,
    /// Wakes the executor when jobs were queued.
    pub wake: Notify,
    /// Signs and sends the worker's extrinsics with a locally kept nonce.
    pub submitter: Submitter,
    /// Requests with a retry pending after a failure: when they may next be tried.
    pub retry_at: Mutex<HashMap<u64, std::time::Instant>>,
    /// Whether the follower currently holds live block subscriptions.
    connected: std::sync::atomic::AtomicBool,
    /// Input proofs verified at once by the API (each ≈ 165 ms of a core).
    pub verify_slots: tokio::sync::Semaphore,
    /// Inputs accepted per (model, epoch, account), for the chain-tied quota.
    uploads: Mutex<HashMap<(u32, u32, AccountId), u64>>,
    /// First finalized block at which an ended epoch was ready for deletion (retention).
    pub limit_seen: Mutex<HashMap<(u32, u32), u32>>,
}

impl Worker {
    pub fn new(settings: Settings, store: Store, client: Client, signer: Keypair) -> Self {
        let account = chain::account_of(&signer).0;
        Self {
            verify_slots: tokio::sync::Semaphore::new(settings.concurrency.max(1)),
            settings,
            store: Arc::new(store),
            client: RwLock::new(client),
            signer,
            account,
            metrics: Metrics::default(),
            models: RwLock::new(HashMap::new()),
            keys: Mutex::new(Vec::new()),
            best: watch::channel(None).0,
            finalized: watch::channel(None).0,
            wake: Notify::new(),
            submitter: Submitter::default(),
            retry_at: Mutex::new(HashMap::new()),
            connected: std::sync::atomic::AtomicBool::new(false),
            uploads: Mutex::new(HashMap::new()),
            limit_seen: Mutex::new(HashMap::new()),
        }
    }

    /// The current node connection (cheap to clone).
    pub fn client(&self) -> Client {
        match self.client.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Connects to the node again, with exponential backoff (1 s doubling to 30 s) for as
    /// long as it takes: a node restart is survived without restarting the worker.
    pub async fn reconnect(&self) {
        let mut delay = std::time::Duration::from_secs(1);
        loop {
            match chain::connect(&self.settings.rpc_url).await {
                Ok(c) => {
                    match self.client.write() {
                        Ok(mut slot) => *slot = c,
                        Err(poisoned) => *poisoned.into_inner() = c,
                    }
                    self.metrics.reconnects.inc();
                    tracing::info!("reconnected to the node at {}", self.settings.rpc_url);
                    return;
                }
                Err(e) => {
                    tracing::warn!("node unreachable, retrying in {} s: {e}", delay.as_secs());
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(std::time::Duration::from_secs(30));
                }
            }
        }
    }

    /// Inputs `who` uploaded for the model's `epoch` since this process started.
    pub fn uploads(&self, model_id: u32, epoch: u32, who: AccountId) -> u64 {
        self.uploads
            .lock()
            .map(|u| u.get(&(model_id, epoch, who)).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Counts an accepted upload; forgets the model's older epochs.
    pub fn count_upload(&self, model_id: u32, epoch: u32, who: AccountId) {
        if let Ok(mut u) = self.uploads.lock() {
            u.retain(|(m, e, _), _| *m != model_id || *e >= epoch);
            *u.entry((model_id, epoch, who)).or_insert(0) += 1;
        }
    }

    /// Whether the worker follows the chain right now (for `/health`).
    pub fn connected(&self) -> bool {
        self.connected.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub fn set_connected(&self, up: bool) {
        self.connected
            .store(up, std::sync::atomic::Ordering::Relaxed);
    }

    /// Makes the installed model the one the chain commits to, if this worker holds it: a
    /// staged next version whose retrain the follower did not see (it was down) is promoted.
    /// Returns whether the installed model now matches `chain_commitment`.
    pub fn adopt_committed(
        &self,
        model_id: u32,
        chain_commitment: &[u8; 32],
    ) -> Result<bool, WorkerError> {
        self.forget_model(model_id);
        let Some(mut record) = self.record(model_id)? else {
            return Ok(false);
        };
        if record.commitment() == *chain_commitment {
            return Ok(true);
        }
        let staged = record.staged.take().filter(|s| {
            crate::commit::weights(&s.weights_salt, &s.server_model) == *chain_commitment
        });
        let Some(next) = staged else {
            return Ok(false);
        };
        record.install = next;
        self.put_record(model_id, &record)?;
        tracing::info!(
            model = model_id,
            "switched to the staged model the chain now commits to"
        );
        Ok(true)
    }

    /// Signs `call`, sends it and waits until it is in a best block (many may wait at once).
    pub async fn submit<C: subxt::transactions::Payload>(
        &self,
        call: &C,
    ) -> Result<chain::Included, ChainError> {
        self.submitter
            .submit(&self.client(), &self.signer, call)
            .await
    }

    /// The worker's chain account as SS58.
    pub fn account_ss58(&self) -> String {
        chain::account_of(&self.signer).to_string()
    }

    pub fn record(&self, model_id: u32) -> Result<Option<ModelRecord>, WorkerError> {
        let Some(bytes) = self.store.model(model_id)? else {
            return Ok(None);
        };
        bincode::deserialize(&bytes)
            .map(Some)
            .map_err(|e| WorkerError::BadModel(model_id, e.to_string()))
    }

    pub fn put_record(&self, model_id: u32, record: &ModelRecord) -> Result<(), WorkerError> {
        let bytes = zeroize::Zeroizing::new(
            bincode::serialize(record)
                .map_err(|e| WorkerError::BadModel(model_id, e.to_string()))?,
        );
        self.store.put_model(model_id, &bytes)?;
        self.models.write().map(|mut m| m.remove(&model_id)).ok();
        Ok(())
    }

    /// The decrypted model (cached in memory after the first load).
    pub fn model(&self, model_id: u32) -> Result<Arc<LoadedModel>, WorkerError> {
        if let Some(m) = self
            .models
            .read()
            .ok()
            .and_then(|m| m.get(&model_id).cloned())
        {
            return Ok(m);
        }
        let record = self
            .record(model_id)?
            .ok_or(WorkerError::ModelNotInstalled(model_id))?;
        let server = ServerModel::from_canonical_bytes(&record.install.server_model)?;
        let loaded = Arc::new(LoadedModel::new(model_id, server, record.commitment()));
        if let Ok(mut m) = self.models.write() {
            m.insert(model_id, loaded.clone());
        }
        Ok(loaded)
    }

    /// Drops the cached model, so the next use reloads it from the store.
    pub fn forget_model(&self, model_id: u32) {
        self.models.write().map(|mut m| m.remove(&model_id)).ok();
    }

    pub fn installed_models(&self) -> Result<Vec<u32>, WorkerError> {
        Ok(self.store.model_ids()?)
    }

    /// A client's prepared evaluation key, from the cache or prepared from the store.
    pub fn server_key(
        &self,
        model: &LoadedModel,
        account: &AccountId,
        commitment: &Hash,
        bytes: &[u8],
    ) -> Result<Arc<ServerKey>, WorkerError> {
        let id = (*account, model.model_id, *commitment);
        if let Some(k) = self
            .keys
            .lock()
            .ok()
            .and_then(|k| k.iter().find(|(i, _)| *i == id).map(|(_, k)| k.clone()))
        {
            return Ok(k);
        }
        let ek = smidl_fhe::EvaluationKey::from_bytes(bytes, model.server.client_spec())?;
        let key = Arc::new(model.server.prepare_key(&ek)?);
        if let Ok(mut k) = self.keys.lock() {
            if k.len() >= KEY_CACHE {
                k.remove(0);
            }
            k.push((id, key.clone()));
        }
        Ok(key)
    }

    /// Forget prepared keys of a model (after its epoch's controlled deletion).
    pub fn forget_keys(&self, model_id: u32) {
        if let Ok(mut k) = self.keys.lock() {
            k.retain(|((_, m, _), _)| *m != model_id);
        }
    }

    /// A client view at the latest best block the follower saw (the node's best before that).
    pub async fn at_best(&self) -> Result<chain::AtBlock, ChainError> {
        let best = *self.best.borrow();
        let client = self.client();
        match best {
            Some((_, hash)) => client.block(hash).await,
            // Not followed yet (just started, or reconnecting): ask the node.
            None => client.best().await,
        }
    }

    pub fn best_number(&self) -> u64 {
        self.best.borrow().map(|(n, _)| n).unwrap_or(0)
    }

    pub fn finalized_number(&self) -> u64 {
        self.finalized.borrow().map(|(n, _)| n).unwrap_or(0)
    }
}
