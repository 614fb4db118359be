//! The sidechains this node serves. The main chain assigns every running sidechain a
//! committee each epoch ([`banyan_mainchain::assignment`]); a supervisor thread watches the
//! main chain's committed epochs and
//! - starts the instance of a sidechain whose committee of the current main epoch holds this
//!   validator, from the sidechain's genesis (derived from main-chain state: no configuration);
//!   a newcomer to a running sidechain follows it from there, checking every block, until the
//!   epoch it serves in;
//! - stops the instance once this validator has left the committee the main chain assigns
//!   and no longer sits in the committee of the sidechain's current epoch, or once the
//!   sidechain is retired. Its data stays in the store;
//! - sends the checkpoints of the sidechains it serves to the main chain
//!   ([`crate::checkpoints`]).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};
use banyan_core::ids::{ChainId, Epoch};
use banyan_core::keys::{AccountSecretKey, BlsPublicKey};
use banyan_core::value::SidechainRecord;
use banyan_mainchain::assignment::Assignments;

use crate::checkpoints::Checkpointer;
use crate::service::Node;

/// How often the supervisor looks at the main chain.
const TICK: Duration = Duration::from_millis(50);
/// Least time between two reports of the same failure.
const REPORT_EVERY: Duration = Duration::from_secs(10);

/// What the supervisor decides for one sidechain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Start (or keep) its instance.
    Run,
    /// Stop its instance if running.
    Stop,
    /// Leave it as it is.
    Keep,
}

/// The decision for sidechain `record` at main epoch `epoch`, given whether this validator
/// serves on the committee the main chain assigned it for `epoch`, when its instance runs
/// here whether it sits in the committee of the sidechain's current epoch, and whether the
/// node follows every running sidechain (`follow_sidechains`).
pub fn decide(
    record: &SidechainRecord,
    epoch: Epoch,
    member: bool,
    serving: Option<bool>,
    follow_all: bool,
) -> Decision {
    if !record.runs_in(epoch.0) {
        // Not activated yet (nothing to stop) or retired (stop).
        return if u64::from(record.activation_epoch) > epoch.0 {
            Decision::Keep
        } else {
            Decision::Stop
        };
    }
    if member || follow_all {
        return Decision::Run;
    }
    match serving {
        // Left the committee: serve out the sidechain epoch it still sits in, then stop (the
        // sidechain's next epoch takes this main epoch's committee or a later one).
        Some(false) => Decision::Stop,
        _ => Decision::Keep,
    }
}

/// The supervisor: runs until `stop` is set.
pub fn spawn_supervisor(
    node: Arc<Node>,
    assignments: Arc<Assignments>,
    me: BlsPublicKey,
    account: AccountSecretKey,
    follow_all: bool,
    stop: Arc<AtomicBool>,
) -> Result<std::thread::JoinHandle<()>> {
    std::thread::Builder::new()
        .name("sidechains".into())
        .spawn(move || {
            let mut last_report: Option<(String, Instant)> = None;
            let mut checkpointer = Checkpointer::default();
            while !stop.load(Ordering::Relaxed) {
                let result = reconcile(&node, &assignments, &me, follow_all).and_then(|()| {
                    let registry = assignments.registry()?;
                    checkpointer.tick(&node, &assignments, &registry, &account)
                });
                if let Err(e) = result {
                    let text = format!("{e:#}");
                    let repeat = last_report
                        .as_ref()
                        .is_some_and(|(t, at)| *t == text && at.elapsed() < REPORT_EVERY);
                    if !repeat {
                        tracing::warn!("sidechains: {text}");
                        last_report = Some((text, Instant::now()));
                    }
                }
                std::thread::sleep(TICK);
            }
        })
        .map_err(|e| anyhow!("cannot start the sidechain supervisor: {e}"))
}

/// One look at the main chain: start and stop instances as [`decide`] says.
fn reconcile(
    node: &Node,
    assignments: &Arc<Assignments>,
    me: &BlsPublicKey,
    follow_all: bool,
) -> Result<()> {
    let Some(epoch) = assignments.latest_epoch()? else {
        return Ok(());
    };
    let registry = assignments.registry()?;
    if registry.is_empty() {
        return Ok(());
    }
    let assignment = assignments.of(epoch)?;
    for (chain, record) in &registry {
        let member = assignment
            .as_ref()
            .and_then(|a| a.committee(*chain))
            .is_some_and(|c| c.members().iter().any(|m| m.key.key() == me));
        let instance = node.instance(*chain);
        let serving = instance
            .as_ref()
            .map(|i| i.shared().status.committee_index.is_some());
        match decide(record, epoch, member, serving, follow_all) {
            Decision::Run if instance.is_none() => {
                let setup = node.sidechain_setup(*chain, record, assignments)?;
                node.add_chain(setup)?;
                tracing::info!(
                    chain = chain.0, main_epoch = %epoch,
                    "assigned to this sidechain's committee: instance started"
                );
            }
            Decision::Stop if instance.is_some() => {
                node.remove_chain(*chain);
                tracing::info!(
                    chain = chain.0, main_epoch = %epoch, retired = !record.is_active(),
                    "no longer serving this sidechain: instance stopped"
                );
            }
            _ => {}
        }
    }
    Ok(())
}

/// Whether `chain` is a spawned sidechain's id.
pub fn is_sidechain(chain: ChainId) -> bool {
    chain.0 & banyan_core::tx::SIDECHAIN_ID_BIT != 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use banyan_core::ids::{Address, Amount};
    use banyan_core::value::SidechainStatus;

    fn record(activation: u32, status: SidechainStatus) -> SidechainRecord {
        SidechainRecord {
            spawner: Address([7; 32]),
            deposit: Amount(1_000_000),
            committee_size: 4,
            block_time_ms: 500,
            epoch_length: 100,
            activation_epoch: activation,
            status,
        }
    }

    #[test]
    fn instances_start_for_members_and_stop_after_leaving_or_retirement() {
        let active = record(3, SidechainStatus::Active);
        // Not activated yet: nothing to do, member or not.
        assert_eq!(decide(&active, Epoch(2), false, None, true), Decision::Keep);
        // Assigned: run (a newcomer follows until its epoch); following all: run too.
        assert_eq!(decide(&active, Epoch(3), true, None, false), Decision::Run);
        assert_eq!(decide(&active, Epoch(5), false, None, true), Decision::Run);
        // Not assigned and not running: leave it.
        assert_eq!(
            decide(&active, Epoch(5), false, None, false),
            Decision::Keep
        );
        // Left the assignment but still in the sidechain's current committee: serve it out.
        assert_eq!(
            decide(&active, Epoch(5), false, Some(true), false),
            Decision::Keep
        );
        // Out of both: stop.
        assert_eq!(
            decide(&active, Epoch(5), false, Some(false), false),
            Decision::Stop
        );
        // Retired in epoch 6: runs through 6, stops from 7 whatever the membership.
        let retired = record(3, SidechainStatus::Retired { from_epoch: 7 });
        assert_eq!(
            decide(&retired, Epoch(6), true, Some(true), false),
            Decision::Run
        );
        assert_eq!(
            decide(&retired, Epoch(7), true, Some(true), true),
            Decision::Stop
        );
    }
}
