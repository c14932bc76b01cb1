//! The nearest town: a static k-d tree over unit vectors of the GeoNames
//! towns.
//!
//! # Why not `rstar`
//! The rest of polo uses `rstar` for neighbour queries on data that changes.
//! The towns never change after loading, and an `rstar` tree stores every
//! point in a 48-byte node (an enum of leaf and parent, a parent being a
//! `Vec` and a bounding box), plus the parent nodes: some 10 MB for 171,000
//! towns on a Raspberry Pi, for the index alone. An implicit k-d tree needs nothing but
//! the points themselves in a particular order: the median of each range is
//! the node, the halves left and right of it are its subtrees, and the split
//! axis is the depth modulo three. Building it is a recursive
//! `select_nth_unstable` (O(n log n), about 30 ms for all towns); a query
//! visits O(log n) nodes plus those within the best distance so far.
//!
//! Points are unit vectors (x, y, z) stored as `f32` (about 0.4 m of
//! resolution, far below the spacing of towns), and the search compares
//! squared chords, which order exactly as great-circle distances, so poles
//! and the antimeridian are no special case. The reported distance is the
//! haversine distance from the stored degrees.
//!
//! # Memory
//! Per town: 12 bytes of unit vector, 8 of position (E5), 4 of name offset,
//! 2 of country and 2 of region index, plus the name itself (10 bytes on
//! average): about 38 bytes, 6.5 MB for 171,075 towns.

use crate::data::{self, Code, E5};
use crate::geo::{chord2_for, haversine_m, unit_vector};

/// A found town, borrowing from the index.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Found<'a> {
    pub name: &'a str,
    pub lat: f64,
    pub lon: f64,
    pub code: Code,
    pub region: Option<&'a str>,
    pub distance_m: f64,
}

/// All towns in k-d tree order; every column is indexed the same way.
pub(crate) struct TownIndex {
    points: Vec<[f32; 3]>,
    /// `[latitude, longitude]`, E5.
    positions: Vec<[i32; 2]>,
    /// Names, concatenated in tree order.
    names: String,
    /// End of each name in `names` (its start is the previous end).
    name_ends: Vec<u32>,
    country: Vec<u16>,
    /// 0 for none, `i` for `regions[i - 1]`.
    region: Vec<u16>,
    codes: Vec<Code>,
    regions: Vec<Box<str>>,
}

impl TownIndex {
    /// Builds the tree from the decoded file.
    pub(crate) fn new(data: &data::TownData<'_>) -> Self {
        let vectors: Vec<[f32; 3]> = data
            .positions
            .iter()
            .map(|&[lat, lon]| {
                // Unit vector components in −1..=1 lose only precision as f32.
                #[allow(clippy::cast_possible_truncation)]
                unit_vector(f64::from(lat) / E5, f64::from(lon) / E5).map(|c| c as f32)
            })
            .collect();
        // The file holds about 171,000 towns, far below u32::MAX.
        #[allow(clippy::cast_possible_truncation)]
        let mut items: Vec<([f32; 3], u32)> = vectors.iter().enumerate().map(|(i, &v)| (v, i as u32)).collect();
        arrange(&mut items, 0);
        let order: Vec<u32> = items.iter().map(|&(_, town)| town).collect();
        drop(items);

        let mut names = String::with_capacity(data.names.iter().map(|name| name.len()).sum());
        let mut name_ends = Vec::with_capacity(order.len());
        for &town in &order {
            names.push_str(data.names[town as usize]);
            // The names total under 2 MB.
            #[allow(clippy::cast_possible_truncation)]
            name_ends.push(names.len() as u32);
        }
        let column = |values: &[u16]| order.iter().map(|&town| values[town as usize]).collect();
        Self {
            points: order.iter().map(|&town| vectors[town as usize]).collect(),
            positions: order.iter().map(|&town| data.positions[town as usize]).collect(),
            names,
            name_ends,
            country: column(&data.country),
            region: column(&data.region),
            codes: data.codes.clone(),
            regions: data.regions.iter().map(|&region| region.into()).collect(),
        }
    }

    /// Number of towns.
    pub(crate) fn len(&self) -> usize {
        self.points.len()
    }

    /// Every town's `(latitude, longitude)` in degrees, in index order.
    pub(crate) fn positions(&self) -> impl ExactSizeIterator<Item = (f64, f64)> + '_ {
        self.positions.iter().map(|&[lat, lon]| (f64::from(lat) / E5, f64::from(lon) / E5))
    }

    /// The nearest town within `max_m` metres of the position (degrees) whose
    /// country is `country`, or of any country for `None`.
    pub(crate) fn nearest(&self, lat: f64, lon: f64, max_m: f64, country: Option<Code>) -> Option<Found<'_>> {
        let query = unit_vector(lat, lon);
        // Widened by a metre's worth so that f32 rounding cannot drop a town
        // right at the limit; the exact check is the haversine below.
        let mut best = Best { town: None, chord2: chord2_for(max_m + 1.0) };
        let accept = |town: usize| country.is_none_or(|code| self.codes[usize::from(self.country[town])] == code);
        self.search(0, self.points.len(), 0, &query, &accept, &mut best);
        let town = best.town?;
        let [town_lat, town_lon] = self.positions[town].map(|v| f64::from(v) / E5);
        let distance_m = haversine_m(lat, lon, town_lat, town_lon);
        if distance_m > max_m {
            return None;
        }
        let region = match self.region[town] {
            0 => None,
            index => Some(&*self.regions[usize::from(index) - 1]),
        };
        Some(Found {
            name: self.name(town),
            lat: town_lat,
            lon: town_lon,
            code: self.codes[usize::from(self.country[town])],
            region,
            distance_m,
        })
    }

    fn name(&self, town: usize) -> &str {
        let start = if town == 0 { 0 } else { self.name_ends[town - 1] as usize };
        &self.names[start..self.name_ends[town] as usize]
    }

    /// Best-first descent of the implicit tree over `lo..hi` at `depth`.
    fn search(
        &self,
        lo: usize,
        hi: usize,
        depth: usize,
        query: &[f64; 3],
        accept: &impl Fn(usize) -> bool,
        best: &mut Best,
    ) {
        if lo >= hi {
            return;
        }
        let mid = lo + (hi - lo) / 2;
        let point = self.points[mid];
        let chord2: f64 = (0..3).map(|axis| (query[axis] - f64::from(point[axis])).powi(2)).sum();
        if chord2 < best.chord2 && accept(mid) {
            *best = Best { town: Some(mid), chord2 };
        }
        let axis = depth % 3;
        let along = query[axis] - f64::from(point[axis]);
        let (near, far) = if along < 0.0 { ((lo, mid), (mid + 1, hi)) } else { ((mid + 1, hi), (lo, mid)) };
        self.search(near.0, near.1, depth + 1, query, accept, best);
        if along * along < best.chord2 {
            self.search(far.0, far.1, depth + 1, query, accept, best);
        }
    }

    /// Bytes held on the heap (for the documented resident cost).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        self.points.capacity() * size_of::<[f32; 3]>()
            + self.positions.capacity() * size_of::<[i32; 2]>()
            + self.names.capacity()
            + self.name_ends.capacity() * size_of::<u32>()
            + (self.country.capacity() + self.region.capacity()) * size_of::<u16>()
            + self.codes.capacity() * size_of::<Code>()
            + self.regions.iter().map(|region| region.len() + size_of::<Box<str>>()).sum::<usize>()
    }
}

struct Best {
    town: Option<usize>,
    chord2: f64,
}

/// Orders points (with their town ids) into an implicit k-d tree: the median
/// of each range (by the range's axis, depth modulo three) at its middle,
/// smaller values before it. The points travel with the ids so that the
/// selection reads memory in order.
fn arrange(items: &mut [([f32; 3], u32)], depth: usize) {
    if items.len() <= 1 {
        return;
    }
    let axis = depth % 3;
    let mid = items.len() / 2;
    items.select_nth_unstable_by(mid, |a, b| a.0[axis].total_cmp(&b.0[axis]));
    let (left, right) = items.split_at_mut(mid);
    arrange(left, depth + 1);
    arrange(&mut right[1..], depth + 1);
}

/// Loads the embedded towns.
pub(crate) fn builtin() -> Result<TownIndex, crate::GeocodeError> {
    let bytes = data::towns_bytes()?;
    Ok(TownIndex::new(&data::towns(&bytes)?))
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    /// Towns on a coarse grid over the globe, poles and antimeridian included.
    fn grid() -> data::TownData<'static> {
        let mut positions = Vec::new();
        for lat in (-90..=90).step_by(5) {
            for lon in (-180..180).step_by(7) {
                positions.push([lat * 100_000, lon * 100_000]);
            }
        }
        let count = positions.len();
        // Alternate two countries so that the country filter has work to do.
        let country = (0..count).map(|i| u16::from(i % 3 == 0)).collect();
        data::TownData {
            codes: vec![*b"AA", *b"BB"],
            regions: vec!["North", "South"],
            country,
            region: positions.iter().map(|&[lat, _]| if lat >= 0 { 1 } else { 2 }).collect(),
            names: (0..count).map(|_| "town").collect(),
            positions,
        }
    }

    fn brute_force(data: &data::TownData<'_>, lat: f64, lon: f64, code: Option<Code>) -> Option<(f64, f64, f64)> {
        data.positions
            .iter()
            .zip(&data.country)
            .filter(|&(_, &country)| code.is_none_or(|code| data.codes[usize::from(country)] == code))
            .map(|(&[town_lat, town_lon], _)| {
                let (town_lat, town_lon) = (f64::from(town_lat) / E5, f64::from(town_lon) / E5);
                (haversine_m(lat, lon, town_lat, town_lon), town_lat, town_lon)
            })
            .min_by(|a, b| a.0.total_cmp(&b.0))
    }

    proptest! {
        #[test]
        fn nearest_agrees_with_brute_force(lat in -90.0f64..=90.0, lon in -180.0f64..=180.0, filter in 0u8..3) {
            let data = grid();
            let index = TownIndex::new(&data);
            let code = match filter { 0 => None, 1 => Some(*b"AA"), _ => Some(*b"BB") };
            let expected = brute_force(&data, lat, lon, code).unwrap();
            let found = index.nearest(lat, lon, 25_000_000.0, code).unwrap();
            // Ties (equidistant towns) may pick either; the distance must match.
            prop_assert!((found.distance_m - expected.0).abs() < 5.0, "{found:?} vs {expected:?}");
            if let Some(code) = code {
                prop_assert_eq!(found.code, code);
            }
            // Within a limit below the true nearest there is nothing.
            if expected.0 > 10.0 {
                prop_assert!(index.nearest(lat, lon, expected.0 - 5.0, code).is_none());
            }
        }
    }

    #[test]
    fn across_the_antimeridian_and_at_the_pole() {
        let data = grid();
        let index = TownIndex::new(&data);
        // -180 is a grid longitude; 179.9 is 0.1° from it.
        let found = index.nearest(0.0, 179.9, 50_000.0, None).unwrap();
        assert!((found.lon + 180.0).abs() < 1e-9, "{found:?}");
        assert!((found.distance_m - 11_119.5).abs() < 1.0, "{found:?}");
        let pole = index.nearest(89.95, 123.0, 10_000.0, None).unwrap();
        assert!((pole.lat - 90.0).abs() < 1e-9 && pole.distance_m < 5_600.0, "{pole:?}");
        assert_eq!(pole.region, Some("North"));
    }

    #[test]
    fn builtin_finds_zurich() {
        let index = builtin().unwrap();
        assert!(index.len() > 150_000);
        let found = index.nearest(47.3769, 8.5417, 50_000.0, None).unwrap();
        assert_eq!((found.name, found.code, found.region), ("Zürich (Kreis 1) / Lindenhof", *b"CH", Some("Zurich")));
        assert!(found.distance_m < 2_000.0);
    }
}
