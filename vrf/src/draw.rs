//! Deterministic randomness from a seed: a counter-mode hash stream, unbiased integers,
//! shuffles, stake-weighted picks and proportional sampling without replacement.
//!
//! Everything here is integer arithmetic on the stream's words; nothing depends on the
//! platform, the allocator or a float rounding mode. The exact rules are part of consensus and
//! are spelled out on each item (the crate docs give the overview).

use crate::seed::EpochSeed;
use banyan_core::hash::{Domain, Hasher};
use std::num::{NonZeroU128, NonZeroU64};

/// Most context bytes a stream is keyed with.
pub const MAX_CONTEXT_BYTES: usize = 32;

/// A stream of uniform 64-bit words keyed by a seed, a domain and a fixed-length context.
///
/// Block `i` is `H(domain, seed || context || i as u64 little-endian)` (32 bytes); the stream
/// is the blocks in order, each read as four little-endian `u64` words in order. Each domain
/// has one context layout of fixed length, so no two (domain, context) pairs share a stream.
pub struct DrawStream {
    domain: Domain,
    seed: [u8; 32],
    context: [u8; MAX_CONTEXT_BYTES],
    context_len: usize,
    block_index: u64,
    block: [u8; 32],
    next_word: usize,
}

impl DrawStream {
    /// The stream of `seed` in `domain` under `context` (only its first
    /// [`MAX_CONTEXT_BYTES`] bytes are used; Banyan's contexts are at most 21 bytes).
    pub fn new(seed: &EpochSeed, domain: Domain, context: &[u8]) -> Self {
        let context_len = context.len().min(MAX_CONTEXT_BYTES);
        let mut ctx = [0u8; MAX_CONTEXT_BYTES];
        ctx[..context_len].copy_from_slice(&context[..context_len]);
        DrawStream {
            domain,
            seed: *seed.as_bytes(),
            context: ctx,
            context_len,
            block_index: 0,
            block: [0u8; 32],
            // Forces the first block to be computed on the first read.
            next_word: 4,
        }
    }

    fn refill(&mut self) {
        let mut h = Hasher::new(self.domain);
        h.update(&self.seed)
            .update(&self.context[..self.context_len])
            .update(&self.block_index.to_le_bytes());
        self.block = h.finalize().0;
        // 2^64 blocks are never read; wrapping keeps this total without a panic path.
        self.block_index = self.block_index.wrapping_add(1);
        self.next_word = 0;
    }

    /// The next word.
    pub fn next_u64(&mut self) -> u64 {
        if self.next_word == 4 {
            self.refill();
        }
        let i = self.next_word * 8;
        let mut w = [0u8; 8];
        w.copy_from_slice(&self.block[i..i + 8]);
        self.next_word += 1;
        u64::from_le_bytes(w)
    }

    /// The next two words as one `u128`, the first word the low half.
    pub fn next_u128(&mut self) -> u128 {
        let lo = self.next_u64() as u128;
        let hi = self.next_u64() as u128;
        lo | (hi << 64)
    }

    /// A uniform integer in `[0, n)`: draw words `x` until `x >= 2^64 mod n`, return `x mod n`
    /// (rejection sampling, so no value is favoured; a draw is rejected with probability
    /// below `n / 2^64`).
    pub fn below(&mut self, n: NonZeroU64) -> u64 {
        let n = n.get();
        let threshold = n.wrapping_neg() % n;
        loop {
            let x = self.next_u64();
            if x >= threshold {
                return x % n;
            }
        }
    }

    /// A uniform integer in `[0, n)` from `u128` draws, by the same rule as [`Self::below`].
    pub fn below_u128(&mut self, n: NonZeroU128) -> u128 {
        let n = n.get();
        let threshold = n.wrapping_neg() % n;
        loop {
            let x = self.next_u128();
            if x >= threshold {
                return x % n;
            }
        }
    }

    /// A uniform index in `[0, len)` for a non-empty range (`len = 0` yields 0).
    fn index(&mut self, len: usize) -> usize {
        match NonZeroU64::new(len as u64) {
            // The result is below `len`, so it fits a usize.
            Some(n) => self.below(n) as usize,
            None => 0,
        }
    }

    /// Shuffle `items` in place (Fisher–Yates): for `i` from `len - 1` down to 1, swap item
    /// `i` with item `below(i + 1)`.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.index(i + 1);
            items.swap(i, j);
        }
    }

    /// Move `k` uniformly chosen items to the front of `items` (a partial forward
    /// Fisher–Yates: for `i` in `0..k`, swap item `i` with item `i + below(len - i)`).
    /// `k` is capped at `len`.
    pub fn choose_front<T>(&mut self, items: &mut [T], k: usize) {
        let k = k.min(items.len());
        for i in 0..k {
            let j = i + self.index(items.len() - i);
            items.swap(i, j);
        }
    }
}

/// The index of the item a point `x` in `[0, total)` falls on, given the running totals
/// `cumulative[i] = stake[0] + ... + stake[i]`: the first `i` with `x < cumulative[i]`.
pub fn pick_by_cumulative(cumulative: &[u128], x: u128) -> usize {
    cumulative.partition_point(|&c| c <= x)
}

/// Sample `m` distinct candidates with inclusion probability proportional to stake, capped at
/// one (systematic PPS sampling on a random order). `candidates` are `(id, stake)` in
/// canonical order, stakes non-zero. Returns the chosen ids: the certain ones first, in the
/// order they were taken, then the sampled ones in shuffled order.
///
/// 1. If `m >= candidates.len()`, every candidate is chosen, in the given order.
/// 2. *Certain members.* Let `W` be the remaining stake. While `m > 0` and `m * s >= W` for
///    the largest remaining stake `s` (ties: the earliest candidate), take that candidate,
///    `m -= 1`, `W -= s`. Each taken candidate would be included with probability >= 1.
/// 3. Shuffle the remaining candidates with [`DrawStream::shuffle`], draw
///    `u = below_u128(W)`, lay the candidates end to end as intervals of length `m * stake`
///    (total `m * W`), and choose the candidates covering the points `u + j * W` for
///    `j = 0..m`. Every interval is shorter than `W`, so holds at most one point: exactly `m`
///    distinct candidates are chosen and candidate `i` is chosen with probability exactly
///    `m * stake_i / W`.
pub fn sample_proportional(
    stream: &mut DrawStream,
    candidates: &[(usize, u64)],
    m: usize,
) -> Vec<usize> {
    if m >= candidates.len() {
        return candidates.iter().map(|&(id, _)| id).collect();
    }
    let mut m_left = m as u128;
    let mut total: u128 = candidates.iter().map(|&(_, s)| s as u128).sum();
    let mut chosen = Vec::with_capacity(m);

    let max_stake = candidates.iter().map(|&(_, s)| s).max().unwrap_or(0) as u128;
    let mut rest: Vec<(usize, u64)>;
    if m_left > 0 && m_left * max_stake >= total {
        // Some candidates are certain: walk them by stake, largest first (stable sort keeps
        // the earliest of equal stakes first).
        let mut by_stake: Vec<usize> = (0..candidates.len()).collect();
        by_stake.sort_by(|&a, &b| candidates[b].1.cmp(&candidates[a].1));
        let mut taken = vec![false; candidates.len()];
        for &pos in &by_stake {
            let s = candidates[pos].1 as u128;
            if m_left == 0 || m_left * s < total {
                break;
            }
            taken[pos] = true;
            chosen.push(candidates[pos].0);
            m_left -= 1;
            total -= s;
        }
        rest = candidates
            .iter()
            .zip(&taken)
            .filter(|(_, &t)| !t)
            .map(|(&c, _)| c)
            .collect();
    } else {
        rest = candidates.to_vec();
    }
    let Some(w) = NonZeroU128::new(total) else {
        return chosen;
    };
    if m_left == 0 {
        return chosen;
    }
    stream.shuffle(&mut rest);
    let mut point = stream.below_u128(w);
    let mut points_left = m_left;
    let mut end: u128 = 0;
    for &(id, s) in &rest {
        end += m_left * s as u128;
        if point < end {
            chosen.push(id);
            points_left -= 1;
            if points_left == 0 {
                break;
            }
            point += total;
        }
    }
    chosen
}
