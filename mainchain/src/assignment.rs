//! Sidechain committees: who serves each running sidechain in each main-chain epoch.
//!
//! # The rule
//!
//! The committees of main-chain epoch `e` are [`banyan_vrf::sortition_by_seats`] with
//! - the validator set: the main chain's committee of `e` (its registry at the end of `e − 1`,
//!   see [`crate::registry`]), stakes as voting weights;
//! - the seed: the main chain's seed of `e`;
//! - the chains: every sidechain that *runs in* `e` ([`SidechainRecord::runs_in`]: activated
//!   at or before `e`, not retired before `e`), each with its `committee_size` seats; the main
//!   chain is not drawn (its committee is its whole registry);
//! - the rotation bound [`MAX_ROTATION`], and the assignment of `e − 1` when some sidechain
//!   ran then (otherwise every seat is drawn afresh).
//!
//! A spawn in epoch `x` activates at `x + 1` and a retirement in `x` takes effect at `x + 1`,
//! so which sidechains run in `e` is settled once epoch `e` has begun: reading the registry
//! at any later time gives the same answer, and every node computes the same assignment.
//!
//! # Which main epoch serves a sidechain epoch
//!
//! A sidechain's epoch 0 is served by the committee of its activation epoch. Each later epoch
//! `k + 1` is served by the committee of the main-chain epoch in progress when the sidechain
//! block that ended epoch `k` was made: the latest main epoch that began (its base block's
//! timestamp) at or before that block's timestamp `T`, and never one before activation
//! ([`Assignments::epoch_at`]). Block timestamps are part of what was committed, so every
//! node picks the same epoch; it can pick only once its main chain has committed a block
//! stamped at or after `T` (then every epoch that began by `T` is known to it), and waits
//! for that otherwise. A sidechain thus keeps pace with the main chain whatever the length of
//! its epochs: a short one reuses a committee while the main epoch lasts, a long one takes
//! the newest assignment when it ends.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use banyan_chain::{ChainError, ChainStore, CommitteeRecord, KeyBook};
use banyan_core::certificate::{Committee, CommitteeMember};
use banyan_core::ids::{ChainId, Epoch};
use banyan_core::value::SidechainRecord;
use banyan_ledger::PacketProofs;
use banyan_vrf::{sortition_by_seats, Assignment, ChainSeats, Fraction, ValidatorSet, VrfError};

/// At most `ceil(r * c)` members of a committee of `c` seats are replaced by choice from one
/// main-chain epoch to the next: `r = 1/3`.
pub const MAX_ROTATION: Fraction = Fraction::clamped(1, 3);

/// Assignments kept in memory (the most recent epochs).
const CACHED_EPOCHS: usize = 64;

/// Why an assignment could not be computed.
#[derive(Debug, thiserror::Error)]
pub enum AssignmentError {
    /// The main chain's store failed.
    #[error("main chain: {0}")]
    Chain(#[from] ChainError),
    /// A stored committee does not form again.
    #[error("main chain committee of epoch {epoch}: {detail}")]
    Committee {
        /// The epoch.
        epoch: Epoch,
        /// What is wrong.
        detail: String,
    },
    /// Sortition refused its inputs.
    #[error("sortition of epoch {epoch}: {source}")]
    Sortition {
        /// The epoch.
        epoch: Epoch,
        /// Why.
        source: VrfError,
    },
}

/// The sidechains of `registry` that run in `epoch`, with their seats.
pub fn running(registry: &[(ChainId, SidechainRecord)], epoch: Epoch) -> Vec<ChainSeats> {
    registry
        .iter()
        .filter(|(_, r)| r.runs_in(epoch.0))
        .map(|(chain, r)| ChainSeats {
            chain: *chain,
            seats: usize::from(r.committee_size),
        })
        .collect()
}

/// The assignment of `epoch` from its inputs (see the module docs): `validators` is the main
/// chain's committee of `epoch`.
pub fn assign(
    epoch: Epoch,
    main_committee: &Committee,
    seed: &banyan_vrf::EpochSeed,
    chains: &[ChainSeats],
    previous: Option<&Assignment>,
) -> Result<Assignment, AssignmentError> {
    let members: Vec<CommitteeMember> = main_committee.members().to_vec();
    let validators = ValidatorSet::new(members)
        .map_err(|source| AssignmentError::Sortition { epoch, source })?;
    let previous = previous.filter(|p| p.epoch().checked_next() == Some(epoch));
    sortition_by_seats(epoch, seed, &validators, chains, MAX_ROTATION, previous)
        .map_err(|source| AssignmentError::Sortition { epoch, source })
}

/// Sidechain assignments computed from a main chain's store, each epoch once.
pub struct Assignments {
    store: ChainStore,
    keys: Mutex<KeyBook>,
    cache: Mutex<BTreeMap<Epoch, Arc<Assignment>>>,
    /// When each main epoch began (its base block's timestamp), as read.
    starts: Mutex<BTreeMap<Epoch, u64>>,
}

impl Assignments {
    /// Assignments read from the main chain stored in `store`.
    pub fn new(store: ChainStore) -> Self {
        Assignments {
            store,
            keys: Mutex::new(KeyBook::new()),
            cache: Mutex::new(BTreeMap::new()),
            starts: Mutex::new(BTreeMap::new()),
        }
    }

    /// The main chain's store.
    pub fn store(&self) -> &ChainStore {
        &self.store
    }

    /// The sidechain registry as the main chain has committed it.
    pub fn registry(&self) -> Result<Vec<(ChainId, SidechainRecord)>, AssignmentError> {
        Ok(self.store.sidechains()?)
    }

    /// The main chain's latest epoch.
    pub fn latest_epoch(&self) -> Result<Option<Epoch>, AssignmentError> {
        Ok(self.store.epoch()?.map(|r| r.epoch))
    }

    /// The assignment of main-chain `epoch`, or `None` while the main chain has not reached
    /// it.
    pub fn of(&self, epoch: Epoch) -> Result<Option<Arc<Assignment>>, AssignmentError> {
        if let Some(a) = self.cached(epoch) {
            return Ok(Some(a));
        }
        let Some(latest) = self.latest_epoch()? else {
            return Ok(None);
        };
        if epoch > latest {
            return Ok(None);
        }
        let registry = self.registry()?;
        // Walk down to the first epoch of the run of epochs with sidechains that ends here
        // (or to one already computed), then compute upwards: each uses the one before.
        let mut first = epoch;
        while first.0 > 0 && self.cached(first).is_none() {
            let before = Epoch(first.0 - 1);
            if running(&registry, before).is_empty() {
                break;
            }
            first = before;
        }
        let mut previous = self.cached(first);
        let mut e = first;
        loop {
            let a = match (&previous, self.cached(e)) {
                (_, Some(a)) => a,
                (prev, None) => {
                    let a = Arc::new(self.compute(e, &registry, prev.as_deref())?);
                    let mut cache = self.lock_cache();
                    cache.insert(e, a.clone());
                    // Recent epochs are the ones asked for; an old one is computed again.
                    while cache.len() > CACHED_EPOCHS {
                        cache.pop_first();
                    }
                    a
                }
            };
            if e == epoch {
                return Ok(Some(a));
            }
            previous = Some(a);
            e = Epoch(e.0 + 1);
        }
    }

    /// The main epoch in progress at time `t_ms` (the latest that began at or before it), or
    /// `None` while the main chain has committed no block stamped at or after `t_ms` (an
    /// epoch beginning by then may still be unknown here).
    pub fn epoch_at(&self, t_ms: u64) -> Result<Option<Epoch>, AssignmentError> {
        let Some(tip) = self.store.committed()? else {
            return Ok(None);
        };
        let Some(tip_block) = self.store.block_by_height(tip.height)? else {
            return Ok(None);
        };
        if tip_block.header.timestamp_ms < t_ms {
            return Ok(None);
        }
        let Some(latest) = self.latest_epoch()? else {
            return Ok(None);
        };
        let mut e = latest;
        loop {
            if e.0 == 0 || self.start_of(e)? <= t_ms {
                return Ok(Some(e));
            }
            e = Epoch(e.0 - 1);
        }
    }

    /// When main epoch `e` began: the timestamp of the block that ended `e - 1`.
    fn start_of(&self, e: Epoch) -> Result<u64, AssignmentError> {
        let known = match self.starts.lock() {
            Ok(s) => s.get(&e).copied(),
            Err(p) => p.into_inner().get(&e).copied(),
        };
        if let Some(t) = known {
            return Ok(t);
        }
        let missing = |what: &str| AssignmentError::Committee {
            epoch: e,
            detail: format!("{what} not stored"),
        };
        let record = self
            .store
            .epoch_record(e)?
            .ok_or_else(|| missing("epoch record"))?;
        let base = self
            .store
            .block_by_id(&record.base)?
            .ok_or_else(|| missing("base block"))?;
        let t = base.header.timestamp_ms;
        let mut starts = match self.starts.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        starts.insert(e, t);
        while starts.len() > CACHED_EPOCHS {
            starts.pop_first();
        }
        Ok(t)
    }

    fn compute(
        &self,
        epoch: Epoch,
        registry: &[(ChainId, SidechainRecord)],
        previous: Option<&Assignment>,
    ) -> Result<Assignment, AssignmentError> {
        let record = self
            .store
            .epoch_record(epoch)?
            .ok_or_else(|| AssignmentError::Committee {
                epoch,
                detail: "no epoch record stored".into(),
            })?;
        let committee = {
            let mut keys = match self.keys.lock() {
                Ok(k) => k,
                Err(p) => p.into_inner(),
            };
            record
                .committee
                .to_committee(epoch, &mut keys)
                .map_err(|e| AssignmentError::Committee {
                    epoch,
                    detail: e.to_string(),
                })?
        };
        assign(
            epoch,
            &committee,
            &record.seed,
            &running(registry, epoch),
            previous,
        )
    }

    fn cached(&self, epoch: Epoch) -> Option<Arc<Assignment>> {
        self.lock_cache().get(&epoch).cloned()
    }

    fn lock_cache(&self) -> std::sync::MutexGuard<'_, BTreeMap<Epoch, Arc<Assignment>>> {
        match self.cache.lock() {
            Ok(c) => c,
            Err(p) => p.into_inner(),
        }
    }
}

impl Assignments {
    /// The committee main-chain `epoch` assigned `chain`, as a record with every member's
    /// proof of possession: `None` while the main chain has not reached `epoch`,
    /// `Some(None)` when `chain` does not run in it.
    pub fn committee(
        &self,
        chain: ChainId,
        epoch: Epoch,
    ) -> Result<Option<Option<CommitteeRecord>>, AssignmentError> {
        let Some(assignment) = self.of(epoch)? else {
            return Ok(None);
        };
        let Some(c) = assignment.committee(chain) else {
            return Ok(Some(None));
        };
        let committee = Committee::new(epoch, c.members().to_vec()).map_err(|e| {
            AssignmentError::Committee {
                epoch,
                detail: e.to_string(),
            }
        })?;
        let keys = match self.keys.lock() {
            Ok(k) => k,
            Err(p) => p.into_inner(),
        };
        // Members come from the main committee of `epoch`, whose keys `of` checked into the
        // book.
        let record = CommitteeRecord::from_committee(&committee, &keys).map_err(|e| {
            AssignmentError::Committee {
                epoch,
                detail: e.to_string(),
            }
        })?;
        Ok(Some(Some(record)))
    }
}

/// The main chain's answers to its ledger about sidechains: the committee it assigned each
/// in each epoch, against which `SubmitCheckpoint` proofs are verified. Packet proofs are
/// refused (the trait's defaults; the relay will answer those).
pub struct AssignedCommittees(pub Arc<Assignments>);

impl PacketProofs for AssignedCommittees {
    fn assigned_committee(&self, chain: ChainId, epoch: Epoch) -> Option<Vec<CommitteeMember>> {
        match self.0.of(epoch) {
            Ok(Some(a)) => a.committee(chain).map(|c| c.members().to_vec()),
            Ok(None) => None,
            Err(e) => {
                // Only a failing store gets here; this node then refuses the checkpoint alone
                // and cannot agree with the others on the block: say why.
                tracing::error!(chain = chain.0, epoch = epoch.0, "assignment: {e}");
                None
            }
        }
    }
}
