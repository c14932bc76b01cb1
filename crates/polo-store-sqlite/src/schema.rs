//! The schema and its migrations.
//!
//! The schema version lives in `PRAGMA user_version` (the database header, so
//! it changes atomically with the migration's transaction). [`MIGRATIONS`] is
//! append-only: entry `i` takes version `i` to `i + 1`; released entries are
//! never edited. A database newer than this binary is refused rather than
//! guessed at.
//!
//! This is the embedded file's layout (rowid tables, instance-wide unique
//! ids); the sharding-ready layout is the PostgreSQL store's.

use polo_store::{StoreError, StoreResult};
use rusqlite::{Connection, TransactionBehavior};

use crate::Db;

/// Version 1: users, devices, point chunks, intervals, the change log.
const V1: &str = "
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('last_seq', 0);

CREATE TABLE users (
    id            INTEGER PRIMARY KEY,
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      INTEGER NOT NULL,
    created_ms    INTEGER NOT NULL
);

CREATE TABLE devices (
    user_id INTEGER NOT NULL REFERENCES users (id),
    id      INTEGER NOT NULL UNIQUE,
    name    TEXT NOT NULL,
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, name)
);

-- Time-ordered, non-overlapping chunks of one device's points, encoded by
-- polo_store::codec. A rowid table: the blobs are kilobytes, and the blob is
-- the last column so reading the bounds never touches its overflow pages.
CREATE TABLE point_chunks (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    first_ms  INTEGER NOT NULL,
    last_ms   INTEGER NOT NULL,
    n         INTEGER NOT NULL,
    max_seq   INTEGER NOT NULL,
    data      BLOB NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, id)
);
CREATE UNIQUE INDEX point_chunks_by_time ON point_chunks (user_id, device_id, first_ms);

CREATE TABLE intervals (
    id           INTEGER PRIMARY KEY,
    user_id      INTEGER NOT NULL,
    device_id    INTEGER NOT NULL,
    kind         INTEGER NOT NULL,
    start_ms     INTEGER NOT NULL,
    end_ms       INTEGER NOT NULL,
    identity_key TEXT NOT NULL,
    start_offset INTEGER,
    end_offset   INTEGER,
    start_lat    INTEGER,
    start_lon    INTEGER,
    end_lat      INTEGER,
    end_lon      INTEGER,
    place_id     TEXT,
    name         TEXT,
    category     TEXT,
    distance_m   REAL,
    confidence   REAL,
    level        INTEGER NOT NULL,
    source       INTEGER NOT NULL,
    extras       TEXT,
    seq          INTEGER NOT NULL,
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, id)
);
CREATE UNIQUE INDEX intervals_identity
    ON intervals (user_id, device_id, kind, start_ms, end_ms, identity_key);
CREATE INDEX intervals_by_start ON intervals (user_id, start_ms);

CREATE TABLE changes (
    seq       INTEGER PRIMARY KEY,
    kind      INTEGER NOT NULL,
    user_id   INTEGER NOT NULL,
    device_id INTEGER,
    first_ms  INTEGER,
    last_ms   INTEGER,
    count     INTEGER NOT NULL
);
";

/// Version 2: device tokens and web sessions. Both are stored only as
/// SHA-256 hashes of the secret; neither is replicated data, so neither
/// takes part in the change log.
const V2: &str = "
CREATE TABLE tokens (
    user_id      INTEGER NOT NULL REFERENCES users (id),
    id           INTEGER NOT NULL UNIQUE,
    device_id    INTEGER NOT NULL,
    label        TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    created_ms   INTEGER NOT NULL,
    last_used_ms INTEGER,
    PRIMARY KEY (user_id, id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, id)
);

CREATE TABLE sessions (
    user_id      INTEGER NOT NULL REFERENCES users (id),
    session_hash BLOB PRIMARY KEY NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_ms   INTEGER NOT NULL,
    expires_ms   INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_ms);
";

/// Version 3: the OwnTracks payload encryption passphrase per device.
const V3: &str = "
ALTER TABLE devices ADD COLUMN encryption_key TEXT;
";

/// Version 4: the card (display name and picture) a device sends.
const V4: &str = "
ALTER TABLE devices ADD COLUMN card_name TEXT;
ALTER TABLE devices ADD COLUMN card_face TEXT;
";

/// Version 5: derived data (see `polo_store::derived`) and the cursors of
/// the computations that maintain it. A rowid table with a unique key
/// index, because values range from a few bytes (a stay) to tens of
/// kilobytes (a day's simplified track). `device_id` 0 holds user-level rows.
const V5: &str = "
CREATE TABLE derived (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users (id),
    kind      INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    key       INTEGER NOT NULL,
    value     BLOB NOT NULL
);
CREATE UNIQUE INDEX derived_by_key ON derived (user_id, kind, device_id, key);

CREATE TABLE derived_cursors (
    name TEXT PRIMARY KEY NOT NULL,
    seq  INTEGER NOT NULL
) WITHOUT ROWID;
";

/// Version 6: the instance's epoch, 128 random bits as hex. It names one
/// unbroken history of this database's change log: a restore from a backup
/// replaces it ([`polo_store::Store::renew_epoch`]), so a replication peer
/// holding a cursor `(epoch, seq)` sees that the source was rewound instead
/// of silently skipping the changes after the backup's `last_seq`.
const V6: &str = "
INSERT INTO meta (key, value) VALUES ('epoch', lower(hex(randomblob(16))));
";

/// Version 7: replication (see `polo_store::replication`).
///
/// * Every change gets a version: `hlc`, the hybrid-logical-clock reading
///   where it originated, and `origin`, 0 for this instance or a row of
///   `origins` naming another. Changes from before replication get their
///   own `seq` as clock reading: unique, and older than any real reading.
/// * Users and devices remember the version of the change that last set
///   them, for last-writer-wins between replicas.
/// * `tombstones` keep every range delete with its version, so a point
///   older than a delete is not let back in by a late replica.
/// * `edit_log` keeps what each user edit of derived data wrote, so a feed
///   can send it.
/// * `replication_checkpoints` record, per source, how far its feed has been
///   applied, written in the same transaction as the data.
/// * `epochs` is the history of the instance's epochs and the instance id
///   each began under, for telling a peer where a rewound history forked
///   (and under which id it followed it).
/// * `replication_tokens` authenticate peers; like device tokens they are
///   local credentials, never replicated.
const V7: &str = "
CREATE TABLE origins (
    id       INTEGER PRIMARY KEY,
    instance TEXT NOT NULL UNIQUE
);
ALTER TABLE changes ADD COLUMN hlc INTEGER NOT NULL DEFAULT 0;
ALTER TABLE changes ADD COLUMN origin INTEGER NOT NULL DEFAULT 0;
UPDATE changes SET hlc = seq;
CREATE UNIQUE INDEX changes_by_version ON changes (origin, hlc);
ALTER TABLE users ADD COLUMN hlc INTEGER NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN origin INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN hlc INTEGER NOT NULL DEFAULT 0;
ALTER TABLE devices ADD COLUMN origin INTEGER NOT NULL DEFAULT 0;
INSERT INTO meta (key, value) SELECT 'hlc', coalesce(max(hlc), 0) FROM changes;

CREATE TABLE tombstones (
    id        INTEGER PRIMARY KEY,
    user_id   INTEGER NOT NULL REFERENCES users (id),
    device_id INTEGER,
    from_ms   INTEGER,
    last_ms   INTEGER,
    hlc       INTEGER NOT NULL,
    origin    INTEGER NOT NULL,
    seq       INTEGER NOT NULL
);
CREATE INDEX tombstones_by_user ON tombstones (user_id, device_id);
CREATE UNIQUE INDEX tombstones_by_seq ON tombstones (seq);

CREATE TABLE edit_log (
    seq     INTEGER PRIMARY KEY,
    user_id INTEGER NOT NULL REFERENCES users (id),
    batch   BLOB NOT NULL
);

CREATE TABLE replication_checkpoints (
    name       TEXT PRIMARY KEY NOT NULL,
    epoch      TEXT NOT NULL,
    seq        INTEGER NOT NULL,
    updated_ms INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE epochs (
    id        INTEGER PRIMARY KEY,
    epoch     TEXT NOT NULL UNIQUE,
    start_seq INTEGER NOT NULL,
    instance  TEXT NOT NULL
);
INSERT INTO epochs (epoch, start_seq, instance)
    SELECT e.value, 0, i.value FROM meta e, meta i WHERE e.key = 'epoch' AND i.key = 'instance_id';

CREATE TABLE replication_tokens (
    id           INTEGER PRIMARY KEY,
    label        TEXT NOT NULL,
    token_hash   BLOB NOT NULL UNIQUE,
    created_ms   INTEGER NOT NULL,
    last_used_ms INTEGER
);
";

/// Version 8, sharing (the web app): public share links (only the SHA-256 of the
/// link's secret is stored), location grants between users ("friends and
/// family"; `user_id` lets `friend_id` see them), and instance settings
/// changed at runtime. None takes part in the change log.
const V8: &str = "
CREATE TABLE shares (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    id         INTEGER NOT NULL UNIQUE,
    kind       TEXT NOT NULL,
    from_ms    INTEGER,
    to_ms      INTEGER,
    device_id  INTEGER,
    label      TEXT NOT NULL,
    token_hash BLOB NOT NULL UNIQUE,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER,
    revoked_ms INTEGER,
    PRIMARY KEY (user_id, id),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, id)
);

CREATE TABLE location_grants (
    user_id    INTEGER NOT NULL REFERENCES users (id),
    friend_id  INTEGER NOT NULL REFERENCES users (id),
    created_ms INTEGER NOT NULL,
    PRIMARY KEY (user_id, friend_id)
) WITHOUT ROWID;
CREATE INDEX location_grants_by_friend ON location_grants (friend_id, user_id);

CREATE TABLE instance_settings (
    key   TEXT PRIMARY KEY NOT NULL,
    value TEXT NOT NULL
) WITHOUT ROWID;
";

/// Version 9, token scopes: what a device token may do beyond ingesting as
/// its device (space-separated `polo_store::TokenScope` names; tokens made
/// before have none: the device only), and which token made a token, a
/// share or a location grant (NULL: the password or a session), so that
/// revoking a token revokes what it made. `last_token_id` keeps token ids
/// from being reused.
const V9: &str = "
ALTER TABLE tokens ADD COLUMN scopes TEXT NOT NULL DEFAULT '';
ALTER TABLE tokens ADD COLUMN created_by INTEGER;
CREATE INDEX tokens_by_maker ON tokens (created_by) WHERE created_by IS NOT NULL;
ALTER TABLE shares ADD COLUMN created_by_token INTEGER;
CREATE INDEX shares_by_maker ON shares (created_by_token) WHERE created_by_token IS NOT NULL;
ALTER TABLE location_grants ADD COLUMN created_by_token INTEGER;
INSERT INTO meta (key, value) SELECT 'last_token_id', coalesce(max(id), 0) FROM tokens;
";

/// Version 10, deleting a selection on the map and thinning: a tombstone may
/// cover only the points inside a rectangle (E7 degrees, edges included; all
/// four NULL: everywhere), or be a thinning that kept the first point of
/// every `thin_ms` (retention). Local inserts read the tombstones too, so a
/// re-import leaves deleted points out.
const V10: &str = "
ALTER TABLE tombstones ADD COLUMN west_e7 INTEGER;
ALTER TABLE tombstones ADD COLUMN south_e7 INTEGER;
ALTER TABLE tombstones ADD COLUMN east_e7 INTEGER;
ALTER TABLE tombstones ADD COLUMN north_e7 INTEGER;
ALTER TABLE tombstones ADD COLUMN thin_ms INTEGER;
";

/// Version 11, private share links: a share may leave place names and
/// addresses out of its public page. Links made before show them, as they did.
const V11: &str = "
ALTER TABLE shares ADD COLUMN hide_places INTEGER NOT NULL DEFAULT 0;
";

/// Version 12, what several server nodes share (`polo_store::nodes`):
/// leases for background work, import jobs (status, progress and summary
/// survive a restart; a job left unfinished by a stopped server is failed),
/// and the failed-login back-off's counters.
const V12: &str = "
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_ms INTEGER NOT NULL
);
CREATE TABLE import_jobs (
    user_id          INTEGER NOT NULL REFERENCES users (id),
    id               TEXT NOT NULL,
    file_name        TEXT NOT NULL,
    status           INTEGER NOT NULL,
    holder           TEXT NOT NULL,
    started_ms       INTEGER NOT NULL,
    heartbeat_ms     INTEGER NOT NULL,
    finished_ms      INTEGER,
    bytes_total      INTEGER NOT NULL,
    bytes_read       INTEGER NOT NULL,
    points_added     INTEGER NOT NULL,
    duplicates       INTEGER NOT NULL,
    deleted_left_out INTEGER NOT NULL,
    intervals_added  INTEGER NOT NULL,
    rejected         INTEGER NOT NULL,
    error            TEXT,
    report           TEXT,
    PRIMARY KEY (user_id, id)
) WITHOUT ROWID;
CREATE INDEX import_jobs_unfinished ON import_jobs (heartbeat_ms) WHERE status IN (0, 1);
CREATE TABLE failure_counts (
    key             TEXT PRIMARY KEY,
    failures        INTEGER NOT NULL,
    last_failure_ms INTEGER NOT NULL
);
";

/// Version 13, deleting accounts (`accounts.rs`): the account tombstones
/// (name, the id it had, the deletion's change and version, and since when
/// an account of that name exists again, if it does), and the
/// highest user and device ids ever handed out, so that a deleted account's
/// ids are never given to a new one.
const V13: &str = "
CREATE TABLE deleted_users (
    name       TEXT PRIMARY KEY NOT NULL,
    former_user_id INTEGER NOT NULL,
    seq        INTEGER NOT NULL UNIQUE,
    hlc        INTEGER NOT NULL,
    origin     INTEGER NOT NULL,
    deleted_ms INTEGER NOT NULL,
    revived_hlc    INTEGER,
    revived_origin INTEGER
) WITHOUT ROWID;
INSERT INTO meta (key, value) SELECT 'last_user_id', coalesce(max(id), 0) FROM users;
INSERT INTO meta (key, value) SELECT 'last_device_id', coalesce(max(id), 0) FROM devices;
";

/// Version 14, undo records (`undo.rs`): what a delete removed, under the
/// SHA-256 of the token the delete answered with, until it is taken or
/// expires; the instance's own, never replicated.
const V14: &str = "
CREATE TABLE undo_records (
    token_hash BLOB PRIMARY KEY NOT NULL,
    user_id    INTEGER NOT NULL,
    made_ms    INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    record     BLOB NOT NULL
) WITHOUT ROWID;
CREATE INDEX undo_records_by_user ON undo_records (user_id, made_ms);
CREATE INDEX undo_records_by_expiry ON undo_records (expires_ms);
";

/// Version 15, roles and instance records (`records.rs`): a user's role
/// besides administrator (the health authority), small documents of
/// backend-neutral features (exposure) keyed by kind and key, and the
/// audit log. Local to the instance; none of it enters the change log.
const V15: &str = "
ALTER TABLE users ADD COLUMN role TEXT;
CREATE TABLE records (
    kind    TEXT NOT NULL,
    key     TEXT NOT NULL,
    user_id INTEGER REFERENCES users (id),
    at_ms   INTEGER NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (kind, key)
) WITHOUT ROWID;
CREATE INDEX records_by_user ON records (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX records_by_time ON records (kind, at_ms);
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at_ms   INTEGER NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject INTEGER,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject, id) WHERE subject IS NOT NULL;
CREATE INDEX audit_log_by_time ON audit_log (at_ms);
";

/// Version 16, zones and what they fire (`zones.rs`, `polo_store::zones`):
/// zones, the state per (device, zone), the event log (its ids are the API's
/// cursor; a key per user keeps an event once), webhook subscriptions and
/// their outbox, which is also the delivery log. Local to the instance;
/// `AUTOINCREMENT` so no id is handed out twice.
const V16: &str = "
CREATE TABLE zones (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    body       TEXT NOT NULL,
    updated_ms INTEGER NOT NULL
);
CREATE INDEX zones_by_user ON zones (user_id);
CREATE TABLE zone_states (
    user_id   INTEGER NOT NULL,
    device_id INTEGER NOT NULL,
    zone_id   INTEGER NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, zone_id)
) WITHOUT ROWID;
CREATE TABLE events (
    id        INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id   INTEGER NOT NULL,
    dedup_key TEXT NOT NULL,
    at_ms     INTEGER NOT NULL,
    kind      TEXT NOT NULL,
    device_id INTEGER NOT NULL,
    zone_id   INTEGER,
    body      TEXT NOT NULL,
    UNIQUE (user_id, dedup_key)
);
CREATE INDEX events_by_user ON events (user_id, id);
CREATE TABLE webhooks (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id    INTEGER NOT NULL REFERENCES users (id),
    body       TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX webhooks_by_user ON webhooks (user_id);
CREATE TABLE webhook_deliveries (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    user_id     INTEGER NOT NULL,
    webhook_id  INTEGER NOT NULL,
    event_id    INTEGER NOT NULL,
    idem_key    TEXT NOT NULL,
    status      INTEGER NOT NULL,
    attempts    INTEGER NOT NULL,
    next_ms     INTEGER NOT NULL,
    last_status INTEGER,
    last_error  TEXT,
    updated_ms  INTEGER NOT NULL
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (webhook_id, id) WHERE status = 0;
CREATE INDEX webhook_deliveries_by_webhook ON webhook_deliveries (user_id, webhook_id, id);
";

/// Version 17, groups (`groups.rs`, `polo_store::groups`): groups, their
/// members (admins marked) and invitation links, kept by the SHA-256 of
/// their secret like share links; a zone may belong to a group. Local to
/// the instance; `AUTOINCREMENT` so no id is handed out twice.
const V17: &str = "
CREATE TABLE user_groups (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    name       TEXT NOT NULL,
    created_by INTEGER,
    created_ms INTEGER NOT NULL
);
CREATE TABLE group_members (
    group_id  INTEGER NOT NULL REFERENCES user_groups (id),
    user_id   INTEGER NOT NULL REFERENCES users (id),
    is_admin  INTEGER NOT NULL,
    joined_ms INTEGER NOT NULL,
    PRIMARY KEY (group_id, user_id)
) WITHOUT ROWID;
CREATE INDEX group_members_by_user ON group_members (user_id);
CREATE TABLE group_invitations (
    id         INTEGER PRIMARY KEY AUTOINCREMENT,
    group_id   INTEGER NOT NULL REFERENCES user_groups (id),
    token_hash BLOB NOT NULL UNIQUE,
    created_by INTEGER,
    created_ms INTEGER NOT NULL,
    expires_ms INTEGER NOT NULL,
    max_uses   INTEGER NOT NULL,
    uses       INTEGER NOT NULL,
    revoked_ms INTEGER
);
CREATE INDEX group_invitations_by_group ON group_invitations (group_id);
CREATE INDEX group_invitations_by_maker ON group_invitations (created_by);
ALTER TABLE zones ADD COLUMN group_id INTEGER;
CREATE INDEX zones_by_group ON zones (group_id) WHERE group_id IS NOT NULL;
";

/// The ordered migrations; index `i` upgrades version `i` to `i + 1`.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6, V7, V8, V9, V10, V11, V12, V13, V14, V15, V16, V17];

/// Brings the schema up to date, one transaction per migration.
pub(crate) fn migrate(conn: &mut Connection) -> StoreResult<()> {
    loop {
        let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate).db()?;
        // Read inside the write transaction: a concurrent opener may have migrated.
        let version: i64 = tx.pragma_query_value(None, "user_version", |r| r.get(0)).db()?;
        let version = usize::try_from(version).map_err(|_| StoreError::Corrupt(format!("schema version {version}")))?;
        let Some(sql) = MIGRATIONS.get(version) else {
            if version > MIGRATIONS.len() {
                return Err(StoreError::Backend(format!(
                    "the database has schema version {version}, newer than this polo understands ({})",
                    MIGRATIONS.len()
                )));
            }
            return Ok(());
        };
        tracing::info!(from = version, to = version + 1, "migrating the database schema");
        tx.execute_batch(sql).db()?;
        if version == 0 {
            tx.execute(
                "INSERT INTO meta (key, value) VALUES ('instance_id', ?1)",
                [polo_store::clock::new_random_id()],
            )
            .db()?;
        }
        tx.pragma_update(None, "user_version", (version + 1) as i64).db()?;
        tx.commit().db()?;
    }
}
