//! The byte-level building blocks of the map rows: LEB128 varints and
//! zigzag-encoded signed deltas.
//!
//! Map rows hold sorted sequences (times, coordinates, Morton codes) whose
//! neighbours are close, so storing each value as a small delta in a varint
//! takes one to three bytes where a fixed-width field takes eight. Every
//! read is checked: a truncated varint, an overlong one or trailing bytes
//! make [`DerivedError::Corrupt`] naming the row, never a panic or a
//! silently wrong value.

use polo_store::DerivedKind;

use crate::{DerivedError, DerivedResult};

/// Appends varints to a byte buffer.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    bytes: Vec<u8>,
}

impl Writer {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self { bytes: Vec::with_capacity(capacity) }
    }

    pub(crate) fn byte(&mut self, value: u8) {
        self.bytes.push(value);
    }

    /// An unsigned LEB128 varint.
    pub(crate) fn u64(&mut self, mut value: u64) {
        while value >= 0x80 {
            // The low 7 bits, with the continuation bit.
            #[allow(clippy::cast_possible_truncation)]
            self.bytes.push((value as u8 & 0x7f) | 0x80);
            value >>= 7;
        }
        #[allow(clippy::cast_possible_truncation)]
        self.bytes.push(value as u8);
    }

    /// A signed value, zigzag-encoded so small magnitudes take few bytes.
    pub(crate) fn i64(&mut self, value: i64) {
        // Zigzag: the sign moves into the lowest bit.
        #[allow(clippy::cast_sign_loss)]
        self.u64(((value << 1) ^ (value >> 63)) as u64);
    }

    pub(crate) fn usize(&mut self, value: usize) {
        self.u64(value as u64);
    }

    pub(crate) fn finish(self) -> Vec<u8> {
        self.bytes
    }
}

/// Reads what [`Writer`] wrote, reporting damage against the row it came from.
#[derive(Debug)]
pub(crate) struct Reader<'a> {
    bytes: &'a [u8],
    position: usize,
    kind: DerivedKind,
    key: i64,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(bytes: &'a [u8], kind: DerivedKind, key: i64) -> Self {
        Self { bytes, position: 0, kind, key }
    }

    /// A [`DerivedError::Corrupt`] for this row.
    pub(crate) fn corrupt(&self, why: impl Into<String>) -> DerivedError {
        DerivedError::Corrupt { kind: self.kind.0, key: self.key, why: why.into() }
    }

    pub(crate) fn remaining(&self) -> usize {
        self.bytes.len() - self.position
    }

    pub(crate) fn byte(&mut self) -> DerivedResult<u8> {
        let byte = *self.bytes.get(self.position).ok_or_else(|| self.corrupt("truncated"))?;
        self.position += 1;
        Ok(byte)
    }

    pub(crate) fn u64(&mut self) -> DerivedResult<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let byte = self.byte()?;
            let bits = u64::from(byte & 0x7f);
            if shift == 63 && bits > 1 {
                return Err(self.corrupt("varint overflows 64 bits"));
            }
            value |= bits << shift;
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(self.corrupt("varint longer than 10 bytes"))
    }

    pub(crate) fn i64(&mut self) -> DerivedResult<i64> {
        let raw = self.u64()?;
        // Inverse zigzag.
        #[allow(clippy::cast_possible_wrap)]
        Ok((raw >> 1) as i64 ^ -((raw & 1) as i64))
    }

    /// A count that must fit `usize` and cannot exceed what the remaining
    /// bytes could hold at `min_bytes_each`, so a damaged length never makes
    /// a huge allocation.
    pub(crate) fn count(&mut self, min_bytes_each: usize) -> DerivedResult<usize> {
        let n = self.u64()?;
        let n = usize::try_from(n).map_err(|_| self.corrupt(format!("count {n} is too large")))?;
        if n.saturating_mul(min_bytes_each.max(1)) > self.remaining() {
            return Err(self.corrupt(format!("count {n} exceeds the {} bytes left", self.remaining())));
        }
        Ok(n)
    }

    /// Succeeds when every byte was read.
    pub(crate) fn finish(&self) -> DerivedResult<()> {
        if self.position == self.bytes.len() {
            Ok(())
        } else {
            Err(self.corrupt(format!("{} trailing bytes", self.remaining())))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KIND: DerivedKind = DerivedKind(99);

    #[test]
    fn varints_round_trip_at_every_width() {
        let unsigned = [0, 1, 127, 128, 300, 16_383, 16_384, u64::from(u32::MAX), u64::MAX - 1, u64::MAX];
        let signed = [0, 1, -1, 63, -64, 64, -65, i64::from(i32::MIN), i64::MAX, i64::MIN];
        let mut writer = Writer::default();
        unsigned.iter().for_each(|&v| writer.u64(v));
        signed.iter().for_each(|&v| writer.i64(v));
        let bytes = writer.finish();
        let mut reader = Reader::new(&bytes, KIND, 7);
        for v in unsigned {
            assert_eq!(reader.u64().unwrap(), v);
        }
        for v in signed {
            assert_eq!(reader.i64().unwrap(), v);
        }
        reader.finish().unwrap();
        let mut small = Writer::default();
        small.i64(-64);
        assert_eq!(small.finish().len(), 1, "zigzag keeps small negatives in one byte");
    }

    #[test]
    fn damage_is_reported_not_panicked() {
        let corrupt = |bytes: &[u8]| {
            let mut reader = Reader::new(bytes, KIND, 7);
            let error = reader.u64().and_then(|_| reader.finish()).unwrap_err();
            assert!(matches!(error, DerivedError::Corrupt { kind: 99, key: 7, .. }), "{error}");
        };
        corrupt(&[]);
        corrupt(&[0x80]);
        corrupt(&[0xff; 11]);
        corrupt(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02]);
        corrupt(&[0x01, 0x00]);
        let mut reader = Reader::new(&[0x7f, 1, 2], KIND, 1);
        assert!(reader.count(1).is_err(), "127 items cannot fit in 2 bytes");
    }
}
