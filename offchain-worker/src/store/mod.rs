//! The worker's store, in two parts kept apart from the keys that protect them:
//!
//! * **Client data** — uploaded inputs, results and evaluation keys — lives in the model's
//!   *epoch vault* ([`vault`]): a `smidl-oram` Path ORAM on the untrusted storage
//!   (`<data_dir>/oram/`), one per model and epoch generation, with its own key. The storage
//!   host sees fixed-size sealed objects and uniformly random tree paths, not which record is
//!   read. At the epoch's end the generation is shredded: its key is destroyed, then its objects
//!   deleted, and the final Merkle root recorded ([`Store::erasure`]).
//! * **Everything else** is a `redb` database in `<data_dir>/worker.redb`: model records
//!   (plaintext weights, sealed with XChaCha20-Poly1305 under the 32-byte data key, associated
//!   data naming table and key) and plain job metadata the chain already records (request ids,
//!   commitments, account ids, block numbers, job states), the chain cursor, replay nonces, the
//!   progress of epoch resets, each model's vault generation and the erasure reports.
//!
//! **Keys live in the key directory** (`--key-dir`, by default `<data_dir>.keys`), never inside
//! the data directory: `worker.key` (the data key, hex, 0600) and the vaults' key and anchor
//! files. A copy of the data directory carries no key.
//!
//! One module per concern: `seal` (the cipher and associated data), `client_data` (models,
//! evaluation keys, inputs, results), `vault` (the ORAM per model generation), `jobs` (the
//! backlog), `cursor` (the follower's position), `nonces` (request replay protection) and
//! `deletion` (epoch-end shredding); this module opens the store and holds what they share.

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
    /// The weights commitment of the model whose `verify_input` accepted this ciphertext at
    /// upload (its input proof). Kept inside the authenticated vault, so a storage host cannot
    /// set it; evaluation under other weights verifies again.
    pub verified_for: Option<Hash>,
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
    /// fetch it, so a charge the chain could still refund never buys an answer. Not part of
    /// the vault's record: read from the sealed `released` marker ([`Store::result`]).
    #[serde(skip)]
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
    #[error(
        "database format {found} is not the one this worker uses ({supported}); an older \
         store kept client data in the database: let it finish its epochs with the worker that \
         made it, or remove it"
    )]
    Format { found: u32, supported: u32 },
    #[error("client data vault: {0}")]
    Vault(#[source] Box<smidl_oram::OramError>),
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
/// Bumped when a table's layout changes; a worker opens only its own format. 2: client data
/// moved into the epoch vaults. 3: a result's release is a sealed marker in `released`, not a
/// field of the vault's record.
const FORMAT: u32 = 3;
/// The vaults' objects, under the data directory (untrusted storage).
const VAULT_DIR: &str = "oram";
/// The page cache; evaluation keys are large, and the worker caches what it decodes anyway.
const CACHE_BYTES: usize = 256 << 20;
/// Upper bound for any bincode record, so a corrupt length cannot ask for unbounded memory.
const MAX_RECORD: u64 = 1 << 30;
/// Prefix of every value's associated data; versioned with the sealing scheme.
const AAD_DOMAIN: &[u8] = b"smidl-worker-store/v1\0";
const KEY_CHECK: &[u8] = b"smidl worker data key check";

// Sealed tables.
const MODELS: TableDefinition<u32, &[u8]> = TableDefinition::new("models");
/// request_id -> sealed(output commitment): the result with this commitment answered a final
/// completion and may be served. Sealed because the database sits on the storage host's disk:
/// a plain flag there would let the host (with a client) unlock an answer whose charge could
/// still be refunded. Kept out of the vault so that releasing costs no ORAM rewrite.
const RELEASED: TableDefinition<u64, &[u8]> = TableDefinition::new("released");

// Plain tables.
/// request_id -> (model_id, epoch): where a result is (its vault and record key).
const RESULT_LOC: TableDefinition<u64, (u32, u32)> = TableDefinition::new("result_loc");
/// (model_id, epoch, request_id): an epoch's results, for deletion.
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
/// model_id -> the vault generation that receives its client data now.
const VAULT_GEN: TableDefinition<u32, u64> = TableDefinition::new("vault_gen");
/// (model_id, epoch) -> bincode(Erasure): what the epoch-end shredding left for the record.
const ERASURES: TableDefinition<(u32, u32), &[u8]> = TableDefinition::new("erasures");

const CURSOR_KEY: &str = "finalized";
const META_FORMAT: &str = "format";
const META_KEY_CHECK: &str = "key_check";

mod client_data;
mod cursor;
mod deletion;
mod jobs;
mod nonces;
mod seal;
#[cfg(test)]
mod tests;
pub mod vault;
mod vault_cache;

use seal::*;
pub use vault::Erasure;
use vault::Vaults;

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

pub struct Store {
    // Behind a lock only so that `compact` can have the database to itself; every other call
    // shares it (redb serializes writers and runs readers concurrently).
    db: RwLock<Database>,
    sealer: Sealer,
    vaults: Vaults,
}

/// The key directory used when none is given: `<data_dir>.keys`, beside (not inside) the data
/// directory.
pub fn default_key_dir(data_dir: &Path) -> PathBuf {
    let mut name = data_dir
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_else(|| "smidl-worker-data".into());
    name.push(".keys");
    data_dir.with_file_name(name)
}

fn private_dir(dir: &Path) -> Result<(), StoreError> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .map_err(io_err(dir))?;
    fs::set_permissions(dir, fs::Permissions::from_mode(0o700)).map_err(io_err(dir))
}
impl Store {
    /// The vaults' ORAM accesses and read-cache use since the process started.
    pub fn vault_stats(&self) -> vault::VaultStats {
        self.vaults.stats()
    }

    /// Opens the store in `data_dir` with its keys in `key_dir`, creating the directories
    /// (0700), the data key (0600) and the database on first use. Refuses a key directory inside
    /// the data directory (or the reverse), a key file in the data directory, a key file others
    /// can read, a missing key file beside an existing database, and a key that does not open
    /// this database.
    pub fn open(data_dir: &Path, key_dir: &Path) -> Result<Self, StoreError> {
        private_dir(data_dir)?;
        private_dir(key_dir)?;
        let (data_c, key_c) = (
            data_dir.canonicalize().map_err(io_err(data_dir))?,
            key_dir.canonicalize().map_err(io_err(key_dir))?,
        );
        if key_c.starts_with(&data_c) || data_c.starts_with(&key_c) {
            return Err(StoreError::KeyFile {
                path: key_dir.to_path_buf(),
                reason: format!(
                    "the key directory and the data directory {} must be apart: a copy of the \
                     data must not carry its keys",
                    data_dir.display()
                ),
            });
        }
        let stray = data_dir.join(KEY_FILE);
        if stray.exists() {
            return Err(StoreError::KeyFile {
                path: stray,
                reason: format!(
                    "a key file lies inside the data directory; move it to {}",
                    key_dir.join(KEY_FILE).display()
                ),
            });
        }
        let db_path = data_dir.join(DB_FILE);
        let db_has_data = match fs::metadata(&db_path) {
            Ok(m) => m.len() > 0,
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err(&db_path)(e)),
        };
        let key = load_or_create_key(key_dir, db_has_data)?;
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

        let vault_state = key_dir.join(VAULT_DIR);
        private_dir(&vault_state)?;
        let vaults = Vaults::start(&data_dir.join(VAULT_DIR), &vault_state)?;
        let store = Self {
            db: RwLock::new(db),
            sealer,
            vaults,
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
            txn.open_table(RELEASED)?;
            txn.open_table(RESULT_LOC)?;
            txn.open_table(RESULTS_BY_EPOCH)?;
            txn.open_table(VAULT_GEN)?;
            txn.open_table(ERASURES)?;
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
                Some(found) if found != FORMAT => {
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
    key_dir: &Path,
    db_has_data: bool,
) -> Result<Zeroizing<[u8; KEY_LEN]>, StoreError> {
    let path = key_dir.join(KEY_FILE);
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
            create_key(key_dir, &path)
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
