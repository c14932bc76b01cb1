//! The life's calendar, decided up front (it is small: a few entries a
//! year): holidays, weekend trips, days without any fix, the phone switch,
//! the move to a new flat, the job change and the months Google's Semantic
//! Location History covers. Days are home-zone dates, as days since
//! 1970-01-01.

use polo_domain::time::{civil_from_days, days_from_civil};

use crate::plan::local_day;
use crate::rng::Rng;
use crate::world::World;
use crate::zones::{Zone, weekday};

/// A holiday: fly out on `first_day`, fly back on `last_day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    /// Index into [`World::destinations`].
    pub destination: usize,
    /// Departure day.
    pub first_day: i64,
    /// Return day (at the destination's local date).
    pub last_day: i64,
    /// The sightseeing walks are recorded as GPX.
    pub gpx: bool,
}

/// A weekend trip by car: Saturday out, Sunday back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WeekendTrip {
    /// Index into [`World::towns`].
    pub town: usize,
    /// The Saturday.
    pub first_day: i64,
    /// The trip is recorded as GPX.
    pub gpx: bool,
}

/// The calendar of one life.
#[derive(Debug, Clone)]
pub struct Calendar {
    /// First day.
    pub start_day: i64,
    /// Day after the last.
    pub end_day: i64,
    /// Holidays, in order.
    pub holidays: Vec<Holiday>,
    /// Weekend trips, in order.
    pub weekend_trips: Vec<WeekendTrip>,
    /// Inclusive day ranges without any fix from any device (phone off, broken, forgotten).
    pub gaps: Vec<(i64, i64)>,
    /// The first day in the second home.
    pub move_day: i64,
    /// The first day of the second job.
    pub job_change_day: i64,
    /// Days the first phone records: `[from, to)`.
    pub phone_a: (i64, i64),
    /// Days the second phone records: `[from, to)`; overlaps `phone_a` by months.
    pub phone_b: (i64, i64),
    /// Days covered by Semantic Location History files: `[from, to)`.
    pub semantic: (i64, i64),
}

fn day_of(year: i32, month: u32, day: u32) -> i64 {
    days_from_civil(year, month, day)
}

impl Calendar {
    /// The calendar for `days` days from `start_day`.
    #[must_use]
    pub fn new(seed: u64, world: &World, start_day: i64, days: i64) -> Self {
        let mut rng = Rng::new(seed, 0xca1e_0001);
        let end_day = start_day + days;
        #[allow(clippy::cast_possible_truncation)]
        let at = |fraction: f64| start_day + (days as f64 * fraction) as i64;
        let mut busy = vec![false; usize::try_from(days.max(0)).unwrap_or(0)];
        let mut holidays = Vec::new();
        let (first_year, last_year) = (civil_from_days(start_day).0, civil_from_days(end_day).0);
        let taveuni = world.taveuni();
        let others: Vec<usize> = (0..world.destinations.len()).filter(|&d| d != taveuni).collect();
        let mut fiji_done = false;
        // The other destinations take turns, so a decade sees each of them.
        let mut turn = rng.index(others.len().max(1));
        // The user is at home (phones on) when the clocks change there:
        // every life has its DST days in the home zone.
        for year in first_year..=last_year {
            for (at, _) in Zone::Berlin.transitions(year) {
                let day = local_day(at, Zone::Berlin);
                reserve(&mut busy, start_day, day - 1, day + 1);
            }
        }
        for year in first_year..=last_year {
            // (window for the departure day, length range, chance)
            let seasons = [
                ((day_of(year, 3, 5), day_of(year, 4, 25)), (5, 9), 0.6, false),
                ((day_of(year, 6, 15), day_of(year, 8, 20)), (10, 16), 1.0, true),
                ((day_of(year, 10, 1), day_of(year, 11, 10)), (5, 9), 0.7, false),
            ];
            for ((lo, hi), (min_len, max_len), chance, summer) in seasons {
                if !rng.chance(chance) {
                    continue;
                }
                let len = rng.between(min_len, max_len);
                let (lo, hi) = (lo.max(start_day + 10), hi.min(end_day - len - 5));
                if lo > hi {
                    continue;
                }
                let first_day = rng.between(lo, hi);
                let destination = if summer && (!fiji_done || rng.chance(0.2)) {
                    fiji_done = true;
                    taveuni
                } else {
                    turn += 1;
                    others[turn % others.len()]
                };
                let last_day = first_day + len;
                if reserve(&mut busy, start_day, first_day - 2, last_day + 2) {
                    holidays.push(Holiday { destination, first_day, last_day, gpx: rng.chance(0.5) });
                }
            }
        }
        let mut weekend_trips = Vec::new();
        let mut day = start_day + (6 - weekday(start_day)).rem_euclid(7); // first Saturday
        while day + 1 < end_day {
            if rng.chance(0.16) {
                let town = rng.zipf(world.towns.len(), 0.9);
                if reserve(&mut busy, start_day, day, day + 1) {
                    weekend_trips.push(WeekendTrip { town, first_day: day, gpx: rng.chance(0.35) });
                }
            }
            day += 7;
        }
        let mut gaps = Vec::new();
        let mut day = start_day + 14 + (2 - weekday(start_day + 14)).rem_euclid(7); // a Tuesday
        while day + 7 < end_day {
            if rng.chance(0.03) {
                let last = day + rng.between(0, 4);
                if reserve(&mut busy, start_day, day - 1, last + 1) {
                    gaps.push((day, last));
                }
            }
            day += 7;
        }
        // Every life has at least one gap of days: find a free span near 40 %.
        let mut probe = at(0.4);
        while gaps.is_empty() && probe + 10 < end_day {
            if reserve(&mut busy, start_day, probe - 1, probe + 3) {
                gaps.push((probe, probe + 2));
            }
            probe += 1;
        }
        gaps.sort_unstable();
        let overlap = (days / 4).clamp(45, 120);
        let switch = at(0.58);
        Self {
            start_day,
            end_day,
            holidays,
            weekend_trips,
            gaps,
            move_day: at(0.45),
            job_change_day: at(0.62),
            phone_a: (start_day, switch),
            phone_b: (switch - overlap, end_day),
            semantic: (at(0.3), at(0.85)),
        }
    }

    /// True when `day` lies in a gap.
    #[must_use]
    pub fn in_gap(&self, day: i64) -> bool {
        self.gaps.iter().any(|&(a, b)| (a..=b).contains(&day))
    }
}

/// Marks `[from, to]` busy when all of it is free and inside the life.
fn reserve(busy: &mut [bool], start_day: i64, from: i64, to: i64) -> bool {
    let (Ok(a), Ok(b)) = (usize::try_from(from - start_day), usize::try_from(to - start_day)) else {
        return false;
    };
    if b >= busy.len() || busy[a..=b].iter().any(|&x| x) {
        return false;
    }
    busy[a..=b].iter_mut().for_each(|x| *x = true);
    true
}
