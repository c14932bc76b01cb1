//! Leases, import job records and failure counters (see
//! [`polo_store::nodes`]).
//!
//! One `polo serve` serves a SQLite file, so nothing here is contended
//! across machines; the tables exist so that the server has one code path
//! for both backends, and so that import jobs survive a restart. Lease
//! times are this machine's clock. Live messages stay in the server's own
//! feed: the store is not shared ([`polo_store::Store::is_shared`] is
//! `false`), so `subscribe_live` keeps the trait's `LocalOnly` answer.

use std::time::Duration;

use polo_domain::{Timestamp, UserId};
use polo_store::{FailureCount, ImportJobRecord, ImportJobStatus, StoreError, StoreResult};
use rusqlite::{OptionalExtension, Row, params, params_from_iter};

use crate::{Db, SqliteStore, now};

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

pub(crate) fn try_lease(store: &SqliteStore, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
    let at = now().0;
    store.write(|tx| {
        let taken = tx
            .execute(
                "INSERT INTO leases (name, holder, expires_ms) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO UPDATE SET holder = excluded.holder, expires_ms = excluded.expires_ms \
                 WHERE leases.holder = excluded.holder OR leases.expires_ms <= ?4",
                params![name, holder, at.saturating_add(millis(ttl)), at],
            )
            .db()?;
        Ok(taken > 0)
    })
}

pub(crate) fn release_lease(store: &SqliteStore, name: &str, holder: &str) -> StoreResult<bool> {
    store.write(|tx| Ok(tx.execute("DELETE FROM leases WHERE name = ?1 AND holder = ?2", [name, holder]).db()? > 0))
}

const JOB_COLUMNS: &str = "user_id, id, file_name, status, holder, started_ms, heartbeat_ms, finished_ms, bytes_total, \
    bytes_read, points_added, duplicates, deleted_left_out, intervals_added, rejected, error, report";

fn job_from_row(r: &Row<'_>) -> rusqlite::Result<(ImportJobRecord, i16)> {
    Ok((
        ImportJobRecord {
            user: UserId(r.get(0)?),
            id: r.get(1)?,
            file_name: r.get(2)?,
            status: ImportJobStatus::Queued,
            holder: r.get(4)?,
            started: Timestamp(r.get(5)?),
            heartbeat: Timestamp(r.get(6)?),
            finished: r.get::<_, Option<i64>>(7)?.map(Timestamp),
            bytes_total: uint(r.get(8)?),
            bytes_read: uint(r.get(9)?),
            points_added: uint(r.get(10)?),
            duplicates: uint(r.get(11)?),
            deleted_left_out: uint(r.get(12)?),
            intervals_added: uint(r.get(13)?),
            rejected: uint(r.get(14)?),
            error: r.get(15)?,
            report: r.get(16)?,
        },
        r.get(3)?,
    ))
}

fn with_status((mut job, code): (ImportJobRecord, i16)) -> StoreResult<ImportJobRecord> {
    job.status = ImportJobStatus::from_code(code)?;
    Ok(job)
}

pub(crate) fn create_import_job(store: &SqliteStore, job: &ImportJobRecord) -> StoreResult<()> {
    store.write(|tx| {
        if tx.query_row("SELECT 1 FROM users WHERE id = ?1", [job.user.0], |_| Ok(())).optional().db()?.is_none() {
            return Err(StoreError::NotFound(format!("user {}", job.user)));
        }
        let taken = tx
            .query_row("SELECT 1 FROM import_jobs WHERE user_id = ?1 AND id = ?2", params![job.user.0, job.id], |_| {
                Ok(())
            })
            .optional()
            .db()?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists(format!("import job {} of user {}", job.id, job.user)));
        }
        tx.execute(
            &format!(
                "INSERT INTO import_jobs ({JOB_COLUMNS}) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)"
            ),
            params![
                job.user.0,
                job.id,
                job.file_name,
                job.status.code(),
                job.holder,
                job.started.0,
                job.heartbeat.0,
                job.finished.map(|t| t.0),
                int(job.bytes_total),
                int(job.bytes_read),
                int(job.points_added),
                int(job.duplicates),
                int(job.deleted_left_out),
                int(job.intervals_added),
                int(job.rejected),
                job.error,
                job.report,
            ],
        )
        .db()?;
        Ok(())
    })
}

pub(crate) fn update_import_job(store: &SqliteStore, job: &ImportJobRecord) -> StoreResult<bool> {
    store.write(|tx| {
        let written = tx
            .execute(
                "UPDATE import_jobs SET status = ?3, holder = ?4, heartbeat_ms = ?5, finished_ms = ?6, \
                 bytes_read = ?7, points_added = ?8, duplicates = ?9, deleted_left_out = ?10, \
                 intervals_added = ?11, rejected = ?12, error = ?13, report = ?14 \
                 WHERE user_id = ?1 AND id = ?2 AND status IN (?15, ?16)",
                params![
                    job.user.0,
                    job.id,
                    job.status.code(),
                    job.holder,
                    job.heartbeat.0,
                    job.finished.map(|t| t.0),
                    int(job.bytes_read),
                    int(job.points_added),
                    int(job.duplicates),
                    int(job.deleted_left_out),
                    int(job.intervals_added),
                    int(job.rejected),
                    job.error,
                    job.report,
                    ImportJobStatus::Queued.code(),
                    ImportJobStatus::Running.code(),
                ],
            )
            .db()?;
        Ok(written > 0)
    })
}

pub(crate) fn import_job(store: &SqliteStore, user: UserId, id: &str) -> StoreResult<Option<ImportJobRecord>> {
    store.read(|c| {
        c.query_row(
            &format!("SELECT {JOB_COLUMNS} FROM import_jobs WHERE user_id = ?1 AND id = ?2"),
            params![user.0, id],
            job_from_row,
        )
        .optional()
        .db()?
        .map(with_status)
        .transpose()
    })
}

pub(crate) fn import_jobs(store: &SqliteStore, user: UserId) -> StoreResult<Vec<ImportJobRecord>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(&format!(
                "SELECT {JOB_COLUMNS} FROM import_jobs WHERE user_id = ?1 ORDER BY started_ms DESC, id DESC"
            ))
            .db()?;
        let rows = stmt.query_map([user.0], job_from_row).db()?.collect::<rusqlite::Result<Vec<_>>>().db()?;
        rows.into_iter().map(with_status).collect()
    })
}

pub(crate) fn delete_import_job(store: &SqliteStore, user: UserId, id: &str) -> StoreResult<bool> {
    store.write(|tx| {
        Ok(tx.execute("DELETE FROM import_jobs WHERE user_id = ?1 AND id = ?2", params![user.0, id]).db()? > 0)
    })
}

pub(crate) fn fail_stale_import_jobs(
    store: &SqliteStore,
    heartbeat_before: Timestamp,
    spare_holder: &str,
    error: &str,
    at: Timestamp,
) -> StoreResult<u64> {
    store.write(|tx| {
        let failed = tx
            .execute(
                "UPDATE import_jobs SET status = ?1, error = ?2, finished_ms = ?3 \
                 WHERE status IN (?4, ?5) AND heartbeat_ms < ?6 AND holder <> ?7",
                params![
                    ImportJobStatus::Failed.code(),
                    error,
                    at.0,
                    ImportJobStatus::Queued.code(),
                    ImportJobStatus::Running.code(),
                    heartbeat_before.0,
                    spare_holder,
                ],
            )
            .db()?;
        Ok(failed as u64)
    })
}

pub(crate) fn count_failure(
    store: &SqliteStore,
    key: &str,
    at: Timestamp,
    forget_after: Duration,
) -> StoreResult<FailureCount> {
    store.write(|tx| {
        let (failures, last): (i64, i64) = tx
            .query_row(
                "INSERT INTO failure_counts (key, failures, last_failure_ms) VALUES (?1, 1, ?2) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN failure_counts.last_failure_ms <= ?2 - ?3 THEN 1 \
                                   ELSE failure_counts.failures + 1 END, \
                   last_failure_ms = max(failure_counts.last_failure_ms, ?2) \
                 RETURNING failures, last_failure_ms",
                params![key, at.0, millis(forget_after)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .db()?;
        Ok(FailureCount { failures: u32::try_from(failures).unwrap_or(u32::MAX), last_failure: Timestamp(last) })
    })
}

pub(crate) fn failure_counts(store: &SqliteStore, keys: &[&str]) -> StoreResult<Vec<(String, FailureCount)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    store.read(|c| {
        let marks = vec!["?"; keys.len()].join(", ");
        let mut stmt = c
            .prepare(&format!("SELECT key, failures, last_failure_ms FROM failure_counts WHERE key IN ({marks})"))
            .db()?;
        stmt.query_map(params_from_iter(keys), |r| {
            let failures: i64 = r.get(1)?;
            Ok((
                r.get(0)?,
                FailureCount {
                    failures: u32::try_from(failures).unwrap_or(u32::MAX),
                    last_failure: Timestamp(r.get(2)?),
                },
            ))
        })
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()
    })
}

pub(crate) fn clear_failures(store: &SqliteStore, key: &str) -> StoreResult<()> {
    store.write(|tx| {
        tx.execute("DELETE FROM failure_counts WHERE key = ?1", [key]).db()?;
        Ok(())
    })
}

pub(crate) fn forget_failures_before(store: &SqliteStore, before: Timestamp) -> StoreResult<u64> {
    store.write(|tx| Ok(tx.execute("DELETE FROM failure_counts WHERE last_failure_ms < ?1", [before.0]).db()? as u64))
}
