//! From a provider's identity to a polo account: links, accounts created
//! at first sign-in, and roles that follow the groups claim.
//!
//! An identity is its issuer and subject, never its e-mail address or
//! name: a provider account is linked to a polo account once (by its
//! owner, logged in, or when polo creates the account for it), and from
//! then on signs in as that account. A new account never takes over an
//! existing one with the same name; it gets a free name instead.
//! Links are store records (`auth.oidc.link`, keyed `issuer#subject`) of the
//! user, so deleting the account deletes its links.

use polo_domain::UserId;
use polo_store::{Record, RecordQuery, RecordWrite, Role, Store, StoreError, StoreResult, User};
use serde::{Deserialize, Serialize};

use super::OidcError;
use super::claims::Identity;
use super::config::OidcSettings;
use crate::audit::Event;

/// The records' kind.
pub const LINK_KIND: &str = "auth.oidc.link";

/// A stored link.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Link {
    /// The issuer.
    pub issuer: String,
    /// The subject.
    pub subject: String,
    /// The e-mail address at linking time, to show.
    pub email: Option<String>,
}

fn key(issuer: &str, subject: &str) -> String {
    // An issuer has no fragment, so '#' cannot occur in it.
    format!("{issuer}#{subject}")
}

fn corrupt(e: serde_json::Error) -> StoreError {
    StoreError::Corrupt(format!("an OIDC link: {e}"))
}

/// The user's link, if any.
///
/// # Errors
/// Store failures.
pub fn link_of(store: &dyn Store, user: UserId) -> StoreResult<Option<Link>> {
    let records = store.records(&RecordQuery::kind(LINK_KIND).user(user))?;
    records.first().map(|r| serde_json::from_str(&r.body).map_err(corrupt)).transpose()
}

/// Removes the user's links; whether there was one.
///
/// # Errors
/// Store failures.
pub fn unlink(store: &dyn Store, user: UserId) -> StoreResult<bool> {
    let records = store.records(&RecordQuery::kind(LINK_KIND).user(user))?;
    let writes: Vec<RecordWrite> =
        records.iter().map(|r| RecordWrite::Delete { kind: LINK_KIND.to_owned(), key: r.key.clone() }).collect();
    store.write_records(&writes)?;
    Ok(!writes.is_empty())
}

fn link_write(identity: &Identity, user: UserId) -> StoreResult<RecordWrite> {
    let body =
        Link { issuer: identity.issuer.clone(), subject: identity.subject.clone(), email: identity.email.clone() };
    Ok(RecordWrite::Put(Record {
        kind: LINK_KIND.to_owned(),
        key: key(&identity.issuer, &identity.subject),
        user: Some(user),
        at: crate::audit::now(),
        body: serde_json::to_string(&body).map_err(corrupt)?,
    }))
}

/// Links the identity to `user`, replacing the user's earlier link.
///
/// # Errors
/// [`OidcError::Denied`] when the identity is linked to another user.
pub fn link(store: &dyn Store, user: &User, identity: &Identity) -> Result<Event, OidcError> {
    let existing = store.record(LINK_KIND, &key(&identity.issuer, &identity.subject))?;
    if existing.is_some_and(|record| record.user != Some(user.id)) {
        return Err(OidcError::Denied(
            "this provider account is already linked to another polo account; unlink it there first".into(),
        ));
    }
    unlink(store, user.id)?;
    store.write_records(&[link_write(identity, user.id)?])?;
    Ok(Event::new(&user.name, "auth.oidc.link", Some(user.id)).with("oidc_subject", identity.subject.clone()))
}

/// The user the identity signs in as: its linked account, or a new one
/// when the settings allow it. Roles are brought in line with the groups
/// claim. Returns the events to audit.
///
/// # Errors
/// [`OidcError::Denied`] with the reason to show; store failures.
pub fn sign_in(
    store: &dyn Store,
    settings: &OidcSettings,
    identity: &Identity,
    unusable_password_hash: &str,
) -> Result<(User, Vec<Event>), OidcError> {
    let mut events = Vec::new();
    let linked = store.record(LINK_KIND, &key(&identity.issuer, &identity.subject))?;
    let user = match linked.and_then(|r| r.user) {
        Some(id) => {
            store.user_by_id(id)?.ok_or_else(|| OidcError::Denied("the linked polo account no longer exists".into()))?
        }
        None => {
            let user = create(store, settings, identity, unusable_password_hash)?;
            events.push(
                Event::new(&user.name, "auth.oidc.account_created", Some(user.id))
                    .with("oidc_subject", identity.subject.clone())
                    .with("email", identity.email.clone()),
            );
            user
        }
    };
    let (user, role_events) = sync_roles(store, settings, identity, user)?;
    events.extend(role_events);
    Ok((user, events))
}

/// Whether the settings let this identity have an account made.
///
/// # Errors
/// [`OidcError::Denied`] saying why not.
pub fn may_sign_up(settings: &OidcSettings, identity: &Identity) -> Result<(), OidcError> {
    if !settings.create_accounts {
        return Err(OidcError::Denied(
            "no polo account is linked to this sign-in: log in with your password and link it on the account \
             page, or ask an administrator"
                .into(),
        ));
    }
    if settings.allowed_domains.is_empty() && settings.allowed_groups.is_empty() {
        return Ok(());
    }
    let domain = identity.email.as_deref().and_then(|e| e.rsplit_once('@')).map(|(_, d)| d);
    if domain.is_some_and(|d| settings.allowed_domains.iter().any(|a| a == d)) {
        return Ok(());
    }
    if identity.groups.iter().any(|g| settings.allowed_groups.contains(g)) {
        return Ok(());
    }
    let who = identity.email.as_deref().unwrap_or("this account (no verified e-mail address)");
    let mut allowed = Vec::new();
    if !settings.allowed_domains.is_empty() {
        allowed.push(format!("addresses at {}", settings.allowed_domains.join(", ")));
    }
    if !settings.allowed_groups.is_empty() {
        allowed.push(format!("members of {}", settings.allowed_groups.join(", ")));
    }
    Err(OidcError::Denied(format!("{who} may not have an account here: only {} can sign up", allowed.join(" or "))))
}

/// A name for a new account from the identity: letters, digits and `-_.@`.
fn base_name(identity: &Identity) -> String {
    let from = identity
        .preferred_username
        .clone()
        .or_else(|| identity.email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned))
        .unwrap_or_default();
    let clean: String =
        from.chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@')).take(56).collect();
    if clean.is_empty() { "user".to_owned() } else { clean }
}

fn create(
    store: &dyn Store,
    settings: &OidcSettings,
    identity: &Identity,
    unusable_password_hash: &str,
) -> Result<User, OidcError> {
    may_sign_up(settings, identity)?;
    let base = base_name(identity);
    for n in 1..=100u32 {
        let name = if n == 1 { base.clone() } else { format!("{base}-{n}") };
        if store.user_by_name(&name)?.is_some() {
            continue;
        }
        match store.create_user(&name, unusable_password_hash, false) {
            Ok(user) => {
                store.write_records(&[link_write(identity, user.id)?])?;
                return Ok(user);
            }
            Err(StoreError::AlreadyExists(_)) => {}
            Err(e) => return Err(e.into()),
        }
    }
    Err(OidcError::Denied(format!("no free user name like {base:?}; ask an administrator")))
}

fn sync_roles(
    store: &dyn Store,
    settings: &OidcSettings,
    identity: &Identity,
    mut user: User,
) -> Result<(User, Vec<Event>), OidcError> {
    let mut events = Vec::new();
    let member = |groups: &[String]| identity.groups.iter().any(|g| groups.contains(g));
    if let Some(groups) = &settings.admin_groups {
        let admin = member(groups);
        if admin != user.is_admin {
            store.set_admin(user.id, admin)?;
            user.is_admin = admin;
            events
                .push(Event::new("system", "auth.role.change", Some(user.id)).with("admin", admin).with("by", "oidc"));
        }
    }
    if let Some(groups) = &settings.health_authority_groups {
        let wanted = member(groups).then_some(Role::HealthAuthority);
        if store.user_role(user.id)? != wanted {
            store.set_user_role(user.id, wanted)?;
            events.push(
                Event::new("system", "auth.role.change", Some(user.id))
                    .with("role", wanted.map(Role::name))
                    .with("by", "oidc"),
            );
        }
    }
    Ok((user, events))
}

#[cfg(test)]
mod tests {
    use polo_store_sqlite::SqliteStore;

    use super::*;
    use crate::auth::oidc::config::OidcConfig;

    fn settings(extra: impl FnOnce(&mut OidcConfig)) -> OidcSettings {
        let mut config = OidcConfig {
            issuer: Some("https://id.example".into()),
            client_id: Some("polo".into()),
            client_secret: Some("s".into()),
            redirect_uri: Some("https://polo.example/api/v1/auth/oidc/callback".into()),
            ..OidcConfig::default()
        };
        extra(&mut config);
        OidcSettings::from_config(config).unwrap()
    }

    fn identity(subject: &str, email: &str, groups: &[&str]) -> Identity {
        Identity {
            issuer: "https://id.example".into(),
            subject: subject.into(),
            email: Some(email.into()),
            preferred_username: None,
            groups: groups.iter().map(|g| (*g).to_owned()).collect(),
        }
    }

    #[test]
    fn accounts_are_made_for_allowed_domains_and_groups_only() {
        let store = SqliteStore::open_in_memory().unwrap();
        let s = settings(|c| {
            c.create_accounts = Some(true);
            c.allowed_domains = Some(vec!["Example.org".into()]);
            c.allowed_groups = Some(vec!["guests".into()]);
        });
        let (user, events) = sign_in(&store, &s, &identity("1", "ann@example.org", &[]), "!").unwrap();
        assert_eq!(user.name, "ann");
        assert_eq!(events[0].action, "auth.oidc.account_created");
        let (again, events) = sign_in(&store, &s, &identity("1", "ann@example.org", &[]), "!").unwrap();
        assert_eq!((again.id, events.len()), (user.id, 0), "the second sign-in finds the link");
        let (guest, _) = sign_in(&store, &s, &identity("2", "ann@elsewhere.net", &["guests"]), "!").unwrap();
        assert_eq!(guest.name, "ann-2", "a taken name is never taken over");
        let e = sign_in(&store, &s, &identity("3", "eve@evil.example", &["staff"]), "!").unwrap_err();
        assert_eq!(
            e.to_string(),
            "eve@evil.example may not have an account here: only addresses at example.org or members of guests can sign up"
        );
        let closed = settings(|_| {});
        let e = sign_in(&store, &closed, &identity("4", "bob@example.org", &[]), "!").unwrap_err();
        assert!(e.to_string().starts_with("no polo account is linked"), "{e}");
    }

    #[test]
    fn links_are_unique_and_roles_follow_the_groups() {
        let store = SqliteStore::open_in_memory().unwrap();
        let alice = store.create_user("alice", "h", false).unwrap();
        let bob = store.create_user("bob", "h", false).unwrap();
        let id = identity("a", "alice@example.org", &["polo-admins"]);
        link(&store, &alice, &id).unwrap();
        assert!(matches!(link(&store, &bob, &id), Err(OidcError::Denied(_))));
        assert_eq!(link_of(&store, alice.id).unwrap().unwrap().subject, "a");
        let s = settings(|c| {
            c.admin_groups = Some(vec!["polo-admins".into()]);
            c.health_authority_groups = Some(vec!["health".into()]);
        });
        let (user, events) = sign_in(&store, &s, &id, "!").unwrap();
        assert!(user.is_admin && store.user_by_id(alice.id).unwrap().unwrap().is_admin);
        assert_eq!(events.len(), 1);
        let (user, events) = sign_in(&store, &s, &identity("a", "alice@example.org", &["health"]), "!").unwrap();
        assert!(!user.is_admin);
        assert_eq!(store.user_role(alice.id).unwrap(), Some(Role::HealthAuthority));
        assert_eq!(events.len(), 2);
        assert!(unlink(&store, alice.id).unwrap());
        assert_eq!(link_of(&store, alice.id).unwrap(), None);
        link(&store, &bob, &id).unwrap();
    }
}
