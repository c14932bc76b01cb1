//! Distances on a sphere of radius 6 371 000 m, the same mean Earth radius as
//! `polo-timeline`, and the unit vectors the town index searches in.
//!
//! Towns are found by chord length between unit vectors: the chord grows
//! monotonically with the great-circle distance, so the nearest by chord is
//! the nearest on the sphere, and neither the poles nor the antimeridian need
//! a special case.

/// The mean Earth radius, in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// Length of one degree of latitude (and of longitude at the equator), metres.
pub(crate) const METRES_PER_DEGREE: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;

/// Great-circle distance by the haversine formula.
///
/// # Units
/// - arguments: degrees
/// - return value: metres
///
/// ```
/// use polo_geocode::geo::haversine_m;
/// // Zürich to Bern.
/// let d = haversine_m(47.3769, 8.5417, 46.9480, 7.4474);
/// assert!((d - 95_500.0).abs() < 500.0);
/// ```
#[must_use]
pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (phi1, phi2) = (lat1.to_radians(), lat2.to_radians());
    let half_dphi = (phi2 - phi1) / 2.0;
    let half_dlambda = (lon2 - lon1).to_radians() / 2.0;
    let a = half_dphi.sin().powi(2) + phi1.cos() * phi2.cos() * half_dlambda.sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// The unit vector of a position given in degrees.
pub(crate) fn unit_vector(lat: f64, lon: f64) -> [f64; 3] {
    let (lat, lon) = (lat.to_radians(), lon.to_radians());
    [lat.cos() * lon.cos(), lat.cos() * lon.sin(), lat.sin()]
}

/// The squared chord between two unit vectors whose great-circle distance is
/// `metres`: `(2 sin(d / 2R))²`.
pub(crate) fn chord2_for(metres: f64) -> f64 {
    (2.0 * (metres / (2.0 * EARTH_RADIUS_M)).sin()).powi(2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_known_distances() {
        assert!(haversine_m(0.0, 0.0, 0.0, 0.0).abs() < 1e-9);
        // One degree along the equator.
        assert!((haversine_m(0.0, 0.0, 0.0, 1.0) - METRES_PER_DEGREE).abs() < 1e-6);
        // Across the antimeridian: 0.2° of longitude at the equator.
        assert!((haversine_m(0.0, 179.9, 0.0, -179.9) - 0.2 * METRES_PER_DEGREE).abs() < 1e-3);
        // Pole to pole.
        assert!((haversine_m(90.0, 0.0, -90.0, 0.0) - std::f64::consts::PI * EARTH_RADIUS_M).abs() < 1e-6);
    }

    #[test]
    fn chord_matches_unit_vectors() {
        let a = unit_vector(47.3769, 8.5417);
        let b = unit_vector(46.9480, 7.4474);
        let chord2: f64 = a.iter().zip(&b).map(|(p, q)| (p - q).powi(2)).sum();
        let metres = haversine_m(47.3769, 8.5417, 46.9480, 7.4474);
        assert!((chord2 - chord2_for(metres)).abs() < 1e-12);
    }
}
