//! The conformance suite of the sharing methods: share links, location
//! grants and instance settings. Run with the rest by
//! [`conformance_tests!`](crate::conformance_tests) and
//! [`run_all`](crate::conformance::run_all).

// Test code: panicking on unexpected results is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use polo_domain::{DeviceId, Timestamp, UserId};

use crate::{NewShare, ShareKind, Store, StoreError, TokenGrant, TokenScope, TokenScopes};

const T0: i64 = 1_600_000_000_000;

/// Every sharing test, by name.
pub const ALL: &[(&str, crate::conformance::Test)] = &[
    ("shares_create_lookup_revoke", shares_create_lookup_revoke),
    ("shares_expire_and_are_scoped", shares_expire_and_are_scoped),
    ("location_grants_both_ways", location_grants_both_ways),
    ("instance_settings_set_and_clear", instance_settings_set_and_clear),
    ("tokens_keep_scopes_and_revoke_what_they_made", tokens_keep_scopes_and_revoke_what_they_made),
];

fn range_share(device: Option<DeviceId>, expires: Option<i64>) -> NewShare {
    NewShare {
        kind: ShareKind::Range,
        from: Some(Timestamp(T0)),
        to: Some(Timestamp(T0 + 3_600_000)),
        device,
        label: "Sunday walk".to_owned(),
        expires: expires.map(Timestamp),
        hide_places: false,
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
    let s1 = store.create_share(alice.id, &spec, &h1, None).unwrap();
    assert_eq!((s1.user, &s1.spec, s1.device_name.as_deref(), s1.revoked), (alice.id, &spec, Some("phone"), None));
    assert!(s1.created.0 > T0);
    let live = NewShare {
        kind: ShareKind::Live,
        from: None,
        to: None,
        device: None,
        label: String::new(),
        expires: Some(Timestamp(i64::MAX)),
        // Stored and read back as given: the range share above shows places.
        hide_places: true,
    };
    let s2 = store.create_share(alice.id, &live, &h2, None).unwrap();
    assert_ne!(s1.id, s2.id);
    assert_eq!((s2.spec.clone(), s2.device_name.clone()), (live, None));
    let s3 = store.create_share(bob.id, &range_share(None, None), &h3, None).unwrap();

    assert!(matches!(store.create_share(alice.id, &spec, &h1, None), Err(StoreError::AlreadyExists(_))));
    assert!(matches!(
        store.create_share(bob.id, &range_share(Some(phone), None), &[4; 32], None),
        Err(StoreError::NotFound(_))
    ));
    assert!(matches!(store.create_share(UserId(9_999_999), &spec, &[4; 32], None), Err(StoreError::NotFound(_))));

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
    let share = store.create_share(alice.id, &range_share(None, Some(T0 + 1_000)), &[7; 32], None).unwrap();
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
    assert!(store.grant_location(alice, bob, None).unwrap());
    assert!(!store.grant_location(alice, bob, None).unwrap(), "already granted");
    assert!(store.grant_location(alice, carol, None).unwrap());
    assert!(store.grant_location(carol, alice, None).unwrap());
    assert!(!store.grant_location(alice, alice, None).unwrap(), "users always see themselves");
    assert!(matches!(store.grant_location(alice, UserId(9_999_999), None), Err(StoreError::NotFound(_))));
    assert!(matches!(store.grant_location(UserId(9_999_999), alice, None), Err(StoreError::NotFound(_))));

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

/// Tokens keep their scopes and maker; revoking a token revokes the tokens
/// it made (transitively), their shares and their grants, and nothing else.
/// Token ids are not reused, so a new token never inherits a revoked one's
/// makings; a revoked token cannot make anything.
pub fn tokens_keep_scopes_and_revoke_what_they_made(store: &dyn Store) {
    let alice = store.create_user("alice", "h", false).unwrap().id;
    let bob = store.create_user("bob", "h", false).unwrap().id;
    let carol = store.create_user("carol", "h", false).unwrap().id;
    let phone = store.ensure_device(alice, "phone").unwrap().id;
    let bob_phone = store.ensure_device(bob, "phone").unwrap().id;
    let seq = store.last_seq().unwrap();

    let scopes = TokenScopes::parse("share friends devices").unwrap();
    let root = store.create_token(alice, phone, "root", &[1; 32], TokenGrant { scopes, created_by: None }).unwrap();
    assert_eq!((root.scopes, root.created_by), (scopes, None));
    let (found, _) = store.token_by_hash(&[1; 32]).unwrap().unwrap();
    assert_eq!((found.scopes, found.created_by), (scopes, None));
    let plain = store.create_token(alice, phone, "plain", &[2; 32], TokenGrant::default()).unwrap();
    assert!(plain.scopes.is_empty(), "no scopes: the device only");
    let share_only = TokenScopes::NONE.with(TokenScope::Share);
    let child = store
        .create_token(alice, phone, "child", &[3; 32], TokenGrant { scopes: share_only, created_by: Some(root.id) })
        .unwrap();
    let grandchild = store
        .create_token(
            alice,
            phone,
            "grandchild",
            &[4; 32],
            TokenGrant { scopes: share_only, created_by: Some(child.id) },
        )
        .unwrap();
    assert_eq!(store.list_tokens(alice).unwrap()[2].created_by, Some(root.id));
    // Only a token of the same user can be a maker.
    let bobs = store.create_token(bob, bob_phone, "bob", &[5; 32], TokenGrant::default()).unwrap();
    let foreign = TokenGrant { scopes: TokenScopes::NONE, created_by: Some(bobs.id) };
    assert!(matches!(store.create_token(alice, phone, "x", &[6; 32], foreign), Err(StoreError::NotFound(_))));

    let by_password = store.create_share(alice, &range_share(None, None), &[11; 32], None).unwrap();
    let by_root = store.create_share(alice, &range_share(None, None), &[12; 32], Some(root.id)).unwrap();
    let by_grandchild = store.create_share(alice, &range_share(None, None), &[13; 32], Some(grandchild.id)).unwrap();
    let by_plain = store.create_share(alice, &range_share(None, None), &[14; 32], Some(plain.id)).unwrap();
    assert_eq!(by_plain.created_by_token, Some(plain.id));
    assert_eq!((by_root.created_by_token, by_password.created_by_token), (Some(root.id), None));
    assert!(matches!(
        store.create_share(alice, &range_share(None, None), &[15; 32], Some(bobs.id)),
        Err(StoreError::NotFound(_))
    ));
    assert!(store.grant_location(alice, bob, Some(root.id)).unwrap());
    assert!(store.grant_location(alice, carol, None).unwrap());
    assert!(!store.grant_location(alice, carol, Some(child.id)).unwrap(), "an existing grant keeps its maker");
    assert!(matches!(store.grant_location(alice, bob, Some(bobs.id)), Err(StoreError::NotFound(_))));
    let makers: Vec<_> = store.location_grants_by(alice).unwrap().iter().map(|g| g.created_by_token).collect();
    assert_eq!(makers, [Some(root.id), None]);

    let now = Timestamp(T0);
    assert!(store.revoke_token(alice, root.id).unwrap());
    // Gone: the token, what it made, and what those made.
    for hash in [[1; 32], [3; 32], [4; 32]] {
        assert_eq!(store.token_by_hash(&hash).unwrap(), None);
    }
    let left: Vec<i64> = store.list_tokens(alice).unwrap().iter().map(|t| t.id).collect();
    assert_eq!(left, [plain.id]);
    assert_eq!(store.share_by_hash(&[12; 32], now).unwrap(), None);
    assert_eq!(store.share_by_hash(&[13; 32], now).unwrap(), None);
    let listed = store.list_shares(alice).unwrap();
    assert!(listed.iter().find(|s| s.id == by_grandchild.id).unwrap().revoked.is_some(), "still listed, revoked");
    // Kept: what the password and other tokens made, and other users' tokens.
    assert!(store.share_by_hash(&[11; 32], now).unwrap().is_some());
    assert!(store.share_by_hash(&[14; 32], now).unwrap().is_some());
    let viewers: Vec<_> = store.location_grants_by(alice).unwrap().iter().map(|g| g.viewer).collect();
    assert_eq!(viewers, [carol]);
    assert!(store.token_by_hash(&[5; 32]).unwrap().is_some());

    // A revoked token makes nothing, and its id is not handed out again.
    let dead = TokenGrant { scopes: TokenScopes::NONE, created_by: Some(root.id) };
    assert!(matches!(store.create_token(alice, phone, "x", &[7; 32], dead), Err(StoreError::NotFound(_))));
    assert!(matches!(
        store.create_share(alice, &range_share(None, None), &[16; 32], Some(root.id)),
        Err(StoreError::NotFound(_))
    ));
    let newest = store.create_token(alice, phone, "new", &[8; 32], TokenGrant::default()).unwrap();
    assert!(newest.id > grandchild.id.max(bobs.id), "ids are never reused");
    assert!(store.revoke_token(alice, plain.id).unwrap());
    assert_eq!(store.share_by_hash(&[14; 32], now).unwrap(), None);
    assert!(store.share_by_hash(&[11; 32], now).unwrap().is_some());
    // Credentials are not replicated data.
    assert_eq!(store.last_seq().unwrap(), seq);
}
