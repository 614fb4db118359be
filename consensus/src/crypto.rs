//! Signature checks behind a trait, so a driver may cache them.
//!
//! [`DirectVerifier`] runs every pairing. [`CachingVerifier`] remembers the result of each
//! distinct check (keyed by the full input: message, signature, signer set, domain tag), so a
//! certificate verified by one replica of a simulated committee is not verified again by the
//! other six. Cached or not, the result is what blst says: a bad signature is rejected either
//! way. The node uses [`DirectVerifier`]; the simulator shares one [`SharedVerifier`].

use banyan_core::certificate::{CertificateError, Committee, SignerBitmap};
use banyan_core::hash::{Digest, Domain, Hasher};
use banyan_core::keys::{AggregatePublicKey, BlsSignature, KeyError, BLS_SIG_DST};
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

/// Most entries a [`CachingVerifier`] keeps before it starts over.
pub const MAX_CACHED_CHECKS: usize = 1 << 20;

/// Checks BLS signatures made by committee members.
pub trait SignatureVerifier {
    /// Whether `sig` is member `index`'s signature of `msg` under `dst`.
    fn verify_one(
        &mut self,
        committee: &Committee,
        index: usize,
        msg: &[u8],
        sig: &BlsSignature,
        dst: &[u8],
    ) -> bool;

    /// Whether `sig` aggregates signatures of `msg` by exactly the members in `signers`
    /// (no quorum requirement; one `fast_aggregate_verify`).
    fn verify_signers(
        &mut self,
        committee: &Committee,
        msg: &[u8],
        signers: &SignerBitmap,
        sig: &BlsSignature,
    ) -> Result<(), CertificateError>;

    /// [`Committee::verify_quorum`]: the signers hold a quorum and the aggregate verifies.
    fn verify_quorum(
        &mut self,
        committee: &Committee,
        msg: &[u8],
        signers: &SignerBitmap,
        sig: &BlsSignature,
    ) -> Result<u128, CertificateError> {
        let signed = committee.signed_stake(signers)?;
        if signed < committee.quorum_stake() {
            return Err(CertificateError::NoQuorum {
                signed,
                total: committee.total_stake(),
                needed: committee.quorum_stake(),
            });
        }
        self.verify_signers(committee, msg, signers, sig)?;
        Ok(signed)
    }
}

/// Runs every check.
#[derive(Clone, Copy, Debug, Default)]
pub struct DirectVerifier;

impl SignatureVerifier for DirectVerifier {
    fn verify_one(
        &mut self,
        committee: &Committee,
        index: usize,
        msg: &[u8],
        sig: &BlsSignature,
        dst: &[u8],
    ) -> bool {
        committee
            .members()
            .get(index)
            .is_some_and(|m| sig.verify_with_dst(msg, m.key.key(), dst).is_ok())
    }

    fn verify_signers(
        &mut self,
        committee: &Committee,
        msg: &[u8],
        signers: &SignerBitmap,
        sig: &BlsSignature,
    ) -> Result<(), CertificateError> {
        if signers.len() != committee.len() {
            return Err(CertificateError::BitmapSize {
                got: signers.len(),
                want: committee.len(),
            });
        }
        let members = committee.members();
        let agg = AggregatePublicKey::aggregate(signers.signers().map(|i| &members[i].key))?;
        sig.verify_aggregate(msg, &agg)?;
        Ok(())
    }
}

/// Remembers every check's result (bounded by [`MAX_CACHED_CHECKS`]).
#[derive(Debug, Default)]
pub struct CachingVerifier {
    cache: HashMap<Digest, bool>,
    /// Checks answered from the cache.
    pub hits: u64,
    /// Checks computed.
    pub misses: u64,
}

fn cache_key(
    committee: &Committee,
    msg: &[u8],
    sig: &BlsSignature,
    who: &[u8],
    dst: &[u8],
) -> Digest {
    let mut h = Hasher::new(Domain::Custom("banyan/consensus/verify-cache"));
    h.update(&committee.epoch().0.to_le_bytes());
    for part in [msg, sig.as_bytes().as_slice(), who, dst] {
        h.update(&(part.len() as u64).to_le_bytes()).update(part);
    }
    h.finalize()
}

impl CachingVerifier {
    fn remember(&mut self, key: Digest, ok: bool) {
        if self.cache.len() >= MAX_CACHED_CHECKS {
            self.cache.clear();
        }
        self.cache.insert(key, ok);
    }
}

impl SignatureVerifier for CachingVerifier {
    fn verify_one(
        &mut self,
        committee: &Committee,
        index: usize,
        msg: &[u8],
        sig: &BlsSignature,
        dst: &[u8],
    ) -> bool {
        let key = cache_key(committee, msg, sig, &(index as u64).to_le_bytes(), dst);
        if let Some(&ok) = self.cache.get(&key) {
            self.hits += 1;
            return ok;
        }
        self.misses += 1;
        let ok = DirectVerifier.verify_one(committee, index, msg, sig, dst);
        self.remember(key, ok);
        ok
    }

    fn verify_signers(
        &mut self,
        committee: &Committee,
        msg: &[u8],
        signers: &SignerBitmap,
        sig: &BlsSignature,
    ) -> Result<(), CertificateError> {
        let mut who = signers.as_bytes().to_vec();
        who.extend_from_slice(&(signers.len() as u64).to_le_bytes());
        let key = cache_key(committee, msg, sig, &who, BLS_SIG_DST);
        if let Some(&ok) = self.cache.get(&key) {
            self.hits += 1;
            return if ok {
                Ok(())
            } else {
                Err(CertificateError::Signature(KeyError::BadSignature))
            };
        }
        self.misses += 1;
        let r = DirectVerifier.verify_signers(committee, msg, signers, sig);
        self.remember(key, r.is_ok());
        r
    }
}

/// One [`CachingVerifier`] shared by several replicas of one process (the simulator).
#[derive(Clone, Debug, Default)]
pub struct SharedVerifier(pub Rc<RefCell<CachingVerifier>>);

impl SignatureVerifier for SharedVerifier {
    fn verify_one(
        &mut self,
        committee: &Committee,
        index: usize,
        msg: &[u8],
        sig: &BlsSignature,
        dst: &[u8],
    ) -> bool {
        self.0
            .borrow_mut()
            .verify_one(committee, index, msg, sig, dst)
    }

    fn verify_signers(
        &mut self,
        committee: &Committee,
        msg: &[u8],
        signers: &SignerBitmap,
        sig: &BlsSignature,
    ) -> Result<(), CertificateError> {
        self.0
            .borrow_mut()
            .verify_signers(committee, msg, signers, sig)
    }
}
