//! Criterion benches of the executor, at the contention levels of `dag-bench` (10,000 native
//! transfers between uniformly drawn accounts), each beside its baseline:
//!
//! - `dag::build/threads=T/accounts=N`: conflict DAG construction on 1 and 2 threads;
//! - `dag::execute/{reference,serial,parallel}/accounts=N`: the reference (overlay map), the
//!   serial fast path, and the adaptive DAG executor on 2 threads;
//! - `dag::state/{slots,dashmap}/accounts=N`: serial execution over the executor's slot cells
//!   against the same over a `DashMap` overlay (why the executor does not use a concurrent map).

// criterion_group! defines an undocumented function.
#![allow(missing_docs)]

mod support;

use banyan_core::hash::{hash, Domain};
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Height, Nonce};
use banyan_core::keys::{AccountSecretKey, AccountSignature};
use banyan_core::state::State;
use banyan_core::tx::{AccessSet, SignedTx, StateKey, TxBody, TxKind};
use banyan_core::value::StateValue;
use banyan_dag::{execute_reference, AccessError, Executor, TxView, Vm};
use banyan_ledger::RejectAllProofs;
use banyan_ledger::{Ledger, VerifiedTx};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use dashmap::DashMap;
use std::time::Duration;
use support::Rng;

const TXS: usize = 10_000;
const ACCOUNTS: [usize; 6] = [2, 10, 100, 1_000, 10_000, 100_000];

/// A block of valid transfers among `accounts` accounts and the state it runs against.
/// Signatures are not checked by execution, so a fixed one keeps setup fast.
fn workload(accounts: usize) -> (State, Vec<VerifiedTx>) {
    let keys: Vec<_> = (0..accounts)
        .map(|i| {
            let seed = hash(
                Domain::Custom("banyan/dag/bench"),
                &(i as u64).to_le_bytes(),
            );
            AccountSecretKey::from_bytes(&seed.0).public_key()
        })
        .collect();
    let addrs: Vec<Address> = keys.iter().map(|k| k.address()).collect();
    let state = State::from_entries(addrs.iter().map(|a| {
        (
            StateKey::Balance(*a, AssetId::NATIVE),
            StateValue::Amount(Amount(1 << 60)),
        )
    }))
    .expect("balance keys hold amounts");
    let mut rng = Rng::new(accounts as u64);
    let mut nonces = vec![0u64; accounts];
    let txs = (0..TXS)
        .map(|_| {
            let from = rng.below(accounts);
            let mut to = rng.below(accounts);
            if accounts > 1 && to == from {
                to = (to + 1) % accounts;
            }
            nonces[from] += 1;
            VerifiedTx::assume_verified(SignedTx {
                body: TxBody {
                    chain: ChainId::MAIN,
                    network: banyan_core::hash::Digest::ZERO,
                    sender: keys[from],
                    nonce: Nonce(nonces[from] - 1),
                    fee: Amount(1),
                    kind: TxKind::Transfer {
                        to: addrs[to],
                        asset: AssetId::NATIVE,
                        amount: Amount(1),
                    },
                },
                signature: AccountSignature::from_bytes(&[0u8; 64]),
            })
        })
        .collect();
    (state, txs)
}

/// A transaction's view over a `DashMap` overlay of the state.
struct DashView<'a> {
    overlay: &'a DashMap<StateKey, StateValue>,
    state: &'a State,
    set: &'a AccessSet,
}

impl TxView for DashView<'_> {
    fn read(&self, key: &StateKey) -> Result<StateValue, AccessError> {
        if !self.set.writes.contains(key) && !self.set.reads.contains(key) {
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
        self.overlay.insert(*key, value);
        Ok(())
    }
}

fn dag_benches(c: &mut Criterion) {
    let ledger = Ledger::new(ChainId::MAIN, Height(1), RejectAllProofs);
    for accounts in ACCOUNTS {
        let (state, txs) = workload(accounts);
        let sets: Vec<AccessSet> = txs.iter().map(|t| ledger.access_set(t)).collect();

        let mut g = c.benchmark_group("dag::build");
        g.throughput(Throughput::Elements(TXS as u64));
        g.sample_size(10).measurement_time(Duration::from_secs(2));
        for threads in [1, 2] {
            let mut exec = Executor::new(threads);
            g.bench_function(format!("threads={threads}/accounts={accounts}"), |b| {
                b.iter(|| exec.conflict_dag(&sets).map(|d| d.edge_count()))
            });
        }
        g.finish();

        let mut g = c.benchmark_group("dag::execute");
        g.throughput(Throughput::Elements(TXS as u64));
        g.sample_size(10).measurement_time(Duration::from_secs(2));
        if accounts <= 1_000 {
            g.bench_function(format!("reference/accounts={accounts}"), |b| {
                b.iter(|| execute_reference(&ledger, &state, &txs).map(|o| o.receipts.len()))
            });
        }
        let mut serial = Executor::new(1);
        g.bench_function(format!("serial/accounts={accounts}"), |b| {
            b.iter(|| {
                serial
                    .execute_serial(&ledger, &state, &txs)
                    .map(|o| o.receipts.len())
            })
        });
        let mut parallel = Executor::new(2);
        g.bench_function(format!("parallel/accounts={accounts}"), |b| {
            b.iter(|| {
                parallel
                    .execute(&ledger, &state, &txs)
                    .map(|o| o.receipts.len())
            })
        });
        g.finish();

        let mut g = c.benchmark_group("dag::state");
        g.throughput(Throughput::Elements(TXS as u64));
        g.sample_size(10).measurement_time(Duration::from_secs(2));
        g.bench_function(format!("slots/accounts={accounts}"), |b| {
            b.iter(|| {
                serial
                    .execute_serial(&ledger, &state, &txs)
                    .map(|o| o.receipts.len())
            })
        });
        g.bench_function(format!("dashmap/accounts={accounts}"), |b| {
            b.iter_batched(
                || DashMap::with_capacity(4 * TXS),
                |overlay| {
                    let mut ok = 0usize;
                    for (tx, set) in txs.iter().zip(&sets) {
                        let mut view = DashView {
                            overlay: &overlay,
                            state: &state,
                            set,
                        };
                        ok += ledger.execute(tx, &mut view).is_ok() as usize;
                    }
                    (ok, overlay)
                },
                BatchSize::LargeInput,
            )
        });
        g.finish();
    }
}

criterion_group!(benches, dag_benches);
criterion_main!(benches);
