//! Webhooks end to end (issue 19): the real binary evaluates batch-ingested
//! points against a zone and POSTs the events to a receiver run by the test.
//!
//! * The receiver fails for a few seconds, then recovers: every event is
//!   delivered, in order, each with one idempotency key on every attempt.
//! * The same events as a stream (`GET /api/v1/stream`), resumed with
//!   `Last-Event-ID`: nothing missed, nothing repeated.
//! * `polo serve` is killed with SIGKILL while it delivers: after a restart
//!   the rest is delivered; nothing is lost, and an event delivered twice
//!   (answered, but killed before the answer was recorded) carries the same key.
//! * [`moves`]: visit and trip events from live points, none from an import.
//! * [`streams`]: the stream over SSE and WebSocket, resumed and scoped;
//!   `GET /api/v1/live`; a disabled webhook.

mod moves;
mod streams;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::common::{add_user, basic, http, http_stream_start, serve};

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    event: i64,
    kind: String,
    key: String,
    signature: String,
    answered: u16,
}

/// An HTTP receiver on port 0 that answers 503 until `fail_until`, and
/// takes `delay` to answer each request.
struct Receiver {
    url: String,
    got: Arc<Mutex<Vec<Received>>>,
}

impl Receiver {
    fn start(fail_until: Instant, delay: Duration) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let got = Arc::new(Mutex::new(Vec::new()));
        let log = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { continue };
                let log = log.clone();
                std::thread::spawn(move || {
                    let mut reader = BufReader::new(stream.try_clone().unwrap());
                    let mut headers = BTreeMap::new();
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap() == 0 || line == "\r\n" {
                            break;
                        }
                        if let Some((name, value)) = line.split_once(':') {
                            headers.insert(name.trim().to_ascii_lowercase(), value.trim().to_owned());
                        }
                    }
                    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
                    let mut body = vec![0; length];
                    reader.read_exact(&mut body).unwrap();
                    std::thread::sleep(delay);
                    let answered = if Instant::now() < fail_until { 503 } else { 200 };
                    let event: Value = serde_json::from_slice(&body).unwrap();
                    log.lock().unwrap().push(Received {
                        event: event["id"].as_i64().unwrap(),
                        kind: event["kind"].as_str().unwrap().to_owned(),
                        key: headers.get("idempotency-key").cloned().unwrap_or_default(),
                        signature: headers.get("x-polo-signature").cloned().unwrap_or_default(),
                        answered,
                    });
                    let reason = if answered == 200 { "OK" } else { "Service Unavailable" };
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {answered} {reason}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    );
                });
            }
        });
        Self { url, got }
    }

    fn received(&self) -> Vec<Received> {
        self.got.lock().unwrap().clone()
    }

    /// The events answered 200, in the order they were.
    fn delivered(&self) -> Vec<i64> {
        self.received().iter().filter(|r| r.answered == 200).map(|r| r.event).collect()
    }
}

/// Fast retries and no reorder wait, so a few seconds show the whole cycle.
const FLAGS: &[&str] = &[
    "--zone-reorder-window-ms",
    "0",
    "--webhook-first-retry-ms",
    "100",
    "--webhook-max-retry-ms",
    "400",
    "--webhook-max-attempts",
    "100",
];

fn post(addr: &str, auth: &str, path: &str, body: &Value) -> Value {
    let body = serde_json::to_vec(body).unwrap();
    let headers = [("Authorization", auth), ("Content-Type", "application/json")];
    let response = http(addr, "POST", path, &headers, &body);
    assert!(matches!(response.status, 200 | 201), "{path}: {} {}", response.status, response.body);
    response.json()
}

/// A user with a zone (dwell 0, one confirming fix) and a subscription to
/// `url`; then `visits` visits of it batch-ingested, which make
/// `2 × visits` events. Returns the user's credentials.
fn visits_with_a_subscription(dir: &Path, addr: &str, url: &str, visits: usize) -> String {
    let auth = basic("jane", "a long password");
    let zone = json!({"name": "Home", "shape": {"type": "circle", "center": [52.52, 13.405], "radius_m": 100.0},
        "rules": {"dwell_s": 0, "exit_confirmations": 1, "cooldown_s": 0, "exit_buffer_m": 20.0}});
    post(addr, &auth, "/api/v1/zones", &zone);
    let hook = post(addr, &auth, "/api/v1/webhooks", &json!({"url": url, "kinds": ["zone.enter", "zone.leave"]}));
    assert_eq!(hook["secret"].as_str().unwrap().len(), 32);
    // One fix a second, ending a minute ago: inside, then 2 km away, alternately.
    let now_s = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let start = now_s - 60 - 2 * visits as i64;
    let items: Vec<Value> = (0..2 * visits as i64)
        .map(|i| {
            let lat = if i % 2 == 0 { 52.52 } else { 52.54 };
            json!({"time": start + i, "lat": lat, "lon": 13.405, "accuracy": 5, "device": "phone"})
        })
        .collect();
    let summary = post(addr, &auth, "/api/v1/points", &json!(items));
    assert_eq!(summary["added"], 2 * visits as u64, "{summary}");
    let _ = dir;
    auth
}

fn wait_until(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Every event delivered once successfully (or more, with one key), in
/// event order, and one key per event.
fn check_order_and_keys(received: &[Received], events: &[i64]) {
    let mut keys: BTreeMap<i64, &str> = BTreeMap::new();
    for r in received {
        assert!(r.signature.starts_with("sha256=") && r.signature.len() == 71, "{r:?}");
        let key = keys.entry(r.event).or_insert(&r.key);
        assert_eq!(*key, r.key, "event {} was sent with two keys", r.event);
    }
    let distinct: std::collections::BTreeSet<&str> = keys.values().copied().collect();
    assert_eq!(distinct.len(), keys.len(), "a key per event");
    // First successful delivery of each event, in arrival order: the event order.
    let mut first = Vec::new();
    for r in received.iter().filter(|r| r.answered == 200) {
        if !first.contains(&r.event) {
            first.push(r.event);
        }
    }
    assert_eq!(first, events, "every event, in order");
    // Requests never go back to an earlier event once a later one was attempted (bar a redelivery
    // of an event already answered, after a restart).
    let mut highest = 0;
    for r in received {
        let answered_before =
            received.iter().take_while(|x| !std::ptr::eq(*x, r)).any(|x| x.event == r.event && x.answered == 200);
        assert!(r.event >= highest || answered_before, "event {} sent after event {highest}", r.event);
        highest = highest.max(r.event);
    }
}

fn logged_events(addr: &str, auth: &str) -> Vec<Value> {
    let response = http(addr, "GET", "/api/v1/events?after=0&limit=1000", &[("Authorization", auth)], b"");
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()["events"].as_array().unwrap().clone()
}

/// The event ids a stream sends within a second and a half.
fn streamed_ids(addr: &str, auth: &str, path: &str, last_event_id: Option<i64>) -> Vec<i64> {
    let last = last_event_id.map(|id| id.to_string());
    let mut headers = vec![("Authorization", auth)];
    if let Some(last) = &last {
        headers.push(("Last-Event-ID", last.as_str()));
    }
    let response = http_stream_start(addr, "GET", path, &headers, Duration::from_millis(1_500));
    assert_eq!(response.status, 200, "{}", response.body);
    response.body.lines().filter_map(|l| l.strip_prefix("id:")?.trim().parse().ok()).collect()
}

#[test]
fn a_receiver_that_fails_for_a_while_gets_every_event_in_order_with_stable_keys() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let receiver = Receiver::start(Instant::now() + Duration::from_secs(4), Duration::ZERO);
    let server = serve(dir.path(), FLAGS);
    let auth = visits_with_a_subscription(dir.path(), &server.addr, &receiver.url, 10);
    wait_until("the log has 20 events", Duration::from_secs(30), || logged_events(&server.addr, &auth).len() == 20);
    let events = logged_events(&server.addr, &auth);
    let kinds: Vec<&str> = events.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, [["zone.enter", "zone.leave"]; 10].concat());
    assert!(events.iter().all(|e| e["past"] == false && e["zone_name"] == "Home" && e["device_name"] == "phone"));
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    // The log as a stream: resumed after an event id (a reconnect), it carries the rest, in order;
    // a kinds filter carries only those.
    let resumed = streamed_ids(&server.addr, &auth, "/api/v1/stream", Some(ids[9]));
    assert_eq!(resumed, ids[10..]);
    let leaves = streamed_ids(&server.addr, &auth, "/api/v1/stream?after=0&kinds=zone.leave", None);
    assert_eq!(leaves, ids.iter().copied().skip(1).step_by(2).collect::<Vec<_>>());
    wait_until("every event is delivered", Duration::from_secs(60), || receiver.delivered().len() >= 20);
    let received = receiver.received();
    assert!(received.iter().any(|r| r.answered == 503), "the receiver failed for a while");
    assert!(received.iter().filter(|r| r.event == ids[0]).count() > 1, "the first event was retried");
    check_order_and_keys(&received, &ids);
    assert_eq!(received.iter().find(|r| r.event == ids[1]).unwrap().kind, "zone.leave");
    // The delivery log says so too.
    let hooks = http(&server.addr, "GET", "/api/v1/webhooks", &[("Authorization", auth.as_str())], b"").json();
    let hook = hooks["webhooks"][0]["id"].as_i64().unwrap();
    let log = http(
        &server.addr,
        "GET",
        &format!("/api/v1/webhooks/{hook}/deliveries"),
        &[("Authorization", auth.as_str())],
        b"",
    );
    let log = log.json();
    let log = log["deliveries"].as_array().unwrap();
    assert_eq!(log.len(), 20);
    assert!(log.iter().all(|d| d["status"] == "delivered"), "{log:?}");
    assert!(log.last().unwrap()["attempts"].as_u64().unwrap() > 1, "the oldest took retries");
}

#[test]
fn kill_9_mid_delivery_delivers_the_rest_after_restart() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    // A slow receiver: 150 ms per request, so the kill lands mid-delivery.
    let receiver = Receiver::start(Instant::now(), Duration::from_millis(150));
    let mut server = serve(dir.path(), FLAGS);
    let auth = visits_with_a_subscription(dir.path(), &server.addr, &receiver.url, 15);
    wait_until("some events are delivered", Duration::from_secs(30), || receiver.delivered().len() >= 5);
    server.kill();
    let before = receiver.delivered().len();
    assert!(before < 30, "the kill came too late to test anything ({before} delivered)");
    let server = serve(dir.path(), FLAGS);
    wait_until("every event is delivered", Duration::from_secs(60), || {
        let mut seen = receiver.delivered();
        seen.sort_unstable();
        seen.dedup();
        seen.len() >= 30
    });
    let events = logged_events(&server.addr, &auth);
    assert_eq!(events.len(), 30, "each event logged once, the restart derived none twice");
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let received = receiver.received();
    check_order_and_keys(&received, &ids);
    let extra = received.iter().filter(|r| r.answered == 200).count() - 30;
    assert!(extra <= 1, "at most the delivery in flight at the kill is sent twice ({extra})");
}
