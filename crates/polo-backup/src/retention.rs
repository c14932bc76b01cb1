//! Retention: which backups to keep, and garbage collection of the blocks
//! no kept backup needs.
//!
//! The policy is the familiar "keep N daily, M monthly" (restic's
//! `--keep-daily`/`--keep-monthly`): of the N most recent UTC days that have
//! a backup, the last backup of each day is kept; of the M most recent
//! months, the last backup of each month. A backup kept by either rule is
//! kept, and the newest backup is always kept. With neither set nothing is
//! deleted.
//!
//! Because every manifest lists all its blocks, deleting manifests never
//! breaks the others; blocks are then deleted when no remaining manifest
//! names them. A block stored within [`GcOptions::min_block_age`] is left
//! alone even so: it may belong to a backup still uploading, whose manifest
//! is written last. Two backups to one destination should still not run at
//! once (see `docs/backups.md`).

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::time::Duration;

use futures_util::{StreamExt, TryStreamExt};
use object_store::ObjectStoreExt;
use polo_domain::time::civil_from_days;

use crate::blocks::{self, BLOCKS_DIR};
use crate::dest::Destination;
use crate::error::BackupResult;
use crate::manifest::Manifest;

/// How many backups to keep.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// Keep the last backup of each of this many most recent days.
    pub daily: Option<u32>,
    /// Keep the last backup of each of this many most recent months.
    pub monthly: Option<u32>,
}

impl Retention {
    /// Whether the policy deletes nothing.
    #[must_use]
    pub fn keeps_all(&self) -> bool {
        self.daily.is_none() && self.monthly.is_none()
    }

    /// The ids to keep of `backups` (id, creation time in ms), in any order.
    #[must_use]
    pub fn select(&self, backups: &[(String, i64)]) -> BTreeSet<String> {
        if self.keeps_all() {
            return backups.iter().map(|(id, _)| id.clone()).collect();
        }
        let mut newest_first: Vec<&(String, i64)> = backups.iter().collect();
        newest_first.sort_by(|a, b| (b.1, &b.0).cmp(&(a.1, &a.0)));
        let mut keep = BTreeSet::new();
        if let Some((id, _)) = newest_first.first() {
            keep.insert(id.clone());
        }
        let day = |ms: i64| ms.div_euclid(86_400_000);
        let month = |ms: i64| {
            let (y, m, _) = civil_from_days(day(ms));
            (y, m)
        };
        keep_last_per_period(&newest_first, self.daily, day, &mut keep);
        keep_last_per_period(&newest_first, self.monthly, month, &mut keep);
        keep
    }
}

/// Walking newest first, the first backup of each new period is that
/// period's last; keep those of the first `n` periods.
fn keep_last_per_period<K: Ord>(
    newest_first: &[&(String, i64)],
    n: Option<u32>,
    period: impl Fn(i64) -> K,
    keep: &mut BTreeSet<String>,
) {
    let Some(n) = n else { return };
    let mut seen = BTreeSet::new();
    for (id, ms) in newest_first {
        if seen.len() >= n as usize {
            break;
        }
        if seen.insert(period(*ms)) {
            keep.insert(id.clone());
        }
    }
}

/// Garbage-collection settings.
#[derive(Debug, Clone, Copy)]
pub struct GcOptions {
    /// Unreferenced blocks younger than this are kept (see the module docs).
    pub min_block_age: Duration,
}

impl Default for GcOptions {
    fn default() -> Self {
        Self { min_block_age: Duration::from_secs(3600) }
    }
}

/// What retention did.
#[derive(Debug, Clone, Default)]
pub struct RetentionReport {
    /// Backups kept, oldest first.
    pub kept: Vec<String>,
    /// Backups deleted, oldest first.
    pub deleted: Vec<String>,
    /// Blocks deleted.
    pub blocks_deleted: usize,
    /// Their stored bytes.
    pub bytes_freed: u64,
}

/// Deletes the backups `retention` does not keep, then every block no
/// remaining backup names (older than `gc.min_block_age`).
///
/// # Errors
/// Object-store failures; a manifest that cannot be read stops the run
/// before any block is deleted (its blocks might otherwise be lost).
pub async fn apply(dest: &Destination, retention: &Retention, gc: &GcOptions) -> BackupResult<RetentionReport> {
    let manifests = crate::list(dest).await?;
    let backups: Vec<(String, i64)> = manifests.iter().map(|m| (m.id.clone(), m.created_ms)).collect();
    let keep = retention.select(&backups);
    let mut report = RetentionReport::default();
    let mut referenced = HashSet::new();
    for manifest in &manifests {
        if keep.contains(&manifest.id) {
            referenced.extend(manifest.blocks.iter().map(|b| b.sha256.clone()));
            report.kept.push(manifest.id.clone());
        }
    }
    for manifest in &manifests {
        if !keep.contains(&manifest.id) {
            dest.store().delete(&dest.path(&Manifest::name_of(&manifest.id))).await?;
            report.deleted.push(manifest.id.clone());
        }
    }
    let now = std::time::SystemTime::now();
    let listed: Vec<_> = dest.store().list(Some(&dest.path(BLOCKS_DIR))).try_collect().await?;
    let mut doomed = BTreeMap::new();
    for meta in listed {
        let Some(name) = dest.name(&meta.location) else { continue };
        let Some(hash) = blocks::hash_of_name(&name) else { continue };
        let age = now.duration_since(meta.last_modified.into()).unwrap_or_default();
        if !referenced.contains(hash) && age >= gc.min_block_age {
            doomed.insert(meta.location.clone(), meta.size);
        }
    }
    report.bytes_freed = doomed.values().sum();
    let locations = futures_util::stream::iter(doomed.into_keys().map(Ok)).boxed();
    report.blocks_deleted = dest.store().delete_stream(locations).try_collect::<Vec<_>>().await?.len();
    Ok(report)
}

#[cfg(test)]
mod tests {
    use polo_domain::Timestamp;
    use polo_domain::time::days_from_civil;

    use super::*;
    use crate::manifest::backup_id;

    fn at(y: i32, m: u32, d: u32, h: i64) -> (String, i64) {
        let ms = days_from_civil(y, m, d) * 86_400_000 + h * 3_600_000;
        (backup_id(Timestamp(ms)), ms)
    }

    fn ids(backups: &[(String, i64)]) -> Vec<String> {
        backups.iter().map(|(id, _)| id.clone()).collect()
    }

    #[test]
    fn no_policy_keeps_everything() {
        let backups = [at(2025, 1, 1, 1), at(2025, 1, 1, 2)];
        assert_eq!(Retention::default().select(&backups).len(), 2);
    }

    #[test]
    fn daily_keeps_the_last_backup_of_each_recent_day() {
        let backups = [at(2025, 3, 1, 1), at(2025, 3, 1, 23), at(2025, 3, 2, 5), at(2025, 3, 4, 1), at(2025, 3, 4, 2)];
        let keep = Retention { daily: Some(2), monthly: None }.select(&backups);
        // Days with backups, newest first: 3-4, 3-2, 3-1; two days: 3-4 02h and 3-2.
        assert_eq!(keep, [backups[4].0.clone(), backups[2].0.clone()].into_iter().collect());
    }

    #[test]
    fn monthly_and_daily_together_and_the_newest_always_stays() {
        let backups = [
            at(2024, 11, 30, 1),
            at(2024, 12, 15, 1),
            at(2024, 12, 31, 1),
            at(2025, 1, 10, 1),
            at(2025, 1, 20, 1),
            at(2025, 1, 21, 1),
        ];
        let keep = Retention { daily: Some(1), monthly: Some(2) }.select(&backups);
        // Daily: 01-21. Monthly: January's last (01-21) and December's last (12-31).
        let expected: BTreeSet<String> = [&backups[5], &backups[2]].iter().map(|b| b.0.clone()).collect();
        assert_eq!(keep, expected);
        let keep = Retention { daily: Some(0), monthly: Some(0) }.select(&backups);
        assert_eq!(keep.into_iter().collect::<Vec<_>>(), vec![backups[5].0.clone()]);
        // Order of the input does not matter.
        let mut shuffled = backups.to_vec();
        shuffled.reverse();
        assert_eq!(
            Retention { daily: Some(3), monthly: None }.select(&shuffled),
            ids(&backups[3..]).into_iter().collect()
        );
    }
}
