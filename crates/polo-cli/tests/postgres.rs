//! polo on PostgreSQL, through the real binary: every command against a
//! PostgreSQL store, clear errors for bad `--database-url`s, two `polo
//! serve` nodes sharing one database behind a round-robin proxy while one of
//! them is killed, and the move of a running SQLite instance to PostgreSQL
//! with `polo replicate` (docs/postgres.md).
//!
//! Each test gets a PostgreSQL schema of its own
//! (`polo_store_postgres::testing`); without a server they skip, saying so,
//! unless `POLO_REQUIRE_SERVICES` is set (as in CI).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{EventStream, Server, basic, http, polo, run_ok, serve, wait_for_timeline};
use polo_store_postgres::testing::TestDatabase;
use serde_json::{Value, json};

const PASSWORD: &str = "a long password";

/// `polo --database-url URL` with a data directory for everything else.
fn pg(dir: &Path, url: &str) -> Command {
    let mut command = polo(dir);
    command.arg("--database-url").arg(url);
    command
}

fn add_user(command: Command, name: &str) {
    let mut command = command;
    let mut child = command
        .args(["user", "add", name, "--password-stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn failure(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(!out.status.success(), "{command:?} should have failed");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn bad_database_urls_are_clear_errors_and_create_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let err = failure(pg(dir.path(), "mysql://root@localhost/polo").args(["user", "list"]));
    assert!(err.contains("unsupported database URL scheme \"mysql\""), "{err}");
    let missing = dir.path().join("typo.sqlite");
    let err = failure(pg(dir.path(), &format!("sqlite://{}", missing.display())).args(["user", "list"]));
    assert!(err.contains("no database at") && err.contains("typo.sqlite"), "{err}");
    assert!(!missing.exists(), "a mistyped path must not become an empty instance");
    let err = failure(pg(dir.path(), "postgres://nobody:secret@127.0.0.1:1/polo").args(["user", "list"]));
    assert!(err.contains("could not connect to PostgreSQL at 127.0.0.1:1/polo"), "{err}");
    assert!(!err.contains("secret"), "the password stays out of messages: {err}");
    let err = failure(polo(dir.path()).env("POLO_DATABASE_URL", "redis://x").args(["user", "list"]));
    assert!(err.contains("\"redis\""), "the environment variable is read too: {err}");
}

#[test]
fn every_command_works_against_postgres() {
    let Some(db) = TestDatabase::create() else { return };
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    add_user(pg(dir.path(), &url), "alice");
    let users: Value = serde_json::from_str(&run_ok(pg(dir.path(), &url).args(["user", "list", "--json"]))).unwrap();
    assert_eq!(users[0]["name"], "alice", "{users}");
    let token = run_ok(pg(dir.path(), &url).args(["token", "create", "--user", "alice", "--device", "phone"]));
    assert!(token.trim().starts_with("polo_"), "{token}");

    // Import a GPX file, export it again: the same points.
    let gpx = dir.path().join("walk.gpx");
    let mut text = String::from(r#"<?xml version="1.0"?><gpx version="1.1" creator="t"><trk><trkseg>"#);
    for i in 0..500 {
        text.push_str(&format!(
            r#"<trkpt lat="{:.6}" lon="{:.6}"><time>2024-03-01T{:02}:{:02}:{:02}Z</time></trkpt>"#,
            52.5 + f64::from(i) * 1e-4,
            13.4,
            8 + i / 3600,
            (i / 60) % 60,
            i % 60
        ));
    }
    text.push_str("</trkseg></trk></gpx>");
    std::fs::write(&gpx, text).unwrap();
    let out = run_ok(pg(dir.path(), &url).args(["import", "--user", "alice", "--json"]).arg(&gpx));
    let report: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(report["points_added"], 500, "{out}");
    let exported = dir.path().join("out.gpx");
    run_ok(pg(dir.path(), &url).args(["export", "--user", "alice", "--format", "gpx", "--output"]).arg(&exported));
    let back = std::fs::read_to_string(&exported).unwrap();
    assert_eq!(back.matches("<trkpt").count(), 500);

    // Deleting works, and backups point to PostgreSQL's own tools.
    run_ok(pg(dir.path(), &url).args(["delete", "--user", "alice", "--from", "2024-03-01T08:05:00Z"]));
    let exported = run_ok(pg(dir.path(), &url).args(["export", "--user", "alice", "--format", "csv"]));
    assert_eq!(exported.lines().count(), 1 + 300, "the header and the points before 08:05");
    let err = failure(pg(dir.path(), &url).args(["backup", "--to"]).arg(dir.path().join("backups")));
    assert!(err.contains("docs/postgres.md") && err.contains("WAL archiving"), "{err}");
    let err = failure(pg(dir.path(), &url).args(["restore", "--from"]).arg(dir.path().join("backups")));
    assert!(err.contains("docs/postgres.md"), "{err}");

    // The data directory holds no SQLite file: the store is PostgreSQL.
    assert!(!dir.path().join("polo.sqlite").exists());
}

/// A database restored with PostgreSQL's tools (`pg_restore`) still holds
/// the original's epoch and instance id: `polo epoch renew` makes it a new
/// instance, as `polo restore` does for SQLite, keeping its data.
#[test]
fn a_restored_database_gets_a_new_epoch_from_the_command_line() {
    let Some(db) = TestDatabase::create() else { return };
    let url = db.url();
    let dir = tempfile::tempdir().unwrap();
    add_user(pg(dir.path(), &url), "alice");
    let show = |dir: &Path| -> Value {
        serde_json::from_str(&run_ok(pg(dir, &url).args(["epoch", "show", "--json"]))).unwrap()
    };
    let before = show(dir.path());
    let last_seq = before["last_seq"].as_u64().unwrap();
    assert!(last_seq > 0, "adding a user is a change: {before}");
    assert_eq!(before["history"].as_array().unwrap().len(), 1, "{before}");

    let renewed: Value =
        serde_json::from_str(&run_ok(pg(dir.path(), &url).args(["epoch", "renew", "--json"]))).unwrap();
    assert_eq!(renewed["previous_epoch"], before["epoch"], "{renewed}");
    assert_eq!(renewed["previous_instance_id"], before["instance_id"], "{renewed}");
    assert_ne!(renewed["epoch"], before["epoch"], "{renewed}");
    assert_ne!(renewed["instance_id"], before["instance_id"], "{renewed}");
    assert_eq!(renewed["forked_at"], last_seq, "{renewed}");

    let after = show(dir.path());
    assert_eq!(after["epoch"], renewed["epoch"], "{after}");
    assert_eq!(after["last_seq"], last_seq, "renewing appends no change: {after}");
    let history = after["history"].as_array().unwrap();
    assert_eq!(history.len(), 2, "{after}");
    assert_eq!(history[0]["epoch"], before["epoch"], "{after}");
    assert_eq!(history[1]["epoch"], renewed["epoch"], "{after}");
    assert_eq!(history[1]["start"], last_seq, "the new epoch forks at the last change: {after}");
    // The data stays.
    let users: Value = serde_json::from_str(&run_ok(pg(dir.path(), &url).args(["user", "list", "--json"]))).unwrap();
    assert_eq!(users[0]["name"], "alice", "{users}");
}

/// A TCP proxy handing each new connection to the next backend in turn; a
/// backend that refuses the connection closes the client's, as a load
/// balancer without health checks would.
struct Proxy {
    addr: String,
    backends: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
}

impl Proxy {
    fn start(backends: Vec<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let backends = Arc::new(Mutex::new(backends));
        let stop = Arc::new(AtomicBool::new(false));
        let (list, halt) = (Arc::clone(&backends), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut next = 0usize;
            for client in listener.incoming() {
                if halt.load(Ordering::Relaxed) {
                    return;
                }
                let Ok(client) = client else { continue };
                let target = {
                    let list = list.lock().unwrap();
                    next += 1;
                    list[next % list.len()].clone()
                };
                std::thread::spawn(move || {
                    let Ok(server) = TcpStream::connect(&target) else { return };
                    pipe(client, server);
                });
            }
        });
        Self { addr, backends, stop }
    }

    fn replace(&self, old: &str, new: &str) {
        for backend in self.backends.lock().unwrap().iter_mut() {
            if backend == old {
                new.clone_into(backend);
            }
        }
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = TcpStream::connect(&self.addr);
    }
}

fn pipe(client: TcpStream, server: TcpStream) {
    let (mut client_read, mut server_write) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    let upstream = std::thread::spawn(move || {
        let _ = std::io::copy(&mut client_read, &mut server_write);
        let _ = server_write.shutdown(std::net::Shutdown::Write);
    });
    let (mut server_read, mut client_write) = (server, client);
    let _ = std::io::copy(&mut server_read, &mut client_write);
    let _ = client_write.shutdown(std::net::Shutdown::Write);
    let _ = upstream.join();
}

/// The OwnTracks location message for point `i` of a client: stays of 20
/// minutes at places 3 km apart, with 10-minute drives between them, one fix
/// every 10 s, starting 2024-05-01T06:00:00Z.
fn owntracks_point(client: usize, i: u64) -> String {
    let tst = 1_714_543_200 + i * 10;
    let cycle = i % 180; // 120 fixes staying, 60 driving
    let place = (i / 180) as f64;
    let (lat, lon) = if cycle < 120 {
        (48.10 + client as f64 * 0.1 + place * 0.027, 11.50 + (cycle % 3) as f64 * 1e-5)
    } else {
        (48.10 + client as f64 * 0.1 + place * 0.027 + (cycle - 120) as f64 * 0.00045, 11.50)
    };
    json!({"_type": "location", "tst": tst, "lat": lat, "lon": lon, "acc": 8, "tid": "t", "vel": 0}).to_string()
}

/// Who each client posts as: two users with two phones each.
fn client_identity(client: usize) -> (&'static str, &'static str) {
    [("alice", "phone"), ("alice", "tablet"), ("bob", "phone"), ("bob", "tablet")][client]
}

fn post_owntracks(addr: &str, client: usize, i: u64) -> Option<u16> {
    let (user, device) = client_identity(client);
    let auth = basic(user, PASSWORD);
    let headers = [
        ("Authorization", auth.as_str()),
        ("Content-Type", "application/json"),
        ("X-Limit-U", user),
        ("X-Limit-D", device),
    ];
    let body = owntracks_point(client, i);
    std::panic::catch_unwind(|| http(addr, "POST", "/api/owntracks", &headers, body.as_bytes()).status).ok()
}

/// The stored points of `user`'s `device` in the test's time range, by time.
fn stored_times(addr: &str, user: &str, device: &str) -> Vec<i64> {
    let path =
        format!("/api/v1/points?from=2024-05-01T00:00:00Z&to=2024-06-01T00:00:00Z&device={device}&format=geojson");
    let r = http(addr, "GET", &path, &[("Authorization", &basic(user, PASSWORD))], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    body["features"]
        .as_array()
        .unwrap_or_else(|| panic!("no features: {}", r.body))
        .iter()
        .map(|f| {
            let t = f["properties"]["time"].as_str().unwrap();
            polo_domain::time::parse_timestamp(t).unwrap().time.0 / 1000
        })
        .collect()
}

/// What the timeline says about the test's days, without store-assigned ids.
fn timeline(addr: &str, user: &str) -> Value {
    let path = "/api/v1/timeline/entries?from=2024-05-01T00:00:00Z&to=2024-05-10T00:00:00Z";
    let r = http(addr, "GET", path, &[("Authorization", &basic(user, PASSWORD))], b"");
    assert_eq!(r.status, 200, "{}", r.body);
    by_device_name(strip_ids(r.json()))
}

/// The timeline's devices in name order: the API lists them in the order the
/// store created them, which differs between two stores fed by concurrent
/// phones.
fn by_device_name(value: Value) -> Value {
    let Value::Array(mut devices) = value else { return value };
    devices.sort_by_key(|device| device["device"].as_str().unwrap_or_default().to_owned());
    Value::Array(devices)
}

fn strip_ids(value: Value) -> Value {
    match value {
        Value::Object(map) => Value::Object(
            map.into_iter().filter(|(k, _)| !k.ends_with("id") && k != "id").map(|(k, v)| (k, strip_ids(v))).collect(),
        ),
        Value::Array(items) => Value::Array(items.into_iter().map(strip_ids).collect()),
        other => other,
    }
}

fn serve_pg(dir: &Path, url: &str) -> Server {
    serve(dir, &["--database-url", url])
}

#[test]
fn two_nodes_share_one_database_through_a_kill() {
    let Some(db) = TestDatabase::create() else { return };
    let url = db.url();
    let (dir_a, dir_b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    add_user(pg(dir_a.path(), &url), "alice");
    add_user(pg(dir_a.path(), &url), "bob");
    let mut node_a = serve_pg(dir_a.path(), &url);
    let node_b = serve_pg(dir_b.path(), &url);
    let proxy = Proxy::start(vec![node_a.addr.clone(), node_b.addr.clone()]);

    // Alice watches her live stream on node B.
    let mut live = EventStream::open(&node_b.addr, "/api/v1/live", Some(&basic("alice", PASSWORD)));

    // Four clients post through the proxy for 30 s, retrying what failed.
    let seconds = std::env::var("POLO_MULTINODE_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(30);
    let run_until = Instant::now() + Duration::from_secs(seconds);
    let acknowledged: Arc<Mutex<BTreeMap<usize, BTreeSet<u64>>>> = Arc::default();
    let failures = Arc::new(Mutex::new(0u64));
    let clients: Vec<_> = (0..4)
        .map(|client| {
            let (proxy_addr, acknowledged, failures) =
                (proxy.addr.clone(), Arc::clone(&acknowledged), Arc::clone(&failures));
            std::thread::spawn(move || {
                let mut i = 0u64;
                while Instant::now() < run_until {
                    // Retry the same point until it is acknowledged.
                    let mut tries = 0;
                    loop {
                        match post_owntracks(&proxy_addr, client, i) {
                            Some(200) => break,
                            _ => {
                                *failures.lock().unwrap() += 1;
                                tries += 1;
                                assert!(tries < 200, "client {client} could not store point {i}");
                                std::thread::sleep(Duration::from_millis(50));
                            }
                        }
                    }
                    acknowledged.lock().unwrap().entry(client).or_default().insert(i);
                    i += 1;
                }
            })
        })
        .collect();

    // A third of the way in, node A dies without warning and comes back.
    std::thread::sleep(Duration::from_secs(seconds / 3));
    let old_addr = node_a.addr.clone();
    node_a.kill();
    std::thread::sleep(Duration::from_secs(2));
    node_a = serve_pg(dir_a.path(), &url);
    proxy.replace(&old_addr, &node_a.addr);
    for client in clients {
        client.join().unwrap();
    }
    let acknowledged = acknowledged.lock().unwrap().clone();
    let total: usize = acknowledged.values().map(BTreeSet::len).sum();
    eprintln!(
        "{total} points acknowledged in {seconds} s through two nodes ({} failed attempts retried)",
        failures.lock().unwrap()
    );
    assert!(total > 100, "too few points to prove anything: {total}");

    // Every acknowledged point is stored exactly once, whichever node is asked.
    for (client, sent) in &acknowledged {
        let (user, device) = client_identity(*client);
        let expected: Vec<i64> = sent.iter().map(|i| 1_714_543_200 + *i as i64 * 10).collect();
        for node in [&node_a, &node_b] {
            assert_eq!(stored_times(&node.addr, user, device), expected, "{user}/{device} on {}", node.addr);
        }
    }

    // The SSE client on node B saw alice's points, whichever node took them.
    let seen = live.next_position(Duration::from_secs(10));
    assert!(seen.is_some(), "no position reached the stream on node B");
    // A point posted straight to node A reaches node B's stream.
    // Far past any client's points, and still a valid latitude (point
    // 1_000_000 would lie at 198° north, which ingest answers 200 and drops).
    let marker = 100_000u64;
    let started = Instant::now();
    assert_eq!(post_owntracks(&node_a.addr, 0, marker), Some(200));
    let marker_tst = 1_714_543_200 + marker * 10;
    let mut crossed = None;
    while started.elapsed() < Duration::from_secs(10) {
        match live.next_position(Duration::from_secs(10)) {
            Some(p) if p.to_string().contains(&polo_domain::Timestamp(marker_tst as i64 * 1000).to_string()) => {
                crossed = Some(started.elapsed());
                break;
            }
            Some(_) => {}
            None => break,
        }
    }
    let crossed = crossed.expect("a point posted to node A never reached the stream on node B");
    eprintln!("node A → node B live stream: {} ms", crossed.as_millis());

    // The timeline both nodes serve equals what one SQLite node computes
    // from the same points.
    let sqlite_dir = tempfile::tempdir().unwrap();
    add_user(polo(sqlite_dir.path()), "alice");
    add_user(polo(sqlite_dir.path()), "bob");
    let single = serve(sqlite_dir.path(), &[]);
    for (client, sent) in &acknowledged {
        for i in sent.iter().chain(if *client == 0 { Some(&marker) } else { None }) {
            assert_eq!(post_owntracks(&single.addr, *client, *i), Some(200));
        }
    }
    for user in ["alice", "bob"] {
        let auth = basic(user, PASSWORD);
        wait_for_timeline(&single.addr, &auth);
        wait_for_timeline(&node_a.addr, &auth);
        let expected = timeline(&single.addr, user);
        assert!(expected.to_string().contains("stay"), "the test's days have stays: {expected}");
        assert_eq!(timeline(&node_a.addr, user), expected, "{user}'s timeline on node A");
        assert_eq!(timeline(&node_b.addr, user), expected, "{user}'s timeline on node B");
    }
    drop(proxy);
}

/// Reads everything a child wrote to a pipe, for failure messages.
#[allow(dead_code)]
fn drain(mut reader: impl Read) -> String {
    let mut out = String::new();
    let _ = reader.read_to_string(&mut out);
    out
}

#[test]
fn a_sqlite_instance_moves_to_postgres_without_downtime() {
    let Some(db) = TestDatabase::create() else { return };
    let url = db.url();
    let (old_dir, new_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    add_user(polo(old_dir.path()), "alice");
    let old = serve(old_dir.path(), &[]);
    let source_token = run_ok(polo(old_dir.path()).args(["replication-token", "create", "--label", "move"]));

    // The old instance keeps taking points all along.
    let writing = Arc::new(AtomicBool::new(true));
    let posted = Arc::new(Mutex::new(Vec::new()));
    let writer = {
        let (addr, writing, posted) = (old.addr.clone(), Arc::clone(&writing), Arc::clone(&posted));
        std::thread::spawn(move || {
            let mut i = 0;
            while writing.load(Ordering::Relaxed) {
                if post_owntracks(&addr, 0, i) == Some(200) {
                    posted.lock().unwrap().push(i);
                }
                i += 1;
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));

    // 1. A node on PostgreSQL. 2. Replicate into it, continuously.
    let new = serve_pg(new_dir.path(), &url);
    let mut replicator = pg(new_dir.path(), &url)
        .args(["replicate", "--source", &format!("http://{}", old.addr), "--target", "local", "--continuous"])
        .args(["--page-points", "5000"])
        .env("POLO_SOURCE_TOKEN", source_token.trim())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // Caught up: the account and what the phone sent before replication
    // started are on the new node. The account is looked for without
    // signing in: every refused sign-in would count towards the login
    // back-off, which on a slow machine outlasts the wait.
    let so_far = posted.lock().unwrap().len();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !run_ok(pg(new_dir.path(), &url).args(["user", "list"])).contains("alice") {
        assert!(Instant::now() < deadline, "the account did not arrive on the new node");
        std::thread::sleep(Duration::from_millis(200));
    }
    loop {
        let path = "/api/v1/points?from=2024-05-01T00:00:00Z&to=2024-06-01T00:00:00Z&format=geojson";
        let r = http(&new.addr, "GET", path, &[("Authorization", &basic("alice", PASSWORD))], b"");
        if r.status == 200 && r.body.matches("\"Feature\"").count() >= so_far && so_far > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "the new node did not catch up: {} {}", r.status, r.body.len());
        std::thread::sleep(Duration::from_millis(200));
    }

    // 3. Flip the writers: the phone now posts to the new node (its account
    // arrived by replication; its password with it).
    writing.store(false, Ordering::Relaxed);
    writer.join().unwrap();
    let flipped_from = posted.lock().unwrap().last().copied().unwrap_or(0) + 1;
    let mut after_flip = Vec::new();
    for i in flipped_from..flipped_from + 50 {
        // As a phone does, try again what was not acknowledged (the node
        // may be busy applying a replicated page).
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let status = post_owntracks(&new.addr, 0, i);
            if status == Some(200) {
                break;
            }
            assert!(Instant::now() < deadline, "the new node never took point {i}: the last answer was {status:?}");
            std::thread::sleep(Duration::from_millis(100));
        }
        after_flip.push(i);
    }

    // 4. Drain: once the new node holds everything the old one took, stop.
    let expected: Vec<i64> =
        posted.lock().unwrap().iter().chain(&after_flip).map(|i| 1_714_543_200 + *i as i64 * 10).collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let stored = stored_times(&new.addr, "alice", "phone");
        if stored == expected {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new node has {} of {} points after the drain window",
            stored.len(),
            expected.len()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    let _ = replicator.kill();
    let _ = replicator.wait();
    eprintln!("moved {} points while the old instance kept serving", expected.len());
    drop(old);
}
