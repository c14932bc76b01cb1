//! UTC day and month numbers, the keys of the map rows.
//!
//! Map rows are keyed by UTC day (tracks, counts, day cells) and by month
//! (heatmap and fog of war), not by local day: the map shows places, not a
//! diary, and UTC keys never move when a user travels across time zones or
//! the clocks change, so a point always belongs to exactly one row of each
//! kind. Months are `year * 12 + month - 1` (2024-03 is 24 290).

use polo_domain::time::{MS_PER_DAY, civil_from_days, days_from_civil};

/// The earliest instant map rows are kept for: 0001-01-01T00:00:00Z.
/// Windows are clamped to [`MIN_MS`, `MAX_MS`] so that day and month
/// arithmetic never overflows, whatever bounds a caller passes.
pub const MIN_MS: i64 = -62_135_596_800_000;
/// The last instant map rows are kept for: 9999-12-31T23:59:59.999Z.
pub const MAX_MS: i64 = 253_402_300_799_999;

/// `ms` clamped into the calendar polo keeps map rows for.
#[must_use]
pub fn clamp_ms(ms: i64) -> i64 {
    ms.clamp(MIN_MS, MAX_MS)
}

/// The UTC day number (days since 1970-01-01) of an instant in ms.
#[must_use]
pub fn day_of(ms: i64) -> i64 {
    clamp_ms(ms).div_euclid(MS_PER_DAY)
}

/// The first millisecond of a UTC day.
#[must_use]
pub fn day_start(day: i64) -> i64 {
    day.saturating_mul(MS_PER_DAY)
}

/// The month number (`year * 12 + month - 1`) of a UTC day.
#[must_use]
pub fn month_of_day(day: i64) -> i64 {
    let (year, month, _) = civil_from_days(day);
    i64::from(year) * 12 + i64::from(month) - 1
}

/// The month number of an instant in ms.
#[must_use]
pub fn month_of(ms: i64) -> i64 {
    month_of_day(day_of(ms))
}

/// The first UTC day of a month number.
#[must_use]
pub fn month_first_day(month: i64) -> i64 {
    let year = i32::try_from(month.div_euclid(12)).unwrap_or(if month < 0 { i32::MIN } else { i32::MAX });
    // rem_euclid(12) + 1 is 1..=12.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    let month_of_year = (month.rem_euclid(12) + 1) as u32;
    days_from_civil(year, month_of_year, 1)
}

/// The days of a month number, as a half-open range of day numbers.
#[must_use]
pub fn month_days(month: i64) -> std::ops::Range<i64> {
    month_first_day(month)..month_first_day(month + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_months_round_trip() {
        // 2024-03-04T12:00:00Z.
        let ms = 1_709_553_600_000;
        assert_eq!(day_of(ms), 19_786);
        assert_eq!(month_of(ms), 2024 * 12 + 2);
        assert_eq!(month_first_day(2024 * 12 + 2), 19_783);
        assert_eq!(month_days(2024 * 12 + 1), 19_754..19_783, "February 2024 has 29 days");
        assert_eq!(day_of(-1), -1, "the last millisecond of 1969 is day -1");
        assert_eq!(month_of_day(-1), 1969 * 12 + 11);
        for month in [0, 23_000, 24_290, 24_301, 119_999] {
            let days = month_days(month);
            assert_eq!(month_of_day(days.start), month);
            assert_eq!(month_of_day(days.end - 1), month);
            assert_eq!(month_of_day(days.end), month + 1);
        }
        assert_eq!(day_of(i64::MIN), day_of(MIN_MS));
        assert_eq!(month_of(i64::MAX), 9999 * 12 + 11);
    }
}
