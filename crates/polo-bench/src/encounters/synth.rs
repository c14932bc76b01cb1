//! The synthetic co-location set of `algorithms.md` §2.3, in WGS84.
//!
//! M = N / 100 users, each with 100 points spread uniformly over one day,
//! in a 20 × 20 km square. With probability 0.7 a point lies at one of the
//! user's three favourite places (Gaussian, σ = 15 m), otherwise anywhere in
//! the square; there are M / 2 places, so favourite places are shared and
//! people meet. The square is centred on Beijing (UTM zone 50N, as in the
//! reference set); metres become degrees on PostGIS's sphere around the
//! centre, then E7. The same seed gives the same points.

use polo_domain::{Coord, Timestamp, UserId};
use polo_encounters::{EARTH_RADIUS_M, Sample};

use crate::generate::Rng;

/// The centre of the square: Tiananmen, Beijing.
pub const CENTRE: (f64, f64) = (39.9042, 116.4074);
/// The square's side, metres.
const SIDE_M: f64 = 20_000.0;
/// Points per user (one day).
pub const POINTS_PER_USER: usize = 100;
/// 2024-03-01T00:00:00Z.
pub const DAY_START_MS: i64 = 1_709_251_200_000;
const DAY_MS: i64 = 86_400_000;
/// Probability that a point is at a favourite place, and the spread there.
const AT_PLACE: f64 = 0.7;
const SIGMA_M: f64 = 15.0;

/// The points of `points / 100` users (rounded up), user by user; users are numbered from 1.
pub fn generate(points: usize, seed: u64) -> Vec<Sample> {
    let users = points.div_ceil(POINTS_PER_USER).max(1);
    let mut rng = Rng::new(seed);
    let places: Vec<(f64, f64)> = (0..(users / 2).max(1)).map(|_| anywhere(&mut rng)).collect();
    let mut samples = Vec::with_capacity(users * POINTS_PER_USER);
    for user in 1..=users {
        let favourites: Vec<(f64, f64)> =
            (0..3).map(|_| places[usize::try_from(rng.below(places.len() as u64)).unwrap_or(0)]).collect();
        for _ in 0..POINTS_PER_USER {
            let (x, y) = if rng.chance(AT_PLACE) {
                let (px, py) = favourites[usize::try_from(rng.below(3)).unwrap_or(0)];
                let (gx, gy) = gaussian_pair(&mut rng);
                (px + gx * SIGMA_M, py + gy * SIGMA_M)
            } else {
                anywhere(&mut rng)
            };
            let at = Timestamp(DAY_START_MS + rng.millis(0, DAY_MS - 1));
            samples.push(Sample { user: UserId(i64::try_from(user).unwrap_or(i64::MAX)), at, coord: to_coord(x, y) });
        }
    }
    samples
}

/// A uniform position in the square, metres from its south-west corner.
fn anywhere(rng: &mut Rng) -> (f64, f64) {
    (rng.range(0.0, SIDE_M), rng.range(0.0, SIDE_M))
}

/// Two independent standard normal numbers (Box–Muller).
fn gaussian_pair(rng: &mut Rng) -> (f64, f64) {
    let u = 1.0 - rng.unit(); // (0, 1]
    let v = rng.unit();
    let r = (-2.0 * u.ln()).sqrt();
    let (s, c) = (2.0 * std::f64::consts::PI * v).sin_cos();
    (r * c, r * s)
}

/// Metres from the square's south-west corner to E7 degrees, equirectangular
/// around the centre.
fn to_coord(x: f64, y: f64) -> Coord {
    let metres_per_degree = EARTH_RADIUS_M.to_radians();
    let lat = CENTRE.0 + (y - SIDE_M / 2.0) / metres_per_degree;
    let lon = CENTRE.1 + (x - SIDE_M / 2.0) / (metres_per_degree * CENTRE.0.to_radians().cos());
    Coord::from_degrees(lat, lon).expect("the square lies around Beijing")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deterministic_and_shaped_like_the_reference() {
        let a = generate(10_000, 7);
        assert_eq!(a, generate(10_000, 7));
        assert_ne!(a, generate(10_000, 8));
        assert_eq!(a.len(), 10_000);
        assert_eq!(a.last().unwrap().user, UserId(100));
        let day = DAY_START_MS..DAY_START_MS + DAY_MS;
        assert!(a.iter().all(|s| day.contains(&s.at.0)));
        let (lat, lon) = CENTRE;
        // 10 km is 0.09° of latitude and 0.117° of longitude at 39.9°N.
        assert!(a.iter().all(|s| (s.coord.lat() - lat).abs() < 0.0901 && (s.coord.lon() - lon).abs() < 0.118));
    }
}
