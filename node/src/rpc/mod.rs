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

pub use banyan_wire::rpc::*;

/// The OpenRPC document (`node/openrpc.json`), kept in the repository and served by
/// `rpc.discover`; a test holds it equal to what the server answers.
pub const OPENRPC_JSON: &str = include_str!("../../openrpc.json");

/// The error object of an [`ApiError`].
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
