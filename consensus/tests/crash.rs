//! Crash and restart: crash points inside a safety write. A restarted validator never signs
//! two different messages of one kind for one round (the double-sign detector sees every
//! message an honest validator signs, sent or lost).

mod common;

use banyan_consensus::sim::{CrashPlan, CrashPoint, LeaderKind, SimConfig, Simulation};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

const SEEDS: u64 = 8;

/// Three crashes per node at random times, restarting 50–800 ms later.
fn plans(seed: u64, point: Option<CrashPoint>) -> Vec<CrashPlan> {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut out = Vec::new();
    for node in 0..7 {
        for _ in 0..3 {
            let point = point.unwrap_or(
                [
                    CrashPoint::Now,
                    CrashPoint::BeforePersist,
                    CrashPoint::AfterPersist,
                ][rng.gen_range(0..3)],
            );
            out.push(CrashPlan {
                node,
                at_ms: rng.gen_range(0..11_000),
                point,
                restart_after_ms: Some(rng.gen_range(50..800)),
            });
        }
    }
    out
}

fn run(point: Option<CrashPoint>) {
    let mut total = 0;
    for seed in 0..SEEDS {
        let mut cfg = common::base(seed);
        cfg.crashes = plans(seed, point);
        let (r, _) = common::run_safe(cfg);
        total += r.committed_height;
    }
    assert!(total > SEEDS * 5, "too little progress: {total}");
}

#[test]
fn crash_after_signing_decision_before_persisting() {
    // The write fails: nothing is signed, the replica dies and restarts from the old data.
    run(Some(CrashPoint::BeforePersist));
}

#[test]
fn crash_after_persisting_before_sending() {
    // The write is durable, the signed messages are lost; on restart the replica must not
    // sign a different message for that round.
    run(Some(CrashPoint::AfterPersist));
}

#[test]
fn crash_points_mixed() {
    run(None);
}

#[test]
fn a_disk_that_loses_writes_is_caught_double_signing() {
    // Deliberately unsafe storage: acknowledges writes it does not keep. The leader of round 1
    // (round-robin: member 1) proposes at t = 0, crashes at t = 1 and restarts at t = 2 with no
    // memory of it: it proposes a different block (new timestamp) for round 1.
    let mut cfg = SimConfig::honest(4, 7);
    cfg.leaders = LeaderKind::RoundRobin;
    cfg.max_time_ms = 3_000;
    cfg.crashes.push(CrashPlan {
        node: 1,
        at_ms: 1,
        point: CrashPoint::Now,
        restart_after_ms: Some(1),
    });
    let mut sim = Simulation::new(cfg.clone()).expect("simulation");
    sim.set_lossy_disk(1);
    let r = sim.run();
    assert!(
        r.double_signs > 0,
        "detector missed the double signature: {r:?}"
    );

    // The same crash with a disk that keeps its writes: no double signature.
    let r = Simulation::new(cfg).expect("simulation").run();
    assert_eq!(r.double_signs, 0, "{r:?}");
    assert!(r.committed_height > 0, "{r:?}");
}
