//! A deterministic simulator: many replicas, one seeded RNG, simulated time.
//!
//! Everything a replica does not control is simulated here: message delays drawn from a
//! [`Delay`] distribution, drops and partitions until the global stabilisation time (GST),
//! per-node clock offsets, crash and restart from durable storage (with crash points inside a
//! safety write), long pauses, and Byzantine validators ([`Behavior`]). Signatures are real BLS;
//! one [`SharedVerifier`] caches check results across replicas so a certificate is verified
//! once per simulation, not once per replica (a bad signature is still rejected: the cache
//! stores blst's answer).
//!
//! Determinism: one ChaCha RNG seeded from [`SimConfig::seed`], an event queue ordered by
//! (time, sequence number), no hash-map iteration on any path that decides an event. Every
//! delivered message and every commit is hashed into [`SimReport::trace`]: same seed, same
//! trace.

pub mod byzantine;
pub mod checker;
pub mod cluster;
pub mod scenario;

use banyan_core::certificate::{Committee, CommitteeMember};
use banyan_core::codec::BoundedVec;
use banyan_core::hash::{Digest, Domain, Hasher};
use banyan_core::header::{Block, BlockHeader};
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::BlsSecretKey;
use banyan_vrf::EpochSeed;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::cell::RefCell;
use std::cmp::Ordering;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::rc::Rc;

pub use byzantine::Behavior;
pub use checker::{DoubleSignDetector, SafetyChecker};

use crate::app::{AppError, Application, EmptyBlocks, Payload};
use crate::crypto::SharedVerifier;
use crate::error::{ConsensusError, StorageError};
use crate::leader::{LeaderElection, RoundRobin, VrfLeaders};
use crate::replica::{Environment, Input, Output, Replica, ReplicaConfig};
use crate::safety::{SafetyData, SafetyStorage};
use crate::store::BlockStore;
use crate::store::MemoryBlockStore;
use crate::types::{EpochChangeProof, Evidence, Message, Millis};

/// A message delay distribution.
#[derive(Clone, Copy, Debug)]
pub enum Delay {
    /// Uniform in `[min_ms, max_ms]`.
    Uniform {
        /// Least delay.
        min_ms: Millis,
        /// Greatest delay.
        max_ms: Millis,
    },
    /// `min_ms` plus an exponential tail of mean `mean_ms`, capped at `max_ms`.
    Exponential {
        /// Least delay.
        min_ms: Millis,
        /// Mean of the tail.
        mean_ms: Millis,
        /// Cap.
        max_ms: Millis,
    },
}

impl Delay {
    fn sample(&self, rng: &mut ChaCha8Rng) -> Millis {
        match *self {
            Delay::Uniform { min_ms, max_ms } => rng.gen_range(min_ms..=max_ms.max(min_ms)),
            Delay::Exponential {
                min_ms,
                mean_ms,
                max_ms,
            } => {
                let u: f64 = rng.gen_range(1e-9..1.0);
                let tail = (-u.ln() * mean_ms as f64) as Millis;
                min_ms.saturating_add(tail).min(max_ms.max(min_ms))
            }
        }
    }
}

/// Nodes in different groups cannot talk between `start_ms` and `end_ms`.
#[derive(Clone, Debug)]
pub struct Partition {
    /// Start.
    pub start_ms: Millis,
    /// Heal.
    pub end_ms: Millis,
    /// Groups of node ids (a node in no group is isolated).
    pub groups: Vec<Vec<usize>>,
}

/// Where a planned crash strikes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrashPoint {
    /// At the planned time, between two events.
    Now,
    /// During the node's next safety write, before it is durable: the write is lost and
    /// nothing is signed.
    BeforePersist,
    /// Right after the node's next safety write is durable, before anything is sent: the
    /// signed messages of that step are lost.
    AfterPersist,
}

/// A planned crash of `node` at `at_ms`, restarted `restart_after_ms` after it happens.
#[derive(Clone, Copy, Debug)]
pub struct CrashPlan {
    /// Node id.
    pub node: usize,
    /// When it is armed (or happens, for [`CrashPoint::Now`]).
    pub at_ms: Millis,
    /// Where.
    pub point: CrashPoint,
    /// Restart delay; `None` = stays down.
    pub restart_after_ms: Option<Millis>,
}

/// A node stops processing from `from_ms` to `until_ms`, then resumes with its old state and
/// everything that arrived meanwhile.
#[derive(Clone, Copy, Debug)]
pub struct PausePlan {
    /// Node id.
    pub node: usize,
    /// Start.
    pub from_ms: Millis,
    /// End.
    pub until_ms: Millis,
}

/// Which leader schedule the simulated committee uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LeaderKind {
    /// The VRF schedule of `banyan-vrf` (real proofs).
    Vrf,
    /// Round-robin (deterministic leaders, for targeted tests).
    RoundRobin,
}

/// One simulation.
#[derive(Clone, Debug)]
pub struct SimConfig {
    /// RNG seed.
    pub seed: u64,
    /// Behaviour of each committee member (its length is the committee size). A
    /// [`Behavior::Twin`] member is run by two nodes.
    pub behaviors: Vec<Behavior>,
    /// Message delays.
    pub delay: Delay,
    /// Probability that a message is dropped before GST.
    pub drop_before_gst: f64,
    /// Partitions (healed at their `end_ms`).
    pub partitions: Vec<Partition>,
    /// Global stabilisation time: no drops after it.
    pub gst_ms: Millis,
    /// Crashes.
    pub crashes: Vec<CrashPlan>,
    /// Pauses.
    pub pauses: Vec<PausePlan>,
    /// Clock offset of each node id (missing = 0).
    pub clock_offsets_ms: Vec<i64>,
    /// Replica tunables.
    pub replica: ReplicaConfig,
    /// Leader schedule.
    pub leaders: LeaderKind,
    /// Stop at this simulated time.
    pub max_time_ms: Millis,
    /// An honest node that is up must commit within this long after GST (or after its
    /// restart or resume, if later), and again within this long after each commit: a longer
    /// stretch without one is a liveness failure ([`SimReport::max_stall_ms`]).
    pub liveness_bound_ms: Millis,
    /// Stop early once every honest node committed this many blocks after GST.
    pub stop_after_commits: Option<u64>,
    /// Blocks per epoch (`None`: one epoch). Each epoch's committee has the same members
    /// (a new [`Committee`] of the next epoch) and a new leader seed.
    pub epoch_length: Option<u64>,
    /// Transfers in every proposed block (0: empty blocks), so messages have real sizes.
    pub block_txs: usize,
    /// The transport's frame limit: a message whose encoding is larger is refused at the
    /// sender, as the QUIC transport does (`None`: no limit).
    pub max_message_bytes: Option<usize>,
}

impl SimConfig {
    /// `n` honest members, uniform delays of 10–50 ms, no faults, 30 s.
    pub fn honest(n: usize, seed: u64) -> Self {
        SimConfig {
            seed,
            behaviors: vec![Behavior::Honest; n],
            delay: Delay::Uniform {
                min_ms: 10,
                max_ms: 50,
            },
            drop_before_gst: 0.0,
            partitions: Vec::new(),
            gst_ms: 0,
            crashes: Vec::new(),
            pauses: Vec::new(),
            clock_offsets_ms: Vec::new(),
            replica: ReplicaConfig::default(),
            leaders: LeaderKind::Vrf,
            max_time_ms: 30_000,
            liveness_bound_ms: 20_000,
            stop_after_commits: None,
            epoch_length: None,
            block_txs: 0,
            max_message_bytes: None,
        }
    }
}

/// What a simulation found.
#[derive(Clone, Debug, Default)]
pub struct SimReport {
    /// The seed.
    pub seed: u64,
    /// Heights where honest nodes committed different blocks.
    pub safety_violations: usize,
    /// Commits by honest nodes whose commit proof did not verify against the committee or
    /// did not name the last block committed.
    pub bad_commit_proofs: usize,
    /// Messages refused at the sender for exceeding `max_message_bytes`.
    pub oversized_messages: u64,
    /// Honest validators that signed two different messages of one kind in one round.
    pub double_signs: usize,
    /// Whether some honest node failed to commit within the bound after GST.
    pub liveness_failure: bool,
    /// Highest height committed by an honest node.
    pub committed_height: u64,
    /// Commits observed at honest nodes (one per node per block).
    pub honest_commits: u64,
    /// Sum of (commit time − proposal time) over honest commits, ms.
    pub commit_latency_sum_ms: u64,
    /// Sum of (round at commit − block round) over honest commits.
    pub commit_latency_sum_rounds: u64,
    /// Messages put on the network (a broadcast counts once per recipient).
    pub messages: u64,
    /// Sync responses sent by honest nodes, by recipient committee index.
    pub sync_responses_to: BTreeMap<usize, u64>,
    /// Evidence outputs, by offender committee index.
    pub evidence: BTreeMap<u16, u64>,
    /// Inputs refused, by error kind.
    pub rejected: BTreeMap<String, u64>,
    /// Hash of every delivery and commit, in order.
    pub trace: Digest,
    /// Simulated time at the end.
    pub end_ms: Millis,
    /// The longest time after GST an honest node was up (not paused) without committing.
    pub max_stall_ms: Millis,
    /// Highest round reached by an honest node.
    pub max_round: u64,
    /// When each height was first committed by an honest node.
    pub first_commit_ms: BTreeMap<u64, Millis>,
    /// When each height was last committed by an honest node (so far).
    pub last_commit_ms: BTreeMap<u64, Millis>,
    /// Committed height of each node id at the end.
    pub node_heights: Vec<u64>,
    /// Epoch of each node id at the end.
    pub node_epochs: Vec<u64>,
}

impl SimReport {
    /// Mean commit latency in ms.
    pub fn mean_commit_latency_ms(&self) -> f64 {
        self.commit_latency_sum_ms as f64 / self.honest_commits.max(1) as f64
    }
}

/// Simulated durable storage of one node's safety data, with crash points.
#[derive(Debug, Default)]
pub struct SimDisk {
    data: Option<SafetyData>,
    fail_next: bool,
    trip_after_write: bool,
    tripped: bool,
    /// Acknowledge writes without keeping them (a deliberately broken disk).
    pub lossy: bool,
}

/// A node's handle on its [`SimDisk`].
#[derive(Clone, Debug, Default)]
pub struct SimStorage(pub Rc<RefCell<SimDisk>>);

impl SafetyStorage for SimStorage {
    fn load(&self) -> Result<Option<SafetyData>, StorageError> {
        Ok(self.0.borrow().data.clone())
    }

    fn store(&mut self, data: &SafetyData) -> Result<(), StorageError> {
        let mut d = self.0.borrow_mut();
        if d.fail_next {
            d.fail_next = false;
            return Err(StorageError("simulated crash before the write".into()));
        }
        if !d.lossy {
            d.data = Some(data.clone());
        }
        if d.trip_after_write {
            d.trip_after_write = false;
            d.tripped = true;
        }
        Ok(())
    }
}

struct Node {
    index: usize,
    behavior: Behavior,
    replica: Option<Replica>,
    disk: SimStorage,
    blocks: MemoryBlockStore,
    incarnation: u64,
    clock_offset_ms: i64,
    paused: bool,
    inbox: Vec<(usize, Message)>,
    memory: byzantine::Memory,
    halted: bool,
    restart_after_ms: Option<Millis>,
    commits_after_gst: u64,
    up_since_ms: Millis,
    /// Its last commit (0: none yet).
    last_commit_ms: Millis,
    /// The longest time after GST it was up, not paused, and committed nothing.
    max_stall_ms: Millis,
    epoch: Epoch,
    epoch_base: Option<(Block, EpochChangeProof)>,
    /// Proofs of every epoch end this node went through (its durable archive).
    proofs: BTreeMap<u64, EpochChangeProof>,
}

enum Event {
    Deliver {
        to: usize,
        from_index: usize,
        from_node: usize,
        message: Message,
    },
    Timer {
        node: usize,
        incarnation: u64,
    },
    Crash(CrashPlan),
    Restart(usize),
    Pause(usize),
    Resume(usize),
}

struct Scheduled {
    at: Millis,
    seq: u64,
    event: Event,
}

impl PartialEq for Scheduled {
    fn eq(&self, other: &Self) -> bool {
        (self.at, self.seq) == (other.at, other.seq)
    }
}
impl Eq for Scheduled {}
impl PartialOrd for Scheduled {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scheduled {
    fn cmp(&self, other: &Self) -> Ordering {
        // Reversed: the heap pops the earliest.
        (other.at, other.seq).cmp(&(self.at, self.seq))
    }
}

/// The key seed of committee member `i` (the same in every simulation).
pub fn member_key(i: usize) -> BlsSecretKey {
    let mut ikm = [0u8; 32];
    ikm[..8].copy_from_slice(&(i as u64).to_le_bytes());
    ikm[8..].copy_from_slice(&[0x5a; 24]);
    // 32 bytes of seed material are always enough for key_gen.
    #[allow(clippy::expect_used)]
    BlsSecretKey::from_seed(&ikm).expect("32-byte seed")
}

/// A committee of `n` members with stake 1 each, keys from [`member_key`].
pub fn make_committee(n: usize, epoch: Epoch) -> Result<Committee, ConsensusError> {
    make_weighted_committee(&vec![1; n], epoch)
}

/// A committee whose member `i` has key [`member_key`]`(i)` and stake `stakes[i]`.
pub fn make_weighted_committee(stakes: &[u64], epoch: Epoch) -> Result<Committee, ConsensusError> {
    let members = stakes
        .iter()
        .enumerate()
        .map(|(i, &stake)| {
            let k = member_key(i);
            let key = k
                .prove_possession()
                .verify(&k.public_key())
                .map_err(|e| ConsensusError::InvalidProposal(e.to_string()))?;
            Ok(CommitteeMember { key, stake })
        })
        .collect::<Result<Vec<_>, ConsensusError>>()?;
    Ok(Committee::new(epoch, members)?)
}

/// The genesis block of a simulated chain.
pub fn genesis_block(chain: ChainId, epoch: Epoch) -> Block {
    Block {
        header: BlockHeader {
            chain,
            epoch,
            height: Height(0),
            round: Round(0),
            parent: Digest::ZERO,
            state_root: Digest::ZERO,
            tx_root: Block::compute_tx_root(&[]),
            outbox_root: Digest::ZERO,
            proposer: Digest::ZERO,
            timestamp_ms: 0,
            vrf_proof: None,
        },
        // An empty list is within any bound.
        txs: BoundedVec::new(Vec::new()).expect("empty list fits"),
    }
}

/// A running simulation.
pub struct Simulation {
    cfg: SimConfig,
    committee: Committee,
    committees: HashMap<u64, Committee>,
    genesis: Block,
    verifier: SharedVerifier,
    rng: ChaCha8Rng,
    now: Millis,
    seq: u64,
    queue: BinaryHeap<Scheduled>,
    nodes: Vec<Node>,
    proposed_at: HashMap<Digest, Millis>,
    trace: Hasher,
    safety: SafetyChecker,
    signs: DoubleSignDetector,
    report: SimReport,
    /// Every evidence output, in order.
    pub evidence: Vec<Evidence>,
}

impl Simulation {
    /// Set up the committee and nodes (no event runs yet).
    pub fn new(cfg: SimConfig) -> Result<Self, ConsensusError> {
        let n = cfg.behaviors.len();
        let committee = make_committee(n, cfg.replica.epoch)?;
        Self::with_committee(cfg, committee)
    }

    /// As [`Simulation::new`], with a committee built beforehand (members' keys must be
    /// [`member_key`]`(i)`).
    pub fn with_committee(cfg: SimConfig, committee: Committee) -> Result<Self, ConsensusError> {
        let genesis = genesis_block(cfg.replica.chain, cfg.replica.epoch);
        let mut nodes = Vec::new();
        for (i, &b) in cfg.behaviors.iter().enumerate() {
            let copies = if b == Behavior::Twin { 2 } else { 1 };
            for _ in 0..copies {
                nodes.push(Node {
                    index: i,
                    behavior: b,
                    replica: None,
                    disk: SimStorage::default(),
                    blocks: MemoryBlockStore::default(),
                    incarnation: 0,
                    clock_offset_ms: 0,
                    paused: false,
                    inbox: Vec::new(),
                    memory: byzantine::Memory::default(),
                    halted: false,
                    restart_after_ms: None,
                    commits_after_gst: 0,
                    last_commit_ms: 0,
                    max_stall_ms: 0,
                    up_since_ms: 0,
                    epoch: cfg.replica.epoch,
                    epoch_base: None,
                    proofs: BTreeMap::new(),
                });
            }
        }
        for (id, node) in nodes.iter_mut().enumerate() {
            node.clock_offset_ms = cfg.clock_offsets_ms.get(id).copied().unwrap_or(0);
        }
        let mut sim = Simulation {
            rng: ChaCha8Rng::seed_from_u64(cfg.seed),
            report: SimReport {
                seed: cfg.seed,
                ..SimReport::default()
            },
            committees: HashMap::from([(cfg.replica.epoch.0, committee.clone())]),
            cfg,
            committee,
            genesis,
            verifier: SharedVerifier::default(),
            now: 0,
            seq: 0,
            queue: BinaryHeap::new(),
            nodes,
            proposed_at: HashMap::new(),
            trace: Hasher::new(Domain::Custom("banyan/sim/trace")),
            safety: SafetyChecker::default(),
            signs: DoubleSignDetector::default(),
            evidence: Vec::new(),
        };
        for c in sim.cfg.crashes.clone() {
            sim.schedule(c.at_ms, Event::Crash(c));
        }
        for p in sim.cfg.pauses.clone() {
            sim.schedule(p.from_ms, Event::Pause(p.node));
            sim.schedule(p.until_ms, Event::Resume(p.node));
        }
        Ok(sim)
    }

    /// Node ids (twins have two ids for one committee index).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// The committee index of each node id.
    pub fn node_indices(&self) -> Vec<usize> {
        self.nodes.iter().map(|n| n.index).collect()
    }

    /// Make a node's disk acknowledge writes without keeping them (a deliberately unsafe
    /// storage, to show the double-sign detector can fail).
    pub fn set_lossy_disk(&mut self, node: usize) {
        if let Some(n) = self.nodes.get(node) {
            n.disk.0.borrow_mut().lossy = true;
        }
    }

    fn schedule(&mut self, at: Millis, event: Event) {
        self.seq += 1;
        self.queue.push(Scheduled {
            at,
            seq: self.seq,
            event,
        });
    }

    fn local(&self, node: usize) -> Millis {
        let t = self.now as i64 + self.nodes[node].clock_offset_ms;
        t.max(0) as Millis
    }

    fn committee_of(&mut self, epoch: Epoch) -> Result<Committee, ConsensusError> {
        if let Some(c) = self.committees.get(&epoch.0) {
            return Ok(c.clone());
        }
        let stakes: Vec<u64> = self.committee.members().iter().map(|m| m.stake).collect();
        let c = make_weighted_committee(&stakes, epoch)?;
        self.committees.insert(epoch.0, c.clone());
        Ok(c)
    }

    fn make_replica(&mut self, node: usize) -> Result<Replica, ConsensusError> {
        let epoch = self.nodes[node].epoch;
        let committee = self.committee_of(epoch)?;
        let n = &self.nodes[node];
        let leaders: Box<dyn LeaderElection> = match self.cfg.leaders {
            LeaderKind::Vrf => {
                let mut seed = [0u8; 32];
                seed[..8].copy_from_slice(&self.cfg.seed.to_le_bytes());
                seed[8..16].copy_from_slice(&epoch.0.to_le_bytes());
                Box::new(VrfLeaders::new(
                    self.cfg.replica.chain,
                    EpochSeed(seed),
                    &committee,
                ))
            }
            LeaderKind::RoundRobin => Box::new(RoundRobin::new(committee.len())),
        };
        let env = Environment {
            app: Box::new(FilledBlocks::new(
                EmptyBlocks {
                    epoch_length: self.cfg.epoch_length,
                },
                self.cfg.block_txs,
                self.cfg.replica.chain,
            )),
            leaders,
            verifier: Box::new(self.verifier.clone()),
            safety_storage: Box::new(n.disk.clone()),
            blocks: Box::new(n.blocks.clone()),
        };
        let cfg = ReplicaConfig {
            epoch,
            ..self.cfg.replica.clone()
        };
        let (base, proof) = match &n.epoch_base {
            Some((b, p)) => (b.clone(), Some(p.clone())),
            None => (self.genesis.clone(), None),
        };
        let r = Replica::new(cfg, committee, n.index, member_key(n.index), base, env)?;
        Ok(match proof {
            Some(p) => r.with_entry_proof(p),
            None => r,
        })
    }

    fn boot(&mut self, node: usize) {
        match self.make_replica(node) {
            Ok(mut r) => {
                let now = self.local(node);
                let mut out = Vec::new();
                let res = r.start(now, &mut out);
                self.nodes[node].replica = Some(r);
                self.nodes[node].up_since_ms = self.now;
                self.after_step(node, out, res);
            }
            Err(_) => self.nodes[node].halted = true,
        }
    }

    /// Run to the end and report.
    pub fn run(mut self) -> SimReport {
        self.run_mut();
        self.finish()
    }

    /// Run to the end, keeping the simulation for inspection.
    pub fn run_mut(&mut self) {
        for id in 0..self.nodes.len() {
            self.boot(id);
        }
        while let Some(s) = self.queue.pop() {
            if s.at > self.cfg.max_time_ms {
                break;
            }
            self.now = s.at;
            self.step(s.event);
            if self.done() {
                break;
            }
        }
    }

    fn done(&self) -> bool {
        let Some(k) = self.cfg.stop_after_commits else {
            return false;
        };
        self.nodes
            .iter()
            .filter(|n| n.behavior.is_honest() && !n.halted)
            .all(|n| n.commits_after_gst >= k)
    }

    /// Count the time node `node` has gone without a commit, up to now, into its longest
    /// stall: only time after GST, since it last booted, resumed or committed.
    fn note_stall(&mut self, node: usize) {
        let gst = self.cfg.gst_ms;
        let now = self.now;
        let n = &mut self.nodes[node];
        let since = n.last_commit_ms.max(gst).max(n.up_since_ms);
        n.max_stall_ms = n.max_stall_ms.max(now.saturating_sub(since));
    }

    fn crash(&mut self, node: usize) {
        if self.nodes[node].replica.is_some() && !self.nodes[node].paused {
            self.note_stall(node);
        }
        let n = &mut self.nodes[node];
        n.replica = None;
        n.incarnation += 1;
        n.paused = false;
        n.inbox.clear();
        if let Some(after) = n.restart_after_ms.take() {
            let at = self.now.saturating_add(after);
            self.schedule(at, Event::Restart(node));
        }
    }

    fn step(&mut self, event: Event) {
        match event {
            Event::Deliver {
                to,
                from_index,
                from_node,
                message,
            } => {
                let n = &mut self.nodes[to];
                if n.replica.is_none() {
                    return;
                }
                if n.paused {
                    n.inbox.push((from_index, message));
                    return;
                }
                self.trace.update(&self.now.to_le_bytes());
                self.trace.update(&(to as u64).to_le_bytes());
                self.trace.update(&(from_node as u64).to_le_bytes());
                self.trace.update(&message.encode());
                self.deliver(to, from_index, message);
            }
            Event::Timer { node, incarnation } => {
                let n = &self.nodes[node];
                if n.incarnation != incarnation || n.paused {
                    return;
                }
                let now = self.local(node);
                if let Some(r) = self.nodes[node].replica.as_mut() {
                    let mut out = Vec::new();
                    let res = r.handle(now, Input::Timer, &mut out);
                    self.after_step(node, out, res);
                }
            }
            Event::Crash(c) => {
                let n = &mut self.nodes[c.node];
                n.restart_after_ms = c.restart_after_ms;
                match c.point {
                    CrashPoint::Now => self.crash(c.node),
                    CrashPoint::BeforePersist => n.disk.0.borrow_mut().fail_next = true,
                    CrashPoint::AfterPersist => n.disk.0.borrow_mut().trip_after_write = true,
                }
            }
            Event::Restart(node) => {
                if self.nodes[node].replica.is_none() && !self.nodes[node].halted {
                    self.boot(node);
                }
            }
            Event::Pause(node) => {
                if self.nodes[node].replica.is_some() && !self.nodes[node].paused {
                    self.note_stall(node);
                }
                self.nodes[node].paused = true;
            }
            Event::Resume(node) => {
                self.nodes[node].paused = false;
                // Time paused is not a stall: count from here.
                self.nodes[node].up_since_ms = self.now;
                let inbox = std::mem::take(&mut self.nodes[node].inbox);
                for (from, m) in inbox {
                    if self.nodes[node].replica.is_none() {
                        break;
                    }
                    self.deliver(node, from, m);
                }
                let inc = self.nodes[node].incarnation;
                self.schedule(
                    self.now,
                    Event::Timer {
                        node,
                        incarnation: inc,
                    },
                );
            }
        }
    }

    fn deliver(&mut self, to: usize, from_index: usize, message: Message) {
        if !self.nodes[to].behavior.is_honest() {
            self.nodes[to].memory.observe(&message);
        }
        if let Message::EpochProofRequest(e) = &message {
            // Served from the node's archive of epoch proofs, whatever epoch it is in now.
            if let Some(p) = self.nodes[to].proofs.get(&e.0).cloned() {
                self.send(to, from_index, Message::EpochProof(Box::new(p)));
            }
            return;
        }
        let now = self.local(to);
        if let Some(r) = self.nodes[to].replica.as_mut() {
            let mut out = Vec::new();
            let res = r.handle(
                now,
                Input::Message {
                    from: from_index,
                    message,
                },
                &mut out,
            );
            self.after_step(to, out, res);
        }
    }

    fn after_step(&mut self, node: usize, outputs: Vec<Output>, res: Result<(), ConsensusError>) {
        if let Err(e) = res {
            *self.report.rejected.entry(e.kind()).or_default() += 1;
            if e.is_fatal() {
                if matches!(e, ConsensusError::ConflictingCommit(_)) {
                    self.nodes[node].halted = true;
                }
                self.crash(node);
                return;
            }
        }
        let honest = self.nodes[node].behavior.is_honest();
        let index = self.nodes[node].index;
        if honest {
            for o in &outputs {
                if let Output::Broadcast(m) | Output::Send { message: m, .. } = o {
                    self.signs.record(index, m);
                }
            }
        }
        let tripped = std::mem::take(&mut self.nodes[node].disk.0.borrow_mut().tripped);
        if tripped {
            // Crash after the durable write, before anything leaves.
            self.crash(node);
            return;
        }
        let outputs = if honest {
            outputs
        } else {
            let key = member_key(index);
            let behavior = self.nodes[node].behavior;
            let (epoch, round) = match self.nodes[node].replica.as_ref() {
                Some(r) => (r.committee().epoch(), r.status().round),
                None => (self.nodes[node].epoch, Round(0)),
            };
            let ctx = byzantine::Context {
                me: index,
                n: self.committee.len(),
                key: &key,
                chain: self.cfg.replica.chain,
                epoch,
                round,
                lookahead: self.cfg.replica.max_round_lookahead,
            };
            let mut memory = std::mem::take(&mut self.nodes[node].memory);
            let o = byzantine::tamper(behavior, ctx, outputs, &mut memory, &mut self.rng);
            self.nodes[node].memory = memory;
            o
        };
        for o in outputs {
            match o {
                Output::Send { to, message } => {
                    if honest && matches!(message, Message::SyncResponse(_)) {
                        *self.report.sync_responses_to.entry(to).or_default() += 1;
                    }
                    self.send(node, to, message)
                }
                Output::Broadcast(message) => {
                    if let Message::Proposal(p) = &message {
                        self.proposed_at
                            .entry(p.block.header.id())
                            .or_insert(self.now);
                    }
                    for to in 0..self.committee.len() {
                        if to != index {
                            self.send(node, to, message.clone());
                        }
                    }
                }
                Output::SetTimer { deadline_ms } => {
                    let offset = self.nodes[node].clock_offset_ms;
                    let at = (deadline_ms as i64 - offset).max(self.now as i64) as Millis;
                    let inc = self.nodes[node].incarnation;
                    self.schedule(
                        at,
                        Event::Timer {
                            node,
                            incarnation: inc,
                        },
                    );
                }
                Output::Commit { blocks, certified } => {
                    if honest {
                        self.record_commits(node, &blocks);
                        let proven = self
                            .committee_of(certified.epoch())
                            .ok()
                            .and_then(|c| certified.verify(&c).ok().cloned());
                        if proven.as_ref() != blocks.last().map(|b| &b.header) {
                            self.report.bad_commit_proofs += 1;
                        }
                    }
                }
                Output::Evidence(e) => {
                    *self.report.evidence.entry(e.offender()).or_default() += 1;
                    self.evidence.push(*e);
                }
                Output::EpochChange(proof) => {
                    let ending = proof.header().map(|h| h.id());
                    let base =
                        ending.and_then(|id| self.nodes[node].blocks.get(&id).ok().flatten());
                    if let Some(base) = base {
                        let n = &mut self.nodes[node];
                        n.epoch = Epoch(proof.epoch().0.saturating_add(1));
                        n.proofs.insert(proof.epoch().0, (*proof).clone());
                        n.epoch_base = Some((base, *proof));
                        let early = n
                            .replica
                            .take()
                            .map(|mut r| r.take_next_epoch_messages())
                            .unwrap_or_default();
                        n.incarnation += 1;
                        self.boot(node);
                        for (from, m) in early {
                            self.deliver(node, from, m);
                        }
                    }
                    return;
                }
            }
        }
    }

    fn record_commits(&mut self, node: usize, blocks: &[Block]) {
        let round = self.nodes[node]
            .replica
            .as_ref()
            .map(|r| r.status().round.0)
            .unwrap_or(0);
        for b in blocks {
            let id = b.header.id();
            self.safety.record(node, b.header.height, id);
            self.trace.update(b"commit");
            self.trace.update(&(node as u64).to_le_bytes());
            self.trace.update(id.as_bytes());
            self.report.honest_commits += 1;
            let proposed = self.proposed_at.get(&id).copied().unwrap_or(self.now);
            self.report.commit_latency_sum_ms += self.now.saturating_sub(proposed);
            self.report.commit_latency_sum_rounds += round.saturating_sub(b.header.round.0);
            self.report.committed_height = self.report.committed_height.max(b.header.height.0);
            self.report
                .first_commit_ms
                .entry(b.header.height.0)
                .or_insert(self.now);
            self.report
                .last_commit_ms
                .insert(b.header.height.0, self.now);
            if self.now >= self.cfg.gst_ms {
                self.note_stall(node);
                self.nodes[node].commits_after_gst += 1;
            }
            self.nodes[node].last_commit_ms = self.now;
        }
    }

    fn partitioned(&self, a: usize, b: usize) -> bool {
        self.cfg.partitions.iter().any(|p| {
            p.start_ms <= self.now
                && self.now < p.end_ms
                && !p.groups.iter().any(|g| g.contains(&a) && g.contains(&b))
        })
    }

    fn send(&mut self, from_node: usize, to_index: usize, message: Message) {
        let from_index = self.nodes[from_node].index;
        if let Some(max) = self.cfg.max_message_bytes {
            if banyan_core::codec::encoded_len(&message) > max {
                self.report.oversized_messages += 1;
                return;
            }
        }
        for to in 0..self.nodes.len() {
            if to == from_node || self.nodes[to].index != to_index {
                continue;
            }
            self.report.messages += 1;
            if self.partitioned(from_node, to) {
                continue;
            }
            if self.now < self.cfg.gst_ms
                && self.cfg.drop_before_gst > 0.0
                && self.rng.gen_bool(self.cfg.drop_before_gst.min(1.0))
            {
                continue;
            }
            let d = self.cfg.delay.sample(&mut self.rng);
            self.schedule(
                self.now.saturating_add(d),
                Event::Deliver {
                    to,
                    from_index,
                    from_node,
                    message: message.clone(),
                },
            );
        }
    }

    /// The report so far, with the checkers' verdicts.
    pub fn finish(mut self) -> SimReport {
        self.report.end_ms = self.now;
        self.report.safety_violations = self.safety.forks.len();
        self.report.double_signs = self.signs.double_signs.len();
        let bound_end = self.cfg.gst_ms.saturating_add(self.cfg.liveness_bound_ms);
        let stopped_early = self.done();
        for i in 0..self.nodes.len() {
            let n = &self.nodes[i];
            if n.behavior.is_honest() && !n.halted && n.replica.is_some() && !n.paused {
                self.note_stall(i);
            }
        }
        self.report.max_stall_ms = self
            .nodes
            .iter()
            .filter(|n| n.behavior.is_honest() && !n.halted)
            .map(|n| n.max_stall_ms)
            .max()
            .unwrap_or(0);
        // Live: after GST every honest node that is up commits, and keeps committing: no
        // stretch of the bound's length without a commit (not only one commit in all).
        self.report.liveness_failure = (!stopped_early
            && self.now >= bound_end
            && self.nodes.iter().any(|n| {
                n.behavior.is_honest()
                    && !n.halted
                    && n.replica.is_some()
                    && n.commits_after_gst == 0
            }))
            || self.report.max_stall_ms > self.cfg.liveness_bound_ms;
        self.report.max_round = self
            .nodes
            .iter()
            .filter(|n| n.behavior.is_honest())
            .filter_map(|n| n.replica.as_ref().map(|r| r.status().round.0))
            .max()
            .unwrap_or(0);
        self.report.node_epochs = self.nodes.iter().map(|n| n.epoch.0).collect();
        self.report.node_heights = self
            .nodes
            .iter()
            .map(|n| n.blocks.committed_height())
            .collect();
        self.report.trace = self.trace.clone().finalize();
        self.report
    }

    /// Status of every node that is up.
    pub fn statuses(&self) -> Vec<Option<crate::replica::Status>> {
        self.nodes
            .iter()
            .map(|n| n.replica.as_ref().map(|r| r.status()))
            .collect()
    }
}

/// [`EmptyBlocks`] with `count` copies of one signed transfer in every proposed block, so
/// that proposals and sync answers have the sizes of a loaded chain (execution is not
/// simulated: the state root follows the chain as with empty blocks).
struct FilledBlocks {
    inner: EmptyBlocks,
    txs: Vec<banyan_core::tx::SignedTx>,
}

impl FilledBlocks {
    fn new(inner: EmptyBlocks, count: usize, chain: ChainId) -> Self {
        use banyan_core::ids::{Address, Amount, Nonce};
        use banyan_core::keys::AccountSecretKey;
        use banyan_core::tx::TxBody;
        let txs = if count == 0 {
            Vec::new()
        } else {
            let key = AccountSecretKey::from_bytes(&[7; 32]);
            let tx = TxBody::native_transfer(
                chain,
                Digest::ZERO,
                key.public_key(),
                Nonce(0),
                Amount(1),
                Address([9; 32]),
                Amount(1),
            )
            .sign(&key);
            vec![tx; count]
        };
        FilledBlocks { inner, txs }
    }
}

impl Application for FilledBlocks {
    fn propose(&mut self, parent: &Block) -> Result<Payload, AppError> {
        Ok(Payload {
            txs: self.txs.clone(),
            ..self.inner.propose(parent)?
        })
    }

    fn verify(&mut self, parent: &Block, block: &Block) -> Result<(), AppError> {
        self.inner.verify(parent, block)
    }

    fn commit(&mut self, block: &Block) -> Result<(), AppError> {
        self.inner.commit(block)
    }

    fn ends_epoch(&self, header: &BlockHeader) -> bool {
        self.inner.ends_epoch(header)
    }
}
