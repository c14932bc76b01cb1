//! Applying an apply request as it is read: `POST /api/v1/replication/apply`
//! without holding the request in memory.
//!
//! A page can carry hundreds of thousands of points. Reading the whole body,
//! then the whole JSON tree, then the decoded entries kept three copies of
//! it at once. [`apply_streaming`] instead reads `{name, cursor, entries}`
//! from any [`Read`] with serde's streaming deserializer, decodes one entry
//! at a time and applies them in groups of at most [`GROUP_POINTS`] points
//! (or [`GROUP_ENTRIES`] entries): memory is one group, whatever the body's
//! size.
//!
//! Each group is one transaction, recorded with the checkpoint of its last
//! entry (the checkpoint says "the last source sequence number applied", so
//! a prefix of a page in source order is a valid place to resume from); the
//! last group records the request's cursor. A failure part-way leaves the
//! groups before it applied with a checkpoint that matches them, and the
//! replicator resumes from there. Applying is idempotent, so a page applied
//! again changes nothing.
//!
//! The request must name `name` and `cursor` before `entries` (every polo
//! sends them in that order): the groups need the cursor's epoch.

use std::fmt;
use std::io::Read;

use polo_domain::Seq;
use polo_store::{Checkpoint, FeedEntry, ReplicatedChange, Store, StoreError};
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

use crate::peer::PeerError;
use crate::wire::{WireEntry, WireOutcome};

/// The most points a group applied in one transaction carries.
pub const GROUP_POINTS: usize = 50_000;
/// The most entries a group carries.
pub const GROUP_ENTRIES: usize = 2_000;

/// How big a group may grow before it is applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct GroupLimits {
    /// Points (and intervals and edit rows) per group.
    pub points: usize,
    /// Entries per group.
    pub entries: usize,
}

impl Default for GroupLimits {
    fn default() -> Self {
        Self { points: GROUP_POINTS, entries: GROUP_ENTRIES }
    }
}

/// Reads an apply request (`{name, cursor, entries}` as JSON) from `reader`
/// and applies it to `store` group by group.
///
/// # Errors
/// [`PeerError::Protocol`] for a body that is not such a request (its
/// message says where), a malformed cursor, an entry that does not decode,
/// entries out of order, or `entries` before `name` and `cursor`;
/// [`PeerError::Local`] when the store fails or the reader fails. The
/// groups before the failure stay applied, with their checkpoint.
pub fn apply_streaming(store: &dyn Store, reader: impl Read, limits: GroupLimits) -> Result<WireOutcome, PeerError> {
    let mut applier = Applier {
        store,
        limits,
        name: None,
        checkpoint: None,
        group: Vec::new(),
        weight: 0,
        last_seq: None,
        outcome: WireOutcome::default(),
        failure: None,
    };
    // serde_json reads byte by byte: the buffer makes that cheap.
    let mut deserializer = serde_json::Deserializer::from_reader(std::io::BufReader::new(reader));
    let read = de::Deserializer::deserialize_map(&mut deserializer, RequestVisitor(&mut applier))
        .and_then(|()| deserializer.end());
    if let Some(failure) = applier.failure.take() {
        return Err(failure);
    }
    if let Err(e) = read {
        return Err(match e.io_error_kind() {
            Some(_) => PeerError::Local(format!("reading the request failed: {e}")),
            None => protocol(format!("the request does not decode: {e}")),
        });
    }
    let (Some(name), Some(checkpoint)) = (applier.name.clone(), applier.checkpoint.clone()) else {
        return Err(protocol("the request needs `name` and `cursor`".to_owned()));
    };
    // The last group records the request's own cursor (also when it is empty: a page of
    // filtered-out changes still advances the checkpoint).
    applier.apply_group(&name, &checkpoint)?;
    Ok(applier.outcome)
}

fn protocol(message: String) -> PeerError {
    PeerError::Protocol { url: "apply".into(), message }
}

/// The state of one request being applied.
struct Applier<'s> {
    store: &'s dyn Store,
    limits: GroupLimits,
    name: Option<String>,
    checkpoint: Option<Checkpoint>,
    group: Vec<FeedEntry>,
    weight: usize,
    last_seq: Option<u64>,
    outcome: WireOutcome,
    /// What stopped the reading, when it was not the JSON itself.
    failure: Option<PeerError>,
}

impl Applier<'_> {
    fn apply_group(&mut self, name: &str, checkpoint: &Checkpoint) -> Result<(), PeerError> {
        let group = std::mem::take(&mut self.group);
        self.weight = 0;
        let applied = self
            .store
            .replication_apply(name, &group, checkpoint)
            .map_err(|e: StoreError| PeerError::Local(e.to_string()))?;
        self.outcome.add(applied.into());
        Ok(())
    }

    /// Takes one entry; applies the group once it is full.
    fn push(&mut self, entry: WireEntry) -> Result<(), PeerError> {
        if self.last_seq.is_some_and(|last| entry.seq <= last) {
            return Err(protocol(format!(
                "change {} comes after change {}: entries must be in the source's order",
                entry.seq,
                self.last_seq.unwrap_or_default()
            )));
        }
        self.last_seq = Some(entry.seq);
        let entry = entry.into_entry().map_err(|e| protocol(e.to_string()))?;
        self.weight += weight(&entry.change);
        self.group.push(entry);
        if self.weight >= self.limits.points || self.group.len() >= self.limits.entries {
            let (Some(name), Some(epoch)) = (self.name.clone(), self.checkpoint.as_ref().map(|c| c.epoch.clone()))
            else {
                return Err(protocol("`name` and `cursor` must come before `entries`".to_owned()));
            };
            let reached = Checkpoint { epoch, seq: Seq(self.last_seq.unwrap_or_default()) };
            self.apply_group(&name, &reached)?;
        }
        Ok(())
    }
}

/// Roughly the work and memory an entry costs.
fn weight(change: &ReplicatedChange) -> usize {
    match change {
        ReplicatedChange::Points { fixes, .. } => fixes.len().max(1),
        ReplicatedChange::Intervals { intervals, .. } => intervals.len().max(1),
        ReplicatedChange::Edit { put, delete, .. } => (put.len() + delete.len()).max(1),
        _ => 1,
    }
}

/// Visits the request object.
struct RequestVisitor<'a, 's>(&'a mut Applier<'s>);

impl<'de> Visitor<'de> for RequestVisitor<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object {name, cursor, entries}")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let applier = self.0;
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "name" => applier.name = Some(map.next_value()?),
                "cursor" => {
                    let cursor: String = map.next_value()?;
                    applier.checkpoint = Some(Checkpoint::parse(&cursor).map_err(de::Error::custom)?);
                }
                "entries" => {
                    if applier.name.is_none() || applier.checkpoint.is_none() {
                        return Err(de::Error::custom("`name` and `cursor` must come before `entries`"));
                    }
                    map.next_value_seed(EntriesSeed(&mut *applier))?;
                }
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// Reads `entries` one at a time.
struct EntriesSeed<'a, 's>(&'a mut Applier<'s>);

impl<'de> DeserializeSeed<'de> for EntriesSeed<'_, '_> {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for EntriesSeed<'_, '_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of changes")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let applier = self.0;
        while let Some(entry) = seq.next_element::<WireEntry>()? {
            if let Err(failure) = applier.push(entry) {
                let message = failure.to_string();
                applier.failure = Some(failure);
                return Err(de::Error::custom(message));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::io::Read;
    use std::sync::Arc;

    use polo_domain::{Coord, Fix, SourceFormat, Timestamp};
    use polo_store::FeedFilter;
    use polo_store_sqlite::SqliteStore;

    use super::*;
    use crate::wire::{ApplyRequest, WirePage};

    /// A source with `n` points in `batches` changes, and its whole feed as an apply request body.
    fn source_page(n: i64, batches: i64) -> (Vec<u8>, u64) {
        let source = SqliteStore::open_in_memory().unwrap();
        let user = source.create_user("alice", "h", false).unwrap();
        let phone = source.ensure_device(user.id, "phone").unwrap();
        for b in 0..batches {
            let fixes: Vec<Fix> = (0..n / batches)
                .map(|i| {
                    let t = b * (n / batches) + i;
                    Fix::new(
                        Timestamp(1_600_000_000_000 + t * 1000),
                        Coord { lat_e7: t as i32, lon_e7: 7 },
                        SourceFormat::Gpx,
                    )
                })
                .collect();
            source.insert_points(user.id, phone.id, &fixes).unwrap();
        }
        let page = source.replication_feed(Seq(0), usize::MAX, &FeedFilter::default()).unwrap();
        let epoch = source.epoch().unwrap();
        let wire = WirePage::from_feed(source.instance_id().unwrap(), &epoch, page, None);
        let request = ApplyRequest { name: "from-a".into(), cursor: wire.cursor.clone(), entries: wire.entries };
        let last = Checkpoint::parse(&request.cursor).unwrap().seq.0;
        (serde_json::to_vec(&request).unwrap(), last)
    }

    /// Hands out the body in small pieces and, before the last piece, records whether the target
    /// already had a checkpoint: proof that groups were applied while the body was still arriving.
    struct Trickle {
        body: Vec<u8>,
        at: usize,
        target: Arc<SqliteStore>,
        checkpoint_before_end: Option<Option<Checkpoint>>,
    }

    impl Read for Trickle {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            let left = self.body.len() - self.at;
            if left > 0 && left <= 4096 && self.checkpoint_before_end.is_none() {
                self.checkpoint_before_end = Some(self.target.replication_checkpoint("from-a").unwrap());
            }
            let n = left.min(buf.len()).min(4096);
            buf[..n].copy_from_slice(&self.body[self.at..self.at + n]);
            self.at += n;
            Ok(n)
        }
    }

    #[test]
    fn a_page_is_applied_in_groups_while_it_is_read() {
        let (body, last) = source_page(30_000, 30);
        let target = Arc::new(SqliteStore::open_in_memory().unwrap());
        let mut reader = Trickle { body, at: 0, target: target.clone(), checkpoint_before_end: None };
        let limits = GroupLimits { points: 5_000, entries: 1_000 };
        let outcome = apply_streaming(&*target, &mut reader, limits).unwrap();
        assert_eq!(outcome.points_added, 30_000);
        let early = reader.checkpoint_before_end.expect("the reader reached the end").expect("a group was applied");
        assert!(early.seq.0 < last, "an intermediate checkpoint: {early:?}");
        assert_eq!(target.replication_checkpoint("from-a").unwrap().unwrap().seq.0, last);
        let alice = target.user_by_name("alice").unwrap().unwrap();
        assert_eq!(target.count_points(alice.id).unwrap(), 30_000);

        // Applying the same page again changes nothing.
        let (body, _) = source_page(30_000, 30);
        let again = apply_streaming(&*target, body.as_slice(), GroupLimits::default()).unwrap();
        assert_eq!(again.points_added, 0);
    }

    #[test]
    fn malformed_requests_are_refused_with_the_reason() {
        let target = SqliteStore::open_in_memory().unwrap();
        let apply =
            |body: &str| apply_streaming(&target, body.as_bytes(), GroupLimits::default()).unwrap_err().to_string();
        assert!(apply(r#"{"entries":[],"name":"x","cursor":"e:1"}"#).contains("must come before `entries`"));
        assert!(apply(r#"{"name":"x","cursor":"nocolon","entries":[]}"#).contains("not EPOCH:SEQ"));
        assert!(apply(r#"{"name":"x"}"#).contains("needs `name` and `cursor`"));
        assert!(apply(r#"{"name":"x","cursor":"e:1","entries":[{"seq":1}]"#).contains("does not decode"));
        let user = r#"{"seq":SEQ,"hlc":5,"origin":"o","kind":"user","name":"u","password_hash":"h","is_admin":false}"#;
        let body = format!(
            r#"{{"name":"x","cursor":"e:9","entries":[{},{}]}}"#,
            user.replace("SEQ", "3"),
            user.replace("SEQ", "2")
        );
        assert!(apply(&body).contains("entries must be in the source's order"));
        // An empty page still records its cursor.
        apply_streaming(&target, r#"{"name":"x","cursor":"e:4","entries":[]}"#.as_bytes(), GroupLimits::default())
            .unwrap();
        assert_eq!(target.replication_checkpoint("x").unwrap().unwrap().seq.0, 4);
    }
}
