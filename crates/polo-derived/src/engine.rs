//! The engine: follows the store's change log and keeps every user's
//! derived data up to date, one affected window at a time.
//!
//! [`Engine::catch_up`] reads the changes after its cursor, merges them per
//! (user, device) into the time span they touched, recomputes each span
//! (stays and legs in a window, places for the window's visits, the days it
//! touches, the map levels), and only then moves the cursor. A crash in
//! between recomputes the same spans again, which is harmless: every step
//! replaces its rows. Derived writes are not edits, so they add nothing to
//! the change log the engine reads; the engine's work never feeds itself.
//!
//! An edit in the log (settings, a fix's flag, a visit or a transport mode)
//! is checked against what the stored rows were computed with, and only
//! what differs is recomputed ([`crate::edit_marks`] for visits and modes).
//!
//! Each span starts with the device's flagged fixes ([`crate::outliers`]):
//! they are recomputed first, and where they changed the span widens, so
//! stays, legs, days and maps never disagree about which fixes count.
//!
//! One engine per store: it holds a lock so the background loop and a
//! request that recomputes synchronously (a corrected transport mode) never
//! interleave their writes. The lock also guards the points each live
//! device's last window read ([`crate::tail`]), so that a step reads only the
//! points that arrived since.
//!
//! When the stored rows were computed by an older version of the algorithm
//! ([`crate::kinds::ROWS_VERSION`]), the first catch-up recomputes every
//! device of every user once, as a settings change would.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use polo_domain::{DeviceId, Seq, Timestamp, UserId};
use polo_store::{ChangeKind, DerivedBatch, DerivedRange, DerivedScope, Store};
use polo_timeline::{TimelineParams, TransportMode, ZoneLookup};

use crate::kinds::{CURSOR, LEG, MAP_COUNTS, MODE_EDIT, ROWS_VERSION, ROWS_VERSION_CURSOR, STATE, STAY};
use crate::places::{Locator, PlaceBook, place_rows};
use crate::rows::{ModeEdit, decode, encode};
use crate::settings::settings;
use crate::tail::TailCache;
use crate::window::{Window, recompute};
use crate::{DerivedError, DerivedResult, days, edit_marks, map, outliers};

/// How many change-log entries one catch-up step reads.
pub const BATCH: usize = 10_000;

/// What one catch-up step did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CatchUp {
    /// Change-log entries consumed.
    pub changes: usize,
    /// Device windows recomputed.
    pub windows: usize,
    /// Points read from the store to recompute them.
    pub points_read: u64,
    /// Points the windows took from what the step before had read ([`crate::tail`]).
    pub points_reused: u64,
    /// Points the consumed entries inserted or deleted: set against
    /// `points_read`, how much of the step was re-reading what had not changed.
    pub points_changed: u64,
    /// The cursor after the step.
    pub cursor: Seq,
}

/// The span of one device's points a set of changes touched.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Span {
    /// From the first to the last instant (inclusive).
    Between(Timestamp, Timestamp),
    /// Everything (settings changed, an unbounded delete).
    All,
}

impl Span {
    fn widen(self, other: Span) -> Span {
        match (self, other) {
            (Span::Between(a, b), Span::Between(c, d)) => Span::Between(a.min(c), b.max(d)),
            _ => Span::All,
        }
    }
}

fn widen(spans: &mut BTreeMap<(UserId, DeviceId), Span>, key: (UserId, DeviceId), span: Span) {
    spans.entry(key).and_modify(|s| *s = s.widen(span)).or_insert(span);
}

/// The time span a device's map rows and points cover together: what an
/// unbounded delete may have changed.
fn map_extent(store: &dyn Store, user: UserId, device: DeviceId) -> DerivedResult<Option<(Timestamp, Timestamp)>> {
    const DAY_MS: i64 = 86_400_000;
    let rows = store.derived_range(user, &DerivedRange::all(MAP_COUNTS, DerivedScope::Device(device)))?;
    let mut extent = rows.first().zip(rows.last()).map(|(a, b)| (a.key * DAY_MS, b.key * DAY_MS + DAY_MS - 1));
    let mut first_point = None;
    store.scan_points(&polo_store::PointQuery { user, device: Some(device), from: None, to: None }, &mut |p| {
        first_point = Some(p.fix.time);
        std::ops::ControlFlow::Break(())
    })?;
    if let (Some(first), Some(last)) = (first_point, store.last_point(user, device)?) {
        let (from, to) = extent.unwrap_or((first.0, last.fix.time.0));
        extent = Some((from.min(first.0), to.max(last.fix.time.0)));
    }
    Ok(extent.map(|(from, to)| (Timestamp(from), Timestamp(to))))
}

/// What a device's stored timeline was computed with.
struct ComputedWith {
    params: TimelineParams,
    /// False for rows of a polo that did not flag fixes yet.
    flags_known: bool,
}

impl ComputedWith {
    fn matches(&self, current: &TimelineParams) -> bool {
        self.flags_known && self.params == *current
    }
}

/// Keeps derived data current; see the module documentation.
pub struct Engine {
    store: Arc<dyn Store>,
    locator: Option<Arc<dyn Locator>>,
    zones: Option<Arc<dyn ZoneLookup>>,
    /// Serialises the engine's writes; guards the cached tails.
    lock: Mutex<TailCache>,
}

impl std::fmt::Debug for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Engine")
            .field("locator", &self.locator.is_some())
            .field("zones", &self.zones.is_some())
            .finish_non_exhaustive()
    }
}

impl Engine {
    /// An engine over `store`; `locator` names places' countries and towns.
    /// Without [`with_zones`](Self::with_zones), points that state no UTC
    /// offset count as UTC.
    #[must_use]
    pub fn new(store: Arc<dyn Store>, locator: Option<Arc<dyn Locator>>) -> Self {
        Self { store, locator, zones: None, lock: Mutex::new(TailCache::default()) }
    }

    /// The same engine, giving points that state no UTC offset the one of
    /// the time zone at their position (local days and times).
    #[must_use]
    pub fn with_zones(self, zones: Arc<dyn ZoneLookup>) -> Self {
        Self { zones: Some(zones), ..self }
    }

    /// The store it maintains.
    #[must_use]
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// What names places' countries and towns, if anything does: requests
    /// that name a position the way stays are named use the same one.
    #[must_use]
    pub fn locator(&self) -> Option<&dyn Locator> {
        self.locator.as_deref()
    }

    /// The time zones that give points without a UTC offset theirs, if set.
    #[must_use]
    pub fn zones(&self) -> Option<&dyn ZoneLookup> {
        self.zones.as_deref()
    }

    /// How far the engine has got in the change log.
    ///
    /// # Errors
    /// Store failures.
    pub fn cursor(&self) -> DerivedResult<Seq> {
        Ok(self.store.derived_cursor(CURSOR)?)
    }

    /// Processes the changes after the cursor, at most [`BATCH`] of them.
    /// Call until it reports no changes to be caught up.
    ///
    /// # Errors
    /// Store failures, damaged rows. The cursor stays where it was, so the
    /// next call retries.
    pub fn catch_up(&self) -> DerivedResult<CatchUp> {
        let mut tails = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let store = &*self.store;
        let cursor = store.derived_cursor(CURSOR)?;
        tails.begin_step(cursor, Instant::now());
        let changes = store.changes_since(cursor, BATCH)?;
        let outdated = store.derived_cursor(ROWS_VERSION_CURSOR)?.0 < ROWS_VERSION;
        let last = match changes.last() {
            Some(change) => change.seq,
            None if outdated => cursor,
            None => {
                tails.end_step(cursor);
                return Ok(CatchUp { cursor, ..CatchUp::default() });
            }
        };
        let mut spans: BTreeMap<(UserId, DeviceId), Span> = BTreeMap::new();
        // Map levels depend on the points only: not on intervals or settings.
        let mut map_spans: BTreeMap<(UserId, DeviceId), Span> = BTreeMap::new();
        // Every device's days show the user's imported intervals
        // (`views::entries`): where a device's intervals came or went, the
        // days of the user's other devices are refreshed too.
        let mut sibling_days: BTreeMap<(UserId, DeviceId), (Timestamp, Timestamp)> = BTreeMap::new();
        // Each user's devices, listed once per step.
        let mut user_devices: BTreeMap<UserId, Vec<DeviceId>> = BTreeMap::new();
        if outdated {
            // Rows of an older polo: local days, flagged fixes and maps without
            // them are all recomputed once, maps included.
            for user in store.list_users()? {
                for device in store.list_devices(user.id)? {
                    tracing::info!(
                        user = user.id.0,
                        device = device.id.0,
                        "recomputing a timeline an older polo computed"
                    );
                    spans.insert((user.id, device.id), Span::All);
                    map_spans.insert((user.id, device.id), Span::All);
                }
            }
        }
        let mut settings_may_have_changed: Vec<UserId> = Vec::new();
        for change in &changes {
            let span = match (change.first, change.last) {
                (Some(first), Some(last)) => Span::Between(first, last),
                _ => Span::All,
            };
            match change.kind {
                ChangeKind::PointsInserted | ChangeKind::PointsDeleted | ChangeKind::IntervalsInserted => {
                    let all_devices = match user_devices.entry(change.user) {
                        std::collections::btree_map::Entry::Occupied(known) => known.into_mut(),
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(store.list_devices(change.user)?.into_iter().map(|d| d.id).collect::<Vec<_>>())
                        }
                    };
                    // A device made after the list was read, in this same batch.
                    if let Some(device) = change.device
                        && !all_devices.contains(&device)
                    {
                        all_devices.push(device);
                    }
                    let devices = match change.device {
                        Some(device) => vec![device],
                        // A delete across all devices.
                        None => all_devices.clone(),
                    };
                    for device in &devices {
                        widen(&mut spans, (change.user, *device), span);
                        if change.kind != ChangeKind::IntervalsInserted {
                            widen(&mut map_spans, (change.user, *device), span);
                        }
                    }
                    if let (Some(changed), Span::Between(first, last), true) =
                        (change.device, span, change.kind != ChangeKind::PointsInserted)
                    {
                        for &sibling in all_devices.iter().filter(|&&d| d != changed) {
                            sibling_days
                                .entry((change.user, sibling))
                                .and_modify(|(a, b)| (*a, *b) = ((*a).min(first), (*b).max(last)))
                                .or_insert((first, last));
                        }
                    }
                }
                // Settings, or a verdict on a fix replicated from elsewhere.
                ChangeKind::Edit => settings_may_have_changed.push(change.user),
                ChangeKind::User | ChangeKind::Device => {}
                // The store removed the account's rows with it; nothing is left to compute.
                ChangeKind::AccountDeleted => {
                    spans.retain(|(user, _), _| *user != change.user);
                    map_spans.retain(|(user, _), _| *user != change.user);
                    settings_may_have_changed.retain(|user| *user != change.user);
                }
            }
        }
        settings_may_have_changed.dedup();
        for user in settings_may_have_changed.iter().copied() {
            let current = settings(store, user)?;
            for device in store.list_devices(user)? {
                if self.computed_with(user, device.id)?.is_none_or(|with| !with.matches(&current)) {
                    spans.insert((user, device.id), Span::All);
                }
                for time in outliers::unapplied_edits(store, user, device.id)? {
                    widen(&mut spans, (user, device.id), Span::Between(time, time));
                    widen(&mut map_spans, (user, device.id), Span::Between(time, time));
                }
            }
        }
        let points_changed = changes
            .iter()
            .filter(|c| matches!(c.kind, ChangeKind::PointsInserted | ChangeKind::PointsDeleted))
            .map(|c| c.count)
            .sum();
        let mut report = CatchUp { changes: changes.len(), points_changed, cursor: last, ..CatchUp::default() };
        let mut params_of: BTreeMap<UserId, TimelineParams> = BTreeMap::new();
        for ((user, device), span) in spans {
            let params = match params_of.get(&user) {
                Some(params) => params.clone(),
                None => {
                    let params = settings(store, user)?;
                    params_of.insert(user, params.clone());
                    params
                }
            };
            let map_span = map_spans.get(&(user, device)).copied();
            match self.refresh_device(user, device, span, map_span, &params, Some(&mut tails)) {
                Ok((read, reused)) => {
                    report.points_read += read;
                    report.points_reused += reused;
                }
                // Deleted while this batch was computed: its rows went with it.
                Err(_) if store.user_by_id(user)?.is_none() => continue,
                Err(e) => return Err(e),
            }
            report.windows += 1;
        }
        let mut books: BTreeMap<UserId, PlaceBook> = BTreeMap::new();
        for ((user, device), (first, last)) in sibling_days {
            let refreshed = match books.entry(user) {
                std::collections::btree_map::Entry::Occupied(book) => Ok(book.into_mut()),
                std::collections::btree_map::Entry::Vacant(slot) => {
                    PlaceBook::load(store, user).map(|b| slot.insert(b))
                }
            }
            .and_then(|book| days::refresh(store, user, device, first, last, book));
            match refreshed {
                Ok(_) => {}
                Err(_) if store.user_by_id(user)?.is_none() => {}
                Err(e) => return Err(e),
            }
        }
        // After the windows: visit and mode edits that reached the store without their days
        // (replicated, or raced by this step on another node) are brought into them.
        for user in settings_may_have_changed {
            match edit_marks::catch_up(store, user) {
                Ok(_) => {}
                Err(_) if store.user_by_id(user)?.is_none() => {}
                Err(e) => return Err(e),
            }
        }
        store.set_derived_cursor(CURSOR, last)?;
        if outdated {
            store.set_derived_cursor(ROWS_VERSION_CURSOR, Seq(ROWS_VERSION))?;
        }
        tails.end_step(last);
        Ok(report)
    }

    /// The settings a device's stored timeline was computed with.
    fn computed_with(&self, user: UserId, device: DeviceId) -> DerivedResult<Option<ComputedWith>> {
        let rows = self.store.derived_range(user, &DerivedRange::key(STATE, DerivedScope::Device(device), 0))?;
        let Some(row) = rows.first() else { return Ok(None) };
        let fields: serde_json::Map<String, serde_json::Value> = decode(row)?;
        // Rows of a polo from before flagged fixes lack the field.
        let flags_known = fields.contains_key("outliers");
        Ok(Some(ComputedWith { params: decode(row)?, flags_known }))
    }

    fn refresh_device(
        &self,
        user: UserId,
        device: DeviceId,
        span: Span,
        map_span: Option<Span>,
        params: &TimelineParams,
        tails: Option<&mut TailCache>,
    ) -> DerivedResult<(u64, u64)> {
        let store = &*self.store;
        let scope = DerivedScope::Device(device);
        // Flags first: every step after this one leaves the flagged fixes out,
        // and where flags changed, stays, legs and maps change too.
        let changed = match span {
            Span::Between(first, last) => Some((first, last)),
            Span::All => None,
        };
        let (span, map_span) = match outliers::refresh(store, user, device, changed, &params.outliers)? {
            Some((first, last)) => {
                let flags = Span::Between(first, last);
                (span.widen(flags), Some(map_span.map_or(flags, |m| m.widen(flags))))
            }
            None => (span, map_span),
        };
        let changed = match span {
            Span::Between(first, last) => Some((first, last)),
            Span::All => None,
        };
        let mut tails = tails;
        let tail = tails.as_deref_mut().and_then(|tails| tails.take(user, device));
        let mut window: Window = recompute(store, user, device, changed, params, self.zones.as_deref(), tail)?;
        if let (Some(tails), Some(tail)) = (tails, window.tail.take()) {
            tails.keep(user, device, tail, Instant::now());
        }
        let mut book = PlaceBook::load(store, user)?;
        let places = book.assign(&mut window.stays, &params.places, self.locator.as_deref())?;
        let (from, to) = (window.from.unwrap_or(i64::MIN), window.to.unwrap_or(i64::MAX));
        let mut batch = DerivedBatch {
            delete: vec![DerivedRange { kind: STAY, scope, from, to }, DerivedRange { kind: LEG, scope, from, to }],
            put: place_rows(places),
        };
        // The span the stored stays and legs now differ in, for the days.
        let first = window.stays.first().map(|s| s.start).into_iter().chain(window.legs.first().map(|l| l.start)).min();
        let last = window.stays.last().map(|s| s.end).into_iter().chain(window.legs.last().map(|l| l.end)).max();
        batch.put.extend(window.stays.iter().map(|s| encode(STAY, scope, s.start, s)));
        batch.put.extend(window.legs.iter().map(|l| encode(LEG, scope, l.start, l)));
        batch.put.push(encode(STATE, scope, 0, params));
        store.derived_write(user, &batch, false)?;

        // Days: those of the window's new entries, of the entries it
        // replaced (bounded by the window), and of the changed points.
        let mut day_from = first.unwrap_or(i64::MAX);
        let mut day_to = last.unwrap_or(i64::MIN);
        if let Some(from) = window.from {
            day_from = day_from.min(from);
        }
        if let Some((changed_from, changed_to)) = changed {
            day_from = day_from.min(changed_from.0);
            day_to = day_to.max(changed_to.0);
        }
        if let Some(to) = window.to {
            day_to = day_to.max(to);
        }
        if changed.is_none() {
            // Everything was recomputed: clear day rows outside the data too.
            store.derived_write(
                user,
                &DerivedBatch { delete: vec![DerivedRange::all(crate::kinds::DAY_STATS, scope)], put: vec![] },
                false,
            )?;
        }
        // The map rows first: they say on which days the device has fixes,
        // and those days show the user's other devices' imported intervals.
        let map_window = match map_span {
            Some(Span::Between(from, to)) => Some((from, to)),
            Some(Span::All) => map_extent(store, user, device)?,
            None => None,
        };
        if matches!(map_span, Some(Span::All)) {
            map::refresh::clear_retired(store, user, device)?;
        }
        if let Some((from, to)) = map_window {
            map::refresh_device(store, user, device, from, to)?;
        }
        if day_from <= day_to {
            days::refresh(store, user, device, Timestamp(day_from), Timestamp(day_to), &book)?;
        }
        Ok((window.points_read, window.points_reused))
    }

    /// The user's verdict on the fix of `device` at `time`: `true` leaves
    /// it out of the timeline and maps (a teleport the detector missed),
    /// `false` puts it back in (a real fix the detector flagged). Stored as
    /// the user's edit, so it survives every recomputation; the fix's
    /// neighbourhood is recomputed before this returns.
    ///
    /// # Errors
    /// [`DerivedError::Invalid`] when the device has no fix at `time`; store failures.
    pub fn set_fix_flag(&self, user: UserId, device: DeviceId, time: Timestamp, flagged: bool) -> DerivedResult<()> {
        let mut tails = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        // The flag changes which points count, outside the change log the tails follow.
        tails.clear();
        outliers::set_edit(&*self.store, user, device, time, flagged)?;
        let params = settings(&*self.store, user)?;
        let span = Span::Between(time, time);
        self.refresh_device(user, device, span, Some(span), &params, None)?;
        Ok(())
    }

    /// Stores the user's edit of the stay of `device` shown as starting at
    /// `shown` ([`crate::visit_edits::set`]) and refreshes the statistics of
    /// the days it touches. Returns `false` when there is no such stay.
    ///
    /// # Errors
    /// [`DerivedError::Invalid`] naming the field of a bad edit; store failures.
    pub fn set_visit_edit(
        &self,
        user: UserId,
        device: DeviceId,
        shown: Timestamp,
        edit: &crate::visit_edits::VisitEdit,
    ) -> DerivedResult<bool> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let store = &*self.store;
        let Some((from, to)) = crate::visit_edits::set(store, user, device, shown, edit)? else { return Ok(false) };
        let book = PlaceBook::load(store, user)?;
        days::refresh(store, user, device, from, to, &book)?;
        Ok(true)
    }

    /// Corrects the transport mode of the leg of `device` that starts at
    /// `start`, and refreshes the statistics of its days. The correction is
    /// the user's edit: it survives every recomputation.
    ///
    /// # Errors
    /// [`DerivedError::Invalid`] when there is no such leg; store failures.
    pub fn set_leg_mode(
        &self,
        user: UserId,
        device: DeviceId,
        start: Timestamp,
        mode: TransportMode,
    ) -> DerivedResult<()> {
        let _guard = self.lock.lock().unwrap_or_else(PoisonError::into_inner);
        let store = &*self.store;
        let scope = DerivedScope::Device(device);
        let rows = store.derived_range(user, &DerivedRange::key(LEG, scope, start.0))?;
        let Some(row) = rows.first() else {
            return Err(DerivedError::Invalid(format!("there is no leg starting at {start}")));
        };
        let leg: crate::rows::LegRow = decode(row)?;
        let edit = ModeEdit { end: leg.end, mode };
        let batch = DerivedBatch { delete: vec![], put: vec![encode(MODE_EDIT, DerivedScope::User, leg.start, &edit)] };
        store.derived_write(user, &batch, true)?;
        let book = PlaceBook::load(store, user)?;
        days::refresh(store, user, device, Timestamp(leg.start), Timestamp(leg.end), &book)?;
        Ok(())
    }
}
