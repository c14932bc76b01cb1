//! Google Takeout Semantic Location History (`YYYY/YYYY_MONTH.json`,
//! `{"timelineObjects":[{"placeVisit":…}|{"activitySegment":…}]}`).
//!
//! Visits and activity segments are Google's own interpretation, so they
//! become [`Interval`]s, not invented points (Dawarich stamps every waypoint
//! with the segment's start time; that fabricates fixes). The only real
//! timestamped fixes in this format are `simplifiedRawPath.points`, which are
//! emitted as points. Waypoints, transit paths, candidates, names and
//! addresses are kept verbatim in the interval's extras.
//!
//! Quirks (formats.md §1.3): durations as ISO `startTimestamp`, the older
//! `startTimestampMs`, or epoch seconds in a string; a missing end (the
//! interval is then an instant); `startLocation`/`endLocation` present but
//! empty; a visit without `location` coordinates falls back to
//! `centerLatE7`/`centerLngE7`; a visit with only `otherCandidateLocations`
//! (Google's guesses, not the place) is rejected ("only candidate
//! locations"), and so is an activity with neither `startLocation` nor
//! `endLocation` (its waypoints carry no time); their raw paths still count;
//! `childVisits` nest recursively (level + 1); `latitudeE7` vs `latE7` key
//! names; a BOM (handled by the splitter).

use polo_domain::time::ParsedTime;
use polo_domain::{Coord, Fix, Interval, IntervalKind, SourceFormat};
use serde_json::value::RawValue;

use super::value::{RawObject, array, check_time, e7_of, num_of, probability, reject, str_of, time, time_ms};
use crate::extras::ExtrasBuilder;
use crate::measure::{self, Column, OutOfRange};
use crate::{ImportOptions, Sink};

const SOURCE: SourceFormat = SourceFormat::GoogleSemantic;

/// Deepest `childVisits` nesting followed (the level is a `u8`, and real
/// files nest one or two levels).
const MAX_LEVEL: u8 = 16;

/// Imports one element of `timelineObjects`.
pub(super) fn element(options: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
    if let Err(why) = crate::json_keys::check(raw) {
        return reject(sink, offset, why, raw);
    }
    let obj = match RawObject::from_slice(raw) {
        Ok(o) => o,
        Err(reason) => return reject(sink, offset, reason, raw),
    };
    let mut ctx = Ctx { options, sink, offset, element: raw };
    if let Some(visit) = obj.object("placeVisit") {
        ctx.place_visit(&visit, 0);
    } else if let Some(segment) = obj.object("activitySegment") {
        ctx.activity_segment(&segment);
    } else {
        let reason = format!("timeline object has neither placeVisit nor activitySegment (keys: {})", obj.key_list());
        reject(ctx.sink, offset, reason, raw);
    }
}

struct Ctx<'a, 's> {
    options: &'a ImportOptions,
    sink: &'s mut dyn Sink,
    offset: u64,
    element: &'a [u8],
}

impl Ctx<'_, '_> {
    fn reject(&mut self, reason: String) {
        reject(self.sink, self.offset, reason, self.element);
    }

    /// Reads `duration` into (start, end), rejecting the element when unusable.
    fn duration(&mut self, obj: &RawObject<'_>, what: &str) -> Option<(ParsedTime, ParsedTime)> {
        let Some(duration) = obj.object("duration") else {
            self.reject(format!("{what}.duration: missing"));
            return None;
        };
        let read = |iso: &str, ms: &str| -> Option<Result<ParsedTime, String>> {
            match (duration.get(iso), duration.get(ms)) {
                (Some(v), _) => Some(time(v, &format!("{what}.duration.{iso}"))),
                (None, Some(v)) => Some(time_ms(v, &format!("{what}.duration.{ms}"))),
                (None, None) => None,
            }
        };
        let start = match read("startTimestamp", "startTimestampMs") {
            Some(Ok(t)) => t,
            Some(Err(reason)) => {
                self.reject(reason);
                return None;
            }
            None => {
                self.reject(format!("{what}.duration.startTimestamp: missing"));
                return None;
            }
        };
        let end = match read("endTimestamp", "endTimestampMs") {
            Some(Ok(t)) => t,
            Some(Err(reason)) => {
                self.reject(reason);
                return None;
            }
            None => start,
        };
        for (t, field) in [(start, "startTimestamp"), (end, "endTimestamp")] {
            if let Err(reason) = check_time(self.options, t.time, &format!("{what}.duration.{field}")) {
                self.reject(reason);
                return None;
            }
        }
        if end.time < start.time {
            self.reject(format!("{what}.duration: endTimestamp is before startTimestamp"));
            return None;
        }
        Some((start, end))
    }

    fn place_visit(&mut self, visit: &RawObject<'_>, level: u8) {
        let Some((start, end)) = self.duration(visit, "placeVisit") else { return };
        let mut interval = Interval::new(IntervalKind::Visit, start.time, end.time, SOURCE);
        interval.start_offset_minutes = start.offset_minutes;
        interval.end_offset_minutes = end.offset_minutes;
        interval.level = level;
        let location = visit.object("location");
        interval.start_coord = location
            .as_ref()
            .and_then(|l| e7_of(l, "latitudeE7", "longitudeE7"))
            .and_then(Result::ok)
            .or_else(|| e7_of(visit, "centerLatE7", "centerLngE7").and_then(Result::ok));
        if let Some(location) = &location {
            interval.place_id = str_of(location, "placeId").map(Into::into);
            interval.name = str_of(location, "name").map(Into::into);
            interval.category = str_of(location, "semanticType").map(Into::into);
            interval.confidence = num_of(location, "locationConfidence").and_then(probability);
        }
        if let Some(c) = num_of(visit, "visitConfidence").and_then(probability) {
            interval.confidence = Some(c);
        }
        let mut extras = ExtrasBuilder::new();
        visit.extras_except(&["duration", "childVisits", "simplifiedRawPath"], &mut extras);
        interval.extras = extras.finish();
        if interval.start_coord.is_some() {
            self.sink.interval(interval, None);
        } else if visit.has("otherCandidateLocations") {
            self.reject(
                "placeVisit: only candidate locations (otherCandidateLocations are Google's guesses), no location \
                 or centre of its own"
                    .to_owned(),
            );
        } else {
            self.reject("placeVisit: no location or centre coordinates".to_owned());
        }
        self.raw_path(visit, "placeVisit");
        if let Some(children) = visit.get("childVisits").and_then(array) {
            if level >= MAX_LEVEL {
                self.reject(format!("placeVisit.childVisits: nested deeper than {MAX_LEVEL} levels"));
                return;
            }
            for child in children {
                match RawObject::parse(child) {
                    Some(child) => self.place_visit(&child, level + 1),
                    None => self.reject("placeVisit.childVisits: an element is not an object".to_owned()),
                }
            }
        }
    }

    fn activity_segment(&mut self, segment: &RawObject<'_>) {
        let Some((start, end)) = self.duration(segment, "activitySegment") else { return };
        let mut interval = Interval::new(IntervalKind::Activity, start.time, end.time, SOURCE);
        interval.start_offset_minutes = start.offset_minutes;
        interval.end_offset_minutes = end.offset_minutes;
        let location =
            |key: &str| segment.object(key).and_then(|l| e7_of(&l, "latitudeE7", "longitudeE7")).and_then(Result::ok);
        interval.start_coord = location("startLocation");
        interval.end_coord = location("endLocation");
        interval.distance_m = num_of(segment, "distance");
        let activities = segment.get("activities").and_then(array).unwrap_or_default();
        let activities: Vec<RawObject<'_>> = activities.into_iter().filter_map(RawObject::parse).collect();
        interval.category = str_of(segment, "activityType")
            .or_else(|| activities.first().and_then(|a| str_of(a, "activityType")))
            .map(Into::into);
        if let Some(category) = &interval.category {
            interval.confidence = activities
                .iter()
                .find(|a| str_of(a, "activityType").as_deref() == Some(category))
                .and_then(|a| num_of(a, "probability"))
                .and_then(probability);
        }
        let mut extras = ExtrasBuilder::new();
        segment.extras_except(&["duration", "simplifiedRawPath"], &mut extras);
        interval.extras = extras.finish();
        if interval.start_coord.is_some() || interval.end_coord.is_some() {
            self.sink.interval(interval, None);
        } else {
            self.reject(
                "activitySegment: no startLocation or endLocation coordinates (waypoints carry no time)".to_owned(),
            );
        }
        self.raw_path(segment, "activitySegment");
    }

    /// `simplifiedRawPath.points`: the real fixes.
    fn raw_path(&mut self, obj: &RawObject<'_>, what: &str) {
        let Some(points) = obj.object("simplifiedRawPath").and_then(|p| p.get("points")).and_then(array) else {
            return;
        };
        for point in points {
            match self.path_point(point, what) {
                Ok(fix) => self.sink.point(fix, None),
                Err(reason) => {
                    let raw = point.get().as_bytes();
                    reject(self.sink, self.offset, reason, raw);
                }
            }
        }
    }

    fn path_point(&mut self, point: &RawValue, what: &str) -> Result<Fix, String> {
        let field = format!("{what}.simplifiedRawPath.points");
        let p = RawObject::parse(point).ok_or_else(|| format!("{field}: a point is not an object"))?;
        let coord: Coord = e7_of(&p, "latE7", "lngE7")
            .ok_or_else(|| format!("{field}: latE7/lngE7 missing"))?
            .map_err(|e| format!("{field}.{e}"))?;
        let parsed = match (p.get("timestamp"), p.get("timestampMs")) {
            (Some(t), _) => time(t, &format!("{field}.timestamp"))?,
            (None, Some(t)) => time_ms(t, &format!("{field}.timestampMs"))?,
            (None, None) => return Err(format!("{field}.timestamp: missing")),
        };
        check_time(self.options, parsed.time, &format!("{field}.timestamp"))?;
        let mut fix = Fix::new(parsed.time, coord, SOURCE);
        fix.utc_offset_minutes = parsed.offset_minutes;
        fix.zone_assumed = parsed.zone_assumed;
        let mut extras = ExtrasBuilder::new();
        let mut out_of_range = OutOfRange::default();
        if let Some(a) = num_of(&p, "accuracyMeters").or_else(|| num_of(&p, "accuracyMetres")) {
            measure::set_as(&mut fix, Column::Accuracy, a, "accuracyMeters", &mut extras, &mut out_of_range);
        }
        p.extras_except(
            &["latE7", "lngE7", "timestamp", "timestampMs", "accuracyMeters", "accuracyMetres"],
            &mut extras,
        );
        fix.extras = extras.finish();
        out_of_range.report(self.sink);
        Ok(fix)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::import_str;
    use crate::Format;
    use polo_domain::IntervalKind;

    #[test]
    fn place_visit_with_raw_path_and_child_visits() {
        let text = r#"{"timelineObjects":[{"placeVisit":{
            "location":{"latitudeE7":374850711,"longitudeE7":-1221474242,"placeId":"ChIJ1","name":"Office","address":"1 Hacker Way","semanticType":"TYPE_WORK","locationConfidence":87},
            "duration":{"startTimestamp":"2013-05-09T01:24:28.883Z","endTimestamp":"2013-05-09T16:55:16Z"},
            "centerLatE7":374340997,"centerLngE7":-1221390791,"visitConfidence":95,
            "simplifiedRawPath":{"points":[{"latE7":374335782,"lngE7":-1221388493,"accuracyMeters":33,"timestamp":"2013-05-09T02:22:15.145Z"},
                                           {"latE7":0,"lngE7":0,"timestamp":"2013-05-09T02:23:15Z"}]},
            "childVisits":[{"location":{"latitudeE7":374850000,"longitudeE7":-1221470000,"placeId":"ChIJ2"},
                            "duration":{"startTimestampMs":"1368063000000","endTimestampMs":"1368064000000"}}]}}]}"#;
        let (format, got) = import_str(text);
        assert_eq!(format.unwrap(), Format::GoogleSemantic);
        assert_eq!(got.intervals.len(), 2);
        let v = &got.intervals[0];
        assert_eq!(v.kind, IntervalKind::Visit);
        assert_eq!(v.start_coord.unwrap().lat_e7, 374_850_711);
        assert_eq!(
            (v.place_id.as_deref(), v.name.as_deref(), v.category.as_deref()),
            (Some("ChIJ1"), Some("Office"), Some("TYPE_WORK"))
        );
        assert_eq!(v.confidence, Some(0.95));
        assert_eq!(v.end.0 - v.start.0, 55_847_117);
        let extras = v.extras.as_ref().unwrap().as_str();
        assert!(extras.contains(r#""address":"1 Hacker Way""#) && !extras.contains("childVisits"), "{extras}");
        let child = &got.intervals[1];
        assert_eq!((child.level, child.place_id.as_deref(), child.start.0), (1, Some("ChIJ2"), 1_368_063_000_000));
        assert_eq!(got.points.len(), 1);
        assert_eq!(got.points[0].0.horizontal_accuracy_cm, Some(3300));
        assert_eq!(got.rejects.len(), 1);
        assert!(got.rejects[0].reason.contains("simplifiedRawPath"));
        assert!(got.rejects[0].raw.contains("\"latE7\":0"));
    }

    #[test]
    fn visit_coordinates_fall_back_to_center_but_candidates_alone_are_rejected() {
        let text = r#"{"timelineObjects":[
            {"placeVisit":{"location":{"placeId":"a"},"centerLatE7":10,"centerLngE7":20,"duration":{"startTimestamp":"2020-01-01T00:00:00Z"}}},
            {"placeVisit":{"otherCandidateLocations":[{"latitudeE7":123533333,"longitudeE7":123533333}],"duration":{"startTimestamp":"2025-03-24 20:25:02 +0100"}}},
            {"activitySegment":{"waypointPath":{"waypoints":[{"latE7":123411111,"lngE7":123411111}]},"duration":{"startTimestamp":"2025-03-24 20:07:24 +0100"}}}]}"#;
        let (_, got) = import_str(text);
        assert_eq!(got.intervals.len(), 1);
        assert_eq!(got.intervals[0].start_coord.unwrap().lat_e7, 10);
        let reasons: Vec<&str> = got.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].starts_with("placeVisit: only candidate locations"), "{reasons:?}");
        assert!(reasons[1].starts_with("activitySegment: no startLocation or endLocation"), "{reasons:?}");
    }

    #[test]
    fn a_month_of_only_candidate_visits_is_nothing_to_import() {
        let text = r#"{"timelineObjects":[{"placeVisit":{"otherCandidateLocations":[{"latitudeE7":1,"longitudeE7":2}],"duration":{"startTimestamp":"2020-01-01T00:00:00Z"}}}]}"#;
        let mut sink = super::super::tests::Collect::default();
        let err = crate::import(text.as_bytes(), &super::super::tests::options(), &mut sink).unwrap_err();
        assert!(err.to_string().contains("only candidate locations"), "{err}");
        assert!(matches!(err, crate::ImportError::NothingToImport { .. }));
        assert_eq!(sink.rejects.len(), 1);
    }

    #[test]
    fn activity_segment_with_empty_locations_and_old_timestamps() {
        let text = r#"{"timelineObjects":[{"activitySegment":{"startLocation":{},"endLocation":{"latitudeE7":533519706,"longitudeE7":837596359},
            "duration":{"startTimestampMs":"1385881514222","endTimestampMs":"1385882273214"},"distance":3853,"activityType":"IN_VEHICLE",
            "activities":[{"activityType":"IN_VEHICLE","probability":91.5},{"activityType":"WALKING","probability":8.5}],
            "waypointPath":{"waypoints":[{"latE7":533407440,"lngE7":837026901}],"source":"BACKFILLED"},"confidence":"HIGH"}}]}"#;
        let (_, got) = import_str(text);
        let a = &got.intervals[0];
        assert_eq!(a.kind, IntervalKind::Activity);
        assert!(a.start_coord.is_none());
        assert_eq!(a.end_coord.unwrap().lon_e7, 837_596_359);
        assert_eq!(
            (a.distance_m, a.category.as_deref(), a.confidence),
            (Some(3853.0), Some("IN_VEHICLE"), Some(0.915))
        );
        assert!(a.extras.as_ref().unwrap().as_str().contains(r#""waypointPath":{"waypoints":[{"latE7":533407440"#));
        assert!(got.points.is_empty(), "waypoints have no time and are not fixes");
    }

    #[test]
    fn seconds_in_a_string_and_ruby_time() {
        let text = r#"{"timelineObjects":[
            {"placeVisit":{"location":{"latitudeE7":123499999,"longitudeE7":123499999},"duration":{"startTimestamp":"1742844302"}}},
            {"activitySegment":{"startLocation":{"latitudeE7":1,"longitudeE7":2},"duration":{"startTimestamp":"2025-03-24 20:07:24 +0100"}}}]}"#;
        let (_, got) = import_str(text);
        assert_eq!(got.intervals[0].start.0, 1_742_844_302_000);
        assert_eq!(got.intervals[1].start.0, 1_742_843_244_000);
    }

    #[test]
    fn unusable_objects_are_rejected() {
        let text = r#"{"timelineObjects":[{"placeVisit":{"location":{}}},{"somethingNew":{}},
            {"activitySegment":{"duration":{"startTimestamp":"2020-01-02T00:00:00Z","endTimestamp":"2020-01-01T00:00:00Z"}}}]}"#;
        let (_, got) = import_str(text);
        let reasons: Vec<&str> = got.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 3);
        assert!(reasons[0].contains("placeVisit.duration: missing"));
        assert!(reasons[1].contains("somethingNew"));
        assert!(reasons[2].contains("before startTimestamp"));
    }
}
