//! What replication between polo instances reads from one store and applies
//! to another.
//!
//! # The model (see `algorithms.md` §3.4 of the research notes)
//!
//! * Every change-log entry carries a **version**: a hybrid logical clock
//!   ([`Hlc`], 48 bits of milliseconds and a 16-bit counter) taken where the
//!   change *originated*, and the **origin**, that instance's id. Together
//!   they order every change of every instance (`(hlc, origin)`, compared as
//!   a pair), which is what makes last-writer-wins deterministic on every
//!   replica.
//! * A source serves its changes in commit order as [`FeedEntry`]s: the
//!   entry names users and devices by name (ids are local to an instance)
//!   and carries the data as it is now (points of a change that were later
//!   deleted are not resent; their tombstone follows).
//! * A target applies a page of entries and the [`Checkpoint`] that covers
//!   them in **one transaction**, so a crash at any point leaves either the
//!   old checkpoint and old data, or both new: delivery is at-least-once
//!   and application exactly-once.
//! * Applying is idempotent and never echoes: an entry whose
//!   `(hlc, origin)` the target already holds is skipped, a point that is
//!   already there with the same content or a newer version is left alone,
//!   and an apply that changes nothing appends no change. Applied changes
//!   keep their origin, so a feed can leave out what came from the peer
//!   that is asking ([`FeedFilter::exclude_origin`]): bidirectional
//!   replication does not ping-pong.
//! * Deletes are range tombstones with a version: a point is removed by a
//!   tombstone with a higher version and a point older than a stored
//!   tombstone is not let back in, so no deleted point comes back.
//! * A deleted account leaves an account tombstone (name and version):
//!   applying its deletion deletes the account, and a change of that
//!   account no newer than the deletion is skipped, so an old change from
//!   a peer does not bring the account back ([`apply::account_entry`]).
//!
//! The executable rules are here too, free of I/O, so that every backend
//! applies and serves feeds alike: [`apply`] (last-writer-wins, tombstone
//! coverage, origin codes) and [`feed`] (what a page holds and how its
//! points are gathered).

pub mod apply;
pub mod feed;

use polo_domain::{Fix, Interval, Seq};

use crate::{Area, DeviceCard};

/// A hybrid logical clock reading: milliseconds since the Unix epoch in the
/// upper 48 bits, a counter that breaks ties within a millisecond in the
/// lower 16. Readings before replication existed are small numbers (the
/// change's own sequence number), older than any real clock reading.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Hlc(pub u64);

impl Hlc {
    /// The reading's wall-clock part, in milliseconds since the Unix epoch.
    #[must_use]
    pub fn millis(self) -> i64 {
        (self.0 >> 16) as i64
    }

    /// The smallest reading at wall-clock time `millis`.
    #[must_use]
    pub fn at_millis(millis: i64) -> Self {
        Self((millis.max(0) as u64) << 16)
    }

    /// The next reading after `self` at wall-clock time `now_millis`: the
    /// clock never goes backwards, and a clock that fell behind a reading it
    /// has seen counts on from it.
    #[must_use]
    pub fn tick(self, now_millis: i64) -> Self {
        Self(Self::at_millis(now_millis).0.max(self.0 + 1))
    }
}

/// The version of a change: when and where it originated.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Version {
    /// The origin's clock when the change was made.
    pub hlc: Hlc,
    /// The id of the instance where it was made ([`crate::Store::instance_id`]).
    pub origin: String,
}

/// One user edit of derived data, with users and devices by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditRange {
    /// [`crate::DerivedKind`] number.
    pub kind: u16,
    /// `None` for the user as a whole, else the device's name.
    pub device: Option<String>,
    /// Inclusive lower key.
    pub from: i64,
    /// Exclusive upper key.
    pub to: i64,
}

/// A row an edit stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditRow {
    /// [`crate::DerivedKind`] number.
    pub kind: u16,
    /// `None` for the user as a whole, else the device's name.
    pub device: Option<String>,
    /// Key.
    pub key: i64,
    /// Encoded value.
    pub value: Vec<u8>,
}

/// What one change did, in names rather than local ids.
#[derive(Debug, Clone, PartialEq)]
pub enum ReplicatedChange {
    /// A user was created or changed; the account as it is now.
    User {
        /// Login name.
        name: String,
        /// Argon2 PHC string.
        password_hash: String,
        /// Admin role.
        is_admin: bool,
    },
    /// A device was created or changed; the device as it is now.
    Device {
        /// Owner.
        user: String,
        /// Device name.
        name: String,
        /// OwnTracks payload passphrase.
        encryption_key: Option<String>,
        /// The card it shows friends.
        card: Option<DeviceCard>,
    },
    /// Points that were added (those still stored, by time).
    Points {
        /// Owner.
        user: String,
        /// Device.
        device: String,
        /// The fixes.
        fixes: Vec<Fix>,
    },
    /// A range delete: the user's points (of one device, or all) with
    /// `from <= time <= last`, `None` being unbounded.
    Tombstone {
        /// Owner.
        user: String,
        /// One device, or all of the user's.
        device: Option<String>,
        /// Inclusive lower bound (ms).
        from: Option<i64>,
        /// Inclusive upper bound (ms).
        last: Option<i64>,
        /// Only points inside this rectangle (a selection on the map);
        /// `None` wherever they are.
        area: Option<Area>,
        /// A thinning: of the covered points, the first of every slot of
        /// this many ms is kept ([`crate::PointSelection::keep_one_every_ms`]).
        keep_one_every_ms: Option<i64>,
    },
    /// Intervals that were added.
    Intervals {
        /// Owner.
        user: String,
        /// Device.
        device: String,
        /// The intervals.
        intervals: Vec<Interval>,
    },
    /// The account was deleted with everything it held
    /// ([`crate::Store::delete_user`]). Changes of the account no newer than
    /// this one are not applied after it ([`apply::account_entry`]).
    AccountDeleted {
        /// Login name.
        name: String,
    },
    /// A user's edit of derived data: the ranges it emptied, then the rows it
    /// stored.
    Edit {
        /// Owner.
        user: String,
        /// Ranges emptied first.
        delete: Vec<EditRange>,
        /// Rows stored.
        put: Vec<EditRow>,
    },
}

impl ReplicatedChange {
    /// The user the change belongs to.
    #[must_use]
    pub fn user(&self) -> &str {
        match self {
            Self::User { name, .. } | Self::AccountDeleted { name } => name,
            Self::Device { user, .. }
            | Self::Points { user, .. }
            | Self::Tombstone { user, .. }
            | Self::Intervals { user, .. }
            | Self::Edit { user, .. } => user,
        }
    }

    /// Points or intervals it carries (1 for the other kinds), for batching.
    #[must_use]
    pub fn weight(&self) -> usize {
        match self {
            Self::Points { fixes, .. } => fixes.len().max(1),
            Self::Intervals { intervals, .. } => intervals.len().max(1),
            Self::Edit { put, .. } => put.len().max(1),
            _ => 1,
        }
    }
}

/// One change as a feed serves it.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedEntry {
    /// Its position in the *source's* change log.
    pub seq: Seq,
    /// Its version.
    pub version: Version,
    /// What it did.
    pub change: ReplicatedChange,
}

/// Which changes a feed serves.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FeedFilter {
    /// Only these users' changes (by name); empty means everyone's.
    pub users: Vec<String>,
    /// Leave out changes that originated at this instance (the asking
    /// peer's own, which it must not get back).
    pub exclude_origin: Option<String>,
}

impl FeedFilter {
    /// Whether a change of `user` from `origin` passes.
    #[must_use]
    pub fn admits(&self, user: &str, origin: &str) -> bool {
        (self.users.is_empty() || self.users.iter().any(|u| u == user))
            && self.exclude_origin.as_deref() != Some(origin)
    }
}

/// One page of a feed.
#[derive(Debug, Clone, PartialEq)]
pub struct FeedPage {
    /// The changes, in commit order.
    pub entries: Vec<FeedEntry>,
    /// The last sequence number the page covers (filtered-out changes
    /// included): the next page starts after it.
    pub next: Seq,
    /// The source's latest sequence number when the page was read.
    pub head: Seq,
    /// The version of the source's latest change (for lag in seconds).
    pub head_hlc: Hlc,
}

/// How far a replication has applied a source's feed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    /// The source's epoch the sequence number belongs to.
    pub epoch: String,
    /// The last source sequence number applied.
    pub seq: Seq,
}

impl Checkpoint {
    /// The cursor form, `EPOCH:SEQ`.
    #[must_use]
    pub fn cursor(&self) -> String {
        format!("{}:{}", self.epoch, self.seq.0)
    }

    /// Parses `EPOCH:SEQ`.
    ///
    /// # Errors
    /// A message naming what is wrong with the cursor.
    pub fn parse(cursor: &str) -> Result<Self, String> {
        let (epoch, seq) =
            cursor.rsplit_once(':').ok_or_else(|| format!("cursor {cursor:?} is not EPOCH:SEQ (no ':')"))?;
        if epoch.is_empty() || !epoch.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
            return Err(format!("cursor {cursor:?}: the epoch must be a non-empty alphanumeric id"));
        }
        let seq = seq.parse::<u64>().map_err(|_| format!("cursor {cursor:?}: {seq:?} is not a sequence number"))?;
        Ok(Self { epoch: epoch.to_owned(), seq: Seq(seq) })
    }
}

/// One unbroken history of an instance's change log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpochSpan {
    /// The epoch id.
    pub epoch: String,
    /// The sequence number the epoch started after (0 for the first).
    pub start: Seq,
    /// The instance id the epoch began under: a restore makes a new
    /// instance, so earlier epochs name the instances it descends from.
    pub instance: String,
}

/// Where a feed request continues, given the epochs the source knows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// The cursor is in the current epoch: continue after it.
    After(Seq),
    /// The cursor is in an earlier epoch that the source's history left at
    /// `fork` (it was restored from a backup taken there): changes after
    /// `fork` under the old epoch are not the ones the source holds now,
    /// so continue after `min(seq, fork)`.
    Rewound {
        /// Where to continue.
        after: Seq,
    },
    /// The source never had this epoch: start over from the beginning.
    Unknown,
}

/// Decides where a feed continues for `cursor`, given the source's epochs
/// oldest first (the last one is current).
#[must_use]
pub fn resume(epochs: &[EpochSpan], cursor: &Checkpoint) -> Resume {
    let Some(at) = epochs.iter().position(|e| e.epoch == cursor.epoch) else { return Resume::Unknown };
    match epochs.get(at + 1) {
        None => Resume::After(cursor.seq),
        Some(next) => Resume::Rewound { after: Seq(cursor.seq.0.min(next.start.0)) },
    }
}

/// What an apply did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ApplyOutcome {
    /// Entries that changed something (each appended one change).
    pub applied: u64,
    /// Entries that changed nothing: already held, or older than what is.
    pub skipped: u64,
    /// Points added.
    pub points_added: u64,
    /// Points whose content a newer version replaced.
    pub points_replaced: u64,
    /// Points removed by tombstones.
    pub points_deleted: u64,
    /// Points refused because a newer tombstone covers them.
    pub points_suppressed: u64,
}

/// A token that authenticates a replication peer (and nothing else).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicationToken {
    /// Store-assigned id.
    pub id: i64,
    /// What it is for ("staging pulls from production").
    pub label: String,
    /// Creation time (ms).
    pub created: i64,
    /// Last use (ms), updated at most about once a minute.
    pub last_used: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hlc_never_goes_backwards() {
        let a = Hlc::at_millis(1_000);
        assert_eq!(a.tick(2_000), Hlc::at_millis(2_000));
        assert_eq!(a.tick(500), Hlc(a.0 + 1), "a clock behind a seen reading counts on from it");
        assert_eq!(Hlc::at_millis(1_234).millis(), 1_234);
    }

    #[test]
    fn cursors_round_trip_and_refuse_garbage() {
        let c = Checkpoint { epoch: "ab12".into(), seq: Seq(42) };
        assert_eq!(Checkpoint::parse(&c.cursor()), Ok(c));
        assert!(Checkpoint::parse("42").unwrap_err().contains("no ':'"));
        assert!(Checkpoint::parse("ab:x").unwrap_err().contains("not a sequence number"));
        assert!(Checkpoint::parse(":4").unwrap_err().contains("epoch"));
    }

    #[test]
    fn resume_follows_the_epoch_history() {
        let epochs = [
            EpochSpan { epoch: "e1".into(), start: Seq(0), instance: "i1".into() },
            EpochSpan { epoch: "e2".into(), start: Seq(100), instance: "i2".into() },
        ];
        let at = |epoch: &str, seq| resume(&epochs, &Checkpoint { epoch: epoch.into(), seq: Seq(seq) });
        assert_eq!(at("e2", 150), Resume::After(Seq(150)));
        assert_eq!(at("e1", 50), Resume::Rewound { after: Seq(50) }, "before the fork: the history is shared");
        assert_eq!(at("e1", 180), Resume::Rewound { after: Seq(100) }, "after the fork: resend from it");
        assert_eq!(at("zz", 7), Resume::Unknown);
    }

    #[test]
    fn versions_order_by_clock_then_origin() {
        let v = |hlc, origin: &str| Version { hlc: Hlc(hlc), origin: origin.into() };
        assert!(v(2, "a") > v(1, "z"));
        assert!(v(1, "b") > v(1, "a"));
    }
}
