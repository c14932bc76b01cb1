//! The stored timeline over HTTP against the real binary: points go in
//! through the batch API, the background worker derives stays, legs,
//! places and statistics, and the user's edits survive a recomputation.

mod common;

use common::{add_user, http, serve, token, wait_for_timeline};
use serde_json::{Value, json};

const HOME: (f64, f64) = (52.5200, 13.4050);
const WORK: (f64, f64) = (52.5470, 13.4050);

/// Three commuting days in Berlin (+01:00) from 2024-03-04, a point every two minutes.
fn commute(days: std::ops::Range<u32>) -> Value {
    let mut points = Vec::new();
    for day in days {
        for minute in (0..24 * 60).step_by(2) {
            let (lat, lon) = match minute {
                m if m < 8 * 60 => HOME,
                m if m < 9 * 60 => (HOME.0 + (WORK.0 - HOME.0) * f64::from(m - 480) / 60.0, HOME.1),
                m if m < 17 * 60 => WORK,
                m if m < 18 * 60 => (WORK.0 - (WORK.0 - HOME.0) * f64::from(m - 1020) / 60.0, HOME.1),
                _ => HOME,
            };
            let time = format!("2024-03-{:02}T{:02}:{:02}:00+01:00", 4 + day, minute / 60, minute % 60);
            points.push(json!({"time": time, "lat": lat, "lon": lon}));
        }
    }
    Value::Array(points)
}

struct Client {
    addr: String,
    auth: String,
}

impl Client {
    fn call(&self, method: &str, path: &str, body: Option<&Value>) -> common::Response {
        let text = body.map(Value::to_string).unwrap_or_default();
        let mut headers = vec![("Authorization", self.auth.as_str())];
        if body.is_some() {
            headers.push(("Content-Type", "application/json"));
        }
        http(&self.addr, method, path, &headers, text.as_bytes())
    }

    fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        let response = self.call(method, path, body);
        assert!(response.status / 100 == 2, "{method} {path}: {} {}", response.status, response.body);
        if response.body.is_empty() { Value::Null } else { response.json() }
    }
}

#[test]
fn places_modes_and_stats_come_from_the_stored_timeline_and_edits_survive_recomputation() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let server = serve(dir.path(), &[]);
    let client = Client { addr: server.addr.clone(), auth: format!("Bearer {}", token(dir.path(), "jane", "phone")) };
    // Days 2 and 3 first, then day 1 as a backfill.
    client.ok("POST", "/api/v1/points", Some(&commute(1..3)));
    client.ok("POST", "/api/v1/points", Some(&commute(0..1)));
    wait_for_timeline(&client.addr, &client.auth);

    let places = client.ok("GET", "/api/v1/places", None);
    let places = places.as_array().unwrap();
    assert_eq!(places.len(), 2, "home and work: {places:?}");
    let home = places.iter().find(|p| (p["lat"].as_f64().unwrap() - HOME.0).abs() < 0.001).unwrap();
    let work = places.iter().find(|p| (p["lat"].as_f64().unwrap() - WORK.0).abs() < 0.001).unwrap();
    assert_eq!((home["home"].as_bool(), work["work"].as_bool()), (Some(true), Some(true)), "{places:?}");
    assert!(home["visits"].as_u64().unwrap() >= 3, "{home}");
    let (home_id, work_id) = (home["id"].as_i64().unwrap(), work["id"].as_i64().unwrap());

    // Rename, with validation.
    client.ok("PATCH", &format!("/api/v1/places/{home_id}"), Some(&json!({"name": " Home "})));
    let blank = client.call("PATCH", &format!("/api/v1/places/{home_id}"), Some(&json!({"name": "  "})));
    assert_eq!(blank.status, 400, "{}", blank.body);

    // The day view is a lookup: visits carry the place and its name.
    let day = client.ok("GET", "/api/v1/timeline/day?date=2024-03-05", None);
    let entries = day["entries"].as_array().unwrap();
    let kinds: Vec<&str> = entries.iter().map(|e| e["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["stay", "leg", "stay", "leg", "stay"], "{day}");
    assert_eq!(entries[0]["place_name"], "Home", "{day}");
    assert_eq!(entries[2]["place_id"], work_id, "{day}");
    assert_eq!(day["utc_offset_minutes"], 60);
    // GeoNames' nearest place to Alexanderplatz is the district Mitte.
    assert_eq!((entries[0]["country"].as_str(), entries[0]["town"].as_str()), (Some("DE"), Some("Mitte")), "{day}");

    // Correct the morning walk's mode; stats follow at once.
    let walk = &entries[1];
    assert_eq!(walk["mode"], "walk", "{walk}");
    let bad = client.call(
        "PUT",
        "/api/v1/timeline/legs/mode",
        Some(&json!({"device": "phone", "start": walk["start"], "mode": "boat"})),
    );
    assert_eq!(bad.status, 400, "{}", bad.body);
    client.ok(
        "PUT",
        "/api/v1/timeline/legs/mode",
        Some(&json!({"device": "phone", "start": walk["start"], "mode": "cycle"})),
    );
    let stats = client.ok("GET", "/api/v1/stats?from=2024-03-04&to=2024-03-06&period=day", None);
    let periods = stats["periods"].as_array().unwrap();
    assert_eq!(periods.len(), 3, "{stats}");
    let tuesday = periods.iter().find(|p| p["from"] == "2024-03-05").unwrap();
    let (cycled, walked) =
        (tuesday["by_mode"]["cycle"]["km"].as_f64().unwrap(), tuesday["by_mode"]["walk"]["km"].as_f64().unwrap());
    // Each leg is the 3 km minus the stretch still within 100 m of a stay.
    assert!((2.5..3.1).contains(&cycled) && (2.5..3.1).contains(&walked), "{tuesday}");
    assert_eq!(tuesday["top_places"][0]["name"], "Home", "{tuesday}");
    let month = client.ok("GET", "/api/v1/stats?from=2024-03-01&to=2024-03-31", None);
    assert_eq!(month["periods"][0]["days_tracked"], 3, "{month}");
    assert_eq!(month["periods"][0]["new_places"].as_array().map(Vec::len), Some(2), "{month}");
    assert_eq!(month["periods"][0]["days_per_country"], json!({"DE": 3}), "{month}");
    assert!(month["periods"][0]["towns"].as_array().unwrap().contains(&json!("Mitte")), "{month}");
    let total = month["periods"][0]["distance_km"].as_f64().unwrap();
    assert!((15.5..18.5).contains(&total), "six 3 km commutes: {month}");

    // New settings recompute everything; the name and the correction stay.
    let invalid =
        client.call("PUT", "/api/v1/timeline/settings", Some(&json!({"stays": {"distance_threshold_m": -1}})));
    assert_eq!(invalid.status, 400, "{}", invalid.body);
    let unknown = client.call("PUT", "/api/v1/timeline/settings", Some(&json!({"stays": {"radius": 5}})));
    assert!(unknown.status == 400 || unknown.status == 422, "{}", unknown.body);
    client.ok("PUT", "/api/v1/timeline/settings", Some(&json!({"stays": {"visit_min_duration_s": 1200}})));
    let settings = client.ok("GET", "/api/v1/timeline/settings", None);
    assert_eq!(settings["stays"]["visit_min_duration_s"], 1200, "{settings}");
    wait_for_timeline(&client.addr, &client.auth);
    let day = client.ok("GET", "/api/v1/timeline/day?date=2024-03-05", None);
    assert_eq!(day["entries"][0]["place_name"], "Home", "{day}");
    assert_eq!(
        (day["entries"][1]["mode"].as_str(), day["entries"][1]["mode_corrected"].as_bool()),
        (Some("cycle"), Some(true))
    );

    // Merge work into home: one place with both sets of visits.
    client.ok("POST", &format!("/api/v1/places/{work_id}/merge"), Some(&json!({"into": home_id})));
    let missing = client.call("POST", &format!("/api/v1/places/{work_id}/merge"), Some(&json!({"into": 424_242})));
    assert_eq!(missing.status, 404, "{}", missing.body);
    let places = client.ok("GET", "/api/v1/places", None);
    assert_eq!(places.as_array().map(Vec::len), Some(1), "{places}");
    assert_eq!(places[0]["merged"], json!([work_id]));

    // Trips and entries for a range.
    let trips = client.ok("GET", "/api/v1/timeline/trips?from=2024-03-04T00:00:00Z&to=2024-03-07T00:00:00Z", None);
    assert_eq!(trips.as_array().map(Vec::len), Some(6), "{trips}");
    let trip = &trips[0];
    let mean = trip["mean_speed_mps"].as_f64().unwrap();
    assert!(mean > 0.5 && mean < 1.0 && trip["max_speed_mps"].as_f64().unwrap() >= mean, "{trip}");
    let range = client.call("GET", "/api/v1/timeline/entries?from=2024-03-07T00:00:00Z&to=2024-03-04T00:00:00Z", None);
    assert_eq!(range.status, 400, "{}", range.body);
}

const LUBECK_HOME: (f64, f64) = (53.8655, 10.6866);
const LUBECK_WORK: (f64, f64) = (53.8880, 10.7030);

/// 1 May 2024 in Lübeck as Records.json gives it: UTC instants ("Z") and no
/// offset. Home until 07:30 local (CEST, UTC+2), 20 minutes to work, there
/// until 16:00, back, home until midnight; a point every two minutes.
fn lubeck_day_in_utc() -> Value {
    let mut points = Vec::new();
    for local in (0..24 * 60).step_by(2) {
        let along = |from: u32| f64::from(local - from) / 20.0;
        let (lat, lon) = match local {
            m if (450..470).contains(&m) => {
                (LUBECK_HOME.0 + (LUBECK_WORK.0 - LUBECK_HOME.0) * along(450), LUBECK_HOME.1 + 0.0164 * along(450))
            }
            m if (470..960).contains(&m) => LUBECK_WORK,
            m if (960..980).contains(&m) => {
                (LUBECK_WORK.0 - (LUBECK_WORK.0 - LUBECK_HOME.0) * along(960), LUBECK_WORK.1 - 0.0164 * along(960))
            }
            _ => LUBECK_HOME,
        };
        let time = if local < 120 {
            format!("2024-04-30T{:02}:{:02}:00Z", 22 + local / 60, local % 60)
        } else {
            format!("2024-05-01T{:02}:{:02}:00Z", (local - 120) / 60, local % 60)
        };
        points.push(json!({"time": time, "lat": lat, "lon": lon}));
    }
    Value::Array(points)
}

/// The local wall-clock time `HH:MM` of an RFC 3339 UTC time and an offset.
fn local_clock(utc: &Value, offset_minutes: &Value) -> String {
    let text = utc.as_str().unwrap();
    let minutes: i64 = text[11..13].parse::<i64>().unwrap() * 60 + text[14..16].parse::<i64>().unwrap();
    let local = (minutes + offset_minutes.as_i64().unwrap()).rem_euclid(24 * 60);
    format!("{:02}:{:02}", local / 60, local % 60)
}

#[test]
fn points_without_offsets_are_shown_in_the_local_time_of_their_place() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let server = serve(dir.path(), &[]);
    let client = Client { addr: server.addr.clone(), auth: format!("Bearer {}", token(dir.path(), "jane", "phone")) };
    client.ok("POST", "/api/v1/points", Some(&lubeck_day_in_utc()));
    wait_for_timeline(&client.addr, &client.auth);

    // The day starts at local midnight, with the night at home.
    let day = client.ok("GET", "/api/v1/timeline/day?date=2024-05-01", None);
    assert_eq!(
        (day["from"].as_str(), day["utc_offset_minutes"].as_i64()),
        (Some("2024-04-30T22:00:00.000Z"), Some(120))
    );
    let entries = day["entries"].as_array().unwrap();
    assert_eq!((entries[0]["kind"].as_str(), entries[0]["utc_offset_minutes"].as_i64()), (Some("stay"), Some(120)));
    assert_eq!(local_clock(&entries[0]["start"], &entries[0]["utc_offset_minutes"]), "00:00", "{day}");

    // The trips list shows the morning commute at the same local time as the day view.
    let trips = client.ok("GET", "/api/v1/timeline/trips?from=2024-04-30T00:00:00Z&to=2024-05-02T00:00:00Z", None);
    let trip = &trips[0];
    assert_eq!(trip["utc_offset_minutes"], 120, "{trip}");
    let leg = entries.iter().find(|e| e["kind"] == "leg" && e["start"] == trip["start"]).unwrap();
    let in_trips = local_clock(&trip["start"], &trip["utc_offset_minutes"]);
    assert_eq!(in_trips, local_clock(&leg["start"], &leg["utc_offset_minutes"]));
    assert!(in_trips.starts_with("07:3"), "leaves at {in_trips} local: {trip}");
    assert_eq!(trip["end_utc_offset_minutes"], 120, "{trip}");
    // Both ends are named as the day view names their visits, place or not.
    let stays: Vec<&Value> = entries.iter().filter(|e| e["kind"] == "stay").collect();
    let (start, end) = (trip["start"].as_str().unwrap(), trip["end"].as_str().unwrap());
    let origin = stays.iter().rev().find(|e| e["end"].as_str().unwrap() <= start).expect("the visit before the trip");
    let destination = stays.iter().find(|e| e["start"].as_str().unwrap() >= end).expect("the visit after the trip");
    for (key, visit) in [("origin_title", origin), ("destination_title", destination)] {
        assert!(trip[key].as_str().is_some_and(|t| !t.is_empty()), "{key}: {trip}");
        assert_eq!(trip[key], visit["title"], "{key}: {trip} {visit}");
    }

    // Places carry the offsets of their first and last visits.
    let places = client.ok("GET", "/api/v1/places", None);
    for place in places.as_array().unwrap() {
        assert_eq!(place["first_visit_utc_offset_minutes"], 120, "{place}");
        assert_eq!(place["last_visit_utc_offset_minutes"], 120, "{place}");
    }
    let stats = client.ok("GET", "/api/v1/stats?from=2024-04-30&to=2024-05-01&period=day", None);
    let days: Vec<&str> = stats["periods"].as_array().unwrap().iter().map(|p| p["from"].as_str().unwrap()).collect();
    assert_eq!(days, ["2024-05-01"], "a local day, not two UTC days: {stats}");
}
