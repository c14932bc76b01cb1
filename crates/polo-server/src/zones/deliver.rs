//! The webhook sender.
//!
//! It takes due deliveries from the store's outbox (`Store::due_deliveries`:
//! the oldest pending delivery of each subscription, so a subscription's
//! events go out in order), sends them concurrently across subscriptions,
//! and records each attempt (`Store::update_delivery`): delivered on a 2xx,
//! otherwise due again after the subscription's back-off
//! (`polo_zones::webhook::RetryPolicy`), dead after the last attempt.
//!
//! Every request carries `Idempotency-Key` (fixed when the event was
//! queued, so the same on every retry), `X-Polo-Event`, `X-Polo-Delivery`,
//! and `X-Polo-Signature: sha256=<hex>`, the HMAC-SHA256 of the body under
//! the subscription's secret.
//!
//! **At least once.** An attempt is recorded after the receiver answered; a
//! node killed in between sends that delivery again after it restarts (or
//! another node does), with the same key. A receiver that must not act twice
//! keeps the keys it has seen.
//!
//! **Disabled subscriptions.** Disabling a subscription drops its pending
//! deliveries in the same transaction (`Store::update_webhook`), and the
//! evaluator queues nothing for it; a delivery queued by a step that read
//! the subscription just before it was disabled is dropped here, unsent.
//!
//! **Several nodes.** Only the node holding [`LEASE`] sends. A sender that
//! lost the lease while sending cannot record over the new holder's
//! attempt: a record names the attempt count it follows.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use polo_domain::Timestamp;
use polo_store::{DeliveryStatus, DeliveryUpdate, DueDelivery};
use polo_zones::webhook::{EventDocument, RetryPolicy, SubscriptionSpec, render};

use super::{Shared, hold_lease, now};

/// The lease of the sending node.
pub const LEASE: &str = "webhooks";
/// How long the lease lasts unless renewed.
pub const LEASE_TTL: Duration = Duration::from_secs(30);
/// How long a receiver has to answer.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// How often the outbox is looked at without a wake-up.
pub const POLL_INTERVAL: Duration = Duration::from_millis(250);
/// Deliveries (one per subscription) sent at once.
const CONCURRENCY: usize = 32;
/// The `last_error` of a delivery dropped because its subscription was disabled.
pub const DROPPED: &str = "dropped: the webhook was disabled";
/// The longest error text kept per attempt.
const ERROR_CHARS: usize = 500;

/// The signature header's value for `body` under `secret`.
#[must_use]
pub fn signature(secret: &str, body: &[u8]) -> String {
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let tag = ring::hmac::sign(&key, body);
    let hex: String = tag.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// What an attempt came to.
#[derive(Debug)]
struct Attempt {
    status: Option<u16>,
    error: Option<String>,
    /// Not sent: the subscription is disabled.
    dropped: bool,
}

fn install_tls_provider() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

async fn send(client: reqwest::Client, due: &DueDelivery) -> Attempt {
    let failed = |error: String| Attempt { status: None, error: Some(error), dropped: false };
    let spec: SubscriptionSpec = match serde_json::from_str(&due.webhook.body) {
        Ok(spec) => spec,
        Err(e) => return failed(format!("the subscription does not decode: {e}")),
    };
    if spec.disabled {
        return Attempt { status: None, error: Some(DROPPED.to_owned()), dropped: true };
    }
    let mut document: EventDocument = match serde_json::from_str(&due.event.body) {
        Ok(d) => d,
        Err(e) => return failed(format!("the event does not decode: {e}")),
    };
    document.id = due.event.id;
    let payload = render(spec.preset, &document);
    let mut request = client
        .post(&spec.url)
        .timeout(TIMEOUT)
        .header("Content-Type", payload.content_type)
        .header("Idempotency-Key", &due.delivery.key)
        .header("X-Polo-Event", &document.kind)
        .header("X-Polo-Delivery", due.delivery.id.to_string())
        .header("X-Polo-Signature", signature(&due.webhook.secret, &payload.body));
    for (name, value) in payload.headers {
        request = request.header(name, value);
    }
    match request.body(payload.body).send().await {
        Ok(response) if response.status().is_success() => {
            Attempt { status: Some(response.status().as_u16()), error: None, dropped: false }
        }
        Ok(response) => {
            let status = response.status();
            Attempt {
                status: Some(status.as_u16()),
                error: Some(format!("the receiver answered {status}")),
                dropped: false,
            }
        }
        Err(e) => {
            let mut text = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                text = format!("{text}: {s}");
                source = s.source();
            }
            failed(text)
        }
    }
}

/// The record of `attempt` on `due` at `at`.
fn update(due: &DueDelivery, attempt: &Attempt, retry: &RetryPolicy, at: Timestamp) -> DeliveryUpdate {
    let attempts = due.delivery.attempts + u32::from(!attempt.dropped);
    let (status, next_attempt) = if attempt.dropped {
        (DeliveryStatus::Dead, at)
    } else if attempt.error.is_none() {
        (DeliveryStatus::Delivered, at)
    } else {
        match retry.next_wait_ms(attempts) {
            Some(wait) => {
                (DeliveryStatus::Pending, Timestamp(at.0.saturating_add(i64::try_from(wait).unwrap_or(i64::MAX))))
            }
            None => (DeliveryStatus::Dead, at),
        }
    };
    DeliveryUpdate {
        user: due.delivery.user,
        id: due.delivery.id,
        attempts_before: due.delivery.attempts,
        status,
        attempts,
        next_attempt,
        last_status: attempt.status,
        last_error: attempt.error.as_ref().map(|e| e.chars().take(ERROR_CHARS).collect()),
        at,
    }
}

pub(crate) fn run(shared: &Shared) {
    install_tls_provider();
    let runtime = match tokio::runtime::Builder::new_current_thread().enable_all().build() {
        Ok(r) => r,
        Err(error) => {
            tracing::error!(%error, "cannot start the webhook sender's runtime; webhooks are not sent");
            return;
        }
    };
    let client = match reqwest::Client::builder().connect_timeout(TIMEOUT).build() {
        Ok(c) => c,
        Err(error) => {
            tracing::error!(%error, "cannot build the webhook HTTP client; webhooks are not sent");
            return;
        }
    };
    let store = shared.store.clone();
    let mut renewed = None;
    while !shared.stop.load(Ordering::Relaxed) {
        match hold_lease(&*store, LEASE, &shared.holder, LEASE_TTL, &mut renewed) {
            Ok(true) => {}
            Ok(false) => {
                shared.deliver.wait(Duration::from_secs(1), &shared.stop);
                continue;
            }
            Err(error) => {
                tracing::warn!(%error, "cannot take the webhooks lease");
                shared.deliver.wait(Duration::from_secs(5), &shared.stop);
                continue;
            }
        }
        let due = match store.due_deliveries(now(), CONCURRENCY) {
            Ok(due) => due,
            Err(error) => {
                tracing::warn!(%error, "cannot read the webhook outbox");
                shared.deliver.wait(Duration::from_secs(5), &shared.stop);
                continue;
            }
        };
        if due.is_empty() {
            shared.deliver.wait(POLL_INTERVAL, &shared.stop);
            continue;
        }
        let retry = shared.settings().retry;
        let due = Arc::new(due);
        let attempts: Vec<Attempt> = runtime.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            for i in 0..due.len() {
                let (client, due) = (client.clone(), due.clone());
                set.spawn(async move { (i, send(client, &due[i]).await) });
            }
            let mut out: Vec<Option<Attempt>> = (0..due.len()).map(|_| None).collect();
            while let Some(joined) = set.join_next().await {
                if let Ok((i, attempt)) = joined {
                    out[i] = Some(attempt);
                }
            }
            out.into_iter()
                .map(|a| {
                    a.unwrap_or(Attempt {
                        status: None,
                        error: Some("the sending task failed".to_owned()),
                        dropped: false,
                    })
                })
                .collect()
        });
        let at = now();
        for (due, attempt) in due.iter().zip(&attempts) {
            let record = update(due, attempt, &retry, at);
            match store.update_delivery(&record) {
                Ok(true) if record.status == DeliveryStatus::Dead => tracing::warn!(
                    delivery = due.delivery.id,
                    webhook = due.webhook.id,
                    attempts = record.attempts,
                    error = record.last_error.as_deref().unwrap_or(""),
                    "a webhook delivery failed for the last time (dead letter)"
                ),
                Ok(_) => {}
                Err(error) => tracing::warn!(%error, delivery = due.delivery.id, "cannot record a webhook attempt"),
            }
        }
    }
    let _ = store.release_lease(LEASE, &shared.holder);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hmac_sha256_in_hex() {
        // RFC 4231 test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }
}
