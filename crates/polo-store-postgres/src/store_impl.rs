//! The [`Store`] trait, method by method, handed to the module that does it.

use std::ops::ControlFlow;
use std::time::Duration;

use polo_domain::{DeviceId, Fix, Interval, IntervalKind, Point, Seq, Timestamp, UserId};
use polo_store::{
    ApplyOutcome, Change, Checkpoint, DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope, Device,
    DeviceCard, EpochSpan, FailureCount, FeedEntry, FeedFilter, FeedPage, ImportJobRecord, KeptUndo, LiveSubscription,
    LocationGrant, NewShare, PointGroup, PointQuery, PointSelection, ReplicationToken, Session, Share, StorageStats,
    Store, StoreResult, StoredInterval, Token, TokenGrant, Tombstone, User, WriteOutcome,
};

use crate::error::Db;
use crate::{
    PostgresStore, account_deletion, accounts, auth, deletes, derived, groups, intervals, nodes, points, records,
    replication, sharing, undo, zones,
};

impl Store for PostgresStore {
    fn create_user(&self, name: &str, password_hash: &str, is_admin: bool) -> StoreResult<User> {
        accounts::create_user(self, name, password_hash, is_admin)
    }

    fn user_by_name(&self, name: &str) -> StoreResult<Option<User>> {
        accounts::user_by_name(self, name)
    }

    fn list_users(&self) -> StoreResult<Vec<User>> {
        accounts::list_users(self)
    }

    fn ensure_device(&self, user: UserId, name: &str) -> StoreResult<Device> {
        accounts::ensure_device(self, user, name)
    }

    fn list_devices(&self, user: UserId) -> StoreResult<Vec<Device>> {
        accounts::list_devices(self, user)
    }

    fn device_encryption_key(&self, user: UserId, device: DeviceId) -> StoreResult<Option<String>> {
        accounts::device_encryption_key(self, user, device)
    }

    fn set_device_encryption_key(&self, user: UserId, device: DeviceId, key: Option<&str>) -> StoreResult<()> {
        accounts::set_device_encryption_key(self, user, device, key)
    }

    fn device_card(&self, user: UserId, device: DeviceId) -> StoreResult<Option<DeviceCard>> {
        accounts::device_card(self, user, device)
    }

    fn set_device_card(&self, user: UserId, device: DeviceId, card: Option<&DeviceCard>) -> StoreResult<()> {
        accounts::set_device_card(self, user, device, card)
    }

    fn user_by_id(&self, id: UserId) -> StoreResult<Option<User>> {
        accounts::user_by_id(self, id)
    }

    fn set_password(&self, user: UserId, password_hash: &str) -> StoreResult<()> {
        accounts::set_password(self, user, password_hash)
    }

    fn delete_user(&self, user: UserId) -> StoreResult<polo_store::DeletedAccount> {
        account_deletion::delete_user(self, user)
    }

    fn create_token(
        &self,
        user: UserId,
        device: DeviceId,
        label: &str,
        token_hash: &[u8; 32],
        grant: TokenGrant,
    ) -> StoreResult<Token> {
        auth::create_token(self, user, device, label, token_hash, grant)
    }

    fn token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<(Token, User)>> {
        auth::token_by_hash(self, token_hash)
    }

    fn list_tokens(&self, user: UserId) -> StoreResult<Vec<Token>> {
        auth::list_tokens(self, user)
    }

    fn revoke_token(&self, user: UserId, id: i64) -> StoreResult<bool> {
        auth::revoke_token(self, user, id)
    }

    fn create_session(
        &self,
        session_hash: &[u8; 32],
        user: UserId,
        csrf_token: &str,
        expires: Timestamp,
    ) -> StoreResult<Session> {
        auth::create_session(self, session_hash, user, csrf_token, expires)
    }

    fn session_by_hash(&self, session_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<(Session, User)>> {
        auth::session_by_hash(self, session_hash, now)
    }

    fn delete_session(&self, session_hash: &[u8; 32]) -> StoreResult<bool> {
        auth::delete_session(self, session_hash)
    }

    fn delete_user_sessions(&self, user: UserId, keep: Option<&[u8; 32]>) -> StoreResult<u64> {
        auth::delete_user_sessions(self, user, keep)
    }

    fn delete_expired_sessions(&self, now: Timestamp) -> StoreResult<u64> {
        auth::delete_expired_sessions(self, now)
    }

    fn keep_undo(&self, kept: &KeptUndo) -> StoreResult<()> {
        undo::keep_undo(self, kept)
    }

    fn take_undo(&self, user: UserId, token_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<KeptUndo>> {
        undo::take_undo(self, user, token_hash, now)
    }

    fn insert_points(&self, user: UserId, device: DeviceId, fixes: &[Fix]) -> StoreResult<WriteOutcome> {
        points::insert_points(self, user, device, fixes)
    }

    fn insert_points_reporting(
        &self,
        user: UserId,
        device: DeviceId,
        fixes: &[Fix],
        added: &mut dyn FnMut(Timestamp),
    ) -> StoreResult<WriteOutcome> {
        points::insert_points_reporting(self, user, device, fixes, added)
    }

    fn insert_point_groups(
        &self,
        groups: &mut [PointGroup<'_>],
        added: &mut dyn FnMut(usize, Timestamp),
    ) -> StoreResult<()> {
        points::insert_point_groups(self, groups, added)
    }

    fn live_writers(&self) -> usize {
        self.live_writers
    }

    fn scan_points(&self, query: &PointQuery, visit: &mut dyn FnMut(Point) -> ControlFlow<()>) -> StoreResult<()> {
        points::scan_points(self, query, visit)
    }

    fn last_point(&self, user: UserId, device: DeviceId) -> StoreResult<Option<Point>> {
        points::last_point(self, user, device)
    }

    fn count_points(&self, user: UserId) -> StoreResult<u64> {
        points::count_points(self, user)
    }

    fn delete_selection(&self, selection: &PointSelection) -> StoreResult<WriteOutcome> {
        deletes::delete_selection(self, selection)
    }

    fn restore_points(&self, user: UserId, device: DeviceId, fixes: &[Fix]) -> StoreResult<WriteOutcome> {
        points::restore_points(self, user, device, fixes)
    }

    fn tombstones(
        &self,
        user: UserId,
        device: DeviceId,
        from: Timestamp,
        last: Timestamp,
    ) -> StoreResult<Vec<Tombstone>> {
        deletes::tombstones(self, user, device, from, last)
    }

    fn insert_intervals(&self, user: UserId, device: DeviceId, intervals: &[Interval]) -> StoreResult<WriteOutcome> {
        intervals::store_intervals(self, user, device, intervals, false)
    }

    fn restore_intervals(&self, user: UserId, device: DeviceId, intervals: &[Interval]) -> StoreResult<WriteOutcome> {
        intervals::store_intervals(self, user, device, intervals, true)
    }

    fn intervals(
        &self,
        user: UserId,
        kind: Option<IntervalKind>,
        from: Option<Timestamp>,
        to: Option<Timestamp>,
    ) -> StoreResult<Vec<StoredInterval>> {
        intervals::intervals(self, user, kind, from, to)
    }

    fn derived_range(&self, user: UserId, range: &DerivedRange) -> StoreResult<Vec<DerivedRow>> {
        derived::derived_range(self, user, range)
    }

    fn derived_before(
        &self,
        user: UserId,
        kind: DerivedKind,
        scope: DerivedScope,
        before: i64,
        limit: usize,
    ) -> StoreResult<Vec<DerivedRow>> {
        derived::derived_before(self, user, kind, scope, before, limit)
    }

    fn derived_write(&self, user: UserId, batch: &DerivedBatch, edit: bool) -> StoreResult<Option<Seq>> {
        derived::derived_write(self, user, batch, edit)
    }

    fn derived_cursor(&self, name: &str) -> StoreResult<Seq> {
        derived::derived_cursor(self, name)
    }

    fn set_derived_cursor(&self, name: &str, seq: Seq) -> StoreResult<()> {
        derived::set_derived_cursor(self, name, seq)
    }

    fn changes_since(&self, after: Seq, limit: usize) -> StoreResult<Vec<Change>> {
        replication::changes_since(self, after, limit)
    }

    fn last_seq(&self) -> StoreResult<Seq> {
        replication::last_seq(self)
    }

    fn epoch(&self) -> StoreResult<String> {
        replication::epoch(self)
    }

    fn instance_id(&self) -> StoreResult<String> {
        replication::instance_id(self)
    }

    fn epochs(&self) -> StoreResult<Vec<EpochSpan>> {
        replication::epochs(self)
    }

    fn renew_epoch(&self) -> StoreResult<String> {
        replication::renew_epoch(self)
    }

    fn replication_feed(&self, after: Seq, max_weight: usize, filter: &FeedFilter) -> StoreResult<FeedPage> {
        replication::replication_feed(self, after, max_weight, filter)
    }

    fn replication_apply(
        &self,
        name: &str,
        entries: &[FeedEntry],
        checkpoint: &Checkpoint,
    ) -> StoreResult<ApplyOutcome> {
        replication::replication_apply(self, name, entries, checkpoint)
    }

    fn replication_checkpoint(&self, name: &str) -> StoreResult<Option<Checkpoint>> {
        replication::replication_checkpoint(self, name)
    }

    fn replication_checkpoints(&self) -> StoreResult<Vec<(String, Checkpoint)>> {
        replication::replication_checkpoints(self)
    }

    fn create_replication_token(&self, label: &str, token_hash: &[u8; 32]) -> StoreResult<ReplicationToken> {
        replication::create_replication_token(self, label, token_hash)
    }

    fn replication_token_by_hash(&self, token_hash: &[u8; 32]) -> StoreResult<Option<ReplicationToken>> {
        replication::replication_token_by_hash(self, token_hash)
    }

    fn list_replication_tokens(&self) -> StoreResult<Vec<ReplicationToken>> {
        replication::list_replication_tokens(self)
    }

    fn revoke_replication_token(&self, id: i64) -> StoreResult<bool> {
        replication::revoke_replication_token(self, id)
    }

    fn storage_stats(&self) -> StoreResult<StorageStats> {
        points::storage_stats(self)
    }

    fn create_share(
        &self,
        user: UserId,
        share: &NewShare,
        token_hash: &[u8; 32],
        created_by_token: Option<i64>,
    ) -> StoreResult<Share> {
        sharing::create_share(self, user, share, token_hash, created_by_token)
    }

    fn share_by_hash(&self, token_hash: &[u8; 32], now: Timestamp) -> StoreResult<Option<(Share, User)>> {
        sharing::share_by_hash(self, token_hash, now)
    }

    fn list_shares(&self, user: UserId) -> StoreResult<Vec<Share>> {
        sharing::list_shares(self, user)
    }

    fn revoke_share(&self, user: UserId, id: i64, at: Timestamp) -> StoreResult<bool> {
        sharing::revoke_share(self, user, id, at)
    }

    fn grant_location(&self, owner: UserId, viewer: UserId, created_by_token: Option<i64>) -> StoreResult<bool> {
        sharing::grant_location(self, owner, viewer, created_by_token)
    }

    fn revoke_location_grant(&self, owner: UserId, viewer: UserId) -> StoreResult<bool> {
        sharing::revoke_location_grant(self, owner, viewer)
    }

    fn location_grants_by(&self, owner: UserId) -> StoreResult<Vec<LocationGrant>> {
        sharing::location_grants_by(self, owner)
    }

    fn location_grants_to(&self, viewer: UserId) -> StoreResult<Vec<LocationGrant>> {
        sharing::location_grants_to(self, viewer)
    }

    fn instance_settings(&self) -> StoreResult<Vec<(String, String)>> {
        sharing::instance_settings(self)
    }

    fn set_instance_setting(&self, key: &str, value: Option<&str>) -> StoreResult<()> {
        sharing::set_instance_setting(self, key, value)
    }

    fn ping(&self) -> StoreResult<()> {
        self.read(|c| c.simple_query("SELECT 1").map(|_| ()).db())
    }

    fn is_shared(&self) -> bool {
        true
    }

    fn set_user_role(&self, user: UserId, role: Option<polo_store::Role>) -> StoreResult<()> {
        records::set_user_role(self, user, role)
    }

    fn set_admin(&self, user: UserId, admin: bool) -> StoreResult<()> {
        records::set_admin(self, user, admin)
    }

    fn user_roles(&self) -> StoreResult<Vec<(UserId, polo_store::Role)>> {
        records::user_roles(self)
    }

    fn user_role(&self, user: UserId) -> StoreResult<Option<polo_store::Role>> {
        records::user_role(self, user)
    }

    fn create_zone(&self, user: UserId, body: &str, at: Timestamp) -> StoreResult<i64> {
        zones::create_zone(self, user, body, at)
    }

    fn update_zone(&self, user: UserId, id: i64, body: &str, at: Timestamp) -> StoreResult<bool> {
        zones::update_zone(self, user, id, body, at)
    }

    fn delete_zone(&self, user: UserId, id: i64) -> StoreResult<bool> {
        zones::delete_zone(self, user, id)
    }

    fn zones(&self, user: Option<UserId>) -> StoreResult<Vec<polo_store::ZoneRow>> {
        zones::zones(self, user)
    }

    fn zone_states(&self, user: UserId, device: DeviceId) -> StoreResult<Vec<polo_store::ZoneStateRow>> {
        zones::zone_states(self, user, device)
    }

    fn create_group_zone(&self, user: UserId, group: i64, body: &str, at: Timestamp) -> StoreResult<i64> {
        groups::create_group_zone(self, user, group, body, at)
    }

    fn group_zones(&self, group: i64) -> StoreResult<Vec<polo_store::ZoneRow>> {
        groups::group_zones(self, group)
    }

    fn create_group(&self, name: &str, creator: UserId, at: Timestamp) -> StoreResult<polo_store::Group> {
        groups::create_group(self, name, creator, at)
    }

    fn group(&self, id: i64) -> StoreResult<Option<polo_store::Group>> {
        groups::group(self, id)
    }

    fn groups_of(&self, user: UserId) -> StoreResult<Vec<polo_store::Membership>> {
        groups::groups_of(self, user)
    }

    fn rename_group(&self, id: i64, name: &str) -> StoreResult<bool> {
        groups::rename_group(self, id, name)
    }

    fn delete_group(&self, id: i64) -> StoreResult<bool> {
        groups::delete_group(self, id)
    }

    fn group_members(&self, id: i64) -> StoreResult<Vec<polo_store::GroupMember>> {
        groups::group_members(self, id)
    }

    fn set_group_admin(&self, id: i64, user: UserId, admin: bool) -> StoreResult<bool> {
        groups::set_group_admin(self, id, user, admin)
    }

    fn remove_group_member(&self, id: i64, user: UserId) -> StoreResult<bool> {
        groups::remove_group_member(self, id, user)
    }

    fn create_group_invitation(
        &self,
        invitation: &polo_store::NewInvitation,
        token_hash: &[u8; 32],
    ) -> StoreResult<polo_store::Invitation> {
        groups::create_group_invitation(self, invitation, token_hash)
    }

    fn group_invitations(&self, id: i64) -> StoreResult<Vec<polo_store::Invitation>> {
        groups::group_invitations(self, id)
    }

    fn revoke_group_invitation(&self, id: i64, invitation: i64, at: Timestamp) -> StoreResult<bool> {
        groups::revoke_group_invitation(self, id, invitation, at)
    }

    fn invitation_by_hash(
        &self,
        token_hash: &[u8; 32],
    ) -> StoreResult<Option<(polo_store::Invitation, polo_store::Group)>> {
        groups::invitation_by_hash(self, token_hash)
    }

    fn join_group(&self, token_hash: &[u8; 32], user: UserId, now: Timestamp) -> StoreResult<polo_store::JoinOutcome> {
        groups::join_group(self, token_hash, user, now)
    }

    fn commit_events(&self, batch: &polo_store::EventBatch) -> StoreResult<Vec<Option<i64>>> {
        zones::commit_events(self, batch)
    }

    fn events(&self, user: UserId, after: i64, limit: usize) -> StoreResult<Vec<polo_store::StoredEvent>> {
        zones::events(self, user, after, limit)
    }

    fn create_webhook(&self, user: UserId, body: &str, secret: &str, at: Timestamp) -> StoreResult<i64> {
        zones::create_webhook(self, user, body, secret, at)
    }

    fn webhooks(&self, user: Option<UserId>) -> StoreResult<Vec<polo_store::WebhookRow>> {
        zones::webhooks(self, user)
    }

    fn delete_webhook(&self, user: UserId, id: i64) -> StoreResult<bool> {
        zones::delete_webhook(self, user, id)
    }

    fn update_webhook(
        &self,
        user: UserId,
        id: i64,
        body: &str,
        drop_pending: Option<&str>,
        at: Timestamp,
    ) -> StoreResult<bool> {
        zones::update_webhook(self, user, id, body, drop_pending, at)
    }

    fn due_deliveries(&self, now: Timestamp, limit: usize) -> StoreResult<Vec<polo_store::DueDelivery>> {
        zones::due_deliveries(self, now, limit)
    }

    fn update_delivery(&self, update: &polo_store::DeliveryUpdate) -> StoreResult<bool> {
        zones::update_delivery(self, update)
    }

    fn deliveries(
        &self,
        user: UserId,
        webhook: i64,
        before: Option<i64>,
        limit: usize,
    ) -> StoreResult<Vec<polo_store::Delivery>> {
        zones::deliveries(self, user, webhook, before, limit)
    }

    fn write_records(&self, writes: &[polo_store::RecordWrite]) -> StoreResult<()> {
        records::write_records(self, writes)
    }

    fn record(&self, kind: &str, key: &str) -> StoreResult<Option<polo_store::Record>> {
        records::record(self, kind, key)
    }

    fn take_record(&self, kind: &str, key: &str) -> StoreResult<Option<polo_store::Record>> {
        records::take_record(self, kind, key)
    }

    fn records(&self, query: &polo_store::RecordQuery) -> StoreResult<Vec<polo_store::Record>> {
        records::records(self, query)
    }

    fn audit_log(&self, query: &polo_store::AuditQuery) -> StoreResult<Vec<polo_store::AuditEntry>> {
        records::audit_log(self, query)
    }

    fn try_lease(&self, name: &str, holder: &str, ttl: Duration) -> StoreResult<bool> {
        nodes::try_lease(self, name, holder, ttl)
    }

    fn release_lease(&self, name: &str, holder: &str) -> StoreResult<bool> {
        nodes::release_lease(self, name, holder)
    }

    fn create_import_job(&self, job: &ImportJobRecord) -> StoreResult<()> {
        nodes::create_import_job(self, job)
    }

    fn update_import_job(&self, job: &ImportJobRecord) -> StoreResult<bool> {
        nodes::update_import_job(self, job)
    }

    fn import_job(&self, user: UserId, id: &str) -> StoreResult<Option<ImportJobRecord>> {
        nodes::import_job(self, user, id)
    }

    fn import_jobs(&self, user: UserId) -> StoreResult<Vec<ImportJobRecord>> {
        nodes::import_jobs(self, user)
    }

    fn delete_import_job(&self, user: UserId, id: &str) -> StoreResult<bool> {
        nodes::delete_import_job(self, user, id)
    }

    fn fail_stale_import_jobs(
        &self,
        heartbeat_before: Timestamp,
        spare_holder: &str,
        error: &str,
        now: Timestamp,
    ) -> StoreResult<u64> {
        nodes::fail_stale_import_jobs(self, heartbeat_before, spare_holder, error, now)
    }

    fn count_failure(&self, key: &str, now: Timestamp, forget_after: Duration) -> StoreResult<FailureCount> {
        nodes::count_failure(self, key, now, forget_after)
    }

    fn failure_counts(&self, keys: &[&str]) -> StoreResult<Vec<(String, FailureCount)>> {
        nodes::failure_counts(self, keys)
    }

    fn clear_failures(&self, key: &str) -> StoreResult<()> {
        nodes::clear_failures(self, key)
    }

    fn forget_failures_before(&self, before: Timestamp) -> StoreResult<u64> {
        nodes::forget_failures_before(self, before)
    }

    fn publish_live(&self, messages: &[String]) -> StoreResult<()> {
        nodes::publish_live(self, messages)
    }

    fn subscribe_live(&self) -> StoreResult<LiveSubscription> {
        nodes::subscribe_live(self)
    }
}
