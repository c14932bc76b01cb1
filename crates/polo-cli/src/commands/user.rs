//! `polo user add | role | list | delete`.
//!
//! Deleting asks for the user's name to be typed again (or `--yes`), as the
//! web app asks for the password: it cannot be undone. The store refuses to
//! delete the only administrator. Adding, deleting and roles go to the audit
//! log with the actor `cli`, like an administrator's changes over the API.

use std::io::BufRead;

use anyhow::{Context, bail};
use polo_server::audit::Event;
use polo_store::{AuditEntry, RecordWrite, Role, Store};

use crate::Outcome;
use crate::cli::UserCommand;
use crate::config::Config;

pub fn run(config: &Config, command: &UserCommand) -> anyhow::Result<Outcome> {
    let store = config.open_store()?;
    match command {
        UserCommand::Add { name, admin, password_stdin } => add(&*store, name, *admin, *password_stdin),
        UserCommand::Role { name, role } => set_role(&*store, name, role),
        UserCommand::List { json } => list(&*store, *json),
        UserCommand::Delete { name, yes, json } => delete(&*store, name, *yes, *json),
    }
}

fn validate_name(name: &str) -> anyhow::Result<()> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if !ok {
        bail!("user names are 1-64 characters of letters, digits, '-', '_', '.' or '@' (got {name:?})");
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the password from stdin")?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first =
        rpassword::prompt_password("Password: ").context("cannot prompt for a password (use --password-stdin)")?;
    let second = rpassword::prompt_password("Repeat password: ").context("cannot prompt for a password")?;
    if first != second {
        bail!("the passwords do not match");
    }
    Ok(first)
}

fn add(store: &dyn Store, name: &str, admin: bool, password_stdin: bool) -> anyhow::Result<Outcome> {
    validate_name(name)?;
    if store.user_by_name(name)?.is_some() {
        bail!("a user named {name:?} already exists");
    }
    let password = read_password(password_stdin)?;
    let hash = polo_server::auth::hash_password(&password)?;
    let user = store.create_user(name, &hash, admin)?;
    let event = Event::new("cli", "admin.user.create", Some(user.id)).with("admin", admin).with("via", "polo user add");
    store.write_records(&[event.into_write(polo_store::clock::now(), None)])?;
    eprintln!("created user {} (id {}){}", user.name, user.id, if admin { " with admin rights" } else { "" });
    Ok(Outcome::Success)
}

fn set_role(store: &dyn Store, name: &str, role: &str) -> anyhow::Result<Outcome> {
    let role = match role {
        "none" => None,
        other => Some(Role::from_name(other).with_context(|| {
            format!("unknown role {other:?}: the roles are health-authority, or none to take the role away")
        })?),
    };
    let Some(user) = store.user_by_name(name)? else { bail!("there is no user {name:?}") };
    store.set_user_role(user.id, role)?;
    let detail = serde_json::json!({"user": name, "role": role.map(Role::name), "via": "polo user role"});
    store.write_records(&[RecordWrite::Audit(AuditEntry {
        id: 0,
        at: polo_store::clock::now(),
        actor: "cli".to_owned(),
        action: "role.set".to_owned(),
        subject: Some(user.id),
        detail: detail.to_string(),
    })])?;
    match role {
        Some(role) => eprintln!("{name} now has the {} role", role.name()),
        None => eprintln!("{name} has no role now"),
    }
    Ok(Outcome::Success)
}

fn list(store: &dyn Store, json: bool) -> anyhow::Result<Outcome> {
    let users = store.list_users()?;
    let roles: std::collections::BTreeMap<_, _> = store.user_roles()?.into_iter().collect();
    let role = |u: &polo_store::User| roles.get(&u.id).map(|r| r.name());
    if json {
        let rows: Vec<_> = users
            .iter()
            .map(|u| {
                serde_json::json!({"id": u.id, "name": u.name, "admin": u.is_admin, "role": role(u),
                    "created": u.created.to_string()})
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for u in &users {
            let admin = if u.is_admin { "admin" } else { "" };
            println!("{:>5}  {:<24} {admin:<6} {}", u.id, u.name, role(u).unwrap_or_default());
        }
    }
    Ok(Outcome::Success)
}

fn delete(store: &dyn Store, name: &str, yes: bool, json: bool) -> anyhow::Result<Outcome> {
    let Some(user) = store.user_by_name(name)? else { bail!("there is no user {name:?}") };
    if !yes {
        let points = store.count_points(user.id)?;
        let devices = store.list_devices(user.id)?.len();
        eprintln!(
            "This deletes the account {name:?} with its {points} points, {devices} devices, tokens, share links, \
             places and timeline. It cannot be undone.\nType the user name to confirm: "
        );
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line).context("cannot read the confirmation from stdin")?;
        if line.trim() != name {
            bail!("not confirmed: nothing was deleted (type the name, or pass --yes)");
        }
    }
    let deleted = store.delete_user(user.id).map_err(|e| match e {
        polo_store::StoreError::Refused(why) => anyhow::anyhow!("{why}"),
        other => anyhow::Error::new(other).context(format!("deleting the user {name:?}")),
    })?;
    let event =
        Event::new("cli", "admin.user.delete", None).with("user", deleted.name.clone()).with("via", "polo user delete");
    store.write_records(&[event.into_write(polo_store::clock::now(), None)])?;
    if json {
        let summary = serde_json::json!({"name": deleted.name, "points": deleted.points, "devices": deleted.devices});
        println!("{summary}");
    } else {
        eprintln!("deleted user {} with {} points and {} devices", deleted.name, deleted.points, deleted.devices);
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::validate_name;

    #[test]
    fn names_are_checked() {
        assert!(validate_name("alice").is_ok());
        assert!(validate_name("a.b-c_d@x").is_ok());
        assert!(validate_name("").is_err());
        assert!(validate_name("with space").is_err());
    }
}
