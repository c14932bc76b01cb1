//! The backend-agnostic conformance suite against PostgreSQL, one schema per
//! test (see `polo_store_postgres::testing`), plus PostgreSQL-specific
//! behaviour: concurrent writers, concurrent migrations, the Citus layout.

use polo_store_postgres::testing::test_store;

polo_store::conformance_tests!(test_store);

mod replication {
    // Each property case makes two schemas: a third of the embedded store's
    // cases keeps the test under half a minute (`PROPTEST_CASES` for more).
    polo_store::replication_conformance_tests!(polo_store_postgres::testing::test_store, property_cases = 16);
}

mod chunks {
    //! How the PostgreSQL store shapes and guards its point chunks.

    use std::ops::ControlFlow;

    use polo_domain::{Coord, DeviceId, Fix, SourceFormat, Timestamp, UserId};
    use polo_store::codec::{CHUNK_CAPACITY, decode_chunk};
    use polo_store::{PointQuery, Store, StoreError};
    use polo_store_postgres::testing::{TestDatabase, test_store};

    fn fix(i: i64) -> Fix {
        Fix::new(Timestamp(1_000_000 + i * 10_000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Owntracks)
    }

    fn setup(store: &dyn Store) -> (UserId, DeviceId) {
        let user = store.create_user("alice", "h", false).unwrap().id;
        (user, store.ensure_device(user, "phone").unwrap().id)
    }

    fn scan(store: &dyn Store, user: UserId) -> Vec<Fix> {
        let mut out = Vec::new();
        store
            .scan_points(&PointQuery::user(user), &mut |p| {
                out.push(p.fix);
                ControlFlow::Continue(())
            })
            .unwrap();
        out
    }

    /// A stored chunk as its row says and as its payload decodes.
    struct Chunk {
        first: i64,
        last: i64,
        n: i32,
        seqs: Vec<u64>,
        times: Vec<i64>,
    }

    /// The stored chunks, oldest first.
    fn chunks(db: &TestDatabase) -> Vec<Chunk> {
        let rows =
            db.client().query("SELECT first_ms, last_ms, n, data FROM point_chunks ORDER BY first_ms", &[]).unwrap();
        rows.iter()
            .map(|r| {
                let fixes = decode_chunk(&r.get::<_, Vec<u8>>(3)).unwrap();
                Chunk {
                    first: r.get(0),
                    last: r.get(1),
                    n: r.get(2),
                    seqs: fixes.iter().map(|f| f.seq.0).collect(),
                    times: fixes.iter().map(|f| f.fix.time.0).collect(),
                }
            })
            .collect()
    }

    /// Every chunk's row agrees with its payload, and no two chunks overlap.
    fn assert_well_formed(stored: &[Chunk]) {
        for c in stored {
            assert!(!c.times.is_empty() && c.times.is_sorted(), "a chunk's fixes are sorted");
            assert_eq!((c.first, c.last, c.n as usize), (c.times[0], *c.times.last().unwrap(), c.times.len()));
        }
        for w in stored.windows(2) {
            assert!(
                w[0].last < w[1].first,
                "chunks overlap: {}..{} and {}..{}",
                w[0].first,
                w[0].last,
                w[1].first,
                w[1].last
            );
        }
    }

    #[test]
    fn live_tails_are_compacted_into_full_chunks_keeping_each_fix_and_seq() {
        let Some((store, db)) = test_store() else { return };
        let (user, device) = setup(&store);
        let n = 5 * CHUNK_CAPACITY + 300;
        let fixes: Vec<Fix> = (0..n as i64).map(fix).collect();
        let mut seqs = Vec::with_capacity(n);
        for fix in &fixes {
            seqs.push(store.insert_points(user, device, std::slice::from_ref(fix)).unwrap().seq.unwrap().0);
        }
        assert_eq!(scan(&store, user), fixes);
        let stored = chunks(&db);
        assert_well_formed(&stored);
        // Every fix keeps the seq of the write that stored it: compaction is not a change.
        assert_eq!(stored.iter().flat_map(|c| c.seqs.iter().copied()).collect::<Vec<_>>(), seqs);
        // Only the newest couple of thousand fixes are still in small chunks.
        let full = stored.iter().take_while(|c| c.seqs.len() == CHUNK_CAPACITY).count();
        let small: usize = stored[full..].iter().map(|c| c.seqs.len()).sum();
        assert!(full >= 3, "{full} full chunks: {:?}", stored.iter().map(|c| c.seqs.len()).collect::<Vec<_>>());
        assert!(small < 2 * CHUNK_CAPACITY, "{small} fixes left in small chunks");
        assert_eq!(full * CHUNK_CAPACITY + small, n);
    }

    #[test]
    fn an_import_writes_full_chunks_in_one_go() {
        let Some((store, db)) = test_store() else { return };
        let (user, device) = setup(&store);
        let n = 10 * CHUNK_CAPACITY + 7;
        let fixes: Vec<Fix> = (0..n as i64).map(fix).collect();
        let outcome = store.insert_points(user, device, &fixes).unwrap();
        assert_eq!((outcome.added, outcome.duplicates), (n as u64, 0));
        let stored = chunks(&db);
        assert_well_formed(&stored);
        let lens: Vec<usize> = stored.iter().map(|c| c.times.len()).collect();
        assert_eq!(lens, [vec![CHUNK_CAPACITY; 10], vec![7]].concat());
        assert_eq!(scan(&store, user), fixes);
    }

    #[test]
    fn corrupt_chunk_is_reported_not_panicked() {
        let Some((store, db)) = test_store() else { return };
        let (user, device) = setup(&store);
        store.insert_points(user, device, &[fix(0)]).unwrap();
        db.client().execute("UPDATE point_chunks SET data = '\\x01ff'::bytea", &[]).unwrap();
        let err = store.scan_points(&PointQuery::user(user), &mut |_| ControlFlow::Continue(())).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
        let err = store.last_point(user, device).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err}");
        let err = store.insert_points(user, device, &[fix(1)]).unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "a write that must decode it refuses: {err}");
    }

    /// Two nodes (two stores, two pools) write one device at once, each its
    /// own interleaved times, in batches of varying size: nothing is lost,
    /// no chunk overlaps another, and every change has its own seq.
    #[test]
    fn two_nodes_writing_one_device_lose_nothing() {
        let Some(db) = TestDatabase::create() else { return };
        let (one, two) = (db.open(), db.open());
        let (user, device) = setup(&one);
        let per_node: i64 = 1_500;
        let write = |store: &dyn Store, parity: i64| {
            let mut i = 0;
            let mut batch_size = 1;
            let mut seqs = Vec::new();
            while i < per_node {
                let end = (i + batch_size).min(per_node);
                let fixes: Vec<Fix> = (i..end).map(|k| fix(2 * k + parity)).collect();
                let outcome = store.insert_points(user, device, &fixes).unwrap();
                assert_eq!(outcome.added, fixes.len() as u64);
                seqs.push(outcome.seq.unwrap());
                i = end;
                batch_size = batch_size % 97 + 1;
            }
            seqs
        };
        let (evens, odds) = std::thread::scope(|s| {
            let evens = s.spawn(|| write(&one, 0));
            let odds = s.spawn(|| write(&two, 1));
            (evens.join().unwrap(), odds.join().unwrap())
        });
        let all: Vec<Fix> = (0..2 * per_node).map(fix).collect();
        assert_eq!(scan(&one, user), all);
        assert_eq!(scan(&two, user), all);
        assert_eq!(one.count_points(user).unwrap(), 2 * per_node as u64);
        assert_well_formed(&chunks(&db));
        let mut seqs: Vec<u64> = evens.iter().chain(&odds).map(|s| s.0).collect();
        seqs.sort_unstable();
        seqs.dedup();
        assert_eq!(seqs.len(), evens.len() + odds.len(), "every write has a seq of its own");
        drop((one, two));
    }
}

/// Two nodes (two stores on one schema) creating tokens with the same hash
/// at the same moment: the insert itself finds the taken hash, so exactly
/// one succeeds and the other gets `AlreadyExists`, round after round.
#[test]
fn two_nodes_racing_for_one_token_hash_store_it_once() {
    use std::sync::Barrier;

    use polo_store::{Store, StoreError, TokenGrant};
    use polo_store_postgres::testing::TestDatabase;

    let Some(db) = TestDatabase::create() else { return };
    let nodes = [db.open(), db.open()];
    let alice = nodes[0].create_user("alice", "h", false).unwrap().id;
    let phone = nodes[0].ensure_device(alice, "phone").unwrap().id;
    const ROUNDS: u8 = 20;
    let start = Barrier::new(nodes.len());
    for round in 0..ROUNDS {
        let hash = [round; 32];
        let results: Vec<_> = std::thread::scope(|s| {
            let racers: Vec<_> = nodes
                .iter()
                .enumerate()
                .map(|(i, node)| {
                    let start = &start;
                    s.spawn(move || {
                        start.wait();
                        node.create_token(alice, phone, &format!("node {i}"), &hash, TokenGrant::default())
                    })
                })
                .collect();
            racers.into_iter().map(|r| r.join().unwrap()).collect()
        });
        let won = results.iter().filter(|r| r.is_ok()).count();
        let refused = results.iter().filter(|r| matches!(r, Err(StoreError::AlreadyExists(_)))).count();
        assert_eq!((won, refused), (1, 1), "round {round}: {results:?}");
        let stored = nodes[1].token_by_hash(&hash).unwrap().unwrap().0;
        assert_eq!(Some(&stored.id), results.iter().find_map(|r| r.as_ref().ok()).map(|t| &t.id), "round {round}");
    }
    assert_eq!(nodes[0].list_tokens(alice).unwrap().len(), usize::from(ROUNDS));
}

/// A token made in a token's name on another node while that token is
/// being revoked: the revocation waits for the making (its key-share lock
/// on the maker) and then takes the new token too, so nothing made by a
/// revoked token survives it.
#[test]
fn a_revocation_takes_what_another_node_makes_meanwhile() {
    use std::time::Duration;

    use polo_store::{Store, TokenGrant};
    use polo_store_postgres::testing::TestDatabase;

    let Some(db) = TestDatabase::create() else { return };
    let store = db.open();
    let alice = store.create_user("alice", "h", false).unwrap().id;
    let phone = store.ensure_device(alice, "phone").unwrap().id;
    let root = store.create_token(alice, phone, "root", &[1; 32], TokenGrant::default()).unwrap();

    // Another node half-way through `create_token` in root's name: the
    // maker locked (as `create_token` locks it), the child inserted, not
    // committed yet.
    let mut other_node = db.client();
    let mut making = other_node.transaction().unwrap();
    making
        .query_one("SELECT 1 FROM tokens WHERE user_id = $1 AND id = $2 FOR KEY SHARE", &[&alice.0, &root.id])
        .unwrap();
    making
        .execute(
            "INSERT INTO tokens (user_id, device_id, label, token_hash, created_ms, created_by) \
             VALUES ($1, $2, 'child', $3, 0, $4)",
            &[&alice.0, &phone.0, &&[2u8; 32][..], &root.id],
        )
        .unwrap();
    std::thread::scope(|s| {
        let revoking = s.spawn(|| store.revoke_token(alice, root.id));
        std::thread::sleep(Duration::from_millis(300));
        assert!(!revoking.is_finished(), "the revocation waits for the token being made");
        making.commit().unwrap();
        assert!(revoking.join().unwrap().unwrap());
    });
    assert_eq!(store.token_by_hash(&[2; 32]).unwrap(), None, "the token made meanwhile is revoked too");
    assert!(store.list_tokens(alice).unwrap().is_empty());
}

/// The Citus layout of a freshly migrated schema holds (see
/// [`citus_layout_violations`]).
#[test]
fn per_user_tables_lead_with_user_id() {
    let Some(db) = polo_store_postgres::testing::TestDatabase::create() else { return };
    drop(db.open()); // migrates
    let broken = citus_layout_violations(&mut db.client());
    assert!(broken.is_empty(), "the schema breaks the Citus layout:\n  {}", broken.join("\n  "));
}

/// The layout check is not vacuous: each kind of break is found and named
/// with its table and constraint.
#[test]
fn the_citus_layout_check_names_each_break() {
    if polo_store_postgres::testing::citus() {
        // Citus itself refuses these breaks on distributed tables.
        eprintln!("SKIPPED under POLO_TEST_CITUS: the breaks cannot be made on distributed tables");
        return;
    }
    let Some(db) = polo_store_postgres::testing::TestDatabase::create() else { return };
    drop(db.open());
    let mut client = db.client();
    client
        .batch_execute(
            "ALTER TABLE devices ADD CONSTRAINT devices_by_bare_name UNIQUE (name); \
             CREATE UNIQUE INDEX changes_by_bare_seq ON changes (seq); \
             CREATE TABLE stray_per_user (user_id BIGINT NOT NULL); \
             ALTER TABLE tokens ADD CONSTRAINT tokens_device_fkey \
                 FOREIGN KEY (user_id, device_id) REFERENCES devices (user_id, id); \
             ALTER TABLE intervals ADD CONSTRAINT intervals_any_device_fkey \
                 FOREIGN KEY (device_id, user_id) REFERENCES devices (user_id, id);",
        )
        .unwrap();
    let broken = citus_layout_violations(&mut client);
    for expected in [
        "devices: unique constraint devices_by_bare_name leads with name, not user_id",
        "changes: unique index changes_by_bare_seq leads with seq, not user_id",
        "stray_per_user: has a user_id column but is in neither DISTRIBUTED_TABLES nor REFERENCE_TABLES",
        "tokens: foreign key tokens_device_fkey points from a reference table to the distributed devices",
        "intervals: foreign key intervals_any_device_fkey to the distributed devices does not pair user_id with user_id",
        "intervals: foreign key intervals_any_device_fkey (FOREIGN KEY (device_id, user_id) REFERENCES devices(user_id, id)) \
         is not in DISTRIBUTED_FOREIGN_KEYS",
    ] {
        assert!(broken.iter().any(|b| b == expected), "{expected:?} not among {broken:#?}");
    }
    assert_eq!(broken.len(), 6, "{broken:#?}");
}

/// What breaks the Citus layout in the client's current schema, read from
/// PostgreSQL's catalog, one line each naming the table and constraint:
/// * a primary key or unique index of a distributed table that does not
///   lead with `user_id` (the distribution column), or a distributed table
///   without a primary key;
/// * a table with a `user_id` column that is in neither
///   [`DISTRIBUTED_TABLES`](polo_store_postgres::DISTRIBUTED_TABLES) nor
///   [`REFERENCE_TABLES`](polo_store_postgres::REFERENCE_TABLES), and a
///   listed table that does not exist or is listed twice;
/// * a foreign key from a reference table to a distributed one, or between
///   distributed tables without `user_id` paired with `user_id` (the rows
///   must stay on one worker);
/// * a foreign key between distributed tables that is not in
///   [`DISTRIBUTED_FOREIGN_KEYS`](polo_store_postgres::DISTRIBUTED_FOREIGN_KEYS)
///   as it stands, or one listed there that is not in the schema (Citus
///   distribution drops and re-creates them).
fn citus_layout_violations(client: &mut postgres::Client) -> Vec<String> {
    use polo_store_postgres::{DISTRIBUTED_TABLES, REFERENCE_TABLES};

    let distributed = |t: &str| DISTRIBUTED_TABLES.contains(&t);
    let reference = |t: &str| REFERENCE_TABLES.contains(&t);
    let mut broken: Vec<String> = Vec::new();

    let tables: Vec<(String, bool)> = client
        .query(
            "SELECT c.relname, EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                 AND a.attname = 'user_id' AND NOT a.attisdropped) \
             FROM pg_class c WHERE c.relnamespace = current_schema()::regnamespace AND c.relkind IN ('r', 'p')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    for listed in DISTRIBUTED_TABLES.iter().chain(REFERENCE_TABLES) {
        if !tables.iter().any(|(t, _)| t == listed) {
            broken.push(format!("{listed}: listed in DISTRIBUTED_TABLES or REFERENCE_TABLES but not in the schema"));
        }
    }
    for both in DISTRIBUTED_TABLES.iter().filter(|t| reference(t)) {
        broken.push(format!("{both}: in both DISTRIBUTED_TABLES and REFERENCE_TABLES"));
    }
    for (table, has_user_id) in &tables {
        if *has_user_id && !distributed(table) && !reference(table) {
            broken.push(format!(
                "{table}: has a user_id column but is in neither DISTRIBUTED_TABLES nor REFERENCE_TABLES"
            ));
        }
        if distributed(table) && !has_user_id {
            broken.push(format!("{table}: distributed by user_id but has no user_id column"));
        }
    }

    // Unique indexes, those behind primary keys and unique constraints too,
    // with their first column (none for an expression).
    let unique: Vec<(String, String, String, Option<String>)> = client
        .query(
            "SELECT c.relname, coalesce(con.contype::text, 'index'), coalesce(con.conname, i.relname), a.attname \
             FROM pg_index x \
             JOIN pg_class c ON c.oid = x.indrelid \
             JOIN pg_class i ON i.oid = x.indexrelid \
             LEFT JOIN pg_constraint con ON con.conindid = x.indexrelid AND con.conrelid = c.oid \
             LEFT JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = x.indkey[0] \
             WHERE c.relnamespace = current_schema()::regnamespace AND x.indisunique \
             ORDER BY 1, 3",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    for table in DISTRIBUTED_TABLES {
        if !unique.iter().any(|(t, kind, ..)| t == table && kind == "p") {
            broken.push(format!("{table}: distributed, but has no primary key"));
        }
    }
    for (table, kind, name, first) in unique.iter().filter(|(t, ..)| distributed(t)) {
        if first.as_deref() != Some("user_id") {
            let kind = match kind.as_str() {
                "p" => "primary key",
                "u" => "unique constraint",
                _ => "unique index",
            };
            let first = first.as_deref().unwrap_or("an expression");
            broken.push(format!("{table}: {kind} {name} leads with {first}, not user_id"));
        }
    }

    /// A foreign key, with its columns paired as (referencing, referenced).
    struct ForeignKey {
        name: String,
        from: String,
        to: String,
        columns: Vec<(String, String)>,
    }
    let foreign: Vec<ForeignKey> = client
        .query(
            "SELECT con.conname, src.relname, dst.relname, \
                 array_agg(sa.attname::text ORDER BY k.i), array_agg(da.attname::text ORDER BY k.i) \
             FROM pg_constraint con \
             JOIN pg_class src ON src.oid = con.conrelid \
             JOIN pg_class dst ON dst.oid = con.confrelid \
             CROSS JOIN LATERAL unnest(con.conkey, con.confkey) WITH ORDINALITY AS k (src_att, dst_att, i) \
             JOIN pg_attribute sa ON sa.attrelid = con.conrelid AND sa.attnum = k.src_att \
             JOIN pg_attribute da ON da.attrelid = con.confrelid AND da.attnum = k.dst_att \
             WHERE con.contype = 'f' AND con.connamespace = current_schema()::regnamespace \
             GROUP BY con.conname, src.relname, dst.relname ORDER BY 2, 1",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| {
            let (from, to): (Vec<String>, Vec<String>) = (r.get(3), r.get(4));
            ForeignKey { name: r.get(0), from: r.get(1), to: r.get(2), columns: from.into_iter().zip(to).collect() }
        })
        .collect();
    assert!(!foreign.is_empty(), "the schema has foreign keys, but the catalog query found none");
    for ForeignKey { name, from, to, columns } in &foreign {
        if reference(from) && distributed(to) {
            broken.push(format!("{from}: foreign key {name} points from a reference table to the distributed {to}"));
        }
        if distributed(from) && distributed(to) && !columns.iter().any(|(a, b)| a == "user_id" && b == "user_id") {
            broken
                .push(format!("{from}: foreign key {name} to the distributed {to} does not pair user_id with user_id"));
        }
    }

    // Citus re-creates the foreign keys between distributed tables after
    // distributing them: DISTRIBUTED_FOREIGN_KEYS must name each, exactly.
    let between: Vec<(String, String, String)> = client
        .query(
            "SELECT src.relname, dst.relname, con.conname, pg_get_constraintdef(con.oid) \
             FROM pg_constraint con \
             JOIN pg_class src ON src.oid = con.conrelid \
             JOIN pg_class dst ON dst.oid = con.confrelid \
             WHERE con.contype = 'f' AND con.connamespace = current_schema()::regnamespace ORDER BY 1, 3",
            &[],
        )
        .unwrap()
        .iter()
        .filter(|r| distributed(r.get(0)) && distributed(r.get(1)))
        .map(|r| (r.get(0), r.get(2), r.get(3)))
        .collect();
    for (table, name, definition) in &between {
        if !polo_store_postgres::DISTRIBUTED_FOREIGN_KEYS.contains(&(
            table.as_str(),
            name.as_str(),
            definition.as_str(),
        )) {
            broken.push(format!("{table}: foreign key {name} ({definition}) is not in DISTRIBUTED_FOREIGN_KEYS"));
        }
    }
    for (table, name, definition) in polo_store_postgres::DISTRIBUTED_FOREIGN_KEYS {
        if !between.iter().any(|(t, n, d)| (t.as_str(), n.as_str(), d.as_str()) == (*table, *name, *definition)) {
            broken.push(format!(
                "{table}: foreign key {name} ({definition}) is in DISTRIBUTED_FOREIGN_KEYS, not in the schema"
            ));
        }
    }
    broken
}

/// The Seq contract across nodes (`polo_store::clock`): writers on separate
/// stores (separate pools, as separate `polo serve` nodes would be) create
/// devices, insert points and edit derived data concurrently, while a
/// reader on a store of its own pages through `changes_since` with a small
/// limit all along. The reader must see every seq exactly once, in order,
/// each page continuing right after its cursor (a seq that committed
/// after a higher one would show up as a gap), and every change a writer
/// got back must be among them, with its kind.
#[test]
fn concurrent_writers_on_separate_nodes_keep_seqs_gap_free_and_commit_ordered() {
    use std::collections::{BTreeMap, BTreeSet};
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

    use polo_domain::{Coord, DeviceId, Fix, Seq, SourceFormat, Timestamp, UserId};
    use polo_store::{ChangeKind, DerivedBatch, DerivedKind, DerivedRow, DerivedScope, Store};
    use polo_store_postgres::testing::TestDatabase;

    const WRITERS: usize = 3;
    const ROUNDS: i64 = 25;
    let Some(db) = TestDatabase::create() else { return };
    let setup = db.open();
    let users: Vec<UserId> =
        (0..WRITERS).map(|i| setup.create_user(&format!("user{i}"), "h", false).unwrap().id).collect();
    let writing = AtomicUsize::new(WRITERS);
    let pages_while_writing = AtomicUsize::new(0);
    let reader_failed = AtomicBool::new(false);

    let (written, seen) = std::thread::scope(|s| {
        let writers: Vec<_> = users
            .iter()
            .map(|&user| {
                let (db, writing) = (&db, &writing);
                s.spawn(move || {
                    let node = db.open();
                    // What the writer got back: seq -> kind, and the devices it made.
                    let mut got: BTreeMap<Seq, ChangeKind> = BTreeMap::new();
                    let mut devices: Vec<DeviceId> = Vec::new();
                    for round in 0..ROUNDS {
                        let device = node.ensure_device(user, &format!("device{round}")).unwrap().id;
                        devices.push(device);
                        let fixes: Vec<Fix> = (0..5)
                            .map(|i| {
                                let t = Timestamp(1_700_000_000_000 + round * 10_000 + i * 1_000);
                                Fix::new(t, Coord { lat_e7: i as i32, lon_e7: round as i32 }, SourceFormat::Api)
                            })
                            .collect();
                        let seq = node.insert_points(user, device, &fixes).unwrap().seq.unwrap();
                        assert!(got.insert(seq, ChangeKind::PointsInserted).is_none(), "seq {seq} handed out twice");
                        let row = DerivedRow {
                            kind: DerivedKind(7),
                            scope: DerivedScope::User,
                            key: round,
                            value: b"edit".to_vec(),
                        };
                        let edit = DerivedBatch { delete: vec![], put: vec![row] };
                        let seq = node.derived_write(user, &edit, true).unwrap().unwrap();
                        assert!(got.insert(seq, ChangeKind::Edit).is_none(), "seq {seq} handed out twice");
                    }
                    writing.fetch_sub(1, Ordering::SeqCst);
                    (user, got, devices)
                })
            })
            .collect();
        let reader = {
            let (db, writing, pages_while_writing, reader_failed) =
                (&db, &writing, &pages_while_writing, &reader_failed);
            s.spawn(move || {
                let node = db.open();
                let mut seen: Vec<polo_store::Change> = Vec::new();
                let mut cursor = Seq(0);
                loop {
                    let done = writing.load(Ordering::SeqCst) == 0;
                    let page = node.changes_since(cursor, 7).unwrap();
                    for (i, change) in page.iter().enumerate() {
                        if change.seq != Seq(cursor.0 + 1 + i as u64) {
                            reader_failed.store(true, Ordering::SeqCst);
                            panic!("after {cursor} the reader got {:?}: a gap or reordering", change.seq);
                        }
                    }
                    if let Some(last) = page.last() {
                        cursor = last.seq;
                        if !done {
                            pages_while_writing.fetch_add(1, Ordering::SeqCst);
                        }
                    }
                    seen.extend(page);
                    if done && cursor == node.last_seq().unwrap() {
                        return seen;
                    }
                }
            })
        };
        let written: Vec<_> = writers.into_iter().map(|w| w.join().unwrap()).collect();
        (written, reader.join().unwrap())
    });
    assert!(!reader_failed.load(Ordering::SeqCst));
    assert!(pages_while_writing.load(Ordering::SeqCst) > 0, "the reader read nothing while the writers wrote");

    let by_seq: BTreeMap<Seq, &polo_store::Change> = seen.iter().map(|c| (c.seq, c)).collect();
    assert_eq!(by_seq.len(), seen.len(), "the reader saw a seq twice");
    let last = setup.last_seq().unwrap();
    assert_eq!(by_seq.keys().copied().collect::<Vec<_>>(), (1..=last.0).map(Seq).collect::<Vec<_>>());
    // The setup's users, then per writer a device, a points insert and an edit per round.
    assert_eq!(seen.len(), WRITERS + WRITERS * ROUNDS as usize * 3);
    for (user, got, devices) in &written {
        for (seq, kind) in got {
            let change = by_seq.get(seq).unwrap_or_else(|| panic!("{seq} written but never read"));
            assert_eq!((change.kind, change.user), (*kind, *user), "{seq}");
        }
        let made: BTreeSet<DeviceId> =
            seen.iter().filter(|c| c.kind == ChangeKind::Device && c.user == *user).filter_map(|c| c.device).collect();
        assert_eq!(made, devices.iter().copied().collect(), "every device creation was read once");
    }
}

/// Nodes starting at the same moment on an empty schema migrate it once:
/// every open succeeds and the schema ends at this polo's version.
#[test]
fn nodes_opening_a_fresh_schema_together_migrate_it_once() {
    use std::sync::Barrier;

    use polo_store::Store;
    use polo_store_postgres::testing::TestDatabase;
    use polo_store_postgres::{PostgresStore, SCHEMA_VERSION};

    const NODES: usize = 4;
    let Some(db) = TestDatabase::create() else { return };
    let url = db.url();
    let start = Barrier::new(NODES);
    let nodes: Vec<PostgresStore> = std::thread::scope(|s| {
        let openers: Vec<_> = (0..NODES)
            .map(|_| {
                let (url, start) = (&url, &start);
                s.spawn(move || {
                    start.wait();
                    PostgresStore::open(url)
                })
            })
            .collect();
        openers.into_iter().map(|o| o.join().unwrap().expect("every node opens")).collect()
    });
    let mut client = db.client();
    let version: String =
        client.query_one("SELECT value FROM polo_meta WHERE key = 'schema_version'", &[]).unwrap().get(0);
    assert_eq!(version, SCHEMA_VERSION.to_string());
    let epochs: i64 = client.query_one("SELECT count(*) FROM epochs", &[]).unwrap().get(0);
    assert_eq!(epochs, 1, "one instance, one epoch: the schema was created once");
    let ids: Vec<String> = nodes.iter().map(|n| n.instance_id().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] == w[1]), "every node is the same instance: {ids:?}");
    drop(nodes);
}

/// After `delete_user`, no table holds a row of the deleted id in a user
/// column (`user_id`, `friend_id`) but the deletion's own change and its
/// account tombstone; read from the catalog, so a table added later is
/// covered without changing this test.
#[test]
fn a_deleted_account_leaves_no_row_in_any_table() {
    use polo_store::Store;
    use polo_store::conformance::accounts::a_user_with_everything;
    let Some((store, db)) = test_store() else { return };
    let alice = a_user_with_everything(&store, "alice", 1);
    let bob = a_user_with_everything(&store, "bob", 9);
    store.grant_location(alice, bob, None).unwrap();
    store.grant_location(bob, alice, None).unwrap();
    let deleted = store.delete_user(alice).unwrap();
    drop(store);
    let mut client = db.client();
    let columns: Vec<(String, String)> = client
        .query(
            "SELECT table_name::TEXT, column_name::TEXT FROM information_schema.columns \
             WHERE table_schema = current_schema() AND column_name IN ('user_id', 'friend_id', 'former_user_id')",
            &[],
        )
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert!(columns.len() >= 14, "only {columns:?}");
    for (table, column) in &columns {
        let count = |id: i64, client: &mut postgres::Client| -> i64 {
            client.query_one(&format!("SELECT count(*) FROM {table} WHERE {column} = $1"), &[&id]).unwrap().get(0)
        };
        let rows = count(alice.0, &mut client);
        let expected = i64::from(matches!(table.as_str(), "changes" | "deleted_users"));
        assert_eq!(rows, expected, "{table}.{column} still holds {rows} rows of the deleted user");
        if matches!(table.as_str(), "devices" | "point_chunks" | "tokens" | "sessions" | "derived" | "changes") {
            assert!(count(bob.0, &mut client) > 0, "{table}.{column} lost bob's rows");
        }
    }
    let row = client.query_one("SELECT kind, seq FROM changes WHERE user_id = $1", &[&alice.0]).unwrap();
    let (kind, seq): (i16, i64) = (row.get(0), row.get(1));
    assert_eq!((i64::from(kind), seq as u64), (polo_store::ChangeKind::AccountDeleted.code(), deleted.seq.0));
    let users: i64 = client.query_one("SELECT count(*) FROM users WHERE id = $1", &[&alice.0]).unwrap().get(0);
    assert_eq!(users, 0);
    let cursors: i64 = client
        .query_one(
            "SELECT count(*) FROM derived_cursors WHERE name = 'retention:' || $1 || ':60000' OR name = 'street-names:' || $1",
            &[&alice.0.to_string()],
        )
        .unwrap()
        .get(0);
    assert_eq!(cursors, 0, "her per-user cursors went");
}
