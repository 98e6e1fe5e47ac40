//! Following the chain: best blocks start work early, finalized blocks settle it.
//!
//! * A new **best** block's `InferenceRequested` events queue jobs at once (persisted,
//!   idempotent by request id), so evaluation does not wait for finality.
//! * Each **finalized** block advances a persisted cursor one block at a time: its events are
//!   scanned again (queueing anything a best block missed, e.g. across a restart or a re-org)
//!   and settle jobs whose answer (or timeout) is final. Submitted answers that finality does
//!   not confirm are re-queued; requests that finality shows never existed are dropped.
//! * On start, pending requests are also read from storage (`RequestDeadlines`), so a request
//!   made while the worker was down, or before a model was installed, is never skipped.
//! * Only requests the chain assigned to this worker are queued: with several workers per
//!   model each request is evaluated once, with one noise draw.
//! * A result becomes fetchable only when its `ResultSubmitted` is final (see `settle`).

use std::sync::Arc;
use std::time::Duration;

use subxt::utils::H256;

use crate::chain::{self, read, smidl, AtBlock, ChainError, RequestStatus};
use crate::limits;
use crate::store::{Job, JobState};
use crate::worker::{Worker, WorkerError};

use smidl::secure_inference::events as ev;

/// Blocks after which a submitted answer that finality has not confirmed is sent again.
const RESUBMIT_AFTER_BLOCKS: u32 = 10;

/// A gap of finalized blocks the follower replays event by event; beyond it (a long
/// downtime) it resumes from the current state instead, which a pruned node still has.
const CATCH_UP_LIMIT: u64 = 128;

/// How long the node may go without reporting a block before the connection counts as lost
/// (blocks come every 3 s).
const STALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Follows the chain for as long as the worker runs: an outage (node restart, network) is
/// met with a reconnection with backoff, any other failure with a retry after a pause; it
/// never gives up (the operator sees `chain_connected: false` in `/health` meanwhile).
pub async fn run(worker: Arc<Worker>) -> Result<(), WorkerError> {
    let mut pause = Duration::from_secs(1);
    loop {
        let result = follow(&worker).await;
        worker.set_connected(false);
        match result {
            Ok(()) => {
                tracing::warn!("the node ended the block subscriptions; reconnecting");
                worker.reconnect().await;
            }
            Err(WorkerError::Chain(e)) if e.is_outage() => {
                tracing::warn!("lost the node ({e}); reconnecting");
                worker.reconnect().await;
            }
            Err(e) => {
                tracing::error!(
                    "following the chain failed, retrying in {} s: {e}",
                    pause.as_secs()
                );
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(30));
                continue;
            }
        }
        pause = Duration::from_secs(1);
    }
}

async fn follow(worker: &Arc<Worker>) -> Result<(), WorkerError> {
    let rpc = chain::rpc::<subxt::error::BlocksError>;
    let client = worker.client();
    let subscribe = async {
        let best = client
            .stream_best_blocks()
            .await
            .map_err(rpc("subscribing to best blocks"))?;
        let finalized = client
            .stream_blocks()
            .await
            .map_err(rpc("subscribing to finalized blocks"))?;
        Ok::<_, ChainError>((best, finalized))
    };
    let (mut best, mut finalized) =
        chain::timed("subscribing to blocks", chain::CALL_TIMEOUT, subscribe).await?;
    reconcile_pending(worker).await?;
    worker.set_connected(true);
    loop {
        let next = tokio::time::timeout(STALL_TIMEOUT, async {
            tokio::select! {
                b = best.next() => Some(Err(b)),
                f = finalized.next() => Some(Ok(f)),
            }
        });
        let Ok(Some(event)) = next.await else {
            return Err(ChainError::Timeout {
                context: "waiting for the next block",
                seconds: STALL_TIMEOUT.as_secs(),
            }
            .into());
        };
        match event {
            Err(b) => {
                let Some(b) = b else { return Ok(()) };
                let b = b.map_err(rpc("reading a best block"))?;
                on_best(worker, b.number(), b.hash()).await?;
            }
            Ok(f) => {
                let Some(f) = f else { return Ok(()) };
                let f = f.map_err(rpc("reading a finalized block"))?;
                on_finalized(worker, f.number(), f.hash()).await?;
            }
        }
    }
}

async fn on_best(worker: &Arc<Worker>, number: u64, hash: H256) -> Result<(), WorkerError> {
    worker.best.send_replace(Some((number, hash)));
    worker.metrics.best_block.set(number as i64);
    let at = at_hash(worker, hash).await?;
    let events = events_of(&at).await?;
    if queue_requests(worker, &events, number as u32)? > 0 {
        worker.wake.notify_one();
    }
    Ok(())
}

async fn on_finalized(worker: &Arc<Worker>, number: u64, hash: H256) -> Result<(), WorkerError> {
    let mut from = match worker.store.cursor()? {
        Some((n, _)) if (n as u64) < number => n as u64 + 1,
        Some(_) => return Ok(()),
        None => number,
    };
    if number - from >= CATCH_UP_LIMIT {
        // A pruned node no longer has the old blocks' events. Everything the worker needs is
        // also in the current state: pending requests (queued below by `reconcile_pending`),
        // settled ones and their results (`recheck_unsettled`), the committed weights
        // (checked before every answer). Only the event history is skipped.
        tracing::warn!(
            "{} finalized blocks behind: resuming from the state at #{number} instead of \
             replaying their events",
            number - from
        );
        reconcile_pending(worker).await?;
        from = number;
    }
    let client = worker.client();
    let mut queued = 0;
    for n in from..=number {
        let at = client.block_at(n).await?;
        let events = events_of(&at).await?;
        queued += queue_requests(worker, &events, n as u32)?;
        settle(worker, &events)?;
        limits::on_finalized_events(worker, &events)?;
        worker.store.set_cursor(n as u32, &at.block_hash().0)?;
    }
    worker.finalized.send_replace(Some((number, hash)));
    worker.metrics.finalized_block.set(number as i64);
    let at = at_hash(worker, hash).await?;
    queued += recheck_unsettled(worker, &at, number as u32).await?;
    if queued > 0 {
        worker.wake.notify_one();
    }
    limits::check(worker, &at).await?;
    Ok(())
}

async fn events_of(at: &AtBlock) -> Result<chain::Events, ChainError> {
    chain::timed("reading events", chain::CALL_TIMEOUT, async {
        at.events()
            .fetch()
            .await
            .map_err(chain::rpc("reading events"))
    })
    .await
}

async fn at_hash(worker: &Worker, hash: H256) -> Result<AtBlock, ChainError> {
    worker.client().block(hash).await
}

/// Queues a job per `InferenceRequested` for a model installed here. Returns how many were new.
fn queue_requests(
    worker: &Worker,
    events: &chain::Events,
    block: u32,
) -> Result<usize, WorkerError> {
    let installed = worker.installed_models()?;
    let mut new = 0;
    for e in events.find::<ev::InferenceRequested>() {
        let e = e.map_err(chain::rpc("decoding InferenceRequested"))?;
        if !installed.contains(&e.model_id) || e.worker.0 != worker.account {
            continue;
        }
        let job = Job {
            request_id: e.request_id,
            model_id: e.model_id,
            epoch: e.epoch,
            requester: e.requester.0,
            input_commitment: e.input_commitment.0,
            eval_key_commitment: e.eval_key_commitment.map(|h| h.0),
            seen_at_block: block,
            state: JobState::Queued,
            attempts: 0,
        };
        if worker.store.insert_job(&job)? {
            tracing::info!(
                request = e.request_id,
                model = e.model_id,
                block,
                "request queued"
            );
            new += 1;
        }
    }
    Ok(new)
}

/// Marks jobs settled by final events, and releases results whose completion is final: the
/// charge can no longer be refunded, so the requester may now fetch the answer.
fn settle(worker: &Worker, events: &chain::Events) -> Result<(), WorkerError> {
    let mut ids = Vec::new();
    for e in events.find::<ev::ResultSubmitted>() {
        let e = e.map_err(chain::rpc("decoding ResultSubmitted"))?;
        if e.worker.0 == worker.account
            && worker
                .store
                .release_result(e.request_id, &e.output_commitment.0)?
        {
            tracing::info!(request = e.request_id, "completion final: result released");
        }
        ids.push(e.request_id);
    }
    for e in events.find::<ev::RequestRejected>() {
        ids.push(
            e.map_err(chain::rpc("decoding RequestRejected"))?
                .request_id,
        );
    }
    for e in events.find::<ev::RequestTimedOut>() {
        ids.push(
            e.map_err(chain::rpc("decoding RequestTimedOut"))?
                .request_id,
        );
    }
    for id in ids {
        if let Some(mut job) = worker.store.job(id)? {
            if job.state != JobState::Settled {
                job.state = JobState::Settled;
                worker.store.update_job(&job)?;
            }
        }
    }
    Ok(())
}

/// Compares unsettled jobs with the finalized state: re-queues answers finality lost, drops
/// requests finality shows do not exist. Returns how many were re-queued.
async fn recheck_unsettled(
    worker: &Worker,
    at: &AtBlock,
    finalized: u32,
) -> Result<usize, WorkerError> {
    let mut requeued = 0;
    for mut job in worker.store.jobs_not_settled()? {
        let request = read::request(at, job.request_id).await?;
        match (&job.state, request) {
            (_, Some(r)) if r.status != RequestStatus::Pending => {
                if let RequestStatus::Completed { output_commitment } = &r.status {
                    // Normally released from the final `ResultSubmitted` event; this covers
                    // events the follower skipped (a long downtime).
                    if r.worker.0 == worker.account
                        && worker
                            .store
                            .release_result(job.request_id, &output_commitment.0)?
                    {
                        tracing::info!(
                            request = job.request_id,
                            "completion final: result released"
                        );
                    }
                }
                job.state = JobState::Settled;
                worker.store.update_job(&job)?;
            }
            (JobState::Submitted { at_block, .. }, Some(_))
                if at_block.saturating_add(RESUBMIT_AFTER_BLOCKS) <= finalized =>
            {
                tracing::warn!(
                    request = job.request_id,
                    "answer not final after {RESUBMIT_AFTER_BLOCKS} blocks; sending again"
                );
                job.state = JobState::Queued;
                worker.store.update_job(&job)?;
                requeued += 1;
            }
            (_, None) if job.seen_at_block <= finalized => {
                tracing::warn!(
                    request = job.request_id,
                    "request is not on the finalized chain (re-org); dropped"
                );
                job.state = JobState::Settled;
                worker.store.update_job(&job)?;
            }
            _ => {}
        }
    }
    Ok(requeued)
}

/// Queues every pending request of an installed model found in storage.
async fn reconcile_pending(worker: &Arc<Worker>) -> Result<(), WorkerError> {
    let at = worker.client().finalized().await?;
    let installed = worker.installed_models()?;
    let mut entries = at
        .storage()
        .iter(smidl::storage().secure_inference().request_deadlines(), ())
        .await
        .map_err(chain::rpc("reading RequestDeadlines"))?;
    let mut ids = Vec::new();
    while let Some(entry) = entries.next().await {
        let entry = entry.map_err(chain::rpc("reading RequestDeadlines"))?;
        let list = entry
            .value()
            .decode()
            .map_err(chain::rpc("decoding RequestDeadlines"))?;
        ids.extend(list.0);
    }
    let mut new = 0;
    for id in ids {
        let Some(r) = read::request(&at, id).await? else {
            continue;
        };
        if r.status != RequestStatus::Pending
            || !installed.contains(&r.model_id)
            || r.worker.0 != worker.account
        {
            continue;
        }
        let job = Job {
            request_id: id,
            model_id: r.model_id,
            epoch: r.epoch,
            requester: r.requester.0,
            input_commitment: r.input_commitment.0,
            eval_key_commitment: r.eval_key_commitment.map(|h| h.0),
            seen_at_block: r.submitted_at,
            state: JobState::Queued,
            attempts: 0,
        };
        if worker.store.insert_job(&job)? {
            new += 1;
        }
    }
    if new > 0 {
        tracing::info!("{new} pending request(s) found in storage and queued");
        worker.wake.notify_one();
    }
    Ok(())
}
