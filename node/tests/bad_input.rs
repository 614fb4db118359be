//! Bad input over JSON-RPC and QUIC gets a clear error (or is dropped), the node keeps
//! running, and the state does not change.

mod cluster;

use banyan_core::ids::{Amount, ChainId, Nonce};
use banyan_core::tx::TxBody;
use banyan_net::{Class, NetConfig, Network, PeerConfig};
use cluster::{recipient, transfer, Cluster};
use std::time::Duration;

const START: Duration = Duration::from_secs(90);
const COMMIT: Duration = Duration::from_secs(120);

async fn post(addr: std::net::SocketAddr, body: &str) -> serde_json::Value {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let req = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(req.as_bytes()).await.expect("write");
    let mut buf = Vec::new();
    s.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).to_string();
    let body = text.split_once("\r\n\r\n").map(|x| x.1).unwrap_or("");
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

fn error_of(v: &serde_json::Value) -> (i64, String) {
    let e = &v["error"];
    (
        e["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("no error in {v}")),
        e["message"].as_str().unwrap_or("").to_lowercase(),
    )
}

fn submit_body(tx: &banyan_core::tx::SignedTx) -> String {
    let hex = hex::encode(banyan_core::codec::encode(tx));
    format!(r#"{{"jsonrpc":"2.0","id":1,"method":"banyan_submitTx","params":["{hex}"]}}"#)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_rpc_and_quic_input_is_refused_and_changes_nothing() {
    // Node 4 is a configured peer with no stake: the test speaks QUIC with its identity.
    let _serial = cluster::SERIAL.lock().await;
    let mut c = Cluster::create(4, 1, 1_000);
    c.start_all(4);
    for i in 0..4 {
        c.wait_height(i, 1, START).await;
    }
    let rpc = c.nodes[0].config.rpc_listen;
    let (demo, public) = c.demo_keys();
    let demo_addr = public.account_address;
    let start = c.account(0, demo_addr).await;

    // Malformed JSON.
    let (code, _) = error_of(&post(rpc, "{\"jsonrpc\":\"2.0\",").await);
    assert_eq!(code, -32700);
    // Not a transaction.
    let (code, msg) = error_of(
        &post(
            rpc,
            r#"{"jsonrpc":"2.0","id":1,"method":"banyan_submitTx","params":["zz"]}"#,
        )
        .await,
    );
    assert_eq!(code, -32602, "{msg}");
    // Bad signature.
    let mut bad = transfer(c.network, &demo, start.nonce, recipient(1), 10);
    let mut sig = bad.signature.to_bytes();
    sig[5] ^= 1;
    bad.signature = banyan_core::keys::AccountSignature::from_bytes(&sig);
    let (_, msg) = error_of(&post(rpc, &submit_body(&bad)).await);
    assert!(msg.contains("signature"), "{msg}");
    // Wrong chain id.
    let wrong_chain = TxBody::native_transfer(
        ChainId(7),
        c.network,
        demo.account.public_key(),
        Nonce(start.nonce),
        Amount(1),
        recipient(2),
        Amount(10),
    )
    .sign(&demo.account);
    let (_, msg) = error_of(&post(rpc, &submit_body(&wrong_chain)).await);
    assert!(msg.contains("chain"), "{msg}");
    // Signed for another network (another genesis, same chain id): refused, so transactions
    // never replay across networks.
    let other_network = banyan_core::hash::Digest([7u8; 32]);
    let wrong_network = TxBody::native_transfer(
        ChainId::MAIN,
        other_network,
        demo.account.public_key(),
        Nonce(start.nonce),
        Amount(1),
        recipient(2),
        Amount(10),
    )
    .sign(&demo.account);
    let (_, msg) = error_of(&post(rpc, &submit_body(&wrong_network)).await);
    assert!(
        msg.contains("network") && msg.contains(&c.network.to_hex()),
        "{msg}"
    );
    // The network id is what `banyan_status` reports.
    let status = c.status(0).await.expect("status");
    assert_eq!(status.network, c.network.to_hex());
    // A good transfer commits; replaying it afterwards is refused.
    let good = transfer(c.network, &demo, start.nonce, recipient(3), 10);
    let ok = post(rpc, &submit_body(&good)).await;
    assert!(ok["result"]["id"].is_string(), "{ok}");
    c.wait_nonce(0, demo_addr, start.nonce + 1, COMMIT).await;
    let (_, msg) = error_of(&post(rpc, &submit_body(&good)).await);
    assert!(msg.contains("nonce"), "{msg}");

    // An unauthenticated QUIC peer: a key nobody configured.
    let mut seed = [0u8; 32];
    seed[0] = 42;
    let intruder_cfg = NetConfig::new(
        "127.0.0.1:0".parse().expect("addr"),
        seed,
        vec![PeerConfig {
            key: c.node_keys(0).1.network_pubkey.as_bytes().to_owned(),
            addr: c.nodes[0].config.p2p_listen,
        }],
    );
    let (intruder, _rx) = Network::start(intruder_cfg).await.expect("intruder net");
    let node0 = c.node_keys(0).1.network_pubkey.as_bytes().to_owned();
    let _ = intruder.try_send(&node0, Class::Consensus, vec![0u8; 64].into());
    // A configured peer sending an oversized frame, then garbage.
    let (standby, _) = c.node_keys(4);
    let mut cfg = NetConfig::new(
        c.nodes[4].config.p2p_listen,
        standby.network.to_bytes(),
        vec![PeerConfig {
            key: node0,
            addr: c.nodes[0].config.p2p_listen,
        }],
    );
    cfg.max_frame_bytes = 64 << 20;
    let (peer, _rx) = Network::start(cfg).await.expect("peer net");
    let _ = peer.try_send(&node0, Class::Sync, vec![7u8; 20 << 20].into());
    for garbage in [
        vec![],
        vec![1, 2, 3],
        vec![0, 0, 0, 0, 0, 0xff],
        vec![9, 0, 0, 0, 0, 1],
    ] {
        let _ = peer.try_send(&node0, Class::Consensus, garbage.into());
    }
    let _ = peer.try_send(
        &node0,
        Class::Mempool,
        vec![0, 0, 0, 0, 1, 0xff, 0xff].into(),
    );
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert!(
        intruder.connected().is_empty(),
        "the intruder got a connection"
    );

    // Node 0 still runs and agrees with the others; only the good transfer changed state.
    let h = c.height(0).await.expect("node 0 still answers");
    c.wait_height(0, h + 3, COMMIT).await;
    c.wait_height(1, h + 3, COMMIT).await;
    let b0 = c.block(0, h + 3).await;
    let b1 = c.block(1, h + 3).await;
    assert_eq!(b0.state_root, b1.state_root);
    let end = c.account(0, demo_addr).await;
    let spent = start.balance.parse::<u128>().expect("decimal")
        - end.balance.parse::<u128>().expect("decimal");
    assert_eq!(spent, 11, "only the good transfer (10 + fee 1) moved funds");
    assert_eq!(end.nonce, start.nonce + 1);
    assert_eq!(c.account(0, recipient(1)).await.balance, "0");
    assert_eq!(c.account(0, recipient(2)).await.balance, "0");
    intruder.shutdown().await;
    peer.shutdown().await;
    for i in 0..4 {
        c.stop(i);
    }
}
