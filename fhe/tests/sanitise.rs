//! The sanitised answers decode to the right thing: linear scores within the flood of the clear
//! model's, network labels equal to the clear model's class, randomised response inverts the
//! label, and two answers to the same ciphertext never repeat.

mod common;

use smidl_fhe::client::{decode_scores, ClientKey, EncryptedOutput};
use smidl_fhe::sanitise::{flood_output_units, LabelBound, LINEAR_LOG2_FLOOD};

#[test]
fn linear_answers_decode_within_the_flood_and_are_fresh() {
    let s = common::lr();
    let spec = s.server.client_spec();
    let flood = flood_output_units(spec);
    assert_eq!(
        flood as u64,
        (1u64 << LINEAR_LOG2_FLOOD) / spec.output_delta
    );
    let fb = s.server.flood_bound().expect("linear models flood");
    assert!(fb.statistical_distance() < 2f64.powi(-18), "{fb:?}");
    let mut spread = 0;
    let crs = s
        .server
        .input_crs()
        .expect("linear models take proven inputs");
    for x in common::data().test_x.iter().take(4) {
        let input = s.client.encrypt_proven(x, crs).unwrap();
        let input = s.server.verify_input(&input).unwrap();
        let clear = s.server.eval_clear(x).unwrap();
        let a = s.server.answer(&input, None, &[5]).unwrap();
        let b = s.server.answer(&input, None, &[5]).unwrap();
        // Same input, same offset: different ciphertexts (fresh randomness every answer).
        assert_ne!(a.coefficients(), b.coefficients());
        for out in [a, b] {
            let out = EncryptedOutput::from_bytes(&out.to_bytes(spec), spec).unwrap();
            let got = s.client.decrypt_answer(&out).unwrap().raw[0];
            let dev = (got - clear[0] - 5).abs();
            assert!(
                dev <= flood + 1,
                "{got} vs {}: {dev} > {flood}",
                clear[0] + 5
            );
            spread = spread.max(dev);
        }
    }
    // The flood is really there (a uniform on ±4096 units stays below 1000 on 8 draws with
    // probability < 1e-5): the answers are not the raw evaluation.
    assert!(spread > 1000, "largest deviation {spread}");
}

#[test]
fn offsets_beyond_the_headroom_are_refused_not_clamped() {
    let s = common::lr();
    let crs = s.server.input_crs().unwrap();
    let input = s
        .client
        .encrypt_proven(&common::data().test_x[0], crs)
        .unwrap();
    let input = s.server.verify_input(&input).unwrap();
    let max = s.server.max_offset();
    assert!(s.server.answer(&input, None, &[max]).is_ok());
    assert!(s.server.answer(&input, None, &[max + 1]).is_err());
    assert!(s.server.answer(&input, None, &[-max - 1]).is_err());
}

#[test]
fn network_answers_are_labels_flipped_by_randomised_response() {
    let s = common::mlp();
    let spec = s.server.client_spec();
    assert!(spec.answers_are_labels());
    let key = s.key.as_ref().unwrap();
    let lb = LabelBound::for_params(spec.params);
    assert!(lb.statistical_distance() < 2f64.powi(-20), "{lb:?}");
    for x in common::data().test_x.iter().take(4) {
        let clear = s.server.eval_clear(x).unwrap();
        let values: Vec<f64> = clear
            .iter()
            .zip(spec.output_scale())
            .map(|(&v, s)| v as f64 * s)
            .collect();
        let want = decode_scores(spec.output.decode, &values).class;
        let input = s.client.encrypt(x).unwrap();
        let input = s.server.verify_input(&input).unwrap();
        let kept = s.server.answer_label(&input, key, false).unwrap();
        let flipped = s.server.answer_label(&input, key, true).unwrap();
        for (out, expect) in [(kept, want), (flipped, 1 - want)] {
            let out = EncryptedOutput::from_bytes(&out.to_bytes(spec), spec).unwrap();
            let p = s.client.decrypt_answer(&out).unwrap();
            assert_eq!(p.class, expect, "clear raw {clear:?}");
            assert!(p.scores.is_empty() && p.probabilities.is_empty());
        }
    }
    // The score path is closed for networks: nothing but the label leaves the worker.
    let input = s.client.encrypt(&common::data().test_x[0]).unwrap();
    let input = s.server.verify_input(&input).unwrap();
    assert!(s.server.answer(&input, Some(key), &[0]).is_err());
}

#[test]
fn client_keys_round_trip_with_their_public_key() {
    let s = common::lr();
    let bytes = s.client.to_bytes();
    let back = ClientKey::from_bytes(&bytes).unwrap();
    assert_eq!(back.public_key(), s.client.public_key());
}

/// The out-of-range attack: x = c·e_j with c ≫ qmax answers c·w_j on the unchecked path, so
/// one query reads a weight (and the LR sensitivity bound, which assumes |x_q,j| ≤ qmax + 1,
/// fails). The worker's input check refuses every way of sending it.
#[test]
fn attack_out_of_range_inputs_are_refused_before_evaluation() {
    let s = common::lr();
    let spec = s.server.client_spec();
    let crs = s.server.input_crs().unwrap();
    let f = spec.feature_count();
    let (j, c) = (3usize, 1000 * spec.input.qmax);
    let mut x = vec![0i64; f];
    x[j] = c;
    let zero = s.server.eval_clear_quantised(&vec![0; f])[0];
    let w_j = {
        let mut e = vec![0i64; f];
        e[j] = 1;
        s.server.eval_clear_quantised(&e)[0] - zero
    };
    assert_ne!(w_j, 0);

    // Unchecked path (the attack itself): the raw evaluation returns c·w_j exactly.
    let crafted = s.client.encrypt_quantised(&x).unwrap();
    let raw = s.server.evaluate(&crafted, None).unwrap();
    assert_eq!(s.client.decrypt_raw(&raw).unwrap()[0] - zero, c * w_j);

    // 1. No proof at all.
    let err = s.server.verify_input(&crafted).err().expect("refused");
    assert!(err.to_string().contains("proof"), "{err}");
    // 2. An honest client cannot prove it: the prover refuses.
    assert!(s.client.encrypt_quantised_proven(&x, crs).is_err());
    // 3. A valid proof of an in-range input, bodies swapped for the crafted ones.
    let honest = s.client.encrypt_quantised_proven(&vec![0; f], crs).unwrap();
    let mut forged = crafted.clone();
    forged.set_proof(honest.proof().map(<[u8]>::to_vec));
    let forged =
        smidl_fhe::EncryptedInput::from_bytes(&forged.to_bytes(), spec).expect("well formed");
    let err = s.server.verify_input(&forged).err().expect("refused");
    assert!(err.to_string().contains("does not verify"), "{err}");
    // 4. The honest input itself passes.
    assert!(s.server.verify_input(&honest).is_ok());
}
