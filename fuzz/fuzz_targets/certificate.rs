//! Certificates as checkpoints, epoch proofs and light clients receive them: a certified
//! header or a quorum certificate, decoded (canonical encodings only) and verified against a
//! committee of four. Anything that verifies must carry more than two thirds of the stake and
//! certify what it claims.
#![no_main]

use banyan_core::certificate::QuorumCertificate;
use banyan_core::header::CertifiedHeader;
use banyan_core::tx::MAX_TX_BYTES;
use banyan_fuzz::{canonical, committee, COMMITTEE_SIZE};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&kind, rest)) = data.split_first() else {
        return;
    };
    let committee = committee();
    if kind & 1 == 0 {
        let Some(proof) = canonical::<CertifiedHeader>(rest, MAX_TX_BYTES) else {
            return;
        };
        if let Ok(header) = proof.verify(committee) {
            assert!(proof.commit_qc.signers.count() * 3 > COMMITTEE_SIZE * 2);
            assert_eq!(Some(header), proof.headers.first());
            let last = proof.headers.last().expect("a verified proof has headers");
            assert_eq!(last.id(), proof.commit_qc.data.block);
        }
    } else {
        let Some(qc) = canonical::<QuorumCertificate>(rest, MAX_TX_BYTES) else {
            return;
        };
        if let Ok(stake) = qc.verify(committee) {
            assert!(
                stake * 3 > COMMITTEE_SIZE as u128 * 2,
                "a quorum of {stake}"
            );
        }
    }
});
