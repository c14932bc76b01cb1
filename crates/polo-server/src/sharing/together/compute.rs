//! The work behind "who was I with": who counts as a friend here, reading
//! two users' points into the encounter engine, and turning its encounters
//! into what the caller may see.
//!
//! Nothing is stored: every answer is computed from the points on request,
//! so withdrawing a grant or deleting points hides the encounters at once,
//! and there is no table of who met whom to leak or to expire.
//!
//! What an encounter shows is the caller's own: the position is the caller's
//! fix nearest to where the two were closest, the name is the caller's stay
//! there (or the offline geocoder's town), and the UTC offsets are the
//! caller's. Of the friend it tells only that they were within D metres.

use std::ops::ControlFlow;

use polo_derived::outliers::FlaggedScan;
use polo_derived::places::PlaceBook;
use polo_derived::{Locator, views};
use polo_domain::{Coord, Fix, Timestamp, UserId};
use polo_encounters::{Encounter, Params, Sample, encounters, haversine_m};
use polo_store::{PointQuery, Store, User};
use polo_timeline::ZoneLookup;

use crate::error::ApiError;

/// How far back the search for the latest encounter steps at a time.
const STEP_MS: i64 = 31 * 86_400_000;

/// What the computation reads and names places with.
pub(crate) struct Context<'a> {
    pub store: &'a dyn Store,
    pub locator: Option<&'a dyn Locator>,
    pub zones: Option<&'a dyn ZoneLookup>,
    pub params: Params,
}

/// One encounter as the caller sees it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Met {
    pub first: Timestamp,
    pub first_offset: Option<i16>,
    pub last: Timestamp,
    pub last_offset: Option<i16>,
    pub minutes: u32,
    pub min_distance_m: f64,
    pub pairs: u64,
    /// The caller's position.
    pub coord: Coord,
    pub title: Option<String>,
}

/// The users `me` may see encounters with: those who grant `me` their
/// location and whom `me` grants theirs, both at once, by name. A grant has
/// no expiry or scope beyond existing (a grant made with a device token goes
/// when the token is revoked), so "both grants exist now" is the whole rule.
///
/// # Errors
/// Store failures.
pub(crate) fn mutual_friends(store: &dyn Store, me: &User) -> Result<Vec<User>, ApiError> {
    let mine: std::collections::BTreeSet<UserId> = store.location_grants_by(me.id)?.iter().map(|g| g.viewer).collect();
    let mut friends = Vec::new();
    for grant in store.location_grants_to(me.id)? {
        if grant.owner != me.id
            && mine.contains(&grant.owner)
            && let Some(user) = store.user_by_id(grant.owner)?
        {
            friends.push(user);
        }
    }
    friends.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(friends)
}

/// Every unflagged fix of `user` in `[from, to)` (each device's flagged
/// fixes left out as every view leaves them out), visited in time order
/// per device.
fn scan_fixes(
    store: &dyn Store,
    user: UserId,
    from: Timestamp,
    to: Timestamp,
    visit: &mut dyn FnMut(&Fix),
) -> Result<(), ApiError> {
    for device in store.list_devices(user)? {
        let mut flagged = FlaggedScan::new(store, user, device.id, Some(to));
        let mut failure = None;
        let query = PointQuery { user, device: Some(device.id), from: Some(from), to: Some(to) };
        store.scan_points(&query, &mut |point| match flagged.contains(point.fix.time) {
            Ok(true) => ControlFlow::Continue(()),
            Ok(false) => {
                visit(&point.fix);
                ControlFlow::Continue(())
            }
            Err(e) => {
                failure = Some(e);
                ControlFlow::Break(())
            }
        })?;
        if let Some(e) = failure {
            return Err(e.into());
        }
    }
    Ok(())
}

/// `user`'s fixes in `[from, to)` as the engine's 16-byte samples, appended to `out`.
pub(crate) fn samples(
    store: &dyn Store,
    user: UserId,
    from: Timestamp,
    to: Timestamp,
    out: &mut Vec<Sample>,
) -> Result<(), ApiError> {
    scan_fixes(store, user, from, to, &mut |fix| out.push(Sample { user, at: fix.time, coord: fix.coord }))
}

/// The encounters of the owner of `mine` with `friend` in `[from, to)`, in time order.
pub(crate) fn with_friend(
    ctx: &Context<'_>,
    mine: &[Sample],
    friend: UserId,
    from: Timestamp,
    to: Timestamp,
) -> Result<Vec<Encounter>, ApiError> {
    let mut all = mine.to_vec();
    let own = all.len();
    samples(ctx.store, friend, from, to, &mut all)?;
    if own == 0 || all.len() == own {
        return Ok(Vec::new());
    }
    let mut found = encounters(&all, &ctx.params);
    found.sort_by_key(|e| (e.first, e.last));
    Ok(found)
}

/// The newest encounter of `me` with `friend` at any time: the newest of
/// `in_range` (found in a range ending at `range_to`) unless a later one
/// exists after the range; without one in the range, the search steps back
/// a month at a time from the two users' latest fix to the later of their
/// first fixes (before that they cannot have met). The cost is bounded by
/// the two histories; with an encounter in the range only the time after
/// the range is read.
pub(crate) fn latest(
    ctx: &Context<'_>,
    me: UserId,
    friend: UserId,
    in_range: Option<&Encounter>,
    range_to: Timestamp,
) -> Result<Option<Encounter>, ApiError> {
    let (Some(mine), Some(theirs)) = (history(ctx.store, me)?, history(ctx.store, friend)?) else {
        return Ok(in_range.copied());
    };
    let start = mine.0.max(theirs.0);
    let mut end = Timestamp(mine.1.0.max(theirs.1.0).saturating_add(1));
    let stop = if in_range.is_some() { range_to.max(start) } else { start };
    while end > stop {
        let from = Timestamp(end.0.saturating_sub(STEP_MS).max(stop.0));
        let mut own = Vec::new();
        samples(ctx.store, me, from, end, &mut own)?;
        if let Some(last) = with_friend(ctx, &own, friend, from, end)?.into_iter().max_by_key(|e| e.last) {
            return Ok(Some(last));
        }
        end = from;
    }
    Ok(in_range.copied())
}

/// The first and the latest fix of `user` over all devices (flags aside: a
/// bound, not an answer).
fn history(store: &dyn Store, user: UserId) -> Result<Option<(Timestamp, Timestamp)>, ApiError> {
    let mut span: Option<(Timestamp, Timestamp)> = None;
    for device in store.list_devices(user)? {
        let Some(last) = store.last_point(user, device.id)? else { continue };
        let mut first = last.fix.time;
        store.scan_points(&PointQuery { user, device: Some(device.id), from: None, to: None }, &mut |p| {
            first = p.fix.time;
            ControlFlow::Break(())
        })?;
        span = Some(match span {
            Some((a, b)) => (a.min(first), b.max(last.fix.time)),
            None => (first, last.fix.time),
        });
    }
    Ok(span)
}

/// A stay of the caller, with the name the day view gives it.
struct StayTitle {
    start: i64,
    end: i64,
    title: Option<String>,
}

/// The caller's stays overlapping `[from, to)` on every device.
fn stays(store: &dyn Store, me: UserId, from: Timestamp, to: Timestamp) -> Result<Vec<StayTitle>, ApiError> {
    let book = PlaceBook::load(store, me)?;
    let mut out = Vec::new();
    for device in store.list_devices(me)? {
        let found = views::entries(store, me, device.id, from, to, &book)?;
        out.extend(found.stays.iter().map(|s| StayTitle { start: s.row.start, end: s.row.end, title: s.title() }));
    }
    Ok(out)
}

/// The caller's view of `found` (encounters of `me`): the caller's own
/// position, offsets and the name of the caller's stay there.
pub(crate) fn describe(ctx: &Context<'_>, me: UserId, found: &[Encounter]) -> Result<Vec<Met>, ApiError> {
    let (Some(from), Some(to)) = (found.iter().map(|e| e.first).min(), found.iter().map(|e| e.last).max()) else {
        return Ok(Vec::new());
    };
    let stays = stays(ctx.store, me, from, Timestamp(to.0.saturating_add(1)))?;
    found.iter().map(|e| describe_one(ctx, me, e, &stays)).collect()
}

fn describe_one(ctx: &Context<'_>, me: UserId, e: &Encounter, stays: &[StayTitle]) -> Result<Met, ApiError> {
    // The caller's fixes during the encounter: every pair has one, so there is at least one.
    let mut first: Option<(Timestamp, Option<i16>)> = None;
    let mut last: Option<(Timestamp, Option<i16>)> = None;
    let mut nearest: Option<(f64, Coord)> = None;
    scan_fixes(ctx.store, me, e.first, Timestamp(e.last.0.saturating_add(1)), &mut |fix| {
        let offset = offset_of(ctx.zones, fix);
        if first.is_none_or(|(t, _)| fix.time < t) {
            first = Some((fix.time, offset));
        }
        if last.is_none_or(|(t, _)| fix.time > t) {
            last = Some((fix.time, offset));
        }
        let d = haversine_m(fix.coord, e.place);
        if nearest.is_none_or(|(best, _)| d < best) {
            nearest = Some((d, fix.coord));
        }
    })?;
    let coord = nearest.map_or(e.place, |(_, c)| c);
    let title = stays
        .iter()
        .filter_map(|s| {
            let overlap = s.end.min(e.last.0 + 1) - s.start.max(e.first.0);
            (overlap > 0).then_some((overlap, s))
        })
        .max_by_key(|(overlap, s)| (*overlap, std::cmp::Reverse(s.start)))
        .and_then(|(_, s)| s.title.clone())
        .or_else(|| {
            let locality = ctx.locator?.locate(coord);
            polo_derived::naming::best_name(None, None, Some(&locality))
        });
    Ok(Met {
        first: e.first,
        first_offset: first.and_then(|(_, o)| o),
        last: e.last,
        last_offset: last.and_then(|(_, o)| o),
        minutes: e.minutes,
        min_distance_m: e.min_distance_m,
        pairs: e.pairs,
        coord,
        title,
    })
}

/// The fix's UTC offset, or its time zone's there and then.
fn offset_of(zones: Option<&dyn ZoneLookup>, fix: &Fix) -> Option<i16> {
    fix.utc_offset_minutes.or_else(|| zones.map(|z| z.zone_offset_minutes(z.zone_at(fix.coord), fix.time)))
}
