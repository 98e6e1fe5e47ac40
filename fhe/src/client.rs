//! The client half: the public [`ClientSpec`] (input quantisation, encodings, parameters; no
//! weights), the secret [`ClientKey`], and the ciphertext types it produces and reads.

use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use serde::{Deserialize, Serialize};
use tfhe::core_crypto::prelude::*;
use zeroize::Zeroize;

use crate::error::{FheError, ObjectKind, Result};
use crate::model::{sigmoid, softmax, ModelKind};
use crate::params::{InputKey, ParamSetId};
use crate::quant::{centred, InputQuant, OutputDecode, OutputQuant, Quantised};
use crate::sanitise::PublicKey;
use crate::serial;

/// Public facts about the model, recorded in both halves (and committed to on chain through
/// the server model's commitment).
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ModelMetadata {
    pub kind: ModelKind,
    pub feature_count: u32,
    /// Number of training rows n.
    pub train_rows: u64,
    /// L2 regularisation λ (objective mean(loss) + λ/2·|w|²).
    pub l2_lambda: f64,
    /// Bound R on the L2 norm of the standardised features (clipped by the client), if any.
    /// For L2-regularised LR the DP sensitivity of the parameters (weights and intercept) is 2√(R²+1)/(nλ); see `sensitivity`.
    pub clip_norm: Option<f64>,
    /// Programmable bootstraps per evaluated sample.
    pub bootstraps: u32,
    /// Bootstrapped layers (0 for linear models); more than one needs a key-switching key.
    pub pbs_layers: u32,
}

/// What the worker returns for a query (fixed when the model is compiled, recorded in the
/// public [`ClientSpec`] and so covered by the model's commitment).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AnswerKind {
    /// The score plus the worker's DP offset, rerandomised and flooded
    /// ([`crate::ServerModel::answer`]). Linear models only.
    Score,
    /// The class label under randomised response, sanitised by bootstrapping rounds
    /// ([`crate::ServerModel::answer_label`]). Every network; linear models compiled with
    /// [`crate::ServerModel::with_label_answers`] (a label is scale-free: d + 1 score answers
    /// solve a d-feature linear model, labels do not).
    Label,
}

/// What a client needs to encrypt inputs and decode outputs. Public: contains no weights.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct ClientSpec {
    pub params: ParamSetId,
    pub metadata: ModelMetadata,
    pub input: InputQuant,
    /// Torus scaling of one input unit.
    pub input_delta: u64,
    pub output: OutputQuant,
    /// Torus scaling of one output unit.
    pub output_delta: u64,
    /// Bits per output coefficient after the server's final modulus switch.
    pub output_bits: u32,
    /// Linear models: inputs carry a zero-knowledge proof that they encrypt values in the box
    /// (see [`crate::proof`]); `None` for networks, whose outputs are bounded for every input.
    pub input_proof: Option<crate::proof::InputProofSpec>,
    /// Score or label answers: networks always answer with labels, linear models with scores
    /// unless compiled with [`crate::ServerModel::with_label_answers`].
    pub answer: AnswerKind,
}

impl ClientSpec {
    pub(crate) fn from_quantised(q: &Quantised) -> Self {
        Self {
            params: q.params,
            metadata: ModelMetadata {
                kind: q.kind,
                feature_count: q.input.feature_count() as u32,
                train_rows: q.train_rows as u64,
                l2_lambda: q.l2_lambda,
                clip_norm: q.input.clip_norm,
                bootstraps: q.body.bootstrap_count() as u32,
                pbs_layers: match &q.body {
                    crate::quant::QuantBody::Linear { .. } => 0,
                    crate::quant::QuantBody::Network { pre, .. } => pre.len() as u32 + 1,
                },
            },
            input: q.input.clone(),
            input_delta: q.input_delta,
            output: q.output.clone(),
            output_delta: q.output_delta,
            output_bits: q.output_bits,
            input_proof: None,
            answer: match &q.body {
                crate::quant::QuantBody::Linear { .. } => AnswerKind::Score,
                crate::quant::QuantBody::Network { .. } => AnswerKind::Label,
            },
        }
    }

    /// The largest |x_q,j| an accepted input can carry: `qmax` for the quantiser, `qmax + 1`
    /// for proven inputs (the proof's box is [−qmax, 2^bits − 1 − qmax] = [−qmax, qmax + 1]).
    /// What the DP sensitivity and the output range are computed with.
    pub fn input_bound(&self) -> i64 {
        match &self.input_proof {
            Some(p) => self.input.qmax.max((1i64 << p.message_bits) - 1 - p.offset),
            None => self.input.qmax,
        }
    }

    /// What the client adds to each quantised feature before encrypting (0 without proofs).
    pub fn input_offset(&self) -> i64 {
        self.input_proof.map_or(0, |p| p.offset)
    }

    pub fn feature_count(&self) -> usize {
        self.input.feature_count()
    }

    /// A linear model (levelled evaluation on a packed GLWE input, no bootstrapped layer).
    pub fn is_linear(&self) -> bool {
        self.metadata.pbs_layers == 0
    }

    /// Networks bootstrap every neuron, and every label answer (networks and label linear
    /// models) bootstraps the sign: they need the client's evaluation key. Score-answering
    /// linear models need none.
    pub fn needs_evaluation_key(&self) -> bool {
        self.metadata.bootstraps > 0 || self.answers_are_labels()
    }

    /// Every label answer key-switches (before the sign bootstrap and in each sanitising round),
    /// and so do networks between bootstrapped layers.
    pub fn needs_keyswitch_key(&self) -> bool {
        self.metadata.pbs_layers >= 1 || self.answers_are_labels()
    }

    /// Networks, and linear models compiled with label answers, answer with a sanitised class
    /// label; other linear models with a sanitised score (see `smidl_fhe::sanitise`).
    pub fn answers_are_labels(&self) -> bool {
        self.answer == AnswerKind::Label
    }

    /// Dequantisation step of each output (score = integer · scale): the worker converts DP
    /// noise expressed in score units into integer offsets with it.
    pub fn output_scale(&self) -> &[f64] {
        &self.output.scale
    }

    /// 8-byte fingerprint binding ciphertexts and keys to this spec.
    pub fn id(&self) -> [u8; 8] {
        let mut h = Blake2b::<U32>::new();
        h.update(b"smidl-fhe/client-spec/v1");
        h.update(serial::encode(ObjectKind::ClientSpec, self));
        let d = h.finalize();
        let mut id = [0u8; 8];
        id.copy_from_slice(&d[..8]);
        id
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serial::encode(ObjectKind::ClientSpec, self)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let s: Self = serial::decode(ObjectKind::ClientSpec, bytes)?;
        s.validate()?;
        Ok(s)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        let bad = |r: &str| FheError::Corrupted {
            kind: ObjectKind::ClientSpec,
            reason: r.into(),
        };
        let f = self.feature_count();
        if f == 0 || f > crate::dataset::MAX_FEATURES || self.metadata.feature_count as usize != f {
            return Err(bad("feature count"));
        }
        let p = self.params.params();
        if p.input_key == InputKey::GlwePacked && f > p.polynomial_size.0 {
            return Err(bad("more features than GLWE coefficients"));
        }
        let n = &self.input.normaliser;
        if n.std.len() != f
            || n.std.iter().any(|s| !s.is_finite() || *s == 0.0)
            || n.mean.iter().any(|m| !m.is_finite())
        {
            return Err(bad("normaliser"));
        }
        if !(self.input.scale.is_finite()
            && self.input.scale > 0.0
            && (1..=1 << 20).contains(&self.input.qmax))
        {
            return Err(bad("input quantiser"));
        }
        if self
            .input
            .clip_norm
            .is_some_and(|r| !(r.is_finite() && r > 0.0))
        {
            return Err(bad("clip norm"));
        }
        let k = self.output.count();
        if k == 0 || k > 64 || self.output.scale.iter().any(|s| !s.is_finite()) {
            return Err(bad("output count"));
        }
        let expected_k = match self.output.decode {
            OutputDecode::Sigmoid => 1,
            OutputDecode::SoftmaxRelativeToFirst { classes } => (classes as usize)
                .checked_sub(1)
                .ok_or_else(|| bad("classes"))?,
            OutputDecode::Identity => k,
        };
        if expected_k != k {
            return Err(bad("output decode"));
        }
        if self.output.slots < 2
            || self.output_delta == 0
            || self.input_delta == 0
            || !(8..=64).contains(&self.output_bits)
            || self.output.max_abs < 0
            || self.output.max_abs >= (self.output.slots / 2) as i64
        {
            return Err(bad("encoding"));
        }
        if self.is_linear() != (self.params == crate::params::ParamSetId::Leveled2048) {
            return Err(bad("parameter set"));
        }
        if !self.is_linear() && self.answer != AnswerKind::Label {
            return Err(bad("networks answer with labels"));
        }
        if self.is_linear() && self.metadata.bootstraps != 0 {
            return Err(bad("bootstrap count"));
        }
        if self.is_linear() && self.answers_are_labels() {
            // The sign of the single score must be readable by a bootstrap.
            crate::sanitise::linear_label_scale(self)
                .ok_or_else(|| bad("label answers: the score range leaves no room to scale"))?;
            if self.output.count() != 1 {
                return Err(bad("label answers need a binary model (one output)"));
            }
        }
        Ok(())
    }
}

/// Decrypted and decoded result.
#[derive(Clone, Debug, PartialEq)]
pub struct Prediction {
    /// The integers on the output grid (what the server computed, offsets included).
    pub raw: Vec<i64>,
    /// Dequantised scores: one logit for a sigmoid model, `[0, l_1, ..]` (relative logits) for
    /// softmax, raw scores for identity.
    pub scores: Vec<f64>,
    /// Class probabilities (empty for identity outputs).
    pub probabilities: Vec<f64>,
    pub class: usize,
}

/// Turn dequantised output values into a prediction.
pub fn decode_scores(decode: OutputDecode, values: &[f64]) -> Prediction {
    let (scores, probabilities) = match decode {
        OutputDecode::Sigmoid => {
            let p = sigmoid(values[0]);
            (values.to_vec(), vec![1.0 - p, p])
        }
        OutputDecode::SoftmaxRelativeToFirst { .. } => {
            let mut s = vec![0.0];
            s.extend_from_slice(values);
            let p = softmax(&s);
            (s, p)
        }
        OutputDecode::Identity => (values.to_vec(), vec![]),
    };
    let class = if probabilities.is_empty() {
        crate::model::argmax(&scores)
    } else {
        crate::model::argmax(&probabilities)
    };
    Prediction {
        raw: vec![],
        scores,
        probabilities,
        class,
    }
}

/// The client's secret keys. Never leaves the client; no `Debug`.
pub struct ClientKey {
    spec: ClientSpec,
    lwe: LweSecretKeyOwned<u64>,
    glwe: GlweSecretKeyOwned<u64>,
    /// Public key of the output key; travels with every input so the worker can rerandomise.
    public: PublicKey,
    /// Its noise `e_pk` (secret: a witness of the input proofs).
    public_noise: Vec<u64>,
}

impl Drop for ClientKey {
    fn drop(&mut self) {
        self.lwe.as_mut().zeroize();
        self.glwe.as_mut().zeroize();
        self.public_noise.zeroize();
    }
}

#[derive(Serialize, Deserialize)]
struct ClientKeyWire {
    spec: ClientSpec,
    lwe: Vec<u64>,
    glwe: Vec<u64>,
    public: PublicKey,
}

impl Drop for ClientKeyWire {
    fn drop(&mut self) {
        self.lwe.zeroize();
        self.glwe.zeroize();
    }
}

/// Seeded bootstrap key (and, for every label answer, a seeded key-switching key): what the
/// client uploads so the server can bootstrap.
pub struct EvaluationKey {
    pub(crate) spec_id: [u8; 8],
    pub(crate) seed: u128,
    pub(crate) data: Vec<u64>,
    pub(crate) ksk_seed: u128,
    /// Empty unless the spec needs a key switch.
    pub(crate) ksk: Vec<u64>,
}

#[derive(Serialize, Deserialize)]
struct EvaluationKeyWire {
    spec_id: [u8; 8],
    seed: u128,
    data: Vec<u64>,
    ksk_seed: u128,
    ksk: Vec<u64>,
}

/// A compactly encrypted feature vector: one LWE body per feature and a 128-bit seed from
/// which the server regenerates the masks, plus the client's public key, which the worker
/// needs to sanitise the answer (see [`crate::sanitise`]).
#[derive(Clone, Serialize, Deserialize)]
pub struct EncryptedInput {
    pub(crate) spec_id: [u8; 8],
    pub(crate) seed: u128,
    pub(crate) bodies: Vec<u64>,
    pub(crate) public_key: PublicKey,
    /// Serialised zero-knowledge proof of correct encryption (linear models).
    pub(crate) proof: Option<Vec<u8>>,
}

/// Encrypted model outputs, one LWE ciphertext per output under the client's GLWE key.
#[derive(Clone)]
pub struct EncryptedOutput {
    pub(crate) spec_id: [u8; 8],
    /// `count` ciphertexts of `lwe_size` coefficients each, concatenated.
    pub(crate) data: Vec<u64>,
    pub(crate) lwe_size: usize,
}

#[derive(Serialize, Deserialize)]
struct EncryptedOutputWire {
    spec_id: [u8; 8],
    bits: u32,
    count: u32,
    lwe_size: u32,
    packed: Vec<u8>,
}

impl ClientKey {
    /// Generate fresh secret keys for a spec (the client's own randomness).
    pub fn generate(spec: &ClientSpec) -> Result<Self> {
        spec.validate()?;
        let p = spec.params.params();
        let mut seeder = new_seeder();
        let mut sg = SecretRandomGenerator::<DefaultRandomGenerator>::new(seeder.as_mut().seed());
        let lwe = allocate_and_generate_new_binary_lwe_secret_key(p.lwe_dimension, &mut sg);
        let glwe = allocate_and_generate_new_binary_glwe_secret_key(
            p.glwe_dimension,
            p.polynomial_size,
            &mut sg,
        );
        let public = PublicKey::generate(&glwe.as_lwe_secret_key(), spec.params);
        let public_noise = public.noise(glwe.as_ref(), spec.params);
        Ok(Self {
            spec: spec.clone(),
            lwe,
            glwe,
            public,
            public_noise,
        })
    }

    /// The public key that travels with every input (for the worker's rerandomisation).
    pub fn public_key(&self) -> &PublicKey {
        &self.public
    }

    pub fn spec(&self) -> &ClientSpec {
        &self.spec
    }

    /// The seeded bootstrap key (and key-switching key where needed), or `None` when the model
    /// needs none (score-answering linear models: then the server gets no key material at
    /// all). Label-answering linear models get the bootstrapping and key-switching keys of
    /// their own parameter set (the set's small key n = 918).
    pub fn evaluation_key(&self) -> Option<EvaluationKey> {
        if !self.spec.needs_evaluation_key() {
            return None;
        }
        let p = self.spec.params.params();
        let mut seeder = new_seeder();
        let seeder = seeder.as_mut();
        let seed = seeder.seed();
        let mut bsk = SeededLweBootstrapKeyOwned::new(
            0u64,
            p.glwe_dimension.to_glwe_size(),
            p.polynomial_size,
            p.pbs_base_log,
            p.pbs_level,
            p.lwe_dimension,
            seed.into(),
            p.ciphertext_modulus(),
        );
        par_generate_seeded_lwe_bootstrap_key(
            &self.lwe,
            &self.glwe,
            &mut bsk,
            p.glwe_noise,
            seeder,
        );
        let ksk_seed = seeder.seed();
        let ksk = if self.spec.needs_keyswitch_key() {
            let mut ksk = SeededLweKeyswitchKeyOwned::new(
                0u64,
                p.ks_base_log,
                p.ks_level,
                p.big_lwe_dimension(),
                p.lwe_dimension,
                ksk_seed.into(),
                p.ciphertext_modulus(),
            );
            generate_seeded_lwe_keyswitch_key(
                &self.glwe.as_lwe_secret_key(),
                &self.lwe,
                &mut ksk,
                p.lwe_noise,
                seeder,
            );
            ksk.into_container()
        } else {
            vec![]
        };
        Some(EvaluationKey {
            spec_id: self.spec.id(),
            seed: seed.0,
            data: bsk.into_container(),
            ksk_seed: ksk_seed.0,
            ksk,
        })
    }

    /// Quantise and encrypt one raw feature vector (without an input proof: a linear model's
    /// worker refuses such an input, see [`Self::encrypt_proven`]).
    pub fn encrypt(&self, features: &[f64]) -> Result<EncryptedInput> {
        let q = self.spec.input.quantise(features)?;
        self.encrypt_quantised(&q)
    }

    /// Quantise, encrypt and prove (linear models): the input carries a zero-knowledge proof
    /// that it encrypts values in the published box under the key of this client's public key.
    /// Seconds of work on the client; see `docs/fhe.md` for the measured cost.
    pub fn encrypt_proven(
        &self,
        features: &[f64],
        crs: &crate::proof::InputCrs,
    ) -> Result<EncryptedInput> {
        let q = self.spec.input.quantise(features)?;
        self.encrypt_quantised_proven(&q, crs)
    }

    /// [`Self::encrypt_proven`] for an already quantised vector. Values outside the proven box
    /// cannot be proven: that is an error, not a proof.
    pub fn encrypt_quantised_proven(
        &self,
        q: &[i64],
        crs: &crate::proof::InputCrs,
    ) -> Result<EncryptedInput> {
        let Some(ps) = self.spec.input_proof else {
            return Err(FheError::Proof("this model takes no input proofs".into()));
        };
        if crs.hash() != ps.crs_hash {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::InputCrs,
                reason: "not the CRS this model commits to".into(),
            });
        }
        let top = (1i64 << ps.message_bits) - 1 - ps.offset;
        if let Some(j) = q.iter().position(|&v| v < -ps.offset || v > top) {
            return Err(FheError::Proof(format!(
                "feature {j} is {}, outside the proven box [{}, {top}]",
                q[j], -ps.offset
            )));
        }
        let mut input = self.encrypt_quantised(q)?;
        let (mask, errors) = self.own_input_view(&input, q);
        let messages: Vec<u64> = q.iter().map(|&v| (v + ps.offset) as u64).collect();
        let (pk_mask, pk_body) = self.public.mask_and_body(self.spec.params);
        let errors: Vec<u64> = errors.iter().map(|&e| e as u64).collect();
        let proof = crs.prove(
            &crate::proof::Statement {
                pk_mask: &pk_mask,
                pk_body: &pk_body,
                input_mask: &mask,
                bodies: &input.bodies,
                spec_id: &input.spec_id,
            },
            &crate::proof::Witness {
                secret: self.glwe.as_ref(),
                pk_noise: &self.public_noise,
                errors: &errors,
                messages: &messages,
            },
        )?;
        input.proof = Some(proof);
        Ok(input)
    }

    /// Encrypt an already quantised vector (values are taken as-is, no proof).
    pub fn encrypt_quantised(&self, q: &[i64]) -> Result<EncryptedInput> {
        if q.len() != self.spec.feature_count() {
            return Err(FheError::FeatureCount {
                expected: self.spec.feature_count(),
                got: q.len(),
            });
        }
        let p = self.spec.params.params();
        let delta = self.spec.input_delta;
        let offset = self.spec.input_offset();
        let encoded: Vec<u64> = q
            .iter()
            .map(|&v| (v.wrapping_add(offset) as u64).wrapping_mul(delta))
            .collect();
        let mut seeder = new_seeder();
        let seeder = seeder.as_mut();
        let seed = seeder.seed();
        let bodies = match p.input_key {
            InputKey::Lwe => {
                let mut list = SeededLweCiphertextListOwned::new(
                    0u64,
                    p.input_lwe_dimension().to_lwe_size(),
                    LweCiphertextCount(q.len()),
                    seed.into(),
                    p.ciphertext_modulus(),
                );
                par_encrypt_seeded_lwe_ciphertext_list(
                    &self.lwe,
                    &mut list,
                    &PlaintextList::from_container(encoded),
                    p.input_noise(),
                    seeder,
                );
                list.into_container()
            }
            InputKey::GlwePacked => {
                let n = p.polynomial_size.0;
                let mut plain = vec![0u64; n];
                plain[..encoded.len()].copy_from_slice(&encoded);
                let mut glwe = SeededGlweCiphertextOwned::new(
                    0u64,
                    p.glwe_dimension.to_glwe_size(),
                    p.polynomial_size,
                    seed.into(),
                    p.ciphertext_modulus(),
                );
                encrypt_seeded_glwe_ciphertext(
                    &self.glwe,
                    &mut glwe,
                    &PlaintextList::from_container(plain),
                    p.input_noise(),
                    seeder,
                );
                // Only the coefficients carrying features are sent: the server needs no other.
                let mut body = glwe.into_container();
                body.truncate(q.len());
                body
            }
        };
        Ok(EncryptedInput {
            spec_id: self.spec.id(),
            seed: seed.0,
            bodies,
            public_key: self.public.clone(),
            proof: None,
        })
    }

    /// Decrypt the output integers (on the output grid, centred).
    pub fn decrypt_raw(&self, out: &EncryptedOutput) -> Result<Vec<i64>> {
        let delta = self.spec.output_delta as u128;
        let slots = self.spec.output.slots;
        Ok(self
            .output_phases(out)?
            .into_iter()
            .map(|phase| {
                let q = ((phase as u128 + delta / 2) / delta) as u64 % slots;
                centred(q as i64, slots)
            })
            .collect())
    }

    /// Decrypt and decode: dequantised scores, probabilities, class.
    pub fn decrypt(&self, out: &EncryptedOutput) -> Result<Prediction> {
        let raw = self.decrypt_raw(out)?;
        let values: Vec<f64> = raw
            .iter()
            .zip(&self.spec.output.scale)
            .map(|(&v, s)| v as f64 * s)
            .collect();
        let mut p = decode_scores(self.spec.output.decode, &values);
        p.raw = raw;
        Ok(p)
    }

    /// Decrypt what the worker returned: a score answer (as [`Self::decrypt`]) or a class label
    /// (networks and label linear models; scores and probabilities empty).
    pub fn decrypt_answer(&self, out: &EncryptedOutput) -> Result<Prediction> {
        if !self.spec.answers_are_labels() {
            return self.decrypt(out);
        }
        self.check_output(out)?;
        let phase = self.output_phases(out)?[0];
        // +1/8 (class 1) or −1/8 (class 0); the decision boundary is the half torus.
        let class = usize::from(phase < 1 << 63);
        Ok(Prediction {
            raw: vec![class as i64],
            scores: vec![],
            probabilities: vec![],
            class,
        })
    }

    fn check_output(&self, out: &EncryptedOutput) -> Result<()> {
        let p = self.spec.params.params();
        if out.spec_id != self.spec.id() {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EncryptedOutput,
                reason: "made for another model".into(),
            });
        }
        if out.lwe_size != p.big_lwe_dimension().to_lwe_size().0
            || out.data.len() != out.lwe_size * self.spec.output.count()
        {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EncryptedOutput,
                reason: "ciphertext shape".into(),
            });
        }
        Ok(())
    }

    /// Secret key bytes, for the client's own storage.
    pub fn to_bytes(&self) -> Vec<u8> {
        let w = ClientKeyWire {
            spec: self.spec.clone(),
            lwe: self.lwe.as_ref().to_vec(),
            glwe: self.glwe.as_ref().to_vec(),
            public: self.public.clone(),
        };
        serial::encode(ObjectKind::ClientKey, &w)
    }

    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let w: ClientKeyWire = serial::decode(ObjectKind::ClientKey, bytes)?;
        w.spec.validate()?;
        let p = w.spec.params.params();
        let binary = |v: &[u64]| v.iter().all(|&b| b <= 1);
        if w.lwe.len() != p.lwe_dimension.0
            || w.glwe.len() != p.big_lwe_dimension().0
            || !binary(&w.lwe)
            || !binary(&w.glwe)
        {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::ClientKey,
                reason: "key shape".into(),
            });
        }
        w.public.check(&w.spec, ObjectKind::ClientKey)?;
        let public_noise = w.public.noise(&w.glwe, w.spec.params);
        Ok(Self {
            spec: w.spec.clone(),
            lwe: LweSecretKey::from_container(w.lwe.clone()),
            glwe: GlweSecretKey::from_container(w.glwe.clone(), p.polynomial_size),
            public: w.public.clone(),
            public_noise,
        })
    }

    /// What a client knows about its own packed (linear-model) input: the mask polynomial it
    /// expands from its seed, and the error of each feature's body, `B_j − (A·s)_j − Δ·x_j`.
    /// Attack-test hook: it computes nothing a client could not compute itself.
    #[doc(hidden)]
    pub fn own_input_view(&self, input: &EncryptedInput, x_q: &[i64]) -> (Vec<u64>, Vec<i64>) {
        let p = self.spec.params.params();
        if p.input_key != InputKey::GlwePacked {
            return (vec![], vec![]);
        }
        let n = p.polynomial_size.0;
        let glwe = packed_glwe(&self.spec, input);
        let mask = glwe.get_mask().as_ref().to_vec();
        let mut plain = PlaintextList::new(0u64, PlaintextCount(n));
        decrypt_glwe_ciphertext(&self.glwe, &glwe, &mut plain);
        let errors = plain
            .as_ref()
            .iter()
            .zip(x_q)
            .map(|(&ph, &x)| {
                let m = x.wrapping_add(self.spec.input_offset()) as u64;
                ph.wrapping_sub(m.wrapping_mul(self.spec.input_delta)) as i64
            })
            .collect();
        (mask, errors)
    }

    /// The exact phase of each output ciphertext (body − ⟨mask, s⟩, 2^64 units): what the
    /// client's decryption starts from (and what the attack tests read).
    pub fn output_phases(&self, out: &EncryptedOutput) -> Result<Vec<u64>> {
        self.check_output(out)?;
        let big = self.glwe.as_lwe_secret_key();
        Ok(out
            .data
            .chunks_exact(out.lwe_size)
            .map(|c| {
                let ct = LweCiphertext::from_container(
                    c,
                    self.spec.params.params().ciphertext_modulus(),
                );
                decrypt_lwe_ciphertext(&big, &ct).0
            })
            .collect())
    }

    /// Test and bench hook: the phase error, in units of "positions" of the blind rotation
    /// (1/2N of the torus), of the centred modulus switch the server applies to `acc`.
    #[doc(hidden)]
    pub fn mod_switch_error_positions(&self, acc: &[u64], expected_phase: u64) -> f64 {
        let p = self.spec.params.params();
        let log = p.polynomial_size.to_blind_rotation_input_modulus_log();
        let ct = LweCiphertext::from_container(acc, p.ciphertext_modulus());
        let ms = lwe_ciphertext_centered_binary_modulus_switch::<u64, u64, _>(ct, log);
        let two_n = 1u64 << log.0;
        let mut phase = ms.body();
        for (a, s) in ms.mask().zip(self.lwe.as_ref()) {
            phase = phase.wrapping_sub(a.wrapping_mul(*s));
        }
        let phase = phase % two_n;
        // Expected position: the exact phase scaled to 2N, minus the half position the
        // centred switch subtracts.
        let exact = expected_phase as f64 / 2f64.powi(64) * two_n as f64 - 0.5;
        let mut d = phase as f64 - exact;
        d -= (d / two_n as f64).round() * two_n as f64;
        d
    }
}

/// The packed input as a full GLWE ciphertext: the mask expanded from the seed, the sent
/// bodies, zeros elsewhere.
pub(crate) fn packed_glwe(spec: &ClientSpec, input: &EncryptedInput) -> GlweCiphertextOwned<u64> {
    let p = spec.params.params();
    let n = p.polynomial_size.0;
    let mut body = vec![0u64; n];
    let k = input.bodies.len().min(n);
    body[..k].copy_from_slice(&input.bodies[..k]);
    let seeded = SeededGlweCiphertext::from_container(
        body,
        p.glwe_dimension.to_glwe_size(),
        tfhe::core_crypto::commons::math::random::Seed(input.seed).into(),
        p.ciphertext_modulus(),
    );
    seeded.decompress_into_glwe_ciphertext()
}

impl EvaluationKey {
    pub fn to_bytes(&self) -> Vec<u8> {
        serial::encode(
            ObjectKind::EvaluationKey,
            &EvaluationKeyWire {
                spec_id: self.spec_id,
                seed: self.seed,
                data: self.data.clone(),
                ksk_seed: self.ksk_seed,
                ksk: self.ksk.clone(),
            },
        )
    }

    /// Decode with limits; the shape is checked against `spec`.
    pub fn from_bytes(bytes: &[u8], spec: &ClientSpec) -> Result<Self> {
        let w: EvaluationKeyWire = serial::decode(ObjectKind::EvaluationKey, bytes)?;
        let k = Self {
            spec_id: w.spec_id,
            seed: w.seed,
            data: w.data,
            ksk_seed: w.ksk_seed,
            ksk: w.ksk,
        };
        k.check(spec)?;
        Ok(k)
    }

    pub(crate) fn check(&self, spec: &ClientSpec) -> Result<()> {
        let p = spec.params.params();
        if !spec.needs_evaluation_key() {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EvaluationKey,
                reason: "this model uses no evaluation key".into(),
            });
        }
        if self.spec_id != spec.id() {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EvaluationKey,
                reason: "made for another model".into(),
            });
        }
        let expected = p.lwe_dimension.0
            * p.glwe_dimension.to_glwe_size().0
            * p.pbs_level.0
            * p.polynomial_size.0;
        if self.data.len() != expected {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EvaluationKey,
                reason: format!("{} coefficients, expected {expected}", self.data.len()),
            });
        }
        let expected_ksk = if spec.needs_keyswitch_key() {
            p.big_lwe_dimension().0 * p.ks_level.0
        } else {
            0
        };
        if self.ksk.len() != expected_ksk {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EvaluationKey,
                reason: format!(
                    "key-switching key: {} coefficients, expected {expected_ksk}",
                    self.ksk.len()
                ),
            });
        }
        Ok(())
    }

    pub fn size_bytes(&self) -> usize {
        (self.data.len() + self.ksk.len()) * 8
    }
}

impl EncryptedInput {
    /// The attached proof of correct encryption, if any.
    pub fn proof(&self) -> Option<&[u8]> {
        self.proof.as_deref()
    }

    /// Attach arbitrary proof bytes: what anyone crafting an input can do (attack tests).
    #[doc(hidden)]
    pub fn set_proof(&mut self, proof: Option<Vec<u8>>) {
        self.proof = proof;
    }

    pub fn to_bytes(&self) -> Vec<u8> {
        serial::encode(ObjectKind::EncryptedInput, self)
    }

    /// Decode with limits; the shape is checked against `spec`.
    pub fn from_bytes(bytes: &[u8], spec: &ClientSpec) -> Result<Self> {
        let c: Self = serial::decode(ObjectKind::EncryptedInput, bytes)?;
        c.check(spec)?;
        Ok(c)
    }

    pub(crate) fn check(&self, spec: &ClientSpec) -> Result<()> {
        if self.spec_id != spec.id() {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EncryptedInput,
                reason: "encrypted for another model".into(),
            });
        }
        if self.bodies.len() != spec.feature_count() {
            return Err(FheError::WrongParameters {
                kind: ObjectKind::EncryptedInput,
                reason: format!(
                    "{} ciphertexts, expected {}",
                    self.bodies.len(),
                    spec.feature_count()
                ),
            });
        }
        self.public_key.check(spec, ObjectKind::EncryptedInput)
    }
}

impl EncryptedOutput {
    /// Serialise, keeping only the top `spec.output_bits` bits of each coefficient (a modulus
    /// switch whose rounding noise the encoding was sized for).
    pub fn to_bytes(&self, spec: &ClientSpec) -> Vec<u8> {
        let w = EncryptedOutputWire {
            spec_id: self.spec_id,
            bits: spec.output_bits,
            count: (self.data.len() / self.lwe_size.max(1)) as u32,
            lwe_size: self.lwe_size as u32,
            packed: serial::pack_top_bits(&self.data, spec.output_bits),
        };
        serial::encode(ObjectKind::EncryptedOutput, &w)
    }

    pub fn from_bytes(bytes: &[u8], spec: &ClientSpec) -> Result<Self> {
        let w: EncryptedOutputWire = serial::decode(ObjectKind::EncryptedOutput, bytes)?;
        let p = spec.params.params();
        let lwe_size = p.big_lwe_dimension().to_lwe_size().0;
        let wrong = |r: &str| FheError::WrongParameters {
            kind: ObjectKind::EncryptedOutput,
            reason: r.into(),
        };
        if w.spec_id != spec.id() {
            return Err(wrong("made for another model"));
        }
        if w.bits != spec.output_bits
            || w.lwe_size as usize != lwe_size
            || w.count as usize != spec.output.count()
        {
            return Err(wrong("shape"));
        }
        let nbytes = w.bits.div_ceil(8) as usize;
        if w.packed.len() != nbytes * lwe_size * w.count as usize {
            return Err(FheError::Corrupted {
                kind: ObjectKind::EncryptedOutput,
                reason: "packed length".into(),
            });
        }
        Ok(Self {
            spec_id: w.spec_id,
            data: serial::unpack_top_bits(&w.packed, w.bits),
            lwe_size,
        })
    }

    pub fn count(&self) -> usize {
        self.data.len() / self.lwe_size.max(1)
    }

    /// The ciphertext coefficients (`count` LWE ciphertexts of `lwe_size` coefficients: mask,
    /// then body), as the client holds them after [`Self::from_bytes`].
    pub fn coefficients(&self) -> &[u64] {
        &self.data
    }

    pub fn lwe_size(&self) -> usize {
        self.lwe_size
    }
}
