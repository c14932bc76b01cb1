//! Streaming importers and exporters for every location-history format polo
//! accepts.
//!
//! Every importer reads an `impl Read` once, front to back, in memory bounded
//! by the largest single record (never by the file), and pushes what it finds
//! into a [`Sink`]: fixes, intervals, and a [`Reject`] for every record it
//! could not use. A file-level problem (not location data, unreadable
//! syntax) ends that file with an [`ImportError`] that says what and where;
//! everything pushed before it stays valid.
//!
//! [`import`] detects the format from the content (never from the file
//! name) and dispatches. See `README.md` for what is kept from each format.

pub mod detect;
pub mod export;
pub mod extras;
pub mod fields;
pub mod json_keys;
pub mod raw_object;
pub mod sink;

mod csv;
mod fit;
mod google;
mod gpx;
mod headerless;
mod igc;
mod json_stream;
mod kml;
mod measure;
mod nmea;
mod owntracks;
mod plt;
mod strava;
mod tally;
mod tcx;
mod xml;

pub use detect::{Detected, Format, detect};
pub use sink::{ImportError, ImportOptions, Position, Reject, Sink};

mod archive;
mod bounded;

#[doc(hidden)]
pub mod fuzzing;

pub use bounded::MAX_TOKEN;

pub use archive::{import_path, import_seekable};

use std::io::{BufReader, Read};

/// Size of the read buffer every importer gets; also how much is sniffed.
pub(crate) const READ_BUFFER: usize = 256 * 1024;

/// Imports one non-archive stream: detects its format from the content and
/// runs the matching importer. gzip is unwrapped transparently. Zip archives
/// need random access: use [`import_path`] for files.
///
/// # Errors
/// [`ImportError`] when the content is not location data, is unrecognised,
/// is a zip given as a plain stream, or breaks beyond recovery;
/// [`ImportError::NothingToImport`] when it was read to its end but
/// yielded no point and no interval.
pub fn import<R: Read>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<Format, ImportError> {
    let mut tally = tally::Tally::new(sink);
    let outcome = import_boxed(Box::new(reader), options, &mut tally);
    tally.conclude(outcome)
}

fn import_boxed(
    mut reader: Box<dyn Read + '_>,
    options: &ImportOptions,
    sink: &mut dyn Sink,
) -> Result<Format, ImportError> {
    let prefix = read_prefix(&mut reader)?;
    let detected = detect(&prefix);
    let reader = BufReader::with_capacity(read_buffer_for(prefix.len()), std::io::Cursor::new(prefix).chain(reader));
    match detected {
        Detected::Json => google::import_json(reader, options, sink),
        Detected::Gpx => gpx::import(reader, options, sink).map(|()| Format::Gpx),
        Detected::Kml => kml::import(reader, options, sink).map(|()| Format::Kml),
        Detected::Fit => fit::import(reader, options, sink).map(|()| Format::Fit),
        Detected::OwntracksRec => owntracks::import(reader, options, sink).map(|()| Format::OwntracksRec),
        Detected::Csv => csv::import(reader, options, sink).map(|()| Format::Csv),
        Detected::StravaActivities => strava::import(reader, options, sink).map(|()| Format::StravaActivities),
        Detected::Tcx => tcx::import(reader, options, sink).map(|()| Format::Tcx),
        Detected::Plt => plt::import(reader, options, sink),
        Detected::Nmea => nmea::import(reader, options, sink).map(|()| Format::Nmea),
        Detected::Igc => igc::import(reader, options, sink).map(|()| Format::Igc),
        Detected::HeaderlessText => headerless::import(reader, options, sink).map(|()| Format::HeaderlessText),
        Detected::Gzip => {
            import_boxed(Box::new(flate2::bufread::MultiGzDecoder::new(reader)), options, sink).map(|_| Format::Gzip)
        }
        Detected::Zip => {
            Err(ImportError::Unrecognised { hint: "a zip archive given as a stream; import it from a file".to_owned() })
        }
        Detected::NotLocation(what) => Err(ImportError::NotLocationData { what }),
        Detected::Unrecognised(hint) => Err(ImportError::Unrecognised { hint }),
    }
}

/// The read buffer for an input whose sniffed prefix is `prefix_len` bytes.
/// A prefix shorter than [`SNIFF_BYTES`] is the whole input (the sniff read
/// to its end), and a buffer larger than the input only costs: most uploads
/// of a phone's day, and every fuzz input, are a few KiB, and a 256 KiB
/// buffer per file was most of the work of importing them.
fn read_buffer_for(prefix_len: usize) -> usize {
    if prefix_len < SNIFF_BYTES { prefix_len.max(64) } else { READ_BUFFER }
}

/// How many bytes are sniffed to detect a format.
const SNIFF_BYTES: usize = 16 * 1024;

/// Reads up to [`SNIFF_BYTES`] (less only at end of file); pipes and archive
/// entries may hand out a few bytes per read.
fn read_prefix(reader: &mut dyn Read) -> std::io::Result<Vec<u8>> {
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    reader.take(SNIFF_BYTES as u64).read_to_end(&mut prefix)?;
    Ok(prefix)
}
