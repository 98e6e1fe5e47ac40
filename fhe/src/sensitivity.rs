//! Output sensitivity of a compiled model in output grid units: how far one output integer can
//! move when one training row is added, removed or replaced. The worker calibrates its DP noise
//! to it (`docs/privacy.md` has the full derivation and its assumptions).
//!
//! * L2-regularised logistic regression trained on norm-clipped features (R = `clip_norm`):
//!   Chaudhuri–Monteleoni–Sarwate. Inputs augmented with the constant 1 have
//!   ‖x̃‖ ≤ √(R²+1), the logistic loss is √(R²+1)-Lipschitz in θ, and the objective
//!   mean(loss) + λ/2·‖θ‖² (intercept included) is λ-strongly convex, so the exact minimisers
//!   on neighbouring data sets differ by ‖Δθ‖ ≤ 2√(R²+1)/(nλ). A query x̂ changes the score by
//!   at most ‖Δθ‖·‖x̂‖, with ‖x̂‖ taken from the *quantiser's* worst case (every coordinate at
//!   ±qmax input units), not from the clip, so a client that skips clipping but still encodes
//!   through the quantiser stays covered. Rounding the weights and bias to the integer grid adds
//!   at most ½ unit per weight times qmax, plus ½ for the bias, per model.
//! * Anything else (networks, LR without a clip norm): the output range, 2·max_abs, which the
//!   bootstrapped tables enforce for networks whatever the input.

use crate::client::ClientSpec;
use crate::model::ModelKind;
use crate::quant::OutputDecode;
use crate::server::ServerModel;

/// Per-output sensitivity and how it was obtained.
#[derive(Clone, Debug, PartialEq)]
pub struct OutputSensitivity {
    /// Per output: the largest change of that output integer between neighbouring training
    /// sets, in output grid units (>= 1).
    pub grid_units: Vec<u64>,
    pub derivation: SensitivityDerivation,
}

#[derive(Clone, Debug, PartialEq)]
pub enum SensitivityDerivation {
    /// Chaudhuri–Monteleoni–Sarwate bound for L2-regularised logistic regression.
    RegularisedLogistic {
        /// L2 sensitivity of the parameter vector (weights and intercept): 2√(R²+1)/(nλ).
        weight_l2: f64,
        /// Largest norm of an augmented dequantised query (x_q·scale, 1) the quantiser can
        /// produce: √(f·(qmax·scale)² + 1).
        query_norm: f64,
        /// Integer rounding of two models' weights and biases: 2·(f·qmax/2 + 1/2) = f·qmax + 1.
        rounding_slack_grid: u64,
    },
    /// No training-based bound: any two outputs in [−max_abs, max_abs] differ by ≤ 2·max_abs.
    OutputRange,
}

impl OutputSensitivity {
    /// Sensitivity of the whole output vector in L1 (what discrete Laplace noise on every
    /// output at one common scale must be calibrated to).
    pub fn l1(&self) -> u64 {
        self.grid_units
            .iter()
            .fold(0u64, |s, &d| s.saturating_add(d))
    }

    /// Sensitivity of the whole output vector in L2, rounded up (discrete Gaussian).
    pub fn l2(&self) -> u64 {
        let sq = self.grid_units.iter().fold(0u128, |s, &d| {
            s.saturating_add(u128::from(d) * u128::from(d))
        });
        // Float root, then corrected to the exact ⌈√sq⌉ (saturating far beyond u64).
        let mut r = (sq as f64).sqrt().ceil() as u128;
        while r.checked_mul(r).is_some_and(|v| v < sq) {
            r += 1;
        }
        while r > 0 && (r - 1).checked_mul(r - 1).is_some_and(|v| v >= sq) {
            r -= 1;
        }
        u64::try_from(r).unwrap_or(u64::MAX)
    }
}

/// Float results are rounded up after this relative margin, so float error can only enlarge
/// the bound.
const FLOAT_MARGIN: f64 = 1e-9;

impl ServerModel {
    /// Output sensitivity in grid units, per output. See the module documentation.
    pub fn output_sensitivity(&self) -> OutputSensitivity {
        let spec = self.client_spec();
        logistic_bound(spec).unwrap_or_else(|| output_range(spec))
    }
}

fn output_range(spec: &ClientSpec) -> OutputSensitivity {
    let d = (spec.output.max_abs.max(0) as u64).saturating_mul(2).max(1);
    OutputSensitivity {
        grid_units: vec![d; spec.output.count()],
        derivation: SensitivityDerivation::OutputRange,
    }
}

/// The LR bound, or `None` when the model is not a clipped, regularised binary LR (or a number
/// is out of range, which falls back to the output range rather than to a wrong bound).
fn logistic_bound(spec: &ClientSpec) -> Option<OutputSensitivity> {
    let m = &spec.metadata;
    // pbs_layers == 0 is exactly the linear integer body (the server validates the pairing).
    if m.kind != ModelKind::LogisticRegression
        || m.pbs_layers != 0
        || spec.output.decode != OutputDecode::Sigmoid
        || spec.output.count() != 1
        || m.train_rows == 0
    {
        return None;
    }
    let r = m.clip_norm.filter(|r| r.is_finite() && *r > 0.0)?;
    let lambda = m.l2_lambda;
    if !(lambda.is_finite() && lambda > 0.0) {
        return None;
    }
    let n = m.train_rows as f64;
    let lipschitz = (r * r + 1.0).sqrt();
    let weight_l2 = 2.0 * lipschitz / (n * lambda);
    // Worst case over accepted inputs: |x_q,j| ≤ the proven bound (qmax + 1, see
    // `ClientSpec::input_bound`) for every feature j, one input unit = input.scale.
    let f = spec.feature_count();
    let qmax = u64::try_from(spec.input_bound()).ok()?;
    let coord = qmax as f64 * spec.input.scale;
    let query_norm = (f as f64 * coord * coord + 1.0).sqrt();
    // One output unit is one weight unit times one input unit, so the weight rounding error
    // (≤ ½ weight unit) times |x_q,j| ≤ qmax is ≤ qmax/2 output units per feature; the bias is
    // rounded on the output grid (≤ ½). Two models: twice that.
    let rounding_slack_grid = (f as u64).checked_mul(qmax)?.checked_add(1)?;
    let score_bound = weight_l2 * query_norm;
    let grid_units = spec
        .output
        .scale
        .iter()
        .map(|&s| {
            if !(s.is_finite() && s > 0.0) {
                return None;
            }
            let ideal = (score_bound / s * (1.0 + FLOAT_MARGIN)).ceil();
            // Beyond 2^62 the bound is meaningless for any plaintext space anyway.
            if !(ideal.is_finite() && ideal < (1u64 << 62) as f64) {
                return None;
            }
            Some((ideal as u64).checked_add(rounding_slack_grid)?.max(1))
        })
        .collect::<Option<Vec<u64>>>()?;
    Some(OutputSensitivity {
        grid_units,
        derivation: SensitivityDerivation::RegularisedLogistic {
            weight_l2,
            query_norm,
            rounding_slack_grid,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::dataset::{breast_cancer, Dataset};
    use crate::model::train::{train_logistic_regression, train_mlp, LrConfig, MlpConfig};
    use crate::model::FloatModel;
    use crate::quant::QuantConfig;

    const R: f64 = 4.0;
    const LAMBDA: f64 = 0.01;

    fn lr_cfg() -> LrConfig {
        LrConfig {
            l2_lambda: LAMBDA,
            clip_norm: Some(R),
        }
    }

    // One fixed quantiser configuration for every model compared (no data-driven search).
    fn qcfg() -> QuantConfig {
        QuantConfig {
            input_bits: Some(8),
            weight_bits: Some(8),
            input_range: Some(2.0),
            no_prune: false,
        }
    }

    fn lr(ds: &Dataset) -> (FloatModel, ServerModel) {
        let m = train_logistic_regression(ds, &lr_cfg()).unwrap();
        let s = ServerModel::compile(&m, ds, &qcfg()).unwrap();
        (m, s)
    }

    #[test]
    fn sensitivity_lr_bound_matches_the_formula() {
        let ds = breast_cancer();
        // The tests' λ with the fixed and the searched quantiser, and the demo's model
        // (client/src/demo.rs: λ = 0.1, R = 4, default quantiser). `--nocapture` prints the
        // numbers docs/privacy.md quotes.
        for (lambda, cfg) in [
            (LAMBDA, qcfg()),
            (LAMBDA, QuantConfig::default()),
            (0.1, QuantConfig::default()),
        ] {
            let lrc = LrConfig {
                l2_lambda: lambda,
                clip_norm: Some(R),
            };
            let m = train_logistic_regression(&ds, &lrc).unwrap();
            let server = ServerModel::compile(&m, &ds, &cfg).unwrap();
            let spec = server.client_spec();
            let s = server.output_sensitivity();
            let n = ds.train_x.len() as f64;
            let f = ds.feature_count() as f64;
            let qmax = spec.input_bound() as f64;
            let weight_l2 = 2.0 * (R * R + 1.0).sqrt() / (n * lambda);
            let query_norm = (f * (qmax * spec.input.scale).powi(2) + 1.0).sqrt();
            let slack = f * qmax + 1.0;
            let scale = spec.output.scale[0];
            let expected = (weight_l2 * query_norm / scale).ceil() + slack;
            let SensitivityDerivation::RegularisedLogistic {
                weight_l2: w,
                query_norm: q,
                rounding_slack_grid,
            } = s.derivation.clone()
            else {
                panic!("expected the LR bound, got {:?}", s.derivation);
            };
            assert!((w - weight_l2).abs() <= 1e-12 * weight_l2);
            assert!((q - query_norm).abs() <= 1e-12 * query_norm);
            assert_eq!(rounding_slack_grid as f64, slack);
            assert_eq!(s.grid_units.len(), 1);
            let got = s.grid_units[0];
            assert!(got >= 1);
            assert!(
                (got as f64 - expected).abs() <= 1.0,
                "{got} vs formula {expected}"
            );
            assert_eq!(s.l1(), got);
            assert_eq!(s.l2(), got);
            // Discrete Laplace at ε = 1: scale Δ grid units, |noise| ≤ 41·ln2·Δ w.p. 1 − 2^-40.
            let tail = (41.0 * std::f64::consts::LN_2 * got as f64).ceil();
            eprintln!(
                "LR λ={lambda} R={R} n={n} input range {:.3}: Δ = {got} grid units = {:.4} \
                 score units (‖Δθ‖ ≤ {weight_l2:.5}, query norm {query_norm:.3}, rounding \
                 slack {slack}, output scale {scale:.4e}); max_abs {}, max_offset {}; \
                 Laplace at ε=1: scale {:.4} score units, 2^-40 tail {tail} grid units; \
                 a query norm of √(R²+1) (trusting the clip) would give {:.4} score units",
                qmax * spec.input.scale,
                got as f64 * scale,
                spec.output.max_abs,
                server.max_offset(),
                got as f64 * scale,
                2.0 * (R * R + 1.0) / (n * lambda),
            );
            assert!(tail <= server.max_offset() as f64);
            // What a deployed model (compiled with input proofs) uses: the proven box
            // [−qmax, qmax + 1], one unit wider than the quantiser's.
            let mut proven = spec.clone();
            proven.input_proof = Some(crate::proof::InputProofSpec {
                crs_hash: [0; 32],
                offset: spec.input.qmax,
                message_bits: 8,
            });
            let p = logistic_bound(&proven).expect("LR bound").grid_units[0];
            assert!(p > got, "{p} vs {got}");
            eprintln!(
                "  with input proofs (box [-qmax, qmax+1]): Δ = {p} grid units = {:.4} score \
                 units, 2^-40 Laplace tail at ε=1: {} grid units",
                p as f64 * scale,
                (41.0 * std::f64::consts::LN_2 * p as f64).ceil()
            );
        }
    }

    #[test]
    fn sensitivity_assumes_a_regularised_intercept() {
        // The bound needs the exact minimiser of mean(loss) + λ/2·‖θ‖² over θ = (w, b): the
        // gradient vanishes in every coordinate, the intercept's included.
        let ds = breast_cancer();
        let m = train_logistic_regression(&ds, &lr_cfg()).unwrap();
        let w = &m.layers[0].weights[0];
        let b = m.layers[0].bias[0];
        let n = ds.train_x.len() as f64;
        let mut g = vec![0.0; w.len() + 1];
        for (x, &y) in ds.train_x.iter().zip(&ds.train_y) {
            let z = m.preprocess(x);
            let dot: f64 = w.iter().zip(&z).map(|(a, c)| a * c).sum();
            let r = crate::model::sigmoid(dot + b) - y as f64;
            for (gi, zi) in g.iter_mut().zip(z.iter().chain([&1.0])) {
                *gi += r * zi / n;
            }
        }
        for (gi, ti) in g.iter().zip(w.iter().chain([&b])) {
            assert!((gi + LAMBDA * ti).abs() < 1e-9, "{gi} {ti}");
        }
    }

    #[test]
    fn sensitivity_of_networks_and_unclipped_lr_is_the_output_range() {
        let ds = breast_cancer();
        let cfg = MlpConfig {
            epochs: 300,
            ..MlpConfig::default()
        };
        let mlp = train_mlp(&ds, &cfg).unwrap();
        let server = ServerModel::compile(&mlp, &ds, &QuantConfig::default()).unwrap();
        let s = server.output_sensitivity();
        assert_eq!(s.derivation, SensitivityDerivation::OutputRange);
        let max_abs = server.client_spec().output.max_abs as u64;
        assert!(max_abs > 0);
        assert_eq!(
            s.grid_units,
            vec![2 * max_abs; server.client_spec().output.count()]
        );

        let unclipped = train_logistic_regression(&ds, &LrConfig::default()).unwrap();
        assert!(unclipped.clip_norm.is_none());
        let server = ServerModel::compile(&unclipped, &ds, &qcfg()).unwrap();
        let s = server.output_sensitivity();
        assert_eq!(s.derivation, SensitivityDerivation::OutputRange);
        assert_eq!(
            s.grid_units,
            vec![2 * server.client_spec().output.max_abs as u64]
        );
    }

    #[test]
    fn sensitivity_bounds_neighbouring_models_on_the_test_rows() {
        let ds = breast_cancer();
        let (float_a, a) = lr(&ds);
        let bound = a.output_sensitivity().grid_units[0] as f64;
        let scale_a = a.output_scale()[0];
        // Neighbours that move the model most: the most confidently classified train rows
        // removed, or replaced by the same features with the opposite label.
        let mut order: Vec<(f64, usize)> = ds
            .train_x
            .iter()
            .enumerate()
            .map(|(i, x)| (-float_a.logits(x)[0].abs(), i))
            .collect();
        order.sort_by(|p, q| p.0.total_cmp(&q.0));
        let mut neighbours = vec![];
        for &(_, i) in order.iter().take(3) {
            let mut removed = ds.clone();
            removed.train_x.remove(i);
            removed.train_y.remove(i);
            neighbours.push((format!("row {i} removed"), removed));
            let mut flipped = ds.clone();
            flipped.train_y[i] = 1 - flipped.train_y[i];
            neighbours.push((format!("row {i} label flipped"), flipped));
        }
        // And a row replaced by a copy of another (other class).
        let j = ds.train_y.iter().position(|&y| y != ds.train_y[0]).unwrap();
        let mut replaced = ds.clone();
        replaced.train_x[0] = ds.train_x[j].clone();
        replaced.train_y[0] = ds.train_y[j];
        neighbours.push(("row 0 replaced by another".into(), replaced));

        let mut worst = 0.0f64;
        for (what, nds) in &neighbours {
            let (_, b) = lr(nds);
            // Compare on A's grid: B's integers rescaled by its own output scale. The two
            // compilations pick their weight scale from their own weights, so the grids differ
            // slightly; the bound then scales by the ratio (see docs/privacy.md).
            let ratio = b.output_scale()[0] / scale_a;
            let allowed = bound * ratio.max(1.0);
            for x in &ds.test_x {
                let qa = a.eval_clear(x).unwrap()[0] as f64;
                let qb = b.eval_clear(x).unwrap()[0] as f64;
                let d = (qa - qb * ratio).abs();
                assert!(d <= allowed, "{what}: |Δq| = {d} > bound {allowed}");
                worst = worst.max(d / allowed);
            }
        }
        eprintln!("largest |Δq| over neighbours and test rows: {worst:.4} of the bound");
    }
}
