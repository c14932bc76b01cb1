//! The map API end to end: points posted to the real binary, the map rows
//! refreshed on its data directory (as the background worker will), then
//! the overview, heatmap and fog-of-war routes read back over HTTP.

mod common;

use std::collections::BTreeMap;

use common::{add_user, basic, http, serve};
use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::Store as _;
use polo_store_sqlite::SqliteStore;
use serde_json::{Value, json};

const PASSWORD: &str = "a long password";
/// 2024-05-01T00:00:00Z in ms.
const MAY_1: i64 = 1_714_521_600_000;
const HOUR: i64 = 3_600_000;
const MINUTE: i64 = 60_000;

/// A posted fix: device, time (ms), latitude, longitude.
type Fix = (&'static str, i64, f64, f64);

/// A zigzag walk every 2 minutes from `start` for `minutes`, so that no point is collinear with
/// its neighbours and level 0 keeps every one.
fn walk(device: &'static str, start: i64, minutes: i64, lat: f64, lon: f64) -> Vec<Fix> {
    (0..minutes / 2)
        .map(|i| (device, start + i * 2 * MINUTE, lat + 0.000_2 * (i % 2) as f64, lon + 0.000_3 * i as f64))
        .collect()
}

/// Three days of a phone (a 30-minute gap with a 1 km jump on the first, a drive across the
/// second midnight) and a boat crossing the antimeridian.
fn history() -> Vec<Fix> {
    let mut fixes = Vec::new();
    for day in 0..3 {
        let morning = MAY_1 + day * 24 * HOUR + 6 * HOUR;
        if day == 0 {
            fixes.extend(walk("phone", morning, 120, 47.0, 8.5));
            fixes.extend(walk("phone", morning + 150 * MINUTE, 90, 47.0, 8.513));
        } else {
            fixes.extend(walk("phone", morning, 240, 47.0, 8.5));
        }
    }
    fixes.extend(walk("phone", MAY_1 + 48 * HOUR - 10 * MINUTE, 22, 47.1, 8.6));
    // Eastwards along 17°S from 179.80°E, zigzagging, one fix a minute: past 180° after 20 minutes.
    fixes.extend((0..40).map(|i| {
        ("boat", MAY_1 + 30 * HOUR + i * MINUTE, -17.0 + 0.001 * (i % 2) as f64, wrap(179.8 + 0.01 * i as f64))
    }));
    fixes
}

fn wrap(lon: f64) -> f64 {
    if lon > 180.0 { lon - 360.0 } else { lon }
}

fn post(addr: &str, auth: &str, fixes: &[Fix]) {
    let body: Vec<Value> = fixes
        .iter()
        .map(|&(device, ms, lat, lon)| json!({"device": device, "time": Timestamp(ms).to_string(), "lat": lat, "lon": lon}))
        .collect();
    let body = Value::from(body).to_string();
    let r = http(
        addr,
        "POST",
        "/api/v1/points",
        &[("Authorization", auth), ("Content-Type", "application/json")],
        body.as_bytes(),
    );
    assert_eq!(r.status, 200, "{}", r.body);
}

/// What the background worker will do for each change: refresh the device's map rows for the span.
fn refresh(data: &std::path::Path, user: &str, fixes: &[Fix]) {
    let store = SqliteStore::open(data.join("polo.sqlite")).unwrap();
    let user: UserId = store.user_by_name(user).unwrap().unwrap().id;
    let mut spans: BTreeMap<&str, (i64, i64)> = BTreeMap::new();
    for &(device, ms, _, _) in fixes {
        let span = spans.entry(device).or_insert((ms, ms));
        *span = (span.0.min(ms), span.1.max(ms));
    }
    for (name, (first, last)) in spans {
        let device: DeviceId = store.list_devices(user).unwrap().into_iter().find(|d| d.name == name).unwrap().id;
        polo_derived::map::refresh_device(&store, user, device, Timestamp(first), Timestamp(last)).unwrap();
    }
}

fn get(addr: &str, auth: &str, path: &str) -> common::Response {
    http(addr, "GET", path, &[("Authorization", auth)], b"")
}

fn get_ok(addr: &str, auth: &str, path: &str) -> Value {
    let r = get(addr, auth, path);
    assert_eq!(r.status, 200, "{path}: {}", r.body);
    assert_eq!(r.header("cache-control"), Some("private, max-age=60"));
    r.json()
}

fn bad_request(addr: &str, auth: &str, path: &str, needle: &str) {
    let r = get(addr, auth, path);
    assert_eq!(r.status, 400, "{path}: {}", r.body);
    assert_eq!(r.json()["code"], "bad_request");
    let message = r.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains(needle), "{path}: {message:?} should mention {needle:?}");
}

/// The points of a segment as (device, ms rounded down to seconds, lat, lon).
fn decode(overview: &Value, segment: &Value) -> Vec<(String, i64, f64, f64)> {
    let device = overview["devices"][segment["device"].as_u64().unwrap() as usize].as_str().unwrap().to_owned();
    let coords = segment["coords"].as_array().unwrap();
    let times = segment["times"].as_array().unwrap();
    assert_eq!(coords.len(), 2 * times.len());
    let mut second = segment["start"].as_i64().unwrap();
    times
        .iter()
        .enumerate()
        .map(|(i, delta)| {
            second += delta.as_i64().unwrap();
            (device.clone(), second * 1000, coords[2 * i + 1].as_f64().unwrap(), coords[2 * i].as_f64().unwrap())
        })
        .collect()
}

fn round5(value: f64) -> f64 {
    (value * 1e5).round() / 1e5
}

#[test]
fn overviews_and_tiles_read_back_what_was_posted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    add_user(data, "jane");
    add_user(data, "john");
    let server = serve(data, &[]);
    let (addr, jane, john) = (server.addr.as_str(), basic("jane", PASSWORD), basic("john", PASSWORD));
    let fixes = history();
    post(addr, &jane, &fixes);
    refresh(data, "jane", &fixes);

    // Three days at level 0: every point comes back, time and place, split where the phone jumped.
    let range = "from=2024-05-01T00:00:00Z&to=2024-05-04T00:00:00Z";
    let overview = get_ok(addr, &jane, &format!("/api/v1/map/overview?{range}"));
    assert_eq!(overview["level"], 0, "{overview}");
    assert_eq!((overview["thinned"].as_bool(), overview["truncated"].as_bool()), (Some(false), Some(false)));
    assert_eq!(overview["points"].as_u64(), Some(fixes.len() as u64));
    let segments = overview["segments"].as_array().unwrap();
    let mut back: Vec<(String, i64, f64, f64)> = segments.iter().flat_map(|s| decode(&overview, s)).collect();
    back.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let mut sent: Vec<(String, i64, f64, f64)> =
        fixes.iter().map(|&(d, ms, lat, lon)| (d.to_owned(), ms, round5(lat), round5(lon))).collect();
    sent.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for (got, want) in back.iter().zip(&sent) {
        assert_eq!((&got.0, got.1, got.2), (&want.0, want.1, want.2));
        // The boat's longitudes are unwrapped; compare them modulo 360.
        assert!(
            ((got.3 - want.3).rem_euclid(360.0)).min((want.3 - got.3).rem_euclid(360.0)) < 1e-9,
            "{got:?} {want:?}"
        );
    }
    assert_eq!(back.len(), sent.len());
    let phone_segments =
        segments.iter().filter(|s| overview["devices"][s["device"].as_u64().unwrap() as usize] == "phone");
    let lengths: Vec<usize> = phone_segments.map(|s| s["times"].as_array().unwrap().len()).collect();
    // Day 1 before and after the jump, day 2, the drive across midnight in one piece, day 3.
    assert_eq!(lengths, [60, 45, 120, 11, 120], "{overview}");

    // The boat crosses 180° as one line whose longitudes run on past it.
    let boat = get_ok(addr, &jane, &format!("/api/v1/map/overview?{range}&device=boat"));
    assert_eq!(boat["devices"], json!(["boat"]));
    let line = boat["segments"][0]["coords"].as_array().unwrap();
    let longitudes: Vec<f64> = line.iter().step_by(2).map(|v| v.as_f64().unwrap()).collect();
    assert_eq!(boat["segments"].as_array().unwrap().len(), 1);
    assert!(longitudes.windows(2).all(|w| w[1] > w[0] && w[1] - w[0] < 1.0), "{longitudes:?}");
    assert!(*longitudes.last().unwrap() > 180.0, "{longitudes:?}");

    // A small budget: a coarser level, within the budget, the ends of each line kept.
    let small = get_ok(addr, &jane, &format!("/api/v1/map/overview?{range}&max_points=60"));
    let level = small["level"].as_u64().unwrap();
    assert!(level >= 1, "{small}");
    let cost = small["points"].as_u64().unwrap() + 3 * small["segments"].as_array().unwrap().len() as u64;
    assert!(cost <= 60, "{small}");
    assert_eq!(small["level_points"][0].as_u64(), Some(fixes.len() as u64));

    // Clipped to the range: the drive's morning half alone.
    let morning = get_ok(addr, &jane, "/api/v1/map/overview?from=2024-05-03T00:00:00Z&to=2024-05-03T01:00:00Z");
    assert_eq!(morning["points"], 6, "{morning}");

    // Someone else sees none of it.
    let other = get_ok(addr, &john, &format!("/api/v1/map/overview?{range}"));
    assert_eq!((other["points"].as_u64(), other["segments"].as_array().map(Vec::len)), (Some(0), Some(0)));
    let r = get(addr, &john, &format!("/api/v1/map/overview?{range}&device=boat"));
    assert_eq!(r.status, 404, "{}", r.body);

    // Heatmap: every point once, by device and by day; deeper tiles hold their share.
    let world = get_ok(addr, &jane, "/api/v1/map/heatmap/0/0/0");
    assert_eq!(world["total"].as_u64(), Some(fixes.len() as u64));
    assert_eq!((world["grid"].as_u64(), world["cell_zoom"].as_u64()), (Some(64), Some(6)));
    let boat_heat = get_ok(addr, &jane, "/api/v1/map/heatmap/0/0/0?device=boat");
    assert_eq!(boat_heat["total"], 40);
    let day_2 = get_ok(addr, &jane, "/api/v1/map/heatmap/0/0/0?from=2024-05-02T00:00:00Z&to=2024-05-03T00:00:00Z");
    let on_day_2 = fixes.iter().filter(|f| f.1 >= MAY_1 + 24 * HOUR && f.1 < MAY_1 + 48 * HOUR).count();
    assert_eq!(day_2["total"].as_u64(), Some(on_day_2 as u64));
    // 47.0°N 8.5°E is in tile 12/2144/1440.
    let city_heat = get_ok(addr, &jane, "/api/v1/map/heatmap/12/2144/1440");
    assert!(city_heat["total"].as_u64().unwrap() > 0, "{city_heat}");
    let cells = city_heat["cells"].as_array().unwrap();
    assert!(
        cells
            .iter()
            .all(|c| c.as_array().unwrap().len() == 3 && c[0].as_u64().unwrap() < 64 && c[2].as_u64().unwrap() > 0)
    );
    let max = cells.iter().map(|c| c[2].as_u64().unwrap()).max().unwrap();
    assert_eq!(city_heat["max"].as_u64(), Some(max));
    let deepest = get_ok(addr, &jane, "/api/v1/map/heatmap/18/137261/92202");
    assert_eq!((deepest["grid"].as_u64(), deepest["cell_zoom"].as_u64()), (Some(1), Some(18)));
    // The first three fixes of each day's walk from 8.5°E (to 8.5006°E) fall into that cell.
    assert_eq!(deepest["cells"], json!([[0, 0, 9]]), "{deepest}");

    // Fog of war: the trails light cells between the fixes too.
    let city_fog = get_ok(addr, &jane, "/api/v1/map/fog/12/2144/1440");
    assert!(city_fog["cells"].as_array().unwrap().len() >= cells.len(), "{city_fog}");
    let nobody = get_ok(addr, &john, "/api/v1/map/fog/12/2144/1440");
    assert_eq!(nobody["total"], 0);

    // Tag revalidation.
    let first = get(addr, &jane, "/api/v1/map/fog/12/2144/1440");
    let tag = first.header("etag").unwrap().to_owned();
    let again =
        http(addr, "GET", "/api/v1/map/fog/12/2144/1440", &[("Authorization", &jane), ("If-None-Match", &tag)], b"");
    assert_eq!((again.status, again.body.as_str()), (304, ""));
    assert_eq!(again.header("etag"), Some(tag.as_str()));

    // New points on the last day, refreshed for their span only, show up.
    let later = walk("phone", MAY_1 + 48 * HOUR + 12 * HOUR, 20, 47.2, 8.7);
    post(addr, &jane, &later);
    refresh(data, "jane", &later);
    let world = get_ok(addr, &jane, "/api/v1/map/heatmap/0/0/0");
    assert_eq!(world["total"].as_u64(), Some((fixes.len() + later.len()) as u64));
    let day_3 = get_ok(addr, &jane, "/api/v1/map/overview?from=2024-05-03T11:00:00Z&to=2024-05-04T00:00:00Z");
    assert_eq!(day_3["points"], 10);
    // Within a view: only what comes near it. Around the last walk (47.2° N, 8.7° E), nothing elsewhere.
    let range = "from=2024-05-01T00:00:00Z&to=2024-05-04T00:00:00Z";
    let near = get_ok(addr, &jane, &format!("/api/v1/map/overview?{range}&bbox=8.69,47.19,8.75,47.26"));
    assert!(near["points"].as_u64().unwrap() >= 10, "{near}");
    let away = get_ok(addr, &jane, &format!("/api/v1/map/overview?{range}&bbox=-60,-50,-59,-49"));
    assert_eq!((away["points"].as_u64(), away["segments"].as_array().map(Vec::len)), (Some(0), Some(0)));
}

#[test]
fn bad_parameters_are_400s_that_say_which_and_why() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let server = serve(dir.path(), &[]);
    let (addr, jane) = (server.addr.as_str(), basic("jane", PASSWORD));
    let day = "from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z";
    bad_request(
        addr,
        &jane,
        "/api/v1/map/overview?from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z",
        "must be before",
    );
    bad_request(addr, &jane, "/api/v1/map/overview?from=yesterday&to=2024-05-01T00:00:00Z", "from");
    bad_request(addr, &jane, "/api/v1/map/overview?to=2024-05-01T00:00:00Z", "from");
    bad_request(addr, &jane, &format!("/api/v1/map/overview?{day}&max_points=0"), "max_points");
    bad_request(addr, &jane, &format!("/api/v1/map/overview?{day}&max_points=60001"), "max_points");
    bad_request(addr, &jane, &format!("/api/v1/map/overview?{day}&max_points=many"), "max_points");
    for bbox in ["1,2,3", "a,b,c,d", "8,48,9,47", "8,-95,9,47"] {
        bad_request(
            addr,
            &jane,
            &format!("/api/v1/map/overview?{day}&bbox={bbox}"),
            "bbox must be west,south,east,north",
        );
    }
    bad_request(addr, &jane, "/api/v1/map/heatmap/19/0/0", "z must be");
    bad_request(addr, &jane, "/api/v1/map/heatmap/ten/0/0", "z must be");
    bad_request(addr, &jane, "/api/v1/map/heatmap/1/2/0", "x must be");
    bad_request(addr, &jane, "/api/v1/map/fog/1/0/-1", "y must be");
    bad_request(
        addr,
        &jane,
        "/api/v1/map/fog/3/0/0?from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z",
        "must be before",
    );
    let r = get(addr, &jane, "/api/v1/map/heatmap/3/0/0?device=nothing");
    assert_eq!((r.status, r.json()["code"].as_str()), (404, Some("not_found")));
    let r = http(addr, "GET", "/api/v1/map/heatmap/3/0/0", &[], b"");
    assert_eq!(r.status, 401);
    // Valid and empty: an answer, not an error.
    let empty = get_ok(addr, &jane, &format!("/api/v1/map/overview?{day}"));
    assert_eq!((empty["level"].as_u64(), empty["points"].as_u64()), (Some(0), Some(0)));
}
