//! `polo restore`: rebuilds the database file from a backup's blocks, then
//! gives it a new epoch. Nothing is recomputed: the derived timeline and
//! its cursor are in the file, so the restored instance answers queries as
//! soon as `polo serve` opens it (algorithms.md §3.3: back up derived state
//! with the data, consistent to one cursor; restore without a rebuild).
//!
//! Blocks are downloaded in parallel and each is checked against its
//! SHA-256 before it is written; the file is assembled under a temporary
//! name in the target directory and renamed into place only when complete,
//! so an interrupted restore leaves no half database where `polo serve`
//! would open it. The stale `-wal` and `-shm` of a replaced database are
//! removed first: SQLite would otherwise replay the old WAL into the new file.
//!
//! The new epoch is written before anything else opens the database for
//! service, so no peer ever sees the restored history under the old epoch.

use std::path::{Path, PathBuf};
use std::time::Instant;

use polo_store::Store;
use polo_store_sqlite::SqliteStore;

use crate::dest::Destination;
use crate::error::{BackupError, BackupResult};
use crate::manifest::Manifest;
use crate::progress::{Phase, Progress};
use crate::transfer;

/// How a restore runs.
#[derive(Debug, Clone)]
pub struct RestoreOptions {
    /// Blocks downloaded at once.
    pub concurrency: usize,
    /// Replace an existing database at the target.
    pub force: bool,
}

impl Default for RestoreOptions {
    fn default() -> Self {
        Self { concurrency: 8, force: false }
    }
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The backup restored.
    pub manifest: Manifest,
    /// The restored instance's new epoch.
    pub epoch: String,
    /// The restored instance's change cursor (the backup's `last_seq`).
    pub last_seq: u64,
    /// Seconds spent downloading and writing blocks.
    pub download_seconds: f64,
    /// Seconds for the whole restore.
    pub seconds: f64,
}

/// The files SQLite keeps beside a database.
fn companions(db: &Path) -> [PathBuf; 3] {
    let with = |suffix: &str| {
        let mut name = db.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    [with("-wal"), with("-shm"), with("-journal")]
}

/// Restores backup `id` (the newest when `None`) from `dest` into the
/// database file `target`.
///
/// # Errors
/// [`BackupError::Refused`] when `target` exists and `force` is not set;
/// [`BackupError::Damaged`] naming the first bad block; object-store, I/O
/// and store failures. The target is untouched unless the restore succeeds
/// up to the rename.
pub async fn restore(
    dest: &Destination,
    id: Option<&str>,
    target: &Path,
    options: &RestoreOptions,
    progress: &dyn Progress,
) -> BackupResult<RestoreReport> {
    let started = Instant::now();
    let occupied = std::iter::once(target.to_path_buf()).chain(companions(target)).find(|p| p.exists());
    if let Some(found) = occupied
        && !options.force
    {
        return Err(BackupError::Refused(format!(
            "{} exists; restoring would replace it (pass --force, after stopping any server using it)",
            found.display()
        )));
    }
    let manifest = crate::load(dest, id).await?;
    let dir = target.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(BackupError::io(format!("cannot create {}", dir.display())))?;
    let partial = tempfile::Builder::new()
        .prefix(".polo-restore-")
        .tempfile_in(dir)
        .map_err(BackupError::io(format!("cannot create a file in {}", dir.display())))?
        .into_temp_path();
    progress.phase(Phase::Download, manifest.size);
    let damage = transfer::assemble(dest, &manifest, &partial, options.concurrency, true, progress).await?;
    if !damage.is_empty() {
        return Err(BackupError::Damaged {
            id: manifest.id.clone(),
            problems: damage.iter().map(ToString::to_string).collect(),
        });
    }
    let download_seconds = started.elapsed().as_secs_f64();
    progress.phase(Phase::Open, 0);
    for stale in companions(target) {
        match std::fs::remove_file(&stale) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(BackupError::io(format!("cannot remove {}", stale.display()))(e));
            }
            _ => {}
        }
    }
    partial
        .persist(target)
        .map_err(|e| BackupError::io(format!("cannot move the restored database to {}", target.display()))(e.error))?;
    let path = target.to_path_buf();
    let (epoch, last_seq) = tokio::task::spawn_blocking(move || -> BackupResult<(String, u64)> {
        // Migrates a backup of an older schema, so the first `polo serve` starts at once.
        let store = SqliteStore::open(&path)?;
        let epoch = store.renew_epoch()?;
        Ok((epoch, store.last_seq()?.0))
    })
    .await
    .map_err(|e| BackupError::Invalid(format!("opening the restored database panicked: {e}")))??;
    tracing::info!(id = %manifest.id, %epoch, last_seq, "restored");
    Ok(RestoreReport { manifest, epoch, last_seq, download_seconds, seconds: started.elapsed().as_secs_f64() })
}
