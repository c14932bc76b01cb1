//! Arrivals in any order, evaluated in time order.
//!
//! Phones resend queued fixes, MQTT and HTTP race, batches interleave: fixes
//! of one device do not arrive in time order. The zone machines need them in
//! order, so a device's fixes wait in a [`Sequencer`] until the clock has
//! passed them by the reorder window, then leave it sorted. Its watermark
//! (`now − window`) only grows; a fix older than the watermark arrives too
//! late to be evaluated in order and is reported [`Arrival::Late`] (the
//! server then derives past events from it without notifying anyone).
//!
//! Any fix that arrives within the window of its own time is evaluated
//! exactly as if all had arrived sorted: the property test in
//! `tests/semantics.rs` checks that against an oracle.

use std::collections::BTreeMap;

use polo_domain::{Fix, Timestamp};

/// What became of an arriving fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrival {
    /// Waiting for its turn.
    Accepted,
    /// A fix of the same time is waiting already (the first one stays, as in the store).
    Duplicate,
    /// Older than the watermark: its turn has passed.
    Late,
}

/// One device's fixes on their way into time order.
#[derive(Debug, Clone, Default)]
pub struct Sequencer {
    window_ms: i64,
    watermark: Option<Timestamp>,
    pending: BTreeMap<Timestamp, Fix>,
}

impl Sequencer {
    /// A sequencer holding fixes for `window_ms`, continuing from `watermark`.
    #[must_use]
    pub fn new(window_ms: i64, watermark: Option<Timestamp>) -> Self {
        Self { window_ms, watermark, pending: BTreeMap::new() }
    }

    /// Fixes before this have left (or were late).
    #[must_use]
    pub fn watermark(&self) -> Option<Timestamp> {
        self.watermark
    }

    /// How many fixes wait.
    #[must_use]
    pub fn pending(&self) -> usize {
        self.pending.len()
    }

    /// Takes a fix in.
    pub fn push(&mut self, fix: Fix) -> Arrival {
        if self.watermark.is_some_and(|w| fix.time < w) {
            return Arrival::Late;
        }
        match self.pending.entry(fix.time) {
            std::collections::btree_map::Entry::Occupied(_) => Arrival::Duplicate,
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(fix);
                Arrival::Accepted
            }
        }
    }

    /// The clock reached `now`: the fixes older than `now − window`, in time
    /// order. Returns the new watermark as well.
    pub fn release(&mut self, now: Timestamp) -> (Vec<Fix>, Timestamp) {
        let mark = Timestamp(now.0.saturating_sub(self.window_ms));
        let mark = self.watermark.map_or(mark, |w| w.max(mark));
        self.watermark = Some(mark);
        let keep = self.pending.split_off(&mark);
        let out = std::mem::replace(&mut self.pending, keep).into_values().collect();
        (out, mark)
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, SourceFormat};

    use super::*;

    fn fix(t: i64) -> Fix {
        Fix::new(Timestamp(t), Coord { lat_e7: 0, lon_e7: 0 }, SourceFormat::Owntracks)
    }

    #[test]
    fn fixes_leave_sorted_after_the_window_and_late_ones_are_refused() {
        let mut s = Sequencer::new(10, None);
        assert_eq!(s.push(fix(105)), Arrival::Accepted);
        assert_eq!(s.push(fix(100)), Arrival::Accepted);
        assert_eq!(s.push(fix(100)), Arrival::Duplicate);
        let (out, mark) = s.release(Timestamp(112));
        assert_eq!(out.iter().map(|f| f.time.0).collect::<Vec<_>>(), [100]);
        assert_eq!(mark, Timestamp(102));
        assert_eq!(s.push(fix(101)), Arrival::Late);
        assert_eq!(s.push(fix(103)), Arrival::Accepted);
        let (out, _) = s.release(Timestamp(200));
        assert_eq!(out.iter().map(|f| f.time.0).collect::<Vec<_>>(), [103, 105]);
        let (out, mark) = s.release(Timestamp(150));
        assert!(out.is_empty());
        assert_eq!(mark, Timestamp(190), "the watermark never goes back");
    }
}
