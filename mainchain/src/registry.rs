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
//! ([`banyan_ledger::end_of_epoch`], run by [`banyan_chain::ChainApp`]). A key proven to have
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
//! Members' keys come from the chain's [`KeyBook`]: each key's proof of possession was checked
//! when it entered the book. [`OwnRegistry`] is this rule as the main chain's
//! [`CommitteeSource`].

use std::collections::HashMap;

use banyan_chain::{CommitteeError, CommitteeSource, KeyBook};
use banyan_core::certificate::{Committee, CommitteeMember, MAX_COMMITTEE_SIZE};
use banyan_core::hash::{hash, Domain};
use banyan_core::ids::{Address, Epoch, ValidatorId};
use banyan_core::keys::{BlsPublicKey, PopVerifiedKey, BLS_PUBLIC_KEY_BYTES};
use banyan_core::state::State;
use banyan_core::tx::StateKey;
use banyan_core::value::StateValue;
use banyan_core::value::ValidatorRecord;

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
) -> Result<Committee, CommitteeError> {
    // Merge records per key, checking each key is known.
    let mut by_key: HashMap<[u8; BLS_PUBLIC_KEY_BYTES], (PopVerifiedKey, u128)> = HashMap::new();
    for (address, record) in registry(state) {
        if is_jailed(state, &record.key) {
            continue;
        }
        let Some(verified) = keys.get(&record.key) else {
            if let Err(source) = BlsPublicKey::from_bytes(&record.key) {
                return Err(CommitteeError::BadKey { address, source });
            }
            return Err(CommitteeError::MissingProof {
                address,
                key: hex::encode(record.key),
            });
        };
        let entry = by_key.entry(record.key).or_insert((*verified, 0));
        entry.1 = entry.1.saturating_add(record.stake.0);
    }
    if by_key.is_empty() {
        return Err(CommitteeError::Empty);
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
    Committee::new(epoch, members).map_err(|e| CommitteeError::Committee(e.to_string()))
}

/// The main chain's committee rule as a [`CommitteeSource`]: the committee of each epoch is
/// [`committee_from_state`] of the chain's own registry.
#[derive(Clone, Copy, Debug, Default)]
pub struct OwnRegistry;

impl CommitteeSource for OwnRegistry {
    fn next_committee(
        &self,
        state: &State,
        _ending: &banyan_core::header::BlockHeader,
        epoch: Epoch,
        keys: &mut KeyBook,
    ) -> Result<Committee, CommitteeError> {
        committee_from_state(state, epoch, keys)
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
