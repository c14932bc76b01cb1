//! Who is on the other end of a request: the client's address, whether it
//! reached polo over HTTPS, and whether it is inside the admin networks.
//!
//! **Why one place:** the back-off, the share-link guard, the admin-network
//! check, session cookies and the access log all ask these questions, and
//! behind a reverse proxy the honest answers are not the TCP peer's. polo
//! believes `X-Forwarded-For` and `X-Forwarded-Proto` only from a peer inside
//! a **trusted proxy** network (`--trusted-proxy`); from anyone else those
//! headers are ignored, since any client can send them.
//!
//! The client is the rightmost `X-Forwarded-For` hop that is not itself a
//! trusted proxy (each proxy appends the address it saw), so a client cannot
//! choose its own address by sending the header. `X-Forwarded-Proto` counts
//! only from a trusted peer, and only its last value (the one the proxy wrote).
//!
//! The front door ([`crate::app`]) identifies every request once and puts the
//! [`Client`] into its extensions. Without the front door ([`crate::router`]
//! alone, as in-process tests use it) a request is identified under the
//! default policy: the TCP peer from `ConnectInfo`, no trusted proxies, the
//! loopback admin networks. A request without any peer address is never in
//! an admin network.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, HeaderMap};
use axum::middleware::Next;
use axum::response::Response;

use crate::error::ApiError;
use crate::options::{IpNetwork, ServerOptions};

/// How requests are attributed to clients: the front-door settings that
/// decide [`Client`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientPolicy {
    /// Clients allowed on admin routes and `/metrics`.
    pub admin_networks: Vec<IpNetwork>,
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    pub trusted_proxies: Vec<IpNetwork>,
    /// polo terminates TLS itself: every request came over HTTPS.
    pub tls: bool,
}

impl Default for ClientPolicy {
    fn default() -> Self {
        Self { admin_networks: IpNetwork::loopback(), trusted_proxies: Vec::new(), tls: false }
    }
}

/// The client of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client {
    /// The client's address: the TCP peer, or behind a trusted proxy the
    /// address it forwarded. `None` when the server recorded no peer.
    pub ip: Option<IpAddr>,
    /// The request reached polo (or the trusted proxy in front) over HTTPS.
    pub https: bool,
    /// The client is inside the admin networks.
    pub admin_network: bool,
}

impl ClientPolicy {
    /// The policy of [`ServerOptions`].
    #[must_use]
    pub fn from_options(options: &ServerOptions) -> Self {
        Self {
            admin_networks: options.admin_networks.clone(),
            trusted_proxies: options.trusted_proxies.clone(),
            tls: options.tls.is_some(),
        }
    }

    fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|n| n.contains(ip))
    }

    /// Identifies a request from its TCP peer and headers.
    #[must_use]
    pub fn identify(&self, peer: Option<IpAddr>, headers: &HeaderMap) -> Client {
        let peer = peer.map(|ip| ip.to_canonical());
        let proxied = peer.is_some_and(|ip| self.trusts(ip));
        let ip = if proxied { peer.map(|ip| self.forwarded_client(ip, headers)) } else { peer };
        let forwarded_https =
            proxied && last_value(headers, "x-forwarded-proto").is_some_and(|p| p.eq_ignore_ascii_case("https"));
        Client {
            ip,
            https: self.tls || forwarded_https,
            admin_network: ip.is_some_and(|ip| self.admin_networks.iter().any(|n| n.contains(ip))),
        }
    }

    /// Walks `X-Forwarded-For` from the right while the hop that reported the
    /// next address is trusted; stops at an address that cannot be read.
    fn forwarded_client(&self, peer: IpAddr, headers: &HeaderMap) -> IpAddr {
        let hops: Vec<&str> = headers
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .map(str::trim)
            .collect();
        let mut client = peer;
        for hop in hops.iter().rev() {
            if !self.trusts(client) {
                break;
            }
            match parse_hop(hop) {
                Some(ip) => client = ip,
                None => break,
            }
        }
        client
    }
}

/// The last comma-separated value of a header (over all its lines).
fn last_value<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .rfind(|v| !v.is_empty())
}

/// An `X-Forwarded-For` entry: `192.0.2.1`, `2001:db8::1`, `[2001:db8::1]`,
/// or with a port (`192.0.2.1:5000`, `[2001:db8::1]:5000`).
fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim_matches('"');
    let ip = hop
        .parse::<IpAddr>()
        .ok()
        .or_else(|| hop.parse::<SocketAddr>().ok().map(|s| s.ip()))
        .or_else(|| hop.strip_prefix('[')?.strip_suffix(']')?.parse().ok())?;
    Some(ip.to_canonical())
}

impl Client {
    /// The client the front door recorded, or the TCP peer under the
    /// default policy when the request did not pass the front door.
    #[must_use]
    pub fn of(extensions: &Extensions) -> Self {
        if let Some(client) = extensions.get::<Self>() {
            return *client;
        }
        let peer = extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
        ClientPolicy::default().identify(peer, &HeaderMap::new())
    }

    /// Refuses clients outside the admin networks.
    ///
    /// # Errors
    /// 403 `forbidden`, naming the address the request came from (behind a
    /// proxy that is not a `--trusted-proxy`, it is the proxy's).
    pub fn require_admin_network(&self) -> Result<(), ApiError> {
        if self.admin_network {
            return Ok(());
        }
        let from = self.ip.map_or_else(|| "an unknown address".to_owned(), |ip| ip.to_string());
        Err(ApiError::forbidden(format!(
            "admin routes are only served to the admin networks (--admin-network); this request came from {from}"
        )))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Ok(Self::of(&parts.extensions))
    }
}

/// Middleware: records the request's [`Client`] under `policy`.
pub(crate) async fn identify_client(
    State(policy): State<Arc<ClientPolicy>>,
    mut request: Request,
    next: Next,
) -> Response {
    let peer = request.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip());
    let client = policy.identify(peer, request.headers());
    request.extensions_mut().insert(client);
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    fn policy(proxies: &[&str]) -> ClientPolicy {
        ClientPolicy { trusted_proxies: IpNetwork::parse_list(proxies).unwrap(), ..ClientPolicy::default() }
    }

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(*name, HeaderValue::from_static(value));
        }
        map
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn forwarded_headers_count_only_from_trusted_proxies() {
        let forged = headers(&[("x-forwarded-for", "127.0.0.1"), ("x-forwarded-proto", "https")]);
        // No trusted proxy: the headers are the client's own words.
        let client = policy(&[]).identify(ip("203.0.113.9"), &forged);
        assert_eq!(client, Client { ip: ip("203.0.113.9"), https: false, admin_network: false });
        // From an untrusted peer, even with a proxy configured.
        let client = policy(&["10.0.0.0/8"]).identify(ip("203.0.113.9"), &forged);
        assert_eq!(client, Client { ip: ip("203.0.113.9"), https: false, admin_network: false });
        // From the trusted proxy: the forwarded client, and HTTPS.
        let client = policy(&["10.0.0.0/8"]).identify(ip("10.0.0.2"), &forged);
        assert_eq!(client, Client { ip: ip("127.0.0.1"), https: true, admin_network: true });
    }

    #[test]
    fn the_client_is_the_rightmost_untrusted_hop() {
        let policy = policy(&["10.0.0.0/8", "fd00::/8"]);
        let chain = headers(&[("x-forwarded-for", "127.0.0.1, 198.51.100.7"), ("x-forwarded-for", "10.1.1.1")]);
        // The client claimed to be 127.0.0.1; the outer proxy saw 198.51.100.7.
        let client = policy.identify(ip("10.0.0.2"), &chain);
        assert_eq!((client.ip, client.admin_network), (ip("198.51.100.7"), false));
        // Ports, brackets and v4-mapped addresses.
        for (value, want) in [
            ("198.51.100.7:4711", "198.51.100.7"),
            ("[2001:db8::7]:4711", "2001:db8::7"),
            ("[2001:db8::7]", "2001:db8::7"),
            ("::ffff:198.51.100.7", "198.51.100.7"),
        ] {
            let mut map = HeaderMap::new();
            map.insert("x-forwarded-for", HeaderValue::from_str(value).unwrap());
            assert_eq!(policy.identify(ip("fd00::1"), &map).ip, ip(want), "{value}");
        }
        // An unreadable hop stops the walk at the last trusted one; no header: the proxy itself.
        let junk = headers(&[("x-forwarded-for", "198.51.100.7, unknown")]);
        assert_eq!(policy.identify(ip("10.0.0.2"), &junk).ip, ip("10.0.0.2"));
        assert_eq!(policy.identify(ip("10.0.0.2"), &HeaderMap::new()).ip, ip("10.0.0.2"));
        // Only trusted hops: the leftmost.
        let all_trusted = headers(&[("x-forwarded-for", "10.9.9.9, 10.8.8.8")]);
        assert_eq!(policy.identify(ip("10.0.0.2"), &all_trusted).ip, ip("10.9.9.9"));
    }

    #[test]
    fn https_from_tls_or_the_proxys_last_proto() {
        let policy = policy(&["10.0.0.0/8"]);
        let proto = |value: &'static str| headers(&[("x-forwarded-proto", value)]);
        assert!(policy.identify(ip("10.0.0.2"), &proto("HTTPS")).https);
        assert!(!policy.identify(ip("10.0.0.2"), &proto("http")).https);
        assert!(!policy.identify(ip("10.0.0.2"), &proto("https, http")).https, "the proxy's own value is last");
        let tls = ClientPolicy { tls: true, ..ClientPolicy::default() };
        assert!(tls.identify(ip("203.0.113.9"), &HeaderMap::new()).https);
    }

    #[test]
    fn without_the_front_door_the_peer_counts_under_the_default_policy() {
        let mut extensions = Extensions::new();
        assert_eq!(Client::of(&extensions), Client { ip: None, https: false, admin_network: false });
        assert!(Client::of(&extensions).require_admin_network().unwrap_err().message.contains("unknown address"));
        extensions.insert(ConnectInfo("127.0.0.1:5000".parse::<SocketAddr>().unwrap()));
        assert!(Client::of(&extensions).require_admin_network().is_ok());
        extensions.insert(ConnectInfo("192.0.2.1:5000".parse::<SocketAddr>().unwrap()));
        let e = Client::of(&extensions).require_admin_network().unwrap_err();
        assert_eq!((e.status.as_u16(), e.code), (403, "forbidden"));
        assert!(e.message.contains("192.0.2.1") && e.message.contains("--admin-network"), "{}", e.message);
    }
}
