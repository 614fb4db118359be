//! A Banyan sidechain's life: its genesis from the spawn record, its committees from the main
//! chain.
//!
//! A sidechain is one more instance of the chain engine ([`banyan_chain`]), not a second code
//! path: what makes it a sidechain is where it starts and who certifies it.
//!
//! - [`SidechainGenesis`] — its start, derived from what the main chain recorded: the spawn
//!   record (parameters, spawner, deposit), the main-chain block that ended the epoch before
//!   its activation (its genesis block's parent, so the sidechain is bound to one main-chain
//!   history), and the committee the main chain assigned it for its activation epoch.
//! - [`MainChainCommittees`] — its [`banyan_chain::CommitteeSource`]: each epoch of the
//!   sidechain is certified by the committee the main chain assigned it for the main epoch in
//!   progress when the previous sidechain epoch ended (see [`banyan_mainchain::assignment`]).
//!   The sidechain follows its main chain: at the end of an epoch it waits, if it must, until
//!   its main chain has committed past that moment.
//!
//! # Funding
//!
//! The sidechain's native coins are backed by the spawner's deposit, locked on the main chain
//! while the sidechain runs: its genesis credits the spawner with exactly the deposit, so the
//! native supply of all chains is the main chain's supply with the deposit counted once on
//! each side of the lock.

pub mod committee;
pub mod genesis;

pub use committee::{serving_epoch, MainChainCommittees};
pub use genesis::{SidechainError, SidechainGenesis};
