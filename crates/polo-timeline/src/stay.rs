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
//!   nobody knows yet whether the user will stay long enough (polo keeps
//!   it once it has lasted the time threshold; see below).
//! * Repeated points (same instant and position, see [`is_repeat`]) are skipped.
//!
//! Beyond trackintel (both off in [`StayParams::trackintel`]), two things do
//! not end a stay, because a person would not say they left:
//!
//! * an *excursion*: once a stay has lasted the time threshold, a fix
//!   outside the radius only ends it if the track is not back inside after
//!   at most [`StayParams::max_excursion_fixes`] fixes within
//!   [`StayParams::max_excursion_s`] (a cell-tower fix 300 m off, then home
//!   again). The absorbed fixes count neither for the centroid nor as points;
//! * a *bridged gap*: a recording gap of up to [`StayParams::bridge_gap_s`]
//!   after which the first fix is still inside the radius (a phone dozing
//!   overnight at home), or back inside after an excursion as above.
//!
//! And a stay that a gap does cut off (the user left while the phone
//! dozed) is kept, ending at its last fix, where trackintel drops it
//! ([`StayParams::keep_stay_before_gap`]). So is the candidate still open
//! when the points run out, once it has lasted the time threshold: the user
//! is (or was last seen) there, and trackintel's `include_last=False` would
//! show the last hours of the data as a slow walk instead. Either's `end`
//! is then its `last_seen`, so it is no restart point. When the stay after the gap is
//! at the same place after all (centroids within the distance threshold:
//! the first point was an arrival fix farther off), the two are one stay.
//!
//! The distance is measured from the anchor, never from a running centroid,
//! so each point costs one distance and the whole pass is O(n) with no
//! allocation except the output and one reused hash set for centroids. Most
//! points are decided by a flat-earth bound that is certain to agree with
//! trackintel's formula (module `threshold`); the rest by that formula itself.
//!
//! # Recomputing a window
//! The pass only remembers its anchor (and an excursion it has not decided
//! yet). At the point that ends a stay the anchor *is* that point and
//! nothing is pending, so running the pass on the points from there on
//! gives exactly the stays the full pass finds from there on; whether the
//! stay ended there was decided by the points up to [`Stay::decided_at`].
//! See [`crate::incremental`] for the rule a caller follows.

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
    /// Time of the first point *outside* it (trackintel `finished_at`); for
    /// a stay a recording gap cut off, its last point (`== last_seen`).
    pub end: Timestamp,
    /// Time of its last point inside; `last_seen <= end`.
    pub last_seen: Timestamp,
    /// Time of the point that decided where it ended (`>= end`): the first
    /// point outside, or the fix after an excursion that did not come back
    /// ([`StayParams::max_excursion_fixes`]). Points after it cannot change it.
    pub decided_at: Timestamp,
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
/// let stays = detect_stays(&track, &StayParams::trackintel()).unwrap();
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
    let bridge = if params.bridge_gap_s > 0 { params.bridge_gap_ms() } else { gap_threshold };
    let (max_excursion_fixes, max_excursion_ms) = (params.max_excursion_fixes, params.max_excursion_ms());
    let mut distinct = DistinctPositions::default();
    let mut anchor = 0;
    let mut anchor_time = first.time.0;
    let mut distance = ThresholdTest::new(params.distance_threshold_m, first.coord);
    let mut previous_time = first.time.0;
    // Excursions the current stay absorbed, and the one it may be on now.
    let mut absorbed: Vec<Range<usize>> = Vec::new();
    let mut pending: Option<Excursion> = None;
    let mut index = 1;
    while index < points.len() {
        let point = &points[index];
        let time = point.time.0;
        if time <= previous_time {
            if time < previous_time {
                return Err(TimelineError::Unsorted { index, time: point.time, previous: Timestamp(previous_time) });
            }
            if is_repeat(points, index) {
                index += 1;
                continue;
            }
        }
        let gap = time - previous_time;
        let before_gap = previous_time;
        previous_time = time;
        if let Some(excursion) = &mut pending {
            let (outside, _) = distance.reaches(point.coord);
            if !outside && gap <= bridge {
                // Back inside: the excursion was jitter.
                absorbed.push(excursion.first..index);
                pending = None;
            } else if outside
                && gap <= gap_threshold
                && excursion.fixes < max_excursion_fixes
                && time - points[excursion.first].time.0 <= max_excursion_ms
            {
                excursion.fixes += 1;
            } else {
                // The stay ended at the excursion's first fix; detection
                // starts afresh there, as it would on the points from there.
                let (end, after_gap) = (excursion.first, excursion.after_gap);
                pending = None;
                if !after_gap || params.keep_stay_before_gap {
                    let mut stay = build_stay(points, anchor..end, &absorbed, point.time, &mut distinct);
                    if after_gap {
                        // Left at some time in the gap: last seen is all that is known.
                        stay.end = stay.last_seen;
                    }
                    stays.push(stay);
                }
                absorbed.clear();
                anchor = end;
                anchor_time = points[end].time.0;
                distance.move_anchor(points[end].coord, None);
                previous_time = anchor_time;
                index = end + 1;
                continue;
            }
            index += 1;
            continue;
        }
        if gap > gap_threshold {
            // A dozing phone that wakes where it fell asleep stayed there;
            // one that wakes with a stray fix may yet come back.
            if gap > bridge || distance.reaches(point.coord).0 {
                let established = before_gap - anchor_time >= time_threshold;
                if established && gap <= bridge && max_excursion_fixes > 0 {
                    pending = Some(Excursion { first: index, fixes: 1, after_gap: true });
                    index += 1;
                    continue;
                }
                if params.keep_stay_before_gap && established {
                    let mut stay = build_stay(points, anchor..index, &absorbed, point.time, &mut distinct);
                    stay.end = stay.last_seen;
                    stays.push(stay);
                }
                anchor = index;
                anchor_time = time;
                absorbed.clear();
                distance.move_anchor(point.coord, None);
            }
            index += 1;
            continue;
        }
        let (outside, prepared) = distance.reaches(point.coord);
        if outside {
            if time - anchor_time >= time_threshold {
                if max_excursion_fixes > 0 {
                    pending = Some(Excursion { first: index, fixes: 1, after_gap: false });
                    index += 1;
                    continue;
                }
                stays.push(build_stay(points, anchor..index, &absorbed, point.time, &mut distinct));
            }
            anchor = index;
            anchor_time = time;
            absorbed.clear();
            distance.move_anchor(point.coord, prepared);
        }
        index += 1;
    }
    if params.keep_stay_before_gap
        && let Some(stay) =
            open_stay(points, anchor, pending.map(|e| e.first), &absorbed, time_threshold, &mut distinct)
    {
        stays.push(stay);
    }
    if params.keep_stay_before_gap && params.bridge_gap_s > 0 {
        stays = join_across_gaps(stays, params);
    }
    Ok(stays)
}

/// The candidate still open when the points run out (from `anchor` up to
/// a pending excursion's first fix, or to the end), as a stay ending at its
/// last fix, once it has lasted the time threshold by then: the end of the
/// data is a recording gap that has not ended yet, so the stay is kept as
/// one a gap cut off is. Its `end` is its `last_seen` (and so is
/// `decided_at`, although later points may still extend it): it is no
/// restart point, and appending points recomputes it.
fn open_stay(
    points: &[TrackPoint],
    anchor: usize,
    excursion: Option<usize>,
    absorbed: &[Range<usize>],
    time_threshold: i64,
    distinct: &mut DistinctPositions,
) -> Option<Stay> {
    let end = excursion.unwrap_or(points.len());
    let last_seen = points.get(..end)?.last()?.time;
    if last_seen.0 - points[anchor].time.0 < time_threshold {
        return None;
    }
    let mut stay = build_stay(points, anchor..end, absorbed, last_seen, distinct);
    stay.end = last_seen;
    Some(stay)
}

/// Joins a stay a recording gap cut off to the stay right after the gap
/// when their centroids are within the distance threshold: the phone woke
/// up where it dozed, only farther than that from the stay's *first* point
/// (which may be a fix taken while arriving). The first of the two is no
/// restart point (its `end` is its `last_seen`), so no window of a
/// recomputation ever starts between them.
fn join_across_gaps(stays: Vec<Stay>, params: &StayParams) -> Vec<Stay> {
    let mut joined: Vec<Stay> = Vec::with_capacity(stays.len());
    for stay in stays {
        if let Some(before) = joined.last_mut()
            && before.end == before.last_seen
            && before.points.end == stay.points.start
            && stay.start.0 - before.end.0 <= params.bridge_gap_ms()
            && crate::geo::coord_distance_m(before.centroid, stay.centroid) < params.distance_threshold_m
        {
            let weights = |s: &Stay| std::iter::repeat_n(s.centroid, s.point_count.max(1) as usize);
            before.centroid = angular_centroid(weights(before).chain(weights(&stay))).unwrap_or(before.centroid);
            before.end = stay.end;
            before.last_seen = stay.last_seen;
            before.decided_at = stay.decided_at;
            before.points = before.points.start..stay.points.end;
            before.point_count += stay.point_count;
            continue;
        }
        joined.push(stay);
    }
    joined
}

/// Fixes outside a stay's radius that may yet turn out to be jitter.
#[derive(Debug, Clone, Copy)]
struct Excursion {
    /// The first fix outside: where the stay ends unless the track returns.
    first: usize,
    /// How many fixes outside so far.
    fixes: u32,
    /// Whether a recording gap came before its first fix.
    after_gap: bool,
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

fn build_stay(
    points: &[TrackPoint],
    range: Range<usize>,
    absorbed: &[Range<usize>],
    decided_at: Timestamp,
    distinct: &mut DistinctPositions,
) -> Stay {
    distinct.clear(range.len());
    let mut point_count = 0;
    let mut skips = absorbed.iter().peekable();
    for index in range.clone() {
        while skips.next_if(|skip| skip.end <= index).is_some() {}
        if skips.peek().is_some_and(|skip| skip.contains(&index)) {
            continue;
        }
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
        // A stay the data's end left open has no point after it (`open_stay`).
        end: points.get(range.end).map_or(points[range.end - 1].time, |after| after.time),
        last_seen: points[range.end - 1].time,
        decided_at,
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

    /// trackintel's stays: the tests below pin the exact port.
    fn detect(points: &[TrackPoint]) -> Vec<Stay> {
        detect_stays(points, &StayParams::trackintel()).unwrap()
    }

    /// polo's stays, with excursions and bridged gaps.
    fn detect_polo(points: &[TrackPoint]) -> Vec<Stay> {
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
            decided_at: Timestamp(minutes * MINUTE),
            centroid: Coord { lat_e7: 1, lon_e7: 1 },
            points: 0..1,
            point_count: 1,
        };
        assert!(!stay(15).is_visit(&params));
        assert!(stay(16).is_visit(&params));
    }

    /// An hour at home sampled every two minutes, with `glitch` replacing some fixes.
    fn home_hour(glitch: impl Fn(i64) -> Option<f64>) -> Vec<TrackPoint> {
        let mut track: Vec<_> =
            (0..=30).map(|i| at(i * 2 * MINUTE, glitch(i).unwrap_or(if i % 2 == 0 { 8.0 } else { -8.0 }))).collect();
        track.push(at(61 * MINUTE, 2_000.0));
        track.push(at(62 * MINUTE, 2_500.0));
        track.push(at(63 * MINUTE, 3_000.0));
        track
    }

    #[test]
    fn a_cell_fix_300_m_off_splits_trackintels_stay_but_not_polos() {
        let track = home_hour(|i| (i == 12).then_some(300.0));
        assert_eq!(spans(&detect(&track)), [(0, 24 * MINUTE), (26 * MINUTE, 61 * MINUTE)]);
        let stays = detect_polo(&track);
        assert_eq!(spans(&stays), [(0, 61 * MINUTE)]);
        // The cell fix is inside the stay's range but counts for nothing.
        assert_eq!(stays[0].points, 0..31);
        assert_eq!(stays[0].point_count, 30);
        assert!((stays[0].centroid.lat() - 47.0).abs() < 1e-6, "{:?}", stays[0].centroid);
        // Decided by the third fix outside.
        assert_eq!(stays[0].decided_at, Timestamp(63 * MINUTE));
    }

    #[test]
    fn two_jittery_fixes_are_absorbed_three_are_a_trip() {
        let two = home_hour(|i| (i == 12 || i == 13).then_some(250.0));
        assert_eq!(spans(&detect_polo(&two)), [(0, 61 * MINUTE)]);
        // Three fixes 250 m away, six minutes there: the stay ended at the
        // first of them, decided by the third, and the stop is a stay of its own.
        let three = home_hour(|i| (12..=14).contains(&i).then_some(250.0));
        let stays = detect_polo(&three);
        assert_eq!(spans(&stays), [(0, 24 * MINUTE), (24 * MINUTE, 30 * MINUTE), (30 * MINUTE, 61 * MINUTE)]);
        assert_eq!(stays[0].decided_at, Timestamp(28 * MINUTE));
    }

    #[test]
    fn an_excursion_longer_than_the_limit_ends_the_stay() {
        // Two fixes outside, six minutes apart (a walk sampled sparsely), then back.
        let mut track: Vec<_> = (0..=10).map(|i| at(i * MINUTE, 0.0)).collect();
        track.extend([at(11 * MINUTE, 400.0), at(17 * MINUTE, 800.0), at(20 * MINUTE, 0.0)]);
        track.extend((21..=30).map(|i| at(i * MINUTE, 0.0)));
        track.extend([at(31 * MINUTE, 3_000.0), at(32 * MINUTE, 3_500.0), at(33 * MINUTE, 4_000.0)]);
        assert_eq!(spans(&detect_polo(&track)), [(0, 31 * MINUTE)], "within the default 15 minutes");
        let params = StayParams { max_excursion_s: 300, ..StayParams::default() };
        let stays = detect_stays(&track, &params).unwrap();
        // Ended at the first fix out; six minutes at 400 m are a stop of their own, as in trackintel.
        assert_eq!(spans(&stays), [(0, 11 * MINUTE), (11 * MINUTE, 17 * MINUTE), (20 * MINUTE, 31 * MINUTE)]);
    }

    #[test]
    fn a_young_candidate_ends_at_the_first_fix_outside() {
        // Only two minutes in: nothing to absorb into, trackintel's rule applies.
        let track = [
            at(0, 0.0),
            at(2 * MINUTE, 0.0),
            at(3 * MINUTE, 300.0),
            at(4 * MINUTE, 0.0),
            at(10 * MINUTE, 0.0),
            at(11 * MINUTE, 3_000.0),
            at(12 * MINUTE, 3_500.0),
            at(13 * MINUTE, 4_000.0),
        ];
        assert_eq!(spans(&detect_polo(&track)), [(4 * MINUTE, 11 * MINUTE)]);
        assert_eq!(spans(&detect_polo(&track)), spans(&detect(&track)));
    }

    #[test]
    fn a_phone_dozing_where_it_fell_asleep_bridges_the_gap() {
        // Evening at home, seven silent hours, morning at home, then away.
        let mut track: Vec<_> = (0..=6).map(|i| at(i * 10 * MINUTE, 0.0)).collect();
        let morning = 7 * 60 * MINUTE;
        track.extend((0..=6).map(|i| at(morning + i * 10 * MINUTE, 20.0)));
        track.extend(
            [3_000.0, 3_500.0, 4_000.0].iter().enumerate().map(|(i, &m)| at(morning + (61 + i as i64) * MINUTE, m)),
        );
        // trackintel loses the evening: the gap restarts detection.
        assert_eq!(spans(&detect(&track)), [(morning, morning + 61 * MINUTE)]);
        assert_eq!(spans(&detect_polo(&track)), [(0, morning + 61 * MINUTE)]);
        // Waking up elsewhere, or after more than the bridge, is a new start.
        let mut moved = track.clone();
        for point in &mut moved[7..14] {
            *point = at(point.time.0, 5_000.0);
        }
        // The evening is kept then, ending at its last fix (trackintel drops it).
        let evening_then_morning = [(0, 60 * MINUTE), (morning, morning + 61 * MINUTE)];
        assert_eq!(spans(&detect_polo(&moved)), evening_then_morning);
        assert_eq!(detect_polo(&moved)[0].last_seen, Timestamp(60 * MINUTE));
        let params = StayParams { bridge_gap_s: 5 * 3600, ..StayParams::default() };
        assert_eq!(spans(&detect_stays(&track, &params).unwrap()), evening_then_morning);
    }

    #[test]
    fn an_undecided_excursion_at_the_end_leaves_the_stay_open_at_its_last_fix() {
        let mut track = home_hour(|_| None);
        track.truncate(32); // the first fix 2 km away, nothing after it
        let stays = detect_polo(&track);
        assert_eq!(spans(&stays), [(0, 60 * MINUTE)]);
        assert_eq!((stays[0].last_seen, stays[0].points.clone()), (Timestamp(60 * MINUTE), 0..31));
        // trackintel decides at the fix outside, and so ends the stay there.
        assert_eq!(spans(&detect(&track)), [(0, 61 * MINUTE)]);
    }

    #[test]
    fn the_stay_open_where_the_points_end_is_kept_once_it_lasted_the_time_threshold() {
        // An hour at home and nothing after: trackintel (`include_last=False`)
        // has no stay, so the hour would read as a slow walk.
        let track: Vec<_> = (0..=30).map(|i| at(i * 2 * MINUTE, if i % 2 == 0 { 8.0 } else { -8.0 })).collect();
        assert!(detect(&track).is_empty());
        let stays = detect_polo(&track);
        assert_eq!(spans(&stays), [(0, 60 * MINUTE)]);
        let open = &stays[0];
        assert_eq!((open.last_seen, open.points.clone(), open.point_count), (Timestamp(60 * MINUTE), 0..31, 31));
        assert_eq!(crate::detect_legs(&track, &stays, &crate::TimelineParams::default()).unwrap(), []);
        // Four minutes is not yet a stay: nobody knows whether the user stays.
        assert!(detect_polo(&track[..3]).is_empty());
        // After a move, only the part since the move is open.
        let mut moved = track.clone();
        moved.extend((0..=5).map(|i| at(61 * MINUTE + i * MINUTE, 3_000.0)));
        assert_eq!(spans(&detect_polo(&moved)), [(0, 61 * MINUTE), (61 * MINUTE, 66 * MINUTE)]);
    }

    #[test]
    fn a_stay_whose_first_fix_was_on_the_way_in_is_joined_across_a_gap() {
        // Arriving: the first fix 70 m south of the door, then home; the
        // phone dozes 20 minutes and wakes 40 m north: 110 m from the first
        // fix, so the gap is not bridged, but the two halves are one stay.
        let mut track = vec![at(0, -70.0)];
        track.extend((1..=10).map(|i| at(i * MINUTE, 0.0)));
        track.extend((30..=40).map(|i| at(i * MINUTE, 40.0)));
        track.extend([at(41 * MINUTE, 3_000.0), at(42 * MINUTE, 3_500.0), at(43 * MINUTE, 4_000.0)]);
        assert_eq!(spans(&detect(&track)), [(30 * MINUTE, 41 * MINUTE)]);
        let stays = detect_polo(&track);
        assert_eq!(spans(&stays), [(0, 41 * MINUTE)]);
        assert_eq!((stays[0].points.clone(), stays[0].point_count), (0..22, 22));
        assert!(stays[0].last_seen < stays[0].end, "a restart point again");
    }

    #[test]
    fn a_phone_waking_with_a_stray_fix_still_stayed() {
        // Ten minutes at home, 40 silent minutes, a cell fix 600 m off, home again.
        let mut track: Vec<_> = (0..=10).map(|i| at(i * MINUTE, 0.0)).collect();
        track.push(at(50 * MINUTE, 600.0));
        track.extend((52..=70).map(|i| at(i * MINUTE, 10.0)));
        track.extend([at(71 * MINUTE, 3_000.0), at(72 * MINUTE, 3_500.0), at(73 * MINUTE, 4_000.0)]);
        assert_eq!(spans(&detect_polo(&track)), [(0, 71 * MINUTE)]);
        // Staying away after the gap: the stay ended when last seen, before it.
        for point in &mut track[12..] {
            point.coord = at(0, 5_000.0 + f64::from(i32::try_from(point.time.0 / MINUTE).unwrap()) * 200.0).coord;
        }
        let stays = detect_polo(&track);
        assert_eq!(spans(&stays)[0], (0, 10 * MINUTE));
        assert_eq!(stays[0].decided_at, Timestamp(53 * MINUTE), "by the second fix far away");
    }
}
