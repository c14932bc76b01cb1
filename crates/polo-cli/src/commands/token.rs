//! `polo token create | list | revoke`: device tokens from the command line,
//! for setting up a phone before the web app is reachable.
//!
//! `create` prints only the token on stdout (so `TOKEN=$(polo token create …)`
//! works) and everything else on stderr; the token is shown this once, as
//! the store keeps only its hash.

use anyhow::{Context, bail};
use polo_store::Store;

use crate::Outcome;
use crate::cli::TokenCommand;
use crate::commands::require_user;
use crate::config::Config;

pub fn run(config: &Config, command: &TokenCommand) -> anyhow::Result<Outcome> {
    let store = config.open_store()?;
    match command {
        TokenCommand::Create { user, device, label } => create(&store, user, device, label),
        TokenCommand::List { user, json } => list(&store, user, *json),
        TokenCommand::Revoke { user, id } => revoke(&store, user, *id),
    }
}

fn create(store: &dyn Store, user: &str, device: &str, label: &str) -> anyhow::Result<Outcome> {
    let device = device.trim();
    if device.is_empty() || device.chars().count() > 64 || device.chars().any(char::is_control) {
        bail!("device names are 1-64 printable characters (got {device:?})");
    }
    let user = require_user(store, user)?;
    let device = store.ensure_device(user.id, device).context("cannot create the device")?;
    let (token, hash) = polo_server::auth::new_token();
    let stored = store.create_token(user.id, device.id, label.trim(), &hash).context("cannot store the token")?;
    eprintln!("created token {} for device {:?} of {}; it is shown only now:", stored.id, device.name, user.name);
    println!("{token}");
    Ok(Outcome::Success)
}

fn list(store: &dyn Store, user: &str, json: bool) -> anyhow::Result<Outcome> {
    let user = require_user(store, user)?;
    let tokens = store.list_tokens(user.id)?;
    if json {
        let rows: Vec<_> = tokens
            .iter()
            .map(|t| {
                serde_json::json!({
                    "id": t.id,
                    "device": t.device.name,
                    "label": t.label,
                    "created": t.created.to_string(),
                    "last_used": t.last_used.map(|l| l.to_string()),
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for t in &tokens {
            let last = t.last_used.map_or_else(|| "never used".to_owned(), |l| format!("last used {l}"));
            println!("{:>5}  {:<20} {:<24} {}", t.id, t.device.name, t.label, last);
        }
    }
    Ok(Outcome::Success)
}

fn revoke(store: &dyn Store, user: &str, id: i64) -> anyhow::Result<Outcome> {
    let user = require_user(store, user)?;
    if !store.revoke_token(user.id, id)? {
        bail!("{} has no token {id} (see `polo token list --user {}`)", user.name, user.name);
    }
    eprintln!(
        "revoked token {id}; a running `polo serve` refuses it within {} s (at once when revoked through its API)",
        polo_server::auth::TOKEN_CACHE_TTL.as_secs()
    );
    Ok(Outcome::Success)
}
