//! The user's photo library: one row per photo or video polo has found
//! (kind [`PHOTO`], scope user), keyed by when it was taken, so that a
//! day's or a trip's photos are one key range.
//!
//! A row is a *reference* to the original (its path on the server's disk),
//! never a copy, with what `polo-photos` read from it (capture time, offset,
//! camera) and where it was taken: from the file's own GPS, or proposed from
//! the location history with a confidence and its reasons (the estimated
//! error, the time to the nearest fix, moving or not) and, once the user
//! applied it (polo's XMP sidecar written beside the original), when that
//! was: a proposal stays applied through a rescan that proposes the same
//! position ([`Library::put`]). The rows are the user's own data
//! rather than something recomputable, so they are written as edits: they
//! replicate to other instances like place names and settings do, and no
//! recomputation touches them.
//!
//! **Keys.** A photo taken at UTC instant `t` (ms) has key `t × 1024 + s`,
//! where the slot `s` comes from a hash of its path (the next free slot when
//! two photos share an instant and a slot): a range of keys is a range of
//! time. A photo without a capture time is keyed below every dated one
//! ([`UNDATED_KEYS`]), so no time range returns it. [`Library`] keeps one
//! row per path: scanning a folder again replaces a photo's row, under a
//! new key when its time changed.

use std::collections::{BTreeSet, HashMap};
use std::ops::Range;

use polo_domain::{Timestamp, UserId};
use polo_store::{DerivedBatch, DerivedRange, DerivedScope, Store};
use serde::{Deserialize, Serialize};

use crate::DerivedResult;
use crate::kinds::PHOTO;
use crate::rows::{decode, encode};

/// Slots per millisecond of capture time.
const SLOTS: i64 = 1_024;
/// The latest capture time a key can hold exactly (later ones are clamped): the year 144,683.
const MAX_TIME_MS: i64 = i64::MAX / SLOTS / 2;

/// The keys of photos without a capture time: below every dated photo's.
pub const UNDATED_KEYS: Range<i64> = i64::MIN..i64::MIN / 2;

/// One photo or video, as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PhotoRow {
    /// The file's absolute path on the server.
    pub path: String,
    /// `"image"` or `"video"`.
    pub media: String,
    /// When it was taken, UTC ms; `None` when the file does not say.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub taken: Option<i64>,
    /// The UTC offset of its clock then, minutes east, where known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_min: Option<i16>,
    /// Where the offset came from: `"file"`, `"gps"`, `"zone"` (the time
    /// zone at its position) or `"history"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset_from: Option<String>,
    /// Latitude, 1e-7 degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lat_e7: Option<i32>,
    /// Longitude, 1e-7 degrees.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lon_e7: Option<i32>,
    /// Where the position came from: `"file"` (its own GPS) or `"history"`
    /// (proposed from the location history; see `confidence`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub position_from: Option<String>,
    /// A proposed position's confidence: `"high"`, `"medium"` or `"low"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub confidence: Option<String>,
    /// A proposed position's estimated error, metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_m: Option<f64>,
    /// A proposed position's time to the nearest fix used, seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nearest_fix_s: Option<f64>,
    /// Whether the history shows the person moving around a proposed position.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub moving: Option<bool>,
    /// When a proposed position was applied (written to polo's XMP sidecar
    /// beside the original), UTC ms; `None` while it is only proposed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub applied: Option<i64>,
    /// Altitude from the file, metres.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub altitude_m: Option<f64>,
    /// Camera make and model.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub camera: Option<String>,
}

/// A stored photo: its key (the id the API shows) and row.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredPhoto {
    /// The row's key.
    pub key: i64,
    /// The row.
    pub row: PhotoRow,
}

/// FNV-1a: a hash of a path that is the same on every machine and build
/// (row keys here, thumbnail file names in the server).
#[must_use]
pub fn path_hash(path: &str) -> u64 {
    path.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3))
}

/// The first key a photo taken at `taken` with this path would try.
fn preferred_key(taken: Option<i64>, path: &str) -> i64 {
    let hash = path_hash(path);
    match taken {
        #[allow(clippy::cast_possible_wrap)]
        Some(ms) => ms.clamp(-MAX_TIME_MS, MAX_TIME_MS) * SLOTS + (hash % SLOTS as u64) as i64,
        #[allow(clippy::cast_possible_wrap)]
        None => UNDATED_KEYS.start + (hash % (UNDATED_KEYS.end - UNDATED_KEYS.start) as u64) as i64,
    }
}

/// The keys of photos taken in `[from, to)`.
#[must_use]
pub fn keys_between(from: Timestamp, to: Timestamp) -> Range<i64> {
    let key = |ms: i64| ms.clamp(-MAX_TIME_MS, MAX_TIME_MS) * SLOTS;
    key(from.0)..key(to.0)
}

/// The user's photos taken in `[from, to)`, in time order.
///
/// # Errors
/// Store failures and damaged rows.
pub fn photos_between(
    store: &dyn Store,
    user: UserId,
    from: Timestamp,
    to: Timestamp,
) -> DerivedResult<Vec<StoredPhoto>> {
    photos_in(store, user, keys_between(from, to))
}

/// One photo by key.
///
/// # Errors
/// Store failures and a damaged row.
pub fn photo(store: &dyn Store, user: UserId, key: i64) -> DerivedResult<Option<PhotoRow>> {
    match store.derived_range(user, &DerivedRange::key(PHOTO, DerivedScope::User, key))?.pop() {
        Some(row) => Ok(Some(decode(&row)?)),
        None => Ok(None),
    }
}

/// Whether two rows of one file place it at the same position from the same source.
fn same_position(a: &PhotoRow, b: &PhotoRow) -> bool {
    (a.lat_e7, a.lon_e7, &a.position_from) == (b.lat_e7, b.lon_e7, &b.position_from)
}

/// Whether `row` holds a position proposed from the history (applied or not).
#[must_use]
pub fn is_proposal(row: &PhotoRow) -> bool {
    row.position_from.as_deref() == Some("history") && row.lat_e7.is_some() && row.lon_e7.is_some()
}

/// Every photo of the user's library whose key is in `keys`, in key (time) order.
///
/// # Errors
/// Store failures and damaged rows.
pub fn photos_in(store: &dyn Store, user: UserId, keys: Range<i64>) -> DerivedResult<Vec<StoredPhoto>> {
    let range = DerivedRange { kind: PHOTO, scope: DerivedScope::User, from: keys.start, to: keys.end };
    store.derived_range(user, &range)?.iter().map(|row| Ok(StoredPhoto { key: row.key, row: decode(row)? })).collect()
}

/// Replaces the rows of photos already stored under their keys (the same
/// path and capture time: what applying or undoing a proposal changes), as
/// one edit. Nothing is written for an empty list.
///
/// # Errors
/// Store failures (nothing is stored then).
pub fn replace(store: &dyn Store, user: UserId, photos: &[StoredPhoto]) -> DerivedResult<()> {
    if photos.is_empty() {
        return Ok(());
    }
    let batch = DerivedBatch {
        put: photos.iter().map(|p| encode(PHOTO, DerivedScope::User, p.key, &p.row)).collect(),
        ..DerivedBatch::default()
    };
    store.derived_write(user, &batch, true)?;
    Ok(())
}

/// What [`Library::put`] did with a photo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Put {
    /// A path polo had not seen.
    Added,
    /// A known path whose row changed.
    Updated,
    /// A known path, stored exactly so already.
    Unchanged,
}

/// The user's library, loaded to add photos to it: one row per path.
pub struct Library<'a> {
    store: &'a dyn Store,
    user: UserId,
    /// Every stored path and its row's key.
    keys: HashMap<String, i64>,
    /// Every key in use.
    taken: BTreeSet<i64>,
    rows: HashMap<i64, PhotoRow>,
    pending: DerivedBatch,
}

impl<'a> Library<'a> {
    /// Rows written in one edit.
    const BATCH: usize = 500;

    /// Loads the user's library (every row: a scan compares each file with
    /// what is stored).
    ///
    /// # Errors
    /// Store failures and damaged rows.
    pub fn load(store: &'a dyn Store, user: UserId) -> DerivedResult<Self> {
        let rows = store.derived_range(user, &DerivedRange::all(PHOTO, DerivedScope::User))?;
        let mut library = Self {
            store,
            user,
            keys: HashMap::with_capacity(rows.len()),
            taken: BTreeSet::new(),
            rows: HashMap::with_capacity(rows.len()),
            pending: DerivedBatch::default(),
        };
        for row in &rows {
            let photo: PhotoRow = decode(row)?;
            library.keys.insert(photo.path.clone(), row.key);
            library.taken.insert(row.key);
            library.rows.insert(row.key, photo);
        }
        Ok(library)
    }

    /// Photos stored.
    #[must_use]
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether no photo is stored.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Adds or replaces the row of `photo.path`, written in batches (call
    /// [`Library::flush`] at the end). Returns the key it is stored under.
    ///
    /// A proposal that was applied stays applied (with the time it was) as
    /// long as the new row proposes the same position: scanning a folder
    /// again does not forget what the user accepted, and a changed proposal
    /// is a proposal to review again.
    ///
    /// # Errors
    /// Store failures of a batch written on the way.
    pub fn put(&mut self, mut photo: PhotoRow) -> DerivedResult<(i64, Put)> {
        let old = self.keys.get(&photo.path).copied();
        if let Some(previous) = old.and_then(|key| self.rows.get(&key))
            && previous.applied.is_some()
            && same_position(previous, &photo)
        {
            photo.applied = previous.applied;
        }
        if let Some(key) = old
            && self.rows.get(&key) == Some(&photo)
        {
            return Ok((key, Put::Unchanged));
        }
        let key = match old {
            // The same instant: the same place in key order.
            Some(old) if self.rows[&old].taken == photo.taken => old,
            _ => {
                // Past the slots other photos of that instant hold.
                let mut key = preferred_key(photo.taken, &photo.path);
                while self.taken.contains(&key) {
                    key = key.saturating_add(1);
                }
                key
            }
        };
        if let Some(old) = old.filter(|&old| old != key) {
            self.pending.delete.push(DerivedRange::key(PHOTO, DerivedScope::User, old));
            self.taken.remove(&old);
            self.rows.remove(&old);
        }
        self.pending.put.push(encode(PHOTO, DerivedScope::User, key, &photo));
        self.keys.insert(photo.path.clone(), key);
        self.taken.insert(key);
        self.rows.insert(key, photo);
        if self.pending.put.len() + self.pending.delete.len() >= Self::BATCH {
            self.flush()?;
        }
        Ok((key, if old.is_some() { Put::Updated } else { Put::Added }))
    }

    /// Marks the proposal of `path` as applied at `at` (UTC ms) or, with
    /// `None`, as only proposed again; `false` when the library has no such
    /// proposal or it is marked so already.
    ///
    /// # Errors
    /// Store failures of a batch written on the way.
    pub fn set_applied(&mut self, path: &str, at: Option<i64>) -> DerivedResult<bool> {
        let Some(&key) = self.keys.get(path) else { return Ok(false) };
        let Some(row) = self.rows.get_mut(&key) else { return Ok(false) };
        if !is_proposal(row) || row.applied.is_some() == at.is_some() {
            return Ok(false);
        }
        row.applied = at;
        self.pending.put.push(encode(PHOTO, DerivedScope::User, key, &*row));
        if self.pending.put.len() + self.pending.delete.len() >= Self::BATCH {
            self.flush()?;
        }
        Ok(true)
    }

    /// Removes the row of `path`, if any (a file that is gone).
    ///
    /// # Errors
    /// Store failures of a batch written on the way.
    pub fn remove(&mut self, path: &str) -> DerivedResult<bool> {
        let Some(key) = self.keys.remove(path) else { return Ok(false) };
        self.taken.remove(&key);
        self.rows.remove(&key);
        self.pending.delete.push(DerivedRange::key(PHOTO, DerivedScope::User, key));
        if self.pending.put.len() + self.pending.delete.len() >= Self::BATCH {
            self.flush()?;
        }
        Ok(true)
    }

    /// The stored paths under `folder` (a prefix ending in the path separator, or a file).
    #[must_use]
    pub fn paths_under(&self, folder: &str) -> Vec<String> {
        let mut paths: Vec<String> = self.keys.keys().filter(|p| p.starts_with(folder)).cloned().collect();
        paths.sort_unstable();
        paths
    }

    /// Writes what is pending, as one edit.
    ///
    /// # Errors
    /// Store failures (nothing of the batch is stored then).
    pub fn flush(&mut self) -> DerivedResult<()> {
        if self.pending.put.is_empty() && self.pending.delete.is_empty() {
            return Ok(());
        }
        let batch = std::mem::take(&mut self.pending);
        self.store.derived_write(self.user, &batch, true)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use polo_store_sqlite::SqliteStore;

    use super::*;

    fn photo(path: &str, taken: Option<i64>) -> PhotoRow {
        PhotoRow {
            path: path.to_owned(),
            media: "image".to_owned(),
            taken,
            offset_min: Some(60),
            offset_from: Some("file".to_owned()),
            lat_e7: Some(525_200_000),
            lon_e7: Some(134_050_000),
            position_from: Some("file".to_owned()),
            confidence: None,
            error_m: None,
            nearest_fix_s: None,
            moving: None,
            applied: None,
            altitude_m: Some(34.0),
            camera: Some("Pixel 8".to_owned()),
        }
    }

    fn store() -> (SqliteStore, UserId) {
        let store = SqliteStore::open_in_memory().unwrap();
        let user = store.create_user("jane", "x", false).unwrap().id;
        (store, user)
    }

    #[test]
    fn photos_are_found_by_time_and_kept_once_per_path() {
        let (store, user) = store();
        let noon = 1_717_243_200_000; // 2024-06-01 12:00 UTC
        let mut library = Library::load(&store, user).unwrap();
        assert!(library.is_empty());
        // Two photos of the same instant (a copy in another folder), one later, one undated.
        assert_eq!(library.put(photo("/p/a.jpg", Some(noon))).unwrap().1, Put::Added);
        assert_eq!(library.put(photo("/q/a.jpg", Some(noon))).unwrap().1, Put::Added);
        assert_eq!(library.put(photo("/p/b.jpg", Some(noon + 60_000))).unwrap().1, Put::Added);
        assert_eq!(library.put(photo("/p/scan.png", None)).unwrap().1, Put::Added);
        library.flush().unwrap();

        let day = photos_between(&store, user, Timestamp(noon - 3_600_000), Timestamp(noon + 3_600_000)).unwrap();
        let paths: Vec<&str> = day.iter().map(|p| p.row.path.as_str()).collect();
        assert_eq!(paths.len(), 3, "{paths:?}");
        assert_eq!(paths[2], "/p/b.jpg", "in time order");
        assert!(paths[..2].contains(&"/p/a.jpg") && paths[..2].contains(&"/q/a.jpg"));
        // The end is exclusive; the undated photo is in no time range.
        assert_eq!(photos_between(&store, user, Timestamp(noon), Timestamp(noon + 60_000)).unwrap().len(), 2);
        assert!(photos_between(&store, user, Timestamp(i64::MIN), Timestamp(i64::MAX)).unwrap().len() == 3);

        // Scanning again: unchanged rows are not written; a corrected time moves the row.
        let mut again = Library::load(&store, user).unwrap();
        assert_eq!(again.len(), 4);
        assert_eq!(again.put(photo("/p/a.jpg", Some(noon))).unwrap().1, Put::Unchanged);
        let (moved, put) = again.put(photo("/p/b.jpg", Some(noon - 7_200_000))).unwrap();
        assert_eq!(put, Put::Updated);
        again.flush().unwrap();
        assert_eq!(photo_of(&store, user, moved), "/p/b.jpg");
        let all = store.derived_range(user, &DerivedRange::all(PHOTO, DerivedScope::User)).unwrap();
        assert_eq!(all.len(), 4, "one row per path");
        assert!(again.remove("/p/scan.png").unwrap());
        assert!(!again.remove("/p/scan.png").unwrap());
        again.flush().unwrap();
        assert_eq!(store.derived_range(user, &DerivedRange::all(PHOTO, DerivedScope::User)).unwrap().len(), 3);
        assert_eq!(again.paths_under("/p/"), ["/p/a.jpg", "/p/b.jpg"]);
    }

    fn proposal(path: &str, taken: i64, lat_e7: i32) -> PhotoRow {
        PhotoRow {
            lat_e7: Some(lat_e7),
            position_from: Some("history".to_owned()),
            confidence: Some("high".to_owned()),
            error_m: Some(20.0),
            nearest_fix_s: Some(60.0),
            moving: Some(false),
            ..photo(path, Some(taken))
        }
    }

    #[test]
    fn an_applied_proposal_stays_applied_until_its_position_changes_or_it_is_undone() {
        let (store, user) = store();
        let mut library = Library::load(&store, user).unwrap();
        let (key, _) = library.put(proposal("/p/a.jpg", 1_000, 525_200_000)).unwrap();
        library.put(photo("/p/own-gps.jpg", Some(2_000))).unwrap();
        library.flush().unwrap();
        assert!(is_proposal(&super::photo(&store, user, key).unwrap().unwrap()));

        // Applied (as the review page does): only the row changes, under the same key.
        let mut applied = photos_in(&store, user, i64::MIN..i64::MAX).unwrap();
        applied.retain(|p| is_proposal(&p.row));
        applied[0].row.applied = Some(5_000);
        replace(&store, user, &applied).unwrap();
        assert_eq!(super::photo(&store, user, key).unwrap().unwrap().applied, Some(5_000));

        // Scanning again with the same proposal keeps it applied: nothing to write.
        let mut again = Library::load(&store, user).unwrap();
        assert_eq!(again.put(proposal("/p/a.jpg", 1_000, 525_200_000)).unwrap(), (key, Put::Unchanged));
        // A file's own position is never a proposal to apply.
        assert!(!again.set_applied("/p/own-gps.jpg", Some(6_000)).unwrap());
        // Undone: a proposal again (and undoing twice does nothing more).
        assert!(again.set_applied("/p/a.jpg", None).unwrap());
        assert!(!again.set_applied("/p/a.jpg", None).unwrap());
        again.flush().unwrap();
        assert_eq!(super::photo(&store, user, key).unwrap().unwrap().applied, None);

        // Applied, then the history proposes another position: a proposal to review again.
        let mut third = Library::load(&store, user).unwrap();
        assert!(third.set_applied("/p/a.jpg", Some(7_000)).unwrap());
        assert_eq!(third.put(proposal("/p/a.jpg", 1_000, 525_300_000)).unwrap().1, Put::Updated);
        third.flush().unwrap();
        let row = super::photo(&store, user, key).unwrap().unwrap();
        assert_eq!((row.lat_e7, row.applied), (Some(525_300_000), None));
        assert_eq!(replace(&store, user, &[]).map_err(|e| e.to_string()), Ok(()), "nothing to write");
    }

    fn photo_of(store: &SqliteStore, user: UserId, key: i64) -> String {
        super::photo(store, user, key).unwrap().unwrap().path
    }

    #[test]
    fn library_writes_are_edits_that_replicate() {
        let (store, user) = store();
        let before = store.last_seq().unwrap();
        let mut library = Library::load(&store, user).unwrap();
        library.put(photo("/p/a.jpg", Some(0))).unwrap();
        library.flush().unwrap();
        let changes = store.changes_since(before, 10).unwrap();
        assert!(changes.iter().any(|c| c.kind == polo_store::ChangeKind::Edit), "{changes:?}");
        // Nothing pending: no empty edit.
        library.flush().unwrap();
        assert_eq!(store.changes_since(before, 10).unwrap().len(), changes.len());
    }

    #[test]
    fn extreme_times_do_not_overflow_their_keys() {
        let far = preferred_key(Some(i64::MAX), "/a");
        let early = preferred_key(Some(i64::MIN), "/a");
        assert!(early < far);
        assert!(UNDATED_KEYS.end <= early, "undated photos stay below every dated one");
        assert!(UNDATED_KEYS.contains(&preferred_key(None, "/a")));
    }
}
