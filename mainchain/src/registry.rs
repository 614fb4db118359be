//! The validator registry in the state, and the committee it makes.
//!
//! Each [`StateKey::Validator`]`(address)` record holds the stake an account locked and the
//! BLS key it staked with. The committee of epoch `e + 1` is built from the registry **in the
//! state after the block that ends epoch `e`**: a stake, unstake or slash committed during
//! epoch `e` changes the validator set at the next epoch boundary, never in the middle of an
//! epoch.
//!
//! Unstaked coins leave the record at once (they stop counting at the next boundary) and wait
//! in the account's [`StateKey::Unbonding`] entry until `unbonding_epochs` epochs after that
//! boundary, slashable all along; the block ending the epoch before their release pays them
//! ([`banyan_ledger::end_of_epoch`], run by [`crate::ChainApp`]). A key proven to have
//! signed two conflicting votes is slashed and jailed ([`StateKey::Jailed`]) by a
//! `ReportEquivocation` transaction and never sits in a committee again. The rules are in
//! [`banyan_ledger`].
//!
//! # From registry to committee ([`committee_from_state`])
//!
//! 1. Every record with a non-zero stake and a key that is not jailed is a candidate. Records
//!    naming the same BLS key (anyone may stake with a published key and its public proof of
//!    possession) are merged into one candidate holding the sum of their stakes: adding stake
//!    to someone else's key gives the adder no vote, and nobody can lower a key's weight by
//!    staking with it. A jailed key is left out whichever account backs it.
//! 2. If there are more than [`MAX_COMMITTEE_SIZE`] candidates, the highest stakes are kept
//!    (ties broken by the lower validator id).
//! 3. Members are ordered by validator id (the hash of the BLS key): that is the bitmap order.
//! 4. Stakes are `u128`, voting weights `u64`. All stakes are shifted right by the same
//!    number of bits `s`, the least that brings the largest stake under `2^64`
//!    (`s = 0` for any realistic stake), and a weight that the shift would make zero is
//!    raised to one. Proportions are kept up to `2^-64` of the largest stake.
//!
//! A committee member's key must carry a checked proof of possession ([`PopVerifiedKey`]),
//! and core offers no way to make one except verifying the proof. Records in the state keep
//! only the key, so the proofs are kept beside the state (in a [`KeyBook`], persisted by
//! [`crate::storage::ChainStore`]): each key's proof is checked when it enters the book.

use std::collections::HashMap;

use banyan_core::certificate::{Committee, CommitteeMember, MAX_COMMITTEE_SIZE};
use banyan_core::codec::{BoundedVec, Decode, Encode};
use banyan_core::hash::{hash, Domain};
use banyan_core::ids::{Address, Epoch, ValidatorId};
use banyan_core::keys::{
    BlsPublicKey, KeyError, PopVerifiedKey, ProofOfPossession, BLS_PUBLIC_KEY_BYTES,
};
use banyan_core::state::State;
use banyan_core::tx::{
    ProposalEquivocation, SignedProposal, SignedVote, StateKey, TxKind, VoteEquivocation,
};
use banyan_core::value::StateValue;
use banyan_core::value::ValidatorRecord;

/// Why no committee could be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RegistryError {
    /// No validator has stake.
    #[error("the validator registry is empty: no account has stake, so there is no committee")]
    Empty,
    /// A record's key is not a valid BLS public key.
    #[error("validator record of account {address} holds an invalid BLS key: {source}")]
    BadKey {
        /// The account.
        address: Address,
        /// Why the key is invalid.
        source: KeyError,
    },
    /// No checked proof of possession is known for a record's key.
    #[error(
        "no proof of possession is known for the BLS key {key} of account {address}; the key \
         book is incomplete (the data directory is damaged: resync the node)"
    )]
    MissingProof {
        /// The account.
        address: Address,
        /// The key (hex).
        key: String,
    },
    /// The committee could not be formed.
    #[error("cannot form the committee: {0}")]
    Committee(String),
}

/// BLS keys whose proofs of possession were checked, with the proofs (to persist them).
#[derive(Clone, Debug, Default)]
pub struct KeyBook {
    keys: HashMap<[u8; BLS_PUBLIC_KEY_BYTES], (PopVerifiedKey, ProofOfPossession)>,
}

impl KeyBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Check `pop` for `key` and add it. A key already in the book is not checked again.
    pub fn verify_and_insert(
        &mut self,
        key: &BlsPublicKey,
        pop: &ProofOfPossession,
    ) -> Result<PopVerifiedKey, KeyError> {
        if let Some((k, _)) = self.keys.get(key.as_bytes()) {
            return Ok(*k);
        }
        let verified = pop.verify(key)?;
        self.keys.insert(*key.as_bytes(), (verified, *pop));
        Ok(verified)
    }

    /// The checked key with these bytes.
    pub fn get(&self, key: &[u8; BLS_PUBLIC_KEY_BYTES]) -> Option<&PopVerifiedKey> {
        self.keys.get(key).map(|(k, _)| k)
    }

    /// The proof of possession of `key`.
    pub fn proof(&self, key: &[u8; BLS_PUBLIC_KEY_BYTES]) -> Option<&ProofOfPossession> {
        self.keys.get(key).map(|(_, p)| p)
    }

    /// Whether `key` is in the book.
    pub fn contains(&self, key: &[u8; BLS_PUBLIC_KEY_BYTES]) -> bool {
        self.keys.contains_key(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// Every validator record of `state` with stake, by address.
pub fn registry(state: &State) -> Vec<(Address, ValidatorRecord)> {
    state
        .sorted_entries()
        .into_iter()
        .filter_map(|(k, v)| match (k, v) {
            (StateKey::Validator(addr), StateValue::Validator(r)) if r.stake.0 > 0 => {
                Some((addr, r))
            }
            _ => None,
        })
        .collect()
}

/// Whether the BLS key with these bytes is jailed for equivocation in `state`.
pub fn is_jailed(state: &State, key: &[u8; BLS_PUBLIC_KEY_BYTES]) -> bool {
    // The validator id, as `BlsPublicKey::validator_id` computes it, without parsing the key.
    let id = hash(Domain::Validator, key);
    state.get(&StateKey::Jailed(id)) == StateValue::Flag(true)
}

/// The accounts whose validator records hold the BLS key with these bytes (with stake or
/// coins unbonding): the `offender`s an equivocation of that key can be reported against.
/// In address order; one pass over the state, without sorting it.
pub fn accounts_of_key(state: &State, key: &[u8; BLS_PUBLIC_KEY_BYTES]) -> Vec<Address> {
    let mut accounts: Vec<Address> = state
        .entries()
        .filter_map(|(k, v)| match (k, v) {
            (StateKey::Validator(addr), StateValue::Validator(r)) if r.key == *key => Some(addr),
            _ => None,
        })
        .collect();
    accounts.sort_unstable();
    accounts
}

/// The evidence a `ReportEquivocation` transaction carries, from the double-vote evidence
/// consensus detects (`Output::Evidence`), with the signer's key from the committee of the
/// votes' epoch. `None` for proposal evidence and for a signer outside `committee`.
pub fn vote_equivocation(
    evidence: &banyan_consensus::Evidence,
    committee: &Committee,
) -> Option<VoteEquivocation> {
    let banyan_consensus::Evidence::ConflictingVotes(a, b) = evidence else {
        return None;
    };
    if a.signer != b.signer {
        return None;
    }
    let member = committee.members().get(usize::from(a.signer))?;
    Some(VoteEquivocation {
        validator_key: *member.key.key(),
        first: SignedVote {
            data: a.data,
            signature: a.signature,
        },
        second: SignedVote {
            data: b.data,
            signature: b.signature,
        },
    })
}

/// The evidence a `ReportProposalEquivocation` transaction carries, from the double-proposal
/// evidence consensus detects, with the leader's key from the committee of the proposals'
/// epoch. `None` for vote evidence and for a signer outside `committee`.
pub fn proposal_equivocation(
    evidence: &banyan_consensus::Evidence,
    committee: &Committee,
) -> Option<ProposalEquivocation> {
    let banyan_consensus::Evidence::ConflictingProposals(a, b) = evidence else {
        return None;
    };
    if a.signer != b.signer {
        return None;
    }
    let member = committee.members().get(usize::from(a.signer))?;
    let signed = |p: &banyan_consensus::ProposalStub| SignedProposal {
        chain: p.chain,
        epoch: p.epoch,
        round: p.round,
        block: p.block,
        signature: p.signature,
    };
    Some(ProposalEquivocation {
        validator_key: *member.key.key(),
        first: signed(a),
        second: signed(b),
    })
}

/// The transaction kind that reports `evidence` (either kind) against `offender`, the account
/// whose stake backs the signer's key; `None` when the signer is not in `committee`.
pub fn report_of(
    evidence: &banyan_consensus::Evidence,
    committee: &Committee,
    offender: Address,
) -> Option<TxKind> {
    match evidence {
        banyan_consensus::Evidence::ConflictingVotes(..) => vote_equivocation(evidence, committee)
            .map(|e| TxKind::ReportEquivocation {
                offender,
                evidence: Box::new(e),
            }),
        banyan_consensus::Evidence::ConflictingProposals(..) => {
            proposal_equivocation(evidence, committee).map(|e| TxKind::ReportProposalEquivocation {
                offender,
                evidence: Box::new(e),
            })
        }
    }
}

/// Bits every stake is shifted right by so that `max` fits in a `u64`.
fn weight_shift(max: u128) -> u32 {
    let bits = 128 - max.leading_zeros();
    bits.saturating_sub(64)
}

/// The committee of `epoch` from the registry of `state` (see the module docs for the rule).
pub fn committee_from_state(
    state: &State,
    epoch: Epoch,
    keys: &KeyBook,
) -> Result<Committee, RegistryError> {
    // Merge records per key, checking each key is known.
    let mut by_key: HashMap<[u8; BLS_PUBLIC_KEY_BYTES], (PopVerifiedKey, u128)> = HashMap::new();
    for (address, record) in registry(state) {
        if is_jailed(state, &record.key) {
            continue;
        }
        let Some(verified) = keys.get(&record.key) else {
            if let Err(source) = BlsPublicKey::from_bytes(&record.key) {
                return Err(RegistryError::BadKey { address, source });
            }
            return Err(RegistryError::MissingProof {
                address,
                key: hex::encode(record.key),
            });
        };
        let entry = by_key.entry(record.key).or_insert((*verified, 0));
        entry.1 = entry.1.saturating_add(record.stake.0);
    }
    if by_key.is_empty() {
        return Err(RegistryError::Empty);
    }
    let mut candidates: Vec<(ValidatorId, PopVerifiedKey, u128)> = by_key
        .into_values()
        .map(|(k, stake)| (k.key().validator_id(), k, stake))
        .collect();
    candidates.sort_by(|a, b| b.2.cmp(&a.2).then(a.0.cmp(&b.0)));
    candidates.truncate(MAX_COMMITTEE_SIZE);
    candidates.sort_by_key(|a| a.0);
    let max = candidates.iter().map(|c| c.2).max().unwrap_or(0);
    let shift = weight_shift(max);
    let members = candidates
        .into_iter()
        .map(|(_, key, stake)| CommitteeMember {
            key,
            // After the shift the value is below 2^64.
            stake: u64::try_from(stake >> shift).unwrap_or(u64::MAX).max(1),
        })
        .collect();
    Committee::new(epoch, members).map_err(|e| RegistryError::Committee(e.to_string()))
}

/// One committee member as stored: the key, its proof of possession and its weight.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct MemberRecord {
    /// The BLS key.
    pub key: BlsPublicKey,
    /// Its proof of possession.
    pub pop: ProofOfPossession,
    /// Voting weight.
    pub stake: u64,
}

/// A committee in an encodable form (a [`Committee`] holds checked keys, which only a proof
/// check can make, so the proofs travel with it).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct CommitteeRecord {
    /// Members in bitmap order.
    pub members: BoundedVec<MemberRecord, MAX_COMMITTEE_SIZE>,
}

impl CommitteeRecord {
    /// The record of `committee`, with proofs from `keys`.
    pub fn from_committee(committee: &Committee, keys: &KeyBook) -> Result<Self, RegistryError> {
        let mut members = Vec::with_capacity(committee.len());
        for m in committee.members() {
            let key = *m.key.key();
            let pop = keys
                .proof(key.as_bytes())
                .ok_or_else(|| RegistryError::MissingProof {
                    address: Address::default(),
                    key: key.to_hex(),
                })?;
            members.push(MemberRecord {
                key,
                pop: *pop,
                stake: m.stake,
            });
        }
        let members = BoundedVec::new(members)
            .map_err(|m| RegistryError::Committee(format!("{} members", m.len())))?;
        Ok(CommitteeRecord { members })
    }

    /// The committee of `epoch`, checking every proof of possession again (`keys` caches
    /// checked keys and learns the new ones).
    pub fn to_committee(&self, epoch: Epoch, keys: &mut KeyBook) -> Result<Committee, KeyError> {
        let mut members = Vec::with_capacity(self.members.len());
        for m in self.members.iter() {
            let key = keys.verify_and_insert(&m.key, &m.pop)?;
            members.push(CommitteeMember {
                key,
                stake: m.stake,
            });
        }
        Committee::new(epoch, members).map_err(|e| KeyError::Encoding {
            what: "committee record",
            reason: e.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_keeps_weights_in_u64() {
        assert_eq!(weight_shift(0), 0);
        assert_eq!(weight_shift(u64::MAX as u128), 0);
        assert_eq!(weight_shift(u64::MAX as u128 + 1), 1);
        assert_eq!(weight_shift(u128::MAX), 64);
        assert!((u128::MAX >> weight_shift(u128::MAX)) <= u64::MAX as u128);
    }
}
