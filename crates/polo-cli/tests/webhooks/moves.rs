//! Visit and trip events end to end: live OwnTracks points that make a
//! visit, a trip and the next visit give `visit.*` and `trip.*` events in
//! the log and at a webhook; the same morning imported as history gives none.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use polo_domain::Timestamp;
use serde_json::{Value, json};

use super::{Receiver, logged_events, post, wait_until};
use crate::common::{add_user, basic, http, polo, run_ok, serve, token, wait_for_timeline};

/// The morning's fixes as (unix seconds, lat, lon): 20 minutes at home, a
/// 2 km trip north, then at work from minute 30 on; one a minute from `start`.
fn morning(start: i64) -> Vec<(i64, f64, f64)> {
    (0..=55)
        .map(|minute: i64| {
            let north_m = (minute - 20).clamp(0, 10) as f64 * 200.0;
            (start + minute * 60, 52.52 + north_m / 111_195.0, 13.405)
        })
        .collect()
}

fn gpx(fixes: &[(i64, f64, f64)]) -> String {
    let points: String = fixes
        .iter()
        .map(|(t, lat, lon)| {
            let time = Timestamp(t * 1_000).to_rfc3339(None);
            format!("<trkpt lat=\"{lat}\" lon=\"{lon}\"><time>{time}</time></trkpt>\n")
        })
        .collect();
    format!(
        "<?xml version=\"1.0\"?>\n<gpx version=\"1.1\" creator=\"test\" xmlns=\"http://www.topografix.com/GPX/1/1\">\
         <trk><trkseg>\n{points}</trkseg></trk></gpx>\n"
    )
}

#[test]
fn live_points_give_visit_and_trip_events_and_an_import_of_them_gives_none() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    add_user(dir.path(), "joe");
    let phone = token(dir.path(), "jane", "phone");
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    let start = now - 57 * 60;
    // Joe imports the same morning, three days ago: history.
    let file = dir.path().join("morning.gpx");
    std::fs::write(&file, gpx(&morning(start - 3 * 86_400))).unwrap();
    run_ok(polo(dir.path()).args(["import", "--user", "joe", "--device", "phone"]).arg(&file));
    let receiver = Receiver::start(Instant::now(), Duration::ZERO);
    let server = serve(dir.path(), &[]);
    let jane = basic("jane", "a long password");
    let kinds = ["visit.start", "visit.end", "trip.start", "trip.end"];
    post(&server.addr, &jane, "/api/v1/webhooks", &json!({"url": receiver.url, "kinds": kinds}));
    // Jane's phone sends the morning live, a fix per request.
    let auth = basic("jane", &phone);
    let headers = [("Authorization", auth.as_str()), ("Content-Type", "application/json")];
    for (tst, lat, lon) in morning(start) {
        let body = json!({"_type": "location", "tst": tst, "lat": lat, "lon": lon, "acc": 5, "tid": "JP"});
        let response = http(&server.addr, "POST", "/api/owntracks", &headers, body.to_string().as_bytes());
        assert_eq!(response.status, 200, "{}", response.body);
    }
    wait_until("the log has five events", Duration::from_secs(60), || logged_events(&server.addr, &jane).len() >= 5);
    let events = logged_events(&server.addr, &jane);
    let got: Vec<(&str, i64)> = events
        .iter()
        .map(|e| (e["kind"].as_str().unwrap(), (e["at_ms"].as_i64().unwrap() / 1_000 - start) / 60))
        .collect();
    assert_eq!(got, [("visit.start", 0), ("visit.end", 21), ("trip.start", 21), ("trip.end", 30), ("visit.start", 30)]);
    assert!(events.iter().all(|e| e["past"] == false && e["device_name"] == "phone" && e["zone"].is_null()));
    let trip = &events[3]["detail"];
    // Along its legs: from the first fix away (200 m out) to the last before work (1.8 km).
    assert_eq!(trip["distance_m"].as_f64().map(f64::round), Some(1_600.0), "{trip}");
    assert_eq!(trip["started"].as_i64(), Some((start + 21 * 60) * 1_000));
    // The webhook gets each of them, in order.
    wait_until("the five are delivered", Duration::from_secs(30), || receiver.delivered().len() >= 5);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(receiver.delivered(), ids);
    // Joe's import came first in the change log, so it has been looked at: nothing.
    let joe = basic("joe", "a long password");
    wait_for_timeline(&server.addr, &joe);
    let (from, to) = (Timestamp((start - 3 * 86_400) * 1_000), Timestamp((start - 3 * 86_400 + 3_600) * 1_000));
    let path = format!("/api/v1/timeline/entries?from={}&to={}", from.to_rfc3339(None), to.to_rfc3339(None));
    let entries = http(&server.addr, "GET", &path, &[("Authorization", joe.as_str())], b"");
    assert_eq!(entries.status, 200, "{}", entries.body);
    let entries = entries.json();
    let stays = entries[0]["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "stay").count();
    assert_eq!(stays, 2, "joe's timeline has the morning's two visits: {entries}");
    // (Zone evaluation logs its own past `device.silent` for an imported device; no visit or trip.)
    let joes = logged_events(&server.addr, &joe);
    let moves: Vec<&Value> = joes
        .iter()
        .filter(|e| e["kind"].as_str().is_some_and(|k| k.starts_with("visit.") || k.starts_with("trip.")))
        .collect();
    assert!(moves.is_empty(), "an import logs no visit or trip: {moves:?}");
}
