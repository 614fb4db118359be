//! What is stored under each [`StateKey`]: one value type per kind of key, and the fixed-width
//! word encoding the executor keeps in its cells.
//!
//! Every key kind has exactly one [`ValueKind`], and every kind has a *default* value (zero
//! balance, zero nonce, no validator record, ...). A key whose value is the default is absent:
//! [`State`](crate::state::State) never stores it and a write set entry holding a default value deletes
//! the key. So "absent" and "zero" cannot disagree between two executions.

use crate::codec::{Decode, Encode};
use crate::hash::Digest;
use crate::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce, Sequence};
use crate::keys::BLS_PUBLIC_KEY_BYTES;
use crate::tx::{AssetOrigin, StateKey};

/// The most 64-bit words any value takes in an executor cell.
pub const MAX_VALUE_WORDS: usize = 8;

/// A validator's stake record.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "crate::codec::bincode")]
pub struct ValidatorRecord {
    /// Stake locked (bonded: it counts for the committee).
    pub stake: Amount,
    /// The validator's compressed BLS key, set by its first stake (all zero when absent). Its
    /// proof of possession was checked when the staking transaction was verified. A record
    /// whose stake is zero keeps its key while the account has coins unbonding, so that they
    /// stay slashable.
    pub key: [u8; BLS_PUBLIC_KEY_BYTES],
}

/// Unstaked coins of one account on their way out: no longer bonded, not yet paid, still
/// slashable. An account has at most one entry; a later unstake adds to it and moves its
/// release to the later epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Encode, Decode)]
#[bincode(crate = "crate::codec::bincode")]
pub struct UnbondingEntry {
    /// Coins waiting.
    pub amount: Amount,
    /// The epoch from which they are paid: they are credited by the block that ends the
    /// epoch before it (the first epoch boundary at or after it).
    pub release_epoch: Epoch,
}

impl Default for ValidatorRecord {
    fn default() -> Self {
        ValidatorRecord {
            stake: Amount::ZERO,
            key: [0u8; BLS_PUBLIC_KEY_BYTES],
        }
    }
}

/// A sidechain's life cycle as the main chain records it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "crate::codec::bincode")]
pub enum SidechainStatus {
    /// Spawned and not retired.
    Active,
    /// Retired by its spawner (its deposit moved to its escrow, from which its balances are
    /// settled, or straight back if it never ran); it has no committee from main epoch
    /// `from_epoch` on (the epoch after the one it was retired in, so at least 1).
    Retired {
        /// The first main-chain epoch without it.
        from_epoch: u32,
    },
}

impl SidechainRecord {
    /// Whether it runs in main-chain epoch `epoch`: activated by then and not yet retired.
    pub fn runs_in(&self, epoch: u64) -> bool {
        let activated = u64::from(self.activation_epoch) <= epoch;
        match self.status {
            SidechainStatus::Active => activated,
            SidechainStatus::Retired { from_epoch } => activated && epoch < u64::from(from_epoch),
        }
    }

    /// Whether it is still active (not retired).
    pub fn is_active(&self) -> bool {
        self.status == SidechainStatus::Active
    }
}

/// What the main chain records of a spawned sidechain, under [`StateKey::Sidechain`]: who
/// spawned it, with what, and whether it is still active. Absent (`None`) for an id no
/// sidechain was spawned with.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "crate::codec::bincode")]
pub struct SidechainRecord {
    /// The account that spawned it (the only one that may retire it).
    pub spawner: Address,
    /// Native coins locked while it is active (counted in the native supply then; at
    /// retirement they move to its escrow, which pays the balances its final checkpoint
    /// proves).
    pub deposit: Amount,
    /// Validators in its committee.
    pub committee_size: u16,
    /// Target time between its blocks (at most `MAX_SIDECHAIN_BLOCK_TIME_MS`).
    pub block_time_ms: u16,
    /// Its blocks per epoch.
    pub epoch_length: u32,
    /// The main-chain epoch from which it runs: the one after the epoch it was spawned in.
    pub activation_epoch: u32,
    /// Active or retired.
    pub status: SidechainStatus,
}

/// Packets sent on a channel and not yet acknowledged or timed out. Channels are ordered, so
/// the pending packets are exactly the sequences `first .. first + count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Encode, Decode)]
#[bincode(crate = "crate::codec::bincode")]
pub struct PendingPackets {
    /// Oldest unresolved sequence (meaningful when `count > 0`).
    pub first: Sequence,
    /// Number of unresolved packets.
    pub count: u64,
}

/// What this chain holds about another chain's light client, as far as execution needs it:
/// the latest trusted header, and the committee that certified it. On the main chain it is the
/// latest checkpoint of a sidechain (`SubmitCheckpoint`): a header certified by a committee
/// the main chain assigned that sidechain. Execution passes it to the pluggable `PacketProofs`
/// (`banyan-ledger`) checks. The default (height 0, zero header) means "no client".
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Encode, Decode)]
#[bincode(crate = "crate::codec::bincode")]
pub struct LightClientState {
    /// Height of the latest trusted header.
    pub height: Height,
    /// Its id.
    pub header: Digest,
    /// The epoch (of that chain) of the committee that certified it.
    pub epoch: Epoch,
    /// The main-chain epoch whose assignment that committee is (0 when not a sidechain's).
    pub main_epoch: Epoch,
}

/// The kind of value a key holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueKind {
    /// [`StateKey::Account`]: the account's nonce.
    Nonce,
    /// [`StateKey::Balance`] and [`StateKey::Escrow`]: an amount.
    Amount,
    /// [`StateKey::Validator`]: a [`ValidatorRecord`].
    Validator,
    /// [`StateKey::SidechainRegistry`]: the number of active sidechains.
    Counter,
    /// [`StateKey::Sidechain`]: a [`SidechainRecord`], if one was spawned with that id.
    Sidechain,
    /// [`StateKey::AssetOrigin`]: where a local asset was issued, if recorded.
    Origin,
    /// [`StateKey::ChannelSend`] and [`StateKey::ChannelReceive`]: a sequence.
    Sequence,
    /// [`StateKey::ChannelPending`]: [`PendingPackets`].
    Pending,
    /// [`StateKey::LightClient`]: a [`LightClientState`].
    LightClient,
    /// [`StateKey::Unbonding`]: an [`UnbondingEntry`].
    Unbonding,
    /// [`StateKey::Jailed`], [`StateKey::Offense`] and [`StateKey::Settled`]: a flag (set or
    /// not).
    Flag,
}

impl ValueKind {
    /// The kind of value `key` holds.
    #[inline]
    pub fn of(key: &StateKey) -> ValueKind {
        match key {
            StateKey::Account(_) => ValueKind::Nonce,
            StateKey::Balance(..) | StateKey::Escrow(..) => ValueKind::Amount,
            StateKey::Validator(_) => ValueKind::Validator,
            StateKey::SidechainRegistry => ValueKind::Counter,
            StateKey::Sidechain(_) => ValueKind::Sidechain,
            StateKey::AssetOrigin(_) => ValueKind::Origin,
            StateKey::ChannelSend(_) | StateKey::ChannelReceive(_) => ValueKind::Sequence,
            StateKey::ChannelPending(_) => ValueKind::Pending,
            StateKey::LightClient(_) => ValueKind::LightClient,
            StateKey::Unbonding(_) => ValueKind::Unbonding,
            StateKey::Jailed(_) | StateKey::Offense(_) | StateKey::Settled(..) => ValueKind::Flag,
        }
    }

    /// Words the value takes in a cell.
    #[inline]
    pub fn width(self) -> usize {
        match self {
            ValueKind::Nonce | ValueKind::Counter | ValueKind::Sequence | ValueKind::Flag => 1,
            ValueKind::Amount | ValueKind::Pending => 2,
            ValueKind::Unbonding => 3,
            ValueKind::Origin => 5,
            ValueKind::LightClient => 7,
            ValueKind::Validator => 2 + BLS_PUBLIC_KEY_BYTES / 8,
            ValueKind::Sidechain => 8,
        }
    }

    /// The default (absent) value of this kind.
    pub fn default_value(self) -> StateValue {
        StateValue::from_words(self, &[0u64; MAX_VALUE_WORDS])
    }
}

/// A value stored under a [`StateKey`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "crate::codec::bincode")]
pub enum StateValue {
    /// An account's nonce.
    Nonce(Nonce),
    /// A balance or an escrow.
    Amount(Amount),
    /// A validator's record.
    Validator(ValidatorRecord),
    /// The sidechain registry's counter.
    Counter(u64),
    /// A sidechain's record, if one was spawned with that id.
    Sidechain(Option<SidechainRecord>),
    /// A local asset's origin, once recorded.
    Origin(Option<AssetOrigin>),
    /// A channel's next sequence.
    Sequence(Sequence),
    /// A channel's unresolved packets.
    Pending(PendingPackets),
    /// A light client's latest trusted header.
    LightClient(LightClientState),
    /// Coins unbonding.
    Unbonding(UnbondingEntry),
    /// A flag: a jailed validator, a punished offence.
    Flag(bool),
}

fn bytes_to_words<const N: usize>(bytes: &[u8; N], out: &mut [u64]) {
    for (w, chunk) in out.iter_mut().zip(bytes.chunks(8)) {
        let mut b = [0u8; 8];
        b[..chunk.len()].copy_from_slice(chunk);
        *w = u64::from_le_bytes(b);
    }
}

fn words_to_bytes<const N: usize>(words: &[u64]) -> [u8; N] {
    let mut out = [0u8; N];
    for (chunk, w) in out.chunks_mut(8).zip(words) {
        let b = w.to_le_bytes();
        let len = chunk.len();
        chunk.copy_from_slice(&b[..len]);
    }
    out
}

/// Bit of an origin's first word that says the origin is recorded (chain ids are 32 bits).
const ORIGIN_PRESENT: u64 = 1 << 32;

impl StateValue {
    /// This value's kind.
    pub fn kind(&self) -> ValueKind {
        match self {
            StateValue::Nonce(_) => ValueKind::Nonce,
            StateValue::Amount(_) => ValueKind::Amount,
            StateValue::Validator(_) => ValueKind::Validator,
            StateValue::Counter(_) => ValueKind::Counter,
            StateValue::Sidechain(_) => ValueKind::Sidechain,
            StateValue::Origin(_) => ValueKind::Origin,
            StateValue::Sequence(_) => ValueKind::Sequence,
            StateValue::Pending(_) => ValueKind::Pending,
            StateValue::LightClient(_) => ValueKind::LightClient,
            StateValue::Unbonding(_) => ValueKind::Unbonding,
            StateValue::Flag(_) => ValueKind::Flag,
        }
    }

    /// The default (absent) value `key` holds.
    pub fn default_for(key: &StateKey) -> StateValue {
        ValueKind::of(key).default_value()
    }

    /// Whether this is its kind's default, i.e. the key holding it is absent.
    pub fn is_default(&self) -> bool {
        let mut w = [0u64; MAX_VALUE_WORDS];
        self.to_words(&mut w);
        w.iter().all(|x| *x == 0)
    }

    /// Encode into `out` (the first [`ValueKind::width`] words; the rest are left as they are).
    #[inline]
    pub fn to_words(&self, out: &mut [u64; MAX_VALUE_WORDS]) {
        match self {
            StateValue::Nonce(n) => out[0] = n.0,
            StateValue::Amount(a) => {
                out[0] = a.0 as u64;
                out[1] = (a.0 >> 64) as u64;
            }
            StateValue::Validator(v) => {
                out[0] = v.stake.0 as u64;
                out[1] = (v.stake.0 >> 64) as u64;
                bytes_to_words(&v.key, &mut out[2..]);
            }
            StateValue::Counter(c) => out[0] = *c,
            StateValue::Sidechain(record) => match record {
                None => out.fill(0),
                Some(r) => {
                    bytes_to_words(&r.spawner.0, &mut out[0..4]);
                    out[4] = r.deposit.0 as u64;
                    out[5] = (r.deposit.0 >> 64) as u64;
                    let retired: u32 = match r.status {
                        SidechainStatus::Active => 0,
                        SidechainStatus::Retired { from_epoch } => from_epoch,
                    };
                    out[6] = u64::from(r.committee_size)
                        | u64::from(r.block_time_ms) << 16
                        | u64::from(retired) << 32;
                    out[7] = u64::from(r.epoch_length) | u64::from(r.activation_epoch) << 32;
                }
            },
            StateValue::Origin(o) => match o {
                None => out[..5].fill(0),
                Some(o) => {
                    out[0] = ORIGIN_PRESENT | u64::from(o.chain.0);
                    bytes_to_words(&o.asset.0, &mut out[1..5]);
                }
            },
            StateValue::Sequence(s) => out[0] = s.0,
            StateValue::Pending(p) => {
                out[0] = p.first.0;
                out[1] = p.count;
            }
            StateValue::LightClient(c) => {
                out[0] = c.height.0;
                bytes_to_words(&c.header.0, &mut out[1..5]);
                out[5] = c.epoch.0;
                out[6] = c.main_epoch.0;
            }
            StateValue::Unbonding(u) => {
                out[0] = u.amount.0 as u64;
                out[1] = (u.amount.0 >> 64) as u64;
                out[2] = u.release_epoch.0;
            }
            StateValue::Flag(f) => out[0] = u64::from(*f),
        }
    }

    /// Decode a value of `kind` from its words (`words` holds at least `kind.width()` words;
    /// missing words read as zero). Every word pattern decodes to some value, and encoding it
    /// again gives the same words back for the words a kind uses, except that unknown status
    /// or flag bits are normalised.
    #[inline]
    pub fn from_words(kind: ValueKind, words: &[u64]) -> StateValue {
        let w = |i: usize| words.get(i).copied().unwrap_or(0);
        let amount = |i: usize| Amount(u128::from(w(i)) | (u128::from(w(i + 1)) << 64));
        match kind {
            ValueKind::Nonce => StateValue::Nonce(Nonce(w(0))),
            ValueKind::Amount => StateValue::Amount(amount(0)),
            ValueKind::Validator => {
                let mut key_words = [0u64; BLS_PUBLIC_KEY_BYTES / 8];
                for (i, k) in key_words.iter_mut().enumerate() {
                    *k = w(2 + i);
                }
                StateValue::Validator(ValidatorRecord {
                    stake: amount(0),
                    key: words_to_bytes(&key_words),
                })
            }
            ValueKind::Counter => StateValue::Counter(w(0)),
            ValueKind::Sidechain => {
                // A record has a committee of at least one seat: committee size 0 reads as
                // absent; a retirement epoch of 0 as active.
                let committee_size = w(6) as u16;
                if committee_size == 0 {
                    StateValue::Sidechain(None)
                } else {
                    let retired = (w(6) >> 32) as u32;
                    StateValue::Sidechain(Some(SidechainRecord {
                        spawner: Address(words_to_bytes(&[w(0), w(1), w(2), w(3)])),
                        deposit: amount(4),
                        committee_size,
                        block_time_ms: (w(6) >> 16) as u16,
                        epoch_length: w(7) as u32,
                        activation_epoch: (w(7) >> 32) as u32,
                        status: if retired == 0 {
                            SidechainStatus::Active
                        } else {
                            SidechainStatus::Retired {
                                from_epoch: retired,
                            }
                        },
                    }))
                }
            }
            ValueKind::Origin => {
                if w(0) & ORIGIN_PRESENT == 0 {
                    StateValue::Origin(None)
                } else {
                    StateValue::Origin(Some(AssetOrigin {
                        chain: ChainId(w(0) as u32),
                        asset: AssetId(words_to_bytes(&[w(1), w(2), w(3), w(4)])),
                    }))
                }
            }
            ValueKind::Sequence => StateValue::Sequence(Sequence(w(0))),
            ValueKind::Pending => StateValue::Pending(PendingPackets {
                first: Sequence(w(0)),
                count: w(1),
            }),
            ValueKind::LightClient => StateValue::LightClient(LightClientState {
                height: Height(w(0)),
                header: Digest(words_to_bytes(&[w(1), w(2), w(3), w(4)])),
                epoch: Epoch(w(5)),
                main_epoch: Epoch(w(6)),
            }),
            ValueKind::Unbonding => StateValue::Unbonding(UnbondingEntry {
                amount: amount(0),
                release_epoch: Epoch(w(2)),
            }),
            ValueKind::Flag => StateValue::Flag(w(0) != 0),
        }
    }
}

/// A value of one kind given for a key that holds another.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("key {key:?} holds {expected:?} values, got a {found:?} value")]
pub struct KindMismatch {
    /// The key.
    pub key: StateKey,
    /// What it holds.
    pub expected: ValueKind,
    /// What was given.
    pub found: ValueKind,
}
