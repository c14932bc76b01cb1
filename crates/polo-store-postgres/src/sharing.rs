//! (being built)
#![allow(unused, unused_parens)]

use std::ops::ControlFlow;

use polo_domain::{DeviceId, Fix, Interval, IntervalKind, Point, Seq, Timestamp, UserId};
use polo_store::*;

use crate::PostgresStore;

pub(crate) fn create_share(
    store: &PostgresStore,
    user: UserId,
    share: &NewShare,
    token_hash: &[u8; 32],
    created_by_token: Option<i64>,
) -> StoreResult<Share> {
    let _ = (store, user, share, token_hash, created_by_token);
    Err(StoreError::Backend("create_share: not built yet".into()))
}

pub(crate) fn share_by_hash(
    store: &PostgresStore,
    token_hash: &[u8; 32],
    now: Timestamp,
) -> StoreResult<Option<(Share, User)>> {
    let _ = (store, token_hash, now);
    Err(StoreError::Backend("share_by_hash: not built yet".into()))
}

pub(crate) fn list_shares(store: &PostgresStore, user: UserId) -> StoreResult<Vec<Share>> {
    let _ = (store, user);
    Err(StoreError::Backend("list_shares: not built yet".into()))
}

pub(crate) fn revoke_share(store: &PostgresStore, user: UserId, id: i64, at: Timestamp) -> StoreResult<bool> {
    let _ = (store, user, id, at);
    Err(StoreError::Backend("revoke_share: not built yet".into()))
}

pub(crate) fn grant_location(
    store: &PostgresStore,
    owner: UserId,
    viewer: UserId,
    created_by_token: Option<i64>,
) -> StoreResult<bool> {
    let _ = (store, owner, viewer, created_by_token);
    Err(StoreError::Backend("grant_location: not built yet".into()))
}

pub(crate) fn revoke_location_grant(store: &PostgresStore, owner: UserId, viewer: UserId) -> StoreResult<bool> {
    let _ = (store, owner, viewer);
    Err(StoreError::Backend("revoke_location_grant: not built yet".into()))
}

pub(crate) fn location_grants_by(store: &PostgresStore, owner: UserId) -> StoreResult<Vec<LocationGrant>> {
    let _ = (store, owner);
    Err(StoreError::Backend("location_grants_by: not built yet".into()))
}

pub(crate) fn location_grants_to(store: &PostgresStore, viewer: UserId) -> StoreResult<Vec<LocationGrant>> {
    let _ = (store, viewer);
    Err(StoreError::Backend("location_grants_to: not built yet".into()))
}

pub(crate) fn instance_settings(store: &PostgresStore) -> StoreResult<Vec<(String, String)>> {
    let _ = (store);
    Err(StoreError::Backend("instance_settings: not built yet".into()))
}

pub(crate) fn set_instance_setting(store: &PostgresStore, key: &str, value: Option<&str>) -> StoreResult<()> {
    let _ = (store, key, value);
    Err(StoreError::Backend("set_instance_setting: not built yet".into()))
}
