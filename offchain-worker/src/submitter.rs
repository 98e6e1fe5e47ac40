//! Signing and sending the worker's extrinsics without a per-block lock.
//!
//! The worker is the only signer of its account that matters for throughput, so it keeps the
//! next nonce itself: a lock is held only while one transaction is signed and handed to the
//! pool (milliseconds), never across inclusion (a block). Hundreds of `submit_result`s can then
//! wait for the same block. The local nonce is dropped and re-read from the pool
//! (`system_accountNextIndex`, which counts pooled transactions) whenever anything goes wrong:
//! a refused or stale nonce, an RPC failure (the transaction may or may not have reached the
//! pool), a drop, an invalidity or an inclusion timeout (a nonce gap leaves later
//! transactions in the pool's future queue, never included). A resubmission after such a
//! failure is safe: every call the worker sends is idempotent on chain (a second answer to a
//! settled request is refused with `RequestNotPending`).
//!
//! Why not a batched call: `submit_result` is already the unit the pallet weighs, refunds and
//! reports per request; a batch would tie the fate of 200 answers to the one that fails and
//! need a second weight formula. See docs/worker.md.

use subxt::transactions::Payload;
use subxt_signer::sr25519::Keypair;
use tokio::sync::Mutex;

use crate::chain::{self, ChainError, Client, Included, Wait};

/// How often a refused nonce is re-read before the call gives up (another signer of the same
/// account, such as the provider's CLI, can take nonces between our read and our send).
const NONCE_RETRIES: u32 = 5;

/// The worker account's nonce, kept locally between transactions.
#[derive(Default)]
pub struct Submitter {
    /// The next nonce to use, or `None` to read it from the pool first.
    next: Mutex<Option<u64>>,
}

impl Submitter {
    /// Signs `call` with the next nonce, sends it and waits until it is in a best block.
    pub async fn submit<C: Payload>(
        &self,
        client: &Client,
        signer: &Keypair,
        call: &C,
    ) -> Result<Included, ChainError> {
        let mut attempt = 0;
        loop {
            let progress = self.send(client, signer, call).await?;
            match chain::watch(client, progress, Wait::InBlock).await {
                Ok(included) => return Ok(included),
                Err(e) => {
                    if !matches!(e, ChainError::Refused { .. } | ChainError::Dispatch(_)) {
                        // Not included: a nonce gap may be why. A dispatch refusal, in
                        // contrast, is included and used its nonce.
                        self.forget().await;
                    }
                    match e {
                        // The pool accepted it, then found its nonce used (by another signer
                        // of the account, e.g. the owner's CLI on a dev chain): it never ran,
                        // so sending it again with a fresh nonce is safe.
                        ChainError::Invalid(m)
                            if chain::is_nonce_collision(&m) && attempt < NONCE_RETRIES =>
                        {
                            attempt += 1;
                        }
                        e => return Err(e),
                    }
                }
            }
        }
    }

    /// Signs and hands `call` to the pool; holds the nonce lock only for that.
    async fn send<C: Payload>(
        &self,
        client: &Client,
        signer: &Keypair,
        call: &C,
    ) -> Result<chain::Progress, ChainError> {
        // Read before taking the lock: only signing and the pool's answer are serialised.
        let at = client.finalized().await?;
        let mut next = self.next.lock().await;
        let mut attempt = 0;
        loop {
            let nonce = match *next {
                Some(n) => n,
                None => client.next_nonce(&chain::account_of(signer)).await?,
            };
            match chain::send(&at, call, signer, nonce).await {
                Ok(progress) => {
                    *next = nonce.checked_add(1);
                    return Ok(progress);
                }
                Err(e) => {
                    *next = None;
                    match e {
                        ChainError::Nonce(_) if attempt < NONCE_RETRIES => attempt += 1,
                        e => return Err(e),
                    }
                }
            }
        }
    }

    /// Drops the local nonce: the next call reads it from the pool.
    pub async fn forget(&self) {
        *self.next.lock().await = None;
    }
}
