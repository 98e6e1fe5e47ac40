//! Controlled deletion at an epoch's end, its progress record, and compaction.

use super::*;

impl Store {
    /// Rewrites the file without its free pages, shrinking it after a deletion. Every other call
    /// waits while this runs: call it from a blocking task at a quiet moment. Returns whether
    /// anything was moved.
    pub fn compact(&self) -> Result<bool, StoreError> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        Ok(db.compact()?)
    }

    /// Deletes, in one write transaction, every stored input of `model_id`, every result of
    /// `model_id` with epoch <= `epoch` and, if `eval_keys`, every evaluation key of `model_id`;
    /// returns what was deleted.
    ///
    /// Afterwards the sealed records are gone and unreachable. redb frees their pages without
    /// wiping them, so ciphertext may remain in the file until the pages are reused or
    /// [`Store::compact`] truncates them away; it was sealed under the data key, which never
    /// leaves the worker.
    pub fn delete_client_data(
        &self,
        model_id: u32,
        epoch: u32,
        eval_keys: bool,
    ) -> Result<ClientDataCount, StoreError> {
        self.write(|txn| {
            let mut count = ClientDataCount::default();
            let mut inputs = txn.open_table(INPUTS)?;
            for key in keys_of_model(&inputs, model_id)? {
                inputs.remove(key)?;
                count.inputs += 1;
            }
            let mut results = txn.open_table(RESULTS)?;
            let mut index = txn.open_table(RESULTS_BY_EPOCH)?;
            let doomed = index
                .range((model_id, 0, 0)..=(model_id, epoch, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<Vec<_>, _>>()?;
            for (m, e, id) in doomed {
                index.remove((m, e, id))?;
                if results.remove(id)?.is_some() {
                    count.results += 1;
                }
            }
            if eval_keys {
                let mut keys = txn.open_table(EVAL_KEYS)?;
                for key in keys_of_model(&keys, model_id)? {
                    keys.remove(key)?;
                    count.eval_keys += 1;
                }
            }
            Ok(count)
        })
    }

    /// What client data of `model_id` remains: inputs, results with epoch <= `epoch`, and
    /// evaluation keys. Used to verify a deletion.
    pub fn client_data_count(
        &self,
        model_id: u32,
        epoch: u32,
    ) -> Result<ClientDataCount, StoreError> {
        self.read(|txn| {
            let inputs = keys_of_model(&txn.open_table(INPUTS)?, model_id)?.len();
            let eval_keys = keys_of_model(&txn.open_table(EVAL_KEYS)?, model_id)?.len();
            let mut results = 0u64;
            let index = txn.open_table(RESULTS_BY_EPOCH)?;
            for entry in index.range((model_id, 0, 0)..=(model_id, epoch, u64::MAX))? {
                entry?;
                results += 1;
            }
            Ok(ClientDataCount {
                inputs: inputs as u64,
                results,
                eval_keys: eval_keys as u64,
            })
        })
    }

    pub fn limit_stage(&self, model_id: u32, epoch: u32) -> Result<Option<LimitStage>, StoreError> {
        self.read(|txn| {
            txn.open_table(LIMITS)?
                .get((model_id, epoch))?
                .map(|v| decode("limit stage", v.value()))
                .transpose()
        })
    }

    pub fn set_limit_stage(
        &self,
        model_id: u32,
        epoch: u32,
        stage: &LimitStage,
    ) -> Result<(), StoreError> {
        let bytes = encode("limit stage", stage)?;
        self.write(|txn| {
            txn.open_table(LIMITS)?
                .insert((model_id, epoch), bytes.as_slice())?;
            Ok(())
        })
    }
}
