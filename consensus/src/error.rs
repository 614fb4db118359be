//! Why the consensus engine refused an input.

use banyan_core::certificate::CertificateError;
use banyan_core::codec::CodecError;
use banyan_core::ids::{ChainId, Epoch, Round};

/// Why a message, a timer or a storage call could not be processed. Every error caused by a
/// message from the network means that message was dropped and changed nothing that matters for
/// safety; only [`ConsensusError::Storage`], [`ConsensusError::ConflictingCommit`] and
/// [`ConsensusError::AppFailed`] are fatal (see [`ConsensusError::is_fatal`]).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ConsensusError {
    /// A signer index outside the committee.
    #[error("signer {index} is outside a committee of {size}")]
    UnknownSigner {
        /// The index.
        index: usize,
        /// Committee size.
        size: usize,
    },
    /// A message for another chain.
    #[error("message for chain {got}, this replica runs chain {expected}")]
    WrongChain {
        /// This replica's chain.
        expected: ChainId,
        /// The message's chain.
        got: ChainId,
    },
    /// A message for another epoch.
    #[error("message for epoch {got}, the current epoch is {current}")]
    WrongEpoch {
        /// The current epoch.
        current: Epoch,
        /// The message's epoch.
        got: Epoch,
    },
    /// A message for a round that is over.
    #[error("stale message for round {round}, the current round is {current}")]
    StaleRound {
        /// The message's round.
        round: Round,
        /// The current round.
        current: Round,
    },
    /// A message for a round too far ahead to be buffered.
    #[error("message for round {round} is more than {max_rounds} rounds ahead of round {current}")]
    FutureRound {
        /// The message's round.
        round: Round,
        /// The current round.
        current: Round,
        /// The look-ahead limit.
        max_rounds: u64,
    },
    /// A signature that does not verify.
    #[error("bad signature on {0}")]
    BadSignature(&'static str),
    /// A quorum or timeout certificate that does not verify.
    #[error("invalid certificate: {0}")]
    Certificate(#[from] CertificateError),
    /// A certificate whose content is inconsistent with the message carrying it.
    #[error("inconsistent certificate: {0}")]
    InconsistentCertificate(String),
    /// A proposal from a validator that does not lead its round.
    #[error("proposer is not the leader of round {round}: {reason}")]
    NotLeader {
        /// The round.
        round: Round,
        /// Why.
        reason: String,
    },
    /// A vote or timeout signed under another member's index than its authenticated sender.
    /// Votes and timeouts travel only from their signer (never relayed), so this is a forgery
    /// or a replay: dropped before it takes the signer's slot.
    #[error("{kind} signed under member {signer} arrived from member {from}")]
    Impersonation {
        /// What was forged.
        kind: &'static str,
        /// The index it claims.
        signer: usize,
        /// The authenticated sender.
        from: usize,
    },
    /// A peer asked for more than its budget (of sync responses per second).
    #[error("{what} from member {from} over its budget of {per_sec} per second")]
    RateLimited {
        /// What was asked.
        what: &'static str,
        /// The peer.
        from: usize,
        /// The budget.
        per_sec: u64,
    },
    /// A vote sent to a validator that does not lead the next round.
    #[error("vote for round {0} sent to a validator that does not lead round {0} + 1")]
    NotNextLeader(Round),
    /// A malformed proposal.
    #[error("invalid proposal: {0}")]
    InvalidProposal(String),
    /// A proposal stamped too far in the future.
    #[error("proposal stamped {timestamp_ms} ms, beyond local time {now_ms} ms + drift {max_drift_ms} ms")]
    ClockDrift {
        /// The header's timestamp.
        timestamp_ms: u64,
        /// Local time.
        now_ms: u64,
        /// Allowed drift.
        max_drift_ms: u64,
    },
    /// The safety rules refuse to sign.
    #[error("safety rules refuse to sign: {0}")]
    Unsafe(String),
    /// The application refused a payload.
    #[error("application refused the payload: {0}")]
    Payload(String),
    /// The application cannot go on (see [`crate::app::AppError::Fatal`]).
    #[error("application failed: {0}")]
    AppFailed(String),
    /// A sync response with blocks nobody asked for or that do not link up.
    #[error("invalid sync response: {0}")]
    Sync(String),
    /// A message already processed.
    #[error("duplicate message")]
    Duplicate,
    /// This replica's epoch is over; the driver must start the next epoch's replica.
    #[error("epoch {0} is over")]
    EpochOver(Epoch),
    /// A message could not be decoded.
    #[error("undecodable message: {0}")]
    Codec(#[from] CodecError),
    /// Durable storage failed: the replica must stop (it may have lost a safety write).
    #[error("storage failure: {0}")]
    Storage(String),
    /// A certified chain conflicts with what this replica already committed: more than a third
    /// of the stake is Byzantine. The replica stops committing.
    #[error("a quorum certified a block conflicting with committed block at height {0}")]
    ConflictingCommit(u64),
}

impl ConsensusError {
    /// The error's variant name (`StaleRound`, `BadSignature`, ...), for counting rejections.
    pub fn kind(&self) -> String {
        // The variant name: a fixed set, so fit for a bounded metric label.
        let s = format!("{self:?}");
        s.split(['(', ' ', '{'])
            .next()
            .unwrap_or("Other")
            .to_string()
    }

    /// Whether the replica cannot continue (storage lost a write, or the committed chain
    /// forked). All other errors only drop the offending input.
    pub fn is_fatal(&self) -> bool {
        matches!(
            self,
            ConsensusError::Storage(_)
                | ConsensusError::ConflictingCommit(_)
                | ConsensusError::AppFailed(_)
        )
    }
}

/// A durable storage failure.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
#[error("storage: {0}")]
pub struct StorageError(pub String);

impl From<StorageError> for ConsensusError {
    fn from(e: StorageError) -> Self {
        ConsensusError::Storage(e.0)
    }
}

impl From<banyan_core::header::CertifiedHeaderError> for ConsensusError {
    fn from(e: banyan_core::header::CertifiedHeaderError) -> Self {
        use banyan_core::header::CertifiedHeaderError as E;
        match e {
            E::Certificate(c) => ConsensusError::Certificate(c),
            E::NotACommit(why) => ConsensusError::InconsistentCertificate(why.into()),
        }
    }
}

impl From<crate::app::AppError> for ConsensusError {
    fn from(e: crate::app::AppError) -> Self {
        match e {
            crate::app::AppError::Invalid(why) => ConsensusError::Payload(why),
            crate::app::AppError::Fatal(why) => ConsensusError::AppFailed(why),
        }
    }
}
