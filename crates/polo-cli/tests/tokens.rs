//! `polo token` end to end: a token made by the real binary authenticates
//! against the real server (Bearer, Basic, and Overland's literal
//! `Basic <token>:`), and stops working once revoked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::Value;

fn polo(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_polo"));
    command.arg("--data-dir").arg(data_dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("POLO_") {
            command.env_remove(key);
        }
    }
    command
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn add_user(data_dir: &Path, name: &str) {
    let mut child = polo(data_dir)
        .args(["user", "add", name, "--password-stdin"])
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(b"a long password\n").unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add failed: {}", String::from_utf8_lossy(&out.stderr));
}

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn serve(data_dir: &Path) -> (Server, String) {
    let mut server = Server(
        polo(data_dir)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stderr(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let mut lines = BufReader::new(server.0.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("polo listening on http://").nth(1) {
            let addr = rest.trim().to_owned();
            std::thread::spawn(move || for _ in lines {});
            return (server, addr);
        }
    }
    panic!("polo serve exited before listening");
}

fn get_me(addr: &str, authorization: &str) -> (u16, Value) {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    write!(
        stream,
        "GET /api/v1/me HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {authorization}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = response.split("\r\n\r\n").nth(1).unwrap_or("");
    (status, serde_json::from_str(body).unwrap_or(Value::Null))
}

fn base64(text: &str) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in text.as_bytes().chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
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

    let (_server, addr) = serve(&data);
    for authorization in
        [format!("Bearer {token}"), format!("Basic {token}:"), format!("Basic {}", base64(&format!("alice:{token}")))]
    {
        let (status, body) = get_me(&addr, &authorization);
        assert_eq!(status, 200, "{authorization}: {body}");
        assert_eq!((body["user"]["name"].as_str(), body["device"]["name"].as_str()), (Some("alice"), Some("phone")));
    }
    let (status, body) = get_me(&addr, &format!("Basic {}", base64("alice:a long password")));
    assert_eq!((status, body["via"].as_str()), (200, Some("basic_password")));
    let (status, body) = get_me(&addr, "Bearer polo_not_a_token");
    assert_eq!((status, body["code"].as_str()), (401, Some("unauthorized")));

    run_ok(polo(&data).args(["token", "revoke", "--user", "alice", &id.to_string()]));
    let (status, _) = get_me(&addr, &format!("Bearer {token}"));
    assert_eq!(status, 401, "a revoked token no longer works");
    let (status, _) = get_me(&addr, &format!("Bearer {}", second.trim()));
    assert_eq!(status, 200, "the other token still works");
    let out = polo(&data).args(["token", "revoke", "--user", "alice", &id.to_string()]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no token"));
    let out = polo(&data).args(["token", "create", "--user", "nobody", "--device", "x"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("polo user add nobody"));
}
