//! MQTT out: positions and zone events republished to the broker polo
//! subscribes to, and Home Assistant MQTT discovery. Both opt-in
//! (`--mqtt-republish`, `--mqtt-discovery`).
//!
//! Why: phones that post over HTTP are invisible to everything that reads
//! the broker (Home Assistant, Node-RED, the OwnTracks apps' friends), and
//! the OwnTracks Recorder cannot republish (recorder #527); users mirror
//! traffic with proxies instead.
//!
//! * **Republish.** A device's new newest point goes to
//!   `owntracks/<user>/<device>` as an OwnTracks `location` (retained, as the
//!   apps do), and `zone.enter`/`zone.leave` go to `…/event` as OwnTracks
//!   `transition`s. Points that came in over MQTT are on the broker already
//!   and are not republished.
//! * **Discovery.** Each device appears in Home Assistant as a
//!   `device_tracker`: a retained config under
//!   `homeassistant/device_tracker/polo_<device id>/config` naming a
//!   retained `json_attributes` topic, `polo/<user>/<device>/attributes`,
//!   that carries `latitude`, `longitude`, `gps_accuracy`, … for every new
//!   newest point. Nothing to configure in Home Assistant.
//! * **Once.** Only the node that stored a point publishes it (ingest hands
//!   it over after the commit, on that node), and events are published by
//!   the node that evaluated them (the zone lease holder). Publishing is at
//!   most once: a message queued while the broker is away is dropped when
//!   the queue is full, and counted.
//! * **No echo.** Everything polo publishes carries `"_creator":"polo"`;
//!   the subscriber ([`crate::mqtt`]) ignores such messages, so polo never
//!   reads its own messages back as new points or app transitions.
//!
//! The hand-over is a bounded channel into the MQTT task ([`MqttOutbox`],
//! held in the state and by the zone worker; a no-op until the task starts).

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, OnceLock};

use polo_domain::{DeviceId, Fix, Timestamp, UserId};
use polo_store::{PointQuery, Store};
use polo_zones::Zone;
use polo_zones::webhook::EventDocument;
use rumqttc::{AsyncClient, QoS};
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Marks what polo publishes, so its own subscriber skips it.
pub const CREATOR: &str = "polo";
/// The republished topics' base.
pub const OWNTRACKS_BASE: &str = "owntracks";
/// Home Assistant's discovery prefix (its default).
pub const DISCOVERY_PREFIX: &str = "homeassistant";
/// The base of the discovery attributes topics.
pub const ATTRIBUTES_BASE: &str = "polo";
/// Messages waiting for the MQTT task before new ones are dropped.
pub const QUEUE: usize = 4_096;
/// Bound of the task's caches.
const MAX_CACHED: usize = 100_000;

/// What goes out.
#[derive(Debug, Clone)]
pub(crate) enum Outgoing {
    /// A device's new newest point.
    Position { user: UserId, device: DeviceId, fix: Arc<Fix>, from_mqtt: bool },
    /// A logged event (with its id).
    Event { user: UserId, document: EventDocument },
}

struct Target {
    sender: mpsc::Sender<Outgoing>,
    republish: bool,
    discovery: bool,
}

/// The hand-over to the MQTT task; cheap to clone, a no-op until the task
/// attaches ([`MqttOutbox::attach`]).
#[derive(Clone, Default)]
pub struct MqttOutbox {
    target: Arc<OnceLock<Target>>,
}

impl std::fmt::Debug for MqttOutbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MqttOutbox").field("attached", &self.target.get().is_some()).finish()
    }
}

impl MqttOutbox {
    /// Connects the outbox to a task; `None` when nothing is to be
    /// published or a task attached already.
    pub(crate) fn attach(&self, republish: bool, discovery: bool) -> Option<mpsc::Receiver<Outgoing>> {
        if !republish && !discovery {
            return None;
        }
        let (sender, receiver) = mpsc::channel(QUEUE);
        self.target.set(Target { sender, republish, discovery }).ok()?;
        Some(receiver)
    }

    fn send(&self, message: Outgoing) {
        if let Some(target) = self.target.get()
            && let Err(e) = target.sender.try_send(message)
        {
            tracing::debug!(error = %e, "an MQTT publication was dropped: the queue is full or the task ended");
        }
    }

    /// A device's new newest point was stored on this node.
    pub fn position(&self, user: UserId, device: DeviceId, fix: &Fix, from_mqtt: bool) {
        if let Some(target) = self.target.get()
            && (target.discovery || (target.republish && !from_mqtt))
        {
            self.send(Outgoing::Position { user, device, fix: Arc::new(fix.clone()), from_mqtt });
        }
    }

    /// An event was logged on this node (and is not past).
    pub fn event(&self, user: UserId, document: &EventDocument) {
        if self.target.get().is_some_and(|t| t.republish)
            && matches!(document.kind.as_str(), "zone.enter" | "zone.leave")
        {
            self.send(Outgoing::Event { user, document: document.clone() });
        }
    }
}

/// One message for the broker.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Publication {
    pub(crate) topic: String,
    pub(crate) retain: bool,
    pub(crate) payload: Value,
}

/// A topic level from a name: MQTT levels cannot hold `/`, `+` or `#`.
#[must_use]
pub fn topic_level(name: &str) -> String {
    name.chars().map(|c| if matches!(c, '/' | '+' | '#') { '_' } else { c }).collect()
}

/// Whole units, for the OwnTracks integer fields.
#[allow(clippy::cast_possible_truncation)]
fn whole(v: f64) -> i64 {
    v.round() as i64
}

/// A fix as an OwnTracks `location`.
pub(crate) fn location(fix: &Fix) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("_type".into(), "location".into());
    m.insert("_creator".into(), CREATOR.into());
    m.insert("lat".into(), fix.coord.lat().into());
    m.insert("lon".into(), fix.coord.lon().into());
    m.insert("tst".into(), fix.time.0.div_euclid(1000).into());
    let mut put = |key: &str, value: Option<i64>| {
        if let Some(v) = value {
            m.insert(key.into(), v.into());
        }
    };
    put("acc", fix.horizontal_accuracy_m().map(whole));
    put("alt", fix.altitude_m().map(whole));
    put("vac", fix.vertical_accuracy_m().map(whole));
    put("vel", fix.speed_m_s().map(|v| whole(v * 3.6)));
    put("cog", fix.course_deg().map(whole));
    put("batt", fix.battery_percent.map(i64::from));
    if let Some(tid) = fix.extras.as_ref().and_then(crate::ingest::owntracks::extras_tid) {
        m.insert("tid".into(), tid.into());
    }
    Value::Object(m)
}

/// A zone event as an OwnTracks `transition`, at `fix` (where the device was).
pub(crate) fn transition(document: &EventDocument, zone: Option<&Zone>, fix: Option<&Fix>) -> Value {
    let event = if document.kind == "zone.enter" { "enter" } else { "leave" };
    let mut value = json!({
        "_type": "transition",
        "_creator": CREATOR,
        "event": event,
        "desc": document.zone_name,
        "tst": document.at_ms.div_euclid(1000),
        "t": "c",
    });
    if let Some(zone) = zone {
        let (wtst, rid) = polo_zones::regions::identity(zone);
        value["wtst"] = wtst.into();
        value["rid"] = rid.into();
    }
    if let Some(fix) = fix {
        value["lat"] = fix.coord.lat().into();
        value["lon"] = fix.coord.lon().into();
        if let Some(acc) = fix.horizontal_accuracy_m() {
            value["acc"] = whole(acc).into();
        }
    }
    value
}

/// The discovery config of a device (`homeassistant/device_tracker/…/config`).
pub(crate) fn discovery_config(device: DeviceId, user: &str, name: &str) -> Publication {
    let id = format!("polo_{}", device.0);
    Publication {
        topic: format!("{DISCOVERY_PREFIX}/device_tracker/{id}/config"),
        retain: true,
        payload: json!({
            "name": null,
            "unique_id": id,
            "json_attributes_topic": attributes_topic(user, name),
            "source_type": "gps",
            "device": {"identifiers": [id], "name": format!("{name} ({user})"), "manufacturer": "polo"},
            "origin": {"name": "polo", "sw_version": env!("CARGO_PKG_VERSION")},
        }),
    }
}

fn attributes_topic(user: &str, device: &str) -> String {
    format!("{ATTRIBUTES_BASE}/{}/{}/attributes", topic_level(user), topic_level(device))
}

/// The device tracker's attributes: where the device is, as Home Assistant reads them.
pub(crate) fn attributes(user: &str, device: &str, fix: &Fix) -> Publication {
    let mut m = serde_json::Map::new();
    m.insert("latitude".into(), fix.coord.lat().into());
    m.insert("longitude".into(), fix.coord.lon().into());
    m.insert("gps_accuracy".into(), fix.horizontal_accuracy_m().map_or(0, whole).into());
    if let Some(v) = fix.battery_percent {
        m.insert("battery_level".into(), v.into());
    }
    if let Some(v) = fix.altitude_m() {
        m.insert("altitude".into(), v.into());
    }
    if let Some(v) = fix.speed_m_s() {
        m.insert("speed".into(), v.into());
    }
    if let Some(v) = fix.course_deg() {
        m.insert("course".into(), v.into());
    }
    m.insert("time".into(), fix.time.to_rfc3339(None).into());
    m.insert("_creator".into(), CREATOR.into());
    Publication { topic: attributes_topic(user, device), retain: true, payload: Value::Object(m) }
}

/// The MQTT task's publishing side: name caches and what was announced.
pub(crate) struct Publisher {
    store: Arc<dyn Store>,
    republish: bool,
    discovery: bool,
    names: HashMap<DeviceId, (String, String)>,
    announced: HashSet<DeviceId>,
    newest: HashMap<DeviceId, Timestamp>,
}

impl Publisher {
    pub(crate) fn new(store: Arc<dyn Store>, republish: bool, discovery: bool) -> Self {
        Self { store, republish, discovery, names: HashMap::new(), announced: HashSet::new(), newest: HashMap::new() }
    }

    /// The broker may have lost what was announced (a new connection): announce again.
    pub(crate) fn reconnected(&mut self) {
        self.announced.clear();
    }

    /// The user and device names of `device`, from memory or the store.
    async fn names(&mut self, user: UserId, device: DeviceId) -> Option<(String, String)> {
        if let Some(names) = self.names.get(&device) {
            return Some(names.clone());
        }
        let store = self.store.clone();
        let found = tokio::task::spawn_blocking(move || -> polo_store::StoreResult<Option<(String, String)>> {
            let Some(owner) = store.user_by_id(user)? else { return Ok(None) };
            let device = store.list_devices(user)?.into_iter().find(|d| d.id == device);
            Ok(device.map(|d| (owner.name, d.name)))
        })
        .await;
        match found {
            Ok(Ok(Some(names))) => {
                if self.names.len() >= MAX_CACHED {
                    self.names.clear();
                }
                self.names.insert(device, names.clone());
                Some(names)
            }
            Ok(Ok(None)) => None,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "MQTT publishing: the device's names could not be read");
                None
            }
            Err(e) => {
                tracing::warn!(error = %e, "MQTT publishing: the name lookup failed");
                None
            }
        }
    }

    /// What `message` publishes.
    pub(crate) async fn publications(&mut self, message: Outgoing) -> Vec<Publication> {
        match message {
            Outgoing::Position { user, device, fix, from_mqtt } => {
                if self.newest.get(&device).is_some_and(|t| *t >= fix.time) {
                    return Vec::new(); // a late point: the retained messages show a newer one
                }
                if self.newest.len() >= MAX_CACHED {
                    self.newest.clear();
                }
                self.newest.insert(device, fix.time);
                let Some((user_name, device_name)) = self.names(user, device).await else { return Vec::new() };
                let mut out = Vec::new();
                if self.republish && !from_mqtt {
                    out.push(Publication {
                        topic: format!("{OWNTRACKS_BASE}/{}/{}", topic_level(&user_name), topic_level(&device_name)),
                        retain: true,
                        payload: location(&fix),
                    });
                }
                if self.discovery {
                    if self.announced.insert(device) {
                        out.push(discovery_config(device, &user_name, &device_name));
                    }
                    out.push(attributes(&user_name, &device_name, &fix));
                }
                out
            }
            Outgoing::Event { user, document } => {
                if !self.republish {
                    return Vec::new();
                }
                let device = DeviceId(document.device);
                let Some((user_name, device_name)) = self.names(user, device).await else { return Vec::new() };
                let (store, at, zone_id) = (self.store.clone(), Timestamp(document.at_ms), document.zone);
                let looked_up = tokio::task::spawn_blocking(move || -> polo_store::StoreResult<_> {
                    // The fix the event happened at, else the device's newest.
                    let mut fix = None;
                    let query =
                        PointQuery { user, device: Some(device), from: Some(at), to: Some(Timestamp(at.0 + 1)) };
                    store.scan_points(&query, &mut |p| {
                        fix = Some(p.fix);
                        std::ops::ControlFlow::Break(())
                    })?;
                    let fix = match fix {
                        Some(fix) => Some(fix),
                        None => store.last_point(user, device)?.map(|p| p.fix),
                    };
                    let zone = match zone_id {
                        Some(id) => {
                            crate::zones::regions::user_zones(store.as_ref(), user)?.into_iter().find(|z| z.id == id)
                        }
                        None => None,
                    };
                    Ok((fix, zone))
                })
                .await;
                let (fix, zone) = match looked_up {
                    Ok(Ok(found)) => found,
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, "MQTT publishing: the event's position could not be read");
                        (None, None)
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "MQTT publishing: the event lookup failed");
                        (None, None)
                    }
                };
                vec![Publication {
                    topic: format!("{OWNTRACKS_BASE}/{}/{}/event", topic_level(&user_name), topic_level(&device_name)),
                    retain: false,
                    payload: transition(&document, zone.as_ref(), fix.as_ref()),
                }]
            }
        }
    }
}

/// Queues `publication` on the client (the task drains the queue).
pub(crate) fn publish(client: &AsyncClient, publication: Publication) {
    let Publication { topic, retain, payload } = publication;
    if let Err(e) = client.try_publish(topic, QoS::AtLeastOnce, retain, payload.to_string().into_bytes()) {
        tracing::debug!(error = %e, "an MQTT publication could not be queued; dropped");
    }
}

/// Whether a payload is polo's own (republished or a command): its top
/// level names `"_creator": "polo"`.
#[must_use]
pub fn is_own(payload: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Creator<'a> {
        #[serde(borrow, rename = "_creator")]
        creator: Option<&'a str>,
    }
    // Cheap first: most payloads do not name a creator at all.
    payload.windows(10).any(|w| w == b"\"_creator\"")
        && serde_json::from_slice::<Creator<'_>>(payload).is_ok_and(|c| c.creator == Some(CREATOR))
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, SourceFormat};

    use super::*;

    fn fix() -> Fix {
        let mut fix = Fix::new(
            Timestamp(1_763_699_990_000),
            Coord::from_degrees(48.8568, 2.2927).unwrap(),
            SourceFormat::Owntracks,
        );
        fix.set_horizontal_accuracy_m(12.0);
        fix.set_speed_m_s(10.0);
        fix.battery_percent = Some(81);
        fix
    }

    #[test]
    fn locations_are_owntracks_shaped_and_marked() {
        let value = location(&fix());
        assert_eq!(
            value,
            json!({"_type": "location", "_creator": "polo", "lat": 48.8568, "lon": 2.2927, "tst": 1_763_699_990,
                   "acc": 12, "vel": 36, "batt": 81})
        );
        assert!(is_own(value.to_string().as_bytes()));
        assert!(!is_own(br#"{"_type":"location","lat":1,"lon":2,"tst":3}"#));
        assert!(!is_own(br#"{"_type":"location","_creator":"Owntracks-Android","lat":1}"#));
        assert!(!is_own(br#"{"_type":"waypoints","waypoints":[{"_creator":"polo"}]}"#), "top level only");
    }

    #[test]
    fn discovery_names_a_retained_attributes_topic() {
        let config = discovery_config(DeviceId(7), "jane", "my/phone");
        assert_eq!(config.topic, "homeassistant/device_tracker/polo_7/config");
        assert!(config.retain);
        assert_eq!(config.payload["json_attributes_topic"], "polo/jane/my_phone/attributes");
        assert_eq!(config.payload["unique_id"], "polo_7");
        assert_eq!(config.payload["device"]["identifiers"][0], "polo_7");
        let attributes = attributes("jane", "my/phone", &fix());
        assert_eq!(attributes.topic, "polo/jane/my_phone/attributes");
        assert_eq!(attributes.payload["latitude"], 48.8568);
        assert_eq!(attributes.payload["gps_accuracy"], 12);
        assert_eq!(attributes.payload["battery_level"], 81);
    }

    #[test]
    fn zone_events_become_transitions() {
        let document = EventDocument {
            id: 3,
            kind: "zone.leave".into(),
            at_ms: 1_763_700_100_000,
            device: 7,
            device_name: "phone".into(),
            zone: Some(9),
            zone_name: Some("Home".into()),
            past: false,
            detail: json!({}),
        };
        let zone = Zone {
            id: 9,
            user: UserId(1),
            spec: polo_zones::ZoneSpec {
                name: "Home".into(),
                shape: polo_zones::Shape::Circle { center: [48.85, 2.29], radius_m: 50.0 },
                rules: polo_zones::Rules::default(),
                origin: None,
            },
        };
        let value = transition(&document, Some(&zone), Some(&fix()));
        assert_eq!(
            value,
            json!({"_type": "transition", "_creator": "polo", "event": "leave", "desc": "Home", "tst": 1_763_700_100,
                   "t": "c", "wtst": polo_zones::regions::SYNTHETIC_TST_BASE + 9, "rid": "polo-9",
                   "lat": 48.8568, "lon": 2.2927, "acc": 12})
        );
    }
}
