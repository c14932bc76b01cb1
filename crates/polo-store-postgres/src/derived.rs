//! Derived rows (`polo_store::derived`) in the `derived` table, and the
//! cursors of the computations that maintain them.
//!
//! Recomputed rows change no change log: writing them does not take the
//! clock, so the timeline engine's many recomputations never wait for the
//! ingest writers. A user's edit (`edit = true`) is a change like any
//! other: it takes the clock first, logs an `Edit` change and keeps the
//! batch in `edit_log` (encoded by [`DerivedBatch::encode`]) for the
//! replication feed. Rows are keyed `(user_id, kind, device_id, key)`, the
//! scope's code standing in `device_id` (0 for the user as a whole), so a
//! user's rows shard with the user under Citus.

use polo_domain::{Seq, UserId};
use polo_store::clock::{ChangeClock, Stamp};
use polo_store::{
    ChangeKind, DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope, StoreError, StoreResult,
};
use postgres::Row;

use crate::statements::Tx;

use crate::error::Db;
use crate::{ChangeRecord, PostgresStore, check_device, log_change_with, with_clock};

fn derived_row(kind: DerivedKind, r: &Row) -> DerivedRow {
    DerivedRow { kind, scope: DerivedScope::from_code(r.get(0)), key: r.get(1), value: r.get(2) }
}

pub(crate) fn derived_range(store: &PostgresStore, user: UserId, range: &DerivedRange) -> StoreResult<Vec<DerivedRow>> {
    store.read(|c| {
        let rows = c
            .query(
                "SELECT device_id, key, value FROM derived \
                 WHERE user_id = $1 AND kind = $2 AND device_id = $3 AND key >= $4 AND key < $5 ORDER BY key",
                &[&user.0, &i16_kind(range.kind), &range.scope.code(), &range.from, &range.to],
            )
            .db()?;
        Ok(rows.iter().map(|r| derived_row(range.kind, r)).collect())
    })
}

pub(crate) fn derived_before(
    store: &PostgresStore,
    user: UserId,
    kind: DerivedKind,
    scope: DerivedScope,
    before: i64,
    limit: usize,
) -> StoreResult<Vec<DerivedRow>> {
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    store.read(|c| {
        let rows = c
            .query(
                "SELECT device_id, key, value FROM derived \
                 WHERE user_id = $1 AND kind = $2 AND device_id = $3 AND key < $4 ORDER BY key DESC LIMIT $5",
                &[&user.0, &i16_kind(kind), &scope.code(), &before, &limit],
            )
            .db()?;
        Ok(rows.iter().map(|r| derived_row(kind, r)).collect())
    })
}

/// The `SMALLINT` a kind is stored as (kinds are `u16`; the bits are kept).
fn i16_kind(kind: DerivedKind) -> i16 {
    kind.0 as i16
}

pub(crate) fn derived_write(
    store: &PostgresStore,
    user: UserId,
    batch: &DerivedBatch,
    edit: bool,
) -> StoreResult<Option<Seq>> {
    store.write(|tx| {
        if edit && !batch.is_empty() {
            with_clock(tx, |tx, clock| write(tx, user, batch, Some((clock, Stamp::Local))))
        } else {
            write(tx, user, batch, None)
        }
    })
}

fn check_scope(tx: &mut Tx<'_>, user: UserId, scope: DerivedScope) -> StoreResult<()> {
    match scope {
        DerivedScope::User => {
            let found = tx.query_opt("SELECT 1 FROM users WHERE id = $1", &[&user.0]).db()?;
            found.map(|_| ()).ok_or_else(|| StoreError::NotFound(format!("user {user}")))
        }
        DerivedScope::Device(device) => check_device(tx, user, device),
    }
}

/// Applies `batch` in `tx`. An edit (`as_edit`: the clock the caller took
/// and the stamp) appends an `Edit` change and keeps the batch in
/// `edit_log`; an empty edit changes nothing. Replication applies edits
/// through here.
pub(crate) fn write(
    tx: &mut Tx<'_>,
    user: UserId,
    batch: &DerivedBatch,
    as_edit: Option<(&mut ChangeClock, Stamp)>,
) -> StoreResult<Option<Seq>> {
    let mut checked: Vec<DerivedScope> = Vec::new();
    let scopes = batch.delete.iter().map(|d| d.scope).chain(batch.put.iter().map(|p| p.scope));
    for scope in scopes {
        if !checked.contains(&scope) {
            check_scope(tx, user, scope)?;
            checked.push(scope);
        }
    }
    if !batch.delete.is_empty() {
        let delete = tx
            .prepare(
                "DELETE FROM derived WHERE user_id = $1 AND kind = $2 AND device_id = $3 AND key >= $4 AND key < $5",
            )
            .db()?;
        for range in &batch.delete {
            tx.execute(&delete, &[&user.0, &i16_kind(range.kind), &range.scope.code(), &range.from, &range.to]).db()?;
        }
    }
    if !batch.put.is_empty() {
        let put = tx
            .prepare(
                "INSERT INTO derived (user_id, kind, device_id, key, value) VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (user_id, kind, device_id, key) DO UPDATE SET value = excluded.value",
            )
            .db()?;
        for row in &batch.put {
            tx.execute(&put, &[&user.0, &i16_kind(row.kind), &row.scope.code(), &row.key, &row.value]).db()?;
        }
    }
    let Some((clock, stamp)) = as_edit else { return Ok(None) };
    if batch.is_empty() {
        return Ok(None);
    }
    let change = ChangeRecord {
        kind: ChangeKind::Edit,
        user,
        device: None,
        first: None,
        last: None,
        count: batch.put.len() as u64,
    };
    let seq = log_change_with(tx, clock, stamp, &change)?;
    tx.execute(
        "INSERT INTO edit_log (user_id, seq, batch) VALUES ($1, $2, $3)",
        &[&user.0, &(seq.0 as i64), &batch.encode()],
    )
    .db()?;
    Ok(Some(seq))
}

pub(crate) fn derived_cursor(store: &PostgresStore, name: &str) -> StoreResult<Seq> {
    store.read(|c| {
        let seq: Option<i64> =
            c.query_opt("SELECT seq FROM derived_cursors WHERE name = $1", &[&name]).db()?.map(|r| r.get(0));
        Ok(Seq(seq.map_or(0, |s| s as u64)))
    })
}

pub(crate) fn set_derived_cursor(store: &PostgresStore, name: &str, seq: Seq) -> StoreResult<()> {
    let seq = i64::try_from(seq.0).unwrap_or(i64::MAX);
    store.write(|tx| {
        tx.execute(
            "INSERT INTO derived_cursors (name, seq) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
            &[&name, &seq],
        )
        .db()?;
        Ok(())
    })
}
