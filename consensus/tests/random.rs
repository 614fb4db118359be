//! Random fault mixes over many seeds, and determinism.

mod common;

use banyan_consensus::sim::{scenario, Simulation};

fn sweep(n: usize, byzantine: usize, seeds: std::ops::Range<u64>) {
    let commits = common::sweep(n, seeds, |seed| scenario::random(n, byzantine, seed));
    assert!(commits > 0);
}

#[test]
fn random_faults_7_validators_2_byzantine() {
    sweep(7, 2, 0..120);
}

#[test]
fn random_faults_4_validators_1_byzantine() {
    sweep(4, 1, 1_000..1_120);
}

#[test]
fn random_faults_10_validators_3_byzantine() {
    sweep(10, 3, 2_000..2_040);
}

#[test]
fn same_seed_same_trace() {
    for seed in [3, 17, 42] {
        let a = Simulation::new(scenario::random(7, 2, seed))
            .expect("simulation")
            .run();
        let b = Simulation::new(scenario::random(7, 2, seed))
            .expect("simulation")
            .run();
        assert_eq!(a.trace, b.trace, "seed {seed}");
        assert_eq!(a.messages, b.messages);
        assert_eq!(a.first_commit_ms, b.first_commit_ms);
        let c = Simulation::new(scenario::random(7, 2, seed + 1000))
            .expect("simulation")
            .run();
        assert_ne!(a.trace, c.trace);
    }
}
