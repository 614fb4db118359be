//! Identifiers and values: chains, accounts, assets, amounts, and the counters of consensus.

use crate::codec::{Decode, Encode};
use crate::hash::{Digest, Domain, Hasher};

/// A chain. The main chain is [`ChainId::MAIN`]; sidechains get ids from the main chain's
/// sidechain registry.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct ChainId(pub u32);

impl ChainId {
    /// The main chain.
    pub const MAIN: ChainId = ChainId(0);

    /// Whether this is the main chain.
    pub fn is_main(self) -> bool {
        self == Self::MAIN
    }
}

impl std::fmt::Display for ChainId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

/// An account address: the hash of its ed25519 public key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct Address(pub [u8; 32]);

impl Address {
    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parse 64 hex digits (an optional `0x` is accepted).
    pub fn from_hex(s: &str) -> Result<Self, hex::FromHexError> {
        let mut out = [0u8; 32];
        hex::decode_to_slice(s.strip_prefix("0x").unwrap_or(s), &mut out)?;
        Ok(Address(out))
    }
}

impl std::fmt::Debug for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Address({}..)", &self.to_hex()[..12])
    }
}

impl std::fmt::Display for Address {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_hex())
    }
}

/// An asset. [`AssetId::NATIVE`] is the chain's own coin; an asset bridged from another chain
/// has the id [`AssetId::bridged`] of its origin, the same on every chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct AssetId(pub [u8; 32]);

impl AssetId {
    /// The native coin.
    pub const NATIVE: AssetId = AssetId([0u8; 32]);

    /// The id of `asset` of `origin` once carried to another chain.
    pub fn bridged(origin: ChainId, asset: AssetId) -> AssetId {
        let mut h = Hasher::new(Domain::Asset);
        h.update(&origin.0.to_le_bytes()).update(&asset.0);
        AssetId(h.finalize().0)
    }
}

/// Why arithmetic on an [`Amount`] failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AmountError {
    /// The result would exceed `u128::MAX`.
    #[error("amount overflow")]
    Overflow,
    /// The result would be negative.
    #[error("insufficient amount: have {have}, need {need}")]
    Underflow {
        /// What there is.
        have: u128,
        /// What was asked.
        need: u128,
    },
}

/// A quantity of an asset, in its smallest unit. Only checked arithmetic is offered.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
pub struct Amount(pub u128);

impl Amount {
    /// Zero.
    pub const ZERO: Amount = Amount(0);

    /// `self + other`, or an error on overflow.
    pub fn checked_add(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_add(other.0)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }

    /// `self - other`, or an error if `other` is larger.
    pub fn checked_sub(self, other: Amount) -> Result<Amount, AmountError> {
        self.0
            .checked_sub(other.0)
            .map(Amount)
            .ok_or(AmountError::Underflow {
                have: self.0,
                need: other.0,
            })
    }

    /// `self * factor`, or an error on overflow.
    pub fn checked_mul(self, factor: u128) -> Result<Amount, AmountError> {
        self.0
            .checked_mul(factor)
            .map(Amount)
            .ok_or(AmountError::Overflow)
    }
}

impl std::fmt::Display for Amount {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

macro_rules! counter {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Encode, Decode)]
        pub struct $name(pub u64);

        impl $name {
            /// The next value, or `None` at `u64::MAX`.
            pub fn checked_next(self) -> Option<Self> {
                self.0.checked_add(1).map($name)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.0)
            }
        }
    };
}

counter!(
    /// An account's transaction counter: the next transaction must carry the current value.
    Nonce
);
counter!(
    /// A block's position in its chain (genesis is 0).
    Height
);
counter!(
    /// A consensus round within an epoch.
    Round
);
counter!(
    /// A period with one validator set and one set of committees.
    Epoch
);
counter!(
    /// The sequence number of a packet on one (source, destination) channel.
    Sequence
);

/// A validator's id: the hash of its BLS public key.
pub type ValidatorId = Digest;
