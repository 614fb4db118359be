//! Two apps on two RocksDB stores: one proposes, the other verifies; both commit.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use banyan_chain::app::outbox_root;
use banyan_consensus::{Application, Payload};
use banyan_core::header::Block;
use banyan_core::ids::{Amount, AssetId, Height};
use banyan_core::keys::{AccountSecretKey, AccountSignature};
use banyan_core::tx::TxKind;
use common::*;

fn tip_block(app: &banyan_chain::ChainApp) -> Block {
    app.store()
        .block_by_height(app.committed_tip().height)
        .unwrap()
        .unwrap()
}

#[test]
fn leader_and_follower_agree() {
    let f = fixture(4, 2, 100);
    let da = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    let (mut a, pool_a) = open_app(da.path(), &f.genesis, 2);
    let (mut b, pool_b) = open_app(db.path(), &f.genesis, 1);
    assert_eq!(a.committed_tip(), b.committed_tip());
    let sender = &f.funded[0];
    let from = sender.public_key().address();

    // Block 1: 20 transfers, also in the follower's mempool (signature checks skipped there).
    let txs: Vec<_> = (0..20)
        .map(|n| transfer(sender, n, addr(1 + (n % 5) as u8), 100))
        .collect();
    assert!(pool_a
        .insert(
            &txs,
            std::time::Instant::now(),
            &*pool_a.committed_state().unwrap()
        )
        .iter()
        .all(|r| r.is_ok()));
    assert!(pool_b
        .insert(
            &txs[..10],
            std::time::Instant::now(),
            &*pool_b.committed_state().unwrap()
        )
        .iter()
        .all(|r| r.is_ok()));
    let genesis = f.genesis.block();
    let b1 = propose(&mut a, &genesis, 1);
    assert_eq!(b1.txs.len(), 20);
    b.verify(&genesis, &b1).unwrap();

    // Block 2 on the uncommitted block 1: 10 more, only in the leader's mempool.
    let more: Vec<_> = (20..30).map(|n| transfer(sender, n, addr(9), 7)).collect();
    assert!(pool_a
        .insert(
            &more,
            std::time::Instant::now(),
            &*pool_a.committed_state().unwrap()
        )
        .iter()
        .all(|r| r.is_ok()));
    let b2 = propose(&mut a, &b1, 2);
    assert_eq!(
        b2.txs.len(),
        10,
        "block 2 continues the sender's nonces after block 1"
    );
    b.verify(&b1, &b2).unwrap();

    for app in [&mut a, &mut b] {
        app.commit(&b1).expect("commits");
        app.commit(&b2).expect("commits");
    }
    assert_eq!(a.committed_tip(), b.committed_tip());
    assert_eq!(a.committed_tip().height, Height(2));
    assert_eq!(a.state().root(), b.state().root());
    assert_eq!(a.state().root(), b2.header.state_root);
    // Each mempool holds the committed state: admission reads the sender's nonce (30) there.
    for pool in [&pool_a, &pool_b] {
        let committed = pool.committed_state().expect("recorded at commit");
        assert_eq!(committed.root(), b2.header.state_root);
        assert_eq!(
            banyan_chain::nonce_in(&committed, &from),
            banyan_core::ids::Nonce(30)
        );
    }
    for h in 0..=2 {
        let x = a.store().block_by_height(Height(h)).unwrap().unwrap();
        let y = b.store().block_by_height(Height(h)).unwrap().unwrap();
        assert_eq!(x, y);
    }
    let receipts = b.store().receipts(Height(1)).unwrap().unwrap();
    assert_eq!(receipts.len(), 20);
    assert!(receipts.iter().all(|r| r.applied && r.failure.is_none()));
    // Balances: 30 fees, 20 * 100 + 10 * 7 sent.
    let spent = 30 * MIN_FEE + 20 * 100 + 10 * 7;
    assert_eq!(balance(&b, &from), Amount(FUNDS - spent));
    assert_eq!(balance(&b, &addr(9)), Amount(70));
    assert_eq!(balance(&b, &addr(1)), Amount(400));
    assert_eq!(b.store().nonce(&from).unwrap().0, 30);
    // Committed transactions left both mempools.
    assert_eq!(pool_a.len(), 0);
    assert_eq!(pool_b.len(), 0);
}

/// Committed accounts as a lagging view might show them: everyone funded, at nonce 0.
struct StaleView;

impl banyan_chain::mempool::CommittedAccounts for StaleView {
    fn nonce(&self, _: &banyan_core::ids::Address) -> banyan_core::ids::Nonce {
        banyan_core::ids::Nonce(0)
    }
    fn balance(&self, _: &banyan_core::ids::Address, _: &AssetId) -> Amount {
        Amount(FUNDS)
    }
}

#[test]
fn proposals_leave_out_admission_failures() {
    let f = fixture(4, 1, 100);
    let d = tempfile::tempdir().unwrap();
    let (mut a, pool) = open_app(d.path(), &f.genesis, 1);
    let broke = AccountSecretKey::generate(&mut rng(50));
    let good = transfer(&f.funded[0], 0, addr(3), 5);
    let unpaid = transfer(&broke, 0, addr(3), 5);
    // The pool refuses what the committed state cannot pay for…
    let committed = pool.committed_state().unwrap();
    let r = pool.insert(
        std::slice::from_ref(&unpaid),
        std::time::Instant::now(),
        &*committed,
    );
    assert_eq!(r[0].as_ref().unwrap_err().reason(), "cannot_pay");
    // …but a view that lags a commit can let one in: the proposer still leaves it out.
    let r = pool.insert(
        &[unpaid.clone(), good.clone()],
        std::time::Instant::now(),
        &StaleView,
    );
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    let genesis = f.genesis.block();
    let b1 = propose(&mut a, &genesis, 1);
    assert_eq!(b1.txs.as_slice(), &[good]);
    assert!(
        !pool.is_verified(&unpaid.id()),
        "an unpayable transaction is dropped"
    );
}

#[test]
fn follower_refuses_bad_blocks() {
    let f = fixture(4, 1, 100);
    let da = tempfile::tempdir().unwrap();
    let db = tempfile::tempdir().unwrap();
    let (mut a, pool_a) = open_app(da.path(), &f.genesis, 1);
    let (mut b, _) = open_app(db.path(), &f.genesis, 1);
    let sender = &f.funded[0];
    let genesis = f.genesis.block();
    pool_a.insert(
        &(0..3)
            .map(|n| transfer(sender, n, addr(2), 1))
            .collect::<Vec<_>>(),
        std::time::Instant::now(),
        &*pool_a.committed_state().unwrap(),
    );
    let good = propose(&mut a, &genesis, 1);
    assert_eq!(good.txs.len(), 3);

    // Wrong state root.
    let mut bad = good.clone();
    bad.header.state_root = banyan_core::hash::Digest([1; 32]);
    let e = refused(b.verify(&genesis, &bad));
    assert!(e.contains("state root"), "{e}");

    // Wrong outbox root.
    let mut bad = good.clone();
    bad.header.outbox_root = banyan_core::hash::Digest([2; 32]);
    let e = refused(b.verify(&genesis, &bad));
    assert!(e.contains("outbox root"), "{e}");

    // Bad signature (the ids, hence the tx root, do not cover signatures).
    let mut txs = good.txs.clone().into_inner();
    txs[1].signature = AccountSignature::from_bytes(&[5u8; 64]);
    let bad = block_from(
        &genesis,
        Payload {
            txs,
            state_root: good.header.state_root,
            outbox_root: good.header.outbox_root,
        },
        1,
    );
    let e = refused(b.verify(&genesis, &bad));
    assert!(
        e.contains("transaction 1") && e.contains("bad signature"),
        "{e}"
    );

    // A fee below the minimum.
    let cheap = tx(
        sender,
        0,
        MIN_FEE - 1,
        TxKind::Transfer {
            to: addr(2),
            asset: AssetId::NATIVE,
            amount: Amount(1),
        },
    );
    let bad = block_from(
        &genesis,
        Payload {
            txs: vec![cheap],
            state_root: genesis.header.state_root,
            outbox_root: outbox_root(&[]),
        },
        1,
    );
    let e = refused(b.verify(&genesis, &bad));
    assert!(e.contains("below the minimum"), "{e}");

    // Admission failures: a replayed nonce, and a sender who cannot pay the fee. Give them
    // the state root execution would produce, so only the admission rule refuses them.
    let broke = AccountSecretKey::generate(&mut rng(51));
    for junk in [
        transfer(sender, 7, addr(2), 1),
        transfer(&broke, 0, addr(2), 1),
    ] {
        let bad = block_from(
            &genesis,
            Payload {
                txs: vec![junk],
                state_root: genesis.header.state_root,
                outbox_root: outbox_root(&[]),
            },
            1,
        );
        let e = refused(b.verify(&genesis, &bad));
        assert!(e.contains("admission"), "{e}");
    }

    // Too many transactions for the chain.
    // (max_block_txs is 1000 in the fixture; 1001 copies of one transaction.)
    let many = vec![good.txs[0].clone(); 1001];
    let bad = block_from(
        &genesis,
        Payload {
            txs: many,
            state_root: good.header.state_root,
            outbox_root: good.header.outbox_root,
        },
        1,
    );
    let e = refused(b.verify(&genesis, &bad));
    assert!(e.contains("limit"), "{e}");

    // The good block passes, and the refused ones changed nothing.
    b.verify(&genesis, &good).unwrap();
    b.commit(&good).expect("commits");
    assert_eq!(b.committed_tip().state_root, good.header.state_root);
}

#[test]
fn parallel_and_serial_execution_agree() {
    let f = fixture(4, 8, 100);
    let d1 = tempfile::tempdir().unwrap();
    let d4 = tempfile::tempdir().unwrap();
    let (mut serial, pool) = open_app(d1.path(), &f.genesis, 1);
    let (mut parallel, _) = open_app(d4.path(), &f.genesis, 4);
    let txs: Vec<_> = f
        .funded
        .iter()
        .flat_map(|k| (0..40).map(move |n| transfer(k, n, addr((n % 7) as u8), 3)))
        .collect();
    assert!(pool
        .insert(
            &txs,
            std::time::Instant::now(),
            &*pool.committed_state().unwrap()
        )
        .iter()
        .all(|r| r.is_ok()));
    let genesis = f.genesis.block();
    let b1 = propose(&mut serial, &genesis, 1);
    assert_eq!(b1.txs.len(), 320);
    parallel.verify(&genesis, &b1).unwrap();
    serial.commit(&b1).expect("commits");
    parallel.commit(&b1).expect("commits");
    assert_eq!(serial.state().root(), parallel.state().root());
    assert_eq!(tip_block(&serial), tip_block(&parallel));
}

/// The reason a block was refused, checking that it was refused as invalid (the node goes
/// on), not as a failure of this node (which would stop it).
fn refused(r: Result<(), banyan_consensus::AppError>) -> String {
    match r {
        Err(banyan_consensus::AppError::Invalid(why)) => why,
        other => panic!("expected an invalid block, got {other:?}"),
    }
}
