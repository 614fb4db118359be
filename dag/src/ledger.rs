//! The ledger semantics every Banyan chain shares: nonces, fees, transfers of any asset,
//! staking records, the sidechain registry, and the state side of cross-chain packets.
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
//! | `SpawnSidechain` | main chain only: debit the deposit, count one more sidechain (its id is the new count) |
//! | `RetireSidechain` | main chain only: mark a spawned, active sidechain retired |
//! | `CrossChainSend` | debit the asset, burn it if it goes home to its origin chain, else lock it in the channel's escrow; assign the channel's next sequence and record the packet as pending; the receipt carries the packet for the block's outbox |
//! | `DeliverPacket` | if the proof is accepted, the packet is next in order and not expired: consume the sequence, then release the escrow (asset coming home) or mint the bridged asset, acknowledging `Success`, or `Failure(code)` when that credit cannot be made |
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
//! coin) is moved between its parts by stake, unstake and release, and lowered by staking only
//! through the part a slash burns. Outside staking, fees (debited, credited to no key),
//! sidechain deposits and cross-chain burns and mints change it.

use crate::error::AccessError;
use crate::state::State;
use crate::value::{
    LightClientState, PendingPackets, SidechainStatus, StateValue, UnbondingEntry, ValidatorRecord,
};
use crate::vm::{TxView, Vm};
use banyan_core::hash::Digest;
use banyan_core::ids::{
    Address, Amount, AmountError, AssetId, ChainId, Epoch, Height, Nonce, Sequence,
};
use banyan_core::keys::{BlsPublicKey, KeyError};
use banyan_core::tx::{
    AccessSet, Acknowledgement, AssetOrigin, Equivocation, EvidenceError, NonDeliveryProof, Packet,
    PacketProof, SidechainParams, SignedTx, StateKey, TxKind,
};

/// Acknowledgement code: the escrow on the channel holds less than the packet releases.
pub const ACK_ESCROW_SHORTFALL: u16 = 1;
/// Acknowledgement code: crediting the recipient would overflow its balance.
pub const ACK_OVERFLOW: u16 = 2;
/// Acknowledgement code: the local asset id is already recorded with another origin.
pub const ACK_ORIGIN_CONFLICT: u16 = 3;

/// Epochs unstaked coins wait after leaving the committee, unless the chain says otherwise.
pub const DEFAULT_UNBONDING_EPOCHS: u64 = 14;
/// Most epochs an unbonding period may last (a chain parameter above it is refused).
pub const MAX_UNBONDING_EPOCHS: u64 = 1 << 20;
/// Percent of an equivocating validator's stake and unbonding coins burned, unless the chain
/// says otherwise.
pub const DEFAULT_SLASH_FRACTION_PERCENT: u8 = 5;
/// The most a slash may take, in percent.
pub const MAX_SLASH_FRACTION_PERCENT: u8 = 100;

/// A chain's staking parameters (see the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StakingRules {
    /// Epochs unstaked coins stay unbonding (and slashable) after the validator has left
    /// the committee; `0` pays them at the boundary where it leaves.
    pub unbonding_epochs: u64,
    /// Percent (`0 ..= 100`) of the offender's stake and unbonding coins a proven
    /// equivocation burns.
    pub slash_fraction_percent: u8,
}

impl Default for StakingRules {
    fn default() -> Self {
        StakingRules {
            unbonding_epochs: DEFAULT_UNBONDING_EPOCHS,
            slash_fraction_percent: DEFAULT_SLASH_FRACTION_PERCENT,
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

/// A signed transaction whose signature (and, for a stake, the proof of possession of the
/// validator key) has been checked, with its sender's address computed once.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedTx {
    tx: SignedTx,
    sender: Address,
}

/// Why a transaction could not be verified.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The signature does not verify.
    #[error("transaction {index}: bad signature")]
    BadSignature {
        /// Position in the batch.
        index: usize,
    },
    /// A stake's proof of possession does not verify for its validator key.
    #[error("transaction {index}: {source}")]
    BadProofOfPossession {
        /// Position in the batch.
        index: usize,
        /// What failed.
        source: KeyError,
    },
    /// An equivocation report's evidence proves nothing (see [`Equivocation::verify`]).
    #[error("transaction {index}: bad equivocation evidence: {source}")]
    BadEvidence {
        /// Position in the batch.
        index: usize,
        /// What is wrong with it.
        source: EvidenceError,
    },
}

impl VerifyError {
    /// Position in the batch of the transaction refused.
    pub fn index(&self) -> usize {
        match self {
            VerifyError::BadSignature { index }
            | VerifyError::BadProofOfPossession { index, .. }
            | VerifyError::BadEvidence { index, .. } => *index,
        }
    }
}

fn check_stateless(index: usize, tx: &SignedTx) -> Result<(), VerifyError> {
    match &tx.body.kind {
        TxKind::Stake {
            validator_key, pop, ..
        } => {
            pop.verify(validator_key)
                .map_err(|source| VerifyError::BadProofOfPossession { index, source })?;
        }
        TxKind::ReportEquivocation { evidence, .. } => {
            evidence
                .verify()
                .map_err(|source| VerifyError::BadEvidence { index, source })?;
        }
        TxKind::ReportProposalEquivocation { evidence, .. } => {
            evidence
                .verify()
                .map_err(|source| VerifyError::BadEvidence { index, source })?;
        }
        _ => {}
    }
    Ok(())
}

impl VerifiedTx {
    /// Check one transaction.
    pub fn verify(tx: SignedTx) -> Result<Self, VerifyError> {
        tx.verify_signature()
            .map_err(|_| VerifyError::BadSignature { index: 0 })?;
        check_stateless(0, &tx)?;
        Ok(Self::assume_verified(tx))
    }

    /// Check many transactions (signatures in one batch); the error names the first bad one.
    pub fn verify_batch(txs: Vec<SignedTx>) -> Result<Vec<Self>, VerifyError> {
        let ids: Vec<Digest> = txs.iter().map(SignedTx::id).collect();
        let refs: Vec<&SignedTx> = txs.iter().collect();
        Self::check_batch(&refs, &ids)?;
        Ok(txs.into_iter().map(Self::assume_verified).collect())
    }

    /// The checks of [`verify_batch`](Self::verify_batch), for a caller that keeps the
    /// transactions and has computed their ids already (`ids[i]` must be `txs[i].id()`):
    /// nothing is copied and no id is hashed again. The error names the first bad one.
    pub fn check_batch(txs: &[&SignedTx], ids: &[Digest]) -> Result<(), VerifyError> {
        if let Err(bad) = SignedTx::verify_batch_with_ids(txs, ids) {
            let index = bad.0.first().copied().unwrap_or(0);
            return Err(VerifyError::BadSignature { index });
        }
        for (index, tx) in txs.iter().enumerate() {
            check_stateless(index, tx)?;
        }
        Ok(())
    }

    /// Wrap a transaction whose signature and stateless checks the caller has already done
    /// (for example when it entered the mempool). Nothing is checked.
    pub fn assume_verified(tx: SignedTx) -> Self {
        let sender = tx.sender();
        VerifiedTx { tx, sender }
    }

    /// The transaction.
    pub fn tx(&self) -> &SignedTx {
        &self.tx
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        self.sender
    }

    /// The transaction back.
    pub fn into_inner(self) -> SignedTx {
        self.tx
    }
}

/// Checks proofs about other chains' blocks against this chain's light client of them.
///
/// The ledger calls it for `DeliverPacket`, `AcknowledgePacket` and `TimeoutPacket` and applies
/// the answer; it must be a deterministic function of its arguments (every validator must get
/// the same answer). A [`LightClientState`] equal to its default means this chain has no light
/// client of that chain.
pub trait PacketProofs: Sync {
    /// Whether `proof` shows `packet` in a certified block of its source chain.
    fn delivery(&self, client: &LightClientState, packet: &Packet, proof: &PacketProof) -> bool;

    /// Whether `proof` shows the destination chain acknowledged `packet` with `ack`.
    fn acknowledgement(
        &self,
        client: &LightClientState,
        packet: &Packet,
        ack: &Acknowledgement,
        proof: &PacketProof,
    ) -> bool;

    /// Whether `proof` shows `packet` was not received by its timeout.
    fn non_delivery(
        &self,
        client: &LightClientState,
        packet: &Packet,
        proof: &NonDeliveryProof,
    ) -> bool;
}

/// Refuses every proof: the safe choice for a chain that does not take packets (yet).
#[derive(Clone, Copy, Debug, Default)]
pub struct RejectAllProofs;

impl PacketProofs for RejectAllProofs {
    fn delivery(&self, _: &LightClientState, _: &Packet, _: &PacketProof) -> bool {
        false
    }
    fn acknowledgement(
        &self,
        _: &LightClientState,
        _: &Packet,
        _: &Acknowledgement,
        _: &PacketProof,
    ) -> bool {
        false
    }
    fn non_delivery(&self, _: &LightClientState, _: &Packet, _: &NonDeliveryProof) -> bool {
        false
    }
}

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

    fn refused(failure: Failure) -> Self {
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
    /// Sidechain parameters with a zero committee, block time or epoch length.
    InvalidSidechainParams,
    /// No sidechain id left.
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

/// The sum of the native coin held as balances, stakes, unbonding coins and escrows: what
/// staking never changes except by burning a slash (see the module docs).
pub fn native_supply(state: &State) -> Result<Amount, AmountError> {
    state
        .sorted_entries()
        .iter()
        .try_fold(Amount::ZERO, |sum, (k, v)| match (k, v) {
            (StateKey::Balance(_, a), StateValue::Amount(x))
            | (StateKey::Escrow(_, a), StateValue::Amount(x))
                if *a == AssetId::NATIVE =>
            {
                sum.checked_add(*x)
            }
            (StateKey::Validator(_), StateValue::Validator(r)) => sum.checked_add(r.stake),
            (StateKey::Unbonding(_), StateValue::Unbonding(u)) => sum.checked_add(u.amount),
            _ => Ok(sum),
        })
}

/// The state changes that end epoch `ending`, applied by the chain after the transactions of
/// the epoch's last block (and covered by that block's state root): every unbonding entry
/// whose release epoch is at most `ending + 1` is credited to its account's native balance
/// and removed, and a validator record left with neither stake nor unbonding coins is
/// cleared. In key order; each key appears once. An entry whose credit would overflow the
/// balance (impossible while the supply fits in 128 bits) stays for the next boundary.
pub fn end_of_epoch(state: &State, ending: Epoch) -> Vec<(StateKey, StateValue)> {
    let next = ending.0.saturating_add(1);
    let mut writes = Vec::new();
    for (key, value) in state.sorted_entries() {
        let (StateKey::Unbonding(account), StateValue::Unbonding(entry)) = (key, value) else {
            continue;
        };
        if entry.release_epoch.0 > next {
            continue;
        }
        let balance_key = StateKey::Balance(account, AssetId::NATIVE);
        let balance = match state.get(&balance_key) {
            StateValue::Amount(a) => a,
            _ => Amount::ZERO,
        };
        let Ok(credited) = balance.checked_add(entry.amount) else {
            continue;
        };
        writes.push((balance_key, StateValue::Amount(credited)));
        writes.push((key, StateValue::Unbonding(UnbondingEntry::default())));
        let record_key = StateKey::Validator(account);
        if let StateValue::Validator(r) = state.get(&record_key) {
            if r.stake == Amount::ZERO && r != ValidatorRecord::default() {
                writes.push((
                    record_key,
                    StateValue::Validator(ValidatorRecord::default()),
                ));
            }
        }
    }
    writes
}

/// The shared ledger semantics for one block of one chain.
#[derive(Clone, Debug)]
pub struct Ledger<P = RejectAllProofs> {
    chain: ChainId,
    height: Height,
    epoch: Epoch,
    staking: StakingRules,
    proofs: P,
}

impl<P: PacketProofs> Ledger<P> {
    /// The ledger of `chain` executing its block at `height`, checking packet proofs with
    /// `proofs`; epoch 0 and the default [`StakingRules`] until
    /// [`with_staking`](Self::with_staking) says otherwise.
    pub fn new(chain: ChainId, height: Height, proofs: P) -> Self {
        Ledger {
            chain,
            height,
            epoch: Epoch(0),
            staking: StakingRules::default(),
            proofs,
        }
    }

    /// The same ledger in `epoch` (the block's) under `rules`.
    pub fn with_staking(self, rules: StakingRules, epoch: Epoch) -> Self {
        Ledger {
            epoch,
            staking: rules,
            ..self
        }
    }

    /// The chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The block height.
    pub fn height(&self) -> Height {
        self.height
    }

    /// The block's epoch.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// The staking rules.
    pub fn staking(&self) -> StakingRules {
        self.staking
    }
}

// The access set, exactly as `SignedTx::access_set` builds it (a test holds them equal), but
// from the cached sender address and into reused buffers.
fn put_write(set: &mut AccessSet, k: StateKey) {
    if !set.writes.contains(&k) {
        set.reads.retain(|r| *r != k);
        set.writes.push(k);
    }
}

/// What an equivocation report writes (see `SignedTx::access_set`).
fn report_access(set: &mut AccessSet, offender: &Address, evidence: &dyn Equivocation) {
    put_write(set, StateKey::Validator(*offender));
    put_write(set, StateKey::Unbonding(*offender));
    put_write(set, StateKey::Jailed(evidence.validator_id()));
    put_write(set, StateKey::Offense(evidence.offense_id(offender)));
}

fn put_read(set: &mut AccessSet, k: StateKey) {
    if !set.writes.contains(&k) && !set.reads.contains(&k) {
        set.reads.push(k);
    }
}

fn access_of(vtx: &VerifiedTx, set: &mut AccessSet) {
    set.reads.clear();
    set.writes.clear();
    let body = &vtx.tx.body;
    let here = body.chain;
    let sender = vtx.sender;
    put_write(set, StateKey::Account(sender));
    put_write(set, StateKey::Balance(sender, AssetId::NATIVE));
    match &body.kind {
        TxKind::Transfer { to, asset, .. } => {
            put_write(set, StateKey::Balance(sender, *asset));
            put_write(set, StateKey::Balance(*to, *asset));
        }
        TxKind::Stake { validator_key, .. } => {
            put_write(set, StateKey::Validator(sender));
            put_read(set, StateKey::Jailed(validator_key.validator_id()));
        }
        TxKind::Unstake { .. } => {
            put_write(set, StateKey::Validator(sender));
            put_write(set, StateKey::Unbonding(sender));
        }
        TxKind::SpawnSidechain { .. } => put_write(set, StateKey::SidechainRegistry),
        TxKind::RetireSidechain { chain } => {
            put_read(set, StateKey::SidechainRegistry);
            put_write(set, StateKey::Sidechain(*chain));
        }
        TxKind::CrossChainSend {
            destination, asset, ..
        } => {
            put_read(set, StateKey::AssetOrigin(*asset));
            put_write(set, StateKey::Balance(sender, *asset));
            put_write(set, StateKey::Escrow(*destination, *asset));
            put_write(set, StateKey::ChannelSend(*destination));
            put_write(set, StateKey::ChannelPending(*destination));
        }
        TxKind::DeliverPacket { packet, .. } => {
            let local = packet.asset.local_id(here);
            put_read(set, StateKey::LightClient(packet.source));
            put_write(set, StateKey::ChannelReceive(packet.source));
            put_write(set, StateKey::Balance(packet.recipient, local));
            put_write(set, StateKey::AssetOrigin(local));
            put_write(set, StateKey::Escrow(packet.source, local));
        }
        TxKind::AcknowledgePacket { packet, .. } | TxKind::TimeoutPacket { packet, .. } => {
            let local = packet.asset.local_id(here);
            put_read(set, StateKey::LightClient(packet.destination));
            put_write(set, StateKey::ChannelPending(packet.destination));
            put_write(set, StateKey::Balance(packet.sender, local));
            put_write(set, StateKey::Escrow(packet.destination, local));
        }
        TxKind::ReportEquivocation { offender, evidence } => {
            report_access(set, offender, &**evidence);
        }
        TxKind::ReportProposalEquivocation { offender, evidence } => {
            report_access(set, offender, &**evidence);
        }
    }
}

/// The result of a kind's effect: applied, failed (with the fee kept), or a broken contract.
type Applied = Result<Result<Effect, Failure>, AccessError>;

fn light_client<V: TxView>(view: &V, chain: ChainId) -> Result<LightClientState, AccessError> {
    let key = StateKey::LightClient(chain);
    match view.read(&key)? {
        StateValue::LightClient(c) => Ok(c),
        _ => Ok(LightClientState::default()),
    }
}

fn pending<V: TxView>(view: &V, key: &StateKey) -> Result<PendingPackets, AccessError> {
    match view.read(key)? {
        StateValue::Pending(p) => Ok(p),
        _ => Ok(PendingPackets::default()),
    }
}

fn validator_record<V: TxView>(view: &V, key: &StateKey) -> Result<ValidatorRecord, AccessError> {
    match view.read(key)? {
        StateValue::Validator(r) => Ok(r),
        _ => Ok(ValidatorRecord::default()),
    }
}

fn unbonding<V: TxView>(view: &V, key: &StateKey) -> Result<UnbondingEntry, AccessError> {
    match view.read(key)? {
        StateValue::Unbonding(u) => Ok(u),
        _ => Ok(UnbondingEntry::default()),
    }
}

fn flag<V: TxView>(view: &V, key: &StateKey) -> Result<bool, AccessError> {
    Ok(matches!(view.read(key)?, StateValue::Flag(true)))
}

impl<P: PacketProofs> Ledger<P> {
    fn transfer<V: TxView>(
        &self,
        view: &mut V,
        sender: Address,
        to: Address,
        asset: AssetId,
        amount: Amount,
    ) -> Applied {
        let from_key = StateKey::Balance(sender, asset);
        let from = view.read_amount(&from_key)?;
        let Ok(left) = from.checked_sub(amount) else {
            return Ok(Err(Failure::InsufficientBalance {
                have: from,
                need: amount,
            }));
        };
        if to == sender {
            return Ok(Ok(Effect::Transferred));
        }
        let to_key = StateKey::Balance(to, asset);
        let Ok(credited) = view.read_amount(&to_key)?.checked_add(amount) else {
            return Ok(Err(Failure::Overflow));
        };
        view.write(&from_key, StateValue::Amount(left))?;
        view.write(&to_key, StateValue::Amount(credited))?;
        Ok(Ok(Effect::Transferred))
    }

    fn stake<V: TxView>(
        &self,
        view: &mut V,
        sender: Address,
        validator_key: &BlsPublicKey,
        amount: Amount,
    ) -> Applied {
        if amount == Amount::ZERO {
            return Ok(Err(Failure::ZeroAmount));
        }
        if flag(view, &StateKey::Jailed(validator_key.validator_id()))? {
            return Ok(Err(Failure::ValidatorJailed));
        }
        let native_key = StateKey::Balance(sender, AssetId::NATIVE);
        let native = view.read_amount(&native_key)?;
        let Ok(left) = native.checked_sub(amount) else {
            return Ok(Err(Failure::InsufficientBalance {
                have: native,
                need: amount,
            }));
        };
        let record_key = StateKey::Validator(sender);
        let mut record = validator_record(view, &record_key)?;
        // A record exists (key set) while there is stake or coins unbonding: its key stays.
        if record == ValidatorRecord::default() {
            record.key = *validator_key.as_bytes();
        } else if record.key != *validator_key.as_bytes() {
            return Ok(Err(Failure::ValidatorKeyMismatch));
        }
        let Ok(stake) = record.stake.checked_add(amount) else {
            return Ok(Err(Failure::Overflow));
        };
        record.stake = stake;
        view.write(&native_key, StateValue::Amount(left))?;
        view.write(&record_key, StateValue::Validator(record))?;
        Ok(Ok(Effect::Staked))
    }

    fn unstake<V: TxView>(&self, view: &mut V, sender: Address, amount: Amount) -> Applied {
        if amount == Amount::ZERO {
            return Ok(Err(Failure::ZeroAmount));
        }
        let record_key = StateKey::Validator(sender);
        let record = validator_record(view, &record_key)?;
        let Ok(stake) = record.stake.checked_sub(amount) else {
            return Ok(Err(Failure::InsufficientStake {
                have: record.stake,
                need: amount,
            }));
        };
        let unbonding_key = StateKey::Unbonding(sender);
        let entry = unbonding(view, &unbonding_key)?;
        let Ok(waiting) = entry.amount.checked_add(amount) else {
            return Ok(Err(Failure::Overflow));
        };
        // Counted for the committee until this epoch ends; paid `unbonding_epochs` after.
        let Some(release) = self
            .epoch
            .0
            .checked_add(1)
            .and_then(|e| e.checked_add(self.staking.unbonding_epochs))
        else {
            return Ok(Err(Failure::Overflow));
        };
        let entry = UnbondingEntry {
            amount: waiting,
            release_epoch: Epoch(release.max(entry.release_epoch.0)),
        };
        // The record keeps its key (even at zero stake) while coins are unbonding.
        view.write(
            &record_key,
            StateValue::Validator(ValidatorRecord { stake, ..record }),
        )?;
        view.write(&unbonding_key, StateValue::Unbonding(entry))?;
        Ok(Ok(Effect::Unstaked))
    }

    fn report<V: TxView>(
        &self,
        view: &mut V,
        offender: Address,
        evidence: &dyn Equivocation,
    ) -> Applied {
        let (chain, offense, _) = evidence.slot();
        if chain != self.chain {
            return Ok(Err(Failure::EvidenceOfOtherChain));
        }
        if offense.0.saturating_add(self.staking.unbonding_epochs) < self.epoch.0 {
            return Ok(Err(Failure::EvidenceExpired {
                offense,
                now: self.epoch,
            }));
        }
        // A replay first: after a full slash the account may have no record left.
        let offense_key = StateKey::Offense(evidence.offense_id(&offender));
        if flag(view, &offense_key)? {
            return Ok(Err(Failure::AlreadySlashed));
        }
        let record_key = StateKey::Validator(offender);
        let record = validator_record(view, &record_key)?;
        let unbonding_key = StateKey::Unbonding(offender);
        let entry = unbonding(view, &unbonding_key)?;
        if record.key != *evidence.signer_key().as_bytes()
            || (record.stake == Amount::ZERO && entry.amount == Amount::ZERO)
        {
            return Ok(Err(Failure::UnknownValidator));
        }
        let from_stake = self.staking.slashed_part(record.stake);
        let from_unbonding = self.staking.slashed_part(entry.amount);
        // Each part is at most its whole, so neither subtraction can fail; the sum is at most
        // the account's bonded plus unbonding coins.
        let (Ok(stake), Ok(waiting), Ok(burned)) = (
            record.stake.checked_sub(from_stake),
            entry.amount.checked_sub(from_unbonding),
            from_stake.checked_add(from_unbonding),
        ) else {
            return Ok(Err(Failure::Overflow));
        };
        // Nothing left: the record goes (its key stays jailed); an empty entry goes.
        let record = if stake == Amount::ZERO && waiting == Amount::ZERO {
            ValidatorRecord::default()
        } else {
            ValidatorRecord { stake, ..record }
        };
        let entry = if waiting == Amount::ZERO {
            UnbondingEntry::default()
        } else {
            UnbondingEntry {
                amount: waiting,
                ..entry
            }
        };
        view.write(&record_key, StateValue::Validator(record))?;
        view.write(&unbonding_key, StateValue::Unbonding(entry))?;
        view.write(
            &StateKey::Jailed(evidence.validator_id()),
            StateValue::Flag(true),
        )?;
        view.write(&offense_key, StateValue::Flag(true))?;
        Ok(Ok(Effect::Slashed { offender, burned }))
    }

    fn spawn<V: TxView>(&self, view: &mut V, sender: Address, params: &SidechainParams) -> Applied {
        if !self.chain.is_main() {
            return Ok(Err(Failure::MainChainOnly));
        }
        if params.committee_size == 0 || params.block_time_ms == 0 || params.epoch_length == 0 {
            return Ok(Err(Failure::InvalidSidechainParams));
        }
        let native_key = StateKey::Balance(sender, AssetId::NATIVE);
        let native = view.read_amount(&native_key)?;
        let Ok(left) = native.checked_sub(params.deposit) else {
            return Ok(Err(Failure::InsufficientBalance {
                have: native,
                need: params.deposit,
            }));
        };
        let registry_key = StateKey::SidechainRegistry;
        let spawned = match view.read(&registry_key)? {
            StateValue::Counter(c) => c,
            _ => 0,
        };
        let next = spawned.saturating_add(1);
        let Ok(id) = u32::try_from(next) else {
            return Ok(Err(Failure::RegistryFull));
        };
        view.write(&native_key, StateValue::Amount(left))?;
        view.write(&registry_key, StateValue::Counter(next))?;
        Ok(Ok(Effect::SidechainSpawned(ChainId(id))))
    }

    fn retire<V: TxView>(&self, view: &mut V, chain: ChainId) -> Applied {
        if !self.chain.is_main() {
            return Ok(Err(Failure::MainChainOnly));
        }
        let spawned = match view.read(&StateKey::SidechainRegistry)? {
            StateValue::Counter(c) => c,
            _ => 0,
        };
        if chain.is_main() || u64::from(chain.0) > spawned {
            return Ok(Err(Failure::UnknownSidechain(chain)));
        }
        let key = StateKey::Sidechain(chain);
        if view.read(&key)? == StateValue::Sidechain(SidechainStatus::Retired) {
            return Ok(Err(Failure::AlreadyRetired(chain)));
        }
        view.write(&key, StateValue::Sidechain(SidechainStatus::Retired))?;
        Ok(Ok(Effect::SidechainRetired(chain)))
    }

    #[allow(clippy::too_many_arguments)]
    fn send<V: TxView>(
        &self,
        view: &mut V,
        sender: Address,
        destination: ChainId,
        recipient: Address,
        asset: AssetId,
        amount: Amount,
        timeout_height: Height,
    ) -> Applied {
        if destination == self.chain {
            return Ok(Err(Failure::SameChain));
        }
        if amount == Amount::ZERO {
            return Ok(Err(Failure::ZeroAmount));
        }
        let origin = match view.read(&StateKey::AssetOrigin(asset))? {
            StateValue::Origin(Some(o)) => o,
            _ => AssetOrigin {
                chain: self.chain,
                asset,
            },
        };
        let balance_key = StateKey::Balance(sender, asset);
        let balance = view.read_amount(&balance_key)?;
        let Ok(left) = balance.checked_sub(amount) else {
            return Ok(Err(Failure::InsufficientBalance {
                have: balance,
                need: amount,
            }));
        };
        // An asset going home to its origin chain is burned here (the origin releases it from
        // its escrow); any other is locked in this channel's escrow.
        let burn = origin.chain == destination;
        let escrow_key = StateKey::Escrow(destination, asset);
        let escrow = if burn {
            None
        } else {
            match view.read_amount(&escrow_key)?.checked_add(amount) {
                Ok(e) => Some(e),
                Err(_) => return Ok(Err(Failure::Overflow)),
            }
        };
        let send_key = StateKey::ChannelSend(destination);
        let sequence = view.read_sequence(&send_key)?;
        let Some(next) = sequence.checked_next() else {
            return Ok(Err(Failure::Overflow));
        };
        let pending_key = StateKey::ChannelPending(destination);
        let mut p = pending(view, &pending_key)?;
        if p.count == 0 {
            p.first = sequence;
        }
        let Some(count) = p.count.checked_add(1) else {
            return Ok(Err(Failure::Overflow));
        };
        p.count = count;
        view.write(&balance_key, StateValue::Amount(left))?;
        if let Some(e) = escrow {
            view.write(&escrow_key, StateValue::Amount(e))?;
        }
        view.write(&send_key, StateValue::Sequence(next))?;
        view.write(&pending_key, StateValue::Pending(p))?;
        Ok(Ok(Effect::PacketSent(Box::new(Packet {
            source: self.chain,
            destination,
            sequence,
            sender,
            recipient,
            asset: origin,
            amount,
            timeout_height,
        }))))
    }

    fn deliver<V: TxView>(&self, view: &mut V, packet: &Packet, proof: &PacketProof) -> Applied {
        if packet.source == self.chain {
            return Ok(Err(Failure::SameChain));
        }
        if packet.destination != self.chain {
            return Ok(Err(Failure::WrongDestination));
        }
        let client = light_client(view, packet.source)?;
        if !self.proofs.delivery(&client, packet, proof) {
            return Ok(Err(Failure::ProofRejected));
        }
        let receive_key = StateKey::ChannelReceive(packet.source);
        let expected = view.read_sequence(&receive_key)?;
        if packet.sequence != expected {
            return Ok(Err(Failure::OutOfOrder { expected }));
        }
        if self.height > packet.timeout_height {
            return Ok(Err(Failure::Expired));
        }
        let Some(next) = expected.checked_next() else {
            return Ok(Err(Failure::Overflow));
        };
        // The sequence is consumed whatever the credit does; a credit that cannot be made is
        // acknowledged as a failure and refunded at the source.
        view.write(&receive_key, StateValue::Sequence(next))?;
        let ack = self.credit_delivery(view, packet)?;
        Ok(Ok(Effect::PacketDelivered {
            source: packet.source,
            sequence: packet.sequence,
            ack,
        }))
    }

    fn credit_delivery<V: TxView>(
        &self,
        view: &mut V,
        packet: &Packet,
    ) -> Result<Acknowledgement, AccessError> {
        let local = packet.asset.local_id(self.chain);
        let balance_key = StateKey::Balance(packet.recipient, local);
        let balance = view.read_amount(&balance_key)?;
        let Ok(credited) = balance.checked_add(packet.amount) else {
            return Ok(Acknowledgement::Failure(ACK_OVERFLOW));
        };
        if packet.asset.chain == self.chain {
            // Coming home: release what was locked for the source chain.
            let escrow_key = StateKey::Escrow(packet.source, local);
            let escrow = view.read_amount(&escrow_key)?;
            let Ok(left) = escrow.checked_sub(packet.amount) else {
                return Ok(Acknowledgement::Failure(ACK_ESCROW_SHORTFALL));
            };
            view.write(&escrow_key, StateValue::Amount(left))?;
        } else {
            // A foreign asset: mint its bridged form, recording where it comes from.
            let origin_key = StateKey::AssetOrigin(local);
            match view.read(&origin_key)? {
                StateValue::Origin(Some(o)) if o != packet.asset => {
                    return Ok(Acknowledgement::Failure(ACK_ORIGIN_CONFLICT));
                }
                StateValue::Origin(Some(_)) => {}
                _ => view.write(&origin_key, StateValue::Origin(Some(packet.asset)))?,
            }
        }
        view.write(&balance_key, StateValue::Amount(credited))?;
        Ok(Acknowledgement::Success)
    }

    /// Check that `packet` is the oldest pending one on its channel; the updated pending
    /// record, or the failure.
    fn resolve_pending<V: TxView>(
        &self,
        view: &V,
        packet: &Packet,
    ) -> Result<Result<PendingPackets, Failure>, AccessError> {
        let p = pending(view, &StateKey::ChannelPending(packet.destination))?;
        if p.count == 0 || p.first != packet.sequence {
            return Ok(Err(Failure::NotPending));
        }
        let Some(first) = p.first.checked_next() else {
            return Ok(Err(Failure::Overflow));
        };
        Ok(Ok(PendingPackets {
            first,
            count: p.count - 1,
        }))
    }

    /// Give `packet`'s amount back to its sender: re-mint it if it was burned (sent to its
    /// origin), else release it from the channel's escrow. Writes nothing on failure.
    fn refund<V: TxView>(
        &self,
        view: &mut V,
        packet: &Packet,
    ) -> Result<Result<(), Failure>, AccessError> {
        let local = packet.asset.local_id(self.chain);
        let balance_key = StateKey::Balance(packet.sender, local);
        let Ok(credited) = view.read_amount(&balance_key)?.checked_add(packet.amount) else {
            return Ok(Err(Failure::Overflow));
        };
        if packet.asset.chain != packet.destination {
            let escrow_key = StateKey::Escrow(packet.destination, local);
            let escrow = view.read_amount(&escrow_key)?;
            let Ok(left) = escrow.checked_sub(packet.amount) else {
                return Ok(Err(Failure::EscrowShortfall {
                    have: escrow,
                    need: packet.amount,
                }));
            };
            view.write(&escrow_key, StateValue::Amount(left))?;
        }
        view.write(&balance_key, StateValue::Amount(credited))?;
        Ok(Ok(()))
    }

    /// Resolve the oldest pending packet of a channel once `accepted` says the proof about it
    /// holds, refunding its sender when `refund`. Writes nothing on failure.
    fn resolve_packet<V: TxView>(
        &self,
        view: &mut V,
        packet: &Packet,
        accepted: impl FnOnce(&LightClientState) -> bool,
        refund: bool,
    ) -> Result<Result<(), Failure>, AccessError> {
        if packet.source != self.chain {
            return Ok(Err(Failure::WrongSource));
        }
        if packet.destination == self.chain {
            return Ok(Err(Failure::SameChain));
        }
        let client = light_client(view, packet.destination)?;
        if !accepted(&client) {
            return Ok(Err(Failure::ProofRejected));
        }
        let p = match self.resolve_pending(view, packet)? {
            Ok(p) => p,
            Err(f) => return Ok(Err(f)),
        };
        if refund {
            if let Err(f) = self.refund(view, packet)? {
                return Ok(Err(f));
            }
        }
        view.write(
            &StateKey::ChannelPending(packet.destination),
            StateValue::Pending(p),
        )?;
        Ok(Ok(()))
    }

    fn acknowledge<V: TxView>(
        &self,
        view: &mut V,
        packet: &Packet,
        ack: &Acknowledgement,
        proof: &PacketProof,
    ) -> Applied {
        let refunded = matches!(ack, Acknowledgement::Failure(_));
        let accepted = |c: &LightClientState| self.proofs.acknowledgement(c, packet, ack, proof);
        Ok(self
            .resolve_packet(view, packet, accepted, refunded)?
            .map(|()| Effect::PacketAcknowledged {
                destination: packet.destination,
                sequence: packet.sequence,
                refunded,
            }))
    }

    fn timeout<V: TxView>(
        &self,
        view: &mut V,
        packet: &Packet,
        proof: &NonDeliveryProof,
    ) -> Applied {
        let accepted = |c: &LightClientState| self.proofs.non_delivery(c, packet, proof);
        Ok(self
            .resolve_packet(view, packet, accepted, true)?
            .map(|()| Effect::PacketTimedOut {
                destination: packet.destination,
                sequence: packet.sequence,
            }))
    }
}

impl<P: PacketProofs> Vm for Ledger<P> {
    type Tx = VerifiedTx;
    type Receipt = Receipt;

    fn access_set(&self, tx: &VerifiedTx) -> AccessSet {
        let mut set = AccessSet::default();
        access_of(tx, &mut set);
        set
    }

    #[inline]
    fn access_into(&self, tx: &VerifiedTx, out: &mut AccessSet) {
        access_of(tx, out);
    }

    fn execute<V: TxView>(&self, vtx: &VerifiedTx, view: &mut V) -> Result<Receipt, AccessError> {
        let body = &vtx.tx.body;
        let sender = vtx.sender;
        if body.chain != self.chain {
            return Ok(Receipt::refused(Failure::WrongChain));
        }
        let nonce_key = StateKey::Account(sender);
        let nonce = view.read_nonce(&nonce_key)?;
        if nonce != body.nonce {
            return Ok(Receipt::refused(Failure::BadNonce { expected: nonce }));
        }
        let Some(next) = nonce.checked_next() else {
            return Ok(Receipt::refused(Failure::NonceExhausted));
        };
        let fee_key = StateKey::Balance(sender, AssetId::NATIVE);
        let native = view.read_amount(&fee_key)?;
        let Ok(after_fee) = native.checked_sub(body.fee) else {
            return Ok(Receipt::refused(Failure::CannotPayFee { balance: native }));
        };
        view.write(&nonce_key, StateValue::Nonce(next))?;
        view.write(&fee_key, StateValue::Amount(after_fee))?;
        let applied = match &body.kind {
            TxKind::Transfer { to, asset, amount } => {
                self.transfer(view, sender, *to, *asset, *amount)?
            }
            TxKind::Stake {
                validator_key,
                amount,
                ..
            } => self.stake(view, sender, validator_key, *amount)?,
            TxKind::Unstake { amount } => self.unstake(view, sender, *amount)?,
            TxKind::SpawnSidechain { params } => self.spawn(view, sender, params)?,
            TxKind::RetireSidechain { chain } => self.retire(view, *chain)?,
            TxKind::CrossChainSend {
                destination,
                recipient,
                asset,
                amount,
                timeout_height,
            } => self.send(
                view,
                sender,
                *destination,
                *recipient,
                *asset,
                *amount,
                *timeout_height,
            )?,
            TxKind::DeliverPacket { packet, proof } => self.deliver(view, packet, proof)?,
            TxKind::AcknowledgePacket { packet, ack, proof } => {
                self.acknowledge(view, packet, ack, proof)?
            }
            TxKind::TimeoutPacket { packet, proof } => self.timeout(view, packet, proof)?,
            TxKind::ReportEquivocation { offender, evidence } => {
                self.report(view, *offender, &**evidence)?
            }
            TxKind::ReportProposalEquivocation { offender, evidence } => {
                self.report(view, *offender, &**evidence)?
            }
        };
        Ok(Receipt {
            outcome: match applied {
                Ok(effect) => Outcome::Applied(effect),
                Err(failure) => Outcome::Failed(failure),
            },
            fee_charged: body.fee,
        })
    }
}
