//! Transport mode inference from a leg's speed profile.
//!
//! A single speed figure misleads: the average of a car trip includes traffic
//! lights, and the maximum of any trip is usually a GPS jump. polo therefore
//! looks at the *time-weighted* distribution of segment speeds (each segment
//! between consecutive points weighs by its duration, so a burst of 1 s
//! fixes does not outvote a minute of steady travel) and classifies by its
//! 85th percentile, the speed the leg was at or below 85 % of the time:
//! cruising speed, robust to both stops and spikes.
//!
//! | mode   | 85th percentile of speed (defaults)            | typical cruise     |
//! |--------|------------------------------------------------|--------------------|
//! | walk   | < 2.8 m/s (10 km/h)                            | 1.2–1.6 m/s        |
//! | cycle  | < 8.5 m/s (31 km/h)                            | 4–7 m/s            |
//! | road   | < 44 m/s (158 km/h)                            | 8–36 m/s           |
//! | rail   | < 90 m/s (324 km/h)                            | 44–89 m/s (HSR)    |
//! | flight | ≥ 90 m/s                                       | 200–260 m/s        |
//!
//! Speed alone cannot tell a regional train or a bus from a car, so below
//! 44 m/s everything motorised is `road` unless the source's own activity
//! labels (Google's `IN_RAIL_VEHICLE`...) say otherwise. Such a label is
//! trusted when most labelled points of the leg agree and it is at most one
//! step away on the speed ladder walk < cycle < road < rail < flight (rail and
//! road count as neighbours): it refines an ambiguous speed, it does not
//! overrule an impossible one.
//!
//! A flight is also recognised without a cruise profile: a leg that reached
//! 5 000 m altitude at more than 30 m/s (no road goes there at that speed),
//! or that jumps at least 100 km at 70 m/s or more between two fixes.
//! [`crate::leg`] applies the same jump rule across recording gaps, where
//! phones in flight mode leave a hole between two airports.

use serde::{Deserialize, Serialize};

use crate::TimelineError;
use polo_domain::Motion;

/// How a leg was travelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TransportMode {
    /// On foot (walking, hiking, running).
    Walk,
    /// Bicycle (or a similar speed).
    Cycle,
    /// Car, bus, motorbike: road speeds.
    Road,
    /// Train, beyond road speeds, or labelled rail by the source.
    Rail,
    /// Aeroplane.
    Flight,
    /// Too little movement data to say.
    Unknown,
}

impl TransportMode {
    /// Every mode, in ladder order with `Unknown` last.
    pub const ALL: [Self; 6] = [Self::Walk, Self::Cycle, Self::Road, Self::Rail, Self::Flight, Self::Unknown];

    /// The stable kebab-case name.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Walk => "walk",
            Self::Cycle => "cycle",
            Self::Road => "road",
            Self::Rail => "rail",
            Self::Flight => "flight",
            Self::Unknown => "unknown",
        }
    }

    /// The mode a source's activity label stands for, if it names one.
    #[must_use]
    pub fn from_motion(motion: Motion) -> Option<Self> {
        match motion {
            Motion::Walking | Motion::Running => Some(Self::Walk),
            Motion::Cycling => Some(Self::Cycle),
            Motion::Road => Some(Self::Road),
            Motion::Rail => Some(Self::Rail),
            Motion::Flying => Some(Self::Flight),
            Motion::Stationary | Motion::Boat | Motion::Unknown => None,
        }
    }

    fn ladder_step(self) -> Option<u8> {
        match self {
            Self::Walk => Some(0),
            Self::Cycle => Some(1),
            Self::Road | Self::Rail => Some(2),
            Self::Flight => Some(3),
            Self::Unknown => None,
        }
    }
}

/// Thresholds for [`classify`]; the defaults are in the module table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ModeParams {
    /// Walk below this 85th-percentile speed. m/s.
    pub walk_below_m_s: f64,
    /// Cycle below this. m/s.
    pub cycle_below_m_s: f64,
    /// Road below this. m/s.
    pub road_below_m_s: f64,
    /// Rail below this, flight at or above. m/s.
    pub rail_below_m_s: f64,
    /// A leg that reached this altitude faster than [`Self::flight_altitude_min_speed_m_s`] flew. Metres.
    pub flight_altitude_m: f64,
    /// See [`Self::flight_altitude_m`]. m/s.
    pub flight_altitude_min_speed_m_s: f64,
    /// A jump between two consecutive fixes at least this long and at least
    /// [`Self::flight_jump_speed_m_s`] fast is a flight. Metres.
    pub flight_jump_m: f64,
    /// See [`Self::flight_jump_m`]. m/s.
    pub flight_jump_speed_m_s: f64,
    /// The share of a leg's labelled points that must agree on a label for it to count, 0–1.
    pub label_agreement: f64,
}

impl Default for ModeParams {
    fn default() -> Self {
        Self {
            walk_below_m_s: 2.8,
            cycle_below_m_s: 8.5,
            road_below_m_s: 44.0,
            rail_below_m_s: 90.0,
            flight_altitude_m: 5_000.0,
            flight_altitude_min_speed_m_s: 30.0,
            flight_jump_m: 100_000.0,
            flight_jump_speed_m_s: 70.0,
            label_agreement: 0.5,
        }
    }
}

impl ModeParams {
    /// Checks that the speed ladder is increasing and the share is a fraction.
    ///
    /// # Errors
    /// [`TimelineError::InvalidParameter`] naming the field.
    pub fn validate(&self) -> Result<(), TimelineError> {
        let ladder = [
            ("walk_below_m_s", self.walk_below_m_s),
            ("cycle_below_m_s", self.cycle_below_m_s),
            ("road_below_m_s", self.road_below_m_s),
            ("rail_below_m_s", self.rail_below_m_s),
        ];
        let mut floor = 0.0;
        for (name, value) in ladder {
            if !(value.is_finite() && value > floor) {
                return Err(TimelineError::InvalidParameter {
                    name,
                    value: value.to_string(),
                    why: "speed thresholds must be finite and increase from walk to rail",
                });
            }
            floor = value;
        }
        if !(0.0..=1.0).contains(&self.label_agreement) {
            return Err(TimelineError::InvalidParameter {
                name: "label_agreement",
                value: self.label_agreement.to_string(),
                why: "must be a share between 0 and 1",
            });
        }
        Ok(())
    }

    /// Whether a jump of `distance_m` at `speed_m_s` between two fixes is a flight.
    #[must_use]
    pub fn is_flight_jump(&self, distance_m: f64, speed_m_s: f64) -> bool {
        distance_m >= self.flight_jump_m && speed_m_s >= self.flight_jump_speed_m_s
    }
}

/// A leg's speeds, from the segments between its consecutive points that
/// took time (segments of two fixes at the same instant have no speed).
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct SpeedProfile {
    /// Distance over duration.
    pub mean_m_s: f64,
    /// Time-weighted median segment speed.
    pub median_m_s: f64,
    /// Time-weighted 85th percentile: the cruising speed used for the mode.
    pub p85_m_s: f64,
    /// Time-weighted 95th percentile.
    pub p95_m_s: f64,
    /// The fastest segment (often a GPS jump; prefer the percentiles).
    pub max_m_s: f64,
}

/// The segments of one leg as time-weighted speed samples, kept in a buffer
/// that is reused from leg to leg. Each sample packs its speed (as an f32,
/// seven significant digits) above its duration in milliseconds into one
/// `u64`, so sorting by speed is a plain integer sort.
#[derive(Debug, Clone, Default)]
pub struct SpeedSamples {
    packed: Vec<u64>,
    fastest_m_s: f64,
}

impl SpeedSamples {
    /// Forgets all samples.
    pub fn clear(&mut self) {
        self.packed.clear();
        self.fastest_m_s = 0.0;
    }

    /// Adds a segment travelled at `speed_m_s` for `duration_ms` (> 0).
    pub fn push(&mut self, speed_m_s: f64, duration_ms: i64) {
        self.fastest_m_s = self.fastest_m_s.max(speed_m_s);
        // A non-negative f32's bits order like its value; the clamps keep both fields in range.
        #[allow(clippy::cast_possible_truncation)]
        let speed_bits = (speed_m_s.clamp(0.0, f64::from(f32::MAX)) as f32).to_bits();
        let duration = u32::try_from(duration_ms.clamp(1, i64::from(u32::MAX))).unwrap_or(u32::MAX);
        self.packed.push((u64::from(speed_bits) << 32) | u64::from(duration));
    }

    /// Whether no segment took time.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.packed.is_empty()
    }

    /// The profile of a leg with these samples and the given overall
    /// distance and duration (the samples are sorted in place).
    #[must_use]
    pub fn profile(&mut self, distance_m: f64, duration_s: f64) -> SpeedProfile {
        let mean_m_s = if duration_s > 0.0 { distance_m / duration_s } else { 0.0 };
        if self.packed.is_empty() {
            return SpeedProfile { mean_m_s, ..SpeedProfile::default() };
        }
        self.packed.sort_unstable();
        let speed = |sample: u64| f64::from(f32::from_bits(u32::try_from(sample >> 32).unwrap_or(0)));
        let duration = |sample: u64| sample & u64::from(u32::MAX);
        let total_ms: u64 = self.packed.iter().map(|&sample| duration(sample)).sum();
        let quantile = |q: f64| {
            // Durations sum far below 2^53 ms.
            #[allow(clippy::cast_precision_loss)]
            let target = q * total_ms as f64;
            let mut accumulated = 0_u64;
            for &sample in &self.packed {
                accumulated += duration(sample);
                #[allow(clippy::cast_precision_loss)]
                if accumulated as f64 >= target {
                    return speed(sample);
                }
            }
            speed(self.packed[self.packed.len() - 1])
        };
        SpeedProfile {
            mean_m_s,
            median_m_s: quantile(0.5),
            p85_m_s: quantile(0.85),
            p95_m_s: quantile(0.95),
            max_m_s: self.fastest_m_s,
        }
    }
}

/// What besides speeds the classifier looks at.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct ModeEvidence {
    /// The highest altitude of the leg, metres.
    pub max_altitude_m: Option<f64>,
    /// Whether some segment was a [flight jump](ModeParams::is_flight_jump).
    pub has_flight_jump: bool,
    /// The label most of the leg's labelled points carry, and its share of them.
    pub label: Option<(TransportMode, f64)>,
    /// Whether any segment took time (otherwise the speeds are meaningless).
    pub has_timed_segment: bool,
}

/// Classifies a leg; see the module documentation for the rules.
#[must_use]
pub fn classify(profile: &SpeedProfile, evidence: &ModeEvidence, params: &ModeParams) -> TransportMode {
    if !evidence.has_timed_segment {
        return TransportMode::Unknown;
    }
    let cruise = profile.p85_m_s;
    let flew_high = evidence.max_altitude_m.is_some_and(|alt| alt >= params.flight_altitude_m)
        && cruise > params.flight_altitude_min_speed_m_s;
    if evidence.has_flight_jump || flew_high {
        return TransportMode::Flight;
    }
    let by_speed = if cruise < params.walk_below_m_s {
        TransportMode::Walk
    } else if cruise < params.cycle_below_m_s {
        TransportMode::Cycle
    } else if cruise < params.road_below_m_s {
        TransportMode::Road
    } else if cruise < params.rail_below_m_s {
        TransportMode::Rail
    } else {
        TransportMode::Flight
    };
    match evidence.label {
        Some((label, share)) if share >= params.label_agreement => {
            match (label.ladder_step(), by_speed.ladder_step()) {
                (Some(a), Some(b)) if a.abs_diff(b) <= 1 => label,
                _ => by_speed,
            }
        }
        _ => by_speed,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cruising(p85: f64) -> SpeedProfile {
        SpeedProfile { mean_m_s: p85 * 0.7, median_m_s: p85 * 0.8, p85_m_s: p85, p95_m_s: p85, max_m_s: p85 * 2.0 }
    }

    fn evidence() -> ModeEvidence {
        ModeEvidence { has_timed_segment: true, ..ModeEvidence::default() }
    }

    fn by_speed(p85: f64) -> TransportMode {
        classify(&cruising(p85), &evidence(), &ModeParams::default())
    }

    #[test]
    fn speed_ladder() {
        assert_eq!(by_speed(1.4), TransportMode::Walk);
        assert_eq!(by_speed(5.5), TransportMode::Cycle);
        assert_eq!(by_speed(25.0), TransportMode::Road);
        assert_eq!(by_speed(70.0), TransportMode::Rail);
        assert_eq!(by_speed(230.0), TransportMode::Flight);
    }

    #[test]
    fn no_timed_segment_is_unknown() {
        let profile = cruising(10.0);
        assert_eq!(classify(&profile, &ModeEvidence::default(), &ModeParams::default()), TransportMode::Unknown);
    }

    #[test]
    fn labels_refine_neighbouring_modes_only() {
        let params = ModeParams::default();
        let labelled = |mode, share| ModeEvidence { label: Some((mode, share)), ..evidence() };
        // A regional train at car speeds.
        assert_eq!(classify(&cruising(30.0), &labelled(TransportMode::Rail, 0.9), &params), TransportMode::Rail);
        // A fast runner.
        assert_eq!(classify(&cruising(3.5), &labelled(TransportMode::Walk, 0.8), &params), TransportMode::Walk);
        // "Walking" at 30 m/s is a wrong label.
        assert_eq!(classify(&cruising(30.0), &labelled(TransportMode::Walk, 1.0), &params), TransportMode::Road);
        // A label too few points agree on is ignored.
        assert_eq!(classify(&cruising(30.0), &labelled(TransportMode::Rail, 0.3), &params), TransportMode::Road);
    }

    #[test]
    fn altitude_and_jumps_mean_flight() {
        let params = ModeParams::default();
        let high = ModeEvidence { max_altitude_m: Some(9_000.0), ..evidence() };
        assert_eq!(classify(&cruising(60.0), &high, &params), TransportMode::Flight);
        // A mountain pass by car is not.
        let pass = ModeEvidence { max_altitude_m: Some(2_700.0), ..evidence() };
        assert_eq!(classify(&cruising(20.0), &pass, &params), TransportMode::Road);
        let jump = ModeEvidence { has_flight_jump: true, ..evidence() };
        assert_eq!(classify(&cruising(1.0), &jump, &params), TransportMode::Flight);
        assert!(params.is_flight_jump(400_000.0, 150.0));
        assert!(!params.is_flight_jump(400_000.0, 40.0));
    }

    #[test]
    fn percentiles_are_time_weighted() {
        // 10 minutes at 1.4 m/s and twenty 1-second spikes at 30 m/s.
        let mut samples = SpeedSamples::default();
        samples.push(1.4, 600_000);
        for _ in 0..20 {
            samples.push(30.0, 1_000);
        }
        let profile = samples.profile(1_440.0, 620.0);
        assert!((profile.p85_m_s - 1.4).abs() < 1e-6);
        assert!((profile.median_m_s - 1.4).abs() < 1e-6);
        assert_eq!(profile.max_m_s, 30.0);
        assert!((profile.mean_m_s - 1_440.0 / 620.0).abs() < 1e-12);
        samples.clear();
        assert!(samples.is_empty());
        assert_eq!(samples.profile(0.0, 0.0), SpeedProfile::default());
    }

    #[test]
    fn quantiles_split_time_not_samples() {
        let mut samples = SpeedSamples::default();
        for (speed, ms) in [(1.0, 1_000), (2.0, 1_000), (3.0, 8_000), (10.0, 90_000)] {
            samples.push(speed, ms);
        }
        let profile = samples.profile(0.0, 100.0);
        assert_eq!((profile.median_m_s, profile.p85_m_s, profile.p95_m_s, profile.max_m_s), (10.0, 10.0, 10.0, 10.0));
        samples.clear();
        for (speed, ms) in [(10.0, 10_000), (1.0, 90_000)] {
            samples.push(speed, ms);
        }
        let profile = samples.profile(0.0, 100.0);
        assert_eq!((profile.median_m_s, profile.p85_m_s, profile.p95_m_s), (1.0, 1.0, 10.0));
    }

    #[test]
    fn params_validate_the_ladder() {
        assert!(ModeParams::default().validate().is_ok());
        let broken = ModeParams { road_below_m_s: 5.0, ..ModeParams::default() };
        assert!(broken.validate().unwrap_err().to_string().contains("road_below_m_s"));
        let share = ModeParams { label_agreement: 1.5, ..ModeParams::default() };
        assert!(share.validate().is_err());
    }
}
