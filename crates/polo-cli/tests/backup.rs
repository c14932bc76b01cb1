//! Backups against the real binary: `polo backup` while `polo serve` keeps
//! running, `polo restore` into a new data directory, and a second server
//! there that is ready and answers the same timeline at once, under a new
//! epoch. The same round trip against an S3 server (moto, from PyPI through
//! `$POLO_PYTHON`, on loopback): without it the test says SKIPPED, unless
//! `POLO_REQUIRE_SERVICES` is set (CI).

mod common;

use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::{http, polo, run_ok, serve, token, wait_for_timeline};
use serde_json::{Value, json};

/// Two days in Berlin, a point every two minutes: home, a walk to work, work, back.
fn two_days() -> Value {
    let (home, work) = ((52.5200, 13.4050), (52.5470, 13.4050));
    let mut points = Vec::new();
    for day in 4..6 {
        for minute in (0..24 * 60).step_by(2) {
            let (lat, lon) = match minute {
                m if m < 8 * 60 => home,
                m if m < 9 * 60 => (home.0 + (work.0 - home.0) * f64::from(m - 480) / 60.0, home.1),
                m if m < 17 * 60 => work,
                m if m < 18 * 60 => (work.0 - (work.0 - home.0) * f64::from(m - 1020) / 60.0, home.1),
                _ => home,
            };
            let time = format!("2024-03-{day:02}T{:02}:{:02}:00+01:00", minute / 60, minute % 60);
            points.push(json!({"time": time, "lat": lat, "lon": lon}));
        }
    }
    Value::Array(points)
}

/// A year before the test's days: 50,000 jittered points, one every five
/// minutes at one place. The later change never touches them, so an
/// incremental backup has blocks to reuse (a store of two days fits in three
/// 64 KiB blocks, every one of which a new point rewrites).
fn an_older_year() -> Value {
    let mut state: u64 = 7;
    let mut jitter = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        f64::from(u32::try_from(state >> 44).unwrap()) / f64::from(1u32 << 20) - 0.5
    };
    let start = 1_546_300_800; // 2019-01-01T00:00:00Z
    let points = (0..50_000)
        .map(|i| {
            let time = start + i * 300;
            json!({"time": time, "lat": 52.4 + jitter() * 1e-3, "lon": 13.0 + jitter() * 1e-3,
                   "accuracy": 5.0 + (jitter() + 0.5) * 20.0})
        })
        .collect();
    Value::Array(points)
}

fn get(addr: &str, auth: &str, path: &str) -> common::Response {
    http(addr, "GET", path, &[("Authorization", auth)], b"")
}

fn json_ok(command: &mut Command) -> Value {
    let out = run_ok(command);
    serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
}

fn failing(command: &mut Command) -> Output {
    let out = command.output().unwrap();
    assert!(!out.status.success(), "{command:?} should have failed");
    out
}

const DAY: &str = "/api/v1/timeline/day?date=2024-03-05";
const POINTS: &str = "/api/v1/points?format=csv&from=2024-03-01&to=2024-04-01";

/// A server with two days of points, the timeline computed and a place renamed.
struct Source {
    dir: tempfile::TempDir,
    server: common::Server,
    auth: String,
}

impl Source {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        common::add_user(&data, "jane");
        let server = serve(&data, &["--access-log", "off"]);
        let auth = format!("Bearer {}", token(&data, "jane", "phone"));
        let body = two_days().to_string();
        let r = http(
            &server.addr,
            "POST",
            "/api/v1/points",
            &[("Authorization", auth.as_str()), ("Content-Type", "application/json")],
            body.as_bytes(),
        );
        assert_eq!(r.status / 100, 2, "{}", r.body);
        wait_for_timeline(&server.addr, &auth);
        // A user edit: derived data that only the backup can bring back.
        let places = get(&server.addr, &auth, "/api/v1/places").json();
        let id = places[0]["id"].as_i64().unwrap();
        let rename = json!({"name": "Backed up"}).to_string();
        let r = http(
            &server.addr,
            "PATCH",
            &format!("/api/v1/places/{id}"),
            &[("Authorization", auth.as_str()), ("Content-Type", "application/json")],
            rename.as_bytes(),
        );
        assert_eq!(r.status / 100, 2, "{}", r.body);
        wait_for_timeline(&server.addr, &auth);
        Self { dir, server, auth }
    }

    fn data(&self) -> std::path::PathBuf {
        self.dir.path().join("data")
    }

    fn epoch(&self) -> String {
        readyz_epoch(&self.server.addr)
    }
}

fn readyz_epoch(addr: &str) -> String {
    let ready = http(addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200, "{}", ready.body);
    let epoch = ready.json()["epoch"].as_str().unwrap().to_owned();
    assert_eq!(epoch.len(), 32, "{}", ready.body);
    epoch
}

/// Starts a server on a restored data directory and checks, without waiting for
/// anything, that it is ready under `epoch` and answers exactly as the source did.
fn check_restored(restored: &Path, epoch: &str, source: &Source, day: &str, points: &str) {
    let started = Instant::now();
    let server = serve(restored, &["--access-log", "off"]);
    assert_eq!(readyz_epoch(&server.addr), epoch, "/readyz reports the restored instance's new epoch");
    let status = get(&server.addr, &source.auth, "/api/v1/timeline/progress").json();
    assert_eq!(status["up_to_date"], true, "nothing to recompute after a restore: {status}");
    let restored_day = get(&server.addr, &source.auth, DAY);
    assert_eq!(restored_day.status, 200, "{}", restored_day.body);
    assert_eq!(restored_day.body, day, "the same day view, from the restored derived data");
    assert!(restored_day.body.contains("Backed up"), "the user's edit came back: {}", restored_day.body);
    assert_eq!(get(&server.addr, &source.auth, POINTS).body, points, "the same points");
    eprintln!("restored instance: ready and answering in {:.2} s", started.elapsed().as_secs_f64());
}

#[test]
fn a_backup_taken_while_serving_restores_ready_at_once_under_a_new_epoch() {
    let source = Source::start();
    let before = get(&source.server.addr, &source.auth, DAY).body;
    assert!(before.contains("\"stay\""), "the source has a timeline: {before}");
    let old_epoch = source.epoch();
    let backups = source.dir.path().join("backups");
    let auth = source.auth.as_str();
    let headers = [("Authorization", auth), ("Content-Type", "application/json")];
    // In pieces: the batch route takes up to 1 MiB per request.
    for piece in an_older_year().as_array().unwrap().chunks(5_000) {
        let r = http(&source.server.addr, "POST", "/api/v1/points", &headers, json!(piece).to_string().as_bytes());
        assert_eq!(r.status / 100, 2, "{}", r.body);
    }
    wait_for_timeline(&source.server.addr, auth);

    // The server keeps running (and holding the database open) during the backup.
    let first = json_ok(polo(&source.data()).args(["backup", "--json", "--block-size", "64K", "--to"]).arg(&backups));
    assert!(first["blocks_uploaded"].as_u64().unwrap() > 0, "{first}");
    assert_eq!(first["epoch"], old_epoch.as_str(), "{first}");
    assert_eq!(first["timeline_seq"], first["last_seq"], "the timeline had caught up: {first}");
    // A few more points, then an incremental run with retention.
    let more = json!([{"time": "2024-03-06T10:00:00+01:00", "lat": 52.52, "lon": 13.405}]).to_string();
    let r = http(
        &source.server.addr,
        "POST",
        "/api/v1/points",
        &[("Authorization", auth), ("Content-Type", "application/json")],
        more.as_bytes(),
    );
    assert_eq!(r.status / 100, 2, "{}", r.body);
    wait_for_timeline(&source.server.addr, auth);
    let day = get(&source.server.addr, auth, DAY).body;
    let points = get(&source.server.addr, auth, POINTS).body;
    assert!(points.lines().count() > 1000, "{} lines", points.lines().count());
    let second = json_ok(
        polo(&source.data())
            .args(["backup", "--json", "--block-size", "64K", "--retain-daily", "7", "--to"])
            .arg(&backups),
    );
    // (How few blocks a small change uploads is measured in polo-backup's own tests, on a larger store.)
    let (uploaded, reused) = (second["blocks_uploaded"].as_u64().unwrap(), second["blocks_reused"].as_u64().unwrap());
    assert!(reused > 0 && uploaded > 0, "unchanged blocks are reused, changed ones uploaded: {second}");
    assert!(second["last_seq"].as_u64() > first["last_seq"].as_u64(), "{second}");
    // Both backups are today's: a daily policy keeps the day's last one.
    assert_eq!(second["retention"]["deleted"], json!([first["id"]]), "{second}");

    let listed = json_ok(polo(&source.data()).args(["backup", "list", "--json", "--from"]).arg(&backups));
    let ids: Vec<&str> = listed.as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [second["id"].as_str().unwrap()]);
    let verified = run_ok(polo(&source.data()).args(["backup", "verify", "--from"]).arg(&backups));
    assert!(verified.contains("is good"), "{verified}");

    // Restore into a new data directory and serve it.
    let restored = source.dir.path().join("restored");
    let report = json_ok(polo(&restored).args(["restore", "--json", "--from"]).arg(&backups));
    let new_epoch = report["epoch"].as_str().unwrap().to_owned();
    assert_ne!(new_epoch, old_epoch, "a restore starts a new epoch: {report}");
    assert_eq!(report["backup_epoch"], old_epoch.as_str());
    assert_eq!(report["last_seq"], second["last_seq"], "the change cursor of the backup: {report}");
    check_restored(&restored, &new_epoch, &source, &day, &points);
    // The source still serves its own history under its own epoch.
    assert_eq!(source.epoch(), old_epoch);

    // A data directory with a store in it is not overwritten by accident.
    let refused = failing(polo(&restored).args(["restore", "--from"]).arg(&backups));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("--force"), "{stderr}");
}

#[test]
fn backup_errors_say_what_is_wrong() {
    let dir = tempfile::tempdir().unwrap();
    let none = failing(polo(dir.path()).args(["backup", "--to"]).arg(dir.path().join("b")));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no store at"), "{none:?}");
    let no_dest = failing(polo(dir.path()).args(["backup"]));
    assert!(String::from_utf8_lossy(&no_dest.stderr).contains("no destination"), "{no_dest:?}");
    let scheme = failing(polo(dir.path()).args(["backup", "list", "--from", "ftp://x/y"]));
    assert!(String::from_utf8_lossy(&scheme.stderr).contains("unknown scheme ftp://"), "{scheme:?}");
    let empty = failing(polo(&dir.path().join("new")).args(["restore", "--from"]).arg(dir.path()));
    assert!(String::from_utf8_lossy(&empty.stderr).contains("no backups"), "{empty:?}");
    let size = failing(polo(dir.path()).args(["backup", "--block-size", "100K", "--to", "x"]));
    assert!(String::from_utf8_lossy(&size.stderr).contains("multiple of 64 KiB"), "{size:?}");
}

/// moto's S3 server on a free loopback port, stopped on drop.
struct Moto {
    child: Child,
    endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts moto, or says why it cannot.
fn moto() -> Result<Moto, String> {
    let python = std::env::var("POLO_PYTHON").map_err(|_| "POLO_PYTHON is not set".to_owned())?;
    let probe = Command::new(&python)
        .args(["-c", "import moto.server"])
        .output()
        .map_err(|e| format!("cannot run {python}: {e}"))?;
    if !probe.status.success() {
        return Err(format!("{python} has no moto[server]: {}", String::from_utf8_lossy(&probe.stderr)));
    }
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(&python)
        .args(["-m", "moto.server", "-H", "127.0.0.1", "-p", &port.to_string()])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot start moto: {e}"))?;
    let moto = Moto { child, endpoint: format!("http://127.0.0.1:{port}") };
    let deadline = Instant::now() + Duration::from_secs(30);
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "moto did not start listening on {port}");
        std::thread::sleep(Duration::from_millis(100));
    }
    Ok(moto)
}

#[test]
fn s3_backups_round_trip_through_an_s3_compatible_server() {
    let moto = match moto() {
        Ok(moto) => moto,
        Err(why) if std::env::var_os("POLO_REQUIRE_SERVICES").is_some() => {
            panic!("POLO_REQUIRE_SERVICES is set but moto is unavailable: {why}")
        }
        Err(why) => {
            eprintln!("SKIPPED: S3 backup test ({why}; .ci/run installs moto[server] from .ci/requirements.txt)");
            return;
        }
    };
    let addr = moto.endpoint.trim_start_matches("http://");
    // Path-style bucket creation; moto accepts unsigned requests.
    let created = http(addr, "PUT", "/polo-backups", &[], b"");
    assert_eq!(created.status, 200, "{}", created.body);

    let mut source = Source::start();
    let day = get(&source.server.addr, &source.auth, DAY).body;
    let points = get(&source.server.addr, &source.auth, POINTS).body;
    let source_epoch = source.epoch();
    // A running server renews its job leases, which changes a block now and
    // then; stopped, the store is truly unchanged between the two runs below.
    // (Backing up while serving is the test above.)
    assert!(source.server.terminate(Duration::from_secs(30)).is_some(), "the source server did not stop");
    let s3 = |data: &Path| {
        let mut command = polo(data);
        command
            .env("AWS_ACCESS_KEY_ID", "polo-test")
            .env("AWS_SECRET_ACCESS_KEY", "polo-test-secret")
            .env("AWS_REGION", "us-east-1")
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_PROFILE");
        command
    };
    let dest = "s3://polo-backups/nightly/polo";
    let backup = json_ok(s3(&source.data()).args(["backup", "--json", "--to", dest, "--endpoint", &moto.endpoint]));
    assert!(backup["blocks_uploaded"].as_u64().unwrap() > 0, "{backup}");
    let again = json_ok(s3(&source.data()).args(["backup", "--json", "--to", dest, "--endpoint", &moto.endpoint]));
    assert_eq!(again["blocks_uploaded"], 0, "an unchanged store uploads only a manifest: {again}");
    let listed = run_ok(s3(&source.data()).args(["backup", "list", "--from", dest, "--endpoint", &moto.endpoint]));
    assert!(listed.contains(backup["id"].as_str().unwrap()) && listed.contains(again["id"].as_str().unwrap()));
    let verified = run_ok(s3(&source.data()).args(["backup", "verify", "--from", dest, "--endpoint", &moto.endpoint]));
    assert!(verified.contains("is good"), "{verified}");
    // The objects are where the layout says, under the prefix.
    let keys = http(addr, "GET", "/polo-backups?list-type=2&prefix=nightly/polo/manifests/", &[], b"");
    assert!(
        keys.body.contains(&format!("nightly/polo/manifests/{}.json", backup["id"].as_str().unwrap())),
        "{}",
        keys.body
    );

    let restored = source.dir.path().join("restored-s3");
    let report = json_ok(s3(&restored).args(["restore", "--json", "--from", dest, "--endpoint", &moto.endpoint]));
    let epoch = report["epoch"].as_str().unwrap();
    assert_ne!(epoch, source_epoch);
    check_restored(&restored, epoch, &source, &day, &points);
}
