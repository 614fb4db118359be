//! One chain instance inside a node: its [`ChainEngine`] (consensus replica, application,
//! mempool, storage, following), driven by one thread.
//!
//! A node runs one [`ChainInstance`] per chain (the main chain now; a sidechain is one more
//! instance with its own chain id, not another code path). The instance's thread owns the
//! engine (which does no I/O) and carries out what it asks: frames to peers through the
//! [`Network`], who may queue what in the chain's queue. Everything else reaches it as an
//! [`Event`] on a bounded channel; queries never go through it (they read RocksDB and the
//! [`Shared`] snapshot it publishes after every step).

use crate::api::{ChainStatus, ValidatorView};
use crate::config::VerifiedPeer;
use crate::metrics::Metrics;
use anyhow::{anyhow, Context, Result};
use banyan_chain::{
    Action, ChainApp, ChainEngine, ChainGenesis, ChainStore, CommitObserver, CommitteeSource,
    EngineInput, EngineSetup, Lane, Mempool, Note, Peer, SharedChainApp, SignatureCounts,
    VerifierFactory,
};
use banyan_consensus::{CachingVerifier, Message, ReplicaConfig, SignatureVerifier};
use banyan_core::certificate::{CertificateError, Committee, SignerBitmap};
use banyan_core::header::Block;
use banyan_core::ids::ChainId;
use banyan_core::keys::{AccountSecretKey, BlsSecretKey, BlsSignature};
use banyan_ledger::Receipt;
use banyan_mainchain::registry;
use banyan_net::{Class, Network, PeerKey};
use banyan_store::Store;
use banyan_wire as wire;
use std::collections::HashMap;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Events queued for a chain's thread before new ones are dropped (consensus retransmits).
pub const EVENT_QUEUE: usize = 16_384;
/// Bytes of frames queued for a chain's thread before new ones are dropped.
pub const EVENT_QUEUE_BYTES: usize = 256 << 20;
/// Bytes of frames one peer may have queued for a chain's thread (a quarter of the queue, so
/// one busy or hostile peer cannot take all of it).
pub const EVENT_QUEUE_BYTES_PER_PEER: usize = EVENT_QUEUE_BYTES / 4;

/// Why a frame was not queued for a chain's thread (a bounded metric label each).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// The sender is not in the current committee and the message is not one a non-member
    /// may send (an epoch proof or a request for one).
    NotInCommittee,
    /// Block frames nobody asked this peer for.
    UnaskedBlocks,
    /// The queue is full (in events or bytes).
    QueueFull,
    /// The sender's share of the queue is full.
    PeerShareFull,
}

impl Refused {
    /// The metric label.
    pub fn label(self) -> &'static str {
        match self {
            Refused::NotInCommittee => "NotInCommittee",
            Refused::UnaskedBlocks => "UnaskedBlocks",
            Refused::QueueFull => "QueueFull",
            Refused::PeerShareFull => "PeerShareFull",
        }
    }
}

/// What the network receivers check before a frame takes a slot in a chain's queue: who is
/// in the committee, whose blocks are awaited, and how many bytes each peer has queued.
#[derive(Default)]
struct Gate {
    members: std::sync::RwLock<std::collections::HashSet<PeerKey>>,
    blocks_from: Mutex<Option<PeerKey>>,
    queued: Mutex<(usize, HashMap<PeerKey, usize>)>,
}

impl Gate {
    /// Reserve `bytes` of the queue for `from`.
    fn reserve(&self, from: &PeerKey, bytes: usize) -> Result<(), Refused> {
        let mut q = self.queued.lock().map_err(|_| Refused::QueueFull)?;
        let (total, per_peer) = &mut *q;
        let mine = per_peer.get(from).copied().unwrap_or(0);
        if total.saturating_add(bytes) > EVENT_QUEUE_BYTES {
            return Err(Refused::QueueFull);
        }
        if mine.saturating_add(bytes) > EVENT_QUEUE_BYTES_PER_PEER {
            return Err(Refused::PeerShareFull);
        }
        *total += bytes;
        per_peer.insert(*from, mine + bytes);
        Ok(())
    }

    /// Give back what [`Gate::reserve`] took.
    fn release(&self, from: &PeerKey, bytes: usize) {
        if let Ok(mut q) = self.queued.lock() {
            let (total, per_peer) = &mut *q;
            *total = total.saturating_sub(bytes);
            if let Some(mine) = per_peer.get_mut(from) {
                *mine = mine.saturating_sub(bytes);
                if *mine == 0 {
                    per_peer.remove(from);
                }
            }
        }
    }
}

/// What a chain's thread is told.
#[derive(Debug)]
pub enum Event {
    /// A consensus message from the peer with this network key.
    Message {
        /// Sender's network key.
        from: PeerKey,
        /// The message.
        message: Message,
        /// Size of its frame (reserved in the queue's byte budget).
        bytes: usize,
    },
    /// Committed blocks from a peer, for following the chain (see [`wire`]).
    Blocks {
        /// Sender's network key.
        from: PeerKey,
        /// The blocks, in height order.
        blocks: Vec<Block>,
        /// Size of its frame (reserved in the queue's byte budget).
        bytes: usize,
    },
    /// Stop after persisting what is in flight.
    Shutdown,
}

/// What the chain's thread publishes for queries.
#[derive(Clone, Debug)]
pub struct Shared {
    /// Progress.
    pub status: ChainStatus,
    /// Current committee.
    pub committee: Vec<ValidatorView>,
    /// Registry as of the last commit (the next epoch's committee).
    pub registry: Vec<ValidatorView>,
    /// Why the instance stopped, if it failed.
    pub fatal: Option<String>,
}

/// Everything a chain instance is built from.
pub struct ChainSetup {
    /// The RocksDB store shared by every chain of the node.
    pub store: Arc<Store>,
    /// Where the chain starts.
    pub genesis: Box<dyn ChainGenesis + Send>,
    /// Where each next committee comes from.
    pub committees: Box<dyn CommitteeSource>,
    /// This validator's BLS key.
    pub key: BlsSecretKey,
    /// This validator's account key: it signs the reports of equivocation the node detects
    /// (and pays their fees).
    pub reporter: AccountSecretKey,
    /// Known peers (bindings verified).
    pub peers: Vec<VerifiedPeer>,
    /// Consensus timing.
    pub replica: ReplicaConfig,
    /// Mempool.
    pub mempool: Arc<Mempool>,
    /// Execution threads.
    pub threads: usize,
    /// Metrics.
    pub metrics: Metrics,
    /// Transport.
    pub network: Network,
    /// Set when the instance stops, so a wait inside it (a sidechain waiting for its main
    /// chain to assign the next committee) ends.
    pub cancel: Arc<std::sync::atomic::AtomicBool>,
    /// What its ledger asks about other chains: on the main chain, the committees it assigned
    /// sidechains (to verify their checkpoints); elsewhere the default, which refuses.
    pub proofs: banyan_ledger::SharedProofs,
}

/// A running chain instance: the handle the rest of the node keeps.
pub struct ChainInstance {
    /// Chain id.
    pub chain: ChainId,
    /// Its mempool.
    pub mempool: Arc<Mempool>,
    /// Its storage (committed data; safe to read from any thread).
    pub store: ChainStore,
    /// What its thread publishes.
    pub shared: Arc<Mutex<Shared>>,
    events: SyncSender<Event>,
    gate: Arc<Gate>,
    cancel: Arc<std::sync::atomic::AtomicBool>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Milliseconds since the Unix epoch, from the wall clock.
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// The clock a chain's engine runs on: the wall clock read once, when the instance starts,
/// then advanced by the monotonic clock. Consensus timers never jump when the wall clock is
/// set back or forward (NTP steps, an operator's `date`), and block timestamps stay the wall
/// time the node started from plus the time elapsed since.
struct EngineClock {
    wall_at_start_ms: u64,
    start: Instant,
}

impl EngineClock {
    fn start() -> Self {
        EngineClock {
            wall_at_start_ms: now_ms(),
            start: Instant::now(),
        }
    }

    fn now_ms(&self) -> u64 {
        let elapsed = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.wall_at_start_ms.saturating_add(elapsed)
    }
}

impl ChainInstance {
    /// Open the chain's state (writing genesis on a fresh store) and start its thread.
    pub fn start(setup: ChainSetup) -> Result<Self> {
        let chain = setup.genesis.params().chain;
        let store = ChainStore::new(setup.store.clone(), chain);
        let shared = Arc::new(Mutex::new(Shared {
            status: ChainStatus {
                chain: chain.0,
                height: 0,
                block_id: String::new(),
                state_root: String::new(),
                epoch: 0,
                round: 0,
                committee_index: None,
                committee_size: 0,
                mempool_txs: 0,
            },
            committee: Vec::new(),
            registry: Vec::new(),
            fatal: None,
        }));
        let (events, rx) = std::sync::mpsc::sync_channel(EVENT_QUEUE);
        let mempool = setup.mempool.clone();
        let cancel = setup.cancel.clone();
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let thread_shared = shared.clone();
        let thread_store = store.clone();
        let gate = Arc::new(Gate::default());
        let thread_gate = gate.clone();
        let thread = std::thread::Builder::new()
            .name(format!("chain-{}", chain.0))
            .spawn(move || {
                let opened = Host::open(setup, thread_store, thread_shared.clone(), thread_gate);
                let mut driver = match opened {
                    Ok(d) => {
                        let _ = ready_tx.send(Ok(()));
                        d
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                if let Err(e) = driver.run(rx) {
                    tracing::error!(chain = chain.0, "chain stopped: {e:#}");
                    if let Ok(mut s) = thread_shared.lock() {
                        s.fatal = Some(format!("{e:#}"));
                    }
                }
            })
            .context("cannot start the chain thread")?;
        ready_rx
            .recv()
            .map_err(|_| anyhow!("the chain thread of chain {} died while opening", chain.0))??;
        Ok(ChainInstance {
            chain,
            mempool,
            store,
            shared,
            events,
            gate,
            cancel,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queue a consensus message that came in a frame of `bytes` bytes. Refused (and not
    /// queued) from a peer outside the current committee, unless it is an epoch proof or a
    /// request for one (which followers exchange), and when the queue or the peer's share of
    /// it is full.
    pub fn deliver(&self, from: PeerKey, message: Message, bytes: usize) -> Result<(), Refused> {
        let anyone_may_send = matches!(
            message,
            Message::EpochProof(_) | Message::EpochProofRequest(_)
        );
        if !anyone_may_send {
            let member = self
                .gate
                .members
                .read()
                .map(|m| m.contains(&from))
                .unwrap_or(false);
            if !member {
                return Err(Refused::NotInCommittee);
            }
        }
        self.queue(
            from,
            bytes,
            Event::Message {
                from,
                message,
                bytes,
            },
        )
    }

    /// Queue committed blocks from a peer (a frame of `bytes` bytes): only from the peer the
    /// chain asked, and within the queue's budgets.
    pub fn deliver_blocks(
        &self,
        from: PeerKey,
        blocks: Vec<Block>,
        bytes: usize,
    ) -> Result<(), Refused> {
        let asked = self
            .gate
            .blocks_from
            .lock()
            .map(|g| *g == Some(from))
            .unwrap_or(false);
        if !asked {
            return Err(Refused::UnaskedBlocks);
        }
        self.queue(
            from,
            bytes,
            Event::Blocks {
                from,
                blocks,
                bytes,
            },
        )
    }

    fn queue(&self, from: PeerKey, bytes: usize, event: Event) -> Result<(), Refused> {
        self.gate.reserve(&from, bytes)?;
        match self.events.try_send(event) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.gate.release(&from, bytes);
                Err(Refused::QueueFull)
            }
        }
    }

    /// A snapshot of what the thread published.
    pub fn shared(&self) -> Shared {
        match self.shared.lock() {
            Ok(s) => s.clone(),
            Err(p) => p.into_inner().clone(),
        }
    }

    /// Stop the thread and wait for it (once; later calls return at once).
    pub fn stop(&self) {
        let thread = match self.thread.lock() {
            Ok(mut t) => t.take(),
            Err(p) => p.into_inner().take(),
        };
        if let Some(t) = thread {
            self.cancel
                .store(true, std::sync::atomic::Ordering::Relaxed);
            let _ = self.events.send(Event::Shutdown);
            let _ = t.join();
        }
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        match self.thread.lock() {
            Ok(t) => t.as_ref().is_some_and(|t| !t.is_finished()),
            Err(_) => false,
        }
    }
}

impl Drop for ChainInstance {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Times every aggregate check into `banyan_qc_verify_seconds`.
struct TimedVerifier {
    inner: CachingVerifier,
    metrics: Metrics,
}

impl SignatureVerifier for TimedVerifier {
    fn verify_one(
        &mut self,
        committee: &Committee,
        index: usize,
        msg: &[u8],
        sig: &BlsSignature,
        dst: &[u8],
    ) -> bool {
        self.inner.verify_one(committee, index, msg, sig, dst)
    }

    fn verify_signers(
        &mut self,
        committee: &Committee,
        msg: &[u8],
        signers: &SignerBitmap,
        sig: &BlsSignature,
    ) -> Result<(), CertificateError> {
        let t = Instant::now();
        let r = self.inner.verify_signers(committee, msg, signers, sig);
        self.metrics.qc_verify.observe(t.elapsed().as_secs_f64());
        r
    }
}

/// Feeds commit figures to the metrics.
struct MetricsObserver {
    chain: String,
    metrics: Metrics,
}

impl CommitObserver for MetricsObserver {
    fn committed(
        &mut self,
        block: &Block,
        receipts: &[Receipt],
        execute: Duration,
        persist: Duration,
    ) {
        let m = &self.metrics;
        let c = [self.chain.as_str()];
        m.blocks_committed.with_label_values(&c).inc();
        m.txs_committed
            .with_label_values(&c)
            .inc_by(receipts.len() as u64);
        m.height
            .with_label_values(&c)
            .set(block.header.height.0 as i64);
        let age_ms = now_ms().saturating_sub(block.header.timestamp_ms);
        m.commit_latency
            .with_label_values(&c)
            .observe(age_ms as f64 / 1000.0);
        m.execute
            .with_label_values(&[self.chain.as_str(), "commit"])
            .observe(execute.as_secs_f64());
        m.persist
            .with_label_values(&c)
            .observe(persist.as_secs_f64());
    }
}

/// The chain's thread: carries out what its [`ChainEngine`] asks (frames to peers, who may
/// queue what), feeds it what arrives and the time, and publishes its progress.
struct Host {
    engine: ChainEngine,
    clock: EngineClock,
    gate: Arc<Gate>,
    chain: ChainId,
    label: String,
    metrics: Metrics,
    network: Network,
    mempool: Arc<Mempool>,
    shared: Arc<Mutex<Shared>>,
    /// The mempool's signature counts as last exported to the metrics.
    signatures: SignatureCounts,
}

impl Host {
    fn open(
        setup: ChainSetup,
        store: ChainStore,
        shared: Arc<Mutex<Shared>>,
        gate: Arc<Gate>,
    ) -> Result<Self> {
        let chain = setup.genesis.params().chain;
        let observer = MetricsObserver {
            chain: chain.0.to_string(),
            metrics: setup.metrics.clone(),
        };
        let app = ChainApp::open(
            store.clone(),
            &*setup.genesis,
            setup.committees,
            setup.mempool.clone(),
            setup.threads,
            Box::new(observer),
        )
        .context("cannot open the chain state")?
        .with_proofs(setup.proofs);
        let peers = setup
            .peers
            .iter()
            .map(|p| Peer {
                network_key: *p.network_key.as_bytes(),
                validator: p.validator_key.validator_id(),
            })
            .collect();
        let metrics = setup.metrics.clone();
        let verifier: VerifierFactory = Box::new(move || {
            Box::new(TimedVerifier {
                inner: CachingVerifier::default(),
                metrics: metrics.clone(),
            })
        });
        let engine_setup = EngineSetup {
            app: SharedChainApp::new(app),
            store,
            mempool: setup.mempool.clone(),
            key: setup.key,
            reporter: setup.reporter,
            peers,
            replica: setup.replica,
            verifier,
        };
        let mut out = Vec::new();
        let clock = EngineClock::start();
        let engine = ChainEngine::open(
            engine_setup,
            wire::MAX_BLOCKS_PER_FRAME as u64,
            clock.now_ms(),
            &mut out,
        )?;
        let mut host = Host {
            engine,
            clock,
            gate,
            chain,
            label: chain.0.to_string(),
            metrics: setup.metrics,
            network: setup.network,
            mempool: setup.mempool,
            shared,
            signatures: SignatureCounts::default(),
        };
        host.carry_out(out);
        Ok(host)
    }

    fn run(&mut self, rx: Receiver<Event>) -> Result<()> {
        self.publish();
        loop {
            let now = self.clock.now_ms();
            let wait = self
                .engine
                .next_tick_ms(now)
                .saturating_sub(now)
                .clamp(1, 1_000);
            match rx.recv_timeout(Duration::from_millis(wait)) {
                Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(ev) => self.on_event(ev)?,
                Err(RecvTimeoutError::Timeout) => {}
            }
            // Drain what queued up meanwhile before publishing.
            while let Ok(ev) = rx.try_recv() {
                if let Event::Shutdown = ev {
                    self.publish();
                    return Ok(());
                }
                self.on_event(ev)?;
            }
            self.handle(EngineInput::Tick)?;
            self.publish();
        }
        self.publish();
        Ok(())
    }

    fn on_event(&mut self, ev: Event) -> Result<()> {
        match ev {
            Event::Message {
                from,
                message,
                bytes,
            } => {
                self.gate.release(&from, bytes);
                self.handle(EngineInput::Message { from, message })
            }
            Event::Blocks {
                from,
                blocks,
                bytes,
            } => {
                self.gate.release(&from, bytes);
                self.handle(EngineInput::Blocks { from, blocks })
            }
            Event::Shutdown => Ok(()),
        }
    }

    fn handle(&mut self, input: EngineInput) -> Result<()> {
        let mut out = Vec::new();
        let r = self.engine.handle(self.clock.now_ms(), input, &mut out);
        self.carry_out(out);
        r.map_err(|e| anyhow!("{e}"))
    }

    /// Do what the engine asked.
    fn carry_out(&mut self, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { to, lane, message } => {
                    let frame = wire::consensus_frame(self.chain, &message);
                    self.try_send(&to, lane, frame);
                }
                Action::Broadcast { to, lane, message } => {
                    let frame = wire::consensus_frame(self.chain, &message);
                    for peer in &to {
                        self.try_send(peer, lane, frame.clone());
                    }
                }
                Action::RequestBlocks { to, lo, hi } => {
                    let frame = wire::blocks_request_frame(self.chain, lo, hi);
                    if self.network.try_send(&to, Class::Sync, frame).is_err() {
                        // Not connected (or its queue is full): the next tick asks another.
                        self.engine.request_failed(&to);
                    }
                }
                Action::Gossip(txs) => {
                    if let Ok(frame) = wire::txs_frame(self.chain, &txs) {
                        self.network.broadcast(Class::Mempool, frame);
                    }
                }
                Action::Members(peers) => {
                    if let Ok(mut m) = self.gate.members.write() {
                        *m = peers.into_iter().collect();
                    }
                }
                Action::ExpectBlocksFrom(peer) => {
                    if let Ok(mut g) = self.gate.blocks_from.lock() {
                        *g = peer;
                    }
                }
                Action::Note(note) => self.count(note),
            }
        }
    }

    fn try_send(&self, to: &PeerKey, lane: Lane, frame: bytes::Bytes) {
        let (class, label) = match lane {
            Lane::Sync => (Class::Sync, "sync"),
            Lane::Consensus => (Class::Consensus, "consensus"),
        };
        if self.network.try_send(to, class, frame).is_err() {
            self.metrics.net_dropped.with_label_values(&[label]).inc();
        }
    }

    fn count(&self, note: Note) {
        let c = [self.label.as_str()];
        match note {
            Note::Rejected(why) => self
                .metrics
                .consensus_rejected
                .with_label_values(&[self.label.as_str(), why.as_str()])
                .inc(),
            Note::Evidence => self.metrics.evidence.with_label_values(&c).inc(),
            Note::EvidenceReported => self.metrics.evidence_reported.with_label_values(&c).inc(),
            Note::Epoch(e) => self.metrics.epoch.with_label_values(&c).set(e as i64),
        }
    }

    fn publish(&mut self) {
        let app = self.engine.app().clone();
        let app = app.lock();
        let tip = app.committed_tip();
        let epoch = app.committee().epoch();
        let round = self.engine.round();
        let c = [self.label.as_str()];
        self.metrics.round.with_label_values(&c).set(round as i64);
        self.metrics
            .height
            .with_label_values(&c)
            .set(tip.height.0 as i64);
        let mempool_txs = self.mempool.len();
        self.metrics
            .mempool_txs
            .with_label_values(&c)
            .set(mempool_txs as i64);
        let now = self.mempool.signature_counts();
        let last = std::mem::replace(&mut self.signatures, now);
        let checks = &self.metrics.signature_checks;
        for (stage, new, old) in [
            ("admission", now.admission, last.admission),
            ("block", now.block, last.block),
        ] {
            checks
                .with_label_values(&[self.label.as_str(), stage])
                .inc_by(new.saturating_sub(old));
        }
        self.metrics
            .signature_checks_spared
            .with_label_values(&c)
            .inc_by(now.spared.saturating_sub(last.spared));
        // Views change only at an epoch change or a stake change: not rebuilt per event.
        let dirty = self.engine.take_views_dirty();
        let committee = self.engine.committee();
        let views = if dirty {
            Some((
                committee.map(views_of_committee),
                views_of_registry(app.state(), committee),
            ))
        } else {
            None
        };
        let committee_size = committee.map(|c| c.len()).unwrap_or(0);
        drop(app);
        let mut s = match self.shared.lock() {
            Ok(s) => s,
            Err(p) => p.into_inner(),
        };
        s.status = ChainStatus {
            chain: self.chain.0,
            height: tip.height.0,
            block_id: tip.id.to_hex(),
            state_root: tip.state_root.to_hex(),
            epoch: epoch.0,
            round,
            committee_index: self.engine.committee_index(),
            committee_size,
            mempool_txs,
        };
        if let Some((committee, registry)) = views {
            if let Some(c) = committee {
                s.committee = c;
            }
            s.registry = registry;
        }
    }
}

fn views_of_committee(c: &Committee) -> Vec<ValidatorView> {
    (0..c.len())
        .filter_map(|i| c.members().get(i).map(|m| (i, m)))
        .map(|(i, m)| {
            let key = m.key.key();
            ValidatorView {
                address: String::new(),
                validator_id: key.validator_id().to_hex(),
                bls_key: key.to_hex(),
                stake: m.stake.to_string(),
                committee_index: Some(i),
            }
        })
        .collect()
}

fn views_of_registry(
    state: &banyan_core::state::State,
    committee: Option<&Committee>,
) -> Vec<ValidatorView> {
    registry::registry(state)
        .into_iter()
        .map(|(addr, rec)| {
            let key = banyan_core::keys::BlsPublicKey::from_bytes(&rec.key).ok();
            let id = key.as_ref().map(|k| k.validator_id());
            let index = committee.and_then(|c| {
                (0..c.len()).find(|&i| c.members().get(i).map(|m| m.key.key().validator_id()) == id)
            });
            ValidatorView {
                address: addr.to_hex(),
                validator_id: id.map(|d| d.to_hex()).unwrap_or_default(),
                bls_key: hex::encode(rec.key),
                stake: rec.stake.0.to_string(),
                committee_index: index,
            }
        })
        .collect()
}
