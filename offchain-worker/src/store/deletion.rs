//! Controlled deletion at an epoch's end (shredding the model's vault generation), its
//! progress record, and compaction of the database.

use super::*;

impl Store {
    /// Rewrites the database file without its free pages (it holds no client data; this only
    /// returns space). Every other call waits while this runs: call it from a blocking task at a
    /// quiet moment. Returns whether anything was moved.
    pub fn compact(&self) -> Result<bool, StoreError> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        Ok(db.compact()?)
    }

    /// The controlled deletion at the end of `model_id`'s epoch `epoch`: shreds the model's
    /// current vault generation — every input, every result of an epoch <= `epoch` and, if
    /// `eval_keys`, every evaluation key — after copying what survives (results of later epochs,
    /// kept evaluation keys) into the next generation. The shredding destroys the generation's
    /// key before deleting its objects, so what a storage host copied cannot be decrypted
    /// afterwards; its report (with the final Merkle root) is kept ([`Store::erasure`]).
    /// Returns what was deleted.
    pub fn delete_client_data(
        &self,
        model_id: u32,
        epoch: u32,
        eval_keys: bool,
    ) -> Result<ClientDataCount, StoreError> {
        let g = self.generation(model_id)?;
        let keys = self.vaults.run(move |v| v.keys(model_id, g))?;
        let count = count_keys(&keys, epoch);
        let deleted = ClientDataCount {
            eval_keys: if eval_keys { count.eval_keys } else { 0 },
            ..count
        };
        let keep = move |k: &smidl_oram::RecordKey| match k[0] {
            client_data::RESULT_TAG => client_data::result_epoch(k) > epoch,
            client_data::EVAL_KEY_TAG => !eval_keys,
            _ => false,
        };
        let erasure = self.vaults.run(move |v| v.rotate(model_id, g, keep))?;
        let report = encode("erasure", &erasure)?;
        self.write(|txn| {
            txn.open_table(VAULT_GEN)?.insert(model_id, g + 1)?;
            txn.open_table(ERASURES)?
                .insert((model_id, epoch), report.as_slice())?;
            let mut loc = txn.open_table(RESULT_LOC)?;
            let mut released = txn.open_table(RELEASED)?;
            let mut index = txn.open_table(RESULTS_BY_EPOCH)?;
            let doomed = index
                .range((model_id, 0, 0)..=(model_id, epoch, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<Vec<_>, _>>()?;
            for (m, e, id) in doomed {
                index.remove((m, e, id))?;
                loc.remove(id)?;
                released.remove(id)?;
            }
            Ok(())
        })?;
        Ok(deleted)
    }

    /// The shredding report of `model_id`'s epoch `epoch`, once its data was deleted.
    pub fn erasure(&self, model_id: u32, epoch: u32) -> Result<Option<Erasure>, StoreError> {
        self.read(|txn| {
            txn.open_table(ERASURES)?
                .get((model_id, epoch))?
                .map(|v| decode("erasure", v.value()))
                .transpose()
        })
    }

    /// What client data of `model_id` remains: inputs, results with epoch <= `epoch`, and
    /// evaluation keys. Used to verify a deletion.
    pub fn client_data_count(
        &self,
        model_id: u32,
        epoch: u32,
    ) -> Result<ClientDataCount, StoreError> {
        let g = self.generation(model_id)?;
        let keys = self.vaults.run(move |v| v.keys(model_id, g))?;
        Ok(count_keys(&keys, epoch))
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

/// Inputs, results of epochs <= `epoch` and evaluation keys among a vault's record keys.
fn count_keys(keys: &[smidl_oram::RecordKey], epoch: u32) -> ClientDataCount {
    let mut c = ClientDataCount::default();
    for k in keys {
        match k[0] {
            client_data::INPUT_TAG => c.inputs += 1,
            client_data::RESULT_TAG if client_data::result_epoch(k) <= epoch => c.results += 1,
            client_data::EVAL_KEY_TAG => c.eval_keys += 1,
            _ => {}
        }
    }
    c
}
