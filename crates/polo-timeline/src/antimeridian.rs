//! Tracks that cross the antimeridian (±180° longitude).
//!
//! A track from Fiji's 179.9°E to 179.9°W moves 22 km, but drawn naively in
//! longitude it is a line 359.8° long that wraps the globe. Two remedies,
//! for two kinds of consumer:
//!
//! * [`unwrap_longitudes`] makes consecutive longitudes differ by at most
//!   180°, letting them run past ±180 (180.1, 180.2, …). Geometry done on the
//!   unwrapped values (simplification, tile traversal) sees the short way,
//!   and web maps that draw world copies (MapLibre, Leaflet) render it as is.
//! * [`split_at_antimeridian`] cuts the line into pieces within [-180, 180],
//!   inserting the crossing point on both edges, as GeoJSON (RFC 7946
//!   §3.1.9) asks of a line that crosses the antimeridian.

/// Longitudes with every step taken the short way round: the first is kept,
/// each next one is shifted by a multiple of 360° to lie within 180° of its
/// predecessor. A step of exactly 180° is kept as given.
#[must_use]
pub fn unwrap_longitudes(longitudes: impl IntoIterator<Item = f64>) -> Vec<f64> {
    let mut out: Vec<f64> = Vec::new();
    for lon in longitudes {
        let next = match out.last() {
            Some(&previous) => previous + wrap_step(lon - previous),
            None => lon,
        };
        out.push(next);
    }
    out
}

/// A longitude difference brought into [-180, 180].
fn wrap_step(step: f64) -> f64 {
    let wrapped = (step + 180.0).rem_euclid(360.0) - 180.0;
    // Keep an exact +180 step as +180 (rem_euclid maps it to -180).
    if wrapped == -180.0 && step > 0.0 { 180.0 } else { wrapped }
}

/// Splits a `[lon, lat]` polyline (longitudes within [-180, 180]) where it
/// crosses the antimeridian. Each crossing ends a piece at ±180° and starts
/// the next at ∓180°, at the latitude interpolated linearly in longitude.
///
/// ```
/// use polo_timeline::antimeridian::split_at_antimeridian;
/// let pieces = split_at_antimeridian(&[[179.0, -16.0], [-179.0, -17.0]]);
/// assert_eq!(pieces, vec![vec![[179.0, -16.0], [180.0, -16.5]], vec![[-180.0, -16.5], [-179.0, -17.0]]]);
/// ```
#[must_use]
pub fn split_at_antimeridian(line: &[[f64; 2]]) -> Vec<Vec<[f64; 2]>> {
    let mut pieces = Vec::new();
    let Some(&first) = line.first() else {
        return pieces;
    };
    let mut current = vec![first];
    for pair in line.windows(2) {
        let ([lon_a, lat_a], [lon_b, lat_b]) = (pair[0], pair[1]);
        if (lon_b - lon_a).abs() > 180.0 {
            let edge = if lon_a > lon_b { 180.0 } else { -180.0 };
            let lon_b_unwrapped = lon_b + 2.0 * edge;
            let t = (edge - lon_a) / (lon_b_unwrapped - lon_a);
            let lat = lat_a + t * (lat_b - lat_a);
            current.push([edge, lat]);
            pieces.push(std::mem::replace(&mut current, vec![[-edge, lat]]));
        }
        current.push([lon_b, lat_b]);
    }
    pieces.push(current);
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unwrapping_takes_the_short_way_both_directions() {
        assert_eq!(unwrap_longitudes([179.0, -179.0, -178.0]), [179.0, 181.0, 182.0]);
        assert_eq!(unwrap_longitudes([-179.5, 179.5, 178.0]), [-179.5, -180.5, -182.0]);
        assert_eq!(unwrap_longitudes([10.0, 20.0, 5.0]), [10.0, 20.0, 5.0]);
        assert!(unwrap_longitudes([]).is_empty());
    }

    #[test]
    fn several_crossings_keep_every_step_short() {
        let lons = [170.0, -170.0, 175.0, -175.0, 160.0];
        let unwrapped = unwrap_longitudes(lons);
        assert!(unwrapped.windows(2).all(|w| (w[1] - w[0]).abs() <= 180.0), "{unwrapped:?}");
        for (raw, unwrapped) in lons.iter().zip(&unwrapped) {
            assert!(((raw - unwrapped) / 360.0).fract().abs() < 1e-12);
        }
    }

    #[test]
    fn splitting_westwards_and_back() {
        let line = [[-179.0, 10.0], [179.0, 12.0], [178.0, 12.0], [-178.0, 14.0]];
        let pieces = split_at_antimeridian(&line);
        assert_eq!(pieces.len(), 3);
        assert_eq!(pieces[0], [[-179.0, 10.0], [-180.0, 11.0]]);
        assert_eq!(pieces[1], [[180.0, 11.0], [179.0, 12.0], [178.0, 12.0], [180.0, 13.0]]);
        assert_eq!(pieces[2], [[-180.0, 13.0], [-178.0, 14.0]]);
        for piece in &pieces {
            assert!(piece.windows(2).all(|w| (w[1][0] - w[0][0]).abs() <= 180.0));
        }
    }

    #[test]
    fn lines_that_do_not_cross_are_one_piece() {
        let line = [[10.0, 1.0], [12.0, 2.0]];
        assert_eq!(split_at_antimeridian(&line), [line.to_vec()]);
        assert!(split_at_antimeridian(&[]).is_empty());
        assert_eq!(split_at_antimeridian(&[[1.0, 2.0]]), [vec![[1.0, 2.0]]]);
    }
}
