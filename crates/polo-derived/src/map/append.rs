//! Appending a live phone's new points to the map rows of its last day,
//! without reading that day's points again.
//!
//! A phone posting every few seconds makes the engine refresh its map every
//! couple of seconds. Rebuilding the day ([`super::refresh`]) reads all of
//! the day's points from the store and sums the month's cells again, so the
//! cost of each step grew with the day (and the month) rather than with the
//! handful of points that arrived. Here the step reads only the new points:
//!
//! * **Heat** counts points per cell, so the new points' cells are added.
//! * **Fog** counts passes. When the first new point follows the day's last
//!   point within a gap, the line between them continues the pass that
//!   reached the last point's cell, so the new piece's count of that cell is
//!   one less than it would be on its own; otherwise the new points start a
//!   pass of their own. Either way the sum is exactly what a rebuild gives.
//! * **Month rows** are sums of the days' cells, so only the blocks the new
//!   cells fall in are read and rewritten, with the new counts added.
//! * **Tracks.** A level's track is stored in blocks ([`super::blocks`]);
//!   only each level's last block of the day is read and rewritten (plus a
//!   new block when it fills up). Level 0 (every point to 0.3 m) goes on
//!   from its last point: the new points are simplified on their own and
//!   appended, and no point it kept is dropped, so its error never adds up
//!   over steps. Each coarser level keeps its segments up to its
//!   last-but-one kept point `V` and simplifies again from `V` on, over the
//!   day's level-0 points after `V` followed by the new points. Douglas–
//!   Peucker only promises that each kept line stays within the tolerance
//!   of the points it replaced, and every line before `V` still does, so
//!   the result is as faithful as a rebuild's (within the level's
//!   tolerance plus level 0's), though it may keep a few more points. When
//!   `V` is older than level 0's last block (a phone at rest for hours
//!   makes one long line at the coarse levels), the level-0 points after it
//!   are not at hand: the line's end is kept instead and simplification
//!   goes on from it (one more point a level per level-0 block), so a
//!   step's work does not grow with the day. The next rebuild of the day
//!   (a backfill, an edit, a settings change) returns it to a rebuild's
//!   exact rows.
//!
//! The fast path is taken only when it is certain to be right: the change
//! lies within one UTC day, that day is the device's last day with map rows,
//! every new point is later than the last point the rows hold, and the store
//! has no point of the device after that day. Anything else (a backfill, a
//! deletion of drawn points, a flag that changed, a new day) returns `None`
//! and the caller rebuilds.

use std::ops::ControlFlow;

use polo_domain::{Coord, DeviceId, Timestamp, UserId};
use polo_store::{DerivedBatch, DerivedRange, DerivedRow, DerivedScope, PointQuery, Store};
use polo_timeline::simplify::simplify_for_zoom;
use polo_timeline::tiles::tile_of;

use super::blocks::{BLOCKS_PER_DAY, block_key, key_day, split};
use super::calendar::{day_of, day_start, month_of_day};
use super::cells::{
    BASE_ZOOM, Cells, decode_day_cells, decode_month_cells, encode_day_cells, encode_month_cells, fog_cells,
    heat_cells, month_rows,
};
use super::refresh::MapRefresh;
use super::track::{
    GAP_MS, LEVEL_ZOOMS, LevelCount, MapPoint, TOLERANCE_PX, TrackBlock, connected, decode_counts, decode_track,
    encode_counts, encode_track, level_tolerance, pieces,
};
use crate::DerivedResult;
use crate::kinds::{FOG_BLOCKS, HEAT_BLOCKS, MAP_CELLS, MAP_COUNTS, MAP_LEVELS, map_track};

/// A block's segments of one level.
type Segments = Vec<Vec<MapPoint>>;

/// Appends the points of `device` stored after its map rows' last point to
/// the rows of that point's day, when the change `[first, last]` is such an
/// append (see the module documentation). `None`: not an append; rebuild.
///
/// # Errors
/// Store failures and damaged rows.
pub(crate) fn try_append(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    first: Timestamp,
    last: Timestamp,
) -> DerivedResult<Option<MapRefresh>> {
    let day = day_of(first.0);
    if day_of(last.0) != day {
        return Ok(None);
    }
    let scope = DerivedScope::Device(device);
    let later = store.derived_range(user, &DerivedRange { kind: MAP_COUNTS, scope, from: day, to: i64::MAX })?;
    let [counts_row] = later.as_slice() else { return Ok(None) };
    if counts_row.key != day {
        return Ok(None);
    }
    // Each level's last block of the day, with its key.
    let mut tracks: Vec<(i64, TrackBlock)> = Vec::with_capacity(usize::from(MAP_LEVELS));
    for level in 0..MAP_LEVELS {
        let kind = map_track(level);
        let Some(row) = store.derived_before(user, kind, scope, block_key(day + 1, 0), 1)?.pop() else {
            return Ok(None);
        };
        if key_day(row.key) != day {
            return Ok(None);
        }
        let block = decode_track(&row.value, kind, row.key)?;
        tracks.push((row.key, block));
    }
    let Some(cells) = store.derived_range(user, &DerivedRange::key(MAP_CELLS, scope, day))?.pop() else {
        return Ok(None);
    };
    let mut cells = decode_day_cells(&cells.value, MAP_CELLS, day)?;
    let Some(&drawn_last) = tracks[0].1.segments.last().and_then(|segment| segment.last()) else { return Ok(None) };
    if first <= drawn_last.time {
        return Ok(None);
    }
    let Some(new) = points_after(store, user, device, drawn_last.time, day_start(day + 1))? else {
        return Ok(None);
    };
    let mut outcome = MapRefresh { points: new.len() as u64, ..MapRefresh::default() };
    if new.is_empty() {
        // Only flagged fixes arrived: nothing is drawn, counted or fogged.
        return Ok(Some(outcome));
    }

    let mut counts = decode_counts(&counts_row.value, MAP_COUNTS, day)?;
    counts.points += new.len() as u64;
    let before: Vec<LevelCount> = tracks.iter().map(|(_, block)| block.count()).collect();
    // The coarser levels read level 0 as it was, so they go first.
    let (level0, coarser) = tracks.split_at_mut(1);
    for (index, (_, block)) in coarser.iter_mut().enumerate() {
        append_level(&mut block.segments, &level0[0].1.segments, drawn_last, &new, index + 1)?;
    }
    append_level(&mut level0[0].1.segments, &[], drawn_last, &new, 0)?;
    let heat = heat_cells(&new)?;
    let fog = fog_after(drawn_last, &new)?;
    cells.heat = Cells::merge([&cells.heat, &heat]);
    cells.fog = Cells::merge([&cells.fog, &fog]);

    let put = |kind, value| DerivedRow { kind, scope, key: day, value };
    let mut batch = DerivedBatch::default();
    for ((level, (key, block)), before) in (0..MAP_LEVELS).zip(tracks).zip(before) {
        // The last block, and the blocks it grew into.
        let room = usize::try_from(block_key(day, BLOCKS_PER_DAY) - key).unwrap_or(1);
        let blocks = split(block.segments, block.continues, room);
        let count = &mut counts.levels[usize::from(level)];
        for block in &blocks {
            *count += block.count();
        }
        count.points -= before.points;
        count.segments -= before.segments;
        for (key, block) in (key..).zip(&blocks) {
            batch.put.push(DerivedRow { kind: map_track(level), scope, key, value: encode_track(block) });
        }
    }
    batch.put.push(put(MAP_COUNTS, encode_counts(&counts)));
    batch.put.push(put(MAP_CELLS, encode_day_cells(&cells)));
    let month = month_of_day(day);
    for (kind, delta) in [(HEAT_BLOCKS, &heat), (FOG_BLOCKS, &fog)] {
        for (key, added) in month_rows(month, delta) {
            let added = decode_month_cells(&added, kind, key)?;
            let sum = match store.derived_range(user, &DerivedRange::key(kind, scope, key))?.pop() {
                Some(row) => Cells::merge([&decode_month_cells(&row.value, kind, key)?, &added]),
                None => added,
            };
            batch.put.push(DerivedRow { kind, scope, key, value: encode_month_cells(&sum) });
        }
    }
    store.derived_write(user, &batch, false)?;
    outcome.appended = 1;
    outcome.months = 1;
    outcome.writes = 1;
    Ok(Some(outcome))
}

/// The unflagged points of `device` after `after` and before `day_end`, or
/// `None` when the device has points from `day_end` on (the rows of the day
/// would then need the line to the next day's first point: rebuild).
fn points_after(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    after: Timestamp,
    day_end: i64,
) -> DerivedResult<Option<Vec<MapPoint>>> {
    let from = Timestamp(after.0 + 1);
    let flagged = crate::outliers::flagged_times(store, user, device, Some(from), Some(Timestamp(day_end)))?;
    let query = PointQuery { user, device: Some(device), from: Some(from), to: None };
    let mut points = Vec::new();
    let mut beyond = false;
    store.scan_points(&query, &mut |point| {
        let time = point.fix.time;
        if time.0 >= day_end {
            beyond = true;
            return ControlFlow::Break(());
        }
        if !flagged.contains(&time.0) {
            points.push(MapPoint { time, coord: point.fix.coord });
        }
        ControlFlow::Continue(())
    })?;
    Ok((!beyond).then_some(points))
}

/// The fog passes the new points add to a day whose last drawn point is `last`.
fn fog_after(last: MapPoint, new: &[MapPoint]) -> DerivedResult<Cells> {
    if new[0].time.0 - last.time.0 > GAP_MS {
        return fog_cells(new, None);
    }
    let mut joined = Vec::with_capacity(new.len() + 1);
    joined.push(last);
    joined.extend_from_slice(new);
    let fog = fog_cells(&joined, None)?;
    // The pass through the last point's cell was counted with the day's old points.
    let tile = tile_of(last.coord, BASE_ZOOM)?;
    let code = super::cells::morton(tile.x, tile.y);
    Ok(Cells(
        fog.0
            .into_iter()
            .filter_map(|(c, n)| if c == code { (n > 1).then_some((c, n - 1)) } else { Some((c, n)) })
            .collect(),
    ))
}

/// Appends `new` (all later than `last`, the day's last drawn point) to one
/// level's `segments` (its last block's), given level 0's last block's
/// segments before the append (unused for level 0 itself).
fn append_level(
    segments: &mut Segments,
    level0: &[Vec<MapPoint>],
    last: MapPoint,
    new: &[MapPoint],
    level: usize,
) -> DerivedResult<()> {
    let tolerance = level_tolerance(level);
    // The new points joined to the last segment by the level's rule, and the rest.
    let mut joined = 0;
    let mut previous = last;
    while joined < new.len() && connected(&previous, &new[joined], tolerance) {
        previous = new[joined];
        joined += 1;
    }
    let (joined, rest) = new.split_at(joined);
    if !joined.is_empty()
        && let Some(segment) = segments.last_mut()
    {
        // Simplify again from the last-but-one kept point `from` on: its
        // lines before stay as they are. Level 0 is the source of the
        // others and never drops a point it kept (its error would add up
        // step by step), so it goes on from its last point.
        let mut keep = segment.len().saturating_sub(if level == 0 { 1 } else { 2 });
        let mut between: Vec<MapPoint> = Vec::new();
        if level > 0 {
            let from = segment[keep].time;
            // Level 0's last block holds every drawn point after its first.
            let at_hand = level0.first().and_then(|s| s.first()).is_some_and(|start| start.time <= from);
            if at_hand {
                between.extend(level0.iter().flatten().filter(|p| p.time > from && p.time < last.time));
            } else if keep + 1 < segment.len() {
                // A long line (hours at home) reaching back before level 0's
                // last block: keep its end, so a step simplifies a bounded tail.
                keep += 1;
            }
        }
        let from = segment[keep];
        let mut source = vec![from];
        source.append(&mut between);
        if last.time > from.time {
            source.push(last);
        }
        source.extend_from_slice(joined);
        segment.truncate(keep);
        segment.extend(simplify(&source, level)?);
    }
    for piece in pieces(rest, tolerance) {
        segments.push(simplify(piece, level)?);
    }
    Ok(())
}

/// One piece's kept points at `level`.
fn simplify(piece: &[MapPoint], level: usize) -> DerivedResult<Vec<MapPoint>> {
    let coords: Vec<Coord> = piece.iter().map(|p| p.coord).collect();
    let kept = simplify_for_zoom(&coords, LEVEL_ZOOMS[level], TOLERANCE_PX)?;
    Ok(kept.into_iter().map(|index| piece[index]).collect())
}

#[cfg(test)]
mod tests {
    use polo_store::DerivedKind;
    use polo_timeline::tiles::mercator;

    use super::*;
    use crate::map::blocks::BLOCK_POINTS;
    use crate::map::calendar::day_of;
    use crate::map::refresh::refresh_device;
    use crate::map::test_support::{Fixture, point, synthetic};

    fn rows(fixture: &Fixture, kind: DerivedKind) -> Vec<(i64, Vec<u8>)> {
        let range = DerivedRange::all(kind, DerivedScope::Device(fixture.devices[0]));
        fixture.store.derived_range(fixture.user, &range).unwrap().into_iter().map(|r| (r.key, r.value)).collect()
    }

    fn track(fixture: &Fixture, level: u16, day: i64) -> Segments {
        fixture.track(level, fixture.devices[0], day)
    }

    fn refresh(fixture: &Fixture, points: &[MapPoint]) -> MapRefresh {
        let (first, last) = (points[0].time, points[points.len() - 1].time);
        refresh_device(&fixture.store, fixture.user, fixture.devices[0], first, last).unwrap()
    }

    /// Distance in world units from `p` to the segment `a`–`b`.
    fn distance(p: MapPoint, a: MapPoint, b: MapPoint) -> f64 {
        let world = |m: MapPoint| mercator(m.coord.lon(), m.coord.lat());
        let (p, a, b) = (world(p), world(a), world(b));
        let (dx, dy) = (b[0] - a[0], b[1] - a[1]);
        let length = dx * dx + dy * dy;
        let t = if length > 0.0 { (((p[0] - a[0]) * dx + (p[1] - a[1]) * dy) / length).clamp(0.0, 1.0) } else { 0.0 };
        (p[0] - a[0] - t * dx).hypot(p[1] - a[1] - t * dy)
    }

    /// The farthest any of `points` lies from the line of `segments` drawn
    /// at its time, and whether every point lies within a segment's time.
    fn deviation(points: &[MapPoint], segments: &Segments) -> f64 {
        let mut worst: f64 = 0.0;
        for p in points {
            let segment = segments
                .iter()
                .find(|s| s[0].time <= p.time && p.time <= s[s.len() - 1].time)
                .unwrap_or_else(|| panic!("point at {} is in no segment", p.time));
            let d = match segment.windows(2).find(|w| w[0].time <= p.time && p.time <= w[1].time) {
                Some(w) => distance(*p, w[0], w[1]),
                None => distance(*p, segment[0], segment[0]),
            };
            worst = worst.max(d);
        }
        worst
    }

    /// Inserts `points` in batches of varying size, refreshing after each.
    fn append_in_batches(fixture: &Fixture, points: &[MapPoint]) -> usize {
        let mut rest = points;
        let mut batches = 0;
        while !rest.is_empty() {
            let size = (3 + batches * 7 % 40).min(rest.len());
            let (batch, tail) = rest.split_at(size);
            fixture.insert(fixture.devices[0], batch);
            let outcome = refresh(fixture, batch);
            assert_eq!(outcome.appended, 1, "batch {batches} was appended");
            assert_eq!((outcome.days, outcome.points), (0, batch.len() as u64), "only the new points were read");
            rest = tail;
            batches += 1;
        }
        batches
    }

    #[test]
    fn live_appends_give_a_rebuilds_cells_counts_and_month_rows_and_tracks_as_faithful() {
        // Two whole UTC days and the day a phone is still posting.
        let last_day = day_of(synthetic(5, 1)[0].time.0) + 2;
        let points: Vec<MapPoint> = synthetic(5, 4).into_iter().filter(|p| day_of(p.time.0) <= last_day).collect();
        let day_first = points.iter().position(|p| day_of(p.time.0) == last_day).unwrap();
        assert!(points.len() - day_first > 300, "a busy day");
        let split = day_first + (points.len() - day_first) / 3;
        let (before, live) = points.split_at(split);

        let appended = Fixture::new(&["phone"]);
        appended.insert(appended.devices[0], before);
        refresh(&appended, before);
        let batches = append_in_batches(&appended, live);
        assert!(batches > 10);

        let rebuilt = Fixture::new(&["phone"]);
        rebuilt.insert(rebuilt.devices[0], &points);
        refresh(&rebuilt, &points);

        for kind in [MAP_CELLS, HEAT_BLOCKS, FOG_BLOCKS] {
            assert_eq!(rows(&appended, kind), rows(&rebuilt, kind), "kind {kind:?} is exactly a rebuild's");
        }
        let counts = |fixture: &Fixture| -> Vec<(i64, crate::map::track::DayCounts)> {
            rows(fixture, MAP_COUNTS).into_iter().map(|(k, v)| (k, decode_counts(&v, MAP_COUNTS, k).unwrap())).collect()
        };
        let (got, want) = (counts(&appended), counts(&rebuilt));
        assert_eq!(got.len(), want.len());
        for ((day, got), (_, want)) in got.iter().zip(&want) {
            assert_eq!(got.points, want.points, "day {day}: every point counted once");
            for level in 0..usize::from(MAP_LEVELS) {
                assert_eq!(got.levels[level].segments, want.levels[level].segments, "day {day} level {level}");
                assert!(
                    got.levels[level].points <= want.levels[level].points * 11 / 10 + 2,
                    "day {day} level {level}: {} points kept against a rebuild's {}",
                    got.levels[level].points,
                    want.levels[level].points
                );
            }
        }
        let day_points: Vec<MapPoint> = points.iter().copied().filter(|p| day_of(p.time.0) == last_day).collect();
        for level in 0..MAP_LEVELS {
            let bound = level_tolerance(usize::from(level)) + 2.0 * level_tolerance(0);
            let worst = deviation(&day_points, &track(&appended, level, last_day));
            assert!(worst <= bound * (1.0 + 1e-9), "level {level}: a point lies {worst} from its line (bound {bound})");
        }
        // The other days were not touched.
        for level in 0..MAP_LEVELS {
            let earlier = |fixture| -> Vec<(i64, Vec<u8>)> {
                rows(fixture, map_track(level)).into_iter().filter(|(key, _)| key_day(*key) < last_day).collect()
            };
            assert_eq!(earlier(&appended), earlier(&rebuilt));
        }
    }

    #[test]
    fn hours_at_rest_keep_a_step_bounded_and_the_line_faithful() {
        // Two and a half hours at home at 1 Hz with a few metres of jitter, arriving a minute at a time.
        let base = 1_717_200_000_000 + 18 * 3_600_000; // 2024-06-01 18:00 UTC
        let mut state = 17u64;
        let mut jitter = move || {
            state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            ((state >> 11) as f64 / (1u64 << 53) as f64 - 0.5) * 6e-5
        };
        let points: Vec<MapPoint> =
            (0..9_000).map(|s| point(base + s * 1000, 52.52 + jitter(), 13.405 + jitter())).collect();
        let fixture = Fixture::new(&["phone"]);
        fixture.insert(fixture.devices[0], &points[..60]);
        refresh(&fixture, &points[..60]);
        for minute in points[60..].chunks(60) {
            let before: Vec<Vec<(i64, Vec<u8>)>> = (0..MAP_LEVELS).map(|l| rows(&fixture, map_track(l))).collect();
            fixture.insert(fixture.devices[0], minute);
            assert_eq!(refresh(&fixture, minute).appended, 1);
            for level in 0..MAP_LEVELS {
                // A step rewrites a level's last block, and may start the next: never the day.
                let after = rows(&fixture, map_track(level));
                let old = &before[usize::from(level)];
                let written: Vec<i64> = after.iter().filter(|row| !old.contains(row)).map(|(key, _)| *key).collect();
                assert!(written.len() <= 2, "level {level}: blocks {written:?} rewritten");
                let last_before = old.last().unwrap().0;
                assert!(
                    written.iter().all(|&key| key >= last_before),
                    "level {level}: {written:?} before {last_before}"
                );
            }
        }
        let blocks = fixture.track_blocks(0, fixture.devices[0], day_of(base));
        assert!(blocks.len() >= 8, "{} blocks at level 0", blocks.len());
        assert!(blocks.iter().all(|b| b.stored_points() <= BLOCK_POINTS));
        let rebuilt = Fixture::new(&["phone"]);
        rebuilt.insert(rebuilt.devices[0], &points);
        refresh(&rebuilt, &points);
        let day = day_of(base);
        for level in 0..MAP_LEVELS {
            let (got, want) = (track(&fixture, level, day), track(&rebuilt, level, day));
            let bound = level_tolerance(usize::from(level)) + 2.0 * level_tolerance(0);
            let worst = deviation(&points, &got);
            assert!(worst <= bound * (1.0 + 1e-9), "level {level}: a point lies {worst} from its line (bound {bound})");
            let (got, want) = (got.iter().map(Vec::len).sum::<usize>(), want.iter().map(Vec::len).sum::<usize>());
            if level > 0 {
                // At most one more point per block of level 0.
                assert!(got <= want + 9_000 / (BLOCK_POINTS - 1) + 1, "level {level}: {got} points against {want}");
            }
        }
    }

    #[test]
    fn after_a_gap_the_new_points_start_their_own_segment_and_pass() {
        let fixture = Fixture::new(&["phone"]);
        let base = 1_717_200_000_000; // 2024-06-01 00:00 UTC
        let morning: Vec<MapPoint> = (0..30)
            .map(|i| point(base + 8 * 3_600_000 + i * 60_000, 48.1 + f64::from(i as i32) * 1e-4, 11.5))
            .collect();
        // An hour later, 2 km away: a gap with a jump.
        let noon: Vec<MapPoint> = (0..20)
            .map(|i| point(base + 10 * 3_600_000 + i * 30_000, 48.12, 11.52 + f64::from(i as i32) * 1e-4))
            .collect();
        fixture.insert(fixture.devices[0], &morning);
        refresh(&fixture, &morning);
        fixture.insert(fixture.devices[0], &noon);
        assert_eq!(refresh(&fixture, &noon).appended, 1);
        let rebuilt = Fixture::new(&["phone"]);
        let all: Vec<MapPoint> = morning.iter().chain(&noon).copied().collect();
        rebuilt.insert(rebuilt.devices[0], &all);
        refresh(&rebuilt, &all);
        for kind in [MAP_COUNTS, MAP_CELLS, HEAT_BLOCKS, FOG_BLOCKS] {
            assert_eq!(rows(&fixture, kind), rows(&rebuilt, kind));
        }
        let day = day_of(base);
        for level in 0..MAP_LEVELS {
            assert_eq!(track(&fixture, level, day), track(&rebuilt, level, day), "level {level}");
            assert_eq!(track(&fixture, level, day).len(), 2, "level {level}: no line across the gap");
        }
    }

    #[test]
    fn anything_but_an_append_to_the_last_day_is_rebuilt() {
        let fixture = Fixture::new(&["phone"]);
        let base = 1_717_200_000_000; // 2024-06-01 00:00 UTC
        let at = |minute: i64| point(base + minute * 60_000, 48.1 + minute as f64 * 1e-5, 11.5);
        let day_one: Vec<MapPoint> = (600..660).map(at).collect();
        fixture.insert(fixture.devices[0], &day_one);
        refresh(&fixture, &day_one);

        // A backfill before the last drawn point.
        let backfill = vec![at(500)];
        fixture.insert(fixture.devices[0], &backfill);
        let outcome = refresh(&fixture, &backfill);
        assert_eq!((outcome.appended, outcome.days), (0, 1));

        // The next day: a new day is built, not appended.
        let next_day: Vec<MapPoint> = (1_500..1_510).map(at).collect();
        fixture.insert(fixture.devices[0], &next_day);
        let outcome = refresh(&fixture, &next_day);
        assert_eq!(outcome.appended, 0);

        // Points stored after the changed day (a later change not yet refreshed).
        let late_evening = vec![at(1_400)];
        fixture.insert(fixture.devices[0], &late_evening);
        assert_eq!(refresh(&fixture, &late_evening).appended, 0);

        // Now the last day goes on: appended.
        let more: Vec<MapPoint> = (1_510..1_515).map(at).collect();
        fixture.insert(fixture.devices[0], &more);
        assert_eq!(refresh(&fixture, &more).appended, 1);
    }
}
