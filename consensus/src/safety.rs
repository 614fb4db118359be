//! Safety rules: the only code that decides whether this validator may sign.
//!
//! Every signing decision updates [`SafetyData`] and writes it through [`SafetyStorage`]
//! **before** the signature is computed; if the write fails nothing is signed. A validator that
//! crashes at any point and restarts from its storage therefore never signs two different
//! messages of one kind for one round:
//! - proposal for round `r` only if `r > last_proposed_round`;
//! - vote for a block of round `r` with parent QC round `q` only if `r > last_voted_round` and
//!   either `q + 1 == r`, or a TC of round `r - 1` is given and `q >= ` its highest reported
//!   high-QC round (Jolteon's voting rule);
//! - timeout for round `r` with high QC round `q` only if `r >= last_voted_round`,
//!   `q >= one_chain_round`, and `r` follows `q` or the given TC; once signed, a timeout for `r`
//!   is re-signed identically (same `q`) however often it is re-broadcast, and no vote for `r`
//!   follows it (`last_voted_round := r`).

use banyan_core::certificate::VoteData;
use banyan_core::codec::{Decode, Encode};
use banyan_core::hash::Digest;
use banyan_core::ids::{ChainId, Epoch, Round};
use banyan_core::keys::{BlsSecretKey, BlsSignature};
use std::cell::RefCell;
use std::rc::Rc;

use crate::error::{ConsensusError, StorageError};
use crate::types::{proposal_message, TimeoutData};

/// What must survive a crash for the validator to stay safe.
#[derive(Clone, Debug, PartialEq, Eq, Default, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct SafetyData {
    /// The epoch these rounds belong to.
    pub epoch: Epoch,
    /// Highest round voted in (or timed out in).
    pub last_voted_round: Round,
    /// Highest round proposed in.
    pub last_proposed_round: Round,
    /// Highest parent-QC round of a block voted for (Jolteon's 1-chain round).
    pub one_chain_round: Round,
    /// The last vote signed, re-sent unchanged if asked again.
    pub last_vote: Option<VoteData>,
    /// The last timeout signed, re-signed unchanged on re-broadcast.
    pub last_timeout: Option<TimeoutData>,
    /// The last proposal signed: its round and block.
    pub last_proposal: Option<(Round, Digest)>,
}

/// Durable storage of [`SafetyData`].
///
/// Contract: when `store` returns `Ok`, a later `load` — after any crash — returns that data
/// (or data stored after it). When `store` fails the caller treats the replica as crashed.
pub trait SafetyStorage {
    /// The data last stored, `None` on first start.
    fn load(&self) -> Result<Option<SafetyData>, StorageError>;
    /// Store durably.
    fn store(&mut self, data: &SafetyData) -> Result<(), StorageError>;
}

/// In-memory storage; clones share one cell, so a simulated validator's "disk" survives the
/// replica that wrote it.
#[derive(Clone, Debug, Default)]
pub struct MemorySafetyStorage(pub Rc<RefCell<Option<SafetyData>>>);

impl SafetyStorage for MemorySafetyStorage {
    fn load(&self) -> Result<Option<SafetyData>, StorageError> {
        Ok(self.0.borrow().clone())
    }

    fn store(&mut self, data: &SafetyData) -> Result<(), StorageError> {
        *self.0.borrow_mut() = Some(data.clone());
        Ok(())
    }
}

/// The validator's signing key guarded by its safety data.
pub struct SafetyRules {
    chain: ChainId,
    data: SafetyData,
    storage: Box<dyn SafetyStorage>,
    key: BlsSecretKey,
}

impl std::fmt::Debug for SafetyRules {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SafetyRules")
            .field("chain", &self.chain)
            .field("data", &self.data)
            .finish()
    }
}

fn unsafe_(why: String) -> ConsensusError {
    ConsensusError::Unsafe(why)
}

impl SafetyRules {
    /// Load the safety data of `epoch` from `storage` (fresh data if none, or if it is of an
    /// older epoch).
    pub fn new(
        chain: ChainId,
        epoch: Epoch,
        key: BlsSecretKey,
        storage: Box<dyn SafetyStorage>,
    ) -> Result<Self, ConsensusError> {
        let data = match storage.load()? {
            Some(d) if d.epoch >= epoch => d,
            _ => SafetyData {
                epoch,
                ..SafetyData::default()
            },
        };
        Ok(SafetyRules {
            chain,
            data,
            storage,
            key,
        })
    }

    /// The current safety data.
    pub fn data(&self) -> &SafetyData {
        &self.data
    }

    pub(crate) fn key(&self) -> &BlsSecretKey {
        &self.key
    }

    fn commit(&mut self, next: SafetyData) -> Result<(), ConsensusError> {
        if next != self.data {
            self.storage.store(&next)?;
            self.data = next;
        }
        Ok(())
    }

    /// Sign a proposal of `block` for `round`.
    pub fn sign_proposal(
        &mut self,
        epoch: Epoch,
        round: Round,
        block: Digest,
    ) -> Result<BlsSignature, ConsensusError> {
        if epoch != self.data.epoch {
            return Err(unsafe_(format!("proposal for epoch {epoch}")));
        }
        if round <= self.data.last_proposed_round {
            return Err(unsafe_(format!(
                "already proposed in round {}",
                self.data.last_proposed_round
            )));
        }
        let mut next = self.data.clone();
        next.last_proposed_round = round;
        next.last_proposal = Some((round, block));
        self.commit(next)?;
        Ok(self
            .key
            .sign(proposal_message(self.chain, epoch, round, &block).as_bytes()))
    }

    /// Sign a vote for the block described by `vote`, whose parent QC has round `qc_round`,
    /// entered (if not directly after its parent) with a TC of round `tc.0` whose highest
    /// reported high-QC round is `tc.1`.
    pub fn sign_vote(
        &mut self,
        vote: VoteData,
        qc_round: Round,
        tc: Option<(Round, Round)>,
    ) -> Result<BlsSignature, ConsensusError> {
        let r = vote.round;
        if vote.epoch != self.data.epoch || vote.chain != self.chain {
            return Err(unsafe_("vote for another chain or epoch".into()));
        }
        if self.data.last_vote == Some(vote) {
            // The same vote again (e.g. after a restart): identical message, same signature.
            return Ok(self.key.sign(vote.signing_message().as_bytes()));
        }
        if r <= self.data.last_voted_round {
            return Err(unsafe_(format!(
                "round {r} is not above last voted round {}",
                self.data.last_voted_round
            )));
        }
        let direct = qc_round.0.checked_add(1) == Some(r.0);
        let via_tc =
            tc.is_some_and(|(tr, hqc)| tr.0.checked_add(1) == Some(r.0) && qc_round >= hqc);
        if !direct && !via_tc {
            return Err(unsafe_(format!(
                "block of round {r} extends QC of round {qc_round} without a justifying TC"
            )));
        }
        let mut next = self.data.clone();
        next.last_voted_round = r;
        next.one_chain_round = next.one_chain_round.max(qc_round);
        next.last_vote = Some(vote);
        self.commit(next)?;
        Ok(self.key.sign(vote.signing_message().as_bytes()))
    }

    /// Sign a timeout for `round` reporting high QC round `high_qc_round`; `last_tc_round` is
    /// the round of the TC the validator holds, if any. Returns the data actually signed (on
    /// re-broadcast, the data signed first for this round).
    pub fn sign_timeout(
        &mut self,
        epoch: Epoch,
        round: Round,
        high_qc_round: Round,
        last_tc_round: Option<Round>,
    ) -> Result<(TimeoutData, BlsSignature), ConsensusError> {
        if epoch != self.data.epoch {
            return Err(unsafe_(format!("timeout for epoch {epoch}")));
        }
        if let Some(t) = self.data.last_timeout {
            if t.round == round {
                return Ok((t, self.key.sign(t.signing_message().as_bytes())));
            }
            if t.round > round {
                return Err(unsafe_(format!("already timed out in round {}", t.round)));
            }
        }
        if round < self.data.last_voted_round {
            return Err(unsafe_(format!(
                "round {round} is below last voted round {}",
                self.data.last_voted_round
            )));
        }
        if high_qc_round < self.data.one_chain_round {
            return Err(unsafe_(format!(
                "high QC round {high_qc_round} is below 1-chain round {}",
                self.data.one_chain_round
            )));
        }
        let follows = |x: Round| x.0.checked_add(1) == Some(round.0);
        if !follows(high_qc_round) && !last_tc_round.is_some_and(follows) {
            return Err(unsafe_(format!(
                "round {round} follows neither QC round {high_qc_round} nor a TC"
            )));
        }
        let data = TimeoutData {
            chain: self.chain,
            epoch,
            round,
            high_qc_round,
        };
        let mut next = self.data.clone();
        next.last_voted_round = round;
        next.last_timeout = Some(data);
        self.commit(next)?;
        Ok((data, self.key.sign(data.signing_message().as_bytes())))
    }
}
