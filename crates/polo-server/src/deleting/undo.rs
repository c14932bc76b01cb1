//! Undoing a delete for a while (its points and the imported visits and
//! activities it took).
//!
//! Deletes are tombstones: they replicate, and once a peer has applied one
//! the points are gone there too. Keeping deleted points in place ("soft
//! delete") would make every reader and the replication feed filter them;
//! instead what a delete removed is kept aside in the store
//! ([`polo_store::undo`]) for [`UNDO_WINDOW`], under the SHA-256 of a random
//! token the delete answers with. Any node can undo it, after a restart
//! too. Undoing stores the points again with
//! [`polo_store::Store::restore_points`]: a newer write than the tombstone,
//! so replicas take them back as well.
//!
//! Bounded: a delete of more than [`UNDO_MAX_POINTS`] points (a whole
//! account, years of a device) offers no undo, and each user keeps at most
//! [`polo_store::undo::UNDO_PER_USER`] undos (the oldest goes first).

use std::time::Duration;

use polo_domain::{DeviceId, Fix, Interval, Timestamp, UserId};
use polo_store::{KeptUndo, Store, StoreResult, UndoRecord};

use crate::auth::secret::sha256;

/// How long a delete can be undone.
pub const UNDO_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most points a delete may remove and still be undone.
pub const UNDO_MAX_POINTS: usize = 100_000;

/// What one delete is removing, noted before it removes it.
#[derive(Debug, Default)]
pub struct Removed {
    record: UndoRecord,
    count: usize,
}

impl Removed {
    /// Notes a fix about to be deleted; `false` once there are more than
    /// [`UNDO_MAX_POINTS`] (then the delete offers no undo).
    pub fn note(&mut self, device: DeviceId, fix: Fix) -> bool {
        if self.count >= UNDO_MAX_POINTS {
            return false;
        }
        self.record.points.entry(device).or_default().push(fix);
        self.count += 1;
        true
    }

    /// Notes an imported visit or activity the delete takes.
    pub fn note_interval(&mut self, device: DeviceId, interval: Interval) {
        self.record.intervals.entry(device).or_default().push(interval);
    }

    /// Whether the delete takes any interval.
    #[must_use]
    pub fn has_intervals(&self) -> bool {
        !self.record.intervals.is_empty()
    }
}

fn window_ms() -> i64 {
    i64::try_from(UNDO_WINDOW.as_millis()).unwrap_or(i64::MAX)
}

/// Keeps `removed` for `user` under `token` from `now` on; returns until
/// when the undo works.
///
/// # Errors
/// Store failures.
pub fn keep(store: &dyn Store, token: &str, user: UserId, removed: Removed, now: Timestamp) -> StoreResult<Timestamp> {
    let expires = Timestamp(now.0.saturating_add(window_ms()));
    let record = removed.record.encode()?;
    store.keep_undo(&KeptUndo { user, token_hash: sha256(token.as_bytes()), made: now, expires, record })?;
    Ok(expires)
}

/// Takes what the delete with `token` removed, if it is `user`'s and has
/// not expired by `now`. An undo can be taken once; [`put_back`] returns
/// it after a failed restore.
///
/// # Errors
/// Store failures; a damaged record.
pub fn take(
    store: &dyn Store,
    token: &str,
    user: UserId,
    now: Timestamp,
) -> StoreResult<Option<(UndoRecord, KeptUndo)>> {
    let Some(kept) = store.take_undo(user, &sha256(token.as_bytes()), now)? else {
        return Ok(None);
    };
    Ok(Some((UndoRecord::decode(&kept.record)?, kept)))
}

/// Keeps a taken record again, as it was (a restore that failed part way:
/// what was stored stays, the rest can be tried again).
///
/// # Errors
/// Store failures.
pub fn put_back(store: &dyn Store, kept: &KeptUndo) -> StoreResult<()> {
    store.keep_undo(kept)
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, SourceFormat};
    use polo_store_sqlite::SqliteStore;

    use super::*;

    fn removed(n: usize) -> Removed {
        let mut r = Removed::default();
        for i in 0..n {
            let fix = Fix::new(Timestamp(i as i64), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Api);
            assert!(r.note(DeviceId(1), fix));
        }
        r
    }

    #[test]
    fn an_undo_is_the_owners_once_and_only_within_the_window() {
        let dir = tempfile::tempdir().unwrap();
        let store = SqliteStore::open(dir.path().join("polo.db")).unwrap();
        let alice = store.create_user("alice", "x", false).unwrap().id;
        let bob = store.create_user("bob", "x", false).unwrap().id;
        let t0 = Timestamp(1_700_000_000_000);
        let expires = keep(&store, "a", alice, removed(3), t0).unwrap();
        assert_eq!(expires.0 - t0.0, 900_000);
        assert!(take(&store, "a", bob, t0).unwrap().is_none(), "another user's token");
        let (record, kept) = take(&store, "a", alice, t0).unwrap().expect("hers");
        assert_eq!(record.point_count(), 3);
        assert!(take(&store, "a", alice, t0).unwrap().is_none(), "used once");
        put_back(&store, &kept).unwrap();
        assert!(take(&store, "a", alice, expires).unwrap().is_none(), "expired");
    }

    #[test]
    fn large_deletes_offer_none() {
        let mut big = removed(UNDO_MAX_POINTS);
        let fix = Fix::new(Timestamp(-1), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Api);
        assert!(!big.note(DeviceId(1), fix), "over the limit");
    }
}
