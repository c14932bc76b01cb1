//! The photos and videos under a folder, in a stable order (by path), with
//! an error for every directory that could not be listed: nothing under
//! the folder is skipped without a word.
//!
//! Which files are photos is decided by extension; files with other
//! extensions (sidecars, `.txt`, `.DS_Store`) are counted by the caller as
//! "not photos", never read. Symbolic links to directories are not
//! followed (a link to a parent would never end); hidden directories
//! (`.thumbnails`, `.git`) are skipped.

use std::collections::VecDeque;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::PhotoError;

/// Extensions of the files polo reads, lower case.
pub const MEDIA_EXTENSIONS: &[&str] = &[
    "jpg", "jpeg", "jpe", "heic", "heif", "avif", "png", "webp", "tif", "tiff", "dng", "cr3", "raf", "mp4", "mov",
    "m4v", "3gp", "qt",
];

/// Whether `path` names a photo or video by its extension.
#[must_use]
pub fn is_media(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| MEDIA_EXTENSIONS.iter().any(|known| known.eq_ignore_ascii_case(e)))
}

/// One entry of a walk.
#[derive(Debug)]
pub enum Found {
    /// A photo or video.
    Media(PathBuf),
    /// A file that is not one.
    Other(PathBuf),
}

/// Walks `root` depth first, by path; see the module documentation.
#[derive(Debug)]
pub struct Walk {
    directories: Vec<PathBuf>,
    files: VecDeque<PathBuf>,
}

impl Walk {
    /// A walk of `root` (a directory, or a single file).
    #[must_use]
    pub fn new(root: &Path) -> Self {
        if root.is_dir() {
            Self { directories: vec![root.to_owned()], files: VecDeque::new() }
        } else {
            Self { directories: Vec::new(), files: VecDeque::from([root.to_owned()]) }
        }
    }

    fn list(&mut self, directory: &Path) -> Result<(), PhotoError> {
        let io = |source| PhotoError::Io { path: directory.to_owned(), source };
        let mut entries: Vec<(PathBuf, bool)> = Vec::new();
        for entry in fs::read_dir(directory).map_err(io)? {
            let entry = entry.map_err(io)?;
            // `file_type` does not follow links: a link to a directory is not walked into.
            let is_dir = entry.file_type().map_err(io)?.is_dir();
            entries.push((entry.path(), is_dir));
        }
        entries.sort();
        let mut subdirectories = Vec::new();
        for (path, is_dir) in entries {
            let hidden = path.file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with('.'));
            match (is_dir, hidden) {
                (true, true) => {}
                (true, false) => subdirectories.push(path),
                (false, _) => self.files.push_back(path),
            }
        }
        // Depth first, in path order: the first subdirectory is listed next.
        self.directories.extend(subdirectories.into_iter().rev());
        Ok(())
    }
}

impl Iterator for Walk {
    type Item = Result<Found, PhotoError>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            if let Some(file) = self.files.pop_front() {
                return Some(Ok(if is_media(&file) { Found::Media(file) } else { Found::Other(file) }));
            }
            let directory = self.directories.pop()?;
            if let Err(e) = self.list(&directory) {
                return Some(Err(e));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_is_walked_in_path_order_with_photos_told_from_other_files() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        fs::create_dir_all(root.join("2024/07")).unwrap();
        fs::create_dir_all(root.join(".thumbnails")).unwrap();
        for file in ["b.JPG", "a.mp4", "notes.txt", "2024/07/c.heic", "2024/07/c.heic.xmp", ".thumbnails/t.jpg"] {
            fs::write(root.join(file), b"x").unwrap();
        }
        let found: Vec<String> = Walk::new(root)
            .map(|f| match f.unwrap() {
                Found::Media(p) => format!("media {}", p.strip_prefix(root).unwrap().display()),
                Found::Other(p) => format!("other {}", p.strip_prefix(root).unwrap().display()),
            })
            .collect();
        assert_eq!(
            found,
            ["media a.mp4", "media b.JPG", "other notes.txt", "media 2024/07/c.heic", "other 2024/07/c.heic.xmp"]
        );
    }

    #[test]
    fn a_missing_folder_is_an_error_not_an_empty_walk() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nope");
        fs::create_dir(&missing).unwrap();
        let mut walk = Walk::new(&missing);
        fs::remove_dir(&missing).unwrap();
        assert!(matches!(walk.next(), Some(Err(PhotoError::Io { .. }))));
        assert!(walk.next().is_none());
    }
}
