//! Model extraction, run as a client would (Tramèr et al. 2016). DP training protects the
//! training rows, not the weights: exact scores of a d-feature LR give its d + 1 parameters
//! from d + 1 answers. Label-only answers plus an answer limit of d + 1 do not: the same client
//! recovers a poor direction, while the same label attack without the limit (thousands of
//! answers) succeeds, so the test keeps attacking the path the limit protects.
//!
//! Score answers go through the real FHE path (encrypt, `ServerModel::answer` with the
//! private mode's zero offsets and the sanitisation flood, decrypt). Label answers use the
//! clear label oracle `clear_label_quantised` for speed: `fhe/tests/label_lr.rs` shows the
//! encrypted label equals it outside a margin of 0.67 logits (any difference only weakens the
//! label attacker further).

use smidl_dp::train::{compile_private_lr_unproven, train_private_lr, PrivateLrConfig};
use smidl_dp::TrainingBudget;
use smidl_fhe::dataset::breast_cancer;
use smidl_fhe::server::VerifiedInput;
use smidl_fhe::{ClientKey, ServerModel};

/// A model trained with DP at ε = 1, as `--privacy private-model` deploys it.
fn private_model() -> ServerModel {
    let ds = breast_cancer();
    let private = train_private_lr(
        &ds,
        &PrivateLrConfig::with_defaults(TrainingBudget::PureEpsilon {
            epsilon_micro: 1_000_000,
        }),
    )
    .expect("private training");
    compile_private_lr_unproven(&private, &ds).expect("compile")
}

/// The integer parameters (w_1..w_d, b) in output units, read from the clear model: the
/// ground truth the attacker never sees.
fn true_parameters(server: &ServerModel) -> Vec<f64> {
    let d = server.client_spec().feature_count();
    let zero = vec![0i64; d];
    let b = server.eval_clear_quantised(&zero)[0];
    let mut theta: Vec<f64> = (0..d)
        .map(|j| {
            let mut e = zero.clone();
            e[j] = 1;
            (server.eval_clear_quantised(&e)[0] - b) as f64
        })
        .collect();
    theta.push(b as f64);
    theta
}

fn cosine(a: &[f64], b: &[f64]) -> f64 {
    let dot: f64 = a.iter().zip(b).map(|(x, y)| x * y).sum();
    let n = |v: &[f64]| v.iter().map(|x| x * x).sum::<f64>().sqrt();
    dot / (n(a) * n(b))
}

/// Row `i` of the 32 × 32 Sylvester–Hadamard matrix, entry `j`: ±1.
fn hadamard(i: usize, j: usize) -> f64 {
    if (i & j).count_ones().is_multiple_of(2) {
        1.0
    } else {
        -1.0
    }
}

/// Solve the square system A·θ = y (Gaussian elimination with partial pivoting).
#[allow(clippy::needless_range_loop)] // rows r and c of one matrix: index form reads best
fn solve(mut a: Vec<Vec<f64>>, mut y: Vec<f64>) -> Vec<f64> {
    let n = y.len();
    for c in 0..n {
        let p = (c..n)
            .max_by(|&i, &k| a[i][c].abs().total_cmp(&a[k][c].abs()))
            .unwrap();
        a.swap(c, p);
        y.swap(c, p);
        for r in c + 1..n {
            let f = a[r][c] / a[c][c];
            for k in c..n {
                a[r][k] -= f * a[c][k];
            }
            y[r] -= f * y[c];
        }
    }
    let mut x = vec![0.0; n];
    for r in (0..n).rev() {
        let s: f64 = (r + 1..n).map(|k| a[r][k] * x[k]).sum();
        x[r] = (y[r] - s) / a[r][r];
    }
    x
}

/// The label attacker's best generic strategy with `n` answers: query `n` inputs spread over
/// the box (a fixed, query-independent design), then fit the halfspace the labels show by
/// logistic regression. Returns the estimated (w, b) direction.
fn label_attack(server: &ServerModel, n: usize) -> Vec<f64> {
    let d = server.client_spec().feature_count();
    let q = server.client_spec().input.qmax;
    // A deterministic pseudo-random design (the attacker's choice; any would do).
    let mut state = 0x9E37_79B9_7F4A_7C15u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut xs = Vec::with_capacity(n);
    let mut ys = Vec::with_capacity(n);
    for _ in 0..n {
        // Small inputs keep the labels informative (the boundary runs near the origin).
        let x: Vec<i64> = (0..d).map(|_| (next() % 41) as i64 - 20).collect();
        ys.push(f64::from(server.clear_label_quantised(&x) as u8));
        xs.push(x.iter().map(|&v| v as f64 / q as f64).collect::<Vec<f64>>());
    }
    // Plain gradient descent on the logistic loss with a little ridge.
    let mut theta = vec![0.0; d + 1];
    for _ in 0..3_000 {
        let mut grad = vec![0.0; d + 1];
        for (x, y) in xs.iter().zip(&ys) {
            let z: f64 = x.iter().zip(&theta).map(|(a, t)| a * t).sum::<f64>() + theta[d];
            let r = 1.0 / (1.0 + (-z).exp()) - y;
            for j in 0..d {
                grad[j] += r * x[j];
            }
            grad[d] += r;
        }
        for j in 0..=d {
            theta[j] -= 0.5 * (grad[j] / n as f64 + 1e-3 * theta[j]);
        }
    }
    // Back to the attacker's integer input units (w per unit of x_q, b as is).
    for t in theta.iter_mut().take(d) {
        *t /= q as f64;
    }
    theta
}

#[test]
fn score_answers_give_the_weights_from_d_plus_one_queries_labels_under_a_limit_do_not() {
    let server = private_model();
    let spec = server.client_spec().clone();
    let d = spec.feature_count();
    assert_eq!(d, 30);
    let truth = true_parameters(&server);
    let q = spec.input.qmax;

    // Score answers: d + 1 = 31 queries, rows 0..31 of a Hadamard design (±qmax on every
    // feature, the bias column of ones), through encryption, the worker's answer (private
    // mode: no per-query noise, sanitisation flood included) and decryption.
    let key = ClientKey::generate(&spec).expect("client key");
    let (mut a, mut y) = (Vec::new(), Vec::new());
    for i in 0..=d {
        let x: Vec<i64> = (1..=d).map(|j| q * hadamard(i, j) as i64).collect();
        let input = key.encrypt_quantised(&x).expect("encrypt");
        let out = server
            .answer(&VerifiedInput::assume_verified(&input), None, &[0])
            .expect("answer");
        let raw = key.decrypt_answer(&out).expect("decrypt").raw[0];
        let mut row: Vec<f64> = x.iter().map(|&v| v as f64).collect();
        row.push(1.0);
        a.push(row);
        y.push(raw as f64);
    }
    // Worst case of the solve per parameter: each answer is off by at most the flood (plus
    // one unit of decoding), so |error_j| ≤ (F + 1)·Σ_i |(A⁻¹)_ji|.
    let flood = smidl_fhe::sanitise::flood_output_units(&spec) as f64 + 1.0;
    let inverse_rows: Vec<Vec<f64>> = (0..=d)
        .map(|i| {
            let unit: Vec<f64> = (0..=d).map(|k| f64::from(u8::from(k == i))).collect();
            solve(a.clone(), unit)
        })
        .collect();
    let stolen = solve(a, y);
    let mut worst_ratio = 0.0f64;
    for j in 0..d {
        let bound = flood * inverse_rows.iter().map(|col| col[j].abs()).sum::<f64>();
        let err = (stolen[j] - truth[j]).abs();
        assert!(
            err <= bound,
            "weight {j}: error {err} beyond the flood's bound {bound}"
        );
        worst_ratio = worst_ratio.max(err / bound);
    }
    let weights_err = stolen
        .iter()
        .zip(&truth)
        .take(d)
        .map(|(s, t)| (s - t).abs())
        .fold(0.0, f64::max);
    // The weights are what extraction is about; the bias (one unit per answer against the
    // weights' 127) is recovered only to within the flood.
    let score_cos = cosine(&stolen[..d], &truth[..d]);
    eprintln!(
        "score attack, {} answers: cosine {score_cos:.5}, largest weight error {weights_err:.2} \
         units (weights up to {:.0}; ≤ {:.0}% of the flood's worst case)",
        d + 1,
        truth.iter().take(d).map(|t| t.abs()).fold(0.0, f64::max),
        100.0 * worst_ratio
    );
    assert!(score_cos > 0.95, "score attack failed: cosine {score_cos}");

    // Labels, capped at the same d + 1 answers (the limit an owner sets for all accounts
    // together): the direction stays far off.
    let limited = label_attack(&server, d + 1);
    let limited_cos = cosine(&limited[..d], &truth[..d]);
    // The unprotected path: the same label attack with no answer limit.
    let unlimited = label_attack(&server, 4_000);
    let unlimited_cos = cosine(&unlimited[..d], &truth[..d]);
    eprintln!(
        "label attack: {} answers cosine {limited_cos:.3}; 4000 answers cosine {unlimited_cos:.3}",
        d + 1
    );
    assert!(
        unlimited_cos > 0.9,
        "the label attack must work without a limit ({unlimited_cos}), or the test proves nothing"
    );
    assert!(
        limited_cos < 0.9,
        "d + 1 label answers extracted the direction: cosine {limited_cos}"
    );
}
