//! Fixed-point privacy accounting.
//!
//! All privacy amounts are integers in millionths ([`PRIVACY_SCALE`] = 1.0): micro-ε in
//! pure-ε mode, micro-ρ in zCDP mode. No floats: the runtime must be deterministic. Every
//! rounding goes against the spender: costs round up, budgets round down, and reported ε
//! rounds up.

use crate::types::PrivacyUnits;

/// One whole unit of privacy loss (ε or ρ), in the integer unit used everywhere.
pub const PRIVACY_SCALE: u64 = 1_000_000;

/// ln(10) in units of 10^-9, rounded up (2.302585092994…).
const LN10_NANO_CEIL: u128 = 2_302_585_093;

/// Largest accepted δ exponent (δ = 10^-k). Beyond 10^-30 the bound stops being meaningful.
pub const MAX_DELTA_EXPONENT: u8 = 30;

/// Smallest accepted δ exponent; δ larger than 10^-1 is no guarantee at all.
pub const MIN_DELTA_EXPONENT: u8 = 1;

/// ⌊√n⌋ for u128, by Newton's method (exact, no floats).
pub fn isqrt_floor(n: u128) -> u128 {
    if n < 2 {
        return n;
    }
    // Start above the root so the sequence decreases monotonically.
    let mut x = 1u128 << ((128 - n.leading_zeros()).div_ceil(2));
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

/// ln(1/δ) for δ = 10^-k, in micro-units, rounded up (a larger L gives a smaller ρ budget).
pub fn ln_inv_delta_micro(delta_exponent: u8) -> u128 {
    (delta_exponent as u128 * LN10_NANO_CEIL).div_ceil(1_000)
}

/// zCDP cost of one ε-DP query (the Gaussian mechanism calibrated to ε): ρ = ε²/2, rounded up.
pub fn rho_per_query(epsilon_micro: PrivacyUnits) -> Option<PrivacyUnits> {
    let e = epsilon_micro as u128;
    let rho = e.checked_mul(e)?.div_ceil(2 * PRIVACY_SCALE as u128);
    u64::try_from(rho).ok()
}

/// Largest ρ whose (ε, δ) conversion ε(ρ) = ρ + 2√(ρ·ln(1/δ)) stays ≤ `epsilon_budget`:
/// ρ = (√(L+ε) − √L)², computed with the inner roots rounded towards a smaller result.
pub fn rho_budget(epsilon_budget_micro: PrivacyUnits, delta_exponent: u8) -> Option<PrivacyUnits> {
    let l = ln_inv_delta_micro(delta_exponent);
    let s = PRIVACY_SCALE as u128;
    let outer = isqrt_floor(
        l.checked_add(epsilon_budget_micro as u128)?
            .checked_mul(s)?,
    );
    let inner = isqrt_ceil(l.checked_mul(s)?);
    let d = outer.saturating_sub(inner);
    u64::try_from(d.checked_mul(d)? / s).ok()
}

/// ε of the (ε, δ)-DP guarantee implied by a spent ρ, rounded up: ε = ρ + 2√(ρ·L).
pub fn epsilon_from_rho(rho_micro: PrivacyUnits, delta_exponent: u8) -> Option<PrivacyUnits> {
    let l = ln_inv_delta_micro(delta_exponent);
    let root = isqrt_ceil((rho_micro as u128).checked_mul(l)?);
    let eps = (rho_micro as u128).checked_add(root.checked_mul(2)?)?;
    u64::try_from(eps).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

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
        // ε = 1.0 → ρ = 0.5 exactly.
        assert_eq!(rho_per_query(PRIVACY_SCALE), Some(500_000));
        // ε = 1e-6 → ρ = 5e-13, rounded up to the smallest unit.
        assert_eq!(rho_per_query(1), Some(1));
        assert_eq!(rho_per_query(0), Some(0));
    }

    #[test]
    fn rho_budget_round_trips_below_the_epsilon_budget() {
        for k in [MIN_DELTA_EXPONENT, 5, 9, MAX_DELTA_EXPONENT] {
            for eps in [
                100_000u64,
                PRIVACY_SCALE,
                3 * PRIVACY_SCALE,
                50 * PRIVACY_SCALE,
            ] {
                let rho = rho_budget(eps, k).unwrap();
                let back = epsilon_from_rho(rho, k).unwrap();
                // Never more than the budget, and not needlessly far below it (< 0.5 %; the
                // micro-unit grid of ρ is coarse for small budgets).
                assert!(back <= eps + 2, "k={k} eps={eps} rho={rho} back={back}");
                assert!(
                    back * 200 >= eps * 199,
                    "k={k} eps={eps} rho={rho} back={back}"
                );
            }
        }
    }

    #[test]
    fn known_value_delta_1e_minus_5() {
        // δ = 1e-5: L = 11.512925…; ε = 1 → ρ = (√12.512925 − √11.512925)² ≈ 0.0208199.
        let rho = rho_budget(PRIVACY_SCALE, 5).unwrap();
        assert!((20_810..=20_820).contains(&rho), "{rho}");
    }
}
