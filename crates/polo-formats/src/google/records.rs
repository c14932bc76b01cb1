//! Google Takeout `Records.json` (`{"locations":[record, …]}`), every era.
//!
//! This is the largest file users bring (1.5 GB and 70 M lines are reported),
//! so each record is read by a hand-written `serde` visitor straight from the
//! element's bytes: fields with a [`Fix`] column are parsed in place, and
//! every other member is copied verbatim (as raw JSON text, never
//! re-encoded) into the fix's extras while the visitor walks — one pass, no
//! `serde_json::Value` tree.
//!
//! Quirks handled, each per value (formats.md §1.2, §8, §9):
//! * time from `timestamp` (ISO, with or without a fraction) or the older
//!   `timestampMs` (epoch milliseconds as a string); `timestamp` wins when
//!   both are present;
//! * E7 coordinates that overflowed as unsigned 32-bit values
//!   ([`Coord::from_e7`] repairs them);
//! * `activity` (current) and the 2014 `activitys` with inner `activities`:
//!   the most confident type of the first entry becomes `fix.motion`, and the
//!   whole array is kept in extras;
//! * `source` in any case, `deviceTag` (also the device hint, as `google-<tag>`),
//!   Wi-Fi scans and everything else go to extras.

use std::borrow::Cow;
use std::cell::RefCell;
use std::fmt;

use polo_domain::time::{ParsedTime, from_epoch_integer, from_epoch_number, parse_timestamp};
use polo_domain::{Coord, Fix, Motion, SourceFormat, Timestamp};
use serde::Deserialize;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::value::RawValue;

use super::value::{Key, check_time, reject};
use crate::extras::ExtrasBuilder;
use crate::measure::{self, Column, OutOfRange};
use crate::{ImportOptions, Sink};

/// Imports one element of the `locations` array.
///
/// `raw` must be compact (the router's splitter compacts while copying): raw
/// member values are appended to extras as they are.
pub(super) fn element(options: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
    // One UTF-8 check for the whole element; `from_str` then skips it per string.
    let Ok(text) = std::str::from_utf8(raw) else {
        return reject(sink, offset, "location record is not valid UTF-8", raw);
    };
    if let Err(why) = crate::json_keys::check(raw) {
        return reject(sink, offset, why, raw);
    }
    let record = match Record::read(text) {
        Ok(r) => r,
        Err(e) => {
            let reason = if e.is_data() {
                "location record is not a JSON object".to_owned()
            } else {
                format!("invalid JSON: {e}")
            };
            return reject(sink, offset, reason, raw);
        }
    };
    let mut out_of_range = OutOfRange::default();
    let fix = record.into_fix(options, &mut out_of_range);
    out_of_range.report(sink);
    match fix {
        // Devices are named after Google's deviceTag, so two phones in one
        // history stay apart: "google-335552189". Built on the stack: this
        // runs for every record of files with millions of them.
        Ok((fix, Some(tag))) => {
            let mut name = [0u8; 64];
            match device_name(&mut name, tag) {
                Some(name) => sink.point(fix, Some(name)),
                None => sink.point(fix, Some(&format!("google-{tag}"))),
            }
        }
        Ok((fix, None)) => sink.point(fix, None),
        Err(reason) => reject(sink, offset, reason, raw),
    }
}

/// Writes `google-<tag>` into `buf`; `None` when it does not fit.
fn device_name<'b>(buf: &'b mut [u8; 64], tag: &str) -> Option<&'b str> {
    const PREFIX: &[u8] = b"google-";
    let len = PREFIX.len() + tag.len();
    if len > buf.len() {
        return None;
    }
    buf[..PREFIX.len()].copy_from_slice(PREFIX);
    buf[PREFIX.len()..len].copy_from_slice(tag.as_bytes());
    std::str::from_utf8(&buf[..len]).ok()
}

/// A scalar read without committing to its JSON type.
enum Scalar<'a> {
    Int(i64),
    Float(f64),
    Str(Cow<'a, str>),
    Other,
}

impl Scalar<'_> {
    fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Int(v) => Some(*v),
            #[allow(clippy::cast_possible_truncation)]
            Self::Float(v) if v.fract() == 0.0 && v.abs() < 9e15 => Some(*v as i64),
            Self::Str(s) => s.trim().parse().ok(),
            _ => None,
        }
    }
}

impl<'de> Deserialize<'de> for Scalar<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Scalar<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a scalar")
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Int(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Scalar<'de>, E> {
                #[allow(clippy::cast_precision_loss)]
                Ok(i64::try_from(v).map_or(Scalar::Float(v as f64), Scalar::Int))
            }
            fn visit_f64<E: de::Error>(self, v: f64) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Float(v))
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Str(Cow::Owned(v.to_owned())))
            }
            fn visit_bool<E: de::Error>(self, _: bool) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Scalar<'de>, E> {
                Ok(Scalar::Other)
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Scalar<'de>, A::Error> {
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Scalar<'de>, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Scalar::Other)
            }
        }
        deserializer.deserialize_any(V)
    }
}

/// One record, as far as it was read.
struct Record<'a> {
    lat: Option<Scalar<'a>>,
    lon: Option<Scalar<'a>>,
    timestamp: Option<Scalar<'a>>,
    timestamp_ms: Option<Scalar<'a>>,
    accuracy: Option<f64>,
    altitude: Option<f64>,
    vertical_accuracy: Option<f64>,
    velocity: Option<f64>,
    heading: Option<f64>,
    activity: Option<&'a RawValue>,
    device_tag: Option<&'a RawValue>,
    extras: ExtrasBuilder,
}

thread_local! {
    /// The extras working buffer, reused record after record on each parsing
    /// thread (see [`ExtrasBuilder::finish_exact`]).
    static EXTRAS_BUFFER: RefCell<String> = const { RefCell::new(String::new()) };
}

impl<'a> Record<'a> {
    fn read(text: &'a str) -> Result<Self, serde_json::Error> {
        let mut de = serde_json::Deserializer::from_str(text);
        let mut buffer = EXTRAS_BUFFER.with_borrow_mut(std::mem::take);
        // Extras are at most the element's size: no regrowth while reading.
        buffer.reserve(text.len());
        let record = de.deserialize_map(RecordVisitor { buffer })?;
        de.end()?;
        Ok(record)
    }
}

struct RecordVisitor {
    buffer: String,
}

impl<'de> Visitor<'de> for RecordVisitor {
    type Value = Record<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a location record object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Record<'de>, A::Error> {
        let mut r = Record {
            lat: None,
            lon: None,
            timestamp: None,
            timestamp_ms: None,
            accuracy: None,
            altitude: None,
            vertical_accuracy: None,
            velocity: None,
            heading: None,
            activity: None,
            device_tag: None,
            extras: ExtrasBuilder::reusing(self.buffer),
        };
        while let Some(Key(key)) = map.next_key::<Key<'de>>()? {
            let measure = match key.as_ref() {
                "latitudeE7" => {
                    r.lat = Some(map.next_value()?);
                    continue;
                }
                "longitudeE7" => {
                    r.lon = Some(map.next_value()?);
                    continue;
                }
                "timestamp" => {
                    r.timestamp = Some(map.next_value()?);
                    continue;
                }
                "timestampMs" => {
                    r.timestamp_ms = Some(map.next_value()?);
                    continue;
                }
                "accuracy" => &mut r.accuracy,
                "altitude" => &mut r.altitude,
                "verticalAccuracy" => &mut r.vertical_accuracy,
                "velocity" => &mut r.velocity,
                "heading" => &mut r.heading,
                other => {
                    let value: &'de RawValue = map.next_value()?;
                    match other {
                        "activity" | "activitys" => r.activity = Some(value),
                        "deviceTag" => r.device_tag = Some(value),
                        _ => {}
                    }
                    r.extras.raw_compact(other, value.get());
                    continue;
                }
            };
            // A measurement that is not a number is kept as it was.
            let value: &'de RawValue = map.next_value()?;
            match value.get().parse::<f64>() {
                Ok(v) if v.is_finite() => *measure = Some(v),
                _ => r.extras.raw_compact(&key, value.get()),
            }
        }
        Ok(r)
    }
}

impl<'a> Record<'a> {
    fn into_fix(mut self, options: &ImportOptions, out: &mut OutOfRange) -> Result<(Fix, Option<&'a str>), String> {
        let (Some(lat), Some(lon)) = (&self.lat, &self.lon) else {
            return Err("latitudeE7/longitudeE7: missing".to_owned());
        };
        let (Some(lat), Some(lon)) = (lat.as_i64(), lon.as_i64()) else {
            return Err("latitudeE7/longitudeE7: not an integer".to_owned());
        };
        let coord = Coord::from_e7(lat, lon).map_err(|e| format!("latitudeE7/longitudeE7: {e}"))?;
        let parsed = match (&self.timestamp, &self.timestamp_ms) {
            (Some(t), _) => scalar_time(t, "timestamp")?,
            (None, Some(t)) => scalar_time_ms(t)?,
            (None, None) => return Err("timestamp/timestampMs: missing".to_owned()),
        };
        let field = if self.timestamp.is_some() { "timestamp" } else { "timestampMs" };
        check_time(options, parsed.time, field)?;
        let mut fix = Fix::new(parsed.time, coord, SourceFormat::GoogleRecords);
        fix.utc_offset_minutes = parsed.offset_minutes;
        fix.zone_assumed = parsed.zone_assumed;
        for (value, column, key) in [
            (self.accuracy, Column::Accuracy, "accuracy"),
            (self.altitude, Column::Altitude, "altitude"),
            (self.vertical_accuracy, Column::VerticalAccuracy, "verticalAccuracy"),
            (self.velocity, Column::Speed, "velocity"),
            (self.heading, Column::Course, "heading"),
        ] {
            if let Some(v) = value {
                measure::set_as(&mut fix, column, v, key, &mut self.extras, out);
            }
        }
        fix.motion = self.activity.and_then(most_probable_activity);
        let (extras, buffer) = self.extras.finish_exact();
        fix.extras = extras;
        EXTRAS_BUFFER.with_borrow_mut(|b| *b = buffer);
        let device = self.device_tag.map(|raw| raw.get().trim_matches('"'));
        Ok((fix, device))
    }
}

fn scalar_time(value: &Scalar<'_>, field: &str) -> Result<ParsedTime, String> {
    let plain = |time| ParsedTime { time, offset_minutes: None, zone_assumed: false };
    match value {
        Scalar::Str(s) => parse_timestamp(s).map_err(|e| format!("{field}: {e}")),
        Scalar::Int(v) => from_epoch_integer(*v).map(plain).ok_or_else(|| format!("{field}: {v} is out of range")),
        Scalar::Float(v) => from_epoch_number(*v).map(plain).ok_or_else(|| format!("{field}: {v} is out of range")),
        Scalar::Other => Err(format!("{field}: not a timestamp")),
    }
}

/// `timestampMs` is epoch milliseconds, whatever its magnitude.
fn scalar_time_ms(value: &Scalar<'_>) -> Result<ParsedTime, String> {
    match value.as_i64() {
        Some(ms) => Ok(ParsedTime { time: Timestamp(ms), offset_minutes: None, zone_assumed: false }),
        None => scalar_time(value, "timestampMs"),
    }
}

#[derive(Deserialize)]
struct ActivityEntry<'a> {
    #[serde(borrow, alias = "activities", default)]
    activity: Vec<TypeConfidence<'a>>,
}

#[derive(Deserialize)]
struct TypeConfidence<'a> {
    #[serde(rename = "type", borrow)]
    kind: Cow<'a, str>,
    #[serde(default)]
    confidence: f64,
}

/// The most confident activity type of the first (newest) entry.
fn most_probable_activity(raw: &RawValue) -> Option<Motion> {
    // Read only the first entry: deserialise one value after the `[` and stop.
    let inner = raw.get().trim_start().strip_prefix('[')?;
    let mut de = serde_json::Deserializer::from_str(inner);
    let entry = ActivityEntry::deserialize(&mut de).ok()?;
    let mut best: Option<&TypeConfidence<'_>> = None;
    for tc in &entry.activity {
        if best.is_none_or(|b| tc.confidence > b.confidence) {
            best = Some(tc);
        }
    }
    Motion::from_activity_name(&best?.kind)
}

#[cfg(test)]
mod tests {
    use super::super::tests::{Collect, import_str};
    use super::*;
    use crate::Format;

    fn one(record: &str) -> Collect {
        let doc = format!("{{\"locations\":[{record}]}}");
        let (format, got) = import_str(&doc);
        assert_eq!(format.unwrap(), Format::GoogleRecords);
        got
    }

    #[test]
    fn timestamp_ms_as_string() {
        let got = one(r#"{"timestampMs":"1366007486860","latitudeE7":525121351,"longitudeE7":134320476}"#);
        assert_eq!(got.points[0].0.time.0, 1_366_007_486_860);
        assert_eq!(got.points[0].0.coord.lat_e7, 525_121_351);
        assert_eq!(got.points[0].0.source, SourceFormat::GoogleRecords);
    }

    #[test]
    fn iso_timestamps_with_and_without_fraction_are_each_parsed_on_their_own() {
        let doc = r#"{"locations":[
            {"latitudeE7":525121351,"longitudeE7":134320476,"timestamp":"2013-06-18T22:02:16Z"},
            {"latitudeE7":525121351,"longitudeE7":134320476,"timestamp":"2013-06-18T22:02:17.123Z"}]}"#;
        let (_, got) = import_str(doc);
        assert_eq!(got.points[0].0.time.0, 1_371_592_936_000);
        assert_eq!(got.points[1].0.time.0, 1_371_592_937_123);
        assert!(got.rejects.is_empty());
    }

    #[test]
    fn timestamp_wins_over_timestamp_ms() {
        let got = one(r#"{"timestampMs":"1","timestamp":"2013-06-18T22:02:16Z","latitudeE7":1,"longitudeE7":1}"#);
        assert_eq!(got.points[0].0.time.0, 1_371_592_936_000);
    }

    #[test]
    fn e7_sign_overflow_is_repaired() {
        let got = one(r#"{"timestampMs":"1366007486860","latitudeE7":100000000,"longitudeE7":3444967296}"#);
        assert_eq!(got.points[0].0.coord.lon_e7, -850_000_000);
    }

    #[test]
    fn activity_array_gives_motion_and_is_kept_verbatim() {
        let got = one(r#"{"latitudeE7":525121351,"longitudeE7":134320476,"accuracy":48,
              "activity":[{"activity":[{"type":"STILL","confidence":40},{"type":"IN_VEHICLE","confidence":60}],"timestamp":"2013-04-15T06:34:36.153Z"},
                          {"activity":[{"type":"WALKING","confidence":100}],"timestamp":"2013-04-15T06:33:36.153Z"}],
              "source":"WIFI","deviceTag":335552189,"timestamp":"2013-04-15T06:34:32.478Z"}"#);
        let (fix, device) = &got.points[0];
        assert_eq!(fix.motion, Some(Motion::Road));
        assert_eq!(fix.horizontal_accuracy_cm, Some(4800));
        assert_eq!(device.as_deref(), Some("google-335552189"));
        let extras = fix.extras.as_ref().unwrap().as_str();
        assert!(extras.starts_with(r#"{"activity":[{"activity":[{"type":"STILL","confidence":40}"#), "{extras}");
        assert!(extras.contains(r#""source":"WIFI","deviceTag":335552189}"#), "{extras}");
    }

    #[test]
    fn activitys_from_2014_with_inner_activities() {
        let got = one(r#"{"timestampMs":"1400000000000","latitudeE7":1,"longitudeE7":2,
              "activitys":[{"timestampMs":"1400000000000","activities":[{"type":"onBicycle","confidence":75},{"type":"still","confidence":25}]}]}"#);
        assert_eq!(got.points[0].0.motion, Some(Motion::Cycling));
        assert!(got.points[0].0.extras.as_ref().unwrap().as_str().starts_with(r#"{"activitys":[{"#));
    }

    #[test]
    fn measurements_and_lowercase_source() {
        let got = one(
            r#"{"timestamp":"2020-01-01T00:00:00Z","latitudeE7":1,"longitudeE7":2,"accuracy":12,"altitude":-3,
              "verticalAccuracy":4,"velocity":5,"heading":359,"source":"gps","platformType":"ANDROID",
              "activeWifiScan":{"accessPoints":[{"mac":"220676014124647","strength":-80}]},
              "locationMetadata":[{"wifiScan":{"accessPoints":[]}}],"placeId":"ChIJ","serverTimestamp":"2020-01-01T00:00:01Z"}"#,
        );
        let fix = &got.points[0].0;
        assert_eq!(fix.altitude_cm, Some(-300));
        assert_eq!(fix.vertical_accuracy_cm, Some(400));
        assert_eq!(fix.speed_cm_s, Some(500));
        assert_eq!(fix.course_centideg, Some(35_900));
        assert_eq!(
            fix.extras.as_ref().unwrap().as_str(),
            r#"{"source":"gps","platformType":"ANDROID","activeWifiScan":{"accessPoints":[{"mac":"220676014124647","strength":-80}]},"locationMetadata":[{"wifiScan":{"accessPoints":[]}}],"placeId":"ChIJ","serverTimestamp":"2020-01-01T00:00:01Z"}"#
        );
    }

    #[test]
    fn out_of_range_measurements_are_kept_in_extras_and_reported() {
        let got =
            one(r#"{"timestamp":"2020-01-01T00:00:00Z","latitudeE7":1,"longitudeE7":2,"accuracy":-5,"altitude":1e12,
              "velocity":-1,"heading":720,"verticalAccuracy":3}"#);
        let fix = &got.points[0].0;
        assert_eq!(
            (fix.horizontal_accuracy_cm, fix.altitude_cm, fix.speed_cm_s, fix.course_centideg),
            (None, None, None, None)
        );
        assert_eq!(fix.vertical_accuracy_cm, Some(300));
        assert_eq!(
            fix.extras.as_ref().unwrap().as_str(),
            r#"{"accuracy":-5,"altitude":1000000000000,"velocity":-1,"heading":720}"#
        );
        assert_eq!(got.out_of_range, ["altitude", "accuracy", "speed", "course"]);
        assert!(got.rejects.is_empty());
    }

    #[test]
    fn bad_records_are_rejected_naming_the_field() {
        let doc = r#"{"locations":[
            {"timestamp":"2020-01-01T00:00:00Z"},
            {"timestamp":"2020-01-01T00:00:00Z","latitudeE7":0,"longitudeE7":0},
            {"timestamp":"2020-13-01T00:00:00Z","latitudeE7":1,"longitudeE7":1},
            {"latitudeE7":1,"longitudeE7":1},
            {"timestampMs":"1000","latitudeE7":1,"longitudeE7":1},
            {"timestamp":"2020-01-01T00:00:00Z","latitudeE7":950000000,"longitudeE7":1},
            [1,2],
            {"timestamp":"2020-01-01T00:00:00Z","latitudeE7":1 "longitudeE7":1},
            {"timestamp":"2020-01-01T00:00:00Z","latitudeE7":1,"longitudeE7":1}]}"#;
        let (_, got) = import_str(doc);
        assert_eq!(got.points.len(), 1);
        let reasons: Vec<&str> = got.rejects.iter().map(|r| r.reason.as_str()).collect();
        assert_eq!(reasons.len(), 8, "{reasons:?}");
        assert!(reasons[0].starts_with("latitudeE7/longitudeE7: missing"));
        assert!(reasons[1].contains("null island"));
        assert!(reasons[2].starts_with("timestamp:"));
        assert!(reasons[3].starts_with("timestamp/timestampMs: missing"));
        assert!(reasons[4].contains("before 1985"));
        assert!(reasons[5].contains("outside the valid range"));
        assert!(reasons[6].contains("not a JSON object"));
        assert!(reasons[7].starts_with("invalid JSON"));
        // The reject points at the record's first byte and carries its text.
        let r = &got.rejects[0];
        let crate::Position::Byte(at) = r.position else { panic!() };
        assert_eq!(&doc[usize::try_from(at).unwrap()..][..r.raw.len()], r.raw);
    }

    #[test]
    fn overland_batch_is_told_apart_from_records() {
        let (format, got) = import_str(
            r#"{"locations":[{"type":"Feature","geometry":{"type":"Point","coordinates":[-122.03,37.33]},"properties":{"timestamp":"2015-10-01T08:00:00-0700"}}]}"#,
        );
        assert_eq!(format.unwrap(), Format::Overland);
        assert_eq!(got.points.len(), 1);
    }

    /// Writes a Takeout-style (pretty-printed, `" : "`) Records.json with
    /// the real field mix: mixed time forms, activity arrays, Wi-Fi scans.
    /// `light` halves the share of activity arrays and Wi-Fi scans.
    fn write_records(out: &mut impl std::io::Write, target_bytes: u64, light: bool) -> u64 {
        let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
        let mut rnd = move |n: u64| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state % n
        };
        let types =
            ["STILL", "IN_VEHICLE", "ON_FOOT", "WALKING", "UNKNOWN", "TILTING", "ON_BICYCLE", "IN_ROAD_VEHICLE"];
        let mut written = 0u64;
        let mut count = 0u64;
        let mut ms: i64 = 1_400_000_000_000;
        let mut rec = String::new();
        out.write_all(b"{\n  \"locations\" : [ ").unwrap();
        while written < target_bytes {
            rec.clear();
            ms += 1 + i64::try_from(rnd(120_000)).unwrap();
            let iso = Timestamp(ms).to_rfc3339(None);
            let time = match rnd(3) {
                0 => format!("\"timestampMs\" : \"{ms}\""),
                1 => format!("\"timestamp\" : \"{iso}\""),
                _ => format!("\"timestamp\" : \"{}Z\"", &iso[..19]),
            };
            rec.push_str(&format!(
                "{{\n    {time},\n    \"latitudeE7\" : {},\n    \"longitudeE7\" : {},\n    \"accuracy\" : {}",
                480_000_000 + rnd(10_000_000),
                if rnd(50) == 0 { 3_444_967_296 + rnd(1000) } else { 110_000_000 + rnd(10_000_000) },
                rnd(2000)
            ));
            if rnd(3) == 0 {
                rec.push_str(&format!(",\n    \"altitude\" : {},\n    \"verticalAccuracy\" : {}", rnd(500), rnd(30)));
            }
            if rnd(4) == 0 {
                rec.push_str(&format!(",\n    \"velocity\" : {},\n    \"heading\" : {}", rnd(30), rnd(360)));
            }
            if rnd(10) < if light { 2 } else { 4 } {
                rec.push_str(",\n    \"activity\" : [ ");
                for e in 0..=rnd(2) {
                    if e > 0 {
                        rec.push_str(", ");
                    }
                    rec.push_str(&format!("{{\n      \"timestamp\" : \"{iso}\",\n      \"activity\" : [ "));
                    for t in 0..2 + rnd(3) {
                        if t > 0 {
                            rec.push_str(", ");
                        }
                        let ty = types[usize::try_from(rnd(8)).unwrap()];
                        rec.push_str(&format!(
                            "{{\n        \"type\" : \"{ty}\",\n        \"confidence\" : {}\n      }}",
                            rnd(101)
                        ));
                    }
                    rec.push_str(" ]\n    }");
                }
                rec.push_str(" ]");
            }
            if rnd(if light { 8 } else { 4 }) == 0 {
                let key = if rnd(2) == 0 { "activeWifiScan" } else { "locationMetadata" };
                rec.push_str(&format!(",\n    \"{key}\" : {{\n      \"accessPoints\" : [ "));
                for a in 0..3 + rnd(8) {
                    if a > 0 {
                        rec.push_str(", ");
                    }
                    rec.push_str(&format!(
                        "{{\n        \"mac\" : \"{}\",\n        \"strength\" : -{},\n        \"frequencyMhz\" : {}\n      }}",
                        200_000_000_000_000 + rnd(99_999_999_999_999),
                        40 + rnd(50),
                        if rnd(2) == 0 { 2412 } else { 5180 }
                    ));
                }
                rec.push_str(" ]\n    }");
            }
            rec.push_str(&format!(
                ",\n    \"source\" : \"{}\",\n    \"deviceTag\" : {},\n    \"platformType\" : \"ANDROID\"\n  }}",
                ["WIFI", "GPS", "CELL", "wifi"][usize::try_from(rnd(4)).unwrap()],
                -1_234_567 + i64::try_from(rnd(3)).unwrap()
            ));
            if count > 0 {
                out.write_all(b", ").unwrap();
                written += 2;
            }
            out.write_all(rec.as_bytes()).unwrap();
            written += rec.len() as u64;
            count += 1;
        }
        out.write_all(b" ]\n}\n").unwrap();
        count
    }

    /// Counts and drops what it gets, touching each fix.
    #[derive(Default)]
    struct Count {
        points: u64,
        extras_bytes: u64,
        rejects: u64,
    }

    impl Sink for Count {
        fn point(&mut self, fix: Fix, _device: Option<&str>) {
            self.points += 1;
            self.extras_bytes += fix.extras.as_ref().map_or(0, |e| e.as_str().len() as u64);
        }
        fn interval(&mut self, _interval: polo_domain::Interval, _device: Option<&str>) {}
        fn reject(&mut self, _reject: crate::Reject) {
            self.rejects += 1;
        }
    }

    /// `POLO_RECORDS_MB=200 cargo test --release -p polo-formats --lib records_throughput -- --ignored --nocapture`
    /// (`POLO_RECORDS_MIX=light` for fewer activity arrays and scans;
    /// `POLO_RECORDS_FILE=path` keeps the generated file for reuse).
    #[test]
    #[ignore = "performance measurement; run in release mode"]
    fn records_throughput() {
        let mb: u64 = std::env::var("POLO_RECORDS_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(200);
        let mut file = match std::env::var("POLO_RECORDS_FILE") {
            Ok(path) => {
                std::fs::OpenOptions::new().read(true).write(true).create(true).truncate(false).open(path).unwrap()
            }
            Err(_) => tempfile::tempfile().unwrap(),
        };
        let cpu_ns = || {
            // Time this thread actually ran: the machine is shared, wall time is not a measure.
            std::fs::read_to_string("/proc/thread-self/schedstat")
                .ok()
                .and_then(|s| s.split_whitespace().next().and_then(|v| v.parse::<u64>().ok()))
        };
        let existing = std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).unwrap();
        let records = if existing > 0 {
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).unwrap();
            let mut sink = Count::default();
            crate::google::import_json(std::io::BufReader::new(&file), &super::super::tests::options(), &mut sink)
                .unwrap();
            sink.points + sink.rejects
        } else {
            let mut w = std::io::BufWriter::new(&mut file);
            let n =
                write_records(&mut w, mb * 1024 * 1024, std::env::var("POLO_RECORDS_MIX").is_ok_and(|m| m == "light"));
            std::io::Write::flush(&mut w).unwrap();
            n
        };
        let bytes = std::io::Seek::seek(&mut file, std::io::SeekFrom::End(0)).unwrap();
        for round in 0..2 {
            std::io::Seek::seek(&mut file, std::io::SeekFrom::Start(0)).unwrap();
            let reader = std::io::BufReader::with_capacity(crate::READ_BUFFER, &file);
            let mut sink = Count::default();
            let start = std::time::Instant::now();
            let cpu_start = cpu_ns();
            let format = crate::google::import_json(reader, &super::super::tests::options(), &mut sink).unwrap();
            let wall = start.elapsed().as_secs_f64();
            #[allow(clippy::cast_precision_loss)]
            let secs = match (cpu_start, cpu_ns()) {
                (Some(a), Some(b)) => (b - a) as f64 / 1e9,
                _ => wall,
            };
            assert_eq!(format, Format::GoogleRecords);
            assert_eq!(sink.points + sink.rejects, records);
            #[allow(clippy::cast_precision_loss)]
            let (rate, mbs) = (sink.points as f64 / secs, bytes as f64 / secs / 1e6);
            eprintln!(
                "round {round}: {records} records, {:.1} MB in {secs:.2}s CPU ({wall:.2}s wall): {rate:.0} records/s, {mbs:.0} MB/s per core (extras {} MB, rejects {})",
                bytes as f64 / 1e6,
                sink.extras_bytes / 1_000_000,
                sink.rejects
            );
        }
    }
}
