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
//!
//! **Several nodes.** When the store is shared by several `polo serve`
//! nodes ([`Store::subscribe_live`] answers `Shared`), [`LiveFeed::share_through`]
//! connects the feed to the other nodes: what this node publishes is also
//! queued for a thread that hands it to the store in batches (PostgreSQL
//! `NOTIFY`, after the write committed, as publishing always is), and a
//! second thread feeds what the other nodes publish into this node's channel
//! and its last-location cache, without publishing it again. The store
//! never returns a node's own messages, so nothing is seen twice. If the
//! listening connection drops, the thread subscribes again; events of the
//! gap are lost, which a live view survives (the next position supersedes
//! them).

use std::sync::mpsc;
use std::sync::{Arc, Weak};
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD_NO_PAD;
use polo_domain::{DeviceId, Fix, Seq, UserId};
use polo_store::codec::{StoredFix, decode_chunk, encode_chunk};
use polo_store::{LiveSubscription, Store};
use tokio::sync::{broadcast, watch};

use crate::ingest::LastSeen;

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
    /// `user`'s exposure status changed: their own streams tell them (and
    /// nobody else's), without the status itself, which they read from
    /// `GET /api/v1/exposure/status`.
    ExposureChanged {
        /// Whose status.
        user: UserId,
    },
}

/// The sending side, cloned into the state.
#[derive(Debug, Clone)]
pub struct LiveFeed {
    sender: broadcast::Sender<LiveEvent>,
    /// `true` once the server shuts down.
    closing: Arc<watch::Sender<bool>>,
    /// Where events go to reach the other nodes (a shared store only).
    outbox: Option<mpsc::Sender<LiveEvent>>,
    /// Held by every clone; the thread listening to other nodes ends once
    /// the last one is gone.
    alive: Arc<()>,
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
        Self {
            sender: broadcast::channel(FEED_CAPACITY).0,
            closing: Arc::new(watch::channel(false).0),
            outbox: None,
            alive: Arc::new(()),
        }
    }

    /// Connects the feed to the other nodes sharing `store`, if any: from
    /// now on what this node publishes reaches them, and what they publish
    /// reaches this node's streams and `last_seen`. Call once, before
    /// cloning the feed. A store no other node shares changes nothing.
    ///
    /// # Errors
    /// When a thread cannot be started.
    pub fn share_through(&mut self, store: &Arc<dyn Store>, last_seen: &Arc<LastSeen>) -> std::io::Result<()> {
        if !store.is_shared() {
            return Ok(());
        }
        let (outbox, queued) = mpsc::channel();
        let publisher = Arc::clone(store);
        std::thread::Builder::new().name("polo-live-out".into()).spawn(move || send_to_nodes(&*publisher, &queued))?;
        let listener = Listener {
            store: Arc::clone(store),
            sender: self.sender.clone(),
            closing: self.closing.subscribe(),
            last_seen: Arc::clone(last_seen),
            alive: Arc::downgrade(&self.alive),
        };
        // The listening connection is made on that thread: the store's calls
        // block, and this may run inside the async runtime.
        std::thread::Builder::new().name("polo-live-in".into()).spawn(move || listener.run())?;
        self.outbox = Some(outbox);
        Ok(())
    }

    fn publish(&self, event: LiveEvent) {
        if let Some(outbox) = &self.outbox {
            // The sending thread only ends with the last feed: it is there.
            let _ = outbox.send(event.clone());
        }
        // No subscriber is not an error.
        let _ = self.sender.send(event);
    }

    /// Publishes a stored point (the newest of its write).
    pub fn position(&self, user: UserId, device: DeviceId, fix: &Fix) {
        self.publish(LiveEvent::Position { user, device, fix: Arc::new(fix.clone()) });
    }

    /// Publishes that `owner`'s grants changed.
    pub fn grants_changed(&self, owner: UserId) {
        self.publish(LiveEvent::GrantsChanged { owner });
    }

    /// Publishes that `user`'s exposure status changed.
    pub fn exposure_changed(&self, user: UserId) {
        self.publish(LiveEvent::ExposureChanged { user });
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

/// Most events handed to the store in one call.
const SEND_BATCH: usize = 256;

/// Hands queued events to the other nodes, in batches, until every feed is gone.
fn send_to_nodes(store: &dyn Store, queued: &mpsc::Receiver<LiveEvent>) {
    while let Ok(first) = queued.recv() {
        let mut messages = vec![encode(&first)];
        while messages.len() < SEND_BATCH {
            match queued.try_recv() {
                Ok(event) => messages.push(encode(&event)),
                Err(_) => break,
            }
        }
        if let Err(error) = store.publish_live(&messages) {
            tracing::warn!(%error, events = messages.len(), "live events did not reach the other nodes");
        }
    }
}

/// Feeds what other nodes publish into this node's feed.
struct Listener {
    store: Arc<dyn Store>,
    sender: broadcast::Sender<LiveEvent>,
    closing: watch::Receiver<bool>,
    last_seen: Arc<LastSeen>,
    alive: Weak<()>,
}

/// How long the listener waits for messages before it looks whether it should end.
const LISTEN_TICK: Duration = Duration::from_millis(500);

impl Listener {
    fn done(&self) -> bool {
        self.alive.strong_count() == 0 || *self.closing.borrow()
    }

    /// Subscribes (again after a lost connection, a second later) and
    /// delivers until the feed is gone or closing.
    fn run(self) {
        let mut failing = false;
        while !self.done() {
            let mut receiver = match self.store.subscribe_live() {
                Ok(LiveSubscription::Shared(receiver)) => receiver,
                Ok(LiveSubscription::LocalOnly) => return,
                Err(error) => {
                    if !failing {
                        tracing::warn!(%error, "cannot listen to the other nodes' live events yet; retrying");
                    }
                    failing = true;
                    std::thread::sleep(Duration::from_secs(1));
                    continue;
                }
            };
            if failing {
                tracing::info!("listening to the other nodes' live events again");
            }
            failing = false;
            while !self.done() {
                match receiver.wait(LISTEN_TICK) {
                    Ok(messages) => {
                        for message in messages {
                            match decode(&message) {
                                Some(event) => self.deliver(event),
                                None => tracing::warn!(message, "an unreadable live message from another node"),
                            }
                        }
                    }
                    Err(error) => {
                        tracing::warn!(%error, "lost the other nodes' live events; listening again");
                        failing = true;
                        std::thread::sleep(Duration::from_secs(1));
                        break;
                    }
                }
            }
        }
    }

    fn deliver(&self, event: LiveEvent) {
        match &event {
            LiveEvent::Position { device, fix, .. } => self.last_seen.observe(*device, fix),
            LiveEvent::GrantsChanged { .. } => self.last_seen.forget_grants(),
            LiveEvent::ExposureChanged { .. } => {}
        }
        let _ = self.sender.send(event);
    }
}

/// An event as a live message: `p USER DEVICE CHUNK` (the fix as a one-fix
/// codec chunk, base64), `g OWNER` or `e USER`.
fn encode(event: &LiveEvent) -> String {
    match event {
        LiveEvent::Position { user, device, fix } => {
            let chunk = encode_chunk(&[StoredFix { fix: (**fix).clone(), seq: Seq(0) }]);
            format!("p {} {} {}", user.0, device.0, STANDARD_NO_PAD.encode(chunk))
        }
        LiveEvent::GrantsChanged { owner } => format!("g {}", owner.0),
        LiveEvent::ExposureChanged { user } => format!("e {}", user.0),
    }
}

fn decode(message: &str) -> Option<LiveEvent> {
    let mut parts = message.split(' ');
    match parts.next()? {
        "p" => {
            let user = UserId(parts.next()?.parse().ok()?);
            let device = DeviceId(parts.next()?.parse().ok()?);
            let chunk = STANDARD_NO_PAD.decode(parts.next()?).ok()?;
            let fix = decode_chunk(&chunk).ok()?.into_iter().next()?.fix;
            Some(LiveEvent::Position { user, device, fix: Arc::new(fix) })
        }
        "g" => Some(LiveEvent::GrantsChanged { owner: UserId(parts.next()?.parse().ok()?) }),
        "e" => Some(LiveEvent::ExposureChanged { user: UserId(parts.next()?.parse().ok()?) }),
        _ => None,
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

    #[test]
    fn events_survive_the_trip_between_nodes() {
        let mut fix =
            Fix::new(Timestamp(1_700_000_000_123), Coord::from_degrees(47.1, -122.3).unwrap(), SourceFormat::Owntracks);
        fix.battery_percent = Some(81);
        fix.horizontal_accuracy_cm = Some(1200);
        let sent = LiveEvent::Position { user: UserId(4), device: DeviceId(9), fix: Arc::new(fix.clone()) };
        let message = encode(&sent);
        assert!(message.len() < polo_store::nodes::MAX_LIVE_MESSAGE);
        match decode(&message).unwrap() {
            LiveEvent::Position { user, device, fix: got } => {
                assert_eq!((user, device, &*got), (UserId(4), DeviceId(9), &fix));
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            decode(&encode(&LiveEvent::GrantsChanged { owner: UserId(3) })),
            Some(LiveEvent::GrantsChanged { owner: UserId(3) })
        ));
        assert!(matches!(
            decode(&encode(&LiveEvent::ExposureChanged { user: UserId(5) })),
            Some(LiveEvent::ExposureChanged { user: UserId(5) })
        ));
        assert!(decode("p 1 x").is_none() && decode("?").is_none());
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
