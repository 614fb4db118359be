//! What every Banyan chain is: the application behind consensus, its mempool, its storage.
//!
//! A node hosts several chain instances (the main chain and the sidechains it is assigned
//! to), and every one of them is this crate, parametrised by
//! [`ChainId`](banyan_core::ids::ChainId) and by two things a chain's policy decides: where it
//! starts ([`ChainGenesis`]: the main chain's genesis file, a sidechain's spawn record) and
//! where each next committee comes from ([`CommitteeSource`]: the main chain's own validator
//! registry, a sidechain's assignment by the main chain). The ledger rules live in
//! [`banyan_ledger::Ledger`], the executor in [`banyan_dag`].
//!
//! # Fees and admission
//!
//! Every transaction pays a native fee of at least the chain's `min_fee` (genesis parameter):
//! spam has a cost. The ledger's *admission* checks — right chain, nonce equal to the
//! sender's, nonce not exhausted, balance covering the fee — decide whether a transaction is
//! charged at all; one refused there pays nothing. So a block may not contain any transaction
//! that fails admission: a block of free junk would make spam free.
//!
//! - The [`mempool`] refuses oversized transactions, other chains, fees below the minimum,
//!   nonces below the committed one ("stale or replayed nonce") or too far above it,
//!   duplicates, and anything over its limits; it checks signatures (and stake proofs of
//!   possession) in one batch.
//! - A leader ([`ChainApp`]'s `propose`) takes, per sender, the run of consecutive nonces
//!   starting at the sender's nonce in the parent's state, executes, and drops any
//!   transaction refused at admission (and that sender's later ones) before proposing.
//! - A follower (`verify`) checks the block's limits, chain ids, minimum fees and signatures
//!   (skipping transactions exactly as its mempool holds them), executes on the parent's
//!   state, refuses any admission failure, and compares the state and outbox roots.
//!
//! # Epochs
//!
//! A block ends its epoch when its height is a positive multiple of `epoch_length`. The
//! committee of epoch `e + 1` is drawn by the chain's [`CommitteeSource`] from the state after
//! the block that ends epoch `e`: stake and unstake transactions committed during epoch `e`
//! change the validator set at the next boundary, not before. The seed of
//! epoch `e + 1` is [`banyan_vrf::next_epoch_seed`] of epoch `e`'s seed and the VRF outputs
//! of its committed blocks (the proofs in their headers, checked by the consensus leader
//! election), in height order, up to `min(epoch_length, 4096)` of them. The outputs are not
//! stored separately: after a restart they are read back from the epoch's stored blocks.
//!
//! # Storage and atomicity
//!
//! [`storage::ChainStore`] keeps a chain in a RocksDB store shared with other chains, every key
//! prefixed by the 4-byte big-endian chain id (the module docs give the full layout). A
//! committed block, its receipt summaries, its packets, its state writes, the proofs of
//! possession of keys first staked in it, the committed tip and, when it ends an epoch, the
//! next epoch's record are written in **one** batch with `Durability::Sync`. Memory is updated
//! only after that write succeeds; a failed write makes `commit` return a fatal
//! [`banyan_consensus::AppError`], which stops the replica, and the app commits nothing more,
//! so the node stops rather than diverges. Consensus safety data is
//! written synced before the replica signs.

pub mod app;
pub mod committee;
pub mod engine;
pub mod error;
pub mod evidence;
pub mod mempool;
pub mod sim;
pub mod spec;
pub mod storage;

pub use app::{ChainApp, CommitObserver, NoopObserver, SharedChainApp};
pub use committee::{CommitteeError, CommitteeRecord, CommitteeSource, KeyBook, MemberRecord};
pub use engine::{
    Action, ChainEngine, EngineError, EngineInput, EngineSetup, Lane, Note, Peer, PeerKey,
    VerifierFactory,
};
pub use error::ChainError;
pub use mempool::{nonce_in, Mempool, MempoolError, MempoolLimits, SignatureCounts};
pub use spec::{ChainGenesis, ChainParams};
pub use storage::{ChainStore, CommittedTip, EpochRecord, ReceiptSummary};
