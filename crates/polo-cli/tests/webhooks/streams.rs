//! `GET /api/v1/stream` and `GET /api/v1/live` end to end (issue 19, item 5):
//!
//! * a client disconnects while events keep being logged and resumes, over
//!   SSE with `Last-Event-ID` and over a WebSocket (`?token=`, `?after=`):
//!   together the two connections carry the whole log, once, in order;
//! * a scoped subscription (one device, one friend, some kinds) never
//!   receives anything outside it: not the other device, not the other
//!   friend, not another kind, over SSE and WebSocket alike;
//! * `GET /api/v1/live` (JSON) shows a new fix at once and stops showing a
//!   friend the moment their grant is withdrawn;
//! * a disabled webhook queues nothing new and its pending deliveries are
//!   dropped, unsent.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::net::TcpStream;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use tungstenite::Message;

use super::{FLAGS, Receiver, logged_events, post, wait_until};
use crate::common::{EventStream, add_user, basic, http, polo, run_ok, serve};

const PASSWORD: &str = "a long password";

/// One message of either transport: `event`, `id` (events only) and `data`.
#[derive(Debug, Clone)]
struct Got {
    event: String,
    id: Option<i64>,
    data: Value,
}

/// The SSE blocks that arrived within `wait` (or until `until` holds for what arrived).
fn sse_messages(stream: &mut EventStream, wait: Duration, mut until: impl FnMut(&[Got]) -> bool) -> Vec<Got> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    loop {
        stream.dechunk();
        while let Some(end) = stream.decoded.find("\n\n") {
            let block: String = stream.decoded.drain(..end + 2).collect();
            let field = |name: &str| block.lines().find_map(|l| l.strip_prefix(name)).map(|v| v.trim().to_owned());
            let (Some(event), Some(data)) = (field("event:"), field("data:")) else { continue };
            out.push(Got {
                event,
                id: field("id:").map(|id| id.parse().unwrap()),
                data: serde_json::from_str(&data).unwrap(),
            });
        }
        if until(&out) || Instant::now() >= deadline || !stream.fill() {
            return out;
        }
    }
}

fn open_sse(addr: &str, path: &str, auth: &str, last_event_id: Option<i64>) -> EventStream {
    let last = last_event_id.map(|id| id.to_string());
    let mut headers = vec![("Authorization", auth)];
    if let Some(last) = &last {
        headers.push(("Last-Event-ID", last.as_str()));
    }
    EventStream::open_with(addr, path, &headers)
}

type Socket = tungstenite::WebSocket<TcpStream>;

fn open_ws(addr: &str, path: &str) -> Socket {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let (socket, response) = tungstenite::client(format!("ws://{addr}{path}"), stream).unwrap();
    assert_eq!(response.status(), 101);
    socket
}

fn ws_messages(socket: &mut Socket, wait: Duration, mut until: impl FnMut(&[Got]) -> bool) -> Vec<Got> {
    let deadline = Instant::now() + wait;
    let mut out = Vec::new();
    while !until(&out) && Instant::now() < deadline {
        match socket.read() {
            Ok(Message::Text(text)) => {
                let message: Value = serde_json::from_str(&text).unwrap();
                out.push(Got {
                    event: message["event"].as_str().unwrap().to_owned(),
                    id: message["id"].as_i64(),
                    data: message["data"].clone(),
                });
            }
            Ok(_) => {}
            Err(tungstenite::Error::Io(e)) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
    }
    out
}

fn ids(messages: &[Got]) -> Vec<i64> {
    messages.iter().filter_map(|m| m.id).collect()
}

fn now_s() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64
}

/// `visits` visits of the zone at (52.52, 13.405) by `device`: a fix a second from `start`,
/// inside and 2 km away alternately, which log `2 × visits` events.
fn visits(addr: &str, auth: &str, device: &str, start: i64, visits: usize) {
    let items: Vec<Value> = (0..2 * visits as i64)
        .map(|i| {
            let lat = if i % 2 == 0 { 52.52 } else { 52.54 };
            json!({"time": start + i, "lat": lat, "lon": 13.405, "accuracy": 5, "device": device})
        })
        .collect();
    let summary = post(addr, auth, "/api/v1/points", &json!(items));
    assert_eq!(summary["added"], 2 * visits as u64, "{summary}");
}

/// Flags for live events: fixes stamped now wait a second (the reorder window) and are then
/// evaluated as live, so their events are sent; fast retries.
const LIVE_FLAGS: &[&str] = &[
    "--zone-reorder-window-ms",
    "1000",
    "--webhook-first-retry-ms",
    "100",
    "--webhook-max-retry-ms",
    "400",
    "--webhook-max-attempts",
    "100",
];

/// `visits` live visits of Home by `device`: a fix every 150 ms stamped with the current
/// millisecond, inside and 2 km away alternately (`2 × visits` events, none of them past).
fn live_visits(addr: &str, auth: &str, device: &str, visits: usize) {
    for i in 0..2 * visits {
        let lat = if i % 2 == 0 { 52.52 } else { 52.54 };
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis() as i64;
        let body = json!([{"time": ms, "lat": lat, "lon": 13.405, "accuracy": 5, "device": device}]);
        assert_eq!(post(addr, auth, "/api/v1/points", &body)["added"], 1);
        std::thread::sleep(Duration::from_millis(150));
    }
}

fn home(addr: &str, auth: &str) {
    let zone = json!({"name": "Home", "shape": {"type": "circle", "center": [52.52, 13.405], "radius_m": 100.0},
        "rules": {"dwell_s": 0, "exit_confirmations": 1, "cooldown_s": 0, "exit_buffer_m": 20.0}});
    post(addr, auth, "/api/v1/zones", &zone);
}

fn fix(addr: &str, auth: &str, device: &str, time: i64, lat: f64) {
    let body = json!([{"time": time, "lat": lat, "lon": 8.5, "accuracy": 5, "device": device}]);
    assert_eq!(post(addr, auth, "/api/v1/points", &body)["added"], 1);
}

#[test]
fn a_stream_resumed_over_sse_and_websocket_misses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let args = ["token", "create", "--user", "jane", "--device", "phone", "--scope", "read"];
    let token = run_ok(polo(dir.path()).args(args)).trim().to_owned();
    let server = serve(dir.path(), FLAGS);
    let addr = server.addr.as_str();
    let jane = basic("jane", PASSWORD);
    home(addr, &jane);
    let start = now_s() - 600;
    visits(addr, &jane, "phone", start, 3);
    wait_until("6 events are logged", Duration::from_secs(30), || logged_events(addr, &jane).len() == 6);

    // SSE from the start of the log, events only; then the connection drops.
    let mut sse = open_sse(addr, "/api/v1/stream?after=0&kinds=zone.enter,zone.leave", &jane, None);
    let first = sse_messages(&mut sse, Duration::from_secs(10), |m| ids(m).len() >= 6);
    assert_eq!(ids(&first).len(), 6, "{first:?}");
    drop(sse);
    // While disconnected, more visits are logged; resuming with Last-Event-ID gets exactly them.
    visits(addr, &jane, "phone", start + 100, 4);
    wait_until("14 events are logged", Duration::from_secs(30), || logged_events(addr, &jane).len() == 14);
    let last = *ids(&first).last().unwrap();
    let mut sse = open_sse(addr, "/api/v1/stream?kinds=zone.enter,zone.leave", &jane, Some(last));
    let second = sse_messages(&mut sse, Duration::from_secs(10), |m| ids(m).len() >= 8);
    drop(sse);
    let log: Vec<i64> = logged_events(addr, &jane).iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!([ids(&first), ids(&second)].concat(), log, "nothing missed, nothing twice, in order");
    let kinds: Vec<&str> = second.iter().map(|m| m.event.as_str()).collect();
    assert_eq!(kinds, [["zone.enter", "zone.leave"]; 4].concat());
    assert_eq!(second[0].data["id"], second[0].id.unwrap(), "data is the event as the log lists it");
    assert_eq!(second[0].data["zone_name"], "Home");

    // The same over a WebSocket with the token in the URL: resumed with ?after=, positions too.
    let path = format!("/api/v1/stream?after={}&token={token}", log[9]);
    let mut socket = open_ws(addr, &path);
    let got = ws_messages(&mut socket, Duration::from_secs(10), |m| ids(m).len() >= 4);
    assert_eq!(ids(&got), log[10..], "{got:?}");
    let position = got.iter().find(|m| m.event == "position").expect("the newest position first");
    assert_eq!(
        (position.id, position.data["device"].as_str(), position.data["user"].as_str()),
        (None, Some("phone"), Some("jane"))
    );
    socket.close(None).unwrap();
    // Disconnected again, two more visits; the next socket resumes after the last id it saw.
    visits(addr, &jane, "phone", start + 200, 2);
    wait_until("18 events are logged", Duration::from_secs(30), || logged_events(addr, &jane).len() == 18);
    let seen = *ids(&got).last().unwrap();
    let mut socket = open_ws(addr, &format!("/api/v1/stream?after={seen}&kinds=zone.leave,zone.enter&token={token}"));
    let rest = ws_messages(&mut socket, Duration::from_secs(10), |m| ids(m).len() >= 4);
    let log: Vec<i64> = logged_events(addr, &jane).iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids(&rest), log[14..]);
    assert!(rest.iter().all(|m| m.event != "position"), "kinds leave positions out");

    // Bad requests are refused before any upgrade, naming the value; a wrong token is a 401.
    let bad = http(addr, "GET", "/api/v1/stream?kinds=zone.entered", &[("Authorization", jane.as_str())], b"");
    assert_eq!(bad.status, 400, "{}", bad.body);
    assert!(bad.body.contains("kinds: \\\"zone.entered\\\""), "{}", bad.body);
    let bad = http(addr, "GET", "/api/v1/stream?devices=tablet", &[("Authorization", jane.as_str())], b"");
    assert!(bad.status == 400 && bad.body.contains("devices: \\\"tablet\\\""), "{}", bad.body);
    let nobody = http(addr, "GET", "/api/v1/stream?token=polo_nonsense", &[], b"");
    assert_eq!(nobody.status, 401, "{}", nobody.body);
    // A session cookie from another site's page cannot open the socket.
    let login = br#"{"username":"jane","password":"a long password"}"#;
    let session = http(addr, "POST", "/api/v1/session", &[("Content-Type", "application/json")], login);
    let cookie = session.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let mut request =
        tungstenite::client::IntoClientRequest::into_client_request(format!("ws://{addr}/api/v1/stream")).unwrap();
    request.headers_mut().insert("Cookie", cookie.parse().unwrap());
    request.headers_mut().insert("Origin", "https://evil.example".parse().unwrap());
    let refused = tungstenite::client(request, TcpStream::connect(addr).unwrap()).unwrap_err();
    match refused {
        tungstenite::HandshakeError::Failure(tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_scoped_subscription_never_receives_anything_outside_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    for user in ["jane", "bob", "carol"] {
        add_user(dir.path(), user);
    }
    let server = serve(dir.path(), FLAGS);
    let addr = server.addr.as_str();
    let (jane, bob, carol) = (basic("jane", PASSWORD), basic("bob", PASSWORD), basic("carol", PASSWORD));
    // Bob and Carol both let Jane see them.
    post(addr, &bob, "/api/v1/friends", &json!({"user": "jane"}));
    post(addr, &carol, "/api/v1/friends", &json!({"user": "jane"}));
    home(addr, &jane);
    let start = now_s() - 600;
    // Jane's phone and tablet both visit Home: events on both devices, of both kinds.
    visits(addr, &jane, "phone", start, 2);
    visits(addr, &jane, "tablet", start, 2);
    wait_until("8 events are logged", Duration::from_secs(30), || logged_events(addr, &jane).len() == 8);
    let scope = "devices=phone&friends=bob&kinds=position,zone.leave";
    let mut sse = open_sse(addr, &format!("/api/v1/stream?after=0&{scope}"), &jane, None);
    let mut socket = {
        let args = ["token", "create", "--user", "jane", "--device", "phone", "--scope", "read"];
        let token = run_ok(polo(dir.path()).args(args)).trim().to_owned();
        open_ws(addr, &format!("/api/v1/stream?after=0&{scope}&token={token}"))
    };
    // Everyone moves while the subscriptions are open: Jane's two devices, Bob and Carol.
    let t = now_s() - 5;
    fix(addr, &jane, "phone", t, 47.1);
    fix(addr, &jane, "tablet", t, 47.2);
    fix(addr, &bob, "pixel", t, 47.3);
    fix(addr, &carol, "iphone", t, 47.4);
    let enough = |m: &[Got]| {
        let has = |device: &str| m.iter().any(|x| x.event == "position" && x.data["device"] == device);
        ids(m).len() >= 2 && has("phone") && has("pixel")
    };
    let over_sse = sse_messages(&mut sse, Duration::from_secs(15), enough);
    let over_ws = ws_messages(&mut socket, Duration::from_secs(15), enough);
    // Then a while longer, for anything that should not come.
    let later_sse = sse_messages(&mut sse, Duration::from_secs(2), |_| false);
    let later_ws = ws_messages(&mut socket, Duration::from_secs(2), |_| false);
    let phone_leaves: Vec<i64> = logged_events(addr, &jane)
        .iter()
        .filter(|e| e["kind"] == "zone.leave" && e["device_name"] == "phone")
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(phone_leaves.len(), 2);
    for (transport, messages) in [("sse", [over_sse, later_sse].concat()), ("websocket", [over_ws, later_ws].concat())]
    {
        assert!(enough(&messages), "{transport}: {messages:?}");
        assert_eq!(ids(&messages), phone_leaves, "{transport}: only the phone's zone.leave events");
        for m in &messages {
            match m.event.as_str() {
                "position" => {
                    let who = (m.data["user"].as_str().unwrap(), m.data["device"].as_str().unwrap());
                    assert!(matches!(who, ("jane", "phone") | ("bob", "pixel")), "{transport}: out of scope: {m:?}");
                }
                "zone.leave" => assert_eq!(m.data["device_name"], "phone", "{transport}: {m:?}"),
                _ => panic!("{transport}: a kind outside the scope: {m:?}"),
            }
        }
    }
    // Carol is not in the scope even though she shares with Jane; Dave does not share at all.
    let dave = http(addr, "GET", "/api/v1/stream?friends=dave", &[("Authorization", jane.as_str())], b"");
    assert!(dave.status == 400 && dave.body.contains("friends: \\\"dave\\\""), "{}", dave.body);
}

/// The positions `GET /api/v1/live` answers, as (user, device, lat).
fn live_now(addr: &str, auth: &str, query: &str) -> BTreeSet<(String, String, String)> {
    let response = http(addr, "GET", &format!("/api/v1/live{query}"), &[("Authorization", auth)], b"");
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.header("content-type").unwrap().starts_with("application/json"));
    response.json()["positions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["user"].as_str().unwrap().into(), p["device"].as_str().unwrap().into(), p["lat"].to_string()))
        .collect()
}

#[test]
fn live_shows_a_new_fix_at_once_and_drops_a_friend_whose_grant_is_withdrawn() {
    let dir = tempfile::tempdir().unwrap();
    for user in ["jane", "bob"] {
        add_user(dir.path(), user);
    }
    let server = serve(dir.path(), &[]);
    let addr = server.addr.as_str();
    let (jane, bob) = (basic("jane", PASSWORD), basic("bob", PASSWORD));
    let t = now_s() - 60;
    fix(addr, &jane, "phone", t, 47.1);
    fix(addr, &bob, "pixel", t, 47.3);
    let entry = |user: &str, device: &str, lat: &str| (user.to_owned(), device.to_owned(), lat.to_owned());
    assert_eq!(live_now(addr, &jane, ""), BTreeSet::from([entry("jane", "phone", "47.1")]));
    post(addr, &bob, "/api/v1/friends", &json!({"user": "jane"}));
    assert_eq!(
        live_now(addr, &jane, ""),
        BTreeSet::from([entry("jane", "phone", "47.1"), entry("bob", "pixel", "47.3")]),
        "a new grant shows at once"
    );
    // A new fix is the answer at once; an older one (a backfill) does not move it back.
    fix(addr, &bob, "pixel", t + 30, 47.31);
    fix(addr, &jane, "phone", t - 30, 47.0);
    assert_eq!(
        live_now(addr, &jane, ""),
        BTreeSet::from([entry("jane", "phone", "47.1"), entry("bob", "pixel", "47.31")])
    );
    assert_eq!(live_now(addr, &jane, "?friends=bob&devices="), BTreeSet::from([entry("bob", "pixel", "47.31")]));
    let bad = http(addr, "GET", "/api/v1/live?devices=pixel", &[("Authorization", jane.as_str())], b"");
    assert!(bad.status == 400 && bad.body.contains("devices: \\\"pixel\\\""), "{}", bad.body);
    // Bob withdraws: gone from the very next answer.
    let withdrawn = http(addr, "DELETE", "/api/v1/friends/jane", &[("Authorization", bob.as_str())], b"");
    assert_eq!(withdrawn.status, 204, "{}", withdrawn.body);
    assert_eq!(live_now(addr, &jane, ""), BTreeSet::from([entry("jane", "phone", "47.1")]));
    // After a restart the memory is seeded from the store once.
    drop(server);
    let server = serve(dir.path(), &[]);
    assert_eq!(live_now(&server.addr, &bob, ""), BTreeSet::from([entry("bob", "pixel", "47.31")]));
}

#[test]
fn a_disabled_webhook_queues_nothing_and_drops_what_was_pending() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    // A receiver that always fails, so deliveries stay pending between retries.
    let receiver = Receiver::start(Instant::now() + Duration::from_secs(3_600), Duration::ZERO);
    let server = serve(dir.path(), LIVE_FLAGS);
    let addr = server.addr.as_str();
    let jane = basic("jane", PASSWORD);
    home(addr, &jane);
    let hook = post(addr, &jane, "/api/v1/webhooks", &json!({"url": receiver.url}));
    let id = hook["id"].as_i64().unwrap();
    assert_eq!(hook["enabled"], true);
    live_visits(addr, &jane, "phone", 2);
    wait_until("4 events are logged", Duration::from_secs(30), || logged_events(addr, &jane).len() == 4);
    let deliveries = |addr: &str| {
        let path = format!("/api/v1/webhooks/{id}/deliveries");
        let answer = http(addr, "GET", &path, &[("Authorization", jane.as_str())], b"").json();
        answer["deliveries"].as_array().unwrap().clone()
    };
    wait_until("the first delivery was tried", Duration::from_secs(30), || !receiver.received().is_empty());
    assert_eq!(deliveries(addr).len(), 4);
    let headers = [("Authorization", jane.as_str()), ("Content-Type", "application/json")];
    let patch = |path: &str, body: &str| http(addr, "PATCH", path, &headers, body.as_bytes());
    let hook_path = format!("/api/v1/webhooks/{id}");
    let off = patch(&hook_path, r#"{"enabled":false}"#);
    assert_eq!(off.status, 200, "{}", off.body);
    assert_eq!(off.json()["enabled"], false);
    // Pending deliveries are dropped: dead, unsent, with the reason; their attempts stay.
    let log = deliveries(addr);
    assert!(log.iter().all(|d| d["status"] == "dead"), "{log:?}");
    assert!(log.iter().all(|d| d["last_error"] == "dropped: the webhook was disabled"), "{log:?}");
    assert_eq!(log.iter().filter(|d| d["attempts"] == 0).count(), 3, "only the first was ever tried: {log:?}");
    // An attempt in flight when it was disabled may still land; nothing after it.
    std::thread::sleep(Duration::from_millis(500));
    let tried = receiver.received().len();
    // New live events queue nothing for it.
    live_visits(addr, &jane, "phone", 2);
    wait_until("8 events are logged", Duration::from_secs(30), || logged_events(addr, &jane).len() == 8);
    assert!(logged_events(addr, &jane).iter().all(|e| e["past"] == false), "live events, which would be sent");
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(deliveries(addr).len(), 4, "nothing new is queued while disabled");
    assert_eq!(receiver.received().len(), tried, "nothing is sent while disabled");
    let listed = http(addr, "GET", "/api/v1/webhooks", &[("Authorization", jane.as_str())], b"").json();
    assert_eq!(listed["webhooks"][0]["enabled"], false);
    // Switched on again: only events logged from then on are queued, and sent.
    assert_eq!(patch(&hook_path, r#"{"enabled":true}"#).json()["enabled"], true);
    live_visits(addr, &jane, "phone", 1);
    wait_until("10 events are logged", Duration::from_secs(30), || logged_events(addr, &jane).len() == 10);
    wait_until("two new deliveries", Duration::from_secs(10), || deliveries(addr).len() == 6);
    wait_until("they are tried", Duration::from_secs(10), || receiver.received().len() > tried);
    let newest: Vec<i64> = logged_events(addr, &jane)[8..].iter().map(|e| e["id"].as_i64().unwrap()).collect();
    let queued: BTreeSet<i64> = deliveries(addr)[..2].iter().map(|d| d["event"].as_i64().unwrap()).collect();
    assert_eq!(queued, newest.into_iter().collect(), "the new deliveries are the newest events'");
    assert_eq!(patch("/api/v1/webhooks/99999", r#"{"enabled":false}"#).status, 404);
    let bad = patch(&hook_path, r#"{"url":"x"}"#);
    assert!(matches!(bad.status, 400 | 422), "{}", bad.body);
}
