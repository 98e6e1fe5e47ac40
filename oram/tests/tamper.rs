//! A storage host that flips a bit, swaps two buckets, replays an old bucket or rolls the
//! whole store back is caught with an integrity error, and nothing from the tampered objects
//! is served.

mod common;

use common::*;
use object_store::ObjectStoreExt;
use smidl_oram::{Backend, Config, Oram, OramError};

const NAME: &str = "epoch-test";

/// Four blocks, no tree top: height 2, and every path goes through the root bucket 0.
async fn filled() -> (
    tempfile::TempDir,
    std::sync::Arc<object_store::memory::InMemory>,
    Oram,
) {
    let dir = tempfile::tempdir().unwrap();
    let (store, cfg) = memory(params(4, 8, 0), dir.path());
    let mut oram = Oram::create(cfg).await.unwrap();
    for a in 0..4 {
        oram.write(a, &block(100 + a, 8)).await.unwrap();
    }
    // Make sure both children of the root exist.
    for i in 0..40 {
        oram.read(i % 4).await.unwrap();
    }
    (dir, store, oram)
}

fn assert_integrity(r: Result<Vec<u8>, OramError>, what: &str) {
    match r {
        Err(OramError::Integrity { .. }) => {}
        other => panic!("{what}: expected an integrity error, got {other:?}"),
    }
}

/// After a detected tampering the handle refuses to serve anything.
async fn refuses_afterwards(oram: &mut Oram) {
    for a in 0..4 {
        assert!(matches!(oram.read(a).await, Err(OramError::Poisoned)));
    }
}

#[tokio::test]
async fn a_flipped_bit_anywhere_in_a_bucket_is_detected() {
    // Bit positions in the header (version, child hashes), nonce, ciphertext and tag.
    for pos in [0usize, 9, 40, 75, 80, 200, usize::MAX] {
        let (_d, store, mut oram) = filled().await;
        let p = bucket_path(NAME, 0);
        let mut obj = get(store.as_ref(), &p).await.unwrap().to_vec();
        let i = pos.min(obj.len() - 1);
        obj[i] ^= 0x10;
        put(store.as_ref(), &p, obj.into()).await;
        assert_integrity(oram.read(1).await, &format!("bit flipped at byte {i}"));
        refuses_afterwards(&mut oram).await;
    }
}

#[tokio::test]
async fn swapped_buckets_are_detected() {
    let (_d, store, mut oram) = filled().await;
    let (p1, p2) = (bucket_path(NAME, 1), bucket_path(NAME, 2));
    let (o1, o2) = (
        get(store.as_ref(), &p1).await.unwrap(),
        get(store.as_ref(), &p2).await.unwrap(),
    );
    put(store.as_ref(), &p1, o2).await;
    put(store.as_ref(), &p2, o1).await;
    // Every path goes through bucket 1 or 2.
    assert_integrity(oram.read(0).await, "swapped buckets");
    refuses_afterwards(&mut oram).await;
}

#[tokio::test]
async fn a_replayed_authentic_old_bucket_is_detected() {
    let (_d, store, mut oram) = filled().await;
    let p = bucket_path(NAME, 0);
    let old = get(store.as_ref(), &p).await.unwrap();
    oram.write(2, &block(999, 8)).await.unwrap();
    put(store.as_ref(), &p, old.clone()).await;
    // The attack works against authenticated encryption alone: the old object is genuine.
    assert!(
        oram.open_unverified(0, &old).is_ok(),
        "AEAD alone accepts the replay"
    );
    assert_integrity(oram.read(2).await, "replayed bucket");
    refuses_afterwards(&mut oram).await;
}

#[tokio::test]
async fn a_deleted_or_planted_bucket_is_detected() {
    let (_d, store, mut oram) = filled().await;
    store.delete(&bucket_path(NAME, 0)).await.unwrap();
    assert_integrity(oram.read(0).await, "deleted bucket");

    // A bucket where the tree records none (here: a fresh epoch whose root was never written).
    let dir = tempfile::tempdir().unwrap();
    let (store, cfg) = memory(params(4, 8, 0), dir.path());
    let mut fresh = Oram::create(cfg).await.unwrap();
    put(store.as_ref(), &bucket_path(NAME, 0), vec![0u8; 64].into()).await;
    assert_integrity(fresh.read(0).await, "planted bucket");
}

#[tokio::test]
async fn rolling_the_whole_store_back_is_detected_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = params(16, 8, 3);
    p.checkpoint_every = 5;
    let (store, cfg) = memory(p.clone(), dir.path());
    let mut oram = Oram::create(cfg).await.unwrap();
    for i in 0..12 {
        oram.write(i % 16, &block(i, 8)).await.unwrap();
    }
    let snap = snapshot(store.as_ref()).await;
    for i in 0..3 {
        oram.write(i, &block(1000 + i, 8)).await.unwrap();
    }
    drop(oram);
    // A consistent, authentic, older store: only the local anchor tells it is stale.
    restore(store.as_ref(), &snap).await;
    let cfg = Config::new(p, Backend::Custom(store.clone()), NAME, dir.path());
    match Oram::open(cfg).await {
        Err(OramError::Integrity { .. }) => {}
        Err(e) => panic!("expected an integrity error, got {e}"),
        Ok(_) => panic!("a rolled-back store was opened as fresh"),
    }
}

#[tokio::test]
async fn a_tampered_journal_record_is_detected_on_reopen() {
    let dir = tempfile::tempdir().unwrap();
    let p = params(16, 8, 3);
    let (store, cfg) = memory(p.clone(), dir.path());
    let mut oram = Oram::create(cfg).await.unwrap();
    for i in 0..4 {
        oram.write(i, &block(i, 8)).await.unwrap();
    }
    drop(oram);
    let jp = object_store::path::Path::from(format!("{NAME}/j/{:020}", 4));
    let mut rec = get(store.as_ref(), &jp).await.unwrap().to_vec();
    rec[100] ^= 1;
    put(store.as_ref(), &jp, rec.into()).await;
    let cfg = Config::new(p, Backend::Custom(store.clone()), NAME, dir.path());
    assert!(matches!(
        Oram::open(cfg).await,
        Err(OramError::Integrity { .. })
    ));
}

#[tokio::test]
async fn tampering_with_files_on_the_local_filesystem_backend_is_detected() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("storage");
    let cfg = Config::new(
        params(4, 8, 0),
        Backend::Fs { root: root.clone() },
        NAME,
        dir.path().join("keys"),
    );
    let mut oram = Oram::create(cfg).await.unwrap();
    for a in 0..4 {
        oram.write(a, &block(a, 8)).await.unwrap();
    }
    let (file, off) = smidl_oram::fs_bucket_slot(&root, NAME, 0, 8);
    let mut bytes = std::fs::read(&file).unwrap();
    let at = off as usize + smidl_oram::object_bytes(8) / 2;
    bytes[at] ^= 0x01;
    std::fs::write(&file, bytes).unwrap();
    assert_integrity(oram.read(3).await, "a bit flipped on disk");
}
