//! Errors of the executor.

use banyan_core::tx::StateKey;
use banyan_core::value::KindMismatch;

/// A transaction touched state outside its declared access set, or misused a key. The
/// transaction's semantics ([`Vm`](crate::Vm)) broke its contract; the block cannot be executed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// Read of a key not in the access set.
    #[error("read of undeclared key {0:?}")]
    UndeclaredRead(StateKey),
    /// Write of a key not declared as written.
    #[error("write of key {0:?}, which is not declared as written")]
    UndeclaredWrite(StateKey),
    /// A value of the wrong kind read or written.
    #[error(transparent)]
    Kind(#[from] KindMismatch),
}

/// Why a block could not be executed. Every variant leaves the state untouched (execution
/// never mutates the [`State`](banyan_core::state::State) it is given).
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum ExecError {
    /// The block holds more transactions than a block may.
    #[error("block of {count} transactions exceeds the limit of {limit}")]
    TooManyTransactions {
        /// Transactions given.
        count: usize,
        /// The limit ([`MAX_BLOCK_TXS`](crate::MAX_BLOCK_TXS)).
        limit: usize,
    },
    /// A transaction declares more keys than allowed.
    #[error("transaction {tx} declares {count} keys, more than {limit}")]
    TooManyKeys {
        /// Index of the transaction in the block.
        tx: usize,
        /// Keys declared.
        count: usize,
        /// The limit ([`MAX_ACCESS_KEYS`](banyan_core::tx::MAX_ACCESS_KEYS)).
        limit: usize,
    },
    /// A transaction declares a key twice (as read and written, or twice in one list).
    #[error("transaction {tx} declares key {key:?} twice")]
    DuplicateKey {
        /// Index of the transaction in the block.
        tx: usize,
        /// The key.
        key: StateKey,
    },
    /// A transaction accessed state outside its access set (the lowest such index is reported,
    /// the one serial execution meets first).
    #[error("transaction {tx}: {source}")]
    Access {
        /// Index of the transaction in the block.
        tx: usize,
        /// What it did.
        source: AccessError,
    },
    /// The transaction semantics panicked on a transaction (a bug in the [`Vm`](crate::Vm)).
    #[error("transaction {tx}: the transaction semantics panicked")]
    VmPanicked {
        /// Index of the transaction in the block.
        tx: usize,
    },
    /// An invariant of the executor itself is broken (a bug here, not bad input).
    #[error("executor invariant broken: {0}")]
    Invariant(&'static str),
}

impl ExecError {
    /// Whether the error is a bug of this node (the executor or the transaction semantics)
    /// rather than a block that cannot be executed. A fatal error should stop the node; any
    /// other rejects the block.
    pub fn is_fatal(&self) -> bool {
        matches!(self, ExecError::VmPanicked { .. } | ExecError::Invariant(_))
    }

    /// Index of the transaction at fault, if any.
    pub fn tx(&self) -> Option<usize> {
        match self {
            ExecError::TooManyKeys { tx, .. }
            | ExecError::DuplicateKey { tx, .. }
            | ExecError::Access { tx, .. }
            | ExecError::VmPanicked { tx } => Some(*tx),
            ExecError::TooManyTransactions { .. } | ExecError::Invariant(_) => None,
        }
    }
}
