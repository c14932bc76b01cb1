//! Format detection from content, never from the file name.
//!
//! File names get localised (`Zeitachse.json`), renamed and mangled by
//! browsers, so polo looks only at the bytes: magic numbers for binary
//! containers, the root element for XML, the shape of the first line for the
//! line formats (the first lines' numbers for headerless text), and — for JSON — the top-level keys, which the JSON router
//! resolves while streaming because their order is not fixed.

use std::fmt;

/// A format polo can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Format {
    /// Google Takeout `Records.json` (every era).
    GoogleRecords,
    /// Google Takeout `Settings.json` naming its devices (no locations).
    GoogleSettings,
    /// Google Takeout Semantic Location History month file.
    GoogleSemantic,
    /// Android on-device Timeline export.
    GoogleAndroidTimeline,
    /// iOS on-device Timeline export.
    GoogleIosTimeline,
    /// GPX 1.0 / 1.1.
    Gpx,
    /// KML (KMZ is a zip holding KML).
    Kml,
    /// GeoJSON.
    Geojson,
    /// An Overland batch (`{"locations":[Feature…]}`).
    Overland,
    /// CSV with a header.
    Csv,
    /// OwnTracks Recorder `.rec`.
    OwntracksRec,
    /// Garmin FIT.
    Fit,
    /// Garmin Training Center XML.
    Tcx,
    /// A GeoLife `.plt` trajectory.
    GeolifePlt,
    /// An OziExplorer `.plt` track.
    OziPlt,
    /// An NMEA 0183 sentence log.
    Nmea,
    /// An IGC flight recorder file.
    Igc,
    /// Numeric text without a header; the columns are guessed and the guess is noted.
    HeaderlessText,
    /// A Polarsteps trip export (`locations.json`, `trip.json`).
    Polarsteps,
    /// Strava's `activities.csv`: one activity interval per row.
    StravaActivities,
    /// A zip archive (Takeout, KMZ); every entry is detected on its own.
    Zip,
    /// A gzip-compressed file of any of the above.
    Gzip,
}

impl Format {
    /// The stable name used in summaries and the API.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::GoogleRecords => "google-records",
            Self::GoogleSettings => "google-settings",
            Self::GoogleSemantic => "google-semantic",
            Self::GoogleAndroidTimeline => "google-android-timeline",
            Self::GoogleIosTimeline => "google-ios-timeline",
            Self::Gpx => "gpx",
            Self::Kml => "kml",
            Self::Geojson => "geojson",
            Self::Overland => "overland",
            Self::Csv => "csv",
            Self::OwntracksRec => "owntracks-rec",
            Self::Fit => "fit",
            Self::Tcx => "tcx",
            Self::GeolifePlt => "geolife-plt",
            Self::OziPlt => "ozi-plt",
            Self::Nmea => "nmea",
            Self::Igc => "igc",
            Self::HeaderlessText => "headerless-text",
            Self::Polarsteps => "polarsteps",
            Self::StravaActivities => "strava-activities",
            Self::Zip => "zip",
            Self::Gzip => "gzip",
        }
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What the first bytes of a file say it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Detected {
    /// JSON: the JSON router decides which shape while streaming.
    Json,
    /// A GPX document.
    Gpx,
    /// A KML document.
    Kml,
    /// A FIT file.
    Fit,
    /// A TCX document.
    Tcx,
    /// A `.plt` track (GeoLife or OziExplorer).
    Plt,
    /// NMEA 0183 sentences.
    Nmea,
    /// An IGC flight recorder file.
    Igc,
    /// Numeric lines without a header (`lat lon epoch_ms alt`).
    HeaderlessText,
    /// A zip archive.
    Zip,
    /// gzip-compressed content.
    Gzip,
    /// OwnTracks Recorder lines.
    OwntracksRec,
    /// Delimited text with a header.
    Csv,
    /// Strava's `activities.csv` (the activity list of a bulk export).
    StravaActivities,
    /// Something recognisable that holds no location data.
    NotLocation(String),
    /// Nothing polo recognises.
    Unrecognised(String),
}

const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Strips a UTF-8 BOM and leading whitespace (some GPX files start with a
/// blank line before the XML declaration, which is not well-formed XML).
#[must_use]
pub fn skip_bom_and_space(bytes: &[u8]) -> &[u8] {
    let bytes = bytes.strip_prefix(UTF8_BOM).unwrap_or(bytes);
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace()).unwrap_or(bytes.len());
    &bytes[start..]
}

/// Classifies a file from its first bytes (a few KB are plenty; pass what
/// is available).
#[must_use]
pub fn detect(prefix: &[u8]) -> Detected {
    if prefix.starts_with(b"PK\x03\x04") || prefix.starts_with(b"PK\x05\x06") {
        return Detected::Zip;
    }
    if prefix.starts_with(b"\x1f\x8b") {
        return Detected::Gzip;
    }
    if prefix.len() >= 12 && &prefix[8..12] == b".FIT" {
        return Detected::Fit;
    }
    if let Some(what) = binary_non_location(prefix) {
        return Detected::NotLocation(what.to_owned());
    }
    let text = skip_bom_and_space(prefix);
    match text.first() {
        None => return Detected::Unrecognised("the file is empty".to_owned()),
        Some(b'{' | b'[') => return Detected::Json,
        Some(b'<') => return detect_xml(text),
        _ => {}
    }
    let lossy = String::from_utf8_lossy(&text[..text.len().min(4096)]);
    if lossy.contains("encrypted Timeline backups") || lossy.contains("encrypted backups") && lossy.contains("Timeline")
    {
        return Detected::NotLocation(
            "Google's placeholder for encrypted Timeline backups: export the timeline on the phone instead \
             (Settings → Location → Timeline → Export) and import that file"
                .to_owned(),
        );
    }
    let first_line = lossy.lines().next().unwrap_or("");
    if is_owntracks_rec_line(first_line) {
        return Detected::OwntracksRec;
    }
    if let Some(line_format) = detect_line_format(first_line, &lossy, text.len() > 4096) {
        return line_format;
    }
    if crate::strava::is_activities_header(first_line) {
        return Detected::StravaActivities;
    }
    if crate::csv::looks_like_csv_header(first_line) {
        return Detected::Csv;
    }
    if crate::headerless::guess(complete_lines(&lossy, text.len() > 4096)).is_some() {
        return Detected::HeaderlessText;
    }
    Detected::Unrecognised(format!("first line is {:?}", first_line.chars().take(80).collect::<String>()))
}

/// The line formats recognisable by their first line or header records.
fn detect_line_format(first_line: &str, text: &str, truncated: bool) -> Option<Detected> {
    if crate::plt::Flavour::of_first_line(first_line).is_some() {
        return Some(Detected::Plt);
    }
    // Loggers may put their own timestamp before the sentence.
    if first_line.find('$').is_some_and(|at| crate::nmea::is_sentence(&first_line[at..])) {
        return Some(Detected::Nmea);
    }
    if crate::igc::looks_like_igc(&complete_lines(text, truncated).collect::<Vec<_>>().join("\n")) {
        return Some(Detected::Igc);
    }
    None
}

/// The lines of a sniffed prefix, without the last one when the prefix was
/// cut off in the middle of it.
fn complete_lines(text: &str, truncated: bool) -> impl Iterator<Item = &str> {
    let mut lines: Vec<&str> = text.lines().collect();
    if truncated && lines.len() > 1 {
        lines.pop();
    }
    lines.into_iter()
}

fn binary_non_location(prefix: &[u8]) -> Option<&'static str> {
    let magic: [(&[u8], &str); 6] = [
        (b"%PDF", "a PDF document"),
        (b"\x89PNG", "a PNG image"),
        (b"\xFF\xD8\xFF", "a JPEG image"),
        (b"GIF8", "a GIF image"),
        (b"SQLite format 3\0", "an SQLite database"),
        (b"\x00\x00\x00\x0cJXL", "a JPEG XL image"),
    ];
    if let Some((_, what)) = magic.iter().find(|(m, _)| prefix.starts_with(m)) {
        return Some(what);
    }
    if prefix.len() >= 12 && &prefix[4..8] == b"ftyp" {
        return Some(if prefix[8..12].starts_with(b"hei") || prefix[8..12].starts_with(b"mif") {
            "a HEIC image"
        } else {
            "an MP4/QuickTime video"
        });
    }
    if prefix.starts_with(b"\x00\x00\x00\x01Bud1") {
        return Some("a macOS .DS_Store file");
    }
    None
}

fn detect_xml(text: &[u8]) -> Detected {
    // Apple Health's export.xml opens with a DOCTYPE whose internal DTD can
    // outlast the sniffed prefix, so it is recognised by the DOCTYPE too.
    if memchr::memmem::find(&text[..text.len().min(4096)], b"<!DOCTYPE HealthData").is_some() {
        return apple_health_export();
    }
    // Find the first start tag that is not a declaration, comment or doctype.
    let mut rest = text;
    loop {
        let Some(lt) = rest.iter().position(|&b| b == b'<') else {
            return Detected::Unrecognised("XML without a root element".to_owned());
        };
        rest = &rest[lt + 1..];
        match rest.first() {
            Some(b'?' | b'!') => continue,
            Some(_) => break,
            None => return Detected::Unrecognised("XML without a root element".to_owned()),
        }
    }
    let end = rest.iter().position(|b| b.is_ascii_whitespace() || *b == b'>' || *b == b'/').unwrap_or(rest.len());
    let name = String::from_utf8_lossy(&rest[..end]);
    let local = name.rsplit(':').next().unwrap_or(&name).to_ascii_lowercase();
    match local.as_str() {
        "gpx" => Detected::Gpx,
        "kml" => Detected::Kml,
        "html" => {
            Detected::NotLocation("an HTML page (Takeout's archive_browser.html is an index, not data)".to_owned())
        }
        "trainingcenterdatabase" => Detected::Tcx,
        "svg" => Detected::NotLocation("an SVG image".to_owned()),
        "healthdata" => apple_health_export(),
        "clinicaldocument" => {
            Detected::NotLocation("Apple Health's clinical records (export_cda.xml), not locations".to_owned())
        }
        _ => Detected::Unrecognised(format!("XML with root element <{name}>")),
    }
}

fn apple_health_export() -> Detected {
    Detected::NotLocation(
        "Apple Health's export.xml (health records, not locations; the workout routes are the GPX files \
         in workout-routes/, which are imported)"
            .to_owned(),
    )
}

/// True for a Recorder line: an ISO UTC timestamp, whitespace, a topic
/// token, whitespace, then a JSON object.
#[must_use]
pub fn is_owntracks_rec_line(line: &str) -> bool {
    let mut parts = line.split_whitespace();
    let Some(stamp) = parts.next() else { return false };
    let stamp_ok = stamp.len() >= 19
        && stamp.as_bytes()[4] == b'-'
        && stamp.as_bytes()[10] == b'T'
        && polo_domain::time::parse_timestamp(stamp).is_ok();
    stamp_ok && line.contains('{')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sniffs_containers_and_markup() {
        assert_eq!(detect(b"PK\x03\x04rest"), Detected::Zip);
        assert_eq!(detect(b"\x1f\x8b\x08"), Detected::Gzip);
        assert_eq!(detect(b"\x0e\x10\x00\x00\x00\x00\x00\x00.FIT"), Detected::Fit);
        assert_eq!(detect(b"\xEF\xBB\xBF\n  {\"locations\":[]}"), Detected::Json);
        assert_eq!(detect(b"\n<?xml version=\"1.0\"?>\n<gpx version=\"1.1\">"), Detected::Gpx);
        assert_eq!(detect(b"<?xml version=\"1.0\"?><!-- c --><kml:kml xmlns:kml=\"x\">"), Detected::Kml);
        assert_eq!(detect(b"<kml xmlns=\"http://www.opengis.net/kml/2.2\">"), Detected::Kml);
        assert!(matches!(detect(b"%PDF-1.4"), Detected::NotLocation(w) if w.contains("PDF")));
        assert!(matches!(detect(b"<!DOCTYPE html><html>"), Detected::NotLocation(w) if w.contains("HTML")));
        let health = b"<?xml version=\"1.0\"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData (ExportDate)>\n";
        assert!(matches!(detect(health), Detected::NotLocation(w) if w.contains("Apple Health")));
    }

    #[test]
    fn recognises_the_encrypted_backup_placeholder() {
        let text = b"You have encrypted Timeline backups stored on Google servers. To export...";
        assert!(matches!(detect(text), Detected::NotLocation(w) if w.contains("encrypted Timeline")));
    }

    #[test]
    fn recognises_rec_lines_with_tabs_or_spaces() {
        assert_eq!(
            detect(b"2024-03-01T09:03:09Z\t*                 \t{\"_type\":\"location\"}\n"),
            Detected::OwntracksRec
        );
        assert_eq!(detect(b"2023-02-20T18:46:22Z  *        {\"_type\":\"location\"}\n"), Detected::OwntracksRec);
    }

    #[test]
    fn recognises_the_track_and_logger_formats() {
        let tcx = b"<?xml version=\"1.0\"?>\n<TrainingCenterDatabase xmlns=\"http://www.garmin.com/xmlschemas/TrainingCenterDatabase/v2\">";
        assert_eq!(detect(tcx), Detected::Tcx);
        assert_eq!(detect(b"Geolife trajectory\r\nWGS 84\r\n"), Detected::Plt);
        assert_eq!(detect(b"OziExplorer Track Point File Version 2.1\r\nWGS 84\r\n"), Detected::Plt);
        assert_eq!(detect(b"$GPGGA,123519,4807.038,N,01131.000,E,1,08,0.9,545.4,M,46.9,M,,*47\r\n"), Detected::Nmea);
        assert_eq!(
            detect(b"2024-01-01 10:00:00 $GPRMC,123519,A,4807.038,N,01131.000,E,,,230394,,*6A\n"),
            Detected::Nmea
        );
        assert_eq!(
            detect(b"AXXXABC FLIGHT:1\r\nHFDTE160701\r\nB1101355206343N00006198WA0058700558\r\n"),
            Detected::Igc
        );
        assert_eq!(detect(b"62.6 29.7 1313136000000 86\n62.7 29.8 1313136002000 87\n"), Detected::HeaderlessText);
        // A header with lat/lon names stays CSV.
        assert_eq!(detect(b"lat,lon,time\n62.6,29.7,1313136000\n"), Detected::Csv);
        // Numbers without anything that looks like a time are not guessed at.
        assert!(matches!(detect(b"1 2 3\n4 5 6\n"), Detected::Unrecognised(_)));
    }

    #[test]
    fn empty_and_unknown_files_are_named() {
        assert!(matches!(detect(b""), Detected::Unrecognised(w) if w.contains("empty")));
        assert!(matches!(detect(b"hello world"), Detected::Unrecognised(_)));
    }
}
