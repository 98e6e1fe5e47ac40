//! The epoch vault: a model's client data (inputs, results, evaluation keys) in one
//! `smidl-oram` record store per *generation* — a generation is what one chain epoch of the
//! model wrote. Its objects live on the untrusted storage (`<data_dir>/oram/m{model}-g{gen}/`),
//! its key and anchor in the key directory. At the epoch's end the generation is shredded (key
//! destroyed, then objects deleted): cryptographic erasure, even of copies the host kept.
//!
//! The ORAM is async and needs `&mut` per access; the rest of the store is synchronous (redb).
//! So the vaults run on one thread of their own with a small runtime, and callers (async tasks,
//! blocking tasks, tests) hand it closures and wait for the answer — one access at a time, which
//! is what a single-writer ORAM needs anyway.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};

use smidl_oram::{Backend, Config, Layout, Oram, OramError, Params, RecordKey, Records};

use super::vault_cache::VaultCache;
use super::StoreError;

/// 4 KiB blocks: an input (≈ 33 KB) is 9 blocks, a result (≈ 12 KB) 4.
pub const BLOCK_BYTES: usize = 4096;
/// 256 MiB of blocks per generation: ≈ 5 000 requests, each with its own input (9 blocks) and
/// result (4), or ≈ 16 000 results when clients ask again about inputs they uploaded. Space is
/// not reclaimed within a generation, so this bounds what one epoch can write; past it a put
/// fails (`Full`) and the job is rejected on chain with a reason. The tree is sparse on disk
/// (one file, only written buckets take space) and 2^14 → 2^16 cost 3.1 → 3.6 ms per access.
pub const CAPACITY: u64 = 1 << 16;
/// Puts and removals per generation (a result's put and its removal after retention are two).
pub const ENTRIES: u64 = 1 << 15;
/// Larger values (evaluation keys, ≈ 61 MB) are sealed blobs instead of block runs.
pub const INLINE_MAX: u64 = 64 << 10;
/// Accesses per generation; sizes the stash bound (2^-40 overflow over this many).
pub const MAX_ACCESSES: u64 = 1 << 20;
/// Client memory for the tree top.
const TREETOP_BYTES: usize = 2 << 20;
/// Memory for recently written or read values (`vault_cache`): a few hundred requests' inputs
/// and results, or four evaluation keys of the 30-30-2 network.
pub const CACHE_BYTES: usize = 256 << 20;
/// Every journal record carries the stash padded to its bound (≈ 87 × 4 KiB), so the ring is
/// kept short: 128 slots (≈ 46 MB) and a checkpoint every 128 accesses.
const CHECKPOINT_EVERY: u32 = 128;

const LAYOUT: Layout = Layout {
    entries: ENTRIES,
    inline_max: INLINE_MAX,
};

pub fn params() -> Params {
    let mut p = Params::new(CAPACITY, BLOCK_BYTES, MAX_ACCESSES);
    p.treetop_bytes = TREETOP_BYTES;
    p.checkpoint_every = CHECKPOINT_EVERY;
    p
}

pub fn vault_name(model_id: u32, generation: u64) -> String {
    format!("m{model_id}-g{generation}")
}

impl From<OramError> for StoreError {
    fn from(e: OramError) -> Self {
        StoreError::Vault(Box::new(e))
    }
}

/// What shredding one generation left for the record.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Erasure {
    pub generation: u64,
    /// `None` when the generation never stored anything (no key was ever made), or when a
    /// crash came between destroying its key and recording this.
    pub final_root: Option<[u8; 32]>,
    pub tree_root: Option<[u8; 32]>,
    pub accesses: u64,
    pub objects_deleted: u64,
    /// Records copied into the next generation (evaluation keys the model keeps, results of
    /// later epochs).
    pub carried: u64,
}

type Job = Box<dyn FnOnce(&mut VaultState) + Send>;

pub(super) struct Vaults {
    tx: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    stats: Arc<Counters>,
}

/// Totals since the process started, for `/metrics`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct VaultStats {
    /// ORAM accesses (each one tree path read and rewritten on the storage).
    pub accesses: u64,
    /// Value reads served from memory.
    pub cache_hits: u64,
    /// Value reads that went to the ORAM.
    pub cache_misses: u64,
}

#[derive(Default)]
struct Counters {
    accesses: AtomicU64,
    cache_hits: AtomicU64,
    cache_misses: AtomicU64,
}

pub(super) struct VaultState {
    rt: tokio::runtime::Runtime,
    storage_root: PathBuf,
    state_dir: PathBuf,
    open: HashMap<(u32, u64), Records>,
    cache: VaultCache,
    stats: Arc<Counters>,
}

impl Vaults {
    /// Objects under `storage_root` (untrusted), keys and anchors under `state_dir` (trusted).
    pub fn start(storage_root: &Path, state_dir: &Path) -> Result<Self, StoreError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|source| StoreError::Io {
                path: storage_root.to_path_buf(),
                source,
            })?;
        let mut state = VaultState {
            rt,
            storage_root: storage_root.to_path_buf(),
            state_dir: state_dir.to_path_buf(),
            open: HashMap::new(),
            cache: VaultCache::new(CACHE_BYTES),
            stats: Arc::default(),
        };
        let stats = state.stats.clone();
        let (tx, rx) = mpsc::channel::<Job>();
        let thread = std::thread::Builder::new()
            .name("smidl-vault".into())
            .spawn(move || {
                while let Ok(job) = rx.recv() {
                    job(&mut state);
                }
            })
            .map_err(|source| StoreError::Io {
                path: storage_root.to_path_buf(),
                source,
            })?;
        Ok(Self {
            tx: Mutex::new(Some(tx)),
            thread: Mutex::new(Some(thread)),
            stats,
        })
    }

    pub fn stats(&self) -> VaultStats {
        VaultStats {
            accesses: self.stats.accesses.load(Ordering::Relaxed),
            cache_hits: self.stats.cache_hits.load(Ordering::Relaxed),
            cache_misses: self.stats.cache_misses.load(Ordering::Relaxed),
        }
    }

    /// Runs `f` on the vault thread and waits for its answer.
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut VaultState) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (rtx, rrx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |s| {
            let _ = rtx.send(f(s));
        });
        let gone = || StoreError::Inconsistent("the vault thread has stopped".into());
        self.tx
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .ok_or_else(gone)?
            .send(job)
            .map_err(|_| gone())?;
        rrx.recv().map_err(|_| gone())?
    }
}

impl Drop for Vaults {
    fn drop(&mut self) {
        // Closing the channel ends the thread, which drops (and zeroises) the open handles.
        self.tx.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(t) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
            let _ = t.join();
        }
    }
}

impl VaultState {
    fn config(&self, model_id: u32, generation: u64) -> Config {
        Config::new(
            params(),
            Backend::Fs {
                root: self.storage_root.clone(),
            },
            &vault_name(model_id, generation),
            &self.state_dir,
        )
    }

    fn key_file(&self, model_id: u32, generation: u64) -> PathBuf {
        smidl_oram::key_file(&self.state_dir, &vault_name(model_id, generation))
    }

    /// Whether the generation was ever created (its key exists).
    pub fn exists(&self, model_id: u32, generation: u64) -> bool {
        self.open.contains_key(&(model_id, generation))
            || self.key_file(model_id, generation).exists()
    }

    fn records(&mut self, model_id: u32, generation: u64) -> Result<&mut Records, StoreError> {
        let k = (model_id, generation);
        if !self.open.contains_key(&k) {
            let cfg = self.config(model_id, generation);
            let rec = self.rt.block_on(async {
                let oram = Oram::open_or_create(cfg).await?;
                Records::open(oram, LAYOUT).await
            })?;
            self.open.insert(k, rec);
        }
        Ok(self.open.get_mut(&k).expect("just opened"))
    }

    /// Runs one record operation; a failed handle is dropped so the next call reopens it (and
    /// recovers from its journal).
    fn with<T>(
        &mut self,
        model_id: u32,
        generation: u64,
        op: impl FnOnce(&tokio::runtime::Runtime, &mut Records) -> Result<T, OramError>,
    ) -> Result<T, StoreError> {
        self.records(model_id, generation)?;
        let rec = self
            .open
            .get_mut(&(model_id, generation))
            .expect("just opened");
        let before = rec.oram().seq();
        let out = op(&self.rt, rec);
        let made = rec.oram().seq().saturating_sub(before);
        self.stats.accesses.fetch_add(made, Ordering::Relaxed);
        if out.is_err() {
            self.open.remove(&(model_id, generation));
            // The reopened handle recovers the last acknowledged state, which a failed write
            // may or may not have reached.
            self.cache.forget_generation(model_id, generation);
        }
        Ok(out?)
    }

    pub fn get(
        &mut self,
        model_id: u32,
        generation: u64,
        key: RecordKey,
    ) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(v) = self.cache.get(&(model_id, generation, key)) {
            self.stats.cache_hits.fetch_add(1, Ordering::Relaxed);
            return Ok(Some(v));
        }
        self.stats.cache_misses.fetch_add(1, Ordering::Relaxed);
        if !self.exists(model_id, generation) {
            return Ok(None);
        }
        let v = self.with(model_id, generation, |rt, r| rt.block_on(r.get(&key)))?;
        if let Some(v) = &v {
            self.cache.insert((model_id, generation, key), v);
        }
        Ok(v)
    }

    pub fn put(
        &mut self,
        model_id: u32,
        generation: u64,
        key: RecordKey,
        value: &[u8],
    ) -> Result<(), StoreError> {
        // A failed put forgets the generation's cached values (`with`); a stored one replaces
        // the cached value.
        self.with(model_id, generation, |rt, r| {
            rt.block_on(r.put(&key, value))
        })?;
        self.cache.insert((model_id, generation, key), value);
        Ok(())
    }

    pub fn remove(
        &mut self,
        model_id: u32,
        generation: u64,
        key: RecordKey,
    ) -> Result<bool, StoreError> {
        self.cache.remove(&(model_id, generation, key));
        if !self.exists(model_id, generation) {
            return Ok(false);
        }
        self.with(model_id, generation, |rt, r| rt.block_on(r.remove(&key)))
    }

    /// ORAM accesses the generation has made (tests: what reached the untrusted storage).
    #[cfg(test)]
    pub fn accesses(&mut self, model_id: u32, generation: u64) -> Result<u64, StoreError> {
        self.with(model_id, generation, |_, r| Ok(r.oram().seq()))
    }

    /// Live keys of the generation (none if it was never created).
    pub fn keys(&mut self, model_id: u32, generation: u64) -> Result<Vec<RecordKey>, StoreError> {
        if !self.exists(model_id, generation) {
            return Ok(Vec::new());
        }
        self.with(model_id, generation, |_, r| Ok(r.keys().copied().collect()))
    }

    /// Copies the records `keep` selects into generation `generation + 1`, then shreds
    /// `generation` and checks that nothing of it is left: no key file, no object.
    pub fn rotate(
        &mut self,
        model_id: u32,
        generation: u64,
        keep: impl Fn(&RecordKey) -> bool,
    ) -> Result<Erasure, StoreError> {
        let mut erasure = Erasure {
            generation,
            final_root: None,
            tree_root: None,
            accesses: 0,
            objects_deleted: 0,
            carried: 0,
        };
        if self.exists(model_id, generation) {
            for key in self.keys(model_id, generation)? {
                if !keep(&key) {
                    continue;
                }
                if let Some(v) = self.get(model_id, generation, key)? {
                    let v = zeroize::Zeroizing::new(v);
                    self.put(model_id, generation + 1, key, &v)?;
                    erasure.carried += 1;
                }
            }
            self.records(model_id, generation)?;
            let rec = self
                .open
                .remove(&(model_id, generation))
                .expect("just opened");
            self.cache.forget_generation(model_id, generation);
            let report = self.rt.block_on(rec.shred())?;
            erasure.final_root = Some(report.final_root);
            erasure.tree_root = Some(report.tree_root);
            erasure.accesses = report.seq;
            erasure.objects_deleted = report.objects_deleted;
        }
        if self.key_file(model_id, generation).exists() {
            return Err(StoreError::Inconsistent(format!(
                "vault {} was shredded but its key file remains",
                vault_name(model_id, generation)
            )));
        }
        let left = count_files(&self.storage_root.join(vault_name(model_id, generation)));
        if left != 0 {
            return Err(StoreError::Inconsistent(format!(
                "vault {} was shredded but {left} of its objects remain",
                vault_name(model_id, generation)
            )));
        }
        Ok(erasure)
    }
}

/// Regular files under `dir` (0 if it does not exist).
pub fn count_files(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => count_files(&e.path()),
            Ok(t) if t.is_file() => 1,
            _ => 0,
        })
        .sum()
}
