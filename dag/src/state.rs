//! The ledger state in memory, and its root.

use crate::error::KindMismatch;
use crate::keyhash::{fold, HKey};
use crate::output::WriteSet;
use crate::value::{StateValue, ValueKind};
use banyan_core::codec::encode_into;
use banyan_core::hash::Digest;
use banyan_core::merkle::{leaf_hash, MerkleTree};
use banyan_core::tx::StateKey;

/// The state a block executes against: a map from [`StateKey`] to [`StateValue`] in which
/// default values are absent.
///
/// Lookups use a keyed hash (foldhash, seeded per map, over a fold of the key) so that crafted
/// addresses cannot flood one bucket. The seed never shows in any output: roots and write sets
/// are ordered by keys and by block order, not by hash.
#[derive(Clone, Debug, Default)]
pub struct State {
    map: hashbrown::HashMap<HKey, StateValue>,
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        self.map == other.map
    }
}
impl Eq for State {}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// An empty state with room for `capacity` entries.
    pub fn with_capacity(capacity: usize) -> Self {
        State {
            map: hashbrown::HashMap::with_capacity(capacity),
        }
    }

    /// Number of keys present (holding a non-default value).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The value under `key` (its kind's default when absent).
    pub fn get(&self, key: &StateKey) -> StateValue {
        self.map
            .get(&HKey(*key))
            .copied()
            .unwrap_or_else(|| StateValue::default_for(key))
    }

    /// Set `key` to `value`; a default value removes the key. Refuses a value of another kind
    /// than the key holds.
    pub fn set(&mut self, key: StateKey, value: StateValue) -> Result<(), KindMismatch> {
        let expected = ValueKind::of(&key);
        if value.kind() != expected {
            return Err(KindMismatch {
                key,
                expected,
                found: value.kind(),
            });
        }
        if value.is_default() {
            self.map.remove(&HKey(key));
        } else {
            self.map.insert(HKey(key), value);
        }
        Ok(())
    }

    /// Apply a block's write set.
    pub fn apply(&mut self, write_set: &WriteSet) {
        for (key, value) in write_set.iter() {
            // A write set only ever holds values of the key's kind (the executor checks every
            // write), so this cannot fail; a mismatch would be skipped rather than stored.
            let _ = self.set(key, value);
        }
    }

    /// Present entries in key order.
    pub fn sorted_entries(&self) -> Vec<(StateKey, StateValue)> {
        let mut entries: Vec<(StateKey, StateValue)> =
            self.map.iter().map(|(k, v)| (k.0, *v)).collect();
        entries.sort_unstable_by_key(|a| a.0);
        entries
    }

    /// The state root: the Merkle root (see [`banyan_core::merkle`]) over the present entries
    /// in key order, each leaf the canonical encoding of `(key, value)`. Equal states have
    /// equal roots whatever the order they were built in.
    pub fn root(&self) -> Digest {
        let mut buf = Vec::with_capacity(160);
        let leaves = self
            .sorted_entries()
            .iter()
            .map(|entry| {
                buf.clear();
                encode_into(entry, &mut buf);
                leaf_hash(&buf)
            })
            .collect();
        MerkleTree::from_leaf_hashes(leaves).root()
    }

    /// The hasher of this map; the executor hashes each access with it once.
    pub(crate) fn hasher(&self) -> &hashbrown::DefaultHashBuilder {
        self.map.hasher()
    }

    /// The hash of `key` in this map.
    #[inline]
    pub(crate) fn hash_key(hasher: &hashbrown::DefaultHashBuilder, key: &StateKey) -> u64 {
        use std::hash::BuildHasher;
        hasher.hash_one(fold(key))
    }

    /// Look up `key` whose hash is `hash` (from [`hash_key`](Self::hash_key)).
    #[inline]
    pub(crate) fn get_hashed(&self, hash: u64, key: &StateKey) -> Option<&StateValue> {
        self.map
            .raw_entry()
            .from_key_hashed_nocheck(hash, &HKey(*key))
            .map(|(_, v)| v)
    }
}
