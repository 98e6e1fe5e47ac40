//! smidl's encrypted-inference engine on tfhe-rs: quantised logistic regression and MLPs
//! evaluated on LWE ciphertexts.
//!
//! * [`model`]: float models, Rust training, ONNX import/export.
//! * [`quant`]: quantisation and the clear integer model (the specification).
//! * [`params`]: the vetted tfhe-rs parameter sets and the noise model.
//! * [`client`]: [`ClientSpec`] (public), [`ClientKey`] (secret), encrypt/decrypt.
//! * [`server`]: [`ServerModel`] (secret weights), evaluation, DP offsets.
//! * [`proof`]: zero-knowledge proofs that a linear model's input is inside the published box.
//! * [`sanitise`]: circuit privacy (rerandomisation with the client's public key, flooding).
//! * [`serial`]: versioned envelopes with size limits.
//! * [`store`]: the server model encrypted at rest and its BLAKE2b-256 commitment.
//!
//! See `docs/fhe.md` for parameters, security level and failure probabilities.

pub mod client;
pub mod dataset;
pub mod error;
pub mod model;
pub mod params;
pub mod proof;
pub mod quant;
pub mod sanitise;
pub mod sensitivity;
pub mod serial;
pub mod server;
pub mod store;

pub use client::{
    AnswerKind, ClientKey, ClientSpec, EncryptedInput, EncryptedOutput, EvaluationKey,
    ModelMetadata, Prediction,
};
pub use error::{FheError, ObjectKind, Result};
pub use model::{FloatModel, ModelKind};
pub use quant::QuantConfig;
pub use server::{ServerKey, ServerModel, VerifiedInput};
pub use store::{open_model, seal_model, ModelKey};
