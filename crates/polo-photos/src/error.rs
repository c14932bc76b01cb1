//! Why a photo could not be read or its sidecar not written.

use std::path::PathBuf;

/// A photo that could not be read, or a sidecar that could not be written.
#[derive(Debug, thiserror::Error)]
pub enum PhotoError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// What the system said.
        source: std::io::Error,
    },
    /// The file is not a photo or video polo reads, or its metadata is damaged.
    #[error("{path}: {reason}")]
    Unreadable {
        /// The file.
        path: PathBuf,
        /// What was wrong, from the metadata parser.
        reason: String,
    },
    /// A sidecar exists that polo did not write; it is left alone.
    #[error("{path}: has a sidecar of its own ({sidecar}), which polo does not overwrite")]
    ForeignSidecar {
        /// The photo.
        path: PathBuf,
        /// The sidecar found.
        sidecar: PathBuf,
    },
}
