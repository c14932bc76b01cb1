//! Instance records, roles and the audit log: storage for features whose
//! meaning is backend-neutral (the exposure workflow, `polo-exposure`).
//!
//! A feature like exposure keeps a handful of small, instance-wide documents
//! (cases, contacts per window, proposals, precomputed statuses, its signing
//! key). Giving each its own table and its own trait methods in both
//! backends would put the workflow's rules into SQL twice; instead the
//! backends store opaque [`Record`]s — a kind, a key, the user they concern,
//! a time, a body — and apply a batch of [`RecordWrite`]s in one
//! transaction, while the feature's crate gives the bodies their types and
//! decides what to write. Every query is by kind and key prefix, in key
//! order, so keys are chosen to sort the way they are read.
//!
//! A record that concerns a user names them ([`Record::user`]): deleting
//! the account deletes its records.
//!
//! The [`AuditEntry`] log is generic (actor, action, subject, detail JSON,
//! time) so that other features can write to it; it is appended to in the
//! same transaction as the decision it records.
//!
//! [`Role`]s are kept on the user row. Like records and the audit log they are
//! local to the instance: none of this enters the change log or replicates.

use polo_domain::{Timestamp, UserId};

/// A role a user may hold besides administrator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Marks cases and decides on exposure proposals; the only role that
    /// sees other people's encounters. Separate from administrator: an
    /// administrator manages the instance, not people's health.
    HealthAuthority,
}

impl Role {
    /// Every role.
    pub const ALL: [Self; 1] = [Self::HealthAuthority];

    /// The stable name (`health-authority`), as stored and sent.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::HealthAuthority => "health-authority",
        }
    }

    /// The role called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }
}

/// One stored document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// What it is (`exposure.case`, …): the feature's name for a type.
    pub kind: String,
    /// Unique within `kind`; queries return records in key order.
    pub key: String,
    /// The user it concerns, if any: deleting the account deletes it.
    pub user: Option<UserId>,
    /// A time the feature chooses (retention deletes by it).
    pub at: Timestamp,
    /// The body, opaque to the store (JSON by convention).
    pub body: String,
}

/// One write of a [`crate::Store::write_records`] batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RecordWrite {
    /// Stores the record, replacing one with the same kind and key.
    Put(Record),
    /// Stores the record unless one with the same kind and key exists (then
    /// the stored one is kept): for values made once, like a key pair.
    Insert(Record),
    /// Deletes the record of `kind` with `key`, if any.
    Delete {
        /// The kind.
        kind: String,
        /// The key.
        key: String,
    },
    /// Deletes every record of `kind` whose key starts with `prefix`.
    DeletePrefix {
        /// The kind.
        kind: String,
        /// The key prefix (`""`: every record of the kind).
        prefix: String,
    },
    /// Deletes every record of `kind` whose time is before `before`.
    DeleteBefore {
        /// The kind.
        kind: String,
        /// Exclusive bound.
        before: Timestamp,
    },
    /// Appends an entry to the audit log (its `id` is ignored and assigned).
    Audit(AuditEntry),
    /// Deletes the audit entries made before `before`.
    AuditBefore(Timestamp),
    /// Deletes the audit entries made before `before` whose action starts
    /// with `prefix` (literally): each feature keeps its entries for its own
    /// retention period.
    AuditActionBefore {
        /// The action prefix, e.g. `exposure.`.
        prefix: String,
        /// Exclusive bound.
        before: Timestamp,
    },
}

/// Which records [`crate::Store::records`] returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordQuery {
    /// The kind.
    pub kind: String,
    /// Only keys starting with this.
    pub prefix: String,
    /// Only records concerning this user.
    pub user: Option<UserId>,
    /// At most this many, the first in key order.
    pub limit: Option<usize>,
}

impl RecordQuery {
    /// Every record of `kind`.
    #[must_use]
    pub fn kind(kind: &str) -> Self {
        Self { kind: kind.to_owned(), prefix: String::new(), user: None, limit: None }
    }

    /// Only keys starting with `prefix`.
    #[must_use]
    pub fn prefix(mut self, prefix: &str) -> Self {
        prefix.clone_into(&mut self.prefix);
        self
    }

    /// Only records concerning `user`.
    #[must_use]
    pub fn user(mut self, user: UserId) -> Self {
        self.user = Some(user);
        self
    }

    /// Whether `record` matches (what backends must implement).
    #[must_use]
    pub fn matches(&self, record: &Record) -> bool {
        record.kind == self.kind
            && record.key.starts_with(&self.prefix)
            && self.user.is_none_or(|u| record.user == Some(u))
    }
}

/// One decision or action, as the audit log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Assigned by the store, increasing.
    pub id: i64,
    /// When.
    pub at: Timestamp,
    /// Who: a user's name, or `system` for automatic decisions.
    pub actor: String,
    /// What, as `feature.verb` (`exposure.case.mark`, …).
    pub action: String,
    /// Whom it concerns, if a user.
    pub subject: Option<UserId>,
    /// Why and on which evidence (JSON).
    pub detail: String,
}

/// Which audit entries [`crate::Store::audit_log`] returns: newest first.
/// Every filter that is set must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only entries concerning this user.
    pub subject: Option<UserId>,
    /// Only entries with a smaller id (paging backwards).
    pub before_id: Option<i64>,
    /// At most this many.
    pub limit: usize,
    /// Only actions starting with this (`auth.` for every sign-in event);
    /// compared byte for byte, `%` and `_` are not wildcards.
    pub action_prefix: Option<String>,
    /// Only entries by this actor (a user's name, or `system`).
    pub actor: Option<String>,
    /// Only entries made at or after this time.
    pub since: Option<Timestamp>,
    /// Only entries made before this time.
    pub until: Option<Timestamp>,
}

impl AuditQuery {
    /// The newest `limit` entries, unfiltered.
    #[must_use]
    pub fn newest(limit: usize) -> Self {
        Self { limit, ..Self::default() }
    }

    /// Whether `entry` passes the filters (paging aside): what backends must implement.
    #[must_use]
    pub fn matches(&self, entry: &AuditEntry) -> bool {
        self.subject.is_none_or(|s| entry.subject == Some(s))
            && self.before_id.is_none_or(|b| entry.id < b)
            && self.action_prefix.as_deref().is_none_or(|p| entry.action.starts_with(p))
            && self.actor.as_deref().is_none_or(|a| entry.actor == a)
            && self.since.is_none_or(|t| entry.at >= t)
            && self.until.is_none_or(|t| entry.at < t)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_round_trip_by_name() {
        for role in Role::ALL {
            assert_eq!(Role::from_name(role.name()), Some(role));
        }
        assert_eq!(Role::from_name("admin"), None);
    }
}
