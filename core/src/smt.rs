//! A persistent sparse Merkle tree: authenticated maps whose updates cost what they change.
//!
//! Every entry sits at a 256-bit *path* (a [`Digest`] the caller derives from its key with a
//! collision-resistant hash, so nobody can choose where a key lands), read most significant bit
//! first: bit 0 picks the left child. The tree is the binary trie over the present paths in the
//! canonical compressed form: an empty subtree is nothing (its hash is [`Digest::ZERO`]), a
//! subtree holding one entry is that entry's leaf placed at the top of the subtree, and an inner
//! node holds at least two entries below it. So the shape, and with it the root, depends only on
//! the set of entries, never on the order they were written in.
//!
//! - leaf: `H(Domain::SmtLeaf, path || value_hash)`
//! - inner node: `H(Domain::SmtNode, left || right)`, an empty side being `Digest::ZERO`
//! - root: the top node's hash, `Digest::ZERO` for the empty tree
//!
//! Nodes are shared behind `Arc`: cloning a tree is O(1), and [`SparseMerkleTree::update`]
//! builds a new version that copies and hashes only the nodes on the paths of the changed
//! entries (about `k * log2(n)` hashes for `k` changes in `n` entries, less where paths share
//! their top), leaving the old version intact. That is what lets a chain keep the committed
//! state and a few speculative children of it at once without copying either.
//!
//! [`SmtProof`] proves either that a path holds a value (existence) or that it holds nothing
//! (non-existence: the walk from the root ends in an empty subtree, or in the leaf of another
//! path that shares every bit walked so far). Leaves and inner nodes are hashed in different
//! domains, so neither can pass for the other. [`reference_root`] is the naive definition the
//! property tests hold the persistent tree equal to.

use crate::codec::{BoundedVec, Decode, Encode};
use crate::hash::{Digest, Domain, Hasher};
use std::sync::Arc;

/// Bits in a path, and so the most siblings a proof can carry.
pub const SMT_DEPTH: usize = 256;

/// Bit `depth` of `path`, most significant bit of the first byte first (`true` = right).
#[inline]
pub fn bit(path: &Digest, depth: usize) -> bool {
    (path.0[depth / 8] >> (7 - depth % 8)) & 1 == 1
}

/// Hash of the leaf of `path` holding a value whose hash is `value_hash`.
pub fn leaf_hash(path: &Digest, value_hash: &Digest) -> Digest {
    let mut h = Hasher::new(Domain::SmtLeaf);
    h.update(&path.0).update(&value_hash.0);
    h.finalize()
}

/// Hash of an inner node from its children's hashes (`Digest::ZERO` for an empty side).
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = Hasher::new(Domain::SmtNode);
    h.update(&left.0).update(&right.0);
    h.finalize()
}

/// One entry of the tree: its path, the hash of its value, its leaf hash and the value itself.
#[derive(Debug)]
pub struct Leaf<V> {
    path: Digest,
    value_hash: Digest,
    hash: Digest,
    value: V,
}

impl<V> Leaf<V> {
    /// A leaf for `value` at `path`; `value_hash` is the caller's hash of the value (what a
    /// proof of this entry shows).
    pub fn new(path: Digest, value_hash: Digest, value: V) -> Self {
        Leaf {
            path,
            value_hash,
            hash: leaf_hash(&path, &value_hash),
            value,
        }
    }

    /// The path.
    pub fn path(&self) -> &Digest {
        &self.path
    }

    /// The hash of the value.
    pub fn value_hash(&self) -> &Digest {
        &self.value_hash
    }

    /// The value.
    pub fn value(&self) -> &V {
        &self.value
    }
}

#[derive(Debug)]
struct Inner<V> {
    left: Option<Node<V>>,
    right: Option<Node<V>>,
    hash: Digest,
    /// Entries below this node (at least two).
    count: u64,
}

#[derive(Debug)]
enum Node<V> {
    Leaf(Arc<Leaf<V>>),
    Inner(Arc<Inner<V>>),
}

impl<V> Clone for Node<V> {
    fn clone(&self) -> Self {
        match self {
            Node::Leaf(l) => Node::Leaf(l.clone()),
            Node::Inner(n) => Node::Inner(n.clone()),
        }
    }
}

impl<V> Node<V> {
    fn hash(&self) -> Digest {
        match self {
            Node::Leaf(l) => l.hash,
            Node::Inner(n) => n.hash,
        }
    }

    fn count(&self) -> u64 {
        match self {
            Node::Leaf(_) => 1,
            Node::Inner(n) => n.count,
        }
    }
}

fn hash_of<V>(node: &Option<Node<V>>) -> Digest {
    node.as_ref().map_or(Digest::ZERO, Node::hash)
}

/// The node over two sides, in canonical form: nothing over nothing, a lone leaf moves up.
fn join<V>(left: Option<Node<V>>, right: Option<Node<V>>) -> Option<Node<V>> {
    match (left, right) {
        (None, None) => None,
        (Some(Node::Leaf(l)), None) | (None, Some(Node::Leaf(l))) => Some(Node::Leaf(l)),
        (left, right) => {
            let count =
                left.as_ref().map_or(0, Node::count) + right.as_ref().map_or(0, Node::count);
            let hash = node_hash(&hash_of(&left), &hash_of(&right));
            Some(Node::Inner(Arc::new(Inner {
                left,
                right,
                hash,
                count,
            })))
        }
    }
}

/// The subtree at `depth` over `leaves` (sorted by path, distinct, all sharing the first
/// `depth` bits).
fn build<V>(depth: usize, leaves: &[Arc<Leaf<V>>]) -> Option<Node<V>> {
    match leaves {
        [] => None,
        [one] => Some(Node::Leaf(one.clone())),
        _ => {
            // Distinct paths differ in some bit below 256, so depth stays in range.
            let split = leaves.partition_point(|l| !bit(&l.path, depth));
            join(
                build(depth + 1, &leaves[..split]),
                build(depth + 1, &leaves[split..]),
            )
        }
    }
}

/// A change to the tree: the path, and its new leaf (`None` removes the entry).
pub type Change<V> = (Digest, Option<Arc<Leaf<V>>>);

/// `node` (at `depth`) with `changes` applied (sorted by path, distinct, all under `node`).
fn apply<V>(node: Option<&Node<V>>, depth: usize, changes: &[Change<V>]) -> Option<Node<V>> {
    if changes.is_empty() {
        return node.cloned();
    }
    match node {
        Some(Node::Inner(inner)) => {
            let split = changes.partition_point(|(p, _)| !bit(p, depth));
            let (l, r) = changes.split_at(split);
            let left = if l.is_empty() {
                inner.left.clone()
            } else {
                apply(inner.left.as_ref(), depth + 1, l)
            };
            let right = if r.is_empty() {
                inner.right.clone()
            } else {
                apply(inner.right.as_ref(), depth + 1, r)
            };
            join(left, right)
        }
        other => {
            // An empty subtree or a single leaf: the result is built from the new leaves plus
            // the old leaf if no change touches it.
            let mut leaves: Vec<Arc<Leaf<V>>> = Vec::with_capacity(changes.len() + 1);
            let old = match other {
                Some(Node::Leaf(l))
                    if changes.binary_search_by(|(p, _)| p.cmp(&l.path)).is_err() =>
                {
                    Some(l.clone())
                }
                _ => None,
            };
            let mut old = old;
            for (path, leaf) in changes {
                if let Some(o) = old.take_if(|o| o.path < *path) {
                    leaves.push(o);
                }
                if let Some(leaf) = leaf {
                    leaves.push(leaf.clone());
                }
            }
            leaves.extend(old);
            build(depth, &leaves)
        }
    }
}

/// Sort `items` by path, keeping only the last of the items given for one path.
fn keep_last_by_path<T>(items: &mut Vec<T>, path: impl Fn(&T) -> Digest) {
    // A stable sort keeps the given order among equal paths; reversed, `dedup` keeps the
    // first of each run, which was the last given.
    items.sort_by_key(|t| path(t));
    items.reverse();
    items.dedup_by(|a, b| path(a) == path(b));
    items.reverse();
}

/// A persistent sparse Merkle tree over values `V` (see the module docs).
#[derive(Debug)]
pub struct SparseMerkleTree<V> {
    root: Option<Node<V>>,
}

impl<V> Clone for SparseMerkleTree<V> {
    fn clone(&self) -> Self {
        SparseMerkleTree {
            root: self.root.clone(),
        }
    }
}

impl<V> Default for SparseMerkleTree<V> {
    fn default() -> Self {
        SparseMerkleTree { root: None }
    }
}

impl<V> SparseMerkleTree<V> {
    /// The empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// The tree over `leaves`, built bottom-up in one pass (a later leaf with the path of an
    /// earlier one replaces it).
    pub fn from_leaves(mut leaves: Vec<Arc<Leaf<V>>>) -> Self {
        keep_last_by_path(&mut leaves, |l| l.path);
        SparseMerkleTree {
            root: build(0, &leaves),
        }
    }

    /// The root hash (`Digest::ZERO` when empty).
    pub fn root(&self) -> Digest {
        hash_of(&self.root)
    }

    /// Number of entries.
    pub fn len(&self) -> u64 {
        self.root.as_ref().map_or(0, Node::count)
    }

    /// Whether the tree is empty.
    pub fn is_empty(&self) -> bool {
        self.root.is_none()
    }

    /// The leaf at `path`, if present.
    pub fn get(&self, path: &Digest) -> Option<&Leaf<V>> {
        let mut node = self.root.as_ref()?;
        let mut depth = 0;
        loop {
            match node {
                Node::Leaf(l) => return (l.path == *path).then_some(&**l),
                Node::Inner(n) => {
                    let next = if bit(path, depth) { &n.right } else { &n.left };
                    node = next.as_ref()?;
                    depth += 1;
                }
            }
        }
    }

    /// A new version with `changes` applied (later changes to one path win over earlier
    /// ones). This version is left as it was; the two share every untouched node.
    pub fn update(&self, mut changes: Vec<Change<V>>) -> Self {
        keep_last_by_path(&mut changes, |c| c.0);
        SparseMerkleTree {
            root: apply(self.root.as_ref(), 0, &changes),
        }
    }

    /// Every leaf, in path order.
    pub fn leaves(&self) -> Leaves<'_, V> {
        Leaves {
            stack: self.root.iter().collect(),
        }
    }

    /// The proof for `path`: of its value if present, of its absence otherwise.
    pub fn prove(&self, path: &Digest) -> SmtProof {
        let mut siblings = Vec::new();
        let mut node = self.root.as_ref();
        let mut depth = 0;
        let leaf = loop {
            match node {
                None => break None,
                Some(Node::Leaf(l)) => {
                    break Some(ProofLeaf {
                        path: l.path,
                        value_hash: l.value_hash,
                    })
                }
                Some(Node::Inner(n)) => {
                    let (next, other) = if bit(path, depth) {
                        (&n.right, &n.left)
                    } else {
                        (&n.left, &n.right)
                    };
                    siblings.push(hash_of(other));
                    node = next.as_ref();
                    depth += 1;
                }
            }
        };
        SmtProof {
            // An inner node has two distinct paths below it, so the walk stops before 256.
            siblings: BoundedVec::new(siblings).unwrap_or_default(),
            leaf,
        }
    }
}

/// Leaves of a tree in path order (see [`SparseMerkleTree::leaves`]).
pub struct Leaves<'a, V> {
    stack: Vec<&'a Node<V>>,
}

impl<'a, V> Iterator for Leaves<'a, V> {
    type Item = &'a Leaf<V>;
    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.stack.pop()? {
                Node::Leaf(l) => return Some(l),
                Node::Inner(n) => {
                    self.stack.extend(n.right.as_ref());
                    self.stack.extend(n.left.as_ref());
                }
            }
        }
    }
}

/// The leaf a proof walk ended at.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ProofLeaf {
    /// Its path.
    pub path: Digest,
    /// The hash of its value.
    pub value_hash: Digest,
}

/// A proof that a path holds a value, or holds none, under a root.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode, Default)]
pub struct SmtProof {
    /// The siblings along the walk, from the root's children down.
    pub siblings: BoundedVec<Digest, SMT_DEPTH>,
    /// Where the walk ended: a leaf, or nothing (an empty subtree).
    pub leaf: Option<ProofLeaf>,
}

/// Why an [`SmtProof`] does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SmtProofError {
    /// An existence proof ends elsewhere than at the path's leaf, or at another value.
    #[error("the proof does not end at this path's leaf with this value")]
    NotThisEntry,
    /// A non-existence proof ends at the path's own leaf: the entry exists.
    #[error("the path holds a value: it is not absent")]
    Present,
    /// A non-existence proof ends at a leaf that does not share the walked bits of the path.
    #[error("the proof's leaf is not on this path's walk")]
    OffPath,
    /// The recomputed root differs from the expected one.
    #[error("the proof does not lead to the expected root")]
    RootMismatch,
}

impl SmtProof {
    /// The root this proof leads to for `path` with `value_hash` (`None` = absent).
    pub fn root_for(
        &self,
        path: &Digest,
        value_hash: Option<&Digest>,
    ) -> Result<Digest, SmtProofError> {
        let depth = self.siblings.len();
        let bottom = match (value_hash, &self.leaf) {
            (Some(v), Some(l)) if l.path == *path && l.value_hash == *v => leaf_hash(path, v),
            (Some(_), _) => return Err(SmtProofError::NotThisEntry),
            (None, None) => Digest::ZERO,
            (None, Some(l)) if l.path == *path => return Err(SmtProofError::Present),
            (None, Some(l)) => {
                if (0..depth).any(|d| bit(&l.path, d) != bit(path, d)) {
                    return Err(SmtProofError::OffPath);
                }
                leaf_hash(&l.path, &l.value_hash)
            }
        };
        let mut acc = bottom;
        for (d, sibling) in self.siblings.iter().enumerate().rev() {
            acc = if bit(path, d) {
                node_hash(sibling, &acc)
            } else {
                node_hash(&acc, sibling)
            };
        }
        Ok(acc)
    }

    /// Check that `path` holds a value hashing to `value_hash` under `root`.
    pub fn verify_present(
        &self,
        root: &Digest,
        path: &Digest,
        value_hash: &Digest,
    ) -> Result<(), SmtProofError> {
        self.check(root, path, Some(value_hash))
    }

    /// Check that `path` holds nothing under `root`.
    pub fn verify_absent(&self, root: &Digest, path: &Digest) -> Result<(), SmtProofError> {
        self.check(root, path, None)
    }

    fn check(
        &self,
        root: &Digest,
        path: &Digest,
        value_hash: Option<&Digest>,
    ) -> Result<(), SmtProofError> {
        if self.root_for(path, value_hash)? == *root {
            Ok(())
        } else {
            Err(SmtProofError::RootMismatch)
        }
    }
}

/// The root of the tree over `entries` (`(path, value_hash)`, distinct paths) straight from the
/// definition, without sharing, caching or the persistent structure: the baseline the tree is
/// tested against.
pub fn reference_root(entries: &[(Digest, Digest)]) -> Digest {
    fn at(depth: usize, entries: &[(Digest, Digest)]) -> Digest {
        match entries {
            [] => Digest::ZERO,
            [(p, v)] => leaf_hash(p, v),
            _ => {
                let (l, r): (Vec<_>, Vec<_>) = entries.iter().partition(|(p, _)| !bit(p, depth));
                node_hash(&at(depth + 1, &l), &at(depth + 1, &r))
            }
        }
    }
    at(0, entries)
}
