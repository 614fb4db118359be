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
    let urls: Vec<String> = (0..4).map(|i| c.nodes[i].rpc_url()).collect();
    let before: Vec<u64> = {
        let mut v = Vec::new();
        for chain in [0, 1] {
            v.push(height_of(&c, 0, chain).await.unwrap_or(0));
        }
        v
    };
    let runs: Vec<_> = [0u32, 1]
        .into_iter()
        .map(|chain| {
            let mut cmd = std::process::Command::new(cluster::EXE);
            cmd.arg("load")
                .args(["--rpc", &urls.join(",")])
                .args(["--chain", &chain.to_string()])
                .arg("--keys")
                .arg(c.layout.demo())
                .arg("--password-file")
                .arg(c.layout.password())
                .args([
                    "--rate",
                    "200",
                    "--duration",
                    "5s",
                    "--accounts",
                    "40",
                    "--presign",
                    "--json",
                ]);
            tokio::task::spawn_blocking(move || cmd.output())
        })
        .collect();
    let mut reports = Vec::new();
    for (chain, run) in runs.into_iter().enumerate() {
        let out = run.await.expect("join").expect("run banyan load");
        assert!(
            out.status.success(),
            "banyan load on chain {chain} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let report: serde_json::Value =
            serde_json::from_slice(&out.stdout).expect("one JSON report");
        reports.push(report);
    }
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
