//! Errors at the crate's edge. Integrity failures name the object and never carry its contents.

#[derive(Debug, thiserror::Error)]
pub enum OramError {
    #[error("invalid ORAM parameters: {0}")]
    Config(String),
    #[error("the epoch's record store is full: {0}")]
    Full(String),
    #[error("a value of {len} bytes is over the limit of {max}")]
    TooLarge { len: u64, max: u64 },
    #[error("address {address} is outside the ORAM's {capacity} blocks")]
    AddressOutOfRange { address: u64, capacity: u64 },
    #[error("a block is {expected} bytes, got {got}")]
    BlockLength { expected: usize, got: usize },
    #[error(
        "integrity check failed for {object}: {reason}; nothing from it was used (the storage \
         was modified, replayed or rolled back)"
    )]
    Integrity {
        object: String,
        reason: &'static str,
    },
    #[error(
        "the stash holds {size} blocks after eviction, above its bound of {bound} (probability \
         ≤ 2^-40 per epoch at the configured accesses); nothing was committed"
    )]
    StashOverflow { size: usize, bound: usize },
    #[error(
        "this epoch already served its {max} accesses (the stash bound is only proven up to \
         there): shred it and start a new epoch"
    )]
    EpochExhausted { max: u64 },
    #[error(
        "an earlier storage failure left this handle out of step with its storage; reopen the \
         epoch to recover from the journal"
    )]
    Poisoned,
    #[error("the anchor file {path}: {reason}")]
    Anchor { path: String, reason: String },
    #[error("the key file {path}: {reason}")]
    KeyFile { path: String, reason: String },
    #[error("crypto: {0}")]
    Crypto(&'static str),
    #[error("storage: {0}")]
    Storage(#[from] object_store::Error),
    #[error("local file: {0}")]
    Io(#[from] std::io::Error),
}

impl OramError {
    pub(crate) fn integrity(object: impl Into<String>, reason: &'static str) -> Self {
        Self::Integrity {
            object: object.into(),
            reason,
        }
    }
}
