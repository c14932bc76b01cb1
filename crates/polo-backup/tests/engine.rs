//! The backup engine against a local directory: full and incremental
//! backups of a live store, verify, restore and retention.

use std::path::{Path, PathBuf};

use polo_backup::blocks::block_name;
use polo_backup::{
    Access, BackupError, BackupOptions, Destination, GcOptions, Manifest, RestoreOptions, Retention, Silent,
    VerifyOptions,
};
use polo_domain::{Coord, DeviceId, Fix, Seq, SourceFormat, Timestamp, UserId};
use polo_store::Store;
use polo_store_sqlite::SqliteStore;

/// 64 KiB blocks (4 pages): small test databases still span dozens of blocks.
fn options() -> BackupOptions {
    BackupOptions { block_size: 64 << 10, concurrency: 4, ..BackupOptions::default() }
}

const T0: i64 = 1_700_000_000_000;

/// A noisy walk of `n` fixes, one every 10 s from `start` (noise, so the
/// points do not compress to nothing).
fn fixes(start: i64, n: i64) -> Vec<Fix> {
    let mut state = start as u64 ^ 0x9e37_79b9_7f4a_7c15;
    let mut noise = move || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as i32 % 20_000
    };
    (0..n)
        .map(|i| {
            let coord = Coord { lat_e7: 525_000_000 + noise(), lon_e7: 134_000_000 + (i as i32) * 3 + noise() };
            Fix::new(Timestamp(start + i * 10_000 + i64::from(noise() % 500)), coord, SourceFormat::Csv)
        })
        .collect()
}

struct Live {
    _dir: tempfile::TempDir,
    db: PathBuf,
    dest_dir: PathBuf,
    store: SqliteStore,
    user: UserId,
    device: DeviceId,
}

impl Live {
    fn new(points: i64) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("data/polo.sqlite");
        std::fs::create_dir_all(db.parent().unwrap()).unwrap();
        let store = SqliteStore::open(&db).unwrap();
        let user = store.create_user("alice", "h", false).unwrap().id;
        let device = store.ensure_device(user, "phone").unwrap().id;
        for batch in fixes(T0, points).chunks(50_000) {
            store.insert_points(user, device, batch).unwrap();
        }
        store.set_derived_cursor("timeline", store.last_seq().unwrap()).unwrap();
        let dest_dir = dir.path().join("backups");
        Self { _dir: dir, db, dest_dir, store, user, device }
    }

    fn dest(&self) -> Destination {
        Destination::open(self.dest_dir.to_str().unwrap(), None, Access::Write).unwrap()
    }

    fn block_file(&self, hash: &str) -> PathBuf {
        self.dest_dir.join(block_name(hash))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_backup_uploads_only_the_blocks_that_changed() {
    let live = Live::new(200_000);
    let dest = live.dest();
    let first = polo_backup::create(&live.db, &dest, &options(), &Silent).await.unwrap();
    let blocks = first.manifest.blocks.len();
    assert!(blocks > 20, "the test database spans many blocks: {blocks}");
    assert_eq!(first.blocks_uploaded + first.blocks_reused, blocks);
    assert_eq!(first.manifest.parent, None);
    assert_eq!(first.manifest.last_seq, live.store.last_seq().unwrap().0);
    assert_eq!(first.manifest.timeline_cursor(), Some(first.manifest.last_seq));
    assert_eq!(first.manifest.epoch.as_deref(), Some(live.store.epoch().unwrap().as_str()));

    // Nothing changed: every block exists, only the manifest is written.
    let same = polo_backup::create(&live.db, &dest, &options(), &Silent).await.unwrap();
    assert_eq!(same.blocks_uploaded, 0, "an unchanged database uploads no block");
    assert_eq!(same.manifest.parent.as_deref(), Some(first.manifest.id.as_str()));
    assert!(same.bytes_uploaded < 20_000, "just the manifest: {} bytes", same.bytes_uploaded);

    // A few new points (the server keeps running: the store stays open).
    live.store.insert_points(live.user, live.device, &fixes(T0 + 200_000 * 10_000, 20)).unwrap();
    let second = polo_backup::create(&live.db, &dest, &options(), &Silent).await.unwrap();
    assert_eq!(second.manifest.last_seq, first.manifest.last_seq + 1);
    assert!(
        second.blocks_uploaded <= 8 && second.blocks_reused >= blocks - 8,
        "{} of {} blocks uploaded after adding 20 points",
        second.blocks_uploaded,
        second.manifest.blocks.len()
    );
    eprintln!(
        "{blocks} blocks of 64 KiB; after 20 new points {} uploaded ({} bytes), {} reused",
        second.blocks_uploaded, second.bytes_uploaded, second.blocks_reused
    );
    let ids = polo_backup::ids(&dest).await.unwrap();
    assert_eq!(ids, [first.manifest.id.clone(), same.manifest.id.clone(), second.manifest.id.clone()]);
    // Each manifest describes a whole database: the newest verifies on its own.
    polo_backup::verify(&dest, None, &VerifyOptions::default(), &Silent).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restore_brings_back_the_data_with_a_new_epoch() {
    let live = Live::new(30_000);
    live.store.set_derived_cursor("timeline", Seq(1)).unwrap();
    let dest = live.dest();
    let backup = polo_backup::create(&live.db, &dest, &options(), &Silent).await.unwrap();
    // Writes after the backup are not in it.
    live.store.insert_points(live.user, live.device, &fixes(T0 + 30_000 * 10_000, 5)).unwrap();

    let target = live.dest_dir.parent().unwrap().join("restored/polo.sqlite");
    let restored = polo_backup::restore(&dest, None, &target, &RestoreOptions::default(), &Silent).await.unwrap();
    assert_eq!(restored.manifest.id, backup.manifest.id);
    assert_eq!(restored.last_seq, backup.manifest.last_seq);
    let old_epoch = live.store.epoch().unwrap();
    assert_ne!(restored.epoch, old_epoch, "a restored instance has a new epoch");

    let store = SqliteStore::open(&target).unwrap();
    assert_eq!(store.epoch().unwrap(), restored.epoch);
    let source = live.store.instance_id().unwrap();
    assert_ne!(store.instance_id().unwrap(), source, "the restored copy is a new instance");
    let resume = store.replication_checkpoint(&source).unwrap().expect("replication from the source resumes");
    assert_eq!((resume.epoch, resume.seq.0), (old_epoch.clone(), backup.manifest.last_seq));
    assert_eq!(store.last_seq().unwrap().0, backup.manifest.last_seq);
    assert_eq!(store.derived_cursor("timeline").unwrap(), Seq(1), "derived cursors come back as they were");
    assert_eq!(store.count_points(live.user).unwrap(), 30_000);
    drop(store);

    // An existing database is not replaced without force; with it, it is.
    let refused = polo_backup::restore(&dest, None, &target, &RestoreOptions::default(), &Silent).await.unwrap_err();
    assert!(matches!(refused, BackupError::Refused(_)), "{refused}");
    let forced = RestoreOptions { force: true, ..RestoreOptions::default() };
    let again = polo_backup::restore(&dest, Some(&backup.manifest.id), &target, &forced, &Silent).await.unwrap();
    assert_ne!(again.epoch, restored.epoch, "every restore starts a new epoch");
    assert_eq!(SqliteStore::open(&target).unwrap().count_points(live.user).unwrap(), 30_000);

    let missing = polo_backup::restore(&dest, Some("20000101T000000.000Z"), &target, &forced, &Silent).await;
    assert!(matches!(missing, Err(BackupError::NotFound(_))), "{missing:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_names_a_damaged_block_and_a_missing_one() {
    let live = Live::new(30_000);
    let dest = live.dest();
    let backup = polo_backup::create(&live.db, &dest, &options(), &Silent).await.unwrap();
    let ok = polo_backup::verify(&dest, Some(&backup.manifest.id), &VerifyOptions::default(), &Silent).await.unwrap();
    assert_eq!(ok.manifest, backup.manifest);

    let blocks = &backup.manifest.blocks;
    let (flipped, deleted) = (&blocks[blocks.len() / 2].sha256, &blocks[1].sha256);
    assert_ne!(flipped, deleted);
    let path = live.block_file(flipped);
    let mut bytes = std::fs::read(&path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&path, bytes).unwrap();
    std::fs::remove_file(live.block_file(deleted)).unwrap();

    let err = polo_backup::verify(&dest, None, &VerifyOptions::default(), &Silent).await.unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, BackupError::Damaged { .. }), "{text}");
    assert!(text.contains(&block_name(flipped)), "names the damaged block: {text}");
    assert!(text.contains(&format!("{}): missing", block_name(deleted))), "names the missing block: {text}");

    // A restore stops at the damage and leaves no database behind.
    let target = live.dest_dir.parent().unwrap().join("restored/polo.sqlite");
    let err = polo_backup::restore(&dest, None, &target, &RestoreOptions::default(), &Silent).await.unwrap_err();
    assert!(matches!(err, BackupError::Damaged { .. }), "{err}");
    assert!(!target.exists());
    let leftovers: Vec<_> = std::fs::read_dir(target.parent().unwrap()).unwrap().collect();
    assert!(leftovers.is_empty(), "no partial file is left: {leftovers:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_runs_the_integrity_check_on_the_reassembled_database() {
    let live = Live::new(30_000);
    let dest = live.dest();
    let backup = polo_backup::create(&live.db, &dest, &options(), &Silent).await.unwrap();
    // Damage that the hashes cannot see: a block rewritten *with* a matching
    // manifest entry, as a bug in the snapshot would produce.
    let mut manifest = backup.manifest.clone();
    let index = manifest.blocks.len() - 2;
    let len = usize::try_from(manifest.block_len(index)).unwrap();
    let garbage = vec![0x5a; len];
    let hash = polo_backup::blocks::sha256_hex(&garbage);
    let stored = polo_backup::blocks::compress(&garbage, 3).unwrap();
    std::fs::create_dir_all(live.block_file(&hash).parent().unwrap()).unwrap();
    std::fs::write(live.block_file(&hash), &stored).unwrap();
    manifest.blocks[index] = polo_backup::manifest::BlockRef { sha256: hash, stored: stored.len() as u64 };
    std::fs::write(live.dest_dir.join(Manifest::name_of(&manifest.id)), manifest.to_json().unwrap()).unwrap();

    let err = polo_backup::verify(&dest, None, &VerifyOptions::default(), &Silent).await.unwrap_err();
    assert!(err.to_string().contains("integrity check"), "{err}");
}

/// Rewrites a backup's manifest as if it had been made at `created_ms`.
fn backdate(dir: &Path, id: &str, created_ms: i64) -> String {
    let name = Manifest::name_of(id);
    let mut manifest = Manifest::parse(&name, &std::fs::read(dir.join(&name)).unwrap()).unwrap();
    manifest.id = polo_backup::manifest::backup_id(Timestamp(created_ms));
    manifest.created_ms = created_ms;
    std::fs::remove_file(dir.join(&name)).unwrap();
    std::fs::write(dir.join(Manifest::name_of(&manifest.id)), manifest.to_json().unwrap()).unwrap();
    manifest.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_backups_and_only_the_blocks_nothing_else_needs() {
    let live = Live::new(30_000);
    let dest = live.dest();
    let day = 86_400_000;
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let mut ids = Vec::new();
    for (i, days_ago) in [40, 3, 2, 1].into_iter().enumerate() {
        live.store
            .insert_points(live.user, live.device, &fixes(T0 + (1_000_000 + i as i64) * 10_000_000, 500))
            .unwrap();
        let report = polo_backup::create(&live.db, &dest, &options(), &Silent).await.unwrap();
        ids.push(backdate(&live.dest_dir, &report.manifest.id, now - days_ago * day));
    }
    let manifests = polo_backup::list(&dest).await.unwrap();
    let oldest_only: Vec<String> = {
        let others: std::collections::HashSet<&str> =
            manifests[1..].iter().flat_map(|m| m.blocks.iter().map(|b| b.sha256.as_str())).collect();
        manifests[0].blocks.iter().map(|b| b.sha256.clone()).filter(|h| !others.contains(h.as_str())).collect()
    };
    assert!(!oldest_only.is_empty(), "the oldest backup has blocks of its own");

    // A young unreferenced block (an upload in progress) survives garbage collection.
    let young = polo_backup::blocks::sha256_hex(b"in flight");
    std::fs::create_dir_all(live.block_file(&young).parent().unwrap()).unwrap();
    std::fs::write(live.block_file(&young), polo_backup::blocks::compress(b"in flight", 3).unwrap()).unwrap();

    let retention = Retention { daily: Some(2), monthly: Some(1) };
    let gc = GcOptions { min_block_age: std::time::Duration::from_secs(600) };
    let report = polo_backup::retention::apply(&dest, &retention, &gc).await.unwrap();
    // Daily: the two newest days; monthly: this month's last (already kept).
    assert_eq!(report.kept, ids[2..].to_vec());
    assert_eq!(report.deleted, ids[..2].to_vec());
    assert!(live.block_file(&young).exists(), "young blocks are left alone");
    // Blocks were all written moments ago, so nothing is old enough yet.
    assert_eq!(report.blocks_deleted, 0);

    let gc = GcOptions { min_block_age: std::time::Duration::ZERO };
    let report = polo_backup::retention::apply(&dest, &retention, &gc).await.unwrap();
    assert!(report.deleted.is_empty());
    // The deleted backups' own blocks, and now the young one too.
    assert!(report.blocks_deleted > oldest_only.len(), "{report:?}");
    for hash in &oldest_only {
        assert!(!live.block_file(hash).exists(), "unreferenced block {hash} was deleted");
    }
    // Every kept backup still has all its blocks.
    for id in &ids[2..] {
        polo_backup::verify(&dest, Some(id), &VerifyOptions::default(), &Silent).await.unwrap();
    }
}

/// The fault the epoch exists for: a source restored from an older backup
/// in place. Its change log is rewound, and after new writes it reuses
/// sequence numbers a replication peer has already seen, for different
/// changes. A peer holding `(epoch, seq)` sees the epoch change and must
/// re-sync; comparing sequence numbers alone would silently skip the new
/// changes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_restored_from_an_older_backup_is_detectable_by_its_epoch() {
    let live = Live::new(10_000);
    let dest = live.dest();
    let older = polo_backup::create(&live.db, &dest, &options(), &Silent).await.unwrap();
    for i in 0..3 {
        live.store.insert_points(live.user, live.device, &fixes(T0 + (20_000 + i) * 10_000_000, 10)).unwrap();
    }
    // What a peer that followed the source holds.
    let peer_cursor = (live.store.epoch().unwrap(), live.store.last_seq().unwrap());
    assert_eq!(peer_cursor.1.0, older.manifest.last_seq + 3);

    // The source dies and is restored in place from the older backup.
    let Live { _dir, db, store, user, device, .. } = live;
    drop(store);
    let forced = RestoreOptions { force: true, ..RestoreOptions::default() };
    polo_backup::restore(&dest, Some(&older.manifest.id), &db, &forced, &Silent).await.unwrap();
    let source = SqliteStore::open(&db).unwrap();
    assert_eq!(source.last_seq().unwrap().0, older.manifest.last_seq, "the change log was rewound");
    // It takes new writes: the sequence numbers the peer saw come back, for other changes.
    for i in 0..3 {
        source.insert_points(user, device, &fixes(T0 + (30_000 + i) * 10_000_000, 10)).unwrap();
    }
    assert_eq!(source.last_seq().unwrap(), peer_cursor.1, "same seq, different history");
    assert_ne!(source.epoch().unwrap(), peer_cursor.0, "the epoch tells the peer the source was rewound");
}
