//! What the fuzz targets share: the canonical-encoding check, a committee and fixed trees to
//! verify against, and a byte reader for structured inputs.

use banyan_consensus::sim::cluster::Cluster;
use banyan_consensus::SharedVerifier;
use banyan_core::certificate::Committee;
use banyan_core::codec::{self, Decode, Encode};
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::ids::Epoch;
use banyan_core::merkle::MerkleTree;
use banyan_core::smt::{Leaf, SparseMerkleTree};
use std::sync::{Arc, OnceLock};

/// Members of the fixed committee (keys from `banyan_consensus::sim::member_key`).
pub const COMMITTEE_SIZE: usize = 4;

/// Decode `bytes` as one `T` within `limit`. When it decodes, its encoding must be `bytes`
/// exactly: one value, one encoding (hashes and signatures are over encodings).
pub fn canonical<T: Encode + Decode<()>>(bytes: &[u8], limit: usize) -> Option<T> {
    let value = codec::decode::<T>(bytes, limit).ok()?;
    assert!(
        codec::encode(&value) == bytes,
        "decoded from bytes that are not its canonical encoding"
    );
    Some(value)
}

/// The committee of epoch 0 the certificate and consensus targets verify against.
pub fn committee() -> &'static Committee {
    static C: OnceLock<Committee> = OnceLock::new();
    C.get_or_init(|| {
        #[allow(clippy::expect_used)]
        banyan_consensus::sim::make_committee(COMMITTEE_SIZE, Epoch(0))
            .expect("four generated keys with their proofs of possession form a committee")
    })
}

/// A started cluster on [`committee`] (twins on the last member if `twins`), sharing one
/// signature cache across runs: the same signature is checked once per process, not once per
/// input (the cache keeps each check's answer, so no outcome changes).
pub fn cluster(twins: bool) -> Cluster {
    thread_local! {
        static VERIFIER: SharedVerifier = SharedVerifier::default();
    }
    let verifier = VERIFIER.with(|v| v.clone());
    let mut cluster = Cluster::with_committee(committee().clone(), verifier, twins);
    #[allow(clippy::expect_used)]
    cluster
        .start()
        .expect("replicas of a fresh committee start on empty storage");
    cluster
}

/// Entries of the fixed state tree.
pub const SMT_ENTRIES: u64 = 64;
/// Leaves of the fixed Merkle tree (not a power of two, so the odd edge is exercised).
pub const MERKLE_LEAVES: u64 = 13;

/// Path and value hash of entry `i` of the fixed state tree.
pub fn smt_entry(i: u64) -> (Digest, Digest) {
    (
        hash(Domain::Custom("banyan/fuzz/path"), &i.to_le_bytes()),
        hash(Domain::Custom("banyan/fuzz/value"), &i.to_le_bytes()),
    )
}

/// The fixed state tree.
pub fn smt() -> &'static SparseMerkleTree<()> {
    static T: OnceLock<SparseMerkleTree<()>> = OnceLock::new();
    T.get_or_init(|| {
        let leaves = (0..SMT_ENTRIES)
            .map(|i| {
                let (path, value) = smt_entry(i);
                Arc::new(Leaf::new(path, value, ()))
            })
            .collect();
        SparseMerkleTree::from_leaves(leaves)
    })
}

/// Leaf hashes of the fixed Merkle tree.
pub fn merkle_leaves() -> &'static [Digest] {
    static L: OnceLock<Vec<Digest>> = OnceLock::new();
    L.get_or_init(|| {
        (0..MERKLE_LEAVES)
            .map(|i| banyan_core::merkle::leaf_hash(&i.to_le_bytes()))
            .collect()
    })
}

/// The fixed Merkle tree.
pub fn merkle() -> &'static MerkleTree {
    static T: OnceLock<MerkleTree> = OnceLock::new();
    T.get_or_init(|| MerkleTree::from_leaf_hashes(merkle_leaves().to_vec()))
}

/// Reads a structured input front to back; past the end every read is zero.
pub struct Bytes<'a>(pub &'a [u8]);

impl Bytes<'_> {
    /// Whether input remains.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// One byte.
    pub fn u8(&mut self) -> u8 {
        match self.0.split_first() {
            Some((&b, rest)) => {
                self.0 = rest;
                b
            }
            None => 0,
        }
    }

    /// A little-endian u16.
    pub fn u16(&mut self) -> u16 {
        u16::from_le_bytes([self.u8(), self.u8()])
    }

    /// The next `n` bytes (fewer at the end).
    pub fn take(&mut self, n: usize) -> &[u8] {
        let n = n.min(self.0.len());
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        head
    }

    /// 32 bytes as a digest (zero-padded at the end).
    pub fn digest(&mut self) -> Digest {
        let mut d = [0u8; 32];
        let b = self.take(32);
        d[..b.len()].copy_from_slice(b);
        Digest(d)
    }
}
