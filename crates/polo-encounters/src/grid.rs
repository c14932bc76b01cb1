//! The conservative grid: which cells can hold a partner of a point.
//!
//! Latitude is cut into bands of equal height, at least `D / R` (plus a
//! margin): two points within D metres differ in latitude by at most `D / R`
//! (a great circle is never shorter than its meridian component), so their
//! bands differ by at most one. Each band is cut into equal longitude cells,
//! each at least as wide as the largest longitude difference two points of
//! the band within D can have: `Δλ ≤ 2·asin(sin(D / 2R) / cos φₑ)`, where φₑ
//! is the band's latitude farthest from the equator (haversine:
//! `hav d = hav Δφ + cos φ₁ cos φ₂ hav Δλ`). So cells widen towards the poles
//! by `1 / cos φ` at the polar edge, and a partner in the same band is at most
//! one cell away, counted around the ±180° meridian. Where that bound would
//! exceed a third of the circle (next to a pole) the whole band is one cell. For two neighbouring bands the bound is the wider of their two
//! cell widths (the pair's polar edge is the more polar band's), and the
//! cells to look at are computed from the cell's extent, wrapping at ±180°.
//!
//! The cell count is computed for groups of consecutive bands (at most 4096
//! groups from pole to pole, each a few kilometres high for D = 25 m) from
//! the group's polar edge, so the grid is one small table for the whole globe
//! whatever the data, at the price of cells a fraction of a per mille wider
//! than needed away from the poles, and of one cell per band in the group
//! that holds a pole (about 4 km of latitude for D = 25 m): correct there,
//! only slower, where few people live.
//!
//! Coordinates are E7 integers, so a point's band and cell are exact integer
//! divisions, and every bound carries a margin far above floating-point
//! rounding: the grid can look at more cells than needed, never fewer. There
//! is no projection, so there are no UTM zones to be wrong at.

use polo_domain::Coord;

use crate::distance::EARTH_RADIUS_M;

/// E7 units in the full circle of longitude.
const CIRCLE_E7: i64 = 3_600_000_000;
/// E7 units from the south to the north pole.
const MERIDIAN_E7: i64 = 1_800_000_000;
/// Band groups from pole to pole, at most.
const GROUPS: u32 = 4096;

/// Up to two runs of cell numbers (two when the range wraps at ±180°).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct CellRange {
    pub segments: [(u32, u32); 2],
    pub len: usize,
}

impl CellRange {
    fn all(cells: u32) -> Self {
        Self { segments: [(0, cells - 1), (0, 0)], len: 1 }
    }

    /// The inclusive runs of cell numbers.
    pub fn iter(&self) -> impl Iterator<Item = (u32, u32)> + '_ {
        self.segments[..self.len].iter().copied()
    }
}

/// The grid for one distance, over the whole globe.
#[derive(Debug, Clone)]
pub(crate) struct Grid {
    /// Band height, E7 units of latitude.
    band_e7: i64,
    /// Bands from pole to pole.
    bands: u32,
    /// Bands per group.
    group: u32,
    /// Cells per band, per group (1: the whole band is one cell).
    cells: Vec<u32>,
    /// Bits a cell number needs.
    pub cell_bits: u32,
    /// Bits a band number needs.
    pub band_bits: u32,
}

impl Grid {
    /// The grid for distance `d_m` metres.
    pub fn new(d_m: f64) -> Self {
        let angle_e7 = (d_m / EARTH_RADIUS_M).to_degrees() * 1e7;
        // Margin: a millionth plus two E7 units, far above rounding.
        #[allow(clippy::cast_possible_truncation)]
        let band_e7 = (angle_e7 * (1.0 + 1e-6)).ceil() as i64 + 2;
        // At most 1.8e9 + 1 bands: a band is at least one E7 unit high.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let bands = (MERIDIAN_E7 / band_e7 + 1) as u32;
        let group = bands.div_ceil(GROUPS);
        let sin_half = (d_m / (2.0 * EARTH_RADIUS_M)).sin();
        let cells: Vec<u32> = (0..bands.div_ceil(group))
            .map(|g| {
                let south = i64::from(g * group) * band_e7 - 900_000_000;
                let north = (i64::from((g + 1) * group) * band_e7).min(MERIDIAN_E7) - 900_000_000;
                #[allow(clippy::cast_precision_loss)]
                let edge = (south.abs().max(north.abs()) as f64 / 1e7).min(90.0);
                cells_per_band(sin_half, edge)
            })
            .collect();
        let max_cells = cells.iter().copied().max().unwrap_or(1);
        Self { band_e7, bands, group, cells, cell_bits: bits(u64::from(max_cells)), band_bits: bits(u64::from(bands)) }
    }

    /// The band of a latitude.
    pub fn band(&self, lat_e7: i32) -> u32 {
        // 0..bands: a valid latitude over a positive height.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let band = ((i64::from(lat_e7.clamp(-900_000_000, 900_000_000)) + 900_000_000) / self.band_e7) as u32;
        band
    }

    /// Number of bands.
    pub fn band_count(&self) -> u32 {
        self.bands
    }

    /// The cell count of band `b`.
    pub fn cells(&self, b: u32) -> u32 {
        self.cells[(b / self.group) as usize]
    }

    /// The cell of a longitude in band `b`.
    pub fn cell(&self, b: u32, lon_e7: i32) -> u32 {
        let cells = self.cells(b);
        let lon = i64::from(lon_e7.clamp(-1_800_000_000, 1_800_000_000)) + 1_800_000_000;
        // 0..=cells, a u32 (division by a constant: a multiply).
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let cell = (lon * i64::from(cells) / CIRCLE_E7) as u32;
        // +180° is −180°.
        if cell == cells { 0 } else { cell }
    }

    /// The band and cell of a coordinate.
    pub fn locate(&self, coord: Coord) -> (u32, u32) {
        let b = self.band(coord.lat_e7);
        (b, self.cell(b, coord.lon_e7))
    }

    /// The cells of band `to` (`from` − 1, `from` or `from` + 1) that can hold a point
    /// within D of a point in cell `cell` of band `from`.
    pub fn reach(&self, from: u32, cell: u32, to: u32) -> CellRange {
        let (from_cells, to_cells) = (self.cells(from), self.cells(to));
        if from_cells == 1 || to_cells == 1 {
            return CellRange::all(to_cells);
        }
        if from_cells == to_cells && to_cells > 3 {
            // The common case, what the general computation below gives for equal widths:
            // the cell and its two neighbours.
            let (west, east) = (cell.checked_sub(1).unwrap_or(to_cells - 1), cell + 1);
            return if cell == 0 {
                CellRange { segments: [(west, west), (0, 1)], len: 2 }
            } else if east == to_cells {
                CellRange { segments: [(west, cell), (0, 0)], len: 2 }
            } else {
                CellRange { segments: [(west, east), (0, 0)], len: 1 }
            };
        }
        #[allow(clippy::cast_precision_loss)]
        let circle = CIRCLE_E7 as f64;
        let (nf, nt) = (f64::from(from_cells), f64::from(to_cells));
        // Each band's cell width bounds its own Δλ; the pair's bound is the wider one.
        let dlon = (circle / nf).max(circle / nt);
        let west = f64::from(cell) * circle / nf - dlon;
        let east = f64::from(cell + 1) * circle / nf + dlon;
        // A partner lies strictly inside (west, east): the bounds carry a margin.
        #[allow(clippy::cast_possible_truncation)]
        let (lo, hi) = ((west * nt / circle).floor() as i64, (east * nt / circle).ceil() as i64 - 1);
        let n = i64::from(to_cells);
        if hi - lo + 1 >= n {
            return CellRange::all(to_cells);
        }
        let start = lo.rem_euclid(n);
        let end = start + (hi - lo);
        // In 0..n: rem_euclid, and `end` is below 2n.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        if end < n {
            CellRange { segments: [(start as u32, end as u32), (0, 0)], len: 1 }
        } else {
            CellRange { segments: [(start as u32, (n - 1) as u32), (0, (end - n) as u32)], len: 2 }
        }
    }
}

/// Cells per band for a band whose polar edge is `edge_deg` from the equator:
/// as many as fit while each is at least as wide as the largest longitude
/// difference (with margin) of two points within D there; 1 when that is
/// more than a third of the circle.
fn cells_per_band(sin_half: f64, edge_deg: f64) -> u32 {
    let cos = edge_deg.to_radians().cos();
    let ratio = if cos > 0.0 { sin_half / cos } else { f64::INFINITY };
    if ratio >= 0.999 {
        return 1;
    }
    let dlon_e7 = (2.0 * ratio.asin()).to_degrees() * 1e7 * (1.0 + 1e-6) + 2.0;
    #[allow(clippy::cast_precision_loss)]
    let fit = (CIRCLE_E7 as f64 / dlon_e7).floor();
    // Below 3.6e9 / 2: a u32.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    if fit >= 3.0 { fit as u32 } else { 1 }
}

/// Bits needed to write numbers below `n`.
pub(crate) fn bits(n: u64) -> u32 {
    64 - n.saturating_sub(1).leading_zeros()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distance::haversine_m;

    fn c(lat: f64, lon: f64) -> Coord {
        Coord::from_degrees(lat, lon).unwrap()
    }

    /// Whether the grid would look at `b`'s cell from `a`'s.
    fn reached(grid: &Grid, a: Coord, b: Coord) -> bool {
        let ((ba, ca), (bb, cb)) = (grid.locate(a), grid.locate(b));
        ba.abs_diff(bb) <= 1 && grid.reach(ba, ca, bb).iter().any(|(lo, hi)| (lo..=hi).contains(&cb))
    }

    #[test]
    fn cells_widen_towards_the_poles() {
        let grid = Grid::new(25.0);
        let equator = grid.cells(grid.band(0));
        let sixty = grid.cells(grid.band(600_000_000));
        assert!(equator > 1_500_000 && equator < 1_700_000, "{equator}");
        assert!((f64::from(equator) / f64::from(sixty) - 2.0).abs() < 0.01, "{equator} {sixty}");
        assert_eq!(grid.cells(grid.band(900_000_000)), 1);
        assert_eq!(grid.cells(grid.band(-900_000_000)), 1);
        assert_eq!(bits(1), 0);
        assert_eq!(bits(2), 1);
        assert_eq!(bits(1 << 20), 20);
        assert_eq!(bits((1 << 20) + 1), 21);
    }

    #[test]
    fn neighbours_within_d_are_always_reached() {
        let grid = Grid::new(25.0);
        // Pairs just under 25 m apart at awkward places, both ways round.
        let pairs = [
            (c(0.0, 179.999_9), c(0.0, -179.999_9)),
            (c(45.0, 179.999_99), c(45.000_1, -179.999_9)),
            (c(39.9, 116.999_9), c(39.9, 117.000_1)),
            (c(85.000_1, 10.0), c(84.999_9, 10.000_2)),
            (c(89.999_9, 0.0), c(89.999_9, 180.0)),
            (c(-89.999_9, 45.0), c(-89.999_95, -135.0)),
        ];
        for (a, b) in pairs {
            let d = haversine_m(a, b);
            assert!(d <= 25.0, "{a:?} {b:?} {d}");
            assert!(reached(&grid, a, b) && reached(&grid, b, a), "{a:?} {b:?} {d}");
        }
    }

    #[test]
    fn equal_widths_reach_the_cell_and_its_two_neighbours_around_the_circle() {
        let grid = Grid::new(25.0);
        let b = grid.band(400_000_000);
        let n = grid.cells(b);
        let cells = |cell| -> Vec<u32> { grid.reach(b, cell, b).iter().flat_map(|(lo, hi)| lo..=hi).collect() };
        assert_eq!(cells(0), vec![n - 1, 0, 1]);
        assert_eq!(cells(n / 2), vec![n / 2 - 1, n / 2, n / 2 + 1]);
        assert_eq!(cells(n - 1), vec![n - 2, n - 1, 0]);
    }

    #[test]
    fn neighbours_across_a_group_boundary_are_reached() {
        // Where the cell count changes between two bands, the general range is used.
        let grid = Grid::new(25.0);
        for g in [2000u32, 3000, 3500, 4000, 4050] {
            let boundary_e7 = i64::from(g * grid.group) * grid.band_e7 - 900_000_000;
            let (south, north) =
                (grid.band(i32::try_from(boundary_e7 - 1).unwrap()), grid.band(i32::try_from(boundary_e7).unwrap()));
            assert_ne!(grid.cells(south), grid.cells(north), "group {g}");
            #[allow(clippy::cast_precision_loss)]
            let lat = boundary_e7 as f64 / 1e7;
            for lon in [-179.999_99, -37.123_45, 0.000_01, 179.999_99] {
                for (dlat, dlon) in [(0.000_05, 0.0), (0.000_05, 0.000_1), (0.000_1, -0.000_2)] {
                    let (a, b) = (c(lat - dlat, lon), c(lat + dlat, (lon + dlon + 180.0).rem_euclid(360.0) - 180.0));
                    if haversine_m(a, b) <= 25.0 {
                        assert!(reached(&grid, a, b) && reached(&grid, b, a), "{a:?} {b:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn a_wrapping_range_has_two_runs() {
        let grid = Grid::new(25.0);
        let b = grid.band(0);
        let last = grid.cells(b) - 1;
        let range = grid.reach(b, 0, b);
        assert_eq!(range.len, 2);
        assert_eq!(range.segments, [(last, last), (0, 1)]);
    }
}
