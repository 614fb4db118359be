//! The replica: a sans-I/O state machine. Feed it messages and timer expiries with the current
//! time; it returns what to send, when to wake it, what committed and what evidence it found.

use banyan_core::certificate::{Committee, QuorumCertificate};
use banyan_core::codec::{self, BoundedVec};
use banyan_core::hash::Digest;
use banyan_core::header::{Block, BlockHeader, CertifiedHeader};
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::{BlsSecretKey, BlsSignature, BLS_SIG_DST};
use std::collections::{BTreeMap, HashMap, HashSet};

use crate::aggregate::{aggregate_optimistic, aggregate_verify_each, verify_tc, TimeoutCollector};
use crate::app::{Application, Payload};
use crate::crypto::SignatureVerifier;
use crate::error::ConsensusError;
use crate::leader::LeaderElection;
use crate::safety::{SafetyData, SafetyRules, SafetyStorage};
use crate::store::BlockStore;
use crate::types::{
    proposal_message, qc_round, vote_data, EpochChangeProof, Evidence, Message, Millis, Proposal,
    ProposalStub, SyncRequest, SyncResponse, Timeout, TimeoutCertificate, TimeoutData, Vote,
    DEFAULT_SYNC_RESPONSE_BYTES, MAX_SYNC_BLOCKS,
};

/// How the leader turns votes into a QC.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AggregationMode {
    /// Aggregate unchecked, verify the aggregate once, search for bad votes only on failure.
    Optimistic,
    /// Verify every vote on arrival (the reference).
    VerifyEach,
}

/// Tunables, each with its unit.
#[derive(Clone, Debug)]
pub struct ReplicaConfig {
    /// The chain ordered.
    pub chain: ChainId,
    /// The epoch run.
    pub epoch: Epoch,
    /// Round timeout after a round entered by a QC.
    pub base_timeout_ms: Millis,
    /// Each consecutive round entered by a TC multiplies the round timeout by this many
    /// percent (Aptos uses 120–150).
    pub timeout_backoff_percent: u64,
    /// Upper bound of the round timeout.
    pub max_timeout_ms: Millis,
    /// Proposals stamped more than this ahead of local time are refused.
    pub max_clock_drift_ms: Millis,
    /// Votes and timeouts are buffered at most this many rounds ahead.
    pub max_round_lookahead: u64,
    /// A sync request for one block is not repeated sooner than this.
    pub sync_retry_ms: Millis,
    /// Vote aggregation.
    pub aggregation: AggregationMode,
    /// A leader proposes no sooner than this after its parent's timestamp (0: at once). It
    /// paces an idle chain instead of committing empty blocks as fast as the network allows;
    /// keep it well below `base_timeout_ms`.
    pub min_block_interval_ms: Millis,
    /// Sync requests served per member per second (each answer carries up to
    /// [`MAX_SYNC_BLOCKS`] blocks); requests over the budget are dropped. A member catching up
    /// needs one request per [`MAX_SYNC_BLOCKS`] blocks.
    pub max_sync_responses_per_sec: u64,
    /// Encoded bytes of blocks one sync answer may carry (it always carries at least one
    /// block): keep it below the transport's frame limit, or big blocks cannot be fetched at
    /// all. The asker asks again from where an answer stopped.
    pub max_sync_response_bytes: usize,
}

impl Default for ReplicaConfig {
    fn default() -> Self {
        ReplicaConfig {
            chain: ChainId::MAIN,
            epoch: Epoch(0),
            base_timeout_ms: 1_000,
            timeout_backoff_percent: 120,
            max_timeout_ms: 6_000,
            max_clock_drift_ms: 500,
            max_round_lookahead: 100,
            sync_retry_ms: 200,
            aggregation: AggregationMode::Optimistic,
            min_block_interval_ms: 0,
            max_sync_responses_per_sec: 20,
            max_sync_response_bytes: DEFAULT_SYNC_RESPONSE_BYTES,
        }
    }
}

/// Most proposals buffered while their ancestors are fetched.
pub const MAX_PENDING_PROPOSALS: usize = 16;
/// Most messages of the next epoch kept while this one ends.
pub const MAX_NEXT_EPOCH_MESSAGES: usize = 256;
/// Most bytes of messages of the next epoch kept while this one ends (unverified until the
/// next epoch's replica sees them, so bounded in bytes as well as in count).
pub const MAX_NEXT_EPOCH_BYTES: usize = 32 << 20;
/// Most block ids being fetched at once.
pub const MAX_SYNC_WANTED: usize = 4_096;

/// What the driver feeds the replica.
#[derive(Clone, Debug)]
pub enum Input {
    /// A message from committee member `from` (authenticated by the transport).
    Message {
        /// The sender's committee index.
        from: usize,
        /// The message.
        message: Message,
    },
    /// A timer set with [`Output::SetTimer`] expired (early or repeated expiries are harmless).
    Timer,
}

/// What the replica asks the driver to do, in order. Every signed message in here was made
/// after the safety data allowing it was durably stored.
#[derive(Clone, Debug)]
pub enum Output {
    /// Send to one member.
    Send {
        /// Committee index.
        to: usize,
        /// The message.
        message: Message,
    },
    /// Send to every other member.
    Broadcast(Message),
    /// Call back with [`Input::Timer`] at this local time.
    SetTimer {
        /// Local time, ms.
        deadline_ms: Millis,
    },
    /// These blocks are final, in height order; `certified` is the commit proof of the last
    /// one (which proves every earlier one too, through the parent links).
    Commit {
        /// The blocks, in height order.
        blocks: Vec<Block>,
        /// The commit proof of the last block.
        certified: Box<CertifiedHeader>,
    },
    /// A validator signed two conflicting messages.
    Evidence(Box<Evidence>),
    /// The epoch ended: its last block committed (the proof names it). The replica stops; the
    /// driver starts the next epoch's replica on that block, with this proof
    /// ([`Replica::with_entry_proof`]).
    EpochChange(Box<EpochChangeProof>),
}

/// The collaborators of a replica.
pub struct Environment {
    /// The application.
    pub app: Box<dyn Application>,
    /// The leader schedule.
    pub leaders: Box<dyn LeaderElection>,
    /// Signature checks.
    pub verifier: Box<dyn SignatureVerifier>,
    /// Durable safety data.
    pub safety_storage: Box<dyn SafetyStorage>,
    /// Blocks.
    pub blocks: Box<dyn BlockStore>,
}

/// A snapshot of a replica's progress.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Status {
    /// Current round.
    pub round: Round,
    /// Round of the highest QC.
    pub high_qc_round: Round,
    /// Height of the last committed block.
    pub committed_height: Height,
    /// Id of the last committed block.
    pub committed: Digest,
    /// The safety data.
    pub safety: SafetyData,
}

#[derive(Default)]
struct VoteSet {
    votes: Vec<(usize, BlsSignature)>,
}

/// One validator's consensus state machine for one chain and epoch.
pub struct Replica {
    cfg: ReplicaConfig,
    committee: Committee,
    me: usize,
    my_id: Digest,
    genesis_id: Digest,
    base_height: Height,
    entry_proof: Option<EpochChangeProof>,
    epoch_over: bool,
    pending_epoch: Option<(usize, EpochChangeProof)>,
    epoch_request_at: Option<Millis>,
    next_epoch_inbox: Vec<(usize, Message)>,
    next_epoch_bytes: usize,
    safety: SafetyRules,
    app: Box<dyn Application>,
    leaders: Box<dyn LeaderElection>,
    verifier: Box<dyn SignatureVerifier>,
    blocks: Box<dyn BlockStore>,
    round: Round,
    high_qc: Option<QuorumCertificate>,
    last_tc: Option<TimeoutCertificate>,
    timeouts_in_row: u32,
    deadline_ms: Millis,
    /// A proposal held back by `min_block_interval_ms`, due at this time.
    propose_at: Option<Millis>,
    committed_id: Digest,
    committed_height: Height,
    votes: BTreeMap<(Round, Digest), VoteSet>,
    voted: HashMap<(Round, usize), Vote>,
    banned_voters: HashMap<(Round, usize), ()>,
    timeouts: BTreeMap<Round, TimeoutCollector>,
    my_timeout: Option<Timeout>,
    proposals_seen: BTreeMap<Round, ProposalStub>,
    equivocation_reported: BTreeMap<Round, ()>,
    vote_stubs: BTreeMap<Round, ProposalStub>,
    pending: BTreeMap<Round, (usize, Proposal)>,
    pending_commit: Option<(usize, QuorumCertificate)>,
    sync_wanted: HashMap<Digest, Millis>,
    /// Members caught signing a bad vote or timeout this epoch: their votes and timeouts are
    /// checked on arrival from then on, so one Byzantine member costs the optimistic
    /// aggregation one fallback per epoch, not one per round.
    suspects: HashSet<usize>,
    /// Per member: start of its current one-second window and sync requests served in it.
    sync_served: Vec<(Millis, u64)>,
}

impl std::fmt::Debug for Replica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replica")
            .field("me", &self.me)
            .field("round", &self.round)
            .field("committed_height", &self.committed_height)
            .finish()
    }
}

fn add1(r: Round) -> Round {
    Round(r.0.saturating_add(1))
}

impl Replica {
    /// A replica of member `me` of `committee`, recovering whatever `env`'s storage holds
    /// (safety data, blocks, highest QC, last commit). `genesis` is the block the epoch starts
    /// from, certified by definition at round 0: the chain's genesis for the first epoch, the
    /// previous epoch's ending block afterwards. Call [`Replica::start`] next.
    pub fn new(
        cfg: ReplicaConfig,
        committee: Committee,
        me: usize,
        key: BlsSecretKey,
        genesis: Block,
        mut env: Environment,
    ) -> Result<Self, ConsensusError> {
        check_member(&committee, me)?;
        let committee_len = committee.len();
        let my_id = key.public_key().validator_id();
        let safety = SafetyRules::new(cfg.chain, cfg.epoch, key, env.safety_storage)?;
        let genesis_id = genesis.header.id();
        let base_height = genesis.header.height;
        if !env.blocks.contains(&genesis_id)? {
            env.blocks.insert(genesis)?;
        }
        let high_qc = env
            .blocks
            .high_qc()
            .filter(|q| q.data.epoch == cfg.epoch && q.data.chain == cfg.chain);
        let committed_id = env.blocks.committed().unwrap_or(genesis_id);
        let committed_height = env
            .blocks
            .get(&committed_id)?
            .map(|b| b.header.height)
            .unwrap_or(base_height);
        let round = add1(qc_round(high_qc.as_ref()));
        Ok(Replica {
            cfg,
            committee,
            me,
            my_id,
            genesis_id,
            base_height,
            entry_proof: None,
            epoch_over: false,
            pending_epoch: None,
            epoch_request_at: None,
            next_epoch_inbox: Vec::new(),
            next_epoch_bytes: 0,
            safety,
            app: env.app,
            leaders: env.leaders,
            verifier: env.verifier,
            blocks: env.blocks,
            round,
            high_qc,
            last_tc: None,
            timeouts_in_row: 0,
            deadline_ms: 0,
            propose_at: None,
            committed_id,
            committed_height,
            votes: BTreeMap::new(),
            voted: HashMap::new(),
            banned_voters: HashMap::new(),
            timeouts: BTreeMap::new(),
            my_timeout: None,
            proposals_seen: BTreeMap::new(),
            equivocation_reported: BTreeMap::new(),
            vote_stubs: BTreeMap::new(),
            pending: BTreeMap::new(),
            pending_commit: None,
            sync_wanted: HashMap::new(),
            suspects: HashSet::new(),
            sync_served: vec![(0, 0); committee_len],
        })
    }

    /// The proof of how the previous epoch ended, served to validators still in it.
    pub fn with_entry_proof(mut self, proof: EpochChangeProof) -> Self {
        self.entry_proof = Some(proof);
        self
    }

    /// Messages of the next epoch received before this one ended, for the next epoch's
    /// replica (at most [`MAX_NEXT_EPOCH_MESSAGES`] and [`MAX_NEXT_EPOCH_BYTES`]).
    pub fn take_next_epoch_messages(&mut self) -> Vec<(usize, Message)> {
        self.next_epoch_bytes = 0;
        std::mem::take(&mut self.next_epoch_inbox)
    }

    /// Whether this replica's epoch is over (see [`Output::EpochChange`]).
    pub fn epoch_over(&self) -> bool {
        self.epoch_over
    }

    /// Enter the current round: arm the timer and propose if this replica leads it. Outputs
    /// are appended to `out`.
    pub fn start(&mut self, now: Millis, out: &mut Vec<Output>) -> Result<(), ConsensusError> {
        self.enter_round(now, self.round, true, out)
    }

    /// Process one input at local time `now`, appending what to do to `out`.
    ///
    /// An input is processed in stages (certificates it carries first, then its own content),
    /// so an `Err` may come after useful outputs (a round advanced, evidence found): the
    /// driver carries out everything in `out` either way. On `Err` the rest of the input was
    /// dropped; if the error [is fatal](ConsensusError::is_fatal) the replica must stop and
    /// `out` must be discarded.
    pub fn handle(
        &mut self,
        now: Millis,
        input: Input,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        if self.epoch_over {
            return Err(ConsensusError::EpochOver(self.cfg.epoch));
        }
        match input {
            Input::Timer => self.on_timer(now, out)?,
            Input::Message { from, message } => {
                check_member(&self.committee, from)?;
                if let Some(e) = message.epoch().filter(|e| *e > self.cfg.epoch) {
                    if e.0 == self.cfg.epoch.0.saturating_add(1)
                        && self.next_epoch_inbox.len() < MAX_NEXT_EPOCH_MESSAGES
                    {
                        // Most likely this replica is about to commit the end of its epoch:
                        // keep the message for the next epoch's replica.
                        let size = banyan_core::codec::encoded_len(&message);
                        if self.next_epoch_bytes.saturating_add(size) <= MAX_NEXT_EPOCH_BYTES {
                            self.next_epoch_bytes += size;
                            self.next_epoch_inbox.push((from, message.clone()));
                        }
                    }
                    // Others moved on: ask how this epoch ended.
                    let due = self
                        .epoch_request_at
                        .is_none_or(|at| now >= at.saturating_add(self.cfg.sync_retry_ms));
                    if due {
                        self.epoch_request_at = Some(now);
                        out.push(Output::Send {
                            to: from,
                            message: Message::EpochProofRequest(self.cfg.epoch),
                        });
                    }
                    return Err(ConsensusError::WrongEpoch {
                        current: self.cfg.epoch,
                        got: e,
                    });
                }
                match message {
                    Message::Proposal(p) => self.on_proposal(now, from, *p, false, out)?,
                    Message::Vote(v) => self.on_vote(now, from, *v, out)?,
                    Message::Timeout(t) => self.on_timeout(now, from, *t, out)?,
                    Message::SyncRequest(r) => self.on_sync_request(now, from, r, out)?,
                    Message::SyncResponse(r) => self.on_sync_response(now, from, r, out)?,
                    Message::EpochProofRequest(e) => {
                        if let Some(p) = self.entry_proof.as_ref().filter(|p| p.epoch() == e) {
                            out.push(Output::Send {
                                to: from,
                                message: Message::EpochProof(Box::new(p.clone())),
                            });
                        }
                    }
                    Message::EpochProof(p) => self.on_epoch_proof(now, from, *p, out)?,
                }
            }
        }
        Ok(())
    }

    /// Progress so far.
    pub fn status(&self) -> Status {
        Status {
            round: self.round,
            high_qc_round: qc_round(self.high_qc.as_ref()),
            committed_height: self.committed_height,
            committed: self.committed_id,
            safety: self.safety.data().clone(),
        }
    }

    /// This replica's committee index.
    pub fn index(&self) -> usize {
        self.me
    }

    /// The committee.
    pub fn committee(&self) -> &Committee {
        &self.committee
    }

    // ---------------------------------------------------------------------------------------
    // rounds

    fn timeout_ms(&self) -> Millis {
        let mut t = self.cfg.base_timeout_ms;
        for _ in 0..self.timeouts_in_row.min(64) {
            t = t.saturating_mul(self.cfg.timeout_backoff_percent) / 100;
            if t >= self.cfg.max_timeout_ms {
                break;
            }
        }
        t.min(self.cfg.max_timeout_ms)
    }

    fn enter_round(
        &mut self,
        now: Millis,
        r: Round,
        via_qc: bool,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        self.round = r;
        self.propose_at = None;
        if via_qc {
            self.timeouts_in_row = 0;
        }
        self.deadline_ms = now.saturating_add(self.timeout_ms());
        out.push(Output::SetTimer {
            deadline_ms: self.deadline_ms,
        });
        let keep = Round(r.0.saturating_sub(1));
        self.votes.retain(|(vr, _), _| *vr >= keep);
        self.voted.retain(|(vr, _), _| *vr >= keep);
        self.banned_voters.retain(|(vr, _), _| *vr >= keep);
        self.timeouts.retain(|tr, _| *tr >= r);
        self.pending.retain(|pr, _| *pr >= r);
        let horizon = Round(r.0.saturating_sub(self.cfg.max_round_lookahead));
        self.proposals_seen.retain(|pr, _| *pr >= horizon);
        self.equivocation_reported.retain(|pr, _| *pr >= horizon);
        self.vote_stubs.retain(|pr, _| *pr >= keep);
        if self.my_timeout.as_ref().is_some_and(|t| t.data.round < r) {
            self.my_timeout = None;
        }
        if self.leaders.leader(r) == self.me {
            self.propose(now, out)?;
        }
        Ok(())
    }

    fn on_timer(&mut self, now: Millis, out: &mut Vec<Output>) -> Result<(), ConsensusError> {
        if self.propose_at.is_some_and(|at| now >= at) {
            self.propose_at = None;
            self.propose(now, out)?;
            out.push(Output::SetTimer {
                deadline_ms: self.deadline_ms,
            });
        }
        if now < self.deadline_ms {
            return Ok(());
        }
        self.deadline_ms = now.saturating_add(self.timeout_ms());
        out.push(Output::SetTimer {
            deadline_ms: self.deadline_ms,
        });
        let t = match self.my_timeout.clone() {
            Some(t) if t.data.round == self.round => t,
            _ => {
                let hq = qc_round(self.high_qc.as_ref());
                let tc_round = self.last_tc.as_ref().map(|t| t.round);
                let (data, signature) =
                    match self
                        .safety
                        .sign_timeout(self.cfg.epoch, self.round, hq, tc_round)
                    {
                        Ok(x) => x,
                        Err(ConsensusError::Unsafe(_)) => return Ok(()),
                        Err(e) => return Err(e),
                    };
                if data.high_qc_round != hq {
                    // Re-signing after a restart, for a high QC since superseded: stay silent.
                    return Ok(());
                }
                let last_tc = self
                    .last_tc
                    .clone()
                    .filter(|tc| add1(tc.round) == self.round);
                Timeout {
                    data,
                    high_qc: self.high_qc.clone(),
                    last_tc,
                    signer: self.me as u16,
                    signature,
                }
            }
        };
        self.my_timeout = Some(t.clone());
        out.push(Output::Broadcast(Message::Timeout(Box::new(t.clone()))));
        self.collect_timeout(now, &t, out)
    }

    // ---------------------------------------------------------------------------------------
    // proposals

    fn propose(&mut self, now: Millis, out: &mut Vec<Output>) -> Result<(), ConsensusError> {
        let round = self.round;
        if self.epoch_over {
            return Ok(());
        }
        if self.safety.data().last_proposed_round >= round {
            return Ok(());
        }
        let hq = qc_round(self.high_qc.as_ref());
        let tc = if add1(hq) == round {
            None
        } else {
            match &self.last_tc {
                Some(tc) if add1(tc.round) == round => Some(tc.clone()),
                _ => return Ok(()),
            }
        };
        let parent_id = self
            .high_qc
            .as_ref()
            .map(|q| q.data.block)
            .unwrap_or(self.genesis_id);
        let Some(parent) = self.blocks.get(&parent_id)? else {
            // Fetched on demand; the proposal is made when the block arrives.
            let peer = self.leaders.leader(hq);
            self.request_sync(now, peer, parent_id, out)?;
            return Ok(());
        };
        let due = parent
            .header
            .timestamp_ms
            .saturating_add(self.cfg.min_block_interval_ms);
        if now < due {
            // Paced: propose when the interval since the parent has passed (the round timer
            // still runs; the earlier wake-up is an extra timer).
            self.propose_at = Some(due);
            out.push(Output::SetTimer { deadline_ms: due });
            return Ok(());
        }
        let payload = if self.after_epoch_end(&parent)? {
            // The epoch is ending: empty blocks until the ending block commits.
            Payload {
                txs: Vec::new(),
                state_root: parent.header.state_root,
                outbox_root: Digest::ZERO,
            }
        } else {
            self.app.propose(&parent)?
        };
        let header = BlockHeader {
            chain: self.cfg.chain,
            epoch: self.cfg.epoch,
            height: Height(parent.header.height.0.saturating_add(1)),
            round,
            parent: parent_id,
            state_root: payload.state_root,
            tx_root: Block::compute_tx_root(&payload.txs),
            outbox_root: payload.outbox_root,
            proposer: self.my_id,
            timestamp_ms: now.max(parent.header.timestamp_ms.saturating_add(1)),
            vrf_proof: self.leaders.prove(self.safety.key(), round),
        };
        let txs = BoundedVec::new(payload.txs)
            .map_err(|_| ConsensusError::Payload("too many transactions".into()))?;
        let block = Block { header, txs };
        let id = block.header.id();
        let signature = self.safety.sign_proposal(self.cfg.epoch, round, id)?;
        let proposal = Proposal {
            block: block.clone(),
            justify: self.high_qc.clone(),
            tc: tc.clone(),
            signature,
        };
        self.proposals_seen
            .insert(round, proposal.stub(self.me as u16));
        self.blocks.insert(block.clone())?;
        out.push(Output::Broadcast(Message::Proposal(Box::new(proposal))));
        let tc_info = tc.as_ref().map(|t| (t.round, t.max_high_qc_round()));
        self.vote_for(now, &block, signature, hq, tc_info, out)
    }

    fn check_chain_epoch(&self, chain: ChainId, epoch: Epoch) -> Result<(), ConsensusError> {
        if chain != self.cfg.chain {
            return Err(ConsensusError::WrongChain {
                expected: self.cfg.chain,
                got: chain,
            });
        }
        if epoch != self.cfg.epoch {
            return Err(ConsensusError::WrongEpoch {
                current: self.cfg.epoch,
                got: epoch,
            });
        }
        Ok(())
    }

    fn verify_qc(&mut self, qc: &QuorumCertificate) -> Result<(), ConsensusError> {
        self.check_chain_epoch(qc.data.chain, qc.data.epoch)?;
        if self.high_qc.as_ref() == Some(qc) {
            return Ok(());
        }
        self.verifier.verify_quorum(
            &self.committee,
            qc.data.signing_message().as_bytes(),
            &qc.signers,
            &qc.signature,
        )?;
        Ok(())
    }

    fn verify_tc(&mut self, tc: &TimeoutCertificate) -> Result<(), ConsensusError> {
        self.check_chain_epoch(tc.chain, tc.epoch)?;
        if self.last_tc.as_ref() == Some(tc) {
            return Ok(());
        }
        verify_tc(&self.committee, tc, self.verifier.as_mut())?;
        Ok(())
    }

    fn on_proposal(
        &mut self,
        now: Millis,
        from: usize,
        p: Proposal,
        retry: bool,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        let h = &p.block.header;
        self.check_chain_epoch(h.chain, h.epoch)?;
        let round = h.round;
        if round < self.round {
            return Err(ConsensusError::StaleRound {
                round,
                current: self.round,
            });
        }
        let id = h.id();
        if !retry {
            if let Some(seen) = self.proposals_seen.get(&round) {
                if seen.block == id {
                    return Err(ConsensusError::Duplicate);
                }
            }
        }
        // Structure, before any signature is checked.
        let (jround, jheight, jblock) = match &p.justify {
            None => (Round(0), self.base_height, self.genesis_id),
            Some(q) => (q.data.round, q.data.height, q.data.block),
        };
        let invalid = |why: &str| Err(ConsensusError::InvalidProposal(why.into()));
        if h.parent != jblock {
            return invalid("parent is not the certified block");
        }
        if jheight.0.checked_add(1) != Some(h.height.0) {
            return invalid("height does not follow the parent's");
        }
        if jround >= round {
            return invalid("parent round is not below the block's");
        }
        match &p.tc {
            Some(tc) if add1(tc.round) != round => {
                return invalid("TC is not of the previous round")
            }
            None if add1(jround) != round => return invalid("round skipped without a TC"),
            _ => {}
        }
        if Block::compute_tx_root(&p.block.txs) != h.tx_root {
            return invalid("tx root does not match the transactions");
        }
        // Signatures.
        let leader = self.leaders.leader(round);
        self.leaders
            .verify_header(&self.committee, h, self.verifier.as_mut())?;
        let msg = proposal_message(h.chain, h.epoch, round, &id);
        if !self.verifier.verify_one(
            &self.committee,
            leader,
            msg.as_bytes(),
            &p.signature,
            BLS_SIG_DST,
        ) {
            return Err(ConsensusError::BadSignature("proposal"));
        }
        let stub = p.stub(leader as u16);
        let vote_stub = self.vote_stubs.get(&round).copied();
        match self.proposals_seen.get(&round).or(vote_stub.as_ref()) {
            Some(seen)
                if seen.block != id && self.equivocation_reported.insert(round, ()).is_none() =>
            {
                out.push(Output::Evidence(Box::new(Evidence::ConflictingProposals(
                    *seen, stub,
                ))));
            }
            _ => {}
        }
        self.proposals_seen.entry(round).or_insert(stub);
        // Certificates: learn from them even if the block itself is refused below.
        if let Some(q) = &p.justify {
            self.verify_qc(q)?;
        }
        if let Some(tc) = &p.tc {
            self.verify_tc(tc)?;
        }
        self.process_qc(now, from, p.justify.as_ref(), out)?;
        if let Some(tc) = &p.tc {
            self.process_tc(now, tc, out)?;
        }
        if round != self.round {
            return Ok(());
        }
        let Some(parent) = self.blocks.get(&jblock)? else {
            if self.pending.len() < MAX_PENDING_PROPOSALS {
                self.pending.insert(round, (from, p));
            }
            self.request_sync(now, from, jblock, out)?;
            return Ok(());
        };
        let h = &p.block.header;
        let max_ts = now.saturating_add(self.cfg.max_clock_drift_ms);
        if h.timestamp_ms > max_ts {
            return Err(ConsensusError::ClockDrift {
                timestamp_ms: h.timestamp_ms,
                now_ms: now,
                max_drift_ms: self.cfg.max_clock_drift_ms,
            });
        }
        if h.timestamp_ms <= parent.header.timestamp_ms && jblock != self.genesis_id {
            return invalid("timestamp does not increase");
        }
        if self.after_epoch_end(&parent)? {
            if !p.block.txs.is_empty()
                || h.state_root != parent.header.state_root
                || h.outbox_root != Digest::ZERO
            {
                return invalid("a block after the epoch's ending block must be empty");
            }
        } else {
            self.app.verify(&parent, &p.block)?;
        }
        self.blocks.insert(p.block.clone())?;
        let tc_info = p.tc.as_ref().map(|t| (t.round, t.max_high_qc_round()));
        self.vote_for(now, &p.block, p.signature, jround, tc_info, out)?;
        self.retry_pending(now, out)
    }

    fn vote_for(
        &mut self,
        now: Millis,
        block: &Block,
        proposal_signature: BlsSignature,
        jround: Round,
        tc_info: Option<(Round, Round)>,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        if self.epoch_over {
            return Ok(());
        }
        let data = vote_data(block);
        let signature = self.safety.sign_vote(data, jround, tc_info)?;
        let vote = Vote {
            data,
            signer: self.me as u16,
            signature,
            proposal_signature,
        };
        let next = self.leaders.leader(add1(data.round));
        if next == self.me {
            self.on_vote(now, self.me, vote, out)
        } else {
            out.push(Output::Send {
                to: next,
                message: Message::Vote(Box::new(vote)),
            });
            Ok(())
        }
    }

    // ---------------------------------------------------------------------------------------
    // certificates and commits

    fn process_qc(
        &mut self,
        now: Millis,
        peer: usize,
        qc: Option<&QuorumCertificate>,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        let Some(qc) = qc else { return Ok(()) };
        if qc.data.round > qc_round(self.high_qc.as_ref()) {
            self.high_qc = Some(qc.clone());
            self.blocks.set_high_qc(qc)?;
        }
        self.try_commit(now, peer, qc, out)?;
        if self.epoch_over {
            return Ok(());
        }
        if add1(qc.data.round) > self.round {
            self.enter_round(now, add1(qc.data.round), true, out)?;
        }
        Ok(())
    }

    fn process_tc(
        &mut self,
        now: Millis,
        tc: &TimeoutCertificate,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        if tc.round >= self.round {
            self.last_tc = Some(tc.clone());
            self.timeouts_in_row = self.timeouts_in_row.saturating_add(1);
            self.enter_round(now, add1(tc.round), false, out)?;
        }
        Ok(())
    }

    /// The 2-chain rule: a QC for block `x` whose parent `p` has round `x.round - 1` commits `p`
    /// and its ancestors.
    fn try_commit(
        &mut self,
        now: Millis,
        peer: usize,
        qc: &QuorumCertificate,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        if qc.data.height.0 <= self.committed_height.0.saturating_add(1) {
            return Ok(());
        }
        let Some(x) = self.blocks.get(&qc.data.block)? else {
            self.pending_commit = Some((peer, qc.clone()));
            self.request_sync(now, peer, qc.data.block, out)?;
            return Ok(());
        };
        let Some(p) = self.blocks.get(&x.header.parent)? else {
            self.pending_commit = Some((peer, qc.clone()));
            self.request_sync(now, peer, x.header.parent, out)?;
            return Ok(());
        };
        if add1(p.header.round) != x.header.round {
            return Ok(());
        }
        let tail = vec![x.header];
        self.commit_to(now, peer, p, tail, qc, true, out)?;
        Ok(())
    }

    /// Whether `block` or an uncommitted ancestor ends the epoch.
    fn after_epoch_end(&self, block: &Block) -> Result<bool, ConsensusError> {
        let mut b = block.header.clone();
        while b.height > self.committed_height {
            if self.app.ends_epoch(&b) {
                return Ok(true);
            }
            match self.blocks.get(&b.parent)? {
                Some(p) => b = p.header,
                None => return Ok(false),
            }
        }
        Ok(false)
    }

    /// Commit `target` and its uncommitted ancestors, justified by `qc` over the last of
    /// `tail` (the descendants of `target` up to the certified block). Stops at an
    /// epoch-ending block and ends the epoch; with `announce`, it then also sends the epoch
    /// proof to every other member. Returns false if blocks are missing (fetched).
    ///
    /// Announcing matters because the first replica to see the commit QC of an epoch's end
    /// is usually the one that formed it: the others would learn it from the next proposal,
    /// but that proposal belongs to the next epoch, which they have not entered, so they
    /// would wait for their round timeout before asking.
    #[allow(clippy::too_many_arguments)]
    fn commit_to(
        &mut self,
        now: Millis,
        peer: usize,
        target: Block,
        tail: Vec<BlockHeader>,
        qc: &QuorumCertificate,
        announce: bool,
        out: &mut Vec<Output>,
    ) -> Result<bool, ConsensusError> {
        // Walk back from the target to the last committed block.
        let mut chain = vec![target];
        while let Some(last) = chain.last() {
            let h = last.header.height.0;
            if h <= self.committed_height.0.saturating_add(1) {
                if h != self.committed_height.0.saturating_add(1)
                    || last.header.parent != self.committed_id
                {
                    return Err(ConsensusError::ConflictingCommit(h));
                }
                break;
            }
            let parent_id = last.header.parent;
            match self.blocks.get(&parent_id)? {
                Some(b) => chain.push(b),
                None => {
                    self.pending_commit = Some((peer, qc.clone()));
                    self.request_sync(now, peer, parent_id, out)?;
                    return Ok(false);
                }
            }
        }
        chain.reverse();
        // The commit proof of the last block committed: its header, then the descendants up
        // to the certified block. At an epoch's end the chain stops at the ending block, and
        // that block's proof is the epoch-change proof.
        let ends_at = chain.iter().position(|b| self.app.ends_epoch(&b.header));
        let last_at = ends_at.unwrap_or(chain.len().saturating_sub(1));
        let headers: Vec<BlockHeader> = chain[last_at..]
            .iter()
            .map(|b| b.header.clone())
            .chain(tail)
            .collect();
        chain.truncate(last_at + 1);
        let Some(last) = chain.last() else {
            return Ok(false);
        };
        let certified = CertifiedHeader {
            headers: BoundedVec::new(headers).map_err(|_| {
                ConsensusError::InconsistentCertificate("commit proof too long".into())
            })?,
            commit_qc: qc.clone(),
        };
        for b in &chain {
            self.app.commit(b)?;
        }
        self.committed_id = last.header.id();
        self.committed_height = last.header.height;
        self.blocks.set_committed(self.committed_id)?;
        self.pending_commit = None;
        let proof = ends_at.map(|_| certified.clone());
        out.push(Output::Commit {
            blocks: chain,
            certified: Box::new(certified),
        });
        if let Some(p) = proof {
            self.epoch_over = true;
            self.pending_epoch = None;
            if announce {
                out.push(Output::Broadcast(Message::EpochProof(Box::new(p.clone()))));
            }
            out.push(Output::EpochChange(Box::new(p)));
        }
        Ok(true)
    }

    /// A peer proves this epoch ended: commit up to its ending block and end the epoch.
    fn on_epoch_proof(
        &mut self,
        now: Millis,
        from: usize,
        proof: EpochChangeProof,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        self.check_chain_epoch(proof.commit_qc.data.chain, proof.epoch())?;
        let ending = proof.verify(&self.committee)?.clone();
        if !self.app.ends_epoch(&ending) {
            return Err(ConsensusError::InconsistentCertificate(
                "the proof's first block does not end the epoch".into(),
            ));
        }
        if ending.height <= self.committed_height {
            return Err(ConsensusError::Duplicate);
        }
        let id = ending.id();
        let Some(target) = self.blocks.get(&id)? else {
            self.sync_wanted.remove(&id);
            self.request_sync(now, from, id, out)?;
            self.pending_epoch = Some((from, proof));
            return Ok(());
        };
        let tail = proof.headers.as_slice()[1..].to_vec();
        // Received, not formed here: whoever formed it announced it to everyone.
        if !self.commit_to(now, from, target, tail, &proof.commit_qc, false, out)? {
            self.pending_commit = None;
            self.pending_epoch = Some((from, proof));
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // votes and timeouts

    fn on_vote(
        &mut self,
        now: Millis,
        from: usize,
        v: Vote,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        let signer = v.signer as usize;
        check_member(&self.committee, signer)?;
        if signer != from {
            return Err(ConsensusError::Impersonation {
                kind: "vote",
                signer,
                from,
            });
        }
        self.check_chain_epoch(v.data.chain, v.data.epoch)?;
        let r = v.data.round;
        if add1(r) < self.round || r <= qc_round(self.high_qc.as_ref()) {
            return Err(ConsensusError::StaleRound {
                round: r,
                current: self.round,
            });
        }
        if r.0 > self.round.0.saturating_add(self.cfg.max_round_lookahead) {
            return Err(ConsensusError::FutureRound {
                round: r,
                current: self.round,
                max_rounds: self.cfg.max_round_lookahead,
            });
        }
        if self.leaders.leader(add1(r)) != self.me {
            return Err(ConsensusError::NotNextLeader(r));
        }
        if self.banned_voters.contains_key(&(r, signer)) {
            return Err(ConsensusError::BadSignature(
                "vote (signer banned this round)",
            ));
        }
        if let Some(prev) = self.voted.get(&(r, signer)).copied() {
            if prev.data == v.data {
                return Err(ConsensusError::Duplicate);
            }
            let key = self.committee.members()[signer].key.key();
            let ok = |x: &Vote| {
                x.signature
                    .verify(x.data.signing_message().as_bytes(), key)
                    .is_ok()
            };
            if ok(&prev) && ok(&v) {
                out.push(Output::Evidence(Box::new(Evidence::ConflictingVotes(
                    prev, v,
                ))));
            }
            return Err(ConsensusError::Duplicate);
        }
        let check_now =
            self.cfg.aggregation == AggregationMode::VerifyEach || self.suspects.contains(&signer);
        if check_now
            && !self.verifier.verify_one(
                &self.committee,
                signer,
                v.data.signing_message().as_bytes(),
                &v.signature,
                BLS_SIG_DST,
            )
        {
            self.banned_voters.insert((r, signer), ());
            return Err(ConsensusError::BadSignature("vote"));
        }
        self.voted.insert((r, signer), v);
        self.note_proposal(&v, out);
        let set = self.votes.entry((r, v.data.block)).or_default();
        set.votes.push((signer, v.signature));
        let stake: u128 = set
            .votes
            .iter()
            .map(|(i, _)| self.committee.members()[*i].stake as u128)
            .sum();
        if stake < self.committee.quorum_stake() {
            return Ok(());
        }
        let votes = set.votes.clone();
        let agg = match self.cfg.aggregation {
            AggregationMode::Optimistic => {
                aggregate_optimistic(&self.committee, v.data, &votes, self.verifier.as_mut())?
            }
            AggregationMode::VerifyEach => {
                aggregate_verify_each(&self.committee, v.data, &votes, self.verifier.as_mut())?
            }
        };
        if !agg.bad_signers.is_empty() {
            if let Some(set) = self.votes.get_mut(&(r, v.data.block)) {
                set.votes.retain(|(i, _)| !agg.bad_signers.contains(i));
            }
            for i in &agg.bad_signers {
                self.banned_voters.insert((r, *i), ());
                self.voted.remove(&(r, *i));
                self.suspects.insert(*i);
            }
        }
        if let Some(qc) = agg.certificate {
            self.process_qc(now, self.me, Some(&qc), out)?;
        }
        Ok(())
    }

    /// Learn the proposal a vote was for; a second, validly signed block of the same round is
    /// evidence against its leader (reported once per round).
    fn note_proposal(&mut self, v: &Vote, out: &mut Vec<Output>) {
        let r = v.data.round;
        let known = self
            .proposals_seen
            .get(&r)
            .or_else(|| self.vote_stubs.get(&r))
            .copied();
        if known.is_some_and(|s| s.block == v.data.block) {
            return;
        }
        if known.is_some() && self.equivocation_reported.contains_key(&r) {
            return;
        }
        let leader = self.leaders.leader(r);
        let stub = ProposalStub {
            chain: v.data.chain,
            epoch: v.data.epoch,
            round: r,
            block: v.data.block,
            signer: leader as u16,
            signature: v.proposal_signature,
        };
        let msg = proposal_message(stub.chain, stub.epoch, r, &stub.block);
        if !self.verifier.verify_one(
            &self.committee,
            leader,
            msg.as_bytes(),
            &stub.signature,
            BLS_SIG_DST,
        ) {
            return;
        }
        match known {
            None => {
                self.vote_stubs.insert(r, stub);
            }
            Some(first) => {
                self.equivocation_reported.insert(r, ());
                out.push(Output::Evidence(Box::new(Evidence::ConflictingProposals(
                    first, stub,
                ))));
            }
        }
    }

    fn on_timeout(
        &mut self,
        now: Millis,
        from: usize,
        t: Timeout,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        let signer = t.signer as usize;
        check_member(&self.committee, signer)?;
        if signer != from {
            return Err(ConsensusError::Impersonation {
                kind: "timeout",
                signer,
                from,
            });
        }
        self.check_chain_epoch(t.data.chain, t.data.epoch)?;
        let r = t.data.round;
        if r < self.round {
            return Err(ConsensusError::StaleRound {
                round: r,
                current: self.round,
            });
        }
        if r.0 > self.round.0.saturating_add(self.cfg.max_round_lookahead) {
            return Err(ConsensusError::FutureRound {
                round: r,
                current: self.round,
                max_rounds: self.cfg.max_round_lookahead,
            });
        }
        if t.data.high_qc_round != qc_round(t.high_qc.as_ref()) || t.data.high_qc_round >= r {
            return Err(ConsensusError::InconsistentCertificate(
                "timeout's high QC does not match its signed round".into(),
            ));
        }
        if let Some(tc) = &t.last_tc {
            if add1(tc.round) != r {
                return Err(ConsensusError::InconsistentCertificate(
                    "timeout's TC is not of the previous round".into(),
                ));
            }
        }
        if self.timeouts.get(&r).is_some_and(|c| c.has(signer)) {
            return Err(ConsensusError::Duplicate);
        }
        if self.suspects.contains(&signer)
            && !self.verifier.verify_one(
                &self.committee,
                signer,
                t.data.signing_message().as_bytes(),
                &t.signature,
                BLS_SIG_DST,
            )
        {
            return Err(ConsensusError::BadSignature(
                "timeout (signer under suspicion)",
            ));
        }
        if let Some(q) = &t.high_qc {
            self.verify_qc(q)?;
        }
        if let Some(tc) = &t.last_tc {
            self.verify_tc(tc)?;
        }
        self.process_qc(now, from, t.high_qc.as_ref(), out)?;
        if let Some(tc) = &t.last_tc {
            self.process_tc(now, tc, out)?;
        }
        if r < self.round {
            return Ok(());
        }
        self.collect_timeout(now, &t, out)
    }

    fn collect_timeout(
        &mut self,
        now: Millis,
        t: &Timeout,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        let r = t.data.round;
        let collector = self.timeouts.entry(r).or_default();
        if !collector.add(t.signer as usize, t.data.high_qc_round, t.signature) {
            return Ok(());
        }
        let template = TimeoutData {
            high_qc_round: Round(0),
            ..t.data
        };
        let tc = collector.try_certify(&self.committee, template, self.verifier.as_mut())?;
        self.suspects.extend(collector.banned());
        if let Some(tc) = tc {
            self.process_tc(now, &tc, out)?;
        }
        Ok(())
    }

    // ---------------------------------------------------------------------------------------
    // block sync

    fn request_sync(
        &mut self,
        now: Millis,
        peer: usize,
        id: Digest,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        if peer == self.me || self.blocks.contains(&id)? {
            return Ok(());
        }
        if let Some(&at) = self.sync_wanted.get(&id) {
            if now < at.saturating_add(self.cfg.sync_retry_ms) {
                return Ok(());
            }
        }
        if self.sync_wanted.len() >= MAX_SYNC_WANTED {
            self.sync_wanted.clear();
        }
        self.sync_wanted.insert(id, now);
        out.push(Output::Send {
            to: peer,
            message: Message::SyncRequest(SyncRequest {
                block: id,
                max_blocks: MAX_SYNC_BLOCKS as u16,
            }),
        });
        Ok(())
    }

    fn on_sync_request(
        &mut self,
        now: Millis,
        from: usize,
        r: SyncRequest,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        let per_sec = self.cfg.max_sync_responses_per_sec;
        if let Some((start, served)) = self.sync_served.get_mut(from) {
            if now >= start.saturating_add(1_000) || now < *start {
                *start = now;
                *served = 0;
            }
            if *served >= per_sec {
                return Err(ConsensusError::RateLimited {
                    what: "sync requests",
                    from,
                    per_sec,
                });
            }
            *served += 1;
        }
        let max = (r.max_blocks as usize).min(MAX_SYNC_BLOCKS);
        let mut blocks = Vec::new();
        let mut bytes = 0usize;
        let mut id = r.block;
        while blocks.len() < max {
            let Some(b) = self.blocks.get(&id)? else {
                break;
            };
            if b.header.height.0 == 0 {
                break;
            }
            bytes = bytes.saturating_add(codec::encoded_len(&b));
            if !blocks.is_empty() && bytes > self.cfg.max_sync_response_bytes {
                break;
            }
            id = b.header.parent;
            blocks.push(b);
        }
        if blocks.is_empty() {
            return Ok(());
        }
        if let Ok(blocks) = BoundedVec::new(blocks) {
            out.push(Output::Send {
                to: from,
                message: Message::SyncResponse(SyncResponse { blocks }),
            });
        }
        Ok(())
    }

    fn on_sync_response(
        &mut self,
        now: Millis,
        from: usize,
        r: SyncResponse,
        out: &mut Vec<Output>,
    ) -> Result<(), ConsensusError> {
        let mut accepted = 0usize;
        let mut missing = None;
        for b in r.blocks.into_inner() {
            let id = b.header.id();
            // Only blocks asked for: each was named by a verified QC or by the parent link of
            // a block accepted before it, so the hash chain authenticates it.
            if self.sync_wanted.remove(&id).is_none() {
                continue;
            }
            if b.header.chain != self.cfg.chain
                || Block::compute_tx_root(&b.txs) != b.header.tx_root
            {
                return Err(ConsensusError::Sync(
                    "block does not match its header".into(),
                ));
            }
            let parent = b.header.parent;
            let height = b.header.height;
            self.blocks.insert(b)?;
            accepted += 1;
            if height.0 > self.committed_height.0.saturating_add(1)
                && !self.blocks.contains(&parent)?
            {
                self.sync_wanted.insert(parent, now);
                missing = Some(parent);
            } else {
                missing = None;
            }
        }
        if accepted == 0 {
            return Err(ConsensusError::Sync("no block asked for".into()));
        }
        if let Some(m) = missing {
            self.sync_wanted.remove(&m);
            self.request_sync(now, from, m, out)?;
        }
        if let Some((peer, qc)) = self.pending_commit.take() {
            self.try_commit(now, peer, &qc, out)?;
        }
        if let Some((peer, proof)) = self.pending_epoch.take() {
            self.on_epoch_proof(now, peer, proof, out)?;
            if self.epoch_over {
                return Ok(());
            }
        }
        self.retry_pending(now, out)?;
        if self.leaders.leader(self.round) == self.me {
            self.propose(now, out)?;
        }
        Ok(())
    }

    fn retry_pending(&mut self, now: Millis, out: &mut Vec<Output>) -> Result<(), ConsensusError> {
        let mut ready: Vec<Round> = Vec::new();
        for (r, (_, p)) in &self.pending {
            if self.blocks.contains(&p.block.header.parent)? {
                ready.push(*r);
            }
        }
        for r in ready {
            if let Some((from, p)) = self.pending.remove(&r) {
                // A refused buffered proposal changes nothing; keep going with the others.
                match self.on_proposal(now, from, p, true, out) {
                    Err(e) if e.is_fatal() => return Err(e),
                    _ => {}
                }
            }
        }
        Ok(())
    }
}

/// Refuse an index outside the committee (an unknown signer or sender).
fn check_member(committee: &Committee, index: usize) -> Result<(), ConsensusError> {
    if index >= committee.len() {
        return Err(ConsensusError::UnknownSigner {
            index,
            size: committee.len(),
        });
    }
    Ok(())
}
