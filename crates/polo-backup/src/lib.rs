//! polo's backups: consistent, incremental snapshots of the embedded store
//! to a directory or an object store, and restores that are ready at once.
//!
//! # Why it looks like this
//!
//! Everything polo keeps — points, intervals, accounts, the change log and
//! all derived data (stays, trips, places, stats, map levels) with the
//! cursors they were computed to — is in the one SQLite file. So a backup is
//! a consistent copy of that file, and a restore is that file put back: no
//! replay, no rebuild, no "data restored but indexes still building" phase
//! (the failure mode of restores that replay data and rebuild indexes;
//! `algorithms.md` §3.3).
//!
//! * [`snapshot`] — a point-in-time copy of the live database through
//!   SQLite's online backup API, while the server keeps writing.
//! * [`blocks`] — the copy cut into fixed, page-aligned blocks named by their
//!   SHA-256 and stored zstd-compressed. Unchanged pages keep their bytes, so
//!   most blocks repeat between runs and only new ones are uploaded: every
//!   run after the first is incremental.
//! * [`manifest`] — the JSON that makes blocks a backup: every block in
//!   order, the change cursor (`last_seq`), the derived cursors, the instance
//!   and its epoch. Written last.
//! * [`dest`] — directories and `s3://`, `gs://`, `az://` through `object_store`.
//! * [`create`], [`verify`], [`restore`], [`retention`] — the operations.
//!
//! A restore gives the instance a new epoch (see
//! `polo_store::Store::epoch`): its change log now stops at the backup, and
//! replication peers must see that the source was rewound.
//!
//! Layout at the destination:
//!
//! ```text
//! DEST/manifests/20250101T030405.123Z.json
//! DEST/blocks/3f/3f9c…e1.zst
//! ```

pub mod blocks;
pub mod create;
pub mod dest;
pub mod error;
pub mod manifest;
pub mod progress;
pub mod restore;
pub mod retention;
pub mod snapshot;
pub mod transfer;
pub mod verify;

use futures_util::TryStreamExt;

pub use create::{BackupOptions, BackupReport, create};
pub use dest::{Access, Destination};
pub use error::{BackupError, BackupResult};
pub use manifest::Manifest;
pub use progress::{Phase, Progress, Silent};
pub use restore::{RestoreOptions, RestoreReport, restore};
pub use retention::{GcOptions, Retention, RetentionReport};
pub use verify::{VerifyOptions, VerifyReport, verify};

/// The backup ids at `dest`, oldest first.
///
/// # Errors
/// Object-store failures.
pub async fn ids(dest: &Destination) -> BackupResult<Vec<String>> {
    let listed: Vec<_> = dest.store().list(Some(&dest.path(manifest::MANIFESTS_DIR))).try_collect().await?;
    let mut ids: Vec<String> = listed
        .iter()
        .filter_map(|meta| dest.name(&meta.location))
        .filter_map(|name| Manifest::id_of_name(&name).map(str::to_owned))
        .collect();
    ids.sort();
    Ok(ids)
}

/// Every backup at `dest`, oldest first.
///
/// # Errors
/// Object-store failures, or a manifest that cannot be read.
pub async fn list(dest: &Destination) -> BackupResult<Vec<Manifest>> {
    let mut manifests = Vec::new();
    for id in ids(dest).await? {
        manifests.push(load(dest, Some(&id)).await?);
    }
    Ok(manifests)
}

/// Backup `id`, or the newest when `None`.
///
/// # Errors
/// [`BackupError::NotFound`], [`BackupError::Empty`], an unreadable manifest.
pub async fn load(dest: &Destination, id: Option<&str>) -> BackupResult<Manifest> {
    let id = match id {
        Some(id) => id.to_owned(),
        None => ids(dest).await?.pop().ok_or(BackupError::Empty)?,
    };
    let name = Manifest::name_of(&id);
    let bytes = transfer::get(dest, &name).await?.ok_or_else(|| BackupError::NotFound(id.clone()))?;
    Manifest::parse(&name, &bytes)
}
