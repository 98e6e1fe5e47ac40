//! Whether a per-query noise plan fits a model's output headroom: refused, never clamped.
//! Used by the CLI before anything goes on chain and by the worker at install and before every
//! answer (see docs/privacy.md, "Headroom: refused, never clamped").

use smidl_fhe::ServerModel;

use crate::noise::{Mechanism, NoisePlan};

/// Why a model's noise plan is refused: at the per-query ε the 2^-40 tail of the noise does
/// not fit the output headroom, and noise is never clamped (see [`NoisePlan`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "{mechanism} noise at ε = {epsilon} per query does not fit the model's output headroom of \
     ±{max_offset} grid units (2^-40 tail bound {tail} units); {}",
    match .min_epsilon_micro {
        Some(e) => format!("the smallest ε that fits is {}", crate::noise::format_micro(*e)),
        None => "no ε fits".to_string(),
    }
)]
pub struct NoiseDoesNotFit {
    pub mechanism: Mechanism,
    pub epsilon: String,
    pub max_offset: i64,
    pub tail: u64,
    /// Smallest per-query micro-ε whose plan fits, if any.
    pub min_epsilon_micro: Option<u64>,
}

/// Refuses a policy whose noise would not fit (the CLI before registering, the worker at
/// install). Networks answer with a randomised-response label and need no headroom.
pub fn check_noise_fits(
    server: &ServerModel,
    mechanism: Mechanism,
    epsilon_micro: u64,
) -> Result<(), NoiseDoesNotFit> {
    if server.client_spec().answers_are_labels() {
        return Ok(());
    }
    let sensitivity = server.output_sensitivity().grid_units;
    fitting_plans(&sensitivity, server.max_offset(), mechanism, epsilon_micro).map(|_| ())
}

pub fn fitting_plans(
    sensitivity: &[u64],
    max_offset: i64,
    mechanism: Mechanism,
    epsilon_micro: u64,
) -> Result<Vec<NoisePlan>, NoiseDoesNotFit> {
    let plans = noise_plans(sensitivity, mechanism, epsilon_micro).ok();
    let worst = plans
        .as_ref()
        .map(|p| p.iter().map(|x| x.tail_bound()).max().unwrap_or(0))
        .unwrap_or(u64::MAX);
    if let Some(plans) = plans {
        if max_offset >= 0 && worst <= max_offset as u64 {
            return Ok(plans);
        }
    }
    // The smallest ε for the whole vector: the largest per-head requirement, times the split.
    let factor = split_factor(sensitivity.len(), mechanism);
    let min = sensitivity
        .iter()
        .map(|&d| {
            NoisePlan::min_fitting_epsilon_micro(
                mechanism,
                d.max(1).saturating_mul(factor),
                max_offset,
            )
        })
        .try_fold(0u64, |acc, e| e.map(|e| acc.max(e)));
    Err(NoiseDoesNotFit {
        mechanism,
        epsilon: crate::noise::format_micro(epsilon_micro),
        max_offset,
        tail: worst,
        min_epsilon_micro: min,
    })
}

/// Per-head plans: with m heads each gets ε/m (Laplace) or ρ/m (Gaussian, σ scaled by ⌈√m⌉).
fn noise_plans(
    sensitivity: &[u64],
    mechanism: Mechanism,
    epsilon_micro: u64,
) -> Result<Vec<NoisePlan>, crate::noise::DpError> {
    let factor = split_factor(sensitivity.len(), mechanism);
    sensitivity
        .iter()
        .map(|&d| NoisePlan::new(mechanism, d.max(1).saturating_mul(factor), epsilon_micro))
        .collect()
}

fn split_factor(heads: usize, mechanism: Mechanism) -> u64 {
    let m = heads.max(1) as u64;
    match mechanism {
        Mechanism::DiscreteLaplace => m,
        Mechanism::DiscreteGaussian => ceil_sqrt(m),
    }
}

fn ceil_sqrt(m: u64) -> u64 {
    let mut r = (m as f64).sqrt() as u64;
    while r * r < m {
        r += 1;
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;
    use smidl_fhe::dataset::breast_cancer;
    use smidl_fhe::model::train::{train_logistic_regression, LrConfig};
    use smidl_fhe::quant::QuantConfig;

    /// Wave 1 clamped noise that did not fit; now such a policy is refused, with the smallest ε
    /// that fits, and that ε is exact to the micro-ε.
    #[test]
    fn a_policy_whose_noise_does_not_fit_is_refused_with_the_smallest_epsilon() {
        let ds = breast_cancer();
        let cfg = LrConfig {
            l2_lambda: 0.1,
            clip_norm: Some(4.0),
        };
        let m = train_logistic_regression(&ds, &cfg).unwrap();
        let server = ServerModel::compile(&m, &ds, &QuantConfig::default()).unwrap();
        // The demo's policy fits.
        for mech in [Mechanism::DiscreteLaplace, Mechanism::DiscreteGaussian] {
            assert!(check_noise_fits(&server, mech, 2_000_000).is_ok());
        }
        // ε = 0.001: the 2^-40 tail is ~1.45e9 units against ~1.34e8 of headroom.
        let err = check_noise_fits(&server, Mechanism::DiscreteLaplace, 1_000).unwrap_err();
        let min = err.min_epsilon_micro.expect("some ε fits");
        assert!(err.tail > err.max_offset as u64);
        let msg = err.to_string();
        assert!(msg.contains("smallest ε that fits"), "{msg}");
        assert!(check_noise_fits(&server, Mechanism::DiscreteLaplace, min).is_ok());
        assert!(check_noise_fits(&server, Mechanism::DiscreteLaplace, min - 1).is_err());
        // A network answers with a randomised-response label: no headroom, nothing to refuse.
        let mlp = smidl_fhe::model::train::train_mlp(&ds, &Default::default()).unwrap();
        let net = ServerModel::compile(&mlp, &ds, &QuantConfig::default()).unwrap();
        assert!(check_noise_fits(&net, Mechanism::DiscreteLaplace, 1_000).is_ok());
    }
}
