//! The end of an epoch: K reached, lifetime or idle timeout passed.
//!
//! Per model and epoch, in this order, each step persisted so a restart resumes it:
//! 1. wait until the epoch has no pending request and its results were available for
//!    `result_retention_blocks` finalized blocks (clients fetch them meanwhile);
//! 2. **controlled deletion**: every stored input and result of the epoch (and, if the owner
//!    asked, the evaluation keys) in one store transaction, then a check that none remain;
//! 3. a signed `reset_model` (same weights) or `retrain_model` (a model trained again on a
//!    fresh random subsample of the provider's data, with new commitments);
//! 4. done when the finalized chain shows the new epoch.

use std::sync::Arc;

use smidl_fhe::dataset::Dataset;
use smidl_fhe::model::train::{train_logistic_regression, LrConfig};
use smidl_fhe::quant::QuantConfig;
use smidl_fhe::ServerModel;

use crate::chain::{self, read, smidl, AtBlock, ModelState, Wait};
use crate::store::{JobState, LimitStage};
use crate::wire::{LimitAction, TrainingRecipe};
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
            if let Some((bytes, _)) = record.pending_retrain.take() {
                let model = ServerModel::from_canonical_bytes(&bytes)?;
                if model.commitment() == e.weights_commitment.0 {
                    record.install.server_model = bytes;
                    worker.put_record(e.model_id, &record)?;
                } else {
                    tracing::error!(
                        model = e.model_id,
                        "retrained on chain with weights this worker does not hold"
                    );
                }
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

/// Step 2: the controlled deletion, verified.
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
    tracing::info!(
        model = model_id,
        epoch,
        inputs = deleted.inputs,
        results = deleted.results,
        eval_keys = deleted.eval_keys,
        "epoch's client data deleted"
    );
    worker.store.set_limit_stage(
        model_id,
        epoch,
        &LimitStage::DataDeleted { report: deleted },
    )?;
    Ok(())
}

/// Step 3: the signed reset or retrain.
async fn restart(worker: &Arc<Worker>, model_id: u32, epoch: u32) -> Result<(), WorkerError> {
    let mut record = worker
        .record(model_id)?
        .ok_or(WorkerError::ModelNotInstalled(model_id))?;
    let result = match (record.install.on_limit, record.install.training.clone()) {
        (LimitAction::Retrain, Some(recipe)) => {
            let (bytes, dataset) = match record.pending_retrain.clone() {
                Some(p) => p,
                None => {
                    let (model, dataset) = tokio::task::spawn_blocking(move || retrain(&recipe))
                        .await
                        .map_err(|e| WorkerError::Join(e.to_string()))??;
                    let p = (model.canonical_bytes(), dataset);
                    record.pending_retrain = Some(p.clone());
                    worker.put_record(model_id, &record)?;
                    p
                }
            };
            let weights = ServerModel::from_canonical_bytes(&bytes)?.commitment();
            let call = smidl::transactions().secure_inference().retrain_model(
                model_id,
                weights.into(),
                dataset.into(),
            );
            let _g = worker.submit_lock.lock().await;
            chain::submit(&worker.client, &call, &worker.signer, Wait::InBlock).await
        }
        (action, _) => {
            if action == LimitAction::Retrain {
                tracing::warn!(
                    model = model_id,
                    "retrain asked without training data; resetting instead"
                );
            }
            let call = smidl::transactions()
                .secure_inference()
                .reset_model(model_id);
            let _g = worker.submit_lock.lock().await;
            chain::submit(&worker.client, &call, &worker.signer, Wait::InBlock).await
        }
    };
    match result {
        Ok(included) => {
            let what = if record.pending_retrain.is_some() {
                "retrain"
            } else {
                "reset"
            };
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

/// Trains the model again on a fresh random subsample of the provider's rows. Returns the
/// compiled model and the commitment of exactly the rows used.
pub fn retrain(recipe: &TrainingRecipe) -> Result<(ServerModel, [u8; 32]), WorkerError> {
    let bad = |e: String| WorkerError::BadModel(u32::MAX, e);
    let text = std::str::from_utf8(&recipe.csv).map_err(|e| bad(e.to_string()))?;
    let mut ds = Dataset::from_csv(text)?;
    let n = ds.train_x.len();
    let frac = recipe.subsample.clamp(0.1, 1.0);
    let k = ((n as f64) * frac).ceil() as usize;
    let mut idx: Vec<usize> = (0..n).collect();
    // Fisher–Yates with OS randomness (unbiased by rejection).
    for i in (1..n).rev() {
        let j = uniform_below(i as u64 + 1).map_err(bad)? as usize;
        idx.swap(i, j);
    }
    let mut chosen: Vec<usize> = idx.into_iter().take(k).collect();
    chosen.sort_unstable();
    ds.train_x = chosen.iter().map(|&i| ds.train_x[i].clone()).collect();
    ds.train_y = chosen.iter().map(|&i| ds.train_y[i]).collect();
    let cfg = LrConfig {
        l2_lambda: recipe.l2_lambda,
        clip_norm: recipe.clip_norm,
    };
    let model = train_logistic_regression(&ds, &cfg)?;
    let server = ServerModel::compile(&model, &ds, &QuantConfig::default())?.with_input_proofs()?;
    let mut commit = Vec::with_capacity(64 + 4 * k);
    commit.extend_from_slice(b"smidl/dataset/v1");
    commit.extend_from_slice(&chain::blake2_256(&recipe.csv));
    for i in &chosen {
        commit.extend_from_slice(&(*i as u32).to_le_bytes());
    }
    Ok((server, chain::blake2_256(&commit)))
}

fn uniform_below(bound: u64) -> Result<u64, String> {
    let zone = u64::MAX - (u64::MAX % bound);
    loop {
        let mut b = [0u8; 8];
        getrandom::getrandom(&mut b).map_err(|e| e.to_string())?;
        let v = u64::from_le_bytes(b);
        if v < zone {
            return Ok(v % bound);
        }
    }
}

/// The commitment a provider registers for its initial training data (the same scheme
/// [`retrain`] uses, over all rows).
pub fn dataset_commitment(csv: &[u8], rows: usize) -> [u8; 32] {
    let mut commit = Vec::with_capacity(64 + 4 * rows);
    commit.extend_from_slice(b"smidl/dataset/v1");
    commit.extend_from_slice(&chain::blake2_256(csv));
    for i in 0..rows {
        commit.extend_from_slice(&(i as u32).to_le_bytes());
    }
    chain::blake2_256(&commit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retrain_draws_a_new_subsample_and_commits_to_it() {
        let recipe = TrainingRecipe {
            csv: smidl_fhe::dataset::BREAST_CANCER_CSV.as_bytes().to_vec(),
            l2_lambda: 0.01,
            clip_norm: Some(4.0),
            subsample: 0.9,
        };
        let (a, da) = retrain(&recipe).unwrap();
        let (b, db) = retrain(&recipe).unwrap();
        assert_ne!(da, db, "two retrains used the same rows");
        assert_ne!(a.commitment(), b.commitment());
        let ds = smidl_fhe::dataset::breast_cancer();
        let acc = |m: &ServerModel| {
            let ok = ds
                .test_x
                .iter()
                .zip(&ds.test_y)
                .filter(|(x, &y)| {
                    let q = m.eval_clear(x).unwrap();
                    (q[0] > 0) as u8 == y
                })
                .count();
            ok as f64 / ds.test_x.len() as f64
        };
        assert!(
            acc(&a) > 0.93 && acc(&b) > 0.93,
            "retrained models lost accuracy"
        );
    }

    #[test]
    fn uniform_below_stays_in_range() {
        for bound in [1u64, 2, 3, 455, u64::MAX] {
            for _ in 0..100 {
                assert!(uniform_below(bound).unwrap() < bound);
            }
        }
    }
}
