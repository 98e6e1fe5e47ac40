//! Differential-privacy noise for the encrypted model outputs: the exact samplers live in
//! `smidl-dp` ([`smidl_dp::noise`], re-exported here); this module only maps the chain's
//! accounting mode to a mechanism.

pub use smidl_dp::noise::*;

/// The mechanism that matches the chain's accounting mode: discrete Laplace for pure ε,
/// discrete Gaussian for zCDP.
pub fn mechanism_for(a: &crate::chain::Accounting) -> Mechanism {
    match a {
        crate::chain::Accounting::PureEpsilon => Mechanism::DiscreteLaplace,
        crate::chain::Accounting::Zcdp { .. } => Mechanism::DiscreteGaussian,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::Accounting;

    #[test]
    fn the_mechanism_follows_the_accounting() {
        assert_eq!(
            mechanism_for(&Accounting::PureEpsilon),
            Mechanism::DiscreteLaplace
        );
        assert_eq!(
            mechanism_for(&Accounting::Zcdp { delta_exponent: 6 }),
            Mechanism::DiscreteGaussian
        );
        // The samplers are the ones moved to smidl-dp.
        let plan = NoisePlan::new(mechanism_for(&Accounting::PureEpsilon), 2, MICRO).unwrap();
        assert_eq!(plan.sample(3).unwrap().len(), 3);
    }
}
