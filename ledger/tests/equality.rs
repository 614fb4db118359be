//! The executor equals serial execution in block order, bit for bit: receipts, write set and
//! state root, for every thread count, schedule and run.

mod support;

use banyan_core::ids::ChainId;
use banyan_core::state::State;
use banyan_dag::{execute_reference, BlockOutput, Executor, Mode, Schedule};
use banyan_ledger::Receipt;
use banyan_ledger::{Effect, Failure, Outcome};
use proptest::prelude::*;
use support::{ledger, random_block, transfer_block};

fn root_after(state: &State, out: &BlockOutput<Receipt>) -> banyan_core::hash::Digest {
    let mut s = state.clone();
    s.apply(out.write_set.iter());
    s.root()
}

/// Run `txs` through the reference, the serial fast path and the DAG path on 1, 2, 4 and 8
/// threads (forced and adaptive), and check all agree.
fn check_all_equal(seed: u64, n: usize, accounts: usize, chain: ChainId) {
    let (state, txs) = random_block(seed, n, accounts, chain);
    let vm = ledger(chain);
    let reference = execute_reference(&vm, &state, &txs).expect("reference runs");
    let root = root_after(&state, &reference);
    let serial = Executor::new(1)
        .execute_serial(&vm, &state, &txs)
        .expect("serial runs");
    assert_eq!(
        serial.receipts, reference.receipts,
        "serial receipts, seed {seed}"
    );
    assert_eq!(
        serial.write_set, reference.write_set,
        "serial write set, seed {seed}"
    );
    assert_eq!(
        root_after(&state, &serial),
        root,
        "serial root, seed {seed}"
    );
    for threads in [1, 2, 4, 8] {
        for schedule in [Schedule::AlwaysParallel, Schedule::Adaptive] {
            let out = Executor::new(threads)
                .with_schedule(schedule)
                .execute(&vm, &state, &txs)
                .expect("parallel runs");
            assert_eq!(
                out.receipts, reference.receipts,
                "receipts, seed {seed}, {threads} threads, {schedule:?}"
            );
            assert_eq!(
                out.write_set, reference.write_set,
                "write set, seed {seed}, {threads} threads, {schedule:?}"
            );
            assert_eq!(
                root_after(&state, &out),
                root,
                "root, seed {seed}, {threads} threads"
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Random blocks of every kind over overlapping accounts, on the main chain.
    #[test]
    fn parallel_equals_serial_main_chain(seed in any::<u64>(), n in 0usize..160, accounts in 1usize..=8) {
        check_all_equal(seed, n, accounts, ChainId::MAIN);
    }

    /// The same on a sidechain (main-chain-only kinds fail there).
    #[test]
    fn parallel_equals_serial_sidechain(seed in any::<u64>(), n in 0usize..160, accounts in 1usize..=8) {
        check_all_equal(seed, n, accounts, ChainId(1));
    }

    /// Transfer blocks large enough for the adaptive schedule to go parallel.
    #[test]
    fn parallel_equals_serial_transfers(seed in any::<u64>(), n in 100usize..600, accounts in 2usize..=8) {
        let (state, txs) = transfer_block(seed, n, accounts);
        let vm = ledger(ChainId::MAIN);
        let serial = Executor::new(1).execute_serial(&vm, &state, &txs).expect("serial runs");
        for threads in [2, 4, 8] {
            let out = Executor::new(threads).with_schedule(Schedule::AlwaysParallel)
                .execute(&vm, &state, &txs).expect("parallel runs");
            prop_assert_eq!(&out.receipts, &serial.receipts);
            prop_assert_eq!(&out.write_set, &serial.write_set);
        }
    }
}

/// The same executor and fresh ones give the same bits on every run.
#[test]
fn deterministic_across_runs_and_executors() {
    let (state, txs) = random_block(42, 400, 8, ChainId::MAIN);
    let vm = ledger(ChainId::MAIN);
    let mut reused = Executor::new(4).with_schedule(Schedule::AlwaysParallel);
    let first = reused.execute(&vm, &state, &txs).expect("runs");
    let root = root_after(&state, &first);
    for run in 0..10 {
        let out = if run % 2 == 0 {
            reused.execute(&vm, &state, &txs).expect("runs")
        } else {
            Executor::new(1 + run % 4)
                .with_schedule(Schedule::AlwaysParallel)
                .execute(&vm, &state, &txs)
                .expect("runs")
        };
        assert_eq!(out.receipts, first.receipts, "run {run}");
        assert_eq!(
            out.write_set.to_vec(),
            first.write_set.to_vec(),
            "run {run}"
        );
        assert_eq!(root_after(&state, &out), root, "run {run}");
    }
}

/// Executing block after block on the same state stays equal to the reference.
#[test]
fn consecutive_blocks_stay_equal() {
    let vm = ledger(ChainId::MAIN);
    let (mut state_ref, _) = random_block(7, 0, 8, ChainId::MAIN);
    let mut state_par = state_ref.clone();
    let mut exec = Executor::new(3).with_schedule(Schedule::AlwaysParallel);
    for b in 0..8u64 {
        let (_, txs) = random_block(7 + b, 120, 8, ChainId::MAIN);
        let r = execute_reference(&vm, &state_ref, &txs).expect("reference runs");
        let p = exec.execute(&vm, &state_par, &txs).expect("parallel runs");
        assert_eq!(p.receipts, r.receipts, "block {b}");
        state_ref.apply(r.write_set.iter());
        state_par.apply(p.write_set.iter());
        assert_eq!(state_par.root(), state_ref.root(), "block {b}");
    }
}

/// The generator really exercises every kind, applied and failed, including failures that
/// still charge the fee and ones refused at admission.
#[test]
fn generator_covers_every_kind_and_failure() {
    let mut effects = std::collections::BTreeSet::new();
    let mut failures = std::collections::BTreeSet::new();
    for seed in 0..150u64 {
        let (state, txs) = random_block(seed, 120, 1 + (seed % 8) as usize, ChainId::MAIN);
        let out = execute_reference(&ledger(ChainId::MAIN), &state, &txs).expect("runs");
        for r in &out.receipts {
            match &r.outcome {
                Outcome::Applied(e) => {
                    let name = match e {
                        Effect::Transferred => "transfer",
                        Effect::Staked => "stake",
                        Effect::Unstaked => "unstake",
                        Effect::SidechainSpawned(_) => "spawn",
                        Effect::SidechainRetired(_) => "retire",
                        Effect::PacketSent(_) => "send",
                        Effect::PacketDelivered { .. } => "deliver",
                        Effect::PacketAcknowledged { .. } => "ack",
                        Effect::PacketTimedOut { .. } => "timeout",
                        Effect::Slashed { .. } => "slash",
                        Effect::Checkpointed { .. } => "checkpoint",
                        Effect::Settled { .. } => "settle",
                    };
                    effects.insert(name);
                }
                Outcome::Failed(f) => {
                    let name = match f {
                        Failure::WrongChain => "wrong-chain",
                        Failure::BadNonce { .. } => "bad-nonce",
                        Failure::CannotPayFee { .. } => "fee",
                        Failure::InsufficientBalance { .. } => "balance",
                        Failure::Overflow => "overflow",
                        Failure::ProofRejected => "proof",
                        Failure::OutOfOrder { .. } => "order",
                        Failure::NotPending => "not-pending",
                        Failure::ValidatorJailed => "jailed",
                        Failure::UnknownValidator => "unknown-validator",
                        Failure::AlreadySlashed => "already-slashed",
                        Failure::EvidenceOfOtherChain => "other-chain",
                        Failure::EvidenceExpired { .. } => "expired",
                        _ => "other",
                    };
                    failures.insert(name);
                }
            }
        }
    }
    for e in [
        "transfer", "stake", "unstake", "spawn", "retire", "send", "deliver", "ack", "timeout",
        "slash",
    ] {
        assert!(effects.contains(e), "no applied {e} in {effects:?}");
    }
    for f in [
        "wrong-chain",
        "bad-nonce",
        "fee",
        "balance",
        "overflow",
        "proof",
        "order",
        "not-pending",
        "jailed",
        "unknown-validator",
        "already-slashed",
        "other-chain",
        "expired",
    ] {
        assert!(failures.contains(f), "no failure {f} in {failures:?}");
    }
}

/// A block where everything conflicts runs serially under the adaptive schedule; one of
/// disjoint transfers runs in parallel. Both equal the serial result.
#[test]
fn adaptive_schedule_picks_serial_for_chains() {
    let vm = ledger(ChainId::MAIN);
    let (state, txs) = transfer_block(1, 1_000, 1);
    let mut exec = Executor::new(2);
    let out = exec.execute(&vm, &state, &txs).expect("runs");
    assert_eq!(out.stats.mode, Mode::Serial);
    assert!(
        out.stats.sample.is_some(),
        "the prefix sample should decide"
    );
    let serial = Executor::new(1)
        .execute_serial(&vm, &state, &txs)
        .expect("runs");
    assert_eq!(out.receipts, serial.receipts);

    let (state, txs) = transfer_block(1, 1_000, 8);
    let forced = Executor::new(2)
        .with_schedule(Schedule::AlwaysParallel)
        .execute(&vm, &state, &txs)
        .expect("runs");
    assert_eq!(forced.stats.mode, Mode::Parallel);
    let serial = Executor::new(1)
        .execute_serial(&vm, &state, &txs)
        .expect("runs");
    assert_eq!(forced.receipts, serial.receipts);
    assert_eq!(forced.write_set, serial.write_set);
}
