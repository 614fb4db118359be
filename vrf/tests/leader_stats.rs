//! Leader frequency is proportional to stake: chi-square tests over 100,000+ rounds with
//! fixed seeds (deterministic: the same draws on every run).

mod support;

use banyan_core::certificate::{Committee, CommitteeMember};
use banyan_core::ids::{ChainId, Epoch, Round};
use banyan_vrf::LeaderSchedule;
use support::*;

const ROUNDS: u64 = 120_000;

fn frequencies(stakes: &[u64], label: &str) -> (Vec<u64>, Vec<f64>) {
    let keys = keys(stakes.len());
    let members = keys
        .iter()
        .zip(stakes)
        .map(|(&key, &stake)| CommitteeMember { key, stake })
        .collect();
    let committee = Committee::new(Epoch(2), members).expect("valid committee");
    let schedule = LeaderSchedule::new(ChainId(1), seed(label, 0), &committee);
    let mut counts = vec![0u64; stakes.len()];
    for r in 0..ROUNDS {
        counts[schedule.leader_index(Round(r))] += 1;
    }
    let total: u128 = stakes.iter().map(|&s| s as u128).sum();
    let expected = stakes
        .iter()
        .map(|&s| ROUNDS as f64 * (s as f64 / total as f64))
        .collect();
    (counts, expected)
}

#[test]
fn leader_frequency_is_proportional_to_stake() {
    let stakes: Vec<u64> = (1..=16).collect();
    let (counts, expected) = frequencies(&stakes, "leader-linear");
    let chi = chi_square(&counts, &expected);
    let bound = chi_square_critical_999(stakes.len() - 1);
    assert!(chi < bound, "chi-square {chi:.1} >= {bound:.1}: {counts:?}");
}

#[test]
fn leader_frequency_holds_with_stakes_near_u64_max() {
    // Sums beyond u64 exercise the u128 draw; a few small stakes sit beside huge ones.
    let mut stakes: Vec<u64> = (1..=12).map(|k| (u64::MAX / 16) * k).collect();
    stakes.extend([u64::MAX, u64::MAX - 1, 1 << 62, 3 << 61]);
    let (counts, expected) = frequencies(&stakes, "leader-huge");
    let chi = chi_square(&counts, &expected);
    let bound = chi_square_critical_999(stakes.len() - 1);
    assert!(chi < bound, "chi-square {chi:.1} >= {bound:.1}: {counts:?}");
}

#[test]
fn a_tiny_stake_next_to_a_huge_one_is_almost_never_drawn() {
    let (counts, _) = frequencies(&[u64::MAX, 1], "leader-tiny");
    // Probability 2^-64 per round.
    assert_eq!(counts, vec![ROUNDS, 0]);
}

#[test]
fn equal_stakes_give_a_uniform_schedule_and_every_member_leads() {
    let stakes = vec![1_000u64; 100];
    let (counts, expected) = frequencies(&stakes, "leader-uniform");
    assert!(counts.iter().all(|&c| c > 0));
    let chi = chi_square(&counts, &expected);
    let bound = chi_square_critical_999(stakes.len() - 1);
    assert!(chi < bound, "chi-square {chi:.1} >= {bound:.1}");
}

#[test]
fn schedules_differ_across_seeds_chains_and_epochs() {
    let keys = keys(32);
    let members: Vec<CommitteeMember> = keys
        .iter()
        .map(|&key| CommitteeMember { key, stake: 5 })
        .collect();
    let e2 = Committee::new(Epoch(2), members.clone()).expect("valid");
    let e3 = Committee::new(Epoch(3), members).expect("valid");
    let run = |s: &LeaderSchedule| {
        (0..64)
            .map(|r| s.leader_index(Round(r)))
            .collect::<Vec<_>>()
    };
    let base = run(&LeaderSchedule::new(ChainId(1), seed("x", 0), &e2));
    assert_eq!(
        base,
        run(&LeaderSchedule::new(ChainId(1), seed("x", 0), &e2))
    );
    assert_ne!(
        base,
        run(&LeaderSchedule::new(ChainId(2), seed("x", 0), &e2))
    );
    assert_ne!(
        base,
        run(&LeaderSchedule::new(ChainId(1), seed("x", 1), &e2))
    );
    assert_ne!(
        base,
        run(&LeaderSchedule::new(ChainId(1), seed("x", 0), &e3))
    );
}
