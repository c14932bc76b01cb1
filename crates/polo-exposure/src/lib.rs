//! The exposure workflow ("health code"): who was near a confirmed case,
//! what their status is, and the signed code that shows it.
//!
//! The issue keeps three paths apart so that each can be optimised alone,
//! and this crate follows it:
//!
//! * **Collection** is polo's live ingest; nothing here touches it.
//! * **The batch** ([`windows`], [`batch`]) runs over complete time windows
//!   (a window is complete once its end is older than the configured delay),
//!   finds every case's contacts with `polo_encounters::exposures` and stores
//!   them. Points that arrive later for a closed window are found through the
//!   store's change log and the window is computed again; a computation
//!   replaces the window's contacts and writes only what differs, so running
//!   it twice changes nothing.
//! * **Decisions** ([`workflow`]): rules propose a status change per contact,
//!   applied at once or queued for the health authority; every decision is
//!   written to the audit log in the same transaction.
//! * **The read path** is one precomputed row per user ([`model::StatusRow`])
//!   holding the status and its signed code ([`signing`]); a request reads
//!   it and computes nothing.
//!
//! Everything is stored through the store's backend-neutral records
//! (`polo_store::records`), so the rules are written once for both
//! backends. Functions take the store, the [`settings::Settings`] and the
//! time explicitly; the server's worker and routes supply them.

pub mod batch;
pub mod model;
pub mod retention;
pub mod settings;
pub mod signing;
pub mod windows;
pub mod workflow;

use polo_store::StoreError;

/// What can go wrong in the workflow.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExposureError {
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The request cannot be carried out as asked; the text says why.
    #[error("{0}")]
    Invalid(String),
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// The thing is not in a state that allows this (a decided proposal).
    #[error("{0}")]
    Conflict(String),
    /// A stored exposure record does not decode.
    #[error("damaged exposure record {kind} {key}: {why}")]
    Corrupt {
        /// Its kind.
        kind: String,
        /// Its key.
        key: String,
        /// What is wrong.
        why: String,
    },
}

/// Result alias.
pub type ExposureResult<T> = Result<T, ExposureError>;

/// Milliseconds in an hour and a day.
pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;
