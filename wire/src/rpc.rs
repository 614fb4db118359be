//! The JSON-RPC 2.0 interface's format: method names, error codes, the transaction hex, and
//! the parsing of a request body into typed calls — everything the node decodes from an RPC
//! client before it touches a chain. The node's server (`banyan_node::rpc`) runs the calls;
//! this module only reads them, with bounds, so it can be fuzzed on its own.

use banyan_core::codec;
use banyan_core::ids::{Address, AssetId, ChainId};
use banyan_core::tx::{SignedTx, MAX_TX_BYTES};
use serde::de::{DeserializeSeed, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::cell::Cell;

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
/// The chain is not known to this node.
pub const UNKNOWN_CHAIN: i64 = -32001;
/// No such block, account or record.
pub const NOT_FOUND: i64 = -32002;
/// The node refused the transaction (it says why).
pub const REJECTED: i64 = -32003;
/// The node cannot answer now (starting, stopping, or a chain not running); retry.
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
/// An admin method on a node that does not serve them.
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

/// Why a body did not parse.
pub enum ParseFailure {
    /// More JSON values than allowed.
    TooManyValues,
    /// Not JSON (or nested deeper than 128).
    Json(serde_json::Error),
}

/// Builds a [`Value`] while counting values against a budget.
struct Budgeted<'a> {
    left: &'a Cell<usize>,
    exceeded: &'a Cell<bool>,
}

impl Budgeted<'_> {
    fn spend<E: serde::de::Error>(&self) -> Result<(), E> {
        match self.left.get().checked_sub(1) {
            Some(n) => {
                self.left.set(n);
                Ok(())
            }
            None => {
                self.exceeded.set(true);
                Err(E::custom("too many JSON values"))
            }
        }
    }

    fn again(&self) -> Self {
        Budgeted {
            left: self.left,
            exceeded: self.exceeded,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Budgeted<'_> {
    type Value = Value;

    fn deserialize<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Budgeted<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Bool(v))
    }

    fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }

    fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::from(v))
    }

    fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<Value, E> {
        self.spend()?;
        Ok(serde_json::Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::String(v))
    }

    fn visit_unit<E: serde::de::Error>(self) -> Result<Value, E> {
        self.spend()?;
        Ok(Value::Null)
    }

    fn visit_none<E: serde::de::Error>(self) -> Result<Value, E> {
        self.visit_unit()
    }

    fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<S: SeqAccess<'de>>(self, mut seq: S) -> Result<Value, S::Error> {
        self.spend()?;
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.again())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<M: MapAccess<'de>>(self, mut map: M) -> Result<Value, M::Error> {
        self.spend()?;
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let value = map.next_value_seed(self.again())?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// Parse a body holding at most `max_values` JSON values (serde_json's nesting limit of 128
/// applies too).
pub fn parse_body(body: &[u8], max_values: usize) -> Result<Value, ParseFailure> {
    let left = Cell::new(max_values);
    let exceeded = Cell::new(false);
    let mut de = serde_json::Deserializer::from_slice(body);
    let parsed = Budgeted {
        left: &left,
        exceeded: &exceeded,
    }
    .deserialize(&mut de)
    .and_then(|v| de.end().map(|()| v));
    match parsed {
        Ok(v) => Ok(v),
        Err(_) if exceeded.get() => Err(ParseFailure::TooManyValues),
        Err(e) => Err(ParseFailure::Json(e)),
    }
}

/// One entry of a request, its envelope checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// The id to answer with (`None`: a notification, answered with nothing).
    pub id: Option<Value>,
    /// The method.
    pub method: String,
    /// The parameters, an array or an object, if given.
    pub params: Option<Value>,
}

/// Check the envelope of one request entry. A malformed one gives the id to answer with
/// (`null` when the id itself is what is wrong) and the [`INVALID_REQUEST`] error.
pub fn parse_entry(request: Value) -> Result<Entry, (Value, ErrorObject)> {
    let invalid = |id: Value, message: &str| {
        Err((
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
    Ok(Entry { id, method, params })
}

/// A call with its parameters read and checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Call {
    /// [`SUBMIT_TX`].
    SubmitTx(Box<SignedTx>),
    /// [`SUBMIT_TXS`].
    SubmitTxs(Vec<SignedTx>),
    /// [`GET_ACCOUNT`].
    GetAccount {
        /// The chain (default the main chain).
        chain: ChainId,
        /// The account.
        address: Address,
        /// The asset (default the native coin).
        asset: AssetId,
    },
    /// [`GET_BLOCK`].
    GetBlock {
        /// The chain.
        chain: ChainId,
        /// The height (`None`: the latest).
        height: Option<u64>,
    },
    /// [`GET_CERTIFIED_HEADER`].
    GetCertifiedHeader {
        /// The chain.
        chain: ChainId,
        /// The height (`None`: the latest certified).
        height: Option<u64>,
    },
    /// [`GET_VALIDATORS`].
    GetValidators {
        /// The chain.
        chain: ChainId,
    },
    /// [`STATUS`].
    Status,
    /// [`GET_SIDECHAINS`].
    GetSidechains,
    /// [`GET_SIDECHAIN`].
    GetSidechain {
        /// The sidechain.
        chain: ChainId,
    },
    /// [`START_TEST_CHAIN`].
    StartTestChain {
        /// The chain to start.
        chain: ChainId,
    },
    /// [`STOP_CHAIN`].
    StopChain {
        /// The chain to stop.
        chain: ChainId,
    },
    /// [`RPC_DISCOVER`].
    Discover,
}

impl Call {
    /// Read the parameters of `method`; `max_txs` bounds [`SUBMIT_TXS`]. An unknown method
    /// is [`METHOD_NOT_FOUND`]; bad parameters are [`INVALID_PARAMS`] naming the parameter.
    pub fn parse(method: &str, params: Option<Value>, max_txs: usize) -> Result<Call, ErrorObject> {
        Ok(match method {
            SUBMIT_TX => {
                let p = named(params, &["tx"])?;
                let hex = required_str(&p, "tx", "the hex of a signed transaction")?;
                Call::SubmitTx(Box::new(
                    decode_tx_hex(hex).map_err(|e| bad_params(format!("`tx`: {e}")))?,
                ))
            }
            SUBMIT_TXS => {
                let mut p = named(params, &["txs"])?;
                let Some(Value::Array(items)) = p.remove("txs") else {
                    return Err(bad_params(
                        "`txs` must be an array of signed transactions in hex",
                    ));
                };
                if items.len() > max_txs {
                    return Err(bad_params(format!(
                        "{} transactions in one call exceed the limit of {max_txs}; split them",
                        items.len()
                    )));
                }
                let mut txs = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let hex = item.as_str().ok_or_else(|| {
                        bad_params(format!("transaction {i}: must be a hex string"))
                    })?;
                    txs.push(
                        decode_tx_hex(hex)
                            .map_err(|e| bad_params(format!("transaction {i}: {e}")))?,
                    );
                }
                Call::SubmitTxs(txs)
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
                let asset = match p.get("asset") {
                    None => AssetId::NATIVE,
                    Some(v) => {
                        let s = v.as_str().ok_or_else(|| {
                            bad_params("`asset` must be a hex string of 32 bytes")
                        })?;
                        let mut out = [0u8; 32];
                        hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(s), &mut out).map_err(
                            |e| {
                                bad_params(format!(
                                    "`asset`: {e}; expected 64 hex digits (32 bytes)"
                                ))
                            },
                        )?;
                        AssetId(out)
                    }
                };
                Call::GetAccount {
                    chain,
                    address,
                    asset,
                }
            }
            GET_BLOCK => {
                let (chain, height) = chain_and_height(params)?;
                Call::GetBlock { chain, height }
            }
            GET_CERTIFIED_HEADER => {
                let (chain, height) = chain_and_height(params)?;
                Call::GetCertifiedHeader { chain, height }
            }
            GET_VALIDATORS => Call::GetValidators {
                chain: chain(&named(params, &["chain"])?)?,
            },
            STATUS => {
                named(params, &[])?;
                Call::Status
            }
            GET_SIDECHAINS => {
                named(params, &[])?;
                Call::GetSidechains
            }
            GET_SIDECHAIN => Call::GetSidechain {
                chain: required_chain(&named(params, &["chain"])?)?,
            },
            START_TEST_CHAIN => Call::StartTestChain {
                chain: required_chain(&named(params, &["chain"])?)?,
            },
            STOP_CHAIN => Call::StopChain {
                chain: required_chain(&named(params, &["chain"])?)?,
            },
            RPC_DISCOVER => {
                named(params, &[])?;
                Call::Discover
            }
            other => {
                return Err(ErrorObject::new(
                    METHOD_NOT_FOUND,
                    format!(
                        "method not found: `{}`; this node serves {}",
                        truncate(other, 64),
                        METHODS.join(", ")
                    ),
                ))
            }
        })
    }
}

/// An [`INVALID_PARAMS`] error.
fn bad_params(message: impl Into<String>) -> ErrorObject {
    ErrorObject::new(
        INVALID_PARAMS,
        format!("invalid params: {}", message.into()),
    )
}

/// At most `max` characters of `s`.
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

/// The `height`?, `chain`? parameters of the block methods.
fn chain_and_height(params: Option<Value>) -> Result<(ChainId, Option<u64>), ErrorObject> {
    let p = named(params, &["height", "chain"])?;
    let height = match p.get("height") {
        None => None,
        Some(v) => Some(
            v.as_u64()
                .ok_or_else(|| bad_params("`height` must be a non-negative integer"))?,
        ),
    };
    Ok((chain(&p)?, height))
}

/// `chain`, which must be given (the admin methods act on one named chain).
fn required_chain(p: &Map<String, Value>) -> Result<ChainId, ErrorObject> {
    if p.get("chain").is_none_or(Value::is_null) {
        return Err(bad_params(
            "`chain` is required: the id of the chain to act on",
        ));
    }
    chain(p)
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
