//! Sealed client and model data: model records, evaluation keys, uploaded inputs, results.

use super::*;

impl Store {
    /// Stores a model record (opaque bytes holding plaintext weights; always sealed).
    pub fn put_model(&self, model_id: u32, record: &[u8]) -> Result<(), StoreError> {
        let sealed = self
            .sealer
            .seal(&aad("models", &[&model_id.to_be_bytes()]), record)?;
        self.write(|txn| {
            txn.open_table(MODELS)?
                .insert(model_id, sealed.as_slice())?;
            Ok(())
        })
    }

    pub fn model(&self, model_id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed = self.read(|txn| {
            Ok(txn
                .open_table(MODELS)?
                .get(model_id)?
                .map(|v| v.value().to_vec()))
        })?;
        sealed
            .map(|s| {
                self.sealer
                    .open(&aad("models", &[&model_id.to_be_bytes()]), &s)
            })
            .transpose()
    }

    /// Installed model ids, ascending.
    pub fn model_ids(&self) -> Result<Vec<u32>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(MODELS)?;
            let mut ids = Vec::new();
            for entry in table.iter()? {
                ids.push(entry?.0.value());
            }
            Ok(ids)
        })
    }

    /// Stores (replacing) `account`'s evaluation key for `model_id`; returns its BLAKE2b-256
    /// commitment, which is what the chain records.
    pub fn put_eval_key(
        &self,
        account: &AccountId,
        model_id: u32,
        bytes: &[u8],
    ) -> Result<Hash, StoreError> {
        let commitment = blake2_256(bytes);
        let sealed = self.sealer.seal_with(
            &eval_key_aad(model_id, account),
            commitment.len() + bytes.len(),
            |buf| {
                buf.extend_from_slice(&commitment);
                buf.extend_from_slice(bytes);
                Ok(())
            },
        )?;
        self.write(|txn| {
            txn.open_table(EVAL_KEYS)?
                .insert((model_id, *account), sealed.as_slice())?;
            Ok(())
        })?;
        Ok(commitment)
    }

    /// `account`'s evaluation key for `model_id` and its commitment.
    pub fn eval_key(
        &self,
        account: &AccountId,
        model_id: u32,
    ) -> Result<Option<(Hash, Vec<u8>)>, StoreError> {
        let sealed = self.read(|txn| {
            Ok(txn
                .open_table(EVAL_KEYS)?
                .get((model_id, *account))?
                .map(|v| v.value().to_vec()))
        })?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let mut plain = self
            .sealer
            .open(&eval_key_aad(model_id, account), &sealed)?;
        drop(sealed);
        let commitment: Hash =
            plain
                .get(..32)
                .and_then(|c| c.try_into().ok())
                .ok_or_else(|| StoreError::Decode {
                    what: "evaluation key",
                    reason: "shorter than its commitment".into(),
                })?;
        // In place, to avoid a second copy of a key that may be 100+ MiB.
        plain.drain(..32);
        Ok(Some((commitment, std::mem::take(&mut *plain))))
    }

    /// Stores (replacing) an uploaded input under the commitment the client claims for it; the
    /// claim is checked against the chain's commitment when the job runs, not here.
    pub fn put_input(
        &self,
        model_id: u32,
        commitment: &Hash,
        input: &StoredInput,
    ) -> Result<(), StoreError> {
        let sealed = self
            .sealer
            .seal_record("input", &input_aad(model_id, commitment), input)?;
        self.write(|txn| {
            txn.open_table(INPUTS)?
                .insert((model_id, *commitment), sealed.as_slice())?;
            Ok(())
        })
    }

    pub fn input(
        &self,
        model_id: u32,
        commitment: &Hash,
    ) -> Result<Option<StoredInput>, StoreError> {
        let sealed = self.read(|txn| {
            Ok(txn
                .open_table(INPUTS)?
                .get((model_id, *commitment))?
                .map(|v| v.value().to_vec()))
        })?;
        sealed
            .map(|s| {
                self.sealer
                    .open_record("input", &input_aad(model_id, commitment), &s)
            })
            .transpose()
    }

    /// Removes the stored result of `request_id` unless it was released (a released result
    /// answered a final completion, which no re-org can undo). Returns whether one was removed.
    pub fn discard_unreleased_result(&self, request_id: u64) -> Result<bool, StoreError> {
        if self.result(request_id)?.is_none_or(|r| r.released) {
            return Ok(false);
        }
        self.write(|txn| {
            let mut results = txn.open_table(RESULTS)?;
            let mut index = txn.open_table(RESULTS_BY_EPOCH)?;
            let old = results.remove(request_id)?.map(|v| {
                let (m, e, _) = v.value();
                (m, e)
            });
            if let Some((m, e)) = old {
                index.remove((m, e, request_id))?;
            }
            Ok(true)
        })
    }

    /// Stores (replacing) the result of `result.request_id`.
    pub fn put_result(&self, result: &StoredResult) -> Result<(), StoreError> {
        let (id, model, epoch) = (result.request_id, result.model_id, result.epoch);
        let sealed = self
            .sealer
            .seal_record("result", &result_aad(id, model, epoch), result)?;
        self.write(|txn| {
            let mut results = txn.open_table(RESULTS)?;
            let mut index = txn.open_table(RESULTS_BY_EPOCH)?;
            let old = results
                .insert(id, (model, epoch, sealed.as_slice()))?
                .map(|v| {
                    let (m, e, _) = v.value();
                    (m, e)
                });
            if let Some((m, e)) = old {
                index.remove((m, e, id))?;
            }
            index.insert((model, epoch, id), ())?;
            Ok(())
        })
    }

    /// Marks a stored result fetchable once its completion with `output_commitment` is
    /// final. Returns whether a matching result was found.
    pub fn release_result(
        &self,
        request_id: u64,
        output_commitment: &Hash,
    ) -> Result<bool, StoreError> {
        match self.result(request_id)? {
            Some(mut r) if &r.output_commitment == output_commitment => {
                if !r.released {
                    r.released = true;
                    self.put_result(&r)?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub fn result(&self, request_id: u64) -> Result<Option<StoredResult>, StoreError> {
        let row = self.read(|txn| {
            Ok(txn.open_table(RESULTS)?.get(request_id)?.map(|v| {
                let (m, e, sealed) = v.value();
                (m, e, sealed.to_vec())
            }))
        })?;
        let Some((model, epoch, sealed)) = row else {
            return Ok(None);
        };
        let result: StoredResult =
            self.sealer
                .open_record("result", &result_aad(request_id, model, epoch), &sealed)?;
        Ok(Some(result))
    }
}
