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

/// Why the application refused or failed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppError {
    /// The block is not a valid child of its parent (its transactions, roots...): it is
    /// refused and the replica goes on.
    #[error("invalid block: {0}")]
    Invalid(String),
    /// The application cannot go on (its storage failed, its state is not what the chain
    /// says): the replica must stop, whatever it was doing.
    #[error("application failed: {0}")]
    Fatal(String),
}

impl AppError {
    /// Whether the replica must stop.
    pub fn is_fatal(&self) -> bool {
        matches!(self, AppError::Fatal(_))
    }
}

/// The application a committee orders blocks for.
///
/// Contract: `verify` is deterministic (every honest replica accepts the same blocks);
/// `commit` is called exactly once per block, in height order, and only for blocks that
/// extend the previously committed one.
pub trait Application {
    /// The payload of a new block on top of `parent` (an error is fatal: an application that
    /// has nothing to propose proposes an empty block).
    fn propose(&mut self, parent: &Block) -> Result<Payload, AppError>;
    /// Whether `block` is a valid child of `parent` (its transactions, roots).
    fn verify(&mut self, parent: &Block, block: &Block) -> Result<(), AppError>;
    /// `block` is final. An error here is fatal: the block is final whatever the application
    /// says, so an application that cannot record it cannot go on.
    fn commit(&mut self, block: &Block) -> Result<(), AppError>;
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
    fn propose(&mut self, parent: &Block) -> Result<Payload, AppError> {
        Ok(Payload {
            txs: Vec::new(),
            state_root: Self::state_root(parent),
            outbox_root: Digest::ZERO,
        })
    }

    fn verify(&mut self, parent: &Block, block: &Block) -> Result<(), AppError> {
        if block.header.state_root != Self::state_root(parent) {
            return Err(AppError::Invalid(
                "state root does not follow the parent".into(),
            ));
        }
        Ok(())
    }

    fn commit(&mut self, _block: &Block) -> Result<(), AppError> {
        Ok(())
    }

    fn ends_epoch(&self, header: &BlockHeader) -> bool {
        self.epoch_length
            .is_some_and(|l| l > 0 && header.height.0 > 0 && header.height.0.is_multiple_of(l))
    }
}
