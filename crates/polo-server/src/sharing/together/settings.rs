//! The thresholds of "who was I with" as instance settings: how close (D)
//! and how near in time (T) two friends' points must be to count as
//! together.
//!
//! Why a setting and not a constant: what "together" means depends on the
//! people and the phones. A family on a farm may want 100 m, a city with
//! tall buildings and poor GPS more slack in time. An administrator changes
//! them under `PUT /api/v1/admin/settings` (`together_max_distance_m`,
//! `together_max_gap_s`; `null` returns one to its default) and the next
//! request uses them: nothing is stored per encounter, so there is nothing
//! to recompute. They are kept in the store's instance settings as
//! `together.max_distance_m` and `together.max_gap_s`, like the site
//! settings, and checked on the way in; a stored value this polo cannot read
//! (written by a newer one) counts as its default.
//!
//! The bounds are the exposure batch's (1–1000 m, 1–3600 s): tighter than
//! the engine's, because beyond them a pair of points is a neighbourhood or
//! an afternoon, not a meeting.

use polo_encounters::Params;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::site::SettingError;

/// D's key in the store.
pub const DISTANCE_KEY: &str = "together.max_distance_m";
/// T's key in the store.
pub const GAP_KEY: &str = "together.max_gap_s";
/// D's bounds, metres.
pub const DISTANCE_BOUNDS: (f64, f64) = (1.0, 1_000.0);
/// T's bounds, seconds.
pub const GAP_BOUNDS: (i64, i64) = (1, 3_600);

/// The thresholds, as `/api/v1/admin/settings` shows them.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct TogetherSettings {
    /// "Who was I with": D, the farthest two friends' points may be apart, metres (1–1000).
    #[schema(example = 25.0, minimum = 1.0, maximum = 1000.0)]
    pub together_max_distance_m: f64,
    /// "Who was I with": T, the longest two friends' points may be apart in time, whole seconds
    /// (1–3600).
    #[schema(example = 300, minimum = 1, maximum = 3600)]
    pub together_max_gap_s: i64,
}

impl Default for TogetherSettings {
    /// 25 m and 5 minutes, the encounter engine's defaults.
    fn default() -> Self {
        let params = Params::default();
        Self { together_max_distance_m: params.max_distance_m, together_max_gap_s: params.max_gap_ms / 1000 }
    }
}

/// Checks D.
///
/// # Errors
/// Outside [`DISTANCE_BOUNDS`], or not a number.
pub fn check_distance(value: f64) -> Result<f64, SettingError> {
    let (min, max) = DISTANCE_BOUNDS;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(SettingError {
            setting: "together_max_distance_m",
            reason: format!("must be a number of metres from {min} to {max}, not {value}"),
        })
    }
}

/// Checks T.
///
/// # Errors
/// Outside [`GAP_BOUNDS`].
pub fn check_gap(value: i64) -> Result<i64, SettingError> {
    let (min, max) = GAP_BOUNDS;
    if (min..=max).contains(&value) {
        Ok(value)
    } else {
        Err(SettingError {
            setting: "together_max_gap_s",
            reason: format!("must be a whole number of seconds from {min} to {max}, not {value}"),
        })
    }
}

impl TogetherSettings {
    /// The settings with the store's instance settings applied.
    #[must_use]
    pub fn from_instance(stored: &[(String, String)]) -> Self {
        let mut settings = Self::default();
        for (key, value) in stored {
            match key.as_str() {
                DISTANCE_KEY => {
                    if let Some(d) = value.parse().ok().and_then(|d| check_distance(d).ok()) {
                        settings.together_max_distance_m = d;
                    }
                }
                GAP_KEY => {
                    if let Some(t) = value.parse().ok().and_then(|t| check_gap(t).ok()) {
                        settings.together_max_gap_s = t;
                    }
                }
                _ => {}
            }
        }
        settings
    }

    /// Which of the two the store overrides, by their API names.
    #[must_use]
    pub fn overridden(stored: &[(String, String)]) -> Vec<String> {
        let names = [(DISTANCE_KEY, "together_max_distance_m"), (GAP_KEY, "together_max_gap_s")];
        names
            .iter()
            .filter(|(key, _)| stored.iter().any(|(k, _)| k == key))
            .map(|(_, name)| (*name).to_owned())
            .collect()
    }

    /// The engine's thresholds, on one thread: a request of one user never
    /// takes every core from ingest and the other users (two people's year
    /// is a few hundred thousand points, well under a second on one core).
    #[must_use]
    pub fn params(&self) -> Params {
        // Checked on the way in, and inside the engine's own bounds.
        Params::new(self.together_max_distance_m, self.together_max_gap_s * 1000).unwrap_or_default().with_threads(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect()
    }

    #[test]
    fn defaults_are_the_engine_s_and_stored_values_win() {
        let default = TogetherSettings::from_instance(&[]);
        assert_eq!((default.together_max_distance_m, default.together_max_gap_s), (25.0, 300));
        assert_eq!(default.params().max_gap_ms, 300_000);
        assert_eq!(default.params().threads, 1);
        let set = TogetherSettings::from_instance(&stored(&[(DISTANCE_KEY, "100"), (GAP_KEY, "900")]));
        assert_eq!((set.together_max_distance_m, set.together_max_gap_s), (100.0, 900));
        assert_eq!((set.params().max_distance_m, set.params().max_gap_ms), (100.0, 900_000));
        assert_eq!(
            TogetherSettings::overridden(&stored(&[(GAP_KEY, "900"), ("instance_name", "x")])),
            ["together_max_gap_s"]
        );
    }

    #[test]
    fn values_out_of_bounds_are_refused_naming_the_setting() {
        assert_eq!(check_distance(1.0), Ok(1.0));
        assert_eq!(check_distance(1000.0), Ok(1000.0));
        for bad in [0.5, 1000.5, f64::NAN, f64::INFINITY] {
            let e = check_distance(bad).unwrap_err().to_string();
            assert!(e.starts_with("together_max_distance_m: must be a number of metres from 1 to 1000"), "{e}");
        }
        assert_eq!(check_gap(3600), Ok(3600));
        for bad in [0, -5, 3601] {
            let e = check_gap(bad).unwrap_err().to_string();
            assert!(e.starts_with("together_max_gap_s: must be a whole number of seconds from 1 to 3600"), "{e}");
        }
        // What this polo cannot read counts as the default.
        let odd = TogetherSettings::from_instance(&stored(&[(DISTANCE_KEY, "far"), (GAP_KEY, "99999")]));
        assert_eq!(odd, TogetherSettings::default());
    }
}
