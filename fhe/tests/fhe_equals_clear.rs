//! The encrypted result decrypts to exactly the clear quantised result.

mod common;

use rayon::prelude::*;
use smidl_fhe::client::{EncryptedInput, EncryptedOutput};

#[test]
fn lr_fhe_equals_clear_on_the_whole_test_split() {
    let s = common::lr();
    let ds = common::data();
    let spec = s.server.client_spec();
    assert_eq!(spec.metadata.bootstraps, 0);
    assert_eq!(spec.metadata.clip_norm, Some(8.0));
    assert_eq!(spec.metadata.train_rows, 455);
    let mut correct = 0;
    for (x, &y) in ds.test_x.iter().zip(&ds.test_y) {
        // Through the wire formats, as in production.
        let wire = s.client.encrypt(x).unwrap().to_bytes();
        let ct = EncryptedInput::from_bytes(&wire, spec).unwrap();
        let out = s.server.evaluate(&ct, None).unwrap();
        let out = EncryptedOutput::from_bytes(&out.to_bytes(spec), spec).unwrap();
        let pred = s.client.decrypt(&out).unwrap();
        assert_eq!(pred.raw, s.server.eval_clear(x).unwrap());
        if pred.class == y as usize {
            correct += 1;
        }
        let p1 = pred.probabilities[1];
        assert!((p1 - smidl_fhe::model::sigmoid(pred.scores[0])).abs() < 1e-12);
    }
    let acc = correct as f64 / ds.test_x.len() as f64;
    assert!(acc >= 0.97, "LR FHE accuracy {acc}");
}

#[test]
fn mlp_fhe_equals_clear_on_a_sample() {
    let s = common::mlp();
    let ds = common::data();
    let spec = s.server.client_spec();
    assert!(spec.metadata.bootstraps > 0);
    // Every 8th test row: 15 samples, bootstraps spread over the cores.
    let rows: Vec<usize> = (0..ds.test_x.len()).step_by(8).collect();
    let results: Vec<(Vec<i64>, Vec<i64>)> = rows
        .par_iter()
        .map(|&i| {
            let x = &ds.test_x[i];
            let wire = s.client.encrypt(x).unwrap().to_bytes();
            let ct = EncryptedInput::from_bytes(&wire, spec).unwrap();
            let out = s.server.evaluate(&ct, s.key.as_ref()).unwrap();
            let out = EncryptedOutput::from_bytes(&out.to_bytes(spec), spec).unwrap();
            (
                s.client.decrypt(&out).unwrap().raw,
                s.server.eval_clear(x).unwrap(),
            )
        })
        .collect();
    for (fhe, clear) in results {
        assert_eq!(fhe, clear);
    }
}

#[test]
fn offsets_shift_the_decrypted_output_exactly() {
    let s = common::lr();
    let x = &common::data().test_x[3];
    let clear = s.server.eval_clear(x).unwrap();
    let mut out = s
        .server
        .evaluate(&s.client.encrypt(x).unwrap(), None)
        .unwrap();
    s.server.add_offset(&mut out, &[-12345]).unwrap();
    assert_eq!(s.client.decrypt_raw(&out).unwrap(), vec![clear[0] - 12345]);
    let too_big = s.server.max_offset() + 1;
    assert!(matches!(
        s.server.add_offset(&mut out, &[too_big]),
        Err(smidl_fhe::FheError::OffsetOutOfRange { .. })
    ));
    assert!(matches!(
        s.server.add_offset(&mut out, &[1, 2]),
        Err(smidl_fhe::FheError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn mlp_offset_and_class_decoding() {
    let s = common::mlp();
    let x = &common::data().test_x[0];
    let clear = s.server.eval_clear(x).unwrap();
    let mut out = s
        .server
        .evaluate(&s.client.encrypt(x).unwrap(), s.key.as_ref())
        .unwrap();
    let off = s.server.max_offset().min(5);
    s.server.add_offset(&mut out, &[off]).unwrap();
    let pred = s.client.decrypt(&out).unwrap();
    assert_eq!(pred.raw, vec![clear[0] + off]);
    // Softmax over [0, logit]: class 1 iff the relative logit is positive.
    assert_eq!(pred.scores[0], 0.0);
    assert_eq!(pred.class == 1, pred.scores[1] > 0.0);
    assert!((pred.probabilities.iter().sum::<f64>() - 1.0).abs() < 1e-12);
}

#[test]
fn two_hidden_layer_mlp_fhe_equals_clear() {
    use smidl_fhe::client::{ClientKey, EvaluationKey};
    use smidl_fhe::model::train::{train_mlp, MlpConfig};
    use smidl_fhe::quant::quantise;
    use smidl_fhe::server::ServerModel;
    let ds = common::data();
    let cfg = MlpConfig {
        hidden: vec![12, 8],
        epochs: 400,
        ..MlpConfig::default()
    };
    let m = train_mlp(ds, &cfg).unwrap();
    let q = quantise(&m, ds, &Default::default()).unwrap();
    let acc = q.accuracy(&ds.test_x, &ds.test_y).unwrap();
    assert!(acc >= 0.9, "clear-quantised accuracy {acc}");
    let server = ServerModel::from_quantised(&q).unwrap();
    let spec = server.client_spec();
    assert_eq!(spec.metadata.pbs_layers, 2);
    assert!(spec.needs_keyswitch_key());
    let client = ClientKey::generate(spec).unwrap();
    let ek = EvaluationKey::from_bytes(&client.evaluation_key().unwrap().to_bytes(), spec).unwrap();
    let key = server.prepare_key(&ek).unwrap();
    for x in ds.test_x.iter().step_by(50) {
        let out = server
            .evaluate(&client.encrypt(x).unwrap(), Some(&key))
            .unwrap();
        assert_eq!(
            client.decrypt_raw(&out).unwrap(),
            server.eval_clear(x).unwrap()
        );
    }
}
