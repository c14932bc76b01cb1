//! Conformance tests for groups, their members, invitations and zones
//! ([`crate::groups`]).

// Test code: panicking on unexpected results is the point.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::missing_panics_doc)]

use polo_domain::{Timestamp, UserId};

use crate::{EventBatch, InvitationRefusal, JoinOutcome, NewInvitation, StateWrite, Store, StoreError, ZoneStateRow};

/// The tests of this module, by name.
pub const ALL: &[(&str, crate::conformance::Test)] = &[
    ("groups_are_created_listed_renamed_and_deleted", groups_are_created_listed_renamed_and_deleted),
    ("a_group_keeps_an_admin", a_group_keeps_an_admin),
    (
        "invitations_admit_as_many_as_they_say_until_they_expire",
        invitations_admit_as_many_as_they_say_until_they_expire,
    ),
    ("group_zones_belong_to_the_group", group_zones_belong_to_the_group),
    ("deleting_a_user_leaves_their_groups_with_an_admin", deleting_a_user_leaves_their_groups_with_an_admin),
];

const T0: i64 = 1_700_000_000_000;

fn invite(group: i64, by: UserId, max_uses: u32, expires: i64) -> NewInvitation {
    NewInvitation { group, created_by: by, max_uses, expires: Timestamp(expires) }
}

/// A group is made with its maker as its one admin, listed for its members
/// with their standing and its size, renamed, and deleted with its members
/// and invitations; ids are not reused; nothing appends a change.
pub fn groups_are_created_listed_renamed_and_deleted(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap().id;
    let b = store.create_user("b", "h", false).unwrap().id;
    let seq = store.last_seq().unwrap();
    let family = store.create_group("Family", a, Timestamp(T0)).unwrap();
    assert_eq!((family.name.as_str(), family.created_by, family.created), ("Family", Some(a), Timestamp(T0)));
    let team = store.create_group("Team", b, Timestamp(T0 + 1)).unwrap();
    assert!(team.id > family.id);
    assert!(matches!(store.create_group("x", UserId(9_999), Timestamp(T0)), Err(StoreError::NotFound(_))));
    assert_eq!(store.group(family.id).unwrap(), Some(family.clone()));
    assert_eq!(store.group(9_999).unwrap(), None);

    let mine = store.groups_of(a).unwrap();
    assert_eq!(mine.len(), 1);
    assert_eq!((&mine[0].group, mine[0].admin, mine[0].members), (&family, true, 1));
    let members = store.group_members(family.id).unwrap();
    assert_eq!(members.len(), 1);
    assert_eq!((members[0].user, members[0].name.as_str(), members[0].admin), (a, "a", true));

    assert!(store.rename_group(family.id, "Smiths").unwrap());
    assert_eq!(store.group(family.id).unwrap().unwrap().name, "Smiths");
    assert!(!store.rename_group(9_999, "x").unwrap());

    store.create_group_invitation(&invite(family.id, a, 1, T0 * 2), &[1; 32]).unwrap();
    assert!(store.delete_group(family.id).unwrap());
    assert!(!store.delete_group(family.id).unwrap());
    assert_eq!(store.group(family.id).unwrap(), None);
    assert!(store.groups_of(a).unwrap().is_empty());
    assert!(store.group_members(family.id).unwrap().is_empty());
    assert!(store.group_invitations(family.id).unwrap().is_empty());
    assert_eq!(store.invitation_by_hash(&[1; 32]).unwrap(), None);
    assert_eq!(store.groups_of(b).unwrap().len(), 1, "another group is untouched");
    let again = store.create_group("Family", a, Timestamp(T0)).unwrap();
    assert!(again.id > team.id, "ids are not reused");
    assert_eq!(store.last_seq().unwrap(), seq, "groups are local to the instance");
}

/// Members are promoted and demoted; the last admin can be neither demoted
/// nor removed, and a member who is not one changes nothing.
pub fn a_group_keeps_an_admin(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap().id;
    let b = store.create_user("b", "h", false).unwrap().id;
    let c = store.create_user("c", "h", false).unwrap().id;
    let g = store.create_group("Family", a, Timestamp(T0)).unwrap().id;
    store.create_group_invitation(&invite(g, a, 5, T0 * 2), &[7; 32]).unwrap();
    assert!(matches!(store.join_group(&[7; 32], b, Timestamp(T0 + 1)).unwrap(), JoinOutcome::Joined(_)));

    assert!(matches!(store.set_group_admin(g, a, false), Err(StoreError::Refused(_))));
    assert!(matches!(store.remove_group_member(g, a), Err(StoreError::Refused(_))));
    assert!(!store.set_group_admin(g, c, true).unwrap(), "c is no member");
    assert!(!store.remove_group_member(g, c).unwrap());

    assert!(store.set_group_admin(g, b, true).unwrap());
    let admins = |g| store.group_members(g).unwrap().iter().filter(|m| m.admin).map(|m| m.user).collect::<Vec<_>>();
    assert_eq!(admins(g), [a, b]);
    assert!(store.set_group_admin(g, a, false).unwrap(), "b is an admin too");
    assert_eq!(admins(g), [b]);
    let members = store.group_members(g).unwrap();
    assert_eq!(members.iter().map(|m| m.user).collect::<Vec<_>>(), [b, a], "admins first");
    assert!(store.remove_group_member(g, a).unwrap());
    assert!(store.groups_of(a).unwrap().is_empty());
    assert!(matches!(store.remove_group_member(g, b), Err(StoreError::Refused(_))), "b is the last admin");
    assert_eq!(store.groups_of(b).unwrap()[0].members, 1);
}

/// An invitation is kept by its hash; it admits as many people as it says,
/// counting each, until it expires or is revoked; a member opening it again
/// uses nothing; each refusal says why; revoking keeps the first time.
pub fn invitations_admit_as_many_as_they_say_until_they_expire(store: &dyn Store) {
    let names = ["a", "b", "c", "d", "e"];
    let users: Vec<UserId> = names.iter().map(|n| store.create_user(n, "h", false).unwrap().id).collect();
    let (a, b, c, d, e) = (users[0], users[1], users[2], users[3], users[4]);
    let g = store.create_group("Family", a, Timestamp(T0)).unwrap();
    let once = store.create_group_invitation(&invite(g.id, a, 1, T0 + 1_000), &[1; 32]).unwrap();
    assert_eq!((once.group, once.created_by, once.max_uses, once.uses, once.revoked), (g.id, Some(a), 1, 0, None));
    assert_eq!(once.expires, Timestamp(T0 + 1_000));
    assert!(matches!(
        store.create_group_invitation(&invite(g.id, a, 1, T0), &[1; 32]),
        Err(StoreError::AlreadyExists(_))
    ));
    assert!(matches!(store.create_group_invitation(&invite(9_999, a, 1, T0), &[2; 32]), Err(StoreError::NotFound(_))));
    let twice = store.create_group_invitation(&invite(g.id, a, 2, T0 + 1_000), &[3; 32]).unwrap();
    let (found, group) = store.invitation_by_hash(&[3; 32]).unwrap().unwrap();
    assert_eq!((found, group), (twice.clone(), g.clone()));
    assert_eq!(store.invitation_by_hash(&[9; 32]).unwrap(), None);

    let at = Timestamp(T0 + 10);
    assert_eq!(store.join_group(&[9; 32], b, at).unwrap(), JoinOutcome::Unknown);
    assert_eq!(store.join_group(&[1; 32], a, at).unwrap(), JoinOutcome::AlreadyMember(g.clone()));
    assert_eq!(store.join_group(&[1; 32], b, at).unwrap(), JoinOutcome::Joined(g.clone()));
    assert_eq!(store.join_group(&[1; 32], b, at).unwrap(), JoinOutcome::AlreadyMember(g.clone()));
    assert_eq!(store.join_group(&[1; 32], c, at).unwrap(), JoinOutcome::Refused(g.clone(), InvitationRefusal::UsedUp));
    assert_eq!(store.join_group(&[3; 32], c, at).unwrap(), JoinOutcome::Joined(g.clone()));
    assert_eq!(
        store.join_group(&[3; 32], d, Timestamp(T0 + 1_000)).unwrap(),
        JoinOutcome::Refused(g.clone(), InvitationRefusal::Expired),
        "expired at its instant"
    );
    assert_eq!(store.join_group(&[3; 32], d, at).unwrap(), JoinOutcome::Joined(g.clone()));
    assert!(matches!(store.join_group(&[3; 32], UserId(9_999), at), Err(StoreError::NotFound(_))));

    let open = store.create_group_invitation(&invite(g.id, a, 10, T0 + 1_000), &[4; 32]).unwrap();
    assert!(store.revoke_group_invitation(g.id, open.id, Timestamp(T0 + 20)).unwrap());
    assert!(store.revoke_group_invitation(g.id, open.id, Timestamp(T0 + 30)).unwrap());
    assert!(!store.revoke_group_invitation(g.id + 1, open.id, Timestamp(T0 + 30)).unwrap(), "another group's id");
    assert_eq!(store.join_group(&[4; 32], e, at).unwrap(), JoinOutcome::Refused(g.clone(), InvitationRefusal::Revoked));

    let listed = store.group_invitations(g.id).unwrap();
    let uses: Vec<(i64, u32, Option<Timestamp>)> = listed.iter().map(|i| (i.id, i.uses, i.revoked)).collect();
    assert_eq!(uses, [(once.id, 1, None), (twice.id, 2, None), (open.id, 0, Some(Timestamp(T0 + 20)))]);
    let members: Vec<UserId> = store.group_members(g.id).unwrap().iter().map(|m| m.user).collect();
    assert_eq!(members, [a, b, c, d]);
    assert!(store.groups_of(e).unwrap().is_empty());
}

/// A group's zone is stored with its maker and its group, listed with the
/// group's zones and the maker's; removing a member forgets that member's
/// states in the group's zones; deleting the zone forgets every member's
/// states in it; deleting the group deletes its zones.
pub fn group_zones_belong_to_the_group(store: &dyn Store) {
    let a = store.create_user("a", "h", false).unwrap().id;
    let b = store.create_user("b", "h", false).unwrap().id;
    let g = store.create_group("Family", a, Timestamp(T0)).unwrap().id;
    store.create_group_invitation(&invite(g, a, 1, T0 * 2), &[1; 32]).unwrap();
    store.join_group(&[1; 32], b, Timestamp(T0)).unwrap();
    let own = store.create_zone(a, "{\"own\":1}", Timestamp(1)).unwrap();
    let home = store.create_group_zone(a, g, "{\"home\":1}", Timestamp(2)).unwrap();
    let school = store.create_group_zone(b, g, "{\"school\":1}", Timestamp(3)).unwrap();
    assert!(matches!(store.create_group_zone(a, 9_999, "{}", Timestamp(1)), Err(StoreError::NotFound(_))));
    assert!(matches!(store.create_group_zone(UserId(9_999), g, "{}", Timestamp(1)), Err(StoreError::NotFound(_))));

    let zones = store.group_zones(g).unwrap();
    assert_eq!(
        zones.iter().map(|z| (z.id, z.user, z.group)).collect::<Vec<_>>(),
        [(home, a, Some(g)), (school, b, Some(g))]
    );
    let of_a = store.zones(Some(a)).unwrap();
    assert_eq!(of_a.iter().map(|z| (z.id, z.group)).collect::<Vec<_>>(), [(own, None), (home, Some(g))]);
    assert!(store.update_zone(b, school, "{\"school\":2}", Timestamp(4)).unwrap());

    let a_phone = store.ensure_device(a, "phone").unwrap().id;
    let b_phone = store.ensure_device(b, "phone").unwrap().id;
    for (user, device) in [(a, a_phone), (b, b_phone)] {
        let states = [own, home, school]
            .into_iter()
            .map(|zone| StateWrite::Put(ZoneStateRow { device, zone, body: "{}".to_owned() }))
            .collect();
        store.commit_events(&EventBatch { user, states, events: Vec::new(), made: Timestamp(5) }).unwrap();
    }
    let states = |user, device| store.zone_states(user, device).unwrap().iter().map(|s| s.zone).collect::<Vec<_>>();
    assert!(store.delete_zone(a, home).unwrap());
    assert_eq!(states(b, b_phone), [own, school], "b's state in a's deleted group zone is gone");
    assert_eq!(states(a, a_phone), [own, school]);

    store.set_group_admin(g, b, true).unwrap();
    assert!(store.remove_group_member(g, a).unwrap());
    assert_eq!(states(a, a_phone), [own], "a left: its states in the group's zones are gone");
    assert_eq!(states(b, b_phone), [own, school]);

    assert!(store.delete_group(g).unwrap());
    assert!(store.group_zones(g).unwrap().is_empty());
    assert!(store.zones(Some(b)).unwrap().is_empty(), "b's only zone was the group's");
    assert_eq!(store.zones(None).unwrap().iter().map(|z| z.id).collect::<Vec<_>>(), [own]);
    assert!(states(b, b_phone).iter().all(|&z| z != school));
}

/// Deleting an account removes its memberships and the invitations it
/// made; a group it was the last admin of gets its longest-standing member
/// as admin; a group it was alone in is deleted; other groups are untouched.
pub fn deleting_a_user_leaves_their_groups_with_an_admin(store: &dyn Store) {
    let admin = store.create_user("root", "h", true).unwrap().id;
    let a = store.create_user("a", "h", false).unwrap().id;
    let b = store.create_user("b", "h", false).unwrap().id;
    let c = store.create_user("c", "h", false).unwrap().id;
    let shared = store.create_group("Family", a, Timestamp(T0)).unwrap().id;
    let alone = store.create_group("Mine", a, Timestamp(T0)).unwrap().id;
    let other = store.create_group("Team", admin, Timestamp(T0)).unwrap().id;
    store.create_group_invitation(&invite(shared, a, 5, T0 * 2), &[1; 32]).unwrap();
    store.create_group_invitation(&invite(other, admin, 5, T0 * 2), &[2; 32]).unwrap();
    store.join_group(&[1; 32], c, Timestamp(T0 + 2)).unwrap();
    store.join_group(&[1; 32], b, Timestamp(T0 + 1)).unwrap();
    store.join_group(&[2; 32], a, Timestamp(T0 + 1)).unwrap();
    store.create_group_zone(a, shared, "{}", Timestamp(1)).unwrap();

    store.delete_user(a).unwrap();
    let members = store.group_members(shared).unwrap();
    assert_eq!(members.iter().map(|m| (m.user, m.admin)).collect::<Vec<_>>(), [(b, true), (c, false)]);
    assert_eq!(store.group(shared).unwrap().unwrap().created_by, None);
    assert!(store.group_invitations(shared).unwrap().is_empty(), "a's invitations are gone");
    assert!(store.group_zones(shared).unwrap().is_empty(), "a's zones went with the account");
    assert_eq!(store.group(alone).unwrap(), None, "a group left empty is deleted");
    assert_eq!(store.group_members(other).unwrap().iter().map(|m| m.user).collect::<Vec<_>>(), [admin]);
    assert_eq!(store.group_invitations(other).unwrap().len(), 1);
}
