//! The chain's privacy units and its zCDP conversions, for planning and for private training.
//!
//! A copy of `pallets/secure-inference/src/privacy.rs` (same integer arithmetic, same rounding,
//! no floats), so that this crate does not depend on the pallet: amounts are integers in
//! millionths ([`MICRO`]), micro-ε in pure-ε mode and micro-ρ in zCDP mode, and every rounding
//! goes against the spender (costs round up, budgets round down). The tests pin values of the
//! pallet's functions.

use crate::noise::{Mechanism, MICRO};
use crate::train::TrainingBudget;

/// ln(10) in units of 10^-9, rounded up (2.302585092994…), as in the pallet.
const LN10_NANO_CEIL: u128 = 2_302_585_093;

/// δ = 10^-k exponents the chain accepts.
pub const MIN_DELTA_EXPONENT: u8 = 1;
pub const MAX_DELTA_EXPONENT: u8 = 30;

/// ⌊√n⌋ for u128, by Newton's method (exact, no floats).
pub fn isqrt_floor(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    // Start above the root so the sequence decreases monotonically.
    let mut x = 1u128 << (128 - n.leading_zeros()).div_ceil(2);
    loop {
        let y = (x + n / x) / 2;
        if y >= x {
            return x;
        }
        x = y;
    }
}

/// ⌈√n⌉ for u128.
pub fn isqrt_ceil(n: u128) -> u128 {
    let r = isqrt_floor(n);
    if r * r == n {
        r
    } else {
        r + 1
    }
}

/// ln(1/δ) for δ = 10^-k, in micro-units, rounded up (a larger L gives a smaller ρ).
pub fn ln_inv_delta_micro(delta_exponent: u8) -> u128 {
    (delta_exponent as u128 * LN10_NANO_CEIL).div_ceil(1_000)
}

/// zCDP cost of one ε-DP query (the chain's per-query charge in zCDP mode): ρ = ε²/2 in
/// micro-ρ, rounded up. Saturates at `u64::MAX` (the pallet refuses such a policy).
pub fn rho_per_query_micro(epsilon_micro: u64) -> u64 {
    let e = epsilon_micro as u128;
    u64::try_from((e * e).div_ceil(2 * MICRO as u128)).unwrap_or(u64::MAX)
}

/// The largest ρ (micro-ρ, rounded **down**) whose (ε, δ) conversion
/// ε(ρ) = ρ + 2√(ρ·ln(1/δ)) (Bun–Steinke 2016) stays within `epsilon_micro`, δ = 10^-k:
/// ρ = (√(L+ε) − √L)², with the outer root rounded down and the inner one up, exactly as the
/// pallet's `privacy::rho_budget`. The chain converts lineage and account budgets with it, and
/// (private-model mode) a training ε in zCDP mode: the training mechanism must then be
/// calibrated to at most this ρ.
///
/// Every u64 ε fits (the result is ≤ ε); the chain accepts `delta_exponent` in
/// [`MIN_DELTA_EXPONENT`]..=[`MAX_DELTA_EXPONENT`].
pub fn rho_micro_for_epsilon(epsilon_micro: u64, delta_exponent: u8) -> u64 {
    let l = ln_inv_delta_micro(delta_exponent);
    let s = MICRO as u128;
    // (L + ε)·10⁶ < (6·10⁸ + 1.9·10¹⁹)·10⁶ < 2^128: no overflow for any input.
    let outer = isqrt_floor((l + epsilon_micro as u128) * s);
    let inner = isqrt_ceil(l * s);
    let d = outer.saturating_sub(inner);
    // d² / 10⁶ ≤ ε (the result is a ρ whose conversion is ≤ ε), so it fits a u64.
    u64::try_from(d * d / s).unwrap_or(u64::MAX)
}

/// ε (micro-ε, rounded up) of the (ε, δ)-DP guarantee implied by a spent ρ:
/// ε = ρ + 2√(ρ·L), as the pallet's `privacy::epsilon_from_rho` reports it.
pub fn epsilon_micro_from_rho(rho_micro: u64, delta_exponent: u8) -> u64 {
    let l = ln_inv_delta_micro(delta_exponent);
    let root = isqrt_ceil(rho_micro as u128 * l);
    u64::try_from(rho_micro as u128 + 2 * root).unwrap_or(u64::MAX)
}

/// The chain's accounting mode of a lineage (mirrors the pallet's `Accounting`; the worker and
/// the CLI convert their subxt type to this one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accounting {
    /// Pure ε: costs and budgets in micro-ε, composed by addition.
    PureEpsilon,
    /// ρ-zCDP with δ = 10^-k for the declared (ε, δ) budgets: costs and budgets in micro-ρ.
    Zcdp { delta_exponent: u8 },
}

impl Accounting {
    /// The noise that matches the accounting (what the worker uses per query).
    pub fn mechanism(self) -> Mechanism {
        match self {
            Self::PureEpsilon => Mechanism::DiscreteLaplace,
            Self::Zcdp { .. } => Mechanism::DiscreteGaussian,
        }
    }

    /// Short name for tables: `pure` or `zcdp`.
    pub fn name(self) -> &'static str {
        match self {
            Self::PureEpsilon => "pure",
            Self::Zcdp { .. } => "zcdp",
        }
    }

    /// Whether the chain would accept this mode (δ exponent in range).
    pub fn is_valid(self) -> bool {
        match self {
            Self::PureEpsilon => true,
            Self::Zcdp { delta_exponent } => {
                (MIN_DELTA_EXPONENT..=MAX_DELTA_EXPONENT).contains(&delta_exponent)
            }
        }
    }

    /// What one per-query answer at `epsilon_micro` costs, in the accounting unit (pallet
    /// `costs_of`: ε, or ρ = ε²/2 rounded up).
    pub fn query_cost_micro(self, epsilon_micro: u64) -> u64 {
        match self {
            Self::PureEpsilon => epsilon_micro,
            Self::Zcdp { .. } => rho_per_query_micro(epsilon_micro),
        }
    }

    /// A declared ε budget (lineage or account) in the accounting unit (pallet
    /// `lineage_budget` / `costs_of`: ε, or the largest ρ within it, rounded down).
    pub fn budget_micro(self, epsilon_budget_micro: u64) -> u64 {
        match self {
            Self::PureEpsilon => epsilon_budget_micro,
            Self::Zcdp { delta_exponent } => {
                rho_micro_for_epsilon(epsilon_budget_micro, delta_exponent)
            }
        }
    }

    /// What the lineage is charged for weights trained privately at a declared ε (pallet
    /// `training_cost`: ε, or the largest ρ whose (ε, δ) conversion stays within ε).
    pub fn training_cost_micro(self, training_epsilon_micro: u64) -> u64 {
        self.budget_micro(training_epsilon_micro)
    }

    /// The training budget to calibrate the private training to, for a declared training ε:
    /// exactly what [`Self::training_cost_micro`] charges.
    pub fn training_budget(self, training_epsilon_micro: u64) -> TrainingBudget {
        match self {
            Self::PureEpsilon => TrainingBudget::PureEpsilon {
                epsilon_micro: training_epsilon_micro,
            },
            Self::Zcdp { .. } => TrainingBudget::Zcdp {
                rho_micro: self.training_cost_micro(training_epsilon_micro),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Values of the pallet's `privacy::rho_budget` / `epsilon_from_rho`, computed from its
    // integer code (exact integer square roots; see the module documentation).
    const PALLET_RHO_BUDGET: [(u64, u8, u64, u64); 8] = [
        // (ε micro, δ exponent, ρ micro, ε(ρ) micro)
        (1_000_000, 5, 20_819, 999_979),
        (1_000_000, 6, 17_468, 999_974),
        (24_000_000, 6, 5_917_095, 23_999_981),
        (100_000, 1, 1_062, 99_964),
        (500_000, 9, 2_979, 499_909),
        (50_000_000, 30, 6_765_070, 49_999_986),
        (2_000_000, 9, 46_057, 1_999_979),
        (4_000_000, 6, 253_934, 3_999_988),
    ];

    #[test]
    fn rho_for_epsilon_matches_the_pallet() {
        for (eps, k, rho, back) in PALLET_RHO_BUDGET {
            assert_eq!(rho_micro_for_epsilon(eps, k), rho, "ε={eps} k={k}");
            assert_eq!(epsilon_micro_from_rho(rho, k), back, "ε={eps} k={k}");
            // Rounded down: one more micro-ρ would no longer be the pallet's answer, and the
            // conversion of the answer stays within ε.
            assert!(back <= eps);
        }
        assert_eq!(ln_inv_delta_micro(5), 11_512_926);
    }

    // The pallet's own unit tests, mirrored.

    #[test]
    fn isqrt_is_exact_around_squares() {
        for r in [0u128, 1, 2, 3, 10, 999_999, 1 << 40, (1u128 << 63) - 1] {
            let sq = r * r;
            assert_eq!(isqrt_floor(sq), r);
            assert_eq!(isqrt_ceil(sq), r);
            if r > 0 {
                assert_eq!(isqrt_floor(sq + 1), r);
                assert_eq!(isqrt_ceil(sq + 1), r + 1);
                assert_eq!(isqrt_floor(sq - 1), r - 1);
            }
        }
        assert_eq!(isqrt_floor(u128::MAX), u64::MAX as u128);
    }

    #[test]
    fn rho_cost_rounds_up() {
        assert_eq!(rho_per_query_micro(MICRO), 500_000);
        assert_eq!(rho_per_query_micro(1), 1);
        assert_eq!(rho_per_query_micro(0), 0);
        assert_eq!(rho_per_query_micro(u64::MAX), u64::MAX);
    }

    #[test]
    fn rho_budget_round_trips_below_the_epsilon_budget() {
        for k in [MIN_DELTA_EXPONENT, 5, 9, MAX_DELTA_EXPONENT] {
            for eps in [100_000u64, MICRO, 3 * MICRO, 50 * MICRO] {
                let rho = rho_micro_for_epsilon(eps, k);
                let back = epsilon_micro_from_rho(rho, k);
                assert!(back <= eps + 2, "k={k} eps={eps} rho={rho} back={back}");
                assert!(back * 200 >= eps * 199, "k={k} eps={eps} rho={rho}");
            }
        }
        // No overflow at the extremes (the result is at most ε).
        let top = rho_micro_for_epsilon(u64::MAX, MAX_DELTA_EXPONENT);
        assert!(top > u64::MAX / 2 && epsilon_micro_from_rho(top, MAX_DELTA_EXPONENT) >= top);
        assert_eq!(rho_micro_for_epsilon(0, 5), 0);
    }

    #[test]
    fn known_value_delta_1e_minus_5() {
        let rho = rho_micro_for_epsilon(MICRO, 5);
        assert!((20_810..=20_820).contains(&rho), "{rho}");
    }

    #[test]
    fn accounting_units_follow_the_pallet() {
        let pure = Accounting::PureEpsilon;
        assert_eq!(pure.query_cost_micro(2 * MICRO), 2 * MICRO);
        assert_eq!(pure.budget_micro(24 * MICRO), 24 * MICRO);
        assert_eq!(pure.training_cost_micro(MICRO), MICRO);
        assert_eq!(pure.mechanism(), Mechanism::DiscreteLaplace);
        let z = Accounting::Zcdp { delta_exponent: 6 };
        assert_eq!(z.query_cost_micro(MICRO), 500_000);
        assert_eq!(z.budget_micro(24 * MICRO), 5_917_095);
        assert_eq!(z.training_cost_micro(MICRO), 17_468);
        assert_eq!(
            z.training_budget(MICRO),
            TrainingBudget::Zcdp { rho_micro: 17_468 }
        );
        assert_eq!(z.mechanism(), Mechanism::DiscreteGaussian);
        assert!(z.is_valid() && !Accounting::Zcdp { delta_exponent: 0 }.is_valid());
    }
}
