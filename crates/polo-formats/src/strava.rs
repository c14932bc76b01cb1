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

use std::io::BufRead;

use polo_domain::time::parse_timestamp;
use polo_domain::{Interval, IntervalKind, SourceFormat, Timestamp};

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
    let mut csv = ::csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let headers = csv
        .headers()
        .map_err(|e| ImportError::Malformed { format: "CSV", position: Position::Line(1), message: e.to_string() })?
        .clone();
    // The first column of each name: later exports repeat `Elapsed Time` and `Distance`.
    let column = |name: &str| headers.iter().position(|h| h.trim_start_matches('\u{feff}') == name);
    let (id, date, name, kind, description, elapsed, file) = (
        column("Activity ID"),
        column("Activity Date"),
        column("Activity Name"),
        column("Activity Type"),
        column("Activity Description"),
        column("Elapsed Time"),
        column("Filename"),
    );
    let mut record = ::csv::StringRecord::new();
    loop {
        match csv.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => {
                let line = e.position().map_or(0, ::csv::Position::line);
                sink.reject(Reject::new(Position::Line(line), format!("unreadable row: {e}"), ""));
                continue;
            }
        }
        let line = record.position().map_or(0, ::csv::Position::line);
        let cell = |i: Option<usize>| i.and_then(|i| record.get(i)).map(str::trim).filter(|s| !s.is_empty());
        let raw = record.iter().collect::<Vec<_>>().join(",");
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
    fn twelve_o_clock_in_both_halves_of_the_day() {
        assert_eq!(activity_date("Mar 1, 2021, 12:00:00 AM").unwrap().0, ms("2021-03-01T00:00:00Z"));
        assert_eq!(activity_date("Mar 1, 2021, 12:30:00 PM").unwrap().0, ms("2021-03-01T12:30:00Z"));
        assert_eq!(activity_date("2021-03-01T12:30:00Z").unwrap().0, ms("2021-03-01T12:30:00Z"));
        assert_eq!(activity_date("yesterday"), None);
    }
}
