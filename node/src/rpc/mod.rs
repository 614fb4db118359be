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
//! | `banyan_getValidators` | `chain`?: number (0) | [`ValidatorsView`](crate::api::ValidatorsView) |
//! | `banyan_status` | none | [`NodeStatus`](crate::api::NodeStatus) |
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
//! [`ApiError`] kind ([`UNKNOWN_CHAIN`], [`NOT_FOUND`], [`REJECTED`], [`UNAVAILABLE`]; an
//! [`ApiError::InvalidParams`] is [`INVALID_PARAMS`]). The message is the error's text.

pub mod client;
pub mod server;

use crate::api::ApiError;
use banyan_core::codec;
use banyan_core::tx::{SignedTx, MAX_TX_BYTES};
use serde::{Deserialize, Serialize};

/// The JSON is malformed.
pub const PARSE_ERROR: i64 = -32700;
/// The JSON is not a valid JSON-RPC 2.0 request (or the body is too large).
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

/// `banyan_submitTx`.
pub const SUBMIT_TX: &str = "banyan_submitTx";
/// `banyan_submitTxs`.
pub const SUBMIT_TXS: &str = "banyan_submitTxs";
/// `banyan_getAccount`.
pub const GET_ACCOUNT: &str = "banyan_getAccount";
/// `banyan_getBlock`.
pub const GET_BLOCK: &str = "banyan_getBlock";
/// `banyan_getValidators`.
pub const GET_VALIDATORS: &str = "banyan_getValidators";
/// `banyan_status`.
pub const STATUS: &str = "banyan_status";
/// Every method the server knows (also the `method` label values of the RPC metrics, besides
/// `unknown`).
pub const METHODS: [&str; 6] = [
    SUBMIT_TX,
    SUBMIT_TXS,
    GET_ACCOUNT,
    GET_BLOCK,
    GET_VALIDATORS,
    STATUS,
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
