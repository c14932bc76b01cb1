//! A minimal HTTP/1.1 GET client on the workspace's own stack: hyper's
//! client connection, rustls with the Mozilla roots (`webpki-roots`, so a
//! Raspberry Pi without a CA bundle works too), tokio sockets.
//!
//! A full client (reqwest, hyper-util's pooled client) would add dozens of
//! crates for what is one GET at a time to one host. This keeps a single
//! connection open between requests (providers allow keep-alive, and a TLS
//! handshake per lookup would double their work) and opens a new one when
//! the server has closed it.

use std::sync::Arc;

use http_body_util::{BodyExt, Empty, Limited};
use hyper::body::Bytes;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Request, StatusCode, Uri, header};
use hyper_util::rt::TokioIo;
use rustls_pki_types::ServerName;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

use super::{OnlineError, Provider};

/// The largest response body read. Reverse-geocoding answers are a few kB.
pub(crate) const MAX_BODY: usize = 1 << 20;

/// Where requests go: scheme, host, port and the path the provider lives under.
pub(crate) struct Endpoint {
    tls: Option<TlsConnector>,
    host: String,
    port: u16,
    /// The base path without a trailing slash, e.g. "" or "/nominatim".
    prefix: String,
}

impl Endpoint {
    /// Parses a base URL such as `https://photon.komoot.io` or
    /// `http://127.0.0.1:2322/api` (a path prefix is kept).
    /// `roots` are the trusted certificate authorities for https, by default
    /// (`None`) Mozilla's.
    pub(crate) fn parse(
        provider: Provider,
        url: &str,
        roots: Option<rustls::RootCertStore>,
    ) -> Result<Self, OnlineError> {
        let bad = |why| OnlineError::BadUrl { provider, url: url.to_owned(), why };
        let uri: Uri = url.parse().map_err(|_| bad("not a URL"))?;
        let tls = match uri.scheme_str() {
            Some("https") => Some(tls_connector(roots.unwrap_or_else(mozilla_roots))?),
            Some("http") => None,
            _ => return Err(bad("the scheme must be http or https")),
        };
        let authority = uri.authority().ok_or_else(|| bad("no host"))?;
        if authority.as_str().contains('@') {
            return Err(bad("credentials in the URL are not supported"));
        }
        if uri.query().is_some() {
            return Err(bad("a base URL takes no query"));
        }
        let host = authority.host().trim_start_matches('[').trim_end_matches(']').to_owned();
        let port = authority.port_u16().unwrap_or(if tls.is_some() { 443 } else { 80 });
        let prefix = uri.path().trim_end_matches('/').to_owned();
        Ok(Self { tls, host, port, prefix })
    }

    /// `host:port`, for messages and the Host header.
    pub(crate) fn authority(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]:{}", self.host, self.port)
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The path and query of a request for `path_and_query` under the prefix.
    pub(crate) fn target(&self, path_and_query: &str) -> String {
        format!("{}{path_and_query}", self.prefix)
    }
}

impl std::fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Endpoint")
            .field("https", &self.tls.is_some())
            .field("host", &self.host)
            .field("port", &self.port)
            .field("prefix", &self.prefix)
            .finish()
    }
}

/// Mozilla's root certificates, compiled in.
fn mozilla_roots() -> rustls::RootCertStore {
    let mut roots = rustls::RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    roots
}

/// TLS trusting `roots`, with the ring provider the workspace already builds.
fn tls_connector(roots: rustls::RootCertStore) -> Result<TlsConnector, OnlineError> {
    let mut config = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(OnlineError::TlsSetup)?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(TlsConnector::from(Arc::new(config)))
}

/// One kept-alive connection to the endpoint.
#[derive(Default)]
pub(crate) struct Connection {
    sender: Option<SendRequest<Empty<Bytes>>>,
}

impl Connection {
    /// GETs `target` and returns the status and the body (at most [`MAX_BODY`]).
    pub(crate) async fn get(
        &mut self,
        endpoint: &Endpoint,
        provider: Provider,
        target: &str,
        user_agent: &str,
    ) -> Result<(StatusCode, Bytes), OnlineError> {
        let authority = endpoint.authority();
        let http_error = |source| OnlineError::Http { authority: authority.clone(), source };
        let mut reused = self.sender.take();
        if let Some(sender) = reused.as_mut()
            && sender.ready().await.is_err()
        {
            reused = None;
        }
        let sender = match reused {
            Some(sender) => sender,
            None => connect(endpoint).await?,
        };
        let sender = self.sender.insert(sender);
        let request = Request::get(target)
            .header(header::HOST, authority.as_str())
            .header(header::USER_AGENT, user_agent)
            .header(header::ACCEPT, "application/json")
            .body(Empty::new())
            .map_err(|_| OnlineError::BadUrl { provider, url: target.to_owned(), why: "not a valid request target" })?;
        let response = match sender.send_request(request).await {
            Ok(response) => response,
            Err(error) => {
                self.sender = None;
                return Err(http_error(error));
            }
        };
        let status = response.status();
        let body = match Limited::new(response.into_body(), MAX_BODY).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) => {
                self.sender = None;
                return Err(match error.downcast::<hyper::Error>() {
                    Ok(error) => http_error(*error),
                    Err(_) => OnlineError::TooLarge { provider, limit: MAX_BODY },
                });
            }
        };
        Ok((status, body))
    }
}

/// Opens a connection (TCP, then TLS for https) and starts hyper's driver task.
async fn connect(endpoint: &Endpoint) -> Result<SendRequest<Empty<Bytes>>, OnlineError> {
    let authority = endpoint.authority();
    let tcp = TcpStream::connect((endpoint.host.as_str(), endpoint.port))
        .await
        .map_err(|source| OnlineError::Connect { authority: authority.clone(), source })?;
    // Requests are small and answers awaited one by one: no Nagle delay.
    let _ = tcp.set_nodelay(true);
    let http_error = |source| OnlineError::Http { authority: authority.clone(), source };
    match &endpoint.tls {
        None => {
            let (sender, connection) = http1::handshake(TokioIo::new(tcp)).await.map_err(http_error)?;
            tokio::spawn(connection);
            Ok(sender)
        }
        Some(connector) => {
            let name = ServerName::try_from(endpoint.host.clone()).map_err(|_| OnlineError::Tls {
                host: endpoint.host.clone(),
                source: std::io::Error::new(std::io::ErrorKind::InvalidInput, "not a valid server name"),
            })?;
            let tls = connector
                .connect(name, tcp)
                .await
                .map_err(|source| OnlineError::Tls { host: endpoint.host.clone(), source })?;
            let (sender, connection) = http1::handshake(TokioIo::new(tls)).await.map_err(http_error)?;
            tokio::spawn(connection);
            Ok(sender)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints() {
        let photon = Endpoint::parse(Provider::Photon, "https://photon.komoot.io", None).unwrap();
        assert!(photon.tls.is_some());
        assert_eq!(
            (photon.authority(), photon.target("/reverse?lat=1&lon=2")),
            ("photon.komoot.io:443".to_owned(), "/reverse?lat=1&lon=2".to_owned())
        );
        let local = Endpoint::parse(Provider::Nominatim, "http://127.0.0.1:8080/nominatim/", None).unwrap();
        assert!(local.tls.is_none());
        assert_eq!(local.authority(), "127.0.0.1:8080");
        assert_eq!(local.target("/reverse"), "/nominatim/reverse");
        let v6 = Endpoint::parse(Provider::Photon, "http://[::1]:2322", None).unwrap();
        assert_eq!((v6.host.as_str(), v6.authority()), ("::1", "[::1]:2322".to_owned()));
    }

    #[test]
    fn bad_endpoints() {
        for (url, why) in [
            ("photon.komoot.io", "the scheme must be http or https"),
            ("ftp://example.org", "the scheme must be http or https"),
            ("http://user:secret@example.org", "credentials in the URL are not supported"),
            ("http://example.org/?q=1", "a base URL takes no query"),
            ("not a url", "not a URL"),
        ] {
            let error = Endpoint::parse(Provider::Photon, url, None).unwrap_err();
            assert!(matches!(error, OnlineError::BadUrl { why: w, .. } if w == why), "{url}: {error}");
        }
    }
}
