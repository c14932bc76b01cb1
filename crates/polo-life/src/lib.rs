//! A realistic, deterministic ten-year life: the fixture polo's end-to-end
//! tests, benchmarks and visual review share.
//!
//! [`Life`] is a pure generator. It decides a calendar (holidays in other
//! time zones, weekend trips, days without fixes, a phone switch with months
//! of overlap, a move and a job change), plans every day as a stream of
//! stays, moves and flights ([`Life::segments`]), and samples each phone's
//! fixes from that stream lazily ([`Life::points`]): a decade of a phone is
//! millions of fixes and never sits in memory.
//!
//! [`write`] streams it into a directory as a user would have it — Google
//! Takeout `Records.json` (both phones, `timestampMs` before 2022 and ISO
//! `timestamp` after) with the `Settings.json` that names them, monthly
//! Semantic Location History files for part of the decade, and GPX tracks
//! of some trips — and returns a [`Manifest`]:
//! the ground truth tests assert against (every teleport fix, every flight,
//! the time zones and DST changes the user lived through, the antimeridian
//! crossings, the gaps, the per-device counts).
//!
//! Time zones come from a small built-in table ([`zones`]), so the crate
//! needs no time-zone database; all written times are UTC, so the server has
//! to work out local time itself.

pub mod calendar;
pub mod geo;
pub mod manifest;
pub mod plan;
pub mod rng;
pub mod sample;
pub mod world;
mod write;
pub mod zones;

use polo_domain::time::{civil_from_days, days_from_civil};

pub use manifest::Manifest;
pub use plan::{Activity, Mode, Segment, Segments};
pub use sample::{LifeFix, Points, Profile};
pub use write::write;

use calendar::Calendar;
use rng::Rng;
use world::World;

/// A calendar date.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Date {
    /// Year.
    pub year: i32,
    /// Month, 1–12.
    pub month: u32,
    /// Day of month.
    pub day: u32,
}

impl Date {
    /// A date.
    #[must_use]
    pub const fn new(year: i32, month: u32, day: u32) -> Self {
        Self { year, month, day }
    }

    /// Days since 1970-01-01.
    #[must_use]
    pub fn days(self) -> i64 {
        days_from_civil(self.year, self.month, self.day)
    }

    /// The date `days` days after 1970-01-01.
    #[must_use]
    pub fn from_days(days: i64) -> Self {
        let (year, month, day) = civil_from_days(days);
        Self { year, month, day }
    }
}

impl std::fmt::Display for Date {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The phones the user carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Device {
    /// The first phone, from the start until a few months after the switch.
    PhoneA,
    /// The second phone, from a few months before the switch to the end.
    PhoneB,
}

impl Device {
    /// Both phones.
    pub const ALL: [Self; 2] = [Self::PhoneA, Self::PhoneB];

    /// The phone's model.
    #[must_use]
    pub fn model(self) -> &'static str {
        match self {
            Self::PhoneA => "Nexus 5X",
            Self::PhoneB => "Pixel 3a",
        }
    }

    /// What Takeout's `Settings.json` says about the phone: its
    /// `devicePrettyName` (the owner named phone B; phone A kept none) and
    /// its `deviceSpec` maker.
    #[must_use]
    pub fn settings(self) -> (Option<&'static str>, &'static str) {
        match self {
            Self::PhoneA => (None, "LGE"),
            Self::PhoneB => (Some("Anna's Pixel"), "Google"),
        }
    }

    /// The label polo shows for the phone once `Settings.json` is imported:
    /// its pretty name, else maker and model.
    #[must_use]
    pub fn label(self) -> String {
        match self.settings() {
            (Some(pretty), _) => pretty.to_owned(),
            (None, maker) => format!("{maker} {}", self.model()),
        }
    }

    /// Google's `deviceTag` for the phone in `Records.json`.
    #[must_use]
    pub fn device_tag(self) -> i64 {
        match self {
            Self::PhoneA => 1_372_984_201,
            Self::PhoneB => -602_738_541,
        }
    }

    /// The device name polo gives the phone's records (`google-<deviceTag>`).
    #[must_use]
    pub fn polo_name(self) -> String {
        format!("google-{}", self.device_tag())
    }

    /// How the phone samples.
    #[must_use]
    pub fn profile(self) -> Profile {
        match self {
            Self::PhoneA => Profile::PHONE_A,
            Self::PhoneB => Profile::PHONE_B,
        }
    }

    fn stream(self) -> u64 {
        match self {
            Self::PhoneA => 0xa,
            Self::PhoneB => 0xb,
        }
    }
}

/// How much life to generate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Scale {
    /// Six months (2021-08-01 to 2022-01-31) at realistic rates: every
    /// property of the full life, for CI end-to-end runs within seconds.
    Small,
    /// `years` years from 2015-01-01 at realistic rates (~2 M phone fixes for ten).
    Full {
        /// Length in years.
        years: f64,
    },
}

/// What [`write`] generates.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifeOptions {
    /// The seed: the same seed writes the same bytes.
    pub seed: u64,
    /// How much.
    pub scale: Scale,
    /// First day; `None` for the scale's default.
    pub start: Option<Date>,
}

impl LifeOptions {
    /// The first day and the number of days.
    #[must_use]
    pub fn span(&self) -> (Date, i64) {
        match self.scale {
            Scale::Small => (self.start.unwrap_or(Date::new(2021, 8, 1)), 183),
            #[allow(clippy::cast_possible_truncation)]
            Scale::Full { years } => (self.start.unwrap_or(Date::new(2015, 1, 1)), (years * 365.25).round() as i64),
        }
    }

    /// The life these options describe.
    #[must_use]
    pub fn life(&self) -> Life {
        let (start, days) = self.span();
        Life::with_days(self.seed, start, days)
    }
}

/// A generated life: its places and calendar; segments and fixes on demand.
#[derive(Debug, Clone)]
pub struct Life {
    seed: u64,
    world: World,
    calendar: Calendar,
}

impl Life {
    /// `years` years of life from `start`.
    #[must_use]
    pub fn new(seed: u64, years: f64, start: Date) -> Self {
        #[allow(clippy::cast_possible_truncation)]
        Self::with_days(seed, start, (years * 365.25).round() as i64)
    }

    /// `days` days of life from `start`.
    #[must_use]
    pub fn with_days(seed: u64, start: Date, days: i64) -> Self {
        let world = World::new(seed);
        let calendar = Calendar::new(seed, &world, start.days(), days.max(1));
        Self { seed, world, calendar }
    }

    /// The seed.
    #[must_use]
    pub fn seed(&self) -> u64 {
        self.seed
    }

    /// The places.
    #[must_use]
    pub fn world(&self) -> &World {
        &self.world
    }

    /// The calendar.
    #[must_use]
    pub fn calendar(&self) -> &Calendar {
        &self.calendar
    }

    /// The life's stays, moves and flights, in order, from the first day.
    #[must_use]
    pub fn segments(&self) -> Segments<'_> {
        Segments::new(self.seed, &self.world, &self.calendar)
    }

    /// The days `[from, to)` `device` records.
    #[must_use]
    pub fn active_days(&self, device: Device) -> (i64, i64) {
        match device {
            Device::PhoneA => self.calendar.phone_a,
            Device::PhoneB => self.calendar.phone_b,
        }
    }

    /// The fixes `device` records, in time order, generated lazily.
    #[must_use]
    pub fn points(&self, device: Device) -> Points<'_> {
        Points::new(
            &self.world,
            &self.calendar,
            self.segments(),
            device.profile(),
            Rng::new(self.seed, device.stream()),
            self.active_days(device),
        )
    }
}
