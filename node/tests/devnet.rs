//! End to end: validator processes on loopback, RocksDB in temp dirs, QUIC between them,
//! JSON-RPC and /metrics over HTTP.

mod cluster;
mod promtool;

use banyan_core::header::CertifiedHeader;
use banyan_core::ids::{Amount, ChainId, Nonce};
use banyan_core::tx::{TxBody, TxKind};
use cluster::{metric_sum, recipient, transfer, Cluster};
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

const START: Duration = Duration::from_secs(90);
const COMMIT: Duration = Duration::from_secs(120);

/// Heights 1..=h hold the same blocks (ids) and state roots on every node in `nodes`.
async fn assert_same_chain(c: &Cluster, nodes: &[usize], h: u64) {
    for height in 1..=h {
        let first = c.block(nodes[0], height).await;
        for &i in &nodes[1..] {
            let b = c.block(i, height).await;
            assert_eq!(
                b.id, first.id,
                "node {i} has another block at height {height}"
            );
            assert_eq!(
                b.state_root, first.state_root,
                "state root differs at {height}"
            );
        }
    }
}

async fn min_height(c: &Cluster, nodes: &[usize]) -> u64 {
    let mut m = u64::MAX;
    for &i in nodes {
        m = m.min(c.height(i).await.unwrap_or(0));
    }
    m
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousand_transfers_commit_and_every_node_agrees() {
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 0, 1_000);
    c.start_all(4);
    for i in 0..4 {
        c.wait_height(i, 1, START).await;
    }
    let (demo, public) = c.demo_keys();
    let nonce0 = c.account(0, public.account_address).await.nonce;
    let before = c.account(0, public.account_address).await.balance;
    let txs: Vec<_> = (0..1_000u64)
        .map(|i| {
            transfer(
                c.network,
                &demo,
                nonce0 + i,
                recipient(i),
                1 + u128::from(i % 7),
            )
        })
        .collect();
    for (k, chunk) in txs.chunks(100).enumerate() {
        let results = c.client(k % 4).submit_txs(chunk).await.expect("submit");
        for r in results {
            r.expect("every transfer is accepted");
        }
    }
    for i in 0..4 {
        c.wait_nonce(i, public.account_address, nonce0 + 1_000, COMMIT)
            .await;
    }
    // Every node: same balances, same blocks, same state roots.
    let h = min_height(&c, &[0, 1, 2, 3]).await;
    assert_same_chain(&c, &[0, 1, 2, 3], h).await;
    check_certified_headers(&c, h).await;
    let spent: u128 = (0..1_000u64).map(|i| 1 + u128::from(i % 7) + 1).sum();
    for i in 0..4 {
        let a = c.account(i, public.account_address).await;
        let expect = before.parse::<u128>().expect("decimal") - spent;
        assert_eq!(a.balance, expect.to_string(), "demo balance on node {i}");
        for r in [0u64, 1, 499, 999] {
            let got = c.account(i, recipient(r)).await.balance;
            assert_eq!(
                got,
                (1 + u128::from(r % 7)).to_string(),
                "recipient {r} on node {i}"
            );
        }
    }
    // Metrics: promtool accepts them, and they saw the transactions.
    let text = c.metrics(0).await;
    promtool::check(&text);
    assert!(
        metric_sum(&text, "banyan_txs_committed_total") >= 1_000.0,
        "{text}"
    );
    assert!(metric_sum(&text, "banyan_chain_height") >= h as f64);
    assert_eq!(metric_sum(&text, "banyan_consensus_evidence_total"), 0.0);
    // Node 0 checked every transaction's signature once: at admission or in a block.
    assert!(
        metric_sum(&text, "banyan_tx_signature_checks_total") >= 1_000.0,
        "{text}"
    );
    // Admission threads (RPC submissions, gossip) run below the consensus thread.
    for i in 0..4 {
        let pid = c.nodes[i].child.as_ref().expect("running").id();
        let threads = thread_nices(pid);
        let chain = threads
            .iter()
            .find(|(name, _)| name == "chain-0")
            .map(|t| t.1)
            .unwrap_or_else(|| panic!("node {i}: no chain-0 thread: {threads:?}"));
        let admission = (chain + banyan_node::service::INGEST_NICE).min(19);
        assert!(
            chain < 19 && threads.iter().any(|(_, nice)| *nice == admission),
            "node {i}: no admission thread at nice {admission}: {threads:?}"
        );
    }
    // `banyan load`, signing as it goes and signing everything first: every transaction
    // it sends commits, and it reports throughput and latency.
    for presign in [false, true] {
        let cmd = c.load_command(4, 0, 300, "3s", 40, presign);
        let report = Cluster::run_load(cmd, &format!("presign: {presign}")).await;
        let submitted = report["submitted"].as_u64().expect("submitted");
        assert!(submitted >= 800, "presign {presign}: {report}");
        assert_eq!(report["rejected"].as_u64(), Some(0), "{report}");
        assert_eq!(report["committed"].as_u64(), Some(submitted), "{report}");
        assert!(
            report["committed_tps"].as_f64().expect("tps") > 0.0,
            "{report}"
        );
        assert!(report["p99_ms"].as_f64().expect("p99") > 0.0, "{report}");
    }
    for i in 0..4 {
        c.stop(i);
    }
}

/// Every committed block, the newest included, is served with a commit proof that verifies
/// against the genesis committee and names the block every node committed; a tampered proof
/// fails; the CLI prints the same.
async fn check_certified_headers(c: &Cluster, h: u64) {
    let genesis =
        banyan_mainchain::Genesis::from_file(&c.nodes[0].config.genesis).expect("genesis");
    let committee = genesis.committee();
    for height in [1, h / 2, h.saturating_sub(1), h]
        .into_iter()
        .filter(|x| *x >= 1)
    {
        for i in 0..4 {
            let view = c
                .client(i)
                .certified_header_on(ChainId::MAIN, Some(height))
                .await
                .unwrap_or_else(|e| panic!("node {i} height {height}: {e}"));
            let bytes = hex::decode(&view.proof).expect("hex");
            let proof: CertifiedHeader =
                banyan_core::codec::decode(&bytes, 1 << 20).expect("a certified header");
            let header = proof.verify(&committee).expect("the proof verifies");
            assert_eq!(header.height.0, height);
            assert_eq!(header.id().to_hex(), c.block(0, height).await.id);
            assert_eq!(view.id, header.id().to_hex());
            assert!(view.signers.len() >= 3, "{view:?}");
            let mut forged = proof.clone();
            forged.commit_qc.data.round.0 += 1;
            assert!(forged.verify(&committee).is_err(), "a forged QC passes");
        }
    }
    // Genesis has no proof; nor does a height not yet committed.
    for bad in [0, h + 1_000] {
        let err = c
            .client(0)
            .certified_header_on(ChainId::MAIN, Some(bad))
            .await
            .expect_err("no proof");
        assert!(err.to_string().contains("no commit proof"), "{err}");
    }
    let out = std::process::Command::new(cluster::EXE)
        .args(["query", "certified-header", "1", "--json", "--rpc"])
        .arg(c.nodes[0].rpc_url())
        .output()
        .expect("run banyan query certified-header");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let view: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(view["height"].as_u64(), Some(1), "{view}");
}

/// `(name, nice)` of every thread of process `pid` (from /proc).
fn thread_nices(pid: u32) -> Vec<(String, i32)> {
    let mut out = Vec::new();
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).expect("/proc task list");
    for t in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(t.path().join("stat")) else {
            continue; // the thread ended meanwhile
        };
        // pid (comm) state ppid ...: the name is in parentheses and may hold spaces; nice is
        // the 19th field, the 17th after the closing parenthesis.
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        let name = stat[open + 1..close].to_string();
        let nice = stat[close + 1..]
            .split_whitespace()
            .nth(16)
            .and_then(|n| n.parse().ok())
            .expect("nice field");
        out.push((name, nice));
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crashed_validators_catch_up_and_never_double_sign() {
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 0, 1_000);
    c.start_all(4);
    for i in 0..4 {
        c.wait_height(i, 2, START).await;
    }
    // kill -9 of one validator: the other three keep committing.
    c.kill9(3);
    let h0 = c.height(0).await.expect("node 0 up");
    c.wait_height(0, h0 + 10, COMMIT).await;
    c.wait_height(1, h0 + 10, COMMIT).await;
    // Restarted, it catches up from its RocksDB and its peers.
    c.start(3);
    let target = c.height(0).await.expect("node 0 up");
    c.wait_height(3, target, COMMIT).await;

    // kill -9 of a validator in the middle of load.
    let (demo, public) = c.demo_keys();
    let nonce0 = c.account(0, public.account_address).await.nonce;
    let total = 600u64;
    let mut killed_at = None;
    for (k, start) in (0..total).step_by(50).enumerate() {
        let chunk: Vec<_> = (start..start + 50)
            .map(|i| transfer(c.network, &demo, nonce0 + i, recipient(10_000 + i), 5))
            .collect();
        // Submitted to nodes that stay up, so no transaction dies with the killed one.
        let results = c
            .client(if k % 2 == 0 { 0 } else { 2 })
            .submit_txs(&chunk)
            .await
            .expect("submit");
        for r in results {
            r.expect("accepted");
        }
        if k == 5 {
            killed_at = c.height(1).await;
            c.kill9(1);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let killed_at = killed_at.expect("node 1 answered before the kill");
    tokio::time::sleep(Duration::from_secs(2)).await;
    c.start(1);
    for i in 0..4 {
        c.wait_nonce(i, public.account_address, nonce0 + total, COMMIT)
            .await;
    }
    let h = min_height(&c, &[0, 1, 2, 3]).await;
    assert!(
        h >= killed_at,
        "node 1 lost committed blocks: {h} < {killed_at}"
    );
    // No committed block lost or changed, on any node.
    assert_same_chain(&c, &[0, 1, 2, 3], h).await;
    for i in 0..4 {
        let text = c.metrics(i).await;
        assert_eq!(
            metric_sum(&text, "banyan_consensus_evidence_total"),
            0.0,
            "node {i} saw an equivocation"
        );
    }
    // No double sign: every vote each validator ever signed, one block per (epoch, round).
    for i in 0..4 {
        c.stop(i);
    }
    for i in 0..4 {
        let store = banyan_store::Store::open(c.db_path(i), &banyan_store::StoreOptions::default())
            .expect("open the stopped node's store");
        let votes = banyan_chain::ChainStore::new(std::sync::Arc::new(store), ChainId::MAIN)
            .signed_votes()
            .expect("vote log");
        assert!(!votes.is_empty(), "node {i} logged no votes");
        let mut by_round: BTreeMap<(u64, u64), BTreeSet<[u8; 32]>> = BTreeMap::new();
        for (e, r, b) in votes {
            by_round
                .entry((e.0, r.0))
                .or_default()
                .insert(*b.as_bytes());
        }
        for ((e, r), blocks) in by_round {
            assert_eq!(
                blocks.len(),
                1,
                "node {i} voted for two blocks in epoch {e} round {r}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stake_and_unstake_change_the_set_at_the_next_epoch() {
    // Four staked validators and one standby (keys and a funded account, no stake).
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 1, 20);
    // The standby's node runs from the start: outside the committee it follows the chain
    // epoch by epoch, and joins consensus once its stake takes effect.
    c.start_all(5);
    for i in 0..4 {
        c.wait_height(i, 1, START).await;
    }
    let v = c.validators(0).await;
    assert_eq!(v.committee.len(), 4);
    let (joiner, joiner_pub) = c.node_keys(4);
    let joiner_id = joiner_pub.validator_id.to_hex();
    assert!(v.committee.iter().all(|m| m.validator_id != joiner_id));

    // Stake: the joiner's BLS key and proof of possession, from its account.
    let stake = TxBody {
        chain: ChainId::MAIN,
        network: c.network,
        sender: joiner.account.public_key(),
        nonce: Nonce(0),
        fee: Amount(1),
        kind: TxKind::Stake {
            validator_key: joiner_pub.bls_pubkey,
            pop: Box::new(joiner_pub.bls_pop),
            amount: Amount(1_000_000),
        },
    }
    .sign(&joiner.account);
    let id = c
        .client(0)
        .submit_tx(&stake)
        .await
        .expect("stake accepted")
        .id;
    c.wait_nonce(0, joiner_pub.account_address, 1, COMMIT).await;
    let epoch_of_stake = epoch_of_tx(&c, &id).await;
    // Until that epoch ends the committee is unchanged; the registry already has it.
    let v = c.validators(0).await;
    if v.epoch == epoch_of_stake {
        assert!(v.committee.iter().all(|m| m.validator_id != joiner_id));
        assert!(v.registry.iter().any(|m| m.validator_id == joiner_id));
    }
    let v = wait_epoch(&c, epoch_of_stake + 1).await;
    assert!(
        v.committee.iter().any(|m| m.validator_id == joiner_id),
        "the staked validator is not in the committee of epoch {}: {v:?}",
        v.epoch
    );
    assert_eq!(v.committee.len(), 5);
    // The joiner's own node followed and now takes part: it reports itself in the committee
    // and keeps up with the others.
    let start = std::time::Instant::now();
    loop {
        let s = c.status(4).await.expect("joiner answers");
        let chain = &s.chains[0];
        if chain.epoch > epoch_of_stake && chain.committee_index.is_some() {
            break;
        }
        assert!(
            start.elapsed() < COMMIT,
            "the joiner never joined: {s:?}\n{}",
            c.log_tail(4)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let h = c.height(0).await.expect("up");
    c.wait_height(4, h, COMMIT).await;

    // Unstake all of validator 3's stake: it leaves at the next epoch boundary.
    let (leaver, leaver_pub) = c.node_keys(3);
    let leaver_id = leaver_pub.validator_id.to_hex();
    let n = c.account(0, leaver_pub.account_address).await.nonce;
    let unstake = TxBody {
        chain: ChainId::MAIN,
        network: c.network,
        sender: leaver.account.public_key(),
        nonce: Nonce(n),
        fee: Amount(1),
        kind: TxKind::Unstake {
            amount: Amount(1_000_000),
        },
    }
    .sign(&leaver.account);
    let id = c
        .client(1)
        .submit_tx(&unstake)
        .await
        .expect("unstake accepted")
        .id;
    c.wait_nonce(0, leaver_pub.account_address, n + 1, COMMIT)
        .await;
    let epoch_of_unstake = epoch_of_tx(&c, &id).await;
    let v = wait_epoch(&c, epoch_of_unstake + 1).await;
    assert!(
        v.committee.iter().all(|m| m.validator_id != leaver_id),
        "{v:?}"
    );
    assert_eq!(v.committee.len(), 4);
    // The chain stays live without the leaver, and the leaver's node keeps following it.
    let h = c.height(0).await.expect("up");
    c.wait_height(0, h + 5, COMMIT).await;
    let start = std::time::Instant::now();
    loop {
        let s = c.status(3).await.expect("leaver answers");
        if s.chains[0].epoch > epoch_of_unstake + 1 {
            assert_eq!(s.chains[0].committee_index, None);
            break;
        }
        assert!(
            start.elapsed() < COMMIT,
            "the leaver stopped following: {s:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Epoch of the committed block holding transaction `id` (searched from the tip down).
async fn epoch_of_tx(c: &Cluster, id: &str) -> u64 {
    let tip = c.height(0).await.expect("up");
    for h in (1..=tip).rev() {
        let b = c.block(0, h).await;
        if b.txs.iter().any(|t| t.id == id) {
            assert!(b.txs.iter().find(|t| t.id == id).is_some_and(|t| t.applied));
            return b.epoch;
        }
    }
    panic!("transaction {id} is in no committed block");
}

async fn wait_epoch(c: &Cluster, epoch: u64) -> banyan_node::api::ValidatorsView {
    let start = std::time::Instant::now();
    loop {
        let v = c.validators(0).await;
        if v.epoch >= epoch {
            return v;
        }
        assert!(start.elapsed() < COMMIT, "epoch {epoch} never came: {v:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
