//! Sealed contributions: a clinic encrypts its batch to the aggregator's X25519 public key, so
//! the records are readable by the aggregator alone (the provider, the storage or the channel
//! in between see ciphertext and its length).
//!
//! Construction (an ECIES / HPKE-base-mode style sealed box): a fresh ephemeral X25519 key per
//! batch; key = HKDF-SHA256(ikm = X25519(eph, recipient), salt = eph_pub ‖ recipient_pub,
//! info = "smidl/contribution/v1"); ChaCha20-Poly1305 with a zero nonce (the key is never
//! reused) over the CSV, with the header as associated data. The header binds the batch to
//! the model and to the contributing chain account: a batch moved to another model or claimed
//! by another account fails to open. A non-contributory shared secret (a low-order public key)
//! is refused.
//!
//! File: `SMIDLSC1` ‖ model id (u32 LE) ‖ contributor account (32 bytes) ‖ eph_pub (32) ‖
//! ciphertext. The chain records [`commitment`] of the whole file: hiding (the ephemeral key
//! randomises it), so it lets nobody test a guess of the records.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{ChaCha20Poly1305, Key, Nonce};
use hkdf::Hkdf;
use sha2::Sha256;
use x25519_dalek::{PublicKey, StaticSecret};
use zeroize::Zeroizing;

use crate::release::blake2_256;
use crate::{AnonError, Result};

const MAGIC: &[u8; 8] = b"SMIDLSC1";
const INFO: &[u8] = b"smidl/contribution/v1";
const HEADER: usize = 8 + 4 + 32 + 32;
/// Largest sealed batch accepted (checked before decrypting).
pub const MAX_SEALED_BYTES: usize = 64 << 20;

/// The aggregator's long-term X25519 secret (zeroised on drop).
pub struct SealingKey(StaticSecret);

impl SealingKey {
    /// A fresh key from the OS CSPRNG.
    pub fn generate() -> Result<Self> {
        let mut b = Zeroizing::new([0u8; 32]);
        crate::os_random(b.as_mut())?;
        Ok(Self(StaticSecret::from(*b)))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(StaticSecret::from(bytes))
    }

    /// The secret's bytes, for a 0600 key file (never log them).
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    pub fn public(&self) -> [u8; 32] {
        PublicKey::from(&self.0).to_bytes()
    }
}

/// Who a sealed batch is for and from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Binding {
    pub model_id: u32,
    /// The contributing chain account (its 32-byte public key).
    pub contributor: [u8; 32],
}

/// Seal `records` (the CSV bytes) to `recipient` (the aggregator's public key).
pub fn seal(recipient: &[u8; 32], binding: Binding, records: &[u8]) -> Result<Vec<u8>> {
    if records.len() + HEADER + 16 > MAX_SEALED_BYTES {
        return Err(AnonError::TooLarge(records.len(), MAX_SEALED_BYTES));
    }
    let eph = SealingKey::generate()?;
    let eph_pub = eph.public();
    let recipient_key = PublicKey::from(*recipient);
    let shared = eph.0.diffie_hellman(&recipient_key);
    if !shared.was_contributory() {
        return Err(AnonError::Seal(
            "the recipient key is a low-order point, not an aggregator's key".into(),
        ));
    }
    let mut out = header(binding, &eph_pub);
    let cipher = cipher(shared.as_bytes(), &eph_pub, recipient)?;
    let ct = cipher
        .encrypt(
            Nonce::from_slice(&[0u8; 12]),
            Payload {
                msg: records,
                aad: &out,
            },
        )
        .map_err(|_| AnonError::Seal("encryption failed".into()))?;
    out.extend_from_slice(&ct);
    Ok(out)
}

/// Open a sealed batch with the aggregator's key; `expected` is what the chain records for
/// the contribution (model and contributor). Fails, revealing nothing, on any mismatch.
pub fn open(key: &SealingKey, expected: Binding, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>> {
    if sealed.len() > MAX_SEALED_BYTES {
        return Err(AnonError::TooLarge(sealed.len(), MAX_SEALED_BYTES));
    }
    if sealed.len() < HEADER + 16 || &sealed[..8] != MAGIC {
        return Err(AnonError::Seal("not a sealed smidl contribution".into()));
    }
    let found = binding_of(sealed)?;
    if found != expected {
        return Err(AnonError::Seal(format!(
            "sealed for model {} by 0x{}, expected model {} by 0x{}",
            found.model_id,
            hex::encode(found.contributor),
            expected.model_id,
            hex::encode(expected.contributor)
        )));
    }
    let mut eph_pub = [0u8; 32];
    eph_pub.copy_from_slice(&sealed[44..76]);
    let shared = key.0.diffie_hellman(&PublicKey::from(eph_pub));
    if !shared.was_contributory() {
        return Err(AnonError::Seal("low-order ephemeral key".into()));
    }
    let cipher = cipher(shared.as_bytes(), &eph_pub, &key.public())?;
    let plain = cipher
        .decrypt(
            Nonce::from_slice(&[0u8; 12]),
            Payload {
                msg: &sealed[HEADER..],
                aad: &sealed[..HEADER],
            },
        )
        .map_err(|_| {
            AnonError::Seal("authentication failed: wrong key, or the batch was altered".into())
        })?;
    Ok(Zeroizing::new(plain))
}

/// The binding a sealed batch claims (readable without the key; authenticated by `open`).
pub fn binding_of(sealed: &[u8]) -> Result<Binding> {
    if sealed.len() < HEADER || &sealed[..8] != MAGIC {
        return Err(AnonError::Seal("not a sealed smidl contribution".into()));
    }
    let mut id = [0u8; 4];
    id.copy_from_slice(&sealed[8..12]);
    let mut contributor = [0u8; 32];
    contributor.copy_from_slice(&sealed[12..44]);
    Ok(Binding {
        model_id: u32::from_le_bytes(id),
        contributor,
    })
}

/// The on-chain commitment of a sealed batch: BLAKE2-256(tag ‖ file).
pub fn commitment(sealed: &[u8]) -> [u8; 32] {
    let mut m = Vec::with_capacity(INFO.len() + sealed.len());
    m.extend_from_slice(INFO);
    m.extend_from_slice(sealed);
    blake2_256(&m)
}

fn header(b: Binding, eph_pub: &[u8; 32]) -> Vec<u8> {
    let mut h = Vec::with_capacity(HEADER);
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&b.model_id.to_le_bytes());
    h.extend_from_slice(&b.contributor);
    h.extend_from_slice(eph_pub);
    h
}

fn cipher(shared: &[u8; 32], eph_pub: &[u8; 32], recipient: &[u8; 32]) -> Result<ChaCha20Poly1305> {
    let mut salt = [0u8; 64];
    salt[..32].copy_from_slice(eph_pub);
    salt[32..].copy_from_slice(recipient);
    let hk = Hkdf::<Sha256>::new(Some(&salt), shared);
    let mut okm = Zeroizing::new([0u8; 32]);
    hk.expand(INFO, okm.as_mut())
        .map_err(|_| AnonError::Seal("key derivation failed".into()))?;
    Ok(ChaCha20Poly1305::new(Key::from_slice(okm.as_ref())))
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECORDS: &[u8] = b"age,mass,diabetes\n50,33.6,1\n";

    fn binding() -> Binding {
        Binding {
            model_id: 3,
            contributor: [7u8; 32],
        }
    }

    #[test]
    fn only_the_aggregator_opens_a_batch() {
        let agg = SealingKey::generate().unwrap();
        let sealed = seal(&agg.public(), binding(), RECORDS).unwrap();
        assert_eq!(open(&agg, binding(), &sealed).unwrap().as_slice(), RECORDS);
        // The records are not in the file in the clear.
        assert!(!sealed.windows(8).any(|w| w == b"50,33.6,"));
        // Anyone else's key (the provider's, say) fails.
        let provider = SealingKey::generate().unwrap();
        assert!(open(&provider, binding(), &sealed).is_err());
        // Two seals of the same records differ (fresh ephemeral key), and so do their
        // commitments: the chain's record lets nobody test a guess.
        let again = seal(&agg.public(), binding(), RECORDS).unwrap();
        assert_ne!(commitment(&sealed), commitment(&again));
    }

    #[test]
    fn a_batch_cannot_be_moved_altered_or_reclaimed() {
        let agg = SealingKey::generate().unwrap();
        let sealed = seal(&agg.public(), binding(), RECORDS).unwrap();
        // Claimed for another model or by another account: refused (checked, then bound by
        // the AEAD's associated data).
        let other = Binding {
            model_id: 4,
            ..binding()
        };
        assert!(open(&agg, other, &sealed).is_err());
        let mut moved = sealed.clone();
        moved[8] = 4;
        assert!(open(&agg, other, &moved).is_err());
        let mut flipped = sealed.clone();
        let last = flipped.len() - 1;
        flipped[last] ^= 1;
        assert!(open(&agg, binding(), &flipped).is_err());
        assert!(open(&agg, binding(), &sealed[..HEADER]).is_err());
        // A low-order recipient key is refused before anything is encrypted.
        assert!(seal(&[0u8; 32], binding(), RECORDS).is_err());
    }
}
