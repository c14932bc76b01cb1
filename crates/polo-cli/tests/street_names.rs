//! Online street names against the real binary: `polo serve --geocoder
//! photon --geocoder-url http://127.0.0.1:PORT` pointing at a mock Photon
//! server run by the test. Points at two places go in through the batch
//! API; the places come back with the mock's street names, and the mock is
//! asked about nothing but those places, each once.

mod common;

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{add_user, http, polo, serve, token, wait_for_timeline};
use serde_json::{Value, json};

const HOME: (f64, f64) = (52.5200, 13.4050);
const WORK: (f64, f64) = (52.5470, 13.4050);

/// A stand-in for Photon's `/reverse` on 127.0.0.1: one thread per
/// connection, kept-alive requests answered in turn, every request target
/// recorded.
struct MockPhoton {
    addr: String,
    seen: Arc<Mutex<Vec<String>>>,
}

impl MockPhoton {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let record = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let record = record.clone();
                std::thread::spawn(move || answer_requests(stream, &record));
            }
        });
        Self { addr, seen }
    }

    fn requests(&self) -> Vec<String> {
        self.seen.lock().unwrap().clone()
    }
}

fn answer_requests(stream: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut reader = BufReader::new(stream.try_clone().unwrap());
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        // A GET has no body: the head ends at the first empty line.
        loop {
            let mut header = String::new();
            if reader.read_line(&mut header).unwrap_or(0) == 0 {
                return;
            }
            if header.trim().is_empty() {
                break;
            }
        }
        let target = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
        seen.lock().unwrap().push(target.clone());
        let body = photon_answer(&target).to_string();
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

/// The `lat` and `lon` of a `/reverse?lat=..&lon=..` target.
fn position(target: &str) -> Option<(f64, f64)> {
    let query = target.strip_prefix("/reverse?")?;
    let value = |key: &str| {
        query.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('=')).and_then(|v| v.parse().ok())
    };
    Some((value("lat")?, value("lon")?))
}

fn near(a: (f64, f64), b: (f64, f64)) -> bool {
    (a.0 - b.0).abs() < 0.002 && (a.1 - b.1).abs() < 0.002
}

/// A house at home and one at work, nothing elsewhere.
fn photon_answer(target: &str) -> Value {
    let house = |street: &str, number: &str| {
        json!({"type": "FeatureCollection", "features": [{"type": "Feature",
            "properties": {"street": street, "housenumber": number, "city": "Berlin"}}]})
    };
    match position(target) {
        Some(at) if near(at, HOME) => house("Karl-Liebknecht-Straße", "5"),
        Some(at) if near(at, WORK) => house("Schönhauser Allee", "36"),
        _ => json!({"type": "FeatureCollection", "features": []}),
    }
}

/// 2024-03-04 (+01:00): home until 10:00, a walk, work until 14:00, a walk,
/// home until 16:00; a point every two minutes.
fn a_day_at_two_places() -> Value {
    let points = (0..16 * 60).step_by(2).map(|minute: u32| {
        let (lat, lon) = match minute {
            m if m < 600 => HOME,
            m if m < 630 => (HOME.0 + (WORK.0 - HOME.0) * f64::from(m - 600) / 30.0, HOME.1),
            m if m < 840 => WORK,
            m if m < 870 => (WORK.0 - (WORK.0 - HOME.0) * f64::from(m - 840) / 30.0, HOME.1),
            _ => HOME,
        };
        json!({"time": format!("2024-03-04T{:02}:{:02}:00+01:00", minute / 60, minute % 60), "lat": lat, "lon": lon})
    });
    Value::Array(points.collect())
}

#[test]
fn places_get_street_names_from_the_configured_photon_server_once_each() {
    let photon = MockPhoton::start();
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let url = format!("http://{}", photon.addr);
    let server = serve(dir.path(), &["--geocoder", "photon", "--geocoder-url", &url]);
    let auth = format!("Bearer {}", token(dir.path(), "jane", "phone"));
    let get = |path: &str| {
        let response = http(&server.addr, "GET", path, &[("Authorization", auth.as_str())], b"");
        assert_eq!(response.status, 200, "{path}: {}", response.body);
        response.json()
    };

    let points = a_day_at_two_places().to_string();
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    let posted = http(&server.addr, "POST", "/api/v1/points", &headers, points.as_bytes());
    assert_eq!(posted.status / 100, 2, "{}", posted.body);
    wait_for_timeline(&server.addr, &auth);

    // The task runs every 10 s and asks one place a second.
    let deadline = Instant::now() + Duration::from_secs(60);
    let places = loop {
        let places = get("/api/v1/places");
        let list = places.as_array().unwrap();
        if !list.is_empty() && list.iter().all(|p| p.get("address").is_some()) {
            break list.clone();
        }
        assert!(Instant::now() < deadline, "no street names after 60 s: {places}; asked: {:?}", photon.requests());
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(places.len(), 2, "home and work: {places:?}");
    let at = |p: &Value| (p["lat"].as_f64().unwrap(), p["lon"].as_f64().unwrap());
    let home = places.iter().find(|p| near(at(p), HOME)).expect("a place at home");
    let work = places.iter().find(|p| near(at(p), WORK)).expect("a place at work");
    assert_eq!(home["address"], "Karl-Liebknecht-Straße 5, Berlin", "{home}");
    assert_eq!(work["address"], "Schönhauser Allee 36, Berlin", "{work}");
    // The offline locality is still there beside it.
    assert_eq!(home["country_code"], "DE", "{home}");

    // Only places were asked about, each once.
    let asked = photon.requests();
    assert_eq!(asked.len(), places.len(), "{asked:?}");
    for target in &asked {
        let position = position(target).unwrap_or_else(|| panic!("not a Photon reverse lookup: {target}"));
        assert!(places.iter().any(|p| near(at(p), position)), "{target} is no place's position");
    }

    // The day view shows the name on the visits.
    let day = get("/api/v1/timeline/day?date=2024-03-04");
    let visits: Vec<&Value> =
        day["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "stay" && e["visit"] == true).collect();
    assert!(visits.len() >= 2, "{day}");
    assert!(visits.iter().all(|v| v.get("address").is_some()), "{day}");
    assert_eq!(visits[0]["address"], "Karl-Liebknecht-Straße 5, Berlin", "{day}");

    // The lookups are counted for Prometheus (loopback is an admin network).
    let metrics = http(&server.addr, "GET", "/metrics", &[], b"");
    assert_eq!(metrics.status, 200);
    assert!(metrics.body.contains(r#"polo_street_name_lookups_total{outcome="found"} 2"#), "{}", metrics.body);

    // Another visit home the next day, and a later round: nothing is asked again.
    let again = json!([
        {"time": "2024-03-05T08:00:00+01:00", "lat": HOME.0, "lon": HOME.1},
        {"time": "2024-03-05T09:00:00+01:00", "lat": HOME.0, "lon": HOME.1},
        {"time": "2024-03-05T10:00:00+01:00", "lat": HOME.0, "lon": HOME.1},
    ])
    .to_string();
    let posted = http(&server.addr, "POST", "/api/v1/points", &headers, again.as_bytes());
    assert_eq!(posted.status / 100, 2, "{}", posted.body);
    wait_for_timeline(&server.addr, &auth);
    std::thread::sleep(Duration::from_secs(11));
    assert_eq!(get("/api/v1/places").as_array().map(Vec::len), Some(2));
    assert_eq!(photon.requests().len(), 2, "{:?}", photon.requests());
}

#[test]
fn a_geocoder_needs_both_provider_and_url() {
    let dir = tempfile::tempdir().unwrap();
    let output = polo(dir.path()).args(["serve", "--listen", "127.0.0.1:0", "--geocoder", "photon"]).output().unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("--geocoder photon needs the server's URL: add --geocoder-url URL"), "{stderr}");

    let output = polo(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("POLO_GEOCODER_URL", "https://photon.komoot.io")
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("add --geocoder photon|nominatim"), "{stderr}");

    let output = polo(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0", "--geocoder", "google", "--geocoder-url", "https://maps.example"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains(r#"unknown geocoder "google" (use photon or nominatim)"#), "{stderr}");
}
