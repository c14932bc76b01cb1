//! The manifest: one JSON object per backup at `manifests/<id>.json`, and
//! the only thing that makes a set of blocks a backup.
//!
//! A manifest lists every block of the snapshot in file order, so each one
//! describes a complete database on its own. "Incremental" is a property of
//! the upload (blocks the destination already has are not sent again), not
//! of the restore: there is no chain of diffs to replay, and deleting any
//! manifest never breaks another. `parent` only records which backup was the
//! newest when this one was taken.
//!
//! It is written last, after every block it names is stored, so a manifest
//! that exists describes a backup that was complete when it was written.

use std::collections::BTreeMap;

use polo_domain::Timestamp;
use serde::{Deserialize, Serialize};

use crate::blocks::is_hash;
use crate::error::{BackupError, BackupResult};

/// Where manifests live under the destination.
pub const MANIFESTS_DIR: &str = "manifests";

/// The manifest format this version writes and reads.
pub const FORMAT: u32 = 1;

/// The name of the timeline's cursor in `derived_cursors` (`polo_derived::kinds::CURSOR`).
pub const TIMELINE_CURSOR: &str = "timeline";

/// One backup.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    /// [`FORMAT`].
    pub format: u32,
    /// The backup id: its creation time in UTC, `YYYYMMDDTHHMMSS.mmmZ`, so
    /// ids sort in time order as text.
    pub id: String,
    /// The newest backup at the destination when this one was taken.
    pub parent: Option<String>,
    /// Creation time, RFC 3339 in UTC.
    pub created: String,
    /// Creation time, ms since the Unix epoch (what retention reads).
    pub created_ms: i64,
    /// The polo version that wrote it.
    pub polo_version: String,
    /// The instance's id (`meta.instance_id`).
    pub instance_id: String,
    /// The instance's epoch when the snapshot was taken (absent before schema
    /// version 6). A restore gives the restored instance a new one.
    pub epoch: Option<String>,
    /// `PRAGMA user_version` of the snapshot.
    pub schema_version: i64,
    /// SQLite page size of the snapshot.
    pub page_size: u32,
    /// The change cursor: the last change-log sequence number in the snapshot.
    pub last_seq: u64,
    /// The derived-data cursors in the snapshot (`timeline`: how far the
    /// timeline is computed; equal to `last_seq` when it had caught up).
    pub derived_cursors: BTreeMap<String, u64>,
    /// Bytes of the database file.
    pub size: u64,
    /// Bytes per block; the last block holds the rest.
    pub block_size: u64,
    /// How blocks are stored: `zstd`.
    pub compression: String,
    /// The blocks in file order: block `i` holds bytes `i * block_size ..`.
    pub blocks: Vec<BlockRef>,
}

/// One block of a manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// SHA-256 of the uncompressed bytes, lower-case hex: the block's name.
    pub sha256: String,
    /// Bytes of the stored (compressed) object.
    pub stored: u64,
}

impl Manifest {
    /// The object name of the manifest with this id.
    #[must_use]
    pub fn name_of(id: &str) -> String {
        format!("{MANIFESTS_DIR}/{id}.json")
    }

    /// The id in a manifest object name, if it is one.
    #[must_use]
    pub fn id_of_name(name: &str) -> Option<&str> {
        let id = name.strip_prefix(MANIFESTS_DIR)?.strip_prefix('/')?.strip_suffix(".json")?;
        is_id(id).then_some(id)
    }

    /// How far the timeline was computed in the snapshot.
    #[must_use]
    pub fn timeline_cursor(&self) -> Option<u64> {
        self.derived_cursors.get(TIMELINE_CURSOR).copied()
    }

    /// Bytes of block `index`.
    #[must_use]
    pub fn block_len(&self, index: usize) -> u64 {
        let start = index as u64 * self.block_size;
        self.block_size.min(self.size.saturating_sub(start))
    }

    /// Bytes of all stored blocks, counting a block used twice once per use.
    #[must_use]
    pub fn stored_bytes(&self) -> u64 {
        self.blocks.iter().map(|b| b.stored).sum()
    }

    /// Parses and checks a manifest read from `name`.
    ///
    /// # Errors
    /// [`BackupError::Manifest`] when it is not JSON of this shape, of an
    /// unknown format, or its blocks do not cover `size`.
    pub fn parse(name: &str, bytes: &[u8]) -> BackupResult<Self> {
        let bad = |why: String| BackupError::Manifest { id: name.to_owned(), why };
        let manifest: Self = serde_json::from_slice(bytes).map_err(|e| bad(format!("not a manifest: {e}")))?;
        if manifest.format != FORMAT {
            return Err(bad(format!("format {} (this polo reads format {FORMAT})", manifest.format)));
        }
        if manifest.compression != "zstd" {
            return Err(bad(format!("unknown compression {:?}", manifest.compression)));
        }
        if !is_id(&manifest.id) || Self::id_of_name(name).is_some_and(|id| id != manifest.id) {
            return Err(bad(format!("id {:?} does not match the object name", manifest.id)));
        }
        if manifest.block_size == 0 || manifest.blocks.len() as u64 != manifest.size.div_ceil(manifest.block_size) {
            return Err(bad(format!(
                "{} blocks of {} bytes cannot hold {} bytes",
                manifest.blocks.len(),
                manifest.block_size,
                manifest.size
            )));
        }
        if let Some(block) = manifest.blocks.iter().find(|b| !is_hash(&b.sha256)) {
            return Err(bad(format!("block name {:?} is not a SHA-256", block.sha256)));
        }
        Ok(manifest)
    }

    /// The manifest as stored: pretty JSON, for people reading a bucket.
    ///
    /// # Errors
    /// Never in practice (serialising plain data).
    pub fn to_json(&self) -> BackupResult<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| BackupError::Manifest { id: self.id.clone(), why: e.to_string() })
    }
}

/// The backup id of a creation time.
#[must_use]
pub fn backup_id(created: Timestamp) -> String {
    let (y, mo, d, h, mi, s, ms) = created.civil(0);
    format!("{y:04}{mo:02}{d:02}T{h:02}{mi:02}{s:02}.{ms:03}Z")
}

/// The creation time an id spells, ms since the Unix epoch.
#[must_use]
pub fn id_millis(id: &str) -> Option<i64> {
    if !is_id(id) {
        return None;
    }
    let field = |range: std::ops::Range<usize>| id[range].parse::<u32>().ok();
    let (y, mo, d) = (i32::try_from(field(0..4)?).ok()?, field(4..6)?, field(6..8)?);
    let (h, mi, s, ms) = (field(9..11)?, field(11..13)?, field(13..15)?, field(16..19)?);
    let seconds = i64::from(h * 3600 + mi * 60 + s);
    Some(polo_domain::time::days_from_civil(y, mo, d) * 86_400_000 + seconds * 1000 + i64::from(ms))
}

/// Whether `text` is a backup id as [`backup_id`] makes them.
#[must_use]
pub fn is_id(text: &str) -> bool {
    let b = text.as_bytes();
    b.len() == 20
        && b[8] == b'T'
        && b[15] == b'.'
        && b[19] == b'Z'
        && b.iter().enumerate().all(|(i, c)| matches!(i, 8 | 15 | 19) || c.is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Manifest {
        Manifest {
            format: FORMAT,
            id: backup_id(Timestamp(1_735_700_645_123)),
            parent: None,
            created: Timestamp(1_735_700_645_123).to_rfc3339(None),
            created_ms: 1_735_700_645_123,
            polo_version: "0.1.0".into(),
            instance_id: "i".into(),
            epoch: Some("e".into()),
            schema_version: 6,
            page_size: 16_384,
            last_seq: 7,
            derived_cursors: BTreeMap::from([(TIMELINE_CURSOR.to_owned(), 7)]),
            size: 10,
            block_size: 4,
            compression: "zstd".into(),
            blocks: (0..3).map(|i| BlockRef { sha256: crate::blocks::sha256_hex(&[i]), stored: 9 }).collect(),
        }
    }

    #[test]
    fn ids_are_utc_times_that_sort_as_text() {
        assert_eq!(backup_id(Timestamp(1_735_700_645_123)), "20250101T030405.123Z");
        assert_eq!(id_millis("20250101T030405.123Z"), Some(1_735_700_645_123));
        assert_eq!(id_millis("not an id"), None);
        assert!(is_id("20250101T030405.123Z"));
        assert!(!is_id("20250101T030405Z"));
        assert!(backup_id(Timestamp(999)) < backup_id(Timestamp(1000)));
        assert_eq!(Manifest::id_of_name("manifests/20250101T030405.123Z.json"), Some("20250101T030405.123Z"));
        assert_eq!(Manifest::id_of_name("manifests/notes.json"), None);
    }

    #[test]
    fn round_trips_and_knows_its_blocks() {
        let m = sample();
        let parsed = Manifest::parse(&Manifest::name_of(&m.id), &m.to_json().unwrap()).unwrap();
        assert_eq!(parsed, m);
        assert_eq!((m.block_len(0), m.block_len(1), m.block_len(2)), (4, 4, 2));
        assert_eq!(m.timeline_cursor(), Some(7));
        assert_eq!(m.stored_bytes(), 27);
    }

    #[test]
    fn inconsistent_manifests_are_refused_with_the_reason() {
        let name = Manifest::name_of(&sample().id);
        let mut short = sample();
        short.blocks.pop();
        let e = Manifest::parse(&name, &short.to_json().unwrap()).unwrap_err().to_string();
        assert!(e.contains("2 blocks of 4 bytes cannot hold 10 bytes"), "{e}");
        let mut future = sample();
        future.format = 2;
        assert!(Manifest::parse(&name, &future.to_json().unwrap()).unwrap_err().to_string().contains("format 2"));
        let e = Manifest::parse("manifests/20240101T000000.000Z.json", &sample().to_json().unwrap()).unwrap_err();
        assert!(e.to_string().contains("does not match"), "{e}");
        assert!(Manifest::parse(&name, b"{").is_err());
    }
}
