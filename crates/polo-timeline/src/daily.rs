//! Per-day statistics: how far, how long moving by each mode, how long still.
//!
//! Days are the user's local days as a [`DayBoundaries`] defines them, so a
//! day can be 23, 25 or 30 hours long. A leg or stay that spans a boundary is
//! split there; a leg's distance is shared out in proportion to the time on
//! each side, because the stored leg no longer knows where its points were at
//! midnight (within a leg, speed is the best guess there is). Time between a
//! leg's end and the next stay's start is a recording gap and counts as
//! neither moving nor stationary.

use std::collections::BTreeMap;

use polo_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::clock::{DayBoundaries, LocalDate};
use crate::leg::Leg;
use crate::mode::TransportMode;
use crate::stay::Stay;

/// One value per transport mode.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct ByMode<T> {
    /// On foot.
    pub walk: T,
    /// Bicycle.
    pub cycle: T,
    /// Road vehicle.
    pub road: T,
    /// Train.
    pub rail: T,
    /// Aeroplane.
    pub flight: T,
    /// Not known.
    pub unknown: T,
}

impl<T> ByMode<T> {
    /// The value for `mode`.
    pub fn get(&self, mode: TransportMode) -> &T {
        match mode {
            TransportMode::Walk => &self.walk,
            TransportMode::Cycle => &self.cycle,
            TransportMode::Road => &self.road,
            TransportMode::Rail => &self.rail,
            TransportMode::Flight => &self.flight,
            TransportMode::Unknown => &self.unknown,
        }
    }

    /// The value for `mode`, mutably.
    pub fn get_mut(&mut self, mode: TransportMode) -> &mut T {
        match mode {
            TransportMode::Walk => &mut self.walk,
            TransportMode::Cycle => &mut self.cycle,
            TransportMode::Road => &mut self.road,
            TransportMode::Rail => &mut self.rail,
            TransportMode::Flight => &mut self.flight,
            TransportMode::Unknown => &mut self.unknown,
        }
    }
}

/// The statistics of one local day.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DayStats {
    /// Which day.
    pub date: LocalDate,
    /// Distance travelled. Metres.
    pub distance_m: f64,
    /// Distance travelled per mode. Metres.
    pub distance_m_by_mode: ByMode<f64>,
    /// Time moving per mode. Milliseconds.
    pub moving_ms_by_mode: ByMode<i64>,
    /// Time in stays. Milliseconds.
    pub stationary_ms: i64,
}

impl DayStats {
    fn new(date: LocalDate) -> Self {
        Self {
            date,
            distance_m: 0.0,
            distance_m_by_mode: ByMode::default(),
            moving_ms_by_mode: ByMode::default(),
            stationary_ms: 0,
        }
    }

    /// Time moving, all modes. Milliseconds.
    #[must_use]
    pub fn moving_ms(&self) -> i64 {
        TransportMode::ALL.iter().map(|&mode| *self.moving_ms_by_mode.get(mode)).sum()
    }
}

/// Splits `[start, end)` at day boundaries, calling `each(day, milliseconds)`
/// for every piece (nothing for an empty interval).
pub fn split_by_day(days: &impl DayBoundaries, start: Timestamp, end: Timestamp, mut each: impl FnMut(LocalDate, i64)) {
    let mut cursor = start;
    while cursor < end {
        let boundary = days.next_day_start(cursor).min(end);
        each(days.day_of(cursor), boundary.0 - cursor.0);
        cursor = boundary;
    }
}

/// Aggregates a timeline's stays and legs per local day, in date order.
/// Days on which nothing was recorded are absent.
#[must_use]
pub fn daily_stats(stays: &[Stay], legs: &[Leg], days: &impl DayBoundaries) -> Vec<DayStats> {
    let mut by_day: BTreeMap<LocalDate, DayStats> = BTreeMap::new();
    for stay in stays {
        split_by_day(days, stay.start, stay.end, |date, ms| {
            by_day.entry(date).or_insert_with(|| DayStats::new(date)).stationary_ms += ms;
        });
    }
    for leg in legs {
        let duration = leg.duration_ms();
        if duration <= 0 {
            let day = by_day.entry(days.day_of(leg.start)).or_insert_with(|| DayStats::new(days.day_of(leg.start)));
            day.distance_m += leg.distance_m;
            *day.distance_m_by_mode.get_mut(leg.mode) += leg.distance_m;
            continue;
        }
        split_by_day(days, leg.start, leg.end, |date, ms| {
            // Time shares of a leg are exact in f64 (both below 2^53).
            #[allow(clippy::cast_precision_loss)]
            let share = leg.distance_m * (ms as f64 / duration as f64);
            let day = by_day.entry(date).or_insert_with(|| DayStats::new(date));
            day.distance_m += share;
            *day.distance_m_by_mode.get_mut(leg.mode) += share;
            *day.moving_ms_by_mode.get_mut(leg.mode) += ms;
        });
    }
    by_day.into_values().collect()
}

#[cfg(test)]
mod tests {
    use polo_domain::Coord;

    use super::*;
    use crate::clock::{FixedOffset, LocalDays, OffsetChanges};
    use crate::leg::LegSource;
    use crate::mode::SpeedProfile;

    const HOUR: i64 = 3_600_000;

    fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> Timestamp {
        Timestamp::from_civil(y, mo, d, h, mi, 0, 0).unwrap()
    }

    fn date(y: i32, m: u32, d: u32) -> LocalDate {
        LocalDate::from_ymd(y, m, d).unwrap()
    }

    fn stay(start: Timestamp, end: Timestamp) -> Stay {
        Stay {
            start,
            end,
            last_seen: start,
            decided_at: end,
            centroid: Coord { lat_e7: 1, lon_e7: 1 },
            points: 0..1,
            point_count: 1,
        }
    }

    fn leg(start: Timestamp, end: Timestamp, mode: TransportMode, metres: f64) -> Leg {
        Leg {
            start,
            end,
            points: 0..2,
            point_count: 2,
            distance_m: metres,
            speed: SpeedProfile::default(),
            mode,
            source: LegSource::Tracked,
        }
    }

    #[test]
    fn nothing_recorded_means_no_days() {
        assert!(daily_stats(&[], &[], &LocalDays(FixedOffset(0))).is_empty());
    }

    #[test]
    fn a_leg_across_midnight_is_split_in_proportion_to_time() {
        // A night drive 23:00–01:00 local (UTC+1), 120 km.
        let days = LocalDays(FixedOffset(60));
        let legs = [leg(utc(2024, 6, 1, 22, 0), utc(2024, 6, 2, 0, 0), TransportMode::Road, 120_000.0)];
        let stats = daily_stats(&[], &legs, &days);
        assert_eq!(stats.len(), 2);
        assert_eq!((stats[0].date, stats[1].date), (date(2024, 6, 1), date(2024, 6, 2)));
        assert!((stats[0].distance_m - 60_000.0).abs() < 1e-6);
        assert!((stats[1].distance_m_by_mode.road - 60_000.0).abs() < 1e-6);
        assert_eq!(stats[0].moving_ms_by_mode.road, HOUR);
        assert_eq!(stats[1].moving_ms(), HOUR);
    }

    #[test]
    fn stays_count_as_stationary_time_on_each_day_they_cover() {
        let days = LocalDays(FixedOffset(0));
        let stays = [stay(utc(2024, 6, 1, 18, 0), utc(2024, 6, 2, 8, 0))];
        let stats = daily_stats(&stays, &[], &days);
        let stationary: Vec<_> = stats.iter().map(|d| d.stationary_ms).collect();
        assert_eq!(stationary, [6 * HOUR, 8 * HOUR]);
    }

    #[test]
    fn a_dst_day_has_23_hours_of_stationary_time() {
        let days = LocalDays(OffsetChanges::new(60, vec![(utc(2024, 3, 31, 1, 0), 120)]));
        // At home from Saturday noon to Monday noon.
        let stays = [stay(utc(2024, 3, 30, 11, 0), utc(2024, 4, 1, 10, 0))];
        let stats = daily_stats(&stays, &[], &days);
        let by_date: Vec<_> = stats.iter().map(|d| (d.date, d.stationary_ms / HOUR)).collect();
        assert_eq!(by_date, [(date(2024, 3, 30), 12), (date(2024, 3, 31), 23), (date(2024, 4, 1), 12)]);
    }

    #[test]
    fn a_day_crossing_time_zones_is_longer() {
        // Berlin (UTC+2) to New York (UTC-4), leaving 10:00 local, landing 12:30 local.
        let departure = utc(2024, 6, 3, 8, 0);
        let arrival = utc(2024, 6, 3, 16, 30);
        let days = LocalDays(OffsetChanges::new(120, vec![(arrival, -240)]));
        let stays = [stay(utc(2024, 6, 2, 22, 0), departure), stay(arrival, utc(2024, 6, 4, 4, 0))];
        let legs = [leg(departure, arrival, TransportMode::Flight, 6_400_000.0)];
        let stats = daily_stats(&stays, &legs, &days);
        let day = stats.iter().find(|d| d.date == date(2024, 6, 3)).unwrap();
        // Berlin midnight to New York midnight: 30 hours, all of it recorded.
        assert_eq!(day.stationary_ms + day.moving_ms(), 30 * HOUR);
        assert_eq!(day.moving_ms_by_mode.flight, 8 * HOUR + 30 * 60_000);
        assert!((day.distance_m_by_mode.flight - 6_400_000.0).abs() < 1e-6);
    }

    #[test]
    fn an_instant_leg_counts_its_distance_on_its_day() {
        let t = utc(2024, 6, 1, 12, 0);
        let stats = daily_stats(&[], &[leg(t, t, TransportMode::Unknown, 40.0)], &LocalDays(FixedOffset(0)));
        assert_eq!(stats.len(), 1);
        assert_eq!(stats[0].distance_m, 40.0);
        assert_eq!(stats[0].moving_ms(), 0);
    }
}
