//! Local time: which calendar day an instant belongs to, where the user was.
//!
//! polo stores instants in UTC; a "day" in the timeline is the user's local
//! day, which is 23 or 25 hours long at a DST change and 30 hours long on a
//! flight from Berlin to New York. No time-zone database is involved: the
//! caller supplies UTC offsets (points carry the one their source gave, see
//! [`polo_domain::Fix::utc_offset_minutes`]) through a [`LocalClock`].
//! [`OffsetChanges`] builds one from a track, carrying each offset forward
//! until the next point that states another.
//!
//! [`DayBoundaries`] is what day-based statistics need: the local date of an
//! instant and the next instant at which the date changes. [`LocalDays`]
//! derives both from a clock; a caller with another notion of a day (one that
//! starts at 04:00, say) implements the trait itself.

use std::fmt;

use polo_domain::Timestamp;
use polo_domain::time::{MS_PER_DAY, civil_from_days, days_from_civil, days_in_month};
use serde::{Deserialize, Serialize};

use crate::track::TrackPoint;

const MS_PER_MINUTE: i64 = 60_000;

/// The UTC offset in force at each instant.
pub trait LocalClock {
    /// Minutes east of UTC at `time`.
    fn offset_minutes_at(&self, time: Timestamp) -> i16;

    /// The first instant after `time` at which the offset changes, when the
    /// clock knows (piecewise-constant clocks do; it makes day boundaries exact).
    fn next_change_after(&self, _time: Timestamp) -> Option<Timestamp> {
        None
    }
}

impl<F: Fn(Timestamp) -> i16> LocalClock for F {
    fn offset_minutes_at(&self, time: Timestamp) -> i16 {
        self(time)
    }
}

/// One offset for all time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FixedOffset(pub i16);

impl LocalClock for FixedOffset {
    fn offset_minutes_at(&self, _time: Timestamp) -> i16 {
        self.0
    }
}

/// A piecewise-constant offset: `initial` until the first change, then each
/// change's offset from its instant on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OffsetChanges {
    initial: i16,
    changes: Vec<(Timestamp, i16)>,
}

impl OffsetChanges {
    /// A clock from explicit changes (sorted here by instant).
    #[must_use]
    pub fn new(initial: i16, mut changes: Vec<(Timestamp, i16)>) -> Self {
        changes.sort_by_key(|&(time, _)| time);
        Self { initial, changes }
    }

    /// The offsets a time-sorted track states, each carried forward until the
    /// next point that states another. Before the first stated offset the
    /// first one applies; a track that states none gets `fallback` throughout.
    #[must_use]
    pub fn from_points(points: &[TrackPoint], fallback: i16) -> Self {
        let mut stated = points.iter().filter_map(|p| p.utc_offset_minutes.map(|offset| (p.time, offset)));
        let Some((_, initial)) = stated.next() else {
            return Self { initial: fallback, changes: Vec::new() };
        };
        let mut current = initial;
        let mut changes = Vec::new();
        for (time, offset) in stated {
            if offset != current {
                changes.push((time, offset));
                current = offset;
            }
        }
        Self { initial, changes }
    }
}

impl LocalClock for OffsetChanges {
    fn offset_minutes_at(&self, time: Timestamp) -> i16 {
        let after = self.changes.partition_point(|&(at, _)| at <= time);
        after.checked_sub(1).map_or(self.initial, |index| self.changes[index].1)
    }

    fn next_change_after(&self, time: Timestamp) -> Option<Timestamp> {
        self.changes.get(self.changes.partition_point(|&(at, _)| at <= time)).map(|&(at, _)| at)
    }
}

/// A local calendar date, as days since 1970-01-01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalDate(pub i64);

impl LocalDate {
    /// The date of a proleptic Gregorian year, month and day; `None` if there is no such day.
    #[must_use]
    pub fn from_ymd(year: i32, month: u32, day: u32) -> Option<Self> {
        ((1..=12).contains(&month) && day >= 1 && day <= days_in_month(year, month))
            .then(|| Self(days_from_civil(year, month, day)))
    }

    /// `(year, month, day)`.
    #[must_use]
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.0)
    }

    /// Day of the week, 0 = Monday … 6 = Sunday.
    #[must_use]
    pub fn weekday(self) -> u8 {
        // 1970-01-01 was a Thursday (3). The remainder is in 0..7.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let weekday = (self.0 + 3).rem_euclid(7) as u8;
        weekday
    }

    /// Monday to Friday.
    #[must_use]
    pub fn is_weekday(self) -> bool {
        self.weekday() < 5
    }
}

impl fmt::Display for LocalDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

/// Local wall-clock milliseconds since the local epoch at `time`.
#[must_use]
pub fn local_ms(clock: &impl LocalClock, time: Timestamp) -> i64 {
    time.0 + i64::from(clock.offset_minutes_at(time)) * MS_PER_MINUTE
}

/// The local date at `time`.
#[must_use]
pub fn local_date(clock: &impl LocalClock, time: Timestamp) -> LocalDate {
    LocalDate(local_ms(clock, time).div_euclid(MS_PER_DAY))
}

/// The instant at which local wall-clock time reads `local` (ms since the
/// local epoch). When the wall clock skips that reading (spring forward) the
/// instant it would have had under the earlier offset is returned, which lies
/// after the skip; when it reads it twice (fall back), one of the two.
#[must_use]
pub fn instant_of_local(clock: &impl LocalClock, local: i64) -> Timestamp {
    let mut guess = Timestamp(local - i64::from(clock.offset_minutes_at(Timestamp(local))) * MS_PER_MINUTE);
    for _ in 0..3 {
        let next = Timestamp(local - i64::from(clock.offset_minutes_at(guess)) * MS_PER_MINUTE);
        if next == guess {
            break;
        }
        guess = guess.max(next);
    }
    guess
}

/// Where local days begin and end.
pub trait DayBoundaries {
    /// The day `time` belongs to.
    fn day_of(&self, time: Timestamp) -> LocalDate;
    /// The first instant after `time` that belongs to another day.
    fn next_day_start(&self, time: Timestamp) -> Timestamp;
}

/// Local calendar days, midnight to midnight, of a [`LocalClock`].
#[derive(Debug, Clone)]
pub struct LocalDays<C>(pub C);

impl<C: LocalClock> DayBoundaries for LocalDays<C> {
    fn day_of(&self, time: Timestamp) -> LocalDate {
        local_date(&self.0, time)
    }

    fn next_day_start(&self, time: Timestamp) -> Timestamp {
        let day = self.day_of(time);
        let next_midnight = (day.0 + 1) * MS_PER_DAY;
        let mut cursor = time;
        // Walk the offset changes up to the next midnight; a change that moves
        // the date (a flight across the date line) is itself a boundary.
        for _ in 0..1_000 {
            let midnight = Timestamp(next_midnight - i64::from(self.0.offset_minutes_at(cursor)) * MS_PER_MINUTE);
            match self.0.next_change_after(cursor) {
                Some(change) if change <= midnight => {
                    if self.day_of(change) != day {
                        return change;
                    }
                    cursor = change;
                }
                _ => {
                    // Exact for clocks that report their changes; a clock that
                    // does not may still change before midnight.
                    let settled = self.0.offset_minutes_at(midnight) == self.0.offset_minutes_at(cursor);
                    let boundary = if settled { midnight } else { instant_of_local(&self.0, next_midnight) };
                    return boundary.max(Timestamp(time.0 + 1));
                }
            }
        }
        instant_of_local(&self.0, next_midnight).max(Timestamp(time.0 + 1))
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::Coord;

    use super::*;

    const HOUR: i64 = 3_600_000;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
        Timestamp::from_civil(y, mo, d, h, mi, 0, 0).unwrap()
    }

    /// Europe/Berlin around the 2024 spring-forward (31 March, 01:00 UTC).
    fn berlin_spring() -> OffsetChanges {
        OffsetChanges::new(60, vec![(utc(2024, 3, 31, 1, 0), 120)])
    }

    #[test]
    fn dates_and_weekdays() {
        let date = LocalDate::from_ymd(2024, 3, 4).unwrap();
        assert_eq!(date.weekday(), 0);
        assert!(date.is_weekday());
        assert!(!LocalDate(date.0 + 5).is_weekday());
        assert_eq!(date.to_string(), "2024-03-04");
        assert_eq!(LocalDate::from_ymd(2023, 2, 29), None);
    }

    #[test]
    fn fixed_offset_days_are_24_hours() {
        let days = LocalDays(FixedOffset(-300));
        let t = utc(2024, 6, 1, 3, 0); // 22:00 on 31 May at UTC-5
        assert_eq!(days.day_of(t), LocalDate::from_ymd(2024, 5, 31).unwrap());
        assert_eq!(days.next_day_start(t), utc(2024, 6, 1, 5, 0));
    }

    #[test]
    fn the_spring_forward_day_has_23_hours() {
        let days = LocalDays(berlin_spring());
        let start = days.next_day_start(utc(2024, 3, 30, 12, 0));
        let end = days.next_day_start(start);
        assert_eq!(start, utc(2024, 3, 30, 23, 0));
        assert_eq!(end, utc(2024, 3, 31, 22, 0));
        assert_eq!(end.0 - start.0, 23 * HOUR);
        assert_eq!(days.day_of(start), LocalDate::from_ymd(2024, 3, 31).unwrap());
    }

    #[test]
    fn a_closure_clock_finds_the_same_boundary_without_change_information() {
        let zone = berlin_spring();
        let closure = |t: Timestamp| zone.offset_minutes_at(t);
        let days = LocalDays(closure);
        assert_eq!(days.next_day_start(utc(2024, 3, 31, 0, 30)), utc(2024, 3, 31, 22, 0));
    }

    #[test]
    fn crossing_the_date_line_eastwards_skips_into_the_next_day_at_the_change() {
        // Fiji (+12) to Samoa-like -11 at 03:00 UTC: the local date goes back a day.
        let change = utc(2024, 5, 1, 3, 0);
        let days = LocalDays(OffsetChanges::new(720, vec![(change, -660)]));
        let before = utc(2024, 5, 1, 1, 0); // 13:00 on 1 May in Fiji
        assert_eq!(days.next_day_start(before), change);
        assert_eq!(days.day_of(change), LocalDate::from_ymd(2024, 4, 30).unwrap());
    }

    #[test]
    fn offsets_from_points_carry_forward() {
        let point = |h: i64, offset: Option<i16>| TrackPoint {
            utc_offset_minutes: offset,
            ..TrackPoint::new(Timestamp(h * HOUR), Coord { lat_e7: 1, lon_e7: 1 })
        };
        let clock = OffsetChanges::from_points(
            &[point(0, None), point(1, Some(60)), point(2, None), point(3, Some(120)), point(4, Some(120))],
            0,
        );
        assert_eq!(clock.offset_minutes_at(Timestamp(0)), 60);
        assert_eq!(clock.offset_minutes_at(Timestamp(2 * HOUR + 5)), 60);
        assert_eq!(clock.offset_minutes_at(Timestamp(3 * HOUR)), 120);
        assert_eq!(clock.next_change_after(Timestamp(0)), Some(Timestamp(3 * HOUR)));
        assert_eq!(OffsetChanges::from_points(&[point(0, None)], -480).offset_minutes_at(Timestamp(0)), -480);
    }

    #[test]
    fn local_readings_map_back_to_instants() {
        let zone = berlin_spring();
        let local_noon = LocalDate::from_ymd(2024, 3, 31).unwrap().0 * MS_PER_DAY + 12 * HOUR;
        assert_eq!(instant_of_local(&zone, local_noon), utc(2024, 3, 31, 10, 0));
        let local_noon_before = local_noon - MS_PER_DAY;
        assert_eq!(instant_of_local(&zone, local_noon_before), utc(2024, 3, 30, 11, 0));
    }
}
