//! Android on-device Timeline export (`Timeline.json`, 2024+):
//! `{"semanticSegments":[…],"rawSignals":[…],"userLocationProfile":{…}}`,
//! keys in any order.
//!
//! What becomes what (formats.md §1.5):
//! * `semanticSegments[].timelinePath[]` points have their own `time`: real
//!   fixes. The two-hour path windows overlap each other and the visits and
//!   repeat points, so repeats of the same (time, position) are dropped
//!   within a bounded recent window ([`RecentFixes`]); the store deduplicates
//!   whatever repeats further apart.
//! * `visit` → a Visit interval (`hierarchyLevel` as level, `topCandidate`
//!   place id / semantic type / probability, `placeLocation.latLng`);
//!   `activity` → an Activity interval (start/end `latLng`, `distanceMeters`,
//!   `topCandidate.type`); `timelineMemory` → a Memory interval. Everything
//!   else in them is kept verbatim in extras. `startTimeTimezoneUtcOffsetMinutes`
//!   gives the local offsets when present.
//! * `rawSignals[].position` (capital `LatLng`) → fixes with accuracy,
//!   altitude, speed; `source` and the rest in extras. When the same signal
//!   also carries an `activityRecord`, its most probable type becomes the
//!   fix's motion and the record goes to extras.
//! * `rawSignals` holding only a `wifiScan` or an `activityRecord` are **not
//!   location records**: they have no position to import and are not errors
//!   either, so they are neither emitted nor rejected. They are counted
//!   ([`Android::skipped_signals`]) so a test can see none went missing.
//! * `userLocationProfile.frequentPlaces` are skipped on purpose: they carry
//!   no timestamps, so they are places, not points (Dawarich invents times
//!   for them — don't). The timeline work will import them as places.
//!
//! `latLng` strings come with a literal `°`, a `\u00b0` escape, or no degree
//! sign at all; [`Coord::parse_lat_lon_text`] reads all three.

use polo_domain::time::ParsedTime;
use polo_domain::{Coord, Fix, Interval, IntervalKind, Motion, SourceFormat};
use serde_json::value::RawValue;

use super::value::{
    RawObject, RecentFixes, array, check_time, integer, num_of, number, probability, reject, str_of, time,
};
use crate::extras::ExtrasBuilder;
use crate::measure::{self, Column, OutOfRange};
use crate::{ImportOptions, Sink};

const SOURCE: SourceFormat = SourceFormat::GoogleAndroidTimeline;

/// State kept across the elements of one file. The iOS export has the same
/// segment kinds in other spellings, so `ios.rs` reuses this with its own source.
pub(super) struct Android {
    source: SourceFormat,
    recent: RecentFixes,
    /// Raw signals without a position (Wi-Fi scans, activity records).
    pub(super) skipped_signals: u64,
}

impl Default for Android {
    fn default() -> Self {
        Self::new(SOURCE)
    }
}

/// Reads a `"lat°, lng°"` or `"geo:lat,lng"` text member.
fn lat_lng(obj: &RawObject<'_>, key: &str) -> Option<Result<Coord, String>> {
    let text = str_of(obj, key)?;
    Some(Coord::parse_lat_lon_text(&text).map_err(|e| format!("{key}: {e}")))
}

/// Reads a location member that is either a text (iOS `"geo:…"`) or an
/// object holding `latLng` (Android).
fn location(obj: &RawObject<'_>, key: &str) -> Option<Result<Coord, String>> {
    match obj.object(key) {
        Some(inner) => lat_lng(&inner, "latLng").map(|r| r.map_err(|e| format!("{key}.{e}"))),
        None => lat_lng(obj, key),
    }
}

/// Reads the start/end time pair of a segment with its offset fields.
fn segment_times(seg: &RawObject<'_>, options: &ImportOptions) -> Result<(ParsedTime, ParsedTime), String> {
    let read = |key: &str, offset_key: &str| -> Result<ParsedTime, String> {
        let raw = seg.get(key).ok_or_else(|| format!("{key}: missing"))?;
        let mut t = time(raw, key)?;
        check_time(options, t.time, key)?;
        if let Some(minutes) = seg.get(offset_key).and_then(integer).and_then(|m| i16::try_from(m).ok()) {
            t.offset_minutes = Some(minutes);
        }
        Ok(t)
    };
    let start = read("startTime", "startTimeTimezoneUtcOffsetMinutes")?;
    let end = read("endTime", "endTimeTimezoneUtcOffsetMinutes")?;
    if end.time < start.time {
        return Err("endTime is before startTime".to_owned());
    }
    Ok((start, end))
}

impl Android {
    /// State for a file whose fixes and intervals come from `source`.
    pub(super) fn new(source: SourceFormat) -> Self {
        Self { source, recent: RecentFixes::default(), skipped_signals: 0 }
    }

    /// Imports one element of `semanticSegments` (or of the iOS array).
    pub(super) fn segment(&mut self, options: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
        if let Err(why) = crate::json_keys::check(raw) {
            return reject(sink, offset, why, raw);
        }
        let seg = match RawObject::from_slice(raw) {
            Ok(o) => o,
            Err(reason) => return reject(sink, offset, reason, raw),
        };
        let mut used = false;
        if let Some(path) = seg.get("timelinePath") {
            used = true;
            self.path(options, sink, offset, &seg, path);
        }
        let kinds = [
            ("visit", IntervalKind::Visit),
            ("activity", IntervalKind::Activity),
            ("timelineMemory", IntervalKind::Memory),
        ];
        for (key, kind) in kinds {
            let Some(body) = seg.get(key) else { continue };
            used = true;
            match interval(&seg, kind, body, options, self.source) {
                Ok(interval) => sink.interval(interval, None),
                Err(reason) => reject(sink, offset, format!("{key}: {reason}"), raw),
            }
        }
        if !used {
            let reason = format!(
                "semantic segment has no timelinePath, visit, activity or timelineMemory (keys: {})",
                seg.key_list()
            );
            reject(sink, offset, reason, raw);
        }
    }

    fn path(
        &mut self,
        options: &ImportOptions,
        sink: &mut dyn Sink,
        offset: u64,
        seg: &RawObject<'_>,
        path: &RawValue,
    ) {
        let Some(points) = array(path) else {
            return reject(sink, offset, "timelinePath: not an array", path.get().as_bytes());
        };
        // iOS points are timed relative to the window start.
        let window_start = seg.get("startTime").map(|t| time(t, "startTime"));
        for point in points {
            match path_point(point, window_start.as_ref(), options, self.source) {
                Ok(fix) => {
                    if self.recent.first_time(fix.time, fix.coord) {
                        sink.point(fix, None);
                    }
                }
                Err(reason) => reject(sink, offset, format!("timelinePath: {reason}"), point.get().as_bytes()),
            }
        }
    }

    /// Imports one element of `rawSignals`.
    pub(super) fn signal(&mut self, options: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
        if let Err(why) = crate::json_keys::check(raw) {
            return reject(sink, offset, why, raw);
        }
        let signal = match RawObject::from_slice(raw) {
            Ok(o) => o,
            Err(reason) => return reject(sink, offset, reason, raw),
        };
        let Some(position) = signal.get("position") else {
            // wifiScan / activityRecord: not location records (see module docs).
            self.skipped_signals += 1;
            return;
        };
        let mut out_of_range = OutOfRange::default();
        match position_fix(&signal, position, options, self.source, &mut out_of_range) {
            Ok(fix) => {
                out_of_range.report(sink);
                sink.point(fix, None);
            }
            Err(reason) => reject(sink, offset, format!("position: {reason}"), raw),
        }
    }
}

const OFFSET_KEY: &str = "durationMinutesOffsetFromStartTime";

/// A path point: Android gives it its own `time`; iOS gives minutes after
/// the window's `startTime` (a string or a number; negative is refused).
fn path_point(
    point: &RawValue,
    window_start: Option<&Result<ParsedTime, String>>,
    options: &ImportOptions,
    source: SourceFormat,
) -> Result<Fix, String> {
    let p = RawObject::parse(point).ok_or("a point is not an object")?;
    let coord = lat_lng(&p, "point").ok_or("point: missing")??;
    let (t, field) = if let Some(raw) = p.get("time") {
        (time(raw, "time")?, "time")
    } else if let Some(raw) = p.get(OFFSET_KEY) {
        let minutes = number(raw).ok_or_else(|| format!("{OFFSET_KEY}: not a number: {}", raw.get()))?;
        if minutes < 0.0 {
            return Err(format!("{OFFSET_KEY}: negative offset {minutes} before the window start"));
        }
        let start = match window_start {
            Some(Ok(start)) => *start,
            Some(Err(e)) => return Err(format!("window {e}")),
            None => return Err(format!("{OFFSET_KEY} without a window startTime")),
        };
        // Offsets are whole minutes in practice; round fractions to the millisecond.
        #[allow(clippy::cast_possible_truncation)]
        let ms = (minutes * 60_000.0).round() as i64;
        (ParsedTime { time: polo_domain::Timestamp(start.time.0.saturating_add(ms)), ..start }, OFFSET_KEY)
    } else {
        return Err(format!("time: missing (nor {OFFSET_KEY})"));
    };
    check_time(options, t.time, field)?;
    let mut fix = Fix::new(t.time, coord, source);
    fix.utc_offset_minutes = t.offset_minutes;
    fix.zone_assumed = t.zone_assumed;
    let mut extras = ExtrasBuilder::new();
    p.extras_except(&["point", "time", OFFSET_KEY], &mut extras);
    fix.extras = extras.finish();
    Ok(fix)
}

fn position_fix(
    signal: &RawObject<'_>,
    position: &RawValue,
    options: &ImportOptions,
    source: SourceFormat,
    out_of_range: &mut OutOfRange,
) -> Result<Fix, String> {
    let p = RawObject::parse(position).ok_or("not an object")?;
    let coord = lat_lng(&p, "LatLng").or_else(|| lat_lng(&p, "latLng")).ok_or("LatLng: missing")??;
    let t = time(p.get("timestamp").ok_or("timestamp: missing")?, "timestamp")?;
    check_time(options, t.time, "timestamp")?;
    let mut fix = Fix::new(t.time, coord, source);
    fix.utc_offset_minutes = t.offset_minutes;
    fix.zone_assumed = t.zone_assumed;
    let mut extras = ExtrasBuilder::new();
    for (key, column) in [
        ("accuracyMeters", Column::Accuracy),
        ("altitudeMeters", Column::Altitude),
        ("speedMetersPerSecond", Column::Speed),
    ] {
        if let Some(v) = num_of(&p, key) {
            measure::set_as(&mut fix, column, v, key, &mut extras, out_of_range);
        }
    }
    p.extras_except(
        &["LatLng", "latLng", "timestamp", "accuracyMeters", "altitudeMeters", "speedMetersPerSecond"],
        &mut extras,
    );
    if let Some(record) = signal.get("activityRecord") {
        fix.motion = RawObject::parse(record).and_then(|r| most_probable(&r));
    }
    signal.extras_except(&["position"], &mut extras);
    fix.extras = extras.finish();
    Ok(fix)
}

/// The type with the highest confidence in `probableActivities`.
fn most_probable(record: &RawObject<'_>) -> Option<Motion> {
    let candidates = array(record.get("probableActivities")?)?;
    let mut best: Option<(f64, Motion)> = None;
    for c in candidates.into_iter().filter_map(RawObject::parse) {
        let (Some(kind), Some(conf)) = (str_of(&c, "type"), num_of(&c, "confidence")) else { continue };
        let Some(motion) = Motion::from_activity_name(&kind) else { continue };
        if best.is_none_or(|(b, _)| conf > b) {
            best = Some((conf, motion));
        }
    }
    best.map(|(_, m)| m)
}

fn interval(
    seg: &RawObject<'_>,
    kind: IntervalKind,
    body: &RawValue,
    options: &ImportOptions,
    source: SourceFormat,
) -> Result<Interval, String> {
    let (start, end) = segment_times(seg, options)?;
    let obj = RawObject::parse(body).ok_or("not an object")?;
    let mut interval = Interval::new(kind, start.time, end.time, source);
    interval.start_offset_minutes = start.offset_minutes;
    interval.end_offset_minutes = end.offset_minutes;
    let top = obj.object("topCandidate");
    let mut consumed: Vec<&str> = Vec::new();
    match kind {
        IntervalKind::Visit => {
            interval.level =
                obj.get("hierarchyLevel").and_then(integer).and_then(|l| u8::try_from(l).ok()).unwrap_or(0);
            interval.confidence = num_of(&obj, "probability").and_then(probability);
            if let Some(top) = &top {
                // Android spells it placeId, iOS placeID.
                interval.place_id = str_of(top, "placeId").or_else(|| str_of(top, "placeID")).map(Into::into);
                interval.category = str_of(top, "semanticType").map(Into::into);
                interval.start_coord = location(top, "placeLocation").transpose()?;
                if interval.confidence.is_none() {
                    interval.confidence = num_of(top, "probability").and_then(probability);
                }
            }
            consumed.extend(["hierarchyLevel", "probability"]);
        }
        IntervalKind::Activity => {
            interval.start_coord = location(&obj, "start").transpose()?;
            interval.end_coord = location(&obj, "end").transpose()?;
            interval.distance_m = num_of(&obj, "distanceMeters");
            interval.confidence = num_of(&obj, "probability").and_then(probability);
            if let Some(top) = &top {
                interval.category = str_of(top, "type").map(Into::into);
                if interval.confidence.is_none() {
                    interval.confidence = num_of(top, "probability").and_then(probability);
                }
            }
            consumed.extend(["distanceMeters", "probability"]);
        }
        IntervalKind::Memory => {
            // Android: `{trip:{…}}` or `{note:{…}}`, the kind of memory is the
            // category. iOS is flat (`destinations`, `distanceFromOriginKms`).
            interval.category = match obj.members.first() {
                Some((k, _)) if obj.members.len() == 1 => Some(k.to_string()),
                _ if obj.has("destinations") => Some("trip".to_owned()),
                _ => None,
            };
        }
    }
    let mut extras = ExtrasBuilder::new();
    obj.extras_except(&consumed, &mut extras);
    interval.extras = extras.finish();
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Collect, import_str, options};
    use super::*;
    use crate::Format;

    #[test]
    fn visits_activities_and_memories_become_intervals() {
        let text = r#"{"semanticSegments":[
          {"startTime":"2019-04-03T08:13:57.000+02:00","endTime":"2019-04-03T20:10:18.000+02:00",
           "startTimeTimezoneUtcOffsetMinutes":120,"endTimeTimezoneUtcOffsetMinutes":120,
           "visit":{"hierarchyLevel":1,"probability":0.85,"isTimelessVisit":false,"topCandidate":{"placeId":"P1","semanticType":"INFERRED_HOME",
             "probability":0.45,"placeLocation":{"latLng":"50.0506312°, 14.3439906°"}}}},
          {"startTime":"2024-06-15T10:00:00.000+02:00","endTime":"2024-06-15T10:30:00.000+02:00",
           "activity":{"start":{"latLng":"48.8566\u00b0, 2.3522\u00b0"},"end":{"latLng":"48.8606, 2.3376"},"distanceMeters":1234.5,
             "topCandidate":{"type":"IN_PASSENGER_VEHICLE","probability":0.85},"parking":{"location":{"latLng":"48.8606°, 2.3376°"}}}},
          {"startTime":"2024-06-15T00:00:00.000+02:00","endTime":"2024-06-20T00:00:00.000+02:00",
           "timelineMemory":{"trip":{"distanceFromOriginKms":120,"destinations":[{"identifier":{"placeId":"P9"}}]}}}]}"#;
        let (format, got) = import_str(text);
        assert_eq!(format.unwrap(), Format::GoogleAndroidTimeline);
        assert!(got.rejects.is_empty(), "{:?}", got.rejects);
        let [visit, activity, memory] = &got.intervals[..] else { panic!("{:?}", got.intervals) };
        assert_eq!((visit.kind, visit.level, visit.place_id.as_deref()), (IntervalKind::Visit, 1, Some("P1")));
        assert_eq!(
            (visit.category.as_deref(), visit.confidence, visit.start_offset_minutes),
            (Some("INFERRED_HOME"), Some(0.85), Some(120))
        );
        assert_eq!(visit.start_coord.unwrap().lat_e7, 500_506_312);
        assert!(visit.extras.as_ref().unwrap().as_str().contains("isTimelessVisit"));
        assert_eq!(activity.kind, IntervalKind::Activity);
        assert_eq!(activity.start_coord.unwrap().lon_e7, 23_522_000);
        assert_eq!(activity.end_coord.unwrap().lat_e7, 488_606_000);
        assert_eq!((activity.distance_m, activity.category.as_deref()), (Some(1234.5), Some("IN_PASSENGER_VEHICLE")));
        assert!(activity.extras.as_ref().unwrap().as_str().contains("parking"));
        assert_eq!((memory.kind, memory.category.as_deref()), (IntervalKind::Memory, Some("trip")));
        assert!(memory.extras.as_ref().unwrap().as_str().contains("P9"));
    }

    #[test]
    fn timeline_path_points_are_fixes_deduplicated() {
        let text = r#"{"semanticSegments":[
          {"startTime":"2019-04-03T08:00:00.000+02:00","endTime":"2019-04-03T10:00:00.000+02:00","timelinePath":[
            {"point":"50.0506312°, 14.3439906°","time":"2019-04-03T08:14:00.000+02:00"},
            {"point":"50.0506312°, 14.3439906°","time":"2019-04-03T08:14:00.000+02:00"},
            {"point":"50.0506312°, 14.3439906°","time":"2019-04-03T08:46:00.000+02:00"},
            {"point":"nowhere","time":"2019-04-03T08:50:00.000+02:00"}]},
          {"startTime":"2019-04-03T09:00:00.000+02:00","endTime":"2019-04-03T11:00:00.000+02:00","timelinePath":[
            {"point":"50.0506312°, 14.3439906°","time":"2019-04-03T08:46:00.000+02:00"}]}]}"#;
        let (_, got) = import_str(text);
        assert_eq!(got.points.len(), 2);
        assert_eq!(got.points[0].0.utc_offset_minutes, Some(120));
        assert_eq!(got.rejects.len(), 1);
        assert!(got.rejects[0].reason.starts_with("timelinePath: point:"), "{}", got.rejects[0].reason);
        assert_eq!(got.rejects[0].raw, r#"{"point":"nowhere","time":"2019-04-03T08:50:00.000+02:00"}"#);
    }

    #[test]
    fn raw_signal_positions_are_fixes_and_scans_are_skipped() {
        let text = r#"{"rawSignals":[
          {"wifiScan":{"deliveryTime":"2024-06-06T11:44:37.000+01:00","devicesRecords":[{"mac":70474800562644,"rawRssi":-76}]}},
          {"position":{"LatLng":"48.833657°, 2.256223°","accuracyMeters":13,"altitudeMeters":90.70000457763672,"source":"WIFI",
            "timestamp":"2024-06-06T11:44:37.000+01:00","speedMetersPerSecond":0.07095485180616379}},
          {"activityRecord":{"probableActivities":[{"type":"STILL","confidence":0.96}],"timestamp":"2024-04-26T20:54:38.000+02:00"}},
          {"activityRecord":{"probableActivities":[{"type":"STILL","confidence":0.1},{"type":"WALKING","confidence":0.9}]},
           "position":{"LatLng":"40.712776°, -74.005974°","timestamp":"2023-10-01T08:00:00.000Z"}},
          {"position":{"LatLng":"40.712776°, -74.005974°"}}]}"#;
        let mut sink = Collect::default();
        let mut android = Android::default();
        let mut stream = crate::json_stream::JsonStream::new(text.as_bytes(), "JSON");
        stream.begin().unwrap();
        stream.next_key().unwrap();
        stream.begin_array().unwrap();
        while let Some((offset, element)) = stream.next_element().unwrap() {
            let crate::json_stream::Element::Whole(raw) = element else { panic!("too large") };
            android.signal(&options(), &mut sink, offset, raw);
        }
        assert_eq!(android.skipped_signals, 2);
        assert_eq!(sink.points.len(), 2);
        let fix = &sink.points[0].0;
        assert_eq!((fix.horizontal_accuracy_cm, fix.altitude_cm, fix.speed_cm_s), (Some(1300), Some(9070), Some(7)));
        assert_eq!(fix.utc_offset_minutes, Some(60));
        assert_eq!(fix.extras.as_ref().unwrap().as_str(), r#"{"source":"WIFI"}"#);
        assert_eq!(sink.points[1].0.motion, Some(Motion::Walking));
        assert_eq!(sink.rejects.len(), 1);
        assert!(sink.rejects[0].reason.contains("timestamp: missing"));
    }

    #[test]
    fn frequent_places_alone_yield_nothing_but_are_not_an_error() {
        let (format, got) = import_str(
            r#"{"userLocationProfile":{"frequentPlaces":[{"placeId":"x","placeLocation":"1°, 2°","label":"HOME"}]}}"#,
        );
        assert_eq!(format.unwrap(), Format::GoogleAndroidTimeline);
        assert!(got.points.is_empty() && got.rejects.is_empty());
    }
}
