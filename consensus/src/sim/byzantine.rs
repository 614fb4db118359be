//! Byzantine validators: an honest replica whose outputs are tampered with before they leave,
//! one behaviour per attack (commonware-style mocks).

use banyan_core::certificate::{SignerBitmap, VoteData};
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::{BlsSecretKey, BlsSignature};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::replica::Output;
use crate::types::{
    proposal_message, Message, SyncRequest, Timeout, TimeoutData, Vote, MAX_SYNC_BLOCKS,
};

/// How a simulated validator behaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Behavior {
    /// Follows the protocol.
    Honest,
    /// As leader, sends one block to half the committee and a conflicting one to the rest.
    EquivocatingLeader,
    /// Every vote is followed by a second vote, for another block, in the same round.
    DoubleVote,
    /// Votes carry valid curve points that are not signatures of the vote.
    BadSignatureVotes,
    /// Never votes (but proposes and times out).
    WithheldVotes,
    /// Replays old messages and signs fresh ones for long-gone rounds.
    StaleRoundSpam,
    /// Proposes with forged QCs (bad aggregate, or too few signers).
    InvalidQc,
    /// Its clock runs ahead by more than the allowed drift, so its proposals are refused.
    ClockSkew,
    /// Sends votes and timeouts under every other member's index: signed with its own key,
    /// with a junk signature, or replaying another member's genuine signature, for every
    /// round from its own up to the look-ahead limit (so they arrive before the genuine ones).
    Impersonator,
    /// Asks every member for the longest block sync it can, many times per step.
    SyncFlooder,
    /// Announces every epoch-change proof it holds to everyone, again and again, but never
    /// serves a block: a node that trusts it as its block source for the epoch end is stuck.
    SilentEpochProof,
    /// Two nodes share this validator's key and run the protocol independently.
    Twin,
}

impl Behavior {
    /// Every Byzantine behaviour.
    pub const BYZANTINE: [Behavior; 11] = [
        Behavior::EquivocatingLeader,
        Behavior::DoubleVote,
        Behavior::BadSignatureVotes,
        Behavior::WithheldVotes,
        Behavior::StaleRoundSpam,
        Behavior::InvalidQc,
        Behavior::ClockSkew,
        Behavior::Impersonator,
        Behavior::SyncFlooder,
        Behavior::SilentEpochProof,
        Behavior::Twin,
    ];

    /// Whether the validator follows the protocol.
    pub fn is_honest(self) -> bool {
        self == Behavior::Honest
    }
}

/// Most old messages a spammer keeps to replay.
const SPAM_HISTORY: usize = 32;
/// Most messages of other members an impersonator keeps to replay.
const OBSERVED: usize = 64;
/// Sync requests a flooder sends to each member per step.
const FLOOD_REQUESTS: usize = 8;
/// Rounds an impersonator forges ahead in one step at most (it catches up over steps).
const FORGE_ROUNDS_PER_STEP: u64 = 25;

/// What a Byzantine node knows of its replica when it tampers with the replica's outputs.
#[derive(Clone, Copy, Debug)]
pub struct Context<'a> {
    /// Its committee index.
    pub me: usize,
    /// Committee size.
    pub n: usize,
    /// Its key.
    pub key: &'a BlsSecretKey,
    /// The chain.
    pub chain: ChainId,
    /// Its replica's epoch.
    pub epoch: Epoch,
    /// Its replica's round.
    pub round: Round,
    /// How many rounds ahead honest replicas buffer votes and timeouts.
    pub lookahead: u64,
}

/// What a Byzantine node remembers between steps.
#[derive(Debug, Default)]
pub struct Memory {
    /// Messages it sent earlier (for replays).
    pub history: Vec<Message>,
    /// Votes and timeouts of other members it received (for replays under their index).
    pub observed: Vec<Message>,
    /// Impersonator: (epoch, highest round) forged so far.
    pub forged_to: (u64, u64),
    /// The latest block id it saw named (a sync flooder asks for it).
    pub last_block: Option<Digest>,
    /// The latest epoch-change proof it holds.
    pub last_proof: Option<Message>,
}

impl Memory {
    /// Note a message received from another member (kept for replays, bounded).
    pub fn observe(&mut self, message: &Message) {
        if matches!(message, Message::Vote(_) | Message::Timeout(_)) {
            if self.observed.len() >= OBSERVED {
                self.observed.remove(0);
            }
            self.observed.push(message.clone());
        }
        if let Message::EpochProof(_) = message {
            self.last_proof = Some(message.clone());
        }
    }
}

/// Tamper with the `outputs` of a Byzantine member according to `behavior`; `memory` holds
/// what it saw and sent before.
pub fn tamper(
    behavior: Behavior,
    ctx: Context<'_>,
    outputs: Vec<Output>,
    memory: &mut Memory,
    rng: &mut ChaCha8Rng,
) -> Vec<Output> {
    let Context { me, n, key, .. } = ctx;
    let history = &mut memory.history;
    let mut out = Vec::with_capacity(outputs.len());
    // Extra traffic goes out on steps that set a timer (round changes, timer expiries), not
    // on every delivery, so the attack scales with rounds, not with messages.
    let timer_step = outputs.iter().any(|o| matches!(o, Output::SetTimer { .. }));
    for o in outputs {
        if let Output::Broadcast(m) | Output::Send { message: m, .. } = &o {
            match m {
                Message::Vote(v) => memory.last_block = Some(v.data.block),
                Message::Proposal(p) => memory.last_block = Some(p.block.header.id()),
                Message::EpochProof(_) => memory.last_proof = Some(m.clone()),
                _ => {}
            }
        }
        match (behavior, o) {
            (Behavior::EquivocatingLeader, Output::Broadcast(Message::Proposal(p))) => {
                let mut q = p.clone();
                q.block.header.timestamp_ms = q.block.header.timestamp_ms.saturating_add(1);
                let h = &q.block.header;
                q.signature =
                    key.sign(proposal_message(h.chain, h.epoch, h.round, &h.id()).as_bytes());
                for to in (0..n).filter(|&j| j != me) {
                    let m = if to % 2 == 0 { p.clone() } else { q.clone() };
                    out.push(Output::Send {
                        to,
                        message: Message::Proposal(m),
                    });
                }
            }
            (
                Behavior::DoubleVote,
                Output::Send {
                    to,
                    message: Message::Vote(v),
                },
            ) => {
                let mut w = v.clone();
                w.data.block = hash(Domain::Custom("banyan/sim/other"), v.data.block.as_bytes());
                w.signature = key.sign(w.data.signing_message().as_bytes());
                out.push(Output::Send {
                    to,
                    message: Message::Vote(v),
                });
                out.push(Output::Send {
                    to,
                    message: Message::Vote(w),
                });
            }
            (
                Behavior::BadSignatureVotes,
                Output::Send {
                    to,
                    message: Message::Vote(mut v),
                },
            ) => {
                v.signature = key.sign(b"not the vote");
                out.push(Output::Send {
                    to,
                    message: Message::Vote(v),
                });
            }
            (
                Behavior::WithheldVotes,
                Output::Send {
                    message: Message::Vote(_),
                    ..
                },
            ) => {}
            (Behavior::InvalidQc, Output::Broadcast(Message::Proposal(mut p))) => {
                if let Some(qc) = p.justify.as_mut() {
                    if qc.data.round.0 % 2 == 0 {
                        // A single signature passed off as the quorum's aggregate.
                        qc.signature = key.sign(qc.data.signing_message().as_bytes());
                    } else if let Ok(b) = one_signer(n, me) {
                        // An honest signature set too small for a quorum.
                        qc.signers = b;
                        qc.signature = key.sign(qc.data.signing_message().as_bytes());
                    }
                }
                out.push(Output::Broadcast(Message::Proposal(p)));
            }
            (Behavior::StaleRoundSpam, o) => {
                if let Output::Broadcast(m) | Output::Send { message: m, .. } = &o {
                    if history.len() < SPAM_HISTORY && m.round().is_some() {
                        history.push(m.clone());
                    }
                }
                let spam = matches!(o, Output::SetTimer { .. });
                out.push(o);
                if !spam {
                    continue;
                }
                for _ in 0..3 {
                    if history.is_empty() {
                        break;
                    }
                    let m = history[rng.gen_range(0..history.len())].clone();
                    out.push(Output::Broadcast(m));
                }
                let data = TimeoutData {
                    chain: banyan_core::ids::ChainId::MAIN,
                    epoch: banyan_core::ids::Epoch(0),
                    round: Round(1),
                    high_qc_round: Round(0),
                };
                out.push(Output::Broadcast(Message::Timeout(Box::new(Timeout {
                    data,
                    high_qc: None,
                    last_tc: None,
                    signer: me as u16,
                    signature: key.sign(data.signing_message().as_bytes()),
                }))));
            }
            (Behavior::SilentEpochProof, Output::Send { to, message }) => {
                // Never serves a block.
                if !matches!(message, Message::SyncResponse(_)) {
                    out.push(Output::Send { to, message });
                }
            }
            (_, o) => out.push(o),
        }
    }
    match behavior {
        _ if !timer_step => {}
        Behavior::Impersonator => impersonate(ctx, memory, rng, &mut out),
        Behavior::SyncFlooder => {
            if let Some(block) = memory.last_block {
                for to in (0..n).filter(|&j| j != me) {
                    for _ in 0..FLOOD_REQUESTS {
                        out.push(Output::Send {
                            to,
                            message: Message::SyncRequest(SyncRequest {
                                block,
                                max_blocks: MAX_SYNC_BLOCKS as u16,
                            }),
                        });
                    }
                }
            }
        }
        Behavior::SilentEpochProof => {
            if let Some(p) = &memory.last_proof {
                out.push(Output::Broadcast(p.clone()));
            }
        }
        _ => {}
    }
    out
}

/// Forge votes and timeouts under every other member's index for the rounds from the
/// impersonator's own up to the look-ahead, and replay other members' messages it received.
fn impersonate(ctx: Context<'_>, memory: &mut Memory, rng: &mut ChaCha8Rng, out: &mut Vec<Output>) {
    let Context {
        me,
        n,
        key,
        chain,
        epoch,
        round,
        lookahead,
    } = ctx;
    let (forged_epoch, forged_round) = memory.forged_to;
    let from = if forged_epoch == epoch.0 {
        forged_round.saturating_add(1).max(round.0)
    } else {
        round.0
    };
    let to = round
        .0
        .saturating_add(lookahead)
        .min(from.saturating_add(FORGE_ROUNDS_PER_STEP - 1));
    if from <= to {
        memory.forged_to = (epoch.0, to);
    }
    let junk: BlsSignature = key.sign(b"banyan/sim/impersonator/junk");
    for r in from..=to {
        let vote_data = VoteData {
            chain,
            epoch,
            round: Round(r),
            height: Height(r),
            block: hash(Domain::Custom("banyan/sim/forged"), &r.to_le_bytes()),
        };
        let timeout_data = TimeoutData {
            chain,
            epoch,
            round: Round(r),
            high_qc_round: Round(0),
        };
        // Signed with its own key: a valid signature, of the wrong member.
        let own_vote = key.sign(vote_data.signing_message().as_bytes());
        let own_timeout = key.sign(timeout_data.signing_message().as_bytes());
        for j in (0..n).filter(|&j| j != me) {
            let replayed = memory.observed.iter().find_map(|m| match m {
                Message::Vote(v) if v.signer as usize == j => Some(v.signature),
                Message::Timeout(t) if t.signer as usize == j => Some(t.signature),
                _ => None,
            });
            let mut pick = |own: BlsSignature| match rng.gen_range(0..3) {
                0 => own,
                1 => replayed.unwrap_or(junk),
                _ => junk,
            };
            out.push(Output::Broadcast(Message::Vote(Box::new(Vote {
                data: vote_data,
                signer: j as u16,
                signature: pick(own_vote),
                proposal_signature: junk,
            }))));
            out.push(Output::Broadcast(Message::Timeout(Box::new(Timeout {
                data: timeout_data,
                high_qc: None,
                last_tc: None,
                signer: j as u16,
                signature: pick(own_timeout),
            }))));
        }
    }
    // Replays of genuine messages, under their signers' indices.
    for m in memory.observed.iter().rev().take(4) {
        out.push(Output::Broadcast(m.clone()));
    }
}

fn one_signer(
    n: usize,
    me: usize,
) -> Result<SignerBitmap, banyan_core::certificate::CertificateError> {
    let mut bits = vec![0u8; n.div_ceil(8)];
    bits[me / 8] |= 1 << (me % 8);
    SignerBitmap::from_parts(n as u16, bits)
}
