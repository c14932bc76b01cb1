//! Which of the user's visit and mode edits the stored day statistics
//! include, so that the engine brings in the ones they miss.
//!
//! A visit edit ([`crate::visit_edits`]) or a transport-mode correction is
//! applied by the views as they read, but the per-day statistics are
//! stored ([`crate::days`]). The route that takes the edit refreshes the
//! days it touches at once, on the node that took it. Two ways of arriving
//! leave the days without it:
//!
//! * **Replication.** A peer's edit arrives as its row alone.
//! * **Several nodes.** The node holding the timeline lease may be
//!   recomputing the same days from what it read before the edit was
//!   committed, and write them after the other node's refresh.
//!
//! Both end with an [`ChangeKind::Edit`](polo_store::ChangeKind::Edit) change
//! in the log, which the engine reads after the edit was committed. For each
//! user with such a change, [`catch_up`] compares the user's visit and mode
//! edits with the marks of the edits the engine last applied
//! ([`VISIT_EDIT_APPLIED`], [`MODE_EDIT_APPLIED`]: the edit as applied and
//! the span of time it touched), refreshes the days of every edit that is
//! new, changed or gone, and then marks them. Only the engine writes marks,
//! and only after refreshing, so a refresh that raced with a stale one is
//! always followed by one that reads the committed edit.

use std::collections::BTreeMap;

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{DerivedBatch, DerivedKind, DerivedRange, DerivedRow, DerivedScope, Store};
use serde::{Deserialize, Serialize};

use crate::DerivedResult;
use crate::kinds::{LEG, MODE_EDIT, MODE_EDIT_APPLIED, STAY, VISIT_EDIT, VISIT_EDIT_APPLIED};
use crate::places::PlaceBook;
use crate::rows::{LegRow, ModeEdit, StayRow, decode};
use crate::visit_edits::VisitEdit;

/// An edit as the engine last applied it to the day statistics.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Mark {
    /// The edit row's value when it was applied.
    edit: Vec<u8>,
    /// The span of time it touched then, ms: refreshed again when it changes or goes.
    from: i64,
    to: i64,
}

/// What [`catch_up`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EditsCaughtUp {
    /// Edits that were new, changed or gone since the last marks.
    pub edits: usize,
    /// Day refreshes (one per device and span).
    pub refreshes: usize,
}

fn rows_by_key(
    store: &dyn Store,
    user: UserId,
    kind: DerivedKind,
    scope: DerivedScope,
) -> DerivedResult<BTreeMap<i64, DerivedRow>> {
    Ok(store.derived_range(user, &DerivedRange::all(kind, scope))?.into_iter().map(|row| (row.key, row)).collect())
}

/// An edit kind and the kind of its marks.
struct Marked {
    edit: DerivedKind,
    mark: DerivedKind,
}

/// The edits of `scope` that differ from their marks: how many, and the
/// spans to refresh (each edit's span now, from `span_now`, and the span of
/// its previous mark). The new marks go into `batch`.
fn differences(
    store: &dyn Store,
    user: UserId,
    kinds: &Marked,
    scope: DerivedScope,
    mut span_now: impl FnMut(&DerivedRow) -> DerivedResult<Option<(i64, i64)>>,
    batch: &mut DerivedBatch,
) -> DerivedResult<(usize, Vec<(i64, i64)>)> {
    let mark_kind = kinds.mark;
    let edits = rows_by_key(store, user, kinds.edit, scope)?;
    let marks = rows_by_key(store, user, mark_kind, scope)?;
    let mut changed = 0;
    let mut spans = Vec::new();
    for (key, edit) in &edits {
        let old: Option<Mark> = marks.get(key).map(decode).transpose()?;
        if old.as_ref().is_some_and(|m| m.edit == edit.value) {
            continue;
        }
        changed += 1;
        spans.extend(old.map(|m| (m.from, m.to)));
        let (from, to) = span_now(edit)?.unwrap_or((*key, *key));
        spans.push((from, to));
        batch.put.push(crate::rows::encode(mark_kind, scope, *key, &Mark { edit: edit.value.clone(), from, to }));
    }
    for (key, mark) in &marks {
        if !edits.contains_key(key) {
            changed += 1;
            let old: Mark = decode(mark)?;
            spans.push((old.from, old.to));
            batch.delete.push(DerivedRange::key(mark_kind, scope, *key));
        }
    }
    Ok((changed, spans))
}

/// The span a visit edit touches: the stay as detected and as edited.
fn visit_span(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    row: &DerivedRow,
) -> DerivedResult<Option<(i64, i64)>> {
    let edit: VisitEdit = decode(row)?;
    let stays = store.derived_range(user, &DerivedRange::key(STAY, DerivedScope::Device(device), row.key))?;
    let Some(stay) = stays.first().map(decode::<StayRow>).transpose()? else { return Ok(None) };
    let from = stay.start.min(edit.start.unwrap_or(stay.start));
    let to = stay.end.max(edit.end.unwrap_or(stay.end));
    Ok(Some((from, to)))
}

/// Refreshes the day statistics that the user's changed visit and mode
/// edits touch, then marks them applied; see the module documentation.
///
/// # Errors
/// Store failures and damaged rows.
pub fn catch_up(store: &dyn Store, user: UserId) -> DerivedResult<EditsCaughtUp> {
    let devices: Vec<DeviceId> = store.list_devices(user)?.into_iter().map(|d| d.id).collect();
    let mut report = EditsCaughtUp::default();
    let mut batch = DerivedBatch::default();
    let mut refresh: Vec<(DeviceId, i64, i64)> = Vec::new();
    for &device in &devices {
        let visits = Marked { edit: VISIT_EDIT, mark: VISIT_EDIT_APPLIED };
        let span_now = |row: &DerivedRow| visit_span(store, user, device, row);
        let (changed, spans) = differences(store, user, &visits, DerivedScope::Device(device), span_now, &mut batch)?;
        report.edits += changed;
        refresh.extend(spans.into_iter().map(|(from, to)| (device, from, to)));
    }
    // A mode correction is the user's (keyed by the leg's start), for whichever device has that leg.
    let modes = Marked { edit: MODE_EDIT, mark: MODE_EDIT_APPLIED };
    let span_now = |row: &DerivedRow| {
        let edit: ModeEdit = decode(row)?;
        Ok(Some((row.key, edit.end)))
    };
    let (changed, spans) = differences(store, user, &modes, DerivedScope::User, span_now, &mut batch)?;
    report.edits += changed;
    for (from, to) in spans {
        for &device in &devices {
            let legs = store.derived_range(user, &DerivedRange::key(LEG, DerivedScope::Device(device), from))?;
            if let Some(leg) = legs.first().map(decode::<LegRow>).transpose()? {
                refresh.push((device, from, to.max(leg.end)));
            }
        }
    }
    if report.edits == 0 {
        return Ok(report);
    }
    let book = PlaceBook::load(store, user)?;
    refresh.sort_unstable();
    refresh.dedup();
    for (device, from, to) in refresh {
        crate::days::refresh(store, user, device, Timestamp(from), Timestamp(to), &book)?;
        report.refreshes += 1;
    }
    store.derived_write(user, &batch, false)?;
    Ok(report)
}
