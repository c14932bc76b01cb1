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
pub mod sink;

mod csv;
mod fit;
mod google;
mod gpx;
mod json_stream;
mod kml;
mod owntracks;
mod xml;

pub use detect::{Detected, Format, detect};
pub use sink::{ImportError, ImportOptions, Position, Reject, Sink};

mod archive;

pub use archive::import_path;

use std::io::{BufRead, BufReader, Read};

/// Size of the read buffer every importer gets; also how much is sniffed.
pub(crate) const READ_BUFFER: usize = 256 * 1024;

/// Imports one non-archive stream: detects its format from the content and
/// runs the matching importer. gzip is unwrapped transparently. Zip archives
/// need random access: use [`import_path`] for files.
///
/// # Errors
/// [`ImportError`] when the content is not location data, is unrecognised,
/// is a zip given as a plain stream, or breaks beyond recovery.
pub fn import<R: Read>(reader: R, options: &ImportOptions, sink: &mut dyn Sink) -> Result<Format, ImportError> {
    import_boxed(Box::new(reader), options, sink)
}

fn import_boxed(reader: Box<dyn Read + '_>, options: &ImportOptions, sink: &mut dyn Sink) -> Result<Format, ImportError> {
    let mut reader = BufReader::with_capacity(READ_BUFFER, reader);
    let prefix = fill_prefix(&mut reader)?;
    match detect(&prefix) {
        Detected::Json => google::import_json(reader, options, sink),
        Detected::Gpx => gpx::import(reader, options, sink).map(|()| Format::Gpx),
        Detected::Kml => kml::import(reader, options, sink).map(|()| Format::Kml),
        Detected::Fit => fit::import(reader, options, sink).map(|()| Format::Fit),
        Detected::OwntracksRec => owntracks::import(reader, options, sink).map(|()| Format::OwntracksRec),
        Detected::Csv => csv::import(reader, options, sink).map(|()| Format::Csv),
        Detected::Gzip => import_boxed(Box::new(flate2::bufread::MultiGzDecoder::new(reader)), options, sink),
        Detected::Zip => Err(ImportError::Unrecognised {
            hint: "a zip archive given as a stream; import it from a file".to_owned(),
        }),
        Detected::NotLocation(what) => Err(ImportError::NotLocationData { what }),
        Detected::Unrecognised(hint) => Err(ImportError::Unrecognised { hint }),
    }
}

/// Reads until the buffer holds at least 16 KB (or the whole file) without
/// consuming anything, and returns a copy of that prefix for sniffing.
fn fill_prefix<R: Read>(reader: &mut BufReader<R>) -> std::io::Result<Vec<u8>> {
    // BufReader only refills when empty, so sniff what one fill gives; for
    // tiny reads (pipes) fall back to the first chunk, which always has the
    // magic bytes and the first line.
    Ok(reader.fill_buf()?.to_vec())
}
