//! A chain's staking parameters.

use banyan_core::ids::Amount;

/// Epochs unstaked coins wait after leaving the committee, unless the chain says otherwise.
pub const DEFAULT_UNBONDING_EPOCHS: u64 = 14;
/// Most epochs an unbonding period may last (a chain parameter above it is refused).
pub const MAX_UNBONDING_EPOCHS: u64 = 1 << 20;
/// Percent of an equivocating validator's stake and unbonding coins burned, unless the chain
/// says otherwise.
pub const DEFAULT_SLASH_FRACTION_PERCENT: u8 = 5;
/// The most a slash may take, in percent.
pub const MAX_SLASH_FRACTION_PERCENT: u8 = 100;
/// Native coins a sidechain's spawner locks at least, unless the chain says otherwise.
pub const DEFAULT_MIN_SIDECHAIN_DEPOSIT: Amount = Amount(1_000_000);

/// A chain's staking parameters (see the crate docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StakingRules {
    /// Epochs unstaked coins stay unbonding (and slashable) after the validator has left
    /// the committee; `0` pays them at the boundary where it leaves.
    pub unbonding_epochs: u64,
    /// Percent (`0 ..= 100`) of the offender's stake and unbonding coins a proven
    /// equivocation burns.
    pub slash_fraction_percent: u8,
    /// Least deposit a `SpawnSidechain` locks (main chain): the bond that keeps spawning
    /// from being free.
    pub min_sidechain_deposit: Amount,
}

impl Default for StakingRules {
    fn default() -> Self {
        StakingRules {
            unbonding_epochs: DEFAULT_UNBONDING_EPOCHS,
            slash_fraction_percent: DEFAULT_SLASH_FRACTION_PERCENT,
            min_sidechain_deposit: DEFAULT_MIN_SIDECHAIN_DEPOSIT,
        }
    }
}

/// A staking parameter out of range.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum StakingRulesError {
    /// The unbonding period is longer than [`MAX_UNBONDING_EPOCHS`].
    #[error("unbonding_epochs {0} exceeds the maximum of {MAX_UNBONDING_EPOCHS}")]
    UnbondingTooLong(u64),
    /// The slash fraction is above 100 percent.
    #[error("slash_fraction_percent {0} exceeds {MAX_SLASH_FRACTION_PERCENT}")]
    SlashFractionTooLarge(u8),
}

impl StakingRules {
    /// Check the parameters are in range.
    pub fn validate(&self) -> Result<(), StakingRulesError> {
        if self.unbonding_epochs > MAX_UNBONDING_EPOCHS {
            return Err(StakingRulesError::UnbondingTooLong(self.unbonding_epochs));
        }
        if self.slash_fraction_percent > MAX_SLASH_FRACTION_PERCENT {
            return Err(StakingRulesError::SlashFractionTooLarge(
                self.slash_fraction_percent,
            ));
        }
        Ok(())
    }

    /// The part of `amount` a slash burns: `floor(amount * percent / 100)`, without overflow.
    pub fn slashed_part(&self, amount: Amount) -> Amount {
        let p = u128::from(self.slash_fraction_percent.min(MAX_SLASH_FRACTION_PERCENT));
        // amount = 100q + r: floor(amount * p / 100) = q * p + floor(r * p / 100), and
        // q * p <= amount when p <= 100, so nothing overflows.
        Amount((amount.0 / 100) * p + (amount.0 % 100) * p / 100)
    }
}
