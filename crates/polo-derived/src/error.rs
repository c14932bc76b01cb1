//! Errors of the derived-data layer.

use polo_store::StoreError;
use polo_timeline::TimelineError;

/// What can go wrong computing, storing or reading derived data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DerivedError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A computation rejected its input or parameters.
    #[error("timeline computation failed: {0}")]
    Timeline(#[from] TimelineError),
    /// A stored derived row failed to decode.
    #[error("corrupt derived row (kind {kind}, key {key}): {why}")]
    Corrupt {
        /// The row's kind number.
        kind: u16,
        /// The row's key.
        key: i64,
        /// What was wrong.
        why: String,
    },
    /// The caller asked for something that does not exist or cannot be.
    #[error("{0}")]
    Invalid(String),
}

/// Result alias.
pub type DerivedResult<T> = Result<T, DerivedError>;
