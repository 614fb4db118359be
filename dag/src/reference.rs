//! The reference: serial execution in block order, written to be obviously right rather than
//! fast. Property tests hold the executor (serial fast path and DAG-parallel, any thread count)
//! equal to it, and benches compare against it.

use crate::error::{AccessError, ExecError};
use crate::output::{BlockOutput, ExecStats, Mode, WriteSet};
use crate::vm::{check_kind, TxView, Vm};
use crate::MAX_BLOCK_TXS;
use banyan_core::state::State;
use banyan_core::tx::{AccessSet, StateKey, MAX_ACCESS_KEYS};
use banyan_core::value::StateValue;
use std::collections::{BTreeMap, BTreeSet};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Check one access set: at most [`MAX_ACCESS_KEYS`] keys, none twice.
pub(crate) fn check_access_set(tx: usize, set: &AccessSet) -> Result<(), ExecError> {
    let count = set.reads.len() + set.writes.len();
    if count > MAX_ACCESS_KEYS {
        return Err(ExecError::TooManyKeys {
            tx,
            count,
            limit: MAX_ACCESS_KEYS,
        });
    }
    let keys: Vec<&StateKey> = set.reads.iter().chain(&set.writes).collect();
    for (i, k) in keys.iter().enumerate() {
        if keys[..i].contains(k) {
            return Err(ExecError::DuplicateKey { tx, key: **k });
        }
    }
    Ok(())
}

struct RefView<'a> {
    state: &'a State,
    overlay: &'a mut BTreeMap<StateKey, StateValue>,
    set: &'a AccessSet,
}

impl TxView for RefView<'_> {
    fn read(&self, key: &StateKey) -> Result<StateValue, AccessError> {
        if !self.set.reads.contains(key) && !self.set.writes.contains(key) {
            return Err(AccessError::UndeclaredRead(*key));
        }
        Ok(match self.overlay.get(key) {
            Some(v) => *v,
            None => self.state.get(key),
        })
    }

    fn write(&mut self, key: &StateKey, value: StateValue) -> Result<(), AccessError> {
        if !self.set.writes.contains(key) {
            return Err(AccessError::UndeclaredWrite(*key));
        }
        check_kind(key, &value)?;
        self.overlay.insert(*key, value);
        Ok(())
    }
}

/// Execute `txs` in block order against `state` (left untouched).
///
/// Errors: access sets are all checked first (the lowest failing index is reported), then
/// transactions run in order and the first one to break its access set stops the block.
pub fn execute_reference<V: Vm>(
    vm: &V,
    state: &State,
    txs: &[V::Tx],
) -> Result<BlockOutput<V::Receipt>, ExecError> {
    if txs.len() > MAX_BLOCK_TXS {
        return Err(ExecError::TooManyTransactions {
            count: txs.len(),
            limit: MAX_BLOCK_TXS,
        });
    }
    let mut sets = Vec::with_capacity(txs.len());
    for (i, tx) in txs.iter().enumerate() {
        let set = catch_unwind(AssertUnwindSafe(|| vm.access_set(tx)))
            .map_err(|_| ExecError::VmPanicked { tx: i })?;
        check_access_set(i, &set)?;
        sets.push(set);
    }
    let mut overlay = BTreeMap::new();
    let mut first_touch = Vec::new();
    let mut seen = BTreeSet::new();
    let mut written = BTreeSet::new();
    let mut receipts = Vec::with_capacity(txs.len());
    for (i, (tx, set)) in txs.iter().zip(&sets).enumerate() {
        for k in set.reads.iter().chain(&set.writes) {
            if seen.insert(*k) {
                first_touch.push(*k);
            }
        }
        written.extend(set.writes.iter().copied());
        let mut view = RefView {
            state,
            overlay: &mut overlay,
            set,
        };
        let receipt = catch_unwind(AssertUnwindSafe(|| vm.execute(tx, &mut view)))
            .map_err(|_| ExecError::VmPanicked { tx: i })?
            .map_err(|source| ExecError::Access { tx: i, source })?;
        receipts.push(receipt);
    }
    let entries = first_touch
        .into_iter()
        .filter(|k| written.contains(k))
        .map(|k| {
            let v = overlay.get(&k).copied().unwrap_or_else(|| state.get(&k));
            (k, v)
        })
        .collect();
    Ok(BlockOutput {
        receipts,
        write_set: WriteSet::from_parts(vec![entries]),
        stats: ExecStats {
            mode: Mode::Serial,
            threads: 1,
            edges: 0,
            hottest_key_writes: 0,
            sample: None,
        },
    })
}
