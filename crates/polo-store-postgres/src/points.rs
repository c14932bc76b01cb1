//! Point chunks in PostgreSQL: inserting into them, scanning them, and the
//! figures about them.
//!
//! # Why it is built this way
//!
//! * **The shared planner.** What an insert does to a device's chunks
//!   (merging, live tails, splits, compaction) is decided by
//!   [`polo_store::chunks`], exactly as in the SQLite store; this module
//!   reads the rows a plan needs and applies its [`ChunkWrite`]s.
//! * **One writer per device at a time, across nodes.** Every write that
//!   changes chunks takes the `change_clock` row lock first (the caller's
//!   [`with_clock`], or the replication transaction's), so two nodes never
//!   plan against the same chunks at once: the second waits, then reads
//!   what the first committed (each statement of a READ COMMITTED
//!   transaction sees the commits before it). Reads take no lock.
//!   That is also why an insert reads only after the lock: a statement
//!   started before it was granted would not see the holder's commit.
//! * **Few round trips under the lock.** While a commit holds the clock,
//!   every other node's commit waits, so its round trips are what live
//!   ingest's throughput is made of. Statements are prepared once per
//!   connection (`statements`); an insert reads all it plans with in one
//!   statement ([`probe`]: the device check, the tombstones, the chunk
//!   bounds and the small chunks' payloads); a plan that writes one chunk
//!   (a live tail) is held back and sent with every other phone's, their
//!   change rows and the clock in the commit's last statement
//!   ([`Deferred`]); a live commit of N phones is at most N + 3 round
//!   trips (`BEGIN` with the lock, N probes, the writes, `COMMIT` with the
//!   flush: see `durable`), where it was about ten per phone. A write
//!   that creates several chunks (imports) sends them with one binary
//!   `COPY`.
//! * **A tail cache, checked by the database.** Live ingest plans a device
//!   this store wrote last from what it kept of it (`tails`: the newest
//!   chunk decoded, its bounds, the tombstones), without the probe; the
//!   write carries a guard the database checks in the same statement (no
//!   change to the device logged since, the newest chunk unchanged), so a
//!   write by another node, a delete or a replicated page is never
//!   overlooked: a failed guard writes nothing and the attempt is made
//!   again from the database. A live commit of N phones this store wrote
//!   last is three round trips, whatever N. The late-points hint is kept
//!   per store too, since it can cost time but never data.
//! * **Durable after the lock.** Live ingest commits asynchronously, so the
//!   clock lock goes as soon as the commit is written, and waits for the
//!   WAL flush before it returns (`durable`): the next writer, on any node,
//!   takes the clock while the flush is still to come.
//! * **Retries without doubled reports.** [`PostgresStore::write`] may run
//!   a write again; the times an insert added are collected inside the
//!   attempt and handed to the caller only once the attempt committed.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::ops::ControlFlow;
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use polo_domain::{DeviceId, Fix, Point, Seq, Timestamp, UserId};
use polo_store::chunks::{
    Batch, COMPACT_LOOKBACK, ChunkMeta, ChunkWrite, LIVE_TAIL, LatePoints, PieceBounds, bounds, compact, compaction,
};
use polo_store::clock::{ChangeClock, Stamp};
use polo_store::codec::{ExtrasEncoding, StoredFix, decode_chunk, encode_chunk_with};
use polo_store::{ChangeKind, PointGroup, PointQuery, StorageStats, StoreError, StoreResult, Tombstone, WriteOutcome};
use postgres::binary_copy::BinaryCopyInWriter;
use postgres::types::{ToSql, Type};
use postgres::{GenericClient, Row};

use crate::error::Db;
use crate::statements::Prepared;
use crate::tails::{Tail, Tails};
use crate::{
    ChangeColumns, ChangeRecord, DISTRIBUTED_TABLES, PostgresStore, REFERENCE_TABLES, StampedChange, check_device,
    lock_clock, no_device, stamp_change, write_changes,
};

// The replication engine (`replication.rs`) writes through these three.
pub(crate) use crate::deletes::delete;
pub(crate) use crate::intervals::insert_intervals;
pub(crate) use polo_store::chunks::Replace;

/// Chunks fetched per round trip while scanning.
const SCAN_PAGE: i64 = 8;

/// Whose write an insert is: a local one, or one replicated from a peer.
pub(crate) struct Provenance<'r> {
    /// What the change is stamped with.
    pub(crate) stamp: Stamp,
    /// Whether a fix replaces the stored fix of the same time
    /// (replication's last-writer-wins); `None`, for local writes, keeps
    /// the stored fix.
    pub(crate) replace: Option<&'r mut Replace<'r>>,
}

impl Provenance<'_> {
    /// A write made here: stamped locally, never replacing a stored fix.
    pub(crate) fn local() -> Self {
        Provenance { stamp: Stamp::Local, replace: None }
    }
}

// ---------------------------------------------------------------- chunk rows

/// Reads a [`ChunkMeta`] from a row whose first columns are `id, first_ms, last_ms, n`.
pub(crate) fn chunk_meta(r: &Row) -> StoreResult<ChunkMeta> {
    let id: i64 = r.get(0);
    let n: i32 = r.get(3);
    let n = usize::try_from(n).map_err(|_| StoreError::Corrupt(format!("point chunk {id} holds {n} fixes")))?;
    Ok(ChunkMeta { id, first: r.get(1), last: r.get(2), n })
}

/// The payloads of chunks `ids` of `user`, by id, in one query.
pub(crate) fn load_chunks(tx: &mut impl Prepared, user: UserId, ids: &[i64]) -> StoreResult<HashMap<i64, Vec<u8>>> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows = tx
        .query_prepared(
            "SELECT id, data FROM point_chunks WHERE user_id = $1 AND id = ANY($2)",
            &[(&user.0, Type::INT8), (&ids, Type::INT8_ARRAY)],
        )
        .db()?;
    Ok(rows.into_iter().map(|r| (r.get(0), r.get(1))).collect())
}

/// Decodes chunk `id` from what [`load_chunks`] returned.
pub(crate) fn decode_loaded(payloads: &mut HashMap<i64, Vec<u8>>, id: i64) -> StoreResult<Vec<StoredFix>> {
    let data = payloads
        .remove(&id)
        .ok_or_else(|| StoreError::Backend(format!("point chunk {id} vanished while it was being written")))?;
    decode_chunk(&data).map_err(|e| match e {
        StoreError::Corrupt(what) => StoreError::Corrupt(format!("point chunk {id}: {what}")),
        other => other,
    })
}

/// A new chunk, encoded.
struct NewChunk {
    bounds: PieceBounds,
    data: Vec<u8>,
}

fn encode(fixes: &[StoredFix], encoding: ExtrasEncoding) -> NewChunk {
    NewChunk { bounds: bounds(fixes), data: encode_chunk_with(fixes, encoding) }
}

/// Stores new chunks of `device`: one with a plain insert (a live tail,
/// one round trip), several with one binary `COPY` (imports).
fn insert_chunks(tx: &mut impl Prepared, user: UserId, device: DeviceId, chunks: Vec<NewChunk>) -> StoreResult<()> {
    match &chunks[..] {
        [] => Ok(()),
        [one] => {
            let b = &one.bounds;
            tx.execute_prepared(
                "INSERT INTO point_chunks (user_id, device_id, first_ms, last_ms, n, max_seq, data) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    (&user.0, Type::INT8),
                    (&device.0, Type::INT8),
                    (&b.first, Type::INT8),
                    (&b.last, Type::INT8),
                    (&chunk_size(b), Type::INT4),
                    (&b.max_seq, Type::INT8),
                    (&one.data, Type::BYTEA),
                ],
            )
            .db()?;
            Ok(())
        }
        _ => {
            let sink = tx
                .parts()
                .0
                .copy_in(
                    "COPY point_chunks (user_id, device_id, first_ms, last_ms, n, max_seq, data) FROM STDIN BINARY",
                )
                .db()?;
            let types = [Type::INT8, Type::INT8, Type::INT8, Type::INT8, Type::INT4, Type::INT8, Type::BYTEA];
            let mut writer = BinaryCopyInWriter::new(sink, &types);
            for chunk in &chunks {
                let b = &chunk.bounds;
                writer.write(&[&user.0, &device.0, &b.first, &b.last, &chunk_size(b), &b.max_seq, &chunk.data]).db()?;
            }
            writer.finish().db()?;
            Ok(())
        }
    }
}

/// A chunk's fix count as stored (`INTEGER`); chunks hold at most
/// [`polo_store::codec::MAX_CHUNK_POINTS`].
fn chunk_size(b: &PieceBounds) -> i32 {
    i32::try_from(b.n).unwrap_or(i32::MAX)
}

fn update_chunk(tx: &mut impl Prepared, user: UserId, id: i64, chunk: &NewChunk) -> StoreResult<()> {
    let b = &chunk.bounds;
    tx.execute_prepared(
        "UPDATE point_chunks SET first_ms = $3, last_ms = $4, n = $5, max_seq = $6, data = $7 \
         WHERE user_id = $1 AND id = $2",
        &[
            (&user.0, Type::INT8),
            (&id, Type::INT8),
            (&b.first, Type::INT8),
            (&b.last, Type::INT8),
            (&chunk_size(b), Type::INT4),
            (&b.max_seq, Type::INT8),
            (&chunk.data, Type::BYTEA),
        ],
    )
    .db()?;
    Ok(())
}

/// Removes chunks `ids` of `user` in one statement.
pub(crate) fn delete_chunks(tx: &mut impl Prepared, user: UserId, ids: &[i64]) -> StoreResult<()> {
    if !ids.is_empty() {
        tx.execute_prepared(
            "DELETE FROM point_chunks WHERE user_id = $1 AND id = ANY($2)",
            &[(&user.0, Type::INT8), (&ids, Type::INT8_ARRAY)],
        )
        .db()?;
    }
    Ok(())
}

/// Applies a plan's writes to `device`'s chunks, in order. New chunks are
/// gathered and sent together (before anything reads the chunks again, and
/// at the end); [`ChunkWrite::CompactBefore`] compacts only when `compact`.
pub(crate) fn apply(
    tx: &mut impl Prepared,
    user: UserId,
    device: DeviceId,
    writes: Vec<ChunkWrite>,
    compact: bool,
) -> StoreResult<()> {
    let mut new = Vec::new();
    for write in writes {
        match write {
            ChunkWrite::Insert { fixes, encoding, .. } => new.push(encode(&fixes, encoding)),
            ChunkWrite::Rewrite { id, fixes, encoding, .. } => update_chunk(tx, user, id, &encode(&fixes, encoding))?,
            ChunkWrite::Delete { id } => delete_chunks(tx, user, &[id])?,
            ChunkWrite::CompactBefore { last } if compact => {
                insert_chunks(tx, user, device, std::mem::take(&mut new))?;
                compact_before(tx, user, device, last)?;
            }
            ChunkWrite::CompactBefore { .. } => {}
        }
    }
    insert_chunks(tx, user, device, new)
}

/// What the inserts of one transaction leave for its last statement: their
/// change rows and, for a plan that writes one chunk (a live tail's
/// rewrite, or a new tail), that chunk. Live ingest writes every phone of a
/// commit this way in one round trip, with the clock ([`Deferred::finish`]).
/// Anything else (splits, compaction, imports' `COPY`) is written at once,
/// after what was pending, and a device is never read while a write of it
/// is pending, so what an insert reads is always what is stored.
///
/// Writes planned from the tail cache carry a [`Guard`], checked by the
/// first statement sent after them (folded into it): until then nothing of
/// theirs is written, and when one fails nothing of the statement is.
#[derive(Default)]
pub(crate) struct Deferred {
    changes: Vec<StampedChange>,
    rewrites: Vec<(UserId, i64, NewChunk)>,
    inserts: Vec<(UserId, DeviceId, NewChunk)>,
    /// The devices with a pending chunk write.
    devices: HashSet<(UserId, DeviceId)>,
    /// Guards of plans made from the tail cache, not checked yet.
    guards: Vec<Guard>,
    /// Whether a guard failed: the attempt must be rolled back and made
    /// again from the database.
    stale: bool,
    /// What the tail cache learns once the transaction commits.
    tails: Vec<NewTail>,
    /// The ids of the chunks inserted so far through the last statement.
    inserted: HashMap<(UserId, DeviceId), i64>,
}

/// What a plan made from a [`Tail`] assumed of its device, for the
/// database to confirm before anything of it is written (see `tails`).
pub(crate) struct Guard {
    user: UserId,
    device: DeviceId,
    /// No change that could touch the device's chunks or tombstones after this one.
    seq: Seq,
    /// The device's newest chunk, with this size and end (`None`: no chunk).
    newest: Option<ChunkMeta>,
}

/// A device's state after this transaction, for the tail cache.
struct NewTail {
    user: UserId,
    device: DeviceId,
    tail: Tail,
    /// The cache's claim on the device ([`Tails::take`]).
    claim: u64,
    /// The newest chunk is the one this transaction inserts: its id comes
    /// back from the insert.
    inserted: bool,
}

/// The failure of a guard: the tail cache was behind the database.
fn stale_tail() -> StoreError {
    StoreError::Backend("a cached live tail was behind the database".to_owned())
}

impl Deferred {
    /// Applies a plan's writes: held back when the plan writes one chunk,
    /// at once (after what was pending) otherwise. `tail` is the device's
    /// state after the plan, when it can be known without reading.
    fn apply(
        &mut self,
        tx: &mut impl Prepared,
        user: UserId,
        device: DeviceId,
        writes: Vec<ChunkWrite>,
        compact: bool,
        tail: Option<(Tail, bool, u64)>,
    ) -> StoreResult<()> {
        let one_chunk = writes.iter().filter(|w| !matches!(w, ChunkWrite::CompactBefore { .. })).count() == 1
            && writes.iter().all(|w| match w {
                ChunkWrite::Insert { .. } | ChunkWrite::Rewrite { .. } => true,
                ChunkWrite::CompactBefore { .. } => !compact,
                ChunkWrite::Delete { .. } => false,
            });
        if !one_chunk || self.devices.contains(&(user, device)) {
            self.flush(tx)?;
            return apply(tx, user, device, writes, compact);
        }
        for write in writes {
            match write {
                ChunkWrite::Insert { fixes, encoding, .. } => {
                    self.inserts.push((user, device, encode(&fixes, encoding)));
                }
                ChunkWrite::Rewrite { id, fixes, encoding, .. } => {
                    self.rewrites.push((user, id, encode(&fixes, encoding)));
                }
                ChunkWrite::Delete { .. } | ChunkWrite::CompactBefore { .. } => {}
            }
        }
        self.devices.insert((user, device));
        if let Some((tail, inserted, claim)) = tail {
            self.tails.push(NewTail { user, device, tail, claim, inserted });
        }
        Ok(())
    }

    /// Writes the pending chunks of `device` (and every other's) before it
    /// is read again.
    fn before_reading(&mut self, tx: &mut impl Prepared, user: UserId, device: DeviceId) -> StoreResult<()> {
        if self.devices.contains(&(user, device)) { self.flush(tx) } else { Ok(()) }
    }

    /// Writes the pending chunks now, and checks the pending guards,
    /// keeping the change rows.
    fn flush(&mut self, tx: &mut impl Prepared) -> StoreResult<()> {
        if self.devices.is_empty() && self.guards.is_empty() {
            return Ok(());
        }
        self.send(tx, false, None)
    }

    /// Writes everything pending, and with `clock` the change log's
    /// counters, in one statement.
    pub(crate) fn finish(&mut self, tx: &mut impl Prepared, clock: Option<ChangeClock>) -> StoreResult<()> {
        if self.devices.is_empty() && self.guards.is_empty() {
            let changes = std::mem::take(&mut self.changes);
            return write_changes(tx, &changes, clock);
        }
        self.send(tx, true, clock)
    }

    /// The statement of [`flush`](Self::flush) and [`finish`](Self::finish):
    /// the guards checked, and only when they hold, the pending chunks, with
    /// `changes` the change rows, and with `clock` the counters, written.
    fn send(&mut self, tx: &mut impl Prepared, changes: bool, clock: Option<ChangeClock>) -> StoreResult<()> {
        let logged = if changes { std::mem::take(&mut self.changes) } else { Vec::new() };
        let changes = ChangeColumns::of(&logged, clock);
        let rewrites = ChunkColumns::of(self.rewrites.iter().map(|(user, id, chunk)| (*user, *id, chunk)));
        let inserts = ChunkColumns::of(self.inserts.iter().map(|(user, device, chunk)| (*user, device.0, chunk)));
        let guards = GuardColumns::of(&self.guards);
        let mut params = changes.params();
        params.extend(rewrites.params());
        params.extend(inserts.params());
        params.extend(guards.params());
        let rows = tx
            .query_prepared(
                "WITH guard AS (SELECT coalesce(bool_and( \
                     EXISTS (SELECT 1 FROM devices d WHERE d.user_id = g.u AND d.id = g.d) \
                     AND NOT EXISTS (SELECT 1 FROM changes c WHERE c.user_id = g.u AND c.seq > g.s \
                         AND (c.device_id = g.d OR c.device_id IS NULL) AND c.kind <> ALL ($32::SMALLINT[])) \
                     AND (SELECT p.id FROM point_chunks p WHERE p.user_id = g.u AND p.device_id = g.d \
                         ORDER BY p.first_ms DESC LIMIT 1) IS NOT DISTINCT FROM g.c \
                     AND (g.c IS NULL OR EXISTS (SELECT 1 FROM point_chunks p WHERE p.user_id = g.u \
                         AND p.id = g.c AND p.n = g.n AND p.last_ms = g.l))), true) AS ok \
                 FROM unnest($26::BIGINT[], $27::BIGINT[], $28::BIGINT[], $29::BIGINT[], $30::INTEGER[], \
                     $31::BIGINT[]) AS g (u, d, s, c, n, l)), \
                 clock AS (UPDATE change_clock SET last_seq = $10, hlc = $11 \
                     WHERE id = 1 AND $10::BIGINT IS NOT NULL AND (SELECT ok FROM guard)), \
                 logged AS (INSERT INTO changes (user_id, seq, kind, device_id, first_ms, last_ms, count, hlc, origin) \
                     SELECT * FROM unnest($1::BIGINT[], $2::BIGINT[], $3::SMALLINT[], $4::BIGINT[], $5::BIGINT[], \
                         $6::BIGINT[], $7::BIGINT[], $8::BIGINT[], $9::BIGINT[]) WHERE (SELECT ok FROM guard)), \
                 rewritten AS (UPDATE point_chunks c SET first_ms = u.first_ms, last_ms = u.last_ms, n = u.n, \
                         max_seq = u.max_seq, data = u.data \
                     FROM unnest($12::BIGINT[], $13::BIGINT[], $14::BIGINT[], $15::BIGINT[], $16::INTEGER[], \
                         $17::BIGINT[], $18::BYTEA[]) AS u (user_id, id, first_ms, last_ms, n, max_seq, data) \
                     WHERE c.user_id = u.user_id AND c.id = u.id AND (SELECT ok FROM guard)), \
                 inserted AS (INSERT INTO point_chunks (user_id, device_id, first_ms, last_ms, n, max_seq, data) \
                     SELECT * FROM unnest($19::BIGINT[], $20::BIGINT[], $21::BIGINT[], $22::BIGINT[], $23::INTEGER[], \
                         $24::BIGINT[], $25::BYTEA[]) WHERE (SELECT ok FROM guard) \
                     RETURNING user_id, device_id, id) \
                 SELECT NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, ok FROM guard \
                 UNION ALL SELECT user_id, device_id, id, NULL::BOOLEAN FROM inserted",
                &params,
            )
            .db()?;
        let mut held = false;
        for row in &rows {
            match row.get::<_, Option<bool>>(3) {
                Some(ok) => held = ok,
                None => {
                    self.inserted.insert((UserId(row.get(0)), DeviceId(row.get(1))), row.get(2));
                }
            }
        }
        if !held {
            self.stale = true;
            return Err(stale_tail());
        }
        self.guards.clear();
        self.rewrites.clear();
        self.inserts.clear();
        self.devices.clear();
        Ok(())
    }

    /// What the tail cache learns from this transaction, once it committed.
    fn into_tails(self) -> Vec<(UserId, DeviceId, Tail, u64)> {
        let inserted = self.inserted;
        self.tails
            .into_iter()
            .filter_map(|t| {
                let NewTail { user, device, mut tail, claim, inserted: new } = t;
                if new {
                    let id = *inserted.get(&(user, device))?;
                    tail.newest = tail.newest.map(|m| ChunkMeta { id, ..m });
                }
                Some((user, device, tail, claim))
            })
            .collect()
    }
}

/// Guards as the array parameters `$26`–`$32` of [`Deferred::send`]'s statement.
struct GuardColumns {
    users: Vec<i64>,
    devices: Vec<i64>,
    seqs: Vec<i64>,
    chunks: Vec<Option<i64>>,
    sizes: Vec<Option<i32>>,
    lasts: Vec<Option<i64>>,
    /// The change kinds that touch neither chunks nor tombstones.
    harmless: Vec<i16>,
}

impl GuardColumns {
    fn of(guards: &[Guard]) -> Self {
        Self {
            users: guards.iter().map(|g| g.user.0).collect(),
            devices: guards.iter().map(|g| g.device.0).collect(),
            seqs: guards.iter().map(|g| i64::try_from(g.seq.0).unwrap_or(i64::MAX)).collect(),
            chunks: guards.iter().map(|g| g.newest.map(|m| m.id)).collect(),
            sizes: guards.iter().map(|g| g.newest.map(|m| i32::try_from(m.n).unwrap_or(i32::MAX))).collect(),
            lasts: guards.iter().map(|g| g.newest.map(|m| m.last)).collect(),
            harmless: [ChangeKind::IntervalsInserted, ChangeKind::Edit].iter().map(|k| k.code() as i16).collect(),
        }
    }

    fn params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        vec![
            (&self.users, Type::INT8_ARRAY),
            (&self.devices, Type::INT8_ARRAY),
            (&self.seqs, Type::INT8_ARRAY),
            (&self.chunks, Type::INT8_ARRAY),
            (&self.sizes, Type::INT4_ARRAY),
            (&self.lasts, Type::INT8_ARRAY),
            (&self.harmless, Type::INT2_ARRAY),
        ]
    }
}

/// The device's [`Tail`] after `writes`, when it follows from them and what
/// the plan knew (`newest`, the device's newest chunk before): a rewrite of
/// that chunk, or one new chunk after it (the `bool`: its id is not known
/// yet). Anything else (splits, compaction) is left for the next write to
/// read.
fn next_tail(
    newest: Option<ChunkMeta>,
    writes: &[ChunkWrite],
    compact: bool,
    seq: Seq,
    tombstones: Vec<Tombstone>,
    from: i64,
) -> Option<(Tail, bool)> {
    let mut chunk_writes = writes.iter().filter(|w| !matches!(w, ChunkWrite::CompactBefore { .. }));
    let (Some(write), None) = (chunk_writes.next(), chunk_writes.next()) else { return None };
    if compact && writes.iter().any(|w| matches!(w, ChunkWrite::CompactBefore { .. })) {
        return None;
    }
    let (id, fixes, inserted) = match write {
        ChunkWrite::Rewrite { id, fixes, .. } if newest.is_some_and(|m| m.id == *id) => (*id, fixes, false),
        ChunkWrite::Insert { fixes, .. }
            if newest.is_none_or(|m| fixes.first().is_some_and(|f| f.fix.time.0 > m.last)) =>
        {
            (0, fixes, true)
        }
        _ => return None,
    };
    let b = bounds(fixes);
    let n = usize::try_from(b.n).ok()?;
    let meta = ChunkMeta { id, first: b.first, last: b.last, n };
    let fixes = (n < LIVE_TAIL).then(|| fixes.clone());
    Some((Tail { seq, newest: Some(meta), fixes, tombstones, from }, inserted))
}

/// Chunks as array parameters: user, id (a rewrite's chunk, or a new
/// chunk's device), bounds, size, max seq and payload.
struct ChunkColumns<'c> {
    users: Vec<i64>,
    keys: Vec<i64>,
    firsts: Vec<i64>,
    lasts: Vec<i64>,
    sizes: Vec<i32>,
    max_seqs: Vec<i64>,
    data: Vec<&'c [u8]>,
}

impl<'c> ChunkColumns<'c> {
    fn of(chunks: impl Iterator<Item = (UserId, i64, &'c NewChunk)>) -> Self {
        let mut c = ChunkColumns {
            users: Vec::new(),
            keys: Vec::new(),
            firsts: Vec::new(),
            lasts: Vec::new(),
            sizes: Vec::new(),
            max_seqs: Vec::new(),
            data: Vec::new(),
        };
        for (user, key, chunk) in chunks {
            let b = &chunk.bounds;
            c.users.push(user.0);
            c.keys.push(key);
            c.firsts.push(b.first);
            c.lasts.push(b.last);
            c.sizes.push(chunk_size(b));
            c.max_seqs.push(b.max_seq);
            c.data.push(&chunk.data);
        }
        c
    }

    fn params(&self) -> Vec<(&(dyn ToSql + Sync), Type)> {
        vec![
            (&self.users, Type::INT8_ARRAY),
            (&self.keys, Type::INT8_ARRAY),
            (&self.firsts, Type::INT8_ARRAY),
            (&self.lasts, Type::INT8_ARRAY),
            (&self.sizes, Type::INT4_ARRAY),
            (&self.max_seqs, Type::INT8_ARRAY),
            (&self.data, Type::BYTEA_ARRAY),
        ]
    }
}

/// Compacts the small chunks before the sealed tail ending at `last`
/// ([`compaction`]). Each fix keeps its `Seq`, so this is not a change.
fn compact_before(tx: &mut impl Prepared, user: UserId, device: DeviceId, last: i64) -> StoreResult<()> {
    let rows = tx
        .query_prepared(
            "SELECT id, first_ms, last_ms, n FROM point_chunks WHERE user_id = $1 AND device_id = $2 \
             AND first_ms <= $3 ORDER BY first_ms DESC LIMIT $4",
            &[
                (&user.0, Type::INT8),
                (&device.0, Type::INT8),
                (&last, Type::INT8),
                (&(COMPACT_LOOKBACK as i64), Type::INT8),
            ],
        )
        .db()?;
    let newest_first = rows.iter().map(chunk_meta).collect::<StoreResult<Vec<_>>>()?;
    let Some(merged) = compaction(&newest_first, last) else {
        return Ok(());
    };
    let ids: Vec<i64> = merged.iter().map(|m| m.id).collect();
    let mut payloads = load_chunks(tx, user, &ids)?;
    let mut fixes = Vec::new();
    for id in ids {
        fixes.extend(decode_loaded(&mut payloads, id)?);
    }
    apply(tx, user, device, compact(&merged, fixes), false)
}

// ---------------------------------------------------------------- insert

/// What one round trip tells an insert about a device (see [`probe`]).
struct Probe {
    /// The chunks the batch's span selects ([`Batch::span`]), by first time.
    metas: Vec<ChunkMeta>,
    /// The payloads of those of them small enough to be a live tail, which
    /// the planner reads whenever a fix falls to them.
    payloads: HashMap<i64, Vec<u8>>,
    /// Fixes already decoded, by chunk (from the tail cache).
    decoded: HashMap<i64, Vec<StoredFix>>,
    /// The tombstones that may bury fixes from the span's start on, when
    /// asked for.
    tombstones: Vec<Tombstone>,
    /// The device's newest chunk, `None` when it has none.
    newest: Option<ChunkMeta>,
}

impl Probe {
    /// What a [`Tail`] that covers the batch says, without a round trip.
    fn of_tail(tail: Tail) -> Self {
        let Tail { newest, fixes, tombstones, .. } = tail;
        let decoded = match (newest, fixes) {
            (Some(m), Some(fixes)) => HashMap::from([(m.id, fixes)]),
            _ => HashMap::new(),
        };
        Probe { metas: newest.into_iter().collect(), payloads: HashMap::new(), decoded, tombstones, newest }
    }
}

/// Reads in one statement what an insert of fixes in `[lo, hi]` into
/// `device` needs before it plans: that the device is `user`'s (else
/// [`StoreError::NotFound`]), the chunks the span selects (the predecessor
/// of `lo` and every chunk starting inside), the payloads of the small ones
/// among them, the device's newest chunk, and, with `burying`, the
/// tombstones that may bury a fix from `lo` on (those over the span, and
/// the few reaching past it, so that the tail cache can keep them). Three
/// queries and a payload fetch used to be four round trips per device.
fn probe(
    tx: &mut impl Prepared,
    user: UserId,
    device: DeviceId,
    lo: i64,
    hi: i64,
    burying: bool,
) -> StoreResult<Probe> {
    let rows = tx
        .query_prepared(
            "SELECT 0::SMALLINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::BIGINT, NULL::INTEGER, NULL::BYTEA, \
                 NULL::INTEGER, NULL::INTEGER, NULL::INTEGER, NULL::INTEGER, NULL::BIGINT \
             FROM devices WHERE user_id = $1 AND id = $2 \
             UNION ALL \
             SELECT 1::SMALLINT, id, first_ms, last_ms, NULL, n, CASE WHEN n < $5 THEN data END, NULL, NULL, NULL, NULL, NULL \
             FROM point_chunks WHERE user_id = $1 AND device_id = $2 \
             AND first_ms >= coalesce((SELECT max(first_ms) FROM point_chunks \
                 WHERE user_id = $1 AND device_id = $2 AND first_ms <= $3), $3) \
             AND first_ms <= $4 \
             UNION ALL \
             (SELECT 3::SMALLINT, id, first_ms, last_ms, NULL, n, NULL, NULL, NULL, NULL, NULL, NULL \
             FROM point_chunks WHERE user_id = $1 AND device_id = $2 ORDER BY first_ms DESC LIMIT 1) \
             UNION ALL \
             SELECT 2::SMALLINT, device_id, from_ms, last_ms, hlc, NULL, NULL, west_e7, south_e7, east_e7, north_e7, thin_ms \
             FROM tombstones WHERE $6 AND user_id = $1 AND (device_id IS NULL OR device_id = $2) AND thin_ms IS NULL \
             AND (last_ms IS NULL OR last_ms >= $3)",
            &[
                (&user.0, Type::INT8),
                (&device.0, Type::INT8),
                (&lo, Type::INT8),
                (&hi, Type::INT8),
                (&(LIVE_TAIL as i32), Type::INT4),
                (&burying, Type::BOOL),
            ],
        )
        .db()?;
    let mut found = false;
    let mut probe = Probe {
        metas: Vec::new(),
        payloads: HashMap::new(),
        decoded: HashMap::new(),
        tombstones: Vec::new(),
        newest: None,
    };
    let meta = |row: &Row| -> StoreResult<ChunkMeta> {
        let id: i64 = row.get(1);
        let n: i32 = row.get(5);
        let n = usize::try_from(n).map_err(|_| StoreError::Corrupt(format!("point chunk {id} holds {n} fixes")))?;
        Ok(ChunkMeta { id, first: row.get(2), last: row.get(3), n })
    };
    for row in &rows {
        match row.get::<_, i16>(0) {
            0 => found = true,
            1 => {
                let m = meta(row)?;
                if let Some(data) = row.get::<_, Option<Vec<u8>>>(6) {
                    probe.payloads.insert(m.id, data);
                }
                probe.metas.push(m);
            }
            3 => probe.newest = Some(meta(row)?),
            _ => probe.tombstones.push(crate::deletes::tombstone_at(row, 1, 4, 7, 11)),
        }
    }
    if !found {
        return Err(no_device(user, device));
    }
    probe.metas.sort_by_key(|m| m.first);
    Ok(probe)
}

/// Inserts `fixes` of `device` inside the caller's transaction, which holds
/// `clock` (the `change_clock` lock); the change is stamped with the
/// provenance's stamp. `added` hears the time of every fix that was new or
/// replaced a stored one. As the SQLite store's `points::insert`; the
/// replication engine's way in.
#[allow(dead_code)]
pub(crate) fn insert(
    tx: &mut impl Prepared,
    clock: &mut ChangeClock,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
    added: &mut dyn FnMut(Timestamp),
    provenance: Provenance<'_>,
) -> StoreResult<WriteOutcome> {
    let mut deferred = Deferred::default();
    let outcome = insert_noting(tx, clock, &mut deferred, user, device, fixes, added, provenance, None, false, None)?;
    deferred.finish(tx, None)?;
    Ok(outcome)
}

/// A local insert: leaves out the fixes a tombstone buries unless
/// `restore`, counting them in [`WriteOutcome::suppressed`]. Its change is
/// stamped from `clock` and left in `changes` for the caller to write.
/// With `tails`, the device is planned from its cached [`Tail`] when that
/// covers the batch (and what the write leaves is cached in turn).
#[allow(clippy::too_many_arguments)]
fn insert_local(
    tx: &mut impl Prepared,
    clock: &mut ChangeClock,
    deferred: &mut Deferred,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
    added: &mut dyn FnMut(Timestamp),
    restore: bool,
    late: &Mutex<LatePoints>,
    tails: Option<&Mutex<Tails>>,
) -> StoreResult<WriteOutcome> {
    let tails = tails.filter(|_| !restore);
    insert_noting(tx, clock, deferred, user, device, fixes, added, Provenance::local(), Some(late), !restore, tails)
}

/// [`insert`], noting in `late` (when given) whether the device receives
/// late points and sparing it compaction meanwhile; with `burying`, the
/// fixes a tombstone buries are left out and counted as suppressed. The
/// change is stamped from `clock` and pushed to `changes`, which the caller
/// writes before it commits. `tails` (only with `burying`): see
/// [`insert_local`].
#[allow(clippy::too_many_arguments)]
fn insert_noting(
    tx: &mut impl Prepared,
    clock: &mut ChangeClock,
    deferred: &mut Deferred,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
    added: &mut dyn FnMut(Timestamp),
    provenance: Provenance<'_>,
    late: Option<&Mutex<LatePoints>>,
    burying: bool,
    tails: Option<&Mutex<Tails>>,
) -> StoreResult<WriteOutcome> {
    let Provenance { stamp, replace } = provenance;
    let (Some(lo), Some(hi)) = (fixes.iter().map(|f| f.time.0).min(), fixes.iter().map(|f| f.time.0).max()) else {
        check_device(tx, user, device)?;
        return Ok(WriteOutcome::default());
    };
    deferred.before_reading(tx, user, device)?;
    let tails = tails.filter(|_| burying);
    let (cached, claim) = match tails {
        Some(t) => {
            let (tail, claim) = t.lock().unwrap_or_else(PoisonError::into_inner).take(user, device, lo);
            (tail, Some(claim))
        }
        None => (None, None),
    };
    // The cached state goes back into the cache as it was when this write
    // changes nothing; `from` is how far back the tombstones are known.
    let (mut probe, unchanged, from) = match cached {
        Some(tail) => {
            deferred.guards.push(Guard { user, device, seq: tail.seq, newest: tail.newest });
            let from = tail.from;
            (Probe::of_tail(tail.clone()), Some(tail), from)
        }
        None => (probe(tx, user, device, lo, hi, burying)?, None, lo),
    };
    let keep_unchanged = |deferred: &mut Deferred, unchanged: Option<Tail>| {
        if let (Some(tail), Some(claim)) = (unchanged, claim) {
            deferred.tails.push(NewTail { user, device, tail, claim, inserted: false });
        }
    };
    let (fixes, suppressed) = if burying && !probe.tombstones.is_empty() {
        polo_store::chunks::unburied(&probe.tombstones, device, fixes)
    } else {
        (Cow::Borrowed(fixes), 0)
    };
    let batch = Batch::new(&fixes);
    let Some(span) = batch.span() else {
        keep_unchanged(deferred, unchanged);
        return Ok(WriteOutcome { suppressed, ..WriteOutcome::default() });
    };
    if suppressed > 0 && span != (lo, hi) {
        // Tombstones narrowed the batch: select the chunks for what is left.
        let narrowed = self::probe(tx, user, device, span.0, span.1, false)?;
        probe = Probe { tombstones: std::mem::take(&mut probe.tombstones), ..narrowed };
    }
    let Probe { metas, mut payloads, mut decoded, tombstones, newest } = probe;
    let assignment = batch.assign(metas);
    let to_read: Vec<i64> = assignment
        .chunks_to_read()
        .map(|m| m.id)
        .filter(|id| !payloads.contains_key(id) && !decoded.contains_key(id))
        .collect();
    payloads.extend(load_chunks(tx, user, &to_read)?);
    let merge = assignment.compare(
        &mut |meta| match decoded.remove(&meta.id) {
            Some(fixes) => Ok(fixes),
            None => decode_loaded(&mut payloads, meta.id),
        },
        replace,
    )?;
    let compact = match late {
        Some(late) => {
            let now = Instant::now();
            let mut late = late.lock().unwrap_or_else(PoisonError::into_inner);
            if merge.received_late() {
                late.record(user, device, now);
            }
            !late.recent(user, device, now)
        }
        None => true,
    };
    for time in merge.added_times() {
        added(time);
    }
    let (added, duplicates) = (merge.added(), merge.duplicates());
    let Some((first, last)) = merge.added_span() else {
        keep_unchanged(deferred, unchanged);
        return Ok(WriteOutcome { added, duplicates, suppressed, ..WriteOutcome::default() });
    };
    let change = ChangeRecord {
        kind: ChangeKind::PointsInserted,
        user,
        device: Some(device),
        first: Some(first),
        last: Some(last),
        count: added,
    };
    let stamped = stamp_change(clock, stamp, change);
    let seq = stamped.seq;
    deferred.changes.push(stamped);
    let writes = merge.writes(seq);
    let tail = claim.and_then(|claim| {
        next_tail(newest, &writes, compact, seq, tombstones, from).map(|(tail, new)| (tail, new, claim))
    });
    deferred.apply(tx, user, device, writes, compact, tail)?;
    Ok(WriteOutcome { added, duplicates, deleted: 0, suppressed, seq: Some(seq) })
}

/// One local insert in a transaction of its own; the added times reach
/// `added` only once it committed (a retried attempt reports nothing).
fn insert_committed(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
    added: &mut dyn FnMut(Timestamp),
    restore: bool,
) -> StoreResult<WriteOutcome> {
    if fixes.is_empty() {
        return Ok(WriteOutcome::default());
    }
    let (outcome, times) = store.write(|tx| {
        let mut times = Vec::new();
        let read = lock_clock(tx)?;
        let mut clock = read;
        let mut deferred = Deferred::default();
        let outcome = insert_local(
            tx,
            &mut clock,
            &mut deferred,
            user,
            device,
            fixes,
            &mut |t| times.push(t),
            restore,
            &store.late,
            None,
        )?;
        deferred.finish(tx, (clock != read).then_some(clock))?;
        Ok((outcome, times))
    })?;
    for time in times {
        added(time);
    }
    Ok(outcome)
}

pub(crate) fn insert_points(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
) -> StoreResult<WriteOutcome> {
    insert_committed(store, user, device, fixes, &mut |_| {}, false)
}

pub(crate) fn insert_points_reporting(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
    added: &mut dyn FnMut(Timestamp),
) -> StoreResult<WriteOutcome> {
    insert_committed(store, user, device, fixes, added, false)
}

pub(crate) fn restore_points(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
) -> StoreResult<WriteOutcome> {
    insert_committed(store, user, device, fixes, &mut |_| {}, true)
}

/// All groups in one transaction (live ingest commits many phones at once):
/// one clock lock, one statement for all their chunk writes, change rows
/// and the clock, one commit, asynchronous so that the lock goes at once,
/// then made durable before this returns (`durable`). Devices this store wrote last are
/// planned from the tail cache (`tails`), without a read.
///
/// A group that fails on its own (not transiently) gets its error and the
/// others go on: the attempt is rolled back and made again without it, as
/// if it had never been tried (so the log stays gap-free). This costs a
/// second attempt when a group fails, which is rare, instead of a savepoint
/// (two more round trips) around every group of every commit. Transient
/// failures and a full disk end the write instead: they are not the
/// group's fault, and the whole write is retried or reported. A tail cache
/// found behind the database likewise costs an attempt, made again without
/// the cache.
pub(crate) fn insert_point_groups(
    store: &PostgresStore,
    groups: &mut [PointGroup<'_>],
    added: &mut dyn FnMut(usize, Timestamp),
) -> StoreResult<()> {
    // The groups left out, with their errors.
    let mut failed: Vec<Option<StoreError>> = groups.iter().map(|_| None).collect();
    let mut cached = true;
    let (outcomes, reports, tails) = loop {
        // The group whose error ended this attempt, if one did, and whether a guard failed.
        let mut culprit = None;
        let mut stale = false;
        let tails = cached.then_some(&store.tails);
        let attempt = store.write_live(|tx, clock| {
            culprit = None;
            let mut deferred = Deferred::default();
            let result = attempt_groups(tx, clock, store, groups, &failed, tails, &mut deferred, &mut culprit);
            stale = deferred.stale;
            let (outcomes, reports) = result?;
            Ok((outcomes, reports, deferred.into_tails()))
        });
        match (attempt, culprit) {
            (Ok(done), _) => break done,
            (Err(e), _) if !stale && culprit.is_none() => {
                // The commit's message may have failed after the commit:
                // what the cache learnt from the attempts is not known.
                store.tails.lock().unwrap_or_else(PoisonError::into_inner).clear();
                return Err(e);
            }
            (Err(_), _) if stale => {
                store.tails.lock().unwrap_or_else(PoisonError::into_inner).stats.stale += 1;
                cached = false;
            }
            (Err(e), Some(index)) => failed[index] = Some(e),
            (Err(e), None) => return Err(e),
        }
    };
    store.tails.lock().unwrap_or_else(PoisonError::into_inner).keep_all(tails);
    for ((group, outcome), failure) in groups.iter_mut().zip(outcomes).zip(failed) {
        group.outcome = Some(match (outcome, failure) {
            (Some(outcome), _) => Ok(outcome),
            (None, Some(e)) => Err(e),
            (None, None) => unreachable!("a group is either written or failed"),
        });
    }
    for (index, time) in reports {
        added(index, time);
    }
    Ok(())
}

/// What an attempt of [`insert_point_groups`] wrote: each group's outcome
/// (`None`: left out of this attempt) and the times each group added.
type Written = (Vec<Option<WriteOutcome>>, Vec<(usize, Timestamp)>);

/// One attempt of [`insert_point_groups`] inside its transaction, which
/// holds `read`.
#[allow(clippy::too_many_arguments)]
fn attempt_groups(
    tx: &mut impl Prepared,
    read: ChangeClock,
    store: &PostgresStore,
    groups: &[PointGroup<'_>],
    failed: &[Option<StoreError>],
    tails: Option<&Mutex<Tails>>,
    deferred: &mut Deferred,
    culprit: &mut Option<usize>,
) -> StoreResult<Written> {
    let mut outcomes: Vec<Option<WriteOutcome>> = Vec::with_capacity(groups.len());
    let mut reports: Vec<(usize, Timestamp)> = Vec::new();
    let mut clock = read;
    for (index, group) in groups.iter().enumerate() {
        if failed[index].is_some() {
            outcomes.push(None);
            continue;
        }
        let result = insert_local(
            tx,
            &mut clock,
            deferred,
            group.user,
            group.device,
            group.fixes,
            &mut |t| reports.push((index, t)),
            false,
            &store.late,
            tails,
        );
        match result {
            Ok(outcome) => outcomes.push(Some(outcome)),
            Err(e) => {
                if !(e.is_retryable() || e.is_disk_full() || deferred.stale) {
                    *culprit = Some(index);
                }
                return Err(e);
            }
        }
    }
    deferred.finish(tx, (clock != read).then_some(clock))?;
    Ok((outcomes, reports))
}

// ---------------------------------------------------------------- reads

/// Pages of [`SCAN_PAGE`] chunks per device, each page on a briefly
/// borrowed connection, outside any transaction: `visit` may take its
/// time without holding a connection or a snapshot.
pub(crate) fn scan_points(
    store: &PostgresStore,
    query: &PointQuery,
    visit: &mut dyn FnMut(Point) -> ControlFlow<()>,
) -> StoreResult<()> {
    let user = query.user;
    let to = query.to.map(|t| t.0);
    let devices: Vec<i64> = match query.device {
        Some(d) => vec![d.0],
        None => store.read(|c| {
            let rows = c
                .query_prepared("SELECT id FROM devices WHERE user_id = $1 ORDER BY id", &[(&user.0, Type::INT8)])
                .db()?;
            Ok(rows.iter().map(|r| r.get(0)).collect())
        })?,
    };
    for device in devices {
        // `lo`: the earliest time not yet visited on this device.
        let mut lo = query.from.map_or(i64::MIN, |t| t.0);
        'device: loop {
            if to.is_some_and(|to| to <= lo) {
                break;
            }
            let page: Vec<(i64, i64, Vec<u8>)> = store.read(|c| {
                let rows = c
                    .query_prepared(
                        "SELECT id, last_ms, data FROM point_chunks WHERE user_id = $1 AND device_id = $2 \
                         AND first_ms >= coalesce((SELECT max(first_ms) FROM point_chunks \
                             WHERE user_id = $1 AND device_id = $2 AND first_ms <= $3), $3) \
                         AND last_ms >= $3 AND ($4::BIGINT IS NULL OR first_ms < $4) ORDER BY first_ms LIMIT $5",
                        &[
                            (&user.0, Type::INT8),
                            (&device, Type::INT8),
                            (&lo, Type::INT8),
                            (&to, Type::INT8),
                            (&SCAN_PAGE, Type::INT8),
                        ],
                    )
                    .db()?;
                Ok(rows.into_iter().map(|r| (r.get(0), r.get(1), r.get(2))).collect())
            })?;
            if page.is_empty() {
                break;
            }
            for (id, last, data) in page {
                let mut payloads = HashMap::from([(id, data)]);
                for sf in decode_loaded(&mut payloads, id)? {
                    let t = sf.fix.time.0;
                    if t < lo || to.is_some_and(|to| t >= to) {
                        continue;
                    }
                    if visit(Point { user, device: DeviceId(device), fix: sf.fix }).is_break() {
                        return Ok(());
                    }
                }
                match last.checked_add(1) {
                    Some(next) if next > lo => lo = next,
                    Some(_) => {
                        return Err(StoreError::Corrupt(format!("chunk bounds out of order on device {device}")));
                    }
                    None => break 'device,
                }
            }
        }
    }
    Ok(())
}

/// Decodes only the device's last chunk: chunks never overlap, so the one
/// starting last holds the latest fix.
pub(crate) fn last_point(store: &PostgresStore, user: UserId, device: DeviceId) -> StoreResult<Option<Point>> {
    let row = store.read(|c| {
        c.query_prepared_opt(
            "SELECT id, data FROM point_chunks WHERE user_id = $1 AND device_id = $2 ORDER BY first_ms DESC LIMIT 1",
            &[(&user.0, Type::INT8), (&device.0, Type::INT8)],
        )
        .db()
    })?;
    let Some(row) = row else { return Ok(None) };
    let id: i64 = row.get(0);
    let mut payloads = HashMap::from([(id, row.get(1))]);
    Ok(decode_loaded(&mut payloads, id)?.pop().map(|sf| Point { user, device, fix: sf.fix }))
}

pub(crate) fn count_points(store: &PostgresStore, user: UserId) -> StoreResult<u64> {
    store.read(|c| {
        let n: i64 = c
            .query_prepared_one(
                "SELECT coalesce(sum(n), 0)::BIGINT FROM point_chunks WHERE user_id = $1",
                &[(&user.0, Type::INT8)],
            )
            .db()?
            .get(0);
        Ok(n as u64)
    })
}

/// Points, chunks and payload bytes from the table; `file_bytes` is what
/// polo's own tables take (with their indexes and TOAST), not the whole
/// database, which other tenants may share.
pub(crate) fn storage_stats(store: &PostgresStore) -> StoreResult<StorageStats> {
    store.read(|c| {
        let row = c
            .query_one(
                "SELECT count(*), coalesce(sum(n), 0)::BIGINT, coalesce(sum(octet_length(data)), 0)::BIGINT \
                 FROM point_chunks",
                &[],
            )
            .db()?;
        let (chunks, points, chunk_bytes): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
        let tables: Vec<&str> = DISTRIBUTED_TABLES.iter().chain(REFERENCE_TABLES).copied().collect();
        let file_bytes: i64 = c
            .query_one(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0)::BIGINT FROM pg_class c \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = current_schema() AND c.relkind = 'r' AND c.relname = ANY($1)",
                &[&tables],
            )
            .db()?
            .get(0);
        Ok(StorageStats {
            points: points as u64,
            chunks: chunks as u64,
            chunk_bytes: chunk_bytes as u64,
            file_bytes: file_bytes as u64,
        })
    })
}
