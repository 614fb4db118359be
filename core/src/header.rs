//! Block headers and blocks.

use crate::certificate::QuorumCertificate;
use crate::codec::{BoundedVec, Decode, Encode};
use crate::hash::{hash_encoded, Digest, Domain};
use crate::ids::{ChainId, Epoch, Height, Round, ValidatorId};
use crate::keys::BlsSignature;
use crate::merkle::MerkleTree;
use crate::tx::SignedTx;

/// Most transactions in one block.
pub const MAX_TXS_PER_BLOCK: usize = 65_536;
/// Most bytes of an encoded block.
pub const MAX_BLOCK_BYTES: usize = 32 << 20;
/// Most bytes of an encoded header.
pub const MAX_HEADER_BYTES: usize = 1024;

/// What a chain's committee certifies about a block.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct BlockHeader {
    /// The chain.
    pub chain: ChainId,
    /// The epoch it was proposed in.
    pub epoch: Epoch,
    /// Its height (genesis is 0).
    pub height: Height,
    /// The consensus round it was proposed in.
    pub round: Round,
    /// Id of the parent block ([`Digest::ZERO`] for genesis).
    pub parent: Digest,
    /// Root of the state after executing the block.
    pub state_root: Digest,
    /// Merkle root of the block's transaction ids.
    pub tx_root: Digest,
    /// Merkle root of the packet commitments this block sends to other chains.
    pub outbox_root: Digest,
    /// The proposer.
    pub proposer: ValidatorId,
    /// Proposer's clock, milliseconds since the Unix epoch.
    pub timestamp_ms: u64,
    /// The proposer's VRF proof for this round (none for genesis).
    pub vrf_proof: Option<BlsSignature>,
}

impl BlockHeader {
    /// The block id: the hash of the canonical header encoding.
    pub fn id(&self) -> Digest {
        hash_encoded(Domain::Header, self)
    }
}

/// A header with its transactions.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Block {
    /// The header.
    pub header: BlockHeader,
    /// Transactions, in execution order.
    pub txs: BoundedVec<SignedTx, MAX_TXS_PER_BLOCK>,
}

impl Block {
    /// The Merkle root of `txs`' ids, as `tx_root` must be.
    pub fn compute_tx_root(txs: &[SignedTx]) -> Digest {
        Self::tx_root_of_ids(txs.iter().map(|t| t.id()).collect())
    }

    /// The same root from the transactions' ids, in block order (for a caller that needs the
    /// ids anyway: each one is a hash of the encoded transaction).
    pub fn tx_root_of_ids(ids: Vec<Digest>) -> Digest {
        MerkleTree::from_leaf_hashes(ids).root()
    }
}

/// A header together with the certificate of its chain's committee: what a light client of
/// that chain accepts.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CertifiedHeader {
    /// The header.
    pub header: BlockHeader,
    /// A quorum certificate whose vote data names this header.
    pub certificate: QuorumCertificate,
}
