//! Access logs: one JSON object per request, to stdout, a file, or nowhere.
//!
//! A dedicated writer rather than a `tracing` target, because access logs
//! have their own destination and their own on/off switch, independent of
//! the diagnostic log level and format. Lines go through a bounded channel
//! to one background thread, so a slow disk never stalls a request; when the
//! channel is full a line is dropped (and counted as
//! `polo_rejects_total{reason="access_log_full"}`) rather than blocking.
//! [`AccessLogWriter::finish`] writes what is queued and flushes, which
//! [`crate::serve`] calls after the last connection has finished.
//!
//! Logged: time, method, route template, path (without the query string,
//! which may carry tokens; for routes with a `{token}` in the path, such as
//! public share links, the template instead of the path), status, duration until the body was sent,
//! response body bytes, peer IP (the client behind a `--trusted-proxy`) and user agent. Never any header that
//! carries credentials.
//!
//! ```json
//! {"time":"2026-05-01T10:00:00.123Z","method":"GET","route":"/healthz","path":"/healthz","status":200,
//!  "duration_ms":0.412,"bytes":37,"peer":"127.0.0.1","user_agent":"curl/8.5.0"}
//! ```

use std::io::Write;
use std::path::Path;
use std::pin::Pin;
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender, TrySendError};
use std::task::{Context, Poll};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::Next;
use axum::response::Response;
use http_body::{Frame, SizeHint};
use polo_domain::Timestamp;
use serde_json::json;

use crate::metrics::{Metrics, route_label};
use crate::options::AccessLog;

const QUEUE_LINES: usize = 8192;
const MAX_USER_AGENT: usize = 256;

enum Message {
    Line(String),
    Close,
}

/// The request side: cheap to clone; does nothing when logs are off.
#[derive(Clone)]
pub struct AccessLogger {
    sender: Option<SyncSender<Message>>,
    metrics: Option<Metrics>,
}

impl std::fmt::Debug for AccessLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessLogger").field("enabled", &self.sender.is_some()).finish()
    }
}

impl AccessLogger {
    /// Logs nothing.
    #[must_use]
    pub fn off() -> Self {
        Self { sender: None, metrics: None }
    }

    fn send(&self, line: String) {
        if let Some(sender) = &self.sender {
            match sender.try_send(Message::Line(line)) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => {}
                Err(TrySendError::Full(_)) => {
                    if let Some(metrics) = &self.metrics {
                        metrics.rejected("access_log_full");
                    }
                }
            }
        }
    }
}

/// The writing side: owns the background thread.
#[derive(Debug)]
pub struct AccessLogWriter {
    sender: Option<SyncSender<Message>>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
}

impl AccessLogWriter {
    /// Opens the destination (a file is created or appended to) and starts
    /// the writer thread. Returns the writer and the logger for requests.
    ///
    /// # Errors
    /// When the file cannot be opened or the thread cannot start; the
    /// message names the file.
    pub fn open(target: &AccessLog, metrics: &Metrics) -> std::io::Result<(Self, AccessLogger)> {
        let out: Box<dyn Write + Send> = match target {
            AccessLog::Off => {
                return Ok((Self { sender: None, thread: Mutex::new(None) }, AccessLogger::off()));
            }
            AccessLog::Stdout => Box::new(std::io::stdout()),
            AccessLog::File(path) => Box::new(open_append(path)?),
        };
        let (sender, receiver) = std::sync::mpsc::sync_channel(QUEUE_LINES);
        let thread =
            std::thread::Builder::new().name("polo-access-log".into()).spawn(move || write_lines(&receiver, out))?;
        Ok((
            Self { sender: Some(sender.clone()), thread: Mutex::new(Some(thread)) },
            AccessLogger { sender: Some(sender), metrics: Some(metrics.clone()) },
        ))
    }

    /// Writes every queued line, flushes, and stops the thread. Lines sent
    /// afterwards are discarded.
    pub fn finish(&self) {
        if let Some(sender) = &self.sender {
            let _ = sender.send(Message::Close);
        }
        let thread = self.thread.lock().unwrap_or_else(std::sync::PoisonError::into_inner).take();
        if let Some(thread) = thread {
            let _ = thread.join();
        }
    }
}

impl Drop for AccessLogWriter {
    fn drop(&mut self) {
        self.finish();
    }
}

fn open_append(path: &Path) -> std::io::Result<std::io::BufWriter<std::fs::File>> {
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map(std::io::BufWriter::new)
        .map_err(|e| std::io::Error::new(e.kind(), format!("cannot open access log {}: {e}", path.display())))
}

fn write_lines(receiver: &Receiver<Message>, mut out: Box<dyn Write + Send>) {
    let report = |e: std::io::Error| tracing::warn!(error = %e, "cannot write the access log");
    while let Ok(message) = receiver.recv() {
        let mut next = Some(message);
        // Write everything already queued, then flush once.
        while let Some(message) = next.take() {
            match message {
                Message::Line(line) => {
                    if let Err(e) = out.write_all(line.as_bytes()) {
                        report(e);
                    }
                }
                Message::Close => {
                    if let Err(e) = out.flush() {
                        report(e);
                    }
                    return;
                }
            }
            next = receiver.try_recv().ok();
        }
        if let Err(e) = out.flush() {
            report(e);
        }
    }
    let _ = out.flush();
}

struct Pending {
    logger: AccessLogger,
    start: Instant,
    method: String,
    route: String,
    path: String,
    status: u16,
    peer: Option<String>,
    user_agent: Option<String>,
}

impl Pending {
    fn emit(self, bytes: u64) {
        let millis =
            SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(0));
        let duration_ms = (self.start.elapsed().as_secs_f64() * 1e6).round() / 1e3;
        let mut line = json!({
            "time": Timestamp(millis).to_rfc3339(None),
            "method": self.method,
            "route": self.route,
            "path": self.path,
            "status": self.status,
            "duration_ms": duration_ms,
            "bytes": bytes,
            "peer": self.peer,
            "user_agent": self.user_agent,
        })
        .to_string();
        line.push('\n');
        self.logger.send(line);
    }
}

/// Middleware: logs the request once its response body has been sent (or
/// abandoned by the client).
pub(crate) async fn log_request(State(logger): State<AccessLogger>, request: Request, next: Next) -> Response {
    if logger.sender.is_none() {
        return next.run(request).await;
    }
    let start = Instant::now();
    let method = request.method().as_str().to_owned();
    let route = route_label(&request);
    // A share link's secret is in its path: log the route template instead.
    let path = if route.contains("{token}") { route.clone() } else { request.uri().path().to_owned() };
    // The client: behind a `--trusted-proxy`, the address it forwarded.
    let peer = crate::client::Client::of(request.extensions()).ip.map(|ip| ip.to_string());
    let user_agent = request
        .headers()
        .get(header::USER_AGENT)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).chars().take(MAX_USER_AGENT).collect());
    let response = next.run(request).await;
    let pending = Pending { logger, start, method, route, path, status: response.status().as_u16(), peer, user_agent };
    let (parts, body) = response.into_parts();
    Response::from_parts(parts, Body::new(LoggedBody { inner: body, bytes: 0, pending: Some(pending) }))
}

/// Counts the bytes of a response body and logs the request when the body
/// ends or is dropped.
struct LoggedBody {
    inner: Body,
    bytes: u64,
    pending: Option<Pending>,
}

impl LoggedBody {
    fn finish(&mut self) {
        if let Some(pending) = self.pending.take() {
            pending.emit(self.bytes);
        }
    }
}

impl http_body::Body for LoggedBody {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.inner).poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.bytes += data.len() as u64;
                }
            }
            Poll::Ready(None) | Poll::Ready(Some(Err(_))) => this.finish(),
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl Drop for LoggedBody {
    fn drop(&mut self) {
        self.finish();
    }
}
