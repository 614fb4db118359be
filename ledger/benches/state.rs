//! Criterion benches of the authenticated state (`dag::state`):
//!
//! - `state::commit/accounts=N`: what a chain pays per executed block to have the state after
//!   it and its root — clone the parent's state, write a block of 5,000 native transfers
//!   (sender and receiver balances, sender nonce: 15,000 writes, new nonce keys among them)
//!   and take the root — at 10^4, 10^5 and 10^6 funded accounts;
//! - `state::prove` / `state::verify`: a proof of one balance at 10^6 accounts, and its check.

// criterion_group! defines an undocumented function.
#![allow(missing_docs)]

mod support;

use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::ids::{Address, Amount, AssetId, Nonce};
use banyan_core::state::verify_entry;
use banyan_core::state::State;
use banyan_core::tx::StateKey;
use banyan_core::value::StateValue;
use criterion::{black_box, criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use std::time::Duration;
use support::Rng;

const TRANSFERS: usize = 5_000;
const ACCOUNTS: [usize; 3] = [10_000, 100_000, 1_000_000];
const START: u128 = 1 << 60;

fn address(i: usize) -> Address {
    Address(
        hash(
            Domain::Custom("banyan/dag/bench/state"),
            &(i as u64).to_le_bytes(),
        )
        .0,
    )
}

fn balance(a: Address) -> StateKey {
    StateKey::Balance(a, AssetId::NATIVE)
}

/// `accounts` funded accounts (balances only: nobody has sent yet).
fn funded(accounts: usize) -> State {
    State::from_entries(
        (0..accounts).map(|i| (balance(address(i)), StateValue::Amount(Amount(START)))),
    )
    .expect("balance keys hold amounts")
}

/// The writes of a block of transfers between uniformly drawn accounts.
fn block_writes(accounts: usize, seed: u64) -> Vec<(StateKey, StateValue)> {
    let mut rng = Rng::new(seed);
    let mut balances = std::collections::HashMap::new();
    let mut nonces = std::collections::HashMap::new();
    let mut writes = Vec::with_capacity(TRANSFERS * 3);
    for _ in 0..TRANSFERS {
        let (from, to) = (address(rng.below(accounts)), address(rng.below(accounts)));
        let fb = balances.entry(from).or_insert(START);
        *fb -= 11;
        writes.push((balance(from), StateValue::Amount(Amount(*fb))));
        let tb = balances.entry(to).or_insert(START);
        *tb += 10;
        writes.push((balance(to), StateValue::Amount(Amount(*tb))));
        let n = nonces.entry(from).or_insert(0u64);
        *n += 1;
        writes.push((StateKey::Account(from), StateValue::Nonce(Nonce(*n))));
    }
    writes
}

/// The state after a block on `base`, and its root.
fn commit(base: &State, writes: &[(StateKey, StateValue)]) -> (State, Digest) {
    let mut s = base.clone();
    s.set_many(writes.iter().copied()).expect("kinds match");
    let root = s.root();
    (s, root)
}

fn state_benches(c: &mut Criterion) {
    let mut g = c.benchmark_group("state");
    g.sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(8));
    g.throughput(Throughput::Elements(TRANSFERS as u64));
    let mut big = None;
    for accounts in ACCOUNTS {
        let base = funded(accounts);
        // The parent is itself a block's result, as on a running chain.
        let (parent, _) = commit(&base, &block_writes(accounts, 1));
        let writes = block_writes(accounts, 2);
        g.bench_function(format!("commit/accounts={accounts}"), |b| {
            b.iter_batched(
                || (),
                |()| black_box(commit(&parent, &writes)),
                BatchSize::PerIteration,
            )
        });
        big = Some(parent);
    }
    g.finish();
    let state = big.expect("at least one size");
    let key = balance(address(12_345));
    let value = state.get(&key);
    let root = state.root();
    let proof = state.prove(&key);
    let mut g = c.benchmark_group("state");
    g.bench_function("prove/accounts=1000000", |b| {
        b.iter(|| black_box(state.prove(&key)))
    });
    g.bench_function("verify/accounts=1000000", |b| {
        b.iter(|| verify_entry(&root, &key, &value, &proof).expect("valid"))
    });
    g.finish();
}

criterion_group!(benches, state_benches);
criterion_main!(benches);
