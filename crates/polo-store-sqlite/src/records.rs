//! Roles, instance records and the audit log (see [`polo_store::records`]).
//!
//! Records live in one `records` table keyed by (kind, key), in byte order
//! (SQLite's `BINARY` collation); a prefix query compares the key's first
//! characters rather than using `LIKE`, which ignores ASCII case here.

use polo_domain::{Timestamp, UserId};
use polo_store::{AuditEntry, AuditQuery, Record, RecordQuery, RecordWrite, Role, StoreError, StoreResult};
use rusqlite::{OptionalExtension, Row, Transaction, params};

use crate::{Db, SqliteStore};

fn role_from(name: Option<String>) -> StoreResult<Option<Role>> {
    name.map(|n| Role::from_name(&n).ok_or_else(|| StoreError::Corrupt(format!("unknown role {n:?}")))).transpose()
}

pub(crate) fn set_user_role(store: &SqliteStore, user: UserId, role: Option<Role>) -> StoreResult<()> {
    store.write(|tx| {
        let n = tx.execute("UPDATE users SET role = ?2 WHERE id = ?1", params![user.0, role.map(Role::name)]).db()?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {}", user.0)));
        }
        Ok(())
    })
}

pub(crate) fn set_admin(store: &SqliteStore, user: UserId, admin: bool) -> StoreResult<()> {
    store.write(|tx| {
        let n = tx.execute("UPDATE users SET is_admin = ?2 WHERE id = ?1", params![user.0, admin]).db()?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {}", user.0)));
        }
        Ok(())
    })
}

pub(crate) fn user_roles(store: &SqliteStore) -> StoreResult<Vec<(UserId, Role)>> {
    let rows: Vec<(i64, String)> = store.read(|c| {
        let mut stmt = c.prepare_cached("SELECT id, role FROM users WHERE role IS NOT NULL ORDER BY id").db()?;
        stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?))).db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })?;
    rows.into_iter()
        .map(|(id, name)| Ok((UserId(id), role_from(Some(name))?.unwrap_or(Role::HealthAuthority))))
        .collect()
}

pub(crate) fn user_role(store: &SqliteStore, user: UserId) -> StoreResult<Option<Role>> {
    let name: Option<Option<String>> = store.read(|c| {
        c.prepare_cached("SELECT role FROM users WHERE id = ?1").db()?.query_row([user.0], |r| r.get(0)).optional().db()
    })?;
    role_from(name.flatten())
}

fn check_user(tx: &Transaction<'_>, user: Option<UserId>) -> StoreResult<()> {
    let Some(user) = user else { return Ok(()) };
    let known = tx.prepare_cached("SELECT 1 FROM users WHERE id = ?1").db()?.exists([user.0]).db()?;
    if known { Ok(()) } else { Err(StoreError::NotFound(format!("user {}", user.0))) }
}

pub(crate) fn write_records(store: &SqliteStore, writes: &[RecordWrite]) -> StoreResult<()> {
    store.write(|tx| {
        for write in writes {
            match write {
                RecordWrite::Put(r) | RecordWrite::Insert(r) => {
                    check_user(tx, r.user)?;
                    let conflict = if matches!(write, RecordWrite::Put(_)) {
                        "DO UPDATE SET user_id = excluded.user_id, at_ms = excluded.at_ms, body = excluded.body"
                    } else {
                        "DO NOTHING"
                    };
                    tx.execute(
                        &format!(
                            "INSERT INTO records (kind, key, user_id, at_ms, body) VALUES (?1, ?2, ?3, ?4, ?5) \
                             ON CONFLICT (kind, key) {conflict}"
                        ),
                        params![r.kind, r.key, r.user.map(|u| u.0), r.at.0, r.body],
                    )
                    .db()?;
                }
                RecordWrite::Delete { kind, key } => {
                    tx.execute("DELETE FROM records WHERE kind = ?1 AND key = ?2", params![kind, key]).db()?;
                }
                RecordWrite::DeletePrefix { kind, prefix } => {
                    tx.execute(
                        "DELETE FROM records WHERE kind = ?1 AND substr(key, 1, length(?2)) = ?2",
                        params![kind, prefix],
                    )
                    .db()?;
                }
                RecordWrite::DeleteBefore { kind, before } => {
                    tx.execute("DELETE FROM records WHERE kind = ?1 AND at_ms < ?2", params![kind, before.0]).db()?;
                }
                RecordWrite::Audit(e) => {
                    tx.execute(
                        "INSERT INTO audit_log (at_ms, actor, action, subject, detail) VALUES (?1, ?2, ?3, ?4, ?5)",
                        params![e.at.0, e.actor, e.action, e.subject.map(|u| u.0), e.detail],
                    )
                    .db()?;
                }
                RecordWrite::AuditBefore(before) => {
                    tx.execute("DELETE FROM audit_log WHERE at_ms < ?1", [before.0]).db()?;
                }
                RecordWrite::AuditActionBefore { prefix, before } => {
                    tx.execute(
                        "DELETE FROM audit_log WHERE at_ms < ?1 AND substr(action, 1, length(?2)) = ?2",
                        params![before.0, prefix],
                    )
                    .db()?;
                }
            }
        }
        Ok(())
    })
}

fn record_from_row(r: &Row<'_>) -> rusqlite::Result<Record> {
    Ok(Record {
        kind: r.get(0)?,
        key: r.get(1)?,
        user: r.get::<_, Option<i64>>(2)?.map(UserId),
        at: Timestamp(r.get(3)?),
        body: r.get(4)?,
    })
}

pub(crate) fn record(store: &SqliteStore, kind: &str, key: &str) -> StoreResult<Option<Record>> {
    store.read(|c| {
        c.prepare_cached("SELECT kind, key, user_id, at_ms, body FROM records WHERE kind = ?1 AND key = ?2")
            .db()?
            .query_row([kind, key], record_from_row)
            .optional()
            .db()
    })
}

pub(crate) fn take_record(store: &SqliteStore, kind: &str, key: &str) -> StoreResult<Option<Record>> {
    store.write(|tx| {
        tx.prepare_cached("DELETE FROM records WHERE kind = ?1 AND key = ?2 RETURNING kind, key, user_id, at_ms, body")
            .db()?
            .query_row([kind, key], record_from_row)
            .optional()
            .db()
    })
}

pub(crate) fn records(store: &SqliteStore, query: &RecordQuery) -> StoreResult<Vec<Record>> {
    let limit = query.limit.map_or(-1, |l| i64::try_from(l).unwrap_or(i64::MAX));
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(
                "SELECT kind, key, user_id, at_ms, body FROM records \
                 WHERE kind = ?1 AND substr(key, 1, length(?2)) = ?2 AND (?3 IS NULL OR user_id = ?3) \
                 ORDER BY key LIMIT ?4",
            )
            .db()?;
        stmt.query_map(params![query.kind, query.prefix, query.user.map(|u| u.0), limit], record_from_row)
            .db()?
            .collect::<rusqlite::Result<Vec<_>>>()
            .db()
    })
}

pub(crate) fn audit_log(store: &SqliteStore, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(
                "SELECT id, at_ms, actor, action, subject, detail FROM audit_log \
                 WHERE (?1 IS NULL OR subject = ?1) AND (?2 IS NULL OR id < ?2) \
                 AND (?4 IS NULL OR substr(action, 1, length(?4)) = ?4) AND (?5 IS NULL OR actor = ?5) \
                 AND (?6 IS NULL OR at_ms >= ?6) AND (?7 IS NULL OR at_ms < ?7) \
                 ORDER BY id DESC LIMIT ?3",
            )
            .db()?;
        let filters = params![
            query.subject.map(|u| u.0),
            query.before_id,
            limit,
            query.action_prefix,
            query.actor,
            query.since.map(|t| t.0),
            query.until.map(|t| t.0)
        ];
        stmt.query_map(filters, |r| {
            Ok(AuditEntry {
                id: r.get(0)?,
                at: Timestamp(r.get(1)?),
                actor: r.get(2)?,
                action: r.get(3)?,
                subject: r.get::<_, Option<i64>>(4)?.map(UserId),
                detail: r.get(5)?,
            })
        })
        .db()?
        .collect::<rusqlite::Result<Vec<_>>>()
        .db()
    })
}
