//! One login attempt through the provider, between sending the browser
//! away and its return to the callback.
//!
//! The attempt is kept in the store (a record per attempt), not in this
//! process, so the callback may reach another node sharing the store. It
//! is found by the SHA-256 of the `state` parameter and holds the nonce and
//! the PKCE verifier; it is bound to the browser that started it by the
//! SHA-256 of a random `polo_oidc` cookie, so a callback URL planted in
//! someone else's browser (login CSRF) finds no attempt of theirs. It is
//! used once: taken and deleted together, and forgotten after
//! [`FLOW_TTL`].

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use polo_domain::{Timestamp, UserId};
use polo_store::{Record, RecordWrite, Store, StoreResult};
use serde::{Deserialize, Serialize};

use crate::auth::secret::{constant_time_eq, random_secret, sha256};

/// The records' kind.
pub const FLOW_KIND: &str = "auth.oidc.flow";
/// How long the user has at the provider.
pub const FLOW_TTL: Duration = Duration::from_secs(600);
/// The cookie binding an attempt to its browser.
pub const FLOW_COOKIE: &str = "polo_oidc";

/// What an attempt is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "mode", content = "user")]
pub enum Purpose {
    /// Signing in.
    Login,
    /// Linking the provider's account to this logged-in user.
    Link(i64),
}

/// The stored attempt.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Flow {
    /// What it is for.
    pub purpose: Purpose,
    /// The nonce the ID token must carry.
    pub nonce: String,
    /// The PKCE code verifier.
    pub verifier: String,
    /// Hex SHA-256 of the browser's `polo_oidc` cookie.
    browser: String,
}

/// A new attempt: the values to send, and the cookie to set.
#[derive(Debug)]
pub struct Started {
    /// The `state` parameter.
    pub state: String,
    /// The `nonce` parameter.
    pub nonce: String,
    /// The S256 `code_challenge`.
    pub challenge: String,
    /// The `polo_oidc` cookie's value.
    pub browser_cookie: String,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The S256 challenge of a verifier (RFC 7636 §4.2).
#[must_use]
pub fn challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(sha256(verifier.as_bytes()))
}

/// Stores a new attempt (forgetting expired ones).
///
/// # Errors
/// Store failures.
pub fn start(store: &dyn Store, purpose: Purpose, now: Timestamp) -> StoreResult<Started> {
    let (state, nonce, verifier, browser_cookie) = (random_secret(), random_secret(), random_secret(), random_secret());
    let flow = Flow {
        purpose,
        nonce: nonce.clone(),
        verifier: verifier.clone(),
        browser: hex(&sha256(browser_cookie.as_bytes())),
    };
    let user = match purpose {
        Purpose::Link(id) => Some(UserId(id)),
        Purpose::Login => None,
    };
    let body = serde_json::to_string(&flow).map_err(|e| polo_store::StoreError::Corrupt(e.to_string()))?;
    let ttl = i64::try_from(FLOW_TTL.as_millis()).unwrap_or(i64::MAX);
    store.write_records(&[
        RecordWrite::DeleteBefore { kind: FLOW_KIND.to_owned(), before: Timestamp(now.0.saturating_sub(ttl)) },
        RecordWrite::Put(Record {
            kind: FLOW_KIND.to_owned(),
            key: hex(&sha256(state.as_bytes())),
            user,
            at: now,
            body,
        }),
    ])?;
    Ok(Started { state, nonce, challenge: challenge(&verifier), browser_cookie })
}

/// Why an attempt was not found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FlowError {
    /// No attempt has this state (never, or used already).
    #[error("this sign-in attempt is unknown or was used already; start again")]
    Unknown,
    /// Older than [`FLOW_TTL`].
    #[error("this sign-in attempt took too long; start again")]
    Expired,
    /// Another browser started it.
    #[error("this sign-in attempt was started in another browser; start again here")]
    OtherBrowser,
}

/// Takes the attempt of `state` (deleting it), for the browser with `cookie`.
///
/// # Errors
/// The outer error for store failures; the inner [`FlowError`] when there is no usable attempt.
pub fn take(
    store: &dyn Store,
    state: &str,
    cookie: Option<&str>,
    now: Timestamp,
) -> StoreResult<Result<Flow, FlowError>> {
    let key = hex(&sha256(state.as_bytes()));
    let Some(record) = store.record(FLOW_KIND, &key)? else { return Ok(Err(FlowError::Unknown)) };
    store.write_records(&[RecordWrite::Delete { kind: FLOW_KIND.to_owned(), key }])?;
    let Ok(flow) = serde_json::from_str::<Flow>(&record.body) else { return Ok(Err(FlowError::Unknown)) };
    let ttl = i64::try_from(FLOW_TTL.as_millis()).unwrap_or(i64::MAX);
    if now.0.saturating_sub(record.at.0) > ttl {
        return Ok(Err(FlowError::Expired));
    }
    let browser = cookie.map(|c| hex(&sha256(c.as_bytes()))).unwrap_or_default();
    if !constant_time_eq(browser.as_bytes(), flow.browser.as_bytes()) {
        return Ok(Err(FlowError::OtherBrowser));
    }
    Ok(Ok(flow))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_challenge_is_base64url_sha256_without_padding() {
        // Computed independently: base64.urlsafe_b64encode(hashlib.sha256(verifier).digest()), '=' removed.
        assert_eq!(
            challenge("dBjftJeZ4CVP-mJ0kG0jTI6G9vFAJE4i4wG6Jfl2rbw"),
            "JMbO-Hwoajkwc4T9Yc-p-NcX93hOdVUkr3htiwOBKNE"
        );
    }

    #[test]
    fn attempts_are_used_once_by_their_browser_before_they_expire() {
        let store = polo_store_sqlite::SqliteStore::open_in_memory().unwrap();
        let started = start(&store, Purpose::Login, Timestamp(1_000)).unwrap();
        assert_eq!(
            take(&store, &started.state, Some("other"), Timestamp(2_000)).unwrap().unwrap_err(),
            FlowError::OtherBrowser
        );
        let again = start(&store, Purpose::Login, Timestamp(1_000)).unwrap();
        let flow = take(&store, &again.state, Some(&again.browser_cookie), Timestamp(2_000)).unwrap().unwrap();
        assert_eq!((flow.purpose, flow.nonce.as_str()), (Purpose::Login, again.nonce.as_str()));
        assert_eq!(challenge(&flow.verifier), again.challenge);
        assert_eq!(
            take(&store, &again.state, Some(&again.browser_cookie), Timestamp(2_000)).unwrap().unwrap_err(),
            FlowError::Unknown
        );
        let user = polo_store::Store::create_user(&store, "alice", "h", false).unwrap();
        let late = start(&store, Purpose::Link(user.id.0), Timestamp(1_000)).unwrap();
        let after = Timestamp(1_000 + 601_000);
        assert_eq!(
            take(&store, &late.state, Some(&late.browser_cookie), after).unwrap().unwrap_err(),
            FlowError::Expired
        );
    }
}
