//! The authorisation matrix: every route of the OpenAPI document, called by
//! every kind of caller, against the real binary.
//!
//! Why table-driven and derived from the document: authorisation bugs hide
//! in the routes nobody thought about. The route list comes from
//! `GET /api/openapi.json` (and the routers cannot serve an undocumented
//! route), so a new route without a row here fails the test instead of
//! going unchecked. Each cell states the exact status; rows that read data
//! also check that the owner's data shows up for the owner and never for
//! anyone else.
//!
//! The callers: nobody; another user; the owner (password); the owner's
//! device token with every scope (which may still not change the password
//! or create users); an administrator (who has no access to other users'
//! data either); and, in each row's `device` cell, the owner's device token
//! as a phone gets it, without scopes: it ingests as its device, reads its
//! own latest position and the friends reply, and gets 403 for everything
//! else, never seeing the owner's history.
//! Groups' routes have their own rows (`authz_matrix/groups.rs`): here the
//! owner made the group, and a second test plays a member, a group admin and
//! the group's maker besides.
//! Public routes (the web app's config, share links) are marked `public`:
//! every caller, with credentials or without, gets the same answer.
//!
//! The server trusts itself as a reverse proxy (`--trusted-proxy 127.0.0.1`),
//! so that one more caller can be played: the administrator from outside the
//! admin networks (`X-Forwarded-For` of a public address). Every row only the
//! administrator may use is sent once more as that caller and must answer 403.

mod common;
#[path = "authz_matrix/groups.rs"]
mod groups;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use common::{add_user, basic, http, http_stream_start, polo, serve};
use serde_json::{Value, json};

const PASSWORD: &str = "a long password";
/// A coordinate only the owner's points have.
const OWNER_LAT: f64 = 47.123_456_7;
const BOUNDARY: &str = "----polo-matrix-boundary";
/// An OwnTracks Recorder file with one bad line, so the owner's import has rejects.
const REC: &str = "2024-03-01T09:03:09Z\t*\t{\"_type\":\"location\",\"lat\":52.225,\"lon\":13.332,\"tst\":1709283789}\n\
                   2024-03-01T09:05:09Z\t*\tthis line is not json\n";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Anonymous,
    Other,
    Owner,
    Token,
    Admin,
    /// The owner's device token without scopes.
    Device,
}

const ROLES: [Role; 6] = [Role::Anonymous, Role::Other, Role::Owner, Role::Token, Role::Admin, Role::Device];

impl Role {
    fn name(self) -> &'static str {
        match self {
            Self::Anonymous => "anonymous",
            Self::Other => "other",
            Self::Owner => "owner",
            Self::Token => "token",
            Self::Admin => "admin",
            Self::Device => "device",
        }
    }

    /// The user the caller acts as.
    fn user(self) -> Option<&'static str> {
        match self {
            Self::Anonymous => None,
            Self::Other => Some("other"),
            Self::Owner | Self::Token | Self::Device => Some("owner"),
            Self::Admin => Some("admin"),
        }
    }
}

/// What the test set up as the owner.
struct Ctx {
    addr: String,
    owner_basic: String,
    owner_token: String,
    /// A token of the owner's phone made without scopes.
    device_token: String,
    owner_device: i64,
    owner_job: String,
    /// A public link to the owner's "vault" day.
    owner_share: String,
    /// A public link to the owner's live position.
    owner_live_share: String,
    /// A photo in the owner's library.
    owner_photo: String,
}

impl Ctx {
    fn authorization(&self, role: Role) -> Option<String> {
        match role {
            Role::Anonymous => None,
            Role::Token => Some(format!("Bearer {}", self.owner_token)),
            Role::Device => Some(format!("Bearer {}", self.device_token)),
            other => Some(basic(other.user().unwrap(), PASSWORD)),
        }
    }

    fn send(&self, role: Role, request: &Request) -> common::Response {
        let auth = self.authorization(role);
        let mut headers: Vec<(&str, &str)> = request.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        if let Some(auth) = &auth {
            headers.push(("Authorization", auth.as_str()));
        }
        if request.stream {
            return http_stream_start(&self.addr, request.method, &request.path, &headers, Duration::from_millis(700));
        }
        http(&self.addr, request.method, &request.path, &headers, &request.body)
    }

    /// A fresh token of the owner's device with every scope, made with the owner's password.
    fn spare_token(&self) -> (i64, String) {
        self.token_with(&json!(["read", "write", "share", "friends", "devices", "admin"]))
    }

    /// A fresh token of the owner's device with `scopes`, made with the owner's password.
    fn token_with(&self, scopes: &Value) -> (i64, String) {
        let path = format!("/api/v1/devices/{}/tokens", self.owner_device);
        let body = json!({"label": "spare", "scopes": scopes});
        let r = json_request(&self.addr, "POST", &path, &self.owner_basic, &body);
        assert_eq!(r.status, 201, "{}", r.body);
        let body = r.json();
        (body["id"].as_i64().unwrap(), body["token"].as_str().unwrap().to_owned())
    }
}

struct Request {
    method: &'static str,
    path: String,
    headers: Vec<(&'static str, String)>,
    body: Vec<u8>,
    /// An endless answer (Server-Sent Events): read briefly, then hang up.
    stream: bool,
}

impl Request {
    fn new(method: &'static str, path: impl Into<String>) -> Self {
        Self { method, path: path.into(), headers: Vec::new(), body: Vec::new(), stream: false }
    }

    fn event_stream(mut self) -> Self {
        self.stream = true;
        self.headers.push(("Accept", "text/event-stream".to_owned()));
        self
    }

    fn json(mut self, body: &Value) -> Self {
        self.headers.push(("Content-Type", "application/json".to_owned()));
        self.body = body.to_string().into_bytes();
        self
    }

    fn form(mut self, body: &str) -> Self {
        self.headers.push(("Content-Type", "application/x-www-form-urlencoded".to_owned()));
        self.body = body.as_bytes().to_vec();
        self
    }

    fn upload(mut self, name: &str, content: &str) -> Self {
        self.headers.push(("Content-Type", format!("multipart/form-data; boundary={BOUNDARY}")));
        self.body = format!(
            "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
             Content-Type: application/octet-stream\r\n\r\n{content}\r\n--{BOUNDARY}--\r\n"
        )
        .into_bytes();
        self
    }
}

fn json_request(addr: &str, method: &str, path: &str, auth: &str, body: &Value) -> common::Response {
    let body = body.to_string();
    http(addr, method, path, &[("Authorization", auth), ("Content-Type", "application/json")], body.as_bytes())
}

/// One route: the request each caller sends, the status each gets (in [`ROLES`] order) and what
/// a successful answer must (not) show.
struct Row {
    method: &'static str,
    path: &'static str,
    /// Anonymous, other, owner, token, admin.
    expect: [u16; 5],
    /// The owner's device token without scopes.
    device: u16,
    request: fn(&Ctx, Role) -> Request,
    check: fn(&Ctx, Role, &common::Response),
}

fn no_check(_: &Ctx, _: Role, _: &common::Response) {}

/// The owner sees `needle` in the answer; nobody else does (nor a token without the `read` scope).
fn only_owner_sees(role: Role, body: &str, needle: &str) {
    let seen = body.contains(needle);
    match role {
        Role::Owner | Role::Token => assert!(seen, "{} should see {needle:?} in {body}", role.name()),
        _ => assert!(!seen, "{} must not see {needle:?} in {body}", role.name()),
    }
}

fn owner_lat() -> String {
    format!("{OWNER_LAT}")
}

fn is_me(role: Role, body: &Value) {
    assert_eq!(body["user"]["name"].as_str(), role.user(), "{body}");
}

const fn all(status: u16) -> [u16; 5] {
    [401, status, status, status, status]
}

/// A public route: no credentials needed, and every caller (credentials or not) gets the same.
const fn public(status: u16) -> [u16; 5] {
    [status; 5]
}

/// Every caller sees `needle`: what a public link shows, it shows to anyone.
fn everyone_sees(role: Role, body: &str, needle: &str) {
    assert!(body.contains(needle), "{} should see {needle:?} in {body}", role.name());
}

/// The user a role's friend-grant cells name: the owner's callers grant "other", everyone else "owner".
fn friend_of(role: Role) -> &'static str {
    if role.user() == Some("owner") { "other" } else { "owner" }
}

fn rows() -> Vec<Row> {
    vec![
        Row {
            method: "GET",
            path: "/healthz",
            expect: [200; 5],
            device: 200,
            request: |_, _| Request::new("GET", "/healthz"),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/readyz",
            expect: [200; 5],
            device: 200,
            request: |_, _| Request::new("GET", "/readyz"),
            check: no_check,
        },
        Row {
            // Guarded by the client's network, not by the user: the test runs on loopback.
            method: "GET",
            path: "/metrics",
            expect: [200; 5],
            device: 200,
            request: |_, _| Request::new("GET", "/metrics"),
            check: no_check,
        },
        Row {
            // The credentials are in the body: the role's own, a wrong password for nobody.
            method: "POST",
            path: "/api/v1/session",
            expect: [401, 200, 200, 200, 200],
            device: 200,
            request: |_, role| {
                let (name, password) = role.user().map_or(("owner", "not the password"), |u| (u, PASSWORD));
                Request::new("POST", "/api/v1/session").json(&json!({"username": name, "password": password}))
            },
            check: |_, role, r| {
                if role != Role::Anonymous {
                    is_me(role, &r.json());
                    assert!(r.header("set-cookie").is_some_and(|c| c.starts_with("polo_session=")));
                }
            },
        },
        Row {
            method: "DELETE",
            path: "/api/v1/session",
            expect: all(204),
            device: 204,
            request: |_, _| Request::new("DELETE", "/api/v1/session"),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/me",
            expect: all(200),
            device: 200,
            request: |_, _| Request::new("GET", "/api/v1/me"),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    is_me(role, &r.json());
                }
            },
        },
        Row {
            // Changes each password to itself; device tokens may not.
            method: "POST",
            path: "/api/v1/me/password",
            expect: [401, 204, 204, 403, 204],
            device: 403,
            request: |_, _| {
                Request::new("POST", "/api/v1/me/password")
                    .json(&json!({"current_password": PASSWORD, "new_password": PASSWORD}))
            },
            check: no_check,
        },
        // Sign-in (docs/accounts.md). OIDC is not configured here: its public routes answer 404 to
        // everyone, and the account's link is empty. Device tokens touch none of the account's
        // sign-in settings.
        Row {
            method: "GET",
            path: "/api/v1/auth/oidc/login",
            expect: public(404),
            device: 404,
            request: |_, _| Request::new("GET", "/api/v1/auth/oidc/login"),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/auth/oidc/callback",
            expect: public(404),
            device: 404,
            request: |_, _| Request::new("GET", "/api/v1/auth/oidc/callback?code=c&state=s"),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/me/oidc",
            expect: [401, 200, 200, 403, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/me/oidc"),
            check: |_, role, r| {
                if r.status == 200 {
                    assert_eq!(
                        (r.json()["configured"].as_bool(), r.json()["linked"].is_null()),
                        (Some(false), true),
                        "{} {}",
                        role.name(),
                        r.body
                    );
                }
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/me/oidc",
            expect: [401, 404, 404, 403, 404],
            device: 403,
            request: |_, _| Request::new("POST", "/api/v1/me/oidc"),
            check: no_check,
        },
        Row {
            method: "DELETE",
            path: "/api/v1/me/oidc",
            expect: [401, 404, 404, 403, 404],
            device: 403,
            request: |_, _| Request::new("DELETE", "/api/v1/me/oidc"),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/me/2fa",
            expect: [401, 200, 200, 403, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/me/2fa"),
            check: |_, _, r| {
                if r.status == 200 {
                    assert_eq!(r.json()["enabled"], false, "{}", r.body);
                }
            },
        },
        Row {
            // A pending enrolment of each caller's own: nothing changes at login until confirmed.
            method: "POST",
            path: "/api/v1/me/2fa",
            expect: [401, 200, 200, 403, 200],
            device: 403,
            request: |_, _| Request::new("POST", "/api/v1/me/2fa"),
            check: |_, role, r| {
                if r.status == 200 {
                    let url = r.json()["otpauth_url"].as_str().unwrap().to_owned();
                    assert!(url.contains(&format!(":{}?", role.user().unwrap())), "the caller's own: {url}");
                }
            },
        },
        Row {
            // A code that never matches: the pending enrolment stays pending.
            method: "POST",
            path: "/api/v1/me/2fa/confirm",
            expect: [401, 403, 403, 403, 403],
            device: 403,
            request: |_, _| Request::new("POST", "/api/v1/me/2fa/confirm").json(&json!({"code": "abcdef"})),
            check: no_check,
        },
        Row {
            // Not turned on: the pending enrolment is forgotten, no code needed.
            method: "POST",
            path: "/api/v1/me/2fa/disable",
            expect: [401, 204, 204, 403, 204],
            device: 403,
            request: |_, _| Request::new("POST", "/api/v1/me/2fa/disable").json(&json!({"code": "abcdef"})),
            check: no_check,
        },
        // Passkeys. The matrix reaches polo by its IP address, which browsers refuse as a passkey's
        // site, so the options routes answer 400 to whoever may call them; the ceremonies
        // themselves are driven in Chromium (web_e2e.rs, passkeys_in_chromium).
        Row {
            method: "GET",
            path: "/api/v1/me/passkeys",
            expect: [401, 200, 200, 403, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/me/passkeys"),
            check: |_, role, r| {
                if r.status == 200 {
                    assert_eq!(r.json()["passkeys"], json!([]), "{}: {}", role.name(), r.body);
                }
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/me/passkeys/options",
            expect: [401, 400, 400, 403, 400],
            device: 403,
            request: |_, _| Request::new("POST", "/api/v1/me/passkeys/options"),
            check: |_, role, r| {
                if r.status == 400 {
                    assert!(r.body.contains("not an IP address"), "{}: {}", role.name(), r.body);
                }
            },
        },
        Row {
            // Client data answering no challenge: refused.
            method: "POST",
            path: "/api/v1/me/passkeys",
            expect: [401, 403, 403, 403, 403],
            device: 403,
            request: |_, _| {
                Request::new("POST", "/api/v1/me/passkeys").json(
                    &json!({"name": "key", "credential": {"response": {"clientDataJSON": "e30", "attestationObject": "oA"}}}),
                )
            },
            check: no_check,
        },
        Row {
            method: "DELETE",
            path: "/api/v1/me/passkeys/{id}",
            expect: [401, 404, 404, 403, 404],
            device: 403,
            request: |_, _| Request::new("DELETE", "/api/v1/me/passkeys/Y3JlZC0x"),
            check: no_check,
        },
        Row {
            method: "POST",
            path: "/api/v1/session/passkey/options",
            expect: public(400),
            device: 400,
            request: |_, _| Request::new("POST", "/api/v1/session/passkey/options"),
            check: no_check,
        },
        Row {
            // Malformed (not base64url): refused before any passkey is looked at, whoever asks.
            method: "POST",
            path: "/api/v1/session/passkey",
            expect: public(400),
            device: 400,
            request: |_, _| {
                Request::new("POST", "/api/v1/session/passkey").json(&json!({"credential": {"id": "x", "response": {
                    "clientDataJSON": "!", "authenticatorData": "!", "signature": "!"}}}))
            },
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/me/sessions",
            expect: [401, 200, 200, 403, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/me/sessions"),
            check: |_, role, r| {
                if r.status == 200 {
                    let tokens = r.json()["tokens"].as_array().unwrap().len();
                    // Only the owner has device tokens: nobody else sees them.
                    assert_eq!(tokens > 0, role == Role::Owner, "{}: {}", role.name(), r.body);
                }
            },
        },
        Row {
            method: "DELETE",
            path: "/api/v1/me/sessions/{id}",
            expect: [401, 404, 404, 403, 404],
            device: 403,
            request: |_, _| Request::new("DELETE", "/api/v1/me/sessions/0123456789abcdef"),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/admin/audit",
            expect: [401, 403, 403, 403, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/admin/audit?action=auth.&limit=50"),
            check: |_, role, r| {
                if role == Role::Admin {
                    let entries = r.json()["entries"].as_array().unwrap().clone();
                    assert!(entries.iter().all(|e| e["action"].as_str().unwrap().starts_with("auth.")), "{}", r.body);
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/devices",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/devices"),
            check: |ctx, role, r| {
                if role != Role::Anonymous {
                    let ids: Vec<i64> =
                        r.json()["devices"].as_array().unwrap().iter().map(|d| d["id"].as_i64().unwrap()).collect();
                    only_owner_sees(role, &format!("{ids:?}"), &format!("{}", ctx.owner_device));
                }
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/devices",
            expect: all(201),
            device: 403,
            request: |_, role| {
                Request::new("POST", "/api/v1/devices").json(&json!({"name": format!("matrix-{}", role.name())}))
            },
            check: no_check,
        },
        Row {
            method: "POST",
            path: "/api/v1/devices/{id}/tokens",
            expect: [401, 404, 201, 201, 404],
            device: 403,
            request: |ctx, _| {
                Request::new("POST", format!("/api/v1/devices/{}/tokens", ctx.owner_device))
                    .json(&json!({"label": "matrix"}))
            },
            check: no_check,
        },
        Row {
            // Set then (next row) cleared again, so the owner's OwnTracks replies below stay clear text.
            method: "PUT",
            path: "/api/v1/devices/{id}/encryption-key",
            expect: [401, 404, 204, 204, 404],
            device: 403,
            request: |ctx, _| {
                Request::new("PUT", format!("/api/v1/devices/{}/encryption-key", ctx.owner_device))
                    .json(&json!({"key": "matrix secret"}))
            },
            check: no_check,
        },
        Row {
            method: "DELETE",
            path: "/api/v1/devices/{id}/encryption-key",
            expect: [401, 404, 204, 204, 404],
            device: 403,
            request: |ctx, _| Request::new("DELETE", format!("/api/v1/devices/{}/encryption-key", ctx.owner_device)),
            check: no_check,
        },
        Row {
            method: "PUT",
            path: "/api/v1/devices/{id}/label",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| {
                Request::new("PUT", format!("/api/v1/devices/{}/label", ctx.owner_device))
                    .json(&json!({"label": "Matrix phone"}))
            },
            check: |_, role, r| {
                if r.status == 200 {
                    assert_eq!(r.json()["label"], "Matrix phone", "{role:?}");
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/tokens",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/tokens"),
            check: |ctx, role, r| {
                if role != Role::Anonymous {
                    let devices: Vec<i64> = r.json()["tokens"]
                        .as_array()
                        .unwrap()
                        .iter()
                        .map(|t| t["device"]["id"].as_i64().unwrap())
                        .collect();
                    only_owner_sees(role, &format!("{devices:?}"), &format!("{}", ctx.owner_device));
                    assert!(!r.body.contains("polo_"), "token lists never show secrets: {}", r.body);
                }
            },
        },
        Row {
            // Each caller aims at a fresh token of the owner's; only the owner's callers revoke it.
            method: "DELETE",
            path: "/api/v1/tokens/{id}",
            expect: [401, 404, 204, 204, 404],
            device: 403,
            request: |ctx, _| Request::new("DELETE", format!("/api/v1/tokens/{}", spare_token_for_revoke(ctx))),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/users",
            expect: [401, 403, 403, 403, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/users"),
            check: no_check,
        },
        Row {
            method: "POST",
            path: "/api/v1/users",
            expect: [401, 403, 403, 403, 201],
            device: 403,
            request: |_, role| {
                Request::new("POST", "/api/v1/users")
                    .json(&json!({"name": format!("made-by-{}", role.name()), "password": PASSWORD}))
            },
            check: no_check,
        },
        Row {
            // With a wrong password, so nobody's account goes (tests/auth.rs of polo-server deletes
            // accounts); a device token may not even try.
            method: "POST",
            path: "/api/v1/me/delete",
            expect: [401, 403, 403, 403, 403],
            device: 403,
            request: |_, _| Request::new("POST", "/api/v1/me/delete").json(&json!({"current_password": "not it"})),
            check: |_, role, r| {
                if role != Role::Anonymous && role != Role::Token {
                    assert!(r.body.contains("password is wrong"), "{role:?}: {}", r.body);
                }
            },
        },
        Row {
            // Each caller aims at a fresh user of its own; only the administrator deletes it.
            method: "DELETE",
            path: "/api/v1/users/{name}",
            expect: [401, 403, 403, 403, 200],
            device: 403,
            request: |ctx, _| Request::new("DELETE", format!("/api/v1/users/{}", spare_user(ctx))),
            check: no_check,
        },
        // The peer routes take only a replication token, which none of these callers has
        // (tests/replication.rs covers the token itself).
        Row {
            method: "GET",
            path: "/api/v1/replication/info",
            expect: [401; 5],
            device: 401,
            request: |_, _| Request::new("GET", "/api/v1/replication/info"),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/replication/changes",
            expect: [401; 5],
            device: 401,
            request: |_, _| Request::new("GET", "/api/v1/replication/changes"),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/replication/checkpoint",
            expect: [401; 5],
            device: 401,
            request: |_, _| Request::new("GET", "/api/v1/replication/checkpoint?name=x"),
            check: no_check,
        },
        Row {
            method: "POST",
            path: "/api/v1/replication/apply",
            expect: [401; 5],
            device: 401,
            request: |_, _| {
                Request::new("POST", "/api/v1/replication/apply")
                    .json(&json!({"name": "x", "cursor": "e:0", "entries": []}))
            },
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/replication/tasks",
            expect: [401, 403, 403, 403, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/replication/tasks"),
            check: no_check,
        },
        Row {
            // This server runs no replication: the admin learns that, nobody else gets that far.
            method: "POST",
            path: "/api/v1/replication/tasks/{name}/{action}",
            expect: [401, 403, 403, 403, 404],
            device: 403,
            request: |_, _| Request::new("POST", "/api/v1/replication/tasks/none/pause"),
            check: no_check,
        },
        Row {
            method: "POST",
            path: "/api/owntracks",
            expect: all(200),
            device: 200,
            request: |_, role| {
                Request::new("POST", "/api/owntracks").json(&json!({
                    "_type": "location", "lat": 40.5, "lon": 3.5, "tst": 1_709_283_789,
                    "topic": format!("owntracks/x/matrix-{}", role.name()),
                }))
            },
            // The friends reply shows the user's devices to every token of the user, scopes or not.
            check: |_, role, r| match role {
                Role::Anonymous => {}
                Role::Device => assert!(r.body.contains(&owner_lat()), "the friends reply: {}", r.body),
                _ => only_owner_sees(role, &r.body, &owner_lat()),
            },
        },
        Row {
            method: "POST",
            path: "/api/overland",
            expect: all(200),
            device: 200,
            request: |_, _| {
                Request::new("POST", "/api/overland").json(&json!({"locations": [{
                    "type": "Feature", "geometry": {"type": "Point", "coordinates": [3.6, 40.6]},
                    "properties": {"timestamp": "2024-03-02T10:00:00Z", "device_id": "matrix-overland"},
                }]}))
            },
            check: |_, role, r| {
                if role == Role::Anonymous {
                    assert!(r.json()["error"].is_string(), "Overland's error shape: {}", r.body);
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/osmand",
            expect: all(200),
            device: 200,
            request: |_, _| Request::new("GET", "/api/osmand?id=matrix-osmand&lat=40.7&lon=3.7&timestamp=1709283789"),
            check: no_check,
        },
        Row {
            method: "POST",
            path: "/api/osmand",
            expect: all(200),
            device: 200,
            request: |_, _| Request::new("POST", "/api/osmand").form("id=matrix-osmand&lat=40.8&lon=3.8"),
            check: no_check,
        },
        Row {
            method: "POST",
            path: "/api/v1/points",
            expect: all(200),
            device: 200,
            request: |_, _| {
                Request::new("POST", "/api/v1/points")
                    .json(&json!([{"time": "2024-03-03T10:00:00Z", "lat": 40.9, "lon": 3.9, "device": "matrix-api"}]))
            },
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/points",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/points?limit=10000"),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    only_owner_sees(role, &r.body, &owner_lat());
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/export",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/export?format=csv"),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    only_owner_sees(role, &r.body, &owner_lat());
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/locations/last",
            expect: all(200),
            device: 200,
            request: |_, _| Request::new("GET", "/api/v1/locations/last"),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    only_owner_sees(role, &r.body, &owner_lat());
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/intervals",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/intervals"),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    only_owner_sees(role, &r.body, &owner_lat());
                }
            },
        },
        Row {
            // The owner's "vault" device has a point that day; other users have no such device.
            method: "GET",
            path: "/api/v1/timeline/day",
            expect: [401, 400, 200, 200, 400],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/timeline/day?date=2024-03-01&device=vault"),
            check: |_, role, r| {
                if r.status == 200 {
                    assert_eq!(r.json()["device"], "vault", "{}: {}", role.name(), r.body);
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/timeline/entries",
            expect: all(200),
            device: 403,
            request: |_, _| {
                Request::new("GET", "/api/v1/timeline/entries?from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z")
            },
            check: |_, role, r| {
                let body = r.json();
                let devices: Vec<&str> =
                    body.as_array().map_or(vec![], |a| a.iter().filter_map(|d| d["device"].as_str()).collect());
                assert_eq!(
                    devices.contains(&"vault"),
                    matches!(role, Role::Owner | Role::Token),
                    "{}: {}",
                    role.name(),
                    r.body
                );
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/timeline/trips",
            expect: all(200),
            device: 403,
            request: |_, _| {
                Request::new("GET", "/api/v1/timeline/trips?from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z")
            },
            check: no_check,
        },
        Row {
            // Nobody has a leg then: the owner learns that (404); others have no such device (400).
            method: "PUT",
            path: "/api/v1/timeline/legs/mode",
            expect: [401, 400, 404, 404, 400],
            device: 403,
            request: |_, _| {
                Request::new("PUT", "/api/v1/timeline/legs/mode")
                    .json(&json!({"device": "vault", "start": "2024-03-01T00:00:00Z", "mode": "rail"}))
            },
            check: no_check,
        },
        Row {
            // The owner's "vault" device has no fix then (404); others have no such device (400).
            method: "PUT",
            path: "/api/v1/points/flag",
            expect: [401, 400, 404, 404, 400],
            device: 403,
            request: |_, _| {
                Request::new("PUT", "/api/v1/points/flag")
                    .json(&json!({"device": "vault", "time": "2020-01-01T00:00:00Z", "flagged": false}))
            },
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/retention",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/retention"),
            check: no_check,
        },
        Row {
            // Keeping every point: what everyone has already.
            method: "PUT",
            path: "/api/v1/retention",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("PUT", "/api/v1/retention").json(&json!({"thin_after_days": null})),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert_eq!(r.json()["keep_one_every_s"], 60, "{}", r.body);
                }
            },
        },
        Row {
            // A range of the owner's "vault" device with no points: nothing deleted, no tombstone.
            // Others have no such device (400).
            method: "POST",
            path: "/api/v1/points/delete",
            expect: [401, 400, 200, 200, 400],
            device: 403,
            request: |_, _| {
                Request::new("POST", "/api/v1/points/delete")
                    .json(&json!({"device": "vault", "from": "2001-01-01T00:00:00Z", "to": "2001-01-02T00:00:00Z"}))
            },
            check: |_, role, r| {
                if role.user() == Some("owner") {
                    assert_eq!(r.json()["deleted"], 0, "{}", r.body);
                }
            },
        },
        Row {
            // Nobody's undo: the same 404 for every caller.
            method: "POST",
            path: "/api/v1/points/restore",
            expect: all(404),
            device: 403,
            request: |_, _| Request::new("POST", "/api/v1/points/restore").json(&json!({"undo": "not-an-undo"})),
            check: no_check,
        },
        Row {
            // The owner's "vault" device has no stay then (404); others have no such device (400).
            method: "PUT",
            path: "/api/v1/timeline/visits",
            expect: [401, 400, 404, 404, 400],
            device: 403,
            request: |_, _| {
                Request::new("PUT", "/api/v1/timeline/visits")
                    .json(&json!({"device": "vault", "start": "2001-01-01T00:00:00Z", "deleted": true}))
            },
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/timeline/settings",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/timeline/settings"),
            check: no_check,
        },
        Row {
            method: "PUT",
            path: "/api/v1/timeline/settings",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("PUT", "/api/v1/timeline/settings").json(&json!({})),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/timeline/progress",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/timeline/progress"),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/places",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/places"),
            check: no_check,
        },
        Row {
            method: "PATCH",
            path: "/api/v1/places/{id}",
            expect: [401, 404, 404, 404, 404],
            device: 403,
            request: |_, _| Request::new("PATCH", "/api/v1/places/987654").json(&json!({"name": "Home"})),
            check: no_check,
        },
        Row {
            method: "POST",
            path: "/api/v1/places/{id}/merge",
            expect: [401, 404, 404, 404, 404],
            device: 403,
            request: |_, _| Request::new("POST", "/api/v1/places/987654/merge").json(&json!({"into": 987655})),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/stats",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/stats?from=2024-01-01&to=2024-12-31&period=year"),
            check: no_check,
        },
        Row {
            // The owner's "vault" point was run through the map refresh; nobody else has map rows.
            method: "GET",
            path: "/api/v1/map/overview",
            expect: all(200),
            device: 403,
            request: |_, _| {
                Request::new("GET", "/api/v1/map/overview?from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z")
            },
            check: |_, role, r| {
                if role != Role::Anonymous {
                    // Coordinates are given to 5 decimals.
                    only_owner_sees(role, &r.body, &format!("{OWNER_LAT:.5}"));
                }
            },
        },
        Row {
            method: "GET",
            // Other users have their own points (their imports); the owner's "vault" is theirs alone.
            path: "/api/v1/map/heatmap/{z}/{x}/{y}",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/map/heatmap/0/0/0?device=vault"),
            check: |_, role, r| {
                if role != Role::Anonymous && r.status == 200 {
                    only_owner_sees(role, &format!("total {}", r.json()["total"]), "total 1");
                }
            },
        },
        Row {
            // Other users have no device named "vault".
            method: "GET",
            path: "/api/v1/map/fog/{z}/{x}/{y}",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/map/fog/0/0/0?device=vault"),
            check: |_, role, r| {
                if role != Role::Anonymous && r.status == 200 {
                    only_owner_sees(role, &format!("total {}", r.json()["total"]), "total 1");
                }
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/imports",
            expect: [401, 202, 202, 202, 202],
            device: 403,
            request: |_, role| Request::new("POST", "/api/v1/imports").upload(&format!("{}.rec", role.name()), REC),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/imports",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/imports"),
            check: |ctx, role, r| {
                if role != Role::Anonymous {
                    only_owner_sees(role, &r.body, &ctx.owner_job);
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/imports/{id}",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| Request::new("GET", format!("/api/v1/imports/{}", ctx.owner_job)),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/imports/{id}/rejects",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| Request::new("GET", format!("/api/v1/imports/{}/rejects", ctx.owner_job)),
            check: |_, role, r| {
                if r.status == 200 {
                    assert!(r.body.contains("this line is not json"), "{}: {}", role.name(), r.body);
                }
            },
        },
        Row {
            // The owner's "vault" point shows only on the owner's live map (nobody has granted anything yet).
            method: "GET",
            path: "/api/v1/live",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/live").event_stream(),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/event-stream")));
                    only_owner_sees(role, &r.body, &owner_lat());
                }
            },
        },
        Row {
            // Without `Accept: text/event-stream`: where each device is now, as JSON, from memory.
            method: "GET",
            path: "/api/v1/live",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/live"),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert!(r.json()["positions"].is_array(), "{}", r.body);
                    only_owner_sees(role, &r.body, &owner_lat());
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/zones",
            expect: all(200),
            device: 403,
            request: |ctx, _| {
                spare_zone(ctx);
                Request::new("GET", "/api/v1/zones")
            },
            check: |_, role, r| {
                if role != Role::Anonymous {
                    only_owner_sees(role, &r.body, "owner-zone");
                }
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/zones",
            expect: all(201),
            device: 403,
            request: |_, role| Request::new("POST", "/api/v1/zones").json(&zone_body(&format!("by {}", role.name()))),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert_eq!(r.json()["rules"]["dwell_s"], 120, "{}", r.body);
                }
            },
        },
        Row {
            // Each caller aims at a fresh zone of the owner's; only the owner's callers see it.
            method: "GET",
            path: "/api/v1/zones/{id}",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| Request::new("GET", format!("/api/v1/zones/{}", spare_zone(ctx))),
            check: no_check,
        },
        Row {
            method: "PUT",
            path: "/api/v1/zones/{id}",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| {
                Request::new("PUT", format!("/api/v1/zones/{}", spare_zone(ctx))).json(&zone_body("owner-zone moved"))
            },
            check: no_check,
        },
        Row {
            method: "DELETE",
            path: "/api/v1/zones/{id}",
            expect: [401, 404, 204, 204, 404],
            device: 403,
            request: |ctx, _| Request::new("DELETE", format!("/api/v1/zones/{}", spare_zone(ctx))),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/events",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/events?after=0"),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert!(r.json()["events"].is_array(), "{}", r.body);
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/stream",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/stream?after=0").event_stream(),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/webhooks",
            expect: all(200),
            device: 403,
            request: |ctx, _| {
                spare_webhook(ctx);
                Request::new("GET", "/api/v1/webhooks")
            },
            check: |_, role, r| {
                if role != Role::Anonymous {
                    only_owner_sees(role, &r.body, "owner-hook");
                    assert!(!r.body.contains("secret"), "lists never show secrets: {}", r.body);
                }
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/webhooks",
            expect: all(201),
            device: 403,
            request: |_, role| {
                Request::new("POST", "/api/v1/webhooks")
                    .json(&json!({"url": format!("http://127.0.0.1:9/{}", role.name()), "preset": "ntfy"}))
            },
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert!(r.json()["secret"].is_string(), "{}", r.body);
                }
            },
        },
        Row {
            method: "DELETE",
            path: "/api/v1/webhooks/{id}",
            expect: [401, 404, 204, 204, 404],
            device: 403,
            request: |ctx, _| Request::new("DELETE", format!("/api/v1/webhooks/{}", spare_webhook(ctx))),
            check: no_check,
        },
        Row {
            method: "PATCH",
            path: "/api/v1/webhooks/{id}",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| {
                Request::new("PATCH", format!("/api/v1/webhooks/{}", spare_webhook(ctx)))
                    .json(&json!({"enabled": false}))
            },
            check: |_, role, r| {
                if r.status == 200 {
                    assert_eq!(r.json()["enabled"], false, "{}: {}", role.name(), r.body);
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/webhooks/{id}/deliveries",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| Request::new("GET", format!("/api/v1/webhooks/{}/deliveries", spare_webhook(ctx))),
            check: no_check,
        },
        Row {
            method: "POST",
            path: "/api/v1/shares",
            expect: all(201),
            device: 403,
            request: |_, _| {
                Request::new("POST", "/api/v1/shares").json(&json!({"kind": "range", "label": "matrix",
                    "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"}))
            },
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert!(r.json()["token"].is_string(), "{}", r.body);
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/shares",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/shares"),
            check: |ctx, role, r| {
                if role != Role::Anonymous {
                    only_owner_sees(role, &r.body, "vault day");
                    assert!(!r.body.contains(&ctx.owner_share), "lists never show tokens: {}", r.body);
                }
            },
        },
        Row {
            // Each caller aims at a fresh share of the owner's; only the owner's callers revoke it.
            method: "DELETE",
            path: "/api/v1/shares/{id}",
            expect: [401, 404, 204, 204, 404],
            device: 403,
            request: |ctx, _| Request::new("DELETE", format!("/api/v1/shares/{}", spare_share(ctx))),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/public/shares/{token}",
            expect: public(200),
            device: 200,
            request: |ctx, _| Request::new("GET", format!("/api/v1/public/shares/{}", ctx.owner_share)),
            check: |_, role, r| everyone_sees(role, &r.body, "\"owner\":\"owner\""),
        },
        Row {
            method: "GET",
            path: "/api/v1/public/shares/{token}/points",
            expect: public(200),
            device: 200,
            request: |ctx, _| Request::new("GET", format!("/api/v1/public/shares/{}/points", ctx.owner_share)),
            check: |_, role, r| everyone_sees(role, &r.body, &owner_lat()),
        },
        Row {
            method: "GET",
            path: "/api/v1/public/shares/{token}/timeline",
            expect: public(200),
            device: 200,
            request: |ctx, _| Request::new("GET", format!("/api/v1/public/shares/{}/timeline", ctx.owner_share)),
            check: |_, role, r| everyone_sees(role, &r.body, "\"device\":\"vault\""),
        },
        Row {
            method: "GET",
            path: "/api/v1/public/shares/{token}/track",
            expect: public(200),
            device: 200,
            request: |ctx, _| Request::new("GET", format!("/api/v1/public/shares/{}/track", ctx.owner_share)),
            check: |_, role, r| everyone_sees(role, &r.body, &format!("{OWNER_LAT:.5}")),
        },
        Row {
            method: "GET",
            path: "/api/v1/public/shares/{token}/live",
            expect: public(200),
            device: 200,
            request: |ctx, _| {
                Request::new("GET", format!("/api/v1/public/shares/{}/live", ctx.owner_live_share)).event_stream()
            },
            check: |_, _, r| assert!(r.header("content-type").is_some_and(|t| t.starts_with("text/event-stream"))),
        },
        Row {
            method: "GET",
            path: "/api/v1/friends",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/friends"),
            check: no_check,
        },
        Row {
            // Other and admin let the owner see them; the owner (and its token) lets other.
            method: "POST",
            path: "/api/v1/friends",
            expect: all(201),
            device: 403,
            request: |_, role| Request::new("POST", "/api/v1/friends").json(&json!({"user": friend_of(role)})),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert!(r.body.contains(&format!("\"user\":\"{}\"", friend_of(role))), "{}", r.body);
                }
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/photos",
            expect: [401, 200, 200, 200, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/photos?from=2024-03-01&to=2024-03-02"),
            check: |_, role, r| {
                if role == Role::Anonymous {
                    return;
                }
                let photos = r.json()["photos"].as_array().unwrap().len();
                let owner = matches!(role, Role::Owner | Role::Token);
                assert_eq!(photos, usize::from(owner), "{}: only the owner sees the photo: {}", role.name(), r.body);
            },
        },
        Row {
            // Another user's photo, even an administrator's request for it, is not there.
            method: "GET",
            path: "/api/v1/photos/{id}/thumbnail",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| Request::new("GET", format!("/api/v1/photos/{}/thumbnail", ctx.owner_photo)),
            check: no_check,
        },
        Row {
            // The owner's photo has no GPS of its own: its position is proposed from the vault point.
            method: "GET",
            path: "/api/v1/photos/proposals",
            expect: [401, 200, 200, 200, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/photos/proposals"),
            check: |ctx, role, r| {
                if role == Role::Anonymous {
                    return;
                }
                let body = r.json();
                let ids: Vec<&str> =
                    body["proposals"].as_array().unwrap().iter().map(|p| p["id"].as_str().unwrap()).collect();
                let owner = matches!(role, Role::Owner | Role::Token);
                let want: Vec<&str> = if owner { vec![ctx.owner_photo.as_str()] } else { vec![] };
                assert_eq!(ids, want, "{}: only the owner sees the proposal: {}", role.name(), r.body);
            },
        },
        Row {
            // Applying writes a sidecar beside the owner's photo; another user's (or the administrator's)
            // request names no photo of theirs. The token applies what the password applied: unchanged.
            method: "POST",
            path: "/api/v1/photos/proposals/apply",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| Request::new("POST", "/api/v1/photos/proposals/apply").json(&json!({"ids": [ctx.owner_photo]})),
            check: |_, role, r| {
                let want = match role {
                    Role::Owner => "written",
                    Role::Token => "unchanged",
                    _ => return,
                };
                assert_eq!(r.json()["results"][0]["outcome"], want, "{}: {}", role.name(), r.body);
            },
        },
        Row {
            method: "POST",
            path: "/api/v1/photos/proposals/undo",
            expect: [401, 404, 200, 200, 404],
            device: 403,
            request: |ctx, _| Request::new("POST", "/api/v1/photos/proposals/undo").json(&json!({"ids": [ctx.owner_photo]})),
            check: |_, role, r| {
                let want = match role {
                    Role::Owner => "removed",
                    Role::Token => "absent",
                    _ => return,
                };
                assert_eq!(r.json()["results"][0]["outcome"], want, "{}: {}", role.name(), r.body);
            },
        },
        Row {
            method: "GET",
            path: "/api/v1/nearby",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/nearby"),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert_eq!(r.json()["enter_m"], 200.0, "{}", r.body);
                }
            },
        },
        Row {
            // The defaults again: what everyone has already.
            method: "PUT",
            path: "/api/v1/nearby",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("PUT", "/api/v1/nearby").json(&json!({"enter_m": 200.0, "leave_m": 400.0})),
            check: |_, role, r| {
                if role != Role::Anonymous {
                    assert_eq!(r.json()["leave_m"], 400.0, "{}", r.body);
                }
            },
        },
        Row {
            // Between the grant rows above and the withdrawals below, owner and other share both ways;
            // admin shares with the owner but not the owner with admin, so admin has no one.
            method: "GET",
            path: "/api/v1/together",
            expect: all(200),
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/together?from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z"),
            check: |_, role, r| {
                if role == Role::Anonymous {
                    return;
                }
                let friends = &r.json()["friends"];
                match role {
                    Role::Admin => assert_eq!(friends, &json!([]), "{}", r.body),
                    _ => assert_eq!(friends[0]["user"], friend_of(role), "{}: {}", role.name(), r.body),
                }
                assert!(!r.body.contains(&owner_lat()), "no encounters, so no positions: {}", r.body);
            },
        },
        Row {
            // The friend a role's grant named: mutual for owner and other, one way only for admin.
            method: "GET",
            path: "/api/v1/together/{friend}",
            expect: [401, 200, 200, 200, 404],
            device: 403,
            request: |_, role| {
                let range = "from=2024-03-01T00:00:00Z&to=2024-03-02T00:00:00Z";
                Request::new("GET", format!("/api/v1/together/{}?{range}", friend_of(role)))
            },
            check: |_, role, r| {
                if r.status == 200 {
                    assert_eq!(r.json()["friend"]["user"], friend_of(role), "{}: {}", role.name(), r.body);
                }
            },
        },
        Row {
            // Withdrawn again; the owner's token finds the owner's grant already gone.
            method: "DELETE",
            path: "/api/v1/friends/{user}",
            expect: [401, 204, 204, 404, 204],
            device: 403,
            request: |_, role| Request::new("DELETE", format!("/api/v1/friends/{}", friend_of(role))),
            check: no_check,
        },
        Row {
            method: "GET",
            path: "/api/v1/config",
            expect: public(200),
            device: 200,
            request: |_, _| Request::new("GET", "/api/v1/config"),
            check: |_, role, r| everyone_sees(role, &r.body, "tile_url"),
        },
        Row {
            method: "GET",
            path: "/api/v1/admin/settings",
            expect: [401, 403, 403, 403, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/admin/settings"),
            check: no_check,
        },
        Row {
            method: "PUT",
            path: "/api/v1/admin/settings",
            expect: [401, 403, 403, 403, 200],
            device: 403,
            request: |_, _| Request::new("PUT", "/api/v1/admin/settings").json(&json!({"instance_name": "matrix"})),
            check: no_check,
        },
        // Exposure (docs/exposure.md): only the administrator configures it and hands out the
        // health-authority role; nobody here has that role, so its routes answer 403 to every
        // caller; the feature stays off, so everyone's own status and the public routes say so.
        Row {
            method: "GET",
            path: "/api/v1/admin/exposure",
            expect: [401, 403, 403, 403, 200],
            device: 403,
            request: |_, _| Request::new("GET", "/api/v1/admin/exposure"),
            check: |_, role, r| {
                if role == Role::Admin {
                    assert_eq!(r.json()["settings"]["enabled"], false, "off until enabled: {}", r.body);
                }
            },
        },
        Row {
            method: "PUT",
            path: "/api/v1/admin/exposure",
            expect: [401, 403, 403, 403, 200],
            device: 403,
            request: |_, _| Request::new("PUT", "/api/v1/admin/exposure").json(&json!({"min_minutes": 10})),
            check: no_check,
        },
        Row {
            method: "PUT",
            path: "/api/v1/users/{name}/role",
            expect: [401, 403, 403, 403, 200],
            device: 403,
            request: |_, _| Request::new("PUT", "/api/v1/users/other/role").json(&json!({"role": null})),
            check: no_check,
        },
        exposure_authority_row("GET", "/api/v1/exposure/cases", |_, _| Request::new("GET", "/api/v1/exposure/cases")),
        exposure_authority_row("POST", "/api/v1/exposure/cases", |_, _| {
            Request::new("POST", "/api/v1/exposure/cases").json(&json!({"user": "owner",
                "infectious_from": "2024-03-01T00:00:00Z", "infectious_to": "2024-03-02T00:00:00Z"}))
        }),
        exposure_authority_row("POST", "/api/v1/exposure/cases/{id}/withdraw", |_, _| {
            Request::new("POST", "/api/v1/exposure/cases/x/withdraw").json(&json!({"reason": "matrix"}))
        }),
        exposure_authority_row("GET", "/api/v1/exposure/cases/{id}/contacts", |_, _| {
            Request::new("GET", "/api/v1/exposure/cases/x/contacts")
        }),
        exposure_authority_row("GET", "/api/v1/exposure/proposals", |_, _| {
            Request::new("GET", "/api/v1/exposure/proposals")
        }),
        exposure_authority_row("POST", "/api/v1/exposure/proposals/{case}/{user}/decision", |_, _| {
            Request::new("POST", "/api/v1/exposure/proposals/x/owner/decision")
                .json(&json!({"approve": true, "reason": "matrix"}))
        }),
        exposure_authority_row("GET", "/api/v1/exposure/audit", |_, _| Request::new("GET", "/api/v1/exposure/audit")),
        exposure_authority_row("GET", "/api/v1/exposure/windows", |_, _| {
            Request::new("GET", "/api/v1/exposure/windows")
        }),
        Row {
            method: "GET",
            path: "/api/v1/exposure/status",
            expect: [401, 404, 404, 404, 404],
            device: 404,
            request: |_, _| Request::new("GET", "/api/v1/exposure/status"),
            check: exposure_is_off,
        },
        Row {
            method: "GET",
            path: "/api/v1/exposure/public-key",
            expect: public(404),
            device: 404,
            request: |_, _| Request::new("GET", "/api/v1/exposure/public-key"),
            check: exposure_is_off,
        },
        Row {
            method: "POST",
            path: "/api/v1/exposure/verify",
            expect: public(404),
            device: 404,
            request: |_, _| Request::new("POST", "/api/v1/exposure/verify").json(&json!({"code": "PX1.a.b"})),
            check: exposure_is_off,
        },
    ]
    .into_iter()
    .chain(groups::rows())
    .collect()
}

/// A health-authority route: nobody in the matrix has the role, so everyone with credentials gets
/// 403 (a device token too, whatever its scopes).
fn exposure_authority_row(method: &'static str, path: &'static str, request: fn(&Ctx, Role) -> Request) -> Row {
    Row { method, path, expect: [401, 403, 403, 403, 403], device: 403, request, check: no_check }
}

/// The answer while exposure checks are off (to every caller the route lets in).
fn exposure_is_off(_: &Ctx, _: Role, r: &common::Response) {
    if r.status == 404 {
        assert_eq!(r.json()["code"], "exposure_disabled", "{}", r.body);
    }
}

/// A new share of the owner's for a revoke cell (the cell's id).
fn spare_share(ctx: &Ctx) -> i64 {
    let body = json!({"kind": "range", "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z"});
    let r = json_request(&ctx.addr, "POST", "/api/v1/shares", &ctx.owner_basic, &body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_i64().unwrap()
}

/// A zone body named `name`.
fn zone_body(name: &str) -> Value {
    json!({"name": name, "shape": {"type": "circle", "center": [OWNER_LAT, 8.5], "radius_m": 100.0}})
}

/// A new zone of the owner's for a cell (its id).
fn spare_zone(ctx: &Ctx) -> i64 {
    let r = json_request(&ctx.addr, "POST", "/api/v1/zones", &ctx.owner_basic, &zone_body("owner-zone"));
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_i64().unwrap()
}

/// A new webhook subscription of the owner's for a cell (its id); at most 20 are kept.
fn spare_webhook(ctx: &Ctx) -> i64 {
    let list = http(&ctx.addr, "GET", "/api/v1/webhooks", &[("Authorization", ctx.owner_basic.as_str())], b"").json();
    for hook in list["webhooks"].as_array().unwrap().iter().skip(10) {
        let path = format!("/api/v1/webhooks/{}", hook["id"]);
        http(&ctx.addr, "DELETE", &path, &[("Authorization", ctx.owner_basic.as_str())], b"");
    }
    let body = json!({"url": "http://127.0.0.1:9/owner-hook", "kinds": ["zone.enter"]});
    let r = json_request(&ctx.addr, "POST", "/api/v1/webhooks", &ctx.owner_basic, &body);
    assert_eq!(r.status, 201, "{}", r.body);
    r.json()["id"].as_i64().unwrap()
}

/// Runs the map refresh over all of a device's points, on the server's data directory.
fn refresh_map(data: &std::path::Path, user: &str, device: &str) {
    use polo_store::Store as _;
    let store = polo_store_sqlite::SqliteStore::open(data.join("polo.sqlite")).unwrap();
    let user = store.user_by_name(user).unwrap().unwrap().id;
    let device = store.list_devices(user).unwrap().into_iter().find(|d| d.name == device).unwrap().id;
    let (first, last) = (polo_domain::Timestamp(i64::MIN), polo_domain::Timestamp(i64::MAX));
    polo_derived::map::refresh_device(&store, user, device, first, last).unwrap();
}

/// Scans a photo taken on the owner's "vault" day into `user`'s library; its id.
fn add_photo(data: &std::path::Path, user: &str, auth: &str, addr: &str) -> String {
    let folder = data.join("photos");
    std::fs::create_dir_all(&folder).unwrap();
    let spec = polo_photos::synthetic::Spec {
        wall: Some(polo_domain::Timestamp::from_civil(2024, 3, 1, 12, 30, 0, 0).unwrap()),
        offset_minutes: Some(0),
        ..Default::default()
    };
    std::fs::write(
        folder.join("IMG_0001.jpg"),
        polo_photos::synthetic::image(polo_photos::synthetic::ImageFormat::Jpeg, &spec),
    )
    .unwrap();
    let out = polo(data).args(["photos", "scan", "--user", user]).arg(&folder).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let page = http(addr, "GET", "/api/v1/photos?from=2024-03-01&to=2024-03-02", &[("Authorization", auth)], b"");
    assert_eq!(page.status, 200, "{}", page.body);
    page.json()["photos"][0]["id"].as_str().unwrap().to_owned()
}

/// A fresh user, made by the administrator, for a caller to try to delete.
fn spare_user(ctx: &Ctx) -> String {
    static NEXT: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let name = format!("spare-{}", NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed));
    let body = json!({"name": name, "password": PASSWORD});
    let r = json_request(&ctx.addr, "POST", "/api/v1/users", &basic("admin", PASSWORD), &body);
    assert_eq!(r.status, 201, "{}", r.body);
    name
}

/// A new token of the owner's for a revoke cell (the cell's id).
fn spare_token_for_revoke(ctx: &Ctx) -> i64 {
    ctx.spare_token().0
}

fn upload_and_wait(addr: &str, auth: &str, name: &str, content: &str) -> String {
    let request = Request::new("POST", "/api/v1/imports").upload(name, content);
    let headers: Vec<(&str, &str)> =
        request.headers.iter().map(|(n, v)| (*n, v.as_str())).chain([("Authorization", auth)]).collect();
    let r = http(addr, "POST", &request.path, &headers, &request.body);
    assert_eq!(r.status, 202, "{}", r.body);
    let id = r.json()["id"].as_str().unwrap().to_owned();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let job = http(addr, "GET", &format!("/api/v1/imports/{id}"), &[("Authorization", auth)], b"").json();
        if job["status"] == "done" || job["status"] == "failed" {
            assert_eq!(job["status"], "done", "{job}");
            return id;
        }
        assert!(Instant::now() < deadline, "the owner's import did not finish: {job}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The operations of the served OpenAPI document, as `METHOD path`.
fn documented_routes(addr: &str) -> BTreeSet<String> {
    let spec = http(addr, "GET", "/api/openapi.json", &[], b"");
    assert_eq!(spec.status, 200, "{}", spec.body);
    let spec = spec.json();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut routes = BTreeSet::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for method in ["get", "put", "post", "delete", "options", "head", "patch", "trace"] {
            if item.get(method).is_some() {
                routes.insert(format!("{} {path}", method.to_ascii_uppercase()));
            }
        }
    }
    routes
}

#[test]
fn every_route_answers_every_caller_exactly_as_specified() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path();
    add_user(data, "owner");
    add_user(data, "other");
    add_user(data, groups::MEMBER);
    let mut admin = polo(data)
        .args(["user", "add", "admin", "--admin", "--password-stdin"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(&mut admin.stdin.take().unwrap(), format!("{PASSWORD}\n").as_bytes()).unwrap();
    assert!(admin.wait().unwrap().success());
    let server = serve(data, &["--trusted-proxy", "127.0.0.1/32"]);
    let addr = server.addr.clone();

    // The owner's data: a device with a token, and in a device no cell writes to ("vault": the
    // token's cells store into the token's device) a point and a visit at a latitude only the
    // owner has; an import with rejects.
    let owner_basic = basic("owner", PASSWORD);
    let device = json_request(&addr, "POST", "/api/v1/devices", &owner_basic, &json!({"name": "phone"}));
    assert_eq!(device.status, 201, "{}", device.body);
    let owner_device = device.json()["id"].as_i64().unwrap();
    let points = json!([{"time": "2024-03-01T12:00:00Z", "lat": OWNER_LAT, "lon": 8.5, "device": "vault"}]);
    assert_eq!(json_request(&addr, "POST", "/api/v1/points", &owner_basic, &points).status, 200);
    let visit = json!({"locations": [{"type": "Feature", "geometry": {"type": "Point", "coordinates": [8.5, OWNER_LAT]},
        "properties": {"action": "visit", "arrival_date": "2024-03-01T12:00:00Z",
            "departure_date": "2024-03-01T13:00:00Z", "device_id": "vault"}}]});
    assert_eq!(json_request(&addr, "POST", "/api/overland", &owner_basic, &visit).status, 200);
    let owner_job = upload_and_wait(&addr, &owner_basic, "owner.rec", REC);
    refresh_map(data, "owner", "vault");
    let share = json!({"kind": "range", "from": "2024-03-01T00:00:00Z", "to": "2024-03-02T00:00:00Z",
        "device": "vault", "label": "vault day"});
    let share = json_request(&addr, "POST", "/api/v1/shares", &owner_basic, &share);
    assert_eq!(share.status, 201, "{}", share.body);
    let owner_share = share.json()["token"].as_str().unwrap().to_owned();
    let live =
        json_request(&addr, "POST", "/api/v1/shares", &owner_basic, &json!({"kind": "live", "expires_in_s": 3600}));
    assert_eq!(live.status, 201, "{}", live.body);
    let owner_live_share = live.json()["token"].as_str().unwrap().to_owned();
    let owner_photo = add_photo(data, "owner", &owner_basic, &addr);
    let mut ctx = Ctx {
        addr: addr.clone(),
        owner_basic,
        owner_token: String::new(),
        device_token: String::new(),
        owner_device,
        owner_job,
        owner_share,
        owner_live_share,
        owner_photo,
    };
    ctx.owner_token = ctx.spare_token().1;
    ctx.device_token = ctx.token_with(&json!([])).1;

    let rows = rows();
    let documented = documented_routes(&addr);
    let covered: BTreeSet<String> = rows.iter().map(|r| format!("{} {}", r.method, r.path)).collect();
    let missing: Vec<_> = documented.difference(&covered).collect();
    let stale: Vec<_> = covered.difference(&documented).collect();
    assert!(missing.is_empty(), "documented routes without a row in the matrix: {missing:?}");
    assert!(stale.is_empty(), "matrix rows for routes the document does not have: {stale:?}");

    let mut failures = Vec::new();
    let mut table = format!("{:<42}{}\n", "route", ROLES.map(|r| format!("{:>10}", r.name())).join(""));
    for row in &rows {
        let mut line = format!("{:<42}", format!("{} {}", row.method, row.path));
        let [anonymous, other, owner, token, admin] = row.expect;
        for (role, want) in ROLES.into_iter().zip([anonymous, other, owner, token, admin, row.device]) {
            let request = (row.request)(&ctx, role);
            assert_eq!(request.method, row.method);
            let response = ctx.send(role, &request);
            line.push_str(&format!("{:>10}", response.status));
            // The scopeless token's refusals carry nothing to check.
            let checked = role != Role::Device || response.status < 300;
            if response.status == want {
                if checked {
                    (row.check)(&ctx, role, &response);
                }
            } else {
                failures.push(format!(
                    "{} {} as {}: {} (want {want}): {}",
                    row.method,
                    request.path,
                    role.name(),
                    response.status,
                    response.body.chars().take(300).collect::<String>()
                ));
            }
            if response.status >= 400 && !request.path.starts_with("/api/overland") {
                let body = response.json();
                assert!(body["code"].is_string() && body["message"].is_string(), "error shape: {}", response.body);
            }
        }
        table.push_str(&line);
        table.push('\n');
    }
    println!("{table}");
    assert!(failures.is_empty(), "{} cells differ:\n{}", failures.len(), failures.join("\n"));

    // The administrator from outside the admin networks: refused on every admin-only row.
    let admin_only: Vec<&Row> =
        rows.iter().filter(|r| r.expect[..4] == [401, 403, 403, 403] && r.expect[4] != 403).collect();
    assert_eq!(admin_only.len(), 11, "users, roles, instance and exposure settings, replication tasks, the audit log");
    let outside = |request: &Request| {
        let auth = ctx.authorization(Role::Admin).unwrap();
        let mut headers: Vec<(&str, &str)> = request.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        headers.extend([("Authorization", auth.as_str()), ("X-Forwarded-For", "198.51.100.7")]);
        http(&addr, request.method, &request.path, &headers, &request.body)
    };
    for row in admin_only {
        let r = outside(&(row.request)(&ctx, Role::Admin));
        assert_eq!(r.status, 403, "{} {} as the admin from outside: {}", row.method, row.path, r.body);
        let body = r.json();
        assert_eq!(body["code"], "forbidden", "{}", r.body);
        assert!(body["message"].as_str().unwrap().contains("--admin-network"), "{}", r.body);
    }
    assert_eq!(outside(&Request::new("GET", "/api/v1/me")).status, 200, "other routes serve the admin anywhere");
    let users = http(&addr, "GET", "/api/v1/users", &[("Authorization", &basic("admin", PASSWORD))], b"").json();
    let names: Vec<&str> = users["users"].as_array().unwrap().iter().map(|u| u["name"].as_str().unwrap()).collect();
    let (spares, names): (Vec<&str>, Vec<&str>) = names.into_iter().partition(|n| n.starts_with("spare-"));
    assert_eq!(names, ["owner", "other", groups::MEMBER, "admin", "made-by-admin"], "the outside POST created nobody");
    // One spare per caller of the delete row, and one for the outside delete: only the admin's went.
    assert_eq!(
        spares,
        ["spare-0", "spare-1", "spare-2", "spare-3", "spare-5", "spare-6"],
        "the outside DELETE deleted nobody"
    );

    // The spare tokens other callers aimed at still work: a 404 revoked nothing.
    let (id, secret) = ctx.spare_token();
    for role in [Role::Other, Role::Admin] {
        let r = ctx.send(role, &Request::new("DELETE", format!("/api/v1/tokens/{id}")));
        assert_eq!(r.status, 404, "{}", r.body);
    }
    let bearer = format!("Bearer {secret}");
    let me = http(&addr, "GET", "/api/v1/me", &[("Authorization", bearer.as_str())], b"");
    assert_eq!(me.status, 200, "{}", me.body);
}
