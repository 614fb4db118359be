//! A JSON-RPC client of the node ([`RpcClient`], async, keep-alive) and a blocking facade for
//! command-line tools ([`BlockingRpcClient`]).

use super::{
    encode_tx_hex, ErrorObject, BUSY, GET_ACCOUNT, GET_BLOCK, GET_CERTIFIED_HEADER, GET_SIDECHAIN,
    GET_SIDECHAINS, GET_VALIDATORS, RATE_LIMITED, START_TEST_CHAIN, STATUS, STOP_CHAIN, SUBMIT_TX,
    SUBMIT_TXS, TOO_MANY_CONNECTIONS,
};
use crate::api::{
    AccountView, BlockView, CertifiedHeaderView, ChainStatus, NodeStatus, SidechainView,
    SidechainsView, Submitted, ValidatorsView,
};
use banyan_core::ids::{Address, AssetId, ChainId};
use banyan_core::tx::SignedTx;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::header::{HeaderValue, CONTENT_TYPE};
use hyper::{Request, Uri};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};
use serde::de::DeserializeOwned;
use serde_json::{json, Value};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Where the node's RPC listens by default.
pub const DEFAULT_RPC_URL: &str = "http://127.0.0.1:8545";
/// Environment variable that overrides [`DEFAULT_RPC_URL`] in the command line.
pub const RPC_URL_ENV: &str = "BANYAN_RPC";
/// Largest response body accepted.
pub const MAX_RESPONSE_BYTES: usize = 64 << 20;
/// How long one call may take, connection and retries included.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(30);
/// Most retries of a call the node refused for a limit ([`RATE_LIMITED`],
/// [`TOO_MANY_CONNECTIONS`], [`BUSY`]; such a refusal changed nothing).
pub const LIMITED_RETRIES: u32 = 6;
/// The wait before the first such retry; it doubles each time, up to [`LIMITED_MAX_WAIT`].
pub const LIMITED_FIRST_WAIT: Duration = Duration::from_millis(50);
/// The longest wait between such retries.
pub const LIMITED_MAX_WAIT: Duration = Duration::from_secs(2);
/// Most transactions [`RpcClient::submit_txs`] sends in one call (the server's default limit).
pub const TXS_PER_CALL: usize = 10_000;
/// Most hex digits of transactions [`RpcClient::submit_txs`] sends in one call (half the
/// server's default body limit, leaving room for the JSON around them).
pub const HEX_BYTES_PER_CALL: usize = 4 << 20;

/// Why a call failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RpcError {
    /// The URL is not an `http://host:port` URL.
    #[error("invalid RPC URL `{url}`: {reason}; give one like {DEFAULT_RPC_URL}")]
    InvalidUrl {
        /// The URL given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// No HTTP exchange happened: nothing listens, the connection broke, or it timed out.
    #[error("cannot reach the node at {url}: is `banyan start` running? ({reason})")]
    Transport {
        /// The node's URL.
        url: String,
        /// The underlying failure.
        reason: String,
    },
    /// The node answered, but not with a JSON-RPC response of the expected shape.
    #[error("the node at {url} answered unexpectedly: {reason}; is that URL a banyan node's RPC?")]
    BadResponse {
        /// The node's URL.
        url: String,
        /// What was wrong.
        reason: String,
    },
    /// The node answered with a JSON-RPC error.
    #[error("{message} (JSON-RPC error {code})")]
    Rpc {
        /// The error code (see [`crate::rpc`]).
        code: i64,
        /// The node's message.
        message: String,
    },
    /// The client could not start (no async runtime).
    #[error("cannot start the RPC client: {0}")]
    Local(String),
}

impl RpcError {
    /// The JSON-RPC error code, for [`RpcError::Rpc`].
    pub fn code(&self) -> Option<i64> {
        match self {
            RpcError::Rpc { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// Whether the node was not reached at all.
    pub fn is_transport(&self) -> bool {
        matches!(self, RpcError::Transport { .. })
    }
}

impl From<ErrorObject> for RpcError {
    fn from(e: ErrorObject) -> Self {
        RpcError::Rpc {
            code: e.code,
            message: e.message,
        }
    }
}

/// An async JSON-RPC client of one node, with keep-alive connections. Use it inside a Tokio
/// runtime; it is cheap to share behind an `Arc` and safe to call concurrently.
pub struct RpcClient {
    http: Client<HttpConnector, Full<Bytes>>,
    uri: Uri,
    url: String,
    next_id: AtomicU64,
}

impl std::fmt::Debug for RpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RpcClient").field("url", &self.url).finish()
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

impl RpcClient {
    /// A client of the node at `url` (`http://host:port`, optionally with a path). Nothing is
    /// contacted until the first call.
    pub fn new(url: &str) -> Result<Self, RpcError> {
        let invalid = |reason: &str| RpcError::InvalidUrl {
            url: url.to_string(),
            reason: reason.to_string(),
        };
        let uri: Uri = url
            .trim()
            .parse()
            .map_err(|e: hyper::http::uri::InvalidUri| invalid(&e.to_string()))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(_) => return Err(invalid("only http:// is supported")),
            None => return Err(invalid("the scheme is missing")),
        }
        if uri.host().is_none() {
            return Err(invalid("the host is missing"));
        }
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        connector.set_connect_timeout(Some(Duration::from_secs(5)));
        let http = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(60))
            .build(connector);
        Ok(RpcClient {
            http,
            uri,
            url: url.trim().to_string(),
            next_id: AtomicU64::new(1),
        })
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    fn transport(&self, reason: String) -> RpcError {
        RpcError::Transport {
            url: self.url.clone(),
            reason,
        }
    }

    fn bad(&self, reason: String) -> RpcError {
        RpcError::BadResponse {
            url: self.url.clone(),
            reason,
        }
    }

    /// Call `method` with `params` and return its result. A call the node refused for one of
    /// its limits is retried, backing off, at most [`LIMITED_RETRIES`] times.
    pub async fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let body = Bytes::from(
            json!({"jsonrpc": "2.0", "id": id, "method": method, "params": params}).to_string(),
        );
        let attempts = async {
            let mut wait = LIMITED_FIRST_WAIT;
            let mut retries = 0;
            loop {
                match self.attempt(body.clone()).await {
                    Err(e)
                        if retries < LIMITED_RETRIES
                            && matches!(
                                e.code(),
                                Some(RATE_LIMITED | TOO_MANY_CONNECTIONS | BUSY)
                            ) =>
                    {
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(LIMITED_MAX_WAIT);
                        retries += 1;
                    }
                    r => return r,
                }
            }
        };
        tokio::time::timeout(CALL_TIMEOUT, attempts)
            .await
            .map_err(|_| self.transport(format!("no answer within {CALL_TIMEOUT:?}")))?
    }

    /// One HTTP exchange of a call.
    async fn attempt(&self, body: Bytes) -> Result<Value, RpcError> {
        let mut req = Request::new(Full::new(body));
        *req.method_mut() = hyper::Method::POST;
        *req.uri_mut() = self.uri.clone();
        req.headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let resp = self
            .http
            .request(req)
            .await
            .map_err(|e| self.transport(error_chain(&e)))?;
        let status = resp.status();
        let bytes = Limited::new(resp.into_body(), MAX_RESPONSE_BYTES)
            .collect()
            .await
            .map_err(|e| self.transport(format!("reading the answer: {e}")))?
            .to_bytes();
        let value: Value = serde_json::from_slice(&bytes)
            .map_err(|e| self.bad(format!("HTTP {status} with a body that is not JSON ({e})")))?;
        if let Some(error) = value.get("error") {
            let error: ErrorObject = serde_json::from_value(error.clone())
                .map_err(|e| self.bad(format!("malformed error object: {e}")))?;
            return Err(error.into());
        }
        if !status.is_success() {
            return Err(self.bad(format!("HTTP {status}")));
        }
        match value {
            Value::Object(mut obj) => obj
                .remove("result")
                .ok_or_else(|| self.bad("a response without `result` or `error`".into())),
            _ => Err(self.bad("the response is not a JSON object".into())),
        }
    }

    async fn typed<T: DeserializeOwned>(&self, method: &str, params: Value) -> Result<T, RpcError> {
        let value = self.call(method, params).await?;
        serde_json::from_value(value)
            .map_err(|e| self.bad(format!("the result of {method} has the wrong shape: {e}")))
    }

    /// Submit one transaction (`banyan_submitTx`).
    pub async fn submit_tx(&self, tx: &SignedTx) -> Result<Submitted, RpcError> {
        self.typed(SUBMIT_TX, json!([encode_tx_hex(tx)])).await
    }

    /// Submit transactions (`banyan_submitTxs`, split into calls of at most [`TXS_PER_CALL`]
    /// transactions and [`HEX_BYTES_PER_CALL`] hex digits). One result per transaction, in
    /// order; the outer error is a failed call (later chunks are then not sent).
    pub async fn submit_txs(
        &self,
        txs: &[SignedTx],
    ) -> Result<Vec<Result<Submitted, RpcError>>, RpcError> {
        let mut out = Vec::with_capacity(txs.len());
        let mut chunk: Vec<String> = Vec::new();
        let mut chunk_bytes = 0usize;
        for tx in txs {
            let hex = encode_tx_hex(tx);
            if !chunk.is_empty()
                && (chunk.len() >= TXS_PER_CALL || chunk_bytes + hex.len() > HEX_BYTES_PER_CALL)
            {
                self.submit_chunk(std::mem::take(&mut chunk), &mut out)
                    .await?;
                chunk_bytes = 0;
            }
            chunk_bytes += hex.len();
            chunk.push(hex);
        }
        if !chunk.is_empty() {
            self.submit_chunk(chunk, &mut out).await?;
        }
        Ok(out)
    }

    async fn submit_chunk(
        &self,
        chunk: Vec<String>,
        out: &mut Vec<Result<Submitted, RpcError>>,
    ) -> Result<(), RpcError> {
        let n = chunk.len();
        let items: Vec<Value> = self.typed(SUBMIT_TXS, json!([chunk])).await?;
        if items.len() != n {
            return Err(self.bad(format!("{} results for {n} transactions", items.len())));
        }
        for item in items {
            if let Some(error) = item.get("error") {
                let error: ErrorObject = serde_json::from_value(error.clone())
                    .map_err(|e| self.bad(format!("malformed error object: {e}")))?;
                out.push(Err(error.into()));
            } else {
                let s: Submitted = serde_json::from_value(item)
                    .map_err(|e| self.bad(format!("malformed submit result: {e}")))?;
                out.push(Ok(s));
            }
        }
        Ok(())
    }

    /// Balance and nonce of `address` in `asset` on `chain` (`banyan_getAccount`).
    pub async fn account(
        &self,
        chain: ChainId,
        address: Address,
        asset: AssetId,
    ) -> Result<AccountView, RpcError> {
        let params = json!({
            "address": address.to_hex(),
            "chain": chain.0,
            "asset": hex::encode(asset.0),
        });
        self.typed(GET_ACCOUNT, params).await
    }

    /// The committed block at `height` of the main chain, or the latest (`banyan_getBlock`).
    pub async fn block(&self, height: Option<u64>) -> Result<BlockView, RpcError> {
        self.block_on(ChainId::MAIN, height).await
    }

    /// The committed block at `height` of `chain`, or the latest (`banyan_getBlock`).
    pub async fn block_on(
        &self,
        chain: ChainId,
        height: Option<u64>,
    ) -> Result<BlockView, RpcError> {
        self.typed(GET_BLOCK, json!({"height": height, "chain": chain.0}))
            .await
    }

    /// The commit proof of the committed block at `height` of `chain`, or of the latest that
    /// has one (`banyan_getCertifiedHeader`).
    pub async fn certified_header_on(
        &self,
        chain: ChainId,
        height: Option<u64>,
    ) -> Result<CertifiedHeaderView, RpcError> {
        self.typed(
            GET_CERTIFIED_HEADER,
            json!({"height": height, "chain": chain.0}),
        )
        .await
    }

    /// The validator set of the main chain (`banyan_getValidators`).
    pub async fn validators(&self) -> Result<ValidatorsView, RpcError> {
        self.validators_on(ChainId::MAIN).await
    }

    /// The validator set of `chain` (`banyan_getValidators`).
    pub async fn validators_on(&self, chain: ChainId) -> Result<ValidatorsView, RpcError> {
        self.typed(GET_VALIDATORS, json!({"chain": chain.0})).await
    }

    /// The node's status (`banyan_status`).
    pub async fn status(&self) -> Result<NodeStatus, RpcError> {
        self.typed(STATUS, json!([])).await
    }

    /// The sidechains recorded on the main chain (`banyan_getSidechains`).
    pub async fn sidechains(&self) -> Result<SidechainsView, RpcError> {
        self.typed(GET_SIDECHAINS, json!([])).await
    }

    /// One sidechain's record, committee and rotation (`banyan_getSidechain`).
    pub async fn sidechain(&self, chain: ChainId) -> Result<SidechainView, RpcError> {
        self.typed(GET_SIDECHAIN, json!({"chain": chain.0})).await
    }

    /// Start hosting the test chain `chain` (`banyan_startTestChain`, admin).
    pub async fn start_test_chain(&self, chain: ChainId) -> Result<ChainStatus, RpcError> {
        self.typed(START_TEST_CHAIN, json!({"chain": chain.0}))
            .await
    }

    /// Stop hosting `chain` (`banyan_stopChain`, admin).
    pub async fn stop_chain(&self, chain: ChainId) -> Result<(), RpcError> {
        self.typed(STOP_CHAIN, json!({"chain": chain.0})).await
    }
}

/// [`RpcClient`] behind a current-thread runtime, for command-line tools.
pub struct BlockingRpcClient {
    rt: tokio::runtime::Runtime,
    inner: RpcClient,
}

impl BlockingRpcClient {
    /// A client of the node at `url`. Must not be called from inside an async runtime.
    pub fn new(url: &str) -> Result<Self, RpcError> {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| RpcError::Local(e.to_string()))?;
        let inner = {
            let _guard = rt.enter();
            RpcClient::new(url)?
        };
        Ok(BlockingRpcClient { rt, inner })
    }

    /// The node's URL.
    pub fn url(&self) -> &str {
        self.inner.url()
    }

    /// See [`RpcClient::call`].
    pub fn call(&self, method: &str, params: Value) -> Result<Value, RpcError> {
        self.rt.block_on(self.inner.call(method, params))
    }

    /// See [`RpcClient::submit_tx`].
    pub fn submit_tx(&self, tx: &SignedTx) -> Result<Submitted, RpcError> {
        self.rt.block_on(self.inner.submit_tx(tx))
    }

    /// See [`RpcClient::submit_txs`].
    pub fn submit_txs(
        &self,
        txs: &[SignedTx],
    ) -> Result<Vec<Result<Submitted, RpcError>>, RpcError> {
        self.rt.block_on(self.inner.submit_txs(txs))
    }

    /// See [`RpcClient::account`].
    pub fn account(
        &self,
        chain: ChainId,
        address: Address,
        asset: AssetId,
    ) -> Result<AccountView, RpcError> {
        self.rt.block_on(self.inner.account(chain, address, asset))
    }

    /// See [`RpcClient::block`].
    pub fn block(&self, height: Option<u64>) -> Result<BlockView, RpcError> {
        self.rt.block_on(self.inner.block(height))
    }

    /// See [`RpcClient::block_on`].
    pub fn block_on(&self, chain: ChainId, height: Option<u64>) -> Result<BlockView, RpcError> {
        self.rt.block_on(self.inner.block_on(chain, height))
    }

    /// See [`RpcClient::certified_header_on`].
    pub fn certified_header_on(
        &self,
        chain: ChainId,
        height: Option<u64>,
    ) -> Result<CertifiedHeaderView, RpcError> {
        self.rt
            .block_on(self.inner.certified_header_on(chain, height))
    }

    /// See [`RpcClient::validators`].
    pub fn validators(&self) -> Result<ValidatorsView, RpcError> {
        self.rt.block_on(self.inner.validators())
    }

    /// See [`RpcClient::validators_on`].
    pub fn validators_on(&self, chain: ChainId) -> Result<ValidatorsView, RpcError> {
        self.rt.block_on(self.inner.validators_on(chain))
    }

    /// See [`RpcClient::status`].
    pub fn status(&self) -> Result<NodeStatus, RpcError> {
        self.rt.block_on(self.inner.status())
    }

    /// See [`RpcClient::sidechains`].
    pub fn sidechains(&self) -> Result<SidechainsView, RpcError> {
        self.rt.block_on(self.inner.sidechains())
    }

    /// See [`RpcClient::sidechain`].
    pub fn sidechain(&self, chain: ChainId) -> Result<SidechainView, RpcError> {
        self.rt.block_on(self.inner.sidechain(chain))
    }

    /// See [`RpcClient::start_test_chain`].
    pub fn start_test_chain(&self, chain: ChainId) -> Result<ChainStatus, RpcError> {
        self.rt.block_on(self.inner.start_test_chain(chain))
    }

    /// See [`RpcClient::stop_chain`].
    pub fn stop_chain(&self, chain: ChainId) -> Result<(), RpcError> {
        self.rt.block_on(self.inner.stop_chain(chain))
    }
}
