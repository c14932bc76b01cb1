//! The registry of HTTP import jobs: where uploads are spooled, how many run
//! at once, and what each job reports.
//!
//! Jobs live in memory only: a restart forgets their history (the import
//! itself is in the store, and a re-upload adds nothing). At most
//! [`ImportJobsConfig::jobs_per_user`] are kept per user; the oldest
//! finished job (and its rejects file) makes room for a new one. Imports
//! run one at a time by default ([`ImportJobsConfig::concurrent`]): SQLite
//! has one writer, and a Raspberry Pi has little to spare, so further jobs
//! wait as `queued`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use polo_domain::{Timestamp, UserId};
use polo_store::Store;
use serde::Serialize;
use tempfile::NamedTempFile;

use super::pipeline::{CountingReader, FileReport, Importer, Progress, RejectsWriter, Totals, Written};
use crate::metrics::Metrics;

/// Prefix of spooled upload files; leftovers of a crash are removed at start.
const UPLOAD_PREFIX: &str = "upload-";

/// Settings of [`ImportJobs`].
#[derive(Debug, Clone)]
pub struct ImportJobsConfig {
    /// Where uploads are spooled while they are received and imported
    /// (`DATA_DIR/uploads` for `polo serve`). Created when missing.
    pub upload_dir: PathBuf,
    /// Where rejects files go (`DATA_DIR/rejects`, like the CLI's).
    pub rejects_dir: PathBuf,
    /// The largest accepted upload, in bytes (default 16 GiB).
    pub max_upload_bytes: u64,
    /// Jobs remembered per user (default 20).
    pub jobs_per_user: usize,
    /// Imports running at the same time (default 1).
    pub concurrent: usize,
}

impl ImportJobsConfig {
    /// Defaults with uploads in `DIR/uploads` and rejects in `DIR/rejects`.
    #[must_use]
    pub fn in_data_dir(dir: &Path) -> Self {
        Self {
            upload_dir: dir.join("uploads"),
            rejects_dir: dir.join("rejects"),
            max_upload_bytes: 16 << 30,
            jobs_per_user: 20,
            concurrent: 1,
        }
    }
}

/// Why a job could not be created.
#[derive(Debug, thiserror::Error)]
pub enum JobError {
    /// The user already has the maximum number of unfinished jobs.
    #[error("{0} imports are already queued or running; wait for one to finish")]
    TooMany(usize),
    /// The spool file could not be created.
    #[error("cannot spool the upload: {0}")]
    Spool(#[from] io::Error),
}

/// Where a job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    /// Uploaded, waiting for a free import slot.
    Queued,
    /// Importing.
    Running,
    /// Finished; every entry was imported (some records may be rejected).
    Done,
    /// Finished with an error: a file or entry could not be imported (what
    /// came before the error is stored), or the server stopped.
    Failed,
}

impl JobStatus {
    /// Whether the job has ended.
    #[must_use]
    pub fn is_finished(self) -> bool {
        matches!(self, Self::Done | Self::Failed)
    }
}

#[derive(Debug)]
struct JobState {
    status: JobStatus,
    files: Vec<FileReport>,
    error: Option<String>,
    finished: Option<Timestamp>,
}

/// One upload being imported.
#[derive(Debug)]
pub struct Job {
    id: String,
    user: UserId,
    file_name: String,
    started: Timestamp,
    bytes_total: u64,
    bytes_read: Arc<AtomicU64>,
    points_added: AtomicU64,
    duplicates: AtomicU64,
    intervals_added: AtomicU64,
    rejected: AtomicU64,
    rejects_path: PathBuf,
    state: Mutex<JobState>,
}

/// A job as the API shows it.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct JobView {
    /// The job's id.
    pub id: String,
    /// Where it is.
    pub status: JobStatus,
    /// The uploaded file's name, as the client gave it.
    pub file_name: String,
    /// The upload's size.
    pub bytes_total: u64,
    /// How much of it the importer has read.
    pub bytes_read: u64,
    /// Points stored so far.
    pub points_added: u64,
    /// Points that were already stored.
    pub duplicates: u64,
    /// Points left out because you had deleted them (known when the job is finished).
    pub deleted_left_out: u64,
    /// Intervals stored so far.
    pub intervals_added: u64,
    /// Records rejected so far.
    pub rejected: u64,
    /// Per file or archive entry, like `polo import --json` (when finished);
    /// `rejects_file` is the URL of the job's rejects.
    pub files: Vec<FileReport>,
    /// The URL of the rejected records (JSON lines), when there are any.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rejects_file: Option<String>,
    /// Why the job failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// When the upload was accepted (RFC 3339).
    pub started: String,
    /// When the import ended (RFC 3339).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub finished: Option<String>,
    /// The job's URL.
    pub url: String,
}

impl Job {
    /// The job's id.
    #[must_use]
    pub fn id(&self) -> &str {
        &self.id
    }

    /// The job's URL.
    #[must_use]
    pub fn url(&self) -> String {
        format!("/api/v1/imports/{}", self.id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, JobState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The status.
    #[must_use]
    pub fn status(&self) -> JobStatus {
        self.lock().status
    }

    /// The rejects file, when records were rejected and it exists.
    #[must_use]
    pub fn rejects_path(&self) -> Option<&Path> {
        (self.rejected.load(Ordering::Relaxed) > 0 && self.rejects_path.exists()).then_some(self.rejects_path.as_path())
    }

    /// What the API shows.
    #[must_use]
    pub fn view(&self) -> JobView {
        let state = self.lock();
        let url = self.url();
        let rejects_url = format!("{url}/rejects");
        let mut view = JobView {
            id: self.id.clone(),
            status: state.status,
            file_name: self.file_name.clone(),
            bytes_total: self.bytes_total,
            bytes_read: self.bytes_read.load(Ordering::Relaxed).min(self.bytes_total),
            points_added: self.points_added.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            deleted_left_out: 0,
            intervals_added: self.intervals_added.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            files: state.files.clone(),
            rejects_file: None,
            error: state.error.clone(),
            started: self.started.to_rfc3339(None),
            finished: state.finished.map(|t| t.to_rfc3339(None)),
            url,
        };
        if state.status.is_finished() {
            let totals = Totals::of(&state.files);
            view.points_added = totals.points_added;
            view.duplicates = totals.duplicates;
            view.deleted_left_out = totals.deleted_left_out;
            view.intervals_added = totals.intervals_added;
            view.rejected = totals.rejected;
        }
        // Server paths mean nothing to a client: point at the rejects route instead.
        for file in &mut view.files {
            if file.rejects_file.is_some() {
                file.rejects_file = Some(rejects_url.clone());
            }
        }
        if view.rejected > 0 {
            view.rejects_file = Some(rejects_url);
        }
        view
    }

    fn finish(&self, files: Vec<FileReport>, error: Option<String>) {
        let mut state = self.lock();
        let error = error.or_else(|| files.iter().find_map(|f| f.error.as_ref().map(|e| format!("{}: {e}", f.path))));
        state.status = if error.is_some() { JobStatus::Failed } else { JobStatus::Done };
        state.files = files;
        state.error = error;
        state.finished = Some(now());
    }
}

/// Counts a running job's progress (and the ingest metrics).
struct JobProgress<'a> {
    job: &'a Job,
    metrics: &'a Metrics,
}

impl Progress for JobProgress<'_> {
    fn written(&self, written: Written) {
        self.job.points_added.fetch_add(written.points_added, Ordering::Relaxed);
        self.job.duplicates.fetch_add(written.duplicates, Ordering::Relaxed);
        self.job.intervals_added.fetch_add(written.intervals_added, Ordering::Relaxed);
        self.metrics.points_ingested("import", written.points_added);
    }

    fn rejected(&self) {
        self.job.rejected.fetch_add(1, Ordering::Relaxed);
    }
}

/// Stops reading once the server is shutting down, so a long import ends
/// (as `failed`, with what was read so far stored) instead of holding up
/// the exit.
struct StopReader<R> {
    inner: R,
    closing: Arc<AtomicBool>,
}

impl<R: Read> Read for StopReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(io::Error::other("the server is shutting down; upload the file again"));
        }
        self.inner.read(buf)
    }
}

impl<R: Seek> Seek for StopReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.inner.seek(pos)
    }
}

struct Inner {
    config: ImportJobsConfig,
    /// Keeps the default temporary directory alive (and removes it at the end).
    _temp: Option<tempfile::TempDir>,
    jobs: Mutex<HashMap<UserId, VecDeque<Arc<Job>>>>,
    slots: Arc<tokio::sync::Semaphore>,
    closing: Arc<AtomicBool>,
}

/// The import jobs of one server, in [`crate::AppState::imports`].
#[derive(Clone)]
pub struct ImportJobs {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for ImportJobs {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ImportJobs").field("config", &self.inner.config).finish_non_exhaustive()
    }
}

/// What a new job needs besides the upload.
pub struct NewJob {
    /// The owner.
    pub user: UserId,
    /// The device name every point goes to, if any.
    pub device: Option<String>,
    /// Store points deleted before too (else they are left out).
    pub restore_deleted: bool,
    /// The uploaded file's name.
    pub file_name: String,
    /// The spooled upload; removed when the job ends.
    pub upload: NamedTempFile,
    /// Its size.
    pub bytes: u64,
}

impl ImportJobs {
    /// Jobs spooling to `config.upload_dir`; removes uploads a previous
    /// run left behind.
    ///
    /// # Errors
    /// When the upload directory cannot be created.
    pub fn new(config: ImportJobsConfig) -> io::Result<Self> {
        Self::build(config, None)
    }

    /// Jobs spooling to a fresh temporary directory, removed when the last
    /// clone is dropped (the default of [`crate::AppState::new`]).
    ///
    /// # Errors
    /// When the temporary directory cannot be created.
    pub fn temporary() -> io::Result<Self> {
        let temp = tempfile::Builder::new().prefix("polo-imports-").tempdir()?;
        Self::build(ImportJobsConfig::in_data_dir(temp.path()), Some(temp))
    }

    fn build(config: ImportJobsConfig, temp: Option<tempfile::TempDir>) -> io::Result<Self> {
        std::fs::create_dir_all(&config.upload_dir)?;
        for entry in std::fs::read_dir(&config.upload_dir)?.flatten() {
            if entry.file_name().to_string_lossy().starts_with(UPLOAD_PREFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        let slots = Arc::new(tokio::sync::Semaphore::new(config.concurrent.max(1)));
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                _temp: temp,
                jobs: Mutex::new(HashMap::new()),
                slots,
                closing: Arc::new(AtomicBool::new(false)),
            }),
        })
    }

    /// The settings.
    #[must_use]
    pub fn config(&self) -> &ImportJobsConfig {
        &self.inner.config
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<UserId, VecDeque<Arc<Job>>>> {
        self.inner.jobs.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Whether `user` may start another job (checked before an upload is
    /// received, and again when it is registered).
    ///
    /// # Errors
    /// [`JobError::TooMany`] when every kept job of the user is unfinished.
    pub fn check_room(&self, user: UserId) -> Result<(), JobError> {
        let max = self.inner.config.jobs_per_user.max(1);
        let jobs = self.lock();
        let unfinished = jobs.get(&user).map_or(0, |list| list.iter().filter(|j| !j.status().is_finished()).count());
        if unfinished >= max { Err(JobError::TooMany(max)) } else { Ok(()) }
    }

    /// A new spool file for an upload; it is deleted when dropped.
    ///
    /// # Errors
    /// When the file cannot be created.
    pub fn spool_file(&self) -> io::Result<NamedTempFile> {
        std::fs::create_dir_all(&self.inner.config.upload_dir)?;
        tempfile::Builder::new().prefix(UPLOAD_PREFIX).tempfile_in(&self.inner.config.upload_dir)
    }

    /// Registers a job for a received upload and starts it on the blocking
    /// pool once a slot is free. Must be called inside the Tokio runtime.
    ///
    /// # Errors
    /// [`JobError::TooMany`].
    pub fn start(&self, new: NewJob, store: Arc<dyn Store>, metrics: Metrics) -> Result<Arc<Job>, JobError> {
        let id = crate::auth::random_secret().chars().filter(char::is_ascii_alphanumeric).take(16).collect::<String>();
        let started = now();
        let stamp = started.to_rfc3339(None).replace([':', '.'], "");
        let rejects =
            RejectsWriter::in_dir(&self.inner.config.rejects_dir, &format!("{stamp}-{id}"), Path::new(&new.file_name));
        let job = Arc::new(Job {
            id,
            user: new.user,
            file_name: new.file_name,
            started,
            bytes_total: new.bytes,
            bytes_read: Arc::new(AtomicU64::new(0)),
            points_added: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            intervals_added: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            rejects_path: rejects.path().to_path_buf(),
            state: Mutex::new(JobState { status: JobStatus::Queued, files: Vec::new(), error: None, finished: None }),
        });
        self.insert(&job)?;
        let slots = Arc::clone(&self.inner.slots);
        let closing = Arc::clone(&self.inner.closing);
        let running = Arc::clone(&job);
        let (upload, device, restore_deleted) = (new.upload, new.device, new.restore_deleted);
        tokio::spawn(async move {
            let Ok(_permit) = slots.acquire_owned().await else {
                running.finish(Vec::new(), Some("the server is shutting down; upload the file again".into()));
                return;
            };
            if closing.load(Ordering::Relaxed) {
                running.finish(Vec::new(), Some("the server is shutting down; upload the file again".into()));
                return;
            }
            running.lock().status = JobStatus::Running;
            let job = Arc::clone(&running);
            let outcome = tokio::task::spawn_blocking(move || {
                let file = upload.reopen()?;
                let reader = CountingReader::new(StopReader { inner: file, closing }, Arc::clone(&job.bytes_read));
                let progress = JobProgress { job: &job, metrics: &metrics };
                let importer = Importer {
                    store: &*store,
                    user: job.user,
                    device_override: device.as_deref(),
                    restore_deleted,
                    progress: &progress,
                };
                let files = importer.import(reader, job.file_name.clone(), rejects);
                // The spool file goes as soon as it is read.
                drop(upload);
                Ok::<_, io::Error>(files)
            })
            .await;
            match outcome {
                Ok(Ok(files)) => running.finish(files, None),
                Ok(Err(e)) => running.finish(Vec::new(), Some(format!("cannot read the spooled upload: {e}"))),
                Err(e) => {
                    tracing::error!(error = %e, job = %running.id, "an import job panicked");
                    running.finish(Vec::new(), Some("internal error".into()));
                }
            }
            tracing::info!(job = %running.id, status = ?running.status(), "import job finished");
        });
        Ok(job)
    }

    /// Adds `job`, dropping the user's oldest finished jobs beyond the limit.
    fn insert(&self, job: &Arc<Job>) -> Result<(), JobError> {
        let max = self.inner.config.jobs_per_user.max(1);
        let mut jobs = self.lock();
        let list = jobs.entry(job.user).or_default();
        while list.len() >= max {
            let Some(oldest) = list.iter().position(|j| j.status().is_finished()) else {
                return Err(JobError::TooMany(max));
            };
            if let Some(gone) = list.remove(oldest) {
                let _ = std::fs::remove_file(&gone.rejects_path);
            }
        }
        list.push_back(Arc::clone(job));
        Ok(())
    }

    /// `user`'s job `id`; another user's job is `None`.
    #[must_use]
    pub fn get(&self, user: UserId, id: &str) -> Option<Arc<Job>> {
        self.lock().get(&user).and_then(|list| list.iter().find(|j| j.id == id).cloned())
    }

    /// `user`'s jobs, newest first.
    #[must_use]
    pub fn list(&self, user: UserId) -> Vec<Arc<Job>> {
        self.lock().get(&user).map(|list| list.iter().rev().cloned().collect()).unwrap_or_default()
    }

    /// Makes running imports stop at their next read and queued ones fail,
    /// so the server can exit (`polo serve` calls it after the last
    /// request). What was read before is stored.
    pub fn close(&self) {
        self.inner.closing.store(true, Ordering::Relaxed);
    }
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stop_reader_stops_when_closing() {
        let closing = Arc::new(AtomicBool::new(false));
        let mut reader = StopReader { inner: io::Cursor::new(vec![1u8; 8]), closing: Arc::clone(&closing) };
        let mut buf = [0u8; 4];
        assert_eq!(reader.read(&mut buf).unwrap(), 4);
        closing.store(true, Ordering::Relaxed);
        assert!(reader.read(&mut buf).is_err());
    }

    /// Waits for `job` to end (a job that never ends fails the test).
    async fn finished(job: &Job) -> JobView {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        while !job.status().is_finished() {
            assert!(std::time::Instant::now() < deadline, "the job never ended: {:?}", job.view());
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        job.view()
    }

    /// A job that runs out of space used to stay `running` for ever, and
    /// every job after it `queued`: now it fails with the reason, the jobs
    /// queued behind it run, and a job after space is back succeeds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_job_that_runs_out_of_space_fails_and_the_jobs_after_it_run() {
        use std::io::Write as _;

        use polo_store_sqlite::SqliteStore;

        let dir = tempfile::tempdir().unwrap();
        let jobs = ImportJobs::new(ImportJobsConfig::in_data_dir(dir.path())).unwrap();
        let sqlite = Arc::new(SqliteStore::open_in_memory().unwrap());
        let jane = sqlite.create_user("jane", "x", false).unwrap().id;
        let joe = sqlite.create_user("joe", "x", false).unwrap().id;
        let store: Arc<dyn Store> = Arc::clone(&sqlite) as Arc<dyn Store>;
        let upload = |user: UserId, content: &[u8]| {
            let mut file = jobs.spool_file().unwrap();
            file.write_all(content).unwrap();
            NewJob {
                user,
                device: None,
                restore_deleted: false,
                file_name: "track.gpx".into(),
                upload: file,
                bytes: content.len() as u64,
            }
        };
        sqlite.limit_growth(Some(30)).unwrap();
        let big = jobs.start(upload(jane, &super::super::pipeline::tests::gpx(40_000)), store.clone(), Metrics::new());
        let small = super::super::pipeline::tests::gpx(3);
        let behind = jobs.start(upload(joe, &small), store.clone(), Metrics::new()).unwrap();
        let big = finished(&big.unwrap()).await;
        assert_eq!(big.status, JobStatus::Failed, "{big:?}");
        let error = big.error.as_deref().unwrap();
        assert!(error.contains("disk full: the in-memory store could not be written"), "{error}");
        assert_eq!(big.points_added, sqlite.count_points(jane).unwrap(), "what was stored is counted");
        // The job queued behind it ran: it is not left `queued`.
        let behind = finished(&behind).await;
        assert!(behind.status.is_finished(), "{behind:?}");

        sqlite.limit_growth(None).unwrap();
        let after = jobs.start(upload(joe, &small), store.clone(), Metrics::new()).unwrap();
        let after = finished(&after).await;
        assert_eq!(after.status, JobStatus::Done, "{after:?}");
        assert_eq!(after.points_added + after.duplicates, 3, "{after:?}");
    }

    #[test]
    fn leftover_uploads_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let config = ImportJobsConfig::in_data_dir(dir.path());
        std::fs::create_dir_all(&config.upload_dir).unwrap();
        std::fs::write(config.upload_dir.join("upload-stale"), b"x").unwrap();
        std::fs::write(config.upload_dir.join("keep.txt"), b"x").unwrap();
        let _jobs = ImportJobs::new(config.clone()).unwrap();
        assert!(!config.upload_dir.join("upload-stale").exists());
        assert!(config.upload_dir.join("keep.txt").exists());
    }
}
