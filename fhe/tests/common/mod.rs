//! Shared fixtures: trained models and client keys are expensive, so each test binary builds
//! them once.
#![allow(dead_code)]

use std::sync::OnceLock;

use smidl_fhe::client::ClientKey;
use smidl_fhe::dataset::{breast_cancer, Dataset};
use smidl_fhe::model::train::{train_logistic_regression, train_mlp, LrConfig, MlpConfig};
use smidl_fhe::quant::QuantConfig;
use smidl_fhe::server::{ServerKey, ServerModel};

pub fn data() -> &'static Dataset {
    static D: OnceLock<Dataset> = OnceLock::new();
    D.get_or_init(breast_cancer)
}

pub struct Setup {
    pub server: ServerModel,
    pub client: ClientKey,
    pub key: Option<ServerKey>,
}

pub fn lr() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let ds = data();
        let cfg = LrConfig {
            l2_lambda: 0.01,
            clip_norm: Some(8.0),
        };
        let m = train_logistic_regression(ds, &cfg).unwrap();
        let server = ServerModel::compile(&m, ds, &QuantConfig::default())
            .unwrap()
            .with_input_proofs()
            .unwrap();
        let client = ClientKey::generate(server.client_spec()).unwrap();
        assert!(client.evaluation_key().is_none());
        Setup {
            server,
            client,
            key: None,
        }
    })
}

/// The same LR (weights and input-proof CRS of [`lr`]), compiled to answer with labels.
pub fn label_lr() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let server = ServerModel::from_canonical_bytes(&lr().server.canonical_bytes())
            .unwrap()
            .with_label_answers()
            .unwrap();
        let client = ClientKey::generate(server.client_spec()).unwrap();
        let ek = client
            .evaluation_key()
            .expect("label answers need an evaluation key");
        let key = Some(server.prepare_key(&ek).unwrap());
        Setup {
            server,
            client,
            key,
        }
    })
}

pub fn mlp() -> &'static Setup {
    static S: OnceLock<Setup> = OnceLock::new();
    S.get_or_init(|| {
        let ds = data();
        let m = train_mlp(ds, &MlpConfig::default()).unwrap();
        let server = ServerModel::compile(&m, ds, &QuantConfig::default()).unwrap();
        let client = ClientKey::generate(server.client_spec()).unwrap();
        let ek = client.evaluation_key().unwrap();
        let key = Some(server.prepare_key(&ek).unwrap());
        Setup {
            server,
            client,
            key,
        }
    })
}
