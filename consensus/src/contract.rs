//! Contract suites for the boundary traits: what every implementation must pass. Each
//! implementation's tests run the same suite (in memory and the simulator's storage here,
//! RocksDB in `banyan-chain`), so "meets the contract" means one thing everywhere.
//!
//! A suite returns the first clause an implementation breaks as a [`ContractViolation`]
//! rather than panicking: it is library code, and the caller's test decides how to fail.

use banyan_core::certificate::VoteData;
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::ids::{ChainId, Epoch, Height, Round};

use crate::safety::{SafetyData, SafetyRules, SafetyStorage};
use crate::sim::member_key;
use crate::types::TimeoutData;

/// A clause of a contract an implementation broke.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("contract broken: {0}")]
pub struct ContractViolation(pub String);

fn check(ok: bool, clause: &str) -> Result<(), ContractViolation> {
    if ok {
        Ok(())
    } else {
        Err(ContractViolation(clause.to_string()))
    }
}

fn broken(clause: &str, e: impl std::fmt::Display) -> ContractViolation {
    ContractViolation(format!("{clause}: {e}"))
}

fn vote(chain: ChainId, round: u64, block: &str) -> VoteData {
    VoteData {
        chain,
        epoch: Epoch(0),
        round: Round(round),
        height: Height(round),
        block: hash(Domain::Custom("banyan/contract"), block.as_bytes()),
    }
}

/// The [`SafetyStorage`] contract. `make` gives a fresh, empty storage each call, whose clones
/// share one disk (a clone stands for the same validator after a restart); `chain` is the
/// chain the storage is for.
///
/// Clauses: a fresh storage loads nothing; a load returns exactly the last data stored (every
/// field); a later store replaces an earlier one; and, through [`SafetyRules`], a validator
/// restarted on the same storage refuses to sign a second vote or proposal for a round it
/// already signed in, signs the next round, and starts a new epoch from clean data.
pub fn safety_storage<S>(chain: ChainId, make: impl Fn() -> S) -> Result<(), ContractViolation>
where
    S: SafetyStorage + Clone + 'static,
{
    // Round trip of every field, then an overwrite.
    let mut disk = make();
    let first = disk
        .load()
        .map_err(|e| broken("a fresh storage loads", e))?;
    check(first.is_none(), "a fresh storage loads nothing")?;
    let full = SafetyData {
        epoch: Epoch(3),
        last_voted_round: Round(41),
        last_proposed_round: Round(40),
        one_chain_round: Round(39),
        last_vote: Some(vote(chain, 41, "full")),
        last_timeout: Some(TimeoutData {
            chain,
            epoch: Epoch(3),
            round: Round(41),
            high_qc_round: Round(39),
        }),
        last_proposal: Some((Round(40), Digest([7; 32]))),
    };
    disk.store(&full)
        .map_err(|e| broken("storing safety data succeeds", e))?;
    let loaded = disk.load().map_err(|e| broken("a load after a store", e))?;
    check(
        loaded.as_ref() == Some(&full),
        "a load returns exactly the data last stored",
    )?;
    let reloaded = disk
        .clone()
        .load()
        .map_err(|e| broken("a load through a clone", e))?;
    check(
        reloaded.as_ref() == Some(&full),
        "a clone (the same validator restarted) loads the same data",
    )?;
    let later = SafetyData {
        last_voted_round: Round(42),
        last_vote: Some(vote(chain, 42, "later")),
        ..full
    };
    disk.store(&later)
        .map_err(|e| broken("a second store succeeds", e))?;
    let loaded = disk
        .load()
        .map_err(|e| broken("a load after a second store", e))?;
    check(
        loaded.as_ref() == Some(&later),
        "a later store replaces an earlier one",
    )?;

    // Through the safety rules: promises survive a restart.
    let disk = make();
    {
        let mut rules = SafetyRules::new(chain, Epoch(0), member_key(0), Box::new(disk.clone()))
            .map_err(|e| broken("safety rules open on a fresh storage", e))?;
        rules
            .sign_vote(vote(chain, 4, "a"), Round(3), None)
            .map_err(|e| broken("a first vote is signed", e))?;
        rules
            .sign_proposal(Epoch(0), Round(5), Digest::ZERO)
            .map_err(|e| broken("a first proposal is signed", e))?;
    }
    let mut rules = SafetyRules::new(chain, Epoch(0), member_key(0), Box::new(disk.clone()))
        .map_err(|e| broken("safety rules reopen on the same storage", e))?;
    check(
        rules.data().last_voted_round == Round(4),
        "a restarted validator remembers the round it voted in",
    )?;
    check(
        rules
            .sign_vote(vote(chain, 4, "b"), Round(3), None)
            .is_err(),
        "a restarted validator refuses a second vote for a round it voted in",
    )?;
    check(
        rules
            .sign_proposal(Epoch(0), Round(5), Digest([9; 32]))
            .is_err(),
        "a restarted validator refuses a second proposal for a round it proposed in",
    )?;
    rules
        .sign_vote(vote(chain, 5, "c"), Round(4), None)
        .map_err(|e| broken("a restarted validator votes in the next round", e))?;
    let fresh = SafetyRules::new(chain, Epoch(1), member_key(0), Box::new(disk))
        .map_err(|e| broken("safety rules open for the next epoch", e))?;
    check(
        fresh.data().epoch == Epoch(1) && fresh.data().last_voted_round == Round(0),
        "data of an older epoch is not carried into a new one",
    )?;
    Ok(())
}
