//! Training in Rust: L2-regularised logistic regression (Newton's method, exact optimum of a
//! strongly convex objective) and a small MLP (full-batch Adam), both on the train rows only.

use super::{
    clip_norm, dot, Activation, Dense, FloatModel, ModelKind, Normaliser, OutputTransform,
};
use crate::dataset::Dataset;
use crate::error::{FheError, Result};

#[derive(Clone, Debug)]
pub struct LrConfig {
    /// λ in mean(log-loss) + λ/2·|θ|², θ = (weights, intercept). The intercept is penalised
    /// too: the worker's DP sensitivity bound (Chaudhuri–Monteleoni–Sarwate) needs the whole
    /// parameter vector under the strongly convex regulariser (see `docs/privacy.md`).
    pub l2_lambda: f64,
    /// Clip the standardised feature vector to this L2 norm (train and inference).
    pub clip_norm: Option<f64>,
}

impl Default for LrConfig {
    fn default() -> Self {
        Self {
            l2_lambda: 0.01,
            clip_norm: None,
        }
    }
}

/// Train a binary logistic regression on `ds.train_*`.
#[allow(clippy::needless_range_loop)] // symmetric-matrix loops read best with indices
pub fn train_logistic_regression(ds: &Dataset, cfg: &LrConfig) -> Result<FloatModel> {
    if !(cfg.l2_lambda.is_finite() && cfg.l2_lambda > 0.0) {
        return Err(FheError::Model("l2_lambda must be > 0".into()));
    }
    let norm = Normaliser::fit(&ds.train_x);
    let xs = prepared(ds, &norm, cfg.clip_norm);
    let f = ds.feature_count();
    let n = xs.len() as f64;
    let d = f + 1; // weights then intercept
    let mut theta = vec![0.0; d];
    for _ in 0..100 {
        let mut grad = vec![0.0; d];
        let mut hess = vec![vec![0.0; d]; d];
        for (x, &y) in xs.iter().zip(&ds.train_y) {
            let z = dot(&theta[..f], x) + theta[f];
            let p = super::sigmoid(z);
            let r = (p - y as f64) / n;
            let s = p * (1.0 - p) / n;
            for i in 0..d {
                let xi = if i < f { x[i] } else { 1.0 };
                grad[i] += r * xi;
                for j in 0..=i {
                    let xj = if j < f { x[j] } else { 1.0 };
                    hess[i][j] += s * xi * xj;
                }
            }
        }
        // Every parameter, intercept included: the objective is then λ-strongly convex in θ.
        for i in 0..d {
            grad[i] += cfg.l2_lambda * theta[i];
            hess[i][i] += cfg.l2_lambda;
        }
        // Mirror the lower triangle.
        for i in 0..d {
            for j in 0..i {
                let v = hess[i][j];
                hess[j][i] = v;
            }
        }
        let step = solve_spd(hess, &grad)
            .ok_or_else(|| FheError::Model("Newton system is singular".into()))?;
        let mut moved = 0.0f64;
        for (t, s) in theta.iter_mut().zip(&step) {
            *t -= s;
            moved = moved.max(s.abs());
        }
        if moved < 1e-12 {
            break;
        }
    }
    let model = FloatModel {
        kind: ModelKind::LogisticRegression,
        normaliser: norm,
        clip_norm: cfg.clip_norm,
        layers: vec![Dense {
            weights: vec![theta[..f].to_vec()],
            bias: vec![theta[f]],
            activation: Activation::Identity,
        }],
        output: OutputTransform::Sigmoid,
        train_rows: ds.train_x.len(),
        l2_lambda: cfg.l2_lambda,
    };
    model.validate()?;
    Ok(model)
}

#[derive(Clone, Debug)]
pub struct MlpConfig {
    pub hidden: Vec<usize>,
    /// 2 gives the 30-30-2 softmax network of the benchmark; 1 gives a sigmoid output.
    pub outputs: usize,
    pub epochs: usize,
    pub learning_rate: f64,
    /// L2 weight decay λ (objective mean(loss) + λ/2·|W|²).
    pub l2_lambda: f64,
    pub seed: u64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        Self {
            hidden: vec![30],
            outputs: 2,
            epochs: 1500,
            learning_rate: 0.01,
            l2_lambda: 1e-2,
            seed: 7,
        }
    }
}

/// Train an MLP with ReLU hidden layers on `ds.train_*` (cross-entropy, full-batch Adam).
pub fn train_mlp(ds: &Dataset, cfg: &MlpConfig) -> Result<FloatModel> {
    if cfg.hidden.is_empty() || cfg.hidden.contains(&0) || !(1..=64).contains(&cfg.outputs) {
        return Err(FheError::Model("bad MLP shape".into()));
    }
    let norm = Normaliser::fit(&ds.train_x);
    let xs = prepared(ds, &norm, None);
    let mut rng = SplitMix(cfg.seed);
    let mut widths = vec![ds.feature_count()];
    widths.extend(&cfg.hidden);
    widths.push(cfg.outputs);
    let mut layers: Vec<Dense> = widths
        .windows(2)
        .enumerate()
        .map(|(k, w)| {
            // He initialisation for ReLU layers.
            let s = (2.0 / w[0] as f64).sqrt();
            Dense {
                weights: (0..w[1])
                    .map(|_| (0..w[0]).map(|_| rng.normal() * s).collect())
                    .collect(),
                bias: vec![0.0; w[1]],
                activation: if k + 2 == widths.len() {
                    Activation::Identity
                } else {
                    Activation::Relu
                },
            }
        })
        .collect();
    let output = if cfg.outputs == 1 {
        OutputTransform::Sigmoid
    } else {
        OutputTransform::Softmax
    };
    let mut adam = Adam::new(&layers);
    let n = xs.len() as f64;
    for step in 1..=cfg.epochs {
        let mut grads: Vec<Dense> = layers.iter().map(zeros_like).collect();
        for (x, &y) in xs.iter().zip(&ds.train_y) {
            // Forward, keeping every layer's input and pre-activation.
            let mut acts = vec![x.clone()];
            let mut pre = vec![];
            for l in &layers {
                let z: Vec<f64> = l
                    .weights
                    .iter()
                    .zip(&l.bias)
                    .map(|(w, b)| dot(w, acts.last().unwrap_or(x)) + b)
                    .collect();
                acts.push(z.iter().map(|&v| l.activation.apply(v)).collect());
                pre.push(z);
            }
            let logits = acts.last().cloned().unwrap_or_default();
            // dLoss/dlogits for cross-entropy.
            let mut delta: Vec<f64> = match output {
                OutputTransform::Sigmoid => vec![super::sigmoid(logits[0]) - y as f64],
                _ => {
                    let mut p = super::softmax(&logits);
                    p[y as usize] -= 1.0;
                    p
                }
            };
            for k in (0..layers.len()).rev() {
                let input = &acts[k];
                for (o, d) in delta.iter().enumerate() {
                    grads[k].bias[o] += d / n;
                    for (g, xi) in grads[k].weights[o].iter_mut().zip(input) {
                        *g += d * xi / n;
                    }
                }
                if k > 0 {
                    let prev_pre = &pre[k - 1];
                    let act = layers[k - 1].activation;
                    delta = (0..input.len())
                        .map(|i| {
                            let back: f64 = delta
                                .iter()
                                .enumerate()
                                .map(|(o, d)| d * layers[k].weights[o][i])
                                .sum();
                            back * activation_grad(act, prev_pre[i])
                        })
                        .collect();
                }
            }
        }
        for (g, l) in grads.iter_mut().zip(&layers) {
            for (gr, lr) in g.weights.iter_mut().zip(&l.weights) {
                for (gv, lv) in gr.iter_mut().zip(lr) {
                    *gv += cfg.l2_lambda * lv;
                }
            }
        }
        adam.step(&mut layers, &grads, cfg.learning_rate, step);
    }
    let model = FloatModel {
        kind: ModelKind::Mlp,
        normaliser: norm,
        clip_norm: None,
        layers,
        output,
        train_rows: ds.train_x.len(),
        l2_lambda: cfg.l2_lambda,
    };
    model.validate()?;
    Ok(model)
}

fn prepared(ds: &Dataset, norm: &Normaliser, clip: Option<f64>) -> Vec<Vec<f64>> {
    ds.train_x
        .iter()
        .map(|x| {
            let mut z = norm.apply(x);
            if let Some(r) = clip {
                clip_norm(&mut z, r);
            }
            z
        })
        .collect()
}

fn activation_grad(a: Activation, z: f64) -> f64 {
    match a {
        Activation::Identity => 1.0,
        Activation::Relu => {
            if z > 0.0 {
                1.0
            } else {
                0.0
            }
        }
        Activation::Sigmoid => {
            let s = super::sigmoid(z);
            s * (1.0 - s)
        }
    }
}

fn zeros_like(l: &Dense) -> Dense {
    Dense {
        weights: vec![vec![0.0; l.inputs()]; l.outputs()],
        bias: vec![0.0; l.outputs()],
        activation: l.activation,
    }
}

struct Adam {
    m: Vec<Dense>,
    v: Vec<Dense>,
}

impl Adam {
    fn new(layers: &[Dense]) -> Self {
        Self {
            m: layers.iter().map(zeros_like).collect(),
            v: layers.iter().map(zeros_like).collect(),
        }
    }

    fn step(&mut self, layers: &mut [Dense], grads: &[Dense], lr: f64, t: usize) {
        let (b1, b2, eps) = (0.9f64, 0.999f64, 1e-8);
        let c1 = 1.0 - b1.powi(t as i32);
        let c2 = 1.0 - b2.powi(t as i32);
        let upd = |p: &mut f64, g: f64, m: &mut f64, v: &mut f64| {
            *m = b1 * *m + (1.0 - b1) * g;
            *v = b2 * *v + (1.0 - b2) * g * g;
            *p -= lr * (*m / c1) / ((*v / c2).sqrt() + eps);
        };
        for k in 0..layers.len() {
            for o in 0..layers[k].outputs() {
                for i in 0..layers[k].inputs() {
                    upd(
                        &mut layers[k].weights[o][i],
                        grads[k].weights[o][i],
                        &mut self.m[k].weights[o][i],
                        &mut self.v[k].weights[o][i],
                    );
                }
                upd(
                    &mut layers[k].bias[o],
                    grads[k].bias[o],
                    &mut self.m[k].bias[o],
                    &mut self.v[k].bias[o],
                );
            }
        }
    }
}

/// Cholesky solve of a symmetric positive definite system.
#[allow(clippy::needless_range_loop)] // index form mirrors the textbook algorithm
fn solve_spd(mut a: Vec<Vec<f64>>, b: &[f64]) -> Option<Vec<f64>> {
    let n = b.len();
    for j in 0..n {
        let mut s = a[j][j];
        for k in 0..j {
            s -= a[j][k] * a[j][k];
        }
        if s <= 0.0 || !s.is_finite() {
            return None;
        }
        a[j][j] = s.sqrt();
        for i in j + 1..n {
            let mut t = a[i][j];
            for k in 0..j {
                t -= a[i][k] * a[j][k];
            }
            a[i][j] = t / a[j][j];
        }
    }
    let mut y = vec![0.0; n];
    for i in 0..n {
        let mut t = b[i];
        for k in 0..i {
            t -= a[i][k] * y[k];
        }
        y[i] = t / a[i][i];
    }
    let mut x = vec![0.0; n];
    for i in (0..n).rev() {
        let mut t = y[i];
        for k in i + 1..n {
            t -= a[k][i] * x[k];
        }
        x[i] = t / a[i][i];
    }
    Some(x)
}

/// Small deterministic PRNG (SplitMix64) so training is reproducible without a rand dependency.
pub(crate) struct SplitMix(pub u64);

impl SplitMix {
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    pub fn normal(&mut self) -> f64 {
        let u1 = self.uniform().max(1e-300);
        let u2 = self.uniform();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::breast_cancer;

    #[test]
    fn lr_is_accurate_and_at_its_optimum() {
        let ds = breast_cancer();
        let m = train_logistic_regression(&ds, &LrConfig::default()).unwrap();
        assert!(m.accuracy(&ds.test_x, &ds.test_y) >= 0.97);
        // Gradient of the objective vanishes at the returned weights.
        let w = &m.layers[0].weights[0];
        let b = m.layers[0].bias[0];
        let n = ds.train_x.len() as f64;
        let mut g = vec![0.0; w.len()];
        for (x, &y) in ds.train_x.iter().zip(&ds.train_y) {
            let z = m.preprocess(x);
            let r = crate::model::sigmoid(dot(w, &z) + b) - y as f64;
            for (gi, zi) in g.iter_mut().zip(&z) {
                *gi += r * zi / n;
            }
        }
        for (gi, wi) in g.iter().zip(w) {
            assert!((gi + 0.01 * wi).abs() < 1e-9);
        }
    }

    #[test]
    fn mlp_learns() {
        let ds = breast_cancer();
        let cfg = MlpConfig {
            epochs: 300,
            ..MlpConfig::default()
        };
        let m = train_mlp(&ds, &cfg).unwrap();
        assert!(m.accuracy(&ds.test_x, &ds.test_y) >= 0.94);
        assert!(m.accuracy(&ds.train_x, &ds.train_y) >= 0.97);
    }
}
