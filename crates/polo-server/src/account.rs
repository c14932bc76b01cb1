//! Accounts under `/api/v1`: logging in and out, the caller's own account,
//! devices and their tokens, and (for admins) users.
//!
//! | route | who | answers |
//! |---|---|---|
//! | `POST /api/v1/session` `{username,password}` | anyone | 200 `{user, csrf_token}` + `Set-Cookie` |
//! | `DELETE /api/v1/session` | caller | 204, cookie cleared |
//! | `GET /api/v1/me` | caller | `{user, device, via, csrf_token}` |
//! | `POST /api/v1/me/password` `{current_password,new_password}` | caller, no token | 204; other sessions end |
//! | `GET /api/v1/devices` | caller | `{devices:[{id,name,last_seen,last_point}]}` |
//! | `POST /api/v1/devices` `{name}` | caller | 201 device; 409 when the name is taken |
//! | `POST /api/v1/devices/{id}/tokens` `{label}` | caller, no token | 201 `{token, …}`: the only time the token is shown |
//! | `GET /api/v1/tokens` | caller | `{tokens:[…]}` (never the secret) |
//! | `DELETE /api/v1/tokens/{id}` | caller | 204; 404 when not the caller's |
//! | `GET /api/v1/users` | admin | `{users:[…]}` |
//! | `POST /api/v1/users` `{name,password,admin}` | admin, no token | 201 user; 409 when taken |
//!
//! Every handler reads and writes only the caller's user: ids in the path
//! are looked up *within* that user, so another user's device or token is
//! simply not found (404, which also does not reveal that it exists).

use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use polo_domain::DeviceId;
use polo_store::{Device, Token, User};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::AppState;
use crate::auth::{AdminCaller, Caller, ClientIp, MIN_PASSWORD_LEN, PasswordError, hash_password, new_token};
use crate::error::ApiError;

pub(crate) fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/session", post(login).delete(logout))
        .route("/api/v1/me", get(me))
        .route("/api/v1/me/password", post(change_password))
        .route("/api/v1/devices", get(list_devices).post(create_device))
        .route("/api/v1/devices/{id}/tokens", post(create_token))
        .route("/api/v1/tokens", get(list_tokens))
        .route("/api/v1/tokens/{id}", delete(revoke_token))
        .route("/api/v1/users", get(list_users).post(create_user))
}

type ApiResult<T> = Result<T, ApiError>;

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> ApiResult<T> + Send + 'static) -> ApiResult<T> {
    tokio::task::spawn_blocking(f).await?
}

fn user_json(user: &User) -> Value {
    json!({"id": user.id, "name": user.name, "admin": user.is_admin, "created": user.created.to_string()})
}

fn device_json(device: &Device) -> Value {
    json!({"id": device.id, "name": device.name})
}

fn token_json(token: &Token) -> Value {
    json!({
        "id": token.id,
        "device": device_json(&token.device),
        "label": token.label,
        "created": token.created.to_string(),
        "last_used": token.last_used.map(|t| t.to_string()),
    })
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

/// Device names and labels: printable, trimmed, bounded.
fn clean_text(what: &str, text: &str, allow_empty: bool) -> ApiResult<String> {
    let text = text.trim();
    if (text.is_empty() && !allow_empty) || text.chars().count() > 64 || text.chars().any(char::is_control) {
        let need = if allow_empty { "at most" } else { "1 to" };
        return Err(ApiError::bad_request(format!("{what} must be {need} 64 printable characters")));
    }
    Ok(text.to_owned())
}

async fn hash_new_password(password: String) -> ApiResult<String> {
    tokio::task::spawn_blocking(move || hash_password(&password)).await?.map_err(|e| match e {
        PasswordError::TooShort { .. } => {
            ApiError::bad_request(format!("the password must be at least {MIN_PASSWORD_LEN} characters long"))
        }
        PasswordError::Hash(e) => ApiError::internal(format!("could not hash the password: {e}")),
    })
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

async fn login(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    body: Result<Json<LoginBody>, JsonRejection>,
) -> ApiResult<Response> {
    let Json(body) = body?;
    let session = state.auth.login(&body.username, &body.password, ip).await?;
    let cookie = state.auth.session_set_cookie(&session.cookie_value);
    let body = Json(json!({"user": user_json(&session.user), "csrf_token": session.csrf_token}));
    Ok(([(header::SET_COOKIE, cookie), (header::CACHE_CONTROL, HeaderValue::from_static("no-store"))], body)
        .into_response())
}

async fn logout(State(state): State<AppState>, caller: Caller) -> ApiResult<Response> {
    if let Some(hash) = caller.session_hash().copied() {
        let store = state.store.clone();
        blocking(move || Ok(store.delete_session(&hash)?)).await?;
    }
    Ok((StatusCode::NO_CONTENT, [(header::SET_COOKIE, state.auth.session_clear_cookie())]).into_response())
}

async fn me(caller: Caller) -> Json<Value> {
    Json(json!({
        "user": user_json(&caller.user),
        "device": caller.device.as_ref().map(device_json),
        "via": caller.via.as_str(),
        "csrf_token": caller.csrf_token(),
    }))
}

#[derive(Deserialize)]
struct PasswordBody {
    #[serde(alias = "current")]
    current_password: String,
    #[serde(alias = "new")]
    new_password: String,
}

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

async fn list_devices(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let mut out = Vec::new();
        for device in store.list_devices(user)? {
            let last = store.last_point(user, device.id)?;
            out.push(json!({
                "id": device.id,
                "name": device.name,
                "last_seen": last.as_ref().map(|p| p.fix.time.to_string()),
                "last_point": last.as_ref().map(|p| json!({
                    "time": p.fix.time.to_string(),
                    "lat": p.fix.coord.lat(),
                    "lon": p.fix.coord.lon(),
                })),
            }));
        }
        Ok(Json(json!({"devices": out})))
    })
    .await
}

#[derive(Deserialize)]
struct DeviceBody {
    name: String,
}

async fn create_device(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<DeviceBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(body) = body?;
    let name = clean_text("a device name", &body.name, false)?;
    let (store, user) = (state.store.clone(), caller.user.id);
    let created = blocking(move || {
        if store.list_devices(user)?.iter().any(|d| d.name == name) {
            return Err(ApiError::conflict(format!("you already have a device named {name:?}")));
        }
        let device = store.ensure_device(user, &name)?;
        Ok((StatusCode::CREATED, Json(device_json(&device))))
    })
    .await;
    state.last_seen.forget_devices(user);
    created
}

#[derive(Deserialize, Default)]
struct TokenBody {
    #[serde(default)]
    label: String,
}

async fn create_token(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<TokenBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Path(id) = id?;
    caller.require_password_grade()?;
    // An empty body is fine: the label is optional.
    let body = match body {
        Ok(Json(body)) => body,
        Err(JsonRejection::MissingJsonContentType(_)) => TokenBody::default(),
        Err(e) => return Err(e.into()),
    };
    let label = clean_text("the label", &body.label, true)?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        if !store.list_devices(user)?.iter().any(|d| d.id == DeviceId(id)) {
            return Err(ApiError::not_found(format!("you have no device {id}")));
        }
        let (secret, hash) = new_token();
        let token = store.create_token(user, DeviceId(id), &label, &hash)?;
        let mut out = token_json(&token);
        out["token"] = Value::String(secret);
        Ok((StatusCode::CREATED, Json(out)))
    })
    .await
}

async fn list_tokens(State(state): State<AppState>, caller: Caller) -> ApiResult<Json<Value>> {
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let tokens: Vec<Value> = store.list_tokens(user)?.iter().map(token_json).collect();
        Ok(Json(json!({"tokens": tokens})))
    })
    .await
}

async fn revoke_token(
    State(state): State<AppState>,
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
    revoked
}

async fn list_users(State(state): State<AppState>, AdminCaller(_admin): AdminCaller) -> ApiResult<Json<Value>> {
    let store = state.store.clone();
    blocking(move || {
        let users: Vec<Value> = store.list_users()?.iter().map(user_json).collect();
        Ok(Json(json!({"users": users})))
    })
    .await
}

#[derive(Deserialize)]
struct UserBody {
    name: String,
    password: String,
    #[serde(default)]
    admin: bool,
}

async fn create_user(
    State(state): State<AppState>,
    AdminCaller(admin): AdminCaller,
    body: Result<Json<UserBody>, JsonRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let Json(body) = body?;
    admin.require_password_grade()?;
    validate_user_name(&body.name)?;
    let hash = hash_new_password(body.password).await?;
    let store = state.store.clone();
    blocking(move || {
        let user = store.create_user(&body.name, &hash, body.admin)?;
        Ok((StatusCode::CREATED, Json(user_json(&user))))
    })
    .await
}
