//! A JSON-RPC request body as a client sends it: parsed within the value budget, each entry's
//! envelope checked, each call's parameters read into a typed call. Nothing panics, every
//! refusal carries a JSON-RPC error code, and a transaction read from hex reads back the same
//! from its own hex.
#![no_main]

use banyan_wire::rpc::{
    decode_tx_hex, encode_tx_hex, parse_body, parse_entry, Call, INVALID_PARAMS, INVALID_REQUEST,
    METHOD_NOT_FOUND,
};
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

/// The server's defaults (`RpcLimits`): JSON values per body, calls per batch, transactions
/// per call.
const MAX_VALUES: usize = 100_000;
const MAX_BATCH: usize = 1_000;
const MAX_TXS: usize = 10_000;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = parse_body(data, MAX_VALUES) else {
        return;
    };
    let entries = match value {
        Value::Array(items) => items,
        single => vec![single],
    };
    for entry in entries.into_iter().take(MAX_BATCH) {
        let entry = match parse_entry(entry) {
            Ok(e) => e,
            Err((_, error)) => {
                assert_eq!(error.code, INVALID_REQUEST);
                continue;
            }
        };
        match Call::parse(&entry.method, entry.params, MAX_TXS) {
            Ok(Call::SubmitTx(tx)) => {
                assert_eq!(decode_tx_hex(&encode_tx_hex(&tx)).as_ref(), Ok(&*tx));
            }
            Ok(Call::SubmitTxs(txs)) => {
                assert!(txs.len() <= MAX_TXS);
                for tx in txs {
                    assert_eq!(decode_tx_hex(&encode_tx_hex(&tx)).as_ref(), Ok(&tx));
                }
            }
            Ok(_) => {}
            Err(e) => assert!(
                e.code == INVALID_PARAMS || e.code == METHOD_NOT_FOUND,
                "unexpected error code {}",
                e.code
            ),
        }
    }
});
