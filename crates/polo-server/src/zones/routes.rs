//! The zones, events and webhooks API.
//!
//! * `GET|POST /api/v1/zones`, `GET|PUT|DELETE /api/v1/zones/{id}` — your
//!   zones (circles and polygons with their rules) and your groups' zones:
//!   every member sees a group's zone, its admins and its maker edit it
//!   ([`crate::groups`]).
//! * `GET /api/v1/events?after=CURSOR` — your event log from a cursor (the
//!   last id you saw), oldest first.
//! * `GET|POST /api/v1/webhooks`, `DELETE /api/v1/webhooks/{id}`,
//!   `GET /api/v1/webhooks/{id}/deliveries` — subscriptions and their
//!   delivery log.
//! * `GET|PUT /api/v1/nearby` — your friend-nearby distances ([`super::nearby`]).
//!
//! The request types mirror `polo-zones`' so the OpenAPI document describes
//! exactly what is accepted; a field out of range is a 400 naming it.

use axum::Json;
use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use polo_store::Store;
use polo_zones::webhook::{EventDocument, Preset, SubscriptionSpec};
use polo_zones::{Rules, Shape, ZoneSpec};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::now;
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest, CsrfFailed, Forbidden, JsonBodyErrors, NotFound};
use crate::query::derived::blocking;

/// The most zones a user may have.
pub const MAX_ZONES_PER_USER: usize = 1_000;
/// The most webhook subscriptions a user may have.
pub const MAX_WEBHOOKS_PER_USER: usize = 20;
/// The most events or deliveries one page returns.
pub const MAX_PAGE: usize = 1_000;

/// A zone's outline; positions are `[latitude, longitude]` in degrees.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum ShapeBody {
    /// Everything within `radius_m` (1 to 50000) of `center`.
    Circle {
        /// `[lat, lon]`.
        center: [f64; 2],
        /// Metres.
        radius_m: f64,
    },
    /// A simple polygon of 3 to 1000 vertices spanning at most 50 km (do not repeat the first vertex).
    Polygon {
        /// `[lat, lon]` each.
        vertices: Vec<[f64; 2]>,
    },
}

/// How a zone's events fire; every field is optional.
#[derive(Debug, Clone, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RulesBody {
    /// Seconds inside before `zone.enter` fires (0 to 86400; default 120): a drive-by fires nothing.
    #[schema(minimum = 0, maximum = 86400)]
    dwell_s: Option<u32>,
    /// Metres beyond the outline a fix's accuracy circle must be to count as gone (0 to 5000; default 50).
    #[schema(minimum = 0, maximum = 5000)]
    exit_buffer_m: Option<f64>,
    /// Clear fixes in a row that confirm `zone.leave` (1 to 20; default 2).
    #[schema(minimum = 1, maximum = 20)]
    exit_confirmations: Option<u8>,
    /// Seconds between two transitions at least (0 to 86400; default 60).
    #[schema(minimum = 0, maximum = 86400)]
    cooldown_s: Option<u32>,
    /// Seconds inside after which `zone.dwell` fires once per visit (1 to 604800); none by default.
    #[schema(minimum = 1, maximum = 604800)]
    dwell_alert_s: Option<u32>,
}

/// A zone as you send it.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ZoneBody {
    /// 1 to 200 characters ("Home").
    #[schema(min_length = 1, max_length = 200)]
    name: String,
    shape: ShapeBody,
    #[serde(default)]
    rules: RulesBody,
    /// The id of a group of yours the zone belongs to (you must administer it): every member's
    /// devices are evaluated against it. Absent: the zone is yours alone. Set when the zone is
    /// made; a `PUT` may repeat it but not change it.
    #[serde(default)]
    group: Option<i64>,
}

/// A zone.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ZoneView {
    id: i64,
    name: String,
    shape: ShapeBody,
    rules: RulesBody,
    /// Last changed, ms since the epoch.
    updated_ms: i64,
    /// `owntracks` for a zone made from an OwnTracks app's region (it keeps
    /// the region's identity, so the app's updates reach it); absent for
    /// zones made here.
    #[serde(skip_serializing_if = "Option::is_none")]
    origin: Option<String>,
    /// The group it belongs to (absent: yours alone).
    group: Option<i64>,
    /// That group's name.
    group_name: Option<String>,
    /// Whether you may change or delete it: your own zone, or a group's you administer or made.
    editable: bool,
}

/// Your zones.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ZoneList {
    zones: Vec<ZoneView>,
}

impl ZoneBody {
    fn into_spec(self) -> Result<ZoneSpec, ApiError> {
        let d = Rules::default();
        let r = self.rules;
        let rules = Rules {
            dwell_s: r.dwell_s.unwrap_or(d.dwell_s),
            exit_buffer_m: r.exit_buffer_m.unwrap_or(d.exit_buffer_m),
            exit_confirmations: r.exit_confirmations.unwrap_or(d.exit_confirmations),
            cooldown_s: r.cooldown_s.unwrap_or(d.cooldown_s),
            dwell_alert_s: r.dwell_alert_s,
        };
        let shape = match self.shape {
            ShapeBody::Circle { center, radius_m } => Shape::Circle { center, radius_m },
            ShapeBody::Polygon { vertices } => Shape::Polygon { vertices },
        };
        let spec = ZoneSpec { name: self.name.trim().to_owned(), shape, rules, origin: None };
        spec.validate().map_err(|e| ApiError::bad_request(e.to_string()))?;
        Ok(spec)
    }
}

/// The zones `user` sees: their own and those of the groups they are in, with their standing.
struct Visible {
    user: polo_domain::UserId,
    rows: Vec<polo_store::ZoneRow>,
    groups: Vec<polo_store::Membership>,
}

impl Visible {
    fn of(store: &dyn Store, user: polo_domain::UserId) -> Result<Self, ApiError> {
        let groups = store.groups_of(user)?;
        let rows = polo_store::zones::visible_zones(store, user, &groups)?;
        Ok(Self { user, rows, groups })
    }

    fn membership(&self, group: i64) -> Option<&polo_store::Membership> {
        self.groups.iter().find(|m| m.group.id == group)
    }

    fn editable(&self, row: &polo_store::ZoneRow) -> bool {
        match row.group {
            None => row.user == self.user,
            Some(group) => row.user == self.user || self.membership(group).is_some_and(|m| m.admin),
        }
    }

    fn row(&self, id: i64) -> Result<&polo_store::ZoneRow, ApiError> {
        self.rows.iter().find(|z| z.id == id).ok_or_else(|| ApiError::not_found(format!("zone {id}")))
    }

    /// The row of zone `id` if the user may change it: 404 when they do not see it, 403 when
    /// they only see it.
    fn editable_row(&self, id: i64) -> Result<&polo_store::ZoneRow, ApiError> {
        let row = self.row(id)?;
        if !self.editable(row) {
            return Err(ApiError::forbidden(format!(
                "zone {id} belongs to the group {:?}; only its admins and the member who made it can change it",
                row.group.and_then(|g| self.membership(g)).map_or("", |m| m.group.name.as_str())
            )));
        }
        Ok(row)
    }

    fn view(&self, row: &polo_store::ZoneRow) -> Result<ZoneView, ApiError> {
        let mut view = view(row)?;
        view.group = row.group;
        view.group_name = row.group.and_then(|g| self.membership(g)).map(|m| m.group.name.clone());
        view.editable = self.editable(row);
        Ok(view)
    }
}

fn view(row: &polo_store::ZoneRow) -> Result<ZoneView, ApiError> {
    let zone =
        polo_zones::Zone::from_body(row.id, row.user, &row.body).map_err(|e| ApiError::internal(e.to_string()))?;
    let spec = zone.spec;
    let shape = match spec.shape {
        Shape::Circle { center, radius_m } => ShapeBody::Circle { center, radius_m },
        Shape::Polygon { vertices } => ShapeBody::Polygon { vertices },
    };
    let r = spec.rules;
    let rules = RulesBody {
        dwell_s: Some(r.dwell_s),
        exit_buffer_m: Some(r.exit_buffer_m),
        exit_confirmations: Some(r.exit_confirmations),
        cooldown_s: Some(r.cooldown_s),
        dwell_alert_s: r.dwell_alert_s,
    };
    let origin = spec.origin.map(|o| o.source);
    Ok(ZoneView {
        id: row.id,
        name: spec.name,
        shape,
        rules,
        updated_ms: row.updated.0,
        origin,
        group: row.group,
        group_name: None,
        editable: true,
    })
}

fn zone_view(store: &dyn Store, user: polo_domain::UserId, id: i64) -> Result<ZoneView, ApiError> {
    let visible = Visible::of(store, user)?;
    visible.view(visible.row(id)?)
}

/// Your zones and your groups' zones.
#[utoipa::path(
    get,
    path = "/api/v1/zones",
    tag = "zones",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = ZoneList), AuthErrors)
)]
pub(crate) async fn list_zones(State(state): State<AppState>, caller: Caller) -> Result<Json<ZoneList>, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        let visible = Visible::of(&*store, caller.user.id)?;
        let zones = visible.rows.iter().map(|z| visible.view(z)).collect::<Result<_, _>>()?;
        Ok(Json(ZoneList { zones }))
    })
    .await
}

/// Creates a zone, yours or (with `group`) a group's you administer. Every stored point of your
/// devices (of every member's, for a group's zone) is evaluated against it from now on.
#[utoipa::path(
    post,
    path = "/api/v1/zones",
    tag = "zones",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = ZoneBody,
    responses((status = 201, body = ZoneView), BadRequest, JsonBodyErrors, Forbidden, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn create_zone(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<ZoneBody>, JsonRejection>,
) -> Result<(StatusCode, Json<ZoneView>), ApiError> {
    let Json(body) = body?;
    let group = body.group;
    let spec = body.into_spec()?;
    let (store, zones, user) = (state.store.clone(), state.zones.clone(), caller.user.id);
    blocking(move || {
        let id = match group {
            None => {
                if store.zones(Some(user))?.len() >= MAX_ZONES_PER_USER {
                    return Err(ApiError::bad_request(format!(
                        "you have {MAX_ZONES_PER_USER} zones, the most there may be"
                    )));
                }
                store.create_zone(user, &spec.to_body(), now())?
            }
            Some(group) => {
                crate::groups::Standing::admin(&*store, user, group)
                    .map_err(|e| ApiError { message: format!("group: {}", e.message), ..e })?;
                if store.group_zones(group)?.len() >= MAX_ZONES_PER_USER {
                    return Err(ApiError::bad_request(format!(
                        "group: it has {MAX_ZONES_PER_USER} zones, the most there may be"
                    )));
                }
                store.create_group_zone(user, group, &spec.to_body(), now())?
            }
        };
        zones.zones_changed();
        Ok((StatusCode::CREATED, Json(zone_view(&*store, user, id)?)))
    })
    .await
}

/// One of your zones or your groups' zones.
#[utoipa::path(
    get,
    path = "/api/v1/zones/{id}",
    tag = "zones",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The zone's id")),
    responses((status = 200, body = ZoneView), BadRequest, NotFound, AuthErrors)
)]
pub(crate) async fn get_zone(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<Json<ZoneView>, ApiError> {
    let Path(id) = id?;
    let store = state.store.clone();
    blocking(move || Ok(Json(zone_view(&*store, caller.user.id, id)?))).await
}

/// Replaces a zone (a group's: its admins and its maker only). Devices keep their state in it (a
/// device inside stays inside until it leaves by the new outline).
#[utoipa::path(
    put,
    path = "/api/v1/zones/{id}",
    tag = "zones",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The zone's id")),
    request_body = ZoneBody,
    responses((status = 200, body = ZoneView), BadRequest, JsonBodyErrors, Forbidden, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn put_zone(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<ZoneBody>, JsonRejection>,
) -> Result<Json<ZoneView>, ApiError> {
    let Path(id) = id?;
    let Json(body) = body?;
    let group = body.group;
    let mut spec = body.into_spec()?;
    let (store, zones, user) = (state.store.clone(), state.zones.clone(), caller.user.id);
    blocking(move || {
        let visible = Visible::of(&*store, user)?;
        let old = visible.editable_row(id)?;
        if group.is_some() && group != old.group {
            return Err(ApiError::bad_request(format!(
                "group: zone {id} cannot move to another group or owner; make a new zone there"
            )));
        }
        // An app's region stays that region (its identity is not the client's to change).
        spec.origin = polo_zones::Zone::from_body(old.id, old.user, &old.body)
            .map_err(|e| ApiError::internal(e.to_string()))?
            .spec
            .origin;
        if !store.update_zone(old.user, id, &spec.to_body(), now())? {
            return Err(ApiError::not_found(format!("zone {id}")));
        }
        zones.zones_changed();
        Ok(Json(zone_view(&*store, user, id)?))
    })
    .await
}

/// Deletes a zone (a group's: its admins and its maker only) and every device's state in it; its
/// events stay in the log.
#[utoipa::path(
    delete,
    path = "/api/v1/zones/{id}",
    tag = "zones",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The zone's id")),
    responses((status = 204, description = "Deleted"), BadRequest, Forbidden, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn delete_zone(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let (store, zones, user) = (state.store.clone(), state.zones.clone(), caller.user.id);
    blocking(move || {
        let owner = Visible::of(&*store, user)?.editable_row(id)?.user;
        if !store.delete_zone(owner, id)? {
            return Err(ApiError::not_found(format!("zone {id}")));
        }
        zones.zones_changed();
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// Where to read the event log from.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct EventsQuery {
    /// The last event id you have seen (0 or absent: from the start).
    #[param(minimum = 0)]
    after: Option<i64>,
    /// At most this many (1 to 1000; default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// An event.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct EventView {
    /// The log's id: pass the last one you saw as `after`.
    pub(crate) id: i64,
    /// `zone.enter`, `zone.leave`, `zone.dwell`, `device.silent`, `device.battery_low`, what an
    /// OwnTracks app reported: `app.enter`, `app.leave`, what the timeline found in live data:
    /// `visit.start`, `visit.end`, `trip.start`, `trip.end`, or a friend `friend.nearby`,
    /// `friend.away`.
    pub(crate) kind: String,
    /// When it happened, ms since the epoch.
    at_ms: i64,
    pub(crate) device: i64,
    device_name: String,
    zone: Option<i64>,
    zone_name: Option<String>,
    /// Derived from late or old points (a history import): logged, never sent.
    past: bool,
    /// Kind-specific facts: `since`, `entered`, `last_fix` (ms), `battery_percent`; for visits and
    /// trips `place`, `place_name` (`from_place`, `from_place_name` for `trip.start`), `lat`, `lon`,
    /// and `entered` (`visit.end`) or `started`, `distance_m`, `mode` (`trip.end`); for friends
    /// `friend`, `friend_device`, `distance_m`, `lat`, `lon`.
    #[schema(value_type = Object)]
    pub(crate) detail: serde_json::Value,
}

impl From<EventDocument> for EventView {
    fn from(d: EventDocument) -> Self {
        Self {
            id: d.id,
            kind: d.kind,
            at_ms: d.at_ms,
            device: d.device,
            device_name: d.device_name,
            zone: d.zone,
            zone_name: d.zone_name,
            past: d.past,
            detail: d.detail,
        }
    }
}

/// A page of the event log.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventPage {
    events: Vec<EventView>,
    /// The cursor for the next page (the last id here, or `after` when there is nothing new).
    next: i64,
}

/// Reads the stored event document of `event`, with its id.
pub(crate) fn document(event: &polo_store::StoredEvent) -> Result<EventDocument, ApiError> {
    let mut doc: EventDocument = serde_json::from_str(&event.body)
        .map_err(|e| ApiError::internal(format!("stored event {} does not decode: {e}", event.id)))?;
    doc.id = event.id;
    Ok(doc)
}

/// Your events after a cursor, oldest first: zone enter, leave and dwell, devices gone silent,
/// low batteries, visits and trips starting and ending, friends nearby and away.
#[utoipa::path(
    get,
    path = "/api/v1/events",
    tag = "zones",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(EventsQuery),
    responses((status = 200, body = EventPage), BadRequest, AuthErrors)
)]
pub(crate) async fn events(
    State(state): State<AppState>,
    caller: Caller,
    query: Result<Query<EventsQuery>, QueryRejection>,
) -> Result<Json<EventPage>, ApiError> {
    let Query(query) = query?;
    let after = query.after.unwrap_or(0);
    if after < 0 {
        return Err(ApiError::bad_request("after: must be 0 or more"));
    }
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit: must be within 1..{MAX_PAGE}")));
    }
    let store = state.store.clone();
    blocking(move || {
        let events = store.events(caller.user.id, after, limit)?;
        let next = events.last().map_or(after, |e| e.id);
        let events = events.iter().map(|e| document(e).map(EventView::from)).collect::<Result<_, _>>()?;
        Ok(Json(EventPage { events, next }))
    })
    .await
}

/// Payload shapes for common receivers.
#[derive(Debug, Clone, Copy, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum PresetBody {
    /// The event as JSON (what `GET /api/v1/events` shows).
    #[default]
    Json,
    /// ntfy: the message as text, `Title` and `Tags` headers.
    Ntfy,
    /// Gotify: `{title, message, priority}`.
    Gotify,
    /// Discord: `{content}`.
    Discord,
    /// Slack: `{text}`.
    Slack,
}

impl From<PresetBody> for Preset {
    fn from(p: PresetBody) -> Self {
        match p {
            PresetBody::Json => Self::Json,
            PresetBody::Ntfy => Self::Ntfy,
            PresetBody::Gotify => Self::Gotify,
            PresetBody::Discord => Self::Discord,
            PresetBody::Slack => Self::Slack,
        }
    }
}

impl From<Preset> for PresetBody {
    fn from(p: Preset) -> Self {
        match p {
            Preset::Json => Self::Json,
            Preset::Ntfy => Self::Ntfy,
            Preset::Gotify => Self::Gotify,
            Preset::Discord => Self::Discord,
            Preset::Slack => Self::Slack,
        }
    }
}

/// An event kind.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, ToSchema)]
pub(crate) enum EventKindBody {
    /// A device entered a zone.
    #[serde(rename = "zone.enter")]
    ZoneEnter,
    /// A device left a zone.
    #[serde(rename = "zone.leave")]
    ZoneLeave,
    /// A device has been in a zone for the zone's `dwell_alert_s`.
    #[serde(rename = "zone.dwell")]
    ZoneDwell,
    /// A device sent nothing for the silence threshold.
    #[serde(rename = "device.silent")]
    DeviceSilent,
    /// A device's battery fell to the low threshold.
    #[serde(rename = "device.battery_low")]
    BatteryLow,
    /// An OwnTracks app reported entering one of its regions.
    #[serde(rename = "app.enter")]
    AppEnter,
    /// An OwnTracks app reported leaving one of its regions.
    #[serde(rename = "app.leave")]
    AppLeave,
    /// The timeline found a new visit (live data only).
    #[serde(rename = "visit.start")]
    VisitStart,
    /// A visit ended (live data only).
    #[serde(rename = "visit.end")]
    VisitEnd,
    /// A trip started where a visit ended (live data only).
    #[serde(rename = "trip.start")]
    TripStart,
    /// A trip ended at a new visit (live data only).
    #[serde(rename = "trip.end")]
    TripEnd,
    /// A friend came within your enter distance of one of your devices.
    #[serde(rename = "friend.nearby")]
    FriendNearby,
    /// A friend who was nearby is beyond your leave distance again.
    #[serde(rename = "friend.away")]
    FriendAway,
}

impl EventKindBody {
    fn name(self) -> &'static str {
        match self {
            Self::ZoneEnter => "zone.enter",
            Self::ZoneLeave => "zone.leave",
            Self::ZoneDwell => "zone.dwell",
            Self::DeviceSilent => "device.silent",
            Self::BatteryLow => "device.battery_low",
            Self::AppEnter => "app.enter",
            Self::AppLeave => "app.leave",
            Self::VisitStart => "visit.start",
            Self::VisitEnd => "visit.end",
            Self::TripStart => "trip.start",
            Self::TripEnd => "trip.end",
            Self::FriendNearby => "friend.nearby",
            Self::FriendAway => "friend.away",
        }
    }
}

/// A webhook subscription as you send it.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookBody {
    /// Where events are POSTed: an `http://` or `https://` URL.
    #[schema(max_length = 2000)]
    url: String,
    #[serde(default)]
    preset: PresetBody,
    /// Only these event kinds; empty or absent: all.
    #[serde(default)]
    kinds: Vec<EventKindBody>,
    /// Only events of these zones (device events always pass); empty or absent: all.
    #[serde(default)]
    zones: Vec<i64>,
}

/// A webhook subscription.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookView {
    id: i64,
    url: String,
    preset: PresetBody,
    kinds: Vec<String>,
    zones: Vec<i64>,
    /// Made, ms since the epoch.
    created_ms: i64,
    /// `false` while switched off (`PATCH`): no delivery is queued for it.
    enabled: bool,
}

/// A new subscription with its signing secret, shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct NewWebhookView {
    #[serde(flatten)]
    webhook: WebhookView,
    /// The HMAC-SHA256 key of `X-Polo-Signature: sha256=<hex of HMAC(secret, body)>`.
    secret: String,
}

/// Your subscriptions.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookList {
    webhooks: Vec<WebhookView>,
}

fn webhook_view(row: &polo_store::WebhookRow) -> Result<WebhookView, ApiError> {
    let spec: SubscriptionSpec = serde_json::from_str(&row.body)
        .map_err(|e| ApiError::internal(format!("stored webhook {} does not decode: {e}", row.id)))?;
    Ok(WebhookView {
        id: row.id,
        url: spec.url,
        preset: spec.preset.into(),
        kinds: spec.kinds,
        zones: spec.zones,
        created_ms: row.created.0,
        enabled: !spec.disabled,
    })
}

/// Your webhook subscriptions.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks",
    tag = "zones",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses((status = 200, body = WebhookList), AuthErrors)
)]
pub(crate) async fn list_webhooks(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Json<WebhookList>, ApiError> {
    let store = state.store.clone();
    blocking(move || {
        let webhooks = store.webhooks(Some(caller.user.id))?.iter().map(webhook_view).collect::<Result<_, _>>()?;
        Ok(Json(WebhookList { webhooks }))
    })
    .await
}

/// Subscribes a URL to your events. Each event is POSTed once per subscription, in order, with
/// `Idempotency-Key` (the same on every retry) and `X-Polo-Signature`; failures are retried with
/// exponential back-off until the last attempt, then dead-lettered (see the delivery log).
#[utoipa::path(
    post,
    path = "/api/v1/webhooks",
    tag = "zones",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    request_body = WebhookBody,
    responses((status = 201, body = NewWebhookView), BadRequest, JsonBodyErrors, CsrfFailed, AuthErrors)
)]
pub(crate) async fn create_webhook(
    State(state): State<AppState>,
    caller: Caller,
    body: Result<Json<WebhookBody>, JsonRejection>,
) -> Result<(StatusCode, Json<NewWebhookView>), ApiError> {
    let Json(body) = body?;
    let kinds = body.kinds.iter().map(|k| k.name().to_owned()).collect();
    let spec =
        SubscriptionSpec { url: body.url, preset: body.preset.into(), kinds, zones: body.zones, disabled: false };
    spec.validate().map_err(ApiError::bad_request)?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        if store.webhooks(Some(user))?.len() >= MAX_WEBHOOKS_PER_USER {
            return Err(ApiError::bad_request(format!(
                "you have {MAX_WEBHOOKS_PER_USER} webhook subscriptions, the most there may be"
            )));
        }
        let secret = polo_store::clock::new_random_id();
        let body = serde_json::to_string(&spec).expect("a subscription serialises");
        let id = store.create_webhook(user, &body, &secret, now())?;
        let row = store
            .webhooks(Some(user))?
            .into_iter()
            .find(|w| w.id == id)
            .ok_or_else(|| ApiError::internal("the new subscription is gone"))?;
        Ok((StatusCode::CREATED, Json(NewWebhookView { webhook: webhook_view(&row)?, secret })))
    })
    .await
}

/// Deletes a subscription with its pending deliveries and its delivery log.
#[utoipa::path(
    delete,
    path = "/api/v1/webhooks/{id}",
    tag = "zones",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The subscription's id")),
    responses((status = 204, description = "Deleted"), BadRequest, NotFound, CsrfFailed, AuthErrors)
)]
pub(crate) async fn delete_webhook(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
) -> Result<StatusCode, ApiError> {
    let Path(id) = id?;
    let store = state.store.clone();
    blocking(move || {
        if !store.delete_webhook(caller.user.id, id)? {
            return Err(ApiError::not_found(format!("webhook {id}")));
        }
        Ok(StatusCode::NO_CONTENT)
    })
    .await
}

/// What to change of a subscription.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookPatch {
    /// `false` switches the subscription off: nothing new is queued for it, and its pending deliveries
    /// are dropped (they end `dead` in the delivery log, unsent). `true` switches it on again for the
    /// events logged from then on.
    enabled: bool,
}

/// Switches a subscription off or on. A disabled subscription queues nothing new, and disabling it
/// drops its pending deliveries (each ends `dead` with `last_error` "dropped: the webhook was
/// disabled"); enabling it again sends the events logged after that, never the ones missed.
#[utoipa::path(
    patch,
    path = "/api/v1/webhooks/{id}",
    tag = "zones",
    security(("session" = [], "csrf" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The subscription's id")),
    request_body = WebhookPatch,
    responses((status = 200, body = WebhookView), BadRequest, NotFound, JsonBodyErrors, CsrfFailed, AuthErrors)
)]
pub(crate) async fn patch_webhook(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    body: Result<Json<WebhookPatch>, JsonRejection>,
) -> Result<Json<WebhookView>, ApiError> {
    let Path(id) = id?;
    let Json(patch) = body?;
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        let not_found = || ApiError::not_found(format!("webhook {id}"));
        let row = store.webhooks(Some(user))?.into_iter().find(|w| w.id == id).ok_or_else(not_found)?;
        let mut spec: SubscriptionSpec = serde_json::from_str(&row.body)
            .map_err(|e| ApiError::internal(format!("stored webhook {id} does not decode: {e}")))?;
        spec.disabled = !patch.enabled;
        let body = serde_json::to_string(&spec).expect("a subscription serialises");
        let drop = spec.disabled.then_some(super::deliver::DROPPED);
        if !store.update_webhook(user, id, &body, drop, now())? {
            return Err(not_found());
        }
        let row = store.webhooks(Some(user))?.into_iter().find(|w| w.id == id).ok_or_else(not_found)?;
        Ok(Json(webhook_view(&row)?))
    })
    .await
}

/// Which deliveries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct DeliveriesQuery {
    /// Only deliveries with a smaller id (the page before).
    before: Option<i64>,
    /// At most this many (1 to 1000; default 100).
    #[param(minimum = 1, maximum = 1000)]
    limit: Option<usize>,
}

/// One delivery of an event to a subscription.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryView {
    id: i64,
    /// The event's id in the log.
    event: i64,
    /// Sent as `Idempotency-Key`, the same on every attempt.
    idempotency_key: String,
    /// `pending`, `delivered` or `dead` (given up).
    status: String,
    attempts: u32,
    /// Pending: when the next attempt is due; otherwise when it finished (ms since the epoch).
    next_attempt_ms: i64,
    /// The last answer's HTTP status, if one came.
    last_status: Option<u16>,
    /// Why the last attempt failed.
    last_error: Option<String>,
    updated_ms: i64,
}

/// A page of a subscription's deliveries, newest first.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryPage {
    deliveries: Vec<DeliveryView>,
}

/// The delivery log of one of your subscriptions, newest first.
#[utoipa::path(
    get,
    path = "/api/v1/webhooks/{id}/deliveries",
    tag = "zones",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(("id" = i64, Path, description = "The subscription's id"), DeliveriesQuery),
    responses((status = 200, body = DeliveryPage), BadRequest, NotFound, AuthErrors)
)]
pub(crate) async fn deliveries(
    State(state): State<AppState>,
    caller: Caller,
    id: Result<Path<i64>, PathRejection>,
    query: Result<Query<DeliveriesQuery>, QueryRejection>,
) -> Result<Json<DeliveryPage>, ApiError> {
    let Path(id) = id?;
    let Query(query) = query?;
    let limit = query.limit.unwrap_or(100);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(format!("limit: must be within 1..{MAX_PAGE}")));
    }
    let (store, user) = (state.store.clone(), caller.user.id);
    blocking(move || {
        if !store.webhooks(Some(user))?.iter().any(|w| w.id == id) {
            return Err(ApiError::not_found(format!("webhook {id}")));
        }
        let deliveries = store
            .deliveries(user, id, query.before, limit)?
            .into_iter()
            .map(|d| DeliveryView {
                id: d.id,
                event: d.event,
                idempotency_key: d.key,
                status: d.status.name().to_owned(),
                attempts: d.attempts,
                next_attempt_ms: d.next_attempt.0,
                last_status: d.last_status,
                last_error: d.last_error,
                updated_ms: d.updated.0,
            })
            .collect();
        Ok(Json(DeliveryPage { deliveries }))
    })
    .await
}

pub(crate) fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new()
        .routes(routes!(list_zones, create_zone))
        .routes(routes!(get_zone, put_zone, delete_zone))
        .routes(routes!(events))
        .routes(routes!(crate::stream::stream))
        .routes(routes!(list_webhooks, create_webhook))
        .routes(routes!(delete_webhook, patch_webhook))
        .routes(routes!(deliveries))
        .routes(routes!(super::nearby::get_nearby, super::nearby::put_nearby))
}
