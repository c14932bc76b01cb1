//! Errors of the backup engine.

use std::fmt;

/// What can go wrong backing up, listing, verifying or restoring.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackupError {
    /// The destination could not be understood or opened.
    #[error("destination {dest:?}: {why}")]
    Destination {
        /// As the user wrote it.
        dest: String,
        /// What is wrong with it.
        why: String,
    },
    /// The object store (or local directory) failed.
    #[error("object store: {0}")]
    ObjectStore(#[from] object_store::Error),
    /// A local file operation failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, with the path.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// SQLite failed reading the database or a snapshot of it.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// The store failed opening or renewing a restored database.
    #[error(transparent)]
    Store(#[from] polo_store::StoreError),
    /// No backup with this id at the destination.
    #[error("no backup {0:?} at the destination (see `polo backup list`)")]
    NotFound(String),
    /// The destination holds no backup at all.
    #[error("the destination holds no backups")]
    Empty,
    /// A manifest could not be read or is inconsistent.
    #[error("manifest {id}: {why}")]
    Manifest {
        /// The backup id (or object name) of the manifest.
        id: String,
        /// What is wrong with it.
        why: String,
    },
    /// A backup failed verification: blocks missing or damaged, or the
    /// reassembled database failed SQLite's integrity check.
    #[error("backup {id} is damaged: {}", Problems(problems))]
    Damaged {
        /// The backup id.
        id: String,
        /// One line per problem, each naming the block or check.
        problems: Vec<String>,
    },
    /// The restore target already holds a database and `force` was not given.
    #[error("{0}")]
    Refused(String),
    /// An option is out of range.
    #[error("{0}")]
    Invalid(String),
}

impl BackupError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> Self {
        let context = context.into();
        move |source| Self::Io { context, source }
    }
}

/// At most a screenful of problems, then how many more.
struct Problems<'a>(&'a [String]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        const SHOWN: usize = 10;
        for (i, problem) in self.0.iter().take(SHOWN).enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            f.write_str(problem)?;
        }
        if self.0.len() > SHOWN {
            write!(f, "; and {} more", self.0.len() - SHOWN)?;
        }
        Ok(())
    }
}

/// Result alias.
pub type BackupResult<T> = Result<T, BackupError>;
