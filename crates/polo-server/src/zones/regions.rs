//! OwnTracks regions on the server, for both the HTTP endpoint and MQTT.
//!
//! * `waypoint`/`waypoints` from the app become zones
//!   ([`Zones::store_regions`]); the same region sent again updates its zone
//!   (`polo_zones::regions` keeps the identity).
//! * `transition` from the app is logged as `app.enter`/`app.leave`
//!   ([`Zones::record_transition`]): the phone decided, so it is kept apart
//!   from polo's own `zone.*` events, with the zone it names when polo knows
//!   it, and delivered to the webhooks that want it.
//! * polo's zones go to the app as `setWaypoints` ([`Zones::waypoints_for`]):
//!   the user's own and their groups' (which the app cannot change here),
//!   only when the device has not been sent these zones yet: each node
//!   remembers per device the fingerprint it sent last, so after a restart a
//!   device gets them once more, which the app takes as an update (regions
//!   are keyed by their identity there too).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{EventBatch, NewEvent, Store, StoreResult, ZoneRow};
use polo_zones::evaluate::EventKind;
use polo_zones::regions::{self, Region, Upsert};
use polo_zones::webhook::EventDocument;
use polo_zones::{Rules, Zone};

use super::Zones;
use super::routes::MAX_ZONES_PER_USER;

/// How long a user's `setWaypoints` is reused before the zones are read
/// again (zones edited through another node arrive within it).
pub const COMMAND_TTL: Duration = Duration::from_secs(10);
/// Bounds of the per-node memories.
const MAX_REMEMBERED: usize = 100_000;

/// A user's `setWaypoints` and its fingerprint; `None`: no zone can be a region.
type Command = Option<(Arc<serde_json::Value>, u64)>;

/// What a node remembers about the apps' regions.
#[derive(Default)]
pub(crate) struct RegionMemory {
    /// Per user: when read, and the command with its fingerprint (`None`: no region to send).
    commands: Mutex<HashMap<UserId, (Instant, Command)>>,
    /// Per device: the fingerprint of the last command sent to it.
    sent: Mutex<HashMap<DeviceId, u64>>,
}

impl RegionMemory {
    /// Zones changed through this node: read them again.
    pub(crate) fn forget_commands(&self) {
        self.commands.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// A transition as the app reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct AppTransition {
    /// `enter` or `leave` (anything else is not logged).
    pub event: String,
    /// When (`tst`).
    pub at: Timestamp,
    /// Where the device was.
    pub lat: f64,
    /// Where the device was.
    pub lon: f64,
    /// Its accuracy, metres.
    pub accuracy_m: Option<f64>,
    /// The region's name (`desc`).
    pub desc: Option<String>,
    /// The region's ID (`rid`).
    pub rid: Option<String>,
    /// The region's creation time (`wtst`), Unix seconds.
    pub wtst: Option<i64>,
    /// The trigger (`t`).
    pub trigger: Option<String>,
}

/// The zones `user`'s apps know as regions, decoded (a damaged one is
/// skipped and logged): their own, and those of the groups they are in,
/// which reach the app and name its transitions but are never changed by
/// what it sends ([`Zones::store_regions`]).
pub(crate) fn user_zones(store: &dyn Store, user: UserId) -> StoreResult<Vec<Zone>> {
    Ok(decode(app_zone_rows(store, user)?))
}

/// The rows of the zones `user`'s apps know as regions: their own and
/// those of their groups.
fn app_zone_rows(store: &dyn Store, user: UserId) -> StoreResult<Vec<ZoneRow>> {
    polo_store::zones::visible_zones(store, user, &store.groups_of(user)?)
}

fn decode(rows: Vec<ZoneRow>) -> Vec<Zone> {
    rows.into_iter()
        .filter_map(|row| match Zone::from_body(row.id, row.user, &row.body) {
            Ok(zone) => Some(zone),
            Err(error) => {
                tracing::warn!(%error, "a stored zone does not decode; skipped");
                None
            }
        })
        .collect()
}

impl Zones {
    /// Stores the app's regions as `user`'s zones: new ones are created,
    /// known ones updated when they changed. Regions that cannot be zones
    /// (beacons, no radius) are skipped and logged. Returns how many zones
    /// were created or changed.
    ///
    /// # Errors
    /// Store failures.
    pub fn store_regions(&self, user: UserId, list: &[Region], now: Timestamp) -> StoreResult<usize> {
        let store = self.shared.store.as_ref();
        let rows = app_zone_rows(store, user)?;
        // A group's zones reach the app as regions too, but only the group's
        // admins change them, and on polo: the app sending one back (edited
        // or not) changes nothing and makes no copy.
        let of_groups: HashSet<i64> = rows.iter().filter(|z| z.group.is_some()).map(|z| z.id).collect();
        let mut own = rows.len() - of_groups.len();
        let mut zones = decode(rows);
        let mut changed = 0;
        for region in list {
            match regions::upsert(&zones, region, Rules::default()) {
                Ok(Upsert::Unchanged(_)) => {}
                Ok(Upsert::Update(id, _)) if of_groups.contains(&id) => {
                    tracing::debug!(
                        user = user.0,
                        zone = id,
                        "an OwnTracks region is a group's zone; not changed from the app"
                    );
                }
                Ok(Upsert::Update(id, spec)) => {
                    if store.update_zone(user, id, &spec.to_body(), now)? {
                        if let Some(zone) = zones.iter_mut().find(|z| z.id == id) {
                            zone.spec = spec;
                        }
                        changed += 1;
                    }
                }
                Ok(Upsert::Create(spec)) => {
                    if own >= MAX_ZONES_PER_USER {
                        tracing::info!(
                            user = user.0,
                            "an OwnTracks region was not stored: the user has the most zones"
                        );
                        continue;
                    }
                    let id = store.create_zone(user, &spec.to_body(), now)?;
                    zones.push(Zone { id, user, spec });
                    own += 1;
                    changed += 1;
                }
                Err(error) => tracing::info!(user = user.0, %error, "an OwnTracks region is not a zone; skipped"),
            }
        }
        if changed > 0 {
            self.zones_changed();
        }
        Ok(changed)
    }

    /// Logs a transition the app reported as `app.enter`/`app.leave`, and
    /// queues it for the webhooks that want it (unless it is older than the
    /// notification age, like every event). The event's id, `None` when the
    /// log had it already (the app sent it again) or the event is neither
    /// enter nor leave.
    ///
    /// # Errors
    /// Store failures.
    pub fn record_transition(
        &self,
        user: UserId,
        device: DeviceId,
        transition: &AppTransition,
        now: Timestamp,
    ) -> StoreResult<Option<i64>> {
        let kind = match transition.event.as_str() {
            "enter" => EventKind::AppEnter,
            "leave" => EventKind::AppLeave,
            other => {
                tracing::debug!(event = other, "an OwnTracks transition that is neither enter nor leave; not logged");
                return Ok(None);
            }
        };
        let store = self.shared.store.as_ref();
        let zones = user_zones(store, user)?;
        let zone = regions::find(&zones, transition.rid.as_deref(), transition.wtst, transition.desc.as_deref());
        let device_name = store
            .list_devices(user)?
            .into_iter()
            .find(|d| d.id == device)
            .map_or_else(|| format!("device {}", device.0), |d| d.name);
        let max_age = i64::try_from(self.settings().notify_max_age.as_millis()).unwrap_or(i64::MAX);
        let past = transition.at.0 < now.0.saturating_sub(max_age);
        let zone_id = zone.map(|z| z.id);
        let deliver_to = if past {
            Vec::new()
        } else {
            super::worker::user_subscriptions(store, user)
                .map_err(polo_store::StoreError::Backend)?
                .into_iter()
                .filter(|(_, s)| s.wants(kind, zone_id))
                .map(|(id, _)| id)
                .collect()
        };
        let region = transition.rid.clone().or_else(|| transition.wtst.map(|w| w.to_string()));
        let document = EventDocument {
            id: 0,
            kind: kind.name().to_owned(),
            at_ms: transition.at.0,
            device: device.0,
            device_name,
            zone: zone_id,
            zone_name: zone.map(|z| z.spec.name.clone()).or_else(|| transition.desc.clone()),
            past,
            detail: serde_json::json!({
                "source": "owntracks",
                "desc": transition.desc,
                "rid": transition.rid,
                "wtst": transition.wtst,
                "lat": transition.lat,
                "lon": transition.lon,
                "accuracy_m": transition.accuracy_m,
                "trigger": transition.trigger,
            }),
        };
        let queued = !deliver_to.is_empty();
        let event = NewEvent {
            dedup_key: format!(
                "{}:{}:{}:{}",
                kind.name(),
                device.0,
                region.or_else(|| transition.desc.clone()).unwrap_or_default(),
                transition.at.0
            ),
            at: transition.at,
            kind: kind.name().to_owned(),
            device,
            zone: zone_id,
            body: serde_json::to_string(&document).expect("an event serialises"),
            deliver_to,
        };
        let ids = store.commit_events(&EventBatch { user, states: Vec::new(), events: vec![event], made: now })?;
        let id = ids.into_iter().next().flatten();
        if id.is_some() && queued {
            self.shared.deliver.ring();
        }
        Ok(id)
    }

    /// The `setWaypoints` command for `device` of `user`, when its app has
    /// not been sent these zones yet (by this node); it then counts as sent.
    /// Reads the store when the user's zones are not in memory.
    ///
    /// # Errors
    /// Store failures.
    pub fn waypoints_for(&self, user: UserId, device: DeviceId) -> StoreResult<Option<Arc<serde_json::Value>>> {
        let command = match self.cached_command(user) {
            Some(command) => command,
            None => {
                let zones = user_zones(self.shared.store.as_ref(), user)?;
                let command = regions::set_waypoints(&zones).map(|(c, f)| (Arc::new(c), f));
                let mut commands = self.shared.regions.commands.lock().unwrap_or_else(PoisonError::into_inner);
                if commands.len() >= MAX_REMEMBERED {
                    commands.clear();
                }
                commands.insert(user, (Instant::now(), command.clone()));
                command
            }
        };
        Ok(self.unsent(device, command))
    }

    /// [`Zones::waypoints_for`] from memory only: `None` when the store must be read.
    #[must_use]
    pub fn cached_waypoints_for(&self, user: UserId, device: DeviceId) -> Option<Option<Arc<serde_json::Value>>> {
        self.cached_command(user).map(|command| self.unsent(device, command))
    }

    fn cached_command(&self, user: UserId) -> Option<Command> {
        self.shared
            .regions
            .commands
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&user)
            .filter(|(at, _)| at.elapsed() < COMMAND_TTL)
            .map(|(_, command)| command.clone())
    }

    fn unsent(
        &self,
        device: DeviceId,
        command: Option<(Arc<serde_json::Value>, u64)>,
    ) -> Option<Arc<serde_json::Value>> {
        let (command, fingerprint) = command?;
        let mut sent = self.shared.regions.sent.lock().unwrap_or_else(PoisonError::into_inner);
        if sent.get(&device) == Some(&fingerprint) {
            return None;
        }
        if sent.len() >= MAX_REMEMBERED {
            sent.clear();
        }
        sent.insert(device, fingerprint);
        Some(command)
    }
}

#[cfg(test)]
mod tests {
    use polo_store_sqlite::SqliteStore;

    use super::*;

    const NOW: i64 = 1_800_000_000_000;

    fn setup() -> (Arc<SqliteStore>, Zones, UserId, DeviceId) {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let user = store.create_user("jane", "h", false).unwrap().id;
        let device = store.ensure_device(user, "phone").unwrap().id;
        let zones = Zones::start(store.clone(), "test", crate::mqtt_out::MqttOutbox::default()).unwrap();
        (store, zones, user, device)
    }

    fn region(desc: &str, rad: f64, tst: i64) -> Region {
        Region { desc: Some(desc.into()), center: Some([52.5, 13.4]), radius_m: Some(rad), tst: Some(tst), rid: None }
    }

    #[test]
    fn regions_become_zones_once_and_go_back_only_when_they_changed() {
        let (store, zones, user, phone) = setup();
        let tablet = store.ensure_device(user, "tablet").unwrap().id;
        assert_eq!(zones.waypoints_for(user, phone).unwrap(), None, "no zones, no command");
        let list = [region("Gym", 80.0, 1_700_000_001), region("Beacon", 0.0, 1_700_000_002)];
        assert_eq!(zones.store_regions(user, &list, Timestamp(NOW)).unwrap(), 1, "the beacon is no zone");
        assert_eq!(zones.store_regions(user, &list, Timestamp(NOW)).unwrap(), 0, "sent again: nothing new");
        assert_eq!(store.zones(Some(user)).unwrap().len(), 1);
        let command = zones.waypoints_for(user, phone).unwrap().expect("the phone has not had them");
        assert_eq!(command["action"], "setWaypoints");
        assert_eq!(command["waypoints"]["waypoints"][0]["desc"], "Gym");
        assert_eq!(command["waypoints"]["waypoints"][0]["tst"], 1_700_000_001);
        assert_eq!(zones.waypoints_for(user, phone).unwrap(), None, "sent already");
        assert!(zones.waypoints_for(user, tablet).unwrap().is_some(), "per device");
        // Moved on the phone: updated, and sent again.
        let moved = [region("Gym", 120.0, 1_700_000_001)];
        assert_eq!(zones.store_regions(user, &moved, Timestamp(NOW)).unwrap(), 1);
        assert_eq!(store.zones(Some(user)).unwrap().len(), 1);
        let command = zones.waypoints_for(user, phone).unwrap().expect("changed");
        assert_eq!(command["waypoints"]["waypoints"][0]["rad"], 120);
    }

    #[test]
    fn a_groups_zones_go_to_every_members_app_and_what_the_app_sends_back_changes_nothing() {
        let (store, zones, jane, phone) = setup();
        let tom = store.create_user("tom", "h", false).unwrap().id;
        let toms_phone = store.ensure_device(tom, "phone").unwrap().id;
        let at = Timestamp(NOW);
        let family = store.create_group("Family", tom, at).unwrap().id;
        let invitation =
            polo_store::NewInvitation { group: family, created_by: tom, max_uses: 1, expires: Timestamp(NOW + 60_000) };
        store.create_group_invitation(&invitation, &[3; 32]).unwrap();
        store.join_group(&[3; 32], jane, at).unwrap();
        let home = r#"{"name":"Grandma's","shape":{"type":"circle","center":[52.5,13.4],"radius_m":90}}"#;
        let zone = store.create_group_zone(tom, family, home, at).unwrap();
        zones.zones_changed();

        for (user, device) in [(jane, phone), (tom, toms_phone)] {
            let command = zones.waypoints_for(user, device).unwrap().expect("the group's zone is a region");
            let sent = &command["waypoints"]["waypoints"][0];
            assert_eq!(
                (sent["desc"].as_str(), sent["rid"].as_str()),
                (Some("Grandma's"), Some(&*format!("polo-{zone}")))
            );
        }

        // Jane's app sends it back, moved: the group's zone stays as it was, and no copy is made.
        let mut moved = region("Grandma's", 300.0, 0);
        moved.tst = None;
        moved.rid = Some(format!("polo-{zone}"));
        assert_eq!(zones.store_regions(jane, &[moved], at).unwrap(), 0);
        assert!(store.zones(Some(jane)).unwrap().is_empty(), "no copy of the group's zone");
        assert_eq!(store.group_zones(family).unwrap()[0].body, home);

        // Her app's transition names it.
        let transition = AppTransition {
            event: "enter".into(),
            at: Timestamp(NOW - 1_000),
            lat: 52.5,
            lon: 13.4,
            accuracy_m: Some(7.0),
            desc: Some("Grandma's".into()),
            rid: Some(format!("polo-{zone}")),
            wtst: None,
            trigger: Some("c".into()),
        };
        zones.record_transition(jane, phone, &transition, Timestamp(NOW)).unwrap().expect("logged");
        let doc: EventDocument = serde_json::from_str(&store.events(jane, 0, 10).unwrap()[0].body).unwrap();
        assert_eq!(doc.zone, Some(zone));

        // Gone with the membership.
        assert!(store.remove_group_member(family, jane).unwrap());
        zones.zones_changed();
        assert_eq!(zones.waypoints_for(jane, phone).unwrap(), None);
    }

    #[test]
    fn app_transitions_are_logged_once_as_app_events() {
        let (store, zones, user, phone) = setup();
        zones.store_regions(user, &[region("Office", 50.0, 1_700_000_500)], Timestamp(NOW)).unwrap();
        let zone = store.zones(Some(user)).unwrap()[0].id;
        let transition = AppTransition {
            event: "enter".into(),
            at: Timestamp(NOW - 1_000),
            lat: 52.5,
            lon: 13.4,
            accuracy_m: Some(7.0),
            desc: Some("Office".into()),
            rid: None,
            wtst: Some(1_700_000_500),
            trigger: Some("c".into()),
        };
        let id = zones.record_transition(user, phone, &transition, Timestamp(NOW)).unwrap();
        assert!(id.is_some());
        assert_eq!(zones.record_transition(user, phone, &transition, Timestamp(NOW)).unwrap(), None, "sent twice");
        let other = AppTransition { event: "beacon".into(), ..transition.clone() };
        assert_eq!(zones.record_transition(user, phone, &other, Timestamp(NOW)).unwrap(), None);
        let old = AppTransition { event: "leave".into(), at: Timestamp(NOW - 86_400_000), ..transition };
        assert!(zones.record_transition(user, phone, &old, Timestamp(NOW)).unwrap().is_some());
        let log = store.events(user, 0, 10).unwrap();
        assert_eq!(log.iter().map(|e| e.kind.as_str()).collect::<Vec<_>>(), ["app.enter", "app.leave"]);
        let doc: EventDocument = serde_json::from_str(&log[0].body).unwrap();
        assert_eq!((doc.zone, doc.zone_name.as_deref(), doc.past), (Some(zone), Some("Office"), false));
        assert_eq!(doc.detail["source"], "owntracks");
        let doc: EventDocument = serde_json::from_str(&log[1].body).unwrap();
        assert!(doc.past, "a day-old transition is logged, not sent");
    }
}
