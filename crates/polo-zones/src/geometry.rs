//! Circles and polygons on the sphere, and where a fix lies against them.
//!
//! A fix is not a point but a circle: the phone says it is within so many
//! metres. Deciding "inside" from the centre alone is what makes other
//! trackers fire on drive-bys and flap at the edge (Traccar #2189), so every
//! test here takes the accuracy: a fix is [`Relation::Inside`] only when its
//! whole accuracy circle is inside the zone, [`Relation::Clear`] only when the
//! circle is clear of the zone plus an exit buffer, and anything between is
//! [`Relation::Band`], in which the state machine changes nothing. The band is
//! the hysteresis: jitter that stays within it cannot flap.
//!
//! Distances to a circle are great-circle (haversine). A polygon is measured
//! in a local equirectangular plane centred on the fix, which is exact to a
//! few centimetres over the 50 km a zone may span ([`MAX_EXTENT_M`]); longitudes
//! are unwrapped around the fix, so zones across ±180° work.

use serde::{Deserialize, Serialize};

/// Mean Earth radius, metres.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;
/// Metres per degree of latitude (and of longitude at the equator).
pub const M_PER_DEG: f64 = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
/// The largest zone: a circle's radius, a polygon's extent in either direction.
pub const MAX_EXTENT_M: f64 = 50_000.0;
/// The most vertices a polygon may have.
pub const MAX_VERTICES: usize = 1_000;

/// A zone's outline. Positions are `[latitude, longitude]` in degrees.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Shape {
    /// Everything within `radius_m` of `center`.
    Circle {
        /// `[lat, lon]`.
        center: [f64; 2],
        /// Metres.
        radius_m: f64,
    },
    /// A simple polygon (the last vertex joins the first; do not repeat it).
    Polygon {
        /// `[lat, lon]` each, at least three.
        vertices: Vec<[f64; 2]>,
    },
}

/// Where a fix with its accuracy lies against a zone.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Relation {
    /// The whole accuracy circle is inside the zone.
    Inside,
    /// Neither: the hysteresis band, where nothing changes.
    Band,
    /// The accuracy circle is clear of the zone by at least the exit buffer.
    Clear,
}

/// Wraps a longitude difference into `[-180, 180)`.
#[must_use]
pub fn wrap_lon(delta: f64) -> f64 {
    (delta + 180.0).rem_euclid(360.0) - 180.0
}

/// Great-circle distance in metres between two `[lat, lon]` positions.
#[must_use]
pub fn haversine_m(a: [f64; 2], b: [f64; 2]) -> f64 {
    let (la1, la2) = (a[0].to_radians(), b[0].to_radians());
    let dla = la2 - la1;
    let dlo = wrap_lon(b[1] - a[1]).to_radians();
    let h = (dla / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlo / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Distance from the origin to the segment `a`–`b` in the plane.
fn segment_distance(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let len2 = dx * dx + dy * dy;
    let t = if len2 > 0.0 { (-(a.0 * dx + a.1 * dy) / len2).clamp(0.0, 1.0) } else { 0.0 };
    let (px, py) = (a.0 + t * dx, a.1 + t * dy);
    (px * px + py * py).sqrt()
}

impl Shape {
    /// Checks the shape: positions in range, a radius or extent of at most
    /// [`MAX_EXTENT_M`], 3 to [`MAX_VERTICES`] vertices. The message says
    /// which field is wrong and why.
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), String> {
        let position = |p: [f64; 2], what: &str| -> Result<(), String> {
            if !(p[0].is_finite() && (-90.0..=90.0).contains(&p[0])) {
                return Err(format!("{what}: latitude {} is not within -90..90", p[0]));
            }
            if !(p[1].is_finite() && (-180.0..=180.0).contains(&p[1])) {
                return Err(format!("{what}: longitude {} is not within -180..180", p[1]));
            }
            Ok(())
        };
        match self {
            Self::Circle { center, radius_m } => {
                position(*center, "shape.center")?;
                if !(radius_m.is_finite() && (1.0..=MAX_EXTENT_M).contains(radius_m)) {
                    return Err(format!("shape.radius_m: {radius_m} is not within 1..{MAX_EXTENT_M} metres"));
                }
            }
            Self::Polygon { vertices } => {
                if !(3..=MAX_VERTICES).contains(&vertices.len()) {
                    return Err(format!(
                        "shape.vertices: a polygon needs 3 to {MAX_VERTICES} vertices, not {}",
                        vertices.len()
                    ));
                }
                for (i, v) in vertices.iter().enumerate() {
                    position(*v, &format!("shape.vertices[{i}]"))?;
                }
                let origin = vertices[0];
                for (i, v) in vertices.iter().enumerate() {
                    let (x, y) = project(origin, *v);
                    if x.abs() > MAX_EXTENT_M || y.abs() > MAX_EXTENT_M {
                        return Err(format!("shape.vertices[{i}]: the polygon spans more than {MAX_EXTENT_M} metres"));
                    }
                }
                let area2: f64 = ring(vertices, origin).map(|(a, b)| a.0 * b.1 - b.0 * a.1).sum();
                if area2.abs() < 1.0 {
                    return Err("shape.vertices: the polygon has no area".to_owned());
                }
            }
        }
        Ok(())
    }

    /// Signed distance in metres from `p` (`[lat, lon]`) to the outline:
    /// negative inside, positive outside.
    #[must_use]
    pub fn signed_distance_m(&self, p: [f64; 2]) -> f64 {
        match self {
            Self::Circle { center, radius_m } => haversine_m(*center, p) - radius_m,
            Self::Polygon { vertices } => {
                let mut inside = false;
                let mut nearest = f64::INFINITY;
                for (a, b) in ring(vertices, p) {
                    nearest = nearest.min(segment_distance(a, b));
                    // Ray casting towards +x from the origin (the fix).
                    if (a.1 > 0.0) != (b.1 > 0.0) && a.0 + (0.0 - a.1) * (b.0 - a.0) / (b.1 - a.1) > 0.0 {
                        inside = !inside;
                    }
                }
                if inside { -nearest } else { nearest }
            }
        }
    }

    /// Where a fix at `p` with accuracy radius `accuracy_m` lies, with an
    /// exit buffer of `exit_buffer_m`.
    #[must_use]
    pub fn relation(&self, p: [f64; 2], accuracy_m: f64, exit_buffer_m: f64) -> Relation {
        let s = self.signed_distance_m(p);
        if s + accuracy_m <= 0.0 {
            Relation::Inside
        } else if s - accuracy_m >= exit_buffer_m {
            Relation::Clear
        } else {
            Relation::Band
        }
    }

    /// The area in square metres (a polygon's in the plane at its first vertex).
    #[must_use]
    pub fn area_m2(&self) -> f64 {
        match self {
            Self::Circle { radius_m, .. } => std::f64::consts::PI * radius_m * radius_m,
            Self::Polygon { vertices } => {
                ring(vertices, vertices[0]).map(|(a, b)| a.0 * b.1 - b.0 * a.1).sum::<f64>().abs() / 2.0
            }
        }
    }

    /// The bounding box `(south, west, north, east)` in degrees, grown by
    /// `margin_m`; `west` may be below −180 or `east` above 180 for a zone
    /// across the antimeridian.
    #[must_use]
    pub fn bbox(&self, margin_m: f64) -> (f64, f64, f64, f64) {
        let (s, w, n, e) = match self {
            Self::Circle { center, radius_m } => {
                let dlat = radius_m / M_PER_DEG;
                let cos = center[0].to_radians().cos().max(0.01);
                let dlon = radius_m / (M_PER_DEG * cos);
                (center[0] - dlat, center[1] - dlon, center[0] + dlat, center[1] + dlon)
            }
            Self::Polygon { vertices } => {
                let base = vertices[0][1];
                let mut b = (f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY);
                for v in vertices {
                    let lon = base + wrap_lon(v[1] - base);
                    b = (b.0.min(v[0]), b.1.min(lon), b.2.max(v[0]), b.3.max(lon));
                }
                b
            }
        };
        let dlat = margin_m / M_PER_DEG;
        let cos = s.abs().max(n.abs()).to_radians().cos().max(0.01);
        let dlon = margin_m / (M_PER_DEG * cos);
        ((s - dlat).max(-90.0), w - dlon, (n + dlat).min(90.0), e + dlon)
    }
}

/// `v` in metres east and north of `origin`, in the equirectangular plane at
/// the origin's latitude.
fn project(origin: [f64; 2], v: [f64; 2]) -> (f64, f64) {
    let cos = origin[0].to_radians().cos();
    (wrap_lon(v[1] - origin[1]) * cos * M_PER_DEG, (v[0] - origin[0]) * M_PER_DEG)
}

/// The polygon's edges in the plane around `origin`.
fn ring(vertices: &[[f64; 2]], origin: [f64; 2]) -> impl Iterator<Item = ((f64, f64), (f64, f64))> + '_ {
    let n = vertices.len();
    (0..n).map(move |i| (project(origin, vertices[i]), project(origin, vertices[(i + 1) % n])))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A square of about 200 m around (52.5, 13.4).
    fn square() -> Shape {
        let d = 100.0 / M_PER_DEG;
        let dl = d / 52.5f64.to_radians().cos();
        Shape::Polygon {
            vertices: vec![[52.5 - d, 13.4 - dl], [52.5 - d, 13.4 + dl], [52.5 + d, 13.4 + dl], [52.5 + d, 13.4 - dl]],
        }
    }

    /// `m` metres north of (52.5, 13.4).
    fn north(m: f64) -> [f64; 2] {
        [52.5 + m / M_PER_DEG, 13.4]
    }

    #[test]
    fn circle_relations_take_the_accuracy_and_the_buffer() {
        let c = Shape::Circle { center: [52.5, 13.4], radius_m: 100.0 };
        assert_eq!(c.relation(north(50.0), 40.0, 30.0), Relation::Inside);
        assert_eq!(c.relation(north(50.0), 60.0, 30.0), Relation::Band, "the accuracy circle pokes out");
        assert_eq!(c.relation(north(120.0), 10.0, 30.0), Relation::Band, "outside, but within the buffer");
        assert_eq!(c.relation(north(141.0), 10.0, 30.0), Relation::Clear);
        assert!((c.signed_distance_m(north(150.0)) - 50.0).abs() < 0.01);
    }

    #[test]
    fn polygon_distances_are_signed_in_metres() {
        let sq = square();
        assert!((sq.signed_distance_m(north(0.0)) + 100.0).abs() < 0.5);
        assert!((sq.signed_distance_m(north(150.0)) - 50.0).abs() < 0.5);
        assert_eq!(sq.relation(north(0.0), 50.0, 0.0), Relation::Inside);
        assert_eq!(sq.relation(north(90.0), 20.0, 0.0), Relation::Band);
        assert_eq!(sq.relation(north(200.0), 20.0, 50.0), Relation::Clear);
    }

    #[test]
    fn a_zone_across_the_antimeridian_contains_both_sides() {
        let c = Shape::Circle { center: [0.0, 179.9995], radius_m: 200.0 };
        assert_eq!(c.relation([0.0, -179.9995], 10.0, 0.0), Relation::Inside);
        let p = Shape::Polygon { vertices: vec![[-0.01, 179.99], [-0.01, -179.99], [0.01, -179.99], [0.01, 179.99]] };
        assert_eq!(p.relation([0.0, -179.999], 10.0, 0.0), Relation::Inside);
        assert_eq!(p.relation([0.0, 179.9], 10.0, 0.0), Relation::Clear);
        let (_, w, _, e) = p.bbox(0.0);
        assert!(w < 180.0 && e > 180.0, "{w}..{e} is unwrapped");
    }

    #[test]
    fn bad_shapes_say_which_field() {
        let e = Shape::Circle { center: [91.0, 0.0], radius_m: 10.0 }.validate().unwrap_err();
        assert!(e.contains("shape.center") && e.contains("latitude"), "{e}");
        let e = Shape::Circle { center: [0.0, 0.0], radius_m: 0.0 }.validate().unwrap_err();
        assert!(e.contains("shape.radius_m"), "{e}");
        let e = Shape::Polygon { vertices: vec![[0.0, 0.0], [0.0, 1.0]] }.validate().unwrap_err();
        assert!(e.contains("3 to"), "{e}");
        let e = Shape::Polygon { vertices: vec![[0.0, 0.0], [0.0, 0.001], [0.0, 0.002]] }.validate().unwrap_err();
        assert!(e.contains("no area"), "{e}");
        let e = Shape::Polygon { vertices: vec![[0.0, 0.0], [0.0, 1.0], [1.0, 1.0]] }.validate().unwrap_err();
        assert!(e.contains("spans more than"), "{e}");
        assert!(square().validate().is_ok());
    }
}
