//! A fixed open-addressing hash table from `u128` keys to ranges, built once
//! and then only read: the exposure semi-join asks it for every streamed
//! point, nearly always for a key that is not there. So a small bitmap of the
//! keys' hashes (16 bits per key, a few megabytes that stay in cache) answers
//! most lookups before the table's slots, which do not stay in cache, are
//! touched.

/// The empty slot's key; no key the semi-join builds has all bits set.
const EMPTY: u128 = u128::MAX;

/// A one-hash Bloom filter over `u128` keys: "certainly not there" or "maybe".
#[derive(Debug)]
pub(crate) struct Filter {
    bits: Vec<u64>,
    shift: u32,
}

impl Filter {
    /// An empty filter for about `keys` keys at `bits_per_key` bits each.
    pub fn new(keys: usize, bits_per_key: usize) -> Self {
        let bits = (keys * bits_per_key).next_power_of_two().max(64);
        Self { bits: vec![0; bits / 64], shift: 64 - bits.trailing_zeros() }
    }

    fn bit(&self, key: u128) -> usize {
        #[allow(clippy::cast_possible_truncation)]
        let bit = (fold(key).wrapping_mul(0xc4ce_b9fe_1a85_ec53) >> self.shift) as usize;
        bit
    }

    pub fn insert(&mut self, key: u128) {
        let bit = self.bit(key);
        self.bits[bit / 64] |= 1 << (bit % 64);
    }

    /// False when `key` was certainly never inserted.
    #[inline]
    pub fn may_contain(&self, key: u128) -> bool {
        let bit = self.bit(key);
        self.bits[bit / 64] & (1 << (bit % 64)) != 0
    }
}

/// The key's halves folded into 64 bits.
fn fold(key: u128) -> u64 {
    #[allow(clippy::cast_possible_truncation)]
    let folded = (key as u64) ^ ((key >> 64) as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    folded
}

/// Keys to `(start, len)` ranges, read-only after [`Table::new`].
#[derive(Debug)]
pub(crate) struct Table {
    slots: Vec<(u128, u32, u32)>,
    shift: u32,
    /// The keys, 16 bits each.
    seen: Filter,
}

impl Table {
    /// A table of `entries` (distinct keys), at most half full.
    pub fn new(entries: impl ExactSizeIterator<Item = (u128, u32, u32)>) -> Self {
        let capacity = (entries.len() * 2).next_power_of_two().max(16);
        let shift = 64 - capacity.trailing_zeros();
        let mut table = Self { slots: vec![(EMPTY, 0, 0); capacity], shift, seen: Filter::new(entries.len(), 16) };
        let mask = capacity - 1;
        for (key, start, len) in entries {
            debug_assert_ne!(key, EMPTY);
            let mut slot = table.slot(key);
            while table.slots[slot].0 != EMPTY {
                slot = (slot + 1) & mask;
            }
            table.slots[slot] = (key, start, len);
            table.seen.insert(key);
        }
        table
    }

    /// Fibonacci hashing: the top bits of a multiply.
    fn slot(&self, key: u128) -> usize {
        #[allow(clippy::cast_possible_truncation)]
        let slot = (fold(key).wrapping_mul(0xff51_afd7_ed55_8ccd) >> self.shift) as usize;
        slot
    }

    /// The range stored under `key`.
    #[inline]
    pub fn get(&self, key: u128) -> Option<(u32, u32)> {
        if !self.seen.may_contain(key) {
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

    #[test]
    fn the_filter_never_forgets() {
        let mut filter = Filter::new(500, 8);
        for k in 0..500u128 {
            filter.insert((k << 64) | (k * 31));
        }
        assert!((0..500u128).all(|k| filter.may_contain((k << 64) | (k * 31))));
        let misses = (1000..2000u128).filter(|&k| !filter.may_contain((k << 64) | k)).count();
        assert!(misses > 800, "{misses} of 1000 absent keys excluded");
    }
}
