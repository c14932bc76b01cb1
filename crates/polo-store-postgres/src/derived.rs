//! (being built)
#![allow(unused, unused_parens)]

use std::ops::ControlFlow;

use polo_domain::{DeviceId, Fix, Interval, IntervalKind, Point, Seq, Timestamp, UserId};
use polo_store::*;

use crate::PostgresStore;

pub(crate) fn derived_range(store: &PostgresStore, user: UserId, range: &DerivedRange) -> StoreResult<Vec<DerivedRow>> {
    let _ = (store, user, range);
    Err(StoreError::Backend("derived_range: not built yet".into()))
}

pub(crate) fn derived_before(
    store: &PostgresStore,
    user: UserId,
    kind: DerivedKind,
    scope: DerivedScope,
    before: i64,
    limit: usize,
) -> StoreResult<Vec<DerivedRow>> {
    let _ = (store, user, kind, scope, before, limit);
    Err(StoreError::Backend("derived_before: not built yet".into()))
}

pub(crate) fn derived_write(
    store: &PostgresStore,
    user: UserId,
    batch: &DerivedBatch,
    edit: bool,
) -> StoreResult<Option<Seq>> {
    let _ = (store, user, batch, edit);
    Err(StoreError::Backend("derived_write: not built yet".into()))
}

pub(crate) fn derived_cursor(store: &PostgresStore, name: &str) -> StoreResult<Seq> {
    let _ = (store, name);
    Err(StoreError::Backend("derived_cursor: not built yet".into()))
}

pub(crate) fn set_derived_cursor(store: &PostgresStore, name: &str, seq: Seq) -> StoreResult<()> {
    let _ = (store, name, seq);
    Err(StoreError::Backend("set_derived_cursor: not built yet".into()))
}
