//! Mempool flood over JSON-RPC against four `banyan` validator processes: fifty fresh keys
//! nobody funded try to park a thousand transfers each; every one is refused for funds, none
//! is pooled or gossiped, and funded users' transfers still commit on every node.

mod cluster;

use banyan_core::ids::{Amount, ChainId, Nonce};
use banyan_core::keys::AccountSecretKey;
use banyan_core::tx::{SignedTx, TxBody};
use cluster::{recipient, transfer, Cluster};
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::time::Duration;

const START: Duration = Duration::from_secs(90);
const COMMIT: Duration = Duration::from_secs(60);
const FLOOD_KEYS: u64 = 50;
const TXS_PER_KEY: u64 = 1_000;

/// `banyan_mempool_rejected_total` of `reason`, summed over chains.
fn rejected(metrics: &str, reason: &str) -> f64 {
    let label = format!("reason=\"{reason}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("banyan_mempool_rejected_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next().and_then(|v| v.parse::<f64>().ok()))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unfunded_keys_cannot_fill_the_mempool() {
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 0, 1_000);
    c.start_all(4);
    for i in 0..4 {
        c.wait_height(i, 1, START).await;
    }

    // The flood: each fresh key sends its transfers (nonces 0..1000, fee 1, 1 coin) to one
    // node, round-robin.
    let mut sent = [0u64; 4];
    for k in 0..FLOOD_KEYS {
        let key = AccountSecretKey::generate(&mut StdRng::seed_from_u64(0xf100d + k));
        let txs: Vec<SignedTx> = (0..TXS_PER_KEY)
            .map(|n| {
                TxBody::native_transfer(
                    ChainId::MAIN,
                    c.network,
                    key.public_key(),
                    Nonce(n),
                    Amount(1),
                    recipient(n),
                    Amount(1),
                )
                .sign(&key)
            })
            .collect();
        let node = (k % 4) as usize;
        let results = c.client(node).submit_txs(&txs).await.expect("submit");
        assert_eq!(results.len(), txs.len());
        for r in results {
            let e = r.expect_err("an unfunded key's transfer is refused");
            let text = e.to_string();
            assert!(
                text.contains("cannot pay") && text.contains("fund the account"),
                "key {k}: {text}"
            );
        }
        sent[node] += TXS_PER_KEY;
    }
    // No node pooled any; each refused exactly what it was sent (nothing refused was
    // gossiped to the others).
    for (i, &n) in sent.iter().enumerate() {
        let status = c.status(i).await.expect("status");
        assert_eq!(
            status.chains[0].mempool_txs, 0,
            "node {i} pooled a flood tx"
        );
        let metrics = c.metrics(i).await;
        assert_eq!(rejected(&metrics, "cannot_pay"), n as f64, "node {i}");
    }

    // Funded users (the demo account and two validators' accounts) still get through.
    let mut users = vec![c.demo_keys()];
    users.push(c.node_keys(1));
    users.push(c.node_keys(2));
    let mut expected = Vec::new();
    for (u, (keys, public)) in users.iter().enumerate() {
        let nonce0 = c.account(0, public.account_address).await.nonce;
        let txs: Vec<SignedTx> = (0..20u64)
            .map(|n| {
                transfer(
                    c.network,
                    keys,
                    nonce0 + n,
                    recipient(1_000_000 + u as u64),
                    3,
                )
            })
            .collect();
        let results = c.client(u % 4).submit_txs(&txs).await.expect("submit");
        for r in results {
            r.expect("a funded user's transfer is accepted");
        }
        expected.push((public.account_address, nonce0 + 20, u as u64));
    }
    for i in 0..4 {
        for &(address, nonce, u) in &expected {
            c.wait_nonce(i, address, nonce, COMMIT).await;
            let got = c.account(i, recipient(1_000_000 + u)).await.balance;
            assert_eq!(
                got,
                (20 * 3).to_string(),
                "recipient of user {u} on node {i}"
            );
        }
    }
}
