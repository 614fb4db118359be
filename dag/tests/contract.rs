//! Transaction semantics that break their contract get a typed error, the same from every
//! executor, never undefined behaviour or a hang.

use banyan_core::ids::{Address, Amount, Nonce};
use banyan_core::state::State;
use banyan_core::tx::{AccessSet, StateKey, MAX_ACCESS_KEYS};
use banyan_core::value::KindMismatch;
use banyan_core::value::{StateValue, ValueKind};
use banyan_dag::{execute_reference, AccessError, ExecError, Executor, Schedule, TxView, Vm};

fn key(i: u8) -> StateKey {
    StateKey::Account(Address([i; 32]))
}

/// What a test transaction does besides reading and writing its declared keys.
#[derive(Clone, Debug)]
enum Misdeed {
    None,
    ReadUndeclared,
    WriteReadOnly,
    WrongKind,
    Panic,
}

#[derive(Clone, Debug)]
struct TestTx {
    set: AccessSet,
    misdeed: Misdeed,
}

/// Increments every written nonce by the sum of the nonces read, then misbehaves as told.
struct TestVm;

impl Vm for TestVm {
    type Tx = TestTx;
    type Receipt = u64;

    fn access_set(&self, tx: &TestTx) -> AccessSet {
        tx.set.clone()
    }

    fn execute<V: TxView>(&self, tx: &TestTx, view: &mut V) -> Result<u64, AccessError> {
        let mut sum = 0u64;
        for k in tx.set.reads.iter().chain(&tx.set.writes) {
            sum = sum.wrapping_add(view.read_nonce(k)?.0);
        }
        for k in &tx.set.writes {
            let n = view.read_nonce(k)?;
            view.write(k, StateValue::Nonce(Nonce(n.0.wrapping_add(sum + 1))))?;
        }
        match tx.misdeed {
            Misdeed::None => {}
            Misdeed::ReadUndeclared => {
                view.read(&key(200))?;
            }
            Misdeed::WriteReadOnly => {
                if let Some(k) = tx.set.reads.first() {
                    view.write(k, StateValue::Nonce(Nonce(1)))?;
                }
            }
            Misdeed::WrongKind => {
                if let Some(k) = tx.set.writes.first() {
                    view.write(k, StateValue::Amount(Amount(1)))?;
                }
            }
            Misdeed::Panic => panic!("test transaction panics"),
        }
        Ok(sum)
    }
}

fn block(misdeeds: &[(usize, Misdeed)], n: usize) -> Vec<TestTx> {
    (0..n)
        .map(|i| TestTx {
            set: AccessSet {
                reads: vec![key((i % 3) as u8 + 10)],
                writes: vec![key((i % 5) as u8)],
            },
            misdeed: misdeeds
                .iter()
                .find(|(j, _)| *j == i)
                .map_or(Misdeed::None, |(_, m)| m.clone()),
        })
        .collect()
}

/// The error every executor reports, checked equal.
fn error_of(txs: &[TestTx]) -> ExecError {
    let state = State::new();
    let reference = execute_reference(&TestVm, &state, txs).expect_err("fails");
    let serial = Executor::new(1)
        .execute_serial(&TestVm, &state, txs)
        .expect_err("fails");
    assert_eq!(serial, reference);
    for threads in [2, 4, 8] {
        let parallel = Executor::new(threads)
            .with_schedule(Schedule::AlwaysParallel)
            .execute(&TestVm, &state, txs)
            .expect_err("fails");
        assert_eq!(parallel, reference, "{threads} threads");
    }
    reference
}

#[test]
fn well_behaved_test_vm_runs_the_same_everywhere() {
    let txs = block(&[], 200);
    let state = State::new();
    let reference = execute_reference(&TestVm, &state, &txs).expect("runs");
    for threads in [1, 2, 4, 8] {
        let out = Executor::new(threads)
            .with_schedule(Schedule::AlwaysParallel)
            .execute(&TestVm, &state, &txs)
            .expect("runs");
        assert_eq!(out.receipts, reference.receipts);
        assert_eq!(out.write_set, reference.write_set);
    }
}

#[test]
fn undeclared_read_is_a_typed_error() {
    let e = error_of(&block(&[(70, Misdeed::ReadUndeclared)], 150));
    assert_eq!(
        e,
        ExecError::Access {
            tx: 70,
            source: AccessError::UndeclaredRead(key(200))
        }
    );
    assert!(!e.is_fatal());
}

#[test]
fn write_of_a_read_only_key_is_a_typed_error() {
    let e = error_of(&block(&[(3, Misdeed::WriteReadOnly)], 100));
    assert_eq!(
        e,
        ExecError::Access {
            tx: 3,
            source: AccessError::UndeclaredWrite(key(10))
        }
    );
}

#[test]
fn value_of_the_wrong_kind_is_a_typed_error() {
    let e = error_of(&block(&[(99, Misdeed::WrongKind)], 100));
    assert_eq!(
        e,
        ExecError::Access {
            tx: 99,
            source: AccessError::Kind(KindMismatch {
                key: key(4),
                expected: ValueKind::Nonce,
                found: ValueKind::Amount
            })
        }
    );
}

#[test]
fn the_lowest_failing_transaction_is_reported() {
    let e = error_of(&block(
        &[
            (120, Misdeed::ReadUndeclared),
            (40, Misdeed::WrongKind),
            (90, Misdeed::Panic),
        ],
        150,
    ));
    assert_eq!(e.tx(), Some(40));
}

#[test]
fn a_panicking_vm_is_caught_and_fatal() {
    let e = error_of(&block(&[(10, Misdeed::Panic)], 100));
    assert_eq!(e, ExecError::VmPanicked { tx: 10 });
    assert!(e.is_fatal());
}

#[test]
fn malformed_access_sets_are_refused_before_execution() {
    let mut txs = block(&[], 50);
    let read = txs[30].set.reads[0];
    txs[30].set.writes.push(read);
    assert_eq!(
        error_of(&txs),
        ExecError::DuplicateKey {
            tx: 30,
            key: txs[30].set.reads[0]
        }
    );
    let mut txs = block(&[], 50);
    txs[20].set.writes = (0..=MAX_ACCESS_KEYS as u8).map(|i| key(100 + i)).collect();
    assert!(matches!(
        error_of(&txs),
        ExecError::TooManyKeys { tx: 20, .. }
    ));
}

#[test]
fn oversized_blocks_are_refused() {
    let txs = block(&[], banyan_dag::MAX_BLOCK_TXS + 1);
    assert!(matches!(
        Executor::new(2).execute(&TestVm, &State::new(), &txs),
        Err(ExecError::TooManyTransactions { .. })
    ));
}
