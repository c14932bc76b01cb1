//! The background thread that keeps the derived timeline current.
//!
//! It runs [`polo_derived::Engine::catch_up`] until the change log is
//! consumed, then sleeps until poked or for [`POLL_INTERVAL`] ([`SETTLE`]
//! after a step that found changes), so points from any source (live
//! ingest, HTTP imports, a `polo import` run by another process on the same
//! data directory) reach the day views within two or three seconds, and a
//! stream of writes is folded into one recomputation per device every
//! [`SETTLE`]. A step that mostly re-read unchanged points (a phone
//! appending to a long day re-reads that day for its map rows) is followed
//! by a rest in proportion to its length, so the worker's share of the CPU
//! stays bounded as the day fills instead of growing with it and slowing
//! live ingest. It never runs on a request's path: ingest only appends to
//! the change log. A failure is logged and retried after a back-off that
//! doubles from [`RETRY_AFTER`] to [`RETRY_AT_MOST`]; the engine's cursor
//! only moves when a step succeeded. A panic in a step (a bug) is caught and
//! treated as a failure, so the thread never dies and takes the timeline
//! with it; until a step succeeds again, [`TimelineWorker::failure`] says
//! what went wrong (`GET /api/v1/timeline/progress` shows it).
//!
//! **Several nodes.** When several `polo serve` nodes share one store, only
//! the node holding the store's lease [`LEASE`] takes steps; the others look
//! for it every [`LEASE_RETRY`]. The holder renews it when half of
//! [`LEASE_TTL`] has passed; a node that dies stops renewing, and another
//! takes the work over once the lease expired, from the cursor in the
//! store. One lease for the whole worker rather than one per user: the
//! engine walks one change log with one cursor, and a step folds many
//! users' changes into one pass, so splitting it per user would need a
//! cursor per user and would re-read the log once per user. The work per
//! instance is small next to ingest, which every node does. A step that
//! outlasts the lease may be taken up by another node as well; steps are
//! recomputations of whole windows from the stored points, so doing one twice
//! is wasted work, never wrong data. A stopping node gives its lease up.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

use polo_derived::Engine;

/// How often the worker looks for changes made without a poke.
pub const POLL_INTERVAL: Duration = Duration::from_millis(500);
/// How long it lets writes accumulate after a step that found some, so
/// that under sustained ingest a device's window (and today's map rows) is
/// recomputed every couple of seconds rather than after every commit: the
/// recomputation re-reads the day, so doing it per commit would take the
/// CPU the ingest path needs.
pub const SETTLE: Duration = Duration::from_secs(2);
/// How long it waits after a failed step.
const RETRY_AFTER: Duration = Duration::from_secs(5);
/// The longest wait between retries of a step that keeps failing.
const RETRY_AT_MOST: Duration = Duration::from_secs(300);
/// A step that read more than this many points per changed point was mostly
/// re-reading (a live phone's points re-read their whole day; a backlog of
/// imported points is read about once).
const REREAD: u64 = 4;
/// After such a step the worker rests this many times as long as the step
/// took, so however large the day being appended to, the worker takes at most
/// a quarter of a core from live ingest; the day views then lag by a few
/// seconds more instead of ingest slowing down as the day fills.
const REST_PER_BUSY: u32 = 3;
/// The name of the worker's lease in the store.
pub const LEASE: &str = "timeline";
/// How long the lease lasts unless renewed: how long the timeline waits
/// when the node holding it dies.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How often a node without the lease tries to take it.
pub const LEASE_RETRY: Duration = Duration::from_secs(1);

/// How long to wait after a step that found changes and took `busy`, and
/// whether to go on at once (a backlog read about once).
fn pause_after(step: &polo_derived::engine::CatchUp, busy: Duration) -> Option<Duration> {
    let rereading = step.points_read > step.points_changed.saturating_mul(REREAD);
    if step.changes == polo_derived::engine::BATCH && !rereading {
        return None; // a backlog (an import, a start after an upgrade): keep going
    }
    Some(if rereading { SETTLE.max(busy * REST_PER_BUSY) } else { SETTLE })
}

struct Shared {
    engine: Arc<Engine>,
    /// This node's id, the lease's holder.
    holder: String,
    poked: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
    /// Why the last step failed; `None` once one succeeds.
    failure: Mutex<Option<String>>,
}

/// Owns the worker thread; dropping the last clone stops it.
pub struct TimelineWorker {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for TimelineWorker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TimelineWorker").finish_non_exhaustive()
    }
}

impl TimelineWorker {
    /// Starts the thread, which works while `holder` (this node's id)
    /// holds the store's [`LEASE`].
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(engine: Arc<Engine>, holder: &str) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            engine,
            holder: holder.to_owned(),
            poked: Mutex::new(false),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
        });
        let worker = shared.clone();
        std::thread::Builder::new().name("polo-timeline".into()).spawn(move || run(&worker))?;
        Ok(Self { shared })
    }

    /// The engine, for requests that edit derived data.
    #[must_use]
    pub fn engine(&self) -> &Arc<Engine> {
        &self.shared.engine
    }

    /// Why the timeline is not being brought up to date, while the last
    /// step failed.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Asks the worker to look for changes now.
    pub fn poke(&self) {
        *self.shared.poked.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_one();
    }
}

impl Drop for TimelineWorker {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        self.poke();
    }
}

/// Takes or renews the lease when due: `Ok(true)` while this node holds it.
fn hold_lease(shared: &Shared, renewed: &mut Option<std::time::Instant>) -> Result<bool, String> {
    if renewed.is_some_and(|at| at.elapsed() < LEASE_TTL / 2) {
        return Ok(true);
    }
    let at = std::time::Instant::now();
    let held = shared.engine.store().try_lease(LEASE, &shared.holder, LEASE_TTL).map_err(|e| e.to_string())?;
    match (held, renewed.is_some()) {
        (true, false) => tracing::info!(node = %shared.holder, "this node now keeps the timeline current"),
        (false, true) => tracing::warn!(node = %shared.holder, "another node took the timeline lease over"),
        _ => {}
    }
    *renewed = held.then_some(at);
    Ok(held)
}

fn run(shared: &Shared) {
    let mut retry = RETRY_AFTER;
    let mut renewed = None;
    while !shared.stop.load(Ordering::Relaxed) {
        match hold_lease(shared, &mut renewed) {
            Ok(true) => {}
            Ok(false) => {
                // Another node keeps the timeline: nothing went wrong here.
                *shared.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
                let poked = shared.poked.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = shared.wake.wait_timeout_while(poked, LEASE_RETRY, |_| !shared.stop.load(Ordering::Relaxed));
                continue;
            }
            Err(error) => {
                tracing::error!(%error, retry_in_s = retry.as_secs(), "cannot take the timeline lease; retrying");
                *shared.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                let poked = shared.poked.lock().unwrap_or_else(PoisonError::into_inner);
                let _ = shared.wake.wait_timeout_while(poked, retry, |_| !shared.stop.load(Ordering::Relaxed));
                retry = (retry * 2).min(RETRY_AT_MOST);
                continue;
            }
        }
        let started = std::time::Instant::now();
        let step = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| shared.engine.catch_up()))
            .map_err(|panic| panic_message(panic.as_ref()))
            .and_then(|step| step.map_err(|error| error.to_string()));
        let failed = step.as_ref().err().cloned();
        let pause = match step {
            Ok(step) if step.changes > 0 => {
                tracing::debug!(
                    changes = step.changes,
                    windows = step.windows,
                    points = step.points_read,
                    changed = step.points_changed,
                    cursor = step.cursor.0,
                    "timeline caught up"
                );
                match pause_after(&step, started.elapsed()) {
                    // A backlog (an import, a start after an upgrade): keep going.
                    None => {
                        *shared.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
                        retry = RETRY_AFTER;
                        continue;
                    }
                    Some(pause) => pause,
                }
            }
            Ok(_) => POLL_INTERVAL,
            Err(error) => {
                tracing::error!(%error, retry_in_s = retry.as_secs(), "timeline recomputation failed; retrying");
                let pause = retry;
                retry = (retry * 2).min(RETRY_AT_MOST);
                pause
            }
        };
        if failed.is_none() {
            retry = RETRY_AFTER;
        }
        *shared.failure.lock().unwrap_or_else(PoisonError::into_inner) = failed;
        let poked = shared.poked.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut poked, _) =
            shared.wake.wait_timeout_while(poked, pause, |poked| !*poked).unwrap_or_else(PoisonError::into_inner);
        *poked = false;
    }
    if renewed.is_some() {
        // Let another node take over at once rather than after the lease expires.
        if let Err(error) = shared.engine.store().release_lease(LEASE, &shared.holder) {
            tracing::warn!(%error, "could not give the timeline lease up; it expires by itself");
        }
    }
}

/// What a caught panic said.
fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| panic.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("no message");
    format!("the timeline computation panicked (a bug in polo; please report it): {text}")
}

#[cfg(test)]
mod tests {
    use polo_derived::engine::{BATCH, CatchUp};

    use super::*;

    #[test]
    fn a_backlog_goes_on_and_rereading_rests_in_proportion() {
        let step = |changes, points_read, points_changed| CatchUp {
            changes,
            points_read,
            points_changed,
            ..CatchUp::default()
        };
        let second = Duration::from_secs(1);
        // An import's backlog: every point read about once.
        assert_eq!(pause_after(&step(BATCH, 9_000, 8_000), second), None);
        // A live phone's day re-read for a few new points, however many changes queued.
        assert_eq!(pause_after(&step(BATCH, 90_000, 500), second), Some(3 * second));
        assert_eq!(pause_after(&step(20, 90_000, 20), Duration::from_millis(100)), Some(SETTLE));
        // A quiet step that read what changed.
        assert_eq!(pause_after(&step(3, 10, 10), second), Some(SETTLE));
    }

    #[test]
    fn a_caught_panic_says_what_it_said() {
        let text = std::panic::catch_unwind(|| panic!("attempt to subtract with overflow")).unwrap_err();
        assert!(panic_message(text.as_ref()).ends_with(": attempt to subtract with overflow"));
        let formatted = std::panic::catch_unwind(|| panic!("day {}", 7)).unwrap_err();
        assert!(panic_message(formatted.as_ref()).ends_with(": day 7"));
    }
}
