//! What the workflow stores, as records of the store (`polo_store::records`):
//! the kinds, how keys are made (so that they sort the way they are read),
//! and the bodies (JSON).
//!
//! | kind | key | concerns | time (retention) |
//! |---|---|---|---|
//! | [`CASE`] | case id | the case | end of the infectious period |
//! | [`WINDOW`] | window start | — | window start |
//! | [`CONTACT`] | window start / case id / contact | the contact | window start |
//! | [`PROPOSAL`] | case id / contact | the contact | last contact |
//! | [`STATUS`] | user | the user | last change |
//! | [`KEY`] | `signing` | — | creation |
//!
//! Numbers in keys are zero-padded so that byte order is numeric order.

use polo_domain::{Timestamp, UserId};
use polo_store::{Record, RecordWrite};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::{ExposureError, ExposureResult};

/// A case marked by the authority.
pub const CASE: &str = "exposure.case";
/// A window of the batch and whether it waits in the queue.
pub const WINDOW: &str = "exposure.window";
/// A contact of a case in one window.
pub const CONTACT: &str = "exposure.contact";
/// A proposed status change for a contact of a case.
pub const PROPOSAL: &str = "exposure.proposal";
/// A user's precomputed status and code.
pub const STATUS: &str = "exposure.status";
/// The instance's signing key.
pub const KEY: &str = "exposure.key";

/// A zero-padded number for keys.
#[must_use]
pub fn pad(n: i64) -> String {
    format!("{n:015}")
}

/// A confirmed case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Case {
    /// Its id (random).
    pub id: String,
    /// The user who is the case.
    pub user: i64,
    /// Start of the infectious period (ms).
    pub infectious_from: i64,
    /// End of the infectious period (ms, exclusive).
    pub infectious_to: i64,
    /// The authority who marked it (user name).
    pub marked_by: String,
    /// When (ms).
    pub marked_at: i64,
    /// Why (free text, kept in the audit log too).
    pub note: String,
    /// When it was withdrawn, if it was.
    pub withdrawn_at: Option<i64>,
}

impl Case {
    /// Whether the case counts (not withdrawn).
    #[must_use]
    pub fn active(&self) -> bool {
        self.withdrawn_at.is_none()
    }

    /// Whether the infectious period overlaps `[from, to)`.
    #[must_use]
    pub fn overlaps(&self, from: i64, to: i64) -> bool {
        self.infectious_from < to && from < self.infectious_to
    }
}

/// A window of the batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowState {
    /// Start (ms, inclusive).
    pub start: i64,
    /// End (ms, exclusive).
    pub end: i64,
    /// Waiting to be computed (again).
    pub queued: bool,
    /// Since when it waits (ms).
    pub queued_at: i64,
    /// Why it was queued: `complete` or `late data`.
    pub reason: String,
    /// When it was last computed (ms).
    pub computed_at: Option<i64>,
    /// Contacts found the last time.
    pub contacts: u64,
    /// The parameters (D in metres, T in milliseconds) of the last computation.
    pub computed_with: (f64, i64),
}

/// A contact of a case in one window: the encounter of the case's points
/// in its infectious period with the contact's.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Contact {
    /// The case's id.
    pub case: String,
    /// The case's user.
    pub case_user: i64,
    /// The contact.
    pub contact: i64,
    /// The window's start (ms).
    pub window: i64,
    /// First pair (ms).
    pub first: i64,
    /// Last pair (ms).
    pub last: i64,
    /// Exposure minutes: each encounter's from its first pair to its last
    /// (rounded up), added up over the window's encounters.
    pub minutes: u32,
    /// Point pairs within D and T.
    pub pairs: u64,
    /// Closest distance (m).
    pub min_distance_m: f64,
}

impl Contact {
    /// The record key.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{}/{}/{}", pad(self.window), self.case, pad(self.contact))
    }
}

/// Where a proposal stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProposalState {
    /// Waits for the authority.
    Pending,
    /// Approved by the authority: the status was applied.
    Approved,
    /// Rejected by the authority.
    Rejected,
    /// Applied by the rules without a person (auto-apply).
    Applied,
}

/// What the rules looked at: a contact's exposure to one case, over every window.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evidence {
    /// Exposure minutes, summed over windows.
    pub minutes: u32,
    /// Encounters: windows with contact.
    pub encounters: u32,
    /// Point pairs.
    pub pairs: u64,
    /// First pair (ms).
    pub first: i64,
    /// Last pair (ms).
    pub last: i64,
    /// Closest distance (m).
    pub min_distance_m: f64,
}

/// A proposed status change for a contact of a case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The case's id.
    pub case: String,
    /// The contact.
    pub contact: i64,
    /// Where it stands.
    pub state: ProposalState,
    /// The status it proposes.
    pub status: Status,
    /// What the rules saw.
    pub evidence: Evidence,
    /// The thresholds it met (minutes, encounters).
    pub rule: (f64, f64),
    /// When it was made (ms).
    pub created: i64,
    /// Who decided (a user name, or `system`).
    pub decided_by: Option<String>,
    /// When (ms).
    pub decided_at: Option<i64>,
    /// Why (the authority's words).
    pub reason: Option<String>,
}

impl Proposal {
    /// The record key.
    #[must_use]
    pub fn key(case: &str, contact: i64) -> String {
        format!("{case}/{}", pad(contact))
    }
}

/// A user's exposure status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// No exposure the authority acted on.
    Clear,
    /// Near a case, as the rules and the authority decided.
    Exposed,
}

impl Status {
    /// The name, as sent and signed.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Clear => "clear",
            Self::Exposed => "exposed",
        }
    }

    /// The status called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Clear, Self::Exposed].into_iter().find(|s| s.name() == name)
    }
}

/// A user's precomputed status: what `GET /api/v1/exposure/status` serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRow {
    /// The user.
    pub user: i64,
    /// The status.
    pub status: Status,
    /// Since when (ms).
    pub since: i64,
    /// Until when the status and its code are valid (ms).
    pub valid_until: i64,
    /// The signed code ([`crate::signing`]).
    pub code: String,
    /// When the row was written (ms): with the user, the row's ETag.
    pub updated: i64,
}

impl StatusRow {
    /// The record key.
    #[must_use]
    pub fn key(user: UserId) -> String {
        pad(user.0)
    }
}

/// Decodes a record's body.
///
/// # Errors
/// [`ExposureError::Corrupt`] naming the record.
pub fn decode<T: DeserializeOwned>(record: &Record) -> ExposureResult<T> {
    serde_json::from_str(&record.body).map_err(|e| ExposureError::Corrupt {
        kind: record.kind.clone(),
        key: record.key.clone(),
        why: e.to_string(),
    })
}

/// A put of `body` as the record `kind`/`key`.
#[must_use]
pub fn put<T: Serialize>(kind: &str, key: String, user: Option<i64>, at: i64, body: &T) -> RecordWrite {
    RecordWrite::Put(Record {
        kind: kind.to_owned(),
        key,
        user: user.map(UserId),
        at: Timestamp(at),
        // Serialising these plain structs cannot fail.
        body: serde_json::to_string(body).unwrap_or_default(),
    })
}

/// A delete of the record `kind`/`key`.
#[must_use]
pub fn delete(kind: &str, key: String) -> RecordWrite {
    RecordWrite::Delete { kind: kind.to_owned(), key }
}
