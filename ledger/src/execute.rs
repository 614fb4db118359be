//! [`Ledger`]: the semantics of each kind of transaction, as a [`Vm`], and its access sets.

use crate::proofs::{PacketProofs, RejectAllProofs};
use crate::receipt::{
    Effect, Failure, Outcome, Receipt, ACK_ESCROW_SHORTFALL, ACK_ORIGIN_CONFLICT, ACK_OVERFLOW,
};
use crate::rules::StakingRules;
use crate::verified::VerifiedTx;
use banyan_core::certificate::Committee;
use banyan_core::header::{BlockHeader, CertifiedHeader};
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce};
use banyan_core::keys::BlsPublicKey;
use banyan_core::smt::SmtProof;
use banyan_core::state::verify_entry;
use banyan_core::tx::{
    sidechain_id, AccessSet, Acknowledgement, AssetOrigin, Equivocation, NonDeliveryProof, Packet,
    PacketProof, SidechainParams, StateKey, TxKind,
};
use banyan_core::value::{
    LightClientState, PendingPackets, SidechainRecord, SidechainStatus, StateValue, UnbondingEntry,
    ValidatorRecord,
};
use banyan_dag::{AccessError, TxView, Vm};

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

// Access sets: the one definition of the keys each kind of transaction may read and write
// (the executor's contract, see `Vm::access_set`). Every transaction writes the sender's nonce
// and native balance (its fee); fees are summed per block rather than credited to a shared
// key, so they add no conflicts. Built from the cached sender address into reused buffers.

/// What an equivocation report writes: the offender's record and unbonding entry, the key's
/// jail flag and the offence.
fn report_access(set: &mut AccessSet, offender: &Address, evidence: &dyn Equivocation) {
    set.write(StateKey::Validator(*offender));
    set.write(StateKey::Unbonding(*offender));
    set.write(StateKey::Jailed(evidence.validator_id()));
    set.write(StateKey::Offense(evidence.offense_id(offender)));
}

/// The registry's count of active sidechains (0 when absent).
fn active_sidechains<V: TxView>(view: &V) -> Result<u64, AccessError> {
    Ok(match view.read(&StateKey::SidechainRegistry)? {
        StateValue::Counter(c) => c,
        _ => 0,
    })
}

fn access_of(vtx: &VerifiedTx, set: &mut AccessSet) {
    set.reads.clear();
    set.writes.clear();
    let body = &vtx.tx.body;
    let here = body.chain;
    let sender = vtx.sender;
    set.write(StateKey::Account(sender));
    set.write(StateKey::Balance(sender, AssetId::NATIVE));
    match &body.kind {
        TxKind::Transfer { to, asset, .. } => {
            set.write(StateKey::Balance(sender, *asset));
            set.write(StateKey::Balance(*to, *asset));
        }
        TxKind::Stake { validator_key, .. } => {
            set.write(StateKey::Validator(sender));
            set.read(StateKey::Jailed(validator_key.validator_id()));
        }
        TxKind::Unstake { .. } => {
            set.write(StateKey::Validator(sender));
            set.write(StateKey::Unbonding(sender));
        }
        TxKind::SpawnSidechain { .. } => {
            set.write(StateKey::SidechainRegistry);
            set.write(StateKey::Sidechain(sidechain_id(&sender, body.nonce)));
        }
        TxKind::RetireSidechain { chain } => {
            set.write(StateKey::SidechainRegistry);
            set.write(StateKey::Sidechain(*chain));
            set.write(StateKey::Escrow(*chain, AssetId::NATIVE));
        }
        TxKind::CrossChainSend {
            destination, asset, ..
        } => {
            set.read(StateKey::AssetOrigin(*asset));
            set.write(StateKey::Balance(sender, *asset));
            set.write(StateKey::Escrow(*destination, *asset));
            set.write(StateKey::ChannelSend(*destination));
            set.write(StateKey::ChannelPending(*destination));
        }
        TxKind::DeliverPacket { packet, .. } => {
            let local = packet.asset.local_id(here);
            set.read(StateKey::LightClient(packet.source));
            set.write(StateKey::ChannelReceive(packet.source));
            set.write(StateKey::Balance(packet.recipient, local));
            set.write(StateKey::AssetOrigin(local));
            set.write(StateKey::Escrow(packet.source, local));
        }
        TxKind::AcknowledgePacket { packet, .. } | TxKind::TimeoutPacket { packet, .. } => {
            let local = packet.asset.local_id(here);
            set.read(StateKey::LightClient(packet.destination));
            set.write(StateKey::ChannelPending(packet.destination));
            set.write(StateKey::Balance(packet.sender, local));
            set.write(StateKey::Escrow(packet.destination, local));
        }
        TxKind::ReportEquivocation { offender, evidence } => {
            report_access(set, offender, &**evidence);
        }
        TxKind::ReportProposalEquivocation { offender, evidence } => {
            report_access(set, offender, &**evidence);
        }
        TxKind::SubmitCheckpoint { chain, .. } => {
            set.read(StateKey::Sidechain(*chain));
            set.write(StateKey::LightClient(*chain));
        }
        TxKind::SettleBalance { chain, owner, .. } => {
            set.read(StateKey::Sidechain(*chain));
            set.read(StateKey::LightClient(*chain));
            set.write(StateKey::Settled(*chain, *owner));
            set.write(StateKey::Escrow(*chain, AssetId::NATIVE));
            set.write(StateKey::Balance(*owner, AssetId::NATIVE));
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

    fn spawn<V: TxView>(
        &self,
        view: &mut V,
        sender: Address,
        nonce: Nonce,
        params: &SidechainParams,
    ) -> Applied {
        if !self.chain.is_main() {
            return Ok(Err(Failure::MainChainOnly));
        }
        if let Err(why) = params.check() {
            return Ok(Err(Failure::InvalidSidechainParams(why)));
        }
        let min = self.staking.min_sidechain_deposit;
        if params.deposit < min {
            return Ok(Err(Failure::DepositTooLow {
                given: params.deposit,
                min,
            }));
        }
        let chain = sidechain_id(&sender, nonce);
        let record_key = StateKey::Sidechain(chain);
        if view.read(&record_key)? != StateValue::Sidechain(None) {
            return Ok(Err(Failure::SidechainIdTaken(chain)));
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
        let Some(next) = active_sidechains(view)?.checked_add(1) else {
            return Ok(Err(Failure::RegistryFull));
        };
        let record = SidechainRecord {
            spawner: sender,
            deposit: params.deposit,
            committee_size: params.committee_size,
            // `check` bounds the block time far below u16::MAX.
            block_time_ms: u16::try_from(params.block_time_ms).unwrap_or(u16::MAX),
            // `check` bounds the epoch length far below u32::MAX.
            epoch_length: u32::try_from(params.epoch_length).unwrap_or(u32::MAX),
            activation_epoch: u32::try_from(self.epoch.0.saturating_add(1)).unwrap_or(u32::MAX),
            status: SidechainStatus::Active,
        };
        view.write(&native_key, StateValue::Amount(left))?;
        view.write(&registry_key, StateValue::Counter(next))?;
        view.write(&record_key, StateValue::Sidechain(Some(record)))?;
        Ok(Ok(Effect::SidechainSpawned(chain)))
    }

    fn retire<V: TxView>(&self, view: &mut V, sender: Address, chain: ChainId) -> Applied {
        if !self.chain.is_main() {
            return Ok(Err(Failure::MainChainOnly));
        }
        let key = StateKey::Sidechain(chain);
        let StateValue::Sidechain(Some(record)) = view.read(&key)? else {
            return Ok(Err(Failure::UnknownSidechain(chain)));
        };
        if record.spawner != sender {
            return Ok(Err(Failure::NotSpawner(chain)));
        }
        if !record.is_active() {
            return Ok(Err(Failure::AlreadyRetired(chain)));
        }
        // A sidechain that ran keeps its deposit locked, now as its escrow: it pays the
        // balances its final checkpoint proves (`SettleBalance`), the spawner's among them.
        // One retired before it ever ran (in the epoch it was spawned in) holds nothing but
        // the spawner's deposit, which comes straight back (the spawner is the sender, whose
        // balance is in every access set).
        let key_to_credit = if u64::from(record.activation_epoch) <= self.epoch.0 {
            StateKey::Escrow(chain, AssetId::NATIVE)
        } else {
            StateKey::Balance(sender, AssetId::NATIVE)
        };
        let Ok(credited) = view
            .read_amount(&key_to_credit)?
            .checked_add(record.deposit)
        else {
            return Ok(Err(Failure::Overflow));
        };
        let registry_key = StateKey::SidechainRegistry;
        let active = active_sidechains(view)?;
        view.write(&key_to_credit, StateValue::Amount(credited))?;
        view.write(&registry_key, StateValue::Counter(active.saturating_sub(1)))?;
        view.write(
            &key,
            StateValue::Sidechain(Some(SidechainRecord {
                // It keeps its committee to the end of this epoch.
                status: SidechainStatus::Retired {
                    from_epoch: u32::try_from(self.epoch.0.saturating_add(1)).unwrap_or(u32::MAX),
                },
                ..record
            })),
        )?;
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

    /// The record of sidechain `chain`, for a kind only the main chain executes.
    fn recorded_sidechain<V: TxView>(
        &self,
        view: &V,
        chain: ChainId,
    ) -> Result<Result<SidechainRecord, Failure>, AccessError> {
        if self.chain != ChainId::MAIN {
            return Ok(Err(Failure::MainChainOnly));
        }
        Ok(match view.read(&StateKey::Sidechain(chain))? {
            StateValue::Sidechain(Some(r)) => Ok(r),
            _ => Err(Failure::UnknownSidechain(chain)),
        })
    }

    fn checkpoint<V: TxView>(
        &self,
        view: &mut V,
        chain: ChainId,
        main_epoch: Epoch,
        proof: &CertifiedHeader,
    ) -> Applied {
        let record = match self.recorded_sidechain(view, chain)? {
            Ok(r) => r,
            Err(f) => return Ok(Err(f)),
        };
        if main_epoch > self.epoch {
            return Ok(Err(Failure::FutureEpoch {
                given: main_epoch,
                now: self.epoch,
            }));
        }
        if !record.runs_in(main_epoch.0) {
            return Ok(Err(Failure::NoAssignedCommittee { chain, main_epoch }));
        }
        if let SidechainStatus::Retired { from_epoch } = record.status {
            // From the epoch its retirement takes effect, balances settle against the
            // checkpoint held then: it never moves again.
            if self.epoch.0 >= u64::from(from_epoch) {
                return Ok(Err(Failure::CheckpointFinal(chain)));
            }
        }
        let rejected = |why: String| Ok(Err(Failure::CheckpointRejected(why)));
        // The cheap checks first: a stale or misaddressed proof costs no pairing.
        let Some(header) = proof.header() else {
            return rejected("the proof holds no header".into());
        };
        if header.chain != chain || proof.commit_qc.data.chain != chain {
            return rejected(format!(
                "the proof is of chain {}, not of sidechain {}",
                header.chain.0, chain.0
            ));
        }
        let latest = light_client(view, chain)?;
        if header.height <= latest.height
            || proof.epoch() < latest.epoch
            || main_epoch < latest.main_epoch
        {
            return Ok(Err(Failure::StaleCheckpoint {
                latest: latest.height,
            }));
        }
        let Some(members) = self.proofs.assigned_committee(chain, main_epoch) else {
            return Ok(Err(Failure::NoAssignedCommittee { chain, main_epoch }));
        };
        let committee = match Committee::new(proof.epoch(), members) {
            Ok(c) => c,
            Err(e) => return rejected(format!("the assigned committee: {e}")),
        };
        let header = match proof.verify(&committee) {
            Ok(h) => h,
            Err(e) => return rejected(e.to_string()),
        };
        let client = LightClientState {
            height: header.height,
            header: header.id(),
            epoch: proof.epoch(),
            main_epoch,
        };
        view.write(
            &StateKey::LightClient(chain),
            StateValue::LightClient(client),
        )?;
        Ok(Ok(Effect::Checkpointed {
            chain,
            height: header.height,
        }))
    }

    #[allow(clippy::too_many_arguments)]
    fn settle<V: TxView>(
        &self,
        view: &mut V,
        chain: ChainId,
        owner: Address,
        amount: Amount,
        header: &BlockHeader,
        proof: &SmtProof,
    ) -> Applied {
        let record = match self.recorded_sidechain(view, chain)? {
            Ok(r) => r,
            Err(f) => return Ok(Err(f)),
        };
        let settling = matches!(
            record.status,
            SidechainStatus::Retired { from_epoch } if self.epoch.0 >= u64::from(from_epoch)
        );
        if !settling {
            return Ok(Err(Failure::NotSettling(chain)));
        }
        if amount == Amount::ZERO {
            return Ok(Err(Failure::ZeroAmount));
        }
        let settled_key = StateKey::Settled(chain, owner);
        if flag(view, &settled_key)? {
            return Ok(Err(Failure::AlreadySettled));
        }
        let escrow_key = StateKey::Escrow(chain, AssetId::NATIVE);
        let escrow = view.read_amount(&escrow_key)?;
        let key = StateKey::Balance(owner, AssetId::NATIVE);
        let checkpoint = light_client(view, chain)?;
        if checkpoint.height.0 == 0 {
            // Never checkpointed: it settles as its genesis, where the spawner held the whole
            // deposit (the header and proof are not looked at).
            if owner != record.spawner || amount != escrow {
                return Ok(Err(Failure::NoFinalCheckpoint(chain)));
            }
        } else if header.chain != chain
            || header.id() != checkpoint.header
            || verify_entry(&header.state_root, &key, &StateValue::Amount(amount), proof).is_err()
        {
            return Ok(Err(Failure::ProofRejected));
        }
        let Ok(left) = escrow.checked_sub(amount) else {
            return Ok(Err(Failure::EscrowShortfall {
                have: escrow,
                need: amount,
            }));
        };
        let Ok(credited) = view.read_amount(&key)?.checked_add(amount) else {
            return Ok(Err(Failure::Overflow));
        };
        view.write(&escrow_key, StateValue::Amount(left))?;
        view.write(&key, StateValue::Amount(credited))?;
        view.write(&settled_key, StateValue::Flag(true))?;
        Ok(Ok(Effect::Settled {
            chain,
            owner,
            amount,
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
            TxKind::SpawnSidechain { params } => self.spawn(view, sender, body.nonce, params)?,
            TxKind::RetireSidechain { chain } => self.retire(view, sender, *chain)?,
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
            TxKind::SubmitCheckpoint {
                chain,
                main_epoch,
                proof,
            } => self.checkpoint(view, *chain, *main_epoch, proof)?,
            TxKind::SettleBalance {
                chain,
                owner,
                amount,
                header,
                proof,
            } => self.settle(view, *chain, *owner, *amount, header, proof)?,
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
