//! `polo user add | list`.

use std::io::BufRead;

use anyhow::{Context, bail};
use polo_store::Store;

use crate::Outcome;
use crate::cli::UserCommand;
use crate::config::Config;

pub fn run(config: &Config, command: &UserCommand) -> anyhow::Result<Outcome> {
    let store = config.open_store()?;
    match command {
        UserCommand::Add { name, admin, password_stdin } => add(&*store, name, *admin, *password_stdin),
        UserCommand::List { json } => list(&*store, *json),
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
    eprintln!("created user {} (id {}){}", user.name, user.id, if admin { " with admin rights" } else { "" });
    Ok(Outcome::Success)
}

fn list(store: &dyn Store, json: bool) -> anyhow::Result<Outcome> {
    let users = store.list_users()?;
    if json {
        let rows: Vec<_> = users
            .iter()
            .map(|u| serde_json::json!({"id": u.id, "name": u.name, "admin": u.is_admin, "created": u.created.to_string()}))
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for u in &users {
            println!("{:>5}  {:<24} {}", u.id, u.name, if u.is_admin { "admin" } else { "" });
        }
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
