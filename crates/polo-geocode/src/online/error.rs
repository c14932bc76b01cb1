//! What can go wrong asking a provider, with what a log line needs: which
//! server, which status, what was missing from its answer.

use std::time::Duration;

use super::Provider;

/// Why an online lookup gave no answer. Errors are not cached: the next
/// lookup of the same cell asks again.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OnlineError {
    /// The configured base URL cannot be used.
    #[error("invalid {provider} URL {url:?}: {why}")]
    BadUrl {
        /// Which provider it was configured for.
        provider: Provider,
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        why: &'static str,
    },
    /// The TLS client could not be set up (no usable protocol version).
    #[error("cannot set up TLS: {0}")]
    TlsSetup(#[source] rustls::Error),
    /// No TCP connection to the server.
    #[error("cannot connect to {authority}: {source}")]
    Connect {
        /// `host:port`.
        authority: String,
        /// The socket error.
        #[source]
        source: std::io::Error,
    },
    /// The TLS handshake failed (certificate, protocol).
    #[error("TLS handshake with {host} failed: {source}")]
    Tls {
        /// The server name that was verified.
        host: String,
        /// The handshake error.
        #[source]
        source: std::io::Error,
    },
    /// The HTTP exchange failed after connecting (connection reset, bad response).
    #[error("HTTP exchange with {authority} failed: {source}")]
    Http {
        /// `host:port`.
        authority: String,
        /// hyper's error.
        #[source]
        source: hyper::Error,
    },
    /// No complete answer within the configured timeout.
    #[error("{provider} did not answer within {after:?}")]
    Timeout {
        /// The provider asked.
        provider: Provider,
        /// The configured timeout.
        after: Duration,
    },
    /// An HTTP status other than 200.
    #[error("{provider} answered HTTP {status}: {excerpt}")]
    Status {
        /// The provider asked.
        provider: Provider,
        /// The status code, e.g. 429 when the provider's own limit is hit.
        status: u16,
        /// The start of the response body, for the log.
        excerpt: String,
    },
    /// The response body is larger than the client accepts.
    #[error("{provider}'s answer is larger than {limit} bytes")]
    TooLarge {
        /// The provider asked.
        provider: Provider,
        /// The limit, bytes.
        limit: usize,
    },
    /// The body is not JSON, or not the shape the provider documents.
    #[error("{provider} answered with unusable JSON: {what}")]
    BadJson {
        /// The provider asked.
        provider: Provider,
        /// What was wrong or missing, e.g. "no `features` array".
        what: String,
    },
}
