//! Groups (a family, a team) and their invitation links: the API under
//! `/api/v1/groups` ([`routes`]) and the rules of who may do what in a
//! group ([`Standing`]).
//!
//! Why a group and not more location grants: a family wants one "Home"
//! that fires for everyone's phone and that one of them looks after. A
//! group owns such zones (`crate::zones::routes`), its admins edit them, and
//! each member's devices are evaluated against them. Joining shares no
//! location: who sees whom stays each member's own grants
//! ([`crate::sharing`]), so a group is never a way around someone's choice.
//!
//! Who may do what:
//!
//! | caller | sees the group | its members and zones | rename, delete, invite, promote, remove, edit its zones |
//! |---|---|---|---|
//! | not a member (an instance administrator too) | 404 | 404 | 404 |
//! | member | yes | yes | 403 (a member may leave, and edit a group zone they made) |
//! | group admin | yes | yes | yes |
//!
//! Invitations are credentials: 256 random bits shown once, stored as their
//! SHA-256 like share links. A refusal says why (unknown, expired, used
//! up, revoked): the secret cannot be guessed, so telling a holder that
//! their link ran out gives nothing away.

pub(crate) mod routes;

use polo_domain::{Timestamp, UserId};
use polo_store::{Invitation, InvitationRefusal, Membership, Store};

use crate::error::ApiError;

/// The most groups one account may be in (made or joined), as many as zones it may have.
pub const MAX_GROUPS_PER_USER: usize = 1_000;
/// The most members a group may have.
pub const MAX_MEMBERS: usize = 200;
/// The most people one invitation may admit.
pub const MAX_INVITATION_USES: u32 = 100;
/// The longest an invitation may stay valid: 30 days.
pub const MAX_INVITATION_S: i64 = 30 * 86_400;
/// An invitation's validity unless asked otherwise: 7 days.
pub const DEFAULT_INVITATION_S: i64 = 7 * 86_400;

/// The caller's standing in a group they are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Standing {
    pub(crate) membership: Membership,
}

impl Standing {
    /// `user`'s standing in group `id`; 404 when they are not a member
    /// (whether or not the group exists: non-members learn nothing).
    pub(crate) fn of(store: &dyn Store, user: UserId, id: i64) -> Result<Self, ApiError> {
        store
            .groups_of(user)?
            .into_iter()
            .find(|m| m.group.id == id)
            .map(|membership| Self { membership })
            .ok_or_else(|| ApiError::not_found(format!("you are in no group {id}")))
    }

    /// The same, and 403 unless they administer it.
    pub(crate) fn admin(store: &dyn Store, user: UserId, id: i64) -> Result<Self, ApiError> {
        let standing = Self::of(store, user, id)?;
        if !standing.membership.admin {
            return Err(ApiError::forbidden(format!(
                "only an admin of the group {:?} can do this",
                standing.membership.group.name
            )));
        }
        Ok(standing)
    }
}

/// A group's name as given: trimmed, 1 to 100 characters, no control characters.
pub(crate) fn valid_name(name: &str) -> Result<String, ApiError> {
    let name = name.trim();
    let chars = name.chars().count();
    if chars == 0 || chars > polo_store::groups::MAX_GROUP_NAME {
        return Err(ApiError::bad_request(format!(
            "name: must be 1 to {} characters, not {chars}",
            polo_store::groups::MAX_GROUP_NAME
        )));
    }
    if name.chars().any(char::is_control) {
        return Err(ApiError::bad_request("name: must not contain control characters"));
    }
    Ok(name.to_owned())
}

/// When an invitation asked to last `expires_in_s` expires, from `now`.
pub(crate) fn invitation_expiry(expires_in_s: Option<i64>, now: Timestamp) -> Result<Timestamp, ApiError> {
    let secs = expires_in_s.unwrap_or(DEFAULT_INVITATION_S);
    if !(60..=MAX_INVITATION_S).contains(&secs) {
        return Err(ApiError::bad_request(format!(
            "expires_in_s: {secs} is not within 60..{MAX_INVITATION_S} seconds (a minute to 30 days)"
        )));
    }
    Ok(Timestamp(now.0 + secs * 1_000))
}

/// How many people an invitation asked to admit `max_uses` admits.
pub(crate) fn invitation_uses(max_uses: Option<u32>) -> Result<u32, ApiError> {
    let uses = max_uses.unwrap_or(1);
    if !(1..=MAX_INVITATION_USES).contains(&uses) {
        return Err(ApiError::bad_request(format!("max_uses: {uses} is not within 1..{MAX_INVITATION_USES}")));
    }
    Ok(uses)
}

/// Why an invitation to `group` admits nobody, for people.
pub(crate) fn refusal_message(group: &str, invitation: &Invitation, refusal: InvitationRefusal) -> String {
    match refusal {
        InvitationRefusal::Revoked => {
            format!("this invitation to {group:?} was withdrawn by an admin of the group; ask them for a new link")
        }
        InvitationRefusal::Expired => format!(
            "this invitation to {group:?} expired at {}; ask an admin of the group for a new link",
            invitation.expires
        ),
        InvitationRefusal::UsedUp => format!(
            "this invitation to {group:?} has been used {} of {} times already; ask an admin of the group for a new link",
            invitation.uses, invitation.max_uses
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(valid_name("  Family ").unwrap(), "Family");
        let empty = valid_name("   ").unwrap_err();
        assert_eq!(empty.message, "name: must be 1 to 100 characters, not 0");
        assert!(valid_name(&"x".repeat(101)).unwrap_err().message.contains("not 101"));
        assert!(valid_name("a\u{7}b").unwrap_err().message.contains("control"));
    }

    #[test]
    fn invitations_last_a_minute_to_30_days_and_admit_1_to_100() {
        let now = Timestamp(1_000_000);
        assert_eq!(invitation_expiry(None, now).unwrap(), Timestamp(1_000_000 + 7 * 86_400_000));
        assert_eq!(invitation_expiry(Some(60), now).unwrap(), Timestamp(1_060_000));
        let short = invitation_expiry(Some(59), now).unwrap_err();
        assert_eq!(short.message, "expires_in_s: 59 is not within 60..2592000 seconds (a minute to 30 days)");
        assert!(invitation_expiry(Some(MAX_INVITATION_S + 1), now).is_err());
        assert_eq!(invitation_uses(None).unwrap(), 1);
        assert_eq!(invitation_uses(Some(100)).unwrap(), 100);
        assert_eq!(invitation_uses(Some(0)).unwrap_err().message, "max_uses: 0 is not within 1..100");
    }

    #[test]
    fn refusals_say_why_and_what_to_do() {
        let invitation = Invitation {
            id: 1,
            group: 1,
            created_by: None,
            created: Timestamp(0),
            expires: Timestamp(1_765_000_000_000),
            max_uses: 2,
            uses: 2,
            revoked: None,
        };
        let used = refusal_message("Family", &invitation, InvitationRefusal::UsedUp);
        assert_eq!(
            used,
            "this invitation to \"Family\" has been used 2 of 2 times already; ask an admin of the group for a new link"
        );
        let expired = refusal_message("Family", &invitation, InvitationRefusal::Expired);
        assert!(expired.starts_with("this invitation to \"Family\" expired at 2025-12-06T"), "{expired}");
        assert!(refusal_message("Family", &invitation, InvitationRefusal::Revoked).contains("withdrawn"));
    }
}
