//! The sessions page's routes: where the account is signed in, and which
//! device tokens it has, with each one's last use and address.
//!
//! | route | who | answers |
//! |---|---|---|
//! | `GET /api/v1/me/sessions` | caller, no token | `{sessions:[…], tokens:[…]}` |
//! | `DELETE /api/v1/me/sessions/{id}` | caller, no token | 204; 404 when not the caller's |
//!
//! Tokens are revoked with `DELETE /api/v1/tokens/{id}`. A session's id is
//! public ([`super::seen::session_id`]); it cannot be used to sign in.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use polo_domain::Timestamp;
use serde::Serialize;
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::seen;
use crate::AppState;
use crate::audit::{self, Event};
use crate::auth::Caller;
use crate::client::Client;
use crate::error::{ApiError, AuthErrors, CsrfFailed, Forbidden, NotFound};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list)).routes(routes!(revoke))
}

/// A web session.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionView {
    /// Its public id (for `DELETE /api/v1/me/sessions/{id}`).
    #[schema(example = "3f9a0c1d2b4e5f60")]
    id: String,
    /// When it began (RFC 3339).
    created: String,
    /// When it ends unless used to log out before.
    expires: String,
    /// Its last use (written at most once a minute).
    last_used: String,
    /// The client's address at its last use.
    #[schema(example = "192.0.2.10")]
    address: Option<String>,
    /// How it began: `password` or `oidc`.
    method: String,
    /// This request's own session.
    current: bool,
}

/// A device token and its last use.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenUseView {
    /// The token's id (for `DELETE /api/v1/tokens/{id}`).
    id: i64,
    /// Its label.
    label: String,
    /// The device it authenticates as.
    device: String,
    /// When it was made (RFC 3339).
    created: String,
    /// Its last use.
    last_used: Option<String>,
    /// The client's address at its last use, when polo saw one.
    address: Option<String>,
}

/// Your sessions and device tokens.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct SessionsView {
    /// Web sessions, most recently used first.
    sessions: Vec<SessionView>,
    /// Device tokens, most recently used first.
    tokens: Vec<TokenUseView>,
}

fn time(ms: i64) -> String {
    Timestamp(ms).to_string()
}

/// Where you are signed in: your web sessions and device tokens, with last use and address.
#[utoipa::path(
    get,
    path = "/api/v1/me/sessions",
    tag = "account",
    security(("session" = []), ("basic" = [])),
    responses((status = 200, body = SessionsView), Forbidden, AuthErrors)
)]
async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<SessionsView>, ApiError> {
    let (store, id) = (state.store.clone(), caller.user.id);
    let (sessions, tokens, uses) = tokio::task::spawn_blocking(move || {
        Ok::<_, polo_store::StoreError>((
            seen::sessions(&*store, id, audit::now())?,
            store.list_tokens(id)?,
            seen::tokens(&*store, id)?,
        ))
    })
    .await??;
    let current = caller.session_hash().map(seen::session_id);
    let sessions = sessions
        .into_iter()
        .map(|(id, s)| SessionView {
            current: current.as_deref() == Some(id.as_str()),
            id,
            created: time(s.created),
            expires: time(s.expires),
            last_used: time(s.last_used),
            address: s.address,
            method: s.method,
        })
        .collect();
    let mut tokens: Vec<(i64, TokenUseView)> = tokens
        .into_iter()
        .map(|t| {
            let used = uses.get(&t.id);
            let last = used.map(|u| u.last_used).or(t.last_used.map(|l| l.0));
            (
                last.unwrap_or(i64::MIN),
                TokenUseView {
                    id: t.id,
                    label: t.label,
                    device: t.device.name,
                    created: t.created.to_string(),
                    last_used: last.map(time),
                    address: used.and_then(|u| u.address.clone()),
                },
            )
        })
        .collect();
    tokens.sort_by_key(|t| std::cmp::Reverse(t.0));
    Ok(Json(SessionsView { sessions, tokens: tokens.into_iter().map(|(_, t)| t).collect() }))
}

/// Ends one of your web sessions (signs that browser out).
#[utoipa::path(
    delete,
    path = "/api/v1/me/sessions/{id}",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    params(("id" = String, Path, description = "The session's id from `GET /api/v1/me/sessions`")),
    responses((status = 204, description = "Ended"), NotFound, Forbidden, CsrfFailed, AuthErrors)
)]
async fn revoke(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    path: Result<Path<String>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = path.map_err(|_| ApiError::bad_request("id: expected a session id"))?;
    caller.require_password_grade()?;
    let (store, user, key) = (state.store.clone(), caller.user.id, id.clone());
    if !tokio::task::spawn_blocking(move || seen::end_session(&*store, user, &key)).await?? {
        return Err(ApiError::not_found("no such session of yours"));
    }
    let event = Event::new(&caller.user.name, "auth.session.revoke", Some(caller.user.id)).with("session", id);
    audit::record(&state.store, event, client.ip).await;
    Ok(StatusCode::NO_CONTENT)
}
