//! Several stores on one database, as several `polo serve` nodes open it:
//! live messages cross between them (and never come back to their sender),
//! one node at a time wins a lease, and failure counters add up exactly
//! under concurrent failures.

use std::sync::Arc;
use std::time::{Duration, Instant};

use polo_domain::Timestamp;
use polo_store::{LiveSubscription, Store};
use polo_store_postgres::testing::TestDatabase;

fn receiver(store: &dyn Store) -> Box<dyn polo_store::LiveReceiver> {
    match store.subscribe_live().unwrap() {
        LiveSubscription::Shared(receiver) => receiver,
        LiveSubscription::LocalOnly => panic!("a PostgreSQL store is shared by nodes"),
    }
}

/// Waits up to a second for `count` messages.
fn heard(receiver: &mut dyn polo_store::LiveReceiver, count: usize) -> Vec<String> {
    let deadline = Instant::now() + Duration::from_secs(1);
    let mut all = Vec::new();
    while all.len() < count && Instant::now() < deadline {
        all.extend(receiver.wait(Duration::from_millis(100)).unwrap());
    }
    all
}

#[test]
fn live_messages_reach_the_other_nodes_within_a_second_and_not_their_sender() {
    let Some(db) = TestDatabase::create() else { return };
    let (a, b) = (db.open(), db.open());
    let (mut at_a, mut at_b) = (receiver(&a), receiver(&b));
    let other = TestDatabase::create().unwrap();
    let elsewhere = other.open();
    let mut at_elsewhere = receiver(&elsewhere);

    a.publish_live(&["p|1".to_owned(), "p|2".to_owned()]).unwrap();
    b.publish_live(&["g|3".to_owned()]).unwrap();
    assert_eq!(heard(&mut *at_b, 2), ["p|1", "p|2"], "in order, sender id taken off");
    assert_eq!(heard(&mut *at_a, 1), ["g|3"]);
    assert!(at_a.wait(Duration::from_millis(200)).unwrap().is_empty(), "no echo of a's own messages");
    assert!(at_elsewhere.wait(Duration::from_millis(200)).unwrap().is_empty(), "another schema hears nothing");
    drop((at_a, at_b, at_elsewhere, a, b, elsewhere));
}

#[test]
fn racing_nodes_take_an_expired_lease_once() {
    let Some(db) = TestDatabase::create() else { return };
    let stores: Vec<Arc<dyn Store>> = (0..4).map(|_| Arc::new(db.open()) as Arc<dyn Store>).collect();
    assert!(stores[0].try_lease("timeline", "dead", Duration::from_millis(100)).unwrap());
    std::thread::sleep(Duration::from_millis(200));
    let winners: Vec<bool> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..16)
            .map(|i| {
                let store = Arc::clone(&stores[i % stores.len()]);
                s.spawn(move || store.try_lease("timeline", &format!("node-{i}"), Duration::from_secs(60)).unwrap())
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    assert_eq!(winners.iter().filter(|&&w| w).count(), 1, "{winners:?}");
    drop(stores);
}

#[test]
fn concurrent_failures_on_several_nodes_all_count() {
    let Some(db) = TestDatabase::create() else { return };
    let stores: Vec<Arc<dyn Store>> = (0..3).map(|_| Arc::new(db.open()) as Arc<dyn Store>).collect();
    std::thread::scope(|s| {
        for i in 0..12 {
            let store = Arc::clone(&stores[i % stores.len()]);
            s.spawn(move || {
                for j in 0..10 {
                    store.count_failure("pw:192.0.2.1", Timestamp(1_000 + j), Duration::from_secs(900)).unwrap();
                }
            });
        }
    });
    let counts = stores[1].failure_counts(&["pw:192.0.2.1"]).unwrap();
    assert_eq!(counts[0].1.failures, 120);
    drop(stores);
}
