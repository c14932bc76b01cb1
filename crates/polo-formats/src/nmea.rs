//! NMEA 0183 logs: the sentences a GPS receiver prints, one per line, as
//! data loggers and phone apps record them.
//!
//! Two sentences carry fixes, and neither is complete on its own:
//!
//! * `RMC` has the time of day **and the date**, the position, speed over
//!   ground (knots, converted to m/s), course and magnetic variation, and a
//!   status (`A` valid, `V` no fix).
//! * `GGA` has the time of day **without a date**, the position, fix quality
//!   (0 = no fix), satellites in use, HDOP and the altitude above mean sea
//!   level.
//!
//! Sentences of one epoch share the time of day, so consecutive RMC and GGA
//! with the same time are merged into one fix: RMC's date, position, speed
//! and course with GGA's altitude, fix quality, satellites, HDOP and geoid
//! separation (extras `fix_quality`, `satellites`, `hdop`,
//! `geoid_separation`). A GGA that has no RMC partner takes the date of the
//! last RMC, moved on a day when its time of day is more than twelve hours
//! before that RMC's (the log crossed midnight UTC). GGA epochs before the
//! first RMC wait for its date (at most [`MAX_WAITING`] of them, an hour at
//! 1 Hz, so memory stays bounded) and are placed by it, a day earlier when
//! they are more than twelve hours after it in the day. A GGA that no RMC
//! ever dates cannot be placed in time: it is rejected, and a note says how
//! many were.
//!
//! Every sentence's checksum (`*hh`, XOR of the bytes between `$` and `*`) is
//! verified; a sentence whose checksum does not match is rejected, since a
//! flipped bit in a coordinate is indistinguishable from a real position. A
//! sentence without a checksum is accepted. Text before the `$` (a logger's
//! own timestamp) is ignored. Sentences that report no fix (RMC status `V`,
//! GGA quality 0) and all other sentence types (`GSV`, `GSA`, `VTG`,
//! proprietary `$P…`) hold no position and are counted as such.
//!
//! Memory: one pending epoch (two sentences), plus the bounded queue of
//! GGA epochs waiting for the first date.

use std::collections::VecDeque;
use std::io::BufRead;

use polo_domain::time::MS_PER_DAY;
use polo_domain::{Coord, Fix, SourceFormat, Timestamp};

use crate::bounded::lines::{LineReader, too_long_line};
use crate::extras::ExtrasBuilder;
use crate::xml::push_extra;
use crate::{ImportError, ImportOptions, Position, Reject, Sink};

const KNOTS_TO_M_S: f64 = 1852.0 / 3600.0;
const TWELVE_HOURS: u64 = 12 * 3_600_000;
/// GGA epochs held back until the first RMC gives their date: an hour at 1 Hz.
const MAX_WAITING: usize = 3600;

/// True when `line` looks like an NMEA sentence: `$`, a talker and type of
/// five letters or digits (or a proprietary `$P…`), then a comma.
pub(crate) fn is_sentence(line: &str) -> bool {
    let b = line.trim_start().as_bytes();
    let standard = b.len() > 6 && b[0] == b'$' && b[1..6].iter().all(u8::is_ascii_alphanumeric) && b[6] == b',';
    let proprietary = b.len() > 2 && b[0] == b'$' && b[1] == b'P' && b.contains(&b',');
    standard || proprietary
}

/// A sentence's fields after its checksum was verified.
fn checked_fields(sentence: &str) -> Result<Vec<&str>, String> {
    let body = sentence.strip_prefix('$').unwrap_or(sentence);
    let (body, checksum) = match body.rsplit_once('*') {
        Some((body, hex)) => (body, Some(hex.trim())),
        None => (body.trim_end(), None),
    };
    if let Some(hex) = checksum {
        let stated = u8::from_str_radix(hex, 16).map_err(|_| format!("checksum {hex:?} is not two hex digits"))?;
        let computed = body.bytes().fold(0u8, |acc, b| acc ^ b);
        if stated != computed {
            return Err(format!("checksum mismatch: the sentence says {stated:02X}, its bytes give {computed:02X}"));
        }
    }
    Ok(body.split(',').collect())
}

/// `hhmmss[.sss]` → milliseconds of the day.
fn time_of_day(text: &str) -> Result<u32, String> {
    let bad = || format!("time {text:?} is not hhmmss");
    if text.len() < 6 || !text.as_bytes()[..6].is_ascii() {
        return Err(bad());
    }
    let digits = |s: &str| s.parse::<u32>().ok().filter(|_| s.bytes().all(|b| b.is_ascii_digit()));
    let (h, m, s) = (digits(&text[0..2]), digits(&text[2..4]), digits(&text[4..6]));
    let (Some(h), Some(m), Some(s)) = (h, m, s) else { return Err(bad()) };
    if h > 23 || m > 59 || s > 60 {
        return Err(bad());
    }
    let fraction = match &text[6..] {
        "" => 0,
        f => {
            let f = f.strip_prefix('.').ok_or_else(bad)?;
            let f: f64 = format!("0.{f}").parse().map_err(|_| bad())?;
            // In [0, 1) after the check above.
            #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
            let ms = (f * 1000.0).round() as u32;
            ms.min(999)
        }
    };
    Ok(((h * 60 + m) * 60 + s.min(59)) * 1000 + fraction)
}

/// `ddmmyy` → days since the Unix epoch. Two-digit years from 80 are 19xx.
fn date_days(text: &str) -> Result<i64, String> {
    let bad = || format!("date {text:?} is not ddmmyy");
    if text.len() != 6 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    let n = |r: std::ops::Range<usize>| text[r].parse::<u32>().map_err(|_| bad());
    let (d, m, y) = (n(0..2)?, n(2..4)?, n(4..6)?);
    // Two digits, so the cast is exact.
    #[allow(clippy::cast_possible_wrap)]
    let year = if y >= 80 { 1900 + y as i32 } else { 2000 + y as i32 };
    Timestamp::from_civil(year, m, d, 0, 0, 0, 0).map(|t| t.0 / MS_PER_DAY).ok_or_else(bad)
}

/// `ddmm.mmmm` / `dddmm.mmmm` with its hemisphere letter → signed degrees.
fn angle(value: &str, hemisphere: &str, name: &str) -> Result<f64, String> {
    let bad = || format!("{name} {value:?} {hemisphere:?} is not (d)ddmm.mmmm with N/S/E/W");
    let dot = value.find('.').unwrap_or(value.len());
    if dot < 2 {
        return Err(bad());
    }
    // `get`: a byte before the dot may sit inside a multi-byte character.
    let (Some(whole), Some(rest)) = (value.get(..dot - 2), value.get(dot - 2..)) else { return Err(bad()) };
    let degrees: f64 = if dot == 2 { 0.0 } else { whole.parse().map_err(|_| bad())? };
    let minutes: f64 = rest.parse().map_err(|_| bad())?;
    if !(0.0..60.0).contains(&minutes) {
        return Err(bad());
    }
    let v = degrees + minutes / 60.0;
    match hemisphere {
        "N" | "E" => Ok(v),
        "S" | "W" => Ok(-v),
        _ => Err(bad()),
    }
}

fn coord(f: &[&str], at: usize) -> Result<Coord, String> {
    let get = |i: usize| f.get(at + i).copied().unwrap_or("");
    let lat = angle(get(0), get(1), "latitude")?;
    let lon = angle(get(2), get(3), "longitude")?;
    Coord::from_degrees(lat, lon).map_err(|e| format!("lat/lon: {e}"))
}

fn optional_number(f: &[&str], i: usize, name: &str) -> Result<Option<f64>, String> {
    match f.get(i).map(|s| s.trim()).filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t) => t.parse::<f64>().map(Some).map_err(|_| format!("{name} {t:?} is not a number")),
    }
}

struct Rmc {
    days: i64,
    coord: Coord,
    speed_knots: Option<f64>,
    course: Option<f64>,
    magnetic_variation: Option<f64>,
    mode: Option<String>,
}

struct Gga {
    coord: Coord,
    quality: String,
    satellites: Option<String>,
    hdop: Option<String>,
    altitude: Option<f64>,
    geoid_separation: Option<String>,
}

/// What one sentence said.
enum Sentence {
    Rmc(u32, Rmc),
    Gga(u32, Gga),
    NoFix,
    Other,
}

fn parse_sentence(fields: &[&str]) -> Result<Sentence, String> {
    let kind = fields.first().copied().unwrap_or("");
    if kind.starts_with('P') || kind.len() != 5 {
        return Ok(Sentence::Other);
    }
    let get = |i: usize| fields.get(i).map_or("", |s| s.trim());
    match kind.get(2..).unwrap_or("") {
        "RMC" => {
            if get(2) != "A" {
                return Ok(Sentence::NoFix);
            }
            let tod = time_of_day(get(1))?;
            let coord = coord(fields, 3)?;
            let days = date_days(get(9))?;
            let magnetic_variation =
                optional_number(fields, 10, "magnetic variation")?.map(|v| if get(11) == "W" { -v } else { v });
            Ok(Sentence::Rmc(
                tod,
                Rmc {
                    days,
                    coord,
                    speed_knots: optional_number(fields, 7, "speed")?,
                    course: optional_number(fields, 8, "course")?,
                    magnetic_variation,
                    mode: Some(get(12)).filter(|m| !m.is_empty()).map(str::to_owned),
                },
            ))
        }
        "GGA" => {
            let quality = get(6);
            if quality.is_empty() || quality == "0" {
                return Ok(Sentence::NoFix);
            }
            let tod = time_of_day(get(1))?;
            let coord = coord(fields, 2)?;
            let altitude = optional_number(fields, 9, "altitude")?;
            let nonempty = |i: usize| Some(get(i)).filter(|s| !s.is_empty()).map(str::to_owned);
            Ok(Sentence::Gga(
                tod,
                Gga {
                    coord,
                    quality: quality.to_owned(),
                    satellites: nonempty(7),
                    hdop: nonempty(8),
                    altitude,
                    geoid_separation: nonempty(11),
                },
            ))
        }
        _ => Ok(Sentence::Other),
    }
}

/// The sentences of the epoch being read.
struct Epoch {
    tod: u32,
    line: u64,
    raw: String,
    rmc: Option<Rmc>,
    gga: Option<Gga>,
}

/// State carried across the whole log.
#[derive(Default)]
struct Log {
    pending: Option<Epoch>,
    /// GGA epochs before the first RMC, waiting for its date (at most [`MAX_WAITING`]).
    waiting: VecDeque<Epoch>,
    /// Day and time of day of the last RMC, for GGA without a partner.
    last_date: Option<(i64, u32)>,
    undated: u64,
}

impl Log {
    fn sentence(&mut self, tod: u32, line: u64, raw: &str, rmc: Option<Rmc>, gga: Option<Gga>, out: Out<'_>) {
        if let Some(p) = self.pending.as_mut()
            && p.tod == tod
            && (rmc.is_none() || p.rmc.is_none())
            && (gga.is_none() || p.gga.is_none())
        {
            p.rmc = p.rmc.take().or(rmc);
            p.gga = p.gga.take().or(gga);
            return;
        }
        self.flush(out.0, out.1);
        self.pending = Some(Epoch { tod, line, raw: raw.to_owned(), rmc, gga });
    }

    fn flush(&mut self, options: &ImportOptions, sink: &mut dyn Sink) {
        let Some(epoch) = self.pending.take() else { return };
        let days = match (&epoch.rmc, self.last_date) {
            (Some(rmc), _) => {
                // The first date of the log: place the GGA epochs that waited for it.
                if self.last_date.is_none() {
                    while let Some(waiting) = self.waiting.pop_front() {
                        let day = if u64::from(waiting.tod) > u64::from(epoch.tod) + TWELVE_HOURS {
                            rmc.days - 1
                        } else {
                            rmc.days
                        };
                        Self::emit(waiting, day, options, sink);
                    }
                }
                rmc.days
            }
            (None, Some((days, last_tod))) => {
                if u64::from(epoch.tod) + TWELVE_HOURS < u64::from(last_tod) {
                    days + 1
                } else {
                    days
                }
            }
            (None, None) => {
                if self.waiting.len() == MAX_WAITING
                    && let Some(oldest) = self.waiting.pop_front()
                {
                    self.undated += 1;
                    let reason = format!(
                        "GGA sentence without a date: more than {MAX_WAITING} GGA sentences came before the first RMC"
                    );
                    sink.reject(Reject::new(Position::Line(oldest.line), reason, &oldest.raw));
                }
                self.waiting.push_back(epoch);
                return;
            }
        };
        self.last_date = Some((days, epoch.tod));
        Self::emit(epoch, days, options, sink);
    }

    /// Rejects the GGA epochs still waiting for a date at the end of the log.
    fn finish(&mut self, sink: &mut dyn Sink) {
        for waiting in self.waiting.drain(..) {
            self.undated += 1;
            let reason = "GGA sentence without a date: no RMC sentence in the log gave the day";
            sink.reject(Reject::new(Position::Line(waiting.line), reason, &waiting.raw));
        }
    }

    fn emit(epoch: Epoch, days: i64, options: &ImportOptions, sink: &mut dyn Sink) {
        let reject = |sink: &mut dyn Sink, reason: String| {
            sink.reject(Reject::new(Position::Line(epoch.line), reason, &epoch.raw));
        };
        let time = Timestamp(days * MS_PER_DAY + i64::from(epoch.tod));
        if let Err(why) = options.check_time(time) {
            return reject(sink, why);
        }
        let coord = epoch.rmc.as_ref().map_or_else(|| epoch.gga.as_ref().map(|g| g.coord), |r| Some(r.coord));
        let Some(coord) = coord else { return };
        let mut fix = Fix::new(time, coord, SourceFormat::Nmea);
        let mut extras = ExtrasBuilder::new();
        if let Some(rmc) = &epoch.rmc {
            if let Some(v) = rmc.speed_knots {
                fix.set_speed_m_s(v * KNOTS_TO_M_S);
            }
            if let Some(v) = rmc.course {
                fix.set_course_deg(v);
            }
            if let Some(v) = rmc.magnetic_variation {
                extras.number("magnetic_variation", v);
            }
            if let Some(mode) = &rmc.mode {
                extras.string("mode", mode);
            }
        }
        if let Some(gga) = &epoch.gga {
            if let Some(v) = gga.altitude {
                fix.set_altitude_m(v);
            }
            let fields = [
                ("fix_quality", Some(&gga.quality)),
                ("satellites", gga.satellites.as_ref()),
                ("hdop", gga.hdop.as_ref()),
                ("geoid_separation", gga.geoid_separation.as_ref()),
            ];
            for (key, value) in fields {
                // Receivers zero-pad (`08` satellites): numbers go in as numbers.
                match value.map(|v| (v, v.parse::<f64>())) {
                    Some((_, Ok(n))) if n.is_finite() => extras.number(key, n),
                    Some((v, _)) => push_extra(&mut extras, key, v),
                    None => {}
                }
            }
        }
        fix.extras = extras.finish();
        sink.point(fix, None);
    }
}

type Out<'a> = (&'a ImportOptions, &'a mut dyn Sink);

pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let mut lines = LineReader::new(reader, crate::MAX_TOKEN);
    let mut log = Log::default();
    while let Some(line) = lines.next_line()? {
        let number = line.number;
        if line.too_long.is_some() {
            sink.reject(Reject::new(Position::Line(number), too_long_line(), ""));
            continue;
        }
        let text = line.to_text();
        let text = &*text;
        if text.trim().is_empty() {
            continue;
        }
        let Some(dollar) = text.find('$') else {
            sink.reject(Reject::new(Position::Line(number), "not an NMEA sentence: no '$'", text));
            continue;
        };
        let sentence = text[dollar..].trim_end();
        let parsed = checked_fields(sentence).and_then(|fields| parse_sentence(&fields));
        match parsed {
            Ok(Sentence::Rmc(tod, rmc)) => log.sentence(tod, number, sentence, Some(rmc), None, (options, sink)),
            Ok(Sentence::Gga(tod, gga)) => log.sentence(tod, number, sentence, None, Some(gga), (options, sink)),
            Ok(Sentence::NoFix) => sink.not_location("NMEA sentence reporting no fix (RMC status V, GGA quality 0)"),
            Ok(Sentence::Other) => sink.not_location("NMEA sentence without a position (GSV, GSA, VTG, proprietary…)"),
            Err(reason) => sink.reject(Reject::new(Position::Line(number), reason, sentence)),
        }
    }
    log.flush(options, sink);
    log.finish(sink);
    if log.undated > 0 {
        sink.note(&format!(
            "{} GGA sentences could not be placed in time: GGA has no date, and no RMC sentence gave it \
             (the first {MAX_WAITING} GGA before an RMC take its date)",
            log.undated
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::testing::{Collect, ms, options};

    /// Appends the right checksum to a sentence body.
    fn sentence(body: &str) -> String {
        let sum = body.bytes().fold(0u8, |a, b| a ^ b);
        format!("${body}*{sum:02X}")
    }

    fn run(text: &str) -> Collect {
        let mut sink = Collect::default();
        import(text.as_bytes(), &options(), &mut sink).unwrap();
        sink
    }

    #[test]
    fn fixture_log_merges_epochs_and_checks_checksums() {
        let s = run(include_str!("../tests/fixtures/log.nmea"));
        let fixes = s.fixes();
        assert_eq!(fixes.len(), 3, "{:?}", s.rejects);
        let f = fixes[0];
        assert_eq!(f.time.0, ms("1994-03-23T12:35:19Z"));
        assert_eq!(f.coord.lat_e7, 481_173_000);
        assert_eq!(f.coord.lon_e7, 115_166_667);
        assert_eq!(f.altitude_m(), Some(545.4));
        assert_eq!(f.speed_m_s(), Some(11.52));
        assert_eq!(f.course_deg(), Some(84.4));
        assert_eq!(
            f.extras.as_ref().unwrap().as_str(),
            r#"{"magnetic_variation":-3.1,"fix_quality":1,"satellites":8,"hdop":0.9,"geoid_separation":46.9}"#
        );
        // The GGA-only epoch takes the RMC date.
        assert_eq!(fixes[1].time.0, ms("1994-03-23T12:35:20Z"));
        assert_eq!(fixes[1].speed_m_s(), None);
        assert_eq!(s.rejects.len(), 1, "{:?}", s.rejects);
        assert!(s.rejects[0].reason.contains("checksum mismatch"), "{:?}", s.rejects);
        assert_eq!(s.rejects[0].position, Position::Line(6));
    }

    #[test]
    fn a_flipped_digit_fails_the_checksum() {
        let good = sentence("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W");
        let bad = good.replacen("4807.038", "4807.039", 1);
        let s = run(&format!("{good}\n{bad}\n"));
        assert_eq!(s.fixes().len(), 1);
        assert_eq!(s.rejects.len(), 1);
        assert_eq!(s.rejects[0].position, Position::Line(2));
        assert!(s.rejects[0].reason.starts_with("checksum mismatch"), "{}", s.rejects[0].reason);
    }

    #[test]
    fn gga_after_midnight_moves_to_the_next_day() {
        let text = [
            sentence("GPRMC,235959,A,4807.038,N,01131.000,E,0,0,311224,,"),
            sentence("GPGGA,000001,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
        ]
        .join("\r\n");
        let s = run(&text);
        let fixes = s.fixes();
        assert_eq!(fixes.len(), 2);
        assert_eq!(fixes[0].time.0, ms("2024-12-31T23:59:59Z"));
        assert_eq!(fixes[1].time.0, ms("2025-01-01T00:00:01Z"));
    }

    #[test]
    fn gga_before_the_first_rmc_takes_its_date_even_across_midnight() {
        let text = [
            sentence("GPGGA,235958,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            sentence("GPGGA,235959,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            sentence("GPGGA,000000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            sentence("GPRMC,000000,A,4807.038,N,01131.000,E,0,0,010125,,"),
        ]
        .join("\n");
        let s = run(&text);
        let times: Vec<i64> = s.fixes().iter().map(|f| f.time.0).collect();
        assert_eq!(
            times,
            [ms("2024-12-31T23:59:58Z"), ms("2024-12-31T23:59:59Z"), ms("2025-01-01T00:00:00Z")],
            "{:?}",
            s.rejects
        );
        // The last GGA and the RMC are one epoch: altitude from GGA.
        assert_eq!(s.fixes()[2].altitude_m(), Some(545.4));
    }

    #[test]
    fn gga_before_any_rmc_is_rejected_and_counted() {
        let text = [
            sentence("GPGGA,120000,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,"),
            sentence("GPGGA,120001,4807.038,N,01131.000,E,0,00,,,M,,M,,"),
            sentence("GPGSV,1,1,01,01,40,083,46"),
            sentence("GPRMC,120002,V,,,,,,,010124,,"),
        ]
        .join("\n");
        let s = run(&text);
        assert!(s.fixes().is_empty());
        assert_eq!(s.rejects.len(), 1);
        assert!(s.rejects[0].reason.contains("no RMC sentence in the log"), "{}", s.rejects[0].reason);
        assert_eq!(s.rejects[0].position, Position::Line(1));
    }

    #[test]
    fn a_line_over_the_cap_is_rejected_without_losing_the_next() {
        let good = sentence("GPRMC,123519,A,4807.038,N,01131.000,E,022.4,084.4,230394,003.1,W");
        let text = format!(
            "{good}\n${}\n{}\n",
            "A".repeat(crate::MAX_TOKEN + 10),
            sentence("GPRMC,123520,A,4807.038,N,01131.000,E,0,0,230394,,")
        );
        let s = run(&text);
        assert_eq!(s.fixes().len(), 2);
        assert_eq!(s.rejects.len(), 1);
        assert_eq!(s.rejects[0].position, Position::Line(2));
        assert!(s.rejects[0].reason.contains("longer than"), "{}", s.rejects[0].reason);
    }

    #[test]
    fn parsing_pieces() {
        assert_eq!(time_of_day("123519"), Ok(45_319_000));
        assert_eq!(time_of_day("123519.25"), Ok(45_319_250));
        assert!(time_of_day("12:35:19").is_err());
        assert_eq!(date_days("010100"), Ok(10_957));
        assert_eq!(date_days("010180"), Ok(3652));
        assert!(date_days("320124").is_err());
        assert!((angle("01131.000", "W", "lon").unwrap() + 11.516_666).abs() < 1e-5);
        assert!(angle("4807.038", "X", "lat").is_err());
        assert!(is_sentence("$GPRMC,1"));
        assert!(is_sentence("$PGRME,15.0,M"));
        assert!(!is_sentence("lat,lon"));
    }
}
