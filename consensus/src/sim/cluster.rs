//! A cluster stepped by its caller: the replicas of one committee, the messages in flight
//! between them, and the simulator's safety checks, with every scheduling choice (which
//! message arrives, which is lost or repeated, when time passes, who restarts) left to the
//! caller. The replica fuzz target drives it from the fuzzer's bytes, so libFuzzer searches
//! the schedules; tests drive it in order to collect real messages.
//!
//! The last committee index may run as twins (two replicas with one key and separate safety
//! storage): a Byzantine member that equivocates with real signatures. With `n >= 4` that is at
//! most `f` faulty, so no schedule may fork the honest members or make one of them sign twice
//! in a round.

use banyan_core::certificate::Committee;
use banyan_core::header::{Block, CertifiedHeader};
use banyan_core::ids::Epoch;
use std::collections::VecDeque;

use super::{genesis_block, make_committee, member_key, SimStorage};
use super::{DoubleSignDetector, SafetyChecker};
use crate::app::EmptyBlocks;
use crate::crypto::SharedVerifier;
use crate::error::ConsensusError;
use crate::leader::RoundRobin;
use crate::replica::{Environment, Input, Output, Replica, ReplicaConfig};
use crate::store::MemoryBlockStore;
use crate::types::{Message, Millis};

/// Most messages in flight; past it the oldest is lost (a bounded network).
pub const MAX_IN_FLIGHT: usize = 4_096;

/// A message on its way.
#[derive(Clone, Debug)]
pub struct InFlight {
    /// The sender's committee index.
    pub from: usize,
    /// The receiving node (twins are two nodes of one index).
    pub to: usize,
    /// The message.
    pub message: Message,
}

struct ClusterNode {
    index: usize,
    honest: bool,
    replica: Option<Replica>,
    disk: SimStorage,
    blocks: MemoryBlockStore,
    timers: Vec<Millis>,
}

/// The replicas of one committee and the messages between them (see the module docs).
pub struct Cluster {
    committee: Committee,
    genesis: Block,
    verifier: SharedVerifier,
    nodes: Vec<ClusterNode>,
    in_flight: VecDeque<InFlight>,
    now: Millis,
    safety: SafetyChecker,
    signs: DoubleSignDetector,
    bad_commit_proofs: u64,
    honest_fatal: Vec<(usize, String)>,
    committed_height: u64,
    record: bool,
    sent: Vec<Message>,
    proofs: Vec<CertifiedHeader>,
}

impl Cluster {
    /// A committee of `n` (stake 1 each, keys from [`member_key`]), one replica per member,
    /// the last member twice if `twins`. Call [`start`](Self::start) next.
    pub fn new(n: usize, twins: bool) -> Result<Self, ConsensusError> {
        let committee = make_committee(n, Epoch(0))?;
        Ok(Self::with_committee(
            committee,
            SharedVerifier::default(),
            twins,
        ))
    }

    /// [`new`](Self::new) with a committee of epoch 0 whose member `i` has the key
    /// [`member_key`]`(i)` (as [`make_committee`] builds), and a signature cache that may
    /// outlive the cluster (it stores each check's answer, so sharing it across clusters saves
    /// time and changes no outcome).
    pub fn with_committee(committee: Committee, verifier: SharedVerifier, twins: bool) -> Self {
        let n = committee.len();
        let cfg = ReplicaConfig::default();
        let mut nodes = Vec::new();
        for index in 0..n {
            let twin = twins && index + 1 == n;
            for _ in 0..(if twin { 2 } else { 1 }) {
                nodes.push(ClusterNode {
                    index,
                    honest: !twin,
                    replica: None,
                    disk: SimStorage::default(),
                    blocks: MemoryBlockStore::default(),
                    timers: Vec::new(),
                });
            }
        }
        Cluster {
            committee,
            genesis: genesis_block(cfg.chain, cfg.epoch),
            verifier,
            nodes,
            in_flight: VecDeque::new(),
            now: 0,
            safety: SafetyChecker::default(),
            signs: DoubleSignDetector::default(),
            bad_commit_proofs: 0,
            honest_fatal: Vec::new(),
            committed_height: 0,
            record: false,
            sent: Vec::new(),
            proofs: Vec::new(),
        }
    }

    /// Keep a copy of every message any replica sends ([`sent`](Self::sent)) and of every
    /// honest commit proof ([`commit_proofs`](Self::commit_proofs)).
    pub fn record_messages(&mut self) {
        self.record = true;
    }

    /// Start every replica.
    pub fn start(&mut self) -> Result<(), ConsensusError> {
        for node in 0..self.nodes.len() {
            self.boot(node)?;
        }
        Ok(())
    }

    /// Make node `node`'s safety storage acknowledge writes without keeping them: a planted
    /// bug, for showing that [`check`](Self::check) catches what follows.
    pub fn set_lossy_disk(&mut self, node: usize) {
        if let Some(n) = self.nodes.get(node) {
            n.disk.0.borrow_mut().lossy = true;
        }
    }

    /// Nodes (twins count twice).
    pub fn node_count(&self) -> usize {
        self.nodes.len()
    }

    /// Messages in flight, oldest first.
    pub fn in_flight(&self) -> &VecDeque<InFlight> {
        &self.in_flight
    }

    /// The highest height an honest member committed.
    pub fn committed_height(&self) -> u64 {
        self.committed_height
    }

    /// Every message sent since [`record_messages`](Self::record_messages).
    pub fn sent(&self) -> &[Message] {
        &self.sent
    }

    /// Every honest commit proof since [`record_messages`](Self::record_messages).
    pub fn commit_proofs(&self) -> &[CertifiedHeader] {
        &self.proofs
    }

    /// Deliver the message in flight at `slot` (modulo how many there are) and remove it.
    /// Returns what the receiving replica answered (an error only drops that message).
    pub fn deliver(&mut self, slot: usize) -> Result<(), ConsensusError> {
        match self.take(slot) {
            Some(m) => self.handle(m.to, m.from, m.message),
            None => Ok(()),
        }
    }

    /// Deliver a copy of the message at `slot` and leave it in flight.
    pub fn duplicate(&mut self, slot: usize) -> Result<(), ConsensusError> {
        let Some(m) = self.slot(slot).cloned() else {
            return Ok(());
        };
        self.handle(m.to, m.from, m.message)
    }

    /// Lose the message at `slot`.
    pub fn lose(&mut self, slot: usize) {
        self.take(slot);
    }

    /// The message in flight at `slot` (modulo how many there are).
    pub fn slot(&self, slot: usize) -> Option<&InFlight> {
        match self.in_flight.len() {
            0 => None,
            len => self.in_flight.get(slot % len),
        }
    }

    /// Hand node `node` (modulo the node count) a message as if committee index `from` sent
    /// it; `from` may be outside the committee.
    pub fn inject(
        &mut self,
        node: usize,
        from: usize,
        message: Message,
    ) -> Result<(), ConsensusError> {
        let node = node % self.nodes.len();
        self.handle(node, from, message)
    }

    /// Let `ms` pass and fire every timer that is due.
    pub fn advance(&mut self, ms: Millis) {
        self.now = self.now.saturating_add(ms);
        for node in 0..self.nodes.len() {
            let now = self.now;
            let timers = &mut self.nodes[node].timers;
            let due = timers.iter().any(|&t| t <= now);
            timers.retain(|&t| t > now);
            if due {
                // A timer's error is the replica's own business (a fatal one is recorded by
                // `step` for `check`).
                let _ = self.step(node, |r, now, out| r.handle(now, Input::Timer, out));
            }
        }
    }

    /// Crash node `node` (modulo the node count) and start it again from its durable state.
    pub fn restart(&mut self, node: usize) -> Result<(), ConsensusError> {
        let node = node % self.nodes.len();
        self.nodes[node].replica = None;
        self.nodes[node].timers.clear();
        self.boot(node)
    }

    /// The checks every schedule must pass: no two honest members committed different blocks
    /// at one height, no honest member signed two messages of one kind in one round, every
    /// commit came with a proof that verifies, and no honest replica stopped on an error.
    pub fn check(&self) -> Result<(), String> {
        if let Some(f) = self.safety.forks.first() {
            return Err(format!("fork: {f:?}"));
        }
        if let Some(d) = self.signs.double_signs.first() {
            return Err(format!("honest double sign: {d:?}"));
        }
        if self.bad_commit_proofs > 0 {
            return Err(format!(
                "{} commits without a valid proof",
                self.bad_commit_proofs
            ));
        }
        if let Some((node, e)) = self.honest_fatal.first() {
            return Err(format!("honest node {node} stopped: {e}"));
        }
        Ok(())
    }

    fn take(&mut self, slot: usize) -> Option<InFlight> {
        match self.in_flight.len() {
            0 => None,
            len => self.in_flight.remove(slot % len),
        }
    }

    fn boot(&mut self, node: usize) -> Result<(), ConsensusError> {
        let n = &self.nodes[node];
        let env = Environment {
            app: Box::new(EmptyBlocks { epoch_length: None }),
            leaders: Box::new(RoundRobin::new(self.committee.len())),
            verifier: Box::new(self.verifier.clone()),
            safety_storage: Box::new(n.disk.clone()),
            blocks: Box::new(n.blocks.clone()),
        };
        let replica = Replica::new(
            ReplicaConfig::default(),
            self.committee.clone(),
            n.index,
            member_key(n.index),
            self.genesis.clone(),
            env,
        )?;
        self.nodes[node].replica = Some(replica);
        self.step(node, |r, now, out| r.start(now, out))
    }

    fn handle(&mut self, node: usize, from: usize, message: Message) -> Result<(), ConsensusError> {
        self.step(node, |r, now, out| {
            r.handle(now, Input::Message { from, message }, out)
        })
    }

    /// Run one replica step and carry out what it asks.
    fn step(
        &mut self,
        node: usize,
        f: impl FnOnce(&mut Replica, Millis, &mut Vec<Output>) -> Result<(), ConsensusError>,
    ) -> Result<(), ConsensusError> {
        let now = self.now;
        let Some(replica) = self.nodes[node].replica.as_mut() else {
            return Ok(());
        };
        let mut out = Vec::new();
        let res = f(replica, now, &mut out);
        let (index, honest) = (self.nodes[node].index, self.nodes[node].honest);
        if let Err(e) = &res {
            if e.is_fatal() {
                if honest {
                    self.honest_fatal.push((node, e.to_string()));
                }
                self.nodes[node].replica = None;
                return res;
            }
        }
        for o in out {
            match o {
                Output::Send { to, message } => self.send(node, index, honest, &[to], message),
                Output::Broadcast(message) => {
                    let all: Vec<usize> =
                        (0..self.committee.len()).filter(|&i| i != index).collect();
                    self.send(node, index, honest, &all, message)
                }
                Output::SetTimer { deadline_ms } => self.nodes[node].timers.push(deadline_ms),
                Output::Commit { blocks, certified } => {
                    if !honest {
                        continue;
                    }
                    for b in &blocks {
                        self.safety.record(node, b.header.height, b.header.id());
                        self.committed_height = self.committed_height.max(b.header.height.0);
                    }
                    let proven = certified.verify(&self.committee).ok();
                    if proven != blocks.last().map(|b| &b.header) {
                        self.bad_commit_proofs += 1;
                    }
                    if self.record {
                        self.proofs.push(*certified);
                    }
                }
                Output::Evidence(_) | Output::EpochChange(_) => {}
            }
        }
        res
    }

    fn send(&mut self, node: usize, index: usize, honest: bool, to: &[usize], message: Message) {
        if honest {
            self.signs.record(index, &message);
        }
        if self.record {
            self.sent.push(message.clone());
        }
        for dest in 0..self.nodes.len() {
            if dest == node || !to.contains(&self.nodes[dest].index) {
                continue;
            }
            if self.in_flight.len() >= MAX_IN_FLIGHT {
                self.in_flight.pop_front();
            }
            self.in_flight.push_back(InFlight {
                from: index,
                to: dest,
                message: message.clone(),
            });
        }
    }
}
