//! Several `polo serve` nodes on one store: the timeline worker's lease is
//! taken over once its holder stops renewing it, import jobs of a stopped
//! node are failed rather than left running, jobs are seen alike from every
//! node, live positions cross nodes, and the failed-login back-off holds
//! across nodes. The PostgreSQL tests skip (saying so) without a server.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use polo_domain::{Coord, Fix, SourceFormat, Timestamp};
use polo_server::AppState;
use polo_server::auth::hash_password;
use polo_server::import_job::NODE_STOPPED;
use polo_server::live::LiveEvent;
use polo_store::{ImportJobRecord, ImportJobStatus, Store};
use polo_store_postgres::testing::TestDatabase;
use polo_store_sqlite::SqliteStore;
use serde_json::Value;
use tower::ServiceExt;

fn fixes(count: i64) -> Vec<Fix> {
    (0..count)
        .map(|i| {
            let coord = Coord::from_degrees(52.5 + i as f64 * 1e-4, 13.4).unwrap();
            Fix::new(Timestamp(1_700_000_000_000 + i * 60_000), coord, SourceFormat::Api)
        })
        .collect()
}

async fn wait_for(what: &str, within: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + within;
    while !done() {
        assert!(Instant::now() < deadline, "{what} did not happen within {within:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_timeline_waits_for_a_held_lease_and_takes_it_over_once_expired() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let user = store.create_user("alice", "h", false).unwrap();
    let device = store.ensure_device(user.id, "phone").unwrap();
    store.insert_points(user.id, device.id, &fixes(50)).unwrap();
    // A node that died a moment ago still holds the lease for two seconds.
    assert!(store.try_lease(polo_server::timeline_worker::LEASE, "dead-node", Duration::from_secs(2)).unwrap());
    let held_since = Instant::now();
    let state = AppState::new(Arc::clone(&store)).unwrap();
    let cursor = || store.derived_cursor(polo_derived::kinds::CURSOR).unwrap();
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_eq!(cursor().0, 0, "no step while another node holds the lease");
    let last = store.last_seq().unwrap();
    wait_for("taking the expired lease over", Duration::from_secs(20), || cursor() >= last).await;
    assert!(held_since.elapsed() >= Duration::from_secs(2), "not before the lease expired");
    assert!(!store.try_lease(polo_server::timeline_worker::LEASE, "dead-node", Duration::from_secs(2)).unwrap());
    // Stopping gives the lease up at once.
    drop(state);
    let store2 = Arc::clone(&store);
    wait_for("the lease being given up", Duration::from_secs(5), move || {
        store2.try_lease(polo_server::timeline_worker::LEASE, "next-node", Duration::from_secs(30)).unwrap()
    })
    .await;
}

fn running_job(user: polo_domain::UserId, id: &str, holder: &str, heartbeat: Timestamp) -> ImportJobRecord {
    ImportJobRecord {
        user,
        id: id.to_owned(),
        file_name: "Records.json".to_owned(),
        status: ImportJobStatus::Running,
        holder: holder.to_owned(),
        started: Timestamp(heartbeat.0 - 1000),
        heartbeat,
        finished: None,
        bytes_total: 1000,
        bytes_read: 400,
        points_added: 300,
        duplicates: 0,
        deleted_left_out: 0,
        intervals_added: 0,
        rejected: 0,
        error: None,
        report: None,
    }
}

async fn get(router: &axum::Router, path: &str, user: &str) -> (StatusCode, Value) {
    let auth = format!("Basic {}", STANDARD.encode(format!("{user}:{user} password")));
    let request = Request::get(path).header(header::AUTHORIZATION, auth).body(Body::empty()).unwrap();
    let response = router.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    (status, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn router(state: AppState) -> axum::Router {
    polo_server::app(state, &polo_server::ServerOptions::default(), polo_server::AccessLogger::off())
}

/// A single server: a job a previous run left running is failed at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_single_servers_job_left_running_by_a_previous_run_is_failed() {
    let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
    let alice = store.create_user("alice", &hash_password("alice password").unwrap(), false).unwrap().id;
    store.create_import_job(&running_job(alice, "left", "previous-run", polo_store::clock::now())).unwrap();
    let app = router(AppState::new(Arc::clone(&store)).unwrap());
    let (status, body) = get(&app, "/api/v1/imports/left", "alice").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "failed", "{body}");
    assert_eq!(body["error"], NODE_STOPPED);
    assert_eq!(body["points_added"], 300, "what was stored is still counted");
}

/// The synchronous PostgreSQL client must not run on the async runtime's
/// threads: the PostgreSQL tests set up outside it, then drive the nodes
/// through their routers (which run store calls on the blocking pool).
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap()
}

/// Two nodes on PostgreSQL: a job whose node's heartbeat stopped is failed
/// by the other node; one with a fresh heartbeat is left running; both
/// nodes answer alike.
#[test]
fn a_stale_running_job_is_failed_by_another_node() {
    let Some(db) = TestDatabase::create() else { return };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (Arc::new(db.open()), Arc::new(db.open()));
    let alice = a.create_user("alice", &hash_password("alice password").unwrap(), false).unwrap().id;
    let now = polo_store::clock::now();
    let stale = Timestamp(now.0 - polo_server::import_job::STALE_AFTER.as_millis() as i64 - 1000);
    a.create_import_job(&running_job(alice, "dead", "dead-node", stale)).unwrap();
    a.create_import_job(&running_job(alice, "alive", "busy-node", now)).unwrap();
    let (state_a, state_b) = (AppState::new(a).unwrap(), AppState::new(b).unwrap());
    runtime().block_on(async move {
        let (node_a, node_b) = (router(state_a), router(state_b));
        let (status, on_b) = get(&node_b, "/api/v1/imports", "alice").await;
        assert_eq!(status, StatusCode::OK, "{on_b}");
        let status_of = |body: &Value, id: &str| {
            body["imports"].as_array().unwrap().iter().find(|j| j["id"] == id).map(|j| j["status"].clone())
        };
        assert_eq!(status_of(&on_b, "dead"), Some(Value::from("failed")), "{on_b}");
        assert_eq!(status_of(&on_b, "alive"), Some(Value::from("running")), "{on_b}");
        let (_, on_a) = get(&node_a, "/api/v1/imports", "alice").await;
        assert_eq!(on_a, on_b, "every node answers alike");
        let (_, dead) = get(&node_a, "/api/v1/imports/dead", "alice").await;
        assert_eq!(dead["error"], NODE_STOPPED);
    });
    drop(db);
}

/// Two nodes on PostgreSQL: a position stored through node A reaches node
/// B's live feed and its last-location cache (the OwnTracks friends reply)
/// within a second, once; A's own positions are not echoed back to it.
#[test]
fn a_position_posted_to_one_node_reaches_the_other_within_a_second() {
    let Some(db) = TestDatabase::create() else { return };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (Arc::new(db.open()), Arc::new(db.open()));
    let alice = a.create_user("alice", "h", false).unwrap();
    let phone = a.ensure_device(alice.id, "phone").unwrap();
    let (node_a, node_b) = (AppState::new(a).unwrap(), AppState::new(b).unwrap());
    // B has read the device once (as a friends reply does), so it caches it.
    node_b.last_seen.get(&*node_b.store, alice.id, phone.id).unwrap();
    // Give both nodes' listeners a moment to connect.
    std::thread::sleep(Duration::from_millis(500));
    let fix = fixes(1).remove(0);
    runtime().block_on(async {
        let mut at_b = node_b.live.subscribe();
        let mut at_a = node_a.live.subscribe();
        let sent = Instant::now();
        node_a.live.position(alice.id, phone.id, &fix);
        let event = tokio::time::timeout(Duration::from_secs(1), at_b.recv()).await.expect("within a second").unwrap();
        assert!(sent.elapsed() < Duration::from_secs(1));
        match event {
            LiveEvent::Position { user, device, fix: got } => {
                assert_eq!((user, device, &*got), (alice.id, phone.id, &fix));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(node_b.last_seen.cached(phone.id), Some(Some(fix.clone())), "the friends reply sees it");
        // A sees its own event once, from its own feed, and not again from the store.
        assert!(matches!(at_a.recv().await.unwrap(), LiveEvent::Position { .. }));
        tokio::time::sleep(Duration::from_millis(700)).await;
        assert!(at_a.try_recv().is_err(), "no echo");
        assert!(at_b.try_recv().is_err(), "delivered once");
    });
    drop((node_a, node_b));
    drop(db);
}

/// Two nodes on PostgreSQL: wrong passwords sent to alternating nodes use
/// up one allowance between them, not one per node.
#[test]
fn failed_logins_count_across_nodes() {
    let Some(db) = TestDatabase::create() else { return };
    let (a, b): (Arc<dyn Store>, Arc<dyn Store>) = (Arc::new(db.open()), Arc::new(db.open()));
    a.create_user("alice", &hash_password("alice password").unwrap(), false).unwrap();
    let (state_a, state_b) = (AppState::new(a).unwrap(), AppState::new(b).unwrap());
    runtime().block_on(async move {
        let nodes = [router(state_a), router(state_b)];
        let wrong = format!("Basic {}", STANDARD.encode("alice:guess"));
        let mut statuses = Vec::new();
        for i in 0..8 {
            let request =
                Request::get("/api/v1/devices").header(header::AUTHORIZATION, &wrong).body(Body::empty()).unwrap();
            statuses.push(nodes[i % 2].clone().oneshot(request).await.unwrap().status());
        }
        // The default allowance is five free wrong passwords per (address, name)
        // in all; the sixth blocks. Each node alone saw only four.
        assert_eq!(statuses[..6], [StatusCode::UNAUTHORIZED; 6], "{statuses:?}");
        assert_eq!(statuses[6..], [StatusCode::TOO_MANY_REQUESTS; 2], "{statuses:?}");
    });
    drop(db);
}
