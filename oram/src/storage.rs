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
    /// A directory on the local filesystem (the embedded default). Writes are atomic
    /// (staged and renamed by `object_store`).
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
            Self::Fs { root } => {
                std::fs::create_dir_all(root)?;
                Arc::new(LocalFileSystem::new_with_prefix(root)?)
            }
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
}

/// What the storage host observes, one event per request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TraceEvent {
    GetBucket(u64),
    PutBucket(u64),
    PutJournal { bytes: usize },
    PutCheckpoint { bytes: usize },
    Other,
}

pub type Trace = Arc<Mutex<Vec<TraceEvent>>>;

/// One epoch's objects: `{prefix}/b/{node}`, `{prefix}/j/{seq}`, `{prefix}/c/{seq}`.
#[derive(Clone)]
pub struct Storage {
    store: Arc<dyn ObjectStore>,
    prefix: String,
    trace: Option<Trace>,
}

fn seq_name(seq: u64) -> String {
    format!("{seq:020}")
}

impl Storage {
    pub fn new(store: Arc<dyn ObjectStore>, prefix: &str) -> Self {
        Self {
            store,
            prefix: prefix.trim_matches('/').to_string(),
            trace: None,
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

    pub fn journal_path(&self, seq: u64) -> Path {
        self.path("j", &seq_name(seq))
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
        self.record(TraceEvent::GetBucket(node));
        self.get_opt(&self.bucket_path(node)).await
    }

    pub async fn put_bucket(&self, node: u64, obj: Vec<u8>) -> Result<(), OramError> {
        self.record(TraceEvent::PutBucket(node));
        self.store
            .put(&self.bucket_path(node), PutPayload::from(obj))
            .await?;
        Ok(())
    }

    pub async fn put_journal(&self, seq: u64, obj: Vec<u8>) -> Result<(), OramError> {
        self.record(TraceEvent::PutJournal { bytes: obj.len() });
        self.store
            .put(&self.journal_path(seq), PutPayload::from(obj))
            .await?;
        Ok(())
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
        let mut n = 0;
        for m in metas {
            self.delete(&m.location).await?;
            n += 1;
        }
        Ok(n)
    }
}
