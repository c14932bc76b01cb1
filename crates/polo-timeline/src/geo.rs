//! Distances and centroids on a sphere of radius 6 371 000 m.
//!
//! Two distance formulas live here on purpose:
//!
//! * [`trackintel_distance_m`] is trackintel's `point_haversine_dist` with
//!   `float_flag=True`: the spherical law of cosines, evaluated in exactly the
//!   same order with the same libm functions, so that stay detection makes the
//!   same `>=` decision as trackintel even for a point that lies a rounding
//!   error away from the threshold.
//! * [`haversine_m`] is the numerically stable haversine formula. The law of
//!   cosines cancels catastrophically for short distances (about 0.4 % error
//!   at 1 m), harmless against a 100 m threshold but not when summing the
//!   length of a track sampled every few metres, so leg lengths use this one.
//!
//! [`angular_centroid`] averages positions the way trackintel's
//! `angle_centroid_multipoints` does: the arithmetic mean of latitudes and the
//! circular mean of longitudes, so a cluster that straddles the antimeridian
//! gets a centroid next to it rather than on the other side of the globe.

use polo_domain::Coord;

/// The mean Earth radius trackintel (and sklearn's haversine DBSCAN) use, in metres.
pub const EARTH_RADIUS_M: f64 = 6_371_000.0;

/// A position prepared for repeated distance computations: its angles in
/// radians and the cosine of its latitude, computed once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Prepared {
    lat: f64,
    lon: f64,
    cos_lat: f64,
}

impl Prepared {
    /// Prepares an E7 coordinate. Degrees are `E7 / 1e7` (correctly rounded,
    /// so they equal what Python's `float("48.1234567")` gives) and radians
    /// are `degrees * (π / 180)`, which is what both `math.radians` and
    /// `f64::to_radians` compute.
    #[must_use]
    pub fn new(coord: Coord) -> Self {
        Self::from_degrees(coord.lat(), coord.lon())
    }

    /// Prepares a position given in degrees.
    #[must_use]
    pub fn from_degrees(lat: f64, lon: f64) -> Self {
        let lat = lat.to_radians();
        Self { lat, lon: lon.to_radians(), cos_lat: lat.cos() }
    }
}

/// trackintel's distance (`geogr/distances.py::point_haversine_dist`, scalar
/// path): `r · acos(cos Δlat − cos lat₁ · cos lat₂ · (1 − cos Δlon))`.
///
/// `first` plays trackintel's `lat_1/lon_1` (the anchor in stay detection).
///
/// # Units
/// - return value: metres
#[must_use]
pub fn trackintel_distance_m(first: &Prepared, second: &Prepared) -> f64 {
    let cos_lat_d = (first.lat - second.lat).cos();
    let cos_lon_d = (first.lon - second.lon).cos();
    EARTH_RADIUS_M * (cos_lat_d - first.cos_lat * second.cos_lat * (1.0 - cos_lon_d)).acos()
}

/// Great-circle distance by the haversine formula, stable for short distances.
///
/// For the short steps between consecutive fixes (half-angles below 0.01
/// rad, 32 km) the sines and the arc sine are evaluated by their Taylor
/// series, whose truncation error (below 10⁻²⁰ relative) is far under one
/// rounding step, so the value is the haversine formula's to the last bits
/// at a third of the cost of the libm calls, which longer steps still use.
///
/// ```
/// use polo_domain::Coord;
/// use polo_timeline::geo::{Prepared, haversine_m};
/// let zurich = Prepared::new(Coord::from_degrees(47.3769, 8.5417).unwrap());
/// let bern = Prepared::new(Coord::from_degrees(46.9480, 7.4474).unwrap());
/// assert!((haversine_m(&zurich, &bern) - 95_500.0).abs() < 500.0);
/// ```
///
/// # Units
/// - return value: metres
#[must_use]
#[inline]
pub fn haversine_m(a: &Prepared, b: &Prepared) -> f64 {
    let half_dlat = small_angle_sin((b.lat - a.lat) * 0.5);
    let half_dlon = small_angle_sin((b.lon - a.lon) * 0.5);
    let h = half_dlat * half_dlat + a.cos_lat * b.cos_lat * half_dlon * half_dlon;
    2.0 * EARTH_RADIUS_M * small_angle_asin(h.sqrt().min(1.0))
}

/// Arguments up to this size take the series in [`small_angle_sin`] and [`small_angle_asin`].
const SERIES_LIMIT: f64 = 0.01;

/// sin(x): the Taylor series to x⁹ for |x| ≤ 0.01, libm beyond.
#[inline]
fn small_angle_sin(x: f64) -> f64 {
    if x.abs() > SERIES_LIMIT {
        return x.sin();
    }
    let x2 = x * x;
    x * (1.0 - x2 * (1.0 / 6.0) * (1.0 - x2 * (1.0 / 20.0) * (1.0 - x2 * (1.0 / 42.0) * (1.0 - x2 * (1.0 / 72.0)))))
}

/// asin(y): the Taylor series to y¹¹ for 0 ≤ y ≤ 0.01, libm beyond.
#[inline]
fn small_angle_asin(y: f64) -> f64 {
    if y > SERIES_LIMIT {
        return y.asin();
    }
    let y2 = y * y;
    y * (1.0
        + y2 * (1.0 / 6.0 + y2 * (3.0 / 40.0 + y2 * (15.0 / 336.0 + y2 * (105.0 / 3456.0 + y2 * (945.0 / 42_240.0))))))
}

/// Haversine distance between two E7 coordinates.
///
/// # Units
/// - return value: metres
#[must_use]
pub fn coord_distance_m(a: Coord, b: Coord) -> f64 {
    haversine_m(&Prepared::new(a), &Prepared::new(b))
}

/// Longitude deltas up to this many E7 units (10⁻³ rad, 0.057°) take the
/// linear path of [`angular_centroid`].
const LINEAR_CENTROID_SPAN_E7: i64 = 572_957;

/// `to - from` in E7 longitude units, the short way round.
fn longitude_delta_e7(from: i32, to: i32) -> i64 {
    let delta = i64::from(to) - i64::from(from);
    if delta > 1_800_000_000 {
        delta - 3_600_000_000
    } else if delta < -1_800_000_000 {
        delta + 3_600_000_000
    } else {
        delta
    }
}

/// trackintel's angular centroid (`angle_centroid_multipoints`): the mean
/// latitude and the circular mean longitude `atan2(Σ sin λ, Σ cos λ)`.
/// `None` for no positions.
///
/// When every longitude lies within 10⁻³ rad of the first — every stay of a
/// few hundred metres, away from the poles — the circular mean equals the
/// first longitude plus the mean of the (wrapped) differences to within
/// (10⁻³)³ rad, 6 mm; that path needs no trigonometry and sums exact E7
/// integers. Wider sets take the circular formula.
pub fn angular_centroid<I>(coords: I) -> Option<Coord>
where
    I: IntoIterator<Item = Coord>,
    I::IntoIter: Clone,
{
    let coords = coords.into_iter();
    let mut rest = coords.clone();
    let first = rest.next()?;
    let (mut count, mut lat_sum, mut lon_delta_sum, mut widest) = (1_i64, i64::from(first.lat_e7), 0_i64, 0_i64);
    for coord in rest {
        let delta = longitude_delta_e7(first.lon_e7, coord.lon_e7);
        count += 1;
        lat_sum += i64::from(coord.lat_e7);
        lon_delta_sum += delta;
        widest = widest.max(delta.abs());
    }
    // Sums of E7 values and counts stay far below 2^53.
    #[allow(clippy::cast_precision_loss)]
    let (n, lat) = (count as f64, lat_sum as f64);
    let lon = if widest <= LINEAR_CENTROID_SPAN_E7 {
        #[allow(clippy::cast_precision_loss)]
        let mean_delta = lon_delta_sum as f64 / n;
        let lon = (f64::from(first.lon_e7) + mean_delta) / 1e7;
        if lon > 180.0 {
            lon - 360.0
        } else if lon < -180.0 {
            lon + 360.0
        } else {
            lon
        }
    } else {
        let (sin_sum, cos_sum) = coords.fold((0.0, 0.0), |(s, c), coord| {
            let (sin, cos) = coord.lon().to_radians().sin_cos();
            (s + sin, c + cos)
        });
        (sin_sum / n).atan2(cos_sum / n).to_degrees()
    };
    Some(coord_from_degrees_lossy(lat / n / 1e7, lon))
}

/// Rounds degrees to E7 without [`Coord::from_degrees`]'s refusals: a computed
/// position of exactly 0,0 is a real (if unlikely) place here, not a missing fix.
/// Inputs are clamped into the valid range first.
#[must_use]
pub fn coord_from_degrees_lossy(lat: f64, lon: f64) -> Coord {
    let lat = lat.clamp(-90.0, 90.0);
    let lon = lon.clamp(-180.0, 180.0);
    // Clamped above, so both products fit an i32 (|v| ≤ 1.8e9 < 2^31).
    #[allow(clippy::cast_possible_truncation)]
    Coord { lat_e7: (lat * 1e7).round() as i32, lon_e7: (lon * 1e7).round() as i32 }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lat: f64, lon: f64) -> Coord {
        Coord::from_degrees(lat, lon).unwrap()
    }

    #[test]
    fn trackintel_docstring_example() {
        // trackintel: point_haversine_dist(8.5, 47.3, 8.7, 47.2) == 18749.056277719905
        let d = trackintel_distance_m(&Prepared::from_degrees(47.3, 8.5), &Prepared::from_degrees(47.2, 8.7));
        assert!((d - 18_749.056_277_719_905).abs() < 1e-6, "{d}");
    }

    #[test]
    fn identical_points_are_zero_apart_in_both_formulas() {
        let p = Prepared::new(c(52.52, 13.405));
        assert_eq!(trackintel_distance_m(&p, &p), 0.0);
        assert_eq!(haversine_m(&p, &p), 0.0);
    }

    #[test]
    fn formulas_agree_at_stay_scale() {
        let a = Prepared::new(c(52.52, 13.405));
        let b = Prepared::new(c(52.5209, 13.405));
        let (law, hav) = (trackintel_distance_m(&a, &b), haversine_m(&a, &b));
        assert!((law - 100.0).abs() < 0.2, "{law}");
        assert!((law - hav).abs() < 1e-3, "{law} vs {hav}");
    }

    #[test]
    fn series_match_libm_to_rounding() {
        for i in -1000..=1000 {
            let x = f64::from(i) * 1e-5;
            assert!((small_angle_sin(x) - x.sin()).abs() <= 2.0 * f64::EPSILON * x.abs(), "sin {x}");
            let y = x.abs();
            assert!((small_angle_asin(y) - y.asin()).abs() <= 2.0 * f64::EPSILON * y, "asin {y}");
        }
        assert_eq!(small_angle_sin(0.5), 0.5f64.sin());
        assert_eq!(small_angle_asin(0.5), 0.5f64.asin());
    }

    #[test]
    fn haversine_is_short_across_the_antimeridian() {
        assert!(coord_distance_m(c(-17.0, 179.999), c(-17.0, -179.999)) < 300.0);
    }

    #[test]
    fn angular_centroid_straddling_the_antimeridian_stays_there() {
        let centroid = angular_centroid([c(10.0, 179.0), c(12.0, -179.0)]).unwrap();
        assert!((centroid.lat() - 11.0).abs() < 1e-9);
        assert!((centroid.lon().abs() - 180.0).abs() < 1e-6, "{}", centroid.lon());
        // The same with a stay-sized spread takes the linear path.
        let near = angular_centroid([c(10.0, 179.9999), c(10.0, -179.9997)]).unwrap();
        assert!((near.lon() - -179.9999).abs() < 1e-7, "{}", near.lon());
    }

    #[test]
    fn linear_and_circular_paths_agree_at_stay_scale() {
        let coords: Vec<Coord> = (0..50).map(|i| c(47.0, 8.5 + f64::from(i % 7) * 4e-4)).collect();
        let linear = angular_centroid(coords.iter().copied()).unwrap();
        let (sin, cos) = coords
            .iter()
            .fold((0.0, 0.0), |(s, k), p| (s + p.lon().to_radians().sin(), k + p.lon().to_radians().cos()));
        let circular = sin.atan2(cos).to_degrees();
        assert!((linear.lon() - circular).abs() < 1e-7, "{} vs {circular}", linear.lon());
    }

    #[test]
    fn empty_centroid_is_none() {
        assert_eq!(angular_centroid(std::iter::empty()), None);
    }
}
