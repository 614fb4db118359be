//! Reopening a chain from its data directory.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use banyan_chain::{ChainApp, ChainStore, NoopObserver};
use banyan_consensus::Application;
use banyan_core::ids::{Height, Nonce};
use banyan_mainchain::OwnRegistry;
use common::*;

#[test]
fn reopen_keeps_tip_state_and_balances() {
    let f = fixture(4, 1, 100);
    let dir = tempfile::tempdir().unwrap();
    let sender = &f.funded[0];
    let mut blocks = Vec::new();
    let (tip, root, bal) = {
        let (mut app, pool) = open_app(dir.path(), &f.genesis, 1);
        let mut parent = f.genesis.block();
        for h in 0..3u64 {
            pool.insert(
                &(0..5)
                    .map(|n| transfer(sender, h * 5 + n, addr(4), 10))
                    .collect::<Vec<_>>(),
                std::time::Instant::now(),
                &*pool.committed_state().unwrap(),
            );
            let b = propose(&mut app, &parent, h + 1);
            assert_eq!(b.txs.len(), 5);
            app.commit(&b).expect("commits");
            blocks.push(b.clone());
            parent = b;
        }
        (
            app.committed_tip(),
            app.state().root(),
            balance(&app, &addr(4)),
        )
    };
    assert_eq!(tip.height, Height(3));

    let (mut app, pool) = open_app(dir.path(), &f.genesis, 1);
    assert_eq!(app.committed_tip(), tip);
    assert_eq!(app.state().root(), root);
    assert_eq!(balance(&app, &addr(4)), bal);
    assert_eq!(
        app.store().nonce(&sender.public_key().address()).unwrap(),
        Nonce(15)
    );

    // Committing an already committed block is a no-op.
    app.commit(&blocks[2]).expect("commits");
    app.commit(&blocks[0]).expect("commits");
    assert_eq!(app.committed_tip(), tip);

    // And the chain goes on.
    pool.insert(
        &[transfer(sender, 15, addr(4), 10)],
        std::time::Instant::now(),
        &*pool.committed_state().unwrap(),
    );
    let b4 = propose(&mut app, &blocks[2], 4);
    assert_eq!(b4.txs.len(), 1);
    app.commit(&b4).expect("commits");
    assert_eq!(app.committed_tip().height, Height(4));
}

#[test]
fn out_of_order_commit_is_fatal() {
    let f = fixture(4, 1, 100);
    let dir = tempfile::tempdir().unwrap();
    let (mut app, _) = open_app(dir.path(), &f.genesis, 1);
    let genesis = f.genesis.block();
    let b1 = propose(&mut app, &genesis, 1);
    let b2 = propose(&mut app, &b1, 2);
    let e = app.commit(&b2).expect_err("skipping a height is fatal");
    assert!(e.is_fatal(), "{e}");
    assert!(
        e.to_string().contains("commits must come in height order"),
        "{e}"
    );
    // Nothing more commits after a fatal failure.
    app.commit(&b1).expect_err("the app failed before");
    assert_eq!(app.committed_tip().height, Height(0));
    assert!(app.has_failed());
}

#[test]
fn a_data_dir_of_another_chain_is_refused() {
    let f = fixture(4, 1, 100);
    let other = fixture(3, 1, 100);
    let dir = tempfile::tempdir().unwrap();
    drop(open_app(dir.path(), &f.genesis, 1));
    let store = ChainStore::new(open_store(dir.path()), banyan_core::ids::ChainId::MAIN);
    let e = ChainApp::open(
        store,
        &other.genesis,
        Box::new(OwnRegistry),
        mempool(),
        1,
        Box::new(NoopObserver),
    )
    .unwrap_err();
    assert!(
        e.to_string().contains("data dir belongs to another chain"),
        "{e}"
    );
}
