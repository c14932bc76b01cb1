//! Zip archives (a whole Takeout zip, KMZ): every entry is detected from its
//! own content and imported on its own, so one bad entry never stops the
//! others. Entries that are not location data (`archive_browser.html`,
//! images, `Settings.json`) are reported to the sink as refused entries, not
//! as errors of the archive.
//!
//! The zip central directory sits at the end of the file, so archives need
//! random access: a file on disk is read in place, and an archive nested in
//! another is spooled to a temporary file first. Spooling is capped: at most
//! [`MAX_SPOOL_BYTES`], and at most [`MAX_SPOOL_RATIO`] times the entry's
//! compressed size (a 2 MB upload must not fill the disk with 2 GB); past
//! either, the entry fails with [`ImportError::ArchiveLimit`] naming it, and
//! the other entries go on.

use std::fs::File;
use std::io::{self, BufReader, Read, Seek};
use std::path::Path;

use crate::detect::{Detected, detect};
use crate::{Format, ImportError, ImportOptions, Sink};

/// How deep archives inside archives are followed.
const MAX_NESTING: usize = 4;

/// Largest nested archive spooled to disk: 4 GiB.
pub(crate) const MAX_SPOOL_BYTES: u64 = 4 << 30;
/// Largest expansion of a nested archive over its compressed size. An
/// archive inside an archive is already compressed, so real ones come out
/// near 1×; deflate's own limit is about 1000×.
pub(crate) const MAX_SPOOL_RATIO: u64 = 100;
/// Spooling below this size is allowed whatever the ratio (tiny entries).
const SPOOL_RATIO_FLOOR: u64 = 1 << 20;

/// Imports a file by path: zip archives are walked entry by entry, anything
/// else goes through [`crate::import`].
///
/// For an archive the result is `Ok(Format::Zip)` once the directory could be
/// read; each entry's own outcome is reported through
/// [`Sink::entry_started`] / [`Sink::entry_finished`].
///
/// # Errors
/// As [`crate::import`], plus a damaged zip directory.
pub fn import_path(path: &Path, options: &ImportOptions, sink: &mut dyn Sink) -> Result<Format, ImportError> {
    import_file(File::open(path)?, options, sink, 0)
}

/// Like [`import_path`] for an already opened, seekable reader (the CLI
/// wraps files to count bytes for its progress bar).
///
/// # Errors
/// As [`import_path`].
pub fn import_seekable<R: Read + Seek>(
    reader: R,
    options: &ImportOptions,
    sink: &mut dyn Sink,
) -> Result<Format, ImportError> {
    import_file(reader, options, sink, 0)
}

fn import_file<R: Read + Seek>(
    mut reader: R,
    options: &ImportOptions,
    sink: &mut dyn Sink,
    depth: usize,
) -> Result<Format, ImportError> {
    let mut magic = [0u8; 4];
    let n = read_up_to(&mut reader, &mut magic)?;
    reader.rewind()?;
    if detect(&magic[..n]) == Detected::Zip {
        import_zip(reader, options, sink, depth)
    } else {
        crate::import(reader, options, sink)
    }
}

fn read_up_to<R: Read>(reader: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

fn zip_error(error: &zip::result::ZipError) -> ImportError {
    ImportError::Malformed { format: "zip", position: crate::Position::Byte(0), message: error.to_string() }
}

fn import_zip<R: Read + Seek>(
    reader: R,
    options: &ImportOptions,
    sink: &mut dyn Sink,
    depth: usize,
) -> Result<Format, ImportError> {
    let mut archive = zip::ZipArchive::new(BufReader::new(reader)).map_err(|e| zip_error(&e))?;
    for index in 0..archive.len() {
        let mut entry = archive.by_index(index).map_err(|e| zip_error(&e))?;
        if entry.is_dir() {
            continue;
        }
        let name = match entry.name() {
            Ok(name) => name.into_owned(),
            Err(_) => String::from_utf8_lossy(entry.name_raw()).into_owned(),
        };
        sink.entry_started(&name);
        let compressed = entry.compressed_size();
        let outcome = import_entry(&mut entry, &name, compressed, options, sink, depth);
        sink.entry_finished(&name, &outcome);
    }
    Ok(Format::Zip)
}

fn import_entry<R: Read>(
    entry: &mut R,
    name: &str,
    compressed: u64,
    options: &ImportOptions,
    sink: &mut dyn Sink,
    depth: usize,
) -> Result<Format, ImportError> {
    let mut head = [0u8; 4];
    let n = read_up_to(entry, &mut head)?;
    let chained = io::Cursor::new(head[..n].to_vec()).chain(entry);
    if detect(&head[..n]) != Detected::Zip {
        return crate::import(chained, options, sink);
    }
    if depth + 1 >= MAX_NESTING {
        return Err(ImportError::Unrecognised { hint: format!("zip archives nested more than {MAX_NESTING} deep") });
    }
    let spool = spool(chained, name, compressed)?;
    import_file(spool, options, sink, depth + 1)
}

/// Copies a nested archive to a temporary file, within the spooling caps.
fn spool(entry: impl Read, name: &str, compressed: u64) -> Result<File, ImportError> {
    let by_ratio = compressed.saturating_mul(MAX_SPOOL_RATIO).max(SPOOL_RATIO_FLOOR);
    let limit = MAX_SPOOL_BYTES.min(by_ratio);
    let mut spool = tempfile::tempfile()?;
    let copied = io::copy(&mut entry.take(limit + 1), &mut spool)?;
    if copied > limit {
        let reason = if limit == MAX_SPOOL_BYTES {
            format!("a nested archive larger than {} GiB", MAX_SPOOL_BYTES >> 30)
        } else {
            format!(
                "a nested archive that expands more than {MAX_SPOOL_RATIO} times its compressed size of {compressed} bytes"
            )
        };
        return Err(ImportError::ArchiveLimit { entry: name.to_owned(), reason });
    }
    spool.rewind()?;
    Ok(spool)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use crate::{Position, Reject};
    use polo_domain::{Fix, Interval, Timestamp};

    #[derive(Default)]
    struct Collect {
        points: usize,
        entries: Vec<(String, Result<Format, String>)>,
    }

    impl Sink for Collect {
        fn point(&mut self, _fix: Fix, _device: Option<&str>) {
            self.points += 1;
        }
        fn interval(&mut self, _interval: Interval, _device: Option<&str>) {}
        fn reject(&mut self, _reject: Reject) {}
        fn entry_finished(&mut self, name: &str, outcome: &Result<Format, ImportError>) {
            self.entries.push((name.to_owned(), outcome.as_ref().map(|f| *f).map_err(ToString::to_string)));
        }
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = io::Cursor::new(Vec::new());
        let mut writer = zip::ZipWriter::new(&mut out);
        for (name, body) in entries {
            writer.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
            writer.write_all(body).unwrap();
        }
        writer.finish().unwrap();
        out.into_inner()
    }

    fn options() -> ImportOptions {
        ImportOptions { now: Timestamp(1_900_000_000_000) }
    }

    const REC: &[u8] = b"2024-03-01T09:03:09Z\t*                 \t{\"_type\":\"location\",\"lat\":52.225,\"lon\":13.332,\"tst\":1709283789}\n";

    #[test]
    fn walks_every_entry_and_reports_refusals() {
        let inner = zip_of(&[("nested/2024-03.rec", REC)]);
        let outer = zip_of(&[
            ("Takeout/archive_browser.html", b"<!DOCTYPE html><html></html>"),
            ("Takeout/owntracks/2024-03.rec", REC),
            ("Takeout/inner.zip", &inner),
        ]);
        let mut sink = Collect::default();
        let format = import_seekable(io::Cursor::new(outer), &options(), &mut sink).unwrap();
        assert_eq!(format, Format::Zip);
        // Entries of the nested archive are reported before the archive itself ends.
        assert_eq!(sink.entries.len(), 4, "{:?}", sink.entries);
        assert!(sink.entries[0].1.as_ref().is_err_and(|e| e.contains("HTML")));
        assert_eq!(sink.entries[1].1, Ok(Format::OwntracksRec));
        assert_eq!(sink.entries[2], ("nested/2024-03.rec".to_owned(), Ok(Format::OwntracksRec)));
        assert_eq!(sink.entries[3].1, Ok(Format::Zip));
        assert_eq!(sink.points, 2);
    }

    fn gzip(body: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(body).unwrap();
        encoder.finish().unwrap()
    }

    #[derive(Default)]
    struct Kinds {
        points: Vec<polo_domain::SourceFormat>,
        intervals: Vec<String>,
        rejects: usize,
        entries: Vec<(String, Result<Format, String>)>,
    }

    impl Sink for Kinds {
        fn point(&mut self, fix: Fix, _device: Option<&str>) {
            self.points.push(fix.source);
        }
        fn interval(&mut self, interval: Interval, _device: Option<&str>) {
            self.intervals.push(interval.name.unwrap_or_default());
        }
        fn reject(&mut self, _reject: Reject) {
            self.rejects += 1;
        }
        fn entry_finished(&mut self, name: &str, outcome: &Result<Format, ImportError>) {
            self.entries.push((name.to_owned(), outcome.as_ref().map(|f| *f).map_err(ToString::to_string)));
        }
    }

    const GPX: &[u8] = br#"<gpx xmlns="http://www.topografix.com/GPX/1/1"><trk><trkseg><trkpt lat="48.1" lon="11.5"><time>2024-05-01T10:00:00Z</time></trkpt></trkseg></trk></gpx>"#;

    #[test]
    fn strava_bulk_export_reads_tracks_and_the_activity_list() {
        // Strava's own TCX files start with spaces before the declaration.
        let tcx = format!("      {}", include_str!("../tests/fixtures/run.tcx"));
        let export = zip_of(&[
            ("activities.csv", b"Activity ID,Activity Date,Activity Name,Activity Type,Elapsed Time,Filename\n1,\"May 1, 2024, 6:30:00 AM\",Morning Run,Run,10,activities/1.tcx.gz\n"),
            ("activities/1.tcx.gz", &gzip(tcx.as_bytes())),
            ("activities/2.gpx.gz", &gzip(GPX)),
            ("profile.csv", b"Athlete ID,Email Address,First Name\n1,a@b.c,A\n"),
        ]);
        let mut sink = Kinds::default();
        import_seekable(io::Cursor::new(export), &options(), &mut sink).unwrap();
        assert_eq!(sink.entries[0], ("activities.csv".to_owned(), Ok(Format::StravaActivities)));
        assert_eq!(sink.entries[1], ("activities/1.tcx.gz".to_owned(), Ok(Format::Gzip)));
        assert_eq!(sink.entries[2], ("activities/2.gpx.gz".to_owned(), Ok(Format::Gzip)));
        assert!(sink.entries[3].1.as_ref().is_err_and(|e| e.contains("unrecognised")), "{:?}", sink.entries[3]);
        assert_eq!(sink.intervals, ["Morning Run"]);
        use polo_domain::SourceFormat::{Gpx, Tcx};
        assert_eq!(sink.points, [Tcx, Tcx, Tcx, Gpx]);
        // The fixture's trackpoint without a time.
        assert_eq!(sink.rejects, 1);
    }

    #[test]
    fn apple_health_export_skips_export_xml_and_reads_workout_routes() {
        let export_xml = b"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<!DOCTYPE HealthData [\n<!ELEMENT HealthData (ExportDate,Me,(Record|Workout)*)>\n]>\n<HealthData locale=\"en_US\"><ExportDate value=\"2024-05-01 10:00:00 +0200\"/></HealthData>";
        let export = zip_of(&[
            ("apple_health_export/export.xml", export_xml),
            ("apple_health_export/workout-routes/route_2024-05-01_10.00am.gpx", GPX),
        ]);
        let mut sink = Kinds::default();
        import_seekable(io::Cursor::new(export), &options(), &mut sink).unwrap();
        assert!(
            sink.entries[0].1.as_ref().is_err_and(|e| e.contains("Apple Health's export.xml")),
            "{:?}",
            sink.entries
        );
        assert_eq!(sink.entries[1].1, Ok(Format::Gpx));
        assert_eq!(sink.points.len(), 1);
    }

    #[test]
    fn a_nested_archive_that_expands_too_much_is_refused_by_name() {
        // 5 MB of zeros stored uncompressed in the inner zip deflate to a few
        // kB in the outer one: a ratio of about 1000.
        let mut inner = io::Cursor::new(Vec::new());
        let mut writer = zip::ZipWriter::new(&mut inner);
        let stored = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
        writer.start_file("zeros.rec", stored).unwrap();
        writer.write_all(&vec![0u8; 5 << 20]).unwrap();
        writer.finish().unwrap();
        let outer = zip_of(&[("Takeout/bomb.zip", &inner.into_inner()), ("Takeout/owntracks/2024-03.rec", REC)]);
        let mut sink = Collect::default();
        import_seekable(io::Cursor::new(outer), &options(), &mut sink).unwrap();
        let (name, outcome) = &sink.entries[0];
        assert_eq!(name, "Takeout/bomb.zip");
        let err = outcome.as_ref().unwrap_err();
        assert!(err.contains("\"Takeout/bomb.zip\"") && err.contains("100 times"), "{err}");
        // The next entry is imported all the same.
        assert_eq!(sink.entries[1].1, Ok(Format::OwntracksRec));
        assert_eq!(sink.points, 1);
    }

    #[test]
    fn damaged_archive_is_a_malformed_error() {
        let mut bytes = zip_of(&[("a.rec", REC)]);
        bytes.truncate(bytes.len() - 10);
        let err = import_seekable(io::Cursor::new(bytes), &options(), &mut Collect::default()).unwrap_err();
        assert!(matches!(err, ImportError::Malformed { format: "zip", position: Position::Byte(0), .. }), "{err}");
    }
}
