//! An in-memory `NodeApi` and a server harness shared by the RPC tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use banyan_core::ids::{Address, Amount, AssetId, ChainId, Nonce};
use banyan_core::keys::AccountSecretKey;
use banyan_core::tx::{SignedTx, TxBody};
use banyan_node::api::*;
use banyan_node::metrics::Metrics;
use banyan_node::rpc::server::{serve, RpcLimits};
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use tokio::sync::oneshot;

/// The address the fake refuses with `InvalidParams`.
pub const RESERVED: Address = Address([0xff; 32]);
/// The chain whose validators are `Unavailable`.
pub const OFFLINE_CHAIN: u32 = 9;
/// Latest height of the fake chain.
pub const TIP: u64 = 2;

#[derive(Default)]
pub struct FakeNode {
    pub nonces: Mutex<HashMap<Address, u64>>,
    pub accepted: Mutex<Vec<SignedTx>>,
    /// When non-zero, every block has this many transactions (see [`big_block_view`]).
    pub block_txs: AtomicUsize,
    /// Calls of `block` so far.
    pub block_calls: AtomicUsize,
    /// While true, `block` waits (for `reads_released`) before answering.
    pub hold_reads: Mutex<bool>,
    /// Notified when `hold_reads` turns false.
    pub reads_released: Condvar,
    /// `block` calls running now, and the most seen at once.
    pub reads_in_flight: AtomicUsize,
    pub max_reads_in_flight: AtomicUsize,
}

impl FakeNode {
    /// Let every held `block` call answer.
    pub fn release_reads(&self) {
        *self.hold_reads.lock().unwrap() = false;
        self.reads_released.notify_all();
    }
}

pub fn block_view(height: u64) -> BlockView {
    BlockView {
        chain: 0,
        height,
        id: format!("{height:064x}"),
        parent: format!("{:064x}", height.saturating_sub(1)),
        epoch: 0,
        round: height + 10,
        state_root: "aa".repeat(32),
        tx_root: "bb".repeat(32),
        proposer: "cc".repeat(32),
        timestamp_ms: 1_700_000_000_000 + height,
        txs: vec![TxView {
            id: "dd".repeat(32),
            sender: "ee".repeat(32),
            nonce: height,
            fee: "1".into(),
            kind: "transfer".into(),
            applied: height.is_multiple_of(2),
            failure: (!height.is_multiple_of(2)).then(|| "insufficient balance".into()),
        }],
    }
}

/// `block_view(height)` with `txs` transactions (about 250 bytes of JSON each).
pub fn big_block_view(height: u64, txs: usize) -> BlockView {
    let mut b = block_view(height);
    let tx = b.txs[0].clone();
    b.txs = (0..txs as u64)
        .map(|i| TxView {
            id: format!("{i:064x}"),
            nonce: i,
            ..tx.clone()
        })
        .collect();
    b
}

pub fn status_view() -> NodeStatus {
    NodeStatus {
        version: "0.1.0".into(),
        name: "fake".into(),
        validator_id: "01".repeat(32),
        network: "00".repeat(32),
        peers_connected: 3,
        peers_configured: 4,
        chains: vec![ChainStatus {
            chain: 0,
            height: TIP,
            block_id: format!("{TIP:064x}"),
            state_root: "aa".repeat(32),
            epoch: 0,
            round: 12,
            committee_index: Some(1),
            committee_size: 4,
            mempool_txs: 5,
        }],
    }
}

pub fn validators_view() -> ValidatorsView {
    let v = ValidatorView {
        address: "12".repeat(32),
        validator_id: "34".repeat(32),
        bls_key: "56".repeat(48),
        stake: "1000000".into(),
        committee_index: Some(0),
    };
    ValidatorsView {
        chain: 0,
        epoch: 3,
        committee: vec![v.clone()],
        registry: vec![v],
    }
}

impl NodeApi for FakeNode {
    fn sidechains(&self) -> Result<SidechainsView, ApiError> {
        Ok(SidechainsView {
            height: 0,
            sidechains: Vec::new(),
        })
    }

    fn sidechain(&self, chain: ChainId) -> Result<SidechainView, ApiError> {
        Err(ApiError::NotFound(format!("sidechain {}", chain.0)))
    }

    /// The fake runs the main chain only and serves no admin method.
    fn start_test_chain(&self, _chain: ChainId) -> Result<ChainStatus, ApiError> {
        Err(ApiError::Forbidden("admin methods are off".into()))
    }

    fn stop_chain(&self, _chain: ChainId) -> Result<(), ApiError> {
        Err(ApiError::Forbidden("admin methods are off".into()))
    }

    fn certified_header(
        &self,
        chain: ChainId,
        height: Option<u64>,
    ) -> Result<banyan_node::api::CertifiedHeaderView, ApiError> {
        if chain != ChainId::MAIN {
            return Err(ApiError::UnknownChain(chain.0));
        }
        Err(ApiError::NotFound(format!(
            "no commit proof for height {height:?}"
        )))
    }

    fn submit(&self, txs: Vec<SignedTx>) -> Vec<Result<Submitted, ApiError>> {
        let mut nonces = self.nonces.lock().unwrap();
        txs.into_iter()
            .map(|tx| {
                tx.verify_signature()
                    .map_err(|_| ApiError::Rejected("bad signature".into()))?;
                if tx.body.chain != ChainId::MAIN {
                    return Err(ApiError::UnknownChain(tx.body.chain.0));
                }
                let expected = nonces.entry(tx.sender()).or_insert(0);
                if tx.body.nonce.0 != *expected {
                    return Err(ApiError::Rejected(format!(
                        "stale nonce {}, expected {}",
                        tx.body.nonce.0, expected
                    )));
                }
                *expected += 1;
                let id = tx.id().to_hex();
                self.accepted.lock().unwrap().push(tx);
                Ok(Submitted { id })
            })
            .collect()
    }

    fn account(
        &self,
        chain: ChainId,
        address: Address,
        asset: AssetId,
    ) -> Result<AccountView, ApiError> {
        if chain != ChainId::MAIN {
            return Err(ApiError::UnknownChain(chain.0));
        }
        if address == RESERVED {
            return Err(ApiError::InvalidParams(
                "the reserved address has no account".into(),
            ));
        }
        let nonce = self
            .nonces
            .lock()
            .unwrap()
            .get(&address)
            .copied()
            .unwrap_or(0);
        let balance = if asset == AssetId::NATIVE {
            "1000"
        } else {
            "0"
        };
        Ok(AccountView {
            chain: 0,
            address: address.to_hex(),
            asset: hex::encode(asset.0),
            balance: balance.into(),
            nonce,
            height: TIP,
        })
    }

    fn block(&self, chain: ChainId, height: Option<u64>) -> Result<BlockView, ApiError> {
        self.block_calls.fetch_add(1, Ordering::Relaxed);
        let now = self.reads_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_reads_in_flight.fetch_max(now, Ordering::SeqCst);
        let mut held = self.hold_reads.lock().unwrap();
        while *held {
            held = self.reads_released.wait(held).unwrap();
        }
        drop(held);
        self.reads_in_flight.fetch_sub(1, Ordering::SeqCst);
        if chain != ChainId::MAIN {
            return Err(ApiError::UnknownChain(chain.0));
        }
        let txs = self.block_txs.load(Ordering::Relaxed);
        match height.unwrap_or(TIP) {
            h if h <= TIP && txs > 0 => Ok(big_block_view(h, txs)),
            h if h <= TIP => Ok(block_view(h)),
            h => Err(ApiError::NotFound(format!("no block at height {h}"))),
        }
    }

    fn validators(&self, chain: ChainId) -> Result<ValidatorsView, ApiError> {
        match chain.0 {
            0 => Ok(validators_view()),
            OFFLINE_CHAIN => Err(ApiError::Unavailable("storage is offline".into())),
            c => Err(ApiError::UnknownChain(c)),
        }
    }

    fn status(&self) -> NodeStatus {
        status_view()
    }
}

/// A running server; dropping it stops the server.
pub struct Server {
    pub addr: SocketAddr,
    pub node: Arc<FakeNode>,
    pub metrics: Metrics,
    stop: Option<oneshot::Sender<()>>,
    pub task: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Server {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stop and wait for the server to return.
    pub async fn shutdown(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.take().unwrap().await.unwrap().unwrap();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// Start `serve` on 127.0.0.1:0 with a fresh fake node.
pub async fn start(limits: RpcLimits) -> Server {
    start_with(limits, Arc::new(FakeNode::default())).await
}

/// Start `serve` on 127.0.0.1:0 with `node`.
pub async fn start_with(limits: RpcLimits, node: Arc<FakeNode>) -> Server {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let metrics = Metrics::new();
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(serve(
        listener,
        node.clone() as Arc<dyn NodeApi>,
        metrics.clone(),
        limits,
        async {
            let _ = stopped.await;
        },
    ));
    Server {
        addr,
        node,
        metrics,
        stop: Some(stop),
        task: Some(task),
    }
}

/// A transfer of `amount` signed by the key with seed `[seed; 32]`.
pub fn transfer(seed: u8, nonce: u64, amount: u128) -> SignedTx {
    let key = AccountSecretKey::from_bytes(&[seed; 32]);
    TxBody::native_transfer(
        ChainId::MAIN,
        banyan_core::hash::Digest::ZERO,
        key.public_key(),
        Nonce(nonce),
        Amount(1),
        Address([7; 32]),
        Amount(amount),
    )
    .sign(&key)
}

/// A connection to `addr` from the loopback address `local` (any of 127.0.0.0/8), so that a
/// test can speak as several clients.
pub async fn connect_from(local: &str, addr: SocketAddr) -> tokio::net::TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(local.parse().unwrap(), 0))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

/// Send raw bytes over a fresh connection and return (status code, body).
pub async fn raw(addr: SocketAddr, request: &[u8]) -> (u16, String) {
    raw_from("127.0.0.1", addr, request).await
}

/// [`raw`] from the loopback address `local`.
pub async fn raw_from(local: &str, addr: SocketAddr, request: &[u8]) -> (u16, String) {
    let s = connect_from(local, addr).await;
    exchange(s, request).await
}

/// Send `request` on `s`, read until the server closes, return (status code, body).
pub async fn exchange(mut s: tokio::net::TcpStream, request: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    // The server may answer (and close) before reading all of an oversized body.
    let _ = s.write_all(request).await;
    let mut buf = Vec::new();
    let _ = s.read_to_end(&mut buf).await;
    parse_http(&buf)
}

/// (status code, body) of an HTTP/1.1 response read whole.
pub fn parse_http(buf: &[u8]) -> (u16, String) {
    let text = String::from_utf8_lossy(buf).into_owned();
    let status: u16 = text
        .split_whitespace()
        .nth(1)
        .unwrap_or_else(|| panic!("no HTTP status line in {text:?}"))
        .parse()
        .unwrap();
    let body = text
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or("")
        .to_string();
    (status, body)
}

/// `verb path` with `body`, `Connection: close`.
pub async fn http(addr: SocketAddr, verb: &str, path: &str, body: &str) -> (u16, String) {
    raw(addr, http_request(verb, path, body).as_bytes()).await
}

/// The bytes of `verb path` with `body`, `Connection: close`.
pub fn http_request(verb: &str, path: &str, body: &str) -> String {
    format!(
        "{verb} {path} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
}

/// POST a JSON-RPC body to `/` and parse the JSON answer.
pub async fn rpc(addr: SocketAddr, body: &str) -> serde_json::Value {
    let (status, text) = http(addr, "POST", "/", body).await;
    assert_eq!(status, 200, "body: {text}");
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}
