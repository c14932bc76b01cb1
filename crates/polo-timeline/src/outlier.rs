//! Teleports and hopelessly inaccurate fixes: which fixes the timeline
//! leaves out.
//!
//! A real location history holds fixes that are simply wrong: a phone that
//! reports a cell tower's or a stale Wi-Fi database's position puts the
//! user thousands of kilometres away for one fix and then back. Counted as
//! travel, one such fix becomes a 6 000 km "flight" at 300 000 km/h, a day
//! map that zooms out to the ocean and a band of fog of war cleared across
//! it. [`classify`] finds them; the caller *flags* them (they stay stored,
//! the user can see them and overrule the verdict) and keeps them out of
//! stays, legs, distances, statistics and maps.
//!
//! The rule, on one device's time-ordered fixes:
//!
//! 1. A fix whose accuracy radius is larger than
//!    [`OutlierParams::max_accuracy_m`] is [`Verdict::Inaccurate`] and plays
//!    no further part.
//! 2. The others are cut into *runs* wherever a step is implausible: longer
//!    than [`OutlierParams::jump_slack_m`] plus both fixes' accuracy radii
//!    plus what [`OutlierParams::max_speed_kmh`] covers in the time between
//!    them. A flight, a train or a car never breaks a run; a teleport does,
//!    on the way there and on the way back.
//! 3. A run of more than [`OutlierParams::max_spike_fixes`] fixes is
//!    *trusted*: the track stayed there, so it is real (a phone does not
//!    invent the same wrong place fix after fix). When no run is that long
//!    (a short stream), the one strictly longest run is trusted; with a tie
//!    nothing is decided and nothing is flagged.
//! 4. Each short run between trusted ones is walked to from the trusted run
//!    before (forwards) and from the trusted run after (backwards). A short
//!    run that one of the walks reaches at a plausible speed is kept, and
//!    the walk continues from it; one that neither reaches is a
//!    [`Verdict::Teleport`]. This is the classic A–B–A spike generalised to
//!    a run of several bad fixes, and at the first or last fix of a stream
//!    only the walk from the side that exists applies.
//!
//! A jump to another place that *stays* there (the fixes after it form a
//! trusted run) is never flagged, however fast it looks: the fixes cannot
//! tell which side is wrong, and points are never dropped on a guess.
//! Distances are great-circle distances ([`crate::geo::haversine_m`]), so a
//! track across the antimeridian is no jump. Fixes of the same instant are
//! compared like any other pair: at the same place they agree, far apart
//! one of them is a spike.
//!
//! Memory is that of the slice; the caller bounds it by classifying a few
//! hours' window at a time with some context either side
//! (`polo_derived::outliers` reads each day with three hours around it).

use polo_domain::{Coord, Timestamp};
use serde::{Deserialize, Serialize};

use crate::TimelineError;
use crate::geo::{Prepared, haversine_m};

/// The thresholds of [`classify`] (part of a user's timeline settings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OutlierParams {
    /// The fastest plausible ground speed. A jet's ground speed stays below
    /// about 1 100 km/h even with a tail wind. Default 1 100.
    pub max_speed_kmh: f64,
    /// Distance any step may add to what the speed allows, for the noise
    /// of GPS, Wi-Fi and cell positions over short time steps. Metres,
    /// default 2 000.
    pub jump_slack_m: f64,
    /// A fix claiming an accuracy radius larger than this is left out.
    /// Metres, default 5 000; 0 disables the test.
    pub max_accuracy_m: f64,
    /// The longest run of wrong fixes the detector flags; a longer run at a
    /// place is taken as real. Default 5.
    pub max_spike_fixes: u32,
}

impl Default for OutlierParams {
    fn default() -> Self {
        Self { max_speed_kmh: 1_100.0, jump_slack_m: 2_000.0, max_accuracy_m: 5_000.0, max_spike_fixes: 5 }
    }
}

impl OutlierParams {
    /// Checks that every threshold is a usable number.
    ///
    /// # Errors
    /// [`TimelineError::InvalidParameter`] naming the field.
    pub fn validate(&self) -> Result<(), TimelineError> {
        let invalid = |name, value: f64, why| TimelineError::InvalidParameter { name, value: value.to_string(), why };
        if !(self.max_speed_kmh.is_finite() && self.max_speed_kmh > 0.0) {
            return Err(invalid("max_speed_kmh", self.max_speed_kmh, "must be a positive speed in km/h"));
        }
        if !(self.jump_slack_m.is_finite() && self.jump_slack_m >= 0.0) {
            return Err(invalid("jump_slack_m", self.jump_slack_m, "must be a distance of 0 metres or more"));
        }
        if !(self.max_accuracy_m.is_finite() && self.max_accuracy_m >= 0.0) {
            return Err(invalid("max_accuracy_m", self.max_accuracy_m, "must be 0 (no limit) or a number of metres"));
        }
        Ok(())
    }

    fn max_speed_m_per_ms(&self) -> f64 {
        self.max_speed_kmh / 3_600.0
    }
}

/// One fix as [`classify`] sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    /// When.
    pub time: Timestamp,
    /// Where.
    pub coord: Coord,
    /// The horizontal accuracy radius in metres, when the source gave one.
    pub accuracy_m: Option<f64>,
}

impl Sample {
    /// A fix without an accuracy.
    #[must_use]
    pub fn new(time: Timestamp, coord: Coord) -> Self {
        Self { time, coord, accuracy_m: None }
    }
}

impl From<&polo_domain::Fix> for Sample {
    fn from(fix: &polo_domain::Fix) -> Self {
        Self {
            time: fix.time,
            coord: fix.coord,
            accuracy_m: fix.horizontal_accuracy_cm.map(|cm| f64::from(cm) / 100.0),
        }
    }
}

/// What [`classify`] says about one fix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A fix the timeline uses.
    Kept,
    /// Reaching it and leaving it both need an impossible speed.
    Teleport,
    /// Its accuracy radius is beyond [`OutlierParams::max_accuracy_m`].
    Inaccurate,
}

impl Verdict {
    /// True for the fixes the timeline leaves out.
    #[must_use]
    pub fn is_flagged(self) -> bool {
        self != Self::Kept
    }
}

/// A fix prepared for distance tests.
struct Probe {
    time: i64,
    at: Prepared,
    accuracy_m: f64,
}

/// Whether going from `a` to `b` needs more than the plausible speed.
fn implausible(a: &Probe, b: &Probe, params: &OutlierParams) -> bool {
    // Times are milliseconds; the difference of two stored times fits an f64 exactly enough.
    #[allow(clippy::cast_precision_loss)]
    let elapsed_ms = (b.time - a.time).unsigned_abs() as f64;
    let allowed = params.jump_slack_m + a.accuracy_m + b.accuracy_m + params.max_speed_m_per_ms() * elapsed_ms;
    haversine_m(&a.at, &b.at) > allowed
}

/// Classifies one device's fixes, sorted by time (see the module documentation).
///
/// # Errors
/// [`TimelineError::Unsorted`] for unsorted fixes and
/// [`TimelineError::InvalidParameter`] for invalid `params`.
pub fn classify(samples: &[Sample], params: &OutlierParams) -> Result<Vec<Verdict>, TimelineError> {
    params.validate()?;
    if let Some(index) = samples.windows(2).position(|w| w[1].time < w[0].time) {
        let (previous, time) = (samples[index].time, samples[index + 1].time);
        return Err(TimelineError::Unsorted { index: index + 1, time, previous });
    }
    let mut verdicts = vec![Verdict::Kept; samples.len()];
    // The fixes that take part, by index into `samples`.
    let mut indices = Vec::with_capacity(samples.len());
    let mut probes = Vec::with_capacity(samples.len());
    for (index, sample) in samples.iter().enumerate() {
        let accuracy_m = sample.accuracy_m.unwrap_or(0.0).max(0.0);
        if params.max_accuracy_m > 0.0 && accuracy_m > params.max_accuracy_m {
            verdicts[index] = Verdict::Inaccurate;
            continue;
        }
        indices.push(index);
        probes.push(Probe { time: sample.time.0, at: Prepared::new(sample.coord), accuracy_m });
    }
    // Runs as ranges of `probes`.
    let mut runs: Vec<std::ops::Range<usize>> = Vec::new();
    for at in 0..probes.len() {
        match runs.last_mut() {
            Some(run) if !implausible(&probes[at - 1], &probes[at], params) => run.end = at + 1,
            _ => runs.push(at..at + 1),
        }
    }
    let spike_limit = usize::try_from(params.max_spike_fixes).unwrap_or(usize::MAX);
    let mut trusted: Vec<bool> = runs.iter().map(|run| run.len() > spike_limit).collect();
    if !trusted.contains(&true) {
        let longest = runs.iter().map(ExactSizeIterator::len).max().unwrap_or(0);
        let mut longest_runs = runs.iter().enumerate().filter(|(_, run)| run.len() == longest);
        match (longest_runs.next(), longest_runs.next()) {
            (Some((index, _)), None) => trusted[index] = true,
            _ => return Ok(verdicts), // no runs, or a tie: nothing to go by
        }
    }
    let mut first_short = 0;
    while first_short < runs.len() {
        if trusted[first_short] {
            first_short += 1;
            continue;
        }
        let end = (first_short..runs.len()).find(|&r| trusted[r]).unwrap_or(runs.len());
        let short = first_short..end;
        let mut reached = vec![false; short.len()];
        if let Some(before) = short.start.checked_sub(1) {
            let mut anchor = runs[before].end - 1;
            for (offset, run) in runs[short.clone()].iter().enumerate() {
                if !implausible(&probes[anchor], &probes[run.start], params) {
                    reached[offset] = true;
                    anchor = run.end - 1;
                }
            }
        }
        if end < runs.len() {
            let mut anchor = runs[end].start;
            for (offset, run) in runs[short.clone()].iter().enumerate().rev() {
                if !implausible(&probes[run.end - 1], &probes[anchor], params) {
                    reached[offset] = true;
                    anchor = run.start;
                }
            }
        }
        for (offset, run) in runs[short].iter().enumerate() {
            if !reached[offset] {
                for probe in run.clone() {
                    verdicts[indices[probe]] = Verdict::Teleport;
                }
            }
        }
        first_short = end;
    }
    Ok(verdicts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: i64 = 1_000;
    const MINUTE: i64 = 60 * SECOND;
    const HOUR: i64 = 60 * MINUTE;

    const FRANKFURT: (f64, f64) = (50.0379, 8.5622);
    const NEW_YORK: (f64, f64) = (40.6413, -73.7781);
    /// Six thousand kilometres from Frankfurt, in the Atlantic.
    const ATLANTIC: (f64, f64) = (30.0, -60.0);

    fn fix(ms: i64, (lat, lon): (f64, f64)) -> Sample {
        Sample::new(Timestamp(ms), Coord::from_degrees(lat, lon).unwrap())
    }

    /// `count` fixes every `step` ms from `start`, moving `east_m_per_fix` east each time.
    fn walk(start: i64, step: i64, count: i64, (lat, lon): (f64, f64), east_m_per_fix: f64) -> Vec<Sample> {
        let degrees_per_m = 1.0 / (111_195.0 * lat.to_radians().cos());
        (0..count)
            .map(|i| {
                #[allow(clippy::cast_precision_loss)]
                let lon = lon + east_m_per_fix * i as f64 * degrees_per_m;
                fix(start + i * step, (lat, if lon > 180.0 { lon - 360.0 } else { lon }))
            })
            .collect()
    }

    fn flagged(samples: &[Sample]) -> Vec<usize> {
        let verdicts = classify(samples, &OutlierParams::default()).unwrap();
        verdicts.iter().enumerate().filter(|(_, v)| v.is_flagged()).map(|(i, _)| i).collect()
    }

    #[test]
    fn a_one_fix_spike_six_thousand_km_away_is_a_teleport() {
        let mut track = walk(0, MINUTE, 30, FRANKFURT, 0.0);
        track.insert(15, fix(14 * MINUTE + 30 * SECOND, ATLANTIC));
        assert_eq!(flagged(&track), [15]);
        assert_eq!(classify(&track, &OutlierParams::default()).unwrap()[15], Verdict::Teleport);
    }

    #[test]
    fn a_spike_between_sparse_fixes_hours_apart_is_still_a_teleport() {
        // Takeout's older years: a fix every hour or so, the spike 5 minutes after one of them.
        let mut track = walk(0, HOUR, 12, FRANKFURT, 0.0);
        track.insert(6, fix(5 * HOUR + 5 * MINUTE, ATLANTIC));
        assert_eq!(flagged(&track), [6]);
    }

    #[test]
    fn a_run_of_three_spike_fixes_is_flagged_together() {
        let mut track = walk(0, MINUTE, 30, FRANKFURT, 0.0);
        let spikes = walk(10 * MINUTE + 10 * SECOND, 10 * SECOND, 3, ATLANTIC, 50.0);
        track.splice(11..11, spikes);
        assert_eq!(flagged(&track), [11, 12, 13]);
        // Three fixes at three different wrong places are three runs, all flagged.
        let mut scattered = walk(0, MINUTE, 30, FRANKFURT, 0.0);
        let wrong = [(30.0, -60.0), (-33.9, 18.4), (35.7, 139.7)];
        for (i, place) in wrong.into_iter().enumerate() {
            let i = i64::try_from(i).unwrap();
            scattered.insert(11 + usize::try_from(i).unwrap(), fix(10 * MINUTE + (i + 1) * 10 * SECOND, place));
        }
        assert_eq!(flagged(&scattered), [11, 12, 13]);
    }

    #[test]
    fn spikes_at_the_very_start_and_end_of_a_stream() {
        let mut track = vec![fix(0, ATLANTIC)];
        track.extend(walk(MINUTE, MINUTE, 20, FRANKFURT, 10.0));
        track.push(fix(22 * MINUTE, NEW_YORK));
        assert_eq!(flagged(&track), [0, 21]);
    }

    #[test]
    fn frankfurt_to_new_york_with_a_gap_is_a_flight() {
        // At the gate, nothing for 8 hours, then around JFK: 6 200 km at 775 km/h.
        let mut track = walk(0, MINUTE, 30, FRANKFURT, 5.0);
        track.extend(walk(30 * MINUTE + 8 * HOUR, MINUTE, 30, NEW_YORK, 5.0));
        assert!(flagged(&track).is_empty());
        // The same with a single fix at each end: still nothing to flag.
        assert!(flagged(&[fix(0, FRANKFURT), fix(8 * HOUR, NEW_YORK)]).is_empty());
    }

    #[test]
    fn a_flight_tracked_every_minute_a_short_hop_a_train_and_a_car_are_kept() {
        // 900 km/h at cruise: 15 km a minute for 6 hours.
        assert!(flagged(&walk(0, MINUTE, 360, (45.0, -20.0), 15_000.0)).is_empty());
        // A short hop: Frankfurt to Munich's 300 km in 40 minutes, fixes either end only.
        let mut hop = walk(0, MINUTE, 10, FRANKFURT, 0.0);
        hop.extend(walk(50 * MINUTE, MINUTE, 10, (48.3538, 11.7861), 0.0));
        assert!(flagged(&hop).is_empty());
        // A train at 300 km/h every 5 s and a car at 200 km/h every second.
        assert!(flagged(&walk(0, 5 * SECOND, 500, FRANKFURT, 416.7)).is_empty());
        assert!(flagged(&walk(0, SECOND, 2_000, FRANKFURT, 55.6)).is_empty());
    }

    #[test]
    fn a_jump_that_stays_at_its_destination_is_not_flagged() {
        // An impossible minute from Frankfurt to New York, but the track stays there:
        // either side could be wrong, so neither is flagged.
        let mut track = walk(0, MINUTE, 20, FRANKFURT, 0.0);
        track.extend(walk(20 * MINUTE, MINUTE, 20, NEW_YORK, 0.0));
        assert!(flagged(&track).is_empty());
    }

    #[test]
    fn a_spike_between_two_real_places_is_flagged_and_the_jump_kept() {
        // Frankfurt, one fix in the Atlantic, then a trusted run in New York.
        let mut track = walk(0, MINUTE, 20, FRANKFURT, 0.0);
        track.push(fix(20 * MINUTE, ATLANTIC));
        track.extend(walk(21 * MINUTE, MINUTE, 20, NEW_YORK, 0.0));
        assert_eq!(flagged(&track), [20]);
        // A wrong fix that New York's run can reach is kept.
        let mut near = walk(0, MINUTE, 20, FRANKFURT, 0.0);
        near.push(fix(20 * MINUTE, (40.7, -73.9)));
        near.extend(walk(21 * MINUTE, MINUTE, 20, NEW_YORK, 0.0));
        assert!(flagged(&near).is_empty());
    }

    #[test]
    fn short_streams_decide_by_the_longer_run_or_not_at_all() {
        let two_and_one = [fix(0, FRANKFURT), fix(MINUTE, FRANKFURT), fix(2 * MINUTE, ATLANTIC)];
        assert_eq!(flagged(&two_and_one), [2]);
        assert!(flagged(&[fix(0, FRANKFURT), fix(MINUTE, ATLANTIC)]).is_empty());
        assert!(flagged(&[fix(0, FRANKFURT)]).is_empty());
        assert!(flagged(&[]).is_empty());
    }

    #[test]
    fn duplicates_at_the_same_instant() {
        let mut track = walk(0, MINUTE, 20, FRANKFURT, 0.0);
        // A second source repeats a fix 300 m off at the same instant: no jump.
        track.insert(10, fix(9 * MINUTE, (FRANKFURT.0 + 0.0027, FRANKFURT.1)));
        assert!(flagged(&track).is_empty());
        // ...and one 6 000 km off at the same instant: a spike.
        track.insert(10, fix(9 * MINUTE, ATLANTIC));
        assert_eq!(flagged(&track), [10]);
    }

    #[test]
    fn crossing_the_antimeridian_is_no_jump_but_a_spike_there_is() {
        // Fiji's 178°E eastwards over 180° at 800 km/h, a fix every minute.
        let mut track = walk(0, MINUTE, 60, (-17.0, 178.0), 13_333.0);
        assert!(track.iter().any(|s| s.coord.lon() < 0.0), "the track crosses");
        assert!(flagged(&track).is_empty());
        track.insert(30, fix(29 * MINUTE + 30 * SECOND, (-17.0, 0.0)));
        assert_eq!(flagged(&track), [30]);
    }

    #[test]
    fn gps_noise_and_small_outliers_are_left_to_stay_detection() {
        // The synthetic tracks' outliers: 150–300 m off for one fix.
        let mut track = walk(0, 10 * SECOND, 60, FRANKFURT, 0.0);
        track[30] = fix(300 * SECOND, (FRANKFURT.0 + 0.0027, FRANKFURT.1));
        assert!(flagged(&track).is_empty());
    }

    #[test]
    fn inaccurate_fixes_are_flagged_and_do_not_break_runs() {
        let mut track = walk(0, MINUTE, 20, FRANKFURT, 0.0);
        track[5].accuracy_m = Some(25_000.0);
        track[6] = fix(6 * MINUTE, ATLANTIC);
        track[6].accuracy_m = Some(40.0);
        let verdicts = classify(&track, &OutlierParams::default()).unwrap();
        assert_eq!(verdicts[5], Verdict::Inaccurate);
        assert_eq!(verdicts[6], Verdict::Teleport);
        assert_eq!(verdicts.iter().filter(|v| v.is_flagged()).count(), 2);
        // Fixes every 10 s allow 2 km + 3.1 km: a cell fix 6 km off is a spike,
        // unless its 1 500 m radius reaches back to the track.
        let mut dense = walk(0, 10 * SECOND, 20, FRANKFURT, 0.0);
        dense[10] = fix(100 * SECOND, (FRANKFURT.0 + 0.054, FRANKFURT.1));
        assert_eq!(classify(&dense, &OutlierParams::default()).unwrap()[10], Verdict::Teleport);
        dense[10].accuracy_m = Some(1_500.0);
        assert_eq!(classify(&dense, &OutlierParams::default()).unwrap()[10], Verdict::Kept);
        // 0 disables the accuracy test.
        let no_limit = OutlierParams { max_accuracy_m: 0.0, ..OutlierParams::default() };
        assert_eq!(classify(&track, &no_limit).unwrap()[5], Verdict::Kept);
    }

    #[test]
    fn unsorted_input_and_bad_parameters_are_refused() {
        let err = classify(&[fix(MINUTE, FRANKFURT), fix(0, FRANKFURT)], &OutlierParams::default()).unwrap_err();
        assert!(matches!(err, TimelineError::Unsorted { index: 1, .. }), "{err}");
        let bad = OutlierParams { max_speed_kmh: 0.0, ..OutlierParams::default() };
        assert!(classify(&[], &bad).unwrap_err().to_string().contains("max_speed_kmh"));
    }
}
