//! The per-user segmentation settings.
//!
//! Defaults are trackintel's (`generate_staypoints(dist_threshold=100,
//! time_threshold=5.0, gap_threshold=15.0)`, `create_activity_flag(
//! time_threshold=15.0)`), the reference against which polo's stays are
//! tested. Durations are whole seconds rather than trackintel's float
//! minutes, so a stored setting compares exactly.

use serde::{Deserialize, Serialize};

use crate::TimelineError;
use crate::home_work::HomeWorkParams;
use crate::mode::ModeParams;
use crate::outlier::OutlierParams;
use crate::place::PlaceParams;

/// Stay, leg and trip segmentation parameters (one set per user).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StayParams {
    /// How far from the stay's first point a point must be to end the stay
    /// (trackintel `dist_threshold`, compared with `>=`). Metres, default 100.
    pub distance_threshold_m: f64,
    /// The shortest stay: from its first point to the first point outside it
    /// (trackintel `time_threshold`, compared with `>=`). Seconds, default 300.
    pub time_threshold_s: u32,
    /// A pause between two consecutive points longer than this (`>`) is a
    /// recording gap: it restarts stay detection and splits legs and trips
    /// (trackintel `gap_threshold`). Seconds, default 900.
    pub gap_threshold_s: u32,
    /// A stay is a visit (trackintel: an activity) when it lasts longer than
    /// this (`>`); shorter stays are stops within a trip. Seconds, default 900.
    pub visit_min_duration_s: u32,
    /// A tracked leg shorter than this (`<`) is no movement but the jitter
    /// of a stay ending ("Driving 61 m in 3 s"): it is folded away, not
    /// reported, counted or grouped into a trip. Metres, default 100 (the
    /// stay radius); 0 keeps every leg, as trackintel does.
    pub min_leg_m: f64,
    /// Likewise for a tracked leg that lasts less than this (`<`). Seconds,
    /// default 60; 0 keeps every leg.
    pub min_leg_s: u32,
    /// A stay that has lasted the time threshold does not end at a fix
    /// outside its radius when the track is back inside after at most this
    /// many fixes (a cell-tower fix 300 m off, then home again): the
    /// excursion is jitter, not a trip. Default 2; 0 ends the stay at the
    /// first fix outside, as trackintel does.
    pub max_excursion_fixes: u32,
    /// ... and when those fixes span at most this long (from the first
    /// outside to the last outside). Seconds, default 900.
    pub max_excursion_s: u32,
    /// A recording gap longer than the gap threshold but at most this long
    /// does not restart detection when the first fix after it is still
    /// within the stay's radius: a phone dozing at home overnight stayed at
    /// home. Seconds, default 43 200 (12 h); 0 restarts at every gap, as
    /// trackintel does.
    pub bridge_gap_s: u32,
    /// A stay cut off by a recording gap it does not bridge (the phone
    /// dozed, the user left meanwhile) ends at its last fix before the gap,
    /// if it lasted the time threshold by then; so does the stay still open
    /// where the points end. Default true; false drops both, as trackintel
    /// does (`include_last=False`).
    pub keep_stay_before_gap: bool,
}

impl Default for StayParams {
    fn default() -> Self {
        Self {
            distance_threshold_m: 100.0,
            time_threshold_s: 300,
            gap_threshold_s: 900,
            visit_min_duration_s: 900,
            min_leg_m: 100.0,
            min_leg_s: 60,
            max_excursion_fixes: 2,
            max_excursion_s: 900,
            bridge_gap_s: 43_200,
            keep_stay_before_gap: true,
        }
    }
}

impl StayParams {
    /// trackintel 1.4.2's `generate_staypoints` and `generate_triplegs`
    /// exactly: every leg kept, every fix outside the radius and every
    /// recording gap ends a stay. The oracle polo's extensions are tested
    /// against.
    #[must_use]
    pub fn trackintel() -> Self {
        Self {
            min_leg_m: 0.0,
            min_leg_s: 0,
            max_excursion_fixes: 0,
            bridge_gap_s: 0,
            keep_stay_before_gap: false,
            ..Self::default()
        }
    }

    /// [`Self::max_excursion_s`] in milliseconds.
    #[must_use]
    pub fn max_excursion_ms(&self) -> i64 {
        i64::from(self.max_excursion_s) * 1000
    }

    /// The longest recording gap a stay spans ([`Self::bridge_gap_s`]), in
    /// milliseconds; never below the gap threshold.
    #[must_use]
    pub fn bridge_gap_ms(&self) -> i64 {
        (i64::from(self.bridge_gap_s) * 1000).max(self.gap_threshold_ms())
    }

    /// Checks that the distance threshold is a positive finite number.
    ///
    /// # Errors
    /// [`TimelineError::InvalidParameter`] naming the field.
    pub fn validate(&self) -> Result<(), TimelineError> {
        if !(self.distance_threshold_m.is_finite() && self.distance_threshold_m > 0.0) {
            return Err(TimelineError::InvalidParameter {
                name: "distance_threshold_m",
                value: self.distance_threshold_m.to_string(),
                why: "must be a positive number of metres",
            });
        }
        if !(self.min_leg_m.is_finite() && self.min_leg_m >= 0.0) {
            return Err(TimelineError::InvalidParameter {
                name: "min_leg_m",
                value: self.min_leg_m.to_string(),
                why: "must be 0 or a positive number of metres",
            });
        }
        Ok(())
    }

    /// Whether a tracked leg of `distance_m` over `duration_ms` is too
    /// small to be movement ([`Self::min_leg_m`], [`Self::min_leg_s`]).
    #[must_use]
    pub fn folds_leg(&self, distance_m: f64, duration_ms: i64) -> bool {
        distance_m < self.min_leg_m || duration_ms < i64::from(self.min_leg_s) * 1000
    }

    /// [`Self::time_threshold_s`] in milliseconds.
    #[must_use]
    pub fn time_threshold_ms(&self) -> i64 {
        i64::from(self.time_threshold_s) * 1000
    }

    /// [`Self::gap_threshold_s`] in milliseconds.
    #[must_use]
    pub fn gap_threshold_ms(&self) -> i64 {
        i64::from(self.gap_threshold_s) * 1000
    }

    /// [`Self::visit_min_duration_s`] in milliseconds.
    #[must_use]
    pub fn visit_min_duration_ms(&self) -> i64 {
        i64::from(self.visit_min_duration_s) * 1000
    }
}

/// A user's timeline settings, all in one serialisable value.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TimelineParams {
    /// Stay, leg and trip segmentation ([`crate::detect`]).
    pub stays: StayParams,
    /// Transport mode inference.
    pub modes: ModeParams,
    /// Place clustering ([`crate::cluster_places`]).
    pub places: PlaceParams,
    /// Home and work windows ([`crate::detect_home_work`]).
    pub home_work: HomeWorkParams,
    /// Which fixes are teleports or too inaccurate to use ([`crate::classify`]).
    pub outliers: OutlierParams,
}

impl TimelineParams {
    /// Validates every part.
    ///
    /// # Errors
    /// [`TimelineError::InvalidParameter`] naming the field.
    pub fn validate(&self) -> Result<(), TimelineError> {
        self.stays.validate()?;
        self.modes.validate()?;
        self.outliers.validate()?;
        self.places.validate()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_trackintels() {
        let params = StayParams::default();
        assert_eq!(params.distance_threshold_m, 100.0);
        assert_eq!(params.time_threshold_ms(), 5 * 60_000);
        assert_eq!(params.gap_threshold_ms(), 15 * 60_000);
        assert_eq!(params.visit_min_duration_ms(), 15 * 60_000);
    }

    #[test]
    fn serde_round_trip_and_partial_settings() {
        let params = TimelineParams::default();
        let text = serde_json::to_string(&params).unwrap();
        assert_eq!(serde_json::from_str::<TimelineParams>(&text).unwrap(), params);
        // A user who only changed the radius keeps every other default.
        let partial: StayParams = serde_json::from_str(r#"{"distance_threshold_m": 150}"#).unwrap();
        assert_eq!(partial, StayParams { distance_threshold_m: 150.0, ..StayParams::default() });
        assert!(serde_json::from_str::<StayParams>(r#"{"radius": 1}"#).is_err());
    }

    #[test]
    fn tiny_legs_fold_below_either_threshold() {
        let params = StayParams::default();
        assert!(params.folds_leg(61.0, 3_000), "Driving 61 m in 3 s");
        assert!(params.folds_leg(500.0, 20_000), "half a kilometre in 20 s");
        assert!(params.folds_leg(80.0, 300_000), "80 m in 5 minutes, within a stay's radius");
        assert!(!params.folds_leg(150.0, 120_000));
        let trackintel = StayParams { min_leg_m: 0.0, min_leg_s: 0, ..StayParams::default() };
        assert!(!trackintel.folds_leg(0.5, 1));
        let bad = StayParams { min_leg_m: -1.0, ..StayParams::default() }.validate().unwrap_err();
        assert!(bad.to_string().contains("min_leg_m"), "{bad}");
    }

    #[test]
    fn validation_names_the_field() {
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = StayParams { distance_threshold_m: bad, ..StayParams::default() }.validate().unwrap_err();
            assert!(err.to_string().contains("distance_threshold_m"), "{err}");
        }
    }
}
