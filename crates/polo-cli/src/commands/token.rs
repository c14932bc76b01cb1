//! `polo token create | list | revoke`: device tokens from the command line,
//! for setting up a phone before the web app is reachable.
//!
//! `create` prints only the token on stdout (so `TOKEN=$(polo token create …)`
//! works) and everything else on stderr; the token is shown this once, as
//! the store keeps only its hash.

use anyhow::{Context, bail};
use polo_store::{Store, TokenGrant, TokenScopes};

use crate::Outcome;
use crate::cli::TokenCommand;
use crate::commands::require_user;
use crate::config::Config;

pub fn run(config: &Config, command: &TokenCommand) -> anyhow::Result<Outcome> {
    let store = config.open_store()?;
    match command {
        TokenCommand::Create { user, device, label, scope } => create(&*store, user, device, label, scope),
        TokenCommand::List { user, json } => list(&*store, user, *json),
        TokenCommand::Revoke { user, id } => revoke(&*store, user, *id),
    }
}

fn create(store: &dyn Store, user: &str, device: &str, label: &str, scope: &[String]) -> anyhow::Result<Outcome> {
    let device = polo_domain::validate_device_name(device)
        .map_err(|e| anyhow::anyhow!("--device: the device name {e} (got {device:?})"))?;
    let scopes = TokenScopes::parse(&scope.join(",")).map_err(|e| anyhow::anyhow!("--scope: {e}"))?;
    let user = require_user(store, user)?;
    let device = store.ensure_device(user.id, device).context("cannot create the device")?;
    let (token, hash) = polo_server::auth::new_token();
    let grant = TokenGrant { scopes, created_by: None };
    let stored =
        store.create_token(user.id, device.id, label.trim(), &hash, grant).context("cannot store the token")?;
    let scopes = if scopes.is_empty() { "no scopes: the device only".to_owned() } else { format!("scopes {scopes}") };
    eprintln!(
        "created token {} for device {:?} of {} ({scopes}); it is shown only now:",
        stored.id, device.name, user.name
    );
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
                    "scopes": t.scopes.names(),
                    "created_by": t.created_by,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        for t in &tokens {
            let last = t.last_used.map_or_else(|| "never used".to_owned(), |l| format!("last used {l}"));
            let scopes = if t.scopes.is_empty() { "device only".to_owned() } else { t.scopes.to_string() };
            println!("{:>5}  {:<20} {:<24} {:<28} {}", t.id, t.device.name, t.label, scopes, last);
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
        "revoked token {id} with the tokens, shares and location grants it made; a running `polo serve` refuses it within {} s (at once when revoked through its API)",
        polo_server::auth::TOKEN_CACHE_TTL.as_secs()
    );
    Ok(Outcome::Success)
}
