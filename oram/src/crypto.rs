//! Sealing (XChaCha20-Poly1305 with random 192-bit nonces), hashing (SHA-256) and randomness
//! (the OS CSPRNG). Random nonces: a bucket is re-sealed on every write-back, so even an
//! unchanged bucket gets a fresh ciphertext, and 2^96 writes keep the nonce-collision
//! probability negligible without any counter state to lose in a crash.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use sha2::{Digest, Sha256};
use zeroize::{Zeroize, ZeroizeOnDrop};

use crate::error::OramError;

pub const KEY_BYTES: usize = 32;
pub const NONCE_BYTES: usize = 24;
pub const TAG_BYTES: usize = 16;
pub const HASH_BYTES: usize = 32;

pub type Hash = [u8; HASH_BYTES];

/// The hash recorded for a bucket that was never written: its object must be absent.
pub const EMPTY_HASH: Hash = [0u8; HASH_BYTES];

/// One epoch's key. Zeroised on drop; never written to the storage it protects.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct EpochKey([u8; KEY_BYTES]);

impl EpochKey {
    pub fn generate() -> Result<Self, OramError> {
        let mut k = [0u8; KEY_BYTES];
        fill_random(&mut k)?;
        Ok(Self(k))
    }

    pub fn from_bytes(bytes: [u8; KEY_BYTES]) -> Self {
        Self(bytes)
    }

    pub(crate) fn as_bytes(&self) -> &[u8; KEY_BYTES] {
        &self.0
    }

    /// An independent key for one purpose: SHA-256 over a domain, this (uniformly random) key
    /// and the purpose. Destroying the epoch key destroys every key derived from it.
    pub(crate) fn derive(&self, purpose: &[u8]) -> EpochKey {
        EpochKey(sha256(&[b"smidl-oram/subkey/v1", &self.0, purpose]))
    }

    fn cipher(&self) -> XChaCha20Poly1305 {
        XChaCha20Poly1305::new(self.0.as_ref().into())
    }

    /// nonce ‖ ciphertext ‖ tag, authenticated with `aad`.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, OramError> {
        let mut nonce = [0u8; NONCE_BYTES];
        fill_random(&mut nonce)?;
        let ct = self
            .cipher()
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad,
                },
            )
            .map_err(|_| OramError::Crypto("encryption failed"))?;
        let mut out = Vec::with_capacity(NONCE_BYTES + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok(out)
    }

    /// Opens [`Self::seal`]'s output; `None` if it was not sealed with this key and `aad`.
    pub fn open(&self, aad: &[u8], sealed: &[u8]) -> Option<Vec<u8>> {
        if sealed.len() < NONCE_BYTES + TAG_BYTES {
            return None;
        }
        let (nonce, ct) = sealed.split_at(NONCE_BYTES);
        self.cipher()
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad })
            .ok()
    }
}

impl std::fmt::Debug for EpochKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("EpochKey(<secret>)")
    }
}

pub fn sha256(parts: &[&[u8]]) -> Hash {
    let mut h = Sha256::new();
    for p in parts {
        h.update(p);
    }
    h.finalize().into()
}

pub fn fill_random(buf: &mut [u8]) -> Result<(), OramError> {
    getrandom::getrandom(buf).map_err(|_| OramError::Crypto("the OS random generator failed"))
}

/// A uniform leaf in [0, 2^height): a power of two, so masking a uniform u64 is exact.
pub fn random_leaf(height: u32) -> Result<u64, OramError> {
    let mut b = [0u8; 8];
    fill_random(&mut b)?;
    let v = u64::from_le_bytes(b);
    Ok(if height == 0 {
        0
    } else {
        v & ((1u64 << height) - 1)
    })
}

pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
