//! The event log as a stream: a cursor over the durable log, so a client
//! that reconnects with the last id it saw gets exactly what it missed, in
//! order.
//!
//! The cursor polls the store every [`POLL`] while it has nothing to send;
//! events are derived by the zone worker a reorder window after their
//! points, so the poll adds little to their delay.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::Stream;
use polo_domain::UserId;

use super::scope::Scope;
use super::{StreamData, StreamMessage};
use crate::AppState;
use crate::error::ApiError;
use crate::query::derived::blocking;
use crate::zones::routes::{EventView, document};

/// How often an idle cursor looks for new events.
pub const POLL: Duration = Duration::from_millis(500);
/// Events read from the store at a time.
const PAGE: usize = 200;

struct Cursor {
    state: AppState,
    user: UserId,
    after: i64,
    scope: Arc<Scope>,
    queue: VecDeque<EventView>,
}

impl Cursor {
    async fn next(&mut self) -> Result<StreamMessage, ApiError> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Ok(StreamMessage {
                    event: event.kind.clone(),
                    id: Some(event.id),
                    data: StreamData::Event(event),
                });
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
            let scope = &self.scope;
            let wanted = |e: &EventView| {
                let friend = e.kind.starts_with("friend.").then(|| e.detail.get("friend").and_then(|f| f.as_str()));
                scope.shows_event(&e.kind, e.device, friend.flatten())
            };
            self.queue.extend(page.iter().filter(|e| wanted(e)).cloned());
            if page.is_empty() {
                tokio::time::sleep(POLL).await;
            }
        }
    }
}

/// The id of the newest event in `user`'s log (0 when it is empty); blocking.
pub(super) fn end_of_log(store: &dyn polo_store::Store, user: UserId) -> Result<i64, ApiError> {
    // Read page by page; the log is per user and small.
    let mut end = 0;
    loop {
        let page = store.events(user, end, 1_000)?;
        match page.last() {
            Some(last) => end = last.id,
            None => return Ok(end),
        }
    }
}

/// `user`'s events after `after` that `scope` shows, oldest first, and then
/// each new one as it is logged; ends when the store fails.
pub(super) fn events(
    state: AppState,
    user: UserId,
    after: i64,
    scope: Arc<Scope>,
) -> impl Stream<Item = StreamMessage> {
    let cursor = Cursor { state, user, after, scope, queue: VecDeque::new() };
    futures_util::stream::unfold(cursor, |mut cursor| async move {
        match cursor.next().await {
            Ok(message) => Some((message, cursor)),
            Err(error) => {
                tracing::warn!(%error, "an event stream ends: the store failed");
                None
            }
        }
    })
}
