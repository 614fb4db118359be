//! Checkpoints of the sidechains this node serves: their certified headers taken to the main
//! chain (`SubmitCheckpoint`), where they are verified against the committee the main chain
//! assigned and kept as its light client of each sidechain.
//!
//! A sidechain is checkpointed at the end of each of its epochs and every
//! [`CHECKPOINT_INTERVAL`] blocks in between. For each due checkpoint one member of the
//! sidechain's committee is designated (by the target height, in turn); it sends the
//! transaction from its account at once, and the other members do after
//! [`BACKUP_AFTER`] if the main chain has not recorded it by then, so a crashed or
//! censored member does not stop checkpoints. A checkpoint that arrives second is refused as
//! stale and costs its sender the fee.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Context, Result};
use banyan_chain::ChainStore;
use banyan_core::ids::{Amount, ChainId, Epoch, Height};
use banyan_core::keys::AccountSecretKey;
use banyan_core::tx::{StateKey, TxBody, TxKind};
use banyan_core::value::{LightClientState, SidechainRecord, StateValue};
use banyan_mainchain::assignment::Assignments;

use crate::chain::ChainInstance;
use crate::service::Node;

/// Most blocks between two checkpoints of a sidechain inside one of its epochs.
pub const CHECKPOINT_INTERVAL: u64 = 20;
/// How long the members not designated for a checkpoint wait before sending it themselves.
pub const BACKUP_AFTER: Duration = Duration::from_secs(3);
/// How long a sent checkpoint may stay unrecorded before it is sent again.
const RESEND_AFTER: Duration = Duration::from_secs(10);
/// The fee a checkpoint pays (native coins on the main chain).
pub const CHECKPOINT_FEE: Amount = Amount(1);

/// The main chain's latest checkpoint of `chain` (its default when there is none).
pub fn latest(main: &ChainStore, chain: ChainId) -> Result<LightClientState> {
    match main.state_value(&StateKey::LightClient(chain))? {
        StateValue::LightClient(c) => Ok(c),
        other => Err(anyhow!(
            "light client of chain {}: holds {other:?}",
            chain.0
        )),
    }
}

/// The next block of a sidechain to checkpoint, given its latest checkpoint (`after`), its
/// committed tip and its epoch length: the last block of the first epoch that ended after
/// the checkpoint, else the tip once it is [`CHECKPOINT_INTERVAL`] blocks past it, else none.
/// Epoch `k` of a chain whose epochs are `length` blocks ends at height `(k + 1) * length`.
pub fn target(after: Height, tip: Height, length: u64) -> Option<Height> {
    if tip <= after || length == 0 {
        return None;
    }
    // The first epoch end strictly after `after`.
    let end = (after.0 / length + 1).saturating_mul(length);
    if end <= tip.0 {
        return Some(Height(end));
    }
    (tip.0 - after.0 >= CHECKPOINT_INTERVAL).then_some(tip)
}

/// Whether the member at `index` of a committee of `size` is designated for the checkpoint
/// of `height`.
pub fn designated(height: Height, index: usize, size: usize) -> bool {
    size > 0 && (height.0 / CHECKPOINT_INTERVAL) % (size as u64) == index as u64
}

/// Where one sidechain's checkpointing stands on this node.
#[derive(Default)]
struct Progress {
    /// The target height and when it was first seen due.
    due: Option<(Height, Instant)>,
    /// The target sent last and when.
    sent: Option<(Height, Instant)>,
}

/// The checkpoints this node sends; one per node, driven by the sidechain supervisor.
#[derive(Default)]
pub struct Checkpointer {
    chains: HashMap<ChainId, Progress>,
}

impl Checkpointer {
    /// Send the checkpoints that are due from this node, for every sidechain of `registry`
    /// it runs as a committee member.
    pub fn tick(
        &mut self,
        node: &Node,
        assignments: &Assignments,
        registry: &[(ChainId, SidechainRecord)],
        account: &AccountSecretKey,
    ) -> Result<()> {
        let Some(main) = node.instance(ChainId::MAIN) else {
            return Ok(());
        };
        self.chains
            .retain(|chain, _| registry.iter().any(|(c, _)| c == chain));
        for (chain, record) in registry {
            let Some(side) = node.instance(*chain) else {
                continue;
            };
            let status = side.shared().status;
            let Some(index) = status.committee_index else {
                continue;
            };
            let checkpoint = latest(&main.store, *chain)?;
            let length = u64::from(record.epoch_length);
            let Some(target) = target(checkpoint.height, Height(status.height), length) else {
                self.chains.remove(chain);
                continue;
            };
            let now = Instant::now();
            let progress = self.chains.entry(*chain).or_default();
            let first_due = match progress.due {
                Some((t, at)) if t == target => at,
                _ => {
                    progress.due = Some((target, now));
                    now
                }
            };
            if !designated(target, index, status.committee_size)
                && first_due.elapsed() < BACKUP_AFTER
            {
                continue;
            }
            if progress
                .sent
                .is_some_and(|(t, at)| t == target && at.elapsed() < RESEND_AFTER)
            {
                continue;
            }
            match send(node, &main, &side, assignments, record, target, account) {
                Ok(()) => {
                    progress.sent = Some((target, now));
                    tracing::debug!(chain = chain.0, height = target.0, "checkpoint sent");
                }
                Err(e) => {
                    // Not retried at once: the next tick after RESEND_AFTER tries again.
                    progress.sent = Some((target, now));
                    return Err(e.context(format!(
                        "checkpoint of sidechain {} at height {}",
                        chain.0, target.0
                    )));
                }
            }
        }
        Ok(())
    }
}

/// The main-chain epoch whose assignment certified sidechain epoch `epoch` of `side`.
fn main_epoch_of(
    side: &ChainStore,
    assignments: &Assignments,
    record: &SidechainRecord,
    epoch: Epoch,
) -> Result<Epoch> {
    let activation = Epoch(u64::from(record.activation_epoch));
    if epoch.0 == 0 {
        return Ok(activation);
    }
    let epoch_record = side
        .epoch_record(epoch)?
        .with_context(|| format!("no record of sidechain epoch {epoch}"))?;
    let base = side
        .block_by_id(&epoch_record.base)?
        .with_context(|| format!("the block sidechain epoch {epoch} starts from is missing"))?;
    banyan_sidechain::serving_epoch(
        assignments,
        record.activation_epoch,
        base.header.timestamp_ms,
    )?
    .with_context(|| format!("the main chain has not reached sidechain epoch {epoch} yet"))
}

fn send(
    node: &Node,
    main: &ChainInstance,
    side: &ChainInstance,
    assignments: &Assignments,
    record: &SidechainRecord,
    target: Height,
    account: &AccountSecretKey,
) -> Result<()> {
    let chain = side.chain;
    let proof = side
        .store
        .certified_header(target)?
        .with_context(|| format!("no commit proof of height {} yet", target.0))?;
    let main_epoch = main_epoch_of(&side.store, assignments, record, proof.epoch())?;
    let sender = account.public_key();
    let committed = match main.mempool.committed_state() {
        Some(state) => banyan_chain::mempool::nonce_in(&state, &sender.address()),
        None => main.store.nonce(&sender.address())?,
    };
    let nonce = main.mempool.next_nonce(&sender.address(), committed);
    let body = TxBody {
        chain: ChainId::MAIN,
        network: main.mempool.network(),
        sender,
        nonce,
        fee: CHECKPOINT_FEE,
        kind: TxKind::SubmitCheckpoint {
            chain,
            main_epoch,
            proof: Box::new(proof),
        },
    };
    node.submit_local(main, body.sign(account))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_are_epoch_ends_then_every_interval() {
        // Epochs of 100 blocks: the end of epoch 0 (height 100) first, whatever the tip.
        assert_eq!(target(Height(0), Height(130), 100), Some(Height(100)));
        assert_eq!(target(Height(90), Height(100), 100), Some(Height(100)));
        // Inside an epoch: the tip once 20 blocks past the checkpoint.
        assert_eq!(target(Height(100), Height(119), 100), None);
        assert_eq!(target(Height(100), Height(120), 100), Some(Height(120)));
        assert_eq!(target(Height(0), Height(19), 100), None);
        // Epochs shorter than the interval: each end, one by one.
        assert_eq!(target(Height(10), Height(95), 10), Some(Height(20)));
        // Nothing new.
        assert_eq!(target(Height(50), Height(50), 100), None);
        assert_eq!(target(Height(50), Height(40), 100), None);
    }

    #[test]
    fn each_member_is_designated_in_turn() {
        let who = |h| {
            (0..4)
                .filter(|&i| designated(Height(h), i, 4))
                .collect::<Vec<_>>()
        };
        assert_eq!(who(20), vec![1]);
        assert_eq!(who(45), vec![2]);
        assert_eq!(who(100), vec![1]);
        assert!(!designated(Height(20), 0, 0));
    }
}
