//! (being built)
#![allow(unused, unused_parens)]

use std::ops::ControlFlow;

use polo_domain::{DeviceId, Fix, Interval, IntervalKind, Point, Seq, Timestamp, UserId};
use polo_store::*;

use crate::PostgresStore;

pub(crate) fn insert_points(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
) -> StoreResult<WriteOutcome> {
    let _ = (store, user, device, fixes);
    Err(StoreError::Backend("insert_points: not built yet".into()))
}

pub(crate) fn insert_points_reporting(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
    added: &mut dyn FnMut(Timestamp),
) -> StoreResult<WriteOutcome> {
    let _ = (store, user, device, fixes, added);
    Err(StoreError::Backend("insert_points_reporting: not built yet".into()))
}

pub(crate) fn insert_point_groups(
    store: &PostgresStore,
    groups: &mut [PointGroup<'_>],
    added: &mut dyn FnMut(usize, Timestamp),
) -> StoreResult<()> {
    let _ = (store, groups, added);
    Err(StoreError::Backend("insert_point_groups: not built yet".into()))
}

pub(crate) fn scan_points(
    store: &PostgresStore,
    query: &PointQuery,
    visit: &mut dyn FnMut(Point) -> ControlFlow<()>,
) -> StoreResult<()> {
    let _ = (store, query, visit);
    Err(StoreError::Backend("scan_points: not built yet".into()))
}

pub(crate) fn last_point(store: &PostgresStore, user: UserId, device: DeviceId) -> StoreResult<Option<Point>> {
    let _ = (store, user, device);
    Err(StoreError::Backend("last_point: not built yet".into()))
}

pub(crate) fn count_points(store: &PostgresStore, user: UserId) -> StoreResult<u64> {
    let _ = (store, user);
    Err(StoreError::Backend("count_points: not built yet".into()))
}

pub(crate) fn delete_selection(store: &PostgresStore, selection: &PointSelection) -> StoreResult<WriteOutcome> {
    let _ = (store, selection);
    Err(StoreError::Backend("delete_selection: not built yet".into()))
}

pub(crate) fn restore_points(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    fixes: &[Fix],
) -> StoreResult<WriteOutcome> {
    let _ = (store, user, device, fixes);
    Err(StoreError::Backend("restore_points: not built yet".into()))
}

pub(crate) fn tombstones(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    from: Timestamp,
    last: Timestamp,
) -> StoreResult<Vec<Tombstone>> {
    let _ = (store, user, device, from, last);
    Err(StoreError::Backend("tombstones: not built yet".into()))
}

pub(crate) fn insert_intervals(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    intervals: &[Interval],
) -> StoreResult<WriteOutcome> {
    let _ = (store, user, device, intervals);
    Err(StoreError::Backend("insert_intervals: not built yet".into()))
}

pub(crate) fn restore_intervals(
    store: &PostgresStore,
    user: UserId,
    device: DeviceId,
    intervals: &[Interval],
) -> StoreResult<WriteOutcome> {
    let _ = (store, user, device, intervals);
    Err(StoreError::Backend("restore_intervals: not built yet".into()))
}

pub(crate) fn intervals(
    store: &PostgresStore,
    user: UserId,
    kind: Option<IntervalKind>,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> StoreResult<Vec<StoredInterval>> {
    let _ = (store, user, kind, from, to);
    Err(StoreError::Backend("intervals: not built yet".into()))
}

pub(crate) fn storage_stats(store: &PostgresStore) -> StoreResult<StorageStats> {
    let _ = (store);
    Err(StoreError::Backend("storage_stats: not built yet".into()))
}
