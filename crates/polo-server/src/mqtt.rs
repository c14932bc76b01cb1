//! OwnTracks over MQTT: polo as a subscriber of the user's broker.
//!
//! Many OwnTracks installations already run a broker (the apps' default
//! mode is MQTT, and Home Assistant and friends read the same topics), so
//! polo does what the OwnTracks Recorder does instead of asking every phone
//! to switch to HTTP: it subscribes to `owntracks/#` (configurable), takes
//! user and device from topic parts 2 and 3 (`owntracks/<user>/<device>[/…]`)
//! and **dispatches on `_type`, not on the topic suffix** (protocols.md 1b),
//! with the same parser as `POST /api/owntracks`
//! ([`crate::ingest::owntracks::parse`]).
//!
//! * **Trust.** The broker's ACLs are the authentication: a message on
//!   `owntracks/jane/…` is stored for the polo user named `jane`. Topic
//!   users without a polo account are counted
//!   (`polo_rejects_total{reason="mqtt_unknown_user"}`) and logged once each,
//!   never fatal.
//! * **One writer.** Fixes go through the shared [`crate::ingest::Ingestor`]
//!   (the same group-commit writer HTTP ingest uses), so MQTT and HTTP
//!   traffic share commits and never race each other in the store.
//! * **Retained messages** (the apps retain `location` and `card`) arrive
//!   again at every (re)connect; a point's identity (user, device, time)
//!   makes them duplicates, so they are simply accepted.
//! * **Connection loss.** rumqttc reconnects on the next poll; this task
//!   waits with an exponential back-off between attempts (so a dead broker
//!   is not a busy loop), logs failures at `warn` at most once a minute,
//!   and subscribes again after every `CONNACK` (the session is clean).
//! * **Shutdown.** [`MqttTask::shutdown`] stops the loop and sends a
//!   `DISCONNECT`; the server calls it before shutting the ingest writer
//!   down, so nothing this task submitted is lost.
//!
//! * **Regions.** `waypoint`/`waypoints` become zones and `transition`s are
//!   logged as `app.*` events ([`crate::zones::regions`]); after a device's
//!   message, when its app has not been sent the user's zones yet, they go
//!   to `<base>/<user>/<device>/cmd` as `setWaypoints` (encrypted when the
//!   device has a key).
//! * **Publishing.** The same connection carries what polo publishes
//!   ([`crate::mqtt_out`]: republished positions and events, Home Assistant
//!   discovery); messages polo published itself are recognised and skipped.
//!
//! Plain TCP only for now (`mqtt://`, `tcp://`); `mqtts://` is refused with
//! a clear error rather than silently connecting in the clear.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use polo_domain::{DeviceId, Fix, UserId};
use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Outgoing, Packet, QoS};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::AppState;
use crate::ingest::{IngestError, owntracks};
use crate::mqtt_out::{self, Publisher};

/// The default subscription: everything under the OwnTracks base topic.
pub const DEFAULT_TOPIC: &str = "owntracks/#";
/// The MQTT port when the URL names none.
pub const DEFAULT_PORT: u16 = 1883;
/// The `protocol` label of `polo_points_ingested_total`.
pub const PROTOCOL: &str = "owntracks-mqtt";

/// Largest message accepted. rumqttc's default (10 KiB) is smaller than a
/// retained `card` with a face picture, and an oversized packet drops the
/// connection, after which the broker would send the same retained card
/// again: a reconnect loop.
const MAX_INCOMING_PACKET: usize = 1024 * 1024;
/// First and longest wait before reconnecting.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// At most one connection warning per this interval.
const WARN_EVERY: Duration = Duration::from_secs(60);
/// How long shutdown waits for the `DISCONNECT` to go out.
const DISCONNECT_GRACE: Duration = Duration::from_secs(2);
/// Bounds of the per-task caches (a broker may carry any number of topics).
const MAX_CACHED_DEVICES: usize = 4096;
const MAX_LOGGED_UNKNOWN: usize = 4096;
/// Requests (publications, acknowledgements) queued for the connection.
const REQUEST_QUEUE: usize = 256;

/// Why the MQTT settings are unusable.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MqttError {
    /// The URL could not be read.
    #[error("invalid MQTT URL {url:?}: {reason}")]
    InvalidUrl {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A scheme polo cannot speak (yet).
    #[error("unsupported MQTT URL scheme {scheme:?} (use mqtt://HOST:PORT; TLS is not supported yet)")]
    UnsupportedScheme {
        /// The scheme.
        scheme: String,
    },
    /// A password without a user name.
    #[error("an MQTT password was given without a user name")]
    PasswordWithoutUser,
    /// An empty subscription topic.
    #[error("the MQTT topic is empty")]
    EmptyTopic,
}

/// Where and how to subscribe.
#[derive(Clone, PartialEq, Eq)]
pub struct MqttSettings {
    /// Broker host name or IP address.
    pub host: String,
    /// Broker port.
    pub port: u16,
    /// User name and password for the broker, if it wants them.
    pub credentials: Option<(String, String)>,
    /// Topic filter subscribed to (QoS 1).
    pub topic: String,
    /// Republish positions stored through other protocols, and zone
    /// events, in OwnTracks topics ([`crate::mqtt_out`]).
    pub republish: bool,
    /// Announce devices to Home Assistant (MQTT discovery).
    pub discovery: bool,
}

impl std::fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the password.
        f.debug_struct("MqttSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("username", &self.credentials.as_ref().map(|(u, _)| u))
            .field("topic", &self.topic)
            .field("republish", &self.republish)
            .field("discovery", &self.discovery)
            .finish()
    }
}

impl MqttSettings {
    /// Settings from `mqtt://host[:port]` (also `tcp://`, or a bare
    /// `host[:port]`; IPv6 as `[::1]:1883`), optional credentials and a topic
    /// filter ([`DEFAULT_TOPIC`] when `None`).
    ///
    /// # Errors
    /// [`MqttError`] for an unreadable URL, a TLS scheme, user info in the
    /// URL, a password without a user, or an empty topic.
    pub fn new(
        url: &str,
        username: Option<&str>,
        password: Option<&str>,
        topic: Option<&str>,
    ) -> Result<Self, MqttError> {
        let invalid = |reason| MqttError::InvalidUrl { url: url.to_owned(), reason };
        let trimmed = url.trim();
        let rest = match trimmed.split_once("://") {
            Some((scheme, rest)) => match scheme.to_ascii_lowercase().as_str() {
                "mqtt" | "tcp" => rest,
                _ => return Err(MqttError::UnsupportedScheme { scheme: scheme.to_owned() }),
            },
            None => trimmed,
        };
        let authority = rest.strip_suffix('/').unwrap_or(rest);
        if authority.contains('@') {
            return Err(invalid("credentials in the URL are not read; use --mqtt-username and --mqtt-password"));
        }
        if authority.contains(['/', '?', '#']) {
            return Err(invalid("expected mqtt://HOST:PORT without a path"));
        }
        let (host, port) = if let Some(bracketed) = authority.strip_prefix('[') {
            let (host, after) = bracketed.split_once(']').ok_or_else(|| invalid("unclosed '[' in the host"))?;
            match after {
                "" => (host, None),
                _ => (host, Some(after.strip_prefix(':').ok_or_else(|| invalid("expected ':' after ']'"))?)),
            }
        } else {
            match authority.rsplit_once(':') {
                Some((host, _)) if host.contains(':') => return Err(invalid("write IPv6 addresses as [ADDR]:PORT")),
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        if host.is_empty() {
            return Err(invalid("no host"));
        }
        let port = match port {
            None => DEFAULT_PORT,
            Some(port) => port.parse::<u16>().ok().filter(|p| *p != 0).ok_or_else(|| invalid("bad port"))?,
        };
        let username = username.map(str::trim).filter(|u| !u.is_empty());
        let credentials = match (username, password) {
            (Some(user), password) => Some((user.to_owned(), password.unwrap_or_default().to_owned())),
            (None, Some(p)) if !p.is_empty() => return Err(MqttError::PasswordWithoutUser),
            (None, _) => None,
        };
        let topic = topic.map(str::trim).unwrap_or(DEFAULT_TOPIC);
        if topic.is_empty() {
            return Err(MqttError::EmptyTopic);
        }
        Ok(Self {
            host: host.to_owned(),
            port,
            credentials,
            topic: topic.to_owned(),
            republish: false,
            discovery: false,
        })
    }

    fn client_options(&self) -> MqttOptions {
        // Unique per process (≤ 23 characters, the MQTT 3.1.1 minimum every
        // broker must accept): two polo instances on one broker must not
        // keep disconnecting each other.
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.subsec_nanos());
        let client_id = format!("polo-{:x}-{:x}", std::process::id(), nanos);
        let mut options = MqttOptions::new(client_id, self.host.clone(), self.port);
        options.set_keep_alive(Duration::from_secs(30));
        options.set_clean_session(true);
        options.set_max_packet_size(MAX_INCOMING_PACKET, 64 * 1024);
        if let Some((user, password)) = &self.credentials {
            options.set_credentials(user.clone(), password.clone());
        }
        options
    }
}

/// The running subscriber. Dropping it without [`MqttTask::shutdown`] also
/// stops the loop, without waiting.
#[derive(Debug)]
pub struct MqttTask {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl MqttTask {
    /// Starts the subscriber on the current tokio runtime. It connects in
    /// the background: an unreachable broker is logged and retried, never
    /// fatal.
    #[must_use]
    pub fn start(state: AppState, settings: MqttSettings) -> Self {
        let (stop, stopped) = watch::channel(false);
        let (client, eventloop) = AsyncClient::new(settings.client_options(), REQUEST_QUEUE);
        tracing::info!(broker = %format_args!("{}:{}", settings.host, settings.port), topic = %settings.topic,
            republish = settings.republish, discovery = settings.discovery, "MQTT subscriber starting");
        let outgoing = state
            .mqtt_out
            .attach(settings.republish, settings.discovery)
            .map(|receiver| (receiver, Publisher::new(state.store.clone(), settings.republish, settings.discovery)));
        let mut subscriber = Subscriber::new(state);
        subscriber.client = Some(client.clone());
        let handle = tokio::spawn(run(subscriber, client, eventloop, settings.topic, outgoing, stopped));
        Self { stop, handle }
    }

    /// Stops the loop, disconnects from the broker and waits for the task:
    /// every message it accepted has been handed to the ingest writer.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.handle.await {
            tracing::warn!(error = %e, "the MQTT task ended abnormally");
        }
    }
}

async fn run(
    mut subscriber: Subscriber,
    client: AsyncClient,
    mut eventloop: EventLoop,
    topic: String,
    outgoing: Option<(mpsc::Receiver<mqtt_out::Outgoing>, Publisher)>,
    mut stopped: watch::Receiver<bool>,
) {
    let (mut outbox, mut publisher) = match outgoing {
        Some((outbox, publisher)) => (Some(outbox), Some(publisher)),
        None => (None, None),
    };
    let mut backoff = BACKOFF_MIN;
    let mut warned: Option<Instant> = None;
    let mut suppressed = 0_u64;
    loop {
        let event = tokio::select! {
            biased;
            _ = stopped.changed() => break,
            event = eventloop.poll() => event,
            Some(message) = async { match outbox.as_mut() { Some(o) => o.recv().await, None => None } } => {
                if let Some(publisher) = publisher.as_mut() {
                    for publication in publisher.publications(message).await {
                        mqtt_out::publish(&client, publication);
                    }
                }
                continue;
            }
        };
        match event {
            Ok(Event::Incoming(Packet::ConnAck(_))) => {
                backoff = BACKOFF_MIN;
                if let Some(publisher) = publisher.as_mut() {
                    publisher.reconnected();
                }
                tracing::info!(topic = %topic, "MQTT connected; subscribing");
                // try_: this task is the one draining the request channel.
                if let Err(e) = client.try_subscribe(topic.clone(), QoS::AtLeastOnce) {
                    tracing::warn!(error = %e, "MQTT subscribe could not be queued");
                }
            }
            Ok(Event::Incoming(Packet::SubAck(ack))) => {
                tracing::debug!(codes = ?ack.return_codes, "MQTT subscription acknowledged");
            }
            Ok(Event::Incoming(Packet::Publish(publish))) => {
                subscriber.handle(&publish.topic, &publish.payload).await;
            }
            Ok(_) => {}
            Err(e) => {
                let now = Instant::now();
                if warned.is_none_or(|at| now.duration_since(at) >= WARN_EVERY) {
                    tracing::warn!(error = %e, retry_in_s = backoff.as_secs(), suppressed, "MQTT connection failed");
                    warned = Some(now);
                    suppressed = 0;
                } else {
                    suppressed += 1;
                }
                tokio::select! {
                    biased;
                    _ = stopped.changed() => break,
                    () = tokio::time::sleep(backoff) => {}
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
    // Say goodbye so the broker does not wait for the keep-alive to expire.
    if client.try_disconnect().is_ok() {
        let _ = tokio::time::timeout(DISCONNECT_GRACE, async {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => break,
                    Ok(_) => {}
                }
            }
        })
        .await;
    }
    tracing::info!("MQTT subscriber stopped");
}

/// What one message led to; for tests and logs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Handled {
    /// A fix was submitted; `added` is 0 for a duplicate (a retained message seen again).
    Stored { added: u64 },
    /// A message without a position (card, lwt, waypoint, cmd, empty…): accepted, nothing stored.
    Ignored,
    /// Counted in `polo_rejects_total` under this reason.
    Rejected(&'static str),
}

/// Per-task state: the resolution caches. Owned by the task, no globals.
struct Subscriber {
    state: AppState,
    devices: HashMap<(String, String), (UserId, DeviceId)>,
    unknown_logged: HashSet<String>,
    /// Where `setWaypoints` commands go out; `None` in unit tests.
    client: Option<AsyncClient>,
}

impl Subscriber {
    fn new(state: AppState) -> Self {
        Self { state, devices: HashMap::new(), unknown_logged: HashSet::new(), client: None }
    }

    fn reject(&self, reason: &'static str) -> Handled {
        self.state.metrics.rejected(reason);
        Handled::Rejected(reason)
    }

    /// Handles one PUBLISH. Never fails: everything unusable is counted and logged.
    async fn handle(&mut self, topic: &str, payload: &[u8]) -> Handled {
        if mqtt_out::is_own(payload) {
            return Handled::Ignored; // polo's own publication, read back
        }
        let parsed = owntracks::Topic::parse(topic);
        let (Some(user), Some(device)) = (parsed.user, parsed.device) else {
            tracing::debug!(topic, "MQTT message on a topic without user and device");
            return self.reject("mqtt_bad_topic");
        };
        // A topic level cannot hold '/', '+' or '#', but it can hold anything else.
        let device = match polo_domain::validate_device_name(&device) {
            Ok(name) => name.to_owned(),
            Err(e) => {
                tracing::info!(topic, "MQTT message for a device name polo refuses: the device name {e}");
                return self.reject("mqtt_bad_device_name");
            }
        };
        let options = owntracks::ParseOptions::at(crate::ingest::routes::now());
        let mut message = match owntracks::parse(payload, &options) {
            Ok(message) => message,
            Err(e) => {
                tracing::info!(topic, error = %e, "unusable OwnTracks message over MQTT");
                return self.reject("mqtt_unusable");
            }
        };
        let mut resolved = None;
        if let owntracks::Message::Encrypted { data } = &message {
            let Some((user_id, device_id)) = self.resolve(&user, &device).await else {
                return self.reject("mqtt_unknown_user");
            };
            resolved = Some((user_id, device_id));
            message = match self.decrypt(user_id, device_id, data, &options).await {
                Ok(message) => message,
                Err(reason) => {
                    tracing::info!(topic, reason, "encrypted OwnTracks payload over MQTT could not be decrypted");
                    return self.reject(reason);
                }
            };
        }
        let (fix, app): (Fix, _) = match message {
            owntracks::Message::Location(location) => (location.fix, None),
            owntracks::Message::Transition(transition) => {
                let app = transition.app_transition();
                (transition.fix, Some(app))
            }
            owntracks::Message::Card(card) => return self.store_card(&user, &device, card).await,
            owntracks::Message::Waypoint(waypoint) => {
                return self.store_regions(&user, &device, vec![waypoint.region()]).await;
            }
            owntracks::Message::Waypoints(list) => {
                let regions = list.iter().map(owntracks::Waypoint::region).collect();
                return self.store_regions(&user, &device, regions).await;
            }
            _ => return Handled::Ignored,
        };
        let resolved = match resolved {
            Some(ids) => Some(ids),
            None => self.resolve(&user, &device).await,
        };
        let Some((user_id, device_id)) = resolved else {
            return self.reject("mqtt_unknown_user");
        };
        // Kept for the last-location cache that HTTP ingest also feeds, so
        // OwnTracks HTTP friends replies see points that came over MQTT.
        let newest = fix.clone();
        match self.state.ingestor.submit(user_id, device_id, vec![fix]).await {
            Ok(outcome) => {
                self.state.metrics.points_ingested(PROTOCOL, outcome.added);
                self.state.last_seen.observe(device_id, &newest);
                if outcome.added > 0 {
                    self.state.live.position(user_id, device_id, &newest);
                    self.state.mqtt_out.position(user_id, device_id, &newest, true);
                }
                if let Some(app) = app {
                    let zones = self.state.zones.clone();
                    let at = crate::ingest::routes::now();
                    let logged =
                        tokio::task::spawn_blocking(move || zones.record_transition(user_id, device_id, &app, at))
                            .await;
                    if !matches!(logged, Ok(Ok(_))) {
                        tracing::warn!(topic, "logging an OwnTracks transition from MQTT failed");
                    }
                }
                self.send_waypoints(&parsed.raw, user_id, device_id).await;
                Handled::Stored { added: outcome.added }
            }
            Err(IngestError::Closed) => {
                tracing::warn!(topic, "MQTT message arrived while the ingest writer is shut down; dropped");
                self.reject("mqtt_store")
            }
            Err(e @ IngestError::Store(_)) => {
                tracing::error!(topic, error = %e, "storing an MQTT point failed");
                self.devices.clear();
                self.reject("mqtt_store")
            }
        }
    }

    /// Keeps the app's regions as the topic user's zones.
    async fn store_regions(&mut self, user: &str, device: &str, regions: Vec<polo_zones::regions::Region>) -> Handled {
        let Some((user_id, _)) = self.resolve(user, device).await else {
            return self.reject("mqtt_unknown_user");
        };
        let (zones, at) = (self.state.zones.clone(), crate::ingest::routes::now());
        match tokio::task::spawn_blocking(move || zones.store_regions(user_id, &regions, at)).await {
            Ok(Ok(_)) => Handled::Ignored,
            Ok(Err(_)) | Err(_) => self.reject("mqtt_store"),
        }
    }

    /// Sends the user's zones to the device's `cmd` topic (next to the
    /// topic its message came on), when its app has not had them yet.
    async fn send_waypoints(&self, topic: &str, user: UserId, device: DeviceId) {
        let Some(client) = &self.client else { return };
        let zones = self.state.zones.clone();
        let command = match zones.cached_waypoints_for(user, device) {
            Some(command) => command,
            None => match tokio::task::spawn_blocking(move || zones.waypoints_for(user, device)).await {
                Ok(Ok(command)) => command,
                Ok(Err(_)) | Err(_) => {
                    tracing::warn!(topic, "reading the zones for setWaypoints failed");
                    return;
                }
            },
        };
        let Some(command) = command else { return };
        let base: Vec<&str> = topic.splitn(4, '/').take(3).collect();
        let cmd_topic = format!("{}/cmd", base.join("/"));
        let mut payload = command.to_string().into_bytes();
        let (store, last_seen) = (self.state.store.clone(), self.state.last_seen.clone());
        let key = tokio::task::spawn_blocking(move || last_seen.encryption_key(store.as_ref(), user, device)).await;
        if let Ok(Ok(Some(key))) = key {
            match owntracks::encrypted_envelope(&key, &payload) {
                Ok(envelope) => payload = envelope.to_string().into_bytes(),
                Err(e) => {
                    tracing::warn!(topic, error = %e, "encrypting setWaypoints failed; not sent");
                    return;
                }
            }
        }
        if let Err(e) = client.try_publish(cmd_topic, QoS::AtLeastOnce, false, payload) {
            tracing::warn!(topic, error = %e, "setWaypoints could not be queued");
        }
    }

    /// Keeps a device's card (published retained on `…/info`) for the
    /// OwnTracks HTTP friends replies.
    async fn store_card(&mut self, user: &str, device: &str, card: owntracks::Card) -> Handled {
        let Some((user_id, device_id)) = self.resolve(user, device).await else {
            return self.reject("mqtt_unknown_user");
        };
        let card = card.into_device_card();
        let (store, stored) = (self.state.store.clone(), card.clone());
        match tokio::task::spawn_blocking(move || store.set_device_card(user_id, device_id, stored.as_ref())).await {
            Ok(Ok(())) => {
                self.state.last_seen.card_stored(device_id, card);
                Handled::Ignored
            }
            Ok(Err(_)) | Err(_) => self.reject("mqtt_store"),
        }
    }

    /// Decrypts with the device's passphrase; the error is the reject reason.
    async fn decrypt(
        &self,
        user: UserId,
        device: DeviceId,
        data: &str,
        options: &owntracks::ParseOptions,
    ) -> Result<owntracks::Message, &'static str> {
        let (store, last_seen) = (self.state.store.clone(), self.state.last_seen.clone());
        let key = tokio::task::spawn_blocking(move || last_seen.encryption_key(store.as_ref(), user, device)).await;
        match key {
            Ok(Ok(Some(key))) => owntracks::decrypt_message(&key, data, options).map_err(|_| "mqtt_undecryptable"),
            Ok(Ok(None)) => Err("mqtt_encrypted_without_key"),
            Ok(Err(_)) | Err(_) => Err("mqtt_store"),
        }
    }

    /// The polo user named like the topic's user, and its device (created
    /// on first use). `None` for an unknown user or a store error (logged).
    async fn resolve(&mut self, user: &str, device: &str) -> Option<(UserId, DeviceId)> {
        let key = (user.to_owned(), device.to_owned());
        if let Some(ids) = self.devices.get(&key) {
            return Some(*ids);
        }
        let store = self.state.store.clone();
        let (name, device_name) = key.clone();
        let looked_up = tokio::task::spawn_blocking(move || -> polo_store::StoreResult<Option<(UserId, DeviceId)>> {
            let Some(user) = store.user_by_name(&name)? else { return Ok(None) };
            let device = store.ensure_device(user.id, &device_name)?;
            Ok(Some((user.id, device.id)))
        })
        .await;
        match looked_up {
            Ok(Ok(Some(ids))) => {
                if self.devices.len() >= MAX_CACHED_DEVICES {
                    self.devices.clear();
                }
                self.devices.insert(key, ids);
                Some(ids)
            }
            Ok(Ok(None)) => {
                if !self.unknown_logged.contains(user) && self.unknown_logged.len() < MAX_LOGGED_UNKNOWN {
                    tracing::info!(user, "MQTT messages for a user polo does not know are dropped (logged once)");
                    self.unknown_logged.insert(user.to_owned());
                }
                None
            }
            Ok(Err(e)) => {
                tracing::error!(user, device, error = %e, "resolving an MQTT user's device failed");
                None
            }
            Err(e) => {
                tracing::error!(error = %e, "the MQTT device lookup task failed");
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use polo_store::{PointQuery, Store};
    use polo_store_sqlite::SqliteStore;

    use super::*;

    fn settings(url: &str) -> Result<MqttSettings, MqttError> {
        MqttSettings::new(url, None, None, None)
    }

    #[test]
    fn urls() {
        let s = settings("mqtt://127.0.0.1:1883").unwrap();
        assert_eq!((s.host.as_str(), s.port, s.topic.as_str()), ("127.0.0.1", 1883, DEFAULT_TOPIC));
        assert_eq!(settings("tcp://broker.lan/").unwrap().port, DEFAULT_PORT);
        assert_eq!(settings("broker.lan:1884").unwrap().port, 1884);
        let v6 = settings("mqtt://[::1]:2883").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 2883));
        assert!(matches!(settings("mqtts://broker:8883"), Err(MqttError::UnsupportedScheme { .. })));
        for bad in ["mqtt://", "mqtt://h:0", "mqtt://h:x", "mqtt://u:p@h", "mqtt://h/x", "::1:1883", "[::1"] {
            assert!(matches!(settings(bad), Err(MqttError::InvalidUrl { .. })), "{bad}");
        }
        let auth = MqttSettings::new("mqtt://h", Some("polo"), Some("secret"), Some("owntracks/+/+")).unwrap();
        assert_eq!(auth.credentials, Some(("polo".to_owned(), "secret".to_owned())));
        assert_eq!(auth.topic, "owntracks/+/+");
        assert!(!format!("{auth:?}").contains("secret"));
        assert_eq!(MqttSettings::new("h", None, Some("p"), None), Err(MqttError::PasswordWithoutUser));
        assert_eq!(MqttSettings::new("h", None, None, Some(" ")), Err(MqttError::EmptyTopic));
    }

    fn count(store: &SqliteStore, user: UserId) -> u64 {
        let mut n = 0;
        store
            .scan_points(&PointQuery::user(user), &mut |_| {
                n += 1;
                std::ops::ControlFlow::Continue(())
            })
            .unwrap();
        n
    }

    #[tokio::test]
    async fn messages_are_dispatched_on_type_and_topic_users_must_exist() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let jane = store.create_user("jane", "x", false).unwrap();
        let state = AppState::new(store.clone()).unwrap();
        let mut sub = Subscriber::new(state.clone());
        let location = br#"{"_type":"location","lat":48.856826,"lon":2.292713,"tst":1763699990,"acc":12,"tid":"JP"}"#;
        assert_eq!(sub.handle("owntracks/jane/phone", location).await, Handled::Stored { added: 1 });
        // A retained copy seen again at reconnect is a duplicate, not an error.
        assert_eq!(sub.handle("owntracks/jane/phone", location).await, Handled::Stored { added: 0 });
        // Dispatch is on `_type`: a transition on the event topic is a fix too,
        // and so is a location published on a sub-topic.
        let transition = br#"{"_type":"transition","wtst":1700000000,"lat":48.8584,"lon":2.2945,"tst":1763700100,"acc":5,"event":"leave","desc":"Home","t":"c"}"#;
        assert_eq!(sub.handle("owntracks/jane/phone/event", transition).await, Handled::Stored { added: 1 });
        let card = br#"{"_type":"card","tid":"JP","name":"Jane Jolie"}"#;
        assert_eq!(sub.handle("owntracks/jane/phone/info", card).await, Handled::Ignored);
        let phone = store.list_devices(jane.id).unwrap()[0].id;
        let kept = store.device_card(jane.id, phone).unwrap().unwrap();
        assert_eq!(kept.name.as_deref(), Some("Jane Jolie"), "cards are kept for the friends reply");
        assert_eq!(sub.handle("owntracks/jane/phone", br#"{"_type":"lwt","tst":1763690000}"#).await, Handled::Ignored);
        assert_eq!(sub.handle("owntracks/jane/phone", b"").await, Handled::Ignored);
        assert_eq!(sub.handle("owntracks/jane/phone", b"not json").await, Handled::Rejected("mqtt_unusable"));
        assert_eq!(sub.handle("owntracks/jane", location).await, Handled::Rejected("mqtt_bad_topic"));
        for topic in ["owntracks/jane/.hidden", "owntracks/jane/<b>", "owntracks/jane/ph\u{0}one"] {
            assert_eq!(sub.handle(topic, location).await, Handled::Rejected("mqtt_bad_device_name"), "{topic}");
        }
        let long = format!("owntracks/jane/{}", "x".repeat(10_000));
        assert_eq!(sub.handle(&long, location).await, Handled::Rejected("mqtt_bad_device_name"));
        assert_eq!(sub.handle("owntracks/bob/phone", location).await, Handled::Rejected("mqtt_unknown_user"));
        assert_eq!(sub.handle("owntracks/bob/phone", location).await, Handled::Rejected("mqtt_unknown_user"));
        assert_eq!(sub.unknown_logged.len(), 1);
        assert_eq!(count(&store, jane.id), 2);
        let devices = store.list_devices(jane.id).unwrap();
        assert_eq!(devices.iter().map(|d| d.name.as_str()).collect::<Vec<_>>(), ["phone"]);
        let metrics = state.metrics.render();
        assert!(metrics.contains(r#"polo_points_ingested_total{protocol="owntracks-mqtt"} 2"#), "{metrics}");
        assert!(metrics.contains(r#"polo_rejects_total{reason="mqtt_unknown_user"} 2"#), "{metrics}");
        state.ingestor.shutdown().await;
    }

    #[tokio::test]
    async fn encrypted_payloads_need_the_device_key() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let jane = store.create_user("jane", "x", false).unwrap();
        let phone = store.ensure_device(jane.id, "phone").unwrap();
        let state = AppState::new(store.clone()).unwrap();
        let mut sub = Subscriber::new(state.clone());
        let location = br#"{"_type":"location","lat":48.856826,"lon":2.292713,"tst":1763699990,"acc":12}"#;
        let sealed = |key: &str| serde_json::to_vec(&owntracks::encrypted_envelope(key, location).unwrap()).unwrap();
        let topic = "owntracks/jane/phone";
        assert_eq!(sub.handle(topic, &sealed("k1")).await, Handled::Rejected("mqtt_encrypted_without_key"));
        store.set_device_encryption_key(jane.id, phone.id, Some("k1")).unwrap();
        state.last_seen.forget_encryption_key(phone.id);
        assert_eq!(sub.handle(topic, &sealed("other")).await, Handled::Rejected("mqtt_undecryptable"));
        assert_eq!(count(&store, jane.id), 0);
        assert_eq!(sub.handle(topic, &sealed("k1")).await, Handled::Stored { added: 1 });
        assert_eq!(count(&store, jane.id), 1);
        state.ingestor.shutdown().await;
    }

    #[tokio::test]
    async fn an_unreachable_broker_is_retried_and_shutdown_is_prompt() {
        let store = Arc::new(SqliteStore::open_in_memory().unwrap());
        let state = AppState::new(store).unwrap();
        // Port 1 on loopback: connection refused at once.
        let task = MqttTask::start(state.clone(), settings("mqtt://127.0.0.1:1").unwrap());
        tokio::time::sleep(Duration::from_millis(100)).await;
        tokio::time::timeout(Duration::from_secs(5), task.shutdown()).await.unwrap();
        state.ingestor.shutdown().await;
    }
}
