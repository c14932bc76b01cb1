//! Track simplification for map levels of detail.
//!
//! A day of 1 Hz fixes is 86 400 points; a map at zoom 10 shows it in a few
//! hundred pixels. Douglas–Peucker keeps the points that deviate from the
//! simplified line by more than a tolerance, and returns their *indices*,
//! so a caller keeps timestamps, speeds and any other per-point data of the
//! points it keeps (geo's `simplify_idx` does the same).
//!
//! The tolerance is in pixels at a zoom level: the work happens in
//! web-mercator world units, where one pixel at zoom `z` is `1 / (256·2^z)`
//! everywhere, so a tolerance of half a pixel hides exactly what the screen
//! cannot show, at every latitude. Longitudes are unwrapped first (see
//! [`crate::antimeridian`]) so a track across the antimeridian is simplified
//! as the short line it is, never as one that wraps the globe.

use polo_domain::Coord;

use crate::TimelineError;
use crate::antimeridian::unwrap_longitudes;
use crate::tiles::{MAX_ZOOM, mercator};

/// Pixels per tile side.
pub const TILE_SIZE_PX: f64 = 256.0;

/// A tolerance of `pixels` at `zoom`, in web-mercator world units.
#[must_use]
pub fn tolerance_for_zoom(zoom: u8, pixels: f64) -> f64 {
    pixels / (TILE_SIZE_PX * f64::from(1u32 << zoom.min(MAX_ZOOM)))
}

/// Douglas–Peucker on planar points: the ascending indices of the points to
/// keep, always including the first and the last. A point is kept when it is
/// farther than `tolerance` from the segment that would replace it.
///
/// Iterative, so a million-point track needs no deep recursion.
#[must_use]
pub fn douglas_peucker(points: &[[f64; 2]], tolerance: f64) -> Vec<usize> {
    let n = points.len();
    if n <= 2 {
        return (0..n).collect();
    }
    let mut keep = vec![false; n];
    keep[0] = true;
    keep[n - 1] = true;
    let mut pending = vec![(0, n - 1)];
    while let Some((first, last)) = pending.pop() {
        let mut farthest = (0.0, first);
        for index in first + 1..last {
            let distance = segment_distance(points[index], points[first], points[last]);
            if distance > farthest.0 {
                farthest = (distance, index);
            }
        }
        if farthest.0 > tolerance {
            keep[farthest.1] = true;
            pending.push((first, farthest.1));
            pending.push((farthest.1, last));
        }
    }
    keep.iter().enumerate().filter_map(|(index, &kept)| kept.then_some(index)).collect()
}

/// Euclidean distance from `p` to the segment `a`–`b`.
fn segment_distance(p: [f64; 2], a: [f64; 2], b: [f64; 2]) -> f64 {
    let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
    let length_squared = dx * dx + dy * dy;
    let t = if length_squared > 0.0 {
        (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length_squared).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let (x, y) = (a[0] + t * dx, a[1] + t * dy);
    (p[0] - x).hypot(p[1] - y)
}

/// The indices of the points of a track worth drawing at `zoom`, with a
/// tolerance of `tolerance_px` pixels (half a pixel is invisible).
///
/// ```
/// use polo_domain::Coord;
/// use polo_timeline::simplify::simplify_for_zoom;
/// // A straight road sampled every ~10 m: at zoom 12 only its ends matter.
/// let road: Vec<Coord> = (0..100).map(|i| Coord::from_degrees(47.0, 8.5 + f64::from(i) * 1e-4).unwrap()).collect();
/// assert_eq!(simplify_for_zoom(&road, 12, 0.5).unwrap(), [0, 99]);
/// ```
///
/// # Errors
/// [`TimelineError::ZoomTooDeep`] above [`MAX_ZOOM`].
pub fn simplify_for_zoom(track: &[Coord], zoom: u8, tolerance_px: f64) -> Result<Vec<usize>, TimelineError> {
    if zoom > MAX_ZOOM {
        return Err(TimelineError::ZoomTooDeep { zoom, max: MAX_ZOOM });
    }
    let longitudes = unwrap_longitudes(track.iter().map(|c| c.lon()));
    let world: Vec<[f64; 2]> = track.iter().zip(longitudes).map(|(c, lon)| mercator(lon, c.lat())).collect();
    Ok(douglas_peucker(&world, tolerance_for_zoom(zoom, tolerance_px)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(lat: f64, lon: f64) -> Coord {
        Coord::from_degrees(lat, lon).unwrap()
    }

    #[test]
    fn short_inputs_are_kept_whole() {
        assert!(douglas_peucker(&[], 1.0).is_empty());
        assert_eq!(douglas_peucker(&[[0.0, 0.0]], 1.0), [0]);
        assert_eq!(douglas_peucker(&[[0.0, 0.0], [5.0, 5.0]], 1.0), [0, 1]);
    }

    #[test]
    fn keeps_corners_and_drops_what_the_tolerance_hides() {
        let line = [[0.0, 0.0], [1.0, 0.1], [2.0, -0.1], [3.0, 5.0], [4.0, 6.0], [5.0, 7.0]];
        assert_eq!(douglas_peucker(&line, 0.5), [0, 2, 3, 5]);
        assert_eq!(douglas_peucker(&line, 0.0), [0, 1, 2, 3, 5]);
        assert_eq!(douglas_peucker(&line, 100.0), [0, 5]);
    }

    #[test]
    fn repeated_points_and_closed_loops() {
        // A loop returning to its start: the far side survives.
        let square = [[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 1.0], [0.0, 0.0]];
        assert_eq!(douglas_peucker(&square, 0.1), [0, 1, 2, 3, 4]);
        let still = [[2.0, 2.0]; 5];
        assert_eq!(douglas_peucker(&still, 0.1), [0, 4]);
    }

    #[test]
    fn deeper_zooms_keep_more() {
        let wiggly: Vec<Coord> =
            (0..2_000).map(|i| c(47.0 + 2e-4 * (f64::from(i) * 0.3).sin(), 8.5 + f64::from(i) * 5e-5)).collect();
        let kept: Vec<usize> =
            [8, 12, 16, 20].iter().map(|&z| simplify_for_zoom(&wiggly, z, 0.5).unwrap().len()).collect();
        assert!(kept.windows(2).all(|w| w[0] <= w[1]), "{kept:?}");
        assert!(kept[0] < 10 && kept[3] > 1_000, "{kept:?}");
    }

    #[test]
    fn a_track_across_the_antimeridian_is_simplified_as_the_short_line() {
        // Due east along 17°S from 179.5°E to 179.5°W, one fix every ~1 km.
        let track: Vec<Coord> = (0..=100)
            .map(|i| {
                let lon = 179.5 + f64::from(i) * 0.01;
                c(-17.0, if lon > 180.0 { lon - 360.0 } else { lon })
            })
            .collect();
        let kept = simplify_for_zoom(&track, 10, 0.5).unwrap();
        assert_eq!(kept, [0, 100], "a wrapped line would keep the points either side of ±180");
        assert!(matches!(simplify_for_zoom(&track, 40, 0.5), Err(TimelineError::ZoomTooDeep { .. })));
    }
}
