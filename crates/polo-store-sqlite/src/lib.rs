//! polo's embedded default store: one SQLite file in WAL mode.
//!
//! # Why it looks like this
//!
//! * **Points live in chunks**, not rows: each `(user, device)` history is a
//!   sequence of time-ordered, non-overlapping blobs of up to
//!   [`CHUNK_CAPACITY`](polo_store::codec::CHUNK_CAPACITY) fixes encoded by
//!   [`polo_store::codec`]. A row per point costs 40+ bytes; a chunk costs
//!   well under 24 bytes per point including SQLite's own overhead (see
//!   `examples/bytes_per_point.rs`), and an import writes a few rows per
//!   thousand points instead of a thousand index updates.
//! * **One writer**: every write goes through one `Mutex<Connection>`, and
//!   each trait write call is one `BEGIN IMMEDIATE` transaction. SQLite only
//!   ever has one writer anyway; queueing in-process avoids `SQLITE_BUSY`
//!   retries and makes the change sequence trivially gap-free and ordered.
//! * **Readers don't wait**: in WAL mode readers see the last commit while
//!   the writer works, so reads use a small pool of read-only connections.
//!   Scans page through chunks a few at a time and return the connection
//!   between pages, so a slow consumer (a streaming export) neither pins a
//!   connection nor holds a snapshot that stops WAL checkpoints.
//! * **Durability**: `synchronous=NORMAL` in WAL mode loses at most the last
//!   transactions on power loss, never consistency; that is the right trade
//!   for location ingest (clients resend) and keeps commits fsync-free.
//! * The schema migrates itself on open (`PRAGMA user_version` and an ordered
//!   list of migrations, each in its own transaction; see `schema.rs`).

mod accounts;
mod auth;
mod checkpoint;
mod derived;
mod groups;
mod nodes;
mod points;
mod quiet;
mod records;
mod replication;
mod schema;
mod sharing;
mod tail_cache;
mod undo;
mod write_health;
mod zones;

use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use polo_domain::{Coord, DeviceId, Extras, Interval, IntervalKind, Point, Seq, SourceFormat, Timestamp, UserId};
use polo_store::{
    Change, ChangeKind, DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope, Device, DeviceCard,
    FailureCount, Hlc, ImportJobRecord, KeptUndo, LocationGrant, NewShare, PointQuery, Session, Share, StorageStats,
    Store, StoreError, StoreResult, StoredInterval, Token, TokenGrant, User, WriteOutcome,
};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Row, Transaction, TransactionBehavior, params};

/// Page size for new databases: SQLite's default, 4096.
///
/// Every commit appends each page it touched to the WAL, whole. A live
/// single-point commit touches three pages (the tail chunk's leaf, the change
/// log's leaf, `meta`), so the page size *is* the WAL traffic of live ingest:
/// with 16 KiB pages 20,000 points/s wrote ~100 MB/s of WAL, and the
/// checkpoint's WAL `fsync` (20–36 ms at that volume) stalled the writer's
/// appends behind it, which was the p99 of `polo-bench serve` (13 ms; 4.2–4.6 ms
/// with 4 KiB pages, at 25–27k instead of 15–19k points/s). Chunk blobs
/// (10–20 KB) spill into overflow pages either way; measured with
/// `examples/bytes_per_point.rs` on 1 M generated points (file bytes per
/// point / store-only import M points/s): 4096: 15.3 / 3.1, 16384: 16.2 / 4.3.
/// Existing databases keep the page size they were created with.
pub const DEFAULT_PAGE_SIZE: u32 = 4096;

/// Read-only connections open at most at once. A connection costs a schema
/// parse to open (about 100 µs) and its page cache; opening one per request
/// under load was measured to take half the server's CPU. Callers beyond
/// this many wait for a connection to come back: reads are short, and the
/// blocking thread pool would otherwise open hundreds.
const MAX_READERS: usize = 8;

const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Maps rusqlite errors into [`StoreError`]s ([`store_error`]).
pub(crate) trait Db<T> {
    fn db(self) -> StoreResult<T>;
}

impl<T> Db<T> for rusqlite::Result<T> {
    fn db(self) -> StoreResult<T> {
        self.map_err(|e| store_error(&e))
    }
}

/// `SQLITE_FULL` is [`StoreError::DiskFull`] (the writer names the store in
/// it, see `write_health`); every other failure is [`StoreError::Backend`].
pub(crate) fn store_error(e: &rusqlite::Error) -> StoreError {
    if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DiskFull) {
        StoreError::DiskFull(format!("sqlite: {e}"))
    } else {
        StoreError::Backend(format!("sqlite: {e}"))
    }
}

/// A bounded pool of read-only connections, opened on demand and kept.
struct ReaderPool {
    path: PathBuf,
    state: Mutex<PoolState>,
    returned: Condvar,
}

#[derive(Default)]
struct PoolState {
    idle: Vec<Connection>,
    /// Connections in existence: idle plus lent out.
    open: usize,
}

impl ReaderPool {
    /// Closes the connections nobody holds, giving back their page caches
    /// (see [`quiet`]); the next reads open new ones.
    fn close_idle(&self) -> usize {
        let closed: Vec<Connection> = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let closed = std::mem::take(&mut state.idle);
            state.open -= closed.len();
            closed
        };
        let n = closed.len();
        drop(closed);
        self.returned.notify_all();
        n
    }
}

impl ReaderPool {
    fn new(path: PathBuf) -> Self {
        Self { path, state: Mutex::new(PoolState::default()), returned: Condvar::new() }
    }

    fn take(&self) -> StoreResult<Connection> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(conn) = state.idle.pop() {
                return Ok(conn);
            }
            if state.open < MAX_READERS {
                state.open += 1;
                drop(state);
                return self.open().inspect_err(|_| {
                    self.state.lock().unwrap_or_else(PoisonError::into_inner).open -= 1;
                    self.returned.notify_one();
                });
            }
            state = self.returned.wait(state).unwrap_or_else(PoisonError::into_inner);
        }
    }

    fn open(&self) -> StoreResult<Connection> {
        let conn = Connection::open_with_flags(
            &self.path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI,
        )
        .db()?;
        conn.busy_timeout(BUSY_TIMEOUT).db()?;
        conn.pragma_update(None, "cache_size", -4096).db()?;
        stable_plans(&conn)?;
        Ok(conn)
    }

    fn give_back(&self, conn: Connection) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).idle.push(conn);
        self.returned.notify_one();
    }
}

/// A connection borrowed from the pool, returned even when the reader panics.
struct Lent<'a> {
    pool: &'a ReaderPool,
    conn: Option<Connection>,
}

impl Drop for Lent<'_> {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            self.pool.give_back(conn);
        }
    }
}

/// The SQLite [`Store`].
pub struct SqliteStore {
    /// Shared with the checkpoint thread, which holds it for the last few
    /// frames of each checkpoint.
    writer: Arc<Mutex<Connection>>,
    /// `None` for in-memory stores, whose only connection is the writer.
    readers: Option<Arc<ReaderPool>>,
    /// When the store was last used, for giving memory back when it is not.
    activity: Arc<quiet::Activity>,
    /// Copies the WAL into the database off the commit path (file stores).
    _checkpointer: Option<checkpoint::Checkpointer>,
    /// What the writer remembers between commits; only locked while the
    /// writer is held, so never contended.
    memory: Mutex<WriterMemory>,
    /// Whether writes fail for lack of space.
    health: write_health::WriteHealth,
}

/// What the writer keeps in memory between commits, for live ingest.
#[derive(Default)]
pub(crate) struct WriterMemory {
    /// Decoded copies of the chunks written last.
    pub(crate) tails: tail_cache::TailCache,
    /// Devices receiving points out of order, which compaction leaves alone.
    pub(crate) late: polo_store::chunks::LatePoints,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("path", &self.readers.as_ref().map(|r| &r.path)).finish_non_exhaustive()
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and migrates it.
    ///
    /// # Errors
    /// When the file cannot be opened or migrated.
    pub fn open(path: impl AsRef<Path>) -> StoreResult<Self> {
        Self::open_with_page_size(path, DEFAULT_PAGE_SIZE)
    }

    /// As [`SqliteStore::open`], with the page size a *new* database gets
    /// (existing databases keep theirs). For measurements.
    ///
    /// # Errors
    /// As [`SqliteStore::open`].
    pub fn open_with_page_size(path: impl AsRef<Path>, page_size: u32) -> StoreResult<Self> {
        let path = path.as_ref().to_path_buf();
        let health = write_health::WriteHealth::new(Some(path.clone()));
        let opened = (|| {
            let mut conn = Connection::open(&path).db()?;
            configure_writer(&conn, page_size, true)?;
            schema::migrate(&mut conn)?;
            // Checkpoints happen on their own thread (see `checkpoint`), not in commits.
            conn.pragma_update(None, "wal_autocheckpoint", 0).db()?;
            Ok(conn)
        })();
        let writer = Arc::new(Mutex::new(opened.map_err(|e| health.open_failure(e))?));
        let readers = Arc::new(ReaderPool::new(path.clone()));
        let activity = Arc::new(quiet::Activity::default());
        let housekeeping = quiet::housekeeping(Arc::clone(&activity), Arc::clone(&readers), Arc::clone(&writer));
        let checkpointer = checkpoint::Checkpointer::start(&path, Arc::clone(&writer), housekeeping)?;
        Ok(Self {
            writer,
            readers: Some(readers),
            activity,
            _checkpointer: Some(checkpointer),
            memory: Mutex::default(),
            health,
        })
    }

    /// A private in-memory database, for tests.
    ///
    /// # Errors
    /// Backend failures.
    pub fn open_in_memory() -> StoreResult<Self> {
        let mut conn = Connection::open_in_memory().db()?;
        configure_writer(&conn, DEFAULT_PAGE_SIZE, false)?;
        schema::migrate(&mut conn)?;
        Ok(Self {
            writer: Arc::new(Mutex::new(conn)),
            readers: None,
            activity: Arc::default(),
            _checkpointer: None,
            memory: Mutex::default(),
            health: write_health::WriteHealth::new(None),
        })
    }

    /// Lets the database grow by at most `pages` more pages (SQLite's
    /// `max_page_count`), or lifts the cap (`None`, which also counts as
    /// room for [`Store::check_writable`]): a write that would grow it
    /// further fails as [`StoreError::DiskFull`], as on a full disk. For
    /// tests of what happens when space runs out.
    ///
    /// # Errors
    /// Backend failures.
    pub fn limit_growth(&self, pages: Option<u64>) -> StoreResult<()> {
        /// SQLite's largest page count.
        const NO_CAP: i64 = 4_294_967_294;
        let conn = self.writer();
        let cap = match pages {
            None => NO_CAP,
            Some(pages) => {
                let now: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0)).db()?;
                now.saturating_add(i64::try_from(pages).unwrap_or(NO_CAP)).min(NO_CAP)
            }
        };
        conn.pragma_update(None, "max_page_count", cap).db()?;
        if pages.is_none() {
            self.health.clear();
        }
        Ok(())
    }

    fn writer(&self) -> MutexGuard<'_, Connection> {
        // A panic mid-transaction rolled that transaction back; the connection is fine.
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Runs `f` in one `BEGIN IMMEDIATE` transaction on the writer, noting
    /// in [`write_health`] whether it failed for lack of space.
    fn write<T>(&self, f: impl FnOnce(&Transaction<'_>) -> StoreResult<T>) -> StoreResult<T> {
        self.activity.touch();
        let mut conn = self.writer();
        let written = (|| {
            let tx = conn
                .transaction_with_behavior(TransactionBehavior::Immediate)
                .map_err(|e| self.health.sqlite_failure(&e))?;
            let out = f(&tx)?;
            tx.commit().map_err(|e| self.health.sqlite_failure(&e))?;
            Ok(out)
        })();
        self.health.observe(written)
    }

    /// Runs `f` on a reader (the writer for in-memory stores).
    fn read<T>(&self, f: impl FnOnce(&Connection) -> StoreResult<T>) -> StoreResult<T> {
        self.activity.touch();
        match &self.readers {
            None => f(&self.writer()),
            Some(pool) => {
                let lent = Lent { pool, conn: Some(pool.take()?) };
                f(lent.conn.as_ref().expect("lent connections are present until dropped"))
            }
        }
    }
}

/// Turns on SQLite's query planner stability guarantee. Without it, a
/// statement whose plan *could* depend on a bound value (a range on an
/// indexed column, with the STAT4 planner the bundled build enables) is
/// re-compiled on every execution with new values, which the statement
/// cache then cannot save: measured at a quarter of the server's CPU under
/// live ingest. polo's queries are written for one plan anyway.
fn stable_plans(conn: &Connection) -> StoreResult<()> {
    conn.set_db_config(rusqlite::config::DbConfig::SQLITE_DBCONFIG_ENABLE_QPSG, true).db()?;
    Ok(())
}

fn configure_writer(conn: &Connection, page_size: u32, wal: bool) -> StoreResult<()> {
    stable_plans(conn)?;
    // Must precede the first table (and WAL mode) to take effect.
    conn.pragma_update(None, "page_size", page_size).db()?;
    if wal {
        let mode: String = conn.pragma_update_and_check(None, "journal_mode", "WAL", |r| r.get(0)).db()?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(StoreError::Backend(format!("could not enable WAL mode (got {mode})")));
        }
    }
    conn.pragma_update(None, "synchronous", "NORMAL").db()?;
    conn.pragma_update(None, "foreign_keys", "ON").db()?;
    // 8 MiB: appends touch only the tail of the chunk index, and a small cache
    // keeps an import within the 64 MB peak-RSS budget on a Raspberry Pi.
    conn.pragma_update(None, "cache_size", -8192).db()?;
    conn.pragma_update(None, "temp_store", "MEMORY").db()?;
    conn.busy_timeout(BUSY_TIMEOUT).db()?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(())
}

// ---------------------------------------------------------------- shared helpers

pub(crate) fn last_seq(conn: &Connection) -> StoreResult<Seq> {
    let v: i64 =
        conn.prepare_cached("SELECT value FROM meta WHERE key = 'last_seq'").db()?.query_row([], |r| r.get(0)).db()?;
    Ok(Seq(v as u64))
}

pub(crate) use polo_store::clock::{Stamp, now};

/// Takes the next sequence number and records the change;
/// call once per write transaction that changed something.
#[allow(clippy::too_many_arguments)]
pub(crate) fn log_change(
    tx: &Transaction<'_>,
    kind: ChangeKind,
    user: UserId,
    device: Option<DeviceId>,
    first: Option<i64>,
    last: Option<i64>,
    count: u64,
) -> StoreResult<Seq> {
    log_change_stamped(tx, Stamp::Local, kind, user, device, first, last, count)
}

/// Logs a local change to an account (a user, or one of its `device`s) and
/// leaves the change's version on the row: replication compares an incoming
/// change with the row's version, and a row still carrying an older one
/// would let an older change from a peer undo this newer one.
pub(crate) fn log_account_change(tx: &Transaction<'_>, user: UserId, device: Option<DeviceId>) -> StoreResult<Seq> {
    let kind = if device.is_some() { ChangeKind::Device } else { ChangeKind::User };
    let seq = log_change(tx, kind, user, device, None, None, 1)?;
    let hlc = "(SELECT hlc FROM changes WHERE seq = ?1)";
    match device {
        None => tx
            .execute(&format!("UPDATE users SET hlc = {hlc}, origin = 0 WHERE id = ?2"), params![seq.0 as i64, user.0]),
        Some(device) => tx.execute(
            &format!("UPDATE devices SET hlc = {hlc}, origin = 0 WHERE user_id = ?2 AND id = ?3"),
            params![seq.0 as i64, user.0, device.0],
        ),
    }
    .db()?;
    Ok(seq)
}

/// [`log_change`] with an explicit [`Stamp`]. Either way this instance's
/// clock ends at or after the change's reading, so a later local change is
/// newer than every change seen.
#[allow(clippy::too_many_arguments)]
pub(crate) fn log_change_stamped(
    tx: &Transaction<'_>,
    stamp: Stamp,
    kind: ChangeKind,
    user: UserId,
    device: Option<DeviceId>,
    first: Option<i64>,
    last: Option<i64>,
    count: u64,
) -> StoreResult<Seq> {
    let change = ChangeRecord { kind, user, device, first, last, count };
    with_clock(tx, |clock| log_change_with(tx, clock, stamp, &change))
}

/// What a change log entry says happened: its kind, whose data, and the
/// time range and number of points it touched.
pub(crate) struct ChangeRecord {
    pub(crate) kind: ChangeKind,
    pub(crate) user: UserId,
    pub(crate) device: Option<DeviceId>,
    pub(crate) first: Option<i64>,
    pub(crate) last: Option<i64>,
    pub(crate) count: u64,
}

/// [`log_change_stamped`] on a [`ChangeClock`] the caller read.
pub(crate) fn log_change_with(
    tx: &Transaction<'_>,
    clock: &mut ChangeClock,
    stamp: Stamp,
    change: &ChangeRecord,
) -> StoreResult<Seq> {
    let (seq, hlc, origin) = clock.next(stamp, now());
    tx.prepare_cached(
        "INSERT INTO changes (seq, kind, user_id, device_id, first_ms, last_ms, count, hlc, origin) \
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
    )
    .db()?
    .execute(params![
        seq.0 as i64,
        change.kind.code(),
        change.user.0,
        change.device.map(|d| d.0),
        change.first,
        change.last,
        change.count as i64,
        hlc.0 as i64,
        origin
    ])
    .db()?;
    Ok(seq)
}

/// The change log's counters ([`polo_store::clock::ChangeClock`]), kept in `meta`.
///
/// Reading and writing them took four statements per change. A transaction
/// that logs many changes (the ingest writer's one commit for every device
/// that posted) reads them once, hands out seqs and clock readings in
/// memory, and writes them back once ([`with_clock`]).
pub(crate) use polo_store::clock::ChangeClock;

fn read_clock(tx: &Transaction<'_>) -> StoreResult<ChangeClock> {
    let hlc = tx
        .prepare_cached("SELECT value FROM meta WHERE key = 'hlc'")
        .db()?
        .query_row([], |r| r.get::<_, i64>(0))
        .db()?;
    Ok(ChangeClock { last_seq: last_seq(tx)?, hlc: Hlc(hlc as u64) })
}

fn write_clock(clock: ChangeClock, tx: &Transaction<'_>) -> StoreResult<()> {
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'last_seq'")
        .db()?
        .execute([clock.last_seq.0 as i64])
        .db()?;
    tx.prepare_cached("UPDATE meta SET value = ?1 WHERE key = 'hlc'").db()?.execute([clock.hlc.0 as i64]).db()?;
    Ok(())
}

/// Runs `f` with the change log's counters, writing them back when `f`
/// succeeded and handed out any.
pub(crate) fn with_clock<T>(
    tx: &Transaction<'_>,
    f: impl FnOnce(&mut ChangeClock) -> StoreResult<T>,
) -> StoreResult<T> {
    let read = read_clock(tx)?;
    let mut clock = read;
    let out = f(&mut clock)?;
    if clock != read {
        write_clock(clock, tx)?;
    }
    Ok(out)
}

/// [`Store::insert_intervals`] inside the writer's transaction, the change
/// stamped with `stamp`.
pub(crate) fn insert_intervals(
    tx: &Transaction<'_>,
    user: UserId,
    device: DeviceId,
    intervals: &[Interval],
    stamp: Stamp,
) -> StoreResult<WriteOutcome> {
    check_device(tx, user, device)?;
    let seq = last_seq(tx)?.0 + 1;
    let mut stmt = tx
            .prepare_cached(
                "INSERT INTO intervals (user_id, device_id, kind, start_ms, end_ms, identity_key, start_offset, \
                 end_offset, start_lat, start_lon, end_lat, end_lon, place_id, name, category, distance_m, \
                 confidence, level, source, extras, seq) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21) \
                 ON CONFLICT DO NOTHING",
            )
            .db()?;
    let (mut added, mut first, mut last) = (0u64, i64::MAX, i64::MIN);
    for iv in intervals {
        let n = stmt
            .execute(params![
                user.0,
                device.0,
                iv.kind.code(),
                iv.start.0,
                iv.end.0,
                iv.identity_key(),
                iv.start_offset_minutes,
                iv.end_offset_minutes,
                iv.start_coord.map(|c| c.lat_e7),
                iv.start_coord.map(|c| c.lon_e7),
                iv.end_coord.map(|c| c.lat_e7),
                iv.end_coord.map(|c| c.lon_e7),
                iv.place_id,
                iv.name,
                iv.category,
                iv.distance_m,
                iv.confidence,
                iv.level,
                iv.source.code(),
                iv.extras.as_ref().map(Extras::as_str),
                seq as i64,
            ])
            .db()?;
        if n > 0 {
            added += 1;
            first = first.min(iv.start.0);
            last = last.max(iv.end.0);
        }
    }
    let duplicates = intervals.len() as u64 - added;
    if added == 0 {
        return Ok(WriteOutcome { added, duplicates, deleted: 0, suppressed: 0, seq: None });
    }
    let seq = log_change_stamped(
        tx,
        stamp,
        ChangeKind::IntervalsInserted,
        user,
        Some(device),
        Some(first),
        Some(last),
        added,
    )?;
    Ok(WriteOutcome { added, duplicates, deleted: 0, suppressed: 0, seq: Some(seq) })
}

pub(crate) fn check_device(conn: &Connection, user: UserId, device: DeviceId) -> StoreResult<()> {
    let found = conn
        .prepare_cached("SELECT 1 FROM devices WHERE user_id = ?1 AND id = ?2")
        .db()?
        .query_row([user.0, device.0], |_| Ok(()))
        .optional()
        .db()?;
    found.ok_or_else(|| StoreError::NotFound(format!("device {device} of user {user}")))
}

fn user_from_row(r: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: UserId(r.get(0)?),
        name: r.get(1)?,
        password_hash: r.get(2)?,
        is_admin: r.get(3)?,
        created: Timestamp(r.get(4)?),
    })
}

const USER_COLUMNS: &str = "id, name, password_hash, is_admin, created_ms";

fn coord_from(lat: Option<i64>, lon: Option<i64>) -> StoreResult<Option<Coord>> {
    match (lat, lon) {
        (Some(lat), Some(lon)) => {
            let bad = |_| StoreError::Corrupt("interval coordinate out of range".into());
            Ok(Some(Coord { lat_e7: i32::try_from(lat).map_err(bad)?, lon_e7: i32::try_from(lon).map_err(bad)? }))
        }
        _ => Ok(None),
    }
}

pub(crate) fn interval_from_row(r: &Row<'_>) -> StoreResult<StoredInterval> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("interval {what}"));
    let get_i = |i: usize| r.get::<_, Option<i64>>(i).db();
    let offset = |v: Option<i64>| v.map(|v| i16::try_from(v).map_err(|_| corrupt("offset"))).transpose();
    let kind: i64 = r.get(3).db()?;
    let kind = u8::try_from(kind).ok().and_then(IntervalKind::from_code).ok_or_else(|| corrupt("kind"))?;
    let level: i64 = r.get(17).db()?;
    let source: i64 = r.get(18).db()?;
    Ok(StoredInterval {
        id: r.get(0).db()?,
        user: UserId(r.get(1).db()?),
        device: DeviceId(r.get(2).db()?),
        interval: Interval {
            kind,
            start: Timestamp(r.get(4).db()?),
            end: Timestamp(r.get(5).db()?),
            start_offset_minutes: offset(get_i(6)?)?,
            end_offset_minutes: offset(get_i(7)?)?,
            start_coord: coord_from(get_i(8)?, get_i(9)?)?,
            end_coord: coord_from(get_i(10)?, get_i(11)?)?,
            place_id: r.get(12).db()?,
            name: r.get(13).db()?,
            category: r.get(14).db()?,
            distance_m: r.get(15).db()?,
            confidence: r.get(16).db()?,
            level: u8::try_from(level).map_err(|_| corrupt("level"))?,
            source: SourceFormat::from_code(u8::try_from(source).map_err(|_| corrupt("source"))?),
            extras: r.get::<_, Option<String>>(19).db()?.map(Extras::from_json_object),
        },
    })
}

pub(crate) const INTERVAL_COLUMNS: &str = "id, user_id, device_id, kind, start_ms, end_ms, start_offset, end_offset, \
     start_lat, start_lon, end_lat, end_lon, place_id, name, category, distance_m, confidence, level, source, extras";

impl Store for SqliteStore {
    fn create_user(&self, name: &str, password_hash: &str, is_admin: bool) -> StoreResult<User> {
        self.write(|tx| {
            let taken = tx.query_row("SELECT 1 FROM users WHERE name = ?1", [name], |_| Ok(())).optional().db()?;
            if taken.is_some() {
                return Err(StoreError::AlreadyExists(format!("user {name:?}")));
            }
            let created = now();
            let id = UserId(accounts::next_user_id(tx)?);
            tx.execute(
                "INSERT INTO users (id, name, password_hash, is_admin, created_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
                params![id.0, name, password_hash, is_admin, created.0],
            )
            .db()?;
            let seq = log_account_change(tx, id, None)?;
            // A name deleted before: the new account exists since this change.
            tx.execute(
                "UPDATE deleted_users SET revived_hlc = (SELECT hlc FROM changes WHERE seq = ?2), revived_origin = 0 \
                 WHERE name = ?1",
                params![name, seq.0 as i64],
            )
            .db()?;
            Ok(User { id, name: name.to_owned(), password_hash: password_hash.to_owned(), is_admin, created })
        })
    }

    fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        self.read(|c| {
            c.query_row(&format!("SELECT {USER_COLUMNS} FROM users WHERE name = ?1"), [name], user_from_row)
                .optional()
                .db()
        })
    }

    fn list_users(&self) -> StoreResult<Vec<User>> {
        self.read(|c| {
            let mut stmt = c.prepare(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY id")).db()?;
            stmt.query_map([], user_from_row).db()?.collect::<rusqlite::Result<Vec<_>>>().db()
        })
    }

    fn ensure_device(&self, user: UserId, name: &str) -> StoreResult<Device> {
        let existing = |c: &Connection| {
            c.query_row("SELECT id FROM devices WHERE user_id = ?1 AND name = ?2", params![user.0, name], |r| {
                r.get::<_, i64>(0)
            })
            .optional()
            .db()
        };
        let device = |id: i64| Device { id: DeviceId(id), user, name: name.to_owned() };
        // The common case needs no write lock.
        if let Some(id) = self.read(existing)? {
            return Ok(device(id));
        }
        self.write(|tx| {
            if let Some(id) = existing(tx)? {
                return Ok(device(id));
            }
            let known = tx.query_row("SELECT 1 FROM users WHERE id = ?1", [user.0], |_| Ok(())).optional().db()?;
            if known.is_none() {
                return Err(StoreError::NotFound(format!("user {user}")));
            }
            let id = accounts::next_device_id(tx)?;
            tx.execute("INSERT INTO devices (user_id, id, name) VALUES (?1, ?2, ?3)", params![user.0, id, name])
                .db()?;
            log_account_change(tx, user, Some(DeviceId(id)))?;
            Ok(device(id))
        })
    }

    fn list_devices(&self, user: UserId) -> StoreResult<Vec<Device>> {
        self.read(|c| {
            let mut stmt = c.prepare_cached("SELECT id, name FROM devices WHERE user_id = ?1 ORDER BY id").db()?;
            stmt.query_map([user.0], |r| Ok(Device { id: DeviceId(r.get(0)?), user, name: r.get(1)? }))
                .db()?
                .collect::<rusqlite::Result<Vec<_>>>()
                .db()
        })
    }

    fn device_encryption_key(&self, user: UserId, device: DeviceId) -> StoreResult<Option<String>> {
        self.read(|c| {
            c.prepare_cached("SELECT encryption_key FROM devices WHERE user_id = ?1 AND id = ?2")
                .db()?
                .query_row([user.0, device.0], |r| r.get::<_, Option<String>>(0))
                .optional()
                .db()?
                .ok_or_else(|| StoreError::NotFound(format!("device {device} of user {user}")))
        })
    }

    fn set_device_encryption_key(&self, user: UserId, device: DeviceId, key: Option<&str>) -> StoreResult<()> {
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE devices SET encryption_key = ?3 WHERE user_id = ?1 AND id = ?2 \
                     AND encryption_key IS NOT ?3",
                    params![user.0, device.0, key],
                )
                .db()?;
            if changed == 0 {
                return check_device(tx, user, device);
            }
            log_account_change(tx, user, Some(device))?;
            Ok(())
        })
    }

    fn device_card(&self, user: UserId, device: DeviceId) -> StoreResult<Option<DeviceCard>> {
        self.read(|c| {
            let (name, face) = c
                .prepare_cached("SELECT card_name, card_face FROM devices WHERE user_id = ?1 AND id = ?2")
                .db()?
                .query_row([user.0, device.0], |r| Ok((r.get::<_, Option<String>>(0)?, r.get::<_, Option<String>>(1)?)))
                .optional()
                .db()?
                .ok_or_else(|| StoreError::NotFound(format!("device {device} of user {user}")))?;
            Ok((name.is_some() || face.is_some()).then_some(DeviceCard { name, face }))
        })
    }

    fn set_device_card(&self, user: UserId, device: DeviceId, card: Option<&DeviceCard>) -> StoreResult<()> {
        let (name, face) = card.map_or((None, None), |c| (c.name.as_deref(), c.face.as_deref()));
        self.write(|tx| {
            let changed = tx
                .execute(
                    "UPDATE devices SET card_name = ?3, card_face = ?4 WHERE user_id = ?1 AND id = ?2 \
                     AND (card_name IS NOT ?3 OR card_face IS NOT ?4)",
                    params![user.0, device.0, name, face],
                )
                .db()?;
            if changed == 0 {
                return check_device(tx, user, device);
            }
            log_account_change(tx, user, Some(device))?;
            Ok(())
        })
    }

    fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        auth::user_by_id(self, id)
    }

    fn set_password(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
        auth::set_password(self, user, password_hash)
    }

    fn delete_user(&self, user: UserId) -> StoreResult<polo_store::DeletedAccount> {
        self.write(|tx| accounts::delete_user(tx, user))
    }

    fn create_token(
        &self,
        user: UserId,
        device: DeviceId,
        label: &str,
        token_hash: &[u8; 32],
        grant: TokenGrant,
    ) -> StoreResult<Token> {
        auth::create_token(self, user, device, label, token_hash, grant)
    }

    fn token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<(Token, User)>> {
        auth::token_by_hash(self, token_hash)
    }

    fn list_tokens(&self, user: UserId) -> StoreResult<Vec<Token>> {
        auth::list_tokens(self, user)
    }

    fn revoke_token(&self, user: UserId, id: i64) -> StoreResult<bool> {
        auth::revoke_token(self, user, id)
    }

    fn create_session(
        &self,
        session_hash: &[u8; 32],
        user: UserId,
        csrf_token: &str,
        expires: Timestamp,
    ) -> StoreResult<Session> {
        auth::create_session(self, session_hash, user, csrf_token, expires)
    }

    fn session_by_hash(&self, session_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<(Session, User)>> {
        auth::session_by_hash(self, session_hash, now)
    }

    fn delete_session(&self, session_hash: &[u8; 32]) -> StoreResult<bool> {
        auth::delete_session(self, session_hash)
    }

    fn delete_user_sessions(&self, user: UserId, keep: Option<&[u8; 32]>) -> StoreResult<u64> {
        auth::delete_user_sessions(self, user, keep)
    }

    fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        auth::delete_expired_sessions(self, now)
    }

    fn keep_undo(&self, kept: &KeptUndo) -> StoreResult<()> {
        undo::keep_undo(self, kept)
    }

    fn take_undo(&self, user: UserId, token_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<KeptUndo>> {
        undo::take_undo(self, user, token_hash, now)
    }

    fn last_point(&self, user: UserId, device: DeviceId) -> StoreResult<Option<Point>> {
        points::last(self, user, device)
    }

    fn insert_points(&self, user: UserId, device: DeviceId, fixes: &[polo_domain::Fix]) -> StoreResult<WriteOutcome> {
        self.insert_points_reporting(user, device, fixes, &mut |_| {})
    }

    fn insert_points_reporting(
        &self,
        user: UserId,
        device: DeviceId,
        fixes: &[polo_domain::Fix],
        added: &mut dyn FnMut(Timestamp),
    ) -> StoreResult<WriteOutcome> {
        if fixes.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.write(|tx| {
            let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            with_clock(tx, |clock| points::insert_local(tx, user, device, fixes, added, false, &mut memory, clock))
        })
    }

    fn restore_points(&self, user: UserId, device: DeviceId, fixes: &[polo_domain::Fix]) -> StoreResult<WriteOutcome> {
        if fixes.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.write(|tx| {
            let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
            with_clock(tx, |clock| points::insert_local(tx, user, device, fixes, &mut |_| {}, true, &mut memory, clock))
        })
    }

    fn tombstones(
        &self,
        user: UserId,
        device: DeviceId,
        from: Timestamp,
        last: Timestamp,
    ) -> StoreResult<Vec<polo_store::Tombstone>> {
        self.read(|c| points::tombstones_over(c, user, device, from.0, last.0, false))
    }

    /// One transaction for all groups. A group that fails rolls the whole
    /// attempt back, gets its error, and the others are written again
    /// without it: failures are rare (a device deleted while its points
    /// were queued), and savepoints around every group cost the common case
    /// about a tenth of the writer's time (SQLite copies every page a
    /// savepoint touches first).
    fn insert_point_groups(
        &self,
        groups: &mut [polo_store::PointGroup<'_>],
        added: &mut dyn FnMut(usize, Timestamp),
    ) -> StoreResult<()> {
        loop {
            // Held back until the commit: an attempt rolled back reports nothing.
            let mut reports: Vec<(usize, Timestamp)> = Vec::new();
            let mut culprit: Option<(usize, StoreError)> = None;
            let attempt = self.write(|tx| {
                let mut memory = self.memory.lock().unwrap_or_else(PoisonError::into_inner);
                with_clock(tx, |clock| {
                    let mut outcomes = Vec::with_capacity(groups.len());
                    for (index, group) in groups.iter().enumerate() {
                        if group.outcome.is_some() {
                            continue; // failed in an earlier attempt
                        }
                        let outcome = points::insert_local(
                            tx,
                            group.user,
                            group.device,
                            group.fixes,
                            &mut |t| reports.push((index, t)),
                            false,
                            &mut memory,
                            clock,
                        );
                        match outcome {
                            Ok(outcome) => outcomes.push((index, outcome)),
                            Err(e) => {
                                let rollback = if e.is_disk_full() {
                                    StoreError::DiskFull(format!("group {index} failed: {e}"))
                                } else {
                                    StoreError::Backend(format!("group {index} failed: {e}"))
                                };
                                culprit = Some((index, e));
                                return Err(rollback);
                            }
                        }
                    }
                    Ok(outcomes)
                })
            });
            match (attempt, culprit) {
                (Ok(outcomes), _) => {
                    for (index, outcome) in outcomes {
                        groups[index].outcome = Some(Ok(outcome));
                    }
                    for (index, time) in reports {
                        added(index, time);
                    }
                    return Ok(());
                }
                (Err(_), Some((index, e))) => groups[index].outcome = Some(Err(self.health.name(e))),
                (Err(e), None) => return Err(e),
            }
        }
    }

    fn scan_points(&self, query: &PointQuery, visit: &mut dyn FnMut(Point) -> ControlFlow<()>) -> StoreResult<()> {
        points::scan(self, query, visit)
    }

    fn count_points(&self, user: UserId) -> StoreResult<u64> {
        self.read(|c| {
            let n: i64 = c
                .prepare_cached("SELECT coalesce(sum(n), 0) FROM point_chunks WHERE user_id = ?1")
                .db()?
                .query_row([user.0], |r| r.get(0))
                .db()?;
            Ok(n as u64)
        })
    }

    fn delete_selection(&self, selection: &polo_store::PointSelection) -> StoreResult<WriteOutcome> {
        // A selection on the map keeps its tombstone even when nothing was
        // stored there yet: what a re-import would bring must stay out.
        let always = selection.area.is_some();
        self.write(|tx| points::delete(tx, selection, Stamp::Local, None, always))
    }

    fn insert_intervals(&self, user: UserId, device: DeviceId, intervals: &[Interval]) -> StoreResult<WriteOutcome> {
        if intervals.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.write(|tx| {
            // What a delete buried stays out, as for points.
            let (Some(lo), Some(hi)) =
                (intervals.iter().map(|i| i.start.0).min(), intervals.iter().map(|i| i.start.0).max())
            else {
                return Ok(WriteOutcome::default());
            };
            let stones = points::tombstones_over(tx, user, device, lo, hi, true)?;
            let kept: Vec<Interval> = intervals
                .iter()
                .filter(|i| !stones.iter().any(|t| t.buries_at(device, i.start, i.start_coord)))
                .cloned()
                .collect();
            let suppressed = (intervals.len() - kept.len()) as u64;
            if kept.is_empty() {
                return Ok(WriteOutcome { suppressed, ..WriteOutcome::default() });
            }
            let outcome = insert_intervals(tx, user, device, &kept, Stamp::Local)?;
            Ok(WriteOutcome { suppressed, ..outcome })
        })
    }

    fn restore_intervals(&self, user: UserId, device: DeviceId, intervals: &[Interval]) -> StoreResult<WriteOutcome> {
        if intervals.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.write(|tx| insert_intervals(tx, user, device, intervals, Stamp::Local))
    }

    fn intervals(
        &self,
        user: UserId,
        kind: Option<IntervalKind>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> StoreResult<Vec<StoredInterval>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(&format!(
                    "SELECT {INTERVAL_COLUMNS} FROM intervals WHERE user_id = ?1 AND (?2 IS NULL OR kind = ?2) \
                     AND (?3 IS NULL OR end_ms >= ?3) AND (?4 IS NULL OR start_ms < ?4) ORDER BY start_ms, id"
                ))
                .db()?;
            let mut rows =
                stmt.query(params![user.0, kind.map(IntervalKind::code), from.map(|t| t.0), to.map(|t| t.0)]).db()?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().db()? {
                out.push(interval_from_row(r)?);
            }
            Ok(out)
        })
    }

    fn derived_range(&self, user: UserId, range: &DerivedRange) -> StoreResult<Vec<DerivedRow>> {
        self.read(|c| derived::range(c, user, range))
    }

    fn derived_before(
        &self,
        user: UserId,
        kind: DerivedKind,
        scope: DerivedScope,
        before: i64,
        limit: usize,
    ) -> StoreResult<Vec<DerivedRow>> {
        self.read(|c| derived::before(c, user, kind, scope, before, limit))
    }

    fn derived_write(&self, user: UserId, batch: &DerivedBatch, edit: bool) -> StoreResult<Option<Seq>> {
        self.write(|tx| derived::write(tx, user, batch, edit, Stamp::Local))
    }

    fn derived_cursor(&self, name: &str) -> StoreResult<Seq> {
        self.read(|c| derived::cursor(c, name))
    }

    fn set_derived_cursor(&self, name: &str, seq: Seq) -> StoreResult<()> {
        self.write(|tx| derived::set_cursor(tx, name, seq))
    }

    fn changes_since(&self, after: Seq, limit: usize) -> StoreResult<Vec<Change>> {
        self.read(|c| {
            let mut stmt = c
                .prepare_cached(
                    "SELECT seq, kind, user_id, device_id, first_ms, last_ms, count FROM changes \
                     WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )
                .db()?;
            let after = i64::try_from(after.0).unwrap_or(i64::MAX);
            let limit = i64::try_from(limit).unwrap_or(i64::MAX);
            let mut rows = stmt.query([after, limit]).db()?;
            let mut out = Vec::new();
            while let Some(r) = rows.next().db()? {
                let seq: i64 = r.get(0).db()?;
                let count: i64 = r.get(6).db()?;
                out.push(Change {
                    seq: Seq(seq as u64),
                    kind: ChangeKind::from_code(r.get(1).db()?)?,
                    user: UserId(r.get(2).db()?),
                    device: r.get::<_, Option<i64>>(3).db()?.map(DeviceId),
                    first: r.get::<_, Option<i64>>(4).db()?.map(Timestamp),
                    last: r.get::<_, Option<i64>>(5).db()?.map(Timestamp),
                    count: count as u64,
                });
            }
            Ok(out)
        })
    }

    fn last_seq(&self) -> StoreResult<Seq> {
        self.read(last_seq)
    }

    fn epoch(&self) -> StoreResult<String> {
        self.read(|c| {
            c.prepare_cached("SELECT value FROM meta WHERE key = 'epoch'").db()?.query_row([], |r| r.get(0)).db()
        })
    }

    fn instance_id(&self) -> StoreResult<String> {
        self.read(replication::instance_id)
    }

    fn epochs(&self) -> StoreResult<Vec<polo_store::EpochSpan>> {
        self.read(replication::epochs)
    }

    fn renew_epoch(&self) -> StoreResult<String> {
        self.write(replication::become_restored_copy)
    }

    fn replication_feed(
        &self,
        after: Seq,
        max_weight: usize,
        filter: &polo_store::FeedFilter,
    ) -> StoreResult<polo_store::FeedPage> {
        self.read(|c| replication::feed(c, after, max_weight, filter))
    }

    fn replication_apply(
        &self,
        name: &str,
        entries: &[polo_store::FeedEntry],
        checkpoint: &polo_store::Checkpoint,
    ) -> StoreResult<polo_store::ApplyOutcome> {
        self.write(|tx| replication::apply(tx, name, entries, checkpoint))
    }

    fn replication_checkpoint(&self, name: &str) -> StoreResult<Option<polo_store::Checkpoint>> {
        self.read(|c| replication::checkpoint(c, name))
    }

    fn replication_checkpoints(&self) -> StoreResult<Vec<(String, polo_store::Checkpoint)>> {
        self.read(replication::checkpoints)
    }

    fn create_replication_token(
        &self,
        label: &str,
        token_hash: &[u8; 32],
    ) -> StoreResult<polo_store::ReplicationToken> {
        self.write(|tx| replication::create_token(tx, label, token_hash))
    }

    fn replication_token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<polo_store::ReplicationToken>> {
        let Some(mut token) = self.read(|c| replication::token_by_hash(c, token_hash))? else { return Ok(None) };
        let at = now().0;
        if token.last_used.is_none_or(|t| at - t >= polo_store::TOKEN_TOUCH_INTERVAL_MS) {
            self.write(|tx| replication::touch_token(tx, token.id, at))?;
            token.last_used = Some(at);
        }
        Ok(Some(token))
    }

    fn list_replication_tokens(&self) -> StoreResult<Vec<polo_store::ReplicationToken>> {
        self.read(replication::list_tokens)
    }

    fn revoke_replication_token(&self, id: i64) -> StoreResult<bool> {
        self.write(|tx| replication::revoke_token(tx, id))
    }

    fn storage_stats(&self) -> StoreResult<StorageStats> {
        let conn = self.writer();
        if self.readers.is_some() {
            // Fold the WAL into the main file so page_count is what is on disk.
            conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |_| Ok(())).db()?;
        }
        let (chunks, points, chunk_bytes): (i64, i64, i64) = conn
            .query_row(
                "SELECT count(*), coalesce(sum(n), 0), coalesce(sum(length(data)), 0) FROM point_chunks",
                [],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
            )
            .db()?;
        let page_count: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0)).db()?;
        let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0)).db()?;
        Ok(StorageStats {
            points: points as u64,
            chunks: chunks as u64,
            chunk_bytes: chunk_bytes as u64,
            file_bytes: (page_count * page_size) as u64,
        })
    }

    fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.query_row("SELECT 1", [], |_| Ok(())).db())
    }

    fn check_writable(&self) -> StoreResult<()> {
        self.health.check()
    }

    // ---------------------------------------------------------------- sharing

    fn create_share(
        &self,
        user: UserId,
        share: &NewShare,
        token_hash: &[u8; 32],
        created_by_token: Option<i64>,
    ) -> StoreResult<Share> {
        sharing::create_share(self, user, share, token_hash, created_by_token)
    }

    fn share_by_hash(&self, token_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<(Share, User)>> {
        sharing::share_by_hash(self, token_hash, now)
    }

    fn list_shares(&self, user: UserId) -> StoreResult<Vec<Share>> {
        sharing::list_shares(self, user)
    }

    fn revoke_share(&self, user: UserId, id: i64, at: Timestamp) -> StoreResult<bool> {
        sharing::revoke_share(self, user, id, at)
    }

    fn grant_location(&self, owner: UserId, viewer: UserId, created_by_token: Option<i64>) -> StoreResult<bool> {
        sharing::grant_location(self, owner, viewer, created_by_token)
    }

    fn revoke_location_grant(&self, owner: UserId, viewer: UserId) -> StoreResult<bool> {
        sharing::revoke_location_grant(self, owner, viewer)
    }

    fn location_grants_by(&self, owner: UserId) -> StoreResult<Vec<LocationGrant>> {
        sharing::location_grants_by(self, owner)
    }

    fn location_grants_to(&self, viewer: UserId) -> StoreResult<Vec<LocationGrant>> {
        sharing::location_grants_to(self, viewer)
    }

    fn instance_settings(&self) -> StoreResult<Vec<(String, String)>> {
        sharing::instance_settings(self)
    }

    fn set_instance_setting(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        sharing::set_instance_setting(self, key, value)
    }

    fn set_user_role(&self, user: UserId, role: Option<polo_store::Role>) -> StoreResult<()> {
        records::set_user_role(self, user, role)
    }

    fn set_admin(&self, user: UserId, admin: bool) -> StoreResult<()> {
        records::set_admin(self, user, admin)
    }

    fn user_roles(&self) -> StoreResult<Vec<(UserId, polo_store::Role)>> {
        records::user_roles(self)
    }

    fn user_role(&self, user: UserId) -> StoreResult<Option<polo_store::Role>> {
        records::user_role(self, user)
    }

    fn write_records(&self, writes: &[polo_store::RecordWrite]) -> StoreResult<()> {
        records::write_records(self, writes)
    }

    fn record(&self, kind: &str, key: &str) -> StoreResult<Option<polo_store::Record>> {
        records::record(self, kind, key)
    }

    fn take_record(&self, kind: &str, key: &str) -> StoreResult<Option<polo_store::Record>> {
        records::take_record(self, kind, key)
    }

    fn records(&self, query: &polo_store::RecordQuery) -> StoreResult<Vec<polo_store::Record>> {
        records::records(self, query)
    }

    fn audit_log(&self, query: &polo_store::AuditQuery) -> StoreResult<Vec<polo_store::AuditEntry>> {
        records::audit_log(self, query)
    }

    fn create_zone(&self, user: UserId, body: &str, at: Timestamp) -> StoreResult<i64> {
        zones::create_zone(self, user, body, at)
    }

    fn update_zone(&self, user: UserId, id: i64, body: &str, at: Timestamp) -> StoreResult<bool> {
        zones::update_zone(self, user, id, body, at)
    }

    fn delete_zone(&self, user: UserId, id: i64) -> StoreResult<bool> {
        zones::delete_zone(self, user, id)
    }

    fn zones(&self, user: Option<UserId>) -> StoreResult<Vec<polo_store::ZoneRow>> {
        zones::zones(self, user)
    }

    fn zone_states(&self, user: UserId, device: DeviceId) -> StoreResult<Vec<polo_store::ZoneStateRow>> {
        zones::zone_states(self, user, device)
    }

    fn create_group_zone(&self, user: UserId, group: i64, body: &str, at: Timestamp) -> StoreResult<i64> {
        groups::create_group_zone(self, user, group, body, at)
    }

    fn group_zones(&self, group: i64) -> StoreResult<Vec<polo_store::ZoneRow>> {
        groups::group_zones(self, group)
    }

    fn create_group(&self, name: &str, creator: UserId, at: Timestamp) -> StoreResult<polo_store::Group> {
        groups::create_group(self, name, creator, at)
    }

    fn group(&self, id: i64) -> StoreResult<Option<polo_store::Group>> {
        groups::group(self, id)
    }

    fn groups_of(&self, user: UserId) -> StoreResult<Vec<polo_store::Membership>> {
        groups::groups_of(self, user)
    }

    fn rename_group(&self, id: i64, name: &str) -> StoreResult<bool> {
        groups::rename_group(self, id, name)
    }

    fn delete_group(&self, id: i64) -> StoreResult<bool> {
        groups::delete_group(self, id)
    }

    fn group_members(&self, id: i64) -> StoreResult<Vec<polo_store::GroupMember>> {
        groups::group_members(self, id)
    }

    fn set_group_admin(&self, id: i64, user: UserId, admin: bool) -> StoreResult<bool> {
        groups::set_group_admin(self, id, user, admin)
    }

    fn remove_group_member(&self, id: i64, user: UserId) -> StoreResult<bool> {
        groups::remove_group_member(self, id, user)
    }

    fn create_group_invitation(
        &self,
        invitation: &polo_store::NewInvitation,
        token_hash: &[u8; 32],
    ) -> StoreResult<polo_store::Invitation> {
        groups::create_group_invitation(self, invitation, token_hash)
    }

    fn group_invitations(&self, id: i64) -> StoreResult<Vec<polo_store::Invitation>> {
        groups::group_invitations(self, id)
    }

    fn revoke_group_invitation(&self, id: i64, invitation: i64, at: Timestamp) -> StoreResult<bool> {
        groups::revoke_group_invitation(self, id, invitation, at)
    }

    fn invitation_by_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> StoreResult<Option<(polo_store::Invitation, polo_store::Group)>> {
        groups::invitation_by_hash(self, token_hash)
    }

    fn join_group(&self, token_hash: &[u8; 32], user: UserId, now: Timestamp) -> StoreResult<polo_store::JoinOutcome> {
        groups::join_group(self, token_hash, user, now)
    }

    fn commit_events(&self, batch: &polo_store::EventBatch) -> StoreResult<Vec<Option<i64>>> {
        zones::commit_events(self, batch)
    }

    fn events(&self, user: UserId, after: i64, limit: usize) -> StoreResult<Vec<polo_store::StoredEvent>> {
        zones::events(self, user, after, limit)
    }

    fn create_webhook(&self, user: UserId, body: &str, secret: &str, at: Timestamp) -> StoreResult<i64> {
        zones::create_webhook(self, user, body, secret, at)
    }

    fn webhooks(&self, user: Option<UserId>) -> StoreResult<Vec<polo_store::WebhookRow>> {
        zones::webhooks(self, user)
    }

    fn delete_webhook(&self, user: UserId, id: i64) -> StoreResult<bool> {
        zones::delete_webhook(self, user, id)
    }

    fn update_webhook(
        &self,
        user: UserId,
        id: i64,
        body: &str,
        drop_pending: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool> {
        zones::update_webhook(self, user, id, body, drop_pending, at)
    }

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<polo_store::DueDelivery>> {
        zones::due_deliveries(self, now, limit)
    }

    fn update_delivery(&self, update: &polo_store::DeliveryUpdate) -> StoreResult<bool> {
        zones::update_delivery(self, update)
    }

    fn deliveries(
        &self,
        user: UserId,
        webhook: i64,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<polo_store::Delivery>> {
        zones::deliveries(self, user, webhook, before, limit)
    }

    fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        nodes::try_lease(self, name, holder, ttl)
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<bool> {
        nodes::release_lease(self, name, holder)
    }

    fn create_import_job(&self, job: &ImportJobRecord) -> StoreResult<()> {
        nodes::create_import_job(self, job)
    }

    fn update_import_job(&self, job: &ImportJobRecord) -> StoreResult<bool> {
        nodes::update_import_job(self, job)
    }

    fn import_job(&self, user: UserId, id: &str) -> StoreResult<Option<ImportJobRecord>> {
        nodes::import_job(self, user, id)
    }

    fn import_jobs(&self, user: UserId) -> StoreResult<Vec<ImportJobRecord>> {
        nodes::import_jobs(self, user)
    }

    fn delete_import_job(&self, user: UserId, id: &str) -> StoreResult<bool> {
        nodes::delete_import_job(self, user, id)
    }

    fn fail_stale_import_jobs(
        &self,
        heartbeat_before: Timestamp,
        spare_holder: &str,
        error: &str,
        now: Timestamp,
    ) -> StoreResult<u64> {
        nodes::fail_stale_import_jobs(self, heartbeat_before, spare_holder, error, now)
    }

    fn count_failure(&self, key: &str, now: Timestamp, forget_after: Duration) -> StoreResult<FailureCount> {
        nodes::count_failure(self, key, now, forget_after)
    }

    fn failure_counts(&self, keys: &[&str]) -> StoreResult<Vec<(String, FailureCount)>> {
        nodes::failure_counts(self, keys)
    }

    fn clear_failures(&self, key: &str) -> StoreResult<()> {
        nodes::clear_failures(self, key)
    }

    fn forget_failures_before(&self, before: Timestamp) -> StoreResult<u64> {
        nodes::forget_failures_before(self, before)
    }
}
