//! Scenario builders: the random fault mix of the `simulate` example and CI, and the named
//! Byzantine scenarios.

use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use super::{Behavior, CrashPlan, CrashPoint, Delay, Partition, SimConfig};

/// Liveness bound used by random scenarios: an honest node must commit within this long
/// after GST.
pub const RANDOM_LIVENESS_BOUND_MS: u64 = 40_000;
/// Random scenarios stop once every honest node committed this many blocks after GST.
pub const RANDOM_COMMITS_AFTER_GST: u64 = 5;

/// A random fault mix for `seed`: `byzantine` members with random behaviours (twins more
/// often than the others, since twins split across a partition are the attack that breaks
/// safety beyond `f`), random delays, drops and a partition until a random GST, and at most
/// one honest crash (at a random crash point) with restart before GST. Honest clocks are
/// within ±50 ms; a [`Behavior::ClockSkew`] member runs seconds ahead. In 30% of seeds
/// epochs end every 10–40 blocks.
pub fn random(n: usize, byzantine: usize, seed: u64) -> SimConfig {
    random_from(n, byzantine, seed, &Behavior::BYZANTINE)
}

/// As [`random`], with the Byzantine members' behaviours drawn from `pool` only (twins, if
/// the pool has them, half the time as in [`random`]).
pub fn random_from(n: usize, byzantine: usize, seed: u64, pool: &[Behavior]) -> SimConfig {
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed_5eed_5eed_5eed);
    let mut cfg = SimConfig::honest(n, seed);
    let mut indices: Vec<usize> = (0..n).collect();
    indices.shuffle(&mut rng);
    let twins = pool.contains(&Behavior::Twin);
    let others: Vec<Behavior> = pool
        .iter()
        .copied()
        .filter(|b| *b != Behavior::Twin && !b.is_honest())
        .collect();
    for &i in indices.iter().take(byzantine.min(n)) {
        cfg.behaviors[i] = if others.is_empty() || (twins && rng.gen_bool(0.5)) {
            if twins {
                Behavior::Twin
            } else {
                Behavior::Honest
            }
        } else {
            others[rng.gen_range(0..others.len())]
        };
    }
    // Node ids: members in order, a twin's second node right after its first.
    let mut node_index = Vec::new();
    let mut second_twin = Vec::new();
    for (i, b) in cfg.behaviors.iter().enumerate() {
        node_index.push(i);
        second_twin.push(false);
        if *b == Behavior::Twin {
            node_index.push(i);
            second_twin.push(true);
        }
    }
    let nodes = node_index.len();
    cfg.gst_ms = rng.gen_range(3_000..8_000);
    let min_ms = rng.gen_range(5..20);
    cfg.delay = if rng.gen_bool(0.5) {
        Delay::Uniform {
            min_ms,
            max_ms: min_ms + rng.gen_range(10..100),
        }
    } else {
        Delay::Exponential {
            min_ms,
            mean_ms: rng.gen_range(10..60),
            max_ms: 400,
        }
    };
    cfg.drop_before_gst = rng.gen_range(0.0..0.1);
    if rng.gen_bool(0.7) {
        // Split the honest members in two halves; twins always straddle the cut.
        let mut honest: Vec<usize> = (0..nodes)
            .filter(|&id| cfg.behaviors[node_index[id]].is_honest())
            .collect();
        honest.shuffle(&mut rng);
        let half = honest.len() / 2;
        let mut a: Vec<usize> = honest[..half].to_vec();
        let mut b: Vec<usize> = honest[half..].to_vec();
        for id in 0..nodes {
            let m = node_index[id];
            if cfg.behaviors[m].is_honest() {
                continue;
            }
            if cfg.behaviors[m] == Behavior::Twin {
                if second_twin[id] {
                    b.push(id)
                } else {
                    a.push(id)
                }
            } else if rng.gen_bool(0.5) {
                a.push(id)
            } else {
                b.push(id)
            }
        }
        cfg.partitions.push(Partition {
            start_ms: rng.gen_range(0..cfg.gst_ms / 4),
            end_ms: cfg.gst_ms,
            groups: vec![a, b],
        });
    }
    if rng.gen_bool(0.5) {
        let honest: Vec<usize> = (0..nodes)
            .filter(|&id| cfg.behaviors[node_index[id]].is_honest())
            .collect();
        if let Some(&node) = honest.choose(&mut rng) {
            let at_ms = rng.gen_range(0..cfg.gst_ms / 2);
            let point = [
                CrashPoint::Now,
                CrashPoint::BeforePersist,
                CrashPoint::AfterPersist,
            ][rng.gen_range(0..3)];
            cfg.crashes.push(CrashPlan {
                node,
                at_ms,
                point,
                restart_after_ms: Some(rng.gen_range(100..cfg.gst_ms / 2)),
            });
        }
    }
    cfg.clock_offsets_ms = (0..nodes)
        .map(|id| {
            if cfg.behaviors[node_index[id]] == Behavior::ClockSkew {
                rng.gen_range(2_000..10_000)
            } else {
                rng.gen_range(-50..=50)
            }
        })
        .collect();
    if rng.gen_bool(0.3) {
        cfg.epoch_length = Some(rng.gen_range(10..40));
    }
    cfg.liveness_bound_ms = RANDOM_LIVENESS_BOUND_MS;
    cfg.max_time_ms = cfg.gst_ms + RANDOM_LIVENESS_BOUND_MS;
    cfg.stop_after_commits = Some(RANDOM_COMMITS_AFTER_GST);
    cfg
}

/// No faults at all: `n` honest members, delays of 10–50 ms, for `duration_ms` (to measure
/// latency and messages per commit as `n` grows).
pub fn fault_free(n: usize, seed: u64, duration_ms: u64) -> SimConfig {
    let mut cfg = SimConfig::honest(n, seed);
    cfg.max_time_ms = duration_ms;
    cfg.liveness_bound_ms = duration_ms;
    cfg
}
