//! Reading the stored timeline: a local day, a range of stays and legs, the
//! places, the statistics. Everything here is a lookup over derived rows
//! (plus the intervals a source carried, where the device has nothing of
//! its own): no detection runs on a read.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{DerivedRange, DerivedScope, Store};
use polo_timeline::clock::instant_of_local;
use polo_timeline::{ByMode, LocalClock, LocalDate, TransportMode};

use crate::DerivedResult;
use crate::days::{DAY_MS, MAX_OFFSET_MS, clock_of, effective_mode, mode_edits, rows_around};
use crate::kinds::{DAY_STATS, LEG, MAP_COUNTS, STAY};
use crate::places::PlaceBook;
use crate::rows::{DayRow, LegRow, Locality, StayRow, decode};

/// Where an entry comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Detected from the device's points.
    Detected,
    /// An interval the source itself carried (Google Timeline, Overland):
    /// visits beat detected entries, activities fill where nothing else is
    /// ([`crate::imported`]).
    Imported,
}

/// A stay, as views show it.
#[derive(Debug, Clone, PartialEq)]
pub struct StayView {
    /// The stored row.
    pub row: StayRow,
    /// Its place after merges.
    pub place: Option<i64>,
    /// The place's name: the user's, else its zone's ([`PlaceBook::given_name`]),
    /// else the source's for imported visits.
    pub place_name: Option<String>,
    /// Country, region, town.
    pub locality: Option<Locality>,
    /// The place's street-level name, when the online geocoder found one.
    pub address: Option<String>,
    /// Detected or imported.
    pub origin: Origin,
    /// Whether the user edited it ([`crate::visit_edits`]).
    pub edited: bool,
    /// The device's last fix is its last fix: the stay the points end in,
    /// which later points may still extend (see `polo_timeline::detect_stays`).
    pub ongoing: bool,
}

impl StayView {
    /// The name to show it with ([`crate::naming::best_name`]); `None` only
    /// where nothing at all is known about the place.
    #[must_use]
    pub fn title(&self) -> Option<String> {
        crate::naming::best_name(self.place_name.as_deref(), self.address.as_deref(), self.locality.as_ref())
    }
}

/// A leg, as views show it.
#[derive(Debug, Clone, PartialEq)]
pub struct LegView {
    /// The stored row.
    pub row: LegRow,
    /// The mode after the user's corrections.
    pub mode: TransportMode,
    /// Whether the user corrected it.
    pub corrected: bool,
    /// Detected or imported.
    pub origin: Origin,
}

/// The stays and legs of a time range, of one device.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entries {
    /// Stays overlapping the range, by start.
    pub stays: Vec<StayView>,
    /// Legs overlapping the range, by start.
    pub legs: Vec<LegView>,
}

/// A local day of one device.
#[derive(Debug, Clone, PartialEq)]
pub struct DayView {
    /// The device chosen (`None` when no device has anything that day).
    pub device: Option<DeviceId>,
    /// First instant of the local day.
    pub from: Timestamp,
    /// First instant of the next local day.
    pub to: Timestamp,
    /// UTC offset at the start of the day, minutes.
    pub offset_minutes: i16,
    /// What happened.
    pub entries: Entries,
    /// Every device that tracked anything that day, with how long, most first:
    /// a second phone's day is listed even when another device's is shown.
    pub devices: Vec<(DeviceId, i64)>,
}

/// The stays and legs of `device` overlapping `[from, to)`.
///
/// # Errors
/// Store failures and damaged rows.
pub fn entries(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: Timestamp,
    to: Timestamp,
    book: &PlaceBook,
) -> DerivedResult<Entries> {
    let scope = DerivedScope::Device(device);
    let stays: Vec<StayRow> = rows_around(store, user, STAY, scope, from.0, to.0)?;
    let legs: Vec<LegRow> = rows_around(store, user, LEG, scope, from.0, to.0)?;
    let edits = mode_edits(store, user, from.0.saturating_sub(DAY_MS), to.0)?;
    let mut out = Entries::default();
    let stays: Vec<StayRow> = stays.into_iter().filter(|s| s.end > from.0 && s.start < to.0).collect();
    // Only a stay ending at its last fix can be the one the points end in.
    let last_fix = match stays.last() {
        Some(last) if last.end == last.last_seen => store.last_point(user, device)?.map(|p| p.fix.time.0),
        _ => None,
    };
    for row in stays {
        let place = row.place.map(|p| book.resolve(p));
        let ongoing = last_fix == Some(row.last_seen) && row.end == row.last_seen;
        out.stays.push(StayView {
            place,
            place_name: place.and_then(|p| book.given_name(p)).map(str::to_owned),
            locality: place.and_then(|p| book.places.get(&p)).map(|p| p.locality.clone()),
            address: place.and_then(|p| book.address(p)).map(str::to_owned),
            row,
            origin: Origin::Detected,
            edited: false,
            ongoing,
        });
    }
    crate::visit_edits::apply(store, user, device, book, &mut out.stays)?;
    for row in legs.into_iter().filter(|l| l.end >= from.0 && l.start < to.0) {
        let (mode, corrected) = effective_mode(&row, &edits);
        out.legs.push(LegView { row, mode, corrected, origin: Origin::Detected });
    }
    add_imported(store, user, device, from, to, &mut out)?;
    Ok(out)
}

/// Adds the source's own intervals by [`crate::imported::overlay`]'s rules:
/// the device's own, and on the UTC days the device has fixes, those of the
/// user's other devices too, since a visit or a journey is the person's
/// (Google's Semantic Location History names no phone, and is imported
/// beside the `Records.json` whose phones carry the fixes). A phone's days
/// before it existed stay its own.
fn add_imported(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: Timestamp,
    to: Timestamp,
    out: &mut Entries,
) -> DerivedResult<()> {
    let all = store.intervals(user, None, Some(from), Some(to))?;
    let mut days_with_fixes: Option<BTreeSet<i64>> = None;
    let mut intervals = Vec::with_capacity(all.len());
    for stored in all {
        if stored.device != device {
            let days = match &mut days_with_fixes {
                Some(days) => days,
                None => days_with_fixes.insert(fix_days(store, user, device, from, to)?),
            };
            let (first, last) = (stored.interval.start.0.div_euclid(DAY_MS), stored.interval.end.0.div_euclid(DAY_MS));
            if days.range(first..=last).next().is_none() {
                continue;
            }
        }
        intervals.push(stored.interval);
    }
    if intervals.is_empty() {
        return Ok(());
    }
    let visit_min_ms = crate::settings::settings(store, user)?.stays.visit_min_duration_ms();
    // A source that stated no UTC offset (Semantic Location History) takes
    // the local clock the device's own stays and legs follow.
    let stays: Vec<StayRow> = out.stays.iter().map(|s| s.row.clone()).collect();
    let legs: Vec<LegRow> = out.legs.iter().map(|l| l.row.clone()).collect();
    let clock = (stays.iter().any(|s| s.offset.is_some()) || legs.iter().any(|l| l.offset.is_some()))
        .then(|| clock_of(&stays, &legs));
    crate::imported::overlay(out, intervals, visit_min_ms, clock.as_ref());
    Ok(())
}

/// The UTC days (numbers) in `[from, to)` on which `device` has fixes.
fn fix_days(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: Timestamp,
    to: Timestamp,
) -> DerivedResult<BTreeSet<i64>> {
    let range = DerivedRange {
        kind: MAP_COUNTS,
        scope: DerivedScope::Device(device),
        from: from.0.div_euclid(DAY_MS),
        to: to.0.div_euclid(DAY_MS).saturating_add(1),
    };
    Ok(store.derived_range(user, &range)?.into_iter().map(|row| row.key).collect())
}

/// A local day: the device whose story covers most of it (or `device`),
/// with its stays and legs.
///
/// # Errors
/// Store failures and damaged rows.
pub fn day(store: &dyn Store, user: UserId, date: LocalDate, device: Option<DeviceId>) -> DerivedResult<DayView> {
    let mut devices = Vec::new();
    for candidate in store.list_devices(user)? {
        let rows =
            store.derived_range(user, &DerivedRange::key(DAY_STATS, DerivedScope::Device(candidate.id), date.0))?;
        if let Some(row) = rows.first() {
            devices.push((candidate.id, decode::<DayRow>(row)?.tracked_ms()));
        }
    }
    // Most tracked first; equal times by device id, so the default is stable.
    devices.sort_by_key(|&(id, tracked)| (std::cmp::Reverse(tracked), id));
    // Imported visits count on every device's day with fixes, so two
    // devices may tell the same story (the phone's, and the device a
    // Semantic file's visits were filed under). Among those covering nearly
    // as much of the day as the most tracked one, the default is the one with
    // the most fixes of its own: its track on the map.
    let fixes = |id: DeviceId| -> DerivedResult<u64> {
        // The UTC day of the same date: most of the local day, whatever the offset.
        let utc_day = DerivedRange::key(MAP_COUNTS, DerivedScope::Device(id), date.0);
        match store.derived_range(user, &utc_day)?.first() {
            Some(row) => Ok(crate::map::track::decode_counts(&row.value, MAP_COUNTS, row.key)?.points),
            None => Ok(0),
        }
    };
    let most_tracked = devices.first().map_or(0, |&(_, tracked)| tracked);
    let mut default: Option<(DeviceId, u64)> = None;
    for &(id, _) in devices.iter().take_while(|&&(_, tracked)| tracked >= most_tracked / 10 * 9) {
        let n = fixes(id)?;
        if n > default.map_or(0, |(_, most)| most) {
            default = Some((id, n));
        }
    }
    let default = default.map(|(id, _)| id);
    let chosen = device.or(default).or_else(|| devices.first().map(|&(id, _)| id));
    let midnight = date.0 * DAY_MS;
    let around_from = Timestamp(midnight - DAY_MS - MAX_OFFSET_MS);
    let around_to = Timestamp(midnight + 2 * DAY_MS + MAX_OFFSET_MS);
    let book = PlaceBook::load(store, user)?;
    let Some(device) = chosen else {
        return Ok(DayView {
            device: None,
            from: Timestamp(midnight),
            to: Timestamp(midnight + DAY_MS),
            offset_minutes: 0,
            entries: Entries::default(),
            devices,
        });
    };
    let around = entries(store, user, device, around_from, around_to, &book)?;
    let stay_rows: Vec<StayRow> = around.stays.iter().map(|s| s.row.clone()).collect();
    let leg_rows: Vec<LegRow> = around.legs.iter().map(|l| l.row.clone()).collect();
    let clock = clock_of(&stay_rows, &leg_rows);
    let from = instant_of_local(&clock, midnight);
    let to = instant_of_local(&clock, midnight + DAY_MS);
    let entries = Entries {
        stays: around.stays.into_iter().filter(|s| s.row.end > from.0 && s.row.start < to.0).collect(),
        legs: around.legs.into_iter().filter(|l| l.row.end >= from.0 && l.row.start < to.0).collect(),
    };
    Ok(DayView { device: Some(device), from, to, offset_minutes: clock.offset_minutes_at(from), entries, devices })
}

/// How statistics are grouped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    /// Per local day.
    Day,
    /// Per calendar month.
    Month,
    /// Per calendar year.
    Year,
}

/// The statistics of one period.
#[derive(Debug, Clone, PartialEq)]
pub struct PeriodStats {
    /// First local day of the period (clipped to the asked range).
    pub first_day: LocalDate,
    /// Last local day of the period (clipped to the asked range).
    pub last_day: LocalDate,
    /// Days with any data.
    pub days_tracked: u32,
    /// Metres travelled.
    pub distance_m: f64,
    /// Metres per mode.
    pub distance_m_by_mode: ByMode<f64>,
    /// Milliseconds moving per mode.
    pub moving_ms_by_mode: ByMode<i64>,
    /// Milliseconds in stays.
    pub stationary_ms: i64,
    /// Country code → days in it.
    pub days_per_country: BTreeMap<String, u32>,
    /// Towns visited.
    pub towns: BTreeSet<String>,
    /// Places first visited in the period.
    pub new_places: Vec<i64>,
    /// Places by days visited, most first (at most ten).
    pub top_places: Vec<(i64, u32)>,
}

fn period_start(period: Period, date: LocalDate) -> LocalDate {
    let (y, m, _) = date.ymd();
    match period {
        Period::Day => date,
        Period::Month => LocalDate::from_ymd(y, m, 1).unwrap_or(date),
        Period::Year => LocalDate::from_ymd(y, 1, 1).unwrap_or(date),
    }
}

/// Statistics per period for the local days `first..=last`: each day counts
/// the device that tracked most of it (a phone and a watch worn together
/// are not counted twice).
///
/// # Errors
/// Store failures and damaged rows.
pub fn stats(
    store: &dyn Store,
    user: UserId,
    first: LocalDate,
    last: LocalDate,
    period: Period,
) -> DerivedResult<(Vec<PeriodStats>, PlaceBook)> {
    let mut best: BTreeMap<i64, DayRow> = BTreeMap::new();
    for device in store.list_devices(user)? {
        let range =
            DerivedRange { kind: DAY_STATS, scope: DerivedScope::Device(device.id), from: first.0, to: last.0 + 1 };
        for row in store.derived_range(user, &range)? {
            let day: DayRow = decode(&row)?;
            let better = best.get(&row.key).is_none_or(|b| day.tracked_ms() > b.tracked_ms());
            if better {
                best.insert(row.key, day);
            }
        }
    }
    let book = PlaceBook::load(store, user)?;
    let mut first_visit_day: HashMap<i64, i64> = HashMap::new();
    for (&id, place) in &book.places {
        let root = book.resolve(id);
        // The local day of the first visit.
        let offset_ms = i64::from(place.first_visit_offset.unwrap_or(0)) * 60_000;
        let day = place.first_visit.saturating_add(offset_ms).div_euclid(DAY_MS);
        first_visit_day.entry(root).and_modify(|d| *d = (*d).min(day)).or_insert(day);
    }
    let mut out: Vec<PeriodStats> = Vec::new();
    let mut place_days: Vec<BTreeMap<i64, u32>> = Vec::new();
    for (key, day) in best {
        let date = LocalDate(key);
        let start = period_start(period, date).max(first);
        if out.last().is_none_or(|p| p.first_day != start) {
            out.push(PeriodStats {
                first_day: start,
                last_day: start,
                days_tracked: 0,
                distance_m: 0.0,
                distance_m_by_mode: ByMode::default(),
                moving_ms_by_mode: ByMode::default(),
                stationary_ms: 0,
                days_per_country: BTreeMap::new(),
                towns: BTreeSet::new(),
                new_places: Vec::new(),
                top_places: Vec::new(),
            });
            place_days.push(BTreeMap::new());
        }
        let (Some(bucket), Some(visits)) = (out.last_mut(), place_days.last_mut()) else { continue };
        bucket.last_day = date;
        bucket.days_tracked += 1;
        bucket.distance_m += day.distance_m;
        bucket.stationary_ms += day.stationary_ms;
        for mode in TransportMode::ALL {
            *bucket.distance_m_by_mode.get_mut(mode) += day.distance_m_by_mode.get(mode);
            *bucket.moving_ms_by_mode.get_mut(mode) += day.moving_ms_by_mode.get(mode);
        }
        for country in day.countries {
            *bucket.days_per_country.entry(country).or_default() += 1;
        }
        bucket.towns.extend(day.towns);
        let places: BTreeSet<i64> = day.places.iter().map(|&p| book.resolve(p)).collect();
        for place in places {
            *visits.entry(place).or_default() += 1;
        }
    }
    for (bucket, visits) in out.iter_mut().zip(place_days) {
        // Periods end on their last tracked day; stretch to the period's end for new places.
        let period_end = match period {
            Period::Day => bucket.first_day.0,
            Period::Month | Period::Year => {
                let (y, m, _) = bucket.first_day.ymd();
                let next = match period {
                    Period::Month if m == 12 => LocalDate::from_ymd(y + 1, 1, 1),
                    Period::Month => LocalDate::from_ymd(y, m + 1, 1),
                    _ => LocalDate::from_ymd(y + 1, 1, 1),
                };
                next.map_or(bucket.last_day.0, |n| n.0 - 1).min(last.0)
            }
        };
        let mut new: Vec<i64> = visits
            .keys()
            .copied()
            .filter(|p| first_visit_day.get(p).is_some_and(|&d| d >= bucket.first_day.0 && d <= period_end))
            .collect();
        new.sort_unstable();
        bucket.new_places = new;
        let mut top: Vec<(i64, u32)> = visits.into_iter().collect();
        top.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
        top.truncate(10);
        bucket.top_places = top;
    }
    Ok((out, book))
}

/// A place with its visits.
#[derive(Debug, Clone, PartialEq)]
pub struct PlaceView {
    /// Id (after merges, the surviving one).
    pub id: i64,
    /// The user's name.
    pub name: Option<String>,
    /// The zone (the user's or a group's) that holds it, which names it
    /// unless the user did.
    pub zone: Option<polo_zones::naming::NamingZone>,
    /// Where it is.
    pub lat_e7: i32,
    /// See `lat_e7`.
    pub lon_e7: i32,
    /// Country, region, town.
    pub locality: Locality,
    /// Street-level name from the online geocoder, when it found one.
    pub address: Option<String>,
    /// Ids merged into it.
    pub merged: Vec<i64>,
    /// Visits (over all devices).
    pub visits: u32,
    /// Milliseconds spent there.
    pub dwell_ms: i64,
    /// Start of the first visit, ms.
    pub first_visit: i64,
    /// The UTC offset at the start of the first visit, minutes east.
    pub first_visit_offset: Option<i16>,
    /// Start of the last visit, ms.
    pub last_visit: Option<i64>,
    /// The UTC offset at the start of the last visit, minutes east.
    pub last_visit_offset: Option<i16>,
    /// Detected as home.
    pub home: bool,
    /// Detected as work.
    pub work: bool,
}

impl PlaceView {
    /// The name to show it with ([`crate::naming::best_name`]).
    #[must_use]
    pub fn title(&self) -> Option<String> {
        let given = self.name.as_deref().or_else(|| self.zone.as_ref().map(|z| z.name.as_str()));
        crate::naming::best_name(given, self.address.as_deref(), Some(&self.locality))
    }
}

/// Every place of the user (merged places folded into their survivor),
/// with visits and dwell, home and work.
///
/// # Errors
/// Store failures and damaged rows.
pub fn places(store: &dyn Store, user: UserId) -> DerivedResult<Vec<PlaceView>> {
    let book = PlaceBook::load(store, user)?;
    let params = crate::settings::settings(store, user)?;
    let mut views: BTreeMap<i64, PlaceView> = BTreeMap::new();
    for (&id, place) in &book.places {
        let root = book.resolve(id);
        if root != id {
            continue;
        }
        views.insert(
            id,
            PlaceView {
                id,
                name: book.name(id).map(str::to_owned),
                zone: book.zone(id).cloned(),
                lat_e7: place.lat_e7,
                lon_e7: place.lon_e7,
                locality: place.locality.clone(),
                address: book.address(id).map(str::to_owned),
                merged: Vec::new(),
                visits: 0,
                dwell_ms: 0,
                first_visit: place.first_visit,
                first_visit_offset: place.first_visit_offset,
                last_visit: None,
                last_visit_offset: None,
                home: false,
                work: false,
            },
        );
    }
    for (&id, place) in &book.places {
        let root = book.resolve(id);
        if root != id
            && let Some(view) = views.get_mut(&root)
        {
            view.merged.push(id);
            if place.first_visit < view.first_visit {
                view.first_visit = place.first_visit;
                view.first_visit_offset = place.first_visit_offset;
            }
        }
    }
    let mut all_stays: Vec<StayRow> = Vec::new();
    let mut labels: Vec<Option<usize>> = Vec::new();
    let ids: Vec<i64> = views.keys().copied().collect();
    for device in store.list_devices(user)? {
        let rows = store.derived_range(user, &DerivedRange::all(STAY, DerivedScope::Device(device.id)))?;
        for row in &rows {
            let stay: StayRow = decode(row)?;
            let Some(place) = stay.place.map(|p| book.resolve(p)) else { continue };
            if let Some(view) = views.get_mut(&place) {
                view.visits += 1;
                view.dwell_ms += stay.end - stay.start;
                if view.last_visit.is_none_or(|last| stay.start > last) {
                    view.last_visit = Some(stay.start);
                    view.last_visit_offset = stay.offset;
                }
                all_stays.push(stay);
                labels.push(ids.binary_search(&place).ok());
            }
        }
    }
    let mut order: Vec<usize> = (0..all_stays.len()).collect();
    order.sort_by_key(|&i| all_stays[i].start);
    let rows: Vec<StayRow> = order.iter().map(|&i| all_stays[i].clone()).collect();
    let stays: Vec<_> = rows.iter().map(StayRow::to_stay).collect();
    let labels: Vec<_> = order.iter().map(|&i| labels[i]).collect();
    let clock = clock_of(&rows, &[]);
    let found = polo_timeline::detect_home_work(&stays, &labels, &clock, &params.home_work);
    if let Some(home) = found.home
        && let Some(view) = views.get_mut(&ids[home.place])
    {
        view.home = true;
    }
    if let Some(work) = found.work
        && let Some(view) = views.get_mut(&ids[work.place])
    {
        view.work = true;
    }
    Ok(views.into_values().collect())
}
