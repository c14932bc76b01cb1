//! Answers by H3 cell, so that nearby lookups share one request.
//!
//! The key is the H3 cell (resolution [`CACHE_RESOLUTION`], 10: hexagons
//! with a mean edge of 66 m and an area of 0.015 km²) that holds the looked-up
//! position, and the provider is asked about the cell's centre, so every
//! position in a cell gets the same answer whichever came first. At that
//! size a cell is a building or two in a city: finer cells would repeat
//! requests for the same stay (a phone's fixes scatter by tens of metres),
//! coarser ones would put one street's name on the next street.
//!
//! The cache holds at most a configured number of answers and forgets the
//! oldest first. An entry costs about 100 bytes (the key, the name and the
//! map's overhead), so the default 10,000 entries stay around 1 MB. A
//! provider's "nothing here" (`None`) is cached too; errors are not.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use h3o::{CellIndex, Resolution};

/// The H3 resolution of the cache cells.
pub const CACHE_RESOLUTION: Resolution = Resolution::Ten;

/// A bounded map from cell to answer, oldest evicted first. Cheap to share:
/// each call holds the lock for a hash lookup or insert only.
pub(crate) struct CellCache {
    capacity: usize,
    inner: Mutex<Inner>,
}

#[derive(Default)]
struct Inner {
    answers: HashMap<CellIndex, Option<String>>,
    order: VecDeque<CellIndex>,
}

impl CellCache {
    /// A cache of at most `capacity` answers (0 caches nothing).
    pub(crate) fn new(capacity: usize) -> Self {
        Self { capacity, inner: Mutex::new(Inner::default()) }
    }

    /// The cached answer for the cell, if any: the outer `Option` is hit or
    /// miss, the inner one the provider's answer ("nothing here" is cached).
    #[allow(clippy::option_option)]
    pub(crate) fn get(&self, cell: CellIndex) -> Option<Option<String>> {
        self.lock().answers.get(&cell).cloned()
    }

    /// Remembers an answer, forgetting the oldest beyond the capacity.
    pub(crate) fn insert(&self, cell: CellIndex, answer: Option<String>) {
        if self.capacity == 0 {
            return;
        }
        let mut inner = self.lock();
        if inner.answers.insert(cell, answer).is_none() {
            inner.order.push_back(cell);
        }
        while inner.order.len() > self.capacity {
            if let Some(oldest) = inner.order.pop_front() {
                inner.answers.remove(&oldest);
            }
        }
    }

    /// Number of cached answers.
    pub(crate) fn len(&self) -> usize {
        self.lock().answers.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the map half-updated in
        // a way that matters for a cache, so a poisoned lock is used as is.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use h3o::LatLng;

    use super::*;

    fn cell(lat: f64, lon: f64) -> CellIndex {
        LatLng::new(lat, lon).unwrap().to_cell(CACHE_RESOLUTION)
    }

    #[test]
    fn hits_misses_and_eviction() {
        let cache = CellCache::new(2);
        let (a, b, c) = (cell(47.37, 8.54), cell(47.38, 8.54), cell(47.39, 8.54));
        assert_eq!(cache.get(a), None);
        cache.insert(a, Some("A".into()));
        cache.insert(b, None);
        assert_eq!(cache.get(a), Some(Some("A".into())));
        assert_eq!(cache.get(b), Some(None));
        cache.insert(c, Some("C".into()));
        assert_eq!(cache.len(), 2);
        assert_eq!(cache.get(a), None, "the oldest went first");
        assert_eq!(cache.get(c), Some(Some("C".into())));
    }

    #[test]
    fn a_cell_is_tens_of_metres() {
        // 20 m apart in the middle of a cell: the same key; 1 km apart: not.
        let centre = LatLng::from(cell(47.3769, 8.5417));
        let near = cell(centre.lat() + 0.000_18 * 0.5, centre.lng());
        assert_eq!(near, cell(centre.lat(), centre.lng()));
        assert_ne!(cell(47.3769, 8.5417), cell(47.3859, 8.5417));
    }

    #[test]
    fn zero_capacity_caches_nothing() {
        let cache = CellCache::new(0);
        cache.insert(cell(1.0, 1.0), None);
        assert_eq!(cache.len(), 0);
    }
}
