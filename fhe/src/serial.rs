//! Versioned envelopes with size limits for everything that crosses a trust boundary.
//!
//! Layout: `b"SMFH"` | format version (u16 LE) | object tag (u8) | reserved 0 (u8) |
//! payload length (u64 LE) | payload. The payload is bincode (fixed-width little-endian
//! integers, a canonical encoding for our structs), decoded with a byte limit so a hostile
//! length prefix cannot make us allocate more than the limit.

use bincode::Options;
use serde::{de::DeserializeOwned, Serialize};

use crate::error::{FheError, ObjectKind, Result};

pub const MAGIC: [u8; 4] = *b"SMFH";
pub const FORMAT_VERSION: u16 = 2;
pub const HEADER_LEN: usize = 16;

/// Size limits (payload bytes) per object kind.
pub mod limits {
    pub const CLIENT_SPEC: usize = 4 << 20;
    pub const SERVER_MODEL: usize = 64 << 20;
    pub const CLIENT_KEY: usize = 1 << 20;
    /// The seeded bootstrap key of the N = 4096 set is 61 MB.
    pub const EVALUATION_KEY: usize = 80 << 20;
    pub const ENCRYPTED_INPUT: usize = 64 << 10;
    pub const ENCRYPTED_OUTPUT: usize = 4 << 20;
    pub const SEALED_MODEL: usize = SERVER_MODEL + 1024;
    /// A linear model's input-proof CRS (about 3 MB for 30 features).
    pub const INPUT_CRS: usize = 16 << 20;
}

fn tag(kind: ObjectKind) -> u8 {
    match kind {
        ObjectKind::ClientSpec => 1,
        ObjectKind::ServerModel => 2,
        ObjectKind::ClientKey => 3,
        ObjectKind::EvaluationKey => 4,
        ObjectKind::EncryptedInput => 5,
        ObjectKind::EncryptedOutput => 6,
        ObjectKind::SealedModel => 7,
        ObjectKind::InputCrs => 8,
    }
}

fn limit(kind: ObjectKind) -> usize {
    match kind {
        ObjectKind::ClientSpec => limits::CLIENT_SPEC,
        ObjectKind::ServerModel => limits::SERVER_MODEL,
        ObjectKind::ClientKey => limits::CLIENT_KEY,
        ObjectKind::EvaluationKey => limits::EVALUATION_KEY,
        ObjectKind::EncryptedInput => limits::ENCRYPTED_INPUT,
        ObjectKind::EncryptedOutput => limits::ENCRYPTED_OUTPUT,
        ObjectKind::SealedModel => limits::SEALED_MODEL,
        ObjectKind::InputCrs => limits::INPUT_CRS,
    }
}

fn options(max: usize) -> impl Options {
    bincode::DefaultOptions::new()
        .with_fixint_encoding()
        .with_little_endian()
        .with_limit(max as u64)
        .reject_trailing_bytes()
}

/// Wrap an already encoded payload.
pub fn wrap(kind: ObjectKind, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(HEADER_LEN + payload.len());
    out.extend_from_slice(&MAGIC);
    out.extend_from_slice(&FORMAT_VERSION.to_le_bytes());
    out.push(tag(kind));
    out.push(0);
    out.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// Check the header and return the payload; every failure is typed.
pub fn unwrap(kind: ObjectKind, bytes: &[u8]) -> Result<&[u8]> {
    let max = limit(kind);
    if bytes.len() > max + HEADER_LEN {
        return Err(FheError::Oversized {
            kind,
            len: bytes.len(),
            limit: max + HEADER_LEN,
        });
    }
    if bytes.len() < HEADER_LEN {
        return Err(FheError::Truncated {
            kind,
            needed: HEADER_LEN,
            got: bytes.len(),
        });
    }
    if bytes[..4] != MAGIC {
        return Err(FheError::BadMagic { kind });
    }
    let version = u16::from_le_bytes([bytes[4], bytes[5]]);
    if version != FORMAT_VERSION {
        return Err(FheError::UnsupportedVersion {
            kind,
            found: version,
            expected: FORMAT_VERSION,
        });
    }
    if bytes[6] != tag(kind) {
        return Err(FheError::WrongKind {
            expected: kind,
            found: bytes[6],
        });
    }
    if bytes[7] != 0 {
        return Err(FheError::Corrupted {
            kind,
            reason: "reserved byte".into(),
        });
    }
    let mut len8 = [0u8; 8];
    len8.copy_from_slice(&bytes[8..16]);
    let len = u64::from_le_bytes(len8);
    if len > max as u64 {
        return Err(FheError::Oversized {
            kind,
            len: usize::try_from(len).unwrap_or(usize::MAX),
            limit: max,
        });
    }
    let len = len as usize;
    let body = &bytes[HEADER_LEN..];
    if body.len() < len {
        return Err(FheError::Truncated {
            kind,
            needed: HEADER_LEN + len,
            got: bytes.len(),
        });
    }
    if body.len() > len {
        return Err(FheError::TrailingBytes { kind });
    }
    Ok(body)
}

pub fn encode<T: Serialize>(kind: ObjectKind, value: &T) -> Vec<u8> {
    // Serialising our own plain structs into a Vec cannot fail; the limit is the decode side's.
    let payload = options(usize::MAX)
        .serialize(value)
        .expect("bincode serialisation of an in-memory value");
    wrap(kind, &payload)
}

pub fn decode<T: DeserializeOwned>(kind: ObjectKind, bytes: &[u8]) -> Result<T> {
    let payload = unwrap(kind, bytes)?;
    options(limit(kind))
        .deserialize(payload)
        .map_err(|e| FheError::Corrupted {
            kind,
            reason: e.to_string(),
        })
}

/// Pack the top `bits` bits of each value (rounded), little-endian, in ceil(bits/8) bytes each.
pub fn pack_top_bits(values: &[u64], bits: u32) -> Vec<u8> {
    let nbytes = bits.div_ceil(8) as usize;
    let shift = 64 - bits;
    let mut out = Vec::with_capacity(values.len() * nbytes);
    for &v in values {
        // Round to nearest multiple of 2^shift (wrapping at 2^64 is the torus' own wrap).
        let r = if shift == 0 {
            v
        } else {
            v.wrapping_add(1u64 << (shift - 1)) >> shift
        };
        out.extend_from_slice(&r.to_le_bytes()[..nbytes]);
    }
    out
}

pub fn unpack_top_bits(bytes: &[u8], bits: u32) -> Vec<u64> {
    let nbytes = bits.div_ceil(8) as usize;
    let shift = 64 - bits;
    let mask = if bits == 64 {
        u64::MAX
    } else {
        (1u64 << bits) - 1
    };
    bytes
        .chunks_exact(nbytes)
        .map(|c| {
            let mut b = [0u8; 8];
            b[..nbytes].copy_from_slice(c);
            (u64::from_le_bytes(b) & mask) << shift
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn envelope_errors_are_typed() {
        let good = encode(ObjectKind::ClientSpec, &vec![1u32, 2, 3]);
        assert_eq!(
            decode::<Vec<u32>>(ObjectKind::ClientSpec, &good).unwrap(),
            vec![1, 2, 3]
        );
        assert!(matches!(
            decode::<Vec<u32>>(ObjectKind::ClientSpec, &good[..10]),
            Err(FheError::Truncated { .. })
        ));
        assert!(matches!(
            decode::<Vec<u32>>(ObjectKind::ClientSpec, &good[..good.len() - 1]),
            Err(FheError::Truncated { .. })
        ));
        let mut extra = good.clone();
        extra.push(0);
        assert!(matches!(
            decode::<Vec<u32>>(ObjectKind::ClientSpec, &extra),
            Err(FheError::TrailingBytes { .. })
        ));
        assert!(matches!(
            decode::<Vec<u32>>(ObjectKind::EncryptedInput, &good),
            Err(FheError::WrongKind { .. })
        ));
        let mut bad = good.clone();
        bad[0] = b'X';
        assert!(matches!(
            decode::<Vec<u32>>(ObjectKind::ClientSpec, &bad),
            Err(FheError::BadMagic { .. })
        ));
        let mut ver = good.clone();
        ver[4] = 9;
        assert!(matches!(
            decode::<Vec<u32>>(ObjectKind::ClientSpec, &ver),
            Err(FheError::UnsupportedVersion { .. })
        ));
        // A length prefix inside the payload that claims 2^60 elements.
        let mut hostile = wrap(ObjectKind::ClientSpec, &(1u64 << 60).to_le_bytes());
        hostile.truncate(HEADER_LEN + 8);
        assert!(matches!(
            decode::<Vec<u64>>(ObjectKind::ClientSpec, &hostile),
            Err(FheError::Corrupted { .. })
        ));
        // Header claiming more than the limit.
        let mut big = good.clone();
        big[8..16].copy_from_slice(&(u64::MAX).to_le_bytes());
        assert!(matches!(
            decode::<Vec<u32>>(ObjectKind::ClientSpec, &big),
            Err(FheError::Oversized { .. })
        ));
        let huge = vec![0u8; limits::ENCRYPTED_INPUT + HEADER_LEN + 1];
        assert!(matches!(
            unwrap(ObjectKind::EncryptedInput, &huge),
            Err(FheError::Oversized { .. })
        ));
    }

    #[test]
    fn top_bit_packing_rounds() {
        let v = [0u64, u64::MAX, 1u64 << 63, (3u64 << 40) + (1 << 23)];
        let p = pack_top_bits(&v, 40);
        assert_eq!(p.len(), 4 * 5);
        let u = unpack_top_bits(&p, 40);
        assert_eq!(u[0], 0);
        assert_eq!(u[1], 0); // rounds up past 2^64: the torus wraps
        assert_eq!(u[2], 1u64 << 63);
        assert_eq!(u[3], (3u64 << 40) + (1 << 24));
    }
}
