//! The store's tests: sealing, binding to keys, deletion, crash safety.

use super::*;
use redb::ReadableTableMetadata;
use tempfile::TempDir;

fn open() -> (TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(&data(&dir), &keys(&dir)).expect("open");
    (dir, store)
}

fn data(dir: &TempDir) -> PathBuf {
    dir.path().join("data")
}

fn keys(dir: &TempDir) -> PathBuf {
    default_key_dir(&data(dir))
}

fn reopen(dir: &TempDir) -> Result<Store, StoreError> {
    Store::open(&data(dir), &keys(dir))
}

/// Every regular file under `dir`, recursively.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(files(&p));
            } else if p.is_file() {
                out.push(p);
            }
        }
    }
    out
}

fn job(request_id: u64, model_id: u32, epoch: u32) -> Job {
    Job {
        request_id,
        model_id,
        epoch,
        requester: [7; 32],
        input_commitment: [request_id as u8; 32],
        eval_key_commitment: Some([9; 32]),
        seen_at_block: 10,
        state: JobState::Queued,
        attempts: 0,
    }
}

fn result(request_id: u64, model_id: u32, epoch: u32) -> StoredResult {
    StoredResult {
        request_id,
        model_id,
        epoch,
        requester: [3; 32],
        output: vec![request_id as u8; 40],
        output_commitment: [4; 32],
        released: false,
    }
}

fn input(owner: u8, bytes: &[u8]) -> StoredInput {
    StoredInput {
        owner: [owner; 32],
        bytes: bytes.to_vec(),
        uploaded_at_ms: 1_700_000_000_000,
        verified_for: None,
    }
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// Whether the file holds `needle` anywhere. Read in chunks that overlap by the needle's
/// length; all-zero pages (the holes of the vault's sparse bucket file) are skipped quickly.
fn file_contains(path: &Path, needle: &[u8]) -> bool {
    use std::io::Read;
    const CHUNK: usize = 1 << 20;
    const PAGE: usize = 4096;
    let mut f = fs::File::open(path).unwrap();
    let mut buf = vec![0u8; CHUNK + needle.len()];
    let zeros = vec![0u8; buf.len()];
    let mut carried = 0;
    loop {
        let n = f.read(&mut buf[carried..]).unwrap();
        if n == 0 {
            return false;
        }
        let filled = carried + n;
        // A slice comparison is a memcmp, fast even in a debug build.
        let mut page = 0;
        while page < filled {
            // Pages overlap by the needle's length so no match straddles two unseen.
            let (start, end) = (page, (page + PAGE + needle.len()).min(filled));
            if buf[start..end] != zeros[start..end] && contains(&buf[start..end], needle) {
                return true;
            }
            page += PAGE;
        }
        carried = needle.len().saturating_sub(1).min(filled);
        buf.copy_within(filled - carried..filled, 0);
    }
}

#[test]
fn store_and_error_are_shareable() {
    fn check<T: Send + Sync + 'static>() {}
    check::<Store>();
    check::<StoreError>();
}

#[test]
fn models_round_trip() {
    let (_dir, store) = open();
    assert_eq!(store.model(1).unwrap(), None);
    store.put_model(300, b"weights of 300").unwrap();
    store.put_model(2, b"weights of 2").unwrap();
    assert_eq!(
        store.model(300).unwrap().unwrap().as_slice(),
        b"weights of 300"
    );
    store.put_model(2, b"weights of 2, v2").unwrap();
    assert_eq!(
        store.model(2).unwrap().unwrap().as_slice(),
        b"weights of 2, v2"
    );
    assert_eq!(store.model_ids().unwrap(), vec![2, 300]);
}

#[test]
fn eval_keys_round_trip_with_blake2_256_commitment() {
    let (_dir, store) = open();
    let alice = [1u8; 32];
    let bob = [2u8; 32];
    // BLAKE2b-256 of the empty string, the well-known vector.
    let empty = store.put_eval_key(&alice, 5, b"").unwrap();
    assert_eq!(
        hex::encode(empty),
        "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8"
    );
    assert_eq!(
        store.eval_key(&alice, 5).unwrap(),
        Some((empty, Vec::new()))
    );

    let big: Vec<u8> = (0..4 << 20).map(|i| (i * 31 % 251) as u8).collect();
    let c = store.put_eval_key(&bob, 5, &big).unwrap();
    assert_eq!(c, blake2_256(&big));
    let (c2, bytes) = store.eval_key(&bob, 5).unwrap().unwrap();
    assert_eq!(c2, c);
    assert!(bytes == big);
    assert_eq!(store.eval_key(&bob, 6).unwrap(), None);
    assert_eq!(store.eval_key(&[3u8; 32], 5).unwrap(), None);
}

#[test]
fn inputs_round_trip() {
    let (_dir, store) = open();
    let c = [0xab; 32];
    assert_eq!(store.input(1, &c).unwrap(), None);
    let i = input(1, b"ciphertext bytes");
    store.put_input(1, &c, &i).unwrap();
    assert_eq!(store.input(1, &c).unwrap(), Some(i));
    assert_eq!(store.input(2, &c).unwrap(), None);
    assert_eq!(store.input(1, &[0xac; 32]).unwrap(), None);
}

#[test]
fn results_round_trip_and_replace() {
    let (_dir, store) = open();
    assert_eq!(store.result(9).unwrap(), None);
    let r = result(9, 1, 2);
    store.put_result(&r).unwrap();
    assert_eq!(store.result(9).unwrap(), Some(r));
    // Replaced under another epoch: the epoch index follows.
    let r2 = result(9, 1, 5);
    store.put_result(&r2).unwrap();
    assert_eq!(store.result(9).unwrap(), Some(r2));
    assert_eq!(store.client_data_count(1, 2).unwrap().results, 0);
    assert_eq!(store.client_data_count(1, 5).unwrap().results, 1);
}

#[test]
fn jobs_insert_is_idempotent_and_backlog_follows_state() {
    let (_dir, store) = open();
    let a = job(300, 1, 0);
    assert!(store.insert_job(&a).unwrap());
    let mut changed = a.clone();
    changed.attempts = 5;
    assert!(!store.insert_job(&changed).unwrap());
    assert_eq!(store.job(300).unwrap(), Some(a.clone()));
    assert!(store.insert_job(&job(2, 1, 0)).unwrap());
    assert!(store.insert_job(&job(1000, 1, 1)).unwrap());
    assert!(store.insert_job(&job(7, 2, 0)).unwrap());
    assert_eq!(store.job(8).unwrap(), None);

    let ids = |jobs: Vec<Job>| jobs.iter().map(|j| j.request_id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.jobs_not_settled().unwrap()),
        vec![2, 7, 300, 1000]
    );
    assert_eq!(ids(store.jobs_of_epoch(1, 0).unwrap()), vec![2, 300]);
    assert_eq!(ids(store.jobs_of_epoch(1, 1).unwrap()), vec![1000]);
    assert_eq!(ids(store.jobs_of_epoch(3, 0).unwrap()), Vec::<u64>::new());

    let mut s = a.clone();
    s.state = JobState::Submitted {
        at_block: 12,
        rejected: Some("input missing".into()),
    };
    s.attempts = 1;
    store.update_job(&s).unwrap();
    assert_eq!(store.job(300).unwrap(), Some(s.clone()));
    assert_eq!(
        ids(store.jobs_not_settled().unwrap()),
        vec![2, 7, 300, 1000]
    );
    s.state = JobState::Settled;
    store.update_job(&s).unwrap();
    assert_eq!(ids(store.jobs_not_settled().unwrap()), vec![2, 7, 1000]);
    // Settled jobs still belong to their epoch.
    assert_eq!(ids(store.jobs_of_epoch(1, 0).unwrap()), vec![2, 300]);
}

#[test]
fn cursor_and_limit_stage_round_trip() {
    let (_dir, store) = open();
    assert_eq!(store.cursor().unwrap(), None);
    store.set_cursor(41, &[5; 32]).unwrap();
    store.set_cursor(42, &[6; 32]).unwrap();
    assert_eq!(store.cursor().unwrap(), Some((42, [6; 32])));

    assert_eq!(store.limit_stage(1, 0).unwrap(), None);
    let stage = LimitStage::DataDeleted {
        report: ClientDataCount {
            inputs: 3,
            results: 2,
            eval_keys: 1,
        },
    };
    store.set_limit_stage(1, 0, &stage).unwrap();
    store
        .set_limit_stage(1, 1, &LimitStage::Submitted { at_block: 9 })
        .unwrap();
    assert_eq!(store.limit_stage(1, 0).unwrap(), Some(stage));
    store.set_limit_stage(1, 0, &LimitStage::Done).unwrap();
    assert_eq!(store.limit_stage(1, 0).unwrap(), Some(LimitStage::Done));
    assert_eq!(
        store.limit_stage(1, 1).unwrap(),
        Some(LimitStage::Submitted { at_block: 9 })
    );
}

#[test]
fn nonces_reject_replays_and_prune_expired() {
    let (_dir, store) = open();
    let (alice, bob) = ([1u8; 32], [2u8; 32]);
    let n = [9u8; 16];
    assert!(store.record_nonce(&alice, &n, 100, 50).unwrap());
    assert!(!store.record_nonce(&alice, &n, 100, 60).unwrap());
    assert!(store.record_nonce(&bob, &n, 100, 60).unwrap());
    assert!(store.record_nonce(&alice, &[8; 16], 500, 60).unwrap());
    // Not yet expired at exactly its expiry.
    assert!(!store.record_nonce(&alice, &n, 100, 100).unwrap());
    // Past expiry: both 100-entries are pruned, the 500 one stays.
    assert!(store.record_nonce(&alice, &n, 300, 200).unwrap());
    let db = store.db();
    let txn = db.begin_read().unwrap();
    assert_eq!(txn.open_table(NONCES).unwrap().len().unwrap(), 2);
    assert_eq!(txn.open_table(NONCE_EXPIRY).unwrap().len().unwrap(), 2);
}

#[test]
fn reopen_keeps_jobs_cursor_nonces_and_sealed_data() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = reopen(&dir).unwrap();
        store.insert_job(&job(1, 1, 0)).unwrap();
        store.set_cursor(77, &[1; 32]).unwrap();
        assert!(store.record_nonce(&[1; 32], &[2; 16], 1000, 0).unwrap());
        store.put_input(1, &[3; 32], &input(1, b"x")).unwrap();
    }
    let store = reopen(&dir).unwrap();
    assert_eq!(store.job(1).unwrap(), Some(job(1, 1, 0)));
    assert_eq!(store.jobs_not_settled().unwrap().len(), 1);
    assert_eq!(store.cursor().unwrap(), Some((77, [1; 32])));
    assert!(!store.record_nonce(&[1; 32], &[2; 16], 1000, 10).unwrap());
    assert_eq!(store.input(1, &[3; 32]).unwrap(), Some(input(1, b"x")));
}

#[test]
fn client_data_is_not_plaintext_on_disk() {
    let dir = tempfile::tempdir().unwrap();
    let marker = |tag: &str| format!("<<{tag}-PLAINTEXT-MARKER-0123456789>>").into_bytes();
    {
        let store = reopen(&dir).unwrap();
        store
            .put_input(1, &[1; 32], &input(1, &marker("input")))
            .unwrap();
        store
            .put_eval_key(&[2; 32], 1, &marker("evalkey").repeat(1000))
            .unwrap();
        store.put_model(1, &marker("model")).unwrap();
        let mut r = result(5, 1, 0);
        r.output = marker("result");
        store.put_result(&r).unwrap();
        // Control: plain job metadata is visible, so the scan would find a marker.
        let mut j = job(5, 1, 0);
        j.state = JobState::Submitted {
            at_block: 1,
            rejected: Some(String::from_utf8(marker("jobmeta")).unwrap()),
        };
        store.insert_job(&j).unwrap();
    }
    // Every file the store wrote: the database, the vault's objects, keys and anchors.
    let all: Vec<PathBuf> = files(dir.path());
    assert!(
        all.iter()
            .any(|f| f.starts_with(data(&dir).join(VAULT_DIR))),
        "the vault wrote no object"
    );
    assert!(
        file_contains(&data(&dir).join(DB_FILE), &marker("jobmeta")),
        "control marker missing"
    );
    for f in &all {
        for tag in ["input", "evalkey", "model", "result"] {
            assert!(
                !file_contains(f, &marker(tag)),
                "{tag} found in plaintext in {}",
                f.display()
            );
        }
    }
}

#[test]
fn models_moved_to_another_key_fail_authentication() {
    let (_dir, store) = open();
    store.put_model(1, b"model one").unwrap();
    {
        let db = store.db();
        let txn = db.begin_write().unwrap();
        {
            let mut models = txn.open_table(MODELS).unwrap();
            let v = models.get(1).unwrap().unwrap().value().to_vec();
            models.insert(2, v.as_slice()).unwrap();
            let mut bad = v.clone();
            bad[NONCE_LEN] ^= 1;
            models.insert(3, bad.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
    assert!(matches!(store.model(2), Err(StoreError::Authentication)));
    assert!(matches!(store.model(3), Err(StoreError::Authentication)));
    assert!(store.model(1).unwrap().is_some());
}

/// A storage host that modifies the vault's objects (here: a byte of every object — each bucket
/// in the bucket file, journal slots, checkpoints) gets an integrity error, never altered client data.
#[test]
fn tampered_vault_objects_are_refused() {
    let (dir, store) = open();
    store.put_input(1, &[1; 32], &input(1, b"abc")).unwrap();
    drop(store);
    let (root, name) = (data(&dir).join(VAULT_DIR), vault::vault_name(1, 0));
    let objects = root.join(&name);
    let pack = objects.join(smidl_oram::PACK);
    let mut n = 0;
    for f in files(&objects).into_iter().filter(|f| *f != pack) {
        let mut b = fs::read(&f).unwrap();
        let i = b.len() / 2;
        b[i] ^= 1;
        fs::write(&f, b).unwrap();
        n += 1;
    }
    // The bucket file: a byte of every bucket in it.
    {
        use std::os::unix::fs::FileExt;
        let f = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&pack)
            .unwrap();
        for (node, obj) in smidl_oram::fs_buckets(&root, &name, vault::BLOCK_BYTES).unwrap() {
            let (_, off) = smidl_oram::fs_bucket_slot(&root, &name, node, vault::BLOCK_BYTES);
            let i = obj.len() / 2;
            f.write_all_at(&[obj[i] ^ 1], off + i as u64).unwrap();
            n += 1;
        }
    }
    assert!(n > 1, "no bucket on disk");
    let store = reopen(&dir).unwrap();
    let err = store.input(1, &[1; 32]).expect_err("tampered vault served");
    assert!(
        matches!(&err, StoreError::Vault(e) if matches!(**e, smidl_oram::OramError::Integrity { .. })),
        "{err}"
    );
}

#[test]
fn keys_never_live_inside_the_data_directory() {
    let dir = tempfile::tempdir().unwrap();
    let err = Store::open(&data(&dir), &data(&dir).join("keys"))
        .err()
        .expect("a key directory inside the data directory");
    assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
    // An old layout's key file in the data directory is refused, not used.
    drop(reopen(&dir).unwrap());
    fs::copy(keys(&dir).join(KEY_FILE), data(&dir).join(KEY_FILE)).unwrap();
    let err = reopen(&dir)
        .err()
        .expect("a key file in the data directory");
    assert!(
        err.to_string().contains("inside the data directory"),
        "{err}"
    );
}

#[test]
fn wrong_key_file_fails_authentication() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = reopen(&dir).unwrap();
        store.put_input(1, &[1; 32], &input(1, b"abc")).unwrap();
    }
    let key_path = keys(&dir).join(KEY_FILE);
    fs::write(&key_path, format!("{}\n", hex::encode([0x42u8; 32]))).unwrap();
    let err = reopen(&dir).err().expect("wrong key must not open");
    assert!(matches!(err, StoreError::Authentication), "{err}");
    assert_eq!(
        err.to_string(),
        "stored value failed authentication (tampered or wrong key)"
    );
}

#[test]
fn key_file_and_directory_permissions() {
    let dir = tempfile::tempdir().unwrap();
    drop(reopen(&dir).unwrap());
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let key_path = keys(&dir).join(KEY_FILE);
    assert_eq!(mode(&key_path), 0o600);
    assert_eq!(mode(&data(&dir)), 0o700);
    assert_eq!(mode(&data(&dir).join(DB_FILE)), 0o600);
    let text = fs::read_to_string(&key_path).unwrap();
    assert_eq!(text.trim().len(), 64);
    assert!(!keys(&dir).join(format!("{KEY_FILE}.tmp")).exists());
    assert_eq!(mode(&keys(&dir)), 0o700);

    // Group-readable: refused.
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o640)).unwrap();
    let err = reopen(&dir).err().expect("0640 key must be refused");
    assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
    drop(reopen(&dir).unwrap());
}

#[test]
fn malformed_or_missing_key_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(reopen(&dir).unwrap());
    let key_path = keys(&dir).join(KEY_FILE);
    let original = fs::read(&key_path).unwrap();

    fs::write(&key_path, b"not hex at all").unwrap();
    let err = reopen(&dir).err().expect("malformed key");
    assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
    fs::write(&key_path, "zz".repeat(32)).unwrap();
    let err = reopen(&dir).err().expect("non-hex key");
    assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");

    // Missing beside a database with data: never replaced by a fresh key.
    fs::remove_file(&key_path).unwrap();
    let err = reopen(&dir).err().expect("missing key");
    assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
    assert!(!key_path.exists());

    fs::write(&key_path, original).unwrap();
    fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
    drop(reopen(&dir).unwrap());
}

#[test]
fn delete_client_data_removes_exactly_the_models_data() {
    let (_dir, store) = open();
    for (m, c) in [(1u32, 1u8), (1, 2), (1, 3), (2, 1)] {
        store.put_input(m, &[c; 32], &input(c, b"in")).unwrap();
    }
    for (id, m, e) in [
        (1u64, 1u32, 2u32),
        (2, 1, 3),
        (3, 1, 4),
        (4, 2, 3),
        (5, 2, 0),
    ] {
        store.put_result(&result(id, m, e)).unwrap();
    }
    for (a, m) in [(1u8, 1u32), (2, 1), (1, 2)] {
        store.put_eval_key(&[a; 32], m, b"key").unwrap();
    }
    store.put_model(1, b"model").unwrap();
    store.insert_job(&job(1, 1, 3)).unwrap();

    assert_eq!(
        store.client_data_count(1, 3).unwrap(),
        ClientDataCount {
            inputs: 3,
            results: 2,
            eval_keys: 2
        }
    );
    // Keys kept when the model says so.
    let kept = store.delete_client_data(1, 3, false).unwrap();
    assert_eq!(
        kept,
        ClientDataCount {
            inputs: 3,
            results: 2,
            eval_keys: 0
        }
    );
    assert_eq!(store.client_data_count(1, 3).unwrap().eval_keys, 2);
    let deleted = store.delete_client_data(1, 3, true).unwrap();
    assert_eq!(
        deleted,
        ClientDataCount {
            inputs: 0,
            results: 0,
            eval_keys: 2
        }
    );
    assert_eq!(
        store.client_data_count(1, 3).unwrap(),
        ClientDataCount::default()
    );

    // Model 1's later epoch and everything of model 2 are untouched.
    assert!(store.result(3).unwrap().is_some());
    assert_eq!(store.client_data_count(1, 4).unwrap().results, 1);
    assert_eq!(store.result(1).unwrap(), None);
    assert_eq!(store.result(2).unwrap(), None);
    assert!(store.result(4).unwrap().is_some());
    assert!(store.result(5).unwrap().is_some());
    assert!(store.input(2, &[1; 32]).unwrap().is_some());
    assert!(store.eval_key(&[1; 32], 2).unwrap().is_some());
    assert_eq!(
        store.client_data_count(2, 3).unwrap(),
        ClientDataCount {
            inputs: 1,
            results: 2,
            eval_keys: 1
        }
    );
    // Not client data: the model and the job metadata stay.
    assert!(store.model(1).unwrap().is_some());
    assert!(store.job(1).unwrap().is_some());
}

/// The storage host keeps a copy of the vault; after the epoch's deletion nothing left on the
/// machine (data directory, key directory) opens it. Before the deletion the key file does —
/// so the scan is a real attack, not a vacuous one.
#[test]
fn after_shredding_nothing_on_the_machine_decrypts_the_epoch() {
    let (dir, store) = open();
    store.put_input(1, &[1; 32], &input(1, b"abc")).unwrap();
    store.put_eval_key(&[2; 32], 1, &[7u8; 100_000]).unwrap();
    store.put_result(&result(5, 1, 0)).unwrap();
    let vault_dir = data(&dir).join(VAULT_DIR).join(vault::vault_name(1, 0));
    let copy: Vec<(u64, Vec<u8>)> = smidl_oram::fs_buckets(
        &data(&dir).join(VAULT_DIR),
        &vault::vault_name(1, 0),
        vault::BLOCK_BYTES,
    )
    .unwrap()
    .into_iter()
    .take(1)
    .collect();
    assert!(!copy.is_empty());
    let name = vault::vault_name(1, 0);
    let key_file = smidl_oram::key_file(&keys(&dir).join(VAULT_DIR), &name);
    let key_bytes = fs::read(&key_file).unwrap();
    let (epoch, live_key) = smidl_oram::read_key_file(&keys(&dir).join(VAULT_DIR), &name).unwrap();
    let geometry = smidl_oram::Geometry::new(&vault::params()).unwrap();
    let opens = |key: [u8; 32]| {
        copy.iter()
            .any(|(node, obj)| smidl_oram::opens_with(key, &epoch, *node, obj, &geometry))
    };
    let windows = |bytes: &[u8]| -> bool {
        bytes
            .windows(32)
            .any(|w| opens(w.try_into().expect("32 bytes")))
    };
    assert!(windows(&key_bytes), "control: the live key opens the copy");

    let deleted = store.delete_client_data(1, 0, true).unwrap();
    assert_eq!(
        deleted,
        ClientDataCount {
            inputs: 1,
            results: 1,
            eval_keys: 1
        }
    );
    let erasure = store.erasure(1, 0).unwrap().expect("an erasure report");
    assert!(erasure.final_root.is_some() && erasure.objects_deleted > 0);
    assert!(!key_file.exists());
    assert_eq!(vault::count_files(&vault_dir), 0);
    drop(store);
    // Every window of the key directory through the AEAD oracle (small files); every file on the
    // machine checked for the key itself, raw or hex (the oracle costs ~1 ms per 20 KB object
    // in a debug build, too slow for megabytes of database and journal).
    for f in files(&keys(&dir)) {
        assert!(
            !windows(&fs::read(&f).unwrap()),
            "{} still opens the shredded epoch",
            f.display()
        );
    }
    for f in files(dir.path()) {
        let bytes = fs::read(&f).unwrap();
        assert!(
            !contains(&bytes, &live_key) && !contains(&bytes, hex::encode(live_key).as_bytes()),
            "{} holds the shredded epoch's key",
            f.display()
        );
    }
}

/// The read cache: repeated reads of a fresh input or result reach no storage, and the cache
/// never serves a value the vault no longer holds (replaced, removed, shredded, or after a
/// restart).
#[test]
fn cached_reads_make_no_oram_access_and_never_go_stale() {
    let (dir, store) = open();
    let accesses = |s: &Store| s.vaults.run(|v| v.accesses(1, 0)).unwrap();
    store.put_input(1, &[1; 32], &input(1, b"abc")).unwrap();
    let after_put = accesses(&store);
    assert!(after_put > 0);
    for _ in 0..5 {
        assert_eq!(store.input(1, &[1; 32]).unwrap(), Some(input(1, b"abc")));
    }
    assert_eq!(
        accesses(&store),
        after_put,
        "a cached read reached the ORAM"
    );

    store.put_input(1, &[1; 32], &input(1, b"new")).unwrap();
    assert_eq!(store.input(1, &[1; 32]).unwrap(), Some(input(1, b"new")));
    store.put_result(&result(5, 1, 0)).unwrap();
    assert!(store.result(5).unwrap().is_some());
    assert!(store.discard_unreleased_result(5).unwrap());
    assert_eq!(
        store.result(5).unwrap(),
        None,
        "a removed result served from the cache"
    );

    // A restart starts cold: the first read goes to the ORAM, the second does not.
    drop(store);
    let store = reopen(&dir).unwrap();
    let before = accesses(&store);
    assert_eq!(store.input(1, &[1; 32]).unwrap(), Some(input(1, b"new")));
    let cold = accesses(&store);
    assert!(
        cold > before,
        "a read after a restart did not reach the ORAM"
    );
    assert_eq!(store.input(1, &[1; 32]).unwrap(), Some(input(1, b"new")));
    assert_eq!(accesses(&store), cold);
}

/// What the storage host can do to the database file between two runs of the worker.
fn host_release_mark(dir: &TempDir, request_id: u64, mark: Option<&[u8]>) -> Option<Vec<u8>> {
    let db = Database::create(data(dir).join(DB_FILE)).expect("open the database file");
    let txn = db.begin_write().unwrap();
    let old = {
        let mut t = txn.open_table(RELEASED).unwrap();
        let old = t.get(request_id).unwrap().map(|v| v.value().to_vec());
        if let Some(m) = mark {
            t.insert(request_id, m).unwrap();
        }
        old
    };
    txn.commit().unwrap();
    old
}

/// The attack: the storage host holds the database file, and a plain "released" flag there
/// would let it (with a client) unlock a result whose completion is not final — the answer read,
/// then the charge refunded. The mark is sealed under the data key and bound to its request: a
/// forged mark, or a genuine one moved from another request, releases nothing, while a genuine
/// mark in the same slot does (so the table really is what gates a fetch).
#[test]
fn release_marks_cannot_be_forged_or_moved_by_the_storage_host() {
    let (dir, store) = open();
    // Both results carry the same output commitment: only the binding to the request differs.
    store.put_result(&result(5, 1, 0)).unwrap();
    store.put_result(&result(6, 1, 0)).unwrap();
    assert!(!store.result(5).unwrap().unwrap().released);
    let accesses = |s: &Store| s.vaults.run(|v| v.accesses(1, 0)).unwrap();
    let before = accesses(&store);
    assert!(
        !store.release_result(6, &[8; 32]).unwrap(),
        "another commitment"
    );
    assert!(store.release_result(6, &[4; 32]).unwrap());
    assert_eq!(accesses(&store), before, "releasing rewrote the vault");
    assert!(store.result(6).unwrap().unwrap().released);
    drop(store);

    let genuine = host_release_mark(&dir, 6, None).expect("6 is released");
    host_release_mark(&dir, 5, Some(&genuine));
    let store = reopen(&dir).unwrap();
    assert!(
        store.result(6).unwrap().unwrap().released,
        "lost across a restart"
    );
    assert!(
        !store.result(5).unwrap().unwrap().released,
        "a release mark moved from another request unlocked a result"
    );
    drop(store);

    let mut forged = genuine.clone();
    forged[30] ^= 1;
    host_release_mark(&dir, 5, Some(&forged));
    let store = reopen(&dir).unwrap();
    assert!(
        !store.result(5).unwrap().unwrap().released,
        "a forged release mark unlocked a result"
    );
    // The worker's own mark in that slot does release it.
    assert!(store.release_result(5, &[4; 32]).unwrap());
    assert!(store.result(5).unwrap().unwrap().released);
    // A new result for the request (a re-org's) is not released by the old mark.
    let mut again = result(5, 1, 0);
    again.output = vec![1; 8];
    store.put_result(&again).unwrap();
    assert!(!store.result(5).unwrap().unwrap().released);
}
