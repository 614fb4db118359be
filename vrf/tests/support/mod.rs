//! Keys, validator sets and statistics shared by the test files.
#![allow(dead_code)]

use banyan_core::certificate::CommitteeMember;
use banyan_core::hash::{hash, Domain};
use banyan_core::keys::{BlsSecretKey, PopVerifiedKey};
use banyan_vrf::{EpochSeed, ValidatorSet};
use std::sync::{Mutex, OnceLock};

/// The secret key of test validator `i`: seed bytes `i u64 LE || 0x5a * 24`.
pub fn secret(i: usize) -> BlsSecretKey {
    let mut ikm = [0x5au8; 32];
    ikm[..8].copy_from_slice(&(i as u64).to_le_bytes());
    BlsSecretKey::from_seed(&ikm).expect("32-byte seed")
}

/// The secret key from the seed `[n; 32]` (golden vectors).
pub fn golden_secret(n: u8) -> BlsSecretKey {
    BlsSecretKey::from_seed(&[n; 32]).expect("32-byte seed")
}

/// The possession-checked public key of a secret key.
pub fn verified(sk: &BlsSecretKey) -> PopVerifiedKey {
    sk.prove_possession()
        .verify(&sk.public_key())
        .expect("own proof of possession verifies")
}

/// Verified keys of test validators `0..n` (checking a proof of possession costs a pairing,
/// so they are made once per test binary).
pub fn keys(n: usize) -> Vec<PopVerifiedKey> {
    static CACHE: OnceLock<Mutex<Vec<PopVerifiedKey>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(|| Mutex::new(Vec::new()))
        .lock()
        .expect("no test panicked while holding the key cache");
    while cache.len() < n {
        let i = cache.len();
        cache.push(verified(&secret(i)));
    }
    cache[..n].to_vec()
}

/// Validators `0..n` with `stake(i)`.
pub fn validator_set(n: usize, stake: impl Fn(usize) -> u64) -> ValidatorSet {
    members(&(0..n).collect::<Vec<_>>(), stake)
}

/// The validator set of the test validators `ids`, with `stake(id)`.
pub fn members(ids: &[usize], stake: impl Fn(usize) -> u64) -> ValidatorSet {
    let max = ids.iter().copied().max().map_or(0, |m| m + 1);
    let all = keys(max);
    ValidatorSet::new(
        ids.iter()
            .map(|&i| CommitteeMember {
                key: all[i],
                stake: stake(i),
            })
            .collect(),
    )
    .expect("valid test validator set")
}

/// A fixed seed per label and index.
pub fn seed(label: &str, i: u64) -> EpochSeed {
    let mut data = label.as_bytes().to_vec();
    data.extend_from_slice(&i.to_le_bytes());
    EpochSeed(hash(Domain::Custom("banyan/vrf/test-seed"), &data).0)
}

/// Pearson's chi-square statistic of `observed` against `expected`.
pub fn chi_square(observed: &[u64], expected: &[f64]) -> f64 {
    observed
        .iter()
        .zip(expected)
        .map(|(&o, &e)| {
            let d = o as f64 - e;
            d * d / e
        })
        .sum()
}

/// The chi-square value exceeded with probability 0.001 at `df` degrees of freedom
/// (Wilson–Hilferty approximation, accurate to a fraction of a percent for df >= 3).
pub fn chi_square_critical_999(df: usize) -> f64 {
    let k = df as f64;
    let z = 3.090_232; // upper 0.001 quantile of the standard normal
    let a = 2.0 / (9.0 * k);
    k * (1.0 - a + z * a.sqrt()).powi(3)
}

use banyan_core::ids::ChainId;
use banyan_vrf::{Assignment, SortitionParams};
use std::collections::{BTreeMap, BTreeSet};

/// Check every rule of an assignment that can be checked from the outside, with no knowledge
/// of the draw: chain order, seat counts, distinct members with their current stake, no
/// validator twice in one epoch when validators suffice, and the rotation bound against the
/// previous assignment (exact when the previous epoch had enough validators and the same
/// committee size: then every previous member who stayed in the set and left its committee was
/// rotated out by choice).
pub fn check_assignment(
    a: &Assignment,
    validators: &ValidatorSet,
    sidechains: &[ChainId],
    params: &SortitionParams,
    previous: Option<&Assignment>,
) {
    let mut chains: Vec<ChainId> = sidechains.to_vec();
    chains.sort();
    chains.insert(0, ChainId::MAIN);
    let got: Vec<ChainId> = a.committees().iter().map(|c| c.chain()).collect();
    assert_eq!(got, chains, "chain order");

    let n = validators.len();
    let seats = params.committee_size.min(n);
    let enough = n >= chains.len() * params.committee_size;
    assert_eq!(a.shared_seats(), !enough, "shared_seats flag");

    let stake_of: BTreeMap<_, _> = validators
        .members()
        .iter()
        .map(|m| (m.key, m.stake))
        .collect();
    let mut load: BTreeMap<_, usize> = BTreeMap::new();
    for c in a.committees() {
        assert_eq!(c.members().len(), seats, "chain {} seats", c.chain());
        assert!(
            c.members().windows(2).all(|w| w[0].key < w[1].key),
            "chain {}: members distinct and in key order",
            c.chain()
        );
        for m in c.members() {
            assert_eq!(
                stake_of.get(&m.key),
                Some(&m.stake),
                "member with current stake"
            );
            *load.entry(m.key).or_default() += 1;
        }
    }
    let max_load = load.values().copied().max().unwrap_or(0);
    assert_eq!(a.max_committees_per_validator(), max_load);
    if enough {
        assert_eq!(
            max_load, 1,
            "no validator in two committees when validators suffice"
        );
    }

    let Some(prev) = previous else {
        for c in a.committees() {
            assert_eq!(c.stats().joined, seats);
            assert_eq!(c.stats().kept, 0);
        }
        return;
    };
    let budget = params.rotation_budget();
    for c in a.committees() {
        let st = c.stats();
        let now: BTreeSet<_> = c.members().iter().map(|m| m.key).collect();
        let Some(pc) = prev.committee(c.chain()) else {
            assert_eq!(st.joined, seats, "a new chain is drawn afresh");
            continue;
        };
        let before: BTreeSet<_> = pc.members().iter().map(|m| m.key).collect();
        let kept = now.intersection(&before).count();
        let left_set = before.iter().filter(|k| !stake_of.contains_key(k)).count();
        assert_eq!(st.kept, kept, "chain {} kept", c.chain());
        assert_eq!(st.joined, seats - kept, "chain {} joined", c.chain());
        assert_eq!(st.kept + st.departed + st.rotated_out, before.len());
        assert!(st.departed >= left_set, "whoever left the set departed");
        assert!(
            st.rotated_out <= budget.saturating_sub(st.departed),
            "chain {}: {} rotated by choice with budget {budget} and {} departed",
            c.chain(),
            st.rotated_out,
            st.departed
        );
        if !prev.shared_seats() && before.len() == seats {
            // Seats that changed: at most the budget, unless departures force more.
            assert!(st.joined <= budget.max(st.departed));
            assert_eq!(st.departed, left_set);
        }
        if enough {
            // Those rotated out by choice sit this epoch out everywhere.
            for k in before
                .iter()
                .filter(|k| stake_of.contains_key(k) && !now.contains(k))
            {
                if !prev.shared_seats() && before.len() == seats {
                    assert!(a.chains_of(k).is_empty(), "a rotated-out member sits out");
                }
            }
        }
    }
}
