//! Live positions as Server-Sent Events: `GET /api/v1/live` for a logged-in
//! user (their own devices and the users who granted them their location),
//! and a live share's `…/live` for anyone with the link.
//!
//! A stream subscribes to the [`crate::live::LiveFeed`] *before* it reads
//! the current positions, so no point stored in between is missed; it then
//! sends the latest known position of every device it may show, and after
//! that every newer one as live ingest stores it (an older point, e.g. a
//! backfill, never moves the marker back). Grants are re-read when anyone
//! changes theirs, so a withdrawn grant stops the positions at once; a
//! share's stream re-checks its link every [`RECHECK`] and ends when it is
//! revoked or expires.
//!
//! The same streamer gives `GET /api/v1/stream` its positions, narrowed to
//! a [`Scope`] (the caller's devices and friends it names), and answers
//! `GET /api/v1/live` without `Accept: text/event-stream`: the current
//! position of every device the caller may see, as JSON, from the per-node
//! memory of newest fixes ([`crate::ingest::LastSeen`]), which live ingest
//! and the feed from the other nodes keep current. A device is read from the
//! store once after a start, when first asked for; device lists and grants
//! are remembered too and forgotten when a grant changes, so a withdrawn
//! grant is gone from the next answer.

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::Stream;
use polo_domain::{DeviceId, Fix, Timestamp, UserId};
use polo_store::{Share, User};
use serde::{Deserialize, Serialize};
use tokio::sync::broadcast::error::RecvError;
use utoipa::{IntoParams, ToSchema};

use super::public::RECHECK;
use super::{blocking, now, visible_users};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest};
use crate::live::LiveEvent;
use crate::stream::scope::{Scope, ScopeLists};

/// How often a comment keeps idle streams (and the proxies between) open.
pub(crate) const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// The data of an `event: position`.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct PositionEvent {
    /// Whose device (`GET /api/v1/live` only; a share has one owner).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "alice")]
    user: Option<String>,
    /// The device's name.
    #[schema(example = "phone")]
    device: String,
    /// Latitude in degrees.
    #[schema(example = 47.3769)]
    lat: f64,
    /// Longitude in degrees.
    #[schema(example = 8.5417)]
    lon: f64,
    /// The fix's time (RFC 3339, UTC).
    #[schema(example = "2024-05-01T12:00:00Z")]
    time: String,
    /// Horizontal accuracy in metres.
    accuracy: Option<f64>,
    /// Battery level in percent.
    battery: Option<u8>,
    /// Speed in m/s.
    speed: Option<f64>,
}

impl PositionEvent {
    fn new(user: Option<String>, device: String, fix: &Fix) -> Self {
        Self {
            user,
            device,
            lat: fix.coord.lat(),
            lon: fix.coord.lon(),
            time: fix.time.to_string(),
            accuracy: fix.horizontal_accuracy_m(),
            battery: fix.battery_percent,
            speed: fix.speed_m_s(),
        }
    }
}

/// What a position stream yields.
#[derive(Debug, Clone)]
pub(crate) enum Live {
    /// A device's new newest position.
    Position(PositionEvent),
    /// The viewer's own exposure status changed.
    Exposure,
}

impl Live {
    /// As a Server-Sent Event of `GET /api/v1/live` or a share's `…/live`.
    fn into_event(self) -> Event {
        match self {
            Self::Position(data) => Event::default().event("position").json_data(&data).unwrap_or_else(|e| {
                tracing::error!(error = %e, "cannot encode a live position");
                Event::default().comment("a position could not be encoded")
            }),
            Self::Exposure => Event::default().event("exposure").data("{\"changed\":true}"),
        }
    }
}

/// Who a stream is for, which decides what it may show.
#[derive(Clone)]
pub(crate) enum Audience {
    /// A logged-in user: their devices and those of users who granted them,
    /// narrowed to a scope.
    Viewer(User, Arc<Scope>),
    /// Anyone with a live share's link: the owner's shared device(s), from `from` on.
    Share {
        /// The share (boxed: it is much larger than the viewer variant).
        share: Box<Share>,
        /// Its owner.
        owner: User,
        /// The earliest position shown.
        from: Timestamp,
        /// The link's hash, to re-check it.
        hash: [u8; 32],
    },
}

/// A user whose positions the stream shows.
struct Shown {
    name: String,
    /// Device names.
    devices: HashMap<DeviceId, String>,
    /// Only this device (a share of one device).
    only: Option<DeviceId>,
}

struct Streamer {
    state: AppState,
    audience: Audience,
    shown: HashMap<UserId, Shown>,
    latest: HashMap<DeviceId, Timestamp>,
    queue: VecDeque<Live>,
    receiver: tokio::sync::broadcast::Receiver<LiveEvent>,
    /// Becomes `true` when the server shuts down.
    closing: tokio::sync::watch::Receiver<bool>,
    done: bool,
}

/// Reads who is shown, with their devices; blocking.
fn load_shown(state: &AppState, audience: &Audience) -> Result<HashMap<UserId, Shown>, ApiError> {
    let users: Vec<(User, Option<DeviceId>)> = match audience {
        Audience::Viewer(viewer, _) => {
            visible_users(state.store.as_ref(), viewer)?.into_iter().map(|user| (user, None)).collect()
        }
        Audience::Share { share, owner, .. } => vec![(owner.clone(), share.spec.device)],
    };
    let mut shown = HashMap::new();
    for (user, only) in users {
        let devices = state.store.list_devices(user.id)?.into_iter().map(|d| (d.id, d.name)).collect();
        shown.insert(user.id, Shown { name: user.name, devices, only });
    }
    Ok(shown)
}

/// The latest fixes of the shown devices (those from `from` on); blocking.
fn current_positions(
    state: &AppState,
    shown: &HashMap<UserId, Shown>,
    users: &[UserId],
    from: Option<Timestamp>,
) -> Result<Vec<(UserId, DeviceId, Fix)>, ApiError> {
    let mut out = Vec::new();
    for user in users {
        let Some(entry) = shown.get(user) else { continue };
        for device in entry.devices.keys() {
            if entry.only.is_some_and(|only| only != *device) {
                continue;
            }
            if let Some(fix) = state.last_seen.get(state.store.as_ref(), *user, *device)?
                && from.is_none_or(|from| fix.time >= from)
            {
                out.push((*user, *device, fix));
            }
        }
    }
    out.sort_by_key(|(_, _, fix)| fix.time);
    Ok(out)
}

impl Drop for Streamer {
    fn drop(&mut self) {
        self.state.metrics.live_stream_closed();
    }
}

impl Streamer {
    fn is_public(&self) -> bool {
        matches!(self.audience, Audience::Share { .. })
    }

    fn window(&self) -> (Option<Timestamp>, Option<Timestamp>) {
        match &self.audience {
            Audience::Viewer(..) => (None, None),
            Audience::Share { share, from, .. } => (Some(*from), share.spec.expires),
        }
    }

    /// Queues the event of a fix if it is newer than what was sent for its device.
    fn offer(&mut self, user: UserId, device: DeviceId, fix: &Fix) -> bool {
        let (from, until) = self.window();
        if from.is_some_and(|f| fix.time < f) || until.is_some_and(|u| fix.time >= u) {
            return true;
        }
        let Some(entry) = self.shown.get(&user) else { return true };
        if entry.only.is_some_and(|only| only != device) {
            return true;
        }
        if let Audience::Viewer(viewer, scope) = &self.audience
            && !scope.shows_position(viewer.id, user, device)
        {
            return true;
        }
        let Some(name) = entry.devices.get(&device) else { return false };
        if self.latest.get(&device).is_some_and(|&known| known >= fix.time) {
            return true;
        }
        self.latest.insert(device, fix.time);
        let user = (!self.is_public()).then(|| entry.name.clone());
        self.queue.push_back(Live::Position(PositionEvent::new(user, name.clone(), fix)));
        true
    }

    /// Re-reads who is shown and queues the positions of users newly shown.
    async fn reload(&mut self) -> Result<(), ApiError> {
        let (state, audience) = (self.state.clone(), self.audience.clone());
        let before: Vec<UserId> = self.shown.keys().copied().collect();
        let from = self.window().0;
        let (shown, fresh) = blocking(move || {
            let shown = load_shown(&state, &audience)?;
            let added: Vec<UserId> = shown.keys().filter(|u| !before.contains(u)).copied().collect();
            let fresh = current_positions(&state, &shown, &added, from)?;
            Ok((shown, fresh))
        })
        .await?;
        self.shown = shown;
        for (user, device, fix) in fresh {
            self.offer(user, device, &fix);
        }
        Ok(())
    }

    /// Whether the share behind a public stream still works.
    async fn share_still_works(&self) -> bool {
        let Audience::Share { hash, .. } = &self.audience else { return true };
        let (store, hash) = (self.state.store.clone(), *hash);
        matches!(blocking(move || Ok(store.share_by_hash(&hash, now())?)).await, Ok(Some(_)))
    }

    /// Handles one feed event.
    async fn handle(&mut self, event: LiveEvent) {
        match event {
            LiveEvent::Position { user, device, fix } => {
                if !self.offer(user, device, &fix) {
                    // A device created after the stream started: read the names again.
                    if self.reload().await.is_ok() {
                        self.offer(user, device, &fix);
                    }
                }
            }
            LiveEvent::GrantsChanged { .. } if !self.is_public() => {
                if let Err(e) = self.reload().await {
                    tracing::warn!(error = %e, "live stream could not re-read grants; ending it");
                    self.done = true;
                }
            }
            LiveEvent::GrantsChanged { .. } => {}
            LiveEvent::ExposureChanged { user } => {
                // Only the user themself hears of their status, never a viewer of theirs.
                if matches!(&self.audience, Audience::Viewer(viewer, _) if viewer.id == user) {
                    self.queue.push_back(Live::Exposure);
                }
            }
        }
    }

    /// The next event to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Live> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some(event);
            }
            if self.done {
                return None;
            }
            let expires = self.window().1;
            let until_expiry = expires.map(|e| Duration::from_millis(u64::try_from(e.0 - now().0).unwrap_or(0)));
            // Public streams wake to re-check their link; a viewer's only for events.
            let wake = until_expiry.unwrap_or(RECHECK).min(RECHECK);
            let public = self.is_public();
            let received = tokio::select! {
                received = self.receiver.recv() => Some(received),
                _ = self.closing.wait_for(|closing| *closing) => return None,
                () = tokio::time::sleep(wake), if public => None,
            };
            match received {
                Some(Ok(event)) => self.handle(event).await,
                Some(Err(RecvError::Lagged(skipped))) => {
                    tracing::debug!(skipped, "live stream fell behind; skipped positions");
                }
                Some(Err(RecvError::Closed)) => return None,
                None => {
                    if expires.is_some_and(|e| e <= now()) || !self.share_still_works().await {
                        return None;
                    }
                }
            }
        }
    }
}

/// The stream of `position` events for `audience`, as Server-Sent Events.
pub(crate) async fn position_stream(
    state: AppState,
    audience: Audience,
) -> Result<impl Stream<Item = Result<Event, Infallible>>, ApiError> {
    use futures_util::StreamExt as _;
    Ok(positions(state, audience).await?.map(|live| Ok(live.into_event())))
}

/// The positions (and exposure notices) `audience` may see: the current
/// ones first, then each newer one as it is stored, until shutdown.
pub(crate) async fn positions(state: AppState, audience: Audience) -> Result<impl Stream<Item = Live>, ApiError> {
    // Subscribe first: a point stored while the current positions are read is then still seen.
    let receiver = state.live.subscribe();
    let closing = state.live.closing();
    let (loader, shown_for) = (state.clone(), audience.clone());
    let from = match &audience {
        Audience::Viewer(..) => None,
        Audience::Share { from, .. } => Some(*from),
    };
    let (shown, current) = blocking(move || {
        let shown = load_shown(&loader, &shown_for)?;
        let users: Vec<UserId> = shown.keys().copied().collect();
        let current = current_positions(&loader, &shown, &users, from)?;
        Ok((shown, current))
    })
    .await?;
    state.metrics.live_stream_opened();
    let mut streamer = Streamer {
        state,
        audience,
        shown,
        latest: HashMap::new(),
        queue: VecDeque::new(),
        receiver,
        closing,
        done: false,
    };
    for (user, device, fix) in current {
        streamer.offer(user, device, &fix);
    }
    Ok(futures_util::stream::unfold(streamer, |mut streamer| async move {
        let live = streamer.next().await?;
        Some((live, streamer))
    }))
}

/// Which devices and friends `GET /api/v1/live` shows.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct LiveQuery {
    /// Only these of your devices, comma-separated ids or names; absent: all, empty: none.
    devices: Option<String>,
    /// Only these friends (users who share their location with you), comma-separated names;
    /// absent: all, empty: none.
    friends: Option<String>,
}

/// Where every device the caller may see is now.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct LiveNow {
    /// The newest position of each device with one, newest first: the caller's own (`user` is
    /// the caller) and those of the users who let the caller see their location.
    positions: Vec<PositionEvent>,
}

/// The newest known position of every device `viewer` may see in `scope`,
/// from memory (the store is read for a device only the first time it is
/// asked for after a start); blocking.
fn positions_now(state: &AppState, viewer: &User, scope: &Scope) -> Result<Vec<(Timestamp, PositionEvent)>, ApiError> {
    let store = state.store.as_ref();
    let granters = state.last_seen.granters(store, viewer.id)?;
    let users = std::iter::once((viewer.id, viewer.name.clone())).chain(granters.iter().cloned());
    let mut out = Vec::new();
    for (user, name) in users {
        for device in state.last_seen.devices(store, user)?.iter() {
            if !scope.shows_position(viewer.id, user, device.id) {
                continue;
            }
            if let Some(fix) = state.last_seen.get(store, user, device.id)? {
                out.push((fix.time, PositionEvent::new(Some(name.clone()), device.name.clone(), &fix)));
            }
        }
    }
    out.sort_by_key(|(time, _)| std::cmp::Reverse(*time));
    Ok(out)
}

/// Where your devices and your friends' are now. With `Accept: text/event-stream`, Server-Sent
/// Events: first the latest known position of each device, then an `event: position` whenever a
/// newer point is stored (`{"user","device","lat","lon","time","accuracy","battery","speed"}`);
/// comments keep the connection alive. Otherwise one JSON answer with the newest position of each
/// device, answered from the server's memory of newest fixes (no scan of the store). Both show
/// your own devices and those of every user who lets you see their location; a withdrawn grant is
/// gone at once. `devices` and `friends` narrow it (a value that is not yours to ask for is a 400
/// naming it).
#[utoipa::path(
    get,
    path = "/api/v1/live",
    tag = "sharing",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(LiveQuery),
    responses(
        (status = 200, description = "The newest position of each device (JSON), or an event stream of \
            `position` events (with `Accept: text/event-stream`)",
            content((LiveNow = "application/json"), (PositionEvent = "text/event-stream"))),
        BadRequest,
        AuthErrors,
    )
)]
pub(crate) async fn live(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<LiveQuery>, QueryRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let (store, viewer) = (state.store.clone(), caller.user.clone());
    let scope = blocking(move || {
        let lists = ScopeLists { devices: query.devices.as_deref(), friends: query.friends.as_deref(), kinds: None };
        Scope::resolve(store.as_ref(), &viewer, lists)
    })
    .await?;
    if wants_event_stream(&headers) {
        let events = position_stream(state, Audience::Viewer(caller.user, Arc::new(scope))).await?;
        return Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response());
    }
    let viewer = caller.user;
    let positions = blocking(move || positions_now(&state, &viewer, &scope)).await?;
    let positions = positions.into_iter().map(|(_, position)| position).collect();
    Ok(Json(LiveNow { positions }).into_response())
}

/// Whether the request asks for Server-Sent Events (`EventSource` always does).
pub(crate) fn wants_event_stream(headers: &HeaderMap) -> bool {
    headers
        .get_all(header::ACCEPT)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|item| item.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("text/event-stream")))
}
