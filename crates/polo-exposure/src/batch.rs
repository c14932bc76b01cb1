//! The batch: computes a queued window's contacts, and [`step`], one run of
//! the whole workflow as the server's worker takes it.
//!
//! A window's computation reads the points of the active cases whose
//! infectious period overlaps the window, and when any of them has points
//! there, every user's points in the window (one `scan_points` per user);
//! then for each of those cases it runs `polo_encounters::exposures` with the
//! case's points in the infectious period as the index and everyone else's
//! points streamed past them (the semi-join: only the case's points are
//! indexed). One run per case keeps each case's contacts exact when two
//! cases meet. A contact who met the case several times in the window has
//! one contact for the window: from the first pair to the last, with the
//! encounters' minutes and pairs added up. The window's stored contacts are then replaced by what was
//! found, writing only the contacts that differ, together with the window's
//! record, in one transaction; the (case, contact) pairs that changed are
//! handed to the rules ([`crate::workflow::evaluate`]).

use std::collections::{BTreeMap, BTreeSet};
use std::ops::ControlFlow;

use polo_domain::{Timestamp, UserId};
use polo_encounters::{Sample, exposures};
use polo_store::{PointQuery, RecordQuery, Store};
use serde::Serialize;

use crate::model::{CONTACT, Contact, WINDOW, WindowState, decode, delete, pad, put};
use crate::settings::Settings;
use crate::signing::Signer;
use crate::windows::{Planned, plan, windows};
use crate::workflow::{cases, evaluate, refresh_statuses};
use crate::{ExposureResult, retention};

/// What one window's computation found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Computed {
    /// Points read.
    pub points: u64,
    /// Contacts found.
    pub contacts: u64,
    /// The (case id, contact) pairs whose contacts changed.
    pub changed: BTreeSet<(String, i64)>,
}

/// `user`'s points in `[from, to)`, appended to `out`.
fn user_samples(store: &dyn Store, user: UserId, from: i64, to: i64, out: &mut Vec<Sample>) -> ExposureResult<()> {
    let query = PointQuery { user, device: None, from: Some(Timestamp(from)), to: Some(Timestamp(to)) };
    store.scan_points(&query, &mut |p| {
        out.push(Sample { user, at: p.fix.time, coord: p.fix.coord });
        ControlFlow::Continue(())
    })?;
    Ok(())
}

/// Computes the window starting at `start` (see the module documentation).
///
/// # Errors
/// Store failures, damaged records.
pub fn compute_window(store: &dyn Store, settings: &Settings, start: i64, now: Timestamp) -> ExposureResult<Computed> {
    let end = start + settings.window_ms();
    let params = settings.params()?;
    let cases: Vec<_> = cases(store)?.into_iter().filter(|c| c.active() && c.overlaps(start, end)).collect();
    let prefix = format!("{}/", pad(start));
    // Each stored contact with its body as stored: a contact is unchanged when it would be written
    // as the same text (decoding a float from JSON and comparing it may differ in the last bit).
    let stored: BTreeMap<String, (Contact, String)> = store
        .records(&RecordQuery::kind(CONTACT).prefix(&prefix))?
        .iter()
        .map(|r| decode::<Contact>(r).map(|c| (r.key.clone(), (c, r.body.clone()))))
        .collect::<Result<_, _>>()?;
    let mut found: BTreeMap<String, Contact> = BTreeMap::new();
    let mut computed = Computed::default();
    // The cases' own points first: a window in which no case has a point reads nobody else's.
    let mut indexes = Vec::with_capacity(cases.len());
    for case in &cases {
        let (from, to) = (case.infectious_from.max(start), case.infectious_to.min(end));
        let mut index = Vec::new();
        user_samples(store, UserId(case.user), from, to, &mut index)?;
        computed.points += index.len() as u64;
        indexes.push(index);
    }
    if indexes.iter().any(|index| !index.is_empty()) {
        let mut all = Vec::new();
        for user in store.list_users()? {
            user_samples(store, user.id, start, end, &mut all)?;
        }
        computed.points += all.len() as u64;
        for (case, index) in cases.iter().zip(&indexes) {
            if index.is_empty() {
                continue;
            }
            let others =
                all.iter().filter(|s| s.user.0 != case.user).map(|s| Sample { user: s.user, at: s.at, coord: s.coord });
            for e in exposures(index, others, &params) {
                let contact = if e.user_a.0 == case.user { e.user_b } else { e.user_a };
                let c = Contact {
                    case: case.id.clone(),
                    case_user: case.user,
                    contact: contact.0,
                    window: start,
                    first: e.first.0,
                    last: e.last.0,
                    minutes: e.minutes,
                    pairs: e.pairs,
                    min_distance_m: e.min_distance_m,
                };
                // Two people may meet more than once in a window (a morning and an evening):
                // the window's contact is all of it, not the last encounter alone.
                found
                    .entry(c.key())
                    .and_modify(|held| {
                        held.first = held.first.min(c.first);
                        held.last = held.last.max(c.last);
                        held.minutes += c.minutes;
                        held.pairs += c.pairs;
                        held.min_distance_m = held.min_distance_m.min(c.min_distance_m);
                    })
                    .or_insert(c);
            }
        }
    }
    computed.contacts = found.len() as u64;
    let mut writes = Vec::new();
    for (key, contact) in &found {
        let same =
            stored.get(key).is_some_and(|(_, body)| serde_json::to_string(contact).is_ok_and(|new| new == *body));
        if !same {
            writes.push(put(CONTACT, key.clone(), Some(contact.contact), start, contact));
            computed.changed.insert((contact.case.clone(), contact.contact));
        }
    }
    for (key, (contact, _)) in &stored {
        if !found.contains_key(key) {
            writes.push(delete(CONTACT, key.clone()));
            computed.changed.insert((contact.case.clone(), contact.contact));
        }
    }
    let window = WindowState {
        start,
        end,
        queued: false,
        queued_at: now.0,
        reason: String::new(),
        computed_at: Some(now.0),
        contacts: computed.contacts,
        computed_with: (params.max_distance_m, params.max_gap_ms),
    };
    writes.push(put(WINDOW, pad(start), None, start, &window));
    store.write_records(&writes)?;
    Ok(computed)
}

/// What one [`step`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Step {
    /// What planning found.
    pub planned: Planned,
    /// Windows computed.
    pub windows: usize,
    /// Points read for them.
    pub points: u64,
    /// (case, contact) pairs whose contacts changed.
    pub changed_pairs: usize,
    /// Users whose status changed: to be notified.
    #[serde(skip)]
    pub notify: Vec<UserId>,
    /// Users whose status row was written (the changed ones, new rows and
    /// re-signed codes): what a cache of the rows must forget.
    #[serde(skip)]
    pub statuses_written: Vec<UserId>,
}

/// One run of the workflow: plan, compute the queued windows (oldest
/// first, at most `max_windows`), apply the rules to what changed, and,
/// with `refresh`, renew statuses and apply retention.
///
/// # Errors
/// The first failure; what was done before it is stored.
pub fn step(
    store: &dyn Store,
    signer: &Signer,
    settings: &Settings,
    now: Timestamp,
    max_windows: usize,
    refresh: bool,
) -> ExposureResult<Step> {
    let mut done = Step { planned: plan(store, settings, now)?, ..Step::default() };
    let queued: Vec<WindowState> = windows(store)?.into_iter().filter(|w| w.queued).take(max_windows).collect();
    let mut changed = BTreeSet::new();
    for window in queued {
        let computed = compute_window(store, settings, window.start, now)?;
        done.windows += 1;
        done.points += computed.points;
        changed.extend(computed.changed);
    }
    done.changed_pairs = changed.len();
    done.notify = evaluate(store, signer, settings, &changed, now)?;
    done.statuses_written.clone_from(&done.notify);
    if refresh {
        let refreshed = refresh_statuses(store, signer, settings, now)?;
        done.notify.extend(refreshed.changed);
        done.statuses_written.extend(refreshed.written);
        retention::purge(store, settings, now)?;
    }
    Ok(done)
}
