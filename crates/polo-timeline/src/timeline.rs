//! One call for a track's stays and legs: what the timeline service stores.

use serde::{Deserialize, Serialize};

use crate::leg::{Leg, legs_between};
use crate::stay::{Stay, detect_stays};
use crate::track::TrackPoint;
use crate::trip::{Trip, group_trips};
use crate::{TimelineError, TimelineParams};

/// The stays and legs of one track, each sorted by time.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Timeline {
    /// Stays, as [`detect_stays`] finds them.
    pub stays: Vec<Stay>,
    /// Legs between them, as [`crate::detect_legs`] finds them.
    pub legs: Vec<Leg>,
}

impl Timeline {
    /// Groups the legs into trips between visits.
    #[must_use]
    pub fn trips(&self, params: &TimelineParams) -> Vec<Trip> {
        group_trips(&self.stays, &self.legs, &params.stays)
    }
}

/// Detects stays and then legs in one user's time-sorted track.
///
/// # Errors
/// [`TimelineError::Unsorted`] for unsorted points and
/// [`TimelineError::InvalidParameter`] for invalid `params`.
pub fn detect(points: &[TrackPoint], params: &TimelineParams) -> Result<Timeline, TimelineError> {
    params.validate()?;
    let stays = detect_stays(points, &params.stays)?;
    // detect_stays checked the order and produced fitting stays.
    let legs = legs_between(points, &stays, params);
    Ok(Timeline { stays, legs })
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Timestamp};

    use super::*;
    use crate::clock::{FixedOffset, LocalDate, LocalDays};
    use crate::daily::daily_stats;

    const MINUTE: i64 = 60_000;
    const DAY: i64 = 24 * 60 * MINUTE;

    fn at(ms: i64, north_m: f64) -> TrackPoint {
        TrackPoint::new(Timestamp(ms), Coord::from_degrees(47.0 + north_m / 111_195.0, 8.5).unwrap())
    }

    #[test]
    fn empty_input_gives_an_empty_timeline() {
        let params = TimelineParams::default();
        let timeline = detect(&[], &params).unwrap();
        assert_eq!(timeline, Timeline::default());
        assert!(timeline.trips(&params).is_empty());
    }

    #[test]
    fn a_day_with_a_single_point_has_no_stays_legs_or_statistics() {
        // Day 0 and day 2: an hour at home from 08:00, then a fix 5 km away.
        // Day 1: one fix at noon, long gaps either side.
        let mut track = Vec::new();
        for day in [0, 2] {
            let morning = day * DAY + 8 * 60 * MINUTE;
            track.extend((0..=60).map(|m| at(morning + m * MINUTE, if m % 2 == 0 { 0.0 } else { 8.0 })));
            track.push(at(morning + 61 * MINUTE, 5_000.0));
            if day == 2 {
                // Silence after the fix away decides that the stay ended
                // (and a fix elsewhere again leaves nothing open after it).
                track.push(at(morning + 81 * MINUTE, 9_000.0));
            }
            if day == 0 {
                track.push(at(DAY + 12 * 60 * MINUTE, 2_500.0));
            }
        }
        let params = TimelineParams::default();
        let timeline = detect(&track, &params).unwrap();
        let starts: Vec<i64> = timeline.stays.iter().map(|s| s.start.0 / DAY).collect();
        assert_eq!(starts, [0, 2]);
        assert!(timeline.legs.is_empty(), "{:?}", timeline.legs);
        let days: Vec<LocalDate> =
            daily_stats(&timeline.stays, &timeline.legs, &LocalDays(FixedOffset(0))).iter().map(|d| d.date).collect();
        assert_eq!(days, [LocalDate(0), LocalDate(2)]);
    }

    #[test]
    fn a_synthetic_week_has_trips_between_visits() {
        let points = crate::synthetic::SyntheticTrack::new(4).days(7).points;
        let params = TimelineParams::default();
        let timeline = detect(&points, &params).unwrap();
        let trips = timeline.trips(&params);
        assert!(trips.len() >= 7, "{} trips", trips.len());
        for trip in &trips {
            assert!(!trip.legs.is_empty());
            assert!(trip.start <= trip.end);
            for index in trip.origin.into_iter().chain(trip.destination) {
                assert!(timeline.stays[index].is_visit(&params.stays));
            }
        }
    }
}
