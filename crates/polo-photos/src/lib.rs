//! polo's photos, without a store: what a photo or video says about when and
//! where it was taken, a position from the location history for those that
//! say nothing about where, and XMP sidecars that carry such a position to
//! photo managers (darktable, digiKam, Immich, PhotoPrism) without touching
//! the original.
//!
//! * [`meta`] — capture time, position and camera from the file's metadata
//!   (EXIF in JPEG, HEIC/HEIF, AVIF, PNG, WebP and TIFF; QuickTime and MP4
//!   creation time and location), reading only the headers.
//! * [`capture`] — the capture time as an instant: the file's own offset,
//!   or, for a bare wall-clock time, the offset the history had then.
//! * [`geotag`] — a position interpolated from the history at the capture
//!   time, with the confidence a reviewer needs: how far the nearest fixes
//!   are in time, how accurate they were, and whether the person moved.
//! * [`sidecar`] — the XMP sidecar polo writes beside a photo, recognised
//!   again so that writing is idempotent and undoing removes only polo's.
//! * [`scan`] — the photos and videos under a folder, with a reason for
//!   every file that could not be read.
//! * [`synthetic`] — small JPEG and MP4 files with chosen metadata, for
//!   tests and benchmarks.

pub mod capture;
pub mod error;
pub mod geotag;
pub mod meta;
pub mod scan;
pub mod sidecar;
pub mod synthetic;

pub use capture::CaptureTime;
pub use error::PhotoError;
pub use geotag::{Confidence, Geotag, HistoryFix};
pub use meta::{MediaKind, PhotoMeta};
