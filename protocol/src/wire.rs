//! What travels between the `smidl` CLI and the worker's HTTP API, besides raw ciphertexts.

use serde::{Deserialize, Serialize};

/// What the worker does when a model's epoch ends (K reached, lifetime or idle timeout).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitAction {
    /// Same weights, new epoch: `reset_model`.
    Reset,
    /// Switch to the model the owner staged on this worker and authorised on chain
    /// (`authorise_retrain`): `retrain_model` with exactly those commitments. Without a
    /// matching staged model and authorisation, `reset_model`.
    Retrain,
}

impl std::str::FromStr for LimitAction {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "reset" => Ok(Self::Reset),
            "retrain" => Ok(Self::Retrain),
            _ => Err(format!("expected reset or retrain, got {s:?}")),
        }
    }
}

/// The owner hands a model's server half to its worker (`PUT /v1/models/{id}`, bincode).
/// Travels only over the authenticated API; the worker seals it before it touches disk.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelInstall {
    /// `ServerModel::canonical_bytes()`.
    pub server_model: Vec<u8>,
    /// Salt of the weights commitment: `commit::weights(salt, server_model)` must equal the
    /// chain's commitment (or, for a staged model, the authorised one).
    pub weights_salt: [u8; 32],
    pub on_limit: LimitAction,
    /// Delete clients' evaluation keys at the end of each epoch too.
    pub delete_eval_keys: bool,
    /// Stage this as the model's next version (checked against the owner's retrain
    /// authorisation on chain) instead of installing it as the current one.
    pub stage: bool,
}

/// Every error answer of the API: a stable machine-readable code and a sentence.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApiError {
    pub code: String,
    pub message: String,
}

/// Answer to an upload of an input ciphertext or an evaluation key.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Stored {
    /// 0x-prefixed BLAKE2-256 of what was stored (for inputs: the commitment it is filed
    /// under, which the worker checks against the bytes when the request arrives).
    pub commitment: String,
    pub bytes: u64,
}

/// `GET /health`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Health {
    /// `ok`, or `degraded` while the worker has no live connection to the node.
    pub status: String,
    /// Whether the worker follows the chain right now.
    #[serde(default)]
    pub chain_connected: bool,
    pub worker: String,
    pub best_block: u64,
    pub finalized_block: u64,
    pub models: Vec<u32>,
    pub backlog: u64,
}

/// Headers of `GET /v1/results/{id}`.
pub const HEADER_OUTPUT_COMMITMENT: &str = "x-smidl-output-commitment";
pub const HEADER_MODEL_COMMITMENT: &str = "x-smidl-weights-commitment";
