//! Visit and trip events (`visit.start`, `visit.end`, `trip.start`,
//! `trip.end`): the timeline engine's newest stays and legs, logged and sent
//! like zone events.
//!
//! **Which changes.** This follows the change log with a cursor of its own
//! ([`CURSOR`]), but never past the timeline engine's cursor: a change is
//! looked at only once the engine has recomputed the stays and legs it
//! touched. Each device a change inserted points into then has its newest
//! stored rows read and turned into events (`polo_derived::moves`), which
//! depend on the rows alone, so reading them again gives the same events
//! with the same keys and the log keeps each once.
//!
//! **Live only.** An event older than `notify_max_age` when it is derived
//! (a history import, a phone's queue of old fixes, a backfill) is not
//! logged at all — not even as past, as zone events are: the timeline
//! itself is the record of past visits and trips, and an import of years
//! would otherwise fill the log with them. A change whose newest point is
//! that old is not looked at.
//!
//! **Once.** It runs in the zone evaluation thread, on the node holding the
//! `zones` lease, and commits a device's events and their outbox rows in
//! one transaction (`Store::commit_events`), whose keys are unique in the
//! log; the cursor moves after. A crash in between derives the same events
//! again, and the log keeps them once.

use std::collections::{BTreeSet, HashMap};

use polo_derived::moves::{Move, MoveKind};
use polo_derived::places::PlaceBook;
use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{ChangeKind, EventBatch, NewEvent, Store};
use polo_zones::webhook::{EventDocument, SubscriptionSpec};
use polo_zones::{Event, EventKind};

use super::ZoneSettings;
use super::worker::user_subscriptions;

/// The change-log cursor.
pub const CURSOR: &str = "timeline-events";
/// Changes read per step.
const BATCH: usize = 2_000;

/// The keys of events logged lately, per device, so that deriving them
/// again does not cost a write transaction each time (the log's unique key
/// would keep them once anyway). Keys older than `notify_max_age` are
/// forgotten, as those events are not derived any more.
#[derive(Debug, Default)]
pub struct Seen(HashMap<(UserId, DeviceId), BTreeSet<(i64, String)>>);

impl Seen {
    fn forget_before(&mut self, oldest: Timestamp) {
        for keys in self.0.values_mut() {
            *keys = keys.split_off(&(oldest.0, String::new()));
        }
        self.0.retain(|_, keys| !keys.is_empty());
    }
}

/// What one step did.
#[derive(Debug, Default)]
pub struct MovesStep {
    /// Whether the change log has more that the engine has computed.
    pub more: bool,
    /// Events logged (new ones).
    pub logged: usize,
    /// Whether deliveries were queued.
    pub queued: bool,
    /// The new events with their ids, for the MQTT broker.
    pub published: Vec<(UserId, EventDocument)>,
}

/// A move's time and its key in the event log.
fn key(user: UserId, device: DeviceId, m: &Move) -> (i64, String) {
    let kind = kind_of(m.kind);
    let event = Event { kind, at: Timestamp(m.at), user, device, zone: None, detail: serde_json::Value::Null };
    (m.at, event.dedup_key())
}

fn kind_of(kind: MoveKind) -> EventKind {
    match kind {
        MoveKind::VisitStart => EventKind::VisitStart,
        MoveKind::VisitEnd => EventKind::VisitEnd,
        MoveKind::TripStart => EventKind::TripStart,
        MoveKind::TripEnd => EventKind::TripEnd,
    }
}

/// Looks at the changes after [`CURSOR`] that the timeline engine has
/// computed, logs the visit and trip events of the devices they touched
/// and queues their deliveries.
///
/// # Errors
/// Store failures and damaged rows, as text; the cursor stays where it was.
pub fn step(store: &dyn Store, settings: &ZoneSettings, now: Timestamp, seen: &mut Seen) -> Result<MovesStep, String> {
    let err = |e: polo_store::StoreError| e.to_string();
    let computed = store.derived_cursor(polo_derived::kinds::CURSOR).map_err(err)?;
    let cursor = store.derived_cursor(CURSOR).map_err(err)?;
    if cursor >= computed {
        return Ok(MovesStep::default());
    }
    let max_age = i64::try_from(settings.notify_max_age.as_millis()).unwrap_or(i64::MAX);
    let oldest = Timestamp(now.0.saturating_sub(max_age));
    seen.forget_before(oldest);
    let changes = store.changes_since(cursor, BATCH).map_err(err)?;
    let mut reached = cursor;
    let mut devices: BTreeSet<(UserId, DeviceId)> = BTreeSet::new();
    for change in changes.iter().take_while(|c| c.seq <= computed) {
        reached = change.seq;
        if change.kind == ChangeKind::PointsInserted
            && let Some(device) = change.device
            && change.last.is_some_and(|last| last >= oldest)
        {
            devices.insert((change.user, device));
        }
    }
    let mut report = MovesStep { more: changes.len() == BATCH && reached < computed, ..MovesStep::default() };
    let mut subscriptions: HashMap<UserId, Vec<(i64, SubscriptionSpec)>> = HashMap::new();
    for (user, device) in devices {
        if store.user_by_id(user).map_err(err)?.is_none() {
            continue; // deleted since
        }
        let known = seen.0.entry((user, device)).or_default();
        let moves: Vec<Move> = match polo_derived::moves::newest(store, user, device) {
            Ok(moves) => {
                moves.into_iter().filter(|m| m.at >= oldest.0 && !known.contains(&key(user, device, m))).collect()
            }
            Err(_) if store.user_by_id(user).map_err(err)?.is_none() => continue,
            Err(e) => return Err(e.to_string()),
        };
        if moves.is_empty() {
            continue;
        }
        let subs = match subscriptions.entry(user) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => e.insert(user_subscriptions(store, user)?),
        };
        log_device(store, user, device, &moves, subs, now, &mut report)?;
        known.extend(moves.iter().map(|m| key(user, device, m)));
    }
    if reached > cursor {
        store.set_derived_cursor(CURSOR, reached).map_err(err)?;
    }
    Ok(report)
}

/// Logs `moves` of `device` (those the log does not have yet) with their deliveries.
fn log_device(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    moves: &[Move],
    subscriptions: &[(i64, SubscriptionSpec)],
    now: Timestamp,
    report: &mut MovesStep,
) -> Result<(), String> {
    let device_name = store
        .list_devices(user)
        .map_err(|e| e.to_string())?
        .into_iter()
        .find(|d| d.id == device)
        .map_or_else(|| format!("device {}", device.0), |d| d.name);
    let book = PlaceBook::load(store, user).map_err(|e| e.to_string())?;
    let title = |place: i64| book.title(book.resolve(place));
    let mut events = Vec::with_capacity(moves.len());
    let mut documents = Vec::with_capacity(moves.len());
    for m in moves {
        let kind = kind_of(m.kind);
        let event = Event { kind, at: Timestamp(m.at), user, device, zone: None, detail: m.detail(&title) };
        let deliver_to: Vec<i64> =
            subscriptions.iter().filter(|(_, s)| s.wants(kind, None)).map(|(id, _)| *id).collect();
        let document = EventDocument {
            id: 0,
            kind: kind.name().to_owned(),
            at_ms: m.at,
            device: device.0,
            device_name: device_name.clone(),
            zone: None,
            zone_name: None,
            past: false,
            detail: event.detail.clone(),
        };
        events.push(NewEvent {
            dedup_key: event.dedup_key(),
            at: event.at,
            kind: kind.name().to_owned(),
            device,
            zone: None,
            body: serde_json::to_string(&document).expect("an event serialises"),
            deliver_to: deliver_to.clone(),
        });
        documents.push((document, !deliver_to.is_empty()));
    }
    let ids =
        store.commit_events(&EventBatch { user, states: Vec::new(), events, made: now }).map_err(|e| e.to_string())?;
    for (id, (document, delivered)) in ids.into_iter().zip(documents) {
        if let Some(id) = id {
            report.logged += 1;
            report.queued |= delivered;
            report.published.push((user, EventDocument { id, ..document }));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use polo_domain::{Coord, Fix, Seq, SourceFormat};
    use polo_store_sqlite::SqliteStore;

    use super::*;

    const MIN: i64 = 60_000;

    /// A morning: 20 minutes at home, a 2 km trip of 10 minutes, then 25
    /// minutes (and on) at work from minute 30; fixes a minute apart from `start`.
    fn morning(start: i64) -> Vec<Fix> {
        (0..=55)
            .map(|minute: i64| {
                let north_m = match minute {
                    0..=20 => 0.0,
                    21..=30 => (minute - 20) as f64 * 200.0,
                    _ => 2_000.0,
                };
                let lat = 52.52 + north_m / 111_195.0;
                let mut fix = Fix::new(
                    Timestamp(start + minute * MIN),
                    Coord::from_degrees(lat, 13.405).unwrap(),
                    SourceFormat::Api,
                );
                fix.horizontal_accuracy_cm = Some(500);
                fix
            })
            .collect()
    }

    struct Setup {
        store: Arc<SqliteStore>,
        engine: polo_derived::Engine,
        user: UserId,
        hook: i64,
        settings: ZoneSettings,
        seen: Seen,
    }

    fn setup() -> Setup {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let user = store.create_user("jane", "h", false).unwrap().id;
        let spec = SubscriptionSpec {
            url: "http://127.0.0.1:9/".into(),
            preset: polo_zones::webhook::Preset::Json,
            kinds: vec!["visit.start".into(), "trip.end".into()],
            zones: vec![],
            disabled: false,
        };
        let hook = store.create_webhook(user, &serde_json::to_string(&spec).unwrap(), "s", Timestamp(0)).unwrap();
        let engine = polo_derived::Engine::new(store.clone(), None);
        Setup { store, engine, user, hook, settings: ZoneSettings::default(), seen: Seen::default() }
    }

    impl Setup {
        /// Stores `fixes` for `device`, lets the engine compute them, then steps at `now`.
        fn ingest(&mut self, device: &str, fixes: &[Fix], now: i64) -> MovesStep {
            let device = self.store.ensure_device(self.user, device).unwrap().id;
            self.store.insert_points(self.user, device, fixes).unwrap();
            while self.engine.catch_up().unwrap().changes > 0 {}
            step(&*self.store, &self.settings, Timestamp(now), &mut self.seen).unwrap()
        }

        /// The log as (kind, device name, minutes after `start`).
        fn log(&self, start: i64) -> Vec<(String, String, i64)> {
            let events = self.store.events(self.user, 0, 100).unwrap();
            events
                .iter()
                .map(|e| {
                    let doc: EventDocument = serde_json::from_str(&e.body).unwrap();
                    (doc.kind, doc.device_name, (doc.at_ms - start) / MIN)
                })
                .collect()
        }
    }

    #[test]
    fn a_live_morning_logs_visits_and_trips_once_and_an_import_of_it_logs_nothing() {
        let mut s = setup();
        let now = 1_800_000_000_000;
        let start = now - 57 * MIN;
        // An import of the same morning three days ago: old data, nothing logged.
        let old = s.ingest("old-phone", &morning(start - 3 * 86_400_000), now);
        assert_eq!((old.logged, old.queued), (0, false));
        assert!(s.log(start).is_empty());
        // Live: the first visit is found, then ended by the trip, then the next visit.
        let fixes = morning(start);
        let first = s.ingest("phone", &fixes[..=18], now - 37 * MIN);
        assert_eq!(s.log(start), [("visit.start".into(), "phone".into(), 0)]);
        assert!(first.queued, "visit.start is one of the subscription's kinds");
        s.ingest("phone", &fixes[19..], now);
        let log = s.log(start);
        let kinds: Vec<(&str, i64)> = log.iter().map(|(k, _, m)| (k.as_str(), *m)).collect();
        assert_eq!(
            kinds,
            [("visit.start", 0), ("visit.end", 21), ("trip.start", 21), ("trip.end", 30), ("visit.start", 30)]
        );
        let events = s.store.events(s.user, 0, 100).unwrap();
        let trip: EventDocument = serde_json::from_str(&events[3].body).unwrap();
        // Along its legs: from the first fix away (200 m out) to the last before work (1.8 km).
        assert_eq!(trip.detail["distance_m"].as_f64().map(f64::round), Some(1_600.0), "{trip:?}");
        assert_eq!(trip.detail["started"], start + 21 * MIN);
        assert!(!trip.past && trip.zone.is_none());
        // Deliveries for the subscribed kinds only: two visit starts and the trip's end.
        let deliveries = s.store.deliveries(s.user, s.hook, None, 100).unwrap();
        assert_eq!(deliveries.len(), 3);
        // The same rows read again — another step, or a fresh node after a crash — log nothing more.
        let again = step(&*s.store, &s.settings, Timestamp(now), &mut s.seen).unwrap();
        assert_eq!(again.logged, 0);
        s.store.set_derived_cursor(CURSOR, Seq(0)).unwrap();
        let fresh = step(&*s.store, &s.settings, Timestamp(now), &mut Seen::default()).unwrap();
        assert_eq!((fresh.logged, fresh.queued), (0, false));
        assert_eq!(s.store.events(s.user, 0, 100).unwrap().len(), 5);
    }

    #[test]
    fn nothing_is_looked_at_before_the_engine_computed_it() {
        let mut s = setup();
        let now = 1_800_000_000_000;
        let device = s.store.ensure_device(s.user, "phone").unwrap().id;
        s.store.insert_points(s.user, device, &morning(now - 57 * MIN)).unwrap();
        let early = step(&*s.store, &s.settings, Timestamp(now), &mut s.seen).unwrap();
        assert_eq!(early.logged, 0);
        assert_eq!(s.store.derived_cursor(CURSOR).unwrap(), Seq(0), "the cursor waits for the engine");
        while s.engine.catch_up().unwrap().changes > 0 {}
        assert_eq!(step(&*s.store, &s.settings, Timestamp(now), &mut s.seen).unwrap().logged, 5);
    }
}
