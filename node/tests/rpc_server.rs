//! The JSON-RPC server over real HTTP on 127.0.0.1, against an in-memory node, and the
//! `/metrics` endpoint.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod promtool;
mod rpc_fake;

use banyan_node::api::{AccountView, BlockView, NodeStatus, ValidatorsView};
use banyan_node::metrics::Metrics;
use banyan_node::rpc::server::{serve_metrics, RpcLimits};
use banyan_node::rpc::*;
use rpc_fake::*;
use serde_json::{json, Value};

fn req(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn error_code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error in {v}"))
}

/// The server still answers a plain request.
async fn still_serving(s: &Server) {
    let v = rpc(s.addr, &req(99, STATUS, json!([]))).await;
    assert_eq!(v["result"]["name"], "fake", "{v}");
}

#[tokio::test]
async fn every_method_answers() {
    let s = start(RpcLimits::default()).await;

    let v = rpc(s.addr, &req(1, STATUS, json!([]))).await;
    assert_eq!(v["id"], 1);
    assert_eq!(v["jsonrpc"], "2.0");
    let status: NodeStatus = serde_json::from_value(v["result"].clone()).unwrap();
    assert_eq!(status, status_view());

    // Named and positional parameters, defaults for the optional ones.
    let addr = "0a".repeat(32);
    let v = rpc(s.addr, &req(2, GET_ACCOUNT, json!({"address": addr}))).await;
    let account: AccountView = serde_json::from_value(v["result"].clone()).unwrap();
    assert_eq!(
        (account.balance.as_str(), account.nonce, account.chain),
        ("1000", 0, 0)
    );
    assert_eq!(account.asset, "00".repeat(32));
    let v = rpc(
        s.addr,
        &req(3, GET_ACCOUNT, json!([addr, 0, "11".repeat(32)])),
    )
    .await;
    assert_eq!(v["result"]["balance"], "0");
    assert_eq!(v["result"]["asset"], "11".repeat(32));

    let v = rpc(s.addr, &req(4, GET_BLOCK, json!({}))).await;
    let block: BlockView = serde_json::from_value(v["result"].clone()).unwrap();
    assert_eq!(block, block_view(TIP));
    let v = rpc(s.addr, &req(5, GET_BLOCK, json!([1]))).await;
    assert_eq!(v["result"]["height"], 1);
    let v = rpc(
        s.addr,
        &req(6, GET_BLOCK, json!({"height": null, "chain": 0})),
    )
    .await;
    assert_eq!(v["result"]["height"], TIP);

    let v = rpc(s.addr, &req(7, GET_VALIDATORS, json!({"chain": 0}))).await;
    let set: ValidatorsView = serde_json::from_value(v["result"].clone()).unwrap();
    assert_eq!(set, validators_view());

    let tx = transfer(1, 0, 5);
    let v = rpc(s.addr, &req(8, SUBMIT_TX, json!([encode_tx_hex(&tx)]))).await;
    assert_eq!(v["result"]["id"], tx.id().to_hex());
    assert_eq!(s.node.accepted.lock().unwrap().as_slice(), &[tx]);

    // One good, one with a stale nonce: per-transaction results.
    let good = transfer(2, 0, 5);
    let stale = transfer(1, 0, 6);
    let hexes = vec![encode_tx_hex(&good), encode_tx_hex(&stale)];
    let v = rpc(s.addr, &req(9, SUBMIT_TXS, json!({ "txs": hexes }))).await;
    let results = v["result"].as_array().unwrap();
    assert_eq!(results.len(), 2);
    assert_eq!(results[0]["id"], good.id().to_hex());
    assert_eq!(results[1]["error"]["code"], REJECTED);
    assert_eq!(
        results[1]["error"]["message"],
        "transaction rejected: stale nonce 0, expected 1"
    );

    // GET /health.
    assert_eq!(
        http(s.addr, "GET", "/health", "").await,
        (200, "ok".to_string())
    );
    s.shutdown().await;
}

#[tokio::test]
async fn protocol_errors() {
    let s = start(RpcLimits::default()).await;

    let v = rpc(s.addr, "{\"jsonrpc\": \"2.0\", \"method\": ").await;
    assert_eq!(error_code(&v), PARSE_ERROR);
    assert_eq!(v["id"], Value::Null);
    still_serving(&s).await;

    for bad in [
        json!(1),
        json!({"jsonrpc": "1.0", "id": 1, "method": STATUS}),
        json!({"jsonrpc": "2.0", "id": 1, "method": 5}),
        json!({"jsonrpc": "2.0", "id": 1, "method": STATUS, "params": "x"}),
        json!({"jsonrpc": "2.0", "id": [1], "method": STATUS}),
        json!([]),
    ] {
        let v = rpc(s.addr, &bad.to_string()).await;
        assert_eq!(error_code(&v), INVALID_REQUEST, "{bad} -> {v}");
    }
    // The id is echoed when it could be read.
    let v = rpc(
        s.addr,
        &json!({"jsonrpc": "1.0", "id": "a", "method": STATUS}).to_string(),
    )
    .await;
    assert_eq!(v["id"], "a");
    still_serving(&s).await;

    let v = rpc(s.addr, &req(3, "banyan_nope", json!([]))).await;
    assert_eq!(error_code(&v), METHOD_NOT_FOUND);
    assert_eq!(v["id"], 3);
    still_serving(&s).await;

    for (method, params) in [
        (GET_ACCOUNT, json!({})),
        (GET_ACCOUNT, json!({"address": "zz"})),
        (
            GET_ACCOUNT,
            json!({"address": "0a".repeat(32), "colour": "red"}),
        ),
        (
            GET_ACCOUNT,
            json!({"address": "0a".repeat(32), "chain": -1}),
        ),
        (
            GET_ACCOUNT,
            json!({"address": "0a".repeat(32), "asset": "0a"}),
        ),
        (GET_BLOCK, json!({"height": "tip"})),
        (GET_BLOCK, json!([1, 0, 3])),
        (GET_VALIDATORS, json!({"chain": 1u64 << 33})),
        (STATUS, json!([1])),
        (SUBMIT_TX, json!([])),
        (SUBMIT_TX, json!(["not hex"])),
        (SUBMIT_TXS, json!([["00"]])),
        (SUBMIT_TXS, json!(["0a0b"])),
    ] {
        let v = rpc(s.addr, &req(4, method, params.clone())).await;
        assert_eq!(error_code(&v), INVALID_PARAMS, "{method} {params} -> {v}");
    }
    // An undecodable transaction is named by its index.
    let good = encode_tx_hex(&transfer(1, 0, 1));
    let v = rpc(s.addr, &req(5, SUBMIT_TXS, json!([[good, "deadbeef"]]))).await;
    assert_eq!(error_code(&v), INVALID_PARAMS);
    let message = v["error"]["message"].as_str().unwrap();
    assert!(message.contains("transaction 1"), "{message}");
    // Nothing was submitted by the failed call.
    assert!(s.node.accepted.lock().unwrap().is_empty());
    still_serving(&s).await;

    // Wrong verbs and paths.
    assert_eq!(http(s.addr, "GET", "/", "").await.0, 405);
    assert_eq!(http(s.addr, "PUT", "/", "{}").await.0, 405);
    assert_eq!(http(s.addr, "POST", "/health", "").await.0, 405);
    assert_eq!(http(s.addr, "GET", "/nowhere", "").await.0, 404);
    still_serving(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn api_errors_map_to_codes() {
    let s = start(RpcLimits::default()).await;
    let cases = [
        (
            GET_BLOCK,
            json!({"height": 50}),
            NOT_FOUND,
            "not found: no block at height 50",
        ),
        (
            GET_BLOCK,
            json!({"chain": 3}),
            UNKNOWN_CHAIN,
            "unknown chain 3: this node does not run it (`banyan status` lists the chains it runs)",
        ),
        (
            START_TEST_CHAIN,
            json!({"chain": 2}),
            FORBIDDEN,
            "forbidden: admin methods are off",
        ),
        (
            STOP_CHAIN,
            json!({}),
            INVALID_PARAMS,
            "invalid params: `chain` is required: the id of the chain to act on",
        ),
        (
            GET_VALIDATORS,
            json!([OFFLINE_CHAIN]),
            UNAVAILABLE,
            "unavailable: storage is offline",
        ),
        (
            GET_ACCOUNT,
            json!([RESERVED.to_hex()]),
            INVALID_PARAMS,
            "invalid params: the reserved address has no account",
        ),
    ];
    for (method, params, code, message) in cases {
        let v = rpc(s.addr, &req(1, method, params)).await;
        assert_eq!(
            v["error"],
            json!({"code": code, "message": message}),
            "{method}"
        );
        still_serving(&s).await;
    }
    let tx = transfer(1, 3, 1);
    let v = rpc(s.addr, &req(2, SUBMIT_TX, json!([encode_tx_hex(&tx)]))).await;
    assert_eq!(error_code(&v), REJECTED);
    s.shutdown().await;
}

#[tokio::test]
async fn batches_and_notifications() {
    let s = start(RpcLimits {
        max_batch: 4,
        ..RpcLimits::default()
    })
    .await;
    let batch = json!([
        {"jsonrpc": "2.0", "id": 1, "method": STATUS},
        {"jsonrpc": "2.0", "id": 2, "method": "banyan_nope"},
        {"jsonrpc": "2.0", "method": STATUS},
        7,
    ]);
    let v = rpc(s.addr, &batch.to_string()).await;
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 3, "the notification gets no response: {v}");
    assert_eq!(items[0]["result"]["name"], "fake");
    assert_eq!(items[0]["id"], 1);
    assert_eq!(error_code(&items[1]), METHOD_NOT_FOUND);
    assert_eq!(items[1]["id"], 2);
    assert_eq!(error_code(&items[2]), INVALID_REQUEST);
    assert_eq!(items[2]["id"], Value::Null);

    // A notification alone, or a batch of them: no body.
    let one = json!({"jsonrpc": "2.0", "method": STATUS}).to_string();
    assert_eq!(http(s.addr, "POST", "/", &one).await, (204, String::new()));
    let tx = transfer(4, 0, 1);
    let note = json!([{"jsonrpc": "2.0", "method": SUBMIT_TX, "params": [encode_tx_hex(&tx)]}]);
    assert_eq!(http(s.addr, "POST", "/", &note.to_string()).await.0, 204);
    // ...but notifications still run.
    assert_eq!(s.node.accepted.lock().unwrap().as_slice(), &[tx]);

    let too_many = Value::Array(vec![
        json!({"jsonrpc": "2.0", "id": 1, "method": STATUS});
        5
    ]);
    let v = rpc(s.addr, &too_many.to_string()).await;
    assert_eq!(error_code(&v), INVALID_REQUEST);
    still_serving(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn size_limits() {
    let s = start(RpcLimits {
        max_body_bytes: 4096,
        max_batch: 1000,
        max_txs_per_call: 2,
        ..RpcLimits::default()
    })
    .await;
    // Declared too large.
    let big = format!("[{}]", vec!["1"; 2500].join(","));
    let (status, body) = http(s.addr, "POST", "/", &big).await;
    assert_eq!(status, 413);
    let v: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(error_code(&v), INVALID_REQUEST);
    still_serving(&s).await;

    // Chunked, no length declared: cut off while reading.
    let chunk = "a".repeat(3000);
    let chunked = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n\
         {:x}\r\n{chunk}\r\n{:x}\r\n{chunk}\r\n0\r\n\r\n",
        chunk.len(),
        chunk.len()
    );
    assert_eq!(raw(s.addr, chunked.as_bytes()).await.0, 413);
    still_serving(&s).await;

    let hexes: Vec<String> = (0..3).map(|n| encode_tx_hex(&transfer(1, n, 1))).collect();
    let v = rpc(s.addr, &req(1, SUBMIT_TXS, json!([hexes]))).await;
    assert_eq!(error_code(&v), INVALID_PARAMS);
    still_serving(&s).await;
    s.shutdown().await;
}

#[tokio::test]
async fn requests_are_counted() {
    let s = start(RpcLimits::default()).await;
    rpc(s.addr, &req(1, STATUS, json!([]))).await;
    rpc(s.addr, &req(2, GET_BLOCK, json!([77]))).await;
    rpc(s.addr, &req(3, "banyan_nope", json!([]))).await;
    let counter = |method: &str, outcome: &str| {
        s.metrics
            .rpc_requests
            .with_label_values(&[method, outcome])
            .get()
    };
    assert_eq!(counter(STATUS, "ok"), 1);
    assert_eq!(counter(GET_BLOCK, "error"), 1);
    assert_eq!(counter("unknown", "error"), 1);
    assert_eq!(
        s.metrics
            .rpc_latency
            .with_label_values(&[STATUS])
            .get_sample_count(),
        1
    );
    s.shutdown().await;
}

#[tokio::test]
async fn metrics_endpoint() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Metrics::new();
    metrics
        .rpc_requests
        .with_label_values(&[STATUS, "ok"])
        .inc();
    metrics
        .rpc_latency
        .with_label_values(&[STATUS])
        .observe(0.002);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(serve_metrics(listener, metrics, async {
        let _ = stopped.await;
    }));

    let (status, body) = http(addr, "GET", "/metrics", "").await;
    assert_eq!(status, 200);
    assert!(body.lines().any(|l| l == "banyan_up 1"), "{body}");
    assert!(
        body.contains("banyan_rpc_requests_total{method=\"banyan_status\",outcome=\"ok\"} 1"),
        "{body}"
    );
    // Every sample line is `name[{labels}] value`, with a numeric value.
    for line in body
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
    {
        let value = line.rsplit(' ').next().unwrap();
        assert!(value.parse::<f64>().is_ok(), "bad sample line {line:?}");
        assert!(line.starts_with("banyan_"), "unexpected metric {line:?}");
    }
    assert_eq!(http(addr, "GET", "/other", "").await.0, 404);
    assert_eq!(http(addr, "POST", "/metrics", "").await.0, 405);

    promtool::check(&body);

    let _ = stop.send(());
    task.await.unwrap().unwrap();
}
