//! Private-model mode: L2-regularised logistic regression trained with differential privacy by
//! **output perturbation** (Chaudhuri, Monteleoni, Sarwate 2011, Algorithm 1), made exact with
//! the discrete samplers of [`crate::noise`].
//!
//! 1. Train θ = (w, b) with `smidl_fhe::model::train::train_logistic_regression` (λ > 0, clip
//!    norm R; the intercept is regularised). For the exact minimisers on neighbouring data sets
//!    (one row added, removed or replaced; n rows in the larger set)
//!    ‖θ − θ'‖₂ ≤ s = 2·√(R²+1)/(nλ) (`docs/privacy.md`, "Sensitivity / Logistic regression").
//!    The noise is calibrated with the published n, so the guarantee is stated for replace-one
//!    neighbours (n public; `docs/privacy.md`, "Private-model mode").
//!    The optimiser's residual is *checked*, not assumed: the returned θ must have
//!    ‖∇J(θ)‖₂ ≤ τ/2 as computed (≤ τ = [`OPTIMALITY_TOLERANCE`] allowing for float error), and
//!    λ-strong convexity then puts it within τ/λ of the exact minimiser, so the trained
//!    parameters of two neighbours differ by at most s + 2τ/λ.
//! 2. Round θ to the grid g = 2^-[`GRID_LOG2`]: θ_q = round(θ/g) ∈ ℤ^(d+1). Each coordinate's
//!    rounding moves it by at most ½ unit, so per coordinate |θ_q,i − θ'_q,i| ≤ |θ_i − θ'_i|/g + 1,
//!    and, in grid units,
//!    * L2: ‖θ_q − θ'_q‖₂ ≤ (s + 2τ/λ)/g + √(d+1) (triangle inequality);
//!    * L1: ‖θ_q − θ'_q‖₁ ≤ √(d+1)·(s + 2τ/λ)/g + (d+1) (Cauchy–Schwarz on the first part).
//!
//!    Both are rounded up to integers ([`PrivateLrReport::sensitivity_grid`]).
//! 3. Add independent integer noise to every coordinate:
//!    * pure ε: discrete Laplace with scale t = Δ₁/ε (exact rational): ε-DP for an integer
//!      vector of L1 sensitivity Δ₁;
//!    * ρ-zCDP: discrete Gaussian with σ ≥ Δ₂/√(2ρ) (a rational rounded up): Δ₂²/(2σ²) ≤ ρ
//!      (Canonne–Kamath–Steinke 2020, Theorem 14, multivariate).
//! 4. Release θ̂ = (θ_q + noise)·g. Everything after (quantisation, compilation, every answer)
//!    is post-processing of θ̂, provided it uses no other training-data-dependent input (see
//!    [`private_quant_config`] and the normaliser caveat in `docs/privacy.md`).

use dashu::base::SquareRoot;
use dashu::integer::{IBig, UBig};
use dashu::rational::RBig;
use smidl_fhe::dataset::Dataset;
use smidl_fhe::model::train::{train_logistic_regression, LrConfig};
use smidl_fhe::model::{sigmoid, FloatModel};
use smidl_fhe::quant::QuantConfig;
use smidl_fhe::{FheError, ServerModel};

use crate::noise::{sample_exact, DpError, Mechanism, MICRO};

/// The grid θ is rounded to before the noise: g = 2^-24. Fine enough that rounding is invisible
/// in accuracy (at the defaults and ε ≤ 4 the noise scale is 3·10⁴ grid units or more), coarse
/// enough that the integers stay far below 2^53 (exact in f64).
pub const GRID_LOG2: u32 = 24;

/// Largest ‖∇J(θ)‖₂ accepted at the trained θ (J = mean log-loss + λ/2·‖θ‖²). Newton's method
/// in `train_logistic_regression` ends ~1e-9 or below; the bound adds 2τ/λ to the sensitivity.
/// Float error of the check itself (sums of n terms of size ≤ √(R²+1)) is below 1e-12 and is
/// absorbed by checking against τ/2.
pub const OPTIMALITY_TOLERANCE: f64 = 1e-8;

/// Default λ for private training: 3. Chosen by measurement (`smidl-dp-bench --sweep`; the
/// numbers are in `docs/benchmarks.md`, "DP utility"). Output perturbation's noise scales as
/// 1/(nλ), while the weights shrink more slowly than 1/λ until the regulariser dominates; from
/// there on θ ≈ Σ(y_i − ½)·x̃_i/(nλ) and the signal-to-noise ratio no longer depends on λ. At
/// ε = 1 (pure) the test accuracy rises with λ up to λ ≈ 1–3 on both embedded data sets and is
/// flat (within ±0.01) from 3 to 1000; a larger λ only shrinks the scores towards 0 (the
/// client's probabilities towards ½). One value for every data set, fixed in the code: tuning
/// λ on the private rows would itself be a data-dependent release.
pub const DEFAULT_L2_LAMBDA: f64 = 3.0;

/// Default clip norm R of the standardised features: 2. The sensitivity grows as √(R²+1); the
/// signal stops growing once R exceeds the norm of most rows. At ε = 1 (pure) the best R
/// measured is 1.5–2 for breast cancer (30 features) and 2–2.5 for Pima (8); at λ = 3, R = 2 is
/// the best for breast cancer and within 0.002 of the best for Pima (see [`DEFAULT_L2_LAMBDA`]
/// for where the numbers are).
pub const DEFAULT_CLIP_NORM: f64 = 2.0;

/// Float results are rounded up after this relative margin, so float error can only enlarge a
/// bound (as in `smidl_fhe::sensitivity`).
const FLOAT_MARGIN: f64 = 1e-9;

/// Denominator of the Gaussian σ (grid units) after rounding it up: σ = ⌈σ·2^16⌉/2^16.
const SIGMA_DENOMINATOR_LOG2: u32 = 16;

/// The privacy budget the training is calibrated to, in the chain's micro-units.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainingBudget {
    /// Pure ε-DP (discrete Laplace), for the chain's pure accounting.
    PureEpsilon { epsilon_micro: u64 },
    /// ρ-zCDP (discrete Gaussian), for the chain's zCDP accounting; from a declared training ε
    /// use [`crate::rho_micro_for_epsilon`] (what the chain charges).
    Zcdp { rho_micro: u64 },
}

impl TrainingBudget {
    pub fn mechanism(self) -> Mechanism {
        match self {
            Self::PureEpsilon { .. } => Mechanism::DiscreteLaplace,
            Self::Zcdp { .. } => Mechanism::DiscreteGaussian,
        }
    }

    /// The amount, in its unit (micro-ε or micro-ρ).
    pub fn micro(self) -> u64 {
        match self {
            Self::PureEpsilon { epsilon_micro } => epsilon_micro,
            Self::Zcdp { rho_micro } => rho_micro,
        }
    }
}

impl std::fmt::Display for TrainingBudget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::PureEpsilon { epsilon_micro } => {
                write!(f, "ε = {}", crate::noise::format_micro(*epsilon_micro))
            }
            Self::Zcdp { rho_micro } => {
                write!(f, "ρ = {}", crate::noise::format_micro(*rho_micro))
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
pub struct PrivateLrConfig {
    /// λ > 0 in mean(log-loss) + λ/2·‖θ‖² (intercept included).
    pub l2_lambda: f64,
    /// R: the standardised features are clipped to this L2 norm. Required.
    pub clip_norm: Option<f64>,
    pub budget: TrainingBudget,
}

impl PrivateLrConfig {
    /// The defaults ([`DEFAULT_L2_LAMBDA`], [`DEFAULT_CLIP_NORM`]) at `budget`.
    pub fn with_defaults(budget: TrainingBudget) -> Self {
        Self {
            l2_lambda: DEFAULT_L2_LAMBDA,
            clip_norm: Some(DEFAULT_CLIP_NORM),
            budget,
        }
    }
}

/// How the noise was calibrated. Every field is a function of the public configuration
/// (λ, R, budget) and of n and d only: nothing here depends on the training rows' values.
#[derive(Clone, Debug, PartialEq)]
pub struct PrivateLrReport {
    pub mechanism: Mechanism,
    pub budget: TrainingBudget,
    /// n, the training rows (public, see `docs/privacy.md`).
    pub train_rows: usize,
    /// d + 1: weights and intercept, each noised.
    pub coordinates: usize,
    pub l2_lambda: f64,
    pub clip_norm: f64,
    /// s = 2·√(R²+1)/(nλ): L2 sensitivity of the exact minimiser, in θ units.
    pub sensitivity_l2: f64,
    /// 2τ/λ: what the optimiser's residual can add between two neighbours, in θ units.
    pub optimisation_slack: f64,
    /// log2 of 1/g (θ is rounded to multiples of g = 2^-grid_log2).
    pub grid_log2: u32,
    /// Δ₂ = ⌈(s + 2τ/λ)/g⌉ + ⌈√(d+1)⌉: L2 sensitivity of θ_q in grid units.
    pub sensitivity_l2_grid: u64,
    /// Δ₁ = ⌈√(d+1)·(s + 2τ/λ)/g⌉ + (d+1): L1 sensitivity of θ_q in grid units.
    pub sensitivity_l1_grid: u64,
    /// The sensitivity the noise is calibrated to: Δ₁ (Laplace) or Δ₂ (Gaussian).
    pub sensitivity_grid: u64,
    /// Laplace scale t = Δ₁/ε or Gaussian σ ≥ Δ₂/√(2ρ), grid units, exact (rounded up).
    pub noise_scale: RBig,
}

impl PrivateLrReport {
    /// The noise scale in grid units, as a float (display only).
    pub fn noise_scale_f64(&self) -> f64 {
        self.noise_scale.to_f64().value()
    }

    /// The noise scale per coordinate in θ units (display only).
    pub fn noise_scale_theta(&self) -> f64 {
        self.noise_scale_f64() / grid_units_per_theta(self.grid_log2)
    }
}

/// A privately trained model: `model` is θ̂ (noisy weights and intercept) with the training
/// normaliser, clip norm, n and λ; `report` says how the noise was calibrated.
#[derive(Clone, Debug)]
pub struct PrivateLr {
    pub model: FloatModel,
    pub report: PrivateLrReport,
}

#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    #[error(
        "private training needs a clip norm R: without one the loss is not Lipschitz and no \
         sensitivity bound exists"
    )]
    MissingClipNorm,
    #[error("clip norm {0} must be finite and > 0")]
    BadClipNorm(f64),
    #[error(
        "l2_lambda {0} must be finite and > 0: the sensitivity 2·√(R²+1)/(nλ) needs a strongly \
         convex objective"
    )]
    BadLambda(f64),
    #[error("the training budget is zero ({0}): a private model needs ε > 0 (or ρ > 0)")]
    ZeroBudget(TrainingBudget),
    #[error("the data set has no training rows")]
    NoRows,
    #[error(
        "the optimiser did not reach ‖∇J‖ ≤ {tolerance:e} (got {gradient_norm:e}); nothing was \
         released"
    )]
    NotConverged { gradient_norm: f64, tolerance: f64 },
    #[error("a parameter of {0:e} does not fit the integer grid")]
    OutOfRange(f64),
    #[error("the sensitivity bound is not a finite number below 2^62 grid units")]
    SensitivityOutOfRange,
    #[error(transparent)]
    Fhe(#[from] FheError),
    #[error(transparent)]
    Dp(#[from] DpError),
}

/// The quantiser configuration for a private model: data-independent. The input range is R
/// standard deviations (every coordinate of a clipped standardised row is within ±R), 8-bit
/// inputs and weights, and no search: `smidl_fhe::quant::quantise` then makes no choice based
/// on training accuracy. The weight unit max|ŵ|/127 and the output scale are computed from the
/// noisy weights, so they are post-processing. (The default `QuantConfig` searches the input
/// range by training accuracy, a data-dependent choice that must not be used here.)
pub fn private_quant_config(clip_norm: f64) -> QuantConfig {
    QuantConfig {
        input_bits: Some(8),
        weight_bits: Some(8),
        input_range: Some(clip_norm),
        no_prune: true,
    }
}

/// Compile a private model as the CLI deploys it: quantised with [`private_quant_config`], then
/// with input proofs (seconds: the CRS is generated here). `ds` is used for the feature count
/// only (the quantiser's one candidate is scored on the train rows, and the score is not used).
pub fn compile_private_lr(private: &PrivateLr, ds: &Dataset) -> Result<ServerModel, TrainError> {
    let server = compile_private_lr_unproven(private, ds)?;
    Ok(server.with_input_proofs()?)
}

/// [`compile_private_lr`] without the input proofs (for simulations: the clear outputs are the
/// same; a worker refuses to answer with it).
pub fn compile_private_lr_unproven(
    private: &PrivateLr,
    ds: &Dataset,
) -> Result<ServerModel, TrainError> {
    Ok(ServerModel::compile(
        &private.model,
        ds,
        &private_quant_config(private.report.clip_norm),
    )?)
}

/// Train logistic regression on `ds.train_*` with DP at `cfg.budget` (output perturbation, see
/// the module documentation). Each call draws fresh noise from OpenSSL's CSPRNG.
pub fn train_private_lr(ds: &Dataset, cfg: &PrivateLrConfig) -> Result<PrivateLr, TrainError> {
    let report = calibrate(
        ds.train_x.len(),
        ds.feature_count(),
        cfg.l2_lambda,
        cfg.clip_norm,
        cfg.budget,
    )?;
    let r = report.clip_norm;
    let model = train_logistic_regression(
        ds,
        &LrConfig {
            l2_lambda: cfg.l2_lambda,
            clip_norm: Some(r),
        },
    )?;
    let gradient_norm = objective_gradient_norm(&model, ds, cfg.l2_lambda);
    if !(gradient_norm.is_finite() && gradient_norm <= OPTIMALITY_TOLERANCE / 2.0) {
        // A data-dependent refusal: it does not happen on well-posed data (Newton converges
        // quadratically on this strongly convex objective), and releases nothing else.
        return Err(TrainError::NotConverged {
            gradient_norm,
            tolerance: OPTIMALITY_TOLERANCE / 2.0,
        });
    }
    let theta_q = round_to_grid(&model, report.grid_log2)?;
    let noise = draw_noise(&report)?;
    let per_unit = grid_units_per_theta(report.grid_log2);
    let noisy: Vec<f64> = theta_q
        .iter()
        .zip(&noise)
        .map(|(&t, &e)| {
            t.checked_add(e)
                .map(|v| v as f64 / per_unit)
                .ok_or(TrainError::OutOfRange(t as f64 / per_unit))
        })
        .collect::<Result<_, _>>()?;
    let f = ds.feature_count();
    let mut model = model;
    model.layers[0].weights[0] = noisy[..f].to_vec();
    model.layers[0].bias[0] = noisy[f];
    model.validate()?;
    Ok(PrivateLr { model, report })
}

/// The calibration for n rows and d features: checks the configuration and computes the
/// sensitivities and the noise scale (no data involved).
pub fn calibrate(
    train_rows: usize,
    features: usize,
    l2_lambda: f64,
    clip_norm: Option<f64>,
    budget: TrainingBudget,
) -> Result<PrivateLrReport, TrainError> {
    let r = clip_norm.ok_or(TrainError::MissingClipNorm)?;
    if !(r.is_finite() && r > 0.0) {
        return Err(TrainError::BadClipNorm(r));
    }
    if !(l2_lambda.is_finite() && l2_lambda > 0.0) {
        return Err(TrainError::BadLambda(l2_lambda));
    }
    if budget.micro() == 0 {
        return Err(TrainError::ZeroBudget(budget));
    }
    if train_rows == 0 {
        return Err(TrainError::NoRows);
    }
    let n = train_rows as f64;
    let coordinates = features + 1;
    let sensitivity_l2 = 2.0 * (r * r + 1.0).sqrt() / (n * l2_lambda);
    let optimisation_slack = 2.0 * OPTIMALITY_TOLERANCE / l2_lambda;
    let per_unit = grid_units_per_theta(GRID_LOG2);
    let s_grid = (sensitivity_l2 + optimisation_slack) * per_unit;
    let root_coords = (coordinates as f64).sqrt();
    let up = |v: f64| -> Result<u64, TrainError> {
        let c = (v * (1.0 + FLOAT_MARGIN)).ceil();
        if c.is_finite() && c < (1u64 << 62) as f64 {
            Ok(c as u64)
        } else {
            Err(TrainError::SensitivityOutOfRange)
        }
    };
    // ⌈√(d+1)⌉ exactly, from integers.
    let root_ceil = crate::accounting::isqrt_ceil(coordinates as u128) as u64;
    let sensitivity_l2_grid = up(s_grid)?
        .checked_add(root_ceil)
        .ok_or(TrainError::SensitivityOutOfRange)?;
    let sensitivity_l1_grid = up(root_coords * s_grid)?
        .checked_add(coordinates as u64)
        .ok_or(TrainError::SensitivityOutOfRange)?;
    let (sensitivity_grid, noise_scale) = match budget {
        TrainingBudget::PureEpsilon { epsilon_micro } => (
            sensitivity_l1_grid,
            // t = Δ₁/ε = Δ₁·10⁶/ε_micro, exact.
            RBig::from_parts(
                IBig::from(sensitivity_l1_grid) * IBig::from(MICRO),
                UBig::from(epsilon_micro),
            ),
        ),
        TrainingBudget::Zcdp { rho_micro } => (
            sensitivity_l2_grid,
            gaussian_sigma(sensitivity_l2_grid, rho_micro),
        ),
    };
    Ok(PrivateLrReport {
        mechanism: budget.mechanism(),
        budget,
        train_rows,
        coordinates,
        l2_lambda,
        clip_norm: r,
        sensitivity_l2,
        optimisation_slack,
        grid_log2: GRID_LOG2,
        sensitivity_l2_grid,
        sensitivity_l1_grid,
        sensitivity_grid,
        noise_scale,
    })
}

/// σ = N/2^16 with N = ⌈√⌈Δ²·10⁶·2^32/(2ρ_micro)⌉⌉, so σ ≥ Δ/√(2ρ) exactly (ρ = ρ_micro/10⁶):
/// the zCDP of the noised vector, Δ²/(2σ²), is at most ρ.
fn gaussian_sigma(delta: u64, rho_micro: u64) -> RBig {
    let d = UBig::from(delta);
    let numerator = (&d * &d * UBig::from(MICRO)) << (2 * SIGMA_DENOMINATOR_LOG2 as usize);
    let denominator = UBig::from(2u8) * UBig::from(rho_micro);
    let sq = (&numerator + &denominator - UBig::ONE) / &denominator; // ceiling division
    let root = sq.sqrt();
    let root = if &root * &root == sq {
        root
    } else {
        root + UBig::ONE
    };
    RBig::from_parts(
        IBig::from(root),
        UBig::ONE << SIGMA_DENOMINATOR_LOG2 as usize,
    )
}

fn grid_units_per_theta(grid_log2: u32) -> f64 {
    (1u64 << grid_log2) as f64
}

/// θ_q = round(θ·2^G) (weights, then intercept); |rounding error| ≤ ½ grid unit.
fn round_to_grid(model: &FloatModel, grid_log2: u32) -> Result<Vec<i64>, TrainError> {
    let per_unit = grid_units_per_theta(grid_log2);
    let layer = &model.layers[0];
    layer.weights[0]
        .iter()
        .chain(&layer.bias)
        .map(|&t| {
            let v = (t * per_unit).round();
            // Far below i64::MAX, so adding the noise cannot overflow in practice (checked
            // anyway), and exactly representable.
            if v.is_finite() && v.abs() < (1u64 << 53) as f64 {
                Ok(v as i64)
            } else {
                Err(TrainError::OutOfRange(t))
            }
        })
        .collect()
}

/// One noise vector for `report` (d+1 independent exact draws, grid units). The private
/// training adds exactly this to θ_q; exposed for the tests of the noise distribution.
pub fn draw_noise(report: &PrivateLrReport) -> Result<Vec<i64>, DpError> {
    (0..report.coordinates)
        .map(|_| sample_exact(report.mechanism, &report.noise_scale))
        .collect()
}

/// ‖∇J(θ)‖₂ for J(θ) = (1/n)·Σ log-loss(θ; x̃_i, y_i) + λ/2·‖θ‖² at the model's θ, over the
/// train rows preprocessed as in training (standardised with the model's normaliser, clipped).
fn objective_gradient_norm(model: &FloatModel, ds: &Dataset, l2_lambda: f64) -> f64 {
    let layer = &model.layers[0];
    let (w, b) = (&layer.weights[0], layer.bias[0]);
    let n = ds.train_x.len() as f64;
    let mut g = vec![0.0; w.len() + 1];
    for (x, &y) in ds.train_x.iter().zip(&ds.train_y) {
        let z = model.preprocess(x);
        let score: f64 = w.iter().zip(&z).map(|(a, c)| a * c).sum::<f64>() + b;
        let r = sigmoid(score) - f64::from(y);
        for (gi, zi) in g.iter_mut().zip(z.iter().chain([&1.0])) {
            *gi += r * zi / n;
        }
    }
    g.iter()
        .zip(w.iter().chain([&b]))
        .map(|(gi, ti)| {
            let v = gi + l2_lambda * ti;
            v * v
        })
        .sum::<f64>()
        .sqrt()
}

#[cfg(test)]
mod tests;
