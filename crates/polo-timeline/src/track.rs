//! The input of every timeline algorithm: a compact, time-sorted track.
//!
//! A [`polo_domain::Fix`] carries a dozen optional measurements and a JSON
//! blob; the timeline needs four of them. Copying them into a 32-byte
//! [`TrackPoint`] keeps the hot loops in cache (a million points are 32 MB,
//! not 100+) and lets the algorithms take a plain slice.
//!
//! Duplicates are decided here once for all algorithms. trackintel drops
//! duplicate position fixes before it segments (`exclude_duplicate_pfs`);
//! polo does the same without copying: a point that repeats an earlier point
//! of the same instant at the same position is a [repeat](is_repeat) and every
//! algorithm skips it. A point of the same instant at a *different* position
//! (two devices) is not a repeat and counts.

use polo_domain::{Coord, Fix, Motion, Point, Timestamp};

/// One position of a user's track, as the timeline algorithms see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrackPoint {
    /// When, UTC.
    pub time: Timestamp,
    /// Where.
    pub coord: Coord,
    /// Altitude in centimetres, when known (flight detection).
    pub altitude_cm: Option<i32>,
    /// The local UTC offset the source gave, minutes east of UTC (local days).
    pub utc_offset_minutes: Option<i16>,
    /// The activity the source reported, if any (transport mode hints).
    pub motion: Option<Motion>,
}

impl TrackPoint {
    /// A point with only time and position.
    #[must_use]
    pub fn new(time: Timestamp, coord: Coord) -> Self {
        Self { time, coord, altitude_cm: None, utc_offset_minutes: None, motion: None }
    }
}

impl From<&Fix> for TrackPoint {
    fn from(fix: &Fix) -> Self {
        Self {
            time: fix.time,
            coord: fix.coord,
            altitude_cm: fix.altitude_cm,
            utc_offset_minutes: fix.utc_offset_minutes,
            motion: fix.motion,
        }
    }
}

impl From<&Point> for TrackPoint {
    fn from(point: &Point) -> Self {
        Self::from(&point.fix)
    }
}

/// True when `points[index]` repeats an earlier point of the same instant at
/// the same position, i.e. a point trackintel's `drop_duplicates` would drop.
///
/// Only the run of points sharing the instant is scanned, so the check costs
/// one comparison for a point whose predecessor is earlier.
#[must_use]
pub fn is_repeat(points: &[TrackPoint], index: usize) -> bool {
    let point = &points[index];
    points[..index]
        .iter()
        .rev()
        .take_while(|earlier| earlier.time == point.time)
        .any(|earlier| earlier.coord == point.coord)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(ms: i64, lat_e7: i32) -> TrackPoint {
        TrackPoint::new(Timestamp(ms), Coord { lat_e7, lon_e7: 100_000_000 })
    }

    #[test]
    fn repeats_are_same_instant_and_position() {
        let points = [p(0, 1), p(0, 1), p(0, 2), p(0, 1), p(1, 1), p(1, 2)];
        let repeats: Vec<bool> = (0..points.len()).map(|i| is_repeat(&points, i)).collect();
        assert_eq!(repeats, [false, true, false, true, false, false]);
    }

    #[test]
    fn fix_conversion_keeps_what_the_timeline_uses() {
        let mut fix = Fix::new(Timestamp(5), Coord { lat_e7: 1, lon_e7: 2 }, polo_domain::SourceFormat::Gpx);
        fix.altitude_cm = Some(123);
        fix.utc_offset_minutes = Some(60);
        fix.motion = Some(Motion::Cycling);
        let point = TrackPoint::from(&fix);
        assert_eq!(point.time, Timestamp(5));
        assert_eq!(point.altitude_cm, Some(123));
        assert_eq!(point.utc_offset_minutes, Some(60));
        assert_eq!(point.motion, Some(Motion::Cycling));
        assert_eq!(std::mem::size_of::<TrackPoint>(), 32);
    }
}
