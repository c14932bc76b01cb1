//! `polo backup`: snapshot, upload the blocks the destination lacks, then
//! write the manifest.
//!
//! The destination's block list is read once (one paginated LIST), not
//! probed per block. Blocks are read, hashed and (when new) compressed on
//! the blocking pool and uploaded `concurrency` at a time, so hashing,
//! compression and the network overlap; memory stays at about
//! `concurrency × 2 × block_size`.

use std::collections::{HashMap, HashSet};
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use bytes::Bytes;
use futures_util::{StreamExt, TryStreamExt};
use polo_domain::Timestamp;

use crate::blocks::{self, BLOCKS_DIR};
use crate::dest::Destination;
use crate::error::{BackupError, BackupResult};
use crate::manifest::{BlockRef, FORMAT, Manifest, backup_id, id_millis};
use crate::progress::{Phase, Progress};
use crate::snapshot::{self, Snapshot};
use crate::transfer;

/// Default block size: 4 MiB, 256 pages of 16 KiB.
pub const DEFAULT_BLOCK_SIZE: u64 = 4 << 20;

/// Blocks are whole pages; SQLite pages are at most 64 KiB, so a multiple
/// of this is a multiple of any page size.
pub const BLOCK_ALIGN: u64 = 64 << 10;

/// How a backup is taken.
#[derive(Debug, Clone)]
pub struct BackupOptions {
    /// Bytes per block: a multiple of [`BLOCK_ALIGN`], at most 1 GiB.
    /// Smaller blocks upload less after a small change, larger blocks
    /// make fewer objects.
    pub block_size: u64,
    /// Blocks hashed, compressed and uploaded at once.
    pub concurrency: usize,
    /// zstd level of stored blocks.
    pub compression_level: i32,
    /// Where the snapshot copy is made [default: beside the database, which
    /// has room for a copy of itself more often than `/tmp` has].
    pub scratch_dir: Option<PathBuf>,
}

impl Default for BackupOptions {
    fn default() -> Self {
        Self { block_size: DEFAULT_BLOCK_SIZE, concurrency: 8, compression_level: 3, scratch_dir: None }
    }
}

impl BackupOptions {
    /// Checks the options (as [`create`] does first).
    ///
    /// # Errors
    /// [`BackupError::Invalid`] naming the option out of range.
    pub fn check(&self) -> BackupResult<()> {
        if self.block_size == 0 || !self.block_size.is_multiple_of(BLOCK_ALIGN) || self.block_size > 1 << 30 {
            return Err(BackupError::Invalid(format!(
                "block size {} must be a multiple of 64 KiB ({BLOCK_ALIGN} bytes) up to 1 GiB",
                self.block_size
            )));
        }
        if self.concurrency == 0 {
            return Err(BackupError::Invalid("concurrency must be at least 1".into()));
        }
        Ok(())
    }
}

/// What a backup run did.
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The manifest written.
    pub manifest: Manifest,
    /// Blocks stored by this run.
    pub blocks_uploaded: usize,
    /// Blocks the destination already had (or that repeat within the snapshot).
    pub blocks_reused: usize,
    /// Compressed bytes stored by this run (blocks and manifest).
    pub bytes_uploaded: u64,
    /// Wall time of the snapshot.
    pub snapshot_seconds: f64,
    /// Wall time of the whole run.
    pub seconds: f64,
}

/// Backs up the database at `db` to `dest`.
///
/// # Errors
/// Invalid options, an unreadable database, object-store failures. Blocks
/// stored before a failure stay (a later run reuses them); without a
/// manifest they are not a backup, and retention's garbage collection
/// removes them if no later backup needs them.
pub async fn create(
    db: &Path,
    dest: &Destination,
    options: &BackupOptions,
    progress: &dyn Progress,
) -> BackupResult<BackupReport> {
    options.check()?;
    let started = Instant::now();
    let existing = crate::ids(dest).await?;
    let parent = existing.last().cloned();
    // Ids are unique and increase, even if the clock stepped back.
    let after_parent = parent.as_deref().and_then(id_millis).map_or(i64::MIN, |ms| ms.saturating_add(1));
    let created = Timestamp(now().0.max(after_parent));
    progress.phase(Phase::Snapshot, 0);
    let scratch = options
        .scratch_dir
        .clone()
        .or_else(|| db.parent().filter(|p| !p.as_os_str().is_empty()).map(Path::to_path_buf))
        .unwrap_or_else(|| PathBuf::from("."));
    let db_path = db.to_path_buf();
    let snapshot = tokio::task::spawn_blocking(move || snapshot::take(&db_path, &scratch))
        .await
        .map_err(|e| BackupError::Invalid(format!("snapshot panicked: {e}")))??;
    let snapshot_seconds = started.elapsed().as_secs_f64();
    if !options.block_size.is_multiple_of(u64::from(snapshot.info.page_size)) {
        return Err(BackupError::Invalid(format!(
            "block size {} is not a multiple of the page size {}",
            options.block_size, snapshot.info.page_size
        )));
    }
    let stored = stored_blocks(dest).await?;
    progress.phase(Phase::Upload, snapshot.info.size);
    let uploaded = upload_blocks(&snapshot, dest, options, stored, progress).await?;
    let info = &snapshot.info;
    let manifest = Manifest {
        format: FORMAT,
        id: backup_id(created),
        parent,
        created: created.to_rfc3339(None),
        created_ms: created.0,
        polo_version: env!("CARGO_PKG_VERSION").to_owned(),
        instance_id: info.instance_id.clone(),
        epoch: info.epoch.clone(),
        schema_version: info.schema_version,
        page_size: info.page_size,
        last_seq: info.last_seq,
        derived_cursors: info.derived_cursors.clone(),
        size: info.size,
        block_size: options.block_size,
        compression: "zstd".to_owned(),
        blocks: uploaded.blocks,
    };
    let json = Bytes::from(manifest.to_json()?);
    let manifest_bytes = json.len() as u64;
    transfer::put(dest, &Manifest::name_of(&manifest.id), json).await?;
    tracing::info!(
        id = %manifest.id,
        blocks_uploaded = uploaded.uploaded,
        blocks_reused = uploaded.reused,
        bytes_uploaded = uploaded.bytes,
        "backup written"
    );
    Ok(BackupReport {
        manifest,
        blocks_uploaded: uploaded.uploaded,
        blocks_reused: uploaded.reused,
        bytes_uploaded: uploaded.bytes + manifest_bytes,
        snapshot_seconds,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The blocks at the destination with their stored sizes.
async fn stored_blocks(dest: &Destination) -> BackupResult<HashMap<String, u64>> {
    let prefix = dest.path(BLOCKS_DIR);
    let listed: Vec<_> = dest.store().list(Some(&prefix)).try_collect().await?;
    Ok(listed
        .into_iter()
        .filter_map(|meta| {
            let name = dest.name(&meta.location)?;
            blocks::hash_of_name(&name).map(|hash| (hash.to_owned(), meta.size))
        })
        .collect())
}

struct Uploaded {
    blocks: Vec<BlockRef>,
    uploaded: usize,
    reused: usize,
    bytes: u64,
}

/// What the blocking part decided for one block.
enum Prepared {
    /// Stored already, with this many bytes.
    Known(String, u64),
    /// New: upload these compressed bytes (or only count them when another
    /// block of this snapshot with the same bytes is uploading them).
    New { hash: String, data: Bytes, upload: bool },
}

async fn upload_blocks(
    snapshot: &Snapshot,
    dest: &Destination,
    options: &BackupOptions,
    stored: HashMap<String, u64>,
    progress: &dyn Progress,
) -> BackupResult<Uploaded> {
    let size = snapshot.info.size;
    let block_size = options.block_size;
    let count = usize::try_from(size.div_ceil(block_size))
        .map_err(|_| BackupError::Invalid("the database has too many blocks".into()))?;
    let stored = Arc::new(stored);
    let claimed = Arc::new(Mutex::new(HashSet::new()));
    let path = snapshot.path();
    let level = options.compression_level;
    let mut results = futures_util::stream::iter(0..count)
        .map(|index| {
            let (stored, claimed, path) = (Arc::clone(&stored), Arc::clone(&claimed), path.clone());
            async move {
                let offset = index as u64 * block_size;
                let len = block_size.min(size - offset);
                let prepared =
                    tokio::task::spawn_blocking(move || prepare(&path, offset, len, level, &stored, &claimed))
                        .await
                        .map_err(|e| BackupError::Invalid(format!("block preparation panicked: {e}")))??;
                let (block, uploaded) = match prepared {
                    Prepared::Known(hash, stored) => (BlockRef { sha256: hash, stored }, false),
                    Prepared::New { hash, data, upload } => {
                        let stored = data.len() as u64;
                        if upload {
                            transfer::put(dest, &blocks::block_name(&hash), data).await?;
                        }
                        (BlockRef { sha256: hash, stored }, upload)
                    }
                };
                Ok::<_, BackupError>((index, block, uploaded, len))
            }
        })
        .buffer_unordered(options.concurrency);
    let mut blocks: Vec<Option<BlockRef>> = vec![None; count];
    let (mut uploaded, mut reused, mut bytes) = (0, 0, 0);
    while let Some(result) = results.next().await {
        let (index, block, was_uploaded, len) = result?;
        if was_uploaded {
            uploaded += 1;
            bytes += block.stored;
        } else {
            reused += 1;
        }
        blocks[index] = Some(block);
        progress.advance(len);
    }
    let blocks = blocks
        .into_iter()
        .collect::<Option<Vec<_>>>()
        .ok_or_else(|| BackupError::Invalid("a block was neither uploaded nor found (this is a bug)".into()))?;
    Ok(Uploaded { blocks, uploaded, reused, bytes })
}

fn prepare(
    path: &Path,
    offset: u64,
    len: u64,
    level: i32,
    stored: &HashMap<String, u64>,
    claimed: &Mutex<HashSet<String>>,
) -> BackupResult<Prepared> {
    let mut data = vec![0; usize::try_from(len).map_err(|_| BackupError::Invalid("block too large".into()))?];
    let mut file = std::fs::File::open(path).map_err(BackupError::io(format!("cannot open {}", path.display())))?;
    file.seek(SeekFrom::Start(offset))
        .and_then(|_| file.read_exact(&mut data))
        .map_err(BackupError::io(format!("cannot read {}", path.display())))?;
    let hash = blocks::sha256_hex(&data);
    if let Some(&size) = stored.get(&hash) {
        return Ok(Prepared::Known(hash, size));
    }
    let upload = claimed.lock().unwrap_or_else(PoisonError::into_inner).insert(hash.clone());
    let compressed = blocks::compress(&data, level).map_err(BackupError::io("cannot compress a block"))?;
    Ok(Prepared::New { hash, data: Bytes::from(compressed), upload })
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}
