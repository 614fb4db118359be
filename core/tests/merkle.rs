//! Merkle trees: roots match the reference, proofs verify, and every kind of wrong proof fails.

use banyan_core::codec::BoundedVec;
use banyan_core::hash::Digest;
use banyan_core::merkle::{self, MerkleLevels, MerkleProof, MerkleTree, ProofError};
use proptest::prelude::*;

fn leaves(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("leaf-{i}").into_bytes()).collect()
}

#[test]
fn roots_match_the_reference_and_proofs_verify() {
    for n in 0..=70 {
        let data = leaves(n);
        let tree = MerkleTree::from_leaves(&data);
        assert_eq!(tree.root(), merkle::reference_root(&data), "n = {n}");
        for (i, leaf) in data.iter().enumerate() {
            let proof = tree.proof(i).expect("in range");
            proof.verify(&tree.root(), leaf).expect("valid proof");
            let max_len = (n as f64).log2().ceil() as usize;
            assert!(proof.siblings.len() <= max_len, "proof longer than log2(n)");
        }
        assert!(tree.proof(n).is_none());
    }
}

#[test]
fn proof_size_is_log2_n() {
    let tree = MerkleTree::from_leaves(leaves(1024));
    assert_eq!(tree.proof(513).expect("in range").siblings.len(), 10);
}

#[test]
fn wrong_proofs_are_rejected() {
    let data = leaves(13);
    let tree = MerkleTree::from_leaves(&data);
    let root = tree.root();
    let proof = tree.proof(5).expect("in range");

    // Another leaf's data.
    assert_eq!(proof.verify(&root, &data[6]), Err(ProofError::RootMismatch));
    // Another index (same siblings).
    let mut other_index = proof.clone();
    other_index.index = 4;
    assert!(other_index.verify(&root, &data[5]).is_err());
    // Another root.
    let other_root = MerkleTree::from_leaves(leaves(14)).root();
    assert_eq!(
        proof.verify(&other_root, &data[5]),
        Err(ProofError::RootMismatch)
    );
    // A tampered sibling.
    let mut tampered = proof.clone().siblings.into_inner();
    tampered[1].0[0] ^= 1;
    let t = MerkleProof {
        siblings: BoundedVec::new(tampered).expect("short"),
        ..proof.clone()
    };
    assert_eq!(t.verify(&root, &data[5]), Err(ProofError::RootMismatch));
    // A wrong leaf count, an index out of range, an extra or missing sibling.
    let mut count = proof.clone();
    count.leaf_count = 16;
    assert!(count.verify(&root, &data[5]).is_err());
    // The last leaf of a 3-leaf tree cannot pass as the second of a 2-leaf tree.
    let three = MerkleTree::from_leaves(leaves(3));
    let mut moved = three.proof(2).expect("in range");
    moved.index = 1;
    moved.leaf_count = 2;
    assert!(moved.verify(&three.root(), &leaves(3)[2]).is_err());
    let mut out = proof.clone();
    out.index = 13;
    assert!(matches!(
        out.verify(&root, &data[5]),
        Err(ProofError::IndexOutOfRange { .. })
    ));
    let mut extra = proof.clone().siblings.into_inner();
    extra.push(Digest::ZERO);
    let e = MerkleProof {
        siblings: BoundedVec::new(extra).expect("short"),
        ..proof.clone()
    };
    assert!(matches!(
        e.verify(&root, &data[5]),
        Err(ProofError::WrongLength { .. })
    ));
}

#[test]
fn an_inner_node_does_not_pass_for_a_leaf() {
    // With domain-separated leaves, the concatenation of two child hashes is not a leaf whose
    // hash equals their parent.
    let data = leaves(4);
    let tree = MerkleTree::from_leaves(&data);
    let l0 = merkle::leaf_hash(&data[0]);
    let l1 = merkle::leaf_hash(&data[1]);
    let mut fake_leaf = l0.0.to_vec();
    fake_leaf.extend_from_slice(&l1.0);
    let two = MerkleTree::from_leaves(vec![fake_leaf.clone(), {
        let mut v = merkle::leaf_hash(&data[2]).0.to_vec();
        v.extend_from_slice(&merkle::leaf_hash(&data[3]).0);
        v
    }]);
    assert_ne!(two.root(), tree.root());
    let forged = MerkleProof {
        index: 0,
        leaf_count: 2,
        siblings: BoundedVec::new(vec![merkle::node_hash(
            &merkle::leaf_hash(&data[2]),
            &merkle::leaf_hash(&data[3]),
        )])
        .expect("short"),
    };
    assert!(forged.verify(&tree.root(), &fake_leaf).is_err());
}

proptest! {
    #[test]
    fn every_leaf_of_random_trees_verifies(n in 1usize..300, pick in any::<prop::sample::Index>()) {
        let data = leaves(n);
        let tree = MerkleTree::from_leaves(&data);
        let i = pick.index(n);
        let proof = tree.proof(i).expect("in range");
        prop_assert!(proof.verify(&tree.root(), &data[i]).is_ok());
        let j = (i + 1) % n;
        if j != i {
            prop_assert!(proof.verify(&tree.root(), &data[j]).is_err());
        }
    }
}

fn leaf_hashes(tag: u8, n: usize) -> Vec<Digest> {
    (0..n)
        .map(|i| merkle::leaf_hash(&[&[tag][..], &(i as u64).to_le_bytes()].concat()))
        .collect()
}

#[test]
fn kept_levels_give_the_same_root_at_every_size() {
    for n in 0..=70 {
        let data = leaves(n);
        let hashes: Vec<Digest> = data.iter().map(|d| merkle::leaf_hash(d)).collect();
        let levels = MerkleLevels::from_leaf_hashes(hashes);
        assert_eq!(levels.root(), merkle::reference_root(&data), "n = {n}");
        assert_eq!(levels.len(), n);
    }
}

/// One change to a kept tree: leaves replaced in place, or the whole leaf list replaced with
/// a prefix kept.
#[derive(Debug, Clone)]
enum Change {
    Set(Vec<(usize, u8)>),
    Replace { keep: usize, len: usize, tag: u8 },
}

fn change() -> impl Strategy<Value = Change> {
    prop_oneof![
        prop::collection::vec((0usize..80, any::<u8>()), 0..8).prop_map(Change::Set),
        (0usize..80, 0usize..80, any::<u8>()).prop_map(|(keep, len, tag)| Change::Replace {
            keep,
            len,
            tag
        }),
    ]
}

proptest! {
    /// After any sequence of in-place updates and prefix-keeping replacements, the kept
    /// levels give the root a tree built from scratch over the same leaves gives.
    #[test]
    fn updated_levels_match_a_fresh_tree(
        start in 0usize..80,
        changes in prop::collection::vec(change(), 1..12),
    ) {
        let mut leaves = leaf_hashes(0, start);
        let mut levels = MerkleLevels::from_leaf_hashes(leaves.clone());
        for c in changes {
            match c {
                Change::Set(updates) => {
                    let updates: Vec<(usize, Digest)> = updates
                        .into_iter()
                        .map(|(i, tag)| (i, leaf_hashes(tag, i + 1)[i]))
                        .collect();
                    for &(i, leaf) in &updates {
                        if i < leaves.len() {
                            leaves[i] = leaf;
                        }
                    }
                    levels.set_leaves(&updates);
                }
                Change::Replace { keep, len, tag } => {
                    let keep = keep.min(leaves.len()).min(len);
                    let mut next = leaves[..keep].to_vec();
                    next.extend(leaf_hashes(tag, len).into_iter().skip(keep));
                    leaves = next;
                    levels.replace_leaves(leaves.clone(), keep);
                }
            }
            prop_assert_eq!(levels.leaves(), &leaves[..]);
            prop_assert_eq!(levels.root(), MerkleTree::from_leaf_hashes(leaves.clone()).root());
        }
    }
}
