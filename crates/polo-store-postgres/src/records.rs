//! Roles, instance records and the audit log (see [`polo_store::records`]).
//!
//! `records` and `audit_log` are small instance-wide tables (Citus
//! reference tables, like `instance_settings`). Keys are compared and
//! ordered in byte order (`COLLATE "C"`), as the embedded store does,
//! whatever the database's collation; a prefix query uses `starts_with`,
//! not `LIKE`, so no character of a key is a wildcard.

use polo_domain::{Timestamp, UserId};
use polo_store::{AuditEntry, AuditQuery, Record, RecordQuery, RecordWrite, Role, StoreError, StoreResult};
use postgres::Row;

use crate::PostgresStore;
use crate::auth::user_exists;
use crate::error::Db;

fn role_from(name: Option<String>) -> StoreResult<Option<Role>> {
    name.map(|n| Role::from_name(&n).ok_or_else(|| StoreError::Corrupt(format!("unknown role {n:?}")))).transpose()
}

pub(crate) fn set_user_role(store: &PostgresStore, user: UserId, role: Option<Role>) -> StoreResult<()> {
    store.write(|tx| {
        let n = tx.execute("UPDATE users SET role = $2 WHERE id = $1", &[&user.0, &role.map(Role::name)]).db()?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {}", user.0)));
        }
        Ok(())
    })
}

pub(crate) fn set_admin(store: &PostgresStore, user: UserId, admin: bool) -> StoreResult<()> {
    store.write(|tx| {
        let n = tx.execute("UPDATE users SET is_admin = $2 WHERE id = $1", &[&user.0, &admin]).db()?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {}", user.0)));
        }
        Ok(())
    })
}

pub(crate) fn user_roles(store: &PostgresStore) -> StoreResult<Vec<(UserId, Role)>> {
    let rows: Vec<(i64, String)> = store.read(|c| {
        let rows = c.query("SELECT id, role FROM users WHERE role IS NOT NULL ORDER BY id", &[]).db()?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    })?;
    rows.into_iter()
        .map(|(id, name)| Ok((UserId(id), role_from(Some(name))?.unwrap_or(Role::HealthAuthority))))
        .collect()
}

pub(crate) fn user_role(store: &PostgresStore, user: UserId) -> StoreResult<Option<Role>> {
    let name: Option<String> = store
        .read(|c| Ok(c.query_opt("SELECT role FROM users WHERE id = $1", &[&user.0]).db()?.and_then(|r| r.get(0))))?;
    role_from(name)
}

pub(crate) fn write_records(store: &PostgresStore, writes: &[RecordWrite]) -> StoreResult<()> {
    store.write(|tx| {
        for write in writes {
            match write {
                RecordWrite::Put(r) | RecordWrite::Insert(r) => {
                    if let Some(user) = r.user
                        && !user_exists(&mut **tx, user)?
                    {
                        return Err(StoreError::NotFound(format!("user {}", user.0)));
                    }
                    let conflict = if matches!(write, RecordWrite::Put(_)) {
                        "DO UPDATE SET user_id = excluded.user_id, at_ms = excluded.at_ms, body = excluded.body"
                    } else {
                        "DO NOTHING"
                    };
                    tx.execute(
                        &format!(
                            "INSERT INTO records (kind, key, user_id, at_ms, body) VALUES ($1, $2, $3, $4, $5) \
                             ON CONFLICT (kind, key) {conflict}"
                        ),
                        &[&r.kind, &r.key, &r.user.map(|u| u.0), &r.at.0, &r.body],
                    )
                    .db()?;
                }
                RecordWrite::Delete { kind, key } => {
                    tx.execute("DELETE FROM records WHERE kind = $1 AND key = $2", &[kind, key]).db()?;
                }
                RecordWrite::DeletePrefix { kind, prefix } => {
                    tx.execute("DELETE FROM records WHERE kind = $1 AND starts_with(key, $2)", &[kind, prefix]).db()?;
                }
                RecordWrite::DeleteBefore { kind, before } => {
                    tx.execute("DELETE FROM records WHERE kind = $1 AND at_ms < $2", &[kind, &before.0]).db()?;
                }
                RecordWrite::Audit(e) => {
                    tx.execute(
                        "INSERT INTO audit_log (at_ms, actor, action, subject, detail) VALUES ($1, $2, $3, $4, $5)",
                        &[&e.at.0, &e.actor, &e.action, &e.subject.map(|u| u.0), &e.detail],
                    )
                    .db()?;
                }
                RecordWrite::AuditBefore(before) => {
                    tx.execute("DELETE FROM audit_log WHERE at_ms < $1", &[&before.0]).db()?;
                }
                RecordWrite::AuditActionBefore { prefix, before } => {
                    tx.execute(
                        "DELETE FROM audit_log WHERE at_ms < $1 AND left(action, length($2::TEXT)) = $2::TEXT",
                        &[&before.0, prefix],
                    )
                    .db()?;
                }
            }
        }
        Ok(())
    })
}

fn record_from_row(r: &Row) -> Record {
    Record {
        kind: r.get(0),
        key: r.get(1),
        user: r.get::<_, Option<i64>>(2).map(UserId),
        at: Timestamp(r.get(3)),
        body: r.get(4),
    }
}

pub(crate) fn record(store: &PostgresStore, kind: &str, key: &str) -> StoreResult<Option<Record>> {
    store.read(|c| {
        let row = c
            .query_opt(
                "SELECT kind, key, user_id, at_ms, body FROM records WHERE kind = $1 AND key = $2",
                &[&kind, &key],
            )
            .db()?;
        Ok(row.as_ref().map(record_from_row))
    })
}

pub(crate) fn take_record(store: &PostgresStore, kind: &str, key: &str) -> StoreResult<Option<Record>> {
    store.write(|tx| {
        let row = tx
            .query_opt(
                "DELETE FROM records WHERE kind = $1 AND key = $2 RETURNING kind, key, user_id, at_ms, body",
                &[&kind, &key],
            )
            .db()?;
        Ok(row.as_ref().map(record_from_row))
    })
}

pub(crate) fn records(store: &PostgresStore, query: &RecordQuery) -> StoreResult<Vec<Record>> {
    let limit = query.limit.map(|l| i64::try_from(l).unwrap_or(i64::MAX));
    store.read(|c| {
        let rows = c
            .query(
                "SELECT kind, key, user_id, at_ms, body FROM records \
                 WHERE kind = $1 AND starts_with(key, $2) AND ($3::BIGINT IS NULL OR user_id = $3) \
                 ORDER BY key COLLATE \"C\" LIMIT $4",
                &[&query.kind, &query.prefix, &query.user.map(|u| u.0), &limit],
            )
            .db()?;
        Ok(rows.iter().map(record_from_row).collect())
    })
}

pub(crate) fn audit_log(store: &PostgresStore, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>> {
    let limit = i64::try_from(query.limit).unwrap_or(i64::MAX);
    store.read(|c| {
        let rows = c
            .query(
                "SELECT id, at_ms, actor, action, subject, detail FROM audit_log \
                 WHERE ($1::BIGINT IS NULL OR subject = $1) AND ($2::BIGINT IS NULL OR id < $2) \
                 AND ($4::TEXT IS NULL OR left(action, length($4::TEXT)) = $4::TEXT) \
                 AND ($5::TEXT IS NULL OR actor = $5::TEXT) \
                 AND ($6::BIGINT IS NULL OR at_ms >= $6) AND ($7::BIGINT IS NULL OR at_ms < $7) \
                 ORDER BY id DESC LIMIT $3",
                &[
                    &query.subject.map(|u| u.0),
                    &query.before_id,
                    &limit,
                    &query.action_prefix,
                    &query.actor,
                    &query.since.map(|t| t.0),
                    &query.until.map(|t| t.0),
                ],
            )
            .db()?;
        Ok(rows
            .iter()
            .map(|r| AuditEntry {
                id: r.get(0),
                at: Timestamp(r.get(1)),
                actor: r.get(2),
                action: r.get(3),
                subject: r.get::<_, Option<i64>>(4).map(UserId),
                detail: r.get(5),
            })
            .collect())
    })
}
