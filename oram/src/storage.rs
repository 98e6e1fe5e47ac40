//! The untrusted storage, through the `object_store` API: the local filesystem (embedded
//! default), memory, or any S3-compatible service. Everything the host sees goes through
//! [`Storage`], which can record a trace of it (the obliviousness tests read that trace).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};

use crate::error::OramError;

/// Where the objects live.
#[derive(Clone, Debug)]
pub enum Backend {
    /// In process memory (benchmarks, tests).
    Memory,
    /// A directory on the local filesystem (the embedded default), through `object_store`'s
    /// `LocalFileSystem`. Buckets and journal slots are written in place (see `InPlace`);
    /// checkpoints and blobs are created atomically (staged and renamed).
    Fs { root: PathBuf },
    /// Any S3-compatible service, path-style requests.
    S3(S3Config),
    /// A store built by the caller.
    Custom(Arc<dyn ObjectStore>),
}

#[derive(Clone)]
pub struct S3Config {
    pub endpoint: String,
    pub bucket: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    /// Plain HTTP is for a loopback test server only.
    pub allow_http: bool,
}

impl std::fmt::Debug for S3Config {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("S3Config")
            .field("endpoint", &self.endpoint)
            .field("bucket", &self.bucket)
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &"<secret>")
            .finish()
    }
}

impl Backend {
    pub fn name(&self) -> &'static str {
        match self {
            Self::Memory => "memory",
            Self::Fs { .. } => "fs",
            Self::S3(_) => "s3",
            Self::Custom(_) => "custom",
        }
    }

    pub fn build(&self) -> Result<Arc<dyn ObjectStore>, OramError> {
        Ok(match self {
            Self::Memory => Arc::new(InMemory::new()),
            Self::Fs { root } => Self::local(root, false)?,
            Self::S3(c) => Arc::new(
                AmazonS3Builder::new()
                    .with_endpoint(&c.endpoint)
                    .with_bucket_name(&c.bucket)
                    .with_region(&c.region)
                    .with_access_key_id(&c.access_key_id)
                    .with_secret_access_key(&c.secret_access_key)
                    .with_allow_http(c.allow_http)
                    .with_virtual_hosted_style_request(false)
                    .build()?,
            ),
            Self::Custom(s) => s.clone(),
        })
    }

    fn local(root: &std::path::Path, fsync: bool) -> Result<Arc<LocalFileSystem>, OramError> {
        std::fs::create_dir_all(root)?;
        Ok(Arc::new(
            LocalFileSystem::new_with_prefix(root)?.with_fsync(fsync),
        ))
    }

    /// The storage of one epoch (`prefix`), with a journal ring of `journal_slots` objects and
    /// buckets of `bucket_bytes` each (every sealed bucket has the same size). `fsync` makes
    /// filesystem writes durable before they return (power loss, not just a killed process).
    pub fn open(
        &self,
        prefix: &str,
        journal_slots: u64,
        bucket_bytes: usize,
        fsync: bool,
    ) -> Result<Storage, OramError> {
        let prefix = prefix.trim_matches('/').to_string();
        let (store, in_place, pack): (Arc<dyn ObjectStore>, _, _) = match self {
            Self::Fs { root } => {
                let l = Self::local(root, fsync)?;
                let pack = Pack::new(
                    l.path_to_filesystem(&Path::from(format!("{prefix}/{PACK}")))?,
                    bucket_bytes,
                    fsync,
                );
                (l.clone(), Some(InPlace { fs: l, fsync }), Some(pack))
            }
            other => (other.build()?, None, None),
        };
        Ok(Storage {
            store,
            prefix,
            trace: None,
            journal_slots: journal_slots.max(1),
            in_place,
            pack,
        })
    }
}

/// Rewrites existing files of the filesystem backend in place.
///
/// Why: `LocalFileSystem::put` stages a new file and renames it over the old one, so every
/// bucket write costs an inode creation and deletion (≈ 380 µs on ext4 here, against ≈ 14 µs
/// for a `pwrite` into the existing file) and the filesystem backend was 14× slower than the
/// in-memory one. Atomicity is not needed for buckets and journal slots: every write-back is
/// preceded by a journal record holding the new objects, so a write torn by a crash is redone
/// on recovery, and a torn journal slot belongs to an access that was never acknowledged.
/// A torn object fails its AEAD tag, so it is never mistaken for a fresh one.
///
/// The same argument covers a *new* bucket or slot, which is created and written directly
/// (an unformatted tree creates a file on most of its first write-backs; staged and renamed,
/// that was the ≈ 380 µs above per file). Only with `fsync` is a new file left to the atomic
/// put, whose directory sync makes its existence survive a power loss.
#[derive(Clone)]
struct InPlace {
    fs: Arc<LocalFileSystem>,
    fsync: bool,
}

impl InPlace {
    /// Writes `obj` over the file at `p`, creating it if need be; with `fsync`, hands `obj` back
    /// if there is no such file yet.
    async fn overwrite(&self, p: &Path, obj: Vec<u8>) -> Result<Option<Vec<u8>>, OramError> {
        let file = self.fs.path_to_filesystem(p)?;
        let fsync = self.fsync;
        tokio::task::spawn_blocking(move || -> std::io::Result<Option<Vec<u8>>> {
            use std::os::unix::fs::FileExt;
            let f = match std::fs::OpenOptions::new().write(true).open(&file) {
                Ok(f) => f,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && fsync => {
                    return Ok(Some(obj))
                }
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                    if let Some(dir) = file.parent() {
                        std::fs::create_dir_all(dir)?;
                    }
                    std::fs::OpenOptions::new()
                        .write(true)
                        .create(true)
                        .truncate(false)
                        .open(&file)?
                }
                Err(e) => return Err(e),
            };
            f.write_all_at(&obj, 0)?;
            if f.metadata()?.len() != obj.len() as u64 {
                f.set_len(obj.len() as u64)?;
            }
            if fsync {
                f.sync_data()?;
            }
            Ok(None)
        })
        .await
        .map_err(|e| OramError::Io(std::io::Error::other(e)))?
        .map_err(OramError::Io)
    }
}

/// Where the filesystem backend keeps an epoch's buckets: one file, relative to the epoch.
pub const PACK: &str = "b/tree";

/// The filesystem backend's buckets: one file, bucket `node` in the fixed slot at
/// `node × (8 + bucket_bytes)`, an 8-byte length (0: never written) before the object.
///
/// Why one file: a bucket per file cost an inode creation on most first write-backs of a
/// lazily filled tree (a generation of the worker's vault has 2^15 nodes and never fills them
/// all), which profiled at ≈ 40 % of an access on ext4 here (inode allocation and the
/// directory lock the path's parallel creations contend on); a `pread`/`pwrite` into an open
/// file costs neither. The host learns the same thing as from file names: which node is read
/// or written (the path, which the ORAM makes independent of the data). Writes are in place,
/// as [`InPlace`] argues for bucket files: a torn slot fails its hash or tag and is rewritten
/// from the journal on recovery. With `fsync` the file and its directory are synced when it is
/// created and every write is `fdatasync`ed.
#[derive(Clone)]
struct Pack {
    /// Opened on first use, created on first write: opening an epoch's storage leaves nothing
    /// on disk by itself (a shredded or never-used epoch must have no objects).
    file: Arc<Mutex<Option<Arc<std::fs::File>>>>,
    path: PathBuf,
    slot: u64,
    object: usize,
    fsync: bool,
}

const PACK_HEADER: usize = 8;

impl Pack {
    fn new(path: PathBuf, bucket_bytes: usize, fsync: bool) -> Self {
        Self {
            file: Arc::default(),
            path,
            slot: (PACK_HEADER + bucket_bytes) as u64,
            object: bucket_bytes,
            fsync,
        }
    }

    /// The open file; `None` if it does not exist and `create` is false.
    fn file(&self, create: bool) -> std::io::Result<Option<Arc<std::fs::File>>> {
        let mut slot = self.file.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = slot.as_ref() {
            return Ok(Some(f.clone()));
        }
        let mut opts = std::fs::OpenOptions::new();
        opts.read(true).write(true);
        let f = match opts.open(&self.path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !create => return Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let dir = self.path.parent().unwrap_or(std::path::Path::new("."));
                std::fs::create_dir_all(dir)?;
                let f = opts.create(true).truncate(false).open(&self.path)?;
                if self.fsync {
                    f.sync_all()?;
                    std::fs::File::open(dir)?.sync_all()?;
                }
                f
            }
            Err(e) => return Err(e),
        };
        let f = Arc::new(f);
        *slot = Some(f.clone());
        Ok(Some(f))
    }

    /// The slots ever written (their length is not 0). Reads only the 8-byte headers: the file
    /// is sparse, mostly holes.
    fn written_nodes(&self) -> std::io::Result<Vec<u64>> {
        let Some(file) = self.file(false)? else {
            return Ok(Vec::new());
        };
        let slots = file.metadata()?.len().div_ceil(self.slot);
        let mut out = Vec::new();
        let mut header = [0u8; PACK_HEADER];
        for i in 0..slots {
            let got = read_at_most(&file, &mut header, i * self.slot)?;
            if got == PACK_HEADER && header != [0u8; PACK_HEADER] {
                out.push(i);
            }
        }
        Ok(out)
    }

    fn offset(&self, node: u64) -> Result<u64, OramError> {
        node.checked_mul(self.slot)
            .ok_or_else(|| OramError::Config(format!("bucket {node} is beyond any file")))
    }

    /// The objects of `nodes`, in order; `None` where a slot was never written. A slot whose
    /// length is not the object size is returned as it is, and fails the caller's hash check.
    fn read(&self, nodes: &[u64]) -> std::io::Result<Vec<Option<Bytes>>> {
        let Some(file) = self.file(false)? else {
            return Ok(vec![None; nodes.len()]);
        };
        let len = file.metadata()?.len();
        let mut out = Vec::with_capacity(nodes.len());
        for &node in nodes {
            let off = self.offset(node).map_err(std::io::Error::other)?;
            if off >= len {
                out.push(None);
                continue;
            }
            let mut buf = vec![0u8; self.slot as usize];
            let n = read_at_most(&file, &mut buf, off)?;
            buf.truncate(n);
            let stored = buf
                .get(..PACK_HEADER)
                .map(|h| u64::from_le_bytes(h.try_into().expect("8 bytes")));
            match stored {
                None | Some(0) => out.push(None),
                Some(l) if l == self.object as u64 && n == self.slot as usize => {
                    buf.drain(..PACK_HEADER);
                    out.push(Some(Bytes::from(buf)));
                }
                // Torn or tampered: hand back what is there, so the hash check names the bucket.
                Some(_) => out.push(Some(Bytes::from(buf))),
            }
        }
        Ok(out)
    }

    fn write(&self, objs: &[(u64, Vec<u8>)]) -> std::io::Result<()> {
        use std::os::unix::fs::FileExt;
        let file = self.file(true)?.expect("created");
        let mut slot = Vec::with_capacity(self.slot as usize);
        for (node, obj) in objs {
            if obj.len() != self.object {
                return Err(std::io::Error::other(format!(
                    "bucket {node}: object of {} bytes, slots hold {}",
                    obj.len(),
                    self.object
                )));
            }
            let off = self.offset(*node).map_err(std::io::Error::other)?;
            slot.clear();
            slot.extend_from_slice(&(obj.len() as u64).to_le_bytes());
            slot.extend_from_slice(obj);
            file.write_all_at(&slot, off)?;
        }
        if self.fsync {
            file.sync_data()?;
        }
        Ok(())
    }
}

/// The filesystem backend's bucket file of the epoch `name` under `root`, and the offset at
/// which bucket `node`'s object starts in it (after its 8-byte length). What a storage host (or
/// a test playing one) edits to tamper with a bucket.
pub fn fs_bucket_slot(
    root: &std::path::Path,
    name: &str,
    node: u64,
    block_bytes: usize,
) -> (PathBuf, u64) {
    let slot = (PACK_HEADER + crate::bucket::object_bytes(block_bytes)) as u64;
    (
        root.join(name.trim_matches('/')).join(PACK),
        node * slot + PACK_HEADER as u64,
    )
}

/// Every bucket written in the filesystem backend's file of the epoch `name`, as (node,
/// object): what a storage host can copy.
pub fn fs_buckets(
    root: &std::path::Path,
    name: &str,
    block_bytes: usize,
) -> std::io::Result<Vec<(u64, Vec<u8>)>> {
    let pack = Pack::new(
        root.join(name.trim_matches('/')).join(PACK),
        crate::bucket::object_bytes(block_bytes),
        false,
    );
    let nodes = pack.written_nodes()?;
    let objs = pack.read(&nodes)?;
    Ok(nodes
        .into_iter()
        .zip(objs)
        .filter_map(|(n, o)| Some((n, o?.to_vec())))
        .collect())
}

/// Reads into `buf` from `off` until it is full or the file ends; returns the bytes read.
fn read_at_most(f: &std::fs::File, buf: &mut [u8], off: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut done = 0;
    while done < buf.len() {
        match f.read_at(&mut buf[done..], off + done as u64) {
            Ok(0) => break,
            Ok(n) => done += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(done)
}

/// Runs `f` on the blocking pool (file I/O off the async executor).
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> Result<T, OramError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| OramError::Io(std::io::Error::other(e)))?
        .map_err(OramError::Io)
}

/// What the storage host observes, one event per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    GetBucket(u64),
    PutBucket(u64),
    PutJournal { bytes: usize },
    PutCheckpoint { bytes: usize },
    PutBlob { bytes: usize },
    GetBlob { bytes: usize },
    Other,
}

pub type Trace = Arc<Mutex<Vec<TraceEvent>>>;

/// One epoch's objects: `{prefix}/x/{name}` (separately sealed blobs), `{prefix}/b/{node}`, `{prefix}/j/{slot}` (a ring: record `seq` lives
/// in slot `seq mod journal_slots`, overwritten once a checkpoint covers it) and
/// `{prefix}/c/{seq}`.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    trace: Option<Trace>,
    journal_slots: u64,
    in_place: Option<InPlace>,
    pack: Option<Pack>,
}

fn seq_name(seq: u64) -> String {
    format!("{seq:020}")
}

impl Storage {
    /// A store built by the caller, with a journal ring of `journal_slots` objects.
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str, journal_slots: u64) -> Self {
        Self {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            trace: None,
            journal_slots: journal_slots.max(1),
            in_place: None,
            pack: None,
        }
    }

    /// Records every request from now on into `trace`.
    pub fn with_trace(mut self, trace: Trace) -> Self {
        self.trace = Some(trace);
        self
    }

    fn record(&self, e: TraceEvent) {
        if let Some(t) = &self.trace {
            t.lock().unwrap_or_else(|p| p.into_inner()).push(e);
        }
    }

    fn path(&self, kind: &str, name: &str) -> Path {
        Path::from(format!("{}/{kind}/{name}", self.prefix))
    }

    pub fn bucket_path(&self, node: u64) -> Path {
        self.path("b", &node.to_string())
    }

    /// The ring slot that holds record `seq`.
    pub fn journal_path(&self, seq: u64) -> Path {
        self.path("j", &seq_name(seq % self.journal_slots))
    }

    pub fn checkpoint_path(&self, seq: u64) -> Path {
        self.path("c", &seq_name(seq))
    }

    pub fn inner(&self) -> &Arc<dyn ObjectStore> {
        &self.store
    }

    async fn get_opt(&self, p: &Path) -> Result<Option<Bytes>, OramError> {
        match self.store.get(p).await {
            Ok(r) => Ok(Some(r.bytes().await?)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(e.into()),
        }
    }

    pub async fn get_bucket(&self, node: u64) -> Result<Option<Bytes>, OramError> {
        let mut v = self.get_buckets(&[node]).await?;
        Ok(v.pop().flatten())
    }

    /// The objects of `nodes`, in order (`None`: never written): one blocking task for the
    /// filesystem's pack, concurrent requests otherwise.
    pub async fn get_buckets(&self, nodes: &[u64]) -> Result<Vec<Option<Bytes>>, OramError> {
        for &n in nodes {
            self.record(TraceEvent::GetBucket(n));
        }
        match &self.pack {
            Some(pack) => {
                let (pack, nodes) = (pack.clone(), nodes.to_vec());
                blocking(move || pack.read(&nodes)).await
            }
            None => {
                futures::future::try_join_all(
                    nodes
                        .iter()
                        .map(|&n| self.get_opt_owned(self.bucket_path(n))),
                )
                .await
            }
        }
    }

    async fn get_opt_owned(&self, p: Path) -> Result<Option<Bytes>, OramError> {
        self.get_opt(&p).await
    }

    /// Buckets (on object stores) and journal slots are only ever replaced by objects of the
    /// same size, so on the filesystem backend an existing one is rewritten in place
    /// ([`InPlace`] says why that is safe); anything else is an ordinary atomic put.
    async fn put_rewritable(&self, p: &Path, obj: Vec<u8>) -> Result<(), OramError> {
        let obj = match &self.in_place {
            Some(ip) => match ip.overwrite(p, obj).await? {
                Some(obj) => obj,
                None => return Ok(()),
            },
            None => obj,
        };
        self.store.put(p, PutPayload::from(obj)).await?;
        Ok(())
    }

    pub async fn put_bucket(&self, node: u64, obj: Vec<u8>) -> Result<(), OramError> {
        self.put_buckets(vec![(node, obj)]).await
    }

    /// Writes the buckets: one blocking task for the filesystem's pack, concurrent requests
    /// otherwise.
    pub async fn put_buckets(&self, objs: Vec<(u64, Vec<u8>)>) -> Result<(), OramError> {
        for (n, _) in &objs {
            self.record(TraceEvent::PutBucket(*n));
        }
        match &self.pack {
            Some(pack) => {
                let pack = pack.clone();
                blocking(move || pack.write(&objs)).await
            }
            None => {
                futures::future::try_join_all(
                    objs.into_iter()
                        .map(|(n, o)| self.put_rewritable_owned(self.bucket_path(n), o)),
                )
                .await?;
                Ok(())
            }
        }
    }

    async fn put_rewritable_owned(&self, p: Path, obj: Vec<u8>) -> Result<(), OramError> {
        self.put_rewritable(&p, obj).await
    }

    pub async fn put_journal(&self, seq: u64, obj: Vec<u8>) -> Result<(), OramError> {
        self.record(TraceEvent::PutJournal { bytes: obj.len() });
        self.put_rewritable(&self.journal_path(seq), obj).await
    }

    pub async fn get_journal(&self, seq: u64) -> Result<Option<Bytes>, OramError> {
        self.record(TraceEvent::Other);
        self.get_opt(&self.journal_path(seq)).await
    }

    pub async fn put_checkpoint(&self, seq: u64, obj: Vec<u8>) -> Result<(), OramError> {
        self.record(TraceEvent::PutCheckpoint { bytes: obj.len() });
        self.store
            .put(&self.checkpoint_path(seq), PutPayload::from(obj))
            .await?;
        Ok(())
    }

    pub async fn get_checkpoint(&self, seq: u64) -> Result<Option<Bytes>, OramError> {
        self.record(TraceEvent::Other);
        self.get_opt(&self.checkpoint_path(seq)).await
    }

    pub fn blob_path(&self, name: &str) -> Path {
        self.path("x", name)
    }

    pub async fn put_blob(&self, name: &str, obj: Vec<u8>) -> Result<(), OramError> {
        self.record(TraceEvent::PutBlob { bytes: obj.len() });
        self.store
            .put(&self.blob_path(name), PutPayload::from(obj))
            .await?;
        Ok(())
    }

    /// The blob `name` if it is exactly `expected_bytes` long; the size is checked from the
    /// object's metadata before its body is read, so a host cannot make us buffer more.
    pub async fn get_blob(
        &self,
        name: &str,
        expected_bytes: u64,
    ) -> Result<Option<Bytes>, OramError> {
        self.record(TraceEvent::GetBlob {
            bytes: expected_bytes as usize,
        });
        let r = match self.store.get(&self.blob_path(name)).await {
            Ok(r) => r,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(e.into()),
        };
        if r.meta.size != expected_bytes {
            return Err(OramError::integrity("blob", "wrong size"));
        }
        Ok(Some(r.bytes().await?))
    }

    /// Sequence numbers of the objects of `kind` ("j" or "c"), ascending.
    pub async fn list_seqs(&self, kind: &str) -> Result<Vec<u64>, OramError> {
        self.record(TraceEvent::Other);
        let prefix = Path::from(format!("{}/{kind}", self.prefix));
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let mut seqs: Vec<u64> = metas
            .iter()
            .filter_map(|m| m.location.filename().and_then(|f| f.parse().ok()))
            .collect();
        seqs.sort_unstable();
        Ok(seqs)
    }

    pub async fn delete(&self, p: &Path) -> Result<(), OramError> {
        self.record(TraceEvent::Other);
        match self.store.delete(p).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Deletes every object of this epoch; returns how many there were.
    pub async fn delete_all(&self) -> Result<u64, OramError> {
        self.record(TraceEvent::Other);
        let prefix = Path::from(self.prefix.clone());
        let metas: Vec<_> = self.store.list(Some(&prefix)).try_collect().await?;
        let pack = Path::from(format!("{}/{PACK}", self.prefix));
        let mut n = 0;
        for m in metas {
            // The pack holds many buckets: each written one counts as an object.
            n += match (&self.pack, m.location == pack) {
                (Some(p), true) => {
                    let p = p.clone();
                    blocking(move || p.written_nodes()).await?.len() as u64
                }
                _ => 1,
            };
            self.delete(&m.location).await?;
        }
        if let Some(p) = &self.pack {
            // Closed, so a later write cannot land in the deleted file.
            *p.file.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
        Ok(n)
    }
}
