//! Sealing: XChaCha20-Poly1305 under the data key, with associated data naming the table and
//! key a value is stored under (a value moved to another key fails authentication).

use super::*;

/// Associated data of a sealed value: the table and the key it lives under.
pub(super) fn aad(table: &str, key: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(AAD_DOMAIN.len() + table.len() + 1 + 64);
    out.extend_from_slice(AAD_DOMAIN);
    out.extend_from_slice(table.as_bytes());
    out.push(0);
    for part in key {
        out.extend_from_slice(part);
    }
    out
}

/// The data key in use; the cipher zeroizes its copy of the key on drop.
pub(super) struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    pub(super) fn new(key: &Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key[..])),
        }
    }

    /// Seals the plaintext that `fill` writes (exactly `len` bytes are reserved, so the
    /// plaintext never lives in a buffer that is reallocated and freed without being wiped).
    pub(super) fn seal_with(
        &self,
        aad: &[u8],
        len: usize,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<Vec<u8>, StoreError> {
        let capacity = NONCE_LEN + len + TAG_LEN;
        let mut buf = Zeroizing::new(Vec::with_capacity(capacity));
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(StoreError::Random)?;
        buf.extend_from_slice(&nonce);
        fill(&mut buf)?;
        if buf.len() + TAG_LEN > capacity {
            return Err(StoreError::Seal("plaintext longer than announced".into()));
        }
        let tag = self
            .cipher
            .encrypt_in_place_detached(&XNonce::from(nonce), aad, &mut buf[NONCE_LEN..])
            .map_err(|_| StoreError::Seal("value too long for the cipher".into()))?;
        buf.extend_from_slice(&tag);
        // Only ciphertext is left in the buffer.
        Ok(std::mem::take(&mut *buf))
    }

    pub(super) fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.seal_with(aad, plaintext.len(), |buf| {
            buf.extend_from_slice(plaintext);
            Ok(())
        })
    }

    pub(super) fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(StoreError::Authentication);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| StoreError::Authentication)?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| StoreError::Authentication)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        self.cipher
            .decrypt_in_place_detached(&XNonce::from(nonce), aad, &mut buf, &Tag::from(tag))
            .map_err(|_| StoreError::Authentication)?;
        Ok(buf)
    }
}
