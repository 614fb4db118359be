//! One chain instance inside a node: its consensus replica, application, mempool and storage,
//! driven by one thread.
//!
//! A node runs one [`ChainInstance`] per chain (the main chain now; a sidechain is one more
//! instance with its own chain id, not another code path). The instance's thread owns the
//! [`Replica`] (which is single-threaded and does no I/O) and carries out what it asks: frames
//! to peers through the [`Network`], a timer, epoch changes. Everything else reaches it as an
//! [`Event`] on a bounded channel; queries never go through it (they read RocksDB and the
//! [`Shared`] snapshot it publishes after every step).

use crate::api::{ChainStatus, ValidatorView};
use crate::config::VerifiedPeer;
use crate::metrics::Metrics;
use crate::wire;
use anyhow::{anyhow, Context, Result};
use banyan_consensus::{
    Application, CachingVerifier, ConsensusError, Environment, Input, Message, Output, Replica,
    ReplicaConfig, SignatureVerifier, VrfLeaders,
};
use banyan_core::certificate::{CertificateError, Committee, SignerBitmap};
use banyan_core::header::{Block, BlockHeader};
use banyan_core::ids::ChainId;
use banyan_core::keys::{AccountSecretKey, BlsSecretKey, BlsSignature};
use banyan_ledger::Receipt;
use banyan_mainchain::{
    registry, ChainApp, ChainStore, CommitObserver, Genesis, Mempool, SharedChainApp,
    SignatureCounts,
};
use banyan_net::{Class, Network, PeerKey};
use banyan_store::{Column, Durability, Store, WriteBatch};
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

/// A short printable prefix of a peer key, for logs.
fn hex_prefix(key: &PeerKey) -> String {
    key[..4].iter().map(|b| format!("{b:02x}")).collect()
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
    /// The chain's genesis.
    pub genesis: Genesis,
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
    thread: Option<JoinHandle<()>>,
}

/// Milliseconds since the Unix epoch (the consensus clock: proposals carry it).
pub fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl ChainInstance {
    /// Open the chain's state (writing genesis on a fresh store) and start its thread.
    pub fn start(setup: ChainSetup) -> Result<Self> {
        let chain = setup.genesis.chain();
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
        let (ready_tx, ready_rx) = std::sync::mpsc::channel::<Result<()>>();
        let thread_shared = shared.clone();
        let thread_store = store.clone();
        let gate = Arc::new(Gate::default());
        let thread_gate = gate.clone();
        let thread = std::thread::Builder::new()
            .name(format!("chain-{}", chain.0))
            .spawn(move || {
                let opened = Driver::open(setup, thread_store, thread_shared.clone(), thread_gate);
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
            thread: Some(thread),
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

    /// Stop the thread and wait for it.
    pub fn stop(&mut self) {
        let _ = self.events.send(Event::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }

    /// Whether the thread is still running.
    pub fn is_running(&self) -> bool {
        self.thread.as_ref().is_some_and(|t| !t.is_finished())
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

/// Peers of the current committee, both ways.
#[derive(Default)]
struct PeerMap {
    by_index: Vec<Option<PeerKey>>,
    by_key: HashMap<PeerKey, usize>,
}

impl PeerMap {
    fn new(committee: &Committee, peers: &[VerifiedPeer]) -> Self {
        let mut map = PeerMap::default();
        for i in 0..committee.len() {
            let id = committee
                .members()
                .get(i)
                .map(|m| m.key.key().validator_id());
            let peer = peers
                .iter()
                .find(|p| Some(p.validator_key.validator_id()) == id)
                .map(|p| *p.network_key.as_bytes());
            if let Some(k) = peer {
                map.by_key.insert(k, i);
            }
            map.by_index.push(peer);
        }
        map
    }
}

struct Driver {
    gate: Arc<Gate>,
    chain: ChainId,
    label: String,
    app: SharedChainApp,
    store: ChainStore,
    raw: Arc<Store>,
    key: BlsSecretKey,
    reporter: AccountSecretKey,
    /// Validators whose equivocation this node reported in the current epoch: one report
    /// per offender and epoch (it jails the key; further offences may be reported by hand),
    /// so a member that equivocates every round costs one state scan, not one per round.
    reported: std::collections::HashSet<banyan_core::ids::ValidatorId>,
    peers: Vec<VerifiedPeer>,
    cfg: ReplicaConfig,
    metrics: Metrics,
    network: Network,
    mempool: Arc<Mempool>,
    shared: Arc<Mutex<Shared>>,
    replica: Option<Replica>,
    committee: Option<Committee>,
    peer_map: PeerMap,
    me: Option<usize>,
    deadline_ms: u64,
    registry_dirty: bool,
    follow: Follow,
    /// Committed height last seen, and when it last changed.
    progress: (u64, u64),
    /// The mempool's signature counts as last exported to the metrics.
    signatures: SignatureCounts,
}

/// How a node outside the current committee follows the chain: it asks peers, in turn, for
/// the proof that its epoch ended and checks it against the committee it knows (any peer may
/// send it: the proof carries its own authority). It then fetches the committed blocks
/// **backwards** from the proven ending block, from the configured peers in turn: each block
/// must hash to the id its child names (the first to the proven id) and its transactions must
/// hash to its header's `tx_root`, so every block is checked as it arrives and a peer that
/// sends a bad one, or stays silent, is benched and the next one asked. Once the blocks reach
/// the committed tip they are re-executed and committed in order (the application checks every
/// state root), and the node moves to the next epoch, taking part in consensus if it is in the
/// committee.
#[derive(Default)]
struct Follow {
    /// Next peer to ask, index into the configured peers.
    next_peer: usize,
    /// When the last request went out.
    asked_ms: u64,
    /// The peer the outstanding block request went to.
    asked: Option<PeerKey>,
    /// Heights asked per request (halved when an answer stops short of the wanted height).
    span: u64,
    /// A verified proof being completed, with its ending header.
    target: Option<(banyan_consensus::EpochChangeProof, BlockHeader)>,
    /// Blocks fetched and checked so far, from the proven ending block downwards.
    blocks: Vec<Block>,
    /// Their encoded size.
    bytes: usize,
    /// Peers that sent a bad block or did not answer, benched until this time (ms).
    benched: HashMap<PeerKey, u64>,
}

/// A member that has committed nothing for this long asks peers whether its epoch ended.
const STALL_MS: u64 = 5_000;
/// A follower asks again after this long without progress.
const FOLLOW_RETRY_MS: u64 = 1_000;
/// Most blocks a follower holds before applying them (an epoch longer than this cannot be
/// followed; `epoch_length` is far below it in practice). Every block held was checked
/// against the proven chain first.
const MAX_FOLLOW_BLOCKS: usize = 100_000;
/// Most bytes of blocks a follower holds before applying them.
const MAX_FOLLOW_BYTES: usize = 1 << 30;
/// A peer that sent a bad block or let a request time out is not asked again for this long.
const FOLLOW_BENCH_MS: u64 = 30_000;

/// Key of one signed vote in the vote log: chain | epoch | round | block.
fn vote_log_key(chain: ChainId, epoch: u64, round: u64, block: &[u8; 32]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + 4 + 16 + 32);
    k.extend_from_slice(VOTE_LOG_PREFIX);
    k.extend_from_slice(&chain.0.to_be_bytes());
    k.extend_from_slice(&epoch.to_be_bytes());
    k.extend_from_slice(&round.to_be_bytes());
    k.extend_from_slice(block);
    k
}

/// Prefix of the vote log in the consensus column: every vote this node signed, kept so an
/// audit can prove it never signed two blocks in one round (see [`signed_votes`]).
pub const VOTE_LOG_PREFIX: &[u8] = b"votelog/";

/// Every vote this node's log holds for `chain`: (epoch, round, block id).
pub fn signed_votes(store: &Store, chain: ChainId) -> Result<Vec<(u64, u64, [u8; 32])>> {
    let mut prefix = VOTE_LOG_PREFIX.to_vec();
    prefix.extend_from_slice(&chain.0.to_be_bytes());
    let mut out = Vec::new();
    for item in store.iter_prefix(Column::Consensus, &prefix) {
        let (k, _) = item.context("reading the vote log")?;
        let rest = &k[prefix.len()..];
        if rest.len() != 48 {
            continue;
        }
        let epoch = u64::from_be_bytes(rest[0..8].try_into().expect("8 bytes by the length check"));
        let round =
            u64::from_be_bytes(rest[8..16].try_into().expect("8 bytes by the length check"));
        let block: [u8; 32] = rest[16..48]
            .try_into()
            .expect("32 bytes by the length check");
        out.push((epoch, round, block));
    }
    Ok(out)
}

/// A copy of the BLS key for the next epoch's replica (the type is deliberately not Clone).
fn clone_key(key: &BlsSecretKey) -> Result<BlsSecretKey> {
    BlsSecretKey::from_bytes(&*key.to_bytes()).map_err(|e| anyhow!("BLS key copy: {e}"))
}

impl Driver {
    fn open(
        setup: ChainSetup,
        store: ChainStore,
        shared: Arc<Mutex<Shared>>,
        gate: Arc<Gate>,
    ) -> Result<Self> {
        let chain = setup.genesis.chain();
        let observer = MetricsObserver {
            chain: chain.0.to_string(),
            metrics: setup.metrics.clone(),
        };
        let app = ChainApp::open(
            store.clone(),
            &setup.genesis,
            setup.mempool.clone(),
            setup.threads,
            Box::new(observer),
        )
        .context("cannot open the chain state")?;
        let mut d = Driver {
            gate,
            chain,
            label: chain.0.to_string(),
            app: SharedChainApp::new(app),
            store,
            raw: setup.store,
            key: setup.key,
            reporter: setup.reporter,
            reported: std::collections::HashSet::new(),
            peers: setup.peers,
            cfg: setup.replica,
            metrics: setup.metrics,
            network: setup.network,
            mempool: setup.mempool,
            shared,
            replica: None,
            committee: None,
            peer_map: PeerMap::default(),
            me: None,
            deadline_ms: 0,
            registry_dirty: true,
            follow: Follow::default(),
            progress: (0, now_ms()),
            signatures: SignatureCounts::default(),
        };
        d.boot_epoch(Vec::new())?;
        Ok(d)
    }

    /// Start the replica of the epoch the application is in, then feed it `early` messages
    /// (by sender key: committee indices change between epochs, and a replica refuses a vote
    /// or timeout whose signer index is not its sender's).
    fn boot_epoch(&mut self, early: Vec<(PeerKey, Message)>) -> Result<()> {
        let record = self.app.lock().epoch_record();
        let committee = record.committee()?;
        let me_id = self.key.public_key().validator_id();
        let me = (0..committee.len()).find(|&i| {
            committee
                .members()
                .get(i)
                .is_some_and(|m| m.key.key().validator_id() == me_id)
        });
        self.peer_map = PeerMap::new(&committee, &self.peers);
        if let Ok(mut m) = self.gate.members.write() {
            *m = self.peer_map.by_key.keys().copied().collect();
        }
        self.me = me;
        self.registry_dirty = true;
        self.reported.clear();
        self.metrics
            .epoch
            .with_label_values(&[self.label.as_str()])
            .set(record.epoch.0 as i64);
        let Some(me) = me else {
            tracing::warn!(
                chain = self.chain.0,
                epoch = record.epoch.0,
                "this validator is not in the committee of epoch {}; it serves queries but \
                 does not take part in consensus until it is",
                record.epoch.0
            );
            self.committee = Some(committee);
            self.replica = None;
            return Ok(());
        };
        let base = self
            .store
            .block_by_id(&record.base)?
            .ok_or_else(|| anyhow!("the block epoch {} starts from is missing", record.epoch.0))?;
        let env = Environment {
            app: Box::new(self.app.clone()),
            leaders: Box::new(VrfLeaders::new(self.chain, record.seed, &committee)),
            verifier: Box::new(TimedVerifier {
                inner: CachingVerifier::default(),
                metrics: self.metrics.clone(),
            }),
            safety_storage: Box::new(self.store.clone()),
            blocks: Box::new(self.store.clone()),
        };
        let cfg = ReplicaConfig {
            chain: self.chain,
            epoch: record.epoch,
            ..self.cfg.clone()
        };
        let mut replica =
            Replica::new(cfg, committee.clone(), me, clone_key(&self.key)?, base, env)
                .map_err(|e| anyhow!("cannot start consensus for epoch {}: {e}", record.epoch.0))?;
        if let Some(p) = record.proof.clone() {
            replica = replica.with_entry_proof(p);
        }
        self.committee = Some(committee);
        let mut out = Vec::new();
        let res = replica.start(now_ms(), &mut out);
        self.replica = Some(replica);
        self.after(out, res)?;
        for (key, m) in early {
            if let Some(&from) = self.peer_map.by_key.get(&key) {
                self.step(Input::Message { from, message: m })?;
            }
        }
        Ok(())
    }

    fn run(&mut self, rx: Receiver<Event>) -> Result<()> {
        self.publish();
        loop {
            let now = now_ms();
            let wait = if self.replica.is_some() {
                self.deadline_ms.saturating_sub(now).clamp(1, 1_000)
            } else {
                1_000
            };
            match rx.recv_timeout(Duration::from_millis(wait)) {
                Ok(Event::Shutdown) | Err(RecvTimeoutError::Disconnected) => break,
                Ok(Event::Message {
                    from,
                    message,
                    bytes,
                }) => {
                    self.gate.release(&from, bytes);
                    self.on_message(from, message)?
                }
                Ok(Event::Blocks {
                    from,
                    blocks,
                    bytes,
                }) => {
                    self.gate.release(&from, bytes);
                    self.on_blocks(from, blocks)?
                }
                Err(RecvTimeoutError::Timeout) => {
                    if self.replica.is_some() && now_ms() >= self.deadline_ms {
                        self.step(Input::Timer)?;
                    }
                }
            }
            // Drain what queued up meanwhile before publishing.
            while let Ok(ev) = rx.try_recv() {
                match ev {
                    Event::Shutdown => {
                        self.publish();
                        return Ok(());
                    }
                    Event::Message {
                        from,
                        message,
                        bytes,
                    } => {
                        self.gate.release(&from, bytes);
                        self.on_message(from, message)?
                    }
                    Event::Blocks {
                        from,
                        blocks,
                        bytes,
                    } => {
                        self.gate.release(&from, bytes);
                        self.on_blocks(from, blocks)?
                    }
                }
            }
            if self.replica.is_some() && now_ms() >= self.deadline_ms {
                self.step(Input::Timer)?;
            }
            if self.replica.is_none() {
                self.follow_tick();
            } else {
                self.stall_tick();
            }
            self.publish();
        }
        self.publish();
        Ok(())
    }

    fn on_message(&mut self, from: PeerKey, message: Message) -> Result<()> {
        if let Message::EpochProofRequest(e) = &message {
            // Served from the archive, whatever epoch this node is in now.
            if let Some(p) = self.store.epoch_proof(*e)? {
                self.send_to_key(&from, &Message::EpochProof(Box::new(p)));
            }
            return Ok(());
        }
        // Outside the committee, or stalled in an epoch the others have left: a proof that
        // the epoch ended switches to following (the blocks come from any peer, member or not).
        let stalled = now_ms().saturating_sub(self.progress.1) >= STALL_MS;
        if self.replica.is_none() || stalled {
            if let Message::EpochProof(p) = message {
                return self.on_follow_proof(from, *p);
            }
            if self.replica.is_none() {
                return Ok(());
            }
        }
        let Some(&index) = self.peer_map.by_key.get(&from) else {
            self.metrics
                .consensus_rejected
                .with_label_values(&[self.label.as_str(), "NotInCommittee"])
                .inc();
            return Ok(());
        };
        self.step(Input::Message {
            from: index,
            message,
        })
    }

    /// Outside the committee: ask how the current epoch ended, or for the blocks still
    /// missing, when nothing came for a while (benching a peer that let a block request time
    /// out).
    fn follow_tick(&mut self) {
        let now = now_ms();
        if now.saturating_sub(self.follow.asked_ms) < FOLLOW_RETRY_MS || self.peers.is_empty() {
            return;
        }
        if let Some(silent) = self.follow.asked.take() {
            self.bench(silent, "did not answer a block request in time");
        }
        self.follow.asked_ms = now;
        if self.follow.target.is_some() {
            self.request_followed_blocks(now);
            return;
        }
        self.ask_next_peer_how_epoch_ended();
    }

    /// Report equivocation this node detected: one `ReportEquivocation` /
    /// `ReportProposalEquivocation` transaction per account whose stake backs the offender's
    /// key, signed by this validator's account, admitted to its own mempool and gossiped. A
    /// report that cannot be sent (the account cannot pay, its nonce is taken) is logged with
    /// what to do; the evidence stays in the log for `banyan validator report-equivocation`.
    fn report_evidence(&mut self, evidence: &banyan_consensus::Evidence) {
        let Some(committee) = self.committee.as_ref() else {
            return;
        };
        let Some(member) = committee.members().get(usize::from(evidence.offender())) else {
            return;
        };
        let Some(state) = self.mempool.committed_state() else {
            return;
        };
        let key = *member.key.key();
        if !self.reported.insert(key.validator_id()) {
            return;
        }
        let me = self.reporter.public_key();
        let min_fee = self.mempool.limits().min_fee;
        for offender in banyan_mainchain::registry::accounts_of_key(&state, key.as_bytes()) {
            let Some(kind) = banyan_mainchain::registry::report_of(evidence, committee, offender)
            else {
                continue;
            };
            let nonce = self.mempool.next_nonce(
                &me.address(),
                banyan_mainchain::nonce_in(&state, &me.address()),
            );
            let tx = banyan_core::tx::TxBody {
                chain: self.chain,
                network: self.mempool.network(),
                sender: me,
                nonce,
                fee: min_fee,
                kind,
            }
            .sign(&self.reporter);
            let result = self
                .mempool
                .insert(
                    std::slice::from_ref(&tx),
                    std::time::Instant::now(),
                    &*state,
                )
                .pop();
            match result {
                Some(Ok(id)) => {
                    if let Ok(frame) = wire::txs_frame(self.chain, std::slice::from_ref(&tx)) {
                        self.network.broadcast(Class::Mempool, frame);
                    }
                    self.metrics
                        .evidence_reported
                        .with_label_values(&[self.label.as_str()])
                        .inc();
                    tracing::warn!(
                        chain = self.chain.0,
                        offender = %offender,
                        tx = %id,
                        "reported the equivocation of validator {}; its stake is slashed when \
                         the report commits",
                        key.validator_id()
                    );
                }
                Some(Err(e)) => tracing::error!(
                    chain = self.chain.0,
                    offender = %offender,
                    "cannot report the equivocation of validator {}: {e}; fund this \
                     validator's account, or report it with `banyan validator \
                     report-equivocation`",
                    key.validator_id()
                ),
                None => {}
            }
        }
    }

    /// Stop asking `peer` for blocks for a while.
    fn bench(&mut self, peer: PeerKey, why: &str) {
        tracing::warn!(
            chain = self.chain.0,
            peer = %hex_prefix(&peer),
            "following: {why}; asking other peers for {} s",
            FOLLOW_BENCH_MS / 1_000
        );
        self.metrics
            .consensus_rejected
            .with_label_values(&[self.label.as_str(), "FollowPeerBenched"])
            .inc();
        self.follow
            .benched
            .insert(peer, now_ms().saturating_add(FOLLOW_BENCH_MS));
    }

    /// The next configured peer in turn that is not benched (all benched: the next in turn).
    fn next_follow_peer(&mut self, now: u64) -> Option<PeerKey> {
        let n = self.peers.len();
        if n == 0 {
            return None;
        }
        self.follow.benched.retain(|_, until| *until > now);
        let mut fallback = None;
        for _ in 0..n {
            let key = *self.peers[self.follow.next_peer % n].network_key.as_bytes();
            self.follow.next_peer = self.follow.next_peer.wrapping_add(1);
            if !self.follow.benched.contains_key(&key) {
                return Some(key);
            }
            fallback.get_or_insert(key);
        }
        fallback
    }

    /// Ask the next peer for the highest blocks still missing below those held.
    fn request_followed_blocks(&mut self, now: u64) {
        let Some((want, _)) = self.follow_wanted() else {
            return;
        };
        let tip = self.app.lock().committed_tip().height.0;
        let span = self.follow.span.clamp(1, wire::MAX_BLOCKS_PER_FRAME as u64);
        let lo = want.saturating_sub(span - 1).max(tip.saturating_add(1));
        let Some(peer) = self.next_follow_peer(now) else {
            return;
        };
        let frame = wire::blocks_request_frame(self.chain, lo, want);
        self.follow.asked = Some(peer);
        self.follow.asked_ms = now;
        self.expect_blocks_from(Some(peer));
        if self.network.try_send(&peer, Class::Sync, frame).is_err() {
            // Not connected (or its queue is full): the next tick asks another peer.
            self.follow.asked = None;
        }
    }

    /// The height and id of the next block wanted (downwards from the proven ending block),
    /// or `None` when the held blocks reach the committed tip.
    fn follow_wanted(&self) -> Option<(u64, banyan_core::hash::Digest)> {
        let (_, ending) = self.follow.target.as_ref()?;
        let tip = self.app.lock().committed_tip();
        let (h, id) = match self.follow.blocks.last() {
            None => (ending.height.0, ending.id()),
            Some(b) => (b.header.height.0.saturating_sub(1), b.header.parent),
        };
        (h > tip.height.0).then_some((h, id))
    }

    /// Tell the node which peer's block frames to queue for this chain (others are dropped
    /// before they take a slot).
    fn expect_blocks_from(&self, peer: Option<PeerKey>) {
        if let Ok(mut g) = self.gate.blocks_from.lock() {
            *g = peer;
        }
    }

    /// A member that commits nothing for [`STALL_MS`] may be the last one still in an epoch
    /// the others have left (it missed the commit of its end, and nobody sends to it any
    /// more): ask peers in turn how the epoch ended; the replica checks the answer.
    fn stall_tick(&mut self) {
        let now = now_ms();
        if now.saturating_sub(self.progress.1) < STALL_MS
            || now.saturating_sub(self.follow.asked_ms) < FOLLOW_RETRY_MS
            || self.peers.is_empty()
        {
            return;
        }
        self.follow.asked_ms = now;
        self.ask_next_peer_how_epoch_ended();
    }

    /// Ask the next configured peer, in turn, for the proof that the current epoch ended.
    fn ask_next_peer_how_epoch_ended(&mut self) {
        let Some(peer) = self
            .peers
            .get(self.follow.next_peer % self.peers.len().max(1))
        else {
            return;
        };
        let key = *peer.network_key.as_bytes();
        self.follow.next_peer = self.follow.next_peer.wrapping_add(1);
        let epoch = self.app.lock().committee().epoch();
        self.send_to_key(&key, &Message::EpochProofRequest(epoch));
    }

    /// A proof that the current epoch ended, received while following.
    fn on_follow_proof(
        &mut self,
        from: PeerKey,
        proof: banyan_consensus::EpochChangeProof,
    ) -> Result<()> {
        if self.follow.target.is_some() {
            return Ok(());
        }
        let epoch = self.app.lock().committee().epoch();
        if proof.epoch() != epoch {
            return Ok(());
        }
        let Some(committee) = self.committee.as_ref() else {
            return Ok(());
        };
        let ending = match proof.verify(committee) {
            Ok(h) => h.clone(),
            Err(e) => {
                tracing::warn!(
                    chain = self.chain.0,
                    "refused an epoch proof while following: {e}"
                );
                return Ok(());
            }
        };
        if !self.app.lock().ends_epoch(&ending) {
            tracing::warn!(
                chain = self.chain.0,
                "refused an epoch proof whose block does not end the epoch"
            );
            return Ok(());
        }
        tracing::info!(
            chain = self.chain.0,
            "following: epoch {} ended at height {}; fetching its blocks",
            epoch.0,
            ending.height.0
        );
        // The epoch is proven over: its replica (if any) has nothing left to sign. Blocks
        // are asked first of the peer that sent the proof (it has them, if honest).
        self.replica = None;
        self.follow.target = Some((proof, ending));
        self.follow.blocks.clear();
        self.follow.bytes = 0;
        self.follow.span = wire::MAX_BLOCKS_PER_FRAME as u64;
        if let Some(i) = self
            .peers
            .iter()
            .position(|p| p.network_key.as_bytes() == &from)
        {
            self.follow.next_peer = i;
        }
        self.follow.asked = None;
        self.follow.asked_ms = 0;
        self.follow_tick();
        Ok(())
    }

    /// Committed blocks received while following, from the peer asked: each must be the
    /// next one wanted downwards (its id the one its child names, its transactions hashing to
    /// its `tx_root`). A bad block benches the peer and drops the rest of its answer; once the
    /// held blocks reach the committed tip they are applied.
    fn on_blocks(&mut self, from: PeerKey, blocks: Vec<Block>) -> Result<()> {
        if self.follow.asked != Some(from) || self.replica.is_some() {
            return Ok(());
        }
        self.follow.asked = None;
        self.expect_blocks_from(None);
        let Some((want_height, _)) = self.follow_wanted() else {
            return Ok(());
        };
        let mut reached = false;
        // The answer is in ascending height order; walk it from the top.
        for b in blocks.into_iter().rev() {
            let Some((h, id)) = self.follow_wanted() else {
                break;
            };
            if b.header.height.0 > h {
                continue;
            }
            if b.header.height.0 < h {
                break;
            }
            if b.header.id() != id {
                self.bench(from, "sent a block that is not on the proven chain");
                break;
            }
            if Block::compute_tx_root(&b.txs) != b.header.tx_root {
                self.bench(
                    from,
                    "sent a block whose transactions do not match its header",
                );
                break;
            }
            let size = banyan_core::codec::encoded_len(&b);
            if self.follow.blocks.len() >= MAX_FOLLOW_BLOCKS
                || self.follow.bytes.saturating_add(size) > MAX_FOLLOW_BYTES
            {
                tracing::error!(
                    chain = self.chain.0,
                    "the epoch being followed holds more than {MAX_FOLLOW_BLOCKS} blocks or \
                     {MAX_FOLLOW_BYTES} bytes; this node cannot follow it (raise the limits \
                     or resync from a recent data dir)"
                );
                self.follow.target = None;
                self.follow.blocks.clear();
                self.follow.bytes = 0;
                return Ok(());
            }
            reached |= b.header.height.0 == want_height;
            self.follow.bytes += size;
            self.follow.blocks.push(b);
        }
        if !reached && !self.follow.benched.contains_key(&from) {
            // An answer cut short by its size budget: ask for fewer blocks next time.
            self.follow.span = (self.follow.span / 2).max(1);
        }
        self.follow.asked_ms = 0;
        if self.follow_wanted().is_some() {
            self.follow_tick();
            return Ok(());
        }
        self.apply_followed()
    }

    /// Apply the followed blocks, all checked against the proven chain, from the committed
    /// tip up.
    fn apply_followed(&mut self) -> Result<()> {
        let mut blocks = std::mem::take(&mut self.follow.blocks);
        self.follow.bytes = 0;
        let Some((proof, ending)) = self.follow.target.take() else {
            return Ok(());
        };
        blocks.reverse();
        let tip = self.app.lock().committed_tip();
        if blocks.first().map(|b| b.header.parent) != Some(tip.id) {
            // The proven chain does not extend what this node committed: a fork below the
            // epoch's start, which only more than a third of a committee could certify.
            return Err(anyhow!(
                "the certified chain of epoch {} does not extend this node's committed block                  at height {}: this node's chain differs from the network's; resync it with a                  new data dir",
                proof.epoch().0,
                tip.height.0
            ));
        }
        let mut parent = self
            .store
            .block_by_id(&tip.id)?
            .ok_or_else(|| anyhow!("the committed tip block is missing from storage"))?;
        for b in blocks {
            // Every block here hash-links to the certified ending block and its body matches
            // its header, so a failure is this node's own state differing from the chain's.
            if let Err(e) = self.app.lock().verify(&parent, &b) {
                return Err(anyhow!(
                    "block {} of the certified chain does not re-execute to its state root \
                     ({e}); this node's state differs from the chain: resync it with a new \
                     data dir",
                    b.header.height.0
                ));
            }
            self.app
                .lock()
                .commit(&b)
                .map_err(|e| anyhow!("storage failed while following: {e}"))?;
            parent = b;
        }
        let mut blocks_store = self.store.clone();
        banyan_consensus::BlockStore::set_committed(&mut blocks_store, ending.id())
            .map_err(|e| anyhow!("{e}"))?;
        self.store
            .put_epoch_proof(proof.epoch(), &proof)
            .context("cannot archive the epoch proof")?;
        tracing::info!(
            chain = self.chain.0,
            "followed epoch {} to height {}",
            proof.epoch().0,
            ending.height.0
        );
        self.boot_epoch(Vec::new())
    }

    fn step(&mut self, input: Input) -> Result<()> {
        let Some(replica) = self.replica.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        let res = replica.handle(now_ms(), input, &mut out);
        self.after(out, res)
    }

    fn after(&mut self, out: Vec<Output>, res: Result<(), ConsensusError>) -> Result<()> {
        if let Err(e) = &res {
            if e.is_fatal() {
                return Err(anyhow!(
                    "consensus cannot continue: {e}; the node stops so it cannot diverge \
                     (check the disk, then restart)"
                ));
            }
            self.metrics
                .consensus_rejected
                .with_label_values(&[self.label.as_str(), e.kind().as_str()])
                .inc();
            tracing::debug!(chain = self.chain.0, "dropped a consensus input: {e}");
        }
        for o in out {
            match o {
                Output::Send { to, message } => {
                    self.log_vote(&message)?;
                    self.send_to_index(to, &message);
                }
                Output::Broadcast(message) => {
                    self.log_vote(&message)?;
                    let n = self.peer_map.by_index.len();
                    for i in (0..n).filter(|&i| Some(i) != self.me) {
                        self.send_to_index(i, &message);
                    }
                }
                Output::SetTimer { deadline_ms } => self.deadline_ms = deadline_ms,
                Output::Commit { blocks, certified } => {
                    if let Err(e) = self.store.put_commit_proof(&certified) {
                        tracing::warn!(
                            chain = self.chain.0, error = %e,
                            "cannot keep a commit proof; the next one proves the block too"
                        );
                    }
                    let stake_change = blocks.iter().any(|b| {
                        b.txs.iter().any(|t| {
                            matches!(
                                t.body.kind,
                                banyan_core::tx::TxKind::Stake { .. }
                                    | banyan_core::tx::TxKind::Unstake { .. }
                                    | banyan_core::tx::TxKind::ReportEquivocation { .. }
                                    | banyan_core::tx::TxKind::ReportProposalEquivocation { .. }
                            )
                        })
                    });
                    self.registry_dirty |= stake_change;
                }
                Output::Evidence(e) => {
                    self.metrics
                        .evidence
                        .with_label_values(&[self.label.as_str()])
                        .inc();
                    tracing::warn!(
                        chain = self.chain.0,
                        offender = e.offender(),
                        "equivocation detected: committee member {} signed two conflicting \
                         messages",
                        e.offender()
                    );
                    self.report_evidence(&e);
                }
                Output::EpochChange(proof) => {
                    let epoch = proof.epoch();
                    self.store
                        .put_epoch_proof(epoch, &proof)
                        .context("cannot archive the epoch proof")?;
                    // Early messages came under this epoch's indices: keep their senders'
                    // keys, which the next epoch maps to its own indices.
                    let early = self
                        .replica
                        .take()
                        .map(|mut r| r.take_next_epoch_messages())
                        .unwrap_or_default()
                        .into_iter()
                        .filter_map(|(i, m)| {
                            self.peer_map
                                .by_index
                                .get(i)
                                .copied()
                                .flatten()
                                .map(|k| (k, m))
                        })
                        .collect();
                    tracing::info!(
                        chain = self.chain.0,
                        "epoch {} ended; starting epoch {}",
                        epoch.0,
                        epoch.0.saturating_add(1)
                    );
                    return self.boot_epoch(early);
                }
            }
        }
        Ok(())
    }

    /// Record a vote this node signed before it leaves (see [`VOTE_LOG_PREFIX`]).
    fn log_vote(&self, message: &Message) -> Result<()> {
        if let Message::Vote(v) = message {
            if Some(v.signer as usize) == self.me {
                let mut b = WriteBatch::new();
                let key = vote_log_key(
                    self.chain,
                    v.data.epoch.0,
                    v.data.round.0,
                    v.data.block.as_bytes(),
                );
                b.put_raw(Column::Consensus, &key, Vec::new());
                self.raw
                    .write(b, Durability::Buffered)
                    .context("cannot write the vote log")?;
            }
        }
        Ok(())
    }

    fn send_to_index(&self, to: usize, message: &Message) {
        if let Some(Some(key)) = self.peer_map.by_index.get(to) {
            self.send_to_key(key, message);
        }
    }

    fn send_to_key(&self, key: &PeerKey, message: &Message) {
        let class = match message {
            Message::SyncResponse(_) | Message::EpochProof(_) => Class::Sync,
            _ => Class::Consensus,
        };
        let frame = wire::consensus_frame(self.chain, message);
        if self.network.try_send(key, class, frame).is_err() {
            let label = match class {
                Class::Sync => "sync",
                _ => "consensus",
            };
            self.metrics.net_dropped.with_label_values(&[label]).inc();
        }
    }

    fn publish(&mut self) {
        let app = self.app.lock();
        let tip = app.committed_tip();
        let epoch = app.committee().epoch();
        if tip.height.0 != self.progress.0 {
            self.progress = (tip.height.0, now_ms());
        }
        let round = self
            .replica
            .as_ref()
            .map(|r| r.status().round.0)
            .unwrap_or(0);
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
        let views = if self.registry_dirty {
            self.registry_dirty = false;
            Some((
                self.committee.as_ref().map(views_of_committee),
                views_of_registry(app.state(), self.committee.as_ref()),
            ))
        } else {
            None
        };
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
            committee_index: self.me,
            committee_size: self.committee.as_ref().map(|c| c.len()).unwrap_or(0),
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
