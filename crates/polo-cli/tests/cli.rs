//! End-to-end tests of the real `polo` binary: every test gets a fresh data
//! directory, runs the CLI exactly as a user would, and starts the server on
//! port 0.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;

mod common;
#[path = "cli/photos.rs"]
mod photos;

use common::{add_user, polo};

fn run_with_stdin(mut command: Command, stdin: &str) -> Output {
    let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    // The command may exit before reading stdin (e.g. a duplicate name): a broken pipe is fine.
    let _ = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    child.wait_with_output().unwrap()
}

fn import_json(data_dir: &Path, user: &str, files: &[&Path]) -> (i32, Value) {
    let out = polo(data_dir).args(["import", "--user", user, "--json"]).args(files).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: Value = serde_json::from_str(stdout.trim())
        .unwrap_or_else(|e| panic!("not JSON ({e}): {stdout}\nstderr: {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap_or(-1), summary)
}

fn export(data_dir: &Path, user: &str, format: &str) -> String {
    let out = polo(data_dir).args(["export", "--user", user, "--format", format]).output().unwrap();
    assert!(out.status.success(), "export failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn write(dir: &Path, name: &str, body: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, body).unwrap();
    path
}

const GPX: &str = r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><trkseg>
  <trkpt lat="48.1000000" lon="11.5000000"><ele>520.5</ele><time>2021-06-01T08:00:00Z</time></trkpt>
  <trkpt lat="48.1001000" lon="11.5002000"><time>2021-06-01T08:00:10.250+02:00</time><ele>521</ele></trkpt>
  <trkpt lat="48.1002000" lon="11.5004000"><time>2021-06-01T08:00:20</time></trkpt>
 </trkseg></trk>
</gpx>
"#;

const REC: &str = "2024-03-01T09:03:09Z\t*                 \t{\"_type\":\"location\",\"lat\":52.225,\"lon\":13.332,\"tst\":1709283789,\"acc\":12,\"vel\":36,\"batt\":80}\n\
2024-03-01T09:04:09Z\t*                 \t{\"_type\":\"location\",\"lat\":52.226,\"lon\":13.333,\"tst\":1709283849}\n\
2024-03-01T09:05:09Z\t*                 \tthis line is not json\n";

#[test]
fn serve_starts_migrates_and_answers_health_probes() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = polo(dir.path())
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let addr = wait_for_listen_line(&mut child);
    let (status, body) = http_get(&addr, "/healthz");
    assert_eq!(status, 200, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["status"], "ok");
    let (status, body) = http_get(&addr, "/readyz");
    assert_eq!(status, 200, "{body}");
    assert!(dir.path().join("polo.sqlite").exists(), "the store was created and migrated");
    // Graceful shutdown on SIGTERM.
    let killed = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(killed.success());
    let status = child.wait().unwrap();
    assert!(status.success(), "polo serve exited with {status}");
}

fn wait_for_listen_line(child: &mut Child) -> String {
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("polo listening on http://").nth(1) {
            let addr = rest.trim().to_owned();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return addr;
        }
    }
    panic!("polo serve exited before listening");
}

fn http_get(addr: &str, path: &str) -> (u16, String) {
    let response = common::http(addr, "GET", path, &[], b"");
    (response.status, response.body)
}

#[test]
fn import_is_idempotent_and_export_round_trips_through_every_format() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    add_user(&data, "bob");
    let gpx = write(dir.path(), "track.gpx", GPX);
    let (code, summary) = import_json(&data, "alice", &[&gpx]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["files"][0]["format"], "gpx");
    assert_eq!(summary["files"][0]["points_added"], 3);
    assert_eq!(summary["points_added"], 3);

    let (code, again) = import_json(&data, "alice", &[&gpx]);
    assert_eq!(code, 0);
    assert_eq!(again["points_added"], 0, "re-import adds nothing: {again}");
    assert_eq!(again["duplicates"], 3);

    let original = export(&data, "alice", "geojson");
    for format in ["gpx", "geojson", "csv"] {
        let exported = write(dir.path(), &format!("export.{format}"), &export(&data, "alice", format));
        let target = format!("copy-{format}");
        add_user(&data, &target);
        let (code, summary) = import_json(&data, &target, &[&exported]);
        assert_eq!(code, 0, "{format}: {summary}");
        assert_eq!(summary["points_added"], 3, "{format}: {summary}");
        assert_eq!(export(&data, &target, "geojson"), original, "{format} round trip changed the points");
    }
    // Users never see each other's points.
    let bob = export(&data, "bob", "csv");
    assert_eq!(bob.lines().count(), 1, "only the header: {bob}");
}

#[test]
fn rejected_records_go_to_a_rejects_file_and_exit_code_1() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    let rec = write(dir.path(), "2024-03.rec", REC);
    let (code, summary) = import_json(&data, "alice", &[&rec]);
    assert_eq!(code, 1, "{summary}");
    let file = &summary["files"][0];
    assert_eq!(file["format"], "owntracks-rec");
    assert_eq!(file["points_added"], 2);
    assert_eq!(file["rejected"], 1);
    let rejects_path = file["rejects_file"].as_str().unwrap();
    let rejects = std::fs::read_to_string(rejects_path).unwrap();
    let line: Value = serde_json::from_str(rejects.lines().next().unwrap()).unwrap();
    assert_eq!(line["line"], 3);
    assert!(line["source_file"].as_str().unwrap().ends_with("2024-03.rec"));
    assert!(line["raw"].as_str().unwrap().contains("this line is not json"));
    assert!(!line["reason"].as_str().unwrap().is_empty());
}

#[test]
fn a_file_with_nothing_to_import_fails_and_out_of_range_fields_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    let candidates = write(
        dir.path(),
        "2025_MARCH.json",
        r#"{"timelineObjects":[{"placeVisit":{"otherCandidateLocations":[{"latitudeE7":123533333,"longitudeE7":123533333}],
            "duration":{"startTimestamp":"2025-03-24 20:25:02 +0100"}}}]}"#,
    );
    let (code, summary) = import_json(&data, "alice", &[&candidates]);
    assert_eq!(code, 2, "{summary}");
    let error = summary["files"][0]["error"].as_str().unwrap();
    assert!(error.starts_with("nothing to import") && error.contains("only candidate locations"), "{error}");
    assert_eq!(summary["files"][0]["rejected"], 1);

    let records = write(
        dir.path(),
        "Records.json",
        r#"{"locations":[{"latitudeE7":525121351,"longitudeE7":134320476,"timestamp":"2020-01-01T00:00:00Z","heading":720,"accuracy":-5}]}"#,
    );
    let (code, summary) = import_json(&data, "alice", &[&records]);
    assert_eq!(code, 0, "{summary}");
    assert_eq!(summary["files"][0]["points_added"], 1);
    assert_eq!(summary["files"][0]["out_of_range_fields"]["course"], 1, "{summary}");
    assert_eq!(summary["files"][0]["out_of_range_fields"]["accuracy"], 1, "{summary}");
    let exported = export(&data, "alice", "geojson");
    assert!(exported.contains(r#""heading":720"#) && exported.contains(r#""accuracy":-5"#), "{exported}");
}

#[test]
fn headerless_text_reports_the_columns_it_assumed() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    let text = write(
        dir.path(),
        "trace.txt",
        "62.601234 29.763456 1313136000000 86\n62.601301 29.763512 1313136002000 86.5\n",
    );
    let (code, summary) = import_json(&data, "alice", &[&text]);
    assert_eq!(code, 0, "{summary}");
    let file = &summary["files"][0];
    assert_eq!(file["format"], "headerless-text");
    assert_eq!(file["points_added"], 2);
    let note = file["notes"][0].as_str().unwrap();
    assert!(note.starts_with("columns assumed (space-separated): lat, lon, epoch milliseconds, altitude m"), "{note}");
}

#[test]
fn non_location_files_are_refused_by_name_and_nothing_is_lost() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    let gpx = write(dir.path(), "track.gpx", GPX);
    let settings = write(
        dir.path(),
        "Einstellungen.json",
        r#"{"createdTime":"2019-01-01T00:00:00Z","modifiedTime":"2024-01-01T00:00:00Z","historyEnabled":true,"deviceSettings":[{"deviceTag":1,"reportingEnabled":true}],"retentionWindowDays":540}"#,
    );
    let (code, summary) = import_json(&data, "alice", &[&gpx, &settings]);
    assert_eq!(code, 2, "{summary}");
    assert_eq!(summary["files"][0]["points_added"], 3, "the good file is still imported");
    let error = summary["files"][1]["error"].as_str().unwrap();
    assert!(error.contains("Settings"), "{error}");
}

#[test]
fn zip_archives_report_every_entry() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    let zip_path = dir.path().join("takeout.zip");
    {
        let mut zip = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
        let options = zip::write::SimpleFileOptions::default();
        zip.start_file("Takeout/archive_browser.html", options).unwrap();
        zip.write_all(b"<!DOCTYPE html><html><body>index</body></html>").unwrap();
        zip.start_file("Takeout/tracks/track.gpx", options).unwrap();
        zip.write_all(GPX.as_bytes()).unwrap();
        zip.finish().unwrap();
    }
    let (code, summary) = import_json(&data, "alice", &[&zip_path]);
    assert_eq!(code, 0, "{summary}");
    let files = summary["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "{summary}");
    assert!(files[0]["path"].as_str().unwrap().ends_with("takeout.zip!/Takeout/archive_browser.html"));
    assert!(files[0]["skipped"].as_str().unwrap().contains("HTML"));
    assert_eq!(files[1]["format"], "gpx");
    assert_eq!(files[1]["points_added"], 3);
}

#[test]
fn helpful_errors_for_unknown_users_and_duplicate_names() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let gpx = write(dir.path(), "track.gpx", GPX);
    let out = polo(&data).args(["import", "--user", "nobody"]).arg(&gpx).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("polo user add nobody"));
    add_user(&data, "alice");
    let mut again = polo(&data);
    again.args(["user", "add", "alice", "--password-stdin"]);
    let out = run_with_stdin(again, "another password\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("already exists"));
    let mut short = polo(&data);
    short.args(["user", "add", "carol", "--password-stdin"]);
    let out = run_with_stdin(short, "short\n");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("at least 8"));
}

/// `polo user delete`: asks for the name (a wrong answer deletes nothing),
/// `--yes` skips the question, the only administrator stays, and an unknown
/// user is a clear error.
#[test]
fn users_are_deleted_after_confirmation_but_never_the_last_admin() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    add_user(&data, "bob");
    let gpx = write(dir.path(), "track.gpx", GPX);
    assert_eq!(import_json(&data, "alice", &[&gpx]).1["points_added"], 3);
    let users = || String::from_utf8(polo(&data).args(["user", "list"]).output().unwrap().stdout).unwrap();

    let mut ask = polo(&data);
    ask.args(["user", "delete", "alice"]);
    let out = run_with_stdin(ask, "bob\n");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("3 points") && err.contains("not confirmed"), "{err}");
    assert!(users().contains("alice"));

    let mut ask = polo(&data);
    ask.args(["user", "delete", "alice", "--json"]);
    let out = run_with_stdin(ask, "alice\n");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let summary: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary, serde_json::json!({"name": "alice", "points": 3, "devices": 1}));
    assert!(!users().contains("alice"), "{}", users());

    let out = polo(&data).args(["user", "delete", "alice", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("there is no user \"alice\""));

    let mut admin = polo(&data);
    admin.args(["user", "add", "root", "--admin", "--password-stdin"]);
    assert!(run_with_stdin(admin, "a long password\n").status.success());
    let out = polo(&data).args(["user", "delete", "root", "--yes"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("only administrator"), "{out:?}");
    let out = polo(&data).args(["user", "delete", "bob", "--yes"]).output().unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("deleted user bob"));
}

#[test]
fn a_folder_imports_every_file_under_it_and_skips_what_is_not_location_data() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    let takeout = dir.path().join("Takeout");
    std::fs::create_dir_all(takeout.join("Location History/2021")).unwrap();
    write(&takeout, "archive_browser.html", "<!DOCTYPE html><html><body>Your Takeout</body></html>");
    write(&takeout, ".DS_Store", "\0\0\0\x01Bud1");
    write(&takeout.join("Location History/2021"), "walk.gpx", GPX);
    let (code, summary) = import_json(&data, "alice", &[&takeout]);
    assert_eq!(code, 0, "{summary}");
    let files = summary["files"].as_array().unwrap();
    assert_eq!(files.len(), 2, "hidden files are left out: {summary}");
    // In name order, byte-wise: "Location History" before "archive_browser.html".
    assert!(files[0]["path"].as_str().unwrap().ends_with("Location History/2021/walk.gpx"), "{summary}");
    assert_eq!(files[0]["points_added"], 3, "{summary}");
    assert!(files[1]["path"].as_str().unwrap().ends_with("archive_browser.html"), "{summary}");
    assert!(files[1]["skipped"].as_str().unwrap().starts_with("not location data"), "{summary}");
    assert_eq!(summary["points_added"], 3);
}

/// `polo delete`: a range and a rectangle are deleted, a re-import leaves
/// them out (counted as `deleted_left_out`), `--restore-deleted` brings them
/// back, and bad selections are refused with a message naming the flag.
#[test]
fn deleted_points_stay_deleted_on_reimport_until_restored() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    let gpx = write(dir.path(), "track.gpx", GPX);
    assert_eq!(import_json(&data, "alice", &[&gpx]).1["points_added"], 3);

    let deleted = |args: &[&str]| -> Value {
        let out = polo(&data).args(["delete", "--user", "alice", "--json"]).args(args).output().unwrap();
        assert!(out.status.success(), "polo delete {args:?}: {}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    // The first fix by time, then the second by place.
    assert_eq!(deleted(&["--from", "2021-06-01T08:00:00Z", "--to", "2021-06-01T08:00:01Z"])["deleted"], 1);
    assert_eq!(deleted(&["--bbox", "11.50015,48.10005,11.50025,48.10015"])["deleted"], 1);
    assert_eq!(export(&data, "alice", "csv").lines().count(), 2, "the header and one point");

    let (code, again) = import_json(&data, "alice", &[&gpx]);
    assert_eq!(code, 0, "{again}");
    assert_eq!((again["points_added"].as_u64(), again["deleted_left_out"].as_u64()), (Some(0), Some(2)), "{again}");
    let out =
        polo(&data).args(["import", "--user", "alice", "--json", "--restore-deleted"]).arg(&gpx).output().unwrap();
    let restored: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(restored["points_added"], 2, "{restored}");

    assert_eq!(deleted(&["--all"])["deleted"], 3);
    for (args, flag) in [
        (&["--all", "--device", "phone"][..], "--all"),
        (&[][..], "say what to delete"),
        (&["--bbox", "1,2,3"][..], "--bbox"),
        (&["--from", "2021-06-02", "--to", "2021-06-01"][..], "--to"),
        (&["--device", "watch"][..], "watch"),
    ] {
        let out = polo(&data).args(["delete", "--user", "alice"]).args(args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(flag), "{args:?} should name {flag:?}: {stderr}");
    }
}
