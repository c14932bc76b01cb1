//! The front door: the accept loop, TLS termination, the `Host` filter,
//! telling who the client is ([`crate::client`]), the admin-network guard of
//! `/metrics`, body limits and secure headers.
//!
//! **Why a custom accept loop** instead of `axum::serve`: a request whose
//! `Host` is not on the allow-list must get *no HTTP response at all*, like
//! nginx's `return 444`. Scanners sweeping cloud IP ranges send thousands of
//! requests with forged `Host` headers; answering them (even with a 4xx)
//! confirms a live server and costs a response. Here the hyper service
//! returns an `Err` for such a request, and hyper then closes the connection
//! without writing a byte. That only works when we own the hyper service,
//! hence the loop. It also lets us terminate TLS (rustls, `ring` provider)
//! and put the peer address into every request as axum's `ConnectInfo`.
//!
//! HTTP/1.1 only (plus HTTP/1.0): HTTP/2 would turn a service error into a
//! stream reset on a connection that stays open, and costs the `h2` crate in
//! the build; nothing polo serves needs it yet.
//!
//! **Graceful shutdown:** when the shutdown future completes the listener
//! is closed, idle keep-alive connections are closed, in-flight requests run
//! to completion (at most [`SHUTDOWN_GRACE`]), then [`serve_app`] returns so
//! the caller can flush its writers. Connections may be upgraded to a
//! WebSocket (`GET /api/v1/stream`), which hyper-util's `GracefulShutdown`
//! cannot watch, so [`Watcher`] does its job: a signal to finish, and a
//! sender per connection whose last drop says all are closed. An upgraded
//! connection leaves hyper once upgraded; its socket ends with the live
//! feed, which [`serve`] closes when shutdown begins.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::{ConnectInfo, DefaultBodyLimit, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::{Next, from_fn, from_fn_with_state};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tower::ServiceExt;

use crate::AppState;
use crate::access_log::{AccessLogWriter, AccessLogger, log_request};
use crate::client::{Client, ClientPolicy, identify_client};
use crate::metrics::{Metrics, metrics_handler, record_latency};
use crate::options::{AllowedHosts, ServerOptions, TlsFiles};

/// How long in-flight requests may run after shutdown was asked for.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// A client must finish sending the request head within this time.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// A client must finish the TLS handshake within this time.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// A TLS file could not be read or used; the message names it.
    #[error("TLS: {0}")]
    Tls(String),
    /// The access log could not be opened.
    #[error("{0}")]
    AccessLog(std::io::Error),
    /// Accepting connections failed.
    #[error("accepting connections failed: {0}")]
    Accept(std::io::Error),
}

/// The full application: the routes of [`crate::router`] plus `/metrics`
/// (admin networks only), latency metrics, access logs, the default body
/// limit and secure headers. Every request is first attributed to its
/// client under `options` ([`ClientPolicy`]): the admin-network check of
/// every admin route ([`crate::auth::AdminCaller`]), the back-off and the
/// session cookie's `Secure` read that.
pub fn app(mut state: AppState, options: &ServerOptions, access_log: AccessLogger) -> Router {
    state.body_limits = options.body_limits;
    let metrics = state.metrics.clone();
    let metrics_route = Router::new().route("/metrics", get(metrics_handler)).with_state(metrics.clone());
    crate::router(state)
        .merge(restrict_to_admin_networks(metrics_route))
        // `Router::layer` wraps every route, so these see `MatchedPath`.
        .layer(DefaultBodyLimit::max(options.body_limits.default))
        .layer(from_fn_with_state(access_log, log_request))
        .layer(from_fn_with_state(metrics, record_latency))
        .layer(from_fn_with_state(options.tls.is_some(), secure_headers))
        // Outermost, so that every layer above sees the client.
        .layer(from_fn_with_state(Arc::new(ClientPolicy::from_options(options)), identify_client))
}

/// Serves only to clients inside the admin networks ([`Client::admin_network`]);
/// others get 403 `{"code":"forbidden",…}`. For routes without an
/// [`crate::auth::AdminCaller`], such as `/metrics` (which has no login).
pub fn restrict_to_admin_networks<S>(router: Router<S>) -> Router<S>
where
    S: Clone + Send + Sync + 'static,
{
    router.route_layer(from_fn(admin_guard))
}

async fn admin_guard(request: Request, next: Next) -> Response {
    match Client::of(request.extensions()).require_admin_network() {
        Ok(()) => next.run(request).await,
        Err(e) => e.into_response(),
    }
}

const CSP: &str = "default-src 'self'; img-src 'self' data: blob:; style-src 'self'; script-src 'self'; \
                   object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// Adds the secure headers a handler did not set itself. The CSP goes on
/// HTML only; HSTS only when polo terminates TLS.
async fn secure_headers(State(tls): State<bool>, request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let is_html = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.trim_start().to_ascii_lowercase().starts_with("text/html"));
    let headers = response.headers_mut();
    let mut set = |name: HeaderName, value: &'static str| {
        headers.entry(name).or_insert(HeaderValue::from_static(value));
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    if is_html {
        set(header::CONTENT_SECURITY_POLICY, CSP);
    }
    if tls {
        set(header::STRICT_TRANSPORT_SECURITY, "max-age=31536000");
    }
    response
}

/// Serves [`app`] on `listener` until `shutdown` completes, then finishes
/// in-flight requests (up to [`SHUTDOWN_GRACE`]) and flushes the access log.
///
/// # Errors
/// When the TLS files or the access log cannot be used, or accepting fails.
pub async fn serve(
    listener: TcpListener,
    state: AppState,
    options: ServerOptions,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ServeError> {
    let metrics = state.metrics.clone();
    let (writer, logger) = AccessLogWriter::open(&options.access_log, &metrics).map_err(ServeError::AccessLog)?;
    // Event streams never finish by themselves: end them when shutdown begins.
    let live = state.live.clone();
    let shutdown = async move {
        shutdown.await;
        live.close();
    };
    let app = app(state, &options, logger);
    let result = serve_app(listener, app, &options, metrics, shutdown, SHUTDOWN_GRACE).await;
    writer.finish();
    result
}

/// The accept loop behind [`serve`], over any router (tests use it with
/// their own routes). `grace` bounds the wait for in-flight requests.
///
/// # Errors
/// When the TLS files cannot be used or accepting fails.
pub async fn serve_app(
    listener: TcpListener,
    app: Router,
    options: &ServerOptions,
    metrics: Metrics,
    shutdown: impl Future<Output = ()> + Send + 'static,
    grace: Duration,
) -> Result<(), ServeError> {
    let tls = options.tls.as_ref().map(load_tls).transpose()?.map(tokio_rustls::TlsAcceptor::from);
    let hosts = Arc::new(options.allowed_hosts.clone());
    if hosts.is_any() {
        tracing::warn!("accepting any Host header: set --allowed-host in production");
    } else {
        tracing::info!(hosts = ?hosts.names(), "accepting only these Host names; other requests are dropped");
    }
    let list =
        |networks: &[crate::options::IpNetwork]| networks.iter().map(ToString::to_string).collect::<Vec<_>>().join(",");
    tracing::info!(
        networks = %list(&options.admin_networks),
        trusted_proxies = %list(&options.trusted_proxies),
        tls = tls.is_some(),
        "admin and metrics routes restricted"
    );
    let (stop, stopping) = tokio::sync::watch::channel(false);
    let (open, mut all_closed) = tokio::sync::mpsc::channel::<()>(1);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut accept_errors = 0u32;
    loop {
        let (stream, peer) = tokio::select! {
            () = &mut shutdown => break,
            accepted = listener.accept() => match accepted {
                Ok(pair) => { accept_errors = 0; pair }
                Err(e) => {
                    // EMFILE and friends are transient: back off instead of spinning or dying.
                    accept_errors += 1;
                    tracing::warn!(error = %e, "accept failed");
                    if accept_errors > 1000 {
                        return Err(ServeError::Accept(e));
                    }
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let watcher = Watcher { stop: stopping.clone(), _open: open.clone() };
        let connection = Connection { app: app.clone(), hosts: Arc::clone(&hosts), metrics: metrics.clone(), peer };
        match tls.clone() {
            None => {
                tokio::spawn(async move { connection.serve(stream, watcher).await });
            }
            Some(acceptor) => {
                tokio::spawn(async move {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => connection.serve(stream, watcher).await,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake failed");
                            connection.metrics.front_door_dropped("tls");
                        }
                        Err(_) => {
                            tracing::debug!(%peer, "TLS handshake timed out");
                            connection.metrics.front_door_dropped("tls");
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    tracing::info!(connections = open.strong_count() - 1, "shutting down: finishing in-flight requests");
    stop.send_replace(true);
    drop(open);
    if tokio::time::timeout(grace, all_closed.recv()).await.is_err() {
        tracing::warn!(grace_seconds = grace.as_secs(), "in-flight requests did not finish in time; closing them");
    }
    Ok(())
}

/// What each connection holds: the signal to finish, and its share of the
/// sender whose last drop tells [`serve_app`] that every connection closed.
struct Watcher {
    stop: tokio::sync::watch::Receiver<bool>,
    _open: tokio::sync::mpsc::Sender<()>,
}

/// The error that makes hyper close a connection without a response.
#[derive(Debug, thiserror::Error)]
#[error("request dropped at the front door: Host not allowed")]
struct DropConnection;

struct Connection {
    app: Router,
    hosts: Arc<AllowedHosts>,
    metrics: Metrics,
    peer: SocketAddr,
}

impl Connection {
    async fn serve<I>(self, io: I, watcher: Watcher)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let Self { app, hosts, metrics, peer } = self;
        let service = hyper::service::service_fn(move |mut request: Request<Incoming>| {
            let allowed = host_allowed(&hosts, &request);
            if !allowed {
                metrics.front_door_dropped("host");
            }
            request.extensions_mut().insert(ConnectInfo(peer));
            let app = app.clone();
            async move {
                if !allowed {
                    return Err(DropConnection);
                }
                let response = app.oneshot(request.map(Body::new)).await;
                Ok::<_, DropConnection>(response.unwrap_or_else(|never: Infallible| match never {}))
            }
        });
        let mut builder = hyper::server::conn::http1::Builder::new();
        builder.timer(TokioTimer::new()).header_read_timeout(HEADER_READ_TIMEOUT);
        let connection = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
        let mut connection = std::pin::pin!(connection);
        let Watcher { mut stop, _open } = watcher;
        let finished = tokio::select! {
            finished = connection.as_mut() => finished,
            () = async { drop(stop.wait_for(|stop| *stop).await) } => {
                connection.as_mut().graceful_shutdown();
                connection.await
            }
        };
        if let Err(e) = finished {
            tracing::debug!(%peer, error = %e, "connection closed");
        }
    }
}

/// The request's host, from the absolute-form target (HTTP/1.1 proxies'
/// form) and the `Host` header: every one present must be allowed, and
/// with an allow-list a request without any is dropped.
fn host_allowed<B>(hosts: &AllowedHosts, request: &Request<B>) -> bool {
    if hosts.is_any() {
        return true;
    }
    let from_target = request.uri().authority().map(|a| a.as_str());
    let from_header = match request.headers().get_all(header::HOST).iter().collect::<Vec<_>>().as_slice() {
        [] => None,
        [one] => match one.to_str() {
            Ok(value) => Some(value),
            Err(_) => return false,
        },
        _ => return false, // several Host headers: a smuggling attempt
    };
    if from_target.is_none() && from_header.is_none() {
        return false;
    }
    from_target.is_none_or(|h| hosts.permits(h)) && from_header.is_none_or(|h| hosts.permits(h))
}

fn load_tls(files: &TlsFiles) -> Result<Arc<rustls::ServerConfig>, ServeError> {
    use rustls_pki_types::pem::PemObject;
    use rustls_pki_types::{CertificateDer, PrivateKeyDer};
    let name = |p: &Path| p.display().to_string();
    let certs = CertificateDer::pem_file_iter(&files.cert)
        .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
        .map_err(|e| ServeError::Tls(format!("cannot read the certificate {}: {e}", name(&files.cert))))?;
    if certs.is_empty() {
        return Err(ServeError::Tls(format!("no certificate found in {}", name(&files.cert))));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| ServeError::Tls(format!("cannot read the private key {}: {e}", name(&files.key))))?;
    // The provider is passed explicitly: no process-wide default is installed.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ServeError::Tls(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| {
            ServeError::Tls(format!(
                "the key {} does not fit the certificate {}: {e}",
                name(&files.key),
                name(&files.cert)
            ))
        })?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
