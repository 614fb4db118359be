//! BLS (validators) and ed25519 (accounts): what must verify does, and every forgery the
//! committee and certificate code could be fed is refused.

mod support;

use banyan_core::certificate::{
    CertificateError, Committee, CommitteeMember, QuorumCertificate, SignerBitmap, VoteData,
};
use banyan_core::codec;
use banyan_core::hash::Digest;
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::*;
use blst::min_pk;
use support::*;

fn vote(block: u8) -> VoteData {
    VoteData {
        chain: ChainId(3),
        epoch: Epoch(1),
        round: Round(9),
        height: Height(4),
        block: Digest([block; 32]),
    }
}

fn votes(sks: &[BlsSecretKey], data: &VoteData, who: &[usize]) -> Vec<(usize, BlsSignature)> {
    let msg = data.signing_message();
    who.iter()
        .map(|&i| (i, sks[i].sign(msg.as_bytes())))
        .collect()
}

#[test]
fn single_signature_verifies_and_rejects_wrong_message_key_and_dst() {
    let (a, b) = (&bls_keys()[0], &bls_keys()[1]);
    let sig = a.sign(b"hello");
    sig.verify(b"hello", &a.public_key()).expect("valid");
    assert_eq!(
        sig.verify(b"hellp", &a.public_key()),
        Err(KeyError::BadSignature)
    );
    assert_eq!(
        sig.verify(b"hello", &b.public_key()),
        Err(KeyError::BadSignature)
    );
    // Same key and message, another DST (the proof-of-possession one, or a VRF's).
    let other_dst = a.sign_with_dst(b"hello", BLS_POP_DST);
    assert_eq!(
        other_dst.verify(b"hello", &a.public_key()),
        Err(KeyError::BadSignature)
    );
    let vrf_like = a.sign_with_dst(b"hello", b"BANYAN_VRF_BLS12381G2_XMD:SHA-256_SSWU_RO_");
    assert!(vrf_like.verify(b"hello", &a.public_key()).is_err());
}

#[test]
fn aggregate_of_n_verifies_and_one_wrong_signer_fails() {
    for n in [1usize, 4, 16, 100] {
        let (sks, committee) = committee(n);
        let data = vote(1);
        let all: Vec<usize> = (0..n).collect();
        let qc = QuorumCertificate::aggregate(&committee, data, &votes(&sks, &data, &all))
            .expect("quorum");
        assert_eq!(
            qc.verify(&committee).expect("valid"),
            committee.total_stake()
        );

        if n > 1 {
            // One member signed another block: the aggregate no longer verifies.
            let mut v = votes(&sks, &data, &all);
            v[n / 2].1 = sks[n / 2].sign(vote(2).signing_message().as_bytes());
            let bad = QuorumCertificate::aggregate(&committee, data, &v).expect("shape ok");
            assert!(matches!(
                bad.verify(&committee),
                Err(CertificateError::Signature(_))
            ));
        }
    }
}

#[test]
fn quorum_needs_more_than_two_thirds_of_stake() {
    let (sks, committee) = committee(4);
    let data = vote(1);
    // 3 of 4 equal stakes = 30 of 40 > 26.6: a quorum. 2 of 4 is not.
    assert!(
        QuorumCertificate::aggregate(&committee, data, &votes(&sks, &data, &[0, 1, 3])).is_ok()
    );
    assert!(matches!(
        QuorumCertificate::aggregate(&committee, data, &votes(&sks, &data, &[0, 1])),
        Err(CertificateError::NoQuorum { .. })
    ));
}

#[test]
#[allow(unsafe_code)]
fn rogue_key_without_valid_pop_is_rejected() {
    // The attacker publishes pk_rogue = pk_attacker - pk_victim, so that pk_rogue + pk_victim
    // = pk_attacker and the attacker alone could forge a "two-signer" aggregate.
    let victim = &bls_keys()[0];
    let attacker = &bls_keys()[1];
    let neg_victim = {
        let mut p = blst::blst_p1::default();
        let mut aff = blst::blst_p1_affine::default();
        let bytes = victim.public_key().as_bytes().to_owned();
        // SAFETY: plain blst point arithmetic on valid, owned values.
        unsafe {
            assert_eq!(
                blst::blst_p1_uncompress(&mut aff, bytes.as_ptr()),
                blst::BLST_ERROR::BLST_SUCCESS
            );
            blst::blst_p1_from_affine(&mut p, &aff);
            blst::blst_p1_cneg(&mut p, true);
            let mut att = blst::blst_p1_affine::default();
            let ab = attacker.public_key().as_bytes().to_owned();
            assert_eq!(
                blst::blst_p1_uncompress(&mut att, ab.as_ptr()),
                blst::BLST_ERROR::BLST_SUCCESS
            );
            blst::blst_p1_add_or_double_affine(&mut p, &p, &att);
            let mut out = [0u8; 48];
            blst::blst_p1_compress(out.as_mut_ptr(), &p);
            out
        }
    };
    let rogue = BlsPublicKey::from_bytes(&neg_victim).expect("a valid subgroup point");
    // The attacker cannot prove possession of the rogue key: any PoP it makes is refused.
    let fake_pop = ProofOfPossession(attacker.sign_with_dst(rogue.as_bytes(), BLS_POP_DST));
    assert!(matches!(
        fake_pop.verify(&rogue),
        Err(KeyError::BadProofOfPossession(_))
    ));
    // Nor can a PoP of another key be reused.
    assert!(victim.prove_possession().verify(&rogue).is_err());
    assert!(victim
        .prove_possession()
        .verify(&attacker.public_key())
        .is_err());
    // Honest keys pass.
    victim
        .prove_possession()
        .verify(&victim.public_key())
        .expect("own pop");
}

#[test]
fn infinity_and_out_of_subgroup_points_are_rejected() {
    let mut inf_pk = [0u8; 48];
    inf_pk[0] = 0xc0;
    assert_eq!(
        BlsPublicKey::from_bytes(&inf_pk),
        Err(KeyError::Infinity("BLS public key"))
    );
    let mut inf_sig = [0u8; 96];
    inf_sig[0] = 0xc0;
    assert_eq!(
        BlsSignature::from_bytes(&inf_sig).err(),
        Some(KeyError::Infinity("BLS signature"))
    );

    // A point on the curve but outside the prime-order subgroup: search x until the compressed
    // point decodes (on the curve) yet fails the subgroup check. Most curve points of G1/G2 are
    // outside the subgroup, so this finds one quickly.
    let mut found_pk = false;
    for x in 1u8..=255 {
        let mut b = [0u8; 48];
        b[0] = 0x80;
        b[47] = x;
        if min_pk::PublicKey::uncompress(&b).is_ok() {
            assert_eq!(
                BlsPublicKey::from_bytes(&b),
                Err(KeyError::NotInSubgroup("BLS public key"))
            );
            found_pk = true;
            break;
        }
    }
    assert!(found_pk, "no off-subgroup G1 point found");
    let mut found_sig = false;
    for x in 1u8..=255 {
        let mut b = [0u8; 96];
        b[0] = 0x80;
        b[95] = x;
        if min_pk::Signature::uncompress(&b).is_ok() {
            assert_eq!(
                BlsSignature::from_bytes(&b).err(),
                Some(KeyError::NotInSubgroup("BLS signature"))
            );
            found_sig = true;
            break;
        }
    }
    assert!(found_sig, "no off-subgroup G2 point found");
    // Wrong lengths.
    assert!(BlsPublicKey::from_bytes(&[0u8; 47]).is_err());
    assert!(BlsSignature::from_bytes(&[0u8; 95]).is_err());
}

#[test]
fn bitmap_that_does_not_match_the_aggregate_is_rejected() {
    let (sks, committee) = committee(7);
    let data = vote(1);
    let mut qc =
        QuorumCertificate::aggregate(&committee, data, &votes(&sks, &data, &[0, 1, 2, 3, 4]))
            .expect("quorum");
    qc.verify(&committee).expect("valid");
    // Claim signer 5 instead of 4.
    let mut bits = qc.signers.as_bytes().to_vec();
    bits[0] = (bits[0] & !(1 << 4)) | (1 << 5);
    qc.signers = SignerBitmap::from_parts(7, bits).expect("canonical");
    assert!(matches!(
        qc.verify(&committee),
        Err(CertificateError::Signature(_))
    ));
    // Claim an extra signer that did not sign.
    let mut qc2 =
        QuorumCertificate::aggregate(&committee, data, &votes(&sks, &data, &[0, 1, 2, 3, 4]))
            .expect("quorum");
    let mut bits = qc2.signers.as_bytes().to_vec();
    bits[0] |= 1 << 6;
    qc2.signers = SignerBitmap::from_parts(7, bits).expect("canonical");
    assert!(qc2.verify(&committee).is_err());
    // A bitmap sized for another committee.
    qc2.signers = SignerBitmap::from_parts(8, vec![0x1f]).expect("canonical");
    assert!(matches!(
        qc2.verify(&committee),
        Err(CertificateError::BitmapSize { .. })
    ));
    // Non-canonical bitmaps: padding bits set, wrong byte count.
    assert!(SignerBitmap::from_parts(7, vec![0x80]).is_err());
    assert!(SignerBitmap::from_parts(7, vec![0x01, 0x00]).is_err());
    // A QC checked against another epoch's committee.
    let other = Committee::new(Epoch(2), committee.members().to_vec()).expect("valid");
    assert!(matches!(
        qc.verify(&other),
        Err(CertificateError::WrongEpoch { .. })
    ));
}

#[test]
fn one_signer_counted_twice_is_rejected() {
    let (sks, committee) = committee(4);
    let data = vote(1);
    // Listing a vote twice is refused outright.
    let mut v = votes(&sks, &data, &[0, 1, 2]);
    v.push(v[0]);
    assert_eq!(
        QuorumCertificate::aggregate(&committee, data, &v).err(),
        Some(CertificateError::SignerCountedTwice(0))
    );
    // Two members' worth of stake from one signer: aggregate signer 0's signature twice and
    // claim signers {0, 1, 2}: the aggregate does not match the bitmap.
    let v = votes(&sks, &data, &[0, 2]);
    let doubled = BlsSignature::aggregate([&v[0].1, &v[0].1, &v[1].1]).expect("aggregate");
    let bitmap = SignerBitmap::from_parts(4, vec![0b0111]).expect("canonical");
    let forged = QuorumCertificate {
        data,
        signers: bitmap,
        signature: doubled,
    };
    assert!(matches!(
        forged.verify(&committee),
        Err(CertificateError::Signature(_))
    ));
    // And a committee cannot list one key twice.
    let m = committee.members()[0].clone();
    assert!(matches!(
        Committee::new(Epoch(1), vec![m.clone(), CommitteeMember { stake: 3, ..m }]),
        Err(CertificateError::DuplicateMember(_))
    ));
}

#[test]
fn certificates_round_trip_and_still_verify() {
    let (sks, committee) = committee(16);
    let data = vote(1);
    let qc = QuorumCertificate::aggregate(
        &committee,
        data,
        &votes(&sks, &data, &(0..11).collect::<Vec<_>>()),
    )
    .expect("quorum");
    let back: QuorumCertificate = codec::decode(&codec::encode(&qc), 4096).expect("decodes");
    back.verify(&committee).expect("still valid");
}

#[test]
fn ed25519_signatures_and_batches() {
    let keys = account_keys();
    let txs: Vec<_> = (0..32)
        .map(|i| {
            transfer(
                &keys[i % keys.len()],
                i as u64,
                keys[(i + 1) % keys.len()].public_key().address(),
                1,
            )
        })
        .collect();
    for t in &txs {
        t.verify_signature().expect("valid");
    }
    banyan_core::tx::SignedTx::verify_batch(&txs).expect("valid batch");

    // One bad signature in the batch: the batch fails and names exactly that one.
    let mut bad = txs.clone();
    let mut s = bad[13].signature.to_bytes();
    s[5] ^= 1;
    bad[13].signature = AccountSignature::from_bytes(&s);
    assert_eq!(
        banyan_core::tx::SignedTx::verify_batch(&bad),
        Err(banyan_core::tx::BadSignatures(vec![13]))
    );
    // With ids the caller computed: the right ids pass; an id swapped with another
    // transaction's names exactly those two; ids missing fail the whole batch.
    let refs: Vec<&banyan_core::tx::SignedTx> = txs.iter().collect();
    let mut ids: Vec<_> = txs.iter().map(|t| t.id()).collect();
    banyan_core::tx::SignedTx::verify_batch_with_ids(&refs, &ids).expect("valid batch");
    ids.swap(3, 7);
    assert_eq!(
        banyan_core::tx::SignedTx::verify_batch_with_ids(&refs, &ids),
        Err(banyan_core::tx::BadSignatures(vec![3, 7]))
    );
    assert_eq!(
        banyan_core::tx::SignedTx::verify_batch_with_ids(&refs[..2], &ids[..1]),
        Err(banyan_core::tx::BadSignatures(vec![0, 1]))
    );
    // A body changed after signing (replay on another chain) fails.
    let mut other_chain = txs[0].clone();
    other_chain.body.chain = ChainId(9);
    assert!(other_chain.verify_signature().is_err());
    // A signature by another key fails.
    let mut wrong_key = txs[0].clone();
    wrong_key.body.sender = keys[5].public_key();
    assert!(wrong_key.verify_signature().is_err());
    // Batch shape mismatch is an error, not a panic.
    assert!(matches!(
        verify_account_batch(&[b"x"], &[], &[]),
        Err(KeyError::BatchShape { .. })
    ));
}
