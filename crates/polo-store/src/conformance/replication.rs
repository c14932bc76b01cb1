//! Replication conformance: every behaviour takes two fresh, empty stores
//! (two instances) and checks what `algorithms.md` §3.4 asks of replicas:
//! no loss, no duplicates, convergence in any delivery order, no
//! ping-pong, checkpoints never ahead of data, and no resurrection of
//! deleted points.
//!
//! [`replication_conformance_tests!`](crate::replication_conformance_tests)
//! expands them into one `#[test]` each.

use std::collections::BTreeMap;

use polo_domain::{Fix, Seq};

use super::{Rng, T0, plain_fix, query, rich_fix, rich_interval, scan, setup};
use crate::replication::ReplicatedChange;
use crate::{
    Checkpoint, DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope, FeedEntry, FeedFilter, PointQuery,
    Store, UserId,
};

/// Expands every replication conformance test into a `#[test]` calling
/// `$make()` twice for two fresh stores (each a [`super::MaybeFixture`]),
/// and the property test ([`super::replication_props`]), which calls it
/// twice per case; `property_cases = N` sets its number of cases.
#[macro_export]
macro_rules! replication_conformance_tests {
    (@each $make:expr; $($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                let a = $crate::conformance::MaybeFixture::into_fixture(($make)());
                let b = $crate::conformance::MaybeFixture::into_fixture(($make)());
                if let (Some(a), Some(b)) = (a, b) {
                    $crate::conformance::replication::$name(
                        $crate::conformance::Fixture::store(&a),
                        $crate::conformance::Fixture::store(&b),
                    );
                }
            }
        )*
    };
    ($make:expr) => {
        $crate::replication_conformance_tests!(
            $make, property_cases = $crate::conformance::replication_props::DEFAULT_CASES);
    };
    // `property_cases`: how many cases the property test runs unless
    // `PROPTEST_CASES` says otherwise (fewer for a backend whose fresh
    // stores are slow to make).
    ($make:expr, property_cases = $cases:expr) => {
        $crate::replication_conformance_tests!(@each $make;
            feed_serves_every_kind_in_order, feed_pages_filters_and_skips, apply_is_idempotent_and_never_echoes,
            bidirectional_writes_converge_without_ping_pong, tombstones_beat_older_points_only,
            conflicting_points_resolve_to_the_newer_version, any_delivery_order_converges,
            accounts_devices_and_edits_replicate);
        $crate::replication_conformance_tests!(@each $make;
            selections_replicate_with_their_area, thinning_replicates, epochs_are_random_and_renewed_on_request);
        $crate::replication_conformance_tests!(@each $make;
            account_deletions_replicate_and_older_changes_do_not_bring_them_back,
            an_account_deleted_while_a_peer_wrote_to_it_converges);
        // The property test (conformance/replication_props.rs): two fresh stores per case.
        #[test]
        fn any_interleaving_of_writes_and_pulls_converges_and_goes_quiet() {
            $crate::conformance::replication_props::any_interleaving_of_writes_and_pulls_converges_and_goes_quiet(
                &|| {
                    let a = $crate::conformance::MaybeFixture::into_fixture(($make)())?;
                    let b = $crate::conformance::MaybeFixture::into_fixture(($make)())?;
                    Some((a, b))
                },
                $cases,
            );
        }
    };
}

pub use super::accounts::{
    account_deletions_replicate_and_older_changes_do_not_bring_them_back,
    an_account_deleted_while_a_peer_wrote_to_it_converges,
};
pub use super::deletes::{selections_replicate_with_their_area, thinning_replicates};

/// Every instance starts with an epoch of its own (32 hex digits), which
/// [`Store::renew_epoch`] replaces without appending a change.
pub fn epochs_are_random_and_renewed_on_request(a: &dyn Store, b: &dyn Store) {
    let epoch = a.epoch().unwrap();
    assert_eq!(epoch.len(), 32);
    assert!(epoch.bytes().all(|c| c.is_ascii_hexdigit()), "{epoch}");
    assert_ne!(epoch, b.epoch().unwrap(), "two instances never share an epoch");
    assert_ne!(a.instance_id().unwrap(), b.instance_id().unwrap(), "nor an instance id");
    let seq = a.last_seq().unwrap();
    let renewed = a.renew_epoch().unwrap();
    assert_ne!(renewed, epoch);
    assert_eq!(a.epoch().unwrap(), renewed);
    assert_eq!(a.last_seq().unwrap(), seq, "a new epoch is not a change");
}

/// The checkpoint name a test replication uses.
fn name_of(source: &dyn Store) -> String {
    source.instance_id().unwrap()
}

/// Pulls `source` into `target` until caught up, as the replicator does
/// (pages of `page` points, the target's own changes left out). Returns the
/// entries applied that changed something.
pub fn pull(source: &dyn Store, target: &dyn Store, page: usize) -> u64 {
    let name = name_of(source);
    let epoch = source.epoch().unwrap();
    let filter = FeedFilter { users: vec![], exclude_origin: Some(target.instance_id().unwrap()) };
    let mut applied = 0;
    loop {
        let after = target.replication_checkpoint(&name).unwrap().map_or(Seq(0), |c| c.seq);
        let feed = source.replication_feed(after, page, &filter).unwrap();
        if feed.next == after {
            return applied;
        }
        let checkpoint = Checkpoint { epoch: epoch.clone(), seq: feed.next };
        applied += target.replication_apply(&name, &feed.entries, &checkpoint).unwrap().applied;
        assert_eq!(target.replication_checkpoint(&name).unwrap(), Some(checkpoint));
    }
}

/// Every user's points, by (user name, device name, time).
pub(super) fn all_points(store: &dyn Store) -> BTreeMap<(String, String, i64), Fix> {
    let mut out = BTreeMap::new();
    for user in store.list_users().unwrap() {
        let devices: BTreeMap<_, _> =
            store.list_devices(user.id).unwrap().into_iter().map(|d| (d.id, d.name)).collect();
        for p in scan(store, &PointQuery::user(user.id)) {
            out.insert((user.name.clone(), devices[&p.device].clone(), p.fix.time.0), p.fix);
        }
    }
    out
}

pub(super) fn user_id(store: &dyn Store, name: &str) -> UserId {
    store.user_by_name(name).unwrap().expect("user exists").id
}

fn kinds(entries: &[FeedEntry]) -> Vec<&'static str> {
    entries
        .iter()
        .map(|e| match e.change {
            ReplicatedChange::User { .. } => "user",
            ReplicatedChange::Device { .. } => "device",
            ReplicatedChange::Points { .. } => "points",
            ReplicatedChange::Tombstone { .. } => "tombstone",
            ReplicatedChange::Intervals { .. } => "intervals",
            ReplicatedChange::Edit { .. } => "edit",
            ReplicatedChange::AccountDeleted { .. } => "account deleted",
        })
        .collect()
}

/// The feed names users and devices, carries the current points of each
/// insert, range tombstones, intervals and edits, in commit order, each
/// with a version from this instance whose clock only moves forward.
pub fn feed_serves_every_kind_in_order(a: &dyn Store, _b: &dyn Store) {
    let (user, phone) = setup(a, "alice");
    let fixes: Vec<Fix> = (0..3_000u64).map(|i| rich_fix(T0 + i as i64 * 1000, i)).collect();
    a.insert_points(user, phone, &fixes).unwrap();
    a.delete_points(&query(user, Some(phone), Some(T0 + 1_000_000), Some(T0 + 2_000_000))).unwrap();
    let visit = rich_interval(polo_domain::IntervalKind::Visit, T0, T0 + 60_000, 0, "p1");
    a.insert_intervals(user, phone, std::slice::from_ref(&visit)).unwrap();
    let edit = DerivedBatch {
        delete: vec![DerivedRange::all(DerivedKind(101), DerivedScope::Device(phone))],
        put: vec![DerivedRow { kind: DerivedKind(100), scope: DerivedScope::User, key: 7, value: b"Home".to_vec() }],
    };
    a.derived_write(user, &edit, true).unwrap();

    let feed = a.replication_feed(Seq(0), 1_000_000, &FeedFilter::default()).unwrap();
    assert_eq!(kinds(&feed.entries), ["user", "device", "points", "tombstone", "intervals", "edit"]);
    assert_eq!((feed.next, feed.head), (a.last_seq().unwrap(), a.last_seq().unwrap()));
    let me = a.instance_id().unwrap();
    assert!(feed.entries.iter().all(|e| e.version.origin == me));
    assert!(feed.entries.windows(2).all(|w| w[0].version.hlc < w[1].version.hlc && w[0].seq < w[1].seq));
    assert_eq!(feed.head_hlc, feed.entries.last().unwrap().version.hlc);
    match &feed.entries[2].change {
        ReplicatedChange::Points { user, device, fixes: sent } => {
            assert_eq!((user.as_str(), device.as_str()), ("alice", "phone"));
            let kept: Vec<Fix> =
                fixes.iter().filter(|f| f.time.0 < T0 + 1_000_000 || f.time.0 >= T0 + 2_000_000).cloned().collect();
            assert_eq!(*sent, kept, "an insert carries its points as they are now, exactly");
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        feed.entries[3].change,
        ReplicatedChange::Tombstone {
            user: "alice".into(),
            device: Some("phone".into()),
            from: Some(T0 + 1_000_000),
            last: Some(T0 + 1_999_999),
            area: None,
            keep_one_every_ms: None,
        }
    );
    assert_eq!(
        feed.entries[4].change,
        ReplicatedChange::Intervals { user: "alice".into(), device: "phone".into(), intervals: vec![visit] }
    );
    match &feed.entries[5].change {
        ReplicatedChange::Edit { delete, put, .. } => {
            assert_eq!((delete.len(), delete[0].device.as_deref(), delete[0].kind), (1, Some("phone"), 101));
            assert_eq!((put[0].device.as_deref(), put[0].key, put[0].value.as_slice()), (None, 7, &b"Home"[..]));
        }
        other => panic!("{other:?}"),
    }
}

/// Pages stop near the weight asked for; filters leave changes out but the
/// page still moves past them.
pub fn feed_pages_filters_and_skips(a: &dyn Store, _b: &dyn Store) {
    let (alice, phone) = setup(a, "alice");
    let (bob, bphone) = setup(a, "bob");
    for k in 0..10i64 {
        let fixes: Vec<Fix> = (0..100).map(|i| plain_fix(T0 + k * 1_000_000 + i * 1000)).collect();
        a.insert_points(alice, phone, &fixes).unwrap();
        a.insert_points(bob, bphone, &fixes).unwrap();
    }
    let head = a.last_seq().unwrap();
    let page = a.replication_feed(Seq(0), 250, &FeedFilter::default()).unwrap();
    let weight: usize = page.entries.iter().map(|e| e.change.weight()).sum();
    assert!((250..350).contains(&weight), "a page stops once it carries the weight asked for: {weight}");
    assert_eq!(page.next, page.entries.last().unwrap().seq);
    let rest = a.replication_feed(page.next, usize::MAX, &FeedFilter::default()).unwrap();
    assert_eq!(rest.next, head);
    assert_eq!(page.entries.len() + rest.entries.len(), 2 + 2 + 20);

    let only_bob = FeedFilter { users: vec!["bob".into()], exclude_origin: None };
    let bobs = a.replication_feed(Seq(0), usize::MAX, &only_bob).unwrap();
    assert!(bobs.entries.iter().all(|e| e.change.user() == "bob"));
    assert_eq!(bobs.entries.len(), 2 + 10);
    let not_mine = FeedFilter { users: vec![], exclude_origin: Some(a.instance_id().unwrap()) };
    let none = a.replication_feed(Seq(0), 100, &not_mine).unwrap();
    assert!(none.entries.is_empty());
    assert_eq!(none.next, head, "filtered-out changes still advance the page");
    let caught_up = a.replication_feed(head, 100, &FeedFilter::default()).unwrap();
    assert!(caught_up.entries.is_empty());
    assert_eq!(caught_up.next, head);
}

/// A→B copies everything exactly; applying a page again changes nothing
/// and logs nothing; B's feed does not send A's changes back to A; the
/// checkpoint moves with the data.
pub fn apply_is_idempotent_and_never_echoes(a: &dyn Store, b: &dyn Store) {
    let (user, phone) = setup(a, "alice");
    let fixes: Vec<Fix> = (0..5_000u64).map(|i| rich_fix(T0 + i as i64 * 1000, i)).collect();
    for part in fixes.chunks(700) {
        a.insert_points(user, phone, part).unwrap();
    }
    assert!(pull(a, b, 1_000) > 0);
    assert_eq!(all_points(b), all_points(a));
    let b_head = b.last_seq().unwrap();

    // The whole feed again, as a replicator that lost its checkpoint would send it.
    let feed = a.replication_feed(Seq(0), usize::MAX, &FeedFilter::default()).unwrap();
    let checkpoint = Checkpoint { epoch: a.epoch().unwrap(), seq: feed.next };
    let again = b.replication_apply(&name_of(a), &feed.entries, &checkpoint).unwrap();
    assert_eq!((again.applied, again.points_added), (0, 0));
    assert_eq!(b.last_seq().unwrap(), b_head, "an apply that changes nothing logs nothing");

    let back = FeedFilter { users: vec![], exclude_origin: Some(a.instance_id().unwrap()) };
    let echo = b.replication_feed(Seq(0), usize::MAX, &back).unwrap();
    assert!(echo.entries.is_empty(), "B does not send A's changes back: {:?}", kinds(&echo.entries));
    assert_eq!(pull(b, a, 1_000), 0);
    let everything = b.replication_feed(Seq(0), usize::MAX, &FeedFilter::default()).unwrap();
    let origin = a.instance_id().unwrap();
    assert!(everything.entries.iter().all(|e| e.version.origin == origin), "applied changes keep their origin");
}

/// Both instances take writes for the same user and device (different
/// times); after pulling both ways both hold the union, and more pulls
/// change nothing on either side.
pub fn bidirectional_writes_converge_without_ping_pong(a: &dyn Store, b: &dyn Store) {
    let (ua, pa) = setup(a, "alice");
    let even: Vec<Fix> = (0..2_000).map(|i| rich_fix(T0 + i * 2_000, i as u64)).collect();
    a.insert_points(ua, pa, &even).unwrap();
    pull(a, b, 500);
    let (ub, pb) = (user_id(b, "alice"), b.ensure_device(user_id(b, "alice"), "phone").unwrap().id);
    let odd: Vec<Fix> = (0..2_000).map(|i| rich_fix(T0 + i * 2_000 + 1_000, i as u64 + 7)).collect();
    b.insert_points(ub, pb, &odd).unwrap();
    a.insert_points(ua, pa, &[rich_fix(T0 - 5_000, 1)]).unwrap();
    for _ in 0..2 {
        pull(a, b, 500);
        pull(b, a, 500);
    }
    assert_eq!(all_points(a).len(), 4_001);
    assert_eq!(all_points(a), all_points(b));
    let heads = (a.last_seq().unwrap(), b.last_seq().unwrap());
    assert_eq!((pull(a, b, 500), pull(b, a, 500)), (0, 0));
    assert_eq!((a.last_seq().unwrap(), b.last_seq().unwrap()), heads, "quiet replicas stay quiet");
}

/// A range delete removes the replica's older points in the range but not
/// points written after it; an older insert delivered late does not bring
/// deleted points back.
pub fn tombstones_beat_older_points_only(a: &dyn Store, b: &dyn Store) {
    let (ua, pa) = setup(a, "alice");
    let fixes: Vec<Fix> = (0..1_000).map(|i| plain_fix(T0 + i * 1_000)).collect();
    a.insert_points(ua, pa, &fixes).unwrap();
    let early = a.replication_feed(Seq(0), usize::MAX, &FeedFilter::default()).unwrap();
    pull(a, b, 10_000);
    a.delete_points(&query(ua, None, Some(T0 + 100_000), Some(T0 + 200_000))).unwrap();
    // B writes into the range after A's delete (its clock has seen A's changes
    // only up to the insert, but it writes later in real time).
    std::thread::sleep(std::time::Duration::from_millis(5));
    let ub = user_id(b, "alice");
    let pb = b.ensure_device(ub, "phone").unwrap().id;
    let late = Fix { battery_percent: Some(3), ..plain_fix(T0 + 150_500) };
    b.insert_points(ub, pb, std::slice::from_ref(&late)).unwrap();
    pull(a, b, 10_000);
    pull(b, a, 10_000);
    let pa_points = all_points(a);
    assert_eq!(pa_points.len(), 1_000 - 100 + 1);
    assert_eq!(pa_points, all_points(b));
    assert_eq!(pa_points[&("alice".into(), "phone".into(), T0 + 150_500)], late);

    // The first page again, late: its points are older than the tombstone.
    let checkpoint = b.replication_checkpoint(&name_of(a)).unwrap().unwrap();
    let head = b.last_seq().unwrap();
    let out = b.replication_apply(&name_of(a), &early.entries, &checkpoint).unwrap();
    assert_eq!(out.points_added, 0, "no deleted point comes back");
    assert_eq!(b.last_seq().unwrap(), head);
    assert_eq!(all_points(b), pa_points);
}

/// The same (user, device, time) written with different content on both
/// sides: every replica ends with the newer version's content.
pub fn conflicting_points_resolve_to_the_newer_version(a: &dyn Store, b: &dyn Store) {
    let (ua, pa) = setup(a, "alice");
    a.insert_points(ua, pa, &[plain_fix(T0)]).unwrap();
    pull(a, b, 100);
    let (ub, pb) = (user_id(b, "alice"), b.ensure_device(user_id(b, "alice"), "phone").unwrap().id);
    let first = Fix { battery_percent: Some(10), ..plain_fix(T0 + 1_000) };
    let second = Fix { battery_percent: Some(20), ..plain_fix(T0 + 1_000) };
    a.insert_points(ua, pa, std::slice::from_ref(&first)).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    b.insert_points(ub, pb, std::slice::from_ref(&second)).unwrap();
    pull(a, b, 100);
    pull(b, a, 100);
    let key = ("alice".to_owned(), "phone".to_owned(), T0 + 1_000);
    assert_eq!(all_points(a)[&key], second, "the later write wins on A");
    assert_eq!(all_points(b)[&key], second, "and on B");
    assert_eq!((pull(a, b, 100), pull(b, a, 100)), (0, 0), "and nothing ping-pongs");
}

/// Pages of a random history (inserts, backfills, deletes, re-inserts)
/// delivered duplicated and in random order converge to the source.
pub fn any_delivery_order_converges(a: &dyn Store, b: &dyn Store) {
    let mut rng = Rng(0x5EED_0F0F);
    let (ua, pa) = setup(a, "alice");
    let pw = a.ensure_device(ua, "watch").unwrap().id;
    for step in 0..60 {
        let device = if rng.below(3) == 0 { pw } else { pa };
        match rng.below(5) {
            0 => {
                let from = T0 + rng.range(0, 400) * 1_000;
                let to = from + rng.range(1, 60) * 1_000;
                let dev = if rng.below(2) == 0 { Some(device) } else { None };
                a.delete_points(&query(ua, dev, Some(from), Some(to))).unwrap();
            }
            _ => {
                let start = rng.range(0, 400);
                let fixes: Vec<Fix> =
                    (0..rng.range(1, 40)).map(|i| rich_fix(T0 + (start + i) * 1_000, step * 100 + i as u64)).collect();
                a.insert_points(ua, device, &fixes).unwrap();
            }
        }
    }
    let mut pages = Vec::new();
    let mut after = Seq(0);
    loop {
        let page = a.replication_feed(after, 1 + rng.below(60) as usize, &FeedFilter::default()).unwrap();
        if page.next == after {
            break;
        }
        after = page.next;
        pages.push(page.entries);
    }
    let dupes: Vec<_> = pages.iter().filter(|_| rng.below(3) == 0).cloned().collect();
    pages.extend(dupes);
    rng.shuffle(&mut pages);
    let checkpoint = Checkpoint { epoch: a.epoch().unwrap(), seq: after };
    for page in &pages {
        b.replication_apply("shuffled", page, &checkpoint).unwrap();
    }
    assert_eq!(all_points(b), all_points(a));
    let head = b.last_seq().unwrap();
    for page in &pages {
        assert_eq!(b.replication_apply("shuffled", page, &checkpoint).unwrap().applied, 0);
    }
    assert_eq!(b.last_seq().unwrap(), head);
}

/// Password changes, device settings and derived-data edits replicate, and
/// the newer account change wins.
pub fn accounts_devices_and_edits_replicate(a: &dyn Store, b: &dyn Store) {
    let (ua, pa) = setup(a, "alice");
    a.set_password(ua, "$argon2id$new").unwrap();
    a.set_device_encryption_key(ua, pa, Some("s3cret")).unwrap();
    a.set_device_card(ua, pa, Some(&crate::DeviceCard { name: Some("Al".into()), face: None })).unwrap();
    let edit = DerivedBatch {
        delete: vec![],
        put: vec![DerivedRow {
            kind: DerivedKind(100),
            scope: DerivedScope::Device(pa),
            key: 3,
            value: b"Gym".to_vec(),
        }],
    };
    a.derived_write(ua, &edit, true).unwrap();
    pull(a, b, 100);
    let alice = b.user_by_name("alice").unwrap().unwrap();
    assert_eq!((alice.password_hash.as_str(), alice.is_admin), ("$argon2id$new", false));
    let pb = b.ensure_device(alice.id, "phone").unwrap().id;
    assert_eq!(b.device_encryption_key(alice.id, pb).unwrap().as_deref(), Some("s3cret"));
    assert_eq!(b.device_card(alice.id, pb).unwrap().unwrap().name.as_deref(), Some("Al"));
    let rows = b.derived_range(alice.id, &DerivedRange::all(DerivedKind(100), DerivedScope::Device(pb))).unwrap();
    assert_eq!((rows.len(), rows[0].key, rows[0].value.as_slice()), (1, 3, &b"Gym"[..]));
    // A newer password on B wins everywhere; the older one from A does not undo it.
    std::thread::sleep(std::time::Duration::from_millis(5));
    b.set_password(alice.id, "$argon2id$newer").unwrap();
    pull(b, a, 100);
    pull(a, b, 100);
    assert_eq!(a.user_by_name("alice").unwrap().unwrap().password_hash, "$argon2id$newer");
    assert_eq!(b.user_by_name("alice").unwrap().unwrap().password_hash, "$argon2id$newer");
    // Changes made on both sides before either heard of the other's: the
    // later one wins on both, even when the older one arrives last. (A local
    // change must leave its own version on the row, or any replicated
    // change would look newer than it.)
    std::thread::sleep(std::time::Duration::from_millis(5));
    a.set_password(ua, "$argon2id$from-a").unwrap();
    a.set_device_card(ua, pa, Some(&crate::DeviceCard { name: Some("A".into()), face: None })).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(5));
    b.set_password(alice.id, "$argon2id$from-b").unwrap();
    b.set_device_card(alice.id, pb, Some(&crate::DeviceCard { name: Some("B".into()), face: None })).unwrap();
    pull(a, b, 100);
    pull(b, a, 100);
    for (store, user, device) in [(a, ua, pa), (b, alice.id, pb)] {
        assert_eq!(store.user_by_id(user).unwrap().unwrap().password_hash, "$argon2id$from-b");
        assert_eq!(store.device_card(user, device).unwrap().unwrap().name.as_deref(), Some("B"));
    }
}
