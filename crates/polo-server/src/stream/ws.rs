//! The WebSocket side of `GET /api/v1/stream`: one JSON text frame per
//! [`StreamMessage`], a ping every [`KEEP_ALIVE`] so idle connections and
//! the proxies between stay open, and close code 1001 when the server
//! shuts down. What the client sends is read only to answer pings and to
//! notice that it closed.
//!
//! A browser sends its cookies with a WebSocket handshake whatever page
//! opened it, and the same-origin policy does not apply to WebSockets, so a
//! handshake authenticated by the session cookie must come from a page of
//! this server ([`check_origin`]); a token-authenticated one needs no such
//! check (another site cannot know the token).

use axum::extract::ws::{CloseFrame, Message, WebSocket, close_code};
use axum::http::{HeaderMap, header};
use futures_util::stream::BoxStream;
use futures_util::{SinkExt as _, StreamExt as _};

use super::StreamMessage;
use crate::error::ApiError;
use crate::sharing::stream::KEEP_ALIVE;

/// Refuses a cookie-authenticated handshake whose `Origin` is not this
/// server (the `Host` it was asked as).
///
/// # Errors
/// 403 `forbidden` for another origin.
pub(super) fn check_origin(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(origin) = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) else {
        // Not a browser: it sent the cookie itself.
        return Ok(());
    };
    let host = headers.get(header::HOST).and_then(|v| v.to_str().ok()).unwrap_or("");
    let origin_host = origin.split_once("://").map_or("", |(_, rest)| rest).trim_end_matches('/');
    if !host.is_empty() && origin_host.eq_ignore_ascii_case(host) {
        return Ok(());
    }
    Err(ApiError::forbidden(format!(
        "a WebSocket opened with a session cookie must come from this server's own pages, not {origin}; \
         other clients give a device token (?token=)"
    )))
}

/// Sends `messages` over `socket` until either side ends.
pub(super) async fn pump(socket: WebSocket, mut messages: BoxStream<'static, StreamMessage>) {
    let (mut sink, mut incoming) = socket.split();
    let mut ping = tokio::time::interval(KEEP_ALIVE);
    ping.tick().await;
    loop {
        tokio::select! {
            message = messages.next() => match message {
                Some(message) => {
                    if sink.send(Message::Text(message.to_json().into())).await.is_err() {
                        return;
                    }
                }
                None => {
                    let frame = CloseFrame { code: close_code::AWAY, reason: "the server is shutting down".into() };
                    let _ = sink.send(Message::Close(Some(frame))).await;
                    return;
                }
            },
            received = incoming.next() => match received {
                None | Some(Err(_) | Ok(Message::Close(_))) => return,
                Some(Ok(_)) => {}
            },
            _ = ping.tick() => {
                if sink.send(Message::Ping(Vec::new().into())).await.is_err() {
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn a_cookie_handshake_must_come_from_this_servers_pages() {
        let headers = |origin: Option<&'static str>| {
            let mut h = HeaderMap::new();
            h.insert(header::HOST, HeaderValue::from_static("polo.example.org"));
            if let Some(origin) = origin {
                h.insert(header::ORIGIN, HeaderValue::from_static(origin));
            }
            h
        };
        assert!(check_origin(&headers(Some("https://polo.example.org"))).is_ok());
        assert!(check_origin(&headers(Some("https://POLO.example.org/"))).is_ok());
        assert!(check_origin(&headers(None)).is_ok(), "not a browser");
        let refused = check_origin(&headers(Some("https://evil.example"))).unwrap_err();
        assert_eq!((refused.status.as_u16(), refused.code), (403, "forbidden"));
        assert!(check_origin(&headers(Some("https://polo.example.org.evil.example"))).is_err());
        assert!(check_origin(&headers(Some("null"))).is_err());
    }
}
