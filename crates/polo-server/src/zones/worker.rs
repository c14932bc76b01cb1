//! The evaluation thread: every stored point against its owner's zones.
//!
//! **Which points.** The thread follows the change log from its cursor
//! (derived cursor [`CURSOR`]); each `PointsInserted` change marks its device
//! dirty. A dirty device is evaluated from its watermark: its stored points
//! in `[watermark, now − reorder window)` are read in time order (the store is
//! the reorder buffer: a fix that arrived out of order but within the window
//! is read in its place), fed to `polo_zones::Evaluator`, then the clock
//! ticks at the new watermark (dwell on a quiet phone, silence). A change with
//! points before the watermark came too late for that; those points are
//! evaluated as history instead, from a fresh state with [`HISTORY_CONTEXT`]
//! of points before them, and give *past* events: logged, never sent. So do
//! events older than `notify_max_age` when they are derived, which is what a
//! history import into a new device gives.
//!
//! **Once.** A step commits the device's states, its events and their outbox
//! rows in one transaction (`Store::commit_events`); the cursor moves after.
//! A crash in between evaluates the change again: the device's state records
//! the last change it took in, and the store keeps an event once by its key.
//!
//! **Several nodes.** Only the node holding [`LEASE`] evaluates. Zones edited
//! on another node reach the index within [`INDEX_REFRESH`].
//!
//! **More events.** Each step also looks at friends nearby for every device
//! it evaluates (`super::nearby`) and, after the zones, at the visits and
//! trips the timeline engine found (`super::moves`), which fail and retry on
//! their own so that zone events never wait for them.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::PoisonError;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::zones::DEVICE_STATE;
use polo_store::{ChangeKind, EventBatch, NewEvent, PointQuery, StateWrite, Store, ZoneStateRow};
use polo_zones::evaluate::{DeviceStatus, Event};
use polo_zones::webhook::{EventDocument, SubscriptionSpec};
use polo_zones::{DeviceWatch, Evaluator, Zone, ZoneIndex, ZoneState};

use super::{Shared, ZoneSettings, hold_lease, now};

/// The lease of the evaluating node.
pub const LEASE: &str = "zones";
/// How long the lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// The change-log cursor.
pub const CURSOR: &str = "zones";
/// How often the thread looks for changes.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// How often the index is reloaded for zones edited on other nodes.
pub const INDEX_REFRESH: Duration = Duration::from_secs(10);
/// How often every known device is ticked (silence, dwell on quiet phones).
pub const TICK_INTERVAL: Duration = Duration::from_secs(30);
/// Points before late ones that history evaluation reads for context.
pub const HISTORY_CONTEXT: Duration = Duration::from_secs(12 * 3_600);
/// Changes read per step.
const BATCH: usize = 2_000;

/// What a dirty device's changes covered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dirty {
    /// The newest change.
    pub seq: u64,
    /// The earliest point time they touched.
    pub first: Timestamp,
    /// The latest.
    pub last: Timestamp,
}

/// What the thread keeps between steps (all of it can be rebuilt from the store).
#[derive(Default)]
struct Memory {
    index: std::sync::Arc<ZoneIndex>,
    index_loaded: Option<Instant>,
    /// Devices with a stored state, ticked every [`TICK_INTERVAL`].
    known: BTreeMap<(UserId, DeviceId), ()>,
    swept: bool,
    ticked: Option<Instant>,
    /// Devices whose newest points wait for the reorder window.
    waiting: BTreeMap<(UserId, DeviceId), ()>,
    /// Visit and trip events logged lately.
    moves: super::moves::Seen,
    /// After a failed visit-and-trip step: when to try again, and the wait after that.
    moves_retry: Option<(Instant, Duration)>,
}

pub(crate) fn run(shared: &Shared) {
    let mut renewed = None;
    let mut memory = Memory::default();
    let mut retry = Duration::from_secs(1);
    while !shared.stop.load(Ordering::Relaxed) {
        match hold_lease(&*shared.store, LEASE, &shared.holder, LEASE_TTL, &mut renewed) {
            Ok(true) => {}
            Ok(false) => {
                memory = Memory::default(); // another node evaluates; start afresh if this one takes over
                shared.evaluate.wait(Duration::from_secs(1), &shared.stop);
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot take the zones lease");
                shared.evaluate.wait(retry, &shared.stop);
                continue;
            }
        }
        let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| step(shared, &mut memory)))
            .unwrap_or_else(|_| Err("zone evaluation panicked".to_owned()));
        match result {
            Ok(more) => {
                *shared.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
                retry = Duration::from_secs(1);
                if !more {
                    shared.evaluate.wait(POLL_INTERVAL, &shared.stop);
                }
            }
            Err(error) => {
                tracing::error!(%error, retry_in_s = retry.as_secs(), "zone evaluation failed; retrying");
                *shared.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                memory.index_loaded = None;
                shared.evaluate.wait(retry, &shared.stop);
                retry = (retry * 2).min(Duration::from_secs(300));
            }
        }
    }
    let _ = shared.store.release_lease(LEASE, &shared.holder);
}

/// The index of every zone of the instance; a zone that fails to decode is
/// left out with a warning. A group's zone is evaluated for its members'
/// devices (a zone of a group that is gone, for no one's).
pub fn load_index(store: &dyn Store) -> Result<ZoneIndex, String> {
    let rows = store.zones(None).map_err(|e| e.to_string())?;
    let mut members: HashMap<i64, HashSet<UserId>> = HashMap::new();
    let mut audiences = HashMap::new();
    for row in &rows {
        let Some(group) = row.group else { continue };
        let users = match members.entry(group) {
            std::collections::hash_map::Entry::Occupied(known) => known.into_mut(),
            std::collections::hash_map::Entry::Vacant(slot) => {
                let users = store.group_members(group).map_err(|e| e.to_string())?.into_iter().map(|m| m.user);
                slot.insert(users.collect())
            }
        };
        audiences.insert(row.id, users.clone());
    }
    let zones = rows
        .into_iter()
        .filter_map(|row| match Zone::from_body(row.id, row.user, &row.body) {
            Ok(zone) => Some(zone),
            Err(error) => {
                tracing::warn!(%error, "a stored zone is left out of evaluation");
                None
            }
        })
        .collect();
    Ok(ZoneIndex::with_audiences(zones, audiences))
}

/// One step; `Ok(true)` when the change log has more right away.
fn step(shared: &Shared, memory: &mut Memory) -> Result<bool, String> {
    let store = &*shared.store;
    let settings = shared.settings();
    let err = |e: polo_store::StoreError| e.to_string();
    if shared.zones_changed.swap(false, Ordering::Relaxed)
        || memory.index_loaded.is_none_or(|at| at.elapsed() >= INDEX_REFRESH)
    {
        memory.index = std::sync::Arc::new(load_index(store)?);
        memory.index_loaded = Some(Instant::now());
    }
    if !memory.swept {
        // After a start: every device with a state may have points waiting.
        for user in store.list_users().map_err(err)? {
            for device in store.list_devices(user.id).map_err(err)? {
                if !store.zone_states(user.id, device.id).map_err(err)?.is_empty() {
                    memory.known.insert((user.id, device.id), ());
                    memory.waiting.insert((user.id, device.id), ());
                }
            }
        }
        memory.swept = true;
    }
    let cursor = store.derived_cursor(CURSOR).map_err(err)?;
    let changes = store.changes_since(cursor, BATCH).map_err(err)?;
    let mut dirty: HashMap<(UserId, DeviceId), Dirty> = HashMap::new();
    for change in &changes {
        if change.kind != ChangeKind::PointsInserted {
            continue;
        }
        let (Some(device), Some(first), Some(last)) = (change.device, change.first, change.last) else { continue };
        let d = dirty.entry((change.user, device)).or_insert(Dirty { seq: change.seq.0, first, last });
        d.seq = d.seq.max(change.seq.0);
        d.first = d.first.min(first);
        d.last = d.last.max(last);
    }
    let tick_all = memory.ticked.is_none_or(|at| at.elapsed() >= TICK_INTERVAL);
    let mut todo: BTreeMap<(UserId, DeviceId), Option<Dirty>> = BTreeMap::new();
    for (&key, &d) in &dirty {
        todo.insert(key, Some(d));
    }
    for &key in memory.waiting.keys() {
        todo.entry(key).or_insert(None);
    }
    if tick_all {
        for &key in memory.known.keys() {
            todo.entry(key).or_insert(None);
        }
        memory.ticked = Some(Instant::now());
    }
    let mut subscriptions: HashMap<UserId, Vec<(i64, SubscriptionSpec)>> = HashMap::new();
    let mut queued = false;
    for ((user, device), d) in todo {
        if store.user_by_id(user).map_err(err)?.is_none() {
            memory.known.remove(&(user, device));
            memory.waiting.remove(&(user, device));
            continue; // deleted since
        }
        let subs = match subscriptions.entry(user) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(user_subscriptions(store, user)?),
        };
        let outcome = evaluate_device(store, &memory.index, &settings, user, device, d, subs, now())?;
        queued |= outcome.queued;
        for (user, document) in &outcome.published {
            shared.mqtt.event(*user, document);
        }
        let near = super::nearby::evaluate(store, &settings, user, device, subs, now())?;
        queued |= near.queued;
        for (user, document) in &near.published {
            shared.mqtt.event(*user, document);
        }
        memory.known.insert((user, device), ());
        if outcome.waiting {
            memory.waiting.insert((user, device), ());
        } else {
            memory.waiting.remove(&(user, device));
        }
    }
    if let Some(last) = changes.last() {
        store.set_derived_cursor(CURSOR, last.seq).map_err(err)?;
    }
    // Visits and trips, from what the timeline engine has computed so far.
    // A failure there is retried on its own back-off, so zone events do not wait for it.
    let moves = match memory.moves_retry {
        Some((at, _)) if Instant::now() < at => super::moves::MovesStep::default(),
        _ => match super::moves::step(store, &settings, now(), &mut memory.moves) {
            Ok(moves) => {
                memory.moves_retry = None;
                moves
            }
            Err(error) => {
                let wait =
                    memory.moves_retry.map_or(Duration::from_secs(1), |(_, w)| (w * 2).min(Duration::from_secs(300)));
                tracing::error!(%error, retry_in_s = wait.as_secs(), "visit and trip events failed; retrying");
                memory.moves_retry = Some((Instant::now() + wait, wait));
                super::moves::MovesStep::default()
            }
        },
    };
    queued |= moves.queued;
    for (user, document) in &moves.published {
        shared.mqtt.event(*user, document);
    }
    if queued {
        shared.deliver.ring();
    }
    Ok(changes.len() == BATCH || moves.more)
}

pub(crate) fn user_subscriptions(store: &dyn Store, user: UserId) -> Result<Vec<(i64, SubscriptionSpec)>, String> {
    let rows = store.webhooks(Some(user)).map_err(|e| e.to_string())?;
    Ok(rows
        .into_iter()
        .filter_map(|row| match serde_json::from_str(&row.body) {
            Ok(spec) => Some((row.id, spec)),
            Err(error) => {
                tracing::warn!(%error, webhook = row.id, "a stored webhook subscription does not decode; skipped");
                None
            }
        })
        .collect())
}

/// What evaluating a device did.
#[derive(Debug, Default)]
pub struct DeviceOutcome {
    /// Events logged (new ones).
    pub logged: usize,
    /// Whether deliveries were queued.
    pub queued: bool,
    /// Whether points newer than the watermark wait.
    pub waiting: bool,
    /// The new events that are not past, with their ids, for the MQTT broker.
    pub published: Vec<(polo_domain::UserId, EventDocument)>,
}

fn load_watch(store: &dyn Store, user: UserId, device: DeviceId) -> Result<DeviceWatch, String> {
    let mut watch = DeviceWatch::default();
    for row in store.zone_states(user, device).map_err(|e| e.to_string())? {
        if row.zone < DEVICE_STATE {
            continue; // towards a friend (`super::nearby`)
        }
        if row.zone == DEVICE_STATE {
            match serde_json::from_str::<DeviceStatus>(&row.body) {
                Ok(status) => watch.status = status,
                Err(error) => tracing::warn!(%error, device = device.0, "a device's zone status is damaged; reset"),
            }
        } else {
            match serde_json::from_str::<ZoneState>(&row.body) {
                Ok(state) => {
                    watch.zones.insert(row.zone, state);
                }
                Err(error) => tracing::warn!(%error, zone = row.zone, "a zone state is damaged; reset"),
            }
        }
    }
    Ok(watch)
}

fn scan(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: Timestamp,
    to: Timestamp,
    visit: &mut dyn FnMut(&polo_domain::Fix),
) -> Result<(), String> {
    let query = PointQuery { user, device: Some(device), from: Some(from), to: Some(to) };
    store
        .scan_points(&query, &mut |p| {
            visit(&p.fix);
            ControlFlow::Continue(())
        })
        .map_err(|e| e.to_string())
}

/// Evaluates `device` (of `user`) up to `now − reorder window`: the change
/// `dirty` brought, if any, and whatever waited. Commits states, events and
/// deliveries together.
///
/// # Errors
/// Store failures, as text.
#[allow(clippy::too_many_arguments)]
pub fn evaluate_device(
    store: &dyn Store,
    index: &ZoneIndex,
    settings: &ZoneSettings,
    user: UserId,
    device: DeviceId,
    dirty: Option<Dirty>,
    subscriptions: &[(i64, SubscriptionSpec)],
    now: Timestamp,
) -> Result<DeviceOutcome, String> {
    let mut watch = load_watch(store, user, device)?;
    let before = watch.clone();
    let evaluator = Evaluator::new(index, settings.watch);
    let window_ms = i64::try_from(settings.reorder_window.as_millis()).unwrap_or(i64::MAX);
    let mark = Timestamp(now.0.saturating_sub(window_ms));
    let mut live: Vec<Event> = Vec::new();
    let mut past: Vec<Event> = Vec::new();
    let mut from = watch.status.watermark;
    if let Some(d) = dirty
        && d.seq > watch.status.seq
    {
        if let Some(w) = watch.status.watermark
            && d.first < w
        {
            // Late points: their turn has passed. Derive what they say about
            // the past from a fresh state, without touching the live one.
            let context = i64::try_from(HISTORY_CONTEXT.as_millis()).unwrap_or(i64::MAX);
            let mut history = DeviceWatch::default();
            let mut events = Vec::new();
            scan(store, user, device, Timestamp(d.first.0.saturating_sub(context)), w, &mut |fix| {
                evaluator.fix(user, device, &mut history, fix, &mut events);
            })?;
            past.extend(events.into_iter().filter(|e| e.at >= d.first && e.kind.name().starts_with("zone.")));
        }
        if from.is_none() {
            // A device's first points: nothing before them is known.
            from = Some(d.first);
            watch.status.watermark = Some(d.first);
        }
        watch.status.seq = d.seq;
    }
    if let Some(from) = from
        && from < mark
    {
        scan(store, user, device, from, mark, &mut |fix| evaluator.fix(user, device, &mut watch, fix, &mut live))?;
        evaluator.tick(user, device, &mut watch, mark, &mut live);
        watch.status.watermark = Some(mark);
    }
    let waiting = from.is_some()
        && store.last_point(user, device).map_err(|e| e.to_string())?.is_some_and(|p| p.fix.time >= mark);
    // What changed.
    let mut states = Vec::new();
    if watch.status != before.status {
        let body = serde_json::to_string(&watch.status).expect("a status serialises");
        states.push(StateWrite::Put(ZoneStateRow { device, zone: DEVICE_STATE, body }));
    }
    for (&zone, state) in &watch.zones {
        if before.zones.get(&zone) == Some(state) {
            continue;
        }
        if state.is_idle() && state.last_transition.is_none() {
            if before.zones.contains_key(&zone) {
                states.push(StateWrite::Delete { device, zone });
            }
        } else {
            let body = serde_json::to_string(state).expect("a zone state serialises");
            states.push(StateWrite::Put(ZoneStateRow { device, zone, body }));
        }
    }
    for &zone in before.zones.keys() {
        if !watch.zones.contains_key(&zone) {
            states.push(StateWrite::Delete { device, zone });
        }
    }
    if states.is_empty() && live.is_empty() && past.is_empty() {
        return Ok(DeviceOutcome { waiting, ..DeviceOutcome::default() });
    }
    let device_name = store
        .list_devices(user)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|d| d.id == device)
        .map_or_else(|| format!("device {}", device.0), |d| d.name);
    let max_age = i64::try_from(settings.notify_max_age.as_millis()).unwrap_or(i64::MAX);
    let mut events = Vec::new();
    let mut documents = Vec::new();
    let mut queued = false;
    let tagged = live.into_iter().map(|e| (e, false)).chain(past.into_iter().map(|e| (e, true)));
    for (event, late) in tagged {
        let past = late || event.at.0 < now.0.saturating_sub(max_age);
        let deliver_to: Vec<i64> = if past {
            Vec::new()
        } else {
            subscriptions.iter().filter(|(_, s)| s.wants(event.kind, event.zone)).map(|(id, _)| *id).collect()
        };
        queued |= !deliver_to.is_empty();
        let document = EventDocument {
            id: 0,
            kind: event.kind.name().to_owned(),
            at_ms: event.at.0,
            device: device.0,
            device_name: device_name.clone(),
            zone: event.zone,
            zone_name: event.zone.and_then(|z| index.get(z)).map(|z| z.spec.name.clone()),
            past,
            detail: event.detail.clone(),
        };
        documents.push(document.clone());
        events.push(NewEvent {
            dedup_key: event.dedup_key(),
            at: event.at,
            kind: event.kind.name().to_owned(),
            device,
            zone: event.zone,
            body: serde_json::to_string(&document).expect("an event serialises"),
            deliver_to,
        });
    }
    let ids = store.commit_events(&EventBatch { user, states, events, made: now }).map_err(|e| e.to_string())?;
    let logged = ids.iter().flatten().count();
    if logged > 0 {
        tracing::debug!(user = user.0, device = device.0, logged, "zone events logged");
    }
    let published = ids
        .iter()
        .zip(documents)
        .filter_map(|(id, document)| id.map(|id| EventDocument { id, ..document }))
        .filter(|document| !document.past)
        .map(|document| (user, document))
        .collect();
    Ok(DeviceOutcome { logged, queued, waiting, published })
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Fix, SourceFormat};
    use polo_store::Store;
    use polo_store_sqlite::SqliteStore;
    use polo_zones::{Rules, Shape, ZoneSpec};

    use super::*;

    const NOW: i64 = 1_800_000_000_000;
    const MIN: i64 = 60_000;

    /// A fix at `t`, in the zone or 2 km north of it.
    fn fix(t: i64, inside: bool) -> Fix {
        let lat = if inside { 52.52 } else { 52.54 };
        let mut f = Fix::new(Timestamp(t), Coord::from_degrees(lat, 13.405).unwrap(), SourceFormat::Api);
        f.horizontal_accuracy_cm = Some(500);
        f
    }

    /// Two visits, fixes a minute apart from `start`.
    fn visits(start: i64) -> Vec<Fix> {
        [true, true, false, false, true, true, false, false]
            .iter()
            .enumerate()
            .map(|(i, &inside)| fix(start + i as i64 * MIN, inside))
            .collect()
    }

    struct Setup {
        store: SqliteStore,
        user: UserId,
        device: DeviceId,
        index: ZoneIndex,
        subs: Vec<(i64, SubscriptionSpec)>,
        settings: ZoneSettings,
    }

    fn setup() -> Setup {
        let store = SqliteStore::open_in_memory().unwrap();
        let user = store.create_user("jane", "h", false).unwrap().id;
        let device = store.ensure_device(user, "phone").unwrap().id;
        let spec = ZoneSpec {
            origin: None,
            name: "Home".into(),
            shape: Shape::Circle { center: [52.52, 13.405], radius_m: 100.0 },
            rules: Rules { dwell_s: 60, exit_confirmations: 2, cooldown_s: 0, ..Rules::default() },
        };
        store.create_zone(user, &spec.to_body(), Timestamp(NOW)).unwrap();
        let spec = SubscriptionSpec {
            url: "http://127.0.0.1:9/".into(),
            preset: Default::default(),
            kinds: vec![],
            zones: vec![],
            disabled: false,
        };
        let hook = store.create_webhook(user, &serde_json::to_string(&spec).unwrap(), "s", Timestamp(NOW)).unwrap();
        let index = load_index(&store).unwrap();
        let settings = ZoneSettings { reorder_window: Duration::from_secs(30), ..ZoneSettings::default() };
        Setup { store, user, device, index, subs: vec![(hook, spec)], settings }
    }

    impl Setup {
        /// Stores `fixes` and evaluates the change they made at `now`.
        fn ingest(&self, fixes: &[Fix], now: i64) -> DeviceOutcome {
            let outcome = self.store.insert_points(self.user, self.device, fixes).unwrap();
            let dirty = Dirty {
                seq: outcome.seq.unwrap().0,
                first: fixes.iter().map(|f| f.time).min().unwrap(),
                last: fixes.iter().map(|f| f.time).max().unwrap(),
            };
            self.evaluate(Some(dirty), now)
        }

        fn evaluate(&self, dirty: Option<Dirty>, now: i64) -> DeviceOutcome {
            evaluate_device(
                &self.store,
                &self.index,
                &self.settings,
                self.user,
                self.device,
                dirty,
                &self.subs,
                Timestamp(now),
            )
            .unwrap()
        }

        /// The log as (kind, minutes before NOW, past).
        fn log(&self) -> Vec<(String, i64, bool)> {
            let events = self.store.events(self.user, 0, 100).unwrap();
            events
                .iter()
                .map(|e| {
                    let doc: EventDocument = serde_json::from_str(&e.body).unwrap();
                    (doc.kind, (NOW - doc.at_ms) / MIN, doc.past)
                })
                .collect()
        }

        fn due(&self) -> usize {
            self.store.deliveries(self.user, self.subs[0].0, None, 100).unwrap().len()
        }
    }

    fn kinds(log: &[(String, i64, bool)]) -> Vec<&str> {
        log.iter().map(|e| e.0.as_str()).collect()
    }

    #[test]
    fn a_history_import_computes_past_visits_and_notifies_nobody() {
        let s = setup();
        let day = 86_400_000;
        let outcome = s.ingest(&visits(NOW - 2 * day), NOW);
        assert_eq!(outcome.logged, 5);
        assert!(!outcome.queued);
        // The device has been silent since the last imported fix, too.
        assert_eq!(kinds(&s.log()), ["zone.enter", "zone.leave", "zone.enter", "zone.leave", "device.silent"]);
        assert!(s.log().iter().all(|e| e.2), "past: {:?}", s.log());
        assert_eq!(s.due(), 0, "no deliveries for old data");
    }

    #[test]
    fn live_points_notify_late_ones_give_past_events_and_nothing_is_logged_twice() {
        let s = setup();
        // Live: a visit that ended a few minutes ago; its newest fix waits for the window.
        let live = visits(NOW - 20 * MIN);
        let outcome = s.ingest(&live[..4], NOW - 17 * MIN - 10_000);
        assert_eq!((outcome.logged, outcome.queued, outcome.waiting), (1, true, true));
        let outcome = s.evaluate(None, NOW - 16 * MIN);
        assert_eq!((outcome.logged, outcome.queued, outcome.waiting), (1, true, false));
        assert_eq!(s.log(), [("zone.enter".into(), 19, false), ("zone.leave".into(), 17, false)]);
        assert_eq!(s.due(), 2);
        // Evaluating again changes nothing.
        assert_eq!(s.evaluate(None, NOW - 16 * MIN).logged, 0);
        // The second visit, stored out of order within the window: evaluated in time order.
        s.store.insert_points(s.user, s.device, &[live[5].clone(), live[7].clone()]).unwrap();
        s.store.insert_points(s.user, s.device, &[live[4].clone(), live[6].clone()]).unwrap();
        let seq = s.store.last_seq().unwrap().0;
        let dirty = Dirty { seq, first: live[4].time, last: live[7].time };
        let outcome = s.evaluate(Some(dirty), NOW);
        assert_eq!((outcome.logged, outcome.queued), (2, true));
        assert_eq!(&s.log()[2..], [("zone.enter".into(), 15, false), ("zone.leave".into(), 13, false)]);
        assert_eq!(s.due(), 4);
        // Points older than the watermark: evaluated as history, logged as past, sent to no one.
        let late: Vec<Fix> = visits(NOW - 60 * MIN)[..4].to_vec();
        let outcome = s.ingest(&late, NOW);
        assert_eq!((outcome.logged, outcome.queued), (2, false));
        assert_eq!(&s.log()[4..], [("zone.enter".into(), 59, true), ("zone.leave".into(), 57, true)]);
        assert_eq!(s.due(), 4, "late points notify nobody");
        // The same change seen again (a crash before the cursor moved) logs nothing.
        let seq = s.store.last_seq().unwrap().0;
        let again = Dirty { seq, first: late[0].time, last: late[3].time };
        assert_eq!(s.evaluate(Some(again), NOW).logged, 0);
        assert_eq!(s.log().len(), 6);
    }

    #[test]
    fn a_group_zone_fires_for_every_members_devices_and_no_one_elses() {
        let store = SqliteStore::open_in_memory().unwrap();
        let maker = store.create_user("ann", "h", false).unwrap().id;
        let member = store.create_user("ben", "h", false).unwrap().id;
        let stranger = store.create_user("cat", "h", false).unwrap().id;
        let group = store.create_group("Family", maker, Timestamp(NOW)).unwrap().id;
        let invitation =
            polo_store::NewInvitation { group, created_by: maker, max_uses: 1, expires: Timestamp(NOW + 86_400_000) };
        store.create_group_invitation(&invitation, &[5; 32]).unwrap();
        store.join_group(&[5; 32], member, Timestamp(NOW)).unwrap();
        let spec = ZoneSpec {
            origin: None,
            name: "Home".into(),
            shape: Shape::Circle { center: [52.52, 13.405], radius_m: 100.0 },
            rules: Rules { dwell_s: 60, exit_confirmations: 2, cooldown_s: 0, ..Rules::default() },
        };
        let zone = store.create_group_zone(maker, group, &spec.to_body(), Timestamp(NOW)).unwrap();
        let settings = ZoneSettings { reorder_window: Duration::from_secs(30), ..ZoneSettings::default() };
        let zone_events = |store: &SqliteStore, user: UserId| -> Vec<(String, Option<String>)> {
            let events = store.events(user, 0, 100).unwrap();
            events
                .iter()
                .map(|e| serde_json::from_str::<EventDocument>(&e.body).unwrap())
                .filter(|d| d.kind.starts_with("zone."))
                .map(|d| (d.kind, d.zone_name))
                .collect()
        };
        let run = |index: &ZoneIndex, user: UserId, start: i64| {
            let device = store.ensure_device(user, "phone").unwrap().id;
            let fixes = visits(start);
            let outcome = store.insert_points(user, device, &fixes).unwrap();
            let dirty = Dirty { seq: outcome.seq.unwrap().0, first: fixes[0].time, last: fixes[7].time };
            evaluate_device(&store, index, &settings, user, device, Some(dirty), &[], Timestamp(NOW)).unwrap();
        };
        let index = load_index(&store).unwrap();
        for user in [maker, member, stranger] {
            run(&index, user, NOW - 30 * MIN);
        }
        let home = Some("Home".to_owned());
        let two_visits: Vec<(String, Option<String>)> = ["zone.enter", "zone.leave", "zone.enter", "zone.leave"]
            .iter()
            .map(|k| ((*k).to_owned(), home.clone()))
            .collect();
        assert_eq!(zone_events(&store, maker), two_visits);
        assert_eq!(zone_events(&store, member), two_visits, "the member's phone fires the group's zone");
        assert!(zone_events(&store, stranger).is_empty(), "no one outside the group");
        assert!(store.events(member, 0, 100).unwrap().iter().all(|e| e.zone.is_none() || e.zone == Some(zone)));

        // Once the member has left, their phone no longer fires it.
        store.remove_group_member(group, member).unwrap();
        let index = load_index(&store).unwrap();
        run(&index, member, NOW - 10 * MIN);
        assert_eq!(zone_events(&store, member).len(), 4, "nothing new after leaving");
    }
}
