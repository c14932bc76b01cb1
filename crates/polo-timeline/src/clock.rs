//! Local time: which calendar day an instant belongs to, where the user was.
//!
//! polo stores instants in UTC; a "day" in the timeline is the user's local
//! day, which is 23 or 25 hours long at a DST change and 30 hours long on a
//! flight from Berlin to New York. The caller supplies UTC offsets through a
//! [`LocalClock`]: points carry the one their source gave (see
//! [`polo_domain::Fix::utc_offset_minutes`]), and many sources (Google's
//! Records.json, most GPX files) give none. For those, a [`ZoneLookup`]
//! says which time zone a position lies in and what that zone's offset is
//! at an instant. This crate holds no time-zone data itself: the lookup is
//! passed in by the layer that owns the data (`polo-tz`), so the algorithms
//! stay pure and tests can use a two-zone toy world.
//!
//! [`OffsetChanges::from_track`] builds the clock of a track: the stated
//! offset where a point has one, the zone at the point's position otherwise,
//! with the zone's own changes (DST) at their exact instants between two
//! points. [`OffsetChanges::from_points`] is the same without a lookup,
//! carrying each stated offset forward until the next point that states
//! another.
//!
//! [`DayBoundaries`] is what day-based statistics need: the local date of an
//! instant and the next instant at which the date changes. [`LocalDays`]
//! derives both from a clock; a caller with another notion of a day (one that
//! starts at 04:00, say) implements the trait itself.

use std::fmt;

use polo_domain::time::{MS_PER_DAY, civil_from_days, days_from_civil, days_in_month};
use polo_domain::{Coord, Timestamp};
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

/// A time zone as a [`ZoneLookup`] numbers it (an index into its own table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ZoneId(pub u16);

/// Which time zone a position lies in, and the offsets of each zone over
/// time: what a point that states no UTC offset of its own goes by.
pub trait ZoneLookup: Send + Sync {
    /// The zone at `coord`. Every position has one: open sea gets a
    /// nautical zone (`Etc/GMT±N`) or the nearest land's.
    fn zone_at(&self, coord: Coord) -> ZoneId;

    /// Minutes east of UTC in `zone` at `time` (DST included).
    fn zone_offset_minutes(&self, zone: ZoneId, time: Timestamp) -> i16;

    /// The first instant after `time` at which `zone`'s offset changes.
    fn zone_next_change(&self, zone: ZoneId, time: Timestamp) -> Option<Timestamp>;

    /// The zone's IANA name, e.g. `Europe/Berlin`.
    fn zone_name(&self, zone: ZoneId) -> &str;
}

/// The clock of one zone of a [`ZoneLookup`]: what a clock on the wall there shows.
#[derive(Clone, Copy)]
pub struct ZoneClock<'a> {
    /// Where the zones come from.
    pub zones: &'a dyn ZoneLookup,
    /// The zone.
    pub zone: ZoneId,
}

impl fmt::Debug for ZoneClock<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("ZoneClock").field(&self.zones.zone_name(self.zone)).finish()
    }
}

impl LocalClock for ZoneClock<'_> {
    fn offset_minutes_at(&self, time: Timestamp) -> i16 {
        self.zones.zone_offset_minutes(self.zone, time)
    }

    fn next_change_after(&self, time: Timestamp) -> Option<Timestamp> {
        self.zones.zone_next_change(self.zone, time)
    }
}

/// Positions closer than this (1e-7 degree units: 0.001°, about 110 m) are
/// taken to be in the same zone as the last one looked up, so a stay of a
/// thousand points costs one zone lookup. The bundled boundaries are
/// simplified to about the same distance.
const ZONE_CELL_E7: u32 = 10_000;

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

    /// The clock of a time-sorted track: each point's stated offset where it
    /// has one, else the offset of the zone at its position at its instant
    /// (`zones`). Between two points in the same zone that state nothing, the
    /// zone's own changes (a DST night) fall at their exact instants; between
    /// points that disagree otherwise, the offset changes at the later point.
    /// Before the first point its offset applies, after the last the last
    /// one. An empty track gets UTC.
    #[must_use]
    pub fn from_track(points: &[TrackPoint], zones: &dyn ZoneLookup) -> Self {
        let mut clock = Self { initial: 0, changes: Vec::new() };
        let mut current: Option<i16> = None;
        let mut push = |clock: &mut Self, time: Timestamp, offset: i16| match current {
            None => {
                clock.initial = offset;
                current = Some(offset);
            }
            Some(now) if now != offset => {
                // Two points of the same instant may disagree: the later in the slice wins.
                if clock.changes.last().is_some_and(|&(at, _)| at == time) {
                    clock.changes.pop();
                }
                if clock.changes.last().map_or(clock.initial, |&(_, o)| o) != offset {
                    clock.changes.push((time, offset));
                }
                current = Some(offset);
            }
            Some(_) => {}
        };
        let mut cached: Option<(Coord, ZoneId)> = None;
        for (index, point) in points.iter().enumerate() {
            if let Some(offset) = point.utc_offset_minutes {
                push(&mut clock, point.time, offset);
                continue;
            }
            let zone = match cached {
                Some((at, zone))
                    // `abs_diff`: across the antimeridian the difference of two
                    // longitudes in 1e-7 degrees is beyond `i32`.
                    if at.lat_e7.abs_diff(point.coord.lat_e7) < ZONE_CELL_E7
                        && at.lon_e7.abs_diff(point.coord.lon_e7) < ZONE_CELL_E7 =>
                {
                    zone
                }
                _ => {
                    let zone = zones.zone_at(point.coord);
                    cached = Some((point.coord, zone));
                    zone
                }
            };
            push(&mut clock, point.time, zones.zone_offset_minutes(zone, point.time));
            // The zone's own changes up to the next point.
            let Some(next) = points.get(index + 1).map(|p| p.time) else { continue };
            let mut cursor = point.time;
            while let Some(change) = zones.zone_next_change(zone, cursor).filter(|&at| at < next && at > cursor) {
                push(&mut clock, change, zones.zone_offset_minutes(zone, change));
                cursor = change;
            }
        }
        clock
    }

    /// The offset in force at the start of the clock (before any change).
    #[must_use]
    pub fn initial(&self) -> i16 {
        self.initial
    }

    /// The changes after `from` up to and excluding `to`, in time order.
    #[must_use]
    pub fn changes_between(&self, from: Timestamp, to: Timestamp) -> &[(Timestamp, i16)] {
        let start = self.changes.partition_point(|&(at, _)| at <= from);
        let end = self.changes.partition_point(|&(at, _)| at < to).max(start);
        &self.changes[start..end]
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

    /// A toy world: west of 0° is a fixed UTC-1, east of it follows the
    /// 2024 Berlin rules around the spring change (+60, +120 from 31 March
    /// 01:00 UTC).
    struct ToyZones;

    impl ZoneLookup for ToyZones {
        fn zone_at(&self, coord: Coord) -> ZoneId {
            ZoneId(u16::from(coord.lon_e7 >= 0))
        }

        fn zone_offset_minutes(&self, zone: ZoneId, time: Timestamp) -> i16 {
            match zone {
                ZoneId(0) => -60,
                _ => berlin_spring().offset_minutes_at(time),
            }
        }

        fn zone_next_change(&self, zone: ZoneId, time: Timestamp) -> Option<Timestamp> {
            match zone {
                ZoneId(0) => None,
                _ => berlin_spring().next_change_after(time),
            }
        }

        fn zone_name(&self, zone: ZoneId) -> &str {
            if zone == ZoneId(0) { "Toy/West" } else { "Toy/Berlin" }
        }
    }

    fn at(time: Timestamp, lon: f64, offset: Option<i16>) -> TrackPoint {
        TrackPoint { utc_offset_minutes: offset, ..TrackPoint::new(time, Coord::from_degrees(53.87, lon).unwrap()) }
    }

    #[test]
    fn a_track_without_offsets_takes_the_zone_of_each_position() {
        let east = utc(2024, 3, 30, 12, 0);
        let west = utc(2024, 3, 30, 14, 0);
        let clock = OffsetChanges::from_track(&[at(east, 10.7, None), at(west, -5.0, None)], &ToyZones);
        assert_eq!(clock.offset_minutes_at(east), 60);
        assert_eq!(clock.offset_minutes_at(west), -60);
        assert_eq!(clock.next_change_after(east), Some(west));
    }

    #[test]
    fn a_jump_across_the_antimeridian_looks_the_zone_up_again() {
        // 179.9° E then 179.9° W: the longitudes differ by more than an i32 of 1e-7 degrees holds.
        let east = utc(2024, 3, 30, 12, 0);
        let west = utc(2024, 3, 30, 13, 0);
        let clock = OffsetChanges::from_track(&[at(east, 179.9, None), at(west, -179.9, None)], &ToyZones);
        assert_eq!(clock.offset_minutes_at(east), 60);
        assert_eq!(clock.offset_minutes_at(west), -60);
    }

    #[test]
    fn stated_offsets_win_over_the_zone() {
        let t = utc(2024, 3, 30, 12, 0);
        let clock =
            OffsetChanges::from_track(&[at(t, 10.7, Some(330)), at(Timestamp(t.0 + HOUR), 10.7, None)], &ToyZones);
        assert_eq!(clock.offset_minutes_at(t), 330);
        assert_eq!(clock.offset_minutes_at(Timestamp(t.0 + HOUR)), 60);
    }

    #[test]
    fn a_dst_change_between_two_sparse_points_falls_at_its_exact_instant() {
        // Asleep from Saturday 22:00 to Sunday 08:00 local, one point at each end.
        let evening = utc(2024, 3, 30, 21, 0);
        let morning = utc(2024, 3, 31, 6, 0);
        let clock = OffsetChanges::from_track(&[at(evening, 10.7, None), at(morning, 10.7, None)], &ToyZones);
        let change = utc(2024, 3, 31, 1, 0);
        assert_eq!(clock.changes_between(evening, morning), &[(change, 120)]);
        assert_eq!(clock.offset_minutes_at(Timestamp(change.0 - 1)), 60);
        assert_eq!(clock.offset_minutes_at(change), 120);
        // The Sunday has 23 hours on this clock.
        let days = LocalDays(clock);
        let sunday = days.next_day_start(evening);
        assert_eq!(days.next_day_start(sunday).0 - sunday.0, 23 * HOUR);
        // Nothing after the last point: the zone's next change is not guessed at.
        assert_eq!(days.0.changes_between(morning, Timestamp(morning.0 + 400 * 24 * HOUR)), &[]);
    }

    #[test]
    fn a_track_across_the_antimeridian_takes_each_sides_zone() {
        // Fiji to Samoa: 179.9° E, then 179.9° W a minute later (the longitudes
        // differ by more than an `i32` of 1e-7 degrees holds).
        let t = utc(2024, 3, 30, 12, 0);
        let later = Timestamp(t.0 + 60_000);
        let clock = OffsetChanges::from_track(&[at(t, 179.9, None), at(later, -179.9, None)], &ToyZones);
        assert_eq!((clock.offset_minutes_at(t), clock.offset_minutes_at(later)), (60, -60));
    }

    #[test]
    fn an_empty_track_is_utc() {
        let clock = OffsetChanges::from_track(&[], &ToyZones);
        assert_eq!((clock.initial(), clock.next_change_after(Timestamp(0))), (0, None));
    }

    #[test]
    fn a_zone_clock_follows_its_zone() {
        let clock = ZoneClock { zones: &ToyZones, zone: ZoneId(1) };
        assert_eq!(clock.offset_minutes_at(utc(2024, 3, 31, 0, 59)), 60);
        assert_eq!(clock.next_change_after(utc(2024, 3, 31, 0, 59)), Some(utc(2024, 3, 31, 1, 0)));
        assert_eq!(format!("{clock:?}"), "ZoneClock(\"Toy/Berlin\")");
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
