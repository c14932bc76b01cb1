//! Webhooks: which events a subscription wants, what it is sent, and when a
//! failed delivery is tried again.
//!
//! The server keeps a durable outbox in the store and sends from it; what
//! goes into a request and the retry schedule are decided here, so they are
//! the same on every node and testable without a network.
//!
//! Presets shape the body for common receivers: plain JSON (the event
//! document), [ntfy](https://ntfy.sh) (a text body with `Title` and `Tags`
//! headers), [Gotify](https://gotify.net) (`{title, message, priority}`),
//! Discord (`{content}`) and Slack (`{text}`). Whatever the preset, every
//! request carries the same idempotency key on every attempt, and the
//! server signs the body it sends (HMAC-SHA256).

use serde::{Deserialize, Serialize};

use crate::evaluate::EventKind;

/// The most URL characters.
pub const MAX_URL_CHARS: usize = 2_000;

/// How the body of a delivery is shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Preset {
    /// The event document as JSON.
    #[default]
    Json,
    /// ntfy: the message as text, title and tags in headers.
    Ntfy,
    /// Gotify's message JSON.
    Gotify,
    /// Discord's webhook JSON.
    Discord,
    /// Slack's incoming-webhook JSON.
    Slack,
}

/// What a subscription asks for. Stored as JSON.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubscriptionSpec {
    /// Where to POST (`http://` or `https://`).
    pub url: String,
    /// The body's shape.
    #[serde(default)]
    pub preset: Preset,
    /// Only these event kinds (`zone.enter`, …); empty: all.
    #[serde(default)]
    pub kinds: Vec<String>,
    /// Only events of these zones (device events pass); empty: all.
    #[serde(default)]
    pub zones: Vec<i64>,
    /// Switched off: it wants nothing, so no delivery is queued for it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub disabled: bool,
}

impl SubscriptionSpec {
    /// Checks the URL and the filter.
    ///
    /// # Errors
    /// The first bad field, named.
    pub fn validate(&self) -> Result<(), String> {
        let url = self.url.as_str();
        if url.len() > MAX_URL_CHARS {
            return Err(format!("url: longer than {MAX_URL_CHARS} characters"));
        }
        let rest = url.strip_prefix("https://").or_else(|| url.strip_prefix("http://"));
        match rest {
            Some(rest) if !rest.is_empty() && !rest.starts_with('/') && !rest.contains(char::is_whitespace) => {}
            _ => return Err(format!("url: {url:?} is not an http:// or https:// URL with a host")),
        }
        for (i, kind) in self.kinds.iter().enumerate() {
            if EventKind::from_name(kind).is_none() {
                let known: Vec<_> = EventKind::ALL.iter().map(|k| k.name()).collect();
                return Err(format!("kinds[{i}]: {kind:?} is not one of {}", known.join(", ")));
            }
        }
        Ok(())
    }

    /// Whether an event of `kind` in `zone` is for this subscription.
    #[must_use]
    pub fn wants(&self, kind: EventKind, zone: Option<i64>) -> bool {
        !self.disabled
            && (self.kinds.is_empty() || self.kinds.iter().any(|k| k == kind.name()))
            && (self.zones.is_empty() || zone.is_none_or(|z| self.zones.contains(&z)))
    }
}

/// The event as receivers see it (the `json` preset's body).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDocument {
    /// The event log's id: the cursor of `GET /api/v1/events`.
    pub id: i64,
    /// `zone.enter`, …
    pub kind: String,
    /// When it happened, ms since the epoch.
    pub at_ms: i64,
    /// The device's id.
    pub device: i64,
    /// The device's name when the event happened.
    pub device_name: String,
    /// The zone's id, for zone events.
    pub zone: Option<i64>,
    /// The zone's name when the event happened.
    pub zone_name: Option<String>,
    /// Whether it was derived from old or late points (a history import):
    /// such events are logged, never sent.
    pub past: bool,
    /// Kind-specific facts.
    pub detail: serde_json::Value,
}

impl EventDocument {
    /// One line for people ("phone entered Home").
    #[must_use]
    pub fn message(&self) -> String {
        let device = &self.device_name;
        let zone = self.zone_name.as_deref().unwrap_or("a zone");
        match EventKind::from_name(&self.kind) {
            Some(EventKind::ZoneEnter) => format!("{device} arrived at {zone}"),
            Some(EventKind::ZoneLeave) => format!("{device} left {zone}"),
            Some(EventKind::ZoneDwell) => {
                let entered = self.detail.get("entered").and_then(serde_json::Value::as_i64).unwrap_or(self.at_ms);
                format!("{device} has been at {zone} for {} min", (self.at_ms - entered) / 60_000)
            }
            Some(EventKind::DeviceSilent) => {
                let last = self.detail.get("last_fix").and_then(serde_json::Value::as_i64).unwrap_or(self.at_ms);
                format!("{device} has sent nothing for {} h", (self.at_ms - last) / 3_600_000)
            }
            Some(EventKind::BatteryLow) => {
                let level = self.detail.get("battery_percent").and_then(serde_json::Value::as_i64).unwrap_or(0);
                format!("{device}'s battery is at {level} %")
            }
            Some(EventKind::AppEnter) => format!("{device} reports arriving at {zone}"),
            Some(EventKind::AppLeave) => format!("{device} reports leaving {zone}"),
            Some(EventKind::VisitStart) => format!("{device} is at {}", self.place("place_name")),
            Some(EventKind::VisitEnd) => {
                let entered = self.detail.get("entered").and_then(serde_json::Value::as_i64).unwrap_or(self.at_ms);
                format!("{device} left {} after {}", self.place("place_name"), minutes(self.at_ms - entered))
            }
            Some(EventKind::TripStart) => format!("{device} set off from {}", self.place("from_place_name")),
            Some(EventKind::TripEnd) => {
                let started = self.detail.get("started").and_then(serde_json::Value::as_i64).unwrap_or(self.at_ms);
                let km = self.detail.get("distance_m").and_then(serde_json::Value::as_f64).unwrap_or(0.0) / 1_000.0;
                format!(
                    "{device} arrived at {} after {km:.1} km in {}",
                    self.place("place_name"),
                    minutes(self.at_ms - started)
                )
            }
            Some(EventKind::FriendNearby) => {
                let metres = self.detail.get("distance_m").and_then(serde_json::Value::as_f64).unwrap_or(0.0);
                format!("{} is nearby: {metres:.0} m from {device}", self.place("friend"))
            }
            Some(EventKind::FriendAway) => format!("{} is no longer near {device}", self.place("friend")),
            None => format!("{device}: {}", self.kind),
        }
    }
}

impl EventDocument {
    /// The place (or friend) named by the detail's `field`, for messages.
    fn place(&self, field: &str) -> &str {
        let fallback = if field == "friend" { "a friend" } else { "an unnamed place" };
        self.detail.get(field).and_then(serde_json::Value::as_str).unwrap_or(fallback)
    }
}

/// A duration for people: `25 min`, `3 h 5 min`.
fn minutes(ms: i64) -> String {
    let minutes = ms.max(0) / 60_000;
    if minutes < 60 { format!("{minutes} min") } else { format!("{} h {} min", minutes / 60, minutes % 60) }
}

/// A request body with its content type and preset-specific headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payload {
    /// `Content-Type`.
    pub content_type: &'static str,
    /// Extra headers.
    pub headers: Vec<(&'static str, String)>,
    /// The body (what the signature covers).
    pub body: Vec<u8>,
}

/// The request `preset` makes of `event`.
#[must_use]
pub fn render(preset: Preset, event: &EventDocument) -> Payload {
    let json = |v: serde_json::Value| Payload {
        content_type: "application/json",
        headers: Vec::new(),
        body: serde_json::to_vec(&v).expect("JSON serialises"),
    };
    let message = event.message();
    match preset {
        Preset::Json => json(serde_json::to_value(event).expect("an event serialises")),
        Preset::Ntfy => Payload {
            content_type: "text/plain; charset=utf-8",
            headers: vec![("Title", format!("polo: {}", event.kind)), ("Tags", event.kind.replace('.', "_"))],
            body: message.into_bytes(),
        },
        Preset::Gotify => {
            json(serde_json::json!({ "title": format!("polo: {}", event.kind), "message": message, "priority": 5 }))
        }
        Preset::Discord => json(serde_json::json!({ "content": message })),
        Preset::Slack => json(serde_json::json!({ "text": message })),
    }
}

/// When and how often a failed delivery is tried again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first failure, ms.
    pub first_ms: u64,
    /// The longest wait, ms.
    pub max_ms: u64,
    /// Attempts before the delivery is dead-lettered.
    pub max_attempts: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { first_ms: 10_000, max_ms: 3_600_000, max_attempts: 12 }
    }
}

impl RetryPolicy {
    /// After `attempts` failed attempts: `Some(wait in ms)` before the next,
    /// or `None` when the delivery is dead. The wait doubles each time.
    #[must_use]
    pub fn next_wait_ms(&self, attempts: u32) -> Option<u64> {
        if attempts >= self.max_attempts {
            return None;
        }
        let doublings = attempts.saturating_sub(1).min(40);
        Some(self.first_ms.saturating_mul(1u64 << doublings).min(self.max_ms))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc(kind: EventKind) -> EventDocument {
        EventDocument {
            id: 7,
            kind: kind.name().to_owned(),
            at_ms: 1_700_000_600_000,
            device: 3,
            device_name: "phone".into(),
            zone: Some(5),
            zone_name: Some("Home".into()),
            past: false,
            detail: serde_json::json!({ "entered": 1_700_000_000_000i64, "battery_percent": 9 }),
        }
    }

    #[test]
    fn presets_shape_the_body_for_their_receivers() {
        let e = doc(EventKind::ZoneEnter);
        let p = render(Preset::Json, &e);
        assert_eq!(serde_json::from_slice::<EventDocument>(&p.body).unwrap(), e);
        let p = render(Preset::Ntfy, &e);
        assert_eq!(String::from_utf8(p.body).unwrap(), "phone arrived at Home");
        assert!(p.headers.contains(&("Tags", "zone_enter".to_owned())));
        let v: serde_json::Value = serde_json::from_slice(&render(Preset::Gotify, &e).body).unwrap();
        assert_eq!(v["message"], "phone arrived at Home");
        let v: serde_json::Value = serde_json::from_slice(&render(Preset::Discord, &e).body).unwrap();
        assert_eq!(v["content"], "phone arrived at Home");
        let v: serde_json::Value =
            serde_json::from_slice(&render(Preset::Slack, &doc(EventKind::ZoneDwell)).body).unwrap();
        assert_eq!(v["text"], "phone has been at Home for 10 min");
        assert_eq!(doc(EventKind::BatteryLow).message(), "phone's battery is at 9 %");
    }

    #[test]
    fn timeline_events_read_as_sentences() {
        let at = |kind: EventKind, detail: serde_json::Value| EventDocument {
            zone: None,
            zone_name: None,
            detail,
            ..doc(kind)
        };
        let start: i64 = 1_700_000_600_000 - 125 * 60_000;
        let place = serde_json::json!({ "place_name": "Bakery", "entered": start });
        assert_eq!(at(EventKind::VisitStart, place.clone()).message(), "phone is at Bakery");
        assert_eq!(at(EventKind::VisitEnd, place).message(), "phone left Bakery after 2 h 5 min");
        assert_eq!(at(EventKind::TripStart, serde_json::json!({})).message(), "phone set off from an unnamed place");
        let trip = serde_json::json!({ "place_name": "Work", "started": 1_700_000_600_000i64 - 20 * 60_000, "distance_m": 4_300.0 });
        assert_eq!(at(EventKind::TripEnd, trip).message(), "phone arrived at Work after 4.3 km in 20 min");
        let friend = serde_json::json!({ "friend": "bob", "distance_m": 120.4 });
        assert_eq!(at(EventKind::FriendNearby, friend.clone()).message(), "bob is nearby: 120 m from phone");
        assert_eq!(at(EventKind::FriendAway, friend).message(), "bob is no longer near phone");
    }

    #[test]
    fn filters_and_urls_are_checked() {
        let mut s = SubscriptionSpec {
            url: "https://example.org/hook".into(),
            preset: Preset::Json,
            kinds: vec![],
            zones: vec![],
            disabled: false,
        };
        assert!(s.validate().is_ok());
        assert!(s.wants(EventKind::BatteryLow, None));
        s.kinds = vec!["zone.enter".into()];
        s.zones = vec![5];
        assert!(s.wants(EventKind::ZoneEnter, Some(5)));
        assert!(!s.wants(EventKind::ZoneEnter, Some(6)));
        assert!(!s.wants(EventKind::ZoneLeave, Some(5)));
        s.kinds = vec!["zone.entered".into()];
        assert!(s.validate().unwrap_err().starts_with("kinds[0]"));
        s.kinds.clear();
        s.url = "ftp://x".into();
        assert!(s.validate().unwrap_err().starts_with("url"));
        s.url = "http:///x".into();
        assert!(s.validate().is_err());
        s.zones.clear();
        assert!(s.wants(EventKind::BatteryLow, None));
        s.disabled = true;
        assert!(!s.wants(EventKind::BatteryLow, None), "a disabled subscription wants nothing");
        // Stored without the flag until it is switched off, read back as enabled.
        let stored: SubscriptionSpec = serde_json::from_str(r#"{"url":"https://example.org/h"}"#).unwrap();
        assert!(!stored.disabled);
        s.disabled = false;
        assert!(!serde_json::to_string(&s).unwrap().contains("disabled"));
    }

    #[test]
    fn retries_back_off_exponentially_then_give_up() {
        let r = RetryPolicy { first_ms: 100, max_ms: 1_000, max_attempts: 6 };
        let waits: Vec<_> = (1..=6).map(|a| r.next_wait_ms(a)).collect();
        assert_eq!(waits, [Some(100), Some(200), Some(400), Some(800), Some(1_000), None]);
    }
}
