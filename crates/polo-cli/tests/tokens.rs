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
