//! Records: a key-value layer over one ORAM, for values of any size.
//!
//! Layout (block addresses): block 0 a header (magic, directory size, inline limit); blocks
//! 1..=D the directory, an append-only log of fixed-size entries; blocks D+1.. the values, each
//! stored in consecutive blocks from a bump allocator. A value above the inline limit is a
//! separately sealed blob ([`crate::blobs`]) and its entry holds the blob's reference.
//!
//! A put writes the value's blocks, then the directory block that receives its entry: the ORAM
//! makes each access durable in order, so the entry is the commit point — a crash before it
//! leaves blocks no entry points to (reused by the next put), never a half-written value. The
//! directory lives in the ORAM like the values, so the host cannot tell a directory access from
//! a value access; what it can count is the number of accesses per operation, i.e. a value's
//! size in blocks (see `docs/oram.md`).
//!
//! Space is not reclaimed within an epoch (a replaced or removed value keeps its blocks): an
//! epoch is bounded by its K, and the whole epoch is shredded at its end.

use std::collections::HashMap;

use crate::blobs::{BlobRef, MAX_BLOB_BYTES};
use crate::error::OramError;
use crate::lifecycle::ShredReport;
use crate::oram::Oram;

pub type RecordKey = [u8; 32];

const MAGIC: &[u8; 16] = b"smidl-records/v1";
const HEADER_BYTES: usize = 16 + 8 + 8;
/// kind ‖ key ‖ first block ‖ length ‖ blob name ‖ blob hash.
const ENTRY_BYTES: usize = 1 + 32 + 8 + 8 + 16 + 32;

const EMPTY: u8 = 0;
const INLINE: u8 = 1;
const BLOB: u8 = 2;
const REMOVED: u8 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Slot {
    Inline { first: u64, len: u64 },
    Blob(BlobRef),
}

/// The directory and inline limit of a record store.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Layout {
    /// Directory entries (puts and removals) the epoch may make.
    pub entries: u64,
    /// Values longer than this are separately sealed blobs.
    pub inline_max: u64,
}

impl Layout {
    pub fn directory_blocks(&self, block_bytes: usize) -> u64 {
        self.entries
            .div_ceil((block_bytes / ENTRY_BYTES).max(1) as u64)
    }
}

pub struct Records {
    oram: Oram,
    layout: Layout,
    dir_blocks: u64,
    per_block: usize,
    /// Entries in the log.
    entries: u64,
    /// The directory block that receives the next entry.
    tail: Vec<u8>,
    next_free: u64,
    index: HashMap<RecordKey, Slot>,
}

fn entry(kind: u8, key: &RecordKey, slot: Option<&Slot>) -> [u8; ENTRY_BYTES] {
    let mut e = [0u8; ENTRY_BYTES];
    e[0] = kind;
    e[1..33].copy_from_slice(key);
    match slot {
        Some(Slot::Inline { first, len }) => {
            e[33..41].copy_from_slice(&first.to_le_bytes());
            e[41..49].copy_from_slice(&len.to_le_bytes());
        }
        Some(Slot::Blob(b)) => {
            e[41..49].copy_from_slice(&b.len.to_le_bytes());
            e[49..65].copy_from_slice(&b.name);
            e[65..97].copy_from_slice(&b.hash);
        }
        None => {}
    }
    e
}

fn u64_at(b: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(b[at..at + 8].try_into().expect("8 bytes"))
}

impl Records {
    /// Opens the record store held by `oram`, creating it in a fresh ORAM. `layout` must be the
    /// one it was created with.
    pub async fn open(mut oram: Oram, layout: Layout) -> Result<Self, OramError> {
        let g = oram.geometry().clone();
        let per_block = g.block_bytes / ENTRY_BYTES;
        if per_block == 0 || g.block_bytes < HEADER_BYTES {
            return Err(OramError::Config(format!(
                "records need blocks of at least {ENTRY_BYTES} bytes"
            )));
        }
        let dir_blocks = layout.directory_blocks(g.block_bytes);
        if 1 + dir_blocks >= g.capacity {
            return Err(OramError::Config(format!(
                "a directory of {} entries needs {dir_blocks} blocks; the ORAM has {}",
                layout.entries, g.capacity
            )));
        }
        let mut header = vec![0u8; g.block_bytes];
        header[..16].copy_from_slice(MAGIC);
        header[16..24].copy_from_slice(&layout.entries.to_le_bytes());
        header[24..32].copy_from_slice(&layout.inline_max.to_le_bytes());
        let stored = oram.read(0).await?;
        if stored.iter().all(|&b| b == 0) {
            oram.write(0, &header).await?;
        } else if stored != header {
            return Err(OramError::Config(
                "this ORAM holds a record store of another layout".into(),
            ));
        }
        let mut r = Self {
            oram,
            layout,
            dir_blocks,
            per_block,
            entries: 0,
            tail: vec![0u8; g.block_bytes],
            next_free: 1 + dir_blocks,
            index: HashMap::new(),
        };
        'blocks: for b in 0..dir_blocks {
            let block = r.oram.read(1 + b).await?;
            for i in 0..per_block {
                let e = &block[i * ENTRY_BYTES..(i + 1) * ENTRY_BYTES];
                if e[0] == EMPTY {
                    r.tail = block;
                    break 'blocks;
                }
                r.replay(e)?;
                r.entries += 1;
            }
        }
        Ok(r)
    }

    fn replay(&mut self, e: &[u8]) -> Result<(), OramError> {
        let bad = |reason| OramError::integrity("record directory", reason);
        let key: RecordKey = e[1..33].try_into().expect("32 bytes");
        let len = u64_at(e, 41);
        match e[0] {
            INLINE => {
                let first = u64_at(e, 33);
                let n = self.blocks_for(len);
                let end = first.checked_add(n).ok_or(bad("value out of range"))?;
                if first < 1 + self.dir_blocks || end > self.oram.geometry().capacity {
                    return Err(bad("value out of range"));
                }
                self.next_free = self.next_free.max(end);
                self.index.insert(key, Slot::Inline { first, len });
            }
            BLOB => {
                let b = BlobRef {
                    name: e[49..65].try_into().expect("16 bytes"),
                    len,
                    hash: e[65..97].try_into().expect("32 bytes"),
                };
                self.index.insert(key, Slot::Blob(b));
            }
            REMOVED => {
                self.index.remove(&key);
            }
            _ => return Err(bad("unknown entry kind")),
        }
        Ok(())
    }

    fn blocks_for(&self, len: u64) -> u64 {
        len.div_ceil(self.oram.geometry().block_bytes as u64)
    }

    /// Stores `value` under `key`, replacing any previous value; durable when this returns.
    pub async fn put(&mut self, key: &RecordKey, value: &[u8]) -> Result<(), OramError> {
        let len = value.len() as u64;
        if len > MAX_BLOB_BYTES {
            return Err(OramError::TooLarge {
                len,
                max: MAX_BLOB_BYTES,
            });
        }
        self.ensure_entry_free()?;
        let bb = self.oram.geometry().block_bytes;
        let slot = if len <= self.layout.inline_max {
            let n = self.blocks_for(len);
            let first = self.next_free;
            let end = first
                .checked_add(n)
                .filter(|&e| e <= self.oram.geometry().capacity)
                .ok_or_else(|| {
                    OramError::Full(format!(
                        "{n} more blocks do not fit ({} of {} used)",
                        first,
                        self.oram.geometry().capacity
                    ))
                })?;
            let mut block = vec![0u8; bb];
            for (i, chunk) in value.chunks(bb).enumerate() {
                block[..chunk.len()].copy_from_slice(chunk);
                block[chunk.len()..].fill(0);
                self.oram.write(first + i as u64, &block).await?;
            }
            zeroize::Zeroize::zeroize(&mut block);
            self.next_free = end;
            Slot::Inline { first, len }
        } else {
            Slot::Blob(self.oram.put_blob(value).await?)
        };
        let kind = if matches!(slot, Slot::Blob(_)) {
            BLOB
        } else {
            INLINE
        };
        self.append(entry(kind, key, Some(&slot))).await?;
        if let Some(Slot::Blob(old)) = self.index.insert(*key, slot) {
            // Unreachable from the directory now; it goes with the epoch's shredding if this
            // fails, and is sealed under the epoch key until then.
            let _ = self.oram.delete_blob(&old).await;
        }
        Ok(())
    }

    /// The value under `key`, if any.
    pub async fn get(&mut self, key: &RecordKey) -> Result<Option<Vec<u8>>, OramError> {
        let Some(slot) = self.index.get(key).copied() else {
            return Ok(None);
        };
        match slot {
            Slot::Inline { first, len } => {
                let mut out = Vec::with_capacity(len as usize);
                for b in first..first + self.blocks_for(len) {
                    let mut block = self.oram.read(b).await?;
                    out.extend_from_slice(&block);
                    zeroize::Zeroize::zeroize(&mut block);
                }
                out.truncate(len as usize);
                Ok(Some(out))
            }
            Slot::Blob(r) => self.oram.get_blob(&r).await.map(Some),
        }
    }

    /// Removes `key`; returns whether it was present.
    pub async fn remove(&mut self, key: &RecordKey) -> Result<bool, OramError> {
        if !self.index.contains_key(key) {
            return Ok(false);
        }
        self.ensure_entry_free()?;
        self.append(entry(REMOVED, key, None)).await?;
        if let Some(Slot::Blob(old)) = self.index.remove(key) {
            let _ = self.oram.delete_blob(&old).await;
        }
        Ok(true)
    }

    fn ensure_entry_free(&self) -> Result<(), OramError> {
        if self.entries >= self.layout.entries {
            return Err(OramError::Full(format!(
                "the directory's {} entries are used",
                self.layout.entries
            )));
        }
        Ok(())
    }

    async fn append(&mut self, e: [u8; ENTRY_BYTES]) -> Result<(), OramError> {
        let i = (self.entries % self.per_block as u64) as usize;
        let block = 1 + self.entries / self.per_block as u64;
        if i == 0 {
            self.tail.fill(0);
        }
        self.tail[i * ENTRY_BYTES..(i + 1) * ENTRY_BYTES].copy_from_slice(&e);
        self.oram.write(block, &self.tail).await?;
        self.entries += 1;
        Ok(())
    }

    pub fn contains(&self, key: &RecordKey) -> bool {
        self.index.contains_key(key)
    }

    /// Live keys, in no particular order.
    pub fn keys(&self) -> impl Iterator<Item = &RecordKey> {
        self.index.keys()
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// Directory entries left before the store is full.
    pub fn entries_left(&self) -> u64 {
        self.layout.entries - self.entries
    }

    pub fn oram(&self) -> &Oram {
        &self.oram
    }

    /// Shreds the epoch: values, directory and blobs become undecryptable, then are deleted.
    pub async fn shred(self) -> Result<ShredReport, OramError> {
        self.oram.shred().await
    }
}
