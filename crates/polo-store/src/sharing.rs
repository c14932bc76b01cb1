//! What users share: public links to a stretch of their history or their
//! live position ([`Share`]), location grants between users of the instance
//! ([`LocationGrant`], "friends and family"), and the instance settings an
//! administrator may change at runtime.
//!
//! Shares are credentials: like device tokens, only the SHA-256 of the link's
//! secret is stored, and the store answers a lookup by hash only while the
//! share is neither revoked nor expired. Shares, grants and settings are
//! local to the instance and do not enter the change log (see
//! [`crate::Store`]).

use polo_domain::{DeviceId, Timestamp, UserId};

/// What a share shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShareKind {
    /// A trip: a range whose bounds are a trip's start and end.
    Trip,
    /// Any time range.
    Range,
    /// The latest position, updated live, until the share expires.
    Live,
}

impl ShareKind {
    /// Every kind.
    pub const ALL: [Self; 3] = [Self::Trip, Self::Range, Self::Live];

    /// The stable name (`trip`, `range`, `live`), as stored and sent.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Trip => "trip",
            Self::Range => "range",
            Self::Live => "live",
        }
    }

    /// The kind called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What [`crate::Store::create_share`] stores.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewShare {
    /// What it shows.
    pub kind: ShareKind,
    /// Nothing before this instant is shown (inclusive).
    pub from: Option<Timestamp>,
    /// Nothing from this instant on is shown (exclusive).
    pub to: Option<Timestamp>,
    /// Only this device of the owner; `None`: all of the owner's devices.
    pub device: Option<DeviceId>,
    /// Free text the owner tells shares apart by (shown on the public page).
    pub label: String,
    /// The link stops working at this instant; `None`: when revoked.
    pub expires: Option<Timestamp>,
    /// The public page leaves out place names and street addresses: a viewer
    /// sees when and in which town you stayed, not that it was "Home".
    pub hide_places: bool,
}

/// A stored share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Share {
    /// Store-assigned id, unique across the instance.
    pub id: i64,
    /// Whose history it shows.
    pub user: UserId,
    /// What was asked for.
    pub spec: NewShare,
    /// The device's name, when the share is of one device.
    pub device_name: Option<String>,
    /// Creation time.
    pub created: Timestamp,
    /// When it was revoked, if it was.
    pub revoked: Option<Timestamp>,
    /// The device token that made it, if one did.
    pub created_by_token: Option<i64>,
}

impl Share {
    /// Whether the link works at `now`: not revoked, not expired.
    #[must_use]
    pub fn is_active(&self, now: Timestamp) -> bool {
        self.revoked.is_none() && self.spec.expires.is_none_or(|e| e > now)
    }
}

/// One user letting another see their location.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocationGrant {
    /// Whose location may be seen.
    pub owner: UserId,
    /// Who may see it.
    pub viewer: UserId,
    /// When the grant was made.
    pub created: Timestamp,
    /// The device token that made it, if one did.
    pub created_by_token: Option<i64>,
}
