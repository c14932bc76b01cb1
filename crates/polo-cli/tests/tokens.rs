//! `polo token` end to end: a token made by the real binary authenticates
//! against the real server (Bearer, Basic, and Overland's literal
//! `Basic <token>:`), and stops working once revoked. And the second factor
//! of password logins ([`two_factor_login_with_codes_and_recovery_codes`]),
//! which leaves device tokens working while Basic passwords stop.

mod common;

use common::{add_admin, add_user, basic, http, polo, run_ok, serve};
use polo_server::auth::totp::code::{base32_decode, totp};
use serde_json::{Value, json};

fn get_me(addr: &str, authorization: &str) -> (u16, Value) {
    let response = http(addr, "GET", "/api/v1/me", &[("Authorization", authorization)], b"");
    (response.status, serde_json::from_str(&response.body).unwrap_or(Value::Null))
}

#[test]
fn cli_tokens_authenticate_against_the_server_until_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    let stdout =
        run_ok(polo(&data).args(["token", "create", "--user", "alice", "--device", "phone", "--label", "Overland"]));
    let token = stdout.trim().to_owned();
    assert_eq!(stdout.lines().count(), 1, "only the token on stdout: {stdout:?}");
    assert!(token.starts_with("polo_") && token.len() == 48, "{token}");
    // A second token for the same device reuses the device.
    let second = run_ok(polo(&data).args(["token", "create", "--user", "alice", "--device", "phone"]));
    assert_ne!(second.trim(), token);
    let list: Value =
        serde_json::from_str(&run_ok(polo(&data).args(["token", "list", "--user", "alice", "--json"]))).unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    assert_eq!((list[0]["device"].as_str(), list[0]["label"].as_str()), (Some("phone"), Some("Overland")));
    assert!(!list[0].to_string().contains(&token), "the list never shows secrets");
    let id = list[0]["id"].as_i64().unwrap();

    let server = serve(&data, &[]);
    let addr = server.addr.clone();
    for authorization in [format!("Bearer {token}"), format!("Basic {token}:"), basic("alice", &token)] {
        let (status, body) = get_me(&addr, &authorization);
        assert_eq!(status, 200, "{authorization}: {body}");
        assert_eq!((body["user"]["name"].as_str(), body["device"]["name"].as_str()), (Some("alice"), Some("phone")));
    }
    let (status, body) = get_me(&addr, &basic("alice", "a long password"));
    assert_eq!((status, body["via"].as_str()), (200, Some("basic_password")));
    let (status, body) = get_me(&addr, "Bearer polo_not_a_token");
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));

    run_ok(polo(&data).args(["token", "revoke", "--user", "alice", &id.to_string()]));
    // The server remembers resolved tokens briefly; a revocation by another
    // process takes effect within that time.
    let deadline = std::time::Instant::now() + polo_server::auth::TOKEN_CACHE_TTL + std::time::Duration::from_secs(2);
    while get_me(&addr, &format!("Bearer {token}")).0 != 401 {
        assert!(std::time::Instant::now() < deadline, "a revoked token no longer works");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    let (status, _) = get_me(&addr, &format!("Bearer {}", second.trim()));
    assert_eq!(status, 200, "the other token still works");
    let out = polo(&data).args(["token", "revoke", "--user", "alice", &id.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token"));
    let out = polo(&data).args(["token", "create", "--user", "nobody", "--device", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("polo user add nobody"));
}

/// `--scope` is stored with the token and holds on the server; without it a token is its device's
/// only. Bad scopes and device names are refused before anything is stored.
#[test]
fn cli_tokens_carry_the_scopes_they_were_made_with() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    let create_for = |device: &str, extra: &[&str]| {
        let mut args = vec!["token", "create", "--user", "alice", "--device", device];
        args.extend_from_slice(extra);
        polo(&data).args(&args).output().unwrap()
    };
    let create = |extra: &[&str]| create_for("phone", extra);
    let phone = create(&[]);
    assert!(phone.status.success());
    assert!(String::from_utf8_lossy(&phone.stderr).contains("no scopes: the device only"));
    let phone = String::from_utf8(phone.stdout).unwrap().trim().to_owned();
    let reader = create(&["--scope", "read", "--scope", "share,friends"]);
    assert!(reader.status.success(), "{}", String::from_utf8_lossy(&reader.stderr));
    let reader = String::from_utf8(reader.stdout).unwrap().trim().to_owned();
    let list: Value =
        serde_json::from_str(&run_ok(polo(&data).args(["token", "list", "--user", "alice", "--json"]))).unwrap();
    assert_eq!(list[0]["scopes"], serde_json::json!([]));
    assert_eq!(list[1]["scopes"], serde_json::json!(["read", "share", "friends"]));

    for (device, extra, problem) in [
        ("phone", &["--scope", "root"][..], "--scope: unknown token scope \"root\""),
        ("../../etc/passwd", &[][..], "--device: the device name contains '/'"),
    ] {
        let out = create_for(device, extra);
        assert_eq!(out.status.code(), Some(2), "{device} {extra:?}");
        assert!(String::from_utf8_lossy(&out.stderr).contains(problem), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let out = polo(&data).args(["import", "--user", "alice", "--device", "a\nb", "nothing.gpx"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--device: the device name contains the control character"));

    let server = serve(&data, &[]);
    let points = |token: &str| {
        http(&server.addr, "GET", "/api/v1/points", &[("Authorization", &format!("Bearer {token}"))], b"").status
    };
    assert_eq!(points(&phone), 403);
    assert_eq!(points(&reader), 200);
    let (status, me) = get_me(&server.addr, &format!("Bearer {reader}"));
    assert_eq!((status, &me["scopes"]), (200, &serde_json::json!(["read", "share", "friends"])));
}

/// A web login: the session cookie and the CSRF token, or the error answer.
fn login(addr: &str, body: &Value) -> Result<(String, String), (u16, Value)> {
    let response =
        http(addr, "POST", "/api/v1/session", &[("Content-Type", "application/json")], body.to_string().as_bytes());
    if response.status != 200 {
        return Err((response.status, serde_json::from_str(&response.body).unwrap_or(Value::Null)));
    }
    let cookie = response.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    Ok((cookie, response.json()["csrf_token"].as_str().unwrap().to_owned()))
}

/// A request with the session: cookie and CSRF header.
fn with_session(addr: &str, session: &(String, String), method: &str, path: &str, body: &Value) -> (u16, Value) {
    let headers =
        [("Cookie", session.0.as_str()), ("X-CSRF-Token", session.1.as_str()), ("Content-Type", "application/json")];
    let response = http(addr, method, path, &headers, body.to_string().as_bytes());
    (response.status, serde_json::from_str(&response.body).unwrap_or(Value::Null))
}

fn unix_now() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64
}

#[test]
fn two_factor_login_with_codes_and_recovery_codes() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    add_user(&data, "alice");
    add_admin(&data, "root");
    let token = run_ok(polo(&data).args(["token", "create", "--user", "alice", "--device", "phone"])).trim().to_owned();
    let server = serve(&data, &["--access-log", "off"]);
    let addr = server.addr.as_str();
    let password = json!({"username": "alice", "password": "a long password"});
    let session = login(addr, &password).unwrap();

    // Enrolment: a secret and its otpauth URL; nothing changes until a code confirms it.
    let (status, enrolment) = with_session(addr, &session, "POST", "/api/v1/me/2fa", &Value::Null);
    assert_eq!(status, 200, "{enrolment}");
    let secret = base32_decode(enrolment["secret"].as_str().unwrap()).unwrap();
    let url = enrolment["otpauth_url"].as_str().unwrap();
    assert!(url.starts_with("otpauth://totp/polo:alice?secret=") && url.contains("&digits=6&period=30"), "{url}");
    assert!(login(addr, &password).is_ok(), "pending enrolment: the password alone still logs in");
    let now = unix_now();
    let current = totp(&secret, now);
    let wrong = if current == "000000" { "111111" } else { "000000" };
    let (status, body) = with_session(addr, &session, "POST", "/api/v1/me/2fa/confirm", &json!({"code": wrong}));
    assert_eq!((status, body["code"].as_str()), (403, Some("forbidden")), "{body}");
    assert!(body["message"].as_str().unwrap().starts_with("code:"), "the message names the field: {body}");
    let (status, body) = with_session(addr, &session, "POST", "/api/v1/me/2fa/confirm", &json!({"code": current}));
    assert_eq!(status, 200, "{body}");
    let recovery: Vec<String> =
        body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(recovery.len(), 10);
    let (_, view) = with_session(addr, &session, "GET", "/api/v1/me/2fa", &Value::Null);
    assert_eq!((view["enabled"].as_bool(), view["recovery_codes_left"].as_u64()), (Some(true), Some(10)), "{view}");

    // Logins now need the code: none, a wrong one, a used one, then the next step's.
    let (status, body) = login(addr, &password).unwrap_err();
    assert_eq!((status, body["code"].as_str()), (401, Some("two_factor_required")), "{body}");
    let (status, body) =
        login(addr, &json!({"username": "alice", "password": "a long password", "code": wrong})).unwrap_err();
    assert_eq!((status, body["message"].as_str()), (401, Some("wrong two-factor code")), "{body}");
    let replay = json!({"username": "alice", "password": "a long password", "code": current});
    assert_eq!(login(addr, &replay).unwrap_err().0, 401, "the confirming code is used up");
    let (status, _) =
        login(addr, &json!({"username": "alice", "password": "wrong password", "code": totp(&secret, now + 30)}))
            .unwrap_err();
    assert_eq!(status, 401, "a right code does not make up for a wrong password");
    let next = json!({"username": "alice", "password": "a long password", "code": totp(&secret, now + 30)});
    let second = login(addr, &next).expect("the next step's code logs in");

    // Basic with the password has no room for a code: refused; device tokens keep working.
    let response = http(addr, "GET", "/api/v1/me", &[("Authorization", &basic("alice", "a long password"))], b"");
    assert_eq!(response.status, 401);
    assert!(response.body.contains("two-factor"), "{}", response.body);
    assert_eq!(get_me(addr, &format!("Bearer {token}")).0, 200);

    // A recovery code works once, in place of the app's code.
    let with_recovery = json!({"username": "alice", "password": "a long password", "code": recovery[0].to_lowercase()});
    assert!(login(addr, &with_recovery).is_ok());
    assert_eq!(login(addr, &with_recovery).unwrap_err().0, 401, "used up");
    let (_, view) = with_session(addr, &second, "GET", "/api/v1/me/2fa", &Value::Null);
    assert_eq!(view["recovery_codes_left"], 9);

    // The sessions page lists alice's browsers and her token, each with its address; ending one
    // signs that browser out.
    let (status, listed) = with_session(addr, &second, "GET", "/api/v1/me/sessions", &Value::Null);
    assert_eq!(status, 200, "{listed}");
    let sessions = listed["sessions"].as_array().unwrap();
    assert!(sessions.len() >= 3, "{listed}");
    assert!(sessions.iter().all(|s| s["address"] == "127.0.0.1"), "{listed}");
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1, "{listed}");
    let tokens = listed["tokens"].as_array().unwrap();
    assert_eq!((tokens.len(), tokens[0]["address"].as_str()), (1, Some("127.0.0.1")), "the token's use: {listed}");
    let first_id = sessions.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    let (status, _) = with_session(addr, &second, "DELETE", &format!("/api/v1/me/sessions/{first_id}"), &Value::Null);
    assert_eq!(status, 204);
    let (_, after) = with_session(addr, &second, "GET", "/api/v1/me/sessions", &Value::Null);
    assert!(after["sessions"].as_array().unwrap().iter().all(|s| s["id"] != first_id.as_str()), "{after}");
    let (status, _) = with_session(addr, &second, "DELETE", "/api/v1/me/sessions/0123456789abcdef", &Value::Null);
    assert_eq!(status, 404);

    // The audit log has the sign-ins, the failures with their reasons and the second factor's changes.
    let root = login(addr, &json!({"username": "root", "password": "a long password"})).unwrap();
    let (status, audit) =
        with_session(addr, &root, "GET", "/api/v1/admin/audit?user=alice&action=auth.&limit=100", &Value::Null);
    assert_eq!(status, 200, "{audit}");
    let entries = audit["entries"].as_array().unwrap();
    let has = |action: &str, key: &str, value: &str| {
        entries.iter().any(|e| e["action"] == action && e["detail"][key].as_str() == Some(value))
    };
    assert!(has("auth.login", "second_factor", "totp"), "{audit}");
    assert!(has("auth.login", "second_factor", "recovery_code"), "{audit}");
    assert!(has("auth.2fa.enable", "ip", "127.0.0.1"), "{audit}");
    assert!(has("auth.session.revoke", "session", &first_id), "{audit}");
    let failures =
        with_session(addr, &root, "GET", "/api/v1/admin/audit?actor=alice&action=auth.login_failed", &Value::Null).1;
    let reasons: Vec<&str> =
        failures["entries"].as_array().unwrap().iter().filter_map(|e| e["detail"]["reason"].as_str()).collect();
    assert!(
        reasons.contains(&"wrong two-factor code") && reasons.contains(&"wrong user name or password"),
        "{reasons:?}"
    );
    let (status, body) = with_session(addr, &root, "GET", "/api/v1/admin/audit?since=yesterday", &Value::Null);
    assert_eq!((status, body["message"].as_str().map(|m| m.starts_with("since:"))), (400, Some(true)), "{body}");

    // An administrator may require two factors of administrators: root, without one, is then refused.
    let (status, body) =
        with_session(addr, &root, "PUT", "/api/v1/admin/settings", &json!({"require_admin_2fa": true}));
    assert_eq!((status, body["require_admin_2fa"].as_bool()), (200, Some(true)), "{body}");
    let (status, body) = with_session(addr, &root, "GET", "/api/v1/users", &Value::Null);
    assert_eq!(status, 403, "{body}");
    assert!(body["message"].as_str().unwrap().contains("two-factor"), "{body}");
    let (status, _) = with_session(addr, &root, "GET", "/api/v1/me", &Value::Null);
    assert_eq!(status, 200, "the administrator may still use their own account, to turn it on");

    // Turning it off needs a code: a wrong one is refused, a recovery code does it.
    let (status, _) = with_session(addr, &second, "POST", "/api/v1/me/2fa/disable", &json!({"code": wrong}));
    assert_eq!(status, 403);
    let (status, _) = with_session(addr, &second, "POST", "/api/v1/me/2fa/disable", &json!({"code": recovery[1]}));
    assert_eq!(status, 204);
    assert!(login(addr, &password).is_ok(), "the password alone logs in again");
}
