//! The crate's one error type.

use banyan_core::certificate::CertificateError;
use banyan_core::ids::{ChainId, Epoch, Height, Round, ValidatorId};

/// Why a proof, a seed contribution or a sortition input was refused.
///
/// Every variant is a rejection of bad input: nothing in this crate holds state, so no error
/// leaves anything half-done and none is fatal to the caller. Callers drop the offending
/// header, transaction or configuration and carry on.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VrfError {
    /// A VRF input longer than [`crate::vrf::MAX_VRF_INPUT_BYTES`].
    #[error("VRF input of {len} bytes exceeds the limit of {max} bytes")]
    InputTooLong {
        /// Input length.
        len: usize,
        /// The limit.
        max: usize,
    },
    /// The proof is not the VRF proof of this input under this key.
    #[error("VRF proof does not verify")]
    BadProof,
    /// A header that should carry a VRF proof carries none.
    #[error("header carries no VRF proof")]
    MissingProof,
    /// The key given is not the header's proposer.
    #[error("header names proposer {header}, the key given is {key}")]
    ProposerMismatch {
        /// The proposer the header names.
        header: ValidatorId,
        /// The id of the key given.
        key: ValidatorId,
    },
    /// The header's proposer is not the scheduled leader of its round.
    #[error("round {round}: scheduled leader is {expected}, header names {got}")]
    NotLeader {
        /// The round.
        round: Round,
        /// The scheduled leader.
        expected: ValidatorId,
        /// The proposer named by the header.
        got: ValidatorId,
    },
    /// A header of another chain than the schedule's.
    #[error("header is of chain {got}, the schedule is of chain {expected}")]
    WrongChain {
        /// The schedule's chain.
        expected: ChainId,
        /// The header's chain.
        got: ChainId,
    },
    /// A header or a previous assignment of another epoch than expected.
    #[error("expected epoch {expected}, got epoch {got}")]
    WrongEpoch {
        /// The epoch expected.
        expected: Epoch,
        /// The epoch given.
        got: Epoch,
    },
    /// A validator set with no validator.
    #[error("validator set is empty")]
    EmptyValidatorSet,
    /// More validators than [`crate::validators::MAX_VALIDATORS`].
    #[error("{got} validators exceed the limit of {max}")]
    TooManyValidators {
        /// Validators given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A validator with no stake.
    #[error("validator {0} has zero stake")]
    ZeroStake(String),
    /// The same key twice in a validator set.
    #[error("validator {0} appears twice")]
    DuplicateValidator(String),
    /// More sidechains than [`crate::sortition::MAX_SIDECHAINS`].
    #[error("{got} sidechains exceed the limit of {max}")]
    TooManySidechains {
        /// Sidechains given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// The same sidechain listed twice.
    #[error("sidechain {0} is listed twice")]
    DuplicateSidechain(ChainId),
    /// The main chain listed among the sidechains.
    #[error("the main chain cannot be listed as a sidechain")]
    MainChainAsSidechain,
    /// A committee size outside `1..=MAX_COMMITTEE_SIZE`.
    #[error("committee size {got} is outside 1..={max}")]
    BadCommitteeSize {
        /// Size given.
        got: usize,
        /// The limit.
        max: usize,
    },
    /// A rotation fraction that is not `num/den` with `0 <= num <= den` and `den > 0`.
    #[error("rotation fraction {num}/{den} is not within [0, 1]")]
    BadRotationFraction {
        /// Numerator.
        num: u32,
        /// Denominator.
        den: u32,
    },
    /// More seed contributions asked for than [`crate::seed::MAX_SEED_CONTRIBUTIONS`], or none.
    #[error("{got} seed contributions per epoch is outside 1..={max}")]
    BadSeedContributions {
        /// Contributions asked for.
        got: u32,
        /// The limit.
        max: u32,
    },
    /// Seed contributions must come in strictly increasing height order.
    #[error("seed contribution at height {got} does not follow height {last}")]
    SeedHeightOrder {
        /// The last height accepted.
        last: Height,
        /// The height offered.
        got: Height,
    },
    /// The previous assignment given to a sortition is not of the epoch before.
    #[error("previous assignment is of epoch {previous}, not of the epoch before {epoch}")]
    PreviousEpoch {
        /// The epoch being drawn.
        epoch: Epoch,
        /// The previous assignment's epoch.
        previous: Epoch,
    },
    /// A chain that has no committee in the assignment.
    #[error("chain {0} has no committee in this assignment")]
    UnknownChain(ChainId),
    /// A committee could not be built (see [`CertificateError`]).
    #[error("committee: {0}")]
    Committee(#[from] CertificateError),
}
