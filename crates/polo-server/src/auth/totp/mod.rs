//! Two-factor authentication with TOTP and one-time recovery codes.
//!
//! A user's second factor is one store record (`auth.totp`, keyed by the
//! user's id, so it goes with the account): the secret, whether enrolment
//! was confirmed with a code, the last step used (a code works once), and
//! the SHA-256 of each unused recovery code. Enrolment is two steps so a
//! mistyped scan cannot lock anyone out: [`begin`] stores a pending secret,
//! [`confirm`] turns it on once the app's code matches, and only then are
//! the recovery codes made and shown, once.
//!
//! The secret is kept in the store as the authenticator app has it: it has
//! to be, to compute codes, like any TOTP server. Recovery codes are kept
//! only as hashes: 50 random bits each, looked at only after the password
//! was right and rate limited with it.
//!
//! Checking a code ([`check`]) takes the password's place in the login
//! back-off: callers count a wrong code as a failed login.

pub mod code;
pub(crate) mod routes;

use argon2::password_hash::rand_core::{OsRng, RngCore};
use polo_domain::{Timestamp, UserId};
use polo_store::{Record, RecordWrite, Store, StoreError, StoreResult};
use serde::{Deserialize, Serialize};

use crate::auth::secret::{constant_time_eq, sha256};

/// The records' kind.
pub const KIND: &str = "auth.totp";
/// Recovery codes made at enrolment.
pub const RECOVERY_CODES: usize = 10;
/// The instance setting that requires a second factor of administrators.
pub const REQUIRE_ADMIN_SETTING: &str = "require_admin_2fa";

/// A user's second factor, as stored.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpState {
    /// The secret, base32.
    pub secret: String,
    /// Whether enrolment was confirmed (the factor is required at login).
    pub enabled: bool,
    /// The last step whose code was accepted.
    pub last_step: Option<i64>,
    /// Hex SHA-256 of each unused recovery code.
    pub recovery: Vec<String>,
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("a two-factor record: {e}"))
}

/// The user's state, if they ever began enrolling.
///
/// # Errors
/// Store failures.
pub fn load(store: &dyn Store, user: UserId) -> StoreResult<Option<TotpState>> {
    store.record(KIND, &user.0.to_string())?.map(|r| serde_json::from_str(&r.body).map_err(corrupt)).transpose()
}

/// Whether the user must give a second factor.
///
/// # Errors
/// Store failures.
pub fn enabled(store: &dyn Store, user: UserId) -> StoreResult<bool> {
    Ok(load(store, user)?.is_some_and(|s| s.enabled))
}

fn save(store: &dyn Store, user: UserId, state: &TotpState, now: Timestamp) -> StoreResult<()> {
    let body = serde_json::to_string(state).map_err(corrupt)?;
    store.write_records(&[RecordWrite::Put(Record {
        kind: KIND.to_owned(),
        key: user.0.to_string(),
        user: Some(user),
        at: now,
        body,
    })])
}

/// Starts enrolling: a new pending secret (base32), replacing a pending one.
///
/// # Errors
/// [`StoreError::Refused`] when two-factor is on already (disable it first); store failures.
pub fn begin(store: &dyn Store, user: UserId, now: Timestamp) -> StoreResult<String> {
    if enabled(store, user)? {
        return Err(StoreError::Refused("two-factor authentication is on already; turn it off first".into()));
    }
    let mut secret = [0u8; 20];
    OsRng.fill_bytes(&mut secret);
    let secret = code::base32(&secret);
    save(
        store,
        user,
        &TotpState { secret: secret.clone(), enabled: false, last_step: None, recovery: Vec::new() },
        now,
    )?;
    Ok(secret)
}

/// A new recovery code: ten base32 characters as `XXXXX-XXXXX`.
fn recovery_code() -> String {
    let mut bytes = [0u8; 7];
    OsRng.fill_bytes(&mut bytes);
    let text = code::base32(&bytes);
    format!("{}-{}", &text[..5], &text[5..10])
}

fn normalise(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_uppercase()).collect()
}

/// What checking a code found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checked {
    /// The app's code for now.
    Totp,
    /// A recovery code, now used up; this many are left.
    Recovery(usize),
    /// Neither.
    Wrong,
}

/// Confirms a pending enrolment with the app's code: turns the factor on
/// and returns the recovery codes (shown once). `None` for a wrong code.
///
/// # Errors
/// [`StoreError::Refused`] when nothing is pending; store failures.
pub fn confirm(store: &dyn Store, user: UserId, given: &str, now: Timestamp) -> StoreResult<Option<Vec<String>>> {
    let Some(mut state) = load(store, user)?.filter(|s| !s.enabled) else {
        return Err(StoreError::Refused("no enrolment is pending; start one first".into()));
    };
    let secret = code::base32_decode(&state.secret).ok_or_else(|| StoreError::Corrupt("a TOTP secret".into()))?;
    let Some(step) = code::matching_step(&secret, given.trim(), now.0 / 1000, None) else { return Ok(None) };
    let codes: Vec<String> = (0..RECOVERY_CODES).map(|_| recovery_code()).collect();
    state.enabled = true;
    state.last_step = Some(step);
    state.recovery = codes.iter().map(|c| hex(&sha256(normalise(c).as_bytes()))).collect();
    save(store, user, &state, now)?;
    Ok(Some(codes))
}

/// Checks a code at login or to turn the factor off: the app's code (once
/// per step) or an unused recovery code (used up). Users without the
/// factor on get [`Checked::Wrong`].
///
/// # Errors
/// Store failures.
pub fn check(store: &dyn Store, user: UserId, given: &str, now: Timestamp) -> StoreResult<Checked> {
    let Some(mut state) = load(store, user)?.filter(|s| s.enabled) else { return Ok(Checked::Wrong) };
    let secret = code::base32_decode(&state.secret).ok_or_else(|| StoreError::Corrupt("a TOTP secret".into()))?;
    let given = given.trim();
    if given.len() == code::DIGITS as usize && given.bytes().all(|b| b.is_ascii_digit()) {
        let Some(step) = code::matching_step(&secret, given, now.0 / 1000, state.last_step) else {
            return Ok(Checked::Wrong);
        };
        state.last_step = Some(step);
        save(store, user, &state, now)?;
        return Ok(Checked::Totp);
    }
    let hash = hex(&sha256(normalise(given).as_bytes()));
    let mut found = None;
    for (i, stored) in state.recovery.iter().enumerate() {
        if constant_time_eq(stored.as_bytes(), hash.as_bytes()) && found.is_none() {
            found = Some(i);
        }
    }
    let Some(i) = found else { return Ok(Checked::Wrong) };
    state.recovery.remove(i);
    save(store, user, &state, now)?;
    Ok(Checked::Recovery(state.recovery.len()))
}

/// Turns the factor off (and forgets a pending enrolment); whether there was one.
///
/// # Errors
/// Store failures.
pub fn disable(store: &dyn Store, user: UserId) -> StoreResult<bool> {
    let existed = load(store, user)?.is_some();
    store.write_records(&[RecordWrite::Delete { kind: KIND.to_owned(), key: user.0.to_string() }])?;
    Ok(existed)
}

/// Whether an administrator has required a second factor of administrators.
///
/// # Errors
/// Store failures.
pub fn required_for_admins(store: &dyn Store) -> StoreResult<bool> {
    Ok(store.instance_settings()?.iter().any(|(k, v)| k == REQUIRE_ADMIN_SETTING && v == "true"))
}

#[cfg(test)]
mod tests {
    use polo_store_sqlite::SqliteStore;

    use super::*;

    fn at(s: i64) -> Timestamp {
        Timestamp(s * 1000)
    }

    #[test]
    fn enrol_confirm_log_in_recover_and_disable() {
        let store = SqliteStore::open_in_memory().unwrap();
        let user = store.create_user("ann", "h", false).unwrap().id;
        assert!(matches!(confirm(&store, user, "123456", at(1_000)), Err(StoreError::Refused(_))));
        let secret = begin(&store, user, at(1_000)).unwrap();
        let key = code::base32_decode(&secret).unwrap();
        assert!(!enabled(&store, user).unwrap(), "pending until confirmed");
        assert_eq!(check(&store, user, &code::totp(&key, 1_000), at(1_000)).unwrap(), Checked::Wrong);
        let wrong = if code::totp(&key, 1_000) == "111111" { "222222" } else { "111111" };
        assert_eq!(confirm(&store, user, wrong, at(1_000)).unwrap(), None);
        let codes = confirm(&store, user, &code::totp(&key, 1_000), at(1_000)).unwrap().unwrap();
        assert_eq!(codes.len(), RECOVERY_CODES);
        assert!(enabled(&store, user).unwrap());
        assert!(matches!(begin(&store, user, at(1_000)), Err(StoreError::Refused(_))));
        // The confirming code was used; the next step's works once.
        assert_eq!(check(&store, user, &code::totp(&key, 1_000), at(1_010)).unwrap(), Checked::Wrong);
        assert_eq!(check(&store, user, &code::totp(&key, 1_030), at(1_030)).unwrap(), Checked::Totp);
        assert_eq!(check(&store, user, &code::totp(&key, 1_030), at(1_031)).unwrap(), Checked::Wrong, "replayed");
        // Recovery codes work once each, in any case and with or without the dash.
        let first = codes[0].to_lowercase().replace('-', "");
        assert_eq!(check(&store, user, &first, at(2_000)).unwrap(), Checked::Recovery(RECOVERY_CODES - 1));
        assert_eq!(check(&store, user, &codes[0], at(2_000)).unwrap(), Checked::Wrong);
        assert_eq!(check(&store, user, "AAAAA-AAAAA", at(2_000)).unwrap(), Checked::Wrong);
        assert!(disable(&store, user).unwrap());
        assert!(!enabled(&store, user).unwrap() && !disable(&store, user).unwrap());
    }

    #[test]
    fn the_admin_requirement_is_an_instance_setting() {
        let store = SqliteStore::open_in_memory().unwrap();
        assert!(!required_for_admins(&store).unwrap());
        store.set_instance_setting(REQUIRE_ADMIN_SETTING, Some("true")).unwrap();
        assert!(required_for_admins(&store).unwrap());
    }
}
