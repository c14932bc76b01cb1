//! `polo photos scan | geotag | undo` on a folder of photos made for the
//! test, placed by a history imported as GPX (UTC times, a walk through
//! Lübeck on a July morning, local time UTC+2).

use polo_domain::{Coord, Timestamp};
use polo_photos::sidecar::{read_position, sidecar_path};
use polo_photos::synthetic::{ImageFormat, Spec, VideoFormat, image, video};
use serde_json::Value;

use super::common::{add_user, polo};

/// A UTC time on 2024-07-14.
fn utc(h: u32, m: u32) -> Timestamp {
    Timestamp::from_civil(2024, 7, 14, h, m, 0, 0).unwrap()
}

/// The walk: a fix a minute from 10:00 to 11:00 UTC, 80 m further north each minute.
fn position_at_minute(minute: f64) -> Coord {
    Coord::from_degrees(53.8655 + minute * 80.0 / 111_195.0, 10.6866).unwrap()
}

fn history_gpx() -> String {
    let mut gpx = String::from(
        "<?xml version=\"1.0\"?>\n<gpx version=\"1.1\" creator=\"test\" xmlns=\"http://www.topografix.com/GPX/1/1\"><trk><trkseg>\n",
    );
    for minute in 0..=60 {
        let c = position_at_minute(f64::from(minute));
        let time = Timestamp(utc(10, 0).0 + i64::from(minute) * 60_000).to_rfc3339(None);
        gpx.push_str(&format!("<trkpt lat=\"{:.7}\" lon=\"{:.7}\"><time>{time}</time></trkpt>\n", c.lat(), c.lon()));
    }
    gpx.push_str("</trkseg></trk></gpx>\n");
    gpx
}

fn records(stdout: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(stdout).lines().map(|l| serde_json::from_str(l).unwrap()).collect()
}

fn by_name<'a>(records: &'a [Value], name: &str) -> &'a Value {
    records
        .iter()
        .find(|r| r["path"].as_str().is_some_and(|p| p.ends_with(name)))
        .unwrap_or_else(|| panic!("no record for {name}: {records:?}"))
}

fn distance_m(a: Coord, b: Coord) -> f64 {
    polo_timeline::geo::coord_distance_m(a, b)
}

#[test]
fn photos_are_placed_by_the_history_written_as_sidecars_and_undone() {
    let data = tempfile::tempdir().unwrap();
    add_user(data.path(), "anna");
    let gpx = data.path().join("walk.gpx");
    std::fs::write(&gpx, history_gpx()).unwrap();
    let out = polo(data.path()).args(["import", "--user", "anna"]).arg(&gpx).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let photos = tempfile::tempdir().unwrap();
    let dir = photos.path();
    std::fs::create_dir(dir.join("2024-07")).unwrap();
    // 12:30 on the camera's clock, no offset: 10:30 UTC, half-way along the walk.
    let bare = image(ImageFormat::Jpeg, &Spec { wall: Some(Timestamp(utc(12, 30).0)), ..Spec::default() });
    std::fs::write(dir.join("2024-07/IMG_0001.jpg"), &bare).unwrap();
    // A photo with a position of its own.
    let own = Spec {
        wall: Some(utc(12, 40)),
        offset_minutes: Some(120),
        position: Some(Coord::from_degrees(53.87, 10.69).unwrap()),
        ..Spec::default()
    };
    std::fs::write(dir.join("2024-07/IMG_0002.jpg"), image(ImageFormat::Jpeg, &own)).unwrap();
    // A wall-clock time with a position of its own: New York's offset (EDT), whatever the history says.
    let new_york = Spec {
        wall: Some(utc(9, 0)),
        position: Some(Coord::from_degrees(40.7128, -74.006).unwrap()),
        ..Spec::default()
    };
    std::fs::write(dir.join("2024-07/IMG_0005.jpg"), image(ImageFormat::Jpeg, &new_york)).unwrap();
    // A day with no history.
    let elsewhere =
        Spec { wall: Some(Timestamp(utc(12, 0).0 + 30 * 86_400_000)), offset_minutes: Some(120), ..Spec::default() };
    std::fs::write(dir.join("2024-07/IMG_0003.jpg"), image(ImageFormat::Jpeg, &elsewhere)).unwrap();
    // A video: its creation time is UTC, 10:15.
    std::fs::write(
        dir.join("2024-07/clip.mp4"),
        video(VideoFormat::Mp4, &Spec { wall: Some(utc(10, 15)), ..Spec::default() }),
    )
    .unwrap();
    // A photo that darktable already keeps a sidecar for.
    std::fs::write(
        dir.join("2024-07/IMG_0004.jpg"),
        image(ImageFormat::Jpeg, &Spec { wall: Some(utc(12, 45)), offset_minutes: Some(120), ..Spec::default() }),
    )
    .unwrap();
    std::fs::write(dir.join("2024-07/IMG_0004.xmp"), "<x:xmpmeta>darktable</x:xmpmeta>").unwrap();
    std::fs::write(dir.join("2024-07/broken.jpg"), b"not a photo").unwrap();
    std::fs::write(dir.join("notes.txt"), b"holiday").unwrap();

    let scan = polo(data.path()).args(["photos", "scan", "--user", "anna", "--json"]).arg(dir).output().unwrap();
    assert_eq!(scan.status.code(), Some(1), "an unreadable file makes the exit code 1");
    let found = records(&scan.stdout);
    let first = by_name(&found, "IMG_0001.jpg");
    assert_eq!(first["taken"], "2024-07-14T12:30:00.000+02:00");
    assert_eq!(first["offset_from"], "history");
    assert_eq!(first["position_from"], "history");
    assert_eq!(first["confidence"], "high");
    assert_eq!(first["moving"], true);
    let proposed =
        Coord::from_degrees(first["position"]["lat"].as_f64().unwrap(), first["position"]["lon"].as_f64().unwrap())
            .unwrap();
    assert!(distance_m(proposed, position_at_minute(30.0)) < 1.0, "{first}");
    assert_eq!(by_name(&found, "IMG_0002.jpg")["position_from"], "file");
    let new_york = by_name(&found, "IMG_0005.jpg");
    assert_eq!(
        (new_york["taken"].as_str(), new_york["offset_from"].as_str()),
        (Some("2024-07-14T09:00:00.000-04:00"), Some("position"))
    );
    let third = by_name(&found, "IMG_0003.jpg");
    assert_eq!((third["position"].is_null(), third["offset_from"].as_str()), (true, Some("file")));
    let clip = by_name(&found, "clip.mp4");
    assert_eq!((clip["kind"].as_str(), clip["confidence"].as_str()), (Some("video"), Some("high")));
    // Its UTC creation time, shown in the local time of the history (Lübeck's, from its time zone).
    assert_eq!(
        (clip["taken"].as_str(), clip["offset_from"].as_str()),
        (Some("2024-07-14T12:15:00.000+02:00"), Some("history"))
    );
    let error = found.iter().find(|r| r["error"].is_string()).expect("the broken file is reported");
    assert!(error["error"].as_str().unwrap().contains("broken.jpg"), "{error}");
    let summary = &found.last().unwrap()["summary"];
    assert_eq!(summary["photos"], 6);
    assert_eq!(summary["unreadable"], 1);
    assert_eq!(summary["not_photos"], 2, "notes.txt and darktable's sidecar");
    assert_eq!(summary["proposed"]["high"], 3, "{summary}");
    assert!(!dir.join("2024-07/IMG_0001.jpg.xmp").exists(), "scan writes nothing");
    // …beside the photos: it adds them to Anna's library, which the timeline and the map show.
    assert_eq!(
        summary["library"],
        serde_json::json!({"added": 6, "updated": 0, "unchanged": 0, "removed": 0, "photos": 6})
    );

    let geotag = |extra: &[&str]| {
        let out = polo(data.path())
            .args(["photos", "geotag", "--user", "anna", "--json"])
            .args(extra)
            .arg(dir)
            .output()
            .unwrap();
        (out.status.code(), records(&out.stdout))
    };
    let (code, written) = geotag(&[]);
    assert_eq!(code, Some(1), "the broken file and the refused sidecar are reported");
    let summary = &written.last().unwrap()["summary"]["sidecars"];
    assert_eq!((summary["written"].as_u64(), summary["refused"].as_u64()), (Some(2), Some(1)), "{summary}");
    let sidecar = std::fs::read_to_string(sidecar_path(&dir.join("2024-07/IMG_0001.jpg"))).unwrap();
    assert!(distance_m(read_position(&sidecar).unwrap(), position_at_minute(30.0)) < 1.0);
    let clip_sidecar = std::fs::read_to_string(sidecar_path(&dir.join("2024-07/clip.mp4"))).unwrap();
    assert!(distance_m(read_position(&clip_sidecar).unwrap(), position_at_minute(15.0)) < 1.0);
    assert_eq!(std::fs::read(dir.join("2024-07/IMG_0001.jpg")).unwrap(), bare, "the original is untouched");
    assert_eq!(std::fs::read_to_string(dir.join("2024-07/IMG_0004.xmp")).unwrap(), "<x:xmpmeta>darktable</x:xmpmeta>");
    assert!(!sidecar_path(&dir.join("2024-07/IMG_0004.jpg")).exists());

    // Again: nothing changes.
    let (_, again) = geotag(&[]);
    assert_eq!(again.last().unwrap()["summary"]["sidecars"]["unchanged"], 2);
    assert_eq!(std::fs::read_to_string(sidecar_path(&dir.join("2024-07/IMG_0001.jpg"))).unwrap(), sidecar);

    // Scanned again: nothing changed. A file gone from the folder leaves the library; `--no-save` only lists.
    std::fs::remove_file(dir.join("2024-07/IMG_0003.jpg")).unwrap();
    let again = polo(data.path()).args(["photos", "scan", "--user", "anna", "--json"]).arg(dir).output().unwrap();
    let library = records(&again.stdout).last().unwrap()["summary"]["library"].clone();
    assert_eq!(library, serde_json::json!({"added": 0, "updated": 0, "unchanged": 5, "removed": 1, "photos": 5}));
    let listed =
        polo(data.path()).args(["photos", "scan", "--user", "anna", "--json", "--no-save"]).arg(dir).output().unwrap();
    assert!(records(&listed.stdout).last().unwrap()["summary"]["library"].is_null());

    // Undone with the user named: the sidecars go, and the library's two applied positions (geotag
    // marked them, the rescan kept them) are proposals again, for the review page.
    let undo = polo(data.path()).args(["photos", "undo", "--user", "anna"]).arg(dir).output().unwrap();
    assert!(undo.status.success(), "{}", String::from_utf8_lossy(&undo.stderr));
    let said = String::from_utf8_lossy(&undo.stdout);
    assert!(said.contains("2 sidecars") && said.contains("2 positions in the library are proposals again"), "{said}");
    assert!(!sidecar_path(&dir.join("2024-07/IMG_0001.jpg")).exists());
    assert!(dir.join("2024-07/IMG_0004.xmp").exists(), "undo leaves other programs' sidecars");
}

#[test]
fn photos_need_a_known_user_and_confidence() {
    let data = tempfile::tempdir().unwrap();
    let out = polo(data.path()).args(["photos", "scan", "--user", "nobody"]).arg(data.path()).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("no user named \"nobody\""));
    add_user(data.path(), "anna");
    let out = polo(data.path())
        .args(["photos", "geotag", "--user", "anna", "--min-confidence", "certain"])
        .arg(data.path())
        .output()
        .unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("unknown confidence \"certain\""));
}
