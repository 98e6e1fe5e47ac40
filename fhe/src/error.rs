//! The crate's one error type. Everything that crosses a trust boundary (bytes from a client, a
//! key file, an ONNX file, a CSV) fails with one of these variants, never with a panic.

use thiserror::Error;

/// What kind of object an envelope holds; used in errors and in the envelope header.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ObjectKind {
    ClientSpec,
    ServerModel,
    ClientKey,
    EvaluationKey,
    EncryptedInput,
    EncryptedOutput,
    SealedModel,
    InputCrs,
}

#[derive(Debug, Error)]
pub enum FheError {
    #[error("{kind:?}: input truncated (needed {needed} bytes, got {got})")]
    Truncated {
        kind: ObjectKind,
        needed: usize,
        got: usize,
    },
    #[error("{kind:?}: {len} bytes exceeds the limit of {limit}")]
    Oversized {
        kind: ObjectKind,
        len: usize,
        limit: usize,
    },
    #[error("{kind:?}: bad magic bytes")]
    BadMagic { kind: ObjectKind },
    #[error("{kind:?}: unsupported format version {found} (expected {expected})")]
    UnsupportedVersion {
        kind: ObjectKind,
        found: u16,
        expected: u16,
    },
    #[error("expected a {expected:?}, found object tag {found}")]
    WrongKind { expected: ObjectKind, found: u8 },
    #[error("{kind:?}: corrupted payload: {reason}")]
    Corrupted { kind: ObjectKind, reason: String },
    #[error("{kind:?}: made for other parameters: {reason}")]
    WrongParameters { kind: ObjectKind, reason: String },
    #[error("{kind:?}: trailing bytes after the payload")]
    TrailingBytes { kind: ObjectKind },
    #[error("this model needs an evaluation key and none was given")]
    MissingEvaluationKey,
    #[error("expected {expected} features, got {got}")]
    FeatureCount { expected: usize, got: usize },
    #[error("feature {index} is not a finite number")]
    NonFiniteFeature { index: usize },
    #[error("input proof: {0}")]
    Proof(String),
    #[error("input refused: {0}")]
    InputRefused(String),
    #[error("label answer: {0}")]
    LabelAnswer(String),
    #[error("offset out of range: {reason}")]
    OffsetOutOfRange { reason: String },
    #[error("sealed model: authentication failed (wrong key or tampered file)")]
    SealAuthentication,
    #[error("model key file: {0}")]
    KeyFile(String),
    #[error("ONNX: {0}")]
    Onnx(String),
    #[error("CSV: {0}")]
    Csv(String),
    #[error("model: {0}")]
    Model(String),
    #[error("quantisation: {0}")]
    Quant(String),
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
}

pub type Result<T, E = FheError> = std::result::Result<T, E>;
