//! Strava's `activities.csv`, the activity list at the root of a Strava bulk
//! export (Settings → My Account → Download or Delete Your Account).
//!
//! The export's tracks are the files under `activities/` (`.fit.gz`,
//! `.gpx.gz`, `.tcx.gz`), which the archive walk imports like any other
//! gzip entry. `activities.csv` holds no coordinates, so it is never read as
//! points; instead each row becomes an **activity interval**: from
//! `Activity Date` for `Elapsed Time` seconds, named by `Activity Name`,
//! with `Activity Type` (`Run`, `Ride`, `Hike`…) as its category and the
//! activity id, description and `Filename` (the track file in the same
//! export) in the extras. That puts the names and types the tracks
//! themselves lack onto the timeline.
//!
//! `Activity Date` is written like `Jan 5, 2020, 3:04:05 PM` (or
//! `5 Jan 2020, 15:04:05`, or ISO); Strava writes it in UTC, and a note says
//! so. A row without a readable date is rejected with its line number.
//!
//! Like every line format, the file is read in bounded memory: the header
//! line and each row are limited to [`crate::MAX_TOKEN`] (`bounded`). A
//! longer row is skipped while it streams past and rejected with its line
//! number; a longer header line is an error.

use std::io::BufRead;

use polo_domain::time::parse_timestamp;
use polo_domain::{Interval, IntervalKind, SourceFormat, Timestamp};

use crate::bounded::csv_rows::LineCounter;
use crate::bounded::lines::LineReader;
use crate::extras::ExtrasBuilder;
use crate::{ImportError, ImportOptions, Position, Reject, Sink};

/// True for the header of Strava's `activities.csv`.
pub(crate) fn is_activities_header(line: &str) -> bool {
    line.trim_start_matches('\u{feff}').starts_with("Activity ID,Activity Date,Activity Name,Activity Type")
}

const MONTHS: [&str; 12] = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

/// Parses `Jan 5, 2020, 3:04:05 PM`, `5 Jan 2020, 15:04:05` or ISO text as UTC.
fn activity_date(text: &str) -> Option<Timestamp> {
    if let Ok(parsed) = parse_timestamp(text) {
        return Some(parsed.time);
    }
    let (mut month, mut day, mut year, mut clock, mut pm) = (None, None, None, None, None);
    for token in text.split([',', ' ']).filter(|t| !t.is_empty()) {
        let lower = token.to_ascii_lowercase();
        if let Some(m) = MONTHS.iter().position(|m| lower.starts_with(m)) {
            month = Some(m as u32 + 1);
        } else if lower == "am" || lower == "pm" {
            pm = Some(lower == "pm");
        } else if token.contains(':') {
            clock = Some(token);
        } else if let Ok(n) = token.parse::<u32>() {
            if token.len() == 4 { year = Some(n) } else { day = Some(n) }
        }
    }
    let mut parts = clock?.split(':').map(|p| p.parse::<u32>().ok());
    let (h, m, s) = (parts.next()??, parts.next()??, parts.next().unwrap_or(Some(0))?);
    let hour = match pm {
        Some(true) if h < 12 => h + 12,
        Some(false) if h == 12 => 0,
        _ => h,
    };
    Timestamp::from_civil(i32::try_from(year?).ok()?, month?, day?, hour, m, s, 0)
}

pub(crate) fn import<R: BufRead>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<(), ImportError> {
    import_with_limit(reader, options, sink, crate::MAX_TOKEN)
}

/// [`import`] with the header and every row limited to `max` bytes: the
/// csv crate holds a whole row, so a row is cut at `max` by
/// [`LineCounter`] and rejected with its line number, and an over-long
/// header line is an error (without it no row can be read).
fn import_with_limit<R: BufRead>(
    mut reader: R,
    options: &ImportOptions,
    sink: &mut dyn Sink,
    max: usize,
) -> Result<(), ImportError> {
    // The header line, skipping blank lines before it.
    let mut lines_before = 0u64;
    let mut lines = LineReader::new(&mut reader, max);
    let header_line = loop {
        let Some(raw) = lines.next_line()? else {
            return Ok(());
        };
        lines_before += 1;
        if raw.too_long.is_some() {
            return Err(ImportError::Malformed {
                format: "Strava activities.csv",
                position: Position::Line(lines_before),
                message: crate::bounded::too_long("the header line").replace(": skipped", ""),
            });
        }
        let line = raw.to_text();
        let line = line.trim_start_matches('\u{feff}');
        if !line.trim().is_empty() {
            break line.to_owned();
        }
    };
    drop(lines);
    let headers = crate::csv::header_cells(&header_line, b',');
    // The first column of each name: later exports repeat `Elapsed Time` and `Distance`.
    let column = |name: &str| headers.iter().position(|h| h == name);
    let (id, date, name, kind, description, elapsed, file) = (
        column("Activity ID"),
        column("Activity Date"),
        column("Activity Name"),
        column("Activity Type"),
        column("Activity Description"),
        column("Elapsed Time"),
        column("Filename"),
    );
    let mut csv =
        ::csv::ReaderBuilder::new().has_headers(false).flexible(true).from_reader(LineCounter::new(reader, max));
    let mut record = ::csv::ByteRecord::new();
    loop {
        match csv.read_byte_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = lines_before + e.position().map_or(0, ::csv::Position::line);
                return Err(match e.into_kind() {
                    ::csv::ErrorKind::Io(io) => ImportError::Io(io),
                    other => ImportError::Malformed {
                        format: "Strava activities.csv",
                        position: Position::Line(line),
                        message: format!("{other:?}"),
                    },
                });
            }
        }
        // The csv crate does not count blank lines, so lines are counted from bytes.
        let byte = record.position().map_or(0, ::csv::Position::byte);
        let line = lines_before + csv.get_mut().line_at(byte);
        let end = csv.position().byte();
        if csv.get_mut().take_cut_in(byte, end) {
            let raw = String::from_utf8_lossy(record.as_slice());
            sink.reject(Reject::new(Position::Line(line), crate::bounded::too_long("row"), &raw));
            continue;
        }
        let mut cells: Vec<&str> = Vec::with_capacity(record.len());
        let mut not_text = None;
        for (i, field) in record.iter().enumerate() {
            match std::str::from_utf8(field) {
                Ok(text) => cells.push(text),
                Err(_) => {
                    not_text = Some(i + 1);
                    break;
                }
            }
        }
        if let Some(column) = not_text {
            let raw = String::from_utf8_lossy(record.as_slice());
            sink.reject(Reject::new(
                Position::Line(line),
                format!("unreadable row: column {column} is not UTF-8"),
                &raw,
            ));
            continue;
        }
        let cell = |i: Option<usize>| i.and_then(|i| cells.get(i)).map(|c| c.trim()).filter(|s| !s.is_empty());
        let raw = cells.join(",");
        let Some(start) = cell(date).and_then(activity_date) else {
            sink.reject(Reject::new(Position::Line(line), "Activity Date is missing or not a date", &raw));
            continue;
        };
        if let Err(why) = options.check_time(start) {
            sink.reject(Reject::new(Position::Line(line), format!("Activity Date: {why}"), &raw));
            continue;
        }
        let seconds = cell(elapsed).and_then(|s| s.parse::<f64>().ok()).filter(|s| s.is_finite() && *s >= 0.0);
        // Bounded: a day-long activity is 86,400 s.
        #[allow(clippy::cast_possible_truncation)]
        let end = Timestamp(start.0 + seconds.map_or(0, |s| (s.min(1e9) * 1000.0).round() as i64));
        let mut interval = Interval::new(IntervalKind::Activity, start, end, SourceFormat::Strava);
        interval.name = cell(name).map(str::to_owned);
        interval.category = cell(kind).map(str::to_owned);
        let mut extras = ExtrasBuilder::new();
        for (key, value) in [("activity_id", cell(id)), ("description", cell(description)), ("filename", cell(file))] {
            if let Some(v) = value {
                extras.string(key, v);
            }
        }
        interval.extras = extras.finish();
        sink.interval(interval, None);
    }
    sink.note("Strava activity dates read as UTC");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::xml::testing::{Collect, ms, options};

    #[test]
    fn rows_become_named_activity_intervals() {
        let text = "Activity ID,Activity Date,Activity Name,Activity Type,Activity Description,Elapsed Time,Distance,Filename,Elapsed Time\n\
                    123,\"Jan 5, 2020, 3:04:05 PM\",Morning Run,Run,\"Easy, slow\",1800,5.01,activities/123.fit.gz,1800.0\n\
                    124,not a date,Broken,Ride,,60,1,,60\n\
                    125,\"5 Jan 2020, 00:10:00\",Night Ride,Ride,,,10,activities/125.gpx.gz,\n";
        assert!(is_activities_header(text));
        let mut sink = Collect::default();
        import(text.as_bytes(), &options(), &mut sink).unwrap();
        assert_eq!(sink.intervals.len(), 2, "{:?}", sink.rejects);
        let (run, _) = &sink.intervals[0];
        assert_eq!(run.start.0, ms("2020-01-05T15:04:05Z"));
        assert_eq!(run.end.0, ms("2020-01-05T15:34:05Z"));
        assert_eq!(run.kind, IntervalKind::Activity);
        assert_eq!(run.name.as_deref(), Some("Morning Run"));
        assert_eq!(run.category.as_deref(), Some("Run"));
        assert_eq!(
            run.extras.as_ref().unwrap().as_str(),
            r#"{"activity_id":"123","description":"Easy, slow","filename":"activities/123.fit.gz"}"#
        );
        assert_eq!(sink.intervals[1].0.start.0, ms("2020-01-05T00:10:00Z"));
        assert_eq!(sink.intervals[1].0.start, sink.intervals[1].0.end);
        assert_eq!(sink.rejects.len(), 1);
        assert_eq!(sink.rejects[0].position, Position::Line(3));
    }

    #[test]
    fn rows_over_the_limit_are_rejected_by_line_and_the_next_rows_import() {
        let header = "Activity ID,Activity Date,Activity Name,Activity Type,Elapsed Time";
        let long = "x".repeat(200);
        let text = format!(
            "{header}\n1,2020-01-05T10:00:00Z,{long},Run,60\n2,2020-01-05T11:00:00Z,\"a\n{long}\nb\",Ride,60\n\n\
             3,2020-01-05T12:00:00Z,\"ok\nok\",Hike,60\n4,not a date,x,Run,60\n"
        );
        for chunk in [1, 7, 4096] {
            let mut sink = Collect::default();
            let reader = std::io::BufReader::with_capacity(chunk, text.as_bytes());
            import_with_limit(reader, &options(), &mut sink, 100).unwrap();
            let rejects: Vec<_> = sink.rejects.iter().map(|r| (r.position, r.reason.as_str())).collect();
            // Line numbers stay right after a cut row that spanned three lines, and a blank line.
            assert_eq!(
                rejects,
                [
                    (Position::Line(2), "row longer than 1 MiB: skipped"),
                    (Position::Line(3), "row longer than 1 MiB: skipped"),
                    (Position::Line(9), "Activity Date is missing or not a date"),
                ],
                "chunk {chunk}"
            );
            let names: Vec<_> = sink.intervals.iter().map(|(i, _)| i.name.as_deref().unwrap()).collect();
            assert_eq!(names, ["ok\nok"], "chunk {chunk}");
        }
        let err =
            import_with_limit(format!("{header}\n").as_bytes(), &options(), &mut Collect::default(), 40).unwrap_err();
        assert!(err.to_string().contains("header line longer than"), "{err}");
        assert!(matches!(err, ImportError::Malformed { position: Position::Line(1), .. }), "{err:?}");
    }

    #[test]
    fn a_row_that_is_not_utf8_is_rejected_with_its_line() {
        let text = b"Activity ID,Activity Date,Activity Name\n1,2020-01-05T10:00:00Z,\xff\n2,2020-01-05T11:00:00Z,ok\n";
        let mut sink = Collect::default();
        import(&text[..], &options(), &mut sink).unwrap();
        assert_eq!(sink.intervals.len(), 1);
        assert_eq!(sink.rejects[0].position, Position::Line(2));
        assert_eq!(sink.rejects[0].reason, "unreadable row: column 3 is not UTF-8");
    }

    #[test]
    fn twelve_o_clock_in_both_halves_of_the_day() {
        assert_eq!(activity_date("Mar 1, 2021, 12:00:00 AM").unwrap().0, ms("2021-03-01T00:00:00Z"));
        assert_eq!(activity_date("Mar 1, 2021, 12:30:00 PM").unwrap().0, ms("2021-03-01T12:30:00Z"));
        assert_eq!(activity_date("2021-03-01T12:30:00Z").unwrap().0, ms("2021-03-01T12:30:00Z"));
        assert_eq!(activity_date("yesterday"), None);
    }
}
