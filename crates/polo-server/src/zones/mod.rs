//! Zones on the server: every stored point is evaluated against its
//! owner's zones, what happens goes to the event log, and webhooks carry it
//! out (issue 19).
//!
//! * [`worker`] — the evaluation thread. It follows the store's change log,
//!   like the timeline worker, so HTTP, MQTT and batch ingest, HTTP imports
//!   and `polo import` are all seen the same way and nothing is missed across
//!   a restart: the log is durable and its cursor moves only after a step
//!   committed. One node evaluates (lease [`worker::LEASE`]).
//! * [`moves`] — visit and trip events from the timeline engine's newest
//!   stays and legs, logged and sent like zone events (same thread, lease
//!   and transaction), never for old data.
//! * [`nearby`] — `friend.nearby` and `friend.away`: a device against its
//!   friends' newest positions, with the user's two distances.
//! * [`deliver`] — the webhook sender: it takes due deliveries from the
//!   store's outbox, signs and sends them, and records each attempt; one node
//!   sends (lease [`deliver::LEASE`]).
//! * [`routes`] — `/api/v1/zones`, `/api/v1/events`, `/api/v1/webhooks`.
//! * [`regions`] — OwnTracks regions: the apps' `waypoint`s as zones, their
//!   `transition`s as `app.*` events, and zones back as `setWaypoints`.
//!
//! The event log is also a stream (`GET /api/v1/stream`, [`crate::stream`]).
//!
//! The semantics (accuracy, dwell, confirmation, cooldown, order) are
//! `polo-zones`'; see `docs/zones.md`.

pub mod deliver;
pub mod moves;
pub mod nearby;
pub mod regions;
pub mod routes;
pub mod worker;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError, RwLock};
use std::time::Duration;

use polo_domain::Timestamp;
use polo_store::Store;
use polo_zones::WatchRules;
use polo_zones::webhook::RetryPolicy;

/// How zones are evaluated and webhooks retried (`polo serve` flags).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZoneSettings {
    /// Fixes wait this long (by the clock) before they are evaluated, so
    /// that fixes arriving out of order within it are taken in time order;
    /// fixes that arrive later than this give past events only.
    pub reorder_window: Duration,
    /// Battery, silence and accuracy thresholds.
    pub watch: WatchRules,
    /// Events older than this when they are derived (a history import,
    /// late fixes) are logged as past and sent to no one.
    pub notify_max_age: Duration,
    /// Webhook retries.
    pub retry: RetryPolicy,
}

impl Default for ZoneSettings {
    fn default() -> Self {
        Self {
            reorder_window: Duration::from_secs(30),
            watch: WatchRules::default(),
            notify_max_age: Duration::from_secs(3_600),
            retry: RetryPolicy::default(),
        }
    }
}

/// A sleeping thread's wake-up call.
#[derive(Default)]
pub(crate) struct Bell {
    rung: Mutex<bool>,
    wake: Condvar,
}

impl Bell {
    pub(crate) fn ring(&self) {
        *self.rung.lock().unwrap_or_else(PoisonError::into_inner) = true;
        self.wake.notify_all();
    }

    /// Waits until rung or `timeout`, or `stop` is set.
    pub(crate) fn wait(&self, timeout: Duration, stop: &AtomicBool) {
        let rung = self.rung.lock().unwrap_or_else(PoisonError::into_inner);
        let mut rung = self
            .wake
            .wait_timeout_while(rung, timeout, |r| !*r && !stop.load(Ordering::Relaxed))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
        *rung = false;
    }
}

pub(crate) struct Shared {
    pub(crate) store: Arc<dyn Store>,
    /// This node's id, the leases' holder.
    pub(crate) holder: String,
    pub(crate) settings: RwLock<ZoneSettings>,
    /// Zones changed through this node: reload the index now.
    pub(crate) zones_changed: AtomicBool,
    pub(crate) evaluate: Bell,
    pub(crate) deliver: Bell,
    pub(crate) stop: AtomicBool,
    /// Why the last evaluation step failed, until one succeeds.
    pub(crate) failure: Mutex<Option<String>>,
    /// What was sent to the OwnTracks apps.
    pub(crate) regions: regions::RegionMemory,
    /// Logged events for the MQTT broker.
    pub(crate) mqtt: crate::mqtt_out::MqttOutbox,
}

impl Shared {
    pub(crate) fn settings(&self) -> ZoneSettings {
        *self.settings.read().unwrap_or_else(PoisonError::into_inner)
    }
}

/// The zone evaluation and webhook threads; dropping the last clone stops them.
#[derive(Clone)]
pub struct Zones {
    shared: Arc<Shared>,
    _threads: Arc<Threads>,
}

struct Threads(Arc<Shared>);

impl Drop for Threads {
    fn drop(&mut self) {
        self.0.stop.store(true, Ordering::Relaxed);
        self.0.evaluate.ring();
        self.0.deliver.ring();
    }
}

impl std::fmt::Debug for Zones {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Zones").finish_non_exhaustive()
    }
}

impl Zones {
    /// Starts the evaluation and delivery threads for node `holder`; logged
    /// events go to `mqtt` too.
    ///
    /// # Errors
    /// When a thread cannot be spawned.
    pub fn start(store: Arc<dyn Store>, holder: &str, mqtt: crate::mqtt_out::MqttOutbox) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            store,
            holder: holder.to_owned(),
            settings: RwLock::new(ZoneSettings::default()),
            zones_changed: AtomicBool::new(true),
            evaluate: Bell::default(),
            deliver: Bell::default(),
            stop: AtomicBool::new(false),
            failure: Mutex::new(None),
            regions: regions::RegionMemory::default(),
            mqtt,
        });
        let w = shared.clone();
        std::thread::Builder::new().name("polo-zones".into()).spawn(move || worker::run(&w))?;
        let d = shared.clone();
        std::thread::Builder::new().name("polo-webhooks".into()).spawn(move || deliver::run(&d))?;
        Ok(Self { _threads: Arc::new(Threads(shared.clone())), shared })
    }

    /// Replaces the settings (they apply from the next step).
    pub fn configure(&self, settings: ZoneSettings) {
        *self.shared.settings.write().unwrap_or_else(PoisonError::into_inner) = settings;
        self.shared.evaluate.ring();
    }

    /// The settings in force.
    #[must_use]
    pub fn settings(&self) -> ZoneSettings {
        self.shared.settings()
    }

    /// A zone was created, changed or deleted through this node.
    pub fn zones_changed(&self) {
        self.shared.zones_changed.store(true, Ordering::Relaxed);
        self.shared.regions.forget_commands();
        self.shared.evaluate.ring();
    }

    /// Why evaluation is stuck, while its last step failed.
    #[must_use]
    pub fn failure(&self) -> Option<String> {
        self.shared.failure.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }
}

pub(crate) fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Holds or renews `lease` for `holder` when due: `Ok(true)` while held.
///
/// A store only one server serves (SQLite) needs no lease, and taking one
/// would make a server restarted after a crash wait for its own dead
/// predecessor's lease to expire before it evaluates or sends anything.
pub(crate) fn hold_lease(
    store: &dyn Store,
    lease: &str,
    holder: &str,
    ttl: Duration,
    renewed: &mut Option<std::time::Instant>,
) -> Result<bool, String> {
    if !store.is_shared() {
        return Ok(true);
    }
    if renewed.is_some_and(|at| at.elapsed() < ttl / 2) {
        return Ok(true);
    }
    let at = std::time::Instant::now();
    let held = store.try_lease(lease, holder, ttl).map_err(|e| e.to_string())?;
    match (held, renewed.is_some()) {
        (true, false) => tracing::info!(node = %holder, lease, "this node took the lease"),
        (false, true) => tracing::warn!(node = %holder, lease, "another node took the lease over"),
        _ => {}
    }
    *renewed = held.then_some(at);
    Ok(held)
}
