//! The import pipeline shared by `polo import` and `POST /api/v1/imports`:
//! the importer parses on the calling thread into a batching [`Sink`], and
//! bounded batches cross a channel to one writer thread, which resolves
//! devices and stores each batch in one transaction.
//!
//! The channel is bounded, so memory stays constant whatever the file size,
//! and parsing overlaps with writing on a two-core machine. Every rejected
//! record goes to a JSON-lines [`RejectsWriter`] and is counted in the
//! entry's [`FileReport`]; archive entries that are not location data are
//! listed as skipped, with the reason. Both front ends (the CLI's progress
//! bar, the HTTP job's status) observe the run through [`Progress`].
//!
//! When storing fails (a full disk: [`StoreError::DiskFull`]), the writer
//! stops, its receiver goes with it so the parser's next send fails instead
//! of waiting forever, and the parser stops at its next read. The batches
//! stored before stay stored and are counted; the file's report carries the
//! writer's error.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::SystemTime;

use crossbeam_channel::{Receiver, Sender};
use polo_domain::{DeviceId, Fix, Interval, Timestamp, UserId};
use polo_formats::{Format, ImportError, ImportOptions, Position, Reject, Sink};
use polo_store::{Store, StoreError};
use serde::Serialize;

/// Points per batch handed to the writer.
const BATCH_POINTS: usize = 8 * 1024;
/// Extras bytes per batch (Wi-Fi scans can make points large).
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// Intervals per batch.
const BATCH_INTERVALS: usize = 4096;
/// Batches in flight between parser and writer. One waiting batch keeps the
/// writer busy; more only hold memory while the writer is the slower stage
/// (a full queue of Wi-Fi-heavy Records.json batches was 40 MB of peak RSS).
const CHANNEL_DEPTH: usize = 2;
/// Device used when neither an override nor the file names one.
pub const DEFAULT_DEVICE: &str = "default";

/// The summary of one file or archive entry (`polo import --json`'s
/// `files[]`, and the same in an import job's status).
#[derive(Debug, Default, Clone, Serialize, utoipa::ToSchema)]
pub struct FileReport {
    /// The file, or `archive.zip!/path/in/archive` for an entry.
    pub path: String,
    /// The detected format.
    pub format: Option<&'static str>,
    /// Points stored.
    pub points_added: u64,
    /// Points already stored (same user, device and time).
    pub duplicates: u64,
    /// Points left out because you deleted them before (a re-import does not
    /// bring them back; import with `restore_deleted` to have them again).
    #[serde(skip_serializing_if = "is_zero")]
    pub deleted_left_out: u64,
    /// Intervals stored.
    pub intervals_added: u64,
    /// Intervals already stored.
    pub interval_duplicates: u64,
    /// Records written to the rejects file.
    pub rejected: u64,
    /// Where the rejected records are (set when `rejected > 0`).
    pub rejects_file: Option<String>,
    /// Why the file failed; records before the failure were kept.
    pub error: Option<String>,
    /// Why an archive entry was passed over (not location data).
    pub skipped: Option<String>,
    /// Records that hold no location by nature, counted by kind.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub not_location_records: BTreeMap<&'static str, u64>,
    /// Points stored with a measurement out of its column's range (the
    /// value is in the point's extras), counted by field.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub out_of_range_fields: BTreeMap<&'static str, u64>,
    /// What the importer assumed about the file (guessed columns, a time
    /// zone taken as UTC), for the user to check.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
    /// Per device, the time span of the points stored: what deleting "this
    /// import" removes (`POST /api/v1/points/delete` with the device and span).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub devices: Vec<DeviceSpan>,
}

/// The points an import stored on one device: their first and last time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DeviceSpan {
    /// The device.
    pub device: String,
    /// The earliest point stored (RFC 3339).
    pub first: String,
    /// The latest point stored (RFC 3339).
    pub last: String,
    /// Points stored.
    pub points_added: u64,
}

/// Per entry, per device name: first and last time stored (ms) and how many.
type Spans = Vec<BTreeMap<String, (i64, i64, u64)>>;

#[allow(clippy::trivially_copy_pass_by_ref)] // serde's skip_serializing_if passes a reference
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// Counts summed over several [`FileReport`]s.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Totals {
    /// Points stored.
    pub points_added: u64,
    /// Points already stored.
    pub duplicates: u64,
    /// Points left out because they were deleted.
    pub deleted_left_out: u64,
    /// Intervals stored.
    pub intervals_added: u64,
    /// Records rejected.
    pub rejected: u64,
}

impl Totals {
    /// The sums over `files`.
    #[must_use]
    pub fn of(files: &[FileReport]) -> Self {
        files.iter().fold(Self::default(), |t, f| Self {
            points_added: t.points_added + f.points_added,
            duplicates: t.duplicates + f.duplicates,
            deleted_left_out: t.deleted_left_out + f.deleted_left_out,
            intervals_added: t.intervals_added + f.intervals_added,
            rejected: t.rejected + f.rejected,
        })
    }
}

/// Per-batch counts the writer produces.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    /// Points stored.
    pub points_added: u64,
    /// Points already stored.
    pub duplicates: u64,
    /// Points left out because they were deleted.
    pub deleted_left_out: u64,
    /// Intervals stored.
    pub intervals_added: u64,
    /// Intervals already stored.
    pub interval_duplicates: u64,
}

impl Written {
    fn add(&mut self, other: Self) {
        self.points_added += other.points_added;
        self.duplicates += other.duplicates;
        self.deleted_left_out += other.deleted_left_out;
        self.intervals_added += other.intervals_added;
        self.interval_duplicates += other.interval_duplicates;
    }
}

/// How a front end watches a run. Called from the parser thread
/// ([`Progress::parsed`]) and the writer thread ([`Progress::written`]).
pub trait Progress: Sync {
    /// `points` more fixes were parsed and handed to the writer.
    fn parsed(&self, points: u64) {
        let _ = points;
    }
    /// The writer stored one batch.
    fn written(&self, written: Written) {
        let _ = written;
    }
    /// A record was rejected (and written to the rejects file).
    fn rejected(&self) {}
}

/// A [`Progress`] that watches nothing.
#[derive(Debug, Default, Clone, Copy)]
pub struct NoProgress;

impl Progress for NoProgress {}

/// A reader that counts the bytes read into a shared counter, so another
/// thread can show progress.
#[derive(Debug)]
pub struct CountingReader<R> {
    inner: R,
    counter: Arc<AtomicU64>,
}

impl<R> CountingReader<R> {
    /// Wraps `inner`, adding every byte read to `counter`.
    pub fn new(inner: R, counter: Arc<AtomicU64>) -> Self {
        Self { inner, counter }
    }
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

/// Why storing a batch failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// The device could not be created.
    #[error("cannot create the device: {0}")]
    Device(#[source] StoreError),
    /// The store refused a batch.
    #[error("{0}")]
    Store(#[from] StoreError),
    /// The file names a device polo refuses ([`polo_domain::validate_device_name`]).
    #[error("the file names the device {name:?}, but the device name {error}; import it with a device name given")]
    DeviceName {
        /// The name as the file gives it.
        name: String,
        /// What is wrong with it.
        error: polo_domain::DeviceNameError,
    },
    /// The writer thread panicked.
    #[error("the writer thread panicked")]
    Panicked,
}

impl WriteError {
    /// Whether storing failed because the disk is full.
    #[must_use]
    pub fn is_disk_full(&self) -> bool {
        matches!(self, Self::Device(e) | Self::Store(e) if e.is_disk_full())
    }
}

/// What the writer stored (per entry) before it ended, and why it stopped
/// early, if it did.
struct WriterEnd {
    counts: Vec<Written>,
    spans: Spans,
    error: Option<WriteError>,
}

/// Fails every read once the writer has stopped, so the parser does not
/// read (and decompress) the rest of a file that can no longer be stored.
struct UntilWriterStops<R> {
    inner: R,
    stopped: Arc<AtomicBool>,
}

impl<R: Read> Read for UntilWriterStops<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.stopped.load(Ordering::Acquire) {
            return Err(io::Error::other("not read: storing had failed"));
        }
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for UntilWriterStops<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

/// Everything that stays the same across the files of one run.
pub struct Importer<'a> {
    /// Where the points go.
    pub store: &'a dyn Store,
    /// Whose points they are.
    pub user: UserId,
    /// A device name that wins over what the file says.
    pub device_override: Option<&'a str>,
    /// Store points you deleted before too (else a re-import leaves them out).
    pub restore_deleted: bool,
    /// Who watches.
    pub progress: &'a dyn Progress,
}

/// What travels from the parser to the writer.
enum Payload {
    Points(Vec<Fix>),
    Intervals(Vec<Interval>),
    /// What the file calls the batch's device ([`crate::device_labels`]).
    DeviceLabel(String),
}

struct Batch {
    entry: usize,
    device: Option<String>,
    payload: Payload,
}

impl Importer<'_> {
    /// Imports one seekable input (a file, or an uploaded file spooled to
    /// disk) shown as `display`: one report for a plain file, one per entry
    /// for an archive (plus the archive's own row when it failed or held
    /// points directly). Never fails as a whole: problems are in the reports.
    pub fn import<R: Read + Seek>(&self, reader: R, display: String, mut rejects: RejectsWriter) -> Vec<FileReport> {
        let options = ImportOptions { now: now() };
        let (sender, receiver) = crossbeam_channel::bounded::<Batch>(CHANNEL_DEPTH);
        let stopped = Arc::new(AtomicBool::new(false));
        let reader = UntilWriterStops { inner: reader, stopped: Arc::clone(&stopped) };
        let (outcome, entries, written) = std::thread::scope(|scope| {
            // The receiver moves into the writer: when the writer ends, it is
            // dropped, and a send blocked on the full channel returns an error.
            let writer = scope.spawn(|| {
                let end = self.write_batches(receiver);
                stopped.store(true, Ordering::Release);
                end
            });
            let mut sink = PipelineSink::new(display, sender, &mut rejects, self.progress);
            let outcome = polo_formats::import_seekable(reader, &options, &mut sink);
            sink.flush_all();
            sink.sender = None;
            let written = writer.join().unwrap_or_else(|_| WriterEnd {
                counts: Vec::new(),
                spans: Vec::new(),
                error: Some(WriteError::Panicked),
            });
            (outcome, sink.entries, written)
        });
        let rejects_file = rejects.finish();
        let mut reports = entries;
        let top = &mut reports[0];
        match outcome {
            Ok(format) => top.format = Some(format.name()),
            Err(e) => top.error = Some(e.to_string()),
        }
        // What was stored before a failure stays stored, and is counted.
        for (report, count) in
            reports.iter_mut().zip(written.counts.iter().chain(std::iter::repeat(&Written::default())))
        {
            report.points_added = count.points_added;
            report.duplicates = count.duplicates;
            report.deleted_left_out = count.deleted_left_out;
            report.intervals_added = count.intervals_added;
            report.interval_duplicates = count.interval_duplicates;
        }
        for (report, spans) in reports.iter_mut().zip(&written.spans) {
            report.devices = spans
                .iter()
                .map(|(device, &(first, last, points_added))| DeviceSpan {
                    device: device.clone(),
                    first: Timestamp(first).to_string(),
                    last: Timestamp(last).to_string(),
                    points_added,
                })
                .collect();
        }
        if let Some(e) = written.error {
            reports[0].error = Some(format!("storing failed, the rest of the file was not stored: {e}"));
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

    /// Keeps the label a file gives the device of hint `device`, unless the
    /// device already has one; a label for a hint the import does not use
    /// (the caller named the device) or cannot use (an invalid name) is dropped.
    fn store_label(&self, device: Option<&str>, label: &str) -> Result<(), WriteError> {
        let Some(name) = device.filter(|_| self.device_override.is_none()) else {
            return Ok(());
        };
        if polo_domain::validate_device_name(name).is_ok() {
            crate::device_labels::set_unless_labelled(self.store, self.user, name, label, now())?;
        }
        Ok(())
    }

    /// Stores batches until the channel closes or a write fails; returns
    /// (and so drops) the receiver's end either way.
    fn write_batches(&self, receiver: Receiver<Batch>) -> WriterEnd {
        let mut counts: Vec<Written> = Vec::new();
        let mut spans: Spans = Vec::new();
        let error = self.write_each(&receiver, &mut counts, &mut spans).err();
        if let Some(e) = &error {
            tracing::error!(error = %e, "storing an import batch failed; stopping the import");
        }
        WriterEnd { counts, spans, error }
    }

    fn write_each(
        &self,
        receiver: &Receiver<Batch>,
        counts: &mut Vec<Written>,
        spans: &mut Spans,
    ) -> Result<(), WriteError> {
        let mut devices: HashMap<String, DeviceId> = HashMap::new();
        for batch in receiver {
            if let Payload::DeviceLabel(label) = &batch.payload {
                self.store_label(batch.device.as_deref(), label)?;
                continue;
            }
            let name = self.device_override.or(batch.device.as_deref()).unwrap_or(DEFAULT_DEVICE);
            let device = match devices.get(name) {
                Some(id) => *id,
                None => {
                    // Callers check an override; a name from the file is checked here.
                    let name = polo_domain::validate_device_name(name)
                        .map_err(|error| WriteError::DeviceName { name: name.to_owned(), error })?;
                    let id = self.store.ensure_device(self.user, name).map_err(WriteError::Device)?.id;
                    devices.insert(name.to_owned(), id);
                    id
                }
            };
            if counts.len() <= batch.entry {
                counts.resize(batch.entry + 1, Written::default());
                spans.resize(batch.entry + 1, BTreeMap::new());
            }
            let mut written = Written::default();
            match batch.payload {
                Payload::Points(fixes) => {
                    let mut stored: Option<(i64, i64)> = None;
                    let mut note = |t: Timestamp| {
                        stored = Some(stored.map_or((t.0, t.0), |(a, b)| (a.min(t.0), b.max(t.0))));
                    };
                    let outcome = if self.restore_deleted {
                        let outcome = self.store.restore_points(self.user, device, &fixes)?;
                        if outcome.added > 0 {
                            // The batch's span: restoring does not say which fixes were new.
                            fixes.iter().for_each(|f| note(f.time));
                        }
                        outcome
                    } else {
                        self.store.insert_points_reporting(self.user, device, &fixes, &mut note)?
                    };
                    if let Some((first, last)) = stored {
                        let span = spans[batch.entry].entry(name.to_owned()).or_insert((first, last, 0));
                        *span = (span.0.min(first), span.1.max(last), span.2 + outcome.added);
                    }
                    written.points_added = outcome.added;
                    written.duplicates = outcome.duplicates;
                    written.deleted_left_out = outcome.suppressed;
                }
                Payload::DeviceLabel(_) => {}
                Payload::Intervals(intervals) => {
                    let outcome = if self.restore_deleted {
                        self.store.restore_intervals(self.user, device, &intervals)?
                    } else {
                        self.store.insert_intervals(self.user, device, &intervals)?
                    };
                    written.intervals_added = outcome.added;
                    written.interval_duplicates = outcome.duplicates;
                }
            }
            counts[batch.entry].add(written);
            self.progress.written(written);
        }
        Ok(())
    }
}

fn now() -> Timestamp {
    let ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// A file-name-safe stamp of the current time (`2026-11-21T101500123Z`),
/// for naming rejects files.
#[must_use]
pub fn run_stamp() -> String {
    let ms = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    let text = Timestamp(i64::try_from(ms).unwrap_or(0)).to_rfc3339(None);
    text.replace([':', '.'], "")
}

/// Collects what the importer finds into per-device batches for the writer.
struct PipelineSink<'a> {
    sender: Option<Sender<Batch>>,
    points: HashMap<Option<String>, (Vec<Fix>, usize)>,
    /// The device key of the previous point.
    last_device: Option<Option<String>>,
    intervals: HashMap<Option<String>, Vec<Interval>>,
    entries: Vec<FileReport>,
    current: usize,
    file_path: String,
    rejects: &'a mut RejectsWriter,
    progress: &'a dyn Progress,
}

impl<'a> PipelineSink<'a> {
    fn new(
        file_path: String,
        sender: Sender<Batch>,
        rejects: &'a mut RejectsWriter,
        progress: &'a dyn Progress,
    ) -> Self {
        Self {
            sender: Some(sender),
            points: HashMap::new(),
            last_device: None,
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
            // A closed channel means the writer failed (its error is reported
            // for the file) and dropped the receiver, so this never waits on it.
            let _ = sender.send(batch);
        }
    }

    fn flush_points(&mut self, device: &Option<String>) {
        if let Some((fixes, bytes)) = self.points.get_mut(device) {
            if fixes.is_empty() {
                return;
            }
            // A device that filled a batch will likely fill the next: size it
            // now rather than regrow it (and move every fix) a dozen times.
            let fixes = std::mem::replace(fixes, Vec::with_capacity(fixes.len()));
            *bytes = 0;
            self.progress.parsed(fixes.len() as u64);
            self.send(Batch { entry: self.current, device: device.clone(), payload: Payload::Points(fixes) });
        }
    }

    fn flush_all(&mut self) {
        for (device, (fixes, _)) in std::mem::take(&mut self.points) {
            if !fixes.is_empty() {
                self.progress.parsed(fixes.len() as u64);
                self.send(Batch { entry: self.current, device, payload: Payload::Points(fixes) });
            }
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
        let extras_len = fix.extras.as_ref().map_or(0, |e| e.as_str().len());
        // Files rarely switch devices: reuse the last key instead of allocating one per point.
        if self.last_device.as_ref().is_none_or(|last| last.as_deref() != device) {
            self.last_device = Some(device.map(str::to_owned));
        }
        let Some(key) = self.last_device.take() else { return };
        // One hash lookup per point; the key is cloned only for a new device.
        let full = if let Some((fixes, bytes)) = self.points.get_mut(&key) {
            fixes.push(fix);
            *bytes += extras_len + 64;
            fixes.len() >= BATCH_POINTS || *bytes >= BATCH_BYTES
        } else {
            self.points.insert(key.clone(), (vec![fix], extras_len + 64));
            false
        };
        if full {
            self.flush_points(&key);
        }
        self.last_device = Some(key);
    }

    fn interval(&mut self, interval: Interval, device: Option<&str>) {
        let key = device.map(str::to_owned);
        let list = self.intervals.entry(key.clone()).or_default();
        list.push(interval);
        if list.len() >= BATCH_INTERVALS {
            let intervals = std::mem::take(list);
            self.send(Batch { entry: self.current, device: key, payload: Payload::Intervals(intervals) });
        }
    }

    fn device_label(&mut self, device: &str, label: &str) {
        let payload = Payload::DeviceLabel(label.to_owned());
        self.send(Batch { entry: self.current, device: Some(device.to_owned()), payload });
    }

    fn reject(&mut self, reject: Reject) {
        let source = &self.entries[self.current].path;
        self.rejects.write(source, &reject);
        self.entries[self.current].rejected += 1;
        self.progress.rejected();
    }

    fn not_location(&mut self, kind: &'static str) {
        *self.entries[self.current].not_location_records.entry(kind).or_default() += 1;
    }

    fn out_of_range(&mut self, field: &'static str) {
        *self.entries[self.current].out_of_range_fields.entry(field).or_default() += 1;
    }

    fn note(&mut self, note: &str) {
        self.entries[self.current].notes.push(note.to_owned());
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
            Err(ImportError::NothingToImport { why }) => report.skipped = Some(format!("nothing to import: {why}")),
            Err(e) => report.error = Some(e.to_string()),
        }
        self.current = 0;
    }
}

/// Writes rejected records as JSON lines, creating the file (and its
/// directory) on the first one, so a clean import leaves no file.
#[derive(Debug)]
pub struct RejectsWriter {
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
    /// Writes to exactly `path`.
    #[must_use]
    pub fn at(path: PathBuf) -> Self {
        Self { path, out: None, failed: None }
    }

    /// Writes to `DIR/STAMP-NAME.rejects.jsonl`, `NAME` being the source's
    /// file name with anything but ASCII letters, digits, `.` and `-`
    /// replaced by `_`.
    #[must_use]
    pub fn in_dir(dir: &Path, stamp: &str, source: &Path) -> Self {
        let name = source.file_name().map_or_else(|| "input".into(), |n| n.to_string_lossy().into_owned());
        let safe: String =
            name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '.' || c == '-' { c } else { '_' }).collect();
        Self::at(dir.join(format!("{stamp}-{safe}.rejects.jsonl")))
    }

    /// The file written to (it exists only once a record was rejected).
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
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

#[cfg(test)]
pub(crate) mod tests {
    use std::fmt::Write as _;
    use std::time::Duration;

    use polo_store_sqlite::SqliteStore;

    use super::*;

    /// A GPX track of `n` points a second apart, jittered so that they do
    /// not compress to nothing.
    pub(crate) fn gpx(n: u32) -> Vec<u8> {
        let mut text = String::from(r#"<?xml version="1.0"?><gpx version="1.1" creator="t"><trk><trkseg>"#);
        let mut seed = 0x2545_f491_u32;
        for i in 0..n {
            seed = seed.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            let lat = 48.0 + f64::from(seed % 100_000) / 1e6;
            let lon = 11.0 + f64::from((seed >> 8) % 100_000) / 1e6;
            let (h, m, s) = (i / 3600, (i / 60) % 60, i % 60);
            let _ = write!(
                text,
                r#"<trkpt lat="{lat:.7}" lon="{lon:.7}"><ele>{}</ele><time>2021-06-01T{h:02}:{m:02}:{s:02}Z</time></trkpt>"#,
                seed % 900
            );
        }
        text.push_str("</trkseg></trk></gpx>");
        text.into_bytes()
    }

    /// A full store used to leave the parser waiting forever on the writer
    /// that had died; now the import ends, says why, and counts what was
    /// stored before, which stays stored.
    #[test]
    fn a_full_store_ends_the_import_with_the_reason_and_keeps_what_was_stored() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let user = store.create_user("jane", "x", false).unwrap().id;
        // Room for the device and a couple of batches, not for the file.
        store.limit_growth(Some(30)).unwrap();
        let (done, finished) = std::sync::mpsc::channel();
        let importing = Arc::clone(&store);
        // Not scoped: a deadlock must fail the test, not hang it.
        std::thread::spawn(move || {
            let importer = Importer {
                store: &*importing,
                user,
                device_override: Some("garmin"),
                restore_deleted: false,
                progress: &NoProgress,
            };
            let dir = tempfile::tempdir().unwrap();
            let rejects = RejectsWriter::at(dir.path().join("rejects.jsonl"));
            let _ = done.send(importer.import(io::Cursor::new(gpx(40_000)), "track.gpx".into(), rejects));
        });
        let reports = finished.recv_timeout(Duration::from_secs(120)).expect("the import never ended");
        assert_eq!(reports.len(), 1, "{reports:?}");
        let error = reports[0].error.as_deref().expect("the import must fail");
        assert_eq!(
            error,
            "storing failed, the rest of the file was not stored: disk full: the in-memory store could not be written"
        );
        let stored = store.count_points(user).unwrap();
        assert_eq!(reports[0].points_added, stored, "the report counts what was stored");
        assert!(stored > 0 && stored < 40_000, "{stored} points stored");
        // The store says so until a write succeeds again.
        assert!(store.check_writable().unwrap_err().is_disk_full());
        store.limit_growth(None).unwrap();
        let device = store.ensure_device(user, "garmin").unwrap().id;
        let coord = polo_domain::Coord::from_degrees(1.0, 2.0).unwrap();
        let fix = Fix::new(Timestamp(1_700_000_000_000), coord, polo_domain::SourceFormat::Gpx);
        store.insert_points(user, device, &[fix]).unwrap();
        store.check_writable().unwrap();
    }

    #[test]
    fn takeout_settings_label_the_devices_of_records_unless_already_labelled() {
        let store = SqliteStore::open_in_memory().unwrap();
        let user = store.create_user("jane", "x", false).unwrap().id;
        let import = |text: &str, device_override: Option<&str>| {
            let importer =
                Importer { store: &store, user, device_override, restore_deleted: false, progress: &NoProgress };
            let dir = tempfile::tempdir().unwrap();
            let rejects = RejectsWriter::at(dir.path().join("rejects.jsonl"));
            importer.import(io::Cursor::new(text.as_bytes().to_vec()), "Settings.json".into(), rejects)
        };
        let settings = r#"{"deviceSettings":[
            {"deviceTag":-602738541,"devicePrettyName":"Anna's Pixel"},
            {"deviceTag":42,"deviceSpec":{"manufacturer":"samsung","model":"SM-G991B"}}]}"#;
        // The user already named one of them; a file that names the device is not asked.
        crate::device_labels::set(&store, user, "google-42", Some("Work phone"), Timestamp(1)).unwrap();
        let reports = import(settings, Some("garmin"));
        assert_eq!(reports[0].format, Some("google-settings"), "{reports:?}");
        assert!(!crate::device_labels::labels(&store, user).unwrap().contains_key("google--602738541"));

        let reports = import(settings, None);
        assert_eq!(
            (reports[0].format, reports[0].points_added, reports[0].error.as_deref()),
            (Some("google-settings"), 0, None)
        );
        assert!(reports[0].notes.iter().any(|n| n == "google--602738541 is \"Anna's Pixel\""), "{reports:?}");
        let labels = crate::device_labels::labels(&store, user).unwrap();
        assert_eq!(labels.get("google--602738541").map(String::as_str), Some("Anna's Pixel"));
        assert_eq!(labels.get("google-42").map(String::as_str), Some("Work phone"));
        // Labels do not make devices: Records.json's points still do, under the same name.
        assert!(store.list_devices(user).unwrap().is_empty());
        let records = r#"{"locations":[{"latitudeE7":475000000,"longitudeE7":85000000,"timestamp":"2020-01-01T00:00:00Z","deviceTag":-602738541}]}"#;
        assert_eq!(import(records, None)[0].points_added, 1);
        let devices = store.list_devices(user).unwrap();
        assert_eq!(devices.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["google--602738541"]);
    }
}
