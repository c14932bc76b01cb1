//! The two thresholds of an encounter, checked once so the engine can rely on
//! them.
//!
//! The engine's grid is sized from the thresholds: cells about `D` metres
//! wide, time buckets `T` long, packed into `u64` keys. A distance below a
//! metre would need more key bits than a `u64` has beside the time, and is in
//! any case far below what a phone's position can tell apart; a distance above
//! 100 km or a gap above a day is not an encounter any more but a region or a
//! season. [`Params::new`] refuses those, so every [`Params`] that the engine
//! is given through it produces a grid that fits.

/// The smallest distance threshold, in metres.
pub const MIN_DISTANCE_M: f64 = 1.0;
/// The largest distance threshold, in metres.
pub const MAX_DISTANCE_M: f64 = 100_000.0;
/// The largest time threshold, in milliseconds (one day).
pub const MAX_GAP_MS: i64 = 86_400_000;

/// Why thresholds were refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ParamsError {
    /// The distance is not a number between [`MIN_DISTANCE_M`] and [`MAX_DISTANCE_M`].
    #[error("the encounter distance must be between {MIN_DISTANCE_M} and {MAX_DISTANCE_M} metres, not {0}")]
    Distance(f64),
    /// The time threshold is negative or longer than [`MAX_GAP_MS`].
    #[error("the encounter time window must be between 0 and {MAX_GAP_MS} ms, not {0}")]
    Gap(i64),
}

/// What counts as being together: two points of different users at most
/// `max_distance_m` metres apart (haversine) and at most `max_gap_ms`
/// milliseconds apart in time, both bounds inclusive.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Params {
    /// D, in metres, inclusive.
    pub max_distance_m: f64,
    /// T, in milliseconds, inclusive. It also merges a user pair's point pairs
    /// into one encounter: pairs at most T apart belong to the same one.
    pub max_gap_ms: i64,
    /// Worker threads for the joins; 0 uses every core the system offers.
    pub threads: usize,
}

impl Default for Params {
    /// 25 m and 5 minutes, the thresholds of the PostGIS baseline, on every core.
    fn default() -> Self {
        Self { max_distance_m: 25.0, max_gap_ms: 300_000, threads: 0 }
    }
}

impl Params {
    /// Thresholds checked against the limits above, using every core.
    ///
    /// # Errors
    /// [`ParamsError`] for a distance that is not finite or outside
    /// 1 m..=100 km, and for a time window outside 0..=1 day.
    pub fn new(max_distance_m: f64, max_gap_ms: i64) -> Result<Self, ParamsError> {
        let params = Self { max_distance_m, max_gap_ms, threads: 0 };
        params.validate()?;
        Ok(params)
    }

    /// The same thresholds on `threads` worker threads (0: every core).
    #[must_use]
    pub fn with_threads(self, threads: usize) -> Self {
        Self { threads, ..self }
    }

    /// Checks the thresholds (fields are public, so they can be changed after [`Params::new`]).
    ///
    /// # Errors
    /// As [`Params::new`].
    pub fn validate(&self) -> Result<(), ParamsError> {
        // `contains` is false for NaN, so this refuses it too.
        if !(MIN_DISTANCE_M..=MAX_DISTANCE_M).contains(&self.max_distance_m) {
            return Err(ParamsError::Distance(self.max_distance_m));
        }
        if !(0..=MAX_GAP_MS).contains(&self.max_gap_ms) {
            return Err(ParamsError::Gap(self.max_gap_ms));
        }
        Ok(())
    }

    /// The validated thresholds, or a panic that names the bad one: the join
    /// functions return plain vectors, and a grid over invalid thresholds
    /// would be meaningless.
    pub(crate) fn checked(&self) -> &Self {
        if let Err(e) = self.validate() {
            panic!("invalid encounter parameters: {e}");
        }
        self
    }

    /// The number of worker threads to use.
    pub(crate) fn worker_threads(&self) -> usize {
        if self.threads > 0 {
            self.threads
        } else {
            std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_is_not_an_encounter() {
        assert_eq!(Params::new(25.0, 300_000), Ok(Params::default()));
        assert!(Params::new(1.0, 0).is_ok());
        assert!(matches!(Params::new(f64::NAN, 1), Err(ParamsError::Distance(_))));
        assert!(matches!(Params::new(f64::INFINITY, 1), Err(ParamsError::Distance(_))));
        assert_eq!(Params::new(-3.0, 1), Err(ParamsError::Distance(-3.0)));
        assert_eq!(Params::new(0.5, 1), Err(ParamsError::Distance(0.5)));
        assert_eq!(Params::new(200_000.0, 1), Err(ParamsError::Distance(200_000.0)));
        assert_eq!(Params::new(25.0, -1), Err(ParamsError::Gap(-1)));
        assert_eq!(Params::new(25.0, MAX_GAP_MS + 1), Err(ParamsError::Gap(MAX_GAP_MS + 1)));
    }

    #[test]
    fn threads_zero_means_every_core() {
        let params = Params::new(25.0, 300_000).unwrap();
        assert!(params.worker_threads() >= 1);
        assert_eq!(params.with_threads(3).worker_threads(), 3);
    }

    #[test]
    #[should_panic(expected = "invalid encounter parameters")]
    fn the_joins_refuse_changed_fields() {
        let mut params = Params::new(25.0, 300_000).unwrap();
        params.max_distance_m = -1.0;
        params.checked();
    }
}
