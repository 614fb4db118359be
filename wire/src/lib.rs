//! What Banyan nodes decode from outside, with bounds: peer frames over QUIC (this module's
//! root) and JSON-RPC requests ([`rpc`]).
//!
//! A peer frame is what a node puts in a QUIC frame: which chain it is for, what it carries,
//! and the bytes.
//!
//! ```text
//! frame = chain id (u32 LE) | kind (u8) | body
//! kind 0: a consensus message (banyan_consensus::Message, bounded by MAX_MESSAGE_BYTES)
//! kind 1: a batch of transactions for the mempool (at most MAX_GOSSIP_TXS)
//! kind 2: a request for committed blocks, heights `from..=to` (two u64)
//! kind 3: committed blocks in height order (at most MAX_BLOCKS_PER_FRAME)
//! ```
//! Kinds 2 and 3 let a node outside the current committee follow the chain epoch by epoch:
//! the blocks are checked against an epoch-change proof before anything is applied.
//! Decoding is bounded: a frame never makes the node allocate more than its own length, and
//! every failure is a typed error naming what was wrong.

use banyan_consensus::{Message, MAX_MESSAGE_BYTES};
use banyan_core::codec::{self, BoundedVec};
use banyan_core::header::{Block, MAX_BLOCK_BYTES};
use banyan_core::ids::ChainId;
use banyan_core::tx::{SignedTx, MAX_TX_BYTES};
use bytes::Bytes;

pub mod rpc;

/// The largest frame a node sends or accepts: a consensus message of the largest size the
/// consensus decodes ([`MAX_MESSAGE_BYTES`], which holds a block of [`MAX_BLOCK_BYTES`]) with
/// its 5-byte prefix. The transport's limit is set to this, so any block the consensus accepts
/// can travel; sync answers stay far below it (`max_sync_response_bytes`,
/// [`BLOCKS_FRAME_BUDGET`]).
pub const MAX_FRAME_BYTES: usize = 5 + MAX_MESSAGE_BYTES;

// The transport's length prefix is a u32. A sync answer or a kind-3 frame carries blocks up to
// its budget or one block, whichever is more, so it fits a frame when the budget does not pass
// the largest block.
const _: () = assert!(MAX_FRAME_BYTES <= u32::MAX as usize);
const _: () = assert!(BLOCKS_FRAME_BUDGET <= MAX_BLOCK_BYTES);
const _: () = assert!(banyan_consensus::DEFAULT_SYNC_RESPONSE_BYTES <= MAX_BLOCK_BYTES);

/// Most transactions in one gossip frame.
pub const MAX_GOSSIP_TXS: usize = 4_096;

/// Most blocks in one kind-3 frame.
pub const MAX_BLOCKS_PER_FRAME: usize = 64;
/// A kind-3 frame adds no block that would take it past this many bytes (it always carries at
/// least one).
pub const BLOCKS_FRAME_BUDGET: usize = 8 << 20;

/// A decoded frame body.
#[derive(Debug)]
pub enum Body {
    /// Consensus.
    Consensus(Message),
    /// Transactions to add to the mempool.
    Txs(Vec<SignedTx>),
    /// Committed blocks wanted, heights `from..=to`.
    BlocksRequest {
        /// First height.
        from: u64,
        /// Last height.
        to: u64,
    },
    /// Committed blocks, in height order.
    Blocks(Vec<Block>),
}

/// Why a frame was refused.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// Shorter than its 5-byte prefix.
    #[error("frame of {0} bytes is shorter than its 5-byte prefix")]
    Short(usize),
    /// Unknown kind byte.
    #[error("unknown frame kind {0}")]
    Kind(u8),
    /// The body does not decode.
    #[error("frame body does not decode: {0}")]
    Body(String),
}

/// The chain a frame is for, read from its prefix without decoding the body (`None` for a
/// frame shorter than the prefix).
pub fn chain_of(frame: &[u8]) -> Option<ChainId> {
    let id: [u8; 4] = frame.get(..4)?.try_into().ok()?;
    Some(ChainId(u32::from_le_bytes(id)))
}

/// Encode a consensus message for `chain`.
pub fn consensus_frame(chain: ChainId, message: &Message) -> Bytes {
    frame(chain, 0, &message.encode())
}

/// Encode a transaction batch for `chain`.
pub fn txs_frame(chain: ChainId, txs: &[SignedTx]) -> Result<Bytes, WireError> {
    let list = BoundedVec::<SignedTx, MAX_GOSSIP_TXS>::new(txs.to_vec())
        .map_err(|_| WireError::Body(format!("more than {MAX_GOSSIP_TXS} transactions")))?;
    Ok(frame(chain, 1, &codec::encode(&list)))
}

/// Encode a request for committed blocks `from..=to`.
pub fn blocks_request_frame(chain: ChainId, from: u64, to: u64) -> Bytes {
    let mut body = [0u8; 16];
    body[..8].copy_from_slice(&from.to_le_bytes());
    body[8..].copy_from_slice(&to.to_le_bytes());
    frame(chain, 2, &body)
}

/// Encode committed blocks (the caller keeps within [`MAX_BLOCKS_PER_FRAME`] and the budget).
pub fn blocks_frame(chain: ChainId, blocks: Vec<Block>) -> Result<Bytes, WireError> {
    let list = BoundedVec::<Block, MAX_BLOCKS_PER_FRAME>::new(blocks)
        .map_err(|_| WireError::Body(format!("more than {MAX_BLOCKS_PER_FRAME} blocks")))?;
    Ok(frame(chain, 3, &codec::encode(&list)))
}

fn frame(chain: ChainId, kind: u8, body: &[u8]) -> Bytes {
    let mut out = Vec::with_capacity(5 + body.len());
    out.extend_from_slice(&chain.0.to_le_bytes());
    out.push(kind);
    out.extend_from_slice(body);
    Bytes::from(out)
}

/// Decode a frame.
pub fn decode(bytes: &[u8]) -> Result<(ChainId, Body), WireError> {
    if bytes.len() < 5 {
        return Err(WireError::Short(bytes.len()));
    }
    let chain = ChainId(u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]));
    let body = &bytes[5..];
    match bytes[4] {
        0 => Message::decode(body)
            .map(|m| (chain, Body::Consensus(m)))
            .map_err(|e| WireError::Body(e.to_string())),
        1 => {
            let limit = MAX_GOSSIP_TXS
                .saturating_mul(MAX_TX_BYTES)
                .saturating_add(16);
            codec::decode::<BoundedVec<SignedTx, MAX_GOSSIP_TXS>>(body, limit)
                .map(|v| (chain, Body::Txs(v.into_inner())))
                .map_err(|e| WireError::Body(e.to_string()))
        }
        2 => {
            let b: [u8; 16] = body.try_into().map_err(|_| {
                WireError::Body(format!("block request of {} bytes, not 16", body.len()))
            })?;
            let from = u64::from_le_bytes(b[..8].try_into().expect("8 of 16 bytes"));
            let to = u64::from_le_bytes(b[8..].try_into().expect("8 of 16 bytes"));
            Ok((chain, Body::BlocksRequest { from, to }))
        }
        3 => {
            let limit = BLOCKS_FRAME_BUDGET.saturating_add(MAX_BLOCK_BYTES);
            codec::decode::<BoundedVec<Block, MAX_BLOCKS_PER_FRAME>>(body, limit)
                .map(|v| (chain, Body::Blocks(v.into_inner())))
                .map_err(|e| WireError::Body(e.to_string()))
        }
        k => Err(WireError::Kind(k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn short_and_unknown_frames_are_refused() {
        assert!(matches!(decode(&[1, 2]), Err(WireError::Short(2))));
        assert!(matches!(decode(&[0, 0, 0, 0, 9]), Err(WireError::Kind(9))));
        assert!(matches!(
            decode(&[0, 0, 0, 0, 2, 1]),
            Err(WireError::Body(_))
        ));
        assert!(matches!(
            decode(&[0, 0, 0, 0, 0, 0xff, 0xff]),
            Err(WireError::Body(_))
        ));
        // A length prefix claiming 2^60 transactions allocates nothing and fails.
        let mut f = vec![0, 0, 0, 0, 1];
        f.extend_from_slice(&(1u64 << 60).to_le_bytes());
        assert!(matches!(decode(&f), Err(WireError::Body(_))));
    }

    #[test]
    fn empty_batch_round_trips() {
        let f = txs_frame(ChainId(7), &[]).expect("empty batch encodes");
        let (chain, body) = decode(&f).expect("decodes");
        assert_eq!(chain, ChainId(7));
        assert!(matches!(body, Body::Txs(v) if v.is_empty()));
        let f = blocks_request_frame(ChainId(1), 5, 9);
        assert!(matches!(
            decode(&f),
            Ok((ChainId(1), Body::BlocksRequest { from: 5, to: 9 }))
        ));
        let f = blocks_frame(ChainId(1), Vec::new()).expect("encodes");
        assert!(matches!(decode(&f), Ok((_, Body::Blocks(v))) if v.is_empty()));
    }
}
