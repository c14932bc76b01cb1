//! Credentials: passwords, device tokens and web sessions.
//!
//! Tokens and sessions are looked up by the SHA-256 of their secret, so a
//! copy of the database never yields a usable credential. They are local to
//! this instance and not replicated data: nothing here writes the change log
//! except [`set_password`], which changes the user.
//!
//! `token_by_hash` runs on every token-authenticated request, so marking a
//! token used must not queue behind a long import on the writer: it writes
//! at most once per [`TOKEN_TOUCH_INTERVAL_MS`] per token, and only when the
//! writer is free at that moment (`try_lock`); a skipped touch is retried on
//! a later request.

use std::sync::TryLockError;

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{ChangeKind, Device, Session, StoreError, StoreResult, TOKEN_TOUCH_INTERVAL_MS, Token, User};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::{Db, SqliteStore, check_device, log_change, now, user_from_row};

const TOKEN_COLUMNS: &str = "t.id, t.user_id, t.device_id, d.name, t.label, t.created_ms, t.last_used_ms";
const TOKEN_FROM: &str = "tokens t JOIN devices d ON d.user_id = t.user_id AND d.id = t.device_id";

fn token_from_row(r: &Row<'_>) -> rusqlite::Result<Token> {
    let user = UserId(r.get(1)?);
    Ok(Token {
        id: r.get(0)?,
        user,
        device: Device { id: DeviceId(r.get(2)?), user, name: r.get(3)? },
        label: r.get(4)?,
        created: Timestamp(r.get(5)?),
        last_used: r.get::<_, Option<i64>>(6)?.map(Timestamp),
    })
}

fn user_of(conn: &Connection, id: UserId) -> StoreResult<Option<User>> {
    conn.prepare_cached(&format!("SELECT {} FROM users WHERE id = ?1", crate::USER_COLUMNS))
        .db()?
        .query_row([id.0], user_from_row)
        .optional()
        .db()
}

pub(crate) fn user_by_id(store: &SqliteStore, id: UserId) -> StoreResult<Option<User>> {
    store.read(|c| user_of(c, id))
}

pub(crate) fn set_password(store: &SqliteStore, user: UserId, password_hash: &str) -> StoreResult<()> {
    store.write(|tx| {
        let n = tx.execute("UPDATE users SET password_hash = ?2 WHERE id = ?1", params![user.0, password_hash]).db()?;
        if n == 0 {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        log_change(tx, ChangeKind::User, user, None, None, None, 1)?;
        Ok(())
    })
}

pub(crate) fn create_token(
    store: &SqliteStore,
    user: UserId,
    device: DeviceId,
    label: &str,
    token_hash: &[u8; 32],
) -> StoreResult<Token> {
    store.write(|tx| {
        check_device(tx, user, device)?;
        let taken =
            tx.query_row("SELECT 1 FROM tokens WHERE token_hash = ?1", [&token_hash[..]], |_| Ok(())).optional().db()?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists("token".into()));
        }
        let id: i64 = tx.query_row("SELECT coalesce(max(id), 0) + 1 FROM tokens", [], |r| r.get(0)).db()?;
        let created = now();
        tx.execute(
            "INSERT INTO tokens (user_id, id, device_id, label, token_hash, created_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
            params![user.0, id, device.0, label, &token_hash[..], created.0],
        )
        .db()?;
        let name: String = tx
            .query_row("SELECT name FROM devices WHERE user_id = ?1 AND id = ?2", [user.0, device.0], |r| r.get(0))
            .db()?;
        Ok(Token {
            id,
            user,
            device: Device { id: device, user, name },
            label: label.to_owned(),
            created,
            last_used: None,
        })
    })
}

pub(crate) fn token_by_hash(store: &SqliteStore, token_hash: &[u8; 32]) -> StoreResult<Option<(Token, User)>> {
    let found = store.read(|c| {
        let token = c
            .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM {TOKEN_FROM} WHERE t.token_hash = ?1"))
            .db()?
            .query_row([&token_hash[..]], token_from_row)
            .optional()
            .db()?;
        let Some(token) = token else { return Ok(None) };
        Ok(user_of(c, token.user)?.map(|user| (token, user)))
    })?;
    let Some((mut token, user)) = found else { return Ok(None) };
    let at = now();
    if token.last_used.is_none_or(|t| at.0.saturating_sub(t.0) >= TOKEN_TOUCH_INTERVAL_MS) {
        let mut conn = match store.writer.try_lock() {
            Ok(conn) => conn,
            Err(TryLockError::Poisoned(p)) => p.into_inner(),
            Err(TryLockError::WouldBlock) => return Ok(Some((token, user))),
        };
        let touched = conn.transaction_with_behavior(TransactionBehavior::Immediate).and_then(|tx| {
            tx.execute(
                "UPDATE tokens SET last_used_ms = ?3 WHERE user_id = ?1 AND id = ?2",
                params![token.user.0, token.id, at.0],
            )?;
            tx.commit()
        });
        // Like a busy writer, a failed touch (a full disk) must not turn
        // away the token: reads still work, and ingest reports its own error.
        match store.health.observe(touched.map_err(|e| store.health.sqlite_failure(&e))) {
            Ok(()) => token.last_used = Some(at),
            Err(e) => tracing::warn!(error = %e, token = token.id, "cannot note the token's last use"),
        }
    }
    Ok(Some((token, user)))
}

pub(crate) fn list_tokens(store: &SqliteStore, user: UserId) -> StoreResult<Vec<Token>> {
    store.read(|c| {
        let mut stmt = c
            .prepare_cached(&format!("SELECT {TOKEN_COLUMNS} FROM {TOKEN_FROM} WHERE t.user_id = ?1 ORDER BY t.id"))
            .db()?;
        stmt.query_map([user.0], token_from_row).db()?.collect::<rusqlite::Result<Vec<_>>>().db()
    })
}

pub(crate) fn revoke_token(store: &SqliteStore, user: UserId, id: i64) -> StoreResult<bool> {
    store.write(|tx| Ok(tx.execute("DELETE FROM tokens WHERE user_id = ?1 AND id = ?2", [user.0, id]).db()? > 0))
}

pub(crate) fn create_session(
    store: &SqliteStore,
    session_hash: &[u8; 32],
    user: UserId,
    csrf_token: &str,
    expires: Timestamp,
) -> StoreResult<Session> {
    store.write(|tx| {
        if user_of(tx, user)?.is_none() {
            return Err(StoreError::NotFound(format!("user {user}")));
        }
        let taken = tx
            .query_row("SELECT 1 FROM sessions WHERE session_hash = ?1", [&session_hash[..]], |_| Ok(()))
            .optional()
            .db()?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists("session".into()));
        }
        let created = now();
        tx.execute(
            "INSERT INTO sessions (user_id, session_hash, csrf_token, created_ms, expires_ms) VALUES (?1, ?2, ?3, ?4, ?5)",
            params![user.0, &session_hash[..], csrf_token, created.0, expires.0],
        )
        .db()?;
        Ok(Session { user, csrf_token: csrf_token.to_owned(), created, expires })
    })
}

pub(crate) fn session_by_hash(
    store: &SqliteStore,
    session_hash: &[u8; 32],
    at: Timestamp,
) -> StoreResult<Option<(Session, User)>> {
    store.read(|c| {
        let session = c
            .prepare_cached(
                "SELECT user_id, csrf_token, created_ms, expires_ms FROM sessions \
                 WHERE session_hash = ?1 AND expires_ms > ?2",
            )
            .db()?
            .query_row(params![&session_hash[..], at.0], |r| {
                Ok(Session {
                    user: UserId(r.get(0)?),
                    csrf_token: r.get(1)?,
                    created: Timestamp(r.get(2)?),
                    expires: Timestamp(r.get(3)?),
                })
            })
            .optional()
            .db()?;
        let Some(session) = session else { return Ok(None) };
        Ok(user_of(c, session.user)?.map(|user| (session, user)))
    })
}

pub(crate) fn delete_session(store: &SqliteStore, session_hash: &[u8; 32]) -> StoreResult<bool> {
    store.write(|tx| Ok(tx.execute("DELETE FROM sessions WHERE session_hash = ?1", [&session_hash[..]]).db()? > 0))
}

pub(crate) fn delete_user_sessions(store: &SqliteStore, user: UserId, keep: Option<&[u8; 32]>) -> StoreResult<u64> {
    store.write(|tx| {
        let n = tx
            .execute(
                "DELETE FROM sessions WHERE user_id = ?1 AND (?2 IS NULL OR session_hash <> ?2)",
                params![user.0, keep.map(|k| &k[..])],
            )
            .db()?;
        Ok(n as u64)
    })
}

pub(crate) fn delete_expired_sessions(store: &SqliteStore, at: Timestamp) -> StoreResult<u64> {
    store.write(|tx| Ok(tx.execute("DELETE FROM sessions WHERE expires_ms <= ?1", [at.0]).db()? as u64))
}
