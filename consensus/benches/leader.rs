//! A leader's whole vote path through the replica, round after round: votes arrive as network
//! inputs (attribution, slot and ban checks, optimistic aggregation) until the QC forms and
//! the replica enters the next round. Two cases per committee size: every voter honest, and
//! one voter that signs every vote badly (optimistic aggregation's worst case: without
//! memory of the culprit, each round's aggregate fails once and falls back to checking every
//! vote).
//!
//! `cargo bench -p banyan-consensus --bench leader`

// criterion_group! generates undocumented items.
#![allow(missing_docs)]

use banyan_consensus::sim::{genesis_block, make_committee, member_key};
use banyan_consensus::{
    ConsensusError, DirectVerifier, EmptyBlocks, Environment, Input, LeaderElection,
    MemoryBlockStore, MemorySafetyStorage, Message, Replica, ReplicaConfig, SignatureVerifier,
    Vote,
};
use banyan_core::certificate::{Committee, VoteData};
use banyan_core::hash::Digest;
use banyan_core::header::BlockHeader;
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::{BlsSecretKey, BlsSignature};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, SamplingMode};
use std::collections::HashMap;
use std::time::{Duration, Instant};

const SIZES: [usize; 4] = [4, 16, 64, 100];

/// One member leads every round (the bench measures vote handling, not leader rotation).
struct Always(usize);

impl LeaderElection for Always {
    fn leader(&self, _round: Round) -> usize {
        self.0
    }
    fn prove(&self, _key: &BlsSecretKey, _round: Round) -> Option<BlsSignature> {
        None
    }
    fn verify_header(
        &self,
        _committee: &Committee,
        _header: &BlockHeader,
        _verifier: &mut dyn SignatureVerifier,
    ) -> Result<(), ConsensusError> {
        Ok(())
    }
}

fn leader(c: &Committee) -> Replica {
    let me = c.len() - 1;
    let env = Environment {
        app: Box::new(EmptyBlocks::default()),
        leaders: Box::new(Always(me)),
        verifier: Box::new(DirectVerifier),
        safety_storage: Box::new(MemorySafetyStorage::default()),
        blocks: Box::new(MemoryBlockStore::default()),
    };
    let mut r = Replica::new(
        ReplicaConfig::default(),
        c.clone(),
        me,
        member_key(me),
        genesis_block(ChainId::MAIN, Epoch(0)),
        env,
    )
    .expect("replica");
    r.start(0, &mut Vec::new()).expect("start");
    r
}

/// The votes of round `round`: a quorum of honest ones, after a bad one from member 0 when
/// `bad` (then the honest ones are members 1..=quorum).
fn votes(keys: &[BlsSecretKey], round: u64, bad: bool) -> Vec<Vote> {
    let n = keys.len();
    let q = (n * 2) / 3 + 1;
    let data = VoteData {
        chain: ChainId::MAIN,
        epoch: Epoch(0),
        round: Round(round),
        height: Height(round),
        block: Digest([round as u8; 32]),
    };
    let msg = data.signing_message();
    let junk = keys[0].sign(b"not this vote");
    let first = usize::from(bad);
    let mut out = Vec::with_capacity(q + 1);
    if bad {
        out.push(Vote {
            data,
            signer: 0,
            signature: junk,
            proposal_signature: junk,
        });
    }
    for (i, key) in keys.iter().enumerate().skip(first).take(q) {
        out.push(Vote {
            data,
            signer: i as u16,
            signature: key.sign(msg.as_bytes()),
            proposal_signature: junk,
        });
    }
    out
}

fn bench(crit: &mut Criterion) {
    let mut g = crit.benchmark_group("consensus::leader_round");
    g.sample_size(10)
        .sampling_mode(SamplingMode::Flat)
        .warm_up_time(Duration::from_millis(500))
        .measurement_time(Duration::from_secs(2));
    for n in SIZES {
        let c = make_committee(n, Epoch(0)).expect("committee");
        let keys: Vec<BlsSecretKey> = (0..n).map(member_key).collect();
        for (case, bad) in [("honest", false), ("one_bad_signer", true)] {
            // Signing is not measured: each round's votes are made once and reused by every
            // sample (each sample starts a fresh replica at round 1).
            let mut signed: HashMap<u64, Vec<Vote>> = HashMap::new();
            g.bench_function(BenchmarkId::new(case, format!("n={n}")), |b| {
                b.iter_custom(|iters| {
                    let mut r = leader(&c);
                    // Warm round: a culprit is first caught here (as in round 1 of an epoch).
                    let mut round = 1u64;
                    let warm = signed
                        .entry(round)
                        .or_insert_with(|| votes(&keys, round, bad))
                        .clone();
                    for v in warm {
                        let _ = r.handle(
                            0,
                            Input::Message {
                                from: v.signer as usize,
                                message: Message::Vote(Box::new(v)),
                            },
                            &mut Vec::new(),
                        );
                    }
                    let mut total = Duration::ZERO;
                    for _ in 0..iters {
                        round += 1;
                        let vs = signed
                            .entry(round)
                            .or_insert_with(|| votes(&keys, round, bad))
                            .clone();
                        let mut out = Vec::new();
                        let start = Instant::now();
                        for v in vs {
                            let _ = r.handle(
                                0,
                                Input::Message {
                                    from: v.signer as usize,
                                    message: Message::Vote(Box::new(v)),
                                },
                                &mut out,
                            );
                        }
                        total += start.elapsed();
                        assert_eq!(r.status().high_qc_round, Round(round), "no QC formed");
                    }
                    total
                })
            });
        }
    }
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
