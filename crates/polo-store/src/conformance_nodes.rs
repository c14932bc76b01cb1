//! Conformance tests for what nodes sharing a store coordinate through it
//! ([`crate::nodes`]): leases, import job records, failure counters and
//! live messages.

// Test code: panicking on unexpected results is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use std::time::Duration;

use polo_domain::{Timestamp, UserId};

use crate::{ImportJobRecord, ImportJobStatus, LiveSubscription, Store, StoreError};

/// The tests of this module, by name.
pub const ALL: &[(&str, crate::conformance::Test)] = &[
    ("leases_are_taken_renewed_released_and_expire", leases_are_taken_renewed_released_and_expire),
    ("import_jobs_round_trip_and_finish_once", import_jobs_round_trip_and_finish_once),
    (
        "stale_import_jobs_are_failed_but_not_the_spared_holders",
        stale_import_jobs_are_failed_but_not_the_spared_holders,
    ),
    ("failure_counters_count_forget_and_clear", failure_counters_count_forget_and_clear),
    ("live_messages_are_local_only_or_never_echoed", live_messages_are_local_only_or_never_echoed),
];

/// One holder at a time; renewing keeps it; another takes it once expired
/// or released; leases of other names are independent.
pub fn leases_are_taken_renewed_released_and_expire(store: &dyn Store) {
    let long = Duration::from_secs(60);
    assert!(store.try_lease("timeline", "node-a", long).unwrap(), "a free lease is taken");
    assert!(!store.try_lease("timeline", "node-b", long).unwrap(), "a held lease is not");
    assert!(store.try_lease("timeline", "node-a", long).unwrap(), "the holder renews");
    assert!(store.try_lease("replication:x", "node-b", long).unwrap(), "other names are independent");
    assert!(!store.release_lease("timeline", "node-b").unwrap(), "only the holder releases");
    assert!(store.release_lease("timeline", "node-a").unwrap());
    assert!(!store.release_lease("timeline", "node-a").unwrap(), "released once");
    assert!(store.try_lease("timeline", "node-b", Duration::from_millis(200)).unwrap(), "a released lease is free");
    assert!(!store.try_lease("timeline", "node-a", long).unwrap());
    std::thread::sleep(Duration::from_millis(400));
    assert!(store.try_lease("timeline", "node-a", long).unwrap(), "an expired lease is taken over");
    assert!(!store.try_lease("timeline", "node-b", long).unwrap(), "and the old holder lost it");
}

fn job(user: UserId, id: &str, started: i64) -> ImportJobRecord {
    ImportJobRecord {
        user,
        id: id.to_owned(),
        file_name: "Records.json".to_owned(),
        status: ImportJobStatus::Queued,
        holder: "node-a".to_owned(),
        started: Timestamp(started),
        heartbeat: Timestamp(started),
        finished: None,
        bytes_total: 1 << 40,
        bytes_read: 0,
        points_added: 0,
        duplicates: 0,
        deleted_left_out: 0,
        intervals_added: 0,
        rejected: 0,
        error: None,
        report: None,
    }
}

/// Records come back as written, per user, newest first; progress is
/// written while the job runs, and a finished job never changes again.
pub fn import_jobs_round_trip_and_finish_once(store: &dyn Store) {
    let alice = store.create_user("alice", "h", false).unwrap().id;
    let bob = store.create_user("bob", "h", false).unwrap().id;
    let first = job(alice, "first", 1_700_000_000_000);
    store.create_import_job(&first).unwrap();
    assert!(matches!(store.create_import_job(&first), Err(StoreError::AlreadyExists(_))));
    store.create_import_job(&job(bob, "first", 1_700_000_000_000)).unwrap();
    let second = job(alice, "second", 1_700_000_001_000);
    store.create_import_job(&second).unwrap();
    assert_eq!(store.import_job(alice, "first").unwrap().as_ref(), Some(&first));
    assert_eq!(store.import_job(alice, "nope").unwrap(), None);
    let ids: Vec<String> = store.import_jobs(alice).unwrap().into_iter().map(|j| j.id).collect();
    assert_eq!(ids, ["second", "first"], "newest first");

    let running = ImportJobRecord {
        status: ImportJobStatus::Running,
        heartbeat: Timestamp(1_700_000_002_000),
        bytes_read: 1 << 39,
        points_added: 4_000_000_000,
        duplicates: 3,
        intervals_added: 2,
        rejected: 1,
        ..first.clone()
    };
    assert!(store.update_import_job(&running).unwrap());
    assert_eq!(store.import_job(alice, "first").unwrap().as_ref(), Some(&running));
    let done = ImportJobRecord {
        status: ImportJobStatus::Done,
        finished: Some(Timestamp(1_700_000_003_000)),
        deleted_left_out: 5,
        report: Some("[{\"path\":\"Records.json\"}]".to_owned()),
        error: Some("one entry: broken".to_owned()),
        ..running.clone()
    };
    assert!(store.update_import_job(&done).unwrap());
    assert_eq!(store.import_job(alice, "first").unwrap().as_ref(), Some(&done));
    let late = ImportJobRecord { status: ImportJobStatus::Running, ..running };
    assert!(!store.update_import_job(&late).unwrap(), "a finished job is not written again");
    assert_eq!(store.import_job(alice, "first").unwrap().as_ref(), Some(&done));
    assert_eq!(store.import_job(bob, "first").unwrap().unwrap().status, ImportJobStatus::Queued, "per user");

    assert!(store.delete_import_job(alice, "first").unwrap());
    assert!(!store.delete_import_job(alice, "first").unwrap());
    assert!(!store.update_import_job(&done).unwrap(), "a deleted job is not written");
    assert_eq!(store.import_jobs(alice).unwrap().len(), 1);
    assert_eq!(store.import_jobs(bob).unwrap().len(), 1);
}

/// Only unfinished jobs with an old heartbeat are failed, never the spared
/// holder's, and with the reason and time given.
pub fn stale_import_jobs_are_failed_but_not_the_spared_holders(store: &dyn Store) {
    let alice = store.create_user("alice", "h", false).unwrap().id;
    let bob = store.create_user("bob", "h", false).unwrap().id;
    let with = |user, id: &str, holder: &str, status, heartbeat| ImportJobRecord {
        holder: holder.to_owned(),
        status,
        heartbeat: Timestamp(heartbeat),
        ..job(user, id, 1000)
    };
    let dead = with(alice, "dead", "node-a", ImportJobStatus::Running, 1000);
    let queued_dead = with(bob, "queued", "node-a", ImportJobStatus::Queued, 1500);
    let mine = with(alice, "mine", "node-b", ImportJobStatus::Running, 1000);
    let alive = with(bob, "alive", "node-c", ImportJobStatus::Running, 5000);
    let done =
        ImportJobRecord { finished: Some(Timestamp(900)), ..with(alice, "done", "node-a", ImportJobStatus::Done, 0) };
    for job in [&dead, &queued_dead, &mine, &alive, &done] {
        store.create_import_job(job).unwrap();
    }
    let failed = store.fail_stale_import_jobs(Timestamp(2000), "node-b", "its node stopped", Timestamp(9000)).unwrap();
    assert_eq!(failed, 2);
    for (user, id) in [(alice, "dead"), (bob, "queued")] {
        let job = store.import_job(user, id).unwrap().unwrap();
        assert_eq!(job.status, ImportJobStatus::Failed, "{id}");
        assert_eq!(job.error.as_deref(), Some("its node stopped"));
        assert_eq!(job.finished, Some(Timestamp(9000)));
    }
    assert_eq!(store.import_job(alice, "mine").unwrap().as_ref(), Some(&mine), "the spared holder's job");
    assert_eq!(store.import_job(bob, "alive").unwrap().as_ref(), Some(&alive), "a fresh heartbeat");
    assert_eq!(store.import_job(alice, "done").unwrap().as_ref(), Some(&done), "finished jobs stay as they are");
    // Everything but one's own: what a single server does with a previous run's jobs.
    let failed = store.fail_stale_import_jobs(Timestamp(i64::MAX), "node-b", "stopped", Timestamp(9000)).unwrap();
    assert_eq!(failed, 1);
    assert_eq!(store.import_job(bob, "alive").unwrap().unwrap().status, ImportJobStatus::Failed);
    assert_eq!(store.import_job(alice, "mine").unwrap().unwrap().status, ImportJobStatus::Running);
}

/// Failures add up per key, start again after `forget_after`, and are
/// cleared and pruned.
pub fn failure_counters_count_forget_and_clear(store: &dyn Store) {
    let minute = Duration::from_secs(60);
    let t = 1_700_000_000_000;
    assert_eq!(store.count_failure("pw:192.0.2.1", Timestamp(t), minute).unwrap().failures, 1);
    let second = store.count_failure("pw:192.0.2.1", Timestamp(t + 1000), minute).unwrap();
    assert_eq!((second.failures, second.last_failure), (2, Timestamp(t + 1000)));
    // A node whose clock is a little behind does not move the last failure back.
    let behind = store.count_failure("pw:192.0.2.1", Timestamp(t + 500), minute).unwrap();
    assert_eq!((behind.failures, behind.last_failure), (3, Timestamp(t + 1000)));
    assert_eq!(store.count_failure("tok:192.0.2.1", Timestamp(t), minute).unwrap().failures, 1);
    let mut counts = store.failure_counts(&["pw:192.0.2.1", "tok:192.0.2.1", "pw:unknown"]).unwrap();
    counts.sort_by(|a, b| a.0.cmp(&b.0));
    let counts: Vec<(&str, u32)> = counts.iter().map(|(k, c)| (k.as_str(), c.failures)).collect();
    assert_eq!(counts, [("pw:192.0.2.1", 3), ("tok:192.0.2.1", 1)]);
    assert!(store.failure_counts(&[]).unwrap().is_empty());
    // A minute after the last failure, the key starts afresh.
    let fresh = store.count_failure("pw:192.0.2.1", Timestamp(t + 61_000), minute).unwrap();
    assert_eq!((fresh.failures, fresh.last_failure), (1, Timestamp(t + 61_000)));
    store.clear_failures("pw:192.0.2.1").unwrap();
    store.clear_failures("pw:never").unwrap();
    assert_eq!(store.failure_counts(&["pw:192.0.2.1"]).unwrap(), []);
    assert_eq!(store.forget_failures_before(Timestamp(t)).unwrap(), 0, "the bound is exclusive");
    assert_eq!(store.forget_failures_before(Timestamp(t + 1)).unwrap(), 1);
    assert_eq!(store.failure_counts(&["tok:192.0.2.1"]).unwrap(), []);
}

/// A store either says no other node shares it, or hands out a receiver
/// that never returns the store's own messages.
pub fn live_messages_are_local_only_or_never_echoed(store: &dyn Store) {
    match store.subscribe_live().unwrap() {
        LiveSubscription::LocalOnly => {
            assert!(!store.is_shared(), "a shared store must carry live messages to the other nodes");
            store.publish_live(&["nobody hears this".to_owned()]).unwrap();
        }
        LiveSubscription::Shared(mut receiver) => {
            assert!(store.is_shared());
            store.publish_live(&["one".to_owned(), "two".to_owned()]).unwrap();
            let heard = receiver.wait(Duration::from_millis(300)).unwrap();
            assert!(heard.is_empty(), "a node's own messages are not echoed to it: {heard:?}");
            let too_long = "x".repeat(crate::nodes::MAX_LIVE_MESSAGE + 1);
            assert!(store.publish_live(&[too_long]).is_err(), "over-long messages are refused");
        }
    }
}
