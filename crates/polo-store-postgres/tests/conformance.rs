//! The backend-agnostic conformance suite against PostgreSQL, one schema per
//! test (see `polo_store_postgres::testing`), plus PostgreSQL-specific
//! behaviour: concurrent writers, concurrent migrations, the Citus layout.

use polo_store_postgres::testing::test_store;

polo_store::conformance_tests!(test_store);

mod replication {
    polo_store::replication_conformance_tests!(polo_store_postgres::testing::test_store);
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
