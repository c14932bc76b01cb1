//! Friends nearby (`friend.nearby`, `friend.away`): a user's device against
//! the newest position of every friend who lets the user see it (the
//! location grants of `crate::sharing::friends`), with the user's two
//! distances (`GET|PUT /api/v1/nearby`).
//!
//! **When.** The zone evaluation thread calls [`evaluate`] for every device
//! it evaluates: one that sent points, and every known device each tick
//! (`worker::TICK_INTERVAL`), so a friend who walks up to a phone lying
//! still is noticed within a tick. Both positions must be recent (within
//! `notify_max_age`): a friend who stopped sending is neither nearby nor
//! away, and old data never fires. The semantics (hysteresis, accuracy)
//! are `polo_zones::nearby`'s.
//!
//! **Once.** A pair's state is stored beside the device's zone states
//! (`polo_store::zones::friend_state`) and committed with its events in one
//! transaction, on the node holding the `zones` lease; an event's key names
//! the kind, device, friend and instant, so evaluating again logs nothing.
//!
//! **Settings.** The distances are a derived row of the user
//! (`polo_derived::kinds::NEARBY`), written as an edit like the timeline
//! settings; defaults `polo_zones::nearby::DEFAULT_ENTER_M` and `DEFAULT_LEAVE_M`.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use polo_derived::kinds::NEARBY;
use polo_domain::{DeviceId, Point, Timestamp, UserId};
use polo_store::zones::friend_state;
use polo_store::{
    DerivedBatch, DerivedRange, DerivedRow, DerivedScope, EventBatch, NewEvent, StateWrite, Store, ZoneStateRow,
};
use polo_zones::EventKind;
use polo_zones::geometry::haversine_m;
use polo_zones::nearby::{NearbyRules, NearbyState, NearbyTransition};
use polo_zones::webhook::{EventDocument, SubscriptionSpec};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ZoneSettings;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, JsonBodyErrors};
use crate::query::derived::blocking;

/// The user's distances (the defaults until set, or when the stored row is
/// damaged: one user's bad row must not stop evaluation for everyone).
///
/// # Errors
/// Store failures, as text.
pub fn rules(store: &dyn Store, user: UserId) -> Result<NearbyRules, String> {
    let rows =
        store.derived_range(user, &DerivedRange::key(NEARBY, DerivedScope::User, 0)).map_err(|e| e.to_string())?;
    Ok(rows.first().map_or_else(NearbyRules::default, |row| {
        serde_json::from_slice(&row.value).unwrap_or_else(|error| {
            tracing::warn!(%error, user = user.0, "the friend-nearby distances are damaged; the defaults apply");
            NearbyRules::default()
        })
    }))
}

/// Stores the user's distances as an edit (it replicates).
///
/// # Errors
/// The bad field, named; store failures.
fn set_rules(store: &dyn Store, user: UserId, rules: &NearbyRules) -> Result<(), ApiError> {
    rules.validate().map_err(ApiError::bad_request)?;
    let value = serde_json::to_vec(rules).expect("distances serialise");
    let row = DerivedRow { kind: NEARBY, scope: DerivedScope::User, key: 0, value };
    store.derived_write(user, &DerivedBatch { delete: vec![], put: vec![row] }, true)?;
    Ok(())
}

/// What evaluating a device against its user's friends did.
#[derive(Debug, Default)]
pub struct NearbyOutcome {
    /// Events logged (new ones).
    pub logged: usize,
    /// Whether deliveries were queued.
    pub queued: bool,
    /// The new events with their ids, for the MQTT broker.
    pub published: Vec<(UserId, EventDocument)>,
}

/// The newest point of any of `user`'s devices.
fn newest_of(store: &dyn Store, user: UserId) -> Result<Option<Point>, String> {
    let mut newest: Option<Point> = None;
    for device in store.list_devices(user).map_err(|e| e.to_string())? {
        if let Some(point) = store.last_point(user, device.id).map_err(|e| e.to_string())?
            && newest.as_ref().is_none_or(|n| point.fix.time > n.fix.time)
        {
            newest = Some(point);
        }
    }
    Ok(newest)
}

fn accuracy_m(point: &Point) -> f64 {
    point.fix.horizontal_accuracy_cm.map_or(0.0, |cm| f64::from(cm) / 100.0)
}

fn position(point: &Point) -> [f64; 2] {
    [point.fix.coord.lat(), point.fix.coord.lon()]
}

/// Evaluates `device` of `user` against the newest positions of the
/// friends who share theirs with `user`, and commits what changed.
///
/// # Errors
/// Store failures, as text.
pub fn evaluate(
    store: &dyn Store,
    settings: &ZoneSettings,
    user: UserId,
    device: DeviceId,
    subscriptions: &[(i64, SubscriptionSpec)],
    now: Timestamp,
) -> Result<NearbyOutcome, String> {
    let err = |e: polo_store::StoreError| e.to_string();
    let grants = store.location_grants_to(user).map_err(err)?;
    if grants.is_empty() {
        return Ok(NearbyOutcome::default());
    }
    let max_age = i64::try_from(settings.notify_max_age.as_millis()).unwrap_or(i64::MAX);
    let fresh = |p: &Point| p.fix.time.0 >= now.0.saturating_sub(max_age);
    let usable = |p: &Point| fresh(p) && accuracy_m(p) <= settings.watch.max_accuracy_m;
    let Some(mine) = store.last_point(user, device).map_err(err)?.filter(usable) else {
        return Ok(NearbyOutcome::default());
    };
    let rules = rules(store, user)?;
    let stored: std::collections::HashMap<i64, String> = store
        .zone_states(user, device)
        .map_err(err)?
        .into_iter()
        .filter(|r| r.zone < 0)
        .map(|r| (r.zone, r.body))
        .collect();
    let mut states = Vec::new();
    let mut events = Vec::new();
    let mut documents = Vec::new();
    let mut device_name = None;
    for grant in grants {
        let friend = grant.owner;
        let Some(theirs) = newest_of(store, friend)?.filter(usable) else { continue };
        let Some(friend_user) = store.user_by_id(friend).map_err(err)? else { continue };
        let zone = friend_state(friend);
        let mut state: NearbyState = stored.get(&zone).and_then(|b| serde_json::from_str(b).ok()).unwrap_or_default();
        let distance = haversine_m(position(&mine), position(&theirs));
        let at = mine.fix.time.max(theirs.fix.time);
        let Some(transition) = state.observe(&rules, distance, accuracy_m(&mine) + accuracy_m(&theirs), at) else {
            continue;
        };
        let body = serde_json::to_string(&state).expect("a state serialises");
        states.push(StateWrite::Put(ZoneStateRow { device, zone, body }));
        let kind = match transition {
            NearbyTransition::Nearby => EventKind::FriendNearby,
            NearbyTransition::Away => EventKind::FriendAway,
        };
        let friend_device =
            store.list_devices(friend).map_err(err)?.into_iter().find(|d| d.id == theirs.device).map(|d| d.name);
        let name = match &device_name {
            Some(name) => String::clone(name),
            None => {
                let name = store
                    .list_devices(user)
                    .map_err(err)?
                    .into_iter()
                    .find(|d| d.id == device)
                    .map_or_else(|| format!("device {}", device.0), |d| d.name);
                device_name.insert(name).clone()
            }
        };
        let deliver_to: Vec<i64> =
            subscriptions.iter().filter(|(_, s)| s.wants(kind, None)).map(|(id, _)| *id).collect();
        let document = EventDocument {
            id: 0,
            kind: kind.name().to_owned(),
            at_ms: at.0,
            device: device.0,
            device_name: name,
            zone: None,
            zone_name: None,
            past: false,
            detail: serde_json::json!({
                "friend": friend_user.name,
                "friend_device": friend_device,
                "distance_m": (distance * 10.0).round() / 10.0,
                "lat": theirs.fix.coord.lat(),
                "lon": theirs.fix.coord.lon(),
            }),
        };
        events.push(NewEvent {
            dedup_key: format!("{}:{}:{}:{}", kind.name(), device.0, friend.0, at.0),
            at,
            kind: kind.name().to_owned(),
            device,
            zone: None,
            body: serde_json::to_string(&document).expect("an event serialises"),
            deliver_to: deliver_to.clone(),
        });
        documents.push((document, !deliver_to.is_empty()));
    }
    if states.is_empty() {
        return Ok(NearbyOutcome::default());
    }
    let ids = store.commit_events(&EventBatch { user, states, events, made: now }).map_err(err)?;
    let mut outcome = NearbyOutcome::default();
    for (id, (document, delivered)) in ids.into_iter().zip(documents) {
        if let Some(id) = id {
            outcome.logged += 1;
            outcome.queued |= delivered;
            outcome.published.push((user, EventDocument { id, ..document }));
        }
    }
    Ok(outcome)
}

/// When friends count as nearby, in metres.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct NearbyBody {
    /// A friend within this distance of one of your devices is nearby (`friend.nearby`; 20 to
    /// 100000, default 200).
    #[schema(example = 200.0, minimum = 20.0, maximum = 100_000.0)]
    enter_m: f64,
    /// A friend who was nearby is away again beyond this distance (`friend.away`; more than
    /// `enter_m`, at most 100000, default 400). Between the two nothing changes, so positions
    /// jittering at the edge do not flap.
    #[schema(example = 400.0, maximum = 100_000.0)]
    leave_m: f64,
}

impl From<NearbyRules> for NearbyBody {
    fn from(r: NearbyRules) -> Self {
        Self { enter_m: r.enter_m, leave_m: r.leave_m }
    }
}

/// Your friend-nearby distances.
#[utoipa::path(
    get,
    path = "/api/v1/nearby",
    tag = "zones",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = NearbyBody), AuthErrors)
)]
pub(crate) async fn get_nearby(State(state): State<AppState>, caller: Caller) -> Result<Json<NearbyBody>, ApiError> {
    let store = state.store.clone();
    blocking(move || Ok(Json(rules(&*store, caller.user.id).map_err(ApiError::internal)?.into()))).await
}

/// Sets when friends who share their location with you count as nearby one of your devices
/// (`friend.nearby`) and when as away again (`friend.away`).
#[utoipa::path(
    put,
    path = "/api/v1/nearby",
    tag = "zones",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = NearbyBody,
    responses((status = 200, body = NearbyBody), BadRequest, JsonBodyErrors, CsrfFailed, AuthErrors)
)]
pub(crate) async fn put_nearby(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<NearbyBody>, JsonRejection>,
) -> Result<Json<NearbyBody>, ApiError> {
    let Json(body) = body?;
    let rules = NearbyRules { enter_m: body.enter_m, leave_m: body.leave_m };
    let store = state.store.clone();
    blocking(move || {
        set_rules(&*store, caller.user.id, &rules)?;
        Ok(Json(rules.into()))
    })
    .await
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Fix, SourceFormat};
    use polo_store_sqlite::SqliteStore;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    /// A fix `north_m` metres north of a square in Berlin, `ago_s` before NOW.
    fn fix(north_m: f64, ago_s: i64) -> Fix {
        let lat = 52.52 + north_m / 111_195.0;
        let mut f =
            Fix::new(Timestamp(NOW - ago_s * 1_000), Coord::from_degrees(lat, 13.405).unwrap(), SourceFormat::Api);
        f.horizontal_accuracy_cm = Some(1_000);
        f
    }

    struct Setup {
        store: SqliteStore,
        jane: UserId,
        phone: DeviceId,
        bob: UserId,
        bobs: DeviceId,
        hooks: Vec<(i64, SubscriptionSpec)>,
    }

    fn setup() -> Setup {
        let store = SqliteStore::open_in_memory().unwrap();
        let jane = store.create_user("jane", "h", false).unwrap().id;
        let bob = store.create_user("bob", "h", false).unwrap().id;
        let phone = store.ensure_device(jane, "phone").unwrap().id;
        let bobs = store.ensure_device(bob, "pixel").unwrap().id;
        store.grant_location(bob, jane, None).unwrap();
        let spec = SubscriptionSpec {
            url: "http://127.0.0.1:9/".into(),
            preset: polo_zones::webhook::Preset::Json,
            kinds: vec!["friend.nearby".into()],
            zones: vec![],
            disabled: false,
        };
        let hook = store.create_webhook(jane, &serde_json::to_string(&spec).unwrap(), "s", Timestamp(NOW)).unwrap();
        Setup { store, jane, phone, bob, bobs, hooks: vec![(hook, spec)] }
    }

    impl Setup {
        /// Stores jane's and bob's next fixes and evaluates jane's phone.
        fn step(&self, jane_m: f64, bob_m: f64, ago_s: i64) -> NearbyOutcome {
            self.store.insert_points(self.jane, self.phone, &[fix(jane_m, ago_s)]).unwrap();
            self.store.insert_points(self.bob, self.bobs, &[fix(bob_m, ago_s)]).unwrap();
            let settings = ZoneSettings::default();
            evaluate(&self.store, &settings, self.jane, self.phone, &self.hooks, Timestamp(NOW)).unwrap()
        }

        fn kinds(&self) -> Vec<(String, f64)> {
            let events = self.store.events(self.jane, 0, 100).unwrap();
            events
                .iter()
                .map(|e| {
                    let doc: EventDocument = serde_json::from_str(&e.body).unwrap();
                    assert_eq!((doc.detail["friend"].as_str(), doc.device_name.as_str()), (Some("bob"), "phone"));
                    (doc.kind, doc.detail["distance_m"].as_f64().unwrap())
                })
                .collect()
        }
    }

    #[test]
    fn a_friend_walking_up_and_away_fires_once_each_and_jitter_between_fires_nothing() {
        let s = setup();
        // 1 km apart, then 150 m (within 200 m even with 10 m of accuracy each).
        assert_eq!(s.step(0.0, 1_000.0, 600).logged, 0);
        let near = s.step(0.0, 150.0, 590);
        assert_eq!((near.logged, near.queued), (1, true));
        // Jitter between the two distances, many times: nothing.
        for (i, d) in [190.0, 260.0, 350.0, 175.0, 370.0, 210.0].iter().enumerate() {
            assert_eq!(s.step(0.0, *d, 580 - i as i64).logged, 0, "{d} m");
        }
        // Evaluating the same positions again logs nothing either.
        let settings = ZoneSettings::default();
        assert_eq!(evaluate(&s.store, &settings, s.jane, s.phone, &s.hooks, Timestamp(NOW)).unwrap().logged, 0);
        let away = s.step(0.0, 600.0, 500);
        assert_eq!((away.logged, away.queued), (1, false), "friend.away is not one of the hook's kinds");
        assert_eq!(s.kinds(), [("friend.nearby".into(), 150.0), ("friend.away".into(), 600.0)]);
        assert_eq!(s.store.deliveries(s.jane, s.hooks[0].0, None, 10).unwrap().len(), 1);
        // The state survives (it is stored): the same friend 150 m away again is a new visit.
        assert_eq!(s.step(0.0, 150.0, 400).logged, 1);
    }

    #[test]
    fn the_users_distances_apply_and_old_or_ungranted_positions_fire_nothing() {
        let s = setup();
        // An hour and more ago: old data.
        assert_eq!(s.step(0.0, 50.0, 4_000).logged, 0);
        // With 1 km to enter, 800 m is nearby.
        set_rules(&s.store, s.jane, &NearbyRules { enter_m: 1_000.0, leave_m: 2_000.0 }).unwrap();
        assert_eq!(rules(&s.store, s.jane).unwrap().leave_m, 2_000.0);
        assert!(set_rules(&s.store, s.jane, &NearbyRules { enter_m: 500.0, leave_m: 100.0 }).is_err());
        assert_eq!(s.step(0.0, 800.0, 60).logged, 1);
        // Bob withdraws: nothing more about him.
        s.store.revoke_location_grant(s.bob, s.jane).unwrap();
        assert_eq!(s.step(0.0, 5_000.0, 30).logged, 0);
        assert_eq!(s.kinds().len(), 1);
    }
}
