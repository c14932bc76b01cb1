//! Web-mercator tiles: heatmaps and fog of war.
//!
//! Map clients ask for data per z/x/y tile of the web-mercator grid
//! (EPSG:3857, 256-pixel tiles, y growing southwards, latitude clamped at
//! ±85.0511°). Both aggregations here count per cell of that grid at one
//! zoom level: a *heatmap* counts the points in each cell; *fog of war*
//! counts how many times a track passed through each cell, walking every
//! cell each segment crosses, so a motorway at 130 km/h sampled every
//! 30 s still leaves an unbroken trail. Segments are walked the short way
//! round, so a track across the antimeridian lights cells at both map edges
//! and none in between. Results are sorted by (x, y).

use polo_domain::Coord;
use serde::{Deserialize, Serialize};

use crate::TimelineError;
use crate::antimeridian::unwrap_longitudes;

/// The deepest zoom level supported (cell numbers stay within `u32`).
pub const MAX_ZOOM: u8 = 30;

/// The latitude at which the web-mercator square ends.
pub const MAX_LATITUDE: f64 = 85.051_128_779_806_59;

/// One cell of the tile grid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TileId {
    /// Zoom level.
    pub z: u8,
    /// Column, 0 at 180°W.
    pub x: u32,
    /// Row, 0 at the north edge.
    pub y: u32,
}

/// Web-mercator position in world units: x and y in [0, 1) for longitudes
/// in [-180, 180) (longitudes outside give x outside, for unwrapped tracks).
#[must_use]
pub fn mercator(lon: f64, lat: f64) -> [f64; 2] {
    let lat = lat.clamp(-MAX_LATITUDE, MAX_LATITUDE).to_radians();
    let y = 0.5 - (lat.tan() + 1.0 / lat.cos()).ln() / (2.0 * std::f64::consts::PI);
    [(lon + 180.0) / 360.0, y]
}

fn check_zoom(zoom: u8) -> Result<f64, TimelineError> {
    if zoom > MAX_ZOOM {
        return Err(TimelineError::ZoomTooDeep { zoom, max: MAX_ZOOM });
    }
    Ok(f64::from(1u32 << zoom))
}

/// The cell holding world position `[x, y]` at a zoom with `cells` cells per side.
fn cell(zoom: u8, cells: f64, [x, y]: [f64; 2]) -> TileId {
    let column = (x * cells).floor().rem_euclid(cells);
    let row = (y * cells).floor().clamp(0.0, cells - 1.0);
    // Both reduced into 0..2^30 above.
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
    TileId { z: zoom, x: column as u32, y: row as u32 }
}

/// The tile that contains `coord` at `zoom`.
///
/// # Errors
/// [`TimelineError::ZoomTooDeep`] above [`MAX_ZOOM`].
pub fn tile_of(coord: Coord, zoom: u8) -> Result<TileId, TimelineError> {
    Ok(cell(zoom, check_zoom(zoom)?, mercator(coord.lon(), coord.lat())))
}

/// Counts runs of equal cells in a list, sorted first.
fn count(mut cells: Vec<TileId>) -> Vec<(TileId, u32)> {
    cells.sort_unstable();
    let mut counts: Vec<(TileId, u32)> = Vec::new();
    for cell in cells {
        match counts.last_mut() {
            Some((last, n)) if *last == cell => *n += 1,
            _ => counts.push((cell, 1)),
        }
    }
    counts
}

/// Points per cell at `zoom`.
///
/// # Errors
/// [`TimelineError::ZoomTooDeep`] above [`MAX_ZOOM`].
pub fn heatmap(coords: impl IntoIterator<Item = Coord>, zoom: u8) -> Result<Vec<(TileId, u32)>, TimelineError> {
    let cells = check_zoom(zoom)?;
    Ok(count(coords.into_iter().map(|c| cell(zoom, cells, mercator(c.lon(), c.lat()))).collect()))
}

/// Passes of a track through each cell at `zoom`: every cell a segment
/// crosses counts once per pass, however many points fell into it. Pass one
/// leg (or one unbroken piece of track) per call, so that gaps are not drawn.
///
/// # Errors
/// [`TimelineError::ZoomTooDeep`] above [`MAX_ZOOM`].
pub fn fog_of_war(track: &[Coord], zoom: u8) -> Result<Vec<(TileId, u32)>, TimelineError> {
    let cells = check_zoom(zoom)?;
    let longitudes = unwrap_longitudes(track.iter().map(|c| c.lon()));
    let world: Vec<[f64; 2]> = track.iter().zip(longitudes).map(|(c, lon)| mercator(lon, c.lat())).collect();
    let mut visited: Vec<TileId> = Vec::new();
    let mut visit = |tile: TileId| {
        if visited.last() != Some(&tile) {
            visited.push(tile);
        }
    };
    match world.as_slice() {
        [] => {}
        [only] => visit(cell(zoom, cells, *only)),
        _ => {
            for pair in world.windows(2) {
                walk_segment(pair[0], pair[1], cells, |[x, y]| visit(cell(zoom, cells, [x / cells, y / cells])));
            }
        }
    }
    Ok(count(visited))
}

/// Calls `visit` with a point inside every grid cell the segment `a`–`b`
/// crosses, in order (Amanatides & Woo); coordinates in cell units.
fn walk_segment(a: [f64; 2], b: [f64; 2], cells: f64, mut visit: impl FnMut([f64; 2])) {
    let (start, end) = ([a[0] * cells, a[1] * cells], [b[0] * cells, b[1] * cells]);
    let mut current = [start[0].floor(), start[1].floor()];
    let last = [end[0].floor(), end[1].floor()];
    let delta = [end[0] - start[0], end[1] - start[1]];
    let step = [delta[0].signum(), delta[1].signum()];
    // Parameter t in [0, 1] along the segment at which the next vertical /
    // horizontal grid line is crossed, and the t between two such lines.
    let boundary = |axis: usize| {
        if delta[axis] == 0.0 {
            return (f64::INFINITY, f64::INFINITY);
        }
        let next_line = if step[axis] > 0.0 { current[axis] + 1.0 } else { current[axis] };
        ((next_line - start[axis]) / delta[axis], (1.0 / delta[axis]).abs())
    };
    let (mut t_next_x, t_step_x) = boundary(0);
    let (mut t_next_y, t_step_y) = boundary(1);
    visit([current[0] + 0.5, current[1] + 0.5]);
    while current != last {
        if t_next_x < t_next_y {
            current[0] += step[0];
            t_next_x += t_step_x;
        } else {
            current[1] += step[1];
            t_next_y += t_step_y;
        }
        if t_next_x.min(t_next_y) > 1.0 + 1e-9 && current != last {
            // Rounding overshot the end cell; finish there.
            current = last;
        }
        visit([current[0] + 0.5, current[1] + 0.5]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lat: f64, lon: f64) -> Coord {
        Coord::from_degrees(lat, lon).unwrap()
    }

    #[test]
    fn known_tiles() {
        // Zürich at zoom 10 is tile 536/358 (OSM slippy-map numbering).
        assert_eq!(tile_of(c(47.3769, 8.5417), 10).unwrap(), TileId { z: 10, x: 536, y: 358 });
        assert_eq!(tile_of(c(47.3769, 8.5417), 0).unwrap(), TileId { z: 0, x: 0, y: 0 });
        // Beyond the mercator square the rows clamp.
        assert_eq!(tile_of(c(89.9, 0.1), 2).unwrap().y, 0);
        assert_eq!(tile_of(c(-89.9, 0.1), 2).unwrap().y, 3);
        assert_eq!(tile_of(c(1.0, 180.0), 3).unwrap().x, 0);
        assert!(matches!(tile_of(c(1.0, 1.0), 31), Err(TimelineError::ZoomTooDeep { zoom: 31, .. })));
    }

    #[test]
    fn heatmap_counts_points_per_cell() {
        let points = [c(47.3769, 8.5417), c(47.3770, 8.5418), c(-33.87, 151.21)];
        let counts = heatmap(points, 10).unwrap();
        assert_eq!(counts.len(), 2);
        assert_eq!(counts.iter().map(|(_, n)| n).sum::<u32>(), 3);
        assert_eq!(counts[0], (TileId { z: 10, x: 536, y: 358 }, 2));
        assert!(heatmap([], 5).unwrap().is_empty());
    }

    #[test]
    fn fog_of_war_fills_every_cell_a_segment_crosses() {
        // Two fixes 4 tiles apart along a row at zoom 12: five cells, one pass each.
        let cells = fog_of_war(&[c(0.01, 0.01), c(0.01, 0.36)], 12).unwrap();
        assert_eq!(cells.len(), 5, "{cells:?}");
        assert!(cells.iter().all(|&(_, n)| n == 1));
        let xs: Vec<u32> = cells.iter().map(|(t, _)| t.x).collect();
        assert!(xs.windows(2).all(|w| w[1] == w[0] + 1));
        // A diagonal visits a connected chain of cells.
        let diagonal = fog_of_war(&[c(0.01, 0.01), c(0.30, 0.30)], 12).unwrap();
        assert!(diagonal.len() >= 4 && diagonal.len() <= 9, "{diagonal:?}");
    }

    #[test]
    fn fog_of_war_counts_passes_not_points() {
        let a = c(47.3769, 8.5417);
        let b = c(47.3770, 8.5418);
        let far = c(47.60, 8.5417);
        assert_eq!(fog_of_war(&[a, b, a, b], 10).unwrap(), [(TileId { z: 10, x: 536, y: 358 }, 1)]);
        let there_and_back = fog_of_war(&[a, far, b], 10).unwrap();
        assert!(there_and_back.contains(&(TileId { z: 10, x: 536, y: 358 }, 2)));
        assert_eq!(fog_of_war(&[a], 10).unwrap().len(), 1);
        assert!(fog_of_war(&[], 10).unwrap().is_empty());
    }

    #[test]
    fn fog_of_war_across_the_antimeridian_stays_at_the_edges() {
        let track = [c(-16.8, 179.9), c(-16.8, -179.9)];
        let cells = fog_of_war(&track, 4).unwrap();
        let xs: Vec<u32> = cells.iter().map(|(t, _)| t.x).collect();
        assert_eq!(xs, [0, 15], "a wrapped track would light all 16 columns");
    }
}
