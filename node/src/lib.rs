//! Run a Banyan validator: the banyan command line.
//!
//! The `banyan` binary is a thin `main` over this library, so tests can call in:
//! - [`keystore`]: EIP-2335 keystores (encrypt, decrypt, bounded parsing);
//! - [`key_dir`]: a validator's key directory on disk (layout, file modes, checks);
//! - [`cli`]: the command line (`banyan keys generate|show`).

pub mod cli;
pub mod key_dir;
pub mod keystore;
