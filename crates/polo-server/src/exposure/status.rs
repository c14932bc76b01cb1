//! The read path: a user's own status, the instance's public key, and
//! checking a code.
//!
//! `GET /api/v1/exposure/status` reads one precomputed row (written by the
//! batch and by decisions) and computes nothing: no rule, no signature. Its
//! `ETag` is the row's user and write time, so `If-None-Match` answers 304
//! until the row changes. The answer's bytes are kept per user in the
//! [`super::cache`], so a repeated read does not reach the store. A user
//! without a row yet (the batch writes one for everybody within a minute of
//! the feature being turned on, and of an account being made) gets 404
//! `not_found` saying so.

use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use polo_domain::Timestamp;
use polo_exposure::model::StatusRow;
use polo_exposure::signing::{self, CODE_PREFIX};
use polo_exposure::workflow;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::cache::Cached;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, JsonBodyErrors, NoStatus};

type ApiResult<T> = Result<T, ApiError>;

pub(super) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status)).routes(routes!(public_key)).routes(routes!(verify))
}

/// The caller's own exposure status.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusView {
    /// `clear` or `exposed`.
    #[schema(example = "clear")]
    status: &'static str,
    /// Since when.
    since: String,
    /// Until when the status and its code are valid.
    valid_until: String,
    /// The signed code (`PX1.<payload>.<signature>`), for a QR code.
    code: String,
}

/// The caller's own exposure status and its signed code, precomputed by the batch; `ETag` and
/// `If-None-Match` make it cacheable.
#[utoipa::path(
    get,
    path = "/api/v1/exposure/status",
    tag = "exposure",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, body = StatusView, headers(("ETag" = String, description = "Changes when the status row does"))),
        (status = 304, description = "Not modified: the `If-None-Match` tag is current"),
        NoStatus,
        AuthErrors,
    )
)]
async fn status(State(state): State<AppState>, caller: Caller, headers: HeaderMap) -> ApiResult<Response> {
    state.exposure.enabled()?;
    let user = caller.user.id;
    let cache = state.exposure.statuses();
    let answer = match cache.get(user) {
        Some(answer) => answer,
        None => {
            let (store, seen) = (state.store.clone(), cache.generation());
            let row: Option<StatusRow> = tokio::task::spawn_blocking(move || workflow::status(&*store, user)).await??;
            let row = row.ok_or_else(|| {
                ApiError::not_found(
                    "no exposure status has been computed for you yet; the batch writes one within a minute",
                )
            })?;
            let answer = Arc::new(answer_of(&row)?);
            cache.insert(user, answer.clone(), seen);
            answer
        }
    };
    let cache_headers =
        [(header::ETAG, answer.etag.clone()), (header::CACHE_CONTROL, HeaderValue::from_static("private, no-cache"))];
    let matches = headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| tag.trim().as_bytes() == answer.etag.as_bytes() || tag.trim() == "*");
    if matches {
        return Ok((StatusCode::NOT_MODIFIED, cache_headers).into_response());
    }
    let json = (header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok((cache_headers, [json], answer.body.clone()).into_response())
}

/// The answer to a row: its `ETag` and the JSON of its [`StatusView`].
fn answer_of(row: &StatusRow) -> ApiResult<Cached> {
    let etag = format!("\"{}-{}\"", row.user, row.updated);
    let etag = HeaderValue::from_str(&etag).map_err(|e| ApiError::internal(e.to_string()))?;
    let view = StatusView {
        status: row.status.name(),
        since: Timestamp(row.since).to_string(),
        valid_until: Timestamp(row.valid_until).to_string(),
        code: row.code.clone(),
    };
    let body = serde_json::to_vec(&view).map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Cached { etag, body: Bytes::from(body) })
}

/// The instance's public key.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PublicKeyView {
    /// `Ed25519`.
    algorithm: &'static str,
    /// The raw 32-byte key, unpadded base64url (import it with WebCrypto as `raw`).
    public_key: String,
    /// The code format it verifies (`PX1`).
    format: &'static str,
}

/// The instance's Ed25519 public key, to check codes offline.
#[utoipa::path(
    get,
    path = "/api/v1/exposure/public-key",
    tag = "exposure",
    responses(
        (status = 200, body = PublicKeyView),
        (status = 404, description = "`exposure_disabled`: exposure checks are off on this instance", body = crate::error::ErrorBody),
    )
)]
async fn public_key(State(state): State<AppState>) -> ApiResult<Json<PublicKeyView>> {
    state.exposure.enabled()?;
    let exposure = state.exposure.clone();
    let signer = tokio::task::spawn_blocking(move || exposure.signer()).await??;
    Ok(Json(PublicKeyView { algorithm: "Ed25519", public_key: signer.public_key_text(), format: CODE_PREFIX }))
}

/// `POST /api/v1/exposure/verify`'s body.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct VerifyBody {
    /// The code, as the QR code holds it.
    code: String,
}

/// What a code states, if it is genuine.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct VerifyView {
    /// Signed by this instance and not expired.
    valid: bool,
    /// Why not, when it is not.
    reason: Option<String>,
    /// The status it states (`clear` or `exposed`).
    status: Option<&'static str>,
    /// The subject's user id.
    subject: Option<i64>,
    /// Until when it is valid.
    valid_until: Option<String>,
    /// When it was issued.
    issued: Option<String>,
}

/// Checks a status code against the instance's key (anyone may ask; nothing is looked up but the key).
#[utoipa::path(
    post,
    path = "/api/v1/exposure/verify",
    tag = "exposure",
    request_body = VerifyBody,
    responses(
        (status = 200, body = VerifyView),
        JsonBodyErrors,
        (status = 404, description = "`exposure_disabled`: exposure checks are off on this instance", body = crate::error::ErrorBody),
    )
)]
async fn verify(
    State(state): State<AppState>,
    body: Result<Json<VerifyBody>, JsonRejection>,
) -> ApiResult<Json<VerifyView>> {
    let Json(body) = body?;
    state.exposure.enabled()?;
    if body.code.len() > 1024 {
        return Err(ApiError::bad_request("code: at most 1024 characters"));
    }
    let exposure = state.exposure.clone();
    let signer = tokio::task::spawn_blocking(move || exposure.signer()).await??;
    let view = match signing::verify(signer.public_key(), &body.code) {
        Ok(claim) => {
            let expired = claim.valid_until <= polo_store::clock::now().0;
            VerifyView {
                valid: !expired,
                reason: expired.then(|| "the code has expired".to_owned()),
                status: Some(claim.status.name()),
                subject: Some(claim.user),
                valid_until: Some(Timestamp(claim.valid_until).to_string()),
                issued: Some(Timestamp(claim.issued).to_string()),
            }
        }
        Err(e) => VerifyView {
            valid: false,
            reason: Some(e.to_string()),
            status: None,
            subject: None,
            valid_until: None,
            issued: None,
        },
    };
    Ok(Json(view))
}
