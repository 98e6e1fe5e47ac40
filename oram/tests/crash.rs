//! SIGKILL during writes and evictions loses no acknowledged write and never serves a stale
//! bucket: a driver process writes blocks and acknowledges each one on stdout; it is killed at
//! random points, and the reopened ORAM must hold every acknowledged value.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use smidl_oram::{Backend, Config, Oram, Params};

const CAPACITY: u64 = 64;
const EVERY: u32 = 7;

fn config(dir: &std::path::Path) -> Config {
    let mut p = Params::new(CAPACITY, 16, 1 << 20);
    p.checkpoint_every = EVERY;
    p.treetop_bytes = 4 * smidl_oram::bucket_plain_bytes(16);
    Config::new(
        p,
        Backend::Fs {
            root: dir.join("storage"),
        },
        "torture",
        dir.join("state"),
    )
}

fn random_below(n: u64) -> u64 {
    let mut r = [0u8; 8];
    getrandom::getrandom(&mut r).unwrap();
    u64::from_le_bytes(r) % n
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_loses_no_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let mut acked: HashMap<u64, u64> = HashMap::new();
    let mut next = 1u64;
    for round in 0..6 {
        let mut child = Command::new(env!("CARGO_BIN_EXE_smidl-oram-torture"))
            .arg(dir.path().join("storage"))
            .arg(dir.path().join("state"))
            .args([CAPACITY.to_string(), EVERY.to_string(), next.to_string()])
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        // Let it run for a random number of acknowledged writes, then kill it mid-flight
        // (the write after the last ACK is usually in progress: journal, anchor or eviction).
        let target = 20 + random_below(120);
        let mut in_flight = None;
        let mut n = 0;
        while n < target {
            let line = lines.next().expect("driver ended early").unwrap();
            let mut f = line.split(' ');
            let (kind, a, v) = (f.next().unwrap(), f.next().unwrap(), f.next().unwrap());
            let (a, v): (u64, u64) = (a.parse().unwrap(), v.parse().unwrap());
            match kind {
                "TRY" => in_flight = Some((a, v)),
                "ACK" => {
                    acked.insert(a, v);
                    in_flight = None;
                    next = v + 1;
                    n += 1;
                }
                _ => panic!("unexpected line {line}"),
            }
        }
        // Kill between 0 and 2 ms later: somewhere inside the next access.
        std::thread::sleep(Duration::from_micros(random_below(2000)));
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
        // Lines already printed before the kill still count as acknowledged.
        for line in lines.map_while(Result::ok) {
            let f: Vec<&str> = line.split(' ').collect();
            if f.len() == 3 {
                let (a, v): (u64, u64) = (f[1].parse().unwrap(), f[2].parse().unwrap());
                if f[0] == "ACK" {
                    acked.insert(a, v);
                    in_flight = None;
                    next = v + 1;
                } else {
                    in_flight = Some((a, v));
                }
            }
        }
        next += 10;

        let mut oram = Oram::open(config(dir.path())).await.unwrap();
        for a in 0..CAPACITY {
            let b = oram.read(a).await.unwrap();
            let v = u64::from_le_bytes(b[..8].try_into().unwrap());
            let want = acked.get(&a).copied().unwrap_or(0);
            let unacked_ok = in_flight.is_some_and(|(fa, fv)| fa == a && fv == v);
            assert!(
                v == want || unacked_ok,
                "round {round}: block {a} holds {v}, the last acknowledged write was {want}"
            );
            if v != 0 {
                assert_eq!(u64::from_le_bytes(b[8..].try_into().unwrap()), a);
            }
            if unacked_ok {
                acked.insert(a, v); // it is durable now
            }
        }
        // The reads above were accesses too; drop the handle before the next round.
        drop(oram);
    }
    assert!(
        acked.len() > 20,
        "the test wrote too little: {}",
        acked.len()
    );
}

/// Power loss can tear an in-place bucket write (the filesystem backend rewrites buckets in
/// place). The torn objects fail authentication, so they are never served; reopening redoes the
/// write-back from the acknowledged journal record, and every block reads back.
#[tokio::test]
async fn a_torn_in_place_write_back_is_redone_on_reopen() {
    torn_write_back(true).await;
}

/// Unformatted, a bucket's slot is first written by its first write-back. A crash can leave
/// such a slot unwritten or half written; it is redone the same way.
#[tokio::test]
async fn a_torn_new_bucket_file_is_redone_on_reopen() {
    torn_write_back(false).await;
}

async fn torn_write_back(formatted: bool) {
    use smidl_oram::{Trace, TraceEvent};
    let dir = tempfile::tempdir().unwrap();
    let trace: Trace = Default::default();
    let mut cfg = config(dir.path());
    cfg.trace = Some(trace.clone());
    let mut oram = Oram::create(cfg).await.unwrap();
    if formatted {
        oram.format().await.unwrap();
    }
    let storage = dir.path().join("storage");
    let written = || -> Vec<u64> {
        smidl_oram::fs_buckets(&storage, "torture", 16)
            .unwrap()
            .into_iter()
            .map(|(n, _)| n)
            .collect()
    };
    let mut model = HashMap::new();
    let mut created_last = 0;
    // Formatted: 40 writes. Unformatted: until a write creates a file (leaves never reached
    // before), after at least 10; at 64 leaves that happens within a few writes.
    for i in 0..400u64 {
        if (formatted && i >= 40) || (!formatted && i >= 10 && created_last > 0) {
            break;
        }
        let a = (i * 5) % CAPACITY;
        let mut b = [0u8; 16];
        b[..8].copy_from_slice(&(i + 1).to_le_bytes());
        b[8..].copy_from_slice(&a.to_le_bytes());
        trace.lock().unwrap().clear();
        let existed = written();
        oram.write(a, &b).await.unwrap();
        model.insert(a, b.to_vec());
        created_last = trace
            .lock()
            .unwrap()
            .iter()
            .filter(|e| matches!(e, TraceEvent::PutBucket(n) if !existed.contains(n)))
            .count();
    }
    assert_eq!(
        created_last > 0,
        !formatted,
        "the last write-back should create files exactly when the tree is unformatted"
    );
    let last_path: Vec<u64> = trace
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            TraceEvent::PutBucket(n) => Some(*n),
            _ => None,
        })
        .collect();
    assert!(last_path.len() >= 2, "the path has remote buckets");
    // Tear them in the bucket file: the front half of the new object over the back half of
    // garbage, one whose back half never reached the disk (zeros), and (unformatted) one slot
    // never written at all, as a crash before its first write-back would leave it.
    use std::os::unix::fs::FileExt;
    let object = smidl_oram::object_bytes(16);
    for (i, &n) in last_path.iter().enumerate() {
        let (file, off) = smidl_oram::fs_bucket_slot(&storage, "torture", n, 16);
        let f = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&file)
            .unwrap();
        let mut bytes = vec![0u8; object];
        f.read_exact_at(&mut bytes, off).unwrap();
        let half = bytes.len() / 2;
        if i == 0 {
            bytes[half..].fill(0);
        } else if i == last_path.len() - 1 && !formatted {
            bytes.fill(0);
            f.write_all_at(&[0u8; 8], off - 8).unwrap();
        } else {
            bytes[half..].iter_mut().for_each(|x| *x ^= 0xa5);
        }
        f.write_all_at(&bytes, off).unwrap();
        assert!(
            oram.open_unverified(n, &bytes).is_err(),
            "a torn object must fail authentication"
        );
    }
    drop(oram);

    let mut oram = Oram::open(config(dir.path())).await.unwrap();
    for (a, v) in &model {
        assert_eq!(&oram.read(*a).await.unwrap(), v, "block {a}");
    }
}
