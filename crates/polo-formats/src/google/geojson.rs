//! GeoJSON (RFC 7946) in every dialect seen for location history, Overland
//! batches, and polo's own GeoJSON export.
//!
//! Shapes: a `FeatureCollection`, a bare `Feature`, a bare array of
//! features, and Overland's `{"locations":[Feature…],"current":…,"trip":…}`
//! (the router tells it from Records.json by the first element). Overland's
//! `current` and `trip` describe the app's live state, not history, and are
//! skipped.
//!
//! GeoJSON has no time model (formats.md §4), so:
//! * a `Point` feature is one fix timed by the first property found among
//!   `time` (polo's own), `timestamp`, `date`, `datetime`, `when`,
//!   `recorded_at`, `created_at`, `tst`, `fixTime` — ISO text or epoch
//!   seconds/milliseconds as a number or string — or by a 4th coordinate;
//! * `LineString`, `MultiLineString` and `MultiPoint` vertices are fixes
//!   timed by `properties.coordinateProperties.times` (mapbox togeojson),
//!   the older `properties.coordTimes`, or a 4th coordinate element;
//! * coordinates are `[lon, lat(, alt)]`, as numbers or as strings
//!   (`["0.1","0.1"]`, Dawarich's export).
//!
//! A feature without a geometry (Overland app events such as
//! `"action":"will_terminate"`) or without any time is not a fix: it is
//! reported as a [`crate::Reject`] ("feature without geometry", "feature has
//! no time property…"), never dropped silently and never an error of the
//! whole file — a saved-places collection thus yields only rejects. Other
//! geometry types (polygons) are rejected the same way.
//!
//! Properties with a [`Fix`] column are read under polo's own names
//! ([`crate::fields`]) and the common aliases: `accuracy` /
//! `horizontal_accuracy`, `vertical_accuracy` (−1 = invalid), `speed` (m/s) /
//! `speed_kmh`, `course` / `heading`, `battery` (percent), `battery_level`
//! (Overland's 0–1 fraction, or a percentage when above 1), `altitude` (when
//! the geometry has none), `motion` (a name, or Overland's array: the first
//! known entry, array kept in extras), `source` (a polo source name),
//! `device` / `device_id` (the device hint), and `extras` (polo's object,
//! merged verbatim). Every other property goes verbatim into extras. This
//! makes polo's own export an exact round trip: `time` is written by
//! [`polo_domain::Timestamp::to_text`], altitude is the 3rd coordinate, and
//! every value is a fixed-point column printed as a decimal.
//!
//! A top-level `crs` naming anything but WGS84 longitude/latitude refuses the
//! file (RFC 7946 dropped `crs`; ogr2ogr still writes `CRS84`, which is fine).

use std::borrow::Cow;

use polo_domain::{Coord, Extras, Fix, Motion, SourceFormat};
use serde_json::value::RawValue;

use super::value::{RawObject, array, check_time, number, reject, string, time};
use crate::extras::ExtrasBuilder;
use crate::fields;
use crate::measure::{self, Column, OutOfRange};
use crate::{ImportError, ImportOptions, Sink};

/// Time property names, in order of preference.
const TIME_KEYS: [&str; 9] =
    [fields::TIME, "timestamp", "date", "datetime", "when", "recorded_at", "created_at", "tst", "fixTime"];

/// State of one GeoJSON file.
pub(super) struct GeoJson {
    source: SourceFormat,
}

/// Refuses a `crs` that is not WGS84 longitude/latitude.
///
/// # Errors
/// [`ImportError::Unrecognised`] naming the CRS.
pub(super) fn check_crs(raw: &[u8]) -> Result<(), ImportError> {
    let Ok(crs) = RawObject::from_slice(raw) else { return Ok(()) };
    let Some(name) = crs.object("properties").and_then(|p| p.get("name").and_then(string).map(Cow::into_owned)) else {
        return Ok(());
    };
    let upper = name.to_ascii_uppercase();
    if upper.contains("CRS84") || upper.contains("4326") || upper.contains("WGS84") || upper.contains("WGS_1984") {
        return Ok(());
    }
    Err(ImportError::Unrecognised {
        hint: format!("GeoJSON in the coordinate reference system {name}: polo reads WGS84 longitude/latitude only"),
    })
}

/// The properties of one feature, sorted into columns and extras.
struct Props<'a> {
    time: Option<(&'static str, &'a RawValue)>,
    accuracy: Option<f64>,
    vertical_accuracy: Option<f64>,
    speed: Option<f64>,
    course: Option<f64>,
    battery_percent: Option<f64>,
    altitude: Option<(f64, &'a RawValue)>,
    motion: Option<Motion>,
    source: Option<SourceFormat>,
    device: Option<Cow<'a, str>>,
    /// Per-vertex times of a line.
    times: Option<&'a RawValue>,
    extras: ExtrasBuilder,
}

impl<'a> Props<'a> {
    fn read(props: Option<&RawObject<'a>>) -> Self {
        let mut p = Props {
            time: None,
            accuracy: None,
            vertical_accuracy: None,
            speed: None,
            course: None,
            battery_percent: None,
            altitude: None,
            motion: None,
            source: None,
            device: None,
            times: None,
            extras: ExtrasBuilder::new(),
        };
        let Some(props) = props else { return p };
        p.time = TIME_KEYS.iter().find_map(|&k| props.get(k).filter(|v| v.get() != "null").map(|v| (k, v)));
        for (key, value) in &props.members {
            let key = key.as_ref();
            if p.time.is_some_and(|(k, _)| k == key) {
                continue;
            }
            let text = value.get();
            if text == "null" && is_known(key) {
                continue;
            }
            let num = number(value);
            let consumed = match key {
                fields::ACCURACY | "horizontal_accuracy" => set(&mut p.accuracy, num),
                fields::VERTICAL_ACCURACY => set(&mut p.vertical_accuracy, num),
                fields::SPEED => set(&mut p.speed, num),
                "speed_kmh" => set(&mut p.speed, num.map(|v| v / 3.6)),
                fields::COURSE | "heading" => set(&mut p.course, num),
                fields::BATTERY => set(&mut p.battery_percent, num),
                "battery_level" => set(&mut p.battery_percent, num.map(|v| if v <= 1.0 { v * 100.0 } else { v })),
                fields::ALTITUDE | "ele" => match num {
                    Some(v) if p.altitude.is_none() => {
                        p.altitude = Some((v, value));
                        true
                    }
                    _ => false,
                },
                fields::MOTION => match string(value) {
                    Some(name) => {
                        p.motion = Motion::from_activity_name(&name);
                        p.motion.is_some()
                    }
                    None => {
                        // Overland: an array of names; keep it, use the first known one.
                        p.motion = array(value).and_then(|names| {
                            names.iter().filter_map(|n| string(n)).find_map(|n| Motion::from_activity_name(&n))
                        });
                        false
                    }
                },
                fields::SOURCE => {
                    p.source = string(value).and_then(|s| SourceFormat::from_name(&s));
                    p.source.is_some()
                }
                fields::DEVICE | "device_id" => match string(value) {
                    Some(d) if !d.is_empty() => {
                        p.device = Some(d);
                        true
                    }
                    _ => false,
                },
                fields::EXTRAS if text.starts_with('{') => {
                    p.extras.merge_object(text);
                    true
                }
                "coordinateProperties" => match RawObject::parse(value) {
                    Some(cp) if cp.has("times") => {
                        p.times = cp.get("times");
                        // Other per-vertex arrays would be copied onto every vertex: keep them once, here.
                        let mut rest = ExtrasBuilder::new();
                        cp.extras_except(&["times"], &mut rest);
                        if let Some(rest) = rest.finish() {
                            p.extras.raw("coordinateProperties", rest.as_str());
                        }
                        true
                    }
                    _ => false,
                },
                "coordTimes" => {
                    p.times = Some(value);
                    true
                }
                _ => false,
            };
            if !consumed {
                p.extras.raw(key, text);
            }
        }
        p
    }
}

fn is_known(key: &str) -> bool {
    matches!(
        key,
        fields::ACCURACY
            | "horizontal_accuracy"
            | fields::VERTICAL_ACCURACY
            | fields::SPEED
            | "speed_kmh"
            | fields::COURSE
            | "heading"
            | fields::BATTERY
            | "battery_level"
            | fields::ALTITUDE
            | fields::MOTION
            | fields::SOURCE
            | fields::DEVICE
            | fields::EXTRAS
    )
}

fn set(slot: &mut Option<f64>, value: Option<f64>) -> bool {
    match value {
        Some(v) if slot.is_none() => {
            *slot = Some(v);
            true
        }
        _ => false,
    }
}

/// One position `[lon, lat, alt?, time?]`, numbers or numeric strings.
struct Position<'a> {
    coord: Result<Coord, String>,
    altitude: Option<f64>,
    time: Option<&'a RawValue>,
}

fn position(raw: &RawValue) -> Position<'_> {
    let Some(parts) = array(raw) else {
        return Position {
            coord: Err("coordinates: a position is not an array".to_owned()),
            altitude: None,
            time: None,
        };
    };
    let coord = match (parts.first().and_then(|v| number(v)), parts.get(1).and_then(|v| number(v))) {
        (Some(lon), Some(lat)) => Coord::from_degrees(lat, lon).map_err(|e| format!("coordinates: {e}")),
        _ => Err(format!("coordinates: expected [longitude, latitude], found {}", super::value::shorten(raw.get()))),
    };
    Position { coord, altitude: parts.get(2).and_then(|v| number(v)), time: parts.get(3).copied() }
}

/// The positions (or times) of a line: one array, or an array of arrays for
/// `MultiLineString`, flattened.
fn flatten(v: &RawValue, multi: bool) -> Option<Vec<&RawValue>> {
    if multi { Some(array(v)?.into_iter().filter_map(array).flatten().collect()) } else { array(v) }
}

impl GeoJson {
    /// A file whose fixes default to `source`.
    pub(super) fn new(source: SourceFormat) -> Self {
        Self { source }
    }

    /// Imports one feature.
    pub(super) fn feature(&mut self, options: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
        if let Err(why) = crate::json_keys::check(raw) {
            return reject(sink, offset, why, raw);
        }
        let feature = match RawObject::from_slice(raw) {
            Ok(o) => o,
            Err(reason) => return reject(sink, offset, reason, raw),
        };
        let Some(geometry) = feature.get("geometry").filter(|g| g.get() != "null") else {
            return reject(sink, offset, "feature without geometry", raw);
        };
        let Some(geometry) = RawObject::parse(geometry) else {
            return reject(sink, offset, "geometry: not an object", raw);
        };
        let properties = feature.object("properties");
        let mut props = Props::read(properties.as_ref());
        // Feature members besides the standard ones (`id`, foreign members) are kept too.
        feature.extras_except(&["type", "geometry", "properties"], &mut props.extras);
        let kind = geometry.get("type").and_then(string).unwrap_or(Cow::Borrowed(""));
        let Some(coordinates) = geometry.get("coordinates") else {
            return reject(sink, offset, format!("geometry: {kind} without coordinates"), raw);
        };
        match kind.as_ref() {
            "Point" => {
                let pos = position(coordinates);
                let time = props.time.or(pos.time.map(|v| ("coordinates[3]", v)));
                let Some(time) = time else {
                    let reason = format!("feature has no time property (looked for {})", TIME_KEYS.join(", "));
                    return reject(sink, offset, reason, raw);
                };
                let extras = std::mem::take(&mut props.extras).finish();
                let mut out_of_range = OutOfRange::default();
                match self.fix(options, &props, &pos, time, extras.as_ref(), &mut out_of_range) {
                    Ok(fix) => {
                        out_of_range.report(sink);
                        sink.point(fix, props.device.as_deref());
                    }
                    Err(reason) => reject(sink, offset, reason, raw),
                }
            }
            "LineString" | "MultiPoint" | "MultiLineString" => {
                self.line(options, sink, offset, raw, kind == "MultiLineString", coordinates, props);
            }
            other => reject(sink, offset, format!("geometry type {other:?} carries no fixes"), raw),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn line(
        &self,
        options: &ImportOptions,
        sink: &mut dyn Sink,
        offset: u64,
        raw: &[u8],
        multi: bool,
        coordinates: &RawValue,
        mut props: Props<'_>,
    ) {
        let Some(positions) = flatten(coordinates, multi) else {
            return reject(sink, offset, "geometry.coordinates: not an array of positions", raw);
        };
        let times = props.times.and_then(|t| flatten(t, multi)).unwrap_or_default();
        let positions: Vec<Position<'_>> = positions.into_iter().map(position).collect();
        if times.is_empty() && positions.iter().all(|p| p.time.is_none()) {
            let reason = "line without per-vertex times (coordinateProperties.times, coordTimes or a 4th coordinate)";
            return reject(sink, offset, reason, raw);
        }
        // A feature-level time names the line, not each vertex: keep it in extras.
        if let Some((key, value)) = props.time.take() {
            props.extras.raw(key, value.get());
        }
        let extras = std::mem::take(&mut props.extras).finish();
        for (i, pos) in positions.iter().enumerate() {
            let time =
                times.get(i).map(|t| ("coordinateProperties.times", *t)).or(pos.time.map(|t| ("coordinates[3]", t)));
            let mut out_of_range = OutOfRange::default();
            let result = match time {
                Some(time) => self.fix(options, &props, pos, time, extras.as_ref(), &mut out_of_range),
                None => Err(format!("vertex {i} has no time")),
            };
            match result {
                Ok(fix) => {
                    out_of_range.report(sink);
                    sink.point(fix, props.device.as_deref());
                }
                Err(reason) => reject(sink, offset, format!("vertex {i}: {reason}"), raw),
            }
        }
    }

    fn fix(
        &self,
        options: &ImportOptions,
        props: &Props<'_>,
        pos: &Position<'_>,
        (field, raw_time): (&str, &RawValue),
        extras: Option<&Extras>,
        out_of_range: &mut OutOfRange,
    ) -> Result<Fix, String> {
        let coord = pos.coord.clone()?;
        let t = time(raw_time, field)?;
        check_time(options, t.time, field)?;
        let mut fix = Fix::new(t.time, coord, props.source.unwrap_or(self.source));
        fix.utc_offset_minutes = t.offset_minutes;
        fix.zone_assumed = t.zone_assumed;
        let mut kept = ExtrasBuilder::new();
        let altitude = match (pos.altitude, props.altitude) {
            (Some(a), _) | (None, Some((a, _))) => Some(a),
            (None, None) => None,
        };
        for (value, column) in [
            (altitude, Column::Altitude),
            (props.accuracy, Column::Accuracy),
            (props.vertical_accuracy, Column::VerticalAccuracy),
            (props.speed, Column::Speed),
            (props.course, Column::Course),
            (props.battery_percent, Column::Battery),
        ] {
            if let Some(v) = value {
                measure::set_as(&mut fix, column, v, column.name(), &mut kept, out_of_range);
            }
        }
        fix.motion = props.motion;
        fix.extras = extras.cloned();
        if let Some(kept) = kept.finish() {
            let mut b = ExtrasBuilder::new();
            if let Some(e) = &fix.extras {
                b.merge_object(e.as_str());
            }
            b.merge_object(kept.as_str());
            fix.extras = b.finish();
        }
        // An `altitude` property next to a 3-D geometry is kept, not lost.
        if let (Some(_), Some((_, raw))) = (pos.altitude, props.altitude) {
            let mut b = ExtrasBuilder::new();
            if let Some(e) = &fix.extras {
                b.merge_object(e.as_str());
            }
            b.raw(fields::ALTITUDE, raw.get());
            fix.extras = b.finish();
        }
        Ok(fix)
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::import_str;
    use super::*;
    use crate::Format;
    use polo_domain::Timestamp;

    fn points(text: &str) -> super::super::tests::Collect {
        let (format, got) = import_str(text);
        assert!(format.is_ok(), "{format:?}");
        got
    }

    #[test]
    fn time_property_aliases_and_epoch_numbers() {
        let mut features = Vec::new();
        for (i, key) in TIME_KEYS.iter().enumerate() {
            features.push(format!(
                r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[13.4,52.5]}},"properties":{{"{key}":{}}}}}"#,
                if i % 3 == 0 { "\"2024-06-15T10:30:00Z\"".to_owned() } else if i % 3 == 1 { "1718447400".to_owned() } else { "\"1718447400000\"".to_owned() }
            ));
        }
        let got = points(&format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(",")));
        assert!(got.rejects.is_empty(), "{:?}", got.rejects);
        assert_eq!(got.points.len(), TIME_KEYS.len());
        assert!(got.points.iter().all(|(f, _)| f.time == Timestamp(1_718_447_400_000)));
    }

    #[test]
    fn string_coordinates_and_altitude() {
        let got = points(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","geometry":{"type":"Point","coordinates":["0.1","0.2"]},"properties":{"timestamp":1609459201,"battery":1,"ping":"x"}},
              {"type":"Feature","geometry":{"type":"Point","coordinates":[13.405,52.52,34.5]},"properties":{"datetime":"2024-06-15T10:30:00Z","altitude":30}}]}"#,
        );
        let (a, b) = (&got.points[0].0, &got.points[1].0);
        assert_eq!((a.coord.lon_e7, a.coord.lat_e7), (1_000_000, 2_000_000));
        assert_eq!(a.battery_percent, Some(1));
        assert_eq!(a.extras.as_ref().unwrap().as_str(), r#"{"ping":"x"}"#);
        assert_eq!(b.altitude_cm, Some(3450));
        assert_eq!(b.extras.as_ref().unwrap().as_str(), r#"{"altitude":30}"#);
    }

    #[test]
    fn overland_batch_properties() {
        let text = r#"{"locations":[
            {"type":"Feature","geometry":{"type":"Point","coordinates":[-122.030581,37.3318]},
             "properties":{"timestamp":"2015-10-01T08:00:00-0700","altitude":0,"speed":4,"horizontal_accuracy":30,"vertical_accuracy":-1,
               "motion":["driving","stationary"],"pauses":false,"device_id":"iphone","wifi":"launchpad","battery_state":"charging","battery_level":0.89}},
            {"type":"Feature","properties":{"timestamp":"2024-07-07T17:46:39Z","action":"will_terminate"}}],
          "current":{"type":"Feature"},"trip":{"mode":"bicycle"}}"#;
        let (format, got) = import_str(text);
        assert_eq!(format.unwrap(), Format::Overland);
        let (fix, device) = &got.points[0];
        assert_eq!(device.as_deref(), Some("iphone"));
        assert_eq!(fix.utc_offset_minutes, Some(-420));
        assert_eq!(fix.time.0, 1_443_711_600_000);
        assert_eq!(
            (fix.speed_cm_s, fix.horizontal_accuracy_cm, fix.vertical_accuracy_cm),
            (Some(400), Some(3000), None)
        );
        assert_eq!((fix.battery_percent, fix.motion, fix.altitude_cm), (Some(89), Some(Motion::Road), Some(0)));
        assert_eq!(fix.source, SourceFormat::Geojson);
        assert_eq!(
            fix.extras.as_ref().unwrap().as_str(),
            r#"{"motion":["driving","stationary"],"pauses":false,"wifi":"launchpad","battery_state":"charging","vertical_accuracy":-1}"#
        );
        // CoreLocation's -1 ("invalid") is kept and counted, not dropped.
        assert_eq!(got.out_of_range, ["vertical_accuracy"]);
        assert_eq!(got.rejects.len(), 1);
        assert_eq!(got.rejects[0].reason, "feature without geometry");
    }

    #[test]
    fn speed_kmh_and_battery_percent_level() {
        let got = points(
            r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[13.406,52.521]},
              "properties":{"when":"2024-06-15T10:31:00Z","speed_kmh":5.4,"battery_level":70,"heading":95}}]}"#,
        );
        let fix = &got.points[0].0;
        assert_eq!((fix.speed_cm_s, fix.battery_percent, fix.course_centideg), (Some(150), Some(70), Some(9500)));
    }

    #[test]
    fn line_strings_with_time_arrays() {
        let got = points(
            r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"urn:ogc:def:crs:OGC:1.3:CRS84"}},"features":[
              {"type":"Feature","geometry":{"type":"LineString","coordinates":[[13.1,52.1,10],[13.2,52.2,11]]},
               "properties":{"name":"run","coordinateProperties":{"times":["2024-01-01T10:00:00Z","2024-01-01T10:00:05Z"],"heart":[100,101]}}},
              {"type":"Feature","geometry":{"type":"MultiLineString","coordinates":[[[13.1,52.1]],[[13.2,52.2],[13.3,52.3]]]},
               "properties":{"coordTimes":[["2024-01-02T10:00:00Z"],["2024-01-02T10:00:05Z","bad"]]}},
              {"type":"Feature","geometry":{"type":"LineString","coordinates":[[13.1,52.1,0,1704103200],[13.2,52.2,0,1704103205]]},"properties":{}},
              {"type":"Feature","geometry":{"type":"LineString","coordinates":[[13.1,52.1],[13.2,52.2]]},"properties":{}}]}"#,
        );
        assert_eq!(got.points.len(), 6);
        assert_eq!(got.points[1].0.altitude_cm, Some(1100));
        assert_eq!(
            got.points[0].0.extras.as_ref().unwrap().as_str(),
            r#"{"name":"run","coordinateProperties":{"heart":[100,101]}}"#
        );
        assert_eq!(got.points[4].0.time.0, 1_704_103_200_000);
        let reasons: Vec<&str> = got.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 2, "{reasons:?}");
        assert!(reasons[0].starts_with("vertex 2: coordinateProperties.times"), "{reasons:?}");
        assert!(reasons[1].starts_with("line without per-vertex times"));
    }

    #[test]
    fn features_without_time_or_usable_geometry_are_rejects() {
        let got = points(
            r#"{"type":"FeatureCollection","features":[
              {"type":"Feature","geometry":{"type":"Point","coordinates":[-0.1,51.5]},"properties":{"Title":"Saved place","google_maps_url":"x"}},
              {"type":"Feature","geometry":{"type":"Polygon","coordinates":[]},"properties":{"time":"2024-01-01T00:00:00Z"}},
              {"type":"Feature","geometry":null,"properties":{}},
              {"type":"Feature","geometry":{"type":"Point","coordinates":[0,0]},"properties":{"time":"2024-01-01T00:00:00Z"}},
              {"type":"Feature","geometry":{"type":"Point","coordinates":[1,1]},"properties":{"time":"1970-01-01T00:00:00Z"}}]}"#,
        );
        assert!(got.points.is_empty());
        let reasons: Vec<&str> = got.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert!(reasons[0].starts_with("feature has no time property"));
        assert!(reasons[1].contains("Polygon"));
        assert_eq!(reasons[2], "feature without geometry");
        assert!(reasons[3].contains("null island"));
        assert!(reasons[4].starts_with("time: ") && reasons[4].contains("before 1985"), "{reasons:?}");
    }

    #[test]
    fn bare_feature_and_bare_array() {
        let (format, got) = import_str(
            r#"{"properties":{"time":"2024-01-01T00:00:00Z"},"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]}}"#,
        );
        assert_eq!((format.unwrap(), got.points.len()), (Format::Geojson, 1));
        let (format, got) = import_str(
            r#"[{"type":"Feature","geometry":{"type":"Point","coordinates":[1,2]},"properties":{"time":"2024-01-01T00:00:00Z"}}]"#,
        );
        assert_eq!((format.unwrap(), got.points.len()), (Format::Geojson, 1));
    }

    #[test]
    fn foreign_crs_is_refused() {
        let (format, _) = import_str(
            r#"{"type":"FeatureCollection","crs":{"type":"name","properties":{"name":"EPSG:25832"}},"features":[]}"#,
        );
        assert!(matches!(format, Err(ImportError::Unrecognised { hint }) if hint.contains("25832")));
    }

    /// Writes a fix the way polo's GeoJSON exporter does (fields.rs names,
    /// altitude as the 3rd coordinate), to pin the round trip from this side.
    fn export_like(fix: &Fix, device: Option<&str>) -> String {
        let mut coords = vec![fix.coord.lon().to_string(), fix.coord.lat().to_string()];
        if let Some(a) = fix.altitude_m() {
            coords.push(a.to_string());
        }
        let mut props = vec![format!(r#""time":"{}""#, fix.time.to_text(fix.utc_offset_minutes, fix.zone_assumed))];
        let mut num = |k: &str, v: Option<f64>| {
            if let Some(v) = v {
                props.push(format!(r#""{k}":{v}"#));
            }
        };
        num(fields::ACCURACY, fix.horizontal_accuracy_m());
        num(fields::VERTICAL_ACCURACY, fix.vertical_accuracy_m());
        num(fields::SPEED, fix.speed_m_s());
        num(fields::COURSE, fix.course_deg());
        num(fields::BATTERY, fix.battery_percent.map(f64::from));
        if let Some(m) = fix.motion {
            props.push(format!(r#""motion":"{}""#, m.name()));
        }
        props.push(format!(r#""source":"{}""#, fix.source.name()));
        if let Some(d) = device {
            props.push(format!(r#""device":"{d}""#));
        }
        if let Some(e) = &fix.extras {
            props.push(format!(r#""extras":{}"#, e.as_str()));
        }
        format!(
            r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[{}]}},"properties":{{{}}}}}"#,
            coords.join(","),
            props.join(",")
        )
    }

    #[test]
    fn polo_export_round_trips_exactly() {
        let mut full = Fix::new(
            Timestamp(1_718_447_400_123),
            Coord { lat_e7: -337_000_001, lon_e7: 1_799_999_999 },
            SourceFormat::GoogleRecords,
        );
        full.utc_offset_minutes = Some(-330);
        full.altitude_cm = Some(-1234);
        full.horizontal_accuracy_cm = Some(487);
        full.vertical_accuracy_cm = Some(3);
        full.speed_cm_s = Some(1001);
        full.course_centideg = Some(35_999);
        full.battery_percent = Some(87);
        full.motion = Some(Motion::Rail);
        full.extras =
            Some(Extras::from_json_object(r#"{"activity":[{"type":"STILL","confidence":100}],"wifi":"a \"b\""}"#));
        let mut naive = Fix::new(Timestamp(1_000_000_000_000), Coord { lat_e7: 1, lon_e7: -1 }, SourceFormat::Gpx);
        naive.zone_assumed = true;
        let utc = Fix::new(
            Timestamp(1_500_000_000_001),
            Coord { lat_e7: 900_000_000, lon_e7: -1_800_000_000 },
            SourceFormat::Fit,
        );
        let fixes = [(full, Some("pixel")), (naive, None), (utc, None)];
        let features: Vec<String> = fixes.iter().map(|(f, d)| export_like(f, *d)).collect();
        let got = points(&format!(r#"{{"type":"FeatureCollection","features":[{}]}}"#, features.join(",")));
        assert!(got.rejects.is_empty(), "{:?}", got.rejects);
        for ((want, want_device), (fix, device)) in fixes.iter().zip(&got.points) {
            assert_eq!(fix, want);
            assert_eq!(device.as_deref(), *want_device);
        }
    }
}
