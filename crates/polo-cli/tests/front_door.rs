//! End-to-end tests of `polo serve`'s front door on the real binary: the
//! Host allow-list drops connections without a byte, the admin-network
//! allow-list guards `/metrics`, access logs go where they are told.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::Value;

mod common;

use common::polo;

struct Served {
    child: Child,
    addr: String,
    stderr: Arc<Mutex<Vec<String>>>,
}

impl Served {
    fn start(mut command: Command) -> Self {
        let mut child = command.stderr(Stdio::piped()).stdout(Stdio::null()).spawn().unwrap();
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let mut addr = None;
        for line in lines.by_ref() {
            let line = line.unwrap();
            let found = line.split("polo listening on http://").nth(1).map(|rest| rest.trim().to_owned());
            stderr.lock().unwrap().push(line);
            if found.is_some() {
                addr = found;
                break;
            }
        }
        let Some(addr) = addr else { panic!("polo serve exited before listening: {:?}", stderr.lock().unwrap()) };
        let sink = Arc::clone(&stderr);
        std::thread::spawn(move || {
            for line in lines.map_while(Result::ok) {
                sink.lock().unwrap().push(line);
            }
        });
        Self { child, addr, stderr }
    }

    fn stderr_contains(&self, needle: &str) -> bool {
        self.stderr.lock().unwrap().iter().any(|l| l.contains(needle))
    }

    /// Waits up to five seconds for a line: the reader thread may lag.
    fn stderr_shows(&self, needle: &str) -> bool {
        for _ in 0..50 {
            if self.stderr_contains(needle) {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    fn stop(mut self) {
        let killed = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(killed.success());
        let status = self.child.wait().unwrap();
        assert!(status.success(), "polo serve exited with {status}");
    }
}

fn raw(addr: &str, request: &str) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    stream.write_all(request.as_bytes()).unwrap();
    let mut response = Vec::new();
    match stream.read_to_end(&mut response) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("read failed (a timeout means the connection was left open): {e}"),
    }
    response
}

fn get(addr: &str, path: &str, host: &str) -> (u16, String) {
    let response = raw(addr, &format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"));
    let text = String::from_utf8_lossy(&response).into_owned();
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    (status, body)
}

#[test]
fn a_host_outside_the_allow_list_gets_zero_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = polo(dir.path());
    command.args(["serve", "--listen", "127.0.0.1:0", "--access-log", "off", "--allowed-host", "Polo.Example.org"]);
    let served = Served::start(command);

    let response = raw(&served.addr, "GET /healthz HTTP/1.1\r\nHost: forged.example\r\n\r\n");
    assert!(response.is_empty(), "got {:?}", String::from_utf8_lossy(&response));
    let (status, body) = get(&served.addr, "/healthz", "polo.example.org:8080");
    assert_eq!(status, 200, "{body}");
    let (status, metrics) = get(&served.addr, "/metrics", "POLO.EXAMPLE.ORG");
    assert_eq!(status, 200, "{metrics}");
    assert!(metrics.contains("polo_front_door_dropped_total{reason=\"host\"} 1"), "{metrics}");
    assert!(!served.stderr_contains("accepting any Host header"));
    served.stop();
}

#[test]
fn without_a_host_list_the_start_up_log_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = polo(dir.path());
    command.args(["serve", "--listen", "127.0.0.1:0", "--access-log", "off"]);
    let served = Served::start(command);
    let (status, _) = get(&served.addr, "/healthz", "whatever.example");
    assert_eq!(status, 200);
    // The warning is logged before the first connection is accepted.
    assert!(served.stderr_shows("accepting any Host header: set --allowed-host in production"));
    served.stop();
}

#[test]
fn metrics_from_outside_the_admin_networks_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let mut command = polo(dir.path());
    command.args(["serve", "--listen", "127.0.0.1:0", "--access-log", "off", "--admin-network", "10.0.0.0/8"]);
    let served = Served::start(command);
    let (status, body) = get(&served.addr, "/metrics", "localhost");
    assert_eq!(status, 403, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(body["code"], "forbidden");
    let (status, _) = get(&served.addr, "/healthz", "localhost");
    assert_eq!(status, 200, "only admin routes are restricted");
    served.stop();
}

#[test]
fn env_and_file_settings_apply_and_access_logs_go_to_a_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("access.jsonl");
    let config = dir.path().join("polo.toml");
    std::fs::write(
        &config,
        format!(
            "access_log = {:?}\nallowed_hosts = [\"from-file.example\"]\ntrusted_proxies = [\"127.0.0.1\"]\n",
            log.display()
        ),
    )
    .unwrap();
    let mut command = polo(dir.path());
    command.args(["--config"]).arg(&config).args(["serve", "--listen", "127.0.0.1:0"]);
    // The environment wins over the file.
    command.env("POLO_ALLOWED_HOSTS", "a.example,polo.example");
    let served = Served::start(command);
    assert!(raw(&served.addr, "GET /healthz HTTP/1.1\r\nHost: from-file.example\r\n\r\n").is_empty());
    // The file's trusted proxy (this test) forwards a client: the access log names it.
    let forwarded = raw(
        &served.addr,
        "GET /healthz HTTP/1.1\r\nHost: polo.example\r\nX-Forwarded-For: 203.0.113.9\r\nConnection: close\r\n\r\n",
    );
    assert!(String::from_utf8_lossy(&forwarded).starts_with("HTTP/1.1 200"));
    let (status, metrics) = get(&served.addr, "/metrics", "a.example");
    assert_eq!(status, 200);
    assert!(metrics.contains("route=\"/healthz\""), "{metrics}");
    assert!(metrics.contains("process_resident_memory_bytes"), "{metrics}");
    served.stop();

    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(lines.len(), 2, "one line per answered request: {text}");
    assert_eq!(lines[0]["route"], "/healthz");
    assert_eq!(lines[0]["status"], 200);
    assert_eq!(lines[0]["peer"], "203.0.113.9", "the forwarded client");
    assert_eq!(lines[1]["peer"], "127.0.0.1");
    assert_eq!(lines[1]["route"], "/metrics");
}

#[test]
fn bad_front_door_values_are_named() {
    let dir = tempfile::tempdir().unwrap();
    for (args, needle) in [
        (&["--admin-network", "10.0.0.0/40"][..], "10.0.0.0/40"),
        (&["--allowed-host", "https://polo.example"][..], "https://polo.example"),
        (&["--tls-cert", "cert.pem"][..], "--tls-key"),
        (&["--trusted-proxy", "proxy.local"][..], "invalid trusted proxy \"proxy.local\""),
    ] {
        let out = polo(dir.path()).args(["serve", "--listen", "127.0.0.1:0"]).args(args).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(needle), "{args:?}: {stderr}");
    }
}
