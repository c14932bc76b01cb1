//! The engine against a brute-force oracle, and the edge cases by name.
//!
//! The oracle looks at every pair of points (O(n²)) with the public
//! [`haversine_m`], and folds encounters its own way (connected components of
//! "at most T apart", not the engine's sweep), so the grid, the slabs and the
//! sweep are each checked against something that shares none of their code.

use polo_domain::{Coord, Timestamp, UserId};
use proptest::prelude::*;

use crate::join::join_sized;
use crate::sinks::{self, Collect};
use crate::{
    Encounter, Params, PointPair, Sample, count_exposures, count_pairs, encounters, exposure_pairs, exposures,
    haversine_m, point_pairs,
};

fn sample(user: i64, at: i64, lat: f64, lon: f64) -> Sample {
    Sample { user: UserId(user), at: Timestamp(at), coord: Coord::from_degrees(lat, lon).unwrap() }
}

fn params(d: f64, t: i64) -> Params {
    Params::new(d, t).unwrap()
}

/// Every pair, the slow way.
fn oracle_pairs(samples: &[Sample], p: &Params) -> Vec<PointPair> {
    let mut out = Vec::new();
    for (i, a) in samples.iter().enumerate() {
        for b in &samples[i + 1..] {
            if a.user == b.user || (a.at.0 - b.at.0).abs() > p.max_gap_ms {
                continue;
            }
            let d = haversine_m(a.coord, b.coord);
            if d <= p.max_distance_m {
                let (a, b) = if a.user < b.user { (*a, *b) } else { (*b, *a) };
                out.push(PointPair { a, b, distance_m: d });
            }
        }
    }
    sinks::sorted(out)
}

/// Encounters as connected components of pairs whose time spans come within T.
fn oracle_encounters(pairs: &[PointPair], t: i64) -> Vec<Encounter> {
    let span = |p: &PointPair| (p.a.at.0.min(p.b.at.0), p.a.at.0.max(p.b.at.0));
    let n = pairs.len();
    let mut parent: Vec<usize> = (0..n).collect();
    fn root(parent: &mut [usize], mut i: usize) -> usize {
        while parent[i] != i {
            i = parent[i];
        }
        i
    }
    for i in 0..n {
        for j in i + 1..n {
            let (pi, pj) = (&pairs[i], &pairs[j]);
            if (pi.a.user, pi.b.user) != (pj.a.user, pj.b.user) {
                continue;
            }
            let ((si, ei), (sj, ej)) = (span(pi), span(pj));
            if si.max(sj) - ei.min(ej) <= t {
                let (ri, rj) = (root(&mut parent, i), root(&mut parent, j));
                parent[ri] = rj;
            }
        }
    }
    let mut groups: std::collections::BTreeMap<usize, Vec<&PointPair>> = std::collections::BTreeMap::new();
    for (i, pair) in pairs.iter().enumerate() {
        let r = root(&mut parent, i);
        groups.entry(r).or_default().push(pair);
    }
    let mut out: Vec<Encounter> = groups
        .values()
        .map(|g| {
            let first = g.iter().map(|p| span(p).0).min().unwrap();
            let last = g.iter().map(|p| span(p).1).max().unwrap();
            let minutes = u32::try_from(((last - first) as u64).div_ceil(60_000).max(1)).unwrap();
            Encounter {
                user_a: g[0].a.user,
                user_b: g[0].b.user,
                first: Timestamp(first),
                last: Timestamp(last),
                min_distance_m: g.iter().map(|p| p.distance_m).fold(f64::INFINITY, f64::min),
                place: g
                    .iter()
                    .min_by_key(|p| (p.distance_m.to_bits(), span(p), p.a.coord.lat_e7, p.a.coord.lon_e7))
                    .unwrap()
                    .a
                    .coord,
                pairs: g.len() as u64,
                minutes,
            }
        })
        .collect();
    out.sort_by_key(|e| (e.user_a, e.user_b, e.first));
    out
}

/// Places where grids go wrong: a city, a UTM zone line (117°E), both sides of
/// the antimeridian, 85°N, the north pole, near the south pole, the equator.
const CENTRES: [(f64, f64); 8] = [
    (39.9, 116.4),
    (39.9, 116.999_95),
    (0.000_1, 179.999_9),
    (-16.5, -179.999_8),
    (85.000_1, 10.0),
    (89.999_8, 0.0),
    (-89.999_9, 120.0),
    (0.0, 0.001),
];

/// A point `dx`, `dy` metres from a centre, wrapped onto the globe.
fn near(centre: usize, dx: f64, dy: f64) -> Coord {
    let (lat0, lon0) = CENTRES[centre];
    let lat = (lat0 + dy / 111_195.0).clamp(-90.0, 90.0);
    let lon = lon0 + dx / (111_195.0 * lat0.to_radians().cos().max(1e-4));
    let lon = (lon + 180.0).rem_euclid(360.0) - 180.0;
    Coord::from_degrees(lat, lon).unwrap_or(Coord { lat_e7: 1, lon_e7: 1 })
}

fn samples_strategy() -> impl Strategy<Value = Vec<Sample>> {
    let one = (0..CENTRES.len(), 0i64..6, 0i64..5, -2i64..=2, -60.0f64..60.0, -60.0f64..60.0);
    prop::collection::vec(one, 0..120).prop_map(|raw| {
        raw.into_iter()
            .map(|(centre, user, step, jitter, dx, dy)| Sample {
                user: UserId(user),
                // Steps of exactly 300 s, a millisecond either side: T lands on its edge.
                at: Timestamp(1_700_000_000_000 + step * 300_000 + jitter),
                coord: near(centre, dx, dy),
            })
            .collect()
    })
}

fn params_strategy() -> impl Strategy<Value = Params> {
    (
        prop::sample::select(vec![1.0, 25.0, 40.0, 120.0]),
        prop::sample::select(vec![0i64, 1, 299_999, 300_000]),
        1usize..4,
    )
        .prop_map(|(d, t, threads)| params(d, t).with_threads(threads))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn the_join_equals_the_oracle(samples in samples_strategy(), p in params_strategy(), slab in 1usize..40) {
        let want = oracle_pairs(&samples, &p);
        prop_assert_eq!(&point_pairs(&samples, &p), &want);
        let tiny = join_sized(&samples, &p, Collect::default, Some(slab));
        prop_assert_eq!(&sinks::sorted(tiny.into_iter().flat_map(|s| s.pairs).collect()), &want);
        prop_assert_eq!(encounters(&samples, &p), oracle_encounters(&want, p.max_gap_ms));
        let counts = count_pairs(&samples, &p);
        let mut users: Vec<_> = want.iter().map(|q| (q.a.user, q.b.user)).collect();
        users.dedup();
        prop_assert_eq!((counts.point_pairs, counts.user_pairs), (want.len() as u64, users.len() as u64));
        prop_assert!(counts.candidates >= counts.point_pairs);
    }

    #[test]
    fn the_semi_join_is_the_join_restricted_to_index_cases(
        samples in samples_strategy(),
        p in params_strategy(),
        cases in prop::collection::btree_set(0i64..6, 0..3),
        period in prop::option::of((0i64..5, 0i64..5)),
    ) {
        // The index cases' points: those of case users, within the infectious period if any.
        let infectious = |s: &Sample| period.is_none_or(|(a, b)| {
            let step = (s.at.0 - 1_700_000_000_000 + 2) / 300_000;
            (a.min(b)..=a.max(b)).contains(&step)
        });
        let index: Vec<Sample> =
            samples.iter().copied().filter(|s| cases.contains(&s.user.0) && infectious(s)).collect();
        // An index case is a user with points among the index cases' (a case without points in
        // the period is nobody's contact and has no contacts).
        let is_case = |s: &Sample| index.iter().any(|i| i.user == s.user);
        // The full join over the index points and everyone else's points.
        let everyone: Vec<Sample> = samples.iter().copied().filter(|s| !is_case(s) || infectious(s)).collect();
        let want: Vec<PointPair> =
            oracle_pairs(&everyone, &p).into_iter().filter(|q| is_case(&q.a) || is_case(&q.b)).collect();
        // The streamed points include the case users' own, which must be skipped.
        prop_assert_eq!(&exposure_pairs(&index, samples.iter().copied(), &p), &want);
        prop_assert_eq!(exposures(&index, samples.iter().copied(), &p), oracle_encounters(&want, p.max_gap_ms));
        prop_assert_eq!(count_exposures(&index, samples.iter().copied(), &p).point_pairs, want.len() as u64);
    }
}

#[test]
fn exactly_d_is_a_pair_and_one_unit_more_is_not() {
    let a = sample(1, 0, 39.9, 116.4);
    let b = sample(2, 0, 39.900_2, 116.400_1);
    let d = haversine_m(a.coord, b.coord);
    let p = params(d, 300_000);
    assert_eq!(point_pairs(&[a, b], &p).len(), 1);
    assert_eq!(point_pairs(&[a, b], &p)[0].distance_m, d);
    let mut farther = b;
    farther.coord.lat_e7 += 1;
    assert!(haversine_m(a.coord, farther.coord) > d);
    assert!(point_pairs(&[a, farther], &p).is_empty());
}

#[test]
fn exactly_t_is_a_pair_and_one_millisecond_more_is_not() {
    let p = params(25.0, 300_000);
    let a = sample(1, 1_000_000, 39.9, 116.4);
    let b = sample(2, 1_300_000, 39.9, 116.4);
    let c = sample(3, 1_300_001, 39.9, 116.4);
    let pairs = point_pairs(&[a, b, c], &p);
    let users: Vec<_> = pairs.iter().map(|q| (q.a.user.0, q.b.user.0)).collect();
    assert_eq!(users, vec![(1, 2), (2, 3)]);
    // T = 0: only the same millisecond.
    let same = sample(4, 1_000_000, 39.9, 116.4);
    assert_eq!(point_pairs(&[a, b, same], &params(25.0, 0)).len(), 1);
}

#[test]
fn across_the_antimeridian() {
    let p = params(25.0, 300_000);
    let east = sample(1, 0, 10.0, 179.999_95);
    let west = sample(2, 60_000, 10.0, -179.999_95);
    let pairs = point_pairs(&[east, west], &p);
    assert_eq!(pairs.len(), 1);
    assert!((pairs[0].distance_m - 10.95).abs() < 0.05, "{}", pairs[0].distance_m);
    // The same meridian written both ways is one place.
    let plus = sample(3, 0, -20.0, 180.0);
    let minus = sample(4, 0, -20.0, -180.0);
    assert_eq!(point_pairs(&[plus, minus], &p).len(), 1);
}

#[test]
fn across_a_utm_zone_line() {
    // 117°E separates UTM zones 50 and 51: a projected grid would put these in two systems.
    let p = params(25.0, 300_000);
    let west = sample(1, 0, 39.9, 116.999_9);
    let east = sample(2, 0, 39.9, 117.000_1);
    let far = sample(3, 0, 39.9, 117.000_3);
    let pairs = point_pairs(&[west, east, far], &p);
    let users: Vec<_> = pairs.iter().map(|q| (q.a.user.0, q.b.user.0)).collect();
    assert_eq!(users, vec![(1, 2), (2, 3)]);
}

#[test]
fn at_high_latitude_and_at_the_pole() {
    let p = params(25.0, 300_000);
    // At 85.5° a degree of longitude is 8.7 km; 0.002° is 17 m.
    let a = sample(1, 0, 85.5, 30.0);
    let b = sample(2, 0, 85.5, 30.002);
    assert_eq!(point_pairs(&[a, b], &p).len(), 1);
    // At the pole longitude means nothing: 11 m apart on opposite meridians.
    let pole = sample(3, 0, 90.0, 0.0);
    let across = sample(4, 0, 89.999_9, -123.0);
    let south = sample(5, 0, -89.999_9, 17.0);
    let south_across = sample(6, 0, -89.999_9, -163.0);
    let pairs = point_pairs(&[pole, across, south, south_across], &p);
    let users: Vec<_> = pairs.iter().map(|q| (q.a.user.0, q.b.user.0)).collect();
    assert_eq!(users, vec![(3, 4), (5, 6)]);
}

#[test]
fn one_user_alone_or_near_themselves_is_never_a_pair() {
    let p = params(25.0, 300_000);
    let alone: Vec<Sample> = (0..50).map(|i| sample(7, i * 1000, 39.9, 116.4)).collect();
    assert!(point_pairs(&alone, &p).is_empty());
    assert!(encounters(&alone, &p).is_empty());
    assert_eq!(count_pairs(&alone, &p).point_pairs, 0);
    assert!(exposures(&alone[..10], alone.iter().copied(), &p).is_empty());
}

#[test]
fn empty_input_gives_nothing() {
    let p = params(25.0, 300_000);
    assert!(point_pairs(&[], &p).is_empty());
    assert!(encounters(&[], &p).is_empty());
    assert_eq!(count_pairs(&[], &p), crate::Counts::default());
    assert!(exposures(&[], std::iter::empty(), &p).is_empty());
    let one = [sample(1, 0, 1.0, 1.0)];
    assert!(exposures(&[], one, &p).is_empty());
    assert!(exposures(&one, std::iter::empty(), &p).is_empty());
}

#[test]
fn a_morning_and_an_evening_are_two_encounters() {
    let p = params(25.0, 300_000);
    let mut samples = Vec::new();
    for minute in 0..10 {
        samples.push(sample(1, minute * 60_000, 39.9, 116.4));
        samples.push(sample(2, minute * 60_000 + 5_000, 39.9, 116.400_1));
    }
    samples.push(sample(1, 36_000_000, 39.9, 116.4));
    samples.push(sample(2, 36_000_000, 39.9, 116.4));
    let got = encounters(&samples, &p);
    assert_eq!(got.len(), 2);
    // Pairs up to 300 s apart: the morning runs from 0 to 9 min 5 s, ten minutes rounded up.
    assert_eq!((got[0].first, got[0].last, got[0].minutes), (Timestamp(0), Timestamp(545_000), 10));
    assert_eq!((got[1].first, got[1].pairs, got[1].minutes, got[1].min_distance_m), (Timestamp(36_000_000), 1, 1, 0.0));
}
