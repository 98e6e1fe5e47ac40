//! The trusted local state of one epoch, kept apart from the untrusted storage: the key file
//! (the epoch's key and identity, mode 0600) and the anchor file (the sequence number and hash
//! of the last acknowledged journal record — what makes a rolled-back storage detectable after
//! a restart). The key file is written once, atomically (temporary file, then rename). The
//! anchor is rewritten on every commit, so it is not re-created each time (that costs a file
//! creation per access): it has two fixed slots, written alternately in place, each with its own
//! checksum, and the valid slot with the higher sequence number wins. A write cut short can only
//! spoil the slot being written, never the previous anchor.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

use zeroize::Zeroize;

use crate::bucket::EpochId;
use crate::crypto::{sha256, EpochKey, Hash, HASH_BYTES, KEY_BYTES};
use crate::error::OramError;

const KEY_MAGIC: &[u8; 16] = b"smidl-oram-key1\0";
const ANCHOR_MAGIC: &[u8; 16] = b"smidl-oram-anc1\0";
const KEY_FILE_BYTES: usize = 16 + 16 + KEY_BYTES + 8 * 4;
const ANCHOR_SLOT_BYTES: usize = 16 + 16 + 8 + HASH_BYTES + HASH_BYTES;

/// What a key file records besides the key: the shape the objects were written with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shape {
    pub capacity: u64,
    pub block_bytes: u64,
    pub max_accesses: u64,
    pub cached_levels: u64,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Anchor {
    pub seq: u64,
    pub hash: Hash,
}

/// The paths of one epoch's local files.
#[derive(Debug)]
pub struct LocalState {
    pub key_path: PathBuf,
    pub anchor_path: PathBuf,
    /// fsync files and their directory (durability across power loss, not only SIGKILL).
    pub sync: bool,
    anchor_file: Option<fs::File>,
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 128
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
        && !name.starts_with('.')
}

/// Where the key file of epoch `name` lives in `dir`.
pub fn key_path(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{name}.key"))
}

impl LocalState {
    pub fn new(dir: &Path, name: &str, sync: bool) -> Result<Self, OramError> {
        if !valid_name(name) {
            return Err(OramError::Config(format!(
                "epoch name {name:?}: use 1..=128 of [A-Za-z0-9._-], not starting with '.'"
            )));
        }
        Ok(Self {
            key_path: key_path(dir, name),
            anchor_path: dir.join(format!("{name}.anchor")),
            sync,
            anchor_file: None,
        })
    }

    pub fn exists(&self) -> bool {
        self.key_path.exists()
    }

    fn key_err(&self, reason: impl Into<String>) -> OramError {
        OramError::KeyFile {
            path: self.key_path.display().to_string(),
            reason: reason.into(),
        }
    }

    fn anchor_err(&self, reason: impl Into<String>) -> OramError {
        OramError::Anchor {
            path: self.anchor_path.display().to_string(),
            reason: reason.into(),
        }
    }

    /// Creates the key file; refuses to replace one (that would orphan an epoch's data).
    pub fn create_key(
        &self,
        epoch: &EpochId,
        key: &EpochKey,
        shape: Shape,
    ) -> Result<(), OramError> {
        if self.key_path.exists() {
            return Err(self.key_err("already exists: open the epoch instead of creating it"));
        }
        let mut buf = Vec::with_capacity(KEY_FILE_BYTES);
        buf.extend_from_slice(KEY_MAGIC);
        buf.extend_from_slice(epoch);
        buf.extend_from_slice(key.as_bytes());
        for v in [
            shape.capacity,
            shape.block_bytes,
            shape.max_accesses,
            shape.cached_levels,
        ] {
            buf.extend_from_slice(&v.to_le_bytes());
        }
        let r = self.write_atomic(&self.key_path, &buf, true);
        buf.zeroize();
        r
    }

    pub fn read_key(&self) -> Result<(EpochId, EpochKey, Shape), OramError> {
        let mut buf = fs::read(&self.key_path).map_err(|e| self.key_err(e.to_string()))?;
        let parsed = (|| {
            if buf.len() != KEY_FILE_BYTES || &buf[..16] != KEY_MAGIC {
                return Err(self.key_err("not a smidl ORAM key file"));
            }
            let epoch: EpochId = buf[16..32].try_into().expect("16 bytes");
            let mut k = [0u8; KEY_BYTES];
            k.copy_from_slice(&buf[32..32 + KEY_BYTES]);
            let key = EpochKey::from_bytes(k);
            k.zeroize();
            let u = |i: usize| {
                let o = 32 + KEY_BYTES + 8 * i;
                u64::from_le_bytes(buf[o..o + 8].try_into().expect("8 bytes"))
            };
            let shape = Shape {
                capacity: u(0),
                block_bytes: u(1),
                max_accesses: u(2),
                cached_levels: u(3),
            };
            Ok((epoch, key, shape))
        })();
        buf.zeroize();
        parsed
    }

    pub fn write_anchor(&mut self, epoch: &EpochId, a: Anchor) -> Result<(), OramError> {
        let mut slot = Vec::with_capacity(ANCHOR_SLOT_BYTES);
        slot.extend_from_slice(ANCHOR_MAGIC);
        slot.extend_from_slice(epoch);
        slot.extend_from_slice(&a.seq.to_le_bytes());
        slot.extend_from_slice(&a.hash);
        let check = sha256(&[&slot]);
        slot.extend_from_slice(&check);
        if self.anchor_file.is_none() {
            if let Some(dir) = self.anchor_path.parent() {
                fs::create_dir_all(dir)?;
            }
            let f = fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .open(&self.anchor_path)
                .map_err(|e| self.anchor_err(e.to_string()))?;
            if f.metadata()?.len() < 2 * ANCHOR_SLOT_BYTES as u64 {
                f.set_len(2 * ANCHOR_SLOT_BYTES as u64)?;
                f.sync_all()?;
                sync_dir(&self.anchor_path)?;
            }
            self.anchor_file = Some(f);
        }
        let f = self.anchor_file.as_ref().expect("opened above");
        write_at(f, &slot, (a.seq % 2) * ANCHOR_SLOT_BYTES as u64)?;
        if self.sync {
            f.sync_data()?;
        }
        Ok(())
    }

    fn parse_slot(&self, slot: &[u8], epoch: &EpochId) -> Result<Option<Anchor>, OramError> {
        let body = &slot[..ANCHOR_SLOT_BYTES - HASH_BYTES];
        if &slot[..16] != ANCHOR_MAGIC || sha256(&[body]) != slot[ANCHOR_SLOT_BYTES - HASH_BYTES..]
        {
            return Ok(None); // never written, or a write cut short
        }
        if &slot[16..32] != epoch {
            return Err(self.anchor_err("belongs to another epoch"));
        }
        Ok(Some(Anchor {
            seq: u64::from_le_bytes(slot[32..40].try_into().expect("8 bytes")),
            hash: slot[40..40 + HASH_BYTES].try_into().expect("32 bytes"),
        }))
    }

    /// `None` if there is no anchor file yet (a fresh epoch).
    pub fn read_anchor(&self, epoch: &EpochId) -> Result<Option<Anchor>, OramError> {
        let buf = match fs::read(&self.anchor_path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(self.anchor_err(e.to_string())),
        };
        if buf.len() != 2 * ANCHOR_SLOT_BYTES {
            return Err(self.anchor_err("not a smidl ORAM anchor file"));
        }
        let (a, b) = buf.split_at(ANCHOR_SLOT_BYTES);
        match (self.parse_slot(a, epoch)?, self.parse_slot(b, epoch)?) {
            (Some(x), Some(y)) => Ok(Some(if x.seq >= y.seq { x } else { y })),
            (Some(x), None) | (None, Some(x)) => Ok(Some(x)),
            (None, None) => Err(self.anchor_err("no valid slot")),
        }
    }

    /// Overwrites the key file with zeros, flushes it to disk and unlinks it; removes the
    /// anchor. Afterwards nothing on this machine opens the epoch's objects.
    pub fn shred(&mut self) -> Result<(), OramError> {
        self.anchor_file = None;
        if let Ok(meta) = fs::metadata(&self.key_path) {
            let mut f = fs::OpenOptions::new()
                .write(true)
                .open(&self.key_path)
                .map_err(|e| self.key_err(e.to_string()))?;
            f.write_all(&vec![0u8; meta.len() as usize])?;
            f.sync_all()?;
            drop(f);
            fs::remove_file(&self.key_path)?;
        }
        match fs::remove_file(&self.anchor_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.into()),
        }
        sync_dir(&self.key_path)?;
        Ok(())
    }

    fn write_atomic(&self, path: &Path, data: &[u8], secret: bool) -> Result<(), OramError> {
        let dir = path
            .parent()
            .ok_or_else(|| OramError::Config(format!("{} has no directory", path.display())))?;
        fs::create_dir_all(dir)?;
        let tmp = path.with_extension("tmp");
        {
            let mut opts = fs::OpenOptions::new();
            opts.write(true).create(true).truncate(true);
            #[cfg(unix)]
            if secret {
                use std::os::unix::fs::OpenOptionsExt;
                opts.mode(0o600);
            }
            #[cfg(not(unix))]
            let _ = secret;
            let mut f = opts.open(&tmp)?;
            f.write_all(data)?;
            if self.sync || secret {
                f.sync_all()?;
            }
        }
        fs::rename(&tmp, path)?;
        if self.sync || secret {
            sync_dir(path)?;
        }
        Ok(())
    }
}

#[cfg(unix)]
fn write_at(f: &fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    use std::os::unix::fs::FileExt;
    f.write_all_at(data, offset)
}

#[cfg(not(unix))]
fn write_at(mut f: &fs::File, data: &[u8], offset: u64) -> std::io::Result<()> {
    use std::io::{Seek, SeekFrom};
    f.seek(SeekFrom::Start(offset))?;
    f.write_all(data)
}

fn sync_dir(path: &Path) -> Result<(), OramError> {
    #[cfg(unix)]
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_and_anchor_round_trip_and_shred() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = LocalState::new(dir.path(), "e-1", false).unwrap();
        let epoch = [7u8; 16];
        let key = EpochKey::generate().unwrap();
        let shape = Shape {
            capacity: 16,
            block_bytes: 8,
            max_accesses: 100,
            cached_levels: 2,
        };
        s.create_key(&epoch, &key, shape).unwrap();
        assert!(s.create_key(&epoch, &key, shape).is_err(), "never replaced");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = fs::metadata(&s.key_path).unwrap().permissions().mode();
            assert_eq!(mode & 0o077, 0, "key file readable by others: {mode:o}");
        }
        let (e2, k2, sh2) = s.read_key().unwrap();
        assert_eq!((e2, k2.as_bytes(), sh2), (epoch, key.as_bytes(), shape));
        assert_eq!(s.read_anchor(&epoch).unwrap(), None);
        let a = Anchor {
            seq: 9,
            hash: [3; 32],
        };
        s.write_anchor(&epoch, a).unwrap();
        assert_eq!(s.read_anchor(&epoch).unwrap(), Some(a));
        assert!(s.read_anchor(&[8u8; 16]).is_err(), "another epoch's anchor");
        s.shred().unwrap();
        assert!(!s.key_path.exists() && !s.anchor_path.exists());
        assert!(LocalState::new(dir.path(), "../x", false).is_err());
    }
}
