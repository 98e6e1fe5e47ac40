//! End-to-end demo of the client/server split on the embedded data set (no files needed):
//! provider compiles and seals a model, client encrypts one row, worker evaluates and adds a
//! DP offset, client decrypts.
//!
//! cargo run --release -p smidl-fhe --example demo -- [lr|mlp]

use smidl_fhe::client::{ClientKey, ClientSpec, EncryptedInput, EncryptedOutput, EvaluationKey};
use smidl_fhe::dataset::breast_cancer;
use smidl_fhe::model::train::{train_logistic_regression, train_mlp, LrConfig, MlpConfig};
use smidl_fhe::store::{open_model, seal_model, ModelKey};
use smidl_fhe::{QuantConfig, ServerModel};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let which = std::env::args().nth(1).unwrap_or_else(|| "lr".into());
    let ds = breast_cancer();

    // Provider: train, compile, seal; publish the client spec and the commitment.
    let model = if which == "mlp" {
        train_mlp(&ds, &MlpConfig::default())?
    } else {
        train_logistic_regression(
            &ds,
            &LrConfig {
                l2_lambda: 0.01,
                clip_norm: Some(4.0),
            },
        )?
    };
    let server = ServerModel::compile(&model, &ds, &QuantConfig::default())?;
    let model_key = ModelKey::generate()?;
    let sealed = seal_model(&server, &model_key)?;
    let spec_bytes = server.client_spec().to_bytes();
    let commitment = server.commitment();
    println!(
        "commitment {}",
        commitment
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    );

    // Client: keys from the public spec, encrypt one test row.
    let spec = ClientSpec::from_bytes(&spec_bytes)?;
    let ck = ClientKey::generate(&spec)?;
    let ek_bytes = ck.evaluation_key().map(|k| k.to_bytes());
    let input_bytes = ck.encrypt(&ds.test_x[0])?.to_bytes();
    println!(
        "client: input {} B, evaluation key {} B",
        input_bytes.len(),
        ek_bytes.as_ref().map_or(0, Vec::len)
    );

    // Worker: open the sealed model, evaluate, add an integer offset (DP noise), reply.
    let worker = open_model(&sealed, &model_key)?;
    assert_eq!(worker.commitment(), commitment);
    let wspec = worker.client_spec();
    let key = match &ek_bytes {
        Some(b) => Some(worker.prepare_key(&EvaluationKey::from_bytes(b, wspec)?)?),
        None => None,
    };
    let mut out = worker.evaluate(
        &EncryptedInput::from_bytes(&input_bytes, wspec)?,
        key.as_ref(),
    )?;
    worker.add_offset(&mut out, &vec![1; wspec.output.count()])?;
    let out_bytes = out.to_bytes(wspec);

    // Client: decrypt.
    let pred = ck.decrypt(&EncryptedOutput::from_bytes(&out_bytes, &spec)?)?;
    println!(
        "output {} B -> raw {:?}, scores {:?}, P = {:?}, class {} (label {})",
        out_bytes.len(),
        pred.raw,
        pred.scores,
        pred.probabilities,
        pred.class,
        ds.test_y[0]
    );
    Ok(())
}
