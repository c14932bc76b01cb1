//! The retention job and its settings route (`GET|PUT /api/v1/retention`).
//!
//! Every hour (and a minute after start) the job thins each user's raw
//! points older than their policy's `thin_after_days` to the first point of
//! every `keep_one_every_s` ([`polo_derived::retention`]), a month at a time
//! so no write holds the store for long. Each step is a thinning tombstone
//! (`Store::delete_selection` with `keep_one_every_ms`): it replicates, and
//! the timeline engine recomputes the thinned days from the points kept,
//! which still show every visit and trip. A per-user cursor (local, a
//! derived cursor named after the user and the slot length) remembers how
//! far the history is thinned, so a run only reads what newly became old.
//!
//! Safe for several nodes: the thinning is a function of the points, so
//! nodes that replicate each other and each run the job reach the same
//! points, and a thinning that finds nothing to remove writes nothing.
//! Points imported again into a range already thinned are stored (a
//! thinning buries nothing, since which point of a slot is "the first"
//! depends on what else is stored); runs continue from the cursor, so such a
//! re-import stays at full resolution until the policy's slot length changes
//! (a new slot length thins the whole history again).
//!
//! Several nodes on one store run it once per interval between them: a run
//! first takes the store's lease [`LEASE`] for the interval and is skipped
//! by the nodes that do not get it (the lease is not given back, so the
//! other nodes' timers, started at other times, find it held until the next
//! interval is due).

use std::ops::ControlFlow;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use polo_derived::DerivedError;
use polo_derived::retention::{self, Retention};
use polo_domain::{Seq, Timestamp, UserId};
use polo_store::{PointQuery, PointSelection, Store};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, JsonBodyErrors};
use crate::query::derived::blocking;

/// How often the job runs.
pub const INTERVAL: Duration = Duration::from_secs(3_600);
/// The first run after start.
const FIRST_RUN: Duration = Duration::from_secs(60);
/// The name of the lease a run takes, so that one node per interval runs.
pub const LEASE: &str = "retention";
/// The longest range one thinning write covers.
const STEP_MS: i64 = 30 * 86_400_000;

/// What one run did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct RetentionRun {
    /// Users whose policy thins.
    pub users: u64,
    /// Points removed.
    pub deleted: u64,
}

/// The time of the user's oldest point, if any.
fn earliest(store: &dyn Store, user: UserId) -> Result<Option<Timestamp>, DerivedError> {
    let mut oldest: Option<Timestamp> = None;
    for device in store.list_devices(user)? {
        let query = PointQuery { user, device: Some(device.id), from: None, to: None };
        store.scan_points(&query, &mut |p| {
            oldest = Some(oldest.map_or(p.fix.time, |o| o.min(p.fix.time)));
            ControlFlow::Break(())
        })?;
    }
    Ok(oldest)
}

/// Thins what `user`'s policy asks for, up to `now`.
///
/// # Errors
/// Store failures and a damaged policy row.
pub fn run_for_user(store: &dyn Store, user: UserId, now: Timestamp) -> Result<Option<u64>, DerivedError> {
    let policy = retention::get(store, user)?;
    let Some(cutoff) = policy.cutoff(now) else { return Ok(None) };
    let slot = policy.slot_ms();
    let cursor = format!("retention:{}:{slot}", user.0);
    let done = store.derived_cursor(&cursor)?.0;
    let start =
        if done == 0 { earliest(store, user)? } else { Some(Timestamp(i64::try_from(done).unwrap_or(i64::MAX))) };
    let Some(start) = start else { return Ok(Some(0)) };
    let mut from = Timestamp(start.0.div_euclid(slot) * slot);
    let mut deleted = 0;
    while from < cutoff {
        let to = Timestamp(from.0.saturating_add(STEP_MS).min(cutoff.0));
        let selection = PointSelection {
            query: PointQuery { user, device: None, from: Some(from), to: Some(to) },
            area: None,
            keep_one_every_ms: Some(slot),
        };
        deleted += store.delete_selection(&selection)?.deleted;
        store.set_derived_cursor(&cursor, Seq(u64::try_from(to.0).unwrap_or(0).max(1)))?;
        from = to;
    }
    Ok(Some(deleted))
}

/// Runs every user's policy up to `now`.
///
/// # Errors
/// The first failure; users before it are thinned.
pub fn run_once(store: &dyn Store, now: Timestamp) -> Result<RetentionRun, DerivedError> {
    let mut run = RetentionRun::default();
    for user in store.list_users()? {
        if let Some(deleted) = run_for_user(store, user.id, now)? {
            run.users += 1;
            run.deleted += deleted;
        }
    }
    Ok(run)
}

fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// The running job. Dropping it without [`RetentionJob::shutdown`] also stops it.
#[derive(Debug)]
pub struct RetentionJob {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl RetentionJob {
    /// Starts the job on the current tokio runtime.
    #[must_use]
    pub fn start(state: &AppState) -> Self {
        let (stop, mut stopped) = watch::channel(false);
        let (store, timeline, node) = (state.store.clone(), state.timeline.clone(), state.node.clone());
        let handle = tokio::spawn(async move {
            let mut pause = FIRST_RUN;
            loop {
                tokio::select! {
                    biased;
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(pause) => {}
                }
                pause = INTERVAL;
                let (store, node) = (store.clone(), node.clone());
                let run = move || {
                    // A little under the interval, so this node's next run finds it expired.
                    if store.try_lease(LEASE, &node, INTERVAL - FIRST_RUN)? {
                        // The security audit log's retention rides along (crate::audit::purge).
                        crate::audit::purge(&*store, now())?;
                        run_once(&*store, now())
                    } else {
                        Ok(RetentionRun::default()) // another node ran it this interval
                    }
                };
                match tokio::task::spawn_blocking(run).await {
                    Ok(Ok(run)) if run.deleted > 0 => {
                        tracing::info!(users = run.users, deleted = run.deleted, "retention thinned old points");
                        timeline.poke();
                    }
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "the retention job failed; it runs again in an hour"),
                    Err(e) => tracing::warn!(error = %e, "the retention job ended abnormally"),
                }
            }
        });
        Self { stop, handle }
    }

    /// Stops the job and waits for it (a thinning step in progress commits or not at all).
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        let _ = self.handle.await;
    }
}

/// Your retention policy for raw points.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RetentionPolicy {
    /// Thin raw points older than this many days (30 to 36500); `null`: keep every point.
    #[schema(example = 730, minimum = 30, maximum = 36500)]
    thin_after_days: Option<u32>,
    /// Of those, keep the first point of every slot of this many seconds (1 to 3600; default 60).
    #[schema(example = 60, minimum = 1, maximum = 3600)]
    #[serde(default = "default_slot")]
    keep_one_every_s: u32,
}

fn default_slot() -> u32 {
    Retention::default().keep_one_every_s
}

impl From<Retention> for RetentionPolicy {
    fn from(r: Retention) -> Self {
        Self { thin_after_days: r.thin_after_days, keep_one_every_s: r.keep_one_every_s }
    }
}

/// Your retention policy (by default every point is kept).
#[utoipa::path(
    get,
    path = "/api/v1/retention",
    tag = "timeline",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = RetentionPolicy), AuthErrors)
)]
pub(crate) async fn get_policy(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<RetentionPolicy>, ApiError> {
    let store = state.store.clone();
    blocking(move || Ok(Json(retention::get(&*store, caller.user.id)?.into()))).await
}

/// Sets your retention policy: raw points older than `thin_after_days` are thinned to one every
/// `keep_one_every_s` by the hourly retention job (a thinning replicates; the timeline of those
/// days is recomputed from the points kept and keeps its visits and trips).
#[utoipa::path(
    put,
    path = "/api/v1/retention",
    tag = "timeline",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = RetentionPolicy,
    responses((status = 200, body = RetentionPolicy), BadRequest, JsonBodyErrors, CsrfFailed, AuthErrors)
)]
pub(crate) async fn put_policy(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<RetentionPolicy>, JsonRejection>,
) -> Result<Json<RetentionPolicy>, ApiError> {
    let Json(body) = body?;
    let policy = Retention { thin_after_days: body.thin_after_days, keep_one_every_s: body.keep_one_every_s };
    let store = state.store.clone();
    blocking(move || {
        retention::set(&*store, caller.user.id, &policy)?;
        Ok(Json(policy.into()))
    })
    .await
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(get_policy, put_policy))
}
