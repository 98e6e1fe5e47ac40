//! ONNX import against independent outputs (onnxruntime, sklearn) and against the Rust path.

mod common;

use serde_json::Value;
use smidl_fhe::client::ClientKey;
use smidl_fhe::model::onnx::{export_onnx, import_onnx};
use smidl_fhe::model::train::{train_logistic_regression, train_mlp, LrConfig, MlpConfig};
use smidl_fhe::model::{Activation, ModelKind, Normaliser, OutputTransform};
use smidl_fhe::quant::{quantise, QuantConfig};
use smidl_fhe::server::ServerModel;

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{}/fixtures/{name}", env!("CARGO_MANIFEST_DIR"))).unwrap()
}

fn expected() -> Value {
    serde_json::from_slice(&fixture("expected.json")).unwrap()
}

fn floats(v: &Value) -> Vec<f64> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_f64().unwrap())
        .collect()
}

fn assert_probs_match(m: &smidl_fhe::FloatModel, probs: &[f64]) {
    let ds = common::data();
    assert_eq!(probs.len(), ds.test_x.len());
    for (x, p) in ds.test_x.iter().zip(probs) {
        let ours = m.predict_proba(x)[1];
        // onnxruntime computes in float32.
        assert!((ours - p).abs() < 2e-5, "{ours} vs onnxruntime {p}");
    }
}

#[test]
fn sklearn_logistic_regression_imports_exactly() {
    let m = import_onnx(&fixture("lr_sklearn.onnx")).unwrap();
    assert_eq!(m.kind, ModelKind::LogisticRegression);
    assert_eq!(m.output, OutputTransform::Sigmoid);
    let e = &expected()["lr_sklearn"];
    assert_probs_match(&m, &floats(&e["test_prob_malignant"]));
    for (a, b) in m.layers[0].weights[0].iter().zip(floats(&e["coef"])) {
        assert!((a - b).abs() < 1e-6);
    }
}

#[test]
fn rust_trained_lr_matches_sklearn_on_the_same_objective() {
    // Same data, same standardisation, same λ: a convex problem, so the same optimum.
    let e = &expected()["lr_sklearn"];
    let ds = common::data();
    let cfg = LrConfig {
        l2_lambda: e["lambda"].as_f64().unwrap(),
        clip_norm: None,
    };
    let ours = train_logistic_regression(ds, &cfg).unwrap();
    for (a, b) in ours.layers[0].weights[0].iter().zip(floats(&e["coef"])) {
        assert!((a - b).abs() < 1e-4, "{a} vs sklearn {b}");
    }
    assert!((ours.layers[0].bias[0] - e["intercept"].as_f64().unwrap()).abs() < 1e-4);
    let imported = import_onnx(&fixture("lr_sklearn.onnx")).unwrap();
    // Quantised, both give the same classes on the whole test split.
    let qa = quantise(&ours, ds, &QuantConfig::default()).unwrap();
    let qb = quantise(&imported, ds, &QuantConfig::default()).unwrap();
    for x in &ds.test_x {
        assert_eq!(qa.predict_class(x).unwrap(), qb.predict_class(x).unwrap());
    }
}

#[test]
fn sklearn_mlp_imports_and_runs_encrypted() {
    let m = import_onnx(&fixture("mlp_sklearn.onnx")).unwrap();
    assert_eq!(m.kind, ModelKind::Mlp);
    assert_eq!(m.layers[0].activation, Activation::Relu);
    assert_eq!(m.output, OutputTransform::Sigmoid);
    let e = &expected()["mlp_sklearn"];
    assert_probs_match(&m, &floats(&e["test_prob_malignant"]));
    // The same network built through the Rust API from the raw weights gives the same model.
    let w1: Vec<Vec<f64>> = e["w1"].as_array().unwrap().iter().map(floats).collect();
    for (a, b) in m.layers[0]
        .weights
        .iter()
        .flatten()
        .zip(w1.iter().flatten())
    {
        assert!((a - b).abs() < 1e-6);
    }
    // Sigmoid-output networks compile to one head; FHE equals clear on a few samples.
    let ds = common::data();
    let server = ServerModel::compile(&m, ds, &QuantConfig::default()).unwrap();
    assert_eq!(server.client_spec().output.count(), 1);
    let client = ClientKey::generate(server.client_spec()).unwrap();
    let key = server
        .prepare_key(&client.evaluation_key().unwrap())
        .unwrap();
    for x in ds.test_x.iter().step_by(40) {
        let out = server
            .evaluate(&client.encrypt(x).unwrap(), Some(&key))
            .unwrap();
        assert_eq!(
            client.decrypt_raw(&out).unwrap(),
            server.eval_clear(x).unwrap()
        );
    }
}

#[test]
fn torch_layout_mlp_imports() {
    let mut m = import_onnx(&fixture("mlp_torch.onnx")).unwrap();
    assert_eq!(m.output, OutputTransform::Softmax);
    assert_eq!(m.layers.len(), 2);
    // torch graphs take standardised inputs: the normaliser comes from the data pipeline.
    let e = &expected()["mlp_torch"];
    m.normaliser = Normaliser {
        mean: floats(&e["mean"]),
        std: floats(&e["std"]),
    };
    assert_probs_match(&m, &floats(&e["test_prob_malignant"]));
}

#[test]
fn export_then_import_reproduces_the_rust_trained_mlp() {
    let ds = common::data();
    let cfg = MlpConfig {
        epochs: 300,
        ..MlpConfig::default()
    };
    let ours = train_mlp(ds, &cfg).unwrap();
    let back = import_onnx(&export_onnx(&ours).unwrap()).unwrap();
    assert_eq!(back.layers.len(), ours.layers.len());
    assert_eq!(back.output, ours.output);
    for x in &ds.test_x {
        let (a, b) = (ours.predict_proba(x), back.predict_proba(x));
        assert!((a[1] - b[1]).abs() < 1e-5);
    }
    let qa = quantise(&ours, ds, &QuantConfig::default()).unwrap();
    let qb = quantise(&back, ds, &QuantConfig::default()).unwrap();
    let agree = ds
        .test_x
        .iter()
        .filter(|x| qa.predict_class(x).unwrap() == qb.predict_class(x).unwrap())
        .count();
    assert!(agree >= ds.test_x.len() - 2, "{agree}");
}

#[test]
fn malformed_onnx_is_a_typed_error() {
    use smidl_fhe::FheError;
    let good = fixture("mlp_torch.onnx");
    assert!(matches!(
        import_onnx(&good[..good.len() / 2]),
        Err(FheError::Onnx(_))
    ));
    assert!(matches!(
        import_onnx(b"not a protobuf \xff\xff"),
        Err(FheError::Onnx(_))
    ));
    assert!(matches!(import_onnx(&[]), Err(FheError::Onnx(_))));
    let huge = vec![0u8; smidl_fhe::model::onnx::MAX_ONNX_BYTES + 1];
    assert!(matches!(import_onnx(&huge), Err(FheError::Onnx(_))));
}
