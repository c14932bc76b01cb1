//! Derived rows (`polo_store::derived`) in the `derived` table, and the
//! cursors of the computations that maintain them.

use polo_domain::{Seq, UserId};
use polo_store::{
    ChangeKind, DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope, StoreError, StoreResult,
};
use rusqlite::{Connection, OptionalExtension, Row, Transaction, params};

use crate::{Db, Stamp, check_device, log_change_stamped};

fn row(kind: DerivedKind, r: &Row<'_>) -> rusqlite::Result<DerivedRow> {
    Ok(DerivedRow { kind, scope: DerivedScope::from_code(r.get(0)?), key: r.get(1)?, value: r.get(2)? })
}

pub(crate) fn range(c: &Connection, user: UserId, range: &DerivedRange) -> StoreResult<Vec<DerivedRow>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT device_id, key, value FROM derived \
             WHERE user_id = ?1 AND kind = ?2 AND device_id = ?3 AND key >= ?4 AND key < ?5 ORDER BY key",
        )
        .db()?;
    let rows = stmt
        .query_map(params![user.0, range.kind.0, range.scope.code(), range.from, range.to], |r| row(range.kind, r))
        .db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

pub(crate) fn before(
    c: &Connection,
    user: UserId,
    kind: DerivedKind,
    scope: DerivedScope,
    before: i64,
    limit: usize,
) -> StoreResult<Vec<DerivedRow>> {
    let mut stmt = c
        .prepare_cached(
            "SELECT device_id, key, value FROM derived \
             WHERE user_id = ?1 AND kind = ?2 AND device_id = ?3 AND key < ?4 ORDER BY key DESC LIMIT ?5",
        )
        .db()?;
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let rows = stmt.query_map(params![user.0, kind.0, scope.code(), before, limit], |r| row(kind, r)).db()?;
    rows.collect::<rusqlite::Result<Vec<_>>>().db()
}

fn check_scope(tx: &Transaction<'_>, user: UserId, scope: DerivedScope) -> StoreResult<()> {
    match scope {
        DerivedScope::User => {
            let found = tx
                .prepare_cached("SELECT 1 FROM users WHERE id = ?1")
                .db()?
                .query_row([user.0], |_| Ok(()))
                .optional()
                .db()?;
            found.ok_or_else(|| StoreError::NotFound(format!("user {user}")))
        }
        DerivedScope::Device(device) => check_device(tx, user, device),
    }
}

/// Applies `batch`; an edit appends a change stamped with `stamp` and keeps
/// the batch in `edit_log` for replication.
pub(crate) fn write(
    tx: &Transaction<'_>,
    user: UserId,
    batch: &DerivedBatch,
    edit: bool,
    stamp: Stamp,
) -> StoreResult<Option<Seq>> {
    let mut checked: Vec<DerivedScope> = Vec::new();
    let scopes = batch.delete.iter().map(|d| d.scope).chain(batch.put.iter().map(|p| p.scope));
    for scope in scopes {
        if !checked.contains(&scope) {
            check_scope(tx, user, scope)?;
            checked.push(scope);
        }
    }
    {
        let mut delete = tx
            .prepare_cached(
                "DELETE FROM derived WHERE user_id = ?1 AND kind = ?2 AND device_id = ?3 AND key >= ?4 AND key < ?5",
            )
            .db()?;
        for range in &batch.delete {
            delete.execute(params![user.0, range.kind.0, range.scope.code(), range.from, range.to]).db()?;
        }
        let mut put = tx
            .prepare_cached(
                "INSERT INTO derived (user_id, kind, device_id, key, value) VALUES (?1, ?2, ?3, ?4, ?5) \
                 ON CONFLICT (user_id, kind, device_id, key) DO UPDATE SET value = excluded.value",
            )
            .db()?;
        for row in &batch.put {
            put.execute(params![user.0, row.kind.0, row.scope.code(), row.key, row.value]).db()?;
        }
    }
    if !edit || batch.is_empty() {
        return Ok(None);
    }
    let seq = log_change_stamped(tx, stamp, ChangeKind::Edit, user, None, None, None, batch.put.len() as u64)?;
    tx.prepare_cached("INSERT INTO edit_log (seq, user_id, batch) VALUES (?1, ?2, ?3)")
        .db()?
        .execute(params![seq.0 as i64, user.0, batch.encode()])
        .db()?;
    Ok(Some(seq))
}

pub(crate) fn cursor(c: &Connection, name: &str) -> StoreResult<Seq> {
    let seq: Option<i64> = c
        .prepare_cached("SELECT seq FROM derived_cursors WHERE name = ?1")
        .db()?
        .query_row([name], |r| r.get(0))
        .optional()
        .db()?;
    Ok(Seq(seq.map_or(0, |s| s as u64)))
}

pub(crate) fn set_cursor(tx: &Transaction<'_>, name: &str, seq: Seq) -> StoreResult<()> {
    tx.prepare_cached(
        "INSERT INTO derived_cursors (name, seq) VALUES (?1, ?2) ON CONFLICT (name) DO UPDATE SET seq = excluded.seq",
    )
    .db()?
    .execute(params![name, i64::try_from(seq.0).unwrap_or(i64::MAX)])
    .db()?;
    Ok(())
}
