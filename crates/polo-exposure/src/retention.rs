//! Retention: encounter and exposure data older than the configured period
//! is deleted.
//!
//! What goes, by the time each record carries (see [`crate::model`]):
//! contacts and windows by their window's start, proposals by their last
//! contact, cases by the end of their infectious period, and the workflow's
//! audit entries (`exposure.…`) by when they were made. Statuses are not history: an `exposed` status
//! ends when its validity passes ([`crate::workflow::refresh_statuses`]),
//! and the signing key stays. The planner never queues a window older than
//! the period again ([`crate::windows::plan`]).

use polo_domain::Timestamp;
use polo_store::{RecordWrite, Store};

use crate::ExposureResult;
use crate::model::{CASE, CONTACT, PROPOSAL, WINDOW};
use crate::settings::Settings;

/// Deletes what is older than the retention period at `now`.
///
/// # Errors
/// Store failures.
pub fn purge(store: &dyn Store, settings: &Settings, now: Timestamp) -> ExposureResult<()> {
    let before = Timestamp(now.0 - settings.retention_ms());
    let mut writes: Vec<RecordWrite> = [CONTACT, WINDOW, PROPOSAL, CASE]
        .into_iter()
        .map(|kind| RecordWrite::DeleteBefore { kind: kind.to_owned(), before })
        .collect();
    // Only the workflow's own entries: the security log keeps its own period.
    writes.push(RecordWrite::AuditActionBefore { prefix: "exposure.".to_owned(), before });
    store.write_records(&writes)?;
    Ok(())
}
