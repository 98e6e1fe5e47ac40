//! From a queued request to a signed answer on chain.
//!
//! For each job, in order: check the request is still pending on chain; reuse a stored result
//! if one exists (a restart never draws fresh noise for the same request); otherwise load the
//! stored ciphertext filed under the on-chain input commitment, check its BLAKE2-256, parse it,
//! evaluate the model, add DP noise, sanitise the ciphertext (`ServerModel::answer`), store the
//! encrypted result; then submit `submit_result`
//! (or `reject_request` with the reason, which refunds the client) and mark the job submitted.
//! Settlement happens in the follower, on finalized blocks only.

use std::sync::Arc;
use std::time::{Duration, Instant};

use smidl_fhe::{EncryptedInput, VerifiedInput};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::chain::{self, read, smidl, ChainError, PrivacyMode, RejectReason, RequestStatus};
use crate::dp::Mechanism;
use crate::store::{Job, JobState, StoredResult};
use crate::worker::{Worker, WorkerError};

/// What the worker answers for one request.
#[derive(Debug)]
pub enum Verdict {
    Result(StoredResult),
    Reject(RejectReason, String),
}

/// Jobs in flight at once, evaluating or waiting for their answer's inclusion. Above the
/// chain's 256 requests per block, so a full block of answers can wait for inclusion together.
pub const MAX_IN_FLIGHT: usize = 1024;

/// Takes unsettled `Queued` jobs from the store and processes them until `stop` turns true;
/// then waits (up to `settings.drain_timeout`) for the jobs in flight. Two bounds: at most
/// `settings.concurrency` jobs evaluate at once (CPU), and at most [`MAX_IN_FLIGHT`] are in
/// flight in all. An evaluation slot is given back once the answer is stored, before it is
/// submitted: holding it across the inclusion wait (a block or more) capped the worker at
/// `concurrency` answers per block whatever its CPU could do.
/// Woken by the follower; also polls, so nothing waits on a lost wake-up.
pub async fn run_executor(worker: Arc<Worker>, mut stop: tokio::sync::watch::Receiver<bool>) {
    let slots = worker.settings.concurrency.max(1);
    let pool = Arc::new(Semaphore::new(slots));
    let tasks = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let in_flight = Arc::new(std::sync::Mutex::new(
        std::collections::HashSet::<u64>::new(),
    ));
    while !*stop.borrow() {
        let jobs = match worker.store.jobs_not_settled() {
            Ok(j) => j,
            Err(e) => {
                tracing::error!("cannot read the backlog: {e}");
                Vec::new()
            }
        };
        worker.metrics.backlog.set(jobs.len() as i64);
        let now = Instant::now();
        for job in jobs.into_iter().filter(|j| j.state == JobState::Queued) {
            if *stop.borrow() {
                break;
            }
            let waiting = worker
                .retry_at
                .lock()
                .map(|r| r.get(&job.request_id).is_some_and(|t| *t > now))
                .unwrap_or(false);
            if waiting {
                continue;
            }
            let fresh = in_flight
                .lock()
                .map(|mut s| s.insert(job.request_id))
                .unwrap_or(false);
            if !fresh {
                continue;
            }
            let Ok(task) = tasks.clone().acquire_owned().await else {
                return;
            };
            let Ok(permit) = pool.clone().acquire_owned().await else {
                return;
            };
            let (w, set) = (worker.clone(), in_flight.clone());
            tokio::spawn(async move {
                let id = job.request_id;
                match process(&w, job, permit).await {
                    Ok(()) => {
                        w.retry_at.lock().map(|mut r| r.remove(&id)).ok();
                    }
                    Err(e) => failed(&w, id, &e),
                }
                if let Ok(mut s) = set.lock() {
                    s.remove(&id);
                }
                drop(task);
            });
        }
        tokio::select! {
            _ = worker.wake.notified() => {}
            _ = stop.changed() => {}
            _ = tokio::time::sleep(Duration::from_secs(3)) => {}
        }
    }
    // Every slot back means every job in flight finished (answer stored and submitted).
    let drained = tokio::time::timeout(
        worker.settings.drain_timeout,
        tasks.acquire_many(MAX_IN_FLIGHT as u32),
    )
    .await;
    match drained {
        Ok(_) => tracing::info!("in-flight requests finished"),
        Err(_) => tracing::warn!("stopping with requests in flight (they resume on restart)"),
    }
}

/// Failed attempts (other than chain outages) after which a request is rejected with
/// `EvaluationFailed` (refunding the client) instead of being tried again.
pub const MAX_ATTEMPTS: u32 = 4;

/// Records a failed attempt and schedules the next one with exponential backoff (4 s doubling
/// to 32 s, about a minute in all before the rejection). An outage does not count against the request: the node was unreachable, not the
/// request unanswerable, and the worker reconnects meanwhile.
fn failed(worker: &Worker, id: u64, e: &WorkerError) {
    let outage = matches!(e, WorkerError::Chain(c) if c.is_outage());
    let attempts = if outage {
        0
    } else {
        match worker.store.job(id) {
            Ok(Some(mut job)) if job.state == JobState::Queued => {
                job.attempts = job.attempts.saturating_add(1);
                if let Err(e) = worker.store.update_job(&job) {
                    tracing::error!(request = id, "cannot record the failed attempt: {e}");
                }
                job.attempts
            }
            _ => 0,
        }
    };
    worker.metrics.retries.inc();
    let delay = Duration::from_secs(2u64 << attempts.clamp(1, 4));
    tracing::warn!(
        request = id,
        attempts,
        "request not finished, retrying in {} s: {e}",
        delay.as_secs()
    );
    worker
        .retry_at
        .lock()
        .map(|mut r| r.insert(id, Instant::now() + delay))
        .ok();
}

/// Handles one job end to end (idempotent: safe to call again after a crash at any point).
///
/// `evaluating` is the job's evaluation slot: held while the job reads the chain and evaluates,
/// given back before the answer's submission waits for inclusion.
pub async fn process(
    worker: &Arc<Worker>,
    mut job: Job,
    evaluating: OwnedSemaphorePermit,
) -> Result<(), WorkerError> {
    let at = worker.at_best().await?;
    let Some(request) = read::request(&at, job.request_id).await? else {
        // Not (yet) on our best chain: re-orged out or not imported. The follower settles it
        // once finality shows it is gone.
        return Ok(());
    };
    if request.status != RequestStatus::Pending || request.worker.0 != worker.account {
        // Settled, or assigned to another worker (one request, one evaluation, one draw).
        job.state = JobState::Settled;
        worker.store.update_job(&job)?;
        return Ok(());
    }
    if let Some(canonical) = job_for_request(&job, &request) {
        // A re-org reused this request id for another request: answer the chain's, and never
        // with a result computed for the old one.
        tracing::warn!(
            request = job.request_id,
            "the chain's request differs from the queued job (re-org): refreshed"
        );
        worker.store.discard_unreleased_result(job.request_id)?;
        job = canonical;
        worker.store.update_job(&job)?;
    }
    let Some(model_info) = read::model(&at, job.model_id).await? else {
        return Ok(());
    };
    if job.attempts >= MAX_ATTEMPTS {
        // Bounded: the client is refunded now rather than at the request's deadline.
        return answer(
            worker,
            job,
            Verdict::Reject(
                RejectReason::EvaluationFailed,
                format!("gave up after {MAX_ATTEMPTS} failed attempts"),
            ),
        )
        .await;
    }
    // Never answer with weights other than the ones the chain commits to (e.g. a retrain this
    // worker has not swapped in yet): reload (adopting a staged version the chain now commits
    // to), else refuse and retry later; after MAX_ATTEMPTS the request is rejected.
    if model_info.epoch == job.epoch {
        let loaded = worker.model(job.model_id)?;
        if loaded.commitment != model_info.weights_commitment.0
            && !worker.adopt_committed(job.model_id, &model_info.weights_commitment.0)?
        {
            return Err(WorkerError::StaleModel(job.model_id));
        }
    }
    if model_info.epoch != job.epoch {
        // The epoch ended before we answered: the pallet no longer accepts a result.
        return answer(
            worker,
            job,
            Verdict::Reject(RejectReason::EpochEnded, "epoch ended".into()),
        )
        .await;
    }
    let verdict = match worker.store.result(job.request_id)? {
        Some(stored) => Verdict::Result(stored),
        None => {
            let noise = AnswerNoise::for_model(&model_info);
            let (w, j) = (worker.clone(), job.clone());
            let started = Instant::now();
            let verdict = tokio::task::spawn_blocking(move || evaluate(&w, &j, noise))
                .await
                .map_err(|e| WorkerError::Join(e.to_string()))??;
            worker
                .metrics
                .eval_seconds
                .observe(started.elapsed().as_secs_f64());
            if let Verdict::Result(r) = &verdict {
                // Stored before submitting: a crash after this point re-submits the same
                // noisy result instead of drawing new noise.
                worker.store.put_result(r)?;
            }
            verdict
        }
    };
    drop(evaluating);
    answer(worker, job, verdict).await
}

/// The job the chain's `request` calls for, if it differs from `job` in anything the answer
/// depends on (requester, model, epoch, input or evaluation-key commitment); `None` if `job`
/// is the chain's request.
pub fn job_for_request(job: &Job, request: &read::Request) -> Option<Job> {
    let canonical = Job {
        request_id: job.request_id,
        model_id: request.model_id,
        epoch: request.epoch,
        requester: request.requester.0,
        input_commitment: request.input_commitment.0,
        eval_key_commitment: request.eval_key_commitment.map(|h| h.0),
        seen_at_block: job.seen_at_block,
        state: job.state.clone(),
        attempts: job.attempts,
    };
    (canonical != *job).then_some(canonical)
}

/// What privacy the chain's record of the model asks of each answer.
#[derive(Clone, Copy, Debug)]
pub enum AnswerNoise {
    /// Per-query mode: noise calibrated to the charged ε (randomised response for labels).
    PerQuery {
        mechanism: Mechanism,
        epsilon_micro: u64,
    },
    /// Private-model mode: the weights are DP already and the request charged nothing; the
    /// answer is post-processing and gets no noise (it is still sanitised).
    PrivateModel,
}

impl AnswerNoise {
    pub fn for_model(info: &chain::read::ModelInfo) -> Self {
        match info.privacy {
            PrivacyMode::PerQuery => Self::PerQuery {
                mechanism: crate::dp::mechanism_for(&info.policy.accounting),
                epsilon_micro: info.policy.epsilon_per_query,
            },
            PrivacyMode::PrivateModel { .. } => Self::PrivateModel,
        }
    }
}

/// Loads, checks, evaluates and noises one request (blocking: FHE runs here).
pub fn evaluate(worker: &Worker, job: &Job, noise: AnswerNoise) -> Result<Verdict, WorkerError> {
    use RejectReason as R;
    let model = worker.model(job.model_id)?;
    let spec = model.server.client_spec();
    let Some(stored) = worker.store.input(job.model_id, &job.input_commitment)? else {
        return Ok(Verdict::Reject(
            R::InputMissing,
            "no ciphertext uploaded under this commitment".into(),
        ));
    };
    if stored.owner != job.requester {
        // Someone else's upload: never evaluate another account's data for this request.
        return Ok(Verdict::Reject(
            R::InputMissing,
            "no ciphertext of the requester under this commitment".into(),
        ));
    }
    if chain::blake2_256(&stored.bytes) != job.input_commitment {
        return Ok(Verdict::Reject(
            R::CommitmentMismatch,
            "stored ciphertext does not hash to the commitment".into(),
        ));
    }
    let input = match EncryptedInput::from_bytes(&stored.bytes, spec) {
        Ok(i) => i,
        Err(e) => return Ok(Verdict::Reject(R::MalformedInput, e.to_string())),
    };
    // Before anything is evaluated: a linear model's input must prove it encrypts values in
    // the published box (the sensitivity bound and the sanitisation assume it). The API
    // verified it at upload (≈ 165 ms, off the request's critical path) against these weights;
    // anything else is verified now.
    let input = if stored.verified_for == Some(model.commitment) {
        VerifiedInput::assume_verified(&input)
    } else {
        match model.server.verify_input(&input) {
            Ok(i) => i,
            Err(e) => return Ok(Verdict::Reject(R::MalformedInput, e.to_string())),
        }
    };
    let key = if spec.needs_evaluation_key() {
        let Some(expected) = job.eval_key_commitment else {
            return Ok(Verdict::Reject(
                R::EvalKeyMissing,
                "no evaluation key registered on chain".into(),
            ));
        };
        match worker.store.eval_key(&job.requester, job.model_id)? {
            Some((c, bytes)) if c == expected => {
                match worker.server_key(&model, &job.requester, &c, &bytes) {
                    Ok(k) => Some(k),
                    Err(e) => {
                        return Ok(Verdict::Reject(
                            R::EvalKeyMissing,
                            format!("evaluation key unusable: {e}"),
                        ))
                    }
                }
            }
            _ => {
                return Ok(Verdict::Reject(
                    R::EvalKeyMissing,
                    "evaluation key not uploaded or not the registered one".into(),
                ));
            }
        }
    } else {
        None
    };
    if spec.answers_are_labels() {
        // Labels: randomised response (per-query mode), then the label's sanitising rounds.
        let Some(key) = key.as_deref() else {
            return Ok(Verdict::Reject(
                R::EvalKeyMissing,
                "no evaluation key".into(),
            ));
        };
        let flip = match noise {
            AnswerNoise::PerQuery { epsilon_micro, .. } => {
                match crate::dp::sample_label_flip(epsilon_micro) {
                    Ok(f) => f,
                    Err(e) => {
                        return Ok(Verdict::Reject(R::EvaluationFailed, format!("noise: {e}")))
                    }
                }
            }
            AnswerNoise::PrivateModel => false,
        };
        return Ok(match model.server.answer_label(&input, key, flip) {
            Ok(o) => result(job, o.to_bytes(spec)),
            Err(e) => Verdict::Reject(R::EvaluationFailed, e.to_string()),
        });
    }
    let offsets = match noise {
        AnswerNoise::PerQuery {
            mechanism,
            epsilon_micro,
        } => {
            // Install refuses policies whose noise does not fit; a refusal here means the
            // policy changed under us.
            let plans = match model.fitting_noise_plans(mechanism, epsilon_micro) {
                Ok(p) => p,
                Err(e) => return Ok(Verdict::Reject(R::EvaluationFailed, e.to_string())),
            };
            let mut offsets = Vec::with_capacity(plans.len());
            for plan in &plans {
                match plan.sample(1) {
                    Ok(n) => offsets.extend(n),
                    Err(e) => {
                        return Ok(Verdict::Reject(R::EvaluationFailed, format!("noise: {e}")))
                    }
                }
            }
            offsets
        }
        AnswerNoise::PrivateModel => vec![0; spec.output.count()],
    };
    // Evaluate, add the noise, then sanitise with the client's public key: the returned
    // ciphertext reveals nothing about the weights beyond the noised output. A draw beyond the
    // headroom (probability ≤ 2^-40 after the check above) is refused by `add_offset`, never
    // clamped.
    let output = match model.server.answer(&input, key.as_deref(), &offsets) {
        Ok(o) => o,
        Err(e) => return Ok(Verdict::Reject(R::EvaluationFailed, e.to_string())),
    };
    // The noise values are secret (they would let a client strip the noise): not logged.
    Ok(result(job, output.to_bytes(spec)))
}

fn result(job: &Job, bytes: Vec<u8>) -> Verdict {
    Verdict::Result(StoredResult {
        request_id: job.request_id,
        model_id: job.model_id,
        epoch: job.epoch,
        requester: job.requester,
        output_commitment: chain::blake2_256(&bytes),
        output: bytes,
        released: false,
    })
}

/// Submits the verdict and records the job as submitted.
async fn answer(worker: &Arc<Worker>, mut job: Job, verdict: Verdict) -> Result<(), WorkerError> {
    let id = job.request_id;
    // Checked again just before signing: evaluation takes time and the chain moves.
    let at = worker.at_best().await?;
    match read::request(&at, id).await? {
        Some(r) if job_for_request(&job, &r).is_none() => {}
        _ => {
            return Err(WorkerError::StaleJob(id));
        }
    }
    let (outcome, rejected) = match &verdict {
        Verdict::Result(_) => ("completed".to_string(), None),
        Verdict::Reject(r, why) => (format!("rejected_{r:?}"), Some(format!("{r:?}: {why}"))),
    };
    let result = match &verdict {
        Verdict::Result(r) => {
            let call = smidl::transactions()
                .secure_inference()
                .submit_result(id, r.output_commitment.into());
            submit(worker, &call).await
        }
        Verdict::Reject(reason, _) => {
            let call = smidl::transactions()
                .secure_inference()
                .reject_request(id, reason.clone());
            submit(worker, &call).await
        }
    };
    match result {
        Ok(included) => {
            tracing::info!(
                request = id,
                model = job.model_id,
                block = included.block_number,
                "{outcome}"
            );
            worker.metrics.job(&outcome);
            job.state = JobState::Submitted {
                at_block: included.block_number as u32,
                rejected,
            };
            worker.store.update_job(&job)?;
            Ok(())
        }
        Err(e) if matches!(e.refusal(), Some("RequestNotPending" | "RequestNotFound")) => {
            // Someone (an earlier run of ours, or the timeout) already settled it.
            job.state = JobState::Settled;
            worker.store.update_job(&job)?;
            Ok(())
        }
        Err(e)
            if e.refusal() == Some("StaleEpoch")
                && !matches!(verdict, Verdict::Reject(RejectReason::EpochEnded, _)) =>
        {
            Box::pin(answer(
                worker,
                job,
                Verdict::Reject(RejectReason::EpochEnded, "epoch ended".into()),
            ))
            .await
        }
        Err(e) => {
            worker.store.update_job(&job)?;
            Err(e.into())
        }
    }
}

async fn submit<C: subxt::transactions::Payload>(
    worker: &Worker,
    call: &C,
) -> Result<chain::Included, ChainError> {
    // No lock across inclusion: many answers wait for the same block (see `submitter`).
    worker.submit(call).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chain::read::Request;
    use subxt::utils::{AccountId32, H256};

    fn request() -> Request {
        Request {
            model_id: 3,
            epoch: 2,
            lineage: 0,
            requester: AccountId32([7; 32]),
            worker: AccountId32([9; 32]),
            input_commitment: H256([1; 32]),
            eval_key_commitment: None,
            submitted_at: 10,
            deadline: 110,
            privacy_charged: 1_000_000,
            fee: 0,
            status: RequestStatus::Pending,
        }
    }

    fn job() -> Job {
        Job {
            request_id: 42,
            model_id: 3,
            epoch: 2,
            requester: [7; 32],
            input_commitment: [1; 32],
            eval_key_commitment: None,
            seen_at_block: 10,
            state: JobState::Queued,
            attempts: 0,
        }
    }

    /// A re-org that reuses a request id for another account's, input's or epoch's request
    /// must not be answered with the first fork's job (or its stored result).
    #[test]
    fn a_job_that_differs_from_the_chains_request_is_replaced() {
        assert_eq!(job_for_request(&job(), &request()), None);
        let mut other = request();
        other.requester = AccountId32([8; 32]);
        other.input_commitment = H256([2; 32]);
        let fresh = job_for_request(&job(), &other).expect("differs");
        assert_eq!(
            (fresh.request_id, fresh.requester, fresh.input_commitment),
            (42, [8; 32], [2; 32])
        );
        for change in [
            |r: &mut Request| r.epoch = 3,
            |r: &mut Request| r.model_id = 4,
            |r: &mut Request| r.eval_key_commitment = Some(H256([5; 32])),
        ] {
            let mut r = request();
            change(&mut r);
            assert!(job_for_request(&job(), &r).is_some());
        }
    }
}
