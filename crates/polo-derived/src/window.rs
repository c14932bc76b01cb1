//! Recomputing one device's stays and legs after its points changed, in a
//! window rather than over the whole history.
//!
//! The rule comes from `polo_timeline::incremental`: detection may restart
//! at the end of any stored stay that is a restart point and ended before
//! the change. From there the points are read in chunks of a few days; each
//! chunk's result is kept up to its own last restart point, where the next
//! chunk starts, so memory stays bounded by a chunk whatever the history.
//!
//! The window also ends early. Once detection has passed the last changed
//! instant and reaches a restart point `e` where the *stored* timeline also
//! has a stay ending at `e`, everything from `e` on would be recomputed
//! exactly as stored (detection from `e` depends only on the points from
//! `e`, which did not change), so the window is `[restart, e)`. A point
//! backfilled into 2016 therefore recomputes a few hours of 2016, not the
//! decade after it.
//!
//! A live device's window starts at the same restart point step after step
//! (the end of its last closed stay). The engine hands back the points the
//! last step read from there ([`crate::tail`]), and only what came after them
//! is read from the store.

use std::ops::ControlFlow;

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{DerivedScope, PointQuery, Store};
use polo_timeline::{Leg, LocalClock, OffsetChanges, Stay, TimelineParams, TrackPoint, ZoneLookup};

use crate::DerivedResult;
use crate::kinds::STAY;
use crate::rows::{LegRow, StayRow, decode};
use crate::tail::Tail;

/// Detection reads a day of points at a time (longer when a day holds no
/// restart point), which is also all a backfilled point costs.
const CHUNK_MS: i64 = 86_400_000;

/// The recomputed part of a device's timeline.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Window {
    /// Stored rows with keys in `[from, to)` are replaced; `None`: unbounded.
    pub from: Option<i64>,
    /// See `from`.
    pub to: Option<i64>,
    /// The new stays in the window, by start (places not yet assigned).
    pub stays: Vec<StayRow>,
    /// The new legs in the window, by start.
    pub legs: Vec<LegRow>,
    /// Points read from the store.
    pub points_read: u64,
    /// Points of the tail the caller passed in that were used instead of reading them again.
    pub points_reused: u64,
    /// The points the last chunk read (from the window's last restart point
    /// to the device's last point), for the next step to start from; `None`
    /// when the window ended before the device's last point.
    pub tail: Option<Tail>,
}

/// The device's points of `query`, without its flagged fixes ([`crate::outliers`]).
fn load(store: &dyn Store, device: DeviceId, query: &PointQuery) -> DerivedResult<Vec<TrackPoint>> {
    let flagged = crate::outliers::flagged_times(store, query.user, device, query.from, query.to)?;
    let mut points = Vec::new();
    store.scan_points(query, &mut |p| {
        if !flagged.contains(&p.fix.time.0) {
            points.push(TrackPoint::from(&p));
        }
        ControlFlow::Continue(())
    })?;
    Ok(points)
}

fn first_point_at_or_after(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: Option<Timestamp>,
) -> DerivedResult<Option<Timestamp>> {
    let mut first = None;
    store.scan_points(&PointQuery { user, device: Some(device), from, to: None }, &mut |p| {
        first = Some(p.fix.time);
        ControlFlow::Break(())
    })?;
    Ok(first)
}

/// The latest stored restart point whose end was decided strictly before `changed_from`.
fn restart_before(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    changed_from: Timestamp,
) -> DerivedResult<Option<Timestamp>> {
    let scope = DerivedScope::Device(device);
    let mut before = changed_from.0;
    loop {
        let rows = store.derived_before(user, STAY, scope, before, 16)?;
        for row in &rows {
            let stay: StayRow = decode(row)?;
            if stay.decided_at() < changed_from.0 && stay.is_restart_point() {
                return Ok(Some(Timestamp(stay.end)));
            }
        }
        match rows.last() {
            Some(oldest) if rows.len() == 16 => before = oldest.key,
            _ => return Ok(None),
        }
    }
}

/// Whether the stored timeline has a restart point exactly at `at`.
fn stored_restart_at(store: &dyn Store, user: UserId, device: DeviceId, at: Timestamp) -> DerivedResult<bool> {
    let rows = store.derived_before(user, STAY, DerivedScope::Device(device), at.0, 1)?;
    match rows.first() {
        Some(row) => {
            let stay: StayRow = decode(row)?;
            Ok(stay.end == at.0 && stay.is_restart_point())
        }
        None => Ok(false),
    }
}

/// The local clock of a chunk of points: their stated offsets, and where a
/// point states none, the zone at its position (when the engine has a zone
/// lookup). `None` when nothing is known (no offsets, no lookup): rows then
/// carry no offset and count as UTC.
fn chunk_clock(points: &[TrackPoint], zones: Option<&dyn ZoneLookup>) -> Option<OffsetChanges> {
    match zones {
        Some(zones) => Some(OffsetChanges::from_track(points, zones)),
        None if points.iter().any(|p| p.utc_offset_minutes.is_some()) => Some(OffsetChanges::from_points(points, 0)),
        None => None,
    }
}

/// The offset at `start` and the changes after it and before `end`.
fn offsets(clock: Option<&OffsetChanges>, start: Timestamp, end: Timestamp) -> (Option<i16>, Vec<(i64, i16)>) {
    match clock {
        Some(clock) => (
            Some(clock.offset_minutes_at(start)),
            clock.changes_between(start, end).iter().map(|&(at, offset)| (at.0, offset)).collect(),
        ),
        None => (None, Vec::new()),
    }
}

fn stay_row(clock: Option<&OffsetChanges>, stay: &Stay, params: &TimelineParams) -> StayRow {
    let (offset, offset_changes) = offsets(clock, stay.start, stay.end);
    StayRow { offset_changes, ..StayRow::new(stay, stay.is_visit(&params.stays), offset) }
}

fn leg_row(clock: Option<&OffsetChanges>, leg: &Leg) -> LegRow {
    let (offset, offset_changes) = offsets(clock, leg.start, leg.end);
    LegRow {
        start: leg.start.0,
        end: leg.end.0,
        points: leg.point_count,
        distance_m: leg.distance_m,
        mean_mps: leg.speed.mean_m_s,
        median_mps: leg.speed.median_m_s,
        p85_mps: leg.speed.p85_m_s,
        max_mps: leg.speed.max_m_s,
        mode: leg.mode,
        source: leg.source,
        offset,
        offset_changes,
    }
}

/// The device's points in `[from, to)`: those of `known` (the points in
/// `[known.from, known.upto)`) when it starts at `from`, and the rest read.
/// Returns the points and how many came from `known`.
fn load_after(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: Timestamp,
    to: Timestamp,
    known: Option<Tail>,
) -> DerivedResult<(Vec<TrackPoint>, usize)> {
    match known.filter(|known| known.from == from && known.upto <= to) {
        Some(known) => {
            let reused = known.points.len();
            let mut points = known.points;
            let rest = PointQuery { user, device: Some(device), from: Some(known.upto), to: Some(to) };
            points.extend(load(store, device, &rest)?);
            Ok((points, reused))
        }
        None => {
            Ok((load(store, device, &PointQuery { user, device: Some(device), from: Some(from), to: Some(to) })?, 0))
        }
    }
}

/// Recomputes the stays and legs of `device` affected by a change of its
/// points in `[changed.0, changed.1]` (`None`: the whole history). Points
/// that state no UTC offset take the one of the zone at their position from
/// `zones`, when given.
///
/// `tail` is what a former call returned as [`Window::tail`]; it is used
/// when nothing before its end changed since (`changed.0 >= tail.upto`) and
/// the window starts inside it. The caller must know that no change of the
/// points went unreported in between ([`crate::tail`]).
///
/// # Errors
/// Store failures, damaged rows, invalid parameters.
pub fn recompute(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    changed: Option<(Timestamp, Timestamp)>,
    params: &TimelineParams,
    zones: Option<&dyn ZoneLookup>,
    tail: Option<Tail>,
) -> DerivedResult<Window> {
    let restart = match changed {
        Some((from, _)) => restart_before(store, user, device, from)?,
        None => None,
    };
    let mut window = Window { from: restart.map(|t| t.0), ..Window::default() };
    let Some(last) = store.last_point(user, device)?.map(|p| p.fix.time) else {
        return Ok(window); // no points (left): the window from the restart on is empty
    };
    let Some(mut cursor) = (match restart {
        Some(at) => Some(at),
        None => first_point_at_or_after(store, user, device, None)?,
    }) else {
        return Ok(window);
    };
    // Points already read from `cursor` on: the caller's tail, or the last
    // chunk when it held no restart point.
    let mut known = tail.zip(changed).and_then(|(tail, (changed_from, _))| tail.read_from(cursor, changed_from));
    let mut span = CHUNK_MS;
    loop {
        // A chunk covers at least what is already known from its start.
        let to = Timestamp(cursor.0.saturating_add(span).max(known.as_ref().map_or(i64::MIN, |k| k.upto.0)));
        let (points, reused) = load_after(store, user, device, cursor, to, known.take())?;
        window.points_read += (points.len() - reused) as u64;
        window.points_reused += reused as u64;
        let timeline = polo_timeline::detect(&points, params)?;
        let clock = chunk_clock(&points, zones);
        let clock = clock.as_ref();
        if to > last {
            window.stays.extend(timeline.stays.iter().map(|s| stay_row(clock, s, params)));
            window.legs.extend(timeline.legs.iter().map(|l| leg_row(clock, l)));
            window.tail = Tail::of_read(cursor, points);
            return Ok(window);
        }
        let resume = timeline.resume_point(to);
        let Some(next) = resume.from.filter(|&next| next > cursor) else {
            // No restart point inside the chunk (one long stay or a long
            // gap): read a longer chunk from the same place, on from this one.
            known = Some(Tail { from: cursor, upto: to, points });
            span = span.saturating_mul(2);
            continue;
        };
        window.stays.extend(timeline.stays[..resume.kept_stays].iter().map(|s| stay_row(clock, s, params)));
        window.legs.extend(timeline.legs.iter().filter(|l| l.start < next).map(|l| leg_row(clock, l)));
        cursor = next;
        span = CHUNK_MS;
        let past_change = changed.is_some_and(|(_, changed_to)| next > changed_to);
        if past_change && stored_restart_at(store, user, device, next)? {
            window.to = Some(next.0);
            return Ok(window);
        }
    }
}
