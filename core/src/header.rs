//! Block headers and blocks.

use crate::certificate::{CertificateError, Committee, QuorumCertificate};
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

/// Most headers a [`CertifiedHeader`] carries: the committed block and its descendants up to
/// the certified one.
pub const MAX_CERTIFIED_HEADERS: usize = 64;

/// Why a [`CertifiedHeader`] does not prove its block committed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertifiedHeaderError {
    /// The quorum certificate does not verify against the committee.
    #[error(transparent)]
    Certificate(#[from] CertificateError),
    /// The headers do not form a commit under the QC.
    #[error("not a commit proof: {0}")]
    NotACommit(&'static str),
}

/// Proof that a block is committed, as the chain's committee decided it: the block's header,
/// its descendants up to a block that a quorum certificate of the committee certifies, the
/// last two of consecutive rounds. That is the 2-chain commit rule of the consensus
/// (`banyan-consensus`): a block whose direct child in the next round is certified is final,
/// and with it every ancestor. A QC over the block alone would not do: a block can be
/// certified and still be abandoned for another at its height.
///
/// This is what a light client of the chain accepts, what the node serves for any committed
/// block (`banyan_getCertifiedHeader`), and, for an epoch's last block, the proof that the
/// epoch ended.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct CertifiedHeader {
    /// The committed block first, then its descendants up to the certified block.
    pub headers: BoundedVec<BlockHeader, MAX_CERTIFIED_HEADERS>,
    /// The committee's QC of the last header.
    pub commit_qc: QuorumCertificate,
}

impl CertifiedHeader {
    /// The committed block's header (`None` only for a malformed proof).
    pub fn header(&self) -> Option<&BlockHeader> {
        self.headers.first()
    }

    /// The epoch of the committee that certified it.
    pub fn epoch(&self) -> Epoch {
        self.commit_qc.data.epoch
    }

    /// Check the proof against the committee of the block's chain and epoch: the QC verifies,
    /// the headers link from the block up to the certified one, all of that chain and epoch,
    /// and the last two are of consecutive rounds. Returns the committed header.
    pub fn verify(&self, committee: &Committee) -> Result<&BlockHeader, CertifiedHeaderError> {
        use CertifiedHeaderError::NotACommit;
        self.commit_qc.verify(committee)?;
        let hs = self.headers.as_slice();
        let (Some(first), Some(last)) = (hs.first(), hs.last()) else {
            return Err(NotACommit("no header"));
        };
        if hs.len() < 2 {
            return Err(NotACommit("needs the block and a certified descendant"));
        }
        if last.id() != self.commit_qc.data.block {
            return Err(NotACommit("the QC does not certify the last header"));
        }
        for w in hs.windows(2) {
            if w[1].parent != w[0].id() {
                return Err(NotACommit("headers do not link"));
            }
        }
        let data = &self.commit_qc.data;
        if hs
            .iter()
            .any(|h| h.epoch != data.epoch || h.chain != data.chain)
        {
            return Err(NotACommit("a header of another chain or epoch"));
        }
        let parent = &hs[hs.len() - 2];
        if parent.round.0.checked_add(1) != Some(last.round.0) {
            return Err(NotACommit(
                "the certified block does not follow its parent's round",
            ));
        }
        Ok(first)
    }
}
