//! Committees and quorum certificates.
//!
//! A quorum certificate (QC) is **one BLS aggregate signature plus a signer bitmap** over a
//! committee. It is valid when the bitmap is canonical and sized to the committee, the signers
//! hold strictly more than two thirds of the committee's stake, and the aggregate verifies
//! against the sum of the signers' public keys (one `fast_aggregate_verify`: a single pairing
//! check whatever the committee size). Every key in a [`Committee`] has had its proof of
//! possession checked, so the sum cannot be steered by a rogue key.

use crate::codec::{Bytes, Decode, DecodeError, Decoder, Encode, EncodeError, Encoder, Writer};
use crate::hash::{Digest, Domain, Hasher};
use crate::ids::{ChainId, Epoch, Height, Round};
use crate::keys::{AggregatePublicKey, BlsSignature, KeyError, PopVerifiedKey};

/// The largest committee a certificate can describe.
pub const MAX_COMMITTEE_SIZE: usize = 1024;
const MAX_BITMAP_BYTES: usize = MAX_COMMITTEE_SIZE / 8;

/// Why a committee or a certificate was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CertificateError {
    /// A committee needs at least one member.
    #[error("committee is empty")]
    EmptyCommittee,
    /// Too many members.
    #[error("committee of {0} members exceeds the maximum of {MAX_COMMITTEE_SIZE}")]
    CommitteeTooLarge(usize),
    /// A key appears twice in the committee.
    #[error("key {0} appears twice in the committee")]
    DuplicateMember(String),
    /// A member with no stake.
    #[error("committee member {0} has zero stake")]
    ZeroStake(usize),
    /// The bitmap length does not match the committee.
    #[error("signer bitmap covers {got} members, the committee has {want}")]
    BitmapSize {
        /// Bitmap length.
        got: usize,
        /// Committee size.
        want: usize,
    },
    /// A bitmap that is not in canonical form.
    #[error("signer bitmap is not canonical: {0}")]
    BitmapEncoding(String),
    /// A vote from an index outside the committee.
    #[error("signer index {index} is outside a committee of {size}")]
    SignerOutOfRange {
        /// The index.
        index: usize,
        /// Committee size.
        size: usize,
    },
    /// The same signer counted twice.
    #[error("signer {0} is counted twice")]
    SignerCountedTwice(usize),
    /// Not enough stake signed.
    #[error("signers hold {signed} of {total} stake; a quorum needs {needed}")]
    NoQuorum {
        /// Stake that signed.
        signed: u128,
        /// Committee stake.
        total: u128,
        /// Quorum threshold.
        needed: u128,
    },
    /// The certificate is for another epoch than the committee given.
    #[error("certificate is for epoch {cert}, committee is of epoch {committee}")]
    WrongEpoch {
        /// Certificate epoch.
        cert: Epoch,
        /// Committee epoch.
        committee: Epoch,
    },
    /// The aggregate signature does not verify.
    #[error("aggregate signature does not verify: {0}")]
    Signature(#[from] KeyError),
}

/// Which committee members signed, one bit each (member `i` is bit `i % 8` of byte `i / 8`).
/// Canonical: exactly `ceil(len / 8)` bytes and the unused high bits zero; encoded as the
/// member count (`u16`) followed by the bytes as a length-prefixed string.
#[derive(Clone, PartialEq, Eq, Debug)]
pub struct SignerBitmap {
    len: u16,
    bits: Vec<u8>,
}

impl SignerBitmap {
    /// An empty bitmap for `len` members.
    pub fn new(len: usize) -> Result<Self, CertificateError> {
        if len > MAX_COMMITTEE_SIZE {
            return Err(CertificateError::CommitteeTooLarge(len));
        }
        // len <= MAX_COMMITTEE_SIZE < u16::MAX.
        Ok(SignerBitmap {
            len: len as u16,
            bits: vec![0u8; len.div_ceil(8)],
        })
    }

    /// Build from raw parts, checking the canonical form.
    pub fn from_parts(len: u16, bits: Vec<u8>) -> Result<Self, CertificateError> {
        let n = len as usize;
        if n > MAX_COMMITTEE_SIZE {
            return Err(CertificateError::CommitteeTooLarge(n));
        }
        if bits.len() != n.div_ceil(8) {
            return Err(CertificateError::BitmapEncoding(format!(
                "{} bytes for {len} members",
                bits.len()
            )));
        }
        if !n.is_multiple_of(8) {
            if let Some(last) = bits.last() {
                if last >> (n % 8) != 0 {
                    return Err(CertificateError::BitmapEncoding(
                        "bits set beyond the last member".into(),
                    ));
                }
            }
        }
        Ok(SignerBitmap { len, bits })
    }

    /// Members covered.
    pub fn len(&self) -> usize {
        self.len as usize
    }

    /// Whether it covers no member.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether member `i` signed.
    pub fn get(&self, i: usize) -> bool {
        i < self.len() && self.bits[i / 8] & (1 << (i % 8)) != 0
    }

    /// Mark member `i`; returns whether it was already marked.
    fn set(&mut self, i: usize) -> Result<bool, CertificateError> {
        if i >= self.len() {
            return Err(CertificateError::SignerOutOfRange {
                index: i,
                size: self.len(),
            });
        }
        let was = self.get(i);
        self.bits[i / 8] |= 1 << (i % 8);
        Ok(was)
    }

    /// Indices of the members that signed, ascending.
    pub fn signers(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.len()).filter(|&i| self.get(i))
    }

    /// Number of signers.
    pub fn count(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The raw bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.bits
    }
}

impl Encode for SignerBitmap {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.len.encode(encoder)?;
        (self.bits.len() as u64).encode(encoder)?;
        Writer::write(encoder.writer(), &self.bits)
    }
}

impl<C> Decode<C> for SignerBitmap {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let len = u16::decode(decoder)?;
        let bits = Bytes::<MAX_BITMAP_BYTES>::decode(decoder)?;
        SignerBitmap::from_parts(len, bits.as_slice().to_vec())
            .map_err(|e| DecodeError::OtherString(e.to_string()))
    }
}
crate::codec::impl_borrow_decode!(SignerBitmap);

/// One committee member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CommitteeMember {
    /// Its key, possession proven.
    pub key: PopVerifiedKey,
    /// Its voting weight.
    pub stake: u64,
}

/// The validators that certify one chain's blocks during one epoch, in a fixed order (the
/// bitmap order).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Committee {
    epoch: Epoch,
    members: Vec<CommitteeMember>,
    total_stake: u128,
}

impl Committee {
    /// A committee from its members in bitmap order.
    pub fn new(epoch: Epoch, members: Vec<CommitteeMember>) -> Result<Self, CertificateError> {
        if members.is_empty() {
            return Err(CertificateError::EmptyCommittee);
        }
        if members.len() > MAX_COMMITTEE_SIZE {
            return Err(CertificateError::CommitteeTooLarge(members.len()));
        }
        let mut seen = std::collections::HashSet::with_capacity(members.len());
        let mut total: u128 = 0;
        for (i, m) in members.iter().enumerate() {
            if m.stake == 0 {
                return Err(CertificateError::ZeroStake(i));
            }
            if !seen.insert(*m.key.key()) {
                return Err(CertificateError::DuplicateMember(m.key.key().to_hex()));
            }
            // At most 1024 * u64::MAX, far below u128::MAX.
            total += m.stake as u128;
        }
        Ok(Committee {
            epoch,
            members,
            total_stake: total,
        })
    }

    /// The epoch it serves.
    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Members in bitmap order.
    pub fn members(&self) -> &[CommitteeMember] {
        &self.members
    }

    /// Number of members.
    pub fn len(&self) -> usize {
        self.members.len()
    }

    /// Whether it has no member (never true for a constructed committee).
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Sum of all stakes.
    pub fn total_stake(&self) -> u128 {
        self.total_stake
    }

    /// The least stake that is strictly more than two thirds of the total.
    pub fn quorum_stake(&self) -> u128 {
        self.total_stake * 2 / 3 + 1
    }

    /// The most Byzantine stake tolerated: strictly less than a third of the total.
    pub fn max_faulty_stake(&self) -> u128 {
        (self.total_stake - 1) / 3
    }

    /// Stake of the signers in `bitmap` (which must match this committee).
    pub fn signed_stake(&self, bitmap: &SignerBitmap) -> Result<u128, CertificateError> {
        if bitmap.len() != self.members.len() {
            return Err(CertificateError::BitmapSize {
                got: bitmap.len(),
                want: self.members.len(),
            });
        }
        Ok(bitmap
            .signers()
            .map(|i| self.members[i].stake as u128)
            .sum())
    }

    /// Check that `signature` aggregates signatures of `msg` by exactly the members in
    /// `bitmap`, and that they form a quorum. Returns the signed stake.
    pub fn verify_quorum(
        &self,
        msg: &[u8],
        bitmap: &SignerBitmap,
        signature: &BlsSignature,
    ) -> Result<u128, CertificateError> {
        let signed = self.signed_stake(bitmap)?;
        let needed = self.quorum_stake();
        if signed < needed {
            return Err(CertificateError::NoQuorum {
                signed,
                total: self.total_stake,
                needed,
            });
        }
        let agg = AggregatePublicKey::aggregate(bitmap.signers().map(|i| &self.members[i].key))?;
        signature.verify_aggregate(msg, &agg)?;
        Ok(signed)
    }

    /// Aggregate individual signatures `(member index, signature)` into a bitmap and one
    /// signature, refusing out-of-range and repeated signers and a short quorum. The signatures
    /// themselves are not checked here (consensus aggregates optimistically and verifies the
    /// result once).
    pub fn aggregate(
        &self,
        votes: &[(usize, BlsSignature)],
    ) -> Result<(SignerBitmap, BlsSignature), CertificateError> {
        let mut bitmap = SignerBitmap::new(self.members.len())?;
        for &(i, _) in votes {
            if bitmap.set(i)? {
                return Err(CertificateError::SignerCountedTwice(i));
            }
        }
        let signed = self.signed_stake(&bitmap)?;
        if signed < self.quorum_stake() {
            return Err(CertificateError::NoQuorum {
                signed,
                total: self.total_stake,
                needed: self.quorum_stake(),
            });
        }
        let sig = BlsSignature::aggregate(votes.iter().map(|(_, s)| s))?;
        Ok((bitmap, sig))
    }
}

/// What a vote certifies: a block of a chain at a round of an epoch.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Encode, Decode)]
pub struct VoteData {
    /// The chain.
    pub chain: ChainId,
    /// The epoch.
    pub epoch: Epoch,
    /// The round.
    pub round: Round,
    /// The block's height.
    pub height: Height,
    /// The block's id.
    pub block: Digest,
}

/// Hash domain of proposal signatures.
const PROPOSAL_DOMAIN: Domain = Domain::Custom("banyan/consensus/proposal");

/// The digest a leader signs to propose `block` in `round` of `epoch` on `chain`.
pub fn proposal_message(chain: ChainId, epoch: Epoch, round: Round, block: &Digest) -> Digest {
    let mut h = Hasher::new(PROPOSAL_DOMAIN);
    h.update(&chain.0.to_le_bytes())
        .update(&epoch.0.to_le_bytes())
        .update(&round.0.to_le_bytes())
        .update(block.as_bytes());
    h.finalize()
}

impl VoteData {
    /// The bytes validators sign for this vote (domain-separated from every other message).
    pub fn signing_message(&self) -> Digest {
        let mut h = Hasher::new(Domain::Custom("banyan/vote"));
        h.update(&crate::codec::encode(self));
        h.finalize()
    }
}

/// A block certified by a quorum of its committee.
#[derive(Clone, Debug, PartialEq, Eq, Encode, Decode)]
pub struct QuorumCertificate {
    /// What was voted for.
    pub data: VoteData,
    /// Who signed.
    pub signers: SignerBitmap,
    /// The aggregate of their signatures.
    pub signature: BlsSignature,
}

impl QuorumCertificate {
    /// Form a certificate from votes (see [`Committee::aggregate`]).
    pub fn aggregate(
        committee: &Committee,
        data: VoteData,
        votes: &[(usize, BlsSignature)],
    ) -> Result<Self, CertificateError> {
        let (signers, signature) = committee.aggregate(votes)?;
        Ok(QuorumCertificate {
            data,
            signers,
            signature,
        })
    }

    /// Check the certificate against the committee of its epoch.
    pub fn verify(&self, committee: &Committee) -> Result<u128, CertificateError> {
        if committee.epoch() != self.data.epoch {
            return Err(CertificateError::WrongEpoch {
                cert: self.data.epoch,
                committee: committee.epoch(),
            });
        }
        committee.verify_quorum(
            self.data.signing_message().as_bytes(),
            &self.signers,
            &self.signature,
        )
    }
}
