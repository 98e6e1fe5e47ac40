//! The server half: the [`ServerModel`] (integer weights and lookup tables; secret, only the
//! worker loads it) and encrypted evaluation.
//!
//! Linear layers are levelled LWE arithmetic (integer weights times ciphertexts, no bootstrap,
//! no key). Each hidden neuron costs one programmable bootstrap per output head: centred
//! modulus switch of its accumulator, blind rotation of a lookup table that already contains
//! `activation × output weight`, and sample extraction. Bootstraps run in parallel on rayon.
//!
//! Label answers ([`ServerModel::answer_label`]: every network, and linear models compiled with
//! [`ServerModel::with_label_answers`]) add a key switch and a sign bootstrap, then the
//! sanitising rounds of [`crate::sanitise`].

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::commons::math::random::Seed;
use tfhe::core_crypto::fft_impl::fft64::crypto::bootstrap::bootstrap_scratch;
use tfhe::core_crypto::prelude::*;

use crate::client::{ClientSpec, EncryptedInput, EncryptedOutput, EvaluationKey, ModelMetadata};
use crate::dataset::Dataset;
use crate::error::{FheError, ObjectKind, Result};
use crate::model::FloatModel;
use crate::quant::{self, QuantBody, QuantConfig, Quantised};
use crate::serial;

/// The provider's model as the worker runs it.
pub struct ServerModel {
    spec: ClientSpec,
    body: QuantBody,
    /// Trivial GLWE accumulators, `[head][neuron]`, built from the tables at load time.
    luts: Vec<Vec<Vec<u64>>>,
    /// Same for the earlier hidden layers, `[layer][neuron]`.
    pre_luts: Vec<Vec<Vec<u64>>>,
    /// Linear models: the CRS of the input proofs (its hash is in the spec).
    crs: Option<crate::proof::InputCrs>,
}

/// An input whose proof of correct encryption verified (or that needs none): the only kind
/// [`ServerModel::answer`] and [`ServerModel::answer_label`] accept.
pub struct VerifiedInput<'a>(&'a EncryptedInput);

impl<'a> VerifiedInput<'a> {
    /// An input [`ServerModel::verify_input`] accepted earlier for the same model, whose
    /// verdict the caller kept where nobody else can alter it: the worker verifies at upload
    /// and records the verdict in its authenticated store, so the ≈ 150 ms check is off the
    /// request's critical path. Tests and benchmarks also use it for honestly made inputs.
    /// Calling it on anything else voids the sensitivity bound the noise relies on.
    pub fn assume_verified(input: &'a EncryptedInput) -> Self {
        Self(input)
    }
}

// Weights are secret: Debug prints shapes only, so a stray `{:?}` cannot leak them to logs.
impl std::fmt::Debug for ServerModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerModel")
            .field("kind", &self.spec.metadata.kind)
            .field("features", &self.spec.feature_count())
            .field("outputs", &self.spec.output.count())
            .field("bootstraps", &self.spec.metadata.bootstraps)
            .field("answer", &self.spec.answer)
            .finish_non_exhaustive()
    }
}

#[derive(Serialize, Deserialize)]
struct ServerModelWire {
    spec: ClientSpec,
    body: QuantBody,
    crs: Option<Vec<u8>>,
}

/// An evaluation key expanded and converted to the Fourier domain: what the server keeps per
/// client session. Converting costs about a second, so it is done once, not per input.
pub struct ServerKey {
    spec_id: [u8; 8],
    fourier: FourierLweBootstrapKeyOwned,
    ksk: Option<LweKeyswitchKeyOwned<u64>>,
}

impl ServerModel {
    /// Quantise a float model (calibrating on the train rows) and build the server model.
    pub fn compile(model: &FloatModel, ds: &Dataset, cfg: &QuantConfig) -> Result<Self> {
        let q = quant::quantise(model, ds, cfg)?;
        Self::from_quantised(&q)
    }

    /// The model without input proofs. A linear model must get them
    /// ([`Self::with_input_proofs`]) before a worker can answer with it.
    pub fn from_quantised(q: &Quantised) -> Result<Self> {
        Self::new(ClientSpec::from_quantised(q), q.body.clone(), None)
    }

    /// Linear models: generate the input-proof CRS and record its hash and the encoding offset
    /// in the spec (which changes the spec id and the commitment). Seconds of work (see
    /// `docs/benchmarks.md`), so it is a separate step. Networks are returned unchanged.
    pub fn with_input_proofs(self) -> Result<Self> {
        if !matches!(self.body, QuantBody::Linear { .. }) || self.crs.is_some() {
            return Ok(self);
        }
        let mut spec = self.spec;
        let qmax = spec.input.qmax;
        // Smallest b with 2^b > 2·qmax: [0, 2^b) holds x + qmax for every |x| ≤ qmax.
        let bits = 64 - (2 * qmax.max(1) as u64).leading_zeros();
        let crs = crate::proof::InputCrs::generate(spec.feature_count(), bits)?;
        spec.input_proof = Some(crate::proof::InputProofSpec {
            crs_hash: crs.hash(),
            offset: qmax,
            message_bits: bits,
        });
        Self::new(spec, self.body, Some(crs))
    }

    /// Linear models: answer with the class label instead of the score (the provider's choice,
    /// recorded in the spec, so it changes the spec id and the commitment). A label is
    /// scale-free: d + 1 score answers solve a d-feature linear model, labels only bound it.
    /// The worker then needs the client's evaluation key (bootstrapping and key-switching keys
    /// of the same parameter set) and answers with [`Self::answer_label`]; inputs still carry
    /// their proofs ([`Self::with_input_proofs`], in either order). Networks already answer
    /// with labels and are returned unchanged.
    pub fn with_label_answers(self) -> Result<Self> {
        if !matches!(self.body, QuantBody::Linear { .. }) || self.spec.answers_are_labels() {
            return Ok(self);
        }
        if self.spec.output.count() != 1 {
            return Err(FheError::LabelAnswer(format!(
                "label answers need a binary model ({} outputs)",
                self.spec.output.count()
            )));
        }
        let mut spec = self.spec;
        spec.answer = crate::client::AnswerKind::Label;
        let m = Self::new(spec, self.body, self.crs)?;
        if m.linear_label().is_none() {
            return Err(FheError::LabelAnswer(
                "the score's range or noise leaves no room for a sign bootstrap".into(),
            ));
        }
        Ok(m)
    }

    fn new(spec: ClientSpec, body: QuantBody, crs: Option<crate::proof::InputCrs>) -> Result<Self> {
        spec.validate()?;
        validate_body(&spec, &body)?;
        let linear = matches!(body, QuantBody::Linear { .. });
        let consistent = match (&spec.input_proof, &crs) {
            (Some(p), Some(c)) => linear && p.crs_hash == c.hash(),
            (None, None) => true,
            _ => false,
        };
        if !consistent {
            return Err(FheError::Corrupted {
                kind: ObjectKind::ServerModel,
                reason: "input-proof CRS missing or not the one the spec commits to".into(),
            });
        }
        let (luts, pre_luts) = build_luts(&spec, &body);
        Ok(Self {
            spec,
            body,
            luts,
            pre_luts,
            crs,
        })
    }

    /// The CRS clients prove their inputs with (linear models); public.
    pub fn input_crs(&self) -> Option<&crate::proof::InputCrs> {
        self.crs.as_ref()
    }

    /// Check an input before anything is evaluated: its shape, and for linear models its
    /// proof of correct encryption (values in the box, bounded noise, the public key it
    /// carries well formed under the same secret). Verification costs tens to hundreds of
    /// milliseconds; see `docs/fhe.md`.
    pub fn verify_input<'a>(&self, input: &'a EncryptedInput) -> Result<VerifiedInput<'a>> {
        input.check(&self.spec)?;
        let Some(crs) = &self.crs else {
            if matches!(self.body, QuantBody::Linear { .. }) {
                return Err(FheError::InputRefused(
                    "this linear model was compiled without input proofs and answers nothing"
                        .into(),
                ));
            }
            return Ok(VerifiedInput(input));
        };
        let proof = input.proof.as_deref().ok_or_else(|| {
            FheError::InputRefused("this model needs a proof of correct encryption".into())
        })?;
        let glwe = crate::client::packed_glwe(&self.spec, input);
        let (pk_mask, pk_body) = input.public_key.mask_and_body(self.spec.params);
        crs.verify(
            &crate::proof::Statement {
                pk_mask: &pk_mask,
                pk_body: &pk_body,
                input_mask: glwe.get_mask().as_ref(),
                bodies: &input.bodies,
                spec_id: &input.spec_id,
            },
            proof,
        )?;
        Ok(VerifiedInput(input))
    }

    /// The public half to hand to clients.
    pub fn client_spec(&self) -> &ClientSpec {
        &self.spec
    }

    pub fn metadata(&self) -> &ModelMetadata {
        &self.spec.metadata
    }

    /// Dequantisation step per output (score = integer · scale).
    pub fn output_scale(&self) -> &[f64] {
        &self.spec.output.scale
    }

    /// Largest |offset| [`Self::add_offset`] accepts: the centred output range minus what the
    /// model itself can produce and minus the sanitisation flood (plus one unit of rounding),
    /// so that a sanitised answer still decodes without wrapping.
    pub fn max_offset(&self) -> i64 {
        (self.spec.output.slots / 2) as i64
            - 1
            - self.spec.output.max_abs
            - crate::sanitise::flood_output_units(&self.spec)
            - 1
    }

    /// The flooding of this model's answers and the statistical distance it buys per answer
    /// (`None`: the parameter set cannot afford a flood, see [`crate::sanitise`]).
    pub fn flood_bound(&self) -> Option<crate::sanitise::FloodBound> {
        let QuantBody::Linear { weights, .. } = &self.body else {
            return None;
        };
        if self.spec.answers_are_labels() {
            return None;
        }
        let weight_sum = weights
            .iter()
            .map(|w| w.iter().map(|v| v.unsigned_abs()).sum::<u64>())
            .max()
            .unwrap_or(0);
        let weight_l2 = weights
            .iter()
            .map(|w| w.iter().map(|&v| (v * v) as f64).sum::<f64>().sqrt())
            .fold(0.0, f64::max);
        crate::sanitise::flood_bound(&self.spec, weight_sum, weight_l2)
    }

    /// Label linear models: the scale c of the sign read and the margin around a score of 0
    /// within which the bootstrap's read noise may flip the label (`None` for other models).
    pub fn linear_label(&self) -> Option<crate::sanitise::LinearLabel> {
        let QuantBody::Linear { weights, .. } = &self.body else {
            return None;
        };
        let weight_l2 = weights
            .iter()
            .map(|w| w.iter().map(|&v| (v * v) as f64).sum::<f64>().sqrt())
            .fold(0.0, f64::max);
        crate::sanitise::linear_label(&self.spec, weight_l2)
    }

    /// What the worker returns to a client: the evaluation, plus the DP offsets (output grid
    /// units, see [`Self::add_offset`]), sanitised with the client's public key (which travels
    /// with the input) so that the ciphertext reveals nothing about the weights beyond the
    /// noised output. See [`crate::sanitise`] for the argument and its scope.
    pub fn answer(
        &self,
        input: &VerifiedInput,
        key: Option<&ServerKey>,
        offsets: &[i64],
    ) -> Result<EncryptedOutput> {
        let input = input.0;
        if self.spec.answers_are_labels() {
            return Err(FheError::LabelAnswer(
                "this model answers with labels (a network, or a linear model compiled with \
                 label answers): use answer_label"
                    .into(),
            ));
        }
        let mut out = self.evaluate(input, key)?;
        self.add_offset(&mut out, offsets)?;
        crate::sanitise::sanitise(&mut out, &input.public_key, &self.spec)?;
        Ok(out)
    }

    /// What the worker returns for a binary model that answers with labels (every network, and
    /// linear models compiled with [`Self::with_label_answers`]): the class bit, not the
    /// scores. A network's score ciphertext carries bootstrap noise under the client's own key
    /// as large as one output unit, so it cannot be flooded; the label can. A label linear
    /// model's provider does not release scores at all.
    ///
    /// 1. evaluate, shift by half a unit (a score of exactly 0 is class 0, as in the clear
    ///    model), multiply by the public scale c (1 for networks; for linear models the largest
    ///    c that keeps every accepted input's phase inside the half torus, see
    ///    [`crate::sanitise::LinearLabel`]), key-switch and bootstrap a constant table: the
    ///    sign, as ±1/8 of the torus;
    /// 2. if `flip` (the worker's randomised response), negate it;
    /// 3. [`crate::sanitise::LABEL_ROUNDS`] times: rerandomise with the client's public key,
    ///    flood the body with a uniform on ±2^60, key-switch, bootstrap the same table.
    ///
    /// Each round's output depends on its input only through the bit, up to the statistical
    /// distance in [`crate::sanitise::LabelBound`].
    pub fn answer_label(
        &self,
        input: &VerifiedInput,
        key: &ServerKey,
        flip: bool,
    ) -> Result<EncryptedOutput> {
        let input = input.0;
        let small = self.sign_read(input, key)?;
        let ksk = key.ksk.as_ref().ok_or(FheError::MissingEvaluationKey)?;
        let p = self.spec.params.params();
        let lut = sign_lut(&self.spec);
        let mut bit = self.bootstrap_one(small, &lut, key);
        if flip {
            bit.iter_mut().for_each(|c| *c = c.wrapping_neg());
        }
        let mut sanitiser = crate::sanitise::Sanitiser::new(&input.public_key, &self.spec)?;
        for _ in 0..crate::sanitise::LABEL_ROUNDS {
            sanitiser.apply(&mut bit, Some(crate::sanitise::LABEL_LOG2_FLOOD));
            let small = key_switch(&self.spec, &bit, ksk);
            bit = self.bootstrap_one(small, &lut, key);
        }
        Ok(EncryptedOutput {
            spec_id: self.spec.id(),
            lwe_size: p.big_lwe_dimension().to_lwe_size().0,
            data: bit,
        })
    }

    /// Step 1 of [`Self::answer_label`] up to the bootstrap: the evaluated score, shifted by
    /// half a unit, scaled by c and key-switched to the small key.
    fn sign_read(&self, input: &EncryptedInput, key: &ServerKey) -> Result<Vec<u64>> {
        if !self.spec.answers_are_labels() {
            return Err(FheError::LabelAnswer(
                "this model answers with scores: use answer".into(),
            ));
        }
        if self.spec.output.count() != 1 {
            return Err(FheError::LabelAnswer(format!(
                "label answers need a binary model ({} outputs)",
                self.spec.output.count()
            )));
        }
        if key.spec_id != self.spec.id() {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EvaluationKey,
                reason: "prepared for another model".into(),
            });
        }
        let ksk = key.ksk.as_ref().ok_or(FheError::MissingEvaluationKey)?;
        let scale = if self.spec.is_linear() {
            crate::sanitise::linear_label_scale(&self.spec).ok_or_else(|| {
                FheError::LabelAnswer("no scale fits this model's score range".into())
            })?
        } else {
            1
        };
        let mut ct = self.evaluate(input, Some(key))?.data;
        let body = ct.len() - 1;
        ct[body] = ct[body].wrapping_sub(self.spec.output_delta / 2);
        if scale != 1 {
            ct.iter_mut().for_each(|c| *c = c.wrapping_mul(scale));
        }
        Ok(key_switch(&self.spec, &ct, ksk))
    }

    /// The small-key ciphertext the sign bootstrap of a label answer reads (test hook for the
    /// read-noise measurement: a ciphertext, nothing secret).
    #[doc(hidden)]
    pub fn debug_sign_read(&self, input: &EncryptedInput, key: &ServerKey) -> Result<Vec<u64>> {
        self.sign_read(input, key)
    }

    /// Bootstrap one small-key ciphertext with `lut`.
    fn bootstrap_one(&self, small: Vec<u64>, lut: &[u64], key: &ServerKey) -> Vec<u64> {
        let accs = vec![small];
        let luts = vec![vec![lut.to_vec()]];
        self.bootstrap(&accs, &[(0, 0)], &luts, key)
            .pop()
            .unwrap_or_default()
    }

    pub fn bootstrap_count(&self) -> usize {
        self.body.bootstrap_count()
    }

    /// Clear evaluation of the integer model on an already quantised input: the reference the
    /// encrypted result must equal.
    pub fn eval_clear_quantised(&self, x_q: &[i64]) -> Vec<i64> {
        quant::eval_clear(&self.body, x_q, &self.spec.output)
    }

    /// Clear evaluation on a raw feature vector.
    pub fn eval_clear(&self, x: &[f64]) -> Result<Vec<i64>> {
        let q = self.spec.input.quantise(x)?;
        Ok(self.eval_clear_quantised(&q))
    }

    /// The clear label a label answer encrypts (before randomised response) for a binary
    /// model: 1 iff the single output integer is > 0 (a score of exactly 0 is class 0, as the
    /// clear model's argmax decides).
    pub fn clear_label_quantised(&self, x_q: &[i64]) -> usize {
        quant::clear_label(&self.eval_clear_quantised(x_q))
    }

    /// [`Self::clear_label_quantised`] on a raw feature vector.
    pub fn clear_label(&self, x: &[f64]) -> Result<usize> {
        let q = self.spec.input.quantise(x)?;
        Ok(self.clear_label_quantised(&q))
    }

    /// The integer accumulators entering the bootstraps, in the clear (test hook).
    #[doc(hidden)]
    pub fn debug_accumulator_values(&self, x_q: &[i64]) -> Vec<i64> {
        match &self.body {
            QuantBody::Network { weights, bias, .. } => weights
                .iter()
                .zip(bias)
                .map(|(w, b)| w.iter().zip(x_q).map(|(a, x)| a * x).sum::<i64>() + b)
                .collect(),
            QuantBody::Linear { .. } => vec![],
        }
    }

    /// Canonical encoding, for handing the model to the provider's worker over an authenticated
    /// channel. Plaintext weights: never write it to disk; [`crate::store::seal_model`] does.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        serial::encode(
            ObjectKind::ServerModel,
            &ServerModelWire {
                spec: self.spec.clone(),
                body: self.body.clone(),
                crs: self.crs.as_ref().map(|c| c.raw().to_vec()),
            },
        )
    }

    /// Inverse of [`Self::canonical_bytes`]; validates the model.
    pub fn from_canonical_bytes(bytes: &[u8]) -> Result<Self> {
        let w: ServerModelWire = serial::decode(ObjectKind::ServerModel, bytes)?;
        let crs = match (&w.spec.input_proof, w.crs) {
            (Some(p), Some(raw)) => Some(crate::proof::InputCrs::from_inner(raw, &p.crs_hash)?),
            _ => None,
        };
        Self::new(w.spec, w.body, crs)
    }

    /// BLAKE2b-256 over the canonical encoding: what gets registered on chain.
    pub fn commitment(&self) -> [u8; 32] {
        let mut h = Blake2b::<U32>::new();
        h.update(b"smidl-fhe/server-model/v1");
        h.update(self.canonical_bytes());
        h.finalize().into()
    }

    /// Expand and convert a client's evaluation key.
    pub fn prepare_key(&self, ek: &EvaluationKey) -> Result<ServerKey> {
        ek.check(&self.spec)?;
        let p = self.spec.params.params();
        let seeded = SeededLweBootstrapKey::from_container(
            ek.data.as_slice(),
            p.glwe_dimension.to_glwe_size(),
            p.polynomial_size,
            p.pbs_base_log,
            p.pbs_level,
            Seed(ek.seed).into(),
            p.ciphertext_modulus(),
        );
        let mut std_bsk = LweBootstrapKey::new(
            0u64,
            p.glwe_dimension.to_glwe_size(),
            p.polynomial_size,
            p.pbs_base_log,
            p.pbs_level,
            p.lwe_dimension,
            p.ciphertext_modulus(),
        );
        par_decompress_seeded_lwe_bootstrap_key::<_, _, _, DefaultRandomGenerator>(
            &mut std_bsk,
            &seeded,
        );
        let mut fourier = FourierLweBootstrapKey::new(
            p.lwe_dimension,
            p.glwe_dimension.to_glwe_size(),
            p.polynomial_size,
            p.pbs_base_log,
            p.pbs_level,
        );
        par_convert_standard_lwe_bootstrap_key_to_fourier(&std_bsk, &mut fourier);
        let ksk = (!ek.ksk.is_empty()).then(|| {
            SeededLweKeyswitchKey::from_container(
                ek.ksk.as_slice(),
                p.ks_base_log,
                p.ks_level,
                p.lwe_dimension.to_lwe_size(),
                Seed(ek.ksk_seed).into(),
                p.ciphertext_modulus(),
            )
            .par_decompress_into_lwe_keyswitch_key()
        });
        Ok(ServerKey {
            spec_id: ek.spec_id,
            fourier,
            ksk,
        })
    }

    /// Evaluate the model on an encrypted input. The result is **not sanitised**: its mask and
    /// noise depend on the weights. Never hand it to a client; [`Self::answer`] is what the
    /// worker returns. Public for tests, benchmarks and the attack test that keeps this path
    /// honest.
    pub fn evaluate(
        &self,
        input: &EncryptedInput,
        key: Option<&ServerKey>,
    ) -> Result<EncryptedOutput> {
        if self.spec.metadata.bootstraps > 0 && key.is_none() {
            return Err(FheError::MissingEvaluationKey);
        }
        if key.is_some_and(|k| k.spec_id != self.spec.id()) {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EvaluationKey,
                reason: "prepared for another model".into(),
            });
        }
        Ok(self.evaluate_inner(input, key)?.0)
    }

    /// The encrypted accumulators that enter the bootstraps (the levelled part only). Test and
    /// bench hook for noise measurements: they are ciphertexts, so nothing secret leaks.
    #[doc(hidden)]
    pub fn accumulators(&self, input: &EncryptedInput) -> Result<Vec<Vec<u64>>> {
        match self.body {
            QuantBody::Network { .. } => Ok(self.evaluate_inner(input, None)?.1),
            QuantBody::Linear { .. } => Ok(vec![]),
        }
    }

    fn evaluate_inner(
        &self,
        input: &EncryptedInput,
        key: Option<&ServerKey>,
    ) -> Result<(EncryptedOutput, Vec<Vec<u64>>)> {
        input.check(&self.spec)?;
        let p = self.spec.params.params();
        let out_size = p.big_lwe_dimension().to_lwe_size().0;
        if let QuantBody::Linear { weights, bias } = &self.body {
            let data = self.linear_packed(input, weights, bias);
            return Ok((
                EncryptedOutput {
                    spec_id: self.spec.id(),
                    data,
                    lwe_size: out_size,
                },
                vec![],
            ));
        }
        let in_size = p.input_lwe_dimension().to_lwe_size();
        let seeded = SeededLweCiphertextList::from_container(
            input.bodies.as_slice(),
            in_size,
            Seed(input.seed).into(),
            p.ciphertext_modulus(),
        );
        let cts = seeded.par_decompress_into_lwe_ciphertext_list();
        let cts: Vec<&[u64]> = cts.as_ref().chunks_exact(in_size.0).collect();
        match &self.body {
            QuantBody::Linear { .. } => unreachable!("handled above"),
            QuantBody::Network {
                pre,
                weights,
                bias,
                window,
                head_bias,
                ..
            } => {
                // Earlier layers: levelled affine map, key switch back to the small key when
                // the inputs are bootstrap outputs, then one bootstrap per neuron.
                let mut big: Option<Vec<Vec<u64>>> = None;
                for (l, layer) in pre.iter().enumerate() {
                    let key = key.ok_or(FheError::MissingEvaluationKey)?;
                    let delta = crate::params::delta_for_slots(2 * layer.window as u64);
                    let accs = self.layer_accumulators(
                        &cts,
                        big.as_deref(),
                        &layer.weights,
                        &layer.bias,
                        delta,
                        key,
                    )?;
                    let jobs: Vec<(usize, usize)> = (0..accs.len()).map(|i| (l, i)).collect();
                    big = Some(self.bootstrap(&accs, &jobs, &self.pre_luts, key));
                }
                let delta = crate::params::delta_for_slots(2 * *window as u64);
                let accs = match key {
                    Some(k) => {
                        self.layer_accumulators(&cts, big.as_deref(), weights, bias, delta, k)?
                    }
                    None => {
                        // Only reachable through `accumulators` (single-layer networks);
                        // `evaluate` checks for the key first.
                        let accs = weights
                            .par_iter()
                            .zip(bias)
                            .map(|(w, &b)| affine(&cts, w, b, delta))
                            .collect();
                        return Ok((
                            EncryptedOutput {
                                spec_id: self.spec.id(),
                                data: vec![],
                                lwe_size: out_size,
                            },
                            accs,
                        ));
                    }
                };
                let key = key.ok_or(FheError::MissingEvaluationKey)?;
                let jobs: Vec<(usize, usize)> = (0..self.luts.len())
                    .flat_map(|h| (0..accs.len()).map(move |i| (h, i)))
                    .collect();
                let extracted = self.bootstrap(&accs, &jobs, &self.luts, key);
                let n = accs.len();
                let mut data = vec![0u64; out_size * head_bias.len()];
                for (h, c) in head_bias.iter().enumerate() {
                    let o = &mut data[h * out_size..(h + 1) * out_size];
                    for e in &extracted[h * n..(h + 1) * n] {
                        for (a, b) in o.iter_mut().zip(e) {
                            *a = a.wrapping_add(*b);
                        }
                    }
                    o[out_size - 1] = o[out_size - 1]
                        .wrapping_add((*c as u64).wrapping_mul(self.spec.output_delta));
                }
                Ok((
                    EncryptedOutput {
                        spec_id: self.spec.id(),
                        data,
                        lwe_size: out_size,
                    },
                    accs,
                ))
            }
        }
    }

    /// Accumulators of one bootstrapped layer, under the small key: from the client's inputs
    /// directly, or from the previous layer's bootstrap outputs followed by a key switch.
    fn layer_accumulators(
        &self,
        inputs: &[&[u64]],
        big: Option<&[Vec<u64>]>,
        weights: &[Vec<i64>],
        bias: &[i64],
        delta: u64,
        key: &ServerKey,
    ) -> Result<Vec<Vec<u64>>> {
        let Some(big) = big else {
            return Ok(weights
                .par_iter()
                .zip(bias)
                .map(|(w, &b)| affine(inputs, w, b, delta))
                .collect());
        };
        let ksk = key.ksk.as_ref().ok_or(FheError::MissingEvaluationKey)?;
        let p = self.spec.params.params();
        let big: Vec<&[u64]> = big.iter().map(Vec::as_slice).collect();
        Ok(weights
            .par_iter()
            .zip(bias)
            .map(|(w, &b)| {
                let acc = affine(&big, w, b, delta);
                let acc = LweCiphertext::from_container(acc, p.ciphertext_modulus());
                let mut small =
                    LweCiphertext::new(0u64, p.lwe_dimension.to_lwe_size(), p.ciphertext_modulus());
                keyswitch_lwe_ciphertext(ksk, &acc, &mut small);
                small.into_container()
            })
            .collect())
    }

    /// Run `jobs` = (table set, neuron) bootstraps in parallel: centred modulus switch, blind
    /// rotation of the table, sample extraction.
    fn bootstrap(
        &self,
        accs: &[Vec<u64>],
        jobs: &[(usize, usize)],
        luts: &[Vec<Vec<u64>>],
        key: &ServerKey,
    ) -> Vec<Vec<u64>> {
        let p = self.spec.params.params();
        let glwe_size = p.glwe_dimension.to_glwe_size();
        let poly = p.polynomial_size;
        let log_mod = poly.to_blind_rotation_input_modulus_log();
        let modulus = p.ciphertext_modulus();
        let out_size = p.big_lwe_dimension().to_lwe_size().0;
        jobs.par_iter()
            .map_init(
                || {
                    let fft = Fft::new(poly);
                    let mut buf = ComputationBuffers::new();
                    buf.resize(
                        bootstrap_scratch::<u64>(glwe_size, poly, fft.as_view())
                            .unaligned_bytes_required(),
                    );
                    (fft, buf)
                },
                |(fft, buf), &(h, i)| {
                    let ct = LweCiphertext::from_container(accs[i].as_slice(), modulus);
                    let ms =
                        lwe_ciphertext_centered_binary_modulus_switch::<u64, usize, _>(ct, log_mod);
                    let mut acc = GlweCiphertext::from_container(luts[h][i].clone(), poly, modulus);
                    blind_rotate_assign_mem_optimized(
                        &ms,
                        &mut acc,
                        &key.fourier,
                        fft.as_view(),
                        buf.stack(),
                    );
                    let mut out = LweCiphertext::new(0u64, LweSize(out_size), modulus);
                    extract_lwe_sample_from_glwe_ciphertext(&acc, &mut out, MonomialDegree(0));
                    out.into_container()
                },
            )
            .collect()
    }

    /// Linear layer on a packed GLWE input: multiply by Σ_j w_j·X^(−j) and extract coefficient
    /// 0, which holds Σ_j w_j·x_j. Only coefficient 0 of the body product is needed, so only
    /// the first `features` body coefficients travel.
    fn linear_packed(
        &self,
        input: &EncryptedInput,
        weights: &[Vec<i64>],
        bias: &[i64],
    ) -> Vec<u64> {
        let p = self.spec.params.params();
        let n = p.polynomial_size.0;
        let glwe_size = p.glwe_dimension.to_glwe_size();
        let modulus = p.ciphertext_modulus();
        let glwe = crate::client::packed_glwe(&self.spec, input);
        let out_size = p.big_lwe_dimension().to_lwe_size().0;
        let mut data = Vec::with_capacity(out_size * weights.len());
        for (w, &b) in weights.iter().zip(bias) {
            let mut prod = GlweCiphertext::new(0u64, glwe_size, p.polynomial_size, modulus);
            for (mut out_poly, in_poly) in prod
                .as_mut_polynomial_list()
                .iter_mut()
                .zip(glwe.as_polynomial_list().iter())
            {
                let out = out_poly.as_mut();
                let a = in_poly.as_ref();
                for (j, &wj) in w.iter().enumerate() {
                    if wj == 0 {
                        continue;
                    }
                    let wu = wj as u64;
                    // (A·X^(−j))_k = A_(k+j), negated once k + j wraps past N.
                    for (o, &v) in out[..n - j].iter_mut().zip(&a[j..]) {
                        *o = o.wrapping_add(v.wrapping_mul(wu));
                    }
                    for (o, &v) in out[n - j..].iter_mut().zip(&a[..j]) {
                        *o = o.wrapping_sub(v.wrapping_mul(wu));
                    }
                }
            }
            {
                // Proven inputs encrypt x + offset: Σ w_j·(x_j + offset) − offset·Σ w_j.
                let shift = self.spec.input_offset().wrapping_mul(w.iter().sum::<i64>());
                let mut pb = prod.get_mut_body();
                let c0 = &mut pb.as_mut()[0];
                *c0 = c0.wrapping_add(
                    (b.wrapping_sub(shift) as u64).wrapping_mul(self.spec.input_delta),
                );
            }
            let mut lwe = LweCiphertext::new(0u64, LweSize(out_size), modulus);
            extract_lwe_sample_from_glwe_ciphertext(&prod, &mut lwe, MonomialDegree(0));
            data.extend_from_slice(lwe.as_ref());
        }
        data
    }

    /// Add plaintext integers (on the output grid) to the encrypted outputs: how the worker
    /// adds differential-privacy noise. Convert a score-unit amount with [`Self::output_scale`].
    pub fn add_offset(&self, out: &mut EncryptedOutput, offsets: &[i64]) -> Result<()> {
        if out.spec_id != self.spec.id() || out.count() != self.spec.output.count() {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EncryptedOutput,
                reason: "not an output of this model".into(),
            });
        }
        if offsets.len() != out.count() {
            return Err(FheError::OffsetOutOfRange {
                reason: format!("{} offsets for {} outputs", offsets.len(), out.count()),
            });
        }
        let max = self.max_offset().max(0);
        if let Some(o) = offsets.iter().find(|o| o.unsigned_abs() > max as u64) {
            return Err(FheError::OffsetOutOfRange {
                reason: format!("|{o}| > {max}"),
            });
        }
        let size = out.lwe_size;
        for (h, &o) in offsets.iter().enumerate() {
            let body = &mut out.data[(h + 1) * size - 1];
            *body = body.wrapping_add((o as u64).wrapping_mul(self.spec.output_delta));
        }
        Ok(())
    }
}

/// Key switch one big-key ciphertext to the small key.
fn key_switch(spec: &ClientSpec, big: &[u64], ksk: &LweKeyswitchKeyOwned<u64>) -> Vec<u64> {
    let p = spec.params.params();
    let modulus = p.ciphertext_modulus();
    let ct = LweCiphertext::from_container(big, modulus);
    let mut small = LweCiphertext::new(0u64, p.lwe_dimension.to_lwe_size(), modulus);
    // One ciphertext at a time on the answer's critical path: split it over the cores.
    par_keyswitch_lwe_ciphertext(ksk, &ct, &mut small);
    small.into_container()
}

/// A constant table of +1/8: the negacyclic bootstrap returns +1/8 for a phase in [0, ½) and
/// −1/8 for [½, 1), i.e. the sign.
fn sign_lut(spec: &ClientSpec) -> Vec<u64> {
    let p = spec.params.params();
    let (n, k) = (p.polynomial_size.0, p.glwe_dimension.0);
    let mut glwe = vec![0u64; (k + 1) * n];
    glwe[k * n..].fill(crate::sanitise::LABEL_BIT);
    glwe
}

/// Σ_j w_j·ct_j + b·Δ over LWE ciphertexts (levelled, no noise beyond the weights').
fn affine(cts: &[&[u64]], w: &[i64], b: i64, delta: u64) -> Vec<u64> {
    let size = cts.first().map_or(1, |c| c.len());
    let mut acc = vec![0u64; size];
    for (c, &wj) in cts.iter().zip(w) {
        if wj == 0 {
            continue;
        }
        let wu = wj as u64;
        for (a, v) in acc.iter_mut().zip(c.iter()) {
            *a = a.wrapping_add(v.wrapping_mul(wu));
        }
    }
    acc[size - 1] = acc[size - 1].wrapping_add((b as u64).wrapping_mul(delta));
    acc
}

fn validate_body(spec: &ClientSpec, body: &QuantBody) -> Result<()> {
    let bad = |r: String| FheError::Corrupted {
        kind: ObjectKind::ServerModel,
        reason: r,
    };
    let f = spec.feature_count();
    let k = spec.output.count();
    let p = spec.params.params();
    let rows_ok = |w: &[Vec<i64>], b: &[i64]| {
        w.len() == b.len()
            && w.iter().all(|r| r.len() == f)
            && w.iter()
                .flatten()
                .chain(b)
                .all(|v| v.unsigned_abs() <= quant::MAX_INT as u64)
    };
    match body {
        QuantBody::Linear { weights, bias } => {
            if spec.params != crate::params::ParamSetId::Leveled2048
                || weights.len() != k
                || !rows_ok(weights, bias)
            {
                return Err(bad("linear shape".into()));
            }
        }
        QuantBody::Network {
            pre,
            weights,
            bias,
            window,
            tables,
            head_bias,
        } => {
            let m = *window as usize;
            let mut width = f;
            for l in pre {
                let lm = l.window as usize;
                if l.weights.is_empty()
                    || l.weights.len() != l.bias.len()
                    || l.tables.len() != l.weights.len()
                    || l.weights.iter().any(|r| r.len() != width)
                    || !(2..=p.polynomial_size.0).contains(&lm)
                    || l.tables.iter().any(|t| t.len() != lm)
                    || l.weights
                        .iter()
                        .flatten()
                        .chain(&l.bias)
                        .chain(l.tables.iter().flatten())
                        .any(|v| v.unsigned_abs() > quant::MAX_INT as u64)
                {
                    return Err(bad("hidden layer shape".into()));
                }
                width = l.weights.len();
            }
            let rows_ok = |w: &[Vec<i64>], b: &[i64]| {
                w.len() == b.len()
                    && w.iter().all(|r| r.len() == width)
                    && w.iter()
                        .flatten()
                        .chain(b)
                        .all(|v| v.unsigned_abs() <= quant::MAX_INT as u64)
            };
            if spec.params != crate::params::ParamSetId::Pbs4096
                || !rows_ok(weights, bias)
                || weights.is_empty()
                || weights.len() > crate::dataset::MAX_FEATURES
                || !(2..=p.polynomial_size.0).contains(&m)
                || tables.len() != k
                || head_bias.len() != k
                || tables
                    .iter()
                    .any(|t| t.len() != weights.len() || t.iter().any(|r| r.len() != m))
                || tables
                    .iter()
                    .flatten()
                    .flatten()
                    .chain(head_bias)
                    .any(|v| v.unsigned_abs() > quant::MAX_INT as u64)
            {
                return Err(bad("network shape".into()));
            }
            if spec.metadata.pbs_layers as usize != pre.len() + 1 {
                return Err(bad("layer count".into()));
            }
            let m = body.first_window().unwrap_or(*window) as usize;
            if spec.input_delta != crate::params::delta_for_slots(2 * m as u64) {
                return Err(bad("input encoding does not match the window".into()));
            }
            if spec.metadata.bootstraps as usize != body.bootstrap_count() {
                return Err(bad("bootstrap count".into()));
            }
        }
    }
    Ok(())
}

/// Lay each table out on the N coefficients of a GLWE body so that the blind rotation by the
/// (centred) modulus-switched accumulator reads `table[acc]`.
type Luts = Vec<Vec<Vec<u64>>>;

/// Lay each table out on the N coefficients of a GLWE body so that the blind rotation by the
/// (centred) modulus-switched accumulator reads `table[acc]`. Returns the final layer's
/// `[head][neuron]` and the earlier layers' `[layer][neuron]` accumulators; an earlier layer's
/// outputs are encoded for the next layer's window.
fn build_luts(spec: &ClientSpec, body: &QuantBody) -> (Luts, Luts) {
    let QuantBody::Network {
        pre,
        window,
        tables,
        ..
    } = body
    else {
        return (vec![], vec![]);
    };
    let p = spec.params.params();
    let n = p.polynomial_size.0;
    let k = p.glwe_dimension.0;
    let lut = |t: &[i64], delta: u64| -> Vec<u64> {
        let m = t.len();
        let mut glwe = vec![0u64; (k + 1) * n];
        for (j, c) in glwe[k * n..].iter_mut().enumerate() {
            // Value a sits at position a·N/M − ½ after the centred switch; take the nearest
            // centre. Position N belongs to a = M ≡ −table[0].
            let a = (((2 * j + 1) * m + n) / (2 * n)).min(m);
            let v = if a < m { t[a] } else { t[0].wrapping_neg() };
            *c = (v as u64).wrapping_mul(delta);
        }
        glwe
    };
    let last = tables
        .iter()
        .map(|head| head.iter().map(|t| lut(t, spec.output_delta)).collect())
        .collect();
    let earlier = pre
        .iter()
        .enumerate()
        .map(|(l, layer)| {
            let next_window = pre.get(l + 1).map_or(*window, |x| x.window);
            let delta = crate::params::delta_for_slots(2 * next_window as u64);
            layer.tables.iter().map(|t| lut(t, delta)).collect()
        })
        .collect();
    (last, earlier)
}
