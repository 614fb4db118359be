//! Hashing state keys cheaply without giving up flooding resistance.
//!
//! A [`StateKey`]'s derived `Hash` feeds the hasher five or six pieces (tags, lengths, 32-byte
//! arrays); hashing every access that way costs more than executing a transfer. Here a key is
//! first folded, without a key, into one `u64` from all its bytes, and only that word goes
//! through the keyed hasher of the executor's key tables. The folded words of distinct keys
//! collide only if two 32-byte hash outputs (addresses and asset ids are BLAKE3 digests)
//! collide in 64 bits, which costs about 2^32 work for one pair and 2^64 for a chosen one; the
//! executor's seed is unknown to whoever makes the keys, so buckets cannot be targeted either.

use banyan_core::tx::StateKey;
use std::hash::{Hash, Hasher};

#[inline]
fn word(bytes: &[u8; 32]) -> u64 {
    let mut w = [0u64; 4];
    for (x, c) in w.iter_mut().zip(bytes.chunks_exact(8)) {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        *x = u64::from_le_bytes(b);
    }
    w[0] ^ w[1].rotate_left(16) ^ w[2].rotate_left(32) ^ w[3].rotate_left(48)
}

const M: u64 = 0x9e37_79b9_7f4a_7c15;

/// The unkeyed fold of `key`.
#[inline]
pub(crate) fn fold(key: &StateKey) -> u64 {
    let (tag, a, b): (u64, u64, u64) = match key {
        StateKey::Account(x) => (1, word(&x.0), 0),
        StateKey::Balance(x, s) => (2, word(&x.0), word(&s.0)),
        StateKey::Validator(x) => (3, word(&x.0), 0),
        StateKey::SidechainRegistry => (4, 0, 0),
        StateKey::Sidechain(c) => (5, u64::from(c.0), 0),
        StateKey::Escrow(c, s) => (6, u64::from(c.0), word(&s.0)),
        StateKey::AssetOrigin(s) => (7, word(&s.0), 0),
        StateKey::ChannelSend(c) => (8, u64::from(c.0), 0),
        StateKey::ChannelReceive(c) => (9, u64::from(c.0), 0),
        StateKey::ChannelPending(c) => (10, u64::from(c.0), 0),
        StateKey::LightClient(c) => (11, u64::from(c.0), 0),
        StateKey::Unbonding(x) => (12, word(&x.0), 0),
        StateKey::Jailed(d) => (13, word(&d.0), 0),
        StateKey::Offense(d) => (14, word(&d.0), 0),
        StateKey::Settled(c, x) => (15, u64::from(c.0), word(&x.0)),
    };
    a ^ b.rotate_left(29).wrapping_mul(M) ^ tag.wrapping_mul(M).rotate_left(7)
}

/// A state key hashed through its fold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct HKey(pub(crate) StateKey);

impl Hash for HKey {
    #[inline]
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(fold(&self.0));
    }
}
