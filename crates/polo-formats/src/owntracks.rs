//! OwnTracks Recorder `.rec` files: one message per line,
//! `<ISO-UTC>\t<topic padded to 18>\t<JSON payload>`.
//!
//! The split is deliberately robust rather than tab-exact: real files use
//! runs of spaces instead of tabs, and the payload itself contains spaces
//! (`"topic":"owntracks/test/iPhone 12 Pro"`). The timestamp is the first
//! token and the payload runs from the first `{` to the end of the line.
//! Lines are read whole up to [`crate::MAX_TOKEN`] (1 MiB; `card` payloads
//! carry a base64 image, far smaller); a longer line is skipped without
//! being held and rejected with its line number.
//!
//! What becomes what:
//!
//! * `_type: location` (or no `_type` but `lat`/`lon`/`tst`) → a fix. `tst`
//!   (epoch seconds) is the fix time — not the line's timestamp and not
//!   `created_at`, which is when the message was made. `acc`, `alt`, `vac`,
//!   `vel` (**km/h**, converted to m/s), `cog` and `batt` fill columns; every
//!   other member (`bs`, `t`, `m`, `conn`, `tid`, `SSID`, `BSSID`,
//!   `inregions`, `created_at`, `p`, ...) goes to the extras verbatim.
//!   Numbers sent as strings (Greenwich devices) are accepted.
//! * `topic` (`owntracks/USER/DEVICE[/event]`) gives the device hint `DEVICE`.
//! * `_type: transition` with `lat`/`lon`/`tst` is also a fix (the device was
//!   there then); its `event`, `desc`, `rid`, `wtst` ... and `_type` itself
//!   are kept in the extras so the enter/leave stays visible.
//! * Every other type (`lwt`, `card`, `status`, `waypoint(s)`, `cmd`,
//!   `steps`, `beacon`, `encrypted`, `dump`...) is not a location record:
//!   such lines are counted in [`Stats::skipped`] and skipped without a
//!   reject, since nothing is wrong with them.
//! * A line that has no JSON object, is not valid JSON, or is a location
//!   without `lat`/`lon`/`tst` is rejected with [`Position::Line`] and the
//!   line's text.

use std::io::BufRead;

use polo_domain::{Coord, Fix, SourceFormat, Timestamp};
use serde_json::value::RawValue;

use crate::bounded::lines::LineReader;
use crate::extras::ExtrasBuilder;
use crate::measure::{self, Column, OutOfRange};
use crate::raw_object::{Members, OwntracksMeasurements};
use crate::{ImportError, ImportOptions, Position, Reject, Sink};

/// What a `.rec` import saw, beyond what went into the sink.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Stats {
    /// Location (and transition) lines turned into fixes.
    pub(crate) fixes: u64,
    /// Lines of other message types (lwt, card, status, waypoint...), skipped.
    pub(crate) skipped: u64,
    /// Lines rejected.
    pub(crate) rejected: u64,
}

pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    import_with_stats(reader, options, sink).map(|_| ())
}

pub(crate) fn import_with_stats<R: BufRead>(
    reader: R,
    options: &ImportOptions,
    sink: &mut dyn Sink,
) -> Result<Stats, ImportError> {
    let mut stats = Stats::default();
    let mut lines = LineReader::new(reader, crate::MAX_TOKEN);
    while let Some(line) = lines.next_line()? {
        let line_no = line.number;
        let text = String::from_utf8_lossy(line.text);
        if line.too_long.is_some() {
            stats.rejected += 1;
            sink.reject(Reject::new(Position::Line(line_no), crate::bounded::too_long("line"), &text));
            continue;
        }
        let line = text.trim_end_matches(['\n', '\r']);
        if line.trim().is_empty() {
            continue;
        }
        match read_line(line, options) {
            Ok(Some((fix, device, out_of_range))) => {
                stats.fixes += 1;
                out_of_range.report(sink);
                sink.point(fix, device.as_deref());
            }
            Ok(None) => {
                stats.skipped += 1;
                sink.not_location("OwnTracks message without a position (lwt, card, waypoint, status…)");
            }
            Err(reason) => {
                stats.rejected += 1;
                sink.reject(Reject::new(Position::Line(line_no), reason, line));
            }
        }
    }
    Ok(stats)
}

/// A JSON number, or a string holding one.
fn number(raw: &RawValue) -> Option<f64> {
    let text = raw.get();
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text);
    text.trim().parse::<f64>().ok().filter(|v| v.is_finite())
}

/// A JSON string's value.
fn string(raw: &RawValue) -> Option<String> {
    serde_json::from_str::<String>(raw.get()).ok()
}

/// `tst`: epoch seconds as a number or string (fractions tolerated).
fn epoch_seconds(raw: &RawValue) -> Option<Timestamp> {
    let text = raw.get();
    let text = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).unwrap_or(text).trim();
    if let Ok(s) = text.parse::<i64>() {
        return Timestamp::from_unix_seconds(s);
    }
    let s = text.parse::<f64>().ok().filter(|v| v.is_finite() && v.abs() < 1e12)?;
    // Range-checked above.
    #[allow(clippy::cast_possible_truncation)]
    Some(Timestamp((s * 1000.0).round() as i64))
}

/// Turns one line into a fix, `None` for a non-location message, or the reject reason.
fn read_line(line: &str, options: &ImportOptions) -> Result<Option<(Fix, Option<String>, OutOfRange)>, String> {
    let Some(brace) = line.find('{') else {
        return Err("no JSON payload on the line".to_owned());
    };
    let payload = line[brace..].trim_end();
    let Members(members) = serde_json::from_str(payload).map_err(|e| format!("payload is not a JSON object: {e}"))?;
    crate::json_keys::check(payload.as_bytes())?;
    let kind = members.iter().find(|(k, _)| k == "_type").and_then(|(_, v)| string(v));
    let transition = match kind.as_deref() {
        Some("location") => false,
        Some("transition") => true,
        None if members.iter().any(|(k, _)| k == "lat") => false,
        _ => return Ok(None),
    };
    let mut lat = None;
    let mut lon = None;
    let mut tst = None;
    let mut device = None;
    let mut extras = ExtrasBuilder::new();
    let mut measured = OwntracksMeasurements::default();
    for (key, value) in &members {
        let slot = match key.as_str() {
            "lat" => &mut lat,
            "lon" => &mut lon,
            "tst" => {
                tst = Some(epoch_seconds(value).ok_or_else(|| format!("tst {} is not epoch seconds", value.get()))?);
                continue;
            }
            "topic" => {
                if let Some(topic) = string(value) {
                    device = topic.split('/').nth(2).filter(|d| !d.is_empty()).map(str::to_owned);
                }
                continue;
            }
            "_type" if !transition => continue,
            other => match measured.slot(other) {
                Some(slot) => slot,
                None => {
                    extras.raw(key, value.get());
                    continue;
                }
            },
        };
        match number(value) {
            Some(v) => *slot = Some(v),
            None if matches!(key.as_str(), "lat" | "lon") => {
                return Err(format!("{key} {} is not a number", value.get()));
            }
            // A column value that is not a number is kept rather than lost.
            None => extras.raw(key, value.get()),
        }
    }
    let (Some(lat), Some(lon)) = (lat, lon) else {
        return Err(format!("{} without lat/lon", kind.as_deref().unwrap_or("location")));
    };
    let Some(time) = tst else {
        return Err(format!("{} without tst", kind.as_deref().unwrap_or("location")));
    };
    options.check_time(time)?;
    let coord = Coord::from_degrees(lat, lon).map_err(|e| format!("lat/lon: {e}"))?;
    let mut fix = Fix::new(time, coord, SourceFormat::Owntracks);
    let mut out_of_range = OutOfRange::default();
    for (value, column, key, scale) in [
        (measured.acc, Column::Accuracy, "acc", 1.0),
        (measured.alt, Column::Altitude, "alt", 1.0),
        (measured.vac, Column::VerticalAccuracy, "vac", 1.0),
        (measured.vel, Column::Speed, "vel", 1.0 / 3.6),
        (measured.cog, Column::Course, "cog", 1.0),
        (measured.batt, Column::Battery, "batt", 1.0),
    ] {
        if let Some(v) = value {
            measure::set(&mut fix, column, v * scale, (key, v), &mut extras, &mut out_of_range);
        }
    }
    fix.extras = extras.finish();
    Ok(Some((fix, device, out_of_range)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::testing::{Collect, options};

    fn run(text: &str) -> (Collect, Stats) {
        let mut sink = Collect::default();
        let stats = import_with_stats(text.as_bytes(), &options(), &mut sink).unwrap();
        (sink, stats)
    }

    const LOC: &str = r#"{"bs":2,"p":100.266,"batt":94,"_type":"location","tid":"RO","topic":"owntracks/test/iPhone 12 Pro","alt":36,"lon":13.332,"vel":36,"BSSID":"b0:f2:8:45:94:33","conn":"w","vac":4,"acc":10,"tst":1709283789,"lat":52.225,"cog":98,"m":1,"inregions":["home"],"_http":true}"#;

    #[test]
    fn a_payload_with_a_duplicate_key_is_rejected() {
        let (sink, stats) = run(
            "2024-03-01T09:03:09Z\t*\t{\"_type\":\"location\",\"lat\":52.2,\"lat\":9,\"lon\":13.3,\"tst\":1709283789}\n",
        );
        assert_eq!((stats.fixes, stats.rejected), (0, 1));
        assert!(sink.rejects[0].reason.starts_with("duplicate key \"lat\""), "{}", sink.rejects[0].reason);
    }

    #[test]
    fn out_of_range_measurements_are_kept_in_extras_and_reported() {
        let line = r#"2024-03-01T09:03:09Z	*	{"_type":"location","lat":52.2,"lon":13.3,"tst":1709283789,"cog":720,"batt":140,"vel":36}"#;
        let (sink, stats) = run(line);
        assert_eq!(stats.fixes, 1);
        let fix = &sink.points[0].0;
        assert_eq!((fix.course_centideg, fix.battery_percent, fix.speed_cm_s), (None, None, Some(1000)));
        assert_eq!(fix.extras.as_ref().unwrap().as_str(), r#"{"cog":720,"batt":140}"#);
        assert_eq!(sink.out_of_range, ["course", "battery"]);
    }

    #[test]
    fn tab_separated_location_line() {
        let (s, stats) = run(&format!("2024-03-01T09:03:09Z\t*                 \t{LOC}\n"));
        assert_eq!(stats, Stats { fixes: 1, skipped: 0, rejected: 0 });
        let (f, device) = &s.points[0];
        assert_eq!(device.as_deref(), Some("iPhone 12 Pro"));
        assert_eq!(f.time, Timestamp(1_709_283_789_000));
        assert_eq!(f.coord, Coord::from_degrees(52.225, 13.332).unwrap());
        assert_eq!(f.speed_cm_s, Some(1000), "vel is km/h");
        assert_eq!(
            (f.horizontal_accuracy_cm, f.vertical_accuracy_cm, f.altitude_cm),
            (Some(1000), Some(400), Some(3600))
        );
        assert_eq!((f.course_centideg, f.battery_percent), (Some(9800), Some(94)));
        assert_eq!(
            f.extras.as_ref().unwrap().as_str(),
            r#"{"bs":2,"p":100.266,"tid":"RO","BSSID":"b0:f2:8:45:94:33","conn":"w","m":1,"inregions":["home"],"_http":true}"#
        );
    }

    #[test]
    fn space_separated_variant_and_crlf() {
        let (s, _) = run(&format!("2023-02-20T18:46:22Z  *        {LOC}\r\n\n"));
        assert_eq!(s.points.len(), 1);
        assert!(s.rejects.is_empty());
    }

    #[test]
    fn numbers_as_strings() {
        let (s, _) = run(
            r#"2024-03-01T09:03:09Z	*	{"_type":"location","lat":"52.5","lon":"13.4","tst":"1709283789","acc":"12","vel":"18"}"#,
        );
        let f = &s.points[0].0;
        assert_eq!(f.coord, Coord::from_degrees(52.5, 13.4).unwrap());
        assert_eq!((f.horizontal_accuracy_cm, f.speed_cm_s), (Some(1200), Some(500)));
    }

    #[test]
    fn transition_is_a_fix_with_the_event_in_extras() {
        let (s, stats) = run(
            r#"2024-03-01T18:40:10Z	event             	{"_type":"transition","acc":5,"desc":"Home","event":"enter","lat":52.232,"lon":13.339,"t":"l","tid":"s8","tst":1717460098,"wtst":1717459768}"#,
        );
        assert_eq!(stats.fixes, 1);
        assert_eq!(
            s.points[0].0.extras.as_ref().unwrap().as_str(),
            r#"{"_type":"transition","desc":"Home","event":"enter","t":"l","tid":"s8","wtst":1717459768}"#
        );
    }

    #[test]
    fn other_message_types_are_skipped_not_rejected() {
        let face = "A".repeat(200_000);
        let text = format!(
            "2024-03-01T18:40:08Z\tlwt               \t{{\"_type\":\"lwt\",\"tst\":1717459208}}\n\
             2024-03-01T18:40:09Z\twaypoints         \t{{\"_type\":\"waypoint\",\"desc\":\"Home\",\"lat\":52.2,\"lon\":13.3,\"rad\":50,\"tst\":1717459768}}\n\
             2024-03-01T18:40:09Z\tinfo              \t{{\"_type\":\"card\",\"name\":\"Me\",\"face\":\"{face}\"}}\n\
             2024-03-01T18:40:09Z\tstatus            \t{{\"_type\":\"status\"}}\n\
             2024-03-01T18:40:09Z\tcmd               \t{{\"_type\":\"cmd\",\"action\":\"reportLocation\"}}\n\
             2024-03-01T18:40:09Z\tstep              \t{{\"_type\":\"steps\",\"steps\":10}}\n\
             2024-03-01T18:40:11Z\t*                 \t{LOC}\n"
        );
        let (s, stats) = run(&text);
        assert_eq!(stats, Stats { fixes: 1, skipped: 6, rejected: 0 });
        assert!(s.rejects.is_empty());
    }

    #[test]
    fn bad_lines_are_rejected_with_their_line_number() {
        let text = format!(
            "2024-03-01T18:40:11Z\t*\t{LOC}\n\
             2024-03-01T18:40:12Z\t*\tbinary dump\n\
             2024-03-01T18:40:13Z\t*\t{{\"_type\":\"location\",\"lat\":1\n\
             2024-03-01T18:40:14Z\t*\t{{\"_type\":\"location\",\"lat\":1,\"lon\":2}}\n\
             2024-03-01T18:40:15Z\t*\t{{\"_type\":\"location\",\"lat\":0,\"lon\":0,\"tst\":1709283789}}\n\
             2024-03-01T18:40:16Z\t*\t{{\"_type\":\"location\",\"lat\":95,\"lon\":0,\"tst\":1709283789}}\n\
             2024-03-01T18:40:17Z\t*\t{{\"_type\":\"location\",\"lat\":5,\"lon\":5,\"tst\":0}}\n\
             2024-03-01T18:40:18Z\t*\t{{\"_type\":\"location\",\"lat\":5,\"lon\":5,\"tst\":\"soon\"}}\n"
        );
        let (s, stats) = run(&text);
        assert_eq!((stats.fixes, stats.rejected), (1, 7));
        let got: Vec<_> = s.rejects.iter().map(|r| (r.position, r.reason.clone())).collect();
        assert_eq!(got[0].0, Position::Line(2));
        assert!(got[0].1.contains("no JSON payload"));
        assert!(got[1].1.contains("not a JSON object"));
        assert!(got[2].1.contains("without tst"));
        assert!(got[3].1.contains("0,0"));
        assert!(got[4].1.contains("latitude 95"));
        assert!(got[5].1.contains("before 1985"));
        assert!(got[6].1.contains("tst \"soon\""));
        assert!(s.rejects[1].raw.starts_with("2024-03-01T18:40:13Z"));
    }
}
