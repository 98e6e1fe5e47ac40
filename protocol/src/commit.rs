//! Salted (hiding) commitments of a model's weights and training rows, as registered on chain.
//!
//! A bare hash of the weights or of the training CSV lets anyone who knows every row but one
//! test membership: retrain with and without the row and compare hashes. A 256-bit secret
//! salt, chosen by the owner at registration and revealed only to an auditor, makes the
//! commitment hiding; with the salt the auditor recomputes it (`smidl audit`).

use crate::chain::blake2_256;

/// A commitment's secret salt.
pub type Salt = [u8; 32];

/// The secret parts of a model's two commitments: what an owner hands an auditor, together
/// with the server model and the CSV.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Opening {
    /// Hex of the weights salt.
    pub weights_salt: String,
    /// Hex of the dataset salt.
    pub dataset_salt: String,
    /// Training rows used (the first `rows` training rows of the CSV).
    pub rows: usize,
}

impl Opening {
    pub fn new(weights: &Salt, dataset: &Salt, rows: usize) -> Self {
        Self {
            weights_salt: hex::encode(weights),
            dataset_salt: hex::encode(dataset),
            rows,
        }
    }

    /// The two salts, checked.
    pub fn salts(&self) -> Result<(Salt, Salt), String> {
        Ok((
            parse_salt(&self.weights_salt)?,
            parse_salt(&self.dataset_salt)?,
        ))
    }
}

fn parse_salt(s: &str) -> Result<Salt, String> {
    let bytes = hex::decode(s.trim_start_matches("0x")).map_err(|e| format!("salt: {e}"))?;
    bytes
        .try_into()
        .map_err(|_| "a salt is 32 bytes (64 hex digits)".to_string())
}

/// A fresh salt from the operating system's CSPRNG.
pub fn fresh_salt() -> Result<Salt, getrandom::Error> {
    let mut s = [0u8; 32];
    getrandom::getrandom(&mut s)?;
    Ok(s)
}

/// Commitment of a server model: BLAKE2-256 over a domain tag, the salt and
/// `ServerModel::canonical_bytes()`.
pub fn weights(salt: &Salt, server_model: &[u8]) -> [u8; 32] {
    let mut m = Vec::with_capacity(48 + server_model.len());
    m.extend_from_slice(b"smidl/weights/v2");
    m.extend_from_slice(salt);
    m.extend_from_slice(server_model);
    blake2_256(&m)
}

/// Commitment of the training rows: BLAKE2-256 over a domain tag, the salt, the CSV's hash
/// and the indices of the training rows used.
pub fn dataset(salt: &Salt, csv: &[u8], rows: impl IntoIterator<Item = usize>) -> [u8; 32] {
    let mut m = Vec::with_capacity(96);
    m.extend_from_slice(b"smidl/dataset/v2");
    m.extend_from_slice(salt);
    m.extend_from_slice(&blake2_256(csv));
    for i in rows {
        m.extend_from_slice(&(i as u32).to_le_bytes());
    }
    blake2_256(&m)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The membership attack on a bare hash: knowing every row but one, the attacker tries
    /// both candidate datasets and compares with the published commitment.
    fn membership_guess(published: [u8; 32], with: &[u8], without: &[u8]) -> Option<bool> {
        let bare = |csv: &[u8]| dataset(&[0u8; 32], csv, 0..2);
        if published == bare(with) {
            Some(true)
        } else if published == bare(without) {
            Some(false)
        } else {
            None
        }
    }

    #[test]
    fn salted_commitments_defeat_the_membership_test() {
        let with = b"a,1\ntarget,0\n".as_slice();
        let without = b"a,1\nother,0\n".as_slice();
        // Unprotected path (a known, all-zero salt is a bare hash): membership revealed.
        let bare = dataset(&[0u8; 32], with, 0..2);
        assert_eq!(membership_guess(bare, with, without), Some(true));
        // Salted: neither candidate matches, so the attacker learns nothing.
        let salt = fresh_salt().unwrap();
        let hidden = dataset(&salt, with, 0..2);
        assert_eq!(membership_guess(hidden, with, without), None);
        // The auditor with the salt recomputes it.
        assert_eq!(dataset(&salt, with, 0..2), hidden);
    }

    #[test]
    fn openings_round_trip_and_bind_the_salt() {
        let (w, d) = (fresh_salt().unwrap(), fresh_salt().unwrap());
        assert_ne!(w, d);
        let o = Opening::new(&w, &d, 5);
        assert_eq!(o.salts().unwrap(), (w, d));
        assert_ne!(weights(&w, b"model"), weights(&d, b"model"));
        let bad = Opening {
            weights_salt: "00".into(),
            ..o
        };
        assert!(bad.salts().is_err());
    }
}
