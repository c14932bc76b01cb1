//! The one error shape every API route answers with.
//!
//! Clients (the web app, scripts, phone apps) branch on `code`, never on the
//! message or only the status, so the codes are a stable contract:
//!
//! | code | status | meaning |
//! |---|---|---|
//! | `unauthorized` | 401 | no or wrong credentials (with `WWW-Authenticate: Bearer realm="polo"`; `Basic realm="polo"` on the tracker ingest routes) |
//! | `two_factor_required` | 401 | the password was right; the account's second factor is needed too (`code` in `POST /api/v1/session`) |
//! | `forbidden` | 403 | authenticated, but not allowed; or an admin route asked from outside the admin networks |
//! | `csrf_failed` | 403 | a cookie-authenticated unsafe request without the right `X-CSRF-Token` |
//! | `not_found` | 404 | no such thing (for this user) |
//! | `share_not_found` | 404 | a share link that does not exist, was revoked or has expired (one answer for all three) |
//! | `exposure_disabled` | 404 | exposure checks are off on this instance (every `/api/v1/exposure/` route) |
//! | `bad_request` | 400 (or the extractor's 4xx) | the request is malformed |
//! | `payload_too_large` | 413 | the body is over the limit |
//! | `rate_limited` | 429 | too many failures; `Retry-After` says when to retry |
//! | `conflict` | 409 | the name is taken |
//! | `unavailable` | 503 | temporary trouble (the store); retry later |
//! | `internal` | 500 | a bug |
//!
//! Store failures are logged here and answered `unavailable` without
//! their detail (which may name tables or paths).
//!
//! **The 401 challenge.** A `Basic` challenge makes browsers open their own
//! login dialog and then remember and resend what was typed, to every route,
//! for the rest of the session: a web app must not trigger it. So a 401
//! challenges `Bearer` (which browsers leave alone, and which every route
//! takes), and only the tracker ingest routes, whose apps may wait for a
//! challenge before they send Basic credentials, answer with
//! [`basic_challenge`] applied.
//!
//! The contract holds for every response, not only for the handlers' own
//! errors: [`json_errors`] rewrites the plain-text bodies axum's extractors,
//! its method router and the fallback produce into the same shape. The
//! OpenAPI document describes the shape as [`ErrorBody`] and lists the codes
//! in [`ErrorCode`]; the response sets below ([`AuthErrors`], [`BadRequest`],
//! …) are what the handlers' `#[utoipa::path]` annotations refer to.

use std::time::Duration;

use axum::Json;
use axum::extract::Request;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use polo_store::StoreError;
use serde::Serialize;
use utoipa::{IntoResponses, ToSchema};

/// An API error: a status, a stable snake_case code and a human message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} ({status}): {message}")]
pub struct ApiError {
    /// The HTTP status.
    pub status: StatusCode,
    /// The stable machine-readable code.
    pub code: &'static str,
    /// For people; may change between versions.
    pub message: String,
    /// Seconds for `Retry-After`.
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with any status and code.
    #[must_use]
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self { status, code, message: message.into(), retry_after: None }
    }

    /// 401 `unauthorized`.
    #[must_use]
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    /// 401 `two_factor_required`: the password was right, the second factor is missing.
    #[must_use]
    pub fn two_factor_required() -> Self {
        Self::new(
            StatusCode::UNAUTHORIZED,
            "two_factor_required",
            "this account uses two-factor authentication: send the code from the authenticator app, or a \
             recovery code, as `code`, or a passkey's answer as `passkey`",
        )
    }

    /// 403 `forbidden`.
    #[must_use]
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", message)
    }

    /// 403 `csrf_failed`.
    #[must_use]
    pub fn csrf_failed() -> Self {
        Self::new(
            StatusCode::FORBIDDEN,
            "csrf_failed",
            "this request is authenticated by the session cookie and needs the session's X-CSRF-Token header",
        )
    }

    /// 404 `not_found`.
    #[must_use]
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    /// 404 `share_not_found`: the same answer for an unknown, a revoked
    /// and an expired share link, so links cannot be probed.
    #[must_use]
    pub fn share_not_found() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "share_not_found",
            "this share link does not exist, was revoked or has expired",
        )
    }

    /// 404 `exposure_disabled`: an exposure route while the feature is off;
    /// the message says how an administrator turns it on.
    #[must_use]
    pub fn exposure_disabled() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "exposure_disabled",
            "exposure checks are not enabled on this instance; an administrator turns them on \
             (PUT /api/v1/admin/exposure {\"enabled\": true})",
        )
    }

    /// 400 `bad_request`.
    #[must_use]
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    /// 413 `payload_too_large`.
    #[must_use]
    pub fn payload_too_large(message: impl Into<String>) -> Self {
        Self::new(StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large", message)
    }

    /// 429 `rate_limited` with `Retry-After` (whole seconds, rounded up).
    #[must_use]
    pub fn rate_limited(retry_after: Duration) -> Self {
        let secs = retry_after.as_secs() + u64::from(retry_after.subsec_nanos() > 0);
        let mut e = Self::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("too many failed attempts; retry in {secs} s"),
        );
        e.retry_after = Some(secs.max(1));
        e
    }

    /// 409 `conflict`.
    #[must_use]
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", message)
    }

    /// 503 `unavailable`.
    #[must_use]
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE, "unavailable", message)
    }

    /// 500 `internal`.
    #[must_use]
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// For clients that drop a message on any 4xx (OwnTracks on iOS):
    /// temporary trouble — `rate_limited` — becomes 503 `unavailable` with
    /// the same `Retry-After`, so the client keeps the message and retries.
    #[must_use]
    pub fn temporary_as_5xx(self) -> Self {
        if self.status == StatusCode::TOO_MANY_REQUESTS {
            Self { status: StatusCode::SERVICE_UNAVAILABLE, code: "unavailable", ..self }
        } else {
            self
        }
    }
}

/// The body of every error response.
#[derive(Debug, Clone, Serialize, ToSchema)]
#[schema(example = json!({"code": "not_found", "message": "you have no device 7"}))]
pub struct ErrorBody {
    /// The stable machine-readable code; branch on this.
    #[schema(value_type = ErrorCode)]
    pub code: &'static str,
    /// For people; may change between versions.
    pub message: String,
}

/// The stable error codes (see the module documentation for their statuses).
///
/// Only used to describe [`ErrorBody::code`] in the OpenAPI document;
/// [`ErrorCode::ALL`] is checked against every constructor of [`ApiError`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// 401: no or wrong credentials.
    Unauthorized,
    /// 401: the password was right; the account's second factor (`code`) is needed too.
    TwoFactorRequired,
    /// 403: authenticated, but not allowed.
    Forbidden,
    /// 403: a cookie-authenticated unsafe request without the session's `X-CSRF-Token`.
    CsrfFailed,
    /// 404: no such thing (for this user), or no such route.
    NotFound,
    /// 404: a share link that does not exist, was revoked or has expired.
    ShareNotFound,
    /// 404: exposure checks are off on this instance.
    ExposureDisabled,
    /// 400, or the extractor's 4xx (405, 415, 422): the request is malformed.
    BadRequest,
    /// 413: the body is over the limit.
    PayloadTooLarge,
    /// 429: too many failures or jobs; `Retry-After` says when to retry.
    RateLimited,
    /// 409: the name is taken.
    Conflict,
    /// 503: temporary trouble; retry later.
    Unavailable,
    /// 500: a bug.
    Internal,
}

impl ErrorCode {
    /// Every code, in the order of the table above.
    pub const ALL: [Self; 13] = [
        Self::Unauthorized,
        Self::TwoFactorRequired,
        Self::Forbidden,
        Self::CsrfFailed,
        Self::NotFound,
        Self::ShareNotFound,
        Self::ExposureDisabled,
        Self::BadRequest,
        Self::PayloadTooLarge,
        Self::RateLimited,
        Self::Conflict,
        Self::Unavailable,
        Self::Internal,
    ];

    /// The code as it appears in responses.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unauthorized => "unauthorized",
            Self::TwoFactorRequired => "two_factor_required",
            Self::Forbidden => "forbidden",
            Self::CsrfFailed => "csrf_failed",
            Self::NotFound => "not_found",
            Self::ShareNotFound => "share_not_found",
            Self::ExposureDisabled => "exposure_disabled",
            Self::BadRequest => "bad_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::RateLimited => "rate_limited",
            Self::Conflict => "conflict",
            Self::Unavailable => "unavailable",
            Self::Internal => "internal",
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(ErrorBody { code: self.code, message: self.message })).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(BEARER_CHALLENGE));
        }
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(what) => Self::not_found(format!("{what} not found")),
            StoreError::AlreadyExists(what) => Self::conflict(format!("{what} already exists")),
            StoreError::Refused(why) => Self::conflict(why),
            StoreError::DiskFull(what) => {
                tracing::error!(error = %what, "the store is full");
                Self::unavailable("disk full: the store cannot be written; try again once there is room")
            }
            other => {
                tracing::error!(error = %other, "store failure");
                Self::unavailable("the store is unavailable; try again later")
            }
        }
    }
}

impl From<tokio::task::JoinError> for ApiError {
    fn from(e: tokio::task::JoinError) -> Self {
        tracing::error!(error = %e, "a blocking task failed");
        Self::internal("internal error")
    }
}

fn rejection(status: StatusCode, text: String) -> ApiError {
    match status {
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::payload_too_large(text),
        s if s.is_client_error() => ApiError::new(s, "bad_request", text),
        _ => ApiError::internal(text),
    }
}

impl From<JsonRejection> for ApiError {
    fn from(e: JsonRejection) -> Self {
        rejection(e.status(), e.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(e: PathRejection) -> Self {
        // A malformed id in the path names nothing that exists.
        if e.status().is_client_error() { Self::not_found(e.body_text()) } else { Self::internal(e.body_text()) }
    }
}

impl From<QueryRejection> for ApiError {
    fn from(e: QueryRejection) -> Self {
        rejection(e.status(), e.body_text())
    }
}

/// A JSON body that must be an object: serde would also read a struct from
/// an array of its members in order (`[null, null]`), which no client means.
/// Bodies that are not objects get 422 like any other body of the wrong shape.
pub(crate) fn json_object<T: serde::de::DeserializeOwned>(
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<T, ApiError> {
    let Json(value) = body?;
    if !value.is_object() {
        return Err(ApiError::new(StatusCode::UNPROCESSABLE_ENTITY, "bad_request", "the body must be a JSON object"));
    }
    // Through axum's reader again, so the message names the member that is wrong.
    let bytes =
        serde_json::to_vec(&value).map_err(|e| ApiError::internal(format!("cannot re-encode the body: {e}")))?;
    Ok(Json::<T>::from_bytes(&bytes)?.0)
}

/// What a 401 answers by default: browsers show no dialog for it.
pub const BEARER_CHALLENGE: &str = "Bearer realm=\"polo\"";
/// What a 401 answers on the tracker ingest routes.
pub const BASIC_CHALLENGE: &str = "Basic realm=\"polo\"";

/// Middleware for the tracker ingest routes: their 401s challenge `Basic`,
/// which OwnTracks, Traccar Client and GPSLogger answer with the user's
/// credentials. A request from the web app (`X-Requested-With:
/// XMLHttpRequest`) keeps the default.
pub(crate) async fn basic_challenge(request: Request, next: Next) -> Response {
    let from_web_app = is_web_app(request.headers());
    let mut response = next.run(request).await;
    if response.status() == StatusCode::UNAUTHORIZED && !from_web_app {
        response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static(BASIC_CHALLENGE));
    }
    response
}

fn is_web_app(headers: &HeaderMap) -> bool {
    headers.get("x-requested-with").is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"XMLHttpRequest"))
}

/// The code for a status that did not come from an [`ApiError`].
fn code_for(status: StatusCode) -> &'static str {
    match status {
        StatusCode::UNAUTHORIZED => "unauthorized",
        StatusCode::FORBIDDEN => "forbidden",
        StatusCode::NOT_FOUND => "not_found",
        StatusCode::CONFLICT => "conflict",
        StatusCode::PAYLOAD_TOO_LARGE => "payload_too_large",
        StatusCode::TOO_MANY_REQUESTS => "rate_limited",
        StatusCode::SERVICE_UNAVAILABLE => "unavailable",
        s if s.is_client_error() => "bad_request",
        _ => "internal",
    }
}

fn is_json(headers: &HeaderMap) -> bool {
    headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        let essence = v.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
        essence == "application/json" || essence.ends_with("+json")
    })
}

/// The longest plain-text error body that is carried over as the message.
const MAX_REWRITTEN_BODY: usize = 16 * 1024;

/// Middleware: turns error responses that are not JSON (axum's extractor
/// rejections, `405 Method Not Allowed`, an unmatched route) into
/// [`ErrorBody`], keeping the status and headers.
///
/// A `401` to a request from the web app (`X-Requested-With: XMLHttpRequest`)
/// goes without `WWW-Authenticate` at all.
pub async fn json_errors(request: Request, next: Next) -> Response {
    let from_web_app = is_web_app(request.headers());
    let mut response = next.run(request).await;
    let status = response.status();
    if from_web_app && status == StatusCode::UNAUTHORIZED {
        response.headers_mut().remove(header::WWW_AUTHENTICATE);
    }
    if !(status.is_client_error() || status.is_server_error()) || is_json(response.headers()) {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_REWRITTEN_BODY)
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).trim().to_owned())
        .unwrap_or_default();
    let message = match status {
        // axum's method router adds `Allow` after this layer has run.
        StatusCode::METHOD_NOT_ALLOWED => {
            "this route does not answer that method; the Allow header lists those it does".to_owned()
        }
        _ if !text.is_empty() => text,
        StatusCode::NOT_FOUND => "no such route".to_owned(),
        _ => status.canonical_reason().unwrap_or("error").to_ascii_lowercase(),
    };
    let mut rewritten = ApiError::new(status, code_for(status), message).into_response();
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            rewritten.headers_mut().entry(name).or_insert_with(|| value.clone());
        }
    }
    rewritten
}

/// The errors of every route that needs credentials.
#[derive(IntoResponses)]
pub enum AuthErrors {
    /// No or wrong credentials.
    #[response(
        status = 401,
        description = "`unauthorized`: no or wrong credentials",
        headers(("WWW-Authenticate" = String, description = "`Bearer realm=\"polo\"` (never `Basic`, which makes \
            browsers show their own login dialog)"))
    )]
    Unauthorized(ErrorBody),
    /// Too many failed attempts from this address or for this user.
    #[response(
        status = 429,
        description = "`rate_limited`: too many failed attempts; retry after `Retry-After` seconds",
        headers(("Retry-After" = u64, description = "Seconds to wait"))
    )]
    RateLimited(ErrorBody),
    /// The store is unavailable.
    #[response(status = 503, description = "`unavailable`: temporary trouble; retry later")]
    Unavailable(ErrorBody),
}

/// The errors of the tracker ingest routes that need credentials: as
/// [`AuthErrors`], but the 401 challenges `Basic` ([`basic_challenge`]).
#[derive(IntoResponses)]
pub enum TrackerAuthErrors {
    /// No or wrong credentials.
    #[response(
        status = 401,
        description = "`unauthorized`: no or wrong credentials",
        headers(("WWW-Authenticate" = String, description = "`Basic realm=\"polo\"`, which tracker apps answer"))
    )]
    Unauthorized(ErrorBody),
    /// Too many failed attempts from this address.
    #[response(
        status = 429,
        description = "`rate_limited`: too many failed attempts; retry after `Retry-After` seconds",
        headers(("Retry-After" = u64, description = "Seconds to wait"))
    )]
    RateLimited(ErrorBody),
    /// The store is unavailable.
    #[response(status = 503, description = "`unavailable`: temporary trouble; retry later")]
    Unavailable(ErrorBody),
}

/// 400 `bad_request` for malformed parameters.
#[derive(IntoResponses)]
#[response(status = 400, description = "`bad_request`: a parameter or the body is malformed")]
pub struct BadRequest(pub ErrorBody);

/// The errors of a JSON request body, besides 400: axum's extractor statuses.
#[derive(IntoResponses)]
pub enum JsonBodyErrors {
    /// Not JSON, or JSON of the wrong shape.
    #[response(status = 400, description = "`bad_request`: the body is not valid JSON")]
    Syntax(ErrorBody),
    /// No `Content-Type: application/json`.
    #[response(status = 415, description = "`bad_request`: the body must be sent as `application/json`")]
    MediaType(ErrorBody),
    /// JSON whose members have the wrong types or are missing.
    #[response(status = 422, description = "`bad_request`: a member is missing or has the wrong type")]
    Data(ErrorBody),
    /// Over the default body limit.
    #[response(status = 413, description = "`payload_too_large`: the body is over the limit")]
    TooLarge(ErrorBody),
}

/// 403 `forbidden` or `csrf_failed`.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "`forbidden`: not allowed for this caller; or `csrf_failed`: a cookie-authenticated unsafe \
                   request without the session's `X-CSRF-Token`"
)]
pub struct Forbidden(pub ErrorBody);

/// 403 on the admin routes.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "`forbidden`: not an administrator, a device token where the password is needed, or a \
                   client outside the admin networks (`--admin-network`; checked before the credentials); or \
                   `csrf_failed`: a cookie-authenticated unsafe request without the session's `X-CSRF-Token`"
)]
pub struct AdminForbidden(pub ErrorBody);

/// 403 `csrf_failed` on unsafe methods.
#[derive(IntoResponses)]
#[response(
    status = 403,
    description = "`csrf_failed`: a cookie-authenticated unsafe request without the session's `X-CSRF-Token`"
)]
pub struct CsrfFailed(pub ErrorBody);

/// 404 `not_found`.
#[derive(IntoResponses)]
#[response(status = 404, description = "`not_found`: no such thing for this user")]
pub struct NotFound(pub ErrorBody);

/// 404 `share_not_found`.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "`share_not_found`: the link does not exist, was revoked or has expired (one answer for all three)"
)]
pub struct ShareNotFound(pub ErrorBody);

/// 403 and 404 of the health authority's exposure routes.
#[derive(IntoResponses)]
pub enum AuthorityErrors {
    /// Not the health authority, or a device token.
    #[response(
        status = 403,
        description = "`forbidden`: the caller lacks the health-authority role or used a device token; or \
                       `csrf_failed`"
    )]
    Forbidden(ErrorBody),
    /// The feature is off, or no such thing.
    #[response(
        status = 404,
        description = "`exposure_disabled`: exposure checks are off on this instance; or `not_found`: no such \
                       case, proposal or user"
    )]
    NotFound(ErrorBody),
}

/// 404 of `GET /api/v1/exposure/status`.
#[derive(IntoResponses)]
#[response(
    status = 404,
    description = "`exposure_disabled`: exposure checks are off on this instance; or `not_found`: no status has \
                   been computed for the caller yet"
)]
pub struct NoStatus(pub ErrorBody);

/// 409 `conflict`.
#[derive(IntoResponses)]
#[response(status = 409, description = "`conflict`: the name is taken")]
pub struct Conflict(pub ErrorBody);

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    async fn render(e: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = e.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn bodies_that_must_be_objects() {
        #[derive(Debug, serde::Deserialize)]
        struct Body {
            #[allow(dead_code)]
            name: Option<String>,
        }
        let ok: Body = json_object(Ok(Json(json!({"name": "x"})))).unwrap();
        assert_eq!(ok.name.as_deref(), Some("x"));
        let e = json_object::<Body>(Ok(Json(json!([null])))).unwrap_err();
        assert_eq!((e.status, e.code), (StatusCode::UNPROCESSABLE_ENTITY, "bad_request"));
        let e = json_object::<Body>(Ok(Json(json!({"name": 7})))).unwrap_err();
        assert_eq!(e.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert!(e.message.contains("name"), "{}", e.message);
    }

    #[tokio::test]
    async fn shape_codes_and_headers() {
        let (status, headers, body) = render(ApiError::unauthorized("who are you")).await;
        assert_eq!(status, 401);
        assert_eq!(body, json!({"code": "unauthorized", "message": "who are you"}));
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Bearer realm=\"polo\"", "no browser dialog");
        let (status, headers, body) = render(ApiError::rate_limited(Duration::from_millis(1_500))).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("rate_limited")));
        assert_eq!(headers[header::RETRY_AFTER], "2");
        let (status, headers, body) = render(ApiError::rate_limited(Duration::from_secs(3)).temporary_as_5xx()).await;
        assert_eq!((status, body["code"].as_str()), (StatusCode::SERVICE_UNAVAILABLE, Some("unavailable")));
        assert_eq!(headers[header::RETRY_AFTER], "3");
        let cases = [
            (StoreError::NotFound("device 3".into()), 404, "not_found"),
            (StoreError::AlreadyExists("user \"a\"".into()), 409, "conflict"),
            (StoreError::Backend("disk I/O error at /secret/path".into()), 503, "unavailable"),
            (StoreError::Corrupt("chunk".into()), 503, "unavailable"),
        ];
        for (e, want_status, want_code) in cases {
            let (status, headers, body) = render(e.into()).await;
            assert_eq!((status.as_u16(), body["code"].as_str()), (want_status, Some(want_code)));
            assert!(!body["message"].as_str().unwrap().contains("/secret/path"));
            assert!(headers.get(header::WWW_AUTHENTICATE).is_none());
        }
    }

    #[tokio::test]
    async fn only_tracker_routes_challenge_basic_and_the_web_app_gets_no_challenge() {
        use axum::middleware::from_fn;
        use axum::routing::get;
        use tower::ServiceExt as _;
        let unauthorized = || async { ApiError::unauthorized("log in") };
        let tracker = axum::Router::new().route("/tracker", get(unauthorized)).route_layer(from_fn(basic_challenge));
        let app = axum::Router::new().route("/api", get(unauthorized)).merge(tracker).layer(from_fn(json_errors));
        for (path, xhr, challenge) in [
            ("/api", None, Some(BEARER_CHALLENGE)),
            ("/api", Some("XMLHttpRequest"), None),
            ("/api", Some("other"), Some(BEARER_CHALLENGE)),
            ("/tracker", None, Some(BASIC_CHALLENGE)),
            ("/tracker", Some("XMLHttpRequest"), None),
        ] {
            let mut request = axum::http::Request::builder().uri(path);
            if let Some(value) = xhr {
                request = request.header("X-Requested-With", value);
            }
            let response = app.clone().oneshot(request.body(axum::body::Body::empty()).unwrap()).await.unwrap();
            assert_eq!(response.status(), 401);
            let got = response.headers().get(header::WWW_AUTHENTICATE).map(|v| v.to_str().unwrap());
            assert_eq!(got, challenge, "{path} {xhr:?}");
        }
    }
}
