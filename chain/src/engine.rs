//! The chain engine: one chain instance's protocol around its consensus replica, sans-I/O.
//!
//! [`ChainEngine`] owns the epoch lifecycle (a [`Replica`] per epoch in which this validator
//! sits in the committee, booted from the application's epoch record), following and
//! catching up (how a node outside the committee, or one stalled in an epoch the others
//! have left, learns how the epoch ended and fetches its blocks), stall detection, the vote
//! log and the reporting of equivocation. It does no I/O of its own: it is given the time
//! and what arrived ([`ChainEngine::handle`]), and answers with [`Action`]s — messages to
//! send, blocks to ask for, transactions to gossip, who may queue what — that its host
//! carries out over whatever transport it has. Storage is the chain's [`ChainStore`] and the
//! application is the chain's [`ChainApp`], the same in a node and in a test.
//!
//! # Following
//!
//! A node outside the current committee follows the chain: it asks peers, in turn, for the
//! proof that its epoch ended and checks it against the committee it knows (any peer may
//! send it: the proof carries its own authority). It then fetches the committed blocks
//! **backwards** from the proven ending block, from its peers in turn: each block must hash
//! to the id its child names (the first to the proven id) and its transactions must hash to
//! its header's `tx_root`, so every block is checked as it arrives and a peer that sends a bad
//! one, or stays silent, is benched and the next one asked. Once the blocks reach the
//! committed tip they are re-executed and committed in order (the application checks every
//! state root), and the node moves to the next epoch, taking part in consensus if it is in
//! the committee. A member that has committed nothing for [`STALL_MS`] asks the same
//! question, in case it is the last one still in an epoch the others have left.
//!
//! # Time
//!
//! Every input carries `now_ms`, the host's clock in milliseconds; the engine reads no clock.
//! The same value drives the replica's timers and stamps the blocks it proposes (consensus
//! checks that timestamps increase and are not too far ahead of its own clock), so it must
//! be close to wall time and must never jump: the node passes the wall time read once at the
//! instance's start plus the monotonic time elapsed since; the simulator its simulated time.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use banyan_consensus::{
    ConsensusError, Environment, EpochChangeProof, Evidence, Input, Message, Output, Replica,
    ReplicaConfig, SignatureVerifier, VrfLeaders,
};
use banyan_core::certificate::Committee;
use banyan_core::codec::encoded_len;
use banyan_core::hash::Digest;
use banyan_core::header::{Block, BlockHeader};
use banyan_core::ids::{ChainId, ValidatorId};
use banyan_core::keys::{AccountSecretKey, BlsSecretKey};
use banyan_core::tx::{SignedTx, TxBody, TxKind};

use crate::app::SharedChainApp;
use crate::error::ChainError;
use crate::mempool::{nonce_in, Mempool};
use crate::storage::ChainStore;

/// A peer's network key (the ed25519 key its transport authenticates).
pub type PeerKey = [u8; 32];

/// A member that has committed nothing for this long asks peers whether its epoch ended.
pub const STALL_MS: u64 = 5_000;
/// A follower asks again after this long without progress.
pub const FOLLOW_RETRY_MS: u64 = 1_000;
/// Most blocks a follower holds before applying them (an epoch longer than this cannot be
/// followed; `epoch_length` is far below it in practice). Every block held was checked
/// against the proven chain first.
pub const MAX_FOLLOW_BLOCKS: usize = 100_000;
/// Most bytes of blocks a follower holds before applying them.
pub const MAX_FOLLOW_BYTES: usize = 1 << 30;
/// A peer that sent a bad block or let a request time out is not asked again for this long.
pub const FOLLOW_BENCH_MS: u64 = 30_000;

/// A known peer: its network key and the validator key its binding proved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its network key.
    pub network_key: PeerKey,
    /// The id of its validator (BLS) key.
    pub validator: ValidatorId,
}

/// Which of the host's lanes a message goes on: consensus traffic, or bulk sync (answers
/// that carry blocks or proofs), so that one never waits behind the other.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lane {
    /// Proposals, votes, timeouts, requests.
    Consensus,
    /// Sync answers and epoch proofs.
    Sync,
}

/// Something the engine counts, for the host's metrics (each a bounded label).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Note {
    /// An input dropped, with why (a consensus error kind, `NotInCommittee`, or
    /// `FollowPeerBenched`).
    Rejected(String),
    /// Equivocation detected.
    Evidence,
    /// A report of equivocation was admitted and gossiped.
    EvidenceReported,
    /// The engine entered this epoch.
    Epoch(u64),
}

/// What the engine asks its host to do.
#[derive(Clone, Debug)]
pub enum Action {
    /// Send `message` to the peer with this network key (best effort: the protocol
    /// retransmits what matters).
    Send {
        /// The peer.
        to: PeerKey,
        /// The lane.
        lane: Lane,
        /// The message.
        message: Message,
    },
    /// Send one `message` to each of these peers (encoded once).
    Broadcast {
        /// The peers.
        to: Vec<PeerKey>,
        /// The lane.
        lane: Lane,
        /// The message.
        message: Message,
    },
    /// Ask the peer for the committed blocks at heights `lo ..= hi`; if the request cannot be
    /// sent, tell the engine ([`ChainEngine::request_failed`]).
    RequestBlocks {
        /// The peer.
        to: PeerKey,
        /// Lowest height.
        lo: u64,
        /// Highest height.
        hi: u64,
    },
    /// Gossip transactions this node made (equivocation reports) to every peer.
    Gossip(Vec<SignedTx>),
    /// From now on only these peers may queue consensus messages for this chain (the
    /// current committee's), apart from the epoch proofs and requests anyone may send.
    Members(Vec<PeerKey>),
    /// From now on queue block frames only from this peer (the one asked), or from nobody.
    ExpectBlocksFrom(Option<PeerKey>),
    /// Count this.
    Note(Note),
}

/// What reaches the engine.
#[derive(Debug)]
pub enum EngineInput {
    /// A consensus message from the peer with this network key.
    Message {
        /// Sender.
        from: PeerKey,
        /// The message.
        message: Message,
    },
    /// Committed blocks from a peer, in height order, answering a [`Action::RequestBlocks`].
    Blocks {
        /// Sender.
        from: PeerKey,
        /// The blocks.
        blocks: Vec<Block>,
    },
    /// Time passed: fire the replica's timer if it is due, and retry following or stall
    /// questions whose time has come.
    Tick,
}

/// Why the engine stopped. Every variant is final: the chain instance stops rather than
/// diverge, and the message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// Consensus hit a fatal error (storage, a broken application).
    #[error(
        "consensus cannot continue: {0}; the node stops so it cannot diverge (check the disk, \
         then restart)"
    )]
    Consensus(ConsensusError),
    /// The chain's storage failed.
    #[error("{what}: {source}")]
    Storage {
        /// What was being done.
        what: &'static str,
        /// The error.
        source: ChainError,
    },
    /// This node's chain differs from the certified chain.
    #[error("{0}")]
    Diverged(String),
    /// The epoch's replica could not be started.
    #[error("cannot start consensus for epoch {epoch}: {why}")]
    Boot {
        /// The epoch.
        epoch: u64,
        /// Why.
        why: String,
    },
}

fn storage(what: &'static str) -> impl FnOnce(ChainError) -> EngineError {
    move |source| EngineError::Storage { what, source }
}

/// Makes the signature verifier each epoch's replica uses (the host may wrap one that times
/// its checks).
pub type VerifierFactory = Box<dyn Fn() -> Box<dyn SignatureVerifier> + Send>;

/// Everything an engine is built from.
pub struct EngineSetup {
    /// The chain's application (opened on `store`).
    pub app: SharedChainApp,
    /// The chain's storage.
    pub store: ChainStore,
    /// The chain's mempool (the one `app` proposes from).
    pub mempool: Arc<Mempool>,
    /// This validator's BLS key.
    pub key: BlsSecretKey,
    /// This validator's account key: it signs the equivocation reports the engine makes
    /// (and pays their fees).
    pub reporter: AccountSecretKey,
    /// Known peers.
    pub peers: Vec<Peer>,
    /// Consensus configuration (its chain and epoch are set per epoch).
    pub replica: ReplicaConfig,
    /// Signature verifiers for the replicas.
    pub verifier: VerifierFactory,
}

/// Peers of the current committee, both ways.
#[derive(Default)]
struct PeerMap {
    by_index: Vec<Option<PeerKey>>,
    by_key: HashMap<PeerKey, usize>,
}

impl PeerMap {
    fn new(committee: &Committee, peers: &[Peer]) -> Self {
        let mut map = PeerMap::default();
        for i in 0..committee.len() {
            let id = committee
                .members()
                .get(i)
                .map(|m| m.key.key().validator_id());
            let peer = peers
                .iter()
                .find(|p| Some(p.validator) == id)
                .map(|p| p.network_key);
            if let Some(k) = peer {
                map.by_key.insert(k, i);
            }
            map.by_index.push(peer);
        }
        map
    }
}

/// Following state (see the module docs).
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
    target: Option<(EpochChangeProof, BlockHeader)>,
    /// Blocks fetched and checked so far, from the proven ending block downwards.
    blocks: Vec<Block>,
    /// Their encoded size.
    bytes: usize,
    /// Peers that sent a bad block or did not answer, benched until this time (ms).
    benched: HashMap<PeerKey, u64>,
}

/// One chain instance's protocol (see the module docs).
pub struct ChainEngine {
    chain: ChainId,
    app: SharedChainApp,
    store: ChainStore,
    mempool: Arc<Mempool>,
    key: BlsSecretKey,
    reporter: AccountSecretKey,
    /// Validators whose equivocation this node reported in the current epoch: one report
    /// per offender and epoch (it jails the key; further offences may be reported by hand),
    /// so a member that equivocates every round costs one state scan, not one per round.
    reported: HashSet<ValidatorId>,
    peers: Vec<Peer>,
    cfg: ReplicaConfig,
    verifier: VerifierFactory,
    replica: Option<Replica>,
    committee: Option<Committee>,
    peer_map: PeerMap,
    me: Option<usize>,
    deadline_ms: u64,
    views_dirty: bool,
    follow: Follow,
    /// Committed height last seen, and when it last changed.
    progress: (u64, u64),
    /// Most blocks one block request asks for.
    max_blocks_per_request: u64,
}

/// A copy of the BLS key for the next epoch's replica (the type is deliberately not Clone).
fn clone_key(key: &BlsSecretKey) -> Result<BlsSecretKey, EngineError> {
    BlsSecretKey::from_bytes(&*key.to_bytes()).map_err(|e| EngineError::Boot {
        epoch: 0,
        why: format!("BLS key copy: {e}"),
    })
}

impl ChainEngine {
    /// Build the engine and boot the epoch the application is in. `max_blocks_per_request`
    /// bounds a block request (the host's frame limit decides it).
    pub fn open(
        setup: EngineSetup,
        max_blocks_per_request: u64,
        now_ms: u64,
        out: &mut Vec<Action>,
    ) -> Result<Self, EngineError> {
        let (chain, tip) = {
            let app = setup.app.lock();
            (app.params().chain, app.committed_tip().height.0)
        };
        let mut engine = ChainEngine {
            chain,
            app: setup.app,
            store: setup.store,
            mempool: setup.mempool,
            key: setup.key,
            reporter: setup.reporter,
            reported: HashSet::new(),
            peers: setup.peers,
            cfg: setup.replica,
            verifier: setup.verifier,
            replica: None,
            committee: None,
            peer_map: PeerMap::default(),
            me: None,
            deadline_ms: 0,
            views_dirty: true,
            follow: Follow::default(),
            progress: (tip, now_ms),
            max_blocks_per_request: max_blocks_per_request.max(1),
        };
        engine.boot_epoch(now_ms, Vec::new(), out)?;
        Ok(engine)
    }

    /// The chain.
    pub fn chain(&self) -> ChainId {
        self.chain
    }

    /// The application.
    pub fn app(&self) -> &SharedChainApp {
        &self.app
    }

    /// The chain's storage.
    pub fn store(&self) -> &ChainStore {
        &self.store
    }

    /// The chain's mempool.
    pub fn mempool(&self) -> &Arc<Mempool> {
        &self.mempool
    }

    /// The current committee.
    pub fn committee(&self) -> Option<&Committee> {
        self.committee.as_ref()
    }

    /// This validator's index in the current committee.
    pub fn committee_index(&self) -> Option<usize> {
        self.me
    }

    /// The replica's round (0 outside the committee).
    pub fn round(&self) -> u64 {
        self.replica
            .as_ref()
            .map(|r| r.status().round.0)
            .unwrap_or(0)
    }

    /// Whether this node takes part in consensus now.
    pub fn is_member(&self) -> bool {
        self.replica.is_some()
    }

    /// When the engine next wants a [`EngineInput::Tick`], at the latest: the replica's
    /// deadline, or within a second when it follows.
    pub fn next_tick_ms(&self, now_ms: u64) -> u64 {
        if self.replica.is_some() {
            self.deadline_ms
                .clamp(now_ms.saturating_add(1), now_ms.saturating_add(1_000))
        } else {
            now_ms.saturating_add(1_000)
        }
    }

    /// Whether the committee or the validator registry may have changed since the last call
    /// (an epoch change, or a committed stake change): views built from them are stale.
    pub fn take_views_dirty(&mut self) -> bool {
        std::mem::take(&mut self.views_dirty)
    }

    /// Handle one input at `now_ms`.
    pub fn handle(
        &mut self,
        now_ms: u64,
        input: EngineInput,
        out: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
        match input {
            EngineInput::Message { from, message } => self.on_message(now_ms, from, message, out),
            EngineInput::Blocks { from, blocks } => self.on_blocks(now_ms, from, blocks, out),
            EngineInput::Tick => self.tick(now_ms, out),
        }
    }

    /// Blocks up to `height` committed at `now_ms` (the stall detector's clock).
    fn note_progress(&mut self, now_ms: u64, height: u64) {
        if height > self.progress.0 {
            self.progress = (height, now_ms);
        }
    }

    /// The block request to `peer` could not be sent: ask another one at the next tick.
    pub fn request_failed(&mut self, peer: &PeerKey) {
        if self.follow.asked.as_ref() == Some(peer) {
            self.follow.asked = None;
        }
    }

    fn tick(&mut self, now_ms: u64, out: &mut Vec<Action>) -> Result<(), EngineError> {
        if self.replica.is_some() && now_ms >= self.deadline_ms {
            self.step(now_ms, Input::Timer, out)?;
        }
        if self.replica.is_none() {
            self.follow_tick(now_ms, out);
        } else {
            self.stall_tick(now_ms, out);
        }
        Ok(())
    }

    /// Start the replica of the epoch the application is in, then feed it `early` messages
    /// (by sender key: committee indices change between epochs, and a replica refuses a vote
    /// or timeout whose signer index is not its sender's).
    fn boot_epoch(
        &mut self,
        now_ms: u64,
        early: Vec<(PeerKey, Message)>,
        out: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
        let record = self.app.lock().epoch_record();
        let epoch = record.epoch.0;
        let committee = record.committee().map_err(|e| EngineError::Boot {
            epoch,
            why: e.to_string(),
        })?;
        let me_id = self.key.public_key().validator_id();
        let me = (0..committee.len()).find(|&i| {
            committee
                .members()
                .get(i)
                .is_some_and(|m| m.key.key().validator_id() == me_id)
        });
        self.peer_map = PeerMap::new(&committee, &self.peers);
        out.push(Action::Members(
            self.peer_map.by_key.keys().copied().collect(),
        ));
        self.me = me;
        self.views_dirty = true;
        self.reported.clear();
        out.push(Action::Note(Note::Epoch(epoch)));
        let Some(me) = me else {
            tracing::warn!(
                chain = self.chain.0,
                epoch,
                "this validator is not in the committee of epoch {epoch}; it serves queries but \
                 does not take part in consensus until it is"
            );
            self.committee = Some(committee);
            self.replica = None;
            return Ok(());
        };
        let base = self
            .store
            .block_by_id(&record.base)
            .map_err(storage("cannot read the block the epoch starts from"))?
            .ok_or_else(|| EngineError::Boot {
                epoch,
                why: "the block the epoch starts from is missing".into(),
            })?;
        let env = Environment {
            app: Box::new(self.app.clone()),
            leaders: Box::new(VrfLeaders::new(self.chain, record.seed, &committee)),
            verifier: (self.verifier)(),
            safety_storage: Box::new(self.store.clone()),
            blocks: Box::new(self.store.clone()),
        };
        let cfg = ReplicaConfig {
            chain: self.chain,
            epoch: record.epoch,
            ..self.cfg.clone()
        };
        let mut replica =
            Replica::new(cfg, committee.clone(), me, clone_key(&self.key)?, base, env).map_err(
                |e| EngineError::Boot {
                    epoch,
                    why: e.to_string(),
                },
            )?;
        if let Some(p) = record.proof.clone() {
            replica = replica.with_entry_proof(p);
        }
        self.committee = Some(committee);
        let mut outputs = Vec::new();
        let res = replica.start(now_ms, &mut outputs);
        self.replica = Some(replica);
        self.after(now_ms, outputs, res, out)?;
        for (key, m) in early {
            if let Some(&from) = self.peer_map.by_key.get(&key) {
                self.step(now_ms, Input::Message { from, message: m }, out)?;
            }
        }
        Ok(())
    }

    fn on_message(
        &mut self,
        now_ms: u64,
        from: PeerKey,
        message: Message,
        out: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
        if let Message::EpochProofRequest(e) = &message {
            // Served from the archive, whatever epoch this node is in now.
            if let Some(p) = self
                .store
                .epoch_proof(*e)
                .map_err(storage("cannot read the epoch proof archive"))?
            {
                send(out, from, Message::EpochProof(Box::new(p)));
            }
            return Ok(());
        }
        // Outside the committee, or stalled in an epoch the others have left: a proof that
        // the epoch ended switches to following (the blocks come from any peer, member or not).
        let stalled = now_ms.saturating_sub(self.progress.1) >= STALL_MS;
        if self.replica.is_none() || stalled {
            if let Message::EpochProof(p) = message {
                return self.on_follow_proof(now_ms, from, *p, out);
            }
            if self.replica.is_none() {
                return Ok(());
            }
        }
        let Some(&index) = self.peer_map.by_key.get(&from) else {
            out.push(Action::Note(Note::Rejected("NotInCommittee".into())));
            return Ok(());
        };
        self.step(
            now_ms,
            Input::Message {
                from: index,
                message,
            },
            out,
        )
    }

    /// Outside the committee: ask how the current epoch ended, or for the blocks still
    /// missing, when nothing came for a while (benching a peer that let a block request time
    /// out).
    fn follow_tick(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        if now_ms.saturating_sub(self.follow.asked_ms) < FOLLOW_RETRY_MS || self.peers.is_empty() {
            return;
        }
        if let Some(silent) = self.follow.asked.take() {
            self.bench(
                now_ms,
                silent,
                "did not answer a block request in time",
                out,
            );
        }
        self.follow.asked_ms = now_ms;
        if self.follow.target.is_some() {
            self.request_followed_blocks(now_ms, out);
            return;
        }
        self.ask_next_peer_how_epoch_ended(out);
    }

    /// Report equivocation this node detected: one `ReportEquivocation` /
    /// `ReportProposalEquivocation` transaction per account whose stake backs the offender's
    /// key, signed by this validator's account, admitted to its own mempool and gossiped. A
    /// report that cannot be sent (the account cannot pay, its nonce is taken) is logged with
    /// what to do; the evidence stays in the log for `banyan validator report-equivocation`.
    fn report_evidence(&mut self, evidence: &Evidence, out: &mut Vec<Action>) {
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
        for offender in crate::evidence::accounts_of_key(&state, key.as_bytes()) {
            let Some(kind) = crate::evidence::report_of(evidence, committee, offender) else {
                continue;
            };
            let nonce = self
                .mempool
                .next_nonce(&me.address(), nonce_in(&state, &me.address()));
            let tx = TxBody {
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
                    out.push(Action::Gossip(vec![tx]));
                    out.push(Action::Note(Note::EvidenceReported));
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
    fn bench(&mut self, now_ms: u64, peer: PeerKey, why: &str, out: &mut Vec<Action>) {
        tracing::warn!(
            chain = self.chain.0,
            peer = %hex_prefix(&peer),
            "following: {why}; asking other peers for {} s",
            FOLLOW_BENCH_MS / 1_000
        );
        out.push(Action::Note(Note::Rejected("FollowPeerBenched".into())));
        self.follow
            .benched
            .insert(peer, now_ms.saturating_add(FOLLOW_BENCH_MS));
    }

    /// The next configured peer in turn that is not benched (all benched: the next in turn).
    fn next_follow_peer(&mut self, now_ms: u64) -> Option<PeerKey> {
        let n = self.peers.len();
        if n == 0 {
            return None;
        }
        self.follow.benched.retain(|_, until| *until > now_ms);
        let mut fallback = None;
        for _ in 0..n {
            let key = self.peers[self.follow.next_peer % n].network_key;
            self.follow.next_peer = self.follow.next_peer.wrapping_add(1);
            if !self.follow.benched.contains_key(&key) {
                return Some(key);
            }
            fallback.get_or_insert(key);
        }
        fallback
    }

    /// Ask the next peer for the highest blocks still missing below those held.
    fn request_followed_blocks(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        let Some((want, _)) = self.follow_wanted() else {
            return;
        };
        let tip = self.app.lock().committed_tip().height.0;
        let span = self.follow.span.clamp(1, self.max_blocks_per_request);
        let lo = want.saturating_sub(span - 1).max(tip.saturating_add(1));
        let Some(peer) = self.next_follow_peer(now_ms) else {
            return;
        };
        self.follow.asked = Some(peer);
        self.follow.asked_ms = now_ms;
        out.push(Action::ExpectBlocksFrom(Some(peer)));
        out.push(Action::RequestBlocks {
            to: peer,
            lo,
            hi: want,
        });
    }

    /// The height and id of the next block wanted (downwards from the proven ending block),
    /// or `None` when the held blocks reach the committed tip.
    fn follow_wanted(&self) -> Option<(u64, Digest)> {
        let (_, ending) = self.follow.target.as_ref()?;
        let tip = self.app.lock().committed_tip();
        let (h, id) = match self.follow.blocks.last() {
            None => (ending.height.0, ending.id()),
            Some(b) => (b.header.height.0.saturating_sub(1), b.header.parent),
        };
        (h > tip.height.0).then_some((h, id))
    }

    /// A member that commits nothing for [`STALL_MS`] may be the last one still in an epoch
    /// the others have left (it missed the commit of its end, and nobody sends to it any
    /// more): ask peers in turn how the epoch ended; the replica checks the answer.
    fn stall_tick(&mut self, now_ms: u64, out: &mut Vec<Action>) {
        if now_ms.saturating_sub(self.progress.1) < STALL_MS
            || now_ms.saturating_sub(self.follow.asked_ms) < FOLLOW_RETRY_MS
            || self.peers.is_empty()
        {
            return;
        }
        self.follow.asked_ms = now_ms;
        self.ask_next_peer_how_epoch_ended(out);
    }

    /// Ask the next configured peer, in turn, for the proof that the current epoch ended.
    fn ask_next_peer_how_epoch_ended(&mut self, out: &mut Vec<Action>) {
        let Some(peer) = self
            .peers
            .get(self.follow.next_peer % self.peers.len().max(1))
        else {
            return;
        };
        let key = peer.network_key;
        self.follow.next_peer = self.follow.next_peer.wrapping_add(1);
        let epoch = self.app.lock().committee().epoch();
        send(out, key, Message::EpochProofRequest(epoch));
    }

    /// A proof that the current epoch ended, received while following.
    fn on_follow_proof(
        &mut self,
        now_ms: u64,
        from: PeerKey,
        proof: EpochChangeProof,
        out: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
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
        if !banyan_consensus::Application::ends_epoch(&*self.app.lock(), &ending) {
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
        self.follow.span = self.max_blocks_per_request;
        if let Some(i) = self.peers.iter().position(|p| p.network_key == from) {
            self.follow.next_peer = i;
        }
        self.follow.asked = None;
        self.follow.asked_ms = 0;
        self.follow_tick(now_ms, out);
        Ok(())
    }

    /// Committed blocks received while following, from the peer asked: each must be the
    /// next one wanted downwards (its id the one its child names, its transactions hashing to
    /// its `tx_root`). A bad block benches the peer and drops the rest of its answer; once the
    /// held blocks reach the committed tip they are applied.
    fn on_blocks(
        &mut self,
        now_ms: u64,
        from: PeerKey,
        blocks: Vec<Block>,
        out: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
        if self.follow.asked != Some(from) || self.replica.is_some() {
            return Ok(());
        }
        self.follow.asked = None;
        out.push(Action::ExpectBlocksFrom(None));
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
                self.bench(
                    now_ms,
                    from,
                    "sent a block that is not on the proven chain",
                    out,
                );
                break;
            }
            if Block::compute_tx_root(&b.txs) != b.header.tx_root {
                self.bench(
                    now_ms,
                    from,
                    "sent a block whose transactions do not match its header",
                    out,
                );
                break;
            }
            let size = encoded_len(&b);
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
            self.follow_tick(now_ms, out);
            return Ok(());
        }
        self.apply_followed(now_ms, out)
    }

    /// Apply the followed blocks, all checked against the proven chain, from the committed
    /// tip up.
    fn apply_followed(&mut self, now_ms: u64, out: &mut Vec<Action>) -> Result<(), EngineError> {
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
            return Err(EngineError::Diverged(format!(
                "the certified chain of epoch {} does not extend this node's committed block \
                 at height {}: this node's chain differs from the network's; resync it with a \
                 new data dir",
                proof.epoch().0,
                tip.height.0
            )));
        }
        let mut parent = self
            .store
            .block_by_id(&tip.id)
            .map_err(storage("cannot read the committed tip block"))?
            .ok_or_else(|| {
                EngineError::Diverged(
                    "the committed tip block is missing from storage; resync this node with a \
                     new data dir"
                        .into(),
                )
            })?;
        for b in blocks {
            // Every block here hash-links to the certified ending block and its body matches
            // its header, so a failure is this node's own state differing from the chain's.
            if let Err(e) = banyan_consensus::Application::verify(&mut self.app, &parent, &b) {
                return Err(EngineError::Diverged(format!(
                    "block {} of the certified chain does not re-execute to its state root \
                     ({e}); this node's state differs from the chain: resync it with a new \
                     data dir",
                    b.header.height.0
                )));
            }
            banyan_consensus::Application::commit(&mut self.app, &b).map_err(|e| {
                EngineError::Diverged(format!(
                    "storage failed while following: {e}; check the disk, then restart"
                ))
            })?;
            parent = b;
        }
        self.note_progress(now_ms, ending.height.0);
        let mut blocks_store = self.store.clone();
        banyan_consensus::BlockStore::set_committed(&mut blocks_store, ending.id())
            .map_err(|e| EngineError::Consensus(ConsensusError::from(e)))?;
        self.store
            .put_epoch_proof(proof.epoch(), &proof)
            .map_err(storage("cannot archive the epoch proof"))?;
        tracing::info!(
            chain = self.chain.0,
            "followed epoch {} to height {}",
            proof.epoch().0,
            ending.height.0
        );
        self.boot_epoch(now_ms, Vec::new(), out)
    }

    fn step(
        &mut self,
        now_ms: u64,
        input: Input,
        out: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
        let Some(replica) = self.replica.as_mut() else {
            return Ok(());
        };
        let mut outputs = Vec::new();
        let res = replica.handle(now_ms, input, &mut outputs);
        self.after(now_ms, outputs, res, out)
    }

    fn after(
        &mut self,
        now_ms: u64,
        outputs: Vec<Output>,
        res: Result<(), ConsensusError>,
        out: &mut Vec<Action>,
    ) -> Result<(), EngineError> {
        if let Err(e) = res {
            if e.is_fatal() {
                return Err(EngineError::Consensus(e));
            }
            out.push(Action::Note(Note::Rejected(e.kind())));
            tracing::debug!(chain = self.chain.0, "dropped a consensus input: {e}");
        }
        for o in outputs {
            match o {
                Output::Send { to, message } => {
                    self.log_vote(&message)?;
                    self.send_to_index(to, message, out);
                }
                Output::Broadcast(message) => {
                    self.log_vote(&message)?;
                    let to: Vec<PeerKey> = self
                        .peer_map
                        .by_index
                        .iter()
                        .enumerate()
                        .filter(|(i, _)| Some(*i) != self.me)
                        .filter_map(|(_, k)| *k)
                        .collect();
                    out.push(Action::Broadcast {
                        to,
                        lane: lane_of(&message),
                        message,
                    });
                }
                Output::SetTimer { deadline_ms } => self.deadline_ms = deadline_ms,
                Output::Commit { blocks, certified } => {
                    if let Some(last) = blocks.last() {
                        self.note_progress(now_ms, last.header.height.0);
                    }
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
                                TxKind::Stake { .. }
                                    | TxKind::Unstake { .. }
                                    | TxKind::ReportEquivocation { .. }
                                    | TxKind::ReportProposalEquivocation { .. }
                            )
                        })
                    });
                    self.views_dirty |= stake_change;
                }
                Output::Evidence(e) => {
                    out.push(Action::Note(Note::Evidence));
                    tracing::warn!(
                        chain = self.chain.0,
                        offender = e.offender(),
                        "equivocation detected: committee member {} signed two conflicting \
                         messages",
                        e.offender()
                    );
                    self.report_evidence(&e, out);
                }
                Output::EpochChange(proof) => {
                    let epoch = proof.epoch();
                    self.store
                        .put_epoch_proof(epoch, &proof)
                        .map_err(storage("cannot archive the epoch proof"))?;
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
                    return self.boot_epoch(now_ms, early, out);
                }
            }
        }
        Ok(())
    }

    /// Record a vote this node signed before it leaves (see [`ChainStore::log_vote`]).
    fn log_vote(&self, message: &Message) -> Result<(), EngineError> {
        if let Message::Vote(v) = message {
            if Some(v.signer as usize) == self.me {
                self.store
                    .log_vote(v.data.epoch, v.data.round, &v.data.block)
                    .map_err(storage("cannot write the vote log"))?;
            }
        }
        Ok(())
    }

    fn send_to_index(&self, to: usize, message: Message, out: &mut Vec<Action>) {
        if let Some(Some(key)) = self.peer_map.by_index.get(to) {
            send(out, *key, message);
        }
    }
}

/// Queue `message` for `to` on the lane its kind goes on.
fn send(out: &mut Vec<Action>, to: PeerKey, message: Message) {
    out.push(Action::Send {
        to,
        lane: lane_of(&message),
        message,
    });
}

/// Sync answers and epoch proofs go on the sync lane, the rest on the consensus lane.
fn lane_of(message: &Message) -> Lane {
    match message {
        Message::SyncResponse(_) | Message::EpochProof(_) => Lane::Sync,
        _ => Lane::Consensus,
    }
}

/// A short printable prefix of a peer key, for logs.
fn hex_prefix(key: &PeerKey) -> String {
    key[..4].iter().map(|b| format!("{b:02x}")).collect()
}
