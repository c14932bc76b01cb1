//! Derived data for polo: the timeline that `polo-timeline` computes, kept
//! in the store and maintained incrementally from the change log, so that a
//! day view, a stats page or a ten-year map overview is a lookup.
//!
//! * [`kinds`] — which derived rows exist and how they are keyed.
//! * [`map`] — map levels of detail (simplified tracks per day and level),
//!   heatmap and fog-of-war aggregates, and the queries over them.

pub mod error;
pub mod kinds;
pub mod map;

pub use error::{DerivedError, DerivedResult};
