//! The public side of share links: no account, only the link's token.
//!
//! Every handler first resolves the token ([`open`]) to the stored share and
//! derives the whole query (owner, devices, time range) from it; nothing in
//! the request can widen what is shown.

use std::convert::Infallible;
use std::net::IpAddr;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use polo_domain::{Fix, Timestamp};
use polo_formats::export::{ExportFormat, Exporter};
use polo_store::{Device, Share, ShareKind, User};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::links::{KindName, live_window_start};
use super::stream::{KEEP_ALIVE, PositionEvent, position_stream};
use super::{blocking, covered_devices, now};
use crate::AppState;
use crate::auth::{ClientIp, sha256};
use crate::error::{ApiError, BadRequest, ErrorBody, ShareNotFound};
use crate::query::map::{DEFAULT_MAX_POINTS, MAX_POINTS, track_geojson};
use crate::query::points::{Filter, PointPage, page, public_point_view, stream};
use crate::query::timeline::{DeviceEntries, shared_entries};

/// The share behind `token`, with its owner: 404 `share_not_found` for an
/// unknown, revoked or expired link (and a miss counted for the address).
async fn open(state: &AppState, ip: Option<IpAddr>, token: &str) -> Result<(Share, User), ApiError> {
    state.share_guard.check(ip).await?;
    // Tokens are 43 characters of base64url; anything else cannot match and needs no lookup.
    let plausible = token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    let found = if plausible {
        let (store, hash) = (state.store.clone(), sha256(token.as_bytes()));
        blocking(move || Ok(store.share_by_hash(&hash, now())?)).await?
    } else {
        None
    };
    match found {
        Some(found) => Ok(found),
        None => {
            state.share_guard.missed(ip).await;
            Err(ApiError::share_not_found())
        }
    }
}

fn token(path: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    // A malformed path names no share either.
    path.map(|Path(token)| token).map_err(|_| ApiError::share_not_found())
}

/// The time range a share shows, as `[from, to)`; for a live share, from a
/// day before it was made until it expires (or now).
fn range(share: &Share) -> (Timestamp, Timestamp) {
    match share.spec.kind {
        ShareKind::Live => (live_window_start(share), share.spec.expires.unwrap_or(Timestamp(i64::MAX))),
        ShareKind::Trip | ShareKind::Range => {
            (share.spec.from.unwrap_or(Timestamp(i64::MIN)), share.spec.to.unwrap_or(Timestamp(i64::MAX)))
        }
    }
}

/// No cache may keep what a link showed after it was revoked, and no search
/// engine index it.
fn no_store(response: impl IntoResponse) -> Response {
    let mut response = response.into_response();
    response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response.headers_mut().insert("x-robots-tag", HeaderValue::from_static("noindex, nofollow"));
    response
}

/// What a share link shows.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PublicShare {
    /// `trip`, `range` or `live`.
    kind: KindName,
    /// The owner's label for it.
    #[schema(example = "Our walk up the Rigi")]
    label: String,
    /// Who shares: the owner's user name.
    #[schema(example = "alice")]
    owner: String,
    /// The device shown; `null`: all of the owner's devices.
    #[schema(example = "phone")]
    device: Option<String>,
    /// Trip and range shares: the start (RFC 3339, UTC).
    from: Option<String>,
    /// Trip and range shares: the end, exclusive.
    to: Option<String>,
    /// When the link stops working; `null`: when revoked.
    expires: Option<String>,
    /// Whether positions arrive live (`…/live`).
    live: bool,
    /// The owner hid place names and addresses: stays in `…/timeline` carry
    /// only their town and country.
    hide_places: bool,
}

/// What a share link shows: kind, owner, range and expiry. No account needed.
#[utoipa::path(
    get,
    path = "/api/v1/public/shares/{token}",
    tag = "sharing",
    params(("token" = String, Path, description = "The link's secret")),
    responses(
        (status = 200, body = PublicShare),
        ShareNotFound,
        (status = 429, description = "`rate_limited`: too many unknown links from this address", body = ErrorBody),
    )
)]
pub(crate) async fn info(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let (share, owner) = open(&state, ip, &token(path)?).await?;
    let kind = share.spec.kind;
    Ok(no_store(Json(PublicShare {
        kind: kind.into(),
        label: share.spec.label.clone(),
        owner: owner.name,
        device: share.device_name.clone(),
        from: share.spec.from.map(|t| t.to_string()),
        to: share.spec.to.map(|t| t.to_string()),
        expires: share.spec.expires.map(|t| t.to_string()),
        live: kind == ShareKind::Live,
        hide_places: share.spec.hide_places,
    })))
}

/// The answer formats of the shared points.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum SharedFormat {
    /// A page of points, resumed with `cursor`.
    #[default]
    Json,
    /// All of them as a GeoJSON `FeatureCollection`.
    Geojson,
}

/// Query parameters of `GET /api/v1/public/shares/{token}/points`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct SharedPointParams {
    /// `json` (default): a page; `geojson`: every point at once.
    #[param(inline)]
    format: Option<SharedFormat>,
    /// Page size for `json` (default 1000).
    #[param(minimum = 1, maximum = 10000)]
    limit: Option<usize>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

/// The shared points: those inside the range (and of the device) shared, or for a live share the
/// latest position only. The sources' raw extras are left out.
#[utoipa::path(
    get,
    path = "/api/v1/public/shares/{token}/points",
    tag = "sharing",
    params(("token" = String, Path, description = "The link's secret"), SharedPointParams),
    responses(
        (status = 200, description = "A page (`format=json`) or every point (`geojson`)",
            content((PointPage = "application/json"), (Object = "application/geo+json"))),
        BadRequest,
        ShareNotFound,
        (status = 429, description = "`rate_limited`: too many unknown links from this address", body = ErrorBody),
    )
)]
pub(crate) async fn points(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<SharedPointParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let token = token(path)?;
    let Query(params) = params?;
    let (share, owner) = open(&state, ip, &token).await?;
    let format = params.format.unwrap_or_default();
    let store = state.store.clone();
    let (from, to) = range(&share);
    let devices = {
        let (store, user, device) = (store.clone(), owner.id, share.spec.device);
        blocking(move || covered_devices(store.as_ref(), user, device)).await?
    };
    if share.spec.kind == ShareKind::Live {
        let latest = {
            let (state, user) = (state.clone(), owner.id);
            let devices = devices.clone();
            blocking(move || latest_position(&state, user, &devices, from, to)).await?
        };
        return match format {
            SharedFormat::Json => {
                let points = latest.iter().map(|(name, fix)| public_point_view(name, fix)).collect();
                Ok(no_store(Json(PointPage { points, next_cursor: None })))
            }
            SharedFormat::Geojson => {
                let mut exporter = Exporter::new(ExportFormat::Geojson, Vec::new())
                    .map_err(|e| ApiError::internal(format!("cannot write GeoJSON: {e}")))?;
                if let Some((name, fix)) = &latest {
                    exporter
                        .write(name, &Fix { extras: None, ..fix.clone() })
                        .map_err(|e| ApiError::internal(format!("cannot write GeoJSON: {e}")))?;
                }
                let body = exporter.finish().map_err(|e| ApiError::internal(format!("cannot write GeoJSON: {e}")))?;
                Ok(no_store(([(header::CONTENT_TYPE, ExportFormat::Geojson.media_type())], body)))
            }
        };
    }
    let filter = Filter::shared(devices, Some(from), Some(to));
    match format {
        SharedFormat::Json => {
            let limit = params.limit.unwrap_or(1000);
            let user = owner.id;
            let page = blocking(move || page(store.as_ref(), user, &filter, limit, params.cursor.as_deref())).await?;
            Ok(no_store(Json(page)))
        }
        SharedFormat::Geojson => {
            let body = stream(store, owner.id, filter, ExportFormat::Geojson);
            Ok(no_store(([(header::CONTENT_TYPE, ExportFormat::Geojson.media_type())], body)))
        }
    }
}

/// The newest fix of `devices` in `[from, to)`, with its device's name.
fn latest_position(
    state: &AppState,
    user: polo_domain::UserId,
    devices: &[Device],
    from: Timestamp,
    to: Timestamp,
) -> Result<Option<(String, Fix)>, ApiError> {
    let mut latest: Option<(String, Fix)> = None;
    for device in devices {
        let Some(fix) = state.last_seen.get(state.store.as_ref(), user, device.id)? else { continue };
        if fix.time < from || fix.time >= to {
            continue;
        }
        if latest.as_ref().is_none_or(|(_, known)| known.time < fix.time) {
            latest = Some((device.name.clone(), fix));
        }
    }
    Ok(latest)
}

fn not_for_live(share: &Share, what: &str) -> Result<(), ApiError> {
    if share.spec.kind == ShareKind::Live {
        return Err(ApiError::bad_request(format!(
            "this share shows a live position; it has no {what} (use …/points or …/live)"
        )));
    }
    Ok(())
}

/// The stays and legs inside the shared range, per device, in the shape of
/// `GET /api/v1/timeline/entries`. Entries that began before or ended after the range are cut to
/// it (`clipped`); a cut leg has no distance or speeds. A share that hides places leaves out each
/// stay's place id, place name and address.
#[utoipa::path(
    get,
    path = "/api/v1/public/shares/{token}/timeline",
    tag = "sharing",
    params(("token" = String, Path, description = "The link's secret")),
    responses(
        (status = 200, body = Vec<DeviceEntries>),
        (status = 400, description = "`bad_request`: a live share has no timeline", body = ErrorBody),
        ShareNotFound,
        (status = 429, description = "`rate_limited`: too many unknown links from this address", body = ErrorBody),
    )
)]
pub(crate) async fn timeline(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    path: Result<Path<String>, PathRejection>,
) -> Result<Response, ApiError> {
    let (share, owner) = open(&state, ip, &token(path)?).await?;
    not_for_live(&share, "timeline")?;
    let (from, to) = range(&share);
    let store = state.store.clone();
    let entries = blocking(move || {
        let devices: Vec<_> =
            covered_devices(store.as_ref(), owner.id, share.spec.device)?.into_iter().map(|d| (d.id, d.name)).collect();
        shared_entries(store.as_ref(), owner.id, &devices, from, to, share.spec.hide_places)
    })
    .await?;
    Ok(no_store(Json(entries)))
}

/// Query parameters of `GET /api/v1/public/shares/{token}/track`.
#[derive(Debug, Default, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TrackParams {
    /// The most points (default 50000, at most 60000): a long range is drawn from a coarser level of
    /// detail.
    #[param(minimum = 1, maximum = 60000)]
    max_points: Option<usize>,
}

/// The shared range's track, simplified to the finest map level of detail that fits `max_points`:
/// a GeoJSON `FeatureCollection` of `LineString`s (a lone point is a `Point`), each with its
/// `device`, `start` and `end`. Only points already processed into the map show.
#[utoipa::path(
    get,
    path = "/api/v1/public/shares/{token}/track",
    tag = "sharing",
    params(("token" = String, Path, description = "The link's secret"), TrackParams),
    responses(
        (status = 200, description = "The track", content((Object = "application/geo+json"))),
        (status = 400, description = "`bad_request`: a live share has no track, or a bad `max_points`",
            body = ErrorBody),
        ShareNotFound,
        (status = 429, description = "`rate_limited`: too many unknown links from this address", body = ErrorBody),
    )
)]
pub(crate) async fn track(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    path: Result<Path<String>, PathRejection>,
    params: Result<Query<TrackParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let token = token(path)?;
    let Query(params) = params?;
    let (share, owner) = open(&state, ip, &token).await?;
    not_for_live(&share, "track")?;
    let max_points = params.max_points.unwrap_or(DEFAULT_MAX_POINTS);
    if !(1..=MAX_POINTS).contains(&max_points) {
        return Err(ApiError::bad_request(format!("max_points must be 1 to {MAX_POINTS}, not {max_points}")));
    }
    let (from, to) = range(&share);
    let store = state.store.clone();
    let geojson = blocking(move || {
        let devices = covered_devices(store.as_ref(), owner.id, share.spec.device)?;
        track_geojson(store.as_ref(), owner.id, &devices, from, to, max_points)
    })
    .await?;
    let body = serde_json::to_vec(&geojson).map_err(|e| ApiError::internal(format!("cannot write GeoJSON: {e}")))?;
    Ok(no_store(([(header::CONTENT_TYPE, "application/geo+json")], body)))
}

/// The shared position, live: Server-Sent Events. First the latest position (if any), then an
/// `event: position` with `{"device","lat","lon","time","accuracy","battery"}` whenever the owner's
/// shared device stores a newer point; comments keep the connection alive. The stream ends when
/// the share expires or is revoked.
#[utoipa::path(
    get,
    path = "/api/v1/public/shares/{token}/live",
    tag = "sharing",
    params(("token" = String, Path, description = "The link's secret")),
    responses(
        (status = 200, description = "An event stream of `position` events",
            content((PositionEvent = "text/event-stream"))),
        (status = 400, description = "`bad_request`: not a live share", body = ErrorBody),
        ShareNotFound,
        (status = 429, description = "`rate_limited`: too many unknown links from this address", body = ErrorBody),
    )
)]
pub(crate) async fn live(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    path: Result<Path<String>, PathRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let token = token(path)?;
    let (share, owner) = open(&state, ip, &token).await?;
    if share.spec.kind != ShareKind::Live {
        return Err(ApiError::bad_request("this share is not live; read …/points, …/timeline or …/track"));
    }
    let (from, _) = range(&share);
    let hash = sha256(token.as_bytes());
    let events =
        position_stream(state, super::stream::Audience::Share { share: Box::new(share), owner, from, hash }).await?;
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}

/// How often an open public stream re-checks that its share still works.
pub(crate) const RECHECK: Duration = Duration::from_secs(15);
