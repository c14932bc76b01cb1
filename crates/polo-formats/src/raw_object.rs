//! One JSON object read member by member, values kept as raw JSON text in
//! source order.
//!
//! Tracker apps disagree on number spellings and polo keeps unknown members
//! byte for byte in a fix's extras, so the OwnTracks readers (`.rec` files
//! here, live messages in the server) walk members this way instead of
//! through `serde_json::Value`, which would sort keys and re-print numbers.

use serde::Deserialize;
use serde::de::{MapAccess, Visitor};
use serde_json::value::RawValue;

/// The members of one JSON object in source order.
#[derive(Debug)]
pub struct Members<'a>(pub Vec<(String, &'a RawValue)>);

impl<'a> Members<'a> {
    /// The first member called `key`.
    #[must_use]
    pub fn get(&self, key: &str) -> Option<&'a RawValue> {
        self.0.iter().find(|(k, _)| k == key).map(|(_, v)| *v)
    }

    /// Reads an object from raw JSON text.
    ///
    /// # Errors
    /// When the text is not one JSON object.
    pub fn parse(raw: &'a str) -> Result<Self, serde_json::Error> {
        serde_json::from_str(raw)
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Self::Value, M::Error> {
                let mut members = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, &'de RawValue>()? {
                    members.push((key, value));
                }
                Ok(Members(members))
            }
        }
        deserializer.deserialize_map(V(std::marker::PhantomData))
    }
}

/// The OwnTracks measurement members (`acc`, `alt`, `vac`, `vel`, `cog`,
/// `batt`) and their units, shared by the `.rec` importer and live ingest.
#[derive(Debug, Default, Clone, Copy)]
pub struct OwntracksMeasurements {
    /// `acc`, metres.
    pub acc: Option<f64>,
    /// `alt`, metres.
    pub alt: Option<f64>,
    /// `vac`, metres.
    pub vac: Option<f64>,
    /// `vel`, **km/h**.
    pub vel: Option<f64>,
    /// `cog`, degrees.
    pub cog: Option<f64>,
    /// `batt`, percent.
    pub batt: Option<f64>,
}

impl OwntracksMeasurements {
    /// The slot for a member name, when it is a measurement.
    pub fn slot(&mut self, key: &str) -> Option<&mut Option<f64>> {
        Some(match key {
            "acc" => &mut self.acc,
            "alt" => &mut self.alt,
            "vac" => &mut self.vac,
            "vel" => &mut self.vel,
            "cog" => &mut self.cog,
            "batt" => &mut self.batt,
            _ => return None,
        })
    }

    /// Sets the fix's columns, converting `vel` from km/h to m/s.
    pub fn apply(&self, fix: &mut polo_domain::Fix) {
        if let Some(v) = self.acc {
            fix.set_horizontal_accuracy_m(v);
        }
        if let Some(v) = self.alt {
            fix.set_altitude_m(v);
        }
        if let Some(v) = self.vac {
            fix.set_vertical_accuracy_m(v);
        }
        if let Some(v) = self.vel {
            fix.set_speed_m_s(v / 3.6);
        }
        if let Some(v) = self.cog {
            fix.set_course_deg(v);
        }
        if let Some(v) = self.batt {
            fix.set_battery_percent(v);
        }
    }
}
