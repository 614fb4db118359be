//! The main chain of Banyan: its genesis and its validator registry.
//!
//! Every chain, the main chain included, is a [`banyan_chain::ChainApp`] (application,
//! mempool, storage). What only the main chain has is here: the [`genesis`] file it starts
//! from (a [`banyan_chain::ChainGenesis`]), the rule that makes each epoch's committee from
//! its own validator [`registry`] ([`OwnRegistry`], a [`banyan_chain::CommitteeSource`]), and
//! the [`identity`] binding of a node's network key to its validator key, and the
//! [`assignment`] of sidechain committees by VRF sortition from its validators.
//!
//! # Identity
//!
//! [`identity`] binds a node's network (TLS) key to its validator key with a BLS signature
//! under a tag of its own.

pub mod assignment;
pub mod genesis;
pub mod identity;
pub mod registry;

pub use assignment::{AssignmentError, Assignments, MAX_ROTATION};
pub use genesis::{build_genesis, Genesis, GenesisError, GenesisFile};
pub use registry::{committee_from_state, registry, OwnRegistry};
