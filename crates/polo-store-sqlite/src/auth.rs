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
use polo_store::{
    Device, Session, StoreError, StoreResult, TOKEN_TOUCH_INTERVAL_MS, Token, TokenGrant, TokenScopes, User,
};
use rusqlite::{Connection, OptionalExtension, Row, TransactionBehavior, params};

use crate::{Db, SqliteStore, check_device, now, user_from_row};

const TOKEN_COLUMNS: &str =
    "t.id, t.user_id, t.device_id, d.name, t.label, t.created_ms, t.last_used_ms, t.scopes, t.created_by";
const TOKEN_FROM: &str = "tokens t JOIN devices d ON d.user_id = t.user_id AND d.id = t.device_id";

fn token_from_row(r: &Row<'_>) -> rusqlite::Result<Token> {
    let user = UserId(r.get(1)?);
    let scopes: String = r.get(7)?;
    let scopes = TokenScopes::parse(&scopes)
        .map_err(|e| rusqlite::Error::FromSqlConversionFailure(7, rusqlite::types::Type::Text, Box::new(e)))?;
    Ok(Token {
        id: r.get(0)?,
        user,
        device: Device { id: DeviceId(r.get(2)?), user, name: r.get(3)? },
        label: r.get(4)?,
        created: Timestamp(r.get(5)?),
        last_used: r.get::<_, Option<i64>>(6)?.map(Timestamp),
        scopes,
        created_by: r.get(8)?,
    })
}

/// Fails with `NotFound` unless `token` is a token of `user`: a maker must
/// still exist when something is made in its name.
pub(crate) fn check_maker(conn: &Connection, user: UserId, token: Option<i64>) -> StoreResult<()> {
    let Some(token) = token else { return Ok(()) };
    let found = conn
        .query_row("SELECT 1 FROM tokens WHERE user_id = ?1 AND id = ?2", [user.0, token], |_| Ok(()))
        .optional()
        .db()?;
    found.ok_or_else(|| StoreError::NotFound(format!("token {token} of user {user}")))
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
        crate::log_account_change(tx, user, None)?;
        Ok(())
    })
}

pub(crate) fn create_token(
    store: &SqliteStore,
    user: UserId,
    device: DeviceId,
    label: &str,
    token_hash: &[u8; 32],
    grant: TokenGrant,
) -> StoreResult<Token> {
    store.write(|tx| {
        check_device(tx, user, device)?;
        check_maker(tx, user, grant.created_by)?;
        let taken = tx
            .query_row("SELECT 1 FROM tokens WHERE token_hash = ?1", [&token_hash[..]], |_| Ok(()))
            .optional()
            .db()?;
        if taken.is_some() {
            return Err(StoreError::AlreadyExists("token".into()));
        }
        // Never reused: what a revoked token made must not pass to a later token with its id.
        let id: i64 = tx
            .query_row(
                "SELECT max(coalesce((SELECT max(id) FROM tokens), 0), \
                 coalesce((SELECT value FROM meta WHERE key = 'last_token_id'), 0)) + 1",
                [],
                |r| r.get(0),
            )
            .db()?;
        tx.execute("INSERT OR REPLACE INTO meta (key, value) VALUES ('last_token_id', ?1)", [id]).db()?;
        let created = now();
        tx.execute(
            "INSERT INTO tokens (user_id, id, device_id, label, token_hash, created_ms, scopes, created_by) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            params![
                user.0,
                id,
                device.0,
                label,
                &token_hash[..],
                created.0,
                grant.scopes.to_string(),
                grant.created_by
            ],
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
            scopes: grant.scopes,
            created_by: grant.created_by,
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

/// The token and every token it made, transitively: what a revocation takes.
const DOOMED_TOKENS: &str = "WITH RECURSIVE doomed (id) AS ( \
        SELECT id FROM tokens WHERE user_id = ?1 AND id = ?2 \
        UNION SELECT t.id FROM tokens t JOIN doomed ON t.created_by = doomed.id WHERE t.user_id = ?1)";

pub(crate) fn revoke_token(store: &SqliteStore, user: UserId, id: i64) -> StoreResult<bool> {
    store.write(|tx| {
        tx.execute(
            &format!(
                "{DOOMED_TOKENS} UPDATE shares SET revoked_ms = ?3 WHERE user_id = ?1 AND revoked_ms IS NULL \
                 AND created_by_token IN (SELECT id FROM doomed)"
            ),
            params![user.0, id, now().0],
        )
        .db()?;
        tx.execute(
            &format!(
                "{DOOMED_TOKENS} DELETE FROM location_grants WHERE user_id = ?1 \
                 AND created_by_token IN (SELECT id FROM doomed)"
            ),
            params![user.0, id],
        )
        .db()?;
        let deleted = tx
            .execute(
                &format!("{DOOMED_TOKENS} DELETE FROM tokens WHERE user_id = ?1 AND id IN (SELECT id FROM doomed)"),
                params![user.0, id],
            )
            .db()?;
        Ok(deleted > 0)
    })
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
