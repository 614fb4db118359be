//! The boundary between the executor and transaction semantics.

use crate::error::AccessError;
use banyan_core::ids::{Amount, Nonce, Sequence};
use banyan_core::tx::{AccessSet, StateKey};
use banyan_core::value::{KindMismatch, StateValue, ValueKind};

/// What one transaction sees of the state while it executes: the keys of its access set,
/// holding exactly what serial execution in block order would show it, plus its own writes.
///
/// Contract: every method refuses, with a typed [`AccessError`] and without effect, a key the
/// transaction did not declare (reads need the key declared read or written, writes need it
/// declared written) and a value of another kind than the key holds. Reads see the
/// transaction's own earlier writes.
pub trait TxView {
    /// The value under `key`.
    fn read(&self, key: &StateKey) -> Result<StateValue, AccessError>;

    /// Store `value` under `key`.
    fn write(&mut self, key: &StateKey, value: StateValue) -> Result<(), AccessError>;

    /// The nonce under an [`StateKey::Account`] key.
    fn read_nonce(&self, key: &StateKey) -> Result<Nonce, AccessError> {
        match self.read(key)? {
            StateValue::Nonce(n) => Ok(n),
            _ => Err(mismatch(key, ValueKind::Nonce)),
        }
    }

    /// The amount under a [`StateKey::Balance`] or [`StateKey::Escrow`] key.
    fn read_amount(&self, key: &StateKey) -> Result<Amount, AccessError> {
        match self.read(key)? {
            StateValue::Amount(a) => Ok(a),
            _ => Err(mismatch(key, ValueKind::Amount)),
        }
    }

    /// The sequence under a [`StateKey::ChannelSend`] or [`StateKey::ChannelReceive`] key.
    fn read_sequence(&self, key: &StateKey) -> Result<Sequence, AccessError> {
        match self.read(key)? {
            StateValue::Sequence(s) => Ok(s),
            _ => Err(mismatch(key, ValueKind::Sequence)),
        }
    }
}

/// A typed read of a key that holds another kind: `expected` is what the key holds, `found`
/// the kind asked for.
fn mismatch(key: &StateKey, wanted: ValueKind) -> AccessError {
    AccessError::Kind(KindMismatch {
        key: *key,
        expected: ValueKind::of(key),
        found: wanted,
    })
}

/// Check that `value` may be stored under `key`.
#[inline]
pub(crate) fn check_kind(key: &StateKey, value: &StateValue) -> Result<ValueKind, AccessError> {
    let expected = ValueKind::of(key);
    if value.kind() == expected {
        Ok(expected)
    } else {
        Err(AccessError::Kind(KindMismatch {
            key: *key,
            expected,
            found: value.kind(),
        }))
    }
}

/// Transaction semantics the executor runs: what a transaction may touch, and what it does.
///
/// Contract, on which equality with serial execution rests:
/// - [`access_set`](Vm::access_set) is a pure function of the transaction; it lists no key
///   twice and at most [`MAX_ACCESS_KEYS`](banyan_core::tx::MAX_ACCESS_KEYS) keys.
/// - [`execute`](Vm::execute) is a pure function of the transaction and of what it reads
///   through the view (no clock, no randomness, no other shared state). It writes its effects
///   through the view only, and it writes nothing unless it means to keep it: there is no
///   rollback, so a transaction that fails writes only what its failure leaves (for the ledger,
///   the fee and the nonce) and returns its receipt.
/// - An [`AccessError`] from the view must be passed up (with `?`): it makes the block
///   unexecutable, it is not a transaction failure.
pub trait Vm: Sync {
    /// A transaction.
    type Tx: Sync;
    /// What executing one transaction reports.
    type Receipt: Send;

    /// The keys `tx` may read and write.
    fn access_set(&self, tx: &Self::Tx) -> AccessSet;

    /// Like [`access_set`](Vm::access_set), into a set whose buffers are reused (the executor
    /// calls this once per transaction). The default clears `out` and fills it from
    /// `access_set`.
    fn access_into(&self, tx: &Self::Tx, out: &mut AccessSet) {
        *out = self.access_set(tx);
    }

    /// Execute `tx` against `view`.
    fn execute<V: TxView>(&self, tx: &Self::Tx, view: &mut V)
        -> Result<Self::Receipt, AccessError>;
}
