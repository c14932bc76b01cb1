//! `.plt` track files: Microsoft Research's GeoLife data set and
//! OziExplorer track logs, which GeoLife's format copies.
//!
//! Layout: six header lines, then one point per line,
//! `lat,lon,code,altitude,days,date,time`:
//!
//! * Line 1 names the flavour: `Geolife trajectory` or `OziExplorer Track
//!   Point File Version 2.x`. Line 2 is the datum (`WGS 84`), line 3 the
//!   altitude unit (`Altitude is in Feet`; `Meters` is honoured), lines 4–6
//!   are reserved, track properties and a point count; they are not needed.
//! * `altitude` is in **feet**; `-777` means "no altitude" (both the GeoLife
//!   user guide and OziExplorer's file format page say so).
//! * `days` is the time as an OLE Automation date: days since 1899-12-30,
//!   with the time of day as the fraction (`39744.2451967593` →
//!   2008-10-23T05:53:05Z), rounded to the millisecond. GeoLife's times are
//!   GMT; OziExplorer's carry no zone, so they are read as UTC and flagged
//!   `zone_assumed`. The `date`/`time` text columns repeat the same instant
//!   and are not needed.
//! * `code` is 1 on the first point of a new track segment (OziExplorer);
//!   that is kept as extras `segment_start: true`.
//!
//! A datum other than WGS 84 is reported as a note: the coordinates are
//! read as WGS 84, which is off by up to a few hundred metres for local datums.
//! A point line that cannot be read is rejected with its line number.

use std::io::BufRead;

use polo_domain::{Coord, Fix, SourceFormat, Timestamp};

use crate::bounded::lines::{LineReader, too_long_line};
use crate::extras::ExtrasBuilder;
use crate::{Format, ImportError, ImportOptions, Position, Reject, Sink};

/// Lines before the first point.
const HEADER_LINES: u64 = 6;
/// Days from the OLE Automation epoch (1899-12-30) to the Unix epoch.
const OLE_UNIX_EPOCH_DAYS: f64 = 25_569.0;
/// GeoLife's and OziExplorer's "no altitude" value.
const NO_ALTITUDE: f64 = -777.0;
const FEET: f64 = 0.3048;

/// The two writers of `.plt` files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Flavour {
    Geolife,
    Ozi,
}

impl Flavour {
    /// The flavour named by a file's first line.
    pub(crate) fn of_first_line(line: &str) -> Option<Self> {
        let line = line.trim_start_matches('\u{feff}').trim();
        if line.eq_ignore_ascii_case("Geolife trajectory") {
            Some(Self::Geolife)
        } else if line.starts_with("OziExplorer Track Point File") {
            Some(Self::Ozi)
        } else {
            None
        }
    }

    fn format(self) -> Format {
        match self {
            Self::Geolife => Format::GeolifePlt,
            Self::Ozi => Format::OziPlt,
        }
    }
}

/// OLE Automation days → milliseconds since the Unix epoch.
///
/// `decimals` is how many fraction digits the file wrote: OziExplorer writes
/// 7 (a resolution of 8.64 ms), GeoLife 10. Both record whole seconds, so a
/// time within one resolution step of a whole second is that second
/// (`39307.3279977` is 07:52:19, not 07:52:19.001).
fn ole_days_to_time(days: f64, decimals: usize) -> Option<Timestamp> {
    if !days.is_finite() || days <= 0.0 || days > 1e6 {
        return None;
    }
    let ms = (days - OLE_UNIX_EPOCH_DAYS) * 86_400_000.0;
    let step = 86_400_000.0 / 10f64.powi(i32::try_from(decimals.min(12)).unwrap_or(12));
    let second = (ms / 1000.0).round() * 1000.0;
    let ms = if (ms - second).abs() <= step { second } else { ms.round() };
    // Bounded by the range check above.
    #[allow(clippy::cast_possible_truncation)]
    Some(Timestamp(ms as i64))
}

fn field<'a>(fields: &[&'a str], index: usize, name: &str) -> Result<&'a str, String> {
    fields
        .get(index)
        .map(|f| f.trim())
        .filter(|f| !f.is_empty())
        .ok_or_else(|| format!("no {name} (field {})", index + 1))
}

fn number(fields: &[&str], index: usize, name: &str) -> Result<f64, String> {
    let text = field(fields, index, name)?;
    text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| format!("{name} {text:?} is not a number"))
}

fn read_point(line: &str, flavour: Flavour, feet: bool, options: &ImportOptions) -> Result<Fix, String> {
    let fields: Vec<&str> = line.split(',').collect();
    let lat = number(&fields, 0, "latitude")?;
    let lon = number(&fields, 1, "longitude")?;
    let coord = Coord::from_degrees(lat, lon).map_err(|e| format!("lat/lon: {e}"))?;
    let days = number(&fields, 4, "time")?;
    let decimals = field(&fields, 4, "time")?.split_once('.').map_or(0, |(_, f)| f.len());
    let time =
        ole_days_to_time(days, decimals).ok_or_else(|| format!("time {days} is not a date (days since 1899-12-30)"))?;
    options.check_time(time)?;
    let mut fix = Fix::new(time, coord, SourceFormat::Plt);
    fix.zone_assumed = flavour == Flavour::Ozi;
    if let Some(text) = fields.get(3).map(|f| f.trim()).filter(|f| !f.is_empty()) {
        let altitude = text.parse::<f64>().map_err(|_| format!("altitude {text:?} is not a number"))?;
        if altitude != NO_ALTITUDE {
            fix.set_altitude_m(if feet { altitude * FEET } else { altitude });
        }
    }
    if fields.get(2).map(|f| f.trim()) == Some("1") {
        let mut extras = ExtrasBuilder::new();
        extras.raw("segment_start", "true");
        fix.extras = extras.finish();
    }
    Ok(fix)
}

/// Imports a `.plt` file whose first line named `flavour`.
pub(crate) fn import<R: BufRead>(
    reader: R,
    options: &ImportOptions,
    sink: &mut dyn Sink,
) -> Result<Format, ImportError> {
    let mut lines = LineReader::new(reader, crate::MAX_TOKEN);
    let mut flavour = None;
    let mut feet = true;
    while let Some(line) = lines.next_line()? {
        let number = line.number;
        if line.too_long.is_some() {
            sink.reject(Reject::new(Position::Line(number), too_long_line(), ""));
            continue;
        }
        let text = line.to_text();
        let text = &*text;
        if number <= HEADER_LINES {
            match number {
                1 => {
                    flavour = Flavour::of_first_line(text);
                    if flavour.is_none() {
                        return Err(ImportError::Unrecognised { hint: format!("not a .plt header: {text:?}") });
                    }
                }
                2 if !text.trim().to_ascii_uppercase().replace(' ', "").starts_with("WGS84") => {
                    sink.note(&format!("datum {:?} is not WGS 84: coordinates read as WGS 84", text.trim()));
                }
                3 => {
                    feet = !text.to_ascii_lowercase().contains("meter") && !text.to_ascii_lowercase().contains("metre")
                }
                _ => {}
            }
            continue;
        }
        if text.trim().is_empty() {
            continue;
        }
        let flavour = flavour.unwrap_or(Flavour::Geolife);
        match read_point(text, flavour, feet, options) {
            Ok(fix) => sink.point(fix, None),
            Err(reason) => sink.reject(Reject::new(Position::Line(number), reason, text)),
        }
    }
    let flavour = flavour.ok_or_else(|| ImportError::Unrecognised { hint: "an empty .plt file".to_owned() })?;
    if flavour == Flavour::Ozi {
        sink.note("OziExplorer times carry no time zone: read as UTC");
    }
    Ok(flavour.format())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::testing::{Collect, ms, options};

    #[derive(Default)]
    struct Noting {
        inner: Collect,
        notes: Vec<String>,
    }

    impl Sink for Noting {
        fn point(&mut self, fix: Fix, device: Option<&str>) {
            self.inner.point(fix, device);
        }
        fn interval(&mut self, interval: polo_domain::Interval, device: Option<&str>) {
            self.inner.interval(interval, device);
        }
        fn reject(&mut self, reject: Reject) {
            self.inner.reject(reject);
        }
        fn note(&mut self, note: &str) {
            self.notes.push(note.to_owned());
        }
    }

    fn run(text: &str) -> (Format, Noting) {
        let mut sink = Noting::default();
        let format = import(text.as_bytes(), &options(), &mut sink).unwrap();
        (format, sink)
    }

    #[test]
    fn geolife_fixture_feet_sentinel_and_ole_dates() {
        let (format, s) = run(include_str!("../tests/fixtures/geolife.plt"));
        assert_eq!(format, Format::GeolifePlt);
        let fixes = s.inner.fixes();
        assert_eq!(fixes.len(), 3, "{:?}", s.inner.rejects);
        assert_eq!(fixes[0].time.0, ms("2008-10-23T05:53:05Z"));
        assert!(!fixes[0].zone_assumed);
        assert_eq!((fixes[0].coord.lat_e7, fixes[0].coord.lon_e7), (399_847_020, 1_163_184_170));
        // 492 feet.
        assert_eq!(fixes[0].altitude_m(), Some(149.96));
        // -777 is "no altitude", not 237 m below sea level.
        assert_eq!(fixes[1].altitude_m(), None);
        assert_eq!(fixes[2].time.0, ms("2008-10-23T05:53:15Z"));
        assert_eq!(s.inner.rejects.len(), 1);
        assert_eq!(s.inner.rejects[0].position, Position::Line(10));
        assert!(s.inner.rejects[0].reason.contains("latitude"), "{:?}", s.inner.rejects);
        assert!(s.notes.is_empty(), "{:?}", s.notes);
    }

    #[test]
    fn ozi_track_segments_assumed_zone_and_datum_note() {
        let (format, s) = run(include_str!("../tests/fixtures/ozi.plt"));
        assert_eq!(format, Format::OziPlt);
        let fixes = s.inner.fixes();
        assert_eq!(fixes.len(), 2, "{:?}", s.inner.rejects);
        assert!(fixes[0].zone_assumed);
        assert_eq!(fixes[0].time.0, ms("2024-05-02T12:00:00Z"));
        assert_eq!(fixes[1].time.0, ms("2024-05-02T12:00:05Z"));
        assert_eq!(fixes[0].extras.as_ref().unwrap().as_str(), r#"{"segment_start":true}"#);
        assert_eq!(fixes[1].extras, None);
        assert_eq!(fixes[1].altitude_m(), None);
        assert!(s.notes.iter().any(|n| n.contains("no time zone")), "{:?}", s.notes);
        assert!(s.notes.iter().any(|n| n.contains("Pulkovo")), "{:?}", s.notes);
        assert_eq!(s.inner.rejects.len(), 1);
        assert_eq!(s.inner.rejects[0].position, Position::Line(9));
        assert!(s.inner.rejects[0].reason.contains("no time (field 5)"), "{:?}", s.inner.rejects);
    }

    #[test]
    fn altitude_in_metres_when_the_header_says_so() {
        let text = "Geolife trajectory\nWGS 84\nAltitude is in Meters\nReserved 3\n0,2,255,My Track,0,0,2,8421376\n0\n\
                    39.9847,116.3184,0,100,39744.2451967593,2008-10-23,05:53:05\n";
        let (_, s) = run(text);
        assert_eq!(s.inner.fixes()[0].altitude_m(), Some(100.0));
    }

    #[test]
    fn ole_date_conversion() {
        assert_eq!(ole_days_to_time(25_569.0, 1), Some(Timestamp(0)));
        assert_eq!(ole_days_to_time(25_569.5, 1), Some(Timestamp(43_200_000)));
        assert_eq!(ole_days_to_time(0.0, 1), None);
        // OziExplorer's 7 digits land a few ms off the second they recorded.
        assert_eq!(ole_days_to_time(39_307.327_997_7, 7).unwrap().0, ms("2007-08-13T07:52:19Z"));
        assert_eq!(ole_days_to_time(39_307.328_113_4, 7).unwrap().0, ms("2007-08-13T07:52:29Z"));
        // With enough digits a real fraction survives: 12:00:00.500.
        assert_eq!(ole_days_to_time(45_414.500_005_787_04, 11).unwrap().0, ms("2024-05-02T12:00:00.5Z"));
    }
}
