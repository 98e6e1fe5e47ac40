//! An epoch's life outside its accesses: formatting the tree up front, sealing it under one
//! root, shredding it, and an auditor's key-less check of a published root.

use futures::future::try_join_all;

use crate::bucket::{object_hash, Bucket, EpochId};
use crate::crypto::{sha256, EpochKey, Hash, EMPTY_HASH};
use crate::error::OramError;
use crate::oram::Oram;
use crate::storage::Storage;
use crate::tree::Geometry;

/// Concurrent object writes while formatting or sealing.
const PUT_BATCH: usize = 64;

/// What [`Oram::shred`] leaves for the record.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ShredReport {
    /// Commits the epoch made.
    pub seq: u64,
    /// The Merkle root of the final tree: the hash of the sealed root bucket, whose children's
    /// hashes are in the clear down to the leaves ([`verify_tree`] checks them without a key).
    pub tree_root: Hash,
    /// The hash of the last journal record (it commits to the final stash).
    pub chain_head: Hash,
    /// `sha256("smidl-oram/final/v1" ‖ epoch ‖ seq ‖ tree_root ‖ chain_head)`: the value to
    /// publish.
    pub final_root: Hash,
    pub objects_deleted: u64,
}

impl Oram {
    /// Writes every remote bucket as a sealed bucket of dummies (and checkpoints), so that the
    /// storage holds the full tree from the start: every access then reads objects of one size
    /// at every level. Only on a fresh epoch; a crash while formatting leaves an epoch that
    /// refuses to open (shred it and create it again).
    pub async fn format(&mut self) -> Result<u64, OramError> {
        if self.seq != 0 || self.poisoned || self.finalized.is_some() {
            return Err(OramError::Config(
                "only a fresh epoch can be formatted".into(),
            ));
        }
        let g = self.geo.clone();
        let mut written = 0u64;
        // Hashes of the level below, indexed within their level.
        let mut below: Vec<Hash> = Vec::new();
        for level in (g.cached_levels..g.levels()).rev() {
            let first = (1u64 << level) - 1;
            let mut hashes = Vec::with_capacity(1usize << level);
            let nodes: Vec<u64> = (first..first + (1u64 << level)).collect();
            for chunk in nodes.chunks(PUT_BATCH) {
                let mut objs = Vec::with_capacity(chunk.len());
                for &node in chunk {
                    let i = (node - first) as usize;
                    let children = if level < g.height {
                        [below[2 * i], below[2 * i + 1]]
                    } else {
                        [EMPTY_HASH; 2]
                    };
                    let b = Bucket {
                        blocks: Vec::new(),
                        children,
                    };
                    let obj = b.seal(&self.key, &self.epoch, node, 0, &g)?;
                    hashes.push(object_hash(&obj));
                    objs.push((node, obj));
                }
                self.storage.put_buckets(objs).await?;
                written += chunk.len() as u64;
            }
            below = hashes;
        }
        if g.cached_levels == 0 {
            self.root_hash = below[0];
        } else {
            let level = g.cached_levels - 1;
            let first = (1u64 << level) - 1;
            for node in first..first + (1u64 << level) {
                let i = (node - first) as usize;
                self.top[node as usize].children = [below[2 * i], below[2 * i + 1]];
            }
        }
        // The journal ring too, with random bytes of a record's size (they never authenticate),
        // so no access creates an object: on the filesystem every write is then in place.
        let slots = u64::from(self.params().checkpoint_every);
        let len = crate::journal::Record::sealed_bytes(&g);
        for chunk in (1..=slots).collect::<Vec<_>>().chunks(PUT_BATCH) {
            let mut objs = Vec::with_capacity(chunk.len());
            for &seq in chunk {
                let mut filler = vec![0u8; len];
                crate::crypto::fill_random(&mut filler)?;
                objs.push((seq, filler));
            }
            try_join_all(
                objs.into_iter()
                    .map(|(s, o)| self.storage.put_journal(s, o)),
            )
            .await?;
        }
        self.checkpoint().await?;
        Ok(written)
    }

    /// Seals the tree top into objects on the storage, so that the whole tree hangs off one
    /// root; no access is possible afterwards. Returns the tree root.
    pub async fn seal_tree(&mut self) -> Result<Hash, OramError> {
        if self.poisoned {
            return Err(OramError::Poisoned);
        }
        if let Some(r) = self.finalized {
            return Ok(r);
        }
        let g = self.geo.clone();
        let c = g.cached_levels;
        if c == 0 {
            self.finalized = Some(self.root_hash);
            return Ok(self.root_hash);
        }
        let mut hashes = vec![EMPTY_HASH; g.cached_nodes() as usize];
        for level in (0..c).rev() {
            let first = (1u64 << level) - 1;
            let mut puts = Vec::new();
            for node in first..first + (1u64 << level) {
                let mut b = self.top[node as usize].clone();
                if level + 1 < c {
                    b.children = [
                        hashes[(2 * node + 1) as usize],
                        hashes[(2 * node + 2) as usize],
                    ];
                }
                let obj = b.seal(&self.key, &self.epoch, node, self.seq, &g)?;
                hashes[node as usize] = object_hash(&obj);
                puts.push((node, obj));
            }
            for chunk in puts.chunks(64) {
                self.storage.put_buckets(chunk.to_vec()).await?;
            }
        }
        self.finalized = Some(hashes[0]);
        Ok(hashes[0])
    }

    /// Ends the epoch: seals the tree, destroys the key (zeroed, flushed, unlinked) and only
    /// then deletes the objects, so even a storage host that kept copies holds ciphertext no
    /// key on this machine opens.
    pub async fn shred(mut self) -> Result<ShredReport, OramError> {
        let tree_root = self.seal_tree().await?;
        let final_root = sha256(&[
            b"smidl-oram/final/v1",
            &self.epoch,
            &self.seq.to_le_bytes(),
            &tree_root,
            &self.chain,
        ]);
        self.local.shred()?;
        let objects_deleted = self.storage.delete_all().await?;
        Ok(ShredReport {
            seq: self.seq,
            tree_root,
            chain_head: self.chain,
            final_root,
            objects_deleted,
        })
    }
}

/// The key file of epoch `name` in `state_dir`: it exists from creation until shredding.
pub fn key_file(state_dir: &std::path::Path, name: &str) -> std::path::PathBuf {
    crate::local::key_path(state_dir, name)
}

/// The epoch id and key a key file holds, for shredding audits: a test that tries every window
/// of the files left on a machine needs the id, and its control needs the live key.
#[doc(hidden)]
pub fn read_key_file(
    state_dir: &std::path::Path,
    name: &str,
) -> Result<(EpochId, [u8; 32]), OramError> {
    let (epoch, key, _) = crate::local::LocalState::new(state_dir, name, false)?.read_key()?;
    Ok((epoch, *key.as_bytes()))
}

/// Whether `key` opens the sealed bucket `obj` of `epoch` at `node` (the shredding test tries
/// every key-sized window of every file left on the machine).
#[doc(hidden)]
pub fn opens_with(key: [u8; 32], epoch: &EpochId, node: u64, obj: &[u8], g: &Geometry) -> bool {
    Bucket::open(obj, &EpochKey::from_bytes(key), epoch, node, g).is_ok()
}

/// Checks, without the key, that the objects under `storage` form the Merkle tree of `root`:
/// every non-empty child hash names an object that exists and hashes to it. Returns the number
/// of objects checked.
pub async fn verify_tree(storage: &Storage, root: Hash) -> Result<u64, OramError> {
    let mut frontier = vec![(0u64, root)];
    let mut checked = 0;
    while let Some((node, h)) = frontier.pop() {
        if h == EMPTY_HASH {
            continue;
        }
        let name = format!("bucket {node}");
        let obj = storage
            .get_bucket(node)
            .await?
            .ok_or_else(|| OramError::integrity(name.clone(), "missing"))?;
        if object_hash(&obj) != h {
            return Err(OramError::integrity(
                name,
                "does not match the published tree",
            ));
        }
        checked += 1;
        if Geometry::level_of(node) >= crate::tree::MAX_CAPACITY_LOG2 {
            continue;
        }
        let ch =
            Bucket::public_children(&obj).ok_or_else(|| OramError::integrity(name, "too short"))?;
        frontier.push((2 * node + 1, ch[0]));
        frontier.push((2 * node + 2, ch[1]));
    }
    Ok(checked)
}
