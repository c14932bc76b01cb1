//! The domain layer of polo: the types every other crate speaks, and pure
//! algorithms over them. Nothing in here performs I/O, so everything can be
//! unit-tested and reused by the importers, the stores and the server alike.
//!
//! * [`time`] — UTC millisecond timestamps and the one lenient timestamp parser
//!   that every importer uses, value by value.
//! * [`coord`] — fixed-point (E7) coordinates and the coordinate encodings seen
//!   in the wild (`"48.1°, 11.5°"`, `"geo:48.1,11.5"`, E7 overflow).
//! * [`point`] — a single fix ([`Fix`]) and a stored point ([`Point`]).
//! * [`interval`] — visits and activity segments that a source already carries.
//! * [`ids`] — identifier newtypes.
//! * [`device_name`] — the rule every device name must meet.

pub mod coord;
pub mod device_name;
pub mod ids;
pub mod interval;
pub mod point;
pub mod time;

pub use coord::{Coord, CoordError};
pub use device_name::{DeviceNameError, MAX_DEVICE_NAME_CHARS, validate_device_name};
pub use ids::{DeviceId, Seq, UserId};
pub use interval::{Interval, IntervalKind};
pub use point::{Extras, Fix, Motion, Point, SourceFormat};
pub use time::{ParsedTime, TimeError, Timestamp};
