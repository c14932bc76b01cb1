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
