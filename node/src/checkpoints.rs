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
//!
//! A retired sidechain takes no new transactions; until its retirement takes effect (the next
//! main epoch) its members checkpoint its tip whenever its state changed, so the checkpoint
//! that is final then holds every balance. From then on the nodes holding its data settle
//! each account's native balance back to the main chain (`SettleBalance`, proven against the
//! final checkpoint's state root): the members of its last committee share the accounts, and
//! anyone holding the data sends what is still unsettled after [`BACKUP_AFTER`].

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use banyan_chain::ChainStore;
use banyan_core::header::BlockHeader;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height};
use banyan_core::keys::AccountSecretKey;
use banyan_core::state::State;
use banyan_core::tx::{StateKey, TxBody, TxKind};
use banyan_core::value::{LightClientState, SidechainRecord, SidechainStatus, StateValue};
use banyan_mainchain::assignment::Assignments;
use std::sync::Arc;

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

/// The checkpoints and settlements this node sends; one per node, driven by the sidechain
/// supervisor.
#[derive(Default)]
pub struct Checkpointer {
    chains: HashMap<ChainId, Progress>,
    settling: HashMap<ChainId, Settling>,
}

/// For a sidechain whose retirement is taking effect: its tip, if its state differs from
/// the checkpointed block's (so the final checkpoint holds every balance).
fn final_target(
    side: &ChainStore,
    checkpoint: &LightClientState,
    tip: Height,
) -> Result<Option<Height>> {
    if tip <= checkpoint.height {
        return Ok(None);
    }
    if checkpoint.height.0 == 0 {
        return Ok(Some(tip));
    }
    let root = |h: Height| -> Result<Option<banyan_core::hash::Digest>> {
        Ok(side.block_by_height(h)?.map(|b| b.header.state_root))
    };
    Ok((root(tip)? != root(checkpoint.height)?).then_some(tip))
}

/// A retired sidechain's state at its final checkpoint, the checkpointed header, and the
/// native balances in that state (in key order).
type FinalState = (Arc<State>, BlockHeader, Vec<(Address, Amount)>);

/// Settling one retired sidechain from this node's copy of its state.
#[derive(Default)]
struct Settling {
    /// Its state at the final checkpoint, that block's header and the native balances in it
    /// (in key order), once loaded.
    state: Option<FinalState>,
    /// When the balances were last gone through.
    scanned: Option<Instant>,
    /// When each account's settlement was sent.
    sent: HashMap<Address, Instant>,
    /// When it was first seen settling.
    since: Option<Instant>,
    /// Every balance settled: nothing more to do.
    done: bool,
    /// A reason this node cannot settle it, reported once.
    unable: Option<String>,
}

/// Most settlements one node sends in one tick.
const SETTLE_BATCH: usize = 256;
/// How often the balances left to settle are gone through.
const SCAN_EVERY: Duration = Duration::from_secs(1);

impl Settling {
    fn tick(
        &mut self,
        node: &Node,
        main: &ChainInstance,
        chain: ChainId,
        spawner: Address,
        account: &AccountSecretKey,
    ) -> Result<()> {
        if self.done || self.unable.is_some() {
            return Ok(());
        }
        let since = *self.since.get_or_insert_with(Instant::now);
        if self.state.is_none() {
            match load_final(node, main, chain, spawner) {
                Ok(Some((state, header))) => {
                    let balances = state
                        .sorted_entries()
                        .into_iter()
                        .filter_map(|entry| match entry {
                            (StateKey::Balance(owner, asset), StateValue::Amount(amount))
                                if asset == AssetId::NATIVE && amount > Amount::ZERO =>
                            {
                                Some((owner, amount))
                            }
                            _ => None,
                        })
                        .collect();
                    self.state = Some((state, header, balances));
                }
                // This node holds no data of it: nothing it can prove.
                Ok(None) => return Ok(()),
                Err(e) => {
                    let why = format!("{e:#}");
                    self.unable = Some(why.clone());
                    return Err(anyhow!(
                        "cannot settle the balances of retired sidechain {} from this node: {why}",
                        chain.0
                    ));
                }
            }
        }
        if self.scanned.is_some_and(|at| at.elapsed() < SCAN_EVERY) {
            return Ok(());
        }
        self.scanned = Some(Instant::now());
        let Some((state, header, balances)) = &self.state else {
            return Ok(());
        };
        let side = ChainStore::new(node.assignments.store().store().clone(), chain);
        // The members of its last committee share the accounts; the others, and everyone
        // after BACKUP_AFTER, send what is still unsettled.
        let me = node.validator_key();
        let (index, size) = match side.epoch()? {
            // Only who sits where: the stored keys, no proof of possession checked again.
            Some(r) => (
                r.committee.members.iter().position(|m| m.key == me),
                r.committee.members.len(),
            ),
            None => (None, 1),
        };
        let backup = since.elapsed() >= BACKUP_AFTER;
        let mut unsettled = 0usize;
        let mut batch = Vec::new();
        for (i, &(owner, amount)) in balances.iter().enumerate() {
            let key = StateKey::Balance(owner, AssetId::NATIVE);
            let settled = matches!(
                main.store.state_value(&StateKey::Settled(chain, owner))?,
                StateValue::Flag(true)
            );
            if settled {
                continue;
            }
            unsettled += 1;
            let mine = index.is_some_and(|x| i % size.max(1) == x);
            if !(mine || backup)
                || self
                    .sent
                    .get(&owner)
                    .is_some_and(|at| at.elapsed() < RESEND_AFTER)
                || batch.len() >= SETTLE_BATCH
            {
                continue;
            }
            batch.push((owner, amount, state.prove(&key)));
        }
        if unsettled == 0 {
            self.done = true;
            tracing::info!(
                chain = chain.0,
                "every balance of the retired sidechain is settled"
            );
            return Ok(());
        }
        let sender = account.public_key();
        for (owner, amount, proof) in batch {
            let committed = match main.mempool.committed_state() {
                Some(state) => banyan_chain::mempool::nonce_in(&state, &sender.address()),
                None => main.store.nonce(&sender.address())?,
            };
            let body = TxBody {
                chain: ChainId::MAIN,
                network: main.mempool.network(),
                sender,
                nonce: main.mempool.next_nonce(&sender.address(), committed),
                fee: CHECKPOINT_FEE,
                kind: TxKind::SettleBalance {
                    chain,
                    owner,
                    amount,
                    header: Box::new(header.clone()),
                    proof: Box::new(proof),
                },
            };
            self.sent.insert(owner, Instant::now());
            node.submit_local(main, body.sign(account))
                .with_context(|| format!("settlement of {owner} on sidechain {}", chain.0))?;
        }
        Ok(())
    }
}

/// The state of retired sidechain `chain` at its final checkpoint and the checkpointed
/// header, from this node's store; `None` when this node holds no data of it.
fn load_final(
    node: &Node,
    main: &ChainInstance,
    chain: ChainId,
    spawner: Address,
) -> Result<Option<(Arc<State>, BlockHeader)>> {
    let side = ChainStore::new(node.assignments.store().store().clone(), chain);
    if side.committed()?.is_none() {
        return Ok(None);
    }
    let checkpoint = latest(&main.store, chain)?;
    if checkpoint.height.0 == 0 {
        // Never checkpointed: it settles as its genesis, where the spawner held the whole
        // deposit (what the escrow holds); the main chain checks no proof then.
        let Some(genesis) = side.block_by_height(Height(0))? else {
            return Ok(None);
        };
        let escrow = match main
            .store
            .state_value(&StateKey::Escrow(chain, AssetId::NATIVE))?
        {
            StateValue::Amount(a) => a,
            _ => Amount::ZERO,
        };
        let mut state = State::new();
        state.set(
            StateKey::Balance(spawner, AssetId::NATIVE),
            StateValue::Amount(escrow),
        )?;
        tracing::warn!(
            chain = chain.0,
            "retired sidechain was never checkpointed: it settles as its genesis, the deposit \
             back to its spawner"
        );
        return Ok(Some((Arc::new(state), genesis.header)));
    }
    let Some(block) = side.block_by_height(checkpoint.height)? else {
        // Behind the checkpoint: another node settles.
        return Ok(None);
    };
    if block.header.id() != checkpoint.header {
        bail!(
            "its block {} here is not the checkpointed one: this node's copy diverged",
            checkpoint.height.0
        );
    }
    let state = side.load_state()?;
    if state.root() != block.header.state_root {
        bail!(
            "its state changed after the final checkpoint (height {}); balances settle as of \
             that checkpoint, which this node's state no longer proves",
            checkpoint.height.0
        );
    }
    Ok(Some((Arc::new(state), block.header)))
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
        self.settling
            .retain(|chain, _| registry.iter().any(|(c, _)| c == chain));
        let main_epoch = assignments.latest_epoch()?.unwrap_or(Epoch(0));
        for (chain, record) in registry {
            if let SidechainStatus::Retired { from_epoch } = record.status {
                if main_epoch.0 >= u64::from(from_epoch) {
                    let settling = self.settling.entry(*chain).or_default();
                    settling.tick(node, &main, *chain, record.spawner, account)?;
                    continue;
                }
            }
            let Some(side) = node.instance(*chain) else {
                continue;
            };
            let status = side.shared().status;
            let Some(index) = status.committee_index else {
                continue;
            };
            let checkpoint = latest(&main.store, *chain)?;
            let length = u64::from(record.epoch_length);
            let tip = Height(status.height);
            let due = if record.is_active() {
                target(checkpoint.height, tip, length)
            } else {
                // Retiring: the checkpoint held when the retirement takes effect is final, and
                // the balances settle against it; keep it at the tip's state.
                final_target(&side.store, &checkpoint, tip)?
            };
            let Some(target) = due else {
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
