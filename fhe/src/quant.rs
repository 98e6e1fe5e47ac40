//! Quantisation: turns a float model into an integer model, which is *the specification* the
//! encrypted evaluation must reproduce exactly.
//!
//! Two shapes are supported:
//! * linear models (logistic regression): `score = W·x_q + b`, evaluated with levelled LWE
//!   arithmetic only;
//! * networks: `acc_i = W_i·x_q + b_i` (levelled), then one programmable bootstrap per neuron
//!   evaluates a table on `acc_i` modulo the bootstrap's window. Earlier hidden layers' tables
//!   output requantised activations (`PbsLayer`); the output layer is folded into the last
//!   hidden layer's tables: `out_h = Σ_i T_hi(acc_i) + c_h`.
//!
//! The wrap-around semantics of the bootstrap (a value outside the window `[0, M)` reads the
//! table negacyclically) are part of the specification, so the clear model matches the
//! encrypted one for every input, not only for inputs seen during calibration.

use serde::{Deserialize, Serialize};

use crate::dataset::Dataset;
use crate::error::{FheError, Result};
use crate::model::{Activation, FloatModel, ModelKind, Normaliser, OutputTransform};
use crate::params::{CryptoParams, ParamSetId, DESIGN_LOG2_P_FAIL};

/// Client-side input quantisation: `x_q = clamp(round(z / scale), -qmax, qmax)` where `z` is the
/// standardised (and norm-clipped) feature vector.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct InputQuant {
    pub normaliser: Normaliser,
    pub clip_norm: Option<f64>,
    pub scale: f64,
    pub qmax: i64,
}

impl InputQuant {
    pub fn feature_count(&self) -> usize {
        self.normaliser.mean.len()
    }

    pub fn quantise(&self, x: &[f64]) -> Result<Vec<i64>> {
        if x.len() != self.feature_count() {
            return Err(FheError::FeatureCount {
                expected: self.feature_count(),
                got: x.len(),
            });
        }
        if let Some(index) = x.iter().position(|v| !v.is_finite()) {
            return Err(FheError::NonFiniteFeature { index });
        }
        let mut z = self.normaliser.apply(x);
        if let Some(r) = self.clip_norm {
            crate::model::clip_norm(&mut z, r);
        }
        Ok(z.iter()
            .map(|v| ((v / self.scale).round() as i64).clamp(-self.qmax, self.qmax))
            .collect())
    }
}

/// How the client turns decrypted integers into scores and probabilities.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputDecode {
    /// One output: the logit of class 1.
    Sigmoid,
    /// `classes − 1` outputs: logits of classes 1.. relative to class 0 (softmax is shift
    /// invariant, so this is exact and saves one bootstrap per neuron for two classes).
    SoftmaxRelativeToFirst { classes: u32 },
    /// Raw scores.
    Identity,
}

/// Integer encoding of the outputs.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct OutputQuant {
    pub decode: OutputDecode,
    /// Dequantisation: score_h = q_h · scale[h].
    pub scale: Vec<f64>,
    /// Outputs are integers modulo `slots` (decoded to the centred range).
    pub slots: u64,
    /// Largest |q_h| the model itself can produce; the rest of the centred range is headroom
    /// for the worker's offsets.
    pub max_abs: i64,
}

impl OutputQuant {
    pub fn count(&self) -> usize {
        self.scale.len()
    }
}

/// The integer computation the server performs.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub enum QuantBody {
    Linear {
        weights: Vec<Vec<i64>>,
        bias: Vec<i64>,
    },
    Network {
        /// Earlier hidden layers (deep networks): each bootstraps to requantised activations.
        pre: Vec<PbsLayer>,
        /// Last hidden layer: acc_i = weights[i]·h + bias[i] (the window offset is folded into
        /// the bias), where h is the input or the last `pre` layer's output.
        weights: Vec<Vec<i64>>,
        bias: Vec<i64>,
        window: u32,
        /// tables[h][i][a] for a in 0..window.
        tables: Vec<Vec<Vec<i64>>>,
        head_bias: Vec<i64>,
    },
}

/// A hidden layer whose bootstraps output requantised activations `h_i = tables[i][acc_i]`.
#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct PbsLayer {
    pub weights: Vec<Vec<i64>>,
    pub bias: Vec<i64>,
    pub window: u32,
    pub tables: Vec<Vec<i64>>,
}

impl PbsLayer {
    fn forward(&self, x: &[i64]) -> Vec<i64> {
        self.weights
            .iter()
            .zip(&self.bias)
            .zip(&self.tables)
            .map(|((w, b), t)| table_lookup(t, dot_i(w, x).wrapping_add(*b)))
            .collect()
    }
}

impl QuantBody {
    pub fn bootstrap_count(&self) -> usize {
        match self {
            Self::Linear { .. } => 0,
            Self::Network { pre, tables, .. } => {
                pre.iter().map(|l| l.tables.len()).sum::<usize>()
                    + tables.iter().map(Vec::len).sum::<usize>()
            }
        }
    }

    /// Window of the first bootstrapped layer (fixes the input encoding).
    pub fn first_window(&self) -> Option<u32> {
        match self {
            Self::Linear { .. } => None,
            Self::Network { pre, window, .. } => Some(pre.first().map_or(*window, |l| l.window)),
        }
    }
}

/// The bootstrap's view of an accumulator: the table read negacyclically modulo 2M.
pub fn table_lookup(table: &[i64], acc: i64) -> i64 {
    let m = table.len() as i64;
    let v = acc.rem_euclid(2 * m);
    if v < m {
        table[v as usize]
    } else {
        table[(v - m) as usize].wrapping_neg()
    }
}

/// Centred representative of `v` modulo `slots`.
pub fn centred(v: i64, slots: u64) -> i64 {
    let s = slots as i128;
    let r = (v as i128).rem_euclid(s);
    (if r >= (s + 1) / 2 { r - s } else { r }) as i64
}

/// Clear evaluation of the integer model: the reference the FHE result must equal.
pub fn eval_clear(body: &QuantBody, x_q: &[i64], out: &OutputQuant) -> Vec<i64> {
    match body {
        QuantBody::Linear { weights, bias } => weights
            .iter()
            .zip(bias)
            .map(|(w, b)| centred(dot_i(w, x_q).wrapping_add(*b), out.slots))
            .collect(),
        QuantBody::Network {
            pre,
            weights,
            bias,
            tables,
            head_bias,
            ..
        } => {
            let mut h = x_q.to_vec();
            for l in pre {
                h = l.forward(&h);
            }
            let acc: Vec<i64> = weights
                .iter()
                .zip(bias)
                .map(|(w, b)| dot_i(w, &h).wrapping_add(*b))
                .collect();
            tables
                .iter()
                .zip(head_bias)
                .map(|(t, c)| {
                    let s = t
                        .iter()
                        .zip(&acc)
                        .fold(0i64, |s, (ti, &a)| s.wrapping_add(table_lookup(ti, a)));
                    centred(s.wrapping_add(*c), out.slots)
                })
                .collect()
        }
    }
}

/// The label a binary model's label answer encrypts, from its clear output integers: 1 iff the
/// (single) output is > 0. A score of exactly 0 is class 0, as `decode_scores`' argmax decides
/// (sigmoid: p = ½ for both classes, the first wins; two-class softmax: logits [0, 0]).
pub fn clear_label(out: &[i64]) -> usize {
    usize::from(out.first().is_some_and(|&v| v > 0))
}

// Wrapping, like the ciphertext arithmetic (mod 2^64); never reached with calibrated models.
fn dot_i(w: &[i64], x: &[i64]) -> i64 {
    w.iter()
        .zip(x)
        .fold(0i64, |s, (a, b)| s.wrapping_add(a.wrapping_mul(*b)))
}

/// Largest |integer| a compiled model may contain: keeps every clear computation far from
/// i64 overflow and inside the plaintext spaces.
pub const MAX_INT: i64 = 1 << 40;

fn check_ints<'a>(vals: impl IntoIterator<Item = &'a i64>) -> Result<()> {
    if vals.into_iter().any(|v| v.unsigned_abs() > MAX_INT as u64) {
        return Err(FheError::Quant("integer weights out of range".into()));
    }
    Ok(())
}

/// Knobs of the quantiser. `None` means "search on the train rows".
#[derive(Clone, Debug, Default)]
pub struct QuantConfig {
    pub input_bits: Option<u32>,
    /// Linear models only (network weights are sized by the bootstrap window).
    pub weight_bits: Option<u32>,
    /// Input clip range in standard deviations.
    pub input_range: Option<f64>,
    /// Skip greedy neuron pruning (on by default: fewer bootstraps).
    pub no_prune: bool,
}

/// Result of quantising: everything but the keys.
#[derive(Clone)]
pub struct Quantised {
    pub params: ParamSetId,
    pub kind: ModelKind,
    pub input: InputQuant,
    /// Plaintext scaling of one input unit on the torus.
    pub input_delta: u64,
    pub body: QuantBody,
    pub output: OutputQuant,
    /// Plaintext scaling of one output unit.
    pub output_delta: u64,
    /// Bits kept per output ciphertext coefficient after the final modulus switch.
    pub output_bits: u32,
    pub train_rows: usize,
    pub l2_lambda: f64,
    /// Hidden neurons of the float model kept in the integer model (networks only).
    pub neurons: Vec<usize>,
}

impl Quantised {
    pub fn eval_clear(&self, x: &[f64]) -> Result<Vec<i64>> {
        let q = self.input.quantise(x)?;
        Ok(eval_clear(&self.body, &q, &self.output))
    }

    /// Dequantised scores (logits) for given output integers.
    pub fn scores(&self, q: &[i64]) -> Vec<f64> {
        q.iter()
            .zip(&self.output.scale)
            .map(|(&v, s)| v as f64 * s)
            .collect()
    }

    /// The clear label of a binary model (what a label answer encrypts before randomised
    /// response): see [`clear_label`].
    pub fn clear_label(&self, x: &[f64]) -> Result<usize> {
        Ok(clear_label(&self.eval_clear(x)?))
    }

    pub fn predict_class(&self, x: &[f64]) -> Result<usize> {
        let q = self.eval_clear(x)?;
        Ok(crate::client::decode_scores(self.output.decode, &self.scores(&q)).class)
    }

    pub fn accuracy(&self, xs: &[Vec<f64>], ys: &[u8]) -> Result<f64> {
        let mut ok = 0;
        for (x, &y) in xs.iter().zip(ys) {
            if self.predict_class(x)? == y as usize {
                ok += 1;
            }
        }
        Ok(ok as f64 / xs.len().max(1) as f64)
    }
}

/// Quantise a float model, calibrating on `ds`'s train rows only.
pub fn quantise(model: &FloatModel, ds: &Dataset, cfg: &QuantConfig) -> Result<Quantised> {
    model.validate()?;
    if model.feature_count() != ds.feature_count() {
        return Err(FheError::Quant(
            "model and data set disagree on features".into(),
        ));
    }
    match model.layers.len() {
        1 => quantise_linear(model, ds, cfg),
        n if n <= 5 => quantise_network(model, ds, cfg),
        n => Err(FheError::Quant(format!(
            "{n} layers: at most 4 hidden layers"
        ))),
    }
}

fn decode_of(model: &FloatModel) -> OutputDecode {
    let k = model.layers.last().map_or(0, |l| l.outputs());
    match model.output {
        OutputTransform::Sigmoid => OutputDecode::Sigmoid,
        OutputTransform::Softmax => OutputDecode::SoftmaxRelativeToFirst { classes: k as u32 },
        OutputTransform::Identity => OutputDecode::Identity,
    }
}

/// Output heads (weight rows and biases over the last layer's inputs) after the
/// relative-to-first rewrite of softmax.
fn heads(model: &FloatModel) -> (Vec<Vec<f64>>, Vec<f64>) {
    let last = &model.layers[model.layers.len() - 1];
    match model.output {
        OutputTransform::Softmax => (1..last.outputs())
            .map(|h| {
                let w = last.weights[h]
                    .iter()
                    .zip(&last.weights[0])
                    .map(|(a, b)| a - b)
                    .collect();
                (w, last.bias[h] - last.bias[0])
            })
            .unzip(),
        _ => (last.weights.clone(), last.bias.clone()),
    }
}

fn standardised_train(model: &FloatModel, ds: &Dataset) -> Vec<Vec<f64>> {
    ds.train_x.iter().map(|x| model.preprocess(x)).collect()
}

fn input_quant(model: &FloatModel, bits: u32, range: f64) -> InputQuant {
    let qmax = (1i64 << (bits - 1)) - 1;
    InputQuant {
        normaliser: model.normaliser.clone(),
        clip_norm: model.clip_norm,
        scale: range / qmax as f64,
        qmax,
    }
}

fn quantise_linear(model: &FloatModel, ds: &Dataset, cfg: &QuantConfig) -> Result<Quantised> {
    let params = ParamSetId::Leveled2048;
    let p = params.params();
    let input_bits = cfg.input_bits.unwrap_or(8);
    let weight_bits = cfg.weight_bits.unwrap_or(8);
    if !(2..=16).contains(&input_bits) || !(2..=16).contains(&weight_bits) {
        return Err(FheError::Quant("bits must be in 2..=16".into()));
    }
    let (rows, biases) = heads(model);
    let ranges: Vec<f64> = match cfg.input_range {
        Some(r) => vec![r],
        None => vec![2.0, 3.0, 4.0, 5.0, 6.0, 8.0],
    };
    let wq = (1i64 << (weight_bits - 1)) - 1;
    let mut best: Option<(f64, Quantised)> = None;
    for range in ranges {
        let input = input_quant(model, input_bits, range);
        let wmax = rows.iter().flatten().fold(0.0f64, |a, v| a.max(v.abs()));
        let ws = if wmax > 0.0 { wmax / wq as f64 } else { 1.0 };
        let weights: Vec<Vec<i64>> = rows
            .iter()
            .map(|r| r.iter().map(|v| (v / ws).round() as i64).collect())
            .collect();
        let bias: Vec<i64> = biases
            .iter()
            .map(|b| (b / (ws * input.scale)).round() as i64)
            .collect();
        check_ints(weights.iter().flatten().chain(&bias))?;
        // Noise is bounded (TUniform): worst case Σ|w|·bound, plus the output modulus switch.
        let bound = p
            .input_noise_bound()
            .ok_or_else(|| FheError::Quant("levelled set needs bounded noise".into()))?
            as f64;
        let output_bits = 40u32;
        let l1 = weights
            .iter()
            .map(|r| r.iter().map(|v| v.unsigned_abs() as f64).sum::<f64>())
            .fold(0.0, f64::max);
        let ms_bound =
            (p.input_lwe_dimension().0 as f64 + 1.0) * 2f64.powi(64 - output_bits as i32 - 1);
        let noise_max = l1 * bound + ms_bound;
        // Smallest power of two with Δ/2 > worst-case noise: decryption is always exact.
        let delta_log = (2.0 * noise_max).log2().floor() as i32 + 1;
        if !(1..=56).contains(&delta_log) {
            return Err(FheError::Quant("noise leaves no plaintext space".into()));
        }
        let slots = 1u64 << (64 - delta_log);
        let max_abs = weights
            .iter()
            .zip(&bias)
            // qmax + 1: the input proof's box is [−qmax, qmax + 1] (`ClientSpec::input_bound`).
            .map(|(r, b)| r.iter().map(|w| w.abs() * (input.qmax + 1)).sum::<i64>() + b.abs())
            .max()
            .unwrap_or(0);
        if max_abs >= (slots / 2) as i64 {
            return Err(FheError::Quant(
                "linear accumulator exceeds the plaintext space".into(),
            ));
        }
        let q = Quantised {
            params,
            kind: model.kind,
            input_delta: 1u64 << delta_log,
            input,
            body: QuantBody::Linear { weights, bias },
            output: OutputQuant {
                decode: decode_of(model),
                scale: vec![ws * range / ((1i64 << (input_bits - 1)) - 1) as f64; rows.len()],
                slots,
                max_abs,
            },
            output_delta: 1u64 << delta_log,
            output_bits,
            neurons: vec![],
            train_rows: model.train_rows,
            l2_lambda: model.l2_lambda,
        };
        let acc = q.accuracy(&ds.train_x, &ds.train_y)?;
        if best.as_ref().is_none_or(|(a, _)| acc > *a) {
            best = Some((acc, q));
        }
    }
    best.map(|(_, q)| q)
        .ok_or_else(|| FheError::Quant("no configuration".into()))
}

fn quantise_network(model: &FloatModel, ds: &Dataset, cfg: &QuantConfig) -> Result<Quantised> {
    let params = ParamSetId::Pbs4096;
    let p = params.params();
    let hidden_layers = &model.layers[..model.layers.len() - 1];
    if hidden_layers
        .iter()
        .any(|l| l.activation == Activation::Identity)
    {
        return Err(FheError::Quant("hidden layers need a non-linearity".into()));
    }
    let (head_rows, head_b) = heads(model);
    let bits: Vec<u32> = match cfg.input_bits {
        Some(b) => vec![b],
        None => vec![3, 4, 5, 6],
    };
    let ranges: Vec<f64> = match cfg.input_range {
        Some(r) => vec![r],
        None => vec![2.0, 3.0, 4.0, 6.0],
    };
    let z_train = standardised_train(model, ds);
    let mut best: Option<(f64, Quantised)> = None;
    for &b in &bits {
        if !(2..=12).contains(&b) {
            return Err(FheError::Quant("input bits must be in 2..=12".into()));
        }
        for &range in &ranges {
            let input = input_quant(model, b, range);
            let xq: Vec<Vec<i64>> = z_train
                .iter()
                .map(|z| {
                    z.iter()
                        .map(|v| ((v / input.scale).round() as i64).clamp(-input.qmax, input.qmax))
                        .collect()
                })
                .collect();
            // Earlier hidden layers: calibrated once per input configuration.
            let mut pre = vec![];
            let mut h = xq;
            let mut scales = vec![input.scale; model.feature_count()];
            let mut columns: Vec<usize> = (0..model.feature_count()).collect();
            for layer in &hidden_layers[..hidden_layers.len() - 1] {
                let (l, out_scales, kept) =
                    requant_layer(&p, layer, &columns, &h, &scales, pre.is_empty())?;
                h = h.iter().map(|x| l.forward(x)).collect();
                pre.push(l);
                scales = out_scales;
                columns = kept;
            }
            let last = Last {
                layer: &hidden_layers[hidden_layers.len() - 1],
                columns: &columns,
                inputs: &h,
                scales: &scales,
                pre: &pre,
            };
            let width = last.layer.outputs();
            let mut allowed = vec![true; width];
            let mut q = build_network(
                model, &p, params, &input, &last, &head_rows, &head_b, &allowed,
            )?;
            let mut acc = q.accuracy(&ds.train_x, &ds.train_y)?;
            if !cfg.no_prune {
                // Greedy pruning: drop neurons (weakest first) while train accuracy holds.
                // Each dropped neuron saves one bootstrap per output head.
                let mut order: Vec<(i64, usize)> =
                    (0..width).map(|i| (neuron_strength(&q, i), i)).collect();
                order.sort();
                for (_, i) in order {
                    allowed[i] = false;
                    match build_network(
                        model, &p, params, &input, &last, &head_rows, &head_b, &allowed,
                    ) {
                        Ok(c) => {
                            let a = c.accuracy(&ds.train_x, &ds.train_y)?;
                            if a >= acc {
                                q = c;
                                acc = a;
                                continue;
                            }
                        }
                        Err(FheError::Quant(_)) => {}
                        Err(e) => return Err(e),
                    }
                    allowed[i] = true;
                }
            }
            if best.as_ref().is_none_or(|(a, _)| acc > *a) {
                best = Some((acc, q));
            }
        }
    }
    best.map(|(_, q)| q)
        .ok_or_else(|| FheError::Quant("no configuration".into()))
}

/// The last hidden layer and what feeds it.
struct Last<'a> {
    layer: &'a crate::model::Dense,
    /// Which of the layer's float inputs survive (earlier layers drop dead neurons).
    columns: &'a [usize],
    /// Integer inputs on the train rows.
    inputs: &'a [Vec<i64>],
    /// Float value of one integer unit, per input.
    scales: &'a [f64],
    pre: &'a [PbsLayer],
}

struct Calibrated {
    weights: Vec<Vec<i64>>,
    bias: Vec<i64>,
    /// Per kept neuron: float pre-activation ≈ scale · (a + lo) at window position a.
    neuron_scale: Vec<(f64, i64)>,
    kept: Vec<usize>,
    window: u32,
}

/// Integer weights per neuron, sized so the train rows' accumulators span the bootstrap
/// window, and the window itself, shrunk until the noise the weights carry in meets the
/// design bound. `first` layers see fresh input noise; later ones see a bootstrap output
/// through the weights plus a key switch.
fn calibrate_layer(
    p: &CryptoParams,
    layer: &crate::model::Dense,
    columns: &[usize],
    xq: &[Vec<i64>],
    scales: &[f64],
    allowed: &[bool],
    first: bool,
) -> Result<Calibrated> {
    let noise = |w2: f64| {
        if first {
            p.input_noise_variance() * w2
        } else {
            p.pbs_output_variance() * w2 + p.keyswitch_variance()
        }
    };
    let mut window = p.max_window(noise(0.0), DESIGN_LOG2_P_FAIL);
    let mut out;
    loop {
        out = Calibrated {
            weights: vec![],
            bias: vec![],
            neuron_scale: vec![],
            kept: vec![],
            window,
        };
        // Largest squared weight norm whose noise still meets the design bound here.
        let (mut lo_w2, mut hi_w2) = (0.0f64, 1e12f64);
        for _ in 0..60 {
            let mid = 0.5 * (lo_w2 + hi_w2);
            if p.log2_p_fail_window(window, noise(mid)) <= DESIGN_LOG2_P_FAIL {
                lo_w2 = mid;
            } else {
                hi_w2 = mid;
            }
        }
        let w2_budget = lo_w2.max(1.0);
        for (i, (w_all, &b0)) in layer.weights.iter().zip(&layer.bias).enumerate() {
            // Effective float weight of one integer input unit.
            let w: Vec<f64> = columns
                .iter()
                .zip(scales)
                .map(|(&c, s)| w_all[c] * s)
                .collect();
            let z: Vec<f64> = xq
                .iter()
                .map(|x| w.iter().zip(x).map(|(a, &v)| a * v as f64).sum::<f64>() + b0)
                .collect();
            let zmin = z.iter().cloned().fold(f64::INFINITY, f64::min);
            let zmax = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
            if !allowed[i] || (layer.activation == Activation::Relu && zmax <= 0.0) {
                continue; // dead on every train row: contributes nothing, costs no bootstrap
            }
            let usable = (window as f64 - 1.0) * 0.9;
            // Integer weights stay below 2^12: a neuron (nearly) constant on the train rows
            // would otherwise get a tiny scale and huge weights, i.e. huge noise.
            let wmax = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            // Weight norm the noise budget allows at this window (0.8: rounding slack).
            let wnorm = w.iter().map(|v| v * v).sum::<f64>().sqrt();
            let mut u = ((zmax - zmin) / usable)
                .max(wmax / 4096.0)
                .max(wnorm / (0.8 * w2_budget.sqrt()))
                .max(1e-12);
            let (wq, bq, lo) = loop {
                let wq: Vec<i64> = w.iter().map(|v| (v / u).round() as i64).collect();
                let bq = (b0 / u).round() as i64;
                check_ints(wq.iter().chain([&bq]))?;
                let accs: Vec<i64> = xq
                    .iter()
                    .map(|x| wq.iter().zip(x).map(|(a, b)| a * b).sum::<i64>() + bq)
                    .collect();
                let amin = accs.iter().copied().min().unwrap_or(0);
                let amax = accs.iter().copied().max().unwrap_or(0);
                if amax - amin < window as i64 {
                    // Centre the train range in the window.
                    let slack = window as i64 - 1 - (amax - amin);
                    break (wq, bq, amin - slack / 2);
                }
                u *= 1.05;
            };
            out.kept.push(i);
            out.weights.push(wq);
            out.bias.push(bq - lo);
            out.neuron_scale.push((u, lo));
        }
        let w2 = out
            .weights
            .iter()
            .map(|r| r.iter().map(|v| (v * v) as f64).sum::<f64>())
            .fold(0.0, f64::max);
        if p.log2_p_fail_window(window, noise(w2)) <= DESIGN_LOG2_P_FAIL {
            break;
        }
        // Smaller windows mean smaller weights and less noise: step down until it fits.
        let smaller = ((window as f64 * 0.9) as u32).min(window - 1);
        if smaller < 8 {
            return Err(FheError::Quant(
                "weights too large for any bootstrap window".into(),
            ));
        }
        window = smaller;
    }
    if out.kept.is_empty() {
        return Err(FheError::Quant("every hidden neuron is dead".into()));
    }
    Ok(out)
}

/// Bits of the requantised activations between two bootstrapped layers.
const HIDDEN_BITS: u32 = 4;

/// An earlier hidden layer: its tables output activations requantised to 4 bits (per-neuron
/// scales, which the next layer's weights absorb).
fn requant_layer(
    p: &CryptoParams,
    layer: &crate::model::Dense,
    columns: &[usize],
    xq: &[Vec<i64>],
    scales: &[f64],
    first: bool,
) -> Result<(PbsLayer, Vec<f64>, Vec<usize>)> {
    let c = calibrate_layer(
        p,
        layer,
        columns,
        xq,
        scales,
        &vec![true; layer.outputs()],
        first,
    )?;
    let hmax = (1i64 << (HIDDEN_BITS - 1)) - 1;
    let act = layer.activation;
    let mut tables = vec![];
    let mut out_scales = vec![];
    for &(s, lo) in &c.neuron_scale {
        let vals: Vec<f64> = (0..c.window as i64)
            .map(|a| act.apply(s * (a + lo) as f64))
            .collect();
        let m = vals.iter().fold(0.0f64, |m, v| m.max(v.abs())).max(1e-12);
        let sh = m / hmax as f64;
        tables.push(vals.iter().map(|v| (v / sh).round() as i64).collect());
        out_scales.push(sh);
    }
    Ok((
        PbsLayer {
            weights: c.weights,
            bias: c.bias,
            window: c.window,
            tables,
        },
        out_scales,
        c.kept,
    ))
}

/// Largest table entry of last-layer neuron `i` (0 if it was dropped).
fn neuron_strength(q: &Quantised, i: usize) -> i64 {
    let QuantBody::Network { tables, .. } = &q.body else {
        return 0;
    };
    q.neurons.iter().position(|&n| n == i).map_or(0, |k| {
        tables
            .iter()
            .map(|t| t[k].iter().map(|v| v.abs()).max().unwrap_or(0))
            .max()
            .unwrap_or(0)
    })
}

#[allow(clippy::too_many_arguments)]
fn build_network(
    model: &FloatModel,
    p: &CryptoParams,
    params: ParamSetId,
    input: &InputQuant,
    last: &Last,
    head_rows: &[Vec<f64>],
    head_b: &[f64],
    allowed: &[bool],
) -> Result<Quantised> {
    let Calibrated {
        weights,
        bias,
        neuron_scale,
        kept,
        window,
    } = calibrate_layer(
        p,
        last.layer,
        last.columns,
        last.inputs,
        last.scales,
        allowed,
        last.pre.is_empty(),
    )?;
    // Output encoding: Σ of |kept| bootstrap outputs per head, each with the PBS noise.
    let heads_n = head_rows.len();
    let var_out = p.pbs_output_variance() * kept.len() as f64;
    let output_bits = 24u32;
    let ms_var = (p.big_lwe_dimension().0 as f64 / 2.0 + 1.0)
        * 2f64.powi(2 * (-(output_bits as i32)))
        / 12.0;
    let z = z_for(DESIGN_LOG2_P_FAIL);
    let min_delta = 2.0 * z * (var_out + ms_var).sqrt() * 2f64.powi(64);
    let slots = (2f64.powi(64) / min_delta).floor() as u64;
    if slots < 16 {
        return Err(FheError::Quant("output space too small".into()));
    }
    let output_delta = crate::params::delta_for_slots(slots);
    // The model's own outputs stay within 90% of the centred range, worst case over all inputs;
    // the rest is headroom for offsets.
    let limit = ((slots / 2) as f64 * 0.9).floor() - 1.0;
    let act = last.layer.activation;
    let mut tables = vec![];
    let mut head_bias = vec![];
    let mut scales = vec![];
    for h in 0..heads_n {
        // Float contribution of neuron i at window position a.
        let contrib = |k: usize, a: i64| -> f64 {
            let (s, lo) = neuron_scale[k];
            head_rows[h][kept[k]] * act.apply(s * (a + lo) as f64)
        };
        let worst: f64 = (0..kept.len())
            .map(|k| {
                (0..window as i64)
                    .map(|a| contrib(k, a).abs())
                    .fold(0.0, f64::max)
            })
            .sum::<f64>()
            + head_b[h].abs();
        let t = limit / worst.max(1e-12);
        let th: Vec<Vec<i64>> = (0..kept.len())
            .map(|k| {
                (0..window as i64)
                    .map(|a| (t * contrib(k, a)).round() as i64)
                    .collect()
            })
            .collect();
        let hb = (t * head_b[h]).round() as i64;
        check_ints(th.iter().flatten().chain([&hb]))?;
        tables.push(th);
        head_bias.push(hb);
        scales.push(1.0 / t);
    }
    let max_abs = tables
        .iter()
        .zip(&head_bias)
        .map(|(t, b)| {
            t.iter()
                .map(|r| r.iter().map(|v| v.abs()).max().unwrap_or(0))
                .sum::<i64>()
                + b.abs()
        })
        .max()
        .unwrap_or(0);
    // Neurons whose tables rounded to zero everywhere cost a bootstrap for nothing.
    let live: Vec<usize> = (0..kept.len())
        .filter(|&k| {
            tables
                .iter()
                .any(|t: &Vec<Vec<i64>>| t[k].iter().any(|&v| v != 0))
        })
        .collect();
    if live.len() < kept.len() {
        let mut allowed2 = allowed.to_vec();
        for (k, &i) in kept.iter().enumerate() {
            if !live.contains(&k) {
                allowed2[i] = false;
            }
        }
        if live.is_empty() {
            return Err(FheError::Quant("every hidden neuron rounds to zero".into()));
        }
        return build_network(model, p, params, input, last, head_rows, head_b, &allowed2);
    }
    let first_window = last.pre.first().map_or(window, |l| l.window);
    Ok(Quantised {
        neurons: kept,
        params,
        kind: model.kind,
        input_delta: crate::params::delta_for_slots(2 * first_window as u64),
        input: input.clone(),
        body: QuantBody::Network {
            pre: last.pre.to_vec(),
            weights,
            bias,
            window,
            tables,
            head_bias,
        },
        output: OutputQuant {
            decode: decode_of(model),
            scale: scales,
            slots,
            max_abs,
        },
        output_delta,
        output_bits,
        train_rows: model.train_rows,
        l2_lambda: model.l2_lambda,
    })
}

/// z with P(|Z| > z) = 2^log2p.
pub fn z_for(log2p: f64) -> f64 {
    let (mut lo, mut hi) = (0.0f64, 40.0f64);
    for _ in 0..100 {
        let mid = 0.5 * (lo + hi);
        if crate::params::log2_gaussian_two_sided_tail(mid) > log2p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negacyclic_lookup() {
        let t = vec![5, 6, 7];
        assert_eq!(table_lookup(&t, 1), 6);
        assert_eq!(table_lookup(&t, 4), -6);
        assert_eq!(table_lookup(&t, -1), -7);
        assert_eq!(table_lookup(&t, 7), 6);
        assert_eq!(centred(130, 256), -126);
        assert_eq!(centred(-3, 256), -3);
        assert_eq!(centred(127, 256), 127);
    }

    #[test]
    fn z_for_inverts_the_tail() {
        let z = z_for(-40.0);
        assert!((crate::params::log2_gaussian_two_sided_tail(z) + 40.0).abs() < 1e-6);
        assert!((z - 7.13).abs() < 0.05, "{z}");
    }
}
