//! Byzantine members that attack the paths every other member depends on: attribution of
//! votes and timeouts, block sync, and the epoch-change hand-over. Each runs under the seeded
//! simulator, at f Byzantine members, and must leave safety intact and commits flowing.

mod common;

use banyan_consensus::sim::{scenario, Behavior, Partition, PausePlan, SimConfig, Simulation};
use common::{assert_progress, base, run_safe};

/// The three attacks of this file.
const ATTACKS: [Behavior; 3] = [
    Behavior::Impersonator,
    Behavior::SyncFlooder,
    Behavior::SilentEpochProof,
];

/// f impersonators send votes and timeouts under every other member's index, ahead of the
/// genuine ones, with their own signatures, junk ones and replayed genuine ones. Before votes
/// and timeouts were attributed to their authenticated sender, the forged copy took the
/// genuine signer's slot for the round, the genuine vote was dropped as a duplicate, and the
/// aggregate's failure then banned the genuine signer: no QC or TC ever formed again.
#[test]
fn impersonators_cannot_take_other_members_slots() {
    for seed in 0..4 {
        for (n, byz) in [(4usize, vec![2usize]), (7, vec![1, 5])] {
            let mut cfg = base(seed);
            cfg.behaviors = vec![Behavior::Honest; n];
            for &b in &byz {
                cfg.behaviors[b] = Behavior::Impersonator;
            }
            let (r, evidence) = run_safe(cfg);
            assert_progress(&r, 10);
            assert!(
                r.rejected.get("Impersonation").copied().unwrap_or(0) > 100,
                "the forgeries were not refused as impersonation: {r:?}"
            );
            // No honest member is ever accused.
            for e in &evidence {
                assert!(byz.contains(&(e.offender() as usize)), "{e:?}");
            }
        }
    }
}

/// A member that asks everyone for the longest block sync many times per step gets a bounded
/// number of answers: each member serves it at most its per-peer budget.
#[test]
fn sync_flooders_are_served_within_a_budget() {
    for seed in 0..4 {
        let mut cfg = base(seed);
        cfg.behaviors[3] = Behavior::SyncFlooder;
        cfg.behaviors[6] = Behavior::SyncFlooder;
        let budget = cfg.replica.max_sync_responses_per_sec;
        let seconds = cfg.max_time_ms.div_ceil(1_000);
        let (r, _) = run_safe(cfg);
        assert_progress(&r, 10);
        assert!(
            r.rejected.get("RateLimited").copied().unwrap_or(0) > 100,
            "the flood was not limited: {r:?}"
        );
        // Five honest members serve each flooder at most `budget` a second (plus one window
        // for the start).
        let cap = 5 * budget * (seconds + 1);
        for flooder in [3usize, 6] {
            let served = r.sync_responses_to.get(&flooder).copied().unwrap_or(0);
            assert!(served <= cap, "flooder {flooder} got {served} > {cap}");
        }
    }
}

/// A member that announces every epoch proof to everyone but never serves a block: an honest
/// member that was paused across epoch ends catches up from the others anyway (each proof or
/// certificate an honest member sends it names that member as the source to fetch from).
#[test]
fn a_silent_epoch_proof_sender_does_not_strand_a_lagging_member() {
    for seed in 0..4 {
        let mut cfg = base(seed);
        cfg.behaviors[2] = Behavior::SilentEpochProof;
        cfg.behaviors[5] = Behavior::SilentEpochProof;
        cfg.epoch_length = Some(10);
        cfg.pauses.push(PausePlan {
            node: 0,
            from_ms: 1_000,
            until_ms: 8_000,
        });
        cfg.max_time_ms = 25_000;
        let (r, _) = run_safe(cfg);
        assert_progress(&r, 20);
        let best = r.node_epochs.iter().copied().max().unwrap_or(0);
        assert!(best >= 2, "too few epochs ended: {:?}", r.node_epochs);
        assert!(
            r.node_epochs[0] + 1 >= best,
            "the paused member is stuck in epoch {} of {best}: {r:?}",
            r.node_epochs[0]
        );
    }
}

fn sweep(n: usize, byzantine: usize, seeds: std::ops::Range<u64>) -> u64 {
    common::sweep(n, seeds, |seed| {
        scenario::random_from(n, byzantine, seed, &ATTACKS)
    })
}

/// The three attacks at f, mixed with the random faults (delays, drops and partitions before
/// GST, a crash, epochs): 0 safety violations and commits after GST on every one of 200 seeds.
#[test]
fn attacks_at_f_over_200_seeds() {
    let a = sweep(4, 1, 5_000..5_100);
    let b = sweep(7, 2, 6_000..6_100);
    assert!(a > 0 && b > 0);
}

/// Blocks of 10,000 transfers (about 2.4 MB each) under the transport's 16 MiB frame limit: a
/// member cut off while about ten blocks commit asks for what it missed, and the answers stop
/// at the byte budget instead of growing past the frame limit (where the transport refuses
/// them and the member could not catch up until the epoch ended), so it catches up in the
/// epoch. The same run without the budget shows the failure.
#[test]
fn a_member_that_missed_big_blocks_catches_up_under_the_frame_limit() {
    let big_blocks = |seed| {
        let mut cfg = SimConfig::honest(4, seed);
        cfg.block_txs = 10_000;
        // The QUIC transport's default frame limit (`banyan_net::DEFAULT_MAX_FRAME_BYTES`).
        cfg.max_message_bytes = Some(16 << 20);
        cfg.replica.min_block_interval_ms = 250;
        // Member 0 is cut off (everything sent to it is lost) for nine seconds.
        cfg.partitions.push(Partition {
            start_ms: 1_000,
            end_ms: 10_000,
            groups: vec![vec![1, 2, 3]],
        });
        cfg.max_time_ms = 17_000;
        cfg
    };
    for seed in 0..2 {
        let (r, _) = run_safe(big_blocks(seed));
        assert_progress(&r, 20);
        assert_eq!(r.oversized_messages, 0, "{r:?}");
        assert!(
            r.sync_responses_to.get(&0).copied().unwrap_or(0) > 0,
            "{r:?}"
        );
        let best = r.node_heights.iter().copied().max().unwrap_or(0);
        assert!(
            r.node_heights[0] + 4 >= best,
            "the member that was cut off is at height {} of {best}: {:?}",
            r.node_heights[0],
            r.node_heights
        );
    }
    // Without the byte budget (as before it existed) the answers outgrow the frame limit and
    // the member that was cut off stays behind.
    let mut cfg = big_blocks(0);
    cfg.replica.max_sync_response_bytes = usize::MAX;
    let r = Simulation::new(cfg).expect("simulation").run();
    let best = r.node_heights.iter().copied().max().unwrap_or(0);
    assert!(
        r.oversized_messages > 0 && r.node_heights[0] + 4 < best,
        "{r:?}"
    );
}
