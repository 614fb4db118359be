//! What a running node answers: the contract between the node's chains and its JSON-RPC
//! server. Every view is plain data that serialises to the JSON the RPC returns; amounts are
//! decimal strings (they exceed JSON's safe integers), hashes and keys lower-case hex.

use banyan_core::ids::{Address, AssetId, ChainId};
use banyan_core::tx::SignedTx;
use serde::{Deserialize, Serialize};

/// Why a query or submission failed. Each maps to one JSON-RPC error code.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// This node runs no chain with that id.
    #[error(
        "unknown chain {0}: this node does not run it (`banyan status` lists the chains it runs)"
    )]
    UnknownChain(u32),
    /// Nothing at that height / with that id.
    #[error("not found: {0}")]
    NotFound(String),
    /// The request is well-formed JSON-RPC but its parameters are wrong.
    #[error("invalid params: {0}")]
    InvalidParams(String),
    /// The transaction was refused (bad signature, wrong chain, stale or replayed nonce,
    /// mempool full, fee too low...). Nothing changed.
    #[error("transaction rejected: {0}")]
    Rejected(String),
    /// The node cannot answer right now (starting, shutting down, storage failure).
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// The method is an admin method and this node does not serve them.
    #[error("forbidden: {0}")]
    Forbidden(String),
}

/// The result of submitting one transaction.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Submitted {
    /// Transaction id (hex).
    pub id: String,
}

/// A node's progress on one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainStatus {
    /// Chain id.
    pub chain: u32,
    /// Height of the last committed block.
    pub height: u64,
    /// Id of the last committed block (hex).
    pub block_id: String,
    /// State root after the last committed block (hex).
    pub state_root: String,
    /// Current epoch.
    pub epoch: u64,
    /// Current consensus round.
    pub round: u64,
    /// This node's index in the current committee, if it is a member.
    pub committee_index: Option<usize>,
    /// Members of the current committee.
    pub committee_size: usize,
    /// Transactions waiting in the mempool.
    pub mempool_txs: usize,
}

/// The node as a whole.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeStatus {
    /// `banyan` version.
    pub version: String,
    /// This node's name (from its config).
    pub name: String,
    /// This node's validator id (hex of the BLS key's id).
    pub validator_id: String,
    /// The network's id (hex): its main chain's genesis block id. Transactions sign it
    /// (`TxBody::network`), so one signed for another network is refused here.
    pub network: String,
    /// Peers connected over QUIC.
    pub peers_connected: usize,
    /// Peers configured.
    pub peers_configured: usize,
    /// One entry per chain this node runs.
    pub chains: Vec<ChainStatus>,
}

impl NodeStatus {
    /// The network's id, parsed; a node that reports a malformed one is named in the error.
    pub fn network_id(&self) -> anyhow::Result<banyan_core::hash::Digest> {
        banyan_core::hash::Digest::from_hex(&self.network).map_err(|e| {
            anyhow::anyhow!(
                "node {} reports a malformed network id {:?}: {e}",
                self.name,
                self.network
            )
        })
    }
}

/// An account on one chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountView {
    /// Chain id.
    pub chain: u32,
    /// Address (hex).
    pub address: String,
    /// Asset id (hex; all zero is the native coin).
    pub asset: String,
    /// Balance, decimal.
    pub balance: String,
    /// Next nonce the account must use.
    pub nonce: u64,
    /// Height the answer was read at.
    pub height: u64,
}

/// One transaction of a block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TxView {
    /// Transaction id (hex).
    pub id: String,
    /// Sender address (hex).
    pub sender: String,
    /// Sender nonce.
    pub nonce: u64,
    /// Fee, decimal.
    pub fee: String,
    /// Kind, e.g. `transfer`, `stake`.
    pub kind: String,
    /// Whether its effect applied (false: it failed, fee and nonce still taken).
    pub applied: bool,
    /// Why it failed, when it did.
    pub failure: Option<String>,
}

/// A committed block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockView {
    /// Chain id.
    pub chain: u32,
    /// Height.
    pub height: u64,
    /// Block id (hex).
    pub id: String,
    /// Parent id (hex).
    pub parent: String,
    /// Epoch.
    pub epoch: u64,
    /// Round.
    pub round: u64,
    /// State root after it (hex).
    pub state_root: String,
    /// Transactions root (hex).
    pub tx_root: String,
    /// Proposer's validator id (hex).
    pub proposer: String,
    /// Proposer's timestamp, ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Its transactions, in order.
    pub txs: Vec<TxView>,
}

/// A committed block's commit proof ([`banyan_core::header::CertifiedHeader`]): what a light
/// client of the chain checks against the committee of the block's epoch.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertifiedHeaderView {
    /// Chain id.
    pub chain: u32,
    /// Height of the committed block.
    pub height: u64,
    /// Its id (hex).
    pub id: String,
    /// Its epoch (the committee that certified it).
    pub epoch: u64,
    /// Headers in the proof: the block and its descendants up to the certified one.
    pub headers: usize,
    /// Committee indices that signed the commit QC.
    pub signers: Vec<usize>,
    /// The canonical encoding of the `CertifiedHeader` (hex).
    pub proof: String,
}

/// A sidechain as the main chain records it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidechainView {
    /// Its chain id.
    pub chain: u32,
    /// The account that spawned it (hex); the only one that may retire it.
    pub spawner: String,
    /// Native coins locked while it is active (decimal).
    pub deposit: String,
    /// Validators in its committee.
    pub committee_size: u16,
    /// Target time between its blocks.
    pub block_time_ms: u32,
    /// Its blocks per epoch.
    pub epoch_length: u32,
    /// The main-chain epoch from which it runs.
    pub activation_epoch: u32,
    /// `active` or `retired`.
    pub status: String,
    /// Once retired: the first main-chain epoch without a committee.
    pub retired_from_epoch: Option<u32>,
    /// The main chain's latest epoch, which `committee`, `joined` and `left` are of.
    pub main_epoch: u64,
    /// Validator ids (hex) of the committee the main chain assigned it for `main_epoch`, in
    /// canonical order; empty when it does not run in that epoch.
    pub committee: Vec<String>,
    /// Members of `committee` that were not in the previous epoch's.
    pub joined: Vec<String>,
    /// Members of the previous epoch's committee no longer in `committee`.
    pub left: Vec<String>,
    /// Its instance on the node that answered, if that node hosts it.
    pub hosted: Option<ChainStatus>,
    /// Its latest checkpoint on the main chain, if any (once the retirement has taken effect,
    /// the final one, against which its balances settle).
    pub checkpoint: Option<CheckpointView>,
    /// Native coins the main chain holds for it (decimal): the deposit while active; once
    /// retired, what is left of it after the balances settled so far.
    pub locked: String,
}

/// A sidechain block the main chain recorded as its checkpoint: verified against the
/// committee the main chain assigned.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckpointView {
    /// The block's height.
    pub height: u64,
    /// Its id (hex).
    pub block_id: String,
    /// The sidechain epoch of the committee that certified it.
    pub epoch: u64,
    /// The main-chain epoch whose assignment that committee is.
    pub main_epoch: u64,
}

/// The sidechains the main chain records, as of its latest committed block.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SidechainsView {
    /// The main chain's height they were read at.
    pub height: u64,
    /// Every sidechain ever spawned, active or retired, by chain id.
    pub sidechains: Vec<SidechainView>,
}

/// One validator of the registry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorView {
    /// Account address that staked (hex).
    pub address: String,
    /// Validator id (hex).
    pub validator_id: String,
    /// BLS public key (hex).
    pub bls_key: String,
    /// Stake, decimal.
    pub stake: String,
    /// Index in the current committee, if it is in it.
    pub committee_index: Option<usize>,
}

/// The validator set of a chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ValidatorsView {
    /// Chain id.
    pub chain: u32,
    /// Current epoch.
    pub epoch: u64,
    /// The committee of the current epoch, in committee order.
    pub committee: Vec<ValidatorView>,
    /// The registry as of the last committed block: the committee of the next epoch.
    pub registry: Vec<ValidatorView>,
}

/// What a node answers. Implemented by the running node; the RPC server calls it from its
/// own tasks, so every method must be cheap or hand its work off.
pub trait NodeApi: Send + Sync + 'static {
    /// Check the transactions' signatures (batched), then add them to the mempool of their
    /// chain and gossip them. One result per transaction, in order.
    fn submit(&self, txs: Vec<SignedTx>) -> Vec<Result<Submitted, ApiError>>;
    /// Balance and nonce of `address` in `asset` on `chain`.
    fn account(
        &self,
        chain: ChainId,
        address: Address,
        asset: AssetId,
    ) -> Result<AccountView, ApiError>;
    /// The committed block at `height` on `chain` (`None`: the latest).
    fn block(&self, chain: ChainId, height: Option<u64>) -> Result<BlockView, ApiError>;
    /// The commit proof of the committed block at `height` on `chain` (`None`: the latest
    /// block that has one).
    fn certified_header(
        &self,
        chain: ChainId,
        height: Option<u64>,
    ) -> Result<CertifiedHeaderView, ApiError>;
    /// The validator set of `chain`.
    fn validators(&self, chain: ChainId) -> Result<ValidatorsView, ApiError>;
    /// The node's status.
    fn status(&self) -> NodeStatus;
    /// The sidechains recorded on the main chain.
    fn sidechains(&self) -> Result<SidechainsView, ApiError>;
    /// One sidechain: its record, its committee this main-chain epoch and how it changed.
    fn sidechain(&self, chain: ChainId) -> Result<SidechainView, ApiError>;
    /// Admin: start hosting the test chain `chain` (derived from the main chain's genesis),
    /// resuming from its stored state if it ran here before. Its status once started.
    fn start_test_chain(&self, chain: ChainId) -> Result<ChainStatus, ApiError>;
    /// Admin: stop hosting `chain` (not the main chain); its data stays in the store.
    fn stop_chain(&self, chain: ChainId) -> Result<(), ApiError>;
}
