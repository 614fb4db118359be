//! A block as sync answers carry it: decoded (canonical encodings only), its id and
//! transaction root computed both ways (from the transactions and from their ids), equal.
#![no_main]

use banyan_core::header::{Block, MAX_BLOCK_BYTES};
use banyan_fuzz::canonical;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some(block) = canonical::<Block>(data, MAX_BLOCK_BYTES) else {
        return;
    };
    let _ = block.header.id();
    let from_txs = Block::compute_tx_root(&block.txs);
    let from_ids = Block::tx_root_of_ids(block.txs.iter().map(|t| t.id()).collect());
    assert_eq!(
        from_txs, from_ids,
        "two ways to the transaction root disagree"
    );
});
