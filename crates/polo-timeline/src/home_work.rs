//! Home and work from dwell patterns.
//!
//! Home is where a person spends the night; work is where they spend weekday
//! working hours, other than home. polo sums, for each place, the time its
//! stays overlap a local-time window — the night (22:00–06:00) on every day,
//! working hours (09:00–17:00) on Monday to Friday — and picks the place with
//! the most. A place must also have been seen in the window on at least
//! `min_days` different days, so that one night at a hotel or one long
//! meeting elsewhere does not win on a short history. Windows are local time
//! through a caller-supplied [`LocalClock`], so DST and travel move them with
//! the user's wall clock.

use serde::{Deserialize, Serialize};

use crate::clock::{LocalClock, LocalDate, instant_of_local, local_date};
use crate::stay::Stay;
use polo_domain::Timestamp;
use polo_domain::time::MS_PER_DAY;

const MS_PER_MINUTE: i64 = 60_000;

/// Windows and thresholds for [`detect_home_work`]; minutes are since local midnight.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HomeWorkParams {
    /// Night starts (default 22:00 = 1320); may be later than its end, wrapping midnight.
    pub night_start_minute: u16,
    /// Night ends (default 06:00 = 360).
    pub night_end_minute: u16,
    /// Working hours start on weekdays (default 09:00 = 540).
    pub work_start_minute: u16,
    /// Working hours end (default 17:00 = 1020).
    pub work_end_minute: u16,
    /// The fewest distinct days a place must be seen in the window (default 2).
    pub min_days: u32,
}

impl Default for HomeWorkParams {
    fn default() -> Self {
        Self {
            night_start_minute: 22 * 60,
            night_end_minute: 6 * 60,
            work_start_minute: 9 * 60,
            work_end_minute: 17 * 60,
            min_days: 2,
        }
    }
}

/// How much of a window a place got.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlaceDwell {
    /// The place, as a cluster index of [`crate::cluster_places`].
    pub place: usize,
    /// Time inside the window. Milliseconds.
    pub dwell_ms: i64,
    /// Distinct days (the date a window starts on) with some dwell.
    pub days: u32,
}

/// The outcome of [`detect_home_work`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct HomeWork {
    /// The place with the most night-time dwell, if any qualifies.
    pub home: Option<PlaceDwell>,
    /// The place other than home with the most weekday working-hours dwell.
    pub work: Option<PlaceDwell>,
}

/// A daily local-time window.
#[derive(Clone, Copy)]
struct Window {
    start_minute: u16,
    end_minute: u16,
    weekdays_only: bool,
}

impl Window {
    /// The window's instants on the day it starts.
    fn on(self, date: LocalDate, clock: &impl LocalClock) -> (Timestamp, Timestamp) {
        let midnight = date.0 * MS_PER_DAY;
        let end_day = if self.end_minute <= self.start_minute { midnight + MS_PER_DAY } else { midnight };
        (
            instant_of_local(clock, midnight + i64::from(self.start_minute) * MS_PER_MINUTE),
            instant_of_local(clock, end_day + i64::from(self.end_minute) * MS_PER_MINUTE),
        )
    }
}

/// Per place: window dwell and the last day counted (to count days once).
#[derive(Clone, Copy, Default)]
struct Tally {
    dwell_ms: i64,
    days: u32,
    last_day: Option<LocalDate>,
}

fn tally(stays: &[Stay], places: &[Option<usize>], clock: &impl LocalClock, window: Window) -> Vec<Tally> {
    let count = places.iter().flatten().max().map_or(0, |&max| max + 1);
    let mut tallies = vec![Tally::default(); count];
    for (stay, place) in stays.iter().zip(places) {
        let Some(place) = *place else { continue };
        // A window that wraps midnight starts the day before.
        let first = LocalDate(local_date(clock, stay.start).0 - 1);
        let last = local_date(clock, stay.end);
        for day in first.0..=last.0 {
            let date = LocalDate(day);
            if window.weekdays_only && !date.is_weekday() {
                continue;
            }
            let (from, to) = window.on(date, clock);
            let overlap = stay.end.min(to).0 - stay.start.max(from).0;
            if overlap > 0 {
                let entry = &mut tallies[place];
                entry.dwell_ms += overlap;
                if entry.last_day != Some(date) {
                    entry.days += 1;
                    entry.last_day = Some(date);
                }
            }
        }
    }
    tallies
}

fn best(tallies: &[Tally], min_days: u32, except: Option<usize>) -> Option<PlaceDwell> {
    tallies
        .iter()
        .enumerate()
        .filter(|&(place, t)| Some(place) != except && t.days >= min_days && t.dwell_ms > 0)
        .max_by_key(|&(place, t)| (t.dwell_ms, std::cmp::Reverse(place)))
        .map(|(place, t)| PlaceDwell { place, dwell_ms: t.dwell_ms, days: t.days })
}

/// Finds home and work among the places of a user's stays.
///
/// `places[i]` is the place of `stays[i]` (for instance
/// [`crate::Clustering::labels`]); stays without a place are ignored, and so
/// are stays beyond the end of `places`. Stays must be sorted by time, as
/// detected; days are counted once per place even when several stays cover them.
#[must_use]
pub fn detect_home_work(
    stays: &[Stay],
    places: &[Option<usize>],
    clock: &impl LocalClock,
    params: &HomeWorkParams,
) -> HomeWork {
    let night =
        Window { start_minute: params.night_start_minute, end_minute: params.night_end_minute, weekdays_only: false };
    let work_hours =
        Window { start_minute: params.work_start_minute, end_minute: params.work_end_minute, weekdays_only: true };
    let home = best(&tally(stays, places, clock, night), params.min_days, None);
    let work = best(&tally(stays, places, clock, work_hours), params.min_days, home.map(|h| h.place));
    HomeWork { home, work }
}

#[cfg(test)]
mod tests {
    use polo_domain::Coord;

    use super::*;
    use crate::clock::{FixedOffset, OffsetChanges};

    const HOUR: i64 = 3_600_000;

    /// Local (UTC+1) time on March 2024 day `d` at `h` hours.
    fn local(d: u32, h: u32) -> Timestamp {
        Timestamp(Timestamp::from_civil(2024, 3, d, h, 0, 0, 0).unwrap().0 - HOUR)
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

    /// A working week (4 March 2024 is a Monday): nights at place 0, days at place 1,
    /// Saturday at place 2, and one night at a hotel (place 3).
    fn week() -> (Vec<Stay>, Vec<Option<usize>>) {
        let mut stays = Vec::new();
        let mut places = Vec::new();
        for d in 4..=8 {
            let home = if d == 6 { 3 } else { 0 };
            stays.push(stay(local(d, 18), local(d + 1, 8)));
            places.push(Some(home));
            stays.push(stay(local(d + 1, 9), local(d + 1, 17)));
            places.push(if d < 8 { Some(1) } else { Some(2) });
        }
        (stays, places)
    }

    #[test]
    fn nights_make_home_and_weekday_hours_make_work() {
        let (stays, places) = week();
        let found = detect_home_work(&stays, &places, &FixedOffset(60), &HomeWorkParams::default());
        let home = found.home.unwrap();
        assert_eq!((home.place, home.days, home.dwell_ms), (0, 4, 4 * 8 * HOUR));
        let work = found.work.unwrap();
        // Tuesday to Friday; Saturday's place 2 is outside working days.
        assert_eq!((work.place, work.days, work.dwell_ms), (1, 4, 4 * 8 * HOUR));
    }

    #[test]
    fn one_night_is_not_enough_and_nothing_in_nothing_out() {
        let stays = [stay(local(4, 20), local(5, 7))];
        let found = detect_home_work(&stays, &[Some(0)], &FixedOffset(60), &HomeWorkParams::default());
        assert_eq!(found, HomeWork::default());
        assert_eq!(detect_home_work(&[], &[], &FixedOffset(0), &HomeWorkParams::default()), HomeWork::default());
    }

    #[test]
    fn work_is_never_home() {
        // Someone who works from home: the only place is home, and there is no work place.
        let stays: Vec<_> = (4..9).map(|d| stay(local(d, 0), local(d + 1, 0))).collect();
        let found = detect_home_work(&stays, &[Some(0); 5], &FixedOffset(60), &HomeWorkParams::default());
        assert_eq!(found.home.map(|h| h.place), Some(0));
        assert_eq!(found.work, None);
    }

    #[test]
    fn windows_follow_the_local_clock_across_dst() {
        // Berlin springs forward on Sunday 31 March 2024; the office stays are
        // 09:00–17:00 local before and after, which is 08:00 UTC then 07:00 UTC.
        let zone = OffsetChanges::new(60, vec![(Timestamp::from_civil(2024, 3, 31, 1, 0, 0, 0).unwrap(), 120)]);
        let at = |d: u32, h: u32, offset: i64| {
            let (month, day) = if d > 31 { (4, d - 31) } else { (3, d) };
            Timestamp(Timestamp::from_civil(2024, month, day, h, 0, 0, 0).unwrap().0 - offset * HOUR)
        };
        let stays = [stay(at(28, 9, 1), at(28, 17, 1)), stay(at(32, 9, 2), at(32, 17, 2))];
        let found = detect_home_work(&stays, &[Some(4), Some(4)], &zone, &HomeWorkParams::default());
        assert_eq!(found.work.map(|w| (w.place, w.dwell_ms)), Some((4, 16 * HOUR)));
    }
}
