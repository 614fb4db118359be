//! The ledger state in memory, and its root.

use crate::codec::encode_into;
use crate::hash::{hash, Digest, Domain};
use crate::smt::{Change, Leaf, SmtProof, SmtProofError, SparseMerkleTree};
use crate::tx::StateKey;
use crate::value::{KindMismatch, StateValue, ValueKind};
use std::sync::Arc;

/// What a leaf of the state tree holds.
pub type Entry = (StateKey, StateValue);

/// The state a block executes against: a map from [`StateKey`] to [`StateValue`] in which
/// default values are absent, kept as a persistent sparse Merkle tree
/// ([`crate::smt`]).
///
/// Each key sits at the path `H(Domain::StatePath, encode(key))` (so nobody chooses where a
/// key lands or how deep), and its leaf commits to `H(Domain::StateEntry, encode((key,
/// value)))`. Cloning a state is O(1) and the clone shares every node; [`apply`](Self::apply)
/// copies and hashes only the paths of the keys a block wrote, so executing a block on a
/// speculative parent costs what the block changes, not what the chain holds. The root is
/// always up to date; [`prove`](Self::prove) gives existence and non-existence proofs
/// against it, which [`verify_entry`] checks.
#[derive(Clone, Debug, Default)]
pub struct State {
    tree: SparseMerkleTree<Entry>,
}

impl PartialEq for State {
    fn eq(&self, other: &Self) -> bool {
        // Equal roots are equal contents (collision resistance).
        self.tree.root() == other.tree.root()
    }
}
impl Eq for State {}

/// The path of `key` in the state tree.
pub fn path_of(key: &StateKey) -> Digest {
    let mut buf = Vec::with_capacity(80);
    encode_into(key, &mut buf);
    hash(Domain::StatePath, &buf)
}

/// The hash a present entry's leaf commits to.
pub fn entry_hash(key: &StateKey, value: &StateValue) -> Digest {
    let mut buf = Vec::with_capacity(160);
    encode_into(&(*key, *value), &mut buf);
    hash(Domain::StateEntry, &buf)
}

/// Check `proof` that `key` holds `value` under the state root `root`. A default value is
/// absent from the tree, so for it the proof must be one of non-existence.
pub fn verify_entry(
    root: &Digest,
    key: &StateKey,
    value: &StateValue,
    proof: &SmtProof,
) -> Result<(), SmtProofError> {
    let path = path_of(key);
    if value.is_default() {
        proof.verify_absent(root, &path)
    } else {
        proof.verify_present(root, &path, &entry_hash(key, value))
    }
}

fn leaf(path: Digest, key: StateKey, value: StateValue) -> Arc<Leaf<Entry>> {
    Arc::new(Leaf::new(path, entry_hash(&key, &value), (key, value)))
}

/// The tree change that sets `key` to `value` (a default value removes the key).
fn change(key: StateKey, value: StateValue) -> Change<Entry> {
    let path = path_of(&key);
    (path, (!value.is_default()).then(|| leaf(path, key, value)))
}

fn check_kind(key: &StateKey, value: &StateValue) -> Result<(), KindMismatch> {
    let expected = ValueKind::of(key);
    if value.kind() != expected {
        return Err(KindMismatch {
            key: *key,
            expected,
            found: value.kind(),
        });
    }
    Ok(())
}

impl State {
    /// An empty state.
    pub fn new() -> Self {
        Self::default()
    }

    /// The state holding `entries` (default values are left out), built in one pass.
    pub fn from_entries(entries: impl IntoIterator<Item = Entry>) -> Result<Self, KindMismatch> {
        let mut leaves = Vec::new();
        for (key, value) in entries {
            check_kind(&key, &value)?;
            leaves.extend(change(key, value).1);
        }
        Ok(State {
            tree: SparseMerkleTree::from_leaves(leaves),
        })
    }

    /// Number of keys present (holding a non-default value).
    pub fn len(&self) -> usize {
        self.tree.len() as usize
    }

    /// Whether no key is present.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The value under `key` (its kind's default when absent).
    pub fn get(&self, key: &StateKey) -> StateValue {
        self.lookup(key)
            .copied()
            .unwrap_or_else(|| StateValue::default_for(key))
    }

    /// The value under `key` if present.
    pub fn lookup(&self, key: &StateKey) -> Option<&StateValue> {
        self.tree.get(&path_of(key)).map(|l| &l.value().1)
    }

    /// Set `key` to `value`; a default value removes the key. Refuses a value of another kind
    /// than the key holds. One path is copied and hashed; use [`apply`](Self::apply) or
    /// [`set_many`](Self::set_many) for many keys at once.
    pub fn set(&mut self, key: StateKey, value: StateValue) -> Result<(), KindMismatch> {
        self.set_many([(key, value)])
    }

    /// Set several keys at once (a later write to a key wins), hashing each changed path once.
    /// Nothing changes if a value is of another kind than its key.
    pub fn set_many(
        &mut self,
        entries: impl IntoIterator<Item = Entry>,
    ) -> Result<(), KindMismatch> {
        let mut changes: Vec<Change<Entry>> = Vec::new();
        for (key, value) in entries {
            check_kind(&key, &value)?;
            changes.push(change(key, value));
        }
        if !changes.is_empty() {
            self.tree = self.tree.update(changes);
        }
        Ok(())
    }

    /// Apply a block's write set: entries with distinct keys, each value of its key's kind
    /// (what the executor's write set holds; a default value deletes the key).
    pub fn apply(&mut self, write_set: impl IntoIterator<Item = Entry>) {
        let changes: Vec<Change<Entry>> = write_set
            .into_iter()
            // The executor checks the kind of every write, so this filter never drops
            // anything from a write set; a mismatch would be skipped rather than stored.
            .filter(|(key, value)| check_kind(key, value).is_ok())
            .map(|(key, value)| change(key, value))
            .collect();
        if !changes.is_empty() {
            self.tree = self.tree.update(changes);
        }
    }

    /// Present entries, in no particular order (cheaper than
    /// [`sorted_entries`](Self::sorted_entries) for a scan).
    pub fn entries(&self) -> impl Iterator<Item = Entry> + '_ {
        self.tree.leaves().map(|l| *l.value())
    }

    /// Present entries in key order.
    pub fn sorted_entries(&self) -> Vec<Entry> {
        let mut entries: Vec<Entry> = self.entries().collect();
        entries.sort_unstable_by_key(|a| a.0);
        entries
    }

    /// The state root: the root of the sparse Merkle tree over the present entries (see the
    /// type docs). Equal states have equal roots whatever the order they were built in.
    pub fn root(&self) -> Digest {
        self.tree.root()
    }

    /// The proof of `key`'s value under [`root`](Self::root): of existence when present, of
    /// non-existence when the value is the default. Check it with [`verify_entry`].
    pub fn prove(&self, key: &StateKey) -> SmtProof {
        self.tree.prove(&path_of(key))
    }
}
