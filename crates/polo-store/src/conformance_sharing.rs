//! The conformance suite of the sharing methods: share links, location
//! grants and instance settings. Run with the rest by
//! [`conformance_tests!`](crate::conformance_tests) and
//! [`run_all`](crate::conformance::run_all).

// Test code: panicking on unexpected results is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use polo_domain::{DeviceId, Timestamp, UserId};

use crate::{NewShare, ShareKind, Store, StoreError};

const T0: i64 = 1_600_000_000_000;

/// Every sharing test, by name.
pub const ALL: &[(&str, crate::conformance::Test)] = &[
    ("shares_create_lookup_revoke", shares_create_lookup_revoke),
    ("shares_expire_and_are_scoped", shares_expire_and_are_scoped),
    ("location_grants_both_ways", location_grants_both_ways),
    ("instance_settings_set_and_clear", instance_settings_set_and_clear),
];

fn range_share(device: Option<DeviceId>, expires: Option<i64>) -> NewShare {
    NewShare {
        kind: ShareKind::Range,
        from: Some(Timestamp(T0)),
        to: Some(Timestamp(T0 + 3_600_000)),
        device,
        label: "Sunday walk".to_owned(),
        expires: expires.map(Timestamp),
    }
}

/// Shares: stored by hash with every field, found by hash with their owner
/// while active, listed and revoked only by their owner, and absent from the
/// change log.
pub fn shares_create_lookup_revoke(store: &dyn Store) {
    let alice = store.create_user("alice", "h", false).unwrap();
    let bob = store.create_user("bob", "h", false).unwrap();
    let phone = store.ensure_device(alice.id, "phone").unwrap().id;
    let seq = store.last_seq().unwrap();
    let (h1, h2, h3) = ([1u8; 32], [2u8; 32], [3u8; 32]);

    let spec = range_share(Some(phone), None);
    let s1 = store.create_share(alice.id, &spec, &h1).unwrap();
    assert_eq!((s1.user, &s1.spec, s1.device_name.as_deref(), s1.revoked), (alice.id, &spec, Some("phone"), None));
    assert!(s1.created.0 > T0);
    let live = NewShare {
        kind: ShareKind::Live,
        from: None,
        to: None,
        device: None,
        label: String::new(),
        expires: Some(Timestamp(i64::MAX)),
    };
    let s2 = store.create_share(alice.id, &live, &h2).unwrap();
    assert_ne!(s1.id, s2.id);
    assert_eq!((s2.spec.clone(), s2.device_name.clone()), (live, None));
    let s3 = store.create_share(bob.id, &range_share(None, None), &h3).unwrap();

    assert!(matches!(store.create_share(alice.id, &spec, &h1), Err(StoreError::AlreadyExists(_))));
    assert!(matches!(
        store.create_share(bob.id, &range_share(Some(phone), None), &[4; 32]),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.create_share(UserId(9_999_999), &spec, &[4; 32]), Err(StoreError::NotFound(_))));

    let now = Timestamp(T0);
    let (found, owner) = store.share_by_hash(&h1, now).unwrap().unwrap();
    assert_eq!((found, owner), (s1.clone(), alice.clone()));
    assert_eq!(store.share_by_hash(&h3, now).unwrap().unwrap().1, bob);
    assert_eq!(store.share_by_hash(&[9; 32], now).unwrap(), None);
    assert_eq!(store.list_shares(alice.id).unwrap().iter().map(|s| s.id).collect::<Vec<_>>(), [s1.id, s2.id]);
    assert_eq!(store.list_shares(bob.id).unwrap(), vec![s3]);

    // Revoking is scoped to the owner; a revoked link is not found, but stays listed.
    assert!(!store.revoke_share(bob.id, s1.id, Timestamp(T0 + 5)).unwrap());
    assert!(store.share_by_hash(&h1, now).unwrap().is_some());
    assert!(store.revoke_share(alice.id, s1.id, Timestamp(T0 + 5)).unwrap());
    assert!(store.revoke_share(alice.id, s1.id, Timestamp(T0 + 9)).unwrap(), "revoking again still names it");
    assert_eq!(store.share_by_hash(&h1, now).unwrap(), None);
    let listed = store.list_shares(alice.id).unwrap();
    assert_eq!(listed[0].revoked, Some(Timestamp(T0 + 5)), "the first revocation counts");
    assert!(!listed[0].is_active(now) && listed[1].is_active(now));
    assert!(!store.revoke_share(alice.id, 9_999_999, now).unwrap());
    assert!(store.share_by_hash(&h2, now).unwrap().is_some());
    // Shares are not replicated data.
    assert_eq!(store.last_seq().unwrap(), seq);
}

/// A share is found until the instant it expires, and only by its own hash.
pub fn shares_expire_and_are_scoped(store: &dyn Store) {
    let alice = store.create_user("alice", "h", false).unwrap();
    let share = store.create_share(alice.id, &range_share(None, Some(T0 + 1_000)), &[7; 32]).unwrap();
    assert_eq!(share.spec.expires, Some(Timestamp(T0 + 1_000)));
    assert!(store.share_by_hash(&[7; 32], Timestamp(T0 + 999)).unwrap().is_some());
    assert_eq!(store.share_by_hash(&[7; 32], Timestamp(T0 + 1_000)).unwrap(), None, "expired at `expires`");
    assert_eq!(store.share_by_hash(&[8; 32], Timestamp(T0)).unwrap(), None);
    assert!(!share.is_active(Timestamp(T0 + 1_000)));
    // Still listed for its owner.
    assert_eq!(store.list_shares(alice.id).unwrap().len(), 1);
}

/// Grants: one way each, listed from both ends, idempotent, withdrawn by
/// the owner, between existing users only, and absent from the change log.
pub fn location_grants_both_ways(store: &dyn Store) {
    let alice = store.create_user("alice", "h", false).unwrap().id;
    let bob = store.create_user("bob", "h", false).unwrap().id;
    let carol = store.create_user("carol", "h", false).unwrap().id;
    let seq = store.last_seq().unwrap();
    assert!(store.grant_location(alice, bob).unwrap());
    assert!(!store.grant_location(alice, bob).unwrap(), "already granted");
    assert!(store.grant_location(alice, carol).unwrap());
    assert!(store.grant_location(carol, alice).unwrap());
    assert!(!store.grant_location(alice, alice).unwrap(), "users always see themselves");
    assert!(matches!(store.grant_location(alice, UserId(9_999_999)), Err(StoreError::NotFound(_))));
    assert!(matches!(store.grant_location(UserId(9_999_999), alice), Err(StoreError::NotFound(_))));

    let pairs = |grants: Vec<crate::LocationGrant>| grants.iter().map(|g| (g.owner, g.viewer)).collect::<Vec<_>>();
    assert_eq!(pairs(store.location_grants_by(alice).unwrap()), [(alice, bob), (alice, carol)]);
    assert_eq!(pairs(store.location_grants_to(alice).unwrap()), [(carol, alice)]);
    assert_eq!(pairs(store.location_grants_to(bob).unwrap()), [(alice, bob)]);
    assert!(store.location_grants_by(bob).unwrap().is_empty());
    assert!(store.location_grants_by(alice).unwrap().iter().all(|g| g.created.0 > T0));

    // Only the owner's grant is withdrawn; the other direction stays.
    assert!(!store.revoke_location_grant(bob, alice).unwrap());
    assert!(store.revoke_location_grant(alice, carol).unwrap());
    assert!(!store.revoke_location_grant(alice, carol).unwrap());
    assert_eq!(pairs(store.location_grants_by(alice).unwrap()), [(alice, bob)]);
    assert_eq!(pairs(store.location_grants_to(alice).unwrap()), [(carol, alice)]);
    assert_eq!(store.last_seq().unwrap(), seq);
}

/// Instance settings: set, replaced, removed, listed by key.
pub fn instance_settings_set_and_clear(store: &dyn Store) {
    assert!(store.instance_settings().unwrap().is_empty());
    let seq = store.last_seq().unwrap();
    store.set_instance_setting("tile_url", Some("https://a/{z}/{x}/{y}.png")).unwrap();
    store.set_instance_setting("instance_name", Some("Family")).unwrap();
    store.set_instance_setting("instance_name", Some("Family map")).unwrap();
    let expect =
        |pairs: &[(&str, &str)]| pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect::<Vec<_>>();
    assert_eq!(
        store.instance_settings().unwrap(),
        expect(&[("instance_name", "Family map"), ("tile_url", "https://a/{z}/{x}/{y}.png")])
    );
    store.set_instance_setting("tile_url", None).unwrap();
    store.set_instance_setting("never_set", None).unwrap();
    assert_eq!(store.instance_settings().unwrap(), expect(&[("instance_name", "Family map")]));
    assert_eq!(store.last_seq().unwrap(), seq);
}
