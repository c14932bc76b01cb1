//! Places under `/api/v1/places`: the places your visits were clustered
//! into, with visits, dwell, locality, the street-level name when an online
//! geocoder is configured, the zone that names them, and the home/work
//! guess; rename and merge them (your edits survive every recomputation).

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use polo_derived::views::{self, PlaceView};
use polo_domain::{Coord, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::derived::blocking;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, CsrfFailed, JsonBodyErrors, NotFound};

/// A place.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Place {
    /// Its id.
    id: i64,
    /// Your name for it.
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<String>,
    /// The zone that holds it (yours, or one of your groups'): it names the
    /// place unless you did.
    #[serde(skip_serializing_if = "Option::is_none")]
    zone: Option<PlaceZone>,
    /// The name to show it with: yours, else its zone's, else its street
    /// address, else "Near" its town, else its region or country. Absent
    /// only where nothing at all is known (the open sea).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Near Ismaning")]
    title: Option<String>,
    /// Latitude, degrees.
    lat: f64,
    /// Longitude, degrees.
    lon: f64,
    /// Country (ISO 3166-1 alpha-2).
    #[serde(skip_serializing_if = "Option::is_none")]
    country_code: Option<String>,
    /// Country name.
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<String>,
    /// First-level region.
    #[serde(skip_serializing_if = "Option::is_none")]
    region: Option<String>,
    /// Nearest town.
    #[serde(skip_serializing_if = "Option::is_none")]
    town: Option<String>,
    /// Street-level name from the online geocoder (`polo serve --geocoder`),
    /// e.g. "Bahnhofstrasse 1, Zürich". Absent when none is configured, the
    /// place has not been looked up yet (within seconds of being found, at
    /// most one lookup a second), or the provider has nothing there.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Bahnhofstrasse 1, Zürich")]
    address: Option<String>,
    /// Ids of places merged into this one.
    merged: Vec<i64>,
    /// Visits, over all devices.
    visits: u32,
    /// Hours spent there.
    hours: f64,
    /// Start of the first visit (UTC).
    first_visit: String,
    /// The UTC offset there and then, minutes east: add it to show local time.
    #[serde(skip_serializing_if = "Option::is_none")]
    first_visit_utc_offset_minutes: Option<i16>,
    /// Start of the last visit (UTC).
    #[serde(skip_serializing_if = "Option::is_none")]
    last_visit: Option<String>,
    /// The UTC offset at the start of the last visit, minutes east.
    #[serde(skip_serializing_if = "Option::is_none")]
    last_visit_utc_offset_minutes: Option<i16>,
    /// Detected as home (night-time dwell).
    home: bool,
    /// Detected as work (weekday daytime dwell).
    work: bool,
}

/// The zone that names a place.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PlaceZone {
    /// The zone's id (`/api/v1/zones`).
    id: i64,
    /// Its name.
    #[schema(example = "Grandma's")]
    name: String,
    /// The group it belongs to; absent for your own zone.
    #[serde(skip_serializing_if = "Option::is_none")]
    group: Option<i64>,
    /// That group's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Family")]
    group_name: Option<String>,
}

impl Place {
    #[allow(clippy::cast_precision_loss)]
    fn new(view: PlaceView, groups: &[polo_store::Membership]) -> Self {
        let at = Coord { lat_e7: view.lat_e7, lon_e7: view.lon_e7 };
        let zone = view.zone.as_ref().map(|z| PlaceZone {
            id: z.id,
            name: z.name.clone(),
            group: z.group,
            group_name: z.group.and_then(|g| groups.iter().find(|m| m.group.id == g)).map(|m| m.group.name.clone()),
        });
        Self {
            title: view.title(),
            zone,
            id: view.id,
            name: view.name,
            lat: at.lat(),
            lon: at.lon(),
            country_code: view.locality.country_code,
            country: view.locality.country,
            region: view.locality.region,
            town: view.locality.town,
            address: view.address,
            merged: view.merged,
            visits: view.visits,
            hours: view.dwell_ms as f64 / 3_600_000.0,
            first_visit: Timestamp(view.first_visit).to_string(),
            first_visit_utc_offset_minutes: view.first_visit_offset,
            last_visit: view.last_visit.map(|t| Timestamp(t).to_string()),
            last_visit_utc_offset_minutes: view.last_visit_offset,
            home: view.home,
            work: view.work,
        }
    }
}

/// Your places, by id.
#[utoipa::path(
    get,
    path = "/api/v1/places",
    tag = "timeline",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Vec<Place>), AuthErrors)
)]
pub(crate) async fn list(State(state): State<AppState>, caller: Caller) -> Result<Json<Vec<Place>>, ApiError> {
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let groups = store.groups_of(user)?;
        Ok(Json(views::places(&*store, user)?.into_iter().map(|view| Place::new(view, &groups)).collect()))
    })
    .await
}

/// `PATCH /api/v1/places/{id}`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct PlaceChange {
    /// The new name (1 to 200 characters, stored trimmed), or `null` to remove yours.
    #[schema(example = "Home", max_length = 200)]
    name: Option<String>,
}

fn place_error(e: polo_derived::DerivedError) -> ApiError {
    match e {
        polo_derived::DerivedError::Invalid(why) if why.starts_with("you have no place") => ApiError::not_found(why),
        other => other.into(),
    }
}

/// Renames a place.
#[utoipa::path(
    patch,
    path = "/api/v1/places/{id}",
    tag = "timeline",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The place's id")),
    request_body = PlaceChange,
    responses((status = 204, description = "Renamed"), JsonBodyErrors, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn rename(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<PlaceChange>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let Json(body) = body?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        polo_derived::places::rename(&*store, user, id, body.name.as_deref()).map_err(place_error)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// `POST /api/v1/places/{id}/merge`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct MergeInto {
    /// The place that absorbs this one.
    into: i64,
}

/// Merges a place into another: its visits count as the other's from now on.
#[utoipa::path(
    post,
    path = "/api/v1/places/{id}/merge",
    tag = "timeline",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The place to merge away")),
    request_body = MergeInto,
    responses((status = 204, description = "Merged"), JsonBodyErrors, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn merge(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<MergeInto>, JsonRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let Json(body) = body?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        polo_derived::places::merge(&*store, user, id, body.into).map_err(place_error)?;
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}
