//! Errors of a chain instance.

use banyan_core::hash::Digest;
use banyan_core::ids::Height;

use crate::committee::CommitteeError;

/// Why a chain instance failed: storage, a damaged or foreign data directory, or a broken
/// invariant that stops the node rather than letting it diverge.
#[derive(Debug, thiserror::Error)]
pub enum ChainError {
    /// The store failed.
    #[error("storage failure: {0}; check the disk and the data directory, then restart")]
    Store(String),
    /// Stored data does not decode or is inconsistent.
    #[error("corrupt data in the store: {what}: {detail}; restore the data directory or resync")]
    Corrupt {
        /// What was being read.
        what: String,
        /// What is wrong.
        detail: String,
    },
    /// The data directory holds another chain.
    #[error(
        "data dir belongs to another chain: it holds genesis {stored}, the genesis file gives \
         {expected}: use a new --data-dir or --reset"
    )]
    ForeignDataDir {
        /// The stored genesis id.
        stored: Digest,
        /// The genesis file's block id.
        expected: Digest,
    },
    /// A caller passed something invalid.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// Execution failed (a broken contract between ledger and executor).
    #[error("block execution failed: {0}")]
    Exec(String),
    /// The next committee could not be formed.
    #[error(transparent)]
    Committee(#[from] CommitteeError),
    /// A committed block does not extend the committed chain.
    #[error(
        "block {id} at height {height} does not extend the committed tip at height {tip}: \
         commits must come in height order"
    )]
    OutOfOrder {
        /// The block.
        id: Digest,
        /// Its height.
        height: Height,
        /// The committed height.
        tip: Height,
    },
    /// Executing a certified block gave another state root: this node diverged.
    #[error(
        "state diverged at height {height}: the certified block says {expected}, execution \
         gives {got}; the data directory is inconsistent: resync the node"
    )]
    Diverged {
        /// The block height.
        height: Height,
        /// The header's root.
        expected: Digest,
        /// The computed root.
        got: Digest,
    },
}
