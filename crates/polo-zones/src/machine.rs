//! The state machine of one device against one zone.
//!
//! Fixes arrive classified ([`Relation`]) and in time order. The machine
//! makes the rules of the issue precise:
//!
//! * **Dwell.** A device whose accuracy circle is inside is *entering*; the
//!   enter fires only once it has been so for [`Rules::dwell_s`], confirmed
//!   by an inside fix at least that long after the first (or by a
//!   [`ZoneState::tick`] of the clock, since a phone resting at home reports
//!   rarely). A clear fix before then ends it: a drive-by fires nothing.
//! * **Exit confirmation.** Inside, [`Rules::exit_confirmations`] clear fixes
//!   in a row fire the leave; an inside fix among them starts the count again.
//! * **Hysteresis.** A [`Relation::Band`] fix neither confirms nor resets
//!   anything, so jitter at the edge never flaps.
//! * **Cooldown.** Two transitions of one (device, zone) are at least
//!   [`Rules::cooldown_s`] apart; a transition that is due earlier waits for
//!   the next confirming fix after the cooldown. Enter and leave therefore
//!   strictly alternate, which is what a receiver counting visits needs.
//! * **Dwell alert.** Optionally, once per visit, a `dwell` event after
//!   [`Rules::dwell_alert_s`] inside.
//!
//! Times are the fixes' own, never the clock at evaluation, so evaluating a
//! history import gives the visits it would have given live.

use polo_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::geometry::Relation;

/// How a zone's events fire. Every field has a default.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Rules {
    /// Seconds inside before the enter fires (0..=86400; default 120).
    pub dwell_s: u32,
    /// Metres beyond the outline a fix's accuracy circle must be to count
    /// as clear (0..=5000; default 50).
    pub exit_buffer_m: f64,
    /// Clear fixes in a row that confirm a leave (1..=20; default 2).
    pub exit_confirmations: u8,
    /// Seconds between two transitions at least (0..=86400; default 60).
    pub cooldown_s: u32,
    /// Seconds inside after which a `dwell` event fires once per visit
    /// (1..=604800), or none.
    pub dwell_alert_s: Option<u32>,
}

impl Default for Rules {
    fn default() -> Self {
        Self { dwell_s: 120, exit_buffer_m: 50.0, exit_confirmations: 2, cooldown_s: 60, dwell_alert_s: None }
    }
}

impl Rules {
    /// Checks the ranges.
    ///
    /// # Errors
    /// The first field out of range, named.
    pub fn validate(&self) -> Result<(), String> {
        if self.dwell_s > 86_400 {
            return Err(format!("rules.dwell_s: {} is more than a day (86400)", self.dwell_s));
        }
        if !(self.exit_buffer_m.is_finite() && (0.0..=5_000.0).contains(&self.exit_buffer_m)) {
            return Err(format!("rules.exit_buffer_m: {} is not within 0..5000 metres", self.exit_buffer_m));
        }
        if !(1..=20).contains(&self.exit_confirmations) {
            return Err(format!("rules.exit_confirmations: {} is not within 1..20", self.exit_confirmations));
        }
        if self.cooldown_s > 86_400 {
            return Err(format!("rules.cooldown_s: {} is more than a day (86400)", self.cooldown_s));
        }
        if let Some(a) = self.dwell_alert_s
            && !(1..=604_800).contains(&a)
        {
            return Err(format!("rules.dwell_alert_s: {a} is not within 1..604800"));
        }
        Ok(())
    }

    fn dwell_ms(&self) -> i64 {
        i64::from(self.dwell_s) * 1000
    }

    fn cooldown_ms(&self) -> i64 {
        i64::from(self.cooldown_s) * 1000
    }
}

/// Where the device is in the cycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Not in the zone (the start).
    #[default]
    Outside,
    /// Inside since `since`, the enter not fired yet.
    Entering,
    /// The enter fired.
    Inside,
    /// Inside, and `confirmations` clear fixes in a row since `since`.
    Leaving,
}

/// What fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transition {
    /// The device arrived; `since` is its first inside fix.
    Enter {
        /// When the enter was confirmed.
        at: Timestamp,
        /// The first inside fix.
        since: Timestamp,
    },
    /// The device left; `since` is its first clear fix.
    Leave {
        /// When the leave was confirmed.
        at: Timestamp,
        /// The first clear fix of the confirming run.
        since: Timestamp,
        /// When the visit's enter fired.
        entered: Timestamp,
    },
    /// The device has been inside for the zone's `dwell_alert_s`.
    Dwell {
        /// When.
        at: Timestamp,
        /// When the visit's enter fired.
        entered: Timestamp,
    },
}

impl Transition {
    /// When it fired.
    #[must_use]
    pub fn at(&self) -> Timestamp {
        match self {
            Self::Enter { at, .. } | Self::Leave { at, .. } | Self::Dwell { at, .. } => *at,
        }
    }
}

/// The state of one (device, zone), stored between fixes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ZoneState {
    /// The phase.
    pub phase: Phase,
    /// Entering: the first inside fix; leaving: the first clear fix.
    pub since: Option<Timestamp>,
    /// Inside or leaving: when the enter fired.
    pub entered: Option<Timestamp>,
    /// Leaving: clear fixes in a row.
    pub confirmations: u8,
    /// The last enter or leave.
    pub last_transition: Option<Timestamp>,
    /// Whether this visit's dwell alert fired.
    pub dwell_alerted: bool,
    /// Whether the last fix was inside (a tick confirms an enter only then).
    pub last_inside: bool,
}

impl ZoneState {
    /// Whether the machine is at rest outside.
    #[must_use]
    pub fn is_idle(&self) -> bool {
        self.phase == Phase::Outside
    }

    /// Whether the state is at rest outside and its cooldown has passed by
    /// `t`: it then behaves as a fresh state, so it need not be kept.
    #[must_use]
    pub fn forgettable(&self, rules: &Rules, t: Timestamp) -> bool {
        self.is_idle() && self.cooled(rules, t)
    }

    fn cooled(&self, rules: &Rules, t: Timestamp) -> bool {
        self.last_transition.is_none_or(|l| t.0 - l.0 >= rules.cooldown_ms())
    }

    /// The next fix, at `t` (not before the previous one).
    pub fn step(&mut self, rules: &Rules, relation: Relation, t: Timestamp) -> Option<Transition> {
        self.last_inside = relation == Relation::Inside;
        match (self.phase, relation) {
            (Phase::Outside, Relation::Inside) => {
                self.phase = Phase::Entering;
                self.since = Some(t);
                self.confirm_enter(rules, t)
            }
            (Phase::Outside, _) | (Phase::Entering | Phase::Leaving, Relation::Band) => None,
            (Phase::Entering, Relation::Inside) => self.confirm_enter(rules, t),
            (Phase::Entering, Relation::Clear) => {
                // A drive-by: out again before the dwell passed.
                self.phase = Phase::Outside;
                self.since = None;
                None
            }
            (Phase::Inside, Relation::Inside | Relation::Band) => self.dwell_alert(rules, t),
            (Phase::Inside, Relation::Clear) => {
                self.phase = Phase::Leaving;
                self.since = Some(t);
                self.confirmations = 1;
                self.confirm_leave(rules, t)
            }
            (Phase::Leaving, Relation::Inside) => {
                self.phase = Phase::Inside;
                self.since = None;
                self.confirmations = 0;
                self.dwell_alert(rules, t)
            }
            (Phase::Leaving, Relation::Clear) => {
                self.confirmations = self.confirmations.saturating_add(1);
                self.confirm_leave(rules, t)
            }
        }
    }

    /// The clock reached `now` with no newer fix: an enter whose dwell (and
    /// cooldown) passed while the last fix was inside fires, at the instant
    /// both had passed; likewise a due dwell alert.
    pub fn tick(&mut self, rules: &Rules, now: Timestamp) -> Option<Transition> {
        match self.phase {
            Phase::Entering if self.last_inside => {
                let since = self.since?;
                let due = since.0 + rules.dwell_ms();
                let due = self.last_transition.map_or(due, |l| due.max(l.0 + rules.cooldown_ms()));
                (due <= now.0).then(|| self.enter(Timestamp(due), since))
            }
            Phase::Inside | Phase::Leaving => {
                let (entered, alert) = (self.entered?, rules.dwell_alert_s?);
                let due = Timestamp(entered.0 + i64::from(alert) * 1000);
                (!self.dwell_alerted && due <= now).then(|| {
                    self.dwell_alerted = true;
                    Transition::Dwell { at: due, entered }
                })
            }
            _ => None,
        }
    }

    fn enter(&mut self, t: Timestamp, since: Timestamp) -> Transition {
        self.phase = Phase::Inside;
        self.since = None;
        self.entered = Some(t);
        self.last_transition = Some(t);
        self.dwell_alerted = false;
        Transition::Enter { at: t, since }
    }

    fn confirm_enter(&mut self, rules: &Rules, t: Timestamp) -> Option<Transition> {
        let since = self.since?;
        (t.0 - since.0 >= rules.dwell_ms() && self.cooled(rules, t)).then(|| self.enter(t, since))
    }

    fn confirm_leave(&mut self, rules: &Rules, t: Timestamp) -> Option<Transition> {
        if self.confirmations < rules.exit_confirmations || !self.cooled(rules, t) {
            return None;
        }
        let (since, entered) = (self.since?, self.entered?);
        *self = Self { last_transition: Some(t), ..Self::default() };
        Some(Transition::Leave { at: t, since, entered })
    }

    fn dwell_alert(&mut self, rules: &Rules, t: Timestamp) -> Option<Transition> {
        let (entered, alert) = (self.entered?, rules.dwell_alert_s?);
        (!self.dwell_alerted && t.0 - entered.0 >= i64::from(alert) * 1000).then(|| {
            self.dwell_alerted = true;
            Transition::Dwell { at: t, entered }
        })
    }
}
