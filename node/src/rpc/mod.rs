//! The node's JSON-RPC 2.0 interface over HTTP/1.1: [`server`] serves it, [`client`] calls it.
//!
//! Requests are `POST /` with a JSON-RPC 2.0 request object or a batch (array) of them;
//! `GET /health` answers `200 ok`. Parameters are passed by name in an object, or by position
//! in an array (in the order listed below). Optional parameters may be omitted or `null`.
//!
//! | method | parameters | result |
//! |---|---|---|
//! | `banyan_submitTx` | `tx`: tx hex | `{"id": hex}` |
//! | `banyan_submitTxs` | `txs`: array of tx hex | one `{"id": hex}` or `{"error": {"code", "message"}}` per transaction, in order |
//! | `banyan_getAccount` | `address`: hex, `chain`?: number (0), `asset`?: hex (native coin) | [`AccountView`](crate::api::AccountView) |
//! | `banyan_getBlock` | `height`?: number (latest), `chain`?: number (0) | [`BlockView`](crate::api::BlockView) |
//! | `banyan_getCertifiedHeader` | `height`?: number (latest certified), `chain`?: number (0) | [`CertifiedHeaderView`](crate::api::CertifiedHeaderView) |
//! | `banyan_getValidators` | `chain`?: number (0) | [`ValidatorsView`](crate::api::ValidatorsView) |
//! | `banyan_status` | none | [`NodeStatus`](crate::api::NodeStatus) |
//! | `banyan_getSidechains` | none | [`SidechainsView`](crate::api::SidechainsView) |
//! | `banyan_getSidechain` | `chain`: number | [`SidechainView`](crate::api::SidechainView) |
//! | `banyan_startTestChain` (admin) | `chain`: number (not 0) | [`ChainStatus`](crate::api::ChainStatus) |
//! | `banyan_stopChain` (admin) | `chain`: number (not 0) | `null` |
//! | `rpc.discover` | none | the OpenRPC document of these methods (`node/openrpc.json`) |
//!
//! Admin methods start and stop chain instances on the node; they answer [`FORBIDDEN`] unless
//! the node's config sets `[rpc] admin = true` (the devnet does, on loopback).
//!
//! Examples: `{"jsonrpc":"2.0","id":1,"method":"banyan_getAccount","params":{"address":"ab..","chain":0}}`
//! or positionally `"params":["ab..", 0]`; `"params":["0a1b.."]` for `banyan_submitTx`;
//! `"params":[["0a1b..","0c2d.."]]` for `banyan_submitTxs`.
//!
//! A "tx hex" is the lower- or upper-case hex (an optional `0x` is accepted) of the canonical
//! encoding ([`banyan_core::codec::encode`]) of a [`SignedTx`], at most
//! [`MAX_TX_BYTES`] bytes; see [`encode_tx_hex`] and [`decode_tx_hex`].
//!
//! Error codes: the JSON-RPC 2.0 ones ([`PARSE_ERROR`], [`INVALID_REQUEST`],
//! [`METHOD_NOT_FOUND`], [`INVALID_PARAMS`], [`INTERNAL_ERROR`]) and one server code per
//! [`ApiError`] kind ([`UNKNOWN_CHAIN`], [`NOT_FOUND`], [`REJECTED`], [`UNAVAILABLE`],
//! [`FORBIDDEN`]; an
//! [`ApiError::InvalidParams`] is [`INVALID_PARAMS`]). The message is the error's text.
//!
//! Limits ([`server::RpcLimits`]; [`server`] says where each applies). A request refused by
//! a limit changes nothing, except that a batch cut by the response cap ran the calls before
//! the cut. A *client* is an IPv4 address or an IPv6 /64.
//!
//! | limit (default) | when exceeded | HTTP | code |
//! |---|---|---|---|
//! | `max_body_bytes` (8 MiB) | body larger, declared or sent | 413 | [`INVALID_REQUEST`] |
//! | `max_json_values` (100 000) | body holds more JSON values | 413 | [`INVALID_REQUEST`] |
//! | nesting (128, serde_json's) | arrays/objects nested deeper | 200 | [`PARSE_ERROR`] |
//! | `max_batch` (1000) | batch longer (or empty) | 200 | [`INVALID_REQUEST`] |
//! | `max_txs_per_call` (10 000) | `banyan_submitTxs` longer | 200 | [`INVALID_PARAMS`] |
//! | `body_read_timeout` (10 s) | body not received in time | 408 | [`BODY_TIMEOUT`] |
//! | `header_read_timeout` (30 s) | headers not received in time | — | connection closed |
//! | `max_buffered_body_bytes` (128 MiB) | bodies being received fill the server's buffer | 503 | [`BUSY`] |
//! | `max_connections` (1024) | more connections | — | wait in the listen backlog |
//! | `max_connections_per_client` (320) | a client opens more | 429 | [`TOO_MANY_CONNECTIONS`] |
//! | `rate_per_client_per_s` (2000), `burst_per_client` (4000) | a client calls faster (each call of a batch counts) | 429 + `Retry-After` | [`RATE_LIMITED`] |
//! | `max_clients` (4096) | more clients with open connections | 429 | [`TOO_MANY_CONNECTIONS`] |
//! | `max_response_bytes` (32 MiB) | the answers would exceed it | 200 | [`RESPONSE_TOO_LARGE`] on the call that would cross it and every later one |
//! | `max_blocking_jobs` (8) | more requests computing at once | — | they wait their turn |
//!
//! [`client::RpcClient`] retries a call refused with [`RATE_LIMITED`], [`TOO_MANY_CONNECTIONS`]
//! or [`BUSY`] a few times, backing off.

mod body;
pub mod client;
pub mod limiter;
pub mod server;

use crate::api::ApiError;
use banyan_core::codec;
use banyan_core::tx::{SignedTx, MAX_TX_BYTES};
use serde::{Deserialize, Serialize};

/// The JSON is malformed.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid JSON-RPC 2.0 request (or the body is too large: HTTP 413).
pub const INVALID_REQUEST: i64 = -32600;
/// No such method.
pub const METHOD_NOT_FOUND: i64 = -32601;
/// The parameters are missing, of the wrong type or fail to decode.
pub const INVALID_PARAMS: i64 = -32602;
/// The server failed while answering (a bug or a crashed worker).
pub const INTERNAL_ERROR: i64 = -32603;
/// [`ApiError::UnknownChain`].
pub const UNKNOWN_CHAIN: i64 = -32001;
/// [`ApiError::NotFound`].
pub const NOT_FOUND: i64 = -32002;
/// [`ApiError::Rejected`].
pub const REJECTED: i64 = -32003;
/// [`ApiError::Unavailable`].
pub const UNAVAILABLE: i64 = -32004;
/// The client exceeded its call rate (HTTP 429, with `Retry-After`); nothing ran.
pub const RATE_LIMITED: i64 = -32005;
/// The client holds too many connections (HTTP 429); the connection is closed.
pub const TOO_MANY_CONNECTIONS: i64 = -32006;
/// This call's answer is not in the response: it would have taken the response past the size
/// cap, or it came after one that would; it changed nothing (a submission that crosses the
/// cap returns its answer instead). Split the batch.
pub const RESPONSE_TOO_LARGE: i64 = -32007;
/// The request body did not arrive within the timeout (HTTP 408); nothing ran.
pub const BODY_TIMEOUT: i64 = -32008;
/// The server's buffer for request bodies is full (HTTP 503); nothing ran, retry shortly.
pub const BUSY: i64 = -32009;
/// [`ApiError::Forbidden`]: an admin method on a node that does not serve them.
pub const FORBIDDEN: i64 = -32010;

/// `banyan_submitTx`.
pub const SUBMIT_TX: &str = "banyan_submitTx";
/// `banyan_submitTxs`.
pub const SUBMIT_TXS: &str = "banyan_submitTxs";
/// `banyan_getAccount`.
pub const GET_ACCOUNT: &str = "banyan_getAccount";
/// `banyan_getBlock`.
pub const GET_BLOCK: &str = "banyan_getBlock";
/// `banyan_getCertifiedHeader`.
pub const GET_CERTIFIED_HEADER: &str = "banyan_getCertifiedHeader";
/// `banyan_getValidators`.
pub const GET_VALIDATORS: &str = "banyan_getValidators";
/// `banyan_status`.
pub const STATUS: &str = "banyan_status";
/// `banyan_getSidechains`.
pub const GET_SIDECHAINS: &str = "banyan_getSidechains";
/// `banyan_getSidechain`.
pub const GET_SIDECHAIN: &str = "banyan_getSidechain";
/// `banyan_startTestChain` (admin).
pub const START_TEST_CHAIN: &str = "banyan_startTestChain";
/// `banyan_stopChain` (admin).
pub const STOP_CHAIN: &str = "banyan_stopChain";
/// `rpc.discover`: the OpenRPC document describing every method.
pub const RPC_DISCOVER: &str = "rpc.discover";
/// The OpenRPC document (`node/openrpc.json`), kept in the repository and served by
/// `rpc.discover`; a test holds it equal to what the server answers.
pub const OPENRPC_JSON: &str = include_str!("../../openrpc.json");
/// Every method the server knows (also the `method` label values of the RPC metrics, besides
/// `unknown`).
pub const METHODS: [&str; 12] = [
    SUBMIT_TX,
    SUBMIT_TXS,
    GET_ACCOUNT,
    GET_BLOCK,
    GET_CERTIFIED_HEADER,
    GET_VALIDATORS,
    STATUS,
    GET_SIDECHAINS,
    GET_SIDECHAIN,
    START_TEST_CHAIN,
    STOP_CHAIN,
    RPC_DISCOVER,
];

/// A JSON-RPC error object: `{"code": .., "message": ..}`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorObject {
    /// The error code (see the module docs).
    pub code: i64,
    /// What went wrong.
    pub message: String,
}

impl ErrorObject {
    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        ErrorObject {
            code,
            message: message.into(),
        }
    }
}

impl From<&ApiError> for ErrorObject {
    fn from(e: &ApiError) -> Self {
        ErrorObject::new(api_error_code(e), e.to_string())
    }
}

/// The JSON-RPC error code of an [`ApiError`].
pub fn api_error_code(e: &ApiError) -> i64 {
    match e {
        ApiError::UnknownChain(_) => UNKNOWN_CHAIN,
        ApiError::NotFound(_) => NOT_FOUND,
        ApiError::InvalidParams(_) => INVALID_PARAMS,
        ApiError::Rejected(_) => REJECTED,
        ApiError::Unavailable(_) => UNAVAILABLE,
        ApiError::Forbidden(_) => FORBIDDEN,
    }
}

/// Why a tx hex string is not a transaction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TxHexError {
    /// Longer than the hex of [`MAX_TX_BYTES`] bytes.
    #[error("{len} hex digits is longer than a transaction can be ({max} digits)")]
    TooLong {
        /// Hex digits given.
        len: usize,
        /// Most accepted.
        max: usize,
    },
    /// Not hex.
    #[error("not hex: {0}")]
    NotHex(String),
    /// Hex of bytes that are not a signed transaction.
    #[error("not the canonical encoding of a signed transaction: {0}")]
    NotATx(String),
}

/// Hex of the canonical encoding of `tx`.
pub fn encode_tx_hex(tx: &SignedTx) -> String {
    hex::encode(codec::encode(tx))
}

/// Decode the hex of a canonically encoded [`SignedTx`] (an optional `0x` is accepted). The
/// length is checked before anything is allocated.
pub fn decode_tx_hex(s: &str) -> Result<SignedTx, TxHexError> {
    let digits = s.strip_prefix("0x").unwrap_or(s);
    let max = 2 * MAX_TX_BYTES;
    if digits.len() > max {
        return Err(TxHexError::TooLong {
            len: digits.len(),
            max,
        });
    }
    let bytes = hex::decode(digits).map_err(|e| TxHexError::NotHex(e.to_string()))?;
    codec::decode(&bytes, MAX_TX_BYTES).map_err(|e| TxHexError::NotATx(e.to_string()))
}
