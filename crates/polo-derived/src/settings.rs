//! Per-user timeline settings (stay thresholds, minimum visit, modes,
//! places, home and work), stored as the user's edit so they replicate.
//! A change of settings makes the engine recompute that user's history.

use polo_domain::UserId;
use polo_store::{DerivedBatch, DerivedRange, DerivedScope, Store};
use polo_timeline::TimelineParams;

use crate::kinds::SETTINGS;
use crate::rows::{decode, encode};
use crate::{DerivedError, DerivedResult};

/// The user's settings, or the defaults.
///
/// # Errors
/// Store failures and a damaged row.
pub fn settings(store: &dyn Store, user: UserId) -> DerivedResult<TimelineParams> {
    let rows = store.derived_range(user, &DerivedRange::key(SETTINGS, DerivedScope::User, 0))?;
    rows.first().map_or_else(|| Ok(TimelineParams::default()), decode)
}

/// Validates and stores the user's settings. The engine notices the edit in
/// the change log and recomputes the user's timeline with them.
///
/// # Errors
/// [`DerivedError::Invalid`] naming the bad field; store failures.
pub fn set_settings(store: &dyn Store, user: UserId, params: &TimelineParams) -> DerivedResult<()> {
    params.validate().map_err(|e| DerivedError::Invalid(e.to_string()))?;
    let batch = DerivedBatch { delete: vec![], put: vec![encode(SETTINGS, DerivedScope::User, 0, params)] };
    store.derived_write(user, &batch, true)?;
    Ok(())
}
