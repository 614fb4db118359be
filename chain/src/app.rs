//! The application a chain's committee orders blocks for: [`ChainApp`] implements
//! [`consensus::Application`](banyan_consensus::Application) over the shared ledger, the
//! mempool and the chain's store.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use banyan_consensus::{AppError, Application, Payload};
use banyan_core::certificate::Committee;
use banyan_core::codec::encoded_len;
use banyan_core::hash::Digest;
use banyan_core::header::{Block, BlockHeader, MAX_BLOCK_BYTES, MAX_HEADER_BYTES};
use banyan_core::ids::{Address, Epoch, Height, Nonce};
use banyan_core::keys::{BlsPublicKey, ProofOfPossession};
use banyan_core::merkle::MerkleTree;
use banyan_core::state::State;
use banyan_core::tx::{outbox_leaves, Packet, SignedTx, StateKey, TxKind, MAX_TX_BYTES};
use banyan_core::value::StateValue;
use banyan_dag::Executor;
use banyan_ledger::Ledger;
use banyan_ledger::{end_of_epoch, Effect, Failure, Outcome, Receipt, SharedProofs, VerifiedTx};
use banyan_vrf::seed::MAX_SEED_CONTRIBUTIONS;
use banyan_vrf::{next_epoch_seed, SeedParams, VrfOutput, VrfProof};

use crate::committee::{CommitteeError, CommitteeRecord, CommitteeSource, KeyBook};
use crate::error::ChainError;
use crate::mempool::{nonce_in, Mempool};
use crate::spec::{ChainGenesis, ChainParams};
use crate::storage::{BlockCommit, ChainStore, CommittedTip, EpochRecord, ReceiptSummary};

/// Most executed, uncommitted blocks kept.
pub const MAX_SPECULATIVE_BLOCKS: usize = 256;
/// Most uncommitted ancestors re-executed to rebuild the state after a block (after a
/// restart, say).
pub const MAX_REBUILD_DEPTH: usize = 64;
/// Times a proposal is re-executed after dropping transactions refused at admission before
/// the leader gives up and proposes an empty block.
const MAX_PROPOSE_ATTEMPTS: usize = 8;

/// Told about each committed block (metrics, indexers, RPC subscriptions).
pub trait CommitObserver {
    /// `block` committed with `receipts`; executing it took `execute` (zero when the result
    /// of verification was reused) and writing it `persist`.
    fn committed(
        &mut self,
        block: &Block,
        receipts: &[Receipt],
        execute: Duration,
        persist: Duration,
    );
}

/// An observer that does nothing.
#[derive(Clone, Copy, Debug, Default)]
pub struct NoopObserver;

impl CommitObserver for NoopObserver {
    fn committed(&mut self, _: &Block, _: &[Receipt], _: Duration, _: Duration) {}
}

/// A block executed on its parent's state.
#[derive(Debug)]
struct Executed {
    height: Height,
    state_root: Digest,
    outbox_root: Digest,
    state: Arc<State>,
    receipts: Vec<Receipt>,
    writes: Vec<(StateKey, StateValue)>,
    packets: Vec<Packet>,
    execute: Duration,
}

type ContentKey = (Digest, Digest, Height);

fn content_key(header: &BlockHeader) -> ContentKey {
    (header.parent, header.tx_root, header.height)
}

/// Whether a failure is an admission failure: the transaction should never have been in the
/// block (it pays no fee, so a block of them would make spam free).
fn is_admission_failure(receipt: &Receipt) -> Option<&Failure> {
    match &receipt.outcome {
        Outcome::Failed(f) if !f.charges_fee() => Some(f),
        _ => None,
    }
}

/// The outbox root of a block's receipts: the Merkle root of the commitments of the packets
/// it sends, in receipt order (the empty root if none).
pub fn outbox_root(packets: &[Packet]) -> Digest {
    MerkleTree::from_leaf_hashes(outbox_leaves(packets)).root()
}

fn packets_of(receipts: &[Receipt]) -> Vec<Packet> {
    receipts
        .iter()
        .filter_map(|r| match &r.outcome {
            Outcome::Applied(Effect::PacketSent(p)) => Some((**p).clone()),
            _ => None,
        })
        .collect()
}

fn seed_params(epoch_length: u64) -> SeedParams {
    SeedParams {
        // Between 1 and MAX_SEED_CONTRIBUTIONS, so the cast is exact.
        contributions_per_epoch: epoch_length.clamp(1, u64::from(MAX_SEED_CONTRIBUTIONS)) as u32,
    }
}

fn vrf_output(header: &BlockHeader) -> Option<VrfOutput> {
    header.vrf_proof.map(|sig| VrfProof::from(sig).output())
}

/// One chain instance's application state: the committed state and tip, executed but
/// uncommitted blocks, the current epoch, and the store.
pub struct ChainApp {
    store: ChainStore,
    params: ChainParams,
    genesis_id: Digest,
    /// The network every transaction must sign: the main chain's genesis id (this chain's own
    /// genesis id only on the main chain).
    network: Digest,
    mempool: Arc<Mempool>,
    executor: Executor,
    observer: Box<dyn CommitObserver + Send>,
    committees: Box<dyn CommitteeSource>,
    state: Arc<State>,
    tip: CommittedTip,
    epoch: EpochRecord,
    committee: Committee,
    keys: KeyBook,
    seed: SeedParams,
    seed_outputs: Vec<VrfOutput>,
    by_id: HashMap<Digest, Arc<Executed>>,
    by_content: HashMap<ContentKey, Arc<Executed>>,
    failed: bool,
    /// What the ledger asks about other chains (packet proofs, sidechain committees).
    proofs: SharedProofs,
}

impl std::fmt::Debug for ChainApp {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChainApp")
            .field("chain", &self.params.chain)
            .field("tip", &self.tip)
            .field("epoch", &self.epoch.epoch)
            .finish_non_exhaustive()
    }
}

impl ChainApp {
    /// Open the chain in `store`: on a fresh store write the genesis (state, block, tip,
    /// epoch-0 record); otherwise load the committed state and tip, after checking the store
    /// was created from this genesis. `committees` draws each next epoch's committee;
    /// `threads` execution threads (1 = serial).
    pub fn open(
        store: ChainStore,
        genesis: &dyn ChainGenesis,
        committees: Box<dyn CommitteeSource>,
        mempool: Arc<Mempool>,
        threads: usize,
        observer: Box<dyn CommitObserver + Send>,
    ) -> Result<Self, ChainError> {
        let params = genesis.params();
        if store.chain() != params.chain {
            return Err(ChainError::Invalid(format!(
                "the store is opened for chain {}, the genesis is of chain {}",
                store.chain(),
                params.chain
            )));
        }
        if mempool.chain() != params.chain {
            return Err(ChainError::Invalid(format!(
                "the mempool is for chain {}, the genesis is of chain {}",
                mempool.chain(),
                params.chain
            )));
        }
        let genesis_block = genesis.block();
        let genesis_id = genesis_block.header.id();
        let network = genesis.network();
        if mempool.network() != network {
            return Err(ChainError::Invalid(format!(
                "the mempool is for network {}, the genesis is of network {network}",
                mempool.network()
            )));
        }
        match store.genesis_id()? {
            Some(stored) if stored != genesis_id => {
                return Err(ChainError::ForeignDataDir {
                    stored,
                    expected: genesis_id,
                })
            }
            Some(_) => {}
            None => {
                let committee = genesis.committee();
                let record = EpochRecord {
                    epoch: Epoch(0),
                    base: genesis_id,
                    base_height: Height(0),
                    committee: CommitteeRecord::from_committee(&committee, genesis.key_book())?,
                    seed: genesis.seed(),
                    proof: None,
                };
                let keys = genesis.key_book().entries();
                store.write_genesis(&genesis_block, &genesis.initial_state(), &keys, &record)?;
                tracing::info!(chain = %params.chain, genesis = %genesis_id, "genesis written");
            }
        }
        let tip = store.committed()?.ok_or_else(|| ChainError::Corrupt {
            what: "committed tip".into(),
            detail: "the genesis id is stored but no tip".into(),
        })?;
        let state = store.load_state()?;
        let root = state.root();
        if root != tip.state_root {
            return Err(ChainError::Corrupt {
                what: "committed state".into(),
                detail: format!(
                    "the stored state has root {root}, the tip at height {} says {}",
                    tip.height, tip.state_root
                ),
            });
        }
        let mut keys = store.load_keys()?;
        let epoch = store.epoch()?.ok_or_else(|| ChainError::Corrupt {
            what: "epoch record".into(),
            detail: "no epoch record stored".into(),
        })?;
        let committee = epoch
            .committee
            .to_committee(epoch.epoch, &mut keys)
            .map_err(|e| ChainError::Corrupt {
                what: format!("committee of epoch {}", epoch.epoch),
                detail: e.to_string(),
            })?;
        let seed = seed_params(params.epoch_length);
        // The VRF outputs of the epoch's blocks committed so far, from the stored blocks: a
        // restart in the middle of an epoch computes the same next seed.
        let mut seed_outputs = Vec::new();
        let mut h = epoch.base_height.0.saturating_add(1);
        while h <= tip.height.0 && seed_outputs.len() < seed.contributions_per_epoch as usize {
            let block = store
                .block_by_height(Height(h))?
                .ok_or_else(|| ChainError::Corrupt {
                    what: format!("committed block at height {h}"),
                    detail: "missing below the tip".into(),
                })?;
            seed_outputs.extend(vrf_output(&block.header));
            h += 1;
        }
        tracing::info!(
            chain = %params.chain, height = %tip.height, epoch = %epoch.epoch,
            "chain opened"
        );
        let state = Arc::new(state);
        mempool.set_committed_state(state.clone());
        Ok(ChainApp {
            store,
            genesis_id,
            network,
            mempool,
            executor: Executor::new(threads),
            observer,
            committees,
            state,
            tip,
            epoch,
            committee,
            keys,
            seed,
            seed_outputs,
            by_id: HashMap::new(),
            by_content: HashMap::new(),
            failed: false,
            proofs: SharedProofs::default(),
            params,
        })
    }

    /// The committed tip.
    pub fn committed_tip(&self) -> CommittedTip {
        self.tip
    }

    /// The committed state.
    pub fn state(&self) -> &State {
        &self.state
    }

    /// The chain's parameters.
    pub fn params(&self) -> &ChainParams {
        &self.params
    }

    /// Answer the ledger's questions about other chains with `proofs` (by default every packet
    /// proof and checkpoint is refused). The main chain's host passes its committee
    /// assignment, so that sidechain checkpoints can be verified.
    pub fn with_proofs(mut self, proofs: SharedProofs) -> Self {
        self.proofs = proofs;
        self
    }

    /// The genesis block id.
    pub fn genesis_id(&self) -> Digest {
        self.genesis_id
    }

    /// The store.
    pub fn store(&self) -> &ChainStore {
        &self.store
    }

    /// The mempool.
    pub fn mempool(&self) -> &Arc<Mempool> {
        &self.mempool
    }

    /// Whether a fatal failure happened (`commit` returned [`AppError::Fatal`]; it commits
    /// nothing more).
    pub fn has_failed(&self) -> bool {
        self.failed
    }

    /// The current epoch's record, with the proof that the previous epoch ended once the
    /// driver has stored it ([`ChainStore::put_epoch_proof`]).
    pub fn epoch_record(&self) -> EpochRecord {
        let mut record = self.epoch.clone();
        if record.proof.is_none() {
            if let Some(prev) = record.epoch.0.checked_sub(1) {
                match self.store.epoch_proof(Epoch(prev)) {
                    Ok(p) => record.proof = p,
                    Err(e) => tracing::error!(
                        chain = %self.params.chain, epoch = prev, error = %e,
                        "cannot read the epoch proof"
                    ),
                }
            }
        }
        record
    }

    /// The current epoch's committee.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }

    /// The committed block the current epoch starts from (the genesis block or the previous
    /// epoch's ending block): the base of the epoch's replica.
    pub fn epoch_base(&self) -> Result<Block, ChainError> {
        self.store
            .block_by_id(&self.epoch.base)?
            .ok_or_else(|| ChainError::Corrupt {
                what: format!("base block of epoch {}", self.epoch.epoch),
                detail: format!("block {} missing", self.epoch.base),
            })
    }

    /// The epoch of the block at `height` (`(height - 1) / epoch_length`; genesis is in
    /// epoch 0).
    pub fn epoch_of(&self, height: Height) -> Epoch {
        Epoch(height.0.saturating_sub(1) / self.params.epoch_length.max(1))
    }

    /// Whether the block at `height` ends its epoch.
    fn ends_epoch_at(&self, height: Height) -> bool {
        height.0 > 0 && height.0.is_multiple_of(self.params.epoch_length)
    }

    fn fail(&mut self, e: ChainError) {
        tracing::error!(chain = %self.params.chain, error = %e, "fatal chain failure: stop the node");
        self.failed = true;
    }

    fn cached(&self, block: &Block) -> Option<Arc<Executed>> {
        if let Some(e) = self.by_id.get(&block.header.id()) {
            return Some(e.clone());
        }
        self.by_content
            .get(&content_key(&block.header))
            .filter(|e| {
                e.state_root == block.header.state_root && e.outbox_root == block.header.outbox_root
            })
            .cloned()
    }

    fn remember(&mut self, key: ContentKey, id: Option<Digest>, e: Arc<Executed>) {
        if self.by_content.len() >= MAX_SPECULATIVE_BLOCKS {
            // Keep the blocks nearest the tip: drop the highest.
            if let Some(k) = self
                .by_content
                .iter()
                .max_by_key(|(_, v)| v.height)
                .map(|(k, _)| *k)
            {
                self.by_content.remove(&k);
            }
        }
        if self.by_id.len() >= MAX_SPECULATIVE_BLOCKS {
            if let Some(k) = self
                .by_id
                .iter()
                .max_by_key(|(_, v)| v.height)
                .map(|(k, _)| *k)
            {
                self.by_id.remove(&k);
            }
        }
        self.by_content.insert(key, e.clone());
        if let Some(id) = id {
            self.by_id.insert(id, e);
        }
    }

    fn execute(
        &mut self,
        base: &State,
        height: Height,
        txs: &[SignedTx],
    ) -> Result<Executed, ChainError> {
        let started = Instant::now();
        let epoch = self.epoch_of(height);
        let ledger = Ledger::new(self.params.chain, height, self.proofs.clone())
            .with_staking(self.params.staking, epoch);
        let vtxs: Vec<VerifiedTx> = txs
            .iter()
            .cloned()
            .map(VerifiedTx::assume_verified)
            .collect();
        let out = self
            .executor
            .execute(&ledger, base, &vtxs)
            .map_err(|e| ChainError::Exec(e.to_string()))?;
        let mut state = base.clone();
        state.apply(out.write_set.iter());
        let mut writes = out.write_set.to_vec();
        if self.ends_epoch_at(height) {
            // The epoch's last block also pays the unbonding coins due at the next epoch; the
            // state root covers it.
            let released = end_of_epoch(&state, epoch);
            if !released.is_empty() {
                let at: HashMap<StateKey, usize> = writes
                    .iter()
                    .enumerate()
                    .map(|(i, (k, _))| (*k, i))
                    .collect();
                state
                    .set_many(released.iter().copied())
                    .map_err(|e| ChainError::Exec(format!("end of epoch {epoch}: {e}")))?;
                for (k, v) in released {
                    match at.get(&k) {
                        Some(&i) => writes[i].1 = v,
                        None => writes.push((k, v)),
                    }
                }
            }
        }
        let state_root = state.root();
        let packets = packets_of(&out.receipts);
        Ok(Executed {
            height,
            state_root,
            outbox_root: outbox_root(&packets),
            state: Arc::new(state),
            writes,
            receipts: out.receipts,
            packets,
            execute: started.elapsed(),
        })
    }

    /// The state after `parent`: committed, cached, or rebuilt by re-executing its
    /// uncommitted ancestors from the store.
    fn state_after(&mut self, parent: &Block) -> Result<Arc<State>, String> {
        let id = parent.header.id();
        if id == self.tip.id {
            return Ok(self.state.clone());
        }
        if let Some(e) = self.cached(parent) {
            return Ok(e.state.clone());
        }
        if parent.header.height <= self.tip.height {
            return Err(format!(
                "block {id} at height {} is not on the committed chain (tip at height {})",
                parent.header.height, self.tip.height
            ));
        }
        // Walk back to the tip or to a cached ancestor, then execute forward.
        let mut chain = vec![parent.clone()];
        let mut base = loop {
            let Some(last) = chain.last() else {
                return Err("empty ancestry".into());
            };
            let pid = last.header.parent;
            if pid == self.tip.id {
                break self.state.clone();
            }
            if chain.len() > MAX_REBUILD_DEPTH {
                return Err(format!(
                    "block {id} is more than {MAX_REBUILD_DEPTH} blocks above the committed tip"
                ));
            }
            let p = match self.store.block_by_id(&pid) {
                Ok(Some(p)) => p,
                Ok(None) => return Err(format!("ancestor {pid} of block {id} is unknown")),
                Err(e) => return Err(e.to_string()),
            };
            if let Some(e) = self.cached(&p) {
                break e.state.clone();
            }
            if p.header.height <= self.tip.height {
                return Err(format!("block {id} does not extend the committed chain"));
            }
            chain.push(p);
        };
        for b in chain.iter().rev() {
            let e = self
                .execute(&base, b.header.height, &b.txs)
                .map_err(|e| e.to_string())?;
            if e.state_root != b.header.state_root {
                return Err(format!(
                    "re-executing block {} gives state root {}, it says {}",
                    b.header.id(),
                    e.state_root,
                    b.header.state_root
                ));
            }
            base = e.state.clone();
            // Keyed by content only: `verify` of this block still checks its signatures.
            self.remember(content_key(&b.header), None, Arc::new(e));
        }
        Ok(base)
    }

    fn build_payload(&mut self, parent: &Block) -> Result<Payload, String> {
        let base = self.state_after(parent)?;
        let height = Height(parent.header.height.0.saturating_add(1));
        let max_bytes = MAX_BLOCK_BYTES - MAX_HEADER_BYTES - 64;
        let mut txs = self
            .mempool
            .select(self.params.max_block_txs, max_bytes, |a| nonce_in(&base, a));
        for _ in 0..MAX_PROPOSE_ATTEMPTS {
            let executed = self
                .execute(&base, height, &txs)
                .map_err(|e| e.to_string())?;
            let refused: Vec<usize> = executed
                .receipts
                .iter()
                .enumerate()
                .filter(|(_, r)| is_admission_failure(r).is_some())
                .map(|(i, _)| i)
                .collect();
            if refused.is_empty() {
                let payload = Payload {
                    state_root: executed.state_root,
                    outbox_root: executed.outbox_root,
                    txs,
                };
                let header_key = (
                    parent.header.id(),
                    Block::compute_tx_root(&payload.txs),
                    height,
                );
                self.remember(header_key, None, Arc::new(executed));
                return Ok(payload);
            }
            // Drop each refused transaction and its sender's later ones (their nonces no
            // longer follow), and forget the refused ones: they cannot pay on this state.
            let mut cut: HashMap<Address, Nonce> = HashMap::new();
            let mut ids = Vec::with_capacity(refused.len());
            for i in refused {
                let tx = &txs[i];
                ids.push(tx.id());
                let n = cut.entry(tx.sender()).or_insert(tx.body.nonce);
                *n = (*n).min(tx.body.nonce);
            }
            self.mempool.remove(&ids);
            txs.retain(|tx| cut.get(&tx.sender()).is_none_or(|n| tx.body.nonce < *n));
        }
        Err("transactions kept failing admission".into())
    }

    fn check_block(&mut self, parent: &Block, block: &Block) -> Result<Arc<Executed>, String> {
        let h = &block.header;
        if h.chain != self.params.chain {
            return Err(format!(
                "block of chain {}, this is chain {}",
                h.chain, self.params.chain
            ));
        }
        if h.parent != parent.header.id() {
            return Err("the block's parent is not the given parent".into());
        }
        if h.height.0 != parent.header.height.0.saturating_add(1) {
            return Err(format!(
                "height {} does not follow the parent's {}",
                h.height, parent.header.height
            ));
        }
        if block.txs.len() > self.params.max_block_txs {
            return Err(format!(
                "{} transactions, more than the chain's limit of {}",
                block.txs.len(),
                self.params.max_block_txs
            ));
        }
        let size = encoded_len(block);
        if size > MAX_BLOCK_BYTES {
            return Err(format!("block of {size} bytes exceeds {MAX_BLOCK_BYTES}"));
        }
        // Each id is a hash of the encoded transaction: computed once here.
        let ids: Vec<Digest> = block.txs.iter().map(SignedTx::id).collect();
        if h.tx_root != Block::tx_root_of_ids(ids.clone()) {
            return Err("tx_root does not match the transactions".into());
        }
        let pooled = self.mempool.verified_among(&ids, &block.txs);
        let mut to_check = Vec::new();
        for (i, tx) in block.txs.iter().enumerate() {
            if tx.body.chain != self.params.chain {
                return Err(format!("transaction {i} is for chain {}", tx.body.chain));
            }
            if tx.body.network != self.network {
                return Err(format!(
                    "transaction {i} is for network {}",
                    tx.body.network
                ));
            }
            if tx.body.fee < self.params.min_fee {
                return Err(format!(
                    "transaction {i} pays fee {}, below the minimum {}",
                    tx.body.fee, self.params.min_fee
                ));
            }
            let tx_size = encoded_len(tx);
            if tx_size > MAX_TX_BYTES {
                return Err(format!(
                    "transaction {i} is {tx_size} bytes, over {MAX_TX_BYTES}"
                ));
            }
            if !pooled[i] {
                to_check.push(i);
            }
        }
        if !to_check.is_empty() {
            let batch: Vec<SignedTx> = to_check.iter().map(|&i| block.txs[i].clone()).collect();
            if let Err(e) = VerifiedTx::verify_batch(batch) {
                let i = to_check.get(e.index()).copied().unwrap_or(0);
                return Err(format!("transaction {i}: {}", strip_index(&e.to_string())));
            }
            // Their gossiped copies need no second check at admission.
            self.mempool
                .note_block_verified(to_check.iter().map(|&i| (ids[i], block.txs[i].signature)));
        }
        let base = self.state_after(parent)?;
        let executed = self
            .execute(&base, h.height, &block.txs)
            .map_err(|e| e.to_string())?;
        for (i, r) in executed.receipts.iter().enumerate() {
            if let Some(f) = is_admission_failure(r) {
                return Err(format!(
                    "transaction {i} ({}) is refused at admission ({f:?}): it pays no fee and \
                     must not be in a block",
                    block.txs[i].id()
                ));
            }
        }
        if executed.state_root != h.state_root {
            return Err(format!(
                "state root {} does not match execution ({})",
                h.state_root, executed.state_root
            ));
        }
        if executed.outbox_root != h.outbox_root {
            return Err(format!(
                "outbox root {} does not match execution ({})",
                h.outbox_root, executed.outbox_root
            ));
        }
        Ok(Arc::new(executed))
    }

    fn do_commit(&mut self, block: &Block) -> Result<(), ChainError> {
        let h = &block.header;
        let id = h.id();
        if h.height.0 != self.tip.height.0.saturating_add(1) || h.parent != self.tip.id {
            return Err(ChainError::OutOfOrder {
                id,
                height: h.height,
                tip: self.tip.height,
            });
        }
        let executed = match self.cached(block) {
            Some(e) => e,
            None => {
                let state = self.state.clone();
                let e = self.execute(&state, h.height, &block.txs)?;
                if e.state_root != h.state_root {
                    return Err(ChainError::Diverged {
                        height: h.height,
                        expected: h.state_root,
                        got: e.state_root,
                    });
                }
                Arc::new(e)
            }
        };
        let execute = executed.execute;
        let receipts: Vec<ReceiptSummary> = executed
            .receipts
            .iter()
            .map(|r| ReceiptSummary {
                applied: r.is_applied(),
                failure: match &r.outcome {
                    Outcome::Failed(f) => Some(format!("{f:?}")),
                    Outcome::Applied(_) => None,
                },
            })
            .collect();
        // Keys first staked in this block: keep their proofs of possession.
        let mut new_keys: Vec<(BlsPublicKey, ProofOfPossession)> = Vec::new();
        for (tx, r) in block.txs.iter().zip(&executed.receipts) {
            if let (
                TxKind::Stake {
                    validator_key, pop, ..
                },
                Outcome::Applied(Effect::Staked),
            ) = (&tx.body.kind, &r.outcome)
            {
                if !self.keys.contains(validator_key.as_bytes())
                    && !new_keys.iter().any(|(k, _)| k == validator_key)
                {
                    new_keys.push((*validator_key, **pop));
                }
            }
        }
        let mut book = self.keys.clone();
        for (k, p) in &new_keys {
            book.verify_and_insert(k, p).map_err(|e| {
                ChainError::Invalid(format!(
                    "committed stake with a bad proof of possession: {e}"
                ))
            })?;
        }
        let mut outputs = self.seed_outputs.clone();
        if outputs.len() < self.seed.contributions_per_epoch as usize {
            outputs.extend(vrf_output(h));
        }
        let next = if self.ends_epoch(h) {
            let next_epoch = Epoch(self.epoch.epoch.0.saturating_add(1));
            let (committee, record) =
                match self
                    .committees
                    .next_committee(&executed.state, h, next_epoch, &mut book)
                {
                    Ok(c) => {
                        let r = CommitteeRecord::from_committee(&c, &book)?;
                        (c, r)
                    }
                    Err(CommitteeError::Empty) => {
                        tracing::warn!(
                            chain = %self.params.chain, epoch = %next_epoch,
                            "no validator has stake: the committee carries over"
                        );
                        let r = self.epoch.committee.clone();
                        let c = r.to_committee(next_epoch, &mut book).map_err(|e| {
                            ChainError::Corrupt {
                                what: "current committee".into(),
                                detail: e.to_string(),
                            }
                        })?;
                        (c, r)
                    }
                    Err(e) => return Err(e.into()),
                };
            let seed = next_epoch_seed(self.epoch.epoch, &self.epoch.seed, &outputs, self.seed)
                .map_err(|e| ChainError::Invalid(format!("next epoch seed: {e}")))?;
            Some((
                committee,
                EpochRecord {
                    epoch: next_epoch,
                    base: id,
                    base_height: h.height,
                    committee: record,
                    seed,
                    proof: None,
                },
            ))
        } else {
            None
        };
        let started = Instant::now();
        self.store.write_commit(&BlockCommit {
            block,
            receipts: &receipts,
            packets: &executed.packets,
            writes: &executed.writes,
            new_keys: &new_keys,
            next_epoch: next.as_ref().map(|(_, r)| r),
        })?;
        let persist = started.elapsed();

        self.state = executed.state.clone();
        self.tip = CommittedTip {
            height: h.height,
            id,
            state_root: h.state_root,
        };
        self.keys = book;
        match next {
            Some((committee, record)) => {
                tracing::info!(
                    chain = %self.params.chain, epoch = %record.epoch, members = committee.len(),
                    "epoch ends: next committee recorded"
                );
                self.committee = committee;
                self.epoch = record;
                self.seed_outputs.clear();
            }
            None => self.seed_outputs = outputs,
        }
        let tip_height = self.tip.height;
        self.by_id.retain(|_, e| e.height > tip_height);
        self.by_content.retain(|_, e| e.height > tip_height);
        self.mempool
            .remove_committed(&block.txs, self.state.clone());
        self.observer
            .committed(block, &executed.receipts, execute, persist);
        Ok(())
    }
}

/// `Display` of a verify error without its own "transaction N:" prefix (the caller names
/// the block position instead of the batch position).
fn strip_index(s: &str) -> &str {
    match s.split_once(": ") {
        Some((head, rest)) if head.starts_with("transaction ") => rest,
        _ => s,
    }
}

impl Application for ChainApp {
    fn propose(&mut self, parent: &Block) -> Result<Payload, AppError> {
        Ok(match self.build_payload(parent) {
            Ok(p) => p,
            Err(why) => {
                tracing::warn!(
                    chain = %self.params.chain, parent = %parent.header.id(), reason = %why,
                    "proposing an empty block"
                );
                Payload {
                    txs: Vec::new(),
                    state_root: parent.header.state_root,
                    outbox_root: outbox_root(&[]),
                }
            }
        })
    }

    fn verify(&mut self, parent: &Block, block: &Block) -> Result<(), AppError> {
        let id = block.header.id();
        if self.by_id.contains_key(&id) {
            return Ok(());
        }
        let executed = self.check_block(parent, block).map_err(AppError::Invalid)?;
        self.remember(content_key(&block.header), Some(id), executed);
        Ok(())
    }

    fn commit(&mut self, block: &Block) -> Result<(), AppError> {
        if self.failed {
            return Err(AppError::Fatal(format!(
                "block {} not committed: chain {} failed before",
                block.header.height, self.params.chain
            )));
        }
        if block.header.height <= self.tip.height {
            return Ok(());
        }
        self.do_commit(block).map_err(|e| {
            let why = e.to_string();
            self.fail(e);
            AppError::Fatal(why)
        })
    }

    fn ends_epoch(&self, header: &BlockHeader) -> bool {
        self.ends_epoch_at(header.height)
    }
}

#[allow(dead_code)]
fn assert_thread_safety() {
    fn send<T: Send>() {}
    fn send_sync<T: Send + Sync>() {}
    send::<ChainApp>();
    send_sync::<SharedChainApp>();
    send_sync::<Mempool>();
    send_sync::<ChainStore>();
}

/// A [`ChainApp`] shared between the replica (which owns its application) and the driver
/// (which reads the tip and the epoch, and hands the app to the next epoch's
/// replica).
#[derive(Clone, Debug)]
pub struct SharedChainApp(pub Arc<Mutex<ChainApp>>);

impl SharedChainApp {
    /// Share `app`.
    pub fn new(app: ChainApp) -> Self {
        SharedChainApp(Arc::new(Mutex::new(app)))
    }

    /// Lock the app (a poisoned lock is taken over: the app's own state stays consistent
    /// because every update happens after the batch is written).
    pub fn lock(&self) -> std::sync::MutexGuard<'_, ChainApp> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Application for SharedChainApp {
    fn propose(&mut self, parent: &Block) -> Result<Payload, AppError> {
        self.lock().propose(parent)
    }

    fn verify(&mut self, parent: &Block, block: &Block) -> Result<(), AppError> {
        self.lock().verify(parent, block)
    }

    fn commit(&mut self, block: &Block) -> Result<(), AppError> {
        self.lock().commit(block)
    }

    fn ends_epoch(&self, header: &BlockHeader) -> bool {
        self.lock().ends_epoch(header)
    }
}
