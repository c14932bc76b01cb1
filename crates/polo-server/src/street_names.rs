//! Street-level names for places from an online geocoder (Photon or
//! Nominatim), when `polo serve --geocoder … --geocoder-url …` configures
//! one. Without that, polo makes no network requests of its own.
//!
//! [`StreetNames`] is a background task on the server's runtime:
//!
//! * **Places only, never on the ingest path.** Each round reads every
//!   user's places ([`PlaceBook`]) and picks those the configured provider
//!   has not answered for yet, at most [`Timing::batch`] per round, taken in
//!   turn from each user so that one user's long history does not hold the
//!   others back. It asks about each place's anchor, one request at a time;
//!   the client (`polo_geocode::online`) shares answers per ~130 m H3 cell
//!   and leaves a second between requests. Ingest never waits for any of it.
//! * **Stored beside the place, not in it.** An answer goes into a
//!   [`PLACE_ADDRESS`](polo_derived::kinds::PLACE_ADDRESS) row that only this
//!   task writes: the timeline engine rewrites place rows whenever it
//!   recomputes and would drop a name written into one meanwhile. The
//!   provider's "nothing there" is stored too, so the place is not asked
//!   about again; a place whose answer came from the other provider is.
//! * **Errors** are logged, counted (`polo_street_name_lookups_total{outcome="error"}`
//!   and `polo_street_name_errors_total{reason}`) and retried. The round
//!   stops at the first error; the next one starts after a back-off that
//!   doubles from 10 s to 10 min and is reset by the next answer. The place
//!   that failed waits from a minute to an hour before it is asked again,
//!   so one place the provider cannot answer does not hold up the others.
//! * **Rounds** start soon after start-up, then every [`Timing::interval`]
//!   (10 s), or at once while a round found a full batch waiting.
//! * **Shutdown.** [`StreetNames::shutdown`] stops the task at once,
//!   abandoning a request in flight; that place is asked about next time.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use polo_derived::places::{self, PlaceBook};
use polo_derived::rows::PlaceAddress;
use polo_domain::{Coord, UserId};
pub use polo_geocode::online::Provider;
use polo_geocode::online::{OnlineConfig, OnlineError, OnlineGeocoder};
use polo_store::Store;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::{AppState, Metrics};

/// Why `--geocoder` / `--geocoder-url` cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum StreetNameError {
    /// A provider polo does not speak.
    #[error("unknown geocoder {0:?} (use photon or nominatim)")]
    UnknownProvider(String),
    /// The URL is unusable, or TLS cannot be set up.
    #[error(transparent)]
    Online(#[from] OnlineError),
}

/// Which server to ask: the provider's API and its base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreetNameSettings {
    /// Photon or Nominatim.
    pub provider: Provider,
    /// Base URL, e.g. `https://photon.komoot.io`.
    pub url: String,
}

impl StreetNameSettings {
    /// Settings from a provider name (`photon` or `nominatim`, any case)
    /// and a base URL, both checked.
    ///
    /// # Errors
    /// [`StreetNameError::UnknownProvider`]; [`StreetNameError::Online`]
    /// for a URL that is not `http(s)://host[:port][/path]`.
    pub fn new(provider: &str, url: &str) -> Result<Self, StreetNameError> {
        let provider = match provider.trim().to_ascii_lowercase().as_str() {
            "photon" => Provider::Photon,
            "nominatim" => Provider::Nominatim,
            _ => return Err(StreetNameError::UnknownProvider(provider.to_owned())),
        };
        let settings = Self { provider, url: url.trim().to_owned() };
        OnlineGeocoder::new(settings.config())?;
        Ok(settings)
    }

    /// The client configuration: the provider's defaults (1 request/s, 10 s timeout).
    #[must_use]
    pub fn config(&self) -> OnlineConfig {
        OnlineConfig::new(self.provider, self.url.clone())
    }
}

/// The name stored with each answer (`PlaceAddress::provider`).
#[must_use]
pub fn provider_name(provider: Provider) -> &'static str {
    match provider {
        Provider::Photon => "photon",
        Provider::Nominatim => "nominatim",
    }
}

/// How often and how much the task works.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Timing {
    /// Between rounds that found nothing more waiting.
    pub(crate) interval: Duration,
    /// Most places asked about in one round.
    pub(crate) batch: usize,
    /// First and longest pause after a failed round.
    pub(crate) backoff_min: Duration,
    pub(crate) backoff_max: Duration,
    /// First and longest wait before a place that failed is asked again.
    pub(crate) place_retry_min: Duration,
    pub(crate) place_retry_max: Duration,
}

impl Default for Timing {
    fn default() -> Self {
        Self {
            interval: Duration::from_secs(10),
            batch: 32,
            backoff_min: Duration::from_secs(10),
            backoff_max: Duration::from_secs(600),
            place_retry_min: Duration::from_secs(60),
            place_retry_max: Duration::from_secs(3600),
        }
    }
}

/// Most places remembered as failed at once; beyond it the record is
/// cleared (every place is then simply asked again).
const MAX_DEFERRED: usize = 100_000;

/// The running task. Dropping it without [`StreetNames::shutdown`] also
/// stops it, without waiting.
#[derive(Debug)]
pub struct StreetNames {
    stop: watch::Sender<bool>,
    handle: JoinHandle<()>,
}

impl StreetNames {
    /// Starts the task on the current tokio runtime, over the state's store
    /// and metrics. It connects lazily: an unreachable provider is logged
    /// and retried, never fatal.
    ///
    /// # Errors
    /// [`OnlineError`] for an unusable URL or when TLS cannot be set up.
    pub fn start(state: &AppState, settings: &StreetNameSettings) -> Result<Self, OnlineError> {
        let geocoder = OnlineGeocoder::new(settings.config())?;
        tracing::info!(provider = %settings.provider, url = %settings.url, "street names for places from an online geocoder");
        let resolver =
            Resolver::new(state.store.clone(), state.metrics.clone(), geocoder, settings.provider, Timing::default());
        Ok(Self::spawn(resolver))
    }

    fn spawn(resolver: Resolver) -> Self {
        let (stop, stopped) = watch::channel(false);
        let handle = tokio::spawn(run(resolver, stopped));
        Self { stop, handle }
    }

    /// Stops the task and waits for it; a request in flight is abandoned.
    pub async fn shutdown(self) {
        let _ = self.stop.send(true);
        if let Err(e) = self.handle.await {
            tracing::warn!(error = %e, "the street-name task ended abnormally");
        }
    }
}

async fn run(mut resolver: Resolver, mut stopped: watch::Receiver<bool>) {
    let timing = resolver.timing;
    let mut backoff = timing.backoff_min;
    // The first round soon after start: places found before a restart.
    let mut pause = Duration::ZERO;
    loop {
        tokio::select! {
            biased;
            _ = stopped.changed() => break,
            () = tokio::time::sleep(pause) => {}
        }
        pause = match resolver.round(&mut stopped).await {
            Round::Stopped => break,
            Round::More => {
                backoff = timing.backoff_min;
                Duration::ZERO
            }
            Round::Idle => {
                backoff = timing.backoff_min;
                timing.interval
            }
            Round::Failed { answered } => {
                if answered {
                    backoff = timing.backoff_min;
                }
                let wait = backoff;
                backoff = (backoff * 2).min(timing.backoff_max);
                tracing::debug!(retry_in_s = wait.as_secs_f64(), "street-name round failed; backing off");
                wait
            }
        }
    }
    tracing::info!("street-name task stopped");
}

/// How a round ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Round {
    /// Every place waiting (and not deferred) was answered.
    Idle,
    /// A full batch was answered; more may be waiting.
    More,
    /// A lookup or the store failed; `answered`: some places were named first.
    Failed { answered: bool },
    /// Shutdown was asked for.
    Stopped,
}

/// A place to ask about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Pending {
    user: UserId,
    place: i64,
    anchor: Coord,
}

/// When a place that failed may be asked about again.
#[derive(Debug, Clone, Copy)]
struct Retry {
    failures: u32,
    at: Instant,
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The task's state: the client, and the places that failed lately.
struct Resolver {
    store: Arc<dyn Store>,
    metrics: Metrics,
    geocoder: OnlineGeocoder,
    provider: &'static str,
    timing: Timing,
    deferred: HashMap<(UserId, i64), Retry>,
}

impl Resolver {
    fn new(
        store: Arc<dyn Store>,
        metrics: Metrics,
        geocoder: OnlineGeocoder,
        provider: Provider,
        timing: Timing,
    ) -> Self {
        Self { store, metrics, geocoder, provider: provider_name(provider), timing, deferred: HashMap::new() }
    }

    /// One round: reads what is waiting, asks about it place by place and
    /// stores each answer as it comes.
    async fn round(&mut self, stopped: &mut watch::Receiver<bool>) -> Round {
        let (pending, unreadable) = match self.pending().await {
            Ok(found) => found,
            Err(error) => {
                tracing::warn!(%error, "cannot read the places waiting for a street name");
                self.metrics.street_name_error("store");
                return Round::Failed { answered: false };
            }
        };
        let full = pending.len() >= self.timing.batch;
        let mut answered = false;
        for place in pending {
            let answer = tokio::select! {
                biased;
                _ = stopped.changed() => return Round::Stopped,
                answer = self.geocoder.street_name(place.anchor) => answer,
            };
            let address = match answer {
                Ok(address) => address,
                Err(error) => {
                    self.metrics.street_name_lookup("error");
                    self.metrics.street_name_error(error_reason(&error));
                    let retry_in = self.defer(place);
                    tracing::warn!(
                        user = place.user.0,
                        place = place.place,
                        %error,
                        place_retry_in_s = retry_in.as_secs(),
                        "street-name lookup failed"
                    );
                    return Round::Failed { answered };
                }
            };
            self.metrics.street_name_lookup(if address.is_some() { "found" } else { "nothing" });
            if let Err(error) = self.store_answer(place, address).await {
                tracing::warn!(user = place.user.0, place = place.place, %error, "cannot store a street name");
                self.metrics.street_name_error("store");
                return Round::Failed { answered };
            }
            self.deferred.remove(&(place.user, place.place));
            answered = true;
        }
        if unreadable > 0 {
            Round::Failed { answered }
        } else if full {
            Round::More
        } else {
            Round::Idle
        }
    }

    /// The places waiting for an answer, at most a batch, users in turn;
    /// and how many users' places could not be read (logged and counted).
    async fn pending(&self) -> Result<(Vec<Pending>, usize), BoxError> {
        let now = Instant::now();
        let deferred: HashSet<(UserId, i64)> =
            self.deferred.iter().filter(|(_, retry)| retry.at > now).map(|(&key, _)| key).collect();
        let (store, metrics, provider, batch) =
            (self.store.clone(), self.metrics.clone(), self.provider, self.timing.batch);
        let found = tokio::task::spawn_blocking(move || -> Result<_, BoxError> {
            let mut queues = Vec::new();
            let mut unreadable = 0;
            for user in store.list_users()? {
                let book = match PlaceBook::load(&*store, user.id) {
                    Ok(book) => book,
                    Err(error) => {
                        tracing::warn!(user = user.id.0, %error, "cannot read a user's places for street names");
                        metrics.street_name_error("store");
                        unreadable += 1;
                        continue;
                    }
                };
                let waiting: VecDeque<Pending> = book
                    .without_address(provider)
                    .into_iter()
                    .filter(|&(place, _)| !deferred.contains(&(user.id, place)))
                    .take(batch)
                    .map(|(place, anchor)| Pending { user: user.id, place, anchor })
                    .collect();
                if !waiting.is_empty() {
                    queues.push(waiting);
                }
            }
            Ok((take_in_turn(queues, batch), unreadable))
        })
        .await??;
        Ok(found)
    }

    async fn store_answer(&self, place: Pending, address: Option<String>) -> Result<(), BoxError> {
        let row = PlaceAddress {
            address,
            provider: self.provider.to_owned(),
            resolved_at: crate::ingest::routes::now().0,
            lat_e7: place.anchor.lat_e7,
            lon_e7: place.anchor.lon_e7,
        };
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || places::set_address(&*store, place.user, place.place, &row)).await??;
        Ok(())
    }

    /// Records a failure of `place`; returns how long it now waits.
    fn defer(&mut self, place: Pending) -> Duration {
        if self.deferred.len() >= MAX_DEFERRED {
            self.deferred.clear();
        }
        let now = Instant::now();
        let retry = self.deferred.entry((place.user, place.place)).or_insert(Retry { failures: 0, at: now });
        retry.failures = retry.failures.saturating_add(1);
        let doubling = 2_u32.saturating_pow(retry.failures - 1);
        let wait = self.timing.place_retry_min.saturating_mul(doubling).min(self.timing.place_retry_max);
        retry.at = now + wait;
        wait
    }
}

/// Up to `limit` places, one from each user's queue in turn.
fn take_in_turn(mut queues: Vec<VecDeque<Pending>>, limit: usize) -> Vec<Pending> {
    let mut out = Vec::with_capacity(limit.min(queues.iter().map(VecDeque::len).sum()));
    while out.len() < limit && !queues.is_empty() {
        queues.retain_mut(|queue| {
            if out.len() < limit
                && let Some(place) = queue.pop_front()
            {
                out.push(place);
            }
            !queue.is_empty()
        });
    }
    out
}

/// The `reason` label of a failed lookup.
fn error_reason(error: &OnlineError) -> &'static str {
    match error {
        OnlineError::Connect { .. } => "connect",
        OnlineError::Tls { .. } | OnlineError::TlsSetup(_) => "tls",
        OnlineError::Http { .. } => "http",
        OnlineError::Timeout { .. } => "timeout",
        OnlineError::Status { .. } => "status",
        OnlineError::TooLarge { .. } => "too_large",
        OnlineError::BadJson { .. } => "bad_json",
        _ => "other",
    }
}

#[cfg(test)]
mod tests;
