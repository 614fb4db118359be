//! Invariant checkers: one block per height, no double signing, progress after GST.

use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::ids::{Epoch, Height, Round};
use std::collections::HashMap;

use crate::types::Message;

/// A safety violation: two honest validators committed different blocks at one height.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fork {
    /// The height.
    pub height: Height,
    /// First block committed there, and by which node.
    pub first: (Digest, usize),
    /// The conflicting one, and by which node.
    pub second: (Digest, usize),
}

/// Checks that honest commits agree at every height.
#[derive(Debug, Default)]
pub struct SafetyChecker {
    by_height: HashMap<Height, (Digest, usize)>,
    /// Every conflict found.
    pub forks: Vec<Fork>,
}

impl SafetyChecker {
    /// Record that honest `node` committed `block` at `height`.
    pub fn record(&mut self, node: usize, height: Height, block: Digest) {
        match self.by_height.get(&height) {
            Some(&(b, n)) if b != block => self.forks.push(Fork {
                height,
                first: (b, n),
                second: (block, node),
            }),
            Some(_) => {}
            None => {
                self.by_height.insert(height, (block, node));
            }
        }
    }

    /// Whether no conflict was found.
    pub fn is_safe(&self) -> bool {
        self.forks.is_empty()
    }
}

/// The kind of a signed consensus message.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SignedKind {
    /// A proposal.
    Proposal,
    /// A vote.
    Vote,
    /// A timeout.
    Timeout,
}

/// A validator signed two different messages of one kind for one round of one epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DoubleSign {
    /// Committee index.
    pub signer: usize,
    /// Kind.
    pub kind: SignedKind,
    /// Round.
    pub round: Round,
}

/// Watches every message an honest validator signs (sent or not).
#[derive(Debug, Default)]
pub struct DoubleSignDetector {
    seen: HashMap<(usize, SignedKind, Epoch, Round), Digest>,
    /// Every double signature found.
    pub double_signs: Vec<DoubleSign>,
}

impl DoubleSignDetector {
    /// Record `msg` if it is a message signed by `signer`.
    pub fn record(&mut self, signer: usize, msg: &Message) {
        let (kind, round, content) = match msg {
            Message::Proposal(p) => (SignedKind::Proposal, p.round(), p.block.header.id()),
            Message::Vote(v) if v.signer as usize == signer => {
                (SignedKind::Vote, v.data.round, v.data.block)
            }
            Message::Timeout(t) if t.signer as usize == signer => (
                SignedKind::Timeout,
                t.data.round,
                hash(
                    Domain::Custom("banyan/sim/timeout"),
                    t.data.signing_message().as_bytes(),
                ),
            ),
            _ => return,
        };
        let epoch = msg.epoch().unwrap_or_default();
        match self.seen.get(&(signer, kind, epoch, round)) {
            Some(d) if *d != content => self.double_signs.push(DoubleSign {
                signer,
                kind,
                round,
            }),
            Some(_) => {}
            None => {
                self.seen.insert((signer, kind, epoch, round), content);
            }
        }
    }
}
