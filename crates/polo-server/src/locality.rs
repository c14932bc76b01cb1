//! Names places with the built-in offline geocoder (`polo-geocode`).
//!
//! The geocoder's data (about 9 MB resident) is decoded on the first place
//! that needs a name, not at start-up, so an idle server or one that only
//! ingests stays small. Lookups never touch the network.

use std::sync::OnceLock;

use polo_derived::Locator;
use polo_derived::rows::Locality;
use polo_domain::Coord;
use polo_geocode::Geocoder;

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
