//! QC formation and verification by committee size; vote processing at the leader with
//! optimistic aggregation against the verify-each reference.
//!
//! `cargo bench -p banyan-consensus --bench consensus`

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use banyan_consensus::aggregate::{aggregate_optimistic, aggregate_verify_each};
use banyan_consensus::sim::{make_committee, member_key};
use banyan_consensus::DirectVerifier;
use banyan_core::certificate::{Committee, QuorumCertificate, VoteData};
use banyan_core::hash::Digest;
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::BlsSignature;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use std::time::Duration;

const SIZES: [usize; 5] = [4, 16, 64, 100, 128];

fn data() -> VoteData {
    VoteData {
        chain: ChainId::MAIN,
        epoch: Epoch(0),
        round: Round(42),
        height: Height(41),
        block: Digest([3; 32]),
    }
}

/// A quorum of votes (the first `2n/3 + 1` members).
fn quorum_votes(c: &Committee) -> Vec<(usize, BlsSignature)> {
    let q = (c.len() * 2) / 3 + 1;
    let msg = data().signing_message();
    (0..q)
        .map(|i| (i, member_key(i).sign(msg.as_bytes())))
        .collect()
}

fn bench(crit: &mut Criterion) {
    let committees: Vec<(usize, Committee)> = SIZES
        .iter()
        .map(|&n| (n, make_committee(n, Epoch(0)).expect("committee")))
        .collect();

    let mut g = crit.benchmark_group("consensus::qc");
    g.sample_size(20).measurement_time(Duration::from_secs(3));
    for (n, c) in &committees {
        let votes = quorum_votes(c);
        g.bench_with_input(
            BenchmarkId::new("form", format!("n={n}")),
            &votes,
            |b, v| b.iter(|| QuorumCertificate::aggregate(c, data(), v).expect("qc")),
        );
        let qc = QuorumCertificate::aggregate(c, data(), &votes).expect("qc");
        g.bench_with_input(
            BenchmarkId::new("verify", format!("n={n}")),
            &qc,
            |b, qc| b.iter(|| qc.verify(c).expect("valid")),
        );
    }
    g.finish();

    let mut g = crit.benchmark_group("consensus::leader_votes");
    g.sample_size(10).measurement_time(Duration::from_secs(3));
    for (n, c) in &committees {
        let votes = quorum_votes(c);
        g.bench_with_input(
            BenchmarkId::new("optimistic", format!("n={n}")),
            &votes,
            |b, v| {
                b.iter(|| {
                    aggregate_optimistic(c, data(), v, &mut DirectVerifier)
                        .expect("aggregate")
                        .certificate
                        .expect("qc")
                })
            },
        );
        g.bench_with_input(
            BenchmarkId::new("verify_each", format!("n={n}")),
            &votes,
            |b, v| {
                b.iter(|| {
                    aggregate_verify_each(c, data(), v, &mut DirectVerifier)
                        .expect("aggregate")
                        .certificate
                        .expect("qc")
                })
            },
        );
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
