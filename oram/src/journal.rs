//! The write-ahead journal and checkpoints: how an access becomes durable before it is
//! acknowledged, and how a restarted process rebuilds its client state.
//!
//! Each access writes one journal record (in ring slot `j/{seq mod checkpoint_every}`) *before*
//! touching any home bucket. The record
//! is sealed and holds everything the access changed: the position-map entry, the whole stash
//! (padded to its bound R, so every record has the same size), the tree-top buckets on the path
//! and the new sealed objects of the remote path. Records are hash-chained (each names its
//! predecessor's hash) and the last acknowledged one is named by the local anchor file, so a
//! storage host that drops, reorders or rolls back records is caught on recovery. Every
//! `checkpoint_every` commits a checkpoint `c/{seq}` holds the whole client state (position map,
//! stash, tree top) and the journal before it is deleted.

use crate::bucket::{object_bytes, Bucket, EpochId};
use crate::crypto::{EpochKey, Hash, HASH_BYTES};
use crate::error::OramError;
use crate::tree::{Geometry, ADDR_BYTES, EMPTY_SLOT, Z};

const JOURNAL_DOMAIN: &[u8] = b"smidl-oram/journal/v1";
const CHECKPOINT_DOMAIN: &[u8] = b"smidl-oram/checkpoint/v1";

/// The hash a fresh epoch's chain starts from.
pub fn genesis(epoch: &EpochId) -> Hash {
    crate::crypto::sha256(&[b"smidl-oram/genesis/v1", epoch])
}

fn aad(domain: &[u8], epoch: &EpochId, seq: u64) -> Vec<u8> {
    let mut a = Vec::with_capacity(domain.len() + 24);
    a.extend_from_slice(domain);
    a.extend_from_slice(epoch);
    a.extend_from_slice(&seq.to_le_bytes());
    a
}

pub type Blocks = Vec<(u64, Vec<u8>)>;

/// One access, as journaled.
#[derive(Debug)]
pub struct Record {
    pub seq: u64,
    pub prev: Hash,
    pub addr: u64,
    pub new_leaf: u64,
    pub path_leaf: u64,
    /// The hash of the root object when no level is cached.
    pub root_hash: Hash,
    pub stash: Blocks,
    /// The cached buckets on the path, root first.
    pub top_path: Vec<Bucket>,
    /// The new objects of the remote path, shallowest first.
    pub remote: Vec<Vec<u8>>,
}

/// The whole client state after commit `seq`.
#[derive(Debug)]
pub struct Checkpoint {
    pub seq: u64,
    pub chain: Hash,
    pub root_hash: Hash,
    pub posmap: Vec<u32>,
    pub stash: Blocks,
    pub top: Vec<Bucket>,
}

struct Writer(Vec<u8>);

impl Writer {
    fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn bytes(&mut self, b: &[u8]) {
        self.0.extend_from_slice(b);
    }
    /// `slots` slots of (address ‖ block), dummies padded: the size never depends on content.
    fn slots(&mut self, blocks: &[(u64, Vec<u8>)], slots: usize, g: &Geometry) {
        debug_assert!(blocks.len() <= slots);
        for (a, d) in blocks {
            self.u64(*a);
            self.bytes(d);
        }
        for _ in blocks.len()..slots {
            self.u64(EMPTY_SLOT);
            self.0.resize(self.0.len() + g.block_bytes, 0);
        }
    }
    fn bucket(&mut self, b: &Bucket, g: &Geometry) {
        self.slots(&b.blocks, Z, g);
        self.bytes(&b.children[0]);
        self.bytes(&b.children[1]);
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    fn err(&self, reason: &'static str) -> OramError {
        OramError::integrity(self.what, reason)
    }
    fn take(&mut self, n: usize) -> Result<&'a [u8], OramError> {
        if self.buf.len() < n {
            return Err(self.err("truncated"));
        }
        let (a, b) = self.buf.split_at(n);
        self.buf = b;
        Ok(a)
    }
    fn u64(&mut self) -> Result<u64, OramError> {
        Ok(u64::from_le_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }
    fn hash(&mut self) -> Result<Hash, OramError> {
        Ok(self.take(HASH_BYTES)?.try_into().expect("32 bytes"))
    }
    fn slots(&mut self, slots: usize, g: &Geometry) -> Result<Blocks, OramError> {
        let mut out = Vec::new();
        for _ in 0..slots {
            let a = self.u64()?;
            let d = self.take(g.block_bytes)?;
            if a == EMPTY_SLOT {
                continue;
            }
            if a >= g.capacity {
                return Err(self.err("block address out of range"));
            }
            out.push((a, d.to_vec()));
        }
        Ok(out)
    }
    fn bucket(&mut self, g: &Geometry) -> Result<Bucket, OramError> {
        let blocks = self.slots(Z, g)?;
        let children = [self.hash()?, self.hash()?];
        Ok(Bucket { blocks, children })
    }
    fn finish(self) -> Result<(), OramError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(self.err("trailing bytes"))
        }
    }
}

fn slot_bytes(g: &Geometry) -> usize {
    ADDR_BYTES + g.block_bytes
}

impl Record {
    /// The size of every sealed record of this geometry.
    pub fn sealed_bytes(g: &Geometry) -> usize {
        crate::crypto::NONCE_BYTES + Self::plain_bytes(g) + crate::crypto::TAG_BYTES
    }

    fn plain_bytes(g: &Geometry) -> usize {
        8 * 4
            + 2 * HASH_BYTES
            + g.stash_bound * slot_bytes(g)
            + g.cached_levels as usize * (Z * slot_bytes(g) + 2 * HASH_BYTES)
            + (g.levels() - g.cached_levels) as usize * object_bytes(g.block_bytes)
    }

    pub fn seal(
        &self,
        key: &EpochKey,
        epoch: &EpochId,
        g: &Geometry,
    ) -> Result<Vec<u8>, OramError> {
        let mut w = Writer(Vec::with_capacity(Self::plain_bytes(g)));
        w.u64(self.seq);
        w.bytes(&self.prev);
        w.u64(self.addr);
        w.u64(self.new_leaf);
        w.u64(self.path_leaf);
        w.bytes(&self.root_hash);
        w.slots(&self.stash, g.stash_bound, g);
        for b in &self.top_path {
            w.bucket(b, g);
        }
        for o in &self.remote {
            w.bytes(o);
        }
        debug_assert_eq!(w.0.len(), Self::plain_bytes(g));
        let sealed = key.seal(&aad(JOURNAL_DOMAIN, epoch, self.seq), &w.0);
        zeroize::Zeroize::zeroize(&mut w.0);
        sealed
    }

    pub fn open(
        sealed: &[u8],
        key: &EpochKey,
        epoch: &EpochId,
        seq: u64,
        g: &Geometry,
    ) -> Result<Self, OramError> {
        let what = "journal record";
        let mut plain = key
            .open(&aad(JOURNAL_DOMAIN, epoch, seq), sealed)
            .ok_or_else(|| OramError::integrity(what, "authentication failed"))?;
        let out = (|| {
            if plain.len() != Self::plain_bytes(g) {
                return Err(OramError::integrity(what, "wrong size"));
            }
            let mut r = Reader { buf: &plain, what };
            let rec = Record {
                seq: r.u64()?,
                prev: r.hash()?,
                addr: r.u64()?,
                new_leaf: r.u64()?,
                path_leaf: r.u64()?,
                root_hash: r.hash()?,
                stash: r.slots(g.stash_bound, g)?,
                top_path: (0..g.cached_levels)
                    .map(|_| r.bucket(g))
                    .collect::<Result<_, _>>()?,
                remote: (g.cached_levels..g.levels())
                    .map(|_| r.take(object_bytes(g.block_bytes)).map(<[u8]>::to_vec))
                    .collect::<Result<_, _>>()?,
            };
            r.finish()?;
            if rec.seq != seq
                || rec.addr >= g.capacity
                || rec.new_leaf >= g.leaves()
                || rec.path_leaf >= g.leaves()
            {
                return Err(OramError::integrity(what, "fields out of range"));
            }
            Ok(rec)
        })();
        zeroize::Zeroize::zeroize(&mut plain);
        out
    }
}

impl Checkpoint {
    fn plain_bytes(g: &Geometry) -> usize {
        8 + 2 * HASH_BYTES
            + 4 * g.capacity as usize
            + g.stash_bound * slot_bytes(g)
            + g.cached_nodes() as usize * (Z * slot_bytes(g) + 2 * HASH_BYTES)
    }

    pub fn seal(
        &self,
        key: &EpochKey,
        epoch: &EpochId,
        g: &Geometry,
    ) -> Result<Vec<u8>, OramError> {
        let mut w = Writer(Vec::with_capacity(Self::plain_bytes(g)));
        w.u64(self.seq);
        w.bytes(&self.chain);
        w.bytes(&self.root_hash);
        for p in &self.posmap {
            w.bytes(&p.to_le_bytes());
        }
        w.slots(&self.stash, g.stash_bound, g);
        for b in &self.top {
            w.bucket(b, g);
        }
        debug_assert_eq!(w.0.len(), Self::plain_bytes(g));
        let sealed = key.seal(&aad(CHECKPOINT_DOMAIN, epoch, self.seq), &w.0);
        zeroize::Zeroize::zeroize(&mut w.0);
        sealed
    }

    pub fn open(
        sealed: &[u8],
        key: &EpochKey,
        epoch: &EpochId,
        seq: u64,
        g: &Geometry,
    ) -> Result<Self, OramError> {
        let what = "checkpoint";
        let mut plain = key
            .open(&aad(CHECKPOINT_DOMAIN, epoch, seq), sealed)
            .ok_or_else(|| OramError::integrity(what, "authentication failed"))?;
        let out = (|| {
            if plain.len() != Self::plain_bytes(g) {
                return Err(OramError::integrity(what, "wrong size"));
            }
            let mut r = Reader { buf: &plain, what };
            let seq_read = r.u64()?;
            let chain = r.hash()?;
            let root_hash = r.hash()?;
            let mut posmap = Vec::with_capacity(g.capacity as usize);
            for _ in 0..g.capacity {
                let p = u32::from_le_bytes(r.take(4)?.try_into().expect("4 bytes"));
                if u64::from(p) >= g.leaves() {
                    return Err(OramError::integrity(what, "leaf out of range"));
                }
                posmap.push(p);
            }
            let stash = r.slots(g.stash_bound, g)?;
            let top = (0..g.cached_nodes())
                .map(|_| r.bucket(g))
                .collect::<Result<_, _>>()?;
            r.finish()?;
            if seq_read != seq {
                return Err(OramError::integrity(what, "sequence number mismatch"));
            }
            Ok(Checkpoint {
                seq,
                chain,
                root_hash,
                posmap,
                stash,
                top,
            })
        })();
        zeroize::Zeroize::zeroize(&mut plain);
        out
    }
}
