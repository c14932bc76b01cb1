//! Imports every real-world sample under `../shared/corpus/` (written by
//! others; never copied into this repository). Each location file must yield
//! points or intervals in the format its folder names; each non-location
//! file must be refused with a message that names what it is. Skips with a
//! message when the corpus is absent (a developer laptop without `../shared`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polo_domain::{Fix, Interval, Timestamp};
use polo_formats::{Format, ImportError, ImportOptions, Reject, Sink, import_path};

#[derive(Default)]
struct Counts {
    points: usize,
    intervals: usize,
    rejects: Vec<Reject>,
}

impl Sink for Counts {
    fn point(&mut self, _fix: Fix, _device: Option<&str>) {
        self.points += 1;
    }
    fn interval(&mut self, _interval: Interval, _device: Option<&str>) {
        self.intervals += 1;
    }
    fn reject(&mut self, reject: Reject) {
        self.rejects.push(reject);
    }
}

fn corpus_dir() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/corpus");
    dir.is_dir().then_some(dir)
}

fn expected_formats(folder: &str) -> &'static [Format] {
    match folder {
        "google-records" => &[Format::GoogleRecords],
        "google-semantic" => &[Format::GoogleSemantic],
        "google-timeline-android" => &[Format::GoogleAndroidTimeline],
        "google-timeline-ios" => &[Format::GoogleIosTimeline],
        "gpx" => &[Format::Gpx],
        "kml" => &[Format::Kml, Format::Zip],
        "geojson" => &[Format::Geojson, Format::Overland],
        "csv" => &[Format::Csv],
        "owntracks" => &[Format::OwntracksRec],
        "fit" => &[Format::Fit, Format::Gpx],
        "tcx" => &[Format::Tcx, Format::Gzip],
        "plt" => &[Format::GeolifePlt, Format::OziPlt],
        "nmea" => &[Format::Nmea],
        "igc" => &[Format::Igc],
        "headerless" => &[Format::HeaderlessText],
        "polarsteps" => &[Format::Polarsteps],
        "strava" | "apple-health" => &[Format::Zip],
        _ => &[],
    }
}

/// Corpus folders for the formats added with issue 16; no real samples of
/// them have been collected yet, so each absent one is reported.
const NEWER_FOLDERS: [&str; 8] = ["tcx", "plt", "nmea", "igc", "headerless", "polarsteps", "strava", "apple-health"];

#[test]
fn every_corpus_file_imports_or_is_refused_by_name() {
    let Some(corpus) = corpus_dir() else {
        eprintln!("SKIPPED: ../shared/corpus is absent; the corpus test needs it");
        return;
    };
    let options = ImportOptions { now: Timestamp(1_900_000_000_000) };
    let mut failures = Vec::new();
    let mut seen = BTreeMap::new();
    let mut folders: Vec<_> =
        std::fs::read_dir(&corpus).unwrap().map(|e| e.unwrap().path()).filter(|p| p.is_dir()).collect();
    folders.sort();
    for folder in folders {
        let folder_name = folder.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<_> = std::fs::read_dir(&folder).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        for file in files {
            let name = file.file_name().unwrap().to_string_lossy().into_owned();
            let mut sink = Counts::default();
            let outcome = import_path(&file, &options, &mut sink);
            *seen.entry(folder_name.clone()).or_insert(0) += 1;
            if folder_name == "google-not-location" {
                let want = if name.contains("settings") { "Settings" } else { "Timeline Edits" };
                match outcome {
                    Err(ImportError::NotLocationData { what }) if what.contains(want) => {}
                    other => failures.push(format!("{name}: want a refusal naming {want:?}, got {other:?}")),
                }
                continue;
            }
            match outcome {
                Ok(format) if expected_formats(&folder_name).contains(&format) => {}
                other => {
                    failures.push(format!("{folder_name}/{name}: {other:?}"));
                    continue;
                }
            }
            // Files of untimed waypoints or planned routes hold no history, and
            // one sample is made of broken coordinates only: then every record
            // must have been rejected for exactly that reason.
            if sink.points + sink.intervals == 0 {
                let expected_reason = if name.contains("invalid_coordinates") { "coordinates" } else { "time" };
                let all_explained =
                    !sink.rejects.is_empty() && sink.rejects.iter().all(|r| r.reason.contains(expected_reason));
                if !all_explained {
                    failures.push(format!(
                        "{folder_name}/{name}: no points and not only untimed records: {:?}",
                        sink.rejects.first()
                    ));
                }
            }
        }
    }
    eprintln!("corpus files per folder: {seen:?}");
    for folder in NEWER_FOLDERS.iter().filter(|f| !seen.contains_key(**f)) {
        eprintln!("SKIPPED: no real {folder} samples in the corpus (folder {folder}/ is absent)");
    }
    assert!(seen.len() >= 10, "expected the corpus folders, saw {seen:?}");
    assert!(failures.is_empty(), "corpus failures:\n{}", failures.join("\n"));
}

/// Expected format of each hand-made fixture under `tests/fixtures/`.
fn fixture_format(name: &str) -> Format {
    match name.rsplit_once('.').map_or("", |(_, ext)| ext) {
        "tcx" => Format::Tcx,
        "plt" if name.starts_with("ozi") => Format::OziPlt,
        "plt" => Format::GeolifePlt,
        "nmea" => Format::Nmea,
        "igc" => Format::Igc,
        "txt" => Format::HeaderlessText,
        "json" => Format::Polarsteps,
        other => panic!("fixture {name} has no expected format (extension {other:?})"),
    }
}

/// Every committed fixture is detected from its bytes alone: it is handed
/// over as an anonymous stream, and must import with points or intervals.
#[test]
fn committed_fixtures_are_detected_from_content() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let options = ImportOptions { now: Timestamp(1_900_000_000_000) };
    let mut names: Vec<String> =
        std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    assert!(names.len() >= 7, "{names:?}");
    for name in names {
        let file = std::fs::File::open(dir.join(&name)).unwrap();
        let mut sink = Counts::default();
        let format = polo_formats::import(file, &options, &mut sink).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(format, fixture_format(&name), "{name}");
        assert!(sink.points + sink.intervals > 0, "{name}: nothing imported");
        // Every fixture carries one deliberately bad record, reported with its place.
        assert_eq!(sink.rejects.len(), 1, "{name}: {:?}", sink.rejects);
    }
}
