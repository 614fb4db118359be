//! Helpers shared by the simulator tests.
#![allow(dead_code)]

use banyan_consensus::sim::{SimConfig, SimReport, Simulation};

/// Run one configuration and check the invariants every scenario must keep.
pub fn run_safe(cfg: SimConfig) -> (SimReport, Vec<banyan_consensus::Evidence>) {
    let mut sim = Simulation::new(cfg).expect("simulation setup");
    sim.run_mut();
    let evidence = sim.evidence.clone();
    let r = sim.finish();
    assert_eq!(r.safety_violations, 0, "fork: {r:?}");
    assert_eq!(r.double_signs, 0, "honest double sign: {r:?}");
    (r, evidence)
}

/// A 7-member committee, clean network, 12 simulated seconds.
pub fn base(seed: u64) -> SimConfig {
    let mut cfg = SimConfig::honest(7, seed);
    cfg.max_time_ms = 12_000;
    cfg
}
