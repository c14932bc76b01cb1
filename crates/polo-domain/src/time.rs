//! Timestamps: UTC instants at millisecond precision, and the one lenient
//! parser every importer runs on every single value.
//!
//! Location files carry about twenty timestamp spellings (see
//! `formats.md` §9 in the shared research): RFC 3339 with 0–9 fraction
//! digits, offsets without a colon or with only an hour, a space instead of
//! `T`, slash dates, no zone at all, reduced precision (`2014-05`), epoch
//! seconds / milliseconds / microseconds as numbers or strings, lower-case
//! `t`/`z`, a U+2212 minus sign and leap seconds. Importers must never lock
//! onto the first value's format (gpxpy#83 lost milliseconds that way), so
//! [`parse_timestamp`] looks at each value on its own.
//!
//! Calendar arithmetic is done with Howard Hinnant's civil-date algorithms,
//! which are exact for the proleptic Gregorian calendar and need no tables.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A UTC instant in milliseconds since the Unix epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(pub i64);

/// Milliseconds in one day.
pub const MS_PER_DAY: i64 = 86_400_000;

/// Why a timestamp could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TimeError {
    /// The text does not follow any timestamp grammar polo knows.
    #[error("unrecognised timestamp {text:?}: {why}")]
    Syntax {
        /// The offending text (shortened to 64 characters).
        text: String,
        /// What was expected where the text went wrong.
        why: &'static str,
    },
    /// The fields parse but name no real instant (month 13, 31 April, ...).
    #[error("timestamp {text:?} is out of range: {why}")]
    Range {
        /// The offending text (shortened to 64 characters).
        text: String,
        /// Which field is out of range.
        why: &'static str,
    },
}

/// The result of parsing one timestamp value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParsedTime {
    /// The UTC instant.
    pub time: Timestamp,
    /// The local UTC offset the text carried, in minutes east of UTC.
    ///
    /// `Z`, `UTC` and epoch numbers name an instant but not the local offset
    /// of the place it was recorded, so they give `None`; an explicit numeric
    /// offset (even `+00:00`) gives `Some`.
    pub offset_minutes: Option<i16>,
    /// True when the text had no zone and UTC was assumed.
    pub zone_assumed: bool,
}

impl Timestamp {
    /// Builds a timestamp from a civil UTC date and time.
    ///
    /// Returns `None` for fields out of range (month 13, day 31 in April...).
    #[must_use]
    pub fn from_civil(
        year: i32,
        month: u32,
        day: u32,
        hour: u32,
        minute: u32,
        second: u32,
        milli: u32,
    ) -> Option<Self> {
        if !(1..=12).contains(&month) || day == 0 || day > days_in_month(year, month) {
            return None;
        }
        if hour > 23 || minute > 59 || second > 59 || milli > 999 {
            return None;
        }
        let days = days_from_civil(year, month, day);
        let ms = days * MS_PER_DAY
            + i64::from(hour) * 3_600_000
            + i64::from(minute) * 60_000
            + i64::from(second) * 1_000
            + i64::from(milli);
        Some(Self(ms))
    }

    /// Builds a timestamp from Unix seconds, checking for overflow.
    #[must_use]
    pub fn from_unix_seconds(seconds: i64) -> Option<Self> {
        seconds.checked_mul(1000).map(Self)
    }

    /// Milliseconds since the Unix epoch.
    #[must_use]
    pub fn millis(self) -> i64 {
        self.0
    }

    /// The civil UTC fields `(year, month, day, hour, minute, second, milli)`,
    /// shifted by `offset_minutes` first (pass 0 for UTC).
    #[must_use]
    pub fn civil(self, offset_minutes: i16) -> (i32, u32, u32, u32, u32, u32, u32) {
        let local = self.0 + i64::from(offset_minutes) * 60_000;
        let days = local.div_euclid(MS_PER_DAY);
        let in_day = local.rem_euclid(MS_PER_DAY);
        let (y, m, d) = civil_from_days(days);
        // Each cast below is of a value already reduced into its small range.
        let h = (in_day / 3_600_000) as u32;
        let min = ((in_day / 60_000) % 60) as u32;
        let s = ((in_day / 1000) % 60) as u32;
        let ms = (in_day % 1000) as u32;
        (y, m, d, h, min, s, ms)
    }

    /// RFC 3339 with milliseconds, in UTC (`Z`) or shifted to the given offset.
    /// See [`Timestamp::to_text`] for the form that also round-trips "no zone".
    ///
    /// ```
    /// use polo_domain::Timestamp;
    /// let t = Timestamp(1_365_993_086_860);
    /// assert_eq!(t.to_rfc3339(None), "2013-04-15T02:31:26.860Z");
    /// assert_eq!(t.to_rfc3339(Some(120)), "2013-04-15T04:31:26.860+02:00");
    /// ```
    #[must_use]
    pub fn to_rfc3339(self, offset_minutes: Option<i16>) -> String {
        let off = offset_minutes.unwrap_or(0);
        let (y, mo, d, h, mi, s, ms) = self.civil(off);
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{ms:03}");
        match offset_minutes {
            None => out.push('Z'),
            Some(o) => {
                let sign = if o < 0 { '-' } else { '+' };
                let a = o.unsigned_abs();
                out.push_str(&format!("{sign}{:02}:{:02}", a / 60, a % 60));
            }
        }
        out
    }
}

impl Timestamp {
    /// The text that parses back to exactly this time, offset and
    /// zone-assumed flag: a numeric offset when one is known, `Z` for a plain
    /// UTC instant, and no zone at all when the source had none.
    #[must_use]
    pub fn to_text(self, offset_minutes: Option<i16>, zone_assumed: bool) -> String {
        let mut text = self.to_rfc3339(offset_minutes);
        if offset_minutes.is_none() && zone_assumed {
            text.pop();
        }
        text
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_rfc3339(None))
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date.
#[must_use]
pub fn days_from_civil(year: i32, month: u32, day: u32) -> i64 {
    let y = i64::from(year) - i64::from(month <= 2);
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let m = i64::from(month);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(day) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The proleptic Gregorian date of a day count since 1970-01-01.
#[must_use]
pub fn civil_from_days(days: i64) -> (i32, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y as i32, m, d)
}

fn is_leap(year: i32) -> bool {
    (year % 4 == 0 && year % 100 != 0) || year % 400 == 0
}

/// Number of days in a month of a given year.
#[must_use]
pub fn days_in_month(year: i32, month: u32) -> u32 {
    match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if is_leap(year) => 29,
        2 => 28,
        _ => 0,
    }
}

/// Interprets an epoch number, choosing its unit by magnitude: below 1e11 it
/// is seconds, below 1e14 milliseconds, below 1e17 microseconds, else
/// nanoseconds. (Dawarich's "more than 10 digits means milliseconds" breaks for
/// microseconds and for millisecond dates before 2001.)
#[must_use]
pub fn from_epoch_number(value: f64) -> Option<Timestamp> {
    if !value.is_finite() {
        return None;
    }
    let magnitude = value.abs();
    let ms = if magnitude < 1e11 {
        value * 1e3
    } else if magnitude < 1e14 {
        value
    } else if magnitude < 1e17 {
        value / 1e3
    } else {
        value / 1e6
    };
    // Round rather than truncate so that 1.001 s stays 1001 ms despite binary floats.
    #[allow(clippy::cast_possible_truncation)]
    Some(Timestamp(ms.round() as i64))
}

/// Interprets an integer epoch value by magnitude (see [`from_epoch_number`]),
/// exactly, without going through floating point.
#[must_use]
pub fn from_epoch_integer(value: i64) -> Option<Timestamp> {
    let magnitude = value.unsigned_abs();
    let ms = if magnitude < 100_000_000_000 {
        value.checked_mul(1000)?
    } else if magnitude < 100_000_000_000_000 {
        value
    } else if magnitude < 100_000_000_000_000_000 {
        value / 1000
    } else {
        value / 1_000_000
    };
    Some(Timestamp(ms))
}

fn shorten(text: &str) -> String {
    text.chars().take(64).collect()
}

/// Parses any timestamp form listed in `formats.md` §9.
///
/// Text without a zone is read as UTC and flagged with `zone_assumed`.
/// Sub-millisecond digits are truncated (polo stores milliseconds).
///
/// ```
/// use polo_domain::time::parse_timestamp;
/// let a = parse_timestamp("2015-10-01T08:00:00-0700").unwrap();
/// let b = parse_timestamp("2015-10-01 15:00:00Z").unwrap();
/// assert_eq!(a.time, b.time);
/// assert_eq!(a.offset_minutes, Some(-420));
/// assert_eq!(parse_timestamp("1742844302585").unwrap().time.0, 1_742_844_302_585);
/// ```
///
/// # Errors
/// [`TimeError`] naming what was wrong with the text.
pub fn parse_timestamp(text: &str) -> Result<ParsedTime, TimeError> {
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(TimeError::Syntax { text: String::new(), why: "empty value" });
    }
    if looks_numeric(trimmed) {
        return parse_epoch_text(trimmed, text);
    }
    Cursor { bytes: trimmed.as_bytes(), pos: 0, original: text }.parse_iso()
}

fn looks_numeric(s: &str) -> bool {
    let digits = s.strip_prefix('-').unwrap_or(s);
    !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && digits.bytes().filter(|&b| b == b'.').count() <= 1
        && digits.as_bytes()[0].is_ascii_digit()
        // a bare 4-digit year is a reduced-precision date, not epoch seconds
        && !(digits.len() == 4 && !s.starts_with('-') && !s.contains('.'))
}

fn parse_epoch_text(s: &str, original: &str) -> Result<ParsedTime, TimeError> {
    let time = if s.contains('.') {
        s.parse::<f64>().ok().and_then(from_epoch_number)
    } else {
        s.parse::<i64>().ok().and_then(from_epoch_integer)
    };
    time.map(|time| ParsedTime { time, offset_minutes: None, zone_assumed: false })
        .ok_or_else(|| TimeError::Range { text: shorten(original), why: "epoch number out of range" })
}

struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    original: &'a str,
}

impl Cursor<'_> {
    fn syntax(&self, why: &'static str) -> TimeError {
        TimeError::Syntax { text: shorten(self.original), why }
    }

    fn range(&self, why: &'static str) -> TimeError {
        TimeError::Range { text: shorten(self.original), why }
    }

    fn peek(&self) -> Option<u8> {
        self.bytes.get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.bytes.len()
    }

    /// Reads between `min` and `max` ASCII digits.
    fn digits(&mut self, min: usize, max: usize, why: &'static str) -> Result<u32, TimeError> {
        let start = self.pos;
        let mut value: u32 = 0;
        while self.pos - start < max {
            match self.peek() {
                Some(b @ b'0'..=b'9') => {
                    value = value * 10 + u32::from(b - b'0');
                    self.pos += 1;
                }
                _ => break,
            }
        }
        if self.pos - start < min {
            return Err(self.syntax(why));
        }
        Ok(value)
    }

    fn skip_spaces(&mut self) -> usize {
        let start = self.pos;
        while self.peek() == Some(b' ') {
            self.pos += 1;
        }
        self.pos - start
    }

    /// Consumes a minus sign: ASCII `-` or U+2212 (UTF-8 `E2 88 92`).
    fn minus(&mut self) -> bool {
        if self.peek() == Some(b'-') {
            self.pos += 1;
            return true;
        }
        if self.bytes[self.pos..].starts_with("\u{2212}".as_bytes()) {
            self.pos += 3;
            return true;
        }
        false
    }

    fn parse_iso(mut self) -> Result<ParsedTime, TimeError> {
        let year = self.digits(4, 4, "expected a four-digit year")?;
        let year = i32::try_from(year).map_err(|_| self.range("year"))?;
        let mut month = 1;
        let mut day = 1;
        let (mut hour, mut minute, mut second, mut milli) = (0, 0, 0, 0);
        let mut leap_second = false;
        let reduced = 'date: {
            if self.at_end() {
                break 'date true;
            }
            let date_sep = self.peek();
            if !matches!(date_sep, Some(b'-' | b'/' | b' ')) {
                return Err(self.syntax("expected '-' or '/' after the year"));
            }
            self.pos += 1;
            month = self.digits(1, 2, "expected a month")?;
            if self.at_end() {
                break 'date true;
            }
            if self.peek() != date_sep {
                return Err(self.syntax("expected the same separator between month and day"));
            }
            self.pos += 1;
            day = self.digits(1, 2, "expected a day")?;
            if self.at_end() {
                break 'date true;
            }
            match self.peek() {
                Some(b'T' | b't') => self.pos += 1,
                Some(b' ') => {
                    self.skip_spaces();
                }
                _ => return Err(self.syntax("expected 'T' or a space between date and time")),
            }
            hour = self.digits(1, 2, "expected an hour")?;
            if self.peek() != Some(b':') {
                return Err(self.syntax("expected ':' after the hour"));
            }
            self.pos += 1;
            minute = self.digits(1, 2, "expected minutes")?;
            if self.peek() == Some(b':') {
                self.pos += 1;
                second = self.digits(1, 2, "expected seconds")?;
                if matches!(self.peek(), Some(b'.' | b',')) {
                    self.pos += 1;
                    let start = self.pos;
                    let mut scale = 100;
                    while let Some(b @ b'0'..=b'9') = self.peek() {
                        milli += u32::from(b - b'0') * scale;
                        scale /= 10;
                        self.pos += 1;
                    }
                    if self.pos == start {
                        return Err(self.syntax("expected digits after the decimal point"));
                    }
                }
            }
            false
        };
        if !(1..=12).contains(&month) {
            return Err(self.range("month must be 1-12"));
        }
        if day == 0 || day > days_in_month(year, month) {
            return Err(self.range("day does not exist in that month"));
        }
        let mut end_of_day = false;
        if hour == 24 && minute == 0 && second == 0 && milli == 0 {
            hour = 0;
            end_of_day = true;
        } else if hour > 23 {
            return Err(self.range("hour must be 0-23"));
        }
        if minute > 59 {
            return Err(self.range("minutes must be 0-59"));
        }
        if second == 60 {
            // Unix time has no leap seconds: 23:59:60 is the same instant as the next second.
            second = 59;
            leap_second = true;
        } else if second > 59 {
            return Err(self.range("seconds must be 0-59"));
        }
        let zone = if reduced { Zone::Missing } else { self.zone()? };
        if !self.at_end() {
            return Err(self.syntax("unexpected text after the timestamp"));
        }
        let base = Timestamp::from_civil(year, month, day, hour, minute, second, milli)
            .ok_or_else(|| self.range("date fields"))?;
        let mut ms = base.0;
        if leap_second {
            ms += 1000;
        }
        if end_of_day {
            ms += MS_PER_DAY;
        }
        let (offset, zone_assumed) = match zone {
            Zone::Missing => (None, true),
            Zone::Utc => (None, false),
            Zone::Offset(minutes) => (Some(minutes), false),
        };
        let offset_ms = i64::from(offset.unwrap_or(0)) * 60_000;
        Ok(ParsedTime { time: Timestamp(ms - offset_ms), offset_minutes: offset, zone_assumed })
    }

    /// Reads an optional zone: `Z`, `UTC`, `GMT`, `±HH`, `±HHMM`, `±HH:MM`,
    /// possibly after spaces.
    fn zone(&mut self) -> Result<Zone, TimeError> {
        self.skip_spaces();
        if self.at_end() {
            return Ok(Zone::Missing);
        }
        if matches!(self.peek(), Some(b'Z' | b'z')) {
            self.pos += 1;
            return Ok(Zone::Utc);
        }
        let rest = &self.bytes[self.pos..];
        if rest.eq_ignore_ascii_case(b"UTC") || rest.eq_ignore_ascii_case(b"GMT") {
            self.pos += 3;
            return Ok(Zone::Utc);
        }
        let negative = if self.peek() == Some(b'+') {
            self.pos += 1;
            false
        } else if self.minus() {
            true
        } else {
            return Err(self.syntax("expected a zone (Z or ±HH:MM)"));
        };
        let hours = self.digits(2, 2, "expected two-digit zone hours")?;
        if self.peek() == Some(b':') {
            self.pos += 1;
        }
        let minutes = if self.at_end() { 0 } else { self.digits(2, 2, "expected two-digit zone minutes")? };
        if hours > 18 || minutes > 59 {
            return Err(self.range("zone offset"));
        }
        let total = i16::try_from(hours * 60 + minutes).map_err(|_| self.range("zone offset"))?;
        Ok(Zone::Offset(if negative { -total } else { total }))
    }
}

/// The zone part of a timestamp text.
enum Zone {
    /// No zone at all: UTC is assumed.
    Missing,
    /// `Z`, `UTC` or `GMT`: an instant, local offset unknown.
    Utc,
    /// An explicit numeric offset in minutes east of UTC.
    Offset(i16),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(text: &str) -> i64 {
        parse_timestamp(text).unwrap_or_else(|e| panic!("{text}: {e}")).time.0
    }

    const BASE: i64 = 1_366_007_486_000; // 2013-04-15T06:31:26Z

    #[test]
    fn rfc3339_with_and_without_fraction() {
        assert_eq!(ms("2013-04-15T06:31:26.860Z"), BASE + 860);
        assert_eq!(ms("2013-04-15T06:31:26Z"), BASE);
        assert_eq!(ms("2013-04-15T06:31:26.8Z"), BASE + 800);
        assert_eq!(ms("2013-04-15T06:31:26.860000Z"), BASE + 860);
        assert_eq!(ms("2013-04-15T06:31:26.860123456Z"), BASE + 860);
        assert_eq!(ms("2013-04-15T06:31:26.000Z"), BASE);
    }

    #[test]
    fn each_value_parsed_on_its_own() {
        // gpxpy#83: the first value has no fraction, the second must keep its milliseconds.
        assert_eq!(ms("2013-04-15T06:31:26Z"), BASE);
        assert_eq!(ms("2013-04-15T06:31:27.123Z"), BASE + 1123);
    }

    #[test]
    fn offsets_in_every_spelling() {
        let p = parse_timestamp("2019-04-03T08:00:00.000+02:00").unwrap();
        assert_eq!(p.offset_minutes, Some(120));
        assert_eq!(p.time.0, ms("2019-04-03T06:00:00Z"));
        assert_eq!(ms("2015-10-01T08:00:00-0700"), ms("2015-10-01T15:00:00Z"));
        assert_eq!(ms("2019/12/15 19:34:34+00"), ms("2019-12-15T19:34:34Z"));
        assert_eq!(ms("2025-06-01 13:02:03.000000 +00:00"), ms("2025-06-01T13:02:03Z"));
        assert_eq!(ms("2025-03-24 20:07:24 +0100"), ms("2025-03-24T19:07:24Z"));
        assert_eq!(ms("2025-03-24T20:07:24\u{2212}01:00"), ms("2025-03-24T21:07:24Z"));
        assert_eq!(ms("2025-03-24t20:07:24z"), ms("2025-03-24T20:07:24Z"));
        assert_eq!(parse_timestamp("2025-03-24 20:07:24 UTC").unwrap().offset_minutes, None);
        assert!(!parse_timestamp("2025-03-24 20:07:24Z").unwrap().zone_assumed);
        assert_eq!(parse_timestamp("2025-03-24 20:07:24+00:00").unwrap().offset_minutes, Some(0));
    }

    #[test]
    fn naive_times_are_utc_and_flagged() {
        let p = parse_timestamp("2024-12-04 10:42:31").unwrap();
        assert!(p.zone_assumed);
        assert_eq!(p.offset_minutes, None);
        assert_eq!(p.time.0, ms("2024-12-04T10:42:31Z"));
        assert_eq!(ms("2021-10-10T09:55:20.952"), ms("2021-10-10T09:55:20.952Z"));
        assert_eq!(ms("2023 01 24 14:40:21"), ms("2023-01-24T14:40:21Z"));
        assert_eq!(ms("2013-1-2T3:4:5Z"), ms("2013-01-02T03:04:05Z"));
    }

    #[test]
    fn epoch_numbers_by_magnitude() {
        assert_eq!(ms("1742844302585"), 1_742_844_302_585);
        assert_eq!(ms("1709283789"), 1_709_283_789_000);
        assert_eq!(ms("1709283789123456"), 1_709_283_789_123);
        assert_eq!(ms("1709283789123456789"), 1_709_283_789_123);
        assert_eq!(ms("1709283789.5"), 1_709_283_789_500);
        // Milliseconds before 2001 have fewer than 13 digits and are still milliseconds.
        assert_eq!(ms("946684800000"), 946_684_800_000);
    }

    #[test]
    fn reduced_precision() {
        assert_eq!(ms("2014"), ms("2014-01-01T00:00:00Z"));
        assert_eq!(ms("2014-05"), ms("2014-05-01T00:00:00Z"));
        assert_eq!(ms("2014-05-25"), ms("2014-05-25T00:00:00Z"));
    }

    #[test]
    fn leap_second_and_end_of_day() {
        assert_eq!(ms("2016-12-31T23:59:60Z"), ms("2017-01-01T00:00:00Z"));
        assert_eq!(ms("2016-12-31T24:00:00Z"), ms("2017-01-01T00:00:00Z"));
    }

    #[test]
    fn errors_name_the_problem() {
        for bad in [
            "",
            "yesterday",
            "2013-13-01T00:00:00Z",
            "2013-02-30",
            "2013-04-15T06:31:26+2",
            "2013-04-15T25:00Z",
            "2013-04-15X",
        ] {
            assert!(parse_timestamp(bad).is_err(), "{bad:?} should fail");
        }
        let e = parse_timestamp("2013-02-30T00:00:00Z").unwrap_err().to_string();
        assert!(e.contains("day does not exist"), "{e}");
    }

    #[test]
    fn civil_round_trip_over_centuries() {
        for days in (-800_000..800_000).step_by(37) {
            let (y, m, d) = civil_from_days(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
    }

    proptest::proptest! {
        #[test]
        fn rfc3339_output_parses_back(ms_value in -2_000_000_000_000i64..4_000_000_000_000, off in -720i16..840) {
            let t = Timestamp(ms_value);
            let back = parse_timestamp(&t.to_rfc3339(Some(off))).unwrap();
            proptest::prop_assert_eq!(back.time, t);
            proptest::prop_assert_eq!(back.offset_minutes, Some(off));
            let back = parse_timestamp(&t.to_rfc3339(None)).unwrap();
            proptest::prop_assert_eq!(back.time, t);
            let back = parse_timestamp(&t.to_text(None, true)).unwrap();
            proptest::prop_assert_eq!((back.time, back.offset_minutes, back.zone_assumed), (t, None, true));
        }
    }
}
