//! The ORAM returns what was written, across tree-top sizes, checkpoints and reopening.

mod common;

use std::collections::HashMap;

use common::*;
use smidl_oram::{Backend, Config, Oram, OramError, Params};

async fn model_check(capacity: u64, treetop_buckets: usize, ops: usize, format: bool) {
    let dir = tempfile::tempdir().unwrap();
    let mut p = params(capacity, 12, treetop_buckets);
    p.checkpoint_every = 37;
    let (_store, cfg) = memory(p, dir.path());
    let mut oram = Oram::create(cfg.clone()).await.unwrap();
    if format {
        let g = oram.geometry().clone();
        let n = oram.format().await.unwrap();
        assert_eq!(
            n,
            g.nodes() - g.cached_nodes(),
            "every remote bucket is written"
        );
        // A formatted epoch reopens from its first checkpoint.
        drop(oram);
        oram = Oram::open(cfg).await.unwrap();
    }
    let mut model: HashMap<u64, Vec<u8>> = HashMap::new();
    let mut max_stash = 0;
    for i in 0..ops as u64 {
        let mut r = [0u8; 8];
        getrandom::getrandom(&mut r).unwrap();
        let addr = u64::from_le_bytes(r) % capacity;
        if i % 3 == 0 {
            let got = oram.read(addr).await.unwrap();
            let want = model.get(&addr).cloned().unwrap_or_else(|| vec![0u8; 12]);
            assert_eq!(got, want, "read {addr} at op {i}");
        } else {
            let b = block(i, 12);
            oram.write(addr, &b).await.unwrap();
            model.insert(addr, b);
        }
        max_stash = max_stash.max(oram.stash_len());
    }
    assert!(max_stash <= oram.geometry().stash_bound);
    for (a, v) in &model {
        assert_eq!(&oram.read(*a).await.unwrap(), v);
    }
}

#[tokio::test]
async fn reads_what_was_written_with_and_without_a_tree_top() {
    model_check(64, 0, 800, false).await;
    model_check(64, 7, 800, false).await;
    model_check(100, 1 << 20, 800, false).await;
    model_check(1, 0, 50, false).await;
    model_check(64, 0, 400, true).await;
    model_check(64, 7, 400, true).await;
}

#[tokio::test]
async fn reopening_replays_checkpoint_and_journal() {
    for every in [4u32, 1000] {
        let dir = tempfile::tempdir().unwrap();
        let mut p = params(32, 8, 3);
        p.checkpoint_every = every;
        let (store, cfg) = memory(p.clone(), dir.path());
        let mut model = HashMap::new();
        {
            let mut oram = Oram::create(cfg.clone()).await.unwrap();
            for i in 0..90u64 {
                let a = (i * 7) % 32;
                oram.write(a, &block(i, 8)).await.unwrap();
                model.insert(a, block(i, 8));
            }
        }
        let mut cfg2 = Config::new(p, Backend::Custom(store), "epoch-test", dir.path());
        cfg2.sync = true;
        let mut oram = Oram::open(cfg2).await.unwrap();
        assert_eq!(oram.seq(), 90);
        for (a, v) in &model {
            assert_eq!(&oram.read(*a).await.unwrap(), v, "every={every} addr={a}");
        }
    }
}

#[tokio::test]
async fn bad_input_is_refused_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = params(8, 8, 0);
    p.max_accesses = 5;
    let (_s, cfg) = memory(p, dir.path());
    let mut oram = Oram::create(cfg.clone()).await.unwrap();
    assert!(matches!(
        oram.read(8).await,
        Err(OramError::AddressOutOfRange { address: 8, .. })
    ));
    assert!(matches!(
        oram.write(1, &[0u8; 9]).await,
        Err(OramError::BlockLength {
            expected: 8,
            got: 9
        })
    ));
    assert_eq!(oram.seq(), 0, "refused input made no access");
    for i in 0..5 {
        oram.write(i, &block(i, 8)).await.unwrap();
    }
    assert!(matches!(
        oram.read(0).await,
        Err(OramError::EpochExhausted { max: 5 })
    ));
    assert!(
        Oram::create(cfg).await.is_err(),
        "an epoch is never re-created over itself"
    );
    assert!(Geometry(Params::new(0, 8, 1)).is_err());
    assert!(Geometry(Params::new(8, 0, 1)).is_err());
}

#[allow(non_snake_case)]
fn Geometry(p: Params) -> Result<smidl_oram::Geometry, OramError> {
    smidl_oram::Geometry::new(&p)
}

#[tokio::test]
async fn the_key_never_lives_inside_the_storage_it_protects() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("data");
    let cfg = Config::new(
        params(8, 8, 0),
        Backend::Fs { root: root.clone() },
        "e",
        root.join("keys"),
    );
    let err = Oram::create(cfg).await.err().expect("refused");
    assert!(matches!(err, OramError::Config(_)), "{err}");
}

/// The journal is a ring of `checkpoint_every` slots. A process that dies after its last record
/// but before the checkpoint due after it leaves the ring full; if the next record overwrote the
/// oldest slot before a checkpoint covered it, a second crash would lose the epoch. Simulated
/// here by removing each checkpoint right after it is written.
#[tokio::test]
async fn a_full_journal_ring_is_checkpointed_before_it_is_reused() {
    let dir = tempfile::tempdir().unwrap();
    let mut p = params(16, 8, 0);
    p.checkpoint_every = 4;
    let (store, cfg) = memory(p, dir.path());
    let ckpt = |s: u64| object_store::path::Path::from(format!("epoch-test/c/{s:020}"));
    let drop_ckpt = |s: u64| {
        let store = store.clone();
        async move {
            let _ = object_store::ObjectStoreExt::delete(store.as_ref(), &ckpt(s)).await;
        }
    };
    let mut model = HashMap::new();
    let mut oram = Oram::create(cfg.clone()).await.unwrap();
    for i in 0..4u64 {
        oram.write(i, &block(i + 1, 8)).await.unwrap();
        model.insert(i, block(i + 1, 8));
    }
    drop(oram);
    drop_ckpt(4).await; // died before checkpoint 4 was written
    let mut oram = Oram::open(cfg.clone()).await.unwrap();
    oram.write(9, &block(99, 8)).await.unwrap();
    model.insert(9, block(99, 8));
    drop(oram);
    drop_ckpt(5).await; // and again before any checkpoint after record 5
    let mut oram = Oram::open(cfg).await.unwrap();
    assert_eq!(oram.seq(), 5);
    for (a, v) in &model {
        assert_eq!(&oram.read(*a).await.unwrap(), v, "block {a}");
    }
}
