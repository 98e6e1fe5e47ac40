//! What the storage host sees does not depend on what is asked: for two logical access
//! sequences of the same length, the physical trace is statistically indistinguishable, and
//! every write-back changes every object it touches.

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use common::*;
use smidl_oram::{Oram, Trace, TraceEvent};

const CAPACITY: u64 = 256;
const ACCESSES: usize = 3000;
/// Chi-square thresholds at 5 standard deviations: a false alarm has probability ≈ 3·10^-7.
const Z: f64 = 5.0;

/// Runs `ops` (address, write?) on a fresh ORAM with no tree top; returns the leaf reached by
/// each access, read off the physical trace.
async fn leaves_touched(ops: &[(u64, bool)]) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let trace: Trace = Arc::new(Mutex::new(Vec::new()));
    let (_s, mut cfg) = memory(params(CAPACITY, 16, 0), dir.path());
    cfg.trace = Some(trace.clone());
    let mut oram = Oram::create(cfg).await.unwrap();
    let g = oram.geometry().clone();
    for (i, &(a, w)) in ops.iter().enumerate() {
        if w {
            oram.write(a, &block(i as u64, 16)).await.unwrap();
        } else {
            oram.read(a).await.unwrap();
        }
    }
    let gets: Vec<u64> = trace
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::GetBucket(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert_eq!(gets.len(), ops.len() * g.levels() as usize);
    gets.chunks(g.levels() as usize)
        .map(|path| path[g.height as usize] - (g.leaves() - 1))
        .collect()
}

fn histogram(leaves: &[u64], n: u64) -> Vec<u64> {
    let mut h = vec![0u64; n as usize];
    for &l in leaves {
        h[l as usize] += 1;
    }
    h
}

#[tokio::test]
async fn leaf_choices_are_uniform_and_independent_of_the_addresses() {
    // A: one address over and over (a clinic re-reading its record). B: a sweep writing every
    // address in turn. Their traces must look the same.
    let a: Vec<(u64, bool)> = (0..ACCESSES).map(|_| (0, false)).collect();
    let b: Vec<(u64, bool)> = (0..ACCESSES).map(|i| (i as u64 % CAPACITY, true)).collect();
    let (la, lb) = (leaves_touched(&a).await, leaves_touched(&b).await);
    let (ha, hb) = (histogram(&la, CAPACITY), histogram(&lb, CAPACITY));
    let limit = chi2_threshold((CAPACITY - 1) as f64, Z);
    let (xa, xb, xab) = (
        chi2_uniform(&ha),
        chi2_uniform(&hb),
        chi2_two_sample(&ha, &hb),
    );
    println!(
        "chi2 (df {}): A {xa:.1}, B {xb:.1}, A vs B {xab:.1}; limit {limit:.1}",
        CAPACITY - 1
    );
    assert!(xa < limit, "A's leaves are not uniform: {xa}");
    assert!(xb < limit, "B's leaves are not uniform: {xb}");
    assert!(xab < limit, "A and B are distinguishable: {xab}");

    // Consecutive leaves are independent too (a re-read does not revisit its last path more
    // often than chance: 1/256 of the time).
    let repeats = la.windows(2).filter(|w| w[0] == w[1]).count();
    assert!(repeats < 40, "{repeats} repeated paths in {ACCESSES}");

    // The attack, kept honest: the same statistics on a store that maps each address to its
    // own object (as the worker's plain store did) tell A and B apart at once.
    let direct =
        |ops: &[(u64, bool)]| histogram(&ops.iter().map(|o| o.0).collect::<Vec<_>>(), CAPACITY);
    let (da, db) = (direct(&a), direct(&b));
    assert!(chi2_uniform(&da) > limit && chi2_two_sample(&da, &db) > limit);
}

#[tokio::test]
async fn each_access_touches_one_path_and_rewrites_all_of_it_with_fresh_ciphertext() {
    for treetop in [0usize, 15] {
        let dir = tempfile::tempdir().unwrap();
        let trace: Trace = Arc::new(Mutex::new(Vec::new()));
        let (store, mut cfg) = memory(params(64, 16, treetop), dir.path());
        cfg.trace = Some(trace.clone());
        let mut oram = Oram::create(cfg).await.unwrap();
        let g = oram.geometry().clone();
        let remote = (g.levels() - g.cached_levels) as usize;
        let mut last: HashMap<u64, bytes::Bytes> = HashMap::new();
        let mut journal_sizes = Vec::new();
        let mut object_sizes = std::collections::BTreeSet::new();
        for i in 0..300u64 {
            trace.lock().unwrap().clear();
            // Half the accesses are reads of an unchanged block: still everything changes.
            if i % 2 == 0 {
                oram.write(i % 5, &block(i, 16)).await.unwrap();
            } else {
                oram.read(i % 5).await.unwrap();
            }
            let events = trace.lock().unwrap().clone();
            let gets: Vec<u64> = events
                .iter()
                .filter_map(|e| {
                    if let TraceEvent::GetBucket(n) = e {
                        Some(*n)
                    } else {
                        None
                    }
                })
                .collect();
            let puts: Vec<u64> = events
                .iter()
                .filter_map(|e| {
                    if let TraceEvent::PutBucket(n) = e {
                        Some(*n)
                    } else {
                        None
                    }
                })
                .collect();
            journal_sizes.extend(events.iter().filter_map(|e| match e {
                TraceEvent::PutJournal { bytes } => Some(*bytes),
                _ => None,
            }));
            assert_eq!(gets.len(), remote, "the whole remote path is read");
            assert_eq!(puts, gets, "and exactly that path is written back");
            for w in gets.windows(2) {
                assert_eq!((w[1] - 1) / 2, w[0], "a root-to-leaf path");
            }
            assert_eq!(smidl_oram::Geometry::level_of(gets[0]), g.cached_levels);
            for n in puts {
                let obj = get(store.as_ref(), &bucket_path("epoch-test", n))
                    .await
                    .unwrap();
                object_sizes.insert(obj.len());
                if let Some(prev) = last.insert(n, obj.clone()) {
                    assert_ne!(prev, obj, "bucket {n} was written back unchanged");
                }
            }
        }
        assert_eq!(
            object_sizes.len(),
            1,
            "all objects have one size: {object_sizes:?}"
        );
        journal_sizes.dedup();
        assert_eq!(journal_sizes.len(), 1, "journal records have one size");
    }
}
