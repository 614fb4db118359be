//! Sparse Merkle trees: the persistent tree equals the definition, proofs of existence and of
//! non-existence verify, and every kind of wrong proof fails.

use banyan_core::codec::{self, BoundedVec};
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::smt::{
    bit, reference_root, Change, Leaf, ProofLeaf, SmtProof, SmtProofError, SparseMerkleTree,
};
use proptest::prelude::*;
use std::collections::BTreeMap;
use std::sync::Arc;

fn path(k: u16) -> Digest {
    hash(Domain::Custom("test/smt/path"), &k.to_le_bytes())
}

fn value_hash(v: u64) -> Digest {
    hash(Domain::Custom("test/smt/value"), &v.to_le_bytes())
}

fn leaf(k: u16, v: u64) -> Arc<Leaf<u64>> {
    Arc::new(Leaf::new(path(k), value_hash(v), v))
}

fn reference(model: &BTreeMap<u16, u64>) -> Digest {
    let entries: Vec<(Digest, Digest)> = model
        .iter()
        .map(|(k, v)| (path(*k), value_hash(*v)))
        .collect();
    reference_root(&entries)
}

/// Check every key of `0..keys` against `model`: lookups, and a proof that verifies for the
/// right answer and fails for a wrong one.
fn check_all(tree: &SparseMerkleTree<u64>, model: &BTreeMap<u16, u64>, keys: u16) {
    let root = tree.root();
    for k in 0..keys {
        let p = path(k);
        let proof = tree.prove(&p);
        match model.get(&k) {
            Some(v) => {
                assert_eq!(tree.get(&p).map(|l| *l.value()), Some(*v));
                proof
                    .verify_present(&root, &p, &value_hash(*v))
                    .expect("existence proof");
                assert_eq!(
                    proof.verify_present(&root, &p, &value_hash(v + 1)),
                    Err(SmtProofError::NotThisEntry)
                );
                assert_eq!(proof.verify_absent(&root, &p), Err(SmtProofError::Present));
            }
            None => {
                assert!(tree.get(&p).is_none());
                proof.verify_absent(&root, &p).expect("non-existence proof");
                assert!(proof.verify_present(&root, &p, &value_hash(0)).is_err());
            }
        }
        // Round trip through the canonical codec.
        let bytes = codec::encode(&proof);
        let back: SmtProof = codec::decode(&bytes, 1 << 16).expect("decodes");
        assert_eq!(back, proof);
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A batch of writes: key, and value (`None` removes).
    Batch(Vec<(u16, Option<u64>)>),
    /// Keep this version aside and go on from a copy.
    Fork,
}

fn op(keys: u16) -> impl Strategy<Value = Op> {
    prop_oneof![
        5 => proptest::collection::vec((0..keys, proptest::option::weighted(0.7, 0u64..1000)), 0..24)
            .prop_map(Op::Batch),
        1 => Just(Op::Fork),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn persistent_updates_equal_the_definition(ops in proptest::collection::vec(op(80), 1..30)) {
        let mut tree = SparseMerkleTree::new();
        let mut model = BTreeMap::new();
        let mut kept: Vec<(SparseMerkleTree<u64>, BTreeMap<u16, u64>)> = Vec::new();
        for op in ops {
            match op {
                Op::Batch(writes) => {
                    let changes: Vec<Change<u64>> = writes
                        .iter()
                        .map(|(k, v)| (path(*k), v.map(|v| leaf(*k, v))))
                        .collect();
                    tree = tree.update(changes);
                    for (k, v) in writes {
                        match v {
                            Some(v) => model.insert(k, v),
                            None => model.remove(&k),
                        };
                    }
                    prop_assert_eq!(tree.root(), reference(&model));
                    prop_assert_eq!(tree.len(), model.len() as u64);
                }
                Op::Fork => kept.push((tree.clone(), model.clone())),
            }
        }
        check_all(&tree, &model, 80);
        // Built at once from the same entries: the same root and leaves in path order.
        let bulk = SparseMerkleTree::from_leaves(model.iter().map(|(k, v)| leaf(*k, *v)).collect());
        prop_assert_eq!(bulk.root(), tree.root());
        let in_order: Vec<Digest> = tree.leaves().map(|l| *l.path()).collect();
        let mut sorted = in_order.clone();
        sorted.sort();
        prop_assert_eq!(in_order, sorted);
        // Versions left behind still hold what they held.
        for (old, m) in kept {
            prop_assert_eq!(old.root(), reference(&m));
        }
    }
}

#[test]
fn empty_tree_and_single_entry() {
    let empty = SparseMerkleTree::<u64>::new();
    assert_eq!(empty.root(), Digest::ZERO);
    let proof = empty.prove(&path(1));
    assert!(proof.siblings.is_empty() && proof.leaf.is_none());
    proof
        .verify_absent(&Digest::ZERO, &path(1))
        .expect("absent from the empty tree");

    let one = empty.update(vec![(path(1), Some(leaf(1, 7)))]);
    // A lone entry is its leaf, at the top.
    assert_eq!(
        one.root(),
        banyan_core::smt::leaf_hash(&path(1), &value_hash(7))
    );
    let mut model = BTreeMap::new();
    model.insert(1u16, 7u64);
    check_all(&one, &model, 16);
    // Removing it gives back the empty tree; removing an absent key changes nothing.
    assert_eq!(one.update(vec![(path(2), None)]).root(), one.root());
    assert_eq!(one.update(vec![(path(1), None)]).root(), Digest::ZERO);
}

#[test]
fn later_writes_to_one_path_win() {
    let t = SparseMerkleTree::new().update(vec![
        (path(3), Some(leaf(3, 1))),
        (path(3), None),
        (path(3), Some(leaf(3, 2))),
    ]);
    assert_eq!(t.get(&path(3)).map(|l| *l.value()), Some(2));
    let t = t.update(vec![(path(3), Some(leaf(3, 5))), (path(3), None)]);
    assert!(t.is_empty());
}

fn tree_of(n: u16) -> (SparseMerkleTree<u64>, BTreeMap<u16, u64>) {
    let model: BTreeMap<u16, u64> = (0..n).map(|k| (k, u64::from(k) * 3)).collect();
    let tree = SparseMerkleTree::from_leaves(model.iter().map(|(k, v)| leaf(*k, *v)).collect());
    (tree, model)
}

#[test]
fn forged_proofs_fail() {
    let (tree, _) = tree_of(200);
    let root = tree.root();
    let present = path(5);
    let absent = path(1000);
    let good = tree.prove(&present);
    good.verify_present(&root, &present, &value_hash(15))
        .expect("honest proof");

    // A flipped sibling.
    let mut bad = good.clone();
    let mut sibs = bad.siblings.to_vec();
    sibs[0].0[0] ^= 1;
    bad.siblings = BoundedVec::new(sibs).expect("same length");
    assert_eq!(
        bad.verify_present(&root, &present, &value_hash(15)),
        Err(SmtProofError::RootMismatch)
    );

    // A sibling dropped or added moves the leaf to another depth.
    let mut short = good.clone();
    short.siblings = BoundedVec::new(good.siblings[1..].to_vec()).expect("shorter");
    assert!(short
        .verify_present(&root, &present, &value_hash(15))
        .is_err());
    let mut long = good.clone();
    let mut sibs = good.siblings.to_vec();
    sibs.push(Digest::ZERO);
    long.siblings = BoundedVec::new(sibs).expect("longer");
    assert!(long
        .verify_present(&root, &present, &value_hash(15))
        .is_err());

    // The proof of a present key does not show another key absent, nor does it show
    // the present key absent.
    assert!(good.verify_absent(&root, &absent).is_err());
    assert_eq!(
        good.verify_absent(&root, &present),
        Err(SmtProofError::Present)
    );

    // A non-existence proof whose leaf is not on the walked path.
    let honest = tree.prove(&absent);
    honest
        .verify_absent(&root, &absent)
        .expect("honest absence");
    if let Some(l) = &honest.leaf {
        let mut off = honest.clone();
        // Another leaf of the tree, diverging from `absent` above the proof's depth.
        let depth = honest.siblings.len();
        let other = (0..200u16)
            .map(path)
            .find(|p| p != &l.path && (0..depth).any(|d| bit(p, d) != bit(&absent, d)))
            .expect("some leaf diverges early");
        off.leaf = Some(ProofLeaf {
            path: other,
            value_hash: tree.get(&other).map(|x| *x.value_hash()).expect("present"),
        });
        assert_eq!(
            off.verify_absent(&root, &absent),
            Err(SmtProofError::OffPath)
        );
    }

    // Claiming an empty end where a leaf or node is.
    let mut emptied = tree.prove(&present);
    emptied.leaf = None;
    assert_eq!(
        emptied.verify_absent(&root, &present),
        Err(SmtProofError::RootMismatch)
    );
}

#[test]
fn proofs_are_about_log2_n_deep_and_decoding_is_bounded() {
    let (tree, _) = tree_of(4096);
    let depths: Vec<usize> = (0..4096u16)
        .map(|k| tree.prove(&path(k)).siblings.len())
        .collect();
    let mean = depths.iter().sum::<usize>() as f64 / depths.len() as f64;
    // log2(4096) = 12; random paths sit about 1.3 levels deeper on average.
    assert!((11.0..16.0).contains(&mean), "mean depth {mean}");
    // A length prefix above 256 siblings is refused before anything is allocated.
    let mut bytes = Vec::new();
    bytes.extend_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(codec::decode::<SmtProof>(&bytes, 1 << 20).is_err());
}
