//! The replicator: pulls a source's feed into a target, page after page,
//! each page applied with its checkpoint in one target transaction.
//!
//! * The next page is fetched while the current one is applied, so the
//!   network and the target's writer overlap.
//! * It starts from the checkpoint the *target* holds (never from memory),
//!   so a replicator killed at any moment, or one restarted elsewhere,
//!   resumes where the data is and at worst re-sends a page, which the
//!   target skips.
//! * Failures are retried with back-off; status (lag in changes and
//!   seconds, throughput, last error) is kept for `/metrics` and the API.
//! * A [`Control`] pauses, resumes or cancels it between pages.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::watch;

use crate::feed::FeedRequest;
use crate::peer::{Peer, PeerError, pull_filter};
use crate::wire::{ApplyRequest, WirePage};

/// Points per page unless configured.
pub const DEFAULT_PAGE_POINTS: usize = 50_000;
/// How long a caught-up continuous replication long-polls the source.
pub const LONG_POLL: Duration = Duration::from_secs(20);

/// What to replicate.
#[derive(Debug, Clone)]
pub struct Spec {
    /// A name for logs, metrics and the API.
    pub name: String,
    /// Where changes come from.
    pub source: Peer,
    /// Where they are applied.
    pub target: Peer,
    /// Only these users (by name); empty for everyone.
    pub users: Vec<String>,
    /// Keep following the source once caught up.
    pub continuous: bool,
    /// Points per page.
    pub page_points: usize,
}

/// What a replication is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Connecting to the peers.
    Starting,
    /// Copying a backlog.
    Copying,
    /// Caught up, following the source.
    Following,
    /// Paused by request.
    Paused,
    /// Waiting to retry after a failure.
    Retrying,
    /// Finished (one-shot, caught up).
    Done,
    /// Cancelled by request.
    Cancelled,
    /// Gave up after a permanent failure.
    Failed,
}

/// A replication's progress, as `/metrics` and the API show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Status {
    /// Its name.
    pub name: String,
    /// Source, for display.
    pub source: String,
    /// Target, for display.
    pub target: String,
    /// What it is doing.
    pub state: State,
    /// The target's checkpoint name.
    pub checkpoint: Option<String>,
    /// The cursor applied last.
    pub cursor: Option<String>,
    /// Source changes not yet applied (at the last page).
    pub lag_changes: u64,
    /// How far behind the source's latest change the applied data is, in seconds.
    pub lag_seconds: f64,
    /// Entries applied that changed something.
    pub applied_changes: u64,
    /// Points added or replaced on the target.
    pub applied_points: u64,
    /// Points per second over the last page.
    pub points_per_second: f64,
    /// Pages applied.
    pub pages: u64,
    /// Times the source's history was found rewound (restored from a backup).
    pub rewinds: u64,
    /// The last failure.
    pub last_error: Option<String>,
    /// When it happened (ms since the Unix epoch).
    pub last_error_at: Option<i64>,
    /// Consecutive failures.
    pub failures: u32,
}

/// Pause, resume or cancel a running replication.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    /// Keep going.
    Run,
    /// Stop between pages until resumed.
    Pause,
    /// Stop for good.
    Cancel,
}

/// A handle on a replication: its status and its control.
#[derive(Debug, Clone)]
pub struct Handle {
    status: Arc<Mutex<Status>>,
    control: watch::Sender<Control>,
}

impl Handle {
    /// A handle for `spec`, not yet running.
    #[must_use]
    pub fn new(spec: &Spec) -> Self {
        let status = Status {
            name: spec.name.clone(),
            source: spec.source.to_string(),
            target: spec.target.to_string(),
            state: State::Starting,
            checkpoint: None,
            cursor: None,
            lag_changes: 0,
            lag_seconds: 0.0,
            applied_changes: 0,
            applied_points: 0,
            points_per_second: 0.0,
            pages: 0,
            rewinds: 0,
            last_error: None,
            last_error_at: None,
            failures: 0,
        };
        Self { status: Arc::new(Mutex::new(status)), control: watch::channel(Control::Run).0 }
    }

    /// A snapshot of the status.
    #[must_use]
    pub fn status(&self) -> Status {
        self.status.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Sends a control request; cancelling is final.
    pub fn send(&self, control: Control) {
        self.control.send_if_modified(|current| {
            let changed = *current != Control::Cancel && *current != control;
            if changed {
                *current = control;
            }
            changed
        });
    }

    fn update(&self, f: impl FnOnce(&mut Status)) {
        f(&mut self.status.lock().unwrap_or_else(PoisonError::into_inner));
    }
}

/// Why a replication stopped before finishing.
#[derive(Debug, thiserror::Error)]
pub enum ReplicateError {
    /// It was cancelled.
    #[error("cancelled")]
    Cancelled,
    /// A peer failed in a way retrying does not fix, or too many times.
    #[error(transparent)]
    Peer(#[from] PeerError),
}

/// The checkpoint name for pulls from `source_instance` with `users`.
#[must_use]
pub fn checkpoint_name(source_instance: &str, users: &[String]) -> String {
    if users.is_empty() {
        return source_instance.to_owned();
    }
    let mut users = users.to_vec();
    users.sort();
    users.dedup();
    format!("{source_instance}?users={}", users.join(","))
}

fn now_millis() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// Runs a replication until it is done (one-shot), cancelled, or fails
/// permanently. One-shot runs give up after `max_failures` consecutive
/// failures; continuous ones retry for ever.
///
/// # Errors
/// [`ReplicateError::Cancelled`], or the failure it gave up on.
pub async fn run(spec: Spec, handle: Handle) -> Result<Status, ReplicateError> {
    const MAX_ONE_SHOT_FAILURES: u32 = 8;
    const FIRST_BACKOFF: Duration = Duration::from_millis(200);
    let mut control = handle.control.subscribe();
    let mut backoff = FIRST_BACKOFF;
    loop {
        let pages_before = handle.status().pages;
        match run_once(&spec, &handle, &mut control).await {
            Ok(()) => {
                handle.update(|s| s.state = State::Done);
                return Ok(handle.status());
            }
            Err(ReplicateError::Cancelled) => {
                handle.update(|s| s.state = State::Cancelled);
                return Err(ReplicateError::Cancelled);
            }
            Err(ReplicateError::Peer(e)) => {
                let failures = {
                    let mut s = handle.status.lock().unwrap_or_else(PoisonError::into_inner);
                    s.failures += 1;
                    s.last_error = Some(e.to_string());
                    s.last_error_at = Some(now_millis());
                    s.state = State::Retrying;
                    s.failures
                };
                tracing::warn!(replication = %spec.name, failures, error = %e, "replication failed; retrying");
                // A connection that failed after making progress starts the back-off over.
                if handle.status().pages > pages_before {
                    backoff = FIRST_BACKOFF;
                }
                let give_up = !e.is_transient() || failures >= MAX_ONE_SHOT_FAILURES;
                if !spec.continuous && give_up {
                    handle.update(|s| s.state = State::Failed);
                    return Err(ReplicateError::Peer(e));
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = control.wait_for(|c| *c == Control::Cancel) => {
                        handle.update(|s| s.state = State::Cancelled);
                        return Err(ReplicateError::Cancelled);
                    }
                }
                backoff = (backoff * 2).min(Duration::from_secs(10));
            }
        }
    }
}

/// Waits while paused; errors when cancelled.
async fn checkpoint_control(handle: &Handle, control: &mut watch::Receiver<Control>) -> Result<(), ReplicateError> {
    loop {
        let current = *control.borrow_and_update();
        match current {
            Control::Run => return Ok(()),
            Control::Cancel => return Err(ReplicateError::Cancelled),
            Control::Pause => {
                handle.update(|s| s.state = State::Paused);
                if control.changed().await.is_err() {
                    return Err(ReplicateError::Cancelled);
                }
            }
        }
    }
}

/// Connects, then copies and follows until done or an error.
async fn run_once(spec: &Spec, handle: &Handle, control: &mut watch::Receiver<Control>) -> Result<(), ReplicateError> {
    checkpoint_control(handle, control).await?;
    let (source, target) = tokio::try_join!(spec.source.info(), spec.target.info())?;
    if source.instance == target.instance {
        return Err(PeerError::Refused {
            url: spec.source.to_string(),
            status: 409,
            message: "source and target are the same instance".into(),
        }
        .into());
    }
    let name = checkpoint_name(&source.instance, &spec.users);
    let mut cursor = spec.target.checkpoint(&name).await?;
    if cursor.is_none() {
        // A source restored from a backup is a new instance: continue from
        // where the target had followed the instance it descends from.
        for ancestor in &source.ancestors {
            if let Some(found) = spec.target.checkpoint(&checkpoint_name(ancestor, &spec.users)).await? {
                tracing::info!(replication = %spec.name, %ancestor, "resuming from the checkpoint of the source's predecessor");
                cursor = Some(found);
                break;
            }
        }
    }
    handle.update(|s| {
        s.checkpoint = Some(name.clone());
        s.cursor.clone_from(&cursor);
        s.state = State::Copying;
    });
    let filter = pull_filter(&target.instance, &spec.users);
    let request = |since: Option<String>, wait: Duration| FeedRequest {
        since,
        max_points: spec.page_points.max(1),
        filter: filter.clone(),
        wait,
    };
    let fetch = |req: FeedRequest| {
        let source = spec.source.clone();
        tokio::spawn(async move { source.changes(&req).await })
    };
    let mut prefetch = Some(fetch(request(cursor.clone(), Duration::ZERO)));
    let mut caught_up = false;
    loop {
        checkpoint_control(handle, control).await?;
        let next = match prefetch.take() {
            Some(task) => task,
            None => {
                fetch(request(cursor.clone(), if caught_up && spec.continuous { LONG_POLL } else { Duration::ZERO }))
            }
        };
        let page: WirePage = tokio::select! {
            joined = next => joined.map_err(|e| PeerError::Local(format!("feed task failed: {e}")))??,
            _ = control.wait_for(|c| *c != Control::Run) => continue,
        };
        if let Some(why) = &page.rewound {
            tracing::warn!(replication = %spec.name, "{why}");
            handle.update(|s| s.rewinds += 1);
        }
        let page_seq = page.cursor.rsplit_once(':').and_then(|(_, s)| s.parse::<u64>().ok()).unwrap_or(0);
        caught_up = page_seq >= page.head && page.entries.is_empty();
        let last_millis = page.entries.last().map(|e| (e.hlc >> 16) as i64);
        let points: u64 = page
            .entries
            .iter()
            .map(|e| match &e.change {
                crate::wire::WireChange::Points { count, .. } => *count as u64,
                _ => 0,
            })
            .sum();
        // Overlap: fetch the next page while this one is applied.
        if !caught_up {
            prefetch = Some(fetch(request(Some(page.cursor.clone()), Duration::ZERO)));
        }
        let advanced = cursor.as_deref() != Some(page.cursor.as_str());
        if advanced || !page.entries.is_empty() {
            let started = Instant::now();
            let outcome = spec
                .target
                .apply(ApplyRequest { name: name.clone(), cursor: page.cursor.clone(), entries: page.entries })
                .await;
            let outcome = match outcome {
                Ok(o) => o,
                Err(e) => {
                    if let Some(task) = prefetch.take() {
                        task.abort();
                    }
                    return Err(e.into());
                }
            };
            let seconds = started.elapsed().as_secs_f64();
            handle.update(|s| {
                s.applied_changes += outcome.applied;
                s.applied_points += outcome.points_added + outcome.points_replaced;
                s.pages += 1;
                if points > 0 && seconds > 0.0 {
                    s.points_per_second = points as f64 / seconds;
                }
            });
        }
        cursor = Some(page.cursor);
        let lag_changes = page.head.saturating_sub(page_seq);
        let lag_seconds = if lag_changes == 0 {
            0.0
        } else {
            last_millis.map_or(0.0, |m| (page.head_millis - m).max(0) as f64 / 1000.0)
        };
        handle.update(|s| {
            s.cursor.clone_from(&cursor);
            s.lag_changes = lag_changes;
            s.lag_seconds = lag_seconds;
            s.failures = 0;
            s.state = if caught_up { State::Following } else { State::Copying };
        });
        if caught_up && !spec.continuous {
            return Ok(());
        }
    }
}
