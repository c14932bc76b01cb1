//! The storage boundary of polo.
//!
//! Callers (server, CLI, background jobs) talk to one [`Store`] trait. The
//! embedded SQLite backend is the default; the PostgreSQL backend serves
//! several nodes on one database without changing callers. Every per-user
//! operation names its user, so a distributed PostgreSQL (Citus) can shard
//! on `user_id`.
//!
//! * [`chunks`] — how writes shape a device's chunks (the planner both
//!   backends apply).
//! * [`codec`] — the compact point-chunk encoding both backends store, which is
//!   how polo keeps a typical phone history under 24 bytes per point.
//! * [`derived`] — the generic rows in which computed data (stays, legs,
//!   places, statistics, map levels) and the user's edits of it are kept.
//! * [`conformance`] (feature `conformance`) — the test suite every backend
//!   runs against itself.
//! * [`undo`] — what a delete removed, kept for a while to undo it.
//!
//! * [`records`] — instance records, roles and the audit log, for features
//!   whose rules are backend-neutral (exposure).
//! * [`clock`] — what a change's [`Seq`] guarantees readers, and how writes
//!   are stamped.
//! * [`zones`] — zones, their per-(device, zone) state, the event log and
//!   the webhook outbox.
//! * [`groups`] — groups of users, their admins and invitation links.
//!
//! The trait is synchronous: SQLite is synchronous anyway, the import
//! pipeline runs on plain threads, and the async server calls it from
//! `spawn_blocking` (the PostgreSQL backend's client blocks on a runtime of
//! its own, which only blocking threads may do freely).

pub mod chunks;
pub mod clock;
pub mod codec;
#[cfg(feature = "conformance")]
pub mod conformance;
#[cfg(feature = "conformance")]
pub mod conformance_groups;
#[cfg(feature = "conformance")]
pub mod conformance_nodes;
#[cfg(feature = "conformance")]
pub mod conformance_records;
#[cfg(feature = "conformance")]
pub mod conformance_sharing;
#[cfg(feature = "conformance")]
pub mod conformance_zones;
pub mod derived;
pub mod groups;
pub mod nodes;
pub mod records;
pub mod replication;
pub mod scope;
pub mod sharing;
pub mod undo;
pub mod zones;

use std::ops::ControlFlow;
use std::time::Duration;

pub use derived::{DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope};
pub use groups::{Group, GroupMember, Invitation, InvitationRefusal, JoinOutcome, Membership, NewInvitation};
pub use nodes::{FailureCount, ImportJobRecord, ImportJobStatus, LiveReceiver, LiveSubscription};
pub use records::{AuditEntry, AuditQuery, Record, RecordQuery, RecordWrite, Role};
pub use replication::{
    ApplyOutcome, Checkpoint, EpochSpan, FeedEntry, FeedFilter, FeedPage, Hlc, ReplicatedChange, ReplicationToken,
    Version,
};

use polo_domain::{DeviceId, Fix, Interval, IntervalKind, Point, Seq, Timestamp, UserId};
pub use scope::{TokenGrant, TokenScope, TokenScopes, UnknownScope};
pub use sharing::{LocationGrant, NewShare, Share, ShareKind};
pub use undo::{KeptUndo, UndoRecord};
pub use zones::{
    Delivery, DeliveryStatus, DeliveryUpdate, DueDelivery, EventBatch, NewEvent, StateWrite, StoredEvent, WebhookRow,
    ZoneRow, ZoneStateRow,
};

/// Errors every backend reports.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// The named thing does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// A unique name is already taken.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// The change would break a rule the store keeps (deleting the last
    /// administrator); nothing was changed. The text says which rule.
    #[error("refused: {0}")]
    Refused(String),
    /// Stored data failed to decode: the store is damaged.
    #[error("corrupt stored data: {0}")]
    Corrupt(String),
    /// The backend failed.
    #[error("storage backend error: {0}")]
    Backend(String),
    /// The storage is full (`ENOSPC`, `SQLITE_FULL`): the write was rolled
    /// back whole, and what was committed before stays valid. The text says
    /// which store, e.g. `the store at /srv/polo/polo.db could not be written`.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// A transient failure that is worth trying again: the write was rolled
    /// back whole (PostgreSQL's serialisation failures and deadlocks, a lost
    /// connection before the commit was sent). Backends retry these
    /// themselves where that is safe; callers see one only when retrying did
    /// not help.
    #[error("the store is busy, try again: {0}")]
    Retryable(String),
}

impl StoreError {
    /// An I/O failure while `doing` something: [`StoreError::DiskFull`]
    /// when the file system is out of space (`ENOSPC`, or `EDQUOT` for a
    /// user over quota), [`StoreError::Backend`] otherwise.
    #[must_use]
    pub fn from_io(doing: &str, error: &std::io::Error) -> Self {
        match error.kind() {
            std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded => {
                Self::DiskFull(format!("{doing}: {error}"))
            }
            _ => Self::Backend(format!("{doing}: {error}")),
        }
    }

    /// Whether this is [`StoreError::Retryable`].
    #[must_use]
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Retryable(_))
    }

    /// Whether this is [`StoreError::DiskFull`].
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::DiskFull(_))
    }
}

/// Result alias for store operations.
pub type StoreResult<T> = Result<T, StoreError>;

/// A user account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Store-assigned id.
    pub id: UserId,
    /// Unique login name.
    pub name: String,
    /// Argon2 PHC string.
    pub password_hash: String,
    /// Administrators manage users and the instance.
    pub is_admin: bool,
    /// Creation time.
    pub created: Timestamp,
}

/// What a device shows of itself to the people it shares with (OwnTracks'
/// `card` message): a display name and a picture.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeviceCard {
    /// Display name.
    pub name: Option<String>,
    /// Picture: base64 of a PNG, as the app sends it.
    pub face: Option<String>,
}

/// A user's device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Device {
    /// Store-assigned id.
    pub id: DeviceId,
    /// Owner.
    pub user: UserId,
    /// Name, unique per user.
    pub name: String,
}

/// A device's API token. Only a SHA-256 hash of the token is stored; the
/// token itself is shown once, when it is created.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// Store-assigned id, unique across the instance.
    pub id: i64,
    /// Owner.
    pub user: UserId,
    /// The device the token authenticates as.
    pub device: Device,
    /// Free text to tell tokens apart ("Overland on the old phone").
    pub label: String,
    /// Creation time.
    pub created: Timestamp,
    /// Last successful use, updated at most about once a minute.
    pub last_used: Option<Timestamp>,
    /// What it may do beyond ingesting as its device ([`scope`]).
    pub scopes: TokenScopes,
    /// The token that made it, if a token did.
    pub created_by: Option<i64>,
}

/// A web login session. Only a SHA-256 hash of the session cookie is stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Owner.
    pub user: UserId,
    /// The value unsafe requests must echo in `X-CSRF-Token`.
    pub csrf_token: String,
    /// Creation time.
    pub created: Timestamp,
    /// The session is invalid from this time on.
    pub expires: Timestamp,
}

/// How stale [`Token::last_used`] may get before [`Store::token_by_hash`]
/// writes it again, in milliseconds.
pub const TOKEN_TOUCH_INTERVAL_MS: i64 = 60_000;

/// The outcome of a write batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Rows that were new.
    pub added: u64,
    /// Rows whose identity already existed; the stored row was kept.
    pub duplicates: u64,
    /// Rows removed ([`Store::delete_points`]).
    pub deleted: u64,
    /// Fixes left out because a delete buried them ([`Store::insert_points`]
    /// stores no point the user deleted; [`Store::restore_points`] does).
    pub suppressed: u64,
    /// The change sequence number of this write, when it changed anything.
    pub seq: Option<Seq>,
}

/// One device's part of a write over several devices
/// ([`Store::insert_point_groups`]).
#[derive(Debug)]
pub struct PointGroup<'a> {
    /// Owner.
    pub user: UserId,
    /// The device the fixes belong to.
    pub device: DeviceId,
    /// The fixes, as for [`Store::insert_points`].
    pub fixes: &'a [Fix],
    /// Set by the store: this group's outcome, or why nothing of it was
    /// stored. `None` until the store has dealt with the group.
    pub outcome: Option<StoreResult<WriteOutcome>>,
}

impl<'a> PointGroup<'a> {
    /// A group not written yet.
    #[must_use]
    pub fn new(user: UserId, device: DeviceId, fixes: &'a [Fix]) -> Self {
        Self { user, device, fixes, outcome: None }
    }
}

/// The default of [`Store::insert_point_groups`]: each group written by
/// `write` (one transaction each), its outcome recorded, and a panic caught
/// per group, since the groups before it are stored and must not be written
/// again.
pub fn insert_groups_one_by_one(
    groups: &mut [PointGroup<'_>],
    added: &mut dyn FnMut(usize, Timestamp),
    mut write: impl FnMut(&PointGroup<'_>, &mut dyn FnMut(Timestamp)) -> StoreResult<WriteOutcome>,
) {
    for (index, group) in groups.iter_mut().enumerate() {
        let one = || write(group, &mut |t| added(index, t));
        group.outcome = Some(
            std::panic::catch_unwind(std::panic::AssertUnwindSafe(one))
                .unwrap_or_else(|_| Err(StoreError::Backend("the store panicked while writing".to_owned()))),
        );
    }
}

/// Which points to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointQuery {
    /// Owner (required: every read is scoped to a user).
    pub user: UserId,
    /// Only this device, or all of the user's devices.
    pub device: Option<DeviceId>,
    /// Inclusive lower time bound.
    pub from: Option<Timestamp>,
    /// Exclusive upper time bound.
    pub to: Option<Timestamp>,
}

impl PointQuery {
    /// All points of one user.
    #[must_use]
    pub fn user(user: UserId) -> Self {
        Self { user, device: None, from: None, to: None }
    }
}

/// A rectangle of positions in E7 degrees, edges included. A `west` east
/// of `east` crosses the antimeridian (170° to −170° is 20° wide).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Area {
    /// Western edge (longitude, E7).
    pub west_e7: i32,
    /// Southern edge (latitude, E7).
    pub south_e7: i32,
    /// Eastern edge (longitude, E7).
    pub east_e7: i32,
    /// Northern edge (latitude, E7).
    pub north_e7: i32,
}

impl Area {
    /// Whether the position `(lat_e7, lon_e7)` lies inside, edges included.
    #[must_use]
    pub fn contains(&self, lat_e7: i32, lon_e7: i32) -> bool {
        let lon_ok = if self.west_e7 <= self.east_e7 {
            (self.west_e7..=self.east_e7).contains(&lon_e7)
        } else {
            lon_e7 >= self.west_e7 || lon_e7 <= self.east_e7
        };
        lon_ok && (self.south_e7..=self.north_e7).contains(&lat_e7)
    }
}

/// Which points a delete removes: a [`PointQuery`] (user, device, time
/// range), optionally only those inside an [`Area`] (a selection on the map),
/// optionally all but one per slot of time (thinning, for retention).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointSelection {
    /// Whose points, of which device, in which time range.
    pub query: PointQuery,
    /// Only points inside this rectangle; `None`: wherever they are.
    pub area: Option<Area>,
    /// Thinning: of the selected points of each device, keep the first of
    /// every slot of this many milliseconds since the epoch and delete the
    /// others. `None`: delete them all.
    pub keep_one_every_ms: Option<i64>,
}

impl From<PointQuery> for PointSelection {
    fn from(query: PointQuery) -> Self {
        Self { query, area: None, keep_one_every_ms: None }
    }
}

/// A delete as the store keeps it: what it covers and when it was made.
/// A local insert leaves out every fix a tombstone covers that is not
/// younger than the tombstone itself (a fix timed after the delete was made
/// cannot be one the user meant to delete), so re-importing a file does not
/// bring deleted points back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tombstone {
    /// The user's devices it covers: one, or `None` for all.
    pub device: Option<DeviceId>,
    /// Inclusive lower time bound; `None` unbounded.
    pub from: Option<Timestamp>,
    /// Inclusive upper time bound; `None` unbounded.
    pub last: Option<Timestamp>,
    /// Only positions inside it; `None` everywhere.
    pub area: Option<Area>,
    /// A thinning ([`PointSelection::keep_one_every_ms`]) rather than a delete.
    pub keep_one_every_ms: Option<i64>,
    /// When the delete was made (the wall-clock part of its version).
    pub made: Timestamp,
}

impl Tombstone {
    /// Whether the tombstone buries `fix` of `device`. A thinning buries
    /// nothing: which fix of a slot is "the first" depends on what else is
    /// stored, so points imported again into a thinned range are stored and
    /// the retention job thins them the next time it runs.
    #[must_use]
    pub fn buries(&self, device: DeviceId, fix: &Fix) -> bool {
        self.buries_at(device, fix.time, Some(fix.coord))
    }

    /// Whether the tombstone buries what `device` recorded at `time` at
    /// `coord` (an interval by its start; one without a position lies in no
    /// area).
    #[must_use]
    pub fn buries_at(&self, device: DeviceId, time: Timestamp, coord: Option<polo_domain::Coord>) -> bool {
        self.keep_one_every_ms.is_none()
            && self.device.is_none_or(|d| d == device)
            && self.from.is_none_or(|from| from <= time)
            && self.last.is_none_or(|last| time <= last)
            && time <= self.made
            && self.area.is_none_or(|a| coord.is_some_and(|c| a.contains(c.lat_e7, c.lon_e7)))
    }
}

/// A stored interval with its identity.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredInterval {
    /// Store-assigned id.
    pub id: i64,
    /// Owner.
    pub user: UserId,
    /// Device it was imported for.
    pub device: DeviceId,
    /// The interval.
    pub interval: Interval,
}

/// What a change-log entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    /// Points were inserted in `[first, last]`.
    PointsInserted,
    /// Points were deleted in `[first, last]` (a range tombstone).
    PointsDeleted,
    /// Intervals were inserted.
    IntervalsInserted,
    /// A user was created or changed.
    User,
    /// A device was created or changed.
    Device,
    /// The user edited derived data (renamed or merged a place, corrected a
    /// transport mode, changed timeline settings); `count` rows were written.
    Edit,
    /// The user's account was deleted with everything it held
    /// ([`Store::delete_user`]); `user` is the id it had.
    AccountDeleted,
}

/// One entry of the per-instance change log, in commit order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// Position in the change sequence.
    pub seq: Seq,
    /// What happened.
    pub kind: ChangeKind,
    /// Whose data changed.
    pub user: UserId,
    /// Which device, for point and interval changes.
    pub device: Option<DeviceId>,
    /// Earliest affected time.
    pub first: Option<Timestamp>,
    /// Latest affected time (inclusive).
    pub last: Option<Timestamp>,
    /// Rows affected.
    pub count: u64,
}

/// What [`Store::delete_user`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DeletedAccount {
    /// The account's login name.
    pub name: String,
    /// Points removed with it.
    pub points: u64,
    /// Devices removed with it.
    pub devices: u64,
    /// The seq of the [`ChangeKind::AccountDeleted`] change.
    pub seq: Seq,
}

/// Disk usage figures.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StorageStats {
    /// Points stored.
    pub points: u64,
    /// Point chunks stored.
    pub chunks: u64,
    /// Bytes of the stored point chunks (encoded payloads).
    pub chunk_bytes: u64,
    /// Bytes the whole database occupies on disk.
    pub file_bytes: u64,
}

/// The storage interface. Implementations must pass [`conformance`].
///
/// Every write that changes something appends exactly one [`Change`] with the
/// next [`Seq`] (creating a user or a device included); a write that changes
/// nothing (all duplicates, an existing device, an empty delete) appends none
/// and reports `seq: None`.
///
/// Tokens and sessions are the exception: they are credentials local to one
/// instance, not replicated data, so creating, using, revoking or expiring
/// them appends no [`Change`] and leaves [`Store::last_seq`] alone. The same
/// holds for shares, location grants, instance settings, roles, instance
/// records and the audit log ([`records`]). (Changing
/// a password is a user change and does append one.)
pub trait Store: Send + Sync {
    /// Creates a user; `name` must be unique.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] for a taken name.
    fn create_user(&self, name: &str, password_hash: &str, is_admin: bool) -> StoreResult<User>;
    /// Looks a user up by name.
    ///
    /// # Errors
    /// Backend failures only; a missing user is `Ok(None)`.
    fn user_by_name(&self, name: &str) -> StoreResult<Option<User>>;
    /// All users, by id.
    ///
    /// # Errors
    /// Backend failures.
    fn list_users(&self) -> StoreResult<Vec<User>>;
    /// The device of `user` called `name`, created if missing.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    fn ensure_device(&self, user: UserId, name: &str) -> StoreResult<Device>;
    /// All devices of a user, by id.
    ///
    /// # Errors
    /// Backend failures.
    fn list_devices(&self, user: UserId) -> StoreResult<Vec<Device>>;
    /// The passphrase the device's tracker app encrypts its payloads with
    /// (OwnTracks' "secret encryption key"), if one is set. It is a shared
    /// secret the server must be able to use, so it is stored as given.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `device` is not the user's.
    fn device_encryption_key(&self, user: UserId, device: DeviceId) -> StoreResult<Option<String>>;
    /// Sets (`Some`) or clears (`None`) the device's encryption passphrase;
    /// appends a [`ChangeKind::Device`] change when it changed anything.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `device` is not the user's.
    fn set_device_encryption_key(&self, user: UserId, device: DeviceId, key: Option<&str>) -> StoreResult<()>;
    /// The device's card, if it sent one.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `device` is not the user's.
    fn device_card(&self, user: UserId, device: DeviceId) -> StoreResult<Option<DeviceCard>>;
    /// Replaces (`Some`) or removes (`None`) the device's card; appends a
    /// [`ChangeKind::Device`] change when it changed anything.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `device` is not the user's.
    fn set_device_card(&self, user: UserId, device: DeviceId, card: Option<&DeviceCard>) -> StoreResult<()>;
    /// Looks a user up by id.
    ///
    /// # Errors
    /// Backend failures only; a missing user is `Ok(None)`.
    fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>>;
    /// Replaces a user's Argon2 PHC string; appends a [`ChangeKind::User`] change.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    fn set_password(&self, user: UserId, password_hash: &str) -> StoreResult<()>;
    /// Deletes `user`'s account and everything that belongs to it, in one
    /// transaction: the user row, devices, points, intervals, tombstones,
    /// derived rows and edits, tokens, sessions, shares, location grants it
    /// made or was given, import job records, its change-log entries and the
    /// derived cursors named after it (`<prefix>:<user id>` or
    /// `<prefix>:<user id>:…`). Other users are untouched.
    ///
    /// What stays is an **account tombstone**: the name, the id it had and
    /// the version of the deletion, with one [`ChangeKind::AccountDeleted`]
    /// change. It replicates (peers delete the account too) and keeps
    /// changes of the account older than the deletion from bringing it back
    /// ([`replication::apply::account_entry`]). A new account may take the
    /// name; ids are never reused.
    ///
    /// An instance keeps an administrator: deleting the only one is refused
    /// (checked in the same transaction, so two deletions at once cannot
    /// both pass).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user, [`StoreError::Refused`]
    /// for the last administrator; backend failures (nothing is deleted
    /// then).
    fn delete_user(&self, user: UserId) -> StoreResult<DeletedAccount>;

    /// Stores a new token for a device of `user`, by the SHA-256 of the
    /// token, with its scopes and the token that made it. Token ids are
    /// never reused. No change-log entry (see the trait docs).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `device` is not a device of `user`, or
    /// `grant.created_by` is not (any more) a token of `user`;
    /// [`StoreError::AlreadyExists`] for a hash that is already stored.
    fn create_token(
        &self,
        user: UserId,
        device: DeviceId,
        label: &str,
        token_hash: &[u8; 32],
        grant: TokenGrant,
    ) -> StoreResult<Token>;
    /// The token with this hash and its user. Marks the token used when its
    /// `last_used` is older than [`TOKEN_TOUCH_INTERVAL_MS`] (best effort: a
    /// backend may skip the update when its writer is busy), and returns the
    /// token as updated.
    ///
    /// # Errors
    /// Backend failures only; an unknown hash is `Ok(None)`.
    fn token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<(Token, User)>>;
    /// A user's tokens, by id.
    ///
    /// # Errors
    /// Backend failures.
    fn list_tokens(&self, user: UserId) -> StoreResult<Vec<Token>>;
    /// Deletes token `id` of `user` and, in the same transaction, what it
    /// made: the tokens it made (and theirs, and so on) are deleted, their
    /// shares revoked and their location grants withdrawn. `false` when
    /// `user` has no such token.
    ///
    /// # Errors
    /// Backend failures.
    fn revoke_token(&self, user: UserId, id: i64) -> StoreResult<bool>;

    /// Stores a login session by the SHA-256 of its cookie value.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user;
    /// [`StoreError::AlreadyExists`] for a hash that is already stored.
    fn create_session(
        &self,
        session_hash: &[u8; 32],
        user: UserId,
        csrf_token: &str,
        expires: Timestamp,
    ) -> StoreResult<Session>;
    /// The session with this hash and its user, unless it has expired
    /// (`expires <= now`).
    ///
    /// # Errors
    /// Backend failures only; unknown and expired sessions are `Ok(None)`.
    fn session_by_hash(&self, session_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<(Session, User)>>;
    /// Deletes a session (logout); `false` when there was none.
    ///
    /// # Errors
    /// Backend failures.
    fn delete_session(&self, session_hash: &[u8; 32]) -> StoreResult<bool>;
    /// Deletes every session of `user` except `keep` (after a password
    /// change); returns how many were deleted.
    ///
    /// # Errors
    /// Backend failures.
    fn delete_user_sessions(&self, user: UserId, keep: Option<&[u8; 32]>) -> StoreResult<u64>;
    /// Deletes sessions with `expires <= now`; returns how many.
    ///
    /// # Errors
    /// Backend failures.
    fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64>;

    /// Stores fixes for one device in one transaction. A fix whose
    /// `(user, device, time)` already exists is a duplicate and leaves the
    /// stored point untouched. `fixes` need not be sorted and may repeat times
    /// (the first one wins). The change entry spans the added points' times
    /// and counts them.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `device` is not a device of `user`;
    /// backend failures. Nothing of the batch is stored then.
    fn insert_points(&self, user: UserId, device: DeviceId, fixes: &[Fix]) -> StoreResult<WriteOutcome>;
    /// [`Store::insert_points`], also calling `added` with the time of every
    /// fix it added (once each, in no particular order) before it commits.
    /// Live ingest shares one write between many requests and tells each
    /// request exactly which of its points were new.
    ///
    /// # Errors
    /// As [`Store::insert_points`]; `added` may have been called for a
    /// write that then failed.
    fn insert_points_reporting(
        &self,
        user: UserId,
        device: DeviceId,
        fixes: &[Fix],
        added: &mut dyn FnMut(Timestamp),
    ) -> StoreResult<WriteOutcome>;
    /// [`Store::insert_points_reporting`] for several devices at once,
    /// calling `added` with a group's index and each time it added. Each
    /// group gets its own outcome: a group that fails (a device that is
    /// not its user's, say) stores nothing and does not stop the others.
    /// Live ingest writes everything its clients sent meanwhile this way, so
    /// that many phones posting at once cost one commit rather than one each.
    ///
    /// The default writes the groups one after the other; a backend that can
    /// commit them together should.
    ///
    /// # Errors
    /// A failure that concerns no group in particular (the commit itself):
    /// then nothing at all was stored, whatever the groups' outcomes say.
    /// An implementation that panics must likewise have stored nothing
    /// (a transaction rolled back as it unwound); the default catches a
    /// panic per group and reports it as that group's error.
    fn insert_point_groups(
        &self,
        groups: &mut [PointGroup<'_>],
        added: &mut dyn FnMut(usize, Timestamp),
    ) -> StoreResult<()> {
        insert_groups_one_by_one(groups, added, |group, added| {
            self.insert_points_reporting(group.user, group.device, group.fixes, added)
        });
        Ok(())
    }
    /// How many [`Store::insert_point_groups`] calls live ingest should keep
    /// in flight at once. One for a store whose commits take turns anyway
    /// (SQLite's single writer); more where a commit's wait for its disk
    /// flush happens after it let the next writer in, so that the next
    /// batch is written while the last one is made durable (PostgreSQL).
    fn live_writers(&self) -> usize {
        1
    }
    /// Streams the matching points ordered by device, then time, to `visit`
    /// until it breaks. Memory stays bounded by one chunk.
    ///
    /// # Errors
    /// Backend failures and corrupt chunks.
    fn scan_points(&self, query: &PointQuery, visit: &mut dyn FnMut(Point) -> ControlFlow<()>) -> StoreResult<()>;
    /// The latest point of one device of `user` (`None` without points, or
    /// when the device is not `user`'s). Reads only the device's last chunk.
    ///
    /// # Errors
    /// Backend failures and corrupt chunks.
    fn last_point(&self, user: UserId, device: DeviceId) -> StoreResult<Option<Point>>;
    /// Number of points stored for a user.
    ///
    /// # Errors
    /// Backend failures.
    fn count_points(&self, user: UserId) -> StoreResult<u64>;
    /// Deletes a user's points in `[from, to)`, optionally of one device, and
    /// records one range tombstone in the change log: kind
    /// [`ChangeKind::PointsDeleted`], the query's device, `first = from`,
    /// `last = to - 1` (`None` where unbounded), `count` = points removed.
    ///
    /// # Errors
    /// Backend failures.
    fn delete_points(&self, query: &PointQuery) -> StoreResult<WriteOutcome> {
        self.delete_selection(&PointSelection::from(query.clone()))
    }
    /// [`Store::delete_points`] of the points of the query that lie inside
    /// the selection's area, when it has one. The tombstone keeps the area:
    /// it replicates, and the points it covers are not stored again by
    /// [`Store::insert_points`]. The tombstone is recorded even when the
    /// area held no stored point (a re-import must still leave them out).
    ///
    /// # Errors
    /// Backend failures.
    fn delete_selection(&self, selection: &PointSelection) -> StoreResult<WriteOutcome>;
    /// [`Store::insert_points`] that stores fixes a delete buried too: the
    /// user asked for deleted points back (`polo import --restore-deleted`,
    /// an undo). They get a newer version than the tombstone, so replicas
    /// take them too.
    ///
    /// # Errors
    /// As [`Store::insert_points`].
    fn restore_points(&self, user: UserId, device: DeviceId, fixes: &[Fix]) -> StoreResult<WriteOutcome>;
    /// Keeps what a delete removed ([`undo`]) so that any node can undo the
    /// delete until `kept.expires`, across restarts. Replaces a record kept
    /// under the same token, drops every record that has expired by
    /// `kept.made` (of any user), and `kept.user`'s oldest beyond
    /// [`undo::UNDO_PER_USER`]. Local to the instance: no change-log entry.
    ///
    /// # Errors
    /// Backend failures.
    fn keep_undo(&self, kept: &KeptUndo) -> StoreResult<()>;
    /// Takes `user`'s record kept under `token_hash`: removes and returns
    /// it, unless it expired by `now` (then it is removed and `None`
    /// returned). Another user's token is `None` and stays. Of two callers
    /// taking the same record, one gets it.
    ///
    /// # Errors
    /// Backend failures.
    fn take_undo(&self, user: UserId, token_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<KeptUndo>>;
    /// The user's tombstones that may bury points of `device` (its own and
    /// the user-wide ones) between `from` and `last`, inclusive.
    ///
    /// # Errors
    /// Backend failures.
    fn tombstones(
        &self,
        user: UserId,
        device: DeviceId,
        from: Timestamp,
        last: Timestamp,
    ) -> StoreResult<Vec<Tombstone>>;

    /// Stores intervals for one device in one transaction; an interval whose
    /// identity (user, device, kind, start, end, [`Interval::identity_key`])
    /// exists is a duplicate.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] when `device` is not a device of `user`;
    /// backend failures.
    fn insert_intervals(&self, user: UserId, device: DeviceId, intervals: &[Interval]) -> StoreResult<WriteOutcome>;
    /// [`Store::insert_intervals`] that stores intervals a delete buried too
    /// (`polo import --restore-deleted`, an undo); [`Store::insert_intervals`]
    /// leaves out an interval whose start a tombstone covers, as it does points.
    ///
    /// # Errors
    /// As [`Store::insert_intervals`].
    fn restore_intervals(&self, user: UserId, device: DeviceId, intervals: &[Interval]) -> StoreResult<WriteOutcome>;
    /// A user's intervals overlapping `[from, to)`, optionally of one kind, by
    /// start time. An interval covers `[start, end]`, so it overlaps when
    /// `end >= from` and `start < to`.
    ///
    /// # Errors
    /// Backend failures.
    fn intervals(
        &self,
        user: UserId,
        kind: Option<IntervalKind>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> StoreResult<Vec<StoredInterval>>;

    /// The derived rows in `range`, by key.
    ///
    /// # Errors
    /// Backend failures.
    fn derived_range(&self, user: UserId, range: &DerivedRange) -> StoreResult<Vec<DerivedRow>>;
    /// At most `limit` rows of (kind, scope) with `key < before`, latest key first.
    ///
    /// # Errors
    /// Backend failures.
    fn derived_before(
        &self,
        user: UserId,
        kind: DerivedKind,
        scope: DerivedScope,
        before: i64,
        limit: usize,
    ) -> StoreResult<Vec<DerivedRow>>;
    /// Applies `batch` in one transaction. With `edit`, the write is the
    /// user's own and appends one [`ChangeKind::Edit`] change counting the
    /// rows put, whose seq is returned; recomputed data (`edit = false`)
    /// appends none and returns `None`.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user or a device that is not
    /// the user's; backend failures (nothing of the batch is stored then).
    fn derived_write(&self, user: UserId, batch: &DerivedBatch, edit: bool) -> StoreResult<Option<Seq>>;
    /// How far into the change log the computation called `name` has got
    /// (0 when it never ran).
    ///
    /// # Errors
    /// Backend failures.
    fn derived_cursor(&self, name: &str) -> StoreResult<Seq>;
    /// Records the computation's progress.
    ///
    /// # Errors
    /// Backend failures.
    fn set_derived_cursor(&self, name: &str, seq: Seq) -> StoreResult<()>;

    /// Change-log entries after `after`, oldest first, at most `limit`.
    ///
    /// # Errors
    /// Backend failures.
    fn changes_since(&self, after: Seq, limit: usize) -> StoreResult<Vec<Change>>;
    /// The latest change sequence number (0 for an empty store).
    ///
    /// # Errors
    /// Backend failures.
    fn last_seq(&self) -> StoreResult<Seq>;
    /// The instance's epoch: an opaque id of one unbroken history of the
    /// change log. It is fixed at creation and replaced when the instance is
    /// restored from a backup, whose change log stops at the backup, so
    /// sequence numbers after it may be reused for different changes. A
    /// replication cursor carries `(epoch, seq)`; a peer that sees another
    /// epoch knows the source was rewound.
    ///
    /// # Errors
    /// Backend failures.
    fn epoch(&self) -> StoreResult<String>;
    // ------------------------------------------------------------ replication
    // See [`replication`] for the model.

    /// This instance's id: the origin its own changes carry. Fixed at
    /// creation and replaced when the instance is restored from a backup
    /// (the restored copy is a new instance; the changes it holds keep the
    /// old id as their origin).
    ///
    /// # Errors
    /// Backend failures.
    fn instance_id(&self) -> StoreResult<String>;
    /// The epochs of this instance's change log, oldest first; the last is
    /// [`Store::epoch`].
    ///
    /// # Errors
    /// Backend failures.
    fn epochs(&self) -> StoreResult<Vec<EpochSpan>>;
    /// Makes this store a new instance after it was restored from a
    /// backup, and returns its new epoch (see [`Store::epoch`]). The change
    /// log it holds stops at the backup, so its history is no longer the one
    /// peers followed under the old epoch, and it is not the instance it
    /// was copied from: it gets a new instance id, the changes it holds
    /// keep the old id as their origin, the epoch history records where the
    /// new epoch forked (at the restored [`Store::last_seq`]), and a
    /// replication checkpoint named after the old instance records that
    /// this copy holds the old instance's feed up to the backup (so
    /// replicating from the old instance resumes there). A restore calls
    /// this before the copy serves anything. It appends no change.
    ///
    /// # Errors
    /// Backend failures.
    fn renew_epoch(&self) -> StoreResult<String>;
    /// Reads the changes after `after` that `filter` admits, in commit
    /// order, stopping once the entries carry about `max_weight` points
    /// (at least one entry when there is any). Changes the filter leaves out
    /// still advance [`FeedPage::next`].
    ///
    /// # Errors
    /// Backend failures and corrupt chunks.
    fn replication_feed(&self, after: Seq, max_weight: usize, filter: &FeedFilter) -> StoreResult<FeedPage>;
    /// Applies `entries` (in order) and records `checkpoint` under `name`,
    /// all in one transaction. Users and devices that do not exist yet are
    /// created. Idempotent: applying the same entries again changes nothing
    /// and appends no change.
    ///
    /// # Errors
    /// Backend failures; nothing of the page is applied then.
    fn replication_apply(
        &self,
        name: &str,
        entries: &[FeedEntry],
        checkpoint: &Checkpoint,
    ) -> StoreResult<ApplyOutcome>;
    /// The checkpoint recorded under `name`, if any.
    ///
    /// # Errors
    /// Backend failures.
    fn replication_checkpoint(&self, name: &str) -> StoreResult<Option<Checkpoint>>;
    /// Every recorded checkpoint, by name.
    ///
    /// # Errors
    /// Backend failures.
    fn replication_checkpoints(&self) -> StoreResult<Vec<(String, Checkpoint)>>;
    /// Stores a replication token by the SHA-256 of its secret. Like device
    /// tokens it is local to this instance and appends no change.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] for a hash that is already stored.
    fn create_replication_token(&self, label: &str, token_hash: &[u8; 32]) -> StoreResult<ReplicationToken>;
    /// The replication token with this hash (marking it used at most about
    /// once a minute).
    ///
    /// # Errors
    /// Backend failures only; an unknown hash is `Ok(None)`.
    fn replication_token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<ReplicationToken>>;
    /// All replication tokens, by id.
    ///
    /// # Errors
    /// Backend failures.
    fn list_replication_tokens(&self) -> StoreResult<Vec<ReplicationToken>>;
    /// Deletes a replication token; `false` when there was none.
    ///
    /// # Errors
    /// Backend failures.
    fn revoke_replication_token(&self, id: i64) -> StoreResult<bool>;

    /// Disk usage.
    ///
    /// # Errors
    /// Backend failures.
    fn storage_stats(&self) -> StoreResult<StorageStats>;
    /// Cheap liveness check for `/readyz`.
    ///
    /// # Errors
    /// When the backend is unreachable.
    fn ping(&self) -> StoreResult<()>;
    /// Whether writes can succeed, for `/readyz`: an error while the last
    /// write failed for lack of space and the storage still has no room.
    /// Free of I/O while writes succeed; a backend that cannot fill up
    /// keeps the default, which always answers `Ok`.
    ///
    /// # Errors
    /// [`StoreError::DiskFull`] (naming the store) while writes fail for
    /// lack of space.
    fn check_writable(&self) -> StoreResult<()> {
        Ok(())
    }

    // ------------------------------------------------------------------
    // Sharing (the web app): public share links, location grants between
    // users, runtime instance settings. None of these append a [`Change`]:
    // like tokens they are local to the instance (see `sharing`).
    // ------------------------------------------------------------------

    /// Stores a share of `user`'s history by the SHA-256 of its link secret,
    /// with the device token that made it, if one did (revoking that token
    /// revokes the share).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user, a device that is not
    /// the user's or a `created_by_token` that is not (any more) the user's;
    /// [`StoreError::AlreadyExists`] for a hash already stored.
    fn create_share(
        &self,
        user: UserId,
        share: &NewShare,
        token_hash: &[u8; 32],
        created_by_token: Option<i64>,
    ) -> StoreResult<Share>;
    /// The share with this hash and its owner, while it is active at `now`
    /// (not revoked, `expires > now`).
    ///
    /// # Errors
    /// Backend failures only; unknown, revoked and expired shares are `Ok(None)`.
    fn share_by_hash(&self, token_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<(Share, User)>>;
    /// All of `user`'s shares, revoked and expired ones included, by id.
    ///
    /// # Errors
    /// Backend failures.
    fn list_shares(&self, user: UserId) -> StoreResult<Vec<Share>>;
    /// Revokes share `id` of `user` at `at` (an already revoked share keeps
    /// its first revocation time); `false` when `user` has no such share.
    ///
    /// # Errors
    /// Backend failures.
    fn revoke_share(&self, user: UserId, id: i64, at: Timestamp) -> StoreResult<bool>;

    /// Lets `viewer` see `owner`'s location; `false` when the grant existed
    /// (or `owner == viewer`: users always see themselves; nothing is stored).
    /// A new grant records the device token that made it, if one did
    /// (revoking that token withdraws the grant); an existing grant keeps
    /// its maker.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user, or a `created_by_token`
    /// that is not (any more) a token of `owner`.
    fn grant_location(&self, owner: UserId, viewer: UserId, created_by_token: Option<i64>) -> StoreResult<bool>;
    /// Withdraws `owner`'s grant to `viewer`; `false` when there was none.
    ///
    /// # Errors
    /// Backend failures.
    fn revoke_location_grant(&self, owner: UserId, viewer: UserId) -> StoreResult<bool>;
    /// The grants `owner` made, by viewer id.
    ///
    /// # Errors
    /// Backend failures.
    fn location_grants_by(&self, owner: UserId) -> StoreResult<Vec<LocationGrant>>;
    /// The grants made to `viewer`, by owner id.
    ///
    /// # Errors
    /// Backend failures.
    fn location_grants_to(&self, viewer: UserId) -> StoreResult<Vec<LocationGrant>>;

    /// The instance settings set at runtime, by key.
    ///
    /// # Errors
    /// Backend failures.
    fn instance_settings(&self) -> StoreResult<Vec<(String, String)>>;
    /// Sets (`Some`) or removes (`None`) one instance setting.
    ///
    /// # Errors
    /// Backend failures.
    fn set_instance_setting(&self, key: &str, value: Option<&str>) -> StoreResult<()>;

    // ------------------------------------------------------------------
    // Roles, instance records and the audit log ([`records`]). Local to the
    // instance: none of these append a [`Change`].
    // ------------------------------------------------------------------
    /// Gives `user` the administrator role, or takes it away (an OIDC
    /// login whose role claim changed).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user; backend failures.
    fn set_admin(&self, user: UserId, admin: bool) -> StoreResult<()>;

    /// Gives `user` `role`, or takes every role away (`None`).
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    fn set_user_role(&self, user: UserId, role: Option<Role>) -> StoreResult<()>;
    /// The users holding a role, by id.
    ///
    /// # Errors
    /// Backend failures; [`StoreError::Corrupt`] for a role this polo does
    /// not know.
    fn user_roles(&self) -> StoreResult<Vec<(UserId, Role)>>;
    /// `user`'s role (`None` for no role or an unknown user).
    ///
    /// # Errors
    /// Backend failures; [`StoreError::Corrupt`] for an unknown role.
    fn user_role(&self, user: UserId) -> StoreResult<Option<Role>>;
    /// Applies `writes` in order, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for a record naming an unknown user; backend
    /// failures. Nothing of the batch is stored then.
    fn write_records(&self, writes: &[RecordWrite]) -> StoreResult<()>;
    /// The record of `kind` with `key`.
    ///
    /// # Errors
    /// Backend failures.
    fn record(&self, kind: &str, key: &str) -> StoreResult<Option<Record>>;
    /// Deletes the record of `kind` with `key` and returns it, in one
    /// statement: of callers racing for the same record (on one node or
    /// several), exactly one gets it. For values used once, like a login
    /// challenge.
    ///
    /// # Errors
    /// Backend failures.
    fn take_record(&self, kind: &str, key: &str) -> StoreResult<Option<Record>>;
    /// The records `query` matches, in key order (byte order).
    ///
    /// # Errors
    /// Backend failures.
    fn records(&self, query: &RecordQuery) -> StoreResult<Vec<Record>>;
    /// The audit entries `query` matches, newest (highest id) first.
    ///
    /// # Errors
    /// Backend failures.
    fn audit_log(&self, query: &AuditQuery) -> StoreResult<Vec<AuditEntry>>;

    // ------------------------------------------------ zones ([`zones`])

    // Zones, the event log and webhooks ([`zones`]). Local to the instance:
    // none of it appends a change.

    /// Stores a new zone of `user` and returns its id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    fn create_zone(&self, user: UserId, body: &str, at: Timestamp) -> StoreResult<i64>;
    /// Replaces the body of `user`'s zone `id`; `false` if there is none.
    fn update_zone(&self, user: UserId, id: i64, body: &str, at: Timestamp) -> StoreResult<bool>;
    /// Deletes `user`'s zone `id` and every device's state in it; `false`
    /// if there is none. Its events stay in the log.
    fn delete_zone(&self, user: UserId, id: i64) -> StoreResult<bool>;
    /// The zones of `user` (those they made for a group too), or of the
    /// whole instance, by id.
    fn zones(&self, user: Option<UserId>) -> StoreResult<Vec<ZoneRow>>;
    /// Stores a new zone made by `user` that belongs to `group` and returns
    /// its id. Its row names `user` (whose account holds it), and
    /// [`ZoneRow::group`] the group.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user or group.
    fn create_group_zone(&self, user: UserId, group: i64, body: &str, at: Timestamp) -> StoreResult<i64>;
    /// The zones that belong to `group`, by id.
    fn group_zones(&self, group: i64) -> StoreResult<Vec<ZoneRow>>;
    /// The stored states of `user`'s `device` (zone rows and its own), by zone.
    fn zone_states(&self, user: UserId, device: DeviceId) -> StoreResult<Vec<ZoneStateRow>>;
    /// Commits an evaluation step: its states, its events (those whose
    /// key is new) and their deliveries, in one transaction. Returns each
    /// event's id, or `None` for one the log already had.
    fn commit_events(&self, batch: &EventBatch) -> StoreResult<Vec<Option<i64>>>;
    /// `user`'s events with an id above `after`, oldest first, at most `limit`.
    fn events(&self, user: UserId, after: i64, limit: usize) -> StoreResult<Vec<StoredEvent>>;
    /// Stores a webhook subscription of `user` and returns its id.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    fn create_webhook(&self, user: UserId, body: &str, secret: &str, at: Timestamp) -> StoreResult<i64>;
    /// The subscriptions of `user`, or of the whole instance, by id.
    fn webhooks(&self, user: Option<UserId>) -> StoreResult<Vec<WebhookRow>>;
    /// Deletes `user`'s subscription `id` with its deliveries; `false` if
    /// there is none.
    fn delete_webhook(&self, user: UserId, id: i64) -> StoreResult<bool>;
    /// Replaces the body of `user`'s subscription `id`; `false` if there is
    /// none. With `drop_pending`, in the same transaction, every pending
    /// delivery of it ends `dead` at `at` with that as its `last_error`,
    /// its attempts unchanged (a disabled subscription sends nothing more).
    fn update_webhook(
        &self,
        user: UserId,
        id: i64,
        body: &str,
        drop_pending: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool>;
    /// Pending deliveries due at `now`: of each subscription only the
    /// oldest pending one, and only if it is due; soonest due first, at most `limit`.
    fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<DueDelivery>>;
    /// Records an attempt; `false` if the delivery is gone, finished, or
    /// no longer has `attempts_before` attempts (recorded elsewhere).
    fn update_delivery(&self, update: &DeliveryUpdate) -> StoreResult<bool>;
    /// The deliveries of `user`'s subscription `webhook`, newest first,
    /// those with an id below `before` if given, at most `limit`.
    fn deliveries(&self, user: UserId, webhook: i64, before: Option<i64>, limit: usize) -> StoreResult<Vec<Delivery>>;

    // ------------------------------------------------ groups ([`groups`])

    // Groups, members and invitations. Local to the instance: none of it
    // appends a change.

    /// Makes a group named `name` with `creator` as its first member and admin.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    fn create_group(&self, name: &str, creator: UserId, at: Timestamp) -> StoreResult<Group>;
    /// The group `id`, if it exists.
    fn group(&self, id: i64) -> StoreResult<Option<Group>>;
    /// The groups `user` is in, by id.
    fn groups_of(&self, user: UserId) -> StoreResult<Vec<Membership>>;
    /// Renames group `id`; `false` if there is none.
    fn rename_group(&self, id: i64, name: &str) -> StoreResult<bool>;
    /// Deletes group `id` with its members, its invitations, its zones and
    /// every device's state in them; `false` if there is none.
    fn delete_group(&self, id: i64) -> StoreResult<bool>;
    /// The members of group `id`, admins first, then by when they joined.
    fn group_members(&self, id: i64) -> StoreResult<Vec<GroupMember>>;
    /// Makes member `user` of group `id` an admin or not; `false` when they
    /// are not a member.
    ///
    /// # Errors
    /// [`StoreError::Refused`] for demoting the group's last admin.
    fn set_group_admin(&self, id: i64, user: UserId, admin: bool) -> StoreResult<bool>;
    /// Removes `user` from group `id` (and their devices' states in its
    /// zones); `false` when they were not a member.
    ///
    /// # Errors
    /// [`StoreError::Refused`] for removing the group's last admin.
    fn remove_group_member(&self, id: i64, user: UserId) -> StoreResult<bool>;
    /// Stores an invitation by the SHA-256 of its secret.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown group or user;
    /// [`StoreError::AlreadyExists`] for a hash already stored.
    fn create_group_invitation(&self, invitation: &NewInvitation, token_hash: &[u8; 32]) -> StoreResult<Invitation>;
    /// The invitations of group `id`, revoked, expired and used-up ones too, by id.
    fn group_invitations(&self, id: i64) -> StoreResult<Vec<Invitation>>;
    /// Revokes invitation `invitation` of group `id` at `at` (a revoked one
    /// keeps its first time); `false` if the group has no such invitation.
    fn revoke_group_invitation(&self, id: i64, invitation: i64, at: Timestamp) -> StoreResult<bool>;
    /// The invitation with this hash and its group, whatever its state.
    fn invitation_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<(Invitation, Group)>>;
    /// Adds `user` to the group of the invitation with this hash if it
    /// admits someone at `now`, counting the use, in one transaction.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] for an unknown user.
    fn join_group(&self, token_hash: &[u8; 32], user: UserId, now: Timestamp) -> StoreResult<JoinOutcome>;

    // ------------------------------------------------ several nodes ([`nodes`])

    /// Whether other `polo serve` processes may use this store at the same
    /// time (PostgreSQL), so that what a node keeps in memory is not the
    /// whole truth. A store only one server serves (SQLite) says `false`.
    fn is_shared(&self) -> bool {
        false
    }

    /// Takes the lease `name` for `holder` until `ttl` from now, or renews
    /// it when `holder` has it already: `true` when `holder` holds it now.
    /// Another holder's lease is taken only once it has expired.
    ///
    /// # Errors
    /// Backend failures.
    fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool>;
    /// Gives the lease `name` up if `holder` has it (`true` then), so
    /// another node may take it at once.
    ///
    /// # Errors
    /// Backend failures.
    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<bool>;

    /// Records a new import job.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`] for a job id the user has already,
    /// [`StoreError::NotFound`] for an unknown user, backend failures.
    fn create_import_job(&self, job: &ImportJobRecord) -> StoreResult<()>;
    /// Writes an unfinished job's status, progress, heartbeat and summary:
    /// `false` (nothing written) when the job is finished already (another
    /// node failed it as stale) or gone.
    ///
    /// # Errors
    /// Backend failures.
    fn update_import_job(&self, job: &ImportJobRecord) -> StoreResult<bool>;
    /// `user`'s job `id`.
    ///
    /// # Errors
    /// Backend failures.
    fn import_job(&self, user: UserId, id: &str) -> StoreResult<Option<ImportJobRecord>>;
    /// `user`'s jobs, newest first.
    ///
    /// # Errors
    /// Backend failures.
    fn import_jobs(&self, user: UserId) -> StoreResult<Vec<ImportJobRecord>>;
    /// Forgets `user`'s job `id`: `false` when there was none.
    ///
    /// # Errors
    /// Backend failures.
    fn delete_import_job(&self, user: UserId, id: &str) -> StoreResult<bool>;
    /// Fails every queued or running job whose heartbeat is older than
    /// `heartbeat_before`, except `spare_holder`'s, with `error`, finished at
    /// `now`; returns how many.
    ///
    /// # Errors
    /// Backend failures.
    fn fail_stale_import_jobs(
        &self,
        heartbeat_before: Timestamp,
        spare_holder: &str,
        error: &str,
        now: Timestamp,
    ) -> StoreResult<u64>;

    /// Counts one failure against `key` at `now` and returns the key's
    /// failures, atomically across nodes. A key whose last failure is
    /// `forget_after` or longer before `now` starts again at one.
    ///
    /// # Errors
    /// Backend failures.
    fn count_failure(&self, key: &str, now: Timestamp, forget_after: Duration) -> StoreResult<FailureCount>;
    /// The failures of those of `keys` that have any.
    ///
    /// # Errors
    /// Backend failures.
    fn failure_counts(&self, keys: &[&str]) -> StoreResult<Vec<(String, FailureCount)>>;
    /// Forgets `key`'s failures.
    ///
    /// # Errors
    /// Backend failures.
    fn clear_failures(&self, key: &str) -> StoreResult<()>;
    /// Forgets every key whose last failure is before `before`; returns how many.
    ///
    /// # Errors
    /// Backend failures.
    fn forget_failures_before(&self, before: Timestamp) -> StoreResult<u64>;

    /// Hands `messages` (each at most [`nodes::MAX_LIVE_MESSAGE`] bytes) to
    /// the other nodes' [`Store::subscribe_live`] receivers, in order. A
    /// store no other node shares has nobody to tell and does nothing.
    ///
    /// # Errors
    /// An over-long message, backend failures.
    fn publish_live(&self, messages: &[String]) -> StoreResult<()> {
        let _ = messages;
        Ok(())
    }
    /// Subscribes to what the other nodes publish from now on (never this
    /// store's own messages): [`LiveSubscription::LocalOnly`] when no other
    /// node shares the store.
    ///
    /// # Errors
    /// The store cannot be reached.
    fn subscribe_live(&self) -> StoreResult<LiveSubscription> {
        Ok(LiveSubscription::LocalOnly)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn enospc_is_disk_full_and_other_io_errors_are_backend_errors() {
        // 28 is ENOSPC on Linux and the BSDs; 122 is EDQUOT on Linux.
        let full = StoreError::from_io("writing /data/probe", &std::io::Error::from_raw_os_error(28));
        assert!(full.is_disk_full(), "{full:?}");
        assert!(full.to_string().starts_with("disk full: writing /data/probe"), "{full}");
        #[cfg(target_os = "linux")]
        assert!(StoreError::from_io("x", &std::io::Error::from_raw_os_error(122)).is_disk_full());
        let denied = StoreError::from_io("writing /data/probe", &std::io::Error::from_raw_os_error(13));
        assert!(!denied.is_disk_full(), "{denied:?}");
        assert!(matches!(denied, StoreError::Backend(_)));
    }
}
