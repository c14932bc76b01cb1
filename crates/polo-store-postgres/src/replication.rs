//! (being built)
#![allow(unused, unused_parens)]

use std::ops::ControlFlow;

use polo_domain::{DeviceId, Fix, Interval, IntervalKind, Point, Seq, Timestamp, UserId};
use polo_store::*;

use crate::PostgresStore;

pub(crate) fn changes_since(store: &PostgresStore, after: Seq, limit: usize) -> StoreResult<Vec<Change>> {
    let _ = (store, after, limit);
    Err(StoreError::Backend("changes_since: not built yet".into()))
}

pub(crate) fn last_seq(store: &PostgresStore) -> StoreResult<Seq> {
    let _ = (store);
    Err(StoreError::Backend("last_seq: not built yet".into()))
}

pub(crate) fn epoch(store: &PostgresStore) -> StoreResult<String> {
    let _ = (store);
    Err(StoreError::Backend("epoch: not built yet".into()))
}

pub(crate) fn instance_id(store: &PostgresStore) -> StoreResult<String> {
    let _ = (store);
    Err(StoreError::Backend("instance_id: not built yet".into()))
}

pub(crate) fn epochs(store: &PostgresStore) -> StoreResult<Vec<EpochSpan>> {
    let _ = (store);
    Err(StoreError::Backend("epochs: not built yet".into()))
}

pub(crate) fn replication_feed(
    store: &PostgresStore,
    after: Seq,
    max_weight: usize,
    filter: &FeedFilter,
) -> StoreResult<FeedPage> {
    let _ = (store, after, max_weight, filter);
    Err(StoreError::Backend("replication_feed: not built yet".into()))
}

pub(crate) fn replication_apply(
    store: &PostgresStore,
    name: &str,
    entries: &[FeedEntry],
    checkpoint: &Checkpoint,
) -> StoreResult<ApplyOutcome> {
    let _ = (store, name, entries, checkpoint);
    Err(StoreError::Backend("replication_apply: not built yet".into()))
}

pub(crate) fn replication_checkpoint(store: &PostgresStore, name: &str) -> StoreResult<Option<Checkpoint>> {
    let _ = (store, name);
    Err(StoreError::Backend("replication_checkpoint: not built yet".into()))
}

pub(crate) fn replication_checkpoints(store: &PostgresStore) -> StoreResult<Vec<(String, Checkpoint)>> {
    let _ = (store);
    Err(StoreError::Backend("replication_checkpoints: not built yet".into()))
}

pub(crate) fn create_replication_token(
    store: &PostgresStore,
    label: &str,
    token_hash: &[u8; 32],
) -> StoreResult<ReplicationToken> {
    let _ = (store, label, token_hash);
    Err(StoreError::Backend("create_replication_token: not built yet".into()))
}

pub(crate) fn replication_token_by_hash(
    store: &PostgresStore,
    token_hash: &[u8; 32],
) -> StoreResult<Option<ReplicationToken>> {
    let _ = (store, token_hash);
    Err(StoreError::Backend("replication_token_by_hash: not built yet".into()))
}

pub(crate) fn list_replication_tokens(store: &PostgresStore) -> StoreResult<Vec<ReplicationToken>> {
    let _ = (store);
    Err(StoreError::Backend("list_replication_tokens: not built yet".into()))
}

pub(crate) fn revoke_replication_token(store: &PostgresStore, id: i64) -> StoreResult<bool> {
    let _ = (store, id);
    Err(StoreError::Backend("revoke_replication_token: not built yet".into()))
}
