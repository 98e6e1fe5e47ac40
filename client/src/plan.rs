//! `smidl model plan` (and the table `smidl model register` prints first): the accuracy a
//! model would have under each privacy mode and candidate ε, measured by simulation on the
//! provider's held-out rows, and how many answers the budgets allow. Nothing goes on chain.

use anyhow::{Context as _, Result};
use smidl_dp::plan::{PlanConfig, PlanMode, PlanRow};
use smidl_dp::Accounting as DpAccounting;
use smidl_fhe::dataset::Dataset;
use smidl_fhe::model::train::{train_logistic_regression, LrConfig};
use smidl_fhe::quant::QuantConfig;
use smidl_fhe::ServerModel;

use crate::ui;

/// What to simulate.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// λ and R of the per-query model (trained exactly, noised per answer).
    pub l2_lambda: f64,
    pub clip_norm: f64,
    /// λ and R of the private model (trained with DP).
    pub private_l2_lambda: f64,
    pub private_clip_norm: f64,
    /// Candidate ε values: per query (per-query mode) or of the training (private-model).
    pub epsilons: Vec<f64>,
    /// Noise draws per cell (the spread is over these).
    pub draws: usize,
    /// zCDP with δ = 10^-k, or pure ε.
    pub zcdp_delta_exponent: Option<u8>,
    pub lineage_budget: f64,
    pub account_budget: f64,
}

impl PlanOptions {
    /// The standard candidates {0.5, 1, 2, 4} plus `extra` (the ε about to be registered).
    pub fn candidates(extra: &[f64]) -> Vec<f64> {
        let mut v = vec![0.5, 1.0, 2.0, 4.0];
        for e in extra {
            if !v.iter().any(|x| (x - e).abs() < 1e-9) {
                v.push(*e);
            }
        }
        v.sort_by(f64::total_cmp);
        v
    }
}

/// Runs the simulation (blocking: trains `draws` private models per ε and compiles the
/// per-query model with input proofs, as `smidl model register` deploys it).
pub fn run(dataset: &Dataset, opts: &PlanOptions) -> Result<Vec<PlanRow>> {
    let float = train_logistic_regression(
        dataset,
        &LrConfig {
            l2_lambda: opts.l2_lambda,
            clip_norm: Some(opts.clip_norm),
        },
    )?;
    let deployed =
        ServerModel::compile(&float, dataset, &QuantConfig::default())?.with_input_proofs()?;
    let cfg = PlanConfig {
        epsilons_micro: opts
            .epsilons
            .iter()
            .map(|e| ui::to_micro_up(*e))
            .collect::<Result<_>>()?,
        modes: vec![PlanMode::PerQuery, PlanMode::PrivateModel],
        accounting: match opts.zcdp_delta_exponent {
            None => DpAccounting::PureEpsilon,
            Some(delta_exponent) => DpAccounting::Zcdp { delta_exponent },
        },
        lineage_budget_micro: ui::to_micro_down(opts.lineage_budget)?,
        account_budget_micro: ui::to_micro_down(opts.account_budget)?,
        draws: opts.draws,
        private_l2_lambda: opts.private_l2_lambda,
        private_clip_norm: opts.private_clip_norm,
    };
    smidl_dp::plan(dataset, Some(&deployed), &cfg).context("simulating the privacy plan")
}

/// The table, one line per (mode, ε).
pub fn render(rows: &[PlanRow]) -> String {
    let mut out = String::new();
    let test_rows = rows.first().map_or(0, |r| r.test_rows);
    let draws = rows.first().map_or(0, |r| r.draws);
    out.push_str(&format!(
        "expected accuracy on {test_rows} held-out rows, mean ± sd over {draws} noise draws\n"
    ));
    out.push_str(&format!(
        "{:<14} {:>6} {:>16} {:>22} {:>14}\n",
        "mode", "ε", "accuracy", "answers (all / acct)", "retrains"
    ));
    for r in rows {
        let answers = match (r.answers_allowed, r.answers_per_account) {
            (Some(all), Some(acct)) => format!("{all} / {acct}"),
            _ => "limits only (K)".to_string(),
        };
        let retrains = r
            .generations_allowed
            .map_or_else(|| "-".to_string(), |g| g.to_string());
        let fits = if r.mode == PlanMode::PerQuery && !r.fits_headroom {
            "  (noise does not fit: refused)"
        } else {
            ""
        };
        out.push_str(&format!(
            "{:<14} {:>6} {:>9.3} ± {:.3} {:>22} {:>14}{fits}\n",
            r.mode.name(),
            r.epsilon(),
            r.accuracy_mean,
            r.accuracy_sd,
            answers,
            retrains
        ));
    }
    out.push_str(
        "per-query: ε is per answer and charged on every request; private-model: ε is the \
         training's, charged once per set of weights (\"retrains\": how many the lineage pays for)\n",
    );
    out
}
