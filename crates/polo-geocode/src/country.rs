//! Which country a point lies in: point-in-polygon on Natural Earth's 1:50m
//! admin-0 outlines, with a coastal margin.
//!
//! # Finding the polygon
//! An R-tree (`rstar`) holds the bounding box of every polygon (about 1,600;
//! a few kilobytes), so a lookup tests only the polygons whose box holds the
//! point, usually one or two. The test is even-odd ray crossing over all
//! rings of the polygon, so a hole (Lesotho inside South Africa, the Vatican
//! and San Marino inside Italy) is outside its polygon and inside its own.
//! Neighbours share their border vertices (the source is a topology), so no
//! point lies in two countries' polygons except exactly on a border.
//!
//! A ring of thousands of vertices (Russia, Canada) would make a plain
//! crossing test cost tens of microseconds, so each ring also keeps a band
//! index: its latitude range cut into bands of about eight edges each, every
//! band listing the edges that reach into it. A horizontal ray at latitude
//! `y` can only cross edges whose latitude span holds `y`, and those are
//! exactly the edges listed in `y`'s band, so a test reads a handful of edges.
//!
//! # The antimeridian
//! Rings are stored with continuous longitudes (see `src/data.rs`): a ring
//! that crosses 180° continues to 181°, 182°, … rather than jumping to −179°.
//! Such a polygon is entered in the R-tree twice, once as it is and once
//! shifted by −360°; the second entry carries a +360° shift that is applied
//! to the query point before the crossing test. Antarctica's outer ring goes
//! once around the pole; `build.py` closes it along −90°.
//!
//! # The coastal margin
//! At 1:50m a coastline is generalised by up to a few kilometres, and a stay
//! on a beach, a pier or a small island can fall just outside every outline.
//! A point inside no polygon therefore takes the country whose outline is
//! nearest, if that outline is within [`COAST_MARGIN_M`]; farther out it is
//! open sea and gets no country. Distances to the edges are measured in a
//! local equirectangular projection centred on the point (longitude scaled by
//! the cosine of its latitude), which is within 1 % of the great-circle
//! distance at 25 km below 75° of latitude and within 3 % up to 85°.

use rstar::primitives::{GeomWithData, Rectangle};
use rstar::{AABB, RTree};

use crate::data::{self, Code, CountryData, CountryName, E5};
use crate::geo::METRES_PER_DEGREE;

/// How far off the nearest outline a point still takes that outline's country.
/// Metres.
pub const COAST_MARGIN_M: f64 = 25_000.0;

/// 360° in E5 units: the shift between the two copies of a polygon that
/// crosses the antimeridian.
const TURN: f64 = 360.0 * E5;

/// Edges per band of a ring's band index, on average.
const EDGES_PER_BAND: u32 = 8;

/// One ring: a slice of the vertex array and its band index.
#[derive(Debug, Clone)]
struct Ring {
    /// Index of its first vertex in `CountryIndex::vertices`.
    first: u32,
    /// Number of vertices (and edges: the ring closes implicitly).
    len: u32,
    /// Southernmost latitude, E5.
    lat_min: i32,
    /// Northernmost latitude, E5.
    lat_max: i32,
    /// Height of one band, E5.
    band_height: i32,
    /// Number of bands.
    bands: u32,
    /// Index of its first band in `CountryIndex::band_starts`.
    band_base: u32,
}

/// One polygon: a country and a slice of the ring array.
#[derive(Debug, Clone)]
struct Polygon {
    country: u16,
    first_ring: u32,
    rings: u32,
}

/// An R-tree entry: a polygon's bounding box, and the longitude shift (E5) to
/// apply to a query point found in that box.
type BoxEntry = GeomWithData<Rectangle<[f64; 2]>, (u32, f64)>;

/// The country polygons, ready for lookups. Immutable after construction.
pub(crate) struct CountryIndex {
    countries: Vec<CountryName>,
    polygons: Vec<Polygon>,
    rings: Vec<Ring>,
    /// `[longitude, latitude]`, E5, longitudes unwrapped.
    vertices: Vec<[i32; 2]>,
    /// For ring `r`, band `b`: the edges of that band are
    /// `band_edges[band_starts[r.band_base + b]..band_starts[r.band_base + b + 1]]`.
    band_starts: Vec<u32>,
    /// Edge `i` runs from vertex `i` to the next vertex of its ring.
    band_edges: Vec<u32>,
    boxes: RTree<BoxEntry>,
}

impl CountryIndex {
    /// Builds the index from decoded data.
    pub(crate) fn new(data: CountryData) -> Self {
        let CountryData { countries, polygons: polygon_data, ring_lengths, vertices } = data;
        let mut rings = Vec::with_capacity(ring_lengths.len());
        let mut band_starts = Vec::new();
        let mut band_edges = Vec::new();
        let mut first = 0u32;
        for &len in &ring_lengths {
            rings.push(build_ring(&vertices, first, len, &mut band_starts, &mut band_edges));
            first += len;
        }
        // The end of the last band.
        // The band arrays stay far below u32::MAX entries (about 1.3 per vertex).
        #[allow(clippy::cast_possible_truncation)]
        band_starts.push(band_edges.len() as u32);
        let mut polygons = Vec::with_capacity(polygon_data.len());
        let mut entries = Vec::new();
        let mut first_ring = 0u32;
        for (index, &(country, ring_count)) in polygon_data.iter().enumerate() {
            let polygon = Polygon { country, first_ring, rings: ring_count };
            first_ring += ring_count;
            let [west, south, east, north] = polygon_box(&rings, &vertices, &polygon);
            // There are about 1,600 polygons, far below u32::MAX.
            #[allow(clippy::cast_possible_truncation)]
            let index = index as u32;
            entries.push(GeomWithData::new(Rectangle::from_corners([west, south], [east, north]), (index, 0.0)));
            if east > 180.0 * E5 {
                let shifted = Rectangle::from_corners([west - TURN, south], [east - TURN, north]);
                entries.push(GeomWithData::new(shifted, (index, TURN)));
            }
            polygons.push(polygon);
        }
        Self { countries, polygons, rings, vertices, band_starts, band_edges, boxes: RTree::bulk_load(entries) }
    }

    /// The country entry at `index`.
    pub(crate) fn country(&self, index: u16) -> &CountryName {
        &self.countries[usize::from(index)]
    }

    /// The table index of the entry with this code, if any.
    pub(crate) fn by_code(&self, code: Code) -> Option<u16> {
        let index = self.countries.iter().position(|country| country.code == Some(code))?;
        // The table is read with a u16 count.
        #[allow(clippy::cast_possible_truncation)]
        Some(index as u16)
    }

    /// The country whose polygon holds the point, or whose outline is within
    /// [`COAST_MARGIN_M`] of it (the nearest such). Degrees in, table index out.
    pub(crate) fn locate(&self, lat: f64, lon: f64) -> Option<u16> {
        let (x, y) = (lon * E5, lat * E5);
        for entry in self.boxes.locate_all_at_point(&[x, y]) {
            let (polygon, shift) = entry.data;
            let polygon = &self.polygons[polygon as usize];
            if self.contains(polygon, x + shift, y) {
                return Some(polygon.country);
            }
        }
        self.nearest_outline(x, y).map(|(country, _)| country)
    }

    /// Even-odd crossing test over all rings of the polygon.
    fn contains(&self, polygon: &Polygon, x: f64, y: f64) -> bool {
        let mut inside = false;
        for ring in self.polygon_rings(polygon) {
            if y < f64::from(ring.lat_min) || y > f64::from(ring.lat_max) {
                continue;
            }
            let band = self.band_of(ring, y);
            for &edge in self.band(ring, band) {
                let ([x1, y1], [x2, y2]) = self.edge(ring, edge);
                if (y1 > y) != (y2 > y) && x < x1 + (y - y1) * (x2 - x1) / (y2 - y1) {
                    inside = !inside;
                }
            }
        }
        inside
    }

    /// The country of the outline nearest to the point within the coastal
    /// margin, and that distance in metres.
    fn nearest_outline(&self, x: f64, y: f64) -> Option<(u16, f64)> {
        let lat = y / E5;
        let cos_lat = lat.to_radians().cos().max(1e-6);
        // Metres per E5 unit of latitude and of longitude at this latitude.
        let metres_y = METRES_PER_DEGREE / E5;
        let metres_x = metres_y * cos_lat;
        let reach_y = COAST_MARGIN_M / metres_y;
        let reach_x = (COAST_MARGIN_M / metres_x).min(TURN);
        let search = AABB::from_corners([x - reach_x, y - reach_y], [x + reach_x, y + reach_y]);
        let mut best: Option<(u16, f64)> = None;
        for entry in self.boxes.locate_in_envelope_intersecting(&search) {
            let (polygon, shift) = entry.data;
            let polygon = &self.polygons[polygon as usize];
            let px = x + shift;
            for ring in self.polygon_rings(polygon) {
                if y + reach_y < f64::from(ring.lat_min) || y - reach_y > f64::from(ring.lat_max) {
                    continue;
                }
                for band in self.band_of(ring, y - reach_y)..=self.band_of(ring, y + reach_y) {
                    for &edge in self.band(ring, band) {
                        let ([x1, y1], [x2, y2]) = self.edge(ring, edge);
                        let a = ((x1 - px) * metres_x, (y1 - y) * metres_y);
                        let b = ((x2 - px) * metres_x, (y2 - y) * metres_y);
                        let distance = distance_to_segment(a, b);
                        if distance <= COAST_MARGIN_M && best.is_none_or(|(_, d)| distance < d) {
                            best = Some((polygon.country, distance));
                        }
                    }
                }
            }
        }
        best
    }

    fn polygon_rings(&self, polygon: &Polygon) -> &[Ring] {
        &self.rings[polygon.first_ring as usize..(polygon.first_ring + polygon.rings) as usize]
    }

    /// The band holding latitude `y` (E5), clamped to the ring's bands.
    fn band_of(&self, ring: &Ring, y: f64) -> u32 {
        let _ = self;
        let offset = ((y - f64::from(ring.lat_min)) / f64::from(ring.band_height)).floor();
        // Clamped to 0..bands, so the cast neither truncates nor loses the sign.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let band = offset.clamp(0.0, f64::from(ring.bands - 1)) as u32;
        band
    }

    /// The edges listed in one band of a ring, as edge (= start vertex) indices.
    fn band(&self, ring: &Ring, band: u32) -> &[u32] {
        let slot = (ring.band_base + band) as usize;
        &self.band_edges[self.band_starts[slot] as usize..self.band_starts[slot + 1] as usize]
    }

    /// The endpoints of edge `edge` of `ring`, E5.
    fn edge(&self, ring: &Ring, edge: u32) -> ([f64; 2], [f64; 2]) {
        let next = if edge + 1 == ring.first + ring.len { ring.first } else { edge + 1 };
        let [x1, y1] = self.vertices[edge as usize];
        let [x2, y2] = self.vertices[next as usize];
        ([f64::from(x1), f64::from(y1)], [f64::from(x2), f64::from(y2)])
    }

    /// Bytes held on the heap (for the documented resident cost).
    pub(crate) fn heap_bytes(&self) -> usize {
        use std::mem::size_of;
        let names: usize = self.countries.iter().map(|country| country.name.len()).sum();
        self.countries.capacity() * size_of::<CountryName>()
            + names
            + self.polygons.capacity() * size_of::<Polygon>()
            + self.rings.capacity() * size_of::<Ring>()
            + self.vertices.capacity() * size_of::<[i32; 2]>()
            + (self.band_starts.capacity() + self.band_edges.capacity()) * size_of::<u32>()
            // rstar nodes: an entry plus its share of the parent nodes, about twice an entry.
            + self.boxes.size() * 2 * size_of::<BoxEntry>()
    }

    /// The number of country table entries (for tests).
    #[cfg(test)]
    pub(crate) fn country_count(&self) -> usize {
        self.countries.len()
    }
}

/// Builds one ring's band index, appending to the shared arrays.
fn build_ring(
    vertices: &[[i32; 2]],
    first: u32,
    len: u32,
    band_starts: &mut Vec<u32>,
    band_edges: &mut Vec<u32>,
) -> Ring {
    let ring = &vertices[first as usize..(first + len) as usize];
    let lat_min = ring.iter().map(|v| v[1]).min().unwrap_or(0);
    let lat_max = ring.iter().map(|v| v[1]).max().unwrap_or(0);
    let bands = len.div_ceil(EDGES_PER_BAND).max(1);
    // `bands` ≤ len, and the span is below 2^25 E5 units, so all of this fits i32.
    #[allow(clippy::cast_possible_wrap)]
    let band_height = (lat_max - lat_min + 1).div_euclid(bands as i32) + 1;
    let band_of = |lat: i32| -> usize {
        // Non-negative and below `bands`.
        #[allow(clippy::cast_sign_loss)]
        let band = ((lat - lat_min) / band_height) as usize;
        band
    };
    let mut lists: Vec<Vec<u32>> = vec![Vec::new(); bands as usize];
    for (offset, start) in ring.iter().enumerate() {
        let end = ring[(offset + 1) % ring.len()];
        let (low, high) = (start[1].min(end[1]), start[1].max(end[1]));
        // offset < len ≤ u32::MAX.
        #[allow(clippy::cast_possible_truncation)]
        let edge = first + offset as u32;
        for list in &mut lists[band_of(low)..=band_of(high)] {
            list.push(edge);
        }
    }
    // The band arrays stay far below u32::MAX entries (about 1.3 per vertex).
    #[allow(clippy::cast_possible_truncation)]
    let band_base = band_starts.len() as u32;
    for list in lists {
        #[allow(clippy::cast_possible_truncation)]
        band_starts.push(band_edges.len() as u32);
        band_edges.extend(list);
    }
    Ring { first, len, lat_min, lat_max, band_height, bands, band_base }
}

/// A polygon's bounding box, E5: `[west, south, east, north]`.
fn polygon_box(rings: &[Ring], vertices: &[[i32; 2]], polygon: &Polygon) -> [f64; 4] {
    let mut bbox = [f64::INFINITY, f64::INFINITY, f64::NEG_INFINITY, f64::NEG_INFINITY];
    for ring in &rings[polygon.first_ring as usize..(polygon.first_ring + polygon.rings) as usize] {
        for &[x, y] in &vertices[ring.first as usize..(ring.first + ring.len) as usize] {
            let (x, y) = (f64::from(x), f64::from(y));
            bbox = [bbox[0].min(x), bbox[1].min(y), bbox[2].max(x), bbox[3].max(y)];
        }
    }
    bbox
}

/// Distance from the origin to the segment `a`–`b`, in the units of the inputs.
fn distance_to_segment(a: (f64, f64), b: (f64, f64)) -> f64 {
    let (dx, dy) = (b.0 - a.0, b.1 - a.1);
    let length2 = dx * dx + dy * dy;
    let t = if length2 > 0.0 { (-(a.0 * dx + a.1 * dy) / length2).clamp(0.0, 1.0) } else { 0.0 };
    (a.0 + t * dx).hypot(a.1 + t * dy)
}

/// Loads the embedded polygons.
pub(crate) fn builtin() -> Result<CountryIndex, crate::GeocodeError> {
    Ok(CountryIndex::new(data::countries()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 10°×10° square with a 2°×2° hole, and a triangle across the antimeridian.
    fn fixture() -> CountryIndex {
        let degrees = |points: &[(f64, f64)]| -> Vec<[i32; 2]> {
            // Whole E5 values by construction.
            #[allow(clippy::cast_possible_truncation)]
            points.iter().map(|&(lon, lat)| [(lon * E5) as i32, (lat * E5) as i32]).collect()
        };
        let square = degrees(&[(0.0, 0.0), (10.0, 0.0), (10.0, 10.0), (0.0, 10.0)]);
        let hole = degrees(&[(4.0, 4.0), (6.0, 4.0), (6.0, 6.0), (4.0, 6.0)]);
        let across = degrees(&[(170.0, -20.0), (190.0, -20.0), (180.0, -10.0)]);
        let countries = ["AA", "BB"]
            .iter()
            .map(|code| CountryName { code: Some(code.as_bytes().try_into().unwrap()), name: (*code).into() })
            .collect();
        let mut vertices = square;
        vertices.extend(hole);
        vertices.extend(across);
        CountryIndex::new(CountryData {
            countries,
            polygons: vec![(0, 2), (1, 1)],
            ring_lengths: vec![4, 4, 3],
            vertices,
        })
    }

    #[test]
    fn inside_outside_and_holes() {
        let index = fixture();
        assert_eq!(index.locate(2.0, 2.0), Some(0));
        assert_eq!(index.locate(9.9, 0.1), Some(0));
        // In the hole, 1° from its edge (111 km): outside, and beyond the margin.
        assert_eq!(index.locate(5.0, 5.0), None);
        assert_eq!(index.locate(-5.0, 5.0), None);
    }

    #[test]
    fn antimeridian_both_sides() {
        let index = fixture();
        assert_eq!(index.locate(-18.0, 179.0), Some(1));
        assert_eq!(index.locate(-18.0, -179.0), Some(1));
        assert_eq!(index.locate(-18.0, 175.0), Some(1));
        assert_eq!(index.locate(-18.0, -175.0), Some(1));
        assert_eq!(index.locate(-18.0, -160.0), None);
    }

    #[test]
    fn coastal_margin() {
        let index = fixture();
        // 0.1° south of the square's south edge: 11.1 km, within the margin.
        assert_eq!(index.locate(-0.1, 5.0), Some(0));
        // 0.3° south: 33 km, open sea.
        assert_eq!(index.locate(-0.3, 5.0), None);
        // Off the antimeridian triangle's south edge, west of 180°: 11 km.
        assert_eq!(index.locate(-20.1, -178.0), Some(1));
        // Just inside the hole's edge, 1.1 km from the square's hole ring: the
        // margin applies to points inside no polygon, holes included.
        assert_eq!(index.locate(4.01, 5.0), Some(0));
    }

    #[test]
    fn distance_to_segment_cases() {
        assert!((distance_to_segment((1.0, -1.0), (1.0, 1.0)) - 1.0).abs() < 1e-12);
        assert!((distance_to_segment((3.0, 4.0), (6.0, 8.0)) - 5.0).abs() < 1e-12);
        assert!((distance_to_segment((2.0, 2.0), (2.0, 2.0)) - 8f64.sqrt()).abs() < 1e-12);
    }

    #[test]
    fn builtin_has_a_table_and_a_band_index() {
        let index = builtin().unwrap();
        assert!(index.country_count() > 200);
        // Every edge is listed in at least one band.
        assert!(index.band_edges.len() >= index.vertices.len());
        assert_eq!(index.band_starts.len(), index.rings.iter().map(|ring| ring.bands as usize).sum::<usize>() + 1);
        assert_eq!(index.by_code(*b"CH").map(|i| &*index.country(i).name), Some("Switzerland"));
        assert_eq!(index.by_code(*b"GI").map(|i| &*index.country(i).name), Some("Gibraltar"));
    }
}
