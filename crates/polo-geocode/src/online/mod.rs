//! Street-level names from a Photon or Nominatim server (feature `online`).
//!
//! The offline geocoder knows countries, regions and towns. A street
//! address needs OpenStreetMap, which is too large to bundle, so a user can
//! point polo at a Photon (`https://photon.komoot.io`, or their own) or
//! Nominatim server. Three rules keep that cheap and polite:
//!
//! * **Places only.** The server calls this for places (clusters of stays),
//!   a few per day, never on the ingest path: a lookup waits for the network
//!   and the rate limit, and must never hold up storing points.
//! * **One request per H3 cell** ([`CACHE_RESOLUTION`], 10: about 130 m
//!   across). Lookups in the same cell share the answer, including lookups
//!   that arrive while the request for their cell is in flight. Up to
//!   [`OnlineConfig::cache_capacity`] answers are kept (10,000, about 1 MB),
//!   the oldest forgotten first; "nothing here" is cached, errors are not.
//! * **One request per second** by default ([`OnlineConfig::min_interval`]),
//!   as the public Photon and Nominatim instances ask, with a User-Agent that
//!   names polo, and a timeout ([`OnlineConfig::timeout`], 10 s).
//!
//! ```no_run
//! # async fn demo() -> Result<(), polo_geocode::online::OnlineError> {
//! use polo_domain::Coord;
//! use polo_geocode::online::{OnlineConfig, OnlineGeocoder, Provider};
//! let photon = OnlineGeocoder::new(OnlineConfig::new(Provider::Photon, "https://photon.komoot.io"))?;
//! let name = photon.street_name(Coord::from_degrees(47.3723, 8.5398).unwrap()).await?;
//! // Some("Bahnhofstrasse 1, Zürich")
//! # Ok(()) }
//! ```

mod cache;
mod error;
mod http;
mod limit;
mod parse;

use std::fmt;
use std::time::Duration;

use h3o::{CellIndex, LatLng};
use hyper::StatusCode;
use polo_domain::Coord;

pub use cache::CACHE_RESOLUTION;
pub use error::OnlineError;

use cache::CellCache;
use http::{Connection, Endpoint};
use limit::RateLimit;

/// The User-Agent sent by default: polo, its version and where it comes from,
/// as the providers' usage policies require.
pub const DEFAULT_USER_AGENT: &str = concat!(
    "polo/",
    env!("CARGO_PKG_VERSION"),
    " (self-hosted location history; +https://github.com/polo-location/polo)"
);

/// Which API the server speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Provider {
    /// Photon: `GET {base}/reverse?lat=..&lon=..`, GeoJSON.
    Photon,
    /// Nominatim: `GET {base}/reverse?format=jsonv2&lat=..&lon=..`.
    Nominatim,
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Photon => "Photon",
            Self::Nominatim => "Nominatim",
        })
    }
}

/// How to reach the provider and how politely.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OnlineConfig {
    /// The API the server speaks.
    pub provider: Provider,
    /// Base URL, `http` or `https`, optionally with a path prefix
    /// (`https://nominatim.example.org/api`); `/reverse` is appended.
    pub base_url: String,
    /// The User-Agent header; default [`DEFAULT_USER_AGENT`].
    pub user_agent: String,
    /// The least time between the starts of two requests; default 1 s.
    pub min_interval: Duration,
    /// The most time one request may take, connecting included; default 10 s.
    pub timeout: Duration,
    /// How many cell answers to keep; default 10,000 (about 1 MB).
    pub cache_capacity: usize,
}

impl OnlineConfig {
    /// The defaults for a provider at `base_url`.
    #[must_use]
    pub fn new(provider: Provider, base_url: impl Into<String>) -> Self {
        Self {
            provider,
            base_url: base_url.into(),
            user_agent: DEFAULT_USER_AGENT.to_owned(),
            min_interval: Duration::from_secs(1),
            timeout: Duration::from_secs(10),
            cache_capacity: 10_000,
        }
    }
}

/// A client for one provider, with its cache and rate limit. `Send + Sync`:
/// share one in an `Arc`. Needs a tokio runtime (time, net).
pub struct OnlineGeocoder {
    config: OnlineConfig,
    endpoint: Endpoint,
    cache: CellCache,
    /// Held across a whole request: requests go one at a time, which the
    /// rate limit needs anyway, and a lookup that waited here finds its
    /// cell's answer if the request before it was for the same cell.
    requests: tokio::sync::Mutex<Requests>,
}

/// The state of the one-at-a-time request path.
struct Requests {
    limit: RateLimit,
    connection: Connection,
}

impl fmt::Debug for OnlineGeocoder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OnlineGeocoder").field("config", &self.config).finish_non_exhaustive()
    }
}

impl OnlineGeocoder {
    /// A client for the configured provider. Connects lazily.
    ///
    /// # Errors
    /// [`OnlineError::BadUrl`] for a base URL that is not `http(s)://host[:port][/path]`,
    /// [`OnlineError::TlsSetup`] if rustls cannot be configured.
    pub fn new(config: OnlineConfig) -> Result<Self, OnlineError> {
        Self::with_roots(config, None)
    }

    /// As [`OnlineGeocoder::new`], trusting `roots` (`None`: Mozilla's) for https.
    fn with_roots(config: OnlineConfig, roots: Option<rustls::RootCertStore>) -> Result<Self, OnlineError> {
        let endpoint = Endpoint::parse(config.provider, &config.base_url, roots)?;
        Ok(Self {
            endpoint,
            cache: CellCache::new(config.cache_capacity),
            requests: tokio::sync::Mutex::new(Requests {
                limit: RateLimit::new(config.min_interval),
                connection: Connection::default(),
            }),
            config,
        })
    }

    /// The street-level name of the H3 cell holding `coord`, e.g.
    /// "Bahnhofstrasse 1, Zürich"; `None` where the provider has nothing.
    /// Answers from the cache when the cell was asked before; otherwise
    /// waits for the rate limit and asks the provider about the cell's
    /// centre.
    ///
    /// # Errors
    /// [`OnlineError`] for connection, TLS, HTTP status, timeout and JSON
    /// problems. Errors are not cached.
    pub async fn street_name(&self, coord: Coord) -> Result<Option<String>, OnlineError> {
        let cell = Self::cell(coord);
        if let Some(answer) = self.cache.get(cell) {
            return Ok(answer);
        }
        let mut requests = self.requests.lock().await;
        if let Some(answer) = self.cache.get(cell) {
            return Ok(answer);
        }
        requests.limit.wait().await;
        let centre = LatLng::from(cell);
        let answer = match tokio::time::timeout(self.config.timeout, self.ask(&mut requests.connection, centre)).await {
            Ok(answer) => answer,
            Err(_) => Err(OnlineError::Timeout { provider: self.config.provider, after: self.config.timeout }),
        };
        if answer.is_err() {
            // A half-finished exchange leaves the connection unusable.
            requests.connection = Connection::default();
        }
        let answer = answer?;
        self.cache.insert(cell, answer.clone());
        Ok(answer)
    }

    /// Number of cells with a cached answer.
    #[must_use]
    pub fn cached(&self) -> usize {
        self.cache.len()
    }

    /// The cache cell of a coordinate.
    fn cell(coord: Coord) -> CellIndex {
        // A `Coord` is always finite and in range, which is all `LatLng` checks.
        LatLng::new(coord.lat(), coord.lon()).map_or_else(
            |_| unreachable!("Coord guarantees finite degrees"),
            |position| position.to_cell(CACHE_RESOLUTION),
        )
    }

    /// One request and its parsed answer.
    async fn ask(&self, connection: &mut Connection, at: LatLng) -> Result<Option<String>, OnlineError> {
        let provider = self.config.provider;
        let query = match provider {
            Provider::Photon => format!("/reverse?lat={:.6}&lon={:.6}", at.lat(), at.lng()),
            Provider::Nominatim => {
                format!("/reverse?format=jsonv2&addressdetails=1&lat={:.6}&lon={:.6}", at.lat(), at.lng())
            }
        };
        let target = self.endpoint.target(&query);
        let (status, body) = connection.get(&self.endpoint, provider, &target, &self.config.user_agent).await?;
        if status != StatusCode::OK {
            let excerpt: String = String::from_utf8_lossy(&body).chars().take(200).collect();
            return Err(OnlineError::Status { provider, status: status.as_u16(), excerpt });
        }
        match provider {
            Provider::Photon => parse::photon(&body),
            Provider::Nominatim => parse::nominatim(&body),
        }
    }
}

#[cfg(test)]
mod tests;
