//! The map API: an overview of the caller's tracks for any time range, and
//! heatmap and fog-of-war tiles.
//!
//! All three are lookups of the derived map rows that `polo-derived`
//! maintains from the points (`polo_derived::map`): an overview reads one
//! small count row and one simplified-track row per device and UTC day of
//! the range, a tile one cell row per device and month. Nothing here
//! touches the points, which is what keeps a ten-year overview of five
//! million points within 300 ms and 2 MB.
//!
//! Answers carry a strong `ETag` (a hash of the body) and
//! `Cache-Control: private, max-age=60`; a request whose `If-None-Match`
//! names the current tag gets `304 Not Modified` without a body. The data
//! change when new points have been processed, so a minute of staleness is
//! the price of not recomputing a tile on every pan of the map.
//!
//! ## The overview's wire shape
//!
//! Each segment is one line: `coords` is a flat `[lon, lat, lon, lat, …]`
//! array in degrees with 5 decimals (about a metre), and `times` gives
//! each point's time as whole seconds since the previous point (`0` for
//! the first; the first point is at `start`, seconds since the epoch).
//! Longitudes are unwrapped within a segment: consecutive longitudes never
//! differ by more than 180°, so a line across the antimeridian continues
//! past ±180 (e.g. `180.05`) instead of jumping across the map, which is
//! what MapLibre and Leaflet draw correctly; subtract 360 to normalise.
//! Flat arrays and second deltas keep a point at ~23 bytes, so the largest
//! budget ([`MAX_POINTS`]) stays under 2 MB even at worst-case widths.

use std::sync::Arc;

use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use polo_derived::DerivedError;
use polo_derived::map::tile::check_tile;
use polo_derived::map::{self as derived, BASE_ZOOM, Overview, TileCells, fog_tile, heat_tile};
use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{Device, Store};
use polo_timeline::antimeridian::unwrap_longitudes;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::{IntoParams, ToSchema};

use super::parse_time;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, NotFound};

/// `max_points` when the request has none.
pub const DEFAULT_MAX_POINTS: usize = 50_000;
/// The largest `max_points`: at the widest a point takes (32 bytes: a
/// longitude such as `-179.12345`, a latitude, a long time delta) and a
/// segment its framing, the answer stays under 2 MB.
pub const MAX_POINTS: usize = 60_000;
/// What the answers may be cached for.
const CACHE_CONTROL: &str = "private, max-age=60";

/// Query parameters of `GET /api/v1/map/overview`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct OverviewParams {
    /// Start of the range, inclusive: RFC 3339 (or epoch seconds or milliseconds, or any timestamp
    /// spelling the importers read); without a zone, UTC.
    #[param(example = "2024-05-01T00:00:00Z")]
    from: String,
    /// End of the range, exclusive (same spellings); after `from`.
    #[param(example = "2024-06-01T00:00:00Z")]
    to: String,
    /// Only this device (by name); default: all the caller's devices. 404 when the caller has none
    /// of that name.
    #[param(example = "phone")]
    device: Option<String>,
    /// The budget: the finest level whose points plus 3 per segment fit it is used (thinned, then
    /// cut, if even the coarsest does not). Default 50000; at most 60000, which keeps the answer
    /// under 2 MB.
    #[param(value_type = Option<u64>, minimum = 1, maximum = 60000)]
    max_points: Option<String>,
    /// Only what lies in the map's view, `west,south,east,north` in degrees (`west > east`, or an
    /// `east` beyond 180, crosses the antimeridian): days that never come near it are not read,
    /// the level is chosen by the share of each day inside it, and lines are cut a little beyond
    /// its edge. A client zoomed in on one town gets that town at street detail over any range.
    #[param(example = "13.3,52.45,13.5,52.55")]
    bbox: Option<String>,
}

/// The `bbox` parameter of the overview: a rectangle in degrees.
fn parse_view(text: &str) -> Result<derived::Viewport, ApiError> {
    let bad = || {
        ApiError::bad_request(format!(
            "bbox must be west,south,east,north in degrees with south < north (latitudes within ±90), not {text:?}"
        ))
    };
    let numbers: Vec<f64> =
        text.split(',').map(|part| part.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| bad())?;
    let [west, south, east, north] = numbers[..] else { return Err(bad()) };
    derived::Viewport::new(west, south, east, north).ok_or_else(bad)
}

/// Query parameters of the tile routes.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct TileParams {
    /// Start of the range (as for the overview), rounded down to its UTC day; default: the beginning.
    #[param(example = "2024-01-01T00:00:00Z")]
    from: Option<String>,
    /// End of the range, exclusive, rounded up to a whole UTC day; default: now and later. After `from`.
    #[param(example = "2025-01-01T00:00:00Z")]
    to: Option<String>,
    /// Only this device (by name); default: all the caller's devices.
    #[param(example = "phone")]
    device: Option<String>,
}

/// One line of the overview: consecutive points of one device.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MapSegment {
    /// Index into `devices`.
    device: usize,
    /// The first point's time, whole seconds since 1970-01-01T00:00:00Z (rounded down).
    #[schema(example = 1_714_550_400)]
    start: i64,
    /// `[lon, lat, lon, lat, …]` in degrees, 5 decimals. Longitudes are unwrapped within the
    /// segment (consecutive ones differ by at most 180°, so they may pass ±180).
    #[schema(example = json!([13.40495, 52.52001, 13.41012, 52.52213]))]
    coords: Vec<f64>,
    /// Per point, whole seconds since the previous point (`0` for the first): point `i` is at
    /// `start + times[0] + … + times[i]`.
    #[schema(example = json!([0, 42]))]
    times: Vec<i64>,
}

/// The simplified tracks of a range.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MapOverview {
    /// The range's start (UTC).
    #[schema(example = "2024-05-01T00:00:00Z")]
    from: String,
    /// The range's end, exclusive (UTC).
    #[schema(example = "2024-06-01T00:00:00Z")]
    to: String,
    /// The level of detail used: 0 keeps nearly every point, 3 is the coarsest.
    #[schema(example = 0)]
    level: usize,
    /// The web-mercator zoom the level is simplified for (within half a pixel); zoom in further and
    /// a shorter range gets a finer level.
    #[schema(example = 18)]
    zoom: u8,
    /// Points per level (0 to 3) in the UTC days the range touches: what a finer level would cost.
    level_points: Vec<u64>,
    /// Points in `segments`.
    points: usize,
    /// True when even the coarsest level was over `max_points` and segments were thinned.
    thinned: bool,
    /// True when, beyond thinning, the latest segments were left out to fit `max_points`.
    truncated: bool,
    /// The devices whose tracks were read (a segment's `device` indexes this).
    #[schema(example = json!(["phone"]))]
    devices: Vec<String>,
    /// The lines, by start time. No line spans a recording gap (over 15 minutes) during which the
    /// device moved visibly at this level.
    segments: Vec<MapSegment>,
}

/// The cells of one tile.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MapTile {
    /// The tile's zoom.
    z: u8,
    /// The tile's column.
    x: u32,
    /// The tile's row.
    y: u32,
    /// The zoom whose tiles the cells are (`z + log2(grid)`, at most 18).
    #[schema(example = 16)]
    cell_zoom: u8,
    /// Cells per side of the tile (64 down to zoom 12, then 32, 16, … 1 at zoom 18).
    #[schema(example = 64)]
    grid: u32,
    /// The sum of the counts.
    total: u64,
    /// The largest count (for scaling colours); 0 without cells.
    max: u64,
    /// `[column, row, count]` per non-empty cell, row by row; column 0 is the west edge, row 0 the
    /// north edge. As a tile of `cell_zoom` the cell is `x * grid + column` / `y * grid + row`.
    #[schema(value_type = Vec<Vec<u64>>, example = json!([[12, 40, 310], [13, 40, 2]]))]
    cells: Vec<[u64; 3]>,
}

/// Parses a tile number from the path, saying which one and why when it is not one.
fn tile_number(name: &str, text: &str, max: u64) -> Result<u32, ApiError> {
    text.parse::<u32>()
        .ok()
        .filter(|&n| u64::from(n) <= max)
        .ok_or_else(|| ApiError::bad_request(format!("{name} must be a whole number from 0 to {max}, not {text:?}")))
}

fn derived_error(error: DerivedError) -> ApiError {
    match error {
        DerivedError::Store(e) => ApiError::from(e),
        DerivedError::Invalid(why) => ApiError::bad_request(why),
        other => {
            tracing::error!(error = %other, "map rows unusable");
            ApiError::internal("the map data could not be read; it is rebuilt when points change")
        }
    }
}

/// The caller's devices, or the one named.
fn devices(store: &dyn Store, user: UserId, name: Option<&str>) -> Result<Vec<Device>, ApiError> {
    let mut devices = store.list_devices(user)?;
    if let Some(name) = name {
        devices.retain(|d| d.name == name);
        if devices.is_empty() {
            return Err(ApiError::not_found(format!("you have no device named {name:?}")));
        }
    }
    Ok(devices)
}

/// Whether `If-None-Match` names `tag` (or is `*`).
fn not_modified(headers: &HeaderMap, tag: &str) -> bool {
    headers.get_all(header::IF_NONE_MATCH).iter().filter_map(|v| v.to_str().ok()).any(|value| {
        value.split(',').map(str::trim).any(|candidate| candidate == "*" || candidate.trim_start_matches("W/") == tag)
    })
}

/// The JSON answer with its `ETag`, or 304 when the client has it.
fn cached_json(request: &HeaderMap, value: &impl Serialize) -> Result<Response, ApiError> {
    let body = serde_json::to_vec(value).map_err(|e| ApiError::internal(format!("cannot write the answer: {e}")))?;
    let digest = Sha256::digest(&body);
    let tag: String = std::iter::once('"'.to_string())
        .chain(digest[..12].iter().map(|b| format!("{b:02x}")))
        .chain(["\"".to_owned()])
        .collect();
    let tag = HeaderValue::from_str(&tag).map_err(|e| ApiError::internal(format!("bad ETag: {e}")))?;
    let cache = (header::CACHE_CONTROL, HeaderValue::from_static(CACHE_CONTROL));
    if not_modified(request, tag.to_str().unwrap_or_default()) {
        return Ok((StatusCode::NOT_MODIFIED, [(header::ETAG, tag), cache]).into_response());
    }
    let json = (header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    Ok((StatusCode::OK, [(header::ETAG, tag), cache, json], body).into_response())
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> Result<T, ApiError> + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::internal(format!("map task failed: {e}")))?
}

/// Degrees rounded to 5 decimals (about 1.1 m).
fn degrees(value: f64) -> f64 {
    (value * 1e5).round() / 1e5
}

/// The wire shape of an overview.
fn wire(view: Overview, devices: &[Device], from: Timestamp, to: Timestamp) -> MapOverview {
    let segments = view
        .segments
        .into_iter()
        .map(|segment| {
            let longitudes = unwrap_longitudes(segment.points.iter().map(|p| p.coord.lon()));
            let mut coords = Vec::with_capacity(segment.points.len() * 2);
            for (point, lon) in segment.points.iter().zip(longitudes) {
                coords.push(degrees(lon));
                coords.push(degrees(point.coord.lat()));
            }
            let seconds: Vec<i64> = segment.points.iter().map(|p| p.time.0.div_euclid(1000)).collect();
            let mut times = Vec::with_capacity(seconds.len());
            times.push(0);
            times.extend(seconds.windows(2).map(|w| w[1] - w[0]));
            MapSegment {
                device: devices.iter().position(|d| d.id == segment.device).unwrap_or_default(),
                start: seconds[0],
                coords,
                times,
            }
        })
        .collect();
    MapOverview {
        from: from.to_string(),
        to: to.to_string(),
        level: view.level,
        zoom: view.zoom,
        level_points: view.level_points.to_vec(),
        points: view.points,
        thinned: view.thinned,
        truncated: view.truncated,
        devices: devices.iter().map(|d| d.name.clone()).collect(),
        segments,
    }
}

/// An overview of the caller's tracks in a time range, at the finest level of detail that fits
/// `max_points`. Reads the map rows kept for the points; points not yet processed do not show.
#[utoipa::path(
    get,
    path = "/api/v1/map/overview",
    tag = "map",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(OverviewParams),
    responses(
        (status = 200, body = MapOverview, description = "The overview",
            headers(
                ("ETag" = String, description = "A hash of the body, for `If-None-Match`"),
                ("Cache-Control" = String, description = "`private, max-age=60`"),
            )),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`"),
        BadRequest,
        NotFound,
        AuthErrors,
    )
)]
pub(crate) async fn overview(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    params: Result<Query<OverviewParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(params) = params?;
    let from = parse_time("from", &params.from)?;
    let to = parse_time("to", &params.to)?;
    if from >= to {
        return Err(ApiError::bad_request(format!("from ({from}) must be before to ({to})")));
    }
    let max_points = match params.max_points.as_deref() {
        None => DEFAULT_MAX_POINTS,
        Some(text) => text.parse::<usize>().ok().filter(|n| (1..=MAX_POINTS).contains(n)).ok_or_else(|| {
            ApiError::bad_request(format!(
                "max_points must be a whole number from 1 to {MAX_POINTS} (the answer stays under 2 MB), not {text:?}"
            ))
        })?,
    };
    let within = params.bbox.as_deref().map(parse_view).transpose()?;
    let store: Arc<dyn Store> = state.store.clone();
    let user = caller.user.id;
    let view = blocking(move || {
        let devices = devices(store.as_ref(), user, params.device.as_deref())?;
        let ids: Vec<DeviceId> = devices.iter().map(|d| d.id).collect();
        let view = derived::overview_within(store.as_ref(), user, &ids, from, to, max_points, within.as_ref())
            .map_err(derived_error)?;
        Ok(wire(view, &devices, from, to))
    })
    .await?;
    cached_json(&headers, &view)
}

/// Ranges up to this long are drawn from the points themselves; longer ones
/// from the map levels. A level keeps a line's turning points, so a short
/// range that falls between two of them (a straight stretch) would be cut
/// away entirely; a few days of points are cheap to read.
pub const TRACK_FROM_POINTS_MS: i64 = 3 * 86_400_000;

/// A recording gap longer than this starts a new line of a track read from the points.
const TRACK_GAP_MS: i64 = 15 * 60_000;

/// The track of `devices` in `[from, to)` from their points, without the
/// flagged fixes: one line per device and stretch without a recording gap,
/// thinned evenly to `max_points` (each line keeps its ends).
fn track_from_points(
    store: &dyn Store,
    user: UserId,
    devices: &[Device],
    from: Timestamp,
    to: Timestamp,
    max_points: usize,
) -> Result<Overview, ApiError> {
    use polo_derived::map::OverviewSegment;
    use polo_derived::map::track::MapPoint;
    let mut segments: Vec<OverviewSegment> = Vec::new();
    for device in devices {
        let query = polo_store::PointQuery { user, device: Some(device.id), from: Some(from), to: Some(to) };
        // Flagged fixes (teleports) are left out, as from the map levels.
        let flagged = polo_derived::outliers::flagged_times(store, user, device.id, Some(from), Some(to))
            .map_err(derived_error)?;
        let mut line: Vec<MapPoint> = Vec::new();
        store.scan_points(&query, &mut |point| {
            if flagged.contains(&point.fix.time.0) {
                return std::ops::ControlFlow::Continue(());
            }
            if line.last().is_some_and(|last| point.fix.time.0 - last.time.0 > TRACK_GAP_MS) {
                segments.push(OverviewSegment { device: device.id, points: std::mem::take(&mut line) });
            }
            line.push(MapPoint { time: point.fix.time, coord: point.fix.coord });
            std::ops::ControlFlow::Continue(())
        })?;
        if !line.is_empty() {
            segments.push(OverviewSegment { device: device.id, points: line });
        }
    }
    segments.sort_by_key(|s| (s.points[0].time, s.device));
    let total: usize = segments.iter().map(|s| s.points.len()).sum();
    let thinned = total > max_points;
    if thinned {
        let stride = total.div_ceil(max_points.max(1)).max(2);
        for segment in &mut segments {
            let last = segment.points.len() - 1;
            let mut index = 0;
            segment.points.retain(|_| {
                let keep = index % stride == 0 || index == last;
                index += 1;
                keep
            });
        }
    }
    Ok(Overview {
        level: 0,
        zoom: BASE_ZOOM,
        level_points: [0; 4],
        points: segments.iter().map(|s| s.points.len()).sum(),
        thinned,
        truncated: false,
        segments,
    })
}

/// The simplified track of `devices` in `[from, to)` as a GeoJSON
/// `FeatureCollection` of `LineString`s (one per line, each with its device,
/// start and end), at the finest detail that fits `max_points`: a range of
/// up to [`TRACK_FROM_POINTS_MS`] from the points, a longer one from the map
/// levels of detail (never scanning the points). A lone point becomes a
/// `Point` feature. Blocking.
pub(crate) fn track_geojson(
    store: &dyn Store,
    user: UserId,
    devices: &[Device],
    from: Timestamp,
    to: Timestamp,
    max_points: usize,
) -> Result<serde_json::Value, ApiError> {
    let ids: Vec<DeviceId> = devices.iter().map(|d| d.id).collect();
    let (view, source) = if to.0.saturating_sub(from.0) <= TRACK_FROM_POINTS_MS {
        (track_from_points(store, user, devices, from, to, max_points)?, "points")
    } else {
        (derived::overview(store, user, &ids, from, to, max_points).map_err(derived_error)?, "map")
    };
    let (level, zoom, thinned, truncated) = (view.level, view.zoom, view.thinned, view.truncated);
    let features: Vec<serde_json::Value> = view
        .segments
        .into_iter()
        .map(|segment| {
            let longitudes = unwrap_longitudes(segment.points.iter().map(|p| p.coord.lon()));
            let coordinates: Vec<[f64; 2]> =
                segment.points.iter().zip(longitudes).map(|(p, lon)| [degrees(lon), degrees(p.coord.lat())]).collect();
            let geometry = if coordinates.len() == 1 {
                serde_json::json!({"type": "Point", "coordinates": coordinates[0]})
            } else {
                serde_json::json!({"type": "LineString", "coordinates": coordinates})
            };
            let name = devices.iter().find(|d| d.id == segment.device).map_or("", |d| d.name.as_str());
            let (first, last) = (segment.points[0].time, segment.points[segment.points.len() - 1].time);
            serde_json::json!({
                "type": "Feature",
                "geometry": geometry,
                "properties": {"device": name, "start": first.to_string(), "end": last.to_string()},
            })
        })
        .collect();
    Ok(serde_json::json!({
        "type": "FeatureCollection",
        "features": features,
        "properties": {
            "from": from.to_string(), "to": to.to_string(), "source": source, "level": level, "zoom": zoom,
            "thinned": thinned, "truncated": truncated,
        },
    }))
}

/// What a tile route shows.
#[derive(Debug, Clone, Copy)]
enum Layer {
    Heat,
    Fog,
}

async fn tile_route(
    state: AppState,
    caller: Caller,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
    params: Result<Query<TileParams>, QueryRejection>,
    layer: Layer,
) -> Result<Response, ApiError> {
    let Path((z, x, y)) = path?;
    let Query(params) = params?;
    let z = tile_number("z", &z, u64::from(BASE_ZOOM))?;
    let z = u8::try_from(z).map_err(|_| ApiError::bad_request("z is out of range"))?;
    let last = (1u64 << z) - 1;
    let (x, y) = (tile_number("x", &x, last)?, tile_number("y", &y, last)?);
    check_tile(z, x, y).map_err(derived_error)?;
    let from = params.from.as_deref().map(|t| parse_time("from", t)).transpose()?;
    let to = params.to.as_deref().map(|t| parse_time("to", t)).transpose()?;
    if let (Some(from), Some(to)) = (from, to)
        && from >= to
    {
        return Err(ApiError::bad_request(format!("from ({from}) must be before to ({to})")));
    }
    let store: Arc<dyn Store> = state.store.clone();
    let user = caller.user.id;
    let tile = blocking(move || {
        let devices = devices(store.as_ref(), user, params.device.as_deref())?;
        let ids: Vec<DeviceId> = devices.iter().map(|d| d.id).collect();
        let cells = match layer {
            Layer::Heat => heat_tile(store.as_ref(), user, &ids, z, x, y, from, to),
            Layer::Fog => fog_tile(store.as_ref(), user, &ids, z, x, y, from, to),
        };
        Ok(tile_wire(cells.map_err(derived_error)?))
    })
    .await?;
    cached_json(&headers, &tile)
}

fn tile_wire(tile: TileCells) -> MapTile {
    MapTile {
        z: tile.z,
        x: tile.x,
        y: tile.y,
        cell_zoom: tile.cell_zoom,
        grid: tile.side,
        total: tile.total,
        max: tile.max,
        cells: tile.cells.into_iter().map(|(c, r, n)| [u64::from(c), u64::from(r), n]).collect(),
    }
}

/// A heatmap tile: the caller's points per cell of web-mercator tile `z/x/y`, over all time or
/// the UTC days of a range.
#[utoipa::path(
    get,
    path = "/api/v1/map/heatmap/{z}/{x}/{y}",
    tag = "map",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(
        ("z" = u8, Path, minimum = 0, maximum = 18, description = "Zoom, 0 to 18 (cells are tiles of zoom 18)"),
        ("x" = u32, Path, minimum = 0, description = "Column, below 2^z (0 at 180°W)"),
        ("y" = u32, Path, minimum = 0, description = "Row, below 2^z (0 at the north edge)"),
        TileParams,
    ),
    responses(
        (status = 200, body = MapTile, description = "The tile's cells",
            headers(
                ("ETag" = String, description = "A hash of the body, for `If-None-Match`"),
                ("Cache-Control" = String, description = "`private, max-age=60`"),
            )),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`"),
        BadRequest,
        NotFound,
        AuthErrors,
    )
)]
pub(crate) async fn heatmap(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
    params: Result<Query<TileParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    tile_route(state, caller, headers, path, params, Layer::Heat).await
}

/// A fog-of-war tile: the cells of web-mercator tile `z/x/y` the caller's tracks passed through,
/// with the number of passes, over all time or the UTC days of a range.
#[utoipa::path(
    get,
    path = "/api/v1/map/fog/{z}/{x}/{y}",
    tag = "map",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(
        ("z" = u8, Path, minimum = 0, maximum = 18, description = "Zoom, 0 to 18 (cells are tiles of zoom 18)"),
        ("x" = u32, Path, minimum = 0, description = "Column, below 2^z (0 at 180°W)"),
        ("y" = u32, Path, minimum = 0, description = "Row, below 2^z (0 at the north edge)"),
        TileParams,
    ),
    responses(
        (status = 200, body = MapTile, description = "The visited cells; a count is the number of passes",
            headers(
                ("ETag" = String, description = "A hash of the body, for `If-None-Match`"),
                ("Cache-Control" = String, description = "`private, max-age=60`"),
            )),
        (status = 304, description = "Not modified: `If-None-Match` names the current `ETag`"),
        BadRequest,
        NotFound,
        AuthErrors,
    )
)]
pub(crate) async fn fog(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    path: Result<Path<(String, String, String)>, PathRejection>,
    params: Result<Query<TileParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    tile_route(state, caller, headers, path, params, Layer::Fog).await
}

#[cfg(test)]
mod tests {
    use polo_derived::map::OverviewSegment;
    use polo_derived::map::track::MapPoint;
    use polo_domain::Coord;

    use super::*;

    fn device(id: i64, name: &str) -> Device {
        Device { id: DeviceId(id), user: UserId(1), name: name.to_owned() }
    }

    fn point(ms: i64, lat_e7: i32, lon_e7: i32) -> MapPoint {
        MapPoint { time: Timestamp(ms), coord: Coord { lat_e7, lon_e7 } }
    }

    fn view(segments: Vec<OverviewSegment>) -> Overview {
        let points = segments.iter().map(|s| s.points.len()).sum();
        Overview { level: 1, zoom: 12, level_points: [9, 5, 3, 2], points, thinned: false, truncated: false, segments }
    }

    #[test]
    fn segments_are_flat_rounded_unwrapped_and_timed_in_second_deltas() {
        let devices = [device(3, "phone"), device(7, "watch")];
        let across = OverviewSegment {
            device: DeviceId(7),
            points: vec![
                point(1_709_283_789_250, -168_500_000, 1_799_000_000),
                point(1_709_283_790_999, -168_600_000, -1_799_000_004),
                point(1_709_283_850_000, -168_700_000, -1_798_000_000),
            ],
        };
        let wire = wire(view(vec![across]), &devices, Timestamp(0), Timestamp(1));
        assert_eq!(wire.devices, ["phone", "watch"]);
        let segment = &wire.segments[0];
        assert_eq!(segment.device, 1);
        assert_eq!(segment.start, 1_709_283_789);
        assert_eq!(segment.times, [0, 1, 60], "whole seconds since the previous point");
        assert_eq!(segment.coords, [179.9, -16.85, 180.1, -16.86, 180.2, -16.87], "unwrapped past 180, 5 decimals");
        let text = serde_json::to_string(&wire).unwrap();
        assert!(text.contains("\"coords\":[179.9,-16.85,180.1,-16.86,180.2,-16.87]"), "{text}");
    }

    #[test]
    fn the_largest_budget_at_its_widest_stays_under_two_megabytes() {
        // Worst case: every point a long negative longitude and latitude, each a year after the
        // previous (the time delta at its widest), in as many one-point segments as the budget holds
        // (a segment costs 3 points), and as few, long ones.
        let wide = |i: usize| point(i as i64 * 31_536_000_000, -850_512_345, -1_791_234_567);
        let one_point_segments =
            (0..MAX_POINTS / 4).map(|i| OverviewSegment { device: DeviceId(1_000), points: vec![wide(i)] }).collect();
        let long_segments = (0..10)
            .map(|s| OverviewSegment {
                device: DeviceId(1_000),
                points: (0..(MAX_POINTS - 30) / 10).map(|i| wide(s * 10_000 + i)).collect(),
            })
            .collect();
        let devices: Vec<Device> = (0..=1_000).map(|i| device(i, "a device with a long name")).collect();
        for segments in [one_point_segments, long_segments] {
            let body =
                serde_json::to_vec(&wire(view(segments), &devices[1_000..], Timestamp(0), Timestamp(1))).unwrap();
            assert!(body.len() < 2_000_000, "{} bytes", body.len());
        }
    }

    #[test]
    fn etags_match_strong_weak_and_listed() {
        let tag = "\"abc\"";
        let headers = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::IF_NONE_MATCH, HeaderValue::from_str(value).unwrap());
            headers
        };
        assert!(not_modified(&headers("\"abc\""), tag));
        assert!(not_modified(&headers("W/\"abc\""), tag));
        assert!(not_modified(&headers("\"x\", \"abc\""), tag));
        assert!(not_modified(&headers("*"), tag));
        assert!(!not_modified(&headers("\"abd\""), tag));
        assert!(!not_modified(&HeaderMap::new(), tag));
        let first = cached_json(&HeaderMap::new(), &[1, 2, 3]).unwrap();
        assert_eq!(first.status(), StatusCode::OK);
        let etag = first.headers()[header::ETAG].to_str().unwrap().to_owned();
        assert_eq!(first.headers()[header::CACHE_CONTROL], CACHE_CONTROL);
        let again = cached_json(&headers(&etag), &[1, 2, 3]).unwrap();
        assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
        let changed = cached_json(&headers(&etag), &[1, 2, 4]).unwrap();
        assert_eq!(changed.status(), StatusCode::OK);
    }

    #[test]
    fn tile_numbers_say_which_and_why() {
        assert_eq!(tile_number("z", "18", 18).unwrap(), 18);
        for (name, text, max) in [("z", "19", 18), ("x", "-1", 7), ("y", "8", 7), ("z", "ten", 18), ("x", "1.5", 7)] {
            let error = tile_number(name, text, max).unwrap_err();
            assert_eq!(error.status, StatusCode::BAD_REQUEST);
            assert!(error.message.starts_with(&format!("{name} must be")), "{}", error.message);
            assert!(error.message.contains(text), "{}", error.message);
        }
    }
}
