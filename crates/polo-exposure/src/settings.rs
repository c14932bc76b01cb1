//! The exposure settings of an instance: whether the feature is on, the
//! encounter parameters, the windows, the rules, and how long things are
//! kept.
//!
//! They are instance settings (`Store::instance_settings`) an administrator
//! changes at runtime, one key per setting, `exposure.<name>`; every setting
//! is defined once, in [`SETTINGS`], with its bounds and its doc, and the
//! API, the validation and the parsing all read that table. A stored value
//! this polo cannot read is reported, not replaced silently by a default.
//! The feature is off until an administrator turns it on.

use polo_encounters::Params;
use serde::Serialize;

use crate::{DAY_MS, ExposureError, ExposureResult, HOUR_MS};

/// The prefix of every exposure key in the instance settings.
pub const PREFIX: &str = "exposure.";

/// The effective exposure settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Settings {
    /// Whether exposure checks run at all (off by default).
    pub enabled: bool,
    /// D: two points are near when at most this many metres apart.
    pub max_distance_m: f64,
    /// T: and at most this many seconds apart.
    pub max_gap_s: f64,
    /// The batch's window length, in hours (windows are aligned to the UTC epoch).
    pub window_hours: f64,
    /// A window is complete (computed) once its end is this many hours old.
    pub completion_delay_hours: f64,
    /// The rule: a contact needs at least this many exposure minutes with the case…
    pub min_minutes: f64,
    /// …over at least this many encounters (windows with contact).
    pub min_encounters: f64,
    /// Whether proposals are applied at once rather than queued for the authority.
    pub auto_apply: bool,
    /// How long an `exposed` status lasts after it is applied, in days.
    pub status_validity_days: f64,
    /// How long a `clear` code stays valid, in hours (it is re-signed before then).
    pub code_validity_hours: f64,
    /// Encounter and exposure data (contacts, proposals, cases, audit entries) older than this many days is deleted.
    pub retention_days: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Self {
            enabled: false,
            max_distance_m: 25.0,
            max_gap_s: 300.0,
            window_hours: 24.0,
            completion_delay_hours: 6.0,
            min_minutes: 15.0,
            min_encounters: 1.0,
            auto_apply: false,
            status_validity_days: 14.0,
            code_validity_hours: 24.0,
            retention_days: 28.0,
        }
    }
}

/// How a setting is read and written.
#[derive(Clone, Copy)]
enum Field {
    Flag(fn(&Settings) -> bool, fn(&mut Settings, bool)),
    /// A number in `min..=max`; `whole` for counts.
    Number {
        get: fn(&Settings) -> f64,
        set: fn(&mut Settings, f64),
        min: f64,
        max: f64,
        whole: bool,
    },
}

/// One setting: its name (the key is [`PREFIX`] + name) and bounds.
pub struct Setting {
    /// The name, as the API calls it.
    pub name: &'static str,
    field: Field,
}

impl std::fmt::Debug for Setting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Setting").field("name", &self.name).finish_non_exhaustive()
    }
}

impl Setting {
    /// The instance-settings key.
    #[must_use]
    pub fn key(&self) -> String {
        format!("{PREFIX}{}", self.name)
    }

    /// The bounds of a number setting, as text for messages.
    fn bounds(&self) -> String {
        match self.field {
            Field::Flag(..) => "true or false".to_owned(),
            Field::Number { min, max, whole: true, .. } => format!("a whole number from {min} to {max}"),
            Field::Number { min, max, .. } => format!("a number from {min} to {max}"),
        }
    }

    /// Checks `value` (JSON) and returns it as stored text.
    ///
    /// # Errors
    /// [`ExposureError::Invalid`] naming the setting and its bounds.
    pub fn check(&self, value: &serde_json::Value) -> ExposureResult<String> {
        let bad = || ExposureError::Invalid(format!("{}: must be {}, not {value}", self.name, self.bounds()));
        match self.field {
            Field::Flag(..) => value.as_bool().map(|b| b.to_string()).ok_or_else(bad),
            Field::Number { min, max, whole, .. } => {
                let n = value.as_f64().ok_or_else(bad)?;
                if !(min..=max).contains(&n) || (whole && n.fract() != 0.0) {
                    return Err(bad());
                }
                Ok(n.to_string())
            }
        }
    }

    fn apply(&self, settings: &mut Settings, text: &str) -> Option<()> {
        match self.field {
            Field::Flag(_, set) => set(settings, text.parse().ok()?),
            Field::Number { set, min, max, .. } => {
                let n: f64 = text.parse().ok()?;
                if !(min..=max).contains(&n) {
                    return None;
                }
                set(settings, n);
            }
        }
        Some(())
    }

    /// What values it takes: `None` for a flag (true or false), else a
    /// number's bounds and whether it must be whole.
    #[must_use]
    pub fn number_bounds(&self) -> Option<(f64, f64, bool)> {
        match self.field {
            Field::Flag(..) => None,
            Field::Number { min, max, whole, .. } => Some((min, max, whole)),
        }
    }

    /// The setting's value in `settings`, as JSON.
    #[must_use]
    pub fn value(&self, settings: &Settings) -> serde_json::Value {
        match self.field {
            Field::Flag(get, _) => get(settings).into(),
            Field::Number { get, .. } => get(settings).into(),
        }
    }
}

macro_rules! number {
    ($name:ident, $min:expr, $max:expr, $whole:expr) => {
        Setting {
            name: stringify!($name),
            field: Field::Number { get: |s| s.$name, set: |s, v| s.$name = v, min: $min, max: $max, whole: $whole },
        }
    };
}

macro_rules! flag {
    ($name:ident) => {
        Setting { name: stringify!($name), field: Field::Flag(|s| s.$name, |s, v| s.$name = v) }
    };
}

/// Every exposure setting, defined once.
pub const SETTINGS: &[Setting] = &[
    flag!(enabled),
    number!(max_distance_m, 1.0, 1_000.0, false),
    number!(max_gap_s, 1.0, 3_600.0, false),
    number!(window_hours, 1.0, 168.0, true),
    number!(completion_delay_hours, 0.0, 720.0, false),
    number!(min_minutes, 0.0, 10_080.0, false),
    number!(min_encounters, 1.0, 1_000.0, true),
    flag!(auto_apply),
    number!(status_validity_days, 1.0, 365.0, false),
    number!(code_validity_hours, 1.0, 720.0, false),
    number!(retention_days, 1.0, 3_650.0, false),
];

/// The setting called `name`.
#[must_use]
pub fn setting(name: &str) -> Option<&'static Setting> {
    SETTINGS.iter().find(|s| s.name == name)
}

impl Settings {
    /// The settings in the instance settings `stored` (others are ignored),
    /// defaults for those not set.
    ///
    /// # Errors
    /// [`ExposureError::Invalid`] for a stored value this polo cannot read.
    pub fn from_instance(stored: &[(String, String)]) -> ExposureResult<Self> {
        let mut settings = Self::default();
        for (key, value) in stored {
            let Some(name) = key.strip_prefix(PREFIX) else { continue };
            // A key of a newer polo is not ours to interpret.
            let Some(setting) = setting(name) else { continue };
            setting.apply(&mut settings, value).ok_or_else(|| {
                ExposureError::Invalid(format!(
                    "the stored setting {key} = {value:?} is unusable: it must be {}",
                    setting.bounds()
                ))
            })?;
        }
        Ok(settings)
    }

    /// The encounter parameters (D and T), on every core.
    ///
    /// # Errors
    /// [`ExposureError::Invalid`] when the engine refuses them (the
    /// settings' bounds lie inside the engine's, so only a newer engine
    /// with narrower ones would).
    pub fn params(&self) -> ExposureResult<Params> {
        #[allow(clippy::cast_possible_truncation)]
        let max_gap_ms = (self.max_gap_s * 1000.0).round() as i64;
        Params::new(self.max_distance_m, max_gap_ms).map_err(|e| ExposureError::Invalid(e.to_string()))
    }

    /// The window length in milliseconds.
    #[must_use]
    pub fn window_ms(&self) -> i64 {
        hours_ms(self.window_hours)
    }

    /// The completion delay in milliseconds.
    #[must_use]
    pub fn delay_ms(&self) -> i64 {
        hours_ms(self.completion_delay_hours)
    }

    /// How long an `exposed` status lasts, in milliseconds.
    #[must_use]
    pub fn status_validity_ms(&self) -> i64 {
        hours_ms(self.status_validity_days * 24.0)
    }

    /// How long a `clear` code lasts, in milliseconds.
    #[must_use]
    pub fn code_validity_ms(&self) -> i64 {
        hours_ms(self.code_validity_hours)
    }

    /// How long exposure data is kept, in milliseconds.
    #[must_use]
    pub fn retention_ms(&self) -> i64 {
        #[allow(clippy::cast_possible_truncation)]
        let ms = (self.retention_days * DAY_MS as f64).round() as i64;
        ms
    }

    /// The settings as a JSON object, by name.
    #[must_use]
    pub fn to_json(&self) -> serde_json::Map<String, serde_json::Value> {
        SETTINGS.iter().map(|s| (s.name.to_owned(), s.value(self))).collect()
    }
}

#[allow(clippy::cast_possible_truncation)]
fn hours_ms(hours: f64) -> i64 {
    (hours * HOUR_MS as f64).round() as i64
}

/// The instance-setting writes for `patch` (a JSON object of setting
/// names; `null` returns a setting to its default).
///
/// # Errors
/// [`ExposureError::Invalid`] for an unknown name or an unusable value.
pub fn changes(patch: &serde_json::Map<String, serde_json::Value>) -> ExposureResult<Vec<(String, Option<String>)>> {
    let mut out = Vec::with_capacity(patch.len());
    for (name, value) in patch {
        let setting = setting(name).ok_or_else(|| {
            let known: Vec<&str> = SETTINGS.iter().map(|s| s.name).collect();
            ExposureError::Invalid(format!("unknown exposure setting {name:?}; the settings are {}", known.join(", ")))
        })?;
        let text = if value.is_null() { None } else { Some(setting.check(value)?) };
        out.push((setting.key(), text));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_off_and_stored_values_win() {
        assert!(!Settings::default().enabled);
        let stored = vec![
            ("exposure.enabled".to_owned(), "true".to_owned()),
            ("exposure.max_distance_m".to_owned(), "10".to_owned()),
            ("exposure.from_the_future".to_owned(), "x".to_owned()),
            ("instance_name".to_owned(), "x".to_owned()),
        ];
        let s = Settings::from_instance(&stored).unwrap();
        assert!(s.enabled);
        assert!((s.max_distance_m - 10.0).abs() < f64::EPSILON);
        assert_eq!(s.params().unwrap().max_gap_ms, 300_000);
        assert_eq!(s.window_ms(), DAY_MS);
        let bad = Settings::from_instance(&[("exposure.window_hours".to_owned(), "-1".to_owned())]).unwrap_err();
        assert!(bad.to_string().contains("exposure.window_hours"), "{bad}");
    }

    #[test]
    fn changes_are_checked_against_the_one_table() {
        let patch = serde_json::json!({"enabled": true, "min_minutes": 5, "retention_days": null});
        let got = changes(patch.as_object().unwrap()).unwrap();
        assert_eq!(
            got,
            vec![
                ("exposure.enabled".to_owned(), Some("true".to_owned())),
                ("exposure.min_minutes".to_owned(), Some("5".to_owned())),
                ("exposure.retention_days".to_owned(), None),
            ]
        );
        for (patch, why) in [
            (serde_json::json!({"enabled": "yes"}), "enabled: must be true or false"),
            (serde_json::json!({"window_hours": 1.5}), "window_hours: must be a whole number from 1 to 168"),
            (serde_json::json!({"max_distance_m": 0}), "max_distance_m: must be a number from 1 to 1000"),
            (serde_json::json!({"colour": 1}), "unknown exposure setting \"colour\""),
        ] {
            let e = changes(patch.as_object().unwrap()).unwrap_err().to_string();
            assert!(e.starts_with(why), "{e}");
        }
        let all = changes(&Settings::default().to_json()).unwrap();
        let round = Settings::from_instance(&all.into_iter().map(|(k, v)| (k, v.unwrap())).collect::<Vec<_>>());
        let round = round.unwrap();
        assert_eq!(round, Settings::default());
    }
}
