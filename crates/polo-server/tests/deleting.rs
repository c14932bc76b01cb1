//! In process: deleting points (a range, a selection on the map), undoing
//! a delete, re-importing deleted points, and editing visits, through the
//! HTTP routes with the real store and timeline engine.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use polo_server::AppState;
use polo_server::auth::hash_password;
use polo_store::Store;
use polo_test_support::TestStore;
use serde_json::{Value, json};
use tower::ServiceExt;

/// 2024-05-01T06:00:00Z.
const T0: i64 = 1_714_543_200;

async fn call(router: &axum::Router, method: &str, path: &str, body: Option<Value>) -> (StatusCode, Value) {
    let auth = format!("Basic {}", STANDARD.encode("alice:alice password"));
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(body.map_or_else(Body::empty, |b| Body::from(serde_json::to_vec(&b).unwrap())))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 4 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// A morning: 40 minutes at home, a 15-minute walk east, 40 minutes at work
/// (about 2.2 km away), then walking on for 10 minutes (which ends the stay
/// at work), one point every 30 s: 210 points.
fn morning() -> Vec<Value> {
    let mut points = Vec::new();
    let mut at = |i: i64, lat: f64, lon: f64| {
        points.push(json!({"time": T0 + i * 30, "lat": lat, "lon": lon, "device": "phone"}))
    };
    for i in 0..80 {
        at(i, 48.137, 11.575);
    }
    for i in 80..110 {
        at(i, 48.137, 11.575 + (i - 79) as f64 * 0.001);
    }
    for i in 110..190 {
        at(i, 48.137, 11.605);
    }
    for i in 190..210 {
        at(i, 48.137, 11.605 + (i - 189) as f64 * 0.001);
    }
    points
}

struct Server {
    router: axum::Router,
    state: AppState,
    store: Arc<dyn Store>,
    _backend: TestStore,
}

async fn server() -> Server {
    let backend = TestStore::new();
    let store = backend.store.clone();
    store.create_user("alice", &hash_password("alice password").unwrap(), false).unwrap();
    let state = AppState::new(store.clone()).unwrap();
    let router =
        polo_server::app(state.clone(), &polo_server::ServerOptions::default(), polo_server::AccessLogger::off());
    let (status, body) = call(&router, "POST", "/api/v1/points", Some(Value::Array(morning()))).await;
    assert_eq!((status, body["added"].as_u64()), (StatusCode::OK, Some(210)), "{body}");
    let s = Server { router, state, store, _backend: backend };
    s.catch_up();
    s
}

impl Server {
    fn catch_up(&self) {
        self.state.timeline.engine().catch_up().unwrap();
    }

    async fn day(&self) -> Vec<Value> {
        let (status, day) = call(&self.router, "GET", "/api/v1/timeline/day?date=2024-05-01&device=phone", None).await;
        assert_eq!(status, StatusCode::OK, "{day}");
        day["entries"].as_array().unwrap().iter().filter(|e| e["kind"] == "stay").cloned().collect()
    }

    fn count(&self) -> u64 {
        let alice = self.store.user_by_name("alice").unwrap().unwrap().id;
        self.store.count_points(alice).unwrap()
    }
}

fn at(seconds: i64) -> String {
    polo_domain::Timestamp(seconds * 1000).to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deleted_range_stays_deleted_after_a_reimport_until_undone() {
    let s = server().await;
    let stays = s.day().await;
    assert_eq!(stays.len(), 2, "home and work: {stays:?}");

    // An imported visit at work (as Google Timeline carries them) goes with the points, and comes back.
    let alice = s.store.user_by_name("alice").unwrap().unwrap().id;
    let phone = s.store.ensure_device(alice, "phone").unwrap().id;
    let visit = polo_domain::Interval::new(
        polo_domain::IntervalKind::Visit,
        polo_domain::Timestamp((T0 + 120 * 30) * 1000),
        polo_domain::Timestamp((T0 + 180 * 30) * 1000),
        polo_domain::SourceFormat::GoogleSemantic,
    );
    assert_eq!(s.store.insert_intervals(alice, phone, &[visit]).unwrap().added, 1);
    let visits = |s: &Server| s.store.intervals(alice, None, None, None).unwrap().len();

    // Delete the time at work.
    let body = json!({"from": at(T0 + 110 * 30), "to": at(T0 + 190 * 30), "device": "phone"});
    let (status, out) = call(&s.router, "POST", "/api/v1/points/delete", Some(body)).await;
    assert_eq!((status, out["deleted"].as_u64()), (StatusCode::OK, Some(80)), "{out}");
    let undo = out["undo"].as_str().expect("an undo token").to_owned();
    assert!(out["undo_expires"].as_str().is_some());
    assert_eq!(s.count(), 130);
    assert_eq!(visits(&s), 0, "the imported visit went with the points");
    let stays = s.day().await;
    // Recomputed before the answer: the 80 fixes at work are gone. (The walk's last fix and the
    // next one after the deleted hour may still read as a short stop there: the phone "dozed".)
    let at_work = |stays: &[Value]| {
        stays
            .iter()
            .filter(|s| (s["lon"].as_f64().unwrap() - 11.605).abs() < 0.002)
            .map(|s| s["points"].as_u64().unwrap())
            .sum::<u64>()
    };
    assert!(at_work(&stays) <= 2, "the timeline was recomputed before the answer: {stays:?}");

    // The phone (or a re-import) sends the same points again: they stay deleted.
    let (status, body) = call(&s.router, "POST", "/api/v1/points", Some(Value::Array(morning()))).await;
    assert_eq!((status, body["added"].as_u64()), (StatusCode::OK, Some(0)), "{body}");
    assert_eq!(s.count(), 130);

    // Undo: once.
    let (status, out) = call(&s.router, "POST", "/api/v1/points/restore", Some(json!({"undo": undo}))).await;
    assert_eq!((status, out["restored"].as_u64()), (StatusCode::OK, Some(80)), "{out}");
    assert_eq!((out["restored_intervals"].as_u64(), visits(&s)), (Some(1), 1), "{out}");
    assert_eq!(s.count(), 210);
    assert_eq!(s.day().await.len(), 2, "the work stay is back");
    let (status, out) = call(&s.router, "POST", "/api/v1/points/restore", Some(json!({"undo": undo}))).await;
    assert_eq!((status, out["code"].as_str()), (StatusCode::NOT_FOUND, Some("not_found")), "{out}");
}

/// The undo is kept in the store, not in the server that answered the delete: a server
/// started afresh on the same store (a restart, or another node) undoes it, once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undo_survives_a_restart_and_works_through_another_node() {
    let s = server().await;
    let body = json!({"from": at(T0 + 110 * 30), "to": at(T0 + 190 * 30), "device": "phone"});
    let (status, out) = call(&s.router, "POST", "/api/v1/points/delete", Some(body)).await;
    assert_eq!((status, out["deleted"].as_u64()), (StatusCode::OK, Some(80)), "{out}");
    let undo = out["undo"].as_str().expect("an undo token").to_owned();

    let restarted = AppState::new(s.store.clone()).unwrap();
    let router =
        polo_server::app(restarted.clone(), &polo_server::ServerOptions::default(), polo_server::AccessLogger::off());
    let (status, out) = call(&router, "POST", "/api/v1/points/restore", Some(json!({"undo": undo}))).await;
    assert_eq!((status, out["restored"].as_u64()), (StatusCode::OK, Some(80)), "{out}");
    assert_eq!(s.count(), 210);
    let (status, _) = call(&s.router, "POST", "/api/v1/points/restore", Some(json!({"undo": undo}))).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "taken once, whichever node asks");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reimported_file_leaves_deleted_points_out_unless_asked() {
    let s = server().await;
    let (status, _) = call(&s.router, "POST", "/api/v1/points/delete", Some(json!({"everything": true}))).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(s.count(), 0);
    let gpx = {
        let mut text = String::from("<gpx version=\"1.1\" creator=\"t\"><trk><trkseg>");
        for p in morning() {
            let time = at(p["time"].as_i64().unwrap());
            text.push_str(&format!("<trkpt lat=\"{}\" lon=\"{}\"><time>{time}</time></trkpt>", p["lat"], p["lon"]));
        }
        text.push_str("</trkseg></trk></gpx>");
        text
    };
    let upload = |query: &'static str| {
        let boundary = "b0undary";
        let mut body =
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"m.gpx\"\r\n\r\n")
                .into_bytes();
        body.extend_from_slice(gpx.as_bytes());
        body.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
        Request::post(format!("/api/v1/imports?device=phone{query}"))
            .header(header::AUTHORIZATION, format!("Basic {}", STANDARD.encode("alice:alice password")))
            .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={boundary}"))
            .body(Body::from(body))
            .unwrap()
    };
    let finished = |id: String| {
        let router = s.router.clone();
        async move {
            for _ in 0..200 {
                let (_, job) = call(&router, "GET", &format!("/api/v1/imports/{id}"), None).await;
                if job["status"] == "done" {
                    return job;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("the import did not finish");
        }
    };
    let response = s.router.clone().oneshot(upload("")).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    let queued: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    let job = finished(queued["id"].as_str().unwrap().to_owned()).await;
    assert_eq!((job["points_added"].as_u64(), job["deleted_left_out"].as_u64()), (Some(0), Some(210)), "{job}");
    assert_eq!(job["files"][0]["deleted_left_out"], 210);
    assert_eq!(s.count(), 0);

    let response = s.router.clone().oneshot(upload("&restore_deleted=true")).await.unwrap();
    let queued: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    let job = finished(queued["id"].as_str().unwrap().to_owned()).await;
    assert_eq!(job["points_added"].as_u64(), Some(210), "{job}");
    assert_eq!(s.count(), 210);
    // The job says which span of which device it stored: what deleting the import removes.
    let span = &job["files"][0]["devices"][0];
    assert_eq!((span["device"].as_str(), span["points_added"].as_u64()), (Some("phone"), Some(210)), "{job}");
    assert_eq!(
        (span["first"].as_str(), span["last"].as_str()),
        (Some(at(T0).as_str()), Some(at(T0 + 209 * 30).as_str()))
    );
    let body = json!({"device": "phone", "from": span["first"], "to": at(T0 + 209 * 30 + 1)});
    let (status, out) = call(&s.router, "POST", "/api/v1/points/delete", Some(body)).await;
    assert_eq!((status, out["deleted"].as_u64()), (StatusCode::OK, Some(210)), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_selection_on_the_map_deletes_only_inside_it() {
    let s = server().await;
    // The walk's eastern half, at any time.
    let body = json!({"bbox": [11.5905, 48.13, 11.6005, 48.14]});
    let (status, out) = call(&s.router, "POST", "/api/v1/points/delete", Some(body)).await;
    assert_eq!((status, out["deleted"].as_u64()), (StatusCode::OK, Some(10)), "{out}");
    assert_eq!(s.count(), 200);
    // Bad requests name the field.
    for (body, field) in [
        (json!({}), "give from and to"),
        (json!({"bbox": [1, 2, 3]}), "bbox"),
        (json!({"everything": true, "device": "phone"}), "everything"),
        (json!({"from": "yesterday"}), "from"),
        (json!({"device": "watch"}), "watch"),
    ] {
        let (status, out) = call(&s.router, "POST", "/api/v1/points/delete", Some(body)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
        assert!(out["message"].as_str().unwrap().contains(field), "{out}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_visit_is_edited_deleted_and_reset_and_the_edit_survives_recomputation() {
    let s = server().await;
    let stays = s.day().await;
    let work = stays[1].clone();
    let start = work["start"].as_str().unwrap().to_owned();
    let home_place = stays[0]["place_id"].as_i64().expect("home is a place");

    // Other times and the home place.
    let new_start = at(T0 + 100 * 30);
    let body = json!({"device": "phone", "start": start, "new_start": new_start, "place_id": home_place});
    let (status, out) = call(&s.router, "PUT", "/api/v1/timeline/visits", Some(body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{out}");
    let stays = s.day().await;
    assert_eq!(stays[1]["start"].as_str(), Some(new_start.as_str()));
    assert_eq!(stays[1]["place_id"].as_i64(), Some(home_place));
    assert_eq!(stays[1]["edited"], true);

    // More points later that day: the timeline is recomputed, the edit holds.
    let later: Vec<Value> =
        (210..240).map(|i| json!({"time": T0 + i * 30, "lat": 48.137, "lon": 11.625, "device": "phone"})).collect();
    call(&s.router, "POST", "/api/v1/points", Some(Value::Array(later))).await;
    s.catch_up();
    let stays = s.day().await;
    assert_eq!(stays[1]["start"].as_str(), Some(new_start.as_str()), "{stays:?}");

    // Deleted, addressed by the start it is shown with: the day's statistics follow.
    let stationary = |s: &Server| {
        let router = s.router.clone();
        async move {
            let (_, stats) = call(&router, "GET", "/api/v1/stats?from=2024-05-01&to=2024-05-01&period=day", None).await;
            stats["periods"][0]["stationary_hours"].as_f64().unwrap()
        }
    };
    let before = stationary(&s).await;
    let body = json!({"device": "phone", "start": new_start, "deleted": true});
    let (status, out) = call(&s.router, "PUT", "/api/v1/timeline/visits", Some(body)).await;
    assert_eq!(status, StatusCode::NO_CONTENT, "{out}");
    // Home, and the stay the later points end in (open: it is the device's last).
    let stays = s.day().await;
    assert_eq!((stays.len(), stays[1]["ongoing"].as_bool()), (2, Some(true)), "{stays:?}");
    let after = stationary(&s).await;
    assert!(after < before - 0.5, "the deleted visit no longer counts as time stationary: {before} h → {after} h");

    // Reset: as detected again.
    let (status, _) =
        call(&s.router, "PUT", "/api/v1/timeline/visits", Some(json!({"device": "phone", "start": start}))).await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let stays = s.day().await;
    assert_eq!((stays.len(), stays[1]["start"].as_str()), (3, Some(start.as_str())));
    assert!(stays[1].get("edited").is_none());

    // Errors name the field.
    let (status, out) = call(
        &s.router,
        "PUT",
        "/api/v1/timeline/visits",
        Some(json!({"device": "phone", "start": at(T0 + 7), "deleted": true})),
    )
    .await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{out}");
    let body = json!({"device": "phone", "start": start, "new_end": at(T0)});
    let (status, out) = call(&s.router, "PUT", "/api/v1/timeline/visits", Some(body)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert!(out["message"].as_str().unwrap().starts_with("end:"), "{out}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_thins_old_points_and_the_visits_stay() {
    let s = server().await;
    let (status, policy) = call(&s.router, "GET", "/api/v1/retention", None).await;
    assert_eq!((status, &policy), (StatusCode::OK, &json!({"thin_after_days": null, "keep_one_every_s": 60})));
    let (status, out) = call(&s.router, "PUT", "/api/v1/retention", Some(json!({"thin_after_days": 3}))).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{out}");
    assert!(out["message"].as_str().unwrap().contains("thin_after_days"), "{out}");
    let body = json!({"thin_after_days": 30, "keep_one_every_s": 120});
    let (status, out) = call(&s.router, "PUT", "/api/v1/retention", Some(body.clone())).await;
    assert_eq!((status, &out), (StatusCode::OK, &body));

    let now = polo_domain::Timestamp::from_civil(2026, 1, 1, 0, 0, 0, 0).unwrap();
    let run = polo_server::retention::run_once(&*s.store, now).unwrap();
    // 30-second points, one kept every two minutes.
    assert_eq!(run.users, 1);
    assert!(run.deleted >= 140, "{run:?}");
    assert_eq!(s.count(), 210 - run.deleted);
    s.catch_up();
    let stays = s.day().await;
    assert_eq!(stays.len(), 2, "home and work are still there: {stays:?}");
    // Nothing newly old: the next run does nothing.
    assert_eq!(polo_server::retention::run_once(&*s.store, now).unwrap().deleted, 0);
}
