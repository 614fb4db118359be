//! Supply accounting and the state changes that end an epoch.

use banyan_core::ids::{Amount, AmountError, AssetId, Epoch};
use banyan_core::state::State;
use banyan_core::tx::StateKey;
use banyan_core::value::{StateValue, UnbondingEntry, ValidatorRecord};

/// The sum of the native coin held as balances, stakes, unbonding coins, escrows and the
/// deposits of active sidechains: what staking never changes except by burning a slash, and
/// spawning and retiring never change at all (see the crate docs).
pub fn native_supply(state: &State) -> Result<Amount, AmountError> {
    state
        .sorted_entries()
        .iter()
        .try_fold(Amount::ZERO, |sum, (k, v)| match (k, v) {
            (StateKey::Balance(_, a), StateValue::Amount(x))
            | (StateKey::Escrow(_, a), StateValue::Amount(x))
                if *a == AssetId::NATIVE =>
            {
                sum.checked_add(*x)
            }
            (StateKey::Validator(_), StateValue::Validator(r)) => sum.checked_add(r.stake),
            (StateKey::Unbonding(_), StateValue::Unbonding(u)) => sum.checked_add(u.amount),
            (StateKey::Sidechain(_), StateValue::Sidechain(Some(r))) if r.is_active() => {
                sum.checked_add(r.deposit)
            }
            _ => Ok(sum),
        })
}

/// The state changes that end epoch `ending`, applied by the chain after the transactions of
/// the epoch's last block (and covered by that block's state root): every unbonding entry
/// whose release epoch is at most `ending + 1` is credited to its account's native balance
/// and removed, and a validator record left with neither stake nor unbonding coins is
/// cleared. In key order; each key appears once. An entry whose credit would overflow the
/// balance (impossible while the supply fits in 128 bits) stays for the next boundary.
pub fn end_of_epoch(state: &State, ending: Epoch) -> Vec<(StateKey, StateValue)> {
    let next = ending.0.saturating_add(1);
    let mut writes = Vec::new();
    for (key, value) in state.sorted_entries() {
        let (StateKey::Unbonding(account), StateValue::Unbonding(entry)) = (key, value) else {
            continue;
        };
        if entry.release_epoch.0 > next {
            continue;
        }
        let balance_key = StateKey::Balance(account, AssetId::NATIVE);
        let balance = match state.get(&balance_key) {
            StateValue::Amount(a) => a,
            _ => Amount::ZERO,
        };
        let Ok(credited) = balance.checked_add(entry.amount) else {
            continue;
        };
        writes.push((balance_key, StateValue::Amount(credited)));
        writes.push((key, StateValue::Unbonding(UnbondingEntry::default())));
        let record_key = StateKey::Validator(account);
        if let StateValue::Validator(r) = state.get(&record_key) {
            if r.stake == Amount::ZERO && r != ValidatorRecord::default() {
                writes.push((
                    record_key,
                    StateValue::Validator(ValidatorRecord::default()),
                ));
            }
        }
    }
    writes
}
