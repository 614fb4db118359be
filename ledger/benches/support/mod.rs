//! What the benches share.

use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// A seeded stream for drawing workloads (the same seed draws the same workload).
pub struct Rng(ChaCha8Rng);

impl Rng {
    /// The stream of `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(ChaCha8Rng::seed_from_u64(seed))
    }

    /// A number below `n` (at least 1).
    pub fn below(&mut self, n: usize) -> usize {
        self.0.gen_range(0..n)
    }
}
