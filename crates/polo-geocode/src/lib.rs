//! Reverse geocoding for polo: which country, region and town a stay or a
//! place is in, computed offline from data compiled into the binary.
//!
//! polo names stays and places, not every point: a location history of
//! millions of fixes has a few thousand stays. So the geocoder is built for
//! being correct and cheap to keep around, not for bulk speed, and it never
//! touches the network: a self-hosted server must not leak where its users
//! have been to a third party by default.
//!
//! # The data
//! Two files in `data/`, generated once by `tools/geodata/build.py` from npm
//! packages at pinned versions and checked hashes (`data/SOURCES.md` lists
//! them with their licences):
//! * **countries** — Natural Earth 1:50m admin-0 polygons (public domain)
//!   with ISO 3166-1 alpha-2 codes and English names; 1,616 polygons,
//!   98,000 vertices, 0.34 MB compressed;
//! * **towns** — the GeoNames places with more than 1,000 inhabitants or an
//!   administrative seat (CC BY 4.0, attribution in the README), each with
//!   its country code and first-level region name; 171,075 towns, 1.7 MB.
//!
//! # The rules
//! Country by point in polygon, with a 25 km coastal margin for points just
//! off a generalised coastline; nearest town of that country within 50 km;
//! region from that town. [`geocoder`] states them precisely, [`country`]
//! covers holes and the antimeridian, [`town`] the nearest-neighbour search.
//!
//! # The costs
//! [`Geocoder::builtin`] takes about 0.1 s of one core (inflating 2 MB and
//! building the indices) and leaves 9 MB of heap ([`Geocoder::heap_bytes`]);
//! the process's resident set grows by about 11.5 MB. A lookup takes about
//! 5 µs and does no I/O (200,000 lookups/s on one core).
//! `polo-bench geocode` measures all of it.
//!
//! # Online street names
//! With the `online` feature, `online` asks a Photon or Nominatim server for
//! a street-level name, through an H3 cell cache and a rate limit. It is
//! meant for places only and never for the ingest path.

pub mod country;
mod data;
pub mod error;
pub mod geo;
pub mod geocoder;
#[cfg(feature = "online")]
pub mod online;
pub mod town;

pub use country::COAST_MARGIN_M;
pub use error::GeocodeError;
pub use geocoder::{Geocoder, Location, PLACE_DECIDES_M, TOWN_CUTOFF_M, Town};
