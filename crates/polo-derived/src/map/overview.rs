//! The map overview of a time range: the simplified tracks of one or more
//! devices, at the finest level that fits a point budget.
//!
//! A lookup, not a computation: the per-day counts (`MAP_COUNTS`) of the
//! range are summed per level, the finest level whose *cost* fits
//! `max_points` is chosen (a point costs 1, a segment [`SEGMENT_COST`], for
//! the few dozen bytes of JSON a segment adds), and only that level's day
//! tracks are read, clipped to the range and joined across midnight where
//! the track continues (see [`super::track`]). A ten-year range of a
//! 5-million-point history reads ~3 650 small count rows and ~3 650
//! coarse-track rows.
//!
//! Within a [`Viewport`] ([`overview_within`]), the coarsest level of every
//! day is read first: days whose coarse track never comes near the view are
//! left out, each other day's counts are weighed by the share of its coarse
//! points inside the view, and the chosen level's lines are cut to the view.
//! Zoomed in on one town, a decade then draws at street detail.
//!
//! If even the coarsest level is over the budget (many devices, decades),
//! each segment is thinned to every k-th point (keeping its ends) and, as a
//! last resort, the latest segments are left out; the answer says so
//! (`thinned`, `truncated`), so a client can ask for a shorter range.

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{DerivedRange, DerivedScope, Store};

use super::blocks::{day_keys, key_day};
use super::calendar::{clamp_ms, day_of};
use super::track::{LEVEL_ZOOMS, LevelCount, MapPoint, connected, decode_counts, decode_track, level_tolerance};
use super::viewport::Viewport;
use crate::kinds::{MAP_COUNTS, MAP_LEVELS, map_track};
use crate::{DerivedError, DerivedResult};

/// What a segment costs against the point budget: its JSON framing is
/// about as long as three points.
pub const SEGMENT_COST: u64 = 3;

/// One line to draw: consecutive points of one device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OverviewSegment {
    /// Whose.
    pub device: DeviceId,
    /// At least one point, in time order.
    pub points: Vec<MapPoint>,
}

/// The overview of a range.
#[derive(Debug, Clone, PartialEq)]
pub struct Overview {
    /// The level used (0 is the most detailed).
    pub level: usize,
    /// The web-mercator zoom the level is simplified for: it is exact (to
    /// half a pixel) up to this zoom.
    pub zoom: u8,
    /// Per level, the points of the whole UTC days the range touches.
    pub level_points: [u64; MAP_LEVELS as usize],
    /// Points returned.
    pub points: usize,
    /// Segments were thinned to fit the budget.
    pub thinned: bool,
    /// Segments were left out to fit the budget (the latest ones).
    pub truncated: bool,
    /// The lines, by start time (then device).
    pub segments: Vec<OverviewSegment>,
}

fn cost(count: LevelCount) -> u64 {
    count.points + SEGMENT_COST * count.segments
}

/// The overview of `devices` (all of them `user`'s) in `[from, to)`, at the
/// finest level whose points and segments cost at most `max_points`.
///
/// # Errors
/// [`DerivedError::Invalid`] for an empty range or a zero budget; store
/// failures and corrupt rows.
pub fn overview(
    store: &dyn Store,
    user: UserId,
    devices: &[DeviceId],
    from: Timestamp,
    to: Timestamp,
    max_points: usize,
) -> DerivedResult<Overview> {
    overview_within(store, user, devices, from, to, max_points, None)
}

/// How far beyond the view lines are still drawn, as a share of its size:
/// panning a little shows no cut-off ends.
const VIEW_MARGIN: f64 = 0.25;

/// Each device's days and how much of each counts, within a view.
type DayWeights = Vec<(DeviceId, DayWeightList)>;
/// One device's days and their weights, ascending.
type DayWeightList = Vec<(i64, f64)>;

/// [`overview`], only inside `view` when one is given: days whose coarsest
/// track does not come near it are not read, the level is chosen by the
/// share of each day's coarse points inside it, and lines are cut where they
/// leave it (a little beyond its edge).
///
/// # Errors
/// As [`overview`].
pub fn overview_within(
    store: &dyn Store,
    user: UserId,
    devices: &[DeviceId],
    from: Timestamp,
    to: Timestamp,
    max_points: usize,
    view: Option<&Viewport>,
) -> DerivedResult<Overview> {
    if to <= from {
        return Err(DerivedError::Invalid(format!("the range must end after it starts ({from} to {to})")));
    }
    if max_points == 0 {
        return Err(DerivedError::Invalid("max_points must be at least 1".to_owned()));
    }
    let budget = max_points as u64;
    let days = day_of(from.0)..day_of(clamp_ms(to.0 - 1)) + 1;
    let view = view.map(|v| v.grown(VIEW_MARGIN));
    let weights = match &view {
        Some(view) => Some(days_in_view(store, user, devices, &days, from, to, view)?),
        None => None,
    };
    let mut totals = [LevelCount::default(); MAP_LEVELS as usize];
    let mut weighted = [0.0f64; MAP_LEVELS as usize];
    for &device in devices {
        let range =
            DerivedRange { kind: MAP_COUNTS, scope: DerivedScope::Device(device), from: days.start, to: days.end };
        let device_weights = weights.as_ref().and_then(|w| w.iter().find(|(d, _)| *d == device)).map(|(_, w)| w);
        for row in store.derived_range(user, &range)? {
            let share = match device_weights {
                None => 1.0,
                Some(list) => match list.binary_search_by_key(&row.key, |&(day, _)| day) {
                    Ok(index) => list[index].1,
                    Err(_) => continue,
                },
            };
            let counts = decode_counts(&row.value, MAP_COUNTS, row.key)?;
            for ((total, weight), level) in totals.iter_mut().zip(weighted.iter_mut()).zip(counts.levels) {
                *total += level;
                #[allow(clippy::cast_precision_loss)]
                let day_cost = cost(level) as f64;
                *weight += day_cost * share;
            }
        }
    }
    let coarsest = usize::from(MAP_LEVELS) - 1;
    #[allow(clippy::cast_precision_loss)]
    let fits =
        |level: usize| if weights.is_some() { weighted[level] <= budget as f64 } else { cost(totals[level]) <= budget };
    let level = (0..=coarsest).find(|&l| fits(l)).unwrap_or(coarsest);
    let tolerance = level_tolerance(level);
    let kind = map_track(u16::try_from(level).unwrap_or(MAP_LEVELS - 1));
    let mut segments: Vec<OverviewSegment> = Vec::new();
    for &device in devices {
        let runs = match &weights {
            None => vec![days.clone()],
            Some(weights) => {
                let listed = weights.iter().find(|(d, _)| *d == device).map(|(_, w)| w.as_slice()).unwrap_or_default();
                day_runs(listed.iter().map(|&(day, _)| day))
            }
        };
        let first_of_device = segments.len();
        for run in runs {
            let keys = day_keys(run);
            let range = DerivedRange { kind, scope: DerivedScope::Device(device), from: keys.start, to: keys.end };
            for row in store.derived_range(user, &range)? {
                let block = decode_track(&row.value, kind, row.key)?;
                for (position, segment) in block.segments.into_iter().enumerate() {
                    // It goes on from the previous block's last segment, whose last point it repeats.
                    let goes_on = block.continues && position == 0;
                    let clipped: Vec<MapPoint> =
                        segment.into_iter().filter(|p| p.time >= from && p.time < to).collect();
                    let pieces = match &view {
                        None => vec![clipped],
                        Some(view) => view.clip(&clipped),
                    };
                    for (index, piece) in pieces.into_iter().enumerate() {
                        if piece.is_empty() {
                            continue;
                        }
                        match segments[first_of_device..].last_mut() {
                            // A segment cut between two blocks is one line again,
                            // where what was drawn of it reaches the cut.
                            Some(previous) if goes_on && index == 0 && previous.points.last() == piece.first() => {
                                previous.points.extend(piece.into_iter().skip(1));
                            }
                            // Across midnight, the line goes on if the track does (within a
                            // view, only by a step through it: a piece cut off by its edge
                            // never joins the one before it).
                            Some(previous)
                                if !goes_on
                                    && index == 0
                                    && previous.points.last().is_some_and(|last| {
                                        connected(last, &piece[0], tolerance)
                                            && view.as_ref().is_none_or(|v| v.may_cross(last, &piece[0]))
                                    }) =>
                            {
                                previous.points.extend(piece);
                            }
                            _ => segments.push(OverviewSegment { device, points: piece }),
                        }
                    }
                }
            }
        }
    }
    segments.sort_by_key(|s| (s.points[0].time, s.device));
    let (thinned, truncated) = fit(&mut segments, budget);
    Ok(Overview {
        level,
        zoom: LEVEL_ZOOMS[level],
        level_points: totals.map(|t| t.points),
        points: segments.iter().map(|s| s.points.len()).sum(),
        thinned,
        truncated,
        segments,
    })
}

/// Per device, the days (ascending) whose coarsest track comes near `view`
/// within `[from, to)`, each with the share of that track inside it. The
/// true track lies within the coarsest level's tolerance of its simplified
/// line, so the view is padded by that much: no day with a fix inside the
/// view is missed.
fn days_in_view(
    store: &dyn Store,
    user: UserId,
    devices: &[DeviceId],
    days: &std::ops::Range<i64>,
    from: Timestamp,
    to: Timestamp,
    view: &Viewport,
) -> DerivedResult<DayWeights> {
    let coarsest = MAP_LEVELS - 1;
    let kind = map_track(coarsest);
    // World units to degrees: the world is 360° wide, and a mercator unit is
    // at least as many degrees of latitude as of longitude nowhere.
    let padded = view.padded(level_tolerance(usize::from(coarsest)) * 360.0);
    let mut out = Vec::with_capacity(devices.len());
    for &device in devices {
        let keys = day_keys(days.clone());
        let range = DerivedRange { kind, scope: DerivedScope::Device(device), from: keys.start, to: keys.end };
        let mut weights = Vec::new();
        // The day being summed over its blocks: its share of segments inside, their number, whether any touched.
        let mut current: Option<(i64, f64, u32, bool)> = None;
        let close = |day: Option<(i64, f64, u32, bool)>, weights: &mut DayWeightList| {
            if let Some((day, share, segments, true)) = day {
                // At least a little: a day that only passes through still has its fixes there.
                weights.push((day, (share / f64::from(segments.max(1))).max(0.01)));
            }
        };
        for row in store.derived_range(user, &range)? {
            let day = key_day(row.key);
            if current.is_some_and(|(d, ..)| d != day) {
                close(current.take(), &mut weights);
            }
            let (_, share, segments, touched) = current.get_or_insert((day, 0.0, 0, false));
            for segment in decode_track(&row.value, kind, row.key)?.segments {
                let segment: Vec<MapPoint> = segment.into_iter().filter(|p| p.time >= from && p.time < to).collect();
                if segment.is_empty() {
                    continue;
                }
                *segments += 1;
                *share += padded.share_inside(&segment);
                *touched |= padded.touches(&segment);
            }
        }
        close(current, &mut weights);
        out.push((device, weights));
    }
    Ok(out)
}

/// Ascending days as runs of consecutive days.
fn day_runs(days: impl Iterator<Item = i64>) -> Vec<std::ops::Range<i64>> {
    let mut runs: Vec<std::ops::Range<i64>> = Vec::new();
    for day in days {
        match runs.last_mut() {
            Some(run) if run.end == day => run.end = day + 1,
            _ => runs.push(day..day + 1),
        }
    }
    runs
}

/// Thins, then truncates, `segments` to cost at most `budget`.
fn fit(segments: &mut Vec<OverviewSegment>, budget: u64) -> (bool, bool) {
    let points: u64 = segments.iter().map(|s| s.points.len() as u64).sum();
    let framing = SEGMENT_COST * segments.len() as u64;
    if points + framing <= budget {
        return (false, false);
    }
    let mut thinned = false;
    if budget > framing {
        let stride = usize::try_from(points.div_ceil(budget - framing)).unwrap_or(usize::MAX).max(2);
        for segment in segments.iter_mut() {
            let last = segment.points.len() - 1;
            let mut index = 0;
            segment.points.retain(|_| {
                let keep = index % stride == 0 || index == last;
                index += 1;
                keep
            });
        }
        thinned = true;
    }
    let mut spent = 0u64;
    let fits = segments
        .iter()
        .position(|s| {
            spent += SEGMENT_COST + s.points.len() as u64;
            spent > budget
        })
        .unwrap_or(segments.len());
    let truncated = fits < segments.len();
    segments.truncate(fits);
    (thinned, truncated)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::map::calendar::day_start;
    use crate::map::refresh_device;
    use crate::map::test_support::{Fixture, synthetic};
    use crate::map::track::{DayCounts, decode_counts};

    /// A fixture with `days` of synthetic points per device, refreshed.
    fn fixture(devices: &[&str], days: u32) -> (Fixture, Vec<Vec<MapPoint>>) {
        let fixture = Fixture::new(devices);
        let mut tracks = Vec::new();
        for (i, &device) in fixture.devices.iter().enumerate() {
            let points = synthetic(2 + i as u64 * 40, days);
            fixture.insert(device, &points);
            refresh_device(&fixture.store, fixture.user, device, points[0].time, points[points.len() - 1].time)
                .unwrap();
            tracks.push(points);
        }
        (fixture, tracks)
    }

    fn whole_days(points: &[MapPoint]) -> (Timestamp, Timestamp) {
        (
            Timestamp(day_start(day_of(points[0].time.0))),
            Timestamp(day_start(day_of(points[points.len() - 1].time.0) + 1)),
        )
    }

    fn counts(fixture: &Fixture, device: DeviceId) -> Vec<DayCounts> {
        let range = DerivedRange::all(MAP_COUNTS, DerivedScope::Device(device));
        let rows = fixture.store.derived_range(fixture.user, &range).unwrap();
        rows.iter().map(|row| decode_counts(&row.value, MAP_COUNTS, row.key).unwrap()).collect()
    }

    /// Every point a level stores for `device` on `days`.
    fn stored_level(fixture: &Fixture, device: DeviceId, level: usize, days: std::ops::Range<i64>) -> Vec<MapPoint> {
        let level = u16::try_from(level).unwrap();
        days.flat_map(|day| fixture.track(level, device, day).into_iter().flatten()).collect()
    }

    fn cost_of(counts: &[DayCounts], level: usize) -> u64 {
        counts.iter().map(|c| c.levels[level].points + SEGMENT_COST * c.levels[level].segments).sum()
    }

    /// Lines are drawn exactly where the raw track has no gap at the level's resolution: between
    /// consecutive points of a segment the raw track is connected, between consecutive segments of a
    /// device it is not.
    fn check_lines(overview: &Overview, fixture: &Fixture, tracks: &[Vec<MapPoint>]) {
        let tolerance = level_tolerance(overview.level);
        let unbroken = |device: DeviceId, a: &MapPoint, b: &MapPoint| {
            let raw = &tracks[fixture.devices.iter().position(|&d| d == device).unwrap()];
            let (i, j) = (
                raw.binary_search_by_key(&a.time, |p| p.time).unwrap(),
                raw.binary_search_by_key(&b.time, |p| p.time).unwrap(),
            );
            assert!(i < j);
            raw[i..=j].windows(2).all(|w| connected(&w[0], &w[1], tolerance))
        };
        for (i, segment) in overview.segments.iter().enumerate() {
            assert!(segment.points.windows(2).all(|w| unbroken(segment.device, &w[0], &w[1])), "a line across a gap");
            if let Some(next) = overview.segments[i + 1..].iter().find(|b| b.device == segment.device) {
                assert!(
                    !unbroken(segment.device, segment.points.last().unwrap(), &next.points[0]),
                    "segments should have been joined"
                );
            }
        }
    }

    #[test]
    fn the_finest_level_that_fits_the_budget_is_chosen() {
        let (fixture, tracks) = fixture(&["phone"], 30);
        let device = fixture.devices[0];
        let (from, to) = whole_days(&tracks[0]);
        let counts = counts(&fixture, device);
        let costs: Vec<u64> = (0..4).map(|level| cost_of(&counts, level)).collect();
        assert!(costs.windows(2).all(|w| w[0] > w[1]), "{costs:?}");
        for level in 0..4 {
            let budget = usize::try_from(costs[level]).unwrap();
            let view = overview(&fixture.store, fixture.user, &[device], from, to, budget).unwrap();
            assert_eq!(view.level, level, "a budget of exactly level {level}'s cost");
            assert_eq!(view.zoom, LEVEL_ZOOMS[level]);
            assert!(!view.thinned && !view.truncated);
            let stored: u64 = counts.iter().map(|c| c.levels[level].points).sum();
            assert_eq!(view.points as u64, stored, "every point of the level, joined into fewer segments");
            assert_eq!(view.level_points[level], stored);
            check_lines(&view, &fixture, &tracks);
            if level < 3 {
                let tighter = overview(&fixture.store, fixture.user, &[device], from, to, budget - 1).unwrap();
                assert_eq!(tighter.level, level + 1);
            }
        }
        let everything = overview(&fixture.store, fixture.user, &[device], from, to, usize::MAX).unwrap();
        assert_eq!(everything.level, 0);
        let day_two = Timestamp(from.0 + 86_400_000);
        let day_one =
            overview(&fixture.store, fixture.user, &[device], day_two, Timestamp(day_two.0 + 86_400_000), 50_000)
                .unwrap();
        assert_eq!(day_one.level, 0);
        assert!(day_one.points > 300, "a day at level 0 is drawn point for point: {}", day_one.points);
    }

    #[test]
    fn ranges_are_clipped_and_lines_continue_across_midnight() {
        let (fixture, tracks) = fixture(&["phone"], 12);
        let device = fixture.devices[0];
        let first_day = day_of(tracks[0][0].time.0);
        let (from, to) =
            (Timestamp(day_start(first_day + 3) + 43_200_000), Timestamp(day_start(first_day + 8) + 43_200_000));
        let mut levels = Vec::new();
        for budget in [1_000_000, 2_000, 200] {
            let view = overview(&fixture.store, fixture.user, &[device], from, to, budget).unwrap();
            let points: Vec<&MapPoint> = view.segments.iter().flat_map(|s| &s.points).collect();
            assert!(points.iter().all(|p| p.time >= from && p.time < to));
            // Clipping keeps the level's own points inside the range, and all of them.
            let level: Vec<MapPoint> = stored_level(&fixture, device, view.level, first_day..first_day + 12)
                .into_iter()
                .filter(|p| p.time >= from && p.time < to)
                .collect();
            assert_eq!(points.into_iter().copied().collect::<Vec<_>>(), level, "budget {budget}");
            check_lines(&view, &fixture, &tracks);
            if view.level >= 2 {
                // A person asleep at home at midnight: at coarse levels the five days are few lines, not one per day.
                assert!(view.segments.len() < 5, "level {}: {} segments", view.level, view.segments.len());
            }
            levels.push(view.level);
        }
        assert_eq!(levels, [0, 1, 2]);
        let empty = overview(&fixture.store, fixture.user, &[device], Timestamp(0), Timestamp(1_000), 10).unwrap();
        assert_eq!((empty.level, empty.points, empty.segments.len()), (0, 0, 0));
    }

    #[test]
    fn devices_share_the_budget_and_are_drawn_in_time_order() {
        let (fixture, tracks) = fixture(&["phone", "watch"], 10);
        let (from, to) = whole_days(&tracks[0]);
        let both = overview(&fixture.store, fixture.user, &fixture.devices, from, to, 1_000_000).unwrap();
        let alone = overview(&fixture.store, fixture.user, &fixture.devices[..1], from, to, 1_000_000).unwrap();
        assert!(both.segments.iter().any(|s| s.device == fixture.devices[1]));
        assert!(alone.segments.iter().all(|s| s.device == fixture.devices[0]));
        assert!(both.level_points[0] > alone.level_points[0]);
        assert!(both.segments.windows(2).all(|w| w[0].points[0].time <= w[1].points[0].time));
        // Another user's device ids show nothing: every read is scoped to the user.
        let stranger = fixture.store.create_user("stranger", "x", false).unwrap().id;
        let none = overview(&fixture.store, stranger, &fixture.devices, from, to, 1_000_000).unwrap();
        assert_eq!((none.points, none.level_points), (0, [0; 4]));
    }

    #[test]
    fn over_the_budget_at_the_coarsest_level_it_is_thinned_then_truncated() {
        let (fixture, tracks) = fixture(&["phone", "watch"], 20);
        let (from, to) = whole_days(&tracks[0]);
        let coarsest = overview(&fixture.store, fixture.user, &fixture.devices, from, to, 1).unwrap();
        assert!(coarsest.truncated && coarsest.segments.is_empty(), "one point's budget cannot hold a segment");
        let full = overview(&fixture.store, fixture.user, &fixture.devices, from, to, 1_000_000).unwrap();
        let level3 = overview(&fixture.store, fixture.user, &fixture.devices, from, to, 2).unwrap();
        assert_eq!(level3.level, 3);
        let cost = |view: &Overview| view.points as u64 + SEGMENT_COST * view.segments.len() as u64;
        let natural = overview(
            &fixture.store,
            fixture.user,
            &fixture.devices,
            from,
            to,
            usize::try_from(full.level_points[3] * 2).unwrap(),
        )
        .unwrap();
        assert_eq!(natural.level, 3);
        let budget = cost(&natural) * 2 / 3;
        let thinned =
            overview(&fixture.store, fixture.user, &fixture.devices, from, to, usize::try_from(budget).unwrap())
                .unwrap();
        assert!(thinned.thinned && cost(&thinned) <= budget, "{} > {budget}", cost(&thinned));
        assert_eq!(thinned.segments.len(), natural.segments.len(), "thinning keeps every segment");
        for (thin, whole) in thinned.segments.iter().zip(&natural.segments) {
            assert_eq!((thin.points.first(), thin.points.last()), (whole.points.first(), whole.points.last()));
        }
        let tight = SEGMENT_COST * natural.segments.len() as u64 / 2;
        let truncated =
            overview(&fixture.store, fixture.user, &fixture.devices, from, to, usize::try_from(tight).unwrap())
                .unwrap();
        assert!(truncated.truncated && cost(&truncated) <= tight);
        assert_eq!(
            truncated.segments[..],
            natural.segments[..truncated.segments.len()]
                .iter()
                .map(|s| OverviewSegment { device: s.device, points: vec![s.points[0], *s.points.last().unwrap()] })
                .collect::<Vec<_>>()[..]
        );
    }

    #[test]
    fn a_view_refines_the_level_and_cuts_lines_to_it() {
        let (fixture, tracks) = fixture(&["phone"], 30);
        let device = fixture.devices[0];
        let track = &tracks[0];
        let (from, to) = whole_days(track);
        let counts = counts(&fixture, device);
        let budget = usize::try_from(cost_of(&counts, 2)).unwrap();
        let whole = overview(&fixture.store, fixture.user, &[device], from, to, budget).unwrap();
        assert_eq!(whole.level, 2);
        // A small view around the point farthest from where the track mostly is: an excursion.
        let mut lats: Vec<f64> = track.iter().map(|p| p.coord.lat()).collect();
        let mut lons: Vec<f64> = track.iter().map(|p| p.coord.lon()).collect();
        lats.sort_by(f64::total_cmp);
        lons.sort_by(f64::total_cmp);
        let (mid_lat, mid_lon) = (lats[lats.len() / 2], lons[lons.len() / 2]);
        let far = track
            .iter()
            .max_by(|a, b| {
                let d = |p: &MapPoint| (p.coord.lat() - mid_lat).hypot(p.coord.lon() - mid_lon);
                d(a).total_cmp(&d(b))
            })
            .unwrap();
        let (height, width) = ((lats[lats.len() - 1] - lats[0]) / 80.0, (lons[lons.len() - 1] - lons[0]) / 80.0);
        let view = Viewport::new(
            far.coord.lon() - width,
            far.coord.lat() - height,
            far.coord.lon() + width,
            far.coord.lat() + height,
        )
        .unwrap();
        let zoomed = overview_within(&fixture.store, fixture.user, &[device], from, to, budget, Some(&view)).unwrap();
        assert!(zoomed.level < whole.level, "zoomed in: level {} (the whole map: {})", zoomed.level, whole.level);
        assert!(zoomed.points > 0 && !zoomed.thinned && !zoomed.truncated);
        // Every line is in the view (with its margin), and every level point inside the view is drawn.
        let margin = view.grown(VIEW_MARGIN);
        for segment in &zoomed.segments {
            assert!(segment.points.windows(2).all(|w| margin.may_cross(&w[0], &w[1])), "a step outside the view");
        }
        let drawn: Vec<MapPoint> = zoomed.segments.iter().flat_map(|s| s.points.iter().copied()).collect();
        let level = overview(&fixture.store, fixture.user, &[device], from, to, usize::MAX).unwrap();
        assert_eq!(level.level, 0);
        let first_day = day_of(track[0].time.0);
        let inside: Vec<MapPoint> = stored_level(&fixture, device, zoomed.level, first_day..first_day + 31)
            .into_iter()
            .filter(|p| view.contains(p))
            .collect();
        assert!(!inside.is_empty());
        assert!(inside.iter().all(|p| drawn.contains(p)), "a point inside the view is missing");
        // A view where the track never goes draws nothing.
        let nowhere = Viewport::new(-60.0, -50.0, -59.0, -49.0).unwrap();
        let empty = overview_within(&fixture.store, fixture.user, &[device], from, to, budget, Some(&nowhere)).unwrap();
        assert_eq!((empty.points, empty.segments.len()), (0, 0));
    }

    #[test]
    fn bad_arguments_are_refused() {
        let (fixture, _) = fixture(&["phone"], 1);
        let call = |from, to, max| {
            overview(&fixture.store, fixture.user, &fixture.devices, Timestamp(from), Timestamp(to), max)
        };
        assert!(matches!(call(5, 5, 10), Err(DerivedError::Invalid(_))));
        assert!(matches!(call(6, 5, 10), Err(DerivedError::Invalid(_))));
        assert!(matches!(call(0, 5, 0), Err(DerivedError::Invalid(_))));
        assert!(call(i64::MIN, i64::MAX, 10).is_ok(), "any instants are a valid range");
    }
}
