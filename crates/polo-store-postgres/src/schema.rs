//! The PostgreSQL schema and its migrations.
//!
//! Migrations run at start, each in its own transaction, under a
//! transaction-scoped advisory lock keyed by the schema's name: several
//! nodes starting together migrate once, the others wait and find nothing
//! left to do. `polo_meta.schema_version` counts the migrations applied.
//!
//! # Citus
//!
//! The schema is laid out for Citus, which shards by `user_id`:
//! * every per-user table ([`DISTRIBUTED_TABLES`]) has `user_id` first in its
//!   primary key and in every unique constraint, and its foreign keys
//!   include `user_id`, so a user's rows live together on one worker;
//! * the instance-wide tables ([`REFERENCE_TABLES`]) are small (accounts,
//!   credentials, settings, replication bookkeeping) and are copied to every
//!   worker. A foreign key may point from a per-user table to one of them,
//!   never the other way, so tokens and shares check their device in code.
//!
//! `docs/postgres.md` gives the `create_distributed_table` and
//! `create_reference_table` calls; a test reads the catalog and fails when a
//! per-user table breaks the rule.

use polo_store::{StoreError, StoreResult};
use postgres::Client;

use crate::error::Db;

/// Tables sharded by `user_id` under Citus.
pub const DISTRIBUTED_TABLES: &[&str] = &[
    "devices",
    "point_chunks",
    "intervals",
    "changes",
    "tombstones",
    "edit_log",
    "derived",
    "import_jobs",
    "undo_records",
    "zones",
    "zone_states",
    "events",
    "webhooks",
    "webhook_deliveries",
];

/// Small instance-wide tables, copied to every Citus worker.
pub const REFERENCE_TABLES: &[&str] = &[
    "polo_meta",
    "change_clock",
    "users",
    "deleted_users",
    "tokens",
    "sessions",
    "shares",
    "location_grants",
    "instance_settings",
    "origins",
    "epochs",
    "replication_checkpoints",
    "replication_tokens",
    "derived_cursors",
    "leases",
    "failure_counts",
    "records",
    "audit_log",
    "user_groups",
    "group_members",
    "group_invitations",
];

/// The foreign keys between distributed tables, as (table, constraint,
/// definition as `pg_get_constraintdef` gives it). Citus distributes neither
/// side of a foreign key while the other is a plain table, so
/// [`citus_distribution_sql`] drops these first and adds them back once both
/// sides are co-located. A test checks this list against the catalog.
pub const DISTRIBUTED_FOREIGN_KEYS: &[(&str, &str, &str)] = &[
    (
        "point_chunks",
        "point_chunks_user_id_device_id_fkey",
        "FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, id)",
    ),
    (
        "intervals",
        "intervals_user_id_device_id_fkey",
        "FOREIGN KEY (user_id, device_id) REFERENCES devices(user_id, id)",
    ),
];

/// The Citus statements that distribute polo's tables in the session's
/// current schema, in the order they must run, each its own transaction
/// (Citus refuses to copy several reference tables' rows in one):
/// * the reference tables, `users` before the tables whose foreign keys
///   point to it;
/// * the foreign keys between per-user tables dropped
///   ([`DISTRIBUTED_FOREIGN_KEYS`]);
/// * `devices`, then the other per-user tables co-located with it;
/// * the foreign keys added back.
///
/// `docs/postgres.md` shows exactly these statements (a test keeps them the
/// same), and the tests run them on Citus (`POLO_TEST_CITUS`).
#[must_use]
pub fn citus_distribution_sql() -> Vec<String> {
    let (anchor, colocated) = DISTRIBUTED_TABLES.split_first().expect("devices leads DISTRIBUTED_TABLES");
    let mut sql: Vec<String> =
        REFERENCE_TABLES.iter().map(|t| format!("SELECT create_reference_table('{t}');")).collect();
    sql.extend(DISTRIBUTED_FOREIGN_KEYS.iter().map(|(t, name, _)| format!("ALTER TABLE {t} DROP CONSTRAINT {name};")));
    sql.push(format!("SELECT create_distributed_table('{anchor}', 'user_id');"));
    sql.extend(
        colocated
            .iter()
            .map(|t| format!("SELECT create_distributed_table('{t}', 'user_id', colocate_with => '{anchor}');")),
    );
    sql.extend(
        DISTRIBUTED_FOREIGN_KEYS.iter().map(|(t, name, def)| format!("ALTER TABLE {t} ADD CONSTRAINT {name} {def};")),
    );
    sql
}

const V1: &str = "
CREATE TABLE polo_meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

-- The change log's counters, one row: the last seq handed out and the hybrid
-- logical clock. Every write that appends a change locks this row until it
-- commits, which is what makes seqs gap-free and commit-ordered (see
-- polo_store::clock).
CREATE TABLE change_clock (
    id       SMALLINT PRIMARY KEY CHECK (id = 1),
    last_seq BIGINT NOT NULL,
    hlc      BIGINT NOT NULL
);
INSERT INTO change_clock (id, last_seq, hlc) VALUES (1, 0, 0);

CREATE SEQUENCE polo_ids;

CREATE TABLE users (
    id            BIGINT PRIMARY KEY DEFAULT nextval('polo_ids'),
    name          TEXT NOT NULL UNIQUE,
    password_hash TEXT NOT NULL,
    is_admin      BOOLEAN NOT NULL,
    created_ms    BIGINT NOT NULL,
    hlc           BIGINT NOT NULL DEFAULT 0,
    origin        BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE devices (
    user_id        BIGINT NOT NULL REFERENCES users (id),
    id             BIGINT NOT NULL DEFAULT nextval('polo_ids'),
    name           TEXT NOT NULL,
    encryption_key TEXT,
    card_name      TEXT,
    card_face      TEXT,
    hlc            BIGINT NOT NULL DEFAULT 0,
    origin         BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, name)
);

-- Time-ordered, non-overlapping chunks of one device's points, encoded by
-- polo_store::codec. The payload is compressed already: stored out of line
-- without a second compression.
CREATE TABLE point_chunks (
    user_id   BIGINT NOT NULL,
    id        BIGINT NOT NULL DEFAULT nextval('polo_ids'),
    device_id BIGINT NOT NULL,
    first_ms  BIGINT NOT NULL,
    last_ms   BIGINT NOT NULL,
    n         INTEGER NOT NULL,
    max_seq   BIGINT NOT NULL,
    data      BYTEA NOT NULL,
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, device_id, first_ms),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, id)
);
ALTER TABLE point_chunks ALTER COLUMN data SET STORAGE EXTERNAL;

CREATE TABLE intervals (
    user_id      BIGINT NOT NULL,
    id           BIGINT NOT NULL DEFAULT nextval('polo_ids'),
    device_id    BIGINT NOT NULL,
    kind         SMALLINT NOT NULL,
    start_ms     BIGINT NOT NULL,
    end_ms       BIGINT NOT NULL,
    identity_key TEXT NOT NULL,
    start_offset SMALLINT,
    end_offset   SMALLINT,
    start_lat    INTEGER,
    start_lon    INTEGER,
    end_lat      INTEGER,
    end_lon      INTEGER,
    place_id     TEXT,
    name         TEXT,
    category     TEXT,
    distance_m   DOUBLE PRECISION,
    confidence   DOUBLE PRECISION,
    level        SMALLINT NOT NULL,
    source       SMALLINT NOT NULL,
    extras       TEXT,
    seq          BIGINT NOT NULL,
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, device_id, kind, start_ms, end_ms, identity_key),
    FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, id)
);
CREATE INDEX intervals_by_start ON intervals (user_id, start_ms);

-- The change log. Readers page by seq across users; origin and hlc identify
-- a change across instances.
CREATE TABLE changes (
    user_id   BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    kind      SMALLINT NOT NULL,
    device_id BIGINT,
    first_ms  BIGINT,
    last_ms   BIGINT,
    count     BIGINT NOT NULL,
    hlc       BIGINT NOT NULL,
    origin    BIGINT NOT NULL,
    PRIMARY KEY (user_id, seq),
    UNIQUE (user_id, origin, hlc)
);
CREATE INDEX changes_by_seq ON changes (seq);

CREATE TABLE tombstones (
    user_id   BIGINT NOT NULL REFERENCES users (id),
    id        BIGINT NOT NULL DEFAULT nextval('polo_ids'),
    device_id BIGINT,
    from_ms   BIGINT,
    last_ms   BIGINT,
    hlc       BIGINT NOT NULL,
    origin    BIGINT NOT NULL,
    seq       BIGINT NOT NULL,
    west_e7   INTEGER,
    south_e7  INTEGER,
    east_e7   INTEGER,
    north_e7  INTEGER,
    thin_ms   BIGINT,
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, seq)
);
CREATE INDEX tombstones_by_device ON tombstones (user_id, device_id);

CREATE TABLE edit_log (
    user_id BIGINT NOT NULL REFERENCES users (id),
    seq     BIGINT NOT NULL,
    batch   BYTEA NOT NULL,
    PRIMARY KEY (user_id, seq)
);

CREATE TABLE derived (
    user_id   BIGINT NOT NULL REFERENCES users (id),
    kind      SMALLINT NOT NULL,
    device_id BIGINT NOT NULL,
    key       BIGINT NOT NULL,
    value     BYTEA NOT NULL,
    PRIMARY KEY (user_id, kind, device_id, key)
);

CREATE TABLE derived_cursors (
    name TEXT PRIMARY KEY,
    seq  BIGINT NOT NULL
);

CREATE TABLE tokens (
    id           BIGINT PRIMARY KEY DEFAULT nextval('polo_ids'),
    user_id      BIGINT NOT NULL REFERENCES users (id),
    device_id    BIGINT NOT NULL,
    label        TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    created_ms   BIGINT NOT NULL,
    last_used_ms BIGINT,
    scopes       TEXT NOT NULL DEFAULT '',
    created_by   BIGINT
);
CREATE INDEX tokens_by_user ON tokens (user_id);
CREATE INDEX tokens_by_maker ON tokens (created_by) WHERE created_by IS NOT NULL;

CREATE TABLE sessions (
    session_hash BYTEA PRIMARY KEY,
    user_id      BIGINT NOT NULL REFERENCES users (id),
    csrf_token   TEXT NOT NULL,
    created_ms   BIGINT NOT NULL,
    expires_ms   BIGINT NOT NULL
);
CREATE INDEX sessions_by_user ON sessions (user_id);
CREATE INDEX sessions_by_expiry ON sessions (expires_ms);

CREATE TABLE shares (
    id               BIGINT PRIMARY KEY DEFAULT nextval('polo_ids'),
    user_id          BIGINT NOT NULL REFERENCES users (id),
    kind             TEXT NOT NULL,
    from_ms          BIGINT,
    to_ms            BIGINT,
    device_id        BIGINT,
    label            TEXT NOT NULL,
    token_hash       BYTEA NOT NULL UNIQUE,
    created_ms       BIGINT NOT NULL,
    expires_ms       BIGINT,
    revoked_ms       BIGINT,
    created_by_token BIGINT,
    hide_places      BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX shares_by_user ON shares (user_id);
CREATE INDEX shares_by_maker ON shares (created_by_token) WHERE created_by_token IS NOT NULL;

CREATE TABLE location_grants (
    user_id          BIGINT NOT NULL REFERENCES users (id),
    friend_id        BIGINT NOT NULL REFERENCES users (id),
    created_ms       BIGINT NOT NULL,
    created_by_token BIGINT,
    PRIMARY KEY (user_id, friend_id)
);
CREATE INDEX location_grants_by_friend ON location_grants (friend_id, user_id);

CREATE TABLE instance_settings (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE origins (
    id       BIGSERIAL PRIMARY KEY,
    instance TEXT NOT NULL UNIQUE
);

CREATE TABLE epochs (
    id        BIGSERIAL PRIMARY KEY,
    epoch     TEXT NOT NULL UNIQUE,
    start_seq BIGINT NOT NULL,
    instance  TEXT NOT NULL
);

CREATE TABLE replication_checkpoints (
    name       TEXT PRIMARY KEY,
    epoch      TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    updated_ms BIGINT NOT NULL
);

-- What several polo serve nodes share (polo_store::nodes; src/nodes.rs).
-- Leases for background work that runs once across nodes; expires_ms is the
-- database's clock.
CREATE TABLE leases (
    name       TEXT PRIMARY KEY,
    holder     TEXT NOT NULL,
    expires_ms BIGINT NOT NULL
);

-- HTTP import jobs: status, progress and summary, written by the node that
-- runs the job, with its heartbeat.
CREATE TABLE import_jobs (
    user_id          BIGINT NOT NULL REFERENCES users (id),
    id               TEXT NOT NULL,
    file_name        TEXT NOT NULL,
    status           SMALLINT NOT NULL,
    holder           TEXT NOT NULL,
    started_ms       BIGINT NOT NULL,
    heartbeat_ms     BIGINT NOT NULL,
    finished_ms      BIGINT,
    bytes_total      BIGINT NOT NULL,
    bytes_read       BIGINT NOT NULL,
    points_added     BIGINT NOT NULL,
    duplicates       BIGINT NOT NULL,
    deleted_left_out BIGINT NOT NULL,
    intervals_added  BIGINT NOT NULL,
    rejected         BIGINT NOT NULL,
    error            TEXT,
    report           TEXT,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX import_jobs_unfinished ON import_jobs (heartbeat_ms) WHERE status IN (0, 1);

-- The failed-login, token and share-link back-off, per client key.
CREATE TABLE failure_counts (
    key             TEXT PRIMARY KEY,
    failures        BIGINT NOT NULL,
    last_failure_ms BIGINT NOT NULL
);
CREATE INDEX failure_counts_by_age ON failure_counts (last_failure_ms);

CREATE TABLE replication_tokens (
    id           BIGSERIAL PRIMARY KEY,
    label        TEXT NOT NULL,
    token_hash   BYTEA NOT NULL UNIQUE,
    created_ms   BIGINT NOT NULL,
    last_used_ms BIGINT
);
";

/// Version 2, deleting accounts (`account_deletion.rs`): the account
/// tombstones, one per deleted name: the id it had, the deletion's change
/// and its version, and since when an account of that name exists again
/// (if it does). Instance-wide and small, like `users`.
const V2: &str = "
CREATE TABLE deleted_users (
    name           TEXT PRIMARY KEY,
    former_user_id BIGINT NOT NULL,
    seq            BIGINT NOT NULL UNIQUE,
    hlc            BIGINT NOT NULL,
    origin         BIGINT NOT NULL,
    deleted_ms     BIGINT NOT NULL,
    revived_hlc    BIGINT,
    revived_origin BIGINT
);
";

/// Version 3, undo records (`undo.rs`): what a delete removed, under the
/// SHA-256 of the token the delete answered with, until it is taken or
/// expires. Per user (distributed under Citus); never replicated.
const V3: &str = "
CREATE TABLE undo_records (
    user_id    BIGINT NOT NULL,
    token_hash BYTEA NOT NULL,
    made_ms    BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    record     BYTEA NOT NULL,
    PRIMARY KEY (user_id, token_hash)
);
CREATE INDEX undo_records_by_expiry ON undo_records (expires_ms);
";

/// Version 4, roles and instance records (`records.rs`): a user's role
/// besides administrator (the health authority), small documents of
/// backend-neutral features (exposure) keyed by kind and key, and the
/// audit log. Instance-wide and small, like `instance_settings`.
const V4: &str = "
ALTER TABLE users ADD COLUMN role TEXT;
CREATE TABLE records (
    kind    TEXT NOT NULL,
    key     TEXT COLLATE \"C\" NOT NULL,
    user_id BIGINT REFERENCES users (id),
    at_ms   BIGINT NOT NULL,
    body    TEXT NOT NULL,
    PRIMARY KEY (kind, key)
);
CREATE INDEX records_by_user ON records (user_id) WHERE user_id IS NOT NULL;
CREATE INDEX records_by_time ON records (kind, at_ms);
CREATE TABLE audit_log (
    id      BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_ms   BIGINT NOT NULL,
    actor   TEXT NOT NULL,
    action  TEXT NOT NULL,
    subject BIGINT,
    detail  TEXT NOT NULL
);
CREATE INDEX audit_log_by_subject ON audit_log (subject, id) WHERE subject IS NOT NULL;
CREATE INDEX audit_log_by_time ON audit_log (at_ms);
";

/// Version 5, zones and what they fire (`zones.rs`, `polo_store::zones`):
/// zones, the state per (device, zone), the event log (a key per user keeps
/// an event once), webhook subscriptions and their outbox, which is also the
/// delivery log. Per user (distributed under Citus); never replicated. Ids
/// come from identity sequences, so none is handed out twice.
const V5: &str = "
CREATE TABLE zones (
    user_id    BIGINT NOT NULL,
    id         BIGINT GENERATED ALWAYS AS IDENTITY,
    body       TEXT NOT NULL,
    updated_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE TABLE zone_states (
    user_id   BIGINT NOT NULL,
    device_id BIGINT NOT NULL,
    zone_id   BIGINT NOT NULL,
    body      TEXT NOT NULL,
    PRIMARY KEY (user_id, device_id, zone_id)
);
CREATE TABLE events (
    user_id   BIGINT NOT NULL,
    id        BIGINT GENERATED ALWAYS AS IDENTITY,
    dedup_key TEXT NOT NULL,
    at_ms     BIGINT NOT NULL,
    kind      TEXT NOT NULL,
    device_id BIGINT NOT NULL,
    zone_id   BIGINT,
    body      TEXT NOT NULL,
    PRIMARY KEY (user_id, id),
    UNIQUE (user_id, dedup_key)
);
CREATE TABLE webhooks (
    user_id    BIGINT NOT NULL,
    id         BIGINT GENERATED ALWAYS AS IDENTITY,
    body       TEXT NOT NULL,
    secret     TEXT NOT NULL,
    created_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE TABLE webhook_deliveries (
    user_id     BIGINT NOT NULL,
    id          BIGINT GENERATED ALWAYS AS IDENTITY,
    webhook_id  BIGINT NOT NULL,
    event_id    BIGINT NOT NULL,
    idem_key    TEXT NOT NULL,
    status      SMALLINT NOT NULL,
    attempts    INTEGER NOT NULL,
    next_ms     BIGINT NOT NULL,
    last_status INTEGER,
    last_error  TEXT,
    updated_ms  BIGINT NOT NULL,
    PRIMARY KEY (user_id, id)
);
CREATE INDEX webhook_deliveries_pending ON webhook_deliveries (user_id, webhook_id, id) WHERE status = 0;
";

/// Version 6, groups (`groups.rs`, `polo_store::groups`): groups, their
/// members (admins marked) and invitation links, kept by the SHA-256 of
/// their secret like share links. Instance-wide and small (reference tables
/// under Citus); a zone may belong to a group (`zones.group_id`, no foreign
/// key: a per-user table points at a reference table only by value here, so
/// that deleting a group needs no order against the zones' shards).
const V6: &str = "
CREATE TABLE user_groups (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    name       TEXT NOT NULL,
    created_by BIGINT,
    created_ms BIGINT NOT NULL
);
CREATE TABLE group_members (
    group_id  BIGINT NOT NULL REFERENCES user_groups (id),
    user_id   BIGINT NOT NULL REFERENCES users (id),
    is_admin  BOOLEAN NOT NULL,
    joined_ms BIGINT NOT NULL,
    PRIMARY KEY (group_id, user_id)
);
CREATE INDEX group_members_by_user ON group_members (user_id);
CREATE TABLE group_invitations (
    id         BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    group_id   BIGINT NOT NULL REFERENCES user_groups (id),
    token_hash BYTEA NOT NULL UNIQUE,
    created_by BIGINT,
    created_ms BIGINT NOT NULL,
    expires_ms BIGINT NOT NULL,
    max_uses   INTEGER NOT NULL,
    uses       INTEGER NOT NULL,
    revoked_ms BIGINT
);
CREATE INDEX group_invitations_by_group ON group_invitations (group_id);
CREATE INDEX group_invitations_by_maker ON group_invitations (created_by);
ALTER TABLE zones ADD COLUMN group_id BIGINT;
CREATE INDEX zones_by_group ON zones (group_id) WHERE group_id IS NOT NULL;
";

/// The migrations, in order; `schema_version` counts those applied.
pub(crate) const MIGRATIONS: &[&str] = &[V1, V2, V3, V4, V5, V6];

/// The `schema_version` of a database this polo has migrated.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Applies the migrations not applied yet, each in its own transaction
/// under an advisory lock, so concurrent starts migrate once.
pub(crate) fn migrate(client: &mut Client) -> StoreResult<()> {
    loop {
        let mut tx = client.transaction().db()?;
        tx.execute("SELECT pg_advisory_xact_lock(hashtext('polo-migrate:' || current_schema()))", &[]).db()?;
        let has_meta: bool = tx
            .query_one("SELECT to_regclass(quote_ident(current_schema()) || '.polo_meta') IS NOT NULL", &[])
            .db()?
            .get(0);
        let version: usize = if has_meta {
            let v: Option<String> =
                tx.query_opt("SELECT value FROM polo_meta WHERE key = 'schema_version'", &[]).db()?.map(|r| r.get(0));
            let v = v.unwrap_or_default();
            v.parse().map_err(|_| StoreError::Corrupt(format!("schema version {v:?}")))?
        } else {
            0
        };
        let Some(sql) = MIGRATIONS.get(version) else {
            if version > MIGRATIONS.len() {
                return Err(StoreError::Backend(format!(
                    "the database has schema version {version}, newer than this polo understands ({})",
                    MIGRATIONS.len()
                )));
            }
            return Ok(());
        };
        tracing::info!(from = version, to = version + 1, "migrating the PostgreSQL schema");
        tx.batch_execute(sql).db()?;
        if version == 0 {
            let instance = polo_store::clock::new_random_id();
            let epoch = polo_store::clock::new_random_id();
            tx.execute(
                "INSERT INTO polo_meta (key, value) VALUES ('instance_id', $1), ('epoch', $2), ('schema_version', '0')",
                &[&instance, &epoch],
            )
            .db()?;
            tx.execute("INSERT INTO epochs (epoch, start_seq, instance) VALUES ($1, 0, $2)", &[&epoch, &instance])
                .db()?;
        }
        let next = (version + 1).to_string();
        tx.execute("UPDATE polo_meta SET value = $1 WHERE key = 'schema_version'", &[&next]).db()?;
        tx.commit().db()?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `docs/postgres.md` shows exactly the calls the tests run on Citus.
    #[test]
    fn the_docs_show_the_citus_distribution_calls() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/postgres.md");
        let doc = std::fs::read_to_string(path).expect("reading docs/postgres.md");
        let calls = citus_distribution_sql().join("\n");
        assert!(
            doc.contains(&format!("```sql\n{calls}\n```")),
            "docs/postgres.md should show, in one sql block:\n{calls}"
        );
    }

    #[test]
    fn citus_distribution_runs_in_order() {
        let sql = citus_distribution_sql();
        let pos = |needle: &str| {
            sql.iter().position(|s| s.contains(needle)).unwrap_or_else(|| panic!("{needle} not in {sql:#?}"))
        };
        assert_eq!(sql.len(), REFERENCE_TABLES.len() + DISTRIBUTED_TABLES.len() + 2 * DISTRIBUTED_FOREIGN_KEYS.len());
        assert_eq!(DISTRIBUTED_TABLES[0], "devices");
        for t in ["tokens", "sessions", "shares", "location_grants"] {
            assert!(pos("'users'") < pos(&format!("'{t}'")), "{t}");
        }
        assert!(pos("DROP CONSTRAINT") < pos("'devices', 'user_id')"));
        assert!(pos("'devices', 'user_id')") < pos("colocate_with => 'devices'"));
        assert!(pos("'derived', 'user_id'") < pos("ADD CONSTRAINT"));
    }
}
