//! The generator's only source of randomness: SplitMix64, seeded explicitly.
//!
//! Every stream (the planner, each device's sampler) owns its own `Rng`
//! derived from the life's seed and a fixed label, so generating the points
//! of one device never shifts the plan or another device's fixes.

/// A small, fast, deterministic PRNG (SplitMix64).
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator for `seed`, decorrelated from others by `stream`.
    #[must_use]
    pub fn new(seed: u64, stream: u64) -> Self {
        let mut rng = Self(seed ^ stream.wrapping_mul(0xA076_1D64_78BD_642F));
        rng.next_u64();
        rng
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `[0, 1)`.
    pub fn unit(&mut self) -> f64 {
        #[allow(clippy::cast_precision_loss)]
        let v = (self.next_u64() >> 11) as f64;
        v / (1u64 << 53) as f64
    }

    /// Uniform in `[lo, hi)`.
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `[0, n)`; 0 when `n` is 0.
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next_u64() % n }
    }

    /// Uniform integer in `[lo, hi]`.
    pub fn between(&mut self, lo: i64, hi: i64) -> i64 {
        #[allow(clippy::cast_possible_wrap, clippy::cast_sign_loss)]
        let span = (hi - lo + 1).max(1) as u64;
        #[allow(clippy::cast_possible_wrap)]
        let v = lo + self.below(span) as i64;
        v
    }

    /// An index into a slice of `len` elements (`len > 0`).
    pub fn index(&mut self, len: usize) -> usize {
        usize::try_from(self.below(len as u64)).unwrap_or(0)
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Standard normal (Box–Muller).
    pub fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-12);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }

    /// An index drawn with weights proportional to `1 / (rank + 1)^s` (Zipf):
    /// a few favourites, a long tail.
    pub fn zipf(&mut self, len: usize, s: f64) -> usize {
        #[allow(clippy::cast_precision_loss)]
        let total: f64 = (0..len).map(|i| 1.0 / ((i + 1) as f64).powf(s)).sum();
        let mut x = self.unit() * total;
        for i in 0..len {
            #[allow(clippy::cast_precision_loss)]
            let w = 1.0 / ((i + 1) as f64).powf(s);
            if x < w {
                return i;
            }
            x -= w;
        }
        len.saturating_sub(1)
    }
}

#[cfg(test)]
mod tests {
    use super::Rng;

    #[test]
    fn same_seed_same_stream_and_streams_differ() {
        let (mut a, mut b, mut c) = (Rng::new(7, 1), Rng::new(7, 1), Rng::new(7, 2));
        let xs: Vec<u64> = (0..5).map(|_| a.next_u64()).collect();
        let ys: Vec<u64> = (0..5).map(|_| b.next_u64()).collect();
        let zs: Vec<u64> = (0..5).map(|_| c.next_u64()).collect();
        assert_eq!(xs, ys);
        assert_ne!(xs, zs);
    }

    #[test]
    fn zipf_favours_the_first_ranks() {
        let mut rng = Rng::new(1, 0);
        let mut counts = [0u32; 20];
        for _ in 0..10_000 {
            counts[rng.zipf(20, 1.1)] += 1;
        }
        assert!(counts[0] > counts[5] && counts[5] > counts[19], "{counts:?}");
    }
}
