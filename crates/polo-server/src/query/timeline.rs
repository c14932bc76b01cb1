//! The stored timeline under `/api/v1/timeline`: a local day, the stays,
//! legs and trips of a range, transport-mode corrections, the user's
//! timeline settings, and how far the background computation has got.
//!
//! Everything here is a lookup of what the timeline worker stored
//! (`polo-derived`); nothing is detected on a request. "Local" is the time
//! zone the points stated (their UTC offsets, which change with travel and
//! DST); a point without one takes the offset of the time zone at its
//! position then (`polo-tz`). Times are RFC 3339 in UTC, each with the
//! `utc_offset_minutes` that turns it into the local time to show.

use axum::Json;
use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{Query, State};
use polo_derived::views::{self, DayView, Entries, LegView, Origin, StayView};
use polo_domain::Timestamp;
use polo_timeline::{TimelineParams, TransportMode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::derived::{blocking, device_named, devices_for, parse_date, parse_instant, render_date};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, JsonBodyErrors, NotFound};

/// Query parameters of `GET /api/v1/timeline/day`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DayParams {
    /// The local day, `YYYY-MM-DD` (years 1970 to 9999).
    #[param(example = "2024-05-01", pattern = "^[0-9]{4}-[0-9]{2}-[0-9]{2}$")]
    date: String,
    /// The device whose story to tell; default: the one that tracked most of that day.
    #[param(example = "phone")]
    device: Option<String>,
}

/// What an entry is.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EntryKind {
    /// Staying at one place.
    Stay,
    /// Moving between places.
    Leg,
}

/// Where an entry comes from.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub(crate) enum EntryOrigin {
    /// Detected from the device's points.
    Detected,
    /// A visit or activity the imported source carried: its visits beat detected
    /// entries at the same time, its activities fill in where nothing was detected.
    Imported,
}

impl From<Origin> for EntryOrigin {
    fn from(origin: Origin) -> Self {
        match origin {
            Origin::Detected => Self::Detected,
            Origin::Imported => Self::Imported,
        }
    }
}

/// One stay or leg. Times are RFC 3339 in UTC.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct Entry {
    /// Stay or leg.
    kind: EntryKind,
    /// Detected or imported.
    origin: EntryOrigin,
    /// When it began.
    #[schema(example = "2024-05-01T07:12:03Z")]
    start: String,
    /// When it ended (a stay: the time of the first point outside it).
    #[schema(example = "2024-05-01T08:40:00Z")]
    end: String,
    /// Seconds from start to end.
    duration_s: f64,
    /// Points it is made of (0 for imported entries).
    points: u32,
    /// UTC offset at its start, minutes east: the one its points stated, or
    /// the time zone's at their position. Absent only for an imported entry
    /// whose source gave none.
    #[serde(skip_serializing_if = "Option::is_none")]
    utc_offset_minutes: Option<i16>,
    /// Stays: the centroid's latitude in degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    lat: Option<f64>,
    /// Stays: the centroid's longitude in degrees.
    #[serde(skip_serializing_if = "Option::is_none")]
    lon: Option<f64>,
    /// Stays: long enough to count as a visit.
    #[serde(skip_serializing_if = "Option::is_none")]
    visit: Option<bool>,
    /// Visits: the place's id.
    #[serde(skip_serializing_if = "Option::is_none")]
    place_id: Option<i64>,
    /// Visits: the place's name (yours, or the imported source's).
    #[serde(skip_serializing_if = "Option::is_none")]
    place_name: Option<String>,
    /// Stays: the name to show: the place's name, else its street address
    /// (the online geocoder's or the imported source's), else "Near" its town,
    /// else its region or country.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Near Ismaning")]
    title: Option<String>,
    /// Visits: the country (ISO 3166-1 alpha-2).
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<String>,
    /// Visits: the nearest town.
    #[serde(skip_serializing_if = "Option::is_none")]
    town: Option<String>,
    /// Visits: the place's street-level name from the online geocoder, when
    /// one is configured and has found one (see `Place.address`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Bahnhofstrasse 1, Zürich")]
    address: Option<String>,
    /// Legs: metres along the points.
    #[serde(skip_serializing_if = "Option::is_none")]
    distance_m: Option<f64>,
    /// Legs: `walk`, `cycle`, `road`, `rail`, `flight` or `unknown`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "walk")]
    mode: Option<&'static str>,
    /// Legs: whether you corrected the mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    mode_corrected: Option<bool>,
    /// Legs: cruising speed (85th percentile), m/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    cruising_speed_mps: Option<f64>,
    /// Legs: the fastest segment, m/s (may be a GPS jump).
    #[serde(skip_serializing_if = "Option::is_none")]
    max_speed_mps: Option<f64>,
    /// Legs: the mean speed, m/s.
    #[serde(skip_serializing_if = "Option::is_none")]
    mean_speed_mps: Option<f64>,
    /// Stays: `true` when you edited it (`PUT /api/v1/timeline/visits`); `start` and `end` are
    /// then yours.
    #[serde(skip_serializing_if = "Option::is_none")]
    edited: Option<bool>,
    /// Stays: `true` for the stay the device's points end in (its last fix is the device's
    /// last fix): `end` is when it was last seen there, and later points may extend it.
    #[serde(skip_serializing_if = "Option::is_none")]
    ongoing: Option<bool>,
    /// Shared timelines only: the entry began before or ended after the shared range and was cut
    /// to it (a cut leg has no distance or speeds).
    #[serde(skip_serializing_if = "Option::is_none")]
    clipped: Option<bool>,
}

impl Entry {
    /// Leaves out what names the place itself (its id, your or the source's
    /// name for it, its street address), keeping the town and country: for
    /// share links whose owner keeps "Home" to themselves.
    fn hide_place(&mut self) {
        self.place_id = None;
        self.place_name = None;
        self.address = None;
    }
}

#[allow(clippy::cast_precision_loss)]
fn seconds(start: i64, end: i64) -> f64 {
    (end - start) as f64 / 1000.0
}

fn mean_speed(distance_m: f64, start: i64, end: i64) -> f64 {
    let seconds = seconds(start, end);
    if seconds > 0.0 { distance_m / seconds } else { 0.0 }
}

fn stay_entry(stay: &StayView) -> Entry {
    let row = &stay.row;
    let centroid = row.centroid();
    let locality = stay.locality.as_ref();
    Entry {
        kind: EntryKind::Stay,
        origin: stay.origin.into(),
        start: Timestamp(row.start).to_string(),
        end: Timestamp(row.end).to_string(),
        duration_s: seconds(row.start, row.end),
        points: row.points,
        utc_offset_minutes: row.offset,
        lat: Some(centroid.lat()),
        lon: Some(centroid.lon()),
        visit: Some(row.visit),
        place_id: stay.place,
        place_name: stay.place_name.clone(),
        title: stay.title(),
        country: locality.and_then(|l| l.country_code.clone()),
        town: locality.and_then(|l| l.town.clone()),
        address: stay.address.clone(),
        distance_m: None,
        mode: None,
        mode_corrected: None,
        cruising_speed_mps: None,
        max_speed_mps: None,
        mean_speed_mps: None,
        edited: stay.edited.then_some(true),
        ongoing: stay.ongoing.then_some(true),
        clipped: None,
    }
}

fn leg_entry(leg: &LegView) -> Entry {
    let row = &leg.row;
    Entry {
        kind: EntryKind::Leg,
        origin: leg.origin.into(),
        start: Timestamp(row.start).to_string(),
        end: Timestamp(row.end).to_string(),
        duration_s: seconds(row.start, row.end),
        points: row.points,
        utc_offset_minutes: row.offset,
        lat: None,
        lon: None,
        visit: None,
        place_id: None,
        place_name: None,
        title: None,
        country: None,
        town: None,
        address: None,
        distance_m: Some(row.distance_m),
        mode: Some(leg.mode.name()),
        mode_corrected: Some(leg.corrected),
        cruising_speed_mps: Some(row.p85_mps),
        max_speed_mps: Some(row.max_mps),
        mean_speed_mps: Some(row.mean_mps),
        edited: None,
        ongoing: None,
        clipped: None,
    }
}

fn entry_list(entries: &Entries) -> Vec<Entry> {
    timed_entries(entries).into_iter().map(|(_, _, e)| e).collect()
}

/// The entries in time order, with their start and end in milliseconds.
fn timed_entries(entries: &Entries) -> Vec<(i64, i64, Entry)> {
    let mut out: Vec<(i64, i64, Entry)> = entries
        .stays
        .iter()
        .map(|s| (s.row.start, s.row.end, stay_entry(s)))
        .chain(entries.legs.iter().map(|l| (l.row.start, l.row.end, leg_entry(l))))
        .collect();
    out.sort_by_key(|(start, _, _)| *start);
    out
}

/// The day's story.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DayTimeline {
    /// The local day asked for.
    #[schema(example = "2024-05-01")]
    date: String,
    /// The device whose story it is; absent when no device has anything that day.
    #[serde(skip_serializing_if = "Option::is_none")]
    device: Option<String>,
    /// The first instant of the local day (UTC).
    from: String,
    /// The first instant of the next local day (UTC).
    to: String,
    /// The UTC offset at the start of the day, in minutes (0 when nothing is known).
    utc_offset_minutes: i16,
    /// Stays and legs overlapping the day, in time order.
    entries: Vec<Entry>,
    /// Every device that tracked anything that day, most tracked first; ask
    /// for another one's story with `device=`.
    devices: Vec<DayDevice>,
}

/// A device with points on the day.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DayDevice {
    /// The device's name.
    #[schema(example = "phone")]
    name: String,
    /// What you call it (`PUT /api/v1/devices/{id}/label`), when you named it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "Anna's Pixel")]
    label: Option<String>,
    /// Seconds of the day it tracked.
    tracked_s: f64,
}

/// The stays and legs of a local day: a lookup of the stored timeline.
#[utoipa::path(
    get,
    path = "/api/v1/timeline/day",
    tag = "timeline",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(DayParams),
    responses((status = 200, body = DayTimeline), BadRequest, AuthErrors)
)]
pub(crate) async fn day(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<DayParams>, QueryRejection>,
) -> Result<Json<DayTimeline>, ApiError> {
    let Query(params) = params?;
    let date = parse_date("date", &params.date)?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let devices = store.list_devices(user)?;
        let wanted = params.device.as_deref().map(|name| device_named(&devices, name)).transpose()?;
        let DayView { device, from, to, offset_minutes, entries, devices: tracked } =
            views::day(&*store, user, date, wanted)?;
        let labels = crate::device_labels::labels(&*store, user)?;
        let day_device = |&(id, ms): &(polo_domain::DeviceId, i64)| {
            let name = devices.iter().find(|d| d.id == id)?.name.clone();
            Some(DayDevice { label: labels.get(&name).cloned(), name, tracked_s: ms as f64 / 1000.0 })
        };
        Ok(Json(DayTimeline {
            devices: tracked.iter().filter_map(day_device).collect(),
            date: render_date(date),
            device: devices.iter().find(|d| Some(d.id) == device).map(|d| d.name.clone()),
            from: from.to_string(),
            to: to.to_string(),
            utc_offset_minutes: offset_minutes,
            entries: entry_list(&entries),
        }))
    })
    .await
}

/// Query parameters of `GET /api/v1/timeline/entries`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RangeParams {
    /// Start of the range (RFC 3339), inclusive.
    #[param(example = "2024-05-01T00:00:00Z")]
    from: String,
    /// End of the range (RFC 3339), exclusive; at most 366 days after `from`.
    #[param(example = "2024-05-08T00:00:00Z")]
    to: String,
    /// The device (by name); default: every device.
    #[param(example = "phone")]
    device: Option<String>,
}

/// One device's entries.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeviceEntries {
    /// The device.
    device: String,
    /// Its stays and legs overlapping the range, in time order.
    entries: Vec<Entry>,
}

const MAX_RANGE_MS: i64 = 366 * 86_400_000;

fn parse_range(from: &str, to: &str) -> Result<(Timestamp, Timestamp), ApiError> {
    let (from, to) = (parse_instant("from", from)?, parse_instant("to", to)?);
    if to <= from {
        return Err(ApiError::bad_request("to must be after from"));
    }
    if to.0 - from.0 > MAX_RANGE_MS {
        return Err(ApiError::bad_request("the range may span at most 366 days"));
    }
    Ok((from, to))
}

/// The stays and legs of a time range, per device.
#[utoipa::path(
    get,
    path = "/api/v1/timeline/entries",
    tag = "timeline",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(RangeParams),
    responses((status = 200, body = Vec<DeviceEntries>), BadRequest, AuthErrors)
)]
pub(crate) async fn entries(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<Vec<DeviceEntries>>, ApiError> {
    let Query(params) = params?;
    let (from, to) = parse_range(&params.from, &params.to)?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let chosen = devices_for(&store.list_devices(user)?, params.device.as_deref())?;
        let book = polo_derived::places::PlaceBook::load(&*store, user)?;
        let mut out = Vec::new();
        for (device, name) in chosen {
            let found = views::entries(&*store, user, device, from, to, &book)?;
            out.push(DeviceEntries { device: name, entries: entry_list(&found) });
        }
        Ok(Json(out))
    })
    .await
}

/// The entries of `devices` in `[from, to)` as a share shows them: only what
/// happened inside the range. An entry that began before or ended after the
/// range is cut to it and marked `clipped`; a clipped leg loses its
/// distance and speeds, which describe the movement outside the range too.
pub(crate) fn shared_entries(
    store: &dyn polo_store::Store,
    user: polo_domain::UserId,
    devices: &[(polo_domain::DeviceId, String)],
    from: Timestamp,
    to: Timestamp,
    hide_places: bool,
) -> Result<Vec<DeviceEntries>, ApiError> {
    let book = polo_derived::places::PlaceBook::load(store, user)?;
    let mut out = Vec::new();
    for (device, name) in devices {
        let found = views::entries(store, user, *device, from, to, &book)?;
        let mut entries = Vec::new();
        for (start, end, mut entry) in timed_entries(&found) {
            if end <= from.0 || start >= to.0 {
                continue;
            }
            let (clipped_start, clipped_end) = (start.max(from.0), end.min(to.0));
            if (clipped_start, clipped_end) != (start, end) {
                entry.start = Timestamp(clipped_start).to_string();
                entry.end = Timestamp(clipped_end).to_string();
                entry.duration_s = seconds(clipped_start, clipped_end);
                entry.clipped = Some(true);
                if matches!(entry.kind, EntryKind::Leg) {
                    entry.distance_m = None;
                    entry.cruising_speed_mps = None;
                    entry.max_speed_mps = None;
                    entry.mean_speed_mps = None;
                }
            }
            if hide_places {
                entry.hide_place();
            }
            entries.push(entry);
        }
        out.push(DeviceEntries { device: name.clone(), entries });
    }
    Ok(out)
}

/// The UTC offset at a leg's end: its last change within, else its start's.
fn offset_at_end(row: &polo_derived::rows::LegRow) -> Option<i16> {
    row.offset_changes.last().map(|&(_, offset)| offset).or(row.offset)
}

/// A trip: the legs and short stops between two visits.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TripView {
    /// The device.
    device: String,
    /// Start of its first leg (UTC).
    start: String,
    /// The UTC offset at its start, minutes east (as its first leg's entry
    /// says): the day view shows the same local time.
    #[serde(skip_serializing_if = "Option::is_none")]
    utc_offset_minutes: Option<i16>,
    /// End of its last leg (UTC).
    end: String,
    /// The UTC offset at its end, minutes east (a trip may cross zones).
    #[serde(skip_serializing_if = "Option::is_none")]
    end_utc_offset_minutes: Option<i16>,
    /// Seconds.
    duration_s: f64,
    /// Metres.
    distance_m: f64,
    /// Mean speed over the whole trip (distance over duration), m/s.
    mean_speed_mps: f64,
    /// The fastest segment of any of its legs, m/s (may be a GPS jump).
    max_speed_mps: f64,
    /// The mode that covered most of the distance.
    #[schema(example = "road")]
    main_mode: &'static str,
    /// The visit it left from: the place id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    origin_place: Option<i64>,
    /// The visit it arrived at: the place id, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_place: Option<i64>,
    /// The name to show for the visit it left from (as its stay's `title` in the day view: the
    /// place's name, street address, "Near <town>", region or country), also when that visit
    /// belongs to no place. Absent when the trip starts after a recording gap.
    #[serde(skip_serializing_if = "Option::is_none")]
    origin_title: Option<String>,
    /// The name to show for the visit it arrived at; absent when a recording gap ends the trip
    /// (or it is still under way).
    #[serde(skip_serializing_if = "Option::is_none")]
    destination_title: Option<String>,
    /// Its legs and stops, in time order.
    entries: Vec<Entry>,
}

/// The trips of a time range: legs and short stops grouped between visits.
#[utoipa::path(
    get,
    path = "/api/v1/timeline/trips",
    tag = "timeline",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(RangeParams),
    responses((status = 200, body = Vec<TripView>), BadRequest, AuthErrors)
)]
pub(crate) async fn trips(
    State(state): State<AppState>,
    caller: Caller,
    params: Result<Query<RangeParams>, QueryRejection>,
) -> Result<Json<Vec<TripView>>, ApiError> {
    let Query(params) = params?;
    let (from, to) = parse_range(&params.from, &params.to)?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let chosen = devices_for(&store.list_devices(user)?, params.device.as_deref())?;
        let settings = polo_derived::settings::settings(&*store, user)?;
        let book = polo_derived::places::PlaceBook::load(&*store, user)?;
        let mut out = Vec::new();
        // A trip made only of imported entries shows on every device with fixes that day: once is enough.
        let mut imported_trips = std::collections::HashSet::new();
        for (device, name) in chosen {
            let found = views::entries(&*store, user, device, from, to, &book)?;
            let stays: Vec<_> = found.stays.iter().map(|s| s.row.to_stay()).collect();
            let legs: Vec<_> = found.legs.iter().map(|l| l.row.to_leg(l.mode)).collect();
            for trip in polo_timeline::group_trips(&stays, &legs, &settings.stays) {
                let parts = Entries {
                    stays: found.stays[trip.stops.clone()].to_vec(),
                    legs: found.legs[trip.legs.clone()].to_vec(),
                };
                let imported_only = parts.stays.iter().all(|s| s.origin == views::Origin::Imported)
                    && parts.legs.iter().all(|l| l.origin == views::Origin::Imported);
                if imported_only && !imported_trips.insert((trip.start, trip.end)) {
                    continue;
                }
                let (first, last) = (parts.legs.first(), parts.legs.last());
                out.push(TripView {
                    device: name.clone(),
                    start: trip.start.to_string(),
                    utc_offset_minutes: first.and_then(|l| l.row.offset),
                    end: trip.end.to_string(),
                    end_utc_offset_minutes: last.and_then(|l| offset_at_end(&l.row)),
                    duration_s: seconds(trip.start.0, trip.end.0),
                    distance_m: trip.distance_m,
                    mean_speed_mps: mean_speed(trip.distance_m, trip.start.0, trip.end.0),
                    max_speed_mps: parts.legs.iter().map(|l| l.row.max_mps).fold(0.0, f64::max),
                    main_mode: trip.main_mode.name(),
                    origin_place: trip.origin.and_then(|i| found.stays[i].place),
                    destination_place: trip.destination.and_then(|i| found.stays[i].place),
                    origin_title: trip.origin.and_then(|i| found.stays[i].title()),
                    destination_title: trip.destination.and_then(|i| found.stays[i].title()),
                    entries: entry_list(&parts),
                });
            }
        }
        out.sort_by(|a, b| a.start.cmp(&b.start));
        Ok(Json(out))
    })
    .await
}

/// `PUT /api/v1/timeline/legs/mode`'s body.
#[derive(Debug, Deserialize, ToSchema)]
pub(crate) struct ModeCorrection {
    /// The device whose leg it is.
    #[schema(example = "phone")]
    device: String,
    /// The leg's start, exactly as listed (RFC 3339).
    #[schema(example = "2024-05-01T07:12:03Z")]
    start: String,
    /// What it really was: `walk`, `cycle`, `road`, `rail`, `flight` or `unknown`.
    #[schema(example = "rail")]
    mode: String,
}

fn parse_mode(text: &str) -> Result<TransportMode, ApiError> {
    TransportMode::ALL.into_iter().find(|m| m.name() == text).ok_or_else(|| {
        ApiError::bad_request(format!("mode must be walk, cycle, road, rail, flight or unknown, not {text:?}"))
    })
}

/// Corrects a leg's transport mode. The correction is kept as your edit and
/// survives every recomputation; statistics follow at once.
#[utoipa::path(
    put,
    path = "/api/v1/timeline/legs/mode",
    tag = "timeline",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = ModeCorrection,
    responses((status = 204, description = "Corrected"), JsonBodyErrors, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn correct_mode(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<ModeCorrection>, JsonRejection>,
) -> Result<axum::http::StatusCode, ApiError> {
    let Json(body) = body?;
    let start = parse_instant("start", &body.start)?;
    let mode = parse_mode(&body.mode)?;
    let (store, engine, user) = (state.store.clone(), state.timeline.engine().clone(), caller.user.id);
    blocking(move || {
        let device = device_named(&store.list_devices(user)?, &body.device)?;
        engine.set_leg_mode(user, device, start, mode).map_err(|e| match e {
            polo_derived::DerivedError::Invalid(why) => ApiError::not_found(why),
            other => other.into(),
        })?;
        Ok(axum::http::StatusCode::NO_CONTENT)
    })
    .await
}

/// The timeline settings: stay detection (trackintel's sliding method),
/// transport-mode speeds, place clustering, home and work windows.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
#[schema(value_type = Object)]
pub(crate) struct Settings(TimelineParams);

/// Your timeline settings (defaults until you change them).
#[utoipa::path(
    get,
    path = "/api/v1/timeline/settings",
    tag = "timeline",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = Settings), AuthErrors)
)]
pub(crate) async fn get_settings(State(state): State<AppState>, caller: Caller) -> Result<Json<Settings>, ApiError> {
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || Ok(Json(Settings(polo_derived::settings::settings(&*store, user)?)))).await
}

/// Replaces your timeline settings (missing members take their defaults);
/// your whole timeline is recomputed with them in the background.
#[utoipa::path(
    put,
    path = "/api/v1/timeline/settings",
    tag = "timeline",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = Settings,
    responses((status = 200, body = Settings), JsonBodyErrors, CsrfFailed, AuthErrors)
)]
pub(crate) async fn put_settings(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<serde_json::Value>, JsonRejection>,
) -> Result<Json<Settings>, ApiError> {
    let Json(body) = body?;
    if !body.is_object() {
        return Err(ApiError::bad_request("the settings must be a JSON object"));
    }
    let params: TimelineParams =
        serde_json::from_value(body).map_err(|e| ApiError::bad_request(format!("the settings are not valid: {e}")))?;
    let (store, user, worker) = (state.store.clone(), caller.user.id, state.timeline.clone());
    let saved = blocking(move || {
        polo_derived::settings::set_settings(&*store, user, &params)?;
        Ok(Json(Settings(params)))
    })
    .await?;
    worker.poke();
    Ok(saved)
}

/// How far the background computation has got.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TimelineProgress {
    /// The last change the stored timeline includes.
    processed_seq: u64,
    /// The latest change in the store.
    latest_seq: u64,
    /// Whether everything stored so far is reflected (`processed_seq == latest_seq`).
    up_to_date: bool,
    /// While the background computation keeps failing: why (it is retried with a growing back-off,
    /// and the server log has the details).
    #[serde(skip_serializing_if = "Option::is_none")]
    failure: Option<String>,
}

/// Whether the stored timeline reflects every stored point yet (it trails
/// live points by a few seconds, an import of years by longer).
#[utoipa::path(
    get,
    path = "/api/v1/timeline/progress",
    tag = "timeline",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = TimelineProgress), AuthErrors)
)]
pub(crate) async fn progress(
    State(state): State<AppState>,
    _caller: Caller,
) -> Result<Json<TimelineProgress>, ApiError> {
    let (store, engine) = (state.store.clone(), state.timeline.engine().clone());
    let failure = state.timeline.failure();
    blocking(move || {
        let (processed, latest) = (engine.cursor()?.0, store.last_seq()?.0);
        Ok(Json(TimelineProgress {
            processed_seq: processed,
            latest_seq: latest,
            up_to_date: processed >= latest,
            failure,
        }))
    })
    .await
}
