//! The named Byzantine scenarios, each over a few seeds of the deterministic simulator.

mod common;

use banyan_consensus::sim::{Behavior, CrashPlan, CrashPoint, Partition, PausePlan};
use banyan_consensus::Evidence;
use common::{assert_progress, base, run_safe};

const SEEDS: u64 = 4;

#[test]
fn twins() {
    for seed in 0..SEEDS {
        // Member 0 is run by two nodes (ids 0 and 1) with the same key and different clocks.
        let mut cfg = base(seed);
        cfg.behaviors[0] = Behavior::Twin;
        cfg.clock_offsets_ms = vec![0, 37];
        let (r, evidence) = run_safe(cfg);
        assert_progress(&r, 10);
        assert!(
            evidence
                .iter()
                .any(|e| matches!(e, Evidence::ConflictingProposals(a, _) if a.signer == 0)),
            "no equivocation evidence against the twins: {r:?}"
        );
    }
    // Twins on both sides of a partition, at f = 2: one side has no quorum, no fork.
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        cfg.behaviors[0] = Behavior::Twin;
        cfg.behaviors[1] = Behavior::Twin;
        // ids: 0,1 = member 0; 2,3 = member 1; 4..8 = members 2..6.
        cfg.partitions.push(Partition {
            start_ms: 0,
            end_ms: 6_000,
            groups: vec![vec![0, 2, 4, 5, 6], vec![1, 3, 7, 8]],
        });
        cfg.gst_ms = 6_000;
        cfg.max_time_ms = 26_000;
        let (r, _) = run_safe(cfg);
        assert_progress(&r, 5);
    }
}

#[test]
fn equivocating_leader() {
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        cfg.behaviors[3] = Behavior::EquivocatingLeader;
        cfg.behaviors[5] = Behavior::EquivocatingLeader;
        let (r, evidence) = run_safe(cfg);
        assert_progress(&r, 5);
        assert!(
            evidence
                .iter()
                .any(|e| matches!(e, Evidence::ConflictingProposals(..))),
            "{r:?}"
        );
        let committee = banyan_consensus::sim::make_committee(7, banyan_core::ids::Epoch(0))
            .expect("committee");
        for e in &evidence {
            e.verify(&committee).expect("evidence verifies");
            assert!(
                [3, 5].contains(&e.offender()),
                "honest member accused: {e:?}"
            );
        }
    }
}

#[test]
fn double_vote() {
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        cfg.behaviors[2] = Behavior::DoubleVote;
        let (r, evidence) = run_safe(cfg);
        assert_progress(&r, 10);
        assert!(
            evidence
                .iter()
                .any(|e| matches!(e, Evidence::ConflictingVotes(a, _) if a.signer == 2)),
            "{r:?}"
        );
    }
}

#[test]
fn bad_signature_votes() {
    for seed in 0..SEEDS {
        for mode in [
            banyan_consensus::AggregationMode::Optimistic,
            banyan_consensus::AggregationMode::VerifyEach,
        ] {
            let mut cfg = base(seed);
            cfg.behaviors[1] = Behavior::BadSignatureVotes;
            cfg.behaviors[4] = Behavior::BadSignatureVotes;
            cfg.replica.aggregation = mode;
            let (r, _) = run_safe(cfg);
            // 5 honest of 7: exactly a quorum, so every QC needed the bad votes dropped.
            assert_progress(&r, 5);
        }
    }
}

#[test]
fn withheld_votes() {
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        cfg.behaviors[0] = Behavior::WithheldVotes;
        cfg.behaviors[6] = Behavior::WithheldVotes;
        let (r, _) = run_safe(cfg);
        assert_progress(&r, 5);
    }
}

#[test]
fn stale_round_spam() {
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        cfg.behaviors[2] = Behavior::StaleRoundSpam;
        cfg.behaviors[3] = Behavior::StaleRoundSpam;
        let (r, _) = run_safe(cfg);
        assert_progress(&r, 5);
        assert!(
            r.rejected.get("StaleRound").copied().unwrap_or(0) > 10,
            "{r:?}"
        );
    }
}

#[test]
fn invalid_qc() {
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        cfg.behaviors[1] = Behavior::InvalidQc;
        cfg.behaviors[5] = Behavior::InvalidQc;
        let (r, _) = run_safe(cfg);
        assert_progress(&r, 5);
        assert!(
            r.rejected.get("Certificate").copied().unwrap_or(0) > 0,
            "{r:?}"
        );
    }
}

#[test]
fn clock_skew() {
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        cfg.behaviors[4] = Behavior::ClockSkew;
        // Honest clocks within ±100 ms (drift allowance 500 ms); member 4 runs 5 s ahead.
        cfg.clock_offsets_ms = vec![-100, 100, 0, 60, 5_000, -40, 20];
        let (r, _) = run_safe(cfg);
        assert_progress(&r, 5);
        assert!(
            r.rejected.get("ClockDrift").copied().unwrap_or(0) > 0,
            "{r:?}"
        );
    }
}

#[test]
fn paused_validator() {
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        cfg.pauses.push(PausePlan {
            node: 3,
            from_ms: 1_000,
            until_ms: 12_000,
        });
        cfg.max_time_ms = 20_000;
        let (r, _) = run_safe(cfg);
        assert_progress(&r, 20);
        // Its backlog was stale when it resumed...
        assert!(
            r.rejected.get("StaleRound").copied().unwrap_or(0) > 0,
            "{r:?}"
        );
        // ...and it caught up through block sync.
        let best = r.node_heights.iter().copied().max().unwrap_or(0);
        assert!(
            r.node_heights[3] + 3 >= best,
            "paused node at {:?}",
            r.node_heights
        );
    }
}

#[test]
fn rotating_crashes() {
    const PERIOD_MS: u64 = 10_000;
    const PERIODS: u64 = 4;
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        // Round-robin leaders: with the VRF schedule, a run of rounds led by the two crashed
        // validators (and the pacemaker's backoff) can outlast a short period.
        cfg.leaders = banyan_consensus::sim::LeaderKind::RoundRobin;
        // A different f = 2 validators are down in each period; they restart from their
        // durable state at the period's end.
        for k in 0..PERIODS {
            for j in 0..2 {
                cfg.crashes.push(CrashPlan {
                    node: ((2 * k + j) % 7) as usize,
                    at_ms: k * PERIOD_MS + 1,
                    point: CrashPoint::Now,
                    restart_after_ms: Some(PERIOD_MS - 2),
                });
            }
        }
        cfg.max_time_ms = PERIODS * PERIOD_MS;
        let (r, _) = run_safe(cfg);
        for k in 0..PERIODS {
            let (lo, hi) = (k * PERIOD_MS, (k + 1) * PERIOD_MS);
            assert!(
                r.first_commit_ms.values().any(|&t| lo <= t && t < hi),
                "no commit in period {k}: {:?}",
                r.first_commit_ms
            );
        }
    }
}

#[test]
fn paced_leaders_space_blocks_and_stay_live() {
    for seed in 0..SEEDS {
        let mut cfg = base(seed);
        cfg.replica.min_block_interval_ms = 300;
        let (r, _) = run_safe(cfg);
        assert_progress(&r, 10);
        // Heights are first committed at least the interval apart, less the spread of
        // delivery delays between the nodes that commit them.
        let times: Vec<u64> = r.first_commit_ms.values().copied().collect();
        let gaps: Vec<u64> = times.windows(2).map(|w| w[1] - w[0]).collect();
        let mean = gaps.iter().sum::<u64>() / gaps.len().max(1) as u64;
        assert!(
            mean >= 250,
            "mean gap {mean} ms below the 300 ms pacing: {gaps:?}"
        );
        // Unpaced, the same network commits far more often.
        let (fast, _) = run_safe(base(seed));
        assert!(
            fast.committed_height > r.committed_height,
            "pacing changed nothing: {} vs {}",
            fast.committed_height,
            r.committed_height
        );
    }
}

/// Liveness is a pace, not one commit: after GST every honest node that is up keeps
/// committing, no stretch without a commit longer than the bound. A node paused for longer
/// than the bound is not stalled while paused (it commits again soon after it resumes).
#[test]
fn liveness_means_commits_keep_coming() {
    let mut cfg = base(7);
    cfg.pauses.push(PausePlan {
        node: 2,
        from_ms: 2_000,
        until_ms: 9_000,
    });
    cfg.liveness_bound_ms = 5_000;
    let (r, _) = run_safe(cfg.clone());
    assert_progress(&r, 10);
    assert!(
        r.max_stall_ms > 0 && r.max_stall_ms < 5_000,
        "longest stall {} ms",
        r.max_stall_ms
    );
    // A bound below the pace the run actually kept is missed: the check can fail.
    cfg.liveness_bound_ms = r.max_stall_ms - 1;
    let (strict, _) = run_safe(cfg);
    assert!(strict.liveness_failure, "{strict:?}");
}
