//! The checkers can fail: beyond f Byzantine members, a twins attack across a partition forks
//! the chain and the safety checker reports it.

use banyan_consensus::sim::{Behavior, Partition, SimConfig, Simulation};

#[test]
fn twins_beyond_f_fork_the_chain_and_the_checker_says_so() {
    let mut cfg = SimConfig::honest(7, 1);
    for b in cfg.behaviors.iter_mut().take(3) {
        *b = Behavior::Twin;
    }
    // Node ids: 0,1 = twin of member 0; 2,3 = member 1; 4,5 = member 2; 6.. = honest 3..6.
    cfg.partitions.push(Partition {
        start_ms: 0,
        end_ms: 8_000,
        groups: vec![vec![0, 2, 4, 6, 7], vec![1, 3, 5, 8, 9]],
    });
    cfg.gst_ms = 8_000;
    cfg.max_time_ms = 12_000;
    let r = Simulation::new(cfg).expect("simulation").run();
    eprintln!("{r:?}");
    assert!(r.safety_violations > 0, "{r:?}");
}
