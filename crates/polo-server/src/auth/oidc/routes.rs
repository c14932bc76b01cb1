//! The OIDC routes.
//!
//! | route | who | answers |
//! |---|---|---|
//! | `GET /api/v1/auth/oidc/login` | anyone | 303 to the provider + `polo_oidc` cookie |
//! | `GET /api/v1/auth/oidc/callback` | the provider's redirect | 303 to `/` with a session, or to `/login?error=…` |
//! | `GET /api/v1/me/oidc` | caller | `{configured, label, linked}` |
//! | `POST /api/v1/me/oidc` | caller, no token | `{url}` to link the account + `polo_oidc` cookie |
//! | `DELETE /api/v1/me/oidc` | caller, no token | 204; 404 when not linked |
//!
//! The login and callback routes are browser navigations, so their failures
//! are redirects to a page that shows the message (`/login?error=…`, or
//! `/account?oidc_error=…` when linking), never JSON. Linking finishes only
//! in the browser that started it, for the user still logged in there.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::flow::{FLOW_COOKIE, Purpose};
use super::{Oidc, OidcError, accounts};
use crate::AppState;
use crate::audit::{self, Event};
use crate::auth::{Caller, OptionalCaller, hash_password, random_secret};
use crate::client::Client;
use crate::error::{ApiError, AuthErrors, CsrfFailed, Forbidden, NotFound};

const FLOW_COOKIE_PATH: &str = "/api/v1/auth/oidc";

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(login)).routes(routes!(callback)).routes(routes!(
        link_status,
        start_link,
        unlink
    ))
}

fn configured(state: &AppState) -> Result<&std::sync::Arc<Oidc>, ApiError> {
    state.oidc.as_ref().ok_or_else(|| ApiError::not_found("sign-in with an identity provider is not configured"))
}

/// A 303 to `location` (a path on this server, or the provider's URL).
fn see_other(location: &str, cookies: &[HeaderValue]) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(location) {
        headers.insert(header::LOCATION, value);
    }
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    for cookie in cookies {
        headers.append(header::SET_COOKIE, cookie.clone());
    }
    response
}

/// `path?name=message`, the message form-encoded.
fn with_message(path: &str, name: &str, message: &str) -> String {
    format!("{path}?{}", serde_urlencoded::to_string([(name, message)]).unwrap_or_default())
}

/// Sends the browser to the provider to sign in.
#[utoipa::path(
    get,
    path = "/api/v1/auth/oidc/login",
    tag = "account",
    responses(
        (status = 303, description = "To the provider's authorization endpoint (or to `/login?error=…` when it \
            cannot be reached)",
            headers(("Location" = String), ("Set-Cookie" = String, description = "`polo_oidc`: binds the attempt to this browser"))),
        NotFound,
    )
)]
async fn login(State(state): State<AppState>, client: Client) -> Result<Response, ApiError> {
    let oidc = configured(&state)?;
    match oidc.begin(state.store.clone(), Purpose::Login).await {
        Ok(redirect) => {
            let cookie = state.auth.set_cookie(FLOW_COOKIE, &redirect.browser_cookie, FLOW_COOKIE_PATH, 600, &client);
            Ok(see_other(&redirect.url, &[cookie]))
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot start an OIDC sign-in");
            Ok(see_other(&with_message("/login", "error", &e.to_string()), &[]))
        }
    }
}

/// The callback's query: the code and state, or the provider's error.
#[derive(Debug, Deserialize, IntoParams)]
pub(crate) struct CallbackQuery {
    /// The authorization code.
    code: Option<String>,
    /// The state polo sent.
    state: Option<String>,
    /// The provider's error code, when it did not sign the user in.
    error: Option<String>,
    /// Its explanation.
    error_description: Option<String>,
}

/// Where the provider sends the browser back: finishes signing in (or linking).
#[utoipa::path(
    get,
    path = "/api/v1/auth/oidc/callback",
    tag = "account",
    params(CallbackQuery),
    responses(
        (status = 303, description = "Signed in: to `/` with the `polo_session` cookie. Linked: to \
            `/account?oidc=linked`. Refused: to `/login?error=…` (or `/account?oidc_error=…`) with the reason",
            headers(("Location" = String), ("Set-Cookie" = String))),
        NotFound,
    )
)]
async fn callback(
    State(state): State<AppState>,
    client: Client,
    headers: HeaderMap,
    OptionalCaller(caller): OptionalCaller,
    Query(query): Query<CallbackQuery>,
) -> Result<Response, ApiError> {
    let oidc = configured(&state)?.clone();
    let clear = state.auth.set_cookie(FLOW_COOKIE, "", FLOW_COOKIE_PATH, 0, &client);
    let Some(flow_state) = query.state.clone() else {
        let message = "the provider sent no state; start the sign-in again";
        return Ok(see_other(&with_message("/login", "error", message), &[clear]));
    };
    let cookie = crate::auth::cookie(&headers, FLOW_COOKIE).map(str::to_owned);
    let flow = match oidc.take(state.store.clone(), flow_state, cookie).await {
        Ok(flow) => flow,
        Err(e) => return Ok(see_other(&with_message("/login", "error", &e.to_string()), &[clear])),
    };
    let outcome = async {
        if let Some(error) = &query.error {
            let text = query.error_description.as_deref().unwrap_or(error);
            return Err(OidcError::Refused(text.chars().take(200).collect()));
        }
        let code = query.code.as_deref().ok_or_else(|| OidcError::Refused("no authorization code".into()))?;
        oidc.finish(&flow, code, audit::now()).await
    }
    .await;
    match flow.purpose {
        Purpose::Login => finish_login(&state, &oidc, &client, outcome, clear).await,
        Purpose::Link(user) => finish_link(&state, &client, caller, user, outcome, clear).await,
    }
}

async fn finish_login(
    state: &AppState,
    oidc: &std::sync::Arc<Oidc>,
    client: &Client,
    outcome: Result<super::claims::Identity, OidcError>,
    clear: HeaderValue,
) -> Result<Response, ApiError> {
    let signed_in = match outcome {
        Ok(identity) => {
            let unusable = tokio::task::spawn_blocking(|| hash_password(&random_secret()))
                .await?
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let (store, oidc, who) = (state.store.clone(), oidc.clone(), identity.clone());
            let result =
                tokio::task::spawn_blocking(move || accounts::sign_in(&*store, &oidc.settings, &who, &unusable))
                    .await?;
            result.map(|(user, events)| (user, events, identity))
        }
        Err(e) => Err(e),
    };
    match signed_in {
        Ok((user, events, identity)) => {
            for event in events {
                audit::record(&state.store, event, client.ip).await;
            }
            let event = Event::new(&user.name, "auth.login", Some(user.id)).with("method", "oidc");
            audit::record(&state.store, event.with("oidc_subject", identity.subject), client.ip).await;
            let session = state.auth.start_session(user, client.ip, "oidc").await?;
            let cookie = state.auth.session_set_cookie(&session.cookie_value, client);
            Ok(see_other("/", &[clear, cookie]))
        }
        Err(e) => {
            if let OidcError::Store(error) = &e {
                tracing::warn!(%error, "OIDC sign-in failed in the store");
            }
            let event = Event::new("", "auth.login_failed", None).with("method", "oidc").with("reason", e.to_string());
            audit::record(&state.store, event, client.ip).await;
            Ok(see_other(&with_message("/login", "error", &e.to_string()), &[clear]))
        }
    }
}

async fn finish_link(
    state: &AppState,
    client: &Client,
    caller: Option<Caller>,
    user: i64,
    outcome: Result<super::claims::Identity, OidcError>,
    clear: HeaderValue,
) -> Result<Response, ApiError> {
    let result = match (outcome, caller) {
        (Err(e), _) => Err(e),
        (Ok(identity), Some(caller)) if caller.user.id.0 == user => {
            let store = state.store.clone();
            tokio::task::spawn_blocking(move || accounts::link(&*store, &caller.user, &identity)).await?
        }
        (Ok(_), _) => Err(OidcError::Denied("log in to polo again in this browser, then link the account".into())),
    };
    match result {
        Ok(event) => {
            audit::record(&state.store, event, client.ip).await;
            Ok(see_other("/account?oidc=linked", &[clear]))
        }
        Err(e) => Ok(see_other(&with_message("/account", "oidc_error", &e.to_string()), &[clear])),
    }
}

/// The caller's link to the identity provider.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LinkView {
    /// Whether sign-in with a provider is configured.
    configured: bool,
    /// The login button's text, when configured.
    #[schema(example = "Sign in with Keycloak")]
    label: Option<String>,
    /// The linked provider account, if any.
    linked: Option<LinkedView>,
}

/// A linked provider account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LinkedView {
    /// The issuer.
    #[schema(example = "https://id.example.org/realms/polo")]
    issuer: String,
    /// The subject (the provider's id of the account).
    subject: String,
    /// Its e-mail address when linked.
    email: Option<String>,
}

/// Your link to the identity provider.
#[utoipa::path(
    get,
    path = "/api/v1/me/oidc",
    tag = "account",
    security(("session" = []), ("basic" = [])),
    responses((status = 200, body = LinkView), Forbidden, AuthErrors)
)]
async fn link_status(State(state): State<AppState>, caller: Caller) -> Result<Json<LinkView>, ApiError> {
    let (store, id) = (state.store.clone(), caller.user.id);
    let linked = tokio::task::spawn_blocking(move || accounts::link_of(&*store, id)).await??;
    Ok(Json(LinkView {
        configured: state.oidc.is_some(),
        label: state.oidc.as_ref().map(|o| o.settings.button_label.clone()),
        linked: linked.map(|l| LinkedView { issuer: l.issuer, subject: l.subject, email: l.email }),
    }))
}

/// Where to send the browser to link the account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LinkStart {
    /// The provider's authorization URL: navigate there.
    url: String,
}

/// Starts linking your account to the identity provider: navigate to the `url` answered, in this
/// browser; the callback links the provider account that signs in there.
#[utoipa::path(
    post,
    path = "/api/v1/me/oidc",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    responses(
        (status = 200, body = LinkStart,
            headers(("Set-Cookie" = String, description = "`polo_oidc`: binds the attempt to this browser"))),
        (status = 503, description = "`unavailable`: the provider cannot be reached", body = crate::error::ErrorBody),
        Forbidden, NotFound, CsrfFailed, AuthErrors
    )
)]
async fn start_link(State(state): State<AppState>, client: Client, caller: Caller) -> Result<Response, ApiError> {
    caller.require_password_grade()?;
    let oidc = configured(&state)?;
    let redirect = oidc.begin(state.store.clone(), Purpose::Link(caller.user.id.0)).await.map_err(|e| match e {
        OidcError::Store(e) => ApiError::from(e),
        other => ApiError::unavailable(other.to_string()),
    })?;
    let cookie = state.auth.set_cookie(FLOW_COOKIE, &redirect.browser_cookie, FLOW_COOKIE_PATH, 600, &client);
    Ok(([(header::SET_COOKIE, cookie)], Json(LinkStart { url: redirect.url })).into_response())
}

/// Removes the link: the provider account no longer signs in as yours.
#[utoipa::path(
    delete,
    path = "/api/v1/me/oidc",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    responses((status = 204, description = "Unlinked"), Forbidden, NotFound, CsrfFailed, AuthErrors)
)]
async fn unlink(State(state): State<AppState>, client: Client, caller: Caller) -> Result<StatusCode, ApiError> {
    caller.require_password_grade()?;
    let (store, id) = (state.store.clone(), caller.user.id);
    if !tokio::task::spawn_blocking(move || accounts::unlink(&*store, id)).await?? {
        return Err(ApiError::not_found("your account is not linked to an identity provider"));
    }
    audit::record(&state.store, Event::new(&caller.user.name, "auth.oidc.unlink", Some(caller.user.id)), client.ip)
        .await;
    Ok(StatusCode::NO_CONTENT)
}
