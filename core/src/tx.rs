//! Transactions: a canonical body signed by an ed25519 account key, and the access set each
//! kind declares for the parallel executor.

use crate::certificate::{proposal_message, VoteData};
use crate::codec::{BoundedVec, Decode, Encode};
use crate::hash::{hash_encoded, Digest, Domain};
use crate::header::{BlockHeader, CertifiedHeader};
use crate::ids::{
    Address, Amount, AssetId, ChainId, Epoch, Height, Nonce, Round, Sequence, ValidatorId,
};
use crate::keys::{
    verify_account_batch, AccountPublicKey, AccountSecretKey, AccountSignature, BlsPublicKey,
    BlsSignature, KeyError, ProofOfPossession,
};
use crate::merkle::MerkleProof;
use crate::smt::SmtProof;

/// Most bytes of one encoded signed transaction.
pub const MAX_TX_BYTES: usize = 64 << 10;
/// Most keys in one access set.
pub const MAX_ACCESS_KEYS: usize = 16;

/// What a sidechain is spawned with.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SidechainParams {
    /// Validators in its committee.
    pub committee_size: u16,
    /// Target time between blocks.
    pub block_time_ms: u32,
    /// Blocks per epoch.
    pub epoch_length: u64,
    /// Native coins locked on the main chain for the sidechain's lifetime.
    pub deposit: Amount,
}

/// Most validators a sidechain committee may ask for.
pub const MAX_SIDECHAIN_COMMITTEE: u16 = 256;
/// Shortest block time a sidechain may ask for, in ms.
pub const MIN_SIDECHAIN_BLOCK_TIME_MS: u32 = 50;
/// Longest block time a sidechain may ask for, in ms.
pub const MAX_SIDECHAIN_BLOCK_TIME_MS: u32 = 60_000;
/// Longest epoch a sidechain may ask for, in blocks.
pub const MAX_SIDECHAIN_EPOCH_LENGTH: u64 = 1 << 24;
/// The high bit every spawned sidechain's id carries, so that spawned ids never meet the ids
/// below it (the main chain's 0, and chains configured by hand for tests).
pub const SIDECHAIN_ID_BIT: u32 = 1 << 31;

impl SidechainParams {
    /// What is out of range, if anything (the deposit is checked against the chain's
    /// minimum by the ledger).
    pub fn check(&self) -> Result<(), String> {
        if self.committee_size == 0 || self.committee_size > MAX_SIDECHAIN_COMMITTEE {
            return Err(format!(
                "committee_size {} is outside 1..={MAX_SIDECHAIN_COMMITTEE}",
                self.committee_size
            ));
        }
        if !(MIN_SIDECHAIN_BLOCK_TIME_MS..=MAX_SIDECHAIN_BLOCK_TIME_MS)
            .contains(&self.block_time_ms)
        {
            return Err(format!(
                "block_time_ms {} is outside {MIN_SIDECHAIN_BLOCK_TIME_MS}..={MAX_SIDECHAIN_BLOCK_TIME_MS}",
                self.block_time_ms
            ));
        }
        if self.epoch_length == 0 || self.epoch_length > MAX_SIDECHAIN_EPOCH_LENGTH {
            return Err(format!(
                "epoch_length {} is outside 1..={MAX_SIDECHAIN_EPOCH_LENGTH}",
                self.epoch_length
            ));
        }
        Ok(())
    }
}

/// The id of the sidechain that `spawner`'s transaction with `nonce` spawns: known before the
/// transaction runs (clients print it; the executor declares its record's key), the same on
/// every node, and never one of the ids below [`SIDECHAIN_ID_BIT`]. Two spawns that hash to
/// one id are told apart by the ledger: the second fails and can be sent again (its next
/// nonce gives another id).
pub fn sidechain_id(spawner: &Address, nonce: Nonce) -> ChainId {
    let mut input = [0u8; 40];
    input[..32].copy_from_slice(&spawner.0);
    input[32..].copy_from_slice(&nonce.0.to_le_bytes());
    let h = crate::hash::hash(crate::hash::Domain::SidechainId, &input);
    let word = u32::from_le_bytes([h.0[0], h.0[1], h.0[2], h.0[3]]);
    ChainId(word | SIDECHAIN_ID_BIT)
}

/// An asset named by where it was first issued, as carried in packets.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct AssetOrigin {
    /// The issuing chain.
    pub chain: ChainId,
    /// The asset's id there.
    pub asset: AssetId,
}

impl AssetOrigin {
    /// The asset's local id on `chain`: the original id on its issuing chain, the bridged id
    /// anywhere else.
    pub fn local_id(&self, chain: ChainId) -> AssetId {
        if chain == self.chain {
            self.asset
        } else {
            AssetId::bridged(self.chain, self.asset)
        }
    }
}

/// A cross-chain packet: value sent from `source` to `destination`, committed in the source
/// block's outbox root.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct Packet {
    /// Sending chain.
    pub source: ChainId,
    /// Receiving chain.
    pub destination: ChainId,
    /// Position on the (source, destination) channel.
    pub sequence: Sequence,
    /// Sender on the source chain.
    pub sender: Address,
    /// Recipient on the destination chain.
    pub recipient: Address,
    /// The asset, by origin.
    pub asset: AssetOrigin,
    /// How much.
    pub amount: Amount,
    /// Past this destination height the packet can no longer be delivered and is refunded.
    pub timeout_height: Height,
}

impl Packet {
    /// The commitment stored as an outbox leaf.
    pub fn commitment(&self) -> Digest {
        hash_encoded(Domain::Packet, self)
    }
}

/// Proof that a packet is in a certified block's outbox.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct PacketProof {
    /// The source block's header and its certificate.
    pub header: CertifiedHeader,
    /// The packet commitment's path to `header.outbox_root`.
    pub inclusion: MerkleProof,
}

/// The outcome a destination reports for a delivered packet.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub enum Acknowledgement {
    /// Credited to the recipient.
    Success,
    /// Refused (the code says why); the source refunds the sender.
    Failure(u16),
}

/// Proof that a packet was not delivered by its timeout: a certified destination header at or
/// past the timeout height whose state shows the channel's next receive sequence at or below
/// the packet's (channels are ordered, so the packet was not received).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct NonDeliveryProof {
    /// The destination header and its certificate.
    pub header: CertifiedHeader,
    /// The destination's next expected sequence on the channel.
    pub next_receive: Sequence,
    /// That state entry's path to `header.state_root`.
    pub inclusion: MerkleProof,
}

/// One validator's signature of a vote, as evidence carries it: the signed [`VoteData`] and
/// the BLS signature of [`VoteData::signing_message`] (the very message consensus signs).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedVote {
    /// What was voted for.
    pub data: VoteData,
    /// The validator's signature of `data.signing_message()`.
    pub signature: BlsSignature,
}

/// Proof that one validator key signed votes for two different blocks in the same round of the
/// same epoch of the same chain: the offence a `ReportEquivocation` transaction is slashed on.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct VoteEquivocation {
    /// The key that signed both votes.
    pub validator_key: BlsPublicKey,
    /// One vote.
    pub first: SignedVote,
    /// The other vote: same chain, epoch and round, another block.
    pub second: SignedVote,
}

/// Which message of a pair of evidence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WhichVote {
    /// The first (`first`).
    First,
    /// The second (`second`).
    Second,
}

/// Why equivocation evidence proves nothing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum EvidenceError {
    /// The messages are of different chains, epochs or rounds: signing in two rounds is
    /// allowed.
    #[error("the messages are for different (chain, epoch, round) slots: no conflict")]
    DifferentSlots,
    /// Both messages name the same block: signing one block twice is no conflict.
    #[error("both messages name the same block: no conflict")]
    SameBlock,
    /// A signature does not verify under the validator key.
    #[error("the {0:?} message's signature does not verify under the validator key")]
    BadSignature(WhichVote),
}

/// One message of equivocation evidence: its slot, the block it names, and the digest signed.
struct Signed<'a> {
    slot: (ChainId, Epoch, Round),
    block: Digest,
    message: Digest,
    signature: &'a BlsSignature,
}

impl SignedVote {
    fn signed(&self) -> Signed<'_> {
        Signed {
            slot: (self.data.chain, self.data.epoch, self.data.round),
            block: self.data.block,
            message: self.data.signing_message(),
            signature: &self.signature,
        }
    }
}

impl SignedProposal {
    fn signed(&self) -> Signed<'_> {
        Signed {
            slot: (self.chain, self.epoch, self.round),
            block: self.block,
            message: proposal_message(self.chain, self.epoch, self.round, &self.block),
            signature: &self.signature,
        }
    }
}

/// The rules of the consensus equivocation detector: one slot, two blocks, both signatures
/// valid under `key`.
fn check_conflict(key: &BlsPublicKey, a: Signed<'_>, b: Signed<'_>) -> Result<(), EvidenceError> {
    if a.slot != b.slot {
        return Err(EvidenceError::DifferentSlots);
    }
    if a.block == b.block {
        return Err(EvidenceError::SameBlock);
    }
    for (m, which) in [(a, WhichVote::First), (b, WhichVote::Second)] {
        m.signature
            .verify(m.message.as_bytes(), key)
            .map_err(|_| EvidenceError::BadSignature(which))?;
    }
    Ok(())
}

/// What both kinds of equivocation evidence offer the ledger: a check on their own, the slot,
/// the key that signed and the offence they prove.
pub trait Equivocation {
    /// Check the evidence on its own (see [`check_conflict`]'s rules). Whether the key belongs
    /// to a staked validator is the ledger's question.
    fn verify(&self) -> Result<(), EvidenceError>;
    /// The slot both messages claim: (chain, epoch, round) of the first.
    fn slot(&self) -> (ChainId, Epoch, Round);
    /// The key that signed both.
    fn signer_key(&self) -> &BlsPublicKey;
    /// The hash domain of this kind's offence ids.
    fn offense_domain(&self) -> Domain;

    /// The offending validator's id (the hash of its key).
    fn validator_id(&self) -> ValidatorId {
        self.signer_key().validator_id()
    }

    /// The id of the offence charged to `offender`'s stake: the same for every pair of
    /// conflicting messages of one kind by one key in one slot, so one offence is punished
    /// once per account (a double vote and a double proposal are two offences).
    fn offense_id(&self, offender: &Address) -> Digest {
        let (chain, epoch, round) = self.slot();
        hash_encoded(
            self.offense_domain(),
            &(
                *offender,
                *self.signer_key().as_bytes(),
                chain,
                epoch,
                round,
            ),
        )
    }
}

impl Equivocation for VoteEquivocation {
    fn verify(&self) -> Result<(), EvidenceError> {
        check_conflict(
            &self.validator_key,
            self.first.signed(),
            self.second.signed(),
        )
    }

    fn slot(&self) -> (ChainId, Epoch, Round) {
        let d = &self.first.data;
        (d.chain, d.epoch, d.round)
    }

    fn signer_key(&self) -> &BlsPublicKey {
        &self.validator_key
    }

    fn offense_domain(&self) -> Domain {
        Domain::Custom("banyan/offense")
    }
}

/// A leader's signed proposal, reduced to what its signature covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedProposal {
    /// The chain.
    pub chain: ChainId,
    /// The epoch.
    pub epoch: Epoch,
    /// The round.
    pub round: Round,
    /// The proposed block's id.
    pub block: Digest,
    /// The leader's signature of [`proposal_message`] of the above.
    pub signature: BlsSignature,
}

/// Proof that one validator key proposed two different blocks in one round of one epoch of
/// one chain: slashed like a double vote (`ReportProposalEquivocation`).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ProposalEquivocation {
    /// The key that signed both proposals.
    pub validator_key: BlsPublicKey,
    /// One proposal.
    pub first: SignedProposal,
    /// The other: same chain, epoch and round, another block.
    pub second: SignedProposal,
}

impl Equivocation for ProposalEquivocation {
    fn verify(&self) -> Result<(), EvidenceError> {
        check_conflict(
            &self.validator_key,
            self.first.signed(),
            self.second.signed(),
        )
    }

    fn slot(&self) -> (ChainId, Epoch, Round) {
        (self.first.chain, self.first.epoch, self.first.round)
    }

    fn signer_key(&self) -> &BlsPublicKey {
        &self.validator_key
    }

    fn offense_domain(&self) -> Domain {
        Domain::Custom("banyan/offense/proposal")
    }
}

/// What a transaction does.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub enum TxKind {
    /// Move an asset between accounts of one chain.
    Transfer {
        /// Recipient.
        to: Address,
        /// Asset moved.
        asset: AssetId,
        /// How much.
        amount: Amount,
    },
    /// Lock stake to join the validator set at the next epoch.
    Stake {
        /// The validator's BLS key.
        validator_key: BlsPublicKey,
        /// Its proof of possession (boxed: it is the largest field of any kind).
        pop: Box<ProofOfPossession>,
        /// Stake added.
        amount: Amount,
    },
    /// Withdraw stake: it stops counting at the next epoch (the validator leaves the set when
    /// its stake reaches zero) and is paid back after the chain's unbonding period, slashable
    /// until then.
    Unstake {
        /// Stake withdrawn.
        amount: Amount,
    },
    /// Spawn a sidechain (main chain only).
    SpawnSidechain {
        /// Its parameters.
        params: SidechainParams,
    },
    /// Retire a sidechain (main chain only).
    RetireSidechain {
        /// The sidechain.
        chain: ChainId,
    },
    /// Lock or burn an asset here and send it to another chain.
    CrossChainSend {
        /// Receiving chain.
        destination: ChainId,
        /// Recipient there.
        recipient: Address,
        /// Local asset sent.
        asset: AssetId,
        /// How much.
        amount: Amount,
        /// Destination height past which the transfer is refunded.
        timeout_height: Height,
    },
    /// Deliver a packet from another chain, with its proof.
    DeliverPacket {
        /// The packet.
        packet: Packet,
        /// Its inclusion in a certified source block.
        proof: Box<PacketProof>,
    },
    /// Bring back a destination's acknowledgement of a packet sent from here.
    AcknowledgePacket {
        /// The packet.
        packet: Packet,
        /// The destination's outcome.
        ack: Acknowledgement,
        /// Inclusion of the acknowledgement in a certified destination block.
        proof: Box<PacketProof>,
    },
    /// Refund a packet that was not delivered by its timeout.
    TimeoutPacket {
        /// The packet.
        packet: Packet,
        /// Proof of non-delivery.
        proof: Box<NonDeliveryProof>,
    },
    /// Report a validator that signed two conflicting votes; anyone may send it. The account
    /// `offender`, whose validator record holds the key that signed, is slashed, and the key
    /// is jailed.
    ReportEquivocation {
        /// The account whose stake (and unbonding stake) backs the key.
        offender: Address,
        /// The two votes (boxed: the largest kind after `Stake`).
        evidence: Box<VoteEquivocation>,
    },
    /// Report a leader that signed two conflicting proposals (one round, two blocks); slashed
    /// and jailed like a double vote.
    ReportProposalEquivocation {
        /// The account whose stake (and unbonding stake) backs the key.
        offender: Address,
        /// The two proposals.
        evidence: Box<ProposalEquivocation>,
    },
    /// Checkpoint a sidechain on the main chain (main chain only; anyone may send it): a
    /// committed block of the sidechain, certified by the committee the main chain assigned it
    /// in `main_epoch`, becomes its latest checkpoint (the main chain's light client of it).
    SubmitCheckpoint {
        /// The sidechain.
        chain: ChainId,
        /// The main-chain epoch whose assignment certified the block.
        main_epoch: Epoch,
        /// The block's commit proof.
        proof: Box<CertifiedHeader>,
    },
    /// Settle an account's native balance on a retired sidechain back to the main chain (main
    /// chain only; anyone may send it): `amount` is what the sidechain's final checkpoint says
    /// `owner` held, proven against the state root of the checkpointed header. It is paid
    /// from the sidechain's locked deposit, once per account.
    SettleBalance {
        /// The retired sidechain.
        chain: ChainId,
        /// The account, on both chains.
        owner: Address,
        /// Its native balance on the sidechain at the final checkpoint.
        amount: Amount,
        /// The checkpointed header (its id is the final checkpoint's).
        header: Box<BlockHeader>,
        /// `owner`'s balance entry under `header.state_root`.
        proof: Box<SmtProof>,
    },
}

/// A piece of state a transaction may read or write.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Encode, Decode)]
pub enum StateKey {
    /// An account's nonce.
    Account(Address),
    /// An account's balance of one asset.
    Balance(Address, AssetId),
    /// A validator's stake record.
    Validator(Address),
    /// The sidechain registry: how many sidechains are active.
    SidechainRegistry,
    /// One sidechain's record.
    Sidechain(ChainId),
    /// Assets locked here while out on another chain.
    Escrow(ChainId, AssetId),
    /// Where a local asset was issued.
    AssetOrigin(AssetId),
    /// Next sequence to send to a chain.
    ChannelSend(ChainId),
    /// Next sequence expected from a chain.
    ChannelReceive(ChainId),
    /// Packets sent to a chain and not yet acknowledged or timed out.
    ChannelPending(ChainId),
    /// The light client of a chain.
    LightClient(ChainId),
    /// An account's unstaked coins waiting out the unbonding period.
    Unbonding(Address),
    /// Whether a validator (by id) is jailed for equivocation: out of every committee for good.
    Jailed(ValidatorId),
    /// An equivocation already punished ([`VoteEquivocation::offense_id`]).
    Offense(Digest),
    /// Whether an account's balance on a retired sidechain has been settled back here.
    Settled(ChainId, Address),
}

/// The keys a transaction reads and writes. A key written is not listed again as read.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct AccessSet {
    /// Keys only read.
    pub reads: Vec<StateKey>,
    /// Keys written (and possibly read).
    pub writes: Vec<StateKey>,
}

impl AccessSet {
    /// Declare `k` written (a key read earlier is moved to the writes; no key is listed twice).
    pub fn write(&mut self, k: StateKey) {
        if !self.writes.contains(&k) {
            self.reads.retain(|r| *r != k);
            self.writes.push(k);
        }
    }

    /// Declare `k` read (nothing changes if it is already declared).
    pub fn read(&mut self, k: StateKey) {
        if !self.writes.contains(&k) && !self.reads.contains(&k) {
            self.reads.push(k);
        }
    }
}

/// The signed part of a transaction.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct TxBody {
    /// The chain it is for (replay on another chain is refused).
    pub chain: ChainId,
    /// The network it is for: the id of its main chain's genesis block. Chain ids repeat
    /// across networks (every network's main chain is chain 0); the genesis does not, so a
    /// transaction signed for one network is refused by every other.
    pub network: Digest,
    /// The signer.
    pub sender: AccountPublicKey,
    /// Must equal the sender's current nonce.
    pub nonce: Nonce,
    /// Native coins paid to include it.
    pub fee: Amount,
    /// What it does.
    pub kind: TxKind,
}

/// A transaction: body and the sender's signature of its id.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct SignedTx {
    /// The body.
    pub body: TxBody,
    /// Signature by `body.sender` of the transaction id.
    pub signature: AccountSignature,
}

/// Transactions whose signatures failed, by index.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("bad signature on transactions {0:?}")]
pub struct BadSignatures(pub Vec<usize>);

impl TxBody {
    /// A transfer of `amount` native coins from `sender` to `to`.
    pub fn native_transfer(
        chain: ChainId,
        network: Digest,
        sender: AccountPublicKey,
        nonce: Nonce,
        fee: Amount,
        to: Address,
        amount: Amount,
    ) -> Self {
        TxBody {
            chain,
            network,
            sender,
            nonce,
            fee,
            kind: TxKind::Transfer {
                to,
                asset: AssetId::NATIVE,
                amount,
            },
        }
    }

    /// The transaction id: the domain-separated hash of the canonical body.
    pub fn id(&self) -> Digest {
        hash_encoded(Domain::Transaction, self)
    }

    /// Sign with `key` (which must be the body's sender key to verify).
    pub fn sign(self, key: &AccountSecretKey) -> SignedTx {
        let signature = key.sign(self.id().as_bytes());
        SignedTx {
            body: self,
            signature,
        }
    }
}

impl SignedTx {
    /// The transaction id.
    pub fn id(&self) -> Digest {
        self.body.id()
    }

    /// The sender's address.
    pub fn sender(&self) -> Address {
        self.body.sender.address()
    }

    /// Check the signature.
    pub fn verify_signature(&self) -> Result<(), KeyError> {
        self.body
            .sender
            .verify(self.id().as_bytes(), &self.signature)
    }

    /// Check many signatures in one batch; on failure, find the bad ones one by one.
    pub fn verify_batch(txs: &[SignedTx]) -> Result<(), BadSignatures> {
        let ids: Vec<Digest> = txs.iter().map(|t| t.id()).collect();
        let refs: Vec<&SignedTx> = txs.iter().collect();
        Self::verify_batch_with_ids(&refs, &ids)
    }

    /// [`verify_batch`](Self::verify_batch) for a caller that holds the transactions by
    /// reference and has computed their ids already (`ids[i]` must be `txs[i].id()`; a
    /// transaction without its id, or with another, is reported bad).
    pub fn verify_batch_with_ids(txs: &[&SignedTx], ids: &[Digest]) -> Result<(), BadSignatures> {
        if txs.len() != ids.len() {
            return Err(BadSignatures((0..txs.len()).collect()));
        }
        let msgs: Vec<&[u8]> = ids.iter().map(|d| &d.0[..]).collect();
        let sigs: Vec<AccountSignature> = txs.iter().map(|t| t.signature).collect();
        let keys: Vec<AccountPublicKey> = txs.iter().map(|t| t.body.sender).collect();
        if verify_account_batch(&msgs, &sigs, &keys).is_ok() {
            return Ok(());
        }
        let bad: Vec<usize> = (0..txs.len())
            .filter(|&i| keys[i].verify(msgs[i], &sigs[i]).is_err())
            .collect();
        Err(BadSignatures(bad))
    }
}

/// The packets of a block's outbox, in order, as Merkle leaves.
pub fn outbox_leaves(packets: &[Packet]) -> Vec<Digest> {
    packets.iter().map(|p| p.commitment()).collect()
}

/// A bounded list of packets (block outboxes).
pub type Outbox = BoundedVec<Packet, { crate::header::MAX_TXS_PER_BLOCK }>;
