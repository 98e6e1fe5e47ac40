//! The record layer: values of any size by key over one ORAM, large ones as sealed blobs.

mod common;

use std::collections::HashMap;

use common::*;
use smidl_oram::{Layout, Oram, OramError, RecordKey, Records, Trace, TraceEvent};

const B: usize = 128;
const LAYOUT: Layout = Layout {
    entries: 200,
    inline_max: 4 * B as u64,
};

fn key(i: u64) -> RecordKey {
    let mut k = [0u8; 32];
    k[..8].copy_from_slice(&i.to_le_bytes());
    k
}

fn value(seed: u64, len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (seed.wrapping_mul(31).wrapping_add(i as u64 * 7) % 251) as u8)
        .collect()
}

#[tokio::test]
async fn values_of_every_size_round_trip_and_survive_reopening() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cfg) = memory(params(512, B, 2), dir.path());
    let mut rec = Records::open(Oram::create(cfg.clone()).await.unwrap(), LAYOUT)
        .await
        .unwrap();
    // Empty, one byte, block edges, several blocks, the inline limit, and blobs above it.
    let sizes = [
        0,
        1,
        B - 1,
        B,
        B + 1,
        3 * B + 5,
        4 * B,
        4 * B + 1,
        20 * B + 3,
    ];
    let mut model: HashMap<RecordKey, Vec<u8>> = HashMap::new();
    for (i, &len) in sizes.iter().enumerate() {
        let v = value(i as u64, len);
        rec.put(&key(i as u64), &v).await.unwrap();
        model.insert(key(i as u64), v);
    }
    // Replace an inline value with a blob and a blob with an inline value; remove one.
    let v = value(100, 9 * B);
    rec.put(&key(1), &v).await.unwrap();
    model.insert(key(1), v);
    let v = value(101, 7);
    rec.put(&key(8), &v).await.unwrap();
    model.insert(key(8), v);
    assert!(rec.remove(&key(3)).await.unwrap());
    assert!(!rec.remove(&key(3)).await.unwrap());
    model.remove(&key(3));
    for (k, v) in &model {
        assert_eq!(rec.get(k).await.unwrap().as_ref(), Some(v));
    }
    assert_eq!(rec.get(&key(3)).await.unwrap(), None);
    assert_eq!(rec.len(), model.len());
    drop(rec);

    let cfg = smidl_oram::Config::new(
        cfg.params.clone(),
        smidl_oram::Backend::Custom(store),
        "epoch-test",
        dir.path(),
    );
    let mut rec = Records::open(Oram::open(cfg.clone()).await.unwrap(), LAYOUT)
        .await
        .unwrap();
    assert_eq!(rec.len(), model.len());
    for (k, v) in &model {
        assert_eq!(
            rec.get(k).await.unwrap().as_ref(),
            Some(v),
            "after reopening"
        );
    }
    // Another layout is refused rather than misread.
    let oram = Oram::open(smidl_oram::Config::new(
        cfg.params.clone(),
        cfg.backend.clone(),
        "epoch-test",
        dir.path(),
    ));
    drop(rec);
    let other = Layout {
        entries: 10,
        ..LAYOUT
    };
    assert!(matches!(
        Records::open(oram.await.unwrap(), other).await,
        Err(OramError::Config(_))
    ));
}

#[tokio::test]
async fn a_full_store_refuses_and_keeps_what_it_has() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, cfg) = memory(params(16, B, 0), dir.path());
    let layout = Layout {
        entries: 3,
        inline_max: 64 * B as u64,
    };
    let mut rec = Records::open(Oram::create(cfg).await.unwrap(), layout)
        .await
        .unwrap();
    // 16 blocks: the header, the directory, the rest for values.
    let data = 16 - 1 - layout.directory_blocks(B) as usize;
    assert!(matches!(
        rec.put(&key(0), &value(0, (data + 1) * B)).await,
        Err(OramError::Full(_))
    ));
    rec.put(&key(0), &value(0, data * B)).await.unwrap();
    assert!(matches!(
        rec.put(&key(1), &value(1, 1)).await,
        Err(OramError::Full(_))
    ));
    rec.put(&key(1), &[]).await.unwrap();
    rec.put(&key(2), &[]).await.unwrap();
    assert!(matches!(
        rec.put(&key(3), &[]).await,
        Err(OramError::Full(_))
    ));
    assert_eq!(rec.entries_left(), 0);
    assert_eq!(rec.get(&key(0)).await.unwrap(), Some(value(0, data * B)));
}

async fn blob_objects(store: &object_store::memory::InMemory) -> Vec<object_store::path::Path> {
    snapshot(store)
        .await
        .into_iter()
        .map(|(p, _)| p)
        .filter(|p| p.as_ref().contains("/x/"))
        .collect()
}

/// The host swaps two blobs, replays an older one, or flips a bit: each is caught by the hash the
/// directory (inside the ORAM) holds, not served.
#[tokio::test]
async fn modified_swapped_or_replayed_blobs_are_detected() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cfg) = memory(params(256, B, 2), dir.path());
    let mut rec = Records::open(Oram::create(cfg).await.unwrap(), LAYOUT)
        .await
        .unwrap();
    let (a, b) = (value(1, 10 * B), value(2, 10 * B));
    rec.put(&key(1), &a).await.unwrap();
    let pa = blob_objects(&store).await[0].clone();
    rec.put(&key(2), &b).await.unwrap();
    let blobs = blob_objects(&store).await;
    assert_eq!(blobs.len(), 2);
    let pb = blobs.into_iter().find(|p| *p != pa).unwrap();
    let (oa, ob) = (
        get(store.as_ref(), &pa).await.unwrap(),
        get(store.as_ref(), &pb).await.unwrap(),
    );

    // Swap (both are authentic objects of this epoch).
    put(store.as_ref(), &pa, ob.clone()).await;
    put(store.as_ref(), &pb, oa.clone()).await;
    for k in [1, 2] {
        assert!(matches!(
            rec.get(&key(k)).await,
            Err(OramError::Integrity { .. })
        ));
    }
    put(store.as_ref(), &pa, oa.clone()).await;
    put(store.as_ref(), &pb, ob.clone()).await;
    assert_eq!(rec.get(&key(1)).await.unwrap(), Some(a.clone()));

    // Replay: key 1 gets a new value (a new blob); the host puts the old object where the
    // new one is.
    let a2 = value(3, 10 * B);
    rec.put(&key(1), &a2).await.unwrap();
    let now = blob_objects(&store).await;
    assert_eq!(now.len(), 2, "the replaced blob was deleted");
    assert!(!now.contains(&pa), "the old blob of key 1 is gone");
    let new_path = now.iter().find(|p| **p != pb).unwrap().clone();
    put(store.as_ref(), &new_path, oa.clone()).await;
    assert!(matches!(
        rec.get(&key(1)).await,
        Err(OramError::Integrity { .. })
    ));

    assert_eq!(rec.get(&key(2)).await.unwrap(), Some(b.clone()));
    // A flipped bit, and a longer object (refused from its size, before its body is read).
    let mut flipped = ob.to_vec();
    flipped[40] ^= 1;
    put(store.as_ref(), &pb, flipped.into()).await;
    assert!(matches!(
        rec.get(&key(2)).await,
        Err(OramError::Integrity { .. })
    ));
    let mut longer = ob.to_vec();
    longer.push(0);
    put(store.as_ref(), &pb, longer.into()).await;
    assert!(matches!(
        rec.get(&key(2)).await,
        Err(OramError::Integrity { .. })
    ));
}

/// Reading two different records of one size looks the same to the host: the same requests in
/// the same order, each on one path (which path is the ORAM's uniform choice).
#[tokio::test]
async fn reading_different_records_of_one_size_makes_the_same_requests() {
    let dir = tempfile::tempdir().unwrap();
    let (_s, mut cfg) = memory(params(256, B, 2), dir.path());
    let trace: Trace = Default::default();
    cfg.trace = Some(trace.clone());
    let mut rec = Records::open(Oram::create(cfg).await.unwrap(), LAYOUT)
        .await
        .unwrap();
    for i in 0..6 {
        rec.put(&key(i), &value(i, 3 * B)).await.unwrap();
    }
    let shape = |events: &[TraceEvent]| -> Vec<&'static str> {
        events
            .iter()
            .map(|e| match e {
                TraceEvent::GetBucket(_) => "get",
                TraceEvent::PutBucket(_) => "put",
                TraceEvent::PutJournal { .. } => "journal",
                TraceEvent::PutCheckpoint { .. } => "checkpoint",
                _ => "other",
            })
            .collect()
    };
    let mut shapes = Vec::new();
    for k in [0, 5, 0, 3] {
        trace.lock().unwrap().clear();
        rec.get(&key(k)).await.unwrap();
        shapes.push(shape(&trace.lock().unwrap()));
    }
    assert!(!shapes[0].is_empty());
    assert!(shapes.iter().all(|s| s == &shapes[0]), "{shapes:?}");
}

/// Shredding takes the blobs with it: none is left on the storage.
#[tokio::test]
async fn shredding_deletes_blobs_and_values() {
    let dir = tempfile::tempdir().unwrap();
    let (store, cfg) = memory(params(256, B, 2), dir.path());
    let mut rec = Records::open(Oram::create(cfg).await.unwrap(), LAYOUT)
        .await
        .unwrap();
    rec.put(&key(1), &value(1, 10 * B)).await.unwrap();
    rec.put(&key(2), &value(2, B)).await.unwrap();
    assert_eq!(blob_objects(&store).await.len(), 1);
    let report = rec.shred().await.unwrap();
    assert!(report.objects_deleted > 0);
    assert!(snapshot(store.as_ref()).await.is_empty());
}
