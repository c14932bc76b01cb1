//! A device's simplified tracks of one UTC day, one per level of detail,
//! and how they are stored.
//!
//! **Levels.** Level 0 keeps (nearly) every point, for a day or a week at
//! street zoom; each coarser level is Douglas–Peucker ([`simplify_for_zoom`],
//! which keeps indices, so every kept point keeps its own timestamp) with a
//! tolerance of half a pixel at a coarser web-mercator zoom
//! ([`LEVEL_ZOOMS`]): what the level drops is invisible at that zoom. The
//! zooms are chosen so a ten-year history of a phone sampling every few
//! seconds to minutes (≈ 1 400 points a day, 5 million in all) fits an
//! overview budget of ~50 000 points at the coarsest level while level 0
//! still draws a day point for point; `polo-bench map` prints the measured
//! points per level (see `docs/architecture.md`).
//!
//! **Gaps.** A track is cut where the recording has a gap (more than
//! [`GAP_MS`], the stay detection's gap threshold) *and* the position jumped
//! by more than the level's tolerance, so no line is ever drawn across a gap
//! where the device moved unseen. A gap at a standstill (a phone dozing at
//! home) joins up: at that level the connection is invisible. Segments
//! never span two days in storage; [`crate::map::overview`] joins a day's
//! last segment to the next day's first by the same rule.
//!
//! **Antimeridian.** Simplification works on unwrapped longitudes, so a
//! track across ±180° is simplified as the short line it is; the stored
//! points keep their normal longitudes and the overview unwraps each
//! segment for drawing.
//!
//! **Blocks.** A day's track of one level is stored as [`TrackBlock`]s of
//! a bounded number of points ([`super::blocks`]), so a live phone's step
//! rewrites the last block, not the day.
//!
//! **Encoding.** A block is a version byte, a byte saying whether its first
//! segment goes on from the previous block (then that segment's first point
//! repeats the previous block's last one), the segment count, and per
//! segment its point count and the points as zigzag varint deltas of time
//! (ms) and E7 latitude and longitude from the previous point (the state
//! runs on across segments and starts at zero). A typical point takes 6 to
//! 9 bytes.

use polo_domain::{Coord, Timestamp};
use polo_store::DerivedKind;
use polo_timeline::simplify::{simplify_for_zoom, tolerance_for_zoom};
use polo_timeline::tiles::mercator;

use super::codec::{Reader, Writer};
use crate::DerivedResult;
use crate::kinds::MAP_LEVELS;

/// A recording gap: consecutive points further apart in time than this
/// (15 minutes, the stay detection's gap threshold) are not joined by a
/// line unless they are at the same place at the level's resolution.
pub const GAP_MS: i64 = 15 * 60_000;

/// Half a pixel: what Douglas–Peucker may move a line by, at the level's zoom.
pub const TOLERANCE_PX: f64 = 0.5;

/// The web-mercator zoom each level is simplified for (half a pixel of
/// tolerance there): level 0 ≈ 0.3 m, level 1 ≈ 19 m, level 2 ≈ 76 m,
/// level 3 ≈ 611 m at the equator (times cos(latitude) elsewhere).
///
/// Measured on the synthetic phone tracks (≈ 650 points a day, four
/// cities): level 0 keeps ~97 %, level 1 165–270 points a day, level 2
/// 7–29, level 3 3–5, with about one segment a day from level 2 on. With the
/// default budget of 50 000 points that draws a month of two devices at
/// level 0, a quarter at level 1, a year at level 2 and a decade at level 3.
pub const LEVEL_ZOOMS: [u8; MAP_LEVELS as usize] = [18, 12, 10, 7];

/// One point of a map track.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapPoint {
    /// When, UTC.
    pub time: Timestamp,
    /// Where.
    pub coord: Coord,
}

/// A level's tolerance in web-mercator world units (the world is 1 × 1).
#[must_use]
pub fn level_tolerance(level: usize) -> f64 {
    tolerance_for_zoom(LEVEL_ZOOMS[level], TOLERANCE_PX)
}

/// The distance between two positions in world units, the short way round
/// the antimeridian.
#[must_use]
pub fn world_distance(a: Coord, b: Coord) -> f64 {
    let mut step = b.lon() - a.lon();
    if step > 180.0 {
        step -= 360.0;
    } else if step < -180.0 {
        step += 360.0;
    }
    let [ax, ay] = mercator(a.lon(), a.lat());
    let [bx, by] = mercator(a.lon() + step, b.lat());
    (bx - ax).hypot(by - ay)
}

/// Whether a line may join `a` to the next point `b` at a level with this
/// tolerance: no recording gap between them, or no visible jump.
#[must_use]
pub fn connected(a: &MapPoint, b: &MapPoint, tolerance: f64) -> bool {
    b.time.0 - a.time.0 <= GAP_MS || world_distance(a.coord, b.coord) <= tolerance
}

/// Splits time-sorted points into maximal runs whose neighbours are
/// [`connected`] at `tolerance`.
pub(crate) fn pieces(points: &[MapPoint], tolerance: f64) -> impl Iterator<Item = &[MapPoint]> {
    let mut rest = points;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = rest.windows(2).position(|w| !connected(&w[0], &w[1], tolerance)).map_or(rest.len(), |i| i + 1);
        let (piece, tail) = rest.split_at(end);
        rest = tail;
        Some(piece)
    })
}

/// The segments of one level for one day's time-sorted points.
///
/// # Errors
/// Never for the levels defined here (their zooms are valid).
pub fn build_level(points: &[MapPoint], level: usize) -> DerivedResult<Vec<Vec<MapPoint>>> {
    let tolerance = level_tolerance(level);
    let mut segments = Vec::new();
    for piece in pieces(points, tolerance) {
        let coords: Vec<Coord> = piece.iter().map(|p| p.coord).collect();
        let kept = simplify_for_zoom(&coords, LEVEL_ZOOMS[level], TOLERANCE_PX)?;
        segments.push(kept.into_iter().map(|index| piece[index]).collect());
    }
    Ok(segments)
}

/// A stored piece of one level's track of one day: whole segments, except
/// that the first may go on from the previous block's last segment.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrackBlock {
    /// The first segment goes on from the previous block's last one, whose
    /// last point it repeats as its own first (so a line can be drawn, or
    /// clipped to a view, from this block alone).
    pub continues: bool,
    /// The segments, in time order.
    pub segments: Vec<Vec<MapPoint>>,
}

impl TrackBlock {
    /// The points stored, the repeated one included.
    #[must_use]
    pub fn stored_points(&self) -> usize {
        self.segments.iter().map(Vec::len).sum()
    }

    /// What the block adds to its day's count: the repeated point and the
    /// continued segment were counted with the previous block.
    #[must_use]
    pub fn count(&self) -> LevelCount {
        let repeated = u64::from(self.continues && !self.segments.is_empty());
        LevelCount { points: self.stored_points() as u64 - repeated, segments: self.segments.len() as u64 - repeated }
    }
}

const TRACK_VERSION: u8 = 2;

/// Encodes one block of a day's track.
#[must_use]
pub fn encode_track(block: &TrackBlock) -> Vec<u8> {
    let segments = &block.segments;
    let mut writer = Writer::with_capacity(3 + segments.len() * 2 + block.stored_points() * 8);
    writer.byte(TRACK_VERSION);
    writer.byte(u8::from(block.continues));
    writer.usize(segments.len());
    let (mut time, mut lat, mut lon) = (0i64, 0i64, 0i64);
    for segment in segments {
        writer.usize(segment.len());
        for point in segment {
            writer.i64(point.time.0 - time);
            writer.i64(i64::from(point.coord.lat_e7) - lat);
            writer.i64(i64::from(point.coord.lon_e7) - lon);
            (time, lat, lon) = (point.time.0, i64::from(point.coord.lat_e7), i64::from(point.coord.lon_e7));
        }
    }
    writer.finish()
}

/// Decodes [`encode_track`]'s bytes; `kind` and `key` name the row in errors.
///
/// # Errors
/// [`crate::DerivedError::Corrupt`] for a wrong version, truncated or
/// trailing bytes, an empty segment, times that do not increase or
/// coordinates outside WGS 84.
pub fn decode_track(bytes: &[u8], kind: DerivedKind, key: i64) -> DerivedResult<TrackBlock> {
    let mut reader = Reader::new(bytes, kind, key);
    let version = reader.byte()?;
    if version != TRACK_VERSION {
        return Err(reader.corrupt(format!("unknown track version {version}")));
    }
    let continues = match reader.byte()? {
        0 => false,
        1 => true,
        other => return Err(reader.corrupt(format!("continuation flag {other}"))),
    };
    // A segment takes at least four bytes: its count and one point.
    let count = reader.count(4)?;
    let mut segments = Vec::with_capacity(count);
    let (mut time, mut lat, mut lon) = (0i64, 0i64, 0i64);
    let mut first = true;
    for _ in 0..count {
        let n = reader.count(3)?;
        if n == 0 {
            return Err(reader.corrupt("empty segment"));
        }
        let mut segment = Vec::with_capacity(n);
        for _ in 0..n {
            let step = reader.i64()?;
            if !first && step <= 0 {
                return Err(reader.corrupt(format!("time does not increase (step {step} ms)")));
            }
            first = false;
            time = time.checked_add(step).ok_or_else(|| reader.corrupt("time overflows"))?;
            lat = lat.checked_add(reader.i64()?).ok_or_else(|| reader.corrupt("latitude overflows"))?;
            lon = lon.checked_add(reader.i64()?).ok_or_else(|| reader.corrupt("longitude overflows"))?;
            let (Ok(lat_e7), Ok(lon_e7)) = (i32::try_from(lat), i32::try_from(lon)) else {
                return Err(reader.corrupt(format!("coordinate {lat}/{lon} out of range")));
            };
            if lat_e7.abs() > 900_000_000 || lon_e7.abs() > 1_800_000_000 {
                return Err(reader.corrupt(format!("coordinate {lat}/{lon} out of range")));
            }
            segment.push(MapPoint { time: Timestamp(time), coord: Coord { lat_e7, lon_e7 } });
        }
        segments.push(segment);
    }
    reader.finish()?;
    Ok(TrackBlock { continues, segments })
}

/// How many points and segments one level of a day holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LevelCount {
    /// Points kept.
    pub points: u64,
    /// Segments (runs joined by lines).
    pub segments: u64,
}

impl std::ops::AddAssign for LevelCount {
    fn add_assign(&mut self, other: Self) {
        self.points += other.points;
        self.segments += other.segments;
    }
}

/// A device's `MAP_COUNTS` row for one day: enough to choose a level for
/// any range without reading a track.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DayCounts {
    /// Points stored that day.
    pub points: u64,
    /// Per level, what its track holds.
    pub levels: [LevelCount; MAP_LEVELS as usize],
}

const COUNTS_VERSION: u8 = 1;

/// Encodes a day's counts.
#[must_use]
pub fn encode_counts(counts: &DayCounts) -> Vec<u8> {
    let mut writer = Writer::with_capacity(24);
    writer.byte(COUNTS_VERSION);
    writer.u64(counts.points);
    writer.usize(counts.levels.len());
    for level in &counts.levels {
        writer.u64(level.points);
        writer.u64(level.segments);
    }
    writer.finish()
}

/// Decodes [`encode_counts`]'s bytes.
///
/// # Errors
/// [`crate::DerivedError::Corrupt`] for damaged bytes or a row written for
/// a different number of levels (recompute it).
pub fn decode_counts(bytes: &[u8], kind: DerivedKind, key: i64) -> DerivedResult<DayCounts> {
    let mut reader = Reader::new(bytes, kind, key);
    let version = reader.byte()?;
    if version != COUNTS_VERSION {
        return Err(reader.corrupt(format!("unknown counts version {version}")));
    }
    let mut counts = DayCounts { points: reader.u64()?, ..DayCounts::default() };
    let levels = reader.u64()?;
    if levels != u64::from(MAP_LEVELS) {
        return Err(reader.corrupt(format!("{levels} levels, expected {MAP_LEVELS}")));
    }
    for level in &mut counts.levels {
        *level = LevelCount { points: reader.u64()?, segments: reader.u64()? };
    }
    reader.finish()?;
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use polo_timeline::synthetic::SyntheticTrack;

    use super::*;
    use crate::DerivedError;
    use crate::kinds::map_track;

    fn p(ms: i64, lat: f64, lon: f64) -> MapPoint {
        MapPoint { time: Timestamp(ms), coord: Coord::from_degrees(lat, lon).unwrap() }
    }

    fn synthetic_day(seed: u64) -> Vec<MapPoint> {
        let track = SyntheticTrack::new(seed).days(1).points;
        let mut points: Vec<MapPoint> = track.iter().map(|t| MapPoint { time: t.time, coord: t.coord }).collect();
        // The store keeps one point per instant (the first wins).
        points.dedup_by_key(|p| p.time);
        points
    }

    #[test]
    fn tracks_round_trip_exactly() {
        let points = synthetic_day(5);
        for level in 0..usize::from(MAP_LEVELS) {
            for continues in [false, true] {
                let block = TrackBlock { continues, segments: build_level(&points, level).unwrap() };
                let bytes = encode_track(&block);
                assert_eq!(decode_track(&bytes, map_track(0), 1).unwrap(), block);
                let kept = block.stored_points();
                assert!(bytes.len() < 12 * kept + 8, "level {level}: {} bytes for {kept} points", bytes.len());
            }
        }
        assert_eq!(
            decode_track(&encode_track(&TrackBlock::default()), map_track(0), 1).unwrap(),
            TrackBlock::default()
        );
        // Extremes of the coordinate range and of time survive.
        let extremes = TrackBlock {
            continues: false,
            segments: vec![vec![p(-5_000, -90.0, -180.0), p(i64::from(i32::MAX) * 1000, 90.0, 180.0)]],
        };
        assert_eq!(decode_track(&encode_track(&extremes), map_track(0), 1).unwrap(), extremes);
    }

    #[test]
    fn a_continuing_block_counts_neither_its_repeated_point_nor_its_first_segment() {
        let segments = vec![vec![p(0, 1.0, 1.0), p(1_000, 1.0, 1.001)], vec![p(3_600_000, 2.0, 2.0)]];
        let alone = TrackBlock { continues: false, segments: segments.clone() };
        assert_eq!(alone.count(), LevelCount { points: 3, segments: 2 });
        let continuing = TrackBlock { continues: true, segments };
        assert_eq!(continuing.count(), LevelCount { points: 2, segments: 1 });
        assert_eq!(continuing.stored_points(), 3);
    }

    #[test]
    fn corrupt_tracks_are_errors() {
        let good = encode_track(&TrackBlock { continues: false, segments: build_level(&synthetic_day(6), 1).unwrap() });
        let corrupt = |bytes: &[u8]| {
            let error = decode_track(bytes, map_track(1), 19_786).unwrap_err();
            assert!(matches!(error, DerivedError::Corrupt { kind: 16, key: 19_786, .. }), "{error}");
        };
        corrupt(&[]);
        corrupt(&[1, 0, 0]);
        corrupt(&[2, 2, 0]);
        corrupt(&good[..good.len() - 1]);
        corrupt(&[good.as_slice(), &[0]].concat());
        // One segment of zero points; a huge segment count; time going backwards.
        corrupt(&[2, 0, 1, 0]);
        corrupt(&[2, 0, 0xff, 0xff, 0xff, 0x0f]);
        let mut backwards = Writer::default();
        backwards.byte(2);
        backwards.byte(0);
        for v in [1u64, 2] {
            backwards.u64(v);
        }
        for v in [10i64, 1, 1, -5, 1, 1] {
            backwards.i64(v);
        }
        corrupt(&backwards.finish());
        // A latitude beyond the pole.
        let mut beyond = Writer::default();
        beyond.byte(2);
        beyond.byte(0);
        beyond.u64(1);
        beyond.u64(1);
        beyond.i64(0);
        beyond.i64(900_000_001);
        beyond.i64(0);
        corrupt(&beyond.finish());
    }

    #[test]
    fn counts_round_trip_and_check_the_level_layout() {
        let mut counts = DayCounts { points: 1_234, ..DayCounts::default() };
        for (i, level) in counts.levels.iter_mut().enumerate() {
            *level = LevelCount { points: 1_000 >> i, segments: 9 - i as u64 };
        }
        let bytes = encode_counts(&counts);
        assert_eq!(decode_counts(&bytes, DerivedKind(10), 3).unwrap(), counts);
        let mut other_layout = bytes.clone();
        other_layout[3] = 5;
        assert!(matches!(decode_counts(&other_layout, DerivedKind(10), 3), Err(DerivedError::Corrupt { .. })));
        assert!(decode_counts(&bytes[..bytes.len() - 1], DerivedKind(10), 3).is_err());
    }

    #[test]
    fn coarser_levels_keep_fewer_points_and_every_timestamp_is_real() {
        let points = synthetic_day(11);
        let counts: Vec<usize> = (0..usize::from(MAP_LEVELS))
            .map(|level| build_level(&points, level).unwrap().iter().map(Vec::len).sum())
            .collect();
        assert!(counts.windows(2).all(|w| w[0] >= w[1]), "{counts:?}");
        assert!(
            counts[0] * 100 >= points.len() * 95,
            "level 0 keeps nearly every point: {counts:?} of {}",
            points.len()
        );
        assert!(counts[3] * 20 < points.len(), "the coarsest level keeps under 5%: {counts:?} of {}", points.len());
        for level in 0..usize::from(MAP_LEVELS) {
            for segment in build_level(&points, level).unwrap() {
                for point in segment {
                    assert!(points.contains(&point), "level {level} invented {point:?}");
                }
            }
        }
    }

    #[test]
    fn gaps_split_where_the_track_moved_and_join_where_it_did_not() {
        let minute = 60_000;
        let points = [
            p(0, 47.0, 8.0),
            p(minute, 47.001, 8.0),
            // 20 minutes without a fix, then 5 km further north: a cut at every level.
            p(21 * minute, 47.05, 8.0),
            p(22 * minute, 47.0501, 8.001),
            // Exactly 15 minutes is not a gap.
            p(37 * minute, 47.06, 8.0),
            // 40 minutes at the same spot (a dozing phone): joined, at every level.
            p(77 * minute, 47.06, 8.0),
            // 30 minutes and 40 m away: cut at levels 0 and 1, invisible (joined) at the coarse ones.
            p(107 * minute, 47.060_36, 8.0),
        ];
        let lengths = |level| build_level(&points, level).unwrap().iter().map(Vec::len).collect::<Vec<_>>();
        // The fix at 37 minutes coincides with the one at 77 and is simplified away.
        assert_eq!(lengths(0), [2, 3, 1]);
        assert_eq!(lengths(1), [2, 3, 1]);
        assert_eq!(build_level(&points, 2).unwrap().len(), 2);
        assert_eq!(build_level(&points, 3).unwrap().len(), 2);
        assert_eq!(build_level(&points, 3).unwrap()[1].last(), points.last(), "the last point survives");
    }

    #[test]
    fn the_antimeridian_is_one_short_line() {
        // Eastwards across 180° at 17°S, a fix every ~1 km, every 30 s.
        let points: Vec<MapPoint> = (0..=100)
            .map(|i| {
                let lon = 179.5 + f64::from(i) * 0.01;
                p(i64::from(i) * 30_000, -17.0, if lon > 180.0 { lon - 360.0 } else { lon })
            })
            .collect();
        for level in 1..usize::from(MAP_LEVELS) {
            let segments = build_level(&points, level).unwrap();
            assert_eq!(segments.len(), 1, "level {level}");
            assert_eq!(segments[0].len(), 2, "level {level}: a straight line is its two ends");
        }
        assert!(world_distance(points[0].coord, points[100].coord) < 0.01 / 360.0 * 101.0);
    }
}
