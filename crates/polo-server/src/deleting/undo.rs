//! Undoing a delete for a while (its points and the imported visits and
//! activities it took).
//!
//! Deletes are tombstones: they replicate, and once a peer has applied one
//! the points are gone there too. Keeping deleted points in the store
//! ("soft delete") would make every reader and the replication feed filter
//! them; instead the server keeps what a delete removed in memory for
//! [`UNDO_WINDOW`], under a random token the delete answers with. Undoing
//! stores the points again with [`polo_store::Store::restore_points`]: a
//! newer write than the tombstone, so replicas take them back as well.
//!
//! The book is bounded: a delete of more than [`UNDO_MAX_POINTS`] points
//! (a whole account, years of a device) offers no undo, each user keeps at
//! most [`UNDO_PER_USER`] undos (the oldest goes first), and a restart
//! forgets them, which the answer says (`undo_expires`).

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use polo_domain::{DeviceId, Fix, Interval, UserId};

/// How long a delete can be undone.
pub const UNDO_WINDOW: Duration = Duration::from_secs(15 * 60);
/// The most points a delete may remove and still be undone.
pub const UNDO_MAX_POINTS: usize = 100_000;
/// How many undos each user keeps.
pub const UNDO_PER_USER: usize = 5;

/// What one delete removed, by device.
#[derive(Debug, Default)]
pub struct Removed {
    /// The fixes, per device.
    pub devices: HashMap<DeviceId, Vec<Fix>>,
    /// How many fixes in all.
    pub count: usize,
    /// The imported visits and activities the delete took, per device.
    pub intervals: HashMap<DeviceId, Vec<Interval>>,
}

impl Removed {
    /// Notes a fix about to be deleted; `false` once there are more than
    /// [`UNDO_MAX_POINTS`] (then the delete offers no undo).
    pub fn note(&mut self, device: DeviceId, fix: Fix) -> bool {
        if self.count >= UNDO_MAX_POINTS {
            return false;
        }
        self.devices.entry(device).or_default().push(fix);
        self.count += 1;
        true
    }
}

struct Entry {
    user: UserId,
    made: Instant,
    removed: Removed,
}

/// The deletes that can still be undone, by token.
#[derive(Default)]
pub struct UndoBook {
    entries: Mutex<HashMap<String, Entry>>,
}

impl UndoBook {
    /// Keeps `removed` for `user` under `token`, dropping expired entries and
    /// the user's oldest beyond [`UNDO_PER_USER`].
    pub fn keep(&self, token: String, user: UserId, removed: Removed, now: Instant) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.retain(|_, e| now.saturating_duration_since(e.made) < UNDO_WINDOW);
        let mut mine: Vec<(Instant, String)> =
            entries.iter().filter(|(_, e)| e.user == user).map(|(t, e)| (e.made, t.clone())).collect();
        mine.sort();
        while mine.len() >= UNDO_PER_USER {
            let (_, oldest) = mine.remove(0);
            entries.remove(&oldest);
        }
        entries.insert(token, Entry { user, made: now, removed });
    }

    /// Takes what the delete with `token` removed, if it is `user`'s and
    /// still within [`UNDO_WINDOW`]. An undo can be used once.
    pub fn take(&self, token: &str, user: UserId, now: Instant) -> Option<Removed> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        let entry = entries.get(token)?;
        if entry.user != user {
            return None;
        }
        let entry = entries.remove(token)?;
        (now.saturating_duration_since(entry.made) < UNDO_WINDOW).then_some(entry.removed)
    }

    /// Puts an entry back (an undo that failed to store its points).
    pub fn put_back(&self, token: String, user: UserId, removed: Removed, made: Instant) {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner).insert(token, Entry { user, made, removed });
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, SourceFormat, Timestamp};

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
        let book = UndoBook::default();
        let t0 = Instant::now();
        book.keep("a".into(), UserId(1), removed(3), t0);
        assert!(book.take("a", UserId(2), t0).is_none(), "another user's token");
        assert_eq!(book.take("a", UserId(1), t0).map(|r| r.count), Some(3));
        assert!(book.take("a", UserId(1), t0).is_none(), "used once");
        book.keep("b".into(), UserId(1), removed(1), t0);
        assert!(book.take("b", UserId(1), t0 + UNDO_WINDOW).is_none(), "expired");
    }

    #[test]
    fn each_user_keeps_a_few_and_large_deletes_offer_none() {
        let book = UndoBook::default();
        let t0 = Instant::now();
        for i in 0..=UNDO_PER_USER {
            book.keep(format!("t{i}"), UserId(1), removed(1), t0 + Duration::from_millis(i as u64));
        }
        assert!(book.take("t0", UserId(1), t0).is_none(), "the oldest went first");
        assert!(book.take(&format!("t{UNDO_PER_USER}"), UserId(1), t0).is_some());
        let mut big = removed(UNDO_MAX_POINTS);
        let fix = Fix::new(Timestamp(-1), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Api);
        assert!(!big.note(DeviceId(1), fix), "over the limit");
    }
}
