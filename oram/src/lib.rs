//! # smidl-oram
//!
//! Path ORAM over untrusted object storage, for data whose *access pattern* must stay private
//! as well as its contents: the storage host (a local disk, or any S3-compatible service
//! through the `object_store` crate) sees fixed-size sealed objects and, per access, one
//! uniformly random root-to-leaf path below the client's cached tree top, whatever was asked.
//!
//! - **Obliviousness**: Path ORAM (Stefanov et al., CCS 2013), Z = 5 blocks per bucket, a fresh
//!   uniform leaf per access, greedy eviction; the stash is bounded by R (see [`stash_bound`]),
//!   sized so that it overflows with probability ≤ 2^-40 over an epoch's K accesses.
//! - **Confidentiality**: every bucket re-sealed with XChaCha20-Poly1305 (random nonce) on every
//!   write-back, bound to its epoch, node, version and children.
//! - **Integrity and freshness**: the ORAM tree is a Merkle tree — each object carries its
//!   children's hashes, the client holds the root's (or the cached tree top), and every fetched
//!   object is checked against its parent before use. A modified, swapped or replayed bucket is an
//!   [`OramError::Integrity`], and nothing from it is served.
//! - **Crash safety**: each access is journaled (sealed, hash-chained) and anchored in a local
//!   file before any home bucket is written; reopening replays it ([`journal`]).
//! - **Erasure**: one key per epoch, in a key file apart from the storage; [`Oram::shred`]
//!   destroys the key before deleting the objects and returns the epoch's final root.
//!
//! Layers, each usable alone: [`Oram`] (fixed-size blocks by address), blobs sealed under the
//! epoch key for large values ([`Oram::put_blob`]), and [`Records`] (values of any size by
//! key, over one ORAM).
//!
//! No chain code: usable on its own, like `smidl-fhe`. See `docs/oram.md` for the threat model
//! and what the host still learns.

mod blobs;
mod bucket;
mod crypto;
mod error;
pub mod journal;
mod lifecycle;
mod local;
mod oram;
mod records;
mod storage;
mod tree;

pub use crate::blobs::{BlobRef, MAX_BLOB_BYTES};
pub use crate::bucket::{object_bytes, Bucket, EpochId};
pub use crate::crypto::{to_hex, EpochKey, Hash, EMPTY_HASH};
pub use crate::error::OramError;
pub use crate::lifecycle::{key_file, opens_with, read_key_file, verify_tree, ShredReport};
pub use crate::oram::{Config, Oram};
pub use crate::records::{Layout, RecordKey, Records};
pub use crate::storage::{
    fs_bucket_slot, fs_buckets, Backend, S3Config, Storage, Trace, TraceEvent, PACK,
};
pub use crate::tree::{bucket_plain_bytes, stash_bound, Geometry, Params, Z};
