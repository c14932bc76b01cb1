//! Legs: the movement between stays, after trackintel's
//! `generate_triplegs(method="between_staypoints")`.
//!
//! A leg is a maximal run of points that belong to no stay, split where two
//! consecutive points are more than the gap threshold apart (`>`). A run
//! with fewer than two points, or whose points all share one position (an
//! invalid LineString to trackintel), is no leg. As in trackintel a leg
//! starts at its first point, which is the point that ended the stay before
//! it, and ends at its last point, before the next stay's first point.
//!
//! Beyond trackintel, a tracked leg too short or too quick to be movement
//! ([`crate::StayParams::min_leg_m`], [`crate::StayParams::min_leg_s`]: the
//! jitter as a stay ends, "Driving 61 m in 3 s") is folded away, and each
//! leg gets its length (haversine along its points),
//! a [speed profile](SpeedProfile) and a [transport mode](TransportMode); and
//! a recording gap that can only have been a flight (≥ 100 km at ≥ 70 m/s
//! between the fixes either side, see [`ModeParams::is_flight_jump`]) becomes
//! a [`LegSource::GapJump`] leg, so that the trip to the other airport is not
//! lost in the hole a phone in flight mode leaves.

use std::ops::Range;

use polo_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::geo::{Prepared, haversine_m};
use crate::mode::{ModeEvidence, ModeParams, SpeedProfile, SpeedSamples, TransportMode, classify};
use crate::stay::Stay;
use crate::track::{TrackPoint, is_repeat};
use crate::{TimelineError, TimelineParams};

/// Where a leg comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LegSource {
    /// Recorded points between stays (a trackintel tripleg).
    Tracked,
    /// A recording gap whose two sides are a flight apart; its two points are
    /// the last before and the first after the gap.
    GapJump,
}

/// Movement between two stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Leg {
    /// Time of its first point.
    pub start: Timestamp,
    /// Time of its last point.
    pub end: Timestamp,
    /// Its points, as indices into the slice it was detected in.
    pub points: Range<usize>,
    /// How many points it has, repeats not counted.
    pub point_count: u32,
    /// Length along its points (haversine). Metres.
    pub distance_m: f64,
    /// Its speeds.
    pub speed: SpeedProfile,
    /// How it was travelled.
    pub mode: TransportMode,
    /// Recorded, or inferred from a gap.
    pub source: LegSource,
}

impl Leg {
    /// `end - start`.
    ///
    /// # Units
    /// - return value: milliseconds
    #[must_use]
    pub fn duration_ms(&self) -> i64 {
        self.end.0 - self.start.0
    }

    /// The same leg with its point indices shifted by `offset`.
    #[must_use]
    pub fn with_index_offset(mut self, offset: usize) -> Self {
        self.points = self.points.start + offset..self.points.end + offset;
        self
    }
}

/// Detects the legs of a track, given the stays [`crate::detect_stays`] found in it.
///
/// # Errors
/// [`TimelineError::Unsorted`] for unsorted points,
/// [`TimelineError::StaysDoNotMatchPoints`] for stays that do not fit them and
/// [`TimelineError::InvalidParameter`] for invalid `params`.
pub fn detect_legs(points: &[TrackPoint], stays: &[Stay], params: &TimelineParams) -> Result<Vec<Leg>, TimelineError> {
    params.validate()?;
    if let Some(index) = points.windows(2).position(|pair| pair[1].time < pair[0].time) {
        return Err(TimelineError::Unsorted {
            index: index + 1,
            time: points[index + 1].time,
            previous: points[index].time,
        });
    }
    check_stays_fit(points.len(), stays)?;
    Ok(legs_between(points, stays, params))
}

fn check_stays_fit(len: usize, stays: &[Stay]) -> Result<(), TimelineError> {
    let mut floor = 0;
    for (index, stay) in stays.iter().enumerate() {
        let Range { start, end } = stay.points;
        if start < floor || end <= start || end > len {
            return Err(TimelineError::StaysDoNotMatchPoints { index, start, end, len });
        }
        floor = end;
    }
    Ok(())
}

/// The leg pass proper, for points and stays already known to be consistent.
pub(crate) fn legs_between(points: &[TrackPoint], stays: &[Stay], params: &TimelineParams) -> Vec<Leg> {
    let gap_threshold = params.stays.gap_threshold_ms();
    let is_gap = |index: usize| points[index].time.0 - points[index - 1].time.0 > gap_threshold;
    let mut legs = Vec::new();
    let mut segments = SpeedSamples::default();
    let mut stays = stays.iter().peekable();
    let mut index = 0;
    while index < points.len() {
        if let Some(stay) = stays.next_if(|stay| stay.points.start == index) {
            index = stay.points.end;
            continue;
        }
        let limit = stays.peek().map_or(points.len(), |stay| stay.points.start);
        let run_start = index;
        index += 1;
        while index < limit && !is_gap(index) {
            index += 1;
        }
        if let Some(leg) = measure_run(points, run_start..index, &params.modes, &mut segments)
            && !params.stays.folds_leg(leg.distance_m, leg.duration_ms())
        {
            legs.push(leg);
        }
        if index < points.len() && is_gap(index) {
            legs.extend(gap_jump(points, index, &params.modes));
        }
    }
    legs
}

/// Counts of transport-mode labels, in [`TransportMode::ALL`] order.
#[derive(Default)]
struct LabelVotes([u32; 5]);

impl LabelVotes {
    fn add(&mut self, mode: TransportMode) {
        if let Some(slot) = TransportMode::ALL.iter().position(|m| *m == mode).and_then(|i| self.0.get_mut(i)) {
            *slot += 1;
        }
    }

    fn winner(&self) -> Option<(TransportMode, f64)> {
        let total: u32 = self.0.iter().sum();
        let (index, &votes) = self.0.iter().enumerate().max_by_key(|&(i, votes)| (*votes, std::cmp::Reverse(i)))?;
        (votes > 0).then(|| (TransportMode::ALL[index], f64::from(votes) / f64::from(total)))
    }
}

fn measure_run(
    points: &[TrackPoint],
    range: Range<usize>,
    modes: &ModeParams,
    segments: &mut SpeedSamples,
) -> Option<Leg> {
    if range.len() < 2 {
        return None;
    }
    segments.clear();
    let first = &points[range.start];
    let mut previous = (Prepared::new(first.coord), first.time.0);
    let mut distinct = false;
    let mut point_count = 1;
    let mut distance_m = 0.0;
    let mut evidence = ModeEvidence::default();
    let mut labels = LabelVotes::default();
    let mut max_altitude_cm = first.altitude_cm;
    if let Some(mode) = first.motion.and_then(TransportMode::from_motion) {
        labels.add(mode);
    }
    for index in range.start + 1..range.end {
        let point = &points[index];
        if point.time == points[index - 1].time && is_repeat(points, index) {
            continue;
        }
        point_count += 1;
        distinct |= point.coord != first.coord;
        let position = Prepared::new(point.coord);
        let step_m = haversine_m(&previous.0, &position);
        distance_m += step_m;
        let step_ms = point.time.0 - previous.1;
        if step_ms > 0 {
            let speed_m_s = step_m / ms_to_seconds(step_ms);
            evidence.has_flight_jump |= modes.is_flight_jump(step_m, speed_m_s);
            segments.push(speed_m_s, step_ms);
        }
        if let Some(mode) = point.motion.and_then(TransportMode::from_motion) {
            labels.add(mode);
        }
        max_altitude_cm = max_altitude_cm.max(point.altitude_cm);
        previous = (position, point.time.0);
    }
    if !distinct {
        return None;
    }
    let start = first.time;
    let end = points[range.end - 1].time;
    let speed = segments.profile(distance_m, ms_to_seconds(end.0 - start.0));
    evidence.has_timed_segment = !segments.is_empty();
    evidence.max_altitude_m = max_altitude_cm.map(|cm| f64::from(cm) / 100.0);
    evidence.label = labels.winner();
    Some(Leg {
        start,
        end,
        points: range,
        point_count,
        distance_m,
        speed,
        mode: classify(&speed, &evidence, modes),
        source: LegSource::Tracked,
    })
}

fn gap_jump(points: &[TrackPoint], after_gap: usize, modes: &ModeParams) -> Option<Leg> {
    let (before, after) = (&points[after_gap - 1], &points[after_gap]);
    let distance_m = haversine_m(&Prepared::new(before.coord), &Prepared::new(after.coord));
    let speed_m_s = distance_m / ms_to_seconds(after.time.0 - before.time.0);
    modes.is_flight_jump(distance_m, speed_m_s).then(|| Leg {
        start: before.time,
        end: after.time,
        points: after_gap - 1..after_gap + 1,
        point_count: 2,
        distance_m,
        speed: SpeedProfile {
            mean_m_s: speed_m_s,
            median_m_s: speed_m_s,
            p85_m_s: speed_m_s,
            p95_m_s: speed_m_s,
            max_m_s: speed_m_s,
        },
        mode: TransportMode::Flight,
        source: LegSource::GapJump,
    })
}

fn ms_to_seconds(ms: i64) -> f64 {
    // Durations of a track fit f64's 53-bit mantissa exactly.
    #[allow(clippy::cast_precision_loss)]
    let seconds = ms as f64 / 1000.0;
    seconds
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Motion};

    use super::*;
    use crate::detect_stays;

    const MINUTE: i64 = 60_000;

    fn at(ms: i64, north_m: f64) -> TrackPoint {
        TrackPoint::new(Timestamp(ms), Coord::from_degrees(47.0 + north_m / 111_195.0, 8.5).unwrap())
    }

    /// trackintel's legs: every leg kept, however small.
    fn legs_of(points: &[TrackPoint]) -> Vec<Leg> {
        let stays = crate::StayParams { min_leg_m: 0.0, min_leg_s: 0, ..crate::StayParams::default() };
        let params = TimelineParams { stays, ..TimelineParams::default() };
        let stays = detect_stays(points, &params.stays).unwrap();
        detect_legs(points, &stays, &params).unwrap()
    }

    /// 10 minutes at home, a walk north at 1.4 m/s sampled every 10 s, 10 minutes at the shop.
    fn home_walk_shop() -> Vec<TrackPoint> {
        let mut track: Vec<_> = (0..=10).map(|m| at(m * MINUTE, if m % 2 == 0 { 0.0 } else { 5.0 })).collect();
        let walk_start = 10 * MINUTE;
        for s in 1..=90 {
            track.push(at(walk_start + s * 10_000, 14.0 * s as f64));
        }
        let shop_start = walk_start + 90 * 10_000;
        for m in 1..=10 {
            track.push(at(shop_start + m * MINUTE, 1_260.0 + if m % 2 == 0 { 3.0 } else { -3.0 }));
        }
        // A fix away, then silence and a fix elsewhere again: the gap decides
        // that the stay at the shop ended, and nothing stays open after it.
        track.extend([at(shop_start + 11 * MINUTE, 5_000.0), at(shop_start + 31 * MINUTE, 9_000.0)]);
        track
    }

    #[test]
    fn a_walk_between_two_stays_is_one_walking_leg() {
        let track = home_walk_shop();
        let params = TimelineParams::default();
        let stays = detect_stays(&track, &params.stays).unwrap();
        assert_eq!(stays.len(), 2);
        let legs = detect_legs(&track, &stays, &params).unwrap();
        assert_eq!(legs.len(), 1, "{legs:#?}");
        let leg = &legs[0];
        assert_eq!(leg.points.start, stays[0].points.end);
        assert_eq!(leg.points.end, stays[1].points.start);
        assert_eq!(leg.start, stays[0].end);
        assert_eq!(leg.mode, TransportMode::Walk);
        assert_eq!(leg.source, LegSource::Tracked);
        assert!((leg.speed.p85_m_s - 1.4).abs() < 0.01, "{:?}", leg.speed);
        assert!(leg.distance_m > 1_000.0 && leg.distance_m < 1_300.0, "{}", leg.distance_m);
    }

    #[test]
    fn a_tiny_leg_between_two_stays_folds_away() {
        // Ten minutes at 0 m, then 150 m and 211 m three seconds apart, then ten minutes at 400 m.
        let mut track: Vec<_> = (0..=10).map(|m| at(m * MINUTE, if m % 2 == 0 { 0.0 } else { 5.0 })).collect();
        let t = 10 * MINUTE + 30_000;
        track.extend([at(t, 150.0), at(t + 3_000, 211.0)]);
        track.extend((0..=10).map(|m| at(t + 10_000 + m * MINUTE, if m % 2 == 0 { 400.0 } else { 405.0 })));
        track.extend([at(t + 20 * MINUTE, 5_000.0), at(t + 40 * MINUTE, 9_000.0)]);
        let params = TimelineParams::default();
        let stays = detect_stays(&track, &params.stays).unwrap();
        assert_eq!(stays.len(), 2);
        // trackintel's leg: "61 m in 3 s".
        let kept = legs_of(&track);
        assert_eq!(kept.len(), 1);
        assert!((kept[0].distance_m - 61.0).abs() < 1.0 && kept[0].duration_ms() == 3_000, "{kept:?}");
        // polo's: folded into the stays either side; the two visits have no trip between them.
        let legs = detect_legs(&track, &stays, &params).unwrap();
        assert!(legs.is_empty(), "{legs:?}");
        assert!(crate::group_trips(&stays, &legs, &params.stays).is_empty());
    }

    #[test]
    fn a_gap_splits_a_leg_and_single_points_are_dropped() {
        let mut track: Vec<_> = (0..6).map(|i| at(i * 10_000, 200.0 * i as f64)).collect();
        // 20 minutes of silence, then three more points, then another gap and one lone point.
        track.extend((0..3).map(|i| at(20 * MINUTE + i * 10_000, 5_000.0 + 200.0 * i as f64)));
        track.push(at(60 * MINUTE, 9_000.0));
        let legs = legs_of(&track);
        let spans: Vec<_> = legs.iter().map(|l| l.points.clone()).collect();
        assert_eq!(spans, [0..6, 6..9]);
    }

    #[test]
    fn a_run_at_one_position_is_no_leg() {
        let track: Vec<_> = (0..4).map(|i| at(i * 1_000, 0.0)).collect();
        assert!(legs_of(&track).is_empty());
        assert!(legs_of(&[]).is_empty());
        assert!(legs_of(&[at(0, 0.0)]).is_empty());
    }

    #[test]
    fn repeats_do_not_make_a_leg_valid() {
        // One real point plus its repeat: one point to trackintel, no leg.
        let p = at(0, 0.0);
        let track = [p, p, at(20 * MINUTE, 1_000.0)];
        assert!(legs_of(&track).is_empty());
        // Two distinct points with a repeat between them: one leg of two points.
        let q = at(10_000, 150.0);
        let legs = legs_of(&[p, q, q]);
        assert_eq!(legs.len(), 1);
        assert_eq!(legs[0].point_count, 2);
    }

    #[test]
    fn a_flight_across_a_recording_gap_becomes_a_gap_jump() {
        // Walking at the airport, 2 h of silence, walking 900 km away.
        let mut track: Vec<_> = (0..5).map(|i| at(i * 10_000, 14.0 * i as f64)).collect();
        let landing = 2 * 60 * MINUTE;
        track.extend((0..5).map(|i| at(landing + i * 10_000, 900_000.0 + 14.0 * i as f64)));
        let legs = legs_of(&track);
        let kinds: Vec<_> = legs.iter().map(|l| (l.source, l.mode, l.points.clone())).collect();
        assert_eq!(
            kinds,
            [
                (LegSource::Tracked, TransportMode::Walk, 0..5),
                (LegSource::GapJump, TransportMode::Flight, 4..6),
                (LegSource::Tracked, TransportMode::Walk, 5..10),
            ]
        );
        // The same gap 10 km wide is just a gap.
        let mut near = track.clone();
        for point in &mut near[5..] {
            point.coord.lat_e7 -= 80_000_000;
        }
        assert!(legs_of(&near).iter().all(|l| l.source == LegSource::Tracked));
    }

    #[test]
    fn a_leg_across_the_antimeridian_is_as_long_as_it_looks() {
        // Eastwards along 16.8°S at about 10.6 m/s, from 179.995°E to 179.995°W.
        let track: Vec<_> = (0..=10)
            .map(|i| {
                let lon = 179.995 + 0.001 * f64::from(i);
                let lon = if lon > 180.0 { lon - 360.0 } else { lon };
                TrackPoint::new(Timestamp(i64::from(i) * 10_000), Coord::from_degrees(-16.8, lon).unwrap())
            })
            .collect();
        let legs = legs_of(&track);
        assert_eq!(legs.len(), 1);
        assert!((legs[0].distance_m - 1_065.0).abs() < 10.0, "{}", legs[0].distance_m);
        assert_eq!(legs[0].mode, TransportMode::Road);
    }

    #[test]
    fn source_labels_pick_rail_at_road_speeds() {
        let mut track: Vec<_> = (0..30).map(|i| at(i * 10_000, 300.0 * i as f64)).collect();
        assert_eq!(legs_of(&track)[0].mode, TransportMode::Road);
        for point in &mut track {
            point.motion = Some(Motion::Rail);
        }
        assert_eq!(legs_of(&track)[0].mode, TransportMode::Rail);
    }

    #[test]
    fn stays_from_other_points_are_refused() {
        let track = home_walk_shop();
        let params = TimelineParams::default();
        let stays = detect_stays(&track, &params.stays).unwrap();
        let err = detect_legs(&track[..5], &stays, &params).unwrap_err();
        assert!(matches!(err, TimelineError::StaysDoNotMatchPoints { .. }), "{err}");
    }
}
