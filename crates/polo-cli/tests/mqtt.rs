//! OwnTracks over MQTT end to end: the real binary subscribes to the local
//! Mosquitto (127.0.0.1:1883), real app payloads are published there with an
//! MQTT client, and the points are read back through the query API.
//!
//! The topic base is fixed (`owntracks`), so runs are kept apart by a unique
//! user name per run: concurrent runs (and other polo instances on the same
//! broker) only ever see each other's messages as unknown users.
//!
//! Without a broker the test prints `SKIPPED: …` and passes, unless
//! `POLO_REQUIRE_SERVICES=1` (set by `.ci/run`), where that is a failure.

mod common;

use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::{add_user, basic, http, serve};
use rumqttc::{AsyncClient, Event, MqttOptions, Outgoing, QoS};
use serde_json::Value;

const BROKER: &str = "127.0.0.1:1883";

/// True when a broker listens; otherwise skips loudly, or fails in CI.
fn broker_available() -> bool {
    let addr: SocketAddr = BROKER.parse().unwrap();
    if TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok() {
        return true;
    }
    assert!(
        std::env::var("POLO_REQUIRE_SERVICES").as_deref() != Ok("1"),
        "POLO_REQUIRE_SERVICES=1 but no MQTT broker listens on {BROKER}"
    );
    eprintln!("SKIPPED: no MQTT broker on {BROKER}");
    false
}

/// A publishing client whose event loop runs on its own runtime.
struct Publisher {
    runtime: tokio::runtime::Runtime,
    client: AsyncClient,
    events: tokio::task::JoinHandle<()>,
}

impl Publisher {
    fn connect(id: &str) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (client, mut eventloop) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", 1883), 64);
        let events = runtime.spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        Self { runtime, client, events }
    }

    fn publish(&self, topic: &str, retain: bool, payload: &str) {
        let payload = payload.as_bytes().to_vec();
        self.runtime.block_on(self.client.publish(topic, QoS::AtLeastOnce, retain, payload)).unwrap();
    }

    /// Sends everything queued, then disconnects.
    fn close(self) {
        let Self { runtime, client, events } = self;
        runtime.block_on(async {
            let _ = client.disconnect().await;
            let _ = tokio::time::timeout(Duration::from_secs(5), events).await;
        });
    }
}

fn points(addr: &str, auth: &str) -> Vec<Value> {
    let query = "from=2025-11-01T00:00:00Z&to=2025-12-01T00:00:00Z";
    let response = http(addr, "GET", &format!("/api/v1/points?{query}"), &[("Authorization", auth)], b"");
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["points"].as_array().cloned().unwrap_or_default()
}

#[test]
fn owntracks_messages_published_to_the_broker_are_stored() {
    if !broker_available() {
        return;
    }
    // Unique per run, also across runs that reuse a process id.
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let jane = format!("jane{}x{nanos:x}", std::process::id());
    let nobody = format!("nobody{}x{nanos:x}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), &jane);
    let publisher = Publisher::connect(&format!("polo-test-{}", std::process::id()));

    // Retained before polo even starts: the broker hands it over at subscription.
    let tablet = format!("owntracks/{jane}/tablet");
    publisher.publish(
        &tablet,
        true,
        r#"{"_type":"location","lat":48.8606,"lon":2.3376,"tst":1763690000,"acc":20,"tid":"JT","t":"p"}"#,
    );

    let server = serve(dir.path(), &["--mqtt-url", "mqtt://127.0.0.1:1883"]);
    let auth = basic(&jane, "a long password");
    let location = r#"{"_type":"location","created_at":1763700000,"_id":"a1b2c3d4","batt":81,"bs":1,"acc":12,"vac":3,
 "lat":48.856826,"lon":2.292713,"alt":35,"vel":36,"cog":90,"tst":1763699990,"m":1,"conn":"w",
 "inregions":["Home"],"BSSID":"aa:bb:cc:dd:ee:ff","SSID":"homenet","tid":"JP","t":"u"}"#;
    let transition = r#"{"_type":"transition","wtst":1700000000,"lat":48.8584,"lon":2.2945,"tst":1763700100,"acc":5,
 "tid":"JP","event":"leave","desc":"Home","t":"c","rid":"ab12cd"}"#;
    let card = r#"{"_type":"card","tid":"JP","name":"Jane Jolie"}"#;

    // polo subscribes asynchronously after it starts listening, so publish
    // until the points show up: re-published messages are duplicates.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut stored = Vec::new();
    while Instant::now() < deadline {
        publisher.publish(&format!("owntracks/{jane}/phone"), false, location);
        publisher.publish(&format!("owntracks/{jane}/phone/event"), false, transition);
        publisher.publish(&format!("owntracks/{jane}/phone/info"), false, card);
        publisher.publish(&format!("owntracks/{nobody}/phone"), false, location);
        std::thread::sleep(Duration::from_millis(300));
        stored = points(&server.addr, &auth);
        if stored.len() >= 3 {
            break;
        }
    }
    // Clear the retained message before asserting, so a failure leaves nothing behind.
    publisher.publish(&tablet, true, "");
    publisher.close();

    assert_eq!(
        stored.len(),
        3,
        "expected the tablet's retained location, the phone's location and transition: {stored:?}"
    );
    let at = |time: &str| stored.iter().find(|p| p["time"].as_str().is_some_and(|t| t.starts_with(time))).cloned();
    let fix = at("2025-11-21T04:39:50").unwrap_or_else(|| panic!("the location: {stored:?}"));
    assert_eq!(fix["device"], "phone");
    assert_eq!(fix["speed"], 10.0, "vel 36 km/h is 10 m/s");
    assert_eq!(fix["accuracy"], 12.0);
    assert_eq!(fix["battery"], 81);
    assert_eq!(fix["extras"]["SSID"], "homenet");
    let left = at("2025-11-21T04:41:40").unwrap_or_else(|| panic!("the transition: {stored:?}"));
    assert_eq!(left["device"], "phone");
    assert_eq!(left["extras"]["event"], "leave");
    let retained = at("2025-11-21T01:53:20").unwrap_or_else(|| panic!("the retained location: {stored:?}"));
    assert_eq!(retained["device"], "tablet");

    let metrics = http(&server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains(r#"polo_points_ingested_total{protocol="owntracks-mqtt"} 3"#), "{}", metrics.body);
    assert!(metrics.body.contains(r#"polo_rejects_total{reason="mqtt_unknown_user"}"#), "{}", metrics.body);
}

/// A subscribing client that collects what arrives on its filters.
struct Listener {
    runtime: tokio::runtime::Runtime,
    client: AsyncClient,
    received: std::sync::mpsc::Receiver<(String, bool, Vec<u8>)>,
    seen: Vec<(String, bool, Vec<u8>)>,
}

impl Listener {
    fn connect(id: &str, filters: &[String]) -> Self {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(1).enable_all().build().unwrap();
        let (client, mut eventloop) = AsyncClient::new(MqttOptions::new(id, "127.0.0.1", 1883), 64);
        let (sender, received) = std::sync::mpsc::channel();
        let (subscribed_tx, subscribed) = std::sync::mpsc::channel();
        let filters = filters.to_vec();
        let subscriber = client.clone();
        runtime.spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(rumqttc::Packet::ConnAck(_))) => {
                        for filter in &filters {
                            let _ = subscriber.subscribe(filter.clone(), QoS::AtLeastOnce).await;
                        }
                    }
                    Ok(Event::Incoming(rumqttc::Packet::SubAck(_))) => {
                        let _ = subscribed_tx.send(());
                    }
                    Ok(Event::Incoming(rumqttc::Packet::Publish(p))) => {
                        let _ = sender.send((p.topic.clone(), p.retain, p.payload.to_vec()));
                    }
                    Ok(Event::Outgoing(Outgoing::Disconnect)) => break,
                    Ok(_) => {}
                    Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
                }
            }
        });
        subscribed.recv_timeout(Duration::from_secs(10)).expect("the listener subscribed");
        Self { runtime, client, received, seen: Vec::new() }
    }

    /// Waits up to `within` for a message on `topic` that `accept` takes; its JSON.
    fn wait_for(&mut self, topic: &str, within: Duration, accept: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = Instant::now() + within;
        loop {
            for (t, _, payload) in &self.seen {
                if t == topic
                    && let Ok(value) = serde_json::from_slice::<Value>(payload)
                    && accept(&value)
                {
                    return Some(value);
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            match self.received.recv_timeout(left.min(Duration::from_millis(200))) {
                Ok(message) => self.seen.push(message),
                Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {}
                Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => return None,
            }
        }
    }

    fn close(self) {
        let Self { runtime, client, .. } = self;
        runtime.block_on(async {
            let _ = client.disconnect().await;
        });
        runtime.shutdown_timeout(Duration::from_secs(2));
    }
}

fn post_json(addr: &str, path: &str, auth: &str, extra: &[(&str, &str)], body: &Value) -> common::Response {
    let mut headers = vec![("Authorization", auth), ("Content-Type", "application/json")];
    headers.extend_from_slice(extra);
    http(addr, "POST", path, &headers, body.to_string().as_bytes())
}

fn now_s() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

#[test]
fn republish_discovery_regions_and_set_waypoints_go_through_the_broker() {
    if !broker_available() {
        return;
    }
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    let jane = format!("jane{}y{nanos:x}", std::process::id());
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), &jane);
    let filters = vec![
        format!("owntracks/{jane}/#"),
        format!("polo/{jane}/#"),
        "homeassistant/device_tracker/+/config".to_owned(),
    ];
    let mut listener = Listener::connect(&format!("polo-test-l{}x{nanos:x}", std::process::id()), &filters);
    let publisher = Publisher::connect(&format!("polo-test-p{}x{nanos:x}", std::process::id()));
    let server = serve(
        dir.path(),
        &[
            "--mqtt-url",
            "mqtt://127.0.0.1:1883",
            "--mqtt-republish",
            "--mqtt-discovery",
            "--zone-reorder-window-ms",
            "0",
        ],
    );
    let auth = basic(&jane, "a long password");
    let addr = server.addr.clone();

    // A zone made in polo; the phone posts over HTTP from inside it.
    let zone = serde_json::json!({"name": "Home", "shape": {"type": "circle", "center": [48.8566, 2.3522], "radius_m": 200},
        "rules": {"dwell_s": 0, "cooldown_s": 0, "exit_confirmations": 1, "exit_buffer_m": 10}});
    let created = post_json(&addr, "/api/v1/zones", &auth, &[], &zone);
    assert_eq!(created.status, 201, "{}", created.body);
    let home = created.json()["id"].as_i64().unwrap();
    let t0 = now_s() - 120;
    let fix = |lat: f64, tst: i64| serde_json::json!({"_type": "location", "lat": lat, "lon": 2.3522, "tst": tst, "acc": 10, "batt": 77, "tid": "JP"});
    let reply = post_json(&addr, "/api/owntracks", &auth, &[("X-Limit-D", "phone")], &fix(48.8566, t0));
    assert_eq!(reply.status, 200, "{}", reply.body);
    let items = reply.json();
    let command = items.as_array().unwrap().iter().find(|m| m["_type"] == "cmd").cloned();
    let command = command.unwrap_or_else(|| panic!("the first reply carries setWaypoints: {items}"));
    assert_eq!(command["action"], "setWaypoints");
    assert_eq!(command["waypoints"]["waypoints"][0]["desc"], "Home");
    assert_eq!(command["waypoints"]["waypoints"][0]["rid"], format!("polo-{home}"));
    let again = post_json(&addr, "/api/owntracks", &auth, &[("X-Limit-D", "phone")], &fix(48.8566, t0 + 30));
    assert!(again.json().as_array().unwrap().iter().all(|m| m["_type"] != "cmd"), "sent once: {}", again.body);

    // Republished, retained, marked as polo's.
    let phone_topic = format!("owntracks/{jane}/phone");
    let location = listener.wait_for(&phone_topic, Duration::from_secs(10), |v| v["tst"] == t0 + 30);
    let location = location.unwrap_or_else(|| panic!("the HTTP point on {phone_topic}: {:?}", listener.seen.len()));
    assert_eq!((location["_type"].as_str(), location["_creator"].as_str()), (Some("location"), Some("polo")));
    assert_eq!(
        (location["acc"].as_i64(), location["batt"].as_i64(), location["tid"].as_str()),
        (Some(10), Some(77), Some("JP"))
    );
    // Home Assistant discovery: a retained config naming the attributes topic, and the attributes.
    let attributes_topic = format!("polo/{jane}/phone/attributes");
    let config = listener
        .wait_for_any_config(&attributes_topic)
        .unwrap_or_else(|| panic!("a discovery config for {attributes_topic}"));
    let (config_topic, config) = config;
    assert_eq!(config["source_type"], "gps");
    assert!(config["unique_id"].as_str().unwrap().starts_with("polo_"));
    let attributes = listener.wait_for(&attributes_topic, Duration::from_secs(10), |v| v["latitude"] == 48.8566);
    let attributes = attributes.expect("the device tracker's attributes");
    assert_eq!((attributes["gps_accuracy"].as_i64(), attributes["battery_level"].as_i64()), (Some(10), Some(77)));

    // Leaving Home: zone events go to …/event as OwnTracks transitions.
    for (i, lat) in [48.87, 48.871].into_iter().enumerate() {
        let tst = t0 + 60 + 10 * i64::try_from(i).unwrap();
        assert_eq!(post_json(&addr, "/api/owntracks", &auth, &[("X-Limit-D", "phone")], &fix(lat, tst)).status, 200);
    }
    let event_topic = format!("owntracks/{jane}/phone/event");
    let entered = listener.wait_for(&event_topic, Duration::from_secs(20), |v| v["event"] == "enter");
    let entered = entered.unwrap_or_else(|| panic!("zone.enter on {event_topic}"));
    assert_eq!((entered["_type"].as_str(), entered["desc"].as_str()), (Some("transition"), Some("Home")));
    assert_eq!(entered["rid"], format!("polo-{home}"));
    let left = listener.wait_for(&event_topic, Duration::from_secs(20), |v| v["event"] == "leave");
    assert!(left.is_some(), "zone.leave on {event_topic}");

    // The tablet speaks MQTT: its region becomes a zone once however often it is sent, its location
    // is answered with setWaypoints on its cmd topic, its transition is logged as an app event.
    let tablet = format!("owntracks/{jane}/tablet");
    let region = r#"{"_type":"waypoint","desc":"Gym","lat":48.85,"lon":2.29,"rad":80,"tst":1700000002}"#;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut gym = None;
    while gym.is_none() && Instant::now() < deadline {
        publisher.publish(&format!("{tablet}/waypoint"), false, region);
        std::thread::sleep(Duration::from_millis(300));
        let zones = http(&addr, "GET", "/api/v1/zones", &[("Authorization", &auth)], b"").json();
        gym = zones["zones"].as_array().unwrap().iter().find(|z| z["name"] == "Gym").cloned();
    }
    let gym = gym.expect("the tablet's region became a zone");
    assert_eq!((gym["origin"].as_str(), gym["shape"]["radius_m"].as_f64()), (Some("owntracks"), Some(80.0)));
    publisher.publish(&format!("{tablet}/waypoint"), false, region);
    publisher.publish(&tablet, false, &fix(48.85, now_s() - 5).to_string());
    let cmd = listener.wait_for(&format!("{tablet}/cmd"), Duration::from_secs(10), |v| v["action"] == "setWaypoints");
    let cmd = cmd.expect("setWaypoints on the tablet's cmd topic");
    let names: Vec<&str> =
        cmd["waypoints"]["waypoints"].as_array().unwrap().iter().filter_map(|w| w["desc"].as_str()).collect();
    assert_eq!(names, ["Home", "Gym"], "by tst: polo's synthetic 2000-01-01 + id, then the app's");
    let transition = serde_json::json!({"_type": "transition", "event": "enter", "desc": "Gym", "lat": 48.85, "lon": 2.29,
        "tst": now_s() - 4, "wtst": 1_700_000_002, "acc": 8, "t": "c"});
    publisher.publish(&format!("{tablet}/event"), false, &transition.to_string());
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut app_event = None;
    while app_event.is_none() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
        let events = http(&addr, "GET", "/api/v1/events", &[("Authorization", &auth)], b"").json();
        app_event = events["events"].as_array().unwrap().iter().find(|e| e["kind"] == "app.enter").cloned();
    }
    let app_event = app_event.expect("the app's transition in the event log");
    assert_eq!((app_event["zone"].as_i64(), app_event["device_name"].as_str()), (gym["id"].as_i64(), Some("tablet")));
    let zones = http(&addr, "GET", "/api/v1/zones", &[("Authorization", &auth)], b"").json();
    assert_eq!(zones["zones"].as_array().unwrap().len(), 2, "the region sent twice is one zone: {zones}");

    // Leave nothing retained behind.
    for topic in [phone_topic, attributes_topic, config_topic] {
        publisher.publish(&topic, true, "");
    }
    publisher.close();
    listener.close();
}

impl Listener {
    /// The retained discovery config whose attributes topic is `attributes_topic`, with its topic.
    fn wait_for_any_config(&mut self, attributes_topic: &str) -> Option<(String, Value)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            for (t, _, payload) in &self.seen {
                if t.starts_with("homeassistant/device_tracker/")
                    && let Ok(value) = serde_json::from_slice::<Value>(payload)
                    && value["json_attributes_topic"] == attributes_topic
                {
                    return Some((t.clone(), value));
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if let Ok(message) = self.received.recv_timeout(left.min(Duration::from_millis(200))) {
                self.seen.push(message);
            }
        }
    }
}
