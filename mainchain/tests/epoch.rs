//! Stake and unstake committed during epoch 0 change the committee of epoch 1, not before (the
//! unstaked coins are not paid yet: they unbond); the next seed survives a restart in the
//! middle of the epoch.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use banyan_chain::{CommitteeError, KeyBook};
use banyan_consensus::Application;
use banyan_core::ids::{Amount, Epoch, Height};
use banyan_core::keys::{BlsPublicKey, BlsSecretKey};
use banyan_core::state::State;
use banyan_core::tx::{StateKey, TxKind};
use banyan_core::value::StateValue;
use banyan_core::value::{UnbondingEntry, ValidatorRecord};
use banyan_ledger::DEFAULT_UNBONDING_EPOCHS;
use banyan_mainchain::{committee_from_state, registry};
use common::*;

fn keys_of(c: &banyan_core::certificate::Committee) -> Vec<BlsPublicKey> {
    c.members().iter().map(|m| *m.key.key()).collect()
}

#[test]
fn stake_and_unstake_take_effect_at_the_next_epoch() {
    let f = fixture(4, 1, 3);
    let dir = tempfile::tempdir().unwrap();
    let (mut app, pool) = open_app(dir.path(), &f.genesis, 1);
    let genesis = f.genesis.block();
    let c0 = app.committee().clone();
    let leaving = f.validators[0].0.public_key();
    assert!(keys_of(&c0).contains(&leaving));

    // Block 1: a funded account stakes with a new BLS key.
    let joiner = &f.funded[0];
    let new_key = BlsSecretKey::generate(&mut rng(77));
    let stake = tx(
        joiner,
        0,
        MIN_FEE,
        TxKind::Stake {
            validator_key: new_key.public_key(),
            pop: Box::new(new_key.prove_possession()),
            amount: Amount(5000),
        },
    );
    assert!(pool.insert(
        &[stake],
        std::time::Instant::now(),
        &*pool.committed_state().unwrap()
    )[0]
    .is_ok());
    let b1 = propose(&mut app, &genesis, 1);
    assert_eq!(b1.txs.len(), 1);
    assert!(!app.ends_epoch(&b1.header));
    app.commit(&b1).expect("commits");

    // Block 2: validator 0 withdraws all its stake (1000).
    let unstake = tx(
        &f.validators[0].1,
        0,
        MIN_FEE,
        TxKind::Unstake {
            amount: Amount(1000),
        },
    );
    assert!(pool.insert(
        &[unstake],
        std::time::Instant::now(),
        &*pool.committed_state().unwrap()
    )[0]
    .is_ok());
    let b2 = propose(&mut app, &b1, 2);
    assert_eq!(b2.txs.len(), 1);
    app.commit(&b2).expect("commits");
    let receipts = app.store().receipts(Height(2)).unwrap().unwrap();
    assert!(receipts[0].applied, "{receipts:?}");
    // The unstaked coins are not paid: they unbond until epoch 1 + the unbonding period.
    let leaver_account = f.validators[0].1.public_key().address();
    let unbonding = StateValue::Unbonding(UnbondingEntry {
        amount: Amount(1000),
        release_epoch: Epoch(1 + DEFAULT_UNBONDING_EPOCHS),
    });
    assert_eq!(balance(&app, &leaver_account), Amount(FUNDS - MIN_FEE));
    assert_eq!(
        app.state().get(&StateKey::Unbonding(leaver_account)),
        unbonding
    );

    // Still epoch 0, same committee, though the registry changed.
    assert_eq!(app.epoch_record().epoch, Epoch(0));
    assert_eq!(app.committee(), &c0);
    assert_eq!(registry(app.state()).len(), 4);

    // Block 3 ends epoch 0.
    let b3 = propose(&mut app, &b2, 3);
    assert!(app.ends_epoch(&b3.header));
    app.commit(&b3).expect("commits");
    let rec = app.epoch_record();
    assert_eq!(rec.epoch, Epoch(1));
    assert_eq!(rec.base, b3.header.id());
    assert_eq!(rec.base_height, Height(3));
    assert_ne!(rec.seed, f.genesis.seed());
    let c1 = app.committee().clone();
    assert_eq!(c1.epoch(), Epoch(1));
    assert!(keys_of(&c1).contains(&new_key.public_key()));
    assert!(!keys_of(&c1).contains(&leaving));
    assert_eq!(c1.len(), 4);
    // Out of the committee, still unbonding.
    assert_eq!(balance(&app, &leaver_account), Amount(FUNDS - MIN_FEE));
    assert_eq!(
        app.state().get(&StateKey::Unbonding(leaver_account)),
        unbonding
    );
    let stored = app.store().epoch().unwrap().unwrap();
    assert_eq!(stored, rec);
    assert_eq!(
        app.store()
            .epoch_record(Epoch(0))
            .unwrap()
            .unwrap()
            .committee
            .members
            .len(),
        4
    );
    assert_eq!(app.epoch_base().unwrap(), b3);
    assert_eq!(rec.committee().unwrap(), c1);

    // A restart finds the same epoch and committee.
    drop(app);
    let (app, _) = open_app(dir.path(), &f.genesis, 1);
    assert_eq!(app.epoch_record(), rec);
    assert_eq!(app.committee(), &c1);
}

#[test]
fn next_seed_survives_a_restart_mid_epoch() {
    let f = fixture(4, 1, 4);
    let proposer = &f.validators[1].0;
    let with_proof = |mut b: banyan_core::header::Block, round: u64| {
        b.header.vrf_proof =
            Some(proposer.sign_with_dst(&round.to_le_bytes(), banyan_vrf::VRF_DST));
        b
    };
    let straight = tempfile::tempdir().unwrap();
    let broken = tempfile::tempdir().unwrap();
    let (mut a, _) = open_app(straight.path(), &f.genesis, 1);
    let mut parent = f.genesis.block();
    let mut blocks = Vec::new();
    for r in 1..=4u64 {
        let b = with_proof(propose(&mut a, &parent, r), r);
        a.commit(&b).expect("commits");
        blocks.push(b.clone());
        parent = b;
    }
    assert_eq!(a.epoch_record().epoch, Epoch(1));
    let seed = a.epoch_record().seed;

    {
        let (mut b, _) = open_app(broken.path(), &f.genesis, 1);
        b.commit(&blocks[0]).expect("commits");
        b.commit(&blocks[1]).expect("commits");
    }
    let (mut b, _) = open_app(broken.path(), &f.genesis, 1);
    b.commit(&blocks[2]).expect("commits");
    b.commit(&blocks[3]).expect("commits");
    assert_eq!(b.epoch_record().seed, seed);

    // Without the proofs the seed differs: the outputs count.
    let plain = tempfile::tempdir().unwrap();
    let (mut c, _) = open_app(plain.path(), &f.genesis, 1);
    let mut parent = f.genesis.block();
    for r in 1..=4u64 {
        let blk = propose(&mut c, &parent, r);
        c.commit(&blk).expect("commits");
        parent = blk;
    }
    assert_ne!(c.epoch_record().seed, seed);
}

#[test]
fn committee_rules() {
    let mut r = rng(3);
    let keys: Vec<BlsSecretKey> = (0..3).map(|_| BlsSecretKey::generate(&mut r)).collect();
    let mut book = KeyBook::new();
    for k in &keys {
        book.verify_and_insert(&k.public_key(), &k.prove_possession())
            .unwrap();
    }
    let mut state = State::new();
    let put = |state: &mut State, a: u8, k: &BlsSecretKey, stake: u128| {
        state
            .set(
                StateKey::Validator(addr(a)),
                StateValue::Validator(ValidatorRecord {
                    stake: Amount(stake),
                    key: *k.public_key().as_bytes(),
                }),
            )
            .unwrap();
    };
    assert_eq!(
        committee_from_state(&state, Epoch(1), &book),
        Err(CommitteeError::Empty)
    );
    put(&mut state, 1, &keys[0], 10);
    put(&mut state, 2, &keys[1], u128::MAX / 2);
    // Two accounts staking with one key: one member with the summed stake.
    put(&mut state, 3, &keys[0], 5);
    let c = committee_from_state(&state, Epoch(1), &book).unwrap();
    assert_eq!(c.len(), 2);
    let ids: Vec<_> = c
        .members()
        .iter()
        .map(|m| m.key.key().validator_id())
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "bitmap order is by validator id"
    );
    let weight_of = |k: &BlsSecretKey| {
        c.members()
            .iter()
            .find(|m| m.key.key() == &k.public_key())
            .unwrap()
            .stake
    };
    // The huge stake is scaled into u64; the small one is not scaled to zero.
    assert!(weight_of(&keys[1]) > u64::MAX / 4);
    assert_eq!(weight_of(&keys[0]), 1);

    // A key without a known proof of possession is an error, not a silent drop.
    put(&mut state, 4, &keys[2], 7);
    let mut partial = KeyBook::new();
    partial
        .verify_and_insert(&keys[0].public_key(), &keys[0].prove_possession())
        .unwrap();
    partial
        .verify_and_insert(&keys[1].public_key(), &keys[1].prove_possession())
        .unwrap();
    let e = committee_from_state(&state, Epoch(1), &partial).unwrap_err();
    assert!(matches!(e, CommitteeError::MissingProof { .. }), "{e}");
    // A jailed key is left out, whichever accounts back it.
    assert_eq!(
        committee_from_state(&state, Epoch(1), &book).unwrap().len(),
        3
    );
    state
        .set(
            StateKey::Jailed(keys[0].public_key().validator_id()),
            StateValue::Flag(true),
        )
        .unwrap();
    let c = committee_from_state(&state, Epoch(1), &book).unwrap();
    assert_eq!(c.len(), 2);
    assert!(c
        .members()
        .iter()
        .all(|m| m.key.key() != &keys[0].public_key()));
    // A wrong proof never enters the book.
    let mut b = KeyBook::new();
    assert!(b
        .verify_and_insert(&keys[2].public_key(), &keys[1].prove_possession())
        .is_err());
    assert!(b.is_empty());
}
