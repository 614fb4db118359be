//! Wire types: proposals, votes, timeouts, timeout certificates, block sync, evidence.
//!
//! Every signed message is signed over a domain-separated digest of its content
//! ([`proposal_message`], [`VoteData::signing_message`], [`TimeoutData::signing_message`]), so a
//! signature of one kind can never be replayed as another.

use banyan_core::certificate::{QuorumCertificate, SignerBitmap, VoteData};
use banyan_core::codec::{self, BoundedVec, Decode, Encode};
use banyan_core::hash::{Digest, Domain, Hasher};
use banyan_core::header::Block;
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::BlsSignature;

use crate::error::ConsensusError;

/// Milliseconds: simulated or wall-clock, as the driver decides.
pub type Millis = u64;

/// Most bytes of one encoded consensus message (a proposal carries a whole block).
pub const MAX_MESSAGE_BYTES: usize = banyan_core::header::MAX_BLOCK_BYTES + (64 << 10);
/// Most blocks in one sync response.
pub const MAX_SYNC_BLOCKS: usize = 64;
/// Default [`crate::ReplicaConfig::max_sync_response_bytes`]: 8 MiB, half the transport's
/// default frame limit.
pub const DEFAULT_SYNC_RESPONSE_BYTES: usize = 8 << 20;
/// Most signature groups in a timeout certificate (one per distinct high-QC round).
pub const MAX_TC_GROUPS: usize = 64;

/// Hash domain of timeout signatures.
const TIMEOUT_DOMAIN: Domain = Domain::Custom("banyan/consensus/timeout");

/// The round a (possibly absent, i.e. genesis) QC certifies: genesis counts as round 0.
pub fn qc_round(qc: Option<&QuorumCertificate>) -> Round {
    qc.map(|q| q.data.round).unwrap_or(Round(0))
}

/// The digest a leader signs to propose a block (defined in `core`, where equivocation
/// evidence is checked).
pub use banyan_core::certificate::proposal_message;

/// A leader's proposal: a block extending the block certified by `justify` (genesis when
/// `None`), entered through `justify` (its round is the previous round) or through `tc`.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct Proposal {
    /// The block; its header names the round, the proposer and the parent.
    pub block: Block,
    /// The QC of the parent (the proposer's highest QC); `None` = the parent is genesis.
    pub justify: Option<QuorumCertificate>,
    /// The timeout certificate of the previous round, when the parent is not of that round.
    pub tc: Option<TimeoutCertificate>,
    /// The proposer's signature of [`proposal_message`].
    pub signature: BlsSignature,
}

impl Proposal {
    /// The proposal's round.
    pub fn round(&self) -> Round {
        self.block.header.round
    }

    /// The signed part, enough to prove equivocation.
    pub fn stub(&self, signer: u16) -> ProposalStub {
        let h = &self.block.header;
        ProposalStub {
            chain: h.chain,
            epoch: h.epoch,
            round: h.round,
            block: h.id(),
            signer,
            signature: self.signature,
        }
    }
}

/// A signed proposal without its block: what evidence of equivocation keeps.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct ProposalStub {
    /// The chain.
    pub chain: ChainId,
    /// The epoch.
    pub epoch: Epoch,
    /// The round.
    pub round: Round,
    /// The proposed block id.
    pub block: Digest,
    /// The proposer's committee index.
    pub signer: u16,
    /// The proposer's signature of [`proposal_message`].
    pub signature: BlsSignature,
}

/// A vote, sent to the leader of the next round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct Vote {
    /// What is voted for.
    pub data: VoteData,
    /// The voter's committee index.
    pub signer: u16,
    /// The voter's signature of [`VoteData::signing_message`].
    pub signature: BlsSignature,
    /// The proposer's signature of the proposal voted for, forwarded (not signed by the
    /// voter): when votes of one round name two blocks, the next leader holds two signed
    /// proposals — evidence of equivocation even if the leader sent each block to half the
    /// committee.
    pub proposal_signature: BlsSignature,
}

/// What a timeout signs: the round given up and the round of the signer's highest QC
/// (Jolteon: the certificate of a timeout proves what its signers had seen).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct TimeoutData {
    /// The chain.
    pub chain: ChainId,
    /// The epoch.
    pub epoch: Epoch,
    /// The round that timed out.
    pub round: Round,
    /// Round of the signer's highest QC.
    pub high_qc_round: Round,
}

impl TimeoutData {
    /// The digest signed.
    pub fn signing_message(&self) -> Digest {
        let mut h = Hasher::new(TIMEOUT_DOMAIN);
        h.update(&codec::encode(self));
        h.finalize()
    }
}

/// A timeout, broadcast to everyone. It carries the signer's highest QC and the timeout
/// certificate that let it into its round, so that a lagging validator catches up from it.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct Timeout {
    /// What is signed.
    pub data: TimeoutData,
    /// The QC of round `data.high_qc_round` (`None` when that is genesis, round 0).
    pub high_qc: Option<QuorumCertificate>,
    /// The TC of round `data.round - 1`, if the signer entered its round by one.
    pub last_tc: Option<TimeoutCertificate>,
    /// The signer's committee index.
    pub signer: u16,
    /// Signature of [`TimeoutData::signing_message`].
    pub signature: BlsSignature,
}

/// The signers of a timeout certificate who reported one high-QC round, with the aggregate of
/// their signatures (all over the same [`TimeoutData`]).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct TcGroup {
    /// The high-QC round these signers reported.
    pub high_qc_round: Round,
    /// Who.
    pub signers: SignerBitmap,
    /// The aggregate of their timeout signatures.
    pub signature: BlsSignature,
}

/// A quorum of timeouts for one round. Signers are grouped by the high-QC round they signed,
/// one BLS aggregate per group: verifying costs one pairing check per distinct high-QC round
/// (usually one or two), and every reported round is authenticated.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct TimeoutCertificate {
    /// The chain.
    pub chain: ChainId,
    /// The epoch.
    pub epoch: Epoch,
    /// The round that timed out.
    pub round: Round,
    /// Signer groups, disjoint, ascending by high-QC round.
    pub groups: BoundedVec<TcGroup, MAX_TC_GROUPS>,
}

impl TimeoutCertificate {
    /// The highest high-QC round any signer reported.
    pub fn max_high_qc_round(&self) -> Round {
        self.groups
            .iter()
            .map(|g| g.high_qc_round)
            .max()
            .unwrap_or(Round(0))
    }

    /// The timeout data group `g` signed.
    pub fn group_data(&self, g: &TcGroup) -> TimeoutData {
        TimeoutData {
            chain: self.chain,
            epoch: self.epoch,
            round: self.round,
            high_qc_round: g.high_qc_round,
        }
    }
}

/// Ask a peer for a block and its ancestors.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct SyncRequest {
    /// The newest block wanted.
    pub block: Digest,
    /// How many blocks back from it (at most [`MAX_SYNC_BLOCKS`]).
    pub max_blocks: u16,
}

/// Blocks, newest first, each the parent of the one before.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct SyncResponse {
    /// The blocks.
    pub blocks: BoundedVec<Block, MAX_SYNC_BLOCKS>,
}

/// How an epoch ended: the commit proof of its last block (the block first, then its
/// descendants up to the certified block, and the old committee's QC of the last one). What it
/// proves is checked by [`CertifiedHeader::verify`]; whether the block *ends* the epoch is the
/// application's rule, checked by the caller. Signed by the old committee, it certifies the
/// state — and so the committee — the next epoch starts from.
pub type EpochChangeProof = banyan_core::header::CertifiedHeader;

/// Everything replicas send each other.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub enum Message {
    /// A leader's proposal (broadcast).
    Proposal(Box<Proposal>),
    /// A vote (to the next leader).
    Vote(Box<Vote>),
    /// A timeout (broadcast).
    Timeout(Box<Timeout>),
    /// Ask for blocks.
    SyncRequest(SyncRequest),
    /// Blocks asked for.
    SyncResponse(SyncResponse),
    /// Ask how an epoch ended (sent by a validator still in it).
    EpochProofRequest(Epoch),
    /// How an epoch ended.
    EpochProof(Box<EpochChangeProof>),
}

impl Message {
    /// The canonical encoding.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decode a message from the network, refusing more than [`MAX_MESSAGE_BYTES`] and any
    /// malformed or non-canonical input (including invalid curve points).
    pub fn decode(bytes: &[u8]) -> Result<Self, ConsensusError> {
        Ok(codec::decode(bytes, MAX_MESSAGE_BYTES)?)
    }

    /// The message's round, when it has one.
    pub fn round(&self) -> Option<Round> {
        match self {
            Message::Proposal(p) => Some(p.round()),
            Message::Vote(v) => Some(v.data.round),
            Message::Timeout(t) => Some(t.data.round),
            _ => None,
        }
    }

    /// The epoch of a proposal, vote or timeout.
    pub fn epoch(&self) -> Option<Epoch> {
        match self {
            Message::Proposal(p) => Some(p.block.header.epoch),
            Message::Vote(v) => Some(v.data.epoch),
            Message::Timeout(t) => Some(t.data.epoch),
            _ => None,
        }
    }
}

/// Proof that a validator signed two conflicting messages: what slashing acts on.
// Both variants are large; evidence is rare, so it is not boxed.
#[allow(clippy::large_enum_variant)]
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub enum Evidence {
    /// Two proposals of one round by one leader, for different blocks.
    ConflictingProposals(ProposalStub, ProposalStub),
    /// Two votes of one round by one validator, for different blocks.
    ConflictingVotes(Vote, Vote),
}

impl Evidence {
    /// The committee index of the offender.
    pub fn offender(&self) -> u16 {
        match self {
            Evidence::ConflictingProposals(a, _) => a.signer,
            Evidence::ConflictingVotes(a, _) => a.signer,
        }
    }

    /// Check the evidence against the committee: same signer, same chain/epoch/round,
    /// different blocks, both signatures valid.
    pub fn verify(
        &self,
        committee: &banyan_core::certificate::Committee,
    ) -> Result<(), ConsensusError> {
        let key = |i: u16| {
            committee
                .members()
                .get(i as usize)
                .map(|m| *m.key.key())
                .ok_or(ConsensusError::UnknownSigner {
                    index: i as usize,
                    size: committee.len(),
                })
        };
        match self {
            Evidence::ConflictingProposals(a, b) => {
                if a.signer != b.signer
                    || (a.chain, a.epoch, a.round) != (b.chain, b.epoch, b.round)
                    || a.block == b.block
                {
                    return Err(ConsensusError::InvalidProposal(
                        "evidence does not show a conflict".into(),
                    ));
                }
                let pk = key(a.signer)?;
                for s in [a, b] {
                    s.signature
                        .verify(
                            proposal_message(s.chain, s.epoch, s.round, &s.block).as_bytes(),
                            &pk,
                        )
                        .map_err(|_| ConsensusError::BadSignature("evidence"))?;
                }
                Ok(())
            }
            Evidence::ConflictingVotes(a, b) => {
                if a.signer != b.signer
                    || (a.data.chain, a.data.epoch, a.data.round)
                        != (b.data.chain, b.data.epoch, b.data.round)
                    || a.data.block == b.data.block
                {
                    return Err(ConsensusError::InvalidProposal(
                        "evidence does not show a conflict".into(),
                    ));
                }
                let pk = key(a.signer)?;
                for v in [a, b] {
                    v.signature
                        .verify(v.data.signing_message().as_bytes(), &pk)
                        .map_err(|_| ConsensusError::BadSignature("evidence"))?;
                }
                Ok(())
            }
        }
    }
}

/// The vote data of a block.
pub fn vote_data(block: &Block) -> VoteData {
    let h = &block.header;
    VoteData {
        chain: h.chain,
        epoch: h.epoch,
        round: h.round,
        height: h.height,
        block: h.id(),
    }
}

/// Height of a (possibly genesis) certified block.
pub fn qc_height(qc: Option<&QuorumCertificate>) -> Height {
    qc.map(|q| q.data.height).unwrap_or(Height(0))
}
