//! What every command needs: the chain, the worker's API, the acting account and a home dir.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, Result};
use smidl_protocol::api_client::WorkerApi;
use smidl_protocol::chain::{self, Client};
use subxt_signer::sr25519::Keypair;

pub struct Context {
    pub client: Client,
    pub worker: WorkerApi,
    pub key: Keypair,
    /// Where client keys live (`~/.smidl` by default).
    pub home: PathBuf,
    /// Show progress bars.
    pub interactive: bool,
}

impl Context {
    pub async fn connect(
        rpc: &str,
        worker: &str,
        key: Keypair,
        home: PathBuf,
        interactive: bool,
    ) -> Result<Self> {
        let client = chain::connect_patiently(rpc, Duration::from_secs(30))
            .await
            .with_context(|| format!("connecting to the node at {rpc}"))?;
        Ok(Self {
            client,
            worker: WorkerApi::new(worker),
            key,
            home,
            interactive,
        })
    }

    /// The same chain and worker, acting as another account.
    pub fn as_account(&self, key: Keypair) -> Self {
        Self {
            client: self.client.clone(),
            worker: self.worker.clone(),
            key,
            home: self.home.clone(),
            interactive: self.interactive,
        }
    }

    pub fn account(&self) -> subxt::utils::AccountId32 {
        chain::account_of(&self.key)
    }

    pub async fn at_finalized(&self) -> Result<chain::AtBlock> {
        self.client
            .at_current_block()
            .await
            .context("reading the finalized block")
    }
}

/// The signing key from `--account` (a secret URI such as `//Bob`) or `--key-file`.
pub fn load_key(account: Option<&str>, key_file: Option<&std::path::Path>) -> Result<Keypair> {
    match (account, key_file) {
        (_, Some(path)) => Ok(chain::keypair_from_file(path)?),
        (Some(uri), None) => Ok(chain::keypair_from_uri(uri)?),
        (None, None) => anyhow::bail!(
            "say which account acts: --account //Bob (dev accounts) or --key-file <file>"
        ),
    }
}

pub fn default_home() -> PathBuf {
    std::env::var_os("SMIDL_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".smidl")))
        .unwrap_or_else(|| PathBuf::from(".smidl"))
}
