//! The two ends of a replication: a remote instance over HTTP, or the
//! local store (a replication configured in `polo serve` pulls into its
//! own store without a round trip through its own HTTP front door).

use std::sync::Arc;
use std::time::Duration;

use polo_store::{Checkpoint, FeedFilter, Store, StoreError};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use reqwest::{StatusCode, Url};

use crate::feed::{FeedError, FeedRequest, serve_page};
use crate::wire::{ApplyRequest, PeerInfo, WireOutcome, WirePage, decode_entries};

/// Why a peer call failed.
#[derive(Debug, thiserror::Error)]
pub enum PeerError {
    /// The peer could not be reached or the connection broke.
    #[error("{url}: {message}")]
    Transport {
        /// What was called.
        url: String,
        /// What happened.
        message: String,
    },
    /// The peer answered with an error.
    #[error("{url}: HTTP {status}: {message}")]
    Refused {
        /// What was called.
        url: String,
        /// The status.
        status: u16,
        /// The peer's message.
        message: String,
    },
    /// The peer's answer does not decode.
    #[error("{url}: unreadable answer: {message}")]
    Protocol {
        /// What was called.
        url: String,
        /// What is wrong.
        message: String,
    },
    /// The local store failed or refused the data.
    #[error("local store: {0}")]
    Local(String),
}

impl PeerError {
    /// Whether retrying later may help (a 4xx other than 408/429 will not).
    #[must_use]
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Refused { status, .. } => *status >= 500 || *status == 408 || *status == 429,
            Self::Protocol { .. } => false,
            Self::Transport { .. } | Self::Local(_) => true,
        }
    }
}

/// One end of a replication.
#[derive(Clone)]
pub enum Peer {
    /// Another instance, at a base URL, with a replication token.
    Http(HttpPeer),
    /// This process's store.
    Local(Arc<dyn Store>),
}

impl std::fmt::Debug for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(h) => write!(f, "{}", h.base),
            Self::Local(_) => f.write_str("local store"),
        }
    }
}

impl std::fmt::Display for Peer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self, f)
    }
}

/// A remote instance.
#[derive(Clone)]
pub struct HttpPeer {
    base: Url,
    token: HeaderValue,
    client: reqwest::Client,
}

/// Makes ring the process's rustls provider unless one is installed
/// (reqwest is built without a provider of its own).
fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

impl HttpPeer {
    /// A peer at `base` (e.g. `https://polo.example.org`), authenticating
    /// with a replication token.
    ///
    /// # Errors
    /// A URL that is not http(s), or a token that cannot be a header.
    pub fn new(base: &str, token: &str) -> Result<Self, String> {
        let mut base = Url::parse(base).map_err(|e| format!("{base:?} is not a URL: {e}"))?;
        if !matches!(base.scheme(), "http" | "https") {
            return Err(format!("{base} must be an http:// or https:// URL"));
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let token = HeaderValue::from_str(&format!("Bearer {token}"))
            .map_err(|_| "the replication token contains characters a header cannot carry".to_owned())?;
        install_tls_provider();
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .build()
            .map_err(|e| format!("cannot build an HTTP client: {e}"))?;
        Ok(Self { base, token, client })
    }

    fn url(&self, path: &str) -> Url {
        self.base.join(path).unwrap_or_else(|_| self.base.clone())
    }

    async fn call(&self, request: reqwest::RequestBuilder, url: &Url, timeout: Duration) -> Result<Vec<u8>, PeerError> {
        let transport = |e: reqwest::Error| PeerError::Transport { url: url.to_string(), message: error_chain(&e) };
        let response =
            request.header(AUTHORIZATION, self.token.clone()).timeout(timeout).send().await.map_err(transport)?;
        let status = response.status();
        let body = response.bytes().await.map_err(transport)?;
        if status != StatusCode::OK {
            let message = serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("message").and_then(|m| m.as_str()).map(str::to_owned))
                .unwrap_or_else(|| String::from_utf8_lossy(&body).chars().take(300).collect());
            return Err(PeerError::Refused { url: url.to_string(), status: status.as_u16(), message });
        }
        Ok(body.to_vec())
    }

    fn decode<T: serde::de::DeserializeOwned>(url: &Url, body: &[u8]) -> Result<T, PeerError> {
        serde_json::from_slice(body).map_err(|e| PeerError::Protocol { url: url.to_string(), message: e.to_string() })
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

fn local(e: impl std::fmt::Display) -> PeerError {
    PeerError::Local(e.to_string())
}

impl Peer {
    /// The peer's identity and head.
    ///
    /// # Errors
    /// Transport, HTTP or store failures.
    pub async fn info(&self) -> Result<PeerInfo, PeerError> {
        match self {
            Self::Http(h) => {
                let url = h.url("api/v1/replication/info");
                let body = h.call(h.client.get(url.clone()), &url, Duration::from_secs(30)).await?;
                HttpPeer::decode(&url, &body)
            }
            Self::Local(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || -> Result<PeerInfo, StoreError> { PeerInfo::of(&*store) })
                    .await
                    .map_err(local)?
                    .map_err(local)
            }
        }
    }

    /// One page of the peer's feed.
    ///
    /// # Errors
    /// Transport, HTTP or store failures; a malformed cursor.
    pub async fn changes(&self, request: &FeedRequest) -> Result<WirePage, PeerError> {
        match self {
            Self::Http(h) => {
                let mut url = h.url("api/v1/replication/changes");
                {
                    let mut q = url.query_pairs_mut();
                    if let Some(since) = &request.since {
                        q.append_pair("since", since);
                    }
                    q.append_pair("max_points", &request.max_points.to_string());
                    q.append_pair("wait_ms", &request.wait.as_millis().to_string());
                    if let Some(origin) = &request.filter.exclude_origin {
                        q.append_pair("exclude_origin", origin);
                    }
                    for user in &request.filter.users {
                        q.append_pair("user", user);
                    }
                }
                let body = h.call(h.client.get(url.clone()), &url, request.wait + Duration::from_secs(120)).await?;
                HttpPeer::decode(&url, &body)
            }
            Self::Local(store) => serve_page(store.clone(), request.clone()).await.map_err(|e| match e {
                FeedError::BadCursor(m) => PeerError::Refused { url: "local".into(), status: 400, message: m },
                FeedError::Store(e) => local(e),
            }),
        }
    }

    /// The cursor recorded under `name`, if any.
    ///
    /// # Errors
    /// Transport, HTTP or store failures.
    pub async fn checkpoint(&self, name: &str) -> Result<Option<String>, PeerError> {
        match self {
            Self::Http(h) => {
                let mut url = h.url("api/v1/replication/checkpoint");
                url.query_pairs_mut().append_pair("name", name);
                let body = h.call(h.client.get(url.clone()), &url, Duration::from_secs(30)).await?;
                let value: serde_json::Value = HttpPeer::decode(&url, &body)?;
                Ok(value.get("cursor").and_then(|c| c.as_str()).map(str::to_owned))
            }
            Self::Local(store) => {
                let (store, name) = (store.clone(), name.to_owned());
                let found = tokio::task::spawn_blocking(move || store.replication_checkpoint(&name))
                    .await
                    .map_err(local)?
                    .map_err(local)?;
                Ok(found.map(|c| c.cursor()))
            }
        }
    }

    /// Applies a page and its checkpoint.
    ///
    /// # Errors
    /// Transport, HTTP or store failures; undecodable entries.
    pub async fn apply(&self, request: ApplyRequest) -> Result<WireOutcome, PeerError> {
        match self {
            Self::Http(h) => {
                let url = h.url("api/v1/replication/apply");
                let body = serde_json::to_vec(&request).map_err(local)?;
                let call = h.client.post(url.clone()).header(CONTENT_TYPE, "application/json").body(body);
                let body = h.call(call, &url, Duration::from_secs(300)).await?;
                HttpPeer::decode(&url, &body)
            }
            Self::Local(store) => {
                let store = store.clone();
                tokio::task::spawn_blocking(move || apply_locally(&*store, request)).await.map_err(local)?
            }
        }
    }
}

/// Applies an [`ApplyRequest`] to a store (the server's apply route and
/// local peers).
///
/// # Errors
/// [`PeerError::Protocol`] for a malformed cursor or entries (nothing is
/// applied), [`PeerError::Local`] when the store fails.
pub fn apply_locally(store: &dyn Store, request: ApplyRequest) -> Result<WireOutcome, PeerError> {
    let protocol = |message: String| PeerError::Protocol { url: "apply".into(), message };
    let checkpoint = Checkpoint::parse(&request.cursor).map_err(protocol)?;
    let entries = decode_entries(request.entries).map_err(|e| protocol(e.to_string()))?;
    store.replication_apply(&request.name, &entries, &checkpoint).map(WireOutcome::from).map_err(local)
}

/// The filter a pull into `target_instance` asks for.
#[must_use]
pub fn pull_filter(target_instance: &str, users: &[String]) -> FeedFilter {
    FeedFilter { users: users.to_vec(), exclude_origin: Some(target_instance.to_owned()) }
}
