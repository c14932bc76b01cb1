//! Takeout `Settings.json`: no locations, but the names of the phones.
//!
//! `Records.json` names each point's phone only by a number, its
//! `deviceTag`, so polo's devices for it are called `google-<tag>`
//! (`google--602738541`). `Settings.json` lists the same tags under
//! `deviceSettings` with what a person would call the phone: a
//! `devicePrettyName` ("Anna's Pixel") or the `deviceSpec`'s maker and model.
//! Each one becomes a [`Sink::device_label`] for the device `google-<tag>`,
//! whichever of the two files is imported first.
//!
//! A setting without a tag is rejected; one without any name is counted as
//! holding nothing to import.

use serde::Deserialize;
use serde_json::value::RawValue;

use super::value::{reject, shorten};
use crate::Sink;

/// Longest label kept, in characters (device labels are at most 64).
const MAX_LABEL_CHARS: usize = 64;

#[derive(Deserialize)]
struct DeviceSetting<'a> {
    #[serde(rename = "deviceTag", borrow)]
    tag: Option<&'a RawValue>,
    #[serde(rename = "devicePrettyName")]
    pretty_name: Option<String>,
    #[serde(rename = "deviceSpec")]
    spec: Option<DeviceSpec>,
}

#[derive(Deserialize)]
struct DeviceSpec {
    manufacturer: Option<String>,
    model: Option<String>,
}

/// Reads one `deviceSettings` element; returns whether it named a device.
pub(super) fn device(sink: &mut dyn Sink, offset: u64, raw: &[u8]) -> bool {
    let setting: DeviceSetting<'_> = match serde_json::from_slice(raw) {
        Ok(setting) => setting,
        Err(e) => {
            reject(sink, offset, format!("deviceSettings[]: {}", shorten(&e.to_string())), raw);
            return false;
        }
    };
    let Some(tag) = setting.tag.map(|t| t.get().trim_matches('"')).filter(|t| is_tag(t)) else {
        reject(sink, offset, "deviceSettings[]: field `deviceTag` is missing or not a number", raw);
        return false;
    };
    let Some(label) = label(&setting) else {
        sink.not_location("device setting without a name");
        return false;
    };
    let device = format!("google-{tag}");
    sink.note(&format!("{device} is {label:?}"));
    sink.device_label(&device, &label);
    true
}

/// A tag as `Records.json` writes it: an integer, possibly negative.
fn is_tag(text: &str) -> bool {
    let digits = text.strip_prefix('-').unwrap_or(text);
    !digits.is_empty() && digits.len() <= 20 && digits.bytes().all(|b| b.is_ascii_digit())
}

/// The pretty name, else "maker model" (just the model when it already
/// starts with the maker's name: "Google Pixel 7", not "Google Google Pixel 7").
fn label(setting: &DeviceSetting<'_>) -> Option<String> {
    let clean = |text: &Option<String>| {
        let text: String = text.as_deref()?.chars().filter(|c| !c.is_control()).collect();
        let text = text.trim();
        (!text.is_empty()).then(|| text.to_owned())
    };
    let name = clean(&setting.pretty_name).or_else(|| {
        let spec = setting.spec.as_ref()?;
        match (clean(&spec.manufacturer), clean(&spec.model)) {
            (Some(maker), Some(model)) if model.to_lowercase().starts_with(&maker.to_lowercase()) => Some(model),
            (Some(maker), Some(model)) => Some(format!("{maker} {model}")),
            (None, Some(model)) => Some(model),
            (Some(maker), None) => Some(format!("{maker} phone")),
            (None, None) => None,
        }
    })?;
    Some(name.chars().take(MAX_LABEL_CHARS).collect::<String>().trim_end().to_owned())
}

#[cfg(test)]
mod tests {
    use crate::google::tests::import_str as import;
    use crate::{Format, ImportError};

    #[test]
    fn names_each_tagged_device_by_its_pretty_name_or_its_model() {
        let (result, sink) = import(
            r#"{"createdTime":"2018-04-13T21:30:16.606Z","deviceSettings":[
                {"deviceTag":-602738541,"devicePrettyName":"Anna's Pixel","deviceSpec":{"manufacturer":"Google","model":"Pixel 4a"}},
                {"deviceTag":335552189,"deviceSpec":{"manufacturer":"samsung","model":"SM-G991B"}},
                {"deviceTag":7,"deviceSpec":{"manufacturer":"Google","model":"Google Pixel 7"}},
                {"deviceTag":8,"reportingEnabled":false}
            ],"retentionWindowDays":90}"#,
        );
        assert_eq!(result.unwrap(), Format::GoogleSettings);
        assert_eq!(
            sink.labels,
            [
                ("google--602738541".to_owned(), "Anna's Pixel".to_owned()),
                ("google-335552189".to_owned(), "samsung SM-G991B".to_owned()),
                ("google-7".to_owned(), "Google Pixel 7".to_owned()),
            ]
        );
        assert!(sink.points.is_empty() && sink.rejects.is_empty());
    }

    #[test]
    fn a_setting_without_a_tag_is_rejected_where_it_is() {
        let text = r#"{"deviceSettings":[{"devicePrettyName":"Phone"},{"deviceTag":"x1","devicePrettyName":"B"},{"deviceTag":5,"devicePrettyName":"C"}]}"#;
        let (result, sink) = import(text);
        assert_eq!(result.unwrap(), Format::GoogleSettings);
        assert_eq!(sink.rejects.len(), 2);
        assert!(sink.rejects[0].reason.contains("deviceTag"), "{:?}", sink.rejects[0]);
        assert_eq!(sink.rejects[0].position, crate::Position::Byte(text.find("{\"devicePretty").unwrap() as u64));
        assert_eq!(sink.labels, [("google-5".to_owned(), "C".to_owned())]);
    }

    #[test]
    fn settings_that_name_no_device_are_still_refused_as_not_location_data() {
        for text in [
            r#"{"createdTime":"2018-04-13T21:30:16.606Z","deviceSettings":[{"deviceTag":-1}]}"#,
            r#"{"historyEnabled":true,"retentionWindowDays":90}"#,
        ] {
            match import(text).0 {
                Err(ImportError::NotLocationData { what }) => assert!(what.contains("Settings.json"), "{what}"),
                other => panic!("{text}: {other:?}"),
            }
        }
    }

    #[test]
    fn labels_are_cleaned_and_kept_short() {
        let long = "x".repeat(100);
        let text = format!(r#"{{"deviceSettings":[{{"deviceTag":1,"devicePrettyName":"  Tab\tlet {long}"}}]}}"#);
        let (_, sink) = import(&text);
        let label = &sink.labels[0].1;
        assert!(label.starts_with("Tablet xxx") && label.chars().count() == 64, "{label}");
    }
}
