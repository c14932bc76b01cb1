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
//! If even the coarsest level is over the budget (many devices, decades),
//! each segment is thinned to every k-th point (keeping its ends) and, as a
//! last resort, the latest segments are left out; the answer says so
//! (`thinned`, `truncated`), so a client can ask for a shorter range.

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{DerivedRange, DerivedScope, Store};

use super::calendar::{clamp_ms, day_of};
use super::track::{LEVEL_ZOOMS, LevelCount, MapPoint, connected, decode_counts, decode_track, level_tolerance};
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
    if to <= from {
        return Err(DerivedError::Invalid(format!("the range must end after it starts ({from} to {to})")));
    }
    if max_points == 0 {
        return Err(DerivedError::Invalid("max_points must be at least 1".to_owned()));
    }
    let budget = max_points as u64;
    let days = day_of(from.0)..day_of(clamp_ms(to.0 - 1)) + 1;
    let mut totals = [LevelCount::default(); MAP_LEVELS as usize];
    for &device in devices {
        let range =
            DerivedRange { kind: MAP_COUNTS, scope: DerivedScope::Device(device), from: days.start, to: days.end };
        for row in store.derived_range(user, &range)? {
            let counts = decode_counts(&row.value, MAP_COUNTS, row.key)?;
            for (total, level) in totals.iter_mut().zip(counts.levels) {
                *total += level;
            }
        }
    }
    let coarsest = usize::from(MAP_LEVELS) - 1;
    let level = (0..=coarsest).find(|&l| cost(totals[l]) <= budget).unwrap_or(coarsest);
    let tolerance = level_tolerance(level);
    let kind = map_track(u16::try_from(level).unwrap_or(MAP_LEVELS - 1));
    let mut segments: Vec<OverviewSegment> = Vec::new();
    for &device in devices {
        let range = DerivedRange { kind, scope: DerivedScope::Device(device), from: days.start, to: days.end };
        let first_of_device = segments.len();
        for row in store.derived_range(user, &range)? {
            for segment in decode_track(&row.value, kind, row.key)? {
                let clipped: Vec<MapPoint> = segment.into_iter().filter(|p| p.time >= from && p.time < to).collect();
                if clipped.is_empty() {
                    continue;
                }
                match segments[first_of_device..].last_mut() {
                    // Across midnight, the line goes on if the track does.
                    Some(previous)
                        if previous.points.last().is_some_and(|last| connected(last, &clipped[0], tolerance)) =>
                    {
                        previous.points.extend(clipped);
                    }
                    _ => segments.push(OverviewSegment { device, points: clipped }),
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
