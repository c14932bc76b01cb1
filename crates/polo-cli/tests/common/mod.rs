//! Helpers shared by the end-to-end tests: run the real `polo` binary with a
//! fresh data directory, start `polo serve` on port 0, and speak just enough
//! HTTP/1.1 over a raw socket to check status, headers and bodies exactly.

#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The binary with `--data-dir` set and no `POLO_*` variables inherited.
pub fn polo(data_dir: &Path) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_polo"));
    command.arg("--data-dir").arg(data_dir);
    for (key, _) in std::env::vars() {
        if key.starts_with("POLO_") {
            command.env_remove(key);
        }
    }
    command
}

/// Runs a command that must succeed and returns its stdout.
pub fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(out.status.success(), "{command:?} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Creates a user whose password is `a long password`.
pub fn add_user(data_dir: &Path, name: &str) {
    add_user_with(data_dir, name, &[]);
}

/// [`add_user`] with administrator rights.
pub fn add_admin(data_dir: &Path, name: &str) {
    add_user_with(data_dir, name, &["--admin"]);
}

fn add_user_with(data_dir: &Path, name: &str, flags: &[&str]) {
    let mut child = polo(data_dir)
        .args(["user", "add", name, "--password-stdin"])
        .args(flags)
        .stdin(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let _ = child.stdin.take().unwrap().write_all(b"a long password\n");
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "user add failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// A device token made with `polo token create --scope all`: the tests that use it read back what
/// they sent with the same token (tests/tokens.rs and the authorisation matrix cover scopes).
pub fn token(data_dir: &Path, user: &str, device: &str) -> String {
    let args = ["token", "create", "--user", user, "--device", device, "--scope", "all"];
    run_ok(polo(data_dir).args(args)).trim().to_owned()
}

/// A running `polo serve`, killed when dropped.
pub struct Server {
    child: Child,
    /// `IP:PORT` it listens on.
    pub addr: String,
}

impl Server {
    /// The server's process id (to read `/proc/PID/status`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Server {
    /// Kills the process without warning (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Sends SIGTERM and waits up to `within` for the process to exit;
    /// `None` when it is still running then.
    pub fn terminate(&mut self, within: Duration) -> Option<std::process::ExitStatus> {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().unwrap();
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + within;
        while std::time::Instant::now() < deadline {
            if let Some(status) = self.child.try_wait().unwrap() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `polo serve --listen 127.0.0.1:0` plus `extra` flags and waits for its address.
pub fn serve(data_dir: &Path, extra: &[&str]) -> Server {
    serve_on(data_dir, "127.0.0.1:0", extra)
}

/// A port that was free a moment ago, for a server whose address must be
/// known before it starts (an OpenID provider's redirect URI names it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Starts `polo serve --listen LISTEN` plus `extra` flags and waits for its address.
pub fn serve_on(data_dir: &Path, listen: &str, extra: &[&str]) -> Server {
    let mut child = polo(data_dir)
        .args(["serve", "--listen", listen])
        .args(extra)
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(rest) = line.split("polo listening on http://").nth(1) {
            let addr = rest.trim().to_owned();
            // Keep draining stderr so the server never blocks on a full pipe.
            std::thread::spawn(move || for _ in lines {});
            return Server { child, addr };
        }
    }
    let _ = child.kill();
    let _ = child.wait();
    panic!("polo serve exited before listening");
}

/// A response: status, headers (lower-cased names) and body.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

/// Sends one request with `Connection: close` and reads the whole answer.
pub fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    stream.write_all(body).unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let body = if chunked { dechunk(body) } else { body.to_owned() };
    Response { status, headers, body }
}

/// Sends one request to a route that may answer with an endless stream
/// (Server-Sent Events): reads the head, then the body for at most `wait`
/// (an error answer to its end), and hangs up. The body is returned raw
/// (chunk framing included).
pub fn http_stream_start(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], wait: Duration) -> Response {
    let mut stream = TcpStream::connect(addr).unwrap();
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("Content-Length: 0\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    stream.set_read_timeout(Some(Duration::from_millis(100))).unwrap();
    let deadline = std::time::Instant::now() + wait;
    let mut raw = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(e) => panic!("{e}"),
        }
        let head_done = raw.windows(4).any(|w| w == b"\r\n\r\n");
        if head_done && std::time::Instant::now() >= deadline {
            break;
        }
        assert!(std::time::Instant::now() < deadline + Duration::from_secs(20), "no response head");
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect::<Vec<_>>();
    let chunked = headers.iter().any(|(n, v)| n == "transfer-encoding" && v.contains("chunked"));
    let streaming = headers.iter().any(|(n, v)| n == "content-type" && v.starts_with("text/event-stream"));
    let body = if chunked && !streaming { dechunk(body) } else { body.to_owned() };
    Response { status, headers, body }
}

fn dechunk(mut body: &str) -> String {
    let mut out = String::new();
    while let Some((size, rest)) = body.split_once("\r\n") {
        let Ok(size) = usize::from_str_radix(size.trim(), 16) else { break };
        if size == 0 || rest.len() < size {
            break;
        }
        out.push_str(&rest[..size]);
        body = rest[size..].trim_start_matches("\r\n");
    }
    out
}

/// `Basic` credentials.
pub fn basic(user: &str, secret: &str) -> String {
    use base64::Engine as _;
    format!("Basic {}", base64::engine::general_purpose::STANDARD.encode(format!("{user}:{secret}")))
}

/// Waits until the server's background timeline computation has caught up
/// with everything stored (`GET /api/v1/timeline/progress`), at most 30 s.
#[allow(dead_code)]
pub fn wait_for_timeline(addr: &str, auth: &str) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let status = http(addr, "GET", "/api/v1/timeline/progress", &[("Authorization", auth)], b"");
        assert_eq!(status.status, 200, "{}", status.body);
        if status.json()["up_to_date"] == true {
            return;
        }
        assert!(std::time::Instant::now() < deadline, "the timeline did not catch up: {}", status.body);
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
}

/// A Server-Sent-Events connection read incrementally (chunked transfer decoded).
pub struct EventStream {
    stream: TcpStream,
    /// Bytes read and not decoded yet.
    pub raw: Vec<u8>,
    /// Decoded event text not consumed yet.
    pub decoded: String,
}

impl EventStream {
    pub fn open(addr: &str, path: &str, auth: Option<&str>) -> Self {
        match auth {
            Some(auth) => Self::open_with(addr, path, &[("Authorization", auth)]),
            None => Self::open_with(addr, path, &[]),
        }
    }

    /// [`EventStream::open`] with these request headers.
    pub fn open_with(addr: &str, path: &str, headers: &[(&str, &str)]) -> Self {
        let mut stream = TcpStream::connect(addr).unwrap();
        let mut request = format!("GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: text/event-stream\r\n");
        for (name, value) in headers {
            request.push_str(&format!("{name}: {value}\r\n"));
        }
        request.push_str("\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        stream.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        let mut this = Self { stream, raw: Vec::new(), decoded: String::new() };
        let deadline = Instant::now() + Duration::from_secs(10);
        while !this.raw.windows(4).any(|w| w == b"\r\n\r\n") {
            assert!(Instant::now() < deadline, "no response head");
            this.fill();
        }
        let end = this.raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
        let head = String::from_utf8_lossy(&this.raw[..end]).into_owned();
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        assert!(head.to_ascii_lowercase().contains("content-type: text/event-stream"), "{head}");
        this.raw.drain(..end);
        this
    }

    /// Reads what arrived within the read timeout; `false` at the end of the stream.
    pub fn fill(&mut self) -> bool {
        let mut buf = [0u8; 8192];
        match self.stream.read(&mut buf) {
            Ok(0) => false,
            Ok(n) => {
                self.raw.extend_from_slice(&buf[..n]);
                true
            }
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => true,
            Err(e) => panic!("{e}"),
        }
    }

    /// Moves complete chunks from `raw` into `decoded`.
    pub fn dechunk(&mut self) {
        loop {
            let Some(line_end) = self.raw.windows(2).position(|w| w == b"\r\n") else { return };
            let size = usize::from_str_radix(String::from_utf8_lossy(&self.raw[..line_end]).trim(), 16).unwrap();
            if self.raw.len() < line_end + 2 + size + 2 {
                return;
            }
            let data = self.raw[line_end + 2..line_end + 2 + size].to_vec();
            self.decoded.push_str(&String::from_utf8(data).unwrap());
            self.raw.drain(..line_end + 2 + size + 2);
        }
    }

    /// The data of the next `position` event, or `None` within `wait`.
    pub fn next_position(&mut self, wait: Duration) -> Option<Value> {
        let deadline = Instant::now() + wait;
        loop {
            self.dechunk();
            while let Some(end) = self.decoded.find("\n\n") {
                let block: String = self.decoded.drain(..end + 2).collect();
                if block.lines().any(|l| l == "event: position") {
                    let data = block.lines().find_map(|l| l.strip_prefix("data: ")).expect("data line");
                    return Some(serde_json::from_str(data).unwrap());
                }
            }
            if Instant::now() >= deadline {
                return None;
            }
            if !self.fill() {
                return None;
            }
        }
    }
}
