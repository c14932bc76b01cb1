//! Friends nearby: when one of a user's devices comes within a distance of
//! a friend's newest position (`friend.nearby`), and when it is farther
//! than a larger one again (`friend.away`).
//!
//! Two distances, not one, for the same reason zones have an exit buffer:
//! two phones a few metres either side of a single threshold would fire
//! and clear with every fix. Between the enter and the leave distance
//! nothing changes (hysteresis). Accuracy counts the way it does for zones:
//! "nearby" only when the two positions are within the enter distance
//! even if each is as far off as its accuracy says, "away" only when they
//! are farther apart than the leave distance whichever way they are off.
//!
//! A friend is another user who lets this user see their location (a
//! location grant); their newest position is that of their device with the
//! newest fix. The server keeps one [`NearbyState`] per (device, friend).

use polo_domain::Timestamp;
use serde::{Deserialize, Serialize};

/// The default enter distance, metres.
pub const DEFAULT_ENTER_M: f64 = 200.0;
/// The default leave distance, metres.
pub const DEFAULT_LEAVE_M: f64 = 400.0;
/// The smallest enter distance: GPS cannot tell less apart.
pub const MIN_ENTER_M: f64 = 20.0;
/// The largest leave distance.
pub const MAX_LEAVE_M: f64 = 100_000.0;

/// A user's two distances.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NearbyRules {
    /// Within this many metres a friend is nearby.
    pub enter_m: f64,
    /// Beyond this many metres a friend who was nearby is away again.
    pub leave_m: f64,
}

impl Default for NearbyRules {
    fn default() -> Self {
        Self { enter_m: DEFAULT_ENTER_M, leave_m: DEFAULT_LEAVE_M }
    }
}

impl NearbyRules {
    /// Checks the distances.
    ///
    /// # Errors
    /// The first bad field, named.
    pub fn validate(&self) -> Result<(), String> {
        if !(MIN_ENTER_M..=MAX_LEAVE_M).contains(&self.enter_m) {
            return Err(format!("enter_m: {} is not within {MIN_ENTER_M}..{MAX_LEAVE_M} metres", self.enter_m));
        }
        if !(self.leave_m > self.enter_m && self.leave_m <= MAX_LEAVE_M) {
            return Err(format!(
                "leave_m: {} must be more than enter_m ({}) and at most {MAX_LEAVE_M} metres",
                self.leave_m, self.enter_m
            ));
        }
        Ok(())
    }
}

/// What changed between a device and a friend.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NearbyTransition {
    /// The friend came within the enter distance.
    Nearby,
    /// The friend went beyond the leave distance.
    Away,
}

/// One (device, friend) pair's state: stored, so it survives restarts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct NearbyState {
    /// Whether the friend is nearby.
    pub near: bool,
    /// The instant of the last transition.
    pub since: Option<Timestamp>,
}

impl NearbyState {
    /// Takes in the distance between the two newest positions at `at`, with
    /// the sum of their accuracy radii, and says what changed.
    pub fn observe(
        &mut self,
        rules: &NearbyRules,
        distance_m: f64,
        accuracy_m: f64,
        at: Timestamp,
    ) -> Option<NearbyTransition> {
        let slack = accuracy_m.max(0.0);
        let transition = if !self.near && distance_m + slack <= rules.enter_m {
            NearbyTransition::Nearby
        } else if self.near && distance_m - slack > rules.leave_m {
            NearbyTransition::Away
        } else {
            return None;
        };
        self.near = transition == NearbyTransition::Nearby;
        self.since = Some(at);
        Some(transition)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn near_within_enter_away_beyond_leave() {
        let rules = NearbyRules::default();
        let mut s = NearbyState::default();
        assert_eq!(s.observe(&rules, 500.0, 10.0, Timestamp(1)), None);
        assert_eq!(s.observe(&rules, 195.0, 10.0, Timestamp(2)), None, "the accuracy says it may be 205 m");
        assert_eq!(s.observe(&rules, 150.0, 10.0, Timestamp(3)), Some(NearbyTransition::Nearby));
        assert_eq!(s.since, Some(Timestamp(3)));
        assert_eq!(s.observe(&rules, 100.0, 10.0, Timestamp(4)), None, "nearby once");
        assert_eq!(s.observe(&rules, 405.0, 10.0, Timestamp(5)), None, "within the accuracy of 400 m");
        assert_eq!(s.observe(&rules, 450.0, 10.0, Timestamp(6)), Some(NearbyTransition::Away));
        assert!(!s.near);
    }

    #[test]
    fn distances_are_checked() {
        assert!(NearbyRules::default().validate().is_ok());
        let r = NearbyRules { enter_m: 10.0, leave_m: 100.0 };
        assert!(r.validate().unwrap_err().starts_with("enter_m"));
        let r = NearbyRules { enter_m: 300.0, leave_m: 300.0 };
        assert!(r.validate().unwrap_err().starts_with("leave_m"));
        let r = NearbyRules { enter_m: f64::NAN, leave_m: 300.0 };
        assert!(r.validate().is_err());
    }

    proptest! {
        /// Once nearby, positions jittering anywhere up to the leave distance
        /// never make the pair flap, and an approach fires exactly once.
        #[test]
        fn jitter_at_the_boundary_does_not_flap(
            enter in 50.0f64..1_000.0,
            band in 1.2f64..3.0,
            jitter in proptest::collection::vec((0.0f64..1.0, 0.0f64..30.0), 1..200),
        ) {
            let rules = NearbyRules { enter_m: enter, leave_m: enter * band };
            let mut s = NearbyState::default();
            prop_assert_eq!(s.observe(&rules, enter / 2.0, 0.0, Timestamp(0)), Some(NearbyTransition::Nearby));
            for (i, (where_, accuracy)) in jitter.iter().enumerate() {
                // Anywhere from half the enter distance to the leave distance.
                let distance = enter / 2.0 + where_ * (rules.leave_m - enter / 2.0);
                prop_assert_eq!(s.observe(&rules, distance, *accuracy, Timestamp(i as i64 + 1)), None);
            }
            // And the same jitter around the enter distance, starting away: at most one transition.
            let mut s = NearbyState::default();
            let mut fired = 0;
            for (i, (where_, accuracy)) in jitter.iter().enumerate() {
                let distance = enter * (0.9 + where_ * 0.2);
                fired += usize::from(s.observe(&rules, distance, *accuracy, Timestamp(i as i64)).is_some());
            }
            prop_assert!(fired <= 1, "{} transitions", fired);
        }
    }
}
