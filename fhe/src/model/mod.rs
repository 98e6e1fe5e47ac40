//! Float models: the thing a data scientist trains, before quantisation.
//!
//! A model is a standardisation (learned on train rows only), an optional L2-norm clip of the
//! standardised vector (needed by the worker's differential-privacy bound for LR), a stack of
//! dense layers, and an output transform applied by the *client* after decryption.

pub mod onnx;
pub mod train;

use serde::{Deserialize, Serialize};

use crate::error::{FheError, Result};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Activation {
    Identity,
    Relu,
    Sigmoid,
}

impl Activation {
    pub fn apply(self, z: f64) -> f64 {
        match self {
            Self::Identity => z,
            Self::Relu => z.max(0.0),
            Self::Sigmoid => sigmoid(z),
        }
    }
}

/// What turns the last layer's outputs into probabilities; computed in the clear by the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutputTransform {
    /// One logit, P(class 1) = sigmoid(logit).
    Sigmoid,
    /// One logit per class.
    Softmax,
    /// Raw scores (regression).
    Identity,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ModelKind {
    LogisticRegression,
    Mlp,
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct Dense {
    /// `weights[o][i]`: output `o`, input `i`.
    pub weights: Vec<Vec<f64>>,
    pub bias: Vec<f64>,
    pub activation: Activation,
}

impl Dense {
    pub fn inputs(&self) -> usize {
        self.weights.first().map_or(0, Vec::len)
    }
    pub fn outputs(&self) -> usize {
        self.weights.len()
    }
    pub fn forward(&self, x: &[f64]) -> Vec<f64> {
        self.weights
            .iter()
            .zip(&self.bias)
            .map(|(w, b)| self.activation.apply(dot(w, x) + b))
            .collect()
    }
}

/// x ↦ (x − mean) / std, per feature.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq)]
pub struct Normaliser {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
}

impl Normaliser {
    pub fn identity(n: usize) -> Self {
        Self {
            mean: vec![0.0; n],
            std: vec![1.0; n],
        }
    }

    /// Mean and (population) standard deviation of the given rows.
    pub fn fit(rows: &[Vec<f64>]) -> Self {
        let n = rows.len().max(1) as f64;
        let f = rows.first().map_or(0, Vec::len);
        let mut mean = vec![0.0; f];
        for r in rows {
            for (m, v) in mean.iter_mut().zip(r) {
                *m += v / n;
            }
        }
        let mut std = vec![0.0; f];
        for r in rows {
            for ((s, v), m) in std.iter_mut().zip(r).zip(&mean) {
                *s += (v - m) * (v - m) / n;
            }
        }
        for s in &mut std {
            *s = if *s > 0.0 { s.sqrt() } else { 1.0 };
        }
        Self { mean, std }
    }

    pub fn apply(&self, x: &[f64]) -> Vec<f64> {
        x.iter()
            .zip(&self.mean)
            .zip(&self.std)
            .map(|((v, m), s)| (v - m) / s)
            .collect()
    }
}

/// Scale `x` down so that its L2 norm is at most `r`.
pub fn clip_norm(x: &mut [f64], r: f64) {
    let n = dot(x, x).sqrt();
    if n > r {
        for v in x.iter_mut() {
            *v *= r / n;
        }
    }
}

#[derive(Clone, Serialize, Deserialize, PartialEq)]
pub struct FloatModel {
    pub kind: ModelKind,
    pub normaliser: Normaliser,
    /// Bound R on the L2 norm of the standardised feature vector, if the model was trained on
    /// clipped vectors (inference clips the same way).
    pub clip_norm: Option<f64>,
    pub layers: Vec<Dense>,
    pub output: OutputTransform,
    /// Rows the model was trained on (n in the DP sensitivity 2√(R²+1)/(nλ) of the parameters).
    pub train_rows: usize,
    /// L2 regularisation strength λ of the objective mean(loss) + λ/2·|w|².
    pub l2_lambda: f64,
}

// Weights are the provider's secret: Debug shows shapes only.
impl std::fmt::Debug for FloatModel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let shape: Vec<usize> = std::iter::once(self.feature_count())
            .chain(self.layers.iter().map(Dense::outputs))
            .collect();
        f.debug_struct("FloatModel")
            .field("kind", &self.kind)
            .field("shape", &shape)
            .field("output", &self.output)
            .finish_non_exhaustive()
    }
}

impl FloatModel {
    pub fn feature_count(&self) -> usize {
        self.normaliser.mean.len()
    }

    /// Check the shapes chain and the values are finite; every constructor path calls this.
    pub fn validate(&self) -> Result<()> {
        let f = self.feature_count();
        if f == 0 || f > crate::dataset::MAX_FEATURES || self.normaliser.std.len() != f {
            return Err(FheError::Model(format!("bad feature count {f}")));
        }
        if self
            .normaliser
            .std
            .iter()
            .any(|s| !s.is_finite() || *s == 0.0)
            || self.normaliser.mean.iter().any(|m| !m.is_finite())
        {
            return Err(FheError::Model(
                "normaliser has zero or non-finite values".into(),
            ));
        }
        if self.layers.is_empty() {
            return Err(FheError::Model("no layers".into()));
        }
        let mut width = f;
        for (k, l) in self.layers.iter().enumerate() {
            if l.outputs() == 0 || l.bias.len() != l.outputs() {
                return Err(FheError::Model(format!("layer {k}: bad bias shape")));
            }
            if l.weights.iter().any(|r| r.len() != width) {
                return Err(FheError::Model(format!(
                    "layer {k}: expected {width} inputs per row"
                )));
            }
            if l.outputs() > crate::dataset::MAX_FEATURES {
                return Err(FheError::Model(format!("layer {k}: too wide")));
            }
            if l.weights
                .iter()
                .flatten()
                .chain(&l.bias)
                .any(|v| !v.is_finite())
            {
                return Err(FheError::Model(format!("layer {k}: non-finite weight")));
            }
            width = l.outputs();
        }
        if self.layers.last().map(|l| l.activation) != Some(Activation::Identity) {
            return Err(FheError::Model(
                "the last layer must be linear (sigmoid/softmax go in the output transform)".into(),
            ));
        }
        if self.output == OutputTransform::Sigmoid && width != 1 {
            return Err(FheError::Model(
                "sigmoid output needs exactly one logit".into(),
            ));
        }
        if self.output == OutputTransform::Softmax && width < 2 {
            return Err(FheError::Model(
                "softmax output needs two or more logits".into(),
            ));
        }
        if let Some(r) = self.clip_norm {
            if !(r.is_finite() && r > 0.0) {
                return Err(FheError::Model("clip norm must be positive".into()));
            }
        }
        Ok(())
    }

    /// Standardise (and clip) a raw feature vector.
    pub fn preprocess(&self, x: &[f64]) -> Vec<f64> {
        let mut z = self.normaliser.apply(x);
        if let Some(r) = self.clip_norm {
            clip_norm(&mut z, r);
        }
        z
    }

    /// Outputs of the last layer (logits) for a raw feature vector.
    pub fn logits(&self, x: &[f64]) -> Vec<f64> {
        let mut h = self.preprocess(x);
        for l in &self.layers {
            h = l.forward(&h);
        }
        h
    }

    /// Class probabilities (or raw scores for an identity output).
    pub fn predict_proba(&self, x: &[f64]) -> Vec<f64> {
        let z = self.logits(x);
        transform_output(self.output, &z)
    }

    pub fn predict_class(&self, x: &[f64]) -> usize {
        argmax(&self.predict_proba(x))
    }

    pub fn accuracy(&self, xs: &[Vec<f64>], ys: &[u8]) -> f64 {
        let ok = xs
            .iter()
            .zip(ys)
            .filter(|(x, &y)| self.predict_class(x) == y as usize)
            .count();
        ok as f64 / xs.len().max(1) as f64
    }
}

/// Apply an output transform to logits. A single sigmoid logit yields [P(0), P(1)].
pub fn transform_output(t: OutputTransform, z: &[f64]) -> Vec<f64> {
    match t {
        OutputTransform::Sigmoid => {
            let p = sigmoid(z[0]);
            vec![1.0 - p, p]
        }
        OutputTransform::Softmax => softmax(z),
        OutputTransform::Identity => z.to_vec(),
    }
}

pub fn sigmoid(z: f64) -> f64 {
    1.0 / (1.0 + (-z).exp())
}

pub fn softmax(z: &[f64]) -> Vec<f64> {
    let m = z.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
    let e: Vec<f64> = z.iter().map(|v| (v - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|v| v / s).collect()
}

pub fn argmax(v: &[f64]) -> usize {
    let mut best = 0;
    for (i, x) in v.iter().enumerate() {
        if *x > v[best] {
            best = i;
        }
    }
    best
}

pub(crate) fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
