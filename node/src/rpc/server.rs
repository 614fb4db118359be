//! The JSON-RPC 2.0 server and the Prometheus `/metrics` endpoint (hyper 1, HTTP/1.1).
//!
//! See the [module docs](super) for the methods, their parameters and the error codes.
//!
//! Routes of [`serve`]: `POST /` (a JSON-RPC request or batch), `GET /health` (`200 ok`);
//! another verb on those paths is `405`, another path `404`. A body longer than
//! [`RpcLimits::max_body_bytes`] is refused with `413` and a JSON-RPC error body. Valid requests
//! without an `id` are notifications: they run and get no response (a batch of only
//! notifications, or a single one, is answered `204 No Content`).
//!
//! Neither server panics on any input: every malformed request becomes an HTTP or JSON-RPC
//! error, and the server keeps serving. The caller binds the listener (and reports bind
//! errors); both functions return `Ok(())` once `shutdown` completes and open connections are
//! drained (in-flight requests finish, for at most [`DRAIN_TIMEOUT`]).

use super::{
    decode_tx_hex, ErrorObject, GET_ACCOUNT, GET_BLOCK, GET_VALIDATORS, INTERNAL_ERROR,
    INVALID_PARAMS, INVALID_REQUEST, METHODS, METHOD_NOT_FOUND, PARSE_ERROR, STATUS, SUBMIT_TX,
    SUBMIT_TXS,
};
use crate::api::{ApiError, NodeApi, Submitted};
use crate::metrics::Metrics;
use banyan_core::ids::{Address, AssetId, ChainId};
use banyan_core::tx::SignedTx;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONTENT_LENGTH, CONTENT_TYPE};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use serde_json::{json, Map, Value};
use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Most connections served at once; further ones wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 1024;
/// A client must send a request's headers within this time.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// `Content-Type` of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Size limits of the RPC server.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RpcLimits {
    /// Largest request body, in bytes (default 8 MiB).
    pub max_body_bytes: usize,
    /// Most requests in one batch (default 1000).
    pub max_batch: usize,
    /// Most transactions in one `banyan_submitTxs` call (default 10 000).
    pub max_txs_per_call: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        RpcLimits {
            max_body_bytes: 8 << 20,
            max_batch: 1000,
            max_txs_per_call: 10_000,
        }
    }
}

struct State {
    api: Arc<dyn NodeApi>,
    metrics: Metrics,
    limits: RpcLimits,
}

/// Serve JSON-RPC on `listener` until `shutdown` completes. Every request is counted in
/// `metrics.rpc_requests{method,outcome}` and timed in `metrics.rpc_latency{method}`.
pub async fn serve(
    listener: TcpListener,
    api: Arc<dyn NodeApi>,
    metrics: Metrics,
    limits: RpcLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let state = Arc::new(State {
        api,
        metrics,
        limits,
    });
    run_http(
        listener,
        move |req| {
            let state = state.clone();
            async move { route_rpc(&state, req).await }
        },
        shutdown,
    )
    .await
}

/// Serve `GET /metrics` (the text exposition format, [`METRICS_CONTENT_TYPE`]) on `listener`
/// until `shutdown` completes; other paths are `404`, other verbs `405`.
pub async fn serve_metrics(
    listener: TcpListener,
    metrics: Metrics,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    run_http(
        listener,
        move |req: Request<Incoming>| {
            let metrics = metrics.clone();
            async move {
                match (req.method(), req.uri().path()) {
                    (&Method::GET, "/metrics") => {
                        let mut resp = Response::new(Full::new(Bytes::from(metrics.render())));
                        resp.headers_mut()
                            .insert(CONTENT_TYPE, HeaderValue::from_static(METRICS_CONTENT_TYPE));
                        resp
                    }
                    (_, "/metrics") => method_not_allowed("GET"),
                    _ => text(
                        StatusCode::NOT_FOUND,
                        "not found: the metrics are at GET /metrics\n",
                    ),
                }
            }
        },
        shutdown,
    )
    .await
}

/// Accept connections and serve HTTP/1.1 on each with `handler` until `shutdown`.
async fn run_http<H, F>(
    listener: TcpListener,
    handler: H,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let mut conns = JoinSet::new();
    tokio::pin!(shutdown);
    loop {
        while conns.try_join_next().is_some() {}
        let permit = tokio::select! {
            _ = &mut shutdown => break,
            p = slots.clone().acquire_owned() => match p {
                Ok(p) => p,
                // The semaphore is never closed.
                Err(_) => break,
            },
        };
        let stream = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    // Per-connection failures (reset before accept) and resource exhaustion
                    // (EMFILE) are transient: wait a little and go on.
                    tracing::warn!(error = %e, "accepting an HTTP connection failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let handler = handler.clone();
        let mut stop = stop_rx.clone();
        conns.spawn(async move {
            let _permit = permit;
            let svc = service_fn(move |req| {
                let handler = handler.clone();
                async move { Ok::<_, Infallible>(handler(req).await) }
            });
            let mut builder = http1::Builder::new();
            builder
                .timer(TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .keep_alive(true);
            let conn = builder.serve_connection(TokioIo::new(stream), svc);
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => {
                    if let Err(e) = r {
                        tracing::debug!(error = %e, "HTTP connection ended with an error");
                    }
                }
                _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                    conn.as_mut().graceful_shutdown();
                    let _ = conn.await;
                }
            }
        });
    }
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(DRAIN_TIMEOUT, async {
        while conns.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("closing HTTP connections still busy after the drain timeout");
        conns.abort_all();
    }
    Ok(())
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn method_not_allowed(allow: &'static str) -> Response<Full<Bytes>> {
    let mut resp = text(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    resp.headers_mut()
        .insert(ALLOW, HeaderValue::from_static(allow));
    resp
}

fn json_response(status: StatusCode, body: &Value) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    resp
}

fn error_response(id: Value, error: ErrorObject) -> Value {
    json!({"jsonrpc": "2.0", "error": error, "id": id})
}

async fn route_rpc(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/") => post_rpc(state, req).await,
        (_, "/") => method_not_allowed("POST"),
        (&Method::GET, "/health") => text(StatusCode::OK, "ok"),
        (_, "/health") => method_not_allowed("GET"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: send JSON-RPC requests with POST to /, or GET /health\n",
        ),
    }
}

impl State {
    fn record(&self, method: &str, ok: bool, started: Instant) {
        let outcome = if ok { "ok" } else { "error" };
        self.metrics
            .rpc_requests
            .with_label_values(&[method, outcome])
            .inc();
        self.metrics
            .rpc_latency
            .with_label_values(&[method])
            .observe(started.elapsed().as_secs_f64());
    }
}

async fn post_rpc(state: &State, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let started = Instant::now();
    let max = state.limits.max_body_bytes;
    let too_large = || {
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &error_response(
                Value::Null,
                ErrorObject::new(
                    INVALID_REQUEST,
                    format!(
                        "request body exceeds {max} bytes; split the batch or submit fewer \
                         transactions per call"
                    ),
                ),
            ),
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        state.record("unknown", false, started);
        return too_large();
    }
    let body = match Limited::new(req.into_body(), max).collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            state.record("unknown", false, started);
            if e.downcast_ref::<LengthLimitError>().is_some() {
                return too_large();
            }
            return text(StatusCode::BAD_REQUEST, "cannot read the request body\n");
        }
    };
    let value: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => {
            state.record("unknown", false, started);
            return json_response(
                StatusCode::OK,
                &error_response(
                    Value::Null,
                    ErrorObject::new(PARSE_ERROR, format!("parse error: {e}")),
                ),
            );
        }
    };
    let answer = match value {
        Value::Array(batch) => {
            if batch.is_empty() || batch.len() > state.limits.max_batch {
                state.record("unknown", false, started);
                let message = if batch.is_empty() {
                    "empty batch: send at least one request".to_string()
                } else {
                    format!(
                        "batch of {} requests exceeds the limit of {}; split it",
                        batch.len(),
                        state.limits.max_batch
                    )
                };
                Some(error_response(
                    Value::Null,
                    ErrorObject::new(INVALID_REQUEST, message),
                ))
            } else {
                let mut responses = Vec::new();
                for item in batch {
                    if let Some(r) = handle_one(state, item).await {
                        responses.push(r);
                    }
                }
                (!responses.is_empty()).then_some(Value::Array(responses))
            }
        }
        single => handle_one(state, single).await,
    };
    match answer {
        Some(body) => json_response(StatusCode::OK, &body),
        None => {
            let mut resp = Response::new(Full::new(Bytes::new()));
            *resp.status_mut() = StatusCode::NO_CONTENT;
            resp
        }
    }
}

/// Run one request of a batch (or a single request); `None` for a notification.
async fn handle_one(state: &State, request: Value) -> Option<Value> {
    let started = Instant::now();
    let invalid = |id: Value, message: &str| {
        state.record("unknown", false, started);
        Some(error_response(
            id,
            ErrorObject::new(INVALID_REQUEST, format!("invalid request: {message}")),
        ))
    };
    let Value::Object(mut obj) = request else {
        return invalid(Value::Null, "a request must be a JSON object");
    };
    let id = match obj.remove("id") {
        None => None,
        Some(v @ (Value::Null | Value::String(_) | Value::Number(_))) => Some(v),
        Some(_) => return invalid(Value::Null, "`id` must be a string, a number or null"),
    };
    let reply_id = id.clone().unwrap_or(Value::Null);
    if obj.get("jsonrpc").and_then(Value::as_str) != Some("2.0") {
        return invalid(reply_id, "`jsonrpc` must be \"2.0\"");
    }
    let method = match obj.remove("method") {
        Some(Value::String(m)) => m,
        _ => return invalid(reply_id, "`method` must be a string"),
    };
    let params = match obj.remove("params") {
        None => None,
        Some(p @ (Value::Array(_) | Value::Object(_))) => Some(p),
        Some(_) => return invalid(reply_id, "`params` must be an array or an object"),
    };
    let label = METHODS
        .iter()
        .copied()
        .find(|m| *m == method)
        .unwrap_or("unknown");
    let result = call(state, &method, params).await;
    state.record(label, result.is_ok(), started);
    let id = id?;
    Some(match result {
        Ok(value) => json!({"jsonrpc": "2.0", "result": value, "id": id}),
        Err(error) => error_response(id, error),
    })
}

fn to_json<T: Serialize>(value: &T) -> Result<Value, ErrorObject> {
    serde_json::to_value(value)
        .map_err(|e| ErrorObject::new(INTERNAL_ERROR, format!("cannot serialise the answer: {e}")))
}

fn api_err(e: ApiError) -> ErrorObject {
    ErrorObject::from(&e)
}

fn bad_params(message: impl Into<String>) -> ErrorObject {
    ErrorObject::new(
        INVALID_PARAMS,
        format!("invalid params: {}", message.into()),
    )
}

async fn call(state: &State, method: &str, params: Option<Value>) -> Result<Value, ErrorObject> {
    let api = &state.api;
    match method {
        SUBMIT_TX => {
            let p = named(params, &["tx"])?;
            let hex = required_str(&p, "tx", "the hex of a signed transaction")?;
            let tx = decode_tx_hex(hex).map_err(|e| bad_params(format!("`tx`: {e}")))?;
            let mut results = submit(state, vec![tx]).await?;
            match results.pop() {
                Some(Ok(s)) => to_json(&s),
                Some(Err(e)) => Err(api_err(e)),
                None => Err(ErrorObject::new(
                    INTERNAL_ERROR,
                    "the node returned no result for the transaction",
                )),
            }
        }
        SUBMIT_TXS => {
            let mut p = named(params, &["txs"])?;
            let Some(Value::Array(items)) = p.remove("txs") else {
                return Err(bad_params(
                    "`txs` must be an array of signed transactions in hex",
                ));
            };
            let max = state.limits.max_txs_per_call;
            if items.len() > max {
                return Err(bad_params(format!(
                    "{} transactions in one call exceed the limit of {max}; split them",
                    items.len()
                )));
            }
            let mut txs = Vec::with_capacity(items.len());
            for (i, item) in items.iter().enumerate() {
                let hex = item
                    .as_str()
                    .ok_or_else(|| bad_params(format!("transaction {i}: must be a hex string")))?;
                txs.push(
                    decode_tx_hex(hex).map_err(|e| bad_params(format!("transaction {i}: {e}")))?,
                );
            }
            let results = submit(state, txs).await?;
            let out: Vec<Value> = results
                .into_iter()
                .map(|r| match r {
                    Ok(Submitted { id }) => json!({ "id": id }),
                    Err(e) => json!({ "error": ErrorObject::from(&e) }),
                })
                .collect();
            Ok(Value::Array(out))
        }
        GET_ACCOUNT => {
            let p = named(params, &["address", "chain", "asset"])?;
            let address = Address::from_hex(required_str(
                &p,
                "address",
                "the hex of a 32-byte account address",
            )?)
            .map_err(|e| {
                bad_params(format!("`address`: {e}; expected 64 hex digits (32 bytes)"))
            })?;
            let chain = chain(&p)?;
            let asset = match optional(&p, "asset") {
                None => AssetId::NATIVE,
                Some(v) => {
                    let s = v
                        .as_str()
                        .ok_or_else(|| bad_params("`asset` must be a hex string of 32 bytes"))?;
                    let mut out = [0u8; 32];
                    hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(s), &mut out).map_err(
                        |e| bad_params(format!("`asset`: {e}; expected 64 hex digits (32 bytes)")),
                    )?;
                    AssetId(out)
                }
            };
            to_json(&api.account(chain, address, asset).map_err(api_err)?)
        }
        GET_BLOCK => {
            let p = named(params, &["height", "chain"])?;
            let height = match optional(&p, "height") {
                None => None,
                Some(v) => Some(
                    v.as_u64()
                        .ok_or_else(|| bad_params("`height` must be a non-negative integer"))?,
                ),
            };
            let chain = chain(&p)?;
            to_json(&api.block(chain, height).map_err(api_err)?)
        }
        GET_VALIDATORS => {
            let p = named(params, &["chain"])?;
            let chain = chain(&p)?;
            to_json(&api.validators(chain).map_err(api_err)?)
        }
        STATUS => {
            named(params, &[])?;
            to_json(&api.status())
        }
        other => Err(ErrorObject::new(
            METHOD_NOT_FOUND,
            format!(
                "method not found: `{}`; this node serves {}",
                truncate(other, 64),
                METHODS.join(", ")
            ),
        )),
    }
}

/// Run `api.submit` on the blocking pool (it verifies signatures).
async fn submit(
    state: &State,
    txs: Vec<SignedTx>,
) -> Result<Vec<Result<Submitted, ApiError>>, ErrorObject> {
    let n = txs.len();
    let api = state.api.clone();
    let mut results = tokio::task::spawn_blocking(move || api.submit(txs))
        .await
        .map_err(|e| {
            ErrorObject::new(
                INTERNAL_ERROR,
                format!("submitting failed inside the node ({e}); see the node's log"),
            )
        })?;
    if results.len() != n {
        tracing::error!(
            expected = n,
            got = results.len(),
            "NodeApi::submit returned the wrong number of results"
        );
        results.resize(
            n,
            Err(ApiError::Unavailable(
                "the node returned no result for this transaction".into(),
            )),
        );
    }
    Ok(results)
}

fn truncate(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// Parameters by name: an object with only `names` as keys, or an array mapped to `names` by
/// position. A `null` value counts as absent.
fn named(params: Option<Value>, names: &[&str]) -> Result<Map<String, Value>, ErrorObject> {
    let expected = || {
        if names.is_empty() {
            "this method takes no parameters".to_string()
        } else {
            format!("this method takes: {}", names.join(", "))
        }
    };
    let mut out = Map::new();
    match params {
        None => {}
        Some(Value::Array(items)) => {
            if items.len() > names.len() {
                return Err(bad_params(format!(
                    "{} positional parameters given; {}",
                    items.len(),
                    expected()
                )));
            }
            for (name, v) in names.iter().zip(items) {
                if !v.is_null() {
                    out.insert((*name).to_string(), v);
                }
            }
        }
        Some(Value::Object(map)) => {
            for (k, v) in map {
                if !names.contains(&k.as_str()) {
                    return Err(bad_params(format!(
                        "unknown parameter `{}`; {}",
                        truncate(&k, 64),
                        expected()
                    )));
                }
                if !v.is_null() {
                    out.insert(k, v);
                }
            }
        }
        Some(_) => return Err(bad_params("params must be an array or an object")),
    }
    Ok(out)
}

fn optional<'a>(p: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    p.get(name)
}

fn required_str<'a>(
    p: &'a Map<String, Value>,
    name: &str,
    what: &str,
) -> Result<&'a str, ErrorObject> {
    match p.get(name) {
        None => Err(bad_params(format!("missing parameter `{name}` ({what})"))),
        Some(v) => v
            .as_str()
            .ok_or_else(|| bad_params(format!("`{name}` must be a string ({what})"))),
    }
}

fn chain(p: &Map<String, Value>) -> Result<ChainId, ErrorObject> {
    match p.get("chain") {
        None => Ok(ChainId::MAIN),
        Some(v) => v
            .as_u64()
            .and_then(|c| u32::try_from(c).ok())
            .map(ChainId)
            .ok_or_else(|| bad_params("`chain` must be an integer from 0 to 4294967295")),
    }
}
