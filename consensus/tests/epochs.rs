//! Epoch change: a committed epoch-ending block hands over to the next epoch's committee.

mod common;

use banyan_consensus::sim::{PausePlan, SimConfig};

#[test]
fn epochs_hand_over_and_stay_safe() {
    for seed in 0..5 {
        let mut cfg = SimConfig::honest(4, seed);
        cfg.epoch_length = Some(10);
        cfg.max_time_ms = 15_000;
        let timeout = cfg.replica.base_timeout_ms;
        let max_delay = match cfg.delay {
            banyan_consensus::sim::Delay::Uniform { max_ms, .. } => max_ms,
            ref d => panic!("the honest preset changed its delays: {d:?}"),
        };
        let (r, _) = common::run_safe(cfg);
        let min_epoch = r.node_epochs.iter().copied().min().unwrap_or(0);
        assert!(min_epoch >= 3, "epochs {:?}: {r:?}", r.node_epochs);
        // Every epoch's ending block (heights 10, 20, ...) was committed, by every member
        // one message after the first: the replica that commits it first announces the
        // proof, so the others do not wait for a round timeout to learn the epoch ended.
        for h in (10..=min_epoch * 10).step_by(10) {
            let (Some(first), Some(last)) = (r.first_commit_ms.get(&h), r.last_commit_ms.get(&h))
            else {
                panic!("seed {seed}: height {h} never committed");
            };
            assert!(
                last - first <= max_delay && last - first < timeout,
                "seed {seed}: epoch-ending height {h} committed at {first} ms first and \
                 {last} ms last"
            );
        }
    }
}

#[test]
fn a_validator_left_behind_catches_up_through_the_epoch_proof() {
    for seed in 0..3 {
        let mut cfg = SimConfig::honest(4, seed);
        // Member 3 sleeps through the end of epoch 0, then asks a peer how it ended.
        // Several epochs end while it sleeps; it catches up one epoch proof at a time
        // (served from its peers' archives) and syncs the blocks in between.
        cfg.epoch_length = Some(20);
        cfg.pauses.push(PausePlan {
            node: 3,
            from_ms: 200,
            until_ms: 8_000,
        });
        cfg.max_time_ms = 14_000;
        let (r, _) = common::run_safe(cfg);
        let best = r.node_heights.iter().copied().max().unwrap_or(0);
        assert!(r.node_epochs[3] >= 2, "epochs {:?}: {r:?}", r.node_epochs);
        assert!(
            r.node_heights[3] + 25 >= best,
            "heights {:?}, epochs {:?}",
            r.node_heights,
            r.node_epochs
        );
    }
}
