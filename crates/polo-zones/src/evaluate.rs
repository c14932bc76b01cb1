//! One device's fixes, in time order, against its owner's zones.
//!
//! [`Evaluator::fix`] takes the next fix of a device (after the device's
//! watermark: [`crate::sequence`] sees to the order) and its
//! [`DeviceWatch`], and appends what happened: zone transitions for the
//! zones the index offers and the zones the device is in or entering, and a
//! low-battery event when the level crosses the threshold (re-armed a few
//! percent above it, so a level hovering at the threshold fires once).
//! [`Evaluator::tick`] is the clock: enters whose dwell passed while the
//! phone stayed quiet, dwell alerts, and a device silent for longer than
//! [`WatchRules::silent_after_ms`] (once per silence).
//!
//! A fix whose accuracy is worse than [`WatchRules::max_accuracy_m`] says
//! nothing about zones and is skipped for them (a cell-tower fix of 2 km
//! would otherwise be "clear" of everything and confirm leaves).

use std::collections::BTreeMap;

use polo_domain::{DeviceId, Fix, Timestamp, UserId};
use serde::{Deserialize, Serialize};

use crate::geometry::Relation;
use crate::index::ZoneIndex;
use crate::machine::{Transition, ZoneState};

/// What kind of event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum EventKind {
    /// A device entered a zone.
    ZoneEnter,
    /// A device left a zone.
    ZoneLeave,
    /// A device has been in a zone for the zone's dwell alert time.
    ZoneDwell,
    /// No fix from a device for the silence threshold.
    DeviceSilent,
    /// A device's battery fell to the low threshold.
    BatteryLow,
    /// The OwnTracks app reported entering one of its regions (the phone
    /// decided, not polo: logged as the app said it, never evaluated).
    AppEnter,
    /// The OwnTracks app reported leaving one of its regions.
    AppLeave,
    /// The timeline found a new visit of a device (it stayed long enough
    /// to be a visit; `at` is its first fix).
    VisitStart,
    /// A visit of a device ended (`at` is the first fix outside it).
    VisitEnd,
    /// A device set off from a visit (`at` is the visit's end).
    TripStart,
    /// A device's trip ended at a new visit (`at` is the visit's start).
    TripEnd,
    /// A friend's newest position came within the user's enter distance of
    /// a device ([`crate::nearby`]).
    FriendNearby,
    /// A friend who was nearby is beyond the leave distance again.
    FriendAway,
}

impl EventKind {
    /// Every kind.
    pub const ALL: [Self; 13] = [
        Self::ZoneEnter,
        Self::ZoneLeave,
        Self::ZoneDwell,
        Self::DeviceSilent,
        Self::BatteryLow,
        Self::AppEnter,
        Self::AppLeave,
        Self::VisitStart,
        Self::VisitEnd,
        Self::TripStart,
        Self::TripEnd,
        Self::FriendNearby,
        Self::FriendAway,
    ];

    /// The stable name (`zone.enter`, …), as stored, filtered on and sent.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::ZoneEnter => "zone.enter",
            Self::ZoneLeave => "zone.leave",
            Self::ZoneDwell => "zone.dwell",
            Self::DeviceSilent => "device.silent",
            Self::BatteryLow => "device.battery_low",
            Self::AppEnter => "app.enter",
            Self::AppLeave => "app.leave",
            Self::VisitStart => "visit.start",
            Self::VisitEnd => "visit.end",
            Self::TripStart => "trip.start",
            Self::TripEnd => "trip.end",
            Self::FriendNearby => "friend.nearby",
            Self::FriendAway => "friend.away",
        }
    }

    /// The kind called `name`.
    #[must_use]
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// One event, before it is stored.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    /// What.
    pub kind: EventKind,
    /// When it happened (the fix's time, or the instant a dwell or silence
    /// threshold passed).
    pub at: Timestamp,
    /// Whose device.
    pub user: UserId,
    /// Which device.
    pub device: DeviceId,
    /// Which zone, for zone events.
    pub zone: Option<i64>,
    /// Kind-specific facts (`since`, `entered`, `battery_percent`, …).
    pub detail: serde_json::Value,
}

impl Event {
    /// A key that is the same whenever the same event is derived again (a
    /// change evaluated twice after a crash, a history import run again), so
    /// the store keeps it once.
    #[must_use]
    pub fn dedup_key(&self) -> String {
        format!("{}:{}:{}:{}", self.kind.name(), self.device.0, self.zone.unwrap_or(0), self.at.0)
    }
}

/// Device-level thresholds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WatchRules {
    /// A battery at or below this percent fires `device.battery_low`.
    pub low_battery_percent: u8,
    /// The battery must be back above this before it fires again.
    pub battery_rearm_percent: u8,
    /// No fix for this long fires `device.silent`.
    pub silent_after_ms: i64,
    /// Fixes less accurate than this are not evaluated against zones.
    pub max_accuracy_m: f64,
}

impl Default for WatchRules {
    fn default() -> Self {
        Self {
            low_battery_percent: 15,
            battery_rearm_percent: 20,
            silent_after_ms: 12 * 3_600_000,
            max_accuracy_m: 500.0,
        }
    }
}

/// The device-level part of a device's state (stored beside its zone states).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct DeviceStatus {
    /// Fixes before this have been evaluated or are late.
    pub watermark: Option<Timestamp>,
    /// The newest fix evaluated.
    pub last_fix: Option<Timestamp>,
    /// The last change-log entry whose fixes were taken in (the server's).
    pub seq: u64,
    /// A battery-low event fired and the level has not recovered.
    pub battery_low: bool,
    /// A silent event fired and no fix came since.
    pub silent: bool,
}

/// Everything kept per device: its status and its state per zone.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct DeviceWatch {
    /// Device-level state.
    pub status: DeviceStatus,
    /// State per zone id; zones absent are outside at rest.
    pub zones: BTreeMap<i64, ZoneState>,
}

/// Evaluates fixes against an index.
#[derive(Debug, Clone, Copy)]
pub struct Evaluator<'a> {
    index: &'a ZoneIndex,
    rules: WatchRules,
}

fn zone_event(user: UserId, device: DeviceId, zone: i64, t: Transition) -> Event {
    let (kind, detail) = match t {
        Transition::Enter { since, .. } => (EventKind::ZoneEnter, serde_json::json!({ "since": since.0 })),
        Transition::Leave { since, entered, .. } => {
            (EventKind::ZoneLeave, serde_json::json!({ "since": since.0, "entered": entered.0 }))
        }
        Transition::Dwell { entered, .. } => (EventKind::ZoneDwell, serde_json::json!({ "entered": entered.0 })),
    };
    Event { kind, at: t.at(), user, device, zone: Some(zone), detail }
}

impl<'a> Evaluator<'a> {
    /// An evaluator over `index` with device thresholds `rules`.
    #[must_use]
    pub fn new(index: &'a ZoneIndex, rules: WatchRules) -> Self {
        Self { index, rules }
    }

    /// The next fix of `device` (of `user`), newer than any before; events go
    /// to `out`.
    pub fn fix(&self, user: UserId, device: DeviceId, watch: &mut DeviceWatch, fix: &Fix, out: &mut Vec<Event>) {
        let status = &mut watch.status;
        status.last_fix = Some(status.last_fix.map_or(fix.time, |l| l.max(fix.time)));
        status.silent = false;
        if let Some(level) = fix.battery_percent {
            if level <= self.rules.low_battery_percent && !status.battery_low {
                status.battery_low = true;
                let detail = serde_json::json!({ "battery_percent": level });
                out.push(Event { kind: EventKind::BatteryLow, at: fix.time, user, device, zone: None, detail });
            } else if level > self.rules.battery_rearm_percent {
                status.battery_low = false;
            }
        }
        let accuracy_m = fix.horizontal_accuracy_cm.map_or(0.0, |cm| f64::from(cm) / 100.0);
        if accuracy_m > self.rules.max_accuracy_m || (watch.zones.is_empty() && !self.index.has_user(user)) {
            return;
        }
        let p = [fix.coord.lat_e7 as f64 * 1e-7, fix.coord.lon_e7 as f64 * 1e-7];
        let mut seen: smallvec_free::Seen = smallvec_free::Seen::default();
        for zone in self.index.candidates(user, p[0], p[1]) {
            seen.push(zone.id);
            let relation = zone.spec.shape.relation(p, accuracy_m, zone.spec.rules.exit_buffer_m);
            let state = match watch.zones.get_mut(&zone.id) {
                Some(state) => state,
                // A fresh state outside changes only on an inside fix.
                None if relation == Relation::Inside => watch.zones.entry(zone.id).or_default(),
                None => continue,
            };
            if let Some(t) = state.step(&zone.spec.rules, relation, fix.time) {
                out.push(zone_event(user, device, zone.id, t));
            }
        }
        // Zones the device is in or entering that the fix is far from; and
        // states at rest whose cooldown passed, which are forgotten so the map
        // holds only what differs from a fresh state.
        let mut forget = Vec::new();
        for (&id, state) in &mut watch.zones {
            let Some(zone) = self.index.get(id).filter(|z| self.index.applies_to(z, user)) else {
                forget.push(id); // deleted, or a group's the user left
                continue;
            };
            if state.is_idle() {
                if state.forgettable(&zone.spec.rules, fix.time) {
                    forget.push(id);
                }
                continue;
            }
            if seen.contains(id) {
                continue;
            }
            let relation = zone.spec.shape.relation(p, accuracy_m, zone.spec.rules.exit_buffer_m);
            if let Some(t) = state.step(&zone.spec.rules, relation, fix.time) {
                out.push(zone_event(user, device, id, t));
            }
        }
        for id in forget {
            watch.zones.remove(&id);
        }
    }

    /// The clock reached `now` (a watermark: no fix before it will come).
    pub fn tick(&self, user: UserId, device: DeviceId, watch: &mut DeviceWatch, now: Timestamp, out: &mut Vec<Event>) {
        for (&id, state) in &mut watch.zones {
            let Some(zone) = self.index.get(id).filter(|z| self.index.applies_to(z, user)) else { continue };
            if let Some(t) = state.tick(&zone.spec.rules, now) {
                out.push(zone_event(user, device, id, t));
            }
        }
        let status = &mut watch.status;
        if let Some(last) = status.last_fix
            && !status.silent
            && now.0 - last.0 >= self.rules.silent_after_ms
        {
            status.silent = true;
            let detail = serde_json::json!({ "last_fix": last.0 });
            let at = Timestamp(last.0 + self.rules.silent_after_ms);
            out.push(Event { kind: EventKind::DeviceSilent, at, user, device, zone: None, detail });
        }
    }
}

/// A few zone ids without allocating (a fix meets one to three zones).
mod smallvec_free {
    #[derive(Default)]
    pub(super) struct Seen {
        inline: [i64; 8],
        len: usize,
        more: Vec<i64>,
    }

    impl Seen {
        pub(super) fn push(&mut self, id: i64) {
            if self.len < self.inline.len() {
                self.inline[self.len] = id;
                self.len += 1;
            } else {
                self.more.push(id);
            }
        }

        pub(super) fn contains(&self, id: i64) -> bool {
            self.inline[..self.len].contains(&id) || self.more.contains(&id)
        }
    }
}
