//! The server model at rest: XChaCha20-Poly1305 (RustCrypto) under a 32-byte key read from a
//! file, with the model's BLAKE2b-256 commitment bound in as associated data.
//!
//! Sealed layout (inside a `SealedModel` envelope): nonce (24) | commitment (32) | ciphertext.

use std::path::Path;

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::{Zeroize, Zeroizing};

use crate::error::{FheError, ObjectKind, Result};
use crate::serial;
use crate::server::ServerModel;

const AAD_PREFIX: &[u8] = b"smidl-fhe/sealed-model/v1";
const NONCE_LEN: usize = 24;

/// 256-bit model encryption key. No `Debug`; zeroed on drop.
pub struct ModelKey([u8; 32]);

impl Drop for ModelKey {
    fn drop(&mut self) {
        self.0.zeroize();
    }
}

impl ModelKey {
    pub fn generate() -> Result<Self> {
        let mut k = [0u8; 32];
        getrandom::getrandom(&mut k).map_err(|e| FheError::KeyFile(e.to_string()))?;
        Ok(Self(k))
    }

    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// Read a key file: 32 raw bytes, or 64 hex digits (surrounding whitespace allowed).
    pub fn from_file(path: &Path) -> Result<Self> {
        let meta = std::fs::metadata(path)?;
        if meta.len() > 256 {
            return Err(FheError::KeyFile("file too large for a key".into()));
        }
        let raw = Zeroizing::new(std::fs::read(path)?);
        if raw.len() == 32 {
            let mut k = [0u8; 32];
            k.copy_from_slice(&raw);
            return Ok(Self(k));
        }
        let text = std::str::from_utf8(&raw)
            .map_err(|_| FheError::KeyFile("neither 32 raw bytes nor hex".into()))?
            .trim();
        if text.len() != 64 {
            return Err(FheError::KeyFile(
                "expected 32 bytes or 64 hex digits".into(),
            ));
        }
        let mut k = [0u8; 32];
        for (i, b) in k.iter_mut().enumerate() {
            *b = u8::from_str_radix(&text[2 * i..2 * i + 2], 16)
                .map_err(|_| FheError::KeyFile("bad hex digit".into()))?;
        }
        Ok(Self(k))
    }

    /// Write the key as hex, readable by the owner only.
    pub fn write_to_file(&self, path: &Path) -> Result<()> {
        use std::io::Write;
        let hex: Zeroizing<String> =
            Zeroizing::new(self.0.iter().map(|b| format!("{b:02x}")).collect());
        let mut opts = std::fs::OpenOptions::new();
        opts.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            opts.mode(0o600);
        }
        let mut f = opts.open(path)?;
        f.write_all(hex.as_bytes())?;
        f.write_all(b"\n")?;
        Ok(())
    }
}

/// Encrypt a server model for storage.
pub fn seal_model(model: &ServerModel, key: &ModelKey) -> Result<Vec<u8>> {
    let commitment = model.commitment();
    let plain = Zeroizing::new(model.canonical_bytes());
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|e| FheError::KeyFile(e.to_string()))?;
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let aad = [AAD_PREFIX, &commitment].concat();
    let ct = cipher
        .encrypt(
            XNonce::from_slice(&nonce),
            Payload {
                msg: &plain,
                aad: &aad,
            },
        )
        .map_err(|_| FheError::SealAuthentication)?;
    let mut payload = Vec::with_capacity(NONCE_LEN + 32 + ct.len());
    payload.extend_from_slice(&nonce);
    payload.extend_from_slice(&commitment);
    payload.extend_from_slice(&ct);
    Ok(serial::wrap(ObjectKind::SealedModel, &payload))
}

/// Decrypt and load a sealed server model. Fails with [`FheError::SealAuthentication`] for a
/// wrong key or any modification, and checks the decrypted model against its commitment.
pub fn open_model(bytes: &[u8], key: &ModelKey) -> Result<ServerModel> {
    let payload = serial::unwrap(ObjectKind::SealedModel, bytes)?;
    if payload.len() < NONCE_LEN + 32 + 16 {
        return Err(FheError::Truncated {
            kind: ObjectKind::SealedModel,
            needed: serial::HEADER_LEN + NONCE_LEN + 32 + 16,
            got: bytes.len(),
        });
    }
    let (nonce, rest) = payload.split_at(NONCE_LEN);
    let (commitment, ct) = rest.split_at(32);
    let cipher = XChaCha20Poly1305::new((&key.0).into());
    let aad = [AAD_PREFIX, commitment].concat();
    let plain = Zeroizing::new(
        cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map_err(|_| FheError::SealAuthentication)?,
    );
    let model = ServerModel::from_canonical_bytes(&plain)?;
    if model.commitment()[..] != commitment[..] {
        return Err(FheError::Corrupted {
            kind: ObjectKind::SealedModel,
            reason: "commitment mismatch".into(),
        });
    }
    Ok(model)
}

/// The commitment recorded in a sealed file's header (unauthenticated until opened).
pub fn sealed_commitment(bytes: &[u8]) -> Result<[u8; 32]> {
    let payload = serial::unwrap(ObjectKind::SealedModel, bytes)?;
    let c = payload
        .get(NONCE_LEN..NONCE_LEN + 32)
        .ok_or(FheError::Truncated {
            kind: ObjectKind::SealedModel,
            needed: serial::HEADER_LEN + NONCE_LEN + 32,
            got: bytes.len(),
        })?;
    let mut out = [0u8; 32];
    out.copy_from_slice(c);
    Ok(out)
}
