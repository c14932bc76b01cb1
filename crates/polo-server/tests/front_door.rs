//! The front door over real sockets: the Host filter drops connections
//! without a byte, `/metrics` is admin-only, TLS terminates with rustls,
//! access logs are JSON lines, and shutdown lets in-flight requests finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{Request, StatusCode};
use axum::routing::get;
use polo_server::options::{AccessLog, AllowedHosts, IpNetwork, TlsFiles};
use polo_server::{AccessLogger, AppState, Metrics, ServeError, ServerOptions};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;
use tower::ServiceExt;

struct Server {
    addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    task: JoinHandle<Result<(), ServeError>>,
    metrics: Metrics,
    _dir: tempfile::TempDir,
}

impl Server {
    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        tokio::time::timeout(Duration::from_secs(10), self.task).await.unwrap().unwrap().unwrap();
    }
}

fn state(dir: &tempfile::TempDir) -> AppState {
    let store = polo_store_sqlite::SqliteStore::open(dir.path().join("polo.sqlite")).unwrap();
    AppState::new(Arc::new(store)).unwrap()
}

async fn start(options: ServerOptions) -> Server {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir);
    let metrics = state.metrics.clone();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(polo_server::serve(listener, state, options, async move {
        let _ = stopped.await;
    }));
    Server { addr, stop: Some(stop), task, metrics, _dir: dir }
}

fn quiet(options: ServerOptions) -> ServerOptions {
    ServerOptions { access_log: AccessLog::Off, ..options }
}

/// Sends raw bytes and reads until the server closes; an RST counts as closed.
async fn raw(addr: SocketAddr, request: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request.as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut response)).await;
    match read.expect("the server neither answered nor closed the connection") {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("read failed: {e}"),
    }
    response
}

fn get_request(path: &str, host: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n")
}

fn status_of(response: &[u8]) -> u16 {
    String::from_utf8_lossy(response).split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

#[tokio::test]
async fn a_wrong_host_gets_zero_bytes_and_the_right_one_gets_200() {
    let allowed = AllowedHosts::parse(&["polo.example.org"]).unwrap();
    let server = start(quiet(ServerOptions { allowed_hosts: allowed, ..ServerOptions::default() })).await;

    let response = raw(server.addr, &get_request("/healthz", "evil.example")).await;
    assert!(response.is_empty(), "a forged Host got a response: {:?}", String::from_utf8_lossy(&response));
    // No Host at all (HTTP/1.0) and two Host headers are dropped too.
    assert!(raw(server.addr, "GET /healthz HTTP/1.0\r\n\r\n").await.is_empty());
    let two = "GET /healthz HTTP/1.1\r\nHost: polo.example.org\r\nHost: evil.example\r\n\r\n";
    assert!(raw(server.addr, two).await.is_empty());
    // Absolute-form target naming another host.
    let absolute = "GET http://evil.example/healthz HTTP/1.1\r\nHost: polo.example.org\r\nConnection: close\r\n\r\n";
    assert!(raw(server.addr, absolute).await.is_empty());

    // Case-insensitive, port-agnostic.
    for host in ["polo.example.org", "POLO.Example.ORG", "polo.example.org:8443", "polo.example.org."] {
        let response = raw(server.addr, &get_request("/healthz", host)).await;
        assert_eq!(status_of(&response), 200, "{host}: {}", String::from_utf8_lossy(&response));
    }

    let metrics = server.metrics.render();
    assert!(metrics.contains("polo_front_door_dropped_total{reason=\"host\"} 4"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn without_a_list_every_host_is_answered_with_secure_headers() {
    let server = start(quiet(ServerOptions::default())).await;
    let response = raw(server.addr, &get_request("/healthz", "anything.example")).await;
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    assert_eq!(status_of(&response), 200, "{text}");
    for header in ["x-content-type-options: nosniff", "x-frame-options: deny", "referrer-policy: no-referrer"] {
        assert!(text.contains(header), "missing {header}: {text}");
    }
    assert!(!text.contains("strict-transport-security"), "HSTS only under TLS");
    server.stop().await;
}

fn metrics_request(peer: Option<&str>) -> Request<Body> {
    let mut request = Request::get("/metrics").body(Body::empty()).unwrap();
    if let Some(peer) = peer {
        request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    }
    request
}

#[tokio::test]
async fn metrics_are_admin_only_and_labelled_by_route_template() {
    let dir = tempfile::tempdir().unwrap();
    let app = polo_server::app(state(&dir), &ServerOptions::default(), AccessLogger::off());

    for peer in [Some("10.1.2.3:5000"), Some("[2001:db8::1]:5000"), None] {
        let response = app.clone().oneshot(metrics_request(peer)).await.unwrap();
        assert_eq!(response.status(), StatusCode::FORBIDDEN, "{peer:?}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "forbidden");
        assert!(body["message"].as_str().unwrap().contains("admin"));
    }

    // Unmatched API paths (others are the web app's, answered with index.html).
    for path in ["/healthz", "/healthz", "/readyz", "/api/no/such/path/42"] {
        let request = Request::get(path).body(Body::empty()).unwrap();
        app.clone().oneshot(request).await.unwrap();
    }
    let response = app.clone().oneshot(metrics_request(Some("127.0.0.1:5000"))).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    let text = String::from_utf8(body.to_vec()).unwrap();
    assert!(
        text.contains("http_request_duration_seconds_count{method=\"GET\",route=\"/healthz\",status=\"2xx\"} 2"),
        "{text}"
    );
    assert!(text.contains("route=\"/readyz\""), "{text}");
    assert!(text.contains("route=\"unmatched\",status=\"4xx\""), "{text}");
    assert!(!text.contains("/no/such/path"), "raw paths never become labels: {text}");
    assert!(text.contains("http_request_duration_seconds_bucket{"), "{text}");
    assert!(text.contains("polo_queue_depth 0"), "{text}");

    // Another admin network replaces the loopback default.
    let options =
        ServerOptions { admin_networks: IpNetwork::parse_list(&["10.0.0.0/8"]).unwrap(), ..Default::default() };
    let app = polo_server::app(state(&dir), &options, AccessLogger::off());
    let allowed = app.clone().oneshot(metrics_request(Some("10.9.8.7:1"))).await.unwrap();
    assert_eq!(allowed.status(), StatusCode::OK);
    let refused = app.oneshot(metrics_request(Some("127.0.0.1:1"))).await.unwrap();
    assert_eq!(refused.status(), StatusCode::FORBIDDEN);
}

const ROOT_PW: &str = "root password";

/// An app over a store with the administrator `root`.
fn app_with_admin(dir: &tempfile::TempDir, options: &ServerOptions) -> Router {
    let state = state(dir);
    let hash = polo_server::auth::hash_password(ROOT_PW).unwrap();
    state.store.create_user("root", &hash, true).unwrap();
    polo_server::app(state, options, AccessLogger::off())
}

/// A request as the front door hands it on: from `peer`, with `headers`.
fn from_peer(method: &str, path: &str, peer: &str, headers: &[(&str, &str)], body: Option<Value>) -> Request<Body> {
    let mut request = Request::builder().method(method).uri(path);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let body = match body {
        Some(v) => {
            request = request.header("content-type", "application/json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let mut request = request.body(body).unwrap();
    request.extensions_mut().insert(ConnectInfo(peer.parse::<SocketAddr>().unwrap()));
    request
}

async fn send(app: &Router, request: Request<Body>) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (parts, body) = response.into_parts();
    let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
    (parts.status, parts.headers, serde_json::from_slice(&bytes).unwrap_or(Value::Null))
}

fn root_basic() -> String {
    use base64::Engine;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("root:{ROOT_PW}")))
}

/// Every admin route, with a request body that the route accepts.
fn admin_requests() -> Vec<(&'static str, &'static str, Option<Value>)> {
    vec![
        ("GET", "/api/v1/users", None),
        ("POST", "/api/v1/users", Some(serde_json::json!({"name": "carol", "password": "carol password"}))),
        ("GET", "/api/v1/admin/settings", None),
        ("PUT", "/api/v1/admin/settings", Some(serde_json::json!({"instance_name": "taken over"}))),
        ("GET", "/api/v1/replication/tasks", None),
        ("POST", "/api/v1/replication/tasks/none/pause", None),
    ]
}

#[tokio::test]
async fn every_admin_route_answers_only_the_admin_networks() {
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_admin(&dir, &ServerOptions::default());
    let auth = root_basic();
    for (method, path, body) in admin_requests() {
        for (peer, ip) in [("10.1.2.3:5000", "10.1.2.3"), ("[2001:db8::1]:5000", "2001:db8::1")] {
            let request = from_peer(method, path, peer, &[("authorization", &auth)], body.clone());
            let (status, _, reply) = send(&app, request).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} from {peer}: {reply}");
            assert_eq!(reply["code"], "forbidden");
            let message = reply["message"].as_str().unwrap();
            assert!(message.contains("--admin-network") && message.contains(ip), "{message}");
        }
        // Outsiders learn nothing about credentials either: the same 403 without any.
        let (status, _, _) = send(&app, from_peer(method, path, "10.1.2.3:5000", &[], body.clone())).await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{method} {path} anonymously");
    }
    // Nothing changed; from loopback the same requests are served.
    for (method, path, body) in admin_requests() {
        let (status, _, reply) =
            send(&app, from_peer(method, path, "127.0.0.1:5000", &[("authorization", &auth)], body)).await;
        let want = if path.contains("/tasks/") {
            StatusCode::NOT_FOUND
        } else if method == "POST" {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        };
        assert_eq!(status, want, "{method} {path} from loopback: {reply}");
        if path == "/api/v1/admin/settings" && method == "GET" {
            assert_eq!(reply["instance_name"], "polo", "the outside PUT changed nothing");
        }
        if path == "/api/v1/users" && method == "GET" {
            assert_eq!(reply["users"].as_array().unwrap().len(), 1, "the outside POST created nobody: {reply}");
        }
    }
    // Routes that are not admin routes answer the admin anywhere.
    let (status, _, _) =
        send(&app, from_peer("GET", "/api/v1/me", "10.1.2.3:5000", &[("authorization", &auth)], None)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_forwarded_client_counts() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        ServerOptions { trusted_proxies: IpNetwork::parse_list(&["10.0.0.0/8"]).unwrap(), ..ServerOptions::default() };
    let app = app_with_admin(&dir, &options);
    let auth = root_basic();
    for (peer, forwarded_for, want) in [
        // The proxy on 10.0.0.2 forwards an outside client.
        ("10.0.0.2:40000", Some("203.0.113.5"), StatusCode::FORBIDDEN),
        // The proxy forwards a client on the server itself.
        ("10.0.0.2:40000", Some("127.0.0.1"), StatusCode::OK),
        // Anyone else's X-Forwarded-For is their own claim.
        ("203.0.113.5:40000", Some("127.0.0.1"), StatusCode::FORBIDDEN),
        // A client that prepends its own claim is still the address the proxy saw.
        ("10.0.0.2:40000", Some("127.0.0.1, 203.0.113.5"), StatusCode::FORBIDDEN),
    ] {
        let mut headers = vec![("authorization", auth.as_str())];
        headers.extend(forwarded_for.map(|f| ("x-forwarded-for", f)));
        let (status, _, reply) = send(&app, from_peer("GET", "/api/v1/users", peer, &headers, None)).await;
        assert_eq!(status, want, "{peer} forwarding {forwarded_for:?}: {reply}");
        let (status, _, _) = send(&app, from_peer("GET", "/metrics", peer, &headers, None)).await;
        assert_eq!(status, want, "/metrics from {peer} forwarding {forwarded_for:?}");
    }

    // A loopback proxy without --trusted-proxy makes every client look local: with it, they do not.
    let options =
        ServerOptions { trusted_proxies: IpNetwork::parse_list(&["127.0.0.1"]).unwrap(), ..ServerOptions::default() };
    let dir = tempfile::tempdir().unwrap();
    let app = app_with_admin(&dir, &options);
    let headers = [("authorization", auth.as_str()), ("x-forwarded-for", "198.51.100.9")];
    let (status, _, reply) = send(
        &app,
        from_peer(
            "PUT",
            "/api/v1/admin/settings",
            "127.0.0.1:1",
            &headers,
            Some(serde_json::json!({"instance_name": "x"})),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{reply}");
    assert!(reply["message"].as_str().unwrap().contains("198.51.100.9"), "{reply}");
}

#[tokio::test]
async fn session_cookies_are_secure_when_a_trusted_proxy_says_https() {
    let dir = tempfile::tempdir().unwrap();
    let options =
        ServerOptions { trusted_proxies: IpNetwork::parse_list(&["10.0.0.0/8"]).unwrap(), ..ServerOptions::default() };
    let app = app_with_admin(&dir, &options);
    let login = || Some(serde_json::json!({"username": "root", "password": ROOT_PW}));
    for (peer, proto, secure) in [
        ("10.0.0.2:40000", Some("https"), true),
        ("10.0.0.2:40000", Some("http"), false),
        ("10.0.0.2:40000", None, false),
        // An untrusted peer's X-Forwarded-Proto is ignored.
        ("203.0.113.5:40000", Some("https"), false),
    ] {
        let headers: Vec<(&str, &str)> = proto.map(|p| ("x-forwarded-proto", p)).into_iter().collect();
        let (status, response_headers, reply) =
            send(&app, from_peer("POST", "/api/v1/session", peer, &headers, login())).await;
        assert_eq!(status, StatusCode::OK, "{reply}");
        let cookie = response_headers[axum::http::header::SET_COOKIE].to_str().unwrap();
        assert_eq!(cookie.contains("; Secure"), secure, "{peer} {proto:?}: {cookie}");
    }
}

/// The pattern documented on `BodyLimits`: the default applies to every
/// route; a route that needs more sets its own limit, and the innermost wins.
#[tokio::test]
async fn bodies_over_the_default_limit_are_refused_unless_the_route_allows_more() {
    use axum::extract::DefaultBodyLimit;
    use axum::routing::post;
    let limits = ServerOptions::default().body_limits;
    let echo = |body: axum::body::Bytes| async move { body.len().to_string() };
    let app = Router::new()
        .route("/small", post(echo))
        .route("/big", post(echo).layer(DefaultBodyLimit::max(limits.ingest)))
        .layer(DefaultBodyLimit::max(limits.default));
    let two_mib = vec![b'x'; 2 << 20];
    let small = app.clone().oneshot(Request::post("/small").body(Body::from(two_mib.clone())).unwrap()).await.unwrap();
    assert_eq!(small.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let big = app.oneshot(Request::post("/big").body(Body::from(two_mib)).unwrap()).await.unwrap();
    assert_eq!(big.status(), StatusCode::OK);
}

#[tokio::test]
async fn tls_is_terminated_with_rustls() {
    let dir = tempfile::tempdir().unwrap();
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, certified.cert.pem()).unwrap();
    std::fs::write(&key_path, certified.signing_key.serialize_pem()).unwrap();
    let options = quiet(ServerOptions {
        tls: Some(TlsFiles { cert: cert_path, key: key_path }),
        allowed_hosts: AllowedHosts::parse(&["localhost"]).unwrap(),
        ..ServerOptions::default()
    });
    let server = start(options).await;

    let mut roots = rustls::RootCertStore::empty();
    roots.add(certified.cert.der().clone()).unwrap();
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let client = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(client));
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(get_request("/healthz", "localhost").as_bytes()).await.unwrap();
    let mut response = Vec::new();
    let _ = tls.read_to_end(&mut response).await;
    let text = String::from_utf8_lossy(&response).to_ascii_lowercase();
    assert_eq!(status_of(&response), 200, "{text}");
    assert!(text.contains("strict-transport-security: max-age="), "{text}");

    // Plain HTTP to the TLS port is a failed handshake, counted.
    let plain = raw(server.addr, &get_request("/healthz", "localhost")).await;
    assert!(!String::from_utf8_lossy(&plain).contains("200"), "no plain-text answer");
    let metrics = server.metrics.render();
    assert!(metrics.contains("polo_front_door_dropped_total{reason=\"tls\"} 1"), "{metrics}");
    server.stop().await;
}

#[tokio::test]
async fn bad_tls_files_are_named() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.pem");
    let options = quiet(ServerOptions {
        tls: Some(TlsFiles { cert: missing.clone(), key: missing.clone() }),
        ..ServerOptions::default()
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let e = polo_server::serve(listener, state(&dir), options, async {}).await.unwrap_err();
    assert!(e.to_string().contains("missing.pem"), "{e}");
}

#[tokio::test]
async fn access_logs_are_json_lines_without_query_strings() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.jsonl");
    let server = start(ServerOptions { access_log: AccessLog::File(log.clone()), ..ServerOptions::default() }).await;
    let request = "GET /healthz?token=secret HTTP/1.1\r\nHost: localhost\r\nUser-Agent: polo-test/1\r\n\
                   Authorization: Bearer hunter2\r\nConnection: close\r\n\r\n";
    let response = raw(server.addr, request).await;
    assert_eq!(status_of(&response), 200);
    server.stop().await; // flushes the writer

    let text = std::fs::read_to_string(&log).unwrap();
    assert!(!text.contains("secret") && !text.contains("hunter2"), "{text}");
    let line: Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/healthz");
    assert_eq!(line["path"], "/healthz");
    assert_eq!(line["status"], 200);
    assert_eq!(line["peer"], "127.0.0.1");
    assert_eq!(line["user_agent"], "polo-test/1");
    assert!(line["bytes"].as_u64().unwrap() > 0, "{line}");
    assert!(line["duration_ms"].as_f64().unwrap() >= 0.0, "{line}");
    assert!(line["time"].as_str().unwrap().ends_with('Z'), "{line}");
    let keys: Vec<&str> = line.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 9, "{keys:?}");
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let app = Router::new().route(
        "/slow",
        get(|| async {
            tokio::time::sleep(Duration::from_millis(600)).await;
            "done"
        }),
    );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let options = quiet(ServerOptions::default());
    let server = tokio::spawn(async move {
        polo_server::serve_app(
            listener,
            app,
            &options,
            Metrics::new(),
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(10),
        )
        .await
    });
    let request = tokio::spawn(async move { raw(addr, &get_request("/slow", "localhost")).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.send(()).unwrap();
    let response = request.await.unwrap();
    let text = String::from_utf8_lossy(&response);
    assert_eq!(status_of(&response), 200, "{text}");
    assert!(text.ends_with("done"), "{text}");
    tokio::time::timeout(Duration::from_secs(5), server).await.unwrap().unwrap().unwrap();
    assert!(TcpStream::connect(addr).await.is_err(), "the listener is closed after shutdown");
}

/// The real application, not a model of it: the ingest routes take bodies up
/// to `BodyLimits::ingest` (16 MiB) although every other route stops at
/// 1 MiB, and a body over the cap is a JSON 413.
#[tokio::test]
async fn ingest_routes_take_batches_up_to_the_ingest_limit() {
    let dir = tempfile::tempdir().unwrap();
    let state = state(&dir);
    let user = state.store.create_user("alice", "unused", false).unwrap();
    let device = state.store.ensure_device(user.id, "phone").unwrap();
    let (token, hash) = polo_server::auth::new_token();
    state.store.create_token(user.id, device.id, "overland", &hash, polo_store::TokenGrant::default()).unwrap();
    let app = polo_server::app(state, &ServerOptions::default(), AccessLogger::off());
    let limits = ServerOptions::default().body_limits;

    let feature = |i: usize| {
        format!(
            r#"{{"type":"Feature","geometry":{{"type":"Point","coordinates":[8.5,47.{i:07}]}},"properties":{{"timestamp":"2024-03-01T{:02}:{:02}:{:02}Z","speed":1,"horizontal_accuracy":5,"device_id":"phone","padding":"{}"}}}}"#,
            i / 3600 % 24,
            i / 60 % 60,
            i % 60,
            "x".repeat(200)
        )
    };
    let batch = |bytes: usize| {
        let mut features = Vec::new();
        let mut size = 16;
        while size < bytes {
            let f = feature(features.len());
            size += f.len() + 1;
            features.push(f);
        }
        format!(r#"{{"locations":[{}]}}"#, features.join(","))
    };
    let post = |body: String| {
        Request::post("/api/overland")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(body))
            .unwrap()
    };

    let two_mib = batch(2 << 20);
    assert!(two_mib.len() > 2 << 20 && two_mib.len() > limits.default);
    let response = app.clone().oneshot(post(two_mib)).await.unwrap();
    let status = response.status();
    let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
    assert_eq!(status, StatusCode::OK, "{}", String::from_utf8_lossy(&body));
    assert_eq!(&body[..], br#"{"result":"ok"}"#);

    let too_big = "x".repeat(limits.ingest + 1);
    for path in ["/api/overland", "/api/owntracks", "/api/osmand", "/api/v1/points"] {
        let request = Request::post(path)
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {token}"))
            .body(Body::from(too_big.clone()))
            .unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{path}");
        let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["code"], "payload_too_large", "{path}: {body}");
    }
}

/// An app whose one user, alice (no admin), logs in with Basic auth.
struct Alice {
    app: Router,
    store: Arc<dyn polo_store::Store>,
    alice: polo_store::User,
    /// Her `Authorization` header.
    auth: String,
}

fn app_with_alice(dir: &tempfile::TempDir) -> Alice {
    use base64::Engine as _;
    let state = state(dir);
    let store = state.store.clone();
    let hash = polo_server::auth::hash_password("a long password").unwrap();
    let alice = store.create_user("alice", &hash, false).unwrap();
    let app = polo_server::app(state, &ServerOptions::default(), AccessLogger::off());
    let auth = format!("Basic {}", base64::engine::general_purpose::STANDARD.encode("alice:a long password"));
    Alice { app, store, alice, auth }
}

/// Device names enter through many doors; each refuses the names of the
/// attack review with a 400 that names the field, and none is stored.
#[tokio::test]
async fn bad_device_names_are_refused_on_every_ingest_route_and_the_api() {
    let dir = tempfile::tempdir().unwrap();
    let Alice { app, store, alice, auth } = app_with_alice(&dir);
    let call = |method: &str, uri: &str, headers: Vec<(&str, String)>, body: String| {
        let mut request = Request::builder().method(method).uri(uri).header("authorization", auth.clone());
        for (name, value) in headers {
            request = request.header(name, value);
        }
        let app = app.clone();
        let request = request.body(Body::from(body)).unwrap();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
        }
    };
    let json = || vec![("content-type", "application/json".to_owned())];
    let location = r#"{"_type":"location","lat":52.5,"lon":13.4,"tst":1709283789}"#.to_owned();
    let huge = "x".repeat(10_000);

    let (status, body) =
        call("POST", "/api/owntracks", vec![("x-limit-d", "../../etc/passwd".into())], location.clone()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("the X-Limit-D header: the device name contains '/'"));
    let topic =
        format!(r#"{{"_type":"location","lat":52.5,"lon":13.4,"tst":1709283789,"topic":"owntracks/a/{huge}"}}"#);
    let (status, body) = call("POST", "/api/owntracks", json(), topic).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("topic's device: the device name is 10000 characters long"));
    let (status, body) = call("POST", "/api/owntracks?d=.hidden", json(), location).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().contains("query parameter d: the device name starts with '.'"));

    let overland = r#"{"locations":[{"type":"Feature","geometry":{"type":"Point","coordinates":[13.4,52.5]},
        "properties":{"timestamp":"2024-03-01T10:00:00Z","device_id":"<script>"}}]}"#;
    let (status, body) = call("POST", "/api/overland", json(), overland.to_owned()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["error"].as_str().unwrap().starts_with("properties.device_id: the device name contains '<'"));

    let (status, body) =
        call("GET", "/api/osmand?id=ph%00one&lat=52.5&lon=13.4&timestamp=1709283789", vec![], String::new()).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("id: the device name contains the control character U+0000"));

    let (status, body) = call("POST", "/api/v1/devices", json(), format!(r#"{{"name":"{huge}"}}"#)).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("name: the device name is 10000 characters long"));

    // The batch API judges items one by one: the bad name is that item's error, the others are stored.
    let points = r#"[{"time":"2024-03-01T10:00:00Z","lat":52.5,"lon":13.4,"device":"line\nbreak"},
        {"time":"2024-03-01T10:01:00Z","lat":52.5,"lon":13.4,"device":"watch"}]"#;
    let (status, body) = call("POST", "/api/v1/points", json(), points.to_owned()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!((body["added"].as_u64(), body["rejected"].as_u64()), (Some(1), Some(1)), "{body}");
    assert_eq!(body["errors"][0]["index"], 0);
    assert!(body["errors"][0]["reason"].as_str().unwrap().starts_with("device: the device name contains the control"));

    let names: Vec<String> = store.list_devices(alice.id).unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["watch"]);
}

/// Live ingest applies the importers' rule for duplicate JSON keys: a body
/// that names a key twice in one object (at any depth) is refused with 400
/// naming the key and where, on every route, and nothing is stored.
#[tokio::test]
async fn duplicate_json_keys_are_refused_on_every_ingest_route() {
    let dir = tempfile::tempdir().unwrap();
    let Alice { app, store, alice, auth } = app_with_alice(&dir);
    let call = |uri: &str, body: &str| {
        let request = Request::post(uri)
            .header("authorization", auth.clone())
            .header("content-type", "application/json")
            .body(Body::from(body.to_owned()))
            .unwrap();
        let app = app.clone();
        async move {
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let body = axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap();
            (status, serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
        }
    };
    let message = |body: &Value| body["message"].as_str().or(body["error"].as_str()).unwrap_or_default().to_owned();

    let owntracks = r#"{"_type":"location","lat":52.5,"lon":13.4,"lat":-33.9,"tst":1709283789}"#;
    let (status, body) = call("/api/owntracks?d=phone", owntracks).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("the message names the key \"lat\" twice (the second at byte 42)"), "{body}");

    let overland = r#"{"locations":[{"type":"Feature","geometry":{"type":"Point","coordinates":[13.4,52.5]},
        "properties":{"timestamp":"2024-03-01T10:00:00Z","timestamp":"2024-03-02T10:00:00Z"}}]}"#;
    let (status, body) = call("/api/overland?d=phone", overland).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("the body names the key \"timestamp\" twice"), "{body}");

    let osmand = r#"{"id":"phone","lat":52.5,"lon":13.4,"lon":13.5,"timestamp":1709283789}"#;
    let (status, body) = call("/api/osmand", osmand).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("the body names the key \"lon\" twice"), "{body}");

    let points = r#"[{"time":"2024-03-01T10:00:00Z","lat":52.5,"lon":13.4,"device":"a","device":"b"}]"#;
    let (status, body) = call("/api/v1/points", points).await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{body}");
    assert!(message(&body).starts_with("the body names the key \"device\" twice"), "{body}");

    // The same bodies without the repeat are taken.
    let (status, body) = call("/api/owntracks?d=phone", &owntracks.replace(r#""lat":-33.9,"#, "")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let devices: Vec<String> = store.list_devices(alice.id).unwrap().into_iter().map(|d| d.name).collect();
    assert_eq!(devices, ["phone"]);
    let stored = store.count_points(alice.id).unwrap();
    assert_eq!(stored, 1, "only the message without a repeated key is stored");
}

/// `POST /api/v1/replication/apply` reads its body as a stream: a page far
/// over the 1 MiB default is applied (the cap, and that groups are applied
/// while the body arrives, are unit-tested in `replication.rs` and
/// `polo_replication::apply`).
#[tokio::test]
async fn replication_apply_streams_large_bodies() {
    use polo_store::Store as _;
    let dir = tempfile::tempdir().unwrap();
    let source = polo_store_sqlite::SqliteStore::open(dir.path().join("source.sqlite")).unwrap();
    let alice = source.create_user("alice", "h", false).unwrap();
    let phone = source.ensure_device(alice.id, "phone").unwrap();
    for batch in 0..20_i64 {
        let fixes: Vec<polo_domain::Fix> = (0..10_000_i64)
            .map(|i| {
                let t = batch * 10_000 + i;
                // Scattered coordinates: the codec packs a smooth track into a few bytes per point.
                let scatter = (t as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
                let (lat, lon) =
                    ((scatter % 1_700_000_000) as i64 - 850_000_000, (scatter >> 32) as i64 % 1_700_000_000);
                polo_domain::Fix::new(
                    polo_domain::Timestamp(1_600_000_000_000 + t * 1000),
                    polo_domain::Coord { lat_e7: lat as i32, lon_e7: lon as i32 },
                    polo_domain::SourceFormat::Gpx,
                )
            })
            .collect();
        source.insert_points(alice.id, phone.id, &fixes).unwrap();
    }
    let page = source.replication_feed(polo_domain::Seq(0), usize::MAX, &polo_store::FeedFilter::default()).unwrap();
    let wire =
        polo_replication::WirePage::from_feed(source.instance_id().unwrap(), &source.epoch().unwrap(), page, None);
    let request =
        polo_replication::ApplyRequest { name: "from-source".into(), cursor: wire.cursor, entries: wire.entries };
    let body = serde_json::to_vec(&request).unwrap();
    assert!(body.len() > 2 << 20, "{} bytes", body.len());

    let state = state(&dir);
    let target = state.store.clone();
    let secret = "replication-secret";
    target.create_replication_token("peer", &polo_server::auth::sha256(secret.as_bytes())).unwrap();
    let app = polo_server::app(state, &ServerOptions::default(), AccessLogger::off());
    let apply = |body: Body| {
        Request::post("/api/v1/replication/apply")
            .header("content-type", "application/json")
            .header("authorization", format!("Bearer {secret}"))
            .body(body)
            .unwrap()
    };
    let response = app.clone().oneshot(apply(Body::from(body))).await.unwrap();
    let status = response.status();
    let answer: Value =
        serde_json::from_slice(&axum::body::to_bytes(response.into_body(), 1 << 20).await.unwrap()).unwrap();
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(answer["points_added"], 200_000, "{answer}");
    let alice = target.user_by_name("alice").unwrap().unwrap();
    assert_eq!(target.count_points(alice.id).unwrap(), 200_000);
}
