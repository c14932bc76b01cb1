//! Sharing end to end against the real binary: public share links (what they
//! show and never show, revocation, expiry, probing), friends (location
//! grants) in the OwnTracks friends reply, the live position streams (SSE),
//! the devices' status, and the web app's configuration and runtime
//! settings.

mod common;

use std::time::{Duration, Instant};

use common::{EventStream, add_user, basic, http, polo, serve, token, wait_for_timeline};
use serde_json::{Value, json};

const PASSWORD: &str = "a long password";

fn get(addr: &str, path: &str, auth: Option<&str>) -> common::Response {
    let headers: Vec<(&str, &str)> = auth.map(|a| ("Authorization", a)).into_iter().collect();
    http(addr, "GET", path, &headers, b"")
}

fn send_json(addr: &str, method: &str, path: &str, auth: &str, body: &Value) -> common::Response {
    let body = body.to_string();
    http(addr, method, path, &[("Authorization", auth), ("Content-Type", "application/json")], body.as_bytes())
}

fn now_s() -> i64 {
    i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()).unwrap()
}

/// An OwnTracks location as the Android app posts it, answered with the friends array.
fn owntracks(addr: &str, auth: &str, device: &str, lat: f64, tst: i64, batt: u8) -> Value {
    let body = json!({"_type": "location", "lat": lat, "lon": 8.5, "tst": tst, "acc": 12, "batt": batt, "vel": 18,
        "tid": "XX", "topic": format!("owntracks/x/{device}")});
    let r = http(
        addr,
        "POST",
        "/api/owntracks",
        &[("Authorization", auth), ("Content-Type", "application/json"), ("X-Limit-D", device)],
        body.to_string().as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.json()
}

fn share(addr: &str, auth: &str, body: &Value) -> Value {
    let r = send_json(addr, "POST", "/api/v1/shares", auth, body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()
}

fn assert_share_not_found(r: &common::Response) {
    assert_eq!(r.status, 404, "{}", r.body);
    assert_eq!(r.json()["code"], "share_not_found", "{}", r.body);
}

#[test]
fn a_range_share_shows_only_its_range_and_device_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "alice");
    add_user(dir.path(), "mallory");
    let server = serve(dir.path(), &[]);
    let addr = server.addr.as_str();
    let alice = basic("alice", PASSWORD);
    // A walk on the phone from 10:00 to 10:30, points before and after it, and a watch inside it.
    let mut points = Vec::new();
    for minute in 0..120 {
        let lat = 47.0 + f64::from(minute) * 0.001;
        let time = format!("2024-05-01T{:02}:{:02}:00Z", 9 + minute / 60, minute % 60);
        points.push(json!({"time": time, "lat": lat, "lon": 8.5, "device": "phone", "battery": 50,
            "extras": {"ssid": "home-wifi"}}));
    }
    points.push(json!({"time": "2024-05-01T10:10:00Z", "lat": 46.5, "lon": 7.0, "device": "watch"}));
    assert_eq!(send_json(addr, "POST", "/api/v1/points", &alice, &json!(points)).status, 200);
    wait_for_timeline(addr, &alice);

    let created = share(
        addr,
        &alice,
        &json!({"kind": "range", "from": "2024-05-01T10:00:00Z", "to": "2024-05-01T10:30:00Z",
            "device": "phone", "label": "Morning walk", "expires_in_s": 3600}),
    );
    let token = created["token"].as_str().unwrap().to_owned();
    assert_eq!(created["url"], format!("/s/{token}"));
    assert_eq!((created["kind"].as_str(), created["device"].as_str()), (Some("range"), Some("phone")));
    assert_eq!(
        (created["from"].as_str(), created["to"].as_str()),
        (Some("2024-05-01T10:00:00.000Z"), Some("2024-05-01T10:30:00.000Z"))
    );
    assert!(created["expires"].is_string() && created["created"].is_string());
    let base = format!("/api/v1/public/shares/{token}");

    // The public page's facts, without an account.
    let info = get(addr, &base, None);
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.header("cache-control"), Some("no-store"));
    assert_eq!(info.header("x-robots-tag"), Some("noindex, nofollow"));
    let info = info.json();
    assert_eq!(
        (info["kind"].as_str(), info["owner"].as_str(), info["label"].as_str(), info["live"].as_bool()),
        (Some("range"), Some("alice"), Some("Morning walk"), Some(false))
    );

    // Points: exactly the phone's 30 minutes, no extras, in JSON pages and in GeoJSON.
    let page = get(addr, &format!("{base}/points?limit=20"), None).json();
    let mut times: Vec<String> =
        page["points"].as_array().unwrap().iter().map(|p| p["time"].as_str().unwrap().to_owned()).collect();
    let cursor = page["next_cursor"].as_str().expect("a second page").to_owned();
    let rest = get(addr, &format!("{base}/points?limit=20&cursor={cursor}"), None).json();
    times.extend(rest["points"].as_array().unwrap().iter().map(|p| p["time"].as_str().unwrap().to_owned()));
    assert_eq!(times.len(), 30, "{times:?}");
    assert_eq!((times[0].as_str(), times[29].as_str()), ("2024-05-01T10:00:00.000Z", "2024-05-01T10:29:00.000Z"));
    assert!(rest["next_cursor"].is_null());
    for body in [&page, &rest] {
        let text = body.to_string();
        assert!(!text.contains("home-wifi") && !text.contains("46.5") && !text.contains("watch"), "{text}");
    }
    let geojson = get(addr, &format!("{base}/points?format=geojson"), None);
    assert_eq!(geojson.status, 200);
    assert!(geojson.header("content-type").unwrap().starts_with("application/geo+json"));
    let features = geojson.json()["features"].as_array().unwrap().len();
    assert_eq!(features, 30);
    assert!(!geojson.body.contains("home-wifi"));

    // The track: a line inside the range only.
    let track = get(addr, &format!("{base}/track"), None);
    assert_eq!(track.status, 200, "{}", track.body);
    let track = track.json();
    let lines = track["features"].as_array().unwrap();
    assert_eq!(lines.len(), 1, "{track}");
    assert_eq!(lines[0]["geometry"]["type"], "LineString");
    let coords = lines[0]["geometry"]["coordinates"].as_array().unwrap();
    for c in coords {
        let lat = c[1].as_f64().unwrap();
        assert!((47.06 - 1e-9..=47.089 + 1e-9).contains(&lat), "{lat} is outside the range");
    }
    assert_eq!(lines[0]["properties"]["device"], "phone");

    // The timeline: the shape of /api/v1/timeline/entries, cut to the range.
    let timeline = get(addr, &format!("{base}/timeline"), None);
    assert_eq!(timeline.status, 200, "{}", timeline.body);
    let timeline = timeline.json();
    assert_eq!(timeline.as_array().unwrap().len(), 1, "one device: {timeline}");
    assert_eq!(timeline[0]["device"], "phone");
    for entry in timeline[0]["entries"].as_array().unwrap() {
        let (start, end) = (entry["start"].as_str().unwrap(), entry["end"].as_str().unwrap());
        assert!(start >= "2024-05-01T10:00:00.000Z" && end <= "2024-05-01T10:30:00.000Z", "{entry}");
    }

    // The owner's list; nobody else's.
    let listed = get(addr, "/api/v1/shares", Some(&alice)).json();
    let shares = listed["shares"].as_array().unwrap();
    assert_eq!(shares.len(), 1);
    assert_eq!((shares[0]["label"].as_str(), shares[0]["active"].as_bool()), (Some("Morning walk"), Some(true)));
    assert!(!listed.to_string().contains(&token), "the list never shows the token");
    let mallory = basic("mallory", PASSWORD);
    assert!(get(addr, "/api/v1/shares", Some(&mallory)).json()["shares"].as_array().unwrap().is_empty());
    let id = shares[0]["id"].as_i64().unwrap();
    let r = http(addr, "DELETE", &format!("/api/v1/shares/{id}"), &[("Authorization", mallory.as_str())], b"");
    assert_eq!((r.status, r.json()["code"].as_str()), (404, Some("not_found")));
    assert_eq!(get(addr, &base, None).status, 200, "another user cannot revoke it");

    // Revoked, unknown and malformed links all get the same answer.
    let r = http(addr, "DELETE", &format!("/api/v1/shares/{id}"), &[("Authorization", alice.as_str())], b"");
    assert_eq!(r.status, 204, "{}", r.body);
    let revoked = get(addr, &base, None);
    assert_share_not_found(&revoked);
    for path in [
        format!("{base}/points"),
        format!("{base}/timeline"),
        format!("{base}/track"),
        "/api/v1/public/shares/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".to_owned(),
        "/api/v1/public/shares/short".to_owned(),
    ] {
        let r = get(addr, &path, None);
        assert_share_not_found(&r);
        assert_eq!(r.body, revoked.body, "{path}");
    }
    let listed = get(addr, "/api/v1/shares", Some(&alice)).json();
    assert_eq!(listed["shares"][0]["active"], false);
    assert!(listed["shares"][0]["revoked"].is_string());
}

#[test]
fn shares_are_validated_and_expire() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "alice");
    let server = serve(dir.path(), &["--access-log", "off"]);
    let addr = server.addr.as_str();
    let alice = basic("alice", PASSWORD);
    for (body, status, why) in [
        (json!({"kind": "range", "from": "2024-05-01T10:00:00Z"}), 400, "needs from and to"),
        (json!({"kind": "range", "from": "2024-05-01T10:00:00Z", "to": "2024-05-01T09:00:00Z"}), 400, "after from"),
        (json!({"kind": "live"}), 400, "needs an expiry"),
        (json!({"kind": "live", "expires_at": "2020-01-01T00:00:00Z"}), 400, "in the future"),
        (json!({"kind": "live", "expires_in_s": 60, "device": "nope"}), 404, "no device named"),
        (json!({"kind": "forever"}), 422, "kind"),
    ] {
        let r = send_json(addr, "POST", "/api/v1/shares", &alice, &body);
        assert_eq!(r.status, status, "{body}: {}", r.body);
        assert!(r.json()["message"].as_str().unwrap().contains(why), "{}", r.body);
    }
    // A trip share is a range share with the trip's bounds.
    let trip = share(
        addr,
        &alice,
        &json!({"kind": "trip", "from": "2024-05-01T10:00:00Z", "to": "2024-05-01T11:00:00Z", "expires_in_s": 1}),
    );
    assert_eq!(trip["kind"], "trip");
    let path = format!("/api/v1/public/shares/{}", trip["token"].as_str().unwrap());
    let deadline = Instant::now() + Duration::from_secs(10);
    while get(addr, &path, None).status == 200 {
        assert!(Instant::now() < deadline, "the share did not expire");
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_share_not_found(&get(addr, &path, None));
    assert_eq!(get(addr, "/api/v1/shares", Some(&alice)).json()["shares"][0]["active"], false);

    // Guessing links is slowed down per address.
    let mut limited = false;
    for i in 0..40 {
        let r = get(addr, &format!("/api/v1/public/shares/{i:0>43}"), None);
        if r.status == 429 {
            assert_eq!(r.json()["code"], "rate_limited");
            assert!(r.header("retry-after").is_some());
            limited = true;
            break;
        }
        assert_share_not_found(&r);
    }
    assert!(limited, "40 unknown links in a row were not slowed down");
}

#[test]
fn a_live_share_streams_the_latest_position_only() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "alice");
    let phone = token(dir.path(), "alice", "phone");
    let server = serve(dir.path(), &[]);
    let addr = server.addr.as_str();
    let alice = basic("alice", PASSWORD);
    let phone_auth = basic("alice", &phone);
    let now = now_s();
    // Two days ago (before the live window), then an hour ago.
    owntracks(addr, &phone_auth, "phone", 45.0, now - 2 * 86_400, 90);
    owntracks(addr, &phone_auth, "phone", 46.0, now - 3600, 80);
    let live = share(addr, &alice, &json!({"kind": "live", "expires_in_s": 600, "label": "On my way"}));
    let base = format!("/api/v1/public/shares/{}", live["token"].as_str().unwrap());
    let info = get(addr, &base, None).json();
    assert_eq!((info["live"].as_bool(), info["kind"].as_str()), (Some(true), Some("live")));
    let latest = get(addr, &format!("{base}/points"), None).json();
    let points = latest["points"].as_array().unwrap();
    assert_eq!(points.len(), 1, "{latest}");
    assert_eq!(points[0]["lat"], 46.0);
    assert!(!latest.to_string().contains("XX"), "no extras (the tid) in public points: {latest}");
    let geojson = get(addr, &format!("{base}/points?format=geojson"), None).json();
    assert_eq!(geojson["features"].as_array().unwrap().len(), 1);
    // A live share has no timeline or track.
    assert_eq!(get(addr, &format!("{base}/timeline"), None).status, 400);
    assert_eq!(get(addr, &format!("{base}/track"), None).status, 400);

    let mut events = EventStream::open(addr, &format!("{base}/live"), None);
    let first = events.next_position(Duration::from_secs(10)).expect("the current position first");
    assert_eq!((first["lat"].as_f64(), first["device"].as_str()), (Some(46.0), Some("phone")));
    assert!(first.get("user").is_none(), "{first}");
    owntracks(addr, &phone_auth, "phone", 46.5, now, 70);
    let moved = events.next_position(Duration::from_secs(10)).expect("the new position");
    assert_eq!((moved["lat"].as_f64(), moved["battery"].as_u64()), (Some(46.5), Some(70)));
    assert_eq!(moved["accuracy"], 12.0);
    // An older point (a backfill) never moves the marker back.
    owntracks(addr, &phone_auth, "phone", 44.0, now - 60, 60);
    assert_eq!(events.next_position(Duration::from_millis(800)), None);

    // Revoked: the link is gone and the open stream ends.
    let id = live["id"].as_i64().unwrap();
    assert_eq!(
        http(addr, "DELETE", &format!("/api/v1/shares/{id}"), &[("Authorization", alice.as_str())], b"").status,
        204
    );
    assert_share_not_found(&get(addr, &format!("{base}/live"), None));
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        events.dechunk();
        if events.raw.is_empty() && !events.fill() {
            break; // closed by the server
        }
        if String::from_utf8_lossy(&events.raw).contains("0\r\n\r\n") {
            break; // the final chunk
        }
        assert!(Instant::now() < deadline, "the stream of a revoked share did not end");
    }
}

#[test]
fn friends_see_each_other_in_owntracks_and_the_live_stream() {
    let dir = tempfile::tempdir().unwrap();
    for user in ["alice", "bob", "carol"] {
        add_user(dir.path(), user);
    }
    let alice_phone = token(dir.path(), "alice", "phone");
    let bob_phone = token(dir.path(), "bob", "phone");
    let server = serve(dir.path(), &[]);
    let addr = server.addr.as_str();
    let (alice, bob) = (basic("alice", PASSWORD), basic("bob", PASSWORD));
    let (alice_ot, bob_ot) = (basic("alice", &alice_phone), basic("bob", &bob_phone));
    let now = now_s();
    owntracks(addr, &alice_ot, "phone", 47.5, now - 10, 77);
    // Alice has not granted anything: Bob sees only himself.
    let reply = owntracks(addr, &bob_ot, "phone", 52.5, now - 5, 55);
    let topics: Vec<&str> = reply.as_array().unwrap().iter().filter_map(|m| m["topic"].as_str()).collect();
    assert_eq!(topics, ["owntracks/bob/phone"], "{reply}");

    // Alice lets Bob see her.
    let r = send_json(addr, "POST", "/api/v1/friends", &alice, &json!({"user": "bob"}));
    assert_eq!(r.status, 201, "{}", r.body);
    assert_eq!(
        r.json(),
        json!({"friends": [{"user": "bob", "granted_by_me": true, "granted_to_me": false, "mutual": false}]})
    );
    let listed = get(addr, "/api/v1/friends", Some(&bob)).json();
    assert_eq!(
        listed,
        json!({"friends": [{"user": "alice", "granted_by_me": false, "granted_to_me": true, "mutual": false}]})
    );
    for (body, status) in
        [(json!({"user": "bob"}), 201), (json!({"user": "nobody"}), 404), (json!({"user": "alice"}), 400)]
    {
        assert_eq!(send_json(addr, "POST", "/api/v1/friends", &alice, &body).status, status, "{body}");
    }

    // Bob's OwnTracks reply now has Alice's location: the exact reduced shape of the Recorder.
    let reply = owntracks(addr, &bob_ot, "phone", 52.5, now - 4, 55);
    let messages = reply.as_array().unwrap();
    let hers = messages.iter().find(|m| m["topic"] == "owntracks/alice/phone").expect("alice's location");
    assert_eq!(hers["_type"], "location");
    assert_eq!(
        (hers["lat"].as_f64(), hers["lon"].as_f64(), hers["tst"].as_i64()),
        (Some(47.5), Some(8.5), Some(now - 10))
    );
    assert_eq!((hers["acc"].as_i64(), hers["vel"].as_i64()), (Some(12), Some(18)));
    let mut keys: Vec<&str> = hers.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["_type", "acc", "lat", "lon", "tid", "topic", "tst", "vel"], "the Recorder's reduced shape");
    let mine = messages.iter().find(|m| m["topic"] == "owntracks/bob/phone").expect("bob's own location");
    assert_ne!(hers["tid"], mine["tid"], "every friend gets its own tid: {reply}");
    // Not the other way round: Bob granted nothing.
    let reply = owntracks(addr, &alice_ot, "phone", 47.5, now - 3, 77);
    assert!(!reply.to_string().contains("owntracks/bob/"), "{reply}");
    // Carol sees nobody.
    add_user(dir.path(), "dave");
    let carol = basic("carol", PASSWORD);
    assert!(get(addr, "/api/v1/friends", Some(&carol)).json()["friends"].as_array().unwrap().is_empty());

    // Bob's live map: his own device and Alice's, then each new point.
    let mut events = EventStream::open(addr, "/api/v1/live", Some(&bob));
    let mut first = [
        events.next_position(Duration::from_secs(10)).unwrap(),
        events.next_position(Duration::from_secs(10)).unwrap(),
    ];
    first.sort_by_key(|e| e["user"].as_str().unwrap().to_owned());
    assert_eq!((first[0]["user"].as_str(), first[0]["lat"].as_f64()), (Some("alice"), Some(47.5)));
    assert_eq!((first[1]["user"].as_str(), first[1]["lat"].as_f64()), (Some("bob"), Some(52.5)));
    for key in ["device", "time", "accuracy", "battery", "speed", "lon"] {
        assert!(first[0].get(key).is_some(), "{key} in {}", first[0]);
    }
    owntracks(addr, &alice_ot, "phone", 47.6, now - 1, 76);
    let moved = events.next_position(Duration::from_secs(10)).expect("alice moved");
    assert_eq!(
        (moved["user"].as_str(), moved["lat"].as_f64(), moved["battery"].as_u64()),
        (Some("alice"), Some(47.6), Some(76))
    );
    assert!((moved["speed"].as_f64().unwrap() - 5.0).abs() < 1e-9, "18 km/h: {moved}");
    // Carol's points never reach Bob.
    let carol_phone = token(dir.path(), "carol", "phone");
    owntracks(addr, &basic("carol", &carol_phone), "phone", 10.0, now, 50);
    assert_eq!(events.next_position(Duration::from_millis(800)), None);

    // Alice withdraws: Bob's OwnTracks reply and live stream drop her at once.
    let r = http(addr, "DELETE", "/api/v1/friends/bob", &[("Authorization", alice.as_str())], b"");
    assert_eq!(r.status, 204, "{}", r.body);
    assert_eq!(http(addr, "DELETE", "/api/v1/friends/bob", &[("Authorization", alice.as_str())], b"").status, 404);
    let reply = owntracks(addr, &bob_ot, "phone", 52.5, now - 2, 55);
    assert!(!reply.to_string().contains("owntracks/alice/"), "{reply}");
    // Let the stream take in the change, then Alice moves again: Bob sees nothing of it.
    std::thread::sleep(Duration::from_millis(300));
    owntracks(addr, &alice_ot, "phone", 47.7, now, 75);
    if let Some(event) = events.next_position(Duration::from_millis(800)) {
        assert_ne!(event["user"], "alice", "{event}");
    }
}

#[test]
fn devices_show_their_status() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "alice");
    let phone = token(dir.path(), "alice", "phone");
    let server = serve(dir.path(), &[]);
    let addr = server.addr.as_str();
    let r = send_json(addr, "POST", "/api/v1/devices", &basic("alice", PASSWORD), &json!({"name": "spare"}));
    assert_eq!(r.status, 201);
    let tst = now_s() - 30;
    owntracks(addr, &basic("alice", &phone), "phone", 47.25, tst, 64);
    let devices = get(addr, "/api/v1/devices", Some(&basic("alice", PASSWORD))).json();
    let list = devices["devices"].as_array().unwrap();
    let phone = list.iter().find(|d| d["name"] == "phone").unwrap();
    assert_eq!(phone["battery"], 64);
    assert_eq!(phone["last_position"], json!({"lat": 47.25, "lon": 8.5}));
    assert_eq!(phone["accuracy"], 12.0);
    let seen = phone["last_seen"].as_str().unwrap();
    assert_eq!(seen, polo_domain::Timestamp(tst * 1000).to_string());
    let spare = list.iter().find(|d| d["name"] == "spare").unwrap();
    assert!(spare["last_seen"].is_null() && spare["battery"].is_null() && spare["last_position"].is_null());
}

#[test]
fn the_web_config_comes_from_the_configuration_and_admins_change_it_at_runtime() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "alice");
    common::add_admin(dir.path(), "root");
    std::fs::write(dir.path().join("polo.toml"), "[web]\ntile_attribution = \"© the file\"\n").unwrap();
    let server = serve(dir.path(), &["--instance-name", "Family"]);
    let addr = server.addr.as_str();
    let config = get(addr, "/api/v1/config", None);
    assert_eq!(config.status, 200, "{}", config.body);
    assert_eq!(
        config.json(),
        json!({"instance_name": "Family", "tile_url": "https://tile.openstreetmap.org/{z}/{x}/{y}.png",
            "tile_attribution": "© the file", "version": env!("CARGO_PKG_VERSION"), "registration": false,
            "exposure": false, "password_login": true, "oidc_login": null})
    );

    let root = basic("root", PASSWORD);
    let alice = basic("alice", PASSWORD);
    assert_eq!(get(addr, "/api/v1/admin/settings", Some(&alice)).status, 403);
    let body = json!({"instance_name": "Our trips", "tile_url": "https://tiles.example/{z}/{x}/{y}.png"});
    assert_eq!(send_json(addr, "PUT", "/api/v1/admin/settings", &alice, &body).status, 403);
    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &body);
    assert_eq!(r.status, 200, "{}", r.body);
    let settings = r.json();
    assert_eq!(settings["instance_name"], "Our trips");
    assert_eq!(settings["overridden"], json!(["instance_name", "tile_url"]));
    assert_eq!(settings["defaults"]["instance_name"], "Family");
    let config = get(addr, "/api/v1/config", None).json();
    assert_eq!(
        (config["instance_name"].as_str(), config["tile_url"].as_str()),
        (Some("Our trips"), Some("https://tiles.example/{z}/{x}/{y}.png"))
    );
    // Bad values are refused with the setting named; nothing changes.
    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &json!({"tile_url": "https://x/{z}.png"}));
    assert_eq!(r.status, 400);
    assert!(r.json()["message"].as_str().unwrap().starts_with("tile_url:"), "{}", r.body);
    // A protocol-relative URL would load the basemap from any host.
    let r =
        send_json(addr, "PUT", "/api/v1/admin/settings", &root, &json!({"tile_url": "//evil.example/{z}/{x}/{y}.png"}));
    assert_eq!(r.status, 400, "{}", r.body);
    assert!(r.json()["message"].as_str().unwrap().contains("protocol-relative"), "{}", r.body);
    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &json!({"registration": true}));
    assert_eq!(r.status, 422, "unknown settings are refused: {}", r.body);
    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &json!([null, null]));
    assert_eq!(r.status, 422, "an array is not a settings object: {}", r.body);
    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &json!({"instance_name": 7}));
    assert_eq!(r.status, 422);
    assert!(r.json()["message"].as_str().unwrap().contains("instance_name"), "{}", r.body);
    assert_eq!(get(addr, "/api/v1/config", None).json()["instance_name"], "Our trips", "nothing changed");

    // Kept across a restart; `null` returns to the configuration.
    drop(server);
    let server = serve(dir.path(), &["--instance-name", "Family"]);
    let addr = server.addr.as_str();
    assert_eq!(get(addr, "/api/v1/config", None).json()["instance_name"], "Our trips");
    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &json!({"instance_name": null}));
    assert_eq!(r.json()["overridden"], json!(["tile_url"]));
    assert_eq!(get(addr, "/api/v1/config", None).json()["instance_name"], "Family");
}

#[test]
fn open_event_streams_do_not_hold_up_a_graceful_shutdown() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "alice");
    let server = serve(dir.path(), &[]);
    let mut events = EventStream::open(&server.addr, "/api/v1/live", Some(&basic("alice", PASSWORD)));
    assert_eq!(events.next_position(Duration::from_millis(300)), None, "no devices yet");
    let metrics = get(&server.addr, "/metrics", None);
    assert!(metrics.body.contains("polo_live_streams 1"), "{}", metrics.body);
    {
        let _second = EventStream::open(&server.addr, "/api/v1/live", Some(&basic("alice", PASSWORD)));
        assert!(get(&server.addr, "/metrics", None).body.contains("polo_live_streams 2"));
    }
    // A client that hung up is noticed at the next keep-alive at the latest; not waited for here.
    let started = Instant::now();
    let pid = server.pid().to_string();
    assert!(std::process::Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    // The stream ends (the server writes the last chunk and closes) well before the 30 s grace.
    loop {
        if !events.fill() || String::from_utf8_lossy(&events.raw).contains("0\r\n\r\n") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the event stream kept the server alive");
    }
    // And the process exits (a zombie until the test reaps it when `server` drops).
    loop {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        if stat.is_empty() || stat.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "polo serve did not exit: {stat}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_share_can_hide_place_names_but_keep_the_town() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "alice");
    let server = serve(dir.path(), &[]);
    let addr = server.addr.as_str();
    let alice = basic("alice", PASSWORD);
    // Three hours at home in Lübeck, a point every two minutes, then a walk north.
    let mut points = Vec::new();
    for minute in (0..240).step_by(2) {
        let lat = if minute < 180 { 53.8655 } else { 53.8655 + f64::from(minute - 180) * 0.0005 };
        let time = format!("2024-05-01T{:02}:{:02}:00+02:00", 8 + minute / 60, minute % 60);
        points.push(json!({"time": time, "lat": lat, "lon": 10.6866, "device": "phone"}));
    }
    assert_eq!(send_json(addr, "POST", "/api/v1/points", &alice, &json!(points)).status, 200);
    wait_for_timeline(addr, &alice);
    let places = get(addr, "/api/v1/places", Some(&alice)).json();
    let home = places.as_array().and_then(|p| p.first()).unwrap_or_else(|| panic!("a place: {places}"));
    let id = home["id"].as_i64().unwrap();
    assert_eq!(send_json(addr, "PATCH", &format!("/api/v1/places/{id}"), &alice, &json!({"name": "Home"})).status, 204);

    let range = |hide: Option<bool>| {
        let mut body = json!({"kind": "range", "from": "2024-05-01T06:00:00Z", "to": "2024-05-01T10:00:00Z"});
        if let Some(hide) = hide {
            body["hide_places"] = json!(hide);
        }
        share(addr, &alice, &body)
    };
    let (hidden, shown) = (range(Some(true)), range(None));
    assert_eq!((hidden["hide_places"].as_bool(), shown["hide_places"].as_bool()), (Some(true), Some(false)));
    let stays = |created: &Value| {
        let base = format!("/api/v1/public/shares/{}", created["token"].as_str().unwrap());
        let info = get(addr, &base, None).json();
        let timeline = get(addr, &format!("{base}/timeline"), None);
        assert_eq!(timeline.status, 200, "{}", timeline.body);
        let timeline = timeline.json();
        let stays: Vec<Value> =
            timeline[0]["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "stay").cloned().collect();
        assert!(!stays.is_empty(), "a stay at home: {timeline}");
        (info["hide_places"].as_bool(), stays)
    };

    let (flag, hidden_stays) = stays(&hidden);
    assert_eq!(flag, Some(true));
    for stay in &hidden_stays {
        assert!(stay.get("place_name").is_none() && stay.get("place_id").is_none(), "{stay}");
        assert!(stay.get("address").is_none(), "{stay}");
        assert_eq!(stay["town"].as_str(), Some("Lübeck"), "the town stays: {stay}");
    }
    let (flag, shown_stays) = stays(&shown);
    assert_eq!(flag, Some(false));
    assert!(shown_stays.iter().any(|s| s["place_name"] == "Home"), "{shown_stays:?}");
    // The owner's list says which is which.
    let listed = get(addr, "/api/v1/shares", Some(&alice)).json();
    let flags: Vec<Option<bool>> =
        listed["shares"].as_array().unwrap().iter().map(|s| s["hide_places"].as_bool()).collect();
    assert_eq!(flags, [Some(true), Some(false)]);
}

/// The next `event: NAME` block's data on `stream` within `wait`.
fn next_event(stream: &mut EventStream, name: &str, wait: Duration) -> Option<String> {
    let deadline = Instant::now() + wait;
    loop {
        stream.dechunk();
        while let Some(end) = stream.decoded.find("\n\n") {
            let block: String = stream.decoded.drain(..end + 2).collect();
            if block.lines().any(|l| l == format!("event: {name}")) {
                return block.lines().find_map(|l| l.strip_prefix("data: ")).map(str::to_owned);
            }
        }
        if Instant::now() >= deadline || !stream.fill() {
            return None;
        }
    }
}

/// Polls `path` as `auth` until it answers 200 and `done` holds for the JSON answer, at most 60 s.
fn wait_until(addr: &str, path: &str, auth: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let r = get(addr, path, Some(auth));
        // 404 until the batch has written the row (a user's first status).
        if r.status == 200 && done(&r.json()) {
            return r.json();
        }
        assert!(matches!(r.status, 200 | 404), "{path}: {}", r.body);
        assert!(Instant::now() < deadline, "{path} never got there: {}", r.body);
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The thresholds of "who was I with" are instance settings: Anna and Ben, friends both ways, sat
/// 40 m apart for twenty minutes. With the default 25 m that is no encounter; once the administrator
/// sets 50 m it is one, the answer says which thresholds it used, unusable values are refused with
/// the setting named, and `null` returns to the default.
#[test]
fn together_thresholds_are_instance_settings() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["anna", "ben"] {
        add_user(dir.path(), name);
    }
    common::add_admin(dir.path(), "root");
    let (anna_phone, ben_phone) = (token(dir.path(), "anna", "phone"), token(dir.path(), "ben", "phone"));
    let server = serve(dir.path(), &[]);
    let addr = server.addr.as_str();
    let (root, anna, ben) = (basic("root", PASSWORD), basic("anna", PASSWORD), basic("ben", PASSWORD));
    for (who, friend) in [(&anna, "ben"), (&ben, "anna")] {
        let r = send_json(addr, "POST", "/api/v1/friends", who, &json!({"user": friend}));
        assert_eq!(r.status, 201, "{}", r.body);
    }
    let start = (now_s() / 86_400 - 2) * 86_400 + 12 * 3_600;
    for minute in 0..20 {
        owntracks(addr, &basic("anna", &anna_phone), "phone", 47.0, start + minute * 60, 80);
        // 0.00036° of latitude is 40 m.
        owntracks(addr, &basic("ben", &ben_phone), "phone", 47.000_36, start + minute * 60, 80);
    }
    let range = format!(
        "/api/v1/together/ben?from={}&to={}",
        polo_domain::Timestamp((start - 3_600) * 1000),
        polo_domain::Timestamp((start + 3_600) * 1000)
    );
    let before = get(addr, &range, Some(&anna)).json();
    assert_eq!((before["max_distance_m"].as_f64(), before["max_gap_s"].as_i64()), (Some(25.0), Some(300)), "{before}");
    assert_eq!(before["friend"]["count"], 0, "40 m is farther than 25 m: {before}");

    let settings = get(addr, "/api/v1/admin/settings", Some(&root)).json();
    assert_eq!(settings["together_max_distance_m"], 25.0, "{settings}");
    assert_eq!(settings["defaults"]["together_max_gap_s"], 300, "{settings}");
    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &anna, &json!({"together_max_distance_m": 50}));
    assert_eq!(r.status, 403, "administrators only: {}", r.body);
    for (body, named) in [
        (json!({"together_max_distance_m": 0.5}), "together_max_distance_m: must be a number of metres from 1 to 1000"),
        (json!({"together_max_distance_m": 5000}), "together_max_distance_m:"),
        (json!({"together_max_gap_s": 0}), "together_max_gap_s: must be a whole number of seconds from 1 to 3600"),
        (json!({"together_max_gap_s": 86_400}), "together_max_gap_s:"),
    ] {
        let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        assert!(r.json()["message"].as_str().unwrap().starts_with(named), "{body}: {}", r.body);
    }
    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &json!({"together_max_gap_s": 1.5}));
    assert_eq!(r.status, 422, "whole seconds: {}", r.body);
    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &json!({"together_max_distance_m": "far"}));
    assert_eq!(r.status, 422, "{}", r.body);
    assert_eq!(get(addr, &range, Some(&anna)).json()["max_distance_m"], 25.0, "nothing changed");

    let r = send_json(
        addr,
        "PUT",
        "/api/v1/admin/settings",
        &root,
        &json!({"together_max_distance_m": 50, "together_max_gap_s": 120}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let settings = r.json();
    assert_eq!(settings["overridden"], json!(["together_max_distance_m", "together_max_gap_s"]), "{settings}");
    let after = get(addr, &range, Some(&anna)).json();
    assert_eq!((after["max_distance_m"].as_f64(), after["max_gap_s"].as_i64()), (Some(50.0), Some(120)), "{after}");
    assert_eq!(after["friend"]["count"], 1, "{after}");
    assert_eq!(after["friend"]["encounters"][0]["minutes"], 19, "{after}");
    let closest = after["friend"]["encounters"][0]["min_distance_m"].as_f64().unwrap();
    assert!((39.0..41.0).contains(&closest), "{after}");
    let all = get(addr, &range.replace("/together/ben", "/together"), Some(&ben)).json();
    assert_eq!(all["friends"][0]["count"], 1, "both see it: {all}");

    let r = send_json(addr, "PUT", "/api/v1/admin/settings", &root, &json!({"together_max_distance_m": null}));
    assert_eq!(r.json()["overridden"], json!(["together_max_gap_s"]), "{}", r.body);
    let reset = get(addr, &range, Some(&anna)).json();
    assert_eq!((reset["max_distance_m"].as_f64(), reset["friend"]["count"].as_u64()), (Some(25.0), Some(0)), "{reset}");
}

/// The exposure workflow against the real binary (docs/exposure.md): Carol and Bob spent half an
/// hour together three days ago, Dave was across town. The administrator turns exposure checks on
/// and makes Hana the health authority; Hana marks Carol as a case; the batch finds Bob; Hana
/// approves the proposal; Bob's live stream hears of it, his status is `exposed` with a code that
/// verifies; Dave sees only his own `clear` status and nothing of anyone else; the audit log holds
/// the decision; and a point Dave's phone sends late for that closed day makes him a contact.
#[test]
fn exposure_a_case_its_contact_a_decision_and_a_late_point() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["carol", "bob", "dave", "hana"] {
        add_user(dir.path(), name);
    }
    common::add_admin(dir.path(), "root");
    let role = polo(dir.path()).args(["user", "role", "hana", "health-authority"]).output().unwrap();
    assert!(role.status.success(), "{}", String::from_utf8_lossy(&role.stderr));
    let listed = common::run_ok(polo(dir.path()).args(["user", "list", "--json"]));
    assert!(listed.contains("\"role\": \"health-authority\""), "{listed}");
    let tokens: Vec<String> =
        ["carol", "bob", "dave"].iter().map(|u| format!("Bearer {}", token(dir.path(), u, "phone"))).collect();
    let (carol, bob, dave) = (&tokens[0], &tokens[1], &tokens[2]);
    let server = serve(dir.path(), &[]);
    let addr = server.addr.as_str();
    let (root, hana) = (basic("root", PASSWORD), basic("hana", PASSWORD));
    let bob_basic = basic("bob", PASSWORD);

    // Three days ago at 10:00 UTC, half an hour, a fix a minute: Carol and Bob 11 m apart, Dave 5 km off.
    let day = (now_s() / 86_400 - 3) * 86_400;
    let ten = day + 10 * 3_600;
    for minute in 0..30 {
        owntracks(addr, carol, "phone", 47.0, ten + minute * 60, 80);
        owntracks(addr, bob, "phone", 47.0001, ten + minute * 60, 80);
        owntracks(addr, dave, "phone", 47.05, ten + minute * 60, 80);
    }

    // Off until the administrator turns it on: everyone is told so.
    let off = get(addr, "/api/v1/exposure/status", Some(&bob_basic));
    assert_eq!((off.status, off.json()["code"].as_str()), (404, Some("exposure_disabled")), "{}", off.body);
    let on =
        send_json(addr, "PUT", "/api/v1/admin/exposure", &root, &json!({"enabled": true, "completion_delay_hours": 0}));
    assert_eq!(on.status, 200, "{}", on.body);
    assert_eq!(get(addr, "/api/v1/config", None).json()["exposure"], true, "the web app shows the exposure pages");

    // Hana marks Carol: infectious from that day for two days.
    let from = polo_domain::Timestamp(day * 1000).to_string();
    let to = polo_domain::Timestamp((day + 2 * 86_400) * 1000).to_string();
    let case = send_json(
        addr,
        "POST",
        "/api/v1/exposure/cases",
        &hana,
        &json!({"user": "carol", "infectious_from": from, "infectious_to": to, "note": "PCR positive"}),
    );
    assert_eq!(case.status, 201, "{}", case.body);
    let case_id = case.json()["id"].as_str().unwrap().to_owned();

    // The batch runs: Bob is a contact with 30 exposure minutes, and a proposal waits for Hana.
    let contacts_path = format!("/api/v1/exposure/cases/{case_id}/contacts");
    let contacts = wait_until(addr, &contacts_path, &hana, |b| !b["contacts"].as_array().unwrap().is_empty());
    let contacts = contacts["contacts"].as_array().unwrap().clone();
    assert_eq!(contacts.len(), 1, "{contacts:?}");
    // From the first pair (10:00) to the last (10:29).
    assert_eq!((contacts[0]["user"].as_str(), contacts[0]["minutes"].as_u64()), (Some("bob"), Some(29)));
    let pending = wait_until(addr, "/api/v1/exposure/proposals?state=pending", &hana, |b| {
        !b["proposals"].as_array().unwrap().is_empty()
    });
    assert_eq!(pending["proposals"][0]["user"], "bob", "{pending}");
    assert_eq!(pending["proposals"][0]["evidence"]["minutes"], 29, "{pending}");
    // Before any decision Bob is clear.
    let clear = wait_until(addr, "/api/v1/exposure/status", &bob_basic, |_| true);
    assert_eq!(clear["status"], "clear", "{clear}");

    // Hana approves; Bob's own live stream hears of it.
    let mut bob_live = EventStream::open(addr, "/api/v1/live", Some(&bob_basic));
    let mut dave_live = EventStream::open(addr, "/api/v1/live", Some(&basic("dave", PASSWORD)));
    let decided = send_json(
        addr,
        "POST",
        &format!("/api/v1/exposure/proposals/{case_id}/bob/decision"),
        &hana,
        &json!({"approve": true, "reason": "half an hour at the same table"}),
    );
    assert_eq!(decided.status, 200, "{}", decided.body);
    assert_eq!(decided.json()["state"], "approved");
    assert!(next_event(&mut bob_live, "exposure", Duration::from_secs(10)).is_some(), "Bob is told");
    assert!(next_event(&mut dave_live, "exposure", Duration::from_millis(800)).is_none(), "Dave is not");

    // Bob's status: exposed, cacheable, with a code that verifies.
    let status = get(addr, "/api/v1/exposure/status", Some(&bob_basic));
    assert_eq!(status.status, 200, "{}", status.body);
    let etag = status.header("etag").unwrap().to_owned();
    let body = status.json();
    assert_eq!(body["status"], "exposed", "{body}");
    let unchanged =
        http(addr, "GET", "/api/v1/exposure/status", &[("Authorization", &bob_basic), ("If-None-Match", &etag)], b"");
    assert_eq!(unchanged.status, 304, "{}", unchanged.body);
    let bob_id = get(addr, "/api/v1/me", Some(&bob_basic)).json()["user"]["id"].as_i64().unwrap();
    let verified = http(
        addr,
        "POST",
        "/api/v1/exposure/verify",
        &[("Content-Type", "application/json")],
        json!({"code": body["code"]}).to_string().as_bytes(),
    );
    assert_eq!(verified.status, 200, "{}", verified.body);
    let verified = verified.json();
    assert_eq!(
        (verified["valid"].as_bool(), verified["status"].as_str(), verified["subject"].as_i64()),
        (Some(true), Some("exposed"), Some(bob_id)),
        "{verified}"
    );
    let key = get(addr, "/api/v1/exposure/public-key", None).json();
    assert_eq!(key["algorithm"], "Ed25519");
    // The same signature on a payload that says "clear" does not verify.
    let tampered = {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let parts: Vec<&str> = body["code"].as_str().unwrap().split('.').collect();
        let payload = String::from_utf8(b64.decode(parts[1]).unwrap()).unwrap().replace("exposed", "clear");
        format!("PX1.{}.{}", b64.encode(payload), parts[2])
    };
    let forged = http(
        addr,
        "POST",
        "/api/v1/exposure/verify",
        &[("Content-Type", "application/json")],
        json!({"code": tampered}).to_string().as_bytes(),
    );
    assert_eq!(forged.json()["valid"], false, "{}", forged.body);

    // Dave sees his own clear status and nothing of anyone else.
    let dave_basic = basic("dave", PASSWORD);
    let dave_status = get(addr, "/api/v1/exposure/status", Some(&dave_basic)).json();
    assert_eq!(dave_status["status"], "clear", "{dave_status}");
    for path in
        ["/api/v1/exposure/cases", contacts_path.as_str(), "/api/v1/exposure/proposals", "/api/v1/exposure/audit"]
    {
        let r = get(addr, path, Some(&dave_basic));
        assert_eq!(r.status, 403, "{path}: {}", r.body);
        assert!(!r.body.contains("bob") && !r.body.contains("carol"), "{}", r.body);
    }

    // The audit log holds the decision: who, why, on which evidence.
    let audit = get(addr, "/api/v1/exposure/audit?user=bob", Some(&hana)).json();
    let approve =
        audit["entries"].as_array().unwrap().iter().find(|e| e["action"] == "exposure.proposal.approve").cloned();
    let approve = approve.unwrap_or_else(|| panic!("no approval in {audit}"));
    assert_eq!(approve["actor"], "hana");
    assert_eq!(approve["detail"]["reason"], "half an hour at the same table");
    assert_eq!(approve["detail"]["evidence"]["minutes"], 29);

    // Dave's phone was offline: it now sends a fix from that day, at the café, for a closed window.
    owntracks(addr, dave, "phone", 47.0, ten + 5 * 60 + 30, 80);
    let late = wait_until(addr, &contacts_path, &hana, |b| b["contacts"].as_array().unwrap().len() == 2);
    let late = late["contacts"].as_array().unwrap();
    let dave_contact = late.iter().find(|c| c["user"] == "dave").unwrap_or_else(|| panic!("{late:?}"));
    // Carol's fixes within five minutes of his: 10:01 to 10:10, under the rule's 15 minutes.
    assert_eq!(dave_contact["minutes"], 9, "{dave_contact}");
    let bob_contact = late.iter().find(|c| c["user"] == "bob").unwrap();
    assert_eq!(bob_contact, &contacts[0], "Bob's contact is as it was");
    let windows = get(addr, "/api/v1/exposure/windows", Some(&hana)).json();
    assert_eq!(windows["queue_depth"], 0, "{windows}");
    let metrics = get(addr, "/metrics", None);
    assert!(metrics.body.contains("polo_exposure_queue_depth 0"), "{}", metrics.body);
}

/// The status read path's cache stays right when the batch, not a request, changes a status: with
/// auto-apply, Bob's `clear` answer, read (and so kept by the server) before the case was marked, is
/// replaced by `exposed` as soon as the batch applies the rule, with a new `ETag`; his old tag no
/// longer answers 304. Carol's answer, which the batch did not write, keeps its tag.
#[test]
fn a_status_the_batch_changes_is_never_served_stale() {
    let dir = tempfile::tempdir().unwrap();
    for name in ["carol", "bob", "hana"] {
        add_user(dir.path(), name);
    }
    common::add_admin(dir.path(), "root");
    let role = polo(dir.path()).args(["user", "role", "hana", "health-authority"]).output().unwrap();
    assert!(role.status.success(), "{}", String::from_utf8_lossy(&role.stderr));
    let (carol, bob) = (
        format!("Bearer {}", token(dir.path(), "carol", "phone")),
        format!("Bearer {}", token(dir.path(), "bob", "phone")),
    );
    let server = serve(dir.path(), &[]);
    let addr = server.addr.as_str();
    let day = (now_s() / 86_400 - 2) * 86_400;
    for minute in 0..20 {
        owntracks(addr, &carol, "phone", 47.0, day + 9 * 3_600 + minute * 60, 80);
        owntracks(addr, &bob, "phone", 47.0001, day + 9 * 3_600 + minute * 60, 80);
    }
    let on = send_json(
        addr,
        "PUT",
        "/api/v1/admin/exposure",
        &basic("root", PASSWORD),
        &json!({"enabled": true, "auto_apply": true, "min_minutes": 10}),
    );
    assert_eq!(on.status, 200, "{}", on.body);
    let clear = wait_until(addr, "/api/v1/exposure/status", &bob, |_| true);
    assert_eq!(clear["status"], "clear", "{clear}");
    let status = |auth: &str| get(addr, "/api/v1/exposure/status", Some(auth));
    let (bob_tag, carol_tag) =
        (status(&bob).header("etag").unwrap().to_owned(), status(&carol).header("etag").unwrap().to_owned());
    let cached =
        http(addr, "GET", "/api/v1/exposure/status", &[("Authorization", &bob), ("If-None-Match", &bob_tag)], b"");
    assert_eq!(cached.status, 304, "read again, unchanged: {}", cached.body);

    let from = polo_domain::Timestamp(day * 1000).to_string();
    let to = polo_domain::Timestamp((day + 86_400) * 1000).to_string();
    let body = json!({"user": "carol", "infectious_from": from, "infectious_to": to, "note": ""});
    let case = send_json(addr, "POST", "/api/v1/exposure/cases", &basic("hana", PASSWORD), &body);
    assert_eq!(case.status, 201, "{}", case.body);
    let exposed = wait_until(addr, "/api/v1/exposure/status", &bob, |b| b["status"] == "exposed");
    assert_ne!(exposed["code"], clear["code"], "{exposed}");
    let now =
        http(addr, "GET", "/api/v1/exposure/status", &[("Authorization", &bob), ("If-None-Match", &bob_tag)], b"");
    assert_eq!(now.status, 200, "the old tag is stale: {}", now.body);
    assert_ne!(now.header("etag"), Some(bob_tag.as_str()));
    assert_eq!(status(&carol).header("etag"), Some(carol_tag.as_str()), "the case's own row was not written");
}
