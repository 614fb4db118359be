//! Name, encode, hash, prove and sign everything Banyan's chains agree on.
//!
//! `banyan-core` is the shared vocabulary of every other crate: identifiers and amounts
//! ([`ids`]), the canonical codec ([`codec`]), domain-separated hashing ([`hash`]), Merkle
//! proofs ([`merkle`]), authenticated maps with existence and non-existence proofs ([`smt`]), keys and signatures ([`keys`]), committees and quorum certificates
//! ([`certificate`]), transactions and their access sets ([`tx`]) and block headers
//! ([`header`]).
//!
//! Architecture invariant: no async, no I/O, no global state. Everything here is a pure
//! function of its inputs (key generation takes the RNG as an argument).
pub mod certificate;
pub mod codec;
pub mod hash;
pub mod header;
pub mod ids;
pub mod keys;
pub mod merkle;
pub mod smt;
pub mod state;
pub mod tx;
pub mod value;
