//! The web app in a real browser: seeds a fresh `polo` with `polo import` of
//! fixture files written here (a day with stays, a walk, a bike ride and a
//! drive, and a second phone's lunch walk) and of six months of the realistic
//! life (`polo-life`: two phones, a holiday abroad, teleports, Google
//! Semantic visits), starts `polo serve` on port 0 and runs `web/e2e/run.mjs`,
//! which drives headless Chromium through playwright-core: login, the seeded
//! day's timeline and map with its photos, the review of photo positions
//! (filtered, applied as XMP sidecars beside the scanned files, one refused
//! for another program's sidecar, undone), the map explorer, an import with progress to its
//! summary, device setup, a live position moving after OwnTracks posts, a
//! share link opened without an account, a visit edited and deleted, a day
//! deleted, undone, deleted again and still deleted after a re-import, zones
//! drawn on the map (a circle and a polygon), edited and deleted, a group
//! made and joined through its invitation link by a logged-out user (who logs
//! in on the way), a member made admin and a zone of the group, every
//! other page, the life's checks against its manifest (local times
//! abroad, teleports left out of every total, both phones on one day, first
//! rows within a second), and the exposure check and "who was I with" on a
//! recent day ([`recent_gpx`]): Alice, administrator and health authority,
//! turns exposure checks on and marks Carol as a case; the batch finds Bob;
//! Alice approves with a reason; Bob's page shows his code change; a
//! stranger verifies it pasted, from a photo and from a (fake) camera; and
//! Alice's day shows the hour she spent with Anna. Screenshots of every
//! page, desktop and phone, light and dark, go to `target/e2e-screenshots`
//! (the path is printed).
//!
//! [`oidc_sign_in_in_chromium`] signs in through a real OpenID provider
//! (`oidc-provider` under Node.js, `tests/oidc/`): an account made at the
//! first sign-in, one refused outside the allowed domains, and a password
//! account linked on the account page; its screenshots go to
//! `target/e2e-screenshots-oidc`.
//!
//! [`passkeys_in_chromium`] registers a passkey and signs in with it, alone and
//! as the second factor, with Chromium's virtual authenticator
//! (`web/e2e/passkeys.mjs`); its screenshots go to
//! `target/e2e-screenshots-passkeys`.
//!
//! Needs Node.js, `/usr/bin/chromium` (or `POLO_CHROMIUM`) and the web app's
//! npm packages (installed by the `polo-web` build). Without them the test
//! says so and skips, unless `POLO_REQUIRE_SERVICES=1` (CI), where it fails.

mod common;

use common::add_user;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{basic, free_port, http, polo, run_ok, serve, serve_on, wait_for_timeline};

const DAY: &str = "2024-05-14";
const NEXT_DAY: &str = "2024-05-15";
const HOME: (f64, f64) = (52.520_0, 13.405_0);
const CAFE: (f64, f64) = (52.520_0, 13.422_7);
const OFFICE: (f64, f64) = (52.565_0, 13.422_7);
/// The realistic life's seed (`polo-bench life`'s default).
const LIFE_SEED: u64 = 1;

/// Seconds since midnight UTC of `DAY` (up to the end of the next day) as an RFC 3339 time.
fn at(seconds: u32) -> String {
    let date = if seconds < 86_400 { DAY } else { NEXT_DAY };
    let seconds = seconds % 86_400;
    format!("{date}T{:02}:{:02}:{:02}Z", seconds / 3600, seconds / 60 % 60, seconds % 60)
}

/// Points every `step` seconds from `start` to `end`, moving in a straight
/// line from `from` to `to` (a stay when they are equal, with a few metres
/// of deterministic jitter).
fn leg(points: &mut Vec<(String, f64, f64)>, start: u32, end: u32, step: u32, from: (f64, f64), to: (f64, f64)) {
    let mut t = start;
    while t < end {
        let k = f64::from(t - start) / f64::from(end - start);
        let jitter = if from == to { f64::from(t % 7) * 0.000_01 - 0.000_03 } else { 0.0 };
        points.push((at(t), from.0 + (to.0 - from.0) * k + jitter, from.1 + (to.1 - from.1) * k - jitter));
        t += step;
    }
}

/// The seeded day: home, a walk to a café, a bike ride to the office, a
/// drive home, and the night at home, which the walk of the next morning ends.
fn day_gpx() -> String {
    gpx_of(day_points())
}

/// The seeded file's points from midnight in Berlin (22:00 UTC) on: the
/// next day's, imported again after that day was deleted.
fn next_day_gpx() -> String {
    gpx_of(day_points().into_iter().filter(|(time, _, _)| time.as_str() >= at(22 * 3600).as_str()).collect())
}

fn day_points() -> Vec<(String, f64, f64)> {
    let mut points = Vec::new();
    leg(&mut points, 0, 8 * 3600, 120, HOME, HOME);
    leg(&mut points, 8 * 3600, 8 * 3600 + 900, 10, HOME, CAFE);
    leg(&mut points, 8 * 3600 + 900, 9 * 3600 + 1800, 60, CAFE, CAFE);
    leg(&mut points, 9 * 3600 + 1800, 9 * 3600 + 3000, 10, CAFE, OFFICE);
    leg(&mut points, 9 * 3600 + 3000, 17 * 3600, 120, OFFICE, OFFICE);
    leg(&mut points, 17 * 3600, 17 * 3600 + 600, 5, OFFICE, HOME);
    leg(&mut points, 17 * 3600 + 600, 32 * 3600, 120, HOME, HOME);
    leg(&mut points, 32 * 3600, 32 * 3600 + 900, 10, HOME, CAFE);
    leg(&mut points, 32 * 3600 + 900, 33 * 3600, 60, CAFE, CAFE);
    points
}

/// A second phone's part of the seeded day: lunch near the office, a walk
/// to the park, back. It tracked less of the day than the first one.
fn second_device_gpx() -> String {
    const PARK: (f64, f64) = (52.558_0, 13.410_0);
    let mut points = Vec::new();
    leg(&mut points, 11 * 3600, 12 * 3600, 60, OFFICE, OFFICE);
    leg(&mut points, 12 * 3600, 12 * 3600 + 900, 10, OFFICE, PARK);
    leg(&mut points, 12 * 3600 + 900, 13 * 3600 + 1800, 60, PARK, PARK);
    gpx_of(points)
}

fn gpx_of(points: Vec<(String, f64, f64)>) -> String {
    let mut gpx = String::from(
        "<?xml version=\"1.0\"?>\n<gpx version=\"1.1\" creator=\"polo web e2e\" xmlns=\"http://www.topografix.com/GPX/1/1\"><trk><trkseg>\n",
    );
    for (time, lat, lon) in points {
        writeln!(
            gpx,
            "<trkpt lat=\"{lat:.6}\" lon=\"{lon:.6}\"><ele>{:.1}</ele><time>{time}</time></trkpt>",
            34.0 + lat
        )
        .unwrap();
    }
    gpx.push_str("</trkseg></trk></gpx>\n");
    gpx
}

/// The recent day (UTC) of the exposure and "who was I with" checks: two
/// days ago, so that its exposure window is complete (past the completion
/// delay) and inside the retention period.
fn recent_day() -> (i64, String) {
    let now_s = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs();
    let day = (i64::try_from(now_s).unwrap() / 86_400 - 2) * 86_400;
    (day, polo_domain::Timestamp(day * 1000).to_string()[..10].to_owned())
}

/// A GPX track of one person on the recent day: at `place` from `from_s` to `to_s` seconds after
/// midnight UTC, a fix a minute (a few metres of jitter), after a walk there from `home` and before
/// one back.
fn recent_gpx(day_s: i64, home: (f64, f64), place: (f64, f64), from_s: i64, to_s: i64) -> String {
    let at = |s: i64| polo_domain::Timestamp((day_s + s) * 1000).to_string();
    let mut points = Vec::new();
    let mut t = from_s - 900;
    while t < to_s + 900 {
        let (lat, lon) = if t < from_s {
            let k = (t - (from_s - 900)) as f64 / 900.0;
            (home.0 + (place.0 - home.0) * k, home.1 + (place.1 - home.1) * k)
        } else if t >= to_s {
            let k = (t - to_s) as f64 / 900.0;
            (place.0 + (home.0 - place.0) * k, place.1 + (home.1 - place.1) * k)
        } else {
            let jitter = (t % 5) as f64 * 0.000_01;
            (place.0 + jitter, place.1 - jitter)
        };
        points.push((at(t), lat, lon));
        t += 60;
    }
    gpx_of(points)
}

/// The file uploaded through the imports page: a walk a week later, plus
/// two rows polo must reject (an impossible date, a missing latitude).
fn upload_csv() -> String {
    let mut csv = String::from("time,latitude,longitude\n");
    for i in 0..120 {
        let (h, m, s) = (10 + i / 120, (i / 2) % 60, (i % 2) * 30);
        writeln!(csv, "2024-05-21T{h:02}:{m:02}:{s:02}Z,{:.6},{:.6}", 52.50 + f64::from(i) * 0.0002, 13.40).unwrap();
    }
    csv.push_str("2024-02-30T10:00:00Z,52.5,13.4\n2024-05-21T12:00:00Z,,13.4\n");
    csv
}

/// An administrator (so the account page shows users and instance settings)
/// whose password is `a long password`.
fn add_admin(data: &Path, name: &str) {
    use std::io::Write as _;
    let mut child = polo(data)
        .args(["user", "add", name, "--admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a long password\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "polo user add --admin failed: {}", String::from_utf8_lossy(&out.stderr));
}

fn missing_requirements(web: &Path, chromium: &Path) -> Vec<String> {
    let mut missing = Vec::new();
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => {
            let version = String::from_utf8_lossy(&out.stdout);
            let major: u32 =
                version.trim().trim_start_matches('v').split('.').next().unwrap_or("0").parse().unwrap_or(0);
            if major < 18 {
                missing.push(format!("Node.js 18 or newer (found {})", version.trim()));
            }
        }
        _ => missing.push("Node.js (`node` on PATH)".to_owned()),
    }
    if !chromium.is_file() {
        missing
            .push(format!("Chromium at {} (`apt-get install -y chromium`, or set POLO_CHROMIUM)", chromium.display()));
    }
    if !web.join("node_modules/playwright-core/package.json").is_file() {
        missing.push(format!("the web app's npm packages (`npm --prefix {} ci`)", web.display()));
    }
    missing
}

/// The web app's directory and the browser, or `None` (after saying why) when the browser tests
/// cannot run here.
fn browser_requirements(test: &str) -> Option<(PathBuf, PathBuf)> {
    let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../web");
    let chromium = std::env::var_os("POLO_CHROMIUM").map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    let missing = missing_requirements(&web, &chromium);
    if !missing.is_empty() {
        let list = missing.join("; ");
        assert!(
            std::env::var_os("POLO_REQUIRE_SERVICES").is_none_or(|v| v != "1"),
            "POLO_REQUIRE_SERVICES=1 but the browser tests cannot run, missing: {list}"
        );
        eprintln!("SKIPPED {test}: missing {list}");
        return None;
    }
    Some((web, chromium))
}

/// Runs a node script to its end (at most `limit`) and returns its output; fails the test unless
/// it exits successfully.
fn run_node(mut command: Command, limit: Duration, what: &str) -> String {
    let mut child = command.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("starting node");
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    eprintln!("{out}{err}");
    match status {
        Some(status) => assert!(status.success(), "{what} failed ({status}):\n{out}\n{err}"),
        None => panic!("{what} did not finish within {limit:?}:\n{out}\n{err}"),
    }
    out
}

/// A child process killed when the test ends, however it ends.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `oidc-provider` from `tests/oidc/`, installed from its lock file when needed, listening on
/// `port` with polo's client and the test's accounts.
fn start_provider(port: u16, redirect_uri: &str) -> KillOnDrop {
    use std::io::BufRead as _;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc");
    if !dir.join("node_modules/oidc-provider/package.json").is_file() {
        let status = Command::new("npm").args(["ci", "--no-audit", "--no-fund"]).current_dir(&dir).status();
        assert!(status.is_ok_and(|s| s.success()), "npm ci in {} failed", dir.display());
    }
    let accounts = serde_json::json!({
        "ann": {"email": "ann@example.org", "email_verified": true, "preferred_username": "ann", "groups": ["polo-admins"]},
        "eve": {"email": "eve@evil.example", "email_verified": true, "preferred_username": "eve", "groups": []},
        "bobby": {"email": "bob@elsewhere.net", "email_verified": true, "preferred_username": "bobby", "groups": []},
    });
    let mut child = Command::new("node")
        .arg(dir.join("provider.mjs"))
        .current_dir(&dir)
        .env("OIDC_PORT", port.to_string())
        .env("OIDC_CLIENT_ID", "polo")
        .env("OIDC_CLIENT_SECRET", "a client secret for the test")
        .env("OIDC_REDIRECT_URI", redirect_uri)
        .env("OIDC_ACCOUNTS", accounts.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("starting the OpenID provider");
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let ready = lines.by_ref().map_while(Result::ok).any(|line| line.contains("oidc provider ready"));
    assert!(ready, "the OpenID provider did not start");
    std::thread::spawn(move || for _ in lines {});
    KillOnDrop(child)
}

#[test]
fn passkeys_in_chromium() {
    let Some((web, chromium)) = browser_requirements("passkeys_in_chromium") else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_admin(&data, "ann");
    let server = serve(&data, &["--access-log", "off"]);
    // By name: browsers refuse an IP address as a passkey's site.
    let port = server.addr.rsplit_once(':').unwrap().1;
    let base = format!("http://localhost:{port}");
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../e2e-screenshots-passkeys");
    let mut command = Command::new("node");
    command
        .arg(web.join("e2e/passkeys.mjs"))
        .env("POLO_URL", &base)
        .env("POLO_WEB", &web)
        .env("POLO_CHROMIUM", &chromium)
        .env("POLO_SCREENSHOTS", &screenshots)
        .env("POLO_USER", "ann")
        .env("POLO_PASSWORD", "a long password");
    let out = run_node(command, Duration::from_secs(180), "the passkey browser test");
    eprintln!("passkey screenshots: {}", screenshots.display());
    assert!(out.contains("passkeys e2e: all passed"), "{out}");

    // The audit log has each step: the registration, the sign-in with the passkey alone and the
    // one with it as the second factor, and the removal.
    let audit = http(
        &server.addr,
        "GET",
        "/api/v1/admin/audit?action=auth.&limit=200",
        &[("Authorization", &basic("ann", "a long password"))],
        b"",
    )
    .json();
    let entries = audit["entries"].as_array().unwrap();
    let count = |pred: &dyn Fn(&serde_json::Value) -> bool| entries.iter().filter(|e| pred(e)).count();
    let registered = entries.iter().find(|e| e["action"] == "auth.passkey.register").expect("a registration");
    assert_eq!((registered["subject"].as_str(), registered["detail"]["name"].as_str()), (Some("ann"), Some("Laptop")));
    let id = registered["detail"]["passkey"].as_str().unwrap();
    assert_eq!(
        count(&|e| e["action"] == "auth.login" && e["detail"]["method"] == "passkey" && e["detail"]["passkey"] == id),
        1,
        "{audit}"
    );
    assert_eq!(count(&|e| e["action"] == "auth.login" && e["detail"]["second_factor"] == "passkey"), 1, "{audit}");
    assert_eq!(count(&|e| e["action"] == "auth.passkey.remove" && e["detail"]["passkey"] == id), 1, "{audit}");
    assert_eq!(count(&|e| e["action"] == "auth.login_failed"), 0, "{audit}");
}

#[test]
fn oidc_sign_in_in_chromium() {
    let Some((web, chromium)) = browser_requirements("oidc_sign_in_in_chromium") else { return };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "bob");
    add_admin(&data, "root");
    let (polo_port, provider_port) = (free_port(), free_port());
    let base = format!("http://127.0.0.1:{polo_port}");
    let redirect_uri = format!("{base}/api/v1/auth/oidc/callback");
    let _provider = start_provider(provider_port, &redirect_uri);
    std::fs::write(
        data.join("polo.toml"),
        format!(
            "[oidc]\nissuer = \"http://127.0.0.1:{provider_port}\"\nclient_id = \"polo\"\n\
             client_secret = \"a client secret for the test\"\nredirect_uri = \"{redirect_uri}\"\n\
             scopes = [\"openid\", \"email\", \"profile\", \"groups\"]\nbutton_label = \"Sign in with the test provider\"\n\
             create_accounts = true\nallowed_domains = [\"example.org\"]\nadmin_groups = [\"polo-admins\"]\n"
        ),
    )
    .unwrap();
    let server = serve_on(&data, &format!("127.0.0.1:{polo_port}"), &["--access-log", "off"]);
    let config = http(&server.addr, "GET", "/api/v1/config", &[], b"").json();
    assert_eq!(config["oidc_login"], "Sign in with the test provider");
    assert_eq!(config["password_login"], true);

    // Beside the main gallery, not in it: that test empties its directory when it starts, and the
    // two run at the same time.
    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../e2e-screenshots-oidc");
    let mut command = Command::new("node");
    command
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/oidc/login.mjs"))
        .env("POLO_URL", &base)
        .env("POLO_WEB", &web)
        .env("POLO_CHROMIUM", &chromium)
        .env("POLO_SCREENSHOTS", &screenshots)
        .env("POLO_LINK_USER", "bob")
        .env("POLO_LINK_PASSWORD", "a long password");
    let out = run_node(command, Duration::from_secs(180), "the OIDC browser test");
    eprintln!("oidc screenshots: {}", screenshots.display());
    assert!(out.contains("oidc e2e: all passed"), "{out}");

    // Ann got an account; Eve, outside the allowed domains, none.
    let listed = polo(&data).args(["user", "list", "--json"]).output().unwrap();
    let users: serde_json::Value = serde_json::from_slice(&listed.stdout).unwrap();
    let names: Vec<&str> = users.as_array().unwrap().iter().filter_map(|u| u["name"].as_str()).collect();
    assert!(names.contains(&"ann") && !names.contains(&"eve"), "{names:?}");

    // The audit log tells the story: the account made for Ann, her groups' admin role, the
    // sign-ins through the provider, Eve's refusal with its reason, Bob's link.
    let audit = http(
        &server.addr,
        "GET",
        "/api/v1/admin/audit?action=auth.&limit=200",
        &[("Authorization", &basic("root", "a long password"))],
        b"",
    )
    .json();
    let entries = audit["entries"].as_array().unwrap();
    let find = |action: &str, subject: Option<&str>| {
        entries.iter().find(|e| e["action"] == action && subject.is_none_or(|s| e["subject"] == s)).cloned()
    };
    assert!(find("auth.oidc.account_created", Some("ann")).is_some(), "{audit}");
    assert_eq!(
        find("auth.role.change", Some("ann")).map(|e| e["detail"]["admin"].clone()),
        Some(true.into()),
        "{audit}"
    );
    assert_eq!(find("auth.login", Some("bob")).map(|e| e["detail"]["method"].clone()), Some("oidc".into()), "{audit}");
    assert!(find("auth.oidc.link", Some("bob")).is_some(), "{audit}");
    let refused = find("auth.login_failed", None).expect("eve's refusal");
    let reason = refused["detail"]["reason"].as_str().unwrap();
    assert!(reason.starts_with("eve@evil.example may not have an account here"), "{reason}");
    assert_eq!(refused["detail"]["ip"], "127.0.0.1");
}

#[test]
fn web_app_end_to_end_in_chromium() {
    let Some((web, chromium)) = browser_requirements("web_app_end_to_end_in_chromium") else { return };

    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_admin(&data, "alice");
    let day_file = dir.path().join("day.gpx");
    std::fs::write(&day_file, day_gpx()).unwrap();
    let upload = dir.path().join("walk-with-bad-rows.csv");
    std::fs::write(&upload, upload_csv()).unwrap();
    run_ok(polo(&data).args(["import", "--user", "alice", "--device", "phone"]).arg(&day_file));
    let reimport = dir.path().join("next-day.gpx");
    std::fs::write(&reimport, next_day_gpx()).unwrap();
    let second_file = dir.path().join("tablet.gpx");
    std::fs::write(&second_file, second_device_gpx()).unwrap();
    run_ok(polo(&data).args(["import", "--user", "alice", "--device", "tablet"]).arg(&second_file));
    // The realistic life's first six months, imported as a user would: the whole folder.
    let life_dir = dir.path().join("life");
    let options = polo_life::LifeOptions { seed: LIFE_SEED, scale: polo_life::Scale::Small, start: None };
    let manifest = polo_life::write(&life_dir, &options).expect("writing the life");
    let manifest_file = dir.path().join("life.manifest.json");
    std::fs::write(&manifest_file, manifest.to_json()).unwrap();
    // Its deliberately broken records are rejected and reported: exit status 1, "some records were rejected".
    let imported = polo(&data).args(["import", "--user", "alice"]).arg(&life_dir).output().unwrap();
    let summary = String::from_utf8_lossy(&imported.stdout);
    assert_eq!(imported.status.code(), Some(1), "{summary}{}", String::from_utf8_lossy(&imported.stderr));
    let rejected = format!("{} rejected (see", manifest.injected_rejects.len());
    assert!(summary.contains(&rejected), "the life's {rejected}:\n{summary}");

    // The recent day: Carol and Bob forty minutes at one table of the café (Carol becomes a case,
    // Bob her contact), and Alice an hour there with Anna, her friend (both share with each other,
    // which the browser test sets up).
    let (recent_s, recent) = recent_day();
    for name in ["bob", "carol", "anna"] {
        add_user(&data, name);
    }
    let role = polo(&data).args(["user", "role", "alice", "health-authority"]).output().unwrap();
    assert!(role.status.success(), "{}", String::from_utf8_lossy(&role.stderr));
    for (name, home, from, to) in [
        ("carol", OFFICE, 14 * 3600, 14 * 3600 + 2400),
        ("bob", HOME, 14 * 3600, 14 * 3600 + 2400),
        ("alice", HOME, 10 * 3600, 11 * 3600),
        ("anna", OFFICE, 10 * 3600, 11 * 3600),
    ] {
        let file = dir.path().join(format!("recent-{name}.gpx"));
        std::fs::write(&file, recent_gpx(recent_s, home, CAFE, from, to)).unwrap();
        run_ok(polo(&data).args(["import", "--user", name, "--device", "phone"]).arg(&file));
    }

    // Alice's photos of the seeded day, scanned into her library: at the café without a position
    // (placed from her history), at the office with its own, a video on the way home.
    let photos = dir.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let utc = |seconds: u32| polo_domain::time::parse_timestamp(&at(seconds)).unwrap().time;
    let taken = |seconds: u32, position: Option<(f64, f64)>| polo_photos::synthetic::Spec {
        wall: Some(polo_domain::Timestamp(utc(seconds).0 + 2 * 3_600_000)),
        offset_minutes: Some(120),
        position: position.map(|(lat, lon)| polo_domain::Coord::from_degrees(lat, lon).unwrap()),
        ..Default::default()
    };
    let jpeg = |spec| polo_photos::synthetic::image(polo_photos::synthetic::ImageFormat::Jpeg, &spec);
    std::fs::write(photos.join("IMG_cafe.jpg"), jpeg(taken(8 * 3600 + 1800, None))).unwrap();
    std::fs::write(photos.join("IMG_office.jpg"), jpeg(taken(12 * 3600, Some(OFFICE)))).unwrap();
    let video = polo_photos::synthetic::Spec { wall: Some(utc(17 * 3600 + 300)), ..Default::default() };
    std::fs::write(
        photos.join("walk.mp4"),
        polo_photos::synthetic::video(polo_photos::synthetic::VideoFormat::Mp4, &video),
    )
    .unwrap();
    // Two more without a position the next morning, after the phone's last fix: for the review
    // page, one of medium confidence (11 minutes after the fix), one of low (41 minutes after), the
    // latter with a sidecar of another program beside it, which polo must not overwrite.
    std::fs::write(photos.join("IMG_morning.jpg"), jpeg(taken(33 * 3600 + 600, None))).unwrap();
    std::fs::write(photos.join("IMG_later.jpg"), jpeg(taken(33 * 3600 + 2400, None))).unwrap();
    std::fs::write(photos.join("IMG_later.xmp"), "<x:xmpmeta>darktable's edits</x:xmpmeta>\n").unwrap();
    run_ok(polo(&data).args(["photos", "scan", "--user", "alice"]).arg(&photos));

    let server = serve(&data, &["--access-log", "off"]);
    let base = format!("http://{}", server.addr);
    wait_for_timeline(&server.addr, &basic("alice", "a long password"));

    let screenshots = Path::new(env!("CARGO_TARGET_TMPDIR")).join("../e2e-screenshots");
    let _ = std::fs::remove_dir_all(&screenshots);
    let mut child = Command::new("node")
        .arg(web.join("e2e/run.mjs"))
        .current_dir(&web)
        .env("POLO_URL", &base)
        .env("POLO_USER", "alice")
        .env("POLO_PASSWORD", "a long password")
        .env("POLO_DAY", DAY)
        .env("POLO_RECENT_DAY", &recent)
        .env("POLO_OTHER_PASSWORD", "a long password")
        .env("POLO_UPLOAD", &upload)
        .env("POLO_LIFE_MANIFEST", &manifest_file)
        .env("POLO_REIMPORT", &reimport)
        .env("POLO_SCREENSHOTS", &screenshots)
        .env("POLO_PHOTOS", &photos)
        .env("POLO_CHROMIUM", &chromium)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting node");
    let (stdout, stderr) = (child.stdout.take().unwrap(), child.stderr.take().unwrap());
    let read = |mut pipe: Box<dyn std::io::Read + Send>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            text
        })
    };
    let (out, err) = (read(Box::new(stdout)), read(Box::new(stderr)));
    let deadline = Instant::now() + Duration::from_secs(420);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break Some(status);
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let (out, err) = (out.join().unwrap(), err.join().unwrap());
    eprintln!("{out}{err}");
    eprintln!("web e2e screenshots: {}", screenshots.canonicalize().unwrap_or(screenshots.clone()).display());
    match status {
        Some(status) => assert!(status.success(), "the browser tests failed ({status}):\n{out}\n{err}"),
        None => panic!("the browser tests did not finish within 420 s:\n{out}\n{err}"),
    }
    assert!(out.contains("e2e: all passed"), "{out}");
}
