//! Run a Banyan validator: the banyan command line.
//!
//! The `banyan` binary is a thin `main` over this library, so tests can call in:
//! - [`service`] (`banyan start`): RocksDB, the QUIC network, one [`chain::ChainInstance`] per
//!   chain, JSON-RPC ([`rpc`]) and Prometheus ([`metrics`]) — answering through [`api`];
//! - [`sidechains`]: the sidechains this validator is assigned to, started and stopped
//!   as the main chain assigns them;
//! - [`chain`]: the thread that drives one chain's consensus replica; its frames are [`banyan_wire`];
//! - [`init`], [`config`]: node directories; [`devnet`]: a local network of processes;
//! - [`client_cmd`], [`load`]: `status`, `tx`, `query`, `validator`, `load` over JSON-RPC;
//! - [`keystore`], [`key_dir`]: EIP-2335 keystores and key directories;
//! - [`cli`]: the command line.

pub mod api;
pub mod chain;
pub mod checkpoints;
pub mod cli;
pub mod client_cmd;
pub mod config;
pub mod config_check;
pub mod devnet;
pub mod init;
pub mod key_dir;
pub mod keystore;
pub mod load;
pub mod metrics;
pub mod progress;
pub mod rpc;
pub mod service;
pub mod sidechains;
pub mod turns;
