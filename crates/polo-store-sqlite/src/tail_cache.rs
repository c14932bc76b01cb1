//! Decoded copies of the chunks the writer wrote last.
//!
//! Every live commit rewrites a device's newest chunk: it reads the chunk,
//! decodes it, merges the new fixes in, encodes and writes it back. Decoding
//! (zstd and varints for a whole live tail, every commit) was about
//! a sixth of the ingest writer's CPU. The writer therefore keeps, for the
//! chunks it wrote last, the bytes it wrote together with the fixes they
//! decode to, and a later read whose stored bytes equal the kept ones takes
//! the kept fixes instead of decoding.
//!
//! Comparing with the stored bytes makes the cache correct by construction:
//! decoding is a pure function of the bytes, so an entry is only used where
//! decoding would give the same fixes. A rolled-back transaction, a delete,
//! a replicated replacement or another process writing the same file simply
//! miss. Memory is bounded by [`BYTE_BUDGET`] in all, so a bulk import
//! (whose chunks are never read back) cycles through it without growing.

use std::collections::{HashMap, VecDeque};

use polo_store::codec::StoredFix;

/// Most memory kept over all entries (bytes and decoded fixes with their
/// extras): the tails of a few hundred devices posting at once.
pub(crate) const BYTE_BUDGET: usize = 4 << 20;

/// What an entry holds in memory, approximately.
fn cost(bytes: &[u8], fixes: &[StoredFix]) -> usize {
    let extras: usize = fixes.iter().filter_map(|f| f.fix.extras.as_ref()).map(|e| e.as_str().len()).sum();
    bytes.len() + extras + std::mem::size_of_val(fixes)
}

struct Entry {
    bytes: Vec<u8>,
    fixes: Vec<StoredFix>,
    /// [`cost`] of the two.
    cost: usize,
    /// Which `order` slot is this entry's (older slots for the id are stale).
    generation: u64,
}

/// Chunk id → the bytes last written for it and their decoded fixes.
#[derive(Default)]
pub(crate) struct TailCache {
    entries: HashMap<i64, Entry>,
    /// Ids in the order they were kept, for evicting the oldest first.
    order: VecDeque<(i64, u64)>,
    /// Sum of the entries' costs.
    held: usize,
    next_generation: u64,
}

impl TailCache {
    /// The fixes `bytes` decode to, when they are the bytes kept for chunk
    /// `id`. The entry leaves the cache either way: the caller is about to
    /// rewrite the chunk and [`keep`](Self::keep)s the new version.
    pub(crate) fn take(&mut self, id: i64, bytes: &[u8]) -> Option<Vec<StoredFix>> {
        let entry = self.entries.remove(&id)?;
        self.held -= entry.cost;
        (entry.bytes == bytes).then_some(entry.fixes)
    }

    /// Remembers that chunk `id` now holds `bytes`, which decode to `fixes`.
    pub(crate) fn keep(&mut self, id: i64, bytes: Vec<u8>, fixes: Vec<StoredFix>) {
        if let Some(old) = self.entries.remove(&id) {
            self.held -= old.cost;
        }
        let cost = cost(&bytes, &fixes);
        if cost > BYTE_BUDGET / 4 {
            return; // a bulk chunk: it would only push the live tails out
        }
        let generation = self.next_generation;
        self.next_generation += 1;
        self.held += cost;
        self.entries.insert(id, Entry { bytes, fixes, cost, generation });
        self.order.push_back((id, generation));
        while self.held > BYTE_BUDGET {
            let Some((old_id, old_generation)) = self.order.pop_front() else { break };
            if self.entries.get(&old_id).is_some_and(|e| e.generation == old_generation)
                && let Some(evicted) = self.entries.remove(&old_id)
            {
                self.held -= evicted.cost;
            }
        }
        // Taken and re-kept ids leave stale slots behind; drop them now and then.
        if self.order.len() > 2 * self.entries.len() + 64 {
            let entries = &self.entries;
            self.order.retain(|(id, generation)| entries.get(id).is_some_and(|e| e.generation == *generation));
        }
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Fix, Seq, SourceFormat, Timestamp};

    use super::*;

    fn fixes(n: usize) -> Vec<StoredFix> {
        (0..n)
            .map(|i| StoredFix {
                fix: Fix::new(
                    Timestamp(i as i64 * 1000),
                    Coord::from_degrees(52.5, 13.4).unwrap(),
                    SourceFormat::Owntracks,
                ),
                seq: Seq(1),
            })
            .collect()
    }

    #[test]
    fn a_kept_chunk_is_returned_only_for_the_same_bytes_and_only_once() {
        let mut cache = TailCache::default();
        cache.keep(7, vec![1, 2, 3], fixes(3));
        assert_eq!(cache.take(7, &[1, 2, 3]).map(|f| f.len()), Some(3));
        assert!(cache.take(7, &[1, 2, 3]).is_none(), "taken entries leave");
        cache.keep(7, vec![1, 2, 3], fixes(3));
        assert!(cache.take(7, &[1, 2, 4]).is_none(), "other bytes: decode them");
        assert!(cache.take(7, &[1, 2, 3]).is_none(), "a mismatch drops the entry");
        assert!(cache.take(8, &[1, 2, 3]).is_none());
        assert_eq!(cache.held, 0);
    }

    #[test]
    fn the_oldest_entries_go_when_the_budget_is_exceeded() {
        let mut cache = TailCache::default();
        // Just under a quarter of the budget each: four fit, the fifth evicts the first.
        let per = BYTE_BUDGET / 4 / (std::mem::size_of::<StoredFix>() + 1) - 1;
        for id in 0..6 {
            cache.keep(id, vec![u8::try_from(id).unwrap()], fixes(per));
        }
        assert!(cache.held <= BYTE_BUDGET);
        assert!(cache.take(0, &[0]).is_none() && cache.take(1, &[1]).is_none(), "evicted");
        for id in 2..6 {
            assert!(cache.take(id, &[u8::try_from(id).unwrap()]).is_some(), "chunk {id} is kept");
        }
        // Re-keeping one id many times leaves no unbounded trail of stale slots.
        for round in 0..10_000u32 {
            cache.keep(99, round.to_le_bytes().to_vec(), fixes(1));
        }
        assert!(cache.order.len() <= 2 * cache.entries.len() + 64);
        assert!(cache.take(99, &9_999u32.to_le_bytes()).is_some());
    }

    #[test]
    fn chunks_too_big_to_be_live_tails_are_not_kept() {
        let mut cache = TailCache::default();
        let huge = BYTE_BUDGET / std::mem::size_of::<StoredFix>();
        cache.keep(1, vec![1], fixes(huge));
        assert!(cache.take(1, &[1]).is_none());
        assert_eq!(cache.held, 0);
    }
}
