//! Entry points for the ingest fuzz targets in `fuzz/` and for the test that
//! replays their crash corpus (`tests/fuzz_regressions/`).
//!
//! Not part of the API. Each entry feeds bytes to one body parser exactly as
//! the HTTP handlers (and the MQTT listener) do, and checks what comes back:
//! fixes inside the coordinate ranges, at plausible times, with extras that
//! are a JSON object. A broken invariant panics, which the fuzzer reports.

use polo_domain::{Fix, Timestamp};
use polo_formats::ImportOptions;

use super::{batch, osmand, overland, owntracks};

/// An ingest fuzz target.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// `POST /pub`: one OwnTracks message, and its topic.
    Owntracks,
    /// The OwnTracks decryptor: the bytes before the first NUL are the
    /// passphrase, the rest the base64 payload; the rest is also encrypted
    /// with that passphrase and must decrypt to itself.
    OwntracksDecrypt,
    /// An Overland batch.
    Overland,
    /// An OsmAnd / Traccar / GPSLogger request: the first line is the query
    /// string (empty: none), the second the Content-Type (empty: none), the
    /// rest the body.
    Osmand,
    /// `POST /api/v1/points`.
    Batch,
}

impl Target {
    /// Every target, for the regression test.
    pub const ALL: [Self; 5] = [Self::Owntracks, Self::OwntracksDecrypt, Self::Overland, Self::Osmand, Self::Batch];

    /// The fuzz target's name (and its corpus directory's).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Owntracks => "ingest_owntracks",
            Self::OwntracksDecrypt => "owntracks_decrypt",
            Self::Overland => "ingest_overland",
            Self::Osmand => "ingest_osmand",
            Self::Batch => "ingest_batch",
        }
    }

    /// The target called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// "Now" for every run, so a crash reproduces whenever it is replayed.
pub const NOW: Timestamp = polo_formats::fuzzing::NOW;

/// Runs `target` over `data`.
///
/// # Panics
/// When a parser panics or returns a fix that breaks an invariant.
pub fn run(target: Target, data: &[u8]) {
    let options = owntracks::ParseOptions::at(NOW);
    match target {
        Target::Owntracks => {
            for from_overland in [false, true] {
                if let Ok(message) = owntracks::parse(data, &owntracks::ParseOptions { from_overland, ..options }) {
                    check_message(&message);
                }
            }
            let _ = owntracks::Topic::parse(&String::from_utf8_lossy(data)).device_hint();
        }
        Target::OwntracksDecrypt => {
            let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
            let key = String::from_utf8_lossy(&data[..split]);
            let rest = data.get(split + 1..).unwrap_or_default();
            if let Ok(message) = owntracks::decrypt_message(&key, &String::from_utf8_lossy(rest), &options) {
                check_message(&message);
            }
            match owntracks::encrypt_with_nonce(&key, &[7; 24], rest) {
                Ok(sealed) => {
                    let opened = owntracks::decrypt(&key, &sealed);
                    assert_eq!(opened.as_deref(), Ok(rest), "a round trip changed the payload");
                    if let Ok(message) = owntracks::decrypt_message(&key, &sealed, &options) {
                        check_message(&message);
                    }
                }
                Err(owntracks::CryptoError::EmptyKey) => assert!(key.is_empty(), "EmptyKey for a key"),
                Err(e) => panic!("encryption failed: {e}"),
            }
        }
        Target::Overland => {
            if let Ok(batch) = overland::parse(data, NOW) {
                batch.points.iter().chain(&batch.current).for_each(|p| check_fix(&p.fix));
                for interval in &batch.intervals {
                    let i = &interval.interval;
                    assert!(i.start <= i.end, "an interval ending before it starts: {i:?}");
                }
                let _ = batch.device_hint();
            }
        }
        Target::Osmand => {
            let mut parts = data.splitn(3, |&b| b == b'\n');
            let query = parts.next().map(String::from_utf8_lossy).filter(|q| !q.is_empty());
            let content_type = parts.next().map(String::from_utf8_lossy).filter(|c| !c.is_empty());
            let body = parts.next().unwrap_or_default();
            if let Ok(parsed) = osmand::parse_request(query.as_deref(), content_type.as_deref(), body, NOW) {
                parsed.reports.iter().for_each(|r| check_fix(&r.fix));
            }
            let _ = osmand::claimed_device_id(query.as_deref(), body);
        }
        Target::Batch => {
            if let Ok(batch) = batch::parse(data, NOW) {
                batch.points.iter().for_each(|p| check_fix(&p.fix));
            }
        }
    }
}

fn check_message(message: &owntracks::Message) {
    match message {
        owntracks::Message::Location(l) => check_fix(&l.fix),
        owntracks::Message::Transition(t) => check_fix(&t.fix),
        _ => {}
    }
}

fn check_fix(fix: &Fix) {
    let (lat, lon) = (fix.coord.lat(), fix.coord.lon());
    assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon), "coordinate out of range: {lat}, {lon}");
    if let Err(why) = (ImportOptions { now: NOW }).check_time(fix.time) {
        panic!("a fix the parser should have refused: {why}");
    }
    if let Some(extras) = &fix.extras {
        let parsed = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(extras.as_str());
        assert!(parsed.is_ok(), "extras are not a JSON object: {:?}: {parsed:?}", extras.as_str());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays the crash corpus of the ingest fuzz targets: each file under
    /// `tests/fuzz_regressions/<target>/` once made its target fail, and
    /// must now go through the same entry point without.
    #[test]
    fn fuzz_regressions_replay() {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fuzz_regressions");
        let mut replayed = 0;
        for dir in std::fs::read_dir(&root).unwrap() {
            let dir = dir.unwrap().path();
            let name = dir.file_name().unwrap().to_string_lossy().into_owned();
            let target = Target::from_name(&name).unwrap_or_else(|| panic!("no fuzz target called {name}"));
            for file in std::fs::read_dir(&dir).unwrap() {
                let path = file.unwrap().path();
                let data = std::fs::read(&path).unwrap();
                let outcome = std::panic::catch_unwind(|| run(target, &data));
                assert!(outcome.is_ok(), "{} fails again", path.display());
                replayed += 1;
            }
        }
        assert!(replayed > 0, "no regressions under {}", root.display());
    }
}
