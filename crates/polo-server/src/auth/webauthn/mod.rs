//! Passkeys (WebAuthn): registered on the account page, used as the second
//! factor after the password, or alone instead of the password.
//!
//! # Storage
//!
//! Everything is a store record, so every node sharing the store sees the
//! same state and deleting the account deletes it:
//!
//! * a passkey is an `auth.passkey` record keyed by its credential id
//!   (base64url; unique across the instance), naming its user, holding the
//!   COSE public key as the authenticator sent it, the signature counter
//!   and when it was made and last used;
//! * a challenge is an `auth.webauthn.challenge` record keyed by its
//!   SHA-256, holding what it is for (registering a passkey for a user, or
//!   signing in) and the relying party id and origin the ceremony began
//!   with. It is taken with [`Store::take_record`], which deletes it in the
//!   same statement, so of two requests answering one challenge, on one
//!   node or two, only one gets it; it expires after [`CHALLENGE_TTL`].
//!
//! # Relying party
//!
//! The relying party id is the host name the browser used to reach polo
//! (the `Host` header, which `--allowed-host` restricts), and the origin
//! that host with the request's scheme. A passkey works for the name it was
//! registered at; browsers refuse IP addresses as relying party ids, so
//! passkeys need polo to be reached by a name (`localhost` counts).
//!
//! # What a passkey proves
//!
//! As a second factor a passkey needs user presence; replacing the password
//! it needs user verification too (the device's PIN or biometrics), which
//! makes it two factors on its own: signing in with it asks for no TOTP code.
//! Once an account has a passkey or TOTP, its password alone signs nobody
//! in. [`verify`] has the checks and what is accepted.

pub mod cbor;
pub(crate) mod routes;
pub mod verify;

#[cfg(test)]
mod tests;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use polo_domain::{Timestamp, UserId};
use polo_store::{Record, RecordQuery, RecordWrite, Store, StoreError, StoreResult};
use serde::{Deserialize, Serialize};

pub use self::verify::WebAuthnError;
use self::verify::{Ceremony, PublicKey};
use crate::auth::secret::{random_secret, sha256};

/// The passkeys' record kind.
pub const PASSKEY_KIND: &str = "auth.passkey";
/// The challenges' record kind.
pub const CHALLENGE_KIND: &str = "auth.webauthn.challenge";
/// How long a challenge can be answered.
pub const CHALLENGE_TTL: Duration = Duration::from_secs(300);
/// The longest passkey name.
pub const MAX_NAME: usize = 64;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn corrupt(e: &serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("a passkey record: {e}"))
}

fn ttl_ms() -> i64 {
    i64::try_from(CHALLENGE_TTL.as_millis()).unwrap_or(i64::MAX)
}

/// Where a ceremony happens: the relying party id and the origin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RelyingParty {
    /// The host name, lower case, without port.
    pub id: String,
    /// `scheme://host[:port]`, as browsers write origins.
    pub origin: String,
}

impl RelyingParty {
    /// The relying party of a request that reached polo at `host` (the
    /// `Host` header) over HTTPS or not.
    ///
    /// # Errors
    /// A message for a missing host or an IP address, which browsers refuse.
    pub fn from_host(host: &str, https: bool) -> Result<Self, String> {
        let host = host.trim().to_ascii_lowercase();
        if host.starts_with('[') {
            return Err("passkeys need polo to be reached by a name, not an IP address".into());
        }
        let name = host
            .rsplit_once(':')
            .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
            .map_or(host.as_str(), |(name, _)| name);
        if name.is_empty() {
            return Err("the request names no host".into());
        }
        if name.parse::<std::net::Ipv4Addr>().is_ok() {
            return Err(format!(
                "passkeys need polo to be reached by a name, not an IP address ({name}); browsers refuse them"
            ));
        }
        let scheme = if https { "https" } else { "http" };
        Ok(Self { id: name.to_owned(), origin: format!("{scheme}://{host}") })
    }
}

/// What a challenge is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", tag = "purpose", content = "user")]
pub enum Purpose {
    /// Registering a passkey for this user.
    Register(i64),
    /// Signing in (alone, or as the second factor).
    Login,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Challenge {
    purpose: Purpose,
    rp: RelyingParty,
}

/// Stores a new challenge for `purpose` at `rp` (forgetting expired ones)
/// and returns it, base64url.
///
/// # Errors
/// Store failures.
pub fn start(store: &dyn Store, purpose: Purpose, rp: &RelyingParty, now: Timestamp) -> StoreResult<String> {
    let challenge = random_secret();
    let user = match purpose {
        Purpose::Register(id) => Some(UserId(id)),
        Purpose::Login => None,
    };
    let body = serde_json::to_string(&Challenge { purpose, rp: rp.clone() }).map_err(|e| corrupt(&e))?;
    store.write_records(&[
        RecordWrite::DeleteBefore {
            kind: CHALLENGE_KIND.to_owned(),
            before: Timestamp(now.0.saturating_sub(ttl_ms())),
        },
        RecordWrite::Put(Record {
            kind: CHALLENGE_KIND.to_owned(),
            key: hex(&sha256(challenge.as_bytes())),
            user,
            at: now,
            body,
        }),
    ])?;
    Ok(challenge)
}

/// Takes the challenge `client_data` answers, if it is for `purpose` and
/// not expired (a challenge is gone once taken, whatever it was for).
fn take(store: &dyn Store, challenge: &str, purpose: Purpose, now: Timestamp) -> StoreResult<Option<RelyingParty>> {
    let Some(record) = store.take_record(CHALLENGE_KIND, &hex(&sha256(challenge.as_bytes())))? else {
        return Ok(None);
    };
    let Ok(stored) = serde_json::from_str::<Challenge>(&record.body) else { return Ok(None) };
    let fresh = now.0.saturating_sub(record.at.0) <= ttl_ms();
    Ok((fresh && stored.purpose == purpose).then_some(stored.rp))
}

/// A registered passkey, as stored (the record's key is its id).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Passkey {
    /// The name the user gave it.
    pub name: String,
    /// The COSE public key, base64url.
    pub cose_key: String,
    /// The last signature counter seen.
    pub sign_count: u32,
    /// The authenticator model (hex AAGUID; zeros when it does not say).
    pub aaguid: String,
    /// The key may be synced to other devices (a backup-eligible passkey).
    pub synced: bool,
    /// Made at (ms).
    pub created_ms: i64,
    /// Last used at (ms).
    pub last_used_ms: Option<i64>,
}

/// A passkey with its id and user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredPasskey {
    /// The credential id, base64url.
    pub id: String,
    /// Whose it is.
    pub user: UserId,
    /// The rest.
    pub passkey: Passkey,
}

impl StoredPasskey {
    fn from_record(record: &Record) -> StoreResult<Self> {
        let user = record.user.ok_or_else(|| StoreError::Corrupt("a passkey record without a user".into()))?;
        let passkey = serde_json::from_str(&record.body).map_err(|e| corrupt(&e))?;
        Ok(Self { id: record.key.clone(), user, passkey })
    }

    fn record(&self, now: Timestamp) -> StoreResult<Record> {
        Ok(Record {
            kind: PASSKEY_KIND.to_owned(),
            key: self.id.clone(),
            user: Some(self.user),
            at: now,
            body: serde_json::to_string(&self.passkey).map_err(|e| corrupt(&e))?,
        })
    }

    /// The COSE algorithm of its key.
    #[must_use]
    pub fn algorithm(&self) -> Option<i64> {
        let bytes = URL_SAFE_NO_PAD.decode(&self.passkey.cose_key).ok()?;
        let key = PublicKey::from_cose(&cbor::decode(&bytes).ok()?).ok()?;
        Some(key.algorithm())
    }
}

/// The WebAuthn user handle of `user`: their id, eight bytes big-endian
/// (stable, and says nothing about the person).
#[must_use]
pub fn user_handle(user: UserId) -> [u8; 8] {
    user.0.to_be_bytes()
}

/// The user's passkeys, in id order.
///
/// # Errors
/// Store failures.
pub fn list(store: &dyn Store, user: UserId) -> StoreResult<Vec<StoredPasskey>> {
    store.records(&RecordQuery::kind(PASSKEY_KIND).user(user))?.iter().map(StoredPasskey::from_record).collect()
}

/// Whether the user has a passkey.
///
/// # Errors
/// Store failures.
pub fn has_passkey(store: &dyn Store, user: UserId) -> StoreResult<bool> {
    let mut query = RecordQuery::kind(PASSKEY_KIND).user(user);
    query.limit = Some(1);
    Ok(!store.records(&query)?.is_empty())
}

/// Removes the user's passkey `id`; the removed passkey, `None` when the
/// user has none with that id.
///
/// # Errors
/// Store failures.
pub fn remove(store: &dyn Store, user: UserId, id: &str) -> StoreResult<Option<StoredPasskey>> {
    let Some(record) = store.record(PASSKEY_KIND, id)? else { return Ok(None) };
    let found = StoredPasskey::from_record(&record)?;
    if found.user != user {
        return Ok(None);
    }
    store.write_records(&[RecordWrite::Delete { kind: PASSKEY_KIND.to_owned(), key: id.to_owned() }])?;
    Ok(Some(found))
}

/// What the browser sent back from `navigator.credentials.create`.
#[derive(Debug, Clone, Copy)]
pub struct Registration<'a> {
    /// `response.clientDataJSON`.
    pub client_data_json: &'a [u8],
    /// `response.attestationObject`.
    pub attestation_object: &'a [u8],
}

/// Registers a passkey for `user` called `name` from the browser's answer to
/// a [`Purpose::Register`] challenge of theirs. The outer error is the
/// store's, the inner why the passkey was refused.
///
/// # Errors
/// Store failures.
pub fn register(
    store: &dyn Store,
    user: UserId,
    name: &str,
    answer: Registration<'_>,
    now: Timestamp,
) -> StoreResult<Result<StoredPasskey, WebAuthnError>> {
    let client = match verify::client_data(answer.client_data_json) {
        Ok(client) => client,
        Err(e) => return Ok(Err(e)),
    };
    let Some(rp) = take(store, &client.challenge, Purpose::Register(user.0), now)? else {
        return Ok(Err(WebAuthnError::Challenge));
    };
    let checked = verify::check_client_data(&client, Ceremony::Create, &rp.origin)
        .and_then(|()| verify::attestation(answer.attestation_object, answer.client_data_json))
        .and_then(|attested| attested.auth_data.check(&rp.id, false).map(|()| attested));
    let attested = match checked {
        Ok(attested) => attested,
        Err(e) => return Ok(Err(e)),
    };
    let id = URL_SAFE_NO_PAD.encode(&attested.credential.id);
    if store.record(PASSKEY_KIND, &id)?.is_some() {
        return Ok(Err(WebAuthnError::Registered));
    }
    let passkey = StoredPasskey {
        id,
        user,
        passkey: Passkey {
            name: name.to_owned(),
            cose_key: URL_SAFE_NO_PAD.encode(&attested.credential.cose_key),
            sign_count: attested.auth_data.sign_count,
            aaguid: hex(&attested.credential.aaguid),
            synced: attested.auth_data.flags & verify::FLAG_BE != 0,
            created_ms: now.0,
            last_used_ms: None,
        },
    };
    store.write_records(&[RecordWrite::Insert(passkey.record(now)?)])?;
    Ok(Ok(passkey))
}

/// What the browser sent back from `navigator.credentials.get`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assertion {
    /// The credential id, base64url.
    pub credential_id: String,
    /// `response.clientDataJSON`.
    pub client_data_json: Vec<u8>,
    /// `response.authenticatorData`.
    pub authenticator_data: Vec<u8>,
    /// `response.signature`.
    pub signature: Vec<u8>,
    /// `response.userHandle`, when the authenticator gave one.
    pub user_handle: Option<Vec<u8>>,
}

/// How a passkey is used at a sign-in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Use {
    /// After this user's password: presence is enough.
    SecondFactor(UserId),
    /// Instead of the password: user verification is needed.
    Alone,
}

/// Checks a sign-in with a passkey, answering a [`Purpose::Login`]
/// challenge; on success records the new counter and the time of use and
/// returns the passkey. The outer error is the store's, the inner why the
/// sign-in was refused.
///
/// # Errors
/// Store failures.
pub fn authenticate(
    store: &dyn Store,
    answer: &Assertion,
    usage: Use,
    now: Timestamp,
) -> StoreResult<Result<StoredPasskey, WebAuthnError>> {
    let client = match verify::client_data(&answer.client_data_json) {
        Ok(client) => client,
        Err(e) => return Ok(Err(e)),
    };
    let Some(rp) = take(store, &client.challenge, Purpose::Login, now)? else {
        return Ok(Err(WebAuthnError::Challenge));
    };
    if let Err(e) = verify::check_client_data(&client, Ceremony::Get, &rp.origin) {
        return Ok(Err(e));
    }
    let Some(record) = store.record(PASSKEY_KIND, &answer.credential_id)? else {
        return Ok(Err(WebAuthnError::UnknownPasskey));
    };
    let mut found = StoredPasskey::from_record(&record)?;
    let handle_differs = answer.user_handle.as_ref().is_some_and(|h| h[..] != user_handle(found.user));
    if handle_differs || matches!(usage, Use::SecondFactor(user) if user != found.user) {
        return Ok(Err(WebAuthnError::UnknownPasskey));
    }
    let key = URL_SAFE_NO_PAD
        .decode(&found.passkey.cose_key)
        .ok()
        .and_then(|bytes| cbor::decode(&bytes).ok())
        .and_then(|cose| PublicKey::from_cose(&cose).ok())
        .ok_or_else(|| StoreError::Corrupt(format!("the key of passkey {}", found.id)))?;
    let checked = verify::AuthData::parse(&answer.authenticator_data)
        .and_then(|data| data.check(&rp.id, usage == Use::Alone).map(|()| data))
        .and_then(|data| {
            key.verify(&verify::signed_data(&answer.authenticator_data, &answer.client_data_json), &answer.signature)?;
            verify::check_counter(found.passkey.sign_count, data.sign_count)?;
            Ok(data)
        });
    let data = match checked {
        Ok(data) => data,
        Err(e) => return Ok(Err(e)),
    };
    found.passkey.sign_count = data.sign_count;
    found.passkey.last_used_ms = Some(now.0);
    store.write_records(&[RecordWrite::Put(found.record(now)?)])?;
    Ok(Ok(found))
}
