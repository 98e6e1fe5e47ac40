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

    /// The vault generation that receives `model_id`'s client data now.
    pub fn generation(&self, model_id: u32) -> Result<u64, StoreError> {
        self.read(|txn| {
            Ok(txn
                .open_table(VAULT_GEN)?
                .get(model_id)?
                .map(|v| v.value())
                .unwrap_or(0))
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
        let mut value = Zeroizing::new(Vec::with_capacity(64 + bytes.len()));
        value.extend_from_slice(account);
        value.extend_from_slice(&commitment);
        value.extend_from_slice(bytes);
        let (key, g) = (eval_key_key(model_id, account), self.generation(model_id)?);
        self.vaults.run(move |v| v.put(model_id, g, key, &value))?;
        Ok(commitment)
    }

    /// `account`'s evaluation key for `model_id` and its commitment.
    pub fn eval_key(
        &self,
        account: &AccountId,
        model_id: u32,
    ) -> Result<Option<(Hash, Vec<u8>)>, StoreError> {
        let (key, g) = (eval_key_key(model_id, account), self.generation(model_id)?);
        let Some(mut plain) = self.vaults.run(move |v| v.get(model_id, g, key))? else {
            return Ok(None);
        };
        let bad = |reason: &str| StoreError::Decode {
            what: "evaluation key",
            reason: reason.into(),
        };
        if plain.len() < 64 {
            return Err(bad("shorter than its header"));
        }
        if &plain[..32] != account {
            return Err(bad("stored for another account"));
        }
        let commitment: Hash = plain[32..64].try_into().expect("32 bytes");
        // In place, to avoid a second copy of a key that may be 100+ MiB.
        plain.drain(..64);
        Ok(Some((commitment, plain)))
    }

    /// Stores (replacing) an uploaded input under the commitment the client claims for it; the
    /// claim is checked against the chain's commitment when the job runs, not here.
    pub fn put_input(
        &self,
        model_id: u32,
        commitment: &Hash,
        input: &StoredInput,
    ) -> Result<(), StoreError> {
        let value = Zeroizing::new(encode("input", &(commitment, input))?);
        let (key, g) = (input_key(model_id, commitment), self.generation(model_id)?);
        self.vaults.run(move |v| v.put(model_id, g, key, &value))
    }

    pub fn input(
        &self,
        model_id: u32,
        commitment: &Hash,
    ) -> Result<Option<StoredInput>, StoreError> {
        let (key, g) = (input_key(model_id, commitment), self.generation(model_id)?);
        let Some(plain) = self.vaults.run(move |v| v.get(model_id, g, key))? else {
            return Ok(None);
        };
        let plain = Zeroizing::new(plain);
        let (stored_for, input): (Hash, StoredInput) = decode("input", &plain)?;
        // The record key holds a prefix of the commitment; the full one is checked here.
        Ok((&stored_for == commitment).then_some(input))
    }

    /// Removes the stored result of `request_id` unless it was released (a released result
    /// answered a final completion, which no re-org can undo). Returns whether one was removed.
    pub fn discard_unreleased_result(&self, request_id: u64) -> Result<bool, StoreError> {
        let Some(r) = self.result(request_id)? else {
            return Ok(false);
        };
        if r.released {
            return Ok(false);
        }
        let (m, e) = (r.model_id, r.epoch);
        let g = self.generation(m)?;
        let key = result_key(m, e, request_id);
        self.vaults.run(move |v| v.remove(m, g, key))?;
        self.write(|txn| {
            txn.open_table(RESULT_LOC)?.remove(request_id)?;
            txn.open_table(RELEASED)?.remove(request_id)?;
            txn.open_table(RESULTS_BY_EPOCH)?
                .remove((m, e, request_id))?;
            Ok(true)
        })
    }

    /// Stores (replacing) the result of `result.request_id`.
    pub fn put_result(&self, result: &StoredResult) -> Result<(), StoreError> {
        let (id, model, epoch) = (result.request_id, result.model_id, result.epoch);
        // The location first: a crash before the value is written leaves a location without a
        // value, which reads as "no result" (the job is evaluated again; nothing was sent).
        let old = self.write(|txn| {
            let mut loc = txn.open_table(RESULT_LOC)?;
            let mut index = txn.open_table(RESULTS_BY_EPOCH)?;
            // A new result is not released until its own completion is final.
            txn.open_table(RELEASED)?.remove(id)?;
            let old = loc.insert(id, (model, epoch))?.map(|v| v.value());
            if let Some((m, e)) = old {
                index.remove((m, e, id))?;
            }
            index.insert((model, epoch, id), ())?;
            Ok(old)
        })?;
        let value = Zeroizing::new(encode("result", result)?);
        let g = self.generation(model)?;
        let key = result_key(model, epoch, id);
        self.vaults.run(move |v| {
            if let Some((m, e)) = old.filter(|&o| o != (model, epoch)) {
                v.remove(m, g, result_key(m, e, id))?;
            }
            v.put(model, g, key, &value)
        })
    }

    /// Marks a stored result fetchable once its completion with `output_commitment` is
    /// final. Returns whether a matching result was found.
    ///
    /// The mark is a sealed copy of the commitment under the request id (no ORAM access): a
    /// host that forges, moves or replays one makes [`Store::result`] read "not released".
    pub fn release_result(
        &self,
        request_id: u64,
        output_commitment: &Hash,
    ) -> Result<bool, StoreError> {
        match self.result(request_id)? {
            Some(r) if &r.output_commitment == output_commitment => {
                if !r.released {
                    let sealed = self
                        .sealer
                        .seal(&released_aad(request_id), output_commitment)?;
                    self.write(|txn| {
                        txn.open_table(RELEASED)?
                            .insert(request_id, sealed.as_slice())?;
                        Ok(())
                    })?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub fn result(&self, request_id: u64) -> Result<Option<StoredResult>, StoreError> {
        // Clients poll this: the location and the generation in one read transaction.
        let loc = self.read(|txn| {
            let Some((model, epoch)) = txn
                .open_table(RESULT_LOC)?
                .get(request_id)?
                .map(|v| v.value())
            else {
                return Ok(None);
            };
            let g = txn
                .open_table(VAULT_GEN)?
                .get(model)?
                .map_or(0, |v| v.value());
            let mark = txn
                .open_table(RELEASED)?
                .get(request_id)?
                .map(|v| v.value().to_vec());
            Ok(Some((model, epoch, g, mark)))
        })?;
        let Some((model, epoch, g, mark)) = loc else {
            return Ok(None);
        };
        let key = result_key(model, epoch, request_id);
        let Some(plain) = self.vaults.run(move |v| v.get(model, g, key))? else {
            return Ok(None);
        };
        let plain = Zeroizing::new(plain);
        let mut r: StoredResult = decode("result", &plain)?;
        if (r.request_id, r.model_id, r.epoch) != (request_id, model, epoch) {
            return Err(StoreError::Inconsistent(format!(
                "the vault's record for request {request_id} holds another result"
            )));
        }
        r.released = match mark {
            None => false,
            Some(sealed) => match self.sealer.open(&released_aad(request_id), &sealed) {
                Ok(c) if c.as_slice() == r.output_commitment => true,
                // Forged or moved from another request: not a release. The follower writes a
                // good one when the completion is final.
                _ => {
                    tracing::warn!(
                        request = request_id,
                        "a release mark does not open for this result: ignored"
                    );
                    false
                }
            },
        };
        Ok(Some(r))
    }
}

fn released_aad(request_id: u64) -> Vec<u8> {
    aad("released", &[&request_id.to_be_bytes()])
}

/// Record keys in a model's vault: a kind tag, then what identifies the record. They never leave
/// the worker (the vault's directory is inside the ORAM), so their structure is not hidden
/// from anyone who could read them.
pub(super) const INPUT_TAG: u8 = 1;
pub(super) const RESULT_TAG: u8 = 2;
pub(super) const EVAL_KEY_TAG: u8 = 3;

fn tagged(tag: u8, model_id: u32, rest: &[u8]) -> smidl_oram::RecordKey {
    let mut k = [0u8; 32];
    k[0] = tag;
    k[1..5].copy_from_slice(&model_id.to_be_bytes());
    let n = rest.len().min(27);
    k[5..5 + n].copy_from_slice(&rest[..n]);
    k
}

fn input_key(model_id: u32, commitment: &Hash) -> smidl_oram::RecordKey {
    tagged(INPUT_TAG, model_id, commitment)
}

fn eval_key_key(model_id: u32, account: &AccountId) -> smidl_oram::RecordKey {
    // 27 bytes of an sr25519 public key: a collision needs a second key of the same prefix, and
    // the account stored in the value is checked on every read.
    tagged(EVAL_KEY_TAG, model_id, account)
}

pub(super) fn result_key(model_id: u32, epoch: u32, request_id: u64) -> smidl_oram::RecordKey {
    let mut rest = [0u8; 12];
    rest[..4].copy_from_slice(&epoch.to_be_bytes());
    rest[4..].copy_from_slice(&request_id.to_be_bytes());
    tagged(RESULT_TAG, model_id, &rest)
}

/// The epoch of a result key.
pub(super) fn result_epoch(key: &smidl_oram::RecordKey) -> u32 {
    u32::from_be_bytes(key[5..9].try_into().expect("4 bytes"))
}
