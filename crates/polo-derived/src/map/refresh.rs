//! Rebuilding a device's map rows from its stored points after a change.
//!
//! The unit of work is a UTC day: a day's rows (`MAP_COUNTS`, the level
//! tracks, `MAP_CELLS`) depend only on that day's points and, for the fog
//! line across midnight, on the first point after it. A month's
//! `HEAT_BLOCKS` and `FOG_BLOCKS` rows are the sums of its days' `MAP_CELLS`
//! (cut into blocks at four zooms), so rewriting them reads a month of
//! small cell lists, never a month of points; the days' old cells say which
//! block rows the month had, to delete them. A rebuild of a day therefore
//! costs one day's scan (about 1 400 points for a typical phone) and up to
//! 30 cell rows, however long the history.
//!
//! A live phone's points arriving after everything its last day's rows
//! hold are appended to those rows instead ([`super::append`]), reading
//! only the new points.
//!
//! [`refresh_device`] streams the points of the changed window month by
//! month (one scan per month that has points, stopped at the next month's
//! first point, so memory holds one day's points and one month's encoded
//! rows), builds each day's rows, and writes each month's part of the
//! window with one [`Store::derived_write`]: the window's day keys of every
//! map kind are deleted (so a day without points left ends up with no rows)
//! and the new rows and the month's sums put, atomically. Running it twice
//! changes nothing, so a worker may retry freely; two refreshes of the same
//! device must not run at the same time (the month sums are read, then
//! written).

use std::collections::BTreeSet;
use std::ops::{ControlFlow, Range};

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{
    Change, ChangeKind, DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope, PointQuery, Store,
};

use super::blocks::{block_key, day_keys, split};
use super::calendar::{day_of, day_start, month_days, month_first_day, month_of_day};
use super::cells::{
    Cells, DayCells, decode_day_cells, encode_day_cells, fog_cells, heat_cells, month_row_keys, month_rows,
};
use super::track::{DayCounts, GAP_MS, LevelCount, MapPoint, build_level, encode_counts, encode_track};
use crate::kinds::{
    FOG, FOG_BLOCKS, HEAT, HEAT_BLOCKS, MAP_CELLS, MAP_COUNTS, MAP_LEVELS, RETIRED_MAP_TRACKS, map_track,
};
use crate::{DerivedError, DerivedResult};

/// What a refresh did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MapRefresh {
    /// Days whose rows were rebuilt from points.
    pub days: u64,
    /// Days in the window whose rows were removed because no points are left.
    pub days_emptied: u64,
    /// Months whose heatmap and fog rows were rewritten.
    pub months: u64,
    /// Points read.
    pub points: u64,
    /// Atomic batches written (one per month of the window).
    pub writes: u64,
    /// Days brought up to date by appending new points to their rows
    /// ([`super::append`]) rather than rebuilding them; not in `days`.
    pub appended: u64,
}

/// The map kinds keyed by UTC day (the tracks are keyed by day and block).
const DAY_KINDS: [DerivedKind; 2] = [MAP_COUNTS, MAP_CELLS];

/// The rows of one day, built from its points.
struct DayRows {
    day: i64,
    counts: Vec<u8>,
    /// Per level, its encoded blocks in order.
    tracks: Vec<Vec<Vec<u8>>>,
    cells: DayCells,
}

fn build_day(day: i64, points: &[MapPoint], next: Option<MapPoint>) -> DerivedResult<DayRows> {
    let mut counts = DayCounts { points: points.len() as u64, ..DayCounts::default() };
    let mut tracks = Vec::with_capacity(usize::from(MAP_LEVELS));
    for (level, count) in counts.levels.iter_mut().enumerate() {
        let segments = build_level(points, level)?;
        *count = LevelCount { points: segments.iter().map(|s| s.len() as u64).sum(), segments: segments.len() as u64 };
        tracks.push(split(segments, false, usize::MAX).iter().map(encode_track).collect());
    }
    let cells = DayCells { heat: heat_cells(points)?, fog: fog_cells(points, next)? };
    Ok(DayRows { day, counts: encode_counts(&counts), tracks, cells })
}

/// The days of one month that a scan found points on.
struct MonthScan {
    month: i64,
    days: Vec<DayRows>,
    points: u64,
    /// Where the next month with points starts, if the scan stopped at one.
    next: Option<i64>,
}

/// Reads the points of the first month with points at or after `from`
/// (ms), up to `end` (exclusive), building its days.
fn scan_month(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: i64,
    end: i64,
) -> DerivedResult<Option<MonthScan>> {
    let query = PointQuery {
        user,
        device: Some(device),
        from: Some(Timestamp(from)),
        // One more gap's worth: the first point after the window (for the fog line from its last day).
        to: Some(Timestamp(end.saturating_add(GAP_MS))),
    };
    let mut month: Option<i64> = None;
    let mut day: Option<i64> = None;
    let mut points: Vec<MapPoint> = Vec::new();
    let mut days: Vec<DayRows> = Vec::new();
    let mut lookahead: Option<MapPoint> = None;
    let mut next = None;
    let mut read = 0u64;
    let mut failure: Option<DerivedError> = None;
    // Flagged fixes (teleports) are not drawn, counted or fogged.
    let mut flagged = crate::outliers::FlaggedScan::new(store, user, device, query.to);
    store.scan_points(&query, &mut |point| {
        match flagged.contains(point.fix.time) {
            Ok(false) => {}
            Ok(true) => return ControlFlow::Continue(()),
            Err(e) => {
                failure = Some(e);
                return ControlFlow::Break(());
            }
        }
        let point = MapPoint { time: point.fix.time, coord: point.fix.coord };
        let t = point.time.0;
        if t >= end {
            lookahead = Some(point);
            return ControlFlow::Break(());
        }
        let point_day = day_of(t);
        let point_month = month_of_day(point_day);
        if month.is_some_and(|m| m != point_month) {
            lookahead = Some(point);
            next = Some(day_start(month_first_day(point_month)));
            return ControlFlow::Break(());
        }
        month = Some(point_month);
        if let Some(current) = day
            && current != point_day
        {
            match build_day(current, &points, Some(point)) {
                Ok(rows) => days.push(rows),
                Err(e) => {
                    failure = Some(e);
                    return ControlFlow::Break(());
                }
            }
            points.clear();
        }
        day = Some(point_day);
        read += 1;
        points.push(point);
        ControlFlow::Continue(())
    })?;
    if let Some(e) = failure {
        return Err(e);
    }
    let (Some(month), Some(day)) = (month, day) else {
        return Ok(None);
    };
    days.push(build_day(day, &points, lookahead)?);
    Ok(Some(MonthScan { month, days, points: read, next }))
}

/// Rebuilds the map rows of `device` for every UTC day touched by
/// `[first, last]` and every month those days are in, from the stored
/// points. Call it with the time span of each change (inserted points or a
/// deleted range; pass `Timestamp(i64::MIN)` / `Timestamp(i64::MAX)` for
/// the open side of a tombstone: only days that have points or rows are
/// visited); [`refresh_change`] does that for a change-log entry. The day
/// before is included when `first` is within a gap's time after midnight,
/// since its fog line runs to the first point after it.
///
/// # Errors
/// [`DerivedError::Invalid`] when `last < first`; store failures and
/// corrupt cell rows of the touched months (nothing of a month's window is
/// written then; months before it stay written).
pub fn refresh_device(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    first: Timestamp,
    last: Timestamp,
) -> DerivedResult<MapRefresh> {
    if last < first {
        return Err(DerivedError::Invalid(format!("refresh window ends ({last}) before it starts ({first})")));
    }
    if let Some(appended) = super::append::try_append(store, user, device, first, last)? {
        return Ok(appended);
    }
    let scope = DerivedScope::Device(device);
    let window = day_of(first.0.saturating_sub(GAP_MS))..day_of(last.0) + 1;
    // Months with rows in the window must be rewritten even if no points are left there.
    let stored =
        store.derived_range(user, &DerivedRange { kind: MAP_COUNTS, scope, from: window.start, to: window.end })?;
    let stored: BTreeSet<i64> = stored.iter().map(|row| row.key).collect();
    let mut pending: BTreeSet<i64> = stored.iter().map(|&day| month_of_day(day)).collect();
    let mut outcome = MapRefresh::default();
    let end = day_start(window.end);
    let mut cursor = Some(day_start(window.start));
    while let Some(from) = cursor {
        let Some(scan) = scan_month(store, user, device, from, end)? else {
            break;
        };
        let earlier: Vec<i64> = pending.range(..scan.month).copied().collect();
        for month in earlier {
            pending.remove(&month);
            write_month(store, user, scope, month, &window, &stored, Vec::new(), &mut outcome)?;
        }
        pending.remove(&scan.month);
        outcome.points += scan.points;
        cursor = scan.next;
        write_month(store, user, scope, scan.month, &window, &stored, scan.days, &mut outcome)?;
    }
    for month in pending {
        write_month(store, user, scope, month, &window, &stored, Vec::new(), &mut outcome)?;
    }
    Ok(outcome)
}

/// Deletes the rows of `device` of the kinds an older polo wrote and this
/// one no longer reads (the month-wide `HEAT` and `FOG` rows of rows
/// version 2, the whole-day tracks of version 3). The engine calls it when
/// it recomputes a device's maps whole.
///
/// # Errors
/// Store failures.
pub fn clear_retired(store: &dyn Store, user: UserId, device: DeviceId) -> DerivedResult<()> {
    let scope = DerivedScope::Device(device);
    let delete = [HEAT, FOG]
        .into_iter()
        .chain(RETIRED_MAP_TRACKS.map(DerivedKind))
        .map(|kind| DerivedRange::all(kind, scope))
        .collect();
    store.derived_write(user, &DerivedBatch { delete, put: Vec::new() }, false)?;
    Ok(())
}

/// Brings the map rows up to date after one change-log entry: inserted or
/// deleted points refresh their device (every device of the user for a
/// delete without one) over the entry's span, open sides unbounded. Other
/// changes do not touch the map and return an empty outcome.
///
/// # Errors
/// As [`refresh_device`].
pub fn refresh_change(store: &dyn Store, change: &Change) -> DerivedResult<MapRefresh> {
    if !matches!(change.kind, ChangeKind::PointsInserted | ChangeKind::PointsDeleted) {
        return Ok(MapRefresh::default());
    }
    let devices = match change.device {
        Some(device) => vec![device],
        None => store.list_devices(change.user)?.into_iter().map(|d| d.id).collect(),
    };
    let first = change.first.unwrap_or(Timestamp(i64::MIN));
    let last = change.last.unwrap_or(Timestamp(i64::MAX));
    let mut total = MapRefresh::default();
    for device in devices {
        let outcome = refresh_device(store, change.user, device, first, last)?;
        total.days += outcome.days;
        total.days_emptied += outcome.days_emptied;
        total.months += outcome.months;
        total.points += outcome.points;
        total.writes += outcome.writes;
        total.appended += outcome.appended;
    }
    Ok(total)
}

/// Replaces the window's days of `month` with `days` and rewrites the
/// month's sums, in one batch; `stored` are the window's days that had rows.
#[allow(clippy::too_many_arguments)]
fn write_month(
    store: &dyn Store,
    user: UserId,
    scope: DerivedScope,
    month: i64,
    window: &Range<i64>,
    stored: &BTreeSet<i64>,
    days: Vec<DayRows>,
    outcome: &mut MapRefresh,
) -> DerivedResult<()> {
    let all = month_days(month);
    let replaced = window.start.max(all.start)..window.end.min(all.end);
    let mut batch = DerivedBatch::default();
    for kind in DAY_KINDS {
        batch.delete.push(DerivedRange { kind, scope, from: replaced.start, to: replaced.end });
    }
    let blocks = day_keys(replaced.clone());
    for level in 0..MAP_LEVELS {
        batch.delete.push(DerivedRange { kind: map_track(level), scope, from: blocks.start, to: blocks.end });
    }
    // The month's other days keep their cells; read them back to sum the
    // month. The replaced days' old cells say which month rows exist now.
    let mut kept: Vec<DayCells> = Vec::new();
    let mut old: Vec<DayCells> = Vec::new();
    let range = DerivedRange { kind: MAP_CELLS, scope, from: all.start, to: all.end };
    for row in store.derived_range(user, &range)? {
        let cells = decode_day_cells(&row.value, MAP_CELLS, row.key)?;
        if replaced.contains(&row.key) { old.push(cells) } else { kept.push(cells) }
    }
    let old_heat = Cells::merge(kept.iter().chain(&old).map(|c| &c.heat));
    let old_fog = Cells::merge(kept.iter().chain(&old).map(|c| &c.fog));
    for (kind, cells) in [(HEAT_BLOCKS, &old_heat), (FOG_BLOCKS, &old_fog)] {
        for key in month_row_keys(month, cells) {
            batch.delete.push(DerivedRange::key(kind, scope, key));
        }
    }
    let emptied = stored.range(replaced.clone()).filter(|&&day| !days.iter().any(|d| d.day == day)).count();
    outcome.days_emptied += emptied as u64;
    outcome.days += days.len() as u64;
    let heat = Cells::merge(kept.iter().map(|c| &c.heat).chain(days.iter().map(|d| &d.cells.heat)));
    let fog = Cells::merge(kept.iter().map(|c| &c.fog).chain(days.iter().map(|d| &d.cells.fog)));
    for rows in days {
        let put = |kind, value| DerivedRow { kind, scope, key: rows.day, value };
        batch.put.push(put(MAP_COUNTS, rows.counts));
        batch.put.push(put(MAP_CELLS, encode_day_cells(&rows.cells)));
        for (level, blocks) in (0..MAP_LEVELS).zip(rows.tracks) {
            for (index, value) in (0..).zip(blocks) {
                batch.put.push(DerivedRow { kind: map_track(level), scope, key: block_key(rows.day, index), value });
            }
        }
    }
    for (kind, cells) in [(HEAT_BLOCKS, heat), (FOG_BLOCKS, fog)] {
        for (key, value) in month_rows(month, &cells) {
            batch.put.push(DerivedRow { kind, scope, key, value });
        }
    }
    store.derived_write(user, &batch, false)?;
    outcome.months += 1;
    outcome.writes += 1;
    Ok(())
}

#[cfg(test)]
mod tests {
    use polo_domain::time::MS_PER_DAY;

    use super::*;
    use crate::map::blocks::{BLOCK_POINTS, join, key_day};
    use crate::map::cells::{MONTH_ZOOMS, decode_month_cells, month_row_parts};
    use crate::map::test_support::{Fixture, point, synthetic};
    use crate::map::track::decode_counts;

    fn span(points: &[MapPoint]) -> (Timestamp, Timestamp) {
        (points[0].time, points[points.len() - 1].time)
    }

    fn utc_days(points: &[MapPoint]) -> Vec<i64> {
        let mut days: Vec<i64> = points.iter().map(|p| day_of(p.time.0)).collect();
        days.dedup();
        days
    }

    fn refresh_all(fixture: &Fixture, device: DeviceId, points: &[MapPoint]) -> MapRefresh {
        let (first, last) = span(points);
        refresh_device(&fixture.store, fixture.user, device, first, last).unwrap()
    }

    #[test]
    fn a_refresh_builds_every_row_and_running_it_again_changes_nothing() {
        let fixture = Fixture::new(&["phone"]);
        let device = fixture.devices[0];
        // 2024-03-04 onwards (local days of Berlin): 40 days across March and April, 41 UTC days.
        let points = synthetic(2, 40);
        let utc = utc_days(&points);
        assert_eq!(utc.len(), 41);
        fixture.insert(device, &points);
        let outcome = refresh_all(&fixture, device, &points);
        assert_eq!((outcome.days, outcome.months, outcome.writes, outcome.days_emptied), (41, 2, 2, 0));
        assert_eq!(outcome.points, points.len() as u64);

        let days = fixture.keys(MAP_COUNTS, device);
        assert_eq!(days, utc);
        assert_eq!(fixture.track_days(2, device), days);
        assert_eq!(fixture.keys(MAP_CELLS, device), days);
        let mut months: Vec<(usize, i64)> =
            fixture.keys(HEAT_BLOCKS, device).into_iter().map(month_row_parts).map(|(l, _, m)| (l, m)).collect();
        months.sort_unstable();
        months.dedup();
        let expected: Vec<(usize, i64)> =
            (0..MONTH_ZOOMS.len()).flat_map(|l| [(l, 2024 * 12 + 2), (l, 2024 * 12 + 3)]).collect();
        assert_eq!(months, expected, "every level has rows for both months");
        let scope = DerivedScope::Device(device);
        let mut counted = 0;
        for day in &days {
            let row =
                &fixture.store.derived_range(fixture.user, &DerivedRange::key(MAP_COUNTS, scope, *day)).unwrap()[0];
            let counts = decode_counts(&row.value, MAP_COUNTS, *day).unwrap();
            counted += counts.points;
            for level in 0..MAP_LEVELS {
                let blocks = fixture.track_blocks(level, device, *day);
                assert!(blocks.iter().all(|b| b.stored_points() <= BLOCK_POINTS));
                let segments = join(blocks);
                let kept: u64 = segments.iter().map(|s| s.len() as u64).sum();
                assert_eq!(kept, counts.levels[usize::from(level)].points);
                assert_eq!(segments.len() as u64, counts.levels[usize::from(level)].segments);
                assert!(
                    segments.iter().flatten().all(|p| day_of(p.time.0) == *day),
                    "a day's track holds that day only"
                );
            }
        }
        assert_eq!(counted, points.len() as u64);
        for level in 0..MONTH_ZOOMS.len() {
            let heat: u64 = fixture
                .store
                .derived_range(fixture.user, &DerivedRange::all(HEAT_BLOCKS, scope))
                .unwrap()
                .iter()
                .filter(|row| month_row_parts(row.key).0 == level)
                .flat_map(|row| decode_month_cells(&row.value, HEAT_BLOCKS, row.key).unwrap().0)
                .map(|(_, n)| u64::from(n))
                .sum();
            assert_eq!(heat, points.len() as u64, "the heatmap counts every point once at level {level}");
        }

        let before = fixture.rows(device);
        let again = refresh_all(&fixture, device, &points);
        assert_eq!(again, outcome);
        assert_eq!(fixture.rows(device), before, "idempotent");
    }

    #[test]
    fn a_backfilled_day_recomputes_only_its_own_day_and_month_and_matches_a_full_rebuild() {
        let all = synthetic(3, 45);
        // UTC day 20 from 00:30 on arrives late (an import of an old file); noon to 13:00 of day 30 too.
        let day_20 = day_of(all[0].time.0) + 20;
        let backfill: Vec<MapPoint> = all
            .iter()
            .copied()
            .filter(|p| day_of(p.time.0) == day_20 && p.time.0 >= day_start(day_20) + 30 * 60_000)
            .collect();
        let day_30_noon = day_start(day_20 + 10) + 12 * 3_600_000;
        let late: Vec<MapPoint> =
            all.iter().copied().filter(|p| p.time.0 >= day_30_noon && p.time.0 < day_30_noon + 3_600_000).collect();
        let early: Vec<MapPoint> = all.iter().copied().filter(|p| !backfill.contains(p) && !late.contains(p)).collect();
        let fixture = Fixture::new(&["phone"]);
        let device = fixture.devices[0];
        fixture.insert(device, &early);
        refresh_all(&fixture, device, &early);
        let before = fixture.rows(device);

        fixture.insert(device, &backfill);
        let outcome = refresh_all(&fixture, device, &backfill);
        let day_points = all.iter().filter(|p| day_of(p.time.0) == day_20).count() as u64;
        assert!(day_points > backfill.len() as u64);
        assert_eq!((outcome.days, outcome.months, outcome.points), (1, 1, day_points), "{outcome:?}");
        let after = fixture.rows(device);
        let month_of_row = |row: &DerivedRow| match row.kind {
            HEAT_BLOCKS | FOG_BLOCKS => month_row_parts(row.key).2,
            MAP_COUNTS | MAP_CELLS => row.key,
            _ => key_day(row.key),
        };
        let mut changed: Vec<(u16, i64)> =
            after.iter().filter(|row| !before.contains(row)).map(|row| (row.kind.0, month_of_row(row))).collect();
        changed.sort_unstable();
        changed.dedup();
        let month = month_of_day(day_20);
        let mut expected: Vec<(u16, i64)> = vec![(10, day_20), (22, day_20), (23, month), (24, month)];
        expected.extend((0..MAP_LEVELS).map(|l| (map_track(l).0, day_20)));
        let mut sorted = changed.clone();
        sorted.sort_unstable();
        expected.sort_unstable();
        assert_eq!(sorted, expected, "only the day's rows and its month's sums change");

        fixture.insert(device, &late);
        let outcome = refresh_all(&fixture, device, &late);
        assert_eq!((outcome.days, outcome.months), (1, 1));

        let full = Fixture::new(&["phone"]);
        full.insert(full.devices[0], &all);
        refresh_all(&full, full.devices[0], &all);
        assert_eq!(fixture.rows(device), full.rows(full.devices[0]), "incremental refreshes equal a full rebuild");
    }

    #[test]
    fn deleting_points_empties_their_rows() {
        let fixture = Fixture::new(&["phone", "watch"]);
        let (phone, watch) = (fixture.devices[0], fixture.devices[1]);
        let points = synthetic(7, 35);
        fixture.insert(phone, &points);
        fixture.insert(watch, &points[..1_000]);
        refresh_all(&fixture, phone, &points);
        refresh_all(&fixture, watch, &points[..1_000]);
        let watch_rows = fixture.rows(watch);

        // Days 3 to 5 deleted: a range tombstone [from, to - 1].
        let first_day = day_of(points[0].time.0);
        let (from, to) = (day_start(first_day + 3), day_start(first_day + 6));
        let query = PointQuery {
            user: fixture.user,
            device: Some(phone),
            from: Some(Timestamp(from)),
            to: Some(Timestamp(to)),
        };
        fixture.store.delete_points(&query).unwrap();
        let outcome = refresh_device(&fixture.store, fixture.user, phone, Timestamp(from), Timestamp(to - 1)).unwrap();
        assert_eq!(outcome.days_emptied, 3, "{outcome:?}");
        let days = fixture.keys(MAP_COUNTS, phone);
        assert_eq!(days.len(), utc_days(&points).len() - 3);
        assert!(!days.iter().any(|d| (first_day + 3..first_day + 6).contains(d)));
        assert_eq!(fixture.track_days(0, phone), days);

        // Everything deleted (an unbounded tombstone): no map row is left, the other device's stay.
        fixture
            .store
            .delete_points(&PointQuery { user: fixture.user, device: Some(phone), from: None, to: None })
            .unwrap();
        let outcome =
            refresh_device(&fixture.store, fixture.user, phone, Timestamp(i64::MIN), Timestamp(i64::MAX)).unwrap();
        assert_eq!((outcome.days, outcome.days_emptied, outcome.points), (0, days.len() as u64, 0), "{outcome:?}");
        assert!(fixture.rows(phone).is_empty());
        assert_eq!(fixture.rows(watch), watch_rows);
    }

    #[test]
    fn a_fix_appended_to_today_reads_only_itself_and_a_backfill_today_only() {
        let fixture = Fixture::new(&["phone"]);
        let device = fixture.devices[0];
        let points = synthetic(11, 20);
        fixture.insert(device, &points);
        refresh_all(&fixture, device, &points);
        // A phone sends one more fix at the end of the last day.
        let last = *points.last().unwrap();
        let next = MapPoint { time: Timestamp(last.time.0 + 30_000), coord: last.coord };
        fixture.insert(device, &[next]);
        let outcome = refresh_device(&fixture.store, fixture.user, device, next.time, next.time).unwrap();
        assert_eq!((outcome.days, outcome.appended, outcome.points), (0, 1, 1), "{outcome:?}");
        // One more, earlier than what the rows hold: the day is rebuilt, and nothing else.
        let late = MapPoint { time: Timestamp(last.time.0 - 1), coord: last.coord };
        fixture.insert(device, &[late]);
        let outcome = refresh_device(&fixture.store, fixture.user, device, late.time, late.time).unwrap();
        let today = points.iter().filter(|p| day_of(p.time.0) == day_of(next.time.0)).count() as u64;
        assert_eq!((outcome.days, outcome.months, outcome.points), (1, 1, today + 2), "{outcome:?}");
    }

    #[test]
    fn a_night_drive_across_midnight_leaves_one_trail_whichever_day_changes() {
        let minute = 60_000;
        let midnight = 19_800 * MS_PER_DAY;
        // 23:50 to 00:10, 6 km east, a fix every 2 minutes.
        let drive: Vec<MapPoint> =
            (0..=10).map(|i| point(midnight - 10 * minute + i * 2 * minute, 47.0, 8.0 + 0.008 * i as f64)).collect();
        let all = Fixture::new(&["car"]);
        all.insert(all.devices[0], &drive);
        refresh_all(&all, all.devices[0], &drive);
        // The same drive arriving in two parts, the morning first.
        let parts = Fixture::new(&["car"]);
        let (evening, morning): (Vec<MapPoint>, Vec<MapPoint>) = drive.iter().partition(|p| p.time.0 < midnight);
        parts.insert(parts.devices[0], &morning);
        refresh_all(&parts, parts.devices[0], &morning);
        parts.insert(parts.devices[0], &evening);
        refresh_all(&parts, parts.devices[0], &evening);
        assert_eq!(parts.rows(parts.devices[0]), all.rows(all.devices[0]));
        // Morning points arriving after the evening ones: the evening's line to them is redrawn.
        let late = Fixture::new(&["car"]);
        late.insert(late.devices[0], &evening);
        refresh_all(&late, late.devices[0], &evening);
        late.insert(late.devices[0], &morning);
        let outcome = refresh_all(&late, late.devices[0], &morning);
        assert_eq!(outcome.days, 2, "the evening's day is rebuilt too: {outcome:?}");
        assert_eq!(late.rows(late.devices[0]), all.rows(all.devices[0]));
    }

    #[test]
    fn change_log_entries_drive_the_refresh() {
        let fixture = Fixture::new(&["phone", "watch"]);
        let points = synthetic(5, 6);
        for &device in &fixture.devices {
            fixture.insert(device, &points);
        }
        let mut total = MapRefresh::default();
        for change in fixture.store.changes_since(polo_domain::Seq(0), 100).unwrap() {
            let outcome = refresh_change(&fixture.store, &change).unwrap();
            total.days += outcome.days;
            if !matches!(change.kind, ChangeKind::PointsInserted) {
                assert_eq!(outcome, MapRefresh::default(), "{change:?} does not touch the map");
            }
        }
        assert_eq!(total.days, 2 * utc_days(&points).len() as u64);
        let full = Fixture::new(&["phone", "watch"]);
        for &device in &full.devices {
            full.insert(device, &points);
            refresh_all(&full, device, &points);
        }
        assert_eq!(fixture.rows(fixture.devices[1]), full.rows(full.devices[1]));
        // A delete of every device's points, unbounded on both sides, in one entry.
        let seq = fixture.store.last_seq().unwrap();
        fixture.store.delete_points(&PointQuery::user(fixture.user)).unwrap();
        let change = fixture.store.changes_since(seq, 10).unwrap().pop().unwrap();
        assert_eq!((change.kind, change.device, change.first), (ChangeKind::PointsDeleted, None, None));
        let outcome = refresh_change(&fixture.store, &change).unwrap();
        assert_eq!(outcome.days_emptied, 2 * utc_days(&points).len() as u64);
        assert!(fixture.rows(fixture.devices[0]).is_empty() && fixture.rows(fixture.devices[1]).is_empty());
    }

    #[test]
    fn a_reversed_window_is_refused() {
        let fixture = Fixture::new(&["phone"]);
        let error = refresh_device(&fixture.store, fixture.user, fixture.devices[0], Timestamp(5), Timestamp(4));
        assert!(matches!(error, Err(DerivedError::Invalid(_))));
    }
}
