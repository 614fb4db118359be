//! Byzantine validators: an honest replica whose outputs are tampered with before they leave,
//! one behaviour per attack (commonware-style mocks).

use banyan_core::certificate::SignerBitmap;
use banyan_core::hash::{hash, Domain};
use banyan_core::ids::Round;
use banyan_core::keys::BlsSecretKey;
use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::replica::Output;
use crate::types::{proposal_message, Message, Timeout, TimeoutData};

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
    /// Two nodes share this validator's key and run the protocol independently.
    Twin,
}

impl Behavior {
    /// Every Byzantine behaviour.
    pub const BYZANTINE: [Behavior; 8] = [
        Behavior::EquivocatingLeader,
        Behavior::DoubleVote,
        Behavior::BadSignatureVotes,
        Behavior::WithheldVotes,
        Behavior::StaleRoundSpam,
        Behavior::InvalidQc,
        Behavior::ClockSkew,
        Behavior::Twin,
    ];

    /// Whether the validator follows the protocol.
    pub fn is_honest(self) -> bool {
        self == Behavior::Honest
    }
}

/// Most old messages a spammer keeps to replay.
const SPAM_HISTORY: usize = 32;

/// Tamper with `outputs` of member `me` (whose key is `key`) according to `behavior`.
/// `history` holds messages sent earlier (for replays).
pub fn tamper(
    behavior: Behavior,
    me: usize,
    n: usize,
    key: &BlsSecretKey,
    outputs: Vec<Output>,
    history: &mut Vec<Message>,
    rng: &mut ChaCha8Rng,
) -> Vec<Output> {
    let mut out = Vec::with_capacity(outputs.len());
    for o in outputs {
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
            (_, o) => out.push(o),
        }
    }
    out
}

fn one_signer(
    n: usize,
    me: usize,
) -> Result<SignerBitmap, banyan_core::certificate::CertificateError> {
    let mut bits = vec![0u8; n.div_ceil(8)];
    bits[me / 8] |= 1 << (me % 8);
    SignerBitmap::from_parts(n as u16, bits)
}
