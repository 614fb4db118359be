//! A QUIC frame as a peer sends it: decoded with bounds, and when it decodes, encoding what
//! was decoded gives back the same bytes.
#![no_main]

use banyan_wire::{blocks_frame, blocks_request_frame, chain_of, consensus_frame, txs_frame, Body};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok((chain, body)) = banyan_wire::decode(data) else {
        return;
    };
    assert_eq!(chain_of(data), Some(chain));
    let again = match body {
        Body::Consensus(m) => consensus_frame(chain, &m),
        Body::Txs(txs) => txs_frame(chain, &txs).expect("a decoded batch is within its bound"),
        Body::BlocksRequest { from, to } => blocks_request_frame(chain, from, to),
        Body::Blocks(blocks) => {
            blocks_frame(chain, blocks).expect("decoded blocks are within their bound")
        }
    };
    assert!(
        again[..] == data[..],
        "a frame decoded from bytes that are not its encoding"
    );
});
