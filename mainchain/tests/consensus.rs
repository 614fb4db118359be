//! Four validators run the real consensus replica over `ChainApp`s on their own RocksDB
//! stores, with messages passed in memory: transactions commit, every node ends with the same
//! state, and the validator set changes across an epoch boundary.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::VecDeque;

use banyan_consensus::{
    DirectVerifier, Environment, Input, Message, Output, Replica, ReplicaConfig, VrfLeaders,
};
use banyan_core::ids::{Amount, ChainId, Epoch};
use banyan_core::keys::BlsSecretKey;
use banyan_core::tx::TxKind;
use banyan_mainchain::{ChainStore, Mempool, SharedChainApp};
use common::*;

struct Node {
    key: BlsSecretKey,
    app: SharedChainApp,
    pool: std::sync::Arc<Mempool>,
    store: ChainStore,
    replica: Option<Replica>,
    committee: Vec<banyan_core::keys::BlsPublicKey>,
    timer: Option<u64>,
}

/// Node index of member `idx` of `node`'s committee.
fn node_of(nodes: &[Node], keys: &[BlsSecretKey], of: usize, idx: usize) -> Option<usize> {
    let key = nodes[of].committee.get(idx)?;
    keys.iter().position(|k| &k.public_key() == key)
}

/// Index of node `who` in `node`'s committee.
fn index_in(nodes: &[Node], keys: &[BlsSecretKey], of: usize, who: usize) -> Option<usize> {
    let key = keys[who].public_key();
    nodes[of].committee.iter().position(|k| k == &key)
}

fn start_replica(node: &mut Node, now: u64, out: &mut Vec<Output>) {
    let (committee, seed, epoch, base, proof) = {
        let app = node.app.lock();
        let rec = app.epoch_record();
        (
            app.committee().clone(),
            rec.seed,
            rec.epoch,
            app.epoch_base().unwrap(),
            rec.proof,
        )
    };
    let me = committee
        .members()
        .iter()
        .position(|m| m.key.key() == &node.key.public_key());
    node.committee = committee.members().iter().map(|m| *m.key.key()).collect();
    let Some(me) = me else {
        node.replica = None;
        return;
    };
    let env = Environment {
        app: Box::new(node.app.clone()),
        leaders: Box::new(VrfLeaders::new(ChainId::MAIN, seed, &committee)),
        verifier: Box::new(DirectVerifier),
        safety_storage: Box::new(node.store.clone()),
        blocks: Box::new(node.store.clone()),
    };
    let cfg = ReplicaConfig {
        epoch,
        ..ReplicaConfig::default()
    };
    let mut r = Replica::new(cfg, committee, me, node.key.clone_for_test(), base, env).unwrap();
    if let Some(p) = proof {
        r = r.with_entry_proof(p);
    }
    r.start(now, out).unwrap();
    node.replica = Some(r);
}

trait CloneKey {
    fn clone_for_test(&self) -> BlsSecretKey;
}
impl CloneKey for BlsSecretKey {
    fn clone_for_test(&self) -> BlsSecretKey {
        BlsSecretKey::from_bytes(&*self.to_bytes()).unwrap()
    }
}

#[test]
fn replicas_commit_and_change_epoch() {
    let f = fixture(4, 1, 6);
    let dirs: Vec<_> = (0..4).map(|_| tempfile::tempdir().unwrap()).collect();
    let mut nodes: Vec<Node> = f
        .validators
        .iter()
        .zip(&dirs)
        .map(|((bls, _), d)| {
            let store = ChainStore::new(open_store(d.path()), ChainId::MAIN);
            let pool = mempool();
            let app = banyan_mainchain::ChainApp::open(
                store.clone(),
                &f.genesis,
                pool.clone(),
                1,
                Box::new(banyan_mainchain::NoopObserver),
            )
            .unwrap();
            Node {
                key: bls.clone_for_test(),
                app: SharedChainApp::new(app),
                pool,
                store,
                replica: None,
                committee: Vec::new(),
                timer: None,
            }
        })
        .collect();
    // Every validator's mempool gets the same transfers; validator 3 unstakes in epoch 0.
    let sender = &f.funded[0];
    let txs: Vec<_> = (0..8).map(|n| transfer(sender, n, addr(6), 11)).collect();
    let unstake = tx(
        &f.validators[3].1,
        0,
        MIN_FEE,
        TxKind::Unstake {
            amount: Amount(1003),
        },
    );
    for n in &nodes {
        assert!(n
            .pool
            .insert(
                &txs,
                std::time::Instant::now(),
                &*n.pool.committed_state().unwrap()
            )
            .iter()
            .all(|r| r.is_ok()));
        assert!(n.pool.insert(
            std::slice::from_ref(&unstake),
            std::time::Instant::now(),
            &*n.pool.committed_state().unwrap()
        )[0]
        .is_ok());
    }

    let mut now = 1_700_000_000_100u64;
    // (to, from, message) in flight.
    let mut queue: VecDeque<(usize, usize, Message)> = VecDeque::new();
    let keys: Vec<BlsSecretKey> = f
        .validators
        .iter()
        .map(|(k, _)| k.clone_for_test())
        .collect();
    let route = |nodes: &[Node],
                 from: usize,
                 outs: Vec<Output>,
                 timers: &mut Vec<(usize, u64)>,
                 queue: &mut VecDeque<(usize, usize, Message)>| {
        for o in outs {
            match o {
                Output::Send { to, message } => {
                    if let Some(to) = node_of(nodes, &keys, from, to) {
                        queue.push_back((to, from, message));
                    }
                }
                Output::Broadcast(m) => {
                    for to in 0..4 {
                        if to != from {
                            queue.push_back((to, from, m.clone()));
                        }
                    }
                }
                Output::SetTimer { deadline_ms } => timers.push((from, deadline_ms)),
                Output::Commit { .. } | Output::Evidence(_) | Output::EpochChange(_) => {}
            }
        }
    };
    let mut timers = Vec::new();
    for i in 0..4 {
        let mut out = Vec::new();
        start_replica(&mut nodes[i], now, &mut out);
        route(&nodes, i, out, &mut timers, &mut queue);
    }
    let mut epoch_changes = 0;
    for _step in 0..20_000 {
        for (i, t) in timers.drain(..) {
            nodes[i].timer = Some(t);
        }
        let Some((to, from, message)) = queue.pop_front() else {
            // Idle: fire the earliest timer.
            let next = nodes.iter().filter_map(|n| n.timer).min();
            let Some(t) = next else { break };
            now = now.max(t);
            for i in 0..4 {
                if nodes[i].timer.is_some_and(|d| d <= now) {
                    nodes[i].timer = None;
                    let mut out = Vec::new();
                    if let Some(r) = nodes[i].replica.as_mut() {
                        let _ = r.handle(now, Input::Timer, &mut out);
                    }
                    route(&nodes, i, out, &mut timers, &mut queue);
                }
            }
            continue;
        };
        now += 1;
        let Some(from) = index_in(&nodes, &keys, to, from) else {
            continue;
        };
        let mut out = Vec::new();
        let Some(r) = nodes[to].replica.as_mut() else {
            continue;
        };

        // Stale, duplicate and other-epoch messages are refused; the run goes on.
        let _ = r.handle(now, Input::Message { from, message }, &mut out);
        let change = out.iter().find_map(|o| match o {
            Output::EpochChange(p) => Some((**p).clone()),
            _ => None,
        });
        route(&nodes, to, out, &mut timers, &mut queue);
        if let Some(proof) = change {
            epoch_changes += 1;
            nodes[to]
                .store
                .put_epoch_proof(proof.epoch(), &proof)
                .unwrap();
            let mut out = Vec::new();
            let pending = nodes[to]
                .replica
                .as_mut()
                .unwrap()
                .take_next_epoch_messages();
            let old_committee = nodes[to].committee.clone();
            start_replica(&mut nodes[to], now, &mut out);
            route(&nodes, to, out, &mut timers, &mut queue);
            for (from, message) in pending {
                // `from` is an index in the old committee; re-deliver by node.
                let sender = old_committee
                    .get(from)
                    .and_then(|k| keys.iter().position(|s| &s.public_key() == k));
                if let Some(sender) = sender {
                    queue.push_back((to, sender, message));
                }
            }
        }
        // Validators 0..3 stay in the set; validator 3 unstaked and leaves at epoch 1.
        let done = nodes[..3]
            .iter()
            .all(|n| n.app.lock().committed_tip().height.0 >= 9);
        if done {
            break;
        }
    }
    for n in &nodes {
        assert!(!n.app.lock().has_failed());
    }
    for n in &nodes[..3] {
        let app = n.app.lock();
        assert!(
            app.committed_tip().height.0 >= 9,
            "tip {:?}",
            app.committed_tip()
        );
        assert_eq!(app.epoch_record().epoch, Epoch(1));
        assert!(n.replica.is_some());
    }
    // The leaver committed epoch 0 as far as it saw it.
    assert!(nodes[3].app.lock().committed_tip().height.0 >= 5);
    assert!(epoch_changes >= 3, "the staying validators changed epoch");
    // Same committed chain and state everywhere (compare at the lowest common height).
    let h = nodes[..3]
        .iter()
        .map(|n| n.app.lock().committed_tip().height)
        .min()
        .unwrap();
    let first = nodes[0].store.block_by_height(h).unwrap().unwrap();
    for n in &nodes[1..3] {
        assert_eq!(n.store.block_by_height(h).unwrap().unwrap(), first);
    }
    let app = nodes[0].app.lock();
    assert_eq!(balance(&app, &addr(6)), Amount(88));
    // Epoch 1's committee no longer has validator 3, who unstaked in epoch 0.
    let rec = app.store().epoch_record(Epoch(1)).unwrap().unwrap();
    assert_eq!(rec.committee.members.len(), 3);
    assert!(rec
        .committee
        .members
        .iter()
        .all(|m| m.key != f.validators[3].0.public_key()));
    assert!(rec.proof.is_some(), "the epoch-0 proof is archived");
}
