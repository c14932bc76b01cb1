//! The backend conformance suite.
//!
//! Callers only ever see the [`Store`] trait, so every backend must behave
//! identically down to duplicate counting and change-log entries; this module
//! is that contract, executable. Each behaviour is one `pub fn` taking a
//! fresh, empty store; [`conformance_tests!`](crate::conformance_tests)
//! expands them into one `#[test]` each in a backend's test file, and
//! [`run_all`] runs them in a loop.
//!
//! ```ignore
//! polo_store::conformance_tests!(|| {
//!     let dir = tempfile::tempdir().unwrap();
//!     (MyStore::open(dir.path().join("db")).unwrap(), dir) // the dir outlives the store
//! });
//! ```
//!
//! Randomised tests use a fixed-seed SplitMix64, so a failure reproduces.

// Test code: panicking on unexpected results is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::collections::BTreeMap;
use std::ops::ControlFlow;

pub mod accounts;
pub mod deletes;
pub mod replication;
pub mod replication_props;

use polo_domain::{Coord, DeviceId, Extras, Fix, Interval, IntervalKind, Motion, Point, Seq, SourceFormat, Timestamp};

use crate::codec::CHUNK_CAPACITY;
pub use crate::conformance_groups::{
    a_group_keeps_an_admin, deleting_a_user_leaves_their_groups_with_an_admin, group_zones_belong_to_the_group,
    groups_are_created_listed_renamed_and_deleted, invitations_admit_as_many_as_they_say_until_they_expire,
};
pub use crate::conformance_nodes::{
    failure_counters_count_forget_and_clear, import_jobs_round_trip_and_finish_once,
    leases_are_taken_renewed_released_and_expire, live_messages_are_local_only_or_never_echoed,
    stale_import_jobs_are_failed_but_not_the_spared_holders,
};
pub use crate::conformance_records::{
    admin_role_is_set_and_cleared, audit_log_appends_pages_and_forgets, audit_log_filters,
    deleting_a_user_deletes_their_records, records_are_taken_once, records_put_insert_query_and_delete,
    roles_are_set_listed_and_cleared,
};
pub use crate::conformance_sharing::{
    instance_settings_set_and_clear, location_grants_both_ways, shares_create_lookup_revoke,
    shares_expire_and_are_scoped, tokens_keep_scopes_and_revoke_what_they_made,
};
pub use crate::conformance_zones::{
    deleting_a_user_deletes_their_zones_events_and_webhooks,
    the_outbox_offers_each_subscriptions_oldest_pending_delivery,
    updating_a_webhook_replaces_its_body_and_may_drop_its_pending_deliveries,
    zone_states_and_events_commit_together_and_events_once, zones_are_created_listed_updated_and_deleted,
};
use crate::{ChangeKind, PointGroup, PointQuery, Store, StoreError, TokenGrant, UserId, WriteOutcome};
pub use accounts::{deleted_ids_are_never_reused, deleting_a_user_leaves_nothing_of_it_and_touches_no_one_else};
pub use deletes::{
    deleted_points_stay_deleted_until_restored, deletes_take_the_intervals_inside_them,
    selections_delete_inside_their_area, thinning_keeps_one_point_per_slot, undo_records_are_taken_once_by_their_owner,
};

/// Something a test can get a store from: a boxed store, or a store paired
/// with a guard (e.g. its temporary directory) that must outlive it.
pub trait Fixture {
    /// The store under test.
    fn store(&self) -> &dyn Store;
}

impl Fixture for Box<dyn Store> {
    fn store(&self) -> &dyn Store {
        &**self
    }
}

impl<S: Store, G> Fixture for (S, G) {
    fn store(&self) -> &dyn Store {
        &self.0
    }
}

/// What a factory returns: a [`Fixture`], or `Option` of one for a backend
/// whose server may be missing (`None` skips the test; the factory says so).
pub trait MaybeFixture {
    /// The fixture.
    type Fixture: Fixture;
    /// The fixture, or `None` to skip.
    fn into_fixture(self) -> Option<Self::Fixture>;
}

impl MaybeFixture for Box<dyn Store> {
    type Fixture = Self;
    fn into_fixture(self) -> Option<Self> {
        Some(self)
    }
}

impl<S: Store, G> MaybeFixture for (S, G) {
    type Fixture = Self;
    fn into_fixture(self) -> Option<Self> {
        Some(self)
    }
}

impl<F: Fixture> MaybeFixture for Option<F> {
    type Fixture = F;
    fn into_fixture(self) -> Option<F> {
        self
    }
}

/// Expands every conformance test into a `#[test]` calling `$make()` for a
/// fresh store (a [`MaybeFixture`]: `None` skips the test).
#[macro_export]
macro_rules! conformance_tests {
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                if let Some(fixture) = $crate::conformance::MaybeFixture::into_fixture(($make)()) {
                    $crate::conformance::$name($crate::conformance::Fixture::store(&fixture));
                }
            }
        )*
    };
    ($make:expr) => {
        $crate::conformance_tests!(@each $make;
            users_are_unique, devices_are_idempotent, round_trip_is_exact, duplicates_keep_the_stored_point,
            unsorted_batches_and_repeated_times, model_test_random_batches, live_appends_one_at_a_time,
            scan_filters_and_order, scan_stops_on_break, users_are_isolated, delete_points_range,
            intervals_insert_dedupe_overlap, change_log, storage_stats_and_ping, users_by_id_and_passwords,
            tokens_create_lookup_revoke, sessions_expire_and_delete, last_point_reads_the_latest_fix,
            device_encryption_keys, insert_reports_added_times, point_groups_succeed_and_fail_alone, device_cards,
            derived_rows_ranges_and_batches,
            derived_edits_and_cursors, epoch_is_stable_across_writes,
            a_restored_copy_is_a_new_instance_that_remembers_where_it_forked);
        // Deleting (conformance/deletes.rs).
        $crate::conformance_tests!(@each $make;
            deleted_points_stay_deleted_until_restored, selections_delete_inside_their_area,
            thinning_keeps_one_point_per_slot, deletes_take_the_intervals_inside_them,
            undo_records_are_taken_once_by_their_owner);
        // Deleting accounts (conformance/accounts.rs).
        $crate::conformance_tests!(@each $make;
            deleting_a_user_leaves_nothing_of_it_and_touches_no_one_else, deleted_ids_are_never_reused);
        // Sharing (conformance_sharing.rs).
        $crate::conformance_tests!(@each $make;
            shares_create_lookup_revoke, shares_expire_and_are_scoped, location_grants_both_ways,
            instance_settings_set_and_clear, tokens_keep_scopes_and_revoke_what_they_made);
        // Several nodes on one store (conformance_nodes.rs).
        $crate::conformance_tests!(@each $make;
            leases_are_taken_renewed_released_and_expire, import_jobs_round_trip_and_finish_once,
            stale_import_jobs_are_failed_but_not_the_spared_holders, failure_counters_count_forget_and_clear,
            live_messages_are_local_only_or_never_echoed);
        // Roles, records and the audit log (conformance_records.rs).
        $crate::conformance_tests!(@each $make;
            roles_are_set_listed_and_cleared, records_put_insert_query_and_delete, records_are_taken_once,
            audit_log_appends_pages_and_forgets, deleting_a_user_deletes_their_records, audit_log_filters,
            admin_role_is_set_and_cleared);
        // Zones, events and webhooks (conformance_zones.rs).
        $crate::conformance_tests!(@each $make;
            zones_are_created_listed_updated_and_deleted, zone_states_and_events_commit_together_and_events_once,
            the_outbox_offers_each_subscriptions_oldest_pending_delivery,
            updating_a_webhook_replaces_its_body_and_may_drop_its_pending_deliveries,
            deleting_a_user_deletes_their_zones_events_and_webhooks);
        // Groups, invitations and group zones (conformance_groups.rs).
        $crate::conformance_tests!(@each $make;
            groups_are_created_listed_renamed_and_deleted, a_group_keeps_an_admin,
            invitations_admit_as_many_as_they_say_until_they_expire, group_zones_belong_to_the_group,
            deleting_a_user_leaves_their_groups_with_an_admin);
    };
}

/// One conformance test.
pub type Test = fn(&dyn Store);

/// Every test, by name.
pub const ALL: &[(&str, Test)] = &[
    ("users_are_unique", users_are_unique),
    ("devices_are_idempotent", devices_are_idempotent),
    ("round_trip_is_exact", round_trip_is_exact),
    ("duplicates_keep_the_stored_point", duplicates_keep_the_stored_point),
    ("unsorted_batches_and_repeated_times", unsorted_batches_and_repeated_times),
    ("model_test_random_batches", model_test_random_batches),
    ("live_appends_one_at_a_time", live_appends_one_at_a_time),
    ("scan_filters_and_order", scan_filters_and_order),
    ("scan_stops_on_break", scan_stops_on_break),
    ("users_are_isolated", users_are_isolated),
    ("delete_points_range", delete_points_range),
    ("intervals_insert_dedupe_overlap", intervals_insert_dedupe_overlap),
    ("change_log", change_log),
    ("storage_stats_and_ping", storage_stats_and_ping),
    ("users_by_id_and_passwords", users_by_id_and_passwords),
    ("tokens_create_lookup_revoke", tokens_create_lookup_revoke),
    ("device_encryption_keys", device_encryption_keys),
    ("insert_reports_added_times", insert_reports_added_times),
    ("point_groups_succeed_and_fail_alone", point_groups_succeed_and_fail_alone),
    ("device_cards", device_cards),
    ("sessions_expire_and_delete", sessions_expire_and_delete),
    ("last_point_reads_the_latest_fix", last_point_reads_the_latest_fix),
    ("derived_rows_ranges_and_batches", derived_rows_ranges_and_batches),
    ("derived_edits_and_cursors", derived_edits_and_cursors),
    ("epoch_is_stable_across_writes", epoch_is_stable_across_writes),
    (
        "a_restored_copy_is_a_new_instance_that_remembers_where_it_forked",
        a_restored_copy_is_a_new_instance_that_remembers_where_it_forked,
    ),
    ("deleted_points_stay_deleted_until_restored", deleted_points_stay_deleted_until_restored),
    ("selections_delete_inside_their_area", selections_delete_inside_their_area),
    ("thinning_keeps_one_point_per_slot", thinning_keeps_one_point_per_slot),
    ("deletes_take_the_intervals_inside_them", deletes_take_the_intervals_inside_them),
    ("undo_records_are_taken_once_by_their_owner", undo_records_are_taken_once_by_their_owner),
    (
        "deleting_a_user_leaves_nothing_of_it_and_touches_no_one_else",
        deleting_a_user_leaves_nothing_of_it_and_touches_no_one_else,
    ),
    ("deleted_ids_are_never_reused", deleted_ids_are_never_reused),
];

/// Runs every test, each on a fresh store from `make`.
pub fn run_all(make: &dyn Fn() -> Box<dyn Store>) {
    for (name, test) in ALL
        .iter()
        .chain(crate::conformance_sharing::ALL)
        .chain(crate::conformance_nodes::ALL)
        .chain(crate::conformance_records::ALL)
        .chain(crate::conformance_zones::ALL)
        .chain(crate::conformance_groups::ALL)
    {
        eprintln!("conformance: {name}");
        let store = make();
        test(&*store);
    }
}

// ---------------------------------------------------------------- helpers

/// SplitMix64: tiny, seeded, good enough to shuffle test data.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        lo + self.below((hi - lo).max(1) as u64) as i64
    }
    fn shuffle<T>(&mut self, v: &mut [T]) {
        for i in (1..v.len()).rev() {
            v.swap(i, self.below(i as u64 + 1) as usize);
        }
    }
}

const T0: i64 = 1_600_000_000_000;

/// A fix with every field set from `i` (extras on every 5th).
fn rich_fix(t: i64, i: u64) -> Fix {
    let k = i as i64;
    Fix {
        time: Timestamp(t),
        utc_offset_minutes: if i.is_multiple_of(4) { None } else { Some(((k % 5) * 60 - 120) as i16) },
        zone_assumed: i.is_multiple_of(9),
        coord: Coord { lat_e7: 480_000_000 + (k * 37 % 20_000) as i32, lon_e7: -1_100_000 - (k * 53 % 30_000) as i32 },
        altitude_cm: (!i.is_multiple_of(3)).then_some((k * 7 % 5000) as i32 - 100),
        horizontal_accuracy_cm: Some((k % 40) as u32 * 100 + 300),
        vertical_accuracy_cm: i.is_multiple_of(2).then_some(250),
        speed_cm_s: (i % 6 != 1).then_some((k * 13 % 3000) as u32),
        course_centideg: (i % 6 != 1).then_some((k * 101 % 36_000) as u16),
        battery_percent: Some(100 - (k / 10 % 100) as u8),
        motion: Motion::from_code((i % 10) as u8),
        source: SourceFormat::ALL[(i % 14) as usize],
        extras: i.is_multiple_of(5).then(|| {
            Extras::from_json_object(format!("{{\"i\":{i},\"wifi\":\"{}\"}}", "ab".repeat((i % 50) as usize)))
        }),
    }
}

fn plain_fix(t: i64) -> Fix {
    Fix::new(Timestamp(t), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Api)
}

fn scan(store: &dyn Store, q: &PointQuery) -> Vec<Point> {
    let mut out = Vec::new();
    store
        .scan_points(q, &mut |p| {
            out.push(p);
            ControlFlow::Continue(())
        })
        .unwrap();
    out
}

fn setup(store: &dyn Store, name: &str) -> (UserId, DeviceId) {
    let user = store.create_user(name, "$argon2id$x", false).unwrap();
    let device = store.ensure_device(user.id, "phone").unwrap();
    (user.id, device.id)
}

fn query(user: UserId, device: Option<DeviceId>, from: Option<i64>, to: Option<i64>) -> PointQuery {
    PointQuery { user, device, from: from.map(Timestamp), to: to.map(Timestamp) }
}

// ---------------------------------------------------------------- tests

/// Users: unique names, lookup, listing by id.
pub fn users_are_unique(store: &dyn Store) {
    assert!(store.list_users().unwrap().is_empty());
    let a = store.create_user("alice", "hash-a", true).unwrap();
    let b = store.create_user("bob", "hash-b", false).unwrap();
    assert_ne!(a.id, b.id);
    assert_eq!((a.name.as_str(), a.password_hash.as_str(), a.is_admin), ("alice", "hash-a", true));
    assert!(matches!(store.create_user("alice", "other", false), Err(StoreError::AlreadyExists(_))));
    assert_eq!(store.user_by_name("alice").unwrap(), Some(a.clone()));
    assert_eq!(store.user_by_name("bob").unwrap(), Some(b.clone()));
    assert_eq!(store.user_by_name("carol").unwrap(), None);
    assert_eq!(store.list_users().unwrap(), vec![a, b]);
}

/// Devices: `ensure_device` creates once, then returns the same device.
pub fn devices_are_idempotent(store: &dyn Store) {
    let a = store.create_user("alice", "h", false).unwrap().id;
    let b = store.create_user("bob", "h", false).unwrap().id;
    let phone = store.ensure_device(a, "phone").unwrap();
    assert_eq!((phone.user, phone.name.as_str()), (a, "phone"));
    assert_eq!(store.ensure_device(a, "phone").unwrap(), phone);
    let watch = store.ensure_device(a, "watch").unwrap();
    assert_ne!(watch.id, phone.id);
    let b_phone = store.ensure_device(b, "phone").unwrap();
    assert_ne!(b_phone.id, phone.id);
    assert_eq!(store.list_devices(a).unwrap(), vec![phone, watch]);
    assert_eq!(store.list_devices(b).unwrap(), vec![b_phone]);
    assert!(matches!(store.ensure_device(UserId(9_999_999), "x"), Err(StoreError::NotFound(_))));
}

/// Every field of a fix (extras included) reads back exactly.
pub fn round_trip_is_exact(store: &dyn Store) {
    let (user, device) = setup(store, "alice");
    let fixes: Vec<Fix> = (0..2_500u64).map(|i| rich_fix(T0 + i as i64 * 15_000 + (i as i64 % 7), i)).collect();
    let out = store.insert_points(user, device, &fixes).unwrap();
    assert_eq!((out.added, out.duplicates), (2_500, 0));
    assert!(out.seq.is_some());
    let got = scan(store, &PointQuery::user(user));
    assert_eq!(got.len(), fixes.len());
    for (p, f) in got.iter().zip(&fixes) {
        assert_eq!((p.user, p.device), (user, device));
        assert_eq!(&p.fix, f);
    }
    // Extremes of every field.
    let mut extreme = rich_fix(i64::MAX - 1, 5);
    extreme.coord = Coord { lat_e7: -900_000_000, lon_e7: 1_800_000_000 };
    extreme.altitude_cm = Some(i32::MIN);
    extreme.horizontal_accuracy_cm = Some(u32::MAX);
    extreme.utc_offset_minutes = Some(i16::MIN);
    let mut early = plain_fix(i64::MIN + 1);
    early.extras = Some(Extras::from_json_object("{}"));
    store.insert_points(user, device, &[extreme.clone(), early.clone()]).unwrap();
    let got = scan(store, &PointQuery::user(user));
    assert_eq!(got.first().map(|p| &p.fix), Some(&early));
    assert_eq!(got.last().map(|p| &p.fix), Some(&extreme));
    assert_eq!(store.count_points(user).unwrap(), 2_502);
}

/// Same `(user, device, time)` is a duplicate: counted, stored point unchanged.
pub fn duplicates_keep_the_stored_point(store: &dyn Store) {
    let (user, device) = setup(store, "alice");
    let fixes: Vec<Fix> = (0..1_500u64).map(|i| rich_fix(T0 + i as i64 * 1000, i)).collect();
    store.insert_points(user, device, &fixes).unwrap();
    let seq = store.last_seq().unwrap();
    let again = store.insert_points(user, device, &fixes).unwrap();
    assert_eq!(again, crate::WriteOutcome { added: 0, duplicates: 1_500, deleted: 0, suppressed: 0, seq: None });
    assert_eq!(store.last_seq().unwrap(), seq);
    let mut changed = fixes[700].clone();
    changed.coord.lat_e7 += 1;
    changed.extras = None;
    let out = store.insert_points(user, device, &[changed, plain_fix(T0 - 1)]).unwrap();
    assert_eq!((out.added, out.duplicates), (1, 1));
    let got = scan(store, &PointQuery::user(user));
    assert_eq!(got.len(), 1_501);
    assert_eq!(got[701].fix, fixes[700]);
    // A duplicate on another device is no duplicate.
    let other = store.ensure_device(user, "watch").unwrap().id;
    assert_eq!(store.insert_points(user, other, &fixes[..10]).unwrap().added, 10);
}

/// Batches need not be sorted and may repeat times; the first one wins.
pub fn unsorted_batches_and_repeated_times(store: &dyn Store) {
    let (user, device) = setup(store, "alice");
    let mut rng = Rng(7);
    let mut batch: Vec<Fix> = (0..3_000u64).map(|i| rich_fix(T0 + (i as i64 % 2_000) * 5_000, i)).collect();
    rng.shuffle(&mut batch);
    let mut first: BTreeMap<i64, Fix> = BTreeMap::new();
    for f in &batch {
        first.entry(f.time.0).or_insert_with(|| f.clone());
    }
    let out = store.insert_points(user, device, &batch).unwrap();
    assert_eq!((out.added, out.duplicates), (2_000, 1_000));
    let got: Vec<Fix> = scan(store, &PointQuery::user(user)).into_iter().map(|p| p.fix).collect();
    assert_eq!(got, first.into_values().collect::<Vec<_>>());
    assert_eq!(store.insert_points(user, device, &[]).unwrap(), crate::WriteOutcome::default());
}

/// A model test: random batches (appends, backfills into the middle of
/// existing chunks, spans over chunk boundaries, duplicates, random order) on
/// two devices, compared against a `BTreeMap` after every batch.
pub fn model_test_random_batches(store: &dyn Store) {
    let (user, d1) = setup(store, "alice");
    let d2 = store.ensure_device(user, "watch").unwrap().id;
    let mut rng = Rng(0x00C0_FFEE);
    let mut model: BTreeMap<(DeviceId, i64), Fix> = BTreeMap::new();
    let mut counter = 0u64;
    let mut last_seq = store.last_seq().unwrap();
    for round in 0..40 {
        let device = if rng.below(3) == 0 { d2 } else { d1 };
        let existing: Vec<i64> = model.range((device, i64::MIN)..=(device, i64::MAX)).map(|(k, _)| k.1).collect();
        let (lo, hi) = (existing.first().copied().unwrap_or(T0), existing.last().copied().unwrap_or(T0));
        let size = 1 + rng.below(if round % 5 == 0 { 4 * CHUNK_CAPACITY as u64 } else { 1_500 }) as usize;
        let mut batch = Vec::with_capacity(size);
        let kind = rng.below(5);
        for j in 0..size {
            let t = match kind {
                // Append after the end, ascending with jitter.
                0 => hi + 1 + j as i64 * 10_000 + rng.range(0, 9_000),
                // Backfill inside the existing range.
                1 => rng.range(lo, hi + 1),
                // Anywhere, including before the start.
                2 => rng.range(lo - 20_000_000, hi + 20_000_000),
                // Mostly re-sent existing times.
                3 if !existing.is_empty() && rng.below(4) != 0 => existing[rng.below(existing.len() as u64) as usize],
                // Coarse grid: many repeats inside the batch.
                _ => lo + rng.range(-200, 200) * 100_000,
            };
            counter += 1;
            batch.push(rich_fix(t, counter));
        }
        if rng.below(2) == 0 {
            rng.shuffle(&mut batch);
        }
        let mut added = 0;
        for f in &batch {
            if let std::collections::btree_map::Entry::Vacant(e) = model.entry((device, f.time.0)) {
                e.insert(f.clone());
                added += 1;
            }
        }
        let out = store.insert_points(user, device, &batch).unwrap();
        assert_eq!((out.added, out.duplicates), (added, batch.len() as u64 - added), "round {round}");
        if added > 0 {
            let seq = out.seq.expect("seq for a write that added points");
            assert!(seq > last_seq);
            last_seq = seq;
        } else {
            assert_eq!(out.seq, None);
        }
        // Whole user, then a random window of one device.
        let got: Vec<((DeviceId, i64), Fix)> =
            scan(store, &PointQuery::user(user)).into_iter().map(|p| ((p.device, p.fix.time.0), p.fix)).collect();
        assert!(got.iter().map(|(k, _)| k).eq(model.keys()), "round {round}: keys differ");
        assert!(got.iter().map(|(_, f)| f).eq(model.values()), "round {round}: fixes differ");
        let (a, b) = (rng.range(lo - 1_000_000, hi + 1_000_000), rng.range(lo - 1_000_000, hi + 1_000_000));
        let (from, to) = (a.min(b), a.max(b));
        let window: Vec<&Fix> = model.range((device, from)..(device, to)).map(|(_, f)| f).collect();
        let got = scan(store, &query(user, Some(device), Some(from), Some(to)));
        assert!(got.iter().map(|p| &p.fix).eq(window), "round {round}: window differs");
        assert_eq!(store.count_points(user).unwrap(), model.len() as u64);
    }
    assert_eq!(store.storage_stats().unwrap().points, model.len() as u64);
    assert!(model.len() > 3 * CHUNK_CAPACITY, "the model test must span chunk boundaries");
}

/// The live-ingest pattern: one point per write, appended.
pub fn live_appends_one_at_a_time(store: &dyn Store) {
    let (user, device) = setup(store, "alice");
    let n = 6 * CHUNK_CAPACITY as u64 + 100;
    let fixes: Vec<Fix> = (0..n).map(|i| rich_fix(T0 + i as i64 * 20_000, i)).collect();
    for f in &fixes {
        assert_eq!(store.insert_points(user, device, std::slice::from_ref(f)).unwrap().added, 1);
    }
    let got: Vec<Fix> = scan(store, &PointQuery::user(user)).into_iter().map(|p| p.fix).collect();
    assert_eq!(got, fixes);
    let stats = store.storage_stats().unwrap();
    assert_eq!(stats.points, n);
    // Backends may cap live tails below CHUNK_CAPACITY (and keep the newest
    // few thousand fixes in small chunks), but appends must not leave a trail
    // of tiny chunks: at least 64 fixes per chunk on average.
    assert!(stats.chunks <= n.div_ceil(64), "appends should fill chunks, got {} chunks", stats.chunks);
}

/// Filters: device, `from` inclusive, `to` exclusive; order: device, then time.
pub fn scan_filters_and_order(store: &dyn Store) {
    let (user, d1) = setup(store, "alice");
    let d2 = store.ensure_device(user, "watch").unwrap().id;
    let times: Vec<i64> = (0..3_000).map(|i| T0 + i * 1_000).collect();
    let f1: Vec<Fix> = times.iter().rev().map(|&t| plain_fix(t)).collect();
    let f2: Vec<Fix> = times.iter().map(|&t| plain_fix(t + 500)).collect();
    store.insert_points(user, d2, &f2).unwrap();
    store.insert_points(user, d1, &f1).unwrap();
    let all = scan(store, &PointQuery::user(user));
    assert_eq!(all.len(), 6_000);
    let (lo, hi) = if d1 < d2 { (d1, d2) } else { (d2, d1) };
    assert!(all[..3_000].iter().all(|p| p.device == lo) && all[3_000..].iter().all(|p| p.device == hi));
    assert!(all.windows(2).all(|w| (w[0].device, w[0].fix.time) < (w[1].device, w[1].fix.time)));
    let only2 = scan(store, &query(user, Some(d2), None, None));
    assert_eq!(only2.iter().map(|p| p.fix.clone()).collect::<Vec<_>>(), f2);
    let (from, to) = (T0 + 1_000, T0 + 2_500_000);
    let window = scan(store, &query(user, None, Some(from), Some(to)));
    let expect = |d: DeviceId, off: i64| times.iter().map(move |&t| (d, t + off)).filter(|&(_, t)| t >= from && t < to);
    let want: Vec<(DeviceId, i64)> = if lo == d1 {
        expect(d1, 0).chain(expect(d2, 500)).collect()
    } else {
        expect(d2, 500).chain(expect(d1, 0)).collect()
    };
    assert_eq!(window.iter().map(|p| (p.device, p.fix.time.0)).collect::<Vec<_>>(), want);
    assert_eq!(window.iter().filter(|p| p.device == d1).map(|p| p.fix.time.0).next(), Some(from));
    assert!(window.iter().all(|p| p.fix.time.0 != to));
    assert!(scan(store, &query(user, None, Some(to), Some(from))).is_empty());
    assert!(scan(store, &query(user, Some(d1), Some(T0 + 10_000_000), None)).is_empty());
    assert_eq!(scan(store, &query(user, Some(d1), None, Some(T0 + 1))).len(), 1);
}

/// `visit` returning `Break` stops the scan.
pub fn scan_stops_on_break(store: &dyn Store) {
    let (user, device) = setup(store, "alice");
    let fixes: Vec<Fix> = (0..3_000).map(|i| plain_fix(T0 + i)).collect();
    store.insert_points(user, device, &fixes).unwrap();
    let mut seen = 0;
    store
        .scan_points(&PointQuery::user(user), &mut |_| {
            seen += 1;
            if seen == 1_500 { ControlFlow::Break(()) } else { ControlFlow::Continue(()) }
        })
        .unwrap();
    assert_eq!(seen, 1_500);
}

/// User B never sees, counts, deletes or writes into user A's data.
pub fn users_are_isolated(store: &dyn Store) {
    let (a, da) = setup(store, "alice");
    let (b, db) = setup(store, "bob");
    let fixes: Vec<Fix> = (0..2_000).map(|i| plain_fix(T0 + i * 1000)).collect();
    store.insert_points(a, da, &fixes).unwrap();
    assert!(scan(store, &PointQuery::user(b)).is_empty());
    assert!(scan(store, &query(b, Some(da), None, None)).is_empty());
    assert_eq!(store.count_points(b).unwrap(), 0);
    assert!(store.insert_points(b, da, &fixes[..1]).is_err(), "a device of another user");
    assert_eq!(store.delete_points(&query(b, Some(da), None, None)).unwrap().deleted, 0);
    assert_eq!(store.delete_points(&PointQuery::user(b)).unwrap().deleted, 0);
    assert_eq!(store.count_points(a).unwrap(), 2_000);
    // Same times for B are B's own points, not duplicates.
    assert_eq!(store.insert_points(b, db, &fixes).unwrap().added, 2_000);
    assert_eq!(scan(store, &PointQuery::user(a)).len(), 2_000);
    let mut visit = Interval::new(IntervalKind::Visit, Timestamp(T0), Timestamp(T0 + 1), SourceFormat::Api);
    visit.place_id = Some("p".into());
    store.insert_intervals(a, da, std::slice::from_ref(&visit)).unwrap();
    assert!(store.intervals(b, None, None, None).unwrap().is_empty());
    assert_eq!(store.insert_intervals(b, db, &[visit]).unwrap().added, 1);
}

/// `delete_points` removes a range and records one tombstone.
pub fn delete_points_range(store: &dyn Store) {
    let (user, d1) = setup(store, "alice");
    let d2 = store.ensure_device(user, "watch").unwrap().id;
    let fixes: Vec<Fix> = (0..5_000u64).map(|i| rich_fix(T0 + i as i64 * 1000, i)).collect();
    store.insert_points(user, d1, &fixes).unwrap();
    store.insert_points(user, d2, &fixes).unwrap();
    let (from, to) = (T0 + 1_234_000, T0 + 3_456_000);
    let out = store.delete_points(&query(user, Some(d1), Some(from), Some(to))).unwrap();
    assert_eq!((out.added, out.deleted), (0, 2_222));
    let seq = out.seq.expect("a delete that removed points has a seq");
    let change = store.changes_since(Seq(seq.0 - 1), 10).unwrap();
    assert_eq!(change.len(), 1);
    let c = &change[0];
    assert_eq!(
        (c.seq, c.kind, c.user, c.device, c.first, c.last, c.count),
        (seq, ChangeKind::PointsDeleted, user, Some(d1), Some(Timestamp(from)), Some(Timestamp(to - 1)), 2_222)
    );
    let left: Vec<Fix> = scan(store, &query(user, Some(d1), None, None)).into_iter().map(|p| p.fix).collect();
    let want: Vec<Fix> = fixes.iter().filter(|f| f.time.0 < from || f.time.0 >= to).cloned().collect();
    assert_eq!(left, want);
    assert_eq!(scan(store, &query(user, Some(d2), None, None)).len(), 5_000);
    // Nothing left to delete: no change.
    let again = store.delete_points(&query(user, Some(d1), Some(from), Some(to))).unwrap();
    assert_eq!((again.deleted, again.seq), (0, None));
    assert_eq!(store.last_seq().unwrap(), seq);
    // All devices, open-ended.
    let out = store.delete_points(&query(user, None, Some(T0 + 4_000_000), None)).unwrap();
    assert_eq!(out.deleted, 2_000);
    let c = store.changes_since(seq, 10).unwrap();
    assert_eq!((c[0].device, c[0].first, c[0].last), (None, Some(Timestamp(T0 + 4_000_000)), None));
    assert_eq!(store.count_points(user).unwrap(), 10_000 - 2_222 - 2_000);
    // Deleted times come back only when asked for (see `deletes`).
    assert_eq!(store.insert_points(user, d1, &fixes).unwrap().suppressed, 2_222 + 1_000);
    assert_eq!(store.restore_points(user, d1, &fixes).unwrap().added, 2_222 + 1_000);
    assert_eq!(store.delete_points(&PointQuery::user(user)).unwrap().deleted, 10_000 - 1_000);
    assert!(scan(store, &PointQuery::user(user)).is_empty());
    assert_eq!(store.storage_stats().unwrap().points, 0);
}

fn rich_interval(kind: IntervalKind, start: i64, end: i64, level: u8, place: &str) -> Interval {
    Interval {
        kind,
        start: Timestamp(start),
        end: Timestamp(end),
        start_offset_minutes: Some(60),
        end_offset_minutes: Some(-330),
        start_coord: Some(Coord { lat_e7: 515_000_000, lon_e7: -1_200_000 }),
        end_coord: (kind == IntervalKind::Activity).then_some(Coord { lat_e7: 515_100_000, lon_e7: -1_300_000 }),
        place_id: (!place.is_empty()).then(|| place.to_owned()),
        name: Some(format!("Näme {place}")),
        category: Some("IN_PASSENGER_VEHICLE".into()),
        distance_m: Some(1_234.567_890_123),
        confidence: Some(0.1 + 0.2),
        level,
        source: SourceFormat::GoogleSemantic,
        extras: Some(Extras::from_json_object("{\"waypoints\":[1,2,3]}")),
    }
}

/// Intervals: exact round trip, identity dedupe, overlap query, kind filter.
pub fn intervals_insert_dedupe_overlap(store: &dyn Store) {
    let (user, device) = setup(store, "alice");
    let h = 3_600_000;
    let visit = rich_interval(IntervalKind::Visit, T0, T0 + h, 0, "home");
    let nested = rich_interval(IntervalKind::Visit, T0, T0 + h, 1, "kitchen");
    let drive = rich_interval(IntervalKind::Activity, T0 + h, T0 + 2 * h, 0, "");
    let mut bare = Interval::new(IntervalKind::Memory, Timestamp(T0 + 5 * h), Timestamp(T0 + 5 * h), SourceFormat::Api);
    bare.level = 3;
    let all = vec![drive.clone(), visit.clone(), nested.clone(), bare.clone()];
    let out = store.insert_intervals(user, device, &all).unwrap();
    assert_eq!((out.added, out.duplicates), (4, 0));
    assert!(out.seq.is_some());
    let again = store.insert_intervals(user, device, &[visit.clone(), visit.clone(), drive.clone()]).unwrap();
    assert_eq!((again.added, again.duplicates, again.seq), (0, 3, None));
    let got = store.intervals(user, None, None, None).unwrap();
    assert_eq!(got.len(), 4);
    assert!(got.windows(2).all(|w| w[0].interval.start <= w[1].interval.start));
    assert!(got.iter().all(|s| s.user == user && s.device == device));
    for want in &all {
        assert!(got.iter().any(|s| &s.interval == want), "missing {want:?}");
    }
    let ids: std::collections::BTreeSet<i64> = got.iter().map(|s| s.id).collect();
    assert_eq!(ids.len(), 4);
    // Overlap with [from, to).
    let kinds =
        |v: Vec<crate::StoredInterval>| v.into_iter().map(|s| (s.interval.kind, s.interval.level)).collect::<Vec<_>>();
    let window = store.intervals(user, None, Some(Timestamp(T0 + h / 2)), Some(Timestamp(T0 + h + 1))).unwrap();
    assert_eq!(window.len(), 3);
    let before = store.intervals(user, None, None, Some(Timestamp(T0 + h))).unwrap();
    assert_eq!(before.len(), 2, "an interval starting at `to` is outside");
    assert_eq!(
        kinds(store.intervals(user, Some(IntervalKind::Activity), None, None).unwrap()),
        vec![(IntervalKind::Activity, 0)]
    );
    assert_eq!(
        kinds(store.intervals(user, None, Some(Timestamp(T0 + 3 * h)), None).unwrap()),
        vec![(IntervalKind::Memory, 3)]
    );
    assert!(store.intervals(user, None, Some(Timestamp(T0 + 6 * h)), None).unwrap().is_empty());
    // Same times, another device: not a duplicate.
    let other = store.ensure_device(user, "watch").unwrap().id;
    assert_eq!(store.insert_intervals(user, other, &[visit]).unwrap().added, 1);
}

/// The change log: one strictly increasing entry per write that changed
/// something, with the right kinds, ranges and counts.
pub fn change_log(store: &dyn Store) {
    assert_eq!(store.last_seq().unwrap(), Seq(0));
    assert!(store.changes_since(Seq(0), 100).unwrap().is_empty());
    let user = store.create_user("alice", "h", false).unwrap().id;
    let device = store.ensure_device(user, "phone").unwrap().id;
    store.ensure_device(user, "phone").unwrap();
    let fixes: Vec<Fix> = (0..3_000).map(|i| plain_fix(T0 + i * 1000)).collect();
    let p1 = store.insert_points(user, device, &fixes[1_000..]).unwrap().seq.unwrap();
    assert_eq!(store.insert_points(user, device, &fixes[1_000..]).unwrap().seq, None);
    let p2 = store.insert_points(user, device, &fixes[..1_500]).unwrap().seq.unwrap();
    let iv = Interval::new(IntervalKind::Visit, Timestamp(T0), Timestamp(T0 + 10), SourceFormat::Api);
    let i1 = store.insert_intervals(user, device, std::slice::from_ref(&iv)).unwrap().seq.unwrap();
    assert_eq!(store.insert_intervals(user, device, &[iv]).unwrap().seq, None);
    let d1 = store.delete_points(&query(user, Some(device), Some(T0), Some(T0 + 10_000))).unwrap().seq.unwrap();
    assert_eq!(store.delete_points(&query(user, Some(device), Some(T0), Some(T0 + 10_000))).unwrap().seq, None);

    let log = store.changes_since(Seq(0), 100).unwrap();
    assert_eq!(log.len(), 6, "{log:#?}");
    assert!(log.windows(2).all(|w| w[0].seq < w[1].seq));
    let kinds: Vec<ChangeKind> = log.iter().map(|c| c.kind).collect();
    use ChangeKind::*;
    assert_eq!(kinds, vec![User, Device, PointsInserted, PointsInserted, IntervalsInserted, PointsDeleted]);
    assert!(log.iter().all(|c| c.user == user));
    assert_eq!(log[1].device, Some(device));
    let row = |c: &crate::Change| (c.seq, c.device, c.first, c.last, c.count);
    let ts = |t: i64| Some(Timestamp(t));
    assert_eq!(row(&log[2]), (p1, Some(device), ts(T0 + 1_000_000), ts(T0 + 2_999_000), 2_000));
    assert_eq!(row(&log[3]), (p2, Some(device), ts(T0), ts(T0 + 999_000), 1_000));
    assert_eq!(row(&log[4]), (i1, Some(device), ts(T0), ts(T0 + 10), 1));
    assert_eq!(row(&log[5]), (d1, Some(device), ts(T0), ts(T0 + 9_999), 10));
    assert_eq!(store.last_seq().unwrap(), d1);
    // Paging.
    let page = store.changes_since(log[1].seq, 2).unwrap();
    assert_eq!(page, log[2..4].to_vec());
    assert!(store.changes_since(d1, 10).unwrap().is_empty());
    // A second user's writes continue the same sequence.
    let bob = store.create_user("bob", "h", false).unwrap();
    let after = store.changes_since(d1, 10).unwrap();
    assert_eq!((after.len(), after[0].kind, after[0].user), (1, User, bob.id));
    assert!(after[0].seq > d1);
}

/// Storage figures and liveness.
pub fn storage_stats_and_ping(store: &dyn Store) {
    store.ping().unwrap();
    let empty = store.storage_stats().unwrap();
    assert_eq!((empty.points, empty.chunks, empty.chunk_bytes), (0, 0, 0));
    let (user, device) = setup(store, "alice");
    let n = 5 * CHUNK_CAPACITY as u64 + 17;
    let fixes: Vec<Fix> = (0..n).map(|i| rich_fix(T0 + i as i64 * 20_000, i)).collect();
    store.insert_points(user, device, &fixes).unwrap();
    let stats = store.storage_stats().unwrap();
    assert_eq!(stats.points, n);
    assert!(stats.chunks >= n.div_ceil(CHUNK_CAPACITY as u64) && stats.chunks <= n, "{stats:?}");
    assert!(stats.chunk_bytes > 0 && stats.chunk_bytes < n * 64, "{stats:?}");
    assert!(stats.file_bytes >= stats.chunk_bytes, "{stats:?}");
    store.ping().unwrap();
}

/// The epoch exists from the start and writes do not change it: only a
/// restore does ([`Store::renew_epoch`]).
pub fn epoch_is_stable_across_writes(store: &dyn Store) {
    let epoch = store.epoch().unwrap();
    assert!(!epoch.is_empty());
    let (user, device) = setup(store, "alice");
    store.insert_points(user, device, &[plain_fix(T0)]).unwrap();
    assert_eq!(store.epoch().unwrap(), epoch);
}

/// [`Store::renew_epoch`] makes the store a new instance: a new id and
/// epoch, the epoch history forking at the restored head, the changes it
/// holds keeping the old id as their origin, and a checkpoint saying it
/// holds the old instance's feed up to the fork.
pub fn a_restored_copy_is_a_new_instance_that_remembers_where_it_forked(store: &dyn Store) {
    use crate::FeedFilter;
    let a = store;
    let user = a.create_user("alice", "h", false).unwrap();
    let device = a.ensure_device(user.id, "phone").unwrap();
    a.insert_points(user.id, device.id, &[plain_fix(1_000)]).unwrap();
    let (old_id, old_epoch, last) = (a.instance_id().unwrap(), a.epoch().unwrap(), a.last_seq().unwrap());
    let epoch = a.renew_epoch().unwrap();
    assert_ne!(a.instance_id().unwrap(), old_id, "the copy is another instance");
    assert_eq!(a.last_seq().unwrap(), last, "a new epoch is not a change");
    let epochs = a.epochs().unwrap();
    assert_eq!(epochs.len(), 2);
    assert_eq!((epochs[0].epoch.as_str(), epochs[0].start), (old_epoch.as_str(), Seq(0)));
    assert_eq!((epochs[1].epoch.as_str(), epochs[1].start), (epoch.as_str(), last));
    assert_eq!(epochs[1].instance, a.instance_id().unwrap(), "the new epoch begins under the new id");
    let feed = a.replication_feed(Seq(0), 100, &FeedFilter::default()).unwrap();
    assert_eq!(feed.entries.len(), 3);
    assert!(feed.entries.iter().all(|e| e.version.origin == old_id), "restored changes keep their origin");
    let seeded = a.replication_checkpoint(&old_id).unwrap().unwrap();
    assert_eq!(
        (seeded.epoch, seeded.seq),
        (old_epoch, last),
        "the copy holds the old instance's feed up to the backup"
    );
    // New local changes carry the new id.
    a.ensure_device(user.id, "watch").unwrap();
    let feed = a.replication_feed(last, 100, &FeedFilter::default()).unwrap();
    assert_eq!(feed.entries[0].version.origin, a.instance_id().unwrap());
}

/// `user_by_id`, and `set_password` (a user change in the log).
pub fn users_by_id_and_passwords(store: &dyn Store) {
    let a = store.create_user("alice", "old-hash", false).unwrap();
    assert_eq!(store.user_by_id(a.id).unwrap(), Some(a.clone()));
    assert_eq!(store.user_by_id(UserId(9_999_999)).unwrap(), None);
    let seq = store.last_seq().unwrap();
    store.set_password(a.id, "new-hash").unwrap();
    let changed = store.user_by_id(a.id).unwrap().unwrap();
    assert_eq!(changed.password_hash, "new-hash");
    assert_eq!(store.user_by_name("alice").unwrap().unwrap().password_hash, "new-hash");
    let log = store.changes_since(seq, 10).unwrap();
    assert_eq!((log.len(), log[0].kind, log[0].user), (1, ChangeKind::User, a.id));
    assert!(matches!(store.set_password(UserId(9_999_999), "x"), Err(StoreError::NotFound(_))));
}

/// Tokens: stored by hash, found by hash with their user, scoped to the
/// owner for listing and revoking, and absent from the change log.
pub fn tokens_create_lookup_revoke(store: &dyn Store) {
    let (a, phone) = setup(store, "alice");
    let (b, b_phone) = setup(store, "bob");
    let seq = store.last_seq().unwrap();
    let (h1, h2, h3) = ([1u8; 32], [2u8; 32], [3u8; 32]);
    let t1 = store.create_token(a, phone, "overland", &h1, TokenGrant::default()).unwrap();
    assert_eq!((t1.user, t1.device.id, t1.device.name.as_str(), t1.label.as_str()), (a, phone, "phone", "overland"));
    assert_eq!(t1.last_used, None);
    let t2 = store.create_token(a, phone, "", &h2, TokenGrant::default()).unwrap();
    assert_ne!(t1.id, t2.id);
    let t3 = store.create_token(b, b_phone, "bob's", &h3, TokenGrant::default()).unwrap();
    assert!(matches!(
        store.create_token(a, phone, "again", &h1, TokenGrant::default()),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(
        store.create_token(a, b_phone, "x", &[4; 32], TokenGrant::default()),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(
        store.create_token(a, DeviceId(9_999_999), "x", &[4; 32], TokenGrant::default()),
        Err(StoreError::NotFound(_))
    ));

    let (found, user) = store.token_by_hash(&h1).unwrap().unwrap();
    assert_eq!((found.id, found.user, found.device.id, user.id, user.name.as_str()), (t1.id, a, phone, a, "alice"));
    assert!(found.last_used.is_some(), "a lookup marks the token used");
    let listed = store.list_tokens(a).unwrap();
    assert_eq!(listed.iter().map(|t| t.id).collect::<Vec<_>>(), vec![t1.id, t2.id]);
    assert_eq!(listed[0].last_used, found.last_used);
    assert_eq!(store.token_by_hash(&h3).unwrap().unwrap().1.id, b);
    assert_eq!(store.token_by_hash(&[9; 32]).unwrap(), None);

    // Revoking is scoped to the owner.
    assert!(!store.revoke_token(b, t1.id).unwrap());
    assert!(store.token_by_hash(&h1).unwrap().is_some());
    assert!(store.revoke_token(a, t1.id).unwrap());
    assert!(!store.revoke_token(a, t1.id).unwrap());
    assert_eq!(store.token_by_hash(&h1).unwrap(), None);
    assert_eq!(store.list_tokens(a).unwrap().len(), 1);
    assert_eq!(store.list_tokens(b).unwrap()[0].id, t3.id);
    // Credentials are not replicated data.
    assert_eq!(store.last_seq().unwrap(), seq);
}

/// Sessions: found by hash until they expire, deleted singly, per user or
/// when expired, and absent from the change log.
pub fn sessions_expire_and_delete(store: &dyn Store) {
    let a = store.create_user("alice", "h", false).unwrap();
    let b = store.create_user("bob", "h", true).unwrap();
    let seq = store.last_seq().unwrap();
    let (s1, s2, s3, s4) = ([1u8; 32], [2u8; 32], [3u8; 32], [4u8; 32]);
    let session = store.create_session(&s1, a.id, "csrf-1", Timestamp(T0 + 1_000)).unwrap();
    assert_eq!((session.user, session.csrf_token.as_str(), session.expires), (a.id, "csrf-1", Timestamp(T0 + 1_000)));
    store.create_session(&s2, a.id, "csrf-2", Timestamp(T0 + 5_000)).unwrap();
    store.create_session(&s3, a.id, "csrf-3", Timestamp(T0 + 5_000)).unwrap();
    store.create_session(&s4, b.id, "csrf-4", Timestamp(T0 + 5_000)).unwrap();
    assert!(matches!(store.create_session(&s1, a.id, "x", Timestamp(T0)), Err(StoreError::AlreadyExists(_))));
    assert!(matches!(
        store.create_session(&[5; 32], UserId(9_999_999), "x", Timestamp(T0)),
        Err(StoreError::NotFound(_))
    ));

    let (found, user) = store.session_by_hash(&s1, Timestamp(T0)).unwrap().unwrap();
    assert_eq!((found, user), (session, a.clone()));
    assert_eq!(store.session_by_hash(&s1, Timestamp(T0 + 1_000)).unwrap(), None, "expired at `expires`");
    assert_eq!(store.session_by_hash(&[9; 32], Timestamp(T0)).unwrap(), None);
    assert_eq!(store.session_by_hash(&s4, Timestamp(T0)).unwrap().unwrap().1, b);

    assert_eq!(store.delete_expired_sessions(Timestamp(T0 + 1_000)).unwrap(), 1);
    assert!(!store.delete_session(&s1).unwrap());
    assert!(store.delete_session(&s2).unwrap());
    assert_eq!(store.session_by_hash(&s2, Timestamp(T0)).unwrap(), None);
    assert!(store.session_by_hash(&s3, Timestamp(T0)).unwrap().is_some());
    // Per user, keeping one: another user's sessions stay.
    store.create_session(&s2, a.id, "csrf-2", Timestamp(T0 + 5_000)).unwrap();
    assert_eq!(store.delete_user_sessions(a.id, Some(&s3)).unwrap(), 1);
    assert!(store.session_by_hash(&s3, Timestamp(T0)).unwrap().is_some());
    assert_eq!(store.delete_user_sessions(a.id, None).unwrap(), 1);
    assert_eq!(store.session_by_hash(&s3, Timestamp(T0)).unwrap(), None);
    assert!(store.session_by_hash(&s4, Timestamp(T0)).unwrap().is_some());
    assert_eq!(store.last_seq().unwrap(), seq);
}

/// `last_point`: the latest fix of one device, across chunk boundaries and
/// backfills, scoped to the owner.
pub fn last_point_reads_the_latest_fix(store: &dyn Store) {
    let (a, phone) = setup(store, "alice");
    let (b, _) = setup(store, "bob");
    let watch = store.ensure_device(a, "watch").unwrap().id;
    assert_eq!(store.last_point(a, phone).unwrap(), None);
    let n = 3 * CHUNK_CAPACITY as u64 + 5;
    let fixes: Vec<Fix> = (0..n).map(|i| rich_fix(T0 + i as i64 * 1000, i)).collect();
    store.insert_points(a, phone, &fixes).unwrap();
    store.insert_points(a, watch, &fixes[..10]).unwrap();
    let last = store.last_point(a, phone).unwrap().unwrap();
    assert_eq!((last.user, last.device, &last.fix), (a, phone, fixes.last().unwrap()));
    assert_eq!(store.last_point(a, watch).unwrap().unwrap().fix, fixes[9]);
    // A backfill does not change the latest point; a later fix does.
    store.insert_points(a, phone, &[plain_fix(T0 - 5_000)]).unwrap();
    assert_eq!(store.last_point(a, phone).unwrap().unwrap().fix, *fixes.last().unwrap());
    let later = plain_fix(T0 + n as i64 * 1000 + 1);
    store.insert_points(a, phone, std::slice::from_ref(&later)).unwrap();
    assert_eq!(store.last_point(a, phone).unwrap().unwrap().fix, later);
    // Another user's device reads as empty.
    assert_eq!(store.last_point(b, phone).unwrap(), None);
}

/// Encryption passphrases: per device, owner only, cleared with `None`, one
/// change per real change.
pub fn device_encryption_keys(store: &dyn Store) {
    let (a, phone) = setup(store, "alice");
    let (b, _) = setup(store, "bob");
    let watch = store.ensure_device(a, "watch").unwrap().id;
    assert_eq!(store.device_encryption_key(a, phone).unwrap(), None);
    let before = store.last_seq().unwrap();
    store.set_device_encryption_key(a, phone, Some("correct horse ☃")).unwrap();
    assert_eq!(store.device_encryption_key(a, phone).unwrap().as_deref(), Some("correct horse ☃"));
    assert_eq!(store.device_encryption_key(a, watch).unwrap(), None, "per device");
    let changes = store.changes_since(before, 10).unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!((changes[0].kind, changes[0].user, changes[0].device), (ChangeKind::Device, a, Some(phone)));
    // Setting the same key again changes nothing.
    store.set_device_encryption_key(a, phone, Some("correct horse ☃")).unwrap();
    assert_eq!(store.changes_since(before, 10).unwrap().len(), 1);
    // Another user can neither read nor set it.
    assert!(matches!(store.device_encryption_key(b, phone), Err(StoreError::NotFound(_))));
    assert!(matches!(store.set_device_encryption_key(b, phone, None), Err(StoreError::NotFound(_))));
    assert_eq!(store.device_encryption_key(a, phone).unwrap().as_deref(), Some("correct horse ☃"));
    store.set_device_encryption_key(a, phone, None).unwrap();
    assert_eq!(store.device_encryption_key(a, phone).unwrap(), None);
    assert_eq!(store.changes_since(before, 10).unwrap().len(), 2);
}

/// `insert_points_reporting` names exactly the fixes that were new: appends,
/// backfills between stored points, repeats within the batch, and none for
/// a batch of duplicates.
pub fn insert_reports_added_times(store: &dyn Store) {
    let (a, phone) = setup(store, "alice");
    let report = |fixes: &[Fix]| {
        let mut times = Vec::new();
        let outcome = store.insert_points_reporting(a, phone, fixes, &mut |t| times.push(t.0)).unwrap();
        times.sort_unstable();
        assert_eq!(times.len() as u64, outcome.added);
        times
    };
    let evens: Vec<Fix> = (0..2_000).map(|i| plain_fix(T0 + i * 2_000)).collect();
    assert_eq!(report(&evens).len(), 2_000);
    // Every second time is stored already; the batch repeats one new time.
    let mut mixed: Vec<Fix> = (0..100).map(|i| plain_fix(T0 + i * 1_000)).collect();
    mixed.push(plain_fix(T0 + 1_000));
    let expected: Vec<i64> = (0..100).filter(|i| i % 2 == 1).map(|i| T0 + i * 1_000).collect();
    assert_eq!(report(&mixed), expected);
    assert!(report(&mixed).is_empty(), "all duplicates now");
    let later = [plain_fix(T0 + 10_000_000), plain_fix(T0 + 9_000_000)];
    assert_eq!(report(&later), vec![T0 + 9_000_000, T0 + 10_000_000]);
    assert_eq!(store.count_points(a).unwrap(), 2_000 + 50 + 2);
}

/// Several devices' fixes in one call: each group gets its own outcome and
/// added times, and a group whose device is not its user's stores nothing
/// while the others are stored.
pub fn point_groups_succeed_and_fail_alone(store: &dyn Store) {
    let (alice, phone) = setup(store, "alice");
    let (bob, bobs_phone) = setup(store, "bob");
    let watch = store.ensure_device(alice, "watch").unwrap().id;
    store.insert_points(alice, phone, &[plain_fix(T0)]).unwrap();
    let phone_fixes = [plain_fix(T0), plain_fix(T0 + 1_000)];
    let watch_fixes = [plain_fix(T0 + 5_000)];
    let foreign = [plain_fix(T0 + 7_000)];
    let bob_fixes = [plain_fix(T0 + 9_000), plain_fix(T0 + 8_000)];
    let mut groups = [
        PointGroup::new(alice, phone, &phone_fixes),
        PointGroup::new(alice, bobs_phone, &foreign), // not alice's device
        PointGroup::new(alice, watch, &watch_fixes),
        PointGroup::new(bob, bobs_phone, &bob_fixes),
        PointGroup::new(bob, bobs_phone, &[]),
    ];
    let mut added: Vec<(usize, i64)> = Vec::new();
    let seq_before = store.last_seq().unwrap();
    store.insert_point_groups(&mut groups, &mut |g, t| added.push((g, t.0))).unwrap();
    let mut outcomes = groups.iter_mut().map(|g| g.outcome.take().expect("every group has an outcome"));
    let mut next = || outcomes.next().unwrap();
    let phone_outcome = next().unwrap();
    assert_eq!((phone_outcome.added, phone_outcome.duplicates), (1, 1));
    let refused = next();
    assert!(matches!(refused, Err(StoreError::NotFound(_))), "{refused:?}");
    let watch_outcome = next().unwrap();
    assert_eq!(watch_outcome.added, 1);
    let bob_outcome = next().unwrap();
    assert_eq!(bob_outcome.added, 2);
    assert_eq!(next().unwrap(), WriteOutcome::default());
    // Each group that stored something is a change of its own, in order.
    let seqs: Vec<Seq> = [phone_outcome, watch_outcome, bob_outcome].iter().map(|o| o.seq.unwrap()).collect();
    assert!(seq_before < seqs[0] && seqs[0] < seqs[1] && seqs[1] < seqs[2], "{seq_before:?} then {seqs:?}");
    assert_eq!(store.last_seq().unwrap(), seqs[2]);
    let later = store.insert_points(alice, phone, &[plain_fix(T0 + 60_000)]).unwrap();
    assert!(later.seq.unwrap() > seqs[2]);
    added.retain(|&(g, _)| g != 1); // a failed group's reports do not count
    added.sort_unstable();
    assert_eq!(added, vec![(0, T0 + 1_000), (2, T0 + 5_000), (3, T0 + 8_000), (3, T0 + 9_000)]);
    assert_eq!(store.count_points(alice).unwrap(), 4);
    assert_eq!(store.count_points(bob).unwrap(), 2);
    let times = |user, device| -> Vec<i64> {
        scan(store, &query(user, Some(device), None, None)).into_iter().map(|p| p.fix.time.0).collect()
    };
    assert_eq!(times(bob, bobs_phone), vec![T0 + 8_000, T0 + 9_000], "the foreign group left nothing behind");
}

/// Cards: per device, owner only, replaced whole, removed with `None`.
pub fn device_cards(store: &dyn Store) {
    use crate::DeviceCard;
    let (a, phone) = setup(store, "alice");
    let (b, _) = setup(store, "bob");
    assert_eq!(store.device_card(a, phone).unwrap(), None);
    let card = DeviceCard { name: Some("Alice A.".into()), face: Some("iVBORw0KGgo=".into()) };
    let before = store.last_seq().unwrap();
    store.set_device_card(a, phone, Some(&card)).unwrap();
    store.set_device_card(a, phone, Some(&card)).unwrap(); // unchanged: no second change
    assert_eq!(store.device_card(a, phone).unwrap(), Some(card));
    assert_eq!(store.changes_since(before, 10).unwrap().len(), 1);
    let name_only = DeviceCard { name: Some("Alice".into()), face: None };
    store.set_device_card(a, phone, Some(&name_only)).unwrap();
    assert_eq!(store.device_card(a, phone).unwrap(), Some(name_only));
    assert!(matches!(store.device_card(b, phone), Err(StoreError::NotFound(_))));
    assert!(matches!(store.set_device_card(b, phone, None), Err(StoreError::NotFound(_))));
    store.set_device_card(a, phone, None).unwrap();
    assert_eq!(store.device_card(a, phone).unwrap(), None);
}

fn derived(kind: u16, scope: crate::DerivedScope, key: i64, value: &[u8]) -> crate::DerivedRow {
    crate::DerivedRow { kind: crate::DerivedKind(kind), scope, key, value: value.to_vec() }
}

/// Ranges read in key order per (user, kind, scope); a batch deletes, then puts.
pub fn derived_rows_ranges_and_batches(store: &dyn Store) {
    use crate::{DerivedBatch, DerivedKind, DerivedRange, DerivedScope};
    let (a, phone) = setup(store, "alice");
    let (b, watch) = setup(store, "bob");
    let dev = DerivedScope::Device(phone);
    let stays = DerivedKind(1);
    let rows: Vec<_> = [30, -5, 10, 20].iter().map(|&k| derived(1, dev, k, &k.to_le_bytes())).collect();
    let before = store.last_seq().unwrap();
    let batch = DerivedBatch { delete: vec![], put: rows };
    assert_eq!(store.derived_write(a, &batch, false).unwrap(), None);
    assert_eq!(store.last_seq().unwrap(), before, "recomputed data appends no change");
    // Other kinds, scopes and users do not show up.
    store.derived_write(a, &DerivedBatch { delete: vec![], put: vec![derived(2, dev, 10, b"leg")] }, false).unwrap();
    store
        .derived_write(a, &DerivedBatch { delete: vec![], put: vec![derived(1, DerivedScope::User, 10, b"u")] }, false)
        .unwrap();
    let bob_row = derived(1, DerivedScope::Device(watch), 10, b"bob");
    store.derived_write(b, &DerivedBatch { delete: vec![], put: vec![bob_row] }, false).unwrap();
    let keys =
        |range: DerivedRange| -> Vec<i64> { store.derived_range(a, &range).unwrap().iter().map(|r| r.key).collect() };
    assert_eq!(keys(DerivedRange::all(stays, dev)), [-5, 10, 20, 30]);
    assert_eq!(keys(DerivedRange { kind: stays, scope: dev, from: 10, to: 30 }), [10, 20]);
    assert_eq!(keys(DerivedRange::key(stays, dev, 20)), [20]);
    let user_rows = store.derived_range(a, &DerivedRange::all(stays, DerivedScope::User)).unwrap();
    assert_eq!(user_rows, [derived(1, DerivedScope::User, 10, b"u")]);
    assert_eq!(store.derived_range(a, &DerivedRange::all(stays, dev)).unwrap()[1].value, 10i64.to_le_bytes());
    let latest: Vec<i64> = store.derived_before(a, stays, dev, 30, 2).unwrap().iter().map(|r| r.key).collect();
    assert_eq!(latest, [20, 10]);
    assert!(store.derived_before(a, stays, dev, -5, 10).unwrap().is_empty());
    // Replace a window: delete [10, 30), put 15 and an update of 30.
    let replace = DerivedBatch {
        delete: vec![DerivedRange { kind: stays, scope: dev, from: 10, to: 30 }],
        put: vec![derived(1, dev, 15, b"new"), derived(1, dev, 30, b"updated")],
    };
    store.derived_write(a, &replace, false).unwrap();
    let now = store.derived_range(a, &DerivedRange::all(stays, dev)).unwrap();
    assert_eq!(now.iter().map(|r| r.key).collect::<Vec<_>>(), [-5, 15, 30]);
    assert_eq!((now[1].value.as_slice(), now[2].value.as_slice()), (&b"new"[..], &b"updated"[..]));
    assert_eq!(keys(DerivedRange::all(DerivedKind(2), dev)), [10], "other kinds untouched");
    assert_eq!(store.derived_range(b, &DerivedRange::all(stays, DerivedScope::Device(watch))).unwrap().len(), 1);
    // A device that is not the user's fails the whole batch.
    let foreign = DerivedBatch {
        delete: vec![DerivedRange::all(stays, dev)],
        put: vec![derived(1, DerivedScope::Device(watch), 1, b"x")],
    };
    assert!(matches!(store.derived_write(a, &foreign, false), Err(StoreError::NotFound(_))));
    assert_eq!(keys(DerivedRange::all(stays, dev)), [-5, 15, 30], "a failed batch stores nothing");
    assert!(matches!(
        store.derived_write(
            UserId(9_999),
            &DerivedBatch { delete: vec![], put: vec![derived(1, DerivedScope::User, 1, b"")] },
            false
        ),
        Err(StoreError::NotFound(_))
    ));
}

/// Edits append one change each; cursors start at 0 and remember.
pub fn derived_edits_and_cursors(store: &dyn Store) {
    use crate::{DerivedBatch, DerivedScope};
    let (a, _) = setup(store, "alice");
    let before = store.last_seq().unwrap();
    let edit = DerivedBatch { delete: vec![], put: vec![derived(7, DerivedScope::User, 1, b"Home")] };
    let seq = store.derived_write(a, &edit, true).unwrap().expect("an edit appends a change");
    let log = store.changes_since(before, 10).unwrap();
    assert_eq!(log.len(), 1);
    assert_eq!((log[0].seq, log[0].kind, log[0].user, log[0].count), (seq, ChangeKind::Edit, a, 1));
    assert_eq!(store.derived_write(a, &DerivedBatch::default(), true).unwrap(), None, "an empty edit changes nothing");
    assert_eq!(store.derived_cursor("timeline").unwrap(), Seq(0));
    store.set_derived_cursor("timeline", Seq(42)).unwrap();
    store.set_derived_cursor("timeline", Seq(43)).unwrap();
    store.set_derived_cursor("other", Seq(1)).unwrap();
    assert_eq!(store.derived_cursor("timeline").unwrap(), Seq(43));
    assert_eq!(store.derived_cursor("other").unwrap(), Seq(1));
}
