//! Circuit privacy: what the worker returns must look like a fresh encryption of the (noised)
//! output, even to a client that knows its secret key and every error it encrypted with.
//!
//! The raw output of [`crate::ServerModel::evaluate`] does not: for a linear model its LWE mask
//! is `A(X)·Σ w_j·X^(−j)`, linear in the weights with coefficients the client computes from its
//! own seed, and its phase carries `Σ w_j·e_j` over the client's own input errors. Sanitising
//! fixes both, following the rerandomise-and-flood recipe (Gentry 2009; Bourse–Del Pino–Minelli–
//! Wee 2016 for the flooding step):
//!
//! 1. **Rerandomise the mask** by adding a fresh encryption of zero under the client's
//!    [`PublicKey`] (an RLWE "compact" public key of the output key, tfhe-rs'
//!    `LweCompactPublicKey`). Its mask `a_pk·u + e1` (binary `u`, vetted GLWE noise `e1`) is one
//!    RLWE sample with a fresh secret `u` that the client never sees, so the sum is
//!    computationally indistinguishable from a uniform mask under the same assumption (and the
//!    same vetted parameters) that protects the client's own ciphertexts.
//! 2. **Flood the phase** with a uniform integer in `[−2^f, 2^f)` drawn from a CSPRNG, where
//!    `2^f` dwarfs everything in the phase that depends on the weights or on the zero
//!    encryption's secrets. Two phases that differ by at most `B` are then at statistical distance
//!    at most `B / 2^(f+1)`.
//!
//! The bound per answer is [`FloodBound::statistical_distance`]; over `Q` answers it adds up to
//! `Q` times that (hybrid argument). The derivation, the parameters and the numbers for the demo
//! model are in `docs/privacy.md` ("Server privacy").
//!
//! Scope, stated plainly: [`FloodBound::statistical_distance`] is for honestly generated keys
//! and ciphertexts (a *curious* client). For linear models the input proofs of [`crate::proof`]
//! bound what any client can do with its public key and errors, which gives the weaker
//! [`FloodBound::proven_statistical_distance`]. Label answers (networks, and linear models
//! compiled with label answers: [`LinearLabel`]) assume the client's bootstrapping and
//! key-switching keys are well formed; `docs/privacy.md` lists what such a client can still do.

use serde::{Deserialize, Serialize};
use tfhe::core_crypto::commons::math::random::{RandomGenerator, Seed};
use tfhe::core_crypto::prelude::*;

use crate::client::{ClientSpec, EncryptedOutput};
use crate::error::{FheError, ObjectKind, Result};
use crate::params::ParamSetId;

/// The client's public key for the output key (the GLWE key seen as an LWE key of dimension
/// k·N): a seeded tfhe-rs compact public key, i.e. `(a_pk, b_pk = a_pk ⊛ s + e_pk)` with `a_pk`
/// expanded from `seed`. The worker uses it only to encrypt zeros.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct PublicKey {
    pub(crate) seed: u128,
    pub(crate) body: Vec<u64>,
}

impl std::fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PublicKey")
            .field("dimension", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl PublicKey {
    /// Generate from the output key (client side).
    pub(crate) fn generate(key: &LweSecretKey<&[u64]>, params: ParamSetId) -> Self {
        let p = params.params();
        let mut seeder = new_seeder();
        let seeder = seeder.as_mut();
        let seed = seeder.seed();
        let mut pk = SeededLweCompactPublicKey::new(
            0u64,
            key.lwe_dimension(),
            seed.into(),
            p.ciphertext_modulus(),
        );
        generate_seeded_lwe_compact_public_key(key, &mut pk, p.glwe_noise, seeder);
        Self {
            seed: seed.0,
            body: pk.into_container(),
        }
    }

    /// The key's noise `e_pk = b_pk − a_pk ⊛ rev(s)` for its secret `s` (client side: a witness
    /// of the input proofs).
    pub(crate) fn noise(&self, secret: &[u64], params: ParamSetId) -> Vec<u64> {
        let (mask, body) = self.mask_and_body(params);
        let mut prod = vec![0u64; mask.len()];
        if secret.len() == mask.len() {
            tfhe::core_crypto::algorithms::slice_algorithms::slice_semi_reverse_negacyclic_convolution(
                &mut prod, &mask, secret,
            );
        }
        body.iter()
            .zip(&prod)
            .map(|(b, p)| b.wrapping_sub(*p))
            .collect()
    }

    /// The expanded mask `a_pk` and the body `b_pk`.
    pub(crate) fn mask_and_body(&self, params: ParamSetId) -> (Vec<u64>, Vec<u64>) {
        let pk = self.expand(params);
        (
            pk.get_mask().as_ref().to_vec(),
            pk.get_body().as_ref().to_vec(),
        )
    }

    /// Shape check against the spec the key is used with.
    pub(crate) fn check(&self, spec: &ClientSpec, kind: ObjectKind) -> Result<()> {
        let n = spec.params.params().big_lwe_dimension().0;
        if self.body.len() != n {
            return Err(FheError::WrongParameters {
                kind,
                reason: format!("public key of dimension {}, expected {n}", self.body.len()),
            });
        }
        Ok(())
    }

    fn expand(&self, params: ParamSetId) -> LweCompactPublicKeyOwned<u64> {
        let p = params.params();
        let seeded = SeededLweCompactPublicKey::from_container(
            self.body.clone(),
            Seed(self.seed).into(),
            p.ciphertext_modulus(),
        );
        seeded.decompress_into_lwe_compact_public_key()
    }

    /// Size on the wire (payload bytes).
    pub fn size_bytes(&self) -> usize {
        16 + 8 * self.body.len()
    }
}

/// How much flooding a parameter set gets, and what it buys.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FloodBound {
    /// The flood is uniform on `[−2^log2_flood, 2^log2_flood)` (2^64 torus units).
    pub log2_flood: u32,
    /// Bound (2^64 units) on the part of the phase that the flood must hide: the weighted sum of
    /// the client's input errors plus the zero encryption's own phase, for honestly generated
    /// keys and ciphertexts (|e| ≤ 2^17 per coefficient).
    pub hidden_bound: u64,
    /// The same for any client whose input proof verified: only ‖(e_pk, e)‖₂ ≤ 2^17·√(N + k)
    /// is known, so Σ w_j·e_j ≤ ‖w‖₂·2^17·√(N + k) and (u ⊛ e_pk)_0 ≤ √N·2^17·√(N + k).
    pub proven_hidden_bound: u64,
}

impl FloodBound {
    /// Statistical distance, for one answer, between the sanitised output and a fresh encryption
    /// of the same message with the same flood (on top of the RLWE assumption for the mask).
    pub fn statistical_distance(&self) -> f64 {
        self.hidden_bound as f64 / 2f64.powi(self.log2_flood as i32 + 1)
    }

    /// The same over `queries` answers (union bound over the hybrids).
    pub fn statistical_distance_for(&self, queries: u64) -> f64 {
        (self.statistical_distance() * queries as f64).min(1.0)
    }

    /// Per answer, for a client that only satisfies its input proof (possibly malicious).
    pub fn proven_statistical_distance(&self) -> f64 {
        self.proven_hidden_bound as f64 / 2f64.powi(self.log2_flood as i32 + 1)
    }
}

/// log2 of the flood for linear models: 2^48 is 2^12 output units at Δ = 2^36, far below the DP
/// noise the worker adds (tens of thousands of units) and 2^18 times the hidden terms (≤ 2^30).
pub const LINEAR_LOG2_FLOOD: u32 = 48;

/// The flood and its hidden-term bound for a spec, or `None` where flooding cannot be afforded
/// (bootstrapped networks: their weight-dependent phase noise is as large as one output unit)
/// or the answer is not a score (label linear models: see [`LinearLabel`] and [`LabelBound`]).
pub fn flood_bound(
    spec: &ClientSpec,
    max_abs_weight_sum: u64,
    max_weight_l2: f64,
) -> Option<FloodBound> {
    score_log2_flood(spec)?;
    let p = spec.params.params();
    match spec.params {
        ParamSetId::Leveled2048 => {
            let e = p.input_noise_bound()?; // TUniform: |e| ≤ 2^b
            let n = p.big_lwe_dimension().0 as u64;
            // Σ|w_j|·|e_j| + |bias| rounding-free; zero encryption: |(u·e_pk)_0| ≤ n·e,
            // |(e1·s)_0| ≤ n·e, |e2| ≤ e.
            let weighted = max_abs_weight_sum.checked_mul(e)?;
            let zero = (2 * n + 1).checked_mul(e)?;
            // Proven: ℓ2 bound on (e_pk, e) jointly; the worker's own e1, e2 are honest.
            let k = spec.feature_count() as f64;
            let l2 = e as f64 * (n as f64 + k).sqrt();
            let proven = max_weight_l2 * l2 + (n as f64).sqrt() * l2 + (n + 1) as f64 * e as f64;
            Some(FloodBound {
                log2_flood: LINEAR_LOG2_FLOOD,
                hidden_bound: weighted.checked_add(zero)?,
                proven_hidden_bound: proven.ceil() as u64,
            })
        }
        ParamSetId::Pbs4096 => None,
    }
}

/// log2 of the flood on a score answer, or `None` where scores are not flooded (label answers:
/// networks and label linear models, whose own rounds flood the label).
fn score_log2_flood(spec: &ClientSpec) -> Option<u32> {
    if spec.answers_are_labels() {
        return None;
    }
    match spec.params {
        ParamSetId::Leveled2048 => Some(LINEAR_LOG2_FLOOD),
        ParamSetId::Pbs4096 => None,
    }
}

/// Flood of a spec in output units, rounded up (what decoding must leave room for).
pub fn flood_output_units(spec: &ClientSpec) -> i64 {
    score_log2_flood(spec).map_or(0, |f| {
        (1u128 << f).div_ceil(spec.output_delta.max(1) as u128) as i64
    })
}

/// Rerandomises single ciphertexts: one expanded public key and one CSPRNG state per answer.
pub(crate) struct Sanitiser {
    params: ParamSetId,
    cpk: LweCompactPublicKeyOwned<u64>,
    enc: EncryptionRandomGenerator<DefaultRandomGenerator>,
    flood: RandomGenerator<DefaultRandomGenerator>,
}

impl Sanitiser {
    pub(crate) fn new(pk: &PublicKey, spec: &ClientSpec) -> Result<Self> {
        pk.check(spec, ObjectKind::EncryptedInput)?;
        let mut seeder = new_seeder();
        let seeder = seeder.as_mut();
        let enc = EncryptionRandomGenerator::<DefaultRandomGenerator>::new(seeder.seed(), seeder);
        let flood = RandomGenerator::<DefaultRandomGenerator>::new(seeder.seed());
        Ok(Self {
            params: spec.params,
            cpk: pk.expand(spec.params),
            enc,
            flood,
        })
    }

    /// Add a fresh encryption of zero under the public key to `ct` (an LWE ciphertext under the
    /// output key), then, with `log2_flood`, a uniform integer in `[−2^f, 2^f)` to its body.
    pub(crate) fn apply(&mut self, ct: &mut [u64], log2_flood: Option<u32>) {
        let p = self.params.params();
        let mut zero = LweCiphertext::new(0u64, LweSize(ct.len()), p.ciphertext_modulus());
        encrypt_lwe_ciphertext_with_compact_public_key(
            &self.cpk,
            &mut zero,
            Plaintext(0u64),
            p.glwe_noise,
            p.glwe_noise,
            self.enc.noise_generator_mut(),
        );
        for (c, z) in ct.iter_mut().zip(zero.as_ref()) {
            *c = c.wrapping_add(*z);
        }
        if let Some(f) = log2_flood {
            // Arithmetic shift of a uniform u64: uniform on [−2^f, 2^f).
            let r: u64 = self.flood.random_uniform();
            let flood = (r as i64) >> (63 - f.min(62));
            if let Some(body) = ct.last_mut() {
                *body = body.wrapping_add(flood as u64);
            }
        }
    }
}

/// Rerandomise every ciphertext of a linear model's `out` with a fresh encryption of zero under
/// `pk` and flood its body.
pub(crate) fn sanitise(out: &mut EncryptedOutput, pk: &PublicKey, spec: &ClientSpec) -> Result<()> {
    let mut s = Sanitiser::new(pk, spec)?;
    let log2_flood = score_log2_flood(spec);
    let size = out.lwe_size;
    for ct in out.data.chunks_exact_mut(size) {
        s.apply(ct, log2_flood);
    }
    Ok(())
}

/// Label answers (networks and label linear models): the class bit sits at ±[`LABEL_BIT`]
/// (±1/8 of the torus).
pub const LABEL_BIT: u64 = 1 << 61;
/// Flood of each sanitising round of a label answer: uniform on [−2^60, 2^60), half the
/// distance from the bit to the decision boundary.
pub const LABEL_LOG2_FLOOD: u32 = 60;
/// Sanitising rounds (rerandomise, flood, key switch, bootstrap) after the sign bootstrap.
pub const LABEL_ROUNDS: u32 = 3;

/// What the label answer's sanitisation buys, from the parameter set's own noise formulas.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LabelBound {
    /// Bound (2^64 units) on |noise| of a bootstrap output, except with probability 2^-40.
    pub pbs_noise_bound: f64,
    /// Statistical distance contributed by one round: two inputs whose noises differ by at most
    /// twice the bound, flooded by a uniform of width 2^(f+1).
    pub per_round: f64,
    pub rounds: u32,
}

impl LabelBound {
    pub fn for_params(params: ParamSetId) -> Self {
        let p = params.params();
        let sigma = p.pbs_output_variance().sqrt() * 2f64.powi(64);
        // Gaussian tail: P(|Z| > zσ) ≤ 2^-40 at z = 7.34; 7.5 leaves a margin.
        let bound = 7.5 * sigma;
        Self {
            pbs_noise_bound: bound,
            per_round: 2.0 * bound / 2f64.powi(LABEL_LOG2_FLOOD as i32 + 1),
            rounds: LABEL_ROUNDS,
        }
    }

    /// Statistical distance per answer: the rounds contract it multiplicatively (Dobrushin;
    /// Ducas–Stehlé 2016), plus the 2^-40 tail of each round.
    pub fn statistical_distance(&self) -> f64 {
        self.per_round.powi(self.rounds as i32) + f64::from(self.rounds) * 2f64.powi(-40)
    }
}

/// Label answers of linear models: the shifted score ciphertext is multiplied by the largest
/// integer c with c·(max_abs + 1)·Δ ≤ 2^63 − 2^LINEAR_LABEL_LOG2_HEADROOM, so every accepted
/// input's scaled phase stays at least 2^60 away from the half torus, where the sign bootstrap
/// would read the wrong sign (the read noise is ~2^57, see [`LinearLabel`]).
pub const LINEAR_LABEL_LOG2_HEADROOM: u32 = 60;

/// The public scale c of a linear model's label answer (a function of the spec: its output
/// range and Δ), or `None` when even c = 1 does not fit (a score range of half the torus).
pub fn linear_label_scale(spec: &ClientSpec) -> Option<u64> {
    let cap = (1u128 << 63) - (1u128 << LINEAR_LABEL_LOG2_HEADROOM);
    let unit = (spec.output.max_abs.max(0) as u128 + 1).checked_mul(spec.output_delta as u128)?;
    let c = cap / unit.max(1);
    (c >= 1).then(|| u64::try_from(c).ok()).flatten()
}

/// How a linear model's score becomes a label, and how close to 0 a score may be before the
/// bootstrap's read noise can flip it. All phases in 2^64 units.
///
/// The score ciphertext (big key, Δ per unit) carries `Δ·s + e` with `|e| ≤ ‖w‖₂·2^17·√(N + k)`
/// for every input whose proof verified (the honest bound `Σ|w_j|·2^17` is smaller); the design
/// of Δ makes `|e| < Δ/2` here. The server subtracts Δ/2 (a score of exactly 0 is class 0, as
/// in the clear model) and multiplies by c: phase `c·(Δ·(s − ½) + e)`, whose sign is the label
/// for every integer s because `|e| < Δ/2`. The key switch to the small key (n = 918) and the
/// bootstrap's centred modulus switch to 2N = 4096 then add a read error of standard deviation
/// `read_std` (tfhe-rs' TUniform key-switch formula plus n/48 + 1/12 positions², the same model
/// `tests/bootstrap_noise.rs` validates for networks); the sign is read right except with
/// probability ≤ 2^-40 whenever `c·(Δ·|s − ½| − |e|) ≥ z·read_std`, i.e. for `|s| > margin_units`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LinearLabel {
    /// The public integer c.
    pub scale: u64,
    /// Largest |phase| of the scaled ciphertext over all accepted inputs: `c·((max_abs + ½)·Δ
    /// + e_max)`.
    pub max_phase: f64,
    /// `c·e_max` for any proven input.
    pub scaled_input_noise: f64,
    /// Standard deviation of the key switch plus the modulus switch.
    pub read_std: f64,
    /// `z·read_std` with P(|Z| > z) = 2^-40.
    pub read_bound: f64,
    /// Scores with `|s| > margin_units` (output units) answer their clear label except with
    /// probability ≤ 2^-40 (before randomised response).
    pub margin_units: i64,
}

impl LinearLabel {
    /// The margin in score units (logits for a sigmoid model).
    pub fn margin_score(&self, spec: &ClientSpec) -> f64 {
        self.margin_units as f64 * spec.output.scale.first().copied().unwrap_or(f64::NAN)
    }
}

/// [`LinearLabel`] for a label linear model with weight vector norm `weight_l2` (`None` for
/// other models, or when the scaled phase would come within the read noise of the half torus).
pub fn linear_label(spec: &ClientSpec, weight_l2: f64) -> Option<LinearLabel> {
    if !(spec.is_linear() && spec.answers_are_labels()) {
        return None;
    }
    let c = linear_label_scale(spec)?;
    let p = spec.params.params();
    let q = 2f64.powi(64);
    let e = p.input_noise_bound()? as f64;
    let n = p.big_lwe_dimension().0 as f64;
    let e_max = weight_l2 * e * (n + spec.feature_count() as f64).sqrt();
    let delta = spec.output_delta as f64;
    if e_max >= delta / 2.0 {
        return None;
    }
    let read_std = p.keyswitch_and_mod_switch_variance().sqrt() * q;
    let read_bound = crate::quant::z_for(crate::params::STATED_LOG2_P_FAIL) * read_std;
    let cf = c as f64;
    let max_phase = cf * ((spec.output.max_abs as f64 + 0.5) * delta + e_max);
    if max_phase + read_bound >= q / 2.0 {
        return None;
    }
    // c·Δ·(M + ½) − c·e_max ≥ read_bound for every |s| > M (then |s − ½| ≥ M + ½).
    let margin = ((read_bound + cf * e_max) / (cf * delta) - 0.5)
        .ceil()
        .max(0.0);
    Some(LinearLabel {
        scale: c,
        max_phase,
        scaled_input_noise: cf * e_max,
        read_std,
        read_bound,
        margin_units: margin as i64,
    })
}
