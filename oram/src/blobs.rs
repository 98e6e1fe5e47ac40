//! Separately sealed blobs: values too large to move block by block through the ORAM (an
//! evaluation key is ~61 MB, 15 000 blocks of 4 KiB), sealed as one object each under a key
//! derived from the epoch key, at a random name.
//!
//! What the host learns about a blob: its size, when it is written, and when it is read — not
//! whose it is (the name is random and the mapping from owner to name lives in the ORAM). A
//! [`BlobRef`] holds the sealed object's hash; kept inside the ORAM, it makes a modified,
//! swapped or replayed blob an [`OramError::Integrity`] like any bucket. Shredding the epoch
//! destroys the key the blob keys are derived from, and deletes the blobs with the other objects.

use crate::crypto::{fill_random, sha256, to_hex, Hash, NONCE_BYTES, TAG_BYTES};
use crate::error::OramError;
use crate::oram::Oram;

const BLOB_DOMAIN: &[u8] = b"smidl-oram/blob/v1";

/// Largest blob: 1 GiB.
pub const MAX_BLOB_BYTES: u64 = 1 << 30;

/// Where a blob is and what it must hash to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlobRef {
    pub name: [u8; 16],
    /// Plaintext bytes.
    pub len: u64,
    /// SHA-256 of the sealed object.
    pub hash: Hash,
}

impl BlobRef {
    fn sealed_bytes(&self) -> u64 {
        self.len + (NONCE_BYTES + TAG_BYTES) as u64
    }
}

fn aad(epoch: &[u8], name: &[u8; 16], len: u64) -> Vec<u8> {
    let mut a = Vec::with_capacity(BLOB_DOMAIN.len() + 40);
    a.extend_from_slice(BLOB_DOMAIN);
    a.extend_from_slice(epoch);
    a.extend_from_slice(name);
    a.extend_from_slice(&len.to_le_bytes());
    a
}

impl Oram {
    fn blob_key(&self) -> crate::crypto::EpochKey {
        self.key.derive(b"blobs")
    }

    /// Seals `data` as a new blob; keep the returned reference (in the ORAM) to read it back.
    pub async fn put_blob(&self, data: &[u8]) -> Result<BlobRef, OramError> {
        if self.poisoned {
            return Err(OramError::Poisoned);
        }
        let len = data.len() as u64;
        if len > MAX_BLOB_BYTES {
            return Err(OramError::TooLarge {
                len,
                max: MAX_BLOB_BYTES,
            });
        }
        let mut name = [0u8; 16];
        fill_random(&mut name)?;
        let sealed = self.blob_key().seal(&aad(&self.epoch, &name, len), data)?;
        let hash = sha256(&[&sealed]);
        self.storage.put_blob(&to_hex(&name), sealed).await?;
        Ok(BlobRef { name, len, hash })
    }

    /// The blob `r` names, checked against its hash before it is opened.
    pub async fn get_blob(&self, r: &BlobRef) -> Result<Vec<u8>, OramError> {
        if self.poisoned {
            return Err(OramError::Poisoned);
        }
        let sealed = self
            .storage
            .get_blob(&to_hex(&r.name), r.sealed_bytes())
            .await?
            .ok_or_else(|| OramError::integrity("blob", "missing"))?;
        if sha256(&[&sealed]) != r.hash {
            return Err(OramError::integrity(
                "blob",
                "not the object that was written (modified, swapped or replayed)",
            ));
        }
        self.blob_key()
            .open(&aad(&self.epoch, &r.name, r.len), &sealed)
            .ok_or_else(|| OramError::integrity("blob", "authentication failed"))
    }

    /// Deletes a blob's object (a missing one is fine: deletion is idempotent).
    pub async fn delete_blob(&self, r: &BlobRef) -> Result<(), OramError> {
        self.storage
            .delete(&self.storage.blob_path(&to_hex(&r.name)))
            .await
    }
}
