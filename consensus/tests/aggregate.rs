//! Optimistic aggregation against the verify-each reference.

use banyan_consensus::aggregate::{
    aggregate_optimistic, aggregate_verify_each, verify_tc, TimeoutCollector,
};
use banyan_consensus::sim::{make_committee, member_key};
use banyan_consensus::{CachingVerifier, DirectVerifier, TimeoutData};
use banyan_core::certificate::VoteData;
use banyan_core::hash::Digest;
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::BlsSignature;

fn data() -> VoteData {
    VoteData {
        chain: ChainId::MAIN,
        epoch: Epoch(0),
        round: Round(3),
        height: Height(2),
        block: Digest([7; 32]),
    }
}

fn votes(n: usize, bad: &[usize]) -> Vec<(usize, BlsSignature)> {
    let msg = data().signing_message();
    (0..n)
        .map(|i| {
            let sig = if bad.contains(&i) {
                member_key(i).sign(b"not the vote")
            } else {
                member_key(i).sign(msg.as_bytes())
            };
            (i, sig)
        })
        .collect()
}

#[test]
fn optimistic_equals_verify_each() {
    let c = make_committee(7, Epoch(0)).expect("committee");
    for bad in [vec![], vec![3], vec![0, 6]] {
        let v = votes(7, &bad);
        let a = aggregate_optimistic(&c, data(), &v, &mut DirectVerifier).expect("optimistic");
        let b = aggregate_verify_each(&c, data(), &v, &mut DirectVerifier).expect("verify each");
        assert_eq!(a.certificate, b.certificate, "bad = {bad:?}");
        assert_eq!(a.bad_signers, b.bad_signers);
        let qc = a.certificate.expect("5 good of 7 is a quorum");
        qc.verify(&c).expect("QC verifies");
        for i in &bad {
            assert!(!qc.signers.get(*i), "bad signer {i} counted");
        }
    }
    // Three bad of seven: no quorum left.
    let v = votes(7, &[1, 2, 3]);
    let a = aggregate_optimistic(&c, data(), &v, &mut CachingVerifier::default()).expect("runs");
    assert!(a.certificate.is_none());
    assert_eq!(a.bad_signers, vec![1, 2, 3]);
}

#[test]
fn timeout_certificates_group_by_high_qc_round() {
    let c = make_committee(4, Epoch(0)).expect("committee");
    let template = TimeoutData {
        chain: ChainId::MAIN,
        epoch: Epoch(0),
        round: Round(9),
        high_qc_round: Round(0),
    };
    let mut col = TimeoutCollector::default();
    for (i, hqc) in [(0, 5), (1, 7), (2, 7)] {
        let d = TimeoutData {
            high_qc_round: Round(hqc),
            ..template
        };
        col.add(
            i,
            Round(hqc),
            member_key(i).sign(d.signing_message().as_bytes()),
        );
    }
    // A forged timeout claiming member 3 reported high-QC round 8.
    col.add(3, Round(8), member_key(0).sign(b"forged"));
    let tc = col
        .try_certify(&c, template, &mut DirectVerifier)
        .expect("certify")
        .expect("3 good of 4 is a quorum");
    assert_eq!(tc.max_high_qc_round(), Round(7));
    assert_eq!(tc.groups.len(), 2);
    verify_tc(&c, &tc, &mut DirectVerifier).expect("TC verifies");
    // Under-reporting a group's round breaks its signature.
    let mut lie = tc.clone();
    let mut groups = lie.groups.clone().into_inner();
    groups[1].high_qc_round = Round(6);
    lie.groups = banyan_core::codec::BoundedVec::new(groups).expect("fits");
    assert!(verify_tc(&c, &lie, &mut DirectVerifier).is_err());
}
