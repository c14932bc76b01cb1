//! polo's scale-out store: PostgreSQL, laid out for Citus.
//!
//! # Why it looks like this
//!
//! * **The same chunks as the embedded store.** Points are stored in
//!   [`polo_store::codec`] chunks, a row per few thousand points, never a row
//!   per point: the bytes per point stay those of the codec, and an import
//!   writes a few rows per thousand points.
//! * **Synchronous, pooled.** The [`Store`] trait is synchronous; callers run
//!   it on blocking threads. The `postgres` client is the synchronous face
//!   of `tokio-postgres`, and `r2d2` keeps a bounded pool of connections,
//!   so several `polo serve` nodes share one server without exhausting it.
//! * **Commit-ordered change log.** Every write that appends a change locks
//!   the one `change_clock` row first and holds it until it commits, so
//!   sequence numbers are gap-free and in commit order across every node,
//!   exactly as [`polo_store::clock`] promises readers. Writes that append no
//!   change (tokens, sessions, shares, settings) do not take the lock.
//!   Since the lock orders every node's changing commits, what a commit
//!   does while holding it is kept to few round trips (see `points`), and
//!   frequent statements are prepared once per pooled connection
//!   (`statements`).
//! * **Retries.** Serialisation failures, deadlocks and lost connections are
//!   [`StoreError::Retryable`]; writes without side effects outside the
//!   transaction are retried here a few times before the error reaches the
//!   caller.
//! * **Citus-ready** (see `schema`): `user_id` leads every per-user key.
//! * The schema migrates itself on open, once across nodes (an advisory lock).

mod account_deletion;
mod accounts;
mod auth;
mod deletes;
mod derived;
mod durable;
mod error;
mod groups;
mod intervals;
mod nodes;
mod points;
mod records;
mod replication;
mod schema;
mod sharing;
mod statements;
mod store_impl;
mod tails;
#[cfg(feature = "test-support")]
pub mod testing;
mod undo;
mod zones;

use std::sync::Mutex;
use std::time::Duration;

use polo_domain::{DeviceId, Seq, UserId};
use polo_store::clock::{ChangeClock, Stamp, now};
use polo_store::{ChangeKind, Hlc, StoreError, StoreResult};
use postgres::NoTls;
use postgres::types::Type;
use r2d2_postgres::PostgresConnectionManager;

pub use schema::{
    DISTRIBUTED_FOREIGN_KEYS, DISTRIBUTED_TABLES, REFERENCE_TABLES, SCHEMA_VERSION, citus_distribution_sql,
};
pub use tails::TailCacheStats;

use crate::error::{Db, pool_error};
use crate::statements::{Conn, LiveTx, Manager, Prepared, Tx};

/// Connections a store keeps open at most (`?pool_size=` in the URL
/// overrides it). Blocking callers beyond this wait for one to come back.
pub const DEFAULT_POOL_SIZE: u32 = 16;

/// Live-ingest writes a node keeps in flight at once
/// ([`polo_store::Store::live_writers`]): while one waits for its WAL flush
/// (after it let go of the clock, see `durable`), the next batch is written.
/// Each holds a pooled connection while it writes.
pub const LIVE_WRITERS: usize = 1;

/// How long a caller waits for a pooled connection, and how long opening
/// the store waits for the server, before giving up.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// How often a write that failed transiently is tried in all.
const WRITE_ATTEMPTS: u32 = 4;

/// The connection pool. Dropping a connection drives the client's runtime
/// to say goodbye to the server, so the pool is dropped where that is
/// allowed ([`outside_async`]): a store may well be dropped in async code.
struct Pool(Option<r2d2::Pool<Manager>>);

impl Pool {
    fn get(&self) -> Result<r2d2::PooledConnection<Manager>, r2d2::Error> {
        self.0.as_ref().expect("the pool is only taken when the store is dropped").get()
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let pool = self.0.take();
        outside_async(move || drop(pool));
    }
}

/// The PostgreSQL [`Store`](polo_store::Store).
pub struct PostgresStore {
    pool: Pool,
    /// Where it is, without a password: for messages.
    location: String,
    /// How to connect, for the dedicated `LISTEN` connection (see `nodes`).
    config: postgres::Config,
    /// This store's random id: the live messages it publishes carry it, so
    /// that its own listener drops them.
    node: String,
    /// The `NOTIFY` channel of this database and schema.
    live_channel: String,
    /// Which devices received late points through this store lately: a hint
    /// that spares them compaction (see [`polo_store::chunks::LatePoints`]).
    /// Other nodes have their own; a stale hint costs time, never data.
    late: Mutex<polo_store::chunks::LatePoints>,
    /// What this store knows of the devices it wrote last (see `tails`):
    /// checked against the database by every write that uses it.
    tails: Mutex<tails::Tails>,
    /// Live-ingest writes to keep in flight ([`LIVE_WRITERS`] unless the
    /// URL says `live_writers=N`).
    live_writers: usize,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("location", &self.location).finish_non_exhaustive()
    }
}

impl PostgresStore {
    /// Connects to the database at `url` (`postgres://user@host:port/db`,
    /// with libpq-style parameters such as `options=-csearch_path%3Dpolo`),
    /// and migrates it. An extra parameter `pool_size` sets how many
    /// connections the store keeps at most, and `live_writers` how many
    /// live-ingest writes it keeps in flight.
    ///
    /// # Errors
    /// A malformed URL, a server that does not answer within ten seconds,
    /// and failed migrations, each naming the server.
    pub fn open(url: &str) -> StoreResult<Self> {
        outside_async(|| Self::open_blocking(url))
    }

    fn open_blocking(url: &str) -> StoreResult<Self> {
        let (url, Tuning { pool_size, live_writers }) = split_tuning(url)?;
        let config: postgres::Config =
            url.parse().map_err(|e| StoreError::Backend(format!("invalid PostgreSQL URL: {e}")))?;
        let location = describe_location(&config);
        let mut client = config
            .clone()
            .connect_timeout(CONNECT_TIMEOUT)
            .connect(NoTls)
            .map_err(|e| StoreError::Backend(format!("could not connect to PostgreSQL at {location}: {e}")))?;
        schema::migrate(&mut client)
            .map_err(|e| StoreError::Backend(format!("migrating PostgreSQL at {location}: {e}")))?;
        let live_channel = nodes::live_channel(&mut client)?;
        drop(client);
        let manager = Manager(PostgresConnectionManager::new(config.clone(), NoTls));
        let pool = r2d2::Pool::builder()
            .max_size(pool_size)
            .min_idle(Some(0))
            .connection_timeout(CONNECT_TIMEOUT)
            .idle_timeout(Some(Duration::from_secs(300)))
            .build_unchecked(manager);
        Ok(Self {
            pool: Pool(Some(pool)),
            location,
            late: Mutex::default(),
            tails: Mutex::default(),
            live_writers,
            config,
            node: polo_store::clock::new_random_id(),
            live_channel,
        })
    }

    /// How live ingest used this store's tail cache so far (see
    /// [`TailCacheStats`]).
    #[must_use]
    pub fn tail_cache_stats(&self) -> TailCacheStats {
        self.tails.lock().map_or_else(|e| e.into_inner().stats, |t| t.stats)
    }

    /// Where the store is (host, port and database; no password).
    #[must_use]
    pub fn location(&self) -> &str {
        &self.location
    }

    fn client(&self) -> StoreResult<r2d2::PooledConnection<Manager>> {
        self.pool.get().map_err(|e| pool_error(&e))
    }

    /// Runs `f` on a pooled connection.
    pub(crate) fn read<T>(&self, f: impl FnOnce(&mut Conn) -> StoreResult<T>) -> StoreResult<T> {
        outside_async(|| {
            let mut client = self.client()?;
            f(&mut client)
        })
    }

    /// Runs `f` in one transaction and commits, trying again (a new
    /// transaction, `f` called again) when it failed transiently. `f` must
    /// have no effect outside the transaction.
    pub(crate) fn write<T>(&self, mut f: impl FnMut(&mut Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        let mut attempt = 1;
        loop {
            match self.write_once(&mut f) {
                Err(e) if e.is_retryable() && attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "retrying a PostgreSQL write");
                    std::thread::sleep(Duration::from_millis(5 << attempt));
                    attempt += 1;
                }
                done => return done,
            }
        }
    }

    /// Live ingest's write (see `durable`): `f` runs in a transaction that
    /// holds the change clock (read for it), whose commit does not wait for
    /// the WAL flush, and the flush is waited for in the commit's own round
    /// trip, after the lock is gone. A transient failure before the commit
    /// runs `f` again, as [`write`](Self::write) does; a failure of the
    /// commit or of its flush is returned (the write may then be stored or
    /// not, and was acknowledged to nobody).
    pub(crate) fn write_live<T>(
        &self,
        mut f: impl FnMut(&mut LiveTx<'_>, ChangeClock) -> StoreResult<T>,
    ) -> StoreResult<T> {
        let mut attempt = 1;
        loop {
            let result: StoreResult<(Result<(), postgres::Error>, T)> = outside_async(|| {
                let mut client = self.client()?;
                let (mut tx, row) = LiveTx::begin(&mut client, durable::LOCK_CLOCK).db()?;
                let clock = durable::clock_of(&row)?;
                let out = f(&mut tx, clock)?;
                Ok((tx.commit_then(durable::FLUSH), out))
            });
            match result {
                Ok((committed, out)) => return committed.db().map(|()| out),
                Err(e) if e.is_retryable() && attempt < WRITE_ATTEMPTS => {
                    tracing::debug!(error = %e, attempt, "retrying a PostgreSQL live write");
                    std::thread::sleep(Duration::from_millis(5 << attempt));
                    attempt += 1;
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Runs `f` in one transaction and commits, once.
    pub(crate) fn write_once<T>(&self, f: impl FnOnce(&mut Tx<'_>) -> StoreResult<T>) -> StoreResult<T> {
        outside_async(|| {
            let mut client = self.client()?;
            let mut tx = client.transaction().db()?;
            let out = f(&mut tx)?;
            tx.commit().db()?;
            Ok(out)
        })
    }
}

/// Runs `op`, which drives the client's own runtime, where that is allowed.
///
/// The synchronous client blocks on a runtime of its own, which tokio
/// forbids on a thread that is driving async tasks. Store calls belong on
/// blocking threads (`spawn_blocking`), where this costs nothing; called
/// from async code on a multi-threaded runtime (as `polo serve` runs, and
/// as a careless handler or a test might), `block_in_place` first hands
/// the thread's other tasks to another worker. On a current-thread runtime
/// only blocking threads may call the store.
pub(crate) fn outside_async<T>(op: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current() {
        Ok(handle) if handle.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread => {
            tokio::task::block_in_place(op)
        }
        _ => op(),
    }
}

/// polo's own parameters of a URL, which the client does not know.
#[derive(Debug, PartialEq, Eq)]
struct Tuning {
    /// `pool_size=N`: connections kept at most.
    pool_size: u32,
    /// `live_writers=N`: live-ingest writes kept in flight.
    live_writers: usize,
}

/// Takes `pool_size=N` and `live_writers=N` out of the URL's query.
fn split_tuning(url: &str) -> StoreResult<(String, Tuning)> {
    let mut tuning = Tuning { pool_size: DEFAULT_POOL_SIZE, live_writers: LIVE_WRITERS };
    let Some((base, query)) = url.split_once('?') else {
        return Ok((url.to_owned(), tuning));
    };
    let positive = |name: &str, n: &str| {
        n.parse::<u32>()
            .ok()
            .filter(|&n| n > 0)
            .ok_or_else(|| StoreError::Backend(format!("invalid PostgreSQL URL: {name}={n} is not a positive number")))
    };
    let mut kept = Vec::new();
    for pair in query.split('&') {
        if let Some(n) = pair.strip_prefix("pool_size=") {
            tuning.pool_size = positive("pool_size", n)?;
        } else if let Some(n) = pair.strip_prefix("live_writers=") {
            tuning.live_writers = positive("live_writers", n)? as usize;
        } else {
            kept.push(pair);
        }
    }
    let url = if kept.is_empty() { base.to_owned() } else { format!("{base}?{}", kept.join("&")) };
    Ok((url, tuning))
}

fn describe_location(config: &postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            postgres::config::Host::Tcp(name) => name.clone(),
            postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".to_owned());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    let db = config.get_dbname().or(config.get_user()).unwrap_or("postgres");
    format!("{host}:{port}/{db}")
}

// ---------------------------------------------------------------- the change log

/// What a change log entry says happened.
#[derive(Clone)]
pub(crate) struct ChangeRecord {
    pub(crate) kind: ChangeKind,
    pub(crate) user: UserId,
    pub(crate) device: Option<DeviceId>,
    pub(crate) first: Option<i64>,
    pub(crate) last: Option<i64>,
    pub(crate) count: u64,
}

/// Runs `f` with the change log's counters, locked until the transaction
/// ends, and writes them back when `f` handed out any. Take the clock
/// before any other row lock of the transaction: every changing write
/// takes it first, so writes never wait for each other in a cycle.
pub(crate) fn with_clock<T>(
    tx: &mut Tx<'_>,
    f: impl FnOnce(&mut Tx<'_>, &mut ChangeClock) -> StoreResult<T>,
) -> StoreResult<T> {
    let read = lock_clock(tx)?;
    let mut clock = read;
    let out = f(tx, &mut clock)?;
    if clock != read {
        tx.execute_prepared(
            "UPDATE change_clock SET last_seq = $1, hlc = $2 WHERE id = 1",
            &[(&(clock.last_seq.0 as i64), Type::INT8), (&(clock.hlc.0 as i64), Type::INT8)],
        )
        .db()?;
    }
    Ok(out)
}

/// Locks the change log's counters until the transaction ends and reads
/// them (see [`with_clock`]).
pub(crate) fn lock_clock(tx: &mut Tx<'_>) -> StoreResult<ChangeClock> {
    let row = tx.query_prepared_one("SELECT last_seq, hlc FROM change_clock WHERE id = 1 FOR UPDATE", &[]).db()?;
    Ok(ChangeClock { last_seq: Seq(row.get::<_, i64>(0) as u64), hlc: Hlc(row.get::<_, i64>(1) as u64) })
}

/// A change with its seq and version, not written yet.
pub(crate) struct StampedChange {
    pub(crate) seq: Seq,
    hlc: Hlc,
    origin: i64,
    record: ChangeRecord,
}

/// Takes the next seq and clock reading from `clock` for `change`.
pub(crate) fn stamp_change(clock: &mut ChangeClock, stamp: Stamp, change: ChangeRecord) -> StampedChange {
    let (seq, hlc, origin) = clock.next(stamp, now());
    StampedChange { seq, hlc, origin, record: change }
}

/// Writes stamped changes in one statement and, with `clock`, the change
/// log's counters in the same one: a write that stamps many changes (live
/// ingest commits many phones at once) pays one round trip for them all.
pub(crate) fn write_changes(
    tx: &mut impl Prepared,
    changes: &[StampedChange],
    clock: Option<ChangeClock>,
) -> StoreResult<()> {
    if changes.is_empty() && clock.is_none() {
        return Ok(());
    }
    let c = ChangeColumns::of(changes, clock);
    tx.execute_prepared(
        "WITH clock AS (UPDATE change_clock SET last_seq = $10, hlc = $11 WHERE id = 1 AND $10::BIGINT IS NOT NULL) \
         INSERT INTO changes (user_id, seq, kind, device_id, first_ms, last_ms, count, hlc, origin) \
         SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::SMALLINT[], $4::BIGINT[], $5::BIGINT[], \
             $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[])",
        &c.params(),
    )
    .db()?;
    Ok(())
}

/// Stamped changes and the clock as the array parameters `$1`–`$11` of
/// [`write_changes`]' statement (and of statements that extend it).
pub(crate) struct ChangeColumns {
    users: Vec<i64>,
    seqs: Vec<i64>,
    kinds: Vec<i16>,
    devices: Vec<Option<i64>>,
    firsts: Vec<Option<i64>>,
    lasts: Vec<Option<i64>>,
    counts: Vec<i64>,
    hlcs: Vec<i64>,
    origins: Vec<i64>,
    last_seq: Option<i64>,
    hlc: Option<i64>,
}

impl ChangeColumns {
    pub(crate) fn of(changes: &[StampedChange], clock: Option<ChangeClock>) -> Self {
        let (last_seq, hlc) = clock.map_or((None, None), |c| (Some(c.last_seq.0 as i64), Some(c.hlc.0 as i64)));
        Self {
            users: changes.iter().map(|c| c.record.user.0).collect(),
            seqs: changes.iter().map(|c| c.seq.0 as i64).collect(),
            kinds: changes.iter().map(|c| c.record.kind.code() as i16).collect(),
            devices: changes.iter().map(|c| c.record.device.map(|d| d.0)).collect(),
            firsts: changes.iter().map(|c| c.record.first).collect(),
            lasts: changes.iter().map(|c| c.record.last).collect(),
            counts: changes.iter().map(|c| c.record.count as i64).collect(),
            hlcs: changes.iter().map(|c| c.hlc.0 as i64).collect(),
            origins: changes.iter().map(|c| c.origin).collect(),
            last_seq,
            hlc,
        }
    }

    pub(crate) fn params(&self) -> Vec<(&(dyn postgres::types::ToSql + Sync), Type)> {
        vec![
            (&self.users, Type::INT8_ARRAY),
            (&self.seqs, Type::INT8_ARRAY),
            (&self.kinds, Type::INT2_ARRAY),
            (&self.devices, Type::INT8_ARRAY),
            (&self.firsts, Type::INT8_ARRAY),
            (&self.lasts, Type::INT8_ARRAY),
            (&self.counts, Type::INT8_ARRAY),
            (&self.hlcs, Type::INT8_ARRAY),
            (&self.origins, Type::INT8_ARRAY),
            (&self.last_seq, Type::INT8),
            (&self.hlc, Type::INT8),
        ]
    }
}

/// Takes the next seq and clock reading from `clock` and records the change.
pub(crate) fn log_change_with(
    tx: &mut Tx<'_>,
    clock: &mut ChangeClock,
    stamp: Stamp,
    change: &ChangeRecord,
) -> StoreResult<Seq> {
    let stamped = stamp_change(clock, stamp, change.clone());
    write_changes(tx, std::slice::from_ref(&stamped), None)?;
    Ok(stamped.seq)
}

/// Records one local change in a transaction of its own making: takes the
/// clock (see [`with_clock`]) and logs the change.
#[allow(dead_code)]
pub(crate) fn log_change(tx: &mut Tx<'_>, change: &ChangeRecord) -> StoreResult<Seq> {
    with_clock(tx, |tx, clock| log_change_with(tx, clock, Stamp::Local, change))
}

/// [`StoreError::NotFound`] unless `device` is one of `user`'s.
pub(crate) fn check_device(c: &mut impl Prepared, user: UserId, device: DeviceId) -> StoreResult<()> {
    let found = c
        .query_prepared_opt(
            "SELECT 1 FROM devices WHERE user_id = $1 AND id = $2",
            &[(&user.0, Type::INT8), (&device.0, Type::INT8)],
        )
        .db()?;
    found.map(|_| ()).ok_or_else(|| no_device(user, device))
}

/// The error of a write to a device that is not `user`'s.
pub(crate) fn no_device(user: UserId, device: DeviceId) -> StoreError {
    StoreError::NotFound(format!("device {device} of user {user}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pool_size_and_live_writers_are_taken_out_of_the_url() {
        let (url, t) = split_tuning("postgres://u@h/db?options=-cx%3Dy&pool_size=4&live_writers=2").unwrap();
        assert_eq!(url, "postgres://u@h/db?options=-cx%3Dy");
        assert_eq!(t, Tuning { pool_size: 4, live_writers: 2 });
        let (url, t) = split_tuning("postgres://u@h/db").unwrap();
        assert_eq!(url, "postgres://u@h/db");
        assert_eq!(t, Tuning { pool_size: DEFAULT_POOL_SIZE, live_writers: LIVE_WRITERS });
        assert!(split_tuning("postgres://u@h/db?pool_size=0").is_err());
        assert!(split_tuning("postgres://u@h/db?live_writers=x").is_err());
    }

    #[test]
    fn an_unreachable_server_is_named_in_the_error() {
        let err = PostgresStore::open("postgres://nobody@127.0.0.1:1/polo").unwrap_err();
        assert!(err.to_string().contains("127.0.0.1:1/polo"), "{err}");
    }
}
