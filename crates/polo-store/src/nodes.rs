//! What several `polo serve` nodes sharing one store coordinate through it.
//!
//! A node keeps nothing that another node needs in its own memory: the
//! state below lives in the store, so any node can answer for it and a node
//! that dies loses nothing but the work it was doing.
//!
//! * **Leases** ([`Store::try_lease`](crate::Store::try_lease)): background
//!   work that must run once across nodes (the timeline worker) is done by
//!   whoever holds its lease. A holder renews it well before it expires; a
//!   dead holder stops renewing, the lease expires, and another node takes it.
//!   Lease times are the store's clock where it has one (PostgreSQL), so the
//!   nodes' clocks need not agree.
//! * **Import jobs** ([`ImportJobRecord`]): status, progress and summary,
//!   written through by the node running the job, with a heartbeat. A job
//!   whose heartbeat stopped is failed by whichever node notices
//!   ([`Store::fail_stale_import_jobs`](crate::Store::fail_stale_import_jobs)):
//!   the upload sat on the dead node's disk, so it cannot be resumed elsewhere.
//! * **Failure counters** ([`FailureCount`]): the failed-login (and token,
//!   share-link) back-off counts per key across nodes, in one atomic upsert
//!   per failure, so an attacker spreading guesses over N nodes gets the
//!   allowance once, not N times.
//! * **Live messages** ([`LiveSubscription`]): a position stored on one
//!   node reaches the live streams of the others. A store shared by nodes
//!   hands each node a [`LiveReceiver`]; a store only one process serves
//!   (SQLite) answers [`LiveSubscription::LocalOnly`], and the server's
//!   in-process feed is all there is.

use std::time::Duration;

use polo_domain::{Timestamp, UserId};

use crate::StoreResult;

/// Where an import job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImportJobStatus {
    /// Uploaded, waiting for a free import slot on its node.
    Queued,
    /// Importing.
    Running,
    /// Finished; every entry was imported.
    Done,
    /// Finished with an error, or its node stopped.
    Failed,
}

impl ImportJobStatus {
    /// Whether the job has ended (a finished record never changes again).
    #[must_use]
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }

    /// The stored code.
    #[must_use]
    pub fn code(self) -> i16 {
        match self {
            Self::Queued => 0,
            Self::Running => 1,
            Self::Done => 2,
            Self::Failed => 3,
        }
    }

    /// The status of a stored code.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`](crate::StoreError::Corrupt) for an unknown code.
    pub fn from_code(code: i16) -> StoreResult<Self> {
        Ok(match code {
            0 => Self::Queued,
            1 => Self::Running,
            2 => Self::Done,
            3 => Self::Failed,
            other => return Err(crate::StoreError::Corrupt(format!("import job status {other}"))),
        })
    }
}

/// An HTTP import job as every node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportJobRecord {
    /// The owner.
    pub user: UserId,
    /// The job's id (random, unique per user).
    pub id: String,
    /// The uploaded file's name, as the client gave it.
    pub file_name: String,
    /// Where it is.
    pub status: ImportJobStatus,
    /// The node running it (its random id of this start).
    pub holder: String,
    /// When the upload was accepted.
    pub started: Timestamp,
    /// When the running node last said it was alive.
    pub heartbeat: Timestamp,
    /// When it ended.
    pub finished: Option<Timestamp>,
    /// The upload's size.
    pub bytes_total: u64,
    /// How much of it has been read.
    pub bytes_read: u64,
    /// Points stored so far.
    pub points_added: u64,
    /// Points that were stored already.
    pub duplicates: u64,
    /// Points left out because the user had deleted them.
    pub deleted_left_out: u64,
    /// Intervals stored so far.
    pub intervals_added: u64,
    /// Records rejected so far.
    pub rejected: u64,
    /// Why it failed.
    pub error: Option<String>,
    /// The per-file summary, opaque to the store (the server's JSON).
    pub report: Option<String>,
}

/// A back-off key's failures, as [`Store::count_failure`](crate::Store::count_failure) left them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    /// Failures since the key was last forgotten.
    pub failures: u32,
    /// The latest of them.
    pub last_failure: Timestamp,
}

/// How a node hears what the other nodes publish.
pub enum LiveSubscription {
    /// No other node shares this store: the node's own feed is complete.
    LocalOnly,
    /// Messages other nodes publish, without this store's own.
    Shared(Box<dyn LiveReceiver>),
}

impl std::fmt::Debug for LiveSubscription {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::LocalOnly => "LocalOnly",
            Self::Shared(_) => "Shared",
        })
    }
}

/// The receiving end of a [`LiveSubscription::Shared`], read by one thread.
pub trait LiveReceiver: Send {
    /// The messages that arrived, waiting up to `timeout` for the first
    /// (empty when none came).
    ///
    /// # Errors
    /// The connection was lost: messages may have been missed, and the
    /// caller subscribes again.
    fn wait(&mut self, timeout: Duration) -> StoreResult<Vec<String>>;
}

/// The longest message [`Store::publish_live`](crate::Store::publish_live) carries (PostgreSQL's
/// `NOTIFY` takes under 8000 bytes, with room for the sender's id).
pub const MAX_LIVE_MESSAGE: usize = 7000;
