//! The exposure workflow over HTTP, and the background worker that runs its
//! batch (`polo_exposure` holds the rules; `docs/exposure.md` the whole).
//!
//! | route | who | answers |
//! |---|---|---|
//! | `GET`/`PUT /api/v1/admin/exposure` | admin | the exposure settings (off until enabled) |
//! | `PUT /api/v1/users/{name}/role` | admin, no token | gives or takes the health-authority role |
//! | `GET`/`POST /api/v1/exposure/cases` | health authority | cases; marks one |
//! | `POST /api/v1/exposure/cases/{id}/withdraw` | health authority | withdraws a case |
//! | `GET /api/v1/exposure/cases/{id}/contacts` | health authority | the case's contacts per window |
//! | `GET /api/v1/exposure/proposals` | health authority | proposed status changes |
//! | `POST /api/v1/exposure/proposals/{case}/{user}/decision` | health authority | approves or rejects one |
//! | `GET /api/v1/exposure/audit` | health authority | the audit log |
//! | `GET /api/v1/exposure/windows` | health authority | the batch's windows and queue |
//! | `GET /api/v1/exposure/status` | the user | their own status and signed code (precomputed, `ETag`) |
//! | `GET /api/v1/exposure/public-key` | anyone | the instance's Ed25519 public key |
//! | `POST /api/v1/exposure/verify` | anyone | checks a code |
//!
//! Only the health authority sees anyone else's encounters; a user sees
//! their own status and nothing of why. While the feature is off every
//! `/api/v1/exposure/` route answers 404 `exposure_disabled`.
//!
//! **The worker** is a thread like the timeline worker: while the feature
//! is on it takes the store's lease [`LEASE`] (one node runs the batch when
//! several share a store; another takes over when it dies), and every
//! [`POLL_INTERVAL`] or when poked (a case marked, settings changed) runs
//! [`polo_exposure::batch::step`]. Statuses are refreshed and retention
//! applied every [`REFRESH_INTERVAL`] and after a poke (retention also while
//! the feature is off: turning it off does not keep data longer). Users whose status
//! changed get an `exposure` event on their live stream, and every row the
//! step wrote leaves the read path's [`cache`]. Every node, lease
//! or not, reads the queue's depth and age from the store for `/metrics`,
//! and its copy of the settings, so a change made through another node
//! reaches it within a poll.

mod admin;
mod authority;
pub mod cache;
mod cases;
mod decisions;
mod status;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError, RwLock};
use std::time::{Duration, Instant};

use polo_exposure::settings::Settings;
use polo_exposure::signing::Signer;
use polo_exposure::{ExposureError, batch, windows};
use polo_store::Store;
use utoipa_axum::router::OpenApiRouter;

use self::cache::StatusCache;
use crate::AppState;
use crate::error::ApiError;
use crate::live::LiveFeed;
use crate::metrics::Metrics;

/// The name of the batch's lease in the store.
pub const LEASE: &str = "exposure";
/// How long the lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(60);
/// How often the worker looks for late points and queued windows.
pub const POLL_INTERVAL: Duration = Duration::from_secs(2);
/// How often statuses are renewed and retention applied without a poke.
pub const REFRESH_INTERVAL: Duration = Duration::from_secs(60);
/// The most windows one step computes before it looks at the lease again.
const WINDOWS_PER_STEP: usize = 16;

/// The 404 every exposure route answers while the feature is off.
#[must_use]
pub fn disabled() -> ApiError {
    ApiError::exposure_disabled()
}

impl From<ExposureError> for ApiError {
    fn from(e: ExposureError) -> Self {
        match e {
            ExposureError::Store(e) => e.into(),
            ExposureError::Invalid(m) => ApiError::bad_request(m),
            ExposureError::NotFound(m) => ApiError::not_found(format!("{m} not found")),
            ExposureError::Conflict(m) => ApiError::conflict(m),
            other => ApiError::internal(other.to_string()),
        }
    }
}

struct Shared {
    store: Arc<dyn Store>,
    holder: String,
    live: LiveFeed,
    metrics: Metrics,
    settings: RwLock<Settings>,
    signer: OnceLock<Arc<Signer>>,
    statuses: StatusCache,
    poked: Mutex<bool>,
    wake: Condvar,
    stop: AtomicBool,
    failure: Mutex<Option<String>>,
}

/// The exposure side of the server: its settings as last read, the signing
/// key, and the worker. Dropping the last clone stops the worker.
#[derive(Clone)]
pub struct Exposure {
    shared: Arc<Shared>,
    _worker: Arc<StopOnDrop>,
}

struct StopOnDrop(Arc<Shared>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        *self.0.poked.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.0.wake.notify_one();
    }
}

impl std::fmt::Debug for Exposure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exposure").field("settings", &self.settings()).finish_non_exhaustive()
    }
}

impl Exposure {
    /// Starts the worker; `holder` is this node's id.
    ///
    /// # Errors
    /// When the thread cannot be spawned.
    pub fn start(store: Arc<dyn Store>, holder: &str, live: LiveFeed, metrics: Metrics) -> std::io::Result<Self> {
        // Another node may write a row this one never hears of: entries then expire (see `cache`).
        let ttl = store.is_shared().then_some(cache::SHARED_TTL);
        let shared = Arc::new(Shared {
            statuses: StatusCache::new(ttl),
            store,
            holder: holder.to_owned(),
            live,
            metrics,
            settings: RwLock::new(Settings::default()),
            signer: OnceLock::new(),
            poked: Mutex::new(false),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
        });
        let worker = shared.clone();
        std::thread::Builder::new().name("polo-exposure".into()).spawn(move || run(&worker))?;
        Ok(Self { _worker: Arc::new(StopOnDrop(shared.clone())), shared })
    }

    /// The settings as last read from the store.
    #[must_use]
    pub fn settings(&self) -> Settings {
        *self.shared.settings.read().unwrap_or_else(PoisonError::into_inner)
    }

    /// Re-reads the settings from the store (after a change) and pokes the worker.
    ///
    /// # Errors
    /// Store failures and unusable stored values.
    pub fn reload(&self) -> Result<Settings, ExposureError> {
        let settings = read_settings(&*self.shared.store)?;
        *self.shared.settings.write().unwrap_or_else(PoisonError::into_inner) = settings;
        self.poke();
        Ok(settings)
    }

    /// The settings, or the `exposure_disabled` answer while the feature is off.
    ///
    /// # Errors
    /// [`disabled`].
    pub fn enabled(&self) -> Result<Settings, ApiError> {
        let settings = self.settings();
        if settings.enabled { Ok(settings) } else { Err(disabled()) }
    }

    /// The instance's signing key (made on first use). Blocks: call it on a blocking thread.
    ///
    /// # Errors
    /// Store failures, a damaged key.
    pub fn signer(&self) -> Result<Arc<Signer>, ExposureError> {
        signer(&self.shared)
    }

    /// The read path's cache of status answers.
    #[must_use]
    pub fn statuses(&self) -> &StatusCache {
        &self.shared.statuses
    }

    /// Asks the worker to run now.
    pub fn poke(&self) {
        *self.shared.poked.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.shared.wake.notify_one();
    }

    /// Why the last step failed, while it keeps failing.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

fn read_settings(store: &dyn Store) -> Result<Settings, ExposureError> {
    Settings::from_instance(&store.instance_settings()?)
}

fn signer(shared: &Shared) -> Result<Arc<Signer>, ExposureError> {
    if let Some(signer) = shared.signer.get() {
        return Ok(signer.clone());
    }
    let signer = Arc::new(Signer::load_or_create(&*shared.store, polo_store::clock::now())?);
    Ok(shared.signer.get_or_init(|| signer).clone())
}

/// One turn of the worker: `Ok(true)` when it ran a step that did something.
fn turn(
    shared: &Shared,
    renewed: &mut Option<Instant>,
    refreshed: &mut Option<Instant>,
    poked: bool,
) -> Result<bool, String> {
    let store = &*shared.store;
    let settings = read_settings(store).map_err(|e| e.to_string())?;
    *shared.settings.write().unwrap_or_else(PoisonError::into_inner) = settings;
    let stats = windows::queue_stats(store).map_err(|e| e.to_string())?;
    shared.metrics.set_exposure_queue(stats.depth, stats.oldest_queued_at);
    if !settings.enabled {
        if renewed.take().is_some() {
            let _ = store.release_lease(LEASE, &shared.holder);
        }
        // Turned off, what was stored still ages out (deletes by age are idempotent: any node may).
        if refreshed.is_none_or(|at| at.elapsed() >= REFRESH_INTERVAL) {
            polo_exposure::retention::purge(store, &settings, polo_store::clock::now()).map_err(|e| e.to_string())?;
            *refreshed = Some(Instant::now());
        }
        return Ok(false);
    }
    if renewed.is_none_or(|at| at.elapsed() >= LEASE_TTL / 2) {
        let at = Instant::now();
        let held = store.try_lease(LEASE, &shared.holder, LEASE_TTL).map_err(|e| e.to_string())?;
        if held && renewed.is_none() {
            tracing::info!(node = %shared.holder, "this node now runs the exposure batch");
        }
        *renewed = held.then_some(at);
        if !held {
            return Ok(false);
        }
    }
    let refresh = poked || refreshed.is_none_or(|at| at.elapsed() >= REFRESH_INTERVAL);
    let signer = signer(shared).map_err(|e| e.to_string())?;
    let now = polo_store::clock::now();
    let step = batch::step(store, &signer, &settings, now, WINDOWS_PER_STEP, refresh).map_err(|e| e.to_string())?;
    if refresh {
        *refreshed = Some(Instant::now());
    }
    shared.statuses.forget(&step.statuses_written);
    for user in &step.notify {
        shared.live.exposure_changed(*user);
    }
    let busy = step.windows > 0 || step.planned.enqueued + step.planned.requeued > 0;
    if busy {
        tracing::info!(
            windows = step.windows,
            points = step.points,
            changed_pairs = step.changed_pairs,
            notified = step.notify.len(),
            enqueued = step.planned.enqueued,
            requeued = step.planned.requeued,
            "exposure batch ran"
        );
        let stats = windows::queue_stats(store).map_err(|e| e.to_string())?;
        shared.metrics.set_exposure_queue(stats.depth, stats.oldest_queued_at);
    }
    Ok(step.windows == WINDOWS_PER_STEP)
}

fn run(shared: &Shared) {
    let (mut renewed, mut refreshed) = (None, None);
    let mut poked = true;
    while !shared.stop.load(Ordering::Relaxed) {
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            turn(shared, &mut renewed, &mut refreshed, poked)
        }))
        .unwrap_or_else(|_| Err("the exposure batch panicked (a bug in polo; please report it)".to_owned()));
        let more = match outcome {
            Ok(more) => {
                *shared.failure.lock().unwrap_or_else(PoisonError::into_inner) = None;
                more
            }
            Err(error) => {
                tracing::error!(%error, "the exposure batch failed; retrying");
                *shared.failure.lock().unwrap_or_else(PoisonError::into_inner) = Some(error);
                false
            }
        };
        if more {
            poked = false;
            continue; // a backlog of windows
        }
        let guard = shared.poked.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut guard, _) =
            shared.wake.wait_timeout_while(guard, POLL_INTERVAL, |p| !*p).unwrap_or_else(PoisonError::into_inner);
        poked = std::mem::take(&mut *guard);
    }
    if renewed.is_some() {
        let _ = shared.store.release_lease(LEASE, &shared.holder);
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    admin::routes().merge(cases::routes()).merge(decisions::routes()).merge(status::routes())
}
