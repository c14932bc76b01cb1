//! What a view shows where a source's own intervals (Google Semantic
//! Location History and phone Timeline visits and activities, Overland
//! trips) meet the stays and legs detected from the points.
//!
//! An imported visit is what the user saw in Google Maps for years, with
//! the place's name and Google's times: it is never hidden, and it beats
//! whatever was detected at the same time. A raw path of a few fixes inside
//! "Stanford University" must not turn it into "Walking 88 m", and a
//! 75-minute visit must not vanish because a short detected stay touches it.
//! So:
//!
//! * every imported visit with a position is shown, except one that lies
//!   mostly inside another imported visit already shown (Google nests child
//!   visits in their parent: the parent is the entry);
//! * a detected stay or leg loses the time an imported visit covers: it is
//!   cut to the parts outside the visits (a leg's distance in proportion);
//!   a leg's part shorter than [`MIN_PART_MS`] is dropped, and a stay's
//!   shorter than [`MIN_STAY_PART_MS`] (the fringe of a stay Google ended a
//!   few minutes earlier: no "Near Neukölln, 2 min" after Google's "Home");
//! * an imported activity is shown only where nothing else is, as before: a
//!   leg measured from the points says more than Google's summary of it. One
//!   without a distance gets the length of its waypoints, or of the straight
//!   line between its ends.

use polo_domain::{Coord, Interval, IntervalKind};
use polo_timeline::geo::{Prepared, haversine_m};
use polo_timeline::{LocalClock, OffsetChanges, TransportMode};

use crate::rows::{LegRow, StayRow};
use crate::views::{Entries, LegView, Origin, StayView};

/// A detected leg cut down by imported visits to less than this is dropped.
pub const MIN_PART_MS: i64 = 120_000;

/// A detected stay cut down by imported visits to less than this is dropped.
pub const MIN_STAY_PART_MS: i64 = 300_000;

/// Adds `intervals` (one device's, any order) to the detected `out` by the
/// rules in the module documentation. `visit_min_ms` is the user's shortest
/// visit: a stay cut below it is no longer a visit.
///
/// An interval whose source stated no UTC offset takes `clock`'s offset at
/// its start (the device's local clock), when there is one.
pub fn overlay(out: &mut Entries, mut intervals: Vec<Interval>, visit_min_ms: i64, clock: Option<&OffsetChanges>) {
    if let Some(clock) = clock {
        for interval in intervals.iter_mut().filter(|i| i.start_offset_minutes.is_none()) {
            interval.start_offset_minutes = Some(clock.offset_minutes_at(interval.start));
        }
    }
    let mut visits: Vec<Interval> =
        intervals.iter().filter(|i| i.kind == IntervalKind::Visit && i.start_coord.is_some()).cloned().collect();
    // Parents before children: earlier first, then the wider, then the lower level.
    visits.sort_by_key(|v| (v.start.0, std::cmp::Reverse(v.end.0), v.level));
    let mut shown: Vec<Interval> = Vec::new();
    for visit in visits {
        let inside: i64 = shown.iter().map(|s| overlap(s.start.0, s.end.0, visit.start.0, visit.end.0)).sum();
        if inside * 2 > visit.end.0 - visit.start.0 {
            continue;
        }
        shown.push(visit);
    }
    let covered: Vec<(i64, i64)> = shown.iter().map(|v| (v.start.0, v.end.0)).collect();
    cut_detected(out, &covered, visit_min_ms);
    out.stays.extend(shown.iter().filter_map(visit_view));

    for activity in intervals.iter().filter(|i| i.kind == IntervalKind::Activity) {
        let (start, end) = (activity.start.0, activity.end.0);
        let taken = out.stays.iter().any(|s| overlap(s.row.start, s.row.end, start, end) > 0)
            || out.legs.iter().any(|l| overlap(l.row.start, l.row.end, start, end) > 0);
        if !taken {
            out.legs.push(activity_view(activity));
        }
    }
    out.stays.sort_by_key(|s| s.row.start);
    out.legs.sort_by_key(|l| l.row.start);
}

/// Milliseconds `[a0, a1)` and `[b0, b1)` share.
fn overlap(a0: i64, a1: i64, b0: i64, b1: i64) -> i64 {
    (a1.min(b1) - a0.max(b0)).max(0)
}

/// The parts of `[start, end)` outside every span of `covered`.
fn outside(start: i64, end: i64, covered: &[(i64, i64)]) -> Vec<(i64, i64)> {
    let mut parts = vec![(start, end)];
    for &(c0, c1) in covered.iter().filter(|&&(c0, c1)| c0 < end && c1 > start) {
        parts = parts
            .into_iter()
            .flat_map(|(p0, p1)| {
                if c1 <= p0 || c0 >= p1 {
                    vec![(p0, p1)]
                } else {
                    [(p0, c0.max(p0)), (c1.min(p1), p1)].into_iter().filter(|(a, b)| b > a).collect()
                }
            })
            .collect();
    }
    parts
}

/// Cuts the detected entries of `out` to the time outside `covered`.
fn cut_detected(out: &mut Entries, covered: &[(i64, i64)], visit_min_ms: i64) {
    if covered.is_empty() {
        return;
    }
    let stays = std::mem::take(&mut out.stays);
    for stay in stays {
        let (start, end) = (stay.row.start, stay.row.end);
        for (p0, p1) in outside(start, end, covered) {
            if (p0, p1) == (start, end) {
                out.stays.push(stay.clone());
            } else if p1 - p0 >= MIN_STAY_PART_MS {
                let mut part = stay.clone();
                part.row.start = p0;
                part.row.end = p1;
                part.row.last_seen = part.row.last_seen.clamp(p0, p1);
                part.row.offset_changes.retain(|&(at, _)| at > p0 && at < p1);
                part.row.visit = part.row.visit && p1 - p0 > visit_min_ms;
                out.stays.push(part);
            }
        }
    }
    let legs = std::mem::take(&mut out.legs);
    for leg in legs {
        let (start, end) = (leg.row.start, leg.row.end);
        for (p0, p1) in outside(start, end, covered) {
            if (p0, p1) == (start, end) {
                out.legs.push(leg.clone());
            } else if p1 - p0 >= MIN_PART_MS {
                let mut part = leg.clone();
                #[allow(clippy::cast_precision_loss)]
                let share = (p1 - p0) as f64 / (end - start) as f64;
                part.row.start = p0;
                part.row.end = p1;
                part.row.distance_m *= share;
                part.row.offset_changes.retain(|&(at, _)| at > p0 && at < p1);
                out.legs.push(part);
            }
        }
    }
}

fn visit_view(interval: &Interval) -> Option<StayView> {
    let coord = interval.start_coord?;
    Some(StayView {
        row: StayRow {
            start: interval.start.0,
            end: interval.end.0,
            last_seen: interval.end.0,
            decided: None,
            lat_e7: coord.lat_e7,
            lon_e7: coord.lon_e7,
            points: 0,
            visit: true,
            place: None,
            offset: interval.start_offset_minutes,
            offset_changes: Vec::new(),
        },
        place: None,
        place_name: interval.name.clone(),
        locality: None,
        address: source_address(interval),
        origin: Origin::Imported,
        edited: false,
        ongoing: false,
    })
}

fn activity_view(interval: &Interval) -> LegView {
    let (start, end) = (interval.start.0, interval.end.0);
    let distance = activity_distance_m(interval).unwrap_or(0.0);
    #[allow(clippy::cast_precision_loss)]
    let seconds = (end - start) as f64 / 1000.0;
    let mean = if seconds > 0.0 { distance / seconds } else { 0.0 };
    let mode = interval
        .category
        .as_deref()
        .and_then(polo_domain::Motion::from_activity_name)
        .and_then(TransportMode::from_motion)
        .unwrap_or(TransportMode::Unknown);
    LegView {
        row: LegRow {
            start,
            end,
            points: 0,
            distance_m: distance,
            mean_mps: mean,
            median_mps: mean,
            p85_mps: mean,
            max_mps: mean,
            mode,
            source: polo_timeline::LegSource::Tracked,
            offset: interval.start_offset_minutes,
            offset_changes: Vec::new(),
        },
        mode,
        corrected: false,
        origin: Origin::Imported,
    }
}

/// The source's parsed extras, when it kept any.
fn extras(interval: &Interval) -> Option<serde_json::Value> {
    serde_json::from_str(interval.extras.as_ref()?.as_str()).ok()
}

/// The street address a source gave a visit (Semantic Location History's
/// `location.address`), for a place it did not name.
#[must_use]
pub fn source_address(interval: &Interval) -> Option<String> {
    let extras = extras(interval)?;
    let address = extras.get("location")?.get("address")?.as_str()?.trim();
    (!address.is_empty()).then(|| address.replace('\n', ", "))
}

/// An activity's length: the source's distance, else the length of the
/// path from its start through its waypoints (Semantic Location History's
/// `waypointPath`) to its end, else `None` (fewer than two positions).
///
/// # Units
/// - return value: metres
#[must_use]
pub fn activity_distance_m(interval: &Interval) -> Option<f64> {
    if let Some(distance) = interval.distance_m.filter(|d| d.is_finite() && *d > 0.0) {
        return Some(distance);
    }
    let waypoints = extras(interval).map(|e| waypoints(&e)).unwrap_or_default();
    let path: Vec<Coord> = interval.start_coord.into_iter().chain(waypoints).chain(interval.end_coord).collect();
    if path.len() < 2 {
        return interval.distance_m;
    }
    let prepared: Vec<Prepared> = path.iter().map(|&c| Prepared::new(c)).collect();
    Some(prepared.windows(2).map(|pair| haversine_m(&pair[0], &pair[1])).sum())
}

/// `waypointPath.waypoints[]` (`latE7`/`lngE7`, or `latitudeE7`/`longitudeE7`).
fn waypoints(extras: &serde_json::Value) -> Vec<Coord> {
    let Some(list) = extras.get("waypointPath").and_then(|p| p.get("waypoints")).and_then(|w| w.as_array()) else {
        return Vec::new();
    };
    list.iter()
        .filter_map(|w| {
            let e7 = |a: &str, b: &str| w.get(a).or_else(|| w.get(b)).and_then(serde_json::Value::as_i64);
            let lat = i32::try_from(e7("latE7", "latitudeE7")?).ok()?;
            let lon = i32::try_from(e7("lngE7", "longitudeE7")?).ok()?;
            Coord::from_degrees(f64::from(lat) / 1e7, f64::from(lon) / 1e7).ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use polo_domain::{Extras, SourceFormat, Timestamp};
    use polo_timeline::LegSource;

    use super::*;

    const MINUTE: i64 = 60_000;
    const VISIT_MIN: i64 = 15 * MINUTE;
    /// Stanford's Main Quad.
    const QUAD: (f64, f64) = (37.4275, -122.1697);

    fn at(north_m: f64) -> Coord {
        Coord::from_degrees(QUAD.0 + north_m / 111_195.0, QUAD.1).unwrap()
    }

    fn stay(start: i64, end: i64, visit: bool) -> StayView {
        let coord = at(0.0);
        StayView {
            row: StayRow {
                start: start * MINUTE,
                end: end * MINUTE,
                last_seen: end * MINUTE - 1,
                decided: None,
                lat_e7: coord.lat_e7,
                lon_e7: coord.lon_e7,
                points: 12,
                visit,
                place: visit.then_some(4),
                offset: Some(-480),
                offset_changes: Vec::new(),
            },
            place: visit.then_some(4),
            place_name: None,
            locality: None,
            address: None,
            origin: Origin::Detected,
            edited: false,
            ongoing: false,
        }
    }

    fn leg(start: i64, end: i64, metres: f64) -> LegView {
        LegView {
            row: LegRow {
                start: start * MINUTE,
                end: end * MINUTE,
                points: 5,
                distance_m: metres,
                mean_mps: 1.0,
                median_mps: 1.0,
                p85_mps: 1.0,
                max_mps: 1.0,
                mode: TransportMode::Walk,
                source: LegSource::Tracked,
                offset: Some(-480),
                offset_changes: Vec::new(),
            },
            mode: TransportMode::Walk,
            corrected: false,
            origin: Origin::Detected,
        }
    }

    fn visit(start: i64, end: i64, name: Option<&str>, level: u8) -> Interval {
        let mut visit = Interval::new(
            IntervalKind::Visit,
            Timestamp(start * MINUTE),
            Timestamp(end * MINUTE),
            SourceFormat::GoogleSemantic,
        );
        visit.start_coord = Some(at(0.0));
        visit.name = name.map(str::to_owned);
        visit.level = level;
        visit
    }

    fn activity(start: i64, end: i64, from: f64, to: f64, extras: Option<&str>) -> Interval {
        let mut activity = Interval::new(
            IntervalKind::Activity,
            Timestamp(start * MINUTE),
            Timestamp(end * MINUTE),
            SourceFormat::GoogleSemantic,
        );
        activity.start_coord = Some(at(from));
        activity.end_coord = Some(at(to));
        activity.category = Some("WALKING".into());
        activity.extras = extras.map(Extras::from_json_object);
        activity
    }

    /// Start and end minute and origin of each entry.
    type Spans = Vec<(i64, i64, Origin)>;

    fn spans(out: &Entries) -> (Spans, Spans) {
        (
            out.stays.iter().map(|s| (s.row.start / MINUTE, s.row.end / MINUTE, s.origin)).collect(),
            out.legs.iter().map(|l| (l.row.start / MINUTE, l.row.end / MINUTE, l.origin)).collect(),
        )
    }

    #[test]
    fn a_google_visit_beats_the_detected_walk_and_stays_it_overlaps() {
        // Detected from a few raw-path fixes: a stop, "Walking 88 m", a stop.
        // Google says: Stanford University, 10:00 to 11:15.
        let mut out =
            Entries { stays: vec![stay(590, 612, true), stay(650, 700, true)], legs: vec![leg(612, 618, 88.0)] };
        overlay(&mut out, vec![visit(600, 675, Some("Stanford University"), 0)], VISIT_MIN, None);
        let (stays, legs) = spans(&out);
        assert_eq!(
            stays,
            [(590, 600, Origin::Detected), (600, 675, Origin::Imported), (675, 700, Origin::Detected)],
            "the visit keeps its 75 minutes; the stays either side keep what it does not cover"
        );
        assert!(legs.is_empty(), "the walk inside the visit is gone: {legs:?}");
        let stanford = &out.stays[1];
        assert_eq!(stanford.place_name.as_deref(), Some("Stanford University"));
        assert_eq!(stanford.title().as_deref(), Some("Stanford University"));
        // A 10-minute remainder is no longer a visit; the 25-minute one still is.
        assert!(!out.stays[0].row.visit && out.stays[2].row.visit);
    }

    #[test]
    fn a_visit_inside_a_long_detected_stay_splits_it_and_legs_shrink_in_proportion() {
        let mut out = Entries { stays: vec![stay(0, 240, true)], legs: vec![leg(240, 300, 6_000.0)] };
        overlay(&mut out, vec![visit(60, 120, Some("Café"), 0), visit(250, 280, None, 0)], VISIT_MIN, None);
        let (stays, legs) = spans(&out);
        assert_eq!(
            stays,
            [
                (0, 60, Origin::Detected),
                (60, 120, Origin::Imported),
                (120, 240, Origin::Detected),
                (250, 280, Origin::Imported)
            ]
        );
        assert_eq!(legs, [(240, 250, Origin::Detected), (280, 300, Origin::Detected)]);
        assert!(
            (out.legs[0].row.distance_m - 1_000.0).abs() < 1e-6 && (out.legs[1].row.distance_m - 2_000.0).abs() < 1e-6
        );
    }

    #[test]
    fn nested_visits_show_their_parent_and_tiny_remainders_go() {
        let mut out = Entries { stays: vec![stay(0, 60, true)], legs: vec![] };
        let parent = visit(0, 59, Some("Stanford University"), 0);
        let child = visit(10, 40, Some("Gates Computer Science"), 1);
        overlay(&mut out, vec![child, parent], VISIT_MIN, None);
        let (stays, _) = spans(&out);
        assert_eq!(stays, [(0, 59, Origin::Imported)], "the detected minute after it is too short to show");
        assert_eq!(out.stays[0].place_name.as_deref(), Some("Stanford University"));
    }

    #[test]
    fn a_stays_fringe_of_minutes_beside_a_google_visit_is_dropped() {
        // The phone saw home from 8:20 to 10:04; Google says home from 8:40 to 10:00.
        let mut out = Entries { stays: vec![stay(500, 604, true)], legs: vec![] };
        overlay(&mut out, vec![visit(520, 600, Some("Home"), 0)], VISIT_MIN, None);
        let (stays, _) = spans(&out);
        assert_eq!(stays, [(500, 520, Origin::Detected), (520, 600, Origin::Imported)], "the four minutes after it go");
    }

    #[test]
    fn a_source_without_offsets_takes_the_devices_local_clock() {
        let mut out = Entries::default();
        // UTC+1 until minute 1000, then UTC+2 (a DST night).
        let clock = OffsetChanges::new(60, vec![(Timestamp(1_000 * MINUTE), 120)]);
        let mut stated = visit(2_000, 3_000, Some("Stated"), 0);
        stated.start_offset_minutes = Some(-300);
        overlay(
            &mut out,
            vec![visit(0, 500, Some("Café"), 0), visit(1_500, 1_800, Some("Kino"), 0), stated],
            VISIT_MIN,
            Some(&clock),
        );
        let offsets: Vec<Option<i16>> = out.stays.iter().map(|s| s.row.offset).collect();
        assert_eq!(offsets, [Some(60), Some(120), Some(-300)], "the source's own offset is kept");
    }

    #[test]
    fn activities_fill_holes_only_and_get_a_distance_from_their_path() {
        let waypoints = r#"{"waypointPath":{"waypoints":[{"latE7":374275000,"lngE7":-1221697000},{"latE7":374284000,"lngE7":-1221697000}]}}"#;
        let mut out = Entries { stays: vec![], legs: vec![leg(0, 10, 500.0)] };
        overlay(
            &mut out,
            vec![
                activity(5, 15, 0.0, 200.0, None),
                activity(20, 30, 0.0, 200.0, None),
                activity(40, 50, 0.0, 200.0, Some(waypoints)),
            ],
            VISIT_MIN,
            None,
        );
        let (_, legs) = spans(&out);
        assert_eq!(legs, [(0, 10, Origin::Detected), (20, 30, Origin::Imported), (40, 50, Origin::Imported)]);
        // No distance given: the straight line between its ends…
        assert!((out.legs[1].row.distance_m - 200.0).abs() < 1.0, "{}", out.legs[1].row.distance_m);
        // … or start → waypoints (0 m, 100 m) → end (200 m).
        assert!((out.legs[2].row.distance_m - 200.0).abs() < 1.0, "{}", out.legs[2].row.distance_m);
        assert!(out.legs[1].row.mean_mps > 0.3, "not \"Walking 0 m · 0.0 km/h\"");
        let zigzag = r#"{"waypointPath":{"waypoints":[{"latE7":374293000,"lngE7":-1221697000}]}}"#;
        let there_and_back = activity(0, 10, 0.0, 100.0, Some(zigzag));
        assert!((activity_distance_m(&there_and_back).unwrap() - 300.0).abs() < 1.5);
        let stated = Interval { distance_m: Some(1234.0), ..there_and_back };
        assert_eq!(activity_distance_m(&stated), Some(1234.0));
    }

    #[test]
    fn a_visit_with_only_an_address_is_named_by_it() {
        let mut bare = visit(0, 30, None, 0);
        bare.extras = Some(Extras::from_json_object(
            r#"{"location":{"address":"450 Serra Mall\nStanford, CA 94305","placeId":"ChIJ"}}"#,
        ));
        let mut out = Entries::default();
        overlay(&mut out, vec![bare], VISIT_MIN, None);
        assert_eq!(out.stays[0].address.as_deref(), Some("450 Serra Mall, Stanford, CA 94305"));
        assert_eq!(out.stays[0].title().as_deref(), Some("450 Serra Mall, Stanford, CA 94305"));
    }
}
