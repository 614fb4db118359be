//! The leader schedule: who proposes in each round, and the VRF proof a proposer attaches.

use crate::draw::{pick_by_cumulative, DrawStream};
use crate::error::VrfError;
use crate::seed::EpochSeed;
use crate::vrf::{VrfOutput, VrfProof, VRF_DST};
use banyan_core::certificate::{Committee, CommitteeMember};
use banyan_core::hash::Domain;
use banyan_core::header::BlockHeader;
use banyan_core::ids::{ChainId, Epoch, Round, ValidatorId};
use banyan_core::keys::{BlsPublicKey, BlsSecretKey};
use std::num::NonZeroU128;

/// Prefix of every proposer VRF input.
const PROPOSER_INPUT_TAG: &[u8; 13] = b"banyan/leader";
/// Bytes of a proposer VRF input: tag, chain, epoch, round, seed.
pub const PROPOSER_INPUT_BYTES: usize = PROPOSER_INPUT_TAG.len() + 4 + 8 + 8 + 32;
/// Stream domain of leader draws.
const LEADER_DOMAIN: Domain = Domain::Custom("banyan/vrf/leader");

/// A proposal slot: one round of one epoch of one chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Slot {
    /// The chain.
    pub chain: ChainId,
    /// The epoch.
    pub epoch: Epoch,
    /// The round within the epoch.
    pub round: Round,
}

impl Slot {
    /// The slot a header was proposed in.
    pub fn of_header(header: &BlockHeader) -> Self {
        Slot {
            chain: header.chain,
            epoch: header.epoch,
            round: header.round,
        }
    }

    /// The proposer's VRF input for this slot under the epoch seed `seed`:
    /// `"banyan/leader" || chain u32 LE || epoch u64 LE || round u64 LE || seed`.
    pub fn vrf_input(&self, seed: &EpochSeed) -> [u8; PROPOSER_INPUT_BYTES] {
        let mut out = [0u8; PROPOSER_INPUT_BYTES];
        let mut at = 0;
        for part in [
            &PROPOSER_INPUT_TAG[..],
            &self.chain.0.to_le_bytes(),
            &self.epoch.0.to_le_bytes(),
            &self.round.0.to_le_bytes(),
            &seed.0,
        ] {
            out[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        out
    }
}

/// The proposer's VRF output and proof for `slot`: what goes into the header's `vrf_proof`.
pub fn prove_proposer(sk: &BlsSecretKey, slot: Slot, seed: &EpochSeed) -> (VrfOutput, VrfProof) {
    // The input has a fixed length below MAX_VRF_INPUT_BYTES, so this cannot be refused.
    let proof = VrfProof::from(sk.sign_with_dst(&slot.vrf_input(seed), VRF_DST));
    (proof.output(), proof)
}

/// Check a header's VRF proof: it is present, `pk` is the key of the header's proposer, and the
/// proof is `pk`'s VRF proof of the header's slot under `seed` (the seed of the header's
/// epoch). Returns the VRF output, the block's contribution to the next epoch seed. It does
/// not check that the proposer is the scheduled leader: see [`LeaderSchedule::verify_header`].
pub fn verify_proposer(
    header: &BlockHeader,
    pk: &BlsPublicKey,
    seed: &EpochSeed,
) -> Result<VrfOutput, VrfError> {
    let proof = VrfProof::from(header.vrf_proof.ok_or(VrfError::MissingProof)?);
    let id = pk.validator_id();
    if id != header.proposer {
        return Err(VrfError::ProposerMismatch {
            header: header.proposer,
            key: id,
        });
    }
    crate::vrf::verify(pk, &Slot::of_header(header).vrf_input(seed), &proof)
}

/// The leader of `round`: the stake-weighted draw `pick_by_cumulative(cumulative,
/// below_u128(total))` on the stream of `seed` in domain `banyan/vrf/leader` with context
/// `chain u32 LE || epoch u64 LE || round u64 LE`.
fn draw_leader(
    seed: &EpochSeed,
    chain: ChainId,
    epoch: Epoch,
    round: Round,
    cumulative: &[u128],
    total: NonZeroU128,
) -> usize {
    let mut ctx = [0u8; 20];
    ctx[..4].copy_from_slice(&chain.0.to_le_bytes());
    ctx[4..12].copy_from_slice(&epoch.0.to_le_bytes());
    ctx[12..].copy_from_slice(&round.0.to_le_bytes());
    let mut stream = DrawStream::new(seed, LEADER_DOMAIN, &ctx);
    pick_by_cumulative(cumulative, stream.below_u128(total))
}

/// Who proposes in each round of one chain's epoch: a stake-weighted draw over the chain's
/// committee from the epoch seed, which anyone holding the seed and the committee recomputes.
#[derive(Clone, Debug)]
pub struct LeaderSchedule {
    chain: ChainId,
    epoch: Epoch,
    seed: EpochSeed,
    members: Vec<CommitteeMember>,
    ids: Vec<ValidatorId>,
    cumulative: Vec<u128>,
    total: NonZeroU128,
}

impl LeaderSchedule {
    /// The schedule of `chain` for the epoch of `committee`, under that epoch's `seed`.
    pub fn new(chain: ChainId, seed: EpochSeed, committee: &Committee) -> Self {
        let members = committee.members().to_vec();
        let ids = members.iter().map(|m| m.key.key().validator_id()).collect();
        let mut acc: u128 = 0;
        let cumulative = members
            .iter()
            .map(|m| {
                acc += m.stake as u128;
                acc
            })
            .collect();
        LeaderSchedule {
            chain,
            epoch: committee.epoch(),
            seed,
            members,
            ids,
            cumulative,
            // A Committee is non-empty with non-zero stakes.
            total: NonZeroU128::new(committee.total_stake()).unwrap_or(NonZeroU128::MIN),
        }
    }

    /// The chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The epoch seed.
    pub fn seed(&self) -> &EpochSeed {
        &self.seed
    }

    /// The committee position of the leader of `round`.
    pub fn leader_index(&self, round: Round) -> usize {
        draw_leader(
            &self.seed,
            self.chain,
            self.epoch,
            round,
            &self.cumulative,
            self.total,
        )
    }

    /// The leader of `round`.
    pub fn leader(&self, round: Round) -> &CommitteeMember {
        // The draw is below the total stake, so it falls on a member.
        &self.members[self.leader_index(round)]
    }

    /// The validator id of the leader of `round`.
    pub fn leader_id(&self, round: Round) -> ValidatorId {
        self.ids[self.leader_index(round)]
    }

    /// The committee members, in the order [`Self::leader_index`] refers to.
    pub fn members(&self) -> &[CommitteeMember] {
        &self.members
    }

    /// The slot of `round` in this schedule.
    pub fn slot(&self, round: Round) -> Slot {
        Slot {
            chain: self.chain,
            epoch: self.epoch,
            round,
        }
    }

    /// Check that `header` is of this chain and epoch, that its proposer is the scheduled
    /// leader of its round, and that it carries that leader's VRF proof. Returns the VRF output.
    pub fn verify_header(&self, header: &BlockHeader) -> Result<VrfOutput, VrfError> {
        if header.chain != self.chain {
            return Err(VrfError::WrongChain {
                expected: self.chain,
                got: header.chain,
            });
        }
        if header.epoch != self.epoch {
            return Err(VrfError::WrongEpoch {
                expected: self.epoch,
                got: header.epoch,
            });
        }
        let i = self.leader_index(header.round);
        if header.proposer != self.ids[i] {
            return Err(VrfError::NotLeader {
                round: header.round,
                expected: self.ids[i],
                got: header.proposer,
            });
        }
        verify_proposer(header, self.members[i].key.key(), &self.seed)
    }
}
