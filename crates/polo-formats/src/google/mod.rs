//! Placeholder until the Google/GeoJSON JSON importers land.

use std::io::BufRead;

use crate::{Format, ImportError, ImportOptions, Sink};

pub(crate) fn import_json<R: BufRead>(_reader: R, _options: &ImportOptions, _sink: &mut dyn Sink) -> Result<Format, ImportError> {
    Err(ImportError::Unrecognised { hint: "not implemented yet".to_owned() })
}
