//! The same ORAM on the embedded filesystem backend and on a real S3-speaking server
//! (`s3s-fs` on loopback), and shredding: after it, nothing left on the machine opens the
//! epoch's objects, even copies the storage host kept.

mod common;

use std::collections::HashMap;
use std::path::Path;

use common::*;
use smidl_oram::{opens_with, verify_tree, Backend, Config, Oram, OramError};

async fn workload(cfg: Config) -> Oram {
    let mut oram = Oram::create(cfg.clone()).await.unwrap();
    let mut model = HashMap::new();
    for i in 0..150u64 {
        let a = (i * 13) % 40;
        oram.write(a, &block(i, 32)).await.unwrap();
        model.insert(a, block(i, 32));
    }
    drop(oram);
    let mut oram = Oram::open(cfg).await.unwrap();
    for (a, v) in &model {
        assert_eq!(&oram.read(*a).await.unwrap(), v);
    }
    oram
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                files_under(&p, out);
            } else {
                out.push(p);
            }
        }
    }
}

/// Shreds the epoch after copying its objects (a host that keeps everything), then tries
/// every 32-byte window of every file left in `dirs` as the key of a copied bucket.
async fn shred_and_attack(mut oram: Oram, dirs: &[&Path]) {
    let g = oram.geometry().clone();
    let epoch = oram.epoch_id();
    let root = oram.seal_tree().await.unwrap();
    let checked = verify_tree(oram.storage(), root).await.unwrap();
    assert!(
        checked as u64 > g.cached_nodes(),
        "the published root covers the tree: {checked}"
    );
    let copy = oram.storage().get_bucket(0).await.unwrap().unwrap();

    let report = oram.shred().await.unwrap();
    assert_eq!(report.tree_root, root);
    assert!(report.objects_deleted >= checked);
    let mut left = Vec::new();
    for d in dirs {
        files_under(d, &mut left);
    }
    let mut windows = 0u64;
    for f in &left {
        let bytes = std::fs::read(f).unwrap();
        for w in bytes.windows(32) {
            windows += 1;
            assert!(
                !opens_with(w.try_into().unwrap(), &epoch, 0, &copy, &g),
                "{} still holds the epoch key",
                f.display()
            );
        }
    }
    println!(
        "after shredding: {} files, {windows} key candidates, none opens the copy",
        left.len()
    );
}

#[tokio::test]
async fn local_filesystem_backend_round_trips_reopens_and_shreds() {
    let dir = tempfile::tempdir().unwrap();
    let (root, state) = (dir.path().join("storage"), dir.path().join("keys"));
    let cfg = Config::new(
        params(40, 32, 7),
        Backend::Fs { root: root.clone() },
        "epoch-7",
        &state,
    );
    let oram = workload(cfg.clone()).await;
    // A sibling epoch in the same storage survives this one's shredding.
    let other = Config::new(
        params(8, 32, 0),
        Backend::Fs { root: root.clone() },
        "epoch-8",
        &state,
    );
    let mut o8 = Oram::create(other.clone()).await.unwrap();
    o8.write(1, &block(5, 32)).await.unwrap();
    drop(o8);

    shred_and_attack(oram, &[&root, &state]).await;
    let mut left = Vec::new();
    files_under(&root.join("epoch-7"), &mut left);
    assert!(left.is_empty(), "objects left: {left:?}");
    assert!(matches!(
        Oram::open(cfg).await,
        Err(OramError::KeyFile { .. })
    ));
    let mut o8 = Oram::open(other).await.unwrap();
    assert_eq!(o8.read(1).await.unwrap(), block(5, 32));
}

#[tokio::test]
async fn s3_backend_round_trips_reopens_and_shreds() {
    let server = S3Server::start();
    let dir = tempfile::tempdir().unwrap();
    let cfg = Config::new(
        params(40, 32, 7),
        Backend::S3(server.config.clone()),
        "epoch-3",
        dir.path(),
    );
    let oram = workload(cfg.clone()).await;
    // The objects really are on the server.
    let mut on_server = Vec::new();
    files_under(server.root.path(), &mut on_server);
    assert!(
        on_server.len() > 10,
        "{} files on the S3 server",
        on_server.len()
    );
    shred_and_attack(oram, &[server.root.path(), dir.path()]).await;
    assert!(matches!(
        Oram::open(cfg).await,
        Err(OramError::KeyFile { .. })
    ));
}
