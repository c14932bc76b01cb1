//! The CSV exchange with the trackintel oracle (feature `synthetic`).
//!
//! polo's stays and legs are checked against trackintel 1.4.2, run by the
//! committed script [`TRACKINTEL_SCRIPT`]. This module holds the pure half of
//! that exchange, shared by the agreement test and `polo-bench timeline`:
//! writing tracks as the script's input and reading its output. Running
//! Python is left to those callers; this crate performs no I/O.

use std::fmt::Write as _;

use crate::track::TrackPoint;

/// The script: `python trackintel_staypoints.py POINTS STAYPOINTS TRIPLEGS DIST_M TIME_MIN GAP_MIN`.
pub const TRACKINTEL_SCRIPT: &str = include_str!("../tests/trackintel_staypoints.py");

/// The version of trackintel polo's stays are an exact port of.
pub const TRACKINTEL_VERSION: &str = "1.4.2";

/// A staypoint as trackintel reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct OracleStay {
    /// The user the script was given.
    pub user: u32,
    /// `started_at`, ms since the epoch.
    pub start_ms: i64,
    /// `finished_at`, ms since the epoch.
    pub end_ms: i64,
    /// Centroid latitude, degrees.
    pub lat: f64,
    /// Centroid longitude, degrees.
    pub lon: f64,
}

/// A tripleg as trackintel reported it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OracleLeg {
    /// The user the script was given.
    pub user: u32,
    /// `started_at`, ms since the epoch.
    pub start_ms: i64,
    /// `finished_at`, ms since the epoch.
    pub end_ms: i64,
    /// Number of points of its geometry.
    pub points: u32,
}

/// A line of the script's output that could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("line {line} of the trackintel output is malformed: {text:?}")]
pub struct OracleParseError {
    /// 1-based line number.
    pub line: usize,
    /// The line.
    pub text: String,
}

/// Writes tracks as the script's input CSV, one `(user, points)` pair per track.
#[must_use]
pub fn points_csv(tracks: &[(u32, &[TrackPoint])]) -> String {
    let mut out = String::from("user_id,tracked_at_ms,lat_e7,lon_e7\n");
    for (user, points) in tracks {
        for point in *points {
            // Writing to a String cannot fail.
            let _ = writeln!(out, "{user},{},{},{}", point.time.0, point.coord.lat_e7, point.coord.lon_e7);
        }
    }
    out
}

/// The data lines of a CSV (header skipped) as `(line number, line, fields)`.
fn rows(text: &str) -> impl Iterator<Item = (usize, &str, Vec<&str>)> {
    text.lines()
        .enumerate()
        .skip(1)
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(index, line)| (index + 1, line, line.trim().split(',').collect()))
}

fn parse_stay(fields: &[&str]) -> Option<OracleStay> {
    let [user, start, end, lat, lon] = fields else { return None };
    Some(OracleStay {
        user: user.parse().ok()?,
        start_ms: start.parse().ok()?,
        end_ms: end.parse().ok()?,
        lat: lat.parse().ok()?,
        lon: lon.parse().ok()?,
    })
}

fn parse_leg(fields: &[&str]) -> Option<OracleLeg> {
    let [user, start, end, points] = fields else { return None };
    Some(OracleLeg {
        user: user.parse().ok()?,
        start_ms: start.parse().ok()?,
        end_ms: end.parse().ok()?,
        points: points.parse().ok()?,
    })
}

fn parse_all<T>(text: &str, parse: fn(&[&str]) -> Option<T>) -> Result<Vec<T>, OracleParseError> {
    rows(text)
        .map(|(line, raw, fields)| parse(&fields).ok_or_else(|| OracleParseError { line, text: raw.to_owned() }))
        .collect()
}

/// Reads the staypoints CSV (`user_id,started_at_ms,finished_at_ms,lat,lon`).
///
/// # Errors
/// [`OracleParseError`] for the first line that does not have that shape.
pub fn parse_staypoints(text: &str) -> Result<Vec<OracleStay>, OracleParseError> {
    parse_all(text, parse_stay)
}

/// Reads the triplegs CSV (`user_id,started_at_ms,finished_at_ms,points`).
///
/// # Errors
/// [`OracleParseError`] for the first line that does not have that shape.
pub fn parse_triplegs(text: &str) -> Result<Vec<OracleLeg>, OracleParseError> {
    parse_all(text, parse_leg)
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Timestamp};

    use super::*;

    #[test]
    fn input_csv_carries_e7_integers() {
        let point = TrackPoint::new(Timestamp(1_700_000_000_123), Coord { lat_e7: 475_000_001, lon_e7: -85_000_000 });
        let csv = points_csv(&[(3, &[point][..])]);
        assert_eq!(csv, "user_id,tracked_at_ms,lat_e7,lon_e7\n3,1700000000123,475000001,-85000000\n");
    }

    #[test]
    fn output_csvs_parse_and_bad_lines_are_named() {
        let stays = parse_staypoints("user_id,started_at_ms,finished_at_ms,lat,lon\n1,10,20,47.5,8.25\n").unwrap();
        assert_eq!(stays, [OracleStay { user: 1, start_ms: 10, end_ms: 20, lat: 47.5, lon: 8.25 }]);
        let legs = parse_triplegs("user_id,started_at_ms,finished_at_ms,points\n2,5,9,4\n\n").unwrap();
        assert_eq!(legs, [OracleLeg { user: 2, start_ms: 5, end_ms: 9, points: 4 }]);
        let err = parse_triplegs("header\n1,2,x,4\n").unwrap_err();
        assert_eq!(err.line, 2);
    }

    #[test]
    fn the_script_is_the_committed_file() {
        assert!(TRACKINTEL_SCRIPT.contains("generate_staypoints"));
        assert!(TRACKINTEL_SCRIPT.contains("generate_triplegs"));
    }
}
