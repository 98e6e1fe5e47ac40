//! Exact differential-privacy noise: the worker's per-query noise on encrypted model outputs
//! (moved here from `smidl-worker`'s `dp` module, which re-exports it) and the noise of the
//! private training in [`crate::train`].
//!
//! The worker adds one integer per output, on the model's output grid, to the encrypted result
//! (`ServerModel::add_offset`). The integers are drawn *exactly* from the discrete Laplace
//! (pure ε-DP) or discrete Gaussian (ρ-zCDP) distribution with OpenDP's samplers (Canonne,
//! Kamath, Steinke 2020), which use only rational arithmetic and OpenSSL's `RAND_priv_bytes`
//! CSPRNG: no floating point touches the noise, so none of the float-Laplace attacks (Mironov
//! 2012) apply.
//!
//! Calibration, with Δ the output sensitivity in grid units and ε the per-query epsilon the
//! chain charges:
//! * discrete Laplace, scale t = Δ/ε: ε-DP for integer queries of L1 sensitivity Δ;
//! * discrete Gaussian, σ = Δ/ε: ρ = Δ²/(2σ²) = ε²/2 zCDP for L2 sensitivity Δ, exactly what
//!   the pallet charges per query in zCDP mode.
//!
//! A plan noises outputs independently at one scale, so with several outputs its Δ must cover
//! the whole output vector (L1 for Laplace, L2 for Gaussian), or ε must be split between
//! per-output plans (what `LoadedModel::fitting_noise_plans` does). Models with one output (logistic
//! regression, binary networks) have nothing to add up. See `docs/privacy.md`.

use dashu::integer::{IBig, UBig};
use dashu::rational::RBig;
use opendp::traits::samplers::{
    sample_bernoulli_rational, sample_discrete_gaussian, sample_discrete_laplace,
};

/// Micro-ε per ε: the chain's fixed-point unit.
pub const MICRO: u64 = 1_000_000;

/// Failure probability [`NoisePlan::tail_bound`] is computed for: 2^-40.
pub const TAIL_LOG2: u32 = 40;

/// Micro-ε as a decimal ε ("1.5", "0.000001"), for messages.
pub fn format_micro(micro: u64) -> String {
    let (whole, frac) = (micro / MICRO, micro % MICRO);
    if frac == 0 {
        return whole.to_string();
    }
    let f = format!("{frac:06}");
    format!("{whole}.{}", f.trim_end_matches('0'))
}

/// Randomised response on a class label (networks answer with labels): flip with probability
/// exactly 1/(1 + e^ε). For any two neighbouring training sets the released label's
/// probabilities differ by a factor ≤ e^ε whatever the two models' labels are, so it is ε-DP
/// (and, like every ε-DP mechanism, ε²/2-zCDP: what the chain charges in either mode). Needs no
/// output headroom.
///
/// Exact: loop { with probability ½ keep; else flip with probability e^(−ε) }, which stops
/// with a flip with probability e^(−ε)/(1 + e^(−ε)); Bernoulli(e^(−ε)) is CKS20's exact
/// algorithm on OpenDP's rational Bernoulli sampler (OpenSSL CSPRNG).
pub fn sample_label_flip(epsilon_micro: u64) -> Result<bool, DpError> {
    if epsilon_micro == 0 {
        return Err(DpError::ZeroEpsilon);
    }
    let eps = RBig::from_parts(IBig::from(epsilon_micro), UBig::from(MICRO));
    let half = RBig::from_parts(IBig::from(1u8), UBig::from(2u8));
    loop {
        if bernoulli(half.clone())? {
            return Ok(false);
        }
        if bernoulli_exp_neg(eps.clone())? {
            return Ok(true);
        }
    }
}

fn bernoulli(p: RBig) -> Result<bool, DpError> {
    sample_bernoulli_rational(p).map_err(|e| DpError::LabelSampler(e.to_string()))
}

/// Bernoulli(e^(−x)) for rational x ≥ 0 (Canonne–Kamath–Steinke 2020, Algorithm 1).
fn bernoulli_exp_neg(x: RBig) -> Result<bool, DpError> {
    let one = RBig::from(1u8);
    let mut x = x;
    // e^(−x) = e^(−1)^⌊x⌋ · e^(−(x−⌊x⌋)).
    while x > one {
        if !bernoulli_exp_neg_unit(one.clone())? {
            return Ok(false);
        }
        x -= one.clone();
    }
    bernoulli_exp_neg_unit(x)
}

/// Bernoulli(e^(−x)) for x in [0, 1]: the parity of the first K with Bernoulli(x/K) = 0.
fn bernoulli_exp_neg_unit(x: RBig) -> Result<bool, DpError> {
    let mut k = 1u64;
    loop {
        let p = x.clone() / RBig::from(k);
        if !bernoulli(p)? {
            return Ok(k % 2 == 1);
        }
        k += 1;
    }
}

/// One exact draw: discrete Laplace with scale t (P(k) ∝ e^(−|k|/t)) or discrete Gaussian with
/// σ = `scale` (P(k) ∝ e^(−k²/2σ²)), from OpenDP's CKS20 samplers on OpenSSL's CSPRNG. The
/// scale is an exact rational: whoever calibrates it rounds it *up* (never overstating privacy).
/// What [`NoisePlan::sample`] and the private training (`crate::train`) both draw with.
pub fn sample_exact(mechanism: Mechanism, scale: &RBig) -> Result<i64, DpError> {
    let drawn = match mechanism {
        Mechanism::DiscreteLaplace => sample_discrete_laplace(scale.clone()),
        Mechanism::DiscreteGaussian => sample_discrete_gaussian(scale.clone()),
    }
    .map_err(|e| DpError::Sampler {
        mechanism,
        reason: e.to_string(),
    })?;
    i64::try_from(&drawn).map_err(|_| DpError::OutOfRange {
        mechanism,
        value: drawn.to_string(),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mechanism {
    /// Pure ε-DP (the chain's pure accounting mode).
    DiscreteLaplace,
    /// ρ = ε²/2 zCDP (the chain's zCDP accounting mode).
    DiscreteGaussian,
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Self::DiscreteLaplace => "discrete Laplace",
            Self::DiscreteGaussian => "discrete Gaussian",
        }
    }
}

impl std::fmt::Display for Mechanism {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum DpError {
    #[error("epsilon is zero: a per-query epsilon of 0 micro-epsilon allows no noisy answer")]
    ZeroEpsilon,
    #[error("output sensitivity is zero grid units: it must be at least 1")]
    ZeroSensitivity,
    #[error("{mechanism} sampler failed (no output released): {reason}")]
    Sampler {
        mechanism: Mechanism,
        reason: String,
    },
    #[error("randomised-response sampler failed (no output released): {0}")]
    LabelSampler(String),
    #[error("uniform sampler failed: {0}")]
    UniformSampler(String),
    #[error("{mechanism} noise value {value} does not fit in an i64")]
    OutOfRange { mechanism: Mechanism, value: String },
}

/// What the worker needs to noise one query's outputs; built from the chain's accounting mode
/// and the model's per-query ε.
#[derive(Clone, Debug)]
pub struct NoisePlan {
    pub mechanism: Mechanism,
    /// Laplace scale t or Gaussian σ, in grid units, exactly `sensitivity_grid / ε`.
    pub scale: RBig,
    pub sensitivity_grid: u64,
    pub epsilon_micro: u64,
}

impl NoisePlan {
    /// `sensitivity_grid`: output sensitivity in integer grid units (>= 1). `epsilon_micro`:
    /// ε per query in micro-ε (> 0). The scale is `sensitivity_grid · 10⁶ / epsilon_micro`,
    /// kept as an exact rational: rounding it down would silently spend more than ε.
    pub fn new(
        mechanism: Mechanism,
        sensitivity_grid: u64,
        epsilon_micro: u64,
    ) -> Result<Self, DpError> {
        if sensitivity_grid == 0 {
            return Err(DpError::ZeroSensitivity);
        }
        if epsilon_micro == 0 {
            return Err(DpError::ZeroEpsilon);
        }
        let numerator = IBig::from(sensitivity_grid) * IBig::from(MICRO);
        let scale = RBig::from_parts(numerator, UBig::from(epsilon_micro));
        Ok(Self {
            mechanism,
            scale,
            sensitivity_grid,
            epsilon_micro,
        })
    }

    /// The scale as a float, for display and logs only (never for sampling).
    pub fn scale_f64(&self) -> f64 {
        self.scale.to_f64().value()
    }

    /// Draw one noise value per output, independently.
    pub fn sample(&self, outputs: usize) -> Result<Vec<i64>, DpError> {
        (0..outputs).map(|_| self.sample_one()).collect()
    }

    fn sample_one(&self) -> Result<i64, DpError> {
        sample_exact(self.mechanism, &self.scale)
    }

    /// `B` with P(|noise| > B) <= 2^-40 for one draw.
    ///
    /// * Discrete Laplace, p = e^(-1/t): P(|X| > B) = 2·p^(B+1)/(1+p) < 2·e^(-(B+1)/t), which
    ///   is <= 2^-40 once B + 1 >= 41·ln2·t.
    /// * Discrete Gaussian: its moment generating function is bounded by the continuous
    ///   Gaussian's, E[e^(λX)] <= e^(λ²σ²/2) (CKS20, sub-Gaussianity), so by Chernoff
    ///   P(|X| >= m) <= 2·e^(-m²/(2σ²)), which is <= 2^-40 once m >= σ·sqrt(82·ln2).
    ///
    /// Computed in f64 with a relative margin and rounded up, so float error can only make
    /// the bound larger. Saturates at `u64::MAX`.
    pub fn tail_bound(&self) -> u64 {
        let s = self.scale_f64() * (1.0 + 1e-9);
        let ln2 = std::f64::consts::LN_2;
        let k = f64::from(TAIL_LOG2 + 1) * ln2;
        let b = match self.mechanism {
            Mechanism::DiscreteLaplace => k * s,
            Mechanism::DiscreteGaussian => s * (2.0 * k).sqrt(),
        }
        .ceil();
        if b.is_finite() && b < u64::MAX as f64 {
            b as u64
        } else {
            u64::MAX
        }
    }

    /// Whether draws fit in an output headroom of `max_offset` (the model's
    /// `ServerModel::max_offset()`) except with probability <= 2^-40 per draw.
    pub fn fits_headroom(&self, max_offset: i64) -> bool {
        max_offset >= 0 && self.tail_bound() <= max_offset as u64
    }

    /// The smallest per-query ε (micro-ε, rounded up) at which a plan with this mechanism and
    /// sensitivity fits `max_offset` with tail ≤ 2^-40, or `None` if none does (no headroom, or
    /// the answer would not fit an u64). Noise is never clamped: a plan that does not fit is
    /// refused instead, because truncating a draw before adding it is a different mechanism
    /// (at best (ε, δ) with δ = P(|Z| > M)), not post-processing.
    pub fn min_fitting_epsilon_micro(
        mechanism: Mechanism,
        sensitivity_grid: u64,
        max_offset: i64,
    ) -> Option<u64> {
        if max_offset <= 0 || sensitivity_grid == 0 {
            return None;
        }
        let k = f64::from(TAIL_LOG2 + 1) * std::f64::consts::LN_2;
        let factor = match mechanism {
            Mechanism::DiscreteLaplace => k,
            Mechanism::DiscreteGaussian => (2.0 * k).sqrt(),
        };
        // Closed form first, then walk up: `tail_bound` (rounded up, with its float margin) is
        // the judge, so the answer is the exact smallest micro-ε it accepts.
        let guess = factor * sensitivity_grid as f64 * MICRO as f64 / max_offset as f64;
        if !guess.is_finite() || guess >= u64::MAX as f64 / 2.0 {
            return None;
        }
        let mut eps = (guess.floor() as u64).saturating_sub(2).max(1);
        for _ in 0..64 {
            let plan = Self::new(mechanism, sensitivity_grid, eps).ok()?;
            if plan.fits_headroom(max_offset) {
                return Some(eps);
            }
            eps = eps.checked_add(1)?;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Statistical checks. Each one is a test at level ~1e-5 (about ten per run, so a correct
    // sampler fails a run with probability ~1e-4: at p = 1e-3 per check, 1 run in ~100 failed
    // here). A wrong scale, a bias or a broken tail still shows up as a deviation far beyond
    // these thresholds at these sample sizes: a scale 10% (Laplace) or 5% (Gaussian) off gives
    // χ² values 2–4 times the critical value.

    /// Upper p = 1e-5 quantile of χ²(df), Wilson–Hilferty. It errs on the generous side: the
    /// exact tail mass beyond it is 5e-6 (df = 3) to 9e-6 (df = 60).
    fn chi2_critical(df: usize) -> f64 {
        let k = df as f64;
        let z = 4.264_891; // upper 1e-5 normal quantile
        let a = 2.0 / (9.0 * k);
        k * (1.0 - a + z * a.sqrt()).powi(3)
    }

    /// Exact pmf on −support..=support (the mass beyond is below 1e-30 at the scales used).
    fn pmf(mech: Mechanism, scale: f64, support: i64) -> Vec<(i64, f64)> {
        let raw: Vec<(i64, f64)> = (-support..=support)
            .map(|k| {
                let kf = k as f64;
                let w = match mech {
                    Mechanism::DiscreteLaplace => (-kf.abs() / scale).exp(),
                    Mechanism::DiscreteGaussian => (-kf * kf / (2.0 * scale * scale)).exp(),
                };
                (k, w)
            })
            .collect();
        let total: f64 = raw.iter().map(|(_, w)| w).sum();
        raw.into_iter().map(|(k, w)| (k, w / total)).collect()
    }

    fn moments(p: &[(i64, f64)]) -> (f64, f64) {
        let var: f64 = p.iter().map(|&(k, w)| (k * k) as f64 * w).sum();
        let m4: f64 = p.iter().map(|&(k, w)| ((k * k) as f64).powi(2) * w).sum();
        (var, m4)
    }

    struct Observed {
        chi2: f64,
        df: usize,
        mean: f64,
        var: f64,
        var_expected: f64,
    }

    /// Draw `n` values through the plan and run goodness of fit, mean, variance and symmetry.
    fn check(plan: &NoisePlan, n: usize) -> Observed {
        let scale = plan.scale_f64();
        let support = (60.0 * scale) as i64 + 20;
        let p = pmf(plan.mechanism, scale, support);
        let (var_expected, m4) = moments(&p);
        let xs = plan.sample(n).unwrap();
        let nf = n as f64;

        // Goodness of fit: one bin per value |k| <= K, then one bin per tail, with K the largest
        // value for which every bin expects at least 5 draws.
        let upper_tail = |k: i64| -> f64 { p.iter().filter(|(j, _)| *j > k).map(|(_, w)| w).sum() };
        let kmax = p
            .iter()
            .filter(|&&(k, w)| k >= 0 && w * nf >= 5.0 && upper_tail(k) * nf >= 5.0)
            .map(|&(k, _)| k)
            .max()
            .unwrap();
        let mut observed = vec![0f64; (2 * kmax + 3) as usize];
        let bin = |x: i64| -> usize {
            if x < -kmax {
                0
            } else if x > kmax {
                (2 * kmax + 2) as usize
            } else {
                (x + kmax + 1) as usize
            }
        };
        for &x in &xs {
            observed[bin(x)] += 1.0;
        }
        let mut expected = vec![0f64; observed.len()];
        for &(k, w) in &p {
            expected[bin(k)] += w * nf;
        }
        let chi2: f64 = observed
            .iter()
            .zip(&expected)
            .map(|(o, e)| (o - e) * (o - e) / e)
            .sum();
        let df = observed.len() - 1;
        assert!(
            chi2 < chi2_critical(df),
            "{} scale {scale}: chi2 = {chi2:.1} with {df} df (critical {:.1})",
            plan.mechanism,
            chi2_critical(df)
        );

        // Mean 0 and the analytic variance, within 4.4 standard errors (two-sided p ~ 1e-5
        // each under the CLT; the tails here are exponential, so the CLT is accurate).
        let mean = xs.iter().map(|&x| x as f64).sum::<f64>() / nf;
        let se_mean = (var_expected / nf).sqrt();
        assert!(
            mean.abs() < 4.4 * se_mean,
            "{} scale {scale}: mean {mean:.4} (se {se_mean:.4})",
            plan.mechanism
        );
        let var = xs.iter().map(|&x| (x as f64) * (x as f64)).sum::<f64>() / nf;
        let se_var = ((m4 - var_expected * var_expected) / nf).sqrt();
        assert!(
            (var - var_expected).abs() < 4.4 * se_var,
            "{} scale {scale}: variance {var:.3}, expected {var_expected:.3} (se {se_var:.3})",
            plan.mechanism
        );

        // Symmetry: for each magnitude m the split between +m and −m is Binomial(1/2); sum of
        // (c₊ − c₋)²/(c₊ + c₋) over magnitudes with enough draws is ~χ²(#magnitudes).
        let mut sym = 0.0;
        let mut sym_df = 0;
        for m in 1..=kmax {
            let plus = xs.iter().filter(|&&x| x == m).count() as f64;
            let minus = xs.iter().filter(|&&x| x == -m).count() as f64;
            if plus + minus >= 10.0 {
                sym += (plus - minus) * (plus - minus) / (plus + minus);
                sym_df += 1;
            }
        }
        let far_plus = xs.iter().filter(|&&x| x > kmax).count() as f64;
        let far_minus = xs.iter().filter(|&&x| x < -kmax).count() as f64;
        if far_plus + far_minus >= 10.0 {
            sym += (far_plus - far_minus).powi(2) / (far_plus + far_minus);
            sym_df += 1;
        }
        assert!(sym_df >= 3);
        assert!(
            sym < chi2_critical(sym_df),
            "{} scale {scale}: symmetry chi2 = {sym:.1} with {sym_df} df",
            plan.mechanism
        );

        // No draw beyond the 2^-40 tail bound.
        let tb = plan.tail_bound();
        assert!(xs.iter().all(|x| x.unsigned_abs() <= tb));

        Observed {
            chi2,
            df,
            mean,
            var,
            var_expected,
        }
    }

    fn report(name: &str, o: &Observed) {
        eprintln!(
            "{name}: chi2 {:.1}/{} df, mean {:+.4}, variance {:.3} (exact {:.3})",
            o.chi2, o.df, o.mean, o.var, o.var_expected
        );
    }

    const N: usize = 20_000;

    #[test]
    fn discrete_laplace_t2_matches_its_pmf() {
        // scale = 2 · 10⁶ / 10⁶ = 2.
        let plan = NoisePlan::new(Mechanism::DiscreteLaplace, 2, MICRO).unwrap();
        let o = check(&plan, N);
        // Analytic variance of the discrete Laplace: 2p/(1−p)², p = e^(−1/t).
        let p = (-0.5f64).exp();
        assert!((o.var_expected - 2.0 * p / (1.0 - p).powi(2)).abs() < 1e-9);
        report("laplace t=2", &o);
    }

    #[test]
    fn discrete_laplace_t5_matches_its_pmf() {
        // ε = 0.4 with Δ = 2: t = 5.
        let plan = NoisePlan::new(Mechanism::DiscreteLaplace, 2, 400_000).unwrap();
        assert_eq!(plan.scale, RBig::from(5u8));
        let o = check(&plan, N);
        let p = (-0.2f64).exp();
        assert!((o.var_expected - 2.0 * p / (1.0 - p).powi(2)).abs() < 1e-8);
        report("laplace t=5", &o);
    }

    #[test]
    fn discrete_laplace_non_integer_scale() {
        // t = 7/3 exercises the rational path of the sampler.
        let plan = NoisePlan::new(Mechanism::DiscreteLaplace, 7, 3 * MICRO).unwrap();
        let o = check(&plan, N / 2);
        report("laplace t=7/3", &o);
    }

    #[test]
    fn discrete_gaussian_sigma2_matches_its_pmf() {
        let plan = NoisePlan::new(Mechanism::DiscreteGaussian, 2, MICRO).unwrap();
        let o = check(&plan, N);
        // Var ≤ σ² for the discrete Gaussian (CKS20); at σ = 2 the gap is ~e^(−2π²σ²).
        assert!(o.var_expected <= 4.0 + 1e-12 && o.var_expected > 4.0 - 1e-6);
        report("gaussian sigma=2", &o);
    }

    #[test]
    fn discrete_gaussian_sigma5_matches_its_pmf() {
        let plan = NoisePlan::new(Mechanism::DiscreteGaussian, 5, MICRO).unwrap();
        let o = check(&plan, N);
        assert!(o.var_expected <= 25.0 + 1e-12 && o.var_expected > 25.0 - 1e-6);
        report("gaussian sigma=5", &o);
    }

    #[test]
    fn discrete_gaussian_small_sigma_variance_is_below_sigma_squared() {
        // At σ = 1/2 the lattice matters: the exact variance is well below σ² (0.25).
        let p = pmf(Mechanism::DiscreteGaussian, 0.5, 20);
        let (var, _) = moments(&p);
        assert!(var < 0.25 && var > 0.1, "{var}");
        let plan = NoisePlan::new(Mechanism::DiscreteGaussian, 1, 2 * MICRO).unwrap();
        assert_eq!(plan.scale, RBig::from_parts(IBig::ONE, UBig::from(2u8)));
        let xs = plan.sample(N / 2).unwrap();
        let nf = xs.len() as f64;
        let v = xs.iter().map(|&x| (x * x) as f64).sum::<f64>() / nf;
        let (_, m4) = moments(&p);
        assert!(
            (v - var).abs() < 4.4 * ((m4 - var * var) / nf).sqrt(),
            "{v} vs {var}"
        );
    }

    #[test]
    fn plan_scale_is_exact() {
        let p = NoisePlan::new(Mechanism::DiscreteLaplace, 3, 1_500_000).unwrap();
        assert_eq!(p.scale, RBig::from(2u8));
        assert_eq!(p.sensitivity_grid, 3);
        assert_eq!(p.epsilon_micro, 1_500_000);
        // 1 / 0.3 = 10/3: not representable in binary, kept exact.
        let p = NoisePlan::new(Mechanism::DiscreteGaussian, 1, 300_000).unwrap();
        assert_eq!(p.scale, RBig::from_parts(IBig::from(10u8), UBig::from(3u8)));
        assert!((p.scale_f64() - 10.0 / 3.0).abs() < 1e-12);
        // Extremes do not overflow: the rational is unbounded.
        let p = NoisePlan::new(Mechanism::DiscreteLaplace, u64::MAX, 1).unwrap();
        assert_eq!(
            p.scale,
            RBig::from(IBig::from(u64::MAX) * IBig::from(MICRO))
        );
        assert_eq!(p.tail_bound(), u64::MAX);
    }

    #[test]
    fn zero_epsilon_or_sensitivity_is_an_error() {
        assert!(matches!(
            NoisePlan::new(Mechanism::DiscreteLaplace, 1, 0),
            Err(DpError::ZeroEpsilon)
        ));
        assert!(matches!(
            NoisePlan::new(Mechanism::DiscreteGaussian, 0, MICRO),
            Err(DpError::ZeroSensitivity)
        ));
        let msg = DpError::ZeroEpsilon.to_string();
        assert!(msg.contains("epsilon"), "{msg}");
    }

    #[test]
    fn tail_bounds_meet_two_to_minus_forty() {
        let ln_target = -f64::from(TAIL_LOG2) * std::f64::consts::LN_2;
        for (sens, eps) in [(1, MICRO), (2, MICRO), (7, 3 * MICRO), (20_000, 250_000)] {
            let l = NoisePlan::new(Mechanism::DiscreteLaplace, sens, eps).unwrap();
            let t = l.scale_f64();
            let b = l.tail_bound() as f64;
            // Exact discrete Laplace tail: P(|X| > B) = 2p^(B+1)/(1+p).
            let ln_tail = (2.0f64).ln() + (b + 1.0) * (-1.0 / t) - (1.0 + (-1.0 / t).exp()).ln();
            assert!(ln_tail <= ln_target, "laplace t={t}: tail e^{ln_tail}");
            // ... and not wastefully loose: within 2 units of the exact threshold 41·ln2·t − 1.
            assert!(b <= 41.0 * std::f64::consts::LN_2 * t + 2.0);

            let g = NoisePlan::new(Mechanism::DiscreteGaussian, sens, eps).unwrap();
            let s = g.scale_f64();
            let b = g.tail_bound() as f64;
            let ln_tail = (2.0f64).ln() - (b + 1.0) * (b + 1.0) / (2.0 * s * s);
            assert!(ln_tail <= ln_target, "gaussian sigma={s}: tail e^{ln_tail}");
        }
        // Numerically, the Gaussian bound also holds against the exact pmf at σ = 2.
        let g = NoisePlan::new(Mechanism::DiscreteGaussian, 2, MICRO).unwrap();
        let b = g.tail_bound() as i64;
        let tail: f64 = pmf(Mechanism::DiscreteGaussian, 2.0, 200)
            .iter()
            .filter(|(k, _)| k.abs() > b)
            .map(|(_, w)| w)
            .sum();
        assert!(tail < 2f64.powi(-40), "{tail}");
        assert!(g.fits_headroom(b));
        assert!(!g.fits_headroom(b - 1));
        assert!(!g.fits_headroom(-1));
    }

    #[test]
    fn label_flip_rate_is_one_over_one_plus_e_to_the_epsilon() {
        // ε = 1: p = 0.26894; ε = 0.3: p = 0.42556; ε = 2.5: p = 0.07586. 4,000 draws each;
        // a 5-σ band (σ ≤ 0.0079) catches a wrong formula (e.g. e^(−ε) alone: 0.368).
        for (eps, p) in [
            (MICRO, 0.268_941),
            (300_000, 0.425_557),
            (2_500_000, 0.075_858),
        ] {
            let n = 4000;
            let flips = (0..n).filter(|_| sample_label_flip(eps).unwrap()).count();
            let rate = flips as f64 / n as f64;
            let sd = (p * (1.0 - p) / n as f64).sqrt();
            assert!((rate - p).abs() < 5.0 * sd, "ε={eps}: {rate} vs {p}");
        }
        assert!(matches!(sample_label_flip(0), Err(DpError::ZeroEpsilon)));
    }

    #[test]
    fn smallest_fitting_epsilon_is_exact() {
        for mech in [Mechanism::DiscreteLaplace, Mechanism::DiscreteGaussian] {
            for (sens, headroom) in [(1u64, 100i64), (372, 20), (50_603, 133_935_000), (7, 7)] {
                let e = NoisePlan::min_fitting_epsilon_micro(mech, sens, headroom).unwrap();
                let fits = NoisePlan::new(mech, sens, e).unwrap();
                assert!(
                    fits.fits_headroom(headroom),
                    "{mech} {sens} {headroom}: {e}"
                );
                if e > 1 {
                    let below = NoisePlan::new(mech, sens, e - 1).unwrap();
                    assert!(
                        !below.fits_headroom(headroom),
                        "{mech} {sens}: {e} not minimal"
                    );
                }
            }
            assert_eq!(NoisePlan::min_fitting_epsilon_micro(mech, 5, 0), None);
            assert_eq!(NoisePlan::min_fitting_epsilon_micro(mech, 5, -3), None);
        }
        // The wave-1 demo MLP: Δ = 2·186 grid units, headroom ±20. At ε = 1 the Laplace tail
        // bound is 10 571 units, so clamping to ±20 changed almost every draw; now refused.
        let e = NoisePlan::min_fitting_epsilon_micro(Mechanism::DiscreteLaplace, 372, 20).unwrap();
        assert!(e > 500 * MICRO, "{e}");
    }

    #[test]
    fn sample_shapes() {
        let plan = NoisePlan::new(Mechanism::DiscreteGaussian, 3, MICRO).unwrap();
        assert!(plan.sample(0).unwrap().is_empty());
        assert_eq!(plan.sample(9).unwrap().len(), 9);
        // Independent draws: at σ = 3 nine equal values have probability < 1e-6.
        let v = plan.sample(9).unwrap();
        assert!(v.iter().any(|&x| x != v[0]));
    }
}
