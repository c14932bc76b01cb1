//! The JSON router: decides which JSON shape a file is while streaming it,
//! and hands each record to the importer for that shape.
//!
//! None of Google's five JSON exports carries a version field, GeoJSON and
//! Overland share the shapes, and the top-level keys come in no fixed order
//! (`rawSignals` may precede `semanticSegments`). So the router never sniffs
//! a prefix: it walks the top level with [`JsonStream`] and decides per key —
//! `locations` (Records, an Overland batch or a Polarsteps track, told apart
//! by the first element), `timelineObjects` (Semantic Location History),
//! `semanticSegments` / `rawSignals` (Android on-device Timeline), `features`
//! (GeoJSON), `all_steps` (Polarsteps `trip.json`) — or, for a bare top-level array, by the first element (iOS
//! on-device Timeline, an array of GeoJSON features, My Activity). Values of
//! other keys are skipped unread.
//!
//! Elements are handed over compacted (insignificant whitespace removed
//! while the splitter copies them): Takeout files are pretty-printed, and
//! compact elements make `serde_json` faster and let raw values go into
//! extras without another pass. A reject's `raw` text is therefore the
//! compacted record; its position is the record's first byte in the file.
//!
//! Takeout `Settings.json` yields no points but names the devices of
//! `Records.json` (module `settings`). Files that are recognisably not
//! location data are refused with [`ImportError::NotLocationData`] naming
//! what they are: a `Settings.json` that names no device, `Timeline Edits.json` (its positions are edits of the
//! timeline, and it repeats what the timeline exports hold), My Activity, and
//! empty documents. Anything else unknown is [`ImportError::Unrecognised`]
//! with the top-level keys seen.

mod android;
mod geojson;
mod ios;
mod parallel;
mod polarsteps;
mod records;
mod semantic;
mod settings;
pub(crate) mod value;

use std::io::BufRead;

use crate::json_stream::{Element, JsonStream, Top};
use crate::{Format, ImportError, ImportOptions, Position, Sink};
use parallel::ParallelElements;
use value::{RawObject, str_of};

/// Imports any JSON location file.
///
/// # Errors
/// See the module documentation.
pub(crate) fn import_json<R: BufRead>(
    reader: R,
    options: &ImportOptions,
    sink: &mut dyn Sink,
) -> Result<Format, ImportError> {
    let mut stream = JsonStream::new(reader, "JSON");
    stream.set_compact(true);
    match stream.begin()? {
        Top::Array => import_array(&mut stream, options, sink),
        Top::Object => ObjectImport::new(options, sink).run(&mut stream),
    }
}

/// What a top-level array holds, decided from its first element.
enum ArrayShape {
    Ios,
    Features,
}

fn import_array<R: BufRead>(
    stream: &mut JsonStream<R>,
    options: &ImportOptions,
    sink: &mut dyn Sink,
) -> Result<Format, ImportError> {
    let Some((offset, first)) = stream.next_element()? else {
        stream.finish()?;
        return Err(ImportError::NotLocationData { what: "an empty JSON array: it contains no records".to_owned() });
    };
    let shape = match &first {
        Element::Whole(raw) => classify_array_element(raw)?,
        Element::TooLarge { why, .. } => {
            return Err(ImportError::Unrecognised {
                hint: format!("a JSON array whose first element cannot be read: {why}"),
            });
        }
    };
    let mut ios = ios::Ios::default();
    let mut features = geojson::GeoJson::new(polo_domain::SourceFormat::Geojson);
    let mut next = Some((offset, first));
    while let Some((offset, element)) = next {
        if let Some(raw) = whole_or_reject(sink, offset, element) {
            match shape {
                ArrayShape::Ios => ios.element(options, sink, offset, raw),
                ArrayShape::Features => features.feature(options, sink, offset, raw),
            }
        }
        next = stream.next_element()?;
    }
    stream.finish()?;
    Ok(match shape {
        ArrayShape::Ios => Format::GoogleIosTimeline,
        ArrayShape::Features => Format::Geojson,
    })
}

fn classify_array_element(raw: &[u8]) -> Result<ArrayShape, ImportError> {
    let Ok(obj) = serde_json::from_slice::<RawObject<'_>>(raw) else {
        return Err(ImportError::Unrecognised { hint: "a JSON array whose first element is not an object".to_owned() });
    };
    let is = |k: &str| obj.has(k);
    if ["visit", "activity", "timelinePath", "timelineMemory"].iter().any(|k| is(k)) || is("startTime") && is("endTime")
    {
        return Ok(ArrayShape::Ios);
    }
    if str_of(&obj, "type").as_deref() == Some("Feature") || is("geometry") {
        return Ok(ArrayShape::Features);
    }
    if is("header") && is("title") && (is("products") || is("time") || is("titleUrl")) {
        return Err(ImportError::NotLocationData {
            what: "a Google My Activity file (a list of things you did, without locations)".to_owned(),
        });
    }
    Err(ImportError::Unrecognised { hint: format!("a JSON array of objects with keys {}", obj.key_list()) })
}

/// What a top-level `locations` array holds, decided by its first element.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum LocationsKind {
    Records,
    Overland,
    Polarsteps,
}

/// Top-level keys of Takeout's `Settings.json`.
const SETTINGS_KEYS: [&str; 8] = [
    "deviceSettings",
    "historyEnabled",
    "retentionWindowDays",
    "createdTime",
    "modifiedTime",
    "hasReportedLocations",
    "hasSetRetention",
    "gaiaId",
];

/// The state of importing a top-level object.
struct ObjectImport<'s> {
    options: &'s ImportOptions,
    sink: &'s mut dyn Sink,
    format: Option<Format>,
    keys: Vec<String>,
    android: android::Android,
    geojson: geojson::GeoJson,
    /// `type`, `geometry`, `properties` and `id` of a bare Feature.
    type_name: Option<String>,
    bare_feature: Vec<(String, Vec<u8>)>,
}

impl<'s> ObjectImport<'s> {
    fn new(options: &'s ImportOptions, sink: &'s mut dyn Sink) -> Self {
        Self {
            options,
            sink,
            format: None,
            keys: Vec::new(),
            android: android::Android::default(),
            geojson: geojson::GeoJson::new(polo_domain::SourceFormat::Geojson),
            type_name: None,
            bare_feature: Vec::new(),
        }
    }

    fn decided(&mut self, format: Format) {
        self.format.get_or_insert(format);
    }

    fn run<R: BufRead>(mut self, stream: &mut JsonStream<R>) -> Result<Format, ImportError> {
        while let Some(key) = stream.next_key()? {
            match key.as_str() {
                "locations" => self.locations(stream)?,
                "timelineObjects" => {
                    self.decided(Format::GoogleSemantic);
                    let (options, sink) = (self.options, &mut *self.sink);
                    each_element(stream, &key, |offset, element| {
                        if let Some(raw) = whole_or_reject(sink, offset, element) {
                            semantic::element(options, sink, offset, raw);
                        }
                    })?;
                }
                "semanticSegments" => {
                    self.decided(Format::GoogleAndroidTimeline);
                    let (options, sink, android) = (self.options, &mut *self.sink, &mut self.android);
                    each_element(stream, &key, |offset, element| {
                        if let Some(raw) = whole_or_reject(sink, offset, element) {
                            android.segment(options, sink, offset, raw);
                        }
                    })?;
                }
                "rawSignals" => {
                    self.decided(Format::GoogleAndroidTimeline);
                    let (options, sink, android) = (self.options, &mut *self.sink, &mut self.android);
                    each_element(stream, &key, |offset, element| {
                        if let Some(raw) = whole_or_reject(sink, offset, element) {
                            android.signal(options, sink, offset, raw);
                        }
                    })?;
                }
                "userLocationProfile" => {
                    // Frequent places carry no time: see android.rs.
                    self.decided(Format::GoogleAndroidTimeline);
                    stream.skip_value()?;
                }
                "features" => {
                    self.decided(Format::Geojson);
                    let (options, sink, geojson) = (self.options, &mut *self.sink, &mut self.geojson);
                    each_element(stream, &key, |offset, element| {
                        if let Some(raw) = whole_or_reject(sink, offset, element) {
                            geojson.feature(options, sink, offset, raw);
                        }
                    })?;
                }
                "all_steps" => {
                    // Polarsteps trip.json.
                    self.decided(Format::Polarsteps);
                    let (options, sink) = (self.options, &mut *self.sink);
                    each_element(stream, &key, |offset, element| {
                        if let Some(raw) = whole_or_reject(sink, offset, element) {
                            polarsteps::step(options, sink, offset, raw);
                        }
                    })?;
                }
                "deviceSettings" => {
                    let sink = &mut *self.sink;
                    let mut named = false;
                    each_element(stream, &key, |offset, element| {
                        if let Some(raw) = whole_or_reject(sink, offset, element) {
                            named |= settings::device(sink, offset, raw);
                        }
                    })?;
                    if named {
                        self.decided(Format::GoogleSettings);
                    }
                }
                "timelineEdits" => {
                    return Err(ImportError::NotLocationData {
                        what: "Google Takeout \"Timeline Edits.json\" (edits made in the Timeline app, not your \
                               location history; import Records.json or the on-device Timeline export instead)"
                            .to_owned(),
                    });
                }
                "type" => {
                    let (_, raw) = stream.read_value()?;
                    self.type_name = serde_json::from_slice::<String>(raw).ok();
                }
                "crs" => {
                    let (_, raw) = stream.read_value()?;
                    geojson::check_crs(raw)?;
                }
                "geometry" | "properties" | "id" => {
                    let (_, raw) = stream.read_value()?;
                    self.bare_feature.push((key.clone(), raw.to_vec()));
                }
                _ => stream.skip_value()?,
            }
            if self.keys.len() < 32 {
                self.keys.push(key);
            }
        }
        stream.finish()?;
        self.conclude()
    }

    /// `locations`: Records.json, or an Overland batch when the first
    /// element is a GeoJSON Feature.
    fn locations<R: BufRead>(&mut self, stream: &mut JsonStream<R>) -> Result<(), ImportError> {
        let mut kind: Option<LocationsKind> = None;
        let (options, sink, geojson) = (self.options, &mut *self.sink, &mut self.geojson);
        std::thread::scope(|scope| {
            // Records are parsed on a worker thread (see parallel.rs); Overland
            // batches and Polarsteps tracks are small and stay on this one.
            let mut records: Option<ParallelElements<'_>> = None;
            let mut sink = Some(sink);
            let result = each_element(stream, "locations", |offset, element| {
                let raw = match element {
                    Element::Whole(raw) => raw,
                    Element::TooLarge { head, why } => {
                        match (records.as_mut(), sink.as_deref_mut()) {
                            (Some(records), _) => records.reject(offset, head, why),
                            (None, Some(sink)) => value::reject(sink, offset, why, head),
                            (None, None) => {}
                        }
                        return;
                    }
                };
                let kind = *kind.get_or_insert_with(|| match RawObject::from_slice(raw) {
                    Ok(o) if str_of(&o, "type").as_deref() == Some("Feature") || o.has("geometry") => {
                        LocationsKind::Overland
                    }
                    Ok(o) if polarsteps::is_location(&o) => LocationsKind::Polarsteps,
                    _ => LocationsKind::Records,
                });
                match kind {
                    LocationsKind::Overland | LocationsKind::Polarsteps => {
                        if let Some(sink) = sink.as_deref_mut() {
                            if kind == LocationsKind::Overland {
                                geojson.feature(options, sink, offset, raw);
                            } else {
                                polarsteps::location(options, sink, offset, raw);
                            }
                        }
                    }
                    LocationsKind::Records => {
                        if records.is_none()
                            && let Some(sink) = sink.take()
                        {
                            records = Some(ParallelElements::start(scope, options, records::element, sink));
                        }
                        if let Some(records) = records.as_mut() {
                            records.push(offset, raw);
                        }
                    }
                }
            });
            if let Some(records) = records {
                records.finish();
            }
            result
        })?;
        self.decided(match kind {
            Some(LocationsKind::Overland) => Format::Overland,
            Some(LocationsKind::Polarsteps) => Format::Polarsteps,
            _ => Format::GoogleRecords,
        });
        Ok(())
    }

    fn conclude(mut self) -> Result<Format, ImportError> {
        if let Some(format) = self.format {
            return Ok(format);
        }
        let has = |k: &str| self.keys.iter().any(|s| s == k);
        if self.type_name.as_deref() == Some("Feature") || has("geometry") {
            let mut text = b"{\"type\":\"Feature\"".to_vec();
            for (k, v) in &self.bare_feature {
                text.push(b',');
                text.extend_from_slice(&serde_json::to_vec(k).unwrap_or_default());
                text.push(b':');
                text.extend_from_slice(v);
            }
            text.push(b'}');
            self.geojson.feature(self.options, self.sink, 0, &text);
            return Ok(Format::Geojson);
        }
        if self.type_name.as_deref() == Some("FeatureCollection") {
            return Ok(Format::Geojson);
        }
        if self.keys.is_empty() {
            return Err(ImportError::NotLocationData {
                what: "an empty JSON object: it contains no records".to_owned(),
            });
        }
        if self.keys.iter().any(|k| SETTINGS_KEYS.contains(&k.as_str())) {
            return Err(ImportError::NotLocationData {
                what: "Google Takeout \"Settings.json\" (your Location History settings and devices, no locations)"
                    .to_owned(),
            });
        }
        Err(ImportError::Unrecognised { hint: format!("a JSON object with top-level keys {}", self.keys.join(", ")) })
    }
}

/// The element's text, or `None` after rejecting an element that broke a
/// size limit (see [`Element::TooLarge`]).
fn whole_or_reject<'a>(sink: &mut dyn Sink, offset: u64, element: Element<'a>) -> Option<&'a [u8]> {
    match element {
        Element::Whole(raw) => Some(raw),
        Element::TooLarge { head, why } => {
            value::reject(sink, offset, why, head);
            None
        }
    }
}

/// Streams the array that is the value of `key`, element by element.
fn each_element<R: BufRead>(
    stream: &mut JsonStream<R>,
    key: &str,
    mut f: impl FnMut(u64, Element<'_>),
) -> Result<(), ImportError> {
    if !stream.begin_array()? {
        if stream.peek_value()? == b'n' {
            // `"key": null`: nothing there.
            return stream.skip_value();
        }
        return Err(ImportError::Malformed {
            format: "JSON",
            position: Position::Byte(stream.offset()),
            message: format!("expected an array as the value of {key:?}"),
        });
    }
    while let Some((offset, raw)) = stream.next_element()? {
        f(offset, raw);
    }
    Ok(())
}

/// One record parser with its state across a file's elements, for the fuzz
/// targets (`crate::fuzzing`), which feed a parser without the router.
pub(crate) struct ElementParser(Parser);

enum Parser {
    Records,
    Semantic,
    AndroidSegment(android::Android),
    AndroidSignal(android::Android),
    Ios(ios::Ios),
    Geojson(geojson::GeoJson),
    PolarstepsLocation,
    PolarstepsStep,
}

impl ElementParser {
    pub(crate) fn records() -> Self {
        Self(Parser::Records)
    }
    pub(crate) fn semantic() -> Self {
        Self(Parser::Semantic)
    }
    pub(crate) fn android_segment() -> Self {
        Self(Parser::AndroidSegment(android::Android::default()))
    }
    pub(crate) fn android_signal() -> Self {
        Self(Parser::AndroidSignal(android::Android::default()))
    }
    pub(crate) fn ios() -> Self {
        Self(Parser::Ios(ios::Ios::default()))
    }
    pub(crate) fn geojson() -> Self {
        Self(Parser::Geojson(geojson::GeoJson::new(polo_domain::SourceFormat::Geojson)))
    }
    pub(crate) fn polarsteps_location() -> Self {
        Self(Parser::PolarstepsLocation)
    }
    pub(crate) fn polarsteps_step() -> Self {
        Self(Parser::PolarstepsStep)
    }

    /// Parses one (compacted) element that starts at `offset`.
    pub(crate) fn element(&mut self, options: &ImportOptions, sink: &mut dyn Sink, offset: u64, raw: &[u8]) {
        match &mut self.0 {
            Parser::Records => records::element(options, sink, offset, raw),
            Parser::Semantic => semantic::element(options, sink, offset, raw),
            Parser::AndroidSegment(android) => android.segment(options, sink, offset, raw),
            Parser::AndroidSignal(android) => android.signal(options, sink, offset, raw),
            Parser::Ios(ios) => ios.element(options, sink, offset, raw),
            Parser::Geojson(geojson) => geojson.feature(options, sink, offset, raw),
            Parser::PolarstepsLocation => polarsteps::location(options, sink, offset, raw),
            Parser::PolarstepsStep => polarsteps::step(options, sink, offset, raw),
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use polo_domain::{Fix, Interval, Timestamp};

    use super::*;
    use crate::Reject;

    /// A sink that keeps everything.
    #[derive(Default, Debug)]
    pub(crate) struct Collect {
        pub points: Vec<(Fix, Option<String>)>,
        pub intervals: Vec<Interval>,
        pub rejects: Vec<Reject>,
        pub out_of_range: Vec<&'static str>,
        pub labels: Vec<(String, String)>,
    }

    impl Sink for Collect {
        fn point(&mut self, fix: Fix, device: Option<&str>) {
            self.points.push((fix, device.map(str::to_owned)));
        }
        fn interval(&mut self, interval: Interval, _device: Option<&str>) {
            self.intervals.push(interval);
        }
        fn reject(&mut self, reject: Reject) {
            self.rejects.push(reject);
        }
        fn out_of_range(&mut self, field: &'static str) {
            self.out_of_range.push(field);
        }
        fn device_label(&mut self, device: &str, label: &str) {
            self.labels.push((device.to_owned(), label.to_owned()));
        }
    }

    /// "Now" for tests: 2026-01-01.
    pub(crate) fn options() -> ImportOptions {
        ImportOptions { now: Timestamp(1_767_225_600_000) }
    }

    pub(crate) fn import_str(text: &str) -> (Result<Format, ImportError>, Collect) {
        let mut sink = Collect::default();
        let result = import_json(text.as_bytes(), &options(), &mut sink);
        (result, sink)
    }

    /// One rule in every JSON format: a record naming a key twice (at any
    /// depth) is rejected with the key's name; the records around it import.
    #[test]
    fn duplicate_keys_are_a_reject_in_every_json_format() {
        let cases = [
            (
                "google-records",
                r#"{"locations":[{"latitudeE7":1,"longitudeE7":2,"latitudeE7":3,"timestamp":"2020-01-01T00:00:00Z"},
                  {"latitudeE7":1,"longitudeE7":2,"timestamp":"2020-01-01T00:00:01Z"}]}"#,
                "latitudeE7",
            ),
            (
                "google-semantic",
                r#"{"timelineObjects":[{"placeVisit":{"location":{"latitudeE7":1,"longitudeE7":2,"longitudeE7":3},"duration":{"startTimestamp":"2020-01-01T00:00:00Z"}}},
                  {"placeVisit":{"location":{"latitudeE7":1,"longitudeE7":2},"duration":{"startTimestamp":"2020-01-02T00:00:00Z"}}}]}"#,
                "longitudeE7",
            ),
            (
                "google-android-timeline",
                r#"{"semanticSegments":[{"startTime":"2020-01-01T00:00:00Z","endTime":"2020-01-01T01:00:00Z","startTime":"2020-01-01T00:30:00Z",
                    "visit":{"topCandidate":{"placeLocation":{"latLng":"1.0°, 2.0°"}}}},
                  {"startTime":"2020-01-02T00:00:00Z","endTime":"2020-01-02T01:00:00Z","visit":{"topCandidate":{"placeLocation":{"latLng":"1.0°, 2.0°"}}}}],
                  "rawSignals":[{"position":{"LatLng":"1.0°, 2.0°","timestamp":"2020-01-01T00:00:00Z","timestamp":"2020-01-01T00:00:09Z"}}]}"#,
                "startTime|timestamp",
            ),
            (
                "google-ios-timeline",
                r#"[{"startTime":"2020-01-01T00:00:00Z","endTime":"2020-01-01T01:00:00Z","timelinePath":[{"point":"geo:1.0,2.0","point":"geo:3.0,4.0","durationMinutesOffsetFromStartTime":"1"}]},
                  {"startTime":"2020-01-02T00:00:00Z","endTime":"2020-01-02T01:00:00Z","timelinePath":[{"point":"geo:1.0,2.0","durationMinutesOffsetFromStartTime":"1"}]}]"#,
                "point",
            ),
            (
                "geojson",
                r#"{"type":"FeatureCollection","features":[
                  {"type":"Feature","geometry":{"type":"Point","coordinates":[2,1]},"properties":{"timestamp":"2020-01-01T00:00:00Z","speed":1,"speed":2}},
                  {"type":"Feature","geometry":{"type":"Point","coordinates":[2,1]},"properties":{"timestamp":"2020-01-01T00:00:01Z"}}]}"#,
                "speed",
            ),
        ];
        for (format, text, keys) in cases {
            let (result, got) = import_str(text);
            assert_eq!(result.unwrap().name(), format);
            assert!(!got.rejects.is_empty(), "{format}: no reject");
            for r in &got.rejects {
                let named = keys.split('|').any(|key| r.reason.starts_with(&format!("duplicate key {key:?}")));
                assert!(named, "{format}: {}", r.reason);
            }
            assert!(got.points.len() + got.intervals.len() >= 1, "{format}: the record after it was lost");
        }
    }

    fn refused(text: &str) -> String {
        match import_str(text).0 {
            Err(ImportError::NotLocationData { what }) => what,
            other => panic!("{text} should be refused, got {other:?}"),
        }
    }

    #[test]
    fn refuses_takeout_files_that_hold_no_locations() {
        assert!(
            refused(r#"{"createdTime":"2018-04-13T21:30:16.606Z","deviceSettings":[{"deviceTag":-1}]}"#)
                .contains("Settings.json")
        );
        assert!(refused(r#"{"historyEnabled":true,"retentionWindowDays":90}"#).contains("Settings.json"));
        assert!(refused(r#"{"timelineEdits":[{"deviceId":"-1","rawSignal":{}}]}"#).contains("Timeline Edits.json"));
        assert!(
            refused(
                r#"[{"header":"Maps","title":"Searched for pizza","time":"2020-01-01T00:00:00Z","products":["Maps"]}]"#
            )
            .contains("My Activity")
        );
        assert!(refused("{}").contains("contains no records"));
        assert!(refused(" [ ] ").contains("contains no records"));
    }

    #[test]
    fn unknown_shapes_list_their_keys() {
        let (result, _) = import_str(r#"{"foo":1,"bar":[1,2]}"#);
        match result {
            Err(ImportError::Unrecognised { hint }) => assert!(hint.contains("foo, bar"), "{hint}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(import_str(r#"[{"x":1}]"#).0, Err(ImportError::Unrecognised { hint }) if hint.contains('x')));
        assert!(matches!(import_str("[1,2]").0, Err(ImportError::Unrecognised { .. })));
    }

    #[test]
    fn key_order_does_not_matter() {
        let text = r#"{"userLocationProfile":{"frequentPlaces":[]},
            "rawSignals":[{"position":{"LatLng":"48.833657°, 2.256223°","timestamp":"2024-06-06T11:44:37.000+01:00"}}],
            "semanticSegments":[{"startTime":"2024-06-06T08:00:00.000+01:00","endTime":"2024-06-06T10:00:00.000+01:00",
               "timelinePath":[{"point":"50.0506312°, 14.3439906°","time":"2024-06-06T08:14:00.000+01:00"}]}]}"#;
        let (format, got) = import_str(text);
        assert_eq!(format.unwrap(), Format::GoogleAndroidTimeline);
        assert_eq!(got.points.len(), 2);
    }

    #[test]
    fn bom_and_whitespace_before_the_document() {
        let (format, got) = import_str(
            "\u{feff}\n  {\"locations\":[{\"timestampMs\":\"1366007486860\",\"latitudeE7\":1,\"longitudeE7\":1}]}",
        );
        assert_eq!(format.unwrap(), Format::GoogleRecords);
        assert_eq!(got.points.len(), 1);
    }

    #[test]
    fn broken_structure_is_malformed_and_keeps_earlier_records() {
        let (result, got) =
            import_str(r#"{"locations":[{"timestampMs":"1366007486860","latitudeE7":1,"longitudeE7":1} {"#);
        assert!(matches!(result, Err(ImportError::Malformed { position: Position::Byte(77), .. })), "{result:?}");
        assert_eq!(got.points.len(), 1);
    }
}
