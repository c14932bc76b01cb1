//! What `polo import` reads when it is given folders: a Takeout export
//! unpacked, a phone's backup folder, a folder of GPX files.
//!
//! A folder is walked recursively in name order, so the same folder always
//! imports in the same order. Hidden entries (names starting with `.`) are
//! left out: they are editor and OS litter (`.DS_Store`, `.git`). Symbolic
//! links are followed only where they were named on the command line, so a
//! link loop inside a folder cannot make the walk endless.
//!
//! Files found inside a folder are sniffed before they are imported: one
//! that is not location data (Takeout's `archive_browser.html`, photos,
//! `Settings.json`) is listed as skipped with the reason, as an entry of a
//! zip archive is, instead of failing the import. A file named on the
//! command line is always imported, and fails loudly when it is not
//! location data.

use std::fs::File;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use polo_formats::Detected;

/// Bytes read to decide whether a file found in a folder is location data
/// (the format detector's own window).
const SNIFF_BYTES: usize = 16 * 1024;

/// One file to import.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportPath {
    /// The file.
    pub path: PathBuf,
    /// Whether it was found by walking a folder (rather than named).
    pub found_in_folder: bool,
}

/// The files behind `args`: each file as given, each folder replaced by the
/// files under it. A path that does not exist stays in the list, so that
/// opening it reports the error in its place.
///
/// # Errors
/// A folder that cannot be read, naming it.
pub fn expand(args: &[PathBuf]) -> io::Result<Vec<ImportPath>> {
    let mut out = Vec::new();
    for arg in args {
        if arg.is_dir() {
            walk(arg, &mut out)?;
        } else {
            out.push(ImportPath { path: arg.clone(), found_in_folder: false });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<ImportPath>) -> io::Result<()> {
    let entries = std::fs::read_dir(dir).map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    let mut entries: Vec<_> = entries
        .collect::<io::Result<Vec<_>>>()
        .map_err(|e| io::Error::new(e.kind(), format!("{}: {e}", dir.display())))?;
    entries.sort_by_key(std::fs::DirEntry::file_name);
    for entry in entries {
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        // The entry's own type: a symbolic link inside a folder is not followed.
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(&entry.path(), out)?;
        } else if kind.is_file() {
            out.push(ImportPath { path: entry.path(), found_in_folder: true });
        }
    }
    Ok(())
}

/// Why a file found in a folder is skipped: it is not location data, or its
/// content is not a format polo reads. `None` when it should be imported
/// (including when it cannot be read: the import reports that).
#[must_use]
pub fn skip_reason(path: &Path) -> Option<String> {
    let mut prefix = Vec::with_capacity(SNIFF_BYTES);
    File::open(path).ok()?.take(SNIFF_BYTES as u64).read_to_end(&mut prefix).ok()?;
    match polo_formats::detect(&prefix) {
        Detected::NotLocation(what) => Some(format!("not location data: {what}")),
        Detected::Unrecognised(hint) => Some(format!("unrecognised content: {hint}")),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folders_are_walked_in_name_order_without_hidden_entries() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        std::fs::create_dir_all(root.join("b/nested")).unwrap();
        std::fs::create_dir_all(root.join(".git")).unwrap();
        for file in ["b/nested/z.gpx", "b/a.gpx", "c.json", ".DS_Store", ".git/config"] {
            std::fs::write(root.join(file), "x").unwrap();
        }
        let single = root.join("c.json");
        let found = expand(&[root.to_path_buf(), single.clone()]).unwrap();
        let names: Vec<(String, bool)> = found
            .iter()
            .map(|p| (p.path.strip_prefix(root).unwrap().display().to_string(), p.found_in_folder))
            .collect();
        assert_eq!(
            names,
            [
                ("b/a.gpx".to_owned(), true),
                ("b/nested/z.gpx".to_owned(), true),
                ("c.json".to_owned(), true),
                ("c.json".to_owned(), false),
            ]
        );
    }

    #[test]
    fn a_missing_path_stays_for_the_import_to_report() {
        let found = expand(&[PathBuf::from("/no/such/file.gpx")]).unwrap();
        assert_eq!(found, [ImportPath { path: PathBuf::from("/no/such/file.gpx"), found_in_folder: false }]);
    }

    #[cfg(unix)]
    #[test]
    fn links_inside_a_folder_are_not_followed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("data")).unwrap();
        std::fs::write(dir.path().join("data/track.gpx"), "x").unwrap();
        std::os::unix::fs::symlink(dir.path(), dir.path().join("data/loop")).unwrap();
        let found = expand(&[dir.path().join("data")]).unwrap();
        assert_eq!(found.len(), 1, "{found:?}");
    }

    #[test]
    fn files_that_are_not_location_data_are_skipped_with_the_reason() {
        let dir = tempfile::tempdir().unwrap();
        let html = dir.path().join("archive_browser.html");
        std::fs::write(&html, "<!DOCTYPE html><html><body>Takeout</body></html>").unwrap();
        let gpx = dir.path().join("walk.gpx");
        std::fs::write(&gpx, r#"<?xml version="1.0"?><gpx version="1.1"><trk></trk></gpx>"#).unwrap();
        let reason = skip_reason(&html).expect("html is skipped");
        assert!(reason.starts_with("not location data") || reason.starts_with("unrecognised content"), "{reason}");
        assert_eq!(skip_reason(&gpx), None);
        assert_eq!(skip_reason(&dir.path().join("missing")), None);
    }
}
