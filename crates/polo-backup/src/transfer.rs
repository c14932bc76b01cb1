//! Moving blocks: uploads (one PUT, or a multipart upload whose parts go
//! in parallel for large objects) and the parallel download that
//! reassembles a database file from a manifest, checking every block.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use futures_util::StreamExt;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};

use crate::blocks::{self, BlockProblem};
use crate::dest::Destination;
use crate::error::{BackupError, BackupResult};
use crate::manifest::Manifest;
use crate::progress::Progress;

/// Objects above this size are uploaded in parts. S3 needs at least 5 MiB
/// per part (but the last), and a part is one request either way, so a
/// single PUT is cheaper up to here.
pub const MULTIPART_THRESHOLD: usize = 8 << 20;

/// Part size of multipart uploads: S3's minimum, for the most parallelism.
pub const PART_SIZE: usize = 5 << 20;

/// Parts of one object in flight at once.
pub const PART_CONCURRENCY: usize = 4;

/// Stores `data` at `name` (relative to the destination).
///
/// # Errors
/// Object-store failures; a failed multipart upload is aborted.
pub async fn put(dest: &Destination, name: &str, data: Bytes) -> BackupResult<()> {
    let path = dest.path(name);
    if data.len() <= MULTIPART_THRESHOLD {
        dest.store().put(&path, PutPayload::from_bytes(data)).await?;
        return Ok(());
    }
    let mut upload = WriteMultipart::new_with_chunk_size(dest.store().put_multipart(&path).await?, PART_SIZE);
    let mut offset = 0;
    while offset < data.len() {
        if let Err(e) = upload.wait_for_capacity(PART_CONCURRENCY).await {
            let _ = upload.abort().await;
            return Err(e.into());
        }
        let end = (offset + PART_SIZE).min(data.len());
        upload.put(data.slice(offset..end));
        offset = end;
    }
    upload.finish().await?;
    Ok(())
}

/// Reads `name` whole; `Ok(None)` when it does not exist.
///
/// # Errors
/// Other object-store failures.
pub async fn get(dest: &Destination, name: &str) -> BackupResult<Option<Bytes>> {
    match dest.store().get(&dest.path(name)).await {
        Ok(result) => Ok(Some(result.bytes().await?)),
        Err(object_store::Error::NotFound { .. }) => Ok(None),
        Err(e) => Err(e.into()),
    }
}

/// A problem with one block of a manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// The block's index in the manifest.
    pub index: usize,
    /// Its hash (its name).
    pub sha256: String,
    /// What is wrong.
    pub problem: BlockProblem,
}

impl std::fmt::Display for Damage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "block {} ({}): {}", self.index, blocks::block_name(&self.sha256), self.problem)
    }
}

/// Downloads every block of `manifest` (`concurrency` at once), checks
/// each, and writes it at its offset in `file`, which is created or
/// truncated to the manifest's size. Returns the damaged blocks: with
/// `stop_at_first`, at most the first one found.
///
/// # Errors
/// Local I/O and object-store failures other than a missing block.
pub async fn assemble(
    dest: &Destination,
    manifest: &Manifest,
    file: &Path,
    concurrency: usize,
    stop_at_first: bool,
    progress: &dyn Progress,
) -> BackupResult<Vec<Damage>> {
    let out = std::fs::File::create(file).map_err(BackupError::io(format!("cannot create {}", file.display())))?;
    out.set_len(manifest.size).map_err(BackupError::io(format!("cannot size {}", file.display())))?;
    let out = Arc::new(Mutex::new(out));
    let mut damage = Vec::new();
    let mut fetches = futures_util::stream::iter(manifest.blocks.iter().enumerate())
        .map(|(index, block)| {
            let out = Arc::clone(&out);
            let len = manifest.block_len(index);
            let offset = index as u64 * manifest.block_size;
            let sha256 = block.sha256.clone();
            async move {
                let problem = match get(dest, &blocks::block_name(&sha256)).await {
                    Ok(Some(stored)) => {
                        let hash = sha256.clone();
                        let write = tokio::task::spawn_blocking(move || -> BackupResult<Option<BlockProblem>> {
                            let data = match blocks::open(&stored, &hash, len) {
                                Ok(data) => data,
                                Err(problem) => return Ok(Some(problem)),
                            };
                            let mut out = out.lock().unwrap_or_else(PoisonError::into_inner);
                            out.seek(SeekFrom::Start(offset))
                                .and_then(|_| out.write_all(&data))
                                .map_err(BackupError::io("cannot write the reassembled database"))?;
                            Ok(None)
                        });
                        write.await.map_err(|e| BackupError::Invalid(format!("block check panicked: {e}")))??
                    }
                    Ok(None) => Some(BlockProblem::Missing),
                    Err(BackupError::ObjectStore(e)) => Some(BlockProblem::Unreadable(e.to_string())),
                    Err(e) => return Err(e),
                };
                Ok((index, sha256, len, problem))
            }
        })
        .buffer_unordered(concurrency.max(1));
    while let Some(fetched) = fetches.next().await {
        let (index, sha256, len, problem) = fetched?;
        progress.advance(len);
        if let Some(problem) = problem {
            damage.push(Damage { index, sha256, problem });
            if stop_at_first {
                break;
            }
        }
    }
    drop(fetches);
    damage.sort_by_key(|d| d.index);
    let out = out.lock().unwrap_or_else(PoisonError::into_inner);
    out.sync_all().map_err(BackupError::io(format!("cannot sync {}", file.display())))?;
    Ok(damage)
}
