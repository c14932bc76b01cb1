//! Deterministic synthetic tracks for tests and benchmarks (feature `synthetic`).
//!
//! Real location histories cannot be committed (privacy, licences), so the
//! agreement test against trackintel, the incremental property tests and
//! `polo-bench timeline` share this generator. A seed picks a home city and
//! fixes everything else. Each simulated day is a plausible phone day:
//!
//! * nights at home sampled every 1–10 minutes, with GPS jitter, rare
//!   outliers 150–300 m off, phone-doze gaps of 20–90 minutes and pauses of
//!   exactly 15:00.000 (no gap) and 15:00.001 (a gap);
//! * a commute by road or rail with walks at either end, sampled every few
//!   seconds, including stretches where consecutive fixes are 100 m ± 2 cm
//!   apart (distances at the threshold) and stops lasting exactly 5:00.000
//!   and 4:59.999 (durations at the threshold);
//! * a working day with a lunch walk, an evening errand by bicycle, home;
//! * exact repeats of a fix, a second device reporting the same instant a
//!   few metres or kilometres away, and the repeat-after-another pattern
//!   `A, B, A` at one instant.
//!
//! Cities include one on the antimeridian (Taveuni, Fiji), so tracks cross it.

use polo_domain::{Coord, Timestamp};

use crate::geo::coord_from_degrees_lossy;
use crate::track::TrackPoint;

/// A small xorshift PRNG: deterministic data without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed` (0 is replaced by 1, which xorshift needs).
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut rng = Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15).max(1));
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        // 53 random bits make an exact f64 fraction.
        #[allow(clippy::cast_precision_loss)]
        let value = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        value
    }

    /// Uniform in `[low, high)`.
    pub fn range(&mut self, low: f64, high: f64) -> f64 {
        low + (high - low) * self.unit()
    }

    /// Uniform in `0..n` (`n > 0`).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }

    /// Uniform integer milliseconds in `[low, high]`.
    pub fn millis(&mut self, low: i64, high: i64) -> i64 {
        let span = u64::try_from(high - low + 1).unwrap_or(1);
        low + i64::try_from(self.below(span)).unwrap_or(0)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Roughly normal noise with standard deviation `sigma` (sum of uniforms).
    pub fn noise(&mut self, sigma: f64) -> f64 {
        (self.unit() + self.unit() + self.unit() - 1.5) * 2.0 * sigma
    }
}

/// A home city: name, latitude, longitude, UTC offset in minutes.
const CITIES: [(&str, f64, f64, i16); 5] = [
    ("Berlin", 52.52, 13.405, 60),
    ("Taveuni", -16.85, 179.95, 720),
    ("New York", 40.7128, -74.006, -300),
    ("Reykjavik", 64.1466, -21.9426, 0),
    ("Sydney", -33.8688, 151.2093, 600),
];

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;
const HOUR: i64 = 60 * MINUTE;
const DAY: i64 = 24 * HOUR;

/// A position in degrees, longitude kept in [-180, 180).
#[derive(Debug, Clone, Copy, PartialEq)]
struct Position {
    lat: f64,
    lon: f64,
}

impl Position {
    /// Moves `north` and `east` metres (local flat approximation, wrapping at the antimeridian).
    fn offset(self, north: f64, east: f64) -> Self {
        let lat = self.lat + north / 111_195.0;
        let mut lon = self.lon + east / (111_195.0 * self.lat.to_radians().cos());
        if lon >= 180.0 {
            lon -= 360.0;
        } else if lon < -180.0 {
            lon += 360.0;
        }
        Self { lat, lon }
    }

    /// `(north, east)` metres to `other`, the short way round.
    fn towards(self, other: Self) -> (f64, f64) {
        let mut dlon = other.lon - self.lon;
        if dlon > 180.0 {
            dlon -= 360.0;
        } else if dlon < -180.0 {
            dlon += 360.0;
        }
        ((other.lat - self.lat) * 111_195.0, dlon * 111_195.0 * self.lat.to_radians().cos())
    }

    fn coord(self) -> Coord {
        coord_from_degrees_lossy(self.lat, self.lon)
    }
}

/// How the simulated person moves between places.
#[derive(Debug, Clone, Copy)]
enum Travel {
    Walk,
    Cycle,
    Road,
    Rail,
}

impl Travel {
    /// Cruise speed in m/s and the sampling interval range in ms.
    fn profile(self) -> (f64, i64, i64) {
        match self {
            Self::Walk => (1.4, 3 * SECOND, 15 * SECOND),
            Self::Cycle => (5.0, 3 * SECOND, 12 * SECOND),
            Self::Road => (14.0, 4 * SECOND, 20 * SECOND),
            Self::Rail => (25.0, 5 * SECOND, 30 * SECOND),
        }
    }
}

/// One person's generated track.
#[derive(Debug, Clone)]
pub struct SyntheticTrack {
    rng: Rng,
    /// The points generated so far, sorted by time.
    pub points: Vec<TrackPoint>,
    /// The home city's name.
    pub city: &'static str,
    /// The home city's UTC offset, minutes east.
    pub utc_offset_minutes: i16,
    home: Position,
    work: Position,
    cafe: Position,
    shop: Position,
    here: Position,
    origin_ms: i64,
    time_ms: i64,
    day: u32,
}

impl SyntheticTrack {
    /// A person in the city the seed picks, starting on 2024-03-04 (a Monday)
    /// at local midnight.
    #[must_use]
    pub fn new(seed: u64) -> Self {
        let mut rng = Rng::new(seed);
        let index = usize::try_from(rng.below(CITIES.len() as u64)).unwrap_or(0);
        let (city, lat, lon, offset) = CITIES[index];
        let home = Position { lat, lon }.offset(rng.noise(2_000.0), rng.noise(500.0));
        // On Taveuni work lies east of home, across the antimeridian.
        let east = if city == "Taveuni" { rng.range(10_000.0, 14_000.0) } else { rng.range(-12_000.0, 12_000.0) };
        let work = home.offset(rng.range(-12_000.0, 12_000.0), east);
        let cafe = work.offset(rng.range(-400.0, 400.0), rng.range(-400.0, 400.0));
        let shop = home.offset(rng.range(-3_000.0, 3_000.0), rng.range(-3_000.0, 3_000.0));
        // 2024-03-04T00:00 local.
        let origin_ms = 19_786 * DAY - i64::from(offset) * MINUTE;
        Self {
            rng,
            points: Vec::new(),
            city,
            utc_offset_minutes: offset,
            home,
            work,
            cafe,
            shop,
            here: home,
            origin_ms,
            time_ms: origin_ms,
            day: 0,
        }
    }

    /// Appends `count` simulated days.
    #[must_use]
    pub fn days(mut self, count: u32) -> Self {
        for _ in 0..count {
            self.simulate_day();
        }
        self
    }

    /// Appends days until the track has at least `count` points, then cuts it to `count`.
    #[must_use]
    pub fn with_points(mut self, count: usize) -> Self {
        while self.points.len() < count {
            self.simulate_day();
        }
        self.points.truncate(count);
        self
    }

    fn emit(&mut self, position: Position) {
        let point = TrackPoint {
            time: Timestamp(self.time_ms),
            coord: position.coord(),
            altitude_cm: None,
            utc_offset_minutes: Some(self.utc_offset_minutes),
            motion: None,
        };
        self.points.push(point);
        // Duplicates and second devices, at the same instant.
        if self.rng.chance(0.004) {
            self.points.push(point);
        }
        if self.rng.chance(0.002) {
            let metres = if self.rng.chance(0.5) { 25.0 } else { 2_500.0 };
            let other = TrackPoint { coord: position.offset(metres, self.rng.noise(metres)).coord(), ..point };
            self.points.push(other);
            if self.rng.chance(0.5) {
                // A, B, A: a repeat that is not adjacent.
                self.points.push(point);
            }
        }
    }

    fn simulate_day(&mut self) {
        let day_start = self.origin_ms + i64::from(self.day) * DAY;
        let weekday = self.day % 7 < 5;
        self.day += 1;
        let wake_up = day_start + 7 * HOUR + self.rng.millis(0, 90 * MINUTE);
        self.stay_until(wake_up, true);
        if weekday {
            let ride = if self.rng.chance(0.5) { Travel::Road } else { Travel::Rail };
            self.commute(self.work, ride);
            let lunch_break = day_start + 12 * HOUR + self.rng.millis(0, 30 * MINUTE);
            self.stay_until(lunch_break, false);
            self.travel_to(self.cafe, Travel::Walk);
            let lunch = self.rng.millis(8 * MINUTE, 45 * MINUTE);
            self.stay_until(self.time_ms + lunch, false);
            self.travel_to(self.work, Travel::Walk);
            let home_time = day_start + 17 * HOUR + self.rng.millis(0, 90 * MINUTE);
            self.stay_until(home_time, false);
            self.commute(self.home, ride);
        }
        if self.rng.chance(0.6) {
            self.travel_to(self.shop, Travel::Cycle);
            let errand = self.rng.millis(3 * MINUTE, 50 * MINUTE);
            self.stay_until(self.time_ms + errand, false);
            self.travel_to(self.home, Travel::Cycle);
        }
        self.stay_until(day_start + DAY, true);
    }

    fn commute(&mut self, to: Position, ride: Travel) {
        let (north, east) = self.here.towards(to);
        let station = self.here.offset(north * 0.05, east * 0.05);
        let arrival = to.offset(-north * 0.05, -east * 0.05);
        self.travel_to(station, Travel::Walk);
        let wait = self.rng.millis(MINUTE, 9 * MINUTE);
        self.stay_until(self.time_ms + wait, false);
        self.travel_to(arrival, ride);
        self.travel_to(to, Travel::Walk);
    }

    /// Stays near the current place until `until`, sampling like a resting phone.
    fn stay_until(&mut self, until: i64, night: bool) {
        let spot = self.here;
        let (low, high) = if night { (MINUTE, 10 * MINUTE) } else { (30 * SECOND, 4 * MINUTE) };
        while self.time_ms < until {
            let roll = self.rng.unit();
            let step = if night && roll < 0.01 {
                self.rng.millis(20 * MINUTE, 90 * MINUTE)
            } else if roll < 0.015 {
                15 * MINUTE
            } else if roll < 0.02 {
                15 * MINUTE + 1
            } else {
                self.rng.millis(low, high)
            };
            self.time_ms += step;
            let position = if self.rng.chance(0.003) {
                spot.offset(self.rng.range(150.0, 300.0), self.rng.noise(50.0))
            } else {
                spot.offset(self.rng.noise(12.0), self.rng.noise(12.0))
            };
            self.emit(position);
        }
        self.here = spot;
    }

    /// Travels in a straight line to `to`.
    fn travel_to(&mut self, to: Position, travel: Travel) {
        let (cruise, low, high) = travel.profile();
        let mut threshold_stops = 0;
        loop {
            let (north, east) = self.here.towards(to);
            let remaining = north.hypot(east);
            if remaining < 1.0 {
                break;
            }
            let roll = self.rng.unit();
            if matches!(travel, Travel::Road) && roll < 0.02 && threshold_stops < 2 {
                threshold_stops += 1;
                self.threshold_stop(north / remaining, east / remaining);
                continue;
            }
            let (step_ms, metres) = if matches!(travel, Travel::Road) && roll < 0.15 {
                // Slow traffic: fixes 100 m ± 2 cm apart, right at the distance threshold.
                (10 * SECOND, 100.0 + self.rng.range(-0.02, 0.02))
            } else {
                let step_ms = self.rng.millis(low, high);
                #[allow(clippy::cast_precision_loss)]
                let metres = cruise * self.rng.range(0.7, 1.3) * step_ms as f64 / 1000.0;
                (step_ms, metres)
            };
            self.time_ms += step_ms;
            let fraction = (metres / remaining).min(1.0);
            self.here = self.here.offset(north * fraction, east * fraction);
            let wobble = if fraction < 1.0 { self.rng.noise(3.0) } else { 0.0 };
            self.emit(self.here.offset(wobble, wobble));
        }
        self.here = to;
    }

    /// Stops in traffic for exactly the time threshold (5:00.000) or 1 ms less,
    /// arriving and leaving 150 m from the previous and next fix.
    fn threshold_stop(&mut self, north: f64, east: f64) {
        let duration = if self.rng.chance(0.5) { 5 * MINUTE } else { 5 * MINUTE - 1 };
        self.time_ms += 10 * SECOND;
        self.here = self.here.offset(north * 150.0, east * 150.0);
        let anchor_time = self.time_ms;
        self.emit(self.here);
        let spot = self.here;
        for _ in 0..4 {
            self.time_ms += MINUTE;
            let (north, east) = (self.rng.noise(5.0), self.rng.noise(5.0));
            self.emit(spot.offset(north, east));
        }
        self.time_ms = anchor_time + duration;
        self.here = spot.offset(north * 150.0, east * 150.0);
        self.emit(self.here);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_sorted() {
        let a = SyntheticTrack::new(42).days(3);
        let b = SyntheticTrack::new(42).days(3);
        assert_eq!(a.points, b.points);
        assert!(a.points.windows(2).all(|w| w[0].time <= w[1].time));
        assert!(a.points.len() > 1_000, "{}", a.points.len());
        assert_ne!(SyntheticTrack::new(43).days(1).points, SyntheticTrack::new(42).days(1).points);
    }

    #[test]
    fn every_edge_case_shows_up_within_a_few_weeks() {
        let track = SyntheticTrack::new(3).days(21);
        let points = &track.points;
        let gaps: Vec<i64> = points.windows(2).map(|w| w[1].time.0 - w[0].time.0).collect();
        assert!(gaps.contains(&(15 * MINUTE)));
        assert!(gaps.contains(&(15 * MINUTE + 1)));
        assert!(gaps.iter().any(|&g| g > 20 * MINUTE));
        let repeats = (0..points.len()).filter(|&i| crate::track::is_repeat(points, i)).count();
        assert!(repeats > 10, "{repeats}");
        let same_instant_elsewhere = points.windows(2).filter(|w| w[0].time == w[1].time && w[0].coord != w[1].coord);
        assert!(same_instant_elsewhere.count() > 5);
    }

    #[test]
    fn a_seed_picks_every_city_including_the_antimeridian() {
        let cities: std::collections::BTreeSet<_> = (0..40).map(|seed| SyntheticTrack::new(seed).city).collect();
        assert_eq!(cities.len(), CITIES.len());
        let seed = (0..100).find(|&s| SyntheticTrack::new(s).city == "Taveuni").unwrap();
        let track = SyntheticTrack::new(seed).days(7);
        let east = track.points.iter().any(|p| p.coord.lon_e7 > 1_790_000_000);
        let west = track.points.iter().any(|p| p.coord.lon_e7 < -1_790_000_000);
        assert!(east && west, "the Taveuni track should cross the antimeridian");
    }

    #[test]
    fn with_points_cuts_to_the_exact_count() {
        assert_eq!(SyntheticTrack::new(9).with_points(5_000).points.len(), 5_000);
    }
}
