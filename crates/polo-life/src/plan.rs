//! The life as a stream of [`Segment`]s: stays at places, moves between
//! them, flights. Generated a day at a time from the [`Calendar`], so the
//! whole decade never sits in memory; the same seed always yields the same
//! stream (the planner owns its own [`Rng`], untouched by the samplers).
//!
//! A day is a list of legs ("leave at 08:10 local for work by bike", "30 to
//! 90 minutes later go on to the supermarket"); each leg ends the current
//! stay and adds a move. The last stay of a day lasts until the first leg of
//! the next, so nights are one stay.

use std::collections::VecDeque;

use polo_domain::time::MS_PER_DAY;

use crate::calendar::Calendar;
use crate::geo::{RoadPath, distance_m};
use crate::rng::Rng;
use crate::world::{PlaceId, World};
use crate::zones::{Zone, weekday};

/// How the user moves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// On foot.
    Walk,
    /// By bicycle.
    Bike,
    /// By car or taxi.
    Car,
    /// By tram, bus or train.
    Transit,
    /// By plane.
    Flight,
}

impl Mode {
    /// Typical speed in m/s for a trip of `distance_m`.
    fn speed(self, distance_m: f64) -> f64 {
        match self {
            Self::Walk => 1.35,
            Self::Bike => 4.3,
            Self::Car if distance_m > 40_000.0 => 24.0,
            Self::Car => 9.5,
            Self::Transit if distance_m > 40_000.0 => 28.0,
            Self::Transit => 7.5,
            Self::Flight if distance_m < 600_000.0 => 75.0,
            Self::Flight => 245.0,
        }
    }
}

/// What the user does during a segment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Activity {
    /// Stays at `Segment::from`.
    Stay,
    /// Travels on the ground to `to`.
    Move {
        /// Destination.
        to: PlaceId,
        /// Means of travel.
        mode: Mode,
        /// The road taken.
        path: RoadPath,
    },
    /// Flies to `to`.
    Flight {
        /// Destination airport.
        to: PlaceId,
        /// Fixes a phone manages in the air (by the window, in flight mode off).
        air_fixes: u8,
    },
}

/// One stretch of the life.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Segment {
    /// Start, UTC ms.
    pub start_ms: i64,
    /// End, UTC ms.
    pub end_ms: i64,
    /// Where it starts.
    pub from: PlaceId,
    /// What happens.
    pub activity: Activity,
    /// GPX track this move is recorded in (a watch on trips), if any.
    pub gpx_track: Option<u32>,
}

/// Where the user is in the calendar.
#[derive(Debug, Clone, Copy)]
enum Away {
    Home,
    Holiday { index: usize, sightseeing_days: u32 },
    Weekend { index: usize },
}

/// A leg of a day's plan.
#[derive(Debug, Clone, Copy)]
enum Depart {
    /// At a local minute in `[lo, hi]` of the plan's date (in the zone of the current place).
    At(i64, i64),
    /// After staying `[lo, hi]` minutes.
    After(i64, i64),
}

/// The planner: an iterator over the life's segments.
#[derive(Debug)]
pub struct Segments<'a> {
    world: &'a World,
    calendar: &'a Calendar,
    rng: Rng,
    now: i64,
    at: PlaceId,
    /// Local date (in the current zone) of the next day to plan.
    next_day: i64,
    away: Away,
    queue: VecDeque<Segment>,
    gpx_track: Option<u32>,
    tracks: u32,
    done: bool,
}

/// UTC ms of a local date and minute in `zone`.
#[must_use]
pub fn local_to_utc(day: i64, minute: i64, zone: Zone) -> i64 {
    let naive = day * MS_PER_DAY + minute * 60_000;
    let guess = naive - i64::from(zone.offset_minutes(naive)) * 60_000;
    naive - i64::from(zone.offset_minutes(guess)) * 60_000
}

/// The local date (days since the epoch) of `utc_ms` in `zone`.
#[must_use]
pub fn local_day(utc_ms: i64, zone: Zone) -> i64 {
    (utc_ms + i64::from(zone.offset_minutes(utc_ms)) * 60_000).div_euclid(MS_PER_DAY)
}

impl<'a> Segments<'a> {
    /// The stream from the life's first day.
    #[must_use]
    pub fn new(seed: u64, world: &'a World, calendar: &'a Calendar) -> Self {
        let at = world.homes[0];
        Self {
            world,
            calendar,
            rng: Rng::new(seed, 0x91a4_0001),
            now: local_to_utc(calendar.start_day, 0, Zone::Berlin),
            at,
            next_day: calendar.start_day,
            away: Away::Home,
            queue: VecDeque::new(),
            gpx_track: None,
            tracks: 0,
            done: false,
        }
    }

    fn zone(&self) -> Zone {
        self.world.place(self.at).zone
    }

    fn home(&self, day: i64) -> PlaceId {
        self.world.homes[usize::from(day >= self.calendar.move_day)]
    }

    fn errand(&mut self, day: i64) -> PlaceId {
        let pool = &self.world.errands[usize::from(day >= self.calendar.move_day)];
        pool[self.rng.zipf(pool.len(), 1.05)]
    }

    fn ground_mode(&mut self, to: PlaceId) -> Mode {
        let d = distance_m(self.world.place(self.at).pos(), self.world.place(to).pos());
        if d < 1_200.0 {
            Mode::Walk
        } else if d < 7_000.0 {
            if self.rng.chance(0.55) { Mode::Bike } else { Mode::Transit }
        } else if d < 40_000.0 {
            if self.rng.chance(0.5) { Mode::Car } else { Mode::Transit }
        } else {
            Mode::Car
        }
    }

    /// Ends the current stay at the departure time and travels to `to`.
    fn go(&mut self, day: i64, depart: Depart, to: PlaceId, mode: Option<Mode>) {
        if to == self.at {
            return;
        }
        let wanted = match depart {
            Depart::At(lo, hi) => local_to_utc(day, self.rng.between(lo, hi), self.zone()),
            Depart::After(lo, hi) => self.now + self.rng.between(lo, hi) * 60_000,
        };
        // Seconds and milliseconds vary, as real departures do.
        let start = wanted.max(self.now + 5 * 60_000) + self.rng.between(0, 59_999);
        self.stay_until(start);
        let (from_pos, to_pos) = (self.world.place(self.at).pos(), self.world.place(to).pos());
        let mode = mode.unwrap_or_else(|| self.ground_mode(to));
        let distance = distance_m(from_pos, to_pos);
        let (activity, seconds) = if mode == Mode::Flight {
            let air_fixes = if self.rng.chance(0.3) { 1 + self.rng.below(3) } else { 0 };
            #[allow(clippy::cast_possible_truncation)]
            let activity = Activity::Flight { to, air_fixes: air_fixes as u8 };
            (activity, distance / mode.speed(distance) + 1_500.0)
        } else {
            // The same pair always bends the same way: one road per trip.
            #[allow(clippy::cast_precision_loss)]
            let bend = ((self.at * 7919 + to * 104_729) % 31) as f64 / 100.0 - 0.15;
            let path = RoadPath::new(from_pos, to_pos, bend);
            let wait = if mode == Mode::Transit { self.rng.range(120.0, 480.0) } else { 30.0 };
            let seconds = path.length_m / (mode.speed(distance) * self.rng.range(0.85, 1.15)) + wait;
            (Activity::Move { to, mode, path }, seconds)
        };
        #[allow(clippy::cast_possible_truncation)]
        let end = start + (seconds * 1000.0) as i64;
        let gpx_track = if mode == Mode::Flight { None } else { self.gpx_track };
        self.queue.push_back(Segment { start_ms: start, end_ms: end, from: self.at, activity, gpx_track });
        self.now = end;
        self.at = to;
    }

    fn stay_until(&mut self, end: i64) {
        if end > self.now {
            let stay =
                Segment { start_ms: self.now, end_ms: end, from: self.at, activity: Activity::Stay, gpx_track: None };
            self.queue.push_back(stay);
            self.now = end;
        }
    }

    fn new_track(&mut self, record: bool) {
        self.gpx_track = record.then(|| {
            self.tracks += 1;
            self.tracks
        });
    }

    /// Plans local date `day` and queues its segments.
    fn plan_day(&mut self, day: i64) {
        let cal = self.calendar;
        match self.away {
            Away::Home => {
                if let Some(index) = cal.holidays.iter().position(|h| h.first_day == day) {
                    self.fly_out(day, index);
                } else if let Some(index) = cal.weekend_trips.iter().position(|t| t.first_day == day) {
                    self.weekend_out(day, index);
                } else if (1..=5).contains(&weekday(day)) {
                    self.workday(day);
                } else {
                    self.free_day(day);
                }
            }
            Away::Holiday { index, sightseeing_days } => {
                if day >= cal.holidays[index].last_day {
                    self.fly_back(day, index);
                } else {
                    self.sightsee(day, index, sightseeing_days);
                }
            }
            Away::Weekend { index } => self.weekend_back(day, index),
        }
    }

    fn workday(&mut self, day: i64) {
        let (home, work) = (self.home(day), self.world.works[usize::from(day >= self.calendar.job_change_day)]);
        let leave = self.rng.between(7 * 60 + 15, 8 * 60 + 50);
        self.go(day, Depart::At(leave, leave), work, None);
        if self.rng.chance(0.3) {
            let lunch = self.errand(day);
            self.go(day, Depart::At(12 * 60, 13 * 60), lunch, None);
            self.go(day, Depart::After(30, 60), work, None);
        }
        let back = self.rng.between(16 * 60 + 20, 18 * 60 + 40);
        if self.rng.chance(0.35) {
            let shop = self.errand(day);
            self.go(day, Depart::At(back, back), shop, None);
            self.go(day, Depart::After(10, 40), home, None);
        } else {
            self.go(day, Depart::At(back, back), home, None);
        }
        if self.rng.chance(0.3) {
            let out = self.errand(day);
            self.go(day, Depart::At(19 * 60, 20 * 60 + 30), out, None);
            self.go(day, Depart::At(21 * 60 + 30, 23 * 60 + 30), home, None);
        }
    }

    fn free_day(&mut self, day: i64) {
        let home = self.home(day);
        let outings = 1 + self.rng.below(3);
        let mut leave = self.rng.between(9 * 60 + 30, 12 * 60);
        for _ in 0..outings {
            let first = self.errand(day);
            self.go(day, Depart::At(leave, leave), first, None);
            if self.rng.chance(0.5) {
                let second = self.errand(day);
                self.go(day, Depart::After(20, 120), second, None);
            }
            self.go(day, Depart::After(30, 150), home, None);
            leave += self.rng.between(180, 300);
        }
        if self.rng.chance(0.25) {
            let out = self.errand(day);
            self.go(day, Depart::At(19 * 60, 20 * 60 + 30), out, None);
            self.go(day, Depart::At(22 * 60, 24 * 60 + 30), home, None);
        }
    }

    fn weekend_out(&mut self, day: i64, index: usize) {
        let trip = self.calendar.weekend_trips[index];
        self.new_track(trip.gpx);
        let spots = self.world.towns[trip.town].spots.clone();
        self.go(day, Depart::At(8 * 60 + 30, 10 * 60 + 30), spots[0], Some(Mode::Car));
        for _ in 0..2 {
            let spot = spots[1 + self.rng.index(spots.len() - 1)];
            self.go(day, Depart::After(30, 90), spot, None);
        }
        self.go(day, Depart::After(60, 180), spots[0], None);
        self.away = Away::Weekend { index };
    }

    fn weekend_back(&mut self, day: i64, index: usize) {
        let trip = self.calendar.weekend_trips[index];
        let spots = self.world.towns[trip.town].spots.clone();
        let spot = spots[1 + self.rng.index(spots.len() - 1)];
        self.go(day, Depart::At(9 * 60 + 30, 11 * 60), spot, None);
        let home = self.home(day);
        self.go(day, Depart::After(60, 180), home, Some(Mode::Car));
        self.new_track(false);
        self.away = Away::Home;
    }

    fn fly_out(&mut self, day: i64, index: usize) {
        let holiday = self.calendar.holidays[index];
        let dest = &self.world.destinations[holiday.destination];
        let (route, hotel) = (dest.out.clone(), dest.hotel);
        let flight_at = self.rng.between(9 * 60, 13 * 60);
        let airport = self.world.home_airport(local_to_utc(day, flight_at, Zone::Berlin));
        self.go(day, Depart::At(flight_at - 150, flight_at - 150), airport, Some(Mode::Transit));
        self.go(day, Depart::At(flight_at, flight_at), route[0], Some(Mode::Flight));
        for &next in &route[1..] {
            self.go(day, Depart::After(90, 200), next, Some(Mode::Flight));
        }
        self.go(day, Depart::After(35, 70), hotel, Some(Mode::Car));
        self.new_track(holiday.gpx);
        self.away = Away::Holiday { index, sightseeing_days: 0 };
    }

    fn sightsee(&mut self, day: i64, index: usize, done: u32) {
        let dest = &self.world.destinations[self.calendar.holidays[index].destination];
        let (hotel, sights, summer_only) = (dest.hotel, dest.sights.clone(), dest.summer_only);
        let start = self.rng.between(9 * 60, 10 * 60 + 45);
        if summer_only && done == 0 {
            // Taveuni's first full day: over the 180° meridian to the Date
            // Line marker and the south-west coast, and back.
            self.go(day, Depart::At(start, start), sights[0], Some(Mode::Car));
            self.go(day, Depart::After(20, 40), sights[1], Some(Mode::Car));
        } else {
            let first = sights[self.rng.index(sights.len())];
            self.go(day, Depart::At(start, start), first, None);
            for _ in 0..self.rng.below(3) {
                let next = sights[self.rng.index(sights.len())];
                self.go(day, Depart::After(45, 180), next, None);
            }
        }
        self.go(day, Depart::After(60, 180), hotel, None);
        if self.rng.chance(0.5) {
            let dinner = sights[self.rng.index(sights.len())];
            self.go(day, Depart::At(19 * 60, 20 * 60 + 30), dinner, None);
            self.go(day, Depart::After(60, 150), hotel, None);
        }
        self.away = Away::Holiday { index, sightseeing_days: done + 1 };
    }

    fn fly_back(&mut self, day: i64, index: usize) {
        let dest = &self.world.destinations[self.calendar.holidays[index].destination];
        let route = dest.back.clone();
        self.new_track(false);
        let flight_at = self.rng.between(10 * 60, 15 * 60);
        let mut hops: Vec<PlaceId> = route[1..].to_vec();
        hops.push(self.world.home_airport(local_to_utc(day, flight_at, self.zone())));
        self.go(day, Depart::At(flight_at - 150, flight_at - 150), route[0], Some(Mode::Car));
        for (i, next) in hops.into_iter().enumerate() {
            let depart = if i == 0 { Depart::At(flight_at, flight_at) } else { Depart::After(90, 200) };
            self.go(day, depart, next, Some(Mode::Flight));
        }
        let home = self.home(day);
        self.go(day, Depart::After(35, 60), home, Some(Mode::Transit));
        self.away = Away::Home;
    }
}

impl Iterator for Segments<'_> {
    type Item = Segment;

    fn next(&mut self) -> Option<Segment> {
        loop {
            if let Some(segment) = self.queue.pop_front() {
                return Some(segment);
            }
            if self.done {
                return None;
            }
            if self.next_day >= self.calendar.end_day {
                let end = local_to_utc(self.calendar.end_day, 0, Zone::Berlin);
                self.stay_until(end);
                self.done = true;
                continue;
            }
            let day = self.next_day;
            self.plan_day(day);
            self.next_day = (day + 1).max(local_day(self.now, self.zone()) + 1);
        }
    }
}
