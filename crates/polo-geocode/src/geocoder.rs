//! The offline geocoder: country, region and town for a coordinate.
//!
//! # The rules
//! 1. **Country**: the polygon holding the point, else the nearest outline
//!    within [`COAST_MARGIN_M`](crate::COAST_MARGIN_M) (25 km), else none
//!    (open sea). See [`crate::country`].
//! 2. **Except next to a place of another country**: when the nearest
//!    GeoNames place lies within [`PLACE_DECIDES_M`] (1 km) and carries
//!    another country code than rule 1 gives (or rule 1 gives none), the
//!    country is that place's. GeoNames positions are exact, while the 1:50m
//!    outlines are generalised by up to a couple of kilometres and have no
//!    room for the smallest states and enclaves: the Vatican's outline lies
//!    1.5 km west of the Vatican, and Gibraltar, Büsingen (Germany, inside
//!    Switzerland) or Campione d'Italia have none of their own. The price is
//!    paid within about a kilometre of a land border, where a point can take
//!    the neighbour's country when the neighbour's place is the nearest: the
//!    same order of error the outlines have there.
//! 3. **Town**: the nearest town *of that country* within
//!    [`TOWN_CUTOFF_M`] (50 km), so that a stay in Basel is named after
//!    Basel and not after a French suburb a little nearer across the border.
//!    When the country has no town that close, or there is no country code,
//!    the nearest town of any country within the cut-off. Farther than that a
//!    town name would mislead more than it helps.
//! 4. **Region**: the first-level region (GeoNames admin1) of that town, when
//!    the town is in the same country as the point; otherwise none.
//!
//! "Town" is GeoNames' populated place with more than 1,000 inhabitants or
//! an administrative seat. GeoNames also lists the quarters of large cities
//! as places of their own ("Zürich (Kreis 1) / Lindenhof", "Paris 04
//! Hôtel-de-Ville", "Kreuzberg"), so in a city the town is often its quarter;
//! no package with current GeoNames data carries the feature codes that
//! would tell quarters apart.
//!
//! The country name comes from the country table (English); the region and
//! the town from GeoNames, whose town names are the local ones in Latin
//! script ("Zürich", "Genève" is "Geneva" there too).

use polo_domain::Coord;
use serde::{Deserialize, Serialize};

use crate::GeocodeError;
use crate::country::{self, CountryIndex};
use crate::town::{self, TownIndex};

/// The farthest a town may be from the point to be reported. Metres.
pub const TOWN_CUTOFF_M: f64 = 50_000.0;

/// A GeoNames place this close decides the country (rule 2). Metres.
pub const PLACE_DECIDES_M: f64 = 1_000.0;

/// What the offline data says about a position. Every field is optional: at
/// sea there is nothing, far from towns there is a country but no town.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Location {
    /// ISO 3166-1 alpha-2 code, e.g. `"CH"`. `None` at sea and in the one
    /// area that has no code in the data.
    pub country_code: Option<String>,
    /// English country name, e.g. `"Switzerland"`.
    pub country: Option<String>,
    /// First-level administrative region, e.g. `"Zurich"` (a Swiss canton,
    /// a US state, a French région).
    pub region: Option<String>,
    /// The nearest town, see the [module rules](self).
    pub town: Option<Town>,
}

/// A GeoNames populated place.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Town {
    /// Its name, e.g. `"Zürich"`.
    pub name: String,
    /// Latitude of the town's point, degrees.
    pub lat: f64,
    /// Longitude of the town's point, degrees.
    pub lon: f64,
    /// Great-circle distance from the looked-up position, metres.
    pub distance_m: f64,
}

/// The offline reverse geocoder. Immutable once built: share one in an
/// `Arc` across threads.
///
/// # Costs
/// [`Geocoder::builtin`] inflates and indexes the embedded data (2.0 MB in
/// the binary): 100–150 ms of one core on a desktop-class x86-64 (expect
/// several times that on a Raspberry Pi; load it once, at startup or lazily,
/// off the request path). Afterwards it holds 9.0 MB of heap
/// ([`Geocoder::heap_bytes`] reports the exact figure); the resident set of
/// the process grows by about 11.5 MB, the rest being allocator slack and
/// the pages of the compressed data that loading touched. A lookup does no
/// I/O and allocates only the returned strings: about 5 µs, 200,000
/// lookups/s on one core. `polo-bench geocode` measures all of these.
pub struct Geocoder {
    countries: CountryIndex,
    towns: TownIndex,
}

impl std::fmt::Debug for Geocoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Geocoder").field("towns", &self.towns.len()).finish_non_exhaustive()
    }
}

impl Geocoder {
    /// Decodes the data compiled into the binary (Natural Earth countries,
    /// GeoNames towns) and builds the indices.
    ///
    /// # Errors
    /// [`GeocodeError`] if the embedded files are damaged, which the crate's
    /// tests rule out for the files in the repository.
    pub fn builtin() -> Result<Self, GeocodeError> {
        Ok(Self { countries: country::builtin()?, towns: town::builtin()? })
    }

    /// Country, region and nearest town for a position. No I/O.
    ///
    /// ```
    /// use polo_domain::Coord;
    /// use polo_geocode::Geocoder;
    /// let geocoder = Geocoder::builtin().unwrap();
    /// let location = geocoder.lookup(Coord::from_degrees(47.3769, 8.5417).unwrap());
    /// assert_eq!(location.country_code.as_deref(), Some("CH"));
    /// assert_eq!(location.region.as_deref(), Some("Zurich"));
    /// assert!(location.town.unwrap().name.starts_with("Zürich"));
    /// ```
    #[must_use]
    pub fn lookup(&self, coord: Coord) -> Location {
        let (lat, lon) = (coord.lat(), coord.lon());
        let nearest = self.towns.nearest(lat, lon, TOWN_CUTOFF_M, None);
        let mut country = self.countries.locate(lat, lon);
        if let Some(place) = nearest.filter(|place| place.distance_m <= PLACE_DECIDES_M)
            && country.and_then(|index| self.countries.country(index).code) != Some(place.code)
        {
            country = self.countries.by_code(place.code).or(country);
        }
        let country = country.map(|index| self.countries.country(index));
        let code = country.and_then(|country| country.code);
        let town = match (code, nearest) {
            (Some(code), Some(place)) if place.code == code => Some(place),
            (Some(code), _) => self.towns.nearest(lat, lon, TOWN_CUTOFF_M, Some(code)).or(nearest),
            (None, _) => nearest,
        };
        let region = town.filter(|town| Some(town.code) == code).and_then(|town| town.region);
        Location {
            country_code: code.map(|code| String::from_utf8_lossy(&code).into_owned()),
            country: country.map(|country| country.name.to_string()),
            region: region.map(str::to_owned),
            town: town.map(|town| Town {
                name: town.name.to_owned(),
                lat: town.lat,
                lon: town.lon,
                distance_m: town.distance_m,
            }),
        }
    }

    /// Every town's `(latitude, longitude)` in degrees, in no particular
    /// order: for sampling realistic positions in tests and benchmarks.
    #[must_use = "the iterator does nothing unless consumed"]
    pub fn town_positions(&self) -> impl ExactSizeIterator<Item = (f64, f64)> + '_ {
        self.towns.positions()
    }

    /// Bytes of heap the geocoder holds, from the sizes of its arrays. The
    /// resident cost of a process that loaded it is this plus the pages of
    /// the compressed data in the binary that loading touched (about 2 MB,
    /// file-backed, reclaimable).
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        self.countries.heap_bytes() + self.towns.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, OnceLock};

    use super::*;

    fn geocoder() -> &'static Geocoder {
        static GEOCODER: OnceLock<Geocoder> = OnceLock::new();
        GEOCODER.get_or_init(|| Geocoder::builtin().unwrap())
    }

    fn at(lat: f64, lon: f64) -> Location {
        geocoder().lookup(Coord::from_degrees(lat, lon).unwrap())
    }

    fn summary(location: &Location) -> (Option<&str>, Option<&str>, Option<&str>, Option<&str>) {
        (
            location.country_code.as_deref(),
            location.country.as_deref(),
            location.region.as_deref(),
            location.town.as_ref().map(|town| town.name.as_str()),
        )
    }

    #[test]
    fn zurich() {
        // Bahnhofstrasse: GeoNames' nearest place is the old-town quarter.
        let location = at(47.3769, 8.5417);
        assert_eq!(
            summary(&location),
            (Some("CH"), Some("Switzerland"), Some("Zurich"), Some("Zürich (Kreis 1) / Lindenhof"))
        );
        let town = location.town.unwrap();
        assert!(town.distance_m < 1_000.0, "{town:?}");
        // Between quarters, the city's own point (47.36667, 8.55) is the nearest.
        let centre = at(47.3668, 8.5499);
        let town = centre.town.unwrap();
        assert_eq!(town.name, "Zürich");
        assert!((town.lat - 47.366_67).abs() < 1e-9 && (town.lon - 8.55).abs() < 1e-9, "{town:?}");
        assert!(town.distance_m < 20.0, "{town:?}");
    }

    #[test]
    fn lake_geneva_on_both_sides_of_the_border() {
        // In the lake 1.5 km off Lausanne-Ouchy: Swiss water.
        let swiss = at(46.49, 6.62);
        assert_eq!(summary(&swiss).0, Some("CH"), "{swiss:?}");
        assert_eq!(swiss.region.as_deref(), Some("Vaud"), "{swiss:?}");
        // In the lake 1.5 km off Évian-les-Bains: French water, a French town
        // and region even where a Swiss town is about as near.
        let french = at(46.415, 6.60);
        assert_eq!(summary(&french).0, Some("FR"), "{french:?}");
        assert_eq!(french.region.as_deref(), Some("Auvergne-Rhône-Alpes"), "{french:?}");
    }

    #[test]
    fn suva_and_fiji_across_the_antimeridian() {
        let suva = at(-18.1416, 178.4419);
        assert_eq!(summary(&suva), (Some("FJ"), Some("Fiji"), Some("Central"), Some("Suva")));
        // Taveuni, on the island's part east of 180°; no town within 50 km.
        let taveuni = at(-16.95, -179.97);
        assert_eq!(summary(&taveuni), (Some("FJ"), Some("Fiji"), None, None), "{taveuni:?}");
    }

    #[test]
    fn chukotka_on_both_sides_of_the_antimeridian() {
        let anadyr = at(64.73, 177.51);
        assert_eq!(summary(&anadyr), (Some("RU"), Some("Russia"), Some("Chukotka"), Some("Anadyr")));
        assert_eq!(at(66.10, -170.0).country_code.as_deref(), Some("RU"));
        // West of 180°, the nearest town is east of it.
        let west = at(66.32, 179.95);
        assert_eq!(summary(&west).0, Some("RU"), "{west:?}");
        let town = west.town.unwrap();
        assert_eq!(town.name, "Egvekinot");
        assert!((town.distance_m - 41_600.0).abs() < 500.0, "{town:?}");
    }

    #[test]
    fn mid_atlantic_is_open_sea() {
        let location = at(30.0, -40.0);
        assert_eq!(location, Location { country_code: None, country: None, region: None, town: None });
    }

    #[test]
    fn null_island_is_open_sea() {
        // 0,0 itself is refused by `Coord` as a missing fix; a hair off it
        // is 560 km from the nearest land.
        assert!(Coord::from_degrees(0.0, 0.0).is_err());
        let location = geocoder().lookup(Coord::from_e7(1, 1).unwrap());
        assert_eq!(location, Location { country_code: None, country: None, region: None, town: None });
    }

    #[test]
    fn vatican_and_rome() {
        // St Peter's Square; the 1:50m Vatican outline lies 1.5 km to the west,
        // so rule 2 decides.
        let vatican = at(41.9022, 12.4568);
        assert_eq!(summary(&vatican), (Some("VA"), Some("Vatican City"), None, Some("Vatican City")));
        // The Colosseum: Rome's own point is 2.5 km away, quarters are nearer.
        let rome = at(41.8902, 12.4922);
        let (code, country, region, _) = summary(&rome);
        assert_eq!((code, country, region), (Some("IT"), Some("Italy"), Some("Lazio")));
        let near_rome = at(41.8919, 12.5113);
        assert_eq!(summary(&near_rome), (Some("IT"), Some("Italy"), Some("Lazio"), Some("Rome")));
    }

    #[test]
    fn places_decide_where_the_outlines_have_no_room() {
        // Gibraltar has no 1:50m outline (Spain's covers it).
        let gibraltar = at(36.1408, -5.3536);
        let (code, country, _, _) = summary(&gibraltar);
        assert_eq!((code, country), (Some("GI"), Some("Gibraltar")));
        // Büsingen am Hochrhein, a German enclave in Switzerland.
        assert_eq!(at(47.6967, 8.6903).country_code.as_deref(), Some("DE"));
    }

    #[test]
    fn svalbard() {
        let longyearbyen = at(78.2232, 15.6267);
        assert_eq!(
            summary(&longyearbyen),
            (Some("SJ"), Some("Svalbard and Jan Mayen"), Some("Svalbard"), Some("Longyearbyen"))
        );
    }

    #[test]
    fn holes_lesotho_inside_south_africa() {
        assert_eq!(at(-29.31, 27.48).country_code.as_deref(), Some("LS"));
        assert_eq!(at(-28.0, 26.0).country_code.as_deref(), Some("ZA"));
    }

    #[test]
    fn south_pole_is_antarctica() {
        assert_eq!(at(-89.9, 45.0).country_code.as_deref(), Some("AQ"));
    }

    #[test]
    fn just_off_the_coast_and_far_out() {
        // 5 km off Nice, in the Baie des Anges: France, with Nice as the town.
        let nice = at(43.65, 7.25);
        assert_eq!(nice.country_code.as_deref(), Some("FR"), "{nice:?}");
        // 40 km off the Portuguese coast: no country, but a town within 50 km.
        let offshore = at(38.75, -9.95);
        assert_eq!(offshore.country_code, None, "{offshore:?}");
        assert_eq!(offshore.region, None, "{offshore:?}");
        let town = offshore.town.expect("a Portuguese coastal town within 50 km");
        assert!(town.distance_m <= TOWN_CUTOFF_M, "{town:?}");
    }

    #[test]
    fn basel_is_named_after_a_swiss_town() {
        let basel = at(47.5596, 7.5886);
        assert_eq!(summary(&basel).0, Some("CH"));
        assert_eq!(basel.region.as_deref(), Some("Basel-City"), "{basel:?}");
    }

    #[test]
    fn towns_beyond_the_cutoff_are_not_reported() {
        // The middle of the Sahara in Algeria: a country, no town within 50 km.
        let sahara = at(24.0, 3.0);
        assert_eq!(sahara.country_code.as_deref(), Some("DZ"));
        if let Some(town) = &sahara.town {
            assert!(town.distance_m <= TOWN_CUTOFF_M, "{town:?}");
        }
    }

    #[test]
    fn shared_across_threads() {
        let shared = Arc::new(Geocoder::builtin().unwrap());
        let handles: Vec<_> = (0..2)
            .map(|_| {
                let shared = Arc::clone(&shared);
                std::thread::spawn(move || shared.lookup(Coord::from_degrees(47.3769, 8.5417).unwrap()))
            })
            .collect();
        for handle in handles {
            assert_eq!(handle.join().unwrap().country_code.as_deref(), Some("CH"));
        }
        assert!(shared.heap_bytes() > 1_000_000);
    }

    #[test]
    fn location_round_trips_through_json() {
        let location = at(47.3769, 8.5417);
        let json = serde_json::to_string(&location).unwrap();
        assert!(json.contains(r#""country_code":"CH""#), "{json}");
        assert_eq!(serde_json::from_str::<Location>(&json).unwrap(), location);
    }
}
