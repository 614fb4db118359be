//! What a chain starts from and runs with: its parameters, and the genesis an instance is
//! opened from.

use banyan_core::certificate::Committee;
use banyan_core::hash::Digest;
use banyan_core::header::Block;
use banyan_core::ids::{Amount, ChainId};
use banyan_core::state::State;
use banyan_ledger::StakingRules;
use banyan_vrf::EpochSeed;

use crate::committee::KeyBook;

/// The parameters a chain runs with.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainParams {
    /// The chain.
    pub chain: ChainId,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// Least fee accepted.
    pub min_fee: Amount,
    /// Most transactions per block.
    pub max_block_txs: usize,
    /// Unbonding period and slash fraction.
    pub staking: StakingRules,
}

/// The start of one chain: what [`ChainApp::open`](crate::ChainApp::open) writes into a fresh
/// store, and checks a used store against. The main chain's comes from its genesis file; a
/// sidechain's from its spawn record on the main chain.
///
/// Contract: every method is a pure function of the genesis (the same answers on every node
/// and at every call); `block` is the block at height 0 whose state root is
/// `initial_state().root()`; every member of `committee` has its key in `key_book`.
pub trait ChainGenesis {
    /// The chain's parameters.
    fn params(&self) -> ChainParams;
    /// The block at height 0.
    fn block(&self) -> Block;
    /// The state before block 1.
    fn initial_state(&self) -> State;
    /// The committee of epoch 0.
    fn committee(&self) -> Committee;
    /// The checked keys of the first committee, with their proofs of possession.
    fn key_book(&self) -> &KeyBook;
    /// The seed of epoch 0.
    fn seed(&self) -> EpochSeed;
    /// The network the chain belongs to: the id of the main chain's genesis block, which
    /// every transaction signs (`TxBody::network`).
    fn network(&self) -> Digest;
}
