//! Zones, pure: where a device is relative to a user's places, and what
//! that should tell other systems.
//!
//! The server evaluates every stored point against its owner's zones
//! (`polo-server::zones`); everything that decides *what* happens lives here
//! without I/O, so it can be property-tested and benchmarked alone.
//!
//! * [`geometry`] — circles and polygons, and where a fix with its accuracy
//!   circle lies: surely inside, surely clear (past an exit buffer), or in
//!   the band between, where nothing changes.
//! * [`index`] — an R-tree over every zone of the instance, so a fix costs a
//!   lookup, not a loop over 10,000 zones.
//! * [`machine`] — the per-(device, zone) state machine: dwell before enter,
//!   N confirming fixes before leave, a cooldown between transitions.
//! * [`evaluate`] — one device's fixes in time order against the index and
//!   the states: zone events, low battery, and the silent-device check.
//! * [`naming`] — zones as place names: the smallest zone holding a place
//!   names it on the timeline, which is how a group shares places.
//! * [`nearby`] — a device and a friend's newest position: nearby within
//!   one distance, away beyond a larger one, nothing in between.
//! * [`sequence`] — arrivals in any order turned into time order, with a
//!   reorder window; what comes later than that is reported late.
//! * [`regions`] — OwnTracks regions as zones and zones as OwnTracks
//!   regions (`setWaypoints`), with the identity that keeps them one.
//! * [`webhook`] — subscriptions' filters, payload presets (JSON, ntfy,
//!   Gotify, Discord/Slack) and the retry schedule.

pub mod evaluate;
pub mod geometry;
pub mod index;
pub mod machine;
pub mod naming;
pub mod nearby;
pub mod regions;
pub mod sequence;
pub mod webhook;
mod zone;

pub use evaluate::{DeviceWatch, Evaluator, Event, EventKind, WatchRules};
pub use geometry::{Relation, Shape};
pub use index::ZoneIndex;
pub use machine::{Rules, Transition, ZoneState};
pub use zone::{Zone, ZoneError, ZoneSpec};
