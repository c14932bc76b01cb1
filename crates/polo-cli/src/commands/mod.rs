//! One module per subcommand.

pub mod backup;
pub mod delete;
pub mod epoch;
pub mod export;
pub mod import;
pub mod import_paths;
pub mod photos;
pub mod replicate;
pub mod serve;
pub mod token;
pub mod user;

use anyhow::Context;
use polo_store::{Store, User};

/// Looks a user up by name, with an error that says how to create it.
pub fn require_user(store: &dyn Store, name: &str) -> anyhow::Result<User> {
    store
        .user_by_name(name)
        .context("cannot read users")?
        .with_context(|| format!("no user named {name:?}; create it with `polo user add {name}`"))
}
