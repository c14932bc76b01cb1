//! Zones, their per-(device, zone) state, the event log and the webhook
//! outbox: what the server's zone evaluation (`polo-zones`, `polo-server`)
//! keeps in the store.
//!
//! The backends store these rows and nothing more: a zone's and a
//! subscription's bodies and a state's body are opaque JSON whose meaning is
//! `polo-zones`'; which subscriptions an event goes to is decided by the
//! caller ([`NewEvent::deliver_to`]), and when a failed delivery is tried
//! again too ([`DeliveryUpdate`]). What the store guarantees:
//!
//! * **One transaction per evaluation step** ([`EventBatch`]): the states
//!   the step leaves, its events and their outbox rows commit together, so a
//!   crash either loses the whole step (it is evaluated again from the same
//!   state) or none of it.
//! * **Events once.** An event carries a key derived from what it says
//!   ([`NewEvent::dedup_key`]); storing one whose key the user's log has
//!   already is a no-op, and it gets no deliveries. Evaluating a step twice
//!   (another node took the lease over mid-step) therefore logs and sends it
//!   once.
//! * **A cursor.** Event ids increase in commit order; `events(after)`
//!   reads the log from a cursor.
//! * **Order per subscription.** A subscription's deliveries are made in
//!   event order, and [`crate::Store::due_deliveries`] offers only the oldest
//!   delivery of each subscription that is still pending: a later event waits
//!   while an earlier one is retried, until it is delivered or dead.
//! * **The same key on every retry**: [`idempotency_key`] is fixed when the
//!   outbox row is made.
//!
//! Everything here is local to the instance: none of it enters the change
//! log or replicates. Every row names its user, so deleting an account
//! deletes them, and the PostgreSQL tables are distributed by `user_id`.

use polo_domain::{DeviceId, Timestamp, UserId};

/// The zone id of a device's own state row (battery, silence, watermark)
/// beside its per-zone rows.
pub const DEVICE_STATE: i64 = 0;

/// The zone id of a device's state towards a friend (`friend.nearby`):
/// the friend's user id, negated. Zone ids are positive and the device's
/// own row is [`DEVICE_STATE`], so the three never meet.
#[must_use]
pub fn friend_state(friend: UserId) -> i64 {
    -friend.0
}

/// A stored zone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRow {
    /// Unique on the instance, never reused.
    pub id: i64,
    /// Owner: for a group's zone, the member who made it (its account
    /// holds the row).
    pub user: UserId,
    /// The group it belongs to, if any: its members' devices are evaluated
    /// against it, and its admins edit it ([`crate::groups`]).
    pub group: Option<i64>,
    /// The zone (`polo_zones::ZoneSpec` as JSON).
    pub body: String,
    /// Last written.
    pub updated: Timestamp,
}

/// The zones `user` sees, by id: their personal zones and every zone of
/// `groups` (their memberships, [`crate::Store::groups_of`]). The zones they
/// made for a group they have left are not among them.
///
/// # Errors
/// Store failures.
pub fn visible_zones(
    store: &dyn crate::Store,
    user: UserId,
    groups: &[crate::Membership],
) -> crate::StoreResult<Vec<ZoneRow>> {
    let mut rows: Vec<ZoneRow> = store.zones(Some(user))?.into_iter().filter(|z| z.group.is_none()).collect();
    for membership in groups {
        rows.extend(store.group_zones(membership.group.id)?);
    }
    rows.sort_by_key(|z| z.id);
    Ok(rows)
}

/// The state of one (device, zone), or of the device ([`DEVICE_STATE`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneStateRow {
    /// The device.
    pub device: DeviceId,
    /// The zone, or [`DEVICE_STATE`].
    pub zone: i64,
    /// Opaque JSON.
    pub body: String,
}

/// A state change in an [`EventBatch`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateWrite {
    /// Stores the row, replacing the one of its (device, zone).
    Put(ZoneStateRow),
    /// Forgets the row of (device, zone), if any.
    Delete {
        /// The device.
        device: DeviceId,
        /// The zone.
        zone: i64,
    },
}

/// An event to log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    /// The same whenever the same event is derived again; unique per user.
    pub dedup_key: String,
    /// When it happened.
    pub at: Timestamp,
    /// `zone.enter`, …
    pub kind: String,
    /// The device.
    pub device: DeviceId,
    /// The zone, for zone events.
    pub zone: Option<i64>,
    /// The event document (JSON) as the API and the receivers see it; the
    /// store fills in nothing.
    pub body: String,
    /// The user's subscriptions that get a delivery of it.
    pub deliver_to: Vec<i64>,
}

/// One evaluation step of one user, committed at once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventBatch {
    /// Whose.
    pub user: UserId,
    /// State changes.
    pub states: Vec<StateWrite>,
    /// Events in the order they happened.
    pub events: Vec<NewEvent>,
    /// The time of the step: when deliveries were queued (and first due).
    pub made: Timestamp,
}

/// A logged event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredEvent {
    /// The log's id: increasing in commit order.
    pub id: i64,
    /// Whose.
    pub user: UserId,
    /// When it happened.
    pub at: Timestamp,
    /// `zone.enter`, …
    pub kind: String,
    /// The device.
    pub device: DeviceId,
    /// The zone, for zone events.
    pub zone: Option<i64>,
    /// The event document as stored (its `id` is 0 there: it was not known yet).
    pub body: String,
}

/// A webhook subscription.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WebhookRow {
    /// Unique on the instance, never reused.
    pub id: i64,
    /// Owner.
    pub user: UserId,
    /// What it wants and where (`polo_zones::webhook::SubscriptionSpec` as JSON).
    pub body: String,
    /// The HMAC key its deliveries are signed with.
    pub secret: String,
    /// Made.
    pub created: Timestamp,
}

/// Where a delivery is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DeliveryStatus {
    /// Not delivered yet; due at `next_attempt`.
    Pending,
    /// The receiver answered 2xx.
    Delivered,
    /// Given up after the last attempt (dead letter).
    Dead,
}

impl DeliveryStatus {
    /// The stored code.
    #[must_use]
    pub fn code(self) -> i16 {
        match self {
            Self::Pending => 0,
            Self::Delivered => 1,
            Self::Dead => 2,
        }
    }

    /// The status of a stored code.
    ///
    /// # Errors
    /// [`crate::StoreError::Corrupt`] for an unknown code.
    pub fn from_code(code: i16) -> crate::StoreResult<Self> {
        Ok(match code {
            0 => Self::Pending,
            1 => Self::Delivered,
            2 => Self::Dead,
            other => return Err(crate::StoreError::Corrupt(format!("delivery status {other}"))),
        })
    }

    /// `pending`, `delivered`, `dead`.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Delivered => "delivered",
            Self::Dead => "dead",
        }
    }
}

/// One event for one subscription: an outbox row, and its log once done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// Increasing in event order per subscription.
    pub id: i64,
    /// Whose.
    pub user: UserId,
    /// The subscription.
    pub webhook: i64,
    /// The event.
    pub event: i64,
    /// Sent as `Idempotency-Key` on every attempt.
    pub key: String,
    /// Where it is.
    pub status: DeliveryStatus,
    /// Attempts made.
    pub attempts: u32,
    /// When it is due (pending) or was finished.
    pub next_attempt: Timestamp,
    /// The last answer's HTTP status, if there was one.
    pub last_status: Option<u16>,
    /// Why the last attempt failed.
    pub last_error: Option<String>,
    /// Last written.
    pub updated: Timestamp,
}

/// A delivery that is due, with what it takes to send it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DueDelivery {
    /// The outbox row.
    pub delivery: Delivery,
    /// Its event.
    pub event: StoredEvent,
    /// Its subscription.
    pub webhook: WebhookRow,
}

/// The outcome of an attempt.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeliveryUpdate {
    /// Whose.
    pub user: UserId,
    /// Which delivery.
    pub id: i64,
    /// Only if it still has this many attempts (another node may have
    /// recorded this attempt already).
    pub attempts_before: u32,
    /// The new status.
    pub status: DeliveryStatus,
    /// Attempts made now.
    pub attempts: u32,
    /// When it is due again (pending), or the time of the attempt.
    pub next_attempt: Timestamp,
    /// The answer's HTTP status, if any.
    pub last_status: Option<u16>,
    /// Why it failed, if it did.
    pub last_error: Option<String>,
    /// The time of the attempt.
    pub at: Timestamp,
}

/// The idempotency key of `event`'s delivery to subscription `webhook` of
/// `user`: fixed when the outbox row is made, sent on every attempt.
#[must_use]
pub fn idempotency_key(user: UserId, event: i64, webhook: i64) -> String {
    format!("polo-{}-{event}-{webhook}", user.0)
}
