//! A deterministic simulator of one chain's [`ChainEngine`]s running the real application.
//!
//! The consensus crate's simulator checks the replica with stand-in applications; this one
//! runs what a node runs — engines over [`ChainApp`](crate::ChainApp)s on their RocksDB
//! stores, real transactions through the mempool, epoch changes with their committees, the
//! following protocol — over a simulated network (seeded delays and losses, partitions) and a
//! simulated clock, with crashes that drop a node's engine and restarts that reopen it from
//! what it wrote. The same seed gives the same schedule of deliveries, faults and load.
//!
//! The host side is the one a node has, in miniature: actions become deliveries after a
//! delay; the gate drops consensus messages from outside the committee (epoch proofs and
//! requests excepted) and block answers nobody asked for; block requests are served from the
//! answering node's store ([`ChainStore::committed_blocks`](crate::ChainStore::committed_blocks)).
//!
//! What a run yields ([`SimOutcome`]): each node's committed height, before and after the
//! global stabilisation time (GST, after which no message is lost and no fault is active),
//! every disagreement between two nodes' committed blocks at one height (a safety
//! violation), and every engine that stopped on an error.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashSet};
use std::time::Instant;

use banyan_consensus::Message;
use banyan_core::ids::{Address, Height, Nonce};
use banyan_core::tx::SignedTx;

use crate::engine::{Action, ChainEngine, EngineInput, EngineSetup, Note, PeerKey};
use crate::mempool::nonce_in;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

/// Most blocks one simulated block answer carries.
pub const SIM_BLOCKS_PER_ANSWER: usize = 64;
/// Most bytes one simulated block answer carries (past its first block).
pub const SIM_ANSWER_BYTES: usize = 8 << 20;

/// The nodes of a simulated chain, as the test builds them.
pub trait SimNodes {
    /// How many nodes.
    fn count(&self) -> usize;
    /// Node `i`'s network key.
    fn peer_key(&self, i: usize) -> PeerKey;
    /// Open node `i` from its storage: at the start, and again after each crash (from what
    /// it wrote). The previous engine of that node has been dropped.
    fn open(&mut self, i: usize) -> Result<EngineSetup, String>;
    /// Transactions clients send at `now_ms` (each live node's mempool is offered all of
    /// them); `next_nonce` tells an account's next nonce as the first live node sees it.
    fn load(
        &mut self,
        now_ms: u64,
        draw: u64,
        next_nonce: &dyn Fn(&Address) -> Nonce,
    ) -> Vec<SignedTx>;
}

/// A node crashed at `at_ms` and restarted from its storage at `restart_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Crash {
    /// The node.
    pub node: usize,
    /// When it crashes.
    pub at_ms: u64,
    /// When it restarts.
    pub restart_ms: u64,
}

/// A node cut off from every other from `from_ms` to `to_ms`.
#[derive(Clone, Copy, Debug)]
pub struct Cut {
    /// The node.
    pub node: usize,
    /// Start.
    pub from_ms: u64,
    /// End.
    pub to_ms: u64,
}

/// One run's schedule.
#[derive(Clone, Debug)]
pub struct SimPlan {
    /// Seeds delays, losses and the load's draws.
    pub seed: u64,
    /// Simulated time the clock starts at (wall-clock milliseconds: blocks carry it).
    pub start_ms: u64,
    /// Simulated milliseconds the run lasts.
    pub duration_ms: u64,
    /// Least one-way delay.
    pub min_delay_ms: u64,
    /// Most one-way delay.
    pub max_delay_ms: u64,
    /// Messages lost per thousand before GST.
    pub loss_per_mille: u64,
    /// Global stabilisation time, from the start: no loss after it; every fault must be over
    /// by then.
    pub gst_ms: u64,
    /// Crashes.
    pub crashes: Vec<Crash>,
    /// Partitions.
    pub cuts: Vec<Cut>,
    /// Client load every this many milliseconds (0: none).
    pub load_every_ms: u64,
    /// Every node gets a tick this often.
    pub tick_ms: u64,
}

/// What one run showed.
#[derive(Clone, Debug, Default)]
pub struct SimOutcome {
    /// Committed height of each node at GST.
    pub height_at_gst: Vec<u64>,
    /// Committed height of each node at the end.
    pub heights: Vec<u64>,
    /// Epoch of each node at the end.
    pub epochs: Vec<u64>,
    /// Two nodes' different blocks at one height: `(height, node a, node b)`.
    pub forks: Vec<(u64, usize, usize)>,
    /// Engines that stopped on an error, with it.
    pub failures: Vec<(usize, String)>,
    /// Messages delivered.
    pub delivered: u64,
    /// Messages lost (loss, partition, a node down).
    pub lost: u64,
    /// Inputs the gate or the engines refused.
    pub refused: u64,
    /// Transactions offered to the mempools.
    pub offered: u64,
    /// Committed transactions (on node 0).
    pub committed_txs: u64,
}

enum Ev {
    Deliver {
        to: usize,
        from: usize,
        input: EngineInput,
    },
    Serve {
        server: usize,
        asker: usize,
        lo: u64,
        hi: u64,
    },
    Crash(usize),
    Restart(usize),
    Load,
    Tick,
}

struct Pending {
    at: u64,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Pending {
    fn eq(&self, o: &Self) -> bool {
        (self.at, self.seq) == (o.at, o.seq)
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Pending {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        (self.at, self.seq).cmp(&(o.at, o.seq))
    }
}

#[derive(Default)]
struct Node {
    engine: Option<ChainEngine>,
    members: HashSet<PeerKey>,
    blocks_from: Option<PeerKey>,
    failed: bool,
}

/// A number below `n` (0 when `n` is 0).
fn below(rng: &mut ChaCha8Rng, n: u64) -> u64 {
    if n == 0 {
        0
    } else {
        rng.gen_range(0..n)
    }
}

/// One simulated run (see the module docs).
pub struct EngineSim<'a, N: SimNodes> {
    nodes_src: &'a mut N,
    plan: SimPlan,
    nodes: Vec<Node>,
    keys: Vec<PeerKey>,
    queue: BinaryHeap<Reverse<Pending>>,
    seq: u64,
    now: u64,
    draw: ChaCha8Rng,
    out: SimOutcome,
}

impl<'a, N: SimNodes> EngineSim<'a, N> {
    /// Prepare a run of `nodes` under `plan`.
    pub fn new(nodes: &'a mut N, plan: SimPlan) -> Self {
        let n = nodes.count();
        let keys = (0..n).map(|i| nodes.peer_key(i)).collect();
        let draw = ChaCha8Rng::seed_from_u64(plan.seed);
        EngineSim {
            nodes_src: nodes,
            now: plan.start_ms,
            plan,
            nodes: (0..n).map(|_| Node::default()).collect(),
            keys,
            queue: BinaryHeap::new(),
            seq: 0,
            draw,
            out: SimOutcome::default(),
        }
    }

    fn push(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.queue.push(Reverse(Pending {
            at,
            seq: self.seq,
            ev,
        }));
    }

    fn elapsed(&self) -> u64 {
        self.now.saturating_sub(self.plan.start_ms)
    }

    fn cut_off(&self, node: usize) -> bool {
        let t = self.elapsed();
        self.plan
            .cuts
            .iter()
            .any(|c| c.node == node && c.from_ms <= t && t < c.to_ms)
    }

    fn index_of(&self, key: &PeerKey) -> Option<usize> {
        self.keys.iter().position(|k| k == key)
    }

    /// Queue `ev` for `to` after a network delay, unless the link loses it.
    fn route(&mut self, from: usize, to: usize, ev: Ev) {
        let down = self.nodes.get(to).is_none_or(|n| n.engine.is_none());
        let lossy = self.elapsed() < self.plan.gst_ms
            && below(&mut self.draw, 1_000) < self.plan.loss_per_mille;
        if down || self.cut_off(from) || self.cut_off(to) || lossy {
            self.out.lost += 1;
            return;
        }
        let spread = self
            .plan
            .max_delay_ms
            .saturating_sub(self.plan.min_delay_ms)
            .saturating_add(1);
        let at = self.now + self.plan.min_delay_ms + below(&mut self.draw, spread);
        self.push(at, ev);
    }

    fn open(&mut self, i: usize) {
        let setup = match self.nodes_src.open(i) {
            Ok(s) => s,
            Err(e) => {
                self.fail(i, format!("cannot open: {e}"));
                return;
            }
        };
        let mut actions = Vec::new();
        match ChainEngine::open(setup, SIM_BLOCKS_PER_ANSWER as u64, self.now, &mut actions) {
            Ok(engine) => {
                self.nodes[i].engine = Some(engine);
                self.carry_out(i, actions);
            }
            Err(e) => self.fail(i, e.to_string()),
        }
    }

    fn fail(&mut self, i: usize, why: String) {
        self.nodes[i].engine = None;
        self.nodes[i].failed = true;
        self.out.failures.push((i, why));
    }

    fn handle(&mut self, i: usize, input: EngineInput) {
        let Some(engine) = self.nodes[i].engine.as_mut() else {
            return;
        };
        let mut actions = Vec::new();
        let r = engine.handle(self.now, input, &mut actions);
        self.carry_out(i, actions);
        if let Err(e) = r {
            self.fail(i, e.to_string());
        }
    }

    fn carry_out(&mut self, i: usize, actions: Vec<Action>) {
        for a in actions {
            match a {
                Action::Send { to, message, .. } => self.send(i, &to, message),
                Action::Broadcast { to, message, .. } => {
                    for peer in &to {
                        self.send(i, peer, message.clone());
                    }
                }
                Action::RequestBlocks { to, lo, hi } => match self.index_of(&to) {
                    Some(j) => self.route(
                        i,
                        j,
                        Ev::Serve {
                            server: j,
                            asker: i,
                            lo,
                            hi,
                        },
                    ),
                    None => {
                        if let Some(e) = self.nodes[i].engine.as_mut() {
                            e.request_failed(&to);
                        }
                    }
                },
                Action::Gossip(txs) => self.offer(&txs, Some(i)),
                Action::Members(peers) => self.nodes[i].members = peers.into_iter().collect(),
                Action::ExpectBlocksFrom(peer) => self.nodes[i].blocks_from = peer,
                Action::Note(Note::Rejected(_)) => self.out.refused += 1,
                Action::Note(_) => {}
            }
        }
    }

    fn send(&mut self, from: usize, to: &PeerKey, message: Message) {
        if let Some(j) = self.index_of(to) {
            let input = EngineInput::Message {
                from: self.keys[from],
                message,
            };
            self.route(from, j, Ev::Deliver { to: j, from, input });
        }
    }

    /// Offer transactions to every live node's mempool but `except`'s.
    fn offer(&mut self, txs: &[SignedTx], except: Option<usize>) {
        for (j, node) in self.nodes.iter().enumerate() {
            if Some(j) == except {
                continue;
            }
            let Some(engine) = node.engine.as_ref() else {
                continue;
            };
            let pool = engine.mempool();
            if let Some(state) = pool.committed_state() {
                pool.insert(txs, Instant::now(), &*state);
            }
        }
    }

    fn deliver(&mut self, to: usize, from: usize, input: EngineInput) {
        let key = self.keys[from];
        let node = &self.nodes[to];
        if node.engine.is_none() {
            self.out.lost += 1;
            return;
        }
        let admitted = match &input {
            EngineInput::Message { message, .. } => {
                matches!(
                    message,
                    Message::EpochProof(_) | Message::EpochProofRequest(_)
                ) || node.members.contains(&key)
            }
            EngineInput::Blocks { .. } => node.blocks_from == Some(key),
            EngineInput::Tick => true,
        };
        if !admitted {
            self.out.refused += 1;
            return;
        }
        self.out.delivered += 1;
        self.handle(to, input);
    }

    fn serve(&mut self, server: usize, asker: usize, lo: u64, hi: u64) {
        let Some(engine) = self.nodes[server].engine.as_ref() else {
            self.out.lost += 1;
            return;
        };
        let blocks =
            match engine
                .store()
                .committed_blocks(lo, hi, SIM_BLOCKS_PER_ANSWER, SIM_ANSWER_BYTES)
            {
                Ok(b) => b,
                Err(e) => {
                    self.fail(server, format!("cannot serve blocks: {e}"));
                    return;
                }
            };
        if blocks.is_empty() {
            return;
        }
        let input = EngineInput::Blocks {
            from: self.keys[server],
            blocks,
        };
        self.route(
            server,
            asker,
            Ev::Deliver {
                to: asker,
                from: server,
                input,
            },
        );
    }

    fn load(&mut self) {
        let first = self.nodes.iter().find_map(|n| n.engine.as_ref());
        let Some(first) = first else {
            return;
        };
        let pool = first.mempool().clone();
        let state = pool.committed_state();
        let next_nonce = |a: &Address| {
            let committed = state.as_ref().map(|s| nonce_in(s, a)).unwrap_or(Nonce(0));
            pool.next_nonce(a, committed)
        };
        let draw: u64 = self.draw.gen();
        let txs = self.nodes_src.load(self.now, draw, &next_nonce);
        self.out.offered += txs.len() as u64;
        self.offer(&txs, None);
    }

    fn height(&self, i: usize) -> Option<u64> {
        let e = self.nodes[i].engine.as_ref()?;
        Some(e.app().lock().committed_tip().height.0)
    }

    /// Run the plan to its end and check what the nodes committed.
    pub fn run(self) -> SimOutcome {
        self.run_keeping_engines().0
    }

    /// [`run`](Self::run), and hand back each node's engine as it ended (`None` for a node
    /// down or failed), for a test to look into their state.
    pub fn run_keeping_engines(mut self) -> (SimOutcome, Vec<Option<ChainEngine>>) {
        let n = self.nodes.len();
        for i in 0..n {
            self.open(i);
        }
        let start = self.plan.start_ms;
        let end = start + self.plan.duration_ms;
        for c in self.plan.crashes.clone() {
            self.push(start + c.at_ms, Ev::Crash(c.node));
            self.push(start + c.restart_ms, Ev::Restart(c.node));
        }
        if self.plan.load_every_ms > 0 {
            self.push(start + self.plan.load_every_ms, Ev::Load);
        }
        self.push(start + self.plan.tick_ms.max(1), Ev::Tick);
        let mut gst_seen = false;
        while let Some(Reverse(p)) = self.queue.pop() {
            if p.at > end {
                break;
            }
            self.now = p.at;
            if !gst_seen && self.elapsed() >= self.plan.gst_ms {
                gst_seen = true;
                self.out.height_at_gst = (0..n).map(|i| self.height(i).unwrap_or(0)).collect();
            }
            match p.ev {
                Ev::Deliver { to, from, input } => self.deliver(to, from, input),
                Ev::Serve {
                    server,
                    asker,
                    lo,
                    hi,
                } => self.serve(server, asker, lo, hi),
                Ev::Crash(i) => {
                    // Dropping the engine drops the node's store handles: what it wrote
                    // stays on disk, what it held in memory is gone.
                    self.nodes[i] = Node::default();
                }
                Ev::Restart(i) => {
                    if self.nodes[i].engine.is_none() && !self.nodes[i].failed {
                        self.open(i);
                    }
                }
                Ev::Load => {
                    self.load();
                    let next = self.now + self.plan.load_every_ms;
                    self.push(next, Ev::Load);
                }
                Ev::Tick => {
                    for i in 0..n {
                        self.handle(i, EngineInput::Tick);
                    }
                    let next = self.now + self.plan.tick_ms.max(1);
                    self.push(next, Ev::Tick);
                }
            }
        }
        if !gst_seen {
            self.out.height_at_gst = (0..n).map(|i| self.height(i).unwrap_or(0)).collect();
        }
        self.finish()
    }

    fn finish(mut self) -> (SimOutcome, Vec<Option<ChainEngine>>) {
        let n = self.nodes.len();
        self.out.heights = (0..n).map(|i| self.height(i).unwrap_or(0)).collect();
        self.out.epochs = (0..n)
            .map(|i| {
                self.nodes[i]
                    .engine
                    .as_ref()
                    .map(|e| e.app().lock().epoch_record().epoch.0)
                    .unwrap_or(0)
            })
            .collect();
        // Safety: every two live nodes hold the same block at every height both committed.
        let mut ids: Vec<Vec<Option<banyan_core::hash::Digest>>> = Vec::with_capacity(n);
        for i in 0..n {
            let mut mine = Vec::new();
            if let Some(e) = self.nodes[i].engine.as_ref() {
                let top = self.out.heights[i];
                for h in 1..=top {
                    let id = e
                        .store()
                        .block_by_height(Height(h))
                        .ok()
                        .flatten()
                        .map(|b| b.header.id());
                    mine.push(id);
                }
            }
            ids.push(mine);
        }
        for a in 0..n {
            for b in (a + 1)..n {
                for (h, (x, y)) in ids[a].iter().zip(&ids[b]).enumerate() {
                    if x != y {
                        self.out.forks.push((h as u64 + 1, a, b));
                    }
                }
            }
        }
        if let Some(e) = self.nodes.first().and_then(|n| n.engine.as_ref()) {
            let top = self.out.heights.first().copied().unwrap_or(0);
            self.out.committed_txs = (1..=top)
                .filter_map(|h| e.store().block_by_height(Height(h)).ok().flatten())
                .map(|b| b.txs.len() as u64)
                .sum();
        }
        let engines = self.nodes.into_iter().map(|n| n.engine).collect();
        (self.out, engines)
    }
}
