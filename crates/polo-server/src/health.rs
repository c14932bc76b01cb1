//! Liveness and readiness probes.
//!
//! `/healthz` answers as long as the process serves HTTP. `/readyz` also
//! checks that the store answers (and, since stores migrate when opened,
//! that migrations are done), which is what a load balancer or an
//! orchestrator should gate traffic on.
//!
//! Ready also means ready to store: while the store's writes fail for lack
//! of space ([`polo_store::Store::check_writable`]: the last write failed
//! and the disk is still full) `/readyz` answers 503 with reason `disk full`,
//! and 200 again as soon as there is room, even before the next write. Live
//! ingest answers 503 meanwhile, so phones keep their points and resend.
//!
//! Ready means ready to answer queries: the derived timeline lives in the
//! store next to the points, so a store restored from a backup is ready as
//! soon as it opens, with no rebuild phase. `/readyz` also names the store's
//! epoch, which changes when the instance is restored from a backup, so an
//! operator can see which history an instance serves. It does not show the
//! change sequence: anyone who can reach `/readyz` could watch it grow and
//! learn when the user's devices send points.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(healthz)).routes(routes!(readyz))
}

/// `/healthz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Liveness {
    /// Always `ok`.
    #[schema(example = "ok")]
    status: &'static str,
    /// The server's version.
    #[schema(example = "0.1.0")]
    version: &'static str,
}

/// `/readyz`'s answer.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Readiness {
    /// `ready`, or `unavailable` (with 503).
    #[schema(example = "ready")]
    status: &'static str,
    /// The store's epoch (32 hex digits), when ready: replaced whenever the
    /// instance is restored from a backup.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "5f0c1e9a8b7d6c5e4f3a2b1c0d9e8f7a")]
    epoch: Option<String>,
    /// Why the server is not ready.
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<String>,
}

/// Liveness: answers while the process serves HTTP.
#[utoipa::path(get, path = "/healthz", tag = "health", responses((status = 200, body = Liveness)))]
async fn healthz() -> Json<Liveness> {
    Json(Liveness { status: "ok", version: env!("CARGO_PKG_VERSION") })
}

/// Readiness: the store answers, is migrated (the stored timeline comes with it) and can be written.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "health",
    responses(
        (status = 200, description = "Ready for traffic", body = Readiness),
        (status = 503, description = "The store does not answer, or its disk is full", body = Readiness),
    )
)]
async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Readiness>) {
    let store = state.store.clone();
    let checked = tokio::task::spawn_blocking(move || {
        store.ping()?;
        store.check_writable()?;
        store.epoch()
    })
    .await;
    let reason = match checked {
        Ok(Ok(epoch)) => {
            return (StatusCode::OK, Json(Readiness { status: "ready", epoch: Some(epoch), reason: None }));
        }
        // The full error names the store's path: logged, not shown to whoever can reach `/readyz`.
        Ok(Err(e)) if e.is_disk_full() => {
            tracing::warn!(error = %e, "not ready: the store cannot be written");
            "disk full: the store cannot be written".to_owned()
        }
        Ok(Err(e)) => e.to_string(),
        Err(e) => e.to_string(),
    };
    (StatusCode::SERVICE_UNAVAILABLE, Json(Readiness { status: "unavailable", epoch: None, reason: Some(reason) }))
}
