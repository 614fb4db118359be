//! State proofs (sparse Merkle, what settlements and light clients check) and Merkle proofs
//! (transaction and outbox roots), decoded (canonical encodings only) and checked against
//! fixed trees for a chosen entry. A proof that passes must tell the truth: the entry is in
//! the tree with that value, or absent from it.
//!
//! Input: one selector byte, a 32-byte query, then the proof's encoding.
#![no_main]

use banyan_core::merkle::MerkleProof;
use banyan_core::smt::SmtProof;
use banyan_core::tx::MAX_TX_BYTES;
use banyan_fuzz::{canonical, merkle, merkle_leaves, smt, smt_entry, Bytes, SMT_ENTRIES};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let selector = input.u8();
    let query = input.digest();
    let known = u64::from(query.0[0]);
    if selector & 1 == 0 {
        let Some(proof) = canonical::<SmtProof>(input.0, MAX_TX_BYTES) else {
            return;
        };
        let tree = smt();
        let root = tree.root();
        let (path, value) = match selector & 6 {
            // A path in the tree with its own value.
            0 => smt_entry(known % SMT_ENTRIES),
            // A path in the tree with another entry's value.
            2 => (
                smt_entry(known % SMT_ENTRIES).0,
                smt_entry((known + 1) % SMT_ENTRIES).1,
            ),
            // A path of the input's choosing with some entry's value.
            _ => (query, smt_entry(known % SMT_ENTRIES).1),
        };
        if proof.verify_present(&root, &path, &value).is_ok() {
            let held = tree.get(&path).map(|l| *l.value_hash());
            assert_eq!(held, Some(value), "a presence proof that lies");
        }
        if proof.verify_absent(&root, &path).is_ok() {
            assert!(tree.get(&path).is_none(), "an absence proof that lies");
        }
    } else {
        let Some(proof) = canonical::<MerkleProof>(input.0, MAX_TX_BYTES) else {
            return;
        };
        let leaves = merkle_leaves();
        let leaf = if selector & 2 == 0 {
            leaves[(known % leaves.len() as u64) as usize]
        } else {
            query
        };
        if proof.verify_hash(&merkle().root(), &leaf).is_ok() {
            let at = usize::try_from(proof.index)
                .ok()
                .and_then(|i| leaves.get(i));
            assert_eq!(at, Some(&leaf), "a Merkle proof that lies");
        }
    }
});
