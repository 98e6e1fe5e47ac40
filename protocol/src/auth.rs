//! Request authentication for the worker's HTTP API.
//!
//! Every client request carries the chain account it acts for and an sr25519 signature by
//! that account over a domain tag, the method, the path, a timestamp, a random nonce and the
//! BLAKE2-256 of the body. The worker accepts a timestamp within [`MAX_SKEW_MS`] of its own
//! clock and remembers each (account, nonce) until the timestamp leaves that window, so a
//! captured request cannot be replayed, even across a worker restart (nonces are persisted).
//!
//! The body's hash also travels in its own header, [`HEADER_BODY_HASH`], so the worker checks
//! the signature, the replay window and the account's quota from the headers alone, before
//! it reads a byte of the body; the body it then reads must hash to the signed value.

use subxt_signer::sr25519::{self, Keypair, PublicKey, Signature};

pub const HEADER_ACCOUNT: &str = "x-smidl-account";
pub const HEADER_TIMESTAMP: &str = "x-smidl-timestamp";
pub const HEADER_NONCE: &str = "x-smidl-nonce";
pub const HEADER_SIGNATURE: &str = "x-smidl-signature";
pub const HEADER_BODY_HASH: &str = "x-smidl-body-hash";

/// How far a request's timestamp may be from the worker's clock.
pub const MAX_SKEW_MS: u64 = 120_000;

const DOMAIN: &[u8] = b"smidl-worker-api/v1";

/// The four authentication headers of one request, as strings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedHeaders {
    pub account: String,
    pub timestamp: String,
    pub nonce: String,
    pub signature: String,
    /// Hex BLAKE2-256 of the body (signed).
    pub body_hash: String,
}

/// A verified request: who sent it and the nonce to record against replays.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Authenticated {
    pub account: [u8; 32],
    pub nonce: [u8; 16],
    pub timestamp_ms: u64,
    /// The signed BLAKE2-256 of the body: the body read afterwards must match
    /// ([`Authenticated::check_body`]).
    pub body_hash: [u8; 32],
}

impl Authenticated {
    /// The body read after authentication is the one that was signed.
    pub fn check_body(&self, body: &[u8]) -> Result<(), AuthError> {
        if crate::chain::blake2_256(body) == self.body_hash {
            Ok(())
        } else {
            Err(AuthError::BodyMismatch)
        }
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    #[error("missing header {0}")]
    Missing(&'static str),
    #[error("malformed header {0}")]
    Malformed(&'static str),
    #[error("timestamp is {skew_ms} ms away from the worker's clock (limit {MAX_SKEW_MS} ms)")]
    Stale { skew_ms: u64 },
    #[error("the signature does not verify for this account and request")]
    BadSignature,
    #[error("this request was already received (replay)")]
    Replayed,
    #[error("the body does not hash to the signed {HEADER_BODY_HASH}")]
    BodyMismatch,
}

fn message(
    method: &str,
    path: &str,
    timestamp_ms: u64,
    nonce: &[u8; 16],
    body_hash: &[u8; 32],
) -> Vec<u8> {
    let mut m = Vec::with_capacity(DOMAIN.len() + method.len() + path.len() + 96);
    m.extend_from_slice(DOMAIN);
    m.push(b'\n');
    m.extend_from_slice(method.to_ascii_uppercase().as_bytes());
    m.push(b'\n');
    m.extend_from_slice(path.as_bytes());
    m.push(b'\n');
    m.extend_from_slice(timestamp_ms.to_string().as_bytes());
    m.push(b'\n');
    m.extend_from_slice(hex::encode(nonce).as_bytes());
    m.push(b'\n');
    m.extend_from_slice(hex::encode(body_hash).as_bytes());
    m
}

pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Signs a request (client side).
pub fn sign(key: &Keypair, method: &str, path: &str, body: &[u8]) -> SignedHeaders {
    let mut nonce = [0u8; 16];
    // A failing OS RNG would make nonces predictable; there is no safe fallback.
    getrandom::getrandom(&mut nonce).expect("the OS random number generator is available");
    sign_with(key, method, path, body, now_ms(), nonce)
}

/// [`sign`] with an explicit timestamp and nonce (tests, replays).
pub fn sign_with(
    key: &Keypair,
    method: &str,
    path: &str,
    body: &[u8],
    timestamp_ms: u64,
    nonce: [u8; 16],
) -> SignedHeaders {
    let body_hash = crate::chain::blake2_256(body);
    let sig = key.sign(&message(method, path, timestamp_ms, &nonce, &body_hash));
    SignedHeaders {
        account: format!("0x{}", hex::encode(key.public_key().0)),
        timestamp: timestamp_ms.to_string(),
        nonce: hex::encode(nonce),
        signature: format!("0x{}", hex::encode(sig.0)),
        body_hash: hex::encode(body_hash),
    }
}

fn hex_array<const N: usize>(s: &str, header: &'static str) -> Result<[u8; N], AuthError> {
    let s = s.trim().trim_start_matches("0x");
    let v = hex::decode(s).map_err(|_| AuthError::Malformed(header))?;
    v.try_into().map_err(|_| AuthError::Malformed(header))
}

/// Verifies signature and freshness from the headers alone (server side, before the body is
/// read). The caller must still record the nonce (see `Store::record_nonce`), refuse the
/// request if it was seen, and check the body it reads ([`Authenticated::check_body`]).
pub fn verify(
    headers: &SignedHeaders,
    method: &str,
    path: &str,
    now_ms: u64,
) -> Result<Authenticated, AuthError> {
    let account: [u8; 32] = hex_array(&headers.account, HEADER_ACCOUNT)?;
    let timestamp_ms: u64 = headers
        .timestamp
        .trim()
        .parse()
        .map_err(|_| AuthError::Malformed(HEADER_TIMESTAMP))?;
    let nonce: [u8; 16] = hex_array(&headers.nonce, HEADER_NONCE)?;
    let signature: [u8; 64] = hex_array(&headers.signature, HEADER_SIGNATURE)?;
    let body_hash: [u8; 32] = hex_array(&headers.body_hash, HEADER_BODY_HASH)?;
    let skew_ms = now_ms.abs_diff(timestamp_ms);
    if skew_ms > MAX_SKEW_MS {
        return Err(AuthError::Stale { skew_ms });
    }
    let msg = message(method, path, timestamp_ms, &nonce, &body_hash);
    if !sr25519::verify(&Signature(signature), msg, &PublicKey(account)) {
        return Err(AuthError::BadSignature);
    }
    Ok(Authenticated {
        account,
        nonce,
        timestamp_ms,
        body_hash,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use subxt_signer::sr25519::dev;

    #[test]
    fn signed_request_verifies_and_binds_everything() {
        let bob = dev::bob();
        let now = now_ms();
        let h = sign_with(&bob, "put", "/v1/models/0/inputs/00", b"body", now, [7; 16]);
        let ok = verify(&h, "PUT", "/v1/models/0/inputs/00", now).unwrap();
        assert_eq!(ok.account, bob.public_key().0);
        assert_eq!(ok.nonce, [7; 16]);
        assert_eq!(ok.check_body(b"body"), Ok(()));
        // Any change to what was signed breaks the signature.
        for (m, p) in [
            ("POST", "/v1/models/0/inputs/00"),
            ("PUT", "/v1/models/1/inputs/00"),
        ] {
            assert_eq!(verify(&h, m, p, now), Err(AuthError::BadSignature));
        }
        // A body other than the signed one: refused once read, whether the hash header was
        // left alone (mismatch) or changed to match it (signature).
        assert_eq!(ok.check_body(b"bodY"), Err(AuthError::BodyMismatch));
        let mut swapped = h.clone();
        swapped.body_hash = hex::encode(crate::chain::blake2_256(b"bodY"));
        assert_eq!(
            verify(&swapped, "PUT", "/v1/models/0/inputs/00", now),
            Err(AuthError::BadSignature)
        );
        // Another account's claim with Bob's signature fails.
        let mut forged = h.clone();
        forged.account = format!("0x{}", hex::encode(dev::alice().public_key().0));
        assert_eq!(
            verify(&forged, "PUT", "/v1/models/0/inputs/00", now),
            Err(AuthError::BadSignature)
        );
    }

    #[test]
    fn stale_and_malformed_requests_are_refused() {
        let bob = dev::bob();
        let now = now_ms();
        let h = sign_with(&bob, "GET", "/x", b"", now - MAX_SKEW_MS - 1, [1; 16]);
        assert!(matches!(
            verify(&h, "GET", "/x", now),
            Err(AuthError::Stale { .. })
        ));
        let mut bad = sign_with(&bob, "GET", "/x", b"", now, [1; 16]);
        bad.nonce = "zz".into();
        assert_eq!(
            verify(&bad, "GET", "/x", now),
            Err(AuthError::Malformed(HEADER_NONCE))
        );
    }
}
