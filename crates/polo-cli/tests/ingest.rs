//! Live ingest end to end: the real binary on port 0 receives the exact
//! bodies and headers the tracker apps send (protocols.md Part 1), and the
//! points are read back through the query API.

mod common;
// Zones and webhooks end to end (issue 19), in this binary rather than one of their own.
mod webhooks;

use common::{add_user, basic, http, serve, token, wait_for_timeline};
use serde_json::Value;

fn points(addr: &str, auth: &str, query: &str) -> Value {
    let response = http(addr, "GET", &format!("/api/v1/points?{query}"), &[("Authorization", auth)], b"");
    assert_eq!(response.status, 200, "{}", response.body);
    response.json()
}

#[test]
fn owntracks_http_as_the_android_app_sends_it() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let phone = token(dir.path(), "jane", "phone");
    let server = serve(dir.path(), &[]);
    let body = r#"{"_type":"location","created_at":1763700000,"_id":"a1b2c3d4","batt":81,"bs":1,"acc":12,"vac":3,
 "lat":48.856826,"lon":2.292713,"alt":35,"vel":36,"cog":90,"tst":1763699990,"m":1,"conn":"w",
 "tid":"JP","t":"u","topic":"owntracks/jane/phone"}"#;
    let auth = basic("jane", &phone);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json; charset=utf-8"),
        ("X-Limit-U", "jane"),
        ("X-Limit-D", "phone"),
        ("User-Agent", "Owntracks-Android/gms/420412000"),
    ];
    let response = http(&server.addr, "POST", "/api/owntracks", &headers, body.as_bytes());
    assert_eq!(response.status, 200, "{}", response.body);
    assert!(response.header("content-type").unwrap().starts_with("application/json"));
    // The reply carries the caller's own last location, with its tid.
    let reply = response.json();
    let own = reply.as_array().unwrap().iter().find(|m| m["_type"] == "location").expect("own location");
    assert_eq!(own["tid"], "JP");
    assert_eq!(own["tst"], 1_763_699_990);

    // A retry of the same message (same _id and tst) adds nothing.
    let again = http(&server.addr, "POST", "/api/owntracks", &headers, body.as_bytes());
    assert_eq!(again.status, 200);
    let read = points(&server.addr, &auth, "from=2025-11-01T00:00:00Z&to=2025-12-01T00:00:00Z");
    let list = read["points"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{read}");
    assert_eq!(list[0]["device"], "phone");
    assert_eq!(list[0]["speed"], 10.0, "vel 36 km/h is 10 m/s");
    assert_eq!(list[0]["accuracy"], 12.0);
    assert_eq!(list[0]["battery"], 81);

    // A zero-length body (a deleted friend) and a card are accepted.
    let empty = http(&server.addr, "POST", "/api/owntracks", &headers, b"");
    assert_eq!(empty.status, 200);
    let card = http(&server.addr, "POST", "/api/owntracks", &headers, br#"{"_type":"card","tid":"JP","name":"Jane"}"#);
    assert_eq!(card.status, 200);
    // Wrong credentials are refused (a permanent 4xx).
    let wrong = basic("jane", "polo_not-a-token");
    let refused = http(&server.addr, "POST", "/api/owntracks", &[("Authorization", wrong.as_str())], body.as_bytes());
    assert_eq!(refused.status, 401, "{}", refused.body);
}

#[test]
fn overland_batches_with_bearer_and_query_token() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "ana");
    let phone = token(dir.path(), "ana", "iphone");
    let server = serve(dir.path(), &[]);
    let body = r#"{"locations":[
      {"type":"Feature","geometry":{"type":"Point","coordinates":[-122.030581,37.3318]},
       "properties":{"timestamp":"2015-10-01T15:00:00Z","altitude":12,"speed":4,"course":270,
         "horizontal_accuracy":30,"vertical_accuracy":-1,"motion":["driving","stationary"],
         "battery_state":"charging","battery_level":0.8,"wifi":"","device_id":"phone1"}},
      {"type":"Feature","geometry":{"type":"Point","coordinates":[-122.031,37.332]},
       "properties":{"timestamp":"2015-10-01T08:00:10-0700","speed":5,"horizontal_accuracy":10,"device_id":"phone1"}},
      {"type":"Feature","properties":{"action":"will_terminate","timestamp":"2015-10-01T15:01:00Z"}}
    ]}"#;
    let bearer = format!("Bearer {phone}");
    let response = http(
        &server.addr,
        "POST",
        "/api/overland",
        &[("Authorization", bearer.as_str()), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    assert_eq!(response.json(), serde_json::json!({"result": "ok"}));
    let read = points(&server.addr, &bearer, "from=2015-10-01T00:00:00Z&to=2015-10-02T00:00:00Z");
    let list = read["points"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{read}");
    assert_eq!(list[0]["battery"], 80);
    assert_eq!(list[0]["motion"], "road");
    // ?token= works too, and bad JSON gets an error Overland shows to the user.
    let via_query = http(&server.addr, "POST", &format!("/api/overland?token={phone}"), &[], b"{\"locations\":[]}");
    assert_eq!(via_query.status, 200, "{}", via_query.body);
    let broken = http(&server.addr, "POST", &format!("/api/overland?token={phone}"), &[], b"{not json");
    assert_eq!(broken.status, 400);
    assert!(broken.json()["error"].is_string());
}

#[test]
fn osmand_traccar_and_gpslogger_requests() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "tom");
    let car = token(dir.path(), "tom", "car");
    let server = serve(dir.path(), &[]);
    // Legacy Traccar client: everything in the query, empty body, the device id is the polo token; speed in knots.
    let query = format!(
        "/api/osmand?id={car}&timestamp=1700000000&lat=52.5200&lon=13.4050&speed=10&bearing=90&altitude=34&accuracy=5&batt=77"
    );
    let response = http(&server.addr, "POST", &query, &[], b"");
    assert_eq!(response.status, 200, "{}", response.body);
    // Current Traccar Client: a form body.
    let form = format!("id={car}&lat=52.5201&lon=13.4051&timestamp=1700000060&speed=0");
    let response = http(
        &server.addr,
        "POST",
        "/api/osmand",
        &[("Content-Type", "application/x-www-form-urlencoded")],
        form.as_bytes(),
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let bearer = format!("Bearer {car}");
    let read = points(&server.addr, &bearer, "from=2023-11-14T00:00:00Z&to=2023-11-15T00:00:00Z");
    let list = read["points"].as_array().unwrap();
    assert_eq!(list.len(), 2, "{read}");
    assert_eq!(list[0]["device"], "car");
    assert!((list[0]["speed"].as_f64().unwrap() - 5.14).abs() < 0.01, "10 knots ≈ 5.14 m/s: {}", list[0]);
    // Without any credentials the request is refused.
    let anonymous = http(&server.addr, "GET", "/api/osmand?id=unknown&lat=1&lon=1&timestamp=1700000000", &[], b"");
    assert_eq!(anonymous.status, 401, "{}", anonymous.body);
}

#[test]
fn batch_api_pagination_bbox_formats_and_isolation() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "eve");
    add_user(dir.path(), "mallory");
    let server = serve(dir.path(), &[]);
    let eve = basic("eve", "a long password");
    let items: Vec<Value> = (0..25)
        .map(|i| {
            serde_json::json!({"time": format!("2024-05-01T10:{i:02}:00Z"), "lat": 48.0 + f64::from(i) * 0.01,
                "lon": 11.0, "accuracy": 5, "device": if i % 2 == 0 { "a" } else { "b" }})
        })
        .chain(std::iter::once(serde_json::json!({"lat": 1, "lon": 2})))
        .collect();
    let body = serde_json::to_vec(&items).unwrap();
    let response = http(
        &server.addr,
        "POST",
        "/api/v1/points",
        &[("Authorization", eve.as_str()), ("Content-Type", "application/json")],
        &body,
    );
    assert_eq!(response.status, 200, "{}", response.body);
    let summary = response.json();
    assert_eq!(summary["added"], 25);
    assert_eq!(summary["rejected"], 1);
    assert_eq!(summary["errors"][0]["index"], 25);

    // Walk all pages of 10.
    let mut seen = 0;
    let mut cursor: Option<String> = None;
    for _ in 0..5 {
        let mut query = "from=2024-05-01&to=2024-05-02&limit=10".to_owned();
        if let Some(c) = &cursor {
            query.push_str(&format!("&cursor={c}"));
        }
        let page = points(&server.addr, &eve, &query);
        seen += page["points"].as_array().unwrap().len();
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    assert_eq!(seen, 25);
    let boxed = points(&server.addr, &eve, "bbox=10.9,48.05,11.1,48.1");
    assert_eq!(boxed["points"].as_array().unwrap().len(), 6, "{boxed}");
    let only_a = points(&server.addr, &eve, "device=a");
    assert_eq!(only_a["points"].as_array().unwrap().len(), 13);

    for (format, marker) in [("geojson", "FeatureCollection"), ("gpx", "<gpx"), ("csv", "time,lat,lon")] {
        let response = http(
            &server.addr,
            "GET",
            &format!("/api/v1/points?format={format}"),
            &[("Authorization", eve.as_str())],
            b"",
        );
        assert_eq!(response.status, 200, "{format}: {}", response.body);
        assert!(response.body.contains(marker), "{format}: {}", response.body);
    }
    let last = http(&server.addr, "GET", "/api/v1/locations/last", &[("Authorization", eve.as_str())], b"");
    assert_eq!(last.json()["locations"].as_array().unwrap().len(), 2);

    // Another user sees none of it, and anonymous callers get the error shape.
    let mallory = basic("mallory", "a long password");
    assert_eq!(points(&server.addr, &mallory, "")["points"].as_array().unwrap().len(), 0);
    let anonymous = http(&server.addr, "GET", "/api/v1/points", &[], b"");
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.json()["code"], "unauthorized");
    let bad = http(&server.addr, "GET", "/api/v1/points?bbox=1,2,3", &[("Authorization", eve.as_str())], b"");
    assert_eq!(bad.status, 400);
    assert_eq!(bad.json()["code"], "bad_request");
}

#[test]
fn owntracks_encrypted_payloads_with_a_device_key() {
    use polo_server::ingest::owntracks::{decrypt, encrypt};

    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let phone = token(dir.path(), "jane", "phone");
    let server = serve(dir.path(), &[]);
    let password = basic("jane", "a long password");
    let phone = format!("Bearer {phone}");
    let post = |secret: &str, body: &str| {
        let envelope = serde_json::json!({"_type": "encrypted", "data": encrypt(secret, body.as_bytes()).unwrap()});
        let headers = [("Authorization", phone.as_str()), ("Content-Type", "application/json")];
        http(&server.addr, "POST", "/api/owntracks", &headers, envelope.to_string().as_bytes())
    };
    let location = r#"{"_type":"location","lat":48.856826,"lon":2.292713,"tst":1763699990,"acc":12,"tid":"JP"}"#;

    // Without a key on the device the payload cannot be read: a permanent 400 that says what to do.
    let refused = post("s3cret", location);
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(refused.body.contains("encryption-key"), "{}", refused.body);

    let devices = http(&server.addr, "GET", "/api/v1/devices", &[("Authorization", password.as_str())], b"").json();
    let id = devices["devices"].as_array().unwrap().iter().find(|d| d["name"] == "phone").unwrap()["id"].clone();
    let set = http(
        &server.addr,
        "PUT",
        &format!("/api/v1/devices/{id}/encryption-key"),
        &[("Authorization", password.as_str()), ("Content-Type", "application/json")],
        br#"{"key":"s3cret"}"#,
    );
    assert_eq!(set.status, 204, "{}", set.body);

    // Decrypted, stored, and answered with an encrypted friends array.
    let stored = post("s3cret", location);
    assert_eq!(stored.status, 200, "{}", stored.body);
    let reply = stored.json();
    assert_eq!(reply["_type"], "encrypted", "{reply}");
    let plain: Value = serde_json::from_slice(&decrypt("s3cret", reply["data"].as_str().unwrap()).unwrap()).unwrap();
    let own = plain.as_array().unwrap().iter().find(|m| m["_type"] == "location").expect("own location");
    assert_eq!((own["tid"].as_str(), own["tst"].as_i64()), (Some("JP"), Some(1_763_699_990)));
    let read = points(&server.addr, &phone, "from=2025-11-21T00:00:00Z&to=2025-11-22T00:00:00Z");
    assert_eq!(read["points"].as_array().unwrap().len(), 1, "{read}");

    // A payload encrypted with another key is refused and stores nothing.
    let wrong = post("not the key", r#"{"_type":"location","lat":1,"lon":2,"tst":1763699999}"#);
    assert_eq!(wrong.status, 400, "{}", wrong.body);
    assert!(wrong.body.contains("decrypt"), "{}", wrong.body);
    let read = points(&server.addr, &phone, "from=2025-11-21T00:00:00Z&to=2025-11-22T00:00:00Z");
    assert_eq!(read["points"].as_array().unwrap().len(), 1);

    // Clearing the key turns replies back to clear text.
    let cleared = http(
        &server.addr,
        "DELETE",
        &format!("/api/v1/devices/{id}/encryption-key"),
        &[("Authorization", password.as_str())],
        b"",
    );
    assert_eq!(cleared.status, 204, "{}", cleared.body);
    let headers = [("Authorization", phone.as_str()), ("Content-Type", "application/json")];
    let clear = http(&server.addr, "POST", "/api/owntracks", &headers, location.as_bytes());
    assert!(clear.json().is_array(), "{}", clear.body);
}

#[test]
fn owntracks_cards_are_kept_and_returned_with_the_friends() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let phone = format!("Bearer {}", token(dir.path(), "jane", "phone"));
    let tablet = format!("Bearer {}", token(dir.path(), "jane", "tablet"));
    let server = serve(dir.path(), &[]);
    let post = |auth: &str, body: &str| {
        let response = http(
            &server.addr,
            "POST",
            "/api/owntracks",
            &[("Authorization", auth), ("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(response.status, 200, "{}", response.body);
        response.json()
    };
    // The phone introduces itself, then reports a location; the tablet asks.
    post(&phone, r#"{"_type":"card","tid":"JP","name":"Jane Jolie","face":"iVBORw0KGgoAAAANSUhEUg=="}"#);
    post(&phone, r#"{"_type":"location","lat":48.856826,"lon":2.292713,"tst":1763699990,"tid":"JP"}"#);
    let reply = post(&tablet, r#"{"_type":"location","lat":48.85,"lon":2.29,"tst":1763699999,"tid":"TB"}"#);
    let messages = reply.as_array().unwrap();
    let card = messages.iter().find(|m| m["_type"] == "card").unwrap_or_else(|| panic!("a card in {reply}"));
    assert_eq!((card["name"].as_str(), card["face"].as_str()), (Some("Jane Jolie"), Some("iVBORw0KGgoAAAANSUhEUg==")));
    let jp =
        messages.iter().find(|m| m["_type"] == "location" && m["tid"] == card["tid"]).expect("the card's location");
    assert_eq!(jp["tst"], 1_763_699_990);
    // A card without name and face removes it.
    post(&phone, r#"{"_type":"card","tid":"JP"}"#);
    let reply = post(&tablet, "");
    assert!(!reply.as_array().unwrap().iter().any(|m| m["_type"] == "card"), "{reply}");
}

#[test]
fn the_day_timeline_tells_stays_and_legs_in_local_time() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let auth = format!("Bearer {}", token(dir.path(), "jane", "phone"));
    let server = serve(dir.path(), &[]);
    // 2024-05-01 in Berlin (+02:00): at home 07:00-08:00, a 3 km walk, at work 09:00-12:00.
    let mut points = Vec::new();
    let mut at = |minute: i64, lat: f64, lon: f64| {
        let (h, m) = (7 + minute / 60, minute % 60);
        points.push(serde_json::json!({"time": format!("2024-05-01T{h:02}:{m:02}:00+02:00"), "lat": lat, "lon": lon}));
    };
    for minute in (0..=60).step_by(2) {
        at(minute, 52.5200, 13.4050);
    }
    for step in 1..=30 {
        at(60 + step * 2, 52.5200 + 0.0009 * step as f64, 13.4050);
    }
    for minute in (122..=300).step_by(2) {
        at(minute, 52.5470, 13.4050);
    }
    let body = serde_json::Value::Array(points).to_string();
    let stored = http(
        &server.addr,
        "POST",
        "/api/v1/points",
        &[("Authorization", auth.as_str()), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(stored.status, 200, "{}", stored.body);
    wait_for_timeline(&server.addr, &auth);

    let day =
        http(&server.addr, "GET", "/api/v1/timeline/day?date=2024-05-01", &[("Authorization", auth.as_str())], b"");
    assert_eq!(day.status, 200, "{}", day.body);
    let day = day.json();
    assert_eq!((day["device"].as_str(), day["utc_offset_minutes"].as_i64()), (Some("phone"), Some(120)), "{day}");
    assert_eq!(day["from"], "2024-04-30T22:00:00.000Z", "the local day starts at local midnight");
    let kinds: Vec<&str> = day["entries"].as_array().unwrap().iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["stay", "leg", "stay"], "{day}");
    let (home, walk, work) = (&day["entries"][0], &day["entries"][1], &day["entries"][2]);
    assert_eq!(
        (home["start"].as_str(), home["visit"].as_bool()),
        (Some("2024-05-01T05:00:00.000Z"), Some(true)),
        "{home}"
    );
    assert_eq!(walk["mode"], "walk", "{walk}");
    let metres = walk["distance_m"].as_f64().unwrap();
    // From the first fix outside home's 100 m to the last before work's: 28 steps of 100 m.
    assert!((2_700.0..3_000.0).contains(&metres), "{walk}");
    // The stay at work has not ended: it is shown up to its last fix (trackintel would not
    // show it yet, and the walk would run to the end of the points), and marked ongoing.
    assert_eq!(
        (work["start"].as_str(), work["end"].as_str(), work["ongoing"].as_bool()),
        (Some("2024-05-01T07:00:00.000Z"), Some("2024-05-01T10:00:00.000Z"), Some(true)),
        "{work}"
    );
    assert!(home["ongoing"].is_null(), "{home}");
    // Another day is empty; a malformed one is refused.
    let empty =
        http(&server.addr, "GET", "/api/v1/timeline/day?date=2024-05-03", &[("Authorization", auth.as_str())], b"");
    assert_eq!(empty.json()["entries"].as_array().map(Vec::len), Some(0));
    let bad =
        http(&server.addr, "GET", "/api/v1/timeline/day?date=2024-02-30", &[("Authorization", auth.as_str())], b"");
    assert_eq!(bad.status, 400, "{}", bad.body);
}
