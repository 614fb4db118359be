//! Who proposes in a round, behind a trait: the VRF schedule of `banyan-vrf` in production,
//! round-robin for tests.

use banyan_core::certificate::Committee;
use banyan_core::header::BlockHeader;
use banyan_core::ids::{ChainId, Round};
use banyan_core::keys::{BlsSecretKey, BlsSignature};
use banyan_vrf::{EpochSeed, LeaderSchedule, VRF_DST};

use crate::crypto::SignatureVerifier;
use crate::error::ConsensusError;

/// The leader schedule of one chain's epoch.
///
/// Contract: `leader` is a pure function of the round (every honest replica computes the same
/// leader); `verify_header` accepts a header only if its proposer is `leader(header.round)` of
/// this chain and epoch and its `vrf_proof` is whatever `prove` would have produced for it.
pub trait LeaderElection {
    /// Committee index of the leader of `round`.
    fn leader(&self, round: Round) -> usize;
    /// The proof the leader of `round` attaches to its header (`None` if the schedule needs none).
    fn prove(&self, key: &BlsSecretKey, round: Round) -> Option<BlsSignature>;
    /// Check a header's proposer and proof.
    fn verify_header(
        &self,
        committee: &Committee,
        header: &BlockHeader,
        verifier: &mut dyn SignatureVerifier,
    ) -> Result<(), ConsensusError>;
}

fn check_proposer(
    committee: &Committee,
    header: &BlockHeader,
    leader: usize,
) -> Result<(), ConsensusError> {
    let id = committee
        .members()
        .get(leader)
        .map(|m| m.key.key().validator_id())
        .ok_or(ConsensusError::UnknownSigner {
            index: leader,
            size: committee.len(),
        })?;
    if header.proposer != id {
        return Err(ConsensusError::NotLeader {
            round: header.round,
            reason: format!("proposer {:?}, leader {id:?}", header.proposer),
        });
    }
    Ok(())
}

/// Round `r` is led by member `r mod n`. No proof.
#[derive(Clone, Copy, Debug)]
pub struct RoundRobin {
    n: usize,
}

impl RoundRobin {
    /// For a committee of `n` members (`n >= 1`).
    pub fn new(n: usize) -> Self {
        RoundRobin { n: n.max(1) }
    }
}

impl LeaderElection for RoundRobin {
    fn leader(&self, round: Round) -> usize {
        (round.0 % self.n as u64) as usize
    }

    fn prove(&self, _key: &BlsSecretKey, _round: Round) -> Option<BlsSignature> {
        None
    }

    fn verify_header(
        &self,
        committee: &Committee,
        header: &BlockHeader,
        _verifier: &mut dyn SignatureVerifier,
    ) -> Result<(), ConsensusError> {
        check_proposer(committee, header, self.leader(header.round))
    }
}

/// The stake-weighted VRF schedule of `banyan-vrf` ([`LeaderSchedule`]): the leader is drawn
/// from the public epoch seed; its header carries its VRF proof on the slot, which feeds the
/// next epoch's seed. The proof is checked through the replica's [`SignatureVerifier`] (it is
/// a BLS signature under [`VRF_DST`]), so a simulator's cache covers it too.
#[derive(Clone, Debug)]
pub struct VrfLeaders {
    schedule: LeaderSchedule,
}

impl VrfLeaders {
    /// The schedule of `chain` for `committee`'s epoch under `seed`.
    pub fn new(chain: ChainId, seed: EpochSeed, committee: &Committee) -> Self {
        VrfLeaders {
            schedule: LeaderSchedule::new(chain, seed, committee),
        }
    }
}

impl LeaderElection for VrfLeaders {
    fn leader(&self, round: Round) -> usize {
        self.schedule.leader_index(round)
    }

    fn prove(&self, key: &BlsSecretKey, round: Round) -> Option<BlsSignature> {
        let slot = self.schedule.slot(round);
        Some(key.sign_with_dst(&slot.vrf_input(self.schedule.seed()), VRF_DST))
    }

    fn verify_header(
        &self,
        committee: &Committee,
        header: &BlockHeader,
        verifier: &mut dyn SignatureVerifier,
    ) -> Result<(), ConsensusError> {
        if header.chain != self.schedule.chain() || header.epoch != self.schedule.epoch() {
            return Err(ConsensusError::NotLeader {
                round: header.round,
                reason: "header of another chain or epoch".into(),
            });
        }
        let leader = self.leader(header.round);
        check_proposer(committee, header, leader)?;
        let proof = header.vrf_proof.ok_or(ConsensusError::NotLeader {
            round: header.round,
            reason: "missing VRF proof".into(),
        })?;
        let input = self
            .schedule
            .slot(header.round)
            .vrf_input(self.schedule.seed());
        if verifier.verify_one(committee, leader, &input, &proof, VRF_DST) {
            Ok(())
        } else {
            Err(ConsensusError::BadSignature("VRF proof"))
        }
    }
}
