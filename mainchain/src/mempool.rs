//! Transactions waiting for a block: checked once on the way in, ordered per sender by nonce.
//!
//! Admission ([`Mempool::insert`]) runs the cheap checks first — encoded size, chain id, fee,
//! nonce against the committed one, duplicates, per-sender and global limits — then checks the
//! survivors' signatures (and stake proofs of possession) in one batch, without holding the
//! lock, and inserts the good ones. A transaction in the pool has a verified signature, so a
//! block containing *exactly* that transaction (same body, same signature) need not be checked
//! again ([`Mempool::is_verified_tx`]). The other way round, transactions whose signatures a
//! block check verified are remembered for a while ([`Mempool::note_block_verified`]): the
//! gossiped copy of a transaction often arrives after a proposal carrying it, and its
//! signature is then not checked a second time. [`Mempool::signature_counts`] says how many
//! checks each way ran and how many were spared.
//!
//! Memory is bounded: at most `max_txs` transactions of at most
//! [`MAX_TX_BYTES`](banyan_core::tx::MAX_TX_BYTES) each, at most `max_per_sender` per sender,
//! and nonces at most `max_per_sender` ahead of the committed one (a gap can never be filled
//! past that bound, so such a transaction could never be selected).

use std::collections::BTreeMap;
// foldhash with a per-pool random seed: ids and addresses are hashes already, and the seed
// keeps anyone from aiming transactions at one bucket.
use hashbrown::{HashMap, HashSet};
use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};

use banyan_core::codec::encoded_len;
use banyan_core::hash::Digest;
use banyan_core::ids::{Address, Amount, ChainId, Nonce};
use banyan_core::keys::AccountSignature;
use banyan_core::tx::{SignedTx, MAX_TX_BYTES};
use banyan_dag::ledger::VerifiedTx;
use banyan_dag::State;

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
}

impl Default for MempoolLimits {
    fn default() -> Self {
        MempoolLimits {
            max_txs: 100_000,
            max_per_sender: 4096,
            min_fee: Amount::ZERO,
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
}

impl MempoolError {
    /// A short, bounded label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            MempoolError::TooLarge { .. } => "too_large",
            MempoolError::WrongChain { .. } => "wrong_chain",
            MempoolError::FeeTooLow { .. } => "fee_too_low",
            MempoolError::StaleNonce { .. } => "stale_nonce",
            MempoolError::NonceTooFar { .. } => "nonce_too_far",
            MempoolError::Duplicate => "duplicate",
            MempoolError::NonceTaken(_) => "nonce_taken",
            MempoolError::SenderFull { .. } => "sender_full",
            MempoolError::Full { .. } => "full",
            MempoolError::BadSignature(_) => "bad_signature",
        }
    }
}

#[derive(Debug)]
struct Entry {
    tx: SignedTx,
    sender: Address,
    bytes: usize,
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
}

impl Inner {
    fn sender_len(&self, sender: &Address) -> usize {
        self.senders.get(sender).map_or(0, |q| q.by_nonce.len())
    }

    fn remove_id(&mut self, id: &Digest) -> bool {
        let Some(entry) = self.txs.remove(id) else {
            return false;
        };
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
}

/// The pending transactions of one chain. `Send + Sync`; every method locks briefly and
/// signature checks run outside the lock.
#[derive(Debug)]
pub struct Mempool {
    chain: ChainId,
    limits: MempoolLimits,
    inner: Mutex<Inner>,
    /// Transactions whose signatures a block check verified, newest last.
    block_verified: Mutex<RecentlyVerified>,
    counts: Counts,
    /// The committed state as of the chain's last commit, for nonce look-ups off the
    /// consensus thread without reading the store.
    committed: RwLock<Option<Arc<State>>>,
}

impl Mempool {
    /// An empty mempool for `chain`.
    pub fn new(chain: ChainId, limits: MempoolLimits) -> Self {
        Mempool {
            chain,
            limits,
            inner: Mutex::new(Inner::default()),
            block_verified: Mutex::new(RecentlyVerified::default()),
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

    /// The limits.
    pub fn limits(&self) -> &MempoolLimits {
        &self.limits
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave `Inner` half-updated in a way that
        // matters more than losing the pool, so a poisoned lock is simply taken over.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
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

    /// Admit `txs`; one result per transaction, in order (the id of each admitted one).
    /// `committed_nonce` gives each sender's next nonce in the committed state.
    pub fn insert(
        &self,
        txs: Vec<SignedTx>,
        committed_nonce: impl Fn(&Address) -> Nonce,
    ) -> Vec<Result<Digest, MempoolError>> {
        let mut results: Vec<Option<Result<Digest, MempoolError>>> = vec![None; txs.len()];
        // Stateless checks and committed nonces, without the lock.
        let mut candidates: Vec<(usize, Digest, Address, usize)> = Vec::with_capacity(txs.len());
        for (i, tx) in txs.iter().enumerate() {
            let size = encoded_len(tx);
            let sender = tx.sender();
            let check = self
                .stateless(tx, size)
                .and_then(|()| self.nonce_window(tx.body.nonce, committed_nonce(&sender)));
            match check {
                Ok(()) => candidates.push((i, tx.id(), sender, size)),
                Err(e) => results[i] = Some(Err(e)),
            }
        }
        // Duplicates and limits against the pool, counting this batch.
        let mut survivors = Vec::with_capacity(candidates.len());
        {
            let inner = self.lock();
            let mut batch_ids = HashSet::with_capacity(candidates.len());
            let mut batch_nonces: HashSet<(Address, Nonce)> = HashSet::new();
            let mut per_sender: HashMap<Address, usize> = HashMap::new();
            let mut total = inner.txs.len();
            for (i, id, sender, size) in candidates {
                let nonce = txs[i].body.nonce;
                let r = if inner.txs.contains_key(&id) || !batch_ids.insert(id) {
                    Err(MempoolError::Duplicate)
                } else if inner
                    .senders
                    .get(&sender)
                    .is_some_and(|q| q.by_nonce.contains_key(&nonce))
                    || !batch_nonces.insert((sender, nonce))
                {
                    Err(MempoolError::NonceTaken(nonce))
                } else {
                    let count = per_sender
                        .entry(sender)
                        .or_insert_with(|| inner.sender_len(&sender));
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
                        Ok(())
                    }
                };
                match r {
                    Ok(()) => survivors.push((i, id, sender, size)),
                    Err(e) => results[i] = Some(Err(e)),
                }
            }
        }
        // Signatures, in one batch, without the lock; those a block check verified already
        // are not checked again.
        let known: Vec<bool> = {
            let recent = self.recently_verified();
            survivors
                .iter()
                .map(|s| recent.contains(&s.1, &txs[s.0].signature))
                .collect()
        };
        let batch: Vec<SignedTx> = survivors
            .iter()
            .zip(&known)
            .filter(|(_, &k)| !k)
            .map(|(s, _)| txs[s.0].clone())
            .collect();
        let checked = batch.len();
        let batch_ok = VerifiedTx::verify_batch(batch).is_ok();
        self.counts
            .admission
            .fetch_add(checked as u64, Ordering::Relaxed);
        self.counts
            .spared
            .fetch_add((survivors.len() - checked) as u64, Ordering::Relaxed);
        let verified: Vec<Result<(), String>> = survivors
            .iter()
            .zip(&known)
            .map(|(s, &k)| {
                if k || batch_ok {
                    Ok(())
                } else {
                    VerifiedTx::verify(txs[s.0].clone())
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            })
            .collect();
        // Insert, checking again what may have changed while the lock was released.
        let mut inner = self.lock();
        for ((i, id, sender, bytes), ok) in survivors.into_iter().zip(verified) {
            let tx = &txs[i];
            let r = match ok {
                Err(why) => Err(MempoolError::BadSignature(why)),
                Ok(()) if inner.txs.contains_key(&id) => Err(MempoolError::Duplicate),
                Ok(()) if inner.txs.len() >= self.limits.max_txs => Err(MempoolError::Full {
                    max: self.limits.max_txs,
                }),
                Ok(()) if inner.sender_len(&sender) >= self.limits.max_per_sender => {
                    Err(MempoolError::SenderFull {
                        max: self.limits.max_per_sender,
                    })
                }
                Ok(()) => {
                    let arrival = inner.next_arrival;
                    let q = inner.senders.entry(sender).or_insert_with(|| SenderQueue {
                        arrival,
                        by_nonce: BTreeMap::new(),
                    });
                    match q.by_nonce.entry(tx.body.nonce) {
                        std::collections::btree_map::Entry::Occupied(_) => {
                            Err(MempoolError::NonceTaken(tx.body.nonce))
                        }
                        std::collections::btree_map::Entry::Vacant(slot) => {
                            slot.insert(id);
                            if q.arrival == arrival {
                                inner.order.insert(arrival, sender);
                                inner.next_arrival += 1;
                            }
                            inner.txs.insert(
                                id,
                                Entry {
                                    tx: tx.clone(),
                                    sender,
                                    bytes,
                                },
                            );
                            Ok(id)
                        }
                    }
                }
            };
            results[i] = Some(r);
        }
        drop(inner);
        results
            .into_iter()
            .map(|r| r.unwrap_or(Err(MempoolError::Duplicate)))
            .collect()
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
    pub fn remove_committed(&self, txs: &[SignedTx], state: Arc<State>) {
        self.set_committed_state(state.clone());
        let nonce_of = |a: &Address| crate::app::nonce_in(&state, a);
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
    }

    /// Drop these transactions (for example ones a proposal found unpayable).
    pub fn remove(&self, ids: &[Digest]) {
        let mut inner = self.lock();
        for id in ids {
            inner.remove_id(id);
        }
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
