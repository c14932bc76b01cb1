//! `GET /api/v1/admin/audit`: the audit log for administrators, newest
//! first, filtered by action prefix, actor, the user concerned and time,
//! in pages (`before` = the last id of the previous page).

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use polo_domain::{Timestamp, UserId};
use polo_store::AuditQuery;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::auth::AdminCaller;
use crate::error::{AdminForbidden, ApiError, AuthErrors, BadRequest};

/// The most entries per page.
pub const MAX_LIMIT: usize = 500;

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(list))
}

/// The filters; every one given must match.
#[derive(Debug, Deserialize, IntoParams)]
#[serde(deny_unknown_fields)]
pub(crate) struct AuditParams {
    /// Only actions starting with this, e.g. `auth.` (sign-ins) or `auth.login_failed`.
    action: Option<String>,
    /// Only entries by this actor (a user name, or `system`).
    actor: Option<String>,
    /// Only entries about this user (by name).
    user: Option<String>,
    /// Only entries at or after this time (RFC 3339).
    since: Option<String>,
    /// Only entries before this time (RFC 3339).
    until: Option<String>,
    /// Only entries with a smaller id: the previous page's `next_before`.
    before: Option<i64>,
    /// Entries per page, 1 to 500 (default 100).
    limit: Option<usize>,
}

/// One audit entry.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditEntryView {
    /// Increasing id.
    id: i64,
    /// When (RFC 3339).
    at: String,
    /// Who: a user name, what was typed as one (failed logins), or `system`.
    #[schema(example = "alice")]
    actor: String,
    /// What, as `feature.verb`.
    #[schema(example = "auth.login")]
    action: String,
    /// The user it concerns, by name (`null` when none, or deleted since).
    subject: Option<String>,
    /// Details: the method, the client's address (`ip`), a reason.
    #[schema(value_type = Object)]
    detail: serde_json::Value,
}

/// A page of the audit log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct AuditPage {
    /// Newest first.
    entries: Vec<AuditEntryView>,
    /// Pass as `before` for the next (older) page; `null` when this was the last.
    next_before: Option<i64>,
}

fn time(field: &str, text: Option<&str>) -> Result<Option<Timestamp>, ApiError> {
    text.map(|t| {
        polo_domain::time::parse_timestamp(t)
            .map(|p| p.time)
            .map_err(|_| ApiError::bad_request(format!("{field}: expected an RFC 3339 time, not {t:?}")))
    })
    .transpose()
}

/// The audit log of security events and decisions (administrators only): sign-ins and failures,
/// second-factor changes, tokens and share links made and revoked, administrators' actions, role
/// changes, and the exposure workflow's decisions.
#[utoipa::path(
    get,
    path = "/api/v1/admin/audit",
    tag = "account",
    security(("session" = []), ("bearer" = ["admin"]), ("basic" = [])),
    params(AuditParams),
    responses((status = 200, body = AuditPage), BadRequest, AdminForbidden, AuthErrors)
)]
async fn list(
    State(state): State<AppState>,
    AdminCaller(_admin): AdminCaller,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditPage>, ApiError> {
    let Query(params) = params.map_err(|e| ApiError::bad_request(e.body_text()))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit: must be 1 to {MAX_LIMIT}")));
    }
    let since = time("since", params.since.as_deref())?;
    let until = time("until", params.until.as_deref())?;
    let store = state.store.clone();
    let (entries, names) = tokio::task::spawn_blocking(move || {
        let users = store.list_users()?;
        let subject = match params.user.as_deref() {
            None => None,
            Some(name) => Some(
                users
                    .iter()
                    .find(|u| u.name == name)
                    .map(|u| u.id)
                    .ok_or_else(|| ApiError::bad_request(format!("user: no user called {name:?}")))?,
            ),
        };
        let query = AuditQuery {
            subject,
            before_id: params.before,
            limit,
            action_prefix: params.action.filter(|a| !a.is_empty()),
            actor: params.actor.filter(|a| !a.is_empty()),
            since,
            until,
        };
        let names: std::collections::HashMap<UserId, String> = users.into_iter().map(|u| (u.id, u.name)).collect();
        Ok::<_, ApiError>((store.audit_log(&query)?, names))
    })
    .await??;
    let next_before = (entries.len() == limit).then(|| entries.last().map(|e| e.id)).flatten();
    let entries = entries
        .into_iter()
        .map(|e| AuditEntryView {
            id: e.id,
            at: e.at.to_string(),
            actor: e.actor,
            action: e.action,
            subject: e.subject.and_then(|s| names.get(&s).cloned()),
            detail: serde_json::from_str(&e.detail).unwrap_or(serde_json::Value::String(e.detail)),
        })
        .collect();
    Ok(Json(AuditPage { entries, next_before }))
}
