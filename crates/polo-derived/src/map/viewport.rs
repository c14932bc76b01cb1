//! The part of the world a map shows, so that the overview can refine as
//! the user zooms in: only days whose coarse track comes near the view are
//! read, the level is chosen by the share of each day that falls inside it,
//! and lines are cut where they leave it.
//!
//! Longitudes are taken round the world: a view across the antimeridian
//! (west 170°, east 190°, or west 170°, east −170°) is one view, and a view
//! 360° wide or more takes every longitude.

use super::track::MapPoint;

/// A rectangle in degrees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Viewport {
    south: f64,
    north: f64,
    /// The western edge, normalised to `[-180, 180)`.
    west: f64,
    /// Degrees east of `west` (0 to 360; 360: every longitude).
    span: f64,
}

impl Viewport {
    /// The view from its edges; `None` unless the numbers make a rectangle
    /// (finite, latitudes within ±90 with `south < north`). An `east` below
    /// `west` goes round the antimeridian.
    #[must_use]
    pub fn new(west: f64, south: f64, east: f64, north: f64) -> Option<Self> {
        let finite = [west, south, east, north].iter().all(|v| v.is_finite());
        if !finite || !(-90.0..=90.0).contains(&south) || !(-90.0..=90.0).contains(&north) || south >= north {
            return None;
        }
        let width = east - west;
        let span = if width >= 360.0 { 360.0 } else { width.rem_euclid(360.0) };
        if span == 0.0 {
            return None;
        }
        Some(Self { south, north, west: (west + 180.0).rem_euclid(360.0) - 180.0, span })
    }

    /// The same view grown by `fraction` of its size on every side (a
    /// margin, so a line that leaves the view is drawn to beyond its edge).
    #[must_use]
    pub fn grown(self, fraction: f64) -> Self {
        let (dlat, dlon) = ((self.north - self.south) * fraction, self.span * fraction);
        let span = (self.span + 2.0 * dlon).min(360.0);
        Self {
            south: (self.south - dlat).max(-90.0),
            north: (self.north + dlat).min(90.0),
            west: (self.west - dlon + 180.0).rem_euclid(360.0) - 180.0,
            span,
        }
    }

    /// Degrees east of the western edge, round the world.
    fn east_of_west(&self, lon: f64) -> f64 {
        (lon - self.west).rem_euclid(360.0)
    }

    /// Whether a point lies inside.
    #[must_use]
    pub fn contains(&self, point: &MapPoint) -> bool {
        let (lat, lon) = (point.coord.lat(), point.coord.lon());
        lat >= self.south && lat <= self.north && (self.span >= 360.0 || self.east_of_west(lon) <= self.span)
    }

    /// The same view grown by `degrees` on every side (a track's tolerance).
    #[must_use]
    pub fn padded(self, degrees: f64) -> Self {
        Self {
            south: (self.south - degrees).max(-90.0),
            north: (self.north + degrees).min(90.0),
            west: (self.west - degrees + 180.0).rem_euclid(360.0) - 180.0,
            span: (self.span + 2.0 * degrees).min(360.0),
        }
    }

    /// The part of the straight step from `a` to `b` (in degrees, the short
    /// way round) inside the view, as the fractions `(enter, leave)` of the
    /// step; `None` when it stays outside. Liang–Barsky clipping, tried with
    /// the step's start on either side of the antimeridian.
    #[must_use]
    pub fn step_inside(&self, a: &MapPoint, b: &MapPoint) -> Option<(f64, f64)> {
        let (lat_a, lat_b) = (a.coord.lat(), b.coord.lat());
        let dlon = (b.coord.lon() - a.coord.lon() + 180.0).rem_euclid(360.0) - 180.0;
        let x = self.east_of_west(a.coord.lon());
        let starts: &[f64] = if self.span >= 360.0 { &[0.0] } else { &[x, x - 360.0] };
        let width = if self.span >= 360.0 { f64::INFINITY } else { self.span };
        let mut best: Option<(f64, f64)> = None;
        for &x0 in starts {
            let (mut enter, mut leave) = (0.0f64, 1.0f64);
            let limits = [
                (-dlon, x0),
                (dlon, width - x0),
                (lat_a - lat_b, lat_a - self.south),
                (lat_b - lat_a, self.north - lat_a),
            ];
            let mut outside = false;
            for (p, q) in limits {
                if p == 0.0 {
                    if q < 0.0 {
                        outside = true;
                        break;
                    }
                } else {
                    let r = q / p;
                    if p < 0.0 {
                        enter = enter.max(r);
                    } else {
                        leave = leave.min(r);
                    }
                }
            }
            if !outside && enter <= leave {
                best = Some(best.map_or((enter, leave), |(e, l)| (e.min(enter), l.max(leave))));
            }
        }
        best
    }

    /// Whether the straight step from `a` to `b` passes through the view.
    #[must_use]
    pub fn may_cross(&self, a: &MapPoint, b: &MapPoint) -> bool {
        self.step_inside(a, b).is_some()
    }

    /// The share of `segment` inside the view: of its length, or for a
    /// segment that does not move, 1 or 0 as its point is inside or not.
    #[must_use]
    pub fn share_inside(&self, segment: &[MapPoint]) -> f64 {
        let (mut inside, mut total) = (0.0, 0.0);
        for step in segment.windows(2) {
            let length = (step[1].coord.lat() - step[0].coord.lat())
                .hypot((step[1].coord.lon() - step[0].coord.lon() + 180.0).rem_euclid(360.0) - 180.0);
            total += length;
            if let Some((enter, leave)) = self.step_inside(&step[0], &step[1]) {
                inside += length * (leave - enter);
            }
        }
        if total > 0.0 {
            inside / total
        } else {
            f64::from(u8::from(segment.first().is_some_and(|p| self.contains(p))))
        }
    }

    /// Whether any point or step of `segment` comes into the view.
    #[must_use]
    pub fn touches(&self, segment: &[MapPoint]) -> bool {
        segment.iter().any(|p| self.contains(p)) || segment.windows(2).any(|w| self.may_cross(&w[0], &w[1]))
    }

    /// The pieces of `segment` in the view: each maximal run of steps that
    /// may cross it, so a line that leaves and comes back is two lines, each
    /// drawn to the first point beyond the edge.
    #[must_use]
    pub fn clip(&self, segment: &[MapPoint]) -> Vec<Vec<MapPoint>> {
        let mut pieces: Vec<Vec<MapPoint>> = Vec::new();
        let mut current: Vec<MapPoint> = Vec::new();
        if segment.len() == 1 {
            if self.contains(&segment[0]) {
                pieces.push(vec![segment[0]]);
            }
            return pieces;
        }
        for step in segment.windows(2) {
            if self.may_cross(&step[0], &step[1]) {
                if current.is_empty() {
                    current.push(step[0]);
                }
                current.push(step[1]);
            } else if !current.is_empty() {
                pieces.push(std::mem::take(&mut current));
            }
        }
        if !current.is_empty() {
            pieces.push(current);
        }
        pieces
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Timestamp};

    use super::*;

    fn at(lat: f64, lon: f64) -> MapPoint {
        MapPoint { time: Timestamp(0), coord: Coord::from_degrees(lat, lon).unwrap() }
    }

    #[test]
    fn only_rectangles_are_views() {
        assert!(Viewport::new(13.0, 52.0, 14.0, 53.0).is_some());
        assert!(Viewport::new(13.0, 53.0, 14.0, 52.0).is_none(), "south above north");
        assert!(Viewport::new(13.0, -91.0, 14.0, 53.0).is_none());
        assert!(Viewport::new(f64::NAN, 52.0, 14.0, 53.0).is_none());
        assert!(Viewport::new(13.0, 52.0, 13.0, 53.0).is_none(), "no width");
    }

    #[test]
    fn points_and_steps_inside_and_out() {
        let berlin = Viewport::new(13.0, 52.0, 14.0, 53.0).unwrap();
        assert!(berlin.contains(&at(52.5, 13.4)));
        assert!(!berlin.contains(&at(48.1, 11.6)));
        assert!(berlin.may_cross(&at(51.0, 13.5), &at(54.0, 13.5)), "a step straight through, no point inside");
        assert!(!berlin.may_cross(&at(48.1, 11.6), &at(48.2, 16.4)), "Munich to Vienna stays south");
        assert!(
            !berlin.may_cross(&at(51.0, 12.0), &at(54.0, 15.5))
                || berlin.share_inside(&[at(51.0, 12.0), at(54.0, 15.5)]) > 0.0
        );
        let (enter, leave) = berlin.step_inside(&at(52.5, 12.0), &at(52.5, 15.0)).unwrap();
        assert!((enter - 1.0 / 3.0).abs() < 1e-9 && (leave - 2.0 / 3.0).abs() < 1e-9, "{enter} {leave}");
        assert!((berlin.share_inside(&[at(52.5, 12.0), at(52.5, 15.0)]) - 1.0 / 3.0).abs() < 1e-9);
        assert!(!berlin.may_cross(&at(51.0, 12.5), &at(51.9, 13.5)), "passes the corner outside");
        assert!(!berlin.may_cross(&at(52.5, 2.0), &at(52.5, 5.0)), "west of the view");
    }

    #[test]
    fn views_and_steps_across_the_antimeridian() {
        // Fiji to Samoa: 177° E to 172° W, given both ways.
        for view in
            [Viewport::new(177.0, -20.0, 188.0, -10.0).unwrap(), Viewport::new(177.0, -20.0, -172.0, -10.0).unwrap()]
        {
            assert!(view.contains(&at(-17.8, 178.4)), "Suva");
            assert!(view.contains(&at(-13.8, -172.0)), "Apia");
            assert!(!view.contains(&at(-18.0, 170.0)));
            assert!(view.may_cross(&at(-15.0, 175.0), &at(-15.0, -170.0)), "a flight across the date line");
        }
        let east_of_it = Viewport::new(-175.0, -20.0, -170.0, -10.0).unwrap();
        assert!(east_of_it.may_cross(&at(-15.0, 179.0), &at(-15.0, -165.0)), "the step round the short way");
        assert!(!east_of_it.may_cross(&at(-15.0, 179.0), &at(-15.0, 170.0)));
        assert!(Viewport::new(-200.0, -10.0, 200.0, 10.0).unwrap().contains(&at(0.0, 123.0)), "wider than the world");
    }

    #[test]
    fn a_line_that_leaves_and_comes_back_is_two_pieces() {
        let view = Viewport::new(0.0, 0.0, 1.0, 1.0).unwrap();
        let line = [at(0.5, 0.2), at(0.5, 0.8), at(0.5, 3.0), at(0.5, 5.0), at(0.5, 3.0), at(0.5, 0.5)];
        let pieces = view.clip(&line);
        assert_eq!(pieces, vec![line[..3].to_vec(), line[4..].to_vec()]);
        assert!(view.clip(&[at(5.0, 5.0), at(6.0, 6.0)]).is_empty());
        assert_eq!(view.clip(&[at(0.5, 0.5)]), vec![vec![at(0.5, 0.5)]]);
        let grown = view.grown(0.5);
        assert!(grown.contains(&at(1.4, 1.4)) && !grown.contains(&at(1.6, 0.5)));
    }
}
