//! `smidl infer`: one encrypted prediction through the chain.
//!
//! encrypt (client key) → upload the ciphertext to the worker, filed under its BLAKE2-256 →
//! `request_inference` with that commitment → wait for the worker's `ResultSubmitted` (or
//! `RequestRejected`) → fetch the encrypted result → check it hashes to the output commitment
//! on chain → decrypt.

use std::time::{Duration, Instant};

use anyhow::{bail, Context as _, Result};
use smidl_fhe::client::Prediction;
use smidl_fhe::EncryptedOutput;
use smidl_protocol::chain::{self, smidl, Wait};

use crate::ctx::Context;
use crate::keys::Session;
use crate::ui;

use smidl::secure_inference::events as ev;

#[derive(Clone, Debug, Default)]
pub struct Timings {
    pub encrypt: Duration,
    pub upload: Duration,
    /// `request_inference` sent → in a best block.
    pub inclusion: Duration,
    /// Request in a block → the worker's `ResultSubmitted` in a best block (FHE, noise,
    /// signing, one block).
    pub worker: Duration,
    /// `ResultSubmitted` seen → its block finalized.
    pub finality: Duration,
    /// Fetch, verify and decrypt.
    pub fetch_decrypt: Duration,
    pub total: Duration,
}

#[derive(Clone, Debug)]
pub struct Outcome {
    pub request_id: u64,
    pub prediction: Prediction,
    pub request_block: u64,
    pub result_block: u64,
    pub output_commitment: [u8; 32],
    pub timings: Timings,
}

#[derive(Clone, Debug)]
pub enum Answer {
    Result(Box<Outcome>),
    Rejected { request_id: u64, reason: String },
}

/// How a request ended on chain.
#[derive(Clone, Debug)]
pub enum Settled {
    Result {
        block: u64,
        output_commitment: [u8; 32],
    },
    Rejected {
        block: u64,
        reason: String,
    },
    TimedOut {
        block: u64,
    },
}

/// Sends one encrypted query for `features` (raw feature values, as in the CSV).
pub async fn infer(ctx: &Context, session: &Session, features: &[f64]) -> Result<Answer> {
    let started = Instant::now();
    let mut t = Timings::default();
    let key_input = {
        let s = Instant::now();
        let input = session.encrypt(features).context("encrypting the input")?;
        t.encrypt = s.elapsed();
        input.to_bytes()
    };
    let commitment = chain::blake2_256(&key_input);

    let s = Instant::now();
    let pb = ui::spinner(
        ctx.interactive,
        format!("uploading the encrypted input ({} B)", key_input.len()),
    );
    ctx.worker
        .put_input(&ctx.key, session.model_id, &commitment, key_input)
        .await
        .context("uploading the encrypted input")?;
    t.upload = s.elapsed();

    pb.set_message("requesting the inference on chain");
    let s = Instant::now();
    let call = smidl::transactions()
        .secure_inference()
        .request_inference(session.model_id, commitment.into());
    let included = chain::submit(&ctx.client, &call, &ctx.key, Wait::InBlock).await?;
    t.inclusion = s.elapsed();
    let requested = included
        .events
        .find_first::<ev::InferenceRequested>()
        .context("no InferenceRequested event")??;
    let request_id = requested.request_id;

    pb.set_message(format!("request #{request_id}: waiting for the worker"));
    let s = Instant::now();
    let deadline = requested.deadline as u64 + 2;
    let settled = wait_settled(ctx, request_id, included.block_number, deadline).await?;
    t.worker = s.elapsed();
    let (result_block, output_commitment) = match settled {
        Settled::Result {
            block,
            output_commitment,
        } => (block, output_commitment),
        Settled::Rejected { reason, .. } => {
            pb.finish_and_clear();
            return Ok(Answer::Rejected { request_id, reason });
        }
        Settled::TimedOut { block } => {
            pb.finish_and_clear();
            bail!("request #{request_id} timed out at block {block}: no worker answered (refunded)")
        }
    };

    pb.set_message(format!("request #{request_id}: waiting for finality"));
    let s = Instant::now();
    wait_finalized(ctx, result_block).await?;
    t.finality = s.elapsed();

    pb.set_message(format!(
        "request #{request_id}: fetching the encrypted result"
    ));
    let s = Instant::now();
    // The worker releases a result only after it has seen the completion finalized itself;
    // it may be a moment behind us.
    let mut tries = 0;
    let fetched = loop {
        match ctx.worker.result(&ctx.key, request_id).await {
            Err(e) if e.code() == Some("result_not_final") && tries < 60 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            other => break other?,
        }
    };
    if chain::blake2_256(&fetched.bytes) != output_commitment {
        bail!("the worker's result for request #{request_id} does not match the output commitment on chain");
    }
    let out = EncryptedOutput::from_bytes(&fetched.bytes, &session.spec)
        .context("the result is not an output of this model")?;
    let prediction = session
        .key
        .decrypt_answer(&out)
        .context("decrypting the result")?;
    t.fetch_decrypt = s.elapsed();
    t.total = started.elapsed();
    pb.finish_and_clear();
    Ok(Answer::Result(Box::new(Outcome {
        request_id,
        prediction,
        request_block: included.block_number,
        result_block,
        output_commitment,
        timings: t,
    })))
}

/// Follows the best chain block by block from `from` until the request is answered.
pub async fn wait_settled(
    ctx: &Context,
    request_id: u64,
    from: u64,
    deadline: u64,
) -> Result<Settled> {
    let mut n = from;
    loop {
        let at = match ctx.client.at_block(n).await {
            Ok(at) => at,
            Err(_) => {
                // Not produced yet.
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        };
        let events = at.events().fetch().await.context("reading events")?;
        for e in events.find::<ev::ResultSubmitted>() {
            let e = e?;
            if e.request_id == request_id {
                return Ok(Settled::Result {
                    block: n,
                    output_commitment: e.output_commitment.0,
                });
            }
        }
        for e in events.find::<ev::RequestRejected>() {
            let e = e?;
            if e.request_id == request_id {
                return Ok(Settled::Rejected {
                    block: n,
                    reason: format!("{:?}", e.reason),
                });
            }
        }
        for e in events.find::<ev::RequestTimedOut>() {
            if e?.request_id == request_id {
                return Ok(Settled::TimedOut { block: n });
            }
        }
        if n > deadline + 5 {
            bail!("request #{request_id} was not settled by block {n}");
        }
        n += 1;
    }
}

/// Waits until block `number` is finalized.
pub async fn wait_finalized(ctx: &Context, number: u64) -> Result<()> {
    let give_up = Instant::now() + Duration::from_secs(120);
    loop {
        let at = ctx.at_finalized().await?;
        if at.block_number() >= number {
            return Ok(());
        }
        if Instant::now() > give_up {
            bail!("block {number} was not finalized within 120 s");
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Reads feature rows from a CSV: either bare numbers per line, or the data set layout with a
/// header (label and split columns are ignored). `row` picks one data row (0-based).
pub fn read_rows(text: &str, expected: usize) -> Result<Vec<Vec<f64>>> {
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cells: Vec<&str> = line.split(',').map(str::trim).collect();
        if cells.first().is_some_and(|c| c.parse::<f64>().is_err()) {
            continue; // header
        }
        let take = cells.len().min(expected);
        if take < expected {
            bail!(
                "line {}: {} values, the model takes {expected}",
                i + 1,
                cells.len()
            );
        }
        let row = smidl_fhe::dataset::parse_feature_row(&cells[..take].join(","), expected)
            .with_context(|| format!("line {}", i + 1))?;
        rows.push(row);
    }
    if rows.is_empty() {
        bail!("no feature rows found");
    }
    Ok(rows)
}
