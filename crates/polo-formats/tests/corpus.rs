//! Imports every real-world sample under `../shared/corpus/` (written by
//! others; never copied into this repository). Each location file must yield
//! points or intervals in the format its folder names; each non-location
//! file must be refused with a message that names what it is, except a
//! Takeout `Settings.json`, which must name its devices. Skips with a
//! message when the corpus is absent (a developer laptop without `../shared`).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use polo_domain::{Fix, Interval, Timestamp};
use polo_formats::{Format, ImportError, ImportOptions, Reject, Sink, import_path};

#[derive(Default, Debug)]
struct Counts {
    points: usize,
    intervals: usize,
    labels: usize,
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
    fn device_label(&mut self, _device: &str, _label: &str) {
        self.labels += 1;
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
                if name.contains("settings") {
                    // No locations, but the device's name for Records.json's deviceTag.
                    match outcome {
                        Ok(Format::GoogleSettings) if sink.points + sink.intervals == 0 && sink.labels > 0 => {}
                        other => failures.push(format!("{name}: want device labels, got {other:?} ({sink:?})")),
                    }
                    continue;
                }
                match outcome {
                    Err(ImportError::NotLocationData { what }) if what.contains("Timeline Edits") => {}
                    other => failures.push(format!("{name}: want a refusal naming Timeline Edits, got {other:?}")),
                }
                continue;
            }
            match &outcome {
                Ok(format) if expected_formats(&folder_name).contains(format) => {}
                Err(ImportError::NothingToImport { .. }) => {}
                other => {
                    failures.push(format!("{folder_name}/{name}: {other:?}"));
                    continue;
                }
            }
            // Files of untimed waypoints or planned routes hold no history,
            // one sample is made of broken coordinates only, and two Semantic
            // samples hold only a candidate-only visit or a location-less
            // activity: then every record must have been rejected for exactly
            // that reason, and the file must end as "nothing to import".
            if sink.points + sink.intervals == 0 {
                let expected_reason = if name.contains("invalid_coordinates") {
                    "coordinates"
                } else if name.contains("otherCandidateLocations") {
                    "only candidate locations"
                } else if name.contains("without_startLocation") {
                    "no startLocation"
                } else {
                    "time"
                };
                let all_explained = matches!(outcome, Err(ImportError::NothingToImport { .. }))
                    && !sink.rejects.is_empty()
                    && sink.rejects.iter().all(|r| r.reason.contains(expected_reason));
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

/// An input of `head`, then `len` bytes of `fill`, then `tail`, made up
/// while it is read: a 2 GiB token that never exists in memory.
struct Lazy {
    parts: [Vec<u8>; 2],
    fill: u8,
    len: u64,
    /// Bytes handed out so far.
    at: u64,
}

impl Lazy {
    fn new(head: &str, fill: u8, len: u64, tail: &str) -> Self {
        Self { parts: [head.as_bytes().to_vec(), tail.as_bytes().to_vec()], fill, len, at: 0 }
    }
}

impl std::io::Read for Lazy {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let head = self.parts[0].len() as u64;
        let n = if self.at < head {
            let from = &self.parts[0][usize::try_from(self.at).unwrap()..];
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        } else if self.at < head + self.len {
            let n = usize::try_from((head + self.len - self.at).min(buf.len() as u64)).unwrap();
            buf[..n].fill(self.fill);
            n
        } else {
            let from = self.parts[1].get(usize::try_from(self.at - head - self.len).unwrap()..).unwrap_or(&[]);
            let n = from.len().min(buf.len());
            buf[..n].copy_from_slice(&from[..n]);
            n
        };
        self.at += n as u64;
        Ok(n)
    }
}

/// One importer fed a token of `HUGE` bytes between a record and a valid one.
struct HugeCase {
    name: &'static str,
    head: &'static str,
    tail: &'static str,
    gzip: bool,
}

/// 2 GiB: the size that aborted the server.
const HUGE: u64 = 2 << 30;

const HUGE_CASES: &[HugeCase] = &[
    HugeCase {
        name: "gpx-text",
        head: r#"<?xml version="1.0"?><gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg><trkpt lat="1" lon="2"><time>2020-01-01T00:00:00Z</time><desc>"#,
        tail: r#"</desc></trkpt><trkpt lat="1" lon="2"><time>2020-01-01T00:00:01Z</time></trkpt></trkseg></trk></gpx>"#,
        gzip: false,
    },
    HugeCase {
        name: "gpx-text-gzip",
        head: r#"<?xml version="1.0"?><gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg><trkpt lat="1" lon="2"><time>2020-01-01T00:00:00Z</time><desc>"#,
        tail: r#"</desc></trkpt><trkpt lat="1" lon="2"><time>2020-01-01T00:00:01Z</time></trkpt></trkseg></trk></gpx>"#,
        gzip: true,
    },
    HugeCase {
        name: "kml-attribute",
        head: r#"<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document><Placemark id=""#,
        tail: r#""><TimeStamp><when>2020-01-01T00:00:00Z</when></TimeStamp><Point><coordinates>2,1</coordinates></Point></Placemark><Placemark><TimeStamp><when>2020-01-01T00:00:01Z</when></TimeStamp><Point><coordinates>2,1</coordinates></Point></Placemark></Document></kml>"#,
        gzip: false,
    },
    HugeCase {
        name: "csv-line",
        head: "lat,lon,time,note\n1,2,2020-01-01T00:00:00Z,",
        tail: "\n1,2,2020-01-01T00:00:01Z,x\n",
        gzip: false,
    },
    HugeCase { name: "csv-header", head: "lat,lon,time,", tail: "\n1,2,2020-01-01T00:00:01Z\n", gzip: false },
    HugeCase {
        name: "strava-line",
        head: "Activity ID,Activity Date,Activity Name,Activity Type,Elapsed Time\n1,2020-01-01T00:00:00Z,",
        tail: ",Run,60\n2,2020-01-01T00:00:01Z,ok,Run,60\n",
        gzip: false,
    },
    HugeCase {
        name: "strava-header",
        head: "Activity ID,Activity Date,Activity Name,Activity Type,",
        tail: "\n2,2020-01-01T00:00:01Z,ok,Run,60\n",
        gzip: false,
    },
    HugeCase {
        name: "owntracks-rec-line",
        head: "2024-03-01T09:03:09Z\t*                 \t{\"_type\":\"location\",\"lat\":52.2,\"lon\":13.3,\"tst\":1709283789}\n2024-03-01T09:03:10Z\t*                 \t{\"_type\":\"location\",\"lat\":52.2,\"lon\":13.3,\"tst\":1709283790,\"note\":\"",
        tail: "\"}\n",
        gzip: false,
    },
    HugeCase {
        name: "google-records-string",
        head: r#"{"locations":[{"latitudeE7":10000000,"longitudeE7":20000000,"timestamp":"2020-01-01T00:00:00Z","note":""#,
        tail: r#""},{"latitudeE7":10000000,"longitudeE7":20000000,"timestamp":"2020-01-01T00:00:01Z"}]}"#,
        gzip: false,
    },
    HugeCase {
        name: "google-semantic-string",
        head: r#"{"timelineObjects":[{"placeVisit":{"location":{"latitudeE7":10000000,"longitudeE7":20000000,"name":""#,
        tail: r#""},"duration":{"startTimestamp":"2020-01-01T00:00:00Z"}}},{"placeVisit":{"location":{"latitudeE7":10000000,"longitudeE7":20000000},"duration":{"startTimestamp":"2020-01-01T01:00:00Z"}}}]}"#,
        gzip: false,
    },
    HugeCase {
        name: "google-android-string",
        head: r#"{"rawSignals":[{"position":{"LatLng":"1.0°, 2.0°","timestamp":"2020-01-01T00:00:00Z","source":""#,
        tail: r#""}},{"position":{"LatLng":"1.0°, 2.0°","timestamp":"2020-01-01T00:00:01Z"}}]}"#,
        gzip: false,
    },
    HugeCase {
        name: "google-ios-string",
        head: r#"[{"startTime":"2020-01-01T00:00:00Z","endTime":"2020-01-01T01:00:00Z","timelinePath":[{"point":"geo:1.0,2.0","durationMinutesOffsetFromStartTime":"1"}]},{"startTime":"2020-01-01T02:00:00Z","endTime":"2020-01-01T03:00:00Z","timelinePath":[{"point":"geo:"#,
        tail: r#"","durationMinutesOffsetFromStartTime":"1"}]}]"#,
        gzip: false,
    },
    HugeCase {
        name: "geojson-string",
        head: r#"{"type":"FeatureCollection","features":[{"type":"Feature","geometry":{"type":"Point","coordinates":[2,1]},"properties":{"timestamp":"2020-01-01T00:00:00Z","note":""#,
        tail: r#""}},{"type":"Feature","geometry":{"type":"Point","coordinates":[2,1]},"properties":{"timestamp":"2020-01-01T00:00:01Z"}}]}"#,
        gzip: false,
    },
];

/// The peak resident set of this process, in kB (`None` without `/proc`).
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Runs one case in this (child) process and prints its outcome and peak RSS.
fn run_huge_case(case: &HugeCase) {
    let lazy = Lazy::new(case.head, b'a', HUGE, case.tail);
    let options = ImportOptions { now: Timestamp(1_900_000_000_000) };
    let mut sink = Counts::default();
    let started = std::time::Instant::now();
    let outcome = if case.gzip {
        let gz = flate2::read::GzEncoder::new(lazy, flate2::Compression::fast());
        polo_formats::import(gz, &options, &mut sink)
    } else {
        polo_formats::import(lazy, &options, &mut sink)
    };
    let seconds = started.elapsed().as_secs_f64();
    match &outcome {
        Ok(_) => {
            assert!(!sink.rejects.is_empty(), "{}: no reject", case.name);
            let reason = &sink.rejects[0].reason;
            assert!(reason.contains("longer than 1 MiB"), "{}: {reason}", case.name);
            assert!(sink.points + sink.intervals >= 1, "{}: the valid record after the huge one was lost", case.name);
        }
        Err(e) => {
            assert!(case.name.ends_with("-header"), "{}: {e}", case.name);
            assert!(e.to_string().contains("longer than 1 MiB"), "{e}");
        }
    }
    let outcome = outcome.map_or_else(|e| format!("error: {e}"), |_| format!("{} rejects", sink.rejects.len()));
    match peak_rss_kb() {
        Some(kb) => println!("HUGE_CASE {} peak_rss_kb={kb} seconds={seconds:.1} outcome={outcome}", case.name),
        None => println!("HUGE_CASE {} skipped: no /proc/self/status", case.name),
    }
}

/// Every importer, fed a 2 GiB text node, attribute, line or JSON string
/// (generated while read, never held), ends with a reject (or, for a CSV
/// header, a clear error) and a peak RSS under 100 MB. Each case runs in a
/// child process of this test binary, so that the peak is its own.
#[test]
fn huge_tokens_are_rejected_in_bounded_memory() {
    const CHILD: &str = "POLO_HUGE_CASE";
    const LIMIT_KB: u64 = 100_000;
    if let Ok(name) = std::env::var(CHILD) {
        let case = HUGE_CASES.iter().find(|c| c.name == name).expect("known case");
        run_huge_case(case);
        return;
    }
    if peak_rss_kb().is_none() {
        println!("skipping: /proc/self/status is not available to measure peak RSS");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let started = std::time::Instant::now();
    // Two children at a time: the cases are independent.
    let mut results = Vec::new();
    for pair in HUGE_CASES.chunks(2) {
        let children: Vec<_> = pair
            .iter()
            .map(|case| {
                let child = std::process::Command::new(&exe)
                    .args([
                        "--exact",
                        "huge_tokens_are_rejected_in_bounded_memory",
                        "--nocapture",
                        "--test-threads",
                        "1",
                    ])
                    .env(CHILD, case.name)
                    .stdout(std::process::Stdio::piped())
                    .stderr(std::process::Stdio::piped())
                    .spawn()
                    .unwrap();
                (case.name, child)
            })
            .collect();
        for (name, child) in children {
            let out = child.wait_with_output().unwrap();
            let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
            assert!(out.status.success(), "{name}: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
            let line = stdout
                .lines()
                .find_map(|l| l.find("HUGE_CASE ").map(|at| &l[at..]))
                .unwrap_or_else(|| panic!("{name}: {stdout}"));
            println!("{line}");
            results.push((name, line.to_owned()));
        }
    }
    for (name, line) in &results {
        let kb: u64 = line
            .split_whitespace()
            .find_map(|w| w.strip_prefix("peak_rss_kb="))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("{name}: {line}"));
        assert!(kb < LIMIT_KB, "{name}: peak RSS {kb} kB is over {LIMIT_KB} kB");
    }
    println!("all {} cases in {:.0} s", results.len(), started.elapsed().as_secs_f64());
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

/// A `gx:Track` of `n` points, made up while it is read: Google Earth's
/// layout (every `<when>`, then every `<gx:coord>`) or interleaved. Point
/// k is at time T0 + k s and at (10° + k / 100000 · 0.001°, 10° + k % 100000 · 0.001°).
/// Its chunks: 0 the head, 1..=2n the entries, then the tail.
struct TrackXml {
    n: usize,
    interleaved: bool,
}

/// A document made up chunk by chunk while it is read, so a test can feed an
/// importer gigabytes without holding them.
trait Chunked {
    /// Chunk `i` of the document, `None` past its end.
    fn chunk(&self, i: usize) -> Option<String>;
}

/// Reads a [`Chunked`] document.
struct ChunkReader<C> {
    document: C,
    /// The next chunk to write.
    next: usize,
    buf: Vec<u8>,
    pos: usize,
}

impl<C: Chunked> ChunkReader<C> {
    fn new(document: C) -> Self {
        Self { document, next: 0, buf: Vec::new(), pos: 0 }
    }
}

impl<C: Chunked> std::io::Read for ChunkReader<C> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.pos == self.buf.len() {
            let Some(chunk) = self.document.chunk(self.next) else { return Ok(0) };
            self.next += 1;
            self.buf = chunk.into_bytes();
            self.pos = 0;
        }
        let n = (self.buf.len() - self.pos).min(out.len());
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

const TRACK_T0: i64 = 1_600_000_000_000;

fn track_coord(k: usize) -> (f64, f64) {
    (10.0 + (k / 100_000) as f64 * 0.001, 10.0 + (k % 100_000) as f64 * 0.001)
}

impl Chunked for TrackXml {
    fn chunk(&self, i: usize) -> Option<String> {
        let when = |k: usize| format!("<when>{}</when>", Timestamp(TRACK_T0 + k as i64 * 1000));
        let coord = |k: usize| {
            let (lat, lon) = track_coord(k);
            format!("<gx:coord>{lon:.3} {lat:.3} 7</gx:coord>")
        };
        Some(match i {
            0 => r#"<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2" xmlns:gx="http://www.google.com/kml/ext/2.2"><Document><Placemark><gx:Track>"#.to_owned(),
            i if i <= 2 * self.n => {
                let e = i - 1;
                match (self.interleaved, e % 2 == 0) {
                    (true, true) => when(e / 2),
                    (true, false) => coord(e / 2),
                    (false, _) if e < self.n => when(e),
                    (false, _) => coord(e - self.n),
                }
            }
            i if i == 2 * self.n + 1 => "</gx:Track></Placemark></Document></kml>".to_owned(),
            _ => return None,
        })
    }
}

/// Checks that every fix of a [`TrackXml`] pairs the time and coordinate of one point.
#[derive(Default)]
struct TrackCheck {
    points: usize,
    rejects: usize,
    first_reject: Option<String>,
}

impl Sink for TrackCheck {
    fn point(&mut self, fix: Fix, _device: Option<&str>) {
        let k = usize::try_from((fix.time.0 - TRACK_T0) / 1000).unwrap();
        let (lat, lon) = track_coord(k);
        assert!((fix.coord.lat() - lat).abs() < 1e-6 && (fix.coord.lon() - lon).abs() < 1e-6, "point {k}: {fix:?}");
        self.points += 1;
    }
    fn interval(&mut self, _interval: Interval, _device: Option<&str>) {
        panic!("a track has no intervals");
    }
    fn reject(&mut self, reject: Reject) {
        assert!(reject.reason.contains("held over 16 MiB of unpaired entries"), "{}", reject.reason);
        self.first_reject.get_or_insert(reject.reason);
        self.rejects += 1;
    }
}

/// One long-track case in this (child) process: its counts and peak RSS.
fn run_track_case(interleaved: bool, n: usize) {
    let mut sink = TrackCheck::default();
    let options = ImportOptions { now: Timestamp(1_900_000_000_000) };
    let xml = ChunkReader::new(TrackXml { n, interleaved });
    let format = polo_formats::import(xml, &options, &mut sink).unwrap();
    assert_eq!(format, Format::Kml);
    if interleaved {
        assert_eq!((sink.points, sink.rejects), (n, 0), "{:?}", sink.first_reject);
    } else {
        // The oldest times waited past the bound: each was rejected, and so
        // was its coordinate when it came; the rest paired exactly.
        let dropped = n - sink.points;
        assert!(sink.points > 150_000 && dropped > 0, "{} points", sink.points);
        assert_eq!(sink.rejects, 2 * dropped, "{:?}", sink.first_reject);
    }
    let kb = peak_rss_kb().unwrap_or(0);
    println!(
        "TRACK_CASE interleaved={interleaved} n={n} points={} rejects={} peak_rss_kb={kb}",
        sink.points, sink.rejects
    );
}

/// A `gx:Track` of a million points (70 MB of KML) streams in bounded
/// memory in both layouts: interleaved, every point is imported; in Google
/// Earth's layout the times that wait past 16 MiB are rejected with their
/// coordinates and the rest pair exactly. Before, the whole track was held
/// (and a longer one exhausted memory). Each case runs in a child process.
#[test]
fn long_kml_tracks_stream_in_bounded_memory() {
    const CHILD: &str = "POLO_TRACK_CASE";
    const N: usize = 1_000_000;
    // Holding the whole track took about 90 MB at this length; streamed it peaks near 40 MB.
    const LIMIT_KB: u64 = 64_000;
    if let Ok(case) = std::env::var(CHILD) {
        run_track_case(case == "interleaved", N);
        return;
    }
    if peak_rss_kb().is_none() {
        println!("skipping: /proc/self/status is not available to measure peak RSS");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    for case in ["interleaved", "google-earth"] {
        let out = std::process::Command::new(&exe)
            .args(["--exact", "long_kml_tracks_stream_in_bounded_memory", "--nocapture", "--test-threads", "1"])
            .env(CHILD, case)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(out.status.success(), "{case}: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
        let line = stdout.lines().find_map(|l| l.find("TRACK_CASE ").map(|at| &l[at..])).unwrap();
        println!("{line}");
        let kb: u64 = line.split_whitespace().find_map(|w| w.strip_prefix("peak_rss_kb=")).unwrap().parse().unwrap();
        assert!(kb < LIMIT_KB, "{case}: peak RSS {kb} kB is over {LIMIT_KB} kB");
    }
}

/// A KML document with a LineString of `n` vertices (its placemark has a
/// TimeSpan) and a Point whose `<coordinates>` hold `n` tuples, made up
/// while it is read. Vertex k is at [`track_coord`]`(k)`.
/// Its chunks: 0 the head, 1..=n the LineString's tuples, n + 1 between the
/// placemarks, then the Point's tuples, then the tail.
struct LongCoordinatesXml {
    n: usize,
}

impl Chunked for LongCoordinatesXml {
    fn chunk(&self, i: usize) -> Option<String> {
        let n = self.n;
        let tuple = |k: usize| {
            let (lat, lon) = track_coord(k);
            // Line ends and spaces after commas, as real files have them.
            if k.is_multiple_of(3) { format!("{lon:.3}, {lat:.3},0\r\n") } else { format!("{lon:.3},{lat:.3},7 ") }
        };
        Some(match i {
            0 => concat!(
                r#"<?xml version="1.0"?><kml xmlns="http://www.opengis.net/kml/2.2"><Document>"#,
                "<Placemark><name>long walk</name><TimeSpan><begin>2020-09-13T12:26:40Z</begin>",
                "<end>2020-09-13T18:00:00Z</end></TimeSpan><LineString><coordinates>\n"
            )
            .to_owned(),
            i if i <= n => tuple(i - 1),
            i if i == n + 1 => concat!(
                "</coordinates></LineString></Placemark>",
                "<Placemark><TimeStamp><when>2020-09-13T12:26:40Z</when></TimeStamp><Point><coordinates>"
            )
            .to_owned(),
            i if i <= 2 * n + 1 => tuple(i - n - 2),
            i if i == 2 * n + 2 => "</coordinates></Point></Placemark></Document></kml>".to_owned(),
            _ => return None,
        })
    }
}

/// Everything a [`LongCoordinatesXml`] import handed over.
#[derive(Default)]
struct Collected {
    points: Vec<Fix>,
    intervals: Vec<Interval>,
    rejects: Vec<Reject>,
}

impl Sink for Collected {
    fn point(&mut self, fix: Fix, _device: Option<&str>) {
        self.points.push(fix);
    }
    fn interval(&mut self, interval: Interval, _device: Option<&str>) {
        self.intervals.push(interval);
    }
    fn reject(&mut self, reject: Reject) {
        self.rejects.push(reject);
    }
}

/// One long-coordinates case in this (child) process: what it yielded and its peak RSS.
fn run_long_coordinates_case(n: usize) {
    let mut sink = Collected::default();
    let options = ImportOptions { now: Timestamp(1_900_000_000_000) };
    let xml = ChunkReader::new(LongCoordinatesXml { n });
    let format = polo_formats::import(xml, &options, &mut sink).unwrap();
    assert_eq!(format, Format::Kml);
    assert!(sink.rejects.is_empty(), "{:?}", sink.rejects.first());
    let coord = |k: usize| {
        let (lat, lon) = track_coord(k);
        polo_domain::Coord::from_degrees((lat * 1000.0).round() / 1000.0, (lon * 1000.0).round() / 1000.0).unwrap()
    };
    // The LineString: an activity from its first to its last vertex, with the count.
    let [walk] = &sink.intervals[..] else { panic!("{} intervals", sink.intervals.len()) };
    assert_eq!((walk.start_coord, walk.end_coord), (Some(coord(0)), Some(coord(n - 1))));
    assert_eq!(walk.name.as_deref(), Some("long walk"));
    assert_eq!(walk.extras.as_ref().unwrap().as_str(), format!(r#"{{"vertices":{n}}}"#));
    // The Point: a fix at its first tuple.
    let [fix] = &sink.points[..] else { panic!("{} points", sink.points.len()) };
    assert_eq!((fix.coord, fix.altitude_cm), (coord(0), Some(0)));
    let kb = peak_rss_kb().unwrap_or(0);
    println!("COORDINATES_CASE n={n} vertices={n} peak_rss_kb={kb}");
}

/// A LineString of three million vertices and a Point with as many tuples
/// (about 100 MB of `<coordinates>` text each, 200 MB of KML) stream in
/// bounded memory and give exactly what a short one gives: an activity from
/// the first to the last vertex with their count, and a fix at the Point's
/// first tuple. Before, a `<coordinates>` text over 1 MiB refused its
/// placemark (and before that limit, it was held whole). Runs in a child
/// process, so that the peak is its own.
#[test]
fn long_kml_coordinates_stream_in_bounded_memory() {
    const CHILD: &str = "POLO_COORDINATES_CASE";
    const N: usize = 3_000_000;
    // Streamed it peaks near 6 MB (the test process included); a held text would be 100 MB.
    const LIMIT_KB: u64 = 16_000;
    if std::env::var(CHILD).is_ok() {
        run_long_coordinates_case(N);
        return;
    }
    if peak_rss_kb().is_none() {
        println!("skipping: /proc/self/status is not available to measure peak RSS");
        return;
    }
    let exe = std::env::current_exe().unwrap();
    let out = std::process::Command::new(&exe)
        .args(["--exact", "long_kml_coordinates_stream_in_bounded_memory", "--nocapture", "--test-threads", "1"])
        .env(CHILD, "1")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    let line = stdout.lines().find_map(|l| l.find("COORDINATES_CASE ").map(|at| &l[at..])).unwrap();
    println!("{line}");
    let kb: u64 = line.split_whitespace().find_map(|w| w.strip_prefix("peak_rss_kb=")).unwrap().parse().unwrap();
    assert!(kb < LIMIT_KB, "peak RSS {kb} kB is over {LIMIT_KB} kB");
}

/// Replays the crash corpus of the fuzz targets (`fuzz/`, docs/fuzzing.md):
/// each file under `tests/fuzz_regressions/<target>/` once made its target
/// panic or exceed its memory limit, and must now go through the same entry
/// point (`polo_formats::fuzzing::run`) without.
#[test]
fn fuzz_regressions_replay() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
    let mut replayed = 0;
    for dir in std::fs::read_dir(&root).unwrap() {
        let dir = dir.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let target = polo_formats::fuzzing::Target::from_name(&name)
            .unwrap_or_else(|| panic!("{}: no fuzz target called {name}", dir.display()));
        for file in std::fs::read_dir(&dir).unwrap() {
            let path = file.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            let outcome = std::panic::catch_unwind(|| polo_formats::fuzzing::run(target, &data));
            assert!(outcome.is_ok(), "{} panics again", path.display());
            replayed += 1;
        }
    }
    println!("{replayed} fuzz regressions replayed");
}
