//! `polo epoch show | renew`: the replication epoch of a store.
//!
//! `polo restore` renews the epoch of an embedded store it restores, so the
//! copy never passes for the instance it was copied from while that one
//! still runs (replication peers would mix up their histories). A
//! PostgreSQL database is restored with PostgreSQL's own tools (`pg_dump`
//! and `pg_restore`, a base backup), which know nothing of epochs: `polo
//! epoch renew` does that part, once, before the copy's first node starts.
//! It works on either backend ([`Store::renew_epoch`]).

use anyhow::Context;
use polo_store::Store;
use serde_json::json;

use crate::Outcome;
use crate::cli::EpochCommand;
use crate::config::Config;

pub fn run(config: &Config, command: &EpochCommand) -> anyhow::Result<Outcome> {
    let store = config.open_store()?;
    let where_ = config.database.describe();
    match command {
        EpochCommand::Show { json } => show(&*store, *json),
        EpochCommand::Renew { json } => renew(&*store, &where_, *json),
    }
}

fn show(store: &dyn Store, json: bool) -> anyhow::Result<Outcome> {
    let epoch = store.epoch().context("cannot read the epoch")?;
    let instance = store.instance_id().context("cannot read the instance id")?;
    let last_seq = store.last_seq().context("cannot read the change log")?;
    let history = store.epochs().context("cannot read the epoch history")?;
    if json {
        let spans: Vec<_> =
            history.iter().map(|s| json!({"epoch": s.epoch, "start": s.start.0, "instance": s.instance})).collect();
        println!("{}", json!({"epoch": epoch, "instance_id": instance, "last_seq": last_seq.0, "history": spans}));
    } else {
        println!("epoch {epoch}, instance {instance}, last change {}", last_seq.0);
        for span in &history {
            println!("  epoch {} from change {} (instance {})", span.epoch, span.start.0 + 1, span.instance);
        }
    }
    Ok(Outcome::Success)
}

fn renew(store: &dyn Store, where_: &str, json: bool) -> anyhow::Result<Outcome> {
    let old_epoch = store.epoch().context("cannot read the epoch")?;
    let old_instance = store.instance_id().context("cannot read the instance id")?;
    let epoch = store.renew_epoch().with_context(|| format!("cannot renew the epoch of {where_}"))?;
    let instance = store.instance_id().context("cannot read the new instance id")?;
    let last_seq = store.last_seq().context("cannot read the change log")?;
    if json {
        println!(
            "{}",
            json!({
                "epoch": epoch,
                "previous_epoch": old_epoch,
                "instance_id": instance,
                "previous_instance_id": old_instance,
                "forked_at": last_seq.0,
            })
        );
    } else {
        println!(
            "renewed the epoch of {where_}: epoch {epoch} (was {old_epoch}), instance {instance} (was \
             {old_instance}), forked after change {}",
            last_seq.0
        );
    }
    Ok(Outcome::Success)
}
