//! The registry of HTTP import jobs: where uploads are spooled, how many run
//! at once, and what each job reports.
//!
//! Jobs are kept in the store ([`polo_store::ImportJobRecord`]): status,
//! progress and summary survive a restart and every node sharing the store
//! answers `GET /api/v1/imports` alike. The node running a job writes its
//! progress and a heartbeat every [`HEARTBEAT_EVERY`] and serves its live
//! progress from memory. The upload is spooled on that node's disk, so a job
//! cannot move: when a node stops mid-job, the job is failed with
//! [`NODE_STOPPED`] by whichever node next lists jobs — after
//! [`STALE_AFTER`] without a heartbeat when nodes share the store, at once
//! for a single server (its unfinished jobs are a previous run's). The
//! rejects file stays on the node that ran the job too.
//!
//! At most [`ImportJobsConfig::jobs_per_user`] are kept per user; the oldest
//! finished job (and its rejects file, on the node that has it) makes room for
//! a new one. Imports run one at a time per node by default
//! ([`ImportJobsConfig::concurrent`]): SQLite has one writer, and a Raspberry
//! Pi has little to spare, so further jobs wait as `queued`.

use std::collections::{HashMap, VecDeque};
use std::io::{self, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use std::time::Duration;

use polo_domain::{Timestamp, UserId};
use polo_store::{ImportJobRecord, ImportJobStatus, Store, StoreError};
use serde::Serialize;
use tempfile::NamedTempFile;

use super::pipeline::{CountingReader, FileReport, Importer, Progress, RejectsWriter, Totals, Written};
use crate::metrics::Metrics;

/// Prefix of spooled upload files; leftovers of a crash are removed at start.
const UPLOAD_PREFIX: &str = "upload-";

/// How often the node running a job writes its progress and heartbeat.
pub const HEARTBEAT_EVERY: Duration = Duration::from_secs(2);
/// A queued or running job whose heartbeat is older than this, on a store
/// nodes share, belongs to a node that stopped.
pub const STALE_AFTER: Duration = Duration::from_secs(30);
/// Why a job whose node stopped failed.
pub const NODE_STOPPED: &str = "the server running this import stopped before it finished; what it had read is \
    stored: upload the file again to import the rest (points stored already are skipped)";

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
    /// The store holding the jobs failed.
    #[error(transparent)]
    Store(#[from] StoreError),
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

impl From<ImportJobStatus> for JobStatus {
    fn from(status: ImportJobStatus) -> Self {
        match status {
            ImportJobStatus::Queued => Self::Queued,
            ImportJobStatus::Running => Self::Running,
            ImportJobStatus::Done => Self::Done,
            ImportJobStatus::Failed => Self::Failed,
        }
    }
}

impl From<JobStatus> for ImportJobStatus {
    fn from(status: JobStatus) -> Self {
        match status {
            JobStatus::Queued => Self::Queued,
            JobStatus::Running => Self::Running,
            JobStatus::Done => Self::Done,
            JobStatus::Failed => Self::Failed,
        }
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
    /// The node running it.
    holder: String,
    /// Set when another node failed the job as its node's heartbeat
    /// stopped (this node was unreachable for a while): the import stops.
    abandoned: Arc<AtomicBool>,
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
    #[schema(value_type = Vec<FileReport>)]
    pub files: serde_json::Value,
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
            files: serde_json::Value::Array(Vec::new()),
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
        let mut files = state.files.clone();
        for file in &mut files {
            if file.rejects_file.is_some() {
                file.rejects_file = Some(rejects_url.clone());
            }
        }
        view.files = serde_json::to_value(files).unwrap_or_else(|_| serde_json::Value::Array(Vec::new()));
        if view.rejected > 0 {
            view.rejects_file = Some(rejects_url);
        }
        view
    }

    /// The job as the store keeps it, alive as of `heartbeat`.
    fn record(&self, heartbeat: Timestamp) -> ImportJobRecord {
        let view = self.view();
        let finished = view.status.is_finished();
        ImportJobRecord {
            user: self.user,
            id: self.id.clone(),
            file_name: self.file_name.clone(),
            status: view.status.into(),
            holder: self.holder.clone(),
            started: self.started,
            heartbeat,
            finished: self.lock().finished,
            bytes_total: view.bytes_total,
            bytes_read: view.bytes_read,
            points_added: view.points_added,
            duplicates: view.duplicates,
            deleted_left_out: view.deleted_left_out,
            intervals_added: view.intervals_added,
            rejected: view.rejected,
            error: view.error,
            report: finished.then(|| view.files.to_string()),
        }
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

/// What a job's node shows for a job another node runs or ran, from its record.
#[must_use]
pub fn view_of(record: &ImportJobRecord) -> JobView {
    let url = format!("/api/v1/imports/{}", record.id);
    let files = record
        .report
        .as_deref()
        .and_then(|report| serde_json::from_str(report).ok())
        .unwrap_or_else(|| serde_json::Value::Array(Vec::new()));
    JobView {
        id: record.id.clone(),
        status: record.status.into(),
        file_name: record.file_name.clone(),
        bytes_total: record.bytes_total,
        bytes_read: record.bytes_read.min(record.bytes_total),
        points_added: record.points_added,
        duplicates: record.duplicates,
        deleted_left_out: record.deleted_left_out,
        intervals_added: record.intervals_added,
        rejected: record.rejected,
        files,
        rejects_file: (record.rejected > 0).then(|| format!("{url}/rejects")),
        error: record.error.clone(),
        started: record.started.to_rfc3339(None),
        finished: record.finished.map(|t| t.to_rfc3339(None)),
        url,
    }
}

/// Stops reading once the server is shutting down, so a long import ends
/// (as `failed`, with what was read so far stored) instead of holding up
/// the exit; likewise once another node has failed the job.
struct StopReader<R> {
    inner: R,
    closing: Arc<AtomicBool>,
    abandoned: Arc<AtomicBool>,
}

impl<R: Read> Read for StopReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.closing.load(Ordering::Relaxed) {
            return Err(io::Error::other("the server is shutting down; upload the file again"));
        }
        if self.abandoned.load(Ordering::Relaxed) {
            return Err(io::Error::other("another server node took this job for stopped; upload the file again"));
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
    /// The jobs this node started (their live progress, their rejects files).
    jobs: Mutex<HashMap<UserId, VecDeque<Arc<Job>>>>,
    slots: Arc<tokio::sync::Semaphore>,
    closing: Arc<AtomicBool>,
    /// Whether a single server's leftover jobs have been failed yet.
    swept: AtomicBool,
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
                swept: AtomicBool::new(false),
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

    /// Fails the jobs whose node stopped (see the module doc): on a shared
    /// store those without a heartbeat for [`STALE_AFTER`], on a single
    /// server's once, every unfinished job of a previous run. Blocking.
    ///
    /// # Errors
    /// Store failures.
    pub fn fail_stopped_jobs(&self, store: &dyn Store, node: &str) -> Result<u64, StoreError> {
        let now = now();
        let before = if store.is_shared() {
            Timestamp(now.0.saturating_sub(i64::try_from(STALE_AFTER.as_millis()).unwrap_or(i64::MAX)))
        } else if self.inner.swept.load(Ordering::Relaxed) {
            return Ok(0);
        } else {
            Timestamp(i64::MAX)
        };
        let failed = store.fail_stale_import_jobs(before, node, NODE_STOPPED, now)?;
        self.inner.swept.store(true, Ordering::Relaxed);
        if failed > 0 {
            tracing::warn!(failed, "import jobs of a stopped server failed; their files must be uploaded again");
        }
        Ok(failed)
    }

    /// Whether `user` may start another job (checked before an upload is
    /// received, and again when it is registered). Blocking.
    ///
    /// # Errors
    /// [`JobError::TooMany`] when every kept job of the user is unfinished;
    /// store failures.
    pub fn check_room(&self, store: &dyn Store, node: &str, user: UserId) -> Result<(), JobError> {
        self.fail_stopped_jobs(store, node)?;
        let max = self.inner.config.jobs_per_user.max(1);
        let unfinished = store.import_jobs(user)?.iter().filter(|j| !j.status.is_finished()).count();
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

    /// Registers a job for a received upload, run by this node (`node`),
    /// and starts it on the blocking pool once a slot is free. Must be called
    /// inside the Tokio runtime.
    ///
    /// # Errors
    /// [`JobError::TooMany`], store failures.
    pub async fn start(
        &self,
        new: NewJob,
        store: Arc<dyn Store>,
        node: &str,
        metrics: Metrics,
    ) -> Result<Arc<Job>, JobError> {
        let id = crate::auth::random_secret().chars().filter(char::is_ascii_alphanumeric).take(16).collect::<String>();
        let started = now();
        let stamp = started.to_rfc3339(None).replace([':', '.'], "");
        let rejects =
            RejectsWriter::in_dir(&self.inner.config.rejects_dir, &format!("{stamp}-{id}"), Path::new(&new.file_name));
        let job = Arc::new(Job {
            id,
            user: new.user,
            holder: node.to_owned(),
            abandoned: Arc::new(AtomicBool::new(false)),
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
        {
            let (jobs, store, job) = (self.clone(), Arc::clone(&store), Arc::clone(&job));
            tokio::task::spawn_blocking(move || jobs.insert(&*store, &job))
                .await
                .map_err(|e| JobError::Spool(io::Error::other(format!("registering the job failed: {e}"))))??;
        }
        let slots = Arc::clone(&self.inner.slots);
        let closing = Arc::clone(&self.inner.closing);
        let running = Arc::clone(&job);
        let (upload, device, restore_deleted) = (new.upload, new.device, new.restore_deleted);
        tokio::spawn(async move {
            let work = {
                let (running, store) = (Arc::clone(&running), Arc::clone(&store));
                async move {
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
                        let stop = StopReader { inner: file, closing, abandoned: Arc::clone(&job.abandoned) };
                        let reader = CountingReader::new(stop, Arc::clone(&job.bytes_read));
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
                }
            };
            tokio::pin!(work);
            let mut beat = tokio::time::interval(HEARTBEAT_EVERY);
            beat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            beat.tick().await; // the first tick is now: the record was just written
            loop {
                tokio::select! {
                    () = &mut work => break,
                    _ = beat.tick() => {
                        write_through(&store, &running).await;
                    }
                }
            }
            // The final record; tried a few times, as a job left "running" in
            // the store is failed as its node's by another node later.
            for attempt in 1..=3 {
                if write_through(&store, &running).await {
                    break;
                }
                tokio::time::sleep(HEARTBEAT_EVERY * attempt).await;
            }
            tracing::info!(job = %running.id, status = ?running.status(), "import job finished");
        });
        Ok(job)
    }

    /// Records `job` in the store, dropping the user's oldest finished jobs
    /// beyond the limit. Blocking.
    fn insert(&self, store: &dyn Store, job: &Arc<Job>) -> Result<(), JobError> {
        self.fail_stopped_jobs(store, &job.holder)?;
        let max = self.inner.config.jobs_per_user.max(1);
        let mut kept = store.import_jobs(job.user)?;
        while kept.len() >= max {
            // Newest first: the oldest finished one is the last.
            let Some(oldest) = kept.iter().rposition(|j| j.status.is_finished()) else {
                return Err(JobError::TooMany(max));
            };
            let gone = kept.remove(oldest);
            store.delete_import_job(gone.user, &gone.id)?;
            let mut local = self.lock();
            if let Some(list) = local.get_mut(&gone.user)
                && let Some(at) = list.iter().position(|j| j.id == gone.id)
                && let Some(gone) = list.remove(at)
            {
                let _ = std::fs::remove_file(&gone.rejects_path);
            }
        }
        store.create_import_job(&job.record(job.started))?;
        self.lock().entry(job.user).or_default().push_back(Arc::clone(job));
        Ok(())
    }

    /// `user`'s job `id` if this node runs or ran it; another user's job is `None`.
    #[must_use]
    pub fn local(&self, user: UserId, id: &str) -> Option<Arc<Job>> {
        self.lock().get(&user).and_then(|list| list.iter().find(|j| j.id == id).cloned())
    }

    /// `user`'s job `id`, from whichever node runs or ran it. Blocking.
    ///
    /// # Errors
    /// Store failures.
    pub fn view(&self, store: &dyn Store, node: &str, user: UserId, id: &str) -> Result<Option<JobView>, StoreError> {
        self.fail_stopped_jobs(store, node)?;
        if let Some(job) = self.local(user, id) {
            return Ok(Some(job.view()));
        }
        Ok(store.import_job(user, id)?.as_ref().map(view_of))
    }

    /// `user`'s jobs on every node, newest first. Blocking.
    ///
    /// # Errors
    /// Store failures.
    pub fn list(&self, store: &dyn Store, node: &str, user: UserId) -> Result<Vec<JobView>, StoreError> {
        self.fail_stopped_jobs(store, node)?;
        let records = store.import_jobs(user)?;
        Ok(records
            .iter()
            .map(|record| self.local(user, &record.id).map_or_else(|| view_of(record), |job| job.view()))
            .collect())
    }
    /// Forgets `user`'s jobs on this node after the account was deleted:
    /// a running import stops at its next read (its store writes already
    /// fail, as the user is gone) and a queued one as it starts; their
    /// rejects files are removed. Jobs on other nodes stop at their next
    /// heartbeat, which finds their record gone. Returns how many there were.
    pub fn forget_user(&self, user: UserId) -> usize {
        let gone = self.lock().remove(&user).unwrap_or_default();
        for job in &gone {
            job.abandoned.store(true, Ordering::Relaxed);
            let _ = std::fs::remove_file(&job.rejects_path);
        }
        gone.len()
    }

    /// Makes running imports stop at their next read and queued ones fail,
    /// so the server can exit (`polo serve` calls it after the last
    /// request). What was read before is stored.
    pub fn close(&self) {
        self.inner.closing.store(true, Ordering::Relaxed);
    }
}

/// Writes a job this node runs to the store: `false` when that failed or
/// the job is finished there already (another node failed it while this one
/// was unreachable), which stops the import.
async fn write_through(store: &Arc<dyn Store>, job: &Arc<Job>) -> bool {
    let record = job.record(now());
    let store = Arc::clone(store);
    match tokio::task::spawn_blocking(move || store.update_import_job(&record)).await {
        Ok(Ok(true)) => true,
        Ok(Ok(false)) => {
            if !job.status().is_finished() {
                tracing::warn!(job = %job.id, "another node failed this import job as stopped; stopping it");
                job.abandoned.store(true, Ordering::Relaxed);
            }
            true
        }
        Ok(Err(error)) => {
            tracing::warn!(job = %job.id, %error, "cannot write an import job's progress");
            false
        }
        Err(error) => {
            tracing::warn!(job = %job.id, %error, "writing an import job's progress failed");
            false
        }
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
        let abandoned = Arc::new(AtomicBool::new(false));
        let mut reader = StopReader {
            inner: io::Cursor::new(vec![1u8; 8]),
            closing: Arc::clone(&closing),
            abandoned: Arc::clone(&abandoned),
        };
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
        let big = jobs
            .start(upload(jane, &super::super::pipeline::tests::gpx(40_000)), store.clone(), "node", Metrics::new())
            .await;
        let small = super::super::pipeline::tests::gpx(3);
        let behind = jobs.start(upload(joe, &small), store.clone(), "node", Metrics::new()).await.unwrap();
        let big = finished(&big.unwrap()).await;
        assert_eq!(big.status, JobStatus::Failed, "{big:?}");
        let error = big.error.as_deref().unwrap();
        assert!(error.contains("disk full: the in-memory store could not be written"), "{error}");
        assert_eq!(big.points_added, sqlite.count_points(jane).unwrap(), "what was stored is counted");
        // The job queued behind it ran: it is not left `queued`.
        let behind = finished(&behind).await;
        assert!(behind.status.is_finished(), "{behind:?}");

        sqlite.limit_growth(None).unwrap();
        let after = jobs.start(upload(joe, &small), store.clone(), "node", Metrics::new()).await.unwrap();
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
