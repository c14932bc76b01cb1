//! A fixed open-addressing hash table from `u128` keys to ranges, built once
//! and then only read: the exposure semi-join asks it once per streamed
//! point, so a lookup is one multiply and, nearly always, one cache line.

/// The empty slot's key; no key the semi-join builds has all bits set.
const EMPTY: u128 = u128::MAX;

/// Keys to `(start, len)` ranges, read-only after [`Table::new`].
#[derive(Debug)]
pub(crate) struct Table {
    slots: Vec<(u128, u32, u32)>,
    shift: u32,
}

impl Table {
    /// A table of `entries` (distinct keys), at most half full.
    pub fn new(entries: impl ExactSizeIterator<Item = (u128, u32, u32)>) -> Self {
        let capacity = (entries.len() * 2).next_power_of_two().max(16);
        let shift = 64 - capacity.trailing_zeros();
        let mut table = Self { slots: vec![(EMPTY, 0, 0); capacity], shift };
        let mask = capacity - 1;
        for (key, start, len) in entries {
            debug_assert_ne!(key, EMPTY);
            let mut slot = table.slot(key);
            while table.slots[slot].0 != EMPTY {
                slot = (slot + 1) & mask;
            }
            table.slots[slot] = (key, start, len);
        }
        table
    }

    fn slot(&self, key: u128) -> usize {
        // Fold the halves, then Fibonacci hashing: the top bits of a multiply.
        #[allow(clippy::cast_possible_truncation)]
        let folded = (key as u64) ^ ((key >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        #[allow(clippy::cast_possible_truncation)]
        let slot = (folded.wrapping_mul(0xff51_afd7_ed55_8ccd) >> self.shift) as usize;
        slot
    }

    /// The range stored under `key`.
    #[inline]
    pub fn get(&self, key: u128) -> Option<(u32, u32)> {
        let mask = self.slots.len() - 1;
        let mut slot = self.slot(key);
        loop {
            let (k, start, len) = self.slots[slot];
            if k == key {
                return Some((start, len));
            }
            if k == EMPTY {
                return None;
            }
            slot = (slot + 1) & mask;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_what_was_put_and_nothing_else() {
        let keys: Vec<u128> = (0..1000u128).map(|k| k * 7 + (k << 70)).collect();
        let table = Table::new(keys.iter().zip(0u32..1000).map(|(&k, i)| (k, i, i + 1)));
        for (&k, i) in keys.iter().zip(0u32..) {
            assert_eq!(table.get(k), Some((i, i + 1)));
        }
        assert_eq!(table.get(1), None);
        assert_eq!(Table::new(std::iter::empty()).get(5), None);
    }
}
