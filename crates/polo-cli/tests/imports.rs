//! File imports over HTTP end to end: the real binary on port 0 receives a
//! hand-built multipart upload, the job is polled until it ends, and the
//! points are read back through the query API. And imports (CLI and HTTP)
//! on a disk that fills up, on a small tmpfs the tests mount.

mod common;

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Response, add_user, basic, http, polo, serve};
use serde_json::Value;

const GPX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><trkseg>
  <trkpt lat="48.1000000" lon="11.5000000"><ele>520.5</ele><time>2021-06-01T08:00:00Z</time></trkpt>
  <trkpt lat="48.1001000" lon="11.5002000"><time>2021-06-01T08:00:10.250+02:00</time><ele>521</ele></trkpt>
  <trkpt lat="48.1002000" lon="11.5004000"><time>2021-06-01T08:00:20</time></trkpt>
 </trkseg></trk>
</gpx>
"#;

const REC: &str = "2024-03-01T09:03:09Z\t*                 \t{\"_type\":\"location\",\"lat\":52.225,\"lon\":13.332,\"tst\":1709283789,\"acc\":12}\n\
2024-03-01T09:04:09Z\t*                 \t{\"_type\":\"location\",\"lat\":52.226,\"lon\":13.333,\"tst\":1709283849}\n\
2024-03-01T09:05:09Z\t*                 \tthis line is not json\n";

const BOUNDARY: &str = "----polo-test-boundary-7MA4YWxkTrZu0gW";

/// A `multipart/form-data` body: a text part (which the server ignores) and the file part.
fn multipart(file_name: &str, content: &[u8]) -> Vec<u8> {
    let mut body = Vec::with_capacity(content.len() + 512);
    body.extend_from_slice(
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nfrom the test\r\n").as_bytes(),
    );
    body.extend_from_slice(
        format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{file_name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n"
        )
        .as_bytes(),
    );
    body.extend_from_slice(content);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body
}

fn upload(addr: &str, auth: &str, query: &str, file_name: &str, content: &[u8]) -> Response {
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let headers = [("Authorization", auth), ("Content-Type", content_type.as_str())];
    http(addr, "POST", &format!("/api/v1/imports{query}"), &headers, &multipart(file_name, content))
}

/// Uploads and polls the job until it has ended; returns its final status.
fn import(addr: &str, auth: &str, query: &str, file_name: &str, content: &[u8]) -> Value {
    let response = upload(addr, auth, query, file_name, content);
    assert_eq!(response.status, 202, "{}", response.body);
    let accepted = response.json();
    assert_eq!(accepted["status"], "queued");
    let url = accepted["url"].as_str().unwrap().to_owned();
    assert_eq!(url, format!("/api/v1/imports/{}", accepted["id"].as_str().unwrap()));
    assert_eq!(response.header("location"), Some(url.as_str()));
    wait(addr, auth, &url)
}

fn wait(addr: &str, auth: &str, url: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let response = http(addr, "GET", url, &[("Authorization", auth)], b"");
        assert_eq!(response.status, 200, "{}", response.body);
        let job = response.json();
        match job["status"].as_str().unwrap() {
            "done" | "failed" => return job,
            "queued" | "running" => {}
            other => panic!("unknown status {other}: {job}"),
        }
        assert!(Instant::now() < deadline, "the job did not finish: {job}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_gpx_upload_is_imported_and_read_back() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    add_user(dir.path(), "mallory");
    let server = serve(dir.path(), &[]);
    let jane = basic("jane", "a long password");
    let job = import(&server.addr, &jane, "?device=garmin", "morning ride.gpx", GPX.as_bytes());
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["file_name"], "morning ride.gpx");
    assert_eq!(job["points_added"], 3, "{job}");
    assert_eq!(job["duplicates"], 0);
    assert_eq!(job["rejected"], 0);
    assert_eq!(job["bytes_total"], GPX.len());
    assert_eq!(job["bytes_read"], GPX.len());
    assert!(job.get("rejects_file").is_none() && job.get("error").is_none(), "{job}");
    assert!(job["started"].as_str().is_some() && job["finished"].as_str().is_some(), "{job}");
    let files = job["files"].as_array().unwrap();
    assert_eq!(files.len(), 1);
    assert_eq!(files[0]["format"], "gpx");
    assert_eq!(files[0]["path"], "morning ride.gpx");
    assert_eq!(files[0]["points_added"], 3);

    let read = http(
        &server.addr,
        "GET",
        "/api/v1/points?from=2021-06-01T00:00:00Z&to=2021-06-02T00:00:00Z",
        &[("Authorization", jane.as_str())],
        b"",
    );
    assert_eq!(read.status, 200, "{}", read.body);
    let points = read.json()["points"].as_array().unwrap().clone();
    assert_eq!(points.len(), 3, "{}", read.body);
    assert!(points.iter().all(|p| p["device"] == "garmin"), "{}", read.body);

    // The same file again adds nothing; the list shows both jobs, newest first.
    let again = import(&server.addr, &jane, "?device=garmin", "morning ride.gpx", GPX.as_bytes());
    assert_eq!((again["points_added"].as_u64(), again["duplicates"].as_u64()), (Some(0), Some(3)), "{again}");
    let list = http(&server.addr, "GET", "/api/v1/imports", &[("Authorization", jane.as_str())], b"").json();
    let ids: Vec<&str> = list["imports"].as_array().unwrap().iter().map(|j| j["id"].as_str().unwrap()).collect();
    assert_eq!(ids, [again["id"].as_str().unwrap(), job["id"].as_str().unwrap()]);

    // Another user sees none of it.
    let mallory = basic("mallory", "a long password");
    let url = job["url"].as_str().unwrap();
    let theirs = http(&server.addr, "GET", url, &[("Authorization", mallory.as_str())], b"");
    assert_eq!(theirs.status, 404, "{}", theirs.body);
    assert_eq!(theirs.json()["code"], "not_found");
    let empty = http(&server.addr, "GET", "/api/v1/imports", &[("Authorization", mallory.as_str())], b"").json();
    assert_eq!(empty["imports"].as_array().unwrap().len(), 0);
    // Without credentials: 401; the spool files are gone.
    assert_eq!(http(&server.addr, "GET", url, &[], b"").status, 401);
    assert_eq!(upload(&server.addr, "Basic bm9ib2R5Og==", "", "x.gpx", GPX.as_bytes()).status, 401);
    let spooled = std::fs::read_dir(dir.path().join("uploads")).unwrap().count();
    assert_eq!(spooled, 0, "uploads are deleted once imported");
}

#[test]
fn rejected_records_can_be_fetched_and_refusals_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let server = serve(dir.path(), &[]);
    let jane = basic("jane", "a long password");

    let job = import(&server.addr, &jane, "", "2024-03.rec", REC.as_bytes());
    assert_eq!(job["status"], "done", "{job}");
    assert_eq!(job["points_added"], 2, "{job}");
    assert_eq!(job["rejected"], 1, "{job}");
    let rejects_url = format!("{}/rejects", job["url"].as_str().unwrap());
    assert_eq!(job["rejects_file"], rejects_url.as_str());
    assert_eq!(job["files"][0]["format"], "owntracks-rec");
    assert_eq!(job["files"][0]["rejects_file"], rejects_url.as_str());
    let rejects = http(&server.addr, "GET", &rejects_url, &[("Authorization", jane.as_str())], b"");
    assert_eq!(rejects.status, 200, "{}", rejects.body);
    assert_eq!(rejects.header("content-type"), Some("application/x-ndjson"));
    let lines: Vec<Value> = rejects.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 1, "{}", rejects.body);
    assert_eq!(lines[0]["line"], 3);
    assert_eq!(lines[0]["source_file"], "2024-03.rec");
    assert!(lines[0]["raw"].as_str().unwrap().contains("this line is not json"));

    // A clean job has no rejects to fetch.
    let clean = import(&server.addr, &jane, "", "track.gpx", GPX.as_bytes());
    let none = http(
        &server.addr,
        "GET",
        &format!("{}/rejects", clean["url"].as_str().unwrap()),
        &[("Authorization", jane.as_str())],
        b"",
    );
    assert_eq!(none.status, 404, "{}", none.body);

    // Not location data: the job fails and says what the file is.
    let settings = br#"{"createdTime":"2019-01-01T00:00:00Z","modifiedTime":"2024-01-01T00:00:00Z","historyEnabled":true,"deviceSettings":[{"deviceTag":1,"reportingEnabled":true}],"retentionWindowDays":540}"#;
    let refused = import(&server.addr, &jane, "", "Einstellungen.json", settings);
    assert_eq!(refused["status"], "failed", "{refused}");
    assert_eq!(refused["points_added"], 0);
    let error = refused["error"].as_str().unwrap();
    assert!(error.contains("Settings"), "{error}");
    assert!(refused["files"][0]["error"].as_str().unwrap().contains("Settings"), "{refused}");

    // A body that is not multipart, or has no file part, is a 400.
    let plain = http(
        &server.addr,
        "POST",
        "/api/v1/imports",
        &[("Authorization", jane.as_str()), ("Content-Type", "application/gpx+xml")],
        GPX.as_bytes(),
    );
    assert_eq!(plain.status, 400, "{}", plain.body);
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    let no_file =
        format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"note\"\r\n\r\nhi\r\n--{BOUNDARY}--\r\n");
    let no_file = http(
        &server.addr,
        "POST",
        "/api/v1/imports",
        &[("Authorization", jane.as_str()), ("Content-Type", content_type.as_str())],
        no_file.as_bytes(),
    );
    assert_eq!(no_file.status, 400, "{}", no_file.body);
    assert_eq!(no_file.json()["code"], "bad_request");
}

fn status_kb(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A 50 MB upload streams to disk: the server's memory does not grow with it.
#[test]
#[cfg(target_os = "linux")]
fn a_large_upload_is_not_buffered_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    add_user(dir.path(), "jane");
    let server = serve(dir.path(), &[]);
    let jane = basic("jane", "a long password");
    // Warm up: the first request verifies the password and starts the worker threads.
    let warm = import(&server.addr, &jane, "", "track.gpx", GPX.as_bytes());
    assert_eq!(warm["status"], "done");
    // 50 MB that the importer refuses after sniffing its first bytes, so
    // what is measured is receiving and spooling the upload.
    let mut content = b"%PDF-1.7\n".to_vec();
    content.resize(50 << 20, b'x');
    let (rss_before, peak_before) = (status_kb(server.pid(), "VmRSS:"), status_kb(server.pid(), "VmHWM:"));
    let job = import(&server.addr, &jane, "", "big.pdf", &content);
    let (rss_after, peak_after) = (status_kb(server.pid(), "VmRSS:"), status_kb(server.pid(), "VmHWM:"));
    eprintln!("server RSS {rss_before} kB -> {rss_after} kB, peak {peak_before} kB -> {peak_after} kB");
    assert_eq!(job["status"], "failed", "{job}");
    assert_eq!(job["bytes_total"], 50 << 20);
    assert!(job["error"].as_str().unwrap().contains("PDF"), "{job}");
    assert!(rss_after.saturating_sub(rss_before) < 20 * 1024, "RSS grew {rss_before} -> {rss_after} kB");
    assert!(
        peak_after.saturating_sub(rss_before.max(peak_before)) < 20 * 1024,
        "peak {peak_before} -> {peak_after} kB"
    );
}

/// A tmpfs of a few MB mounted for one test, unmounted when dropped (after
/// the server, which is declared later and so dropped first).
struct SmallDisk {
    dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Mounts one, or says why not (mounting needs root or CAP_SYS_ADMIN)
    /// and returns `None`, so the test is skipped visibly.
    fn mount(size: &str, test: &str) -> Option<Self> {
        let dir = tempfile::tempdir().unwrap();
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size},mode=0755"), "polo-test"])
            .arg(dir.path())
            .stderr(Stdio::piped())
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Self { dir }),
            Ok(out) => {
                eprintln!("SKIPPED {test}: cannot mount a tmpfs: {}", String::from_utf8_lossy(&out.stderr).trim());
                None
            }
            Err(e) => {
                eprintln!("SKIPPED {test}: cannot run mount: {e}");
                None
            }
        }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    fn filler(&self) -> PathBuf {
        self.path().join("filler")
    }

    /// Fills the file system to the last byte (appending to the filler file).
    fn fill(&self) {
        let mut file = std::fs::OpenOptions::new().create(true).append(true).open(self.filler()).unwrap();
        for chunk in [1 << 20, 4096, 1] {
            let block = vec![0xa5u8; chunk];
            loop {
                match file.write_all(&block) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => panic!("filling the disk: {e}"),
                }
            }
        }
    }

    /// Frees `bytes` of the filler.
    fn free(&self, bytes: u64) {
        let file = std::fs::OpenOptions::new().write(true).open(self.filler()).unwrap();
        let len = file.metadata().unwrap().len();
        file.set_len(len.saturating_sub(bytes)).unwrap();
    }

    /// Removes the filler: the disk has room again.
    fn empty(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let unmounted = Command::new("umount").arg(self.path()).status().is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process that outlived its test): detach it anyway.
            let _ = Command::new("umount").arg("-l").arg(self.path()).status();
        }
    }
}

/// A CSV track of `n` points a second apart, jittered so that the store
/// cannot compress them to nothing; `start` is epoch seconds.
fn csv_track(n: u32, start: u32) -> String {
    let mut text = String::from("time,lat,lon,alt\n");
    let mut seed = 0x9e37_79b9_u32 ^ start;
    for i in 0..n {
        seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let lat = 48.0 + f64::from(seed % 1_000_000) / 1e7;
        let lon = 11.0 + f64::from((seed >> 7) % 1_000_000) / 1e7;
        let _ = writeln!(text, "{},{lat:.7},{lon:.7},{}", start + i, seed % 2000);
    }
    text
}

/// Waits for `child` at most `within`; kills it and fails when it does not end.
fn wait_for(mut child: std::process::Child, within: Duration, what: &str) -> std::process::Output {
    let deadline = Instant::now() + within;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what} did not exit within {within:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn exported_points(data: &Path) -> usize {
    let out = polo(data).args(["export", "--user", "jane", "--format", "csv"]).output().unwrap();
    assert!(out.status.success(), "export failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().count() - 1
}

/// `polo import` on a disk that fills up used to wait for ever on a writer
/// thread that had died. Now the file says `disk full` and names the store,
/// the files after it are not attempted, the exit status is 2, and what was
/// stored before is intact.
#[test]
#[cfg(target_os = "linux")]
fn polo_import_on_a_full_disk_says_so_and_exits_2() {
    let Some(disk) = SmallDisk::mount("16m", "polo_import_on_a_full_disk_says_so_and_exits_2") else { return };
    let data = disk.path().join("data");
    let inputs = tempfile::tempdir().unwrap();
    let first = inputs.path().join("first.gpx");
    std::fs::write(&first, GPX).unwrap();
    let big = inputs.path().join("big.csv");
    std::fs::write(&big, csv_track(150_000, 1_650_000_000)).unwrap();
    add_user(&data, "jane");
    common::run_ok(polo(&data).args(["import", "--user", "jane"]).arg(&first));

    disk.fill();
    // Room to open the store and a little more, not for 150,000 points.
    disk.free(256 << 10);
    let child = polo(&data)
        .args(["import", "--json", "--user", "jane"])
        .arg(&big)
        .arg(&first)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = wait_for(child, Duration::from_secs(120), "polo import");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let store = data.join("polo.sqlite");
    let message = format!("disk full: the store at {} could not be written", store.display());
    assert!(stderr.contains(&format!("polo: {message}")), "{stderr}");
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let files = report["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{report}");
    let error = files[0]["error"].as_str().unwrap();
    assert_eq!(error, format!("storing failed, the rest of the file was not stored: {message}"));
    assert_eq!(files[1]["error"].as_str().unwrap(), format!("not imported: {message}"));
    let stored = files[0]["points_added"].as_u64().unwrap();
    assert!(stored < 150_000, "{report}");

    // With room again, everything stored before (and counted) is there.
    disk.empty();
    assert_eq!(exported_points(&data) as u64, 3 + stored);
}

/// `polo serve` on a disk that fills up: the import job fails with the
/// reason (it used to stay `running`, and every later job `queued`), live
/// points are not acknowledged unless stored, `/readyz` is 503 until there
/// is room again, later jobs run, and SIGTERM ends the process in time.
#[test]
#[cfg(target_os = "linux")]
fn polo_serve_on_a_full_disk_fails_the_job_is_not_ready_and_recovers() {
    let test = "polo_serve_on_a_full_disk_fails_the_job_is_not_ready_and_recovers";
    let Some(disk) = SmallDisk::mount("16m", test) else { return };
    let data = disk.path().join("data");
    add_user(&data, "jane");
    // Uploads spool under the data directory; here they go elsewhere, so
    // that a finished job's spool file does not free the full disk.
    let spool = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(spool.path(), data.join("uploads")).unwrap();
    let mut server = serve(&data, &[]);
    let jane = basic("jane", "a long password");
    let warm = import(&server.addr, &jane, "", "track.gpx", GPX.as_bytes());
    assert_eq!(warm["status"], "done", "{warm}");
    let ready = http(&server.addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200, "{}", ready.body);

    disk.fill();
    // Import jobs are kept in the store: on a full disk the upload is
    // refused at once (the job cannot be recorded), or, when the record
    // still fits, the job fails with the reason.
    let big = csv_track(150_000, 1_650_000_000);
    let refused = upload(&server.addr, &jane, "", "big.csv", big.as_bytes());
    let failed_job_stored = if refused.status == 503 {
        assert!(refused.body.contains("disk full"), "{}", refused.body);
        0
    } else {
        assert_eq!(refused.status, 202, "{}", refused.body);
        let job = wait(&server.addr, &jane, refused.json()["url"].as_str().unwrap());
        assert_eq!(job["status"], "failed", "{job}");
        let store = data.join("polo.sqlite");
        let error = job["error"].as_str().unwrap();
        assert!(error.contains("disk full"), "{error} (store {})", store.display());
        job["points_added"].as_u64().unwrap()
    };
    let ready = http(&server.addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.json()["reason"], "disk full: the store cannot be written");

    // Live points: refused with 503, or (should SQLite fit them into WAL
    // space it had written before) stored. Never acknowledged and lost.
    let live: Vec<Value> = (0..20_000)
        .map(|i| serde_json::json!({"time": 1_700_000_000 + i, "lat": 48.1 + f64::from(i % 977) * 1e-4, "lon": 11.5 + f64::from(i % 613) * 1e-4}))
        .collect();
    let body = serde_json::to_vec(&live).unwrap();
    let headers = [("Authorization", jane.as_str()), ("Content-Type", "application/json")];
    let answer = http(&server.addr, "POST", "/api/v1/points", &headers, &body);
    let live_stored = match answer.status {
        503 => {
            assert_eq!(answer.json()["code"], "unavailable");
            0
        }
        // Acknowledged, so stored: counted in the export below.
        200 => answer.json()["added"].as_u64().unwrap(),
        other => panic!("live ingest on a full disk answered {other}: {}", answer.body),
    };
    eprintln!("live ingest on the full disk answered {}", answer.status);

    // Room again: ready without waiting for a write, and the next job runs.
    disk.empty();
    let ready = http(&server.addr, "GET", "/readyz", &[], b"");
    assert_eq!(ready.status, 200, "{}", ready.body);
    let after = import(&server.addr, &jane, "", "later.csv", csv_track(2000, 1_660_000_000).as_bytes());
    assert_eq!(after["status"], "done", "{after}");
    assert_eq!(after["points_added"], 2000, "{after}");

    let status = server.terminate(polo_server::SHUTDOWN_GRACE).expect("polo serve did not exit after SIGTERM");
    assert!(status.success(), "{status:?}");
    // Everything acknowledged or counted is stored.
    assert_eq!(exported_points(&data) as u64, 3 + failed_job_stored + live_stored + 2000);
}
