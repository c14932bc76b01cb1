//! What a delete removed, kept in the store for a while so that the delete
//! can be undone: through any node, and after a restart.
//!
//! Deletes are tombstones, and they replicate; an undo stores the points
//! again with [`Store::restore_points`](crate::Store::restore_points), a
//! newer write than the tombstone. Between the two, the removed points have
//! to live somewhere. In a node's memory they were lost on a restart and
//! out of reach of every other node behind the same load balancer, so the
//! record lives in the store instead, under the SHA-256 of a random token
//! the delete answers with (as sessions are kept), with an expiry.
//!
//! An [`UndoRecord`] is encoded here, once for both backends: the fixes of
//! each device as point chunks ([`crate::codec`]: 100,000 fixes, the most a
//! delete keeps, take about 2 MB), the imported visits and activities as
//! JSON. Records are local to the instance: replicas get the tombstone and,
//! after an undo, the restored points, never the record itself.

use std::collections::BTreeMap;

use polo_domain::{DeviceId, Fix, Interval, Seq, Timestamp, UserId};

use crate::codec::{MAX_CHUNK_POINTS, StoredFix, decode_chunk, encode_chunk};
use crate::{StoreError, StoreResult};

/// The most undo records a user keeps; keeping another drops the oldest.
pub const UNDO_PER_USER: usize = 5;

/// What one delete removed, by device.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct UndoRecord {
    /// The fixes, per device, in time order.
    pub points: BTreeMap<DeviceId, Vec<Fix>>,
    /// The imported visits and activities the delete took, per device.
    pub intervals: BTreeMap<DeviceId, Vec<Interval>>,
}

/// An undo record as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptUndo {
    /// Whose delete it undoes.
    pub user: UserId,
    /// The SHA-256 of the token the delete answered with.
    pub token_hash: [u8; 32],
    /// When it was kept: the oldest of a user's records goes first.
    pub made: Timestamp,
    /// From when it can no longer be taken.
    pub expires: Timestamp,
    /// [`UndoRecord::encode`]d.
    pub record: Vec<u8>,
}

const RECORD_VERSION: u8 = 1;

impl UndoRecord {
    /// How many fixes in all.
    #[must_use]
    pub fn point_count(&self) -> usize {
        self.points.values().map(Vec::len).sum()
    }

    /// Whether it holds nothing to restore.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.points.values().all(Vec::is_empty) && self.intervals.values().all(Vec::is_empty)
    }

    /// The bytes a store keeps: a version byte, then per device its id and
    /// its fixes as point chunks, then per device its intervals as JSON.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when an interval cannot be written as JSON.
    pub fn encode(&self) -> StoreResult<Vec<u8>> {
        let mut out = vec![RECORD_VERSION];
        put_len(&mut out, self.points.len());
        for (device, fixes) in &self.points {
            out.extend_from_slice(&device.0.to_le_bytes());
            let mut sorted: Vec<StoredFix> =
                fixes.iter().map(|fix| StoredFix { fix: fix.clone(), seq: Seq(0) }).collect();
            sorted.sort_by_key(|s| s.fix.time);
            let chunks: Vec<&[StoredFix]> = sorted.chunks(MAX_CHUNK_POINTS).collect();
            put_len(&mut out, chunks.len());
            for chunk in chunks {
                put_bytes(&mut out, &encode_chunk(chunk));
            }
        }
        put_len(&mut out, self.intervals.len());
        for (device, intervals) in &self.intervals {
            out.extend_from_slice(&device.0.to_le_bytes());
            let json = serde_json::to_vec(intervals)
                .map_err(|e| StoreError::Backend(format!("writing an undo record's intervals: {e}")))?;
            put_bytes(&mut out, &json);
        }
        Ok(out)
    }

    /// Reads what [`UndoRecord::encode`] wrote.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`], naming the byte offset, for anything
    /// [`UndoRecord::encode`] cannot have written.
    pub fn decode(data: &[u8]) -> StoreResult<Self> {
        let mut reader = Reader { data, pos: 0 };
        let version = reader.take(1)?[0];
        if version != RECORD_VERSION {
            return Err(StoreError::Corrupt(format!("undo record: unknown version {version}")));
        }
        let mut record = UndoRecord::default();
        for _ in 0..reader.len()? {
            let device = reader.device()?;
            let mut fixes = Vec::new();
            for _ in 0..reader.len()? {
                let at = reader.pos;
                let chunk = reader.bytes()?;
                let stored = decode_chunk(chunk)
                    .map_err(|e| StoreError::Corrupt(format!("undo record: the chunk at byte {at}: {e}")))?;
                fixes.extend(stored.into_iter().map(|s| s.fix));
            }
            record.points.insert(device, fixes);
        }
        for _ in 0..reader.len()? {
            let device = reader.device()?;
            let at = reader.pos;
            let intervals = serde_json::from_slice(reader.bytes()?)
                .map_err(|e| StoreError::Corrupt(format!("undo record: the intervals at byte {at}: {e}")))?;
            record.intervals.insert(device, intervals);
        }
        if reader.pos != data.len() {
            return Err(StoreError::Corrupt(format!(
                "undo record: {} trailing bytes at byte {}",
                data.len() - reader.pos,
                reader.pos
            )));
        }
        Ok(record)
    }
}

fn put_len(out: &mut Vec<u8>, len: usize) {
    // Lengths are bounded by what fits in memory, far below 4 GiB for an undo record.
    out.extend_from_slice(&u32::try_from(len).unwrap_or(u32::MAX).to_le_bytes());
}

fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_len(out, bytes.len());
    out.extend_from_slice(bytes);
}

struct Reader<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> StoreResult<&'a [u8]> {
        let end = self.pos.checked_add(n).filter(|&end| end <= self.data.len()).ok_or_else(|| {
            StoreError::Corrupt(format!("undo record: truncated at byte {} (wanted {n} more)", self.pos))
        })?;
        let bytes = &self.data[self.pos..end];
        self.pos = end;
        Ok(bytes)
    }

    fn len(&mut self) -> StoreResult<usize> {
        let bytes: [u8; 4] = self.take(4)?.try_into().expect("four bytes");
        Ok(u32::from_le_bytes(bytes) as usize)
    }

    fn device(&mut self) -> StoreResult<DeviceId> {
        let bytes: [u8; 8] = self.take(8)?.try_into().expect("eight bytes");
        Ok(DeviceId(i64::from_le_bytes(bytes)))
    }

    fn bytes(&mut self) -> StoreResult<&'a [u8]> {
        let len = self.len()?;
        self.take(len)
    }
}

#[cfg(test)]
mod tests {
    use polo_domain::{Coord, IntervalKind, SourceFormat};

    use super::*;

    fn record() -> UndoRecord {
        let fix = |t: i64| {
            let mut fix = Fix::new(
                Timestamp(t),
                Coord { lat_e7: 481_000_000 + t as i32, lon_e7: 115_000_000 },
                SourceFormat::Gpx,
            );
            fix.altitude_cm = Some(52_000);
            fix
        };
        let mut record = UndoRecord::default();
        record.points.insert(DeviceId(3), vec![fix(2_000), fix(1_000)]);
        record.points.insert(DeviceId(9), (0..70_000).map(|i| fix(i * 1_000)).collect());
        let mut visit =
            Interval::new(IntervalKind::Visit, Timestamp(5_000), Timestamp(9_000), SourceFormat::GoogleSemantic);
        visit.start_offset_minutes = Some(60);
        visit.start_coord = Some(Coord { lat_e7: 1, lon_e7: 2 });
        visit.name = Some("Café".into());
        visit.confidence = Some(0.5);
        record.intervals.insert(DeviceId(3), vec![visit]);
        record
    }

    #[test]
    fn a_record_round_trips_sorted_and_across_chunks() {
        let original = record();
        let decoded = UndoRecord::decode(&original.encode().unwrap()).unwrap();
        assert_eq!(decoded.point_count(), 70_002);
        assert_eq!(decoded.points[&DeviceId(3)].iter().map(|f| f.time.0).collect::<Vec<_>>(), [1_000, 2_000]);
        assert_eq!(decoded.points[&DeviceId(9)], original.points[&DeviceId(9)]);
        assert_eq!(decoded.intervals, original.intervals);
        assert!(!decoded.is_empty() && UndoRecord::default().is_empty());
    }

    #[test]
    fn damaged_records_name_where() {
        let bytes = record().encode().unwrap();
        let truncated = UndoRecord::decode(&bytes[..bytes.len() - 3]).unwrap_err().to_string();
        assert!(truncated.contains("truncated at byte"), "{truncated}");
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert!(UndoRecord::decode(&trailing).unwrap_err().to_string().contains("1 trailing bytes"));
        assert!(UndoRecord::decode(&[7]).unwrap_err().to_string().contains("unknown version 7"));
    }
}
