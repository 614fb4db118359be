//! Hot paths of the VRF crate: prove, verify, leader lookup and sortition.
//!
//! Run: `cargo bench -p banyan-vrf`. Baselines beside the measured paths: a plain BLS sign and
//! verify beside the VRF's (the VRF adds one hash of the proof), a bare domain hash beside a
//! leader lookup (which is one such hash plus a binary search), and a first draw beside the
//! steady-state rotating sortition.
#![allow(missing_docs)]

use banyan_core::certificate::{Committee, CommitteeMember, MAX_COMMITTEE_SIZE};
use banyan_core::hash::{hash, Domain};
use banyan_core::ids::{ChainId, Epoch, Round};
use banyan_core::keys::{BlsSecretKey, PopVerifiedKey};
use banyan_vrf::*;
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion};
use std::sync::OnceLock;

/// Seats per committee in the sortition benches.
const COMMITTEE_SIZE: usize = 64;
const MAX_BENCH_VALIDATORS: usize = 10_000;

fn secret(i: usize) -> BlsSecretKey {
    let mut ikm = [0x5au8; 32];
    ikm[..8].copy_from_slice(&(i as u64).to_le_bytes());
    BlsSecretKey::from_seed(&ikm).expect("32-byte seed")
}

/// Verified keys for the largest set, made once (each costs a pairing).
fn keys() -> &'static [PopVerifiedKey] {
    static KEYS: OnceLock<Vec<PopVerifiedKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        let chunk = MAX_BENCH_VALIDATORS.div_ceil(threads);
        std::thread::scope(|s| {
            let handles: Vec<_> = (0..threads)
                .map(|t| {
                    s.spawn(move || {
                        (t * chunk..((t + 1) * chunk).min(MAX_BENCH_VALIDATORS))
                            .map(|i| {
                                let sk = secret(i);
                                sk.prove_possession()
                                    .verify(&sk.public_key())
                                    .expect("own proof verifies")
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("key thread"))
                .collect()
        })
    })
}

fn members(n: usize) -> Vec<CommitteeMember> {
    keys()[..n]
        .iter()
        .enumerate()
        .map(|(i, &key)| CommitteeMember {
            key,
            stake: 1_000 + (i as u64 * 7919) % 9_000,
        })
        .collect()
}

fn seed(i: u64) -> EpochSeed {
    EpochSeed(hash(Domain::Custom("banyan/vrf/bench"), &i.to_le_bytes()).0)
}

fn vrf(c: &mut Criterion) {
    let sk = secret(1);
    let pk = sk.public_key();
    let slot = Slot {
        chain: ChainId(1),
        epoch: Epoch(9),
        round: Round(42),
    };
    let input = slot.vrf_input(&seed(0));
    let (_, proof) = prove(&sk, &input).expect("short input");
    let plain = sk.sign(&input);
    c.bench_function("vrf::prove", |b| b.iter(|| prove(&sk, black_box(&input))));
    c.bench_function("vrf::verify", |b| {
        b.iter(|| verify(&pk, black_box(&input), black_box(&proof)))
    });
    c.bench_function("bls::sign (baseline)", |b| {
        b.iter(|| sk.sign(black_box(&input)))
    });
    c.bench_function("bls::verify (baseline)", |b| {
        b.iter(|| plain.verify(black_box(&input), &pk))
    });
}

fn leader(c: &mut Criterion) {
    let mut g = c.benchmark_group("vrf::leader");
    for n in [64usize, MAX_COMMITTEE_SIZE] {
        let committee = Committee::new(Epoch(9), members(n)).expect("valid committee");
        let schedule = LeaderSchedule::new(ChainId(1), seed(0), &committee);
        let mut r = 0u64;
        g.bench_function(BenchmarkId::from_parameter(format!("committee={n}")), |b| {
            b.iter(|| {
                r = r.wrapping_add(1);
                schedule.leader_index(black_box(Round(r)))
            })
        });
    }
    g.bench_function("hash (baseline)", |b| {
        b.iter(|| hash(Domain::Custom("banyan/vrf/leader"), black_box(&[7u8; 52])))
    });
    g.finish();
}

fn sortition_benches(c: &mut Criterion) {
    let params = SortitionParams {
        committee_size: COMMITTEE_SIZE,
        max_rotation: Fraction::new(1, 4).expect("valid"),
    };
    let mut fresh = c.benchmark_group("vrf::sortition_fresh");
    for n in [100usize, 1_000, 10_000] {
        let vs = ValidatorSet::new(members(n)).expect("valid set");
        for committees in [4u32, 16, 100] {
            let side: Vec<ChainId> = (1..committees).map(ChainId).collect();
            let id = format!("validators={n}/committees={committees}");
            fresh.bench_function(BenchmarkId::from_parameter(&id), |b| {
                b.iter(|| sortition(Epoch(1), &seed(1), black_box(&vs), &side, &params, None))
            });
        }
    }
    fresh.finish();

    let mut steady = c.benchmark_group("vrf::sortition");
    for n in [100usize, 1_000, 10_000] {
        // The validator set of the next epoch: 1% left.
        let all = members(n);
        let vs1 = ValidatorSet::new(all.clone()).expect("valid set");
        let vs2 = ValidatorSet::new(all[n / 100..].to_vec()).expect("valid set");
        for committees in [4u32, 16, 100] {
            let side: Vec<ChainId> = (1..committees).map(ChainId).collect();
            let prev = sortition(Epoch(1), &seed(1), &vs1, &side, &params, None).expect("valid");
            let id = format!("validators={n}/committees={committees}");
            steady.bench_function(BenchmarkId::from_parameter(&id), |b| {
                b.iter(|| {
                    sortition(
                        Epoch(2),
                        &seed(2),
                        black_box(&vs2),
                        &side,
                        &params,
                        Some(&prev),
                    )
                })
            });
        }
    }
    steady.finish();
}

criterion_group!(benches, vrf, leader, sortition_benches);
criterion_main!(benches);
