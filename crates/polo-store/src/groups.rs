//! Groups (a family, a team), their members and invitation links.
//!
//! A group is a handful of accounts that share zones (a zone may belong to a
//! group instead of one user: [`crate::ZoneRow::group`]). Being in a group
//! shares no location by itself: that stays each member's own choice, the
//! location grants of [`crate::sharing`].
//!
//! What the store guarantees, on both backends:
//!
//! * **A group always has an admin** while it has members: demoting or
//!   removing the last admin is [`crate::StoreError::Refused`], and deleting an
//!   account that was a group's last admin makes the longest-standing member
//!   the admin (a group left without members is deleted).
//! * **Invitations are credentials.** Like share links, only the SHA-256 of
//!   an invitation's secret is stored. [`crate::Store::join_group`] checks
//!   the invitation (known, not revoked, not expired, not used up), counts
//!   the use and adds the member in one transaction, so an invitation for
//!   one use admits one person however many open it at once.
//!
//! Groups are local to the instance: none of this enters the change log or
//! replicates (like share links and location grants). Under Citus the
//! tables are small reference tables.

use polo_domain::{Timestamp, UserId};

/// The longest group name, in characters.
pub const MAX_GROUP_NAME: usize = 100;

/// A stored group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Group {
    /// Unique on the instance, never reused.
    pub id: i64,
    /// What its members call it ("Family").
    pub name: String,
    /// Who made it (`None` once that account is deleted).
    pub created_by: Option<UserId>,
    /// When it was made.
    pub created: Timestamp,
}

/// A member of a group.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupMember {
    /// The group.
    pub group: i64,
    /// The member.
    pub user: UserId,
    /// The member's user name.
    pub name: String,
    /// Whether they administer the group (rename, invite, remove, edit its zones).
    pub admin: bool,
    /// When they joined (or made the group).
    pub joined: Timestamp,
}

/// A group the user is in, with their standing in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Membership {
    /// The group.
    pub group: Group,
    /// Whether the user administers it.
    pub admin: bool,
    /// How many members it has.
    pub members: u32,
}

/// What [`crate::Store::create_group_invitation`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInvitation {
    /// The group it admits to.
    pub group: i64,
    /// The admin who made it.
    pub created_by: UserId,
    /// How many people it admits (1: a single-use link).
    pub max_uses: u32,
    /// It stops working at this instant.
    pub expires: Timestamp,
}

/// A stored invitation (never its secret).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invitation {
    /// Unique on the instance.
    pub id: i64,
    /// The group it admits to.
    pub group: i64,
    /// Who made it (`None` once that account is deleted).
    pub created_by: Option<UserId>,
    /// When it was made.
    pub created: Timestamp,
    /// When it stops working.
    pub expires: Timestamp,
    /// How many people it admits.
    pub max_uses: u32,
    /// How many joined with it.
    pub uses: u32,
    /// When it was revoked, if it was.
    pub revoked: Option<Timestamp>,
}

impl Invitation {
    /// Why it admits nobody at `now`, if it does not.
    #[must_use]
    pub fn refusal(&self, now: Timestamp) -> Option<InvitationRefusal> {
        if self.revoked.is_some() {
            Some(InvitationRefusal::Revoked)
        } else if self.expires <= now {
            Some(InvitationRefusal::Expired)
        } else if self.uses >= self.max_uses {
            Some(InvitationRefusal::UsedUp)
        } else {
            None
        }
    }
}

/// Why an invitation admits nobody.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InvitationRefusal {
    /// An admin revoked it.
    Revoked,
    /// Its time ran out.
    Expired,
    /// As many people joined with it as it admits.
    UsedUp,
}

/// What [`crate::Store::join_group`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The user is a member now; the invitation counted one use.
    Joined(Group),
    /// The user was a member already; the invitation was not used.
    AlreadyMember(Group),
    /// No invitation has this hash (or its group is gone).
    Unknown,
    /// The invitation admits nobody any more; nothing changed.
    Refused(Group, InvitationRefusal),
}
