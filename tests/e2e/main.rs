//! End to end, against a real dev node and worker (one network shared by the scenarios, run in
//! order; each scenario uses its own model so they do not interfere).
//!
//! 1. happy path: decrypted prediction = clear quantised model + noise within its tail bound;
//! 2. tampered (commitment mismatch), malformed and unprovable ciphertexts are refused at
//!    upload; a request for an input the worker does not hold is rejected and refunded;
//! 3. a replayed API request is refused; unauthenticated, oversized and unentitled uploads are
//!    refused before their bodies are read (the bodies are never sent);
//! 4. a non-worker account cannot submit results; the worker killed with SIGKILL around a
//!    request and restarted finishes every request exactly once;
//! 5. budget exhaustion and K exhaustion refuse further requests;
//! 6. after the worker's reset no stored client data of the old epoch remains: the epoch's vault
//!    was shredded (key and objects gone, an erasure report with its final root kept), the
//!    chain holds that root in the worker's attestation made before the reset, and a copy of
//!    its objects taken while it was live opens with nothing in the key directory;
//! 7. two accounts on one lineage exhaust its budget together (per-account budgets left);
//! 8. a result is never served before its completion is finalized;
//! 9. with two workers registered, each request is answered once, by its assigned worker, also
//!    when one is SIGKILLed and restarted in the middle of a burst of requests;
//! 10. the owner's authorised, staged retrain is carried out by the worker at the limit;
//! 11. clinics' sealed contributions, an aggregator's k-anonymous release on chain, the
//!     provider's raw-data retrain refused, the retrain on the release, and an encrypted
//!     prediction from the new generation (`smidl demo --clinics`);
//! 12. a worker whose weights are not the ones the chain commits to refuses to answer, and
//!     after its bounded retries rejects the request (refunding it);
//! 13. the node SIGKILLed and restarted under a running worker: the worker reconnects by
//!     itself and answers the next request.

use std::collections::HashMap;
use std::time::Duration;

use anyhow::{bail, ensure, Context as _, Result};
use smidl_cli::ctx::Context;
use smidl_cli::devnet::Devnet;
use smidl_cli::infer::{self, Answer, Settled};
use smidl_cli::keys;
use smidl_cli::model::{self, LineageArg, PolicyArgs, RegisterOptions, Registered, Source};
use smidl_worker::api_client::WorkerApi;
use smidl_worker::chain::{self, read, smidl, ChainError, Wait};
use smidl_worker::dp::{Mechanism, NoisePlan};
use smidl_worker::wire::LimitAction;
use subxt_signer::sr25519::dev;

use smidl::secure_inference::events as ev;

fn policy(k: u32, epsilon: f64, budget: f64) -> PolicyArgs {
    PolicyArgs {
        max_queries: k,
        lifetime_blocks: 2_000,
        idle_blocks: 1_000,
        epsilon_per_query: epsilon,
        account_budget: budget,
        zcdp_delta_exponent: None,
        fee: 0,
    }
}

async fn register(alice: &Context, p: PolicyArgs) -> Result<Registered> {
    let lineage = LineageArg::New { epsilon: 1_000.0 };
    register_with(alice, p, lineage, vec![chain::account_of(&dev::alice())]).await
}

async fn register_with(
    alice: &Context,
    p: PolicyArgs,
    lineage: LineageArg,
    workers: Vec<subxt::utils::AccountId32>,
) -> Result<Registered> {
    model::register(
        alice,
        RegisterOptions {
            source: Source::Logistic {
                l2_lambda: 0.1,
                clip_norm: 4.0,
            },
            csv: None,
            workers,
            policy: p,
            lineage,
            privacy: model::PrivacyArg::PerQuery,
            label_answers: false,
            on_limit: LimitAction::Reset,
            delete_eval_keys: true,
        },
    )
    .await
}

fn refusal(e: &anyhow::Error) -> Option<String> {
    e.chain()
        .find_map(|c| c.downcast_ref::<ChainError>())
        .and_then(|c| c.refusal().map(str::to_string))
}

/// Uploads `bytes` under `commitment` and requests an inference on `commitment`.
async fn raw_request(
    ctx: &Context,
    model_id: u32,
    commitment: [u8; 32],
    bytes: Vec<u8>,
) -> Result<(u64, u64)> {
    ctx.worker
        .put_input(&ctx.key, model_id, &commitment, bytes)
        .await?;
    let (id, _, block) = request(ctx, model_id, commitment).await?;
    Ok((id, block))
}

/// Sends `request_inference` on `commitment`: (request id, assigned worker, inclusion block).
async fn request(
    ctx: &Context,
    model_id: u32,
    commitment: [u8; 32],
) -> Result<(u64, subxt::utils::AccountId32, u64)> {
    let call = smidl::transactions()
        .secure_inference()
        .request_inference(model_id, commitment.into());
    let inc = chain::submit(&ctx.client, &call, &ctx.key, Wait::InBlock).await?;
    let e = inc
        .events
        .find_first::<ev::InferenceRequested>()
        .context("no InferenceRequested")??;
    Ok((e.request_id, e.worker, inc.block_number))
}

/// Waits until request `id` (made in `block`) is rejected for `reason` and that is final.
async fn rejected_for(ctx: &Context, id: u64, block: u64, reason: &str) -> Result<()> {
    match infer::wait_settled(ctx, id, block, block + 60).await? {
        Settled::Rejected { reason: got, block } => {
            ensure!(
                got.contains(reason),
                "request {id}: expected {reason}, got {got}"
            );
            infer::wait_finalized(ctx, block).await
        }
        other => bail!("request {id}: expected a {reason} rejection, got {other:?}"),
    }
}

async fn spent(ctx: &Context, model_id: u32) -> Result<(u32, u64)> {
    let at = ctx.at_finalized().await?;
    let a = read::account_status(&at, model_id, &ctx.account())
        .await?
        .context("no account status")?;
    Ok((a.queries, a.spent))
}

async fn happy_path(bob: &Context, alice: &Context) -> Result<()> {
    let reg = register(alice, policy(50, 2.0, 100.0)).await?;
    let session = keys::session(bob, reg.model_id).await?;
    let sens = reg.server.output_sensitivity().grid_units[0];
    let plan = NoisePlan::new(Mechanism::DiscreteLaplace, sens, 2_000_000)?;
    let bound = plan.tail_bound() as i64;
    for row in 0..3 {
        let x = &reg.dataset.test_x[row];
        let Answer::Result(o) = infer::infer(bob, &session, x).await? else {
            bail!("row {row} was rejected");
        };
        let clear = reg.server.eval_clear(x)?[0];
        let got = o.prediction.raw[0];
        ensure!(
            (got - clear).abs() <= bound,
            "row {row}: decrypted {got}, clear quantised {clear}, noise bound {bound}"
        );
        ensure!(o.result_block > o.request_block, "result not after request");
        eprintln!(
            "  happy path row {row}: clear {clear}, decrypted {got} (|noise| ≤ {bound}), {} blocks",
            o.result_block - o.request_block
        );
    }
    Ok(())
}

/// Uploads `bytes` under `commitment` and expects the worker to refuse it with `code`.
async fn upload_refused(
    ctx: &Context,
    model_id: u32,
    commitment: [u8; 32],
    bytes: Vec<u8>,
    code: &str,
) -> Result<()> {
    match ctx
        .worker
        .put_input(&ctx.key, model_id, &commitment, bytes)
        .await
    {
        Err(e) if e.code() == Some(code) => Ok(()),
        other => bail!("expected the upload refused as {code}, got {other:?}"),
    }
}

async fn tampered_and_malformed(bob: &Context, alice: &Context) -> Result<()> {
    let reg = register(alice, policy(50, 1.0, 100.0)).await?;
    let session = keys::session(bob, reg.model_id).await?;
    let before = spent(bob, reg.model_id).await.unwrap_or((0, 0));
    // Bytes filed under another ciphertext's commitment: known from the signed body hash,
    // refused before the body is read.
    let a = session.encrypt(&reg.dataset.test_x[0])?.to_bytes();
    let b = session.encrypt(&reg.dataset.test_x[1])?.to_bytes();
    let cb = chain::blake2_256(&b);
    upload_refused(bob, reg.model_id, cb, a, "commitment_mismatch").await?;
    // Not a ciphertext at all.
    let junk = b"definitely not a ciphertext".to_vec();
    upload_refused(
        bob,
        reg.model_id,
        chain::blake2_256(&junk),
        junk,
        "malformed_input",
    )
    .await?;
    // Out of the published box: x = 1000·qmax·e_3 would answer 1000·qmax·w_3. It cannot be
    // proven, so it goes without a proof, and the worker's upload-time check refuses it.
    let mut x = vec![0i64; session.spec.feature_count()];
    x[3] = 1000 * session.spec.input.qmax;
    let crafted = session.key.encrypt_quantised(&x)?.to_bytes();
    upload_refused(
        bob,
        reg.model_id,
        chain::blake2_256(&crafted),
        crafted,
        "malformed_input",
    )
    .await?;
    // Requesting anyway, on a commitment the worker holds nothing under: rejected, refunded.
    let (id, _, block) = request(bob, reg.model_id, cb).await?;
    rejected_for(bob, id, block, "InputMissing").await?;
    let after = spent(bob, reg.model_id).await?;
    ensure!(
        after == before,
        "not refunded: before {before:?}, after {after:?}"
    );
    eprintln!(
        "  tampered, malformed and unprovable inputs refused at upload; a request for a \
         missing input rejected and refunded: {after:?}"
    );
    Ok(())
}

/// Sends `head` (a request line and headers, no body) over a raw connection to the worker and
/// returns the status code it answers with, or `None` if it has not answered within 10 s (it
/// is waiting for the body: the attack on an unprotected route succeeded).
async fn answer_without_body(worker_url: &str, head: &str) -> Result<Option<u16>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = worker_url.trim_start_matches("http://");
    let mut tcp = tokio::net::TcpStream::connect(addr).await?;
    tcp.write_all(head.as_bytes()).await?;
    let mut buf = vec![0u8; 1024];
    let read = tokio::time::timeout(Duration::from_secs(10), tcp.read(&mut buf)).await;
    let Ok(n) = read else { return Ok(None) };
    let text = String::from_utf8_lossy(&buf[..n?]).to_string();
    let code = text
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .with_context(|| format!("not an HTTP answer: {text:?}"))?;
    Ok(Some(code))
}

/// The attacks of a stranger filling the worker's disk and memory: large bodies without a
/// signature, larger than the route allows, or from accounts the chain gives no right to
/// upload. Each is refused from its headers; the body is never sent.
async fn refused_before_read(net: &Devnet, bob: &Context, alice: &Context) -> Result<()> {
    let reg = register(alice, policy(50, 1.0, 100.0)).await?;
    let id = reg.model_id;
    let url = &net.worker_url;
    // 100 MB announced for the evaluation-key route (its limit is 160 MiB), no signature.
    let head = format!(
        "PUT /v1/models/{id}/eval-key HTTP/1.1\r\nhost: worker\r\n\
         content-type: application/octet-stream\r\ncontent-length: 100000000\r\n\r\n"
    );
    let got = answer_without_body(url, &head).await?;
    ensure!(
        got == Some(401),
        "unauthenticated 100 MB upload: expected 401 before the body, got {got:?}"
    );
    // Signed by an account with budget, but 1 GB announced for an input (limit 8 MiB).
    let small = b"a body that is never sent".to_vec();
    let c = chain::blake2_256(&small);
    let path = format!("/v1/models/{id}/inputs/0x{}", hex::encode(c));
    let signed_head = |key: &subxt_signer::sr25519::Keypair, len: u64| {
        let h = smidl_worker::auth::sign(key, "PUT", &path, &small);
        format!(
            "PUT {path} HTTP/1.1\r\nhost: worker\r\ncontent-type: application/octet-stream\r\n\
             content-length: {len}\r\n{}: {}\r\n{}: {}\r\n{}: {}\r\n{}: {}\r\n{}: {}\r\n\r\n",
            smidl_worker::auth::HEADER_ACCOUNT,
            h.account,
            smidl_worker::auth::HEADER_TIMESTAMP,
            h.timestamp,
            smidl_worker::auth::HEADER_NONCE,
            h.nonce,
            smidl_worker::auth::HEADER_SIGNATURE,
            h.signature,
            smidl_worker::auth::HEADER_BODY_HASH,
            h.body_hash,
        )
    };
    let got = answer_without_body(url, &signed_head(&bob.key, 1_000_000_000)).await?;
    ensure!(
        got == Some(413),
        "oversized signed upload: expected 413 before the body, got {got:?}"
    );
    // A well-formed signature by a key with no account on chain (nothing to pay with).
    let stranger = chain::keypair_from_uri("//SmidlStranger")?;
    let got = answer_without_body(url, &signed_head(&stranger, small.len() as u64)).await?;
    ensure!(
        got == Some(403),
        "upload by an account that does not exist: expected 403, got {got:?}"
    );
    eprintln!(
        "  unauthenticated (100 MB), oversized (1 GB) and accountless uploads refused from \
         their headers"
    );
    Ok(())
}

async fn replay_refused(bob: &Context, alice: &Context) -> Result<()> {
    let reg = register(alice, policy(50, 1.0, 100.0)).await?;
    let session = keys::session(bob, reg.model_id).await?;
    let bytes = session.encrypt(&reg.dataset.test_x[2])?.to_bytes();
    let c = chain::blake2_256(&bytes);
    let path = format!("/v1/models/{}/inputs/0x{}", reg.model_id, hex::encode(c));
    let headers = smidl_worker::auth::sign(&bob.key, "PUT", &path, &bytes);
    bob.worker
        .send_signed(reqwest::Method::PUT, &path, &headers, bytes.clone())
        .await
        .context("first upload")?;
    match bob
        .worker
        .send_signed(reqwest::Method::PUT, &path, &headers, bytes)
        .await
    {
        Err(e) if e.code() == Some("replayed") => {}
        other => bail!("replay was not refused: {:?}", other.map(|r| r.status())),
    }
    // A signature by Bob does not let Charlie's claim through.
    let mut forged = smidl_worker::auth::sign(&bob.key, "GET", "/v1/results/0", b"");
    forged.account = format!("0x{}", hex::encode(dev::charlie().public_key().0));
    match bob
        .worker
        .send_signed(reqwest::Method::GET, "/v1/results/0", &forged, vec![])
        .await
    {
        Err(e) if e.code() == Some("unauthenticated") => {}
        other => bail!(
            "forged request was not refused: {:?}",
            other.map(|r| r.status())
        ),
    }
    eprintln!("  replayed and forged API requests refused");
    Ok(())
}

/// ResultSubmitted / RequestRejected events per request id in blocks `from..=to`.
async fn answers(ctx: &Context, from: u64, to: u64) -> Result<HashMap<u64, u32>> {
    let mut m = HashMap::new();
    for n in from..=to {
        let events = ctx.client.at_block(n).await?.events().fetch().await?;
        for e in events.find::<ev::ResultSubmitted>() {
            *m.entry(e?.request_id).or_default() += 1;
        }
        for e in events.find::<ev::RequestRejected>() {
            *m.entry(e?.request_id).or_default() += 1;
        }
    }
    Ok(m)
}

async fn crash_recovery(
    net: &mut Devnet,
    bob: &Context,
    charlie: &Context,
    alice: &Context,
) -> Result<()> {
    let reg = register(alice, policy(50, 1.0, 100.0)).await?;
    let s_bob = keys::session(bob, reg.model_id).await?;
    let s_charlie = keys::session(charlie, reg.model_id).await?;
    let start = alice.at_finalized().await?.block_number();
    let mut ids = Vec::new();

    // (a) Requests made while the worker is down: recovered from the chain on restart.
    let mut pending = Vec::new();
    for (ctx, s, row) in [(bob, &s_bob, 3), (charlie, &s_charlie, 4)] {
        let bytes = s.encrypt(&reg.dataset.test_x[row])?.to_bytes();
        let c = chain::blake2_256(&bytes);
        ctx.worker
            .put_input(&ctx.key, reg.model_id, &c, bytes)
            .await?;
        pending.push((ctx, c));
    }
    net.kill_worker()?;
    for (ctx, c) in &pending {
        let call = smidl::transactions()
            .secure_inference()
            .request_inference(reg.model_id, (*c).into());
        let inc = chain::submit(&ctx.client, &call, &ctx.key, Wait::InBlock).await?;
        ids.push(
            inc.events
                .find_first::<ev::InferenceRequested>()
                .context("event")??
                .request_id,
        );
    }
    // Only an authorised worker may answer.
    let forged = smidl::transactions()
        .secure_inference()
        .submit_result(ids[0], [7u8; 32].into());
    match chain::submit(&bob.client, &forged, &bob.key, Wait::InBlock).await {
        Err(e) if e.refusal() == Some("NotWorker") => {}
        other => bail!("a non-worker submitted a result: {:?}", other.err()),
    }
    net.start_worker().await?;

    // (b) Killed right after a request is in a block, while it is being handled.
    let bytes = s_bob.encrypt(&reg.dataset.test_x[5])?.to_bytes();
    let c = chain::blake2_256(&bytes);
    bob.worker
        .put_input(&bob.key, reg.model_id, &c, bytes)
        .await?;
    let call = smidl::transactions()
        .secure_inference()
        .request_inference(reg.model_id, c.into());
    let inc = chain::submit(&bob.client, &call, &bob.key, Wait::InBlock).await?;
    net.kill_worker()?;
    ids.push(
        inc.events
            .find_first::<ev::InferenceRequested>()
            .context("event")??
            .request_id,
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    net.start_worker().await?;

    let mut last = 0;
    for &id in &ids {
        match infer::wait_settled(bob, id, start, start + 200).await? {
            Settled::Result { block, .. } => last = last.max(block),
            other => bail!("request {id} after the crash: {other:?}"),
        }
    }
    infer::wait_finalized(bob, last + 3).await?;
    let counts = answers(bob, start, last + 3).await?;
    for id in &ids {
        ensure!(
            counts.get(id) == Some(&1),
            "request {id} answered {:?} times",
            counts.get(id)
        );
    }
    // The requester can still fetch and decrypt a result produced across the restart.
    let r = bob.worker.result(&bob.key, ids[2]).await?;
    let out = smidl_fhe::EncryptedOutput::from_bytes(&r.bytes, &s_bob.spec)?;
    s_bob.key.decrypt_answer(&out)?;
    // Nobody else can.
    match charlie.worker.result(&charlie.key, ids[2]).await {
        Err(e) if e.code() == Some("not_requester") => {}
        other => bail!("another account fetched Bob's result: {:?}", other.err()),
    }
    eprintln!(
        "  SIGKILL before and during requests: {} requests answered exactly once",
        ids.len()
    );
    Ok(())
}

/// Every regular file under `dir`, recursively.
fn files_under(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files_under(&p));
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

/// Bucket objects of a vault as a storage host would keep them, and what opening them needs
/// besides the key (the epoch id, read from the live key file by this omniscient test).
struct HostCopy {
    epoch: [u8; 16],
    buckets: Vec<(u64, Vec<u8>)>,
    geometry: smidl_oram::Geometry,
}

impl HostCopy {
    fn take(vault_dir: &std::path::Path, state_dir: &std::path::Path, name: &str) -> Result<Self> {
        let (epoch, _) = smidl_oram::read_key_file(state_dir, name)?;
        let (root, vault) = (
            vault_dir.parent().context("the vault's storage root")?,
            vault_dir
                .file_name()
                .and_then(|n| n.to_str())
                .context("the vault's name")?,
        );
        let buckets: Vec<(u64, Vec<u8>)> =
            smidl_oram::fs_buckets(root, vault, smidl_worker::store::vault::BLOCK_BYTES)?
                .into_iter()
                .take(1)
                .collect();
        ensure!(!buckets.is_empty(), "the live vault has no bucket on disk");
        let geometry = smidl_oram::Geometry::new(&smidl_worker::store::vault::params())?;
        Ok(Self {
            epoch,
            buckets,
            geometry,
        })
    }

    /// Whether any 32-byte window of `bytes` opens a copied bucket.
    fn opened_by(&self, bytes: &[u8]) -> bool {
        bytes.windows(32).any(|w| {
            let k: [u8; 32] = w.try_into().expect("32 bytes");
            self.buckets
                .iter()
                .any(|(n, o)| smidl_oram::opens_with(k, &self.epoch, *n, o, &self.geometry))
        })
    }
}

async fn limits_and_deletion(
    net: &mut Devnet,
    bob: &Context,
    charlie: &Context,
    alice: &Context,
) -> Result<()> {
    // Budget: two queries' worth.
    let reg = register(alice, policy(50, 1.0, 2.0)).await?;
    let s = keys::session(bob, reg.model_id).await?;
    for row in 0..2 {
        let Answer::Result(_) = infer::infer(bob, &s, &reg.dataset.test_x[row]).await? else {
            bail!("rejected");
        };
    }
    match infer::infer(bob, &s, &reg.dataset.test_x[2]).await {
        Err(e) if refusal(&e).as_deref() == Some("BudgetExhausted") => {}
        other => bail!("third query within budget 2ε: {:?}", other.map(|_| ())),
    }
    eprintln!("  budget exhaustion refused the third query");

    // K = 3 across two accounts, then the worker's deletion and reset.
    let reg = register(alice, policy(3, 0.5, 50.0)).await?;
    let sb = keys::session(bob, reg.model_id).await?;
    let sc = keys::session(charlie, reg.model_id).await?;
    let mut results = Vec::new();
    for (ctx, s, row) in [(bob, &sb, 0), (charlie, &sc, 1), (bob, &sb, 2)] {
        let Answer::Result(o) = infer::infer(ctx, s, &reg.dataset.test_x[row]).await? else {
            bail!("rejected");
        };
        results.push(o.request_id);
    }
    // A storage host's copy of the live epoch's vault; the control shows the live key opens it.
    let vault = format!("m{}-g0", reg.model_id);
    let vault_dir = net.worker_data().join("oram").join(&vault);
    let key_dir = smidl_worker::store::default_key_dir(&net.worker_data());
    let key_file = smidl_oram::key_file(&key_dir.join("oram"), &vault);
    let host_copy = HostCopy::take(&vault_dir, &key_dir.join("oram"), &vault)?;
    ensure!(
        host_copy.opened_by(&std::fs::read(&key_file)?),
        "control: the live vault key must open the host's copy"
    );
    match infer::infer(charlie, &sc, &reg.dataset.test_x[3]).await {
        Err(e) if refusal(&e).as_deref() == Some("ModelExhausted") => {}
        other => bail!("query beyond K: {:?}", other.map(|_| ())),
    }
    eprintln!("  K exhaustion refused the fourth query");
    let (block, by) =
        smidl_cli::demo::wait_for_new_epoch(alice, reg.model_id, 0, Duration::from_secs(180))
            .await?;
    ensure!(
        by == chain::account_of(&dev::alice()).to_string(),
        "reset signed by {by}"
    );
    // The old epoch's results are gone from the API...
    match bob.worker.result(&bob.key, results[0]).await {
        Err(e) if e.code() == Some("result_deleted") || e.code() == Some("unknown_request") => {}
        other => bail!(
            "old epoch's result still served: {:?}",
            other.map(|r| r.bytes.len())
        ),
    }
    // ...and from the store itself (opened after stopping the worker).
    net.kill_worker()?;
    let store = smidl_worker::store::Store::open(
        &net.worker_data(),
        &smidl_worker::store::default_key_dir(&net.worker_data()),
    )?;
    let left = store.client_data_count(reg.model_id, 0)?;
    ensure!(
        left.inputs == 0 && left.results == 0 && left.eval_keys == 0,
        "client data of epoch 0 left after the reset: {left:?}"
    );
    let erasure = store
        .erasure(reg.model_id, 0)?
        .context("no erasure report for epoch 0")?;
    ensure!(
        erasure.final_root.is_some() && erasure.objects_deleted > 0,
        "erasure report: {erasure:?}"
    );
    drop(store);
    // The chain holds the epoch's root: the worker's attestation, made before its reset.
    let at = alice.at_finalized().await?;
    let record = read::erasure(&at, reg.model_id)
        .await?
        .filter(|r| r.epoch == 0)
        .context("no erasure attestation of epoch 0 on chain")?;
    let me = chain::account_of(&dev::alice());
    let attested = record
        .attestations
        .0
        .iter()
        .find(|a| a.worker == me)
        .context("the worker did not attest epoch 0")?;
    ensure!(
        attested.final_root.map(|r| r.0) == erasure.final_root
            && attested.accesses == erasure.accesses,
        "chain attestation {attested:?} differs from the worker's erasure report {erasure:?}"
    );
    ensure!(
        (attested.at as u64) < block,
        "attested in block #{} but reset in #{block}",
        attested.at
    );
    ensure!(!key_file.exists(), "the old epoch's vault key survived");
    ensure!(
        files_under(&vault_dir).is_empty(),
        "objects of the old epoch's vault survived"
    );
    for f in files_under(&key_dir) {
        ensure!(
            !host_copy.opened_by(&std::fs::read(&f)?),
            "{} opens the shredded epoch",
            f.display()
        );
    }
    net.start_worker().await?;
    // The new epoch serves again; n_i restarted.
    let Answer::Result(_) = infer::infer(charlie, &sc, &reg.dataset.test_x[3]).await? else {
        bail!("rejected in the new epoch");
    };
    let (n_i, _) = spent(charlie, reg.model_id).await?;
    ensure!(n_i == 1, "n_i in the new epoch is {n_i}");
    eprintln!(
        "  reset in block #{block} by the worker; epoch 0's vault shredded ({} objects, final root \
         {}, attested on chain in #{}); nothing in the key directory opens the host's copy; \
         epoch 1 serves",
        erasure.objects_deleted,
        hex::encode(erasure.final_root.unwrap_or_default()),
        attested.at
    );
    Ok(())
}

/// Two accounts, each far from its own budget, exhaust the lineage together: the guarantee
/// about the training rows holds against the coalition.
async fn lineage_shared(bob: &Context, charlie: &Context, alice: &Context) -> Result<()> {
    let lineage = LineageArg::New { epsilon: 2.0 };
    let me = vec![chain::account_of(&dev::alice())];
    let reg = register_with(alice, policy(50, 1.0, 100.0), lineage, me).await?;
    let sb = keys::session(bob, reg.model_id).await?;
    let sc = keys::session(charlie, reg.model_id).await?;
    for (ctx, s, row) in [(bob, &sb, 0), (charlie, &sc, 1)] {
        let Answer::Result(_) = infer::infer(ctx, s, &reg.dataset.test_x[row]).await? else {
            bail!("rejected within the lineage budget");
        };
    }
    for (ctx, s, row) in [(bob, &sb, 2), (charlie, &sc, 3)] {
        match infer::infer(ctx, s, &reg.dataset.test_x[row]).await {
            Err(e) if refusal(&e).as_deref() == Some("LineageBudgetExhausted") => {}
            other => bail!("query beyond the lineage: {:?}", other.map(|_| ())),
        }
        // The per-account rule alone would have let it through.
        let at = ctx.at_finalized().await?;
        let a = read::account_status(&at, reg.model_id, &ctx.account())
            .await?
            .context("no account status")?;
        ensure!(
            a.remaining >= 1_000_000 && a.queries_left_by_budget == 0,
            "{a:?}"
        );
    }
    let at = alice.at_finalized().await?;
    let l = read::lineage_status(&at, reg.lineage_id)
        .await?
        .context("no lineage")?;
    ensure!(l.spent == l.budget && l.budget == 2_000_000, "{l:?}");
    eprintln!("  two accounts spent the lineage's ε 2 together; both refused further queries");
    Ok(())
}

/// Polls for a result from the moment its request is included: it is refused as not final
/// while its completion could still be refunded, and served only once finality covers it.
async fn served_only_after_finality(bob: &Context, alice: &Context) -> Result<()> {
    let reg = register(alice, policy(50, 1.0, 100.0)).await?;
    let session = keys::session(bob, reg.model_id).await?;
    let bytes = session.encrypt(&reg.dataset.test_x[4])?.to_bytes();
    let (id, block) = raw_request(bob, reg.model_id, chain::blake2_256(&bytes), bytes).await?;
    let give_up = std::time::Instant::now() + Duration::from_secs(120);
    let mut not_final = 0;
    let finalized_after = loop {
        ensure!(std::time::Instant::now() < give_up, "no result in 120 s");
        match bob.worker.result(&bob.key, id).await {
            Ok(_) => break bob.at_finalized().await?.block_number(),
            Err(e) if e.code() == Some("result_not_final") => not_final += 1,
            Err(e) if matches!(e.code(), Some("result_not_ready" | "unknown_request")) => {}
            Err(e) => return Err(e.into()),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let Settled::Result { block: done, .. } =
        infer::wait_settled(bob, id, block, block + 50).await?
    else {
        bail!("request {id} was not answered");
    };
    ensure!(
        done <= finalized_after,
        "served with its completion in block #{done} while #{finalized_after} was finalized"
    );
    // The window the unprotected path served in was there: computed, not yet final.
    ensure!(
        not_final > 0,
        "the result was never seen computed-but-not-final"
    );
    eprintln!(
        "  result refused {not_final} times as not final, served after block #{done} was final"
    );
    Ok(())
}

/// Two workers, one model: every request is evaluated and answered by its assigned worker
/// only (one noise draw); the other never even queues it.
async fn two_workers(net: &mut Devnet, bob: &Context, alice: &Context) -> Result<()> {
    let url = net.start_extra_worker("//Dave").await?;
    let dave_api = WorkerApi::new(&url);
    let (alice_acc, dave_acc) = (
        chain::account_of(&dev::alice()),
        chain::account_of(&dev::dave()),
    );
    let lineage = LineageArg::New { epsilon: 1_000.0 };
    let workers = vec![alice_acc, dave_acc];
    let reg = register_with(alice, policy(50, 1.0, 100.0), lineage, workers).await?;
    dave_api
        .install(&alice.key, reg.model_id, &reg.install)
        .await
        .context("installing on the second worker")?;
    let session = keys::session(bob, reg.model_id).await?;
    let apis = [(&alice_acc, &bob.worker), (&dave_acc, &dave_api)];
    let start = bob.at_finalized().await?.block_number();
    let mut assigned = Vec::new();
    for row in 5..9 {
        let bytes = session.encrypt(&reg.dataset.test_x[row])?.to_bytes();
        let c = chain::blake2_256(&bytes);
        // Not knowing the assignment beforehand, the client gives the input to both.
        for (_, api) in &apis {
            api.put_input(&bob.key, reg.model_id, &c, bytes.clone())
                .await?;
        }
        assigned.push(request(bob, reg.model_id, c).await?);
    }
    let mut last = 0;
    let mut by_worker: HashMap<String, u32> = HashMap::new();
    for (id, worker, block) in &assigned {
        let Settled::Result { block: done, .. } =
            infer::wait_settled(bob, *id, *block, block + 60).await?
        else {
            bail!("request {id} not answered");
        };
        last = last.max(done);
        let events = bob.client.at_block(done).await?.events().fetch().await?;
        let answered_by = events
            .find::<ev::ResultSubmitted>()
            .filter_map(|e| e.ok())
            .find(|e| e.request_id == *id)
            .map(|e| e.worker)
            .context("no ResultSubmitted")?;
        ensure!(
            &answered_by == worker,
            "request {id} assigned to {worker} but answered by {answered_by}"
        );
        *by_worker.entry(worker.to_string()).or_default() += 1;
    }
    ensure!(
        by_worker.len() == 2,
        "both workers should serve: {by_worker:?}"
    );
    infer::wait_finalized(bob, last + 2).await?;
    let counts = answers(bob, start, last + 2).await?;
    for (id, worker, _) in &assigned {
        ensure!(
            counts.get(id) == Some(&1),
            "request {id}: {:?}",
            counts.get(id)
        );
        let (mine, other) = if worker == &alice_acc {
            (&bob.worker, &dave_api)
        } else {
            (&dave_api, &bob.worker)
        };
        mine.result(&bob.key, *id).await?;
        match other.result(&bob.key, *id).await {
            Err(e) if e.code() == Some("unknown_request") => {}
            other => bail!(
                "the unassigned worker knows request {id}: {:?}",
                other.err()
            ),
        }
    }
    eprintln!("  two workers: {by_worker:?} requests, each answered once by its assigned worker");

    // A burst with the second worker SIGKILLed in its middle and restarted after it: nothing
    // answered twice (no fresh noise for a request already answered), nothing lost.
    let mut burst = Vec::new();
    for row in 10..18 {
        let bytes = session.encrypt(&reg.dataset.test_x[row])?.to_bytes();
        burst.push((chain::blake2_256(&bytes), bytes));
    }
    for (c, bytes) in &burst {
        for (_, api) in &apis {
            api.put_input(&bob.key, reg.model_id, c, bytes.clone())
                .await?;
        }
    }
    let start = bob.at_finalized().await?.block_number();
    let mut ids = Vec::new();
    for (i, (c, _)) in burst.iter().enumerate() {
        if i == burst.len() / 2 {
            net.kill_extra_worker(0)?;
        }
        ids.push(request(bob, reg.model_id, *c).await?);
    }
    net.restart_extra_worker(0).await?;
    let mut last = 0;
    let mut dave_served = 0;
    for (id, worker, block) in &ids {
        let Settled::Result { block: done, .. } =
            infer::wait_settled(bob, *id, *block, block + 100).await?
        else {
            bail!("request {id} of the burst not answered");
        };
        last = last.max(done);
        dave_served += u32::from(worker == &dave_acc);
    }
    infer::wait_finalized(bob, last + 2).await?;
    let counts = answers(bob, start, last + 2).await?;
    for (id, _, _) in &ids {
        ensure!(
            counts.get(id) == Some(&1),
            "burst request {id} answered {:?} times",
            counts.get(id)
        );
    }
    ensure!(
        dave_served > 0,
        "the killed worker was assigned nothing in the burst"
    );
    eprintln!(
        "  burst of {}: the second worker SIGKILLed mid-burst and restarted; its {dave_served} \
         requests and the rest each answered exactly once",
        ids.len()
    );
    Ok(())
}

/// The owner moves the chain's weights commitment to a version this worker does not hold (a
/// retrain done elsewhere). Answering with the old weights would be answering with a model the
/// ledger does not vouch for: the worker refuses, retries a bounded number of times, then
/// rejects the request, which refunds the client.
async fn stale_weights_refused(net: &Devnet, bob: &Context, alice: &Context) -> Result<()> {
    use smidl_worker::chain::{LineageChoice, PrivacyMode};
    let reg = register(alice, policy(50, 1.0, 100.0)).await?;
    let session = keys::session(bob, reg.model_id).await?;
    let bytes = session.encrypt(&reg.dataset.test_x[0])?.to_bytes();
    let c = chain::blake2_256(&bytes);
    let elsewhere = smidl::transactions().secure_inference().retrain_model(
        reg.model_id,
        [0x5a; 32].into(),
        reg.dataset_commitment.into(),
        LineageChoice::Continue,
        PrivacyMode::PerQuery,
    );
    chain::submit(&alice.client, &elsewhere, &alice.key, Wait::InBlock).await?;
    bob.worker
        .put_input(&bob.key, reg.model_id, &c, bytes)
        .await?;
    let before = spent(bob, reg.model_id).await.unwrap_or((0, 0));
    let (id, _, block) = request(bob, reg.model_id, c).await?;
    rejected_for(bob, id, block, "EvaluationFailed")
        .await
        .context("a worker with stale weights must not answer")?;
    let log = std::fs::read_to_string(net.worker_log())?;
    ensure!(
        log.contains("not the ones the chain commits to"),
        "the worker did not say why it refused"
    );
    let after = spent(bob, reg.model_id).await?;
    ensure!(after == before, "not refunded: {before:?} → {after:?}");
    eprintln!("  stale weights: the worker refused, then rejected request {id} (refunded)");
    Ok(())
}

/// The node dies under a running worker and comes back on the same chain: the worker
/// reconnects by itself (no restart) and answers the next request.
async fn node_restart_survived(net: &mut Devnet) -> Result<()> {
    let home = net.dir.join("client-home");
    net.restart_node().await?;
    let alice = Context::connect(&net.rpc, &net.worker_url, dev::alice(), home, false).await?;
    let bob = alice.as_account(dev::bob());
    let reg = register(&alice, policy(50, 1.0, 100.0)).await?;
    let session = keys::session(&bob, reg.model_id).await?;
    let Answer::Result(o) = infer::infer(&bob, &session, &reg.dataset.test_x[0]).await? else {
        bail!("rejected after the node restart");
    };
    let log = std::fs::read_to_string(net.worker_log())?;
    ensure!(
        log.contains("reconnected to the node"),
        "the worker did not reconnect"
    );
    let health = WorkerApi::new(&net.worker_url).health().await?;
    ensure!(health.chain_connected, "health says: {health:?}");
    eprintln!(
        "  node SIGKILLed and restarted: the worker reconnected and answered in block #{}",
        o.result_block
    );
    Ok(())
}

/// A privately trained LR answering with labels only: its training is charged to the lineage
/// once at registration, answers charge nothing, the label is the deployed model's, and the
/// per-account answer limit stops the account.
async fn private_model_labels(bob: &Context, alice: &Context) -> Result<()> {
    let reg = model::register(
        alice,
        RegisterOptions {
            source: Source::private_logistic_defaults(),
            csv: None,
            workers: vec![chain::account_of(&dev::alice())],
            policy: policy(50, 1.0, 10.0),
            lineage: LineageArg::New { epsilon: 4.0 },
            privacy: model::PrivacyArg::PrivateModel {
                epsilon: 1.0,
                answers_per_account: 2,
                answers_per_generation: 10,
            },
            label_answers: true,
            on_limit: LimitAction::Reset,
            delete_eval_keys: true,
        },
    )
    .await?;
    ensure!(
        reg.server.client_spec().answers_are_labels(),
        "not compiled for labels"
    );
    let margin = reg
        .server
        .linear_label()
        .context("a label LR has a margin")?
        .margin_units;
    let session = keys::session(bob, reg.model_id).await?;
    for row in 0..2 {
        let x = &reg.dataset.test_x[row];
        let Answer::Result(o) = infer::infer(bob, &session, x).await? else {
            bail!("row {row} was rejected");
        };
        let clear = reg.server.clear_label(x)?;
        let score = reg.server.eval_clear(x)?[0];
        ensure!(
            o.prediction.class == clear || score.abs() <= margin,
            "row {row}: label {} against the clear {clear} (score {score}, margin {margin})",
            o.prediction.class
        );
    }
    let at = alice.at_finalized().await?;
    let l = read::lineage_status(&at, reg.lineage_id)
        .await?
        .context("no lineage")?;
    ensure!(l.spent == 1_000_000, "training charged once: {l:?}");
    let (_, spent) = spent(bob, reg.model_id).await?;
    ensure!(spent == 0, "answers charged {spent}");
    match infer::infer(bob, &session, &reg.dataset.test_x[2]).await {
        Err(e) if refusal(&e).as_deref() == Some("AccountAnswerLimitReached") => {}
        other => bail!("answer beyond the limit: {:?}", other.map(|_| ())),
    }
    eprintln!("  private model: ε 1 charged once, 2 label answers free, the third refused");
    Ok(())
}

/// The owner authorises and stages the next version; at K the worker deletes the epoch's data
/// and retrains onto exactly those commitments (same lineage), then serves the new weights.
async fn authorised_retrain(bob: &Context, alice: &Context) -> Result<()> {
    use smidl_cli::retrain::{self, RetrainLineage, RetrainOptions};
    let reg = model::register(
        alice,
        RegisterOptions {
            source: Source::Logistic {
                l2_lambda: 0.1,
                clip_norm: 4.0,
            },
            csv: None,
            workers: vec![chain::account_of(&dev::alice())],
            policy: policy(1, 1.0, 100.0),
            lineage: LineageArg::New { epsilon: 1_000.0 },
            privacy: model::PrivacyArg::PerQuery,
            label_answers: false,
            on_limit: LimitAction::Retrain,
            delete_eval_keys: true,
        },
    )
    .await?;
    let next = retrain::retrain(
        alice,
        RetrainOptions {
            model_id: reg.model_id,
            source: Source::Logistic {
                l2_lambda: 0.05,
                clip_norm: 4.0,
            },
            csv: None,
            release: None,
            lineage: RetrainLineage::Continue,
            privacy: model::PrivacyArg::PerQuery,
            label_answers: false,
            on_limit: LimitAction::Reset,
            delete_eval_keys: true,
            now: false,
        },
    )
    .await?;
    let s = keys::session(bob, reg.model_id).await?;
    let Answer::Result(_) = infer::infer(bob, &s, &reg.dataset.test_x[0]).await? else {
        bail!("rejected before the retrain");
    };
    let (block, _) =
        smidl_cli::demo::wait_for_new_epoch(alice, reg.model_id, 0, Duration::from_secs(180))
            .await?;
    let at = alice.at_finalized().await?;
    let info = read::model(&at, reg.model_id)
        .await?
        .context("model gone")?;
    ensure!(
        info.weights_commitment.0 == next.weights_commitment
            && info.dataset_commitment.0 == next.dataset_commitment,
        "the chain does not commit to the staged version"
    );
    ensure!(
        info.lineage == reg.lineage_id,
        "the retrain left the lineage"
    );
    ensure!(
        read::retrain_authorisation(&at, reg.model_id)
            .await?
            .is_none(),
        "the authorisation was not consumed"
    );
    // A fresh session checks the worker serves exactly the new commitment (the worker swaps
    // it in when it processes the finalized retrain, possibly a moment after us).
    keys::wait_until_served(bob, reg.model_id, Duration::from_secs(20)).await?;
    let s = keys::session(bob, reg.model_id).await?;
    let Answer::Result(_) = infer::infer(bob, &s, &reg.dataset.test_x[1]).await? else {
        bail!("rejected after the retrain");
    };
    eprintln!(
        "  the worker retrained onto the owner's staged version in block #{block}, same lineage"
    );
    Ok(())
}

async fn clinical_release(alice: &Context) -> Result<()> {
    let r = smidl_cli::clinics::run_on(alice).await?;
    ensure!(
        r.contributions.len() == 3,
        "{} contributions",
        r.contributions.len()
    );
    ensure!(r.raw_retrain_refused.contains("DatasetNotReleased"));
    ensure!(r.generation == 1, "generation {}", r.generation);
    let at = alice.at_finalized().await?;
    let info = read::model(&at, r.model_id).await?.context("model")?;
    let release = at
        .storage()
        .try_fetch(
            smidl::storage().secure_inference().releases(),
            (r.release_id,),
        )
        .await?
        .context("release record")?
        .decode()?;
    // The new generation is bound to the release: its dataset commitment is the release's,
    // and the release is marked as used by that generation.
    ensure!(info.dataset_commitment == release.commitment);
    ensure!(release.used_by_generation == Some(1));
    ensure!(release.rows == r.release_rows && release.k == 10 && release.l == 2);
    ensure!(
        r.test_accuracy_release > 0.6,
        "accuracy on the release {}",
        r.test_accuracy_release
    );
    Ok(())
}

async fn scenarios(net: &mut Devnet) -> Result<()> {
    let home = net.dir.join("client-home");
    let alice = Context::connect(&net.rpc, &net.worker_url, dev::alice(), home, false).await?;
    let bob = alice.as_account(dev::bob());
    let charlie = alice.as_account(dev::charlie());
    happy_path(&bob, &alice).await.context("happy path")?;
    tampered_and_malformed(&bob, &alice)
        .await
        .context("tampered/malformed")?;
    replay_refused(&bob, &alice).await.context("replay")?;
    refused_before_read(net, &bob, &alice)
        .await
        .context("refused before the body is read")?;
    crash_recovery(net, &bob, &charlie, &alice)
        .await
        .context("crash recovery")?;
    limits_and_deletion(net, &bob, &charlie, &alice)
        .await
        .context("limits and deletion")?;
    lineage_shared(&bob, &charlie, &alice)
        .await
        .context("lineage shared by two accounts")?;
    served_only_after_finality(&bob, &alice)
        .await
        .context("served only after finality")?;
    authorised_retrain(&bob, &alice)
        .await
        .context("authorised retrain")?;
    private_model_labels(&bob, &alice)
        .await
        .context("private model with label answers")?;
    clinical_release(&alice)
        .await
        .context("clinical contributions and release")?;
    two_workers(net, &bob, &alice)
        .await
        .context("two workers")?;
    stale_weights_refused(net, &bob, &alice)
        .await
        .context("stale weights refused")?;
    node_restart_survived(net)
        .await
        .context("node restart survived")?;
    Ok(())
}

#[test]
fn end_to_end() {
    let rt = tokio::runtime::Runtime::new().expect("tokio runtime");
    rt.block_on(async {
        let mut net = Devnet::start().await.expect("dev network starts");
        if let Err(e) = scenarios(&mut net).await {
            let tail = |p: std::path::PathBuf| {
                std::fs::read_to_string(&p)
                    .map(|s| {
                        s.lines()
                            .rev()
                            .take(40)
                            .collect::<Vec<_>>()
                            .into_iter()
                            .rev()
                            .collect::<Vec<_>>()
                            .join("\n")
                    })
                    .unwrap_or_default()
            };
            panic!(
                "{e:#}\n--- worker log (tail) ---\n{}\n--- node log (tail) ---\n{}",
                tail(net.worker_log()),
                tail(net.node_log())
            );
        }
    });
}
