//! The end of an epoch: K reached, lifetime or idle timeout passed.
//!
//! Per model and epoch, in this order, each step persisted so a restart resumes it:
//! 1. wait until the epoch has no pending request and its results were available for
//!    `result_retention_blocks` finalized blocks (clients fetch them meanwhile);
//! 2. **controlled deletion**: the model's vault generation (every stored input and result of
//!    the epoch and, if the owner asked, the evaluation keys) is shredded — its ORAM key
//!    destroyed, then its objects deleted, after copying what survives into the next generation
//!    — then a check that none remain; the erasure report and final root are kept;
//! 3. a signed `attest_erasure` with the final root and access count (the chain lets a worker
//!    end an epoch only once every worker of the model attested it);
//! 4. a signed `reset_model` (same weights, same lineage) or, when the owner staged a next
//!    version here and authorised it on chain, `retrain_model` with exactly the authorised
//!    commitments and lineage choice (a worker key alone cannot restart budgets);
//! 5. done when the finalized chain shows the new epoch.

use std::sync::Arc;

use crate::chain::{self, read, smidl, AtBlock, ModelState};
use crate::store::{JobState, LimitStage};
use crate::wire::LimitAction;
use crate::worker::{Worker, WorkerError};

use smidl::secure_inference::events as ev;

/// Blocks after which an unconfirmed reset/retrain is sent again.
const RESUBMIT_AFTER_BLOCKS: u32 = 10;

/// Records finalized epoch changes: marks the ended epoch done and, after a retrain, switches
/// to the model the chain now commits to.
pub fn on_finalized_events(worker: &Worker, events: &chain::Events) -> Result<(), WorkerError> {
    let installed = worker.installed_models()?;
    for e in events.find::<ev::ModelReset>() {
        let e = e.map_err(chain::rpc("decoding ModelReset"))?;
        if installed.contains(&e.model_id) {
            worker
                .store
                .set_limit_stage(e.model_id, e.previous_epoch, &LimitStage::Done)?;
            tracing::info!(
                model = e.model_id,
                epoch = e.epoch,
                "model reset: epoch {} started",
                e.epoch
            );
        }
    }
    for e in events.find::<ev::ModelRetrained>() {
        let e = e.map_err(chain::rpc("decoding ModelRetrained"))?;
        if !installed.contains(&e.model_id) {
            continue;
        }
        if let Some(mut record) = worker.record(e.model_id)? {
            let staged = record.staged.take().filter(|s| {
                crate::commit::weights(&s.weights_salt, &s.server_model) == e.weights_commitment.0
            });
            match staged {
                Some(next) => {
                    record.install = next;
                    worker.put_record(e.model_id, &record)?;
                }
                None => tracing::error!(
                    model = e.model_id,
                    "retrained on chain with weights this worker does not hold; \
                     requests are refused until the owner installs them"
                ),
            }
        }
        worker
            .store
            .set_limit_stage(e.model_id, e.previous_epoch, &LimitStage::Done)?;
        tracing::info!(
            model = e.model_id,
            epoch = e.epoch,
            generation = e.generation,
            "model retrained: epoch {} started",
            e.epoch
        );
    }
    Ok(())
}

/// Looks at every installed model at a finalized block and moves ended epochs along.
pub async fn check(worker: &Arc<Worker>, at: &AtBlock) -> Result<(), WorkerError> {
    let finalized = at.block_number() as u32;
    for model_id in worker.installed_models()? {
        let Some(status) = read::model_status(at, model_id).await? else {
            continue;
        };
        if !matches!(status.state, ModelState::Exhausted | ModelState::Expired) {
            continue;
        }
        let epoch = status.epoch;
        let stage = worker.store.limit_stage(model_id, epoch)?;
        match stage {
            Some(LimitStage::Done) => continue,
            Some(LimitStage::Submitted { at_block })
                if at_block.saturating_add(RESUBMIT_AFTER_BLOCKS) > finalized =>
            {
                continue
            }
            Some(LimitStage::Submitted { .. }) | Some(LimitStage::DataDeleted { .. }) => {}
            None => {
                if status.pending > 0 {
                    continue;
                }
                let open = worker
                    .store
                    .jobs_of_epoch(model_id, epoch)?
                    .iter()
                    .any(|j| j.state != JobState::Settled);
                if open {
                    continue;
                }
                let seen = {
                    let mut m = worker
                        .limit_seen
                        .lock()
                        .map_err(|_| WorkerError::Join("lock".into()))?;
                    *m.entry((model_id, epoch)).or_insert(finalized)
                };
                if finalized < seen.saturating_add(worker.settings.result_retention_blocks) {
                    continue;
                }
                delete_epoch_data(worker, model_id, epoch)?;
            }
        }
        if let Err(e) = restart(worker, model_id, epoch).await {
            tracing::warn!(
                model = model_id,
                epoch,
                "epoch restart not sent, will retry: {e}"
            );
        }
    }
    Ok(())
}

/// Step 2: the controlled deletion, verified; its erasure report is kept for step 3.
pub fn delete_epoch_data(worker: &Worker, model_id: u32, epoch: u32) -> Result<(), WorkerError> {
    let record = worker
        .record(model_id)?
        .ok_or(WorkerError::ModelNotInstalled(model_id))?;
    let deleted =
        worker
            .store
            .delete_client_data(model_id, epoch, record.install.delete_eval_keys)?;
    worker.forget_keys(model_id);
    let left = worker.store.client_data_count(model_id, epoch)?;
    let keys_left = if record.install.delete_eval_keys {
        left.eval_keys
    } else {
        0
    };
    if left.inputs != 0 || left.results != 0 || keys_left != 0 {
        return Err(WorkerError::BadModel(
            model_id,
            format!("controlled deletion incomplete: {left:?} remain"),
        ));
    }
    let erasure = worker.store.erasure(model_id, epoch)?;
    let root = erasure
        .as_ref()
        .and_then(|e| e.final_root)
        .map(hex::encode)
        .unwrap_or_else(|| "none (nothing stored)".into());
    tracing::info!(
        model = model_id,
        epoch,
        inputs = deleted.inputs,
        results = deleted.results,
        eval_keys = deleted.eval_keys,
        objects = erasure.as_ref().map_or(0, |e| e.objects_deleted),
        final_root = %root,
        "epoch's client data shredded (vault key destroyed, objects deleted)"
    );
    worker.store.set_limit_stage(
        model_id,
        epoch,
        &LimitStage::DataDeleted { report: deleted },
    )?;
    Ok(())
}

/// Step 3: the erasure attestation, unless the chain already holds this worker's for `epoch`.
async fn attest(worker: &Arc<Worker>, model_id: u32, epoch: u32) -> Result<(), WorkerError> {
    let at = worker.at_best().await?;
    let me = chain::account_of(&worker.signer);
    let attested = read::erasure(&at, model_id)
        .await?
        .is_some_and(|r| r.epoch == epoch && r.attestations.0.iter().any(|a| a.worker == me));
    if attested {
        return Ok(());
    }
    // Recorded by step 2 in the same transaction as the deletion, so present here.
    let erasure = worker.store.erasure(model_id, epoch)?.ok_or_else(|| {
        WorkerError::BadModel(model_id, format!("no erasure report for epoch {epoch}"))
    })?;
    let call = smidl::transactions().secure_inference().attest_erasure(
        model_id,
        epoch,
        erasure.final_root.map(subxt::utils::H256),
        erasure.accesses,
    );
    let included = worker.submit(&call).await?;
    tracing::info!(
        model = model_id,
        epoch,
        block = included.block_number,
        final_root = %erasure.final_root.map(hex::encode).unwrap_or_else(|| "none".into()),
        "erasure attested on chain"
    );
    Ok(())
}

/// Step 4: the signed reset, or the retrain the owner authorised for the staged model.
async fn restart(worker: &Arc<Worker>, model_id: u32, epoch: u32) -> Result<(), WorkerError> {
    attest(worker, model_id, epoch).await?;
    let record = worker
        .record(model_id)?
        .ok_or(WorkerError::ModelNotInstalled(model_id))?;
    let at = worker.at_best().await?;
    let authorised = match (&record.install.on_limit, &record.staged) {
        (LimitAction::Retrain, Some(staged)) => read::retrain_authorisation(&at, model_id)
            .await?
            .filter(|a| {
                a.weights_commitment.0
                    == crate::commit::weights(&staged.weights_salt, &staged.server_model)
            }),
        _ => None,
    };
    let what = if authorised.is_some() {
        "retrain"
    } else {
        "reset"
    };
    let result = match authorised {
        Some(a) => {
            let call = smidl::transactions().secure_inference().retrain_model(
                model_id,
                a.weights_commitment,
                a.dataset_commitment,
                a.lineage,
                a.privacy,
            );
            worker.submit(&call).await
        }
        None => {
            if record.install.on_limit == LimitAction::Retrain {
                tracing::info!(
                    model = model_id,
                    "no staged model with a matching retrain authorisation; resetting"
                );
            }
            let call = smidl::transactions()
                .secure_inference()
                .reset_model(model_id);
            worker.submit(&call).await
        }
    };
    match result {
        Ok(included) => {
            worker
                .metrics
                .epoch_ends
                .get_or_create(&crate::metrics::Outcome {
                    outcome: what.into(),
                })
                .inc();
            tracing::info!(
                model = model_id,
                epoch,
                block = included.block_number,
                "signed {what} included"
            );
            worker.store.set_limit_stage(
                model_id,
                epoch,
                &LimitStage::Submitted {
                    at_block: included.block_number as u32,
                },
            )?;
            Ok(())
        }
        Err(e) => Err(e.into()),
    }
}
