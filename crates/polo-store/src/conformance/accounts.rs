//! Deleting accounts: [`Store::delete_user`] leaves nothing of the account
//! that the store API can reach (the backends' own tests also read every
//! table), touches no other account, never hands the account's ids out
//! again, and the deletion replicates without an older change bringing the
//! account back.

use polo_domain::{IntervalKind, Seq, Timestamp, UserId};

use super::replication::{all_points, pull, user_id};
use super::{T0, plain_fix, rich_fix, rich_interval, scan};
use crate::nodes::{ImportJobRecord, ImportJobStatus};
use crate::{
    ChangeKind, Checkpoint, DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope, FeedFilter, NewShare,
    PointQuery, PointSelection, ShareKind, Store, StoreError, TokenGrant,
};

/// What [`populate`] made for one user, to look for afterwards.
struct Made {
    user: UserId,
    phone: polo_domain::DeviceId,
    token_hash: [u8; 32],
    session_hash: [u8; 32],
    share_hash: [u8; 32],
}

/// A user called `name` with a bit of everything: devices, points, a range
/// delete, intervals, derived rows and an edit, a token, a session, a share,
/// an import job and a per-user cursor. `salt` keeps the hashes apart.
fn populate(store: &dyn Store, name: &str, salt: u8) -> Made {
    let user = store.create_user(name, "$argon2id$x", false).unwrap().id;
    let phone = store.ensure_device(user, "phone").unwrap().id;
    let watch = store.ensure_device(user, "watch").unwrap().id;
    let fixes: Vec<_> = (0..1_500u64).map(|i| rich_fix(T0 + i as i64 * 1_000, i)).collect();
    store.insert_points(user, phone, &fixes).unwrap();
    store.insert_points(user, watch, &fixes[..40]).unwrap();
    let range = PointQuery { user, device: Some(phone), from: Some(Timestamp(T0)), to: Some(Timestamp(T0 + 5_000)) };
    store.delete_selection(&PointSelection::from(range)).unwrap();
    store
        .insert_intervals(user, phone, &[rich_interval(IntervalKind::Visit, T0 + 10_000, T0 + 60_000, 0, "home")])
        .unwrap();
    let row =
        |kind, key| DerivedRow { kind: DerivedKind(kind), scope: DerivedScope::Device(phone), key, value: vec![1] };
    store.derived_write(user, &DerivedBatch { delete: vec![], put: vec![row(1, 10), row(2, 20)] }, false).unwrap();
    let edit = DerivedRow { kind: DerivedKind(7), scope: DerivedScope::User, key: 1, value: b"Home".to_vec() };
    store.derived_write(user, &DerivedBatch { delete: vec![], put: vec![edit] }, true).unwrap();
    let token_hash = [salt; 32];
    let token = store.create_token(user, phone, "phone", &token_hash, TokenGrant::default()).unwrap();
    let made_by = TokenGrant { created_by: Some(token.id), ..TokenGrant::default() };
    store.create_token(user, watch, "made by a token", &[salt ^ 0x80; 32], made_by).unwrap();
    let session_hash = [salt.wrapping_add(1); 32];
    store.create_session(&session_hash, user, "csrf", Timestamp(i64::MAX / 2)).unwrap();
    let share_hash = [salt.wrapping_add(2); 32];
    let share = NewShare {
        kind: ShareKind::Range,
        from: Some(Timestamp(T0)),
        to: Some(Timestamp(T0 + 100_000)),
        device: Some(phone),
        label: "walk".into(),
        expires: None,
        hide_places: false,
    };
    store.create_share(user, &share, &share_hash, None).unwrap();
    store.create_import_job(&job(user)).unwrap();
    store.set_derived_cursor(&format!("retention:{}:60000", user.0), Seq(7)).unwrap();
    store.set_derived_cursor(&format!("street-names:{}", user.0), Seq(3)).unwrap();
    let undo = crate::UndoRecord { points: [(phone, vec![plain_fix(T0 - 1)])].into(), ..Default::default() };
    let expires = Timestamp(i64::MAX);
    let undo = crate::KeptUndo {
        user,
        token_hash: undo_hash(salt),
        made: Timestamp(T0),
        expires,
        record: undo.encode().unwrap(),
    };
    store.keep_undo(&undo).unwrap();
    Made { user, phone, token_hash, session_hash, share_hash }
}

/// A user called `name` with a row in every per-user table the API can
/// write (devices, points, a tombstone, intervals, derived rows and an edit,
/// tokens, a session, a share, an import job, per-user cursors), for a
/// backend's own test that reads its tables after [`Store::delete_user`].
/// `salt` keeps the secrets' hashes of two such users apart.
pub fn a_user_with_everything(store: &dyn Store, name: &str, salt: u8) -> UserId {
    populate(store, name, salt).user
}

/// The token hash of [`populate`]'s undo record.
fn undo_hash(salt: u8) -> [u8; 32] {
    [salt.wrapping_add(100); 32]
}

fn job(user: UserId) -> ImportJobRecord {
    ImportJobRecord {
        user,
        id: "job-1".to_owned(),
        file_name: "Records.json".to_owned(),
        status: ImportJobStatus::Running,
        holder: "node-a".to_owned(),
        started: Timestamp(T0),
        heartbeat: Timestamp(T0),
        finished: None,
        bytes_total: 100,
        bytes_read: 10,
        points_added: 0,
        duplicates: 0,
        deleted_left_out: 0,
        intervals_added: 0,
        rejected: 0,
        error: None,
        report: None,
    }
}

/// Everything of `user` the API shows but location grants, for comparing
/// before and after.
fn everything(store: &dyn Store, made: &Made) -> String {
    let user = made.user;
    let devices = store.list_devices(user).unwrap();
    let derived: Vec<_> = devices
        .iter()
        .flat_map(|d| {
            (1..=2).flat_map(move |k| {
                store.derived_range(user, &DerivedRange::all(DerivedKind(k), DerivedScope::Device(d.id))).unwrap()
            })
        })
        .chain(store.derived_range(user, &DerivedRange::all(DerivedKind(7), DerivedScope::User)).unwrap())
        .collect();
    format!(
        "{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}\n{:?}",
        store.user_by_id(user).unwrap(),
        devices,
        scan(store, &PointQuery::user(user)),
        store.intervals(user, None, None, None).unwrap(),
        derived,
        store.list_tokens(user).unwrap(),
        store.session_by_hash(&made.session_hash, Timestamp(T0)).unwrap(),
        store.list_shares(user).unwrap(),
        store.import_jobs(user).unwrap(),
        store.derived_cursor(&format!("retention:{}:60000", user.0)).unwrap(),
    )
}

/// Deleting alice removes her account and everything it held — points,
/// devices, tokens (and those they made), sessions, shares, grants both
/// ways, intervals, tombstones, derived rows and edits, import jobs, her
/// per-user cursors and her change-log entries — in one change of its own,
/// and leaves bob exactly as he was.
pub fn deleting_a_user_leaves_nothing_of_it_and_touches_no_one_else(store: &dyn Store) {
    let alice = populate(store, "alice", 1);
    let bob = populate(store, "bob", 9);
    let bob_before = everything(store, &bob);
    let alice_before = everything(store, &alice);
    store.grant_location(alice.user, bob.user, None).unwrap();
    store.grant_location(bob.user, alice.user, None).unwrap();
    let carol = store.create_user("carol", "h", false).unwrap().id;
    store.grant_location(bob.user, carol, None).unwrap();
    let before_seq = store.last_seq().unwrap();

    let deleted = store.delete_user(alice.user).unwrap();
    assert_eq!(deleted.name, "alice");
    assert_eq!((deleted.points, deleted.devices), (1_500 - 5 + 40, 2));
    assert!(deleted.seq > before_seq);
    assert_eq!(store.last_seq().unwrap(), deleted.seq, "one change of its own");

    // Nothing of alice is left.
    assert_eq!(store.user_by_name("alice").unwrap(), None);
    assert_eq!(store.user_by_id(alice.user).unwrap(), None);
    assert!(store.list_devices(alice.user).unwrap().is_empty());
    assert_eq!(store.count_points(alice.user).unwrap(), 0);
    assert!(scan(store, &PointQuery::user(alice.user)).is_empty());
    assert!(store.intervals(alice.user, None, None, None).unwrap().is_empty());
    assert!(store.list_tokens(alice.user).unwrap().is_empty());
    assert_eq!(store.token_by_hash(&alice.token_hash).unwrap(), None);
    assert_eq!(store.session_by_hash(&alice.session_hash, Timestamp(T0)).unwrap(), None);
    assert!(store.list_shares(alice.user).unwrap().is_empty());
    assert_eq!(store.share_by_hash(&alice.share_hash, Timestamp(T0)).unwrap(), None);
    assert!(store.location_grants_by(alice.user).unwrap().is_empty());
    assert!(store.location_grants_to(alice.user).unwrap().is_empty());
    assert!(store.import_jobs(alice.user).unwrap().is_empty());
    assert_eq!(store.derived_cursor(&format!("retention:{}:60000", alice.user.0)).unwrap(), Seq(0));
    assert_eq!(store.derived_cursor(&format!("street-names:{}", alice.user.0)).unwrap(), Seq(0));
    assert_eq!(store.take_undo(alice.user, &undo_hash(1), Timestamp(T0)).unwrap(), None, "her undo went");
    assert_ne!(everything(store, &alice), alice_before);
    for scope in [DerivedScope::User, DerivedScope::Device(alice.phone)] {
        for kind in [1, 2, 7] {
            assert!(store.derived_range(alice.user, &DerivedRange::all(DerivedKind(kind), scope)).unwrap().is_empty());
        }
    }
    let log = store.changes_since(Seq(0), 10_000).unwrap();
    let hers: Vec<_> = log.iter().filter(|c| c.user == alice.user).map(|c| (c.seq, c.kind)).collect();
    assert_eq!(hers, [(deleted.seq, ChangeKind::AccountDeleted)], "her log is the deletion alone");
    assert_eq!(log.iter().filter(|c| c.user == bob.user).count(), 8, "bob's changes stay: {log:?}");

    // Bob is as he was, but for alice's grant to him.
    let grants_to_bob: Vec<_> = store.location_grants_to(bob.user).unwrap();
    assert!(grants_to_bob.is_empty(), "alice's grant went with her: {grants_to_bob:?}");
    let owners: Vec<_> = store.location_grants_by(bob.user).unwrap().iter().map(|g| g.viewer).collect();
    assert_eq!(owners, [carol], "bob's grant to alice went, his grant to carol stays");
    assert_eq!(store.count_points(bob.user).unwrap(), 1_500 - 5 + 40);
    assert_eq!(store.list_tokens(bob.user).unwrap().len(), 2);
    assert!(store.session_by_hash(&bob.session_hash, Timestamp(T0)).unwrap().is_some());
    assert!(store.share_by_hash(&bob.share_hash, Timestamp(T0)).unwrap().is_some());
    assert_eq!(store.import_jobs(bob.user).unwrap().len(), 1);
    assert_eq!(store.derived_cursor(&format!("retention:{}:60000", bob.user.0)).unwrap(), Seq(7));
    assert_eq!(everything(store, &bob), bob_before, "bob is untouched");
    assert!(store.token_by_hash(&bob.token_hash).unwrap().is_some(), "his token still works");
    assert!(store.take_undo(bob.user, &undo_hash(9), Timestamp(T0)).unwrap().is_some(), "his undo stays");

    // An instance keeps an administrator.
    let root = store.create_user("root", "h", true).unwrap().id;
    assert!(matches!(store.delete_user(root), Err(StoreError::Refused(_))), "the only administrator stays");
    assert!(store.user_by_id(root).unwrap().is_some());
    let second = store.create_user("second", "h", true).unwrap().id;
    store.delete_user(root).unwrap();
    assert!(matches!(store.delete_user(second), Err(StoreError::Refused(_))));

    // Gone is gone.
    assert!(matches!(store.delete_user(alice.user), Err(StoreError::NotFound(_))));
    assert!(matches!(store.delete_user(UserId(987_654_321)), Err(StoreError::NotFound(_))));
    // The name is free again, for a new account that starts empty.
    let again = store.create_user("alice", "$argon2id$new", false).unwrap();
    assert_ne!(again.id, alice.user, "ids are never reused");
    assert!(store.list_devices(again.id).unwrap().is_empty());
    assert_eq!(store.count_points(again.id).unwrap(), 0);
}

/// Deleting the newest user and device never hands their ids out again,
/// so nothing keyed by an old id can apply to a new account.
pub fn deleted_ids_are_never_reused(store: &dyn Store) {
    let keep = store.create_user("keep", "h", false).unwrap().id;
    store.ensure_device(keep, "phone").unwrap();
    let newest = store.create_user("newest", "h", false).unwrap().id;
    let device = store.ensure_device(newest, "phone").unwrap().id;
    store.insert_points(newest, device, &[plain_fix(T0)]).unwrap();
    store.delete_user(newest).unwrap();
    let next = store.create_user("next", "h", false).unwrap().id;
    assert_ne!(next, newest);
    assert_ne!(store.ensure_device(next, "phone").unwrap().id, device);
    assert_ne!(store.ensure_device(keep, "watch").unwrap().id, device);
}

/// A deletion replicates; a replay of the account's older changes (a late
/// peer, a page sent again) does not bring it back, not even into a new
/// account of the same name; and the new account replicates as usual.
pub fn account_deletions_replicate_and_older_changes_do_not_bring_them_back(a: &dyn Store, b: &dyn Store) {
    let alice = populate(a, "alice", 1);
    let bob = populate(a, "bob", 9);
    pull(a, b, 500);
    assert_eq!(b.count_points(user_id(b, "alice")).unwrap(), 1_500 - 5 + 40);
    // Everything alice did so far, as a late peer would send it again.
    let old = a.replication_feed(Seq(0), 1_000_000, &FeedFilter::default()).unwrap();
    assert!(old.entries.iter().any(|e| e.change.user() == "alice"));

    a.delete_user(alice.user).unwrap();
    assert!(pull(a, b, 500) >= 1);
    assert_eq!(b.user_by_name("alice").unwrap(), None, "the deletion replicated");
    assert_eq!(b.count_points(user_id(b, "bob")).unwrap(), a.count_points(bob.user).unwrap());
    assert_eq!(pull(b, a, 500), 0, "nothing comes back");
    assert_eq!(pull(a, b, 500), 0, "and it goes quiet");

    let replay = |target: &dyn Store| {
        let checkpoint = Checkpoint { epoch: a.epoch().unwrap(), seq: old.next };
        target.replication_apply("replay", &old.entries, &checkpoint).unwrap()
    };
    for target in [a, b] {
        let outcome = replay(target);
        assert_eq!(target.user_by_name("alice").unwrap(), None, "older changes do not bring alice back");
        assert_eq!(outcome.points_added, 0);
    }

    // A new alice on b: a fresh account, which replicates; the replay leaves it alone.
    let new = b.create_user("alice", "$argon2id$new", false).unwrap().id;
    let phone = b.ensure_device(new, "phone").unwrap().id;
    b.insert_points(new, phone, &[plain_fix(T0 + 99_000_000)]).unwrap();
    pull(b, a, 500);
    for target in [a, b] {
        replay(target);
        let user = target.user_by_name("alice").unwrap().expect("the new alice");
        assert_eq!(user.password_hash, "$argon2id$new");
        assert_eq!(target.count_points(user.id).unwrap(), 1, "only the new account's point");
    }
    assert_eq!(all_points(a), all_points(b));
    assert_eq!(pull(a, b, 500), 0);
    assert_eq!(pull(b, a, 500), 0);
}

/// B writes to alice and changes her password while A deletes her; after
/// pulls both ways both hold the same: the deletion took the data, the
/// newer password survives as an empty account on both.
pub fn an_account_deleted_while_a_peer_wrote_to_it_converges(a: &dyn Store, b: &dyn Store) {
    let alice = populate(a, "alice", 1);
    pull(a, b, 500);
    let on_b = user_id(b, "alice");
    let phone = b.ensure_device(on_b, "phone").unwrap().id;
    // Written on b before the deletion, so older than it.
    b.insert_points(on_b, phone, &[plain_fix(T0 + 50_000_000)]).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3));
    a.delete_user(alice.user).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3));
    // Written on b after it, but before b heard of it.
    b.insert_points(on_b, phone, &[plain_fix(T0 + 60_000_000)]).unwrap();
    pull(b, a, 7);
    assert_eq!(a.user_by_name("alice").unwrap(), None, "no account comes back from points");
    pull(a, b, 7);
    assert_eq!(b.user_by_name("alice").unwrap(), None, "b deleted it too");
    assert_eq!(all_points(a), all_points(b));

    // Now a password change on b that is newer than a later deletion on a.
    let again = a.create_user("alice", "$argon2id$2", false).unwrap().id;
    let phone = a.ensure_device(again, "phone").unwrap().id;
    a.insert_points(again, phone, &[plain_fix(T0)]).unwrap();
    pull(a, b, 7);
    a.delete_user(again).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(3));
    b.set_password(user_id(b, "alice"), "$argon2id$3").unwrap();
    pull(a, b, 7);
    pull(b, a, 7);
    pull(a, b, 7);
    let (on_a, on_b) = (a.user_by_name("alice").unwrap(), b.user_by_name("alice").unwrap());
    assert_eq!(on_a.as_ref().map(|u| u.password_hash.as_str()), Some("$argon2id$3"), "the newer password wins");
    assert_eq!(on_b.as_ref().map(|u| u.password_hash.as_str()), Some("$argon2id$3"));
    assert_eq!(all_points(a), all_points(b));
    assert_eq!(b.count_points(on_b.unwrap().id).unwrap(), 0, "the deletion took her points on both");
    assert_eq!(pull(a, b, 7), 0);
    assert_eq!(pull(b, a, 7), 0);
}
