//! What this store knows of the devices it wrote last: each one's newest
//! chunk, decoded, and the tombstones that could bury its next fixes.
//!
//! # Why
//!
//! A live point is appended to its device's newest chunk (the live tail).
//! Without this, every live commit read, per phone, the device row, its
//! tombstones, its chunk bounds and the tail's payload (one probe, a round
//! trip under the `change_clock` lock) and decoded the tail again. The
//! store that wrote the tail already has all of it.
//!
//! # Why it stays coherent across nodes
//!
//! Nodes share the database, so another node (or a delete, a replicated
//! page, an account deletion) may have changed a device since this store
//! wrote it. An entry is therefore never trusted: it records the seq of the
//! change this store made with it, and a write planned from it carries a
//! guard (`points::Guard`) that the database checks in the same statement
//! that writes, under the clock lock: the device still exists, its newest
//! chunk is still the one remembered, with the same size and end, and no
//! change to the device (or to the user as a whole) that could touch its
//! chunks or tombstones was logged after the remembered seq. Every write
//! to a device's chunks or tombstones logs such a change in the same
//! transaction (the change log is what replication and the timeline engine
//! read), so a guard cannot pass over a write it does not know of. When it
//! fails, nothing was written; the attempt is rolled back and made again
//! from the database, and the entries it used are gone.
//!
//! Entries leave the map while a write uses them and come back only after
//! that write committed (before its flush, so that the next writer of this
//! store finds them; should the flush fail, the whole cache is dropped); a
//! write that fails simply leaves them out. Two writers of one store never hold one entry at once, and
//! an entry never replaces one made by a later change.
//!
//! Memory is bounded by [`BYTE_BUDGET`]: the tails of a few thousand
//! phones; the oldest entries go first.

use std::collections::{HashMap, VecDeque};

use polo_domain::{DeviceId, Seq, UserId};
use polo_store::Tombstone;
use polo_store::chunks::ChunkMeta;
use polo_store::codec::StoredFix;

/// Most memory kept over all entries.
pub(crate) const BYTE_BUDGET: usize = 4 << 20;

/// What this store knows of one device after its last write to it.
#[derive(Clone)]
pub(crate) struct Tail {
    /// The seq of the change this store made to the device last: nothing
    /// logged after it may concern the device for the entry to hold.
    pub(crate) seq: Seq,
    /// The device's newest chunk, `None` when it has none.
    pub(crate) newest: Option<ChunkMeta>,
    /// That chunk's fixes, decoded, when it is small enough to be a live
    /// tail (the planner reads only those).
    pub(crate) fixes: Option<Vec<StoredFix>>,
    /// The tombstones that may bury fixes at or after `from` (a superset).
    pub(crate) tombstones: Vec<Tombstone>,
    /// The earliest time `tombstones` is complete for.
    pub(crate) from: i64,
}

impl Tail {
    /// Whether fixes from `lo` on can be planned from this entry alone: the
    /// chunks such a batch selects are the newest one only (or none), and
    /// the tombstones are known from `lo` on.
    pub(crate) fn covers(&self, lo: i64) -> bool {
        lo >= self.from && self.newest.as_ref().is_none_or(|m| lo >= m.first)
    }

    /// What the entry holds in memory, approximately.
    fn cost(&self) -> usize {
        let fixes = self.fixes.as_deref().unwrap_or_default();
        let extras: usize = fixes.iter().filter_map(|f| f.fix.extras.as_ref()).map(|e| e.as_str().len()).sum();
        std::mem::size_of::<Self>()
            + std::mem::size_of_val(fixes)
            + extras
            + self.tombstones.len() * std::mem::size_of::<Tombstone>()
    }
}

struct Entry {
    tail: Tail,
    cost: usize,
    /// Which `order` slot is this entry's (older slots for the key are stale).
    generation: u64,
}

/// How live writes of one store used its tail cache, since it opened.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TailCacheStats {
    /// Devices planned from the cache, without reading the database.
    pub planned_from_cache: u64,
    /// Devices the cache did not cover, read from the database.
    pub read: u64,
    /// Writes whose guard found the cache behind the database (each made
    /// again without the cache).
    pub stale: u64,
}

/// (user, device) → what this store knows of the device.
#[derive(Default)]
pub(crate) struct Tails {
    entries: HashMap<(UserId, DeviceId), Entry>,
    /// Keys in the order they were kept, for evicting the oldest first.
    order: VecDeque<((UserId, DeviceId), u64)>,
    /// Sum of the entries' costs.
    held: usize,
    next_generation: u64,
    /// The last claim handed out per device (see [`Tails::take`]).
    claims: HashMap<(UserId, DeviceId), u64>,
    next_claim: u64,
    pub(crate) stats: TailCacheStats,
}

impl Tails {
    /// Takes the device's entry out, for a write of fixes from `lo` on to
    /// plan with, when it covers them (see [`Tail::covers`]); counts a hit
    /// or a miss. The claim it returns is what the write gives back to
    /// [`keep`](Self::keep): only the write that planned the device last may
    /// put an entry back, so a slower writer that committed earlier (and
    /// waited longer for its flush) never puts back an older state.
    pub(crate) fn take(&mut self, user: UserId, device: DeviceId, lo: i64) -> (Option<Tail>, u64) {
        let claim = self.next_claim;
        self.next_claim += 1;
        if self.claims.len() > 4 * self.entries.len() + 1024 {
            // Claims of writes that failed: dropping them costs only misses.
            self.claims.clear();
        }
        self.claims.insert((user, device), claim);
        (self.take_entry(user, device, lo), claim)
    }

    fn take_entry(&mut self, user: UserId, device: DeviceId, lo: i64) -> Option<Tail> {
        let tail = self.entries.remove(&(user, device)).map(|entry| {
            self.held -= entry.cost;
            entry.tail
        });
        let tail = tail.filter(|t| t.covers(lo));
        if tail.is_some() {
            self.stats.planned_from_cache += 1;
        } else {
            self.stats.read += 1;
        }
        tail
    }

    /// Keeps `tail` for the device, when `claim` is the device's last (see
    /// [`take`](Self::take)) and no entry made by a later change is there.
    pub(crate) fn keep(&mut self, user: UserId, device: DeviceId, tail: Tail, claim: u64) {
        let key = (user, device);
        if self.claims.get(&key) != Some(&claim) {
            return;
        }
        self.claims.remove(&key);
        if let Some(old) = self.entries.get(&key) {
            if old.tail.seq > tail.seq {
                return;
            }
            let old = self.entries.remove(&key).map_or(0, |e| e.cost);
            self.held -= old;
        }
        let cost = tail.cost();
        if cost > BYTE_BUDGET / 4 {
            return;
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.held += cost;
        self.entries.insert(key, Entry { tail, cost, generation });
        self.order.push_back((key, generation));
        while self.held > BYTE_BUDGET {
            let Some((old_key, old_generation)) = self.order.pop_front() else { break };
            if self.entries.get(&old_key).is_some_and(|e| e.generation == old_generation)
                && let Some(evicted) = self.entries.remove(&old_key)
            {
                self.held -= evicted.cost;
            }
        }
        // Re-kept keys leave stale slots behind; drop them now and then.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|(key, generation)| entries.get(key).is_some_and(|e| e.generation == *generation));
        }
    }

    /// Keeps every tail of a committed write ([`keep`](Self::keep)).
    pub(crate) fn keep_all(&mut self, tails: Vec<(UserId, DeviceId, Tail, u64)>) {
        for (user, device, tail, claim) in tails {
            self.keep(user, device, tail, claim);
        }
    }

    /// Forgets every device (the counts stay).
    pub(crate) fn clear(&mut self) {
        self.entries.clear();
        self.claims.clear();
        self.order.clear();
        self.held = 0;
    }

    /// How many devices are known.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.entries.len()
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Fix, SourceFormat, Timestamp};

    use super::*;

    fn tail(seq: u64, n: usize) -> Tail {
        let fixes: Vec<StoredFix> = (0..n)
            .map(|i| StoredFix {
                fix: Fix::new(Timestamp(i as i64 * 1000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Owntracks),
                seq: Seq(seq),
            })
            .collect();
        let newest = (n > 0).then(|| ChunkMeta { id: 1, first: 0, last: (n as i64 - 1) * 1000, n });
        Tail { seq: Seq(seq), newest, fixes: Some(fixes), tombstones: Vec::new(), from: 0 }
    }

    #[test]
    fn an_entry_covers_batches_from_its_newest_chunk_on() {
        let t = tail(3, 4);
        assert!(t.covers(0) && t.covers(3000) && t.covers(10_000));
        assert!(!t.covers(-1), "before the newest chunk: other chunks may be selected");
        let mut later = tail(3, 0);
        later.from = 5000;
        assert!(later.covers(5000) && !later.covers(4999), "tombstones known only from `from` on");
    }

    #[test]
    fn only_the_last_planner_of_a_device_puts_an_entry_back() {
        let (user, device) = (UserId(1), DeviceId(2));
        let mut tails = Tails::default();
        let (none, first) = tails.take(user, device, 0);
        assert!(none.is_none());
        tails.keep(user, device, tail(5, 3), first);
        let (kept, slow) = tails.take(user, device, 0);
        assert_eq!(kept.map(|t| t.seq), Some(Seq(5)));
        // Another writer plans the device meanwhile (a miss: the entry is out).
        let (none, fast) = tails.take(user, device, 0);
        assert!(none.is_none(), "taken entries leave");
        tails.keep(user, device, tail(7, 2), fast);
        tails.keep(user, device, tail(6, 1), slow);
        let (kept, again) = tails.take(user, device, 0);
        assert_eq!(kept.map(|t| t.seq), Some(Seq(7)), "the slower writer's older state was not put back");
        tails.keep(user, device, tail(8, 2), again);
        let (gone, _) = tails.take(user, device, -1);
        assert!(gone.is_none(), "an entry that does not cover the batch goes");
        assert!(tails.take(user, device, 0).0.is_none());
        assert_eq!(tails.held, 0);
        assert_eq!(tails.stats, TailCacheStats { planned_from_cache: 2, read: 4, stale: 0 });
    }

    #[test]
    fn the_oldest_entries_go_when_the_budget_is_exceeded() {
        let mut tails = Tails::default();
        let per = tail(1, 1000).cost();
        let fit = BYTE_BUDGET / per;
        let keep = |tails: &mut Tails, user: i64, device: i64, tail: Tail| {
            let (_, claim) = tails.take(UserId(user), DeviceId(device), 0);
            tails.keep(UserId(user), DeviceId(device), tail, claim);
        };
        for d in 0..(fit + 10) {
            keep(&mut tails, 1, d as i64, tail(1, 1000));
        }
        assert!(tails.held <= BYTE_BUDGET);
        assert!(tails.len() <= fit);
        assert!(tails.take(UserId(1), DeviceId(0), 0).0.is_none(), "the first kept went first");
        assert!(tails.take(UserId(1), DeviceId((fit + 9) as i64), 0).0.is_some());
        for round in 0..10_000u64 {
            keep(&mut tails, 2, 1, tail(round, 1));
        }
        assert!(tails.order.len() <= 2 * tails.entries.len() + 64);
    }
}
