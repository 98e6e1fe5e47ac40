//! Statistical checks of the bootstrap failure probability.
//!
//! 2^-40 cannot be observed directly, so the tests check the noise *model* that the bound is
//! computed from: (1) the measured modulus-switch noise of real accumulators matches the
//! modelled variance, and the bound recomputed from the measured variance (with a confidence
//! margin) is still ≤ 2^-40 for the deployed window; (2) on a deliberately overloaded window,
//! where failures are frequent, the observed failure count of real bootstraps matches the count
//! the model predicts. A wrong parameter choice (too large a window, or a noise model missing a
//! term) fails one of the two.

mod common;

use rayon::prelude::*;
use smidl_fhe::client::{ClientKey, EncryptedOutput};
use smidl_fhe::model::{ModelKind, Normaliser};
use smidl_fhe::params::{ParamSetId, STATED_LOG2_P_FAIL};
use smidl_fhe::quant::{InputQuant, OutputDecode, OutputQuant, QuantBody, Quantised};
use smidl_fhe::server::ServerModel;

#[test]
fn measured_mod_switch_noise_matches_the_model_and_the_bound_holds() {
    let s = common::mlp();
    let ds = common::data();
    let spec = s.server.client_spec();
    let p = spec.params.params();
    let QuantBodyView { window } = window_of(&s.server);
    let mut errors = vec![];
    {
        for x in ds.train_x.iter() {
            let q = spec.input.quantise(x).unwrap();
            let ct = s.client.encrypt_quantised(&q).unwrap();
            let accs = s.server.accumulators(&ct).unwrap();
            let clear = accumulator_values(&s.server, &q);
            for (acc, v) in accs.iter().zip(clear) {
                let phase = (v as u64).wrapping_mul(spec.input_delta);
                errors.push(s.client.mod_switch_error_positions(acc, phase));
            }
        }
    }
    let n = errors.len() as f64;
    assert!(n >= 3000.0, "{n} samples");
    let mean = errors.iter().sum::<f64>() / n;
    let var = errors.iter().map(|e| (e - mean) * (e - mean)).sum::<f64>() / (n - 1.0);
    let model_var = p.mod_switch_variance_positions();
    eprintln!(
        "mod-switch error: {n} samples, mean {mean:.3}, variance {var:.3} (model {model_var:.3})"
    );
    // Standard error of a variance estimate: var·sqrt(2/(n−1)) (Gaussian); allow 5 of them.
    let se = model_var * (2.0 / (n - 1.0)).sqrt();
    assert!(mean.abs() < 0.5, "mean {mean}");
    assert!(
        (var - model_var).abs() < 5.0 * se,
        "measured variance {var:.3} vs model {model_var:.3} (se {se:.3})"
    );
    // The bound recomputed with the measured variance, inflated by 2 standard errors.
    let upper = var + 2.0 * se;
    let two_n = 2.0 * p.polynomial_size.0 as f64;
    let log2_p = p.log2_p_fail_window(window, (upper - model_var).max(0.0) / (two_n * two_n));
    eprintln!("window {window}: p_fail with measured variance + 2 se = 2^{log2_p:.1}");
    assert!(log2_p <= STATED_LOG2_P_FAIL, "window {window}: 2^{log2_p}");
    // The same statistics reject a wrong choice: twice the window breaks the bound.
    assert!(p.log2_p_fail_window(2 * window, 0.0) > STATED_LOG2_P_FAIL);
}

struct QuantBodyView {
    window: u32,
}

fn window_of(server: &ServerModel) -> QuantBodyView {
    // The window is public: it is the input encoding (Δ = 2^64 / 2M).
    let spec = server.client_spec();
    let m = (2f64.powi(64) / spec.input_delta as f64 / 2.0).round() as u32;
    QuantBodyView { window: m }
}

/// The integer accumulators the server computes (needs the server model, like the server).
fn accumulator_values(server: &ServerModel, q: &[i64]) -> Vec<i64> {
    server.debug_accumulator_values(q)
}

/// One neuron reading x_0 through the identity table, on an overloaded window M: failures are
/// frequent enough to count, and their rate must match the model.
#[test]
fn bootstrap_failure_rate_matches_the_model_on_an_overloaded_window() {
    let window = 220u32;
    let params = ParamSetId::Pbs4096;
    let p = params.params();
    let q = Quantised {
        params,
        kind: ModelKind::Mlp,
        input: InputQuant {
            normaliser: Normaliser::identity(1),
            clip_norm: None,
            scale: 1.0,
            qmax: 1 << 10,
        },
        input_delta: smidl_fhe::params::delta_for_slots(2 * window as u64),
        body: QuantBody::Network {
            pre: vec![],
            weights: vec![vec![1]],
            bias: vec![0],
            window,
            tables: vec![vec![(0..window as i64).collect()]],
            head_bias: vec![0],
        },
        output: OutputQuant {
            decode: OutputDecode::Identity,
            scale: vec![1.0],
            slots: 1024,
            max_abs: window as i64 - 1,
        },
        output_delta: 1u64 << 54,
        output_bits: 24,
        train_rows: 0,
        l2_lambda: 0.0,
        neurons: vec![0],
    };
    let server = ServerModel::from_quantised(&q).unwrap();
    let spec = server.client_spec().clone();
    let client = ClientKey::generate(&spec).unwrap();
    let key = server
        .prepare_key(&client.evaluation_key().unwrap())
        .unwrap();
    let trials = 400usize;
    let failures: usize = (0..trials)
        .into_par_iter()
        .map(|t| {
            let a = ((t * 37) % window as usize) as i64;
            let ct = client.encrypt_quantised(&[a]).unwrap();
            let out = server.evaluate(&ct, Some(&key)).unwrap();
            let out = EncryptedOutput::from_bytes(&out.to_bytes(&spec), &spec).unwrap();
            usize::from(client.decrypt_raw(&out).unwrap() != vec![a])
        })
        .sum();
    let pf = p
        .log2_p_fail_window(window, p.input_noise_variance())
        .exp2();
    let expected = pf * trials as f64;
    let sd = (trials as f64 * pf * (1.0 - pf)).sqrt();
    eprintln!(
        "window {window}: {failures}/{trials} failures, model predicts {expected:.1} ± {sd:.1}"
    );
    assert!(
        (failures as f64 - expected).abs() <= 4.0 * sd + 1.0,
        "{failures} failures, model predicts {expected:.1} ± {sd:.1}"
    );
}
