//! Live ingest through several stores on one database, as several
//! `polo serve` nodes write it: concurrent writers of one device lose and
//! double nothing, and each store's tail cache follows what the others
//! (and deletes) did to the device.

use std::collections::BTreeMap;
use std::ops::ControlFlow;
use std::sync::Arc;

use polo_domain::{Coord, DeviceId, Fix, SourceFormat, Timestamp, UserId};
use polo_store::{PointGroup, PointQuery, Store, WriteOutcome};
use polo_store_postgres::PostgresStore;
use polo_store_postgres::testing::TestDatabase;

/// A day ago, in ms: old enough for a tombstone made now to bury it.
fn base() -> i64 {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap();
    i64::try_from(now.as_millis()).unwrap() - 86_400_000
}

fn fix(t: i64) -> Fix {
    let lat = 52.0 + (t % 1000) as f64 / 10_000.0;
    Fix::new(Timestamp(t), Coord::from_degrees(lat, 13.4).unwrap(), SourceFormat::Owntracks)
}

/// Writes `fixes` of `device` as live ingest does, alone in its commit.
fn ingest(store: &dyn Store, user: UserId, device: DeviceId, times: &[i64]) -> WriteOutcome {
    let fixes: Vec<Fix> = times.iter().map(|&t| fix(t)).collect();
    let mut groups = [PointGroup::new(user, device, &fixes)];
    store.insert_point_groups(&mut groups, &mut |_, _| {}).unwrap();
    let [group] = groups;
    group.outcome.unwrap().unwrap()
}

/// Every stored time of `device`, with how often it is stored.
fn stored(store: &dyn Store, user: UserId, device: DeviceId) -> BTreeMap<i64, usize> {
    let mut times = BTreeMap::new();
    let query = PointQuery { device: Some(device), ..PointQuery::user(user) };
    store
        .scan_points(&query, &mut |p| {
            *times.entry(p.fix.time.0).or_default() += 1;
            ControlFlow::Continue(())
        })
        .unwrap();
    times
}

fn once(times: impl IntoIterator<Item = i64>) -> BTreeMap<i64, usize> {
    times.into_iter().map(|t| (t, 1)).collect()
}

#[test]
fn two_stores_writing_one_device_at_once_store_every_point_exactly_once() {
    let Some(db) = TestDatabase::create() else { return };
    let nodes: Vec<Arc<PostgresStore>> = (0..2).map(|_| Arc::new(db.open())).collect();
    let user = nodes[0].create_user("alice", "x", false).unwrap().id;
    let device = nodes[0].ensure_device(user, "phone").unwrap().id;
    let t0 = base();
    // Four writers per node, each sending its own times one commit at a
    // time, and every time a second time through the other node (a phone
    // retrying through the load balancer).
    let (writers, per_writer) = (8_i64, 60_i64);
    let added: i64 = std::thread::scope(|s| {
        let handles: Vec<_> = (0..writers)
            .map(|w| {
                let (mine, other) = (Arc::clone(&nodes[(w % 2) as usize]), Arc::clone(&nodes[((w + 1) % 2) as usize]));
                s.spawn(move || {
                    let mut added = 0;
                    for i in 0..per_writer {
                        let t = t0 + (i * writers + w) * 1000;
                        added += ingest(&*mine, user, device, &[t]).added;
                        added += ingest(&*other, user, device, &[t]).added;
                    }
                    i64::try_from(added).unwrap()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    let expected = once((0..writers * per_writer).map(|k| t0 + k * 1000));
    assert_eq!(added, writers * per_writer, "each time reported added once, by one of its two writes");
    assert_eq!(stored(&*nodes[0], user, device), expected);
    assert_eq!(stored(&*nodes[1], user, device), expected);
    let stats: Vec<_> = nodes.iter().map(|n| n.tail_cache_stats()).collect();
    assert!(stats.iter().all(|s| s.planned_from_cache + s.read > 0), "{stats:?}");
}

#[test]
fn a_cached_tail_follows_what_another_store_and_deletes_did() {
    let Some(db) = TestDatabase::create() else { return };
    let (a, b) = (db.open(), db.open());
    let user = a.create_user("bob", "x", false).unwrap().id;
    let device = a.ensure_device(user, "phone").unwrap().id;
    let start = base() / 1000 * 1000;
    let t = |i: i64| start + i * 1000;

    // A writes the tail and keeps it; the next write of A is planned from it.
    assert_eq!(ingest(&a, user, device, &[t(1), t(2), t(3)]).added, 3);
    assert_eq!(ingest(&a, user, device, &[t(4)]).added, 1);
    let before = a.tail_cache_stats();
    assert!(before.planned_from_cache >= 1, "{before:?}");

    // B appends to the same tail: A's cache is behind, its guard must notice.
    assert_eq!(ingest(&b, user, device, &[t(5), t(6)]).added, 2);
    let outcome = ingest(&a, user, device, &[t(6), t(7)]);
    assert_eq!((outcome.added, outcome.duplicates), (1, 1), "B's t(6) is seen as stored");
    assert_eq!(a.tail_cache_stats().stale, before.stale + 1);
    assert_eq!(stored(&a, user, device), once((1..=7).map(t)));

    // B deletes a range: A must see the tombstone (and the shorter tail).
    b.delete_points(&PointQuery {
        device: Some(device),
        from: Some(Timestamp(t(3))),
        to: Some(Timestamp(t(6))),
        ..PointQuery::user(user)
    })
    .unwrap();
    let outcome = ingest(&a, user, device, &[t(4), t(8)]);
    assert_eq!((outcome.added, outcome.suppressed), (1, 1), "t(4) is buried by B's delete");
    assert_eq!(stored(&a, user, device), once([1, 2, 6, 7, 8].map(t)));

    // A's own writes keep it planning from the cache.
    let hits = a.tail_cache_stats().planned_from_cache;
    for i in 9..20 {
        assert_eq!(ingest(&a, user, device, &[t(i)]).added, 1);
    }
    assert!(a.tail_cache_stats().planned_from_cache >= hits + 10, "{:?}", a.tail_cache_stats());

    // Past a live tail's size the tail is sealed and a new one starts; the
    // cache follows that too, and both stores read the same points.
    for i in 20..80 {
        let node: &dyn Store = if i % 7 == 0 { &b } else { &a };
        assert_eq!(ingest(node, user, device, &[t(i)]).added, 1, "t({i})");
    }
    let expected = once([1, 2, 6, 7].into_iter().chain(8..80).map(t));
    assert_eq!(stored(&a, user, device), expected);
    assert_eq!(stored(&b, user, device), expected);

    // B deletes everything of the device; A's next point is the only one left.
    b.delete_points(&PointQuery { device: Some(device), ..PointQuery::user(user) }).unwrap();
    let later = base() + 86_400_000 + 60_000; // a fix younger than the delete
    assert_eq!(ingest(&a, user, device, &[later]).added, 1);
    assert_eq!(stored(&b, user, device), once([later]));
}

#[test]
fn a_cached_device_deleted_with_its_account_is_refused() {
    let Some(db) = TestDatabase::create() else { return };
    let (a, b) = (db.open(), db.open());
    let admin = a.create_user("admin", "x", true).unwrap().id;
    let user = a.create_user("carol", "x", false).unwrap().id;
    let device = a.ensure_device(user, "phone").unwrap().id;
    let other = a.ensure_device(admin, "phone").unwrap().id;
    let t0 = base();
    assert_eq!(ingest(&a, user, device, &[t0, t0 + 1000]).added, 2);
    b.delete_user(user).unwrap();
    // One commit with a live phone and the deleted one: only the deleted one fails.
    let (gone, alive) = ([fix(t0 + 2000)], [fix(t0)]);
    let mut groups = [PointGroup::new(user, device, &gone), PointGroup::new(admin, other, &alive)];
    a.insert_point_groups(&mut groups, &mut |_, _| {}).unwrap();
    let [gone, alive] = groups;
    assert!(gone.outcome.unwrap().is_err(), "the device went with its account");
    assert_eq!(alive.outcome.unwrap().unwrap().added, 1);
}
