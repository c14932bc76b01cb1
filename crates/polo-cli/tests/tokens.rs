//! `polo token` end to end: a token made by the real binary authenticates
//! against the real server (Bearer, Basic, and Overland's literal
//! `Basic <token>:`), and stops working once revoked.

mod common;

use common::{add_user, basic, http, polo, run_ok, serve};
use serde_json::Value;

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
