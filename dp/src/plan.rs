//! The accuracy/ε trade-off of the two privacy modes, by simulation on held-out rows, before a
//! model goes live (`smidl model plan`).
//!
//! * **per-query**: the deployed model answers every query exactly and the worker adds noise
//!   from the same [`NoisePlan`] it would use (mechanism of the accounting, Δ = the deployed
//!   model's output sensitivity, ε per query). Each test row is one query with its own draw;
//!   one draw of the whole test split gives one accuracy. Answers are limited by the budgets:
//!   ⌊lineage budget / cost⌋ for all accounts together, ⌊account budget / cost⌋ per account.
//! * **private-model**: train with DP at ε ([`train_private_lr`]), quantise with the
//!   data-independent [`crate::train::private_quant_config`], and answer exactly. One training
//!   is one draw. Answers cost nothing (post-processing): only the per-epoch K and the model's
//!   answer limits bound them. The lineage pays once per generation of weights:
//!   ⌊lineage budget / training cost⌋ generations.
//!
//! In both modes every answer also carries the sanitisation flood of linear models
//! (`smidl_fhe::sanitise`): a uniform offset of at most ±`flood_output_units` output units,
//! simulated by [`flood_draw`]. Both draw from OpenSSL's CSPRNG (OpenDP's samplers); no seeded
//! generator.

use smidl_fhe::client::decode_scores;
use smidl_fhe::dataset::Dataset;
use smidl_fhe::{ClientSpec, ServerModel};

use crate::accounting::Accounting;
use crate::noise::{format_micro, DpError, NoisePlan};
use crate::train::{
    compile_private_lr_unproven, train_private_lr, PrivateLrConfig, TrainError, DEFAULT_CLIP_NORM,
    DEFAULT_L2_LAMBDA,
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PlanMode {
    PerQuery,
    PrivateModel,
}

impl PlanMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::PerQuery => "per-query",
            Self::PrivateModel => "private-model",
        }
    }
}

impl std::fmt::Display for PlanMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Clone, Debug)]
pub struct PlanConfig {
    /// Candidate ε (micro-ε): per query in per-query mode, of the training in private-model
    /// mode (what the chain records as `epsilon_per_query` / `training_epsilon`).
    pub epsilons_micro: Vec<u64>,
    pub modes: Vec<PlanMode>,
    pub accounting: Accounting,
    /// The lineage's declared ε budget (all accounts, all epochs), micro-ε.
    pub lineage_budget_micro: u64,
    /// Each account's declared ε budget, micro-ε.
    pub account_budget_micro: u64,
    /// Draws per (mode, ε): noise draws over the test split, or private trainings.
    pub draws: usize,
    /// λ and R of the private training.
    pub private_l2_lambda: f64,
    pub private_clip_norm: f64,
}

impl PlanConfig {
    /// ε ∈ {0.5, 1, 2, 4}, both modes, pure ε, the demo's budgets (lineage 24, account 8),
    /// 50 draws, the private training's defaults.
    pub fn standard() -> Self {
        Self {
            epsilons_micro: vec![500_000, 1_000_000, 2_000_000, 4_000_000],
            modes: vec![PlanMode::PerQuery, PlanMode::PrivateModel],
            accounting: Accounting::PureEpsilon,
            lineage_budget_micro: 24_000_000,
            account_budget_micro: 8_000_000,
            draws: 50,
            private_l2_lambda: DEFAULT_L2_LAMBDA,
            private_clip_norm: DEFAULT_CLIP_NORM,
        }
    }
}

/// One line of the trade-off table.
#[derive(Clone, Debug, PartialEq)]
pub struct PlanRow {
    pub mode: PlanMode,
    pub epsilon_micro: u64,
    pub accounting: Accounting,
    /// Cost in the accounting unit (micro-ε or micro-ρ): per answer (per-query) or per
    /// training (private-model).
    pub cost_micro: u64,
    /// Test-split accuracy over the draws: mean and sample standard deviation.
    pub accuracy_mean: f64,
    pub accuracy_sd: f64,
    pub draws: usize,
    pub test_rows: usize,
    /// Answers the lineage budget allows, all accounts together; `None`: unlimited by the
    /// budget (private-model: only K per epoch and the model's answer limits apply).
    pub answers_allowed: Option<u64>,
    /// Answers one account's budget allows; `None` as above.
    pub answers_per_account: Option<u64>,
    /// Generations of privately trained weights the lineage budget pays for (private-model);
    /// `None` for per-query (the weights cost nothing, the answers do).
    pub generations_allowed: Option<u64>,
    /// Noise scale (Laplace t or Gaussian σ): per-query in logits (score units), private-model
    /// per parameter in θ units.
    pub noise_scale: f64,
    /// Per-query: whether the worker accepts this ε (2^-40 tail within the headroom; the
    /// noise is never clamped). Always true for private-model (no per-answer noise).
    pub fits_headroom: bool,
}

impl PlanRow {
    /// `answers_allowed` as a table cell: a number or `unlimited`.
    pub fn answers_allowed_cell(&self) -> String {
        self.answers_allowed
            .map_or_else(|| "unlimited".to_string(), |a| a.to_string())
    }

    /// ε as a decimal ("0.5").
    pub fn epsilon(&self) -> String {
        format_micro(self.epsilon_micro)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the plan needs at least 2 draws (got {0}) for a standard deviation")]
    TooFewDraws(usize),
    #[error("zCDP δ exponent {0} is outside 1..=30")]
    BadDelta(u8),
    #[error("ε = 0 is not a candidate: nothing would be answered")]
    ZeroEpsilon,
    #[error("the per-query plan needs a linear model with one output (logistic regression)")]
    NotLogistic,
    #[error("the data set has no test rows")]
    NoTestRows,
    #[error(transparent)]
    Train(#[from] TrainError),
    #[error(transparent)]
    Dp(#[from] DpError),
    #[error(transparent)]
    Fhe(#[from] smidl_fhe::FheError),
}

/// The trade-off table, one row per (mode, ε) in `cfg` order (modes outer). `deployed` is the
/// per-query model as the CLI deploys it (compiled with input proofs, so the sensitivity uses
/// the proven box); it is not needed when `cfg.modes` has no per-query mode, but the feature
/// count must match `ds`.
pub fn plan(
    ds: &Dataset,
    deployed: Option<&ServerModel>,
    cfg: &PlanConfig,
) -> Result<Vec<PlanRow>, PlanError> {
    if cfg.draws < 2 {
        return Err(PlanError::TooFewDraws(cfg.draws));
    }
    if let Accounting::Zcdp { delta_exponent } = cfg.accounting {
        if !cfg.accounting.is_valid() {
            return Err(PlanError::BadDelta(delta_exponent));
        }
    }
    if cfg.epsilons_micro.contains(&0) {
        return Err(PlanError::ZeroEpsilon);
    }
    if ds.test_x.is_empty() {
        return Err(PlanError::NoTestRows);
    }
    let mut rows = vec![];
    for &mode in &cfg.modes {
        for &eps in &cfg.epsilons_micro {
            rows.push(match mode {
                PlanMode::PerQuery => {
                    per_query_row(ds, deployed.ok_or(PlanError::NotLogistic)?, cfg, eps)?
                }
                PlanMode::PrivateModel => private_model_row(ds, cfg, eps)?,
            });
        }
    }
    Ok(rows)
}

/// The worker's noise plan for a logistic-regression model at `epsilon_micro` per query
/// (one output: the whole ε on it, Δ = its output sensitivity).
pub fn per_query_noise_plan(
    deployed: &ServerModel,
    accounting: Accounting,
    epsilon_micro: u64,
) -> Result<NoisePlan, PlanError> {
    let spec = deployed.client_spec();
    if spec.answers_are_labels() || spec.output.count() != 1 {
        return Err(PlanError::NotLogistic);
    }
    let delta = deployed.output_sensitivity().grid_units[0].max(1);
    Ok(NoisePlan::new(
        accounting.mechanism(),
        delta,
        epsilon_micro,
    )?)
}

/// One draw of the sanitisation flood's effect on a decrypted linear output: uniform on
/// [−F, F] output units, F = `flood_output_units(spec)` (the flood is uniform on
/// [−2^48, 2^48) torus units and decryption rounds it to output units).
pub fn flood_draw(spec: &ClientSpec) -> Result<i64, DpError> {
    let f = smidl_fhe::sanitise::flood_output_units(spec);
    if f <= 0 {
        return Ok(0);
    }
    let width = 2 * f as u64 + 1;
    let u = opendp::traits::samplers::sample_uniform_uint_below::<u64, 8>(width)
        .map_err(|e| DpError::UniformSampler(e.to_string()))?;
    Ok(u as i64 - f)
}

/// The class a client decodes from a decrypted output integer.
pub fn decoded_class(spec: &ClientSpec, raw: i64) -> usize {
    decode_scores(spec.output.decode, &[raw as f64 * spec.output.scale[0]]).class
}

fn per_query_row(
    ds: &Dataset,
    deployed: &ServerModel,
    cfg: &PlanConfig,
    eps: u64,
) -> Result<PlanRow, PlanError> {
    let noise = per_query_noise_plan(deployed, cfg.accounting, eps)?;
    let spec = deployed.client_spec();
    // The clear answers are deterministic: evaluate once.
    let clear: Vec<i64> = ds
        .test_x
        .iter()
        .map(|x| Ok(deployed.eval_clear(x)?[0]))
        .collect::<Result<_, smidl_fhe::FheError>>()?;
    let mut accuracies = Vec::with_capacity(cfg.draws);
    for _ in 0..cfg.draws {
        let mut correct = 0usize;
        for (&q, &y) in clear.iter().zip(&ds.test_y) {
            let raw = q + noise.sample(1)?[0] + flood_draw(spec)?;
            correct += usize::from(decoded_class(spec, raw) == y as usize);
        }
        accuracies.push(correct as f64 / clear.len() as f64);
    }
    let (mean, sd) = mean_sd(&accuracies);
    let cost = cfg.accounting.query_cost_micro(eps);
    let lineage = cfg.accounting.budget_micro(cfg.lineage_budget_micro);
    let account = cfg.accounting.budget_micro(cfg.account_budget_micro);
    Ok(PlanRow {
        mode: PlanMode::PerQuery,
        epsilon_micro: eps,
        accounting: cfg.accounting,
        cost_micro: cost,
        accuracy_mean: mean,
        accuracy_sd: sd,
        draws: cfg.draws,
        test_rows: clear.len(),
        answers_allowed: Some(lineage.checked_div(cost).unwrap_or(0)),
        answers_per_account: Some(account.checked_div(cost).unwrap_or(0)),
        generations_allowed: None,
        noise_scale: noise.scale_f64() * spec.output.scale[0],
        fits_headroom: noise.fits_headroom(deployed.max_offset()),
    })
}

fn private_model_row(ds: &Dataset, cfg: &PlanConfig, eps: u64) -> Result<PlanRow, PlanError> {
    let train_cfg = PrivateLrConfig {
        l2_lambda: cfg.private_l2_lambda,
        clip_norm: Some(cfg.private_clip_norm),
        budget: cfg.accounting.training_budget(eps),
    };
    let mut accuracies = Vec::with_capacity(cfg.draws);
    let mut noise_scale = 0.0;
    for _ in 0..cfg.draws {
        let private = train_private_lr(ds, &train_cfg)?;
        noise_scale = private.report.noise_scale_theta();
        let server = compile_private_lr_unproven(&private, ds)?;
        accuracies.push(answered_accuracy(&server, ds)?);
    }
    let (mean, sd) = mean_sd(&accuracies);
    let cost = cfg.accounting.training_cost_micro(eps);
    let lineage = cfg.accounting.budget_micro(cfg.lineage_budget_micro);
    Ok(PlanRow {
        mode: PlanMode::PrivateModel,
        epsilon_micro: eps,
        accounting: cfg.accounting,
        cost_micro: cost,
        accuracy_mean: mean,
        accuracy_sd: sd,
        draws: cfg.draws,
        test_rows: ds.test_x.len(),
        answers_allowed: None,
        answers_per_account: None,
        generations_allowed: Some(lineage.checked_div(cost).unwrap_or(0)),
        noise_scale,
        fits_headroom: true,
    })
}

/// Test-split accuracy of a model answering without DP noise (private-model mode): the clear
/// integer output plus one flood draw per answer, decoded as the client does.
pub fn answered_accuracy(server: &ServerModel, ds: &Dataset) -> Result<f64, PlanError> {
    let spec = server.client_spec();
    let mut correct = 0usize;
    for (x, &y) in ds.test_x.iter().zip(&ds.test_y) {
        let raw = server.eval_clear(x)?[0] + flood_draw(spec)?;
        correct += usize::from(decoded_class(spec, raw) == y as usize);
    }
    Ok(correct as f64 / ds.test_x.len().max(1) as f64)
}

/// Mean and sample standard deviation (n − 1).
pub fn mean_sd(v: &[f64]) -> (f64, f64) {
    let n = v.len() as f64;
    let mean = v.iter().sum::<f64>() / n;
    if v.len() < 2 {
        return (mean, 0.0);
    }
    let var = v.iter().map(|a| (a - mean) * (a - mean)).sum::<f64>() / (n - 1.0);
    (mean, var.sqrt())
}

#[cfg(test)]
mod tests;
