//! The safety rules on their own (aptos safety-rules style), and one test suite run against
//! every `SafetyStorage` implementation.

use banyan_consensus::sim::{member_key, SimStorage};
use banyan_consensus::{
    contract, ConsensusError, MemorySafetyStorage, SafetyData, SafetyRules, SafetyStorage,
    StorageError,
};
use banyan_core::certificate::VoteData;
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::ids::{ChainId, Epoch, Height, Round};

fn vote(round: u64, block: &str) -> VoteData {
    VoteData {
        chain: ChainId::MAIN,
        epoch: Epoch(0),
        round: Round(round),
        height: Height(round),
        block: hash(Domain::Custom("test"), block.as_bytes()),
    }
}

fn rules(storage: impl SafetyStorage + 'static) -> SafetyRules {
    SafetyRules::new(ChainId::MAIN, Epoch(0), member_key(0), Box::new(storage)).expect("rules")
}

#[test]
fn votes_follow_the_2_chain_rule() {
    let mut s = rules(MemorySafetyStorage::default());
    // Round 1 extends genesis (round 0) directly.
    s.sign_vote(vote(1, "a"), Round(0), None).expect("direct");
    // Not twice in a round, not backwards.
    assert!(matches!(
        s.sign_vote(vote(1, "b"), Round(0), None),
        Err(ConsensusError::Unsafe(_))
    ));
    // Round 3 extending a QC of round 1 needs a TC of round 2...
    assert!(s.sign_vote(vote(3, "c"), Round(1), None).is_err());
    // ...whose highest high-QC round the block's QC reaches.
    assert!(s
        .sign_vote(vote(3, "c"), Round(1), Some((Round(2), Round(2))))
        .is_err());
    s.sign_vote(vote(3, "c"), Round(1), Some((Round(2), Round(1))))
        .expect("via TC");
    assert_eq!(s.data().last_voted_round, Round(3));
    assert_eq!(s.data().one_chain_round, Round(1));
}

#[test]
fn the_same_vote_is_signed_again_identically() {
    let mut s = rules(MemorySafetyStorage::default());
    let a = s.sign_vote(vote(1, "a"), Round(0), None).expect("vote");
    let b = s
        .sign_vote(vote(1, "a"), Round(0), None)
        .expect("same vote");
    assert_eq!(a, b);
}

#[test]
fn timeouts_are_never_signed_twice_differently() {
    let mut s = rules(MemorySafetyStorage::default());
    let (d1, s1) = s
        .sign_timeout(Epoch(0), Round(1), Round(0), None)
        .expect("timeout");
    // Re-broadcast after learning more: the same data and signature.
    let (d2, s2) = s
        .sign_timeout(Epoch(0), Round(1), Round(0), None)
        .expect("again");
    assert_eq!((d1, s1), (d2, s2));
    // No vote in a round after timing out in it.
    assert!(s.sign_vote(vote(1, "a"), Round(0), None).is_err());
    // A timeout must follow its high QC or a TC.
    assert!(s.sign_timeout(Epoch(0), Round(5), Round(0), None).is_err());
    s.sign_timeout(Epoch(0), Round(5), Round(0), Some(Round(4)))
        .expect("after a TC");
    // Not below its 1-chain round.
    s.sign_vote(vote(6, "x"), Round(5), None).expect("vote");
    assert!(s
        .sign_timeout(Epoch(0), Round(7), Round(4), Some(Round(6)))
        .is_err());
}

#[test]
fn proposals_once_per_round() {
    let mut s = rules(MemorySafetyStorage::default());
    s.sign_proposal(Epoch(0), Round(1), Digest::ZERO)
        .expect("first");
    assert!(s
        .sign_proposal(Epoch(0), Round(1), Digest([1; 32]))
        .is_err());
}

/// A storage that fails every write.
#[derive(Default)]
struct Broken;

impl SafetyStorage for Broken {
    fn load(&self) -> Result<Option<SafetyData>, StorageError> {
        Ok(None)
    }
    fn store(&mut self, _: &SafetyData) -> Result<(), StorageError> {
        Err(StorageError("disk full".into()))
    }
}

#[test]
fn nothing_is_signed_unless_persisted() {
    let mut s = rules(Broken);
    let e = s
        .sign_vote(vote(1, "a"), Round(0), None)
        .expect_err("no write, no vote");
    assert!(e.is_fatal());
    assert_eq!(s.data().last_voted_round, Round(0));
    assert!(s.sign_proposal(Epoch(0), Round(1), Digest::ZERO).is_err());
    assert!(s.sign_timeout(Epoch(0), Round(1), Round(0), None).is_err());
}

#[test]
fn memory_storage_meets_the_contract() {
    let verdict = contract::safety_storage(ChainId::MAIN, MemorySafetyStorage::default);
    assert_eq!(verdict, Ok(()));
}

#[test]
fn simulator_storage_meets_the_contract() {
    let verdict = contract::safety_storage(ChainId::MAIN, SimStorage::default);
    assert_eq!(verdict, Ok(()));
}

/// A storage that forgets what it was told: the suite must catch it.
#[derive(Clone, Default)]
struct Forgetful;

impl SafetyStorage for Forgetful {
    fn load(&self) -> Result<Option<SafetyData>, StorageError> {
        Ok(None)
    }
    fn store(&mut self, _: &SafetyData) -> Result<(), StorageError> {
        Ok(())
    }
}

#[test]
fn the_contract_catches_a_storage_that_forgets() {
    let verdict = contract::safety_storage(ChainId::MAIN, || Forgetful);
    let e = verdict.expect_err("a storage that loads nothing breaks the contract");
    assert!(e.0.contains("exactly the data last stored"), "{e}");
}
