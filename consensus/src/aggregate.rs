//! Turning votes into quorum certificates and timeouts into timeout certificates.
//!
//! **Optimistic aggregation.** The leader adds vote signatures up without checking them (a
//! pairing each) and checks the aggregate once when the signers reach a quorum. Only if that
//! fails does it check the votes one by one, drop the bad ones (and ban their signers for the
//! round), and wait for more. [`aggregate_verify_each`] is the reference that checks every vote
//! first; benches compare the two.

use banyan_core::certificate::{
    CertificateError, Committee, QuorumCertificate, SignerBitmap, VoteData,
};
use banyan_core::codec::BoundedVec;
use banyan_core::ids::Round;
use banyan_core::keys::{BlsSignature, BLS_SIG_DST};
use std::collections::{BTreeMap, HashSet};

use crate::crypto::SignatureVerifier;
use crate::types::{TcGroup, TimeoutCertificate, TimeoutData};

/// Result of an aggregation attempt.
#[derive(Debug)]
pub struct Aggregated<C> {
    /// The certificate, if the valid signatures reach a quorum.
    pub certificate: Option<C>,
    /// Signers whose signatures did not verify.
    pub bad_signers: Vec<usize>,
}

fn stake_of(committee: &Committee, signers: impl Iterator<Item = usize>) -> u128 {
    signers
        .filter_map(|i| committee.members().get(i))
        .map(|m| m.stake as u128)
        .sum()
}

/// Optimistic: aggregate, verify once; on failure verify each, drop the bad, aggregate again.
pub fn aggregate_optimistic(
    committee: &Committee,
    data: VoteData,
    votes: &[(usize, BlsSignature)],
    verifier: &mut dyn SignatureVerifier,
) -> Result<Aggregated<QuorumCertificate>, CertificateError> {
    let msg = data.signing_message();
    let qc = QuorumCertificate::aggregate(committee, data, votes)?;
    if verifier
        .verify_signers(committee, msg.as_bytes(), &qc.signers, &qc.signature)
        .is_ok()
    {
        return Ok(Aggregated {
            certificate: Some(qc),
            bad_signers: Vec::new(),
        });
    }
    // The aggregate failed: find the bad votes exactly as the reference does.
    aggregate_verify_each(committee, data, votes, verifier)
}

/// Reference: verify every vote, then aggregate the good ones.
pub fn aggregate_verify_each(
    committee: &Committee,
    data: VoteData,
    votes: &[(usize, BlsSignature)],
    verifier: &mut dyn SignatureVerifier,
) -> Result<Aggregated<QuorumCertificate>, CertificateError> {
    let msg = data.signing_message();
    let mut good = Vec::with_capacity(votes.len());
    let mut bad = Vec::new();
    for &(i, sig) in votes {
        if verifier.verify_one(committee, i, msg.as_bytes(), &sig, BLS_SIG_DST) {
            good.push((i, sig));
        } else {
            bad.push(i);
        }
    }
    let certificate = if stake_of(committee, good.iter().map(|v| v.0)) >= committee.quorum_stake() {
        Some(QuorumCertificate::aggregate(committee, data, &good)?)
    } else {
        None
    };
    Ok(Aggregated {
        certificate,
        bad_signers: bad,
    })
}

/// Verify a timeout certificate: it names this committee's epoch, its groups are disjoint and
/// sized to the committee, together they hold a quorum, and each group's aggregate verifies
/// over its own [`TimeoutData`].
pub fn verify_tc(
    committee: &Committee,
    tc: &TimeoutCertificate,
    verifier: &mut dyn SignatureVerifier,
) -> Result<(), CertificateError> {
    if tc.epoch != committee.epoch() {
        return Err(CertificateError::WrongEpoch {
            cert: tc.epoch,
            committee: committee.epoch(),
        });
    }
    let mut seen = HashSet::new();
    let mut stake: u128 = 0;
    for g in tc.groups.iter() {
        stake += committee.signed_stake(&g.signers)?;
        for i in g.signers.signers() {
            if !seen.insert(i) {
                return Err(CertificateError::SignerCountedTwice(i));
            }
        }
    }
    if stake < committee.quorum_stake() {
        return Err(CertificateError::NoQuorum {
            signed: stake,
            total: committee.total_stake(),
            needed: committee.quorum_stake(),
        });
    }
    for g in tc.groups.iter() {
        let data = tc.group_data(g);
        verifier.verify_signers(
            committee,
            data.signing_message().as_bytes(),
            &g.signers,
            &g.signature,
        )?;
    }
    Ok(())
}

/// Timeouts of one round, collected per signer.
#[derive(Debug, Default)]
pub struct TimeoutCollector {
    timeouts: BTreeMap<usize, (Round, BlsSignature)>,
    banned: HashSet<usize>,
}

impl TimeoutCollector {
    /// Add a timeout (its signature unchecked); returns false if the signer already counted.
    pub fn add(&mut self, signer: usize, high_qc_round: Round, sig: BlsSignature) -> bool {
        if self.banned.contains(&signer) || self.timeouts.contains_key(&signer) {
            return false;
        }
        self.timeouts.insert(signer, (high_qc_round, sig));
        true
    }

    /// Whether `signer` already counted (or was caught with a bad signature).
    pub fn has(&self, signer: usize) -> bool {
        self.banned.contains(&signer) || self.timeouts.contains_key(&signer)
    }

    /// Signers caught with a bad signature in this round.
    pub fn banned(&self) -> impl Iterator<Item = usize> + '_ {
        self.banned.iter().copied()
    }

    /// Stake of the collected signers.
    pub fn stake(&self, committee: &Committee) -> u128 {
        stake_of(committee, self.timeouts.keys().copied())
    }

    /// Form a TC if the timeouts reach a quorum, optimistically: aggregate each group, verify
    /// each aggregate, and only for a failing group check its timeouts one by one.
    pub fn try_certify(
        &mut self,
        committee: &Committee,
        template: TimeoutData,
        verifier: &mut dyn SignatureVerifier,
    ) -> Result<Option<TimeoutCertificate>, CertificateError> {
        if self.stake(committee) < committee.quorum_stake() {
            return Ok(None);
        }
        let mut by_round: BTreeMap<Round, Vec<(usize, BlsSignature)>> = BTreeMap::new();
        for (&i, &(r, s)) in &self.timeouts {
            by_round.entry(r).or_default().push((i, s));
        }
        let mut groups = Vec::with_capacity(by_round.len());
        for (r, sigs) in by_round {
            let data = TimeoutData {
                high_qc_round: r,
                ..template
            };
            let msg = data.signing_message();
            let group = make_group(committee, r, &sigs)?;
            if verifier
                .verify_signers(committee, msg.as_bytes(), &group.signers, &group.signature)
                .is_ok()
            {
                groups.push(group);
                continue;
            }
            let mut good = Vec::new();
            for (i, s) in sigs {
                if verifier.verify_one(committee, i, msg.as_bytes(), &s, BLS_SIG_DST) {
                    good.push((i, s));
                } else {
                    self.timeouts.remove(&i);
                    self.banned.insert(i);
                }
            }
            if !good.is_empty() {
                groups.push(make_group(committee, r, &good)?);
            }
        }
        if self.stake(committee) < committee.quorum_stake()
            || groups.len() > crate::types::MAX_TC_GROUPS
        {
            return Ok(None);
        }
        Ok(Some(TimeoutCertificate {
            chain: template.chain,
            epoch: template.epoch,
            round: template.round,
            groups: BoundedVec::new(groups).map_err(|_| CertificateError::EmptyCommittee)?,
        }))
    }
}

fn make_group(
    committee: &Committee,
    high_qc_round: Round,
    sigs: &[(usize, BlsSignature)],
) -> Result<TcGroup, CertificateError> {
    let mut bits = vec![0u8; committee.len().div_ceil(8)];
    for &(i, _) in sigs {
        if i >= committee.len() {
            return Err(CertificateError::SignerOutOfRange {
                index: i,
                size: committee.len(),
            });
        }
        bits[i / 8] |= 1 << (i % 8);
    }
    let signers = SignerBitmap::from_parts(committee.len() as u16, bits)?;
    let signature = BlsSignature::aggregate(sigs.iter().map(|s| &s.1))?;
    Ok(TcGroup {
        high_qc_round,
        signers,
        signature,
    })
}
