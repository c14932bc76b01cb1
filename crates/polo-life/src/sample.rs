//! What a device records of the life: fixes sampled from the segments the
//! way phones do it — every few seconds while moving, every few minutes
//! while still, long doze gaps at night — with GPS jitter scaled to each
//! fix's accuracy, the odd Wi-Fi or cell fix, ~0.1 % "teleports" (one fix
//! thousands of kilometres off, the next one back) and, rarely, the null
//! island (0,0) fix that importers must reject.
//!
//! Each device has its own [`Rng`] and [`Profile`], so two phones carried
//! together record slightly different fixes at different times.

use crate::calendar::Calendar;
use crate::geo::{great_circle_at, offset_m};
use crate::plan::{Activity, Mode, Segment, Segments, local_day, local_to_utc};
use crate::rng::Rng;
use crate::world::World;
use crate::zones::Zone;

/// Chance that a fix is a teleport.
pub const TELEPORT_CHANCE: f64 = 0.001;
/// Chance that a fix is the null-island placeholder (0,0).
pub const NULL_ISLAND_CHANCE: f64 = 0.000_05;

/// How a device samples.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Profile {
    /// Seconds between fixes while still (uniform range).
    pub still_s: (f64, f64),
    /// Seconds between fixes while moving.
    pub moving_s: (f64, f64),
    /// Seconds between fixes at night (doze).
    pub night_s: (f64, f64),
    /// Chance after a daytime still fix of a doze gap of 20–50 minutes.
    pub doze_chance: f64,
    /// Multiplier on the accuracy radii this device reports.
    pub accuracy_scale: f64,
    /// Whether this device may produce teleports and null-island fixes.
    pub glitches: bool,
}

impl Profile {
    /// The first phone (older, slower sampling).
    pub const PHONE_A: Self = Self {
        still_s: (90.0, 300.0),
        moving_s: (4.0, 16.0),
        night_s: (900.0, 3_600.0),
        doze_chance: 0.04,
        accuracy_scale: 1.0,
        glitches: true,
    };
    /// The second phone (newer, samples more often, slightly better fixes).
    pub const PHONE_B: Self = Self {
        still_s: (60.0, 240.0),
        moving_s: (3.0, 12.0),
        night_s: (600.0, 2_700.0),
        doze_chance: 0.03,
        accuracy_scale: 0.8,
        glitches: true,
    };
    /// A sports watch recording a GPX track: moves only, every 1–3 s.
    pub const WATCH: Self = Self {
        still_s: (1.0, 3.0),
        moving_s: (1.0, 3.0),
        night_s: (1.0, 3.0),
        doze_chance: 0.0,
        accuracy_scale: 0.5,
        glitches: false,
    };
}

/// Where a fix came from, as Google's `source` says it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// Satellite fix.
    Gps,
    /// Wi-Fi positioning.
    Wifi,
    /// Cell-tower positioning.
    Cell,
}

/// One recorded fix.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifeFix {
    /// UTC ms.
    pub time_ms: i64,
    /// Latitude (degrees).
    pub lat: f64,
    /// Longitude (degrees).
    pub lon: f64,
    /// Horizontal accuracy (m).
    pub accuracy_m: u32,
    /// Altitude (m).
    pub altitude_m: i32,
    /// Vertical accuracy (m).
    pub vertical_accuracy_m: u32,
    /// Speed (m/s) while moving.
    pub speed_m_s: Option<f64>,
    /// Heading (degrees) while moving.
    pub heading_deg: Option<u32>,
    /// What the user was doing: `None` still, else the mode.
    pub mode: Option<Mode>,
    /// Positioning source.
    pub source: Source,
    /// A deliberate outlier: thousands of km from the truth.
    pub teleport: bool,
    /// A deliberate 0,0 fix that importers must reject.
    pub null_island: bool,
}

/// UTC ms ranges `[from, to)` in which a device records nothing.
fn gap_ranges(calendar: &Calendar, active: (i64, i64)) -> Vec<(i64, i64)> {
    let mut out = vec![(i64::MIN, local_to_utc(active.0, 0, Zone::Berlin))];
    out.extend(
        calendar.gaps.iter().map(|&(a, b)| (local_to_utc(a, 0, Zone::Berlin), local_to_utc(b + 1, 0, Zone::Berlin))),
    );
    out.push((local_to_utc(active.1, 0, Zone::Berlin), i64::MAX));
    out
}

/// A device's fixes, in time order, generated lazily from the segments.
#[derive(Debug)]
pub struct Points<'a> {
    world: &'a World,
    segments: Segments<'a>,
    current: Option<Segment>,
    profile: Profile,
    rng: Rng,
    next_ms: i64,
    gaps: Vec<(i64, i64)>,
    /// Remaining in-air fixes of the current flight, by fraction index.
    air_done: u8,
}

impl<'a> Points<'a> {
    /// The fixes of a device with `profile`, active on days `[from, to)`.
    #[must_use]
    pub fn new(
        world: &'a World,
        calendar: &'a Calendar,
        segments: Segments<'a>,
        profile: Profile,
        rng: Rng,
        active: (i64, i64),
    ) -> Self {
        let gaps = gap_ranges(calendar, active);
        Self { world, segments, current: None, profile, rng, next_ms: i64::MIN, gaps, air_done: 0 }
    }

    /// The end of the gap containing `t`, if any.
    fn gap_end(&self, t: i64) -> Option<i64> {
        self.gaps.iter().find(|&&(a, b)| (a..b).contains(&t)).map(|&(_, b)| b)
    }
}

/// The fix a device records at `t` during `segment` (before glitches).
pub fn fix_at(world: &World, segment: &Segment, t: i64, profile: &Profile, rng: &mut Rng) -> LifeFix {
    let from = world.place(segment.from);
    let scale = profile.accuracy_scale;
    #[allow(clippy::cast_precision_loss)]
    let f = ((t - segment.start_ms) as f64 / (segment.end_ms - segment.start_ms).max(1) as f64).clamp(0.0, 1.0);
    let (truth, mode, speed, heading, altitude, source, accuracy) = match segment.activity {
        Activity::Stay => {
            let roll = rng.unit();
            let (source, accuracy) = if roll < 0.04 {
                (Source::Cell, rng.range(250.0, 900.0))
            } else if roll < 0.75 {
                (Source::Wifi, rng.range(12.0, 45.0) * scale)
            } else {
                (Source::Gps, rng.range(4.0, 16.0) * scale)
            };
            (from.pos(), None, None, None, 38.0, source, accuracy)
        }
        Activity::Move { mode, path, .. } => {
            #[allow(clippy::cast_precision_loss)]
            let speed = path.length_m / ((segment.end_ms - segment.start_ms).max(1) as f64 / 1000.0);
            let accuracy = rng.range(3.0, 14.0) * scale;
            (path.at(f), Some(mode), Some(speed), Some(path.heading_at(f)), 40.0, Source::Gps, accuracy)
        }
        Activity::Flight { to, .. } => {
            let to = world.place(to);
            let pos = great_circle_at(from.pos(), to.pos(), f);
            #[allow(clippy::cast_precision_loss)]
            let speed = crate::geo::distance_m(from.pos(), to.pos())
                / ((segment.end_ms - segment.start_ms).max(1) as f64 / 1000.0);
            (pos, Some(Mode::Flight), Some(speed * 1.05), None, 10_700.0, Source::Gps, rng.range(10.0, 60.0))
        }
    };
    let sigma = accuracy * 0.4;
    let (lat, lon) = offset_m(truth, rng.normal() * sigma, rng.normal() * sigma);
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    LifeFix {
        time_ms: t,
        lat,
        lon,
        accuracy_m: accuracy.round().max(1.0) as u32,
        altitude_m: (altitude + rng.normal() * 6.0).round() as i32,
        vertical_accuracy_m: rng.range(2.0, 25.0).round() as u32,
        speed_m_s: speed.map(|s| (s * rng.range(0.8, 1.2) * 10.0).round() / 10.0),
        heading_deg: heading.map(|h| (h + rng.normal() * 8.0).rem_euclid(360.0) as u32),
        mode,
        source,
        teleport: false,
        null_island: false,
    }
}

/// A random place at least 2,000 km away from `p`.
fn far_from(p: (f64, f64), rng: &mut Rng) -> (f64, f64) {
    loop {
        let candidate = (rng.range(-55.0, 70.0), rng.range(-180.0, 180.0));
        if crate::geo::distance_m(p, candidate) > 2_000_000.0 {
            return candidate;
        }
    }
}

/// Milliseconds to the next fix after one at `t` in `segment`.
fn interval_ms(world: &World, segment: &Segment, t: i64, profile: &Profile, rng: &mut Rng) -> i64 {
    let seconds = match segment.activity {
        Activity::Move { .. } | Activity::Flight { .. } => rng.range(profile.moving_s.0, profile.moving_s.1),
        Activity::Stay => {
            let zone = world.place(segment.from).zone;
            let local_minute = (t - local_to_utc(local_day(t, zone), 0, zone)) / 60_000;
            if local_minute < 6 * 60 {
                rng.range(profile.night_s.0, profile.night_s.1)
            } else if rng.chance(profile.doze_chance) {
                rng.range(1_200.0, 3_000.0)
            } else {
                rng.range(profile.still_s.0, profile.still_s.1)
            }
        }
    };
    #[allow(clippy::cast_possible_truncation)]
    let ms = (seconds * 1000.0) as i64;
    ms.max(1000)
}

impl Iterator for Points<'_> {
    type Item = LifeFix;

    fn next(&mut self) -> Option<LifeFix> {
        loop {
            let segment = match self.current {
                Some(s) => s,
                None => {
                    let s = self.segments.next()?;
                    self.current = Some(s);
                    self.air_done = 0;
                    if self.next_ms == i64::MIN {
                        self.next_ms = s.start_ms;
                    }
                    s
                }
            };
            if let Activity::Flight { air_fixes, .. } = segment.activity {
                // No fixes in the air, except the few the planner allows,
                // evenly spread over the flight.
                if self.air_done >= air_fixes {
                    self.current = None;
                    self.next_ms = self.next_ms.max(segment.end_ms);
                    continue;
                }
                self.air_done += 1;
                let f = f64::from(self.air_done) / f64::from(air_fixes + 1);
                #[allow(clippy::cast_possible_truncation, clippy::cast_precision_loss)]
                let t = segment.start_ms + ((segment.end_ms - segment.start_ms) as f64 * f) as i64;
                if self.gap_end(t).is_some() {
                    continue;
                }
                return Some(fix_at(self.world, &segment, t, &self.profile, &mut self.rng));
            }
            let t = self.next_ms;
            if t >= segment.end_ms {
                self.current = None;
                continue;
            }
            if let Some(end) = self.gap_end(t) {
                if end == i64::MAX {
                    // Past the device's last day: drain nothing more.
                    return None;
                }
                self.next_ms = end + self.rng.between(0, 120_000);
                continue;
            }
            let mut fix = fix_at(self.world, &segment, t, &self.profile, &mut self.rng);
            self.next_ms = t + interval_ms(self.world, &segment, t, &self.profile, &mut self.rng);
            if self.profile.glitches {
                if self.rng.chance(TELEPORT_CHANCE) {
                    let (lat, lon) = far_from((fix.lat, fix.lon), &mut self.rng);
                    fix = LifeFix { lat, lon, teleport: true, speed_m_s: None, heading_deg: None, ..fix };
                } else if self.rng.chance(NULL_ISLAND_CHANCE) {
                    fix = LifeFix { lat: 0.0, lon: 0.0, null_island: true, ..fix };
                }
            }
            return Some(fix);
        }
    }
}
