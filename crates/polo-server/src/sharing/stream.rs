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

use std::collections::{HashMap, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use polo_domain::{DeviceId, Fix, Timestamp, UserId};
use polo_store::{Share, User};
use serde::Serialize;
use tokio::sync::broadcast::error::RecvError;
use utoipa::ToSchema;

use super::public::RECHECK;
use super::{blocking, now, visible_users};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors};
use crate::live::LiveEvent;

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

/// Who a stream is for, which decides what it may show.
#[derive(Clone)]
pub(crate) enum Audience {
    /// A logged-in user: their devices and those of users who granted them.
    Viewer(User),
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
    queue: VecDeque<Event>,
    receiver: tokio::sync::broadcast::Receiver<LiveEvent>,
    /// Becomes `true` when the server shuts down.
    closing: tokio::sync::watch::Receiver<bool>,
    done: bool,
}

/// Reads who is shown, with their devices; blocking.
fn load_shown(state: &AppState, audience: &Audience) -> Result<HashMap<UserId, Shown>, ApiError> {
    let users: Vec<(User, Option<DeviceId>)> = match audience {
        Audience::Viewer(viewer) => {
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
            Audience::Viewer(_) => (None, None),
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
        let Some(name) = entry.devices.get(&device) else { return false };
        if self.latest.get(&device).is_some_and(|&known| known >= fix.time) {
            return true;
        }
        self.latest.insert(device, fix.time);
        let data = PositionEvent {
            user: (!self.is_public()).then(|| entry.name.clone()),
            device: name.clone(),
            lat: fix.coord.lat(),
            lon: fix.coord.lon(),
            time: fix.time.to_string(),
            accuracy: fix.horizontal_accuracy_m(),
            battery: fix.battery_percent,
            speed: fix.speed_m_s(),
        };
        match Event::default().event("position").json_data(&data) {
            Ok(event) => self.queue.push_back(event),
            Err(e) => tracing::error!(error = %e, "cannot encode a live position"),
        }
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
                if matches!(&self.audience, Audience::Viewer(viewer) if viewer.id == user) {
                    self.queue.push_back(Event::default().event("exposure").data("{\"changed\":true}"));
                }
            }
        }
    }

    /// The next event to send, or `None` when the stream ends.
    async fn next(&mut self) -> Option<Event> {
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

/// The stream of `position` events for `audience`.
pub(crate) async fn position_stream(
    state: AppState,
    audience: Audience,
) -> Result<impl Stream<Item = Result<Event, Infallible>>, ApiError> {
    // Subscribe first: a point stored while the current positions are read is then still seen.
    let receiver = state.live.subscribe();
    let closing = state.live.closing();
    let (loader, shown_for) = (state.clone(), audience.clone());
    let from = match &audience {
        Audience::Viewer(_) => None,
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
        let event = streamer.next().await?;
        Some((Ok(event), streamer))
    }))
}

/// Live positions of the caller's devices and of the users who granted the caller theirs:
/// Server-Sent Events. First the latest known position of each device, then an
/// `event: position` whenever a newer point is stored (`{"user","device","lat","lon","time",
/// "accuracy","battery","speed"}`); comments keep the connection alive.
#[utoipa::path(
    get,
    path = "/api/v1/live",
    tag = "sharing",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    responses(
        (status = 200, description = "An event stream of `position` events",
            content((PositionEvent = "text/event-stream"))),
        AuthErrors,
    )
)]
pub(crate) async fn live(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let events = position_stream(state, Audience::Viewer(caller.user)).await?;
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
