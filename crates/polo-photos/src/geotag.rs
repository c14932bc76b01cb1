//! A position for a photo that has none, from where the location history
//! says the person was when they took it.
//!
//! The history's fixes before and after the capture instant bracket it. The
//! position is interpolated along the straight line between them, and its
//! confidence says how far to trust that:
//!
//! * **Stationary** (the two fixes within [`STATIONARY_M`], and not walking
//!   pace apart: see [`is_moving`]): the person was
//!   at one place, so the photo was taken there; the error is the fixes'
//!   accuracy plus half their distance, and a long gap between them only
//!   lowers the confidence beyond [`STATIONARY_HIGH_SPAN_MS`] (a phone that
//!   dozed at home all evening still says "home"; one that was off all day
//!   might hide a trip there and back).
//! * **Moving:** the error grows toward the middle of the line (the path
//!   need not have been straight): the accuracy plus the distance to the
//!   nearer fix along the line.
//! * **One side only** (the last fix before a gap, or the first after):
//!   the person may have walked away, so the error grows at walking pace
//!   with the time to that fix.
//!
//! Fixes more than [`MAX_GAP_MS`] away are not used: such a photo gets no
//! position. The reviewer sees the confidence with its reasons (time to the
//! nearest fix, accuracy, moving or not, estimated error) and applies what
//! they trust ([`Confidence`] orders them).

use polo_domain::{Coord, Timestamp};
use polo_timeline::geo::coord_distance_m;

/// Fixes farther than this from the capture time are not used (6 h).
pub const MAX_GAP_MS: i64 = 6 * 3_600_000;
/// Two fixes closer than this are one place: the person did not move.
pub const STATIONARY_M: f64 = 200.0;
/// A stationary bracket longer than this is no longer high confidence (3 h).
pub const STATIONARY_HIGH_SPAN_MS: i64 = 3 * 3_600_000;
/// The accuracy assumed for a fix that states none (a phone's usual GPS fix).
pub const DEFAULT_ACCURACY_M: f64 = 30.0;
/// Slower than this between two fixes is not moving (m/s): jitter at rest.
pub const MIN_MOVING_M_S: f64 = 0.5;
/// How fast someone may walk away from the last fix seen (m/s).
const WALKING_M_S: f64 = 1.4;

/// A fix of the history as geotagging needs it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryFix {
    /// When (UTC).
    pub time: Timestamp,
    /// Where.
    pub coord: Coord,
    /// Horizontal accuracy in metres, when known.
    pub accuracy_m: Option<f64>,
    /// The local offset then, minutes east of UTC, when known (stated by the
    /// source, or from the time zone at the fix).
    pub offset_minutes: Option<i16>,
}

/// How far a proposed position can be trusted, lowest first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Confidence {
    /// Far from any fix in time or space: look before applying.
    Low,
    /// Within a kilometre or so.
    Medium,
    /// Within about 100 m, with a fix close in time (or at one place throughout).
    High,
}

impl Confidence {
    /// `"low"`, `"medium"` or `"high"`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Low => "low",
            Self::Medium => "medium",
            Self::High => "high",
        }
    }

    /// The confidence named `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "low" => Some(Self::Low),
            "medium" => Some(Self::Medium),
            "high" => Some(Self::High),
            _ => None,
        }
    }
}

/// A proposed position with the reasons for its confidence.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Geotag {
    /// The position.
    pub coord: Coord,
    /// How far to trust it.
    pub confidence: Confidence,
    /// The estimated error in metres.
    pub error_m: f64,
    /// Time from the capture to the nearest fix used, in seconds.
    pub nearest_fix_s: f64,
    /// The worse accuracy of the fixes used, in metres ([`DEFAULT_ACCURACY_M`] when unstated).
    pub accuracy_m: f64,
    /// Whether the person moved between the fixes around the capture.
    pub moving: bool,
}

/// The local offset of the history at a wall-clock time: that of the fix
/// whose own local time is nearest to `wall`, within 12 hours. `fixes` is
/// sorted by time; fixes without an offset are skipped.
#[must_use]
pub fn offset_at_wall(fixes: &[HistoryFix], wall: Timestamp) -> Option<i16> {
    const HALF_DAY_MS: i64 = 12 * 3_600_000;
    fixes
        .iter()
        .filter_map(|fix| {
            let offset = fix.offset_minutes?;
            let local = fix.time.0 + i64::from(offset) * 60_000;
            Some(((local - wall.0).abs(), offset))
        })
        .filter(|(distance, _)| *distance <= HALF_DAY_MS)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, offset)| offset)
}

/// The local offset of the history at an instant (a video's UTC creation
/// time): that of the fix nearest in time, within 12 hours.
#[must_use]
pub fn offset_at_instant(fixes: &[HistoryFix], at: Timestamp) -> Option<i16> {
    const HALF_DAY_MS: i64 = 12 * 3_600_000;
    fixes
        .iter()
        .filter_map(|fix| Some(((fix.time.0 - at.0).abs(), fix.offset_minutes?)))
        .filter(|(distance, _)| *distance <= HALF_DAY_MS)
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, offset)| offset)
}

/// The position of the history at `at`, from `fixes` sorted by time; `None`
/// when no fix lies within [`MAX_GAP_MS`].
#[must_use]
pub fn geotag(fixes: &[HistoryFix], at: Timestamp) -> Option<Geotag> {
    let split = fixes.partition_point(|fix| fix.time <= at);
    let before = split.checked_sub(1).map(|i| &fixes[i]).filter(|f| at.0 - f.time.0 <= MAX_GAP_MS);
    let after = fixes.get(split).filter(|f| f.time.0 - at.0 <= MAX_GAP_MS);
    let accuracy =
        |fix: &HistoryFix| fix.accuracy_m.filter(|a| a.is_finite() && *a > 0.0).unwrap_or(DEFAULT_ACCURACY_M);
    match (before, after) {
        (Some(a), Some(b)) => {
            let accuracy_m = accuracy(a).max(accuracy(b));
            let distance = coord_distance_m(a.coord, b.coord);
            let span = b.time.0 - a.time.0;
            let along = if span == 0 { 0.0 } else { (at.0 - a.time.0) as f64 / span as f64 };
            let nearest_fix_s = (at.0 - a.time.0).min(b.time.0 - at.0) as f64 / 1000.0;
            let moving = is_moving(distance, span, accuracy_m);
            let (error_m, confidence) = if moving {
                let error_m = accuracy_m + distance * along.min(1.0 - along);
                (error_m, by_error(error_m, nearest_fix_s))
            } else {
                let error_m = accuracy_m + distance / 2.0;
                let confidence = match by_error(error_m, 0.0) {
                    Confidence::High if span > STATIONARY_HIGH_SPAN_MS => Confidence::Medium,
                    other => other,
                };
                (error_m, confidence)
            };
            Some(Geotag {
                coord: interpolate(a.coord, b.coord, along),
                confidence,
                error_m,
                nearest_fix_s,
                accuracy_m,
                moving,
            })
        }
        (Some(only), None) | (None, Some(only)) => {
            let nearest_fix_s = (at.0 - only.time.0).abs() as f64 / 1000.0;
            let accuracy_m = accuracy(only);
            let error_m = accuracy_m + WALKING_M_S * nearest_fix_s;
            Some(Geotag {
                coord: only.coord,
                confidence: by_error(error_m, nearest_fix_s),
                error_m,
                nearest_fix_s,
                accuracy_m,
                moving: false,
            })
        }
        (None, None) => None,
    }
}

/// Whether two fixes `distance` metres and `span_ms` apart show a person
/// moving: farther apart than [`STATIONARY_M`], or farther than their
/// accuracy allows (twice it, at least 25 m) at [`MIN_MOVING_M_S`] or more,
/// as a walk with a fix a minute is.
#[must_use]
pub fn is_moving(distance: f64, span_ms: i64, accuracy_m: f64) -> bool {
    let speed = if span_ms > 0 { distance / (span_ms as f64 / 1000.0) } else { 0.0 };
    distance > STATIONARY_M || (distance > (2.0 * accuracy_m).max(25.0) && speed >= MIN_MOVING_M_S)
}

fn by_error(error_m: f64, nearest_fix_s: f64) -> Confidence {
    if error_m <= 100.0 && nearest_fix_s <= 30.0 * 60.0 {
        Confidence::High
    } else if error_m <= 1_000.0 && nearest_fix_s <= 2.0 * 3600.0 {
        Confidence::Medium
    } else {
        Confidence::Low
    }
}

/// The point `along` (0 to 1) of the way from `a` to `b`, the short way
/// round across the antimeridian.
fn interpolate(a: Coord, b: Coord, along: f64) -> Coord {
    let lat = a.lat() + (b.lat() - a.lat()) * along;
    let mut delta = b.lon() - a.lon();
    if delta > 180.0 {
        delta -= 360.0;
    } else if delta < -180.0 {
        delta += 360.0;
    }
    let mut lon = a.lon() + delta * along;
    if lon > 180.0 {
        lon -= 360.0;
    } else if lon < -180.0 {
        lon += 360.0;
    }
    Coord::from_degrees(lat, lon).unwrap_or(a)
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000;

    fn fix(minute: i64, lat: f64, lon: f64) -> HistoryFix {
        HistoryFix {
            time: Timestamp(minute * MIN),
            coord: Coord::from_degrees(lat, lon).unwrap(),
            accuracy_m: Some(10.0),
            offset_minutes: Some(120),
        }
    }

    /// A history with known positions: at home (Lübeck) until minute 60,
    /// then driving east at 1 km a minute for 20 minutes, then at work.
    fn day() -> Vec<HistoryFix> {
        let mut fixes: Vec<HistoryFix> = (0..=60).step_by(5).map(|m| fix(m, 53.8655, 10.6866)).collect();
        let km_per_degree_lon = 111.32 * 53.8655_f64.to_radians().cos();
        for m in 61..=80 {
            fixes.push(fix(m, 53.8655, 10.6866 + (m - 60) as f64 / km_per_degree_lon));
        }
        fixes.push(fix(200, 53.8655, 10.6866 + 20.0 / km_per_degree_lon));
        fixes
    }

    #[test]
    fn a_photo_at_home_between_two_fixes_is_at_home_with_high_confidence() {
        let tag = geotag(&day(), Timestamp(32 * MIN + 30_000)).unwrap();
        assert!(coord_distance_m(tag.coord, Coord::from_degrees(53.8655, 10.6866).unwrap()) < 1.0);
        assert_eq!(tag.confidence, Confidence::High);
        assert!(!tag.moving);
        assert_eq!(tag.nearest_fix_s, 150.0);
        assert_eq!(tag.accuracy_m, 10.0);
    }

    #[test]
    fn a_photo_from_the_car_is_interpolated_and_known_to_be_moving() {
        // Half-way between the fixes of minutes 70 and 71: 10.5 km east.
        let tag = geotag(&day(), Timestamp(70 * MIN + 30_000)).unwrap();
        let km_per_degree_lon = 111.32 * 53.8655_f64.to_radians().cos();
        let truth = Coord::from_degrees(53.8655, 10.6866 + 10.5 / km_per_degree_lon).unwrap();
        assert!(coord_distance_m(tag.coord, truth) < 5.0, "{}", coord_distance_m(tag.coord, truth));
        assert!(tag.moving);
        // 1 km between the fixes: up to 500 m off the straight line.
        assert!((tag.error_m - 510.0).abs() < 5.0, "{}", tag.error_m);
        assert_eq!(tag.confidence, Confidence::Medium);
    }

    #[test]
    fn a_long_gap_lowers_the_confidence_and_six_hours_ends_it() {
        // At work since minute 80, next fix at minute 200: stationary, but a 2-hour bracket.
        let tag = geotag(&day(), Timestamp(140 * MIN)).unwrap();
        assert!(!tag.moving);
        assert_eq!(tag.confidence, Confidence::High);
        // One-sided after the last fix: walking pace from it.
        let later = geotag(&day(), Timestamp(260 * MIN)).unwrap();
        assert_eq!(later.confidence, Confidence::Low);
        assert!(later.error_m > 5_000.0);
        assert_eq!(geotag(&day(), Timestamp(200 * MIN + MAX_GAP_MS + 1)), None);
        assert_eq!(geotag(&[], Timestamp(0)), None);
        // A stationary bracket longer than three hours is no longer high.
        let sparse = [fix(0, 53.8655, 10.6866), fix(300, 53.8656, 10.6866)];
        assert_eq!(geotag(&sparse, Timestamp(150 * MIN)).unwrap().confidence, Confidence::Medium);
    }

    #[test]
    fn interpolation_crosses_the_antimeridian_the_short_way() {
        let fixes = [fix(0, -17.0, 179.9), fix(10, -17.0, -179.9)];
        let tag = geotag(&fixes, Timestamp(5 * MIN)).unwrap();
        assert!(tag.coord.lon().abs() > 179.99, "{}", tag.coord.lon());
        assert!(tag.error_m < 100_000.0);
    }

    #[test]
    fn the_offset_of_a_wall_clock_time_comes_from_the_fix_nearest_in_local_time() {
        // Fixes in Lübeck (+120) until 10:00 UTC, then in New York (−240) from 20:00 UTC.
        let mut fixes: Vec<HistoryFix> = (0..=10).map(|h| fix(h * 60, 53.8, 10.6)).collect();
        fixes.extend((20..=30).map(|h| HistoryFix { offset_minutes: Some(-240), ..fix(h * 60, 40.7, -74.0) }));
        // 11:00 local: Lübeck's 09:00 UTC fix has local 11:00.
        assert_eq!(offset_at_wall(&fixes, Timestamp(11 * 60 * MIN)), Some(120));
        // 22:00 local: New York's 02:00 UTC (next day) fix has local 22:00.
        assert_eq!(offset_at_wall(&fixes, Timestamp(22 * 60 * MIN)), Some(-240));
        assert_eq!(offset_at_wall(&[], Timestamp(0)), None);
        // A UTC instant takes the offset of the fix nearest in time.
        assert_eq!(offset_at_instant(&fixes, Timestamp(21 * 60 * MIN)), Some(-240));
        assert_eq!(offset_at_instant(&fixes, Timestamp(9 * 60 * MIN)), Some(120));
        assert_eq!(offset_at_instant(&fixes, Timestamp(60 * 60 * MIN)), None);
    }

    #[test]
    fn a_walk_with_a_fix_a_minute_is_moving_and_jitter_at_rest_is_not() {
        // 80 m in a minute, fixes accurate to 10 m.
        assert!(is_moving(80.0, 60_000, 10.0));
        // 20 m of jitter in ten seconds.
        assert!(!is_moving(20.0, 10_000, 10.0));
        // 60 m in ten seconds with fixes accurate to 50 m: within their accuracy.
        assert!(!is_moving(60.0, 10_000, 50.0));
        // Across town in an hour, however slow.
        assert!(is_moving(3_000.0, 3_600_000 * 3, 10.0));
    }

    #[test]
    fn confidences_order_and_parse() {
        assert!(Confidence::Low < Confidence::Medium && Confidence::Medium < Confidence::High);
        for c in [Confidence::Low, Confidence::Medium, Confidence::High] {
            assert_eq!(Confidence::from_name(c.name()), Some(c));
        }
        assert_eq!(Confidence::from_name("certain"), None);
    }
}
