//! Names places with the built-in offline geocoder (`polo-geocode`), and
//! gives points without a UTC offset the one of their time zone (`polo-tz`).
//!
//! The geocoder's data (about 9 MB resident) is decoded on the first place
//! that needs a name, not at start-up, so an idle server or one that only
//! ingests stays small. The time zones are opened at start-up (2 ms, a few
//! hundred kB); their 4 MB of boundaries stay in the binary's mapped data
//! and become resident only where looked up. Lookups never touch the network.

use std::sync::{Arc, OnceLock};

use polo_derived::Locator;
use polo_derived::rows::Locality;
use polo_domain::Coord;
use polo_geocode::Geocoder;
use polo_timeline::ZoneLookup;

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

/// The built-in time zones, for the timeline engine; `None` (logged) if
/// their embedded data is damaged, and points without an offset count as UTC.
#[must_use]
pub fn time_zones() -> Option<Arc<dyn ZoneLookup>> {
    match polo_tz::BundledZones::builtin() {
        Ok(zones) => Some(Arc::new(zones)),
        Err(error) => {
            tracing::error!(%error, "the built-in time zones are damaged; points without an offset count as UTC");
            None
        }
    }
}
