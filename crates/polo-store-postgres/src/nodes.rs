//! What several `polo serve` nodes on one database coordinate through it
//! (see [`polo_store::nodes`]): leases, import job records, failure
//! counters, and live messages over `LISTEN`/`NOTIFY`.
//!
//! # Why it is built this way
//!
//! * **Leases** are one row per name, taken or renewed by one `INSERT … ON
//!   CONFLICT DO UPDATE … WHERE` that only wins when the row is the
//!   caller's or has expired. PostgreSQL re-checks the `WHERE` on the row's
//!   newest version under its lock, so two nodes racing for an expired lease
//!   cannot both win. Expiry is the *database's* clock
//!   (`clock_timestamp()`), so the nodes' clocks need not agree.
//! * **Import jobs** are per user (`user_id` first in the key, distributed
//!   under Citus). An update only writes an unfinished job, so a node that
//!   was declared dead and comes back cannot resurrect a job another node
//!   failed.
//! * **Failure counters** are one atomic upsert per failure; a check is one
//!   indexed read. Keys are client addresses, not users: a small reference
//!   table.
//! * **Live messages** are `pg_notify` on a channel named after the
//!   database and schema (so test schemas, or two instances in one
//!   database, do not hear each other), each prefixed with the publishing
//!   store's random id so that a node drops its own. `NOTIFY` is delivered
//!   at commit and only to sessions that listen, so each node keeps one
//!   dedicated connection outside the pool for `LISTEN` (through PgBouncer
//!   that connection needs session pooling). Publishing is one statement
//!   for a whole batch of messages.

use std::time::Duration;

use polo_domain::{Timestamp, UserId};
use polo_store::nodes::MAX_LIVE_MESSAGE;
use polo_store::{
    FailureCount, ImportJobRecord, ImportJobStatus, LiveReceiver, LiveSubscription, StoreError, StoreResult,
};
use postgres::fallible_iterator::FallibleIterator;
use postgres::types::Type;
use postgres::{Client, NoTls, Row};

use crate::PostgresStore;
use crate::error::{Db, is_unique_violation, store_error};
use crate::statements::Prepared;

/// The database's clock in milliseconds since the epoch, as SQL.
const DB_NOW_MS: &str = "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT";

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

fn int(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn uint(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

// ---------------------------------------------------------------- leases

pub(crate) fn try_lease(store: &PostgresStore, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
    store.write(|tx| {
        // The database's clock is read first and passed in: Citus refuses a
        // volatile function in an ON CONFLICT ... WHERE on its tables
        // ("functions used in the WHERE clause of the ON CONFLICT clause of
        // INSERTs on distributed tables must be marked IMMUTABLE").
        let now: i64 = tx.query_one(&format!("SELECT {DB_NOW_MS}"), &[]).db()?.get(0);
        let won = tx
            .query_opt(
                "INSERT INTO leases (name, holder, expires_ms) VALUES ($1, $2, $3::BIGINT + $4::BIGINT) \
                 ON CONFLICT (name) DO UPDATE SET holder = EXCLUDED.holder, expires_ms = EXCLUDED.expires_ms \
                 WHERE leases.holder = EXCLUDED.holder OR leases.expires_ms <= $3::BIGINT RETURNING 1",
                &[&name, &holder, &now, &millis(ttl)],
            )
            .db()?;
        Ok(won.is_some())
    })
}

pub(crate) fn release_lease(store: &PostgresStore, name: &str, holder: &str) -> StoreResult<bool> {
    store.write(|tx| Ok(tx.execute("DELETE FROM leases WHERE name = $1 AND holder = $2", &[&name, &holder]).db()? > 0))
}

// ---------------------------------------------------------------- import jobs

const JOB_COLUMNS: &str = "user_id, id, file_name, status, holder, started_ms, heartbeat_ms, finished_ms, bytes_total, \
    bytes_read, points_added, duplicates, deleted_left_out, intervals_added, rejected, error, report";

fn job_from_row(r: &Row) -> StoreResult<ImportJobRecord> {
    Ok(ImportJobRecord {
        user: UserId(r.get(0)),
        id: r.get(1),
        file_name: r.get(2),
        status: ImportJobStatus::from_code(r.get(3))?,
        holder: r.get(4),
        started: Timestamp(r.get(5)),
        heartbeat: Timestamp(r.get(6)),
        finished: r.get::<_, Option<i64>>(7).map(Timestamp),
        bytes_total: uint(r.get(8)),
        bytes_read: uint(r.get(9)),
        points_added: uint(r.get(10)),
        duplicates: uint(r.get(11)),
        deleted_left_out: uint(r.get(12)),
        intervals_added: uint(r.get(13)),
        rejected: uint(r.get(14)),
        error: r.get(15),
        report: r.get(16),
    })
}

const UNFINISHED: [i16; 2] = [0, 1];

pub(crate) fn create_import_job(store: &PostgresStore, job: &ImportJobRecord) -> StoreResult<()> {
    debug_assert_eq!(UNFINISHED, [ImportJobStatus::Queued.code(), ImportJobStatus::Running.code()]);
    store.write(|tx| {
        if tx.query_opt("SELECT 1 FROM users WHERE id = $1", &[&job.user.0]).db()?.is_none() {
            return Err(StoreError::NotFound(format!("user {}", job.user)));
        }
        let inserted = tx.execute(
            &format!(
                "INSERT INTO import_jobs ({JOB_COLUMNS}) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)"
            ),
            &[
                &job.user.0,
                &job.id,
                &job.file_name,
                &job.status.code(),
                &job.holder,
                &job.started.0,
                &job.heartbeat.0,
                &job.finished.map(|t| t.0),
                &int(job.bytes_total),
                &int(job.bytes_read),
                &int(job.points_added),
                &int(job.duplicates),
                &int(job.deleted_left_out),
                &int(job.intervals_added),
                &int(job.rejected),
                &job.error,
                &job.report,
            ],
        );
        match inserted {
            Ok(_) => Ok(()),
            Err(e) if is_unique_violation(&e) => {
                Err(StoreError::AlreadyExists(format!("import job {} of user {}", job.id, job.user)))
            }
            Err(e) => Err(store_error(&e)),
        }
    })
}

pub(crate) fn update_import_job(store: &PostgresStore, job: &ImportJobRecord) -> StoreResult<bool> {
    store.write(|tx| {
        let written = tx
            .execute(
                "UPDATE import_jobs SET status = $3, holder = $4, heartbeat_ms = $5, finished_ms = $6, \
                 bytes_read = $7, points_added = $8, duplicates = $9, deleted_left_out = $10, \
                 intervals_added = $11, rejected = $12, error = $13, report = $14 \
                 WHERE user_id = $1 AND id = $2 AND status = ANY($15)",
                &[
                    &job.user.0,
                    &job.id,
                    &job.status.code(),
                    &job.holder,
                    &job.heartbeat.0,
                    &job.finished.map(|t| t.0),
                    &int(job.bytes_read),
                    &int(job.points_added),
                    &int(job.duplicates),
                    &int(job.deleted_left_out),
                    &int(job.intervals_added),
                    &int(job.rejected),
                    &job.error,
                    &job.report,
                    &&UNFINISHED[..],
                ],
            )
            .db()?;
        Ok(written > 0)
    })
}

pub(crate) fn import_job(store: &PostgresStore, user: UserId, id: &str) -> StoreResult<Option<ImportJobRecord>> {
    store.read(|c| {
        let row = c
            .query_opt(
                &format!("SELECT {JOB_COLUMNS} FROM import_jobs WHERE user_id = $1 AND id = $2"),
                &[&user.0, &id],
            )
            .db()?;
        row.as_ref().map(job_from_row).transpose()
    })
}

pub(crate) fn import_jobs(store: &PostgresStore, user: UserId) -> StoreResult<Vec<ImportJobRecord>> {
    store.read(|c| {
        let rows = c
            .query(
                &format!("SELECT {JOB_COLUMNS} FROM import_jobs WHERE user_id = $1 ORDER BY started_ms DESC, id DESC"),
                &[&user.0],
            )
            .db()?;
        rows.iter().map(job_from_row).collect()
    })
}

pub(crate) fn delete_import_job(store: &PostgresStore, user: UserId, id: &str) -> StoreResult<bool> {
    store
        .write(|tx| Ok(tx.execute("DELETE FROM import_jobs WHERE user_id = $1 AND id = $2", &[&user.0, &id]).db()? > 0))
}

pub(crate) fn fail_stale_import_jobs(
    store: &PostgresStore,
    heartbeat_before: Timestamp,
    spare_holder: &str,
    error: &str,
    at: Timestamp,
) -> StoreResult<u64> {
    store.write(|tx| {
        tx.execute(
            "UPDATE import_jobs SET status = $1, error = $2, finished_ms = $3 \
             WHERE status = ANY($4) AND heartbeat_ms < $5 AND holder <> $6",
            &[&ImportJobStatus::Failed.code(), &error, &at.0, &&UNFINISHED[..], &heartbeat_before.0, &spare_holder],
        )
        .db()
    })
}

// ---------------------------------------------------------------- failure counters

fn count_from(failures: i64, last: i64) -> FailureCount {
    FailureCount { failures: u32::try_from(failures).unwrap_or(u32::MAX), last_failure: Timestamp(last) }
}

pub(crate) fn count_failure(
    store: &PostgresStore,
    key: &str,
    at: Timestamp,
    forget_after: Duration,
) -> StoreResult<FailureCount> {
    store.write(|tx| {
        let row = tx
            .query_one(
                "INSERT INTO failure_counts (key, failures, last_failure_ms) VALUES ($1, 1, $2) \
                 ON CONFLICT (key) DO UPDATE SET \
                   failures = CASE WHEN failure_counts.last_failure_ms <= $2 - $3 THEN 1 \
                                   ELSE failure_counts.failures + 1 END, \
                   last_failure_ms = GREATEST(failure_counts.last_failure_ms, $2) \
                 RETURNING failures, last_failure_ms",
                &[&key, &at.0, &millis(forget_after)],
            )
            .db()?;
        Ok(count_from(row.get(0), row.get(1)))
    })
}

pub(crate) fn failure_counts(store: &PostgresStore, keys: &[&str]) -> StoreResult<Vec<(String, FailureCount)>> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    store.read(|c| {
        let rows =
            c.query("SELECT key, failures, last_failure_ms FROM failure_counts WHERE key = ANY($1)", &[&keys]).db()?;
        Ok(rows.iter().map(|r| (r.get(0), count_from(r.get(1), r.get(2)))).collect())
    })
}

pub(crate) fn clear_failures(store: &PostgresStore, key: &str) -> StoreResult<()> {
    store.write(|tx| {
        tx.execute("DELETE FROM failure_counts WHERE key = $1", &[&key]).db()?;
        Ok(())
    })
}

pub(crate) fn forget_failures_before(store: &PostgresStore, before: Timestamp) -> StoreResult<u64> {
    store.write(|tx| tx.execute("DELETE FROM failure_counts WHERE last_failure_ms < $1", &[&before.0]).db())
}

// ---------------------------------------------------------------- live messages

/// The channel of this database and schema (a valid identifier, under 64 bytes).
pub(crate) fn live_channel(client: &mut Client) -> StoreResult<String> {
    let row =
        client.query_one("SELECT 'polo_live_' || md5(current_database() || '.' || current_schema())", &[]).db()?;
    Ok(row.get(0))
}

pub(crate) fn publish_live(store: &PostgresStore, messages: &[String]) -> StoreResult<()> {
    if messages.is_empty() {
        return Ok(());
    }
    if let Some(long) = messages.iter().find(|m| m.len() > MAX_LIVE_MESSAGE) {
        return Err(StoreError::Backend(format!(
            "a live message of {} bytes is longer than the {MAX_LIVE_MESSAGE} bytes NOTIFY carries",
            long.len()
        )));
    }
    let payloads: Vec<String> = messages.iter().map(|m| format!("{}|{m}", store.node)).collect();
    store.read(|c| {
        c.execute_prepared(
            "SELECT pg_notify($1, payload) FROM unnest($2::TEXT[]) AS payload",
            &[(&store.live_channel, Type::TEXT), (&payloads, Type::TEXT_ARRAY)],
        )
        .db()?;
        Ok(())
    })
}

pub(crate) fn subscribe_live(store: &PostgresStore) -> StoreResult<LiveSubscription> {
    let mut client = store.config.connect(NoTls).map_err(|e| {
        StoreError::Retryable(format!(
            "connecting to PostgreSQL at {} to listen for live messages: {e}",
            store.location
        ))
    })?;
    client.batch_execute(&format!("LISTEN {}", store.live_channel)).db()?;
    Ok(LiveSubscription::Shared(Box::new(Listener { client, own_prefix: format!("{}|", store.node) })))
}

/// A dedicated connection that `LISTEN`s on the store's channel.
struct Listener {
    client: Client,
    /// What this store's own messages start with.
    own_prefix: String,
}

impl Listener {
    fn keep(&self, out: &mut Vec<String>, payload: &str) {
        if payload.starts_with(&self.own_prefix) {
            return;
        }
        // Another node's message: drop its sender id.
        if let Some((_, message)) = payload.split_once('|') {
            out.push(message.to_owned());
        }
    }
}

impl LiveReceiver for Listener {
    fn wait(&mut self, timeout: Duration) -> StoreResult<Vec<String>> {
        let lost = |e: &postgres::Error| StoreError::Retryable(format!("the live-message connection: {e}"));
        let mut out = Vec::new();
        let first = self.client.notifications().timeout_iter(timeout).next().map_err(|e| lost(&e))?;
        if let Some(first) = first {
            self.keep(&mut out, first.payload());
            let pending: Vec<String> = self
                .client
                .notifications()
                .iter()
                .map(|n| Ok(n.payload().to_owned()))
                .collect()
                .map_err(|e| lost(&e))?;
            for payload in &pending {
                self.keep(&mut out, payload);
            }
        }
        if self.client.is_closed() {
            return Err(StoreError::Retryable("the live-message connection was closed".to_owned()));
        }
        Ok(out)
    }
}
