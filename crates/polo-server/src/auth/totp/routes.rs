//! The second-factor routes of the logged-in account.
//!
//! | route | who | answers |
//! |---|---|---|
//! | `GET /api/v1/me/2fa` | caller, no token | `{enabled, pending, recovery_codes_left, passkeys, required_for_admins}` |
//! | `POST /api/v1/me/2fa` | caller, no token | `{secret, otpauth_url}`: a pending enrolment; 409 when on already |
//! | `POST /api/v1/me/2fa/confirm` `{code}` | caller, no token | `{recovery_codes}` (shown once); 403 for a wrong code |
//! | `POST /api/v1/me/2fa/disable` `{code}` | caller, no token | 204; 403 for a wrong code |
//!
//! Turning the factor off needs a code (the app's, or a recovery code), so a
//! session left open somewhere cannot remove it; wrong codes count towards
//! the login back-off.

use axum::Json;
use axum::extract::State;
use axum::extract::rejection::JsonRejection;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::{Checked, code};
use crate::AppState;
use crate::audit::{self, Event};
use crate::auth::Caller;
use crate::client::Client;
use crate::error::{ApiError, AuthErrors, Conflict, CsrfFailed, Forbidden, JsonBodyErrors};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(status, begin)).routes(routes!(confirm)).routes(routes!(disable))
}

async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> polo_store::StoreResult<T> + Send + 'static,
) -> Result<T, ApiError> {
    Ok(tokio::task::spawn_blocking(f).await??)
}

/// Your second factor.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TwoFactorView {
    /// Logins need a code.
    enabled: bool,
    /// An enrolment waits for its confirming code.
    pending: bool,
    /// Unused recovery codes.
    recovery_codes_left: usize,
    /// Registered passkeys: each is a second factor too (`GET /api/v1/me/passkeys`).
    passkeys: usize,
    /// The instance requires administrators to have a second factor.
    required_for_admins: bool,
}

/// Whether your account has a second factor.
#[utoipa::path(
    get,
    path = "/api/v1/me/2fa",
    tag = "account",
    security(("session" = []), ("basic" = [])),
    responses((status = 200, body = TwoFactorView), Forbidden, AuthErrors)
)]
async fn status(State(state): State<AppState>, caller: Caller) -> Result<Json<TwoFactorView>, ApiError> {
    let (store, id) = (state.store.clone(), caller.user.id);
    let (current, required, passkeys) = blocking(move || {
        Ok((super::load(&*store, id)?, super::required_for_admins(&*store)?, crate::auth::webauthn::list(&*store, id)?))
    })
    .await?;
    Ok(Json(TwoFactorView {
        enabled: current.as_ref().is_some_and(|s| s.enabled),
        pending: current.as_ref().is_some_and(|s| !s.enabled),
        recovery_codes_left: current.map_or(0, |s| s.recovery.len()),
        passkeys: passkeys.len(),
        required_for_admins: required,
    }))
}

/// A pending enrolment: what the authenticator app needs.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Enrolment {
    /// The secret, base32 (to type in when the QR code cannot be scanned).
    #[schema(example = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP")]
    secret: String,
    /// The `otpauth://totp/…` URL: show it as a QR code.
    otpauth_url: String,
}

/// Starts turning on two-factor authentication: a new secret for the authenticator app. Nothing
/// changes at login until it is confirmed with a code.
#[utoipa::path(
    post,
    path = "/api/v1/me/2fa",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    responses((status = 200, body = Enrolment), Conflict, Forbidden, CsrfFailed, AuthErrors)
)]
async fn begin(State(state): State<AppState>, caller: Caller) -> Result<Json<Enrolment>, ApiError> {
    caller.require_password_grade()?;
    let (store, id) = (state.store.clone(), caller.user.id);
    let secret =
        tokio::task::spawn_blocking(move || super::begin(&*store, id, audit::now())).await?.map_err(|e| match e {
            polo_store::StoreError::Refused(why) => ApiError::conflict(why),
            other => ApiError::from(other),
        })?;
    let (site, _, _) = crate::site::effective(&state).await?;
    let otpauth_url = code::otpauth_url(&site.instance_name, &caller.user.name, &secret);
    Ok(Json(Enrolment { secret, otpauth_url }))
}

/// A code from the authenticator app (or, to turn the factor off, a recovery code).
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CodeBody {
    /// Six digits, or a recovery code like `ABCDE-FGHIJ`.
    #[schema(example = "123456")]
    code: String,
}

/// The recovery codes: each signs in once instead of the app's code. Shown only now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct RecoveryCodes {
    /// Ten codes.
    #[schema(example = json!(["ABCDE-FGHIJ"]))]
    recovery_codes: Vec<String>,
}

/// Confirms the enrolment with the app's current code: from now on logins need a code.
#[utoipa::path(
    post,
    path = "/api/v1/me/2fa/confirm",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    request_body = CodeBody,
    responses(
        (status = 200, body = RecoveryCodes),
        (status = 409, description = "`conflict`: no enrolment is pending", body = crate::error::ErrorBody),
        JsonBodyErrors, Forbidden, CsrfFailed, AuthErrors
    )
)]
async fn confirm(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    body: Result<Json<CodeBody>, JsonRejection>,
) -> Result<Json<RecoveryCodes>, ApiError> {
    let Json(body) = body?;
    caller.require_password_grade()?;
    let (store, id) = (state.store.clone(), caller.user.id);
    let codes = tokio::task::spawn_blocking(move || super::confirm(&*store, id, &body.code, audit::now()))
        .await?
        .map_err(|e| match e {
            polo_store::StoreError::Refused(why) => ApiError::conflict(why),
            other => ApiError::from(other),
        })?;
    let Some(recovery_codes) = codes else {
        return Err(ApiError::forbidden("code: wrong code; check the time on the phone and try the next code"));
    };
    audit::record(&state.store, Event::new(&caller.user.name, "auth.2fa.enable", Some(caller.user.id)), client.ip)
        .await;
    Ok(Json(RecoveryCodes { recovery_codes }))
}

/// Turns two-factor authentication off; needs a current code or a recovery code.
#[utoipa::path(
    post,
    path = "/api/v1/me/2fa/disable",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    request_body = CodeBody,
    responses((status = 204, description = "Turned off"), JsonBodyErrors, Forbidden, CsrfFailed, AuthErrors)
)]
async fn disable(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    body: Result<Json<CodeBody>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Json(body) = body?;
    caller.require_password_grade()?;
    let (store, id) = (state.store.clone(), caller.user.id);
    if !blocking(move || super::enabled(&*store, id)).await? {
        let store = state.store.clone();
        // A pending enrolment is simply forgotten.
        blocking(move || super::disable(&*store, id)).await?;
        return Ok(StatusCode::NO_CONTENT);
    }
    if state.auth.second_factor(&caller.user, &body.code, client.ip).await? == Checked::Wrong {
        return Err(ApiError::forbidden("code: wrong code"));
    }
    let store = state.store.clone();
    blocking(move || super::disable(&*store, id)).await?;
    audit::record(&state.store, Event::new(&caller.user.name, "auth.2fa.disable", Some(caller.user.id)), client.ip)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
