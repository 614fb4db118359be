//! A transaction as it arrives by gossip or RPC: decoded (canonical encodings only), its id
//! computed and its signature checked alone and in a batch, with the same answer.
#![no_main]

use banyan_core::tx::{SignedTx, MAX_TX_BYTES};
use banyan_fuzz::canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(tx) = canonical::<SignedTx>(data, MAX_TX_BYTES) else {
        return;
    };
    let _ = tx.id();
    let _ = tx.sender();
    let alone = tx.verify_signature().is_ok();
    let batch = SignedTx::verify_batch(std::slice::from_ref(&tx)).is_ok();
    assert_eq!(
        alone, batch,
        "a signature checked alone and in a batch disagree"
    );
});
