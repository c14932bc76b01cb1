//! The live feed: every point live ingest stores, as it is stored, for the
//! Server-Sent-Event streams (`GET /api/v1/live`, a live share's
//! `…/live`).
//!
//! One [`tokio::sync::broadcast`] channel held in the [`crate::AppState`]
//! (no global): live ingest (HTTP and MQTT) publishes after the group-commit
//! writer confirmed the write, and every open stream subscribes and picks
//! what its viewer may see. Publishing never blocks and costs nothing
//! without subscribers; a stream that falls more than [`FEED_CAPACITY`]
//! events behind skips the oldest (the next position supersedes them
//! anyway). File imports are history and do not publish.
//!
//! Changes of who may see whom (location grants) are published too, so an
//! open stream stops showing a user the moment their grant is withdrawn.
//!
//! An event stream never finishes by itself, and a graceful shutdown waits
//! for in-flight responses: [`crate::serve`] therefore calls
//! [`LiveFeed::close`] when shutdown begins, which ends every stream.

use std::sync::Arc;

use polo_domain::{DeviceId, Fix, UserId};
use tokio::sync::{broadcast, watch};

/// Events a slow subscriber may lag behind before it skips.
pub const FEED_CAPACITY: usize = 1024;

/// What the feed carries.
#[derive(Debug, Clone)]
pub enum LiveEvent {
    /// A new newest point of a device was stored.
    Position {
        /// Owner.
        user: UserId,
        /// Device.
        device: DeviceId,
        /// The stored fix.
        fix: Arc<Fix>,
    },
    /// `owner` granted or withdrew a location grant: streams re-read whom they show.
    GrantsChanged {
        /// Who changed their grants.
        owner: UserId,
    },
}

/// The sending side, cloned into the state.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    sender: broadcast::Sender<LiveEvent>,
    /// `true` once the server shuts down.
    closing: Arc<watch::Sender<bool>>,
}

impl Default for LiveFeed {
    fn default() -> Self {
        Self::new()
    }
}

impl LiveFeed {
    /// A feed without subscribers.
    #[must_use]
    pub fn new() -> Self {
        Self { sender: broadcast::channel(FEED_CAPACITY).0, closing: Arc::new(watch::channel(false).0) }
    }

    /// Publishes a stored point (the newest of its write).
    pub fn position(&self, user: UserId, device: DeviceId, fix: &Fix) {
        // No subscriber is not an error.
        let _ = self.sender.send(LiveEvent::Position { user, device, fix: Arc::new(fix.clone()) });
    }

    /// Publishes that `owner`'s grants changed.
    pub fn grants_changed(&self, owner: UserId) {
        let _ = self.sender.send(LiveEvent::GrantsChanged { owner });
    }

    /// A new subscription, receiving what is published from now on.
    #[must_use]
    pub fn subscribe(&self) -> broadcast::Receiver<LiveEvent> {
        self.sender.subscribe()
    }

    /// Tells every stream to end: the server is shutting down.
    pub fn close(&self) {
        self.closing.send_replace(true);
    }

    /// Watches for [`LiveFeed::close`]; `wait_for(|closing| *closing)` resolves then.
    #[must_use]
    pub fn closing(&self) -> watch::Receiver<bool> {
        self.closing.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, SourceFormat, Timestamp};

    use super::*;

    #[tokio::test]
    async fn subscribers_see_what_is_published_after_they_subscribed() {
        let feed = LiveFeed::new();
        let fix = Fix::new(Timestamp(1_700_000_000_000), Coord::from_degrees(1.0, 2.0).unwrap(), SourceFormat::Api);
        feed.position(UserId(1), DeviceId(1), &fix); // nobody listens: dropped
        let mut receiver = feed.subscribe();
        feed.position(UserId(1), DeviceId(2), &fix);
        feed.grants_changed(UserId(3));
        match receiver.recv().await.unwrap() {
            LiveEvent::Position { user, device, fix: got } => {
                assert_eq!((user, device, got.time), (UserId(1), DeviceId(2), fix.time));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(receiver.recv().await.unwrap(), LiveEvent::GrantsChanged { owner: UserId(3) }));
    }

    #[tokio::test]
    async fn closing_is_seen_by_watchers_made_before_and_after() {
        let feed = LiveFeed::new();
        let mut before = feed.closing();
        assert!(!*before.borrow());
        feed.clone().close();
        before.wait_for(|closing| *closing).await.unwrap();
        assert!(*feed.closing().borrow());
    }
}
