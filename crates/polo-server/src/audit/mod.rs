//! The security audit log: who signed in or failed to, changed a second
//! factor, made or revoked a token or share link, or acted as an
//! administrator.
//!
//! Administrators read it at `GET /api/v1/admin/audit` ([`routes`]) and on
//! the web app's Audit page. It is kept for `audit_retention_days` (an
//! instance setting, default [`DEFAULT_RETENTION_DAYS`]); the hourly
//! retention job deletes older security entries ([`purge`]), while the
//! exposure workflow keeps its own entries for its own period.
//!
//! Entries go to the store's audit log (`polo_store::AuditEntry`), the one
//! the exposure workflow writes its decisions to, so an administrator reads
//! both in one place. Writing is
//! best effort: a store failure is logged and never turns a successful
//! login into an error, because the request's own store calls would have
//! failed first. Entries never hold secrets: no passwords, codes or tokens,
//! only ids, names and the client's address.

pub(crate) mod routes;

use std::net::IpAddr;
use std::sync::Arc;

use polo_domain::{Timestamp, UserId};
use polo_store::{AuditEntry, RecordWrite, Store};
use serde_json::{Value, json};

/// The action prefixes of security events, which [`purge`] deletes by age
/// (`role.` is the health-authority role's `role.set`, by the API or `polo user role`; `group.`
/// the groups' admin actions, joins and leaves).
pub const SECURITY_PREFIXES: [&str; 6] = ["auth.", "admin.", "token.", "share.", "role.", "group."];
/// The instance setting: days security entries are kept.
pub const RETENTION_SETTING: &str = "audit_retention_days";
/// Days kept unless an administrator changed it.
pub const DEFAULT_RETENTION_DAYS: u32 = 365;
/// The longest retention an administrator may set.
pub const MAX_RETENTION_DAYS: u32 = 3650;

/// The configured retention in days.
///
/// # Errors
/// Store failures.
pub fn retention_days(store: &dyn Store) -> polo_store::StoreResult<u32> {
    Ok(store
        .instance_settings()?
        .iter()
        .find(|(k, _)| k == RETENTION_SETTING)
        .and_then(|(_, v)| v.parse().ok())
        .filter(|d| (1..=MAX_RETENTION_DAYS).contains(d))
        .unwrap_or(DEFAULT_RETENTION_DAYS))
}

/// Deletes security entries older than the retention period at `now`.
///
/// # Errors
/// Store failures.
pub fn purge(store: &dyn Store, now: Timestamp) -> polo_store::StoreResult<()> {
    let before = Timestamp(now.0 - i64::from(retention_days(store)?) * 86_400_000);
    let writes: Vec<RecordWrite> =
        SECURITY_PREFIXES.iter().map(|p| RecordWrite::AuditActionBefore { prefix: (*p).to_owned(), before }).collect();
    store.write_records(&writes)
}

/// The longest actor name kept (a failed login's name is whatever was typed).
const ACTOR_MAX: usize = 64;

/// One event to record.
#[derive(Debug, Clone)]
pub struct Event {
    /// Who: the user's name, or what was typed as one.
    pub actor: String,
    /// `feature.verb`, e.g. `auth.login`.
    pub action: &'static str,
    /// The user it concerns.
    pub subject: Option<UserId>,
    /// Details (JSON object); the client's address is added.
    pub detail: Value,
}

impl Event {
    /// An event by `actor` about `subject`.
    #[must_use]
    pub fn new(actor: &str, action: &'static str, subject: Option<UserId>) -> Self {
        let actor: String = actor.chars().filter(|c| !c.is_control()).take(ACTOR_MAX).collect();
        Self { actor, action, subject, detail: json!({}) }
    }

    /// Adds a detail.
    #[must_use]
    pub fn with(mut self, key: &str, value: impl Into<Value>) -> Self {
        if let Value::Object(map) = &mut self.detail {
            map.insert(key.to_owned(), value.into());
        }
        self
    }

    /// The store write of this event, made at `at` from `ip`.
    #[must_use]
    pub fn into_write(self, at: Timestamp, ip: Option<IpAddr>) -> RecordWrite {
        let mut detail = self.detail;
        if let (Value::Object(map), Some(ip)) = (&mut detail, ip) {
            map.insert("ip".to_owned(), ip.to_string().into());
        }
        RecordWrite::Audit(AuditEntry {
            id: 0,
            at,
            actor: self.actor,
            action: self.action.to_owned(),
            subject: self.subject,
            detail: detail.to_string(),
        })
    }
}

/// Now, in milliseconds.
#[must_use]
pub fn now() -> Timestamp {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis());
    Timestamp(i64::try_from(ms).unwrap_or(i64::MAX))
}

/// Records `event` (best effort, on the blocking pool).
pub async fn record(store: &Arc<dyn Store>, event: Event, ip: Option<IpAddr>) {
    let (store, action) = (store.clone(), event.action);
    let write = event.into_write(now(), ip);
    match tokio::task::spawn_blocking(move || store.write_records(&[write])).await {
        Ok(Ok(())) => {}
        Ok(Err(error)) => tracing::warn!(%error, action, "could not write the audit entry"),
        Err(error) => tracing::warn!(%error, action, "could not write the audit entry"),
    }
}

#[cfg(test)]
mod tests {
    use polo_store::AuditQuery;
    use polo_store_sqlite::SqliteStore;

    use super::*;

    #[test]
    fn purge_keeps_the_configured_days_of_security_entries_only() {
        let store = SqliteStore::open_in_memory().unwrap();
        let day = 86_400_000;
        let now = Timestamp(1_000 * day);
        let old = Timestamp(now.0 - 400 * day);
        store
            .write_records(&[
                Event::new("ann", "auth.login", None).into_write(old, None),
                Event::new("ann", "exposure.case.mark", None).into_write(old, None),
                Event::new("ann", "auth.login", None)
                    .with("method", "password")
                    .into_write(now, "192.0.2.1".parse().ok()),
            ])
            .unwrap();
        purge(&store, now).unwrap();
        let left = store.audit_log(&AuditQuery::newest(10)).unwrap();
        assert_eq!(left.iter().map(|e| e.action.as_str()).collect::<Vec<_>>(), ["auth.login", "exposure.case.mark"]);
        assert_eq!(left[0].detail, r#"{"ip":"192.0.2.1","method":"password"}"#);
        store.set_instance_setting(RETENTION_SETTING, Some("1")).unwrap();
        assert_eq!(retention_days(&store).unwrap(), 1);
        purge(&store, Timestamp(now.0 + 2 * day)).unwrap();
        assert_eq!(store.audit_log(&AuditQuery::newest(10)).unwrap().len(), 1, "only the exposure entry is left");
    }

    #[test]
    fn actors_are_cut_and_cleaned() {
        let event = Event::new(&format!("{}\n", "x".repeat(100)), "auth.login_failed", None);
        assert_eq!(event.actor, "x".repeat(64));
    }
}
