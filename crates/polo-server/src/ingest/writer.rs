//! The group-commit writer for live ingest.
//!
//! Tracker apps send one point per request (OwnTracks, Traccar, GPSLogger),
//! and every [`Store::insert_points`] call is one transaction with its own
//! WAL commit. 20,000 single-point requests per second would be 20,000
//! commits; SQLite's single writer cannot do that. The [`Ingestor`] turns
//! them into a few hundred: request handlers [`submit`](Ingestor::submit)
//! their fixes through a bounded channel (backpressure, no unbounded memory),
//! and one dedicated OS thread that owns the store drains everything queued
//! (up to [`IngestorConfig::max_batch_points`]), groups it by
//! `(user, device)`, writes all groups in one commit
//! ([`Store::insert_point_groups`]), and answers every waiter with its own
//! outcome. One commit per drain rather than per device matters as soon as
//! many phones post at once: with 32 phones, a commit per device held the
//! writer at about 60 µs of CPU per point.
//!
//! Batches form by themselves: whatever arrives while one batch is being
//! written is the next batch, so a lone request is written at once and a
//! busy server writes big batches. Waiting for more ([`IngestorConfig::linger`],
//! off by default) only adds latency when every client is already waiting
//! for its answer; measured with 32 keep-alive clients, a 2 ms linger capped
//! throughput at about 6,000 points/s.
//!
//! Per-waiter outcomes stay exact: within a group the first submission of a
//! time owns it (later ones are duplicates, as the store's "first wins"
//! rule says), and the store names the times it added
//! ([`Store::insert_points_reporting`]), so each waiter learns which of its
//! points were new. A store error reaches every
//! waiter of its group and no one else (the store rolls that group back
//! alone); when the shared commit itself fails or the store panics, the
//! groups are written again one by one, so that again only the culprit's
//! waiters hear of it, and the writer carries on.
//!
//! The thread is a plain OS thread rather than `spawn_blocking` so that a
//! slow disk never starves the runtime's blocking pool, and because one
//! writer is the point. A store whose commits wait for their disk flush
//! after letting the next writer in (PostgreSQL, see
//! [`Store::live_writers`]) gets a few such threads: each drains what
//! queued while the others write, so one batch is written while the last
//! one waits for its flush, and the store orders their commits. Without
//! that, a batch's flush (milliseconds on a busy disk) was time in which
//! nothing was written at all.

use std::collections::{HashMap, HashSet};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use polo_domain::{DeviceId, Fix, Timestamp, UserId};
use polo_store::{PointGroup, Store, StoreError, StoreResult, WriteOutcome};
use tokio::sync::{mpsc, oneshot};

/// The two store calls the writer makes. Every [`Store`] provides them
/// ([`Ingestor::start`]); tests and alternative sinks can implement just this.
pub trait PointWriter: Send + Sync {
    /// [`Store::insert_points_reporting`]: one transaction, naming the
    /// times it added so that waiters sharing the write can be told apart.
    ///
    /// # Errors
    /// As the store's.
    fn insert_points_reporting(
        &self,
        user: UserId,
        device: DeviceId,
        fixes: &[Fix],
        added: &mut dyn FnMut(Timestamp),
    ) -> StoreResult<WriteOutcome>;

    /// [`Store::insert_point_groups`]: several devices' fixes, committed
    /// together where the store can. The default writes them one by one.
    ///
    /// # Errors
    /// As the store's: a failure of the shared commit, when nothing was stored.
    fn insert_point_groups(
        &self,
        groups: &mut [PointGroup<'_>],
        added: &mut dyn FnMut(usize, Timestamp),
    ) -> StoreResult<()> {
        polo_store::insert_groups_one_by_one(groups, added, |group, added| {
            self.insert_points_reporting(group.user, group.device, group.fixes, added)
        });
        Ok(())
    }

    /// [`Store::live_writers`]: how many writes to keep in flight.
    fn live_writers(&self) -> usize {
        1
    }
}

struct StoreWriter(Arc<dyn Store>);

impl PointWriter for StoreWriter {
    fn insert_points_reporting(
        &self,
        user: UserId,
        device: DeviceId,
        fixes: &[Fix],
        added: &mut dyn FnMut(Timestamp),
    ) -> StoreResult<WriteOutcome> {
        self.0.insert_points_reporting(user, device, fixes, added)
    }

    fn insert_point_groups(
        &self,
        groups: &mut [PointGroup<'_>],
        added: &mut dyn FnMut(usize, Timestamp),
    ) -> StoreResult<()> {
        self.0.insert_point_groups(groups, added)
    }

    fn live_writers(&self) -> usize {
        self.0.live_writers()
    }
}

/// Tuning of the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IngestorConfig {
    /// Most points written per drain (all groups together). A single larger
    /// submission is still written whole.
    pub max_batch_points: usize,
    /// How long the writer waits for more submissions once a drain found
    /// more than one (a lone request is written at once). Zero by default:
    /// see the module docs.
    pub linger: Duration,
    /// Submissions that may wait in the channel before `submit` waits too.
    pub queue_capacity: usize,
    /// Writer threads; 0 (the default) takes the store's
    /// [`PointWriter::live_writers`].
    pub writers: usize,
}

impl Default for IngestorConfig {
    fn default() -> Self {
        Self { max_batch_points: 10_000, linger: Duration::ZERO, queue_capacity: 8192, writers: 0 }
    }
}

/// Why a submission was not written.
#[derive(Debug, Clone, thiserror::Error)]
pub enum IngestError {
    /// The writer has shut down (or died): answer 503 so the app retries.
    #[error("the ingest writer is not running")]
    Closed,
    /// The store refused or failed the write of this submission's group.
    /// [`StoreError::NotFound`] means the device is not the user's; anything
    /// else is temporary server trouble.
    #[error("storing the points failed: {0}")]
    Store(#[source] Arc<StoreError>),
}

/// A point-in-time view of the writer for metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct IngestorStats {
    /// Points submitted and not answered yet (queued or being written).
    pub queued_points: u64,
    /// Submissions not answered yet.
    pub queued_submissions: u64,
    /// Age of the oldest unanswered submission (approximate: metrics only).
    pub oldest_age: Duration,
    /// `insert_points` calls made so far (one transaction each).
    pub commits: u64,
    /// Points written (added or found duplicate) so far.
    pub points_written: u64,
}

struct Job {
    user: UserId,
    device: DeviceId,
    fixes: Vec<Fix>,
    enqueued: Instant,
    reply: oneshot::Sender<Result<WriteOutcome, IngestError>>,
}

enum Msg {
    Job(Job),
    Shutdown(oneshot::Sender<()>),
}

struct Shared {
    base: Instant,
    queued_points: AtomicU64,
    queued_submissions: AtomicU64,
    /// Nanoseconds since `base` + 1 of the oldest unanswered submission; 0 = none.
    oldest: AtomicU64,
    commits: AtomicU64,
    points_written: AtomicU64,
    threads: Mutex<Vec<JoinHandle<()>>>,
}

impl Shared {
    fn stamp(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.base).as_nanos()).unwrap_or(u64::MAX - 1) + 1
    }

    fn answered(&self, points: u64) {
        self.queued_points.fetch_sub(points, Ordering::AcqRel);
        self.queued_submissions.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Undoes the queue counters when a submission never reached the channel
/// (the channel closed, or the caller's future was dropped while waiting).
struct Enqueued<'a> {
    shared: &'a Shared,
    points: u64,
    armed: bool,
}

impl Drop for Enqueued<'_> {
    fn drop(&mut self) {
        if self.armed {
            self.shared.answered(self.points);
        }
    }
}

/// Handle to the live-ingest writer. Cheap to clone; every clone feeds the
/// same threads. They end after [`Ingestor::shutdown`], or when the last
/// handle is dropped.
#[derive(Clone)]
pub struct Ingestor {
    tx: mpsc::Sender<Msg>,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Ingestor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Ingestor").field("stats", &self.stats()).finish()
    }
}

impl Ingestor {
    /// Starts the writer threads over `store`.
    ///
    /// # Errors
    /// When the OS cannot start a thread or the thread's timer runtime.
    pub fn start(store: Arc<dyn Store>, config: IngestorConfig) -> std::io::Result<Self> {
        Self::start_with(Arc::new(StoreWriter(store)), config)
    }

    /// [`Ingestor::start`] over anything that can write points.
    ///
    /// # Errors
    /// As [`Ingestor::start`].
    pub fn start_with(store: Arc<dyn PointWriter>, config: IngestorConfig) -> std::io::Result<Self> {
        let (tx, rx) = mpsc::channel(config.queue_capacity.max(1));
        let rx = Arc::new(Mutex::new(rx));
        let shared = Arc::new(Shared {
            base: Instant::now(),
            queued_points: AtomicU64::new(0),
            queued_submissions: AtomicU64::new(0),
            oldest: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            points_written: AtomicU64::new(0),
            threads: Mutex::new(Vec::new()),
        });
        let writers = if config.writers == 0 { store.live_writers() } else { config.writers }.max(1);
        for _ in 0..writers {
            let (ready_tx, ready_rx) = std::sync::mpsc::channel();
            let (store, rx, thread_shared) = (Arc::clone(&store), Arc::clone(&rx), Arc::clone(&shared));
            let handle = std::thread::Builder::new().name("polo-ingest-writer".into()).spawn(move || {
                // Built (and dropped) on this thread: a runtime may not be dropped
                // inside the caller's async context.
                match tokio::runtime::Builder::new_current_thread().enable_time().build() {
                    Ok(runtime) => {
                        let _ = ready_tx.send(Ok(()));
                        Writer { store, config, shared: thread_shared, runtime }.run(&rx);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })?;
            ready_rx.recv().map_err(|_| std::io::Error::other("the ingest writer thread ended at start"))??;
            if let Ok(mut threads) = shared.threads.lock() {
                threads.push(handle);
            }
        }
        Ok(Self { tx, shared })
    }

    /// Queues `fixes` of one device and waits until they are stored. The
    /// outcome counts exactly this submission's points: `added` new ones,
    /// `duplicates` whose time was already stored or submitted earlier, and
    /// the write's `seq` when this submission added anything.
    ///
    /// Waits for room when the queue is full (backpressure). Dropping the
    /// future after the points were queued does not unqueue them.
    ///
    /// # Errors
    /// [`IngestError::Closed`] after shutdown; [`IngestError::Store`] when the
    /// group's write failed (nothing of it was stored).
    pub async fn submit(&self, user: UserId, device: DeviceId, fixes: Vec<Fix>) -> Result<WriteOutcome, IngestError> {
        if fixes.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let points = fixes.len() as u64;
        let now = Instant::now();
        self.shared.queued_points.fetch_add(points, Ordering::AcqRel);
        self.shared.queued_submissions.fetch_add(1, Ordering::AcqRel);
        let _ = self.shared.oldest.compare_exchange(0, self.shared.stamp(now), Ordering::AcqRel, Ordering::Acquire);
        let mut guard = Enqueued { shared: &self.shared, points, armed: true };
        let (reply, answer) = oneshot::channel();
        let job = Job { user, device, fixes, enqueued: now, reply };
        if self.tx.send(Msg::Job(job)).await.is_err() {
            return Err(IngestError::Closed);
        }
        guard.armed = false;
        answer.await.map_err(|_| IngestError::Closed)?
    }

    /// Points submitted and not answered yet.
    #[must_use]
    pub fn queue_depth(&self) -> u64 {
        self.shared.queued_points.load(Ordering::Acquire)
    }

    /// Age of the oldest submission not answered yet; zero when idle.
    #[must_use]
    pub fn oldest_age(&self) -> Duration {
        match self.shared.oldest.load(Ordering::Acquire) {
            0 => Duration::ZERO,
            stamp => self.shared.base.elapsed().saturating_sub(Duration::from_nanos(stamp - 1)),
        }
    }

    /// All figures at once.
    #[must_use]
    pub fn stats(&self) -> IngestorStats {
        IngestorStats {
            queued_points: self.queue_depth(),
            queued_submissions: self.shared.queued_submissions.load(Ordering::Acquire),
            oldest_age: self.oldest_age(),
            commits: self.shared.commits.load(Ordering::Acquire),
            points_written: self.shared.points_written.load(Ordering::Acquire),
        }
    }

    /// Stops accepting submissions, writes everything already queued, and
    /// waits for the writer thread to end. Later `submit`s fail with
    /// [`IngestError::Closed`]. Safe to call more than once, from any clone.
    pub async fn shutdown(&self) {
        let (done, finished) = oneshot::channel();
        if self.tx.send(Msg::Shutdown(done)).await.is_ok() {
            let _ = finished.await;
        }
        let threads = self.shared.threads.lock().map(|mut threads| std::mem::take(&mut *threads)).unwrap_or_default();
        for handle in threads {
            let _ = tokio::task::spawn_blocking(move || handle.join()).await;
        }
    }
}

impl Ingestor {
    /// [`Ingestor::shutdown`], giving up after `grace`: a writer stuck in a
    /// store call (a hung disk) is left behind, so that the process can
    /// still exit. Returns whether everything queued was written.
    pub async fn shutdown_within(&self, grace: Duration) -> bool {
        let finished = tokio::time::timeout(grace, self.shutdown()).await.is_ok();
        if !finished {
            tracing::error!(
                queued_points = self.queue_depth(),
                grace_seconds = grace.as_secs_f64(),
                "the ingest writer did not finish in time; its queued points are not stored"
            );
        }
        finished
    }
}

/// Adds a message to the drain; true for a shutdown request.
fn take(msg: Msg, jobs: &mut Vec<Job>, points: &mut usize, shutdowns: &mut Vec<oneshot::Sender<()>>) -> bool {
    match msg {
        Msg::Job(job) => {
            *points += job.fixes.len();
            jobs.push(job);
            false
        }
        Msg::Shutdown(done) => {
            shutdowns.push(done);
            true
        }
    }
}

impl crate::metrics::QueueStats for Ingestor {
    fn depth(&self) -> u64 {
        self.queue_depth()
    }

    fn oldest_age(&self) -> Duration {
        Ingestor::oldest_age(self)
    }
}

struct Writer {
    store: Arc<dyn PointWriter>,
    config: IngestorConfig,
    shared: Arc<Shared>,
    runtime: tokio::runtime::Runtime,
}

impl Writer {
    /// Drains and writes until the channel is closed and empty. With several
    /// writers, one drains (holding `rx`) while the others write.
    fn run(self, rx: &Mutex<mpsc::Receiver<Msg>>) {
        let mut shutdowns = Vec::new();
        loop {
            if self.shared.queued_submissions.load(Ordering::Acquire) == 0 {
                self.shared.oldest.store(0, Ordering::Release);
            }
            let mut rx = rx.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            let Some(first) = self.runtime.block_on(rx.recv()) else { break };
            let mut jobs = Vec::new();
            let mut points = 0usize;
            let mut closing = take(first, &mut jobs, &mut points, &mut shutdowns);
            let deadline = tokio::time::Instant::now() + self.config.linger;
            while points < self.config.max_batch_points && !closing {
                match rx.try_recv() {
                    Ok(msg) => {
                        closing |= take(msg, &mut jobs, &mut points, &mut shutdowns);
                        continue;
                    }
                    Err(mpsc::error::TryRecvError::Disconnected) => break,
                    Err(mpsc::error::TryRecvError::Empty) => {}
                }
                if jobs.len() <= 1 || self.config.linger.is_zero() {
                    break;
                }
                // The timer must be created inside the runtime.
                match self.runtime.block_on(async { tokio::time::timeout_at(deadline, rx.recv()).await }) {
                    Ok(Some(msg)) => closing |= take(msg, &mut jobs, &mut points, &mut shutdowns),
                    Ok(None) | Err(_) => break,
                }
            }
            if closing {
                // Refuse new submissions; what is already queued is still written.
                rx.close();
            }
            drop(rx);
            if let Some(oldest) = jobs.iter().map(|j| j.enqueued).min() {
                self.shared.oldest.store(self.shared.stamp(oldest), Ordering::Release);
            }
            self.write(jobs);
        }
        for done in shutdowns {
            let _ = done.send(());
        }
    }

    fn write(&self, jobs: Vec<Job>) {
        let mut groups: Vec<Group> = Vec::new();
        let mut index: HashMap<(UserId, DeviceId), usize> = HashMap::new();
        for job in jobs {
            let slot = *index.entry((job.user, job.device)).or_insert_with(|| {
                groups.push(Group::new(job.user, job.device));
                groups.len() - 1
            });
            groups[slot].take(job);
        }
        let results = self.store_groups(&groups);
        for (group, result) in groups.into_iter().zip(results) {
            group.answer(result, &self.shared);
        }
    }

    /// Writes every group with fixes, all in one commit when the store can;
    /// returns each group's outcome and the times it added.
    fn store_groups(&self, groups: &[Group]) -> Vec<StoreResult<(WriteOutcome, HashSet<Timestamp>)>> {
        let mut results: Vec<_> = groups.iter().map(|_| Ok((WriteOutcome::default(), HashSet::new()))).collect();
        let pending: Vec<usize> = (0..groups.len()).filter(|&g| !groups[g].fixes.is_empty()).collect();
        if pending.is_empty() {
            return results;
        }
        let point_groups = || -> Vec<PointGroup<'_>> {
            pending.iter().map(|&g| PointGroup::new(groups[g].user, groups[g].device, &groups[g].fixes)).collect()
        };
        let shared: Vec<bool> = pending.iter().map(|&g| groups[g].jobs.len() > 1).collect();
        let mut added: Vec<HashSet<Timestamp>> = vec![HashSet::new(); pending.len()];
        let mut written = point_groups();
        let together = catch_unwind(AssertUnwindSafe(|| {
            self.store.insert_point_groups(&mut written, &mut |i, t| note_added(&shared, &mut added, i, t))
        }));
        self.shared.commits.fetch_add(1, Ordering::AcqRel);
        if !matches!(together, Ok(Ok(()))) {
            // The shared commit failed (or the store panicked) and nothing of it was
            // stored: write the groups one by one, so that only the culprit fails.
            added = vec![HashSet::new(); pending.len()];
            written = point_groups();
            polo_store::insert_groups_one_by_one(
                &mut written,
                &mut |i, t| note_added(&shared, &mut added, i, t),
                |group, added| self.store.insert_points_reporting(group.user, group.device, group.fixes, added),
            );
            self.shared.commits.fetch_add(pending.len() as u64, Ordering::AcqRel);
        }
        let mut points = 0;
        for ((&g, point_group), added) in pending.iter().zip(written).zip(added) {
            let outcome =
                point_group.outcome.unwrap_or_else(|| Err(StoreError::Backend("the store skipped a group".to_owned())));
            if outcome.is_ok() {
                points += groups[g].fixes.len();
            }
            results[g] = outcome.map(|o| (o, added));
        }
        self.shared.points_written.fetch_add(points as u64, Ordering::AcqRel);
        results
    }
}

/// Records that group `i` added time `t`, for groups shared by several
/// waiters: only they need to know which times were new.
fn note_added(shared: &[bool], added: &mut [HashSet<Timestamp>], i: usize, t: Timestamp) {
    if shared[i] {
        added[i].insert(t);
    }
}

/// The submissions of one `(user, device)` in a drain: their fixes
/// deduplicated by time (the first submission of a time owns it).
struct Group {
    user: UserId,
    device: DeviceId,
    jobs: Vec<Job>,
    /// Points each waiter submitted, for the queue counters.
    sizes: Vec<u64>,
    fixes: Vec<Fix>,
    /// The waiter each fix came from.
    owners: Vec<usize>,
    /// Per waiter; the duplicates within the drain are counted as they are found.
    outcomes: Vec<WriteOutcome>,
    seen: HashSet<Timestamp>,
}

impl Group {
    fn new(user: UserId, device: DeviceId) -> Self {
        Self {
            user,
            device,
            jobs: Vec::new(),
            sizes: Vec::new(),
            fixes: Vec::new(),
            owners: Vec::new(),
            outcomes: Vec::new(),
            seen: HashSet::new(),
        }
    }

    fn take(&mut self, mut job: Job) {
        let waiter = self.jobs.len();
        let mut outcome = WriteOutcome::default();
        self.sizes.push(job.fixes.len() as u64);
        for fix in job.fixes.drain(..) {
            if self.seen.insert(fix.time) {
                self.owners.push(waiter);
                self.fixes.push(fix);
            } else {
                outcome.duplicates += 1;
            }
        }
        self.outcomes.push(outcome);
        self.jobs.push(job);
    }

    /// Tells every waiter its own part of the group's result.
    fn answer(mut self, result: StoreResult<(WriteOutcome, HashSet<Timestamp>)>, shared: &Shared) {
        let result = match result {
            Ok((outcome, added)) => {
                if !self.fixes.is_empty() {
                    attribute(&outcome, &self.fixes, &self.owners, &added, &mut self.outcomes);
                }
                Ok(())
            }
            Err(e) => Err(IngestError::Store(Arc::new(e))),
        };
        for ((job, outcome), size) in self.jobs.into_iter().zip(self.outcomes).zip(self.sizes) {
            let answer = result.as_ref().map(|()| outcome).map_err(Clone::clone);
            shared.answered(size);
            // The waiter may be gone (request cancelled); the write stands.
            let _ = job.reply.send(answer);
        }
    }
}

/// Splits a group's outcome between its waiters: each fix the store added
/// counts for the waiter that submitted it, every other one is a duplicate.
/// A lone waiter takes the store's counts as they are.
fn attribute(
    outcome: &WriteOutcome,
    fixes: &[Fix],
    owners: &[usize],
    added: &HashSet<Timestamp>,
    outcomes: &mut [WriteOutcome],
) {
    if let [only] = outcomes {
        // One waiter: the store's counts are its counts (`added` was not collected).
        only.added += outcome.added;
        only.duplicates += outcome.duplicates;
        only.seq = outcome.seq.filter(|_| only.added > 0);
        return;
    }
    for (fix, &owner) in fixes.iter().zip(owners) {
        if added.contains(&fix.time) {
            outcomes[owner].added += 1;
        } else {
            outcomes[owner].duplicates += 1;
        }
    }
    for o in outcomes.iter_mut() {
        if o.added > 0 {
            o.seq = outcome.seq;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::mpsc as std_mpsc;

    use polo_domain::{Coord, Seq, SourceFormat};
    use polo_store_sqlite::SqliteStore;

    use super::*;

    fn fix(second: i64) -> Fix {
        Fix::new(
            Timestamp(1_750_000_000_000 + second * 1000),
            Coord::from_degrees(48.1, 11.5).unwrap(),
            SourceFormat::Owntracks,
        )
    }

    fn sqlite() -> (Arc<dyn Store>, UserId, DeviceId) {
        let store = SqliteStore::open_in_memory().unwrap();
        let user = store.create_user("alice", "$argon2id$fake", false).unwrap();
        let device = store.ensure_device(user.id, "phone").unwrap();
        (Arc::new(store), user.id, device.id)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn a_thousand_concurrent_submits_all_land_with_their_own_outcome() {
        let (store, user, device) = sqlite();
        let ingestor = Ingestor::start(Arc::clone(&store), IngestorConfig::default()).unwrap();
        let barrier = Arc::new(tokio::sync::Barrier::new(1000));
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let (ingestor, barrier) = (ingestor.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    ingestor.submit(user, device, vec![fix(i)]).await
                })
            })
            .collect();
        for task in tasks {
            let outcome = task.await.unwrap().unwrap();
            assert_eq!((outcome.added, outcome.duplicates), (1, 0));
            assert!(outcome.seq.is_some());
        }
        assert_eq!(store.count_points(user).unwrap(), 1000);
        let stats = ingestor.stats();
        assert!(stats.commits < 1000, "group commit: {stats:?}");
        assert_eq!((stats.queued_points, stats.queued_submissions, stats.points_written), (0, 0, 1000));

        // The same thousand again: every waiter sees its own duplicate.
        let tasks: Vec<_> = (0..1000)
            .map(|i| {
                let ingestor = ingestor.clone();
                tokio::spawn(async move { ingestor.submit(user, device, vec![fix(i)]).await })
            })
            .collect();
        for task in tasks {
            let outcome = task.await.unwrap().unwrap();
            assert_eq!((outcome.added, outcome.duplicates, outcome.seq), (0, 1, None));
        }

        // Mixed: ten racing copies of one new fix, plus old+new in one submission.
        let barrier = Arc::new(tokio::sync::Barrier::new(11));
        let mut tasks: Vec<_> = (0..10)
            .map(|_| {
                let (ingestor, barrier) = (ingestor.clone(), Arc::clone(&barrier));
                tokio::spawn(async move {
                    barrier.wait().await;
                    ingestor.submit(user, device, vec![fix(5000)]).await
                })
            })
            .collect();
        let (i2, b2) = (ingestor.clone(), Arc::clone(&barrier));
        tasks.push(tokio::spawn(async move {
            b2.wait().await;
            i2.submit(user, device, vec![fix(3), fix(6000), fix(6000)]).await
        }));
        let mut outcomes = Vec::new();
        for task in tasks {
            let o = task.await.unwrap().unwrap();
            outcomes.push((o.added, o.duplicates));
        }
        let mixed = outcomes.pop().unwrap();
        assert_eq!(mixed, (1, 2), "fix(3) is stored, fix(6000) is new once");
        assert_eq!(outcomes.iter().filter(|o| **o == (1, 0)).count(), 1, "{outcomes:?}");
        assert_eq!(outcomes.iter().filter(|o| **o == (0, 1)).count(), 9, "{outcomes:?}");
        assert_eq!(store.count_points(user).unwrap(), 1002);
        assert_eq!(ingestor.submit(user, device, Vec::new()).await.unwrap(), WriteOutcome::default());
        ingestor.shutdown().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn several_writer_threads_answer_every_waiter_once_and_stop_together() {
        let (store, user, device) = sqlite();
        let config = IngestorConfig { writers: 3, queue_capacity: 16, ..IngestorConfig::default() };
        let ingestor = Ingestor::start(Arc::clone(&store), config).unwrap();
        // Every time submitted twice, racing: one waiter stores it, the other hears of a duplicate.
        let tasks: Vec<_> = (0..600)
            .map(|i| {
                let ingestor = ingestor.clone();
                tokio::spawn(async move { ingestor.submit(user, device, vec![fix(i / 2)]).await })
            })
            .collect();
        let (mut added, mut duplicates) = (0, 0);
        for task in tasks {
            let outcome = task.await.unwrap().unwrap();
            added += outcome.added;
            duplicates += outcome.duplicates;
        }
        assert_eq!((added, duplicates), (300, 300));
        assert_eq!(store.count_points(user).unwrap(), 300);

        // Stopped with submissions in flight: each is either written and answered, or refused.
        let tasks: Vec<_> = (1000..1100)
            .map(|i| {
                let ingestor = ingestor.clone();
                tokio::spawn(async move { ingestor.submit(user, device, vec![fix(i)]).await })
            })
            .collect();
        tokio::task::yield_now().await;
        ingestor.shutdown().await;
        let mut written = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(outcome) => written += outcome.added,
                Err(e) => assert!(matches!(e, IngestError::Closed), "{e}"),
            }
        }
        assert_eq!(store.count_points(user).unwrap(), 300 + written);
        assert!(matches!(ingestor.submit(user, device, vec![fix(5000)]).await, Err(IngestError::Closed)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_flushes_and_then_refuses() {
        let (store, user, device) = sqlite();
        let config = IngestorConfig { queue_capacity: 4, ..IngestorConfig::default() };
        let ingestor = Ingestor::start(Arc::clone(&store), config).unwrap();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let ingestor = ingestor.clone();
                tokio::spawn(async move { ingestor.submit(user, device, vec![fix(i)]).await })
            })
            .collect();
        tokio::task::yield_now().await;
        ingestor.shutdown().await;
        let mut written = 0;
        for task in tasks {
            match task.await.unwrap() {
                Ok(o) => written += o.added,
                Err(IngestError::Closed) => {}
                Err(e) => panic!("{e}"),
            }
        }
        assert_eq!(store.count_points(user).unwrap(), written, "every accepted submission was written");
        assert!(matches!(ingestor.submit(user, device, vec![fix(99)]).await, Err(IngestError::Closed)));
        ingestor.shutdown().await;
        assert_eq!(ingestor.stats().queued_points, 0);
    }

    /// A store whose `insert_points` blocks on device 1 until released, fails
    /// on device 2, panics on device 4 and succeeds otherwise.
    struct FakeStore {
        calls: Mutex<Vec<(DeviceId, usize)>>,
        entered: Mutex<std_mpsc::Sender<()>>,
        release: Mutex<std_mpsc::Receiver<()>>,
    }

    impl PointWriter for FakeStore {
        fn insert_points_reporting(
            &self,
            _: UserId,
            device: DeviceId,
            fixes: &[Fix],
            added: &mut dyn FnMut(Timestamp),
        ) -> StoreResult<WriteOutcome> {
            self.calls.lock().unwrap().push((device, fixes.len()));
            match device.0 {
                1 => {
                    self.entered.lock().unwrap().send(()).unwrap();
                    self.release.lock().unwrap().recv().unwrap();
                }
                2 => return Err(StoreError::Backend("disk full".into())),
                4 => panic!("fake store panics"),
                _ => {}
            }
            fixes.iter().for_each(|f| added(f.time));
            Ok(WriteOutcome { added: fixes.len() as u64, seq: Some(Seq(7)), ..WriteOutcome::default() })
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_store_error_reaches_every_waiter_of_its_group_only() {
        let (entered_tx, entered_rx) = std_mpsc::channel();
        let (release_tx, release_rx) = std_mpsc::channel();
        let store = Arc::new(FakeStore {
            calls: Mutex::new(Vec::new()),
            entered: Mutex::new(entered_tx),
            release: Mutex::new(release_rx),
        });
        let ingestor =
            Ingestor::start_with(Arc::clone(&store) as Arc<dyn PointWriter>, IngestorConfig::default()).unwrap();
        let user = UserId(1);
        let submit = |device: i64, second: i64| {
            let ingestor = ingestor.clone();
            tokio::spawn(async move { ingestor.submit(user, DeviceId(device), vec![fix(second)]).await })
        };
        // Occupy the writer so that what follows queues up into one drain.
        let blocker = submit(1, 0);
        tokio::task::spawn_blocking(move || entered_rx.recv().unwrap()).await.unwrap();
        let failing: Vec<_> = (0..5).map(|i| submit(2, i)).collect();
        let healthy = submit(3, 0);
        let panicking = submit(4, 0);
        while ingestor.stats().queued_submissions < 8 {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        // The counters move just before the channel send completes.
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(ingestor.oldest_age() > Duration::ZERO);
        release_tx.send(()).unwrap();
        assert_eq!(blocker.await.unwrap().unwrap().added, 1);
        for task in failing {
            match task.await.unwrap() {
                Err(IngestError::Store(e)) => assert!(e.to_string().contains("disk full"), "{e}"),
                other => panic!("expected the store error, got {other:?}"),
            }
        }
        let ok = healthy.await.unwrap().unwrap();
        assert_eq!((ok.added, ok.seq), (1, Some(Seq(7))));
        assert!(matches!(panicking.await.unwrap(), Err(IngestError::Store(_))));
        // Inserts are per (user, device) group. The five failing submissions
        // normally share one transaction; on a loaded machine the last sends
        // may land after the drain began, so only the totals are exact.
        let calls = store.calls.lock().unwrap().clone();
        let fixes_for = |d: i64| calls.iter().filter(|(device, _)| device.0 == d).map(|(_, n)| n).sum::<usize>();
        assert_eq!((fixes_for(1), fixes_for(2), fixes_for(3), fixes_for(4)), (1, 5, 1, 1), "{calls:?}");
        assert!(calls.iter().filter(|(device, _)| device.0 == 2).count() <= 2, "grouped: {calls:?}");
        // The writer survived the panic.
        assert_eq!(submit(3, 1).await.unwrap().unwrap().added, 1);
        let idle = async {
            while ingestor.oldest_age() > Duration::ZERO {
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
        };
        tokio::time::timeout(Duration::from_secs(5), idle).await.expect("the age returns to zero when idle");
        ingestor.shutdown().await;
    }

    /// Its shared commit always fails; one group at a time works.
    struct FailingCommit {
        single_writes: AtomicU64,
    }

    impl PointWriter for FailingCommit {
        fn insert_points_reporting(
            &self,
            _: UserId,
            _: DeviceId,
            fixes: &[Fix],
            added: &mut dyn FnMut(Timestamp),
        ) -> StoreResult<WriteOutcome> {
            self.single_writes.fetch_add(1, Ordering::AcqRel);
            fixes.iter().for_each(|f| added(f.time));
            Ok(WriteOutcome { added: fixes.len() as u64, seq: Some(Seq(3)), ..WriteOutcome::default() })
        }

        fn insert_point_groups(
            &self,
            _: &mut [PointGroup<'_>],
            _: &mut dyn FnMut(usize, Timestamp),
        ) -> StoreResult<()> {
            Err(StoreError::Backend("the commit failed".into()))
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failed_shared_commit_is_written_again_group_by_group() {
        let store = Arc::new(FailingCommit { single_writes: AtomicU64::new(0) });
        let ingestor =
            Ingestor::start_with(Arc::clone(&store) as Arc<dyn PointWriter>, IngestorConfig::default()).unwrap();
        let tasks: Vec<_> = (0..6)
            .map(|i| {
                let ingestor = ingestor.clone();
                tokio::spawn(async move { ingestor.submit(UserId(1), DeviceId(i % 3), vec![fix(i)]).await })
            })
            .collect();
        for task in tasks {
            let outcome = task.await.unwrap().unwrap();
            assert_eq!((outcome.added, outcome.seq), (1, Some(Seq(3))));
        }
        let stats = ingestor.stats();
        assert_eq!(stats.points_written, 6);
        assert!(store.single_writes.load(Ordering::Acquire) >= 3, "every device written on its own");
        ingestor.shutdown().await;
    }

    /// On a full disk every waiter hears of it (and answers 503): no point
    /// is acknowledged that was not stored.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_full_disk_fails_every_waiter_and_stores_nothing_of_theirs() {
        let store = SqliteStore::open_in_memory().unwrap();
        let user = store.create_user("alice", "$argon2id$fake", false).unwrap().id;
        let phones: Vec<DeviceId> = (0..3).map(|i| store.ensure_device(user, &format!("p{i}")).unwrap().id).collect();
        store.limit_growth(Some(0)).unwrap();
        let store: Arc<dyn Store> = Arc::new(store);
        let ingestor = Ingestor::start(Arc::clone(&store), IngestorConfig::default()).unwrap();
        let tasks: Vec<_> = phones
            .iter()
            .map(|&device| {
                let ingestor = ingestor.clone();
                // Thousands of points need pages the store may not add.
                tokio::spawn(async move { ingestor.submit(user, device, (0..5000).map(fix).collect()).await })
            })
            .collect();
        for task in tasks {
            match task.await.unwrap() {
                Err(IngestError::Store(e)) => assert!(e.is_disk_full(), "{e}"),
                other => panic!("acknowledged on a full disk: {other:?}"),
            }
        }
        assert_eq!(store.count_points(user).unwrap(), 0);
        assert!(store.check_writable().unwrap_err().is_disk_full());
        ingestor.shutdown().await;
    }

    /// A store call that says it was entered and then never returns.
    struct Wedged {
        entered: Mutex<std_mpsc::Sender<()>>,
        wedge: Mutex<std_mpsc::Receiver<()>>,
    }

    impl PointWriter for Wedged {
        fn insert_points_reporting(
            &self,
            _: UserId,
            _: DeviceId,
            _: &[Fix],
            _: &mut dyn FnMut(Timestamp),
        ) -> StoreResult<WriteOutcome> {
            let _ = self.entered.lock().unwrap().send(());
            let _ = self.wedge.lock().unwrap().recv();
            Err(StoreError::Backend("released".into()))
        }
    }

    /// `polo serve` must exit after SIGTERM even while the writer hangs on a
    /// dead disk: the bounded shutdown gives up, and leaves nothing behind
    /// that the runtime would wait for.
    #[test]
    fn a_wedged_writer_does_not_hold_up_the_shutdown() {
        let (release, wedge) = std_mpsc::channel();
        let (entered, in_store) = std_mpsc::channel();
        let wedged = Arc::new(Wedged { entered: Mutex::new(entered), wedge: Mutex::new(wedge) });
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let started = Instant::now();
        let finished = runtime.block_on(async {
            let ingestor = Ingestor::start_with(wedged, IngestorConfig::default()).unwrap();
            let waiting = ingestor.clone();
            let submitted = tokio::spawn(async move { waiting.submit(UserId(1), DeviceId(1), vec![fix(1)]).await });
            let entered = tokio::task::spawn_blocking(move || in_store.recv_timeout(Duration::from_secs(10)));
            entered.await.unwrap().expect("the writer never called the store");
            let finished = ingestor.shutdown_within(Duration::from_millis(200)).await;
            submitted.abort();
            finished
        });
        runtime.shutdown_timeout(Duration::from_secs(1));
        assert!(!finished, "the writer was wedged");
        assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
        let _ = release.send(());
    }
}
