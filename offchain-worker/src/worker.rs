//! The worker's shared state: settings, the store, the chain connection, the signing key and
//! the decrypted models (in memory only).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};

use serde::{Deserialize, Serialize};
use smidl_fhe::{ServerKey, ServerModel};
use subxt::utils::H256;
use subxt_signer::sr25519::Keypair;
use tokio::sync::{watch, Notify};

use crate::chain::{self, ChainError, Client};
use crate::dp::{Mechanism, NoisePlan};
use crate::metrics::Metrics;
use crate::store::{AccountId, Hash, Store, StoreError};
use crate::wire::ModelInstall;
use smidl_dp::fit::fitting_plans;
pub use smidl_dp::fit::{check_noise_fits, NoiseDoesNotFit};

/// Operator settings (see `smidl-worker --help`).
#[derive(Clone, Debug)]
pub struct Settings {
    pub rpc_url: String,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    /// Requests evaluated at once (each FHE evaluation also uses rayon threads).
    pub concurrency: usize,
    /// Blocks to keep an ended epoch's results after its last request settled, so clients
    /// can fetch them, before the controlled deletion.
    pub result_retention_blocks: u32,
    pub max_input_bytes: usize,
    pub max_eval_key_bytes: usize,
    pub max_model_bytes: usize,
}

impl Settings {
    pub fn new(rpc_url: String, listen: SocketAddr, data_dir: PathBuf) -> Self {
        Self {
            rpc_url,
            listen,
            data_dir,
            concurrency: 2,
            result_retention_blocks: 5,
            max_input_bytes: 8 << 20,
            max_eval_key_bytes: 160 << 20,
            max_model_bytes: 64 << 20,
        }
    }
}

/// What the worker keeps (sealed) per model.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct ModelRecord {
    pub install: ModelInstall,
    /// The next version the owner staged for an authorised retrain; becomes `install` when
    /// the finalized chain shows the retrain.
    pub staged: Option<ModelInstall>,
}

impl ModelRecord {
    /// The salted commitment of the installed server model (what the chain must show).
    pub fn commitment(&self) -> [u8; 32] {
        crate::commit::weights(&self.install.weights_salt, &self.install.server_model)
    }
}

/// A model ready to evaluate.
pub struct LoadedModel {
    pub model_id: u32,
    pub server: ServerModel,
    pub commitment: [u8; 32],
    /// Output sensitivity per head, in output grid units.
    pub sensitivity: Vec<u64>,
}

impl LoadedModel {
    /// `commitment` is the salted weights commitment the chain holds for `server`.
    pub fn new(model_id: u32, server: ServerModel, commitment: [u8; 32]) -> Self {
        let sensitivity = server.output_sensitivity().grid_units;
        Self {
            model_id,
            commitment,
            server,
            sensitivity,
        }
    }

    /// The noise plan for each output head at per-query ε (micro-ε), refused if its 2^-40
    /// tail does not fit the output headroom. With m heads each gets ε/m (Laplace) or ρ/m
    /// (Gaussian), so the release as a whole costs what the chain charged.
    pub fn fitting_noise_plans(
        &self,
        mechanism: Mechanism,
        epsilon_micro: u64,
    ) -> Result<Vec<NoisePlan>, NoiseDoesNotFit> {
        fitting_plans(
            &self.sensitivity,
            self.server.max_offset(),
            mechanism,
            epsilon_micro,
        )
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WorkerError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Chain(#[from] ChainError),
    #[error("model {0} is not installed on this worker")]
    ModelNotInstalled(u32),
    #[error("stored model {0} is unreadable: {1}")]
    BadModel(u32, String),
    #[error("FHE engine: {0}")]
    Fhe(#[from] smidl_fhe::FheError),
    #[error("background task failed: {0}")]
    Join(String),
    #[error("model {0}: the loaded weights are not the ones the chain commits to; not answering")]
    StaleModel(u32),
    #[error("request {0} on chain no longer matches the evaluated job (re-org); not submitting")]
    StaleJob(u64),
}

/// Prepared evaluation keys kept in memory (each is tens of MB for networks).
const KEY_CACHE: usize = 8;

/// A prepared server key is cached per (client account, model, evaluation key commitment).
type KeyCacheId = (AccountId, u32, Hash);

pub struct Worker {
    pub settings: Settings,
    pub store: Arc<Store>,
    pub client: Client,
    pub signer: Keypair,
    pub account: AccountId,
    pub metrics: Metrics,
    models: RwLock<HashMap<u32, Arc<LoadedModel>>>,
    keys: Mutex<Vec<(KeyCacheId, Arc<ServerKey>)>>,
    /// Latest best and finalized blocks seen by the follower.
    pub best: watch::Sender<Option<(u64, H256)>>,
    pub finalized: watch::Sender<Option<(u64, H256)>>,
    /// Wakes the executor when jobs were queued.
    pub wake: Notify,
    /// One submission at a time per signer, so nonces do not collide.
    pub submit_lock: tokio::sync::Mutex<()>,
    /// First finalized block at which an ended epoch was ready for deletion (retention).
    pub limit_seen: Mutex<HashMap<(u32, u32), u32>>,
}

impl Worker {
    pub fn new(settings: Settings, store: Store, client: Client, signer: Keypair) -> Self {
        let account = chain::account_of(&signer).0;
        Self {
            settings,
            store: Arc::new(store),
            client,
            signer,
            account,
            metrics: Metrics::default(),
            models: RwLock::new(HashMap::new()),
            keys: Mutex::new(Vec::new()),
            best: watch::channel(None).0,
            finalized: watch::channel(None).0,
            wake: Notify::new(),
            submit_lock: tokio::sync::Mutex::new(()),
            limit_seen: Mutex::new(HashMap::new()),
        }
    }

    /// The worker's chain account as SS58.
    pub fn account_ss58(&self) -> String {
        chain::account_of(&self.signer).to_string()
    }

    pub fn record(&self, model_id: u32) -> Result<Option<ModelRecord>, WorkerError> {
        let Some(bytes) = self.store.model(model_id)? else {
            return Ok(None);
        };
        bincode::deserialize(&bytes)
            .map(Some)
            .map_err(|e| WorkerError::BadModel(model_id, e.to_string()))
    }

    pub fn put_record(&self, model_id: u32, record: &ModelRecord) -> Result<(), WorkerError> {
        let bytes = zeroize::Zeroizing::new(
            bincode::serialize(record)
                .map_err(|e| WorkerError::BadModel(model_id, e.to_string()))?,
        );
        self.store.put_model(model_id, &bytes)?;
        self.models.write().map(|mut m| m.remove(&model_id)).ok();
        Ok(())
    }

    /// The decrypted model (cached in memory after the first load).
    pub fn model(&self, model_id: u32) -> Result<Arc<LoadedModel>, WorkerError> {
        if let Some(m) = self
            .models
            .read()
            .ok()
            .and_then(|m| m.get(&model_id).cloned())
        {
            return Ok(m);
        }
        let record = self
            .record(model_id)?
            .ok_or(WorkerError::ModelNotInstalled(model_id))?;
        let server = ServerModel::from_canonical_bytes(&record.install.server_model)?;
        let loaded = Arc::new(LoadedModel::new(model_id, server, record.commitment()));
        if let Ok(mut m) = self.models.write() {
            m.insert(model_id, loaded.clone());
        }
        Ok(loaded)
    }

    /// Drops the cached model, so the next use reloads it from the store.
    pub fn forget_model(&self, model_id: u32) {
        self.models.write().map(|mut m| m.remove(&model_id)).ok();
    }

    pub fn installed_models(&self) -> Result<Vec<u32>, WorkerError> {
        Ok(self.store.model_ids()?)
    }

    /// A client's prepared evaluation key, from the cache or prepared from the store.
    pub fn server_key(
        &self,
        model: &LoadedModel,
        account: &AccountId,
        commitment: &Hash,
        bytes: &[u8],
    ) -> Result<Arc<ServerKey>, WorkerError> {
        let id = (*account, model.model_id, *commitment);
        if let Some(k) = self
            .keys
            .lock()
            .ok()
            .and_then(|k| k.iter().find(|(i, _)| *i == id).map(|(_, k)| k.clone()))
        {
            return Ok(k);
        }
        let ek = smidl_fhe::EvaluationKey::from_bytes(bytes, model.server.client_spec())?;
        let key = Arc::new(model.server.prepare_key(&ek)?);
        if let Ok(mut k) = self.keys.lock() {
            if k.len() >= KEY_CACHE {
                k.remove(0);
            }
            k.push((id, key.clone()));
        }
        Ok(key)
    }

    /// Forget prepared keys of a model (after its epoch's controlled deletion).
    pub fn forget_keys(&self, model_id: u32) {
        if let Ok(mut k) = self.keys.lock() {
            k.retain(|((_, m, _), _)| *m != model_id);
        }
    }

    /// A client view at the latest best block the follower saw (finalized before that).
    pub async fn at_best(&self) -> Result<chain::AtBlock, ChainError> {
        let best = *self.best.borrow();
        match best {
            Some((_, hash)) => self
                .client
                .at_block(hash)
                .await
                .map_err(chain::rpc("reading the best block")),
            None => self
                .client
                .at_current_block()
                .await
                .map_err(chain::rpc("reading the finalized block")),
        }
    }

    pub fn best_number(&self) -> u64 {
        self.best.borrow().map(|(n, _)| n).unwrap_or(0)
    }

    pub fn finalized_number(&self) -> u64 {
        self.finalized.borrow().map(|(n, _)| n).unwrap_or(0)
    }
}
