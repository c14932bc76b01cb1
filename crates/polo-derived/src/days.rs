//! Per-day statistics: maintained per device and local day whenever the
//! stays and legs of a window change, and aggregated per day, month or
//! year on request.
//!
//! Local days follow the UTC offsets carried on each stay and leg: the ones
//! the points stated, or for points that stated none the offset of the time
//! zone at their position (see [`crate::window`]), so a trip across time
//! zones or a DST night splits where the user's own clock did. Intervals a source carried (Google visits and
//! activity segments, Overland trips) count where the device has no stay or
//! leg of its own at that time.

use std::collections::{BTreeMap, BTreeSet};

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{DerivedBatch, DerivedRange, DerivedRow, DerivedScope, Store};
use polo_timeline::clock::DayBoundaries;
use polo_timeline::daily::split_by_day;
use polo_timeline::{Leg, LocalDays, OffsetChanges, Stay, TransportMode, daily_stats};

use crate::DerivedResult;
use crate::kinds::{DAY_STATS, MODE_EDIT};
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

/// A local clock from the offsets stays and legs carry: each one's offset
/// from its start, and the changes within it.
pub(crate) fn clock_of(stays: &[StayRow], legs: &[LegRow]) -> OffsetChanges {
    let of_stays = stays.iter().filter_map(|s| s.offset.map(|o| (s.start, o, &s.offset_changes)));
    let of_legs = legs.iter().filter_map(|l| l.offset.map(|o| (l.start, o, &l.offset_changes)));
    let mut stated: Vec<(i64, i16)> = of_stays
        .chain(of_legs)
        .flat_map(|(start, offset, changes)| std::iter::once((start, offset)).chain(changes.iter().copied()))
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
    // The same entries a day view shows: detected stays and legs with the
    // user's mode corrections, and imported intervals where there are none.
    let around = crate::views::entries(store, user, device, Timestamp(lo), Timestamp(hi), book)?;
    let stays: Vec<StayRow> = around.stays.iter().map(|s| s.row.clone()).collect();
    let legs: Vec<LegRow> = around.legs.iter().map(|l| l.row.clone()).collect();
    let days = LocalDays(clock_of(&stays, &legs));
    let (first_day, last_day) = (days.day_of(from), days.day_of(to));
    let as_stays: Vec<Stay> = stays.iter().map(StayRow::to_stay).collect();
    let as_legs: Vec<Leg> = around.legs.iter().map(|l| l.row.to_leg(l.mode)).collect();

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

#[cfg(test)]
mod tests {
    use polo_timeline::LocalDate;

    use super::*;

    fn utc(d: u32, h: u32) -> i64 {
        Timestamp::from_civil(2024, 3, d, h, 0, 0, 0).unwrap().0
    }

    fn stay(start: i64, end: i64, offset: Option<i16>, offset_changes: Vec<(i64, i16)>) -> StayRow {
        StayRow {
            start,
            end,
            last_seen: end,
            decided: None,
            lat_e7: 538_655_000,
            lon_e7: 106_866_000,
            points: 2,
            visit: true,
            place: None,
            offset,
            offset_changes,
        }
    }

    #[test]
    fn a_change_inside_a_stay_moves_the_day_boundary() {
        // Home from Saturday 22:00 to Monday 08:00 local, Berlin; DST begins on Sunday at 01:00 UTC.
        let home = stay(utc(30, 21), utc(31, 6) + DAY_MS, Some(60), vec![(utc(31, 1), 120)]);
        let days = LocalDays(clock_of(std::slice::from_ref(&home), &[]));
        let sunday = days.next_day_start(Timestamp(utc(30, 21)));
        assert_eq!(days.day_of(sunday), LocalDate::from_ymd(2024, 3, 31).unwrap());
        assert_eq!(days.next_day_start(sunday).0 - sunday.0, 23 * 3_600_000);
        // Without the change inside the stay, Sunday would have 24 hours.
        let unaware = LocalDays(clock_of(&[StayRow { offset_changes: Vec::new(), ..home }], &[]));
        assert_eq!(unaware.next_day_start(sunday).0 - sunday.0, DAY_MS);
        // Rows without an offset do not count.
        assert_eq!(clock_of(&[stay(0, 1, None, Vec::new())], &[]).initial(), 0);
    }
}
