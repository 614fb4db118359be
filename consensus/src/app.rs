//! The application behind the consensus: what a block contains and what committing it does.

use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::header::{Block, BlockHeader};
use banyan_core::tx::SignedTx;

/// What the application puts in a block the leader proposes.
#[derive(Clone, Debug, Default)]
pub struct Payload {
    /// Transactions, in execution order.
    pub txs: Vec<SignedTx>,
    /// State root after the block.
    pub state_root: Digest,
    /// Root of outgoing packets.
    pub outbox_root: Digest,
}

/// The application a committee orders blocks for.
///
/// Contract: `verify` is deterministic (every honest replica accepts the same blocks);
/// `commit` is called exactly once per block, in height order, and only for blocks that
/// extend the previously committed one.
pub trait Application {
    /// The payload of a new block on top of `parent`.
    fn propose(&mut self, parent: &Block) -> Payload;
    /// Whether `block` is a valid child of `parent` (its transactions, roots).
    fn verify(&mut self, parent: &Block, block: &Block) -> Result<(), String>;
    /// `block` is final.
    fn commit(&mut self, block: &Block);
    /// Whether this block ends its epoch (deterministic, from the header alone — e.g. a height
    /// rule, or a state root the application knows holds a new validator set). Blocks built on
    /// an epoch-ending block in the same epoch are empty; once it commits, the replica hands
    /// over to the next committee.
    fn ends_epoch(&self, _header: &BlockHeader) -> bool {
        false
    }
}

/// An application with empty blocks and a state root that hashes the chain: enough to order
/// blocks in tests and the simulator. With `epoch_length = Some(l)`, every block at a height
/// multiple of `l` ends its epoch.
#[derive(Clone, Debug, Default)]
pub struct EmptyBlocks {
    /// Blocks per epoch, if epochs end.
    pub epoch_length: Option<u64>,
}

impl EmptyBlocks {
    fn state_root(parent: &Block) -> Digest {
        hash(
            Domain::Custom("banyan/consensus/empty-state"),
            parent.header.state_root.as_bytes(),
        )
    }
}

impl Application for EmptyBlocks {
    fn propose(&mut self, parent: &Block) -> Payload {
        Payload {
            txs: Vec::new(),
            state_root: Self::state_root(parent),
            outbox_root: Digest::ZERO,
        }
    }

    fn verify(&mut self, parent: &Block, block: &Block) -> Result<(), String> {
        if block.header.state_root != Self::state_root(parent) {
            return Err("state root does not follow the parent".into());
        }
        Ok(())
    }

    fn commit(&mut self, _block: &Block) {}

    fn ends_epoch(&self, header: &BlockHeader) -> bool {
        self.epoch_length
            .is_some_and(|l| l > 0 && header.height.0 > 0 && header.height.0.is_multiple_of(l))
    }
}
