//! Names places with the built-in offline geocoder (`polo-geocode`), and
//! gives points without a UTC offset the one of their time zone (`polo-tz`).
//!
//! The geocoder's data (about 9 MB resident) is decoded on the first place
//! that needs a name, not at start-up, so an idle server or one that only
//! ingests stays small. The time zones (about 4.5 MB resident, most of it
//! the binary's own mapped data) likewise open on the first point that
//! states no UTC offset. Lookups never touch the network.

use std::sync::OnceLock;

use polo_derived::Locator;
use polo_derived::rows::Locality;
use polo_domain::{Coord, Timestamp};
use polo_geocode::Geocoder;
use polo_timeline::{ZoneId, ZoneLookup};

/// The built-in geocoder, loaded on first use.
#[derive(Debug, Default)]
pub struct OfflineLocator {
    geocoder: OnceLock<Option<Geocoder>>,
}

impl Locator for OfflineLocator {
    fn locate(&self, coord: Coord) -> Locality {
        let geocoder = self.geocoder.get_or_init(|| match Geocoder::builtin() {
            Ok(geocoder) => Some(geocoder),
            Err(error) => {
                tracing::error!(%error, "the built-in geocoder's data is damaged; places stay unnamed");
                None
            }
        });
        let Some(geocoder) = geocoder else { return Locality::default() };
        let found = geocoder.lookup(coord);
        Locality {
            country_code: found.country_code,
            country: found.country,
            region: found.region,
            town: found.town.map(|t| t.name),
        }
    }
}

/// The built-in time zones (`polo-tz`), opened on the first point that
/// needs one: opening reads the 4 MB boundary file into the resident set,
/// which a server that has nothing to compute need not carry. If the
/// embedded data is damaged (logged once), points without an offset count
/// as UTC.
#[derive(Debug, Default)]
pub struct OfflineZones {
    zones: OnceLock<Option<polo_tz::BundledZones>>,
}

impl OfflineZones {
    fn zones(&self) -> Option<&polo_tz::BundledZones> {
        self.zones
            .get_or_init(|| match polo_tz::BundledZones::builtin() {
                Ok(zones) => Some(zones),
                Err(error) => {
                    tracing::error!(%error, "the built-in time zones are damaged; points without an offset count as UTC");
                    None
                }
            })
            .as_ref()
    }
}

impl ZoneLookup for OfflineZones {
    fn zone_at(&self, coord: Coord) -> ZoneId {
        self.zones().map_or(ZoneId(0), |zones| zones.zone_at(coord))
    }

    fn zone_offset_minutes(&self, zone: ZoneId, time: Timestamp) -> i16 {
        self.zones().map_or(0, |zones| zones.zone_offset_minutes(zone, time))
    }

    fn zone_next_change(&self, zone: ZoneId, time: Timestamp) -> Option<Timestamp> {
        self.zones().and_then(|zones| zones.zone_next_change(zone, time))
    }

    fn zone_name(&self, zone: ZoneId) -> &str {
        self.zones().map_or("Etc/UTC", |zones| zones.zone_name(zone))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_time_zones_open_on_first_use() {
        let zones = OfflineZones::default();
        assert!(zones.zones.get().is_none(), "nothing is loaded before a point needs it");
        let lubeck = zones.zone_at(Coord::from_degrees(53.8655, 10.6866).unwrap());
        assert_eq!(zones.zone_name(lubeck), "Europe/Berlin");
        let july = Timestamp::from_civil(2024, 7, 1, 12, 0, 0, 0).unwrap();
        assert_eq!(zones.zone_offset_minutes(lubeck, july), 120);
        assert_eq!(zones.zone_next_change(lubeck, july), Timestamp::from_civil(2024, 10, 27, 1, 0, 0, 0));
    }
}
