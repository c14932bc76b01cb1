//! Stamping changes: the change log's two counters, kept by every backend.
//!
//! Each write that changes something takes the next [`Seq`] and a reading of
//! the instance's hybrid logical clock ([`Hlc`]). The rule is the same
//! whatever stores the counters, so it lives here and backends only read
//! the counters at the start of a write transaction and write them back at
//! its end ([`ChangeClock::next`] in between).
//!
//! # What a [`Seq`] guarantees
//!
//! Sequence numbers are per instance (one database), start at 1, are
//! handed out without gaps and in commit order: once a reader has seen the
//! change with seq `s`, no change with a seq at or below `s` ever commits
//! after it. (Deleting an account removes its entries from the log, which
//! leaves holes in the numbers; readers page with `seq > cursor` and never
//! count on a seq being present.) Readers (the timeline engine, the replication feed, backups)
//! page with `seq > cursor` and rely on exactly this. Each backend meets it
//! by serialising the writes that append changes: SQLite has one writer;
//! PostgreSQL locks the row holding the counters from the moment a write
//! takes its first seq until it commits (see `docs/postgres.md`).

use polo_domain::{Seq, Timestamp};

use crate::{ChangeKind, Hlc, StoreError, StoreResult};

/// Whose clock a change is stamped with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stamp {
    /// A change made here, now: the next reading of this instance's clock.
    Local,
    /// A replicated change keeping its origin's version. `origin` is the
    /// backend's code for the originating instance (0 for this instance).
    Replicated {
        /// The origin's clock reading.
        hlc: Hlc,
        /// The backend's code of the origin.
        origin: i64,
    },
}

/// The change log's counters: the last [`Seq`] handed out and this
/// instance's clock. A write transaction reads them once, hands out seqs
/// and readings in memory, and writes them back once when they changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ChangeClock {
    /// The last sequence number handed out (0 for an empty store).
    pub last_seq: Seq,
    /// The latest clock reading taken or seen.
    pub hlc: Hlc,
}

impl ChangeClock {
    /// The next change's seq, clock reading and origin code. A local change
    /// reads the clock at `now`; a replicated one keeps its own reading and
    /// moves the clock up to it, so a later local change is newer than every
    /// change seen.
    pub fn next(&mut self, stamp: Stamp, now: Timestamp) -> (Seq, Hlc, i64) {
        self.last_seq = Seq(self.last_seq.0 + 1);
        let (hlc, origin) = match stamp {
            Stamp::Local => {
                self.hlc = self.hlc.tick(now.0);
                (self.hlc, 0)
            }
            Stamp::Replicated { hlc, origin } => {
                self.hlc = self.hlc.max(hlc);
                (hlc, origin)
            }
        };
        (self.last_seq, hlc, origin)
    }
}

impl ChangeKind {
    /// The code backends store for the kind.
    #[must_use]
    pub fn code(self) -> i64 {
        match self {
            Self::PointsInserted => 1,
            Self::PointsDeleted => 2,
            Self::IntervalsInserted => 3,
            Self::User => 4,
            Self::Device => 5,
            Self::Edit => 6,
            Self::AccountDeleted => 7,
        }
    }

    /// The kind stored as `code`.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an unknown code.
    pub fn from_code(code: i64) -> StoreResult<Self> {
        Ok(match code {
            1 => Self::PointsInserted,
            2 => Self::PointsDeleted,
            3 => Self::IntervalsInserted,
            4 => Self::User,
            5 => Self::Device,
            6 => Self::Edit,
            7 => Self::AccountDeleted,
            _ => return Err(StoreError::Corrupt(format!("unknown change kind {code}"))),
        })
    }
}

/// The wall clock, in milliseconds since the Unix epoch.
#[must_use]
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A new random id for an instance or an epoch: 128 random bits as 32 hex
/// digits, from the OS-seeded hasher keys (no extra dependency).
#[must_use]
pub fn new_random_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let word = |salt: u64| {
        let mut h = std::hash::RandomState::new().build_hasher();
        h.write_u64(salt);
        h.write_u128(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos()));
        h.write_u32(std::process::id());
        h.finish()
    };
    format!("{:016x}{:016x}", word(1), word(2))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_changes_tick_and_replicated_ones_keep_their_reading() {
        let mut clock = ChangeClock { last_seq: Seq(4), hlc: Hlc::at_millis(1_000) };
        let (seq, hlc, origin) = clock.next(Stamp::Local, Timestamp(900));
        assert_eq!((seq, origin), (Seq(5), 0));
        assert_eq!(hlc, Hlc(Hlc::at_millis(1_000).0 + 1), "a clock behind counts on");
        let seen = Hlc::at_millis(5_000);
        let (seq, hlc, origin) = clock.next(Stamp::Replicated { hlc: seen, origin: 3 }, Timestamp(900));
        assert_eq!((seq, hlc, origin), (Seq(6), seen, 3));
        let (_, hlc, _) = clock.next(Stamp::Local, Timestamp(900));
        assert!(hlc > seen, "a later local change is newer than every change seen");
    }

    #[test]
    fn kinds_round_trip_through_their_codes() {
        for kind in [
            ChangeKind::PointsInserted,
            ChangeKind::PointsDeleted,
            ChangeKind::IntervalsInserted,
            ChangeKind::User,
            ChangeKind::Device,
            ChangeKind::Edit,
            ChangeKind::AccountDeleted,
        ] {
            assert_eq!(ChangeKind::from_code(kind.code()).unwrap(), kind);
        }
        assert!(ChangeKind::from_code(0).is_err());
    }
}
