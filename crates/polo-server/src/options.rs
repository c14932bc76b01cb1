//! Front-door settings of the server: which `Host` names it answers, which
//! networks may reach the admin and metrics routes, which reverse proxies
//! are believed about the client, where access logs go, TLS files and
//! request body limits.
//!
//! Every value is parsed and validated here, once, at start-up, so a typo in
//! a flag or the config file stops `polo serve` with a message that names
//! the bad value instead of silently opening (or closing) the door.

use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::str::FromStr;

/// A setting that could not be parsed; the message names the value.
#[derive(Debug, thiserror::Error)]
pub enum OptionsError {
    /// Not a usable host name for `--allowed-host`.
    #[error("invalid allowed host {value:?}: {reason}")]
    Host {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not an `IP/PREFIX` network (or a bare IP) for `--admin-network`.
    #[error("invalid admin network {value:?}: {reason}")]
    Network {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Not an `IP/PREFIX` network (or a bare IP) for `--trusted-proxy`.
    #[error("invalid trusted proxy {value:?}: {reason}")]
    TrustedProxy {
        /// The value as given.
        value: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// `--access-log` got an empty value.
    #[error("invalid access log {value:?}: expected off, stdout or a file path")]
    AccessLog {
        /// The value as given.
        value: String,
    },
    /// Only one of the certificate and key was given.
    #[error("TLS needs both a certificate and a key: {missing} is missing")]
    TlsIncomplete {
        /// Which of the two is missing.
        missing: &'static str,
    },
}

/// Everything [`crate::serve`] needs beyond the listener and the state.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Host names the server answers. Empty: any.
    pub allowed_hosts: AllowedHosts,
    /// Clients allowed on admin and metrics routes.
    pub admin_networks: Vec<IpNetwork>,
    /// Reverse proxies whose `X-Forwarded-For` and `X-Forwarded-Proto` are
    /// believed (see [`crate::client`]). Empty: none, the TCP peer is the client.
    pub trusted_proxies: Vec<IpNetwork>,
    /// Where access logs go.
    pub access_log: AccessLog,
    /// Certificate and key for TLS termination; plain HTTP when `None`.
    pub tls: Option<TlsFiles>,
    /// Request body size limits.
    pub body_limits: BodyLimits,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            allowed_hosts: AllowedHosts::any(),
            admin_networks: IpNetwork::loopback(),
            trusted_proxies: Vec::new(),
            access_log: AccessLog::Stdout,
            tls: None,
            body_limits: BodyLimits::default(),
        }
    }
}

/// PEM files for TLS termination.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// The certificate chain, leaf first.
    pub cert: PathBuf,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

impl TlsFiles {
    /// Pairs a certificate and a key; both or neither.
    ///
    /// # Errors
    /// [`OptionsError::TlsIncomplete`] when only one is given.
    pub fn from_pair(cert: Option<PathBuf>, key: Option<PathBuf>) -> Result<Option<Self>, OptionsError> {
        match (cert, key) {
            (Some(cert), Some(key)) => Ok(Some(Self { cert, key })),
            (None, None) => Ok(None),
            (Some(_), None) => Err(OptionsError::TlsIncomplete { missing: "the key (--tls-key)" }),
            (None, Some(_)) => Err(OptionsError::TlsIncomplete { missing: "the certificate (--tls-cert)" }),
        }
    }
}

/// Request body limits, in bytes.
///
/// `default` applies to every route through axum's `DefaultBodyLimit`. A
/// route that takes larger bodies overrides it on the route itself, e.g.
/// `post(handler).layer(DefaultBodyLimit::max(options.body_limits.ingest))`;
/// the innermost limit wins. Handlers that stream the body instead of using
/// an extractor (`Bytes`, `Json`, `String`, `Form`) must call
/// `axum::RequestExt::with_limited_body` to have the limit applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BodyLimits {
    /// Every route unless overridden: 1 MiB.
    pub default: usize,
    /// For ingest batch routes (Overland, OwnTracks HTTP, …): 16 MiB.
    pub ingest: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        Self { default: 1 << 20, ingest: 16 << 20 }
    }
}

/// Where access logs go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessLog {
    /// Not written.
    Off,
    /// Standard output, one JSON object per line.
    Stdout,
    /// Appended to this file, one JSON object per line.
    File(PathBuf),
}

impl FromStr for AccessLog {
    type Err = OptionsError;

    /// `off`, `stdout` (or `-`), anything else is a file path.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim() {
            "" => Err(OptionsError::AccessLog { value: s.to_owned() }),
            "off" | "none" | "false" => Ok(Self::Off),
            "stdout" | "-" => Ok(Self::Stdout),
            _ => Ok(Self::File(PathBuf::from(s))),
        }
    }
}

/// The `Host` allow-list: lower-case names without port. Empty means any.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AllowedHosts(Vec<String>);

impl AllowedHosts {
    /// Accepts every Host.
    #[must_use]
    pub fn any() -> Self {
        Self(Vec::new())
    }

    /// Parses names such as `polo.example.org`, `Polo.Example.org:443`,
    /// `192.0.2.1` or `[2001:db8::1]`; a port is ignored.
    ///
    /// # Errors
    /// [`OptionsError::Host`] naming the first invalid value.
    pub fn parse<S: AsRef<str>>(names: &[S]) -> Result<Self, OptionsError> {
        let mut hosts = Vec::with_capacity(names.len());
        for name in names {
            let name = name.as_ref();
            let bad = |reason| OptionsError::Host { value: name.to_owned(), reason };
            if name.contains("://") || name.contains('/') {
                return Err(bad("give a bare host name, without scheme or path"));
            }
            if name.contains('*') {
                return Err(bad("wildcards are not supported; list every name"));
            }
            let host = normalize_host(name).ok_or_else(|| bad("not a host name or IP address"))?;
            if !hosts.contains(&host) {
                hosts.push(host);
            }
        }
        Ok(Self(hosts))
    }

    /// True when no list is configured.
    #[must_use]
    pub fn is_any(&self) -> bool {
        self.0.is_empty()
    }

    /// The normalized names.
    #[must_use]
    pub fn names(&self) -> &[String] {
        &self.0
    }

    /// Whether a `Host` header (or `:authority`) value is allowed:
    /// case-insensitive, port ignored, a trailing dot ignored.
    #[must_use]
    pub fn permits(&self, host: &str) -> bool {
        if self.0.is_empty() {
            return true;
        }
        normalize_host(host).is_some_and(|h| self.0.contains(&h))
    }
}

/// Lower-cases `host[:port]`, drops the port and a trailing dot; `None`
/// when it is not a DNS name or IP literal.
fn normalize_host(value: &str) -> Option<String> {
    let value = value.trim();
    let host = if let Some(rest) = value.strip_prefix('[') {
        // [v6]:port or [v6]
        let (inside, after) = rest.split_once(']')?;
        if !(after.is_empty() || after.strip_prefix(':').is_some_and(is_port)) {
            return None;
        }
        let ip: std::net::Ipv6Addr = inside.parse().ok()?;
        return Some(format!("[{ip}]"));
    } else {
        match value.rsplit_once(':') {
            Some((host, port)) if is_port(port) && !host.contains(':') => host,
            Some(_) if value.parse::<std::net::Ipv6Addr>().is_ok() => {
                // A bare IPv6 literal given in a flag.
                let ip: std::net::Ipv6Addr = value.parse().ok()?;
                return Some(format!("[{ip}]"));
            }
            Some(_) => return None,
            None => value,
        }
    };
    let host = host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase();
    let valid = !host.is_empty()
        && host.len() <= 253
        && host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        });
    valid.then_some(host)
}

fn is_port(text: &str) -> bool {
    !text.is_empty() && text.len() <= 5 && text.bytes().all(|b| b.is_ascii_digit())
}

/// An IP network in CIDR notation (`10.0.0.0/8`, `::1/128`); a bare
/// address is a single host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// `127.0.0.0/8` and `::1/128`: the default admin allow-list.
    #[must_use]
    pub fn loopback() -> Vec<Self> {
        vec![
            Self { addr: IpAddr::from([127, 0, 0, 0]), prefix: 8 },
            Self { addr: IpAddr::from(std::net::Ipv6Addr::LOCALHOST), prefix: 128 },
        ]
    }

    /// Whether `ip` is inside the network. IPv4-mapped IPv6 peers
    /// (`::ffff:127.0.0.1`, seen on dual-stack sockets) match IPv4 networks.
    #[must_use]
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip.to_canonical()) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }

    /// Parses a list, naming the first bad value.
    ///
    /// # Errors
    /// [`OptionsError::Network`].
    pub fn parse_list<S: AsRef<str>>(values: &[S]) -> Result<Vec<Self>, OptionsError> {
        values.iter().map(|v| v.as_ref().parse()).collect()
    }

    /// Parses `--trusted-proxy` values, naming the first bad one as a trusted proxy.
    ///
    /// # Errors
    /// [`OptionsError::TrustedProxy`].
    pub fn parse_trusted_proxies<S: AsRef<str>>(values: &[S]) -> Result<Vec<Self>, OptionsError> {
        Self::parse_list(values).map_err(|e| match e {
            OptionsError::Network { value, reason } => OptionsError::TrustedProxy { value, reason },
            other => other,
        })
    }
}

impl FromStr for IpNetwork {
    type Err = OptionsError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let bad = |reason| OptionsError::Network { value: s.to_owned(), reason };
        let text = s.trim();
        let (addr, prefix) = match text.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (text, None),
        };
        let addr: IpAddr = addr.parse().map_err(|_| bad("not an IP address (expected e.g. 10.0.0.0/8 or ::1/128)"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| {
                bad(if addr.is_ipv4() {
                    "the prefix length must be 0 to 32"
                } else {
                    "the prefix length must be 0 to 128"
                })
            })?,
        };
        // Normalize host bits away so Display shows the network itself.
        let addr = match addr {
            IpAddr::V4(a) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(prefix)).unwrap_or(0);
                IpAddr::from((u32::from(a) & mask).to_be_bytes())
            }
            IpAddr::V6(a) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(prefix)).unwrap_or(0);
                IpAddr::from((u128::from(a) & mask).to_be_bytes())
            }
        };
        Ok(Self { addr, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_match_case_insensitively_and_ignore_the_port() {
        let hosts = AllowedHosts::parse(&["Polo.Example.org", "192.0.2.7:8443", "[2001:DB8::1]"]).unwrap();
        assert_eq!(hosts.names(), ["polo.example.org", "192.0.2.7", "[2001:db8::1]"]);
        for ok in
            ["polo.example.org", "POLO.EXAMPLE.ORG:443", "polo.example.org.", "192.0.2.7:80", "[2001:db8::1]:8080"]
        {
            assert!(hosts.permits(ok), "{ok}");
        }
        for no in ["evil.example", "example.org", "polo.example.org.evil", "", "[2001:db8::2]", "polo.example.org:x"] {
            assert!(!hosts.permits(no), "{no}");
        }
        assert!(AllowedHosts::any().permits("anything"));
        assert!(AllowedHosts::parse::<&str>(&[]).unwrap().is_any());
    }

    #[test]
    fn bad_hosts_are_named() {
        for bad in ["https://polo.example.org", "polo.example.org/x", "", "bad host", "*.example.org", "a:b:c"] {
            let e = AllowedHosts::parse(&[bad]).unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
    }

    #[test]
    fn networks_parse_and_contain() {
        let nets = IpNetwork::parse_list(&["10.1.2.3/8", "192.168.1.5", "fd00::/8"]).unwrap();
        assert_eq!(nets[0].to_string(), "10.0.0.0/8");
        assert!(nets[0].contains("10.200.0.1".parse().unwrap()));
        assert!(!nets[0].contains("11.0.0.1".parse().unwrap()));
        assert!(nets[1].contains("192.168.1.5".parse().unwrap()));
        assert!(!nets[1].contains("192.168.1.6".parse().unwrap()));
        assert!(nets[2].contains("fd12::1".parse().unwrap()));
        let loopback = IpNetwork::loopback();
        assert!(loopback.iter().any(|n| n.contains("127.0.0.1".parse().unwrap())));
        assert!(loopback.iter().any(|n| n.contains("::ffff:127.0.0.1".parse().unwrap())), "v4-mapped");
        assert!(loopback.iter().any(|n| n.contains("::1".parse().unwrap())));
        assert!(!loopback.iter().any(|n| n.contains("10.0.0.1".parse().unwrap())));
        assert!("0.0.0.0/0".parse::<IpNetwork>().unwrap().contains("8.8.8.8".parse().unwrap()));
        for bad in ["10.0.0.0/33", "::/129", "example.org", "10.0.0.0/x", ""] {
            let e = bad.parse::<IpNetwork>().unwrap_err();
            assert!(e.to_string().contains(&format!("{bad:?}")), "{e}");
        }
        let e = IpNetwork::parse_trusted_proxies(&["10.0.0.1", "proxy.local"]).unwrap_err();
        assert!(e.to_string().starts_with("invalid trusted proxy \"proxy.local\""), "{e}");
    }

    #[test]
    fn access_log_and_tls_values() {
        assert_eq!("off".parse::<AccessLog>().unwrap(), AccessLog::Off);
        assert_eq!("stdout".parse::<AccessLog>().unwrap(), AccessLog::Stdout);
        assert_eq!("/var/log/polo.jsonl".parse::<AccessLog>().unwrap(), AccessLog::File("/var/log/polo.jsonl".into()));
        assert!("".parse::<AccessLog>().is_err());
        assert!(TlsFiles::from_pair(Some("c".into()), None).unwrap_err().to_string().contains("--tls-key"));
        assert_eq!(TlsFiles::from_pair(None, None).unwrap(), None);
    }
}
