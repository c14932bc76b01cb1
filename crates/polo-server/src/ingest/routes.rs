//! The HTTP side of live ingest: one thin handler per tracker protocol.
//!
//! Each handler authenticates, parses with the protocol's pure parser,
//! resolves the device, hands the fixes to the group-commit [`Ingestor`]
//! and answers in the exact shape the app expects:
//!
//! | route | apps | auth | reply |
//! |---|---|---|---|
//! | `POST /api/owntracks` | OwnTracks (Android, iOS), Overland's OwnTracks mode | Basic (password or token), Bearer | JSON array: the last locations of the caller's devices and of users who granted the caller theirs (friends) |
//! | `POST /api/overland` | Overland | Bearer, or `?token=` | `{"result":"ok"}` |
//! | `GET\|POST /api/osmand` | Traccar Client, OsmAnd, GPSLogger | Bearer/Basic, or the device token as `id` / `?token=` | 200, empty body |
//! | `POST /api/v1/points` | polo's API (JSON array or GeoJSON) | any | counts and per-item errors |
//!
//! OwnTracks' iOS app drops a message that gets a 4xx, so everything that is
//! temporary there (rate limiting, a busy store) is answered with a 5xx.
//!
//! A 401 from `/api/owntracks` and `/api/osmand` challenges `Basic` (the
//! apps may wait for it); every other route challenges `Bearer`, which makes
//! no browser open a login dialog ([`crate::error`]).
//!
//! `GET /api/osmand` stores points and creates devices, and a browser sends
//! the `SameSite=Lax` session cookie with a cross-site top-level GET (a link
//! on any page): so that GET does not look at the cookie at all and needs
//! device credentials (`Authorization`, or the token as `id`/`token`).

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Query, State};
use axum::http::request::Parts;
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::from_fn;
use axum::response::{IntoResponse, Response};
use polo_domain::{DeviceId, Fix, Timestamp};
use polo_store::{Device, DeviceCard};
use serde::Deserialize;
use serde_json::{Value, json};
use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouterExt};
use utoipa_axum::routes;

use super::schema::{
    BatchBody, BatchResult, IngestParams, OsmandForm, OsmandParams, OsmandQuery, OverlandBatch, OverlandError,
    OverlandFailure, OverlandOk, OwnTracksMessage, OwnTracksReply,
};
use super::{IngestError, batch, osmand, overland, owntracks};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, ErrorBody, TrackerAuthErrors, basic_challenge};
use crate::query::derived::blocking;

/// The ingest routes, each with its own body limit (`limit` bytes,
/// [`crate::options::BodyLimits::ingest`]): the application-wide
/// `DefaultBodyLimit` is the 1 MiB default, and only a limit set on the route
/// itself (the innermost layer) overrides it for that route.
pub(crate) fn routes(limit: usize) -> OpenApiRouter<AppState> {
    // The apps of these two may wait for a Basic challenge before sending credentials.
    let basic_apps = OpenApiRouter::new()
        .routes(routes!(owntracks_post).layer(DefaultBodyLimit::max(limit)))
        .routes(routes!(osmand_get, osmand_post).layer(DefaultBodyLimit::max(limit)));
    OpenApiRouter::new()
        .merge(basic_apps.route_layer(from_fn(basic_challenge)))
        .routes(routes!(overland_post).layer(DefaultBodyLimit::max(limit)))
        .routes(routes!(points_post).layer(DefaultBodyLimit::max(limit)))
}

/// The current time, as the parsers want it (also used by the MQTT subscriber).
pub(crate) fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Query parameters a few apps use instead of headers.
#[derive(Debug, Default, Deserialize)]
struct IngestQuery {
    token: Option<String>,
    /// OwnTracks Recorder-style device (`?d=`).
    d: Option<String>,
}

fn peer_ip(parts: &Parts) -> Option<std::net::IpAddr> {
    crate::auth::client_ip(parts)
}

/// Authenticates from the headers, or from a token given in the URL.
async fn authenticate(state: &AppState, parts: &Parts, url_token: Option<&str>) -> Result<Caller, ApiError> {
    if let Some(caller) = state.auth.authenticate(parts).await? {
        return Ok(caller);
    }
    let ip = peer_ip(parts);
    if let Some(token) = url_token
        && let Some(caller) = state.auth.authenticate_token(token, ip).await?
    {
        return Ok(caller);
    }
    Err(ApiError::unauthorized("credentials required: a device token or the user's password".to_owned()))
}

/// The device the fixes belong to: the token's own device wins; otherwise
/// the name the request gives in `named` (the field it came from, the name),
/// created on first use, or `fallback` when it gives none.
///
/// # Errors
/// 400 `bad_request` naming the field when the name breaks
/// [`polo_domain::validate_device_name`].
async fn resolve_device(
    state: &AppState,
    caller: &Caller,
    named: Option<(&str, &str)>,
    fallback: &str,
) -> Result<DeviceId, ApiError> {
    if let Some(device) = &caller.device {
        return Ok(device.id);
    }
    let name = match named.filter(|(_, name)| !name.trim().is_empty()) {
        Some((field, raw)) => checked_device_name(field, raw)?.to_owned(),
        None => fallback.to_owned(),
    };
    let known = state.last_seen.cached_devices(caller.user.id);
    if let Some(device) = known.as_deref().and_then(|list| list.iter().find(|d| d.name == name)) {
        return Ok(device.id);
    }
    let store = state.store.clone();
    let user = caller.user.id;
    let device = tokio::task::spawn_blocking(move || store.ensure_device(user, &name))
        .await
        .map_err(|e| ApiError::internal(format!("device task failed: {e}")))??;
    state.last_seen.forget_devices(user);
    Ok(device.id)
}

/// A found device name and its field, as [`resolve_device`] takes it.
fn named<'a>(found: &'a Option<(&'static str, String)>) -> Option<(&'static str, &'a str)> {
    found.as_ref().map(|(field, name)| (*field, name.as_str()))
}

/// `raw` as a device name, trimmed; a 400 naming `field` otherwise.
pub(crate) fn checked_device_name<'a>(field: &str, raw: &'a str) -> Result<&'a str, ApiError> {
    polo_domain::validate_device_name(raw).map_err(|e| ApiError::bad_request(format!("{field}: the device name {e}")))
}

async fn store_fixes(
    state: &AppState,
    caller: &Caller,
    device: DeviceId,
    protocol: &'static str,
    fixes: Vec<Fix>,
) -> Result<polo_store::WriteOutcome, ApiError> {
    if fixes.is_empty() {
        return Ok(polo_store::WriteOutcome::default());
    }
    let newest = fixes.iter().max_by_key(|f| f.time).cloned();
    let outcome = state.ingestor.submit(caller.user.id, device, fixes).await.map_err(|e| match e {
        IngestError::Closed => ApiError::unavailable("the server is shutting down".to_owned()),
        IngestError::Store(e) => {
            tracing::error!(error = %e, "storing live points failed");
            ApiError::unavailable("the store is temporarily unavailable".to_owned())
        }
    })?;
    state.metrics.points_ingested(protocol, outcome.added);
    if let Some(newest) = newest {
        state.last_seen.observe(device, &newest);
        if outcome.added > 0 {
            state.live.position(caller.user.id, device, &newest);
            state.mqtt_out.position(caller.user.id, device, &newest, false);
        }
    }
    Ok(outcome)
}

fn header_str<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// Overland's OwnTracks mode sends `Authorization: Basic <token>:` unencoded.
fn is_overland_basic(headers: &HeaderMap) -> bool {
    header_str(headers, "authorization").and_then(|v| v.strip_prefix("Basic ")).is_some_and(|rest| rest.ends_with(':'))
}

/// OwnTracks HTTP mode (also Overland's OwnTracks mode): one message per request.
///
/// The answer is the app's friends: the last locations (and cards) of the caller's devices and of
/// the devices of users who granted the caller theirs (`POST /api/v1/friends`), and the caller's
/// zones as a `setWaypoints` command when this app has not had them yet. `waypoint`/`waypoints`
/// messages become zones and `transition`s are logged as `app.enter`/`app.leave` events
/// (docs/zones.md, *OwnTracks regions*). Unusable messages are
/// answered 200 and counted, because the apps drop (iOS) or resend forever (Android) otherwise;
/// temporary trouble, rate limiting included, is a 503 so that iOS keeps the message.
#[utoipa::path(
    post,
    path = "/api/owntracks",
    tag = "ingest",
    security(("basic" = []), ("bearer" = []), ("token_param" = []), ("session" = [], "csrf" = [])),
    params(
        IngestParams,
        ("X-Limit-D" = Option<String>, Header, description = "The device name (OwnTracks sets it)"),
    ),
    request_body(content = Option<OwnTracksMessage>, description = "One message; an empty body is allowed"),
    responses(
        (status = 200, description = "The friends: a `location` (and `card`) per device, then, when the \
            sending app has not been sent the caller's zones yet, a `setWaypoints` command (`cmd`); encrypted \
            when the sending device has an encryption key", body = OwnTracksReply, content_type = "application/json"),
        (status = 400, description = "`bad_request`: a message that names a JSON key twice (the message \
            names the key), an encrypted payload the device's key cannot open (or the device has no key), or \
            malformed query parameters", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over the body limit", body = ErrorBody),
        (status = 401, description = "`unauthorized`: no or wrong credentials", body = ErrorBody,
            headers(("WWW-Authenticate" = String, description = "`Basic realm=\"polo\"`"))),
        CsrfFailed,
        (status = 503, description = "`unavailable`: rate limited or temporary trouble; retry after `Retry-After`",
            body = ErrorBody, headers(("Retry-After" = Option<u64>))),
    )
)]
async fn owntracks_post(
    State(state): State<AppState>,
    Query(query): Query<IngestQuery>,
    parts: Parts,
    body: Bytes,
) -> Response {
    match owntracks_inner(&state, &query, &parts, &body).await {
        Ok(reply) => ([(header::CONTENT_TYPE, "application/json; charset=utf-8")], reply).into_response(),
        // iOS drops messages on 4xx: only permanent refusals keep their 4xx.
        Err(e) => e.temporary_as_5xx().into_response(),
    }
}

/// Handles one message; the answer is the reply body.
async fn owntracks_inner(
    state: &AppState,
    query: &IngestQuery,
    parts: &Parts,
    body: &[u8],
) -> Result<Vec<u8>, ApiError> {
    let caller = authenticate(state, parts, query.token.as_deref()).await?;
    let options = owntracks::ParseOptions { now: now(), from_overland: is_overland_basic(&parts.headers) };
    // The device name and where it came from, for a 400 that names the field.
    let device_name = |topic: Option<&owntracks::Topic>| {
        header_str(&parts.headers, "x-limit-d")
            .map(|d| ("the X-Limit-D header", d.to_owned()))
            .or_else(|| query.d.clone().map(|d| ("the query parameter d", d)))
            .or_else(|| topic.and_then(|t| t.device_hint()).map(|d| ("the topic's device", d.to_owned())))
    };
    // The device the reply is for: its key, if it has one, encrypts the reply.
    let mut sender = caller.device.as_ref().map(|d| d.id);
    let mut message = match owntracks::parse(body, &options) {
        Ok(message) => message,
        Err(e @ owntracks::OwntracksError::DuplicateKey { .. }) => {
            // Permanent and ambiguous: the sender must be told (as for an undecryptable message).
            state.metrics.rejected("owntracks_duplicate_key");
            return Err(ApiError::bad_request(e.to_string()));
        }
        Err(e) => {
            // Unusable messages are answered 2xx (the apps would retry or drop them forever) and counted.
            tracing::info!(user = %caller.user.name, error = %e, "unusable OwnTracks message");
            state.metrics.rejected("owntracks_unusable");
            return owntracks_reply(state, &caller, sender, options.from_overland).await;
        }
    };
    if let owntracks::Message::Encrypted { data } = &message {
        let device = resolve_device(state, &caller, named(&device_name(None)), "phone").await?;
        sender = Some(device);
        message = decrypt(state, &caller, device, data, &options).await?;
    }
    match message {
        owntracks::Message::Location(location) => {
            let found = device_name(location.topic.as_ref());
            let device = resolve_device(state, &caller, named(&found), "phone").await?;
            sender = Some(device);
            store_fixes(state, &caller, device, "owntracks", vec![location.fix]).await?;
        }
        owntracks::Message::Transition(transition) => {
            let found = device_name(transition.topic.as_ref());
            let device = resolve_device(state, &caller, named(&found), "phone").await?;
            sender = Some(device);
            let app = transition.app_transition();
            store_fixes(state, &caller, device, "owntracks", vec![transition.fix]).await?;
            let (zones, user) = (state.zones.clone(), caller.user.id);
            blocking(move || Ok(zones.record_transition(user, device, &app, now())?)).await?;
        }
        owntracks::Message::Waypoint(waypoint) => store_regions(state, &caller, vec![waypoint.region()]).await?,
        owntracks::Message::Waypoints(list) => {
            store_regions(state, &caller, list.iter().map(owntracks::Waypoint::region).collect()).await?;
        }
        owntracks::Message::Card(card) => {
            let found = device_name(card.topic.as_ref());
            let device = resolve_device(state, &caller, named(&found), "phone").await?;
            sender = Some(device);
            store_card(state, &caller, device, card).await?;
        }
        other => {
            tracing::debug!(kind = message_kind(&other), "OwnTracks message without a position accepted");
            state.metrics.rejected("owntracks_not_location");
        }
    }
    owntracks_reply(state, &caller, sender, options.from_overland).await
}

/// Keeps the app's regions as the caller's zones.
async fn store_regions(
    state: &AppState,
    caller: &Caller,
    regions: Vec<polo_zones::regions::Region>,
) -> Result<(), ApiError> {
    let (zones, user) = (state.zones.clone(), caller.user.id);
    blocking(move || Ok(zones.store_regions(user, &regions, now())?)).await?;
    Ok(())
}

/// Keeps the device's card (name and picture) for the friends replies; a
/// card with neither removes it.
async fn store_card(
    state: &AppState,
    caller: &Caller,
    device: DeviceId,
    card: owntracks::Card,
) -> Result<(), ApiError> {
    let card = card.into_device_card();
    let (store, user, stored) = (state.store.clone(), caller.user.id, card.clone());
    tokio::task::spawn_blocking(move || store.set_device_card(user, device, stored.as_ref()))
        .await
        .map_err(|e| ApiError::internal(format!("card task failed: {e}")))??;
    state.last_seen.card_stored(device, card);
    Ok(())
}

/// Decrypts an encrypted OwnTracks message with the sending device's
/// passphrase. Both failures are permanent (400): the app must be told,
/// and retrying the same bytes cannot succeed.
async fn decrypt(
    state: &AppState,
    caller: &Caller,
    device: DeviceId,
    data: &str,
    options: &owntracks::ParseOptions,
) -> Result<owntracks::Message, ApiError> {
    let Some(key) = encryption_key(state, caller, device).await? else {
        state.metrics.rejected("owntracks_encrypted_without_key");
        return Err(ApiError::bad_request(format!(
            "the message is encrypted but device {device} has no encryption key: set the app's key with \
             PUT /api/v1/devices/{device}/encryption-key, or turn encryption off in the app"
        )));
    };
    owntracks::decrypt_message(&key, data, options).map_err(|e| match e {
        owntracks::OwntracksError::DuplicateKey { .. } => {
            state.metrics.rejected("owntracks_duplicate_key");
            ApiError::bad_request(format!("the decrypted message is refused: {e}"))
        }
        e => {
            state.metrics.rejected("owntracks_undecryptable");
            ApiError::bad_request(format!("cannot decrypt the message with device {device}'s encryption key: {e}"))
        }
    })
}

/// The device's OwnTracks passphrase, from memory when possible.
async fn encryption_key(state: &AppState, caller: &Caller, device: DeviceId) -> Result<Option<Arc<str>>, ApiError> {
    if let Some(key) = state.last_seen.cached_encryption_key(device) {
        return Ok(key);
    }
    let (store, last_seen, user) = (state.store.clone(), state.last_seen.clone(), caller.user.id);
    Ok(tokio::task::spawn_blocking(move || last_seen.encryption_key(store.as_ref(), user, device))
        .await
        .map_err(|e| ApiError::internal(format!("key task failed: {e}")))??)
}

/// The friends reply as a body, encrypted as `{"_type":"encrypted","data":…}`
/// when the sending device has a passphrase (the apps decrypt it to the array).
/// When the sending app has not been sent the caller's zones yet, the reply
/// ends with a `setWaypoints` command (never to Overland, which is no
/// OwnTracks app).
async fn owntracks_reply(
    state: &AppState,
    caller: &Caller,
    sender: Option<DeviceId>,
    from_overland: bool,
) -> Result<Vec<u8>, ApiError> {
    let friends = friends(state, caller).await?;
    let mut reply = serde_json::to_vec(&owntracks::friends_reply(&friends))
        .map_err(|e| ApiError::internal(format!("cannot write the reply: {e}")))?;
    if let Some(device) = sender.filter(|_| !from_overland) {
        let user = caller.user.id;
        let command = match state.zones.cached_waypoints_for(user, device) {
            Some(command) => command,
            None => {
                let zones = state.zones.clone();
                blocking(move || Ok(zones.waypoints_for(user, device)?)).await?
            }
        };
        if let Some(command) = command {
            // `[…]` becomes `[…,command]`: the friends array is built without a `Value`.
            reply.pop();
            if reply.len() > 1 {
                reply.push(b',');
            }
            serde_json::to_writer(&mut reply, &*command)
                .map_err(|e| ApiError::internal(format!("cannot write the reply: {e}")))?;
            reply.push(b']');
        }
    }
    let Some(device) = sender else { return Ok(reply) };
    match encryption_key(state, caller, device).await? {
        None => Ok(reply),
        Some(key) => owntracks::encrypted_envelope(&key, &reply)
            .map(|envelope| envelope.to_string().into_bytes())
            .map_err(|e| ApiError::internal(format!("cannot encrypt the reply: {e}"))),
    }
}

fn message_kind(message: &owntracks::Message) -> &'static str {
    match message {
        owntracks::Message::Empty => "empty",
        owntracks::Message::Location(_) => "location",
        owntracks::Message::Transition(_) => "transition",
        owntracks::Message::Waypoint(_) => "waypoint",
        owntracks::Message::Waypoints(_) => "waypoints",
        owntracks::Message::Card(_) => "card",
        owntracks::Message::Lwt { .. } => "lwt",
        owntracks::Message::Encrypted { .. } => "encrypted",
        owntracks::Message::Other { .. } => "other",
    }
}

/// One device in the friends reply: its owner's name, the device, its last fix and card.
type FriendRow = (String, Device, Option<Fix>, Option<Arc<DeviceCard>>);

/// The reply: the last location (and card) of each of the caller's devices and of the devices of
/// every user who granted the caller their location, each with a unique `tid`.
///
/// Answered from memory when the grant and device lists and every device's last fix are cached
/// (the steady state of a phone posting every few seconds); otherwise read on the blocking pool.
async fn friends(state: &AppState, caller: &Caller) -> Result<Vec<owntracks::Friend>, ApiError> {
    let own_device = caller.device.as_ref().map(|d| d.id);
    let me = (caller.user.id, caller.user.name.clone());
    let cached = state.last_seen.cached_granters(caller.user.id).and_then(|granters| {
        let mut rows: Vec<FriendRow> = Vec::new();
        for (user, name) in std::iter::once(me.clone()).chain(granters.iter().cloned()) {
            for device in state.last_seen.cached_devices(user)?.iter() {
                let last = state.last_seen.cached(device.id)?;
                let card = state.last_seen.cached_card(device.id)?;
                rows.push((name.clone(), device.clone(), last, card));
            }
        }
        Some(rows)
    });
    let rows = match cached {
        Some(rows) => rows,
        None => {
            let store = state.store.clone();
            let last_seen = state.last_seen.clone();
            tokio::task::spawn_blocking(move || -> Result<_, ApiError> {
                let granters = last_seen.granters(store.as_ref(), me.0)?;
                let mut rows: Vec<FriendRow> = Vec::new();
                for (user, name) in std::iter::once(me).chain(granters.iter().cloned()) {
                    for device in last_seen.devices(store.as_ref(), user)?.iter() {
                        let last = last_seen.get(store.as_ref(), user, device.id)?;
                        let card = last_seen.card(store.as_ref(), user, device.id)?;
                        rows.push((name.clone(), device.clone(), last, card));
                    }
                }
                Ok(rows)
            })
            .await
            .map_err(|e| ApiError::internal(format!("friends task failed: {e}")))??
        }
    };
    Ok(rows
        .into_iter()
        .map(|(user, device, last, card)| owntracks::Friend {
            user,
            is_self: own_device == Some(device.id),
            tid: last.as_ref().and_then(|f| f.extras.as_ref()).and_then(owntracks::extras_tid),
            device: device.name,
            last,
            name: card.as_ref().and_then(|c| c.name.clone()),
            face: card.as_ref().and_then(|c| c.face.clone()),
        })
        .collect())
}

/// Overland batches: `{"locations": [Feature…]}`.
///
/// Every batch that parses is answered `{"result":"ok"}`, even when some features are unusable
/// (they are counted), or the app would resend it forever.
#[utoipa::path(
    post,
    path = "/api/overland",
    tag = "ingest",
    security(("bearer" = []), ("token_param" = []), ("basic" = []), ("session" = [], "csrf" = [])),
    params(IngestParams),
    request_body = OverlandBatch,
    responses(
        (status = 200, description = "Stored", body = OverlandOk),
        (status = 400, description = "`bad_request`: not an Overland batch, or malformed query parameters",
            body = OverlandFailure),
        (status = 401, description = "`unauthorized`: no or wrong credentials", body = OverlandError),
        (status = 403, description = "`csrf_failed`", body = OverlandError),
        (status = 413, description = "`payload_too_large`: over the body limit", body = ErrorBody),
        (status = 429, description = "`rate_limited`: too many failed attempts", body = OverlandError),
        (status = 503, description = "`unavailable`: temporary trouble; the app retries", body = OverlandError),
    )
)]
async fn overland_post(
    State(state): State<AppState>,
    Query(query): Query<IngestQuery>,
    parts: Parts,
    body: Bytes,
) -> Response {
    match overland_inner(&state, &query, &parts, &body).await {
        Ok(()) => ([(header::CONTENT_TYPE, "application/json")], overland::OK_REPLY).into_response(),
        // Overland shows `error` to the user and keeps the batch for a retry.
        Err(e) => (e.status, Json(json!({"error": e.message, "code": e.code}))).into_response(),
    }
}

async fn overland_inner(state: &AppState, query: &IngestQuery, parts: &Parts, body: &[u8]) -> Result<(), ApiError> {
    let caller = authenticate(state, parts, query.token.as_deref()).await?;
    let batch = overland::parse(body, now()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    for reject in &batch.rejects {
        tracing::info!(index = reject.index, reason = %reject.reason, "unusable Overland feature");
        state.metrics.rejected("overland_feature");
    }
    let hint = batch.device_hint().map(str::to_owned);
    let named = hint.as_deref().map(|name| ("properties.device_id", name));
    let device = resolve_device(state, &caller, named, "overland").await?;
    let fixes: Vec<Fix> = batch.points.into_iter().map(|p| p.fix).collect();
    store_fixes(state, &caller, device, "overland", fixes).await?;
    if !batch.intervals.is_empty() {
        let intervals: Vec<_> = batch.intervals.into_iter().map(|i| i.interval).collect();
        let store = state.store.clone();
        let user = caller.user.id;
        tokio::task::spawn_blocking(move || store.insert_intervals(user, device, &intervals))
            .await
            .map_err(|e| ApiError::internal(format!("interval task failed: {e}")))?
            .map_err(|e| {
                tracing::error!(error = %e, "storing Overland intervals failed");
                ApiError::unavailable("the store is temporarily unavailable".to_owned())
            })?;
    }
    Ok(())
}

/// The OsmAnd protocol with the position in the query string (legacy Traccar Client, OsmAnd,
/// GPSLogger).
///
/// Unauthenticated clients may put a device token in `id` (or `token`). The session cookie is not
/// accepted here: a link on another site could make a browser send it (device credentials only).
/// A reading that cannot be used is answered 400 with the reason, once the request authenticated.
#[utoipa::path(
    get,
    path = "/api/osmand",
    tag = "ingest",
    security(("bearer" = []), ("basic" = []), ("token_param" = []), ("device_id_token" = [])),
    params(OsmandQuery),
    responses(
        (status = 200, description = "Stored; the body is empty"),
        BadRequest,
        TrackerAuthErrors,
    )
)]
async fn osmand_get(state: State<AppState>, parts: Parts, body: Bytes) -> Result<StatusCode, ApiError> {
    osmand_request(state, parts, body).await
}

/// The OsmAnd protocol with a body: a form (Traccar Client SDK, GPSLogger), a JSON array of flat
/// objects (`uploadJson`), or Traccar Client 9's `{"location": {…}, "device_id": …}`.
///
/// The body is sniffed when the `Content-Type` is missing; form and query are merged. Unusable
/// items of an array are counted, the others stored.
#[utoipa::path(
    post,
    path = "/api/osmand",
    tag = "ingest",
    security(
        ("bearer" = []), ("basic" = []), ("token_param" = []), ("device_id_token" = []),
        ("session" = [], "csrf" = []),
    ),
    params(OsmandParams),
    request_body(
        description = "The position(s); see the operation's description",
        content(
            (OsmandForm = "application/x-www-form-urlencoded"),
            (Object = "application/json"),
        ),
    ),
    responses(
        (status = 200, description = "Stored; the body is empty"),
        BadRequest,
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        CsrfFailed,
        TrackerAuthErrors,
    )
)]
async fn osmand_post(state: State<AppState>, parts: Parts, body: Bytes) -> Result<StatusCode, ApiError> {
    osmand_request(state, parts, body).await
}

async fn osmand_request(State(state): State<AppState>, mut parts: Parts, body: Bytes) -> Result<StatusCode, ApiError> {
    // A GET takes no cookie (see the module documentation): the session is not looked at.
    // (axum answers HEAD with the GET handler: the same holds.)
    let cookie_on_get =
        matches!(parts.method, Method::GET | Method::HEAD) && parts.headers.remove(header::COOKIE).is_some();
    let content_type = header_str(&parts.headers, "content-type").map(str::to_owned);
    let url_token: Option<String> = parts
        .uri
        .query()
        .and_then(|q| serde_urlencoded::from_str::<BTreeMap<String, String>>(q).ok())
        .and_then(|m| m.get("token").cloned());
    let parsed = osmand::parse_request(parts.uri.query(), content_type.as_deref(), &body, now());
    // Traccar-style clients have no auth headers: their device identifier is the polo token. It
    // is read even around an unusable reading: authenticate first (401), then judge it (400).
    let id_token = match &parsed {
        Ok(parsed) => parsed.reports.first().map(|r| r.device_id.clone()),
        Err(_) => osmand::claimed_device_id(parts.uri.query(), &body),
    };
    let caller = match authenticate(&state, &parts, url_token.as_deref()).await {
        Ok(caller) => caller,
        Err(first) => {
            let by_id = match id_token.as_deref() {
                Some(token) => state.auth.authenticate_token(token, peer_ip(&parts)).await?,
                None => None,
            };
            match by_id {
                Some(caller) => caller,
                None if cookie_on_get => {
                    return Err(ApiError::unauthorized(
                        "GET /api/osmand does not take the session cookie (a link on another site could send \
                         it): send the device token as `id` or `token`, or Basic or Bearer credentials",
                    ));
                }
                None => return Err(first),
            }
        }
    };
    let parsed = parsed.map_err(|e| ApiError::bad_request(e.to_string()))?;
    for reject in &parsed.rejects {
        tracing::info!(index = reject.index, reason = %reject.reason, "unusable OsmAnd item");
        state.metrics.rejected("osmand_item");
    }
    let mut by_device: BTreeMap<String, Vec<Fix>> = BTreeMap::new();
    for report in parsed.reports {
        // A device id that was the token itself names no device.
        let key = if Some(&report.device_id) == id_token.as_ref() && caller.device.is_some() {
            String::new()
        } else {
            report.device_id
        };
        by_device.entry(key).or_default().push(report.fix);
    }
    for (name, fixes) in by_device {
        let device = resolve_device(&state, &caller, Some(("id", &name)), "osmand").await?;
        store_fixes(&state, &caller, device, "osmand", fixes).await?;
    }
    Ok(StatusCode::OK)
}

/// Stores a batch of points: a JSON array, one point, or a GeoJSON `FeatureCollection`/`Feature`
/// (polo's own GeoJSON export uploads as is).
///
/// Every item is judged on its own: unusable items are reported with their index and the others
/// are stored.
#[utoipa::path(
    post,
    path = "/api/v1/points",
    tag = "ingest",
    security(("bearer" = []), ("basic" = []), ("session" = [], "csrf" = [])),
    request_body = BatchBody,
    responses(
        (status = 200, description = "What was stored and what was refused", body = BatchResult),
        BadRequest,
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        CsrfFailed,
        AuthErrors,
    )
)]
async fn points_post(State(state): State<AppState>, caller: Caller, body: Bytes) -> Result<Json<Value>, ApiError> {
    let mut parsed = batch::parse(&body, now()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let mut by_device: BTreeMap<Option<String>, Vec<Fix>> = BTreeMap::new();
    for point in parsed.points {
        // A token's device wins over the names items give, so only names that are used are checked.
        let device = match point.device {
            Some(name) if caller.device.is_none() && !name.trim().is_empty() => {
                match polo_domain::validate_device_name(&name) {
                    Ok(valid) => Some(valid.to_owned()),
                    Err(e) => {
                        let reason = format!("device: the device name {e}");
                        parsed.errors.push(batch::ItemError { index: point.index, reason });
                        continue;
                    }
                }
            }
            other => other,
        };
        by_device.entry(device).or_default().push(point.fix);
    }
    parsed.errors.sort_by_key(|e| e.index);
    let (mut added, mut duplicates) = (0, 0);
    for (name, fixes) in by_device {
        let named = name.as_deref().map(|name| ("device", name));
        let device = resolve_device(&state, &caller, named, "api").await?;
        let outcome = store_fixes(&state, &caller, device, "api", fixes).await?;
        added += outcome.added;
        duplicates += outcome.duplicates;
    }
    for _ in &parsed.errors {
        state.metrics.rejected("api_item");
    }
    let errors: Vec<Value> = parsed.errors.iter().map(|e| json!({"index": e.index, "reason": e.reason})).collect();
    Ok(Json(json!({"added": added, "duplicates": duplicates, "rejected": errors.len(), "errors": errors})))
}
