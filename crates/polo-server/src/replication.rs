//! Replication over HTTP under `/api/v1/replication`.
//!
//! * The peer routes (`info`, `changes`, `checkpoint`, `apply`) accept only
//!   a **replication token** (`polo replication-token create`), a role of
//!   its own: a user's password or device token cannot read every user's
//!   changes, and a replication token can do nothing else.
//! * The task routes show and steer the replications this server runs in
//!   the background (`[[replication]]` in the config), for admins inside
//!   the admin networks ([`AdminCaller`]).
//!
//! The feed long-polls: a caught-up peer waits up to `wait_ms` for the next
//! change instead of polling.
//!
//! `apply` streams: the body goes from the socket through a small channel
//! into [`polo_replication::apply_streaming`] on the blocking pool, which
//! decodes and applies it in groups as it arrives, so memory stays at one
//! group whatever the body's size (at most [`APPLY_BODY_LIMIT`] bytes).

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequestParts, Path, Query, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use polo_replication::{Control, FeedRequest, GroupLimits, Handle, PeerError, PeerInfo, Status, WireOutcome, WirePage};
use polo_store::{FeedFilter, ReplicationToken};
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::AdminCaller;
use crate::auth::secret::sha256;
use crate::error::{AdminForbidden, ApiError, AuthErrors, BadRequest, CsrfFailed, ErrorBody, JsonBodyErrors, NotFound};
use crate::query::derived::blocking;

/// The longest a feed request may wait for a change.
const MAX_WAIT: Duration = Duration::from_secs(60);
/// The most points a feed page may be asked to carry.
const MAX_PAGE_POINTS: usize = 200_000;
/// Apply bodies: a page of [`MAX_PAGE_POINTS`] points is about 5 MB of JSON;
/// the body is streamed, so this bounds the work of one request, not memory.
pub const APPLY_BODY_LIMIT: usize = 256 << 20;
/// Body pieces in flight between the socket and the applier.
const APPLY_CHANNEL_DEPTH: usize = 4;

/// The replications this server runs, by name.
#[derive(Debug, Clone, Default)]
pub struct Replications(Arc<Mutex<Vec<Handle>>>);

impl Replications {
    /// Registers a replication's handle.
    pub fn add(&self, handle: Handle) {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).push(handle);
    }

    /// Every replication's status.
    #[must_use]
    pub fn statuses(&self) -> Vec<Status> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().map(Handle::status).collect()
    }

    fn find(&self, name: &str) -> Option<Handle> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).iter().find(|h| h.status().name == name).cloned()
    }
}

/// A caller authenticated with a replication token.
#[derive(Debug, Clone)]
pub struct ReplicationPeer(pub ReplicationToken);

impl FromRequestParts<AppState> for ReplicationPeer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .ok_or_else(|| ApiError::unauthorized("send a replication token as `Authorization: Bearer <token>`"))?;
        let hash = sha256(token.as_bytes());
        let store = state.store.clone();
        match blocking(move || Ok(store.replication_token_by_hash(&hash)?)).await? {
            Some(token) => Ok(Self(token)),
            None => Err(ApiError::unauthorized("not a replication token of this instance (or it was revoked)")),
        }
    }
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(info))
        .routes(routes!(changes))
        .routes(routes!(checkpoint))
        .routes(routes!(apply))
        .routes(routes!(tasks))
        .routes(routes!(control))
}

/// This instance's identity and head, for a replicator.
#[utoipa::path(
    get,
    path = "/api/v1/replication/info",
    tag = "replication",
    security(("replication" = [])),
    responses((status = 200, body = Object, description = "`{instance, epoch, head, version, ancestors}`"), AuthErrors)
)]
pub(crate) async fn info(State(state): State<AppState>, _peer: ReplicationPeer) -> Result<Json<PeerInfo>, ApiError> {
    let store = state.store.clone();
    blocking(move || Ok(Json(PeerInfo::of(&*store)?))).await
}

/// `GET /api/v1/replication/changes`'s parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)] // Documents the parameters; they are parsed by hand, as `user` repeats.
pub(crate) struct ChangesParams {
    /// Continue after this cursor (`EPOCH:SEQ`, from the previous page);
    /// absent for the beginning.
    since: Option<String>,
    /// About how many points a page carries at most (default 50 000, at most 200 000).
    max_points: Option<usize>,
    /// When caught up, wait up to this many milliseconds for a change (default 0, at most 60 000).
    wait_ms: Option<u64>,
    /// Leave out changes that originated at this instance id (the asking peer's own).
    exclude_origin: Option<String>,
    /// Only this user's changes; repeat for several.
    #[param(value_type = Option<Vec<String>>)]
    user: Option<String>,
}

/// The change feed: every change in commit order, users and devices by
/// name, points as codec blocks, deletes as range tombstones.
#[utoipa::path(
    get,
    path = "/api/v1/replication/changes",
    tag = "replication",
    security(("replication" = [])),
    params(ChangesParams),
    responses((status = 200, body = Object, description = "A page: `{source, cursor, head, head_millis, rewound?, entries}`"), BadRequest, AuthErrors)
)]
pub(crate) async fn changes(
    State(state): State<AppState>,
    _peer: ReplicationPeer,
    params: Result<Query<Vec<(String, String)>>, QueryRejection>,
) -> Result<Json<WirePage>, ApiError> {
    let Query(pairs) = params?;
    let mut request = FeedRequest { max_points: polo_replication::task::DEFAULT_PAGE_POINTS, ..FeedRequest::default() };
    let mut filter = FeedFilter::default();
    for (key, value) in pairs {
        let number = |what: &str| {
            value.parse::<u64>().map_err(|_| ApiError::bad_request(format!("{what}: {value:?} is not a whole number")))
        };
        match key.as_str() {
            "since" => request.since = Some(value.clone()),
            "max_points" => request.max_points = (number("max_points")? as usize).clamp(1, MAX_PAGE_POINTS),
            "wait_ms" => request.wait = Duration::from_millis(number("wait_ms")?).min(MAX_WAIT),
            "exclude_origin" => filter.exclude_origin = Some(value.clone()),
            "user" => filter.users.push(value.clone()),
            other => return Err(ApiError::bad_request(format!("unknown parameter {other:?}"))),
        }
    }
    request.filter = filter;
    polo_replication::serve_page(state.store.clone(), request).await.map(Json).map_err(|e| match e {
        polo_replication::FeedError::BadCursor(m) => ApiError::bad_request(m),
        polo_replication::FeedError::Store(e) => e.into(),
    })
}

/// `GET /api/v1/replication/checkpoint`'s parameters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CheckpointParams {
    /// The checkpoint's name (the source's instance id, with `?users=…` for a filtered replication).
    name: String,
}

/// A recorded checkpoint.
#[derive(Debug, serde::Serialize, ToSchema)]
pub(crate) struct CheckpointBody {
    /// The name.
    name: String,
    /// `EPOCH:SEQ` of the source, or `null` when none is recorded.
    cursor: Option<String>,
}

/// How far this instance has applied a source's feed.
#[utoipa::path(
    get,
    path = "/api/v1/replication/checkpoint",
    tag = "replication",
    security(("replication" = [])),
    params(CheckpointParams),
    responses((status = 200, body = CheckpointBody), BadRequest, AuthErrors)
)]
pub(crate) async fn checkpoint(
    State(state): State<AppState>,
    _peer: ReplicationPeer,
    params: Result<Query<CheckpointParams>, QueryRejection>,
) -> Result<Json<CheckpointBody>, ApiError> {
    let Query(CheckpointParams { name }) = params?;
    let store = state.store.clone();
    blocking(move || {
        let cursor = store.replication_checkpoint(&name)?.map(|c| c.cursor());
        Ok(Json(CheckpointBody { name, cursor }))
    })
    .await
}

/// Applies a feed page and records its checkpoint, in one transaction.
/// Idempotent: a page applied twice changes nothing the second time.
#[utoipa::path(
    post,
    path = "/api/v1/replication/apply",
    tag = "replication",
    security(("replication" = [])),
    request_body(content = Object, description = "`{name, cursor, entries}`: the entries of a feed page and the cursor after them"),
    responses(
        (status = 200, body = Object, description = "What was applied: `{applied, skipped, points_added, points_replaced, points_deleted, points_suppressed}`"),
        (status = 413, description = "`payload_too_large`: over 256 MiB", body = ErrorBody),
        JsonBodyErrors,
        AuthErrors,
    )
)]
pub(crate) async fn apply(
    State(state): State<AppState>,
    _peer: ReplicationPeer,
    body: Body,
) -> Result<Json<WireOutcome>, ApiError> {
    let (sender, receiver) = tokio::sync::mpsc::channel(APPLY_CHANNEL_DEPTH);
    let pump = tokio::spawn(async move {
        let mut stream = body.into_data_stream();
        while let Some(piece) = futures_util::StreamExt::next(&mut stream).await {
            let failed = piece.is_err();
            if sender.send(piece.map_err(std::io::Error::other)).await.is_err() || failed {
                break;
            }
        }
    });
    let store = state.store.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut reader = BodyReader::new(receiver, APPLY_BODY_LIMIT);
        let outcome = polo_replication::apply_streaming(&*store, &mut reader, GroupLimits::default());
        (outcome, reader.over_limit)
    })
    .await;
    pump.abort();
    let (outcome, over_limit) = outcome?;
    if over_limit {
        return Err(ApiError::payload_too_large(format!(
            "the apply body is larger than {APPLY_BODY_LIMIT} bytes; the groups before that point were applied"
        )));
    }
    outcome.map(Json).map_err(|e| match e {
        PeerError::Protocol { message, .. } => ApiError::bad_request(message),
        other => {
            tracing::error!(error = %other, "replication apply failed");
            ApiError::unavailable("the store is unavailable; try again later")
        }
    })
}

/// The request body as a blocking [`Read`](std::io::Read) for the applier: pieces come from the
/// socket through a bounded channel; more than `limit` bytes is an error (and `over_limit`).
struct BodyReader {
    receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>,
    piece: Bytes,
    read: usize,
    limit: usize,
    over_limit: bool,
}

impl BodyReader {
    fn new(receiver: tokio::sync::mpsc::Receiver<Result<Bytes, std::io::Error>>, limit: usize) -> Self {
        Self { receiver, piece: Bytes::new(), read: 0, limit, over_limit: false }
    }
}

impl std::io::Read for BodyReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.piece.is_empty() {
            match self.receiver.blocking_recv() {
                Some(piece) => self.piece = piece?,
                None => return Ok(0),
            }
        }
        let n = self.piece.len().min(buf.len());
        self.read += n;
        if self.read > self.limit {
            self.over_limit = true;
            return Err(std::io::Error::other(format!("the body is over {} bytes", self.limit)));
        }
        buf[..n].copy_from_slice(&self.piece.split_to(n));
        Ok(n)
    }
}

/// The replications this server runs and how they are doing.
#[utoipa::path(
    get,
    path = "/api/v1/replication/tasks",
    tag = "replication",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = [Object], description = "`[{name, source, target, state, lag_changes, lag_seconds, points_per_second, last_error, …}]`"), AdminForbidden, AuthErrors)
)]
pub(crate) async fn tasks(State(state): State<AppState>, _admin: AdminCaller) -> Json<Vec<Status>> {
    Json(state.replications.statuses())
}

/// What to do with a replication.
#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum TaskAction {
    /// Stop between pages until resumed.
    Pause,
    /// Carry on.
    Resume,
    /// Stop for good.
    Cancel,
}

/// Pauses, resumes or cancels a replication (cancelling is final until the
/// server restarts).
#[utoipa::path(
    post,
    path = "/api/v1/replication/tasks/{name}/{action}",
    tag = "replication",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(
        ("name" = String, Path, description = "The replication's name"),
        ("action" = inline(TaskAction), Path, description = "`pause`, `resume` or `cancel`"),
    ),
    responses((status = 200, body = Object, description = "The replication's status"), BadRequest, NotFound, CsrfFailed, AdminForbidden, AuthErrors)
)]
pub(crate) async fn control(
    State(state): State<AppState>,
    _admin: AdminCaller,
    path: Result<Path<(String, TaskAction)>, PathRejection>,
) -> Result<Json<Status>, ApiError> {
    let Path((name, action)) = path?;
    let control = match action {
        TaskAction::Pause => Control::Pause,
        TaskAction::Resume => Control::Run,
        TaskAction::Cancel => Control::Cancel,
    };
    let handle =
        state.replications.find(&name).ok_or_else(|| ApiError::not_found(format!("no replication {name:?}")))?;
    handle.send(control);
    // Let the task see it before answering with its state.
    tokio::time::sleep(Duration::from_millis(20)).await;
    Ok(Json(handle.status()))
}

#[cfg(test)]
mod tests {
    use std::io::Read;

    use super::*;

    /// The reader hands the pieces on in order and stops with `over_limit` once more than the
    /// limit has arrived, without waiting for the rest.
    #[test]
    fn the_body_reader_passes_pieces_on_and_stops_at_the_limit() {
        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        for piece in [&b"abc"[..], b"", b"defg"] {
            sender.try_send(Ok(Bytes::from_static(piece))).unwrap();
        }
        drop(sender);
        let mut text = String::new();
        BodyReader::new(receiver, 7).read_to_string(&mut text).unwrap();
        assert_eq!(text, "abcdefg");

        let (sender, receiver) = tokio::sync::mpsc::channel(8);
        sender.try_send(Ok(Bytes::from_static(b"12345"))).unwrap();
        sender.try_send(Ok(Bytes::from_static(b"6789"))).unwrap();
        // The sender stays open: a reader that waited for the end would hang here.
        let mut reader = BodyReader::new(receiver, 8);
        let mut all = Vec::new();
        let e = reader.read_to_end(&mut all).unwrap_err();
        assert!(reader.over_limit, "{e}");
        assert!(e.to_string().contains("over 8 bytes"), "{e}");
        drop(sender);
    }

    /// A body that breaks off is a read error for the applier, not a hang.
    #[tokio::test]
    async fn a_broken_body_stream_is_an_error_not_a_hang() {
        let (sender, receiver) = tokio::sync::mpsc::channel(2);
        sender.send(Err(std::io::Error::other("connection reset"))).await.unwrap();
        let mut reader = BodyReader::new(receiver, 100);
        let e = tokio::task::spawn_blocking(move || reader.read(&mut [0; 4]).unwrap_err()).await.unwrap();
        assert!(e.to_string().contains("connection reset"));
    }
}
