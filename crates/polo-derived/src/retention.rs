//! The user's retention policy: raw points older than some days are thinned
//! to one every so many seconds ("keep one point a minute after two years").
//!
//! Thinning, not deleting, is what keeps the derived timeline: stays need
//! minutes at a place and legs a point now and then, so a point a minute
//! still yields the same visits, trips and places when the engine recomputes
//! the thinned days (as it does after any change), while the storage of a
//! phone's old years falls to a fraction. The policy is a user edit (it
//! replicates); the thinning itself is done by the server's retention job
//! (`polo_server::retention`) with `Store::delete_selection`, a tombstone
//! that replicates too.

use polo_domain::{Timestamp, UserId};
use polo_store::{DerivedBatch, DerivedRange, DerivedScope, Store};
use serde::{Deserialize, Serialize};

use crate::kinds::RETENTION;
use crate::rows::{decode, encode};
use crate::{DerivedError, DerivedResult};

const DAY_MS: i64 = 86_400_000;
/// The youngest points a policy may thin: a month old. Younger points are
/// what the user is still looking at and correcting.
pub const MIN_THIN_AFTER_DAYS: u32 = 30;
/// The oldest age a policy may name: a century (older than any history).
pub const MAX_THIN_AFTER_DAYS: u32 = 36_500;
/// The widest slot: one point an hour.
pub const MAX_KEEP_ONE_EVERY_S: u32 = 3_600;

/// A user's retention policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Retention {
    /// Thin raw points older than this many days; `None`: keep every point.
    pub thin_after_days: Option<u32>,
    /// Of older points, keep the first of every slot of this many seconds.
    pub keep_one_every_s: u32,
}

impl Default for Retention {
    fn default() -> Self {
        Self { thin_after_days: None, keep_one_every_s: 60 }
    }
}

impl Retention {
    /// Checks the policy, naming the field that is out of range.
    ///
    /// # Errors
    /// [`DerivedError::Invalid`] for a policy outside the limits.
    pub fn validate(&self) -> DerivedResult<()> {
        if let Some(days) = self.thin_after_days
            && !(MIN_THIN_AFTER_DAYS..=MAX_THIN_AFTER_DAYS).contains(&days)
        {
            return Err(DerivedError::Invalid(format!(
                "thin_after_days must be {MIN_THIN_AFTER_DAYS} to {MAX_THIN_AFTER_DAYS} (got {days})"
            )));
        }
        if !(1..=MAX_KEEP_ONE_EVERY_S).contains(&self.keep_one_every_s) {
            return Err(DerivedError::Invalid(format!(
                "keep_one_every_s must be 1 to {MAX_KEEP_ONE_EVERY_S} (got {})",
                self.keep_one_every_s
            )));
        }
        Ok(())
    }

    /// The slot length, ms.
    #[must_use]
    pub fn slot_ms(&self) -> i64 {
        i64::from(self.keep_one_every_s) * 1000
    }

    /// Where thinning stops at `now`: `thin_after_days` before it, rounded
    /// down to the UTC day (so the job thins, and writes a tombstone, at most
    /// once a day) and then to a slot boundary (so no slot is split between
    /// two runs), or `None` when the policy keeps every point.
    #[must_use]
    pub fn cutoff(&self, now: Timestamp) -> Option<Timestamp> {
        let days = i64::from(self.thin_after_days?);
        let slot = self.slot_ms();
        let day = now.0.saturating_sub(days * DAY_MS).div_euclid(DAY_MS) * DAY_MS;
        Some(Timestamp(day.div_euclid(slot) * slot))
    }
}

/// The user's policy (the default, keeping everything, until set).
///
/// # Errors
/// Store failures and a damaged row.
pub fn get(store: &dyn Store, user: UserId) -> DerivedResult<Retention> {
    let rows = store.derived_range(user, &DerivedRange::key(RETENTION, DerivedScope::User, 0))?;
    rows.first().map_or(Ok(Retention::default()), decode)
}

/// Stores the user's policy as an edit (it replicates).
///
/// # Errors
/// [`DerivedError::Invalid`] naming the field; store failures.
pub fn set(store: &dyn Store, user: UserId, policy: &Retention) -> DerivedResult<()> {
    policy.validate()?;
    let batch = DerivedBatch { delete: vec![], put: vec![encode(RETENTION, DerivedScope::User, 0, policy)] };
    store.derived_write(user, &batch, true)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policies_are_checked_and_cut_on_slot_boundaries() {
        assert!(Retention::default().validate().is_ok());
        assert_eq!(Retention::default().cutoff(Timestamp(1_700_000_000_000)), None);
        let two_years = Retention { thin_after_days: Some(730), keep_one_every_s: 60 };
        let cutoff = two_years.cutoff(Timestamp(1_700_000_012_345)).unwrap();
        assert_eq!(cutoff.0 % DAY_MS, 0, "a day boundary (and so a minute's)");
        assert!((0..DAY_MS).contains(&(1_700_000_012_345 - 730 * DAY_MS - cutoff.0)));
        assert_eq!(two_years.cutoff(Timestamp(1_700_000_012_345 + 3_600_000)), Some(cutoff), "an hour later: the same");
        let odd = Retention { thin_after_days: Some(730), keep_one_every_s: 7 }.cutoff(Timestamp(1_700_000_012_345));
        assert_eq!(odd.unwrap().0 % 7_000, 0, "slots never straddle the cutoff");
        let err = Retention { thin_after_days: Some(3), keep_one_every_s: 60 }.validate().unwrap_err();
        assert!(err.to_string().contains("thin_after_days"), "{err}");
        let err = Retention { thin_after_days: Some(1 << 31), keep_one_every_s: 60 }.validate().unwrap_err();
        assert!(err.to_string().contains("thin_after_days must be 30 to 36500"), "{err}");
        let err = Retention { thin_after_days: Some(400), keep_one_every_s: 0 }.validate().unwrap_err();
        assert!(err.to_string().contains("keep_one_every_s"), "{err}");
    }
}
