//! The points each live device's last window read, kept in memory so the
//! next step reads only the points that arrived since.
//!
//! A live phone's window starts at its last restart point ([`crate::window`]):
//! the end of its last closed stay. Everything after it (the trip it is on,
//! or the place it has been at since last night) was read again at every
//! step, so a step cost the length of the current stay, not the few new
//! points. The engine now keeps the window's last chunk, and a later step
//! whose window starts at the same instant reuses it up to where it ended.
//!
//! Reusing is exact as long as the store's points (and their flags) before
//! the tail's end did not change, which the engine knows from the change
//! log: every insert, delete or flag change widens the step's span to its
//! instant, so a tail that ends at or before the span's first instant holds
//! what a read would return. Two things can hide a change from this
//! engine, and both empty the cache:
//!
//! * another node (or a step that failed half-way) consumed part of the
//!   log: the cache is only trusted when the cursor a step starts from is
//!   the one the engine's own last successful step ended at;
//! * a synchronous recomputation outside the log (a fix flag set by a
//!   request).
//!
//! Memory is bounded by [`MAX_CACHED_POINTS`] over all devices (the least
//! recently used tail goes first) and tails unused for [`IDLE`] are dropped,
//! so an idle server holds none.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use polo_domain::{DeviceId, Seq, Timestamp, UserId};
use polo_timeline::TrackPoint;

/// How many points all cached tails may hold together (about 6 MB): a day and
/// a half of one phone at rest posting every second, or months of tails of
/// phones that post every minute.
pub const MAX_CACHED_POINTS: usize = 131_072;

/// A tail not used for this long is dropped: its phone went quiet.
pub const IDLE: Duration = Duration::from_secs(600);

/// A device's points from a window's start, as a read returned them.
#[derive(Debug, Clone, PartialEq)]
pub struct Tail {
    /// The first instant read (the window's start).
    pub from: Timestamp,
    /// The instant after the last point held: points at or after it were
    /// not read (exclusive).
    pub upto: Timestamp,
    /// The device's unflagged points in `[from, upto)`, by time.
    pub points: Vec<TrackPoint>,
}

impl Tail {
    /// The tail of a read of `[from, ..)` that returned `points`, or `None`
    /// when it returned none.
    #[must_use]
    pub fn of_read(from: Timestamp, points: Vec<TrackPoint>) -> Option<Self> {
        let last = points.last()?.time;
        Some(Self { from, upto: Timestamp(last.0.saturating_add(1)), points })
    }

    /// What a read of the device's points from `from` returns before
    /// [`upto`](Self::upto), given that no point changed before
    /// `changed_from`: this tail from `from` on, or `None` when it does not
    /// cover `from` or a change may have touched it.
    #[must_use]
    pub fn read_from(mut self, from: Timestamp, changed_from: Timestamp) -> Option<Self> {
        if from < self.from || from >= self.upto || self.upto > changed_from {
            return None;
        }
        let skip = self.points.partition_point(|p| p.time < from);
        self.points.drain(..skip);
        self.from = from;
        Some(self)
    }
}

struct Entry {
    tail: Tail,
    used: Instant,
}

/// The cached tails of one engine; see the module documentation.
#[derive(Default)]
pub struct TailCache {
    entries: BTreeMap<(UserId, DeviceId), Entry>,
    /// The log cursor the engine's last successful step ended at: the only
    /// one the entries are known to be current for.
    current_at: Option<Seq>,
    points: usize,
}

impl std::fmt::Debug for TailCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TailCache")
            .field("devices", &self.entries.len())
            .field("points", &self.points)
            .field("current_at", &self.current_at)
            .finish()
    }
}

impl TailCache {
    /// Called as a step starts from `cursor`: forgets everything unless the
    /// engine's own last step ended there, and drops idle tails.
    pub fn begin_step(&mut self, cursor: Seq, now: Instant) {
        if self.current_at != Some(cursor) {
            self.clear();
        }
        // Until the step succeeds, nothing is known to be current.
        self.current_at = None;
        let before = self.entries.len();
        self.entries.retain(|_, entry| now.duration_since(entry.used) < IDLE);
        if self.entries.len() != before {
            self.points = self.entries.values().map(|e| e.tail.points.len()).sum();
        }
    }

    /// Called when a step has moved the cursor to `cursor`.
    pub fn end_step(&mut self, cursor: Seq) {
        self.current_at = Some(cursor);
    }

    /// Forgets every tail.
    pub fn clear(&mut self) {
        self.entries.clear();
        self.points = 0;
        self.current_at = None;
    }

    /// Takes the device's tail out of the cache (a step gives it back with
    /// [`keep`](Self::keep) once it has read on).
    pub fn take(&mut self, user: UserId, device: DeviceId) -> Option<Tail> {
        let entry = self.entries.remove(&(user, device))?;
        self.points -= entry.tail.points.len();
        Some(entry.tail)
    }

    /// Keeps `tail` as the device's, evicting the least recently used tails
    /// while all would hold more than [`MAX_CACHED_POINTS`].
    pub fn keep(&mut self, user: UserId, device: DeviceId, tail: Tail, now: Instant) {
        self.take(user, device);
        if tail.points.len() > MAX_CACHED_POINTS {
            return;
        }
        while self.points + tail.points.len() > MAX_CACHED_POINTS {
            let Some(oldest) = self.entries.iter().min_by_key(|(_, e)| e.used).map(|(key, _)| *key) else { break };
            self.take(oldest.0, oldest.1);
        }
        self.points += tail.points.len();
        self.entries.insert((user, device), Entry { tail, used: now });
    }

    /// How many points the cached tails hold.
    #[must_use]
    pub fn points(&self) -> usize {
        self.points
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::Coord;

    use super::*;

    fn tail(from: i64, len: usize) -> Tail {
        let points = (0..len as i64)
            .map(|i| TrackPoint::new(Timestamp(from + i * 1000), Coord::from_degrees(47.0, 8.0).unwrap()))
            .collect();
        Tail::of_read(Timestamp(from), points).unwrap()
    }

    #[test]
    fn a_tail_holds_until_a_change_before_its_end() {
        let t = tail(0, 10);
        assert_eq!(t.upto, Timestamp(9_001));
        assert_eq!(t.clone().read_from(Timestamp(0), Timestamp(9_001)), Some(t.clone()));
        // A point inserted at the instant of the last one could sort before it.
        assert_eq!(t.clone().read_from(Timestamp(0), Timestamp(9_000)), None);
        // A window that starts later (a stay closed since) reads the rest of it.
        let later = t.clone().read_from(Timestamp(4_500), Timestamp(20_000)).unwrap();
        assert_eq!((later.from, later.upto, later.points.len()), (Timestamp(4_500), Timestamp(9_001), 5));
        assert_eq!(later.points[0].time, Timestamp(5_000));
        // One that starts before it or after it does not.
        assert_eq!(later.clone().read_from(Timestamp(0), Timestamp(20_000)), None);
        assert_eq!(t.read_from(Timestamp(9_001), Timestamp(20_000)), None);
        assert_eq!(Tail::of_read(Timestamp(0), Vec::new()), None);
    }

    #[test]
    fn the_cache_is_trusted_only_after_its_own_step() {
        let now = Instant::now();
        let mut cache = TailCache::default();
        cache.begin_step(Seq(0), now);
        cache.keep(UserId(1), DeviceId(1), tail(0, 5), now);
        cache.end_step(Seq(7));
        // The next step starts where this engine's ended: kept.
        cache.begin_step(Seq(7), now);
        assert_eq!(cache.points(), 5);
        cache.end_step(Seq(9));
        // Another node moved the cursor on: forgotten.
        cache.begin_step(Seq(12), now);
        assert_eq!(cache.points(), 0);
        assert!(cache.take(UserId(1), DeviceId(1)).is_none());
        // A failed step leaves nothing trusted.
        cache.keep(UserId(1), DeviceId(1), tail(0, 5), now);
        cache.begin_step(Seq(12), now);
        assert_eq!(cache.points(), 0);
    }

    #[test]
    fn idle_tails_go_and_the_budget_evicts_the_least_recently_used() {
        let start = Instant::now();
        let mut cache = TailCache::default();
        cache.begin_step(Seq(0), start);
        cache.keep(UserId(1), DeviceId(1), tail(0, MAX_CACHED_POINTS / 2), start);
        cache.keep(UserId(1), DeviceId(2), tail(0, MAX_CACHED_POINTS / 2), start + Duration::from_secs(1));
        cache.keep(UserId(2), DeviceId(3), tail(0, 10), start + Duration::from_secs(2));
        assert!(cache.points() <= MAX_CACHED_POINTS);
        assert!(cache.take(UserId(1), DeviceId(1)).is_none(), "the least recently used tail was evicted");
        assert!(cache.take(UserId(1), DeviceId(2)).is_some());
        // A tail beyond the whole budget is not kept.
        cache.keep(UserId(3), DeviceId(4), tail(0, MAX_CACHED_POINTS + 1), start);
        assert!(cache.take(UserId(3), DeviceId(4)).is_none());
        cache.end_step(Seq(1));
        cache.begin_step(Seq(1), start + IDLE + Duration::from_secs(3));
        assert_eq!(cache.points(), 0, "idle tails are dropped");
    }
}
