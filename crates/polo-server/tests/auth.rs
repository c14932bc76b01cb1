//! Accounts and authentication, in process: every way to authenticate,
//! CSRF, the back-off, who may call which account route, and who sees
//! whose encounters ("who was I with", `/api/v1/together`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use polo_domain::{Coord, Fix, SourceFormat, Timestamp};
use polo_server::AppState;
use polo_server::auth::{Authenticator, Backoff, hash_password};
use polo_store::Store;
use polo_test_support::TestStore;
use serde_json::{Value, json};
use tower::ServiceExt;

struct App {
    router: Router,
    store: Arc<dyn Store>,
    _backend: TestStore,
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: Value,
}

impl Reply {
    fn code(&self) -> &str {
        self.body["code"].as_str().unwrap_or("")
    }
}

const ALICE_PW: &str = "alice password";
const BOB_PW: &str = "bob password";
const ROOT_PW: &str = "root password";

fn app() -> App {
    let backend = TestStore::new();
    let store = backend.store.clone();
    for (name, pw, admin) in [("alice", ALICE_PW, false), ("bob", BOB_PW, false), ("root", ROOT_PW, true)] {
        store.create_user(name, &hash_password(pw).unwrap(), admin).unwrap();
    }
    let mut state = AppState::new(store.clone()).unwrap();
    // A long first delay, so a slow machine cannot outwait it mid-test.
    let backoff = Backoff { base: Duration::from_secs(30), ..Backoff::default() };
    state.auth = Arc::new(Authenticator::new(store.clone()).with_backoff(backoff));
    let router = polo_server::router(state);
    App { router, store, _backend: backend }
}

fn basic(user: &str, secret: &str) -> String {
    format!("Basic {}", STANDARD.encode(format!("{user}:{secret}")))
}

impl App {
    async fn call(&self, method: Method, path: &str, headers: &[(&str, &str)], body: Option<Value>) -> Reply {
        // Loopback: inside the default admin networks, as `polo serve` without flags has it.
        self.call_from("127.0.0.1", method, path, headers, body).await
    }

    async fn call_from(
        &self,
        ip: &str,
        method: Method,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<Value>,
    ) -> Reply {
        let mut request = Request::builder().method(method).uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let body = match body {
            Some(v) => {
                request = request.header(header::CONTENT_TYPE, "application/json");
                Body::from(v.to_string())
            }
            None => Body::empty(),
        };
        let mut request = request.body(body).unwrap();
        let addr: SocketAddr = format!("{ip}:40000").parse().unwrap();
        request.extensions_mut().insert(ConnectInfo(addr));
        let response = self.router.clone().oneshot(request).await.unwrap();
        let (parts, body) = response.into_parts();
        let bytes = axum::body::to_bytes(body, 1 << 20).await.unwrap();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).unwrap() };
        Reply { status: parts.status, headers: parts.headers, body }
    }

    /// Logs in; returns (the Cookie header value, the CSRF token).
    async fn login(&self, user: &str, password: &str) -> (String, String) {
        let r = self
            .call(Method::POST, "/api/v1/session", &[], Some(json!({"username": user, "password": password})))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        let set_cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
        let cookie = set_cookie.split(';').next().unwrap().to_owned();
        (cookie, r.body["csrf_token"].as_str().unwrap().to_owned())
    }

    async fn token_for(&self, user: &str, password: &str, device: &str) -> (i64, String) {
        let auth = basic(user, password);
        let d = self
            .call(Method::POST, "/api/v1/devices", &[("authorization", &auth)], Some(json!({"name": device})))
            .await;
        assert_eq!(d.status, StatusCode::CREATED, "{}", d.body);
        let id = d.body["id"].as_i64().unwrap();
        let t =
            self.call(Method::POST, &format!("/api/v1/devices/{id}/tokens"), &[("authorization", &auth)], None).await;
        assert_eq!(t.status, StatusCode::CREATED, "{}", t.body);
        (t.body["id"].as_i64().unwrap(), t.body["token"].as_str().unwrap().to_owned())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookie_login_csrf_and_logout() {
    let app = app();
    let r =
        app.call(Method::POST, "/api/v1/session", &[], Some(json!({"username": "alice", "password": ALICE_PW}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["user"]["name"], "alice");
    let csrf = r.body["csrf_token"].as_str().unwrap().to_owned();
    let set_cookie = r.headers[header::SET_COOKIE].to_str().unwrap().to_owned();
    for attribute in ["polo_session=", "HttpOnly", "SameSite=Lax", "Path=/", "Max-Age="] {
        assert!(set_cookie.contains(attribute), "{set_cookie}");
    }
    assert!(!set_cookie.contains("Secure"), "plain HTTP by default: {set_cookie}");
    let cookie = set_cookie.split(';').next().unwrap().to_owned();

    let me = app.call(Method::GET, "/api/v1/me", &[("cookie", &cookie)], None).await;
    assert_eq!(me.status, StatusCode::OK);
    assert_eq!((me.body["user"]["name"].as_str(), me.body["via"].as_str()), (Some("alice"), Some("session")));
    assert_eq!(me.body["csrf_token"].as_str(), Some(csrf.as_str()));

    // Unsafe methods need the CSRF header.
    let body = Some(json!({"name": "phone"}));
    let r = app.call(Method::POST, "/api/v1/devices", &[("cookie", &cookie)], body.clone()).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    let r = app
        .call(Method::POST, "/api/v1/devices", &[("cookie", &cookie), ("x-csrf-token", "wrong")], body.clone())
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    let r = app.call(Method::POST, "/api/v1/devices", &[("cookie", &cookie), ("x-csrf-token", &csrf)], body).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    // Another session's CSRF token does not fit this session.
    let (_, other_csrf) = app.login("alice", ALICE_PW).await;
    let r =
        app.call(Method::DELETE, "/api/v1/session", &[("cookie", &cookie), ("x-csrf-token", &other_csrf)], None).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "csrf_failed"));
    // Bearer and Basic requests are exempt.
    let r = app
        .call(
            Method::POST,
            "/api/v1/devices",
            &[("authorization", &basic("alice", ALICE_PW))],
            Some(json!({"name": "w"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);

    let r = app.call(Method::DELETE, "/api/v1/session", &[("cookie", &cookie), ("x-csrf-token", &csrf)], None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert!(r.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    let r = app.call(Method::GET, "/api/v1/me", &[("cookie", &cookie)], None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"polo\"", "no browser dialog");
    // A wrong password logs nobody in.
    let r = app
        .call(Method::POST, "/api/v1/session", &[], Some(json!({"username": "alice", "password": "nope nope"})))
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"));
    assert!(r.headers.get(header::SET_COOKIE).is_none());
    let r = app.call(Method::POST, "/api/v1/session", &[], Some(json!({"username": "alice"}))).await;
    assert_eq!((r.status.is_client_error(), r.code()), (true, "bad_request"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bearer_basic_and_literal_token_forms() {
    let app = app();
    let (token_id, token) = app.token_for("alice", ALICE_PW, "phone").await;
    assert!(token.starts_with("polo_"), "{token}");
    let me = |auth: String| {
        let app = &app;
        async move { app.call(Method::GET, "/api/v1/me", &[("authorization", &auth)], None).await }
    };
    let r = me(format!("Bearer {token}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["via"].as_str(), r.body["device"]["name"].as_str()), (Some("bearer"), Some("phone")));
    assert_eq!(r.body["user"]["name"], "alice");
    let r = me(basic("alice", ALICE_PW)).await;
    assert_eq!((r.status, r.body["via"].as_str()), (StatusCode::OK, Some("basic_password")));
    assert!(r.body["device"].is_null());
    for auth in [basic("alice", &token), basic(&token, ""), format!("Basic {token}:")] {
        let r = me(auth.clone()).await;
        assert_eq!((r.status, r.body["via"].as_str()), (StatusCode::OK, Some("basic_token")), "{auth}");
        assert_eq!(r.body["device"]["name"], "phone");
    }
    // Wrong secrets (each from its own address, to stay under the back-off).
    for (i, auth) in [
        basic("alice", "wrong password"),
        basic("nobody", ALICE_PW),
        basic("bob", &token),
        format!("Bearer {}x", &token[..token.len() - 1]),
        "Bearer polo_nonsense".to_owned(),
        "Basic !!!".to_owned(),
        "Negotiate abc".to_owned(),
    ]
    .into_iter()
    .enumerate()
    {
        let ip = format!("203.0.113.{i}");
        let r = app.call_from(&ip, Method::GET, "/api/v1/me", &[("authorization", &auth)], None).await;
        assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{auth}");
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"polo\"");
    }
    // A device token without scopes can neither list the devices nor mint tokens.
    let devices =
        app.call(Method::GET, "/api/v1/devices", &[("authorization", &format!("Bearer {token}"))], None).await;
    assert_eq!((devices.status, devices.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", devices.body);
    assert!(devices.body["message"].as_str().unwrap().contains("--scope read"), "{}", devices.body);
    let devices = app.call(Method::GET, "/api/v1/devices", &[("authorization", &basic("alice", ALICE_PW))], None).await;
    let device_id = devices.body["devices"][0]["id"].as_i64().unwrap();
    let r = app
        .call(
            Method::POST,
            &format!("/api/v1/devices/{device_id}/tokens"),
            &[("authorization", &format!("Bearer {token}"))],
            None,
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    // Listing shows the token without its secret; revoking ends it.
    let list = app.call(Method::GET, "/api/v1/tokens", &[("authorization", &basic("alice", ALICE_PW))], None).await;
    assert_eq!(list.body["tokens"][0]["id"], token_id);
    assert!(list.body["tokens"][0]["last_used"].is_string(), "{}", list.body);
    assert!(!list.body.to_string().contains(&token));
    let r = app
        .call(
            Method::DELETE,
            &format!("/api/v1/tokens/{token_id}"),
            &[("authorization", &basic("alice", ALICE_PW))],
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_eq!(me(format!("Bearer {token}")).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(me(format!("Basic {token}:")).await.status, StatusCode::UNAUTHORIZED);
}

/// The attack review's case: twelve wrong passwords for alice from one address.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_passwords_block_the_guesser_not_the_user_elsewhere_nor_her_devices() {
    let app = app();
    let (_, token) = app.token_for("alice", ALICE_PW, "phone").await;
    let (attacker, home) = ("198.51.100.1", "198.51.100.2");
    let wrong = basic("alice", "wrong password");
    let mut statuses = Vec::new();
    for _ in 0..12 {
        let r = app.call_from(attacker, Method::GET, "/api/v1/me", &[("authorization", &wrong)], None).await;
        statuses.push(r.status.as_u16());
    }
    // Five free failures per (address, user); the sixth is checked, fails and blocks the pair.
    assert_eq!(statuses, [[401; 6].as_slice(), [429; 6].as_slice()].concat());
    // The guesser stays blocked for alice, even with her right password.
    let right = basic("alice", ALICE_PW);
    let r = app.call_from(attacker, Method::GET, "/api/v1/me", &[("authorization", &right)], None).await;
    assert_eq!((r.status, r.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"));
    let retry: u64 = r.headers[header::RETRY_AFTER].to_str().unwrap().parse().unwrap();
    assert!((1..=300).contains(&retry), "{retry}");
    // Alice from home: her password, the web login, and OwnTracks with Basic auth all work.
    let r = app.call_from(home, Method::GET, "/api/v1/me", &[("authorization", &right)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let login = Some(json!({"username": "alice", "password": ALICE_PW}));
    let r = app.call_from(home, Method::POST, "/api/v1/session", &[], login).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // One device ("phone"), so each point has its own time.
    let location = |lat: f64, tst: i64| json!({"_type": "location", "lat": lat, "lon": 8.5, "tst": tst});
    let r = app
        .call_from(
            home,
            Method::POST,
            "/api/owntracks",
            &[("authorization", &right)],
            Some(location(47.1, 1_709_283_701)),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    // Her device tokens are not held up by password failures, not even from the guesser's address.
    for (auth, lat, tst) in
        [(format!("Bearer {token}"), 47.2, 1_709_283_702), (basic("alice", &token), 47.3, 1_709_283_703)]
    {
        let r = app
            .call_from(attacker, Method::POST, "/api/owntracks", &[("authorization", &auth)], Some(location(lat, tst)))
            .await;
        assert_eq!(r.status, StatusCode::OK, "{auth}: {}", r.body);
    }
    let osmand = format!("/api/osmand?id={token}&lat=47.4&lon=8.5&timestamp=1709283790");
    let r = app.call_from(attacker, Method::POST, &osmand, &[], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let stored = app.call_from(home, Method::GET, "/api/v1/points", &[("authorization", &right)], None).await;
    let lats: Vec<f64> = stored.body["points"].as_array().unwrap().iter().map(|p| p["lat"].as_f64().unwrap()).collect();
    for lat in [47.1, 47.2, 47.3, 47.4] {
        assert!(lats.contains(&lat), "{lat} was stored: {lats:?}");
    }
    // Bob from the guesser's address is fine until the address's own allowance (20) runs out.
    let bob = basic("bob", BOB_PW);
    let r = app.call_from(attacker, Method::GET, "/api/v1/me", &[("authorization", &bob)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spraying_many_names_from_one_address_blocks_the_address() {
    let app = app();
    let sprayer = "203.0.113.50";
    for i in 0..20 {
        let auth = basic(&format!("user{i}"), "guess guess");
        let r = app.call_from(sprayer, Method::GET, "/api/v1/me", &[("authorization", &auth)], None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "failure {i} is free");
    }
    let auth = basic("user20", "guess guess");
    let r = app.call_from(sprayer, Method::GET, "/api/v1/me", &[("authorization", &auth)], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED, "the 21st failure is counted");
    let bob = basic("bob", BOB_PW);
    let r = app.call_from(sprayer, Method::GET, "/api/v1/me", &[("authorization", &bob)], None).await;
    assert_eq!((r.status, r.code()), (StatusCode::TOO_MANY_REQUESTS, "rate_limited"), "the address is blocked");
    let r = app.call_from("203.0.113.51", Method::GET, "/api/v1/me", &[("authorization", &bob)], None).await;
    assert_eq!(r.status, StatusCode::OK);
    // Unknown tokens block the address for tokens only.
    let prober = "203.0.113.60";
    for _ in 0..21 {
        let r = app.call_from(prober, Method::GET, "/api/v1/me", &[("authorization", "Bearer polo_x")], None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    }
    let r = app.call_from(prober, Method::GET, "/api/v1/me", &[("authorization", "Bearer polo_x")], None).await;
    assert_eq!(r.status, StatusCode::TOO_MANY_REQUESTS);
    let r = app.call_from(prober, Method::GET, "/api/v1/me", &[("authorization", &bob)], None).await;
    assert_eq!(r.status, StatusCode::OK, "unknown tokens do not block passwords");
}

/// Browsers open their own login dialog for a Basic challenge: only the tracker routes send one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_tracker_ingest_routes_challenge_basic() {
    let app = app();
    for (method, path) in [(Method::GET, "/api/v1/me"), (Method::GET, "/api/v1/points"), (Method::GET, "/api/v1/users")]
    {
        let r = app.call(method, path, &[], None).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Bearer realm=\"polo\"", "{path}");
    }
    let location = json!({"_type": "location", "lat": 1.0, "lon": 2.0, "tst": 1_709_283_789});
    for (method, path, body) in [
        (Method::POST, "/api/owntracks", Some(location)),
        (Method::GET, "/api/osmand?id=x&lat=1&lon=2", None),
        (Method::POST, "/api/osmand?id=x&lat=1&lon=2", None),
    ] {
        let r = app.call(method, path, &[], body).await;
        assert_eq!(r.status, StatusCode::UNAUTHORIZED, "{path}");
        assert_eq!(r.headers[header::WWW_AUTHENTICATE], "Basic realm=\"polo\"", "{path}");
    }
    // The web app's own requests get none at all.
    let r = app.call(Method::POST, "/api/owntracks", &[("x-requested-with", "XMLHttpRequest")], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.headers.get(header::WWW_AUTHENTICATE).is_none());
}

/// `SameSite=Lax` sends the cookie with a cross-site top-level GET: a link must not store points.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osmand_gets_do_not_take_the_session_cookie() {
    let app = app();
    let (cookie, csrf) = app.login("alice", ALICE_PW).await;
    let r = app.call(Method::GET, "/api/osmand?id=planted&lat=1&lon=2", &[("cookie", &cookie)], None).await;
    assert_eq!((r.status, r.code()), (StatusCode::UNAUTHORIZED, "unauthorized"), "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("session cookie"), "{}", r.body);
    let devices = app.call(Method::GET, "/api/v1/devices", &[("cookie", &cookie)], None).await;
    assert_eq!(devices.body["devices"], json!([]), "no device was created");
    // With the CSRF header a cookie POST is the web app's own request, and device credentials work on GET.
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = app.call(Method::POST, "/api/osmand?id=web&lat=1&lon=2", &headers, None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let (_, token) = app.token_for("alice", ALICE_PW, "tracker").await;
    let r = app.call(Method::GET, &format!("/api/osmand?id={token}&lat=1&lon=2"), &[("cookie", &cookie)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}

/// A Traccar-style client authenticates with the token as its device id: it hears what is wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn osmand_authenticates_by_the_device_id_before_judging_the_reading() {
    let app = app();
    let (_, token) = app.token_for("alice", ALICE_PW, "car").await;
    for (path, body, needle) in [
        (format!("/api/osmand?id={token}&lat=north&lon=2"), None, "lat"),
        (format!("/api/osmand?id={token}&lat=1"), None, "no position"),
        (format!("/api/osmand?id={token}&lat=1&lon=2&timestamp=tuesday"), None, "timestamp"),
        ("/api/osmand".to_owned(), Some(json!({"id": token, "lat": 1, "lon": 400})), "lat/lon"),
    ] {
        let r = app.call(Method::POST, &path, &[], body).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "bad_request"), "{path}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains(needle), "{path}: {}", r.body);
    }
    // Without a valid token the same reading is still a 401: nothing is told to strangers.
    let r = app.call(Method::POST, "/api/osmand?id=polo_unknown&lat=north&lon=2", &[], None).await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn changing_the_password_ends_other_sessions_and_the_cached_password() {
    let app = app();
    let (cookie, csrf) = app.login("alice", ALICE_PW).await;
    let (other_cookie, _) = app.login("alice", ALICE_PW).await;
    let old = basic("alice", ALICE_PW);
    assert_eq!(app.call(Method::GET, "/api/v1/me", &[("authorization", &old)], None).await.status, StatusCode::OK);
    let headers = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];
    let r = app
        .call(
            Method::POST,
            "/api/v1/me/password",
            &headers,
            Some(json!({"current_password": "not it!", "new_password": "x"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"));
    let r = app
        .call(
            Method::POST,
            "/api/v1/me/password",
            &headers,
            Some(json!({"current_password": ALICE_PW, "new_password": "short"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "bad_request"));
    let body = json!({"current_password": ALICE_PW, "new_password": "a brand new password"});
    let r = app.call(Method::POST, "/api/v1/me/password", &headers, Some(body)).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(app.call(Method::GET, "/api/v1/me", &[("cookie", &cookie)], None).await.status, StatusCode::OK);
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", &[("cookie", &other_cookie)], None).await.status,
        StatusCode::UNAUTHORIZED
    );
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", &[("authorization", &old)], None).await.status,
        StatusCode::UNAUTHORIZED
    );
    let new = basic("alice", "a brand new password");
    assert_eq!(app.call(Method::GET, "/api/v1/me", &[("authorization", &new)], None).await.status, StatusCode::OK);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devices_list_their_last_point() {
    let app = app();
    let alice = app.store.user_by_name("alice").unwrap().unwrap();
    let phone = app.store.ensure_device(alice.id, "phone").unwrap();
    let fix = |t| Fix::new(Timestamp(t), Coord { lat_e7: 481_000_000, lon_e7: 115_000_000 }, SourceFormat::Api);
    app.store.insert_points(alice.id, phone.id, &[fix(1_700_000_000_000), fix(1_700_000_060_000)]).unwrap();
    app.store.ensure_device(alice.id, "watch").unwrap();
    let r = app.call(Method::GET, "/api/v1/devices", &[("authorization", &basic("alice", ALICE_PW))], None).await;
    assert_eq!(r.status, StatusCode::OK);
    let devices = r.body["devices"].as_array().unwrap();
    assert_eq!(devices.len(), 2);
    assert_eq!(devices[0]["name"], "phone");
    assert_eq!(devices[0]["last_seen"], "2023-11-14T22:14:20.000Z");
    assert_eq!(devices[0]["last_point"]["lat"], 48.1);
    assert!(devices[1]["last_seen"].is_null());
    let r = app
        .call(
            Method::POST,
            "/api/v1/devices",
            &[("authorization", &basic("alice", ALICE_PW))],
            Some(json!({"name": "phone"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "conflict"));
    let r = app
        .call(
            Method::POST,
            "/api/v1/devices",
            &[("authorization", &basic("alice", ALICE_PW))],
            Some(json!({"name": " "})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "bad_request"));
}

/// Every account route × {anonymous, another user, the owner, an admin}.
/// "Owner" is alice, who owns the device and token in the paths.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn authorisation_matrix() {
    let app = app();
    let (alice_token_id, _) = app.token_for("alice", ALICE_PW, "phone").await;
    let alice_device = app.store.list_devices(app.store.user_by_name("alice").unwrap().unwrap().id).unwrap()[0].id.0;
    let who: [(&str, Option<(&str, &str)>); 4] = [
        ("anonymous", None),
        ("other", Some(("bob", BOB_PW))),
        ("owner", Some(("alice", ALICE_PW))),
        ("admin", Some(("root", ROOT_PW))),
    ];
    // (method, path, body, expected status for anonymous, other, owner, admin)
    type Row = (Method, String, Option<Value>, [u16; 4]);
    let rows: Vec<Row> = vec![
        (Method::GET, "/api/v1/me".into(), None, [401, 200, 200, 200]),
        (Method::GET, "/api/v1/devices".into(), None, [401, 200, 200, 200]),
        (Method::POST, "/api/v1/devices".into(), Some(json!({"name": "new"})), [401, 201, 201, 201]),
        (
            Method::POST,
            format!("/api/v1/devices/{alice_device}/tokens"),
            Some(json!({"label": "x"})),
            [401, 404, 201, 404],
        ),
        (Method::GET, "/api/v1/tokens".into(), None, [401, 200, 200, 200]),
        (Method::GET, "/api/v1/users".into(), None, [401, 403, 403, 200]),
        (
            Method::POST,
            "/api/v1/users".into(),
            Some(json!({"name": "carol", "password": "carol password"})),
            [401, 403, 403, 201],
        ),
        (Method::DELETE, format!("/api/v1/tokens/{alice_token_id}"), None, [401, 404, 204, 404]),
        (Method::DELETE, "/api/v1/session".into(), None, [401, 204, 204, 204]),
        (
            Method::POST,
            "/api/v1/me/password".into(),
            Some(json!({"current_password": "x", "new_password": "y"})),
            [401, 403, 403, 403],
        ),
    ];
    for (method, path, body, expected) in rows {
        for ((role, creds), want) in who.iter().zip(expected) {
            let auth = creds.map(|(u, p)| basic(u, p));
            let headers: Vec<(&str, &str)> = auth.iter().map(|a| ("authorization", a.as_str())).collect();
            let r = app.call(method.clone(), &path, &headers, body.clone()).await;
            assert_eq!(r.status.as_u16(), want, "{method} {path} as {role}: {}", r.body);
            if !r.status.is_success() {
                assert!(!r.code().is_empty(), "{method} {path} as {role}: error without a code: {}", r.body);
            }
        }
    }
    // Reads are scoped: each caller sees only their own devices and tokens.
    let devices = |user: &'static str, pw: &'static str| {
        let app = &app;
        async move {
            let r = app.call(Method::GET, "/api/v1/devices", &[("authorization", &basic(user, pw))], None).await;
            r.body["devices"]
                .as_array()
                .unwrap()
                .iter()
                .map(|d| d["name"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(devices("alice", ALICE_PW).await, vec!["phone", "new"]);
    assert_eq!(devices("bob", BOB_PW).await, vec!["new"]);
    let tokens = app.call(Method::GET, "/api/v1/tokens", &[("authorization", &basic("bob", BOB_PW))], None).await;
    assert_eq!(tokens.body["tokens"], json!([]));
    let alice_tokens =
        app.call(Method::GET, "/api/v1/tokens", &[("authorization", &basic("alice", ALICE_PW))], None).await;
    assert_eq!(alice_tokens.body["tokens"].as_array().unwrap().len(), 1, "the owner revoked one of two");
    // The admin created carol, who can log in.
    assert_eq!(
        app.call(Method::GET, "/api/v1/me", &[("authorization", &basic("carol", "carol password"))], None).await.status,
        StatusCode::OK
    );
    let r = app
        .call(
            Method::POST,
            "/api/v1/users",
            &[("authorization", &basic("root", ROOT_PW))],
            Some(json!({"name": "carol", "password": "carol password"})),
        )
        .await;
    assert_eq!((r.status, r.code()), (StatusCode::CONFLICT, "conflict"));
    let r = app.call(Method::GET, "/api/v1/tokens/abc", &[("authorization", &basic("root", ROOT_PW))], None).await;
    assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
    let r = app.call(Method::DELETE, "/api/v1/tokens/abc", &[("authorization", &basic("root", ROOT_PW))], None).await;
    assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"));
}

/// A phone's token (no scopes) ingests and reads its own device only; broader
/// scopes are chosen when a token is made, a token gives at most its own, and
/// revoking a token revokes the tokens, share links and grants it made.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_scopes_and_revoking_what_a_token_made() {
    let app = app();
    let alice = basic("alice", ALICE_PW);
    let (phone_token_id, phone_token) = app.token_for("alice", ALICE_PW, "phone").await;
    let phone = format!("Bearer {phone_token}");
    let call = |method: Method, path: String, auth: String, body: Option<Value>| {
        let app = &app;
        async move { app.call(method, &path, &[("authorization", &auth)], body).await }
    };
    let range = json!({"kind": "range", "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"});

    // The phone's token: its own ingest and latest position, the caller itself; 403 naming the scope otherwise.
    let me = call(Method::GET, "/api/v1/me".into(), phone.clone(), None).await;
    assert_eq!((me.status, &me.body["scopes"]), (StatusCode::OK, &json!([])), "{}", me.body);
    let points = json!([{"time": "2024-03-01T10:00:00Z", "lat": 52.5, "lon": 13.4}]);
    let stored = call(Method::POST, "/api/v1/points".into(), phone.clone(), Some(points)).await;
    assert_eq!((stored.status, &stored.body["added"]), (StatusCode::OK, &json!(1)), "{}", stored.body);
    let other = json!([{"time": "2024-03-01T11:00:00Z", "lat": 1.5, "lon": 2.5, "device": "laptop"}]);
    assert_eq!(call(Method::POST, "/api/v1/points".into(), alice.clone(), Some(other)).await.status, StatusCode::OK);
    let last = call(Method::GET, "/api/v1/locations/last".into(), phone.clone(), None).await;
    assert_eq!(last.body["locations"].as_array().map(Vec::len), Some(1), "its own device only: {}", last.body);
    assert_eq!(last.body["locations"][0]["device"], "phone", "{}", last.body);
    let everything = call(Method::GET, "/api/v1/locations/last".into(), alice.clone(), None).await;
    assert_eq!(everything.body["locations"].as_array().map(Vec::len), Some(2), "{}", everything.body);
    for (method, path, body, scope) in [
        (Method::GET, "/api/v1/points".to_owned(), None, "read"),
        (Method::GET, "/api/v1/export?format=csv".to_owned(), None, "read"),
        (Method::POST, "/api/v1/shares".to_owned(), Some(range.clone()), "share"),
        (Method::POST, "/api/v1/friends".to_owned(), Some(json!({"user": "bob"})), "friends"),
        (Method::DELETE, "/api/v1/tokens/999".to_owned(), None, "devices"),
    ] {
        let r = call(method.clone(), path.clone(), phone.clone(), body).await;
        assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{method} {path}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains(&format!("--scope {scope}")), "{}", r.body);
    }

    // A token with scopes, made with the password; it gives at most its own scopes.
    let device = last.body["locations"][0]["device"].clone();
    assert_eq!(device, "phone");
    let phone_id = app.store.list_devices(app.store.user_by_name("alice").unwrap().unwrap().id).unwrap()[0].id.0;
    let make = |auth: String, scopes: Value| {
        call(Method::POST, format!("/api/v1/devices/{phone_id}/tokens"), auth, Some(json!({"scopes": scopes})))
    };
    let parent = make(alice.clone(), json!(["share", "friends", "devices"])).await;
    assert_eq!(parent.status, StatusCode::CREATED, "{}", parent.body);
    assert_eq!(parent.body["scopes"], json!(["share", "friends", "devices"]));
    let (parent_id, parent) =
        (parent.body["id"].as_i64().unwrap(), format!("Bearer {}", parent.body["token"].as_str().unwrap()));
    let r = make(parent.clone(), json!(["share", "read"])).await;
    assert_eq!((r.status, r.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("\"read\""), "{}", r.body);
    let r = make(parent.clone(), json!(["root"])).await;
    assert_eq!(r.status, StatusCode::UNPROCESSABLE_ENTITY, "an unknown scope: {}", r.body);
    let child = make(parent.clone(), json!(["share"])).await;
    assert_eq!((child.status, &child.body["created_by"]), (StatusCode::CREATED, &json!(parent_id)), "{}", child.body);
    let child = format!("Bearer {}", child.body["token"].as_str().unwrap());

    // What the tokens make, and what the password makes.
    let share = |auth: String| {
        let (body, call) = (range.clone(), &call);
        async move {
            let r = call(Method::POST, "/api/v1/shares".into(), auth, Some(body)).await;
            assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
            r.body["token"].as_str().unwrap().to_owned()
        }
    };
    let (by_parent, by_child, by_password) =
        (share(parent.clone()).await, share(child.clone()).await, share(alice.clone()).await);
    let r = call(Method::POST, "/api/v1/friends".into(), parent.clone(), Some(json!({"user": "bob"}))).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let link = |secret: &String| {
        let (app, path) = (&app, format!("/api/v1/public/shares/{secret}"));
        async move { app.call(Method::GET, &path, &[], None).await }
    };
    assert_eq!(link(&by_parent).await.status, StatusCode::OK);

    // Revoking the parent takes its child, both tokens' links and the grant with it.
    let r = call(Method::DELETE, format!("/api/v1/tokens/{parent_id}"), alice.clone(), None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    assert_eq!(call(Method::GET, "/api/v1/me".into(), child.clone(), None).await.status, StatusCode::UNAUTHORIZED);
    assert_eq!(link(&by_parent).await.status, StatusCode::NOT_FOUND);
    assert_eq!(link(&by_child).await.status, StatusCode::NOT_FOUND);
    assert_eq!(link(&by_password).await.status, StatusCode::OK, "the password's link stays");
    let friends = call(Method::GET, "/api/v1/friends".into(), alice.clone(), None).await;
    assert!(!friends.body.to_string().contains("bob"), "the grant went with the token: {}", friends.body);
    let tokens = call(Method::GET, "/api/v1/tokens".into(), alice, None).await;
    let ids: Vec<i64> = tokens.body["tokens"].as_array().unwrap().iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [phone_token_id]);
}

/// Alice deletes her own account: not with a wrong password or a device
/// token; with her password, the account and its points, devices and tokens
/// go, her session ends, and bob keeps everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_is_deleted_by_its_owner_with_the_password_and_the_session_ends() {
    let app = app();
    let (_, token) = app.token_for("alice", ALICE_PW, "phone").await;
    let bob = app.store.user_by_name("bob").unwrap().unwrap().id;
    let bob_phone = app.store.ensure_device(bob, "phone").unwrap().id;
    let fix = Fix::new(Timestamp(1_714_543_200_000), Coord { lat_e7: 1, lon_e7: 2 }, SourceFormat::Api);
    app.store.insert_points(bob, bob_phone, std::slice::from_ref(&fix)).unwrap();
    let alice = app.store.user_by_name("alice").unwrap().unwrap();
    let alice_phone = app.store.ensure_device(alice.id, "phone").unwrap().id;
    app.store.insert_points(alice.id, alice_phone, &[fix]).unwrap();
    app.store.grant_location(bob, alice.id, None).unwrap();
    let (cookie, csrf) = app.login("alice", ALICE_PW).await;
    let with_session = [("cookie", cookie.as_str()), ("x-csrf-token", csrf.as_str())];

    let wrong = app
        .call(Method::POST, "/api/v1/me/delete", &with_session, Some(json!({"current_password": "not it at all"})))
        .await;
    assert_eq!((wrong.status, wrong.code()), (StatusCode::FORBIDDEN, "forbidden"), "{}", wrong.body);
    let bearer = format!("Bearer {token}");
    let by_token = app
        .call(
            Method::POST,
            "/api/v1/me/delete",
            &[("authorization", &bearer)],
            Some(json!({"current_password": ALICE_PW})),
        )
        .await;
    assert_eq!(by_token.status, StatusCode::FORBIDDEN, "a device token cannot: {}", by_token.body);
    let no_csrf = app
        .call(Method::POST, "/api/v1/me/delete", &[("cookie", &cookie)], Some(json!({"current_password": ALICE_PW})))
        .await;
    assert_eq!(no_csrf.status, StatusCode::FORBIDDEN, "{}", no_csrf.body);
    let missing = app.call(Method::POST, "/api/v1/me/delete", &with_session, Some(json!({}))).await;
    assert!(missing.status.is_client_error() && missing.body["message"].as_str().is_some(), "{}", missing.body);
    assert!(app.store.user_by_name("alice").unwrap().is_some(), "nothing deleted so far");

    let r =
        app.call(Method::POST, "/api/v1/me/delete", &with_session, Some(json!({"current_password": ALICE_PW}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body, json!({"name": "alice", "points": 1, "devices": 1}));
    let cleared = r.headers[header::SET_COOKIE].to_str().unwrap();
    assert!(cleared.starts_with("polo_session=;") && cleared.contains("Max-Age=0"), "{cleared}");

    // Her session, password and token are all gone.
    let me = app.call(Method::GET, "/api/v1/me", &[("cookie", &cookie)], None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    let me = app.call(Method::GET, "/api/v1/me", &[("authorization", &basic("alice", ALICE_PW))], None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    let me = app.call(Method::GET, "/api/v1/me", &[("authorization", &bearer)], None).await;
    assert_eq!(me.status, StatusCode::UNAUTHORIZED, "{}", me.body);
    assert_eq!(app.store.user_by_name("alice").unwrap(), None);
    assert_eq!(app.store.count_points(alice.id).unwrap(), 0);
    // Bob keeps his points; his grant to alice went with her.
    assert_eq!(app.store.count_points(bob).unwrap(), 1);
    assert!(app.store.location_grants_by(bob).unwrap().is_empty());
    let friends = app.call(Method::GET, "/api/v1/friends", &[("authorization", &basic("bob", BOB_PW))], None).await;
    assert_eq!(friends.status, StatusCode::OK, "{}", friends.body);
    assert!(!friends.body.to_string().contains("alice"), "{}", friends.body);
}

/// An administrator deletes other users from an admin network; others may
/// not, and nobody deletes the only administrator.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_delete_users_but_never_the_last_admin() {
    let app = app();
    let root = basic("root", ROOT_PW);
    let alice = basic("alice", ALICE_PW);
    let by_alice = app.call(Method::DELETE, "/api/v1/users/bob", &[("authorization", &alice)], None).await;
    assert_eq!(by_alice.status, StatusCode::FORBIDDEN, "{}", by_alice.body);
    let outside =
        app.call_from("203.0.113.9", Method::DELETE, "/api/v1/users/bob", &[("authorization", &root)], None).await;
    assert_eq!(outside.status, StatusCode::FORBIDDEN, "outside the admin networks: {}", outside.body);
    assert!(app.store.user_by_name("bob").unwrap().is_some());

    let r = app.call(Method::DELETE, "/api/v1/users/bob", &[("authorization", &root)], None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["name"], "bob");
    assert!(r.headers.get(header::SET_COOKIE).is_none(), "the admin's own session stays");
    assert_eq!(app.store.user_by_name("bob").unwrap(), None);
    let again = app.call(Method::DELETE, "/api/v1/users/bob", &[("authorization", &root)], None).await;
    assert_eq!((again.status, again.code()), (StatusCode::NOT_FOUND, "not_found"), "{}", again.body);
    let bad = app.call(Method::DELETE, "/api/v1/users/no%20such%20name", &[("authorization", &root)], None).await;
    assert_eq!(bad.status, StatusCode::NOT_FOUND, "{}", bad.body);

    // The only administrator stays, by this route or its own.
    let last = app.call(Method::DELETE, "/api/v1/users/root", &[("authorization", &root)], None).await;
    assert_eq!((last.status, last.code()), (StatusCode::CONFLICT, "conflict"), "{}", last.body);
    assert!(last.body["message"].as_str().unwrap().contains("only administrator"), "{}", last.body);
    let own = app
        .call(
            Method::POST,
            "/api/v1/me/delete",
            &[("authorization", &root)],
            Some(json!({"current_password": ROOT_PW})),
        )
        .await;
    assert_eq!(own.status, StatusCode::CONFLICT, "{}", own.body);
    // With a second administrator, the first may go (here by the admin route, ending its session).
    let made = app
        .call(
            Method::POST,
            "/api/v1/users",
            &[("authorization", &root)],
            Some(json!({"name": "second", "password": "second password", "admin": true})),
        )
        .await;
    assert_eq!(made.status, StatusCode::CREATED, "{}", made.body);
    let (cookie, csrf) = app.login("root", ROOT_PW).await;
    let gone =
        app.call(Method::DELETE, "/api/v1/users/root", &[("cookie", &cookie), ("x-csrf-token", &csrf)], None).await;
    assert_eq!(gone.status, StatusCode::OK, "{}", gone.body);
    assert!(gone.headers[header::SET_COOKIE].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(app.store.list_users().unwrap().iter().filter(|u| u.is_admin).count(), 1);
}

/// "Who was I with" (`/api/v1/together`): alice and bob share with each
/// other and sat in the same café 10:00–10:40; carol sat there too, but
/// only alice shares with carol, not carol with alice. Alice sees bob and
/// never carol, bob sees alice, carol sees no one; withdrawing a grant hides
/// the encounter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn together_shows_encounters_only_between_friends_who_share_both_ways() {
    let app = app();
    let carol_pw = "carol password";
    app.store.create_user("carol", &hash_password(carol_pw).unwrap(), false).unwrap();
    let user = |name: &str| app.store.user_by_name(name).unwrap().unwrap().id;
    let (alice, bob, carol) = (user("alice"), user("bob"), user("carol"));
    // 2024-05-01T10:00:00Z, a café in Munich; a point every 30 s, a few metres apart.
    const TEN: i64 = 1_714_557_600_000;
    let at = |lat_e7: i32| Coord { lat_e7: 481_370_000 + lat_e7, lon_e7: 115_750_000 };
    for (who, shift_ms, lat) in [(alice, 0, 0), (bob, 15_000, 200), (carol, 5_000, -150)] {
        let phone = app.store.ensure_device(who, "phone").unwrap();
        let fixes: Vec<Fix> = (0..=80)
            .map(|i| TEN + shift_ms + i * 30_000)
            .filter(|&t| t <= TEN + 40 * 60_000)
            .map(|t| Fix::new(Timestamp(t), at(lat), SourceFormat::Api))
            .collect();
        app.store.insert_points(who, phone.id, &fixes).unwrap();
    }
    app.store.grant_location(alice, bob, None).unwrap();
    app.store.grant_location(bob, alice, None).unwrap();
    app.store.grant_location(alice, carol, None).unwrap();

    let get = |who: &'static str, pw: &'static str, path: String| {
        let auth = basic(who, pw);
        let app = &app;
        async move { app.call(Method::GET, &path, &[("authorization", &auth)], None).await }
    };
    let day = "from=2024-05-01T00:00:00Z&to=2024-05-02T00:00:00Z";

    let r = get("alice", ALICE_PW, format!("/api/v1/together?{day}")).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert!(!r.body.to_string().contains("carol"), "carol does not share with alice: {}", r.body);
    assert_eq!((r.body["max_distance_m"].as_f64(), r.body["max_gap_s"].as_i64()), (Some(25.0), Some(300)));
    let friends = r.body["friends"].as_array().unwrap();
    assert_eq!(friends.len(), 1, "{}", r.body);
    let anna = &friends[0];
    assert_eq!(anna["user"], "bob");
    assert_eq!((anna["count"].as_u64(), anna["minutes"].as_u64()), (Some(1), Some(40)), "{anna}");
    assert_eq!(anna["last_met"], "2024-05-01T10:40:00.000Z");
    let met = &anna["encounters"][0];
    assert_eq!(met["first"], "2024-05-01T10:00:00.000Z");
    assert_eq!(met["last"], "2024-05-01T10:40:00.000Z");
    // Munich in May: the time zone gives the offset the points did not state.
    assert_eq!((met["utc_offset_minutes"].as_i64(), met["end_utc_offset_minutes"].as_i64()), (Some(120), Some(120)));
    assert!(met["min_distance_m"].as_f64().unwrap() < 3.0, "{met}");
    // Alice's own position, and the name the day view would give her stay there.
    assert_eq!((met["lat"].as_f64(), met["lon"].as_f64()), (Some(48.137), Some(11.575)));
    assert!(met["title"].as_str().is_some_and(|t| t.starts_with("Near ")), "{met}");

    // Bob sees alice; carol sees no one (alice shares with her, she not with alice).
    let r = get("bob", BOB_PW, format!("/api/v1/together?{day}")).await;
    assert_eq!(r.body["friends"][0]["user"], "alice", "{}", r.body);
    assert_eq!(r.body["friends"][0]["minutes"], 40, "{}", r.body);
    let r = get("carol", carol_pw, format!("/api/v1/together?{day}")).await;
    assert_eq!((r.status, r.body["friends"].clone()), (StatusCode::OK, json!([])), "{}", r.body);
    for (who, pw, path) in [("alice", ALICE_PW, "carol"), ("carol", carol_pw, "alice"), ("alice", ALICE_PW, "nobody")] {
        let r = get(who, pw, format!("/api/v1/together/{path}?{day}")).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "not_found"), "{who} → {path}: {}", r.body);
    }

    // One friend, a later range as local days: nothing in it, but the latest encounter is found before it.
    let r = get("alice", ALICE_PW, "/api/v1/together/bob?from=2024-06-01&to=2024-06-30".into()).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!((r.body["friend"]["count"].as_u64(), r.body["friend"]["minutes"].as_u64()), (Some(0), Some(0)));
    assert_eq!(r.body["latest"]["last"], "2024-05-01T10:40:00.000Z", "{}", r.body);
    let r = get("alice", ALICE_PW, "/api/v1/together/bob?from=2024-01-01&to=2024-12-31".into()).await;
    assert_eq!((r.body["friend"]["minutes"].as_u64(), r.body["latest"]["minutes"].as_u64()), (Some(40), Some(40)));

    // Bad ranges name the parameter.
    for (query, needle) in [
        ("from=2024-05-02T00:00:00Z&to=2024-05-01T00:00:00Z", "after from"),
        ("from=2023-01-01T00:00:00Z&to=2024-05-01T00:00:00Z", "366 days"),
        ("from=yesterday&to=2024-05-01T00:00:00Z", "from"),
        ("from=2024-05-01&to=2024-13-01", "to must be a day"),
        ("from=2024-05-01", "to"),
    ] {
        let r = get("alice", ALICE_PW, format!("/api/v1/together?{query}")).await;
        assert_eq!((r.status, r.code()), (StatusCode::BAD_REQUEST, "bad_request"), "{query}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap_or("").contains(needle), "{query}: {}", r.body);
    }

    // Bob withdraws his grant: the encounter is gone for both.
    let r = app.call(Method::DELETE, "/api/v1/friends/alice", &[("authorization", &basic("bob", BOB_PW))], None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{}", r.body);
    for (who, pw) in [("alice", ALICE_PW), ("bob", BOB_PW)] {
        let r = get(who, pw, format!("/api/v1/together?{day}")).await;
        assert_eq!((r.status, r.body["friends"].clone()), (StatusCode::OK, json!([])), "{who}: {}", r.body);
    }
    let r = get("alice", ALICE_PW, format!("/api/v1/together/bob?{day}")).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{}", r.body);
}

/// Exposure, in process: while the feature is off every exposure route says so (404
/// `exposure_disabled`); only an administrator turns it on and gives the health-authority role;
/// without the role, users get 403 on everything that shows other people's encounters, and a
/// device token never gets there, whatever its user's role.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exposure_routes_need_the_feature_and_the_health_authority_role() {
    let app = app();
    let alice = basic("alice", ALICE_PW);
    let bob = basic("bob", BOB_PW);
    let root = basic("root", ROOT_PW);
    let auth = |a: &str| [("authorization", a.to_owned())];
    let call = |method: Method, path: &'static str, who: &str, body: Option<Value>| {
        let headers = auth(who);
        let app = &app;
        async move {
            let headers: Vec<(&str, &str)> = headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
            app.call(method, path, &headers, body).await
        }
    };

    // Off: a clear answer, for the user's own status and the public key alike.
    for (method, path) in [(Method::GET, "/api/v1/exposure/status"), (Method::GET, "/api/v1/exposure/public-key")] {
        let r = call(method, path, &alice, None).await;
        assert_eq!((r.status, r.code()), (StatusCode::NOT_FOUND, "exposure_disabled"), "{path}: {}", r.body);
        assert!(r.body["message"].as_str().unwrap().contains("PUT /api/v1/admin/exposure"), "{}", r.body);
    }
    // Only an administrator turns it on or hands out the role.
    let enable = json!({"enabled": true});
    let r = call(Method::PUT, "/api/v1/admin/exposure", &alice, Some(enable.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(Method::PUT, "/api/v1/users/bob/role", &alice, Some(json!({"role": "health-authority"}))).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    let r = call(Method::PUT, "/api/v1/admin/exposure", &root, Some(json!({"window_hours": 1.5}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("window_hours: must be a whole number"), "{}", r.body);
    let r = call(Method::PUT, "/api/v1/admin/exposure", &root, Some(enable)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    assert_eq!(r.body["settings"]["enabled"], true);
    let r = call(Method::PUT, "/api/v1/users/bob/role", &root, Some(json!({"role": "doctor"}))).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    let r = call(Method::PUT, "/api/v1/users/bob/role", &root, Some(json!({"role": "health-authority"}))).await;
    assert_eq!((r.status, &r.body["role"]), (StatusCode::OK, &json!("health-authority")), "{}", r.body);
    let users = call(Method::GET, "/api/v1/users", &root, None).await;
    let roles: Vec<(&str, &Value)> =
        users.body["users"].as_array().unwrap().iter().map(|u| (u["name"].as_str().unwrap(), &u["role"])).collect();
    assert!(roles.contains(&("bob", &json!("health-authority"))) && roles.contains(&("alice", &Value::Null)));
    // The web app learns it at login and from /api/v1/me.
    let login =
        app.call(Method::POST, "/api/v1/session", &[], Some(json!({"username": "bob", "password": BOB_PW}))).await;
    assert_eq!(login.body["user"]["role"], "health-authority", "{}", login.body);
    assert_eq!(call(Method::GET, "/api/v1/me", &bob, None).await.body["user"]["role"], "health-authority");

    // Without the role: 403, the administrator included.
    for who in [&alice, &root] {
        for path in ["/api/v1/exposure/cases", "/api/v1/exposure/proposals", "/api/v1/exposure/audit"] {
            let r = call(Method::GET, path, who, None).await;
            assert_eq!(r.status, StatusCode::FORBIDDEN, "{path}: {}", r.body);
            assert!(r.body["message"].as_str().unwrap().contains("health-authority"), "{}", r.body);
        }
    }
    let mark =
        json!({"user": "alice", "infectious_from": "2024-05-01T00:00:00Z", "infectious_to": "2024-05-03T00:00:00Z"});
    let r = call(Method::POST, "/api/v1/exposure/cases", &alice, Some(mark.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // With it: the authority marks a case; bad periods are explained.
    let r = call(Method::GET, "/api/v1/exposure/cases", &bob, None).await;
    assert_eq!((r.status, &r.body["cases"]), (StatusCode::OK, &json!([])), "{}", r.body);
    let reversed =
        json!({"user": "alice", "infectious_from": "2024-05-03T00:00:00Z", "infectious_to": "2024-05-01T00:00:00Z"});
    let r = call(Method::POST, "/api/v1/exposure/cases", &bob, Some(reversed)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("must end after it starts"), "{}", r.body);
    let r = call(Method::POST, "/api/v1/exposure/cases", &bob, Some(mark)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    assert_eq!(r.body["user"], "alice");
    let r = call(Method::GET, "/api/v1/exposure/audit", &bob, None).await;
    assert_eq!(r.body["entries"][0]["action"], "exposure.case.mark", "{}", r.body);
    assert_eq!(r.body["entries"][0]["actor"], "bob");
    // The authority's device token gets nowhere: other people's encounters need the login.
    let (_, token) = app.token_for("bob", BOB_PW, "phone").await;
    let r = call(Method::GET, "/api/v1/exposure/cases", &format!("Bearer {token}"), None).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{}", r.body);
    // A code that is not one is explained, not an error.
    let r = call(Method::POST, "/api/v1/exposure/verify", &alice, Some(json!({"code": "PX1.abc.def"}))).await;
    assert_eq!((r.status, &r.body["valid"]), (StatusCode::OK, &json!(false)), "{}", r.body);
    assert!(r.body["reason"].as_str().is_some(), "{}", r.body);
}
