//! # smidl-anon: data aggregation for smidl
//!
//! Clinics contribute patient records for a model's next generation; the model provider must
//! never hold a record outside a k-anonymous, l-diverse release. This crate holds the parts
//! that need no chain, FHE or network code, each usable alone:
//!
//! - [`table`]: a table of numeric records (quasi-identifiers, other attributes, a label)
//!   parsed from the CSV layout smidl trains on.
//! - [`mondrian`]: strict multidimensional Mondrian partitioning (LeFevre, DeWitt,
//!   Ramakrishnan 2006) over the quasi-identifiers, where a cut is allowed only if both halves
//!   keep ≥ k rows and ≥ l distinct labels (distinct l-diversity, Machanavajjhala et al. 2007).
//! - [`release`]: the anonymised release (quasi-identifiers generalised to ranges), its CSV
//!   form, its salted commitment, the verifier anyone runs against the chain's record, and the
//!   linkage an adversary would attempt.
//! - [`metrics`]: the normalised certainty penalty (NCP) of a release.
//! - [`seal`]: sealing a clinic's batch to the aggregator's X25519 key, so raw records reach
//!   nobody else (the provider and the storage in between see ciphertext).
//!
//! What k-anonymity and l-diversity protect and what they do not is in `docs/privacy.md`
//! ("Data aggregation"): they stop record linkage on the declared quasi-identifiers and the
//! extreme homogeneity attack; they are not differential privacy.

pub mod metrics;
pub mod mondrian;
pub mod release;
pub mod seal;
pub mod table;

pub use mondrian::{anonymise, AnonConfig};
pub use release::{Release, Verified};
pub use table::Table;

/// Errors at this crate's edges: bad input is refused with what is wrong, nothing is lost.
#[derive(Debug, thiserror::Error)]
pub enum AnonError {
    #[error("CSV: {0}")]
    Csv(String),
    #[error("{0} bytes is larger than the {1}-byte limit")]
    TooLarge(usize, usize),
    #[error("quasi-identifier {0:?} is not a column (columns: {1})")]
    UnknownColumn(String, String),
    #[error("invalid quasi-identifier list: {0}")]
    BadQuasiIdentifiers(String),
    #[error("k must be ≥ 2 and l must be 1 ≤ l ≤ k (got k = {k}, l = {l})")]
    BadParameters { k: usize, l: usize },
    #[error(
        "the table cannot be made {k}-anonymous and {l}-diverse: it has {rows} rows and \
         {labels} distinct labels"
    )]
    Infeasible {
        k: usize,
        l: usize,
        rows: usize,
        labels: usize,
    },
    #[error("the release violates its claim: {0}")]
    Violation(String),
    #[error("tables do not share a layout: {0}")]
    LayoutMismatch(String),
    #[error("sealed contribution: {0}")]
    Seal(String),
    #[error("randomness: {0}")]
    Random(String),
}

pub type Result<T> = std::result::Result<T, AnonError>;

/// Fill `buf` from the operating system's CSPRNG.
pub(crate) fn os_random(buf: &mut [u8]) -> Result<()> {
    getrandom::getrandom(buf).map_err(|e| AnonError::Random(e.to_string()))
}
