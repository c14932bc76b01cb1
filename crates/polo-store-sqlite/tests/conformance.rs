//! The backend-agnostic conformance suite against file-backed and in-memory
//! SQLite stores, plus SQLite-specific behaviour.

use polo_domain::{Coord, Fix, SourceFormat, Timestamp};
use polo_store::{PointQuery, Store};
use polo_store_sqlite::SqliteStore;

fn temp_store() -> (SqliteStore, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let store = SqliteStore::open(dir.path().join("polo.db")).unwrap();
    (store, dir)
}

polo_store::conformance_tests!(temp_store);

#[test]
fn in_memory_store_passes_the_suite() {
    polo_store::conformance::run_all(&|| Box::new(SqliteStore::open_in_memory().unwrap()));
}

#[test]
fn reopening_keeps_data_ids_and_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("polo.db");
    let (user, device, id, seq) = {
        let store = SqliteStore::open(&path).unwrap();
        let user = store.create_user("alice", "h", true).unwrap();
        let device = store.ensure_device(user.id, "phone").unwrap();
        let fixes: Vec<Fix> = (0..3000)
            .map(|i| Fix::new(Timestamp(1_000_000 + i * 1000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Csv))
            .collect();
        store.insert_points(user.id, device.id, &fixes).unwrap();
        (user, device, store.instance_id().unwrap(), store.last_seq().unwrap())
    };
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.instance_id().unwrap(), id);
    assert_eq!(id.len(), 32);
    assert_eq!(store.last_seq().unwrap(), seq);
    assert_eq!(store.user_by_name("alice").unwrap(), Some(user.clone()));
    assert_eq!(store.ensure_device(user.id, "phone").unwrap(), device);
    assert_eq!(store.count_points(user.id).unwrap(), 3000);
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 17);
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0)).unwrap();
    assert_eq!(page_size, i64::from(polo_store_sqlite::DEFAULT_PAGE_SIZE));
}

#[test]
fn version_1_databases_migrate_to_the_latest() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("polo.db");
    let user = {
        let store = SqliteStore::open(&path).unwrap();
        store.create_user("alice", "h", false).unwrap()
    };
    // Turn it back into what a version-1 binary left behind.
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP TABLE tokens; DROP TABLE sessions; ALTER TABLE devices DROP COLUMN encryption_key; \
         ALTER TABLE devices DROP COLUMN card_name; ALTER TABLE devices DROP COLUMN card_face; \
         DROP TABLE derived; DROP TABLE derived_cursors; DELETE FROM meta WHERE key = 'epoch'; \
         DROP TABLE origins; DROP INDEX changes_by_version; ALTER TABLE changes DROP COLUMN hlc; \
         ALTER TABLE changes DROP COLUMN origin; ALTER TABLE users DROP COLUMN hlc; \
         ALTER TABLE users DROP COLUMN origin; ALTER TABLE devices DROP COLUMN hlc; \
         ALTER TABLE devices DROP COLUMN origin; DELETE FROM meta WHERE key = 'hlc'; DROP TABLE tombstones; \
         DROP TABLE edit_log; DROP TABLE replication_checkpoints; DROP TABLE epochs; \
         DROP TABLE replication_tokens; \
         DROP TABLE shares; DROP TABLE location_grants; DROP TABLE instance_settings; \
         DELETE FROM meta WHERE key = 'last_token_id'; \
         DROP TABLE leases; DROP TABLE import_jobs; DROP TABLE failure_counts; \
         DROP TABLE deleted_users; DROP TABLE undo_records; DELETE FROM meta WHERE key IN ('last_user_id', 'last_device_id'); \
         DROP TABLE records; DROP TABLE audit_log; ALTER TABLE users DROP COLUMN role; \
         DROP TABLE group_members; DROP TABLE group_invitations; DROP TABLE user_groups; \
         DELETE FROM sqlite_sequence WHERE name IN ('user_groups', 'group_invitations'); \
         DROP TABLE zones; DROP TABLE zone_states; DROP TABLE events; DROP TABLE webhooks; \
         DROP TABLE webhook_deliveries; DELETE FROM sqlite_sequence WHERE name IN ('zones', 'events', 'webhooks', 'webhook_deliveries'); \
         PRAGMA user_version = 1;",
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.user_by_name("alice").unwrap(), Some(user.clone()));
    let device = store.ensure_device(user.id, "phone").unwrap();
    let token = store.create_token(user.id, device.id, "t", &[7; 32], polo_store::TokenGrant::default()).unwrap();
    assert_eq!(store.token_by_hash(&[7; 32]).unwrap().unwrap().0.id, token.id);
    store.set_device_encryption_key(user.id, device.id, Some("k")).unwrap();
    assert_eq!(store.device_encryption_key(user.id, device.id).unwrap().as_deref(), Some("k"));
    store.set_derived_cursor("timeline", polo_domain::Seq(3)).unwrap();
    let version: i64 =
        rusqlite::Connection::open(&path).unwrap().pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, 17);
    assert_eq!(store.epoch().unwrap().len(), 32);
    assert_eq!(store.epochs().unwrap().len(), 1, "the epoch history starts with the current epoch");
    let feed = store.replication_feed(polo_domain::Seq(0), 10, &polo_store::FeedFilter::default()).unwrap();
    assert!(feed.entries.windows(2).all(|w| w[0].version.hlc < w[1].version.hlc), "old changes get ordered versions");
    // Sharing works on a migrated database.
    store.set_instance_setting("instance_name", Some("x")).unwrap();
    let bob = store.create_user("bob", "h", false).unwrap();
    assert!(store.grant_location(user.id, bob.id, None).unwrap());
    // Roles and records too.
    store.set_user_role(bob.id, Some(polo_store::Role::HealthAuthority)).unwrap();
    assert_eq!(store.user_role(bob.id).unwrap(), Some(polo_store::Role::HealthAuthority));
}

/// Tokens made before scopes existed keep working as what they were made
/// for, their device, and nothing more; their ids are not handed out again.
#[test]
fn version_8_tokens_migrate_to_the_device_scope() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("polo.db");
    let (user, device) = {
        let store = SqliteStore::open(&path).unwrap();
        let user = store.create_user("alice", "h", false).unwrap();
        let device = store.ensure_device(user.id, "phone").unwrap();
        (user, device)
    };
    let conn = rusqlite::Connection::open(&path).unwrap();
    conn.execute_batch(
        "DROP INDEX tokens_by_maker; ALTER TABLE tokens DROP COLUMN scopes; ALTER TABLE tokens DROP COLUMN created_by; \
         DROP INDEX shares_by_maker; ALTER TABLE shares DROP COLUMN created_by_token; \
         ALTER TABLE location_grants DROP COLUMN created_by_token; DELETE FROM meta WHERE key = 'last_token_id'; \
         ALTER TABLE tombstones DROP COLUMN west_e7; ALTER TABLE tombstones DROP COLUMN south_e7; \
         ALTER TABLE tombstones DROP COLUMN east_e7; ALTER TABLE tombstones DROP COLUMN north_e7; \
         ALTER TABLE tombstones DROP COLUMN thin_ms; ALTER TABLE shares DROP COLUMN hide_places; \
         DROP TABLE leases; DROP TABLE import_jobs; DROP TABLE failure_counts; \
         DROP TABLE deleted_users; DROP TABLE undo_records; DELETE FROM meta WHERE key IN ('last_user_id', 'last_device_id'); \
         DROP TABLE records; DROP TABLE audit_log; ALTER TABLE users DROP COLUMN role; \
         DROP TABLE group_members; DROP TABLE group_invitations; DROP TABLE user_groups; \
         DELETE FROM sqlite_sequence WHERE name IN ('user_groups', 'group_invitations'); \
         DROP TABLE zones; DROP TABLE zone_states; DROP TABLE events; DROP TABLE webhooks; \
         DROP TABLE webhook_deliveries; DELETE FROM sqlite_sequence WHERE name IN ('zones', 'events', 'webhooks', 'webhook_deliveries'); \
         PRAGMA user_version = 8;",
    )
    .unwrap();
    conn.execute(
        "INSERT INTO tokens (user_id, id, device_id, label, token_hash, created_ms) VALUES (?1, 41, ?2, 'old', ?3, 0)",
        rusqlite::params![user.id.0, device.id.0, &[9u8; 32][..]],
    )
    .unwrap();
    drop(conn);
    let store = SqliteStore::open(&path).unwrap();
    let (token, _) = store.token_by_hash(&[9; 32]).unwrap().unwrap();
    assert_eq!((token.id, token.scopes, token.created_by), (41, polo_store::TokenScopes::NONE, None));
    assert!(store.revoke_token(user.id, 41).unwrap());
    let next = store.create_token(user.id, device.id, "new", &[8; 32], polo_store::TokenGrant::default()).unwrap();
    assert_eq!(next.id, 42, "the migration remembers the highest id");
}

#[test]
fn newer_schema_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("polo.db");
    drop(SqliteStore::open(&path).unwrap());
    rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", 99).unwrap();
    assert!(SqliteStore::open(&path).is_err());
}

#[test]
fn corrupt_chunk_is_reported_not_panicked() {
    let (store, dir) = temp_store();
    let user = store.create_user("alice", "h", false).unwrap().id;
    let device = store.ensure_device(user, "phone").unwrap().id;
    store
        .insert_points(user, device, &[Fix::new(Timestamp(5), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Csv)])
        .unwrap();
    rusqlite::Connection::open(dir.path().join("polo.db"))
        .unwrap()
        .execute("UPDATE point_chunks SET data = x'01ff'", [])
        .unwrap();
    let err = store.scan_points(&PointQuery::user(user), &mut |_| std::ops::ControlFlow::Continue(())).unwrap_err();
    assert!(matches!(err, polo_store::StoreError::Corrupt(_)), "{err}");
}

/// The stored chunks of one device, oldest first: `(fixes, seqs)`.
fn chunks(path: &std::path::Path) -> Vec<Vec<u64>> {
    let conn = rusqlite::Connection::open(path).unwrap();
    let mut stmt = conn.prepare("SELECT data FROM point_chunks ORDER BY first_ms").unwrap();
    let blobs: Vec<Vec<u8>> = stmt.query_map([], |r| r.get(0)).unwrap().map(Result::unwrap).collect();
    blobs.iter().map(|b| polo_store::codec::decode_chunk(b).unwrap().into_iter().map(|f| f.seq.0).collect()).collect()
}

#[test]
fn live_tails_are_compacted_into_full_chunks_keeping_each_fix_and_seq() {
    use polo_store::codec::CHUNK_CAPACITY;
    let (store, dir) = temp_store();
    let user = store.create_user("alice", "h", false).unwrap().id;
    let device = store.ensure_device(user, "phone").unwrap().id;
    let n = 5 * CHUNK_CAPACITY + 300;
    let fixes: Vec<Fix> = (0..n as i64)
        .map(|i| Fix::new(Timestamp(1_000_000 + i * 10_000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Owntracks))
        .collect();
    let mut seqs = Vec::with_capacity(n);
    for fix in &fixes {
        seqs.push(store.insert_points(user, device, std::slice::from_ref(fix)).unwrap().seq.unwrap().0);
    }

    let mut scanned = Vec::new();
    store
        .scan_points(&PointQuery::user(user), &mut |p| {
            scanned.push(p.fix);
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert_eq!(scanned, fixes);
    let stored = chunks(&dir.path().join("polo.db"));
    // Every fix keeps the seq of the write that stored it: compaction is not a change.
    assert_eq!(stored.concat(), seqs);
    // Only the newest couple of thousand fixes are still in small chunks.
    let full = stored.iter().take_while(|c| c.len() == CHUNK_CAPACITY).count();
    let small: usize = stored[full..].iter().map(Vec::len).sum();
    assert!(full >= 3, "{full} full chunks: {:?}", stored.iter().map(Vec::len).collect::<Vec<_>>());
    assert!(small < 2 * CHUNK_CAPACITY, "{small} fixes left in small chunks");
    assert_eq!(full * CHUNK_CAPACITY + small, n);
}

#[test]
fn a_device_receiving_late_points_is_not_compacted_meanwhile() {
    use polo_store::codec::CHUNK_CAPACITY;
    let (store, dir) = temp_store();
    let user = store.create_user("alice", "h", false).unwrap().id;
    let device = store.ensure_device(user, "phone").unwrap().id;
    let fix =
        |i: i64| Fix::new(Timestamp(1_000_000 + i * 10_000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Owntracks);
    // Even steps in order, then one odd step between two stored points: a late point.
    for i in 0..300 {
        store.insert_points(user, device, &[fix(2 * i)]).unwrap();
    }
    store.insert_points(user, device, &[fix(2 * 150 + 1)]).unwrap();
    let n = 4 * CHUNK_CAPACITY as i64;
    for i in 300..n {
        store.insert_points(user, device, &[fix(2 * i)]).unwrap();
    }
    let stored = chunks(&dir.path().join("polo.db"));
    assert!(stored.iter().all(|c| c.len() < CHUNK_CAPACITY), "compacted while points arrived late");
    assert_eq!(stored.iter().map(Vec::len).sum::<usize>(), n as usize + 1);
    assert_eq!(store.count_points(user).unwrap(), n as u64 + 1);
}

#[test]
fn reads_do_not_wait_for_the_writer() {
    let (store, _dir) = temp_store();
    let user = store.create_user("alice", "h", false).unwrap().id;
    // Hold the writer's lock inside a scan's visitor: reads must still work,
    // and a write from the visitor must not deadlock.
    let device = store.ensure_device(user, "phone").unwrap().id;
    let fixes: Vec<Fix> =
        (0..5000).map(|i| Fix::new(Timestamp(i * 1000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Csv)).collect();
    store.insert_points(user, device, &fixes).unwrap();
    let mut seen = 0;
    store
        .scan_points(&PointQuery::user(user), &mut |p| {
            seen += 1;
            if seen == 10 {
                let more = Fix::new(Timestamp(p.fix.time.0 + 10_000_000), p.fix.coord, SourceFormat::Csv);
                store.insert_points(user, device, &[more]).unwrap();
                assert_eq!(store.count_points(user).unwrap(), 5001);
            }
            std::ops::ControlFlow::Continue(())
        })
        .unwrap();
    assert!(seen >= 5000);
}

#[test]
fn the_wal_is_checkpointed_in_the_background() {
    let (store, dir) = temp_store();
    let user = store.create_user("alice", "h", false).unwrap().id;
    let device = store.ensure_device(user, "phone").unwrap().id;
    let fixes: Vec<Fix> = (0..500)
        .map(|i| Fix::new(Timestamp(1_000_000 + i * 1000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Csv))
        .collect();
    for fix in &fixes {
        store.insert_points(user, device, std::slice::from_ref(fix)).unwrap();
    }
    // Commits never checkpoint; the background thread does within its interval.
    let copy = dir.path().join("copy.db");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        std::thread::sleep(std::time::Duration::from_millis(200));
        // The database file alone (no WAL beside it) must hold every point.
        std::fs::copy(dir.path().join("polo.db"), &copy).unwrap();
        let n: i64 = rusqlite::Connection::open(&copy)
            .unwrap()
            .query_row("SELECT coalesce(sum(n), 0) FROM point_chunks", [], |r| r.get(0))
            .unwrap_or(0); // not even the schema is in the file before the first checkpoint
        if n == 500 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "the WAL was not checkpointed: {n} of 500 points in the file");
    }
}

mod replication {
    polo_store::replication_conformance_tests!(super::temp_store);
}

/// After `delete_user`, no table holds a row of the deleted id in a user
/// column (`user_id`, `friend_id`) but the deletion's own change and its
/// account tombstone; read from the file itself, so a table added later is
/// covered without changing this test.
#[test]
fn a_deleted_account_leaves_no_row_in_any_table() {
    use polo_store::conformance::accounts::a_user_with_everything;
    let (store, dir) = temp_store();
    let alice = a_user_with_everything(&store, "alice", 1);
    let bob = a_user_with_everything(&store, "bob", 9);
    store.grant_location(alice, bob, None).unwrap();
    store.grant_location(bob, alice, None).unwrap();
    let deleted = store.delete_user(alice).unwrap();
    let conn = rusqlite::Connection::open(dir.path().join("polo.db")).unwrap();
    let tables: Vec<String> = conn
        .prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'")
        .unwrap()
        .query_map([], |r| r.get(0))
        .unwrap()
        .collect::<Result<_, _>>()
        .unwrap();
    let mut checked = 0;
    for table in &tables {
        let columns: Vec<String> = conn
            .prepare(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        let user_columns: Vec<&String> =
            columns.iter().filter(|c| matches!(c.as_str(), "user_id" | "friend_id" | "former_user_id")).collect();
        for column in user_columns {
            checked += 1;
            let rows: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {table} WHERE {column} = ?1"), [alice.0], |r| r.get(0))
                .unwrap();
            let expected = i64::from(matches!(table.as_str(), "changes" | "deleted_users"));
            assert_eq!(rows, expected, "{table}.{column} still holds {rows} rows of the deleted user");
            let bobs: i64 = conn
                .query_row(&format!("SELECT count(*) FROM {table} WHERE {column} = ?1"), [bob.0], |r| r.get(0))
                .unwrap();
            if matches!(table.as_str(), "devices" | "point_chunks" | "tokens" | "sessions" | "derived" | "changes") {
                assert!(bobs > 0, "{table}.{column} lost bob's rows");
            }
        }
    }
    assert!(checked >= 14, "only {checked} user columns found in {tables:?}");
    let (kind, seq): (i64, i64) = conn
        .query_row("SELECT kind, seq FROM changes WHERE user_id = ?1", [alice.0], |r| Ok((r.get(0)?, r.get(1)?)))
        .unwrap();
    assert_eq!((kind, seq as u64), (polo_store::ChangeKind::AccountDeleted.code(), deleted.seq.0));
    let users: i64 = conn.query_row("SELECT count(*) FROM users WHERE id = ?1", [alice.0], |r| r.get(0)).unwrap();
    assert_eq!(users, 0);
    let cursors: i64 = conn
        .query_row(
            "SELECT count(*) FROM derived_cursors WHERE name = 'retention:' || ?1 || ':60000' OR name = 'street-names:' || ?1",
            [alice.0.to_string()],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(cursors, 0, "her per-user cursors went");
}
