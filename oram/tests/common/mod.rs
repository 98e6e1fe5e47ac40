//! Shared test helpers: in-memory stores the test can tamper with, and a real S3-speaking
//! server (`s3s-fs`, installed by `make setup`) started on loopback.
#![allow(dead_code)]

use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::TryStreamExt;
use object_store::memory::InMemory;
use object_store::path::Path as ObjPath;
use object_store::{ObjectStore, ObjectStoreExt, PutPayload};
use smidl_oram::{Backend, Config, Params, S3Config};

pub fn params(capacity: u64, block_bytes: usize, treetop_buckets: usize) -> Params {
    let mut p = Params::new(capacity, block_bytes, 1 << 16);
    p.treetop_bytes = treetop_buckets * smidl_oram::bucket_plain_bytes(block_bytes);
    p
}

pub fn memory(p: Params, state: &Path) -> (Arc<InMemory>, Config) {
    let store = Arc::new(InMemory::new());
    let cfg = Config::new(p, Backend::Custom(store.clone()), "epoch-test", state);
    (store, cfg)
}

pub fn block(v: u64, len: usize) -> Vec<u8> {
    let mut b = vec![0u8; len];
    let n = len.min(8);
    b[..n].copy_from_slice(&v.to_le_bytes()[..n]);
    b
}

pub fn bucket_path(name: &str, node: u64) -> ObjPath {
    ObjPath::from(format!("{name}/b/{node}"))
}

pub async fn get(store: &dyn ObjectStore, p: &ObjPath) -> Option<Bytes> {
    match store.get(p).await {
        Ok(r) => Some(r.bytes().await.unwrap()),
        Err(object_store::Error::NotFound { .. }) => None,
        Err(e) => panic!("{e}"),
    }
}

pub async fn put(store: &dyn ObjectStore, p: &ObjPath, b: Bytes) {
    store.put(p, PutPayload::from(b)).await.unwrap();
}

/// Every object in the store, by path.
pub async fn snapshot(store: &dyn ObjectStore) -> Vec<(ObjPath, Bytes)> {
    let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
    let mut out = Vec::new();
    for m in metas {
        out.push((m.location.clone(), get(store, &m.location).await.unwrap()));
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

/// Makes the store hold exactly `snap` (a storage host rolling everything back).
pub async fn restore(store: &dyn ObjectStore, snap: &[(ObjPath, Bytes)]) {
    let metas: Vec<_> = store.list(None).try_collect().await.unwrap();
    for m in metas {
        store.delete(&m.location).await.unwrap();
    }
    for (p, b) in snap {
        put(store, p, b.clone()).await;
    }
}

/// A real S3-compatible server (`s3s-fs`) on a loopback port, killed on drop.
pub struct S3Server {
    child: Child,
    pub root: tempfile::TempDir,
    pub config: S3Config,
}

fn s3s_fs_binary() -> PathBuf {
    let mut candidates: Vec<PathBuf> = std::env::var_os("PATH")
        .map(|p| {
            std::env::split_paths(&p)
                .map(|d| d.join("s3s-fs"))
                .collect()
        })
        .unwrap_or_default();
    if let Some(home) = std::env::var_os("CARGO_HOME") {
        candidates.push(PathBuf::from(home).join("bin/s3s-fs"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        candidates.push(PathBuf::from(home).join(".cargo/bin/s3s-fs"));
    }
    candidates
        .into_iter()
        .find(|c| c.is_file())
        .expect("s3s-fs (the loopback S3 server these tests run against) is not installed: run `make setup`")
}

impl S3Server {
    pub fn start() -> Self {
        let root = tempfile::tempdir().unwrap();
        let bucket = "smidl-oram";
        std::fs::create_dir_all(root.path().join(bucket)).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let (ak, sk) = ("smidl-test-access", "smidl-test-secret-key");
        let child = Command::new(s3s_fs_binary())
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", ak, "--secret-key", sk])
            .arg(root.path())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start s3s-fs");
        let deadline = Instant::now() + Duration::from_secs(20);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "s3s-fs did not listen on port {port}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        Self {
            child,
            root,
            config: S3Config {
                endpoint: format!("http://127.0.0.1:{port}"),
                bucket: bucket.into(),
                region: "us-east-1".into(),
                access_key_id: ak.into(),
                secret_access_key: sk.into(),
                allow_http: true,
            },
        }
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The upper tail of chi-square with `k` degrees of freedom at z standard deviations
/// (Wilson–Hilferty): a threshold exceeded by chance with probability ≈ Φ(-z).
pub fn chi2_threshold(k: f64, z: f64) -> f64 {
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
}

/// Pearson's chi-square of observed counts against a uniform expectation.
pub fn chi2_uniform(counts: &[u64]) -> f64 {
    let n: u64 = counts.iter().sum();
    let e = n as f64 / counts.len() as f64;
    counts.iter().map(|&c| (c as f64 - e).powi(2) / e).sum()
}

/// Chi-square test of homogeneity of two count vectors over the same categories.
pub fn chi2_two_sample(a: &[u64], b: &[u64]) -> f64 {
    let (na, nb) = (a.iter().sum::<u64>() as f64, b.iter().sum::<u64>() as f64);
    let mut x = 0.0;
    for (&ca, &cb) in a.iter().zip(b) {
        let t = (ca + cb) as f64;
        if t == 0.0 {
            continue;
        }
        let (ea, eb) = (t * na / (na + nb), t * nb / (na + nb));
        x += (ca as f64 - ea).powi(2) / ea + (cb as f64 - eb).powi(2) / eb;
    }
    x
}
