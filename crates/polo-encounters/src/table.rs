//! A fixed open-addressing hash table from `u128` keys to ranges, built once
//! and then only read: the exposure semi-join asks it for every streamed
//! point, nearly always for a key that is not there. So a small bitmap of the
//! keys' hashes (16 bits per key, a few megabytes that stay in cache) answers
//! most lookups before the table's slots, which do not stay in cache, are
//! touched.

/// The empty slot's key; no key the semi-join builds has all bits set.
const EMPTY: u128 = u128::MAX;

/// Keys to `(start, len)` ranges, read-only after [`Table::new`].
#[derive(Debug)]
pub(crate) struct Table {
    slots: Vec<(u128, u32, u32)>,
    shift: u32,
    /// One bit per hash of a key (a one-hash Bloom filter).
    seen: Vec<u64>,
    seen_shift: u32,
}

impl Table {
    /// A table of `entries` (distinct keys), at most half full.
    pub fn new(entries: impl ExactSizeIterator<Item = (u128, u32, u32)>) -> Self {
        let capacity = (entries.len() * 2).next_power_of_two().max(16);
        let shift = 64 - capacity.trailing_zeros();
        let seen_bits = (entries.len() * 16).next_power_of_two().max(64);
        let seen_shift = 64 - seen_bits.trailing_zeros();
        let mut table = Self { slots: vec![(EMPTY, 0, 0); capacity], shift, seen: vec![0; seen_bits / 64], seen_shift };
        let mask = capacity - 1;
        for (key, start, len) in entries {
            debug_assert_ne!(key, EMPTY);
            let mut slot = table.slot(key);
            while table.slots[slot].0 != EMPTY {
                slot = (slot + 1) & mask;
            }
            table.slots[slot] = (key, start, len);
            let bit = table.seen_bit(key);
            table.seen[bit / 64] |= 1 << (bit % 64);
        }
        table
    }

    /// The key's halves folded into 64 bits.
    fn fold(key: u128) -> u64 {
        #[allow(clippy::cast_possible_truncation)]
        let folded = (key as u64) ^ ((key >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        folded
    }

    /// Fibonacci hashing: the top bits of a multiply.
    fn slot(&self, key: u128) -> usize {
        #[allow(clippy::cast_possible_truncation)]
        let slot = (Self::fold(key).wrapping_mul(0xff51_afd7_ed55_8ccd) >> self.shift) as usize;
        slot
    }

    /// The key's bit in `seen`, from another multiplier than its slot.
    fn seen_bit(&self, key: u128) -> usize {
        #[allow(clippy::cast_possible_truncation)]
        let bit = (Self::fold(key).wrapping_mul(0xc4ce_b9fe_1a85_ec53) >> self.seen_shift) as usize;
        bit
    }

    /// The range stored under `key`.
    #[inline]
    pub fn get(&self, key: u128) -> Option<(u32, u32)> {
        let bit = self.seen_bit(key);
        if self.seen[bit / 64] & (1 << (bit % 64)) == 0 {
            return None;
        }
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
