//! Stay detection: an exact port of trackintel 1.4.2's sliding staypoints.
//!
//! `generate_staypoints(method="sliding", distance_metric="haversine",
//! include_last=False, exclude_duplicate_pfs=True)` after Li et al. (2008):
//!
//! * An anchor (`start`) is the first point of a candidate stay. For every
//!   following point `curr`:
//!   * if `curr` follows its predecessor by more than the gap threshold (`>`),
//!     the anchor moves to `curr`;
//!   * otherwise, if `curr` is at least the distance threshold from the anchor
//!     (`>=`, trackintel's law-of-cosines distance), the points from the anchor
//!     up to but excluding `curr` form a stay when `curr` is at least the time
//!     threshold after the anchor (`>=`); either way the anchor moves to `curr`.
//! * A stay starts at its first point and *finishes at `curr`*, the first
//!   point outside it: the time spent leaving counts as staying.
//! * The last, still open, candidate is not a stay (`include_last=False`):
//!   nobody knows yet whether the user will stay long enough.
//! * Repeated points (same instant and position, see [`is_repeat`]) are skipped.
//!
//! The distance is measured from the anchor, never from a running centroid,
//! so each point costs one distance and the whole pass is O(n) with no
//! allocation except the output and one reused hash set for centroids. Most
//! points are decided by a flat-earth bound that is certain to agree with
//! trackintel's formula (module `threshold`); the rest by that formula itself.
//!
//! # Recomputing a window
//! The pass only remembers its anchor. At the point that ends a stay the
//! anchor *is* that point, so running the pass on the points from there on
//! gives exactly the stays the full pass finds from there on. See
//! [`crate::incremental`] for the rule a caller follows.

use std::ops::Range;

use polo_domain::{Coord, Timestamp};
use serde::{Deserialize, Serialize};

use crate::geo::angular_centroid;
use crate::threshold::ThresholdTest;
use crate::track::{TrackPoint, is_repeat};
use crate::{StayParams, TimelineError};

/// A period spent within the distance threshold of one place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Stay {
    /// Time of its first point (trackintel `started_at`).
    pub start: Timestamp,
    /// Time of the first point *outside* it (trackintel `finished_at`).
    pub end: Timestamp,
    /// Time of its last point inside; `last_seen <= end`.
    pub last_seen: Timestamp,
    /// trackintel's angular centroid of its distinct positions (repeats of a
    /// position count once, as in trackintel's `union_all`).
    pub centroid: Coord,
    /// The points it covers, as indices into the slice it was detected in;
    /// `points.end` is the point that ended it, the first point of what follows.
    pub points: Range<usize>,
    /// How many points it has, repeats not counted.
    pub point_count: u32,
}

impl Stay {
    /// `end - start`, trackintel's duration.
    ///
    /// # Units
    /// - return value: milliseconds
    #[must_use]
    pub fn duration_ms(&self) -> i64 {
        self.end.0 - self.start.0
    }

    /// Whether the stay lasted long enough to be a visit (trackintel: an
    /// activity): duration `>` [`StayParams::visit_min_duration_s`].
    #[must_use]
    pub fn is_visit(&self, params: &StayParams) -> bool {
        self.duration_ms() > params.visit_min_duration_ms()
    }

    /// The same stay with its point indices shifted by `offset`, for a stay
    /// detected in a window that starts at `offset` of the caller's array.
    #[must_use]
    pub fn with_index_offset(mut self, offset: usize) -> Self {
        self.points = self.points.start + offset..self.points.end + offset;
        self
    }
}

/// Detects the stays of one user's time-sorted track.
///
/// ```
/// use polo_domain::{Coord, Timestamp};
/// use polo_timeline::{StayParams, TrackPoint, detect_stays};
/// let at = |minute: i64, lat: f64| TrackPoint::new(Timestamp(minute * 60_000), Coord::from_degrees(lat, 8.5).unwrap());
/// // Five minutes at one spot, then a point 1.1 km north.
/// let track = [at(0, 47.0), at(2, 47.0001), at(4, 47.0), at(5, 47.01)];
/// let stays = detect_stays(&track, &StayParams::default()).unwrap();
/// assert_eq!(stays.len(), 1);
/// assert_eq!((stays[0].start, stays[0].end), (Timestamp(0), Timestamp(300_000)));
/// assert_eq!(stays[0].points, 0..3);
/// ```
///
/// # Errors
/// [`TimelineError::Unsorted`] if a point is earlier than its predecessor and
/// [`TimelineError::InvalidParameter`] for invalid `params`.
pub fn detect_stays(points: &[TrackPoint], params: &StayParams) -> Result<Vec<Stay>, TimelineError> {
    params.validate()?;
    let mut stays = Vec::new();
    let Some(first) = points.first() else {
        return Ok(stays);
    };
    let time_threshold = params.time_threshold_ms();
    let gap_threshold = params.gap_threshold_ms();
    let mut distinct = DistinctPositions::default();
    let mut anchor = 0;
    let mut anchor_time = first.time.0;
    let mut distance = ThresholdTest::new(params.distance_threshold_m, first.coord);
    let mut previous_time = first.time.0;
    for (index, point) in points.iter().enumerate().skip(1) {
        let time = point.time.0;
        if time <= previous_time {
            if time < previous_time {
                return Err(TimelineError::Unsorted { index, time: point.time, previous: Timestamp(previous_time) });
            }
            if is_repeat(points, index) {
                continue;
            }
        }
        let gap = time - previous_time > gap_threshold;
        previous_time = time;
        if gap {
            anchor = index;
            anchor_time = time;
            distance.move_anchor(point.coord, None);
            continue;
        }
        let (outside, prepared) = distance.reaches(point.coord);
        if outside {
            if time - anchor_time >= time_threshold {
                stays.push(build_stay(points, anchor..index, &mut distinct));
            }
            anchor = index;
            anchor_time = time;
            distance.move_anchor(point.coord, prepared);
        }
    }
    Ok(stays)
}

/// The distinct positions among a stay's points, as trackintel's
/// `union_all` sees them: an open-addressing hash set of E7 positions whose
/// storage is reused from one stay to the next.
#[derive(Default)]
struct DistinctPositions {
    slots: Vec<u64>,
    holds_empty_key: bool,
    positions: Vec<Coord>,
}

/// Marks a free slot. It is also the key of the position (-1e-7°, -1e-7°),
/// which [`DistinctPositions::holds_empty_key`] tracks instead.
const EMPTY_SLOT: u64 = u64::MAX;

impl DistinctPositions {
    fn clear(&mut self, capacity_hint: usize) {
        let size = (capacity_hint * 2).next_power_of_two().max(16);
        self.slots.clear();
        self.slots.resize(size, EMPTY_SLOT);
        self.holds_empty_key = false;
        self.positions.clear();
    }

    fn insert(&mut self, coord: Coord) {
        // Reinterpreting the bits is the point: the key only needs to be unique.
        #[allow(clippy::cast_sign_loss)]
        let key = (u64::from(coord.lat_e7 as u32) << 32) | u64::from(coord.lon_e7 as u32);
        if key == EMPTY_SLOT {
            if !self.holds_empty_key {
                self.holds_empty_key = true;
                self.positions.push(coord);
            }
            return;
        }
        let mask = self.slots.len() - 1;
        // Fibonacci hashing: the top bits of the product, reduced by the mask.
        let mut slot = usize::try_from(key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 40).unwrap_or(0) & mask;
        loop {
            match self.slots[slot] {
                EMPTY_SLOT => {
                    self.slots[slot] = key;
                    self.positions.push(coord);
                    return;
                }
                existing if existing == key => return,
                _ => slot = (slot + 1) & mask,
            }
        }
    }
}

fn build_stay(points: &[TrackPoint], range: Range<usize>, distinct: &mut DistinctPositions) -> Stay {
    distinct.clear(range.len());
    let mut point_count = 0;
    for index in range.clone() {
        if index > range.start && points[index].time == points[index - 1].time && is_repeat(points, index) {
            continue;
        }
        point_count += 1;
        distinct.insert(points[index].coord);
    }
    // trackintel averages the distinct positions (`union_all` merges equal ones).
    let centroid = angular_centroid(distinct.positions.iter().copied());
    Stay {
        start: points[range.start].time,
        end: points[range.end].time,
        last_seen: points[range.end - 1].time,
        centroid: centroid.unwrap_or(points[range.start].coord),
        points: range,
        point_count,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    /// A point `north_m` metres north of 47°N 8.5°E at `ms`.
    fn at(ms: i64, north_m: f64) -> TrackPoint {
        let lat = 47.0 + north_m / 111_195.0;
        TrackPoint::new(Timestamp(ms), Coord::from_degrees(lat, 8.5).unwrap())
    }

    fn spans(stays: &[Stay]) -> Vec<(i64, i64)> {
        stays.iter().map(|s| (s.start.0, s.end.0)).collect()
    }

    fn detect(points: &[TrackPoint]) -> Vec<Stay> {
        detect_stays(points, &StayParams::default()).unwrap()
    }

    #[test]
    fn empty_and_single_point_tracks_have_no_stays() {
        assert!(detect(&[]).is_empty());
        assert!(detect(&[at(0, 0.0)]).is_empty());
    }

    #[test]
    fn stay_ends_at_the_first_point_outside() {
        let track = [at(0, 0.0), at(MINUTE, 10.0), at(6 * MINUTE, 5.0), at(7 * MINUTE, 500.0), at(8 * MINUTE, 1000.0)];
        let stays = detect(&track);
        assert_eq!(spans(&stays), [(0, 7 * MINUTE)]);
        assert_eq!(stays[0].points, 0..3);
        assert_eq!(stays[0].last_seen, Timestamp(6 * MINUTE));
        assert_eq!(stays[0].point_count, 3);
    }

    #[test]
    fn duration_exactly_at_the_time_threshold_is_a_stay() {
        let exact = [at(0, 0.0), at(2 * MINUTE, 3.0), at(5 * MINUTE, 300.0)];
        assert_eq!(spans(&detect(&exact)), [(0, 5 * MINUTE)]);
        let short = [at(0, 0.0), at(2 * MINUTE, 3.0), at(5 * MINUTE - 1, 300.0)];
        assert!(detect(&short).is_empty());
    }

    #[test]
    fn gap_exactly_at_the_threshold_is_not_a_gap() {
        // 15:00.000 between points: not a gap, so the stay spans it.
        let exact = [at(0, 0.0), at(15 * MINUTE, 3.0), at(16 * MINUTE, 300.0)];
        assert_eq!(spans(&detect(&exact)), [(0, 16 * MINUTE)]);
        // One millisecond more restarts detection at the point after the gap.
        let gap = [at(0, 0.0), at(15 * MINUTE + 1, 3.0), at(16 * MINUTE, 300.0)];
        assert!(detect(&gap).is_empty());
    }

    #[test]
    fn distance_is_measured_from_the_anchor_not_a_centroid() {
        // Creeping north 60 m a minute: every point is within 100 m of its
        // predecessor, but the third is 120 m from the anchor.
        let track: Vec<_> = (0..12).map(|i| at(i * MINUTE, 60.0 * i as f64)).collect();
        assert!(detect(&track).is_empty());
    }

    #[test]
    fn jitter_inside_the_radius_stays_one_stay() {
        let mut track: Vec<_> = (0..60).map(|i| at(i * MINUTE, if i % 2 == 0 { 40.0 } else { -40.0 })).collect();
        track.push(at(60 * MINUTE, 400.0));
        let stays = detect(&track);
        assert_eq!(spans(&stays), [(0, 60 * MINUTE)]);
        assert_eq!(stays[0].point_count, 60);
        // The centroid sits between the two jitter positions.
        assert!((stays[0].centroid.lat() - 47.0).abs() < 1e-6);
    }

    #[test]
    fn the_open_stay_at_the_end_is_not_reported() {
        let track: Vec<_> = (0..100).map(|i| at(i * MINUTE, 0.0)).collect();
        assert!(detect(&track).is_empty());
    }

    #[test]
    fn repeats_are_ignored_but_same_instant_other_positions_count() {
        let base = [at(0, 0.0), at(3 * MINUTE, 2.0), at(6 * MINUTE, 300.0)];
        let mut with_repeats = vec![base[0], base[0], base[1], base[1], base[1], base[2]];
        assert_eq!(
            detect(&with_repeats),
            detect(&base)
                .into_iter()
                .map(|mut s| {
                    s.points = 0..5;
                    s
                })
                .collect::<Vec<_>>()
        );
        assert_eq!(detect(&with_repeats)[0].point_count, 2);
        // A second device reporting 300 m away at the same instant ends the stay there.
        with_repeats.insert(3, at(3 * MINUTE, 300.0));
        assert!(detect(&with_repeats).is_empty());
    }

    #[test]
    fn a_non_adjacent_repeat_does_not_move_the_anchor() {
        // A(t), B(t) far away, A(t) again: trackintel drops the second A, so
        // after B the anchor is B, and the stay that follows starts at B.
        let a = at(0, 0.0);
        let b = at(0, 500.0);
        let track = [a, b, a, at(MINUTE, 505.0), at(6 * MINUTE, 510.0), at(7 * MINUTE, 2000.0)];
        let stays = detect(&track);
        assert_eq!(spans(&stays), [(0, 7 * MINUTE)]);
        assert_eq!(stays[0].points, 1..5);
        assert_eq!(stays[0].point_count, 3);
    }

    #[test]
    fn centroid_counts_each_distinct_position_once() {
        let track = [at(0, 0.0), at(MINUTE, 0.0), at(2 * MINUTE, 0.0), at(3 * MINUTE, 60.0), at(6 * MINUTE, 300.0)];
        let stay = &detect(&track)[0];
        let expected = 47.0 + 30.0 / 111_195.0;
        assert!((stay.centroid.lat() - expected).abs() < 2e-7, "{}", stay.centroid.lat());
    }

    #[test]
    fn a_stay_straddling_the_antimeridian_is_one_stay_centred_there() {
        let fiji = |minute: i64, lon: f64| {
            TrackPoint::new(Timestamp(minute * MINUTE), Coord::from_degrees(-16.8, lon).unwrap())
        };
        // Jitter of a few tens of metres either side of ±180°, then a fix 1 km east.
        let track = [
            fiji(0, 179.9998),
            fiji(1, -179.9998),
            fiji(2, 179.9997),
            fiji(3, -179.9999),
            fiji(6, 179.9999),
            fiji(7, -179.99),
        ];
        let stays = detect(&track);
        assert_eq!(spans(&stays), [(0, 7 * MINUTE)]);
        assert!((stays[0].centroid.lon() - 179.99994).abs() < 1e-6, "{:?}", stays[0].centroid);
    }

    #[test]
    fn unsorted_input_is_refused() {
        let err = detect_stays(&[at(5, 0.0), at(4, 0.0)], &StayParams::default()).unwrap_err();
        assert!(matches!(err, TimelineError::Unsorted { index: 1, .. }), "{err}");
    }

    #[test]
    fn visits_last_longer_than_the_visit_threshold() {
        let params = StayParams::default();
        let stay = |minutes: i64| Stay {
            start: Timestamp(0),
            end: Timestamp(minutes * MINUTE),
            last_seen: Timestamp(0),
            centroid: Coord { lat_e7: 1, lon_e7: 1 },
            points: 0..1,
            point_count: 1,
        };
        assert!(!stay(15).is_visit(&params));
        assert!(stay(16).is_visit(&params));
    }
}
