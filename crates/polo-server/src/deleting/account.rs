//! Deleting a whole account: the caller's own (`POST /api/v1/me/delete`,
//! with the current password, as changing the password asks for it) or
//! another user's by an administrator (`DELETE /api/v1/users/{name}`).
//!
//! The store deletes the account and everything it held in one transaction
//! and keeps an account tombstone, so the deletion replicates and an older
//! change from a peer does not bring the account back
//! (`polo_store::Store::delete_user`); it refuses to delete the only
//! administrator. What this server keeps in memory about the account goes
//! too: cached tokens and device lists, running import jobs (stopped at
//! their next read; other nodes stop theirs at the next heartbeat), and the
//! live streams of the people it shared its location with re-read their
//! grants. Deleting your own account ends your session: the answer clears
//! the cookie, and the store deleted every session of the account.
//!
//! Not even an undo: the points are gone, not tombstoned in place, so the
//! web app asks for the password and says so first.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use polo_domain::UserId;
use polo_store::DeletedAccount;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::AppState;
use crate::auth::{AdminCaller, Caller, ClientIp};
use crate::client::Client;
use crate::error::{AdminForbidden, ApiError, AuthErrors, Conflict, CsrfFailed, Forbidden, JsonBodyErrors, NotFound};

/// What a deletion removed.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeletedAccountView {
    /// The account's login name.
    #[schema(example = "alice")]
    name: String,
    /// Points deleted with it.
    points: u64,
    /// Devices deleted with it.
    devices: u64,
}

impl From<DeletedAccount> for DeletedAccountView {
    fn from(d: DeletedAccount) -> Self {
        Self { name: d.name, points: d.points, devices: d.devices }
    }
}

/// `POST /api/v1/me/delete`'s body.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeleteMeBody {
    /// The password now: deleting an account cannot be undone.
    #[serde(alias = "password")]
    #[schema(min_length = 1, max_length = 1024)]
    current_password: String,
}

/// Deletes the caller's account with everything it holds: points, devices,
/// tokens, sessions, share links, location grants, places and the timeline,
/// import jobs, settings. Cannot be undone; the only administrator cannot
/// delete itself. Ends the session. Not with a device token.
#[utoipa::path(
    post,
    path = "/api/v1/me/delete",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    request_body = DeleteMeBody,
    responses(
        (status = 200, description = "Deleted; the session cookie is cleared", body = DeletedAccountView,
            headers(("Set-Cookie" = String, description = "Clears `polo_session`"))),
        JsonBodyErrors,
        Forbidden,
        Conflict,
        AuthErrors,
    )
)]
pub(crate) async fn delete_me(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    ClientIp(ip): ClientIp,
    body: Result<Json<DeleteMeBody>, JsonRejection>,
) -> Result<Response, ApiError> {
    let Json(body) = body?;
    caller.require_password_grade()?;
    state.auth.confirm_password(&caller.user, &body.current_password, ip).await?;
    let deleted = delete(&state, caller.user.id).await?;
    tracing::info!(user = %deleted.name, points = deleted.points, "an account deleted itself");
    let cookie = state.auth.session_clear_cookie(&client);
    Ok(([(header::SET_COOKIE, cookie)], Json(DeletedAccountView::from(deleted))).into_response())
}

/// Deletes another user's account (or your own) with everything it holds.
/// Cannot be undone; the only administrator cannot be deleted. Admins only,
/// from an admin network, not with a device token.
#[utoipa::path(
    delete,
    path = "/api/v1/users/{name}",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    params(("name" = String, Path, description = "The user's login name", pattern = "^[A-Za-z0-9._@-]{1,64}$")),
    responses(
        (status = 200, description = "Deleted", body = DeletedAccountView),
        NotFound,
        Conflict,
        AdminForbidden,
        CsrfFailed,
        AuthErrors,
    )
)]
pub(crate) async fn delete_user(
    State(state): State<AppState>,
    client: Client,
    AdminCaller(admin): AdminCaller,
    name: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let Path(name) = name?;
    admin.require_password_grade()?;
    let store = state.store.clone();
    let lookup = name.clone();
    let user = tokio::task::spawn_blocking(move || store.user_by_name(&lookup))
        .await??
        .ok_or_else(|| ApiError::not_found(format!("there is no user {name:?}")))?;
    let deleted = delete(&state, user.id).await?;
    tracing::info!(user = %deleted.name, by = %admin.user.name, points = deleted.points, "an administrator deleted an account");
    let event =
        crate::audit::Event::new(&admin.user.name, "admin.user.delete", None).with("user", deleted.name.clone());
    crate::audit::record(&state.store, event, client.ip).await;
    let view = Json(DeletedAccountView::from(deleted));
    if user.id == admin.user.id {
        // Your own account: your session went with it.
        return Ok(([(header::SET_COOKIE, state.auth.session_clear_cookie(&client))], view).into_response());
    }
    Ok(view.into_response())
}

/// Deletes `user` in the store, then forgets what this server keeps of it.
async fn delete(state: &AppState, user: UserId) -> Result<DeletedAccount, ApiError> {
    let store = state.store.clone();
    let deleted = tokio::task::spawn_blocking(move || store.delete_user(user)).await??;
    state.auth.forget_tokens();
    let jobs = state.imports.forget_user(user);
    if jobs > 0 {
        tracing::info!(jobs, "stopped the deleted account's import jobs");
    }
    state.last_seen.forget_devices(user);
    state.last_seen.forget_grants();
    state.exposure.statuses().forget(&[user]);
    state.live.grants_changed(user);
    state.timeline.poke();
    Ok(deleted)
}
