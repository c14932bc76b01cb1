//! Accounts under `/api/v1`: logging in and out, the caller's own account,
//! devices and their tokens, and (for admins) users.
//!
//! | route | who | answers |
//! |---|---|---|
//! | `POST /api/v1/session` `{username,password}` | anyone | 200 `{user, csrf_token}` + `Set-Cookie` |
//! | `DELETE /api/v1/session` | caller | 204, cookie cleared |
//! | `GET /api/v1/me` | caller | `{user, device, via, csrf_token}` |
//! | `POST /api/v1/me/password` `{current_password,new_password}` | caller, no token | 204; other sessions end |
//! | `GET /api/v1/devices` | caller | `{devices:[{id,name,last_seen,battery,last_position,accuracy,last_point}]}` |
//! | `POST /api/v1/devices` `{name}` | caller | 201 device; 409 when the name is taken |
//! | `POST /api/v1/devices/{id}/tokens` `{label,scopes}` | caller | 201 `{token, …}`: the only time the token is shown |
//! | `PUT /api/v1/devices/{id}/encryption-key` `{key}` | caller | 204: OwnTracks payloads of the device are decrypted, replies encrypted |
//! | `DELETE /api/v1/devices/{id}/encryption-key` | caller | 204: back to clear text |
//! | `GET /api/v1/tokens` | caller | `{tokens:[…]}` (never the secret) |
//! | `DELETE /api/v1/tokens/{id}` | caller | 204; 404 when not the caller's |
//! | `GET /api/v1/users` | admin | `{users:[…]}` |
//! | `POST /api/v1/users` `{name,password,admin}` | admin, no token | 201 user; 409 when taken |
//!
//! Deleting an account (`POST /api/v1/me/delete`, `DELETE /api/v1/users/{name}`)
//! is in `deleting::account`.
//!
//! "admin" means [`AdminCaller`]: an administrator inside the admin
//! networks (`--admin-network`); from elsewhere these answer 403.
//!
//! Device tokens need a scope for most of these (`auth::scope`); a token
//! makes tokens with at most its own scopes, and they are revoked with it.
//!
//! Every handler reads and writes only the caller's user: ids in the path
//! are looked up *within* that user, so another user's device or token is
//! simply not found (404, which also does not reveal that it exists).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use polo_domain::DeviceId;
use polo_store::{Device, Token, TokenGrant, TokenScope, TokenScopes, User};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::AppState;
use crate::audit::{self, Event};
use crate::auth::{
    AdminCaller, Caller, ClientIp, MIN_PASSWORD_LEN, NewSession, PasswordError, Proof, SecondFactor, hash_password,
    new_token,
};
use crate::client::Client;
use crate::error::{AdminForbidden, ApiError, AuthErrors, Conflict, CsrfFailed, Forbidden, JsonBodyErrors, NotFound};

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(login, logout))
        .routes(routes!(me))
        .routes(routes!(change_password))
        .routes(routes!(list_devices, create_device))
        .routes(routes!(create_token))
        .routes(routes!(set_encryption_key, clear_encryption_key))
        .routes(routes!(list_tokens))
        .routes(routes!(revoke_token))
        .routes(routes!(list_users, create_user))
}

type ApiResult<T> = Result<T, ApiError>;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await?
}

/// A user account.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct UserView {
    /// The user's id.
    id: i64,
    /// The login name.
    #[schema(example = "alice")]
    name: String,
    /// Whether the user is an administrator.
    admin: bool,
    /// When the account was created (RFC 3339, UTC).
    #[schema(example = "2024-05-01T12:00:00Z")]
    created: String,
    /// A role besides administrator: `health-authority`, or `null`. Set in the user list, at login and
    /// in `/api/v1/me`.
    #[schema(example = "health-authority")]
    role: Option<&'static str>,
}

impl From<&User> for UserView {
    fn from(user: &User) -> Self {
        Self {
            id: user.id.0,
            name: user.name.clone(),
            admin: user.is_admin,
            created: user.created.to_string(),
            role: None,
        }
    }
}

/// A device: one phone, tracker or source of points.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceView {
    /// The device's id.
    id: i64,
    /// The name, unique per user.
    #[schema(example = "phone")]
    name: String,
}

impl From<&Device> for DeviceView {
    fn from(device: &Device) -> Self {
        Self { id: device.id.0, name: device.name.clone() }
    }
}

/// A device token, without its secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TokenView {
    /// The token's id (for `DELETE /api/v1/tokens/{id}`).
    id: i64,
    /// The device the token authenticates as.
    device: DeviceView,
    /// Free text to tell tokens apart.
    #[schema(example = "Overland on the old phone")]
    label: String,
    /// When the token was made (RFC 3339, UTC).
    created: String,
    /// Its last successful use, updated about once a minute.
    last_used: Option<String>,
    /// What it may do beyond ingesting as its device; empty: the device only.
    #[schema(example = json!(["read"]))]
    scopes: Vec<ScopeName>,
    /// The token that made it, if a token did (it is revoked with that one).
    created_by: Option<i64>,
}

impl From<&Token> for TokenView {
    fn from(token: &Token) -> Self {
        Self {
            id: token.id,
            device: DeviceView::from(&token.device),
            label: token.label.clone(),
            created: token.created.to_string(),
            last_used: token.last_used.map(|t| t.to_string()),
            scopes: token.scopes.iter().map(ScopeName::from).collect(),
            created_by: token.created_by,
        }
    }
}

/// A token scope: what a device token may do beyond ingesting as its device
/// and reading its own latest position.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum ScopeName {
    /// The whole history and everything computed from it.
    Read,
    /// Imports and edits of places, legs and timeline settings.
    Write,
    /// Public share links.
    Share,
    /// Location grants ("friends").
    Friends,
    /// Devices, their tokens and encryption keys.
    Devices,
    /// An administrator's routes.
    Admin,
}

impl From<TokenScope> for ScopeName {
    fn from(scope: TokenScope) -> Self {
        match scope {
            TokenScope::Read => Self::Read,
            TokenScope::Write => Self::Write,
            TokenScope::Share => Self::Share,
            TokenScope::Friends => Self::Friends,
            TokenScope::Devices => Self::Devices,
            TokenScope::Admin => Self::Admin,
        }
    }
}

impl From<ScopeName> for TokenScope {
    fn from(scope: ScopeName) -> Self {
        match scope {
            ScopeName::Read => Self::Read,
            ScopeName::Write => Self::Write,
            ScopeName::Share => Self::Share,
            ScopeName::Friends => Self::Friends,
            ScopeName::Devices => Self::Devices,
            ScopeName::Admin => Self::Admin,
        }
    }
}

/// A new device token: the only answer that shows the secret.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewToken {
    #[serde(flatten)]
    info: TokenView,
    /// The secret: `polo_` and 43 characters. It is not stored and cannot be shown again.
    #[schema(example = "polo_9sQ2xv5dYw0bN3mZp8rT1uVh6kLc4eJfGa7iOyWqHs0")]
    token: String,
}

/// User names: 1–64 of letters, digits, `-`, `_`, `.`, `@` (as `polo user add`).
fn validate_user_name(name: &str) -> ApiResult<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request("user names are 1-64 characters of letters, digits, '-', '_', '.' or '@'"))
    }
}

/// Token labels: at most 64 characters, none a control character
/// (`char::is_control`: U+0000–U+001F, U+007F–U+009F). Stored trimmed.
/// [`TokenBody`] states the same as a pattern. (Device names follow
/// [`polo_domain::validate_device_name`].)
fn clean_text(what: &str, text: &str, allow_empty: bool) -> ApiResult<String> {
    let trimmed = text.trim();
    if (trimmed.is_empty() && !allow_empty) || text.chars().count() > 64 || text.chars().any(char::is_control) {
        let need = if allow_empty { "at most" } else { "1 to" };
        return Err(ApiError::bad_request(format!(
            "{what} must be {need} 64 printable characters, not only white space"
        )));
    }
    Ok(trimmed.to_owned())
}

async fn hash_new_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await?.map_err(|e| match e {
        PasswordError::TooShort { .. } => {
            ApiError::bad_request(format!("the password must be at least {MIN_PASSWORD_LEN} characters long"))
        }
        PasswordError::Hash(e) => ApiError::internal(format!("could not hash the password: {e}")),
    })
}

/// `POST /api/v1/session`'s body.
#[derive(Deserialize, ToSchema)]
pub(crate) struct LoginBody {
    /// The user name.
    #[schema(example = "alice")]
    username: String,
    /// The password.
    #[schema(example = "a long password")]
    password: String,
    /// The second factor, for accounts with one: the authenticator app's six digits, or a recovery
    /// code. Without it such an account answers 401 `two_factor_required`.
    #[serde(default)]
    #[schema(example = "123456")]
    code: Option<String>,
    /// The second factor as a passkey: its answer to a challenge from
    /// `POST /api/v1/session/passkey/options` (instead of `code`).
    #[serde(default)]
    passkey: Option<crate::auth::webauthn::routes::AssertionBody>,
}

/// A new web session.
#[derive(Serialize, ToSchema)]
pub(crate) struct LoginReply {
    /// Who logged in.
    user: UserView,
    /// Send this as `X-CSRF-Token` with every POST and DELETE that uses the cookie.
    csrf_token: String,
}

/// Logs in with the password (and the second factor, when the account has one): sets the
/// `polo_session` cookie (HttpOnly, SameSite=Lax, 30 days). Refused with 403 when password login is
/// turned off (`[oidc] password_login = false`).
#[utoipa::path(
    post,
    path = "/api/v1/session",
    tag = "account",
    request_body = LoginBody,
    responses(
        (status = 200, description = "Logged in", body = LoginReply,
            headers(("Set-Cookie" = String, description = "`polo_session=…; HttpOnly; SameSite=Lax; Path=/`, \
                plus `Secure` when the request came over HTTPS (polo's TLS, or a trusted proxy's \
                `X-Forwarded-Proto: https`)"))),
        JsonBodyErrors,
        (status = 403, description = "`forbidden`: password login is turned off (`[oidc] password_login = false`)",
            body = crate::error::ErrorBody),
        AuthErrors,
    )
)]
async fn login(
    State(state): State<AppState>,
    client: Client,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let proof = match (body.passkey, body.code) {
        (Some(passkey), _) => Proof::Passkey(passkey.into_assertion()?),
        (None, Some(code)) if !code.trim().is_empty() => Proof::Code(code),
        (None, _) => Proof::None,
    };
    let attempt = state.auth.login(&body.username, &body.password, proof, client.ip).await;
    let (session, factor) = match attempt {
        Ok(done) => done,
        Err(e) => {
            // Nobody is let in without the second factor; a missing one is no failure to record.
            if e.code != "two_factor_required" {
                let event = Event::new(&body.username, "auth.login_failed", None)
                    .with("method", "password")
                    .with("reason", e.message.clone());
                audit::record(&state.store, event, client.ip).await;
            }
            return Err(e);
        }
    };
    let mut event = Event::new(&session.user.name, "auth.login", Some(session.user.id)).with("method", "password");
    match factor {
        SecondFactor::None => {}
        SecondFactor::Totp => event = event.with("second_factor", "totp"),
        SecondFactor::Passkey => event = event.with("second_factor", "passkey"),
        SecondFactor::Recovery { left } => {
            event = event.with("second_factor", "recovery_code").with("recovery_codes_left", left);
        }
    }
    audit::record(&state.store, event, client.ip).await;
    login_reply(&state, &client, session).await
}

/// The answer to a login: the session cookie and [`LoginReply`].
pub(crate) async fn login_reply(state: &AppState, client: &Client, session: NewSession) -> ApiResult<Response> {
    let cookie = state.auth.session_set_cookie(&session.cookie_value, client);
    let (store, id) = (state.store.clone(), session.user.id);
    let role = blocking(move || Ok(store.user_role(id)?)).await?;
    let user = UserView { role: role.map(polo_store::Role::name), ..UserView::from(&session.user) };
    let body = Json(LoginReply { user, csrf_token: session.csrf_token });
    Ok(([(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], body)
        .into_response())
}

/// Logs out: ends the session of the cookie, if any, and clears the cookie.
#[utoipa::path(
    delete,
    path = "/api/v1/session",
    tag = "account",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 204, description = "Logged out",
            headers(("Set-Cookie" = String, description = "Clears `polo_session`"))),
        CsrfFailed,
        AuthErrors,
    )
)]
async fn logout(State(state): State<AppState>, client: Client, caller: Caller) -> ApiResult<Response> {
    if let Some(hash) = caller.session_hash().copied() {
        let store = state.store.clone();
        blocking(move || Ok(store.delete_session(&hash)?)).await?;
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, state.auth.session_clear_cookie(&client))]).into_response())
}

/// How the caller authenticated.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Via {
    /// The session cookie.
    Session,
    /// `Authorization: Bearer`.
    Bearer,
    /// `Authorization: Basic` with the password.
    BasicPassword,
    /// `Authorization: Basic` with a device token.
    BasicToken,
}

impl From<crate::auth::AuthMethod> for Via {
    fn from(method: crate::auth::AuthMethod) -> Self {
        use crate::auth::AuthMethod;
        match method {
            AuthMethod::Session => Self::Session,
            AuthMethod::Bearer => Self::Bearer,
            AuthMethod::BasicPassword => Self::BasicPassword,
            AuthMethod::BasicToken => Self::BasicToken,
        }
    }
}

/// The caller.
#[derive(Serialize, ToSchema)]
pub(crate) struct MeView {
    /// The user.
    user: UserView,
    /// The device whose token authenticated the request.
    device: Option<DeviceView>,
    /// How the request authenticated.
    via: Via,
    /// The session's CSRF token (cookie-authenticated requests only).
    csrf_token: Option<String>,
    /// A device token's scopes (absent for the password and sessions, which have no limits).
    #[serde(skip_serializing_if = "Option::is_none")]
    scopes: Option<Vec<ScopeName>>,
}

/// The caller: user, device (for a device token) and how they authenticated.
#[utoipa::path(
    get,
    path = "/api/v1/me",
    tag = "account",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = MeView), AuthErrors)
)]
async fn me(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<MeView>> {
    let (store, id) = (state.store.clone(), caller.user.id);
    let role = blocking(move || Ok(store.user_role(id)?)).await?;
    Ok(Json(MeView {
        user: UserView { role: role.map(polo_store::Role::name), ..UserView::from(&caller.user) },
        device: caller.device.as_ref().map(DeviceView::from),
        via: caller.via.into(),
        csrf_token: caller.csrf_token().map(str::to_owned),
        scopes: caller.token.map(|t| t.scopes.iter().map(ScopeName::from).collect()),
    }))
}

/// `POST /api/v1/me/password`'s body (`current` and `new` are accepted as aliases).
#[derive(Deserialize, ToSchema)]
pub(crate) struct PasswordBody {
    /// The password now.
    #[serde(alias = "current")]
    current_password: String,
    /// The new password.
    #[serde(alias = "new")]
    #[schema(min_length = 8)]
    new_password: String,
}

/// Changes the password; the caller's other sessions end. Not with a device token.
#[utoipa::path(
    post,
    path = "/api/v1/me/password",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    request_body = PasswordBody,
    responses(
        (status = 204, description = "Changed"),
        JsonBodyErrors,
        Forbidden,
        AuthErrors,
    )
)]
async fn change_password(
    State(state): State<AppState>,
    caller: Caller,
    ClientIp(ip): ClientIp,
    body: Result<Json<PasswordBody>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Json(body) = body?;
    caller.require_password_grade()?;
    state.auth.confirm_password(&caller.user, &body.current_password, ip).await?;
    let hash = hash_new_password(body.new_password).await?;
    let (store, user, keep) = (state.store.clone(), caller.user.id, caller.session_hash().copied());
    blocking(move || {
        store.set_password(user, &hash)?;
        store.delete_user_sessions(user, keep.as_ref())?;
        Ok(())
    })
    .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Where a device was last.
#[derive(Serialize, ToSchema)]
pub(crate) struct LastPoint {
    /// The fix's time (RFC 3339, UTC).
    time: String,
    /// Latitude in degrees.
    lat: f64,
    /// Longitude in degrees.
    lon: f64,
}

/// Where a device was last, for a map marker.
#[derive(Serialize, ToSchema)]
pub(crate) struct Position {
    /// Latitude in degrees.
    lat: f64,
    /// Longitude in degrees.
    lon: f64,
}

/// A device with its newest point: what a device list shows as its status.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeviceSummary {
    /// The device's id.
    id: i64,
    /// The name, which points arrive under.
    name: String,
    /// What to call it in the app (`PUT /api/v1/devices/{id}/label`, or imported from Takeout
    /// `Settings.json`); absent when it has none, and the app shows the name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Anna's Pixel")]
    label: Option<String>,
    /// The newest point's time (RFC 3339, UTC); `null` before the first point.
    last_seen: Option<String>,
    /// The battery level (percent) the newest point reported, when it did.
    battery: Option<u8>,
    /// Where the newest point is.
    last_position: Option<Position>,
    /// The horizontal accuracy of the newest point, in metres, when known.
    accuracy: Option<f64>,
    /// The newest point (time and position together).
    last_point: Option<LastPoint>,
}

/// The caller's devices.
#[derive(Serialize, ToSchema)]
pub(crate) struct DeviceList {
    /// By id.
    devices: Vec<DeviceSummary>,
}

/// The caller's devices with their newest point.
#[utoipa::path(
    get,
    path = "/api/v1/devices",
    tag = "account",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = DeviceList), AuthErrors)
)]
async fn list_devices(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<DeviceList>> {
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let mut devices = Vec::new();
        let mut labels = crate::device_labels::labels(store.as_ref(), user)?;
        for device in store.list_devices(user)? {
            let last = store.last_point(user, device.id)?;
            devices.push(DeviceSummary {
                id: device.id.0,
                label: labels.remove(&device.name),
                name: device.name,
                last_seen: last.as_ref().map(|p| p.fix.time.to_string()),
                battery: last.as_ref().and_then(|p| p.fix.battery_percent),
                last_position: last.as_ref().map(|p| Position { lat: p.fix.coord.lat(), lon: p.fix.coord.lon() }),
                accuracy: last.as_ref().and_then(|p| p.fix.horizontal_accuracy_m()),
                last_point: last.as_ref().map(|p| LastPoint {
                    time: p.fix.time.to_string(),
                    lat: p.fix.coord.lat(),
                    lon: p.fix.coord.lon(),
                }),
            });
        }
        Ok(Json(DeviceList { devices }))
    })
    .await
}

/// `POST /api/v1/devices`'s body.
#[derive(Deserialize, ToSchema)]
pub(crate) struct DeviceBody {
    /// The name (stored trimmed): at most 64 characters, not only white space, no control
    /// characters, none of `/ + # \ < >`, not starting with `.`.
    #[schema(
        example = "phone",
        max_length = 64,
        pattern = "^(?!\\s*\\.)(?=[^\\u0000-\\u001f]*[^\\s])[^/+#\\\\<>\\u0000-\\u001f\\u007f-\\u009f\\u2028\\u2029]*$"
    )]
    name: String,
}

/// Adds a device.
#[utoipa::path(
    post,
    path = "/api/v1/devices",
    tag = "account",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = DeviceBody,
    responses((status = 201, description = "Created", body = DeviceView), JsonBodyErrors, Conflict, CsrfFailed, AuthErrors)
)]
async fn create_device(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<DeviceBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<DeviceView>)> {
    let Json(body) = body?;
    let name = crate::ingest::routes::checked_device_name("name", &body.name)?.to_owned();
    let (store, user) = (state.store.clone(), caller.user.id);
    let created = blocking(move || {
        if store.list_devices(user)?.iter().any(|d| d.name == name) {
            return Err(ApiError::conflict(format!("you already have a device named {name:?}")));
        }
        let device = store.ensure_device(user, &name)?;
        Ok((StatusCode::CREATED, Json(DeviceView::from(&device))))
    })
    .await;
    state.last_seen.forget_devices(user);
    created
}

/// `POST /api/v1/devices/{id}/tokens`'s body; may be omitted.
#[derive(Deserialize, Default, ToSchema)]
pub(crate) struct TokenBody {
    /// Free text to tell tokens apart: at most 64 characters, no control characters (stored trimmed).
    #[serde(default)]
    #[schema(example = "Overland", max_length = 64, pattern = "^[^\\u0000-\\u001f\\u007f-\\u009f]*$")]
    label: String,
    /// What the token may do beyond ingesting as its device and reading its own latest position
    /// (and the OwnTracks friends reply). None (the default) is right for a phone. A device token
    /// can give only scopes it has itself.
    #[serde(default)]
    #[schema(example = json!([]))]
    scopes: Vec<ScopeName>,
}

/// Makes a device token. A device token (with the `devices` scope) makes tokens with at most its
/// own scopes, and they are revoked with it.
#[utoipa::path(
    post,
    path = "/api/v1/devices/{id}/tokens",
    tag = "account",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The device's id")),
    request_body(content = Option<TokenBody>, description = "Optional: no body, or `null`, is an empty label"),
    responses(
        (status = 201, description = "Created: the only time the token is shown", body = NewToken),
        JsonBodyErrors,
        Forbidden,
        NotFound,
        AuthErrors,
    )
)]
async fn create_token(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<Option<TokenBody>>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<NewToken>)> {
    let Path(id) = id?;
    // No body, or `null`, is fine: the label is optional.
    let body = match body {
        Ok(Json(body)) => body.unwrap_or_default(),
        Err(JsonRejection::MissingJsonContentType(_)) => TokenBody::default(),
        Err(e) => return Err(e.into()),
    };
    let label = clean_text("the label", &body.label, true)?;
    let scopes: TokenScopes = body.scopes.iter().copied().map(TokenScope::from).collect();
    if let Some(beyond) = scopes.iter().find(|s| !caller.grantable_scopes().contains(*s)) {
        return Err(ApiError::forbidden(format!(
            "scopes: this device token cannot give the {:?} scope, which it does not have itself",
            beyond.name()
        )));
    }
    let grant = TokenGrant { scopes, created_by: caller.maker() };
    let (store, user) = (state.store.clone(), caller.user.id);
    let made = blocking(move || {
        if !store.list_devices(user)?.iter().any(|d| d.id == DeviceId(id)) {
            return Err(ApiError::not_found(format!("you have no device {id}")));
        }
        let (secret, hash) = new_token();
        let token = store.create_token(user, DeviceId(id), &label, &hash, grant)?;
        Ok((StatusCode::CREATED, Json(NewToken { info: TokenView::from(&token), token: secret })))
    })
    .await?;
    let info = &made.1.info;
    let event = Event::new(&caller.user.name, "token.create", Some(caller.user.id))
        .with("token", info.id)
        .with("device", info.device.name.clone())
        .with("scopes", serde_json::to_value(&info.scopes).unwrap_or_default());
    audit::record(&state.store, event, client.ip).await;
    Ok(made)
}

/// `PUT /api/v1/devices/{id}/encryption-key`'s body.
#[derive(Deserialize, ToSchema)]
pub(crate) struct EncryptionKeyBody {
    /// The passphrase set as "Encryption key" in the device's OwnTracks app:
    /// 1 to 32 bytes of UTF-8 (libsodium uses it cut or zero-padded to 32 bytes).
    #[schema(example = "correct horse battery", min_length = 1, max_length = 32)]
    key: String,
}

/// Sets the passphrase the device's OwnTracks app encrypts with. Encrypted
/// payloads from the device are then decrypted, and its replies encrypted.
#[utoipa::path(
    put,
    path = "/api/v1/devices/{id}/encryption-key",
    tag = "account",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The device's id")),
    request_body = EncryptionKeyBody,
    responses((status = 204, description = "Set"), JsonBodyErrors, Forbidden, NotFound, AuthErrors)
)]
async fn set_encryption_key(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<EncryptionKeyBody>, JsonRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    let Json(body) = body?;
    if body.key.is_empty() || body.key.len() > 32 {
        return Err(ApiError::bad_request(format!(
            "the key must be 1 to 32 bytes of UTF-8 (OwnTracks uses at most 32), not {}",
            body.key.len()
        )));
    }
    store_encryption_key(&state, &caller, DeviceId(id), Some(body.key)).await
}

/// Removes the device's encryption passphrase: its payloads must then be clear text.
#[utoipa::path(
    delete,
    path = "/api/v1/devices/{id}/encryption-key",
    tag = "account",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The device's id")),
    responses((status = 204, description = "Removed (or there was none)"), Forbidden, NotFound, AuthErrors)
)]
async fn clear_encryption_key(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    store_encryption_key(&state, &caller, DeviceId(id), None).await
}

async fn store_encryption_key(
    state: &AppState,
    caller: &Caller,
    device: DeviceId,
    key: Option<String>,
) -> ApiResult<StatusCode> {
    let (store, user) = (state.store.clone(), caller.user.id);
    let stored = blocking(move || match store.set_device_encryption_key(user, device, key.as_deref()) {
        Ok(()) => Ok(StatusCode::NO_CONTENT),
        Err(polo_store::StoreError::NotFound(_)) => Err(ApiError::not_found(format!("you have no device {device}"))),
        Err(e) => Err(e.into()),
    })
    .await;
    state.last_seen.forget_encryption_key(device);
    stored
}

/// The caller's tokens.
#[derive(Serialize, ToSchema)]
pub(crate) struct TokenList {
    /// Never with their secrets.
    tokens: Vec<TokenView>,
}

/// The caller's device tokens (never their secrets).
#[utoipa::path(
    get,
    path = "/api/v1/tokens",
    tag = "account",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = TokenList), AuthErrors)
)]
async fn list_tokens(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<TokenList>> {
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || Ok(Json(TokenList { tokens: store.list_tokens(user)?.iter().map(TokenView::from).collect() })))
        .await
}

/// Revokes one of the caller's tokens.
#[utoipa::path(
    delete,
    path = "/api/v1/tokens/{id}",
    tag = "account",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The token's id")),
    responses((status = 204, description = "Revoked"), NotFound, CsrfFailed, AuthErrors)
)]
async fn revoke_token(
    State(state): State<AppState>,
    client: Client,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> ApiResult<StatusCode> {
    let Path(id) = id?;
    let (store, user) = (state.store.clone(), caller.user.id);
    let revoked = blocking(move || {
        if store.revoke_token(user, id)? {
            Ok(StatusCode::NO_CONTENT)
        } else {
            Err(ApiError::not_found(format!("you have no token {id}")))
        }
    })
    .await;
    // After the revocation committed, so no request can re-cache the token.
    state.auth.forget_tokens();
    if revoked.is_ok() {
        let event = Event::new(&caller.user.name, "token.revoke", Some(caller.user.id)).with("token", id);
        audit::record(&state.store, event, client.ip).await;
    }
    revoked
}

/// Every user.
#[derive(Serialize, ToSchema)]
pub(crate) struct UserList {
    /// By id.
    users: Vec<UserView>,
}

/// Every user (admins only).
#[utoipa::path(
    get,
    path = "/api/v1/users",
    tag = "account",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = UserList), AdminForbidden, AuthErrors)
)]
async fn list_users(State(state): State<AppState>, AdminCaller(_admin): AdminCaller) -> ApiResult<Json<UserList>> {
    let store = state.store.clone();
    blocking(move || {
        let roles: std::collections::BTreeMap<_, _> = store.user_roles()?.into_iter().collect();
        let users = store.list_users()?;
        let view = |u: &User| UserView { role: roles.get(&u.id).map(|r| r.name()), ..UserView::from(u) };
        Ok(Json(UserList { users: users.iter().map(view).collect() }))
    })
    .await
}

/// `POST /api/v1/users`'s body.
#[derive(Deserialize, ToSchema)]
pub(crate) struct UserBody {
    /// The login name: 1–64 letters, digits, `-`, `_`, `.` or `@`.
    #[schema(example = "bob", pattern = "^[A-Za-z0-9._@-]{1,64}$")]
    name: String,
    /// At least 8 characters.
    #[schema(example = "another long password", min_length = 8)]
    password: String,
    /// Make the user an administrator.
    #[serde(default)]
    admin: bool,
}

/// Creates a user (admins only, not with a device token).
#[utoipa::path(
    post,
    path = "/api/v1/users",
    tag = "account",
    security(("session" = [], "csrf" = []), ("basic" = [])),
    request_body = UserBody,
    responses((status = 201, description = "Created", body = UserView), JsonBodyErrors, AdminForbidden, Conflict, AuthErrors)
)]
async fn create_user(
    State(state): State<AppState>,
    client: Client,
    AdminCaller(admin): AdminCaller,
    body: Result<Json<UserBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<UserView>)> {
    let Json(body) = body?;
    admin.require_password_grade()?;
    validate_user_name(&body.name)?;
    let hash = hash_new_password(body.password).await?;
    let store = state.store.clone();
    let user = blocking(move || Ok(store.create_user(&body.name, &hash, body.admin)?)).await?;
    let event = Event::new(&admin.user.name, "admin.user.create", Some(user.id)).with("admin", user.is_admin);
    audit::record(&state.store, event, client.ip).await;
    Ok((StatusCode::CREATED, Json(UserView::from(&user))))
}
