//! Which devices are receiving late points, so that compaction leaves them
//! alone for a while.
//!
//! Compaction (see [`crate::points`]) folds a device's sealed live tails
//! into full chunks. A point that arrives after newer ones are stored lands
//! between two stored points, and the chunk holding its time is rewritten
//! whole: cheap for a live tail, a thousand fixes for a compacted chunk.
//! Phones post in order, but one device's points can reach the server from
//! two senders at once (two clients replaying one history, a load generator
//! with two threads), and those drift apart by thousands of points: each of
//! the late sender's points then rewrote a full chunk, which doubled the
//! writer's cost per point. So the writer notes when a device last received
//! a point between stored ones, and compaction waits until it has had none
//! for [`QUIET_FOR`].
//!
//! This is memory of the writer in this process only: another process (an
//! import, a restore) starts without it, which only means it compacts as
//! usual.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use polo_domain::{DeviceId, UserId};

/// How long after a device's last late point compaction leaves it alone.
pub(crate) const QUIET_FOR: Duration = Duration::from_secs(60);

/// Devices tracked before the stale ones are dropped.
const PRUNE_ABOVE: usize = 1024;

/// When each device last received a late point.
#[derive(Debug, Default)]
pub(crate) struct LatePoints {
    last: HashMap<(UserId, DeviceId), Instant>,
}

impl LatePoints {
    /// Notes that `device` just received a point between stored ones.
    pub(crate) fn record(&mut self, user: UserId, device: DeviceId, now: Instant) {
        if self.last.len() >= PRUNE_ABOVE {
            self.last.retain(|_, at| now.saturating_duration_since(*at) < QUIET_FOR);
        }
        self.last.insert((user, device), now);
    }

    /// Whether `device` received a late point within [`QUIET_FOR`] of `now`.
    pub(crate) fn recent(&self, user: UserId, device: DeviceId, now: Instant) -> bool {
        self.last.get(&(user, device)).is_some_and(|at| now.saturating_duration_since(*at) < QUIET_FOR)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_device_is_late_for_a_while_after_its_last_late_point() {
        let mut late = LatePoints::default();
        let (alice, phone, watch) = (UserId(1), DeviceId(1), DeviceId(2));
        let start = Instant::now();
        assert!(!late.recent(alice, phone, start));
        late.record(alice, phone, start);
        assert!(late.recent(alice, phone, start + QUIET_FOR / 2));
        assert!(!late.recent(alice, watch, start), "another device is not affected");
        assert!(!late.recent(alice, phone, start + QUIET_FOR));
    }

    #[test]
    fn stale_devices_are_dropped_once_many_are_tracked() {
        let mut late = LatePoints::default();
        let start = Instant::now();
        for d in 0..PRUNE_ABOVE as i64 {
            late.record(UserId(1), DeviceId(d), start);
        }
        let later = start + QUIET_FOR;
        late.record(UserId(2), DeviceId(1), later);
        assert_eq!(late.last.len(), 1, "only the fresh entry is left");
        assert!(late.recent(UserId(2), DeviceId(1), later));
    }
}
