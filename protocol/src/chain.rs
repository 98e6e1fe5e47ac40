//! The smidl chain seen through subxt, from the static metadata checked in under `metadata/`.
//!
//! Shared by the worker and the `smidl` CLI: connecting, signing keys, submitting a call and
//! waiting for it, and turning the pallet's refusals into errors that name the rule and quote
//! its documentation.

use std::str::FromStr;
use std::time::Duration;

use subxt::config::{PolkadotExtrinsicParamsBuilder, RpcConfigFor};
use subxt::rpcs::{LegacyRpcMethods, RpcClient};
use subxt::transactions::Payload;
use subxt::utils::{AccountId32, H256};
use subxt::{OnlineClient, PolkadotConfig};
use subxt_signer::sr25519::Keypair;
use subxt_signer::SecretUri;

/// The generated interface. Regenerate the metadata with `scripts/gen-metadata.sh`; the test
/// `metadata_matches_runtime` fails when it is stale.
#[subxt::subxt(
    runtime_metadata_path = "metadata/smidl.scale",
    derive_for_all_types = "Clone, PartialEq, Eq"
)]
pub mod smidl {}

pub use smidl::runtime_types::pallet_secure_inference::types::{
    Accounting, ExpiryReason, LineageChoice, ModelState, PrivacyMode, RejectReason, RequestStatus,
};

/// Our runtime's address (`MultiAddress<AccountId, ()>`), signature and hashing match
/// polkadot's, so its config applies unchanged.
pub type Config = PolkadotConfig;

/// A connection to a node: subxt's client plus the node's legacy RPC methods, which give the
/// one thing the client API lacks, the next nonce counting the transaction pool.
#[derive(Clone)]
pub struct Client {
    online: OnlineClient<Config>,
    rpc: LegacyRpcMethods<RpcConfigFor<Config>>,
}

impl std::ops::Deref for Client {
    type Target = OnlineClient<Config>;
    fn deref(&self) -> &Self::Target {
        &self.online
    }
}

impl Client {
    /// The account's next nonce, counting its transactions still in the pool. Reading it from
    /// the finalized state instead would reuse a nonce while an earlier call waits for
    /// finality ("Transaction is outdated").
    pub async fn next_nonce(&self, who: &AccountId32) -> Result<u64, ChainError> {
        timed("reading the account's next nonce", CALL_TIMEOUT, async {
            self.rpc
                .system_account_next_index(who)
                .await
                .map_err(rpc("reading the account's next nonce"))
        })
        .await
    }

    /// A view of the latest finalized block (with [`CALL_TIMEOUT`]).
    pub async fn finalized(&self) -> Result<AtBlock, ChainError> {
        timed("reading the finalized block", CALL_TIMEOUT, async {
            self.online
                .at_current_block()
                .await
                .map_err(rpc("reading the finalized block"))
        })
        .await
    }

    /// A view of the node's best block (with [`CALL_TIMEOUT`]): newer than the finalized
    /// one, which can trail it by many blocks on a loaded machine.
    pub async fn best(&self) -> Result<AtBlock, ChainError> {
        let hash = timed("reading the best block", CALL_TIMEOUT, async {
            self.rpc
                .chain_get_block_hash(None)
                .await
                .map_err(rpc("reading the best block"))
        })
        .await?;
        match hash {
            Some(h) => self.block(h).await,
            None => self.finalized().await,
        }
    }

    /// A view of the block `hash` (with [`CALL_TIMEOUT`]).
    pub async fn block(&self, hash: H256) -> Result<AtBlock, ChainError> {
        timed("reading a block", CALL_TIMEOUT, async {
            self.online
                .at_block(hash)
                .await
                .map_err(rpc("reading a block"))
        })
        .await
    }

    /// A view of the canonical block at height `number` (with [`CALL_TIMEOUT`]).
    pub async fn block_at(&self, number: u64) -> Result<AtBlock, ChainError> {
        timed("reading a block", CALL_TIMEOUT, async {
            self.online
                .at_block(number)
                .await
                .map_err(rpc("reading a block"))
        })
        .await
    }
}
pub type Events = subxt::events::Events<Config>;
pub type AtBlock =
    subxt::client::ClientAtBlock<Config, subxt::client::OnlineClientAtBlockImpl<Config>>;

/// Everything that can go wrong talking to the chain.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    #[error("cannot connect to the node at {url}: {reason}")]
    Connect { url: String, reason: String },
    #[error("the node at {url} is reachable only over an unencrypted connection; use wss:// or a loopback address")]
    Insecure { url: String },
    #[error("{context}: {reason}")]
    Rpc {
        context: &'static str,
        reason: String,
    },
    /// The pallet refused the call: `pallet::error` plus the error's own documentation.
    #[error("the chain refused the call: {pallet}::{error} — {docs}")]
    Refused {
        pallet: String,
        error: String,
        docs: String,
    },
    #[error("the chain refused the call: {0}")]
    Dispatch(String),
    #[error("the transaction was not accepted: {0}")]
    Invalid(String),
    #[error("the transaction was dropped: {0}")]
    Dropped(String),
    #[error("invalid signing key: {0}")]
    Key(String),
    /// The pool refused the transaction's nonce (taken by another transaction of the signer,
    /// or already used): nothing entered the pool, so resubmitting with a fresh nonce is safe.
    #[error("the transaction's nonce was refused: {0}")]
    Nonce(String),
    #[error("{context}: no answer from the node within {seconds} s")]
    Timeout { context: &'static str, seconds: u64 },
}

impl ChainError {
    /// The pallet error's name when the chain refused the call (`None` otherwise).
    pub fn refusal(&self) -> Option<&str> {
        match self {
            ChainError::Refused { error, .. } => Some(error),
            _ => None,
        }
    }

    /// Whether the node could not be reached or did not answer (as opposed to refusing):
    /// retrying later, after a reconnection, may succeed.
    pub fn is_outage(&self) -> bool {
        matches!(
            self,
            ChainError::Connect { .. } | ChainError::Rpc { .. } | ChainError::Timeout { .. }
        )
    }
}

/// How long any single read or RPC call may take before it counts as an outage.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);

/// How long a submitted transaction may take to reach a best block (a few block times; a
/// transaction stuck behind a nonce gap never would).
pub const INCLUSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs `fut` with a deadline: a node that stopped answering becomes
/// [`ChainError::Timeout`] instead of a hang.
pub async fn timed<T>(
    context: &'static str,
    limit: Duration,
    fut: impl std::future::Future<Output = Result<T, ChainError>>,
) -> Result<T, ChainError> {
    match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(ChainError::Timeout {
            context,
            seconds: limit.as_secs(),
        }),
    }
}

/// Maps a subxt error to [`ChainError::Rpc`] with what was being done.
pub fn rpc<E: std::fmt::Display>(context: &'static str) -> impl Fn(E) -> ChainError {
    move |e| ChainError::Rpc {
        context,
        reason: e.to_string(),
    }
}

/// Connects to a node. Plain `ws://` is accepted only for loopback addresses: anything else
/// would expose which models and requests a client uses to the network path.
pub async fn connect(url: &str) -> Result<Client, ChainError> {
    let loopback = is_loopback_ws(url);
    let connect_error = |e: String| ChainError::Connect {
        url: url.to_string(),
        reason: e,
    };
    let rpc = if loopback {
        RpcClient::from_insecure_url(url).await
    } else if url.starts_with("wss://") {
        RpcClient::from_url(url).await
    } else {
        return Err(ChainError::Insecure {
            url: url.to_string(),
        });
    }
    .map_err(|e| connect_error(e.to_string()))?;
    let online = OnlineClient::from_rpc_client(rpc.clone())
        .await
        .map_err(|e| connect_error(e.to_string()))?;
    Ok(Client {
        online,
        rpc: LegacyRpcMethods::new(rpc),
    })
}

/// `ws://` to a loopback host: the host part must be exactly the loopback name (so
/// `ws://localhost.example.com` is not loopback).
fn is_loopback_ws(url: &str) -> bool {
    let Some(rest) = url.strip_prefix("ws://") else {
        return false;
    };
    let authority = rest.split(['/', '?']).next().unwrap_or("");
    let host = if let Some(v6) = authority.strip_prefix('[') {
        v6.split(']').next().unwrap_or("")
    } else {
        authority.split(':').next().unwrap_or("")
    };
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// [`connect`], retrying for up to `patience` (a node that is still starting).
pub async fn connect_patiently(url: &str, patience: Duration) -> Result<Client, ChainError> {
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match connect(url).await {
            Ok(c) => return Ok(c),
            Err(e @ ChainError::Insecure { .. }) => return Err(e),
            Err(e) if tokio::time::Instant::now() >= deadline => return Err(e),
            Err(_) => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }
}

/// A signing key from a secret URI: `//Alice` for dev accounts, a mnemonic, or a hex seed,
/// optionally with derivation junctions.
pub fn keypair_from_uri(uri: &str) -> Result<Keypair, ChainError> {
    let uri = SecretUri::from_str(uri.trim()).map_err(|e| ChainError::Key(e.to_string()))?;
    Keypair::from_uri(&uri).map_err(|e| ChainError::Key(e.to_string()))
}

/// A signing key from a file holding a secret URI (mode 0600 expected; the file is the
/// account's secret).
pub fn keypair_from_file(path: &std::path::Path) -> Result<Keypair, ChainError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let meta = std::fs::metadata(path)
            .map_err(|e| ChainError::Key(format!("{}: {e}", path.display())))?;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(ChainError::Key(format!(
                "{} is readable by other users; chmod 600 it",
                path.display()
            )));
        }
    }
    let text = zeroize::Zeroizing::new(
        std::fs::read_to_string(path)
            .map_err(|e| ChainError::Key(format!("{}: {e}", path.display())))?,
    );
    keypair_from_uri(&text)
}

pub fn account_of(key: &Keypair) -> AccountId32 {
    key.public_key().to_account_id()
}

/// A call included in a block, with the events it caused.
pub struct Included {
    pub block_hash: H256,
    pub block_number: u64,
    pub events: subxt::extrinsics::ExtrinsicEvents<Config>,
}

/// How long to wait for a submitted call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wait {
    /// Until it is in a best block (fast; may still be re-orged out).
    InBlock,
    /// Until its block is finalized.
    Finalized,
}

/// A submitted transaction being watched.
pub type Progress = subxt::transactions::TransactionProgress<
    Config,
    subxt::client::OnlineClientAtBlockImpl<Config>,
>;

/// Signs `call` with `signer`, submits it and waits; a dispatch failure becomes
/// [`ChainError::Refused`] naming the pallet error. Reads the nonce from the pool each time:
/// for one-off calls (the CLI). A service sending many calls keeps its own nonce and uses
/// [`send`] and [`watch`].
pub async fn submit<C: Payload>(
    client: &Client,
    call: &C,
    signer: &Keypair,
    wait: Wait,
) -> Result<Included, ChainError> {
    let mut attempt = 0;
    loop {
        let at = client.finalized().await?;
        let nonce = client.next_nonce(&account_of(signer)).await?;
        let sent = match send(&at, call, signer, nonce).await {
            Ok(progress) => watch(client, progress, wait).await,
            Err(e) => Err(e),
        };
        match sent {
            // Another process signing for the same account (the provider's CLI next to its
            // worker) took this nonce between our read and our submission, or got its own
            // transaction with this nonce included first. Either way ours never executed, so
            // nothing is sent twice: read the nonce again and resubmit, a bounded number of
            // times.
            Err(ChainError::Nonce(_)) if attempt < NONCE_RETRIES => {}
            Err(ChainError::Invalid(m)) if is_nonce_collision(&m) && attempt < NONCE_RETRIES => {}
            other => return other,
        }
        attempt += 1;
        tokio::time::sleep(Duration::from_millis(300 * attempt as u64)).await;
    }
}

/// Signs `call` with `nonce` and hands it to the node's pool, without waiting for inclusion.
/// A refused nonce is [`ChainError::Nonce`]; any other refusal [`ChainError::Invalid`].
/// `at` is a recent finalized block (the transaction's metadata and mortality); callers
/// sending many transactions read it once, outside any nonce lock.
pub async fn send<C: Payload>(
    at: &AtBlock,
    call: &C,
    signer: &Keypair,
    nonce: u64,
) -> Result<Progress, ChainError> {
    let params = PolkadotExtrinsicParamsBuilder::<Config>::new()
        .nonce(nonce)
        .build();
    let sent = timed("submitting a transaction", CALL_TIMEOUT, async {
        at.transactions()
            .sign_and_submit_then_watch(call, signer, params)
            .await
            .map_err(|e| {
                let m = e.to_string();
                if is_nonce_collision(&m) {
                    ChainError::Nonce(m)
                } else {
                    ChainError::Invalid(m)
                }
            })
    });
    sent.await
}

/// Waits (at most [`INCLUSION_TIMEOUT`]) until a sent transaction is in a best block (or
/// finalized, per `wait`) and returns its events; a dispatch failure becomes
/// [`ChainError::Refused`].
pub async fn watch(
    client: &Client,
    progress: Progress,
    wait: Wait,
) -> Result<Included, ChainError> {
    let limit = match wait {
        Wait::InBlock => INCLUSION_TIMEOUT,
        // Finality trails the best block by a few blocks.
        Wait::Finalized => INCLUSION_TIMEOUT * 2,
    };
    timed(
        "waiting for inclusion",
        limit,
        watch_unbounded(client, progress, wait),
    )
    .await
}

async fn watch_unbounded(
    client: &Client,
    mut progress: Progress,
    wait: Wait,
) -> Result<Included, ChainError> {
    use subxt::transactions::TransactionStatus as S;
    loop {
        let Some(status) = progress.next().await else {
            return Err(ChainError::Dropped(
                "the node stopped reporting the transaction's status".into(),
            ));
        };
        let status = status.map_err(rpc("watching the transaction"))?;
        let in_block = match status {
            S::InBestBlock(b) if wait == Wait::InBlock => b,
            S::InFinalizedBlock(b) => b,
            S::Error { message } => {
                return Err(ChainError::Rpc {
                    context: "transaction",
                    reason: message,
                })
            }
            S::Invalid { message } => return Err(ChainError::Invalid(message)),
            S::Dropped { message } => return Err(ChainError::Dropped(message)),
            _ => continue,
        };
        let block_hash = in_block.block_hash();
        let events = in_block.wait_for_success().await.map_err(dispatch_error)?;
        let block_number = client.block(block_hash).await?.block_number();
        return Ok(Included {
            block_hash,
            block_number,
            events,
        });
    }
}

/// How often [`submit`] re-reads the nonce after losing it to a concurrent signer.
const NONCE_RETRIES: u32 = 5;

/// Whether the pool refused a submission because its nonce was already taken: by a pooled
/// transaction of higher priority (RPC error 1014), by one already included ("outdated",
/// 1010 with `Stale`), or, once pooled, by another transaction of the same nonce that was
/// included first ("rendered invalid by another extrinsic"). Only these are safe to resubmit
/// with a fresh nonce: the transaction never executed.
pub fn is_nonce_collision(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    m.contains("priority is too low")
        || m.contains("priority of the transaction is too low")
        || m.contains("transaction is outdated")
        || m.contains("rendered invalid by another extrinsic")
}

fn dispatch_error(e: subxt::error::TransactionEventsError) -> ChainError {
    use subxt::error::{DispatchError, TransactionEventsError};
    match e {
        TransactionEventsError::ExtrinsicFailed(DispatchError::Module(m)) => match m.details() {
            Ok(d) => ChainError::Refused {
                pallet: d.pallet.name().to_string(),
                error: d.variant.name.clone(),
                docs: d.variant.docs.join(" ").trim().to_string(),
            },
            Err(_) => ChainError::Dispatch(m.details_string()),
        },
        TransactionEventsError::ExtrinsicFailed(other) => ChainError::Dispatch(other.to_string()),
        other => ChainError::Rpc {
            context: "reading the transaction's events",
            reason: other.to_string(),
        },
    }
}

/// Typed reads of the pallet's storage and runtime API at one block.
pub mod read {
    use super::*;
    use smidl::runtime_types::pallet_secure_inference::types as t;

    pub type ModelInfo = t::ModelInfo;
    pub type Request = t::InferenceRequest;
    pub type ModelStatus = t::ModelStatus<u32>;
    pub type AccountStatus = t::AccountStatus;
    pub type Usage = t::AccountUsage<u128, u32>;
    pub type LineageStatus = t::LineageStatus;
    pub type RetrainAuthorisation = t::RetrainAuthorisation;
    pub type EpochErasure = t::EpochErasure;

    pub async fn model(at: &AtBlock, model_id: u32) -> Result<Option<ModelInfo>, ChainError> {
        timed("reading chain state (model)", CALL_TIMEOUT, async {
            let v = at
                .storage()
                .try_fetch(smidl::storage().secure_inference().models(), (model_id,))
                .await
                .map_err(rpc("reading Models"))?;
            v.map(|v| v.decode().map_err(rpc("decoding Models")))
                .transpose()
        })
        .await
    }

    pub async fn request(at: &AtBlock, request_id: u64) -> Result<Option<Request>, ChainError> {
        timed("reading chain state (request)", CALL_TIMEOUT, async {
            let v = at
                .storage()
                .try_fetch(
                    smidl::storage().secure_inference().requests(),
                    (request_id,),
                )
                .await
                .map_err(rpc("reading Requests"))?;
            v.map(|v| v.decode().map_err(rpc("decoding Requests")))
                .transpose()
        })
        .await
    }

    pub async fn eval_key(
        at: &AtBlock,
        who: &AccountId32,
        model_id: u32,
    ) -> Result<Option<H256>, ChainError> {
        timed("reading chain state (eval_key)", CALL_TIMEOUT, async {
            let v = at
                .storage()
                .try_fetch(
                    smidl::storage().secure_inference().eval_keys(),
                    (*who, model_id),
                )
                .await
                .map_err(rpc("reading EvalKeys"))?;
            Ok(v.map(|v| v.decode().map_err(rpc("decoding EvalKeys")))
                .transpose()?
                .map(|k| k.commitment))
        })
        .await
    }

    pub async fn model_status(
        at: &AtBlock,
        model_id: u32,
    ) -> Result<Option<ModelStatus>, ChainError> {
        timed("reading chain state (model_status)", CALL_TIMEOUT, async {
            at.runtime_apis()
                .call(
                    smidl::runtime_apis()
                        .secure_inference_api()
                        .model_status(model_id),
                )
                .await
                .map_err(rpc("calling SecureInferenceApi::model_status"))
        })
        .await
    }

    pub async fn account_status(
        at: &AtBlock,
        model_id: u32,
        who: &AccountId32,
    ) -> Result<Option<AccountStatus>, ChainError> {
        timed(
            "reading chain state (account_status)",
            CALL_TIMEOUT,
            async {
                at.runtime_apis()
                    .call(
                        smidl::runtime_apis()
                            .secure_inference_api()
                            .account_status(model_id, *who),
                    )
                    .await
                    .map_err(rpc("calling SecureInferenceApi::account_status"))
            },
        )
        .await
    }

    pub async fn lineage_status(
        at: &AtBlock,
        lineage_id: u32,
    ) -> Result<Option<LineageStatus>, ChainError> {
        timed(
            "reading chain state (lineage_status)",
            CALL_TIMEOUT,
            async {
                at.runtime_apis()
                    .call(
                        smidl::runtime_apis()
                            .secure_inference_api()
                            .lineage_status(lineage_id),
                    )
                    .await
                    .map_err(rpc("calling SecureInferenceApi::lineage_status"))
            },
        )
        .await
    }

    /// The owner's standing authorisation to retrain a model, if any.
    pub async fn retrain_authorisation(
        at: &AtBlock,
        model_id: u32,
    ) -> Result<Option<RetrainAuthorisation>, ChainError> {
        timed(
            "reading chain state (retrain_authorisation)",
            CALL_TIMEOUT,
            async {
                let v = at
                    .storage()
                    .try_fetch(
                        smidl::storage().secure_inference().retrain_authorisations(),
                        (model_id,),
                    )
                    .await
                    .map_err(rpc("reading RetrainAuthorisations"))?;
                v.map(|v| v.decode().map_err(rpc("decoding RetrainAuthorisations")))
                    .transpose()
            },
        )
        .await
    }

    /// The erasure attestations of the model's latest attested epoch, if any.
    pub async fn erasure(at: &AtBlock, model_id: u32) -> Result<Option<EpochErasure>, ChainError> {
        timed("reading chain state (erasure)", CALL_TIMEOUT, async {
            let v = at
                .storage()
                .try_fetch(smidl::storage().secure_inference().erasures(), (model_id,))
                .await
                .map_err(rpc("reading Erasures"))?;
            v.map(|v| v.decode().map_err(rpc("decoding Erasures")))
                .transpose()
        })
        .await
    }

    /// Whether `who` has an account on chain (a balance, hence something to pay with).
    pub async fn account_exists(at: &AtBlock, who: &AccountId32) -> Result<bool, ChainError> {
        timed("reading chain state (account)", CALL_TIMEOUT, async {
            let v = at
                .storage()
                .try_fetch(smidl::storage().system().account(), (*who,))
                .await
                .map_err(rpc("reading System.Account"))?;
            // The map has a default value: an absent account may decode as all zeros. It
            // exists while something provides for it (a balance above the existential deposit).
            let Some(v) = v else { return Ok(false) };
            let info = v.decode().map_err(rpc("decoding System.Account"))?;
            Ok(info.providers > 0 || info.sufficients > 0)
        })
        .await
    }

    pub async fn next_model_id(at: &AtBlock) -> Result<u32, ChainError> {
        timed("reading chain state (next_model_id)", CALL_TIMEOUT, async {
            let v = at
                .storage()
                .fetch(smidl::storage().secure_inference().next_model_id(), ())
                .await
                .map_err(rpc("reading NextModelId"))?;
            v.decode().map_err(rpc("decoding NextModelId"))
        })
        .await
    }
}

/// 32 raw bytes of an account id.
pub fn account_bytes(a: &AccountId32) -> [u8; 32] {
    a.0
}

/// BLAKE2-256, the hash the pallet's commitments use.
pub fn blake2_256(bytes: &[u8]) -> [u8; 32] {
    use blake2::digest::consts::U32;
    use blake2::{Blake2b, Digest};
    Blake2b::<U32>::digest(bytes).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The pool's refusals as the node words them: only a lost nonce is retried; a refusal for
    /// fees, signature or validity must reach the caller on the first attempt.
    #[test]
    fn only_nonce_collisions_are_retried() {
        for lost in [
            "The priority of the transaction is too low (pool 4027 > current 2352)",
            "RPC error: 1014: Priority is too low: (4027 vs 2352)",
            "Invalid Transaction (1010): Transaction is outdated",
            "Extrinsic was rendered invalid by another extrinsic",
        ] {
            assert!(is_nonce_collision(lost), "{lost}");
        }
        for other in [
            "Invalid Transaction (1010): Inability to pay some fees (e.g. account balance too low)",
            "Invalid Transaction (1010): Transaction has a bad signature",
            "Invalid Transaction (1010): Transaction would exhaust the block limits",
            "Transaction Already Imported",
        ] {
            assert!(!is_nonce_collision(other), "{other}");
        }
    }

    /// The checked-in metadata the interface is compiled from must be the runtime's own;
    /// otherwise calls would be encoded for a runtime that no longer exists.
    #[test]
    fn metadata_matches_runtime() {
        let checked_in = include_bytes!("../metadata/smidl.scale");
        let runtime = smidl_runtime::Runtime::metadata_at_version(16)
            .expect("the runtime provides metadata V16");
        let runtime: &[u8] = &runtime;
        assert!(
            checked_in[..] == runtime[..],
            "protocol/metadata/smidl.scale is stale: run scripts/gen-metadata.sh"
        );
    }

    #[test]
    fn only_loopback_hosts_may_use_plain_ws() {
        for ok in [
            "ws://127.0.0.1:9944",
            "ws://localhost:9944",
            "ws://[::1]:9944",
            "ws://127.0.0.2",
        ] {
            assert!(is_loopback_ws(ok), "{ok}");
        }
        for bad in [
            "ws://localhost.example.com:9944",
            "ws://127.0.0.1.nip.io",
            "ws://10.0.0.1:9944",
            "wss://127.0.0.1:9944",
            "http://127.0.0.1:9944",
        ] {
            assert!(!is_loopback_ws(bad), "{bad}");
        }
    }

    #[test]
    fn dev_keys_and_uris() {
        let alice = keypair_from_uri("//Alice").unwrap();
        assert_eq!(
            account_of(&alice).to_string(),
            "5GrwvaEF5zXb26Fz9rcQpDWS57CtERHpNehXCPcNoHGKutQY"
        );
        assert!(keypair_from_uri("not a uri with spaces only").is_err());
    }

    #[test]
    fn blake2_matches_substrate() {
        // blake2_256(b"") as computed by sp_core::hashing.
        assert_eq!(
            hex::encode(blake2_256(b"")),
            "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
        );
    }
}
