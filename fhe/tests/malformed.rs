//! Everything that crosses a trust boundary fails with a typed error, never a panic.

mod common;

use smidl_fhe::client::{ClientKey, ClientSpec, EncryptedInput, EncryptedOutput, EvaluationKey};
use smidl_fhe::error::ObjectKind;
use smidl_fhe::serial;
use smidl_fhe::store::{open_model, seal_model, sealed_commitment, ModelKey};
use smidl_fhe::FheError;

#[test]
fn malformed_inputs() {
    let s = common::lr();
    let spec = s.server.client_spec();
    let good = s
        .client
        .encrypt(&common::data().test_x[0])
        .unwrap()
        .to_bytes();
    assert!(EncryptedInput::from_bytes(&good, spec).is_ok());
    assert!(matches!(
        EncryptedInput::from_bytes(&good[..good.len() - 3], spec),
        Err(FheError::Truncated { .. })
    ));
    assert!(matches!(
        EncryptedInput::from_bytes(&good[..5], spec),
        Err(FheError::Truncated { .. })
    ));
    let mut longer = good.clone();
    longer.extend_from_slice(&[0; 8]);
    assert!(matches!(
        EncryptedInput::from_bytes(&longer, spec),
        Err(FheError::TrailingBytes { .. })
    ));
    let mut magic = good.clone();
    magic[1] ^= 0xff;
    assert!(matches!(
        EncryptedInput::from_bytes(&magic, spec),
        Err(FheError::BadMagic { .. })
    ));
    let mut version = good.clone();
    version[4] = (smidl_fhe::serial::FORMAT_VERSION + 1) as u8;
    assert!(matches!(
        EncryptedInput::from_bytes(&version, spec),
        Err(FheError::UnsupportedVersion { .. })
    ));
    // Right envelope, wrong number of ciphertexts.
    // (spec id, seed, bodies, public key (seed, body), proof): the wire layout.
    let pk = || (9u128, vec![0u64; 2048]);
    let short = serial::encode(
        ObjectKind::EncryptedInput,
        &(spec.id(), 7u128, vec![1u64; 29], pk(), None::<Vec<u8>>),
    );
    assert!(matches!(
        EncryptedInput::from_bytes(&short, spec),
        Err(FheError::WrongParameters { .. })
    ));
    // Oversized: a body count beyond the envelope limit.
    let big = serial::encode(
        ObjectKind::EncryptedInput,
        &(spec.id(), 7u128, vec![1u64; 9000], pk(), None::<Vec<u8>>),
    );
    assert!(matches!(
        EncryptedInput::from_bytes(&big, spec),
        Err(FheError::Oversized { .. })
    ));
    // A length prefix lying about the element count.
    let mut lying = serial::encode(
        ObjectKind::EncryptedInput,
        &(spec.id(), 7u128, vec![1u64; 30], pk(), None::<Vec<u8>>),
    );
    let off = serial::HEADER_LEN + 8 + 16;
    lying[off..off + 8].copy_from_slice(&(u64::MAX / 2).to_le_bytes());
    assert!(matches!(
        EncryptedInput::from_bytes(&lying, spec),
        Err(FheError::Corrupted { .. })
    ));
    // An input encrypted for another model.
    let other = common::mlp();
    assert!(matches!(
        EncryptedInput::from_bytes(&good, other.server.client_spec()),
        Err(FheError::WrongParameters { .. })
    ));
    // Output bytes where an input is expected.
    let out = s
        .server
        .evaluate(&EncryptedInput::from_bytes(&good, spec).unwrap(), None)
        .unwrap();
    let out_bytes = out.to_bytes(spec);
    assert!(matches!(
        EncryptedInput::from_bytes(&out_bytes, spec),
        Err(FheError::WrongKind { .. })
    ));
    assert!(matches!(
        EncryptedOutput::from_bytes(&out_bytes[..out_bytes.len() - 1], spec),
        Err(FheError::Truncated { .. })
    ));
    assert!(matches!(
        EncryptedOutput::from_bytes(&out_bytes, other.server.client_spec()),
        Err(FheError::WrongParameters { .. })
    ));
    // Non-finite or missing features.
    assert!(matches!(
        s.client.encrypt(&[1.0; 29]),
        Err(FheError::FeatureCount {
            expected: 30,
            got: 29
        })
    ));
    let mut nan = common::data().test_x[0].clone();
    nan[4] = f64::NAN;
    assert!(matches!(
        s.client.encrypt(&nan),
        Err(FheError::NonFiniteFeature { index: 4 })
    ));
}

#[test]
fn malformed_keys() {
    let m = common::mlp();
    let spec = m.server.client_spec();
    // Wrong length evaluation key.
    let short = serial::encode(
        ObjectKind::EvaluationKey,
        &(spec.id(), 1u128, vec![0u64; 1000], 0u128, Vec::<u64>::new()),
    );
    assert!(matches!(
        EvaluationKey::from_bytes(&short, spec),
        Err(FheError::WrongParameters { .. })
    ));
    assert!(matches!(
        EvaluationKey::from_bytes(&short[..20], spec),
        Err(FheError::Truncated { .. })
    ));
    // A key for a model that needs none.
    let lr = common::lr();
    let for_lr = serial::encode(
        ObjectKind::EvaluationKey,
        &(
            lr.server.client_spec().id(),
            1u128,
            vec![0u64; 4],
            0u128,
            Vec::<u64>::new(),
        ),
    );
    assert!(matches!(
        EvaluationKey::from_bytes(&for_lr, lr.server.client_spec()),
        Err(FheError::WrongParameters { .. })
    ));
    // Evaluating a bootstrapped model without its key.
    let ct = m.client.encrypt(&common::data().test_x[0]).unwrap();
    assert!(matches!(
        m.server.evaluate(&ct, None),
        Err(FheError::MissingEvaluationKey)
    ));
    // Client key round trip, and a tampered (non-binary) secret key.
    let bytes = m.client.to_bytes();
    let back = ClientKey::from_bytes(&bytes).unwrap();
    let out = m.server.evaluate(&ct, m.key.as_ref()).unwrap();
    assert_eq!(
        back.decrypt_raw(&out).unwrap(),
        m.client.decrypt_raw(&out).unwrap()
    );
    // The GLWE secret key's last coefficient sits just before the public key (seed, length
    // prefix, body); make it non-binary.
    let mut tampered = bytes.clone();
    let pk_wire = m.client.public_key().size_bytes() + 8;
    let at = tampered.len() - pk_wire - 8;
    tampered[at] = 5;
    assert!(matches!(
        ClientKey::from_bytes(&tampered),
        Err(FheError::WrongParameters { .. })
    ));
    assert!(matches!(
        ClientKey::from_bytes(&bytes[..bytes.len() - 1]),
        Err(FheError::Truncated { .. })
    ));
}

#[test]
fn malformed_client_spec() {
    let spec = common::lr().server.client_spec().clone();
    let bytes = spec.to_bytes();
    assert_eq!(ClientSpec::from_bytes(&bytes).unwrap(), spec);
    let mut bad = spec.clone();
    bad.input.normaliser.std[3] = 0.0;
    assert!(matches!(
        ClientSpec::from_bytes(&bad.to_bytes()),
        Err(FheError::Corrupted { .. })
    ));
    let mut bad = spec.clone();
    bad.output.scale.push(1.0);
    assert!(matches!(
        ClientSpec::from_bytes(&bad.to_bytes()),
        Err(FheError::Corrupted { .. })
    ));
    assert!(matches!(
        ClientSpec::from_bytes(&bytes[..bytes.len() / 2]),
        Err(FheError::Truncated { .. })
    ));
}

#[test]
fn random_bytes_never_panic() {
    let lr = common::lr();
    let mlp = common::mlp();
    let mut state = 0x1234_5678_9abc_def0u64;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    for i in 0..400 {
        let len = (next() % 600) as usize;
        let mut b: Vec<u8> = (0..len).map(|_| next() as u8).collect();
        // Half of them get a valid header so the payload decoders are exercised too.
        if i % 2 == 0 && len >= 16 {
            b[..4].copy_from_slice(b"SMFH");
            b[4..6].copy_from_slice(&1u16.to_le_bytes());
            b[6] = (i % 7 + 1) as u8;
            b[7] = 0;
            b[8..16].copy_from_slice(&((len - 16) as u64).to_le_bytes());
        }
        for s in [&lr, &mlp] {
            let spec = s.server.client_spec();
            let _ = EncryptedInput::from_bytes(&b, spec);
            let _ = EncryptedOutput::from_bytes(&b, spec);
            let _ = EvaluationKey::from_bytes(&b, spec);
        }
        let _ = ClientSpec::from_bytes(&b);
        let _ = ClientKey::from_bytes(&b);
        let _ = open_model(&b, &ModelKey::from_bytes([7; 32]));
        let _ = smidl_fhe::model::onnx::import_onnx(&b);
    }
}

#[test]
fn sealed_model_round_trip_and_tampering() {
    let s = common::lr();
    let key = ModelKey::generate().unwrap();
    let sealed = seal_model(&s.server, &key).unwrap();
    let commitment = s.server.commitment();
    assert_eq!(sealed_commitment(&sealed).unwrap(), commitment);
    let opened = open_model(&sealed, &key).unwrap();
    assert_eq!(opened.commitment(), commitment);
    let x = &common::data().test_x[5];
    assert_eq!(
        opened.eval_clear(x).unwrap(),
        s.server.eval_clear(x).unwrap()
    );
    // Sealing twice uses fresh nonces; the commitment is stable.
    let sealed2 = seal_model(&s.server, &key).unwrap();
    assert_ne!(sealed, sealed2);
    assert_eq!(sealed_commitment(&sealed2).unwrap(), commitment);
    assert!(matches!(
        open_model(&sealed, &ModelKey::from_bytes([9; 32])),
        Err(FheError::SealAuthentication)
    ));
    let mut flipped = sealed.clone();
    let mid = flipped.len() / 2;
    flipped[mid] ^= 1;
    assert!(matches!(
        open_model(&flipped, &key),
        Err(FheError::SealAuthentication)
    ));
    // Swapping in another commitment breaks authentication too (it is associated data).
    let mut recommitted = sealed.clone();
    recommitted[serial::HEADER_LEN + 24] ^= 1;
    assert!(matches!(
        open_model(&recommitted, &key),
        Err(FheError::SealAuthentication)
    ));
    assert!(matches!(
        open_model(&sealed[..40], &key),
        Err(FheError::Truncated { .. })
    ));
    // Different models have different commitments.
    assert_ne!(common::mlp().server.commitment(), commitment);
}

#[test]
fn model_key_files() {
    let dir = std::env::temp_dir().join(format!("smidl-fhe-keytest-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("model.key");
    let _ = std::fs::remove_file(&path);
    let key = ModelKey::generate().unwrap();
    key.write_to_file(&path).unwrap();
    let s = common::lr();
    let sealed = seal_model(&s.server, &key).unwrap();
    let loaded = ModelKey::from_file(&path).unwrap();
    assert!(open_model(&sealed, &loaded).is_ok());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "key file readable by others");
    }
    let raw = dir.join("raw.key");
    std::fs::write(&raw, [3u8; 32]).unwrap();
    assert!(ModelKey::from_file(&raw).is_ok());
    let bad = dir.join("bad.key");
    std::fs::write(&bad, "zz").unwrap();
    assert!(matches!(
        ModelKey::from_file(&bad),
        Err(FheError::KeyFile(_))
    ));
    std::fs::write(&bad, "g".repeat(64)).unwrap();
    assert!(matches!(
        ModelKey::from_file(&bad),
        Err(FheError::KeyFile(_))
    ));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn debug_output_never_shows_weights() {
    let s = common::mlp();
    let dbg = format!("{:?}", s.server);
    assert!(dbg.contains("Mlp"));
    assert!(!dbg.contains("weights") && !dbg.contains("tables"));
    let ds = common::data();
    let m = smidl_fhe::model::train::train_logistic_regression(ds, &Default::default()).unwrap();
    let w = m.layers[0].weights[0][0];
    let dbg = format!("{m:?}");
    assert!(!dbg.contains(&format!("{w}")));
    assert!(!dbg.contains(&format!("{:.3}", w)));
}
