//! Whether the store's writes succeed, for `/readyz` and clear errors.
//!
//! A full disk makes writes fail while every read still works, so a
//! readiness check that only reads (`SELECT 1`) calls a server ready that
//! can store nothing. The writer therefore reports each write's outcome
//! here: a write that failed for lack of space marks the store as failing.
//! [`WriteHealth::check`] (behind [`polo_store::Store::check_writable`])
//! answers from the mark without any I/O while it is clear; while it is set
//! it probes the file system (writes and syncs [`PROBE_BYTES`] next to the
//! database, then removes them) and clears the mark once that succeeds, so
//! an idle server becomes ready again as soon as space is freed.
//!
//! A write that commits does not clear the mark: on a full disk small
//! commits still succeed now and then (SQLite reuses the space of WAL
//! frames it had written before), and readiness would flap with them. Only
//! evidence of room does: the probe, or for an in-memory store (which fills
//! up only by the cap of [`crate::SqliteStore::limit_growth`]) lifting that cap.
//!
//! SQLite reports `ENOSPC` as `SQLITE_FULL` when appending to a file, but
//! as a generic `SQLITE_IOERR` when it cannot grow its shared-memory index
//! (which is what opening a store on a full disk runs into). An I/O error
//! is therefore classified by the same probe: when the file system has no
//! room, it is [`StoreError::DiskFull`].
//!
//! Either way the error names the store (`disk full: the store at PATH
//! could not be written`), which is what `polo import` and the import jobs
//! show.

use std::fs::File;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use polo_store::{StoreError, StoreResult};

/// Bytes the probe writes: about what one import batch adds to the WAL, so
/// that "ready" means a real write has room, not just a page or two.
pub(crate) const PROBE_BYTES: usize = 1 << 20;

/// The last write's outcome, as far as space goes.
pub(crate) struct WriteHealth {
    /// The database file; `None` for an in-memory store, which is never probed.
    path: Option<PathBuf>,
    /// Set while the last write failed for lack of space (read on every write).
    failing: AtomicBool,
}

impl WriteHealth {
    pub(crate) fn new(path: Option<PathBuf>) -> Self {
        Self { path, failing: AtomicBool::new(false) }
    }

    /// The message of a disk-full error of this store.
    fn full(&self) -> StoreError {
        StoreError::DiskFull(match &self.path {
            Some(path) => format!("the store at {} could not be written", path.display()),
            None => "the in-memory store could not be written".to_owned(),
        })
    }

    /// A store error with a disk-full error renamed after this store.
    pub(crate) fn name(&self, error: StoreError) -> StoreError {
        if error.is_disk_full() { self.full() } else { error }
    }

    /// The store error for a failure of SQLite itself (`BEGIN`, `COMMIT`,
    /// opening): `SQLITE_FULL`, or an I/O error while the file system has no
    /// room, is [`StoreError::DiskFull`]; anything else a backend error.
    pub(crate) fn sqlite_failure(&self, error: &rusqlite::Error) -> StoreError {
        self.name(self.io_failure(crate::store_error(error), error.sqlite_error_code()))
    }

    /// An error from opening the store: when it was an I/O failure and the
    /// file system is full, [`StoreError::DiskFull`].
    pub(crate) fn open_failure(&self, error: StoreError) -> StoreError {
        // Opening only ever fails as a backend error for I/O trouble; probing
        // a (rare) failed open costs one small file.
        let io = matches!(error, StoreError::Backend(_)).then_some(rusqlite::ErrorCode::SystemIoFailure);
        self.name(self.io_failure(error, io))
    }

    fn io_failure(&self, error: StoreError, code: Option<rusqlite::ErrorCode>) -> StoreError {
        if code == Some(rusqlite::ErrorCode::SystemIoFailure)
            && let Some(path) = &self.path
            && probe(path).is_err_and(|e| StoreError::from_io("probe", &e).is_disk_full())
        {
            return self.full();
        }
        error
    }

    /// Notes a write's outcome and returns it, disk-full errors named after
    /// this store.
    pub(crate) fn observe<T>(&self, result: StoreResult<T>) -> StoreResult<T> {
        match result {
            Ok(value) => Ok(value),
            Err(error) => {
                let error = self.name(error);
                if error.is_disk_full() {
                    self.failing.store(true, Ordering::Release);
                }
                Err(error)
            }
        }
    }

    /// There is room again (the cap of an in-memory store was lifted).
    pub(crate) fn clear(&self) {
        self.failing.store(false, Ordering::Release);
    }

    /// `Ok` unless a write failed for lack of space and a probe finds the
    /// file system still full (an in-memory store is not probed: its mark
    /// stays until [`WriteHealth::clear`]).
    pub(crate) fn check(&self) -> StoreResult<()> {
        if !self.failing.load(Ordering::Acquire) {
            return Ok(());
        }
        if let Some(path) = &self.path {
            match probe(path) {
                Ok(()) => {
                    tracing::info!(store = %path.display(), "the store's file system has room again");
                    self.failing.store(false, Ordering::Release);
                    return Ok(());
                }
                Err(e) if !StoreError::from_io("probe", &e).is_disk_full() => {
                    return Err(StoreError::from_io(&format!("cannot write next to {}", path.display()), &e));
                }
                Err(_) => {}
            }
        }
        Err(self.full())
    }
}

/// Writes and syncs [`PROBE_BYTES`] in a file next to `database`, then
/// removes it.
fn probe(database: &Path) -> io::Result<()> {
    let mut name = database.file_name().unwrap_or_default().to_os_string();
    name.push("-space-probe");
    let path = database.with_file_name(name);
    let written = File::create(&path).and_then(|mut file| {
        file.write_all(&vec![0u8; PROBE_BYTES])?;
        file.sync_all()
    });
    let _ = std::fs::remove_file(&path);
    written
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sqlite_full() -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL), None)
    }

    #[test]
    fn sqlite_full_is_disk_full_named_after_the_store() {
        let health = WriteHealth::new(Some(PathBuf::from("/srv/polo/polo.db")));
        let error = health.sqlite_failure(&sqlite_full());
        assert!(error.is_disk_full(), "{error:?}");
        assert_eq!(error.to_string(), "disk full: the store at /srv/polo/polo.db could not be written");
        // Through the statement path (`Db::db`) too.
        let error = health.name(crate::store_error(&sqlite_full()));
        assert_eq!(error.to_string(), "disk full: the store at /srv/polo/polo.db could not be written");
        // Other failures stay what they are.
        let busy = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY), None);
        assert!(matches!(health.sqlite_failure(&busy), StoreError::Backend(_)));
    }

    #[test]
    fn an_io_error_on_a_file_system_with_room_is_not_disk_full() {
        let dir = tempfile::tempdir().unwrap();
        let health = WriteHealth::new(Some(dir.path().join("polo.db")));
        let ioerr = rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_IOERR), None);
        assert!(matches!(health.sqlite_failure(&ioerr), StoreError::Backend(_)));
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "the probe file is removed");
    }

    #[test]
    fn a_failed_write_marks_the_store_until_there_is_room_again() {
        let dir = tempfile::tempdir().unwrap();
        let health = WriteHealth::new(Some(dir.path().join("polo.db")));
        assert!(health.check().is_ok());
        let failed: StoreResult<()> = health.observe(Err(crate::store_error(&sqlite_full())));
        assert!(failed.unwrap_err().to_string().contains("could not be written"));
        assert!(health.failing.load(Ordering::Acquire));
        // A small commit into reused space says nothing about room.
        health.observe(Ok(())).unwrap();
        assert!(health.failing.load(Ordering::Acquire));
        // This file system has room: the probe clears the mark.
        assert!(health.check().is_ok());
        assert!(!health.failing.load(Ordering::Acquire));

        // In memory there is no probe: the mark holds until cleared.
        let memory = WriteHealth::new(None);
        let _ = memory.observe::<()>(Err(StoreError::DiskFull("sqlite: database or disk is full".into())));
        let error = memory.check().unwrap_err();
        assert_eq!(error.to_string(), "disk full: the in-memory store could not be written");
        let _ = memory.observe::<()>(Err(StoreError::NotFound("device 3".into())));
        memory.observe(Ok(())).unwrap();
        assert!(memory.check().is_err(), "neither a refusal nor a commit says there is room");
        memory.clear();
        assert!(memory.check().is_ok());
    }
}
