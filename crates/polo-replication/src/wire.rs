//! The change feed on the wire: JSON, with each insert's points as one
//! base64 block of the store's point-chunk codec.
//!
//! Why the codec and not a JSON object per point: a feed page carries tens
//! of thousands of points, and the codec is lossless (every field, extras
//! included), already tested to round-trip any value, and a tenth of the
//! size; the initial copy of a 10-million-point instance is bound by it.
//! Everything else is plain JSON a person can read.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use polo_domain::{Interval, Seq};
use polo_store::codec::{MAX_CHUNK_POINTS, StoredFix, decode_chunk, encode_chunk};
use polo_store::replication::{EditRange, EditRow};
use polo_store::{ApplyOutcome, Checkpoint, DeviceCard, FeedEntry, FeedPage, Hlc, ReplicatedChange, Version};
use serde::{Deserialize, Serialize};

/// What `GET /api/v1/replication/info` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The instance id (the origin of its own changes).
    pub instance: String,
    /// The current epoch.
    pub epoch: String,
    /// The latest change sequence number.
    pub head: u64,
    /// The polo version.
    pub version: String,
    /// Instance ids this one was restored from, most recent first: a
    /// target that has no checkpoint for this instance resumes from its
    /// checkpoint for one of them (and is told the history was rewound).
    #[serde(default)]
    pub ancestors: Vec<String>,
}

impl PeerInfo {
    /// The info of `store`.
    ///
    /// # Errors
    /// Store failures.
    pub fn of(store: &dyn polo_store::Store) -> Result<Self, polo_store::StoreError> {
        let instance = store.instance_id()?;
        let mut ancestors: Vec<String> = Vec::new();
        for span in store.epochs()?.into_iter().rev() {
            if span.instance != instance && !ancestors.contains(&span.instance) {
                ancestors.push(span.instance);
            }
        }
        Ok(Self {
            instance,
            epoch: store.epoch()?,
            head: store.last_seq()?.0,
            version: env!("CARGO_PKG_VERSION").to_owned(),
            ancestors,
        })
    }
}

/// One page of `GET /api/v1/replication/changes`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WirePage {
    /// The source's instance id.
    pub source: String,
    /// Where the next request continues (`EPOCH:SEQ`).
    pub cursor: String,
    /// The source's latest sequence number.
    pub head: u64,
    /// Wall-clock time (ms) of the source's latest change, by its clock.
    pub head_millis: i64,
    /// Set when the requested cursor was not in the source's current epoch:
    /// why, and where the page continued instead.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rewound: Option<String>,
    /// The changes.
    pub entries: Vec<WireEntry>,
}

/// One change on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WireEntry {
    /// Sequence number at the source.
    pub seq: u64,
    /// Hybrid-logical-clock reading where the change originated.
    pub hlc: u64,
    /// Instance id where it originated.
    pub origin: String,
    /// What it did.
    #[serde(flatten)]
    pub change: WireChange,
}

/// What a change did, on the wire.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum WireChange {
    /// An account, as it is now.
    User {
        /// Login name.
        name: String,
        /// Argon2 PHC string.
        password_hash: String,
        /// Admin role.
        is_admin: bool,
    },
    /// An account deleted with everything it held (a peer older than this
    /// kind refuses the page: update peers together).
    AccountDeleted {
        /// Login name.
        name: String,
    },
    /// A device, as it is now.
    Device {
        /// Owner.
        user: String,
        /// Name.
        name: String,
        /// OwnTracks payload passphrase.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        encryption_key: Option<String>,
        /// Card display name.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        card_name: Option<String>,
        /// Card picture (base64 PNG).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        card_face: Option<String>,
    },
    /// Points added: base64 blocks of the point-chunk codec, in time order.
    Points {
        /// Owner.
        user: String,
        /// Device.
        device: String,
        /// Number of points.
        count: usize,
        /// The encoded points.
        chunks: Vec<String>,
    },
    /// A range delete (bounds inclusive, absent = unbounded).
    Tombstone {
        /// Owner.
        user: String,
        /// One device, or all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        device: Option<String>,
        /// First deleted time (ms).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        from: Option<i64>,
        /// Last deleted time (ms).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        last: Option<i64>,
        /// Only points inside `[west, south, east, north]` (E7 degrees,
        /// edges included; west > east crosses ±180°). A peer older than
        /// this field would delete the whole range: update peers together.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        area: Option<[i32; 4]>,
        /// A thinning (retention): the first point of every slot of this
        /// many ms is kept. Like `area`, an older peer would delete all.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        keep_one_every_ms: Option<i64>,
    },
    /// Intervals added.
    Intervals {
        /// Owner.
        user: String,
        /// Device.
        device: String,
        /// The intervals.
        intervals: Vec<Interval>,
    },
    /// An edit of derived data.
    Edit {
        /// Owner.
        user: String,
        /// Ranges emptied first.
        delete: Vec<WireEditRange>,
        /// Rows stored.
        put: Vec<WireEditRow>,
    },
}

/// [`EditRange`] on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEditRange {
    /// Derived kind number.
    pub kind: u16,
    /// Device name, absent for user-level rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Inclusive lower key.
    pub from: i64,
    /// Exclusive upper key.
    pub to: i64,
}

/// [`EditRow`] on the wire.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireEditRow {
    /// Derived kind number.
    pub kind: u16,
    /// Device name, absent for user-level rows.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Key.
    pub key: i64,
    /// The value, base64.
    pub value: String,
}

/// What `POST /api/v1/replication/apply` takes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ApplyRequest {
    /// The checkpoint name (which source and filter).
    pub name: String,
    /// The cursor the entries bring the target to (`EPOCH:SEQ`).
    pub cursor: String,
    /// The entries, in the source's order.
    pub entries: Vec<WireEntry>,
}

/// What an apply answers.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireOutcome {
    /// Entries that changed something.
    pub applied: u64,
    /// Entries already held or older than what is.
    pub skipped: u64,
    /// Points added.
    pub points_added: u64,
    /// Points replaced by a newer version.
    pub points_replaced: u64,
    /// Points removed by tombstones.
    pub points_deleted: u64,
    /// Points refused because a newer tombstone covers them.
    pub points_suppressed: u64,
}

impl WireOutcome {
    /// Adds another outcome's counts (a request applied in groups).
    pub fn add(&mut self, other: Self) {
        self.applied += other.applied;
        self.skipped += other.skipped;
        self.points_added += other.points_added;
        self.points_replaced += other.points_replaced;
        self.points_deleted += other.points_deleted;
        self.points_suppressed += other.points_suppressed;
    }
}

impl From<ApplyOutcome> for WireOutcome {
    fn from(o: ApplyOutcome) -> Self {
        Self {
            applied: o.applied,
            skipped: o.skipped,
            points_added: o.points_added,
            points_replaced: o.points_replaced,
            points_deleted: o.points_deleted,
            points_suppressed: o.points_suppressed,
        }
    }
}

/// A wire message that does not decode, with where.
#[derive(Debug, thiserror::Error)]
#[error("change {seq}: {problem}")]
pub struct WireError {
    /// The source sequence number of the entry.
    pub seq: u64,
    /// What is wrong.
    pub problem: String,
}

impl WirePage {
    /// The page of `page`, continuing at `cursor_epoch`.
    #[must_use]
    pub fn from_feed(source: String, epoch: &str, page: FeedPage, rewound: Option<String>) -> Self {
        Self {
            source,
            cursor: Checkpoint { epoch: epoch.to_owned(), seq: page.next }.cursor(),
            head: page.head.0,
            head_millis: page.head_hlc.millis(),
            rewound,
            entries: page.entries.into_iter().map(WireEntry::from_entry).collect(),
        }
    }
}

impl WireEntry {
    /// The wire form of a store entry.
    #[must_use]
    pub fn from_entry(entry: FeedEntry) -> Self {
        let change = match entry.change {
            ReplicatedChange::User { name, password_hash, is_admin } => {
                WireChange::User { name, password_hash, is_admin }
            }
            ReplicatedChange::AccountDeleted { name } => WireChange::AccountDeleted { name },
            ReplicatedChange::Device { user, name, encryption_key, card } => {
                let (card_name, card_face) = card.map_or((None, None), |c| (c.name, c.face));
                WireChange::Device { user, name, encryption_key, card_name, card_face }
            }
            ReplicatedChange::Points { user, device, fixes } => {
                let count = fixes.len();
                let chunks = fixes
                    .chunks(MAX_CHUNK_POINTS)
                    .map(|part| {
                        let stored: Vec<StoredFix> =
                            part.iter().map(|fix| StoredFix { fix: fix.clone(), seq: Seq(0) }).collect();
                        BASE64.encode(encode_chunk(&stored))
                    })
                    .collect();
                WireChange::Points { user, device, count, chunks }
            }
            ReplicatedChange::Tombstone { user, device, from, last, area, keep_one_every_ms } => {
                WireChange::Tombstone {
                    user,
                    device,
                    from,
                    last,
                    area: area.map(|a| [a.west_e7, a.south_e7, a.east_e7, a.north_e7]),
                    keep_one_every_ms,
                }
            }
            ReplicatedChange::Intervals { user, device, intervals } => {
                WireChange::Intervals { user, device, intervals }
            }
            ReplicatedChange::Edit { user, delete, put } => WireChange::Edit {
                user,
                delete: delete
                    .into_iter()
                    .map(|d| WireEditRange { kind: d.kind, device: d.device, from: d.from, to: d.to })
                    .collect(),
                put: put
                    .into_iter()
                    .map(|p| WireEditRow { kind: p.kind, device: p.device, key: p.key, value: BASE64.encode(p.value) })
                    .collect(),
            },
        };
        Self { seq: entry.seq.0, hlc: entry.version.hlc.0, origin: entry.version.origin, change }
    }

    /// The store entry of a wire entry.
    ///
    /// # Errors
    /// Undecodable base64 or point chunks, a point count that does not
    /// match, or an empty origin.
    pub fn into_entry(self) -> Result<FeedEntry, WireError> {
        let seq = self.seq;
        let bad = |problem: String| WireError { seq, problem };
        if self.origin.is_empty() {
            return Err(bad("the origin is empty".into()));
        }
        let change = match self.change {
            WireChange::User { name, password_hash, is_admin } => {
                ReplicatedChange::User { name, password_hash, is_admin }
            }
            WireChange::AccountDeleted { name } => ReplicatedChange::AccountDeleted { name },
            WireChange::Device { user, name, encryption_key, card_name, card_face } => {
                let card = (card_name.is_some() || card_face.is_some())
                    .then_some(DeviceCard { name: card_name, face: card_face });
                ReplicatedChange::Device { user, name, encryption_key, card }
            }
            WireChange::Points { user, device, count, chunks } => {
                let mut fixes = Vec::with_capacity(count.min(1 << 20));
                for (i, chunk) in chunks.iter().enumerate() {
                    let bytes = BASE64.decode(chunk).map_err(|e| bad(format!("points chunk {i}: not base64: {e}")))?;
                    let decoded = decode_chunk(&bytes).map_err(|e| bad(format!("points chunk {i}: {e}")))?;
                    fixes.extend(decoded.into_iter().map(|sf| sf.fix));
                }
                if fixes.len() != count {
                    return Err(bad(format!("says {count} points but carries {}", fixes.len())));
                }
                ReplicatedChange::Points { user, device, fixes }
            }
            WireChange::Tombstone { user, device, from, last, area, keep_one_every_ms } => {
                ReplicatedChange::Tombstone {
                    user,
                    device,
                    from,
                    last,
                    keep_one_every_ms: keep_one_every_ms.filter(|ms| *ms > 0),
                    area: area.map(|[west_e7, south_e7, east_e7, north_e7]| polo_store::Area {
                        west_e7,
                        south_e7,
                        east_e7,
                        north_e7,
                    }),
                }
            }
            WireChange::Intervals { user, device, intervals } => {
                ReplicatedChange::Intervals { user, device, intervals }
            }
            WireChange::Edit { user, delete, put } => ReplicatedChange::Edit {
                user,
                delete: delete
                    .into_iter()
                    .map(|d| EditRange { kind: d.kind, device: d.device, from: d.from, to: d.to })
                    .collect(),
                put: put
                    .into_iter()
                    .map(|p| {
                        let value =
                            BASE64.decode(&p.value).map_err(|e| bad(format!("edit row {}: not base64: {e}", p.key)))?;
                        Ok(EditRow { kind: p.kind, device: p.device, key: p.key, value })
                    })
                    .collect::<Result<_, WireError>>()?,
            },
        };
        Ok(FeedEntry { seq: Seq(seq), version: Version { hlc: Hlc(self.hlc), origin: self.origin }, change })
    }
}

/// The entries of a page, decoded.
///
/// # Errors
/// The first entry that does not decode.
pub fn decode_entries(entries: Vec<WireEntry>) -> Result<Vec<FeedEntry>, WireError> {
    entries.into_iter().map(WireEntry::into_entry).collect()
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, Fix, SourceFormat, Timestamp};

    use super::*;

    #[test]
    fn entries_round_trip_through_json() {
        let fixes: Vec<Fix> = (0..70_000)
            .map(|i| {
                Fix::new(
                    Timestamp(1_000 + i * 1000),
                    Coord { lat_e7: i as i32, lon_e7: -(i as i32) },
                    SourceFormat::Gpx,
                )
            })
            .collect();
        let entries = vec![
            FeedEntry {
                seq: Seq(3),
                version: Version { hlc: Hlc(99 << 16), origin: "a1".into() },
                change: ReplicatedChange::Points { user: "alice".into(), device: "phone".into(), fixes },
            },
            FeedEntry {
                seq: Seq(4),
                version: Version { hlc: Hlc((99 << 16) + 1), origin: "a1".into() },
                change: ReplicatedChange::Edit {
                    user: "alice".into(),
                    delete: vec![EditRange { kind: 101, device: Some("phone".into()), from: 0, to: 9 }],
                    put: vec![EditRow { kind: 100, device: None, key: 7, value: vec![0, 255, 3] }],
                },
            },
        ];
        let wire: Vec<WireEntry> = entries.iter().cloned().map(WireEntry::from_entry).collect();
        if let WireChange::Points { chunks, .. } = &wire[0].change {
            assert_eq!(chunks.len(), 2, "more points than one codec chunk holds are split");
        }
        let json = serde_json::to_string(&wire).unwrap();
        assert!(json.contains(r#""kind":"points""#));
        let back: Vec<WireEntry> = serde_json::from_str(&json).unwrap();
        assert_eq!(decode_entries(back).unwrap(), entries);
    }

    #[test]
    fn damaged_entries_say_which_and_what() {
        let entry = WireEntry {
            seq: 12,
            hlc: 1,
            origin: "a".into(),
            change: WireChange::Points { user: "u".into(), device: "d".into(), count: 1, chunks: vec!["!!".into()] },
        };
        let err = entry.into_entry().unwrap_err().to_string();
        assert!(err.starts_with("change 12: points chunk 0: not base64"), "{err}");
    }
}
