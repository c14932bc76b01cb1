//! Small spherical geometry: distances, road-like paths and great circles,
//! all antimeridian-safe (longitudes are unwrapped before interpolating and
//! normalised to −180..180 after).

const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// Great-circle distance in metres.
#[must_use]
pub fn distance_m(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (la1, la2) = (a.0.to_radians(), b.0.to_radians());
    let dlat = la2 - la1;
    let dlon = (b.1 - a.1).to_radians();
    let h = (dlat / 2.0).sin().powi(2) + la1.cos() * la2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * h.sqrt().min(1.0).asin()
}

/// Longitude brought into −180..180.
#[must_use]
pub fn normalise_lon(lon: f64) -> f64 {
    let l = (lon + 180.0).rem_euclid(360.0) - 180.0;
    if l < -180.0 { l + 360.0 } else { l }
}

/// `b`'s longitude moved by ±360° to be within 180° of `a`'s.
fn unwrap_lon(a: f64, b: f64) -> f64 {
    if b - a > 180.0 {
        b - 360.0
    } else if a - b > 180.0 {
        b + 360.0
    } else {
        b
    }
}

/// Offsets a position by metres north and east.
#[must_use]
pub fn offset_m(p: (f64, f64), north: f64, east: f64) -> (f64, f64) {
    let lat = p.0 + north / 111_195.0;
    let lon = p.1 + east / (111_195.0 * p.0.to_radians().cos().max(0.01));
    (lat.clamp(-89.9, 89.9), normalise_lon(lon))
}

/// A road-like path between two places: a quadratic Bézier whose bend is
/// fixed per pair, so the same trip follows the same "road" every time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoadPath {
    from: (f64, f64),
    control: (f64, f64),
    to: (f64, f64),
    /// Length in metres (sampled).
    pub length_m: f64,
}

impl RoadPath {
    /// A path from `from` to `to` bending sideways by `bend` × the distance.
    #[must_use]
    pub fn new(from: (f64, f64), to: (f64, f64), bend: f64) -> Self {
        let to_u = (to.0, unwrap_lon(from.1, to.1));
        let mid = ((from.0 + to_u.0) / 2.0, (from.1 + to_u.1) / 2.0);
        let (dlat, dlon) = (to_u.0 - from.0, to_u.1 - from.1);
        let control = (mid.0 - dlon * bend, mid.1 + dlat * bend);
        let mut path = Self { from, control, to: to_u, length_m: 0.0 };
        let mut length = 0.0;
        let mut prev = from;
        for i in 1..=16 {
            let p = path.at(f64::from(i) / 16.0);
            length += distance_m(prev, p);
            prev = p;
        }
        path.length_m = length;
        path
    }

    /// The position at fraction `f` (0..=1) of the way.
    #[must_use]
    pub fn at(&self, f: f64) -> (f64, f64) {
        let g = 1.0 - f;
        let lat = g * g * self.from.0 + 2.0 * g * f * self.control.0 + f * f * self.to.0;
        let lon = g * g * self.from.1 + 2.0 * g * f * self.control.1 + f * f * self.to.1;
        (lat, normalise_lon(lon))
    }

    /// Heading in degrees (0 = north) at fraction `f`.
    #[must_use]
    pub fn heading_at(&self, f: f64) -> f64 {
        let g = 1.0 - f;
        let dlat = 2.0 * g * (self.control.0 - self.from.0) + 2.0 * f * (self.to.0 - self.control.0);
        let dlon = (2.0 * g * (self.control.1 - self.from.1) + 2.0 * f * (self.to.1 - self.control.1))
            * self.from.0.to_radians().cos();
        dlon.atan2(dlat).to_degrees().rem_euclid(360.0)
    }
}

/// The position at fraction `f` along the great circle from `a` to `b`.
#[must_use]
pub fn great_circle_at(a: (f64, f64), b: (f64, f64), f: f64) -> (f64, f64) {
    let to_vec = |p: (f64, f64)| {
        let (la, lo) = (p.0.to_radians(), p.1.to_radians());
        (la.cos() * lo.cos(), la.cos() * lo.sin(), la.sin())
    };
    let (va, vb) = (to_vec(a), to_vec(b));
    let dot = (va.0 * vb.0 + va.1 * vb.1 + va.2 * vb.2).clamp(-1.0, 1.0);
    let omega = dot.acos();
    if omega < 1e-12 {
        return a;
    }
    let (sa, sb) = (((1.0 - f) * omega).sin() / omega.sin(), (f * omega).sin() / omega.sin());
    let v = (sa * va.0 + sb * vb.0, sa * va.1 + sb * vb.1, sa * va.2 + sb * vb.2);
    let lat = v.2.atan2((v.0 * v.0 + v.1 * v.1).sqrt()).to_degrees();
    let lon = v.1.atan2(v.0).to_degrees();
    (lat, normalise_lon(lon))
}

/// True when going from `a` to `b` (a short step) crosses the antimeridian.
#[must_use]
pub fn crosses_antimeridian(a: (f64, f64), b: (f64, f64)) -> bool {
    (a.1 - b.1).abs() > 180.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distances_and_paths_across_the_antimeridian() {
        // Taveuni: a few km on either side of 180°.
        let (west, east) = ((-16.80, 179.97), (-16.81, -179.87));
        let d = distance_m(west, east);
        assert!((15_000.0..20_000.0).contains(&d), "{d}");
        let path = RoadPath::new(west, east, 0.1);
        assert!(path.length_m < 25_000.0, "{}", path.length_m);
        let mid = path.at(0.5);
        assert!(mid.1.abs() > 179.0, "{mid:?}");
        assert!(crosses_antimeridian(path.at(0.0), path.at(1.0)));
        // Berlin to Tokyo ~8,900 km; the great circle's middle is over Siberia.
        let (ber, hnd) = ((52.36, 13.50), (35.55, 139.78));
        assert!((8_800_000.0..9_100_000.0).contains(&distance_m(ber, hnd)));
        let m = great_circle_at(ber, hnd, 0.5);
        assert!(m.0 > 55.0 && (70.0..100.0).contains(&m.1), "{m:?}");
    }
}
