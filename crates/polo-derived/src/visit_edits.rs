//! The user's edits of single stays: another place, other times, or "this
//! was not a visit" (deleted from the timeline).
//!
//! Stays are recomputed from the points whenever a window changes, so an
//! edit cannot live in the stay's row. It is a row of its own,
//! [`VISIT_EDIT`] (scope: the device; key: the start of the stay as
//! detected), written as an edit (it enters the change log and replicates)
//! and applied by the views when they read the stays: it holds for every
//! recomputation that finds the stay starting at the same fix, as mode
//! corrections do for legs. Deleting a visit hides it; its points stay (a
//! range delete removes points).

use std::collections::BTreeMap;

use polo_domain::{DeviceId, Timestamp, UserId};
use polo_store::{DerivedBatch, DerivedRange, DerivedScope, Store};
use serde::{Deserialize, Serialize};

use crate::kinds::{STAY, VISIT_EDIT};
use crate::places::PlaceBook;
use crate::rows::{StayRow, decode, encode};
use crate::views::StayView;
use crate::{DerivedError, DerivedResult};

/// How far an edited start or end may move from the detected one: a day.
pub const MAX_SHIFT_MS: i64 = 86_400_000;

/// One stay as the user corrected it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VisitEdit {
    /// Not a visit: left out of the timeline.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub deleted: bool,
    /// The start to show, ms (`None`: as detected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<i64>,
    /// The end to show, ms (`None`: as detected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub end: Option<i64>,
    /// The place it was at (`None`: as detected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub place: Option<i64>,
}

impl VisitEdit {
    /// Whether it changes nothing (storing it clears the edit).
    #[must_use]
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// The edits of `device`'s stays detected with starts in `[from, to)`.
///
/// # Errors
/// Store failures and damaged rows.
pub fn edits(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    from: i64,
    to: i64,
) -> DerivedResult<BTreeMap<i64, VisitEdit>> {
    let range = DerivedRange { kind: VISIT_EDIT, scope: DerivedScope::Device(device), from, to };
    store.derived_range(user, &range)?.iter().map(|row| Ok((row.key, decode(row)?))).collect()
}

/// Applies the edits of `device` to the detected stays of a view: drops the
/// deleted ones, moves times, and puts a stay at the place the user chose.
///
/// # Errors
/// Store failures and damaged rows.
pub fn apply(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    book: &PlaceBook,
    stays: &mut Vec<StayView>,
) -> DerivedResult<()> {
    let (Some(first), Some(last)) = (stays.iter().map(|s| s.row.start).min(), stays.iter().map(|s| s.row.start).max())
    else {
        return Ok(());
    };
    let found = edits(store, user, device, first, last.saturating_add(1))?;
    if found.is_empty() {
        return Ok(());
    }
    stays.retain_mut(|stay| {
        let Some(edit) = found.get(&stay.row.start) else { return true };
        if edit.deleted {
            return false;
        }
        stay.edited = true;
        if let Some(start) = edit.start {
            stay.row.start = start;
        }
        if let Some(end) = edit.end {
            stay.row.end = end;
            stay.row.last_seen = stay.row.last_seen.min(end);
        }
        if let Some(place) = edit.place {
            let place = book.resolve(place);
            stay.place = Some(place);
            stay.row.visit = true;
            stay.place_name = book.given_name(place).map(str::to_owned);
            stay.locality = book.places.get(&place).map(|p| p.locality.clone());
            stay.address = book.address(place).map(str::to_owned);
        }
        true
    });
    stays.sort_by_key(|s| s.row.start);
    Ok(())
}

/// The key of the stay shown as starting at `shown`: the detected start of
/// an edited stay whose edit moved its start there, else `shown` itself.
fn key_of(store: &dyn Store, user: UserId, device: DeviceId, shown: i64) -> DerivedResult<i64> {
    let around = edits(store, user, device, shown.saturating_sub(MAX_SHIFT_MS), shown.saturating_add(MAX_SHIFT_MS))?;
    Ok(around.into_iter().find(|(_, e)| e.start == Some(shown)).map_or(shown, |(key, _)| key))
}

/// Stores the user's edit of the stay of `device` shown as starting at
/// `shown` (an empty edit clears it). Returns the span of time the edit
/// changes (the stay as detected and as edited, for refreshing the days'
/// statistics), or `None` when there is no such stay. Call it through
/// [`crate::Engine::set_visit_edit`], which refreshes those statistics.
///
/// # Errors
/// [`DerivedError::Invalid`] naming the field when the times are out of
/// order or move more than a day, or the place is unknown; store failures.
pub fn set(
    store: &dyn Store,
    user: UserId,
    device: DeviceId,
    shown: Timestamp,
    edit: &VisitEdit,
) -> DerivedResult<Option<(Timestamp, Timestamp)>> {
    let key = key_of(store, user, device, shown.0)?;
    let rows = store.derived_range(user, &DerivedRange::key(STAY, DerivedScope::Device(device), key))?;
    let Some(row) = rows.first() else { return Ok(None) };
    let stay: StayRow = decode(row)?;
    let (start, end) = (edit.start.unwrap_or(stay.start), edit.end.unwrap_or(stay.end));
    if end <= start {
        return Err(DerivedError::Invalid(format!(
            "end: {} is not after the start {}",
            Timestamp(end),
            Timestamp(start)
        )));
    }
    if (start - stay.start).abs() > MAX_SHIFT_MS {
        return Err(DerivedError::Invalid("new_start: a stay's start may move by a day at most".into()));
    }
    if (end - stay.end).abs() > MAX_SHIFT_MS {
        return Err(DerivedError::Invalid("new_end: a stay's end may move by a day at most".into()));
    }
    if let Some(place) = edit.place {
        let book = PlaceBook::load(store, user)?;
        if !book.places.contains_key(&place) && !book.edits.contains_key(&place) {
            return Err(DerivedError::Invalid(format!("place_id: there is no place {place}")));
        }
    }
    let scope = DerivedScope::Device(device);
    let batch = if edit.is_empty() {
        DerivedBatch { delete: vec![DerivedRange::key(VISIT_EDIT, scope, key)], put: vec![] }
    } else {
        DerivedBatch { delete: vec![], put: vec![encode(VISIT_EDIT, scope, key, edit)] }
    };
    let before = edits(store, user, device, key, key + 1)?.remove(&key).unwrap_or_default();
    store.derived_write(user, &batch, true)?;
    let starts = [stay.start, start, before.start.unwrap_or(stay.start)];
    let ends = [stay.end, end, before.end.unwrap_or(stay.end)];
    let first = starts.into_iter().min().unwrap_or(stay.start);
    let last = ends.into_iter().max().unwrap_or(stay.end);
    Ok(Some((Timestamp(first), Timestamp(last))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_edits_are_empty_and_serialise_small() {
        assert!(VisitEdit::default().is_empty());
        let edit = VisitEdit { deleted: true, ..VisitEdit::default() };
        assert_eq!(serde_json::to_string(&edit).unwrap(), r#"{"deleted":true}"#);
        let back: VisitEdit = serde_json::from_str(r#"{"start":5,"place":3}"#).unwrap();
        assert_eq!(back, VisitEdit { deleted: false, start: Some(5), end: None, place: Some(3) });
    }
}
