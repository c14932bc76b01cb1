//! `polo import`: streams files through the importers into the store.
//!
//! The pipeline itself (parser thread, bounded channel, writer thread,
//! rejects file, per-entry reports) is `polo_server::import_job`, shared
//! with `POST /api/v1/imports`; this command adds the progress bar, the
//! human and `--json` summaries and the exit code.
//!
//! Every rejected record goes to a JSON-lines rejects file under
//! `DATA_DIR/rejects/` and is counted in the summary. Archive entries and
//! files found in a folder ([`import_paths`]) that are not location data are
//! listed as skipped, with the reason.
//!
//! When the disk fills up, the file being imported ends with `disk full`
//! (what was stored before stays stored and is counted), the files after
//! it are listed as not imported, and the command exits with status 2.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polo_server::import_job::{CountingReader, FileReport, Importer, RejectsWriter, Totals, run_stamp};
use polo_store::StoreError;
use serde::Serialize;

use crate::Outcome;
use crate::cli::ImportArgs;
use crate::commands::import_paths::{self, ImportPath};
use crate::commands::require_user;
use crate::config::Config;

/// The whole run, as printed with `--json`.
#[derive(Debug, Default, Serialize)]
struct Report {
    files: Vec<FileReport>,
    points_added: u64,
    duplicates: u64,
    deleted_left_out: u64,
    intervals_added: u64,
    rejected: u64,
    bytes: u64,
    seconds: f64,
    points_per_second: f64,
}

pub fn run(config: &Config, args: &ImportArgs) -> anyhow::Result<Outcome> {
    if let Some(device) = &args.device {
        polo_domain::validate_device_name(device)
            .map_err(|e| anyhow::anyhow!("--device: the device name {e} (got {device:?})"))?;
    }
    let files = import_paths::expand(&args.files)?;
    let store = config.open_store()?;
    let user = require_user(&*store, &args.user)?;
    let total_bytes: u64 = files.iter().filter_map(|p| std::fs::metadata(&p.path).ok()).map(|m| m.len()).sum();
    let progress = Progress::new(args.json, total_bytes);
    let started = Instant::now();
    let run_stamp = run_stamp();
    let mut report = Report::default();
    let context = FileContext {
        importer: Importer {
            store: &*store,
            user: user.id,
            device_override: args.device.as_deref(),
            restore_deleted: args.restore_deleted,
            progress: &progress,
        },
        rejects_dir: config.rejects_dir(),
        run_stamp: &run_stamp,
        bytes: Arc::clone(&progress.bytes),
    };
    let mut full = None;
    for ImportPath { path, found_in_folder } in &files {
        if let Some(e) = &full {
            report.files.push(FileReport {
                path: path.display().to_string(),
                error: Some(format!("not imported: {e}")),
                ..FileReport::default()
            });
            continue;
        }
        if *found_in_folder && let Some(reason) = import_paths::skip_reason(path) {
            report.files.push(FileReport {
                path: path.display().to_string(),
                skipped: Some(reason),
                ..FileReport::default()
            });
            continue;
        }
        report.files.extend(context.import_file(path));
        // A write failed for lack of space and there is still no room: the next files would fail too.
        full = store.check_writable().err().filter(StoreError::is_disk_full);
    }
    progress.finish();
    report.bytes = progress.bytes.load(Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    let totals = Totals::of(&report.files);
    report.points_added = totals.points_added;
    report.duplicates = totals.duplicates;
    report.deleted_left_out = totals.deleted_left_out;
    report.intervals_added = totals.intervals_added;
    report.rejected = totals.rejected;
    #[allow(clippy::cast_precision_loss)]
    let points_seen = (report.points_added + report.duplicates) as f64;
    report.points_per_second = if report.seconds > 0.0 { points_seen / report.seconds } else { 0.0 };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&report);
    }
    if let Some(e) = full {
        eprintln!(
            "polo: {e}. The points counted as added are stored; free some space and run the import again \
             (what is stored already counts as duplicates)."
        );
    }
    let failed = report.files.iter().any(|f| f.error.is_some());
    Ok(if failed {
        Outcome::Failed
    } else if report.rejected > 0 {
        Outcome::Rejected
    } else {
        Outcome::Success
    })
}

fn print_human(report: &Report) {
    for f in &report.files {
        let format = f.format.unwrap_or("?");
        if let Some(why) = &f.skipped {
            println!("{}: skipped ({why})", f.path);
            continue;
        }
        print!(
            "{}: {format}: {} points added, {} duplicates, {} intervals added, {} rejected",
            f.path, f.points_added, f.duplicates, f.intervals_added, f.rejected
        );
        if let Some(file) = &f.rejects_file {
            print!(" (see {file})");
        }
        println!();
        for note in &f.notes {
            println!("  note: {note}");
        }
        for (kind, count) in &f.not_location_records {
            println!("  {count} not imported, no location: {kind}");
        }
        for (field, count) in &f.out_of_range_fields {
            println!("  {count} imported with {field} out of range (the value is kept in the point's extras)");
        }
        if f.deleted_left_out > 0 {
            println!(
                "  {} left out: you deleted them (import with --restore-deleted to have them back)",
                f.deleted_left_out
            );
        }
        if let Some(e) = &f.error {
            println!("  error: {e}");
        }
    }
    println!(
        "total: {} points added, {} duplicates, {} intervals, {} rejected in {:.1} s ({:.0} points/s)",
        report.points_added,
        report.duplicates,
        report.intervals_added,
        report.rejected,
        report.seconds,
        report.points_per_second
    );
}

/// The progress bar, fed from the byte counter of the file being read.
struct Progress {
    bar: ProgressBar,
    bytes: Arc<AtomicU64>,
    points: AtomicU64,
    started: Instant,
}

impl Progress {
    fn new(hidden: bool, total: u64) -> Self {
        let bar = ProgressBar::with_draw_target(
            Some(total),
            if hidden { ProgressDrawTarget::hidden() } else { ProgressDrawTarget::stderr_with_hz(5) },
        );
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} ETA {eta} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        Self { bar, bytes: Arc::new(AtomicU64::new(0)), points: AtomicU64::new(0), started: Instant::now() }
    }

    fn add_points(&self, n: u64) {
        let points = self.points.fetch_add(n, Ordering::Relaxed) + n;
        self.bar.set_position(self.bytes.load(Ordering::Relaxed));
        #[allow(clippy::cast_precision_loss)]
        let rate = points as f64 / self.started.elapsed().as_secs_f64().max(1e-3);
        self.bar.set_message(format!("{points} points ({rate:.0}/s)"));
    }

    fn finish(&self) {
        self.bar.set_position(self.bytes.load(Ordering::Relaxed));
        self.bar.finish_and_clear();
    }
}

impl polo_server::import_job::Progress for Progress {
    fn parsed(&self, points: u64) {
        self.add_points(points);
    }
}

/// Shared settings for importing each file.
struct FileContext<'a> {
    importer: Importer<'a>,
    rejects_dir: PathBuf,
    run_stamp: &'a str,
    bytes: Arc<AtomicU64>,
}

impl FileContext<'_> {
    fn import_file(&self, path: &Path) -> Vec<FileReport> {
        let display = path.display().to_string();
        let file = match File::open(path) {
            Ok(file) => file,
            Err(e) => {
                return vec![FileReport {
                    path: display,
                    error: Some(format!("cannot open: {e}")),
                    ..FileReport::default()
                }];
            }
        };
        let reader = CountingReader::new(file, Arc::clone(&self.bytes));
        let rejects = RejectsWriter::in_dir(&self.rejects_dir, self.run_stamp, path);
        self.importer.import(reader, display, rejects)
    }
}
