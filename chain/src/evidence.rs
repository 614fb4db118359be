//! Equivocation the consensus detects, turned into the transaction that reports it.
//!
//! Consensus sees two conflicting votes or proposals of one committee member
//! (`Output::Evidence`); the ledger slashes the accounts whose stake backs the signer's key
//! when a `ReportEquivocation` / `ReportProposalEquivocation` transaction carrying the
//! evidence commits. These helpers build that transaction's kind for every backing account.

use banyan_consensus::Evidence;
use banyan_core::certificate::Committee;
use banyan_core::ids::Address;
use banyan_core::keys::BLS_PUBLIC_KEY_BYTES;
use banyan_core::state::State;
use banyan_core::tx::{
    ProposalEquivocation, SignedProposal, SignedVote, StateKey, TxKind, VoteEquivocation,
};
use banyan_core::value::StateValue;

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
pub fn vote_equivocation(evidence: &Evidence, committee: &Committee) -> Option<VoteEquivocation> {
    let Evidence::ConflictingVotes(a, b) = evidence else {
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
    evidence: &Evidence,
    committee: &Committee,
) -> Option<ProposalEquivocation> {
    let Evidence::ConflictingProposals(a, b) = evidence else {
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
pub fn report_of(evidence: &Evidence, committee: &Committee, offender: Address) -> Option<TxKind> {
    match evidence {
        Evidence::ConflictingVotes(..) => {
            vote_equivocation(evidence, committee).map(|e| TxKind::ReportEquivocation {
                offender,
                evidence: Box::new(e),
            })
        }
        Evidence::ConflictingProposals(..) => {
            proposal_equivocation(evidence, committee).map(|e| TxKind::ReportProposalEquivocation {
                offender,
                evidence: Box::new(e),
            })
        }
    }
}
