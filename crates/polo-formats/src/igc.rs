//! IGC flight recorder files (gliders, paragliders, hang gliders), as the
//! FAI's IGC specification defines them: one record per line, its kind in
//! the first byte.
//!
//! * `HFDTE` (also `HFDTEDATE:ddmmyy,nn`) gives the UTC date of the flight;
//!   B records carry only the time of day. A B record whose time of day is
//!   more than twelve hours before the previous one's is on the next day
//!   (flights across midnight UTC, common in Australia and the Americas).
//!   A B record before any date header cannot be placed in time and is
//!   rejected.
//! * `B HHMMSS DDMMmmmN DDDMMmmmE V PPPPP GGGGG …`: time, latitude and
//!   longitude in degrees and thousandths of minutes, fix validity (`A` 3-D,
//!   `V` 2-D or no GNSS altitude), pressure altitude and GNSS altitude in
//!   metres. The GNSS altitude becomes the fix's altitude when the fix is
//!   `A`; the pressure altitude is kept as extras `pressure_altitude` (and a
//!   `V` fix as `fix_validity`).
//! * The `I` record declares extra B-record columns by byte range and a
//!   three-letter code. `FXA` (fix accuracy, metres) becomes the horizontal
//!   accuracy; every other code (`SIU` satellites, `ENL` engine noise, `TAS`
//!   airspeed…) goes to the extras under its code.
//! * All other records (`A`, `H`, `C` task, `E` events, `F` satellites, `G`
//!   signature, `L` comments, `K`) are headers or not positions: skipped.

use std::io::BufRead;

use polo_domain::time::MS_PER_DAY;
use polo_domain::{Coord, Fix, SourceFormat, Timestamp};

use crate::bounded::lines::{LineReader, too_long_line};
use crate::extras::ExtrasBuilder;
use crate::xml::push_extra;
use crate::{ImportError, ImportOptions, Position, Reject, Sink};

/// True when `prefix` looks like an IGC file: an `A` record naming a
/// three-character manufacturer, and a date header within the prefix.
pub(crate) fn looks_like_igc(prefix: &str) -> bool {
    let prefix = prefix.trim_start_matches('\u{feff}');
    let first = prefix.lines().next().unwrap_or("").as_bytes();
    first.len() >= 4
        && first[0] == b'A'
        && first[1..4].iter().all(u8::is_ascii_alphanumeric)
        && prefix.lines().any(|l| l.starts_with("HFDTE") || l.starts_with("HPDTE") || l.starts_with("HODTE"))
}

/// One extra B-record column declared by the `I` record.
struct Extension {
    /// 0-based byte range in the B record.
    start: usize,
    end: usize,
    code: String,
}

fn parse_i_record(line: &str) -> Result<Vec<Extension>, String> {
    let bad = || format!("I record {line:?} is not I + count + (start, end, code)…");
    let count: usize = line.get(1..3).and_then(|n| n.parse().ok()).ok_or_else(bad)?;
    (0..count)
        .map(|i| {
            let at = 3 + i * 7;
            let entry = line.get(at..at + 7).filter(|e| e.is_ascii()).ok_or_else(bad)?;
            let start: usize = entry[0..2].parse().map_err(|_| bad())?;
            let end: usize = entry[2..4].parse().map_err(|_| bad())?;
            if start == 0 || end < start {
                return Err(bad());
            }
            Ok(Extension { start: start - 1, end, code: entry[4..7].to_owned() })
        })
        .collect()
}

/// `ddmmyy` from an `HFDTE` line → days since the Unix epoch.
fn parse_date(line: &str) -> Result<i64, String> {
    let rest = line.get(5..).unwrap_or_default();
    let rest = rest.strip_prefix("DATE:").unwrap_or(rest).trim();
    let digits = rest.get(..6).filter(|d| d.bytes().all(|b| b.is_ascii_digit()));
    let bad = || format!("date header {line:?} has no ddmmyy date");
    let d = digits.ok_or_else(bad)?;
    let n = |r: std::ops::Range<usize>| d[r].parse::<u32>().map_err(|_| bad());
    let (day, month, yy) = (n(0..2)?, n(2..4)?, n(4..6)?);
    // Two digits, so the cast is exact; IGC files start in the 1990s.
    #[allow(clippy::cast_possible_wrap)]
    let year = if yy >= 80 { 1900 + yy as i32 } else { 2000 + yy as i32 };
    Timestamp::from_civil(year, month, day, 0, 0, 0, 0).map(|t| t.0 / MS_PER_DAY).ok_or_else(bad)
}

fn digits(line: &str, range: std::ops::Range<usize>, name: &str) -> Result<u32, String> {
    line.get(range.clone())
        .filter(|s| s.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| format!("{name} {:?} is not digits", line.get(range).unwrap_or("")))
}

/// Degrees from `D…DMMmmm` + hemisphere.
fn angle(line: &str, at: usize, degree_digits: usize, name: &str) -> Result<f64, String> {
    let degrees = digits(line, at..at + degree_digits, name)?;
    let thousandths = digits(line, at + degree_digits..at + degree_digits + 5, name)?;
    let hemisphere = line.as_bytes().get(at + degree_digits + 5).copied();
    let v = f64::from(degrees) + f64::from(thousandths) / 1000.0 / 60.0;
    match hemisphere {
        Some(b'N' | b'E') => Ok(v),
        Some(b'S' | b'W') => Ok(-v),
        _ => Err(format!("{name} has no N/S/E/W letter")),
    }
}

/// A signed altitude field of five characters (`-0012` is legal).
fn altitude(line: &str, range: std::ops::Range<usize>, name: &str) -> Result<i32, String> {
    let text = line.get(range).ok_or_else(|| format!("no {name}"))?;
    text.trim().parse::<i32>().map_err(|_| format!("{name} {text:?} is not a number"))
}

struct Flight {
    day: Option<i64>,
    last_tod: Option<u32>,
    extensions: Vec<Extension>,
}

impl Flight {
    fn b_record(&mut self, line: &str, options: &ImportOptions) -> Result<Fix, String> {
        if line.len() < 35 || !line.is_ascii() {
            return Err(format!("B record of {} characters; it needs at least 35", line.len()));
        }
        let hh = digits(line, 1..3, "hour")?;
        let mm = digits(line, 3..5, "minute")?;
        let ss = digits(line, 5..7, "second")?;
        if hh > 23 || mm > 59 || ss > 59 {
            return Err(format!("time {:?} is not hhmmss", &line[1..7]));
        }
        let tod = ((hh * 60 + mm) * 60 + ss) * 1000;
        let lat = angle(line, 7, 2, "latitude")?;
        let lon = angle(line, 15, 3, "longitude")?;
        let coord = Coord::from_degrees(lat, lon).map_err(|e| format!("lat/lon: {e}"))?;
        let validity = line.as_bytes()[24];
        let pressure = altitude(line, 25..30, "pressure altitude")?;
        let gnss = altitude(line, 30..35, "GNSS altitude")?;
        let Some(mut day) = self.day else {
            return Err("B record before the HFDTE date header: its day is unknown".to_owned());
        };
        if let Some(last) = self.last_tod
            && u64::from(tod) + 12 * 3_600_000 < u64::from(last)
        {
            day += 1;
            self.day = Some(day);
        }
        self.last_tod = Some(tod);
        let time = Timestamp(day * MS_PER_DAY + i64::from(tod));
        options.check_time(time)?;
        let mut fix = Fix::new(time, coord, SourceFormat::Igc);
        let mut extras = ExtrasBuilder::new();
        match validity {
            b'A' => fix.set_altitude_m(f64::from(gnss)),
            other => extras.string("fix_validity", &char::from(other).to_string()),
        }
        extras.number("pressure_altitude", f64::from(pressure));
        for ext in &self.extensions {
            let Some(text) = line.get(ext.start..ext.end.min(line.len())) else { continue };
            match (ext.code.as_str(), text.trim().parse::<f64>()) {
                ("FXA", Ok(v)) => fix.set_horizontal_accuracy_m(v),
                (code, Ok(v)) => extras.number(code, v),
                (code, Err(_)) => push_extra(&mut extras, code, text),
            }
        }
        fix.extras = extras.finish();
        Ok(fix)
    }
}

pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let mut lines = LineReader::new(reader, crate::MAX_TOKEN);
    let mut flight = Flight { day: None, last_tod: None, extensions: Vec::new() };
    while let Some(line) = lines.next_line()? {
        let number = line.number;
        if line.too_long.is_some() {
            sink.reject(Reject::new(Position::Line(number), too_long_line(), ""));
            continue;
        }
        let text = line.to_text();
        let text = text.trim_start_matches('\u{feff}');
        let outcome = match text.as_bytes().first() {
            Some(b'B') => flight.b_record(text, options).map(|fix| sink.point(fix, None)),
            Some(b'H') if text.get(2..5) == Some("DTE") => parse_date(text).map(|day| {
                flight.day = Some(day);
                flight.last_tod = None;
            }),
            Some(b'I') => parse_i_record(text).map(|ext| flight.extensions = ext),
            _ => Ok(()),
        };
        if let Err(reason) = outcome {
            sink.reject(Reject::new(Position::Line(number), reason, text));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::testing::{Collect, ms, options};

    fn run(text: &str) -> Collect {
        let mut sink = Collect::default();
        import(text.as_bytes(), &options(), &mut sink).unwrap();
        sink
    }

    #[test]
    fn fixture_flight_crosses_midnight() {
        let text = include_str!("../tests/fixtures/flight.igc");
        assert!(looks_like_igc(text));
        let s = run(text);
        let fixes = s.fixes();
        assert_eq!(fixes.len(), 4, "{:?}", s.rejects);
        let f = fixes[0];
        assert_eq!(f.time.0, ms("2001-07-16T23:59:50Z"));
        assert_eq!(f.coord.lat_e7, 521_057_167);
        assert_eq!(f.coord.lon_e7, -1_033_000);
        assert_eq!(f.altitude_m(), Some(558.0));
        assert_eq!(f.horizontal_accuracy_m(), Some(35.0));
        assert_eq!(f.extras.as_ref().unwrap().as_str(), r#"{"pressure_altitude":587,"SIU":9,"ENL":12}"#);
        // Past midnight UTC: the next day.
        assert_eq!(fixes[1].time.0, ms("2001-07-17T00:00:02Z"));
        // A 2-D fix has no GNSS altitude.
        assert_eq!(fixes[2].altitude_m(), None);
        assert_eq!(
            fixes[2].extras.as_ref().unwrap().as_str(),
            r#"{"fix_validity":"V","pressure_altitude":-12,"SIU":6,"ENL":12}"#
        );
        assert_eq!(fixes[2].horizontal_accuracy_m(), Some(50.0));
        assert_eq!(s.rejects.len(), 1, "{:?}", s.rejects);
        assert_eq!(s.rejects[0].position, Position::Line(12));
        assert!(s.rejects[0].reason.contains("latitude"), "{:?}", s.rejects);
    }

    #[test]
    fn b_record_before_the_date_is_rejected() {
        let s = run(
            "AXXXABC\nB1101355206343N00006198WA0058700558\nHFDTEDATE:160701,01\nB1101365206343N00006198WA0058700558\n",
        );
        assert_eq!(s.fixes().len(), 1);
        assert_eq!(s.fixes()[0].time.0, ms("2001-07-16T11:01:36Z"));
        assert_eq!(s.rejects.len(), 1);
        assert!(s.rejects[0].reason.contains("before the HFDTE"), "{:?}", s.rejects);
    }

    #[test]
    fn detection_needs_the_a_record_and_a_date() {
        assert!(looks_like_igc("AXCT7d4b\r\nHFDTEDATE:010124,01\r\n"));
        assert!(!looks_like_igc("A,B,C\nHFDTE010124\n"));
        assert!(!looks_like_igc("AXXX001\nB1101355206343N00006198WA0058700558\n"));
    }
}
