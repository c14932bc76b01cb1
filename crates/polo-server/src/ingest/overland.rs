//! The Overland (iOS) batch protocol: `{"locations":[Feature…],"current"?,"trip"?}`.
//!
//! Why a parser of its own rather than the GeoJSON importer:
//!
//! * **Not every feature is a fix.** The same array carries visits
//!   (`properties.action = "visit"` → an [`IntervalKind::Visit`] interval),
//!   app events (`will_terminate`, `paused_location_updates`, … → counted in
//!   [`Batch::events`], not errors) and trip summaries
//!   (`properties.type = "trip"` → an [`IntervalKind::Activity`] interval).
//! * **`-1` means invalid** for speed, course and the accuracies (Core
//!   Location's convention). A negative `vertical_accuracy` also means the
//!   altitude is invalid, so that altitude is kept in the extras rather than
//!   stored as a measurement.
//! * **Batteries are fractions** (`battery_level` 0–1, `-1` unknown).
//! * **A bad feature must not fail the batch.** Overland keeps and resends
//!   a batch until it gets `{"result":"ok"}`, so one broken feature would
//!   block the queue forever. Malformed features become [`FeatureReject`]s
//!   with their index and the batch still succeeds.

use std::collections::BTreeMap;

use polo_domain::time::parse_timestamp;
use polo_domain::{Coord, Fix, Interval, IntervalKind, Motion, ParsedTime, SourceFormat, Timestamp};
use polo_formats::ImportOptions;
use polo_formats::extras::ExtrasBuilder;
use serde_json::value::RawValue;

use super::json::{Members, boolean, number, shown, string};

/// The reply Overland needs to drop a batch from its queue.
pub const OK_REPLY: &str = r#"{"result":"ok"}"#;

/// A fix and the device it says it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverlandPoint {
    /// The fix (`SourceFormat::Overland`).
    pub fix: Fix,
    /// `properties.device_id`, when set in the app.
    pub device_id: Option<String>,
}

/// A visit or trip interval and the device it says it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct OverlandInterval {
    /// The interval (`SourceFormat::Overland`).
    pub interval: Interval,
    /// `properties.device_id`, when set.
    pub device_id: Option<String>,
}

/// A feature that could not be used; the rest of the batch is unaffected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FeatureReject {
    /// Index in `locations`.
    pub index: usize,
    /// What was wrong, naming the member.
    pub reason: String,
}

/// The trip in progress (`trip` at the top level), for live display only.
#[derive(Debug, Clone, PartialEq)]
pub struct RunningTrip {
    /// `mode` (`driving`, `bicycle`, …).
    pub mode: Option<String>,
    /// When it started.
    pub start: Option<Timestamp>,
    /// Metres so far.
    pub distance_m: Option<f64>,
    /// Where it started.
    pub start_coord: Option<Coord>,
    /// Where the device is now.
    pub current_coord: Option<Coord>,
}

/// Everything one batch contained.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Batch {
    /// Location features, in order.
    pub points: Vec<OverlandPoint>,
    /// Visits and finished trips.
    pub intervals: Vec<OverlandInterval>,
    /// App events by `action` (`will_terminate` → 1, …).
    pub events: BTreeMap<String, u64>,
    /// Features that could not be used.
    pub rejects: Vec<FeatureReject>,
    /// `current`: the newest location when the app has a backlog. It arrives
    /// again in a later batch, so it is for live display, not for storing.
    pub current: Option<OverlandPoint>,
    /// `trip`: the trip in progress.
    pub trip: Option<RunningTrip>,
}

impl Batch {
    /// The first `device_id` of the batch (points, then intervals, then `current`).
    #[must_use]
    pub fn device_hint(&self) -> Option<&str> {
        self.points
            .iter()
            .filter_map(|p| p.device_id.as_deref())
            .chain(self.intervals.iter().filter_map(|i| i.device_id.as_deref()))
            .chain(self.current.iter().filter_map(|p| p.device_id.as_deref()))
            .find(|d| !d.is_empty())
    }
}

/// Why a whole body was refused (answer 400: it will never be accepted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OverlandError {
    /// The body is not a JSON object.
    #[error("the body is not a JSON object: {0}")]
    NotJson(String),
    /// The object has no `locations` array.
    #[error("the body has no \"locations\" array")]
    NoLocations,
    /// An object of the body names a key twice (polo's one rule for
    /// duplicate JSON keys: `polo_formats::json_keys`).
    #[error(
        "the body names the key {key:?} twice (the second at byte {offset}): a body that names a key twice is ambiguous"
    )]
    DuplicateKey {
        /// The key.
        key: String,
        /// Byte offset of its second occurrence.
        offset: usize,
    },
}

/// Parses one batch. Fix times must be plausible relative to `now` (from
/// 1985 to a day ahead).
///
/// # Errors
/// [`OverlandError`] only for a body that is not an object with a
/// `locations` array, or that names a key twice in some object; everything
/// else wrong inside is a [`FeatureReject`].
pub fn parse(body: &[u8], now: Timestamp) -> Result<Batch, OverlandError> {
    let text = std::str::from_utf8(body).map_err(|e| OverlandError::NotJson(e.to_string()))?;
    let top = Members::parse(text).map_err(|e| OverlandError::NotJson(e.to_string()))?;
    if let Some(d) = polo_formats::json_keys::duplicate_key(body) {
        return Err(OverlandError::DuplicateKey { key: d.key, offset: d.offset });
    }
    let locations = top.get("locations").ok_or(OverlandError::NoLocations)?;
    let features = serde_json::from_str::<Vec<&RawValue>>(locations.get()).map_err(|_| OverlandError::NoLocations)?;
    let options = ImportOptions { now };
    let mut batch = Batch::default();
    for (index, feature) in features.into_iter().enumerate() {
        match feature_kind(feature, &options) {
            Ok(Item::Point(p)) => batch.points.push(p),
            Ok(Item::Interval(i)) => batch.intervals.push(i),
            Ok(Item::Event(action)) => *batch.events.entry(action).or_insert(0) += 1,
            Err(reason) => batch.rejects.push(FeatureReject { index, reason }),
        }
    }
    batch.current = top.get("current").and_then(|c| match feature_kind(c, &options) {
        Ok(Item::Point(p)) => Some(p),
        _ => None,
    });
    batch.trip = top.get("trip").and_then(|t| Members::parse(t.get()).ok()).map(|t| RunningTrip {
        mode: t.get("mode").and_then(string),
        start: t.get("start").and_then(time).map(|p| p.time),
        distance_m: t.get("distance").and_then(number),
        start_coord: t.get("start_location").and_then(feature_coord),
        current_coord: t.get("current_location").and_then(feature_coord),
    });
    Ok(batch)
}

enum Item {
    Point(OverlandPoint),
    Interval(OverlandInterval),
    Event(String),
}

fn time(raw: &RawValue) -> Option<ParsedTime> {
    string(raw).and_then(|t| parse_timestamp(&t).ok())
}

fn feature_kind(feature: &RawValue, options: &ImportOptions) -> Result<Item, String> {
    let feature = Members::parse(feature.get()).map_err(|_| format!("feature {} is not an object", shown(feature)))?;
    let props = feature.get("properties").ok_or("feature without properties")?;
    let props = Members::parse(props.get()).map_err(|_| "properties is not an object".to_owned())?;
    let device_id = props.get("device_id").and_then(string);
    if props.get("type").and_then(string).as_deref() == Some("trip") {
        return trip(&props, options).map(|interval| Item::Interval(OverlandInterval { interval, device_id }));
    }
    if let Some(action) = props.get("action") {
        let action = string(action).ok_or_else(|| format!("action {} is not a string", shown(action)))?;
        if action == "visit" {
            return visit(&feature, &props, options)
                .map(|interval| Item::Interval(OverlandInterval { interval, device_id }));
        }
        return Ok(Item::Event(action));
    }
    location(&feature, &props, options).map(|fix| Item::Point(OverlandPoint { fix, device_id }))
}

/// `[lon, lat(, alt)]` of a Point geometry.
fn geometry(feature: &Members<'_>) -> Result<(Coord, Option<f64>), String> {
    let geometry = feature.get("geometry").ok_or("location feature without geometry")?;
    let geometry =
        Members::parse(geometry.get()).map_err(|_| format!("geometry {} is not an object", shown(geometry)))?;
    match geometry.get("type").and_then(string).as_deref() {
        Some("Point") => {}
        other => return Err(format!("geometry type {other:?} is not Point")),
    }
    let raw = geometry.get("coordinates").ok_or("geometry without coordinates")?;
    let numbers: Vec<f64> = serde_json::from_str::<Vec<&RawValue>>(raw.get())
        .ok()
        .and_then(|v| v.into_iter().map(number).collect())
        .ok_or_else(|| format!("coordinates {} are not numbers", shown(raw)))?;
    let [lon, lat, rest @ ..] = numbers.as_slice() else {
        return Err(format!("coordinates {} need longitude and latitude", shown(raw)));
    };
    let coord = Coord::from_degrees(*lat, *lon).map_err(|e| format!("coordinates: {e}"))?;
    Ok((coord, rest.first().copied()))
}

fn feature_coord(raw: &RawValue) -> Option<Coord> {
    Members::parse(raw.get()).ok().and_then(|f| geometry(&f).ok()).map(|(c, _)| c)
}

fn location(feature: &Members<'_>, props: &Members<'_>, options: &ImportOptions) -> Result<Fix, String> {
    let raw_time = props.get("timestamp").ok_or("location feature without timestamp")?;
    let parsed = string(raw_time)
        .ok_or_else(|| format!("timestamp {} is not a string", shown(raw_time)))
        .and_then(|t| parse_timestamp(&t).map_err(|e| e.to_string()))?;
    options.check_time(parsed.time)?;
    let (coord, coord_alt) = geometry(feature)?;
    let mut fix = Fix::new(parsed.time, coord, SourceFormat::Overland);
    fix.utc_offset_minutes = parsed.offset_minutes;
    fix.zone_assumed = parsed.zone_assumed;
    let altitude_invalid = props.get("vertical_accuracy").and_then(number).is_some_and(|v| v < 0.0);
    let mut extras = ExtrasBuilder::new();
    let mut altitude = None;
    for (key, value) in &props.0 {
        let n = number(value);
        match (key.as_str(), n) {
            ("timestamp" | "device_id", _) => {}
            ("altitude", Some(v)) if !altitude_invalid => altitude = Some(v),
            ("speed", Some(v)) => fix.set_speed_m_s(v),
            ("course", Some(v)) => fix.set_course_deg(v),
            ("horizontal_accuracy", Some(v)) => fix.set_horizontal_accuracy_m(v),
            ("vertical_accuracy", Some(v)) => fix.set_vertical_accuracy_m(v),
            ("battery_level", Some(v)) => fix.set_battery_fraction(v),
            // −1 is "invalid": nothing to keep.
            ("speed_accuracy" | "course_accuracy", Some(v)) if v < 0.0 => {}
            ("wifi", _) if value.get() == "\"\"" => {}
            ("motion", _) => {
                fix.motion = motion(value);
                extras.raw(key, value.get());
            }
            _ => extras.raw(key, value.get()),
        }
    }
    if let Some(v) = altitude.or(coord_alt.filter(|_| !altitude_invalid && props.get("altitude").is_none())) {
        fix.set_altitude_m(v);
    }
    fix.extras = extras.finish();
    Ok(fix)
}

/// Overland's `motion` is a list of Core Motion flags that can hold several
/// at once (`["driving","stationary"]` at a red light): a moving mode wins
/// over `stationary`.
fn motion(raw: &RawValue) -> Option<Motion> {
    let names: Vec<String> = serde_json::from_str(raw.get()).ok()?;
    let motions: Vec<Motion> = names.iter().filter_map(|n| Motion::from_activity_name(n)).collect();
    motions
        .iter()
        .copied()
        .find(|m| !matches!(m, Motion::Stationary | Motion::Unknown))
        .or_else(|| motions.first().copied())
}

/// Core Location's "no date" values (`distantPast`, `distantFuture`) and
/// anything else implausible become `None`.
fn visit_time(raw: Option<&RawValue>, options: &ImportOptions) -> Option<ParsedTime> {
    raw.and_then(time).filter(|p| options.check_time(p.time).is_ok())
}

fn visit(feature: &Members<'_>, props: &Members<'_>, options: &ImportOptions) -> Result<Interval, String> {
    let arrival = visit_time(props.get("arrival_date"), options);
    let departure = visit_time(props.get("departure_date"), options);
    let (start, end) = match (arrival, departure) {
        (Some(a), Some(d)) if d.time >= a.time => (a, d),
        (Some(_), Some(_)) => return Err("visit departs before it arrives".to_owned()),
        (Some(a), None) => (a, a),
        (None, Some(d)) => (d, d),
        (None, None) => return Err("visit without a usable arrival_date or departure_date".to_owned()),
    };
    let mut interval = Interval::new(IntervalKind::Visit, start.time, end.time, SourceFormat::Overland);
    interval.start_offset_minutes = start.offset_minutes;
    interval.end_offset_minutes = end.offset_minutes;
    interval.start_coord = geometry(feature).ok().map(|(c, _)| c);
    let mut extras = ExtrasBuilder::new();
    for (key, value) in &props.0 {
        let keep = match key.as_str() {
            "action" | "device_id" => false,
            "arrival_date" => arrival.is_none(),
            "departure_date" => departure.is_none(),
            _ => true,
        };
        if keep {
            extras.raw(key, value.get());
        }
    }
    interval.extras = extras.finish();
    Ok(interval)
}

fn trip(props: &Members<'_>, options: &ImportOptions) -> Result<Interval, String> {
    let start = props.get("start").and_then(time).ok_or("trip without a usable start")?;
    options.check_time(start.time)?;
    let duration = props.get("duration").and_then(number).filter(|d| *d >= 0.0);
    let end = match (props.get("end").and_then(time), duration) {
        (Some(end), _) => end,
        // Whole milliseconds of a non-negative finite duration.
        #[allow(clippy::cast_possible_truncation)]
        (None, Some(d)) => ParsedTime { time: Timestamp(start.time.0 + (d * 1000.0).round() as i64), ..start },
        (None, None) => return Err("trip without end or duration".to_owned()),
    };
    if end.time < start.time {
        return Err("trip ends before it starts".to_owned());
    }
    let mut interval = Interval::new(IntervalKind::Activity, start.time, end.time, SourceFormat::Overland);
    interval.start_offset_minutes = start.offset_minutes;
    interval.end_offset_minutes = end.offset_minutes;
    interval.start_coord = props.get("start_location").and_then(feature_coord);
    interval.end_coord = props.get("end_location").and_then(feature_coord);
    interval.category = props.get("mode").and_then(string);
    interval.distance_m = props.get("distance").and_then(number).filter(|d| *d >= 0.0);
    let mut extras = ExtrasBuilder::new();
    for (key, value) in &props.0 {
        match key.as_str() {
            // In the interval's own fields (the start/end features' positions are its coordinates).
            "type" | "mode" | "start" | "end" | "distance" | "start_location" | "end_location" | "device_id" => {}
            "stopped_automatically" => match boolean(value) {
                Some(b) => extras.raw(key, if b { "true" } else { "false" }),
                None => extras.raw(key, value.get()),
            },
            _ => extras.raw(key, value.get()),
        }
    }
    interval.extras = extras.finish();
    Ok(interval)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: Timestamp = Timestamp(1_800_000_000_000);

    /// A location feature in the shape the app sends (our own values).
    const LOCATION: &str = r#"{"type":"Feature","geometry":{"type":"Point","coordinates":[-0.1276,51.5072]},
        "properties":{"timestamp":"2025-03-02T09:30:00Z","altitude":21,"speed":6,"course":180,
        "horizontal_accuracy":15,"vertical_accuracy":-1,"speed_accuracy":0.8,"course_accuracy":-1,
        "motion":["cycling","stationary"],"battery_state":"unplugged","battery_level":0.73,
        "wifi":"","device_id":"ovl-iphone","unique_id":"ABCD-1234"}}"#;

    fn one(body: &str) -> Batch {
        parse(body.as_bytes(), NOW).unwrap()
    }

    #[test]
    fn location_feature_units_and_invalid_markers() {
        let batch = one(&format!(r#"{{"locations":[{LOCATION}]}}"#));
        assert!(batch.rejects.is_empty(), "{:?}", batch.rejects);
        let p = &batch.points[0];
        assert_eq!(p.device_id.as_deref(), Some("ovl-iphone"));
        assert_eq!(batch.device_hint(), Some("ovl-iphone"));
        let f = &p.fix;
        assert_eq!(f.time, parse_timestamp("2025-03-02T09:30:00Z").unwrap().time);
        assert_eq!(f.coord, Coord::from_degrees(51.5072, -0.1276).unwrap(), "[lon, lat]");
        assert_eq!((f.speed_cm_s, f.course_centideg, f.horizontal_accuracy_cm), (Some(600), Some(18_000), Some(1500)));
        assert_eq!(f.vertical_accuracy_cm, None, "-1 is invalid");
        assert_eq!(f.altitude_cm, None, "altitude is invalid when vertical_accuracy is -1");
        assert_eq!(f.battery_percent, Some(73), "battery_level is a fraction");
        assert_eq!(f.motion, Some(Motion::Cycling), "a moving flag wins over stationary");
        assert_eq!(f.source, SourceFormat::Overland);
        assert_eq!(
            f.extras.as_ref().unwrap().as_str(),
            r#"{"altitude":21,"speed_accuracy":0.8,"motion":["cycling","stationary"],"battery_state":"unplugged","unique_id":"ABCD-1234"}"#
        );
    }

    #[test]
    fn valid_altitude_offsets_and_negative_speed() {
        let body = r#"{"locations":[{"type":"Feature","geometry":{"type":"Point","coordinates":[-122.030581,37.3318]},
            "properties":{"timestamp":"2015-10-01T08:00:00-07:00","altitude":12,"vertical_accuracy":4,"speed":-1,
            "course":-1,"horizontal_accuracy":-1,"battery_level":-1,"motion":["driving","stationary"],"wifi":"home"}}]}"#;
        let batch = one(body);
        let f = &batch.points[0].fix;
        assert_eq!(f.altitude_cm, Some(1200));
        assert_eq!(f.vertical_accuracy_cm, Some(400));
        assert_eq!(f.utc_offset_minutes, Some(-420), "offset form accepted and kept");
        assert_eq!(f.time, parse_timestamp("2015-10-01T15:00:00Z").unwrap().time);
        assert_eq!(
            (f.speed_cm_s, f.course_centideg, f.horizontal_accuracy_cm, f.battery_percent),
            (None, None, None, None)
        );
        assert_eq!(f.motion, Some(Motion::Road));
        assert_eq!(f.extras.as_ref().unwrap().as_str(), r#"{"motion":["driving","stationary"],"wifi":"home"}"#);
        assert_eq!(batch.points[0].device_id, None);
    }

    #[test]
    fn visits_events_and_bad_features() {
        let body = format!(
            r#"{{"locations":[
            {{"type":"Feature","properties":{{"action":"will_terminate","timestamp":"2025-03-02T10:00:00Z"}}}},
            {{"type":"Feature","geometry":{{"type":"Point","coordinates":[2.35,48.85]}},"properties":{{"action":"visit",
              "arrival_date":"2025-03-02T08:00:00Z","departure_date":"2025-03-02T09:15:00Z","horizontal_accuracy":30,"device_id":"d"}}}},
            {{"type":"Feature","geometry":{{"type":"Point","coordinates":[2.35,48.85]}},"properties":{{"action":"visit",
              "arrival_date":"2025-03-02T10:00:00Z","departure_date":"4001-01-01T00:00:00Z"}}}},
            {{"type":"Feature","properties":{{"action":"paused_location_updates"}}}},
            {{"type":"Feature","properties":{{"action":"will_terminate"}}}},
            {{"type":"Feature","properties":{{"timestamp":"2025-03-02T09:30:00Z"}}}},
            {{"type":"Feature","geometry":{{"type":"Point","coordinates":[0,0]}},"properties":{{"timestamp":"2025-03-02T09:30:00Z"}}}},
            {{"type":"Feature","geometry":{{"type":"Point","coordinates":[2.35,48.85]}},"properties":{{"timestamp":"yesterday"}}}},
            "garbage",
            {LOCATION}
            ]}}"#
        );
        let batch = one(&body);
        assert_eq!(batch.points.len(), 1);
        assert_eq!(batch.events.get("will_terminate"), Some(&2));
        assert_eq!(batch.events.get("paused_location_updates"), Some(&1));
        assert_eq!(batch.intervals.len(), 2);
        let v = &batch.intervals[0].interval;
        assert_eq!(v.kind, IntervalKind::Visit);
        assert_eq!(
            (v.start, v.end),
            (
                parse_timestamp("2025-03-02T08:00:00Z").unwrap().time,
                parse_timestamp("2025-03-02T09:15:00Z").unwrap().time
            )
        );
        assert_eq!(v.start_coord, Coord::from_degrees(48.85, 2.35).ok());
        assert_eq!(v.extras.as_ref().unwrap().as_str(), r#"{"horizontal_accuracy":30}"#);
        assert_eq!(batch.intervals[0].device_id.as_deref(), Some("d"));
        // Still there: departure is distantFuture, kept verbatim in the extras.
        let open = &batch.intervals[1].interval;
        assert_eq!(open.start, open.end);
        assert_eq!(open.extras.as_ref().unwrap().as_str(), r#"{"departure_date":"4001-01-01T00:00:00Z"}"#);
        let indexes: Vec<usize> = batch.rejects.iter().map(|r| r.index).collect();
        assert_eq!(indexes, [5, 6, 7, 8], "{:?}", batch.rejects);
        assert!(batch.rejects[0].reason.contains("geometry"), "{}", batch.rejects[0].reason);
        assert!(batch.rejects[1].reason.contains("0,0"), "{}", batch.rejects[1].reason);
    }

    #[test]
    fn trip_summary_becomes_an_activity() {
        let body = r#"{"locations":[{"type":"Feature","properties":{"type":"trip","mode":"bicycle",
            "start":"2025-03-02T07:00:00Z","end":"2025-03-02T07:40:00Z","duration":2400,"distance":9100.5,
            "stopped_automatically":true,"steps":0,
            "start_location":{"type":"Feature","geometry":{"type":"Point","coordinates":[13.40,52.52]},"properties":{}},
            "end_location":{"type":"Feature","geometry":{"type":"Point","coordinates":[13.45,52.50]},"properties":{}}}}]}"#;
        let batch = one(body);
        let t = &batch.intervals[0].interval;
        assert_eq!(t.kind, IntervalKind::Activity);
        assert_eq!(t.end.0 - t.start.0, 2_400_000);
        assert_eq!(t.category.as_deref(), Some("bicycle"));
        assert_eq!(t.distance_m, Some(9100.5));
        assert_eq!(t.start_coord, Coord::from_degrees(52.52, 13.40).ok());
        assert_eq!(t.end_coord, Coord::from_degrees(52.50, 13.45).ok());
        assert_eq!(t.extras.as_ref().unwrap().as_str(), r#"{"duration":2400,"stopped_automatically":true,"steps":0}"#);
        // A trip with a duration but no end.
        let body = r#"{"locations":[{"type":"Feature","properties":{"type":"trip","start":"2025-03-02T07:00:00Z","duration":60}}]}"#;
        assert_eq!(one(body).intervals[0].interval.end.0 - one(body).intervals[0].interval.start.0, 60_000);
    }

    #[test]
    fn current_and_running_trip() {
        let body = format!(
            r#"{{"locations":[],"current":{LOCATION},"trip":{{"mode":"car","start":"2025-03-02T09:00:00Z","distance":1200,
            "start_location":{{"type":"Feature","geometry":{{"type":"Point","coordinates":[-0.2,51.5]}},"properties":{{}}}},
            "current_location":{LOCATION}}}}}"#
        );
        let batch = one(&body);
        assert!(batch.points.is_empty());
        assert_eq!(batch.current.as_ref().and_then(|c| c.device_id.as_deref()), Some("ovl-iphone"));
        let trip = batch.trip.unwrap();
        assert_eq!((trip.mode.as_deref(), trip.distance_m), (Some("car"), Some(1200.0)));
        assert_eq!(trip.current_coord, Coord::from_degrees(51.5072, -0.1276).ok());
    }

    #[test]
    fn whole_body_errors() {
        assert_eq!(parse(b"{}", NOW), Err(OverlandError::NoLocations));
        assert_eq!(parse(br#"{"locations":{}}"#, NOW), Err(OverlandError::NoLocations));
        assert!(matches!(parse(b"[]", NOW), Err(OverlandError::NotJson(_))));
        assert_eq!(OK_REPLY, r#"{"result":"ok"}"#);
    }
}
