//! Binary Merkle trees with inclusion proofs.
//!
//! The tree shape is the one of RFC 9162 (Certificate Transparency v2): for `n > 1` leaves the
//! left subtree holds the largest power of two strictly smaller than `n` leaves. Leaves and inner
//! nodes are hashed in different domains ([`Domain::MerkleLeaf`], [`Domain::MerkleNode`]), so an
//! inner node can never pass for a leaf (the second-preimage trick on unbalanced trees), and a
//! proof binds the leaf index and the leaf count: it has exactly as many siblings as the path
//! from that leaf to the root, at most `ceil(log2(n))`.
//!
//! The published root is `H_root(n || top)`, the top node bound to the leaf count: without it a
//! proof could claim a different count and so move a leaf to another index (in a 3-leaf tree
//! the third leaf would also prove as the second of a 2-leaf tree).

use crate::codec::{BoundedVec, Decode, Encode};
use crate::hash::{hash, Digest, Domain, Hasher};

/// The deepest tree a proof may describe (2^64 leaves).
pub const MAX_PROOF_DEPTH: usize = 64;

/// Hash of a leaf's data.
pub fn leaf_hash(data: &[u8]) -> Digest {
    hash(Domain::MerkleLeaf, data)
}

/// Hash of an inner node from its children.
pub fn node_hash(left: &Digest, right: &Digest) -> Digest {
    let mut h = Hasher::new(Domain::MerkleNode);
    h.update(&left.0).update(&right.0);
    h.finalize()
}

/// The root of the empty tree.
pub fn empty_root() -> Digest {
    hash(Domain::MerkleEmpty, &[])
}

/// The published root: the top node bound to the leaf count.
fn bind_count(count: u64, top: &Digest) -> Digest {
    let mut h = Hasher::new(Domain::MerkleRoot);
    h.update(&count.to_le_bytes()).update(&top.0);
    h.finalize()
}

/// Why a proof does not verify.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// The index is not below the leaf count.
    #[error("leaf index {index} is out of range for {count} leaves")]
    IndexOutOfRange {
        /// Claimed index.
        index: u64,
        /// Claimed leaf count.
        count: u64,
    },
    /// The proof has the wrong number of siblings for that index and count.
    #[error("proof has {got} siblings, a leaf at this position needs {want}")]
    WrongLength {
        /// Siblings in the proof.
        got: usize,
        /// Siblings needed.
        want: usize,
    },
    /// The recomputed root differs from the expected one.
    #[error("proof does not lead to the expected root")]
    RootMismatch,
}

/// An inclusion proof: the siblings from the leaf up to the root.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct MerkleProof {
    /// Position of the leaf.
    pub index: u64,
    /// Number of leaves in the tree.
    pub leaf_count: u64,
    /// Sibling hashes, leaf level first.
    pub siblings: BoundedVec<Digest, MAX_PROOF_DEPTH>,
}

/// Largest power of two strictly smaller than `n` (n >= 2).
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (63 - (n - 1).leading_zeros())
}

/// Number of siblings on the path of leaf `index` in a tree of `count` leaves.
fn path_len(mut index: u64, mut count: u64) -> usize {
    let mut len = 0;
    while count > 1 {
        let k = split_point(count);
        if index < k {
            count = k;
        } else {
            index -= k;
            count -= k;
        }
        len += 1;
    }
    len
}

impl MerkleProof {
    /// Root this proof leads to from `leaf` (a leaf hash), checking its shape first.
    pub fn root_from(&self, leaf: &Digest) -> Result<Digest, ProofError> {
        let (index, count) = (self.index, self.leaf_count);
        if index >= count {
            return Err(ProofError::IndexOutOfRange { index, count });
        }
        let want = path_len(index, count);
        if self.siblings.len() != want {
            return Err(ProofError::WrongLength {
                got: self.siblings.len(),
                want,
            });
        }
        // Record the descent (which side the leaf is on at each level), then fold upwards.
        let mut sides = [false; MAX_PROOF_DEPTH]; // true: our node is the right child
        let (mut i, mut n, mut depth) = (index, count, 0);
        while n > 1 {
            let k = split_point(n);
            if i < k {
                n = k;
            } else {
                sides[depth] = true;
                i -= k;
                n -= k;
            }
            depth += 1;
        }
        let mut acc = *leaf;
        for (level, sibling) in self.siblings.iter().enumerate() {
            // siblings[0] is the leaf level, i.e. the deepest step of the descent.
            let right = sides[depth - 1 - level];
            acc = if right {
                node_hash(sibling, &acc)
            } else {
                node_hash(&acc, sibling)
            };
        }
        Ok(bind_count(count, &acc))
    }

    /// Check that `leaf_data` is the leaf at `self.index` of the tree with root `root`.
    pub fn verify(&self, root: &Digest, leaf_data: &[u8]) -> Result<(), ProofError> {
        self.verify_hash(root, &leaf_hash(leaf_data))
    }

    /// Like [`verify`](Self::verify), for an already hashed leaf.
    pub fn verify_hash(&self, root: &Digest, leaf: &Digest) -> Result<(), ProofError> {
        if self.root_from(leaf)? == *root {
            Ok(())
        } else {
            Err(ProofError::RootMismatch)
        }
    }
}

/// A Merkle tree kept level by level, for building roots and proofs.
#[derive(Clone, Debug)]
pub struct MerkleTree {
    leaves: Vec<Digest>,
}

impl MerkleTree {
    /// A tree over already hashed leaves.
    pub fn from_leaf_hashes(leaves: Vec<Digest>) -> Self {
        MerkleTree { leaves }
    }

    /// A tree over raw leaf data.
    pub fn from_leaves<I, B>(leaves: I) -> Self
    where
        I: IntoIterator<Item = B>,
        B: AsRef<[u8]>,
    {
        Self::from_leaf_hashes(leaves.into_iter().map(|l| leaf_hash(l.as_ref())).collect())
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.leaves.len()
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaves.is_empty()
    }

    /// The root.
    pub fn root(&self) -> Digest {
        if self.leaves.is_empty() {
            empty_root()
        } else {
            bind_count(self.leaves.len() as u64, &subtree_root(&self.leaves))
        }
    }

    /// The inclusion proof of leaf `index`, or `None` if out of range.
    pub fn proof(&self, index: usize) -> Option<MerkleProof> {
        if index >= self.leaves.len() {
            return None;
        }
        let mut siblings = Vec::new();
        let mut slice = &self.leaves[..];
        let mut i = index;
        while slice.len() > 1 {
            let k = split_point(slice.len() as u64) as usize;
            if i < k {
                siblings.push(subtree_root(&slice[k..]));
                slice = &slice[..k];
            } else {
                siblings.push(subtree_root(&slice[..k]));
                slice = &slice[k..];
                i -= k;
            }
        }
        siblings.reverse();
        Some(MerkleProof {
            index: index as u64,
            leaf_count: self.leaves.len() as u64,
            // The path of a tree over a slice has at most 64 levels.
            siblings: BoundedVec::new(siblings).ok()?,
        })
    }
}

/// Root of a non-empty run of leaf hashes, bottom-up over the RFC 9162 shape.
fn subtree_root(leaves: &[Digest]) -> Digest {
    match leaves.len() {
        0 => empty_root(),
        1 => leaves[0],
        n => {
            let k = split_point(n as u64) as usize;
            node_hash(&subtree_root(&leaves[..k]), &subtree_root(&leaves[k..]))
        }
    }
}

/// The root computed the slow, obvious way (recursive over raw data), kept as the reference the
/// tests compare [`MerkleTree`] against.
pub fn reference_root(leaves: &[Vec<u8>]) -> Digest {
    fn go(leaves: &[Vec<u8>]) -> Digest {
        if leaves.len() == 1 {
            return leaf_hash(&leaves[0]);
        }
        let mut k = 1;
        while k * 2 < leaves.len() {
            k *= 2;
        }
        node_hash(&go(&leaves[..k]), &go(&leaves[k..]))
    }
    if leaves.is_empty() {
        empty_root()
    } else {
        bind_count(leaves.len() as u64, &go(leaves))
    }
}

/// A Merkle tree over leaf hashes that keeps every level, so that changing a few leaves costs
/// a few paths instead of the whole tree. Its root equals [`MerkleTree::root`] over the same
/// leaves.
///
/// Levels are built bottom-up: each level pairs the nodes of the one below, and an odd last
/// node moves up unchanged. That is the RFC 9162 shape: in both, the left subtree of a node
/// over `n` leaves holds the largest power of two strictly below `n`.
#[derive(Clone, Debug, Default)]
pub struct MerkleLevels {
    /// `levels[0]` are the leaves; the last level holds the top alone (none when empty).
    levels: Vec<Vec<Digest>>,
}

impl MerkleLevels {
    /// The tree over `leaves` (leaf hashes).
    pub fn from_leaf_hashes(leaves: Vec<Digest>) -> Self {
        let mut t = MerkleLevels {
            levels: vec![leaves],
        };
        t.rebuild_from(0);
        t
    }

    /// Number of leaves.
    pub fn len(&self) -> usize {
        self.levels.first().map_or(0, Vec::len)
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The leaf hashes, in order.
    pub fn leaves(&self) -> &[Digest] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }

    /// The root, as [`MerkleTree::root`] gives it.
    pub fn root(&self) -> Digest {
        match self.levels.last().and_then(|top| top.first()) {
            Some(top) if !self.is_empty() => bind_count(self.len() as u64, top),
            _ => empty_root(),
        }
    }

    /// Replace leaves in place (the leaf count stays): `updates` are `(index, leaf hash)`;
    /// an index out of range is ignored. Costs one path per changed leaf.
    pub fn set_leaves(&mut self, updates: &[(usize, Digest)]) {
        let n = self.len();
        let mut dirty: Vec<usize> = Vec::with_capacity(updates.len());
        for &(i, leaf) in updates {
            if i < n {
                self.levels[0][i] = leaf;
                dirty.push(i);
            }
        }
        dirty.sort_unstable();
        dirty.dedup();
        for l in 1..self.levels.len() {
            for d in dirty.iter_mut() {
                *d /= 2;
            }
            dirty.dedup();
            let (below, above) = self.levels.split_at_mut(l);
            let below = &below[l - 1];
            for &p in &dirty {
                above[0][p] = pair(below, p);
            }
        }
    }

    /// Replace all leaves by `leaves`, of which the first `unchanged` are known to equal the
    /// current ones (the count may change): only the nodes from there rightwards are hashed
    /// again.
    pub fn replace_leaves(&mut self, leaves: Vec<Digest>, unchanged: usize) {
        let first = unchanged.min(self.len()).min(leaves.len());
        match self.levels.first_mut() {
            Some(l0) => *l0 = leaves,
            None => self.levels.push(leaves),
        }
        self.rebuild_from(first);
    }

    /// Recompute every level from leaf index `first` rightwards.
    fn rebuild_from(&mut self, first: usize) {
        let mut from = first;
        let mut l = 0;
        while self.levels[l].len() > 1 {
            let width = self.levels[l].len().div_ceil(2);
            from /= 2;
            if self.levels.len() == l + 1 {
                self.levels.push(Vec::with_capacity(width));
            }
            let (below, above) = self.levels.split_at_mut(l + 1);
            let (below, next) = (&below[l], &mut above[0]);
            next.truncate(from.min(width));
            for p in next.len()..width {
                next.push(pair(below, p));
            }
            l += 1;
        }
        self.levels.truncate(l + 1);
    }
}

/// Node `p` of the level above `below`: its two children hashed, or a lone last child moved
/// up.
fn pair(below: &[Digest], p: usize) -> Digest {
    match below.get(2 * p + 1) {
        Some(right) => node_hash(&below[2 * p], right),
        None => below[2 * p],
    }
}
