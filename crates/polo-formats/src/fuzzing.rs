//! Entry points for the fuzz targets in `fuzz/` and for the regression
//! test that replays their crash corpus (`tests/corpus.rs`).
//!
//! Not part of the API: it reaches importers that are private on purpose,
//! one at a time, so a fuzzer spends its time inside one parser instead of
//! in the format detector. Every entry runs over bytes in memory and checks
//! what the importer hands the sink (see [`Check`]); a broken invariant
//! panics, which the fuzzer reports as a crash.

use std::io::{BufReader, Cursor, Read, Write};

use polo_domain::{Fix, Interval, Timestamp};

use crate::google::{self, ElementParser};
use crate::json_stream::{Element, JsonStream, Top};
use crate::{ImportError, ImportOptions, Reject, Sink};

/// A fuzz target: what its bytes are fed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// [`crate::detect`] over the bytes as a prefix.
    Detect,
    /// [`crate::import`]: detection and whichever importer it picks.
    Import,
    /// [`crate::import_seekable`]: zip archives (Takeout, KMZ, Strava,
    /// Apple Health) walked entry by entry, anything else as `Import`.
    Archive,
    /// The bytes gzip-compressed, then [`crate::import`]: the gzip path
    /// with meaningful content after decompression.
    Gzip,
    /// The JSON router (every JSON shape, Records on worker threads).
    Json,
    /// GPX.
    Gpx,
    /// KML.
    Kml,
    /// CSV with a header.
    Csv,
    /// Strava's `activities.csv`.
    Strava,
    /// OwnTracks Recorder `.rec`.
    OwntracksRec,
    /// FIT.
    Fit,
    /// TCX.
    Tcx,
    /// PLT (GeoLife, OziExplorer).
    Plt,
    /// NMEA 0183.
    Nmea,
    /// IGC.
    Igc,
    /// Headerless numeric text.
    Headerless,
    /// Google Records: the elements of a `locations` array.
    GoogleRecords,
    /// Google Semantic Location History: elements of `timelineObjects`.
    GoogleSemantic,
    /// Android on-device Timeline: elements of `semanticSegments`, then of
    /// `rawSignals` (the same bytes as both).
    GoogleAndroid,
    /// iOS on-device Timeline: elements of the top-level array.
    GoogleIos,
    /// GeoJSON features.
    Geojson,
    /// Polarsteps: elements of `locations` and of `all_steps`.
    Polarsteps,
}

impl Target {
    /// Every target, for the regression test.
    pub const ALL: [Self; 22] = [
        Self::Detect,
        Self::Import,
        Self::Archive,
        Self::Gzip,
        Self::Json,
        Self::Gpx,
        Self::Kml,
        Self::Csv,
        Self::Strava,
        Self::OwntracksRec,
        Self::Fit,
        Self::Tcx,
        Self::Plt,
        Self::Nmea,
        Self::Igc,
        Self::Headerless,
        Self::GoogleRecords,
        Self::GoogleSemantic,
        Self::GoogleAndroid,
        Self::GoogleIos,
        Self::Geojson,
        Self::Polarsteps,
    ];

    /// The name of the fuzz target (and of its corpus directories).
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Detect => "detect",
            Self::Import => "import",
            Self::Archive => "archive",
            Self::Gzip => "gzip",
            Self::Json => "json",
            Self::Gpx => "gpx",
            Self::Kml => "kml",
            Self::Csv => "csv",
            Self::Strava => "strava",
            Self::OwntracksRec => "owntracks_rec",
            Self::Fit => "fit",
            Self::Tcx => "tcx",
            Self::Plt => "plt",
            Self::Nmea => "nmea",
            Self::Igc => "igc",
            Self::Headerless => "headerless",
            Self::GoogleRecords => "google_records",
            Self::GoogleSemantic => "google_semantic",
            Self::GoogleAndroid => "google_android",
            Self::GoogleIos => "google_ios",
            Self::Geojson => "geojson",
            Self::Polarsteps => "polarsteps",
        }
    }

    /// The target called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }
}

/// "Now" for every run: fixed, so a crash reproduces whenever it is replayed.
pub const NOW: Timestamp = Timestamp(1_780_000_000_000);

/// Runs `target` over `data`. Errors of the importer are fine (that is what
/// most fuzz inputs get); panics are not.
///
/// # Panics
/// When an importer panics, or hands the sink something that breaks an
/// invariant of [`Check`].
pub fn run(target: Target, data: &[u8]) {
    let options = ImportOptions { now: NOW };
    let mut sink = Check::new(options);
    let reader = || BufReader::new(Cursor::new(data));
    let outcome: Result<(), ImportError> = match target {
        Target::Detect => {
            let _ = crate::detect(data);
            Ok(())
        }
        Target::Import => crate::import(Cursor::new(data), &options, &mut sink).map(drop),
        Target::Archive => crate::import_seekable(Cursor::new(data), &options, &mut sink).map(drop),
        Target::Gzip => {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(data)
                .and_then(|()| gz.finish())
                .map_err(ImportError::Io)
                .and_then(|compressed| crate::import(Cursor::new(compressed), &options, &mut sink).map(drop))
        }
        Target::Json => google::import_json(reader(), &options, &mut sink).map(drop),
        Target::Gpx => crate::gpx::import(reader(), &options, &mut sink),
        Target::Kml => crate::kml::import(reader(), &options, &mut sink),
        Target::Csv => crate::csv::import(reader(), &options, &mut sink),
        Target::Strava => crate::strava::import(reader(), &options, &mut sink),
        Target::OwntracksRec => crate::owntracks::import(reader(), &options, &mut sink),
        Target::Fit => crate::fit::import(reader(), &options, &mut sink),
        Target::Tcx => crate::tcx::import(reader(), &options, &mut sink),
        Target::Plt => crate::plt::import(reader(), &options, &mut sink).map(drop),
        Target::Nmea => crate::nmea::import(reader(), &options, &mut sink),
        Target::Igc => crate::igc::import(reader(), &options, &mut sink),
        Target::Headerless => crate::headerless::import(reader(), &options, &mut sink),
        Target::GoogleRecords => elements(data, &options, &mut sink, &mut [ElementParser::records()]),
        Target::GoogleSemantic => elements(data, &options, &mut sink, &mut [ElementParser::semantic()]),
        Target::GoogleAndroid => elements(
            data,
            &options,
            &mut sink,
            &mut [ElementParser::android_segment(), ElementParser::android_signal()],
        ),
        Target::GoogleIos => elements(data, &options, &mut sink, &mut [ElementParser::ios()]),
        Target::Geojson => elements(data, &options, &mut sink, &mut [ElementParser::geojson()]),
        Target::Polarsteps => elements(
            data,
            &options,
            &mut sink,
            &mut [ElementParser::polarsteps_location(), ElementParser::polarsteps_step()],
        ),
    };
    if let Err(error) = outcome {
        // Every error must print (messages name what and where).
        assert!(!error.to_string().is_empty(), "{target:?}: an error without a message");
    }
}

/// Splits `data` as the elements of a JSON array (compacted, as the router
/// hands them over) and gives each element to every parser in turn.
fn elements(
    data: &[u8],
    options: &ImportOptions,
    sink: &mut dyn Sink,
    parsers: &mut [ElementParser],
) -> Result<(), ImportError> {
    let framed = Cursor::new(b"[").chain(Cursor::new(data)).chain(Cursor::new(b"]"));
    let mut stream = JsonStream::new(BufReader::new(framed), "JSON");
    stream.set_compact(true);
    if stream.begin()? != Top::Array {
        return Ok(());
    }
    while let Some((offset, element)) = stream.next_element()? {
        match element {
            Element::Whole(raw) => {
                for parser in parsers.iter_mut() {
                    parser.element(options, sink, offset, raw);
                }
            }
            Element::TooLarge { head, why } => {
                sink.reject(Reject::new(crate::Position::Byte(offset), why, &String::from_utf8_lossy(head)))
            }
        }
    }
    stream.finish()
}

/// A sink that keeps nothing and checks what it is given: coordinates in
/// range, times that `ImportOptions::check_time` allows, extras that are a
/// JSON object, rejects with a reason and raw text within
/// [`Reject::MAX_RAW`], intervals that do not end before they start.
#[derive(Debug)]
pub struct Check {
    options: ImportOptions,
    /// Points received.
    pub points: u64,
    /// Intervals received.
    pub intervals: u64,
    /// Rejects received.
    pub rejects: u64,
}

impl Check {
    /// A sink checking against `options`.
    #[must_use]
    pub fn new(options: ImportOptions) -> Self {
        Self { options, points: 0, intervals: 0, rejects: 0 }
    }
}

fn check_fix(options: &ImportOptions, fix: &Fix) {
    let (lat, lon) = (fix.coord.lat(), fix.coord.lon());
    assert!((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon), "coordinate out of range: {lat}, {lon}");
    if let Err(why) = options.check_time(fix.time) {
        panic!("a fix the importer should have rejected: {why}");
    }
    if let Some(extras) = &fix.extras {
        let parsed = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(extras.as_str());
        assert!(parsed.is_ok(), "extras are not a JSON object: {:?}: {parsed:?}", extras.as_str());
    }
}

impl Sink for Check {
    fn point(&mut self, fix: Fix, _device: Option<&str>) {
        check_fix(&self.options, &fix);
        self.points += 1;
    }

    fn interval(&mut self, interval: Interval, _device: Option<&str>) {
        assert!(interval.start <= interval.end, "an interval ending before it starts: {interval:?}");
        self.intervals += 1;
    }

    fn reject(&mut self, reject: Reject) {
        assert!(!reject.reason.is_empty(), "a reject without a reason at {}", reject.position);
        assert!(reject.raw.len() <= Reject::MAX_RAW, "a reject keeping {} bytes of raw text", reject.raw.len());
        self.rejects += 1;
    }
}
