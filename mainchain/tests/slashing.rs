//! Unbonding and slashing through the chain application: an equivocation report slashes the
//! offender's stake and unbonding coins and takes its key out of the next committee, forged or
//! replayed evidence changes nothing, and unstaked coins are paid exactly at the boundary
//! into their release epoch (with the state root of that block covering the payment).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::{Arc, Mutex};
use std::time::Instant;

use banyan_chain::evidence::{
    accounts_of_key, proposal_equivocation, report_of, vote_equivocation,
};
use banyan_chain::{ChainApp, ChainStore, CommitObserver, Mempool};
use banyan_consensus::{Application, Evidence, Payload, ProposalStub, Vote};
use banyan_core::certificate::{Committee, VoteData};
use banyan_core::hash::Digest;
use banyan_core::header::Block;
use banyan_core::ids::{Address, Amount, ChainId, Epoch, Height, Round};
use banyan_core::keys::{AccountSecretKey, BlsPublicKey, BlsSecretKey};
use banyan_core::tx::{
    Equivocation, EvidenceError, ProposalEquivocation, SignedTx, SignedVote, StateKey, TxKind,
    VoteEquivocation, WhichVote,
};
use banyan_core::value::StateValue;
use banyan_core::value::{UnbondingEntry, ValidatorRecord};
use banyan_ledger::VerifiedTx;
use banyan_ledger::{native_supply, Effect, Failure, Outcome, Receipt, VerifyError};
use banyan_mainchain::registry::is_jailed;
use banyan_mainchain::{Genesis, OwnRegistry};
use common::*;

/// A committed block's height and typed receipts.
type Committed = (Height, Vec<Receipt>);

/// Every committed block's height and typed receipts.
#[derive(Clone, Default)]
struct Receipts(Arc<Mutex<Vec<Committed>>>);

impl CommitObserver for Receipts {
    fn committed(
        &mut self,
        block: &Block,
        receipts: &[Receipt],
        _: std::time::Duration,
        _: std::time::Duration,
    ) {
        self.0
            .lock()
            .unwrap()
            .push((block.header.height, receipts.to_vec()));
    }
}

impl Receipts {
    fn at(&self, h: u64) -> Vec<Receipt> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .find(|(height, _)| height.0 == h)
            .map(|(_, r)| r.clone())
            .expect("block committed")
    }
}

/// A genesis of 4 validators (stakes 1000..=1003), epochs of 3 blocks, and these staking
/// rules.
fn fixture_with(unbonding_epochs: u64, slash_fraction_percent: u8) -> Fixture {
    let mut f = fixture(4, 1, 3);
    f.file.unbonding_epochs = unbonding_epochs;
    f.file.slash_fraction_percent = slash_fraction_percent;
    f.genesis = Genesis::validate(f.file.clone()).unwrap();
    assert_eq!(
        f.genesis.params().staking.unbonding_epochs,
        unbonding_epochs
    );
    f
}

fn open(path: &std::path::Path, genesis: &Genesis) -> (ChainApp, Arc<Mempool>, Receipts) {
    let store = ChainStore::new(open_store(path), ChainId::MAIN);
    let pool = mempool();
    let receipts = Receipts::default();
    let app = ChainApp::open(
        store,
        genesis,
        Box::new(OwnRegistry),
        pool.clone(),
        1,
        Box::new(receipts.clone()),
    )
    .unwrap();
    (app, pool, receipts)
}

/// Offer `txs` to the app's mempool; what admission said of each.
fn submit(app: &ChainApp, pool: &Mempool, txs: &[SignedTx]) -> Vec<bool> {
    pool.insert(txs, Instant::now(), app.state())
        .iter()
        .map(|r| r.is_ok())
        .collect()
}

/// Propose on `parent`, commit, and return the block.
fn next(app: &mut ChainApp, parent: &Block) -> Block {
    let b = propose(app, parent, parent.header.height.0 + 1);
    app.commit(&b).expect("commits");
    b
}

fn record(app: &ChainApp, a: &Address) -> ValidatorRecord {
    match app.state().get(&StateKey::Validator(*a)) {
        StateValue::Validator(r) => r,
        other => panic!("{other:?}"),
    }
}

fn unbonding(app: &ChainApp, a: &Address) -> UnbondingEntry {
    match app.state().get(&StateKey::Unbonding(*a)) {
        StateValue::Unbonding(u) => u,
        other => panic!("{other:?}"),
    }
}

fn keys_of(c: &Committee) -> Vec<BlsPublicKey> {
    c.members().iter().map(|m| *m.key.key()).collect()
}

/// Two votes of `key` in (main chain, `epoch`, `round`) for blocks `a` and `b`, as consensus
/// signs them.
fn votes(key: &BlsSecretKey, signer: u16, epoch: u64, round: u64, a: u8, b: u8) -> Evidence {
    let vote = |block: u8| {
        let data = VoteData {
            chain: ChainId::MAIN,
            epoch: Epoch(epoch),
            round: Round(round),
            height: Height(round),
            block: Digest([block; 32]),
        };
        Vote {
            data,
            signer,
            signature: key.sign(data.signing_message().as_bytes()),
            proposal_signature: key.sign(b"not checked here"),
        }
    };
    Evidence::ConflictingVotes(vote(a), vote(b))
}

/// The report of validator `v`'s double vote, as consensus detected it, checked by the
/// consensus rules first.
fn evidence_of(
    f: &Fixture,
    committee: &Committee,
    v: usize,
    epoch: u64,
    round: u64,
) -> VoteEquivocation {
    let key = &f.validators[v].0;
    let signer = committee
        .members()
        .iter()
        .position(|m| m.key.key() == &key.public_key())
        .unwrap() as u16;
    let evidence = votes(key, signer, epoch, round, 1, 2);
    evidence
        .verify(committee)
        .expect("consensus accepts the evidence");
    vote_equivocation(&evidence, committee).expect("votes")
}

fn report(from: &AccountSecretKey, nonce: u64, offender: Address, e: VoteEquivocation) -> SignedTx {
    tx(
        from,
        nonce,
        MIN_FEE,
        TxKind::ReportEquivocation {
            offender,
            evidence: Box::new(e),
        },
    )
}

fn addr_of(k: &AccountSecretKey) -> Address {
    k.public_key().address()
}

#[test]
fn equivocation_report_slashes_and_removes_the_validator_at_the_next_epoch() {
    let f = fixture_with(2, 10);
    let dir = tempfile::tempdir().unwrap();
    let (mut app, pool, receipts) = open(dir.path(), &f.genesis);
    let genesis = f.genesis.block();
    let c0 = app.committee().clone();
    let reporter = &f.funded[0];
    let offender_key = f.validators[1].0.public_key();
    let offender = addr_of(&f.validators[1].1);
    assert_eq!(
        accounts_of_key(app.state(), offender_key.as_bytes()),
        vec![offender]
    );
    let evidence = evidence_of(&f, &c0, 1, 0, 2);
    let supply = native_supply(app.state()).unwrap();

    // Block 1: anyone may report; 10% of 1001 is burned, the key is jailed.
    assert_eq!(
        submit(
            &app,
            &pool,
            &[report(reporter, 0, offender, evidence.clone())]
        ),
        [true]
    );
    let b1 = next(&mut app, &genesis);
    assert_eq!(b1.txs.len(), 1);
    assert_eq!(
        receipts.at(1)[0].outcome,
        Outcome::Applied(Effect::Slashed {
            offender,
            burned: Amount(100)
        })
    );
    assert_eq!(record(&app, &offender).stake, Amount(901));
    assert!(is_jailed(app.state(), offender_key.as_bytes()));
    assert_eq!(
        native_supply(app.state()).unwrap(),
        Amount(supply.0 - MIN_FEE - 100)
    );
    // Still epoch 0: the committee does not change in the middle of an epoch.
    assert_eq!(app.committee(), &c0);

    // Block 2: the same evidence again, the votes swapped, evidence of a key nobody staked,
    // evidence naming an account whose record holds another key, and the jailed validator
    // staking again: each refused with its typed failure, only the fees taken.
    let stranger = BlsSecretKey::generate(&mut rng(99));
    let stranger_evidence = {
        let e = votes(&stranger, 0, 0, 2, 1, 2);
        let Evidence::ConflictingVotes(a, b) = e else {
            unreachable!()
        };
        VoteEquivocation {
            validator_key: stranger.public_key(),
            first: SignedVote {
                data: a.data,
                signature: a.signature,
            },
            second: SignedVote {
                data: b.data,
                signature: b.signature,
            },
        }
    };
    let mut swapped = evidence.clone();
    std::mem::swap(&mut swapped.first, &mut swapped.second);
    let restake = tx(
        &f.validators[1].1,
        0,
        MIN_FEE,
        TxKind::Stake {
            validator_key: offender_key,
            pop: Box::new(f.validators[1].0.prove_possession()),
            amount: Amount(10),
        },
    );
    let before = app.state().clone();
    let txs = [
        report(reporter, 1, offender, evidence.clone()),
        report(reporter, 2, offender, swapped),
        report(reporter, 3, addr_of(reporter), stranger_evidence),
        report(reporter, 4, addr_of(&f.validators[2].1), evidence.clone()),
        restake,
    ];
    assert!(submit(&app, &pool, &txs).iter().all(|ok| *ok));
    let b2 = next(&mut app, &b1);
    assert_eq!(b2.txs.len(), 5);
    let outcome_of = |t: &SignedTx| {
        let i = b2.txs.iter().position(|x| x == t).expect("in the block");
        receipts.at(2)[i].outcome.clone()
    };
    for (t, want) in txs.iter().zip([
        Failure::AlreadySlashed,
        Failure::AlreadySlashed,
        Failure::UnknownValidator,
        Failure::UnknownValidator,
        Failure::ValidatorJailed,
    ]) {
        assert_eq!(outcome_of(t), Outcome::Failed(want));
    }
    for v in 0..4 {
        let a = addr_of(&f.validators[v].1);
        assert_eq!(
            record(&app, &a),
            match before.get(&StateKey::Validator(a)) {
                StateValue::Validator(r) => r,
                _ => unreachable!(),
            }
        );
    }
    assert_eq!(
        native_supply(app.state()).unwrap(),
        Amount(native_supply(&before).unwrap().0 - 5 * MIN_FEE)
    );

    // Forged evidence never gets in: the mempool refuses it, a block carrying it is refused,
    // and verification names what is wrong.
    let key = &f.validators[1].0;
    let forged = |e: VoteEquivocation| report(reporter, 5, offender, e);
    let mut bad_signature = evidence_of(&f, &c0, 1, 0, 3);
    bad_signature.second.signature = f.validators[2]
        .0
        .sign(bad_signature.second.data.signing_message().as_bytes());
    let same_block = {
        let mut e = evidence_of(&f, &c0, 1, 0, 4);
        e.second = e.first;
        e
    };
    let two_rounds = {
        let mut e = evidence_of(&f, &c0, 1, 0, 5);
        e.second.data.round = Round(6);
        e.second.signature = key.sign(e.second.data.signing_message().as_bytes());
        e
    };
    let root = app.committed_tip().state_root;
    for (e, want) in [
        (
            bad_signature,
            EvidenceError::BadSignature(WhichVote::Second),
        ),
        (same_block, EvidenceError::SameBlock),
        (two_rounds, EvidenceError::DifferentSlots),
    ] {
        let t = forged(e);
        assert_eq!(
            VerifiedTx::verify(t.clone()),
            Err(VerifyError::BadEvidence {
                index: 0,
                source: want
            })
        );
        assert_eq!(submit(&app, &pool, std::slice::from_ref(&t)), [false]);
        let smuggled = block_from(
            &b2,
            Payload {
                txs: vec![t],
                state_root: root,
                outbox_root: banyan_chain::app::outbox_root(&[]),
            },
            3,
        );
        let why = app.verify(&b2, &smuggled).unwrap_err().to_string();
        assert!(why.contains("equivocation evidence"), "{why}");
    }
    assert_eq!(app.committed_tip().state_root, root);
    assert!(pool.is_empty());

    // Block 3 ends epoch 0: the jailed validator is not in the committee of epoch 1, though
    // its account still has stake.
    let b3 = next(&mut app, &b2);
    assert!(app.ends_epoch(&b3.header));
    let c1 = app.committee().clone();
    assert_eq!(c1.epoch(), Epoch(1));
    assert_eq!(c1.len(), 3);
    assert!(!keys_of(&c1).contains(&offender_key));
    assert_eq!(record(&app, &offender).stake, Amount(901));
    // A restart keeps all of it.
    drop(app);
    let (app, _, _) = open(dir.path(), &f.genesis);
    assert_eq!(app.committee(), &c1);
    assert!(is_jailed(app.state(), offender_key.as_bytes()));
}

/// Two proposals of `round` by the leader with `key` (index `signer`), for blocks `a` and `b`.
fn proposals(key: &BlsSecretKey, signer: u16, epoch: u64, round: u64, a: u8, b: u8) -> Evidence {
    let stub = |block: u8| {
        let block = Digest([block; 32]);
        ProposalStub {
            chain: ChainId::MAIN,
            epoch: Epoch(epoch),
            round: Round(round),
            block,
            signer,
            signature: key.sign(
                banyan_core::certificate::proposal_message(
                    ChainId::MAIN,
                    Epoch(epoch),
                    Round(round),
                    &block,
                )
                .as_bytes(),
            ),
        }
    };
    Evidence::ConflictingProposals(stub(a), stub(b))
}

#[test]
fn a_double_proposal_is_slashed_like_a_double_vote_and_counts_as_its_own_offence() {
    let f = fixture_with(2, 10);
    let dir = tempfile::tempdir().unwrap();
    let (mut app, pool, receipts) = open(dir.path(), &f.genesis);
    let genesis = f.genesis.block();
    let c0 = app.committee().clone();
    let reporter = &f.funded[0];
    let key = &f.validators[1].0;
    let offender = addr_of(&f.validators[1].1);
    let signer = c0
        .members()
        .iter()
        .position(|m| m.key.key() == &key.public_key())
        .unwrap() as u16;
    // What consensus detects, checked by its rules, becomes the report the node would send.
    let detected = proposals(key, signer, 0, 4, 1, 2);
    detected
        .verify(&c0)
        .expect("consensus accepts the evidence");
    let evidence: ProposalEquivocation = proposal_equivocation(&detected, &c0).expect("proposals");
    evidence.verify().expect("the ledger's rules accept it too");
    assert_eq!(
        report_of(&detected, &c0, offender),
        Some(TxKind::ReportProposalEquivocation {
            offender,
            evidence: Box::new(evidence.clone()),
        })
    );
    let proposal_report = |nonce: u64, e: ProposalEquivocation| {
        tx(
            reporter,
            nonce,
            MIN_FEE,
            TxKind::ReportProposalEquivocation {
                offender,
                evidence: Box::new(e),
            },
        )
    };

    // A forged one never gets in: the second proposal signed by another key.
    let mut forged = evidence.clone();
    forged.second.signature = f.validators[2].0.sign(b"anything");
    assert_eq!(
        forged.verify(),
        Err(EvidenceError::BadSignature(WhichVote::Second))
    );
    assert_eq!(submit(&app, &pool, &[proposal_report(0, forged)]), [false]);
    // One proposal twice is no conflict.
    let mut same = evidence.clone();
    same.second = same.first;
    assert_eq!(same.verify(), Err(EvidenceError::SameBlock));

    // Block 1: the double proposal slashes 10% of 1001 and jails the key.
    assert_eq!(
        submit(&app, &pool, &[proposal_report(0, evidence.clone())]),
        [true]
    );
    let b1 = next(&mut app, &genesis);
    assert_eq!(
        receipts.at(1)[0].outcome,
        Outcome::Applied(Effect::Slashed {
            offender,
            burned: Amount(100)
        })
    );
    assert_eq!(record(&app, &offender).stake, Amount(901));
    assert!(is_jailed(app.state(), key.public_key().as_bytes()));

    // Block 2: the same proposals again are refused; a double vote in the same slot is
    // another offence and is slashed on its own.
    let votes_evidence = evidence_of(&f, &c0, 1, 0, 4);
    assert_ne!(
        votes_evidence.offense_id(&offender),
        evidence.offense_id(&offender)
    );
    let txs = [
        proposal_report(1, evidence.clone()),
        report(reporter, 2, offender, votes_evidence),
    ];
    assert!(submit(&app, &pool, &txs).iter().all(|ok| *ok));
    let b2 = next(&mut app, &b1);
    assert_eq!(b2.txs.len(), 2);
    let outcome_of = |t: &SignedTx| {
        let i = b2.txs.iter().position(|x| x == t).expect("in the block");
        receipts.at(2)[i].outcome.clone()
    };
    assert_eq!(
        outcome_of(&txs[0]),
        Outcome::Failed(Failure::AlreadySlashed)
    );
    assert_eq!(
        outcome_of(&txs[1]),
        Outcome::Applied(Effect::Slashed {
            offender,
            burned: Amount(90)
        })
    );
    assert_eq!(record(&app, &offender).stake, Amount(811));
}

#[test]
fn unstaked_coins_arrive_exactly_at_the_release_boundary() {
    // Epochs of 3 blocks, 1 epoch of unbonding: an unstake in epoch 0 leaves the committee at
    // the start of epoch 1 and is paid at the start of epoch 2, by block 6.
    let f = fixture_with(1, 10);
    let dir = tempfile::tempdir().unwrap();
    let (mut app, pool, receipts) = open(dir.path(), &f.genesis);
    let other_dir = tempfile::tempdir().unwrap();
    let (mut follower, _, _) = open(other_dir.path(), &f.genesis);
    let leaver_key = f.validators[3].0.public_key();
    let leaver = addr_of(&f.validators[3].1);
    let unstake = tx(
        &f.validators[3].1,
        0,
        MIN_FEE,
        TxKind::Unstake {
            amount: Amount(1003),
        },
    );
    assert_eq!(submit(&app, &pool, &[unstake]), [true]);
    let supply = native_supply(app.state()).unwrap();
    let after_fee = Amount(FUNDS - MIN_FEE);
    let mut parent = f.genesis.block();
    for h in 1..=7u64 {
        let b = next(&mut app, &parent);
        // Another node re-executes every block to the same state root, the paying one too.
        follower.verify(&parent, &b).expect("same execution");
        follower.commit(&b).expect("commits");
        assert_eq!(follower.committed_tip(), app.committed_tip());
        if h == 1 {
            assert_eq!(
                receipts.at(1)[0].outcome,
                Outcome::Applied(Effect::Unstaked)
            );
        }
        let paid = h >= 6;
        assert_eq!(
            balance(&app, &leaver),
            if paid {
                Amount(FUNDS - MIN_FEE + 1003)
            } else {
                after_fee
            },
            "height {h}"
        );
        if paid {
            assert_eq!(unbonding(&app, &leaver), UnbondingEntry::default());
            assert_eq!(record(&app, &leaver), ValidatorRecord::default());
        } else {
            assert_eq!(
                unbonding(&app, &leaver),
                UnbondingEntry {
                    amount: Amount(1003),
                    release_epoch: Epoch(2)
                },
                "height {h}"
            );
            // The record keeps the key: the coins stay slashable.
            assert_eq!(record(&app, &leaver).key, *leaver_key.as_bytes());
        }
        // Unbonding moves coins, it creates and destroys none.
        assert_eq!(
            native_supply(app.state()).unwrap(),
            Amount(supply.0 - MIN_FEE)
        );
        // The validator sits in the committee of epoch 0 only.
        assert_eq!(
            keys_of(app.committee()).contains(&leaver_key),
            app.epoch_record().epoch == Epoch(0),
            "height {h}"
        );
        parent = b;
    }
    // The paying block's writes reached the store: a restart finds the same state.
    drop(app);
    let (app, _, _) = open(dir.path(), &f.genesis);
    assert_eq!(balance(&app, &leaver), Amount(FUNDS - MIN_FEE + 1003));
    assert_eq!(app.committed_tip(), follower.committed_tip());
}

#[test]
fn a_validator_slashed_while_unbonding_loses_the_fraction_of_its_unbonding_coins() {
    // Two epochs of unbonding. Validator 2 (stake 1002) votes twice in epoch 0, unstakes 502
    // in block 1 and is reported in epoch 1, while the 502 are unbonding.
    let f = fixture_with(2, 10);
    let dir = tempfile::tempdir().unwrap();
    let (mut app, pool, receipts) = open(dir.path(), &f.genesis);
    let c0 = app.committee().clone();
    let evidence = evidence_of(&f, &c0, 2, 0, 1);
    let offender = addr_of(&f.validators[2].1);
    let unstake = tx(
        &f.validators[2].1,
        0,
        MIN_FEE,
        TxKind::Unstake {
            amount: Amount(502),
        },
    );
    assert_eq!(submit(&app, &pool, &[unstake]), [true]);
    let mut parent = next(&mut app, &f.genesis.block());
    assert_eq!(record(&app, &offender).stake, Amount(500));
    // Released at the start of epoch 0 + 1 + 2.
    assert_eq!(
        unbonding(&app, &offender),
        UnbondingEntry {
            amount: Amount(502),
            release_epoch: Epoch(3)
        }
    );
    for _ in 2..=4 {
        parent = next(&mut app, &parent);
    }
    assert_eq!(app.epoch_of(parent.header.height), Epoch(1));
    let supply = native_supply(app.state()).unwrap();
    assert_eq!(
        submit(&app, &pool, &[report(&f.funded[0], 0, offender, evidence)]),
        [true]
    );
    parent = next(&mut app, &parent);
    // 10% of the 500 staked and 10% of the 502 unbonding (rounded down): 50 + 50.
    assert_eq!(
        receipts.at(5)[0].outcome,
        Outcome::Applied(Effect::Slashed {
            offender,
            burned: Amount(100)
        })
    );
    assert_eq!(record(&app, &offender).stake, Amount(450));
    assert_eq!(
        unbonding(&app, &offender),
        UnbondingEntry {
            amount: Amount(452),
            release_epoch: Epoch(3)
        }
    );
    assert_eq!(
        native_supply(app.state()).unwrap(),
        Amount(supply.0 - MIN_FEE - 100)
    );
    // What is left of the unbonding coins is paid at the start of epoch 3 (block 9).
    let before = balance(&app, &offender);
    while parent.header.height.0 < 9 {
        parent = next(&mut app, &parent);
        if parent.header.height.0 < 9 {
            assert_eq!(balance(&app, &offender), before);
        }
    }
    assert_eq!(balance(&app, &offender), Amount(before.0 + 452));
    assert_eq!(unbonding(&app, &offender), UnbondingEntry::default());
    // Jailed in epoch 1, so absent from the committees of epochs 2 and 3.
    assert!(!keys_of(app.committee()).contains(&f.validators[2].0.public_key()));
}

#[test]
fn staking_rules_come_from_the_genesis_file_with_defaults() {
    let f = fixture(4, 1, 3);
    // A file written before the staking rules existed gets the defaults.
    let mut json: serde_json::Value = serde_json::from_str(&Genesis::to_json(&f.file)).unwrap();
    let obj = json.as_object_mut().unwrap();
    obj.remove("unbonding_epochs");
    obj.remove("slash_fraction_percent");
    let g = Genesis::from_json(&json.to_string()).unwrap();
    assert_eq!(g.params().staking, banyan_ledger::StakingRules::default());
    // Out of range: refused, naming the field.
    let mut bad = f.file.clone();
    bad.slash_fraction_percent = 101;
    let e = Genesis::validate(bad).unwrap_err().to_string();
    assert!(e.contains("slash_fraction_percent"), "{e}");
    let mut bad = f.file.clone();
    bad.unbonding_epochs = banyan_ledger::MAX_UNBONDING_EPOCHS + 1;
    let e = Genesis::validate(bad).unwrap_err().to_string();
    assert!(e.contains("unbonding_epochs"), "{e}");
}
