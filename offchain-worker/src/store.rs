//! The worker's embedded store: a `redb` database in `<data_dir>/worker.redb`, with every value
//! that concerns a client or the model sealed with XChaCha20-Poly1305 under a 32-byte data key
//! kept beside it in `<data_dir>/worker.key` (hex, mode 0600; the directory is created 0700).
//!
//! What is sealed: model records (plaintext weights), evaluation keys, uploaded inputs and
//! results. Each sealed value is `nonce (24) || ciphertext || tag (16)`, with a fresh random
//! nonce, and its associated data names the table and the key it is stored under, so a value
//! copied or moved to another key (another client, another request) fails authentication.
//!
//! What is plain: job metadata the chain already records (request ids, commitments, account
//! ids, block numbers, job states), the chain cursor, replay nonces and the progress of epoch
//! resets.
//!
//! Deletion: [`Store::delete_client_data`] removes the sealed records in one transaction, after
//! which nothing refers to them. redb returns their pages to its free list without overwriting
//! them, so old ciphertext may linger in the file until reused (or until [`Store::compact`]
//! truncates the file); it is unreadable without the data key, which never leaves the worker.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::{RwLock, RwLockReadGuard};

use bincode::Options;
use blake2::digest::consts::U32;
use blake2::{Blake2b, Digest};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Key, Tag, XChaCha20Poly1305, XNonce};
use redb::{
    Database, ReadTransaction, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::{de::DeserializeOwned, Deserialize, Serialize};
use zeroize::Zeroizing;

pub type AccountId = [u8; 32];
pub type Hash = [u8; 32];

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum JobState {
    /// Seen in a block; not yet evaluated/submitted.
    Queued,
    /// Result stored and `submit_result`/`reject_request` sent; waiting for finality.
    Submitted {
        at_block: u32,
        rejected: Option<String>,
    },
    /// Settled in a finalized block (completed, rejected or timed out on chain).
    Settled,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Job {
    pub request_id: u64,
    pub model_id: u32,
    pub epoch: u32,
    pub requester: AccountId,
    pub input_commitment: Hash,
    pub eval_key_commitment: Option<Hash>,
    pub seen_at_block: u32,
    pub state: JobState,
    pub attempts: u32,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredInput {
    pub owner: AccountId,
    pub bytes: Vec<u8>,
    pub uploaded_at_ms: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredResult {
    pub request_id: u64,
    pub model_id: u32,
    pub epoch: u32,
    pub requester: AccountId,
    pub output: Vec<u8>,
    pub output_commitment: Hash,
    /// Set once `submit_result` with this commitment is final: only then may the requester
    /// fetch it, so a charge the chain could still refund never buys an answer.
    pub released: bool,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClientDataCount {
    pub inputs: u64,
    pub results: u64,
    pub eval_keys: u64,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum LimitStage {
    DataDeleted { report: ClientDataCount },
    Submitted { at_block: u32 },
    Done,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("store I/O on {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    #[error("database: {0}")]
    Database(#[source] Box<redb::Error>),
    #[error("stored value failed authentication (tampered or wrong key)")]
    Authentication,
    #[error("a value could not be sealed: {0}")]
    Seal(String),
    #[error("stored {what} could not be decoded: {reason}")]
    Decode { what: &'static str, reason: String },
    #[error("{what} could not be encoded: {reason}")]
    Encode { what: &'static str, reason: String },
    #[error("key file {}: {reason}", path.display())]
    KeyFile { path: PathBuf, reason: String },
    #[error("the system random source failed: {0}")]
    Random(getrandom::Error),
    #[error("database is inconsistent: {0}")]
    Inconsistent(String),
    #[error("database format {found} is newer than this worker supports ({supported})")]
    Format { found: u32, supported: u32 },
}

// redb has one error type per operation; they all fold into `redb::Error`.
macro_rules! from_redb {
    ($($t:ty),* $(,)?) => {$(
        impl From<$t> for StoreError {
            fn from(e: $t) -> Self {
                StoreError::Database(Box::new(e.into()))
            }
        }
    )*};
}
from_redb!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError,
    redb::CompactionError,
);

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

const DB_FILE: &str = "worker.redb";
const KEY_FILE: &str = "worker.key";
const KEY_LEN: usize = 32;
const NONCE_LEN: usize = 24;
const TAG_LEN: usize = 16;
/// Bumped when a table's layout changes; an older worker refuses a newer file.
const FORMAT: u32 = 1;
/// The page cache; evaluation keys are large, and the worker caches what it decodes anyway.
const CACHE_BYTES: usize = 256 << 20;
/// Upper bound for any bincode record, so a corrupt length cannot ask for unbounded memory.
const MAX_RECORD: u64 = 1 << 30;
/// Prefix of every value's associated data; versioned with the sealing scheme.
const AAD_DOMAIN: &[u8] = b"smidl-worker-store/v1\0";
const KEY_CHECK: &[u8] = b"smidl worker data key check";

// Sealed tables.
const MODELS: TableDefinition<u32, &[u8]> = TableDefinition::new("models");
/// (model_id, account) -> sealed(commitment || key bytes).
const EVAL_KEYS: TableDefinition<(u32, [u8; 32]), &[u8]> = TableDefinition::new("eval_keys");
/// (model_id, claimed commitment) -> sealed(StoredInput).
const INPUTS: TableDefinition<(u32, [u8; 32]), &[u8]> = TableDefinition::new("inputs");
/// request_id -> (model_id, epoch, sealed(StoredResult)); model and epoch are plain to keep the
/// index below in step when a result is replaced.
const RESULTS: TableDefinition<u64, (u32, u32, &[u8])> = TableDefinition::new("results");

// Plain tables.
/// (model_id, epoch, request_id): lets deletion find an epoch's results without unsealing them.
const RESULTS_BY_EPOCH: TableDefinition<(u32, u32, u64), ()> =
    TableDefinition::new("results_by_epoch");
const JOBS: TableDefinition<u64, &[u8]> = TableDefinition::new("jobs");
/// Request ids of jobs not yet settled: the backlog, without scanning every job ever seen.
const JOBS_PENDING: TableDefinition<u64, ()> = TableDefinition::new("jobs_pending");
const JOBS_BY_EPOCH: TableDefinition<(u32, u32, u64), ()> = TableDefinition::new("jobs_by_epoch");
const CURSOR: TableDefinition<&str, (u32, [u8; 32])> = TableDefinition::new("cursor");
/// (account, nonce) -> expiry (ms).
const NONCES: TableDefinition<([u8; 32], [u8; 16]), u64> = TableDefinition::new("nonces");
/// (expiry, account, nonce): pruning visits only what has expired.
const NONCE_EXPIRY: TableDefinition<(u64, [u8; 32], [u8; 16]), ()> =
    TableDefinition::new("nonce_expiry");
const LIMITS: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("limits");
const META: TableDefinition<&str, &[u8]> = TableDefinition::new("meta");

const CURSOR_KEY: &str = "finalized";
const META_FORMAT: &str = "format";
const META_KEY_CHECK: &str = "key_check";

/// Associated data of a sealed value: the table and the key it lives under.
fn aad(table: &str, key: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::with_capacity(AAD_DOMAIN.len() + table.len() + 1 + 64);
    out.extend_from_slice(AAD_DOMAIN);
    out.extend_from_slice(table.as_bytes());
    out.push(0);
    for part in key {
        out.extend_from_slice(part);
    }
    out
}

fn eval_key_aad(model_id: u32, account: &AccountId) -> Vec<u8> {
    aad("eval_keys", &[&model_id.to_be_bytes(), account])
}

fn input_aad(model_id: u32, commitment: &Hash) -> Vec<u8> {
    aad("inputs", &[&model_id.to_be_bytes(), commitment])
}

fn result_aad(request_id: u64, model_id: u32, epoch: u32) -> Vec<u8> {
    aad(
        "results",
        &[
            &request_id.to_be_bytes(),
            &model_id.to_be_bytes(),
            &epoch.to_be_bytes(),
        ],
    )
}

fn codec() -> impl Options {
    bincode::DefaultOptions::new().with_limit(MAX_RECORD)
}

fn encode<T: Serialize>(what: &'static str, value: &T) -> Result<Vec<u8>, StoreError> {
    codec().serialize(value).map_err(|e| StoreError::Encode {
        what,
        reason: e.to_string(),
    })
}

fn decode<T: DeserializeOwned>(what: &'static str, bytes: &[u8]) -> Result<T, StoreError> {
    codec().deserialize(bytes).map_err(|e| StoreError::Decode {
        what,
        reason: e.to_string(),
    })
}

/// BLAKE2b-256, as Substrate's `blake2_256`.
fn blake2_256(bytes: &[u8]) -> Hash {
    let mut out = [0u8; 32];
    out.copy_from_slice(&Blake2b::<U32>::digest(bytes));
    out
}

/// The data key in use; the cipher zeroizes its copy of the key on drop.
struct Sealer {
    cipher: XChaCha20Poly1305,
}

impl Sealer {
    fn new(key: &Zeroizing<[u8; KEY_LEN]>) -> Self {
        Self {
            cipher: XChaCha20Poly1305::new(Key::from_slice(&key[..])),
        }
    }

    /// Seals the plaintext that `fill` writes (exactly `len` bytes are reserved, so the
    /// plaintext never lives in a buffer that is reallocated and freed without being wiped).
    fn seal_with(
        &self,
        aad: &[u8],
        len: usize,
        fill: impl FnOnce(&mut Vec<u8>) -> Result<(), StoreError>,
    ) -> Result<Vec<u8>, StoreError> {
        let capacity = NONCE_LEN + len + TAG_LEN;
        let mut buf = Zeroizing::new(Vec::with_capacity(capacity));
        let mut nonce = [0u8; NONCE_LEN];
        getrandom::getrandom(&mut nonce).map_err(StoreError::Random)?;
        buf.extend_from_slice(&nonce);
        fill(&mut buf)?;
        if buf.len() + TAG_LEN > capacity {
            return Err(StoreError::Seal("plaintext longer than announced".into()));
        }
        let tag = self
            .cipher
            .encrypt_in_place_detached(&XNonce::from(nonce), aad, &mut buf[NONCE_LEN..])
            .map_err(|_| StoreError::Seal("value too long for the cipher".into()))?;
        buf.extend_from_slice(&tag);
        // Only ciphertext is left in the buffer.
        Ok(std::mem::take(&mut *buf))
    }

    fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.seal_with(aad, plaintext.len(), |buf| {
            buf.extend_from_slice(plaintext);
            Ok(())
        })
    }

    fn seal_record<T: Serialize>(
        &self,
        what: &'static str,
        aad: &[u8],
        value: &T,
    ) -> Result<Vec<u8>, StoreError> {
        let encode_err = |e: bincode::Error| StoreError::Encode {
            what,
            reason: e.to_string(),
        };
        let len = codec().serialized_size(value).map_err(encode_err)?;
        let len = usize::try_from(len).map_err(|e| StoreError::Encode {
            what,
            reason: e.to_string(),
        })?;
        self.seal_with(aad, len, |buf| {
            codec().serialize_into(buf, value).map_err(encode_err)
        })
    }

    fn open(&self, aad: &[u8], sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, StoreError> {
        if sealed.len() < NONCE_LEN + TAG_LEN {
            return Err(StoreError::Authentication);
        }
        let (nonce, rest) = sealed.split_at(NONCE_LEN);
        let (ciphertext, tag) = rest.split_at(rest.len() - TAG_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| StoreError::Authentication)?;
        let tag: [u8; TAG_LEN] = tag.try_into().map_err(|_| StoreError::Authentication)?;
        let mut buf = Zeroizing::new(ciphertext.to_vec());
        self.cipher
            .decrypt_in_place_detached(&XNonce::from(nonce), aad, &mut buf, &Tag::from(tag))
            .map_err(|_| StoreError::Authentication)?;
        Ok(buf)
    }

    fn open_record<T: DeserializeOwned>(
        &self,
        what: &'static str,
        aad: &[u8],
        sealed: &[u8],
    ) -> Result<T, StoreError> {
        let plain = self.open(aad, sealed)?;
        decode(what, &plain)
    }
}

pub struct Store {
    // Behind a lock only so that `compact` can have the database to itself; every other call
    // shares it (redb serializes writers and runs readers concurrently).
    db: RwLock<Database>,
    sealer: Sealer,
}

impl Store {
    /// Opens the store in `data_dir`, creating the directory (0700), the data key (0600) and the
    /// database on first use. Refuses a key file others can read, a missing key file beside an
    /// existing database, and a key that does not open this database.
    pub fn open(data_dir: &Path) -> Result<Self, StoreError> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(data_dir)
            .map_err(io_err(data_dir))?;
        let db_path = data_dir.join(DB_FILE);
        let db_has_data = match fs::metadata(&db_path) {
            Ok(m) => m.len() > 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err(&db_path)(e)),
        };
        let key = load_or_create_key(data_dir, db_has_data)?;
        let sealer = Sealer::new(&key);
        drop(key);

        // Create the file ourselves so it is never group/world-readable, even briefly.
        OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&db_path)
            .map_err(io_err(&db_path))?;
        fs::set_permissions(&db_path, fs::Permissions::from_mode(0o600))
            .map_err(io_err(&db_path))?;
        let db = Database::builder()
            .set_cache_size(CACHE_BYTES)
            .create(&db_path)?;

        let store = Self {
            db: RwLock::new(db),
            sealer,
        };
        store.initialize()?;
        Ok(store)
    }

    /// Creates every table (so readers never meet a missing one), checks the format and checks
    /// that the data key opens this database.
    fn initialize(&self) -> Result<(), StoreError> {
        let check_aad = aad("meta", &[META_KEY_CHECK.as_bytes()]);
        self.write(|txn| {
            txn.open_table(MODELS)?;
            txn.open_table(EVAL_KEYS)?;
            txn.open_table(INPUTS)?;
            txn.open_table(RESULTS)?;
            txn.open_table(RESULTS_BY_EPOCH)?;
            txn.open_table(JOBS)?;
            txn.open_table(JOBS_PENDING)?;
            txn.open_table(JOBS_BY_EPOCH)?;
            txn.open_table(CURSOR)?;
            txn.open_table(NONCES)?;
            txn.open_table(NONCE_EXPIRY)?;
            txn.open_table(LIMITS)?;
            let mut meta = txn.open_table(META)?;
            let format = match meta.get(META_FORMAT)? {
                Some(v) => {
                    let bytes: [u8; 4] = v.value().try_into().map_err(|_| {
                        StoreError::Inconsistent("format marker is not 4 bytes".into())
                    })?;
                    Some(u32::from_le_bytes(bytes))
                }
                None => None,
            };
            match format {
                Some(found) if found > FORMAT => {
                    return Err(StoreError::Format {
                        found,
                        supported: FORMAT,
                    })
                }
                Some(_) => {}
                None => {
                    meta.insert(META_FORMAT, FORMAT.to_le_bytes().as_slice())?;
                }
            }
            let check = meta.get(META_KEY_CHECK)?.map(|v| v.value().to_vec());
            match check {
                Some(sealed) => {
                    if self.sealer.open(&check_aad, &sealed)?.as_slice() != KEY_CHECK {
                        return Err(StoreError::Authentication);
                    }
                }
                None => {
                    let sealed = self.sealer.seal(&check_aad, KEY_CHECK)?;
                    meta.insert(META_KEY_CHECK, sealed.as_slice())?;
                }
            }
            Ok(())
        })
    }

    fn db(&self) -> RwLockReadGuard<'_, Database> {
        // A panic elsewhere cannot leave redb half-written (transactions are atomic), so a
        // poisoned lock is still safe to use. Never take it twice on one thread: a waiting
        // `compact` would deadlock the second acquisition.
        self.db.read().unwrap_or_else(|e| e.into_inner())
    }

    fn read<T>(
        &self,
        f: impl FnOnce(&ReadTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.db();
        let txn = db.begin_read()?;
        f(&txn)
    }

    /// Runs `f` in a write transaction, committed only if `f` succeeds.
    fn write<T>(
        &self,
        f: impl FnOnce(&WriteTransaction) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let db = self.db();
        let txn = db.begin_write()?;
        let out = f(&txn)?;
        txn.commit()?;
        Ok(out)
    }

    /// Rewrites the file without its free pages, shrinking it after a deletion. Every other call
    /// waits while this runs: call it from a blocking task at a quiet moment. Returns whether
    /// anything was moved.
    pub fn compact(&self) -> Result<bool, StoreError> {
        let mut db = self.db.write().unwrap_or_else(|e| e.into_inner());
        Ok(db.compact()?)
    }

    // ---- Models ----

    /// Stores a model record (opaque bytes holding plaintext weights; always sealed).
    pub fn put_model(&self, model_id: u32, record: &[u8]) -> Result<(), StoreError> {
        let sealed = self
            .sealer
            .seal(&aad("models", &[&model_id.to_be_bytes()]), record)?;
        self.write(|txn| {
            txn.open_table(MODELS)?
                .insert(model_id, sealed.as_slice())?;
            Ok(())
        })
    }

    pub fn model(&self, model_id: u32) -> Result<Option<Zeroizing<Vec<u8>>>, StoreError> {
        let sealed = self.read(|txn| {
            Ok(txn
                .open_table(MODELS)?
                .get(model_id)?
                .map(|v| v.value().to_vec()))
        })?;
        sealed
            .map(|s| {
                self.sealer
                    .open(&aad("models", &[&model_id.to_be_bytes()]), &s)
            })
            .transpose()
    }

    /// Installed model ids, ascending.
    pub fn model_ids(&self) -> Result<Vec<u32>, StoreError> {
        self.read(|txn| {
            let table = txn.open_table(MODELS)?;
            let mut ids = Vec::new();
            for entry in table.iter()? {
                ids.push(entry?.0.value());
            }
            Ok(ids)
        })
    }

    // ---- Evaluation keys ----

    /// Stores (replacing) `account`'s evaluation key for `model_id`; returns its BLAKE2b-256
    /// commitment, which is what the chain records.
    pub fn put_eval_key(
        &self,
        account: &AccountId,
        model_id: u32,
        bytes: &[u8],
    ) -> Result<Hash, StoreError> {
        let commitment = blake2_256(bytes);
        let sealed = self.sealer.seal_with(
            &eval_key_aad(model_id, account),
            commitment.len() + bytes.len(),
            |buf| {
                buf.extend_from_slice(&commitment);
                buf.extend_from_slice(bytes);
                Ok(())
            },
        )?;
        self.write(|txn| {
            txn.open_table(EVAL_KEYS)?
                .insert((model_id, *account), sealed.as_slice())?;
            Ok(())
        })?;
        Ok(commitment)
    }

    /// `account`'s evaluation key for `model_id` and its commitment.
    pub fn eval_key(
        &self,
        account: &AccountId,
        model_id: u32,
    ) -> Result<Option<(Hash, Vec<u8>)>, StoreError> {
        let sealed = self.read(|txn| {
            Ok(txn
                .open_table(EVAL_KEYS)?
                .get((model_id, *account))?
                .map(|v| v.value().to_vec()))
        })?;
        let Some(sealed) = sealed else {
            return Ok(None);
        };
        let mut plain = self
            .sealer
            .open(&eval_key_aad(model_id, account), &sealed)?;
        drop(sealed);
        let commitment: Hash =
            plain
                .get(..32)
                .and_then(|c| c.try_into().ok())
                .ok_or_else(|| StoreError::Decode {
                    what: "evaluation key",
                    reason: "shorter than its commitment".into(),
                })?;
        // In place, to avoid a second copy of a key that may be 100+ MiB.
        plain.drain(..32);
        Ok(Some((commitment, std::mem::take(&mut *plain))))
    }

    // ---- Inputs ----

    /// Stores (replacing) an uploaded input under the commitment the client claims for it; the
    /// claim is checked against the chain's commitment when the job runs, not here.
    pub fn put_input(
        &self,
        model_id: u32,
        commitment: &Hash,
        input: &StoredInput,
    ) -> Result<(), StoreError> {
        let sealed = self
            .sealer
            .seal_record("input", &input_aad(model_id, commitment), input)?;
        self.write(|txn| {
            txn.open_table(INPUTS)?
                .insert((model_id, *commitment), sealed.as_slice())?;
            Ok(())
        })
    }

    pub fn input(
        &self,
        model_id: u32,
        commitment: &Hash,
    ) -> Result<Option<StoredInput>, StoreError> {
        let sealed = self.read(|txn| {
            Ok(txn
                .open_table(INPUTS)?
                .get((model_id, *commitment))?
                .map(|v| v.value().to_vec()))
        })?;
        sealed
            .map(|s| {
                self.sealer
                    .open_record("input", &input_aad(model_id, commitment), &s)
            })
            .transpose()
    }

    // ---- Results ----

    /// Stores (replacing) the result of `result.request_id`.
    pub fn put_result(&self, result: &StoredResult) -> Result<(), StoreError> {
        let (id, model, epoch) = (result.request_id, result.model_id, result.epoch);
        let sealed = self
            .sealer
            .seal_record("result", &result_aad(id, model, epoch), result)?;
        self.write(|txn| {
            let mut results = txn.open_table(RESULTS)?;
            let mut index = txn.open_table(RESULTS_BY_EPOCH)?;
            let old = results
                .insert(id, (model, epoch, sealed.as_slice()))?
                .map(|v| {
                    let (m, e, _) = v.value();
                    (m, e)
                });
            if let Some((m, e)) = old {
                index.remove((m, e, id))?;
            }
            index.insert((model, epoch, id), ())?;
            Ok(())
        })
    }

    /// Marks a stored result fetchable once its completion with `output_commitment` is
    /// final. Returns whether a matching result was found.
    pub fn release_result(
        &self,
        request_id: u64,
        output_commitment: &Hash,
    ) -> Result<bool, StoreError> {
        match self.result(request_id)? {
            Some(mut r) if &r.output_commitment == output_commitment => {
                if !r.released {
                    r.released = true;
                    self.put_result(&r)?;
                }
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub fn result(&self, request_id: u64) -> Result<Option<StoredResult>, StoreError> {
        let row = self.read(|txn| {
            Ok(txn.open_table(RESULTS)?.get(request_id)?.map(|v| {
                let (m, e, sealed) = v.value();
                (m, e, sealed.to_vec())
            }))
        })?;
        let Some((model, epoch, sealed)) = row else {
            return Ok(None);
        };
        let result: StoredResult =
            self.sealer
                .open_record("result", &result_aad(request_id, model, epoch), &sealed)?;
        Ok(Some(result))
    }

    // ---- Jobs ----

    /// Inserts `job` unless its request id is known; returns whether it was inserted, so
    /// replayed chain events are handled once.
    pub fn insert_job(&self, job: &Job) -> Result<bool, StoreError> {
        let bytes = encode("job", job)?;
        self.write(|txn| {
            let mut jobs = txn.open_table(JOBS)?;
            if jobs.get(job.request_id)?.is_some() {
                return Ok(false);
            }
            jobs.insert(job.request_id, bytes.as_slice())?;
            index_job(txn, None, job)?;
            Ok(true)
        })
    }

    pub fn job(&self, request_id: u64) -> Result<Option<Job>, StoreError> {
        self.read(|txn| {
            txn.open_table(JOBS)?
                .get(request_id)?
                .map(|v| decode("job", v.value()))
                .transpose()
        })
    }

    /// Replaces the stored job with `request_id` (inserting it if absent).
    pub fn update_job(&self, job: &Job) -> Result<(), StoreError> {
        let bytes = encode("job", job)?;
        self.write(|txn| {
            let mut jobs = txn.open_table(JOBS)?;
            let old: Option<Job> = jobs
                .insert(job.request_id, bytes.as_slice())?
                .map(|v| decode("job", v.value()))
                .transpose()?;
            drop(jobs);
            index_job(txn, old.as_ref(), job)
        })
    }

    /// The backlog: every job not settled, by ascending request id.
    pub fn jobs_not_settled(&self) -> Result<Vec<Job>, StoreError> {
        self.read(|txn| {
            let pending = txn.open_table(JOBS_PENDING)?;
            let jobs = txn.open_table(JOBS)?;
            let mut out = Vec::new();
            for entry in pending.iter()? {
                let id = entry?.0.value();
                out.push(load_job(&jobs, id)?);
            }
            Ok(out)
        })
    }

    /// Every job of `model_id`'s `epoch`, by ascending request id.
    pub fn jobs_of_epoch(&self, model_id: u32, epoch: u32) -> Result<Vec<Job>, StoreError> {
        self.read(|txn| {
            let index = txn.open_table(JOBS_BY_EPOCH)?;
            let jobs = txn.open_table(JOBS)?;
            let mut out = Vec::new();
            for entry in index.range((model_id, epoch, 0)..=(model_id, epoch, u64::MAX))? {
                let (_, _, id) = entry?.0.value();
                out.push(load_job(&jobs, id)?);
            }
            Ok(out)
        })
    }

    // ---- Chain cursor ----

    /// The last finalized block fully processed.
    pub fn cursor(&self) -> Result<Option<(u32, Hash)>, StoreError> {
        self.read(|txn| Ok(txn.open_table(CURSOR)?.get(CURSOR_KEY)?.map(|v| v.value())))
    }

    pub fn set_cursor(&self, number: u32, hash: &Hash) -> Result<(), StoreError> {
        self.write(|txn| {
            txn.open_table(CURSOR)?
                .insert(CURSOR_KEY, (number, *hash))?;
            Ok(())
        })
    }

    // ---- Replay protection ----

    /// Records `nonce` for `account` until `expires_at_ms`; returns false if it is already
    /// recorded (a replay). Check and record are one transaction, so two concurrent requests
    /// with the same nonce cannot both pass. Entries that expired before `now_ms` are pruned.
    pub fn record_nonce(
        &self,
        account: &AccountId,
        nonce: &[u8; 16],
        expires_at_ms: u64,
        now_ms: u64,
    ) -> Result<bool, StoreError> {
        self.write(|txn| {
            let mut nonces = txn.open_table(NONCES)?;
            let mut expiry = txn.open_table(NONCE_EXPIRY)?;
            let expired = expiry
                .range(..(now_ms, [0u8; 32], [0u8; 16]))?
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<Vec<_>, _>>()?;
            for (at, acc, n) in expired {
                expiry.remove((at, acc, n))?;
                nonces.remove((acc, n))?;
            }
            if nonces.get((*account, *nonce))?.is_some() {
                return Ok(false);
            }
            nonces.insert((*account, *nonce), expires_at_ms)?;
            expiry.insert((expires_at_ms, *account, *nonce), ())?;
            Ok(true)
        })
    }

    // ---- Controlled deletion ----

    /// Deletes, in one write transaction, every stored input of `model_id`, every result of
    /// `model_id` with epoch <= `epoch` and, if `eval_keys`, every evaluation key of `model_id`;
    /// returns what was deleted.
    ///
    /// Afterwards the sealed records are gone and unreachable. redb frees their pages without
    /// wiping them, so ciphertext may remain in the file until the pages are reused or
    /// [`Store::compact`] truncates them away; it was sealed under the data key, which never
    /// leaves the worker.
    pub fn delete_client_data(
        &self,
        model_id: u32,
        epoch: u32,
        eval_keys: bool,
    ) -> Result<ClientDataCount, StoreError> {
        self.write(|txn| {
            let mut count = ClientDataCount::default();
            let mut inputs = txn.open_table(INPUTS)?;
            for key in keys_of_model(&inputs, model_id)? {
                inputs.remove(key)?;
                count.inputs += 1;
            }
            let mut results = txn.open_table(RESULTS)?;
            let mut index = txn.open_table(RESULTS_BY_EPOCH)?;
            let doomed = index
                .range((model_id, 0, 0)..=(model_id, epoch, u64::MAX))?
                .map(|e| e.map(|(k, _)| k.value()))
                .collect::<Result<Vec<_>, _>>()?;
            for (m, e, id) in doomed {
                index.remove((m, e, id))?;
                if results.remove(id)?.is_some() {
                    count.results += 1;
                }
            }
            if eval_keys {
                let mut keys = txn.open_table(EVAL_KEYS)?;
                for key in keys_of_model(&keys, model_id)? {
                    keys.remove(key)?;
                    count.eval_keys += 1;
                }
            }
            Ok(count)
        })
    }

    /// What client data of `model_id` remains: inputs, results with epoch <= `epoch`, and
    /// evaluation keys. Used to verify a deletion.
    pub fn client_data_count(
        &self,
        model_id: u32,
        epoch: u32,
    ) -> Result<ClientDataCount, StoreError> {
        self.read(|txn| {
            let inputs = keys_of_model(&txn.open_table(INPUTS)?, model_id)?.len();
            let eval_keys = keys_of_model(&txn.open_table(EVAL_KEYS)?, model_id)?.len();
            let mut results = 0u64;
            let index = txn.open_table(RESULTS_BY_EPOCH)?;
            for entry in index.range((model_id, 0, 0)..=(model_id, epoch, u64::MAX))? {
                entry?;
                results += 1;
            }
            Ok(ClientDataCount {
                inputs: inputs as u64,
                results,
                eval_keys: eval_keys as u64,
            })
        })
    }

    // ---- Epoch-limit progress ----

    pub fn limit_stage(&self, model_id: u32, epoch: u32) -> Result<Option<LimitStage>, StoreError> {
        self.read(|txn| {
            txn.open_table(LIMITS)?
                .get((model_id, epoch))?
                .map(|v| decode("limit stage", v.value()))
                .transpose()
        })
    }

    pub fn set_limit_stage(
        &self,
        model_id: u32,
        epoch: u32,
        stage: &LimitStage,
    ) -> Result<(), StoreError> {
        let bytes = encode("limit stage", stage)?;
        self.write(|txn| {
            txn.open_table(LIMITS)?
                .insert((model_id, epoch), bytes.as_slice())?;
            Ok(())
        })
    }
}

/// Keys of a `(model_id, 32 bytes)`-keyed table that belong to `model_id`.
fn keys_of_model(
    table: &impl ReadableTable<(u32, [u8; 32]), &'static [u8]>,
    model_id: u32,
) -> Result<Vec<(u32, [u8; 32])>, StoreError> {
    let mut out = Vec::new();
    for entry in table.range((model_id, [0u8; 32])..=(model_id, [0xffu8; 32]))? {
        out.push(entry?.0.value());
    }
    Ok(out)
}

fn load_job(
    jobs: &impl ReadableTable<u64, &'static [u8]>,
    request_id: u64,
) -> Result<Job, StoreError> {
    let bytes = jobs.get(request_id)?.ok_or_else(|| {
        StoreError::Inconsistent(format!("job {request_id} is indexed but not stored"))
    })?;
    decode("job", bytes.value())
}

/// Brings the job indexes from `old` (the stored version, if any) to `new`.
fn index_job(txn: &WriteTransaction, old: Option<&Job>, new: &Job) -> Result<(), StoreError> {
    let id = new.request_id;
    let mut by_epoch = txn.open_table(JOBS_BY_EPOCH)?;
    if let Some(old) = old {
        if (old.model_id, old.epoch) != (new.model_id, new.epoch) {
            by_epoch.remove((old.model_id, old.epoch, id))?;
        }
    }
    by_epoch.insert((new.model_id, new.epoch, id), ())?;
    let mut pending = txn.open_table(JOBS_PENDING)?;
    if new.state == JobState::Settled {
        pending.remove(id)?;
    } else {
        pending.insert(id, ())?;
    }
    Ok(())
}

/// Reads the data key, or creates it when neither it nor a database exists yet.
fn load_or_create_key(
    data_dir: &Path,
    db_has_data: bool,
) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
    let path = data_dir.join(KEY_FILE);
    let key_err = |reason: String| StoreError::KeyFile {
        path: path.clone(),
        reason,
    };
    match fs::metadata(&path) {
        Ok(meta) => {
            if !meta.is_file() {
                return Err(key_err("is not a regular file".into()));
            }
            let mode = meta.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(key_err(format!(
                    "is accessible to group or others (mode {mode:03o}); it must be 0600"
                )));
            }
            let text = Zeroizing::new(fs::read(&path).map_err(io_err(&path))?);
            let hex_text = text.trim_ascii();
            if hex_text.len() != 2 * KEY_LEN {
                return Err(key_err(format!(
                    "must hold {} hex digits, holds {} bytes",
                    2 * KEY_LEN,
                    hex_text.len()
                )));
            }
            let mut key = Zeroizing::new([0u8; KEY_LEN]);
            hex::decode_to_slice(hex_text, &mut key[..])
                .map_err(|e| key_err(format!("is not hex: {e}")))?;
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            if db_has_data {
                // A fresh key could not open the existing data; never silently replace it.
                return Err(key_err(format!(
                    "is missing but {DB_FILE} holds data sealed under it; restore the key file"
                )));
            }
            create_key(data_dir, &path)
        }
        Err(e) => Err(io_err(&path)(e)),
    }
}

/// Writes a new random key to a temporary file and renames it into place, so a crash never
/// leaves a truncated key behind.
fn create_key(data_dir: &Path, path: &Path) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
    let mut key = Zeroizing::new([0u8; KEY_LEN]);
    getrandom::getrandom(&mut key[..]).map_err(StoreError::Random)?;
    let mut text = Zeroizing::new([0u8; 2 * KEY_LEN + 1]);
    hex::encode_to_slice(&key[..], &mut text[..2 * KEY_LEN]).map_err(|e| StoreError::KeyFile {
        path: path.to_path_buf(),
        reason: format!("cannot encode: {e}"),
    })?;
    text[2 * KEY_LEN] = b'\n';

    let tmp = data_dir.join(format!("{KEY_FILE}.tmp"));
    match fs::remove_file(&tmp) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(io_err(&tmp)(e)),
    }
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&tmp)
        .map_err(io_err(&tmp))?;
    file.write_all(&text[..]).map_err(io_err(&tmp))?;
    file.sync_all().map_err(io_err(&tmp))?;
    drop(file);
    fs::rename(&tmp, path).map_err(io_err(path))?;
    File::open(data_dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(data_dir))?;
    Ok(key)
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::ReadableTableMetadata;
    use tempfile::TempDir;

    fn open() -> (TempDir, Store) {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::open(&dir.path().join("data")).expect("open");
        (dir, store)
    }

    fn data(dir: &TempDir) -> PathBuf {
        dir.path().join("data")
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
        }
    }

    fn contains(haystack: &[u8], needle: &[u8]) -> bool {
        haystack.windows(needle.len()).any(|w| w == needle)
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
            let store = Store::open(&data(&dir)).unwrap();
            store.insert_job(&job(1, 1, 0)).unwrap();
            store.set_cursor(77, &[1; 32]).unwrap();
            assert!(store.record_nonce(&[1; 32], &[2; 16], 1000, 0).unwrap());
            store.put_input(1, &[3; 32], &input(1, b"x")).unwrap();
        }
        let store = Store::open(&data(&dir)).unwrap();
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
            let store = Store::open(&data(&dir)).unwrap();
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
        let file = fs::read(data(&dir).join(DB_FILE)).unwrap();
        assert!(
            contains(&file, &marker("jobmeta")),
            "control marker missing"
        );
        for tag in ["input", "evalkey", "model", "result"] {
            assert!(!contains(&file, &marker(tag)), "{tag} found in plaintext");
        }
    }

    #[test]
    fn values_moved_to_another_key_fail_authentication() {
        let (_dir, store) = open();
        store.put_input(1, &[1; 32], &input(1, b"alice's")).unwrap();
        store.put_eval_key(&[1; 32], 1, b"alice's key").unwrap();
        store.put_result(&result(10, 1, 0)).unwrap();
        store.put_model(1, b"model one").unwrap();
        {
            let db = store.db();
            let txn = db.begin_write().unwrap();
            {
                let mut inputs = txn.open_table(INPUTS).unwrap();
                let v = inputs
                    .get((1, [1u8; 32]))
                    .unwrap()
                    .unwrap()
                    .value()
                    .to_vec();
                inputs.insert((1, [2u8; 32]), v.as_slice()).unwrap();
                inputs.insert((2, [1u8; 32]), v.as_slice()).unwrap();

                let mut keys = txn.open_table(EVAL_KEYS).unwrap();
                let v = keys.get((1, [1u8; 32])).unwrap().unwrap().value().to_vec();
                keys.insert((1, [2u8; 32]), v.as_slice()).unwrap();

                let mut results = txn.open_table(RESULTS).unwrap();
                let (m, e, v) = {
                    let g = results.get(10).unwrap().unwrap();
                    let (m, e, v) = g.value();
                    (m, e, v.to_vec())
                };
                results.insert(11, (m, e, v.as_slice())).unwrap();
                // Same request, relabelled to another epoch.
                results.insert(10, (m, e + 1, v.as_slice())).unwrap();

                let mut models = txn.open_table(MODELS).unwrap();
                let v = models.get(1).unwrap().unwrap().value().to_vec();
                models.insert(2, v.as_slice()).unwrap();
            }
            txn.commit().unwrap();
        }
        let auth = |r: Result<(), StoreError>| matches!(r, Err(StoreError::Authentication));
        assert!(auth(store.input(1, &[2; 32]).map(drop)));
        assert!(auth(store.input(2, &[1; 32]).map(drop)));
        assert!(auth(store.eval_key(&[2; 32], 1).map(drop)));
        assert!(auth(store.result(11).map(drop)));
        assert!(auth(store.result(10).map(drop)));
        assert!(auth(store.model(2).map(drop)));
        // The originals still open.
        assert!(store.input(1, &[1; 32]).unwrap().is_some());
        assert!(store.eval_key(&[1; 32], 1).unwrap().is_some());
    }

    #[test]
    fn tampered_ciphertext_fails_authentication() {
        let (_dir, store) = open();
        store.put_input(1, &[1; 32], &input(1, b"abc")).unwrap();
        {
            let db = store.db();
            let txn = db.begin_write().unwrap();
            {
                let mut inputs = txn.open_table(INPUTS).unwrap();
                let mut v = inputs
                    .get((1, [1u8; 32]))
                    .unwrap()
                    .unwrap()
                    .value()
                    .to_vec();
                v[NONCE_LEN] ^= 1;
                inputs.insert((1, [1u8; 32]), v.as_slice()).unwrap();
                inputs.insert((1, [2u8; 32]), &[1u8, 2, 3][..]).unwrap();
            }
            txn.commit().unwrap();
        }
        assert!(matches!(
            store.input(1, &[1; 32]),
            Err(StoreError::Authentication)
        ));
        assert!(matches!(
            store.input(1, &[2; 32]),
            Err(StoreError::Authentication)
        ));
    }

    #[test]
    fn wrong_key_file_fails_authentication() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = Store::open(&data(&dir)).unwrap();
            store.put_input(1, &[1; 32], &input(1, b"abc")).unwrap();
        }
        let key_path = data(&dir).join(KEY_FILE);
        fs::write(&key_path, format!("{}\n", hex::encode([0x42u8; 32]))).unwrap();
        let err = Store::open(&data(&dir))
            .err()
            .expect("wrong key must not open");
        assert!(matches!(err, StoreError::Authentication), "{err}");
        assert_eq!(
            err.to_string(),
            "stored value failed authentication (tampered or wrong key)"
        );
    }

    #[test]
    fn key_file_and_directory_permissions() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(&data(&dir)).unwrap());
        let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let key_path = data(&dir).join(KEY_FILE);
        assert_eq!(mode(&key_path), 0o600);
        assert_eq!(mode(&data(&dir)), 0o700);
        assert_eq!(mode(&data(&dir).join(DB_FILE)), 0o600);
        let text = fs::read_to_string(&key_path).unwrap();
        assert_eq!(text.trim().len(), 64);
        assert!(!data(&dir).join(format!("{KEY_FILE}.tmp")).exists());

        // Group-readable: refused.
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o640)).unwrap();
        let err = Store::open(&data(&dir))
            .err()
            .expect("0640 key must be refused");
        assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
        drop(Store::open(&data(&dir)).unwrap());
    }

    #[test]
    fn malformed_or_missing_key_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(Store::open(&data(&dir)).unwrap());
        let key_path = data(&dir).join(KEY_FILE);
        let original = fs::read(&key_path).unwrap();

        fs::write(&key_path, b"not hex at all").unwrap();
        let err = Store::open(&data(&dir)).err().expect("malformed key");
        assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
        fs::write(&key_path, "zz".repeat(32)).unwrap();
        let err = Store::open(&data(&dir)).err().expect("non-hex key");
        assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");

        // Missing beside a database with data: never replaced by a fresh key.
        fs::remove_file(&key_path).unwrap();
        let err = Store::open(&data(&dir)).err().expect("missing key");
        assert!(matches!(err, StoreError::KeyFile { .. }), "{err}");
        assert!(!key_path.exists());

        fs::write(&key_path, original).unwrap();
        fs::set_permissions(&key_path, fs::Permissions::from_mode(0o600)).unwrap();
        drop(Store::open(&data(&dir)).unwrap());
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

    #[test]
    fn compaction_after_deletion_shrinks_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&data(&dir)).unwrap();
        let big = vec![0x5au8; 8 << 20];
        store.put_eval_key(&[1; 32], 1, &big).unwrap();
        let size = || fs::metadata(data(&dir).join(DB_FILE)).unwrap().len();
        let before = size();
        store.delete_client_data(1, 0, true).unwrap();
        // Repeat: redb frees pages over more than one commit.
        while store.compact().unwrap() {}
        assert!(size() < before / 2, "{} !< {before}/2", size());
        assert_eq!(store.eval_key(&[1; 32], 1).unwrap(), None);
    }
}
