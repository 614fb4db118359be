//! The validator set an epoch is drawn from.

use crate::error::VrfError;
use banyan_core::certificate::CommitteeMember;
use banyan_core::keys::PopVerifiedKey;

/// Most validators in one set.
pub const MAX_VALIDATORS: usize = 100_000;

/// The validators of one epoch with their stakes, in canonical order (ascending compressed
/// public key), whatever order they were given in. Every key's proof of possession has been
/// checked, no key appears twice and no stake is zero.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidatorSet {
    members: Vec<CommitteeMember>,
    total_stake: u128,
}

impl ValidatorSet {
    /// A set from its members in any order.
    pub fn new(mut members: Vec<CommitteeMember>) -> Result<Self, VrfError> {
        if members.is_empty() {
            return Err(VrfError::EmptyValidatorSet);
        }
        if members.len() > MAX_VALIDATORS {
            return Err(VrfError::TooManyValidators {
                got: members.len(),
                max: MAX_VALIDATORS,
            });
        }
        members.sort_by_key(|m| m.key);
        let mut total: u128 = 0;
        for (i, m) in members.iter().enumerate() {
            if m.stake == 0 {
                return Err(VrfError::ZeroStake(m.key.key().to_hex()));
            }
            if i > 0 && members[i - 1].key == m.key {
                return Err(VrfError::DuplicateValidator(m.key.key().to_hex()));
            }
            // At most MAX_VALIDATORS * u64::MAX < 2^81.
            total += m.stake as u128;
        }
        Ok(ValidatorSet {
            members,
            total_stake: total,
        })
    }

    /// Members in canonical order.
    pub fn members(&self) -> &[CommitteeMember] {
        &self.members
    }

    /// Number of validators.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether the set is empty (never true for a constructed set).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sum of all stakes.
    pub fn total_stake(&self) -> u128 {
        self.total_stake
    }

    /// The canonical position of `key`, if it is in the set.
    pub fn position(&self, key: &PopVerifiedKey) -> Option<usize> {
        self.members.binary_search_by(|m| m.key.cmp(key)).ok()
    }
}
