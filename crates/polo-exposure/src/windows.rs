//! Windows and the watermark: which windows the batch computes, and when
//! again.
//!
//! Time is cut into windows of the configured length, aligned to the UTC
//! epoch. A window is **complete** once its end is older than the
//! completion delay (the watermark: by then a phone that was briefly
//! offline has sent its points). [`plan`] queues every complete window that
//! overlaps an active case's infectious period and was never computed.
//!
//! **Late points.** A point that arrives for a closed window (a phone that
//! was offline for days, an import) is in the store's change log like any
//! write. [`plan`] follows the log from its cursor (a derived cursor named
//! [`CURSOR`], as the timeline engine keeps its own) and queues again every
//! computed window a change touched; deletes count too. A computation
//! replaces the window's contacts, so a window queued twice is harmless.
//! A window computed with other parameters (D, T) is queued again, and a
//! change of the window length starts the windows over.
//!
//! The queue is the set of window records marked `queued`; its depth and
//! the age of its oldest entry are what the server exports to Prometheus.

use std::collections::BTreeMap;

use polo_domain::Timestamp;
use polo_store::{ChangeKind, RecordQuery, RecordWrite, Store};
use serde::{Deserialize, Serialize};

use crate::ExposureResult;
use crate::model::{CONTACT, WINDOW, WindowState, decode, pad, put};
use crate::settings::Settings;
use crate::workflow::cases;

/// The name of the batch's change-log cursor.
pub const CURSOR: &str = "exposure";

/// How many change-log entries one read takes.
const CHANGES_PER_READ: usize = 10_000;

/// The start of the window of length `len` that holds `t`.
#[must_use]
pub fn window_start(t: i64, len: i64) -> i64 {
    t.div_euclid(len) * len
}

/// What [`plan`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Planned {
    /// Change-log entries read.
    pub changes: usize,
    /// Windows queued for the first time.
    pub enqueued: usize,
    /// Computed windows queued again (late data, new parameters).
    pub requeued: usize,
}

/// The queue's depth and its oldest entry.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Windows waiting.
    pub depth: u64,
    /// Since when the oldest has waited (ms).
    pub oldest_queued_at: Option<i64>,
}

/// Every window record, by start.
///
/// # Errors
/// Store failures, damaged records.
pub fn windows(store: &dyn Store) -> ExposureResult<Vec<WindowState>> {
    store.records(&RecordQuery::kind(WINDOW))?.iter().map(decode).collect()
}

/// The queue's depth and age.
///
/// # Errors
/// Store failures, damaged records.
pub fn queue_stats(store: &dyn Store) -> ExposureResult<QueueStats> {
    let queued: Vec<WindowState> = windows(store)?.into_iter().filter(|w| w.queued).collect();
    Ok(QueueStats { depth: queued.len() as u64, oldest_queued_at: queued.iter().map(|w| w.queued_at).min() })
}

fn queue(window: &mut WindowState, reason: &str, now: Timestamp) {
    window.queued = true;
    window.queued_at = now.0;
    reason.clone_into(&mut window.reason);
}

/// Queues the windows that need computing: see the module documentation.
///
/// # Errors
/// Store failures, damaged records.
pub fn plan(store: &dyn Store, settings: &Settings, now: Timestamp) -> ExposureResult<Planned> {
    let len = settings.window_ms();
    let params = settings.params()?;
    let computed_with = (params.max_distance_m, params.max_gap_ms);
    let mut planned = Planned::default();
    let mut writes = Vec::new();
    let mut known: BTreeMap<i64, WindowState> = windows(store)?.into_iter().map(|w| (w.start, w)).collect();
    if known.values().any(|w| w.end - w.start != len) {
        // The window length changed: every window starts over.
        writes.push(RecordWrite::DeletePrefix { kind: WINDOW.to_owned(), prefix: String::new() });
        writes.push(RecordWrite::DeletePrefix { kind: CONTACT.to_owned(), prefix: String::new() });
        known.clear();
    }
    let mut touched: BTreeMap<i64, WindowState> = BTreeMap::new();

    // Late data: changes after the cursor that touch computed windows.
    let mut cursor = store.derived_cursor(CURSOR)?;
    if cursor.0 == 0 && known.is_empty() {
        // Nothing computed yet: no change can be late for anything.
        cursor = store.last_seq()?;
    }
    loop {
        let changes = store.changes_since(cursor, CHANGES_PER_READ)?;
        planned.changes += changes.len();
        for change in &changes {
            let span = match change.kind {
                ChangeKind::PointsInserted | ChangeKind::PointsDeleted => (change.first, change.last),
                ChangeKind::AccountDeleted => (None, None),
                _ => continue,
            };
            let from = span.0.map_or(i64::MIN, |t| t.0);
            let last = span.1.map_or(i64::MAX, |t| t.0);
            for window in known.values_mut() {
                if !window.queued && window.start <= last && from < window.end {
                    queue(window, "late data", now);
                    touched.insert(window.start, window.clone());
                    planned.requeued += 1;
                }
            }
        }
        match changes.last() {
            Some(last) => cursor = last.seq,
            None => break,
        }
        if changes.len() < CHANGES_PER_READ {
            break;
        }
    }

    // Windows computed with other parameters.
    for window in known.values_mut() {
        if !window.queued && window.computed_with != computed_with {
            queue(window, "parameters changed", now);
            touched.insert(window.start, window.clone());
            planned.requeued += 1;
        }
    }

    // Complete windows of active cases, within the retention period.
    let oldest = window_start(now.0 - settings.retention_ms(), len);
    for case in cases(store)?.into_iter().filter(crate::model::Case::active) {
        let mut start = window_start(case.infectious_from, len).max(oldest);
        while start < case.infectious_to && start + len + settings.delay_ms() <= now.0 {
            if !known.contains_key(&start) && !touched.contains_key(&start) {
                let window = WindowState {
                    start,
                    end: start + len,
                    queued: true,
                    queued_at: now.0,
                    reason: "complete".to_owned(),
                    computed_at: None,
                    contacts: 0,
                    computed_with,
                };
                touched.insert(start, window);
                planned.enqueued += 1;
            }
            start += len;
        }
    }
    for window in touched.values() {
        writes.push(put(WINDOW, pad(window.start), None, window.start, window));
    }
    if !writes.is_empty() {
        store.write_records(&writes)?;
    }
    // After the queue is stored: a crash in between reads the changes again.
    store.set_derived_cursor(CURSOR, cursor)?;
    Ok(planned)
}
