//! Label answers for linear models: a logistic regression compiled with
//! `ServerModel::with_label_answers` answers with the sign of its score (sign bootstrap after
//! scaling by c, randomised response, sanitising rounds) and never with the score.

mod common;

use std::time::Instant;

use rayon::prelude::*;
use smidl_fhe::client::{AnswerKind, ClientSpec, EncryptedInput, EncryptedOutput, EvaluationKey};
use smidl_fhe::sanitise::LabelBound;
use smidl_fhe::server::{ServerModel, VerifiedInput};
use smidl_fhe::FheError;

/// Encrypt `x` as the client does (unproven: the proof is checked in `flip_negates_the_label`,
/// and proving all 114 rows would cost minutes) and bring it through the wire format.
fn encrypted(s: &common::Setup, x: &[f64]) -> EncryptedInput {
    let spec = s.server.client_spec();
    EncryptedInput::from_bytes(&s.client.encrypt(x).unwrap().to_bytes(), spec).unwrap()
}

/// The worker's answer, through the wire format, decrypted by the client.
fn answer(s: &common::Setup, input: &EncryptedInput, flip: bool) -> usize {
    let spec = s.server.client_spec();
    let key = s.key.as_ref().unwrap();
    let out = s
        .server
        .answer_label(&VerifiedInput::assume_verified(input), key, flip)
        .unwrap();
    let out = EncryptedOutput::from_bytes(&out.to_bytes(spec), spec).unwrap();
    let pred = s.client.decrypt_answer(&out).unwrap();
    assert!(pred.scores.is_empty() && pred.probabilities.is_empty());
    pred.class
}

#[test]
fn label_answers_equal_the_clear_label_outside_the_margin() {
    let s = common::label_lr();
    let ds = common::data();
    let ll = s.server.linear_label().expect("a label LR");
    let spec = s.server.client_spec();
    let margin = ll.margin_units;
    eprintln!(
        "c = {}, max phase 2^{:.2}, read std 2^{:.2} ({:.2} positions), read bound 2^{:.2}, \
         scaled input noise 2^{:.1}; margin {margin} units = {:.4} logits (max_abs {})",
        ll.scale,
        ll.max_phase.log2(),
        ll.read_std.log2(),
        ll.read_std / 2f64.powi(52),
        ll.read_bound.log2(),
        ll.scaled_input_noise.log2(),
        ll.margin_score(spec),
        spec.output.max_abs
    );
    assert!(ll.scale > 1, "c = {}", ll.scale);
    // The scaled phase stays well inside the half torus for every accepted input.
    assert!(ll.max_phase + ll.read_bound < 2f64.powi(63) - 2f64.powi(59));
    let t = Instant::now();
    let rows: Vec<(i64, usize, usize)> = (0..ds.test_x.len())
        .into_par_iter()
        .map(|i| {
            let x = &ds.test_x[i];
            let got = answer(s, &encrypted(s, x), false);
            let score = s.server.eval_clear(x).unwrap()[0];
            let clear = s.server.clear_label(x).unwrap();
            assert_eq!(clear, usize::from(score > 0));
            (score, clear, got)
        })
        .collect();
    let per_answer_ms =
        t.elapsed().as_secs_f64() * 1e3 / rows.len() as f64 * rayon::current_num_threads() as f64;
    let inside: Vec<i64> = rows
        .iter()
        .map(|r| r.0)
        .filter(|sc| sc.abs() <= margin)
        .collect();
    // The model's probability that the read noise flips a score s: P(N(0, σ) > c·Δ·|s − ½|).
    let unit = ll.scale as f64 * spec.output_delta as f64;
    let expected_flips: f64 = rows
        .iter()
        .map(|r| {
            let z = unit * (r.0 as f64 - 0.5).abs() / ll.read_std;
            0.5 * smidl_fhe::params::erfc(z / std::f64::consts::SQRT_2)
        })
        .sum();
    let wrong: Vec<&(i64, usize, usize)> = rows.iter().filter(|(_, c, g)| c != g).collect();
    let agreement = 1.0 - wrong.len() as f64 / rows.len() as f64;
    eprintln!(
        "{} rows: {} disagree (scores {:?}); {} within the margin of ±{margin} units (scores \
         {inside:?}), expected disagreements under the noise model {expected_flips:.2}; \
         ~{per_answer_ms:.0} ms per answer on one core",
        rows.len(),
        wrong.len(),
        wrong.iter().map(|r| r.0).collect::<Vec<_>>(),
        inside.len()
    );
    for (score, clear, got) in &rows {
        if score.abs() > margin {
            assert_eq!(clear, got, "score {score} outside the margin {margin}");
        }
    }
    assert!(agreement >= 0.97, "agreement {agreement}");
    // The labels are those of a good classifier (not, say, all one class).
    let correct = rows
        .iter()
        .zip(&ds.test_y)
        .filter(|((_, _, got), &y)| *got == y as usize)
        .count();
    assert!(correct as f64 >= 0.95 * rows.len() as f64, "{correct}");
}

/// The read noise of the sign bootstrap (key switch to n = 918 plus the centred modulus switch
/// to 2N = 4096), measured with the client key on real scaled score ciphertexts, matches the
/// model the margin is computed from.
#[test]
fn sign_read_noise_matches_the_model() {
    let s = common::label_lr();
    let ds = common::data();
    let ll = s.server.linear_label().unwrap();
    let spec = s.server.client_spec();
    let key = s.key.as_ref().unwrap();
    let delta = spec.output_delta as i128;
    let errors: Vec<f64> = (0..ds.test_x.len() * 4)
        .into_par_iter()
        .map(|i| {
            let x = &ds.test_x[i % ds.test_x.len()];
            let small = s.server.debug_sign_read(&encrypted(s, x), key).unwrap();
            let score = s.server.eval_clear(x).unwrap()[0] as i128;
            // c·Δ·(s − ½), on the torus.
            let phase = (ll.scale as i128 * (delta * score - delta / 2)) as u64;
            s.client.mod_switch_error_positions(&small, phase)
        })
        .collect();
    let n = errors.len() as f64;
    let var = errors.iter().map(|e| e * e).sum::<f64>() / n;
    let mean = errors.iter().sum::<f64>() / n;
    let predicted = (ll.read_std / 2f64.powi(52)).powi(2);
    let max = errors.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    eprintln!(
        "sign read error over {n} ciphertexts: mean {mean:.3}, std {:.3} positions (model {:.3}), \
         largest |error| {max:.2} positions; read bound {:.1} positions",
        var.sqrt(),
        predicted.sqrt(),
        ll.read_bound / 2f64.powi(52)
    );
    // Standard error of a variance estimate: √(2/n) relative; allow 5 of them.
    let tol = 5.0 * (2.0 / n).sqrt();
    assert!(var <= predicted * (1.0 + tol), "{var} vs {predicted}");
    assert!(var >= predicted * (1.0 - tol) * 0.5, "{var} vs {predicted}");
    assert!(
        mean.abs() < 5.0 * predicted.sqrt() / n.sqrt(),
        "mean {mean}"
    );
}

#[test]
fn flip_negates_the_label_through_the_worker_path() {
    let s = common::label_lr();
    let ds = common::data();
    let spec = s.server.client_spec();
    let margin = s.server.linear_label().unwrap().margin_units;
    let crs = s
        .server
        .input_crs()
        .expect("label LRs keep their input proofs");
    let rows: Vec<usize> = (0..ds.test_x.len())
        .filter(|&i| s.server.eval_clear(&ds.test_x[i]).unwrap()[0].abs() > margin)
        .take(3)
        .collect();
    for (k, &i) in rows.iter().enumerate() {
        let x = &ds.test_x[i];
        let clear = s.server.clear_label(x).unwrap();
        let input = if k == 0 {
            // As in production: proven, sent, verified.
            let wire = s.client.encrypt_proven(x, crs).unwrap().to_bytes();
            let input = EncryptedInput::from_bytes(&wire, spec).unwrap();
            s.server.verify_input(&input).unwrap();
            input
        } else {
            encrypted(s, x)
        };
        let t = Instant::now();
        assert_eq!(answer(s, &input, true), 1 - clear, "row {i}");
        eprintln!(
            "one label answer (flipped): {:.1} ms",
            t.elapsed().as_secs_f64() * 1e3
        );
        assert_eq!(answer(s, &input, false), clear, "row {i}");
    }
    // An unproven input is still refused before anything is evaluated.
    let unproven = encrypted(s, &ds.test_x[0]);
    assert!(matches!(
        s.server.verify_input(&unproven),
        Err(FheError::InputRefused(_))
    ));
}

#[test]
fn score_and_label_paths_refuse_each_other() {
    let label = common::label_lr();
    let score = common::lr();
    let x = &common::data().test_x[5];
    let key = label.key.as_ref().unwrap();

    let input = encrypted(label, x);
    let checked = VerifiedInput::assume_verified(&input);
    for k in [None, Some(key)] {
        match label.server.answer(&checked, k, &[0]) {
            Err(FheError::LabelAnswer(m)) => assert!(m.contains("answer_label"), "{m}"),
            Err(e) => panic!("wrong error {e}"),
            Ok(_) => panic!("a label LR answered with its score"),
        }
    }

    let input = encrypted(score, x);
    let checked = VerifiedInput::assume_verified(&input);
    match score.server.answer_label(&checked, key, false) {
        Err(FheError::LabelAnswer(m)) => assert!(m.contains("use answer"), "{m}"),
        Err(e) => panic!("wrong error {e}"),
        Ok(_) => panic!("a score LR answered with a label"),
    }
    // Both refusals happen before anything is evaluated; the right path still answers.
    let input = encrypted(label, x);
    let checked = VerifiedInput::assume_verified(&input);
    assert!(label.server.answer_label(&checked, key, false).is_ok());
}

#[test]
fn label_spec_round_trips_and_differs_from_the_score_spec() {
    let label = common::label_lr();
    let score = common::lr();
    let ls = label.server.client_spec();
    let ss = score.server.client_spec();

    assert_eq!(ls.answer, AnswerKind::Label);
    assert!(ls.is_linear() && ls.answers_are_labels());
    assert!(ls.needs_evaluation_key() && ls.needs_keyswitch_key());
    assert_eq!(ls.metadata.bootstraps, 0);
    assert_eq!(ss.answer, AnswerKind::Score);
    assert!(!ss.answers_are_labels() && !ss.needs_evaluation_key() && !ss.needs_keyswitch_key());
    // Same weights, same proofs: only the answer kind differs.
    assert_eq!(ls.input_proof, ss.input_proof);
    assert_eq!(ls.output, ss.output);

    let back = ClientSpec::from_bytes(&ls.to_bytes()).unwrap();
    assert_eq!(&back, ls);
    assert_eq!(back.id(), ls.id());
    assert_ne!(ls.id(), ss.id());
    assert_ne!(label.server.commitment(), score.server.commitment());
    assert_ne!(ls.to_bytes(), ss.to_bytes());

    // The server model keeps the choice through its canonical bytes, and the builder is
    // idempotent.
    let reopened = ServerModel::from_canonical_bytes(&label.server.canonical_bytes())
        .unwrap()
        .with_label_answers()
        .unwrap();
    assert_eq!(reopened.commitment(), label.server.commitment());
    assert!(reopened.flood_bound().is_none());
    assert!(score.server.linear_label().is_none());

    // The evaluation key: bootstrapping and key-switching keys of the LR set, bound to the spec.
    let ek = label.client.evaluation_key().unwrap();
    eprintln!("label LR evaluation key: {} bytes", ek.size_bytes());
    let bytes = ek.to_bytes();
    assert!(EvaluationKey::from_bytes(&bytes, ls).is_ok());
    assert!(matches!(
        EvaluationKey::from_bytes(&bytes, ss),
        Err(FheError::WrongParameters { .. })
    ));
    assert!(score.client.evaluation_key().is_none());

    // The sanitising rounds on the LR set's own bootstrap.
    let lb = LabelBound::for_params(ls.params);
    eprintln!(
        "label bound: PBS noise bound 2^{:.1}, per round 2^{:.1}, per answer 2^{:.1}",
        lb.pbs_noise_bound.log2(),
        lb.per_round.log2(),
        lb.statistical_distance().log2()
    );
    assert!(lb.statistical_distance() < 2f64.powi(-20), "{lb:?}");

    // A spec claiming label answers for a multi-output linear model is refused.
    let mut bad = ls.clone();
    bad.output.scale.push(1.0);
    bad.output.decode = smidl_fhe::quant::OutputDecode::Identity;
    assert!(matches!(
        ClientSpec::from_bytes(&bad.to_bytes()),
        Err(FheError::Corrupted { .. })
    ));
}
