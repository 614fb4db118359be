//! `SubmitCheckpoint`: a sidechain block becomes the main chain's checkpoint of it only with a
//! commit proof of the committee the main chain assigned, newer than the last; every refusal
//! leaves the checkpoint as it was. `SettleBalance`: once a retirement takes effect, each
//! balance the final checkpoint proves is paid once from the sidechain's locked deposit.

mod support;

use banyan_core::certificate::{Committee, CommitteeMember, QuorumCertificate, VoteData};
use banyan_core::codec::BoundedVec;
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::header::{BlockHeader, CertifiedHeader};
use banyan_core::ids::{Amount, AssetId, ChainId, Epoch, Height, Nonce, Round};
use banyan_core::keys::{AccountSignature, BlsSecretKey};
use banyan_core::smt::SmtProof;
use banyan_core::state::State;
use banyan_core::tx::{SignedTx, StateKey, TxBody, TxKind, SIDECHAIN_ID_BIT};
use banyan_core::value::{LightClientState, SidechainRecord, SidechainStatus, StateValue};
use banyan_dag::{Executor, Schedule};
use banyan_ledger::RejectAllProofs;
use banyan_ledger::{Effect, Failure, Ledger, Outcome, PacketProofs, Receipt, VerifiedTx};
use support::{pool, EPOCH, HEIGHT, RULES};

const SIDE: ChainId = ChainId(SIDECHAIN_ID_BIT | 7);
const OTHER_SIDE: ChainId = ChainId(SIDECHAIN_ID_BIT | 8);
/// The sidechain runs from main epoch 1; the blocks below execute in main epoch 3 ([`EPOCH`]).
const ACTIVATION: u32 = 1;

fn bls(set: u8, i: u8) -> BlsSecretKey {
    let seed = hash(Domain::Custom("banyan/ledger/test/checkpoint"), &[set, i]);
    BlsSecretKey::from_seed(&seed.0).expect("32-byte seed")
}

fn members(set: u8) -> Vec<CommitteeMember> {
    (0..4)
        .map(|i| {
            let k = bls(set, i);
            CommitteeMember {
                key: k
                    .prove_possession()
                    .verify(&k.public_key())
                    .expect("own proof"),
                stake: 1,
            }
        })
        .collect()
}

/// The main chain's assignment in these tests: key set 0 in main epochs 1 and 2, key set 1
/// in epoch 3, for [`SIDE`] and [`OTHER_SIDE`].
struct Assigned;

impl PacketProofs for Assigned {
    fn assigned_committee(&self, chain: ChainId, epoch: Epoch) -> Option<Vec<CommitteeMember>> {
        if chain != SIDE && chain != OTHER_SIDE {
            return None;
        }
        match epoch.0 {
            1 | 2 => Some(members(0)),
            3 => Some(members(1)),
            _ => None,
        }
    }
}

fn header(chain: ChainId, epoch: Epoch, height: u64, round: u64, parent: Digest) -> BlockHeader {
    BlockHeader {
        chain,
        epoch,
        height: Height(height),
        round: Round(round),
        parent,
        state_root: Digest([height as u8; 32]),
        tx_root: Digest::ZERO,
        outbox_root: Digest::ZERO,
        proposer: Digest::ZERO,
        timestamp_ms: 1_000 + height,
        vrf_proof: None,
    }
}

/// Block `height` of `chain` in its `epoch` and a child, the child certified by the members
/// `signers` of key set `set`.
fn certified(chain: ChainId, epoch: u64, height: u64, set: u8, signers: &[u8]) -> CertifiedHeader {
    let epoch = Epoch(epoch);
    let block = header(chain, epoch, height, 10 + height, Digest([9; 32]));
    let child = header(chain, epoch, height + 1, 11 + height, block.id());
    let data = VoteData {
        chain,
        epoch,
        round: child.round,
        height: child.height,
        block: child.id(),
    };
    let committee = Committee::new(epoch, members(set)).expect("committee");
    let votes: Vec<_> = signers
        .iter()
        .map(|&i| {
            (
                usize::from(i),
                bls(set, i).sign(data.signing_message().as_bytes()),
            )
        })
        .collect();
    CertifiedHeader {
        headers: BoundedVec::new(vec![block, child]).expect("two headers"),
        commit_qc: QuorumCertificate::aggregate(&committee, data, &votes).expect("quorum"),
    }
}

fn submit(nonce: u64, chain: ChainId, main_epoch: u64, proof: CertifiedHeader) -> VerifiedTx {
    VerifiedTx::assume_verified(SignedTx {
        body: TxBody {
            chain: ChainId::MAIN,
            network: Digest::ZERO,
            sender: pool().keys[0],
            nonce: Nonce(nonce),
            fee: Amount(1),
            kind: TxKind::SubmitCheckpoint {
                chain,
                main_epoch: Epoch(main_epoch),
                proof: Box::new(proof),
            },
        },
        signature: AccountSignature::from_bytes(&[0u8; 64]),
    })
}

fn record(status: SidechainStatus) -> StateValue {
    StateValue::Sidechain(Some(SidechainRecord {
        spawner: pool().addrs[1],
        deposit: Amount(1_000),
        committee_size: 4,
        block_time_ms: 500,
        epoch_length: 100,
        activation_epoch: ACTIVATION,
        status,
    }))
}

fn main_state() -> State {
    let mut s = State::new();
    s.set(
        StateKey::Balance(pool().addrs[0], AssetId::NATIVE),
        StateValue::Amount(Amount(1_000)),
    )
    .expect("balance");
    s.set(StateKey::Sidechain(SIDE), record(SidechainStatus::Active))
        .expect("record");
    s.set(
        StateKey::Sidechain(OTHER_SIDE),
        record(SidechainStatus::Retired { from_epoch: 3 }),
    )
    .expect("record");
    s
}

fn main_ledger() -> Ledger<Assigned> {
    Ledger::new(ChainId::MAIN, HEIGHT, Assigned).with_staking(RULES, EPOCH)
}

/// Execute serially and in parallel (which must agree); the state after and the receipts.
fn run<P: PacketProofs>(
    ledger: &Ledger<P>,
    state: &State,
    txs: &[VerifiedTx],
) -> (State, Vec<Receipt>) {
    let serial = Executor::new(1)
        .execute_serial(ledger, state, txs)
        .expect("runs");
    let parallel = Executor::new(2)
        .with_schedule(Schedule::AlwaysParallel)
        .execute(ledger, state, txs)
        .expect("runs");
    assert_eq!(serial.receipts, parallel.receipts);
    assert_eq!(serial.write_set, parallel.write_set);
    let mut after = state.clone();
    after.apply(serial.write_set.iter());
    (after, serial.receipts)
}

fn client(state: &State, chain: ChainId) -> LightClientState {
    match state.get(&StateKey::LightClient(chain)) {
        StateValue::LightClient(c) => c,
        other => panic!("not a light client: {other:?}"),
    }
}

fn failure(r: &Receipt) -> &Failure {
    match &r.outcome {
        Outcome::Failed(f) => f,
        Outcome::Applied(e) => panic!("applied: {e:?}"),
    }
}

#[test]
fn a_quorum_of_the_assigned_committee_checkpoints_and_it_only_moves_forward() {
    let proof = certified(SIDE, 0, 20, 0, &[0, 1, 3]);
    let id = proof.header().expect("header").id();
    let (state, receipts) = run(
        &main_ledger(),
        &main_state(),
        &[submit(0, SIDE, 2, proof.clone())],
    );
    assert_eq!(
        receipts[0].outcome,
        Outcome::Applied(Effect::Checkpointed {
            chain: SIDE,
            height: Height(20)
        })
    );
    let latest = client(&state, SIDE);
    assert_eq!(
        latest,
        LightClientState {
            height: Height(20),
            header: id,
            epoch: Epoch(0),
            main_epoch: Epoch(2),
        }
    );

    // The same again, an older block, or an older main epoch's committee: stale, unchanged.
    let older_main = certified(SIDE, 0, 30, 0, &[0, 1, 2]);
    let txs = [
        submit(1, SIDE, 2, proof),
        submit(2, SIDE, 2, certified(SIDE, 0, 19, 0, &[0, 1, 2])),
        submit(3, SIDE, 1, older_main.clone()),
    ];
    let (after, receipts) = run(&main_ledger(), &state, &txs);
    for r in &receipts {
        assert_eq!(failure(r), &Failure::StaleCheckpoint { latest: Height(20) });
        assert_eq!(
            r.fee_charged,
            Amount(1),
            "a refused checkpoint still pays its fee"
        );
    }
    assert_eq!(client(&after, SIDE), latest);

    // A later block under the next epoch's assignment (another key set) moves it on.
    let next = certified(SIDE, 1, 45, 1, &[1, 2, 3]);
    let (after, receipts) = run(&main_ledger(), &state, &[submit(1, SIDE, 3, next)]);
    assert!(receipts[0].is_applied(), "{:?}", receipts[0]);
    assert_eq!(client(&after, SIDE).main_epoch, Epoch(3));
    assert_eq!(client(&after, SIDE).height, Height(45));
}

#[test]
fn forged_and_misaddressed_proofs_are_refused() {
    let state = main_state();
    let rejected = |r: &Receipt| matches!(failure(r), Failure::CheckpointRejected(_));

    // Signed by a quorum of keys the main chain did not assign (key set 1 is epoch 3's).
    let forged = certified(SIDE, 0, 20, 1, &[0, 1, 2]);
    // A header changed after signing: the headers no longer link to what was certified.
    let mut tampered = certified(SIDE, 0, 20, 0, &[0, 1, 2]);
    tampered.headers = BoundedVec::new(
        tampered
            .headers
            .iter()
            .cloned()
            .enumerate()
            .map(|(i, mut h)| {
                if i == 0 {
                    h.state_root = Digest([0xee; 32]);
                }
                h
            })
            .collect::<Vec<_>>(),
    )
    .expect("two headers");
    // A proof of another chain, presented as this sidechain's.
    let other = certified(OTHER_SIDE, 0, 20, 0, &[0, 1, 2]);
    let txs = [
        submit(0, SIDE, 2, forged),
        submit(1, SIDE, 2, tampered),
        submit(2, SIDE, 2, other),
    ];
    let (after, receipts) = run(&main_ledger(), &state, &txs);
    for r in &receipts {
        assert!(rejected(r), "{r:?}");
    }
    assert_eq!(client(&after, SIDE), LightClientState::default());

    // Unknown sidechain, a main epoch not begun, one before activation, one after
    // retirement, and a chain that takes no checkpoints.
    let unknown = ChainId(SIDECHAIN_ID_BIT | 99);
    let txs = [
        submit(0, unknown, 2, certified(unknown, 0, 20, 0, &[0, 1, 2])),
        submit(1, SIDE, 4, certified(SIDE, 0, 20, 0, &[0, 1, 2])),
        submit(2, SIDE, 0, certified(SIDE, 0, 20, 0, &[0, 1, 2])),
        submit(
            3,
            OTHER_SIDE,
            3,
            certified(OTHER_SIDE, 0, 20, 1, &[0, 1, 2]),
        ),
    ];
    let (after, receipts) = run(&main_ledger(), &state, &txs);
    assert_eq!(failure(&receipts[0]), &Failure::UnknownSidechain(unknown));
    assert_eq!(
        failure(&receipts[1]),
        &Failure::FutureEpoch {
            given: Epoch(4),
            now: EPOCH
        }
    );
    assert_eq!(
        failure(&receipts[2]),
        &Failure::NoAssignedCommittee {
            chain: SIDE,
            main_epoch: Epoch(0)
        }
    );
    assert_eq!(
        failure(&receipts[3]),
        &Failure::NoAssignedCommittee {
            chain: OTHER_SIDE,
            main_epoch: Epoch(3)
        }
    );
    assert_eq!(client(&after, SIDE), LightClientState::default());
    assert_eq!(client(&after, OTHER_SIDE), LightClientState::default());

    // A retired sidechain is checkpointed until its retirement takes effect (its final
    // checkpoint), and never after.
    let retiring = Ledger::new(ChainId::MAIN, HEIGHT, Assigned).with_staking(RULES, Epoch(2));
    let (after, receipts) = run(
        &retiring,
        &state,
        &[submit(
            0,
            OTHER_SIDE,
            2,
            certified(OTHER_SIDE, 0, 20, 0, &[0, 1, 2]),
        )],
    );
    assert!(receipts[0].is_applied(), "{:?}", receipts[0]);
    assert_eq!(client(&after, OTHER_SIDE).height, Height(20));
    let (_, receipts) = run(
        &main_ledger(),
        &after,
        &[submit(
            1,
            OTHER_SIDE,
            2,
            certified(OTHER_SIDE, 0, 30, 0, &[0, 1, 2]),
        )],
    );
    assert_eq!(failure(&receipts[0]), &Failure::CheckpointFinal(OTHER_SIDE));

    // Without the main chain's assignment (a chain whose host gave none), nothing passes.
    let bare = Ledger::new(ChainId::MAIN, HEIGHT, RejectAllProofs).with_staking(RULES, EPOCH);
    let (_, receipts) = run(
        &bare,
        &state,
        &[submit(0, SIDE, 2, certified(SIDE, 0, 20, 0, &[0, 1, 2]))],
    );
    assert_eq!(
        failure(&receipts[0]),
        &Failure::NoAssignedCommittee {
            chain: SIDE,
            main_epoch: Epoch(2)
        }
    );

    // Only the main chain takes checkpoints.
    let side = Ledger::new(SIDE, HEIGHT, Assigned).with_staking(RULES, EPOCH);
    let mut side_state = State::new();
    side_state
        .set(
            StateKey::Balance(pool().addrs[0], AssetId::NATIVE),
            StateValue::Amount(Amount(10)),
        )
        .expect("balance");
    let mut signed = submit(
        0,
        OTHER_SIDE,
        2,
        certified(OTHER_SIDE, 0, 20, 0, &[0, 1, 2]),
    )
    .tx()
    .clone();
    signed.body.chain = SIDE;
    let (_, receipts) = run(&side, &side_state, &[VerifiedTx::assume_verified(signed)]);
    assert_eq!(failure(&receipts[0]), &Failure::MainChainOnly);
}

fn settle(
    nonce: u64,
    owner: usize,
    amount: u128,
    header: &BlockHeader,
    proof: SmtProof,
) -> VerifiedTx {
    VerifiedTx::assume_verified(SignedTx {
        body: TxBody {
            chain: ChainId::MAIN,
            network: Digest::ZERO,
            sender: pool().keys[0],
            nonce: Nonce(nonce),
            fee: Amount(0),
            kind: TxKind::SettleBalance {
                chain: SIDE,
                owner: pool().addrs[owner],
                amount: Amount(amount),
                header: Box::new(header.clone()),
                proof: Box::new(proof),
            },
        },
        signature: AccountSignature::from_bytes(&[0u8; 64]),
    })
}

fn main_balance(state: &State, who: usize) -> u128 {
    match state.get(&StateKey::Balance(pool().addrs[who], AssetId::NATIVE)) {
        StateValue::Amount(a) => a.0,
        other => panic!("not an amount: {other:?}"),
    }
}

#[test]
fn retired_sidechains_settle_every_proven_balance_once_from_the_deposit() {
    // The sidechain's state at its final checkpoint: accounts 2 and 3 hold 700 and 250 (the
    // other 50 of the 1000 deposit went in fees there).
    let mut side = State::new();
    for (who, amount) in [(2usize, 700u128), (3, 250)] {
        side.set(
            StateKey::Balance(pool().addrs[who], AssetId::NATIVE),
            StateValue::Amount(Amount(amount)),
        )
        .expect("balance");
    }
    let mut header = header(SIDE, Epoch(0), 20, 30, Digest([9; 32]));
    header.state_root = side.root();
    let mut main = main_state();
    main.set(
        StateKey::Sidechain(SIDE),
        record(SidechainStatus::Retired { from_epoch: 3 }),
    )
    .expect("record");
    main.set(
        StateKey::Escrow(SIDE, AssetId::NATIVE),
        StateValue::Amount(Amount(1_000)),
    )
    .expect("escrow");
    main.set(
        StateKey::LightClient(SIDE),
        StateValue::LightClient(LightClientState {
            height: Height(20),
            header: header.id(),
            epoch: Epoch(0),
            main_epoch: Epoch(2),
        }),
    )
    .expect("checkpoint");
    let supply = banyan_ledger::native_supply(&main).expect("fits");
    let key = |who: usize| StateKey::Balance(pool().addrs[who], AssetId::NATIVE);

    // Before the retirement takes effect the checkpoint may still move: nothing settles.
    let early = Ledger::new(ChainId::MAIN, HEIGHT, Assigned).with_staking(RULES, Epoch(2));
    let (_, r) = run(
        &early,
        &main,
        &[settle(0, 2, 700, &header, side.prove(&key(2)))],
    );
    assert_eq!(failure(&r[0]), &Failure::NotSettling(SIDE));

    let mut other_header = header.clone();
    other_header.height = Height(21);
    let txs = [
        settle(0, 2, 700, &header, side.prove(&key(2))),
        // Twice: refused.
        settle(1, 2, 700, &header, side.prove(&key(2))),
        // More than the proof says, a header that is not the checkpoint's, an account that
        // held nothing there.
        settle(2, 3, 300, &header, side.prove(&key(3))),
        settle(3, 3, 250, &other_header, side.prove(&key(3))),
        settle(4, 4, 5, &header, side.prove(&key(4))),
        settle(5, 3, 250, &header, side.prove(&key(3))),
    ];
    let (after, r) = run(&main_ledger(), &main, &txs);
    assert_eq!(
        r[0].outcome,
        Outcome::Applied(Effect::Settled {
            chain: SIDE,
            owner: pool().addrs[2],
            amount: Amount(700)
        })
    );
    assert_eq!(failure(&r[1]), &Failure::AlreadySettled);
    assert_eq!(failure(&r[2]), &Failure::ProofRejected);
    assert_eq!(failure(&r[3]), &Failure::ProofRejected);
    assert_eq!(failure(&r[4]), &Failure::ProofRejected);
    assert!(r[5].is_applied(), "{:?}", r[5]);
    assert_eq!(main_balance(&after, 2), 700);
    assert_eq!(main_balance(&after, 3), 250);
    assert_eq!(
        after.get(&StateKey::Escrow(SIDE, AssetId::NATIVE)),
        StateValue::Amount(Amount(50)),
        "what the sidechain burned in fees stays locked"
    );
    assert_eq!(
        banyan_ledger::native_supply(&after).expect("fits"),
        supply,
        "settling moves coins from the escrow to their owners"
    );

    // Never checkpointed: it settles as its genesis, the whole escrow to the spawner
    // (account 1) and nothing to anyone else. An active sidechain does not settle.
    let mut bare = main.clone();
    bare.set(
        StateKey::LightClient(SIDE),
        StateValue::LightClient(LightClientState::default()),
    )
    .expect("no checkpoint");
    let txs = [
        settle(0, 2, 700, &header, side.prove(&key(2))),
        settle(1, 1, 999, &header, SmtProof::default()),
        settle(2, 1, 1_000, &header, SmtProof::default()),
    ];
    let (refunded, r) = run(&main_ledger(), &bare, &txs);
    assert_eq!(failure(&r[0]), &Failure::NoFinalCheckpoint(SIDE));
    assert_eq!(failure(&r[1]), &Failure::NoFinalCheckpoint(SIDE));
    assert!(r[2].is_applied(), "{:?}", r[2]);
    assert_eq!(main_balance(&refunded, 1), 1_000);
    assert_eq!(
        refunded.get(&StateKey::Escrow(SIDE, AssetId::NATIVE)),
        StateValue::Amount(Amount::ZERO)
    );
    let mut active = main.clone();
    active
        .set(StateKey::Sidechain(SIDE), record(SidechainStatus::Active))
        .expect("record");
    let (_, r) = run(
        &main_ledger(),
        &active,
        &[settle(0, 2, 700, &header, side.prove(&key(2)))],
    );
    assert_eq!(failure(&r[0]), &Failure::NotSettling(SIDE));
}
