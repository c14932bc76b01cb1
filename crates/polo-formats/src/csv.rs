//! Placeholder until the importer lands.

use std::io::BufRead;

use crate::{ImportError, ImportOptions, Sink};

pub(crate) fn import<R: BufRead>(_reader: R, _options: &ImportOptions, _sink: &mut dyn Sink) -> Result<(), ImportError> {
    Err(ImportError::Unrecognised { hint: "not implemented yet".to_owned() })
}

pub(crate) fn looks_like_csv_header(line: &str) -> bool {
    let lower = line.to_ascii_lowercase();
    lower.contains("lat") && (lower.contains(',') || lower.contains(';') || lower.contains('\t'))
}
