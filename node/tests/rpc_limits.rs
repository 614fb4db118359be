//! The RPC server's limits against hostile clients, over real HTTP on loopback against the
//! in-memory node: slow bodies, connection and call floods, huge batches and bodies, hostile
//! JSON; the per-client table on its own; the `[rpc]` config section; and the process's peak
//! resident memory while all of it runs. Limits are set small where a test would otherwise
//! wait; no assertion is about speed.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod rpc_fake;

use banyan_node::config::RpcSection;
use banyan_node::rpc::limiter::{ClientKey, ClientLimits, Clients, Refused};
use banyan_node::rpc::server::RpcLimits;
use banyan_node::rpc::*;
use rpc_fake::*;
use serde_json::{json, Value};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn req(id: u64, method: &str, params: Value) -> String {
    json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string()
}

fn error_code(v: &Value) -> i64 {
    v["error"]["code"]
        .as_i64()
        .unwrap_or_else(|| panic!("no error in {v}"))
}

fn json_of(body: &str) -> Value {
    serde_json::from_str(body).unwrap_or_else(|e| panic!("not JSON ({e}): {body:.300}"))
}

/// The server answers a plain request from the loopback address `local`.
async fn serves(local: &str, addr: SocketAddr) {
    let (status, body) = raw_from(
        local,
        addr,
        http_request("POST", "/", &req(99, STATUS, json!([]))).as_bytes(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(json_of(&body)["result"]["name"], "fake", "{body}");
}

/// Longer than any wait here should take: a test that would hang fails instead.
const HUNG: Duration = Duration::from_secs(60);

async fn within<T>(what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(HUNG, f)
        .await
        .unwrap_or_else(|_| panic!("hung: {what}"))
}

fn limited(s: &Server) -> u64 {
    s.metrics
        .rpc_requests
        .with_label_values(&["unknown", "limited"])
        .get()
}

/// Send headers declaring `declared` bytes and an opening `[` on `stream`, then trickle the
/// body a byte every 50 ms, never all of it; return what the server answered.
async fn slow_client(stream: TcpStream, declared: usize) -> (u16, String) {
    let (mut rd, mut wr) = stream.into_split();
    let head = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {declared}\r\n\r\n["
    );
    let writer = tokio::spawn(async move {
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        for _ in 0..declared.saturating_sub(2) {
            tokio::time::sleep(Duration::from_millis(50)).await;
            if wr.write_all(b" ").await.is_err() {
                return;
            }
        }
    });
    let mut buf = Vec::new();
    let _ = within("a slow body was never cut off", rd.read_to_end(&mut buf)).await;
    writer.abort();
    parse_http(&buf)
}

fn assert_cut_off(status: u16, body: &str, timeout_ms: u128) {
    assert_eq!(status, 408, "{body}");
    let v = json_of(body);
    assert_eq!(error_code(&v), BODY_TIMEOUT, "{v}");
    let message = v["error"]["message"].as_str().unwrap();
    assert!(
        message.contains(&format!("within {timeout_ms} ms")),
        "{message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_are_cut_off_and_free_their_slots() {
    // Every connection slot held by a slow client: the next clients wait in the backlog
    // only until the body timeout cuts the slow ones off.
    let s = start(RpcLimits {
        body_read_timeout: Duration::from_millis(300),
        max_connections: 8,
        ..RpcLimits::default()
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..8 {
        let stream = connect_from("127.0.0.1", s.addr).await;
        slow.push(tokio::spawn(slow_client(stream, 1000)));
    }
    let addr = s.addr;
    let normal = tokio::spawn(async move { serves("127.0.0.2", addr).await });
    for h in slow {
        let (status, body) = h.await.unwrap();
        assert_cut_off(status, &body, 300);
    }
    normal.await.unwrap();
    serves("127.0.0.1", s.addr).await;
    assert_eq!(limited(&s), 8);
    s.shutdown().await;

    // With slots to spare, other clients (and the same one) are served while 50 slow
    // bodies trickle in.
    let s = start(RpcLimits {
        body_read_timeout: Duration::from_millis(1500),
        ..RpcLimits::default()
    })
    .await;
    let mut slow = Vec::new();
    for _ in 0..50 {
        let stream = connect_from("127.0.0.1", s.addr).await;
        slow.push(tokio::spawn(slow_client(stream, 1000)));
    }
    serves("127.0.0.2", s.addr).await;
    serves("127.0.0.1", s.addr).await;
    for h in slow {
        let (status, body) = h.await.unwrap();
        assert_cut_off(status, &body, 1500);
    }
    serves("127.0.0.1", s.addr).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connections_beyond_the_per_client_limit_are_refused() {
    let s = start(RpcLimits {
        max_connections_per_client: 4,
        ..RpcLimits::default()
    })
    .await;
    // Four open connections: the client's whole allowance.
    let mut held = Vec::new();
    for _ in 0..4 {
        held.push(connect_from("127.0.0.1", s.addr).await);
    }
    // Ten more at once: each is told why and closed.
    let status_req = http_request("POST", "/", &req(1, STATUS, json!([])));
    let extra: Vec<_> = (0..10)
        .map(|_| {
            let (addr, r) = (s.addr, status_req.clone());
            tokio::spawn(async move { raw_from("127.0.0.1", addr, r.as_bytes()).await })
        })
        .collect();
    for h in extra {
        let (status, body) = h.await.unwrap();
        assert_eq!(status, 429, "{body}");
        let v = json_of(&body);
        assert_eq!(error_code(&v), TOO_MANY_CONNECTIONS, "{v}");
        assert!(
            v["error"]["message"]
                .as_str()
                .unwrap()
                .contains("at most 4 per client"),
            "{v}"
        );
    }
    assert_eq!(limited(&s), 10);
    // Other clients are served meanwhile, and so is the client on the connections it holds.
    serves("127.0.0.2", s.addr).await;
    let (status, body) = exchange(held.pop().unwrap(), status_req.as_bytes()).await;
    assert_eq!((status, json_of(&body)["id"].clone()), (200, json!(1)));
    // Closing its connections gives the client its allowance back (once the server has
    // seen them close).
    drop(held);
    let mut served = false;
    for _ in 0..200 {
        let (status, _) = raw_from("127.0.0.1", s.addr, status_req.as_bytes()).await;
        if status == 200 {
            served = true;
            break;
        }
        assert_eq!(status, 429);
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(served, "the client's connections were never released");
    s.shutdown().await;
}

/// (status code, whole response text) of `request` sent from `local`.
async fn raw_text(local: &str, addr: SocketAddr, request: &str) -> (u16, String) {
    let mut s = connect_from(local, addr).await;
    let _ = s.write_all(request.as_bytes()).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    (
        parse_http(&buf).0,
        String::from_utf8_lossy(&buf).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_beyond_the_rate_are_refused_and_change_nothing() {
    let s = start(RpcLimits {
        rate_per_client_per_s: 1,
        burst_per_client: 10,
        max_batch: 20,
        ..RpcLimits::default()
    })
    .await;
    let batch = |n: usize, first: Value| {
        let mut items = vec![first];
        items.extend((1..n).map(|i| json!({"jsonrpc": "2.0", "id": i, "method": STATUS})));
        Value::Array(items).to_string()
    };
    let status_call = json!({"jsonrpc": "2.0", "id": 0, "method": STATUS});
    // A batch of ten takes the whole burst.
    let v = rpc(s.addr, &batch(10, status_call.clone())).await;
    assert_eq!(v.as_array().unwrap().len(), 10, "{v}");
    // Ten more calls within the next ten seconds cannot pass; one submits a transaction.
    let tx = transfer(1, 0, 5);
    let submit = json!({"jsonrpc": "2.0", "id": 0, "method": SUBMIT_TX,
        "params": [encode_tx_hex(&tx)]});
    let (status, text) = raw_text(
        "127.0.0.1",
        s.addr,
        &http_request("POST", "/", &batch(10, submit)),
    )
    .await;
    assert_eq!(status, 429, "{text}");
    assert!(text.to_lowercase().contains("retry-after: "), "{text}");
    let v = json_of(text.split_once("\r\n\r\n").unwrap().1);
    assert_eq!(error_code(&v), RATE_LIMITED, "{v}");
    assert!(
        v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 1 calls per second"),
        "{v}"
    );
    assert!(s.node.accepted.lock().unwrap().is_empty(), "nothing ran");
    // Another client has its own bucket.
    serves("127.0.0.2", s.addr).await;
    // A batch larger than the burst can never pass: the client is told to split it.
    let (status, body) = raw_from(
        "127.0.0.3",
        s.addr,
        http_request("POST", "/", &batch(11, status_call)).as_bytes(),
    )
    .await;
    assert_eq!(status, 429, "{body}");
    let v = json_of(&body);
    assert_eq!(error_code(&v), RATE_LIMITED);
    assert!(
        v["error"]["message"].as_str().unwrap().contains("split it"),
        "{v}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_huge_batch_stops_at_the_response_cap() {
    // 1000 × banyan_getBlock of blocks of 2000 transactions would be about 500 MB of JSON.
    let node = Arc::new(FakeNode::default());
    node.block_txs.store(2000, Ordering::Relaxed);
    let limits = RpcLimits::default();
    let cap = limits.max_response_bytes;
    let s = start_with(limits, node.clone()).await;
    let batch: Vec<Value> = (0..1000u64)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": GET_BLOCK, "params": [i % 3]}))
        .collect();
    let (status, body) = http(s.addr, "POST", "/", &Value::Array(batch).to_string()).await;
    assert_eq!(status, 200);
    assert!(body.len() <= cap, "{} bytes > cap {cap}", body.len());
    let v = json_of(&body);
    let items = v.as_array().unwrap();
    assert_eq!(items.len(), 1000);
    let cut = items.iter().position(|v| v.get("error").is_some()).unwrap();
    assert!(cut >= 1, "not even one block fit");
    for (i, item) in items.iter().enumerate() {
        assert_eq!(item["id"], i as u64);
        if i < cut {
            assert_eq!(item["result"]["txs"].as_array().unwrap().len(), 2000);
        } else {
            assert_eq!(error_code(item), RESPONSE_TOO_LARGE, "{item}");
            let message = item["error"]["message"].as_str().unwrap();
            assert!(message.contains("split the batch"), "{message}");
        }
    }
    // Only the answers returned and the one that would have crossed the cap were computed.
    assert_eq!(node.block_calls.load(Ordering::Relaxed), cut + 1);
    eprintln!(
        "1000 x getBlock: {cut} answers in {} bytes (cap {cap})",
        body.len()
    );
    drop(body);
    drop(v);
    serves("127.0.0.1", s.addr).await;
    s.shutdown().await;

    // A single answer over the cap; a submission after the cut does not run; a submission
    // that crosses the cap ran, so its answer is returned.
    let node = Arc::new(FakeNode::default());
    node.block_txs.store(2000, Ordering::Relaxed);
    let s = start_with(
        RpcLimits {
            max_response_bytes: 100_000,
            ..RpcLimits::default()
        },
        node.clone(),
    )
    .await;
    let v = rpc(s.addr, &req(1, GET_BLOCK, json!([]))).await;
    assert_eq!(error_code(&v), RESPONSE_TOO_LARGE, "{v}");
    let tx = transfer(1, 0, 5);
    let submit = json!({"jsonrpc": "2.0", "id": 2, "method": SUBMIT_TX,
        "params": [encode_tx_hex(&tx)]});
    let get = json!({"jsonrpc": "2.0", "id": 1, "method": GET_BLOCK});
    let v = rpc(s.addr, &json!([get, submit]).to_string()).await;
    assert_eq!(error_code(&v[0]), RESPONSE_TOO_LARGE);
    assert_eq!(error_code(&v[1]), RESPONSE_TOO_LARGE);
    assert!(s.node.accepted.lock().unwrap().is_empty());
    s.shutdown().await;

    let s = start(RpcLimits {
        max_response_bytes: 50,
        ..RpcLimits::default()
    })
    .await;
    let status_call = json!({"jsonrpc": "2.0", "id": 3, "method": STATUS});
    let v = rpc(s.addr, &json!([submit, status_call]).to_string()).await;
    assert_eq!(v[0]["result"]["id"], tx.id().to_hex(), "{v}");
    assert_eq!(error_code(&v[1]), RESPONSE_TOO_LARGE);
    assert_eq!(s.node.accepted.lock().unwrap().len(), 1);
    s.shutdown().await;
}

/// Send `head`, then up to `total` body bytes (chunked-encoded if `chunked`) while reading
/// the answer; return it and how many body bytes were written before the server answered
/// and closed.
async fn stream_body(
    addr: SocketAddr,
    head: String,
    total: usize,
    chunked: bool,
) -> (u16, String, usize) {
    let (mut rd, mut wr) = TcpStream::connect(addr).await.unwrap().into_split();
    let written = Arc::new(AtomicUsize::new(0));
    let counter = written.clone();
    let writer = tokio::spawn(async move {
        let chunk = vec![b' '; 64 << 10];
        if wr.write_all(head.as_bytes()).await.is_err() {
            return;
        }
        while counter.load(Ordering::Relaxed) < total {
            let n = chunk.len().min(total - counter.load(Ordering::Relaxed));
            let sent = if chunked {
                let mut framed = format!("{n:x}\r\n").into_bytes();
                framed.extend_from_slice(&chunk[..n]);
                framed.extend_from_slice(b"\r\n");
                wr.write_all(&framed).await
            } else {
                wr.write_all(&chunk[..n]).await
            };
            if sent.is_err() {
                return;
            }
            counter.fetch_add(n, Ordering::Relaxed);
        }
        if chunked {
            let _ = wr.write_all(b"0\r\n\r\n").await;
        }
    });
    let mut buf = Vec::new();
    let _ = rd.read_to_end(&mut buf).await;
    let sent = written.load(Ordering::Relaxed);
    writer.abort();
    let (status, body) = parse_http(&buf);
    (status, body, sent)
}

const FIFTY_MB: usize = 50_000_000;

async fn fifty_megabytes(addr: SocketAddr) {
    let declared = format!(
        "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
         Content-Length: {FIFTY_MB}\r\n\r\n"
    );
    let chunked = "POST / HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n\
                   Transfer-Encoding: chunked\r\n\r\n"
        .to_string();
    for (head, is_chunked) in [(declared, false), (chunked, true)] {
        let (status, body, sent) = stream_body(addr, head, FIFTY_MB, is_chunked).await;
        assert_eq!(status, 413, "{body}");
        assert_eq!(error_code(&json_of(&body)), INVALID_REQUEST);
        assert!(
            sent < FIFTY_MB,
            "the whole body was sent before the answer (chunked: {is_chunked})"
        );
        eprintln!("50 MB body (chunked: {is_chunked}): 413 after {sent} bytes sent");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn huge_bodies_are_refused_without_being_buffered() {
    let s = start(RpcLimits::default()).await;
    fifty_megabytes(s.addr).await;
    serves("127.0.0.1", s.addr).await;
    s.shutdown().await;

    // Bodies being received share one buffer: a body that would overflow it waits for
    // nothing, it is refused.
    let s = start(RpcLimits {
        max_buffered_body_bytes: 64 << 10,
        ..RpcLimits::default()
    })
    .await;
    let big = format!("[{}]", vec!["1"; 100_000].join(","));
    let (status, body) = http(s.addr, "POST", "/", &big).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(error_code(&json_of(&body)), BUSY);
    // The buffer was given back.
    serves("127.0.0.1", s.addr).await;
    serves("127.0.0.1", s.addr).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_json_gets_clear_errors() {
    let s = start(RpcLimits::default()).await;
    // Deep nesting: serde_json's depth limit, a parse error, no stack overflow.
    for deep in [
        "[".repeat(100_000),
        "{\"a\":".repeat(100_000),
        format!("{}{}", "[".repeat(100_000), "]".repeat(100_000)),
    ] {
        let v = rpc(s.addr, &deep).await;
        assert_eq!(error_code(&v), PARSE_ERROR, "{v}");
        assert!(v["error"]["message"]
            .as_str()
            .unwrap()
            .contains("recursion limit"));
    }
    // A flat body of a million values: refused before it becomes a million `Value`s.
    let wide = format!("[{}]", vec!["0"; 1_000_000].join(","));
    let (status, body) = http(s.addr, "POST", "/", &wide).await;
    assert_eq!(status, 413, "{body}");
    let v = json_of(&body);
    assert_eq!(error_code(&v), INVALID_REQUEST);
    assert!(v["error"]["message"]
        .as_str()
        .unwrap()
        .contains("JSON values"));
    serves("127.0.0.1", s.addr).await;

    let huge_digits = "9".repeat(1 << 20);
    let cases: Vec<(&str, String, i64)> = vec![
        // Heights out of range.
        (GET_BLOCK, format!("[{}]", u64::MAX), NOT_FOUND),
        (GET_BLOCK, "[-1]".into(), INVALID_PARAMS),
        (GET_BLOCK, "[18446744073709551616]".into(), INVALID_PARAMS),
        (GET_BLOCK, "[1.5]".into(), INVALID_PARAMS),
        (GET_BLOCK, format!("[\"{huge_digits}\"]"), INVALID_PARAMS),
        (GET_BLOCK, format!("[{huge_digits}]"), PARSE_ERROR),
        (GET_BLOCK, "[1e400]".into(), PARSE_ERROR),
        // Wrong types.
        (GET_BLOCK, "{\"height\": [1]}".into(), INVALID_PARAMS),
        (GET_BLOCK, "{\"height\": {}}".into(), INVALID_PARAMS),
        (GET_BLOCK, "{\"chain\": \"0\"}".into(), INVALID_PARAMS),
        (GET_BLOCK, "{\"chain\": true}".into(), INVALID_PARAMS),
        (GET_ACCOUNT, "[12]".into(), INVALID_PARAMS),
        (
            GET_ACCOUNT,
            format!("[\"{}\"]", "a".repeat(1 << 20)),
            INVALID_PARAMS,
        ),
        (GET_ACCOUNT, "[null]".into(), INVALID_PARAMS),
        (GET_VALIDATORS, "[-5]".into(), INVALID_PARAMS),
        (SUBMIT_TX, "[[\"00\"]]".into(), INVALID_PARAMS),
        (
            SUBMIT_TX,
            format!("[\"{}\"]", "0".repeat(1 << 20)),
            INVALID_PARAMS,
        ),
        (SUBMIT_TXS, "[{\"tx\": 1}]".into(), INVALID_PARAMS),
        (SUBMIT_TXS, "[[1, 2, 3]]".into(), INVALID_PARAMS),
        (&huge_digits, "[]".into(), METHOD_NOT_FOUND),
    ];
    for (method, params, code) in cases {
        let body =
            format!("{{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"{method}\",\"params\":{params}}}");
        let v = rpc(s.addr, &body).await;
        assert_eq!(
            error_code(&v),
            code,
            "{:.80} {params:.80} -> {v:.300}",
            method
        );
        let message = v["error"]["message"].as_str().unwrap();
        assert!(message.len() < 1000, "an echoed input: {message:.300}");
    }
    assert!(s.node.accepted.lock().unwrap().is_empty());
    serves("127.0.0.1", s.addr).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_run_on_a_bounded_blocking_pool() {
    // Every read blocks its thread until released. Were reads run on the async workers, the
    // two of them would be stuck and `/health` would never answer.
    let node = Arc::new(FakeNode::default());
    *node.hold_reads.lock().unwrap() = true;
    let s = start_with(
        RpcLimits {
            max_blocking_jobs: 3,
            ..RpcLimits::default()
        },
        node.clone(),
    )
    .await;
    let reads: Vec<_> = (0..12)
        .map(|i| {
            let addr = s.addr;
            tokio::spawn(async move { rpc(addr, &req(i, GET_BLOCK, json!([1]))).await })
        })
        .collect();
    while node.reads_in_flight.load(Ordering::SeqCst) < 3 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    for _ in 0..5 {
        assert_eq!(
            within(
                "/health while reads block",
                http(s.addr, "GET", "/health", "")
            )
            .await,
            (200, "ok".to_string())
        );
    }
    node.release_reads();
    for r in reads {
        assert_eq!(r.await.unwrap()["result"]["height"], 1);
    }
    assert_eq!(node.max_reads_in_flight.load(Ordering::SeqCst), 3);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_retries_calls_refused_for_a_limit() {
    let s = start(RpcLimits {
        rate_per_client_per_s: 2,
        burst_per_client: 1,
        max_batch: 1,
        ..RpcLimits::default()
    })
    .await;
    let client = banyan_node::rpc::client::RpcClient::new(&s.url()).unwrap();
    // Each call after the first finds the bucket empty, waits and gets through.
    for _ in 0..3 {
        assert_eq!(client.status().await.unwrap().name, "fake");
    }
    assert!(limited(&s) >= 1, "no call was refused");
    s.shutdown().await;
}

#[test]
fn the_client_table_counts_limits_and_stays_bounded() {
    let limits = ClientLimits {
        max_connections_per_client: 2,
        rate_per_s: 10.0,
        burst: 20.0,
        max_clients: 2,
    };
    let clients = Arc::new(Clients::new(limits));
    let t0 = Instant::now();
    let a = ClientKey::of("10.0.0.1".parse().unwrap());
    let b = ClientKey::of("10.0.0.2".parse().unwrap());
    let c = ClientKey::of("10.0.0.3".parse().unwrap());

    // Connections: two per client; a closed one is given back.
    let a1 = clients.connect(a, t0).unwrap();
    let a2 = clients.connect(a, t0).unwrap();
    assert_eq!(
        clients.connect(a, t0).unwrap_err(),
        Refused::TooManyConnections
    );
    drop(a1);
    let _a3 = clients.connect(a, t0).unwrap();

    // Tokens: a full burst, then the rate.
    clients.take(a, 20, t0).unwrap();
    match clients.take(a, 5, t0) {
        Err(Refused::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_millis(500))
        }
        other => panic!("{other:?}"),
    }
    clients.take(a, 5, t0 + Duration::from_millis(500)).unwrap();
    assert_eq!(clients.take(a, 21, t0).unwrap_err(), Refused::OverBurst);
    // The bucket never holds more than the burst.
    let later = t0 + Duration::from_secs(3600);
    clients.take(a, 20, later).unwrap();
    assert!(clients.take(a, 1, later).is_err());

    // The table holds two clients. B is idle with a full bucket: C replaces it.
    clients.take(b, 1, later).unwrap();
    let refill = later + Duration::from_secs(1);
    let c1 = clients.connect(c, refill).unwrap();
    assert_eq!(clients.len(), 2);
    // Both entries now hold connections: a fourth client finds no room.
    let d = ClientKey::of("10.0.0.4".parse().unwrap());
    assert_eq!(
        clients.connect(d, refill).unwrap_err(),
        Refused::TooManyClients
    );
    // Once C's connection closes, the idle entry with the fullest bucket makes room.
    drop(c1);
    clients.take(c, 3, refill).unwrap();
    let _d1 = clients.connect(d, refill).unwrap();
    assert_eq!(clients.len(), 2);
    drop(a2);

    // IPv6 clients are /64 prefixes; IPv4-mapped addresses are their IPv4 address.
    let v6 = |s: &str| ClientKey::of(s.parse::<IpAddr>().unwrap());
    assert_eq!(v6("2001:db8:1:2::1"), v6("2001:db8:1:2:ffff::9"));
    assert_ne!(v6("2001:db8:1:2::1"), v6("2001:db8:1:3::1"));
    assert_eq!(v6("::ffff:10.0.0.1"), a);
    assert_eq!(v6("2001:db8:1:2::1").to_string(), "2001:db8:1:2::/64");
}

#[test]
fn the_rpc_config_section_maps_to_the_limits() {
    assert_eq!(
        RpcSection::default().limits().unwrap(),
        RpcLimits::default()
    );
    let section: RpcSection =
        toml::from_str("body_read_timeout_ms = 2500\nrate_per_client_per_s = 50\n").unwrap();
    let limits = section.limits().unwrap();
    assert_eq!(limits.body_read_timeout, Duration::from_millis(2500));
    assert_eq!(limits.rate_per_client_per_s, 50);
    assert_eq!(limits.max_batch, RpcLimits::default().max_batch);
    for bad in [
        "max_blocking_jobs = 0",
        "body_read_timeout_ms = 0",
        "burst_per_client = 10",
        "max_clients = 10",
        "max_buffered_body_bytes = 1000",
    ] {
        let section: RpcSection = toml::from_str(bad).unwrap();
        let e = section.limits().unwrap_err().to_string();
        assert!(e.starts_with("[rpc] "), "{bad}: {e}");
    }
    assert!(toml::from_str::<RpcSection>("max_bodybytes = 1").is_err());
}

/// Peak resident memory of this process (`VmHWM`), KiB.
fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn resident_memory_stays_bounded_under_abuse() {
    let node = Arc::new(FakeNode::default());
    node.block_txs.store(2000, Ordering::Relaxed);
    let s = start_with(
        RpcLimits {
            body_read_timeout: Duration::from_millis(500),
            ..RpcLimits::default()
        },
        node,
    )
    .await;
    serves("127.0.0.1", s.addr).await;
    let before = peak_rss_kib();
    let addr = s.addr;
    let mut tasks = tokio::task::JoinSet::new();
    // 100 slow bodies from each of three clients.
    for local in ["127.0.0.1", "127.0.0.2", "127.0.0.3"] {
        for _ in 0..100 {
            let stream = connect_from(local, addr).await;
            tasks.spawn(async move {
                let (status, body) = slow_client(stream, 8 << 20).await;
                assert!(status == 408 || status == 429, "{status} {body}");
            });
        }
    }
    // 400 connections at once from one client (beyond the refusal slots, a refused
    // connection is closed unanswered).
    for _ in 0..400 {
        tasks.spawn(async move {
            let mut s = connect_from("127.0.0.4", addr).await;
            let request = http_request("POST", "/", &req(1, STATUS, json!([])));
            let _ = s.write_all(request.as_bytes()).await;
            let mut buf = Vec::new();
            let _ = s.read_to_end(&mut buf).await;
            if !buf.is_empty() {
                let status = parse_http(&buf).0;
                assert!(status == 200 || status == 429, "{status}");
            }
        });
    }
    // Four 1000 × getBlock batches at once, from four clients; the answers are counted, not
    // kept, so that the peak is the server's.
    let batch: Vec<Value> = (0..1000u64)
        .map(|i| json!({"jsonrpc": "2.0", "id": i, "method": GET_BLOCK, "params": [i % 3]}))
        .collect();
    let batch = Arc::new(http_request("POST", "/", &Value::Array(batch).to_string()));
    for local in ["127.0.0.5", "127.0.0.6", "127.0.0.7", "127.0.0.8"] {
        let batch = batch.clone();
        tasks.spawn(async move {
            let mut s = connect_from(local, addr).await;
            s.write_all(batch.as_bytes()).await.unwrap();
            let mut head = Vec::new();
            let mut total = 0usize;
            let mut chunk = vec![0u8; 64 << 10];
            loop {
                let n = s.read(&mut chunk).await.unwrap();
                if n == 0 {
                    break;
                }
                if head.len() < 12 {
                    head.extend_from_slice(&chunk[..n.min(12)]);
                }
                total += n;
            }
            assert!(head.starts_with(b"HTTP/1.1 200"));
            // Headers included.
            assert!(total <= RpcLimits::default().max_response_bytes + 1024);
        });
    }
    // 50 MB bodies, declared and chunked, twice; deep and wide JSON.
    for _ in 0..2 {
        tasks.spawn(fifty_megabytes(addr));
    }
    tasks.spawn(async move {
        let v = rpc(addr, &"[".repeat(100_000)).await;
        assert_eq!(error_code(&v), PARSE_ERROR);
        let wide = format!("[{}]", vec!["0"; 1_000_000].join(","));
        assert_eq!(http(addr, "POST", "/", &wide).await.0, 413);
    });
    while let Some(r) = tasks.join_next().await {
        r.unwrap();
    }
    serves("127.0.0.1", s.addr).await;
    let after = peak_rss_kib();
    eprintln!(
        "peak RSS (VmHWM) of the test process: {} MiB before, {} MiB after the abuse",
        before / 1024,
        after / 1024
    );
    assert!(
        after < 2 << 20,
        "peak RSS {} MiB: memory is not bounded",
        after / 1024
    );
    s.shutdown().await;
}
