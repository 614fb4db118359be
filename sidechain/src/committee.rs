//! A sidechain's committees, taken from its main chain.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use banyan_chain::{CommitteeError, CommitteeSource, KeyBook};
use banyan_core::certificate::Committee;
use banyan_core::header::BlockHeader;
use banyan_core::ids::{ChainId, Epoch};
use banyan_core::state::State;
use banyan_mainchain::assignment::Assignments;

/// How often a sidechain waiting for its main chain looks again.
const POLL: Duration = Duration::from_millis(20);
/// How often the wait is logged.
const LOG_EVERY: Duration = Duration::from_secs(5);

/// The [`CommitteeSource`] of a sidechain: the epoch after the block `ending` is certified by
/// the committee of the main-chain epoch in progress at `ending`'s timestamp (never one before
/// activation; see [`banyan_mainchain::assignment`]). While the main chain has not committed a
/// block stamped that late it waits (the sidechain cannot know its committee before), until
/// `cancel` is set. A sidechain the main chain no longer runs (retired) has no committee:
/// [`CommitteeError::Empty`], and the last one carries over while its instance is stopped.
pub struct MainChainCommittees {
    chain: ChainId,
    activation: u32,
    assignments: Arc<Assignments>,
    cancel: Arc<AtomicBool>,
}

impl MainChainCommittees {
    /// The committees of `chain`, activated at main epoch `activation`, from `assignments`;
    /// a wait ends when `cancel` is set.
    pub fn new(
        chain: ChainId,
        activation: u32,
        assignments: Arc<Assignments>,
        cancel: Arc<AtomicBool>,
    ) -> Self {
        MainChainCommittees {
            chain,
            activation,
            assignments,
            cancel,
        }
    }
}

/// The main-chain epoch whose assignment serves the sidechain epoch that follows a block
/// stamped `ending_ms` (of a sidechain activated at main epoch `activation`): the one in
/// progress at that time, never one before activation. `None` while the main chain has not
/// committed a block stamped that late.
pub fn serving_epoch(
    assignments: &Assignments,
    activation: u32,
    ending_ms: u64,
) -> Result<Option<Epoch>, banyan_mainchain::AssignmentError> {
    Ok(assignments
        .epoch_at(ending_ms)?
        .map(|at| at.max(Epoch(u64::from(activation)))))
}

impl CommitteeSource for MainChainCommittees {
    fn next_committee(
        &self,
        _state: &State,
        ending: &BlockHeader,
        epoch: Epoch,
        keys: &mut KeyBook,
    ) -> Result<Committee, CommitteeError> {
        let fail = |e: banyan_mainchain::AssignmentError| CommitteeError::Committee(e.to_string());
        let started = Instant::now();
        let mut logged = started;
        loop {
            if let Some(main_epoch) =
                serving_epoch(&self.assignments, self.activation, ending.timestamp_ms)
                    .map_err(fail)?
            {
                match self
                    .assignments
                    .committee(self.chain, main_epoch)
                    .map_err(fail)?
                {
                    Some(Some(record)) => {
                        tracing::debug!(
                            chain = %self.chain, epoch = %epoch, main_epoch = %main_epoch,
                            "next committee from the main chain"
                        );
                        return record
                            .to_committee(epoch, keys)
                            .map_err(|e| CommitteeError::Committee(e.to_string()));
                    }
                    Some(None) => return Err(CommitteeError::Empty),
                    None => {}
                }
            }
            if self.cancel.load(Ordering::Relaxed) {
                return Err(CommitteeError::Committee(format!(
                    "chain {} stopped while waiting for the main chain to pass {} ms",
                    self.chain, ending.timestamp_ms
                )));
            }
            if logged.elapsed() >= LOG_EVERY {
                logged = Instant::now();
                tracing::info!(
                    chain = %self.chain, epoch = %epoch, until_ms = ending.timestamp_ms,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "waiting for the main chain to assign the next committee"
                );
            }
            std::thread::sleep(POLL);
        }
    }
}
