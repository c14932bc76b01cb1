//! At most one request per interval, as public providers ask (Photon and
//! Nominatim's usage policies: one request per second).
//!
//! Requests go out one at a time (the client holds one lock across a
//! request), so the limiter is just the earliest instant the next request
//! may start; a caller sleeps until then on tokio's clock, which tests can
//! pause and advance.

use std::time::Duration;

use tokio::time::Instant;

/// The earliest start of the next request.
#[derive(Debug)]
pub(crate) struct RateLimit {
    interval: Duration,
    next: Option<Instant>,
}

impl RateLimit {
    /// One request per `interval` (zero: no limit).
    pub(crate) fn new(interval: Duration) -> Self {
        Self { interval, next: None }
    }

    /// Waits until a request may start, and books that slot.
    pub(crate) async fn wait(&mut self) {
        if let Some(next) = self.next {
            tokio::time::sleep_until(next).await;
        }
        self.next = Some(Instant::now() + self.interval);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn spaces_requests_by_the_interval() {
        let mut limit = RateLimit::new(Duration::from_secs(1));
        let start = Instant::now();
        limit.wait().await;
        assert_eq!(start.elapsed(), Duration::ZERO, "the first request goes at once");
        limit.wait().await;
        limit.wait().await;
        assert_eq!(start.elapsed(), Duration::from_secs(2));
        // After a quiet spell longer than the interval, no wait.
        tokio::time::advance(Duration::from_secs(5)).await;
        let quiet = Instant::now();
        limit.wait().await;
        assert_eq!(quiet.elapsed(), Duration::ZERO);
    }
}
