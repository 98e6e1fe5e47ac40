//! Cryptographic parameters and the noise model.
//!
//! We never invent lattice parameters: every dimension and noise width below is copied from a
//! tfhe-rs parameter set that Zama vetted for 128-bit security (named in [`CryptoParams::source`]).
//! What we choose ourselves is only the *encoding* (the plaintext scaling Δ and, for bootstrapped
//! layers, how many accumulator values share the torus), and that choice is driven by the noise
//! model in this module so every bootstrap fails with probability ≤ 2^-40.

use serde::{Deserialize, Serialize};
use tfhe::core_crypto::commons::noise_formulas::lwe_keyswitch::{
    keyswitch_additive_variance_132_bits_security_gaussian,
    keyswitch_additive_variance_132_bits_security_tuniform,
};
use tfhe::core_crypto::commons::noise_formulas::lwe_programmable_bootstrap::{
    pbs_variance_132_bits_security_gaussian_fft_mul,
    pbs_variance_132_bits_security_tuniform_fft_mul,
};
use tfhe::core_crypto::prelude::*;
use tfhe::shortint::parameters::ClassicPBSParameters;

/// Stated bound on the failure probability of one bootstrap (and of one output decoding).
pub const STATED_LOG2_P_FAIL: f64 = -40.0;
/// What the encodings are designed for: 4 bits below the stated bound, so that a statistical test
/// with a few thousand samples can tell a correct parameter choice from a wrong one.
pub const DESIGN_LOG2_P_FAIL: f64 = -44.0;

/// Identifies a parameter set on the wire (one byte) and in the model files.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[repr(u8)]
pub enum ParamSetId {
    /// Linear models: the features are packed into the coefficients of one GLWE ciphertext
    /// (k = 1, N = 2048) of `V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128`; outputs are
    /// LWE ciphertexts under the same key seen as a 2048-dimensional LWE key. A score answer is
    /// levelled only (no evaluation key). A label answer bootstraps with the same set's own
    /// small key (n = 918, TUniform(45)), key-switching key (base 2^4, 4 levels) and
    /// bootstrapping key (base 2^23, 1 level): the set is a full KS-PBS set, vetted for both.
    Leveled2048 = 1,
    /// Bootstrapped: inputs are LWE ciphertexts under the small (n = 931) key of
    /// `V1_4_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128`; one PBS (N = 4096) per neuron.
    Pbs4096 = 2,
}

impl ParamSetId {
    pub fn from_u8(v: u8) -> Option<Self> {
        match v {
            1 => Some(Self::Leveled2048),
            2 => Some(Self::Pbs4096),
            _ => None,
        }
    }

    pub fn params(self) -> CryptoParams {
        match self {
            Self::Leveled2048 => {
                let p = tfhe::shortint::parameters::v1_8::V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128;
                CryptoParams::from_shortint(
                    self,
                    "V1_8_PARAM_MESSAGE_2_CARRY_2_KS_PBS_TUNIFORM_2M128",
                    &p,
                    InputKey::GlwePacked,
                )
            }
            Self::Pbs4096 => {
                let p = tfhe::shortint::parameters::v1_4::V1_4_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128;
                CryptoParams::from_shortint(
                    self,
                    "V1_4_PARAM_MESSAGE_5_CARRY_0_KS_PBS_GAUSSIAN_2M128",
                    &p,
                    InputKey::Lwe,
                )
            }
        }
    }
}

/// Which secret key the client encrypts its inputs under.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputKey {
    /// The small LWE key (dimension n): the bootstrap's input side.
    Lwe,
    /// One GLWE ciphertext whose first coefficients hold the features. The server multiplies
    /// by the weight polynomial Σ w_j·X^(−j) and extracts coefficient 0: an LWE ciphertext of
    /// Σ w_j·x_j under the GLWE key seen as an LWE key of dimension k·N. Only one mask
    /// polynomial is regenerated from the seed instead of one mask per feature.
    GlwePacked,
}

/// The crypto parameters of one set (all public).
#[derive(Clone, Copy, Debug)]
pub struct CryptoParams {
    pub id: ParamSetId,
    /// Name of the tfhe-rs 1.8.2 parameter set the numbers come from.
    pub source: &'static str,
    pub lwe_dimension: LweDimension,
    pub lwe_noise: DynamicDistribution<u64>,
    pub glwe_dimension: GlweDimension,
    pub polynomial_size: PolynomialSize,
    pub glwe_noise: DynamicDistribution<u64>,
    pub pbs_base_log: DecompositionBaseLog,
    pub pbs_level: DecompositionLevelCount,
    /// Key switch from the GLWE-derived key back to the small key (between bootstrapped
    /// layers of deeper networks).
    pub ks_base_log: DecompositionBaseLog,
    pub ks_level: DecompositionLevelCount,
    pub input_key: InputKey,
}

impl CryptoParams {
    fn from_shortint(
        id: ParamSetId,
        source: &'static str,
        p: &ClassicPBSParameters,
        input_key: InputKey,
    ) -> Self {
        Self {
            id,
            source,
            lwe_dimension: p.lwe_dimension,
            lwe_noise: p.lwe_noise_distribution,
            glwe_dimension: p.glwe_dimension,
            polynomial_size: p.polynomial_size,
            glwe_noise: p.glwe_noise_distribution,
            pbs_base_log: p.pbs_base_log,
            pbs_level: p.pbs_level,
            ks_base_log: p.ks_base_log,
            ks_level: p.ks_level,
            input_key,
        }
    }

    pub fn ciphertext_modulus(&self) -> CiphertextModulus<u64> {
        CiphertextModulus::new_native()
    }

    /// Dimension of the GLWE key flattened as an LWE key (k·N): the PBS output side.
    pub fn big_lwe_dimension(&self) -> LweDimension {
        LweDimension(self.glwe_dimension.0 * self.polynomial_size.0)
    }

    /// Dimension of the LWE ciphertexts the client sends.
    pub fn input_lwe_dimension(&self) -> LweDimension {
        match self.input_key {
            InputKey::Lwe => self.lwe_dimension,
            InputKey::GlwePacked => self.big_lwe_dimension(),
        }
    }

    /// Noise distribution used for the client's input encryptions.
    pub fn input_noise(&self) -> DynamicDistribution<u64> {
        match self.input_key {
            InputKey::Lwe => self.lwe_noise,
            InputKey::GlwePacked => self.glwe_noise,
        }
    }

    /// Variance (torus units, i.e. relative to 2^64) of one fresh input encryption.
    pub fn input_noise_variance(&self) -> f64 {
        distribution_variance(self.input_noise())
    }

    /// Worst-case |noise| of one fresh input encryption, in 2^64 units, when the distribution is
    /// bounded (TUniform); `None` for Gaussians.
    pub fn input_noise_bound(&self) -> Option<u64> {
        match self.input_noise() {
            DynamicDistribution::TUniform(t) => Some(1u64 << t.bound_log2()),
            _ => None,
        }
    }

    /// Output variance of one PBS (torus units), from tfhe-rs' own noise formula for the set's
    /// noise family (Gaussian or TUniform: the formulas assume exactly the 132-bit-secure noise
    /// the vetted sets use, e.g. TUniform(17) for the N = 2048 GLWE key).
    pub fn pbs_output_variance(&self) -> f64 {
        let f = match self.glwe_noise {
            DynamicDistribution::TUniform(_) => pbs_variance_132_bits_security_tuniform_fft_mul,
            _ => pbs_variance_132_bits_security_gaussian_fft_mul,
        };
        f(
            self.lwe_dimension,
            self.glwe_dimension,
            self.polynomial_size,
            self.pbs_base_log,
            self.pbs_level,
            53.0,
            2f64.powi(64),
        )
        .0
    }

    /// Additive variance (torus units) of one key switch from the big to the small key (the
    /// formula of the set's noise family, as for [`Self::pbs_output_variance`]).
    pub fn keyswitch_variance(&self) -> f64 {
        let f = match self.lwe_noise {
            DynamicDistribution::TUniform(_) => {
                keyswitch_additive_variance_132_bits_security_tuniform
            }
            _ => keyswitch_additive_variance_132_bits_security_gaussian,
        };
        f(
            self.big_lwe_dimension(),
            self.lwe_dimension,
            self.ks_base_log,
            self.ks_level,
            2f64.powi(64),
            2f64.powi(64),
        )
        .0
    }

    /// Variance (torus units) of what a bootstrap's *read* adds to the phase of a big-key
    /// ciphertext: the key switch to the small key plus the centred modulus switch to 2N.
    pub fn keyswitch_and_mod_switch_variance(&self) -> f64 {
        let two_n = 2.0 * self.polynomial_size.0 as f64;
        self.keyswitch_variance() + self.mod_switch_variance_positions() / (two_n * two_n)
    }

    /// Variance of the centred modulus switch to 2N, in units of "positions" (1/2N of the torus).
    /// With a binary key, the centred switch leaves Σ(s_i − ½)·e_i with e_i uniform in ±½, i.e.
    /// n/48, plus the body's own rounding (1/12).
    pub fn mod_switch_variance_positions(&self) -> f64 {
        self.lwe_dimension.0 as f64 / 48.0 + 1.0 / 12.0
    }

    /// log2 of the probability that one bootstrap on a window of `window` accumulator values
    /// picks the wrong value, given the variance (torus units) of the noise already in the
    /// accumulator before the modulus switch.
    pub fn log2_p_fail_window(&self, window: u32, input_variance_torus: f64) -> f64 {
        let two_n = 2.0 * self.polynomial_size.0 as f64;
        let var = self.mod_switch_variance_positions() + input_variance_torus * two_n * two_n;
        // Each value owns N/M positions; the rounded position is off by at most ½ more.
        let margin = self.polynomial_size.0 as f64 / (2.0 * window as f64) - 0.5;
        log2_gaussian_two_sided_tail(margin / var.sqrt())
    }

    /// The largest window (number of distinct accumulator values a PBS can tell apart) whose
    /// failure probability stays ≤ 2^`target_log2`.
    pub fn max_window(&self, input_variance_torus: f64, target_log2: f64) -> u32 {
        let mut m = 2u32;
        while m < self.polynomial_size.0 as u32
            && self.log2_p_fail_window(m + 1, input_variance_torus) <= target_log2
        {
            m += 1;
        }
        m
    }
}

/// Variance in torus units (value / 2^64) of a tfhe noise distribution.
pub fn distribution_variance(d: DynamicDistribution<u64>) -> f64 {
    match d {
        DynamicDistribution::Gaussian(g) => g.standard_dev().0 * g.standard_dev().0,
        DynamicDistribution::TUniform(t) => {
            // Uniform on the integers [-2^b, 2^b]: variance (2^(2b+1) + 1) / 6.
            let b = t.bound_log2() as i32;
            (2f64.powi(2 * b + 1) + 1.0) / 6.0 / 2f64.powi(128)
        }
    }
}

/// Encoding scale for a torus split into `slots` equal parts: round(2^64 / slots).
pub fn delta_for_slots(slots: u64) -> u64 {
    let q = 2f64.powi(64);
    let d = (q / slots as f64).round();
    if d >= q {
        u64::MAX
    } else {
        d as u64
    }
}

/// log2 P(|Z| > z) for a standard normal Z.
pub fn log2_gaussian_two_sided_tail(z: f64) -> f64 {
    (erfc(z / std::f64::consts::SQRT_2)).log2()
}

/// Complementary error function: W. J. Cody's rational approximations would be overkill; the
/// Numerical Recipes Chebyshev fit has relative error < 1.2e-7 everywhere, far below what a
/// log2 probability needs.
pub fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erfc_matches_known_values() {
        // erfc(1) = 0.157299207050285, erfc(3) = 2.20904969985854e-5, erfc(5) = 1.5374597944e-12.
        assert!((erfc(1.0) - 0.157_299_207_050_285).abs() < 1e-7);
        assert!((erfc(3.0) / 2.209_049_699_858_54e-5 - 1.0).abs() < 1e-6);
        assert!((erfc(5.0) / 1.537_459_794_428_03e-12 - 1.0).abs() < 1e-6);
        assert!((erfc(-1.0) - (2.0 - 0.157_299_207_050_285)).abs() < 1e-7);
    }

    #[test]
    fn parameter_sets_are_the_vetted_ones() {
        let lr = ParamSetId::Leveled2048.params();
        assert_eq!(lr.input_lwe_dimension(), LweDimension(2048));
        assert!(lr.input_noise_bound().is_some());
        // Label answers of linear models bootstrap with the same set's own small key.
        assert_eq!(lr.lwe_dimension, LweDimension(918));
        assert_eq!(lr.polynomial_size, PolynomialSize(2048));
        assert_eq!(lr.pbs_level, DecompositionLevelCount(1));
        assert_eq!(
            (lr.ks_base_log, lr.ks_level),
            (DecompositionBaseLog(4), DecompositionLevelCount(4))
        );
        let mlp = ParamSetId::Pbs4096.params();
        assert_eq!(mlp.lwe_dimension, LweDimension(931));
        assert_eq!(mlp.polynomial_size, PolynomialSize(4096));
        assert_eq!(mlp.pbs_level, DecompositionLevelCount(1));
        assert_eq!(mlp.input_lwe_dimension(), LweDimension(931));
    }

    #[test]
    fn window_meets_the_design_bound_and_not_one_more() {
        let p = ParamSetId::Pbs4096.params();
        let m = p.max_window(0.0, DESIGN_LOG2_P_FAIL);
        assert!(p.log2_p_fail_window(m, 0.0) <= DESIGN_LOG2_P_FAIL);
        assert!(p.log2_p_fail_window(m + 1, 0.0) > DESIGN_LOG2_P_FAIL);
        // Sanity: a 6-bit-plus-padding window is far beyond what N = 4096 resolves at 2^-40.
        assert!(p.log2_p_fail_window(128, 0.0) > STATED_LOG2_P_FAIL);
        assert!(m >= 32, "window {m}");
    }
}
