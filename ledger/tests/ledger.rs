//! The shared ledger semantics, one rule at a time.

mod support;

use banyan_core::certificate::VoteData;
use banyan_core::hash::Digest;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce, Round, Sequence};
use banyan_core::keys::{AccountSignature, BlsSecretKey};
use banyan_core::state::State;
use banyan_core::tx::{
    sidechain_id, Acknowledgement, AssetOrigin, Equivocation, EvidenceError, Packet,
    SidechainParams, SignedTx, SignedVote, StateKey, TxBody, TxKind, VoteEquivocation, WhichVote,
    MAX_ACCESS_KEYS, SIDECHAIN_ID_BIT,
};
use banyan_core::value::StateValue;
use banyan_core::value::{
    LightClientState, PendingPackets, SidechainRecord, SidechainStatus, UnbondingEntry,
    ValidatorRecord,
};
use banyan_dag::{Executor, Schedule, Vm};
use banyan_ledger::{
    end_of_epoch, native_supply, total_fees, Effect, Failure, Outcome, RejectAllProofs,
    StakingRules, VerifyError,
};
use banyan_ledger::{Ledger, Receipt, VerifiedTx};
use support::{
    bridged, foreign_asset, ledger, pool, random_block, EPOCH, HEIGHT, MIN_DEPOSIT, RULES,
};

const MAIN: ChainId = ChainId::MAIN;

fn addr(i: usize) -> Address {
    pool().addrs[i]
}

fn tx(from: usize, nonce: u64, fee: u128, kind: TxKind) -> VerifiedTx {
    tx_on(MAIN, from, nonce, fee, kind)
}

fn tx_on(chain: ChainId, from: usize, nonce: u64, fee: u128, kind: TxKind) -> VerifiedTx {
    VerifiedTx::assume_verified(SignedTx {
        body: TxBody {
            chain,
            network: banyan_core::hash::Digest::ZERO,
            sender: pool().keys[from],
            nonce: Nonce(nonce),
            fee: Amount(fee),
            kind,
        },
        signature: AccountSignature::from_bytes(&[0u8; 64]),
    })
}

fn transfer(to: usize, amount: u128) -> TxKind {
    TxKind::Transfer {
        to: addr(to),
        asset: AssetId::NATIVE,
        amount: Amount(amount),
    }
}

fn balance(state: &State, who: usize, asset: AssetId) -> u128 {
    match state.get(&StateKey::Balance(addr(who), asset)) {
        StateValue::Amount(a) => a.0,
        other => panic!("not an amount: {other:?}"),
    }
}

fn nonce(state: &State, who: usize) -> u64 {
    match state.get(&StateKey::Account(addr(who))) {
        StateValue::Nonce(n) => n.0,
        other => panic!("not a nonce: {other:?}"),
    }
}

fn fund(state: &mut State, who: usize, asset: AssetId, amount: u128) {
    state
        .set(
            StateKey::Balance(addr(who), asset),
            StateValue::Amount(Amount(amount)),
        )
        .expect("amount key");
}

/// Run on the serial and a parallel executor (checking they agree); the new state and the
/// receipts.
fn run<V: Vm<Tx = VerifiedTx, Receipt = Receipt>>(
    vm: &V,
    state: &State,
    txs: &[VerifiedTx],
) -> (State, Vec<Receipt>) {
    let serial = Executor::new(1)
        .execute_serial(vm, state, txs)
        .expect("runs");
    let parallel = Executor::new(2)
        .with_schedule(Schedule::AlwaysParallel)
        .execute(vm, state, txs)
        .expect("runs");
    assert_eq!(serial.receipts, parallel.receipts);
    assert_eq!(serial.write_set, parallel.write_set);
    let mut s = state.clone();
    s.apply(serial.write_set.iter());
    (s, serial.receipts)
}

#[test]
fn access_sets_name_each_key_once_and_reused_buffers_agree() {
    for seed in 0..40 {
        let chain = if seed % 2 == 0 { MAIN } else { ChainId(1) };
        let (_, txs) = random_block(seed, 100, 8, chain);
        let vm = ledger(chain);
        let mut reused = Default::default();
        for t in &txs {
            let set = vm.access_set(t);
            // Every transaction writes its sender's nonce and native balance (its fee).
            let sender = t.tx().sender();
            assert!(set.writes.contains(&StateKey::Account(sender)));
            assert!(set
                .writes
                .contains(&StateKey::Balance(sender, AssetId::NATIVE)));
            // No key is listed twice, and none both read and written.
            let mut all: Vec<_> = set.reads.iter().chain(set.writes.iter()).collect();
            let n = all.len();
            assert!(n <= MAX_ACCESS_KEYS);
            all.sort();
            all.dedup();
            assert_eq!(all.len(), n, "{:?}", t.tx().body.kind);
            vm.access_into(t, &mut reused);
            assert_eq!(reused, set);
        }
    }
}

#[test]
fn transfer_moves_value_and_charges_fee() {
    let mut state = State::new();
    fund(&mut state, 0, AssetId::NATIVE, 100);
    let (after, receipts) = run(&ledger(MAIN), &state, &[tx(0, 0, 3, transfer(1, 40))]);
    assert_eq!(receipts[0].outcome, Outcome::Applied(Effect::Transferred));
    assert_eq!(receipts[0].fee_charged, Amount(3));
    assert_eq!(balance(&after, 0, AssetId::NATIVE), 57);
    assert_eq!(balance(&after, 1, AssetId::NATIVE), 40);
    assert_eq!(nonce(&after, 0), 1);
    assert_eq!(total_fees(&receipts), Ok(Amount(3)));
}

#[test]
fn failures_are_deterministic_receipts() {
    let mut state = State::new();
    fund(&mut state, 0, AssetId::NATIVE, 10);
    fund(&mut state, 1, AssetId::NATIVE, u128::MAX);
    let txs = [
        // Bad nonce: refused, nothing charged.
        tx(0, 5, 1, transfer(1, 1)),
        // Insufficient balance: fee and nonce taken, no transfer.
        tx(0, 0, 1, transfer(2, 100)),
        // Overflow at the recipient: fee and nonce taken, no transfer.
        tx(0, 1, 1, transfer(1, 2)),
        // Cannot pay the fee: refused.
        tx(0, 2, 1_000, transfer(2, 1)),
        // Wrong chain: refused.
        tx_on(ChainId(9), 0, 2, 1, transfer(2, 1)),
        // Self transfer: only checks the balance.
        tx(0, 2, 1, transfer(0, 5)),
    ];
    let (after, r) = run(&ledger(MAIN), &state, &txs);
    assert_eq!(
        r[0].outcome,
        Outcome::Failed(Failure::BadNonce { expected: Nonce(0) })
    );
    assert_eq!(r[0].fee_charged, Amount::ZERO);
    assert_eq!(
        r[1].outcome,
        Outcome::Failed(Failure::InsufficientBalance {
            have: Amount(9),
            need: Amount(100)
        })
    );
    assert_eq!(r[1].fee_charged, Amount(1));
    assert_eq!(r[2].outcome, Outcome::Failed(Failure::Overflow));
    assert_eq!(
        r[3].outcome,
        Outcome::Failed(Failure::CannotPayFee { balance: Amount(8) })
    );
    assert_eq!(r[3].fee_charged, Amount::ZERO);
    assert_eq!(r[4].outcome, Outcome::Failed(Failure::WrongChain));
    assert_eq!(r[5].outcome, Outcome::Applied(Effect::Transferred));
    assert_eq!(balance(&after, 0, AssetId::NATIVE), 7);
    assert_eq!(balance(&after, 1, AssetId::NATIVE), u128::MAX);
    assert_eq!(nonce(&after, 0), 3);
    assert_eq!(total_fees(&r), Ok(Amount(3)));
    assert!(!Failure::BadNonce { expected: Nonce(0) }.charges_fee());
    assert!(Failure::Overflow.charges_fee());
}

fn record(state: &State, who: usize) -> ValidatorRecord {
    match state.get(&StateKey::Validator(addr(who))) {
        StateValue::Validator(r) => r,
        other => panic!("not a record: {other:?}"),
    }
}

fn unbonding(state: &State, who: usize) -> UnbondingEntry {
    match state.get(&StateKey::Unbonding(addr(who))) {
        StateValue::Unbonding(u) => u,
        other => panic!("not an unbonding entry: {other:?}"),
    }
}

fn apply(state: &State, writes: Vec<(StateKey, StateValue)>) -> State {
    let mut s = state.clone();
    for (k, v) in writes {
        s.set(k, v).expect("kind matches key");
    }
    s
}

#[test]
fn stake_and_unstake_move_native_coins_into_the_record() {
    let (key, pop) = pool().bls[0];
    let (other_key, other_pop) = pool().bls[1];
    let mut state = State::new();
    fund(&mut state, 0, AssetId::NATIVE, 1_000);
    let stake = |amount: u128, key, pop| TxKind::Stake {
        validator_key: key,
        pop: Box::new(pop),
        amount: Amount(amount),
    };
    let unstake = |amount: u128| TxKind::Unstake {
        amount: Amount(amount),
    };
    let txs = [
        tx(0, 0, 0, stake(300, key, pop)),
        tx(0, 1, 0, stake(1, other_key, other_pop)),
        tx(0, 2, 0, unstake(500)),
        tx(0, 3, 0, unstake(100)),
    ];
    let (after, r) = run(&ledger(MAIN), &state, &txs);
    assert_eq!(r[0].outcome, Outcome::Applied(Effect::Staked));
    assert_eq!(r[1].outcome, Outcome::Failed(Failure::ValidatorKeyMismatch));
    assert!(matches!(
        r[2].outcome,
        Outcome::Failed(Failure::InsufficientStake { .. })
    ));
    assert_eq!(r[3].outcome, Outcome::Applied(Effect::Unstaked));
    // Unstaked coins are not paid: they wait, unbonding, until `EPOCH + 1 + unbonding_epochs`.
    assert_eq!(balance(&after, 0, AssetId::NATIVE), 700);
    assert_eq!(
        record(&after, 0),
        ValidatorRecord {
            stake: Amount(200),
            key: *key.as_bytes()
        }
    );
    let release = Epoch(EPOCH.0 + 1 + RULES.unbonding_epochs);
    assert_eq!(
        unbonding(&after, 0),
        UnbondingEntry {
            amount: Amount(100),
            release_epoch: release
        }
    );
    assert_eq!(native_supply(&after), native_supply(&state));

    // Unstaking everything keeps the record's key while coins are unbonding: restaking with
    // another key is refused until they are paid.
    let (after, r) = run(
        &ledger(MAIN),
        &after,
        &[
            tx(0, 4, 0, unstake(200)),
            tx(0, 5, 0, stake(5, other_key, other_pop)),
        ],
    );
    assert_eq!(r[0].outcome, Outcome::Applied(Effect::Unstaked));
    assert_eq!(r[1].outcome, Outcome::Failed(Failure::ValidatorKeyMismatch));
    assert_eq!(record(&after, 0).stake, Amount::ZERO);
    assert_eq!(record(&after, 0).key, *key.as_bytes());
    assert_eq!(unbonding(&after, 0).amount, Amount(300));
    assert_eq!(balance(&after, 0, AssetId::NATIVE), 700);

    // Epoch boundaries before the release pay nothing; the one into the release epoch pays
    // all and clears the empty record.
    for ending in EPOCH.0..release.0 - 1 {
        assert!(end_of_epoch(&after, Epoch(ending)).is_empty(), "{ending}");
    }
    let paid = apply(&after, end_of_epoch(&after, Epoch(release.0 - 1)));
    assert_eq!(balance(&paid, 0, AssetId::NATIVE), 1_000);
    assert_eq!(unbonding(&paid, 0), UnbondingEntry::default());
    assert_eq!(record(&paid, 0), ValidatorRecord::default());
    assert_eq!(native_supply(&paid), native_supply(&state));
    // A late boundary pays too (the first one at or after the release epoch).
    let late = apply(&after, end_of_epoch(&after, Epoch(release.0 + 7)));
    assert_eq!(late, paid);
    // Then any key may be staked again.
    let (_, r) = run(
        &ledger(MAIN),
        &paid,
        &[tx(0, 6, 0, stake(5, other_key, other_pop))],
    );
    assert_eq!(r[0].outcome, Outcome::Applied(Effect::Staked));
}

#[test]
fn a_later_unstake_joins_the_entry_and_moves_its_release() {
    let (key, _) = pool().bls[0];
    let mut state = State::new();
    state
        .set(
            StateKey::Validator(addr(0)),
            StateValue::Validator(ValidatorRecord {
                stake: Amount(100),
                key: *key.as_bytes(),
            }),
        )
        .expect("record");
    let unstake = |nonce, amount| {
        tx(
            0,
            nonce,
            0,
            TxKind::Unstake {
                amount: Amount(amount),
            },
        )
    };
    let (after, _) = run(&ledger(MAIN), &state, &[unstake(0, 10)]);
    let later = ledger(MAIN).with_staking(RULES, Epoch(EPOCH.0 + 2));
    let (after, r) = run(&later, &after, &[unstake(1, 20)]);
    assert_eq!(r[0].outcome, Outcome::Applied(Effect::Unstaked));
    assert_eq!(
        unbonding(&after, 0),
        UnbondingEntry {
            amount: Amount(30),
            release_epoch: Epoch(EPOCH.0 + 2 + 1 + RULES.unbonding_epochs),
        }
    );
    // With no unbonding period, coins are paid at the boundary where they stop counting.
    let instant = StakingRules {
        unbonding_epochs: 0,
        ..RULES
    };
    let (after, _) = run(
        &ledger(MAIN).with_staking(instant, Epoch(9)),
        &state,
        &[unstake(0, 100)],
    );
    assert!(end_of_epoch(&after, Epoch(8)).is_empty());
    let paid = apply(&after, end_of_epoch(&after, Epoch(9)));
    assert_eq!(balance(&paid, 0, AssetId::NATIVE), 100);
}

/// Two votes of `key` in one slot of `chain`, naming blocks `a` and `b`.
fn equivocation(
    key: &BlsSecretKey,
    chain: ChainId,
    epoch: u64,
    rounds: (u64, u64),
    blocks: (u8, u8),
) -> VoteEquivocation {
    let vote = |round: u64, b: u8| {
        let data = VoteData {
            chain,
            epoch: Epoch(epoch),
            round: Round(round),
            height: Height(7),
            block: Digest([b; 32]),
        };
        SignedVote {
            data,
            signature: key.sign(data.signing_message().as_bytes()),
        }
    };
    VoteEquivocation {
        validator_key: key.public_key(),
        first: vote(rounds.0, blocks.0),
        second: vote(rounds.1, blocks.1),
    }
}

fn report(offender: usize, evidence: VoteEquivocation) -> TxKind {
    TxKind::ReportEquivocation {
        offender: addr(offender),
        evidence: Box::new(evidence),
    }
}

#[test]
fn equivocation_evidence_slashes_stake_and_unbonding_coins_once() {
    let key0 = pool().evidence[0].validator_key;
    let (key1, _) = pool().bls[1];
    let pop0 = pool().bls[0].1;
    // Key 0, this chain, epoch 2 (within the unbonding period of EPOCH).
    let evidence = pool().evidence[1].clone();
    assert_eq!(evidence.validator_key, key0);
    assert_eq!(evidence.slot().0, MAIN);
    let expired = pool().evidence[0].clone();
    let other_chain = pool().evidence[3].clone();
    let of_key1 = pool().evidence[5].clone();
    let mut swapped = evidence.clone();
    std::mem::swap(&mut swapped.first, &mut swapped.second);

    let mut state = State::new();
    let put_record =
        |state: &mut State, who: usize, stake: u128, key: &banyan_core::keys::BlsPublicKey| {
            state
                .set(
                    StateKey::Validator(addr(who)),
                    StateValue::Validator(ValidatorRecord {
                        stake: Amount(stake),
                        key: *key.as_bytes(),
                    }),
                )
                .expect("record");
        };
    put_record(&mut state, 0, 1_000, &key0);
    state
        .set(
            StateKey::Unbonding(addr(0)),
            StateValue::Unbonding(UnbondingEntry {
                amount: Amount(505),
                release_epoch: Epoch(5),
            }),
        )
        .expect("entry");
    put_record(&mut state, 3, 77, &key1);
    fund(&mut state, 0, AssetId::NATIVE, 50);
    fund(&mut state, 1, AssetId::NATIVE, 100);
    let txs = [
        tx(1, 0, 3, report(0, evidence.clone())),
        // The same evidence again, or the same offence with the votes swapped: refused.
        tx(1, 1, 3, report(0, evidence.clone())),
        tx(1, 2, 3, report(0, swapped)),
        // No record at that account, or a record of another key: unknown validator.
        tx(1, 3, 3, report(2, evidence.clone())),
        tx(1, 4, 3, report(3, evidence.clone())),
        tx(1, 5, 3, report(0, of_key1)),
        // Too old, or about another chain.
        tx(1, 6, 3, report(0, expired)),
        tx(1, 7, 3, report(0, other_chain)),
        // A jailed key cannot stake again.
        tx(
            0,
            0,
            1,
            TxKind::Stake {
                validator_key: key0,
                pop: Box::new(pop0),
                amount: Amount(10),
            },
        ),
    ];
    let (after, r) = run(&ledger(MAIN), &state, &txs);
    // 10% of 1000 staked and 10% of 505 unbonding (rounded down).
    assert_eq!(
        r[0].outcome,
        Outcome::Applied(Effect::Slashed {
            offender: addr(0),
            burned: Amount(100 + 50)
        })
    );
    assert_eq!(r[1].outcome, Outcome::Failed(Failure::AlreadySlashed));
    assert_eq!(r[2].outcome, Outcome::Failed(Failure::AlreadySlashed));
    assert_eq!(r[3].outcome, Outcome::Failed(Failure::UnknownValidator));
    assert_eq!(r[4].outcome, Outcome::Failed(Failure::UnknownValidator));
    assert_eq!(r[5].outcome, Outcome::Failed(Failure::UnknownValidator));
    assert_eq!(
        r[6].outcome,
        Outcome::Failed(Failure::EvidenceExpired {
            offense: Epoch(0),
            now: EPOCH
        })
    );
    assert_eq!(r[7].outcome, Outcome::Failed(Failure::EvidenceOfOtherChain));
    assert_eq!(r[8].outcome, Outcome::Failed(Failure::ValidatorJailed));
    // Refusals pay their fee and change nothing else.
    assert!(r.iter().all(|r| r.fee_charged != Amount::ZERO));
    assert_eq!(balance(&after, 1, AssetId::NATIVE), 100 - 8 * 3);
    assert_eq!(balance(&after, 0, AssetId::NATIVE), 49);
    assert_eq!(record(&after, 0).stake, Amount(900));
    assert_eq!(record(&after, 0).key, *key0.as_bytes());
    assert_eq!(
        unbonding(&after, 0),
        UnbondingEntry {
            amount: Amount(455),
            release_epoch: Epoch(5)
        }
    );
    assert_eq!(record(&after, 3).stake, Amount(77));
    assert_eq!(
        after.get(&StateKey::Jailed(key0.validator_id())),
        StateValue::Flag(true)
    );
    assert_eq!(
        after.get(&StateKey::Jailed(key1.validator_id())),
        StateValue::Flag(false)
    );
    // Supply: down by the fees and the burned coins, nothing else.
    let fees = total_fees(&r).expect("fees").0;
    assert_eq!(
        native_supply(&after).expect("fits").0,
        native_supply(&state).expect("fits").0 - fees - 150
    );
    // The jailed account may still unstake what is left; it unbonds like any other.
    let (after, r) = run(
        &ledger(MAIN),
        &after,
        &[tx(
            0,
            1,
            0,
            TxKind::Unstake {
                amount: Amount(900),
            },
        )],
    );
    assert_eq!(r[0].outcome, Outcome::Applied(Effect::Unstaked));
    assert_eq!(unbonding(&after, 0).amount, Amount(1_355));
}

#[test]
fn a_full_slash_of_unbonding_coins_clears_the_account() {
    let key0 = pool().evidence[1].validator_key;
    let mut state = State::new();
    state
        .set(
            StateKey::Validator(addr(0)),
            StateValue::Validator(ValidatorRecord {
                stake: Amount::ZERO,
                key: *key0.as_bytes(),
            }),
        )
        .expect("record");
    state
        .set(
            StateKey::Unbonding(addr(0)),
            StateValue::Unbonding(UnbondingEntry {
                amount: Amount(u128::MAX),
                release_epoch: Epoch(6),
            }),
        )
        .expect("entry");
    let all = StakingRules {
        slash_fraction_percent: 100,
        ..RULES
    };
    let vm = Ledger::new(MAIN, HEIGHT, RejectAllProofs).with_staking(all, EPOCH);
    let (after, r) = run(
        &vm,
        &state,
        &[tx(1, 0, 0, report(0, pool().evidence[1].clone()))],
    );
    assert_eq!(
        r[0].outcome,
        Outcome::Applied(Effect::Slashed {
            offender: addr(0),
            burned: Amount(u128::MAX)
        })
    );
    assert_eq!(record(&after, 0), ValidatorRecord::default());
    assert_eq!(unbonding(&after, 0), UnbondingEntry::default());
    // A replay is named as one, though the account has nothing left.
    let (_, r) = run(
        &vm,
        &after,
        &[tx(1, 1, 0, report(0, pool().evidence[1].clone()))],
    );
    assert_eq!(r[0].outcome, Outcome::Failed(Failure::AlreadySlashed));
    // Fractions round down and never overflow.
    let ten = StakingRules {
        slash_fraction_percent: 10,
        ..RULES
    };
    assert_eq!(ten.slashed_part(Amount(u128::MAX)), Amount(u128::MAX / 10));
    assert_eq!(ten.slashed_part(Amount(9)), Amount(0));
    assert_eq!(all.slashed_part(Amount(9)), Amount(9));
    assert!(StakingRules {
        slash_fraction_percent: 101,
        ..RULES
    }
    .validate()
    .is_err());
}

#[test]
fn forged_evidence_is_refused_at_verification_with_typed_errors() {
    use banyan_core::keys::AccountSecretKey;
    let sk = AccountSecretKey::from_bytes(&[4u8; 32]);
    let bls = BlsSecretKey::from_seed(&[9u8; 32]).expect("seed");
    let other = BlsSecretKey::from_seed(&[8u8; 32]).expect("seed");
    let signed = |evidence: VoteEquivocation| {
        TxBody {
            chain: MAIN,
            network: banyan_core::hash::Digest::ZERO,
            sender: sk.public_key(),
            nonce: Nonce(0),
            fee: Amount(1),
            kind: report(0, evidence),
        }
        .sign(&sk)
    };
    let good = equivocation(&bls, MAIN, 1, (3, 3), (1, 2));
    assert_eq!(good.verify(), Ok(()));
    VerifiedTx::verify(signed(good.clone())).expect("valid evidence");
    // Two votes for one block, votes of two rounds, a signature by another key.
    let same_block = equivocation(&bls, MAIN, 1, (3, 3), (1, 1));
    let two_rounds = equivocation(&bls, MAIN, 1, (3, 4), (1, 2));
    let mut forged = good.clone();
    forged.second.signature = other.sign(forged.second.data.signing_message().as_bytes());
    let mut wrong_key = good.clone();
    wrong_key.validator_key = other.public_key();
    let mut tampered = good.clone();
    tampered.first.data.height = Height(8);
    for (evidence, want) in [
        (same_block, EvidenceError::SameBlock),
        (two_rounds, EvidenceError::DifferentSlots),
        (forged, EvidenceError::BadSignature(WhichVote::Second)),
        (wrong_key, EvidenceError::BadSignature(WhichVote::First)),
        (tampered, EvidenceError::BadSignature(WhichVote::First)),
    ] {
        assert_eq!(evidence.verify(), Err(want));
        assert_eq!(
            VerifiedTx::verify(signed(evidence.clone())),
            Err(VerifyError::BadEvidence {
                index: 0,
                source: want
            })
        );
        let tx = signed(evidence);
        let err = VerifiedTx::check_batch(&[&tx], &[tx.id()]).expect_err("refused");
        assert_eq!(err.index(), 0);
    }
}

#[test]
fn sidechains_are_spawned_recorded_and_retired_by_their_spawner_on_the_main_chain_only() {
    let mut state = State::new();
    fund(&mut state, 0, AssetId::NATIVE, 10_000);
    fund(&mut state, 1, AssetId::NATIVE, 10_000);
    let params = SidechainParams {
        committee_size: 4,
        block_time_ms: 500,
        epoch_length: 100,
        deposit: MIN_DEPOSIT,
    };
    let spawn = |from, nonce, params: &SidechainParams| {
        tx(
            from,
            nonce,
            0,
            TxKind::SpawnSidechain {
                params: params.clone(),
            },
        )
    };
    let first = sidechain_id(&addr(0), Nonce(0));
    let second = sidechain_id(&addr(0), Nonce(1));
    assert_ne!(first, second);
    assert!(first.0 >= SIDECHAIN_ID_BIT && second.0 >= SIDECHAIN_ID_BIT);
    let supply_before = native_supply(&state).expect("fits");
    let (spawned, r) = run(
        &ledger(MAIN),
        &state,
        &[spawn(0, 0, &params), spawn(0, 1, &params)],
    );
    assert_eq!(
        r[0].outcome,
        Outcome::Applied(Effect::SidechainSpawned(first))
    );
    assert_eq!(
        r[1].outcome,
        Outcome::Applied(Effect::SidechainSpawned(second))
    );
    assert_eq!(
        balance(&spawned, 0, AssetId::NATIVE),
        10_000 - 2 * MIN_DEPOSIT.0
    );
    assert_eq!(
        spawned.get(&StateKey::Sidechain(first)),
        StateValue::Sidechain(Some(SidechainRecord {
            spawner: addr(0),
            deposit: MIN_DEPOSIT,
            committee_size: 4,
            block_time_ms: 500,
            epoch_length: 100,
            activation_epoch: EPOCH.0 as u32 + 1,
            status: SidechainStatus::Active,
        }))
    );
    assert_eq!(
        spawned.get(&StateKey::SidechainRegistry),
        StateValue::Counter(2)
    );
    // Deposits stay in the supply while the sidechains are active.
    assert_eq!(native_supply(&spawned).expect("fits"), supply_before);

    // Bad parameters and small deposits change nothing but the fee and nonce.
    let bad = |p: SidechainParams| spawn(1, 0, &p);
    for (p, why) in [
        (
            SidechainParams {
                committee_size: 0,
                ..params.clone()
            },
            "committee_size 0",
        ),
        (
            SidechainParams {
                block_time_ms: 0,
                ..params.clone()
            },
            "block_time_ms 0",
        ),
        (
            SidechainParams {
                epoch_length: 0,
                ..params.clone()
            },
            "epoch_length 0",
        ),
    ] {
        let (after, r) = run(&ledger(MAIN), &spawned, &[bad(p)]);
        match &r[0].outcome {
            Outcome::Failed(Failure::InvalidSidechainParams(text)) => {
                assert!(text.contains(why), "{text}")
            }
            other => panic!("{why}: {other:?}"),
        }
        assert_eq!(balance(&after, 1, AssetId::NATIVE), 10_000);
    }
    let (_, r) = run(
        &ledger(MAIN),
        &spawned,
        &[bad(SidechainParams {
            deposit: Amount(MIN_DEPOSIT.0 - 1),
            ..params.clone()
        })],
    );
    assert_eq!(
        r[0].outcome,
        Outcome::Failed(Failure::DepositTooLow {
            given: Amount(MIN_DEPOSIT.0 - 1),
            min: MIN_DEPOSIT
        })
    );

    // Only the spawner retires, once. Retired in the epoch it was spawned in, it never ran:
    // the deposit comes straight back.
    let retire = |from, nonce, chain| tx(from, nonce, 0, TxKind::RetireSidechain { chain });
    let (retired, r) = run(
        &ledger(MAIN),
        &spawned,
        &[
            retire(1, 0, first),
            retire(0, 2, first),
            retire(0, 3, first),
            retire(0, 4, ChainId(3)),
        ],
    );
    assert_eq!(r[0].outcome, Outcome::Failed(Failure::NotSpawner(first)));
    assert_eq!(
        r[1].outcome,
        Outcome::Applied(Effect::SidechainRetired(first))
    );
    assert_eq!(
        r[2].outcome,
        Outcome::Failed(Failure::AlreadyRetired(first))
    );
    assert_eq!(
        r[3].outcome,
        Outcome::Failed(Failure::UnknownSidechain(ChainId(3)))
    );
    assert_eq!(
        balance(&retired, 0, AssetId::NATIVE),
        10_000 - MIN_DEPOSIT.0
    );
    assert_eq!(
        retired.get(&StateKey::Escrow(first, AssetId::NATIVE)),
        StateValue::Amount(Amount::ZERO)
    );
    // Retired once it has run, its deposit stays locked as its escrow, from which the
    // balances its final checkpoint proves are settled.
    let later = Ledger::new(MAIN, HEIGHT, RejectAllProofs).with_staking(RULES, Epoch(EPOCH.0 + 1));
    let (locked, r) = run(&later, &retired, &[retire(0, 5, second)]);
    assert!(r[0].is_applied(), "{:?}", r[0]);
    assert_eq!(balance(&locked, 0, AssetId::NATIVE), 10_000 - MIN_DEPOSIT.0);
    assert_eq!(
        locked.get(&StateKey::Escrow(second, AssetId::NATIVE)),
        StateValue::Amount(MIN_DEPOSIT)
    );
    assert_eq!(native_supply(&locked).expect("fits"), supply_before);
    assert_eq!(
        retired.get(&StateKey::SidechainRegistry),
        StateValue::Counter(1)
    );
    assert_eq!(native_supply(&retired).expect("fits"), supply_before);

    // Main chain only.
    let on_side = tx_on(ChainId(1), 0, 0, 0, TxKind::SpawnSidechain { params });
    let (_, r) = run(&ledger(ChainId(1)), &state, &[on_side]);
    assert_eq!(r[0].outcome, Outcome::Failed(Failure::MainChainOnly));
}

#[test]
fn packets_are_escrowed_delivered_once_and_refunded() {
    // Chain 1 sends its native coin to chain 2, which delivers it; chain 1 then settles.
    let one = ChainId(1);
    let two = ChainId(2);
    let mut src = State::new();
    fund(&mut src, 0, AssetId::NATIVE, 1_000);
    let send = tx_on(
        one,
        0,
        0,
        0,
        TxKind::CrossChainSend {
            destination: two,
            recipient: addr(1),
            asset: AssetId::NATIVE,
            amount: Amount(300),
            timeout_height: Height(100),
        },
    );
    let (src_after, r) = run(&Ledger::new(one, Height(1), RejectAllProofs), &src, &[send]);
    let Outcome::Applied(Effect::PacketSent(packet)) = &r[0].outcome else {
        panic!("not sent: {:?}", r[0]);
    };
    let packet: Packet = (**packet).clone();
    assert_eq!(packet.sequence, Sequence(0));
    assert_eq!(
        packet.asset,
        AssetOrigin {
            chain: one,
            asset: AssetId::NATIVE
        }
    );
    assert_eq!(balance(&src_after, 0, AssetId::NATIVE), 700);
    assert_eq!(
        src_after.get(&StateKey::Escrow(two, AssetId::NATIVE)),
        StateValue::Amount(Amount(300))
    );
    assert_eq!(
        src_after.get(&StateKey::ChannelPending(two)),
        StateValue::Pending(PendingPackets {
            first: Sequence(0),
            count: 1
        })
    );

    // Destination: a light client of chain 1 and a proof check that accepts this packet.
    struct Accept;
    impl banyan_ledger::PacketProofs for Accept {
        fn delivery(
            &self,
            c: &LightClientState,
            _: &Packet,
            _: &banyan_core::tx::PacketProof,
        ) -> bool {
            c.height.0 > 0
        }
        fn acknowledgement(
            &self,
            c: &LightClientState,
            _: &Packet,
            _: &Acknowledgement,
            _: &banyan_core::tx::PacketProof,
        ) -> bool {
            c.height.0 > 0
        }
        fn non_delivery(
            &self,
            c: &LightClientState,
            _: &Packet,
            _: &banyan_core::tx::NonDeliveryProof,
        ) -> bool {
            c.height.0 > 0
        }
    }
    let mut dst = State::new();
    let client = StateValue::LightClient(LightClientState {
        height: Height(5),
        ..Default::default()
    });
    dst.set(StateKey::LightClient(one), client).expect("client");
    fund(&mut dst, 2, AssetId::NATIVE, 10);
    let deliver = |nonce| {
        tx_on(
            two,
            2,
            nonce,
            1,
            TxKind::DeliverPacket {
                packet: packet.clone(),
                proof: Box::new(pool().packet_proof.clone()),
            },
        )
    };
    let (dst_after, r) = run(
        &Ledger::new(two, Height(50), Accept),
        &dst,
        &[deliver(0), deliver(1)],
    );
    assert_eq!(
        r[0].outcome,
        Outcome::Applied(Effect::PacketDelivered {
            source: one,
            sequence: Sequence(0),
            ack: Acknowledgement::Success
        })
    );
    // Delivered once: the second try is out of order.
    assert_eq!(
        r[1].outcome,
        Outcome::Failed(Failure::OutOfOrder {
            expected: Sequence(1)
        })
    );
    let local = packet.asset.local_id(two);
    assert_eq!(local, AssetId::bridged(one, AssetId::NATIVE));
    assert_eq!(
        dst_after.get(&StateKey::Balance(addr(1), local)),
        StateValue::Amount(Amount(300))
    );
    assert_eq!(
        dst_after.get(&StateKey::AssetOrigin(local)),
        StateValue::Origin(Some(packet.asset))
    );
    // Past the timeout it cannot be delivered.
    let (_, r) = run(&Ledger::new(two, Height(101), Accept), &dst, &[deliver(0)]);
    assert_eq!(r[0].outcome, Outcome::Failed(Failure::Expired));

    // Source: a failure acknowledgement refunds from the escrow, once.
    let mut src2 = src_after.clone();
    src2.set(StateKey::LightClient(two), client)
        .expect("client");
    let ack = |nonce, ack| {
        tx_on(
            one,
            0,
            nonce,
            0,
            TxKind::AcknowledgePacket {
                packet: packet.clone(),
                ack,
                proof: Box::new(pool().packet_proof.clone()),
            },
        )
    };
    let (refunded, r) = run(
        &Ledger::new(one, Height(2), Accept),
        &src2,
        &[
            ack(1, Acknowledgement::Failure(1)),
            ack(2, Acknowledgement::Failure(1)),
        ],
    );
    assert_eq!(
        r[0].outcome,
        Outcome::Applied(Effect::PacketAcknowledged {
            destination: two,
            sequence: Sequence(0),
            refunded: true
        })
    );
    assert_eq!(r[1].outcome, Outcome::Failed(Failure::NotPending));
    assert_eq!(balance(&refunded, 0, AssetId::NATIVE), 1_000);
    assert_eq!(
        refunded.get(&StateKey::Escrow(two, AssetId::NATIVE)),
        StateValue::Amount(Amount::ZERO)
    );
    // A timeout refunds the same way; a success acknowledgement keeps the escrow.
    let timeout = tx_on(
        one,
        0,
        1,
        0,
        TxKind::TimeoutPacket {
            packet: packet.clone(),
            proof: Box::new(pool().non_delivery.clone()),
        },
    );
    let (timed_out, r) = run(&Ledger::new(one, Height(2), Accept), &src2, &[timeout]);
    assert_eq!(
        r[0].outcome,
        Outcome::Applied(Effect::PacketTimedOut {
            destination: two,
            sequence: Sequence(0)
        })
    );
    assert_eq!(balance(&timed_out, 0, AssetId::NATIVE), 1_000);
    let (kept, r) = run(
        &Ledger::new(one, Height(2), Accept),
        &src2,
        &[ack(1, Acknowledgement::Success)],
    );
    assert!(r[0].is_applied());
    assert_eq!(
        kept.get(&StateKey::Escrow(two, AssetId::NATIVE)),
        StateValue::Amount(Amount(300))
    );
    // Without a light client, or with proofs refused, nothing moves.
    let (_, r) = run(
        &Ledger::new(one, Height(2), Accept),
        &src_after,
        &[ack(1, Acknowledgement::Failure(1))],
    );
    assert_eq!(r[0].outcome, Outcome::Failed(Failure::ProofRejected));
    let (_, r) = run(
        &Ledger::new(one, Height(2), RejectAllProofs),
        &src2,
        &[ack(1, Acknowledgement::Failure(1))],
    );
    assert_eq!(r[0].outcome, Outcome::Failed(Failure::ProofRejected));
}

#[test]
fn a_foreign_asset_goes_home_by_burning() {
    // Main chain holds a voucher of chain 1's asset; sending it back to chain 1 burns it.
    let mut state = State::new();
    fund(&mut state, 0, AssetId::NATIVE, 10);
    fund(&mut state, 0, bridged(), 50);
    let origin = AssetOrigin {
        chain: ChainId(1),
        asset: foreign_asset(),
    };
    state
        .set(
            StateKey::AssetOrigin(bridged()),
            StateValue::Origin(Some(origin)),
        )
        .expect("origin");
    let send = tx(
        0,
        0,
        0,
        TxKind::CrossChainSend {
            destination: ChainId(1),
            recipient: addr(1),
            asset: bridged(),
            amount: Amount(20),
            timeout_height: Height(9),
        },
    );
    let (after, r) = run(&ledger(MAIN), &state, &[send]);
    let Outcome::Applied(Effect::PacketSent(p)) = &r[0].outcome else {
        panic!("{:?}", r[0])
    };
    assert_eq!(p.asset, origin);
    assert_eq!(balance(&after, 0, bridged()), 30);
    assert_eq!(
        after.get(&StateKey::Escrow(ChainId(1), bridged())),
        StateValue::Amount(Amount::ZERO)
    );
}

#[test]
fn verification_checks_signatures_and_proofs_of_possession() {
    use banyan_core::keys::AccountSecretKey;
    let sk = AccountSecretKey::from_bytes(&[3u8; 32]);
    let body = |kind| TxBody {
        chain: MAIN,
        network: banyan_core::hash::Digest::ZERO,
        sender: sk.public_key(),
        nonce: Nonce(0),
        fee: Amount(0),
        kind,
    };
    let good = body(transfer(1, 1)).sign(&sk);
    let v = VerifiedTx::verify(good.clone()).expect("valid");
    assert_eq!(v.sender(), sk.public_key().address());
    let mut bad = good.clone();
    bad.body.fee = Amount(1);
    assert!(VerifiedTx::verify(bad.clone()).is_err());
    assert!(VerifiedTx::verify_batch(vec![good.clone(), bad]).is_err());
    let (key, _) = pool().bls[0];
    let (_, wrong_pop) = pool().bls[1];
    let stake = body(TxKind::Stake {
        validator_key: key,
        pop: Box::new(wrong_pop),
        amount: Amount(1),
    })
    .sign(&sk);
    // The same checks on borrowed transactions with their ids: a valid signature over a
    // stake with a wrong proof of possession is still refused, and named.
    let ids = [good.id(), stake.id()];
    VerifiedTx::check_batch(&[&good], &ids[..1]).expect("valid");
    assert!(matches!(
        VerifiedTx::check_batch(&[&good, &stake], &ids),
        Err(banyan_ledger::VerifyError::BadProofOfPossession { index: 1, .. })
    ));
    assert!(VerifiedTx::verify(stake).is_err());
    assert_eq!(
        VerifiedTx::verify_batch(vec![good.clone()])
            .expect("valid")
            .len(),
        1
    );
}
