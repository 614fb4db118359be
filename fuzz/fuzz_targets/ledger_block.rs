//! A block of transactions of every kind with every choice steered by the input: the
//! pre-state (balances, stakes, unbonding coins, sidechains, channels, light clients), each
//! transaction's kind, sender, nonce, fee, amounts and proofs. Executed four ways — the
//! reference, the serial fast path, and the DAG executor on two threads, forced parallel and
//! adaptive — which must agree bit for bit (receipts and write set); and on the main chain a
//! block never creates native coins (what it removes is at least the fees it charged).
#![no_main]

#[allow(dead_code, unused_imports, clippy::all)]
#[path = "../../ledger/tests/support/mod.rs"]
mod support;

use banyan_core::ids::ChainId;
use banyan_dag::{execute_reference, Executor, Schedule};
use banyan_fuzz::Bytes;
use banyan_ledger::{native_supply, total_fees};
use libfuzzer_sys::fuzz_target;

/// Most transactions in one input's block.
const MAX_TXS: usize = 48;

fuzz_target!(|data: &[u8]| {
    let mut input = Bytes(data);
    let chain = if input.u8() & 1 == 0 {
        ChainId::MAIN
    } else {
        ChainId(1)
    };
    let accounts = 1 + usize::from(input.u8()) % support::MAX_ACCOUNTS;
    let n = usize::from(input.u8()) % (MAX_TXS + 1);
    let mut rng = support::Rng::from_bytes(input.0);
    let (state, txs) = support::random_block_from(&mut rng, n, accounts, chain);
    let vm = support::ledger(chain);
    let reference = execute_reference(&vm, &state, &txs).expect("the reference executes any block");
    let serial = Executor::new(1)
        .execute_serial(&vm, &state, &txs)
        .expect("the serial path executes any block");
    assert_eq!(serial.receipts, reference.receipts, "serial receipts");
    assert_eq!(serial.write_set, reference.write_set, "serial write set");
    for schedule in [Schedule::AlwaysParallel, Schedule::Adaptive] {
        let out = Executor::new(2)
            .with_schedule(schedule)
            .execute(&vm, &state, &txs)
            .expect("the DAG executor executes any block");
        assert_eq!(out.receipts, reference.receipts, "receipts, {schedule:?}");
        assert_eq!(
            out.write_set, reference.write_set,
            "write set, {schedule:?}"
        );
    }
    if chain == ChainId::MAIN {
        let mut after = state.clone();
        after.apply(reference.write_set.iter());
        let fees = total_fees(&reference.receipts).expect("fees of one block fit");
        if let (Ok(before), Ok(now)) = (native_supply(&state), native_supply(&after)) {
            let spent = now.checked_add(fees).expect("below the supply before");
            assert!(
                spent <= before,
                "a block created native coins: {before:?} -> {now:?} + fees {fees:?}"
            );
        }
    }
});
