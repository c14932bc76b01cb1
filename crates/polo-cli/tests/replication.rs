//! Replication against the real binaries: the zero-downtime migration of
//! `docs/replication.md` performed end to end, and the faults the runbook
//! must survive — a replicator, source or target killed with SIGKILL
//! mid-stream, a network that cuts connections, a source restored from an
//! older backup, and bidirectional replication that must go quiet.
//!
//! After each: no point lost, none duplicated, both sides hold the same
//! points, and a further run changes nothing.

mod common;

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use common::{add_user, basic, http, polo, run_ok, serve, token};
use serde_json::{Value, json};

const PASSWORD: &str = "a long password";

/// A replication token for the instance in `dir`.
fn replication_token(dir: &Path) -> String {
    run_ok(polo(dir).args(["replication-token", "create", "--label", "test"])).trim().to_owned()
}

/// `n` points from `start` seconds into 2024, one every `step` seconds, as `/api/v1/points` takes them.
fn points(start: i64, n: i64, step: i64) -> Value {
    let t0 = 1_704_067_200; // 2024-01-01T00:00:00Z
    Value::Array(
        (0..n)
            .map(|i| {
                let t = t0 + start + i * step;
                json!({"time": polo_domain::Timestamp(t * 1000).to_string(), "lat": 52.5 + (i % 1000) as f64 * 1e-4, "lon": 13.4 + (t % 97) as f64 * 1e-5})
            })
            .collect(),
    )
}

fn post_points(addr: &str, device_token: &str, body: &Value) {
    let r = http(
        addr,
        "POST",
        "/api/v1/points",
        &[("Authorization", &format!("Bearer {device_token}")), ("Content-Type", "application/json")],
        body.to_string().as_bytes(),
    );
    assert!(r.status == 200 || r.status == 201 || r.status == 202, "{}: {}", r.status, r.body);
}

/// Every point of alice on the server, as CSV lines (sorted); none while
/// alice's account has not reached it yet.
fn export(addr: &str) -> Vec<String> {
    let r = http(
        addr,
        "GET",
        "/api/v1/points?format=csv&from=2023-01-01T00:00:00Z&to=2026-01-01T00:00:00Z",
        &[("Authorization", &basic("alice", PASSWORD))],
        b"",
    );
    if r.status == 401 {
        return Vec::new();
    }
    assert_eq!(r.status, 200, "{}", r.body);
    let mut lines: Vec<String> = r.body.lines().skip(1).map(str::to_owned).collect();
    lines.sort();
    lines
}

/// Runs `polo replicate` to completion and returns its JSON summary.
fn replicate(dir: &Path, source: &str, source_token: &str, target: &str, target_token: &str, extra: &[&str]) -> Value {
    let out = run_ok(
        polo(dir)
            .args([
                "replicate",
                "--json",
                "--source",
                &format!("http://{source}"),
                "--target",
                &format!("http://{target}"),
            ])
            .args(extra)
            .env("POLO_SOURCE_TOKEN", source_token)
            .env("POLO_TARGET_TOKEN", target_token),
    );
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

/// Starts `polo replicate` in the background.
fn replicate_child(
    dir: &Path,
    source: &str,
    source_token: &str,
    target: &str,
    target_token: &str,
    extra: &[&str],
) -> Child {
    polo(dir)
        .args(["replicate", "--source", &format!("http://{source}"), "--target", &format!("http://{target}")])
        .args(extra)
        .env("POLO_SOURCE_TOKEN", source_token)
        .env("POLO_TARGET_TOKEN", target_token)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn wait_until(what: &str, timeout: Duration, mut ok: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !ok() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// An instance with alice, a device token and a replication token.
struct Instance {
    dir: tempfile::TempDir,
    server: common::Server,
    device_token: String,
    replication_token: String,
}

impl Instance {
    fn new(with_user: bool) -> Self {
        let dir = tempfile::tempdir().unwrap();
        if with_user {
            add_user(dir.path(), "alice");
        }
        let replication_token = replication_token(dir.path());
        let server = serve(dir.path(), &[]);
        let device_token = if with_user { token(dir.path(), "alice", "phone") } else { String::new() };
        Self { dir, server, device_token, replication_token }
    }

    fn addr(&self) -> &str {
        &self.server.addr
    }

    fn restart(&mut self) {
        self.server = serve(self.dir.path(), &[]);
    }
}

#[test]
fn the_peer_routes_take_replication_tokens_and_nothing_else() {
    let a = Instance::new(true);
    let info = http(
        a.addr(),
        "GET",
        "/api/v1/replication/info",
        &[("Authorization", &format!("Bearer {}", a.replication_token))],
        b"",
    );
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.json()["instance"].as_str().unwrap().len(), 32);
    for auth in [format!("Bearer {}", a.device_token), basic("alice", PASSWORD), "Bearer polo_nonsense".to_owned()] {
        let r = http(a.addr(), "GET", "/api/v1/replication/changes", &[("Authorization", &auth)], b"");
        assert_eq!(r.status, 401, "{auth}: {}", r.body);
    }
    // A replication token is no user credential.
    let r = http(
        a.addr(),
        "GET",
        "/api/v1/locations/last",
        &[("Authorization", &format!("Bearer {}", a.replication_token))],
        b"",
    );
    assert_eq!(r.status, 401, "{}", r.body);
    let bad = http(
        a.addr(),
        "GET",
        "/api/v1/replication/changes?since=nonsense",
        &[("Authorization", &format!("Bearer {}", a.replication_token))],
        b"",
    );
    assert_eq!((bad.status, bad.json()["code"].as_str()), (400, Some("bad_request")), "{}", bad.body);
}

/// The runbook: live writes on A, continuous A → B, flip the writers to B,
/// A's last changes drain, B holds everything; then B → A for rollback.
#[test]
fn zero_downtime_migration_then_reverse() {
    let a = Instance::new(true);
    let b = Instance::new(false);
    post_points(a.addr(), &a.device_token, &points(0, 3_000, 10));

    let mut forward = replicate_child(
        a.dir.path(),
        a.addr(),
        &a.replication_token,
        b.addr(),
        &b.replication_token,
        &["--continuous", "--page-points", "1000"],
    );
    // Live writes on A while the copy runs.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicUsize::new(3_000));
    let writer = {
        let (addr, token, stop, sent) = (a.addr().to_owned(), a.device_token.clone(), stop.clone(), sent.clone());
        std::thread::spawn(move || {
            let mut k = 0;
            while !stop.load(Ordering::Relaxed) {
                post_points(&addr, &token, &points(100_000 + k * 100, 50, 2));
                sent.fetch_add(50, Ordering::Relaxed);
                k += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
        })
    };
    wait_until("B has alice's first points", Duration::from_secs(60), || {
        http(b.addr(), "GET", "/api/v1/locations/last", &[("Authorization", &basic("alice", PASSWORD))], b"").status
            == 200
            && export(b.addr()).len() >= 3_000
    });
    // Flip: writers move to B (its device token: tokens are per instance).
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let b_token = token(b.dir.path(), "alice", "phone");
    post_points(b.addr(), &b_token, &points(900_000, 500, 5));
    // A drains: everything it took reaches B.
    let expected = sent.load(Ordering::Relaxed) + 500;
    wait_until("A's last changes reach B", Duration::from_secs(60), || export(b.addr()).len() == expected);
    forward.kill().unwrap();
    let _ = forward.wait();

    // Reverse for rollback: B → A brings B's new writes back, and only those.
    let summary = replicate(b.dir.path(), b.addr(), &b.replication_token, a.addr(), &a.replication_token, &[]);
    assert_eq!(summary[0]["state"], "done", "{summary}");
    assert_eq!(summary[0]["applied_points"], 500, "only B's own writes travel back: {summary}");
    let (on_a, on_b) = (export(a.addr()), export(b.addr()));
    assert_eq!(on_a.len(), expected, "no point lost, none duplicated");
    assert_eq!(on_a, on_b);
    // Quiet: another round either way applies nothing.
    let again =
        replicate(a.dir.path(), a.addr(), &a.replication_token, b.addr(), &b.replication_token, &["--bidirectional"]);
    assert_eq!(
        (again[0]["applied_changes"].as_u64(), again[1]["applied_changes"].as_u64()),
        (Some(0), Some(0)),
        "{again}"
    );
}

/// SIGKILL of the replicator, then of the source, then of the target, in
/// the middle of a copy: each restart resumes from the target's checkpoint
/// and the copy ends exact.
#[test]
fn kill_nine_anywhere_mid_stream_loses_and_duplicates_nothing() {
    let mut a = Instance::new(true);
    let mut b = Instance::new(false);
    for k in 0..20 {
        post_points(a.addr(), &a.device_token, &points(k * 100_000, 2_000, 3));
    }
    for victim in ["replicator", "source", "target"] {
        let mut child = replicate_child(
            a.dir.path(),
            a.addr(),
            &a.replication_token,
            b.addr(),
            &b.replication_token,
            &["--page-points", "500", "--continuous"],
        );
        // Kill at a different moment of each round: the copy of 40 000 points in 500-point
        // pages takes a few hundred milliseconds.
        std::thread::sleep(Duration::from_millis(match victim {
            "replicator" => 40,
            "source" => 120,
            _ => 250,
        }));
        match victim {
            "replicator" => {}
            "source" => {
                kill9(&mut a.server);
                a.restart();
            }
            _ => {
                kill9(&mut b.server);
                b.restart();
            }
        }
        child.kill().unwrap(); // SIGKILL
        let _ = child.wait();
    }
    let summary = replicate(a.dir.path(), a.addr(), &a.replication_token, b.addr(), &b.replication_token, &[]);
    assert_eq!(summary[0]["state"], "done", "{summary}");
    assert_eq!(export(b.addr()).len(), 40_000);
    assert_eq!(export(b.addr()), export(a.addr()));
}

fn kill9(server: &mut common::Server) {
    let pid = server.pid();
    let _ = std::process::Command::new("kill").args(["-9", &pid.to_string()]).status();
}

/// A proxy between replicator and source that cuts every connection after
/// 8 KiB of answers (a few pages of 300 points; the client keeps connections
/// alive, so the cut falls in the middle of a page): the replicator retries
/// until done.
#[test]
fn a_network_that_cuts_connections_only_slows_the_copy() {
    let a = Instance::new(true);
    let b = Instance::new(false);
    // Changes of 500 points: a change is never split across pages, and each must fit in
    // what the proxy lets through.
    for k in 0..40 {
        post_points(a.addr(), &a.device_token, &points(k * 100_000, 500, 3));
    }
    let proxy = CuttingProxy::start(a.addr());
    let summary = replicate(
        a.dir.path(),
        &proxy.addr,
        &a.replication_token,
        b.addr(),
        &b.replication_token,
        &["--page-points", "300"],
    );
    assert_eq!(summary[0]["state"], "done", "{summary}");
    assert!(proxy.cuts.load(Ordering::Relaxed) > 0, "the proxy cut nothing");
    assert_eq!(export(b.addr()).len(), 20_000);
    assert_eq!(export(b.addr()), export(a.addr()));
}

/// Forwards connections to `upstream`, closing each after 8 KiB of the
/// upstream's answers.
struct CuttingProxy {
    addr: String,
    cuts: Arc<AtomicUsize>,
}

impl CuttingProxy {
    fn start(upstream: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let cuts = Arc::new(AtomicUsize::new(0));
        let (upstream, counter) = (upstream.to_owned(), cuts.clone());
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(mut client) = client else { continue };
                let Ok(mut server) = TcpStream::connect(&upstream) else { continue };
                let (mut c2, mut s2) = (client.try_clone().unwrap(), server.try_clone().unwrap());
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut c2, &mut s2);
                });
                let counter = counter.clone();
                std::thread::spawn(move || {
                    let mut buf = [0u8; 1024];
                    let mut passed = 0;
                    while let Ok(n) = server.read(&mut buf) {
                        if n == 0 || client.write_all(&buf[..n]).is_err() {
                            break;
                        }
                        passed += n;
                        if passed >= 8 * 1024 {
                            counter.fetch_add(1, Ordering::Relaxed);
                            break;
                        }
                    }
                    let _ = client.shutdown(std::net::Shutdown::Both);
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self { addr, cuts }
    }
}

/// The source is restored from an older backup: it gets a new epoch, the
/// replicator is told the history was rewound, new writes still arrive, and
/// pulling the other way gives the restored source back what it lost.
#[test]
fn a_source_restored_from_an_older_backup_is_detected_and_healed() {
    let mut a = Instance::new(true);
    let b = Instance::new(false);
    post_points(a.addr(), &a.device_token, &points(0, 1_000, 10));
    let backups = tempfile::tempdir().unwrap();
    let to = backups.path().to_str().unwrap().to_owned();
    run_ok(polo(a.dir.path()).args(["backup", "--to", &to, "--json"]));
    post_points(a.addr(), &a.device_token, &points(500_000, 1_000, 10)); // not in the backup
    replicate(a.dir.path(), a.addr(), &a.replication_token, b.addr(), &b.replication_token, &[]);
    assert_eq!(export(b.addr()).len(), 2_000);

    // Disaster: A comes back from the backup.
    kill9(&mut a.server);
    run_ok(polo(a.dir.path()).args(["restore", "--from", &to, "--force", "--json"]));
    a.restart();
    assert_eq!(export(a.addr()).len(), 1_000);
    let a_token = token(a.dir.path(), "alice", "phone");
    post_points(a.addr(), &a_token, &points(900_000, 300, 10));

    let forward = replicate(a.dir.path(), a.addr(), &a.replication_token, b.addr(), &b.replication_token, &[]);
    assert_eq!(forward[0]["rewinds"], 1, "the rewound history is noticed: {forward}");
    assert_eq!(export(b.addr()).len(), 2_300, "new writes arrive; nothing is skipped");
    let back = replicate(b.dir.path(), b.addr(), &b.replication_token, a.addr(), &a.replication_token, &[]);
    assert_eq!(back[0]["applied_points"], 1_000, "the points A lost come back from B: {back}");
    assert_eq!(export(a.addr()), export(b.addr()));
}

/// `--bidirectional` with writes on both sides converges, and a second run
/// applies nothing (no ping-pong).
#[test]
fn bidirectional_replication_converges_and_goes_quiet() {
    let a = Instance::new(true);
    let b = Instance::new(false);
    post_points(a.addr(), &a.device_token, &points(0, 1_000, 10));
    replicate(a.dir.path(), a.addr(), &a.replication_token, b.addr(), &b.replication_token, &[]);
    let b_token = token(b.dir.path(), "alice", "phone");
    post_points(b.addr(), &b_token, &points(200_000, 700, 10));
    post_points(a.addr(), &a.device_token, &points(400_000, 300, 10));
    let first =
        replicate(a.dir.path(), a.addr(), &a.replication_token, b.addr(), &b.replication_token, &["--bidirectional"]);
    assert_eq!(first[0]["applied_points"], 300, "{first}");
    assert_eq!(first[1]["applied_points"], 700, "{first}");
    assert_eq!(export(a.addr()), export(b.addr()));
    assert_eq!(export(a.addr()).len(), 2_000);
    let heads = || {
        let info = |addr: &str, t: &str| {
            http(addr, "GET", "/api/v1/replication/info", &[("Authorization", &format!("Bearer {t}"))], b"").json()["head"].clone()
        };
        (info(a.addr(), &a.replication_token), info(b.addr(), &b.replication_token))
    };
    let before = heads();
    let second =
        replicate(a.dir.path(), a.addr(), &a.replication_token, b.addr(), &b.replication_token, &["--bidirectional"]);
    assert_eq!((second[0]["applied_changes"].as_u64(), second[1]["applied_changes"].as_u64()), (Some(0), Some(0)));
    assert_eq!(heads(), before, "quiet replicas stay quiet");
}

/// `polo serve --replicate-from`: the background task follows the source,
/// shows its status to admins and in `/metrics`, and pauses, resumes and
/// cancels on request.
#[test]
fn serve_runs_a_replication_that_admins_can_watch_and_steer() {
    let a = Instance::new(true);
    let dir = tempfile::tempdir().unwrap();
    let mut child = polo(dir.path())
        .args(["user", "add", "root", "--admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(child.wait().unwrap().success());
    let source = format!("http://{}", a.addr());
    let b = serve(dir.path(), &["--replicate-from", &source, "--replicate-token", &a.replication_token]);
    let admin = basic("root", PASSWORD);
    let task = |b: &common::Server| {
        let r = http(&b.addr, "GET", "/api/v1/replication/tasks", &[("Authorization", &admin)], b"");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()[0].clone()
    };
    let steer = |b: &common::Server, action: &str| {
        let path = format!("/api/v1/replication/tasks/{}/{action}", urlencode(&source));
        let r = http(&b.addr, "POST", &path, &[("Authorization", &admin)], b"");
        assert_eq!(r.status, 200, "{}", r.body);
        r.json()
    };
    post_points(a.addr(), &a.device_token, &points(0, 2_000, 10));
    wait_until("B follows A", Duration::from_secs(60), || export(&b.addr).len() == 2_000);
    wait_until("the task is following", Duration::from_secs(10), || task(&b)["state"] == "following");
    assert_eq!(task(&b)["lag_changes"], 0);
    let metrics = http(&b.addr, "GET", "/metrics", &[], b"").body;
    assert!(metrics.contains("polo_replication_lag_changes{replication=\""), "{metrics}");
    assert!(metrics.contains("polo_replication_following{"), "{metrics}");

    // Paused: nothing new arrives (the long-poll in flight ends without applying).
    steer(&b, "pause");
    wait_until("the task pauses", Duration::from_secs(30), || task(&b)["state"] == "paused");
    post_points(a.addr(), &a.device_token, &points(100_000, 100, 10));
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(export(&b.addr).len(), 2_000, "a paused replication applies nothing");
    steer(&b, "resume");
    wait_until("B catches up after resume", Duration::from_secs(30), || export(&b.addr).len() == 2_100);
    steer(&b, "cancel");
    wait_until("the task is cancelled", Duration::from_secs(30), || task(&b)["state"] == "cancelled");
}

fn urlencode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
