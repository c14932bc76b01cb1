//! Progress reports from long operations, for a progress bar or a log.

/// What an operation is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Phase {
    /// Copying the live database into a snapshot.
    Snapshot,
    /// Hashing the snapshot's blocks and uploading the new ones.
    Upload,
    /// Downloading and checking blocks.
    Download,
    /// SQLite's integrity check of a reassembled database.
    Check,
    /// Opening the restored database and giving it a new epoch.
    Open,
    /// Deleting expired backups and unreferenced blocks.
    Retention,
}

impl Phase {
    /// A short lower-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Snapshot => "snapshot",
            Self::Upload => "upload",
            Self::Download => "download",
            Self::Check => "integrity check",
            Self::Open => "open",
            Self::Retention => "retention",
        }
    }
}

/// Receives progress; every method has a do-nothing default.
pub trait Progress: Send + Sync {
    /// A phase starts; `total_bytes` is its work in bytes, 0 when unknown.
    fn phase(&self, phase: Phase, total_bytes: u64) {
        let _ = (phase, total_bytes);
    }
    /// `bytes` more of the current phase are done.
    fn advance(&self, bytes: u64) {
        let _ = bytes;
    }
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct Silent;

impl Progress for Silent {}
