//! `polo backup`, `polo backup list`, `polo backup verify` and `polo
//! restore`: argument resolution (flags and env over `polo.toml`), the
//! progress bar and the summaries. The engine is `polo_backup`.
//!
//! `polo backup` reads the database file directly (a consistent snapshot
//! through SQLite's backup API) and never migrates it, so it is safe to run
//! from cron next to a running `polo serve`, of the same version or not.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polo_backup::{
    Access, BackupOptions, Destination, GcOptions, Manifest, Phase, RestoreOptions, Retention, VerifyOptions,
};
use serde_json::json;

use crate::Outcome;
use crate::cli::{BackupArgs, BackupCommand, BackupCreateArgs, RemoteArgs, RestoreArgs};
use crate::config::Config;

pub fn run(config: &Config, args: &BackupArgs) -> anyhow::Result<Outcome> {
    match &args.command {
        None => create(config, &args.create),
        Some(BackupCommand::List { from, remote, json }) => list(config, from, remote, *json),
        Some(BackupCommand::Verify { from, id, remote, json }) => verify(config, from, id.as_deref(), remote, *json),
    }
}

fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("cannot start the runtime")
}

fn open(config: &Config, dest: &str, remote: &RemoteArgs, access: Access) -> anyhow::Result<Destination> {
    let endpoint = remote.endpoint.as_deref().or(config.file_backup.endpoint.as_deref());
    Ok(Destination::open(dest, endpoint, access)?)
}

fn create(config: &Config, args: &BackupCreateArgs) -> anyhow::Result<Outcome> {
    let file = &config.file_backup;
    let Some(to) = args.to.as_deref().or(file.to.as_deref()) else {
        bail!("no destination: pass --to DEST (or set POLO_BACKUP_TO, or backup_to in polo.toml)");
    };
    let retention = Retention {
        daily: args.retain_daily.or(file.retain_daily),
        monthly: args.retain_monthly.or(file.retain_monthly),
    };
    let mut options = BackupOptions { scratch_dir: Some(config.data_dir.clone()), ..BackupOptions::default() };
    if let Some(size) = &args.block_size {
        options.block_size = parse_size(size)?;
    }
    if let Some(n) = args.remote.concurrency {
        options.concurrency = n;
    }
    options.check()?;
    let db = sqlite_file(config, "polo backup")?;
    if !db.is_file() {
        bail!("no store at {} to back up (is --data-dir right?)", db.display());
    }
    let dest = open(config, to, &args.remote, Access::Write)?;
    let progress = Bar::new(args.json);
    let (report, retained) = runtime()?.block_on(async {
        let report = polo_backup::create(&db, &dest, &options, &progress).await?;
        let retained = if retention.keeps_all() {
            None
        } else {
            progress.0.set_message(Phase::Retention.name());
            Some(polo_backup::retention::apply(&dest, &retention, &GcOptions::default()).await?)
        };
        anyhow::Ok((report, retained))
    })?;
    progress.0.finish_and_clear();
    let m = &report.manifest;
    if args.json {
        let mut out = json!({
            "id": m.id,
            "destination": to,
            "size": m.size,
            "blocks": m.blocks.len(),
            "blocks_uploaded": report.blocks_uploaded,
            "blocks_reused": report.blocks_reused,
            "bytes_uploaded": report.bytes_uploaded,
            "last_seq": m.last_seq,
            "timeline_seq": m.timeline_cursor(),
            "epoch": m.epoch,
            "seconds": report.seconds,
        });
        if let Some(r) = &retained {
            out["retention"] = json!({
                "kept": r.kept, "deleted": r.deleted, "blocks_deleted": r.blocks_deleted, "bytes_freed": r.bytes_freed,
            });
        }
        println!("{out}");
    } else {
        println!(
            "backup {} of {} ({}, change {}, timeline at {}): {} blocks, {} uploaded, {} reused; {} uploaded in {:.1} s",
            m.id,
            db.display(),
            human_bytes(m.size),
            m.last_seq,
            m.timeline_cursor().map_or_else(|| "-".to_owned(), |s| s.to_string()),
            m.blocks.len(),
            report.blocks_uploaded,
            report.blocks_reused,
            human_bytes(report.bytes_uploaded),
            report.seconds
        );
        if let Some(r) = &retained {
            println!(
                "retention: {} backups kept, {} deleted ({}), {} blocks deleted ({})",
                r.kept.len(),
                r.deleted.len(),
                if r.deleted.is_empty() { "none".to_owned() } else { r.deleted.join(", ") },
                r.blocks_deleted,
                human_bytes(r.bytes_freed)
            );
        }
    }
    Ok(Outcome::Success)
}

fn list(config: &Config, from: &str, remote: &RemoteArgs, json: bool) -> anyhow::Result<Outcome> {
    let dest = open(config, from, remote, Access::Read)?;
    let manifests = runtime()?.block_on(polo_backup::list(&dest))?;
    if json {
        let rows: Vec<_> = manifests.iter().map(summary).collect();
        println!("{}", serde_json::Value::Array(rows));
        return Ok(Outcome::Success);
    }
    if manifests.is_empty() {
        println!("no backups at {from}");
        return Ok(Outcome::Success);
    }
    println!(
        "{:<21} {:>10} {:>7} {:>10} {:>10}  {:<32}  PARENT",
        "ID", "SIZE", "BLOCKS", "LAST_SEQ", "TIMELINE", "EPOCH"
    );
    for m in &manifests {
        println!(
            "{:<21} {:>10} {:>7} {:>10} {:>10}  {:<32}  {}",
            m.id,
            human_bytes(m.size),
            m.blocks.len(),
            m.last_seq,
            m.timeline_cursor().map_or_else(|| "-".to_owned(), |s| s.to_string()),
            m.epoch.as_deref().unwrap_or("-"),
            m.parent.as_deref().unwrap_or("-")
        );
    }
    Ok(Outcome::Success)
}

fn summary(m: &Manifest) -> serde_json::Value {
    json!({
        "id": m.id,
        "parent": m.parent,
        "created": m.created,
        "instance_id": m.instance_id,
        "epoch": m.epoch,
        "schema_version": m.schema_version,
        "last_seq": m.last_seq,
        "derived_cursors": m.derived_cursors,
        "size": m.size,
        "blocks": m.blocks.len(),
        "stored_bytes": m.stored_bytes(),
    })
}

fn verify(config: &Config, from: &str, id: Option<&str>, remote: &RemoteArgs, json: bool) -> anyhow::Result<Outcome> {
    let dest = open(config, from, remote, Access::Read)?;
    let mut options = VerifyOptions::default();
    if let Some(n) = remote.concurrency {
        options.concurrency = n;
    }
    let progress = Bar::new(json);
    let result = runtime()?.block_on(polo_backup::verify(&dest, id, &options, &progress));
    progress.0.finish_and_clear();
    let report = result?;
    let m = &report.manifest;
    if json {
        let mut out = summary(m);
        out["ok"] = json!(true);
        out["seconds"] = json!(report.seconds);
        println!("{out}");
    } else {
        println!(
            "backup {} is good: {} blocks ({}) match their hashes, integrity check ok, change {} ({:.1} s)",
            m.id,
            m.blocks.len(),
            human_bytes(m.size),
            m.last_seq,
            report.seconds
        );
    }
    Ok(Outcome::Success)
}

/// The SQLite file backups copy page by page. A PostgreSQL store is backed
/// up the PostgreSQL way (base backups and WAL archiving, `pg_dump` for a
/// logical copy), which `docs/postgres.md` describes.
fn sqlite_file(config: &Config, command: &str) -> anyhow::Result<PathBuf> {
    match config.database.sqlite_path() {
        Some(path) => Ok(path.to_path_buf()),
        None => bail!(
            "{command} copies the embedded SQLite store, and --database-url names a PostgreSQL server ({}): \
             back PostgreSQL up with its own tools, a base backup with WAL archiving (point-in-time \
             recovery) or pg_dump; see docs/postgres.md, \"Backups\"",
            config.database.describe()
        ),
    }
}

/// `polo restore`.
pub fn restore(config: &Config, args: &RestoreArgs) -> anyhow::Result<Outcome> {
    let target = sqlite_file(config, "polo restore")?;
    let data_dir = &config.data_dir;
    if !args.force && has_other_entries(data_dir)? {
        bail!(
            "{} is not empty; restore into a new data directory, or pass --force to replace its store \
             (stop any server using it first)",
            data_dir.display()
        );
    }
    let dest = open(config, &args.from, &args.remote, Access::Read)?;
    let mut options = RestoreOptions { force: args.force, ..RestoreOptions::default() };
    if let Some(n) = args.remote.concurrency {
        options.concurrency = n;
    }
    let progress = Bar::new(args.json);
    let result = runtime()?.block_on(polo_backup::restore(&dest, args.id.as_deref(), &target, &options, &progress));
    progress.0.finish_and_clear();
    let report = result?;
    let m = &report.manifest;
    if args.json {
        let out = json!({
            "id": m.id,
            "data_dir": data_dir,
            "size": m.size,
            "last_seq": report.last_seq,
            "timeline_seq": m.timeline_cursor(),
            "backup_epoch": m.epoch,
            "epoch": report.epoch,
            "seconds": report.seconds,
        });
        println!("{out}");
    } else {
        println!(
            "restored backup {} ({}, change {}, timeline at {}) into {} in {:.1} s; new epoch {} (was {})",
            m.id,
            human_bytes(m.size),
            report.last_seq,
            m.timeline_cursor().map_or_else(|| "-".to_owned(), |s| s.to_string()),
            data_dir.display(),
            report.seconds,
            report.epoch,
            m.epoch.as_deref().unwrap_or("none")
        );
    }
    Ok(Outcome::Success)
}

/// Whether `dir` holds anything but a `polo.toml` (a missing directory is empty).
fn has_other_entries(dir: &Path) -> anyhow::Result<bool> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(false),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    for entry in entries {
        let entry = entry.with_context(|| format!("cannot read {}", dir.display()))?;
        if entry.file_name() != "polo.toml" {
            return Ok(true);
        }
    }
    Ok(false)
}

/// `4M`, `64K`, `1G` (binary units) or plain bytes.
fn parse_size(text: &str) -> anyhow::Result<u64> {
    let t = text.trim();
    let (digits, shift) = match t.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        None => (t, 0),
        Some((i, _)) => match t[i..].to_ascii_uppercase().trim_end_matches("IB").trim_end_matches('B') {
            "K" => (&t[..i], 10),
            "M" => (&t[..i], 20),
            "G" => (&t[..i], 30),
            _ => bail!("invalid size {text:?} (use e.g. 1M, 4M, 64M)"),
        },
    };
    let n: u64 = digits.parse().with_context(|| format!("invalid size {text:?}"))?;
    n.checked_shl(shift).filter(|v| v >> shift == n).with_context(|| format!("size {text:?} is too large"))
}

#[allow(clippy::cast_precision_loss)]
fn human_bytes(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 30 => format!("{:.2} GiB", b as f64 / f64::from(1u32 << 30)),
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / f64::from(1u32 << 20)),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / 1024.0),
        b => format!("{b} B"),
    }
}

/// The progress bar: one bar, reset at each phase.
struct Bar(ProgressBar);

impl Bar {
    fn new(hidden: bool) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(0),
            if hidden { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr_with_hz(5) },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg:16} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        bar.enable_steady_tick(Duration::from_millis(200));
        Self(bar)
    }
}

impl polo_backup::Progress for Bar {
    fn phase(&self, phase: Phase, total_bytes: u64) {
        self.0.set_message(phase.name());
        self.0.set_length(total_bytes);
        self.0.set_position(0);
    }

    fn advance(&self, bytes: u64) {
        self.0.inc(bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_binary_units() {
        assert_eq!(parse_size("4M").unwrap(), 4 << 20);
        assert_eq!(parse_size("64KiB").unwrap(), 64 << 10);
        assert_eq!(parse_size("1g").unwrap(), 1 << 30);
        assert_eq!(parse_size("65536").unwrap(), 65_536);
        assert!(parse_size("4X").is_err());
        assert!(parse_size("M").is_err());
        assert!(parse_size("99999999999G").is_err());
    }

    #[test]
    fn only_a_config_file_counts_as_empty() {
        let dir = tempfile::tempdir().unwrap();
        assert!(!has_other_entries(&dir.path().join("missing")).unwrap());
        std::fs::write(dir.path().join("polo.toml"), "").unwrap();
        assert!(!has_other_entries(dir.path()).unwrap());
        std::fs::write(dir.path().join("polo.sqlite"), "").unwrap();
        assert!(has_other_entries(dir.path()).unwrap());
    }
}
