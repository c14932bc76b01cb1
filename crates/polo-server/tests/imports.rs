//! In process: upload limits of `POST /api/v1/imports` with a small
//! maximum, and a store that runs out of space.

use std::sync::Arc;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use polo_server::AppState;
use polo_server::auth::hash_password;
use polo_server::import_job::{ImportJobs, ImportJobsConfig};
use polo_store::Store;
use polo_store_sqlite::SqliteStore;
use serde_json::Value;
use tower::ServiceExt;

const BOUNDARY: &str = "XyZ-boundary";

fn multipart(content: &[u8]) -> Vec<u8> {
    let mut body = format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.gpx\"\r\n\r\n")
        .into_bytes();
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

async fn post(router: &axum::Router, body: Vec<u8>, content_length: bool) -> (StatusCode, Value) {
    let auth = format!("Basic {}", STANDARD.encode("alice:alice password"));
    let mut request = Request::post("/api/v1/imports")
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, format!("multipart/form-data; boundary={BOUNDARY}"));
    if content_length {
        request = request.header(header::CONTENT_LENGTH, body.len());
    }
    let response = router.clone().oneshot(request.body(Body::from(body)).unwrap()).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_over_the_maximum_are_413_and_others_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let backend = polo_test_support::TestStore::new();
    let store = backend.store.clone();
    store.create_user("alice", &hash_password("alice password").unwrap(), false).unwrap();
    let mut state = AppState::new(store).unwrap();
    let config =
        ImportJobsConfig { max_upload_bytes: 4096, jobs_per_user: 2, ..ImportJobsConfig::in_data_dir(dir.path()) };
    state.imports = ImportJobs::new(config).unwrap();
    // Larger than the default body limit would allow for other routes, but under this one's.
    let router = polo_server::app(
        state,
        &polo_server::ServerOptions {
            body_limits: polo_server::options::BodyLimits { default: 1024, ingest: 1024 },
            ..Default::default()
        },
        polo_server::AccessLogger::off(),
    );

    // Counted while streaming (no Content-Length to trust).
    let (status, body) = post(&router, multipart(&[b'x'; 5000]), false).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")), "{body}");
    // Refused up front from Content-Length.
    let (status, body) = post(&router, multipart(&vec![b'x'; 2 << 20]), true).await;
    assert_eq!((status, body["code"].as_str()), (StatusCode::PAYLOAD_TOO_LARGE, Some("payload_too_large")), "{body}");
    // Nothing is left in the spool directory.
    assert_eq!(std::fs::read_dir(dir.path().join("uploads")).unwrap().count(), 0);

    // 3000 bytes: over the 1 KiB default limit, under this route's.
    let (status, body) = post(&router, multipart(&[b'x'; 3000]), true).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["status"], "queued");
}

async fn call(router: &axum::Router, method: &str, path: &str, body: Vec<u8>) -> (StatusCode, Value) {
    let auth = format!("Basic {}", STANDARD.encode("alice:alice password"));
    let request = Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, auth)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

/// While the store cannot grow (a full disk; here SQLite's page cap) live
/// points are refused with 503, none is acknowledged that was not stored,
/// and `/readyz` says why; both recover once writes work again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_store_refuses_live_points_and_is_not_ready_until_writes_work() {
    let sqlite = Arc::new(SqliteStore::open_in_memory().unwrap());
    let alice = sqlite.create_user("alice", &hash_password("alice password").unwrap(), false).unwrap().id;
    sqlite.ensure_device(alice, "phone").unwrap();
    let state = AppState::new(Arc::clone(&sqlite) as Arc<dyn Store>).unwrap();
    let router = polo_server::app(state, &polo_server::ServerOptions::default(), polo_server::AccessLogger::off());
    let (status, ready) = call(&router, "GET", "/readyz", Vec::new()).await;
    assert_eq!(status, StatusCode::OK, "{ready}");

    let points: Vec<Value> = (0..5000)
        .map(|i| serde_json::json!({"time": 1_700_000_000 + i, "lat": 48.1 + f64::from(i) * 1e-5, "lon": 11.5, "device": "phone"}))
        .collect();
    let body = serde_json::to_vec(&points).unwrap();
    sqlite.limit_growth(Some(0)).unwrap();
    let (status, refused) = call(&router, "POST", "/api/v1/points", body.clone()).await;
    assert_eq!((status, refused["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")), "{refused}");
    assert_eq!(sqlite.count_points(alice).unwrap(), 0, "nothing was stored, nothing acknowledged");
    let (status, ready) = call(&router, "GET", "/readyz", Vec::new()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{ready}");
    assert_eq!(ready["status"], "unavailable");
    assert_eq!(ready["reason"], "disk full: the store cannot be written", "no server path is shown");

    sqlite.limit_growth(None).unwrap();
    let (status, stored) = call(&router, "POST", "/api/v1/points", body).await;
    assert_eq!((status, stored["added"].as_u64()), (StatusCode::OK, Some(5000)), "{stored}");
    let (status, ready) = call(&router, "GET", "/readyz", Vec::new()).await;
    assert_eq!((status, ready["status"].as_str()), (StatusCode::OK, Some("ready")), "{ready}");
}
