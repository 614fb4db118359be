//! What executing a transaction did, and the acknowledgement codes of failed deliveries.

use banyan_core::ids::{Address, Amount, AmountError, ChainId, Epoch, Height, Nonce, Sequence};
use banyan_core::tx::{Acknowledgement, Packet};

/// Acknowledgement code: the escrow on the channel holds less than the packet releases.
pub const ACK_ESCROW_SHORTFALL: u16 = 1;
/// Acknowledgement code: crediting the recipient would overflow its balance.
pub const ACK_OVERFLOW: u16 = 2;
/// Acknowledgement code: the local asset id is already recorded with another origin.
pub const ACK_ORIGIN_CONFLICT: u16 = 3;

/// What executing a transaction did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Applied or failed, and how.
    pub outcome: Outcome,
    /// Native coins debited as fee (zero when refused at admission).
    pub fee_charged: Amount,
}

impl Receipt {
    /// Whether the kind's effect was applied.
    pub fn is_applied(&self) -> bool {
        matches!(self.outcome, Outcome::Applied(_))
    }

    pub(crate) fn refused(failure: Failure) -> Self {
        Receipt {
            outcome: Outcome::Failed(failure),
            fee_charged: Amount::ZERO,
        }
    }
}

/// Applied or failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The kind's effect was applied.
    Applied(Effect),
    /// It was not; the fee and nonce may still have been taken (see [`Receipt::fee_charged`]).
    Failed(Failure),
}

/// An applied effect, with what later stages need to know about it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect {
    /// A transfer.
    Transferred,
    /// Stake added.
    Staked,
    /// Stake withdrawn into the sender's unbonding entry.
    Unstaked,
    /// An equivocation punished.
    Slashed {
        /// The account slashed.
        offender: Address,
        /// Coins burned (from its stake and its unbonding coins together).
        burned: Amount,
    },
    /// A sidechain spawned with this id.
    SidechainSpawned(ChainId),
    /// A sidechain retired.
    SidechainRetired(ChainId),
    /// A packet sent; it belongs in this block's outbox, in receipt order.
    PacketSent(Box<Packet>),
    /// A packet delivered (its sequence consumed) with this acknowledgement.
    PacketDelivered {
        /// The source chain.
        source: ChainId,
        /// The packet's sequence.
        sequence: Sequence,
        /// What the destination acknowledges.
        ack: Acknowledgement,
    },
    /// A packet's acknowledgement processed.
    PacketAcknowledged {
        /// The destination chain.
        destination: ChainId,
        /// The packet's sequence.
        sequence: Sequence,
        /// Whether the sender was refunded (failure acknowledgement).
        refunded: bool,
    },
    /// A packet timed out and its sender was refunded.
    PacketTimedOut {
        /// The destination chain.
        destination: ChainId,
        /// The packet's sequence.
        sequence: Sequence,
    },
    /// An account's balance on a retired sidechain paid back here from its escrow.
    Settled {
        /// The sidechain.
        chain: ChainId,
        /// The account.
        owner: Address,
        /// How much.
        amount: Amount,
    },
    /// A sidechain's block became its latest checkpoint.
    Checkpointed {
        /// The sidechain.
        chain: ChainId,
        /// The block's height.
        height: Height,
    },
}

/// Why a transaction failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Failure {
    /// For another chain (refused at admission).
    WrongChain,
    /// Nonce differs from the sender's (refused at admission).
    BadNonce {
        /// The sender's current nonce.
        expected: Nonce,
    },
    /// The sender's nonce is at its maximum (refused at admission).
    NonceExhausted,
    /// The native balance does not cover the fee (refused at admission).
    CannotPayFee {
        /// The native balance.
        balance: Amount,
    },
    /// A balance too small for the amount.
    InsufficientBalance {
        /// What there is.
        have: Amount,
        /// What was needed.
        need: Amount,
    },
    /// A balance, stake, counter or sequence would overflow.
    Overflow,
    /// A stake or packet of zero.
    ZeroAmount,
    /// A stake naming another key than the validator's record.
    ValidatorKeyMismatch,
    /// An unstake of more than is staked.
    InsufficientStake {
        /// What is staked.
        have: Amount,
        /// What was asked.
        need: Amount,
    },
    /// A main-chain-only transaction on a sidechain.
    MainChainOnly,
    /// Sidechain parameters out of range (which one, and the range).
    InvalidSidechainParams(String),
    /// A sidechain deposit below the chain's minimum.
    DepositTooLow {
        /// The deposit offered.
        given: Amount,
        /// The least accepted.
        min: Amount,
    },
    /// The id this spawn would take is already recorded (a hash collision): send the spawn
    /// again, its next nonce gives another id.
    SidechainIdTaken(ChainId),
    /// Only the account that spawned a sidechain may retire it.
    NotSpawner(ChainId),
    /// The count of active sidechains would overflow.
    RegistryFull,
    /// No such sidechain.
    UnknownSidechain(ChainId),
    /// The sidechain is already retired.
    AlreadyRetired(ChainId),
    /// A packet from or to this very chain.
    SameChain,
    /// A packet whose source is not this chain (acknowledgement or timeout).
    WrongSource,
    /// A packet whose destination is not this chain (delivery).
    WrongDestination,
    /// The packet proof check said no.
    ProofRejected,
    /// A packet delivered out of order.
    OutOfOrder {
        /// The sequence expected next.
        expected: Sequence,
    },
    /// A packet delivered past its timeout height.
    Expired,
    /// An acknowledgement or timeout for a packet that is not the oldest pending one.
    NotPending,
    /// The escrow cannot cover a refund.
    EscrowShortfall {
        /// What the escrow holds.
        have: Amount,
        /// What was needed.
        need: Amount,
    },
    /// A stake with a key jailed for equivocation.
    ValidatorJailed,
    /// Evidence against an account whose record does not hold the key that signed, or that
    /// has neither stake nor unbonding coins.
    UnknownValidator,
    /// Evidence of an offence already punished on this account.
    AlreadySlashed,
    /// Evidence about votes of another chain.
    EvidenceOfOtherChain,
    /// Evidence older than the unbonding period.
    EvidenceExpired {
        /// The epoch of the offence.
        offense: Epoch,
        /// The current epoch.
        now: Epoch,
    },
    /// The sidechain's retirement has taken effect: its final checkpoint no longer moves.
    CheckpointFinal(ChainId),
    /// A settlement for a sidechain that is not retired, or whose retirement has not taken
    /// effect yet (its final checkpoint may still move).
    NotSettling(ChainId),
    /// A retired sidechain with no checkpoint settles as its genesis: only its spawner, for
    /// the whole escrow.
    NoFinalCheckpoint(ChainId),
    /// The account's balance on that sidechain was settled already.
    AlreadySettled,
    /// A checkpoint's proof did not verify against the committee the main chain assigned.
    CheckpointRejected(String),
    /// The main chain assigned the sidechain no committee in that main-chain epoch (not
    /// running then).
    NoAssignedCommittee {
        /// The sidechain.
        chain: ChainId,
        /// The main-chain epoch named.
        main_epoch: Epoch,
    },
    /// A checkpoint names a main-chain epoch after the current one.
    FutureEpoch {
        /// The epoch named.
        given: Epoch,
        /// The current epoch.
        now: Epoch,
    },
    /// A checkpoint no newer than the sidechain's latest (by height, its epoch or the
    /// main-chain epoch of its committee).
    StaleCheckpoint {
        /// Height of the latest checkpoint.
        latest: Height,
    },
}

impl Failure {
    /// Whether a transaction failing this way still pays its fee and advances its nonce.
    pub fn charges_fee(&self) -> bool {
        !matches!(
            self,
            Failure::WrongChain
                | Failure::BadNonce { .. }
                | Failure::NonceExhausted
                | Failure::CannotPayFee { .. }
        )
    }
}

/// The fees of a block: the sum of its receipts' charged fees.
pub fn total_fees(receipts: &[Receipt]) -> Result<Amount, AmountError> {
    receipts
        .iter()
        .try_fold(Amount::ZERO, |sum, r| sum.checked_add(r.fee_charged))
}
