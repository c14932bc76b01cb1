//! `polo delete`: deletes a user's points by range, device, rectangle, or all
//! of them, straight in the store (as `POST /api/v1/points/delete` does).
//!
//! The delete is a tombstone: it replicates, and a later `polo import` of
//! the same file leaves the points out unless `--restore-deleted`. A running
//! `polo serve` on the same data directory recomputes the timeline of the
//! affected days from the change log within seconds; otherwise the next
//! `polo serve` does when it starts.

use anyhow::{Context, bail};
use polo_store::{Area, PointQuery, PointSelection};

use crate::Outcome;
use crate::cli::DeleteArgs;
use crate::commands::export::parse_bound;
use crate::commands::require_user;
use crate::config::Config;

/// `W,S,E,N` in degrees as an [`Area`].
fn parse_bbox(text: &str) -> anyhow::Result<Area> {
    let values: Vec<f64> = text
        .split(',')
        .map(|v| v.trim().parse::<f64>())
        .collect::<Result<_, _>>()
        .with_context(|| format!("--bbox: {text:?} is not four numbers W,S,E,N"))?;
    let [w, s, e, n] = values[..] else { bail!("--bbox: {text:?} is not four numbers W,S,E,N") };
    let lon = |v: f64| (-180.0..=180.0).contains(&v);
    let lat = |v: f64| (-90.0..=90.0).contains(&v);
    if !(lon(w) && lon(e) && lat(s) && lat(n)) || s > n {
        bail!("--bbox: {text:?} is out of range or has its south north of its north");
    }
    // Range-checked above.
    #[allow(clippy::cast_possible_truncation)]
    let e7 = |v: f64| (v * 1e7).round() as i32;
    Ok(Area { west_e7: e7(w), south_e7: e7(s), east_e7: e7(e), north_e7: e7(n) })
}

pub fn run(config: &Config, args: &DeleteArgs) -> anyhow::Result<Outcome> {
    let chose = args.device.is_some() || args.from.is_some() || args.to.is_some() || args.bbox.is_some();
    if args.all && chose {
        bail!("--all deletes everything: give no --device, --from, --to or --bbox with it");
    }
    if !args.all && !chose {
        bail!("say what to delete: --from/--to, --device, --bbox, or --all");
    }
    let from = args.from.as_deref().map(|t| parse_bound(t, false)).transpose().context("--from")?;
    let to = args.to.as_deref().map(|t| parse_bound(t, true)).transpose().context("--to")?;
    if let (Some(from), Some(to)) = (from, to)
        && to <= from
    {
        bail!("--to must be after --from");
    }
    let area = args.bbox.as_deref().map(parse_bbox).transpose()?;
    let store = config.open_store()?;
    let user = require_user(&*store, &args.user)?;
    let device = match &args.device {
        Some(name) => Some(
            store
                .list_devices(user.id)?
                .into_iter()
                .find(|d| d.name == *name)
                .with_context(|| format!("user {:?} has no device {name:?}", args.user))?
                .id,
        ),
        None => None,
    };
    let selection =
        PointSelection { query: PointQuery { user: user.id, device, from, to }, area, keep_one_every_ms: None };
    let outcome = store.delete_selection(&selection).context("cannot delete the points")?;
    if args.json {
        println!("{}", serde_json::json!({ "deleted": outcome.deleted }));
    } else {
        println!(
            "deleted {} points of {}; a re-import leaves them out (polo import --restore-deleted brings them back)",
            outcome.deleted, args.user
        );
    }
    Ok(Outcome::Success)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bboxes_are_checked() {
        let a = parse_bbox("170,-10,-170,10").unwrap();
        assert_eq!((a.west_e7, a.east_e7), (1_700_000_000, -1_700_000_000));
        assert!(parse_bbox("1,2,3").is_err());
        assert!(parse_bbox("0,10,1,5").is_err());
        assert!(parse_bbox("a,b,c,d").is_err());
    }
}
