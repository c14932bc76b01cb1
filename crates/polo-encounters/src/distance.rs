//! The one distance every decision uses: haversine on a sphere of PostGIS's
//! radius.
//!
//! PostGIS answers `ST_DWithin(geography, geography, d, false)` on a sphere
//! whose radius is the WGS84 ellipsoid's mean radius `(2a + b) / 3`. polo uses
//! the same sphere, so its pairs can be counted against PostGIS's and agree
//! (the two formulas differ by rounding, nanometres, not by a model).
//!
//! The join, the exposure semi-join and the tests' brute-force oracle all call
//! [`Pos::distance_m`], so they decide every pair bit for bit alike, also a
//! pair exactly D apart.

use polo_domain::Coord;

/// The WGS84 semi-major axis, metres.
const WGS84_A: f64 = 6_378_137.0;
/// The WGS84 semi-minor axis, metres.
const WGS84_B: f64 = 6_356_752.314_245_179;
/// The radius of the sphere distances are measured on: WGS84's mean radius, as in PostGIS.
pub const EARTH_RADIUS_M: f64 = (2.0 * WGS84_A + WGS84_B) / 3.0;

/// A position prepared for many distance computations: radians and the
/// cosine of the latitude, computed once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pos {
    lat: f64,
    lon: f64,
    cos_lat: f64,
}

impl Pos {
    /// Prepares an E7 coordinate.
    #[must_use]
    pub fn new(coord: Coord) -> Self {
        let lat = coord.lat().to_radians();
        Self { lat, lon: coord.lon().to_radians(), cos_lat: lat.cos() }
    }

    /// `sin²(d / 2R)` for the distance `d` to `other`: the haversine before
    /// the arcsine. It grows with the distance, so comparing it with a bound
    /// (plus a margin) rejects far candidates without an arcsine.
    #[must_use]
    pub fn hav(&self, other: &Self) -> f64 {
        let half_dlat = ((other.lat - self.lat) * 0.5).sin();
        let half_dlon = ((other.lon - self.lon) * 0.5).sin();
        half_dlat * half_dlat + self.cos_lat * other.cos_lat * half_dlon * half_dlon
    }

    /// The great-circle distance to `other`, metres.
    #[must_use]
    pub fn distance_m(&self, other: &Self) -> f64 {
        distance_from_hav(self.hav(other))
    }
}

/// The distance, metres, whose haversine is `hav`.
#[must_use]
pub fn distance_from_hav(hav: f64) -> f64 {
    2.0 * EARTH_RADIUS_M * hav.clamp(0.0, 1.0).sqrt().asin()
}

/// The haversine of distance `d` metres, widened by a relative margin far
/// above rounding, so `hav(p, q) > hav_bound(d)` proves `distance(p, q) > d`.
#[must_use]
pub fn hav_bound(d: f64) -> f64 {
    let s = (d / (2.0 * EARTH_RADIUS_M)).sin();
    s * s * (1.0 + 1e-9) + 1e-30
}

/// The great-circle distance between two coordinates, metres.
#[must_use]
pub fn haversine_m(a: Coord, b: Coord) -> f64 {
    Pos::new(a).distance_m(&Pos::new(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lat: f64, lon: f64) -> Coord {
        Coord::from_degrees(lat, lon).unwrap()
    }

    #[test]
    fn the_radius_is_postgis_sphere() {
        assert!((EARTH_RADIUS_M - 6_371_008.771_415).abs() < 1e-3);
    }

    #[test]
    fn known_distances() {
        // One degree of latitude is R·π/180.
        let one_degree = EARTH_RADIUS_M.to_radians();
        assert!((haversine_m(c(10.0, 20.0), c(11.0, 20.0)) - one_degree).abs() < 1e-6);
        // Across the antimeridian the short way round.
        assert!((haversine_m(c(0.0, 179.9999), c(0.0, -179.9999)) - 0.0002 * one_degree).abs() < 1e-6);
        // At the pole every longitude is the same place.
        assert!(haversine_m(c(90.0, 10.0), c(90.0, -170.0)) < 1e-6);
        assert_eq!(haversine_m(c(52.5, 13.4), c(52.5, 13.4)), 0.0);
    }

    #[test]
    fn the_bound_never_rejects_a_pair_within_d() {
        for (a, b) in
            [(c(52.5, 13.4), c(52.500_2, 13.400_1)), (c(89.9, 0.0), c(89.9, 1.0)), (c(-1.0, 179.9), c(-1.0, -179.99))]
        {
            let (p, q) = (Pos::new(a), Pos::new(b));
            let d = p.distance_m(&q);
            assert!(p.hav(&q) <= hav_bound(d), "{a:?} {b:?}");
        }
    }
}
