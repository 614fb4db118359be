//! Quorums are stake-weighted, not counted by heads.

mod common;

use banyan_consensus::sim::{
    make_weighted_committee, CrashPlan, CrashPoint, SimConfig, Simulation,
};
use banyan_core::ids::Epoch;

fn run_with_down(down: usize) -> banyan_consensus::sim::SimReport {
    // Stakes 3,1,1,1: a quorum is 5 of 6.
    let committee = make_weighted_committee(&[3, 1, 1, 1], Epoch(0)).expect("committee");
    let mut cfg = SimConfig::honest(4, 5);
    cfg.max_time_ms = 10_000;
    cfg.crashes.push(CrashPlan {
        node: down,
        at_ms: 0,
        point: CrashPoint::Now,
        restart_after_ms: None,
    });
    let r = Simulation::with_committee(cfg, committee)
        .expect("simulation")
        .run();
    assert_eq!(r.safety_violations, 0);
    r
}

#[test]
fn losing_a_light_member_keeps_a_quorum() {
    // 3 + 1 + 1 = 5 of 6 remain.
    assert!(run_with_down(2).committed_height > 10);
}

#[test]
fn losing_the_heavy_member_loses_the_quorum() {
    // 1 + 1 + 1 = 3 of 6 remain, though three of four members are up.
    assert_eq!(run_with_down(0).committed_height, 0);
}
