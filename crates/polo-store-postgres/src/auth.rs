//! (being built)
#![allow(unused, unused_parens)]

use std::ops::ControlFlow;

use polo_domain::{DeviceId, Fix, Interval, IntervalKind, Point, Seq, Timestamp, UserId};
use polo_store::*;

use crate::PostgresStore;

pub(crate) fn create_token(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    label: &str,
    token_hash: &[u8; 32],
    grant: TokenGrant,
) -> StoreResult<Token> {
    let _ = (store, user, device, label, token_hash, grant);
    Err(StoreError::Backend("create_token: not built yet".into()))
}

pub(crate) fn token_by_hash(store: &PostgresStore, token_hash: &[u8; 32]) -> StoreResult<Option<(Token, User)>> {
    let _ = (store, token_hash);
    Err(StoreError::Backend("token_by_hash: not built yet".into()))
}

pub(crate) fn list_tokens(store: &PostgresStore, user: UserId) -> StoreResult<Vec<Token>> {
    let _ = (store, user);
    Err(StoreError::Backend("list_tokens: not built yet".into()))
}

pub(crate) fn revoke_token(store: &PostgresStore, user: UserId, id: i64) -> StoreResult<bool> {
    let _ = (store, user, id);
    Err(StoreError::Backend("revoke_token: not built yet".into()))
}

pub(crate) fn create_session(
    store: &PostgresStore,
    session_hash: &[u8; 32],
    user: UserId,
    csrf_token: &str,
    expires: Timestamp,
) -> StoreResult<Session> {
    let _ = (store, session_hash, user, csrf_token, expires);
    Err(StoreError::Backend("create_session: not built yet".into()))
}

pub(crate) fn session_by_hash(
    store: &PostgresStore,
    session_hash: &[u8; 32],
    now: Timestamp,
) -> StoreResult<Option<(Session, User)>> {
    let _ = (store, session_hash, now);
    Err(StoreError::Backend("session_by_hash: not built yet".into()))
}

pub(crate) fn delete_session(store: &PostgresStore, session_hash: &[u8; 32]) -> StoreResult<bool> {
    let _ = (store, session_hash);
    Err(StoreError::Backend("delete_session: not built yet".into()))
}

pub(crate) fn delete_user_sessions(store: &PostgresStore, user: UserId, keep: Option<&[u8; 32]>) -> StoreResult<u64> {
    let _ = (store, user, keep);
    Err(StoreError::Backend("delete_user_sessions: not built yet".into()))
}

pub(crate) fn delete_expired_sessions(store: &PostgresStore, now: Timestamp) -> StoreResult<u64> {
    let _ = (store, now);
    Err(StoreError::Backend("delete_expired_sessions: not built yet".into()))
}
