//! A chain's committee as it is kept: checked keys with their proofs of possession, the
//! stored form of a committee, and where the next epoch's committee comes from.
//!
//! A committee member's key must carry a checked proof of possession
//! ([`PopVerifiedKey`]), and core offers no way to make one except verifying the proof. The
//! proofs are kept beside the state in a [`KeyBook`] (persisted by
//! [`ChainStore`](crate::ChainStore)): each key's proof is checked when it enters the book. A
//! [`CommitteeRecord`] is a committee in encodable form, its proofs travelling with it.
//!
//! Which validators sit in the next epoch's committee is a policy of the chain, not of this
//! crate: a [`CommitteeSource`] answers it at each epoch's last block (the main chain from its
//! own validator registry; a sidechain from the main chain's assignment).

use std::collections::HashMap;

use banyan_core::certificate::{Committee, CommitteeMember, MAX_COMMITTEE_SIZE};
use banyan_core::codec::{BoundedVec, Decode, Encode};
use banyan_core::header::BlockHeader;
use banyan_core::ids::{Address, Epoch};
use banyan_core::keys::{
    BlsPublicKey, KeyError, PopVerifiedKey, ProofOfPossession, BLS_PUBLIC_KEY_BYTES,
};
use banyan_core::state::State;

/// Where a chain's next committee comes from: asked once per epoch, with the state after the
/// block that ends the epoch before it.
///
/// Contract: every validator of the chain draws the same committee — a deterministic function
/// of its arguments and of data all of them hold alike (the main chain reads its own
/// registry; a sidechain reads the committees its main chain assigned, waiting for the main
/// chain to reach the epoch it needs). [`CommitteeError::Empty`] means no validator is
/// eligible; the chain then keeps its current committee for one more epoch.
pub trait CommitteeSource: Send {
    /// The committee of `epoch`, which begins after the committed block `ending` (whose
    /// state is `state`), its keys checked through `keys`: every member's proof of
    /// possession must be in the book when this returns (a source that draws keys from
    /// elsewhere checks and adds them).
    fn next_committee(
        &self,
        state: &State,
        ending: &BlockHeader,
        epoch: Epoch,
        keys: &mut KeyBook,
    ) -> Result<Committee, CommitteeError>;
}

/// Why no committee could be built.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CommitteeError {
    /// No validator has stake.
    #[error("the validator registry is empty: no account has stake, so there is no committee")]
    Empty,
    /// A record's key is not a valid BLS public key.
    #[error("validator record of account {address} holds an invalid BLS key: {source}")]
    BadKey {
        /// The account.
        address: Address,
        /// Why the key is invalid.
        source: KeyError,
    },
    /// No checked proof of possession is known for a record's key.
    #[error(
        "no proof of possession is known for the BLS key {key} of account {address}; the key \
         book is incomplete (the data directory is damaged: resync the node)"
    )]
    MissingProof {
        /// The account.
        address: Address,
        /// The key (hex).
        key: String,
    },
    /// The committee could not be formed.
    #[error("cannot form the committee: {0}")]
    Committee(String),
}

/// BLS keys whose proofs of possession were checked, with the proofs (to persist them).
#[derive(Clone, Debug, Default)]
pub struct KeyBook {
    keys: HashMap<[u8; BLS_PUBLIC_KEY_BYTES], (PopVerifiedKey, ProofOfPossession)>,
}

impl KeyBook {
    /// An empty book.
    pub fn new() -> Self {
        Self::default()
    }

    /// Check `pop` for `key` and add it. A key already in the book is not checked again.
    pub fn verify_and_insert(
        &mut self,
        key: &BlsPublicKey,
        pop: &ProofOfPossession,
    ) -> Result<PopVerifiedKey, KeyError> {
        if let Some((k, _)) = self.keys.get(key.as_bytes()) {
            return Ok(*k);
        }
        let verified = pop.verify(key)?;
        self.keys.insert(*key.as_bytes(), (verified, *pop));
        Ok(verified)
    }

    /// The checked key with these bytes.
    pub fn get(&self, key: &[u8; BLS_PUBLIC_KEY_BYTES]) -> Option<&PopVerifiedKey> {
        self.keys.get(key).map(|(k, _)| k)
    }

    /// The proof of possession of `key`.
    pub fn proof(&self, key: &[u8; BLS_PUBLIC_KEY_BYTES]) -> Option<&ProofOfPossession> {
        self.keys.get(key).map(|(_, p)| p)
    }

    /// Every key with its proof of possession, in key order.
    pub fn entries(&self) -> Vec<(BlsPublicKey, ProofOfPossession)> {
        let mut out: Vec<(BlsPublicKey, ProofOfPossession)> =
            self.keys.values().map(|(k, p)| (*k.key(), *p)).collect();
        out.sort_by(|a, b| a.0.as_bytes().cmp(b.0.as_bytes()));
        out
    }

    /// Whether `key` is in the book.
    pub fn contains(&self, key: &[u8; BLS_PUBLIC_KEY_BYTES]) -> bool {
        self.keys.contains_key(key)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether the book is empty.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// One committee member as stored: the key, its proof of possession and its weight.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct MemberRecord {
    /// The BLS key.
    pub key: BlsPublicKey,
    /// Its proof of possession.
    pub pop: ProofOfPossession,
    /// Voting weight.
    pub stake: u64,
}

/// A committee in an encodable form (a [`Committee`] holds checked keys, which only a proof
/// check can make, so the proofs travel with it).
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
#[bincode(crate = "banyan_core::codec::bincode")]
pub struct CommitteeRecord {
    /// Members in bitmap order.
    pub members: BoundedVec<MemberRecord, MAX_COMMITTEE_SIZE>,
}

impl CommitteeRecord {
    /// The record of `committee`, with proofs from `keys`.
    pub fn from_committee(committee: &Committee, keys: &KeyBook) -> Result<Self, CommitteeError> {
        let mut members = Vec::with_capacity(committee.len());
        for m in committee.members() {
            let key = *m.key.key();
            let pop = keys
                .proof(key.as_bytes())
                .ok_or_else(|| CommitteeError::MissingProof {
                    address: Address::default(),
                    key: key.to_hex(),
                })?;
            members.push(MemberRecord {
                key,
                pop: *pop,
                stake: m.stake,
            });
        }
        let members = BoundedVec::new(members)
            .map_err(|m| CommitteeError::Committee(format!("{} members", m.len())))?;
        Ok(CommitteeRecord { members })
    }

    /// The committee of `epoch`, checking every proof of possession again (`keys` caches
    /// checked keys and learns the new ones).
    pub fn to_committee(&self, epoch: Epoch, keys: &mut KeyBook) -> Result<Committee, KeyError> {
        let mut members = Vec::with_capacity(self.members.len());
        for m in self.members.iter() {
            let key = keys.verify_and_insert(&m.key, &m.pop)?;
            members.push(CommitteeMember {
                key,
                stake: m.stake,
            });
        }
        Committee::new(epoch, members).map_err(|e| KeyError::Encoding {
            what: "committee record",
            reason: e.to_string(),
        })
    }
}
