//! Derived data: what polo computes from the points (stays, legs, places,
//! statistics, map levels) and the user's edits of it, kept so that a day
//! view or a map overview is a lookup rather than a computation.
//!
//! The store does not know what a stay is. It keeps opaque values under
//! `(user, kind, scope, key)`, where the layer that computes them (the
//! timeline service) chooses the [`DerivedKind`] numbers, the key layout
//! (a start time, a day number, a place id) and the encoding. That keeps the
//! trait small, lets the derived model evolve without store migrations, and
//! still gives every backend the two operations the computation needs: read
//! a key range in order, and replace key ranges atomically.
//!
//! A recomputation replaces a window in one [`DerivedBatch`] (deletes first,
//! then puts), so a reader sees either the old window or the new one. User
//! edits (a renamed place, a corrected transport mode) are written with
//! `edit = true` and append a [`crate::ChangeKind::Edit`] change, because
//! unlike recomputable data they must replicate and be backed up as such.
//! Named [`Store::derived_cursor`](crate::Store::derived_cursor)s record
//! how far into the change log a computation has got.

use polo_domain::DeviceId;

use crate::{StoreError, StoreResult};

/// A class of derived rows; the numbers belong to the computing layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct DerivedKind(pub u16);

/// Whose rows: the user as a whole (places, statistics), or one device
/// (that device's stays, legs and map levels).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum DerivedScope {
    /// Rows about the user as a whole.
    User,
    /// Rows about one device's track.
    Device(DeviceId),
}

impl DerivedScope {
    /// The number backends store: 0 for [`DerivedScope::User`], else the
    /// device id (device ids are positive).
    #[must_use]
    pub fn code(self) -> i64 {
        match self {
            Self::User => 0,
            Self::Device(device) => device.0,
        }
    }

    /// The inverse of [`DerivedScope::code`].
    #[must_use]
    pub fn from_code(code: i64) -> Self {
        if code == 0 { Self::User } else { Self::Device(DeviceId(code)) }
    }
}

/// One stored value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DerivedRow {
    /// Its class.
    pub kind: DerivedKind,
    /// Whose.
    pub scope: DerivedScope,
    /// Its position within (kind, scope); ranges are read in key order.
    pub key: i64,
    /// The encoded value.
    pub value: Vec<u8>,
}

/// The rows of one (kind, scope) with `from <= key < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DerivedRange {
    /// Class.
    pub kind: DerivedKind,
    /// Whose.
    pub scope: DerivedScope,
    /// Inclusive lower key.
    pub from: i64,
    /// Exclusive upper key.
    pub to: i64,
}

impl DerivedRange {
    /// Every key of (kind, scope).
    #[must_use]
    pub fn all(kind: DerivedKind, scope: DerivedScope) -> Self {
        Self { kind, scope, from: i64::MIN, to: i64::MAX }
    }

    /// One key.
    #[must_use]
    pub fn key(kind: DerivedKind, scope: DerivedScope, key: i64) -> Self {
        Self { kind, scope, from: key, to: key.saturating_add(1) }
    }
}

/// An atomic replacement: every range in `delete` is emptied, then every
/// row in `put` is stored (replacing a row with the same identity).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DerivedBatch {
    /// Ranges to empty first.
    pub delete: Vec<DerivedRange>,
    /// Rows to store.
    pub put: Vec<DerivedRow>,
}

impl DerivedBatch {
    /// Nothing to do.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.delete.is_empty() && self.put.is_empty()
    }

    /// The encoding backends keep an edit's batch in (`edit_log`), so that
    /// the replication feed can resend it: little-endian, length-prefixed.
    ///
    /// ```text
    /// u32 deletes, then per range: u16 kind, i64 scope, i64 from, i64 to
    /// u32 puts,    then per row:   u16 kind, i64 scope, i64 key, u32 length, value
    /// ```
    #[must_use]
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(self.delete.len() as u32).to_le_bytes());
        for d in &self.delete {
            out.extend_from_slice(&d.kind.0.to_le_bytes());
            for v in [d.scope.code(), d.from, d.to] {
                out.extend_from_slice(&v.to_le_bytes());
            }
        }
        out.extend_from_slice(&(self.put.len() as u32).to_le_bytes());
        for p in &self.put {
            out.extend_from_slice(&p.kind.0.to_le_bytes());
            for v in [p.scope.code(), p.key] {
                out.extend_from_slice(&v.to_le_bytes());
            }
            out.extend_from_slice(&(p.value.len() as u32).to_le_bytes());
            out.extend_from_slice(&p.value);
        }
        out
    }

    /// The inverse of [`DerivedBatch::encode`].
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for truncated data or trailing bytes.
    pub fn decode(mut data: &[u8]) -> StoreResult<Self> {
        fn take<const N: usize>(data: &mut &[u8]) -> StoreResult<[u8; N]> {
            let (head, rest) =
                data.split_first_chunk::<N>().ok_or_else(|| StoreError::Corrupt("truncated edit_log batch".into()))?;
            *data = rest;
            Ok(*head)
        }
        let i64_of = |data: &mut &[u8]| take::<8>(data).map(i64::from_le_bytes);
        let mut batch = Self::default();
        for _ in 0..u32::from_le_bytes(take(&mut data)?) {
            let kind = DerivedKind(u16::from_le_bytes(take(&mut data)?));
            let scope = DerivedScope::from_code(i64_of(&mut data)?);
            let (from, to) = (i64_of(&mut data)?, i64_of(&mut data)?);
            batch.delete.push(DerivedRange { kind, scope, from, to });
        }
        for _ in 0..u32::from_le_bytes(take(&mut data)?) {
            let kind = DerivedKind(u16::from_le_bytes(take(&mut data)?));
            let scope = DerivedScope::from_code(i64_of(&mut data)?);
            let key = i64_of(&mut data)?;
            let len = u32::from_le_bytes(take(&mut data)?) as usize;
            if data.len() < len {
                return Err(StoreError::Corrupt("truncated edit_log value".into()));
            }
            let (value, rest) = data.split_at(len);
            data = rest;
            batch.put.push(DerivedRow { kind, scope, key, value: value.to_vec() });
        }
        if !data.is_empty() {
            return Err(StoreError::Corrupt("trailing bytes in an edit_log batch".into()));
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn edit_batches_round_trip_and_refuse_damage() {
        let batch = DerivedBatch {
            delete: vec![DerivedRange { kind: DerivedKind(7), scope: DerivedScope::User, from: -3, to: i64::MAX }],
            put: vec![
                DerivedRow {
                    kind: DerivedKind(7),
                    scope: DerivedScope::Device(DeviceId(9)),
                    key: 1,
                    value: b"Home".to_vec(),
                },
                DerivedRow { kind: DerivedKind(8), scope: DerivedScope::User, key: -1, value: vec![] },
            ],
        };
        let data = batch.encode();
        assert_eq!(DerivedBatch::decode(&data).unwrap(), batch);
        assert_eq!(DerivedBatch::decode(&DerivedBatch::default().encode()).unwrap(), DerivedBatch::default());
        assert!(matches!(DerivedBatch::decode(&data[..data.len() - 1]), Err(StoreError::Corrupt(_))));
        let mut longer = data.clone();
        longer.push(0);
        assert!(matches!(DerivedBatch::decode(&longer), Err(StoreError::Corrupt(_))));
    }
}
