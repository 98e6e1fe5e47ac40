//! A bucket: Z slots (real blocks or dummies) and the hashes of its two children's objects.
//!
//! Object format (every bucket object of an ORAM has the same size):
//! `version u64 ‖ h_left ‖ h_right ‖ nonce ‖ XChaCha20-Poly1305(Z slots) ‖ tag`, where the AAD is
//! `"smidl-oram/bucket/v1" ‖ epoch ‖ node ‖ version ‖ h_left ‖ h_right`. The child hashes are in
//! the clear so that anyone holding the objects can check them against a published root without
//! the key (the Merkle tree *is* the ORAM tree); the AEAD binds the contents to their place
//! (node), their write (version) and their children.

use crate::crypto::{sha256, EpochKey, Hash, HASH_BYTES, NONCE_BYTES, TAG_BYTES};
use crate::error::OramError;
use crate::tree::{bucket_plain_bytes, Geometry, ADDR_BYTES, EMPTY_SLOT, Z};

const DOMAIN: &[u8] = b"smidl-oram/bucket/v1";
const HEADER_BYTES: usize = 8 + 2 * HASH_BYTES;

pub type EpochId = [u8; 16];

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bucket {
    /// Real blocks: (address, data), at most Z.
    pub blocks: Vec<(u64, Vec<u8>)>,
    /// Hashes of the children's objects ([`crate::crypto::EMPTY_HASH`]: never written).
    pub children: [Hash; 2],
}

pub fn object_bytes(block_bytes: usize) -> usize {
    HEADER_BYTES + NONCE_BYTES + bucket_plain_bytes(block_bytes) + TAG_BYTES
}

fn aad(epoch: &EpochId, node: u64, version: u64, children: &[Hash; 2]) -> Vec<u8> {
    let mut a = Vec::with_capacity(DOMAIN.len() + 16 + 16 + 2 * HASH_BYTES);
    a.extend_from_slice(DOMAIN);
    a.extend_from_slice(epoch);
    a.extend_from_slice(&node.to_le_bytes());
    a.extend_from_slice(&version.to_le_bytes());
    a.extend_from_slice(&children[0]);
    a.extend_from_slice(&children[1]);
    a
}

impl Bucket {
    /// Z slots, dummies as `EMPTY_SLOT` with zero data, so every plaintext has the same size.
    pub fn encode_slots(&self, g: &Geometry) -> Vec<u8> {
        let mut out = Vec::with_capacity(bucket_plain_bytes(g.block_bytes));
        for i in 0..Z {
            match self.blocks.get(i) {
                Some((addr, data)) => {
                    out.extend_from_slice(&addr.to_le_bytes());
                    out.extend_from_slice(data);
                }
                None => {
                    out.extend_from_slice(&EMPTY_SLOT.to_le_bytes());
                    out.resize(out.len() + g.block_bytes, 0);
                }
            }
        }
        out
    }

    pub fn decode_slots(
        bytes: &[u8],
        g: &Geometry,
        object: &str,
    ) -> Result<Vec<(u64, Vec<u8>)>, OramError> {
        if bytes.len() != bucket_plain_bytes(g.block_bytes) {
            return Err(OramError::integrity(object, "wrong bucket size"));
        }
        let mut blocks = Vec::new();
        for slot in bytes.chunks_exact(ADDR_BYTES + g.block_bytes) {
            let addr = u64::from_le_bytes(slot[..ADDR_BYTES].try_into().expect("8 bytes"));
            if addr == EMPTY_SLOT {
                continue;
            }
            if addr >= g.capacity {
                return Err(OramError::integrity(object, "block address out of range"));
            }
            blocks.push((addr, slot[ADDR_BYTES..].to_vec()));
        }
        Ok(blocks)
    }

    pub fn seal(
        &self,
        key: &EpochKey,
        epoch: &EpochId,
        node: u64,
        version: u64,
        g: &Geometry,
    ) -> Result<Vec<u8>, OramError> {
        debug_assert!(self.blocks.len() <= Z);
        let sealed = key.seal(
            &aad(epoch, node, version, &self.children),
            &self.encode_slots(g),
        )?;
        let mut obj = Vec::with_capacity(object_bytes(g.block_bytes));
        obj.extend_from_slice(&version.to_le_bytes());
        obj.extend_from_slice(&self.children[0]);
        obj.extend_from_slice(&self.children[1]);
        obj.extend_from_slice(&sealed);
        Ok(obj)
    }

    /// Opens an object already checked against its expected hash (the AEAD is the second
    /// line: it also rejects an object moved to another node or epoch).
    pub fn open(
        obj: &[u8],
        key: &EpochKey,
        epoch: &EpochId,
        node: u64,
        g: &Geometry,
    ) -> Result<(Self, u64), OramError> {
        let name = format!("bucket {node}");
        if obj.len() != object_bytes(g.block_bytes) {
            return Err(OramError::integrity(name, "wrong object size"));
        }
        let version = u64::from_le_bytes(obj[..8].try_into().expect("8 bytes"));
        let children = [
            obj[8..8 + HASH_BYTES].try_into().expect("32 bytes"),
            obj[8 + HASH_BYTES..HEADER_BYTES]
                .try_into()
                .expect("32 bytes"),
        ];
        let plain = key
            .open(&aad(epoch, node, version, &children), &obj[HEADER_BYTES..])
            .ok_or_else(|| OramError::integrity(name.clone(), "authentication failed"))?;
        let blocks = Self::decode_slots(&plain, g, &name)?;
        Ok((Self { blocks, children }, version))
    }

    /// The child hashes of an object, read without the key (for an auditor's check).
    pub fn public_children(obj: &[u8]) -> Option<[Hash; 2]> {
        if obj.len() < HEADER_BYTES {
            return None;
        }
        Some([
            obj[8..8 + HASH_BYTES].try_into().ok()?,
            obj[8 + HASH_BYTES..HEADER_BYTES].try_into().ok()?,
        ])
    }
}

pub fn object_hash(obj: &[u8]) -> Hash {
    sha256(&[obj])
}
