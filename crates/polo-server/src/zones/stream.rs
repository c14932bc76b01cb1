//! `GET /api/v1/stream`: your event log as Server-Sent Events, resumable.
//!
//! Each event is sent with its log id as the SSE `id`, so a client that lost
//! the connection reconnects with `Last-Event-ID` (browsers' `EventSource`
//! does it by itself) and gets exactly what it missed, in order: the log is
//! durable, and the stream is a cursor over it. `?after=ID` starts from an
//! offset instead; with neither, the stream starts at the end of the log.
//! `?kinds=` limits it to some event kinds.
//!
//! The stream polls the store every [`POLL`] while it has nothing to send;
//! events are derived by the zone worker a reorder window after their
//! points, so the poll adds little to their delay.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::time::Duration;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use futures_util::Stream;
use polo_domain::UserId;
use polo_zones::evaluate::EventKind;
use serde::Deserialize;
use utoipa::IntoParams;

use super::routes::{EventView, document};
use crate::AppState;
use crate::auth::Caller;
use crate::error::{ApiError, AuthErrors, BadRequest};
use crate::query::derived::blocking;

/// How often an idle stream looks for new events.
pub const POLL: Duration = Duration::from_millis(500);
/// How often a comment keeps an idle stream (and the proxies between) open.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// Events read per store call.
const PAGE: usize = 200;

/// Where the stream starts and what it carries.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub(crate) struct StreamQuery {
    /// Start after this event id (overridden by a `Last-Event-ID` header); absent: only new events.
    #[param(minimum = 0)]
    after: Option<i64>,
    /// Only these kinds, comma-separated (`zone.enter,zone.leave`); absent: all.
    kinds: Option<String>,
}

struct Cursor {
    state: AppState,
    user: UserId,
    after: i64,
    kinds: Vec<String>,
    queue: VecDeque<EventView>,
}

impl Cursor {
    async fn next(&mut self) -> Result<Event, ApiError> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                let data = serde_json::to_string(&event).expect("an event serialises");
                return Ok(Event::default().id(event.id.to_string()).event(event.kind.clone()).data(data));
            }
            let (store, user, after) = (self.state.store.clone(), self.user, self.after);
            let page = blocking(move || {
                store
                    .events(user, after, PAGE)?
                    .iter()
                    .map(|e| document(e).map(EventView::from))
                    .collect::<Result<Vec<_>, _>>()
            })
            .await?;
            if let Some(last) = page.last() {
                self.after = last.id;
            }
            let wanted = |e: &EventView| self.kinds.is_empty() || self.kinds.contains(&e.kind);
            self.queue.extend(page.iter().filter(|e| wanted(e)).cloned());
            if page.is_empty() {
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// Your events as Server-Sent Events: `event:` is the kind, `id:` the log id, `data:` the event as
/// `GET /api/v1/events` shows it. Reconnect with `Last-Event-ID` (or `?after=`) to resume exactly
/// where you were; without either the stream starts with the next new event.
#[utoipa::path(
    get,
    path = "/api/v1/stream",
    tag = "zones",
    security(("session" = []), ("bearer" = []), ("basic" = [])),
    params(StreamQuery, ("Last-Event-ID" = Option<i64>, Header, description = "The last event id received")),
    responses(
        (status = 200, description = "An event stream of the event log's events",
            content((EventView = "text/event-stream"))),
        BadRequest,
        AuthErrors,
    )
)]
pub(crate) async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    query: Result<Query<StreamQuery>, QueryRejection>,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, ApiError> {
    let Query(query) = query?;
    let last_event_id = match headers.get("last-event-id") {
        Some(value) => {
            Some(value.to_str().ok().and_then(|v| v.trim().parse::<i64>().ok()).filter(|id| *id >= 0).ok_or_else(
                || ApiError::bad_request("Last-Event-ID: must be an event id (a whole number, 0 or more)"),
            )?)
        }
        None => None,
    };
    if query.after.is_some_and(|a| a < 0) {
        return Err(ApiError::bad_request("after: must be 0 or more"));
    }
    let kinds: Vec<String> = query
        .kinds
        .as_deref()
        .unwrap_or("")
        .split(',')
        .map(str::trim)
        .filter(|k| !k.is_empty())
        .map(str::to_owned)
        .collect();
    if let Some(bad) = kinds.iter().find(|k| EventKind::from_name(k).is_none()) {
        let known: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
        return Err(ApiError::bad_request(format!("kinds: {bad:?} is not one of {}", known.join(", "))));
    }
    let user = caller.user.id;
    let after = match last_event_id.or(query.after) {
        Some(after) => after,
        None => {
            // The end of the log: the newest id (read page by page; the log is per user and small).
            let store = state.store.clone();
            blocking(move || {
                let mut end = 0;
                loop {
                    let page = store.events(user, end, 1_000)?;
                    match page.last() {
                        Some(last) => end = last.id,
                        None => return Ok(end),
                    }
                }
            })
            .await?
        }
    };
    let cursor = Cursor { state, user, after, kinds, queue: VecDeque::new() };
    let events = futures_util::stream::unfold(cursor, |mut cursor| async move {
        match cursor.next().await {
            Ok(event) => Some((Ok(event), cursor)),
            Err(error) => {
                tracing::warn!(%error, "an event stream ends: the store failed");
                None
            }
        }
    });
    Ok(Sse::new(events).keep_alive(KeepAlive::new().interval(KEEP_ALIVE)))
}
