//! The one error shape every API route answers with.
//!
//! Clients (the web app, scripts, phone apps) branch on `code`, never on the
//! message or only the status, so the codes are a stable contract:
//!
//! | code | status | meaning |
//! |---|---|---|
//! | `unauthorized` | 401 | no or wrong credentials (with `WWW-Authenticate: Basic realm="polo"`) |
//! | `forbidden` | 403 | authenticated, but not allowed |
//! | `csrf_failed` | 403 | a cookie-authenticated unsafe request without the right `X-CSRF-Token` |
//! | `not_found` | 404 | no such thing (for this user) |
//! | `bad_request` | 400 (or the extractor's 4xx) | the request is malformed |
//! | `payload_too_large` | 413 | the body is over the limit |
//! | `rate_limited` | 429 | too many failures; `Retry-After` says when to retry |
//! | `conflict` | 409 | the name is taken |
//! | `unavailable` | 503 | temporary trouble (the store); retry later |
//! | `internal` | 500 | a bug |
//!
//! Store failures are logged here and answered `unavailable` without
//! their detail (which may name tables or paths).

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use polo_store::StoreError;
use serde_json::json;

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

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut response = (self.status, Json(json!({"code": self.code, "message": self.message}))).into_response();
        let headers = response.headers_mut();
        if self.status == StatusCode::UNAUTHORIZED {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Basic realm=\"polo\""));
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

#[cfg(test)]
mod tests {
    use super::*;

    async fn render(e: ApiError) -> (StatusCode, axum::http::HeaderMap, serde_json::Value) {
        let response = e.into_response();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 16).await.unwrap();
        (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap())
    }

    #[tokio::test]
    async fn shape_codes_and_headers() {
        let (status, headers, body) = render(ApiError::unauthorized("who are you")).await;
        assert_eq!(status, 401);
        assert_eq!(body, json!({"code": "unauthorized", "message": "who are you"}));
        assert_eq!(headers[header::WWW_AUTHENTICATE], "Basic realm=\"polo\"");
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
}
