//! A sidechain's genesis, derived from its spawn record on the main chain.

use banyan_chain::{ChainGenesis, ChainParams, CommitteeRecord, KeyBook};
use banyan_core::certificate::Committee;
use banyan_core::codec::BoundedVec;
use banyan_core::hash::Digest;
use banyan_core::header::{Block, BlockHeader};
use banyan_core::ids::{AssetId, ChainId, Epoch, Height, Round};
use banyan_core::merkle::empty_root;
use banyan_core::state::State;
use banyan_core::tx::{StateKey, SIDECHAIN_ID_BIT};
use banyan_core::value::{SidechainRecord, StateValue};
use banyan_vrf::EpochSeed;

/// Why a sidechain's genesis could not be derived.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SidechainError {
    /// The id is not a spawned sidechain's.
    #[error("chain {0} is not a sidechain id (spawned sidechains have the high bit set)")]
    NotASidechain(ChainId),
    /// The main-chain block given is not the one its activation starts from.
    #[error(
        "the main-chain block at height {height} ends epoch {ends}, but chain {chain} activates \
         at epoch {activation}"
    )]
    WrongBase {
        /// The sidechain.
        chain: ChainId,
        /// The block's height.
        height: Height,
        /// The epoch it ends.
        ends: Epoch,
        /// The sidechain's activation epoch.
        activation: u32,
    },
    /// The assigned committee does not form.
    #[error("the committee assigned to chain {chain}: {detail}")]
    Committee {
        /// The sidechain.
        chain: ChainId,
        /// What is wrong.
        detail: String,
    },
}

/// Where a sidechain starts (see the crate docs).
#[derive(Clone, Debug)]
pub struct SidechainGenesis {
    params: ChainParams,
    record: SidechainRecord,
    network: Digest,
    block: Block,
    state: State,
    committee: Committee,
    keys: KeyBook,
    seed: EpochSeed,
}

impl SidechainGenesis {
    /// The genesis of sidechain `chain` spawned as `record` on the main chain of `main`
    /// parameters and `network`. `base` is the main-chain block that ended epoch
    /// `record.activation_epoch - 1` (the base of the activation epoch), `committee` the
    /// committee the main chain assigned the sidechain for its activation epoch.
    pub fn derive(
        main: &ChainParams,
        network: Digest,
        chain: ChainId,
        record: &SidechainRecord,
        base: &BlockHeader,
        committee: &CommitteeRecord,
    ) -> Result<Self, SidechainError> {
        if chain.0 & SIDECHAIN_ID_BIT == 0 {
            return Err(SidechainError::NotASidechain(chain));
        }
        if base.chain != ChainId::MAIN
            || base.epoch.0.saturating_add(1) != u64::from(record.activation_epoch)
        {
            return Err(SidechainError::WrongBase {
                chain,
                height: base.height,
                ends: base.epoch,
                activation: record.activation_epoch,
            });
        }
        let params = ChainParams {
            chain,
            epoch_length: u64::from(record.epoch_length),
            min_fee: main.min_fee,
            max_block_txs: main.max_block_txs,
            staking: main.staking,
        };
        // The deposit backs the sidechain's native coins: the spawner holds all of them.
        let state = State::from_entries([(
            StateKey::Balance(record.spawner, AssetId::NATIVE),
            StateValue::Amount(record.deposit),
        )])
        .map_err(|e| SidechainError::Committee {
            chain,
            detail: format!("initial state: {e}"),
        })?;
        let block = Block {
            header: BlockHeader {
                chain,
                epoch: Epoch(0),
                height: Height(0),
                round: Round(0),
                parent: base.id(),
                state_root: state.root(),
                tx_root: Block::compute_tx_root(&[]),
                outbox_root: empty_root(),
                proposer: Digest::ZERO,
                timestamp_ms: base.timestamp_ms,
                vrf_proof: None,
            },
            txs: BoundedVec::empty(),
        };
        let mut keys = KeyBook::new();
        let committee =
            committee
                .to_committee(Epoch(0), &mut keys)
                .map_err(|e| SidechainError::Committee {
                    chain,
                    detail: e.to_string(),
                })?;
        let seed = EpochSeed::genesis(&block.header.id());
        Ok(SidechainGenesis {
            params,
            record: *record,
            network,
            block,
            state,
            committee,
            keys,
            seed,
        })
    }

    /// The spawn record it was derived from.
    pub fn record(&self) -> &SidechainRecord {
        &self.record
    }
}

impl ChainGenesis for SidechainGenesis {
    fn params(&self) -> ChainParams {
        self.params.clone()
    }

    fn block(&self) -> Block {
        self.block.clone()
    }

    fn initial_state(&self) -> State {
        self.state.clone()
    }

    fn committee(&self) -> Committee {
        self.committee.clone()
    }

    fn key_book(&self) -> &KeyBook {
        &self.keys
    }

    fn seed(&self) -> EpochSeed {
        self.seed
    }

    fn network(&self) -> Digest {
        self.network
    }
}
