//! `GET /api/v1/stream`: what happens to you, pushed — your event log and
//! live positions in one stream, as Server-Sent Events or, on the same
//! route, over a WebSocket when the client asks for the upgrade.
//!
//! Why one route with two transports: `EventSource` is the simplest client
//! (it reconnects and resumes by itself), but browsers cannot set headers on
//! it or on a WebSocket, and some clients (apps, home automation) only speak
//! WebSocket. So both carry the same [`StreamMessage`]s — the SSE fields
//! `event`, `id` and `data`, or one JSON text frame with those three keys —
//! both take a device token as `?token=` ([`crate::auth::StreamCaller`]),
//! and both resume from the log: `Last-Event-ID` (SSE) or `?after=` (either).
//!
//! * **Events** come from the durable log ([`events`]): each carries its log
//!   id, so a client that reconnects with the last id it saw gets exactly
//!   what it missed, in order.
//! * **Positions** come from the live feed ([`crate::sharing::stream`]):
//!   first the newest known position of every device in scope, then each
//!   newer one as it is stored. They have no id (the next position
//!   supersedes a missed one), so they never move a client's resume point.
//! * **Scope** ([`scope`]): `devices`, `friends` and `kinds` narrow what the
//!   caller may see; a scoped subscription never receives anything outside
//!   it, and a bad value is a 400 naming it, before any upgrade.
//!
//! A stream ends when the server shuts down (a WebSocket with close code
//! 1001): clients reconnect and resume.

mod events;
pub mod scope;
mod ws;

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt as _;
use futures_util::stream::BoxStream;
use polo_store::User;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use self::scope::{POSITION, Scope, ScopeLists};
use crate::AppState;
use crate::auth::StreamCaller;
use crate::error::{ApiError, AuthErrors, BadRequest, ErrorBody};
use crate::query::derived::blocking;
use crate::sharing::stream::{Audience, KEEP_ALIVE, Live, PositionEvent, positions};
use crate::zones::routes::EventView;

/// Where the stream starts, what it carries, and who asks.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamQuery {
    /// Start after this event id (a `Last-Event-ID` header wins); absent: only new events.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Only these kinds, comma-separated: `position` and event kinds (`position,zone.enter`); absent:
    /// all, positions included.
    kinds: Option<String>,
    /// Only these of your devices, comma-separated ids or names (their positions and events);
    /// absent: all, empty: none.
    devices: Option<String>,
    /// Only these friends, users who share their location with you, comma-separated names (their
    /// positions, and `friend.*` events about them); absent: all, empty: none.
    friends: Option<String>,
    /// A device token with the `read` scope, for clients that cannot send headers (a browser's
    /// WebSocket or `EventSource`).
    #[expect(dead_code, reason = "`StreamCaller` reads it from the URL; named here for the document")]
    token: Option<String>,
}

/// One message of the stream. Over SSE its three fields are the event's `event:`, `id:` and
/// `data:` lines; over a WebSocket it is one JSON text frame.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub(crate) struct StreamMessage {
    /// `position`, or the event's kind (`zone.enter`, …).
    #[schema(example = "zone.enter")]
    event: String,
    /// The event's id in the log, to resume from (`Last-Event-ID`, `?after=`); absent for positions.
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<i64>,
    data: StreamData,
}

/// A position (as `GET /api/v1/live` streams it) or an event (as `GET /api/v1/events` lists it).
#[derive(Debug, Clone, Serialize, ToSchema)]
#[serde(untagged)]
pub(crate) enum StreamData {
    /// `event: position`.
    Position(PositionEvent),
    /// Any other `event`.
    Event(EventView),
}

impl StreamMessage {
    fn into_sse(self) -> Event {
        let event = Event::default().event(&self.event);
        let event = match self.id {
            Some(id) => event.id(id.to_string()),
            None => event,
        };
        event.json_data(&self.data).unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot encode a stream message");
            Event::default().comment("a message could not be encoded")
        })
    }

    fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a stream message serialises")
    }
}

/// Everything `viewer`'s subscription carries: events after `after` and
/// positions, as `scope` narrows them, until the server shuts down.
async fn messages(
    state: AppState,
    viewer: User,
    after: i64,
    scope: Arc<Scope>,
) -> Result<BoxStream<'static, StreamMessage>, ApiError> {
    let log = events::events(state.clone(), viewer.id, after, scope.clone()).boxed();
    let merged = if scope.wants_kind(POSITION) {
        let live = positions(state.clone(), Audience::Viewer(viewer, scope)).await?;
        let live = live.filter_map(|live| async move {
            match live {
                Live::Position(position) => {
                    Some(StreamMessage { event: POSITION.to_owned(), id: None, data: StreamData::Position(position) })
                }
                Live::Exposure => None,
            }
        });
        futures_util::stream::select(log, live).boxed()
    } else {
        log
    };
    let mut closing = state.live.closing();
    let closed = async move {
        let _ = closing.wait_for(|closing| *closing).await;
    };
    Ok(merged.take_until(closed).boxed())
}

fn last_event_id(headers: &HeaderMap) -> Result<Option<i64>, ApiError> {
    let Some(value) = headers.get("last-event-id") else { return Ok(None) };
    let id = value.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()).filter(|id| *id >= 0);
    id.map(Some).ok_or_else(|| ApiError::bad_request("Last-Event-ID: must be an event id (a whole number, 0 or more)"))
}

fn asks_for_websocket(headers: &HeaderMap) -> bool {
    headers.get(header::UPGRADE).and_then(|v| v.to_str().ok()).is_some_and(|v| v.eq_ignore_ascii_case("websocket"))
}

/// Your events and live positions: Server-Sent Events, or a WebSocket when the request asks for
/// the upgrade (`Upgrade: websocket`). Each message is `{event, id, data}`: `event` is `position`
/// or the event's kind, `id` the event's log id (positions have none), `data` the position (as
/// `GET /api/v1/live` gives it) or the event (as `GET /api/v1/events` gives it); over SSE these
/// are the `event:`, `id:` and `data:` fields, over a WebSocket one JSON text frame. Positions
/// start with the newest known one of each device in scope. Reconnect with `Last-Event-ID` or
/// `?after=` to get exactly the events you missed, in order; without either the events start with
/// the next new one. `kinds`, `devices` and `friends` narrow the stream; a value that is not
/// yours to ask for is a 400 naming it. WebSocket and `EventSource` clients may authenticate with
/// `?token=` (a device token with the `read` scope).
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "zones",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(StreamQuery, ("Last-Event-ID" = Option<i64>, Header, description = "The last event id received")),
    responses(
        (status = 200, description = "An event stream of positions and the event log's events",
            content((StreamMessage = "text/event-stream"))),
        (status = 101, description = "Switched to a WebSocket (the request asked for it): one JSON text \
            frame per message", body = StreamMessage),
        (status = 403, description = "`forbidden`: a WebSocket opened with a session cookie from another \
            origin, or a device token without the `read` scope", body = ErrorBody),
        BadRequest,
        AuthErrors,
    )
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    StreamCaller(caller): StreamCaller,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, ApiError> {
    let Query(query) = query?;
    let websocket = asks_for_websocket(&headers);
    let upgrade = match (websocket, upgrade) {
        (false, _) => None,
        (true, Ok(upgrade)) => Some(upgrade),
        (true, Err(rejection)) => return Err(ApiError::bad_request(format!("WebSocket: {}", rejection.body_text()))),
    };
    if websocket && caller.session_hash().is_some() {
        ws::check_origin(&headers)?;
    }
    let resume = last_event_id(&headers)?;
    if query.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_request("after: must be 0 or more"));
    }
    let (store, viewer) = (state.store.clone(), caller.user.clone());
    let start = resume.or(query.after);
    let (scope, after) = blocking(move || {
        let lists = ScopeLists {
            devices: query.devices.as_deref(),
            friends: query.friends.as_deref(),
            kinds: query.kinds.as_deref(),
        };
        let scope = Scope::resolve(store.as_ref(), &viewer, lists)?;
        let after = match start {
            Some(after) => after,
            None => events::end_of_log(store.as_ref(), viewer.id)?,
        };
        Ok((scope, after))
    })
    .await?;
    let messages = messages(state, caller.user, after, Arc::new(scope)).await?;
    match upgrade {
        Some(upgrade) => Ok(upgrade.on_upgrade(move |socket| ws::pump(socket, messages)).into_response()),
        None => {
            let events = messages.map(|message| Ok::<_, Infallible>(message.into_sse()));
            Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)).into_response())
        }
    }
}
