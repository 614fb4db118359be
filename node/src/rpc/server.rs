//! The JSON-RPC 2.0 server and the Prometheus `/metrics` endpoint (hyper 1, HTTP/1.1).
//!
//! See the [module docs](super) for the methods, their parameters, the limits and the error
//! codes.
//!
//! Routes of [`serve`]: `POST /` (a JSON-RPC request or batch), `GET /health` (`200 ok`);
//! another verb on those paths is `405`, another path `404`. Valid requests without an `id`
//! are notifications: they run and get no response (a batch of only notifications, or a
//! single one, is answered `204 No Content`).
//!
//! How a request is served, and where each [`RpcLimits`] applies:
//!
//! 1. **Accept.** At most `max_connections` connections are served at once (further ones wait
//!    in the listen backlog), at most `max_connections_per_client` per client (IPv4 address
//!    or IPv6 /64). A connection over its client's limit takes no slot: it is answered `429`
//!    ([`TOO_MANY_CONNECTIONS`](super::TOO_MANY_CONNECTIONS)) and closed, at most
//!    [`MAX_REFUSED_CONNECTIONS`] at once, each given [`REFUSED_HEADER_TIMEOUT`] to send its
//!    headers; beyond that it is closed unanswered.
//! 2. **Headers** must arrive within `header_read_timeout` (also how long an idle keep-alive
//!    connection stays open).
//! 3. **Rate.** Each `POST /` takes one token from its client's bucket before its body is read
//!    (`429` [`RATE_LIMITED`](super::RATE_LIMITED) with `Retry-After` when empty).
//! 4. **Body.** It must arrive within `body_read_timeout` (`408`
//!    [`BODY_TIMEOUT`](super::BODY_TIMEOUT)), hold at most `max_body_bytes` (`413`, also when
//!    only declared) and fit in the server-wide `max_buffered_body_bytes` (`503`
//!    [`BUSY`](super::BUSY)). These answers close the connection.
//! 5. **Compute**, on tokio's blocking pool, at most `max_blocking_jobs` requests at once
//!    (the others wait), so parsing, decoding transactions, storage reads and encoding never
//!    run on the async workers that also carry QUIC: parse (at most `max_json_values` values,
//!    else `413`; nesting deeper than 128 is a parse error), take the rest of the batch's
//!    tokens (one per call; `429` and nothing runs if short), then run the calls in order,
//!    appending each encoded answer to the response.
//! 6. **Response cap.** Once the next answer would take the response past
//!    `max_response_bytes` (room is kept for the error entries of the calls after it), that
//!    answer is dropped and no later call runs; each of them is answered
//!    [`RESPONSE_TOO_LARGE`](super::RESPONSE_TOO_LARGE) instead, so a response never holds
//!    more than the cap, and neither does the server while building it. The one exception:
//!    the answer of a submission that ran is always returned, since it changed the mempool
//!    (the body limit bounds those answers to a fraction of `max_body_bytes`). Notifications
//!    run whatever the cap: they add nothing to the response.
//!
//! Neither server panics on any input: every malformed request becomes an HTTP or JSON-RPC
//! error, and the server keeps serving. The caller binds the listener (and reports bind
//! errors); both functions return `Ok(())` once `shutdown` completes and open connections are
//! drained (in-flight requests finish, for at most [`DRAIN_TIMEOUT`]).

use super::body::{read_body, BodyError, BUDGET_UNIT_BYTES};
use super::limiter::{ClientKey, ClientLimits, Clients, ConnectionGuard, Refused};
use super::{
    parse_body, parse_entry, Call, Entry, ErrorObject, ParseFailure, BODY_TIMEOUT, BUSY,
    INTERNAL_ERROR, INVALID_REQUEST, METHODS, PARSE_ERROR, RATE_LIMITED, RESPONSE_TOO_LARGE,
    SUBMIT_TX, SUBMIT_TXS, TOO_MANY_CONNECTIONS,
};
use crate::api::{ApiError, NodeApi, Submitted};
use crate::metrics::Metrics;
use banyan_core::tx::SignedTx;
use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::{TokioIo, TokioTimer};
use serde::Serialize;
use serde_json::{json, Value};
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;

/// Default of [`RpcLimits::max_connections`], and the limit of the metrics endpoint.
pub const MAX_CONNECTIONS: usize = 1024;
/// Default of [`RpcLimits::header_read_timeout`], and the limit of the metrics endpoint.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Most connections being refused (over their client's connection limit) at once; more are
/// closed unanswered.
pub const MAX_REFUSED_CONNECTIONS: usize = 64;
/// How long a refused connection has to send its request's headers to be told why.
pub const REFUSED_HEADER_TIMEOUT: Duration = Duration::from_secs(1);
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);
/// `Content-Type` of `/metrics`.
pub const METRICS_CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The limits of the RPC server; the module docs say where each applies. The defaults are
/// sized for `banyan load` from one address (at most 256 `banyan_submitTxs` calls in flight
/// plus 64 concurrent account queries, at most a few hundred calls per second, bodies of
/// ~100 KB), with room to spare.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RpcLimits {
    /// Largest request body, bytes (default 8 MiB).
    pub max_body_bytes: usize,
    /// Most requests in one batch (default 1000).
    pub max_batch: usize,
    /// Most transactions in one `banyan_submitTxs` call (default 10 000).
    pub max_txs_per_call: usize,
    /// Most JSON values (each number, string, array, object...) in one request body (default
    /// 100 000): a parsed body then takes at most a few MB beyond its own bytes.
    pub max_json_values: usize,
    /// Most time to receive a request's headers; also how long an idle keep-alive connection
    /// stays open (default 30 s).
    pub header_read_timeout: Duration,
    /// Most time to receive a request's body once its headers are in (default 10 s).
    pub body_read_timeout: Duration,
    /// Most bytes of request bodies held at once over all connections (default 128 MiB).
    pub max_buffered_body_bytes: usize,
    /// Most connections served at once (default 1024).
    pub max_connections: usize,
    /// Most connections one client holds open (default 320: `banyan load`'s 256 in-flight
    /// submissions plus its 64 queries).
    pub max_connections_per_client: usize,
    /// JSON-RPC calls per second one client may sustain; each call of a batch counts
    /// (default 2000).
    pub rate_per_client_per_s: u32,
    /// Calls one client may make at once above its rate (default 4000; a batch larger than
    /// this is always refused).
    pub burst_per_client: u32,
    /// Clients tracked for the per-client limits (default 4096; keep it at least
    /// `max_connections`).
    pub max_clients: usize,
    /// Largest response body, bytes (default 32 MiB, above the JSON of the largest block).
    pub max_response_bytes: usize,
    /// Most requests computed at once on the blocking pool (default 8).
    pub max_blocking_jobs: usize,
}

impl Default for RpcLimits {
    fn default() -> Self {
        RpcLimits {
            max_body_bytes: 8 << 20,
            max_batch: 1000,
            max_txs_per_call: 10_000,
            max_json_values: 100_000,
            header_read_timeout: HEADER_READ_TIMEOUT,
            body_read_timeout: Duration::from_secs(10),
            max_buffered_body_bytes: 128 << 20,
            max_connections: MAX_CONNECTIONS,
            max_connections_per_client: 320,
            rate_per_client_per_s: 2000,
            burst_per_client: 4000,
            max_clients: 4096,
            max_response_bytes: 32 << 20,
            max_blocking_jobs: 8,
        }
    }
}

struct State {
    api: Arc<dyn NodeApi>,
    metrics: Metrics,
    limits: RpcLimits,
    clients: Arc<Clients>,
    /// [`RpcLimits::max_buffered_body_bytes`] in [`BUDGET_UNIT_BYTES`] units.
    body_budget: Arc<Semaphore>,
    /// [`RpcLimits::max_blocking_jobs`] permits.
    jobs: Arc<Semaphore>,
}

/// Serve JSON-RPC on `listener` until `shutdown` completes. Every request is counted in
/// `metrics.rpc_requests{method,outcome}` (`outcome` is `ok`, `error`, or `limited` for a
/// request refused by a limit) and timed in `metrics.rpc_latency{method}`.
pub async fn serve(
    listener: TcpListener,
    api: Arc<dyn NodeApi>,
    metrics: Metrics,
    limits: RpcLimits,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let clients = Arc::new(Clients::new(ClientLimits {
        max_connections_per_client: limits.max_connections_per_client,
        rate_per_s: f64::from(limits.rate_per_client_per_s),
        burst: f64::from(limits.burst_per_client),
        max_clients: limits.max_clients.max(1),
    }));
    let budget_units = limits
        .max_buffered_body_bytes
        .div_ceil(BUDGET_UNIT_BYTES)
        .min(Semaphore::MAX_PERMITS);
    let state = Arc::new(State {
        api,
        metrics,
        limits,
        clients: clients.clone(),
        body_budget: Arc::new(Semaphore::new(budget_units)),
        jobs: Arc::new(Semaphore::new(
            limits.max_blocking_jobs.clamp(1, Semaphore::MAX_PERMITS),
        )),
    });
    let policy = Policy {
        max_connections: limits.max_connections.clamp(1, Semaphore::MAX_PERMITS),
        header_read_timeout: limits.header_read_timeout,
    };
    run_http(
        listener,
        policy,
        move |peer: SocketAddr| {
            let key = ClientKey::of(peer.ip());
            match clients.connect(key, Instant::now()) {
                Ok(guard) => {
                    let state = state.clone();
                    Admission::Serve(
                        move |req| {
                            let state = state.clone();
                            async move { route_rpc(state, key, req).await }
                        },
                        Some(guard),
                    )
                }
                Err(refused) => {
                    state.record_limited();
                    let message = match refused {
                        Refused::TooManyClients => {
                            "too many clients are connected; retry later".to_string()
                        }
                        _ => format!(
                            "too many connections from {key}: at most {} per client; reuse \
                             keep-alive connections or retry later",
                            state.limits.max_connections_per_client
                        ),
                    };
                    Admission::Refuse(Refusal(error_body(
                        Value::Null,
                        &ErrorObject::new(TOO_MANY_CONNECTIONS, message),
                    )))
                }
            }
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
    let handler = move |req: Request<Incoming>| {
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
    };
    let policy = Policy {
        max_connections: MAX_CONNECTIONS,
        header_read_timeout: HEADER_READ_TIMEOUT,
    };
    run_http(
        listener,
        policy,
        move |_peer| Admission::Serve(handler.clone(), None),
        shutdown,
    )
    .await
}

#[derive(Clone, Copy)]
struct Policy {
    max_connections: usize,
    header_read_timeout: Duration,
}

/// What to do with a new connection.
enum Admission<H> {
    /// Serve it with this handler, counted by the guard (if any) while it is open.
    Serve(H, Option<ConnectionGuard>),
    /// Answer every request on it `429` with this JSON-RPC error body, then close it.
    Refuse(Refusal),
}

#[derive(Clone)]
struct Refusal(Vec<u8>);

/// Accept connections and serve HTTP/1.1 on each as `admit` decides until `shutdown`.
async fn run_http<A, H, F>(
    listener: TcpListener,
    policy: Policy,
    admit: A,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()>
where
    A: Fn(SocketAddr) -> Admission<H>,
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
{
    let (stop_tx, stop_rx) = watch::channel(false);
    let slots = Arc::new(Semaphore::new(policy.max_connections));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSED_CONNECTIONS));
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
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(accepted) => accepted,
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
        match admit(peer) {
            Admission::Serve(handler, guard) => {
                conns.spawn(serve_connection(
                    stream,
                    handler,
                    policy.header_read_timeout,
                    true,
                    (permit, guard),
                    stop_rx.clone(),
                ));
            }
            Admission::Refuse(refusal) => {
                drop(permit);
                // Dropping the stream closes it unanswered.
                let Ok(held) = refusals.clone().try_acquire_owned() else {
                    continue;
                };
                let handler = move |_req: Request<Incoming>| {
                    let body = refusal.0.clone();
                    async move { json_bytes(StatusCode::TOO_MANY_REQUESTS, body, None, true) }
                };
                conns.spawn(serve_connection(
                    stream,
                    handler,
                    REFUSED_HEADER_TIMEOUT,
                    false,
                    held,
                    stop_rx.clone(),
                ));
            }
        }
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

/// Serve one connection until it closes or `stop` turns true; `held` (slots, guards) is
/// released when it ends.
async fn serve_connection<H, F, G>(
    stream: TcpStream,
    handler: H,
    header_read_timeout: Duration,
    keep_alive: bool,
    held: G,
    mut stop: watch::Receiver<bool>,
) where
    H: Fn(Request<Incoming>) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Full<Bytes>>> + Send + 'static,
    G: Send + 'static,
{
    let _held = held;
    let svc = service_fn(move |req| {
        let handler = handler.clone();
        async move { Ok::<_, Infallible>(handler(req).await) }
    });
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout)
        .keep_alive(keep_alive);
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

/// A JSON response; `close` ends the connection after it (the body was not read whole).
fn json_bytes(
    status: StatusCode,
    body: Vec<u8>,
    retry_after: Option<Duration>,
    close: bool,
) -> Response<Full<Bytes>> {
    let mut resp = Response::new(Full::new(Bytes::from(body)));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if let Some(wait) = retry_after {
        // Whole seconds, rounded up, at least one.
        let secs = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
        headers.insert(RETRY_AFTER, HeaderValue::from(secs.max(1)));
    }
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    resp
}

#[derive(Serialize)]
struct ErrorEntry<'a> {
    jsonrpc: &'static str,
    error: &'a ErrorObject,
    id: &'a Value,
}

/// `{"jsonrpc":"2.0","error":..,"id":..}`, encoded.
fn error_body(id: Value, error: &ErrorObject) -> Vec<u8> {
    error_entry(&id, error)
}

fn error_entry(id: &Value, error: &ErrorObject) -> Vec<u8> {
    serde_json::to_vec(&ErrorEntry {
        jsonrpc: "2.0",
        error,
        id,
    })
    // Encoding a `Value` and two strings cannot fail (no maps with non-string keys).
    .unwrap_or_else(|_| {
        br#"{"jsonrpc":"2.0","error":{"code":-32603,"message":"cannot encode an error"},"id":null}"#
            .to_vec()
    })
}

/// `{"jsonrpc":"2.0","result":<result>,"id":..}` around an encoded result.
fn ok_entry(id: &Value, result: &[u8]) -> Vec<u8> {
    let id = serde_json::to_vec(id).unwrap_or_else(|_| b"null".to_vec());
    let mut out = Vec::with_capacity(result.len() + id.len() + 32);
    out.extend_from_slice(br#"{"jsonrpc":"2.0","result":"#);
    out.extend_from_slice(result);
    out.extend_from_slice(br#","id":"#);
    out.extend_from_slice(&id);
    out.push(b'}');
    out
}

fn limit_error(
    status: StatusCode,
    code: i64,
    message: String,
    retry_after: Option<Duration>,
) -> Response<Full<Bytes>> {
    let body = error_body(Value::Null, &ErrorObject::new(code, message));
    json_bytes(status, body, retry_after, true)
}

async fn route_rpc(
    state: Arc<State>,
    key: ClientKey,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    match (req.method(), req.uri().path()) {
        (&Method::POST, "/") => post_rpc(state, key, req).await,
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

    fn record_limited(&self) {
        self.metrics
            .rpc_requests
            .with_label_values(&["unknown", "limited"])
            .inc();
    }

    /// The answer to a request refused by the rate limit; `calls` is its cost.
    fn rate_limited(&self, refused: Refused, calls: u64) -> Reply {
        self.record_limited();
        let (rate, burst) = (
            self.limits.rate_per_client_per_s,
            self.limits.burst_per_client,
        );
        let (message, retry_after) = match refused {
            Refused::RateLimited { retry_after } => (
                format!(
                    "rate limit: at most {rate} calls per second per client, in bursts of at \
                     most {burst} (each call of a batch counts); retry in {} ms",
                    retry_after.as_millis().max(1)
                ),
                Some(retry_after),
            ),
            _ => (
                format!(
                    "rate limit: a batch of {calls} calls exceeds the per-client burst of \
                     {burst}; split it"
                ),
                None,
            ),
        };
        Reply {
            status: StatusCode::TOO_MANY_REQUESTS,
            body: error_body(Value::Null, &ErrorObject::new(RATE_LIMITED, message)),
            retry_after,
        }
    }
}

async fn post_rpc(
    state: Arc<State>,
    key: ClientKey,
    req: Request<Incoming>,
) -> Response<Full<Bytes>> {
    let started = Instant::now();
    if let Err(refused) = state.clients.take(key, 1, started) {
        return respond(state.rate_limited(refused, 1), true);
    }
    let max = state.limits.max_body_bytes;
    let too_large = |state: &State| {
        state.record("unknown", false, started);
        limit_error(
            StatusCode::PAYLOAD_TOO_LARGE,
            INVALID_REQUEST,
            format!(
                "request body exceeds {max} bytes; split the batch or submit fewer \
                 transactions per call"
            ),
            None,
        )
    };
    let declared = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > max as u64) {
        return too_large(&state);
    }
    let timeout = state.limits.body_read_timeout;
    let read =
        tokio::time::timeout(timeout, read_body(req.into_body(), max, &state.body_budget)).await;
    let body = match read {
        Ok(Ok(body)) => body,
        Ok(Err(BodyError::TooLarge)) => return too_large(&state),
        Ok(Err(BodyError::Busy)) => {
            state.record_limited();
            return limit_error(
                StatusCode::SERVICE_UNAVAILABLE,
                BUSY,
                format!(
                    "server busy: request bodies being received fill the server's {} byte \
                     buffer; retry shortly",
                    state.limits.max_buffered_body_bytes
                ),
                Some(Duration::from_secs(1)),
            );
        }
        Ok(Err(BodyError::Broken)) => {
            state.record("unknown", false, started);
            return text(StatusCode::BAD_REQUEST, "cannot read the request body\n");
        }
        Err(_) => {
            state.record_limited();
            return limit_error(
                StatusCode::REQUEST_TIMEOUT,
                BODY_TIMEOUT,
                format!(
                    "request body not received within {} ms; send the whole body at once",
                    timeout.as_millis()
                ),
                None,
            );
        }
    };
    // The semaphore is never closed; the fallback only keeps this panic-free.
    let job = state.jobs.clone().acquire_owned().await.ok();
    let worker = state.clone();
    let done = tokio::task::spawn_blocking(move || {
        let _job = job;
        process(&worker, key, &body.bytes)
    })
    .await;
    match done {
        Ok(reply) => respond(reply, false),
        Err(e) => {
            tracing::error!(error = %e, "an RPC request failed inside the node");
            state.record("unknown", false, started);
            json_bytes(
                StatusCode::INTERNAL_SERVER_ERROR,
                error_body(
                    Value::Null,
                    &ErrorObject::new(
                        INTERNAL_ERROR,
                        "the request failed inside the node; see the node's log",
                    ),
                ),
                None,
                true,
            )
        }
    }
}

/// What [`process`] answers.
struct Reply {
    status: StatusCode,
    body: Vec<u8>,
    retry_after: Option<Duration>,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Self {
        Reply {
            status: StatusCode::OK,
            body,
            retry_after: None,
        }
    }
}

/// The HTTP response of a reply; `close` ends the connection after it.
fn respond(reply: Reply, close: bool) -> Response<Full<Bytes>> {
    if reply.status == StatusCode::NO_CONTENT {
        let mut resp = Response::new(Full::new(Bytes::new()));
        *resp.status_mut() = StatusCode::NO_CONTENT;
        return resp;
    }
    json_bytes(reply.status, reply.body, reply.retry_after, close)
}

/// One entry of a request, read but not yet run.
enum Prepared {
    /// A well-formed call (`id: None`: a notification).
    Call {
        id: Option<Value>,
        method: String,
        params: Option<Value>,
    },
    /// A malformed entry and its encoded error.
    Invalid(Vec<u8>),
}

/// Parse, rate-limit and run a request body; runs on the blocking pool.
fn process(state: &State, key: ClientKey, body: &[u8]) -> Reply {
    let started = Instant::now();
    let value = match parse_body(body, state.limits.max_json_values) {
        Ok(v) => v,
        Err(ParseFailure::TooManyValues) => {
            state.record("unknown", false, started);
            return Reply {
                status: StatusCode::PAYLOAD_TOO_LARGE,
                body: error_body(
                    Value::Null,
                    &ErrorObject::new(
                        INVALID_REQUEST,
                        format!(
                            "request holds more than {} JSON values; split the batch",
                            state.limits.max_json_values
                        ),
                    ),
                ),
                retry_after: None,
            };
        }
        Err(ParseFailure::Json(e)) => {
            state.record("unknown", false, started);
            return Reply::ok(error_body(
                Value::Null,
                &ErrorObject::new(PARSE_ERROR, format!("parse error: {e}")),
            ));
        }
    };
    let (entries, batch) = match value {
        Value::Array(items) => {
            if items.is_empty() || items.len() > state.limits.max_batch {
                state.record("unknown", false, started);
                let message = if items.is_empty() {
                    "empty batch: send at least one request".to_string()
                } else {
                    format!(
                        "batch of {} requests exceeds the limit of {}; split it",
                        items.len(),
                        state.limits.max_batch
                    )
                };
                return Reply::ok(error_body(
                    Value::Null,
                    &ErrorObject::new(INVALID_REQUEST, message),
                ));
            }
            (items, true)
        }
        single => (vec![single], false),
    };
    // One token was taken before the body was read.
    let calls = entries.len() as u64;
    if calls > u64::from(state.limits.burst_per_client) {
        return state.rate_limited(Refused::OverBurst, calls);
    }
    if calls > 1 {
        if let Err(refused) = state.clients.take(key, calls - 1, Instant::now()) {
            return state.rate_limited(refused, calls);
        }
    }
    run_entries(state, entries, batch)
}

/// The response being built: entries appended as they are encoded.
struct Out {
    buf: Vec<u8>,
    batch: bool,
    entries: usize,
}

impl Out {
    /// Bytes the response will have with an entry of `entry` bytes appended (with its
    /// separator, and the batch closed).
    fn len_with(&self, entry: usize) -> usize {
        self.buf.len() + entry + usize::from(self.batch) * 2
    }

    fn push(&mut self, entry: &[u8]) {
        if self.batch {
            self.buf.push(if self.entries == 0 { b'[' } else { b',' });
        }
        self.buf.extend_from_slice(entry);
        self.entries += 1;
    }

    fn finish(mut self) -> Reply {
        if self.entries == 0 {
            return Reply {
                status: StatusCode::NO_CONTENT,
                body: Vec::new(),
                retry_after: None,
            };
        }
        if self.batch {
            self.buf.push(b']');
        }
        Reply::ok(self.buf)
    }
}

/// Run the entries of a request in order within [`RpcLimits::max_response_bytes`] (see the
/// module docs).
fn run_entries(state: &State, entries: Vec<Value>, batch: bool) -> Reply {
    let cap = state.limits.max_response_bytes;
    let too_large = ErrorObject::new(
        RESPONSE_TOO_LARGE,
        if batch {
            format!("response too large: the answers would exceed {cap} bytes; split the batch")
        } else {
            format!("response too large: the answer exceeds {cap} bytes")
        },
    );
    let prepared: Vec<Prepared> = entries.into_iter().map(|e| prepare(state, e)).collect();
    // What each entry adds to the response at least (its separator included): its error if
    // it is a malformed entry, the "too large" error if it is a call, nothing for a
    // notification. `reserve[i]` sums it over entries `i..`.
    let mut reserve = vec![0usize; prepared.len() + 1];
    for (i, p) in prepared.iter().enumerate().rev() {
        let least = match p {
            Prepared::Invalid(bytes) => bytes.len() + 1,
            Prepared::Call { id: Some(id), .. } => error_entry(id, &too_large).len() + 1,
            Prepared::Call { id: None, .. } => 0,
        };
        reserve[i] = reserve[i + 1].saturating_add(least);
    }
    let mut out = Out {
        buf: Vec::new(),
        batch,
        entries: 0,
    };
    let mut full = false;
    for (i, p) in prepared.into_iter().enumerate() {
        match p {
            Prepared::Invalid(bytes) => out.push(&bytes),
            Prepared::Call { id, method, params } => {
                let started = Instant::now();
                let label = METHODS
                    .iter()
                    .copied()
                    .find(|m| *m == method)
                    .unwrap_or("unknown");
                let Some(id) = id else {
                    let result = call(state, &method, params);
                    state.record(label, result.is_ok(), started);
                    continue;
                };
                if full {
                    state.record(label, false, started);
                    out.push(&error_entry(&id, &too_large));
                    continue;
                }
                let result = call(state, &method, params);
                state.record(label, result.is_ok(), started);
                let entry = match result {
                    Ok(bytes) => ok_entry(&id, &bytes),
                    Err(e) => error_entry(&id, &e),
                };
                let fits = out.len_with(entry.len()).saturating_add(reserve[i + 1]) <= cap;
                if fits {
                    out.push(&entry);
                } else {
                    full = true;
                    if method == SUBMIT_TX || method == SUBMIT_TXS {
                        // It ran: say what it did.
                        out.push(&entry);
                    } else {
                        out.push(&error_entry(&id, &too_large));
                    }
                }
            }
        }
    }
    out.finish()
}

/// Read one entry of a request (a malformed one is counted here).
fn prepare(state: &State, request: Value) -> Prepared {
    match parse_entry(request) {
        Ok(Entry { id, method, params }) => Prepared::Call { id, method, params },
        Err((id, error)) => {
            state.record("unknown", false, Instant::now());
            Prepared::Invalid(error_entry(&id, &error))
        }
    }
}

fn to_json<T: Serialize>(value: &T) -> Result<Vec<u8>, ErrorObject> {
    serde_json::to_vec(value)
        .map_err(|e| ErrorObject::new(INTERNAL_ERROR, format!("cannot serialise the answer: {e}")))
}

fn api_err(e: ApiError) -> ErrorObject {
    ErrorObject::from(&e)
}

/// Run one call and encode its result; on the blocking pool.
fn call(state: &State, method: &str, params: Option<Value>) -> Result<Vec<u8>, ErrorObject> {
    let api = &state.api;
    match Call::parse(method, params, state.limits.max_txs_per_call)? {
        Call::SubmitTx(tx) => match submit(state, vec![*tx]).pop() {
            Some(Ok(s)) => to_json(&s),
            Some(Err(e)) => Err(api_err(e)),
            None => Err(ErrorObject::new(
                INTERNAL_ERROR,
                "the node returned no result for the transaction",
            )),
        },
        Call::SubmitTxs(txs) => {
            let out: Vec<Value> = submit(state, txs)
                .into_iter()
                .map(|r| match r {
                    Ok(Submitted { id }) => json!({ "id": id }),
                    Err(e) => json!({ "error": ErrorObject::from(&e) }),
                })
                .collect();
            to_json(&out)
        }
        Call::GetAccount {
            chain,
            address,
            asset,
        } => to_json(&api.account(chain, address, asset).map_err(api_err)?),
        Call::GetBlock { chain, height } => to_json(&api.block(chain, height).map_err(api_err)?),
        Call::GetCertifiedHeader { chain, height } => {
            to_json(&api.certified_header(chain, height).map_err(api_err)?)
        }
        Call::GetValidators { chain } => to_json(&api.validators(chain).map_err(api_err)?),
        Call::Status => to_json(&api.status()),
        Call::GetSidechains => to_json(&api.sidechains().map_err(api_err)?),
        Call::GetSidechain { chain } => to_json(&api.sidechain(chain).map_err(api_err)?),
        Call::StartTestChain { chain } => to_json(&api.start_test_chain(chain).map_err(api_err)?),
        Call::StopChain { chain } => {
            api.stop_chain(chain).map_err(api_err)?;
            to_json(&())
        }
        Call::Discover => {
            let doc = serde_json::from_str::<Value>(super::OPENRPC_JSON).map_err(|e| {
                ErrorObject::new(INTERNAL_ERROR, format!("the OpenRPC document: {e}"))
            })?;
            to_json(&doc)
        }
    }
}

/// `api.submit`, with one result per transaction whatever it returns.
fn submit(state: &State, txs: Vec<SignedTx>) -> Vec<Result<Submitted, ApiError>> {
    let n = txs.len();
    let mut results = state.api.submit(txs);
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
    results
}
