//! Thumbnails of the photos in a user's library, made once and kept.
//!
//! The library holds references to originals, never copies
//! (`polo_derived::photos`), so a thumbnail is made from the original the
//! first time it is asked for and kept under the thumbnail directory
//! (`DATA_DIR/thumbnails` for `polo serve`): one JPEG per photo and size,
//! named by a hash of the original's path. A thumbnail older than its
//! original is made again; one whose original is out of reach (a drive
//! not mounted) is still served. The picture is turned upright by its EXIF
//! orientation, and decoding is held to a memory limit, so a hostile or
//! damaged file costs an error, not the server.
//!
//! JPEG, PNG and WebP originals get thumbnails; HEIC and videos do not (no
//! decoder in the build): the web app shows a placeholder for them.

use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use image::{DynamicImage, ImageDecoder, ImageReader, Limits};

/// The two sizes: the longest side, in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThumbSize {
    /// 256 px: a strip on the timeline, a marker's preview.
    Small,
    /// 1280 px: the photo opened on its own.
    Large,
}

impl ThumbSize {
    /// The longest side, in pixels.
    #[must_use]
    pub fn pixels(self) -> u32 {
        match self {
            Self::Small => 256,
            Self::Large => 1280,
        }
    }

    /// The name in URLs and file names.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Small => "small",
            Self::Large => "large",
        }
    }
}

/// Why there is no thumbnail.
#[derive(Debug, thiserror::Error)]
pub enum ThumbError {
    /// The original is not where the library says (moved, deleted, or on another instance's disk).
    #[error("the original {path} is not there: {source}")]
    Missing {
        /// The original's path.
        path: String,
        /// What opening it said.
        source: std::io::Error,
    },
    /// A kind of file polo makes no thumbnails of.
    #[error("no thumbnail for {path}: {why}")]
    Unsupported {
        /// The original's path.
        path: String,
        /// Why.
        why: String,
    },
    /// The thumbnail directory cannot be written.
    #[error("cannot keep the thumbnail in {dir}: {source}")]
    Keep {
        /// The directory.
        dir: PathBuf,
        /// What writing said.
        source: std::io::Error,
    },
}

/// The most memory one decode may take: a 100-megapixel photo fits.
const DECODE_LIMIT_BYTES: u64 = 512 * 1024 * 1024;

/// Where a thumbnail of `original` at `size` is kept under `dir`.
fn kept_path(dir: &Path, original: &str, size: ThumbSize) -> PathBuf {
    let hash = polo_derived::photos::path_hash(original);
    dir.join(format!("{hash:016x}-{}.jpg", size.name()))
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The JPEG thumbnail of `original` at `size`, from `dir` when one was made
/// since the original last changed, else made now and kept there.
///
/// # Errors
/// [`ThumbError`]: a missing original, a kind without thumbnails or an
/// undecodable file, a directory that cannot be written.
pub fn thumbnail(dir: &Path, original: &str, size: ThumbSize) -> Result<Vec<u8>, ThumbError> {
    let source = Path::new(original);
    let kept = kept_path(dir, original, size);
    let original_modified = match std::fs::metadata(source).and_then(|m| m.modified()) {
        Ok(modified) => modified,
        // An original out of reach (a drive not mounted): the thumbnail made before still shows it.
        Err(error) => {
            return std::fs::read(&kept).map_err(|_| ThumbError::Missing { path: original.to_owned(), source: error });
        }
    };
    if modified(&kept).is_some_and(|made| made >= original_modified)
        && let Ok(bytes) = std::fs::read(&kept)
    {
        return Ok(bytes);
    }
    let bytes = make(source, size)?;
    let keep = |source| ThumbError::Keep { dir: dir.to_owned(), source };
    std::fs::create_dir_all(dir).map_err(keep)?;
    // Written whole, then renamed: a reader never sees half a thumbnail.
    let partial = kept.with_extension("part");
    std::fs::write(&partial, &bytes).map_err(keep)?;
    std::fs::rename(&partial, &kept).map_err(keep)?;
    Ok(bytes)
}

/// Decodes `source`, turns it upright and scales it to fit `size`, as JPEG.
fn make(source: &Path, size: ThumbSize) -> Result<Vec<u8>, ThumbError> {
    let unsupported = |why: String| ThumbError::Unsupported { path: source.display().to_string(), why };
    let mut reader = ImageReader::open(source)
        .map_err(|e| unsupported(e.to_string()))?
        .with_guessed_format()
        .map_err(|e| unsupported(e.to_string()))?;
    if reader.format().is_none() {
        return Err(unsupported("not a JPEG, PNG or WebP picture".to_owned()));
    }
    let mut limits = Limits::default();
    limits.max_alloc = Some(DECODE_LIMIT_BYTES);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(|e| unsupported(e.to_string()))?;
    let orientation = decoder.orientation().map_err(|e| unsupported(e.to_string()))?;
    let mut picture = DynamicImage::from_decoder(decoder).map_err(|e| unsupported(e.to_string()))?;
    picture.apply_orientation(orientation);
    let side = size.pixels();
    let scaled =
        if picture.width() > side || picture.height() > side { picture.thumbnail(side, side) } else { picture };
    let mut out = Cursor::new(Vec::new());
    DynamicImage::ImageRgb8(scaled.to_rgb8())
        .write_to(&mut out, image::ImageFormat::Jpeg)
        .map_err(|e| unsupported(e.to_string()))?;
    Ok(out.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn picture(width: u32, height: u32, format: image::ImageFormat) -> Vec<u8> {
        let picture =
            image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 90]));
        let mut out = Cursor::new(Vec::new());
        DynamicImage::ImageRgb8(picture).write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    fn dimensions(jpeg: &[u8]) -> (u32, u32) {
        let decoded = image::load_from_memory_with_format(jpeg, image::ImageFormat::Jpeg).unwrap();
        (decoded.width(), decoded.height())
    }

    #[test]
    fn thumbnails_fit_their_size_keep_the_shape_and_are_made_once() {
        let originals = tempfile::tempdir().unwrap();
        let kept = tempfile::tempdir().unwrap();
        let photo = originals.path().join("IMG_1.jpg");
        std::fs::write(&photo, picture(2000, 1500, image::ImageFormat::Jpeg)).unwrap();
        let path = photo.to_str().unwrap();
        let small = thumbnail(kept.path(), path, ThumbSize::Small).unwrap();
        assert_eq!(dimensions(&small), (256, 192));
        assert_eq!(dimensions(&thumbnail(kept.path(), path, ThumbSize::Large).unwrap()), (1280, 960));
        assert_eq!(std::fs::read_dir(kept.path()).unwrap().count(), 2, "one file per size");
        // Kept: asked again, the same file answers.
        let made = std::fs::metadata(kept_path(kept.path(), path, ThumbSize::Small)).unwrap().modified().unwrap();
        assert_eq!(thumbnail(kept.path(), path, ThumbSize::Small).unwrap(), small);
        let again = std::fs::metadata(kept_path(kept.path(), path, ThumbSize::Small)).unwrap().modified().unwrap();
        assert_eq!(made, again, "not made again");
        // A small PNG stays its own size.
        let png = originals.path().join("map.png");
        std::fs::write(&png, picture(120, 80, image::ImageFormat::Png)).unwrap();
        assert_eq!(dimensions(&thumbnail(kept.path(), png.to_str().unwrap(), ThumbSize::Small).unwrap()), (120, 80));
    }

    #[test]
    fn a_missing_or_unreadable_original_says_which_and_why() {
        let kept = tempfile::tempdir().unwrap();
        let gone = thumbnail(kept.path(), "/nowhere/IMG_2.jpg", ThumbSize::Small).unwrap_err();
        assert!(
            matches!(gone, ThumbError::Missing { .. }) && gone.to_string().contains("/nowhere/IMG_2.jpg"),
            "{gone}"
        );
        let originals = tempfile::tempdir().unwrap();
        let text = originals.path().join("notes.jpg");
        std::fs::write(&text, b"not a picture at all").unwrap();
        let error = thumbnail(kept.path(), text.to_str().unwrap(), ThumbSize::Small).unwrap_err();
        assert!(matches!(error, ThumbError::Unsupported { .. }) && error.to_string().contains("notes.jpg"), "{error}");
        let video = originals.path().join("clip.mp4");
        std::fs::write(
            &video,
            polo_photos::synthetic::video(polo_photos::synthetic::VideoFormat::Mp4, &Default::default()),
        )
        .unwrap();
        assert!(matches!(
            thumbnail(kept.path(), video.to_str().unwrap(), ThumbSize::Small),
            Err(ThumbError::Unsupported { .. })
        ));
        assert_eq!(std::fs::read_dir(kept.path()).map(|d| d.count()).unwrap_or(0), 0, "nothing kept for them");
    }

    #[test]
    fn the_synthetic_photos_have_a_picture() {
        let originals = tempfile::tempdir().unwrap();
        let kept = tempfile::tempdir().unwrap();
        let photo = originals.path().join("IMG_3.jpg");
        std::fs::write(
            &photo,
            polo_photos::synthetic::image(polo_photos::synthetic::ImageFormat::Jpeg, &Default::default()),
        )
        .unwrap();
        assert_eq!(dimensions(&thumbnail(kept.path(), photo.to_str().unwrap(), ThumbSize::Small).unwrap()), (96, 72));
    }
}
