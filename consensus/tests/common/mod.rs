//! Helpers shared by the simulator tests.
#![allow(dead_code)]

use banyan_consensus::sim::{make_committee, SimConfig, SimReport, Simulation};
use banyan_core::ids::Epoch;

/// Run one configuration and check the invariants every scenario must keep.
pub fn run_safe(cfg: SimConfig) -> (SimReport, Vec<banyan_consensus::Evidence>) {
    let mut sim = Simulation::new(cfg).expect("simulation setup");
    sim.run_mut();
    let evidence = sim.evidence.clone();
    let r = sim.finish();
    assert_eq!(r.safety_violations, 0, "fork: {r:?}");
    assert_eq!(r.bad_commit_proofs, 0, "commit proofs: {r:?}");
    assert_eq!(r.double_signs, 0, "honest double sign: {r:?}");
    (r, evidence)
}

/// A 7-member committee, clean network, 12 simulated seconds.
pub fn base(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::honest(7, seed);
    cfg.max_time_ms = 12_000;
    cfg
}

/// Honest progress: at least `min` heights committed, and no liveness failure.
pub fn assert_progress(r: &SimReport, min: u64) {
    assert!(
        r.committed_height >= min,
        "only {} committed: {r:?}",
        r.committed_height
    );
    assert!(!r.liveness_failure, "{r:?}");
}

/// Run `config(seed)` for every seed on one committee of `n`: no fork, no honest double
/// sign, no liveness failure on any. Returns the sum of the heights committed.
pub fn sweep(n: usize, seeds: std::ops::Range<u64>, config: impl Fn(u64) -> SimConfig) -> u64 {
    let committee = make_committee(n, Epoch(0)).expect("committee");
    let mut heights = 0;
    for seed in seeds {
        let r = Simulation::with_committee(config(seed), committee.clone())
            .expect("simulation")
            .run();
        assert_eq!(r.safety_violations, 0, "seed {seed}: {r:?}");
        assert_eq!(r.bad_commit_proofs, 0, "seed {seed}: {r:?}");
        assert_eq!(r.double_signs, 0, "seed {seed}: {r:?}");
        assert!(!r.liveness_failure, "seed {seed}: {r:?}");
        heights += r.committed_height;
    }
    heights
}
