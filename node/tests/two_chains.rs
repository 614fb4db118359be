//! Two chain instances in each of four `banyan` processes: the main chain and a test chain
//! derived from its genesis (`test_chains = [1]`). Both are loaded at once with `banyan load`
//! on the same nodes; each commits everything it is sent, on every node, and neither stalls
//! while the other is busy.

mod cluster;

use cluster::Cluster;
use std::time::Duration;

const START: Duration = Duration::from_secs(90);

/// Committed height of `chain` on node `i`, from its status.
async fn height_of(c: &Cluster, i: usize, chain: u32) -> Option<u64> {
    let s = c.status(i).await?;
    s.chains.iter().find(|x| x.chain == chain).map(|x| x.height)
}

async fn wait_chain(c: &Cluster, i: usize, chain: u32, h: u64) -> u64 {
    let started = std::time::Instant::now();
    loop {
        if let Some(now) = height_of(c, i, chain).await {
            if now >= h {
                return now;
            }
        }
        assert!(
            started.elapsed() < START,
            "node {i}: chain {chain} did not reach height {h}; log:\n{}",
            c.log_tail(i)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_chain_instances_in_one_node_both_commit_under_load() {
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 0, 1_000);
    for n in c.nodes.iter_mut() {
        n.config.test_chains = vec![1];
        n.config
            .save(&n.home.join("config.toml"))
            .expect("rewrite config.toml");
    }
    c.start_all(4);
    for i in 0..4 {
        wait_chain(&c, i, 0, 2).await;
        wait_chain(&c, i, 1, 2).await;
    }
    // Two chains with blocks of their own (every header names its chain), one network.
    let s = c.status(0).await.expect("status");
    let chains: Vec<u32> = s.chains.iter().map(|x| x.chain).collect();
    assert_eq!(chains, vec![0, 1]);
    assert_ne!(s.chains[0].block_id, s.chains[1].block_id);

    // Load both at once, through the same four nodes.
    let before: Vec<u64> = {
        let mut v = Vec::new();
        for chain in [0, 1] {
            v.push(height_of(&c, 0, chain).await.unwrap_or(0));
        }
        v
    };
    // Both at once: two processes, awaited together.
    let (r0, r1) = tokio::join!(
        Cluster::run_load(c.load_command(4, 0, 200, "5s", 40, true), "chain 0"),
        Cluster::run_load(c.load_command(4, 1, 200, "5s", 40, true), "chain 1"),
    );
    let reports = [r0, r1];
    for (chain, report) in reports.iter().enumerate() {
        let submitted = report["submitted"].as_u64().expect("submitted");
        assert!(submitted >= 800, "chain {chain}: {report}");
        assert_eq!(
            report["rejected"].as_u64(),
            Some(0),
            "chain {chain}: {report}"
        );
        assert_eq!(
            report["committed"].as_u64(),
            Some(submitted),
            "chain {chain}: {report}"
        );
    }
    // Both kept committing, and every node has both.
    for (chain, b) in [0u32, 1].into_iter().zip(before) {
        let after = height_of(&c, 0, chain).await.expect("status");
        assert!(after >= b + 5, "chain {chain} stalled: {b} -> {after}");
        for i in 1..4 {
            wait_chain(&c, i, chain, after).await;
        }
    }
}

/// `banyan chain <args> --rpc <node i>`: its output, or its error text when it fails.
fn chain_cli(c: &Cluster, i: usize, args: &[&str]) -> Result<String, String> {
    let mut all = vec!["chain"];
    all.extend_from_slice(args);
    c.cli(i, &all)
}

/// A chain started on running nodes with `banyan chain start`, stopped on one of them with
/// `banyan chain stop` (the others, still a quorum, go on), then started there again: it
/// resumes from its stored state and catches up. The main chain cannot be stopped and a
/// running chain cannot be started twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chains_start_and_stop_on_running_nodes() {
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 0, 1_000);
    c.start_all(4);
    for i in 0..4 {
        wait_chain(&c, i, 0, 1).await;
    }
    for i in 0..4 {
        let said = chain_cli(&c, i, &["start", "1"]).expect("chain 1 starts");
        assert!(said.contains("chain 1 started"), "{said}");
    }
    for i in 0..4 {
        wait_chain(&c, i, 1, 3).await;
    }
    let twice = chain_cli(&c, 0, &["start", "1"]).expect_err("already running");
    assert!(twice.contains("already running"), "{twice}");
    let main = chain_cli(&c, 0, &["stop", "0"]).expect_err("the main chain stays");
    assert!(main.contains("main chain"), "{main}");

    // Node 3 leaves chain 1; the other three are a quorum and keep committing it.
    chain_cli(&c, 3, &["stop", "1"]).expect("chain 1 stops on node 3");
    let s = c.status(3).await.expect("status");
    let chains: Vec<u32> = s.chains.iter().map(|x| x.chain).collect();
    assert_eq!(chains, vec![0], "node 3 no longer hosts chain 1");
    let unknown = chain_cli(&c, 3, &["stop", "1"]).expect_err("not running any more");
    assert!(unknown.contains("unknown chain 1"), "{unknown}");
    let left_at = height_of(&c, 0, 1).await.expect("status");
    let moved_on = wait_chain(&c, 0, 1, left_at + 3).await;
    // The main chain on node 3 did not notice.
    let main_h = height_of(&c, 3, 0).await.expect("status");
    wait_chain(&c, 3, 0, main_h + 2).await;

    // Back on node 3: it resumes from its store and catches up with the others.
    chain_cli(&c, 3, &["start", "1"]).expect("chain 1 starts again on node 3");
    wait_chain(&c, 3, 1, moved_on).await;
    for i in 0..4 {
        c.stop(i);
    }
}
