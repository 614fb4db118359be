//! The ledger semantics every Banyan chain shares: nonces, fees, transfers, staking, sidechains, packets.
//!
//! Nonces, fees, transfers of any asset, staking records, the sidechain registry, and the
//! state side of cross-chain packets.
//!
//! [`Ledger`] implements [`Vm`] over [`VerifiedTx`]. Main chain and sidechains run the same
//! code, parametrised by the chain id, the block height, the epoch, the [`StakingRules`] and
//! the packet proof check.
//!
//! # Rules
//!
//! Every transaction first passes the *admission* checks, in this order: it is for this chain
//! ([`Failure::WrongChain`]), its nonce equals the sender's ([`Failure::BadNonce`]), the nonce
//! can still advance ([`Failure::NonceExhausted`]), and the sender's native balance covers the
//! fee ([`Failure::CannotPayFee`]). A transaction refused there changes nothing and is charged
//! nothing (so an old transaction replayed cannot drain its sender through fees). Past
//! admission, the nonce advances and the fee is debited *whatever happens next*; the kind's
//! effect is then applied entirely or not at all, and the receipt says which and why. Amounts
//! use checked arithmetic only: an overflow is a failure, never a wrap. Fees are not credited to
//! any key; [`total_fees`] sums them per block.
//!
//! | kind | effect |
//! |---|---|
//! | `Transfer` | debit `amount` of `asset` from the sender, credit it to `to` (a transfer to oneself only checks the balance) |
//! | `Stake` | refused for a jailed key; debit native `amount`, add it to the sender's [`ValidatorRecord`]; the first stake sets the record's BLS key, later ones (also while coins are unbonding) must name the same key |
//! | `Unstake` | take `amount` off the record's stake and add it to the sender's [`UnbondingEntry`], released from epoch `current + 1 + unbonding_epochs`; nothing is credited now |
//! | `ReportEquivocation`, `ReportProposalEquivocation` | if the offender's record holds the key that signed, the evidence is about this chain, not older than the unbonding period and not punished yet: burn `slash_fraction_percent` of the record's stake and of the offender's unbonding coins, jail the key, record the offence |
//! | `SpawnSidechain` | main chain only: check the parameters and the deposit (at least `min_sidechain_deposit`), debit it, record the sidechain (spawner, parameters, activation at the next epoch) under the id `sidechain_id(sender, nonce)` |
//! | `RetireSidechain` | main chain only, by its spawner: mark an active sidechain retired (from the next epoch) and move its deposit into its escrow (`Escrow(chain, native)`), out of which its balances are settled; one retired in the epoch it was spawned in never ran, and its deposit goes straight back to the spawner |
//! | `CrossChainSend` | debit the asset, burn it if it goes home to its origin chain, else lock it in the channel's escrow; assign the channel's next sequence and record the packet as pending; the receipt carries the packet for the block's outbox |
//! | `DeliverPacket` | if the proof is accepted, the packet is next in order and not expired: consume the sequence, then release the escrow (asset coming home) or mint the bridged asset, acknowledging `Success`, or `Failure(code)` when that credit cannot be made |
//! | `SubmitCheckpoint` | main chain only, for a sidechain that ran in the named main-chain epoch (not after the current one): the commit proof must verify against the committee the main chain assigned the sidechain in that epoch (`PacketProofs::assigned_committee`) and be newer than its latest checkpoint (height, epoch and main-chain epoch never go back), and the sidechain's retirement must not have taken effect (the checkpoint is final from then); it becomes the main chain's light client of the sidechain (`StateKey::LightClient`) |
//! | `SettleBalance` | main chain only, once the sidechain's retirement has taken effect (its checkpoint is then final): the header must be the final checkpoint's and the proof must show `owner`'s native balance `amount` under its state root; pays `amount` from the escrow to `owner` here, once per account (`Settled(chain, owner)`). What the sidechain burned in fees stays locked. A sidechain never checkpointed settles as its genesis: the whole escrow to the spawner |
//! | `AcknowledgePacket` / `TimeoutPacket` | if the proof is accepted and the packet is the oldest pending one: resolve it, refunding the sender on a failure acknowledgement or a timeout (re-mint if it was burned, else release the escrow) |
//!
//! Staking proofs of possession, equivocation evidence (both vote signatures, one slot, two
//! blocks: [`Equivocation::verify`]) and transaction signatures are checked once, when a
//! transaction becomes a [`VerifiedTx`], not during execution. Proofs about other chains'
//! blocks (packet inclusion, acknowledgements, non-delivery) are checked by the
//! [`PacketProofs`] the ledger is built with: light clients belong to the relay, the ledger only
//! asks the question and applies the answer deterministically.
//!
//! Not decided here: who may retire a sidechain (the registry records no owner) and the
//! closing of an ordered channel after a timeout. Those belong to the main chain and the relay.
//!
//! # Staking: bonded, unbonding, slashed
//!
//! Native coins of an account are *liquid* (its balance), *bonded* (its [`ValidatorRecord`]'s
//! stake, counted for the committee) or *unbonding* (its [`UnbondingEntry`]: unstaked, no
//! longer counted, not yet paid). Epochs are the chain's: the block at height `h > 0` is in
//! epoch `(h - 1) / epoch_length`, which the chain passes to [`Ledger::with_staking`].
//!
//! - An unstake in epoch `e` stops counting at the committee of epoch `e + 1` (committees are
//!   drawn from the state after an epoch's last block) and is paid at the start of epoch
//!   `e + 1 + unbonding_epochs`: [`end_of_epoch`], run by the chain after the transactions of
//!   the block that ends epoch `r - 1`, credits every entry whose release epoch is at most
//!   `r` to its account's balance. Its writes are part of that block's state root. A later
//!   unstake adds to the account's one entry and moves its release to the later epoch.
//! - Unbonding coins stay slashable: an offence committed in epoch `o` can be reported until
//!   the end of epoch `o + unbonding_epochs`, the last epoch in which coins bonded during `o`
//!   may still be unbonding ([`Failure::EvidenceExpired`] after that).
//! - A slash takes `floor(amount * slash_fraction_percent / 100)` of the offender's stake and
//!   of its unbonding coins and **burns** it (no key is credited; the receipt's
//!   [`Effect::Slashed`] says how much). The key is jailed for good ([`StateKey::Jailed`]): the
//!   registry leaves it out of every committee from the next epoch boundary on, and it cannot
//!   stake again; the accounts backing it may still unstake what is left. The offence is
//!   recorded per (account, key, chain, epoch, round) ([`StateKey::Offense`]), so the same
//!   evidence, or any other pair of votes of that slot, is refused the second time
//!   ([`Failure::AlreadySlashed`]).
//!
//! Supply: [`native_supply`] (balances + stakes + unbonding coins + escrows of the native
//! coin + deposits of active sidechains) is moved between its parts by stake, unstake,
//! release, spawn and retire, and lowered by staking only through the part a slash burns.
//! Outside these, fees (debited, credited to no key) and cross-chain burns and mints change
//! it.

mod execute;
mod proofs;
mod receipt;
mod rules;
mod supply;
mod verified;

pub use execute::Ledger;
pub use proofs::{PacketProofs, RejectAllProofs, SharedProofs};
pub use receipt::{
    total_fees, Effect, Failure, Outcome, Receipt, ACK_ESCROW_SHORTFALL, ACK_ORIGIN_CONFLICT,
    ACK_OVERFLOW,
};
pub use rules::{
    StakingRules, StakingRulesError, DEFAULT_MIN_SIDECHAIN_DEPOSIT, DEFAULT_SLASH_FRACTION_PERCENT,
    DEFAULT_UNBONDING_EPOCHS, MAX_SLASH_FRACTION_PERCENT, MAX_UNBONDING_EPOCHS,
};
pub use supply::{end_of_epoch, native_supply};
pub use verified::{VerifiedTx, VerifyError};
