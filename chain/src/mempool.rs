//! Transactions waiting for a block: checked once on the way in, paid for in advance, ordered
//! per sender by nonce, and dropped when they grow old.
//!
//! # Admission
//!
//! [`Mempool::insert`] takes a batch, the caller's `now` (a monotonic [`Instant`]: the pool
//! reads no clock, so tests control time) and the committed accounts
//! ([`CommittedAccounts`], implemented by [`State`]). Each transaction meets, cheapest first:
//!
//! 1. **Throttle** — a sender serving a cool-down (see below) is refused
//!    ([`MempoolError::Throttled`]) before anything is computed for its transaction, not even
//!    its id.
//! 2. **Stateless** — encoded size, chain id, network (the main chain's genesis id), minimum
//!    fee.
//! 3. **Nonce window** — not below the sender's committed nonce and less than
//!    `max_per_sender` ahead of it (a gap can never be filled past that bound, so such a
//!    transaction could never be selected).
//! 4. **Pool** — not already pooled (or twice in the batch); its nonce not taken by another
//!    pooled transaction of the sender.
//! 5. **Funds** ([`MempoolError::CannotPay`]) — the sender's *committed* balances must pay
//!    for everything it has pooled plus this transaction. A transaction's cost is its fee
//!    (native) plus what its kind debits in `dag::ledger`: the amount of a `Transfer` or a
//!    `CrossChainSend` (in its asset), the amount of a `Stake` and the deposit of a
//!    `SpawnSidechain` (native). `Unstake`, `RetireSidechain` and the packet kinds cost their
//!    fee alone. Credits (incoming transfers, unstaking) count only once committed. The
//!    sender must also hold a positive native balance, so a key nobody funded gets nothing
//!    in, whatever the minimum fee. The pool keeps a running total per (sender, asset),
//!    updated at every insertion and removal (commit, expiry, [`Mempool::remove`]), so the
//!    check is O(1); the arithmetic is checked, and a cost that overflows is refused
//!    ([`MempoolError::CostOverflow`]).
//! 6. **Bounds** — at most `max_per_sender` pooled per sender and `max_txs` in all.
//! 7. **Signatures** (and stake proofs of possession), in one batch, without the lock. A
//!    pooled transaction has a verified signature, so a block containing *exactly* that
//!    transaction (same body, same signature) need not be checked again
//!    ([`Mempool::is_verified_tx`]). The other way round, transactions whose signatures a
//!    block check verified are remembered for a while ([`Mempool::note_block_verified`]) and
//!    not checked a second time when their gossiped copy arrives.
//!    [`Mempool::signature_counts`] says how many checks each way ran and how many were
//!    spared.
//!
//! The survivors are then inserted, checking again under the lock what may have changed
//! while it was released (duplicates, bounds, funds). Funds are checked against the state
//! of the last commit the pool heard of, so the check may lag a commit by a moment; blocks
//! remain the authority (a proposal leaves out what it finds unpayable, and a block with an
//! admission failure is refused). The pool's check only keeps it from holding what cannot be
//! paid, which is what made filling it free.
//!
//! # Throttling
//!
//! A sender whose transactions are refused for funds `throttle_strikes` times within
//! `throttle_window` is refused outright for `throttle_cooldown`, before any other check.
//! Only refusals the sender provably caused count: a transaction refused for funds has its
//! signature checked with the batch, and the refusal counts as a strike only if it verifies.
//! Anyone can write a victim's address in the sender field of a transaction, but not sign
//! it, so forged transactions fail the signature check (they are refused as
//! [`MempoolError::BadSignature`]) and cannot throttle the victim. Consequences:
//!
//! - A sender without any native balance is refused for funds *without* a signature check
//!   and never counted: its refusal costs a map look-up, as little as the throttle's own,
//!   and there would be nothing to save.
//! - A funded sender's unpayable transactions cost at most `throttle_strikes` signature
//!   checks per batch (and, once throttled, none until the cool-down ends).
//! - The strike table holds at most `max_throttled_senders` senders. When it is full, the
//!   entries whose window and cool-down are over are dropped; if none is, a new sender is
//!   not recorded. That fails open on purpose: memory stays bounded, and throttling only
//!   saves work — every transaction still has to be paid for.
//!
//! # Expiry
//!
//! Each admitted transaction records the `now` of its admission and is dropped
//! `tx_ttl` later, by [`Mempool::evict_expired`] (the node calls it every second; `insert`
//! also evicts first). Eviction is by age alone: when a sender's transaction expires, its
//! later nonces stay until their own age runs out. They cannot be selected while the gap is
//! open, but they are still bounded (they count against the sender's funds, count and nonce
//! window), and the sender can close the gap by sending the expired transaction again (its
//! cost was released with it). Evicting them as well would throw away transactions that may
//! still commit and bound nothing more.
//!
//! # Bounds
//!
//! At most `max_txs` transactions of at most [`MAX_TX_BYTES`] each (defaults: 100,000 in the
//! pool; the node's configuration sets 200,000), at most `max_per_sender` per sender and as
//! far ahead of its committed nonce (4,096: `banyan load` funds accounts in chunks of 4,000
//! from one sender), each paid for by committed funds, each held at most `tx_ttl` (5
//! minutes). The strike table holds at most `max_throttled_senders` (10,000) senders, the
//! block-verified memo [`RECENTLY_VERIFIED`] transactions.

use std::collections::BTreeMap;
// foldhash with a per-pool random seed: ids and addresses are hashes already, and the seed
// keeps anyone from aiming transactions at one bucket.
use hashbrown::{HashMap, HashSet};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::{Duration, Instant};

use banyan_core::codec::encoded_len;
use banyan_core::hash::Digest;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Nonce};
use banyan_core::keys::AccountSignature;
use banyan_core::state::State;
use banyan_core::tx::{SignedTx, StateKey, TxBody, TxKind, MAX_TX_BYTES};
use banyan_core::value::StateValue;
use banyan_ledger::VerifiedTx;

/// Bounds of a mempool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MempoolLimits {
    /// Most transactions held.
    pub max_txs: usize,
    /// Most transactions held per sender (also how far ahead of the committed nonce a
    /// transaction may be).
    pub max_per_sender: usize,
    /// Least fee accepted.
    pub min_fee: Amount,
    /// How long a transaction stays pooled after its admission.
    pub tx_ttl: Duration,
    /// Refusals for funds (of transactions whose signature verified) within
    /// `throttle_window` after which a sender is throttled; 0 turns throttling off.
    pub throttle_strikes: u32,
    /// The window in which `throttle_strikes` refusals throttle a sender.
    pub throttle_window: Duration,
    /// How long a throttled sender's transactions are refused.
    pub throttle_cooldown: Duration,
    /// Most senders the strike table tracks.
    pub max_throttled_senders: usize,
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            max_txs: 100_000,
            max_per_sender: 4096,
            min_fee: Amount::ZERO,
            tx_ttl: Duration::from_secs(300),
            throttle_strikes: 16,
            throttle_window: Duration::from_secs(60),
            throttle_cooldown: Duration::from_secs(60),
            max_throttled_senders: 10_000,
        }
    }
}

/// What admission reads of the committed state: nonces and balances.
pub trait CommittedAccounts {
    /// The account's next nonce.
    fn nonce(&self, address: &Address) -> Nonce;
    /// The account's balance of `asset` (zero when it holds none).
    fn balance(&self, address: &Address, asset: &AssetId) -> Amount;
}

/// An account's next nonce in `state`.
pub fn nonce_in(state: &State, addr: &Address) -> Nonce {
    match state.get(&StateKey::Account(*addr)) {
        StateValue::Nonce(n) => n,
        _ => Nonce(0),
    }
}

impl CommittedAccounts for State {
    fn nonce(&self, address: &Address) -> Nonce {
        nonce_in(self, address)
    }

    fn balance(&self, address: &Address, asset: &AssetId) -> Amount {
        match self.get(&StateKey::Balance(*address, *asset)) {
            StateValue::Amount(a) => a,
            _ => Amount::ZERO,
        }
    }
}

/// Why a transaction was not admitted.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum MempoolError {
    /// Encoded size above the limit.
    #[error("transaction of {size} bytes exceeds the limit of {max} bytes")]
    TooLarge {
        /// Encoded size.
        size: usize,
        /// The limit.
        max: usize,
    },
    /// For another chain.
    #[error(
        "transaction is for chain {got}, this is chain {expected}: send it to the right chain"
    )]
    WrongChain {
        /// This chain.
        expected: ChainId,
        /// The transaction's chain.
        got: ChainId,
    },
    /// Signed for another network (another main-chain genesis).
    #[error(
        "transaction is for network {got}, this is network {expected}: it was signed for \
         another network (read this one's id from `banyan status`)"
    )]
    WrongNetwork {
        /// This network.
        expected: Digest,
        /// The transaction's network.
        got: Digest,
    },
    /// Fee below the minimum.
    #[error("fee {fee} is below the minimum fee {min}: raise the fee")]
    FeeTooLow {
        /// The fee paid.
        fee: Amount,
        /// The minimum.
        min: Amount,
    },
    /// Nonce already used.
    #[error("stale or replayed nonce {nonce}: the account's next nonce is {expected}")]
    StaleNonce {
        /// The transaction's nonce.
        nonce: Nonce,
        /// The committed nonce.
        expected: Nonce,
    },
    /// Nonce too far ahead of the committed one.
    #[error(
        "nonce {nonce} is too far ahead of the account's next nonce {expected} (at most {max} \
         ahead): send the missing transactions first"
    )]
    NonceTooFar {
        /// The transaction's nonce.
        nonce: Nonce,
        /// The committed nonce.
        expected: Nonce,
        /// How far ahead a nonce may be.
        max: usize,
    },
    /// Already in the pool (or twice in one batch).
    #[error("transaction already in the mempool")]
    Duplicate,
    /// Another transaction of the sender holds this nonce.
    #[error("another transaction from this sender already uses nonce {0}")]
    NonceTaken(Nonce),
    /// The sender has too many transactions pooled.
    #[error("sender has {max} transactions pending already: wait for some to commit")]
    SenderFull {
        /// The per-sender limit.
        max: usize,
    },
    /// The pool is full.
    #[error("mempool is full ({max} transactions): retry later")]
    Full {
        /// The limit.
        max: usize,
    },
    /// Signature (or a stake's proof of possession) does not verify.
    #[error("bad signature or proof of possession: {0}")]
    BadSignature(String),
    /// The sender's committed balance does not cover its pending transactions and this one.
    #[error(
        "balance {balance} of {} cannot pay {cost} for this transaction on top of {pending} \
         pending: wait for pending transactions to commit or fund the account",
        asset_name(.asset)
    )]
    CannotPay {
        /// The asset short.
        asset: AssetId,
        /// The sender's committed balance of it.
        balance: Amount,
        /// What the sender's pooled transactions may take of it.
        pending: Amount,
        /// What this transaction may take of it.
        cost: Amount,
    },
    /// Fee plus amount do not fit in an amount: no account can pay the transaction.
    #[error("fee {fee} plus amount {amount} overflows an amount: no account can pay it")]
    CostOverflow {
        /// The fee.
        fee: Amount,
        /// The amount the kind debits.
        amount: Amount,
    },
    /// The sender sent too many transactions it could not pay for, recently.
    #[error(
        "sender is throttled for {retry_after_ms} ms more: {strikes} of its transactions were \
         refused for funds within {window_ms} ms; fund the account or wait before sending again"
    )]
    Throttled {
        /// Milliseconds until the sender's transactions are considered again.
        retry_after_ms: u64,
        /// Refusals that throttle a sender.
        strikes: u32,
        /// The window they must fall in, in milliseconds.
        window_ms: u64,
    },
}

impl MempoolError {
    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            MempoolError::TooLarge { .. } => "too_large",
            MempoolError::WrongChain { .. } => "wrong_chain",
            MempoolError::WrongNetwork { .. } => "wrong_network",
            MempoolError::FeeTooLow { .. } => "fee_too_low",
            MempoolError::StaleNonce { .. } => "stale_nonce",
            MempoolError::NonceTooFar { .. } => "nonce_too_far",
            MempoolError::Duplicate => "duplicate",
            MempoolError::NonceTaken(_) => "nonce_taken",
            MempoolError::SenderFull { .. } => "sender_full",
            MempoolError::Full { .. } => "full",
            MempoolError::BadSignature(_) => "bad_signature",
            MempoolError::CannotPay { .. } => "cannot_pay",
            MempoolError::CostOverflow { .. } => "cost_overflow",
            MempoolError::Throttled { .. } => "throttled",
        }
    }
}

fn asset_name(asset: &AssetId) -> String {
    if *asset == AssetId::NATIVE {
        "the native coin".to_string()
    } else {
        format!("asset {}", hex::encode(asset.0))
    }
}

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// The most a transaction can take from its sender: its native fee plus what its kind
/// debits (the table in the module docs).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Cost {
    /// Native coins: the fee, plus a native amount.
    native: Amount,
    /// Another asset and its amount, when the kind moves one.
    other: Option<(AssetId, Amount)>,
}

impl Cost {
    fn of(body: &TxBody) -> Result<Cost, MempoolError> {
        let debit = match &body.kind {
            TxKind::Transfer { asset, amount, .. }
            | TxKind::CrossChainSend { asset, amount, .. } => Some((*asset, *amount)),
            TxKind::Stake { amount, .. } => Some((AssetId::NATIVE, *amount)),
            TxKind::SpawnSidechain { params } => Some((AssetId::NATIVE, params.deposit)),
            TxKind::Unstake { .. }
            | TxKind::RetireSidechain { .. }
            | TxKind::DeliverPacket { .. }
            | TxKind::AcknowledgePacket { .. }
            | TxKind::TimeoutPacket { .. }
            | TxKind::ReportEquivocation { .. }
            | TxKind::ReportProposalEquivocation { .. }
            | TxKind::SubmitCheckpoint { .. }
            | TxKind::SettleBalance { .. } => None,
        };
        match debit {
            None => Ok(Cost {
                native: body.fee,
                other: None,
            }),
            Some((asset, amount)) if asset == AssetId::NATIVE => Ok(Cost {
                native: body
                    .fee
                    .checked_add(amount)
                    .map_err(|_| MempoolError::CostOverflow {
                        fee: body.fee,
                        amount,
                    })?,
                other: None,
            }),
            Some((asset, amount)) => Ok(Cost {
                native: body.fee,
                other: Some((asset, amount)),
            }),
        }
    }
}

/// Whether `balance` pays `cost` on top of `pending`.
fn afford(
    asset: AssetId,
    balance: Amount,
    pending: Amount,
    cost: Amount,
) -> Result<(), MempoolError> {
    let refuse = || MempoolError::CannotPay {
        asset,
        balance,
        pending,
        cost,
    };
    match pending.checked_add(cost) {
        Ok(total) if total <= balance => Ok(()),
        _ => Err(refuse()),
    }
}

/// A transaction past the checks that need no lock, with what admission read for it.
#[derive(Clone, Copy, Debug)]
struct Candidate {
    index: usize,
    id: Digest,
    sender: Address,
    bytes: usize,
    cost: Cost,
    /// The sender's committed native balance.
    native_balance: Amount,
    /// Its committed balance of `cost.other`'s asset (zero when there is none).
    other_balance: Amount,
}

#[derive(Debug)]
struct Entry {
    tx: SignedTx,
    sender: Address,
    bytes: usize,
    cost: Cost,
    /// Admission time and sequence: the key in `Inner::by_age`.
    admitted: (Instant, u64),
}

#[derive(Debug, Default)]
struct SenderQueue {
    /// Arrival sequence of the sender's oldest present transaction run (its place in line).
    arrival: u64,
    by_nonce: BTreeMap<Nonce, Digest>,
}

#[derive(Debug, Default)]
struct Inner {
    txs: HashMap<Digest, Entry>,
    senders: HashMap<Address, SenderQueue>,
    /// Senders in order of arrival.
    order: BTreeMap<u64, Address>,
    next_arrival: u64,
    /// What each sender's pooled transactions may take of each asset (no zero entries).
    spend: HashMap<(Address, AssetId), Amount>,
    /// Pooled transactions by admission time, oldest first.
    by_age: BTreeMap<(Instant, u64), Digest>,
    next_admission: u64,
}

impl Inner {
    fn sender_len(&self, sender: &Address) -> usize {
        self.senders.get(sender).map_or(0, |q| q.by_nonce.len())
    }

    fn spent(&self, sender: Address, asset: AssetId) -> Amount {
        self.spend
            .get(&(sender, asset))
            .copied()
            .unwrap_or(Amount::ZERO)
    }

    /// Whether `c`'s sender can pay for it on top of its pooled transactions and `batch`
    /// (what earlier transactions of the same batch reserved).
    fn can_pay(
        &self,
        c: &Candidate,
        batch: &HashMap<(Address, AssetId), Amount>,
    ) -> Result<(), MempoolError> {
        let pending = |asset: AssetId| {
            let b = batch
                .get(&(c.sender, asset))
                .copied()
                .unwrap_or(Amount::ZERO);
            self.spent(c.sender, asset).checked_add(b)
        };
        let native = AssetId::NATIVE;
        let Ok(native_pending) = pending(native) else {
            return Err(MempoolError::CannotPay {
                asset: native,
                balance: c.native_balance,
                pending: Amount(u128::MAX),
                cost: c.cost.native,
            });
        };
        // A positive native balance first: an account nobody funded sends nothing.
        if c.native_balance == Amount::ZERO {
            return Err(MempoolError::CannotPay {
                asset: native,
                balance: c.native_balance,
                pending: native_pending,
                cost: c.cost.native,
            });
        }
        afford(native, c.native_balance, native_pending, c.cost.native)?;
        if let Some((asset, amount)) = c.cost.other {
            let Ok(other_pending) = pending(asset) else {
                return Err(MempoolError::CannotPay {
                    asset,
                    balance: c.other_balance,
                    pending: Amount(u128::MAX),
                    cost: amount,
                });
            };
            afford(asset, c.other_balance, other_pending, amount)?;
        }
        Ok(())
    }

    /// Pool `tx`, whose checks `c` passed, admitted at `now`.
    fn add(&mut self, c: Candidate, tx: &SignedTx, now: Instant) -> Result<Digest, MempoolError> {
        let arrival = self.next_arrival;
        let q = self.senders.entry(c.sender).or_insert_with(|| SenderQueue {
            arrival,
            by_nonce: BTreeMap::new(),
        });
        match q.by_nonce.entry(tx.body.nonce) {
            std::collections::btree_map::Entry::Occupied(_) => {
                Err(MempoolError::NonceTaken(tx.body.nonce))
            }
            std::collections::btree_map::Entry::Vacant(slot) => {
                slot.insert(c.id);
                if q.arrival == arrival {
                    self.order.insert(arrival, c.sender);
                    self.next_arrival += 1;
                }
                let admitted = (now, self.next_admission);
                self.next_admission += 1;
                self.by_age.insert(admitted, c.id);
                reserve(&mut self.spend, c.sender, AssetId::NATIVE, c.cost.native);
                if let Some((asset, amount)) = c.cost.other {
                    reserve(&mut self.spend, c.sender, asset, amount);
                }
                self.txs.insert(
                    c.id,
                    Entry {
                        tx: tx.clone(),
                        sender: c.sender,
                        bytes: c.bytes,
                        cost: c.cost,
                        admitted,
                    },
                );
                Ok(c.id)
            }
        }
    }

    fn remove_id(&mut self, id: &Digest) -> bool {
        let Some(entry) = self.txs.remove(id) else {
            return false;
        };
        self.by_age.remove(&entry.admitted);
        release(
            &mut self.spend,
            entry.sender,
            AssetId::NATIVE,
            entry.cost.native,
        );
        if let Some((asset, amount)) = entry.cost.other {
            release(&mut self.spend, entry.sender, asset, amount);
        }
        if let Some(q) = self.senders.get_mut(&entry.sender) {
            q.by_nonce.remove(&entry.tx.body.nonce);
            if q.by_nonce.is_empty() {
                let arrival = q.arrival;
                self.senders.remove(&entry.sender);
                self.order.remove(&arrival);
            }
        }
        true
    }

    /// Drop the transactions admitted `ttl` or longer before `now`; how many.
    fn evict_expired(&mut self, now: Instant, ttl: Duration) -> usize {
        let mut n = 0;
        while let Some((&(at, _), &id)) = self.by_age.first_key_value() {
            if now.saturating_duration_since(at) < ttl {
                break;
            }
            if !self.remove_id(&id) {
                // Not pooled (cannot happen: removal keeps both maps together); drop the key
                // so the loop ends.
                self.by_age.pop_first();
            }
            n += 1;
        }
        n
    }
}

/// Add `amount` to a running total. The totals are bounded by committed balances (every
/// addition passed [`afford`]), so saturation cannot be reached; it only keeps this total.
fn reserve(
    spend: &mut HashMap<(Address, AssetId), Amount>,
    sender: Address,
    asset: AssetId,
    amount: Amount,
) {
    if amount == Amount::ZERO {
        return;
    }
    let total = spend.entry((sender, asset)).or_insert(Amount::ZERO);
    *total = total.checked_add(amount).unwrap_or(Amount(u128::MAX));
}

/// Take `amount` off a running total, dropping it at zero. The total includes `amount` (it
/// was reserved when the transaction was inserted); an underflow would break that
/// invariant, and drops the total rather than wrapping.
fn release(
    spend: &mut HashMap<(Address, AssetId), Amount>,
    sender: Address,
    asset: AssetId,
    amount: Amount,
) {
    let key = (sender, asset);
    if let Some(total) = spend.get_mut(&key) {
        match total.checked_sub(amount) {
            Ok(left) if left > Amount::ZERO => *total = left,
            _ => {
                spend.remove(&key);
            }
        }
    }
}

/// A sender's refusals for funds, and its cool-down once throttled.
#[derive(Debug, Clone, Copy)]
struct Strikes {
    window_start: Instant,
    count: u32,
    cooling_since: Option<Instant>,
}

impl Strikes {
    /// Whether this record no longer matters: no cool-down running and its window over.
    fn is_over(&self, now: Instant, limits: &MempoolLimits) -> bool {
        match self.cooling_since {
            Some(t) => now.saturating_duration_since(t) >= limits.throttle_cooldown,
            None => now.saturating_duration_since(self.window_start) >= limits.throttle_window,
        }
    }
}

/// Senders' strikes (refusals for funds of transactions whose signature verified), at most
/// `max_throttled_senders` of them.
#[derive(Debug, Default)]
struct Throttle {
    senders: HashMap<Address, Strikes>,
}

impl Throttle {
    /// Refuse `sender` if it is cooling down; forget it once its cool-down is over.
    fn check(
        &mut self,
        sender: &Address,
        now: Instant,
        limits: &MempoolLimits,
    ) -> Result<(), MempoolError> {
        let Some(s) = self.senders.get(sender) else {
            return Ok(());
        };
        let Some(since) = s.cooling_since else {
            return Ok(());
        };
        let served = now.saturating_duration_since(since);
        if served < limits.throttle_cooldown {
            return Err(MempoolError::Throttled {
                retry_after_ms: millis(limits.throttle_cooldown - served).max(1),
                strikes: limits.throttle_strikes,
                window_ms: millis(limits.throttle_window),
            });
        }
        self.senders.remove(sender);
        Ok(())
    }

    /// Count one refusal for funds of a transaction `sender` signed.
    fn strike(&mut self, sender: Address, now: Instant, limits: &MempoolLimits) {
        if limits.throttle_strikes == 0 {
            return;
        }
        if !self.senders.contains_key(&sender) && self.senders.len() >= limits.max_throttled_senders
        {
            self.senders.retain(|_, s| !s.is_over(now, limits));
            if self.senders.len() >= limits.max_throttled_senders {
                // Full of live records: fail open (see the module docs).
                return;
            }
        }
        let s = self.senders.entry(sender).or_insert(Strikes {
            window_start: now,
            count: 0,
            cooling_since: None,
        });
        if s.cooling_since.is_some() {
            return;
        }
        if now.saturating_duration_since(s.window_start) >= limits.throttle_window {
            s.window_start = now;
            s.count = 0;
        }
        s.count = s.count.saturating_add(1);
        if s.count >= limits.throttle_strikes {
            s.cooling_since = Some(now);
        }
    }
}

/// The pending transactions of one chain. `Send + Sync`; every method locks briefly and
/// signature checks run outside the lock.
#[derive(Debug)]
pub struct Mempool {
    chain: ChainId,
    network: Digest,
    limits: MempoolLimits,
    inner: Mutex<Inner>,
    /// Transactions whose signatures a block check verified, newest last.
    block_verified: Mutex<RecentlyVerified>,
    /// Strikes and cool-downs of senders of unpayable transactions.
    throttle: Mutex<Throttle>,
    counts: Counts,
    /// The committed state as of the chain's last commit, for nonce look-ups off the
    /// consensus thread without reading the store.
    committed: RwLock<Option<Arc<State>>>,
}

impl Mempool {
    /// An empty mempool for `chain` of `network` (its main chain's genesis id).
    pub fn new(chain: ChainId, network: Digest, limits: MempoolLimits) -> Self {
        Mempool {
            chain,
            network,
            limits,
            inner: Mutex::new(Inner::default()),
            block_verified: Mutex::new(RecentlyVerified::default()),
            throttle: Mutex::new(Throttle::default()),
            counts: Counts::default(),
            committed: RwLock::new(None),
        }
    }

    /// Record the chain's committed state (the chain does so when it opens, and
    /// [`remove_committed`](Self::remove_committed) at every commit).
    pub fn set_committed_state(&self, state: Arc<State>) {
        match self.committed.write() {
            Ok(mut c) => *c = Some(state),
            Err(p) => *p.into_inner() = Some(state),
        }
    }

    /// The committed state last recorded, if any.
    pub fn committed_state(&self) -> Option<Arc<State>> {
        match self.committed.read() {
            Ok(c) => c.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// The chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The network: its main chain's genesis id.
    pub fn network(&self) -> Digest {
        self.network
    }

    /// The limits.
    pub fn limits(&self) -> &MempoolLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated in a way that
        // matters more than losing the pool, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn throttle(&self) -> MutexGuard<'_, Throttle> {
        // Strikes only save work: a poisoned table is as good as any.
        self.throttle.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stateless(&self, tx: &SignedTx, size: usize) -> Result<(), MempoolError> {
        if size > MAX_TX_BYTES {
            return Err(MempoolError::TooLarge {
                size,
                max: MAX_TX_BYTES,
            });
        }
        if tx.body.chain != self.chain {
            return Err(MempoolError::WrongChain {
                expected: self.chain,
                got: tx.body.chain,
            });
        }
        if tx.body.network != self.network {
            return Err(MempoolError::WrongNetwork {
                expected: self.network,
                got: tx.body.network,
            });
        }
        if tx.body.fee < self.limits.min_fee {
            return Err(MempoolError::FeeTooLow {
                fee: tx.body.fee,
                min: self.limits.min_fee,
            });
        }
        Ok(())
    }

    fn nonce_window(&self, nonce: Nonce, committed: Nonce) -> Result<(), MempoolError> {
        if nonce < committed {
            return Err(MempoolError::StaleNonce {
                nonce,
                expected: committed,
            });
        }
        if nonce.0 - committed.0 >= self.limits.max_per_sender as u64 {
            return Err(MempoolError::NonceTooFar {
                nonce,
                expected: committed,
                max: self.limits.max_per_sender,
            });
        }
        Ok(())
    }

    /// Admit `txs` at `now` (a monotonic instant from the caller's clock); one result per
    /// transaction, in order (the id of each admitted one). `accounts` gives each sender's
    /// committed nonce and balances. The rules are in the module docs. Each admitted
    /// transaction is copied once, into the pool; signatures are checked on the caller's
    /// copies, against the ids computed for the duplicate checks. Transactions older than
    /// `tx_ttl` at `now` are evicted first.
    pub fn insert<A: CommittedAccounts + ?Sized>(
        &self,
        txs: &[SignedTx],
        now: Instant,
        accounts: &A,
    ) -> Vec<Result<Digest, MempoolError>> {
        let mut results: Vec<Option<Result<Digest, MempoolError>>> = vec![None; txs.len()];
        // Throttled senders first, before anything is computed for their transactions.
        let senders: Vec<Address> = txs.iter().map(SignedTx::sender).collect();
        {
            let mut throttle = self.throttle();
            if !throttle.senders.is_empty() {
                for (r, sender) in results.iter_mut().zip(&senders) {
                    if let Err(e) = throttle.check(sender, now, &self.limits) {
                        *r = Some(Err(e));
                    }
                }
            }
        }
        // Stateless checks, committed nonces and balances, without the lock.
        let mut candidates: Vec<Candidate> = Vec::with_capacity(txs.len());
        for (index, tx) in txs.iter().enumerate() {
            if results[index].is_some() {
                continue;
            }
            let sender = senders[index];
            let bytes = encoded_len(tx);
            let check = self
                .stateless(tx, bytes)
                .and_then(|()| self.nonce_window(tx.body.nonce, accounts.nonce(&sender)))
                .and_then(|()| Cost::of(&tx.body));
            match check {
                Ok(cost) => candidates.push(Candidate {
                    index,
                    id: tx.id(),
                    sender,
                    bytes,
                    cost,
                    native_balance: accounts.balance(&sender, &AssetId::NATIVE),
                    other_balance: cost
                        .other
                        .map_or(Amount::ZERO, |(asset, _)| accounts.balance(&sender, &asset)),
                }),
                Err(e) => results[index] = Some(Err(e)),
            }
        }
        // Expiry, then duplicates, funds and limits against the pool, counting this batch.
        // Refusals for funds of funded senders go to the signature check too, to count as
        // strikes if they verify (at most `throttle_strikes` per sender and batch).
        let mut survivors: Vec<Candidate> = Vec::with_capacity(candidates.len());
        let mut unpaid: Vec<(Candidate, MempoolError)> = Vec::new();
        {
            let mut inner = self.lock();
            inner.evict_expired(now, self.limits.tx_ttl);
            let mut batch_ids = HashSet::with_capacity(candidates.len());
            let mut batch_nonces: HashSet<(Address, Nonce)> = HashSet::new();
            let mut batch_spend: HashMap<(Address, AssetId), Amount> = HashMap::new();
            let mut per_sender: HashMap<Address, usize> = HashMap::new();
            let mut strike_checks: HashMap<Address, u32> = HashMap::new();
            let mut total = inner.txs.len();
            for c in candidates {
                let nonce = txs[c.index].body.nonce;
                let r = if inner.txs.contains_key(&c.id) || !batch_ids.insert(c.id) {
                    Err(MempoolError::Duplicate)
                } else if inner
                    .senders
                    .get(&c.sender)
                    .is_some_and(|q| q.by_nonce.contains_key(&nonce))
                    || !batch_nonces.insert((c.sender, nonce))
                {
                    Err(MempoolError::NonceTaken(nonce))
                } else if let Err(e) = inner.can_pay(&c, &batch_spend) {
                    let checks = strike_checks.entry(c.sender).or_insert(0);
                    if c.native_balance > Amount::ZERO && *checks < self.limits.throttle_strikes {
                        *checks += 1;
                        unpaid.push((c, e));
                        continue;
                    }
                    Err(e)
                } else {
                    let count = per_sender
                        .entry(c.sender)
                        .or_insert_with(|| inner.sender_len(&c.sender));
                    if *count >= self.limits.max_per_sender {
                        Err(MempoolError::SenderFull {
                            max: self.limits.max_per_sender,
                        })
                    } else if total >= self.limits.max_txs {
                        Err(MempoolError::Full {
                            max: self.limits.max_txs,
                        })
                    } else {
                        *count += 1;
                        total += 1;
                        reserve(&mut batch_spend, c.sender, AssetId::NATIVE, c.cost.native);
                        if let Some((asset, amount)) = c.cost.other {
                            reserve(&mut batch_spend, c.sender, asset, amount);
                        }
                        Ok(())
                    }
                };
                match r {
                    Ok(()) => survivors.push(c),
                    Err(e) => results[c.index] = Some(Err(e)),
                }
            }
        }
        // Signatures, in one batch, without the lock; those a block check verified already
        // are not checked again.
        let to_check: Vec<&Candidate> = survivors
            .iter()
            .chain(unpaid.iter().map(|(c, _)| c))
            .collect();
        let known: Vec<bool> = {
            let recent = self.recently_verified();
            to_check
                .iter()
                .map(|c| recent.contains(&c.id, &txs[c.index].signature))
                .collect()
        };
        let (batch, batch_ids): (Vec<&SignedTx>, Vec<Digest>) = to_check
            .iter()
            .zip(&known)
            .filter(|(_, &k)| !k)
            .map(|(c, _)| (&txs[c.index], c.id))
            .unzip();
        let checked = batch.len();
        let batch_ok = VerifiedTx::check_batch(&batch, &batch_ids).is_ok();
        self.counts
            .admission
            .fetch_add(checked as u64, Ordering::Relaxed);
        self.counts
            .spared
            .fetch_add((to_check.len() - checked) as u64, Ordering::Relaxed);
        let mut verified = to_check
            .iter()
            .zip(&known)
            .map(|(c, &k)| {
                if k || batch_ok {
                    Ok(())
                } else {
                    VerifiedTx::check_batch(&[&txs[c.index]], &[c.id]).map_err(|e| e.to_string())
                }
            })
            .collect::<Vec<_>>()
            .into_iter();
        // Insert, checking again what may have changed while the lock was released.
        let mut strikes: Vec<Address> = Vec::new();
        let mut inner = self.lock();
        let no_batch = HashMap::new();
        for c in survivors {
            let tx = &txs[c.index];
            let ok = verified.next().unwrap_or_else(|| Err("not checked".into()));
            let r = match ok {
                Err(why) => Err(MempoolError::BadSignature(why)),
                Ok(()) if inner.txs.contains_key(&c.id) => Err(MempoolError::Duplicate),
                Ok(()) if inner.txs.len() >= self.limits.max_txs => Err(MempoolError::Full {
                    max: self.limits.max_txs,
                }),
                Ok(()) if inner.sender_len(&c.sender) >= self.limits.max_per_sender => {
                    Err(MempoolError::SenderFull {
                        max: self.limits.max_per_sender,
                    })
                }
                Ok(()) => match inner.can_pay(&c, &no_batch) {
                    Err(e) => {
                        strikes.push(c.sender);
                        Err(e)
                    }
                    Ok(()) => inner.add(c, tx, now),
                },
            };
            results[c.index] = Some(r);
        }
        drop(inner);
        for (c, e) in unpaid {
            let ok = verified.next().unwrap_or_else(|| Err("not checked".into()));
            results[c.index] = Some(match ok {
                Ok(()) => {
                    strikes.push(c.sender);
                    Err(e)
                }
                Err(why) => Err(MempoolError::BadSignature(why)),
            });
        }
        if !strikes.is_empty() {
            let mut throttle = self.throttle();
            for sender in strikes {
                throttle.strike(sender, now, &self.limits);
            }
        }
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(MempoolError::Duplicate)))
            .collect()
    }

    /// Drop the transactions admitted `tx_ttl` or longer before `now` (the node calls this
    /// periodically); how many were dropped. A sender's later nonces are not dropped with
    /// an expired one (see the module docs).
    pub fn evict_expired(&self, now: Instant) -> usize {
        self.lock().evict_expired(now, self.limits.tx_ttl)
    }

    /// What `sender`'s pooled transactions may take of `asset` (fees count as native).
    pub fn pending_spend(&self, sender: &Address, asset: &AssetId) -> Amount {
        self.lock().spent(*sender, *asset)
    }

    /// Transactions for a block: for each sender, in order of first arrival, the run of
    /// consecutive nonces starting at `nonce_of(sender)`; at most `max_txs` transactions and
    /// `max_bytes` encoded bytes in all. A gap in a sender's nonces ends its run.
    pub fn select(
        &self,
        max_txs: usize,
        max_bytes: usize,
        nonce_of: impl Fn(&Address) -> Nonce,
    ) -> Vec<SignedTx> {
        let inner = self.lock();
        let mut out = Vec::new();
        let mut bytes = 0usize;
        'senders: for sender in inner.order.values() {
            if out.len() >= max_txs {
                break;
            }
            let Some(q) = inner.senders.get(sender) else {
                continue;
            };
            let mut want = nonce_of(sender);
            for (nonce, id) in q.by_nonce.range(want..) {
                if *nonce != want {
                    break;
                }
                let Some(entry) = inner.txs.get(id) else {
                    break;
                };
                if out.len() >= max_txs {
                    break 'senders;
                }
                if bytes.saturating_add(entry.bytes) > max_bytes {
                    // Skip this sender's run; a smaller transaction of another may still fit.
                    continue 'senders;
                }
                bytes += entry.bytes;
                out.push(entry.tx.clone());
                match want.checked_next() {
                    Some(n) => want = n,
                    None => break,
                }
            }
        }
        out
    }

    /// Whether a transaction with this id is pooled (its signature was checked here).
    pub fn is_verified(&self, id: &Digest) -> bool {
        self.lock().txs.contains_key(id)
    }

    /// Whether exactly this transaction — same body and same signature — is pooled, so its
    /// signature was checked here. Block verification uses this rather than
    /// [`is_verified`](Self::is_verified): the id covers only the body, and a block carrying a
    /// pooled body with another signature must still be checked.
    pub fn is_verified_tx(&self, tx: &SignedTx) -> bool {
        self.verified_among(&[tx.id()], std::slice::from_ref(tx))[0]
    }

    /// [`is_verified_tx`](Self::is_verified_tx) for each of `txs`, whose ids are `ids`, under
    /// one lock.
    pub fn verified_among(&self, ids: &[Digest], txs: &[SignedTx]) -> Vec<bool> {
        let inner = self.lock();
        ids.iter()
            .zip(txs)
            .map(|(id, tx)| {
                inner
                    .txs
                    .get(id)
                    .is_some_and(|e| same_signature(&e.tx.signature, &tx.signature))
            })
            .collect()
    }

    /// Transactions (id and signature) whose signatures a block check verified: remember them
    /// (the newest [`RECENTLY_VERIFIED`]) so that admission does not check them again.
    pub fn note_block_verified(
        &self,
        verified: impl IntoIterator<Item = (Digest, AccountSignature)>,
    ) {
        let mut recent = self.recently_verified();
        let mut n = 0u64;
        for (id, signature) in verified {
            recent.insert(id, signature);
            n += 1;
        }
        self.counts.block.fetch_add(n, Ordering::Relaxed);
    }

    /// Signature checks run so far, and those spared.
    pub fn signature_counts(&self) -> SignatureCounts {
        SignatureCounts {
            admission: self.counts.admission.load(Ordering::Relaxed),
            block: self.counts.block.load(Ordering::Relaxed),
            spared: self.counts.spared.load(Ordering::Relaxed),
        }
    }

    fn recently_verified(&self) -> MutexGuard<'_, RecentlyVerified> {
        // Only a cache: a poisoned one is as good as any.
        self.block_verified
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// After a commit: record the new committed `state`, then drop the committed `txs` and
    /// every pooled transaction whose nonce is now below its sender's in that state.
    ///
    /// The state is recorded while the pool is locked, after the removal: an admission that
    /// reads the new balances cannot then count the committed transactions as still pending
    /// (which would refuse a payable transaction as [`MempoolError::CannotPay`]).
    pub fn remove_committed(&self, txs: &[SignedTx], state: Arc<State>) {
        let nonce_of = |a: &Address| nonce_in(&state, a);
        let mut inner = self.lock();
        let mut senders = HashSet::new();
        for tx in txs {
            inner.remove_id(&tx.id());
            senders.insert(tx.sender());
        }
        for sender in senders {
            let next = nonce_of(&sender);
            let stale: Vec<Digest> = inner
                .senders
                .get(&sender)
                .map(|q| q.by_nonce.range(..next).map(|(_, id)| *id).collect())
                .unwrap_or_default();
            for id in stale {
                inner.remove_id(&id);
            }
        }
        self.set_committed_state(state);
        drop(inner);
    }

    /// Drop these transactions (for example ones a proposal found unpayable).
    pub fn remove(&self, ids: &[Digest]) {
        let mut inner = self.lock();
        for id in ids {
            inner.remove_id(id);
        }
    }

    /// The nonce `sender`'s next transaction takes: `committed` (its committed nonce) past
    /// the run of its transactions pooled from there.
    pub fn next_nonce(&self, sender: &Address, committed: Nonce) -> Nonce {
        let inner = self.lock();
        let mut next = committed;
        if let Some(q) = inner.senders.get(sender) {
            for n in q.by_nonce.range(committed..).map(|(n, _)| *n) {
                match (n == next, next.checked_next()) {
                    (true, Some(after)) => next = after,
                    _ => break,
                }
            }
        }
        next
    }

    /// Number of transactions held.
    pub fn len(&self) -> usize {
        self.lock().txs.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How many transactions a block check verified are remembered for admission.
pub const RECENTLY_VERIFIED: usize = 65_536;

/// Transaction signature checks of one mempool's chain, since it started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SignatureCounts {
    /// Checked at admission (RPC submissions and gossip).
    pub admission: u64,
    /// Checked in blocks from other proposers (transactions not in this pool).
    pub block: u64,
    /// Not checked at admission because a block check had verified the same transaction.
    pub spared: u64,
}

#[derive(Debug, Default)]
struct Counts {
    admission: AtomicU64,
    block: AtomicU64,
    spared: AtomicU64,
}

/// Ids and signatures of the last [`RECENTLY_VERIFIED`] transactions a block check verified.
#[derive(Debug, Default)]
struct RecentlyVerified {
    by_id: HashMap<Digest, AccountSignature>,
    order: VecDeque<Digest>,
}

impl RecentlyVerified {
    fn insert(&mut self, id: Digest, signature: AccountSignature) {
        if self.by_id.insert(id, signature).is_none() {
            self.order.push_back(id);
        }
        while self.order.len() > RECENTLY_VERIFIED {
            if let Some(old) = self.order.pop_front() {
                self.by_id.remove(&old);
            }
        }
    }

    /// Whether this exact transaction (the body the id covers, and this signature) was
    /// verified.
    fn contains(&self, id: &Digest, signature: &AccountSignature) -> bool {
        self.by_id
            .get(id)
            .is_some_and(|s| same_signature(s, signature))
    }
}

fn same_signature(a: &AccountSignature, b: &AccountSignature) -> bool {
    a.to_bytes() == b.to_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recently_verified_keeps_the_newest() {
        let mut r = RecentlyVerified::default();
        let sig = |b: u8| AccountSignature::from_bytes(&[b; 64]);
        let id = |i: usize| {
            Digest(
                (i as u64)
                    .to_le_bytes()
                    .repeat(4)
                    .try_into()
                    .unwrap_or([0; 32]),
            )
        };
        for i in 0..RECENTLY_VERIFIED + 10 {
            r.insert(id(i), sig(1));
        }
        assert_eq!(r.by_id.len(), RECENTLY_VERIFIED);
        assert_eq!(r.order.len(), RECENTLY_VERIFIED);
        assert!(!r.contains(&id(9), &sig(1)));
        assert!(r.contains(&id(10), &sig(1)));
        assert!(r.contains(&id(RECENTLY_VERIFIED + 9), &sig(1)));
        assert!(!r.contains(&id(RECENTLY_VERIFIED + 9), &sig(2)));
        // Noting one again neither grows the cache nor forgets another.
        r.insert(id(RECENTLY_VERIFIED + 9), sig(1));
        assert_eq!(r.order.len(), RECENTLY_VERIFIED);
        assert!(r.contains(&id(10), &sig(1)));
    }
}
