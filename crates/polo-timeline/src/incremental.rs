//! Recomputing only a window of a track after points changed.
//!
//! Stay detection remembers nothing but its anchor, and at the point that
//! ended a stay the anchor is that very point. So if stay `S` ended at point
//! `e`, the stays and legs found in the points from `e` on are exactly those
//! the full pass finds from `e` on, provided nothing before `e` changed. Two
//! details make the window safe to address by time alone, which is how a
//! store loads points:
//!
//! * The change must be strictly later than the point that decided that `S`
//!   ended at `e` ([`crate::Stay::decided_at`]: `e` itself, or the fix after
//!   an excursion that did not return), and so later than `e`: a point
//!   inserted at the same instant could sort before it.
//! * `e` must be the first point of its instant (`S.last_seen < S.end`), so
//!   that "all points at or after `e`'s time" starts exactly at `e`, and
//!   repeats of points before `e` (see [`crate::track::is_repeat`]) cannot
//!   appear in the window.
//!
//! The caller's procedure, given the timeline it stored and the earliest time
//! `changed_from` of an insert, update or delete:
//!
//! 1. `let resume = stored.resume_point(changed_from);`
//! 2. load the points with `time >= resume.from` (all points when `from` is
//!    `None`) and run [`crate::detect`] on them;
//! 3. `stored.splice(&resume, window, offset)` keeps the stays up to and
//!    including `S` and the legs that start before `resume.from`, and appends
//!    the window's; `offset` is the index of the window's first point in the
//!    caller's array, or 0 if it does not keep one (indices are then relative
//!    to the window).
//!
//! Appending new points (the common case) recomputes from the end of the last
//! stay that qualifies, typically a few hours of points. Trips, places and
//! statistics are cheap functions of the stays and legs and are recomputed
//! from the spliced timeline. The property test in this module checks the
//! equivalence on generated tracks for appends, inserts and deletions.

use polo_domain::Timestamp;

use crate::timeline::Timeline;

/// Where to restart detection after a change; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResumePoint {
    /// How many of the stored stays stay valid.
    pub kept_stays: usize,
    /// Recompute from the points at or after this time; `None`: from the first point.
    pub from: Option<Timestamp>,
}

impl Timeline {
    /// The latest safe restart before `changed_from`.
    #[must_use]
    pub fn resume_point(&self, changed_from: Timestamp) -> ResumePoint {
        let candidate = self.stays.iter().rposition(|stay| stay.decided_at < changed_from && stay.last_seen < stay.end);
        match candidate {
            Some(index) => ResumePoint { kept_stays: index + 1, from: Some(self.stays[index].end) },
            None => ResumePoint { kept_stays: 0, from: None },
        }
    }

    /// Combines this (stored) timeline with the one detected in the window
    /// that starts at `resume.from`; `window_offset` is added to the window's
    /// point indices.
    #[must_use]
    pub fn splice(mut self, resume: &ResumePoint, window: Timeline, window_offset: usize) -> Timeline {
        self.stays.truncate(resume.kept_stays);
        match resume.from {
            Some(from) => self.legs.retain(|leg| leg.start < from),
            None => self.legs.clear(),
        }
        self.stays.extend(window.stays.into_iter().map(|stay| stay.with_index_offset(window_offset)));
        self.legs.extend(window.legs.into_iter().map(|leg| leg.with_index_offset(window_offset)));
        self
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use crate::synthetic::{Rng, SyntheticTrack};
    use crate::track::TrackPoint;
    use crate::{TimelineParams, detect};

    /// Recomputes `points` incrementally from `stored` after a change at `changed_from`.
    fn recompute(
        stored: &crate::Timeline,
        points: &[TrackPoint],
        changed_from: polo_domain::Timestamp,
    ) -> crate::Timeline {
        let params = TimelineParams::default();
        let resume = stored.resume_point(changed_from);
        let offset = resume.from.map_or(0, |from| points.partition_point(|p| p.time < from));
        let window = detect(&points[offset..], &params).unwrap();
        stored.clone().splice(&resume, window, offset)
    }

    fn track(seed: u64, days: u32) -> Vec<TrackPoint> {
        SyntheticTrack::new(seed).days(days).points
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]

        #[test]
        fn appending_points_then_recomputing_a_window_equals_recomputing_everything(
            seed in 1u64..1_000_000,
            cut_permille in 1usize..1000,
        ) {
            let full = track(seed, 2);
            let cut = full.len() * cut_permille / 1000;
            // Cut between instants, as a store hands out "everything until now".
            let cut = full.partition_point(|p| p.time < full[cut].time);
            let params = TimelineParams::default();
            let stored = detect(&full[..cut], &params).unwrap();
            let changed_from = full[cut].time;
            prop_assert_eq!(recompute(&stored, &full, changed_from), detect(&full, &params).unwrap());
        }

        #[test]
        fn inserting_or_deleting_points_then_recomputing_a_window_equals_recomputing_everything(
            seed in 1u64..1_000_000,
            at_permille in 0usize..1000,
            delete in any::<bool>(),
        ) {
            let mut points = track(seed, 2);
            let params = TimelineParams::default();
            let stored = detect(&points, &params).unwrap();
            let index = points.len() * at_permille / 1000;
            let changed_from = points[index].time;
            if delete {
                points.remove(index);
            } else {
                // A second device's fix, 2 km away, between two existing points.
                let mut rng = Rng::new(seed);
                let mut extra = points[index];
                extra.coord.lat_e7 += 180_000 + i32::try_from(rng.below(1000)).unwrap();
                points.insert(index, extra);
            }
            prop_assert_eq!(recompute(&stored, &points, changed_from), detect(&points, &params).unwrap());
        }
    }

    #[test]
    fn a_change_before_every_stay_recomputes_everything() {
        let points = track(7, 1);
        let stored = detect(&points, &TimelineParams::default()).unwrap();
        let resume = stored.resume_point(points[0].time);
        assert_eq!((resume.kept_stays, resume.from), (0, None));
        assert_eq!(recompute(&stored, &points, points[0].time), stored);
    }

    #[test]
    fn appending_restarts_after_the_last_stay() {
        let points = track(11, 1);
        let stored = detect(&points, &TimelineParams::default()).unwrap();
        assert!(stored.stays.len() > 2);
        let resume = stored.resume_point(polo_domain::Timestamp(i64::MAX));
        let last = stored.stays.iter().rposition(|s| s.last_seen < s.end).unwrap();
        assert_eq!(resume.kept_stays, last + 1);
        assert_eq!(resume.from, Some(stored.stays[last].end));
    }
}
