//! Per-day statistics: maintained per device and local day whenever the
//! stays and legs of a window change, and aggregated per day, month or
//! year on request.
//!
//! Local days follow the UTC offsets the points stated (carried on each
//! stay and leg), so a trip across time zones or a DST night splits where
//! the user's own clock did. Intervals a source carried (Google visits and
//! activity segments, Overland trips) count where the device has no stay or
//! leg of its own at that time.

use std::collections::{BTreeMap, BTreeSet};

use polo_domain::{DeviceId, IntervalKind, Motion, Timestamp, UserId};
use polo_store::{DerivedBatch, DerivedRange, DerivedRow, DerivedScope, Store};
use polo_timeline::clock::DayBoundaries;
use polo_timeline::daily::split_by_day;
use polo_timeline::{Leg, LegSource, LocalDays, OffsetChanges, SpeedProfile, Stay, TransportMode, daily_stats};

use crate::DerivedResult;
use crate::kinds::{DAY_STATS, LEG, MODE_EDIT, STAY};
use crate::places::PlaceBook;
use crate::rows::{DayRow, LegRow, ModeEdit, StayRow, decode, encode};

pub(crate) const DAY_MS: i64 = 86_400_000;
/// The widest UTC offset, either way.
pub(crate) const MAX_OFFSET_MS: i64 = 14 * 3_600_000;

/// Rows of `kind` overlapping `[from, to)` by start key, plus the one that
/// started before `from` (it may reach into the range).
pub(crate) fn rows_around<T: serde::de::DeserializeOwned>(
    store: &dyn Store,
    user: UserId,
    kind: polo_store::DerivedKind,
    scope: DerivedScope,
    from: i64,
    to: i64,
) -> DerivedResult<Vec<T>> {
    let mut rows: Vec<DerivedRow> = store.derived_before(user, kind, scope, from, 1)?;
    rows.extend(store.derived_range(user, &DerivedRange { kind, scope, from, to })?);
    rows.iter().map(decode).collect()
}

/// The user's mode corrections with keys (leg starts) in `[from, to)`.
pub(crate) fn mode_edits(store: &dyn Store, user: UserId, from: i64, to: i64) -> DerivedResult<Vec<(i64, ModeEdit)>> {
    let range = DerivedRange { kind: MODE_EDIT, scope: DerivedScope::User, from, to };
    store.derived_range(user, &range)?.iter().map(|row| Ok((row.key, decode(row)?))).collect()
}

/// The mode of `leg` after the user's corrections: a correction applies to a
/// leg it overlaps for more than half of the leg (or, for an instantaneous
/// leg, that starts at the same time), so it survives a recomputation that
/// moves the leg's ends a little.
#[must_use]
pub fn effective_mode(leg: &LegRow, edits: &[(i64, ModeEdit)]) -> (TransportMode, bool) {
    let duration = leg.end - leg.start;
    let corrected = edits.iter().find(|(start, edit)| {
        if duration <= 0 {
            return *start == leg.start;
        }
        let overlap = edit.end.min(leg.end) - (*start).max(leg.start);
        overlap * 2 > duration
    });
    corrected.map_or((leg.mode, false), |(_, edit)| (edit.mode, true))
}

/// A local clock from the offsets stays and legs carry.
pub(crate) fn clock_of(stays: &[StayRow], legs: &[LegRow]) -> OffsetChanges {
    let mut stated: Vec<(i64, i16)> = stays
        .iter()
        .filter_map(|s| s.offset.map(|o| (s.start, o)))
        .chain(legs.iter().filter_map(|l| l.offset.map(|o| (l.start, o))))
        .collect();
    stated.sort_unstable();
    let initial = stated.first().map_or(0, |&(_, o)| o);
    let mut current = initial;
    let mut changes = Vec::new();
    for (at, offset) in stated {
        if offset != current {
            changes.push((Timestamp(at), offset));
            current = offset;
        }
    }
    OffsetChanges::new(initial, changes)
}

/// A day's visited places, countries and towns.
type Visited = (BTreeSet<i64>, BTreeSet<String>, BTreeSet<String>);

fn mode_of_category(category: Option<&str>) -> TransportMode {
    category.and_then(Motion::from_activity_name).and_then(TransportMode::from_motion).unwrap_or(TransportMode::Unknown)
}

/// Rebuilds the day rows of `device` for the local days that `[from, to]`
/// touches.
///
/// # Errors
/// Store failures and damaged rows.
pub fn refresh(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: Timestamp,
    to: Timestamp,
    book: &PlaceBook,
) -> DerivedResult<usize> {
    let scope = DerivedScope::Device(device);
    let (lo, hi) = (from.0.saturating_sub(DAY_MS + MAX_OFFSET_MS), to.0.saturating_add(DAY_MS + MAX_OFFSET_MS));
    let stays: Vec<StayRow> = rows_around(store, user, STAY, scope, lo, hi)?;
    let legs: Vec<LegRow> = rows_around(store, user, LEG, scope, lo, hi)?;
    let edits = mode_edits(store, user, lo.saturating_sub(DAY_MS), hi)?;
    let days = LocalDays(clock_of(&stays, &legs));
    let (first_day, last_day) = (days.day_of(from), days.day_of(to));

    let mut as_stays: Vec<Stay> = stays.iter().map(StayRow::to_stay).collect();
    let mut as_legs: Vec<Leg> = legs.iter().map(|l| l.to_leg(effective_mode(l, &edits).0)).collect();
    let covered = |start: i64, end: i64| {
        stays.iter().any(|s| s.start < end && s.end > start) || legs.iter().any(|l| l.start < end && l.end > start)
    };
    for stored in store.intervals(user, None, Some(Timestamp(lo)), Some(Timestamp(hi)))? {
        let interval = &stored.interval;
        if stored.device != device || covered(interval.start.0, interval.end.0) {
            continue;
        }
        match interval.kind {
            IntervalKind::Visit => as_stays.push(Stay {
                start: interval.start,
                end: interval.end,
                last_seen: interval.end,
                centroid: interval.start_coord.unwrap_or(polo_domain::Coord { lat_e7: 0, lon_e7: 0 }),
                points: 0..0,
                point_count: 0,
            }),
            IntervalKind::Activity => as_legs.push(Leg {
                start: interval.start,
                end: interval.end,
                points: 0..0,
                point_count: 0,
                distance_m: interval.distance_m.unwrap_or(0.0),
                speed: SpeedProfile::default(),
                mode: mode_of_category(interval.category.as_deref()),
                source: LegSource::Tracked,
            }),
            IntervalKind::Memory => {}
        }
    }

    let mut visited: BTreeMap<i64, Visited> = BTreeMap::new();
    for stay in stays.iter().filter(|s| s.visit) {
        let Some(place) = stay.place.map(|p| book.resolve(p)) else { continue };
        let locality = book.places.get(&place).map(|p| &p.locality);
        split_by_day(&days, Timestamp(stay.start), Timestamp(stay.end), |date, _| {
            let entry = visited.entry(date.0).or_default();
            entry.0.insert(place);
            if let Some(locality) = locality {
                entry.1.extend(locality.country_code.clone());
                entry.2.extend(locality.town.clone());
            }
        });
    }

    let mut put = Vec::new();
    for day in daily_stats(&as_stays, &as_legs, &days) {
        if day.date < first_day || day.date > last_day {
            continue;
        }
        let (places, countries, towns) = visited.remove(&day.date.0).unwrap_or_default();
        let row = DayRow {
            distance_m: day.distance_m,
            distance_m_by_mode: day.distance_m_by_mode,
            moving_ms_by_mode: day.moving_ms_by_mode,
            stationary_ms: day.stationary_ms,
            places: places.into_iter().collect(),
            countries: countries.into_iter().collect(),
            towns: towns.into_iter().collect(),
        };
        put.push(encode(DAY_STATS, scope, day.date.0, &row));
    }
    let written = put.len();
    let delete = vec![DerivedRange { kind: DAY_STATS, scope, from: first_day.0, to: last_day.0 + 1 }];
    store.derived_write(user, &DerivedBatch { delete, put }, false)?;
    Ok(written)
}
