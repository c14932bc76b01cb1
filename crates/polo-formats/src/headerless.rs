//! Headerless numeric text: one fix per line and no header naming the
//! columns, such as the Mopsi data set's `lat lon epoch_ms alt` or a
//! logger's `lat,lon,time`.
//!
//! The columns are guessed from the first lines ([`SAMPLE_LINES`]) and the
//! guess is **said out loud**: the import reports a note such as
//! `columns assumed (space-separated): lat, lon, epoch milliseconds,
//! altitude m`, so a wrong guess is visible instead of silently misplacing
//! every point. The rules, applied to the sampled values:
//!
//! * Separator: tab, `,`, `;` or runs of spaces, whichever splits the first
//!   line and at least three quarters of the sample into the same number
//!   (≥ 3) of fields; the values are judged on those lines.
//! * Time: the first column whose every value is an ISO-8601 time, else the
//!   first numeric column whose values are all epoch seconds (4.7e8–1e11,
//!   i.e. 1985 onwards) or all epoch milliseconds (4.7e11–1e14).
//! * Position: the first two remaining numeric columns within ±180. The one
//!   that stays within ±90 is the latitude; when both do, the order
//!   `lat, lon` is assumed (the common one for text; GeoJSON-style `lon,
//!   lat` text is rarer) and the note says the order was assumed.
//! * Altitude: the next numeric column, when all its values lie between
//!   −500 and 10,000 m. Any further column goes to the extras as `colN`
//!   (1-based).
//!
//! Every line after the sample is read with the same columns; a line that
//! does not fit them is rejected with its line number, and so is a line
//! over the length cap ([`crate::bounded::lines`]).

use std::io::BufRead;

use polo_domain::time::parse_timestamp;
use polo_domain::{Coord, Fix, SourceFormat, Timestamp};

use crate::bounded::lines::{LineReader, too_long_line};
use crate::extras::ExtrasBuilder;
use crate::xml::push_extra;
use crate::{ImportError, ImportOptions, Position, Reject, Sink};

/// Lines sampled to guess the columns.
pub(crate) const SAMPLE_LINES: usize = 32;
/// Bytes of sampled lines kept at most (the sample is replayed after the guess).
const SAMPLE_BYTES: usize = 64 * 1024;

/// How fields are separated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Separator {
    Tab,
    Comma,
    Semicolon,
    Spaces,
}

impl Separator {
    fn split(self, line: &str) -> Vec<&str> {
        match self {
            Self::Tab => line.split('\t').map(str::trim).collect(),
            Self::Comma => line.split(',').map(str::trim).collect(),
            Self::Semicolon => line.split(';').map(str::trim).collect(),
            Self::Spaces => line.split_whitespace().collect(),
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Self::Tab => "tab-separated",
            Self::Comma => "comma-separated",
            Self::Semicolon => "semicolon-separated",
            Self::Spaces => "space-separated",
        }
    }
}

/// What a column holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Column {
    Lat,
    Lon,
    EpochSeconds,
    EpochMillis,
    IsoTime,
    Altitude,
    Extra,
}

impl Column {
    fn describe(self) -> &'static str {
        match self {
            Self::Lat => "lat",
            Self::Lon => "lon",
            Self::EpochSeconds => "epoch seconds",
            Self::EpochMillis => "epoch milliseconds",
            Self::IsoTime => "ISO time",
            Self::Altitude => "altitude m",
            Self::Extra => "extra",
        }
    }
}

/// The guessed layout of a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Layout {
    separator: Separator,
    columns: Vec<Column>,
    order_assumed: bool,
}

impl Layout {
    /// The note shown in the import summary.
    pub(crate) fn note(&self) -> String {
        let mut names: Vec<String> = Vec::with_capacity(self.columns.len());
        for (i, c) in self.columns.iter().enumerate() {
            names.push(match c {
                Column::Extra => format!("col{} (kept in extras)", i + 1),
                c => c.describe().to_owned(),
            });
        }
        let mut note = format!("columns assumed ({}): {}", self.separator.describe(), names.join(", "));
        if self.order_assumed {
            note.push_str("; both coordinate columns stay within ±90°, so latitude-first order was assumed");
        }
        note
    }
}

/// Numeric statistics of one column over the sample.
#[derive(Default, Clone, Copy)]
struct Stats {
    numeric: bool,
    iso: bool,
    min: f64,
    max: f64,
    max_abs: f64,
}

/// True for text that is an ISO-like time rather than a number.
fn is_iso_time(text: &str) -> bool {
    text.contains(['-', ':', 'T']) && text.parse::<f64>().is_err() && parse_timestamp(text).is_ok()
}

/// Guesses the layout from sample lines (blank lines ignored).
pub(crate) fn guess<'a>(lines: impl IntoIterator<Item = &'a str>) -> Option<Layout> {
    let lines: Vec<&str> = lines.into_iter().map(str::trim).filter(|l| !l.is_empty()).take(SAMPLE_LINES).collect();
    let first = *lines.first()?;
    // A separator must split the first line into 3 or more fields and at
    // least three quarters of the sample into as many: one damaged line
    // must not hide the layout, but a ragged file has none.
    let fits = |s: Separator, n: usize| lines.iter().filter(|l| s.split(l).len() == n).count() * 4 >= lines.len() * 3;
    let separator =
        [Separator::Tab, Separator::Comma, Separator::Semicolon, Separator::Spaces].into_iter().find(|&s| {
            let n = s.split(first).len();
            n >= 3 && fits(s, n)
        })?;
    let width = separator.split(first).len();
    let mut stats = vec![Stats { numeric: true, iso: true, min: f64::MAX, max: f64::MIN, max_abs: 0.0 }; width];
    for line in lines.iter().filter(|l| separator.split(l).len() == width) {
        for (s, field) in stats.iter_mut().zip(separator.split(line)) {
            match field.parse::<f64>().ok().filter(|v| v.is_finite()) {
                Some(v) => {
                    s.min = s.min.min(v);
                    s.max = s.max.max(v);
                    s.max_abs = s.max_abs.max(v.abs());
                    s.iso = false;
                }
                None => {
                    s.numeric = false;
                    s.iso = s.iso && is_iso_time(field);
                }
            }
        }
    }
    let mut columns = vec![Column::Extra; width];
    let time = stats.iter().position(|s| s.iso).map(|i| (i, Column::IsoTime)).or_else(|| {
        stats.iter().enumerate().find_map(|(i, s)| {
            if !s.numeric {
                None
            } else if s.min >= 4.7e8 && s.max < 1e11 {
                Some((i, Column::EpochSeconds))
            } else if s.min >= 4.7e11 && s.max < 1e14 {
                Some((i, Column::EpochMillis))
            } else {
                None
            }
        })
    })?;
    columns[time.0] = time.1;
    let time_column = time.0;
    let mut free = (0..width).filter(|&i| i != time_column && stats[i].numeric);
    let a = free.next()?;
    let b = free.next()?;
    let (sa, sb) = (stats[a], stats[b]);
    if sa.max_abs > 180.0 || sb.max_abs > 180.0 {
        return None;
    }
    let order_assumed = sa.max_abs <= 90.0 && sb.max_abs <= 90.0;
    let (lat, lon) = match (sa.max_abs <= 90.0, sb.max_abs <= 90.0) {
        (true, _) => (a, b),
        (false, true) => (b, a),
        (false, false) => return None,
    };
    columns[lat] = Column::Lat;
    columns[lon] = Column::Lon;
    if let Some(alt) = free.next()
        && stats[alt].min >= -500.0
        && stats[alt].max <= 10_000.0
    {
        columns[alt] = Column::Altitude;
    }
    Some(Layout { separator, columns, order_assumed })
}

fn read_line(line: &str, layout: &Layout, options: &ImportOptions) -> Result<Fix, String> {
    let fields = layout.separator.split(line);
    if fields.len() < layout.columns.len() {
        return Err(format!("{} fields; the file's lines have {}", fields.len(), layout.columns.len()));
    }
    let (mut lat, mut lon, mut time, mut altitude) = (None, None, None, None);
    let mut extras = ExtrasBuilder::new();
    let number = |text: &str, what: &str| -> Result<f64, String> {
        text.parse::<f64>().ok().filter(|v| v.is_finite()).ok_or_else(|| format!("{what} {text:?} is not a number"))
    };
    for (i, (column, field)) in layout.columns.iter().zip(&fields).enumerate() {
        match column {
            Column::Lat => lat = Some(number(field, "latitude")?),
            Column::Lon => lon = Some(number(field, "longitude")?),
            Column::Altitude => altitude = Some(number(field, "altitude")?),
            Column::EpochSeconds | Column::EpochMillis => {
                let v = number(field, "time")?;
                let ms = if *column == Column::EpochSeconds { v * 1000.0 } else { v };
                if ms.abs() > 1e15 {
                    return Err(format!("time {field:?} is out of range"));
                }
                // Range-checked above.
                #[allow(clippy::cast_possible_truncation)]
                let t = Timestamp(ms.round() as i64);
                time = Some((t, false));
            }
            Column::IsoTime => {
                let parsed = parse_timestamp(field).map_err(|e| format!("time: {e}"))?;
                time = Some((parsed.time, parsed.zone_assumed));
            }
            Column::Extra => push_extra(&mut extras, &format!("col{}", i + 1), field),
        }
    }
    let (Some(lat), Some(lon), Some((time, zone_assumed))) = (lat, lon, time) else {
        return Err("missing latitude, longitude or time".to_owned());
    };
    let coord = Coord::from_degrees(lat, lon).map_err(|e| format!("lat/lon: {e}"))?;
    options.check_time(time)?;
    let mut fix = Fix::new(time, coord, SourceFormat::HeaderlessText);
    fix.zone_assumed = zone_assumed;
    if let Some(v) = altitude {
        fix.set_altitude_m(v);
    }
    fix.extras = extras.finish();
    Ok(fix)
}

/// Imports headerless numeric text.
///
/// # Errors
/// [`ImportError::Unrecognised`] when the sampled lines fit no layout.
pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    let mut lines = LineReader::new(reader, crate::MAX_TOKEN);
    // The sample, replayed once the layout is known.
    let mut sample: Vec<(u64, String)> = Vec::new();
    let mut sample_bytes = 0;
    while sample.len() < SAMPLE_LINES && sample_bytes < SAMPLE_BYTES {
        let Some(line) = lines.next_line()? else { break };
        if line.too_long.is_some() {
            sink.reject(Reject::new(Position::Line(line.number), too_long_line(), ""));
            continue;
        }
        let text = line.to_text();
        let text = text.trim_start_matches('\u{feff}');
        if !text.trim().is_empty() {
            sample_bytes += text.len();
            sample.push((line.number, text.to_owned()));
        }
    }
    let Some(layout) = guess(sample.iter().map(|(_, l)| l.as_str())) else {
        return Err(ImportError::Unrecognised {
            hint: "numeric text whose columns could not be told apart (no latitude, longitude and time)".to_owned(),
        });
    };
    sink.note(&layout.note());
    let handle = |number: u64, text: &str, sink: &mut dyn Sink| {
        if text.trim().is_empty() {
            return;
        }
        match read_line(text.trim(), &layout, options) {
            Ok(fix) => sink.point(fix, None),
            Err(reason) => sink.reject(Reject::new(Position::Line(number), reason, text)),
        }
    };
    for (number, text) in &sample {
        handle(*number, text, sink);
    }
    drop(sample);
    while let Some(line) = lines.next_line()? {
        if line.too_long.is_some() {
            sink.reject(Reject::new(Position::Line(line.number), too_long_line(), ""));
        } else {
            handle(line.number, &line.to_text(), sink);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::testing::{ms, options};

    #[derive(Default)]
    struct Noting {
        fixes: Vec<Fix>,
        rejects: Vec<Reject>,
        notes: Vec<String>,
    }

    impl Sink for Noting {
        fn point(&mut self, fix: Fix, _device: Option<&str>) {
            self.fixes.push(fix);
        }
        fn interval(&mut self, _interval: polo_domain::Interval, _device: Option<&str>) {}
        fn reject(&mut self, reject: Reject) {
            self.rejects.push(reject);
        }
        fn note(&mut self, note: &str) {
            self.notes.push(note.to_owned());
        }
    }

    fn run(text: &str) -> Noting {
        let mut sink = Noting::default();
        import(text.as_bytes(), &options(), &mut sink).unwrap();
        sink
    }

    #[test]
    fn mopsi_fixture_lat_lon_epoch_ms_alt() {
        let s = run(include_str!("../tests/fixtures/mopsi.txt"));
        assert_eq!(
            s.notes,
            ["columns assumed (space-separated): lat, lon, epoch milliseconds, altitude m; \
                              both coordinate columns stay within ±90°, so latitude-first order was assumed"]
        );
        assert_eq!(s.fixes.len(), 4, "{:?}", s.rejects);
        let f = &s.fixes[0];
        assert_eq!(f.time.0, 1_313_136_000_000);
        assert_eq!((f.coord.lat_e7, f.coord.lon_e7), (626_012_340, 297_634_560));
        assert_eq!(f.altitude_m(), Some(86.0));
        assert_eq!(s.rejects.len(), 1);
        assert_eq!(s.rejects[0].position, Position::Line(4));
        assert!(s.rejects[0].reason.contains("3 fields"), "{:?}", s.rejects);
    }

    #[test]
    fn lon_first_is_recognised_when_a_value_exceeds_90() {
        let layout = guess(["-122.41,37.77,1700000000", "-122.42,37.78,1700000005"]).unwrap();
        assert_eq!(layout.columns, [Column::Lon, Column::Lat, Column::EpochSeconds]);
        assert!(!layout.order_assumed);
        assert_eq!(layout.note(), "columns assumed (comma-separated): lon, lat, epoch seconds");
    }

    #[test]
    fn iso_times_and_extra_columns() {
        let s = run("2024-05-01T10:00:00Z;48.1;11.5;520;7\n2024-05-01T10:00:05Z;48.2;11.6;521;8\n");
        assert_eq!(
            s.notes,
            ["columns assumed (semicolon-separated): ISO time, lat, lon, altitude m, col5 (kept in extras); \
              both coordinate columns stay within ±90°, so latitude-first order was assumed"]
        );
        assert_eq!(s.fixes[1].time.0, ms("2024-05-01T10:00:05Z"));
        assert_eq!(s.fixes[1].extras.as_ref().unwrap().as_str(), r#"{"col5":8}"#);
    }

    #[test]
    fn ambiguous_or_timeless_text_is_not_guessed() {
        // No column looks like a time.
        assert_eq!(guess(["48.1 11.5 520", "48.2 11.6 521"]), None);
        // Both coordinate candidates exceed 90: not a position.
        assert_eq!(guess(["148.1 111.5 1700000000"]), None);
        // Ragged lines fit no separator.
        assert_eq!(guess(["48.1 11.5 1700000000", "48.1 11.5"]), None);
        let err = import(&b"1 2 3\n"[..], &options(), &mut Noting::default()).unwrap_err();
        assert!(matches!(err, ImportError::Unrecognised { .. }), "{err}");
    }

    #[test]
    fn a_line_beyond_the_sample_that_does_not_fit_is_rejected() {
        let mut text = String::new();
        for i in 0..SAMPLE_LINES + 3 {
            text.push_str(&format!("48.1\t11.5\t{}\n", 1_700_000_000 + i));
        }
        text.push_str("48.1\tx\t1700000999\n");
        let s = run(&text);
        assert_eq!(s.fixes.len(), SAMPLE_LINES + 3);
        assert_eq!(s.rejects.len(), 1);
        assert_eq!(s.rejects[0].position, Position::Line(SAMPLE_LINES as u64 + 4));
        assert!(s.rejects[0].reason.contains("longitude"), "{:?}", s.rejects);
    }
}
