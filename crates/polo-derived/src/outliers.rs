//! Flagged fixes: the teleports and hopelessly inaccurate fixes
//! ([`polo_timeline::outlier`]) of each device, kept as rows so that every
//! reader of the points leaves out the same ones.
//!
//! The points themselves are never changed or dropped. The engine runs
//! [`refresh`] first for every changed span of a device; it stores one
//! [`OUTLIER`] row per flagged fix, keyed by the fix's time (a device has at
//! most one point per instant). Everything derived from the points (stays
//! and legs in [`crate::window`], the map levels, heatmap and fog in
//! [`crate::map::refresh`]) and the server's readers of raw points ask
//! [`flagged_times`] for their range and skip those fixes, so distances,
//! speeds, statistics and maps all agree.
//!
//! The user has the last word: [`FIX_EDIT`] rows (an edit, so they
//! replicate and survive recomputation) flag a fix or clear its flag, and
//! [`refresh`] applies them over the detector's verdict.
//!
//! A fix's verdict depends on its neighbours, so [`refresh`] classifies
//! each day with [`CONTEXT_MS`] of points either side, rewrites the rows
//! [`CONTEXT_MS`] either side of the change (a new fix can make an earlier
//! one a spike, or clear it), and reports where the rows changed so the
//! engine widens the windows it recomputes by exactly that.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{DerivedBatch, DerivedRange, DerivedRow, DerivedScope, PointQuery, Store};
use polo_timeline::{OutlierParams, Sample, Verdict, classify};
use serde::{Deserialize, Serialize};

use crate::kinds::{FIX_EDIT, OUTLIER};
use crate::rows::{decode, encode};
use crate::{DerivedError, DerivedResult};

/// How much of the track either side of a fix its verdict may depend on.
pub const CONTEXT_MS: i64 = 3 * 3_600_000;

/// The detector classifies a day at a time (plus the context).
const CHUNK_MS: i64 = 86_400_000;

/// Why a fix is flagged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FlagReason {
    /// Reaching it and leaving it both need an impossible speed.
    Teleport,
    /// Its accuracy radius is too large to use.
    Inaccurate,
    /// The user flagged it.
    User,
}

/// A flagged fix as stored ([`OUTLIER`]; scope: device; key: the fix's time, ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlagRow {
    /// Why.
    pub reason: FlagReason,
}

/// The user's verdict on one fix ([`FIX_EDIT`]; scope: device; key: the fix's time, ms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct FixEdit {
    /// `true`: leave the fix out; `false`: use it, whatever the detector says.
    pub flagged: bool,
}

fn bounds(from: Option<Timestamp>, to: Option<Timestamp>) -> (i64, i64) {
    (from.map_or(i64::MIN, |t| t.0), to.map_or(i64::MAX, |t| t.0))
}

/// The flagged fixes of `device` in `[from, to)` (`None`: unbounded), with why.
///
/// # Errors
/// Store failures and damaged rows.
pub fn flags(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> DerivedResult<BTreeMap<i64, FlagReason>> {
    let (from, to) = bounds(from, to);
    let rows =
        store.derived_range(user, &DerivedRange { kind: OUTLIER, scope: DerivedScope::Device(device), from, to })?;
    rows.iter().map(|row| Ok((row.key, decode::<FlagRow>(row)?.reason))).collect()
}

/// The times of the flagged fixes of `device` in `[from, to)`: what every
/// reader of the points skips.
///
/// # Errors
/// Store failures and damaged rows.
pub fn flagged_times(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: Option<Timestamp>,
    to: Option<Timestamp>,
) -> DerivedResult<BTreeSet<i64>> {
    Ok(flags(store, user, device, from, to)?.into_keys().collect())
}

/// The flagged times of a device, read a month at a time as a scan
/// advances: for readers that walk long spans of points in time order.
pub struct FlaggedScan<'a> {
    store: &'a dyn Store,
    user: UserId,
    device: DeviceId,
    /// The end of the span the scan reads (exclusive).
    end: i64,
    /// The times loaded cover `[.., loaded_to)`.
    loaded_to: i64,
    times: BTreeSet<i64>,
}

impl<'a> FlaggedScan<'a> {
    /// How much is loaded at once.
    const STEP_MS: i64 = 31 * 86_400_000;

    /// For a scan of `device` that ends before `end` (`None`: unbounded).
    #[must_use]
    pub fn new(store: &'a dyn Store, user: UserId, device: DeviceId, end: Option<Timestamp>) -> Self {
        Self { store, user, device, end: end.map_or(i64::MAX, |t| t.0), loaded_to: i64::MIN, times: BTreeSet::new() }
    }

    /// Whether the fix at `time` is flagged. Times must not go backwards.
    ///
    /// # Errors
    /// Store failures and damaged rows.
    pub fn contains(&mut self, time: Timestamp) -> DerivedResult<bool> {
        if time.0 >= self.loaded_to {
            let to = time.0.saturating_add(Self::STEP_MS).min(self.end).max(time.0.saturating_add(1));
            self.times = flagged_times(self.store, self.user, self.device, Some(time), Some(Timestamp(to)))?;
            self.loaded_to = to;
        }
        Ok(self.times.contains(&time.0))
    }
}

/// The fixes of `device` in `[from, to)`, as the detector sees them.
fn load(store: &dyn Store, user: UserId, device: DeviceId, from: i64, to: i64) -> DerivedResult<Vec<Sample>> {
    let mut samples = Vec::new();
    let query = PointQuery { user, device: Some(device), from: Some(Timestamp(from)), to: Some(Timestamp(to)) };
    store.scan_points(&query, &mut |point| {
        samples.push(Sample::from(&point.fix));
        ControlFlow::Continue(())
    })?;
    Ok(samples)
}

/// The time of the first fix of `device` at or after `from`.
fn first_at_or_after(store: &dyn Store, user: UserId, device: DeviceId, from: i64) -> DerivedResult<Option<i64>> {
    let mut first = None;
    store.scan_points(&PointQuery { user, device: Some(device), from: Some(Timestamp(from)), to: None }, &mut |p| {
        first = Some(p.fix.time.0);
        ControlFlow::Break(())
    })?;
    Ok(first)
}

/// Whether `device` has a fix at `time`.
fn has_fix(store: &dyn Store, user: UserId, device: DeviceId, time: i64) -> DerivedResult<bool> {
    Ok(first_at_or_after(store, user, device, time)? == Some(time))
}

/// The detector's flagged fixes of `device` in `[from, to)`, a day at a time.
fn detect(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: i64,
    to: i64,
    params: &OutlierParams,
) -> DerivedResult<BTreeMap<i64, FlagReason>> {
    let mut flagged = BTreeMap::new();
    let mut cursor = first_at_or_after(store, user, device, from)?;
    while let Some(start) = cursor.filter(|&start| start < to) {
        let end = start.saturating_add(CHUNK_MS).min(to);
        let samples = load(store, user, device, start.saturating_sub(CONTEXT_MS), end.saturating_add(CONTEXT_MS))?;
        let verdicts = classify(&samples, params)?;
        for (sample, verdict) in samples.iter().zip(verdicts) {
            let reason = match verdict {
                Verdict::Kept => continue,
                Verdict::Teleport => FlagReason::Teleport,
                Verdict::Inaccurate => FlagReason::Inaccurate,
            };
            if (start..end).contains(&sample.time.0) {
                flagged.insert(sample.time.0, reason);
            }
        }
        cursor = first_at_or_after(store, user, device, end)?;
    }
    Ok(flagged)
}

/// The user's verdicts on fixes of `device` in `[from, to)`.
fn edits(store: &dyn Store, user: UserId, device: DeviceId, from: i64, to: i64) -> DerivedResult<Vec<(i64, FixEdit)>> {
    let range = DerivedRange { kind: FIX_EDIT, scope: DerivedScope::Device(device), from, to };
    store.derived_range(user, &range)?.iter().map(|row| Ok((row.key, decode(row)?))).collect()
}

/// Recomputes the flags of `device` after its points changed in
/// `changed` (inclusive; `None`: the whole history), applying the user's
/// verdicts. Returns the span (inclusive) in which the stored flags
/// changed, which the engine must recompute as well.
///
/// # Errors
/// Store failures, damaged rows, invalid parameters.
pub fn refresh(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    changed: Option<(Timestamp, Timestamp)>,
    params: &OutlierParams,
) -> DerivedResult<Option<(Timestamp, Timestamp)>> {
    let (from, to) = match changed {
        Some((first, last)) => (first.0.saturating_sub(CONTEXT_MS), last.0.saturating_add(CONTEXT_MS + 1)),
        None => (i64::MIN, i64::MAX),
    };
    let mut flagged = detect(store, user, device, from, to, params)?;
    for (time, edit) in edits(store, user, device, from, to)? {
        if edit.flagged {
            // Only while the fix exists: a deleted fix has nothing left to flag.
            if has_fix(store, user, device, time)? {
                flagged.entry(time).or_insert(FlagReason::User);
            }
        } else {
            flagged.remove(&time);
        }
    }
    let scope = DerivedScope::Device(device);
    let range = DerivedRange { kind: OUTLIER, scope, from, to };
    let before: BTreeMap<i64, Vec<u8>> =
        store.derived_range(user, &range)?.into_iter().map(|r| (r.key, r.value)).collect();
    let after: BTreeMap<i64, DerivedRow> =
        flagged.iter().map(|(&time, &reason)| (time, encode(OUTLIER, scope, time, &FlagRow { reason }))).collect();
    let differing = before
        .iter()
        .filter(|(key, value)| after.get(key).is_none_or(|row| &row.value != *value))
        .map(|(key, _)| *key)
        .chain(after.values().filter(|row| before.get(&row.key) != Some(&row.value)).map(|row| row.key));
    let span = differing.fold(None, |span: Option<(i64, i64)>, key| match span {
        Some((first, last)) => Some((first.min(key), last.max(key))),
        None => Some((key, key)),
    });
    if span.is_some() {
        store.derived_write(user, &DerivedBatch { delete: vec![range], put: after.into_values().collect() }, false)?;
    }
    Ok(span.map(|(first, last)| (Timestamp(first), Timestamp(last))))
}

/// Stores the user's verdict on the fix of `device` at `time`: `true`
/// leaves it out, `false` keeps it in. The caller recomputes the fix's span
/// ([`crate::Engine::set_fix_flag`] does both).
///
/// # Errors
/// [`DerivedError::Invalid`] when the device has no fix at `time`; store failures.
pub fn set_edit(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    time: Timestamp,
    flagged: bool,
) -> DerivedResult<()> {
    if !has_fix(store, user, device, time.0)? {
        return Err(DerivedError::Invalid(format!("device {} has no fix at {time}", device.0)));
    }
    let row = encode(FIX_EDIT, DerivedScope::Device(device), time.0, &FixEdit { flagged });
    store.derived_write(user, &DerivedBatch { delete: vec![], put: vec![row] }, true)?;
    Ok(())
}

/// The times of `device`'s fixes whose stored flag disagrees with the
/// user's verdict: edits that arrived without a recomputation (replicated
/// from another instance), for the engine to catch up on.
///
/// # Errors
/// Store failures and damaged rows.
pub fn unapplied_edits(store: &dyn Store, user: UserId, device: DeviceId) -> DerivedResult<Vec<Timestamp>> {
    let mut pending = Vec::new();
    for (time, edit) in edits(store, user, device, i64::MIN, i64::MAX)? {
        let stored = store.derived_range(user, &DerivedRange::key(OUTLIER, DerivedScope::Device(device), time))?;
        if stored.is_empty() == edit.flagged && has_fix(store, user, device, time)? {
            pending.push(Timestamp(time));
        }
    }
    Ok(pending)
}
