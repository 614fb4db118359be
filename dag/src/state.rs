//! The ledger state in memory, and its root.

use crate::error::KindMismatch;
use crate::keyhash::{fold, HKey};
use crate::output::WriteSet;
use crate::value::{StateValue, ValueKind};
use banyan_core::codec::encode_into;
use banyan_core::hash::Digest;
use banyan_core::merkle::{leaf_hash, MerkleLevels, MerkleTree};
use banyan_core::tx::StateKey;
use std::sync::Arc;

/// The state a block executes against: a map from [`StateKey`] to [`StateValue`] in which
/// default values are absent.
///
/// Lookups use a keyed hash (foldhash, seeded per map, over a fold of the key) so that crafted
/// addresses cannot flood one bucket. The seed never shows in any output: roots and write sets
/// are ordered by keys and by block order, not by hash.
///
/// [`root`](Self::root) computes the root from scratch; [`updated_root`](Self::updated_root)
/// gives the same value but keeps the tree, so that the next call only hashes again the paths
/// of the keys set since (the tree is shared between clones until one of them changes it).
#[derive(Clone, Debug, Default)]
pub struct State {
    map: hashbrown::HashMap<HKey, StateValue>,
    /// The Merkle tree of the state as of the last `updated_root`, if any.
    tree: Option<Arc<SortedTree>>,
    /// Keys set since `tree` was brought up to date (only kept while there is a tree).
    dirty: Vec<StateKey>,
}

/// The present keys in order, and the Merkle levels over their leaves.
#[derive(Clone, Debug)]
struct SortedTree {
    keys: Vec<StateKey>,
    levels: MerkleLevels,
}

/// Keys set since the last `updated_root` beyond which the kept tree is dropped (rebuilding
/// it then costs no more than catching up).
fn max_dirty(present: usize) -> usize {
    present.saturating_mul(2).saturating_add(4096)
}

/// The leaf of a present entry: the hash of the canonical encoding of `(key, value)`.
fn leaf_of(entry: &(StateKey, StateValue), buf: &mut Vec<u8>) -> Digest {
    buf.clear();
    encode_into(entry, buf);
    leaf_hash(buf)
}

impl SortedTree {
    fn build(state: &State) -> Self {
        let entries = state.sorted_entries();
        let mut buf = Vec::with_capacity(160);
        let leaves = entries.iter().map(|e| leaf_of(e, &mut buf)).collect();
        SortedTree {
            keys: entries.into_iter().map(|(k, _)| k).collect(),
            levels: MerkleLevels::from_leaf_hashes(leaves),
        }
    }

    /// Bring the tree up to date with `map` after the keys in `dirty` were set.
    fn update(&mut self, state: &State, mut dirty: Vec<StateKey>) {
        dirty.sort_unstable();
        dirty.dedup();
        let mut buf = Vec::with_capacity(160);
        let now = |k: &StateKey| state.map.get(&HKey(*k)).copied();
        // Only values changed: the leaf count and positions stay, one path per key. Decide
        // that before hashing anything.
        let mut in_place = Vec::with_capacity(dirty.len());
        let mut moved = false;
        for k in &dirty {
            match (self.keys.binary_search(k), now(k)) {
                (Ok(i), Some(v)) => in_place.push((i, (*k, v))),
                (Err(_), None) => {}
                _ => {
                    moved = true;
                    break;
                }
            }
        }
        if !moved {
            let leaves: Vec<(usize, Digest)> = in_place
                .iter()
                .map(|(i, entry)| (*i, leaf_of(entry, &mut buf)))
                .collect();
            self.levels.set_leaves(&leaves);
            return;
        }
        // Keys came or went: merge, keeping the leaves of untouched keys, and hash again
        // from the first change rightwards.
        let old_leaves = self.levels.leaves();
        let mut keys = Vec::with_capacity(self.keys.len() + dirty.len());
        let mut leaves = Vec::with_capacity(self.keys.len() + dirty.len());
        let mut first_change: Option<usize> = None;
        let (mut i, mut j) = (0, 0);
        while i < self.keys.len() || j < dirty.len() {
            if j == dirty.len() || (i < self.keys.len() && self.keys[i] < dirty[j]) {
                keys.push(self.keys[i]);
                leaves.push(old_leaves[i]);
                i += 1;
                continue;
            }
            let k = dirty[j];
            j += 1;
            let was_present = i < self.keys.len() && self.keys[i] == k;
            if was_present {
                i += 1;
            }
            match now(&k) {
                Some(v) => {
                    first_change.get_or_insert(keys.len());
                    keys.push(k);
                    leaves.push(leaf_of(&(k, v), &mut buf));
                }
                None if was_present => {
                    first_change.get_or_insert(keys.len());
                }
                None => {}
            }
        }
        let unchanged = first_change.unwrap_or(keys.len());
        self.keys = keys;
        self.levels.replace_leaves(leaves, unchanged);
    }
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
            ..Self::default()
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
        if self.tree.is_some() {
            self.dirty.push(key);
            if self.dirty.len() > max_dirty(self.map.len()) {
                self.tree = None;
                self.dirty = Vec::new();
            }
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

    /// Present entries, in no particular order (cheaper than
    /// [`sorted_entries`](Self::sorted_entries) for a scan).
    pub fn entries(&self) -> impl Iterator<Item = (StateKey, StateValue)> + '_ {
        self.map.iter().map(|(k, v)| (k.0, *v))
    }

    /// Present entries in key order.
    pub fn sorted_entries(&self) -> Vec<(StateKey, StateValue)> {
        let mut entries: Vec<(StateKey, StateValue)> = self.entries().collect();
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
            .map(|entry| leaf_of(entry, &mut buf))
            .collect();
        MerkleTree::from_leaf_hashes(leaves).root()
    }

    /// The same value as [`root`](Self::root), keeping the tree for next time: the first call
    /// builds it (like `root`); later ones hash again only the paths of the keys set since,
    /// plus everything right of the first key added or removed.
    pub fn updated_root(&mut self) -> Digest {
        let dirty = std::mem::take(&mut self.dirty);
        let tree = match self.tree.take() {
            Some(mut tree) => {
                if !dirty.is_empty() {
                    // Copies the tree only if a clone of this state still shares it.
                    Arc::make_mut(&mut tree).update(self, dirty);
                }
                tree
            }
            None => Arc::new(SortedTree::build(self)),
        };
        let root = tree.levels.root();
        self.tree = Some(tree);
        root
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
