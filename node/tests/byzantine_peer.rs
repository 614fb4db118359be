//! A Byzantine validator against real `banyan` processes: the test process takes validator
//! v3's place on the QUIC network (its network key, its BLS key, its address) and attacks the
//! other three over real sockets.
//!
//! - It forges votes and timeouts under the other members' indices, for every round from the
//!   current one up to the look-ahead: the chain must keep committing.
//! - It votes twice in one round: the next leader reports it (a transaction from its own
//!   account) and the chain slashes it.
//! - It answers a catching-up node's requests with a real epoch proof and then with blocks
//!   whose bodies were tampered with: that node must keep running and catch up from the
//!   honest peers.

mod cluster;

use banyan_consensus::{Message, Timeout, TimeoutData, Vote};
use banyan_core::certificate::VoteData;
use banyan_core::codec::BoundedVec;
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::header::Block;
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::BlsSecretKey;
use banyan_net::{Class, NetConfig, Network, PeerConfig, Receivers};
use banyan_wire as wire;
use cluster::{recipient, transfer, Cluster};
use std::time::{Duration, Instant};

/// Rounds ahead the honest replicas buffer (the replica's default look-ahead).
const LOOKAHEAD: u64 = 100;

/// Short round timeouts on every node: the test process never votes as v3, so each round v3
/// leads ends by a timeout, and the chain's pace without it should not hide the attack's.
fn short_timeouts(c: &mut Cluster) {
    for n in c.nodes.iter_mut() {
        n.config.consensus.base_timeout_ms = 300;
        n.config.consensus.max_timeout_ms = 1_000;
        n.config
            .save(&n.home.join("config.toml"))
            .expect("rewrite config.toml");
    }
}

/// Join the network as node `me` of the cluster (its keys and address), peered with `peers`.
async fn impostor(c: &Cluster, me: usize, peers: &[usize]) -> (Network, Receivers, BlsSecretKey) {
    let (keys, _) = c.node_keys(me);
    let peer_cfg = peers
        .iter()
        .map(|&i| {
            let v = c.nodes[me]
                .config
                .peers
                .iter()
                .find(|p| p.name == c.nodes[i].name)
                .expect("the impostor's config names the peer")
                .verify()
                .expect("peer binding");
            PeerConfig {
                key: *v.network_key.as_bytes(),
                addr: v.addr,
            }
        })
        .collect();
    let cfg = NetConfig::new(
        c.nodes[me].config.p2p_listen,
        keys.network.to_bytes(),
        peer_cfg,
    );
    let (net, rx) = Network::start(cfg).await.expect("impostor network");
    let bls = BlsSecretKey::from_bytes(&*keys.bls.to_bytes()).expect("bls key");
    (net, rx, bls)
}

/// Forge votes and timeouts for rounds `from..=to` under every index of a committee of `n`.
fn forge(net: &Network, key: &BlsSecretKey, epoch: u64, from: u64, to: u64, n: u16) {
    let junk = key.sign(b"not a vote");
    for r in from..=to {
        let data = VoteData {
            chain: ChainId::MAIN,
            epoch: Epoch(epoch),
            round: Round(r),
            height: Height(r),
            block: hash(Domain::Custom("banyan/test/forged"), &r.to_le_bytes()),
        };
        let tdata = TimeoutData {
            chain: ChainId::MAIN,
            epoch: Epoch(epoch),
            round: Round(r),
            high_qc_round: Round(0),
        };
        let own_vote = key.sign(data.signing_message().as_bytes());
        let own_timeout = key.sign(tdata.signing_message().as_bytes());
        for signer in 0..n {
            let vote = Message::Vote(Box::new(Vote {
                data,
                signer,
                signature: if r % 2 == 0 { own_vote } else { junk },
                proposal_signature: junk,
            }));
            let timeout = Message::Timeout(Box::new(Timeout {
                data: tdata,
                high_qc: None,
                last_tc: None,
                signer,
                signature: if r % 2 == 0 { own_timeout } else { junk },
            }));
            net.broadcast(
                Class::Consensus,
                wire::consensus_frame(ChainId::MAIN, &vote),
            );
            net.broadcast(
                Class::Consensus,
                wire::consensus_frame(ChainId::MAIN, &timeout),
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_votes_and_timeouts_do_not_stop_the_chain() {
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 0, 1_000);
    short_timeouts(&mut c);
    c.start_all(3);
    let (net, _rx, key) = impostor(&c, 3, &[0, 1, 2]).await;
    let start_height = c.wait_height(0, 3, Duration::from_secs(60)).await;

    // Ten seconds of forgeries, always the whole look-ahead window ahead of the chain.
    let attack = Instant::now();
    let mut forged_to = 0u64;
    while attack.elapsed() < Duration::from_secs(10) {
        if let Some(s) = c.status(0).await {
            if let Some(ch) = s.chains.first() {
                let from = forged_to.saturating_add(1).max(ch.round);
                let to = ch.round + LOOKAHEAD;
                if from <= to {
                    forge(&net, &key, ch.epoch, from, to, 4);
                    forged_to = to;
                }
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A halted committee commits nothing at all; a loaded machine still commits a few.
    let after = c.height(0).await.unwrap_or(0);
    assert!(
        after >= start_height + 5,
        "the chain stalled under forged votes: {start_height} -> {after}; log:\n{}",
        c.log_tail(0)
    );
    // And a transfer sent during the attack's aftermath commits.
    let (demo, _) = c.demo_keys();
    let tx = transfer(c.network, &demo, 0, recipient(1), 5);
    c.client(1).submit_tx(&tx).await.expect("submit");
    c.wait_nonce(
        2,
        demo.account.public_key().address(),
        1,
        Duration::from_secs(30),
    )
    .await;
    let mut refused = 0.0;
    for i in 0..3 {
        let text = c.metrics(i).await;
        refused += text
            .lines()
            .filter(|l| l.contains("kind=\"Impersonation\""))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
    }
    assert!(
        refused > 100.0,
        "forgeries were not refused as impersonation"
    );
}

/// Two validly signed votes for different blocks in each round `from..=to`, under every
/// index of a committee of `n` (only the sender's own index passes the sender check).
fn double_vote(net: &Network, key: &BlsSecretKey, epoch: u64, from: u64, to: u64, n: u16) {
    for r in from..=to {
        for which in [b"a", b"b"] {
            let data = VoteData {
                chain: ChainId::MAIN,
                epoch: Epoch(epoch),
                round: Round(r),
                height: Height(r),
                block: hash(
                    Domain::Custom("banyan/test/double"),
                    &[&r.to_le_bytes()[..], which].concat(),
                ),
            };
            let signature = key.sign(data.signing_message().as_bytes());
            for signer in 0..n {
                let vote = Message::Vote(Box::new(Vote {
                    data,
                    signer,
                    signature,
                    proposal_signature: key.sign(b"no proposal"),
                }));
                net.broadcast(
                    Class::Consensus,
                    wire::consensus_frame(ChainId::MAIN, &vote),
                );
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_double_vote_is_reported_by_the_node_that_sees_it_and_slashed() {
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 0, 1_000);
    short_timeouts(&mut c);
    c.start_all(3);
    let (net, _rx, key) = impostor(&c, 3, &[0, 1, 2]).await;
    c.wait_height(0, 3, Duration::from_secs(60)).await;
    let (_, v3) = c.node_keys(3);
    let v3_id = v3.validator_id.to_hex();

    // v3 votes twice in rounds ahead of the chain; the next leader of each sees the pair,
    // and reports it from its own account without anyone asking.
    let start = Instant::now();
    let slashed = loop {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "no report of the double votes committed; log:\n{}",
            c.log_tail(0)
        );
        if let Some(s) = c.status(0).await {
            if let Some(ch) = s.chains.first() {
                double_vote(&net, &key, ch.epoch, ch.round, ch.round + 10, 4);
            }
        }
        let v = c.validators(0).await;
        if let Some(rec) = v.registry.iter().find(|m| m.validator_id == v3_id) {
            if rec.stake != banyan_node::devnet::VALIDATOR_STAKE.to_string() {
                break rec.stake.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    assert!(
        slashed.parse::<u128>().expect("decimal") < banyan_node::devnet::VALIDATOR_STAKE,
        "{slashed}"
    );
    let mut detected = 0.0;
    let mut reported = 0.0;
    for i in 0..3 {
        let text = c.metrics(i).await;
        let sum = |name: &str| {
            text.lines()
                .filter(|l| l.starts_with(name))
                .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
                .sum::<f64>()
        };
        detected += sum("banyan_consensus_evidence_total");
        reported += sum("banyan_consensus_evidence_reported_total");
    }
    // Every leader that saw the pairs reported the offender once in this epoch.
    assert!(
        detected >= 1.0 && (1.0..=3.0).contains(&reported),
        "{detected} {reported}"
    );
    eprintln!("v3 stake {slashed} after {detected} detections and {reported} reports");
    // The chain goes on with the other three.
    let h = c.height(0).await.expect("up");
    c.wait_height(0, h + 3, Duration::from_secs(60)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_catching_up_node_survives_a_peer_that_serves_bad_blocks() {
    let _serial = cluster::SERIAL.lock().await;
    // Four validators and a standby node (v4, not in the committee: it follows the chain
    // epoch by epoch, asking peers for epoch proofs and blocks).
    let mut c = Cluster::create(4, 1, 20);
    short_timeouts(&mut c);
    c.start_all(3);
    let (net, mut rx, _key) = impostor(&c, 3, &[0, 1, 2, 4]).await;
    let honest = {
        let v = c.nodes[3]
            .config
            .peers
            .iter()
            .find(|p| p.name == c.nodes[0].name)
            .expect("v0 in v3's peers")
            .verify()
            .expect("binding");
        *v.network_key.as_bytes()
    };
    let standby = {
        let v = c.nodes[3]
            .config
            .peers
            .iter()
            .find(|p| p.name == c.nodes[4].name)
            .expect("v4 in v3's peers")
            .verify()
            .expect("binding");
        *v.network_key.as_bytes()
    };
    // Blocks with transactions in them, over a few epochs.
    c.wait_height(0, 2, Duration::from_secs(60)).await;
    let (demo, _) = c.demo_keys();
    for n in 0..20u64 {
        let tx = transfer(c.network, &demo, n, recipient(n), 3);
        c.client(0).submit_tx(&tx).await.expect("submit");
    }
    c.wait_nonce(
        0,
        demo.account.public_key().address(),
        20,
        Duration::from_secs(60),
    )
    .await;
    let target = c.wait_height(0, 70, Duration::from_secs(120)).await;

    // v3 first in the standby's peers: its first question of how an epoch ended goes to v3,
    // whose answer (relayed from v0) then comes first, so it asks v3 for the blocks first
    // whatever the machine's timing.
    {
        let v3 = c.nodes[3].name.clone();
        let node = &mut c.nodes[4];
        node.config.peers.sort_by_key(|p| p.name != v3);
        node.config
            .save(&node.home.join("config.toml"))
            .expect("rewrite config.toml");
    }
    c.start(4);
    // Play v3 for the standby: push it real epoch proofs (fetched from v0) before anyone else
    // answers, so it asks v3 for the blocks first; answer every block request with v0's blocks
    // with their bodies tampered with.
    let mut served_bad = 0u32;
    let started = Instant::now();
    let mut last_push = Instant::now() - Duration::from_secs(1);
    let caught_up = loop {
        if started.elapsed() > Duration::from_secs(120) {
            break false;
        }
        if last_push.elapsed() > Duration::from_millis(300) {
            last_push = Instant::now();
            let Some(s) = c.status(4).await else {
                continue;
            };
            let Some(ch) = s.chains.first() else {
                continue;
            };
            if ch.height >= target {
                break true;
            }
            let req =
                wire::consensus_frame(ChainId::MAIN, &Message::EpochProofRequest(Epoch(ch.epoch)));
            let _ = net.try_send(&honest, Class::Consensus, req);
        }
        let inc = tokio::select! {
            Some(i) = rx.consensus.recv() => i,
            Some(i) = rx.sync.recv() => i,
            _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
        };
        match (inc.from, wire::decode(&inc.payload)) {
            (f, Ok((chain, wire::Body::Consensus(p @ Message::EpochProof(_))))) if f == honest => {
                let _ = net.try_send(&standby, Class::Consensus, wire::consensus_frame(chain, &p));
            }
            (f, Ok((chain, wire::Body::Consensus(Message::EpochProofRequest(e)))))
                if f == standby =>
            {
                let req = wire::consensus_frame(chain, &Message::EpochProofRequest(e));
                let _ = net.try_send(&honest, Class::Consensus, req);
            }
            (f, Ok((chain, wire::Body::BlocksRequest { from, to }))) if f == standby => {
                let req = wire::blocks_request_frame(chain, from, to);
                let _ = net.try_send(&honest, Class::Sync, req);
            }
            (f, Ok((chain, wire::Body::Blocks(mut blocks)))) if f == honest => {
                // Same headers, other bodies.
                for b in blocks.iter_mut() {
                    tamper(b, c.network, &demo);
                }
                if let Ok(frame) = wire::blocks_frame(chain, blocks) {
                    if net.try_send(&standby, Class::Sync, frame).is_ok() {
                        served_bad += 1;
                    }
                }
            }
            _ => {}
        }
    };
    assert!(
        caught_up,
        "the standby did not catch up to {target} (at {:?}); log:\n{}",
        c.height(4).await,
        c.log_tail(4)
    );
    assert!(
        c.nodes[4]
            .child
            .as_mut()
            .is_some_and(|ch| ch.try_wait().ok().flatten().is_none()),
        "the standby exited; log:\n{}",
        c.log_tail(4)
    );
    assert!(
        served_bad > 0,
        "the standby never asked the bad peer for blocks"
    );
    let text = c.metrics(4).await;
    let benched: f64 = text
        .lines()
        .filter(|l| l.contains("kind=\"FollowPeerBenched\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert!(benched >= 1.0, "the bad peer was never benched:\n{text}");
}

/// Replace a block's transactions (its header, and so its id, unchanged).
fn tamper(b: &mut Block, network: Digest, keys: &banyan_node::key_dir::ValidatorKeys) {
    let txs = if b.txs.is_empty() {
        vec![transfer(network, keys, 999, recipient(999), 1)]
    } else {
        Vec::new()
    };
    b.txs = BoundedVec::new(txs).expect("at most one transaction");
}
