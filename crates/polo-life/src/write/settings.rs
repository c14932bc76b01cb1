//! Takeout's `Settings.json`: what the user's Google account knew about
//! each phone, so that polo shows "Anna's Pixel" rather than the
//! `google-<deviceTag>` its records arrive under.

use std::io;
use std::path::Path;

use serde_json::json;

use crate::Device;
use crate::manifest::{FileEntry, Manifest};

/// The file name.
pub const FILE: &str = "Settings.json";

/// Writes the file and lists it (no points) in the manifest.
pub(super) fn write(dir: &Path, manifest: &mut Manifest) -> io::Result<()> {
    let devices: Vec<serde_json::Value> = Device::ALL
        .iter()
        .map(|device| {
            let (pretty, maker) = device.settings();
            let mut entry = json!({
                "deviceTag": device.device_tag(),
                "reportingEnabledModificationTime": "2016-02-01T08:00:00.000Z",
                "deviceCreationTime": "2016-02-01T08:00:00.000Z",
                "deviceSpec": {"manufacturer": maker, "brand": maker, "model": device.model(), "device": device.model()},
            });
            if let Some(pretty) = pretty {
                entry["devicePrettyName"] = json!(pretty);
            }
            entry
        })
        .collect();
    let settings = json!({
        "createdTime": "2016-02-01T08:00:00.000Z",
        "modifiedTime": "2026-11-30T12:00:00.000Z",
        "historyEnabled": true,
        "deviceSettings": devices,
        "retentionWindowDays": 0,
    });
    let path = dir.join(FILE);
    let text = serde_json::to_string_pretty(&settings).map_err(io::Error::other)?;
    std::fs::write(&path, format!("{text}\n"))?;
    let bytes = std::fs::metadata(&path)?.len();
    manifest.files.push(FileEntry { name: FILE.to_owned(), format: "google_settings", bytes, ..FileEntry::default() });
    Ok(())
}
