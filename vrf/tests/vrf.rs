//! The VRF and the proposer proof: what verifies does, and every forgery is refused.

mod support;

use banyan_core::certificate::{Committee, CommitteeMember};
use banyan_core::hash::Digest;
use banyan_core::header::BlockHeader;
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::{BlsSignature, BLS_POP_DST, BLS_SIG_DST};
use banyan_vrf::vrf::MAX_VRF_INPUT_BYTES;
use banyan_vrf::*;
use support::*;

#[test]
fn prove_then_verify_gives_the_same_output() {
    let sk = secret(0);
    let (out, proof) = prove(&sk, b"input").expect("short input");
    assert_eq!(verify(&sk.public_key(), b"input", &proof), Ok(out));
    assert_eq!(proof.output(), out);
}

#[test]
fn outputs_are_deterministic_and_differ_by_key_and_input() {
    let (a, b) = (secret(0), secret(1));
    let (o1, p1) = prove(&a, b"x").expect("ok");
    let (o2, p2) = prove(&a, b"x").expect("ok");
    assert_eq!(
        (o1, p1),
        (o2, p2),
        "one key, one input: one proof and one output"
    );
    assert_ne!(prove(&a, b"y").expect("ok").0, o1);
    assert_ne!(prove(&b, b"x").expect("ok").0, o1);
}

#[test]
fn wrong_key_and_wrong_input_are_rejected() {
    let (a, b) = (secret(0), secret(1));
    let (_, proof) = prove(&a, b"input").expect("ok");
    assert_eq!(
        verify(&b.public_key(), b"input", &proof),
        Err(VrfError::BadProof)
    );
    assert_eq!(
        verify(&a.public_key(), b"inpuT", &proof),
        Err(VrfError::BadProof)
    );
    assert_eq!(
        verify(&a.public_key(), b"", &proof),
        Err(VrfError::BadProof)
    );
}

#[test]
fn signatures_under_other_dsts_are_not_vrf_proofs() {
    let sk = secret(0);
    let pk = sk.public_key();
    for dst in [
        BLS_SIG_DST,
        BLS_POP_DST,
        b"BANYAN_VRF_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_".as_slice(),
        b"BANYAN_VRF_BLS12381G2_XMD:SHA-256_SSWU_NU_".as_slice(),
    ] {
        assert_ne!(dst, VRF_DST);
        let sig = sk.sign_with_dst(b"input", dst);
        assert_eq!(
            verify(&pk, b"input", &VrfProof::from(sig)),
            Err(VrfError::BadProof),
            "a signature under {:?} passed as a VRF proof",
            String::from_utf8_lossy(dst)
        );
    }
    // And the other way: a VRF proof is not a consensus signature.
    let (_, proof) = prove(&sk, b"input").expect("ok");
    assert!(proof.signature().verify(b"input", &pk).is_err());
}

#[test]
fn malformed_and_tampered_proofs_are_rejected() {
    let sk = secret(0);
    let pk = sk.public_key();
    let (_, proof) = prove(&sk, b"input").expect("ok");
    let bytes = *proof.as_bytes();

    // Wrong length, the identity, not a point.
    assert!(VrfProof::from_bytes(&bytes[..95]).is_err());
    let mut infinity = [0u8; 96];
    infinity[0] = 0xc0;
    assert!(VrfProof::from_bytes(&infinity).is_err());
    assert!(VrfProof::from_bytes(&[0xffu8; 96]).is_err());
    // Without the compression flag the 96 bytes are not a compressed point.
    let mut uncompressed_flag = bytes;
    uncompressed_flag[0] &= 0x7f;
    assert!(VrfProof::from_bytes(&uncompressed_flag).is_err());

    // Every single-bit flip either fails to parse or fails to verify.
    for byte in [0usize, 1, 17, 48, 95] {
        for bit in 0..8 {
            let mut t = bytes;
            t[byte] ^= 1 << bit;
            if let Ok(p) = VrfProof::from_bytes(&t) {
                assert_eq!(verify(&pk, b"input", &p), Err(VrfError::BadProof));
            }
        }
    }
    // A valid proof of something else.
    let other = prove(&sk, b"other").expect("ok").1;
    assert_eq!(verify(&pk, b"input", &other), Err(VrfError::BadProof));
    // The parsed original still verifies.
    let reparsed = VrfProof::from_bytes(&bytes).expect("valid");
    assert!(verify(&pk, b"input", &reparsed).is_ok());
}

#[test]
fn oversized_inputs_are_refused_before_any_work() {
    let sk = secret(0);
    let big = vec![0u8; MAX_VRF_INPUT_BYTES + 1];
    let want = Err(VrfError::InputTooLong {
        len: MAX_VRF_INPUT_BYTES + 1,
        max: MAX_VRF_INPUT_BYTES,
    });
    assert_eq!(prove(&sk, &big).map(|(o, _)| o), want);
    let (_, proof) = prove(&sk, b"x").expect("ok");
    assert_eq!(verify(&sk.public_key(), &big, &proof), want);
    assert!(prove(&sk, &big[..MAX_VRF_INPUT_BYTES]).is_ok());
}

fn header(slot: Slot, proposer: Digest, proof: Option<BlsSignature>) -> BlockHeader {
    BlockHeader {
        chain: slot.chain,
        epoch: slot.epoch,
        height: Height(10),
        round: slot.round,
        parent: Digest([1; 32]),
        state_root: Digest([2; 32]),
        tx_root: Digest([3; 32]),
        outbox_root: Digest([4; 32]),
        proposer,
        timestamp_ms: 1_700_000_000_000,
        vrf_proof: proof,
    }
}

#[test]
fn proposer_proof_binds_chain_epoch_round_and_seed() {
    let sk = secret(3);
    let pk = sk.public_key();
    let seed = seed("proposer", 0);
    let slot = Slot {
        chain: ChainId(2),
        epoch: Epoch(5),
        round: Round(9),
    };
    let (out, proof) = prove_proposer(&sk, slot, &seed);
    let good = header(slot, pk.validator_id(), Some(*proof.signature()));
    assert_eq!(verify_proposer(&good, &pk, &seed), Ok(out));
    assert_eq!(verify(&pk, &slot.vrf_input(&seed), &proof), Ok(out));

    let mut h = good.clone();
    h.chain = ChainId(3);
    assert_eq!(verify_proposer(&h, &pk, &seed), Err(VrfError::BadProof));
    let mut h = good.clone();
    h.epoch = Epoch(6);
    assert_eq!(verify_proposer(&h, &pk, &seed), Err(VrfError::BadProof));
    let mut h = good.clone();
    h.round = Round(10);
    assert_eq!(verify_proposer(&h, &pk, &seed), Err(VrfError::BadProof));
    assert_eq!(
        verify_proposer(&good, &pk, &seed_other()),
        Err(VrfError::BadProof)
    );
    // Fields outside the slot do not enter the proof.
    let mut h = good.clone();
    h.height = Height(11);
    h.timestamp_ms += 1;
    assert_eq!(verify_proposer(&h, &pk, &seed), Ok(out));
}

fn seed_other() -> EpochSeed {
    seed("proposer", 1)
}

#[test]
fn proposer_checks_refuse_missing_proof_and_wrong_key() {
    let (a, b) = (secret(3), secret(4));
    let seed = seed("proposer", 0);
    let slot = Slot {
        chain: ChainId::MAIN,
        epoch: Epoch(1),
        round: Round(0),
    };
    let (_, proof) = prove_proposer(&a, slot, &seed);
    let missing = header(slot, a.public_key().validator_id(), None);
    assert_eq!(
        verify_proposer(&missing, &a.public_key(), &seed),
        Err(VrfError::MissingProof)
    );
    let h = header(
        slot,
        a.public_key().validator_id(),
        Some(*proof.signature()),
    );
    assert_eq!(
        verify_proposer(&h, &b.public_key(), &seed),
        Err(VrfError::ProposerMismatch {
            header: a.public_key().validator_id(),
            key: b.public_key().validator_id(),
        })
    );
    // b claims the slot with a's proof.
    let stolen = header(
        slot,
        b.public_key().validator_id(),
        Some(*proof.signature()),
    );
    assert_eq!(
        verify_proposer(&stolen, &b.public_key(), &seed),
        Err(VrfError::BadProof)
    );
}

#[test]
fn schedule_accepts_only_the_scheduled_leader_with_its_proof() {
    let sks: Vec<_> = (0..6).map(secret).collect();
    let members: Vec<CommitteeMember> = sks
        .iter()
        .enumerate()
        .map(|(i, sk)| CommitteeMember {
            key: verified(sk),
            stake: 10 + i as u64,
        })
        .collect();
    let committee = Committee::new(Epoch(4), members).expect("valid committee");
    let seed = seed("schedule", 0);
    let schedule = LeaderSchedule::new(ChainId(7), seed, &committee);
    let mut checked_wrong_leader = false;
    for r in 0..20u64 {
        let round = Round(r);
        let leader = schedule.leader(round);
        let sk = sks
            .iter()
            .find(|sk| sk.public_key() == *leader.key.key())
            .expect("leader is a member");
        let (out, proof) = prove_proposer(sk, schedule.slot(round), &seed);
        let h = header(
            schedule.slot(round),
            schedule.leader_id(round),
            Some(*proof.signature()),
        );
        assert_eq!(schedule.verify_header(&h), Ok(out));

        // Someone else, with a valid proof of its own for the same slot.
        if let Some(other) = sks.iter().find(|sk| sk.public_key() != *leader.key.key()) {
            let (_, p) = prove_proposer(other, schedule.slot(round), &seed);
            let h2 = header(
                schedule.slot(round),
                other.public_key().validator_id(),
                Some(*p.signature()),
            );
            assert_eq!(
                schedule.verify_header(&h2),
                Err(VrfError::NotLeader {
                    round,
                    expected: schedule.leader_id(round),
                    got: other.public_key().validator_id(),
                })
            );
            checked_wrong_leader = true;
        }
        let mut wrong_chain = h.clone();
        wrong_chain.chain = ChainId(8);
        assert!(matches!(
            schedule.verify_header(&wrong_chain),
            Err(VrfError::WrongChain { .. })
        ));
        let mut wrong_epoch = h.clone();
        wrong_epoch.epoch = Epoch(5);
        assert!(matches!(
            schedule.verify_header(&wrong_epoch),
            Err(VrfError::WrongEpoch { .. })
        ));
    }
    assert!(checked_wrong_leader);
}
