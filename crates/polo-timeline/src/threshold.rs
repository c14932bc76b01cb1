//! Deciding trackintel's `distance >= threshold` without trigonometry.
//!
//! Stay detection asks one question per point: is it at least the distance
//! threshold from the anchor, by trackintel's law-of-cosines formula? Three
//! cosines and an arc cosine per point are most of the cost of an exact
//! port. Almost every point is far from the threshold (jitter a few metres
//! from the anchor, or travel well past it), and for those a flat-earth
//! bound decides the question for certain:
//!
//! * Within a box of 10⁻³ rad (6.4 km) around an anchor at most 80° from
//!   the equator, `(Δφ)² + (cos φₐ · Δλ)²` approximates the squared central
//!   angle to a relative error below 6·10⁻³ (the `tan φ · Δφ` term of the
//!   haversine expansion; the small-angle terms are below 10⁻⁶), where φₐ
//!   is the anchor's latitude and its cosine comes from a polynomial good to 10⁻⁶.
//! * trackintel's own formula is accurate to 10⁻⁴ relative for distances of
//!   10 m and more (the cancellation in `1 − cos` costs at most that).
//! * So with thresholds of 10 m or more, an approximation 1 % below the
//!   threshold means "inside" and 1 % above means "outside" for certain,
//!   and only points within that 2 % band (or outside the box, or near a
//!   pole) fall back to the exact formula, whose answer is then trackintel's.

use polo_domain::Coord;

use crate::geo::{EARTH_RADIUS_M, Prepared, trackintel_distance_m};

/// E7 degrees to radians.
const E7_TO_RADIANS: f64 = std::f64::consts::PI / 180.0 / 1e7;
/// 10⁻³ rad in E7 degrees, rounded down: the half-width of the flat box.
const BOX_E7: i64 = 572_957;
/// The flat bound is used up to this latitude (80°).
const MAX_FLAT_LATITUDE_E7: i32 = 800_000_000;
/// The certainty margin around the threshold.
const MARGIN: f64 = 0.01;
/// Below this threshold trackintel's formula is too noisy for the margin.
const MIN_FLAT_THRESHOLD_M: f64 = 10.0;

/// cos(x) for |x| ≤ 1.4 rad (80°) by its Taylor series to x¹²: within 10⁻⁶
/// relative there, and a fraction of the cost of a libm call. Only used
/// inside the margin above, never for a reported value.
fn cos_for_bound(x: f64) -> f64 {
    let x2 = x * x;
    1.0 - x2 / 2.0 * (1.0 - x2 / 12.0 * (1.0 - x2 / 30.0 * (1.0 - x2 / 56.0 * (1.0 - x2 / 90.0 * (1.0 - x2 / 132.0)))))
}

/// The question "is `point` at least the threshold from the anchor?", with
/// the anchor's derived values cached.
#[derive(Debug, Clone)]
pub(crate) struct ThresholdTest {
    threshold_m: f64,
    /// Squared central angles below which a flat estimate means "inside".
    inside_below: f64,
    /// ... and above which it means "outside"; both NaN when the flat bound is off.
    outside_above: f64,
    anchor: Coord,
    /// cos φₐ for the flat bound, NaN near the poles.
    anchor_lon_scale: f64,
    anchor_exact: Option<Prepared>,
}

impl ThresholdTest {
    pub(crate) fn new(threshold_m: f64, anchor: Coord) -> Self {
        let angle = threshold_m / EARTH_RADIUS_M;
        let flat = threshold_m >= MIN_FLAT_THRESHOLD_M;
        let mut test = Self {
            threshold_m,
            inside_below: if flat { (angle * (1.0 - MARGIN)).powi(2) } else { f64::NAN },
            outside_above: if flat { (angle * (1.0 + MARGIN)).powi(2) } else { f64::NAN },
            anchor,
            anchor_lon_scale: f64::NAN,
            anchor_exact: None,
        };
        test.move_anchor(anchor, None);
        test
    }

    /// Makes `coord` the anchor; `exact` is its prepared form if already known.
    pub(crate) fn move_anchor(&mut self, coord: Coord, exact: Option<Prepared>) {
        self.anchor = coord;
        self.anchor_exact = exact;
        self.anchor_lon_scale = if coord.lat_e7.abs() <= MAX_FLAT_LATITUDE_E7 {
            cos_for_bound(f64::from(coord.lat_e7) * E7_TO_RADIANS)
        } else {
            f64::NAN
        };
    }

    /// Whether `point` is at least the threshold from the anchor by
    /// trackintel's formula; also returns the point's prepared form when the
    /// exact formula had to compute it (so a new anchor need not recompute it).
    #[inline]
    pub(crate) fn reaches(&mut self, point: Coord) -> (bool, Option<Prepared>) {
        let dlat = i64::from(point.lat_e7) - i64::from(self.anchor.lat_e7);
        let dlon = i64::from(point.lon_e7) - i64::from(self.anchor.lon_e7);
        if dlat.abs() <= BOX_E7 && dlon.abs() <= BOX_E7 {
            // Both deltas are at most 572 957, exact in f64.
            #[allow(clippy::cast_precision_loss)]
            let (y, x) = (dlat as f64 * E7_TO_RADIANS, dlon as f64 * E7_TO_RADIANS * self.anchor_lon_scale);
            let flat = x * x + y * y;
            // NaN (flat bound off) fails both comparisons and falls through.
            if flat < self.inside_below {
                return (false, None);
            }
            if flat > self.outside_above {
                return (true, None);
            }
        }
        let anchor = *self.anchor_exact.get_or_insert_with(|| Prepared::new(self.anchor));
        let here = Prepared::new(point);
        (trackintel_distance_m(&anchor, &here) >= self.threshold_m, Some(here))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Rng;

    #[test]
    fn the_cosine_polynomial_is_good_to_a_millionth_up_to_80_degrees() {
        for step in 0..=800 {
            let x = f64::from(step) / 10.0 * std::f64::consts::PI / 180.0;
            let (fast, exact) = (cos_for_bound(x), x.cos());
            assert!((fast - exact).abs() / exact < 1e-6, "{step}: {fast} vs {exact}");
        }
    }

    /// The fast answer must equal the exact formula's for every pair.
    fn agrees(threshold_m: f64, anchor: Coord, point: Coord) {
        let exact = trackintel_distance_m(&Prepared::new(anchor), &Prepared::new(point)) >= threshold_m;
        let mut test = ThresholdTest::new(threshold_m, anchor);
        assert_eq!(test.reaches(point).0, exact, "{threshold_m} m from {anchor:?} to {point:?}");
    }

    #[test]
    fn agrees_with_the_exact_formula_everywhere() {
        let mut rng = Rng::new(5);
        for _ in 0..200_000 {
            let lat = rng.range(-89.99, 89.99);
            let lon = rng.range(-180.0, 180.0);
            let anchor = crate::geo::coord_from_degrees_lossy(lat, lon);
            // Mostly near the threshold, sometimes far, sometimes across ±180°.
            let threshold = [5.0, 10.0, 100.0, 1_000.0][usize::try_from(rng.below(4)).unwrap()];
            let reach = threshold * rng.range(0.0, 2.5) / 111_195.0;
            let bearing = rng.range(0.0, std::f64::consts::TAU);
            let point = crate::geo::coord_from_degrees_lossy(
                lat + reach * bearing.cos(),
                (lon + reach * bearing.sin() / lat.to_radians().cos() + 540.0).rem_euclid(360.0) - 180.0,
            );
            agrees(threshold, anchor, point);
        }
    }

    #[test]
    fn decides_e7_neighbours_of_the_threshold_exactly() {
        // 100 m north is 8 993.2 E7 units on trackintel's sphere.
        let anchor = Coord { lat_e7: 470_000_000, lon_e7: 85_000_000 };
        for north in 8_980..9_010 {
            agrees(100.0, anchor, Coord { lat_e7: anchor.lat_e7 + north, lon_e7: anchor.lon_e7 });
        }
    }
}
