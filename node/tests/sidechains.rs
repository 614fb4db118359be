//! Sidechains through the command line of real `banyan` processes: spawn with bad parameters
//! and too small a deposit (clear errors, nothing locked), spawn (the id printed is the one
//! the main chain records, the deposit is locked), list, retire by another account (refused)
//! and by the spawner (the deposit comes back, through settlement once the sidechain ran).

mod cluster;

use banyan_core::ids::{ChainId, Nonce};
use banyan_core::tx::sidechain_id;
use cluster::Cluster;
use std::time::Duration;

/// `banyan sidechain <args> --rpc <node 0>`, signed with `keys` and waiting for the commit
/// when given: its stdout, or its stderr when it fails.
fn sidechain_cli(
    c: &Cluster,
    keys: Option<std::path::PathBuf>,
    args: &[&str],
) -> Result<String, String> {
    let keys = keys.map(|k| k.to_string_lossy().into_owned());
    let password = c.layout.password().to_string_lossy().into_owned();
    let mut all = vec!["sidechain"];
    all.extend_from_slice(args);
    if let Some(dir) = &keys {
        all.extend_from_slice(&["--keys", dir, "--password-file", &password, "--wait"]);
    }
    c.cli(0, &all)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sidechains_are_spawned_listed_and_retired_from_the_command_line() {
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 0, 1_000);
    c.start_all(4);
    for i in 0..4 {
        c.wait_height(i, 1, Duration::from_secs(90)).await;
    }
    let demo = c.layout.demo();
    let (_, public) = c.demo_keys();
    let me = public.account_address;
    let balance = |v: banyan_node::api::AccountView| v.balance.parse::<u128>().expect("decimal");
    let before = balance(c.account(0, me).await);

    // Refused before anything is sent.
    let zero = sidechain_cli(
        &c,
        Some(demo.clone()),
        &["spawn", "--committee-size", "0", "--deposit", "1000000"],
    )
    .expect_err("a committee of 0");
    assert!(zero.contains("committee_size 0"), "{zero}");
    // Sent, committed, and failed on chain: said so, and only the fee is paid.
    let small = sidechain_cli(&c, Some(demo.clone()), &["spawn", "--deposit", "5"])
        .expect_err("a deposit below the minimum");
    assert!(
        small.contains("failed") && small.contains("minimum"),
        "{small}"
    );
    let after_small = balance(c.account(0, me).await);
    assert_eq!(after_small, before - 1, "only the fee");

    // A real spawn: the printed id is the one derived from the sender and its nonce.
    let nonce = c.account(0, me).await.nonce;
    let said = sidechain_cli(
        &c,
        Some(demo.clone()),
        &[
            "spawn",
            "--committee-size",
            "3",
            "--block-time-ms",
            "400",
            "--epoch-length",
            "50",
            "--deposit",
            "2000000",
        ],
    )
    .expect("spawn");
    let id = sidechain_id(&me, Nonce(nonce));
    assert!(said.contains(&format!("sidechain: {}", id.0)), "{said}");
    assert_eq!(balance(c.account(0, me).await), after_small - 1 - 2_000_000);

    let listed = sidechain_cli(&c, None, &["list", "--json"]).expect("list");
    let v: serde_json::Value = serde_json::from_str(&listed).expect("JSON");
    let entry = v["sidechains"]
        .as_array()
        .expect("array")
        .iter()
        .find(|s| s["chain"] == id.0)
        .unwrap_or_else(|| panic!("{id:?} not listed: {v}"))
        .clone();
    assert_eq!(entry["status"], "active", "{entry}");
    assert_eq!(entry["spawner"], me.to_hex(), "{entry}");
    assert_eq!(entry["deposit"], "2000000", "{entry}");
    assert_eq!(entry["committee_size"], 3, "{entry}");
    assert_eq!(entry["epoch_length"], 50, "{entry}");
    assert_eq!(entry["activation_epoch"], 1, "{entry}");

    // Another account may not retire it.
    let other = c.nodes[1].home.join("keys");
    let (_, other_public) = c.node_keys(1);
    let other_before = balance(c.account(0, other_public.account_address).await);
    let refused = sidechain_cli(&c, Some(other), &["retire", &id.0.to_string()])
        .expect_err("not the spawner");
    assert!(
        refused.contains("only the account that spawned it"),
        "{refused}"
    );
    assert_eq!(
        balance(c.account(0, other_public.account_address).await),
        other_before - 1
    );
    // The spawner retires it and gets the deposit back: at once if it never ran, else by
    // settlement once the retirement takes effect (nothing was spent on it).
    sidechain_cli(&c, Some(demo), &["retire", &id.0.to_string()]).expect("retire");
    let waited = std::time::Instant::now();
    while balance(c.account(0, me).await) != after_small - 2 {
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "the deposit did not come back: {} of {}",
            balance(c.account(0, me).await),
            after_small - 2
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let listed = sidechain_cli(&c, None, &["list"]).expect("list");
    assert!(
        listed.contains(&format!("sidechain {}: retired", id.0)),
        "{listed}"
    );
    assert_ne!(id, ChainId::MAIN);
    for i in 0..4 {
        c.stop(i);
    }
}

/// Node `i`'s status of `chain`, if it hosts it.
async fn hosted(c: &Cluster, i: usize, chain: ChainId) -> Option<banyan_node::api::ChainStatus> {
    c.status(i)
        .await
        .and_then(|s| s.chains.into_iter().find(|x| x.chain == chain.0))
}

/// The sidechain committees main-chain epoch `epoch` assigns, recomputed here with
/// `vrf::sortition` from the main chain stored in `db` (every input read back from the
/// store: the main committee and seed of each epoch, the registry), from the first epoch
/// any sidechain ran.
fn recompute(
    main: &banyan_chain::ChainStore,
    epoch: u64,
) -> Vec<(ChainId, Vec<banyan_core::keys::BlsPublicKey>)> {
    use banyan_chain::KeyBook;
    use banyan_core::ids::Epoch;
    use banyan_vrf::{sortition_by_seats, ChainSeats, ValidatorSet};
    let registry = main.sidechains().expect("registry");
    let first = registry
        .iter()
        .map(|(_, r)| u64::from(r.activation_epoch))
        .min()
        .expect("a sidechain");
    let mut previous = None;
    for e in first..=epoch {
        let record = main
            .epoch_record(Epoch(e))
            .expect("read")
            .expect("epoch reached");
        let committee = record
            .committee
            .to_committee(Epoch(e), &mut KeyBook::new())
            .expect("committee");
        let validators = ValidatorSet::new(committee.members().to_vec()).expect("set");
        let chains: Vec<ChainSeats> = registry
            .iter()
            .filter(|(_, r)| r.runs_in(e))
            .map(|(chain, r)| ChainSeats {
                chain: *chain,
                seats: usize::from(r.committee_size),
            })
            .collect();
        let a = sortition_by_seats(
            Epoch(e),
            &record.seed,
            &validators,
            &chains,
            banyan_mainchain::MAX_ROTATION,
            previous.as_ref(),
        )
        .expect("sortition");
        previous = Some(a);
    }
    previous
        .expect("at least one epoch")
        .committees()
        .iter()
        .map(|c| {
            (
                c.chain(),
                c.members().iter().map(|m| *m.key.key()).collect(),
            )
        })
        .collect()
}

/// The main epoch in progress at `t_ms`: the latest whose first block's parent (the block
/// that ended the epoch before) is stamped at or before `t_ms`.
fn main_epoch_at(main: &banyan_chain::ChainStore, t_ms: u64) -> u64 {
    let mut at = 0;
    let mut e = 1;
    while let Some(record) = main.epoch_record(banyan_core::ids::Epoch(e)).expect("read") {
        let base = main
            .block_by_id(&record.base)
            .expect("read")
            .expect("base block");
        if base.header.timestamp_ms > t_ms {
            break;
        }
        at = e;
        e += 1;
    }
    at
}

/// The committee of `chain`'s own epoch `k` as its instance in `db` recorded it.
fn recorded_committee(
    side: &banyan_chain::ChainStore,
    k: u64,
) -> Vec<banyan_core::keys::BlsPublicKey> {
    let record = side
        .epoch_record(banyan_core::ids::Epoch(k))
        .expect("read")
        .unwrap_or_else(|| panic!("no epoch {k} recorded for {:?}", side.chain()));
    record.committee.members.iter().map(|m| m.key).collect()
}

/// Node `i`'s height of `chain`, if it hosts it.
async fn side_height(c: &Cluster, i: usize, chain: ChainId) -> Option<u64> {
    hosted(c, i, chain).await.map(|s| s.height)
}

/// Wait until `cond` holds, polling every 100 ms; panics with `what` after `timeout`.
async fn wait_until<F, Fut>(timeout: Duration, what: &str, mut cond: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = std::time::Instant::now();
    while !cond().await {
        assert!(started.elapsed() < timeout, "{what} within {timeout:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_spawned_sidechain_runs_on_the_committee_the_main_chain_draws_and_rotates() {
    let _serial = cluster::SERIAL.lock().await;
    const MAIN_EPOCH: u64 = 20;
    // Long enough (200 blocks of 100 ms) that the kill -9 below happens within epoch 0.
    const SIDE_EPOCH: u64 = 200;
    let mut c = Cluster::create(5, 0, MAIN_EPOCH);
    c.start_all(5);
    for i in 0..5 {
        c.wait_height(i, 1, Duration::from_secs(90)).await;
    }
    let demo = c.layout.demo();
    let (_, public) = c.demo_keys();
    let me = public.account_address;
    let nonce = c.account(0, me).await.nonce;

    // More seats than validators: refused before it is sent anywhere, nothing changes.
    let crowded = sidechain_cli(
        &c,
        Some(demo.clone()),
        &["spawn", "--committee-size", "6", "--deposit", "2000000"],
    )
    .expect_err("6 seats of 5 validators");
    assert!(crowded.contains("more than the 5 validators"), "{crowded}");
    assert_eq!(c.account(0, me).await.nonce, nonce);

    sidechain_cli(
        &c,
        Some(demo.clone()),
        &[
            "spawn",
            "--committee-size",
            "4",
            "--block-time-ms",
            "100",
            "--epoch-length",
            &SIDE_EPOCH.to_string(),
            "--deposit",
            "2000000",
        ],
    )
    .expect("spawn");
    let id = sidechain_id(&me, Nonce(nonce));

    // The four members start it by themselves at activation; it commits.
    let started = std::time::Instant::now();
    let members: Vec<usize> = loop {
        let mut hosts = Vec::new();
        for i in 0..5 {
            let serving = hosted(&c, i, id)
                .await
                .is_some_and(|s| s.height >= 1 && s.epoch == 0 && s.committee_index.is_some());
            if serving {
                hosts.push(i);
            }
        }
        if hosts.len() >= 4 {
            break hosts;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "sidechain {id:?} not running on 4 nodes (hosts {hosts:?}); log of node 0:\n{}",
            c.log_tail(0)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(members.len(), 4, "a committee of four");
    let host = members[0];
    let client = c.client(host);
    let genesis = client.block_on(id, Some(0)).await.expect("genesis block");
    let first = client.block_on(id, Some(1)).await.expect("block 1");
    // The genesis is stamped with the main-chain block its activation epoch starts from.
    let first_block_ms = first.timestamp_ms - genesis.timestamp_ms;
    eprintln!(
        "sidechain {}: first block {first_block_ms} ms after activation",
        id.0
    );
    assert!(
        first_block_ms <= 3_000,
        "first block {first_block_ms} ms after activation"
    );

    // `sidechain status` names the members hosting it.
    let status = sidechain_cli(&c, None, &["status", &id.0.to_string(), "--json"]).expect("status");
    let v: serde_json::Value = serde_json::from_str(&status).expect("JSON");
    let listed: Vec<String> = v["committee"]
        .as_array()
        .expect("committee")
        .iter()
        .map(|m| m.as_str().expect("hex").to_string())
        .collect();
    let mut hosting: Vec<String> = members
        .iter()
        .map(|&i| c.node_keys(i).1.validator_id.to_hex())
        .collect();
    hosting.sort();
    let mut listed_sorted = listed.clone();
    listed_sorted.sort();
    assert_eq!(listed_sorted, hosting, "{status}");

    // Its native coins are the spawner's deposit; a transfer on it commits.
    let to = cluster::recipient(77);
    let password = c.layout.password().to_string_lossy().into_owned();
    let demo_dir = demo.to_string_lossy().into_owned();
    c.cli(
        host,
        &[
            "tx",
            "transfer",
            "--chain",
            &id.0.to_string(),
            "--to",
            &to.to_hex(),
            "--amount",
            "1000",
            "--keys",
            &demo_dir,
            "--password-file",
            &password,
            "--wait",
        ],
    )
    .expect("transfer on the sidechain");
    let got = client
        .account(id, to, banyan_core::ids::AssetId::NATIVE)
        .await
        .expect("account");
    assert_eq!(got.balance, "1000");

    // kill -9 of a member: the other three keep committing; restarted, it catches up.
    let victim = members[1];
    c.kill9(victim);
    let before = side_height(&c, host, id).await.expect("hosted");
    wait_until(
        Duration::from_secs(60),
        "three of four members commit",
        || async { side_height(&c, host, id).await.unwrap_or(0) >= before + 5 },
    )
    .await;
    c.start(victim);
    let ahead = side_height(&c, host, id).await.expect("hosted");
    wait_until(
        Duration::from_secs(90),
        "the restarted member catches up",
        || async { side_height(&c, victim, id).await.unwrap_or(0) >= ahead },
    )
    .await;

    // Rotation: one member of four is replaced each main epoch (five validators, so one
    // sits out); the sidechain takes a new committee at its next epoch. It keeps committing
    // through the change and the newcomer's state equals the others'.
    let ids = |v: banyan_node::api::ValidatorsView| -> std::collections::BTreeSet<String> {
        v.committee.into_iter().map(|m| m.validator_id).collect()
    };
    let first_committee: std::collections::BTreeSet<String> = members
        .iter()
        .map(|&i| c.node_keys(i).1.validator_id.to_hex())
        .collect();
    let started = std::time::Instant::now();
    let (changed_at, new_committee) = 'found: loop {
        // Any node hosting it answers (a member rotated out stops its instance).
        for i in 0..5 {
            if let Ok(v) = c.client(i).validators_on(id).await {
                let epoch = v.epoch;
                let now = ids(v);
                // (An instance just starting may answer before it knows its committee; a
                // change happens only at an epoch boundary.)
                if epoch > 0 && !now.is_empty() && now != first_committee {
                    break 'found (epoch, now);
                }
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(180),
            "the sidechain's committee never changed; log:\n{}",
            c.log_tail(host)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let joined: Vec<usize> = (0..5)
        .filter(|&i| {
            let vid = c.node_keys(i).1.validator_id.to_hex();
            new_committee.contains(&vid) && !first_committee.contains(&vid)
        })
        .collect();
    assert!(!joined.is_empty(), "someone joined at epoch {changed_at}");
    let target = changed_at * SIDE_EPOCH + 10;
    for &i in &joined {
        wait_until(
            Duration::from_secs(120),
            "the newcomer serves past the rotation",
            || async { side_height(&c, i, id).await.unwrap_or(0) >= target },
        )
        .await;
    }
    // At least a quorum of the new committee (three of four) past the hand-over.
    wait_until(
        Duration::from_secs(120),
        "three nodes past the hand-over",
        || async {
            let mut past = 0;
            for i in 0..5 {
                if side_height(&c, i, id).await.unwrap_or(0) >= target {
                    past += 1;
                }
            }
            past >= 3
        },
    )
    .await;
    let mut roots = Vec::new();
    for i in 0..5 {
        if side_height(&c, i, id).await.unwrap_or(0) >= target {
            let b = c.client(i).block_on(id, Some(target)).await.expect("block");
            roots.push((i, b.state_root));
        }
    }
    assert!(roots.len() >= 3, "{roots:?}");
    assert!(
        roots.iter().all(|(_, r)| *r == roots[0].1),
        "state roots differ: {roots:?}"
    );
    let mut best = host;
    let mut best_height = 0;
    for i in 0..5 {
        let h = side_height(&c, i, id).await.unwrap_or(0);
        if h > best_height {
            best = i;
            best_height = h;
        }
    }
    // The longest gap between consecutive block timestamps around the hand-over (a figure
    // for the report, not a pass criterion).
    let boundary = changed_at * SIDE_EPOCH;
    let newcomer = c.client(joined[0]);
    let mut gap = 0;
    let mut last = newcomer
        .block_on(id, Some(boundary - 5))
        .await
        .expect("block")
        .timestamp_ms;
    for h in boundary - 4..=target {
        let t = newcomer
            .block_on(id, Some(h))
            .await
            .expect("block")
            .timestamp_ms;
        gap = gap.max(t - last);
        last = t;
    }
    eprintln!(
        "sidechain {}: committee changed at its epoch {changed_at}, joined {joined:?}; longest \
         block gap around the hand-over {gap} ms",
        id.0
    );

    // Checkpoints: the members take the end of every sidechain epoch (and every 20 blocks
    // between) to the main chain, which verifies each against the committee it assigned and
    // keeps the latest. Past the hand-over, the latest is at or after the end of the epoch
    // before it, and is the sidechain's own block.
    let main = c.client(0);
    let handover_end = changed_at * SIDE_EPOCH;
    let waited = std::time::Instant::now();
    let cp = loop {
        let latest = main.sidechain(id).await.ok().and_then(|v| v.checkpoint);
        if let Some(cp) = latest.clone().filter(|cp| cp.height >= handover_end) {
            break cp;
        }
        assert!(
            waited.elapsed() < Duration::from_secs(60),
            "no checkpoint past height {handover_end} (latest {latest:?}); log:\n{}",
            c.log_tail(best)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let tip = side_height(&c, best, id).await.unwrap_or(0);
    let block = c
        .client(best)
        .block_on(id, Some(cp.height))
        .await
        .expect("checkpointed block");
    assert_eq!(block.id, cp.block_id, "{cp:?}");
    assert_eq!(cp.epoch, (cp.height - 1) / SIDE_EPOCH, "{cp:?}");
    eprintln!(
        "sidechain {}: checkpoint at height {} (epoch {}, committee of main epoch {}) with \
         its tip at {tip}",
        id.0, cp.height, cp.epoch, cp.main_epoch
    );
    let shown = sidechain_cli(&c, None, &["status", &id.0.to_string()]).expect("status");
    assert!(shown.contains("checkpoint:  height "), "{shown}");

    // A forged checkpoint (a certified header changed after signing to claim a height far
    // ahead, which would freeze the main chain's view of the sidechain) is refused when it
    // executes: the sender pays the fee, the checkpoint stays where the honest ones put it.
    let view = c
        .client(best)
        .certified_header_on(id, Some(cp.height))
        .await
        .expect("commit proof");
    let bytes = hex::decode(&view.proof).expect("hex");
    let mut proof: banyan_core::header::CertifiedHeader =
        banyan_core::codec::decode(&bytes, 1 << 20).expect("proof");
    let mut headers = proof.headers.to_vec();
    let forged_height = cp.height + 1_000_000;
    headers[0].height = banyan_core::ids::Height(forged_height);
    proof.headers = banyan_core::codec::BoundedVec::new(headers).expect("headers");
    let (demo_keys, demo_public) = c.demo_keys();
    let nonce = c.account(0, demo_public.account_address).await.nonce;
    let forged = banyan_core::tx::TxBody {
        chain: ChainId::MAIN,
        network: c.network,
        sender: demo_keys.account.public_key(),
        nonce: Nonce(nonce),
        fee: banyan_core::ids::Amount(1),
        kind: banyan_core::tx::TxKind::SubmitCheckpoint {
            chain: id,
            main_epoch: banyan_core::ids::Epoch(cp.main_epoch),
            proof: Box::new(proof),
        },
    }
    .sign(&demo_keys.account);
    let from = main
        .block_on(ChainId::MAIN, None)
        .await
        .expect("tip")
        .height;
    let sent = main.submit_tx(&forged).await.expect("admitted");
    c.wait_nonce(
        0,
        demo_public.account_address,
        nonce + 1,
        Duration::from_secs(30),
    )
    .await;
    let to = main
        .block_on(ChainId::MAIN, None)
        .await
        .expect("tip")
        .height;
    let mut outcome = None;
    for h in from..=to {
        let b = main.block_on(ChainId::MAIN, Some(h)).await.expect("block");
        if let Some(t) = b.txs.into_iter().find(|t| t.id == sent.id) {
            outcome = Some(t);
        }
    }
    let outcome = outcome.expect("the forged checkpoint in a block");
    assert_eq!(outcome.kind, "submit_checkpoint");
    assert!(!outcome.applied, "{outcome:?}");
    let why = outcome.failure.unwrap_or_default();
    assert!(why.contains("CheckpointRejected"), "{why}");
    let after = main
        .sidechain(id)
        .await
        .expect("sidechain")
        .checkpoint
        .expect("checkpoint");
    assert!(
        after.height >= cp.height && after.height < forged_height,
        "{after:?} after {cp:?}"
    );

    // Retired by its spawner: it takes no new transactions, its final checkpoint holds every
    // balance, and once the retirement takes effect (the next main epoch) every instance stops
    // (the data stays) and each balance is settled back to the main chain from the deposit.
    let side_balance =
        |v: banyan_node::api::AccountView| -> u128 { v.balance.parse().expect("decimal balance") };
    let demo_on_side = side_balance(
        c.client(best)
            .account(id, me, banyan_core::ids::AssetId::NATIVE)
            .await
            .expect("demo on the sidechain"),
    );
    assert_eq!(
        demo_on_side,
        2_000_000 - 1_000 - 1,
        "deposit less a transfer and its fee"
    );
    let recipient = cluster::recipient(77);
    // (Read on node 0, the one the command waited on.)
    let before_retire = main.sidechain(id).await.expect("sidechain").main_epoch;
    sidechain_cli(&c, Some(demo.clone()), &["retire", &id.0.to_string()]).expect("retire");
    let retire_committed = std::time::Instant::now();
    let retired = main.sidechain(id).await.expect("sidechain");
    assert_eq!(retired.status, "retired");
    let from = u64::from(retired.retired_from_epoch.expect("retirement epoch"));
    assert!(
        before_retire < from && from <= retired.main_epoch + 1,
        "retired from {from}, asked in main epoch {before_retire}: {retired:?}"
    );
    // A node that has committed the retirement refuses new transactions for it.
    wait_until(Duration::from_secs(30), "the retirement seen", || async {
        c.client(best)
            .sidechain(id)
            .await
            .is_ok_and(|v| v.status == "retired")
    })
    .await;
    let refused = c
        .cli(
            best,
            &[
                "tx",
                "transfer",
                "--chain",
                &id.0.to_string(),
                "--to",
                &recipient.to_hex(),
                "--amount",
                "5",
                "--keys",
                &demo_dir,
                "--password-file",
                &password,
            ],
        )
        .expect_err("a transfer on a retired sidechain");
    // Refused as retired, or, once the retirement has taken effect (main epochs are short
    // here), because no node runs it any more.
    assert!(
        refused.contains("is retired and takes no new transactions")
            || refused.contains(&format!("unknown chain {}", id.0)),
        "{refused}"
    );
    let demo_main_before = side_balance(c.account(0, me).await);
    wait_until(Duration::from_secs(120), "every instance stops", || async {
        let mut any = false;
        for i in 0..5 {
            any |= hosted(&c, i, id).await.is_some();
        }
        !any
    })
    .await;
    eprintln!(
        "sidechain {}: every instance stopped {} ms after the retirement committed",
        id.0,
        retire_committed.elapsed().as_millis()
    );

    // Every balance settles back: the recipient's 1000 and the spawner's remainder; what the
    // sidechain burned in fees (the transfer's 1) stays locked.
    wait_until(Duration::from_secs(60), "every balance settled", || async {
        let got = c.account(0, recipient).await;
        let demo = c.account(0, me).await;
        side_balance(got) == 1_000 && side_balance(demo) == demo_main_before + demo_on_side
    })
    .await;
    let settled = c.client(0).sidechain(id).await.expect("sidechain");
    assert_eq!(settled.locked, "1", "{settled:?}");
    // The node whose store is read below has committed the settlements too.
    wait_until(Duration::from_secs(60), "settled on every node", || async {
        c.client(best)
            .sidechain(id)
            .await
            .is_ok_and(|v| v.locked == "1")
    })
    .await;
    eprintln!(
        "sidechain {}: every balance settled on the main chain {} ms after the retirement \
         committed",
        id.0,
        retire_committed.elapsed().as_millis()
    );

    // The committees recorded by the instances are the ones sortition recomputes, each for
    // the main epoch in progress when the sidechain epoch before it ended.
    let activation = u64::from(retired.activation_epoch);
    for i in 0..5 {
        c.stop(i);
    }
    let store = std::sync::Arc::new(
        banyan_store::Store::open(c.db_path(best), &banyan_store::StoreOptions::default())
            .expect("store"),
    );
    let main = banyan_chain::ChainStore::new(store.clone(), ChainId::MAIN);
    let side = banyan_chain::ChainStore::new(store, id);
    for k in 0..=changed_at {
        let main_epoch = if k == 0 {
            activation
        } else {
            let ending = side
                .block_by_height(banyan_core::ids::Height(k * SIDE_EPOCH))
                .expect("read")
                .expect("the block ending the epoch before");
            main_epoch_at(&main, ending.header.timestamp_ms).max(activation)
        };
        eprintln!("sidechain epoch {k}: committee of main epoch {main_epoch}");
        if k == cp.epoch {
            // The checkpoint named the main epoch whose committee certified that epoch.
            assert_eq!(cp.main_epoch, main_epoch, "{cp:?}");
        }
        let want = recompute(&main, main_epoch);
        let mut want = want
            .iter()
            .find(|(chain, _)| *chain == id)
            .map(|(_, keys)| keys.clone())
            .expect("the sidechain is assigned");
        let mut got = recorded_committee(&side, k);
        got.sort();
        want.sort();
        assert_eq!(
            got, want,
            "committee of sidechain epoch {k} (main epoch {main_epoch})"
        );
    }

    // Supply over both chains: the main chain's native supply is its genesis supply less the
    // fees burned on it, the sidechain's burned fees still locked in its escrow, and nothing
    // else was made or lost across spawn, transfers, checkpoints, retirement and settlement.
    let genesis =
        banyan_mainchain::Genesis::from_file(&c.nodes[best].config.genesis).expect("genesis");
    let genesis_supply = banyan_ledger::native_supply(&genesis.initial_state()).expect("fits");
    let burned = |store: &banyan_chain::ChainStore| -> u128 {
        let tip = store.committed().expect("read").expect("tip").height.0;
        let mut sum = 0u128;
        for h in 1..=tip {
            let block = store
                .block_by_height(banyan_core::ids::Height(h))
                .expect("read")
                .expect("block");
            let receipts = store
                .receipts(banyan_core::ids::Height(h))
                .expect("read")
                .expect("receipts");
            for (tx, r) in block.txs.iter().zip(receipts) {
                let admission = r.failure.as_deref().is_some_and(|f| {
                    ["WrongChain", "BadNonce", "NonceExhausted", "CannotPayFee"]
                        .iter()
                        .any(|a| f.starts_with(a))
                });
                if !admission {
                    sum += tx.body.fee.0;
                }
            }
        }
        sum
    };
    let main_state = main.load_state().expect("main state");
    let supply = banyan_ledger::native_supply(&main_state).expect("fits");
    assert_eq!(
        supply.0,
        genesis_supply.0 - burned(&main),
        "main-chain native supply"
    );
    let escrow = main_state.get(&banyan_core::tx::StateKey::Escrow(
        id,
        banyan_core::ids::AssetId::NATIVE,
    ));
    assert_eq!(
        escrow,
        banyan_core::value::StateValue::Amount(banyan_core::ids::Amount(burned(&side))),
        "the escrow keeps exactly what the sidechain burned"
    );
}
