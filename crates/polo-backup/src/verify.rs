//! `polo backup verify`: proves a backup restorable without restoring it.
//!
//! Every block the manifest names is downloaded, decompressed and hashed
//! (all of them, so one run lists every damaged block, not just the first),
//! the database is reassembled in a scratch directory and SQLite's
//! `integrity_check` reads every page of every table and index. Finally the
//! reassembled database must agree with its manifest on the schema
//! version, instance, epoch and change cursor.

use std::path::PathBuf;
use std::time::Instant;

use rusqlite::{Connection, OpenFlags};

use crate::dest::Destination;
use crate::error::{BackupError, BackupResult};
use crate::manifest::Manifest;
use crate::progress::{Phase, Progress};
use crate::snapshot::read_info;
use crate::transfer;

/// How a verification runs.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Blocks downloaded at once.
    pub concurrency: usize,
    /// Where the database is reassembled [default: the system's temporary directory].
    pub scratch_dir: Option<PathBuf>,
}

impl Default for VerifyOptions {
    fn default() -> Self {
        Self { concurrency: 8, scratch_dir: None }
    }
}

/// A backup that passed.
#[derive(Debug, Clone)]
pub struct VerifyReport {
    /// The backup checked.
    pub manifest: Manifest,
    /// Seconds for the whole check.
    pub seconds: f64,
}

/// Verifies backup `id` (the newest when `None`).
///
/// # Errors
/// [`BackupError::Damaged`] listing every bad block, or the integrity
/// check's findings, or a disagreement with the manifest; object-store and
/// I/O failures.
pub async fn verify(
    dest: &Destination,
    id: Option<&str>,
    options: &VerifyOptions,
    progress: &dyn Progress,
) -> BackupResult<VerifyReport> {
    let started = Instant::now();
    let manifest = crate::load(dest, id).await?;
    let scratch = options.scratch_dir.clone().unwrap_or_else(std::env::temp_dir);
    let dir = tempfile::Builder::new()
        .prefix(".polo-verify-")
        .tempdir_in(&scratch)
        .map_err(BackupError::io(format!("cannot create a scratch directory in {}", scratch.display())))?;
    let file = dir.path().join("verify.sqlite");
    progress.phase(Phase::Download, manifest.size);
    let damage = transfer::assemble(dest, &manifest, &file, options.concurrency, false, progress).await?;
    let damaged = |problems: Vec<String>| BackupError::Damaged { id: manifest.id.clone(), problems };
    if !damage.is_empty() {
        return Err(damaged(damage.iter().map(ToString::to_string).collect()));
    }
    progress.phase(Phase::Check, 0);
    let expected = manifest.clone();
    let problems = tokio::task::spawn_blocking(move || check_database(&file, &expected))
        .await
        .map_err(|e| BackupError::Invalid(format!("the integrity check panicked: {e}")))??;
    if !problems.is_empty() {
        return Err(damaged(problems));
    }
    Ok(VerifyReport { manifest, seconds: started.elapsed().as_secs_f64() })
}

/// SQLite's integrity check, then the manifest's facts against the file.
fn check_database(file: &std::path::Path, manifest: &Manifest) -> BackupResult<Vec<String>> {
    // Read-write only so SQLite may create the `-shm` a WAL-mode header asks for; nothing is written.
    let conn = Connection::open_with_flags(file, OpenFlags::SQLITE_OPEN_READ_WRITE)?;
    let mut problems = Vec::new();
    // Damage bad enough stops the check itself (SQLITE_CORRUPT); that is a finding too.
    let findings = conn
        .prepare("PRAGMA integrity_check")
        .and_then(|mut stmt| stmt.query_map([], |r| r.get::<_, String>(0))?.collect::<rusqlite::Result<Vec<_>>>())
        .unwrap_or_else(|e| vec![e.to_string()]);
    if findings != ["ok"] {
        problems.extend(findings.into_iter().map(|f| format!("integrity check: {f}")));
        return Ok(problems);
    }
    let info = match read_info(&conn) {
        Ok(info) => info,
        Err(e) => return Ok(vec![format!("cannot read the database's metadata: {e}")]),
    };
    let mut differs = |what: &str, found: String, expected: String| {
        if found != expected {
            problems.push(format!("the database's {what} is {found}, the manifest says {expected}"));
        }
    };
    differs("schema version", info.schema_version.to_string(), manifest.schema_version.to_string());
    differs("instance id", info.instance_id, manifest.instance_id.clone());
    differs("epoch", format!("{:?}", info.epoch), format!("{:?}", manifest.epoch));
    differs("last_seq", info.last_seq.to_string(), manifest.last_seq.to_string());
    differs("derived cursors", format!("{:?}", info.derived_cursors), format!("{:?}", manifest.derived_cursors));
    Ok(problems)
}
