//! A consistent copy of the live database, taken while the server writes.
//!
//! SQLite's online backup API copies the database page by page into a new
//! file. All pages are copied in one step, inside one read transaction on
//! the source; in WAL mode that transaction sees exactly one commit and
//! does not block the writer (it only holds WAL checkpoints back while it
//! lasts, about a second per few hundred MB). So the copy is the database
//! as of one commit: points, the change log and its `last_seq`, and every
//! derived row with the cursor it was computed to.
//!
//! The backup API rather than `VACUUM INTO`: a vacuum rewrites every table
//! in key order, so one new row shifts the pages after it and the next
//! backup would share almost no block with this one. The backup API keeps
//! page `n` at offset `n × page_size`, and a page that did not change keeps
//! its bytes: that is what makes blocks repeat between backups.
//!
//! The source is opened without create (a missing database is an error,
//! not a new empty one) and without running migrations: a `polo backup` of
//! a different version than the running server must never change its schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::error::{BackupError, BackupResult};

/// What a snapshot holds, read from the snapshot itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SnapshotInfo {
    /// `meta.instance_id`.
    pub instance_id: String,
    /// `meta.epoch` (schema version 6 on).
    pub epoch: Option<String>,
    /// `PRAGMA user_version`.
    pub schema_version: i64,
    /// Page size in bytes.
    pub page_size: u32,
    /// `meta.last_seq`.
    pub last_seq: u64,
    /// `derived_cursors` (schema version 5 on).
    pub derived_cursors: BTreeMap<String, u64>,
    /// File size in bytes.
    pub size: u64,
}

/// A snapshot file in a private temporary directory, removed on drop.
#[derive(Debug)]
pub struct Snapshot {
    dir: tempfile::TempDir,
    /// What it holds.
    pub info: SnapshotInfo,
}

impl Snapshot {
    /// The snapshot file.
    #[must_use]
    pub fn path(&self) -> PathBuf {
        self.dir.path().join(FILE)
    }
}

const FILE: &str = "snapshot.sqlite";

/// Copies the database at `db` into a new temporary directory under `scratch`.
///
/// # Errors
/// When the database does not exist or cannot be read, or the copy cannot
/// be written.
pub fn take(db: &Path, scratch: &Path) -> BackupResult<Snapshot> {
    if !db.is_file() {
        return Err(BackupError::Invalid(format!("no database at {}", db.display())));
    }
    // Read-write so SQLite may create the `-shm` a WAL database needs when no server runs;
    // read-only for a backup user who may only read the file.
    let source = Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX)
        .or_else(|_| {
        Connection::open_with_flags(db, OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX)
    })?;
    source.busy_timeout(Duration::from_secs(30))?;
    let dir = tempfile::Builder::new()
        .prefix(".polo-backup-")
        .tempdir_in(scratch)
        .map_err(BackupError::io(format!("cannot create a scratch directory in {}", scratch.display())))?;
    let path = dir.path().join(FILE);
    let mut copy = Connection::open(&path)?;
    // A scratch file: nothing to protect against a crash.
    copy.pragma_update(None, "journal_mode", "OFF")?;
    copy.pragma_update(None, "synchronous", "OFF")?;
    {
        let backup = Backup::new(&source, &mut copy)?;
        // -1: every page in one step, so in one read transaction on the source.
        loop {
            match backup.step(-1)? {
                StepResult::Done => break,
                StepResult::More => {}
                StepResult::Busy | StepResult::Locked => std::thread::sleep(Duration::from_millis(50)),
                _ => {}
            }
        }
    }
    drop(source);
    let mut info = read_info(&copy)?;
    let pages: i64 = copy.pragma_query_value(None, "page_count", |r| r.get(0))?;
    drop(copy);
    info.size = std::fs::metadata(&path).map_err(BackupError::io(format!("cannot read {}", path.display())))?.len();
    let expected = u64::from(info.page_size) * u64::try_from(pages).unwrap_or(0);
    if info.size != expected {
        return Err(BackupError::Invalid(format!(
            "the snapshot has {} bytes, not a whole number of pages ({expected} expected)",
            info.size
        )));
    }
    Ok(Snapshot { dir, info })
}

/// The manifest's facts about a database, read through `conn`.
///
/// # Errors
/// When it is not a polo database.
pub fn read_info(conn: &Connection) -> BackupResult<SnapshotInfo> {
    let not_polo = |what: &str| BackupError::Invalid(format!("not a polo database: {what}"));
    let schema_version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
    let meta = |key: &str| -> BackupResult<Option<String>> {
        Ok(conn.query_row("SELECT CAST(value AS TEXT) FROM meta WHERE key = ?1", [key], |r| r.get(0)).optional()?)
    };
    let has_table = |name: &str| -> BackupResult<bool> {
        Ok(conn
            .query_row("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1", [name], |_| Ok(()))
            .optional()?
            .is_some())
    };
    if !has_table("meta")? {
        return Err(not_polo("no meta table"));
    }
    let instance_id = meta("instance_id")?.ok_or_else(|| not_polo("no instance id"))?;
    let last_seq = meta("last_seq")?.and_then(|s| s.parse().ok()).ok_or_else(|| not_polo("no last_seq"))?;
    let mut derived_cursors = BTreeMap::new();
    if has_table("derived_cursors")? {
        let mut stmt = conn.prepare("SELECT name, seq FROM derived_cursors ORDER BY name")?;
        let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, i64>(1)?)))?;
        for row in rows {
            let (name, seq) = row?;
            derived_cursors.insert(name, u64::try_from(seq).unwrap_or(0));
        }
    }
    Ok(SnapshotInfo {
        instance_id,
        epoch: meta("epoch")?,
        schema_version,
        page_size: u32::try_from(page_size).map_err(|_| not_polo("page size"))?,
        last_seq,
        derived_cursors,
        size: 0,
    })
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Fix, SourceFormat, Timestamp};
    use polo_store::Store;
    use polo_store_sqlite::SqliteStore;

    use super::*;

    #[test]
    fn a_snapshot_is_one_commit_of_the_live_database() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("polo.sqlite");
        let store = SqliteStore::open(&db).unwrap();
        let user = store.create_user("alice", "h", false).unwrap().id;
        let device = store.ensure_device(user, "phone").unwrap().id;
        let fixes: Vec<Fix> = (0..5000)
            .map(|i| {
                Fix::new(Timestamp(1_700_000_000_000 + i * 1000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Csv)
            })
            .collect();
        store.insert_points(user, device, &fixes).unwrap();
        store.set_derived_cursor("timeline", store.last_seq().unwrap()).unwrap();
        // The store is open and its WAL is not checkpointed: the snapshot must still see everything.
        let snapshot = take(&db, dir.path()).unwrap();
        let info = &snapshot.info;
        assert_eq!(info.instance_id, store.instance_id().unwrap());
        assert_eq!(info.epoch.as_deref(), Some(store.epoch().unwrap().as_str()));
        assert_eq!(info.last_seq, store.last_seq().unwrap().0);
        assert_eq!(info.derived_cursors.get("timeline"), Some(&info.last_seq));
        assert_eq!(info.schema_version, 17);
        assert_eq!(info.page_size, polo_store_sqlite::DEFAULT_PAGE_SIZE);
        assert_eq!(info.size % u64::from(info.page_size), 0);
        let copy = SqliteStore::open(snapshot.path()).unwrap();
        assert_eq!(copy.count_points(user).unwrap(), 5000);
        drop(copy);
        let path = snapshot.path();
        drop(snapshot);
        assert!(!path.exists(), "the scratch copy is removed");
    }

    #[test]
    fn a_missing_database_is_not_created() {
        let dir = tempfile::tempdir().unwrap();
        let err = take(&dir.path().join("none.sqlite"), dir.path()).unwrap_err();
        assert!(err.to_string().contains("no database"), "{err}");
        assert!(!dir.path().join("none.sqlite").exists());
    }
}
