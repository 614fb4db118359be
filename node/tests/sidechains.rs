//! Sidechains through the command line of real `banyan` processes: spawn with bad parameters
//! and too small a deposit (clear errors, nothing locked), spawn (the id printed is the one
//! the main chain records, the deposit is locked), list, retire by another account (refused)
//! and by the spawner (the deposit comes back).

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
    // The spawner retires it and gets the deposit back.
    sidechain_cli(&c, Some(demo), &["retire", &id.0.to_string()]).expect("retire");
    assert_eq!(balance(c.account(0, me).await), after_small - 2);
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
