//! `polo import`: streams files through the importers into the store.
//!
//! Two threads per file: the importer parses on the calling thread and hands
//! bounded batches over a channel to one writer thread, which resolves
//! devices and stores each batch in one transaction. The channel is bounded,
//! so memory stays constant whatever the file size, and parsing overlaps with
//! writing on a two-core machine.
//!
//! Every rejected record goes to a JSON-lines rejects file under
//! `DATA_DIR/rejects/` and is counted in the summary. Archive entries that are
//! not location data are listed as skipped, with the reason.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use crossbeam_channel::{Receiver, Sender};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use polo_domain::{DeviceId, Fix, Interval, Timestamp, UserId};
use polo_formats::{Format, ImportError, ImportOptions, Position, Reject, Sink};
use polo_store::Store;
use serde::Serialize;

use crate::Outcome;
use crate::cli::ImportArgs;
use crate::commands::require_user;
use crate::config::Config;

/// Points per batch handed to the writer.
const BATCH_POINTS: usize = 16 * 1024;
/// Extras bytes per batch (Wi-Fi scans can make points large).
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Batches in flight between parser and writer.
const CHANNEL_DEPTH: usize = 6;
/// Device used when neither `--device` nor the file names one.
const DEFAULT_DEVICE: &str = "default";

/// The summary of one file or archive entry.
#[derive(Debug, Default, Serialize)]
struct FileReport {
    path: String,
    format: Option<&'static str>,
    points_added: u64,
    duplicates: u64,
    intervals_added: u64,
    interval_duplicates: u64,
    rejected: u64,
    rejects_file: Option<String>,
    /// Why the file failed; records before the failure were kept.
    error: Option<String>,
    /// Why an archive entry was passed over (not location data).
    skipped: Option<String>,
    /// Records that hold no location by nature, counted by kind.
    #[serde(skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    not_location_records: std::collections::BTreeMap<&'static str, u64>,
}

/// The whole run, as printed with `--json`.
#[derive(Debug, Default, Serialize)]
struct Report {
    files: Vec<FileReport>,
    points_added: u64,
    duplicates: u64,
    intervals_added: u64,
    rejected: u64,
    bytes: u64,
    seconds: f64,
    points_per_second: f64,
}

pub fn run(config: &Config, args: &ImportArgs) -> anyhow::Result<Outcome> {
    let store = config.open_store()?;
    let user = require_user(&store, &args.user)?;
    let total_bytes: u64 = args.files.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| m.len()).sum();
    let progress = Progress::new(args.json, total_bytes);
    let started = Instant::now();
    let run_stamp = run_stamp();
    let mut report = Report::default();
    let context = FileContext {
        store: &store,
        user: user.id,
        device_override: args.device.as_deref(),
        rejects_dir: config.rejects_dir(),
        run_stamp: &run_stamp,
        progress: &progress,
    };
    for path in &args.files {
        report.files.extend(context.import_file(path));
    }
    progress.finish();
    report.bytes = progress.bytes.load(Ordering::Relaxed);
    report.seconds = started.elapsed().as_secs_f64();
    for f in &report.files {
        report.points_added += f.points_added;
        report.duplicates += f.duplicates;
        report.intervals_added += f.intervals_added;
        report.rejected += f.rejected;
    }
    #[allow(clippy::cast_precision_loss)]
    let points_seen = (report.points_added + report.duplicates) as f64;
    report.points_per_second = if report.seconds > 0.0 { points_seen / report.seconds } else { 0.0 };
    if args.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print_human(&report);
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

fn run_stamp() -> String {
    let ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let text = Timestamp(i64::try_from(ms).unwrap_or(0)).to_rfc3339(None);
    text.replace([':', '.'], "")
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
        for (kind, count) in &f.not_location_records {
            println!("  {count} not imported, no location: {kind}");
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

/// A reader that counts the bytes read, for the progress bar.
struct CountingReader<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R: Read> Read for CountingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.counter.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

impl<R: Seek> Seek for CountingReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Shared settings for importing each file.
struct FileContext<'a> {
    store: &'a dyn Store,
    user: UserId,
    device_override: Option<&'a str>,
    rejects_dir: PathBuf,
    run_stamp: &'a str,
    progress: &'a Progress,
}

/// What travels from the parser to the writer.
enum Payload {
    Points(Vec<Fix>),
    Intervals(Vec<Interval>),
}

struct Batch {
    entry: usize,
    device: Option<String>,
    payload: Payload,
}

/// Per-entry counts the writer produces.
#[derive(Debug, Default, Clone, Copy)]
struct Written {
    points_added: u64,
    duplicates: u64,
    intervals_added: u64,
    interval_duplicates: u64,
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
        let reader = CountingReader { inner: file, counter: Arc::clone(&self.progress.bytes) };
        let options = ImportOptions { now: now() };
        let (sender, receiver) = crossbeam_channel::bounded::<Batch>(CHANNEL_DEPTH);
        let rejects = RejectsWriter::new(&self.rejects_dir, self.run_stamp, path);
        let (outcome, mut sink, written) = std::thread::scope(|scope| {
            let writer = scope.spawn(|| self.write_batches(&receiver));
            let mut sink = PipelineSink::new(display.clone(), sender, rejects, self.progress);
            let outcome = polo_formats::import_seekable(reader, &options, &mut sink);
            sink.flush_all();
            sink.sender = None;
            let written = writer.join().unwrap_or_else(|_| Err(anyhow::anyhow!("the writer thread panicked")));
            (outcome, sink, written)
        });
        let rejects_file = sink.rejects.finish();
        let mut reports = std::mem::take(&mut sink.entries);
        let top = &mut reports[0];
        match outcome {
            Ok(format) => top.format = Some(format.name()),
            Err(e) => top.error = Some(e.to_string()),
        }
        match written {
            Ok(counts) => {
                for (report, count) in
                    reports.iter_mut().zip(counts.iter().chain(std::iter::repeat(&Written::default())))
                {
                    report.points_added = count.points_added;
                    report.duplicates = count.duplicates;
                    report.intervals_added = count.intervals_added;
                    report.interval_duplicates = count.interval_duplicates;
                }
            }
            Err(e) => top.error = Some(format!("storing failed, the rest of the file was not stored: {e:#}")),
        }
        for report in &mut reports {
            if report.rejected > 0 {
                report.rejects_file.clone_from(&rejects_file);
            }
        }
        // An archive's own row only matters when it failed or held points directly.
        if reports.len() > 1 && reports[0].error.is_none() && reports[0].points_added + reports[0].rejected == 0 {
            reports.remove(0);
        }
        reports
    }

    fn write_batches(&self, receiver: &Receiver<Batch>) -> anyhow::Result<Vec<Written>> {
        let mut devices: HashMap<String, DeviceId> = HashMap::new();
        let mut counts: Vec<Written> = Vec::new();
        for batch in receiver {
            let name = self.device_override.or(batch.device.as_deref()).unwrap_or(DEFAULT_DEVICE);
            let device = match devices.get(name) {
                Some(id) => *id,
                None => {
                    let id = self.store.ensure_device(self.user, name).context("cannot create the device")?.id;
                    devices.insert(name.to_owned(), id);
                    id
                }
            };
            if counts.len() <= batch.entry {
                counts.resize(batch.entry + 1, Written::default());
            }
            let count = &mut counts[batch.entry];
            match batch.payload {
                Payload::Points(fixes) => {
                    let outcome = self.store.insert_points(self.user, device, &fixes)?;
                    count.points_added += outcome.added;
                    count.duplicates += outcome.duplicates;
                }
                Payload::Intervals(intervals) => {
                    let outcome = self.store.insert_intervals(self.user, device, &intervals)?;
                    count.intervals_added += outcome.added;
                    count.interval_duplicates += outcome.duplicates;
                }
            }
        }
        Ok(counts)
    }
}

fn now() -> Timestamp {
    let ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Collects what the importer finds into per-device batches for the writer.
struct PipelineSink<'a> {
    sender: Option<Sender<Batch>>,
    points: HashMap<Option<String>, (Vec<Fix>, usize)>,
    intervals: HashMap<Option<String>, Vec<Interval>>,
    entries: Vec<FileReport>,
    current: usize,
    file_path: String,
    rejects: RejectsWriter,
    progress: &'a Progress,
}

impl<'a> PipelineSink<'a> {
    fn new(file_path: String, sender: Sender<Batch>, rejects: RejectsWriter, progress: &'a Progress) -> Self {
        Self {
            sender: Some(sender),
            points: HashMap::new(),
            intervals: HashMap::new(),
            entries: vec![FileReport { path: file_path.clone(), ..FileReport::default() }],
            current: 0,
            file_path,
            rejects,
            progress,
        }
    }

    fn send(&self, batch: Batch) {
        if let Some(sender) = &self.sender {
            // A closed channel means the writer failed; its error is reported for the file.
            let _ = sender.send(batch);
        }
    }

    fn flush_points(&mut self, device: &Option<String>) {
        if let Some((fixes, bytes)) = self.points.get_mut(device) {
            if fixes.is_empty() {
                return;
            }
            let fixes = std::mem::take(fixes);
            *bytes = 0;
            self.progress.add_points(fixes.len() as u64);
            self.send(Batch { entry: self.current, device: device.clone(), payload: Payload::Points(fixes) });
        }
    }

    fn flush_all(&mut self) {
        let devices: Vec<_> = self.points.keys().cloned().collect();
        for device in &devices {
            self.flush_points(device);
        }
        for (device, intervals) in std::mem::take(&mut self.intervals) {
            if !intervals.is_empty() {
                self.send(Batch { entry: self.current, device, payload: Payload::Intervals(intervals) });
            }
        }
    }
}

impl Sink for PipelineSink<'_> {
    fn point(&mut self, fix: Fix, device: Option<&str>) {
        let key = device.map(str::to_owned);
        let extras_len = fix.extras.as_ref().map_or(0, |e| e.as_str().len());
        let (fixes, bytes) = self.points.entry(key.clone()).or_default();
        fixes.push(fix);
        *bytes += extras_len + 64;
        if fixes.len() >= BATCH_POINTS || *bytes >= BATCH_BYTES {
            self.flush_points(&key);
        }
    }

    fn interval(&mut self, interval: Interval, device: Option<&str>) {
        let key = device.map(str::to_owned);
        let list = self.intervals.entry(key.clone()).or_default();
        list.push(interval);
        if list.len() >= 4096 {
            let intervals = std::mem::take(list);
            self.send(Batch { entry: self.current, device: key, payload: Payload::Intervals(intervals) });
        }
    }

    fn reject(&mut self, reject: Reject) {
        let source = &self.entries[self.current].path;
        self.rejects.write(source, &reject);
        self.entries[self.current].rejected += 1;
    }

    fn not_location(&mut self, kind: &'static str) {
        *self.entries[self.current].not_location_records.entry(kind).or_default() += 1;
    }

    fn entry_started(&mut self, name: &str) {
        self.flush_all();
        self.entries.push(FileReport { path: format!("{}!/{name}", self.file_path), ..FileReport::default() });
        self.current = self.entries.len() - 1;
    }

    fn entry_finished(&mut self, _name: &str, outcome: &Result<Format, ImportError>) {
        self.flush_all();
        let report = &mut self.entries[self.current];
        match outcome {
            Ok(format) => report.format = Some(format.name()),
            Err(ImportError::NotLocationData { what }) => report.skipped = Some(format!("not location data: {what}")),
            Err(ImportError::Unrecognised { hint }) => report.skipped = Some(format!("unrecognised content: {hint}")),
            Err(e) => report.error = Some(e.to_string()),
        }
        self.current = 0;
    }
}

/// Writes rejected records as JSON lines, creating the file on the first one.
struct RejectsWriter {
    path: PathBuf,
    out: Option<BufWriter<File>>,
    failed: Option<String>,
}

#[derive(Serialize)]
struct RejectLine<'a> {
    source_file: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    byte_offset: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    line: Option<u64>,
    reason: &'a str,
    raw: &'a str,
}

impl RejectsWriter {
    fn new(dir: &Path, run_stamp: &str, source: &Path) -> Self {
        let name = source.file_name().map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
        Self { path: dir.join(format!("{run_stamp}-{safe}.rejects.jsonl")), out: None, failed: None }
    }

    fn write(&mut self, source_file: &str, reject: &Reject) {
        if self.failed.is_some() {
            return;
        }
        if self.out.is_none() {
            let opened =
                self.path.parent().map_or(Ok(()), std::fs::create_dir_all).and_then(|()| File::create(&self.path));
            match opened {
                Ok(file) => self.out = Some(BufWriter::new(file)),
                Err(e) => {
                    self.failed = Some(format!("cannot create {}: {e}", self.path.display()));
                    return;
                }
            }
        }
        let (byte_offset, line) = match reject.position {
            Position::Byte(b) => (Some(b), None),
            Position::Line(l) => (None, Some(l)),
        };
        let record = RejectLine { source_file, byte_offset, line, reason: &reject.reason, raw: &reject.raw };
        if let Some(out) = &mut self.out {
            let written =
                serde_json::to_writer(&mut *out, &record).map_err(io::Error::from).and_then(|()| out.write_all(b"\n"));
            if let Err(e) = written {
                self.failed = Some(format!("cannot write {}: {e}", self.path.display()));
            }
        }
    }

    /// Flushes and returns the file's path, when anything was written.
    fn finish(&mut self) -> Option<String> {
        if let Some(why) = &self.failed {
            tracing::error!("{why}");
        }
        let mut out = self.out.take()?;
        if let Err(e) = out.flush() {
            tracing::error!("cannot write {}: {e}", self.path.display());
        }
        Some(self.path.display().to_string())
    }
}
