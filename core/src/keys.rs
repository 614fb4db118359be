//! Keys and signatures: ed25519 for accounts, BLS12-381 (min-pk) for validators.
//!
//! - **Accounts** sign with ed25519 (ed25519-dalek). One signature is checked exactly as a batch
//!   of one is ([`verify_account_batch`]), so a signature is valid or not independently of how
//!   it is checked; weak (small-order) public keys are refused when decoded.
//! - **Validators** sign with BLS12-381, public keys in G1 (48 bytes compressed) and signatures in
//!   G2 (96 bytes), under the IETF proof-of-possession ciphersuite
//!   ([`BLS_SIG_DST`]). A validator key enters a committee only as a [`PopVerifiedKey`], which is
//!   made solely by checking its proof of possession ([`BLS_POP_DST`]): that defeats rogue-key
//!   attacks on aggregate signatures. Points are validated when decoded (on the curve, in the
//!   prime-order subgroup, not the identity), so an invalid point never exists in memory.
//! - Secret keys are zeroized on drop (blst and ed25519-dalek both wipe their secret scalars).

use crate::codec::{Decode, DecodeError, Decoder, Encode, EncodeError, Encoder};
use crate::hash::{hash, Digest, Domain};
use blst::min_pk;
use blst::BLST_ERROR;
use rand_core::{CryptoRng, RngCore};
use zeroize::Zeroizing;

/// Domain separation tag of validator signatures (IETF BLS, proof-of-possession scheme, G2).
pub const BLS_SIG_DST: &[u8] = b"BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";
/// Domain separation tag of proofs of possession (IETF BLS, G2).
pub const BLS_POP_DST: &[u8] = b"BLS_POP_BLS12381G2_XMD:SHA-256_SSWU_RO_POP_";

/// Bytes of a compressed BLS public key.
pub const BLS_PUBLIC_KEY_BYTES: usize = 48;
/// Bytes of a compressed BLS signature.
pub const BLS_SIGNATURE_BYTES: usize = 96;

/// Why a key or a signature was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    /// Bytes are not a valid encoding of the key or signature.
    #[error("invalid {what} encoding: {reason}")]
    Encoding {
        /// Which kind of value.
        what: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The point is the identity (infinity).
    #[error("{0} is the point at infinity")]
    Infinity(&'static str),
    /// The point is not in the prime-order subgroup.
    #[error("{0} is not in the prime-order subgroup")]
    NotInSubgroup(&'static str),
    /// An ed25519 public key of small order.
    #[error("weak (small-order) ed25519 public key")]
    WeakKey,
    /// The signature does not verify.
    #[error("signature does not verify")]
    BadSignature,
    /// The proof of possession does not verify for that public key.
    #[error("proof of possession does not verify for public key {0}")]
    BadProofOfPossession(String),
    /// Nothing to aggregate.
    #[error("cannot aggregate an empty set")]
    EmptyAggregate,
    /// Batch inputs of different lengths.
    #[error("batch has {messages} messages, {signatures} signatures and {keys} keys")]
    BatchShape {
        /// Messages given.
        messages: usize,
        /// Signatures given.
        signatures: usize,
        /// Keys given.
        keys: usize,
    },
}

fn blst_error(what: &'static str, e: BLST_ERROR) -> KeyError {
    match e {
        BLST_ERROR::BLST_PK_IS_INFINITY => KeyError::Infinity(what),
        BLST_ERROR::BLST_POINT_NOT_IN_GROUP => KeyError::NotInSubgroup(what),
        other => KeyError::Encoding {
            what,
            reason: format!("{other:?}"),
        },
    }
}

fn to_decode_error(e: KeyError) -> DecodeError {
    DecodeError::OtherString(e.to_string())
}

// ---------------------------------------------------------------------------------------------
// BLS

/// A validator's BLS secret key. Wiped from memory on drop.
pub struct BlsSecretKey(min_pk::SecretKey);

impl BlsSecretKey {
    /// A fresh key from a cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        let mut ikm = Zeroizing::new([0u8; 32]);
        rng.fill_bytes(&mut ikm[..]);
        // key_gen fails only for ikm shorter than 32 bytes.
        #[allow(clippy::expect_used)]
        let sk = min_pk::SecretKey::key_gen(&ikm[..], &[]).expect("32-byte ikm is long enough");
        BlsSecretKey(sk)
    }

    /// Derive a key deterministically from 32+ bytes of seed material (tests, genesis tooling).
    pub fn from_seed(ikm: &[u8]) -> Result<Self, KeyError> {
        min_pk::SecretKey::key_gen(ikm, &[])
            .map(BlsSecretKey)
            .map_err(|e| blst_error("BLS seed", e))
    }

    /// A key from its 32-byte big-endian scalar.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        min_pk::SecretKey::from_bytes(bytes)
            .map(BlsSecretKey)
            .map_err(|e| blst_error("BLS secret key", e))
    }

    /// The 32-byte scalar, in a buffer wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key.
    pub fn public_key(&self) -> BlsPublicKey {
        let point = self.0.sk_to_pk();
        BlsPublicKey {
            bytes: point.to_bytes(),
            point,
        }
    }

    /// Sign `msg` under [`BLS_SIG_DST`].
    pub fn sign(&self, msg: &[u8]) -> BlsSignature {
        self.sign_with_dst(msg, BLS_SIG_DST)
    }

    /// Sign `msg` under another domain separation tag (the VRF uses its own).
    pub fn sign_with_dst(&self, msg: &[u8], dst: &[u8]) -> BlsSignature {
        BlsSignature::from_point(self.0.sign(msg, dst, &[]))
    }

    /// The proof of possession of this key: a signature of the public key under [`BLS_POP_DST`].
    pub fn prove_possession(&self) -> ProofOfPossession {
        let pk = self.public_key();
        ProofOfPossession(self.sign_with_dst(&pk.bytes, BLS_POP_DST))
    }
}

impl std::fmt::Debug for BlsSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("BlsSecretKey(<redacted>)")
    }
}

/// A validated BLS public key (on the curve, in the subgroup, not infinity).
#[derive(Clone, Copy)]
pub struct BlsPublicKey {
    point: min_pk::PublicKey,
    bytes: [u8; BLS_PUBLIC_KEY_BYTES],
}

impl BlsPublicKey {
    /// Parse and validate a 48-byte compressed key.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != BLS_PUBLIC_KEY_BYTES {
            return Err(KeyError::Encoding {
                what: "BLS public key",
                reason: format!("{} bytes, expected {BLS_PUBLIC_KEY_BYTES}", bytes.len()),
            });
        }
        let point =
            min_pk::PublicKey::key_validate(bytes).map_err(|e| blst_error("BLS public key", e))?;
        let mut b = [0u8; BLS_PUBLIC_KEY_BYTES];
        b.copy_from_slice(bytes);
        Ok(BlsPublicKey { point, bytes: b })
    }

    /// The compressed encoding.
    pub fn as_bytes(&self) -> &[u8; BLS_PUBLIC_KEY_BYTES] {
        &self.bytes
    }

    /// Lower-case hex of the compressed encoding.
    pub fn to_hex(&self) -> String {
        hex::encode(self.bytes)
    }

    /// The validator id derived from this key.
    pub fn validator_id(&self) -> Digest {
        hash(Domain::Validator, &self.bytes)
    }

    pub(crate) fn point(&self) -> &min_pk::PublicKey {
        &self.point
    }
}

impl PartialEq for BlsPublicKey {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for BlsPublicKey {}
impl std::hash::Hash for BlsPublicKey {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.bytes.hash(state)
    }
}
impl PartialOrd for BlsPublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for BlsPublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.bytes.cmp(&other.bytes)
    }
}
impl std::fmt::Debug for BlsPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlsPublicKey({}..)", &self.to_hex()[..12])
    }
}
impl Encode for BlsPublicKey {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.bytes.encode(encoder)
    }
}
impl<C> Decode<C> for BlsPublicKey {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let bytes = <[u8; BLS_PUBLIC_KEY_BYTES]>::decode(decoder)?;
        BlsPublicKey::from_bytes(&bytes).map_err(to_decode_error)
    }
}
crate::codec::impl_borrow_decode!(BlsPublicKey);

/// A validated BLS signature (in the subgroup, not infinity), single or aggregate.
#[derive(Clone, Copy)]
pub struct BlsSignature {
    point: min_pk::Signature,
    bytes: [u8; BLS_SIGNATURE_BYTES],
}

impl BlsSignature {
    fn from_point(point: min_pk::Signature) -> Self {
        BlsSignature {
            bytes: point.to_bytes(),
            point,
        }
    }

    /// Parse and validate a 96-byte compressed signature.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        if bytes.len() != BLS_SIGNATURE_BYTES {
            return Err(KeyError::Encoding {
                what: "BLS signature",
                reason: format!("{} bytes, expected {BLS_SIGNATURE_BYTES}", bytes.len()),
            });
        }
        let point = min_pk::Signature::sig_validate(bytes, true)
            .map_err(|e| blst_error("BLS signature", e))?;
        let mut b = [0u8; BLS_SIGNATURE_BYTES];
        b.copy_from_slice(bytes);
        Ok(BlsSignature { point, bytes: b })
    }

    /// The compressed encoding.
    pub fn as_bytes(&self) -> &[u8; BLS_SIGNATURE_BYTES] {
        &self.bytes
    }

    /// Check this signature of `msg` by `pk` under [`BLS_SIG_DST`].
    pub fn verify(&self, msg: &[u8], pk: &BlsPublicKey) -> Result<(), KeyError> {
        self.verify_with_dst(msg, pk, BLS_SIG_DST)
    }

    /// Check this signature under another domain separation tag.
    pub fn verify_with_dst(
        &self,
        msg: &[u8],
        pk: &BlsPublicKey,
        dst: &[u8],
    ) -> Result<(), KeyError> {
        // Both points were validated when parsed, so the group checks are skipped here.
        match self.point.verify(false, msg, dst, &[], &pk.point, false) {
            BLST_ERROR::BLST_SUCCESS => Ok(()),
            _ => Err(KeyError::BadSignature),
        }
    }

    /// Check an aggregate of signatures on one `msg` by the aggregate public key `agg`
    /// (fast aggregate verify, one pairing check).
    pub fn verify_aggregate(&self, msg: &[u8], agg: &AggregatePublicKey) -> Result<(), KeyError> {
        match self
            .point
            .fast_aggregate_verify_pre_aggregated(false, msg, BLS_SIG_DST, &agg.0)
        {
            BLST_ERROR::BLST_SUCCESS => Ok(()),
            _ => Err(KeyError::BadSignature),
        }
    }

    /// Aggregate signatures (all on the same message, for a certificate).
    pub fn aggregate<'a, I>(sigs: I) -> Result<BlsSignature, KeyError>
    where
        I: IntoIterator<Item = &'a BlsSignature>,
    {
        let mut iter = sigs.into_iter();
        let first = iter.next().ok_or(KeyError::EmptyAggregate)?;
        let mut agg = min_pk::AggregateSignature::from_signature(&first.point);
        for s in iter {
            // Already group-checked when parsed.
            agg.add_signature(&s.point, false)
                .map_err(|e| blst_error("BLS signature", e))?;
        }
        let sig = BlsSignature::from_point(agg.to_signature());
        // The sum of subgroup points is in the subgroup, so no subgroup check is needed. It is
        // the identity only if the signatures cancel, which proofs of possession rule out;
        // refuse it anyway rather than hold a value that would not decode.
        if sig.bytes[0] & 0x40 != 0 {
            return Err(KeyError::Infinity("aggregate BLS signature"));
        }
        Ok(sig)
    }
}

impl PartialEq for BlsSignature {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
    }
}
impl Eq for BlsSignature {}
impl std::fmt::Debug for BlsSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "BlsSignature({}..)", &hex::encode(self.bytes)[..12])
    }
}
impl Encode for BlsSignature {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.bytes.encode(encoder)
    }
}
impl<C> Decode<C> for BlsSignature {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let bytes = <[u8; BLS_SIGNATURE_BYTES]>::decode(decoder)?;
        BlsSignature::from_bytes(&bytes).map_err(to_decode_error)
    }
}
crate::codec::impl_borrow_decode!(BlsSignature);

/// The sum of several public keys, for checking an aggregate signature.
#[derive(Clone, Copy)]
pub struct AggregatePublicKey(min_pk::PublicKey);

impl AggregatePublicKey {
    /// Sum `keys`. Only keys whose possession was proven may be summed.
    pub fn aggregate<'a, I>(keys: I) -> Result<Self, KeyError>
    where
        I: IntoIterator<Item = &'a PopVerifiedKey>,
    {
        let mut iter = keys.into_iter();
        let first = iter.next().ok_or(KeyError::EmptyAggregate)?;
        let mut agg = min_pk::AggregatePublicKey::from_public_key(first.0.point());
        for k in iter {
            // Validated when parsed.
            agg.add_public_key(k.0.point(), false)
                .map_err(|e| blst_error("BLS public key", e))?;
        }
        Ok(AggregatePublicKey(agg.to_public_key()))
    }
}

/// A proof that the holder of a BLS public key knows its secret key.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Encode, Decode)]
pub struct ProofOfPossession(pub BlsSignature);

impl ProofOfPossession {
    /// Check the proof for `pk`; on success the key may join committees.
    pub fn verify(&self, pk: &BlsPublicKey) -> Result<PopVerifiedKey, KeyError> {
        self.0
            .verify_with_dst(&pk.bytes, pk, BLS_POP_DST)
            .map_err(|_| KeyError::BadProofOfPossession(pk.to_hex()))?;
        Ok(PopVerifiedKey(*pk))
    }
}

/// A BLS public key whose proof of possession has been checked. The only way to make one is
/// [`ProofOfPossession::verify`], so only such keys can be aggregated.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct PopVerifiedKey(BlsPublicKey);

impl PopVerifiedKey {
    /// The key.
    pub fn key(&self) -> &BlsPublicKey {
        &self.0
    }
}

// ---------------------------------------------------------------------------------------------
// ed25519

/// An account's ed25519 secret key. Wiped from memory on drop.
pub struct AccountSecretKey(ed25519_dalek::SigningKey);

impl AccountSecretKey {
    /// A fresh key from a cryptographic RNG.
    pub fn generate<R: RngCore + CryptoRng>(rng: &mut R) -> Self {
        AccountSecretKey(ed25519_dalek::SigningKey::generate(rng))
    }

    /// A key from its 32-byte seed.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        AccountSecretKey(ed25519_dalek::SigningKey::from_bytes(bytes))
    }

    /// The 32-byte seed, in a buffer wiped on drop.
    pub fn to_bytes(&self) -> Zeroizing<[u8; 32]> {
        Zeroizing::new(self.0.to_bytes())
    }

    /// The public key.
    pub fn public_key(&self) -> AccountPublicKey {
        AccountPublicKey::new(self.0.verifying_key())
    }

    /// Sign `msg`.
    pub fn sign(&self, msg: &[u8]) -> AccountSignature {
        use ed25519_dalek::Signer;
        AccountSignature(self.0.sign(msg))
    }
}

impl std::fmt::Debug for AccountSecretKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AccountSecretKey(<redacted>)")
    }
}

/// An account's ed25519 public key (a valid, non-weak curve point).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct AccountPublicKey {
    key: ed25519_dalek::VerifyingKey,
    /// The key's address, hashed once: admission, execution and commit all ask for it.
    address: crate::ids::Address,
}

/// Most decompressed account keys remembered (see [`AccountPublicKey::from_bytes`]).
pub const ACCOUNT_KEY_CACHE: usize = 1 << 16;

/// Keys already decompressed and checked. Decompressing an ed25519 point costs a field
/// exponentiation (~10 µs); a node decodes the same senders' keys again and again (RPC,
/// gossip, every proposal), so the result is remembered. Only valid keys are kept, and the
/// check is a pure function of the bytes, so a hit gives exactly what a recomputation would.
/// The map's hasher is foldhash with a per-process random seed: cheaper than SipHash on every
/// look-up, and keys cannot be crafted to share a bucket without knowing the seed.
static KEY_CACHE: std::sync::OnceLock<
    std::sync::Mutex<hashbrown::HashMap<[u8; 32], AccountPublicKey>>,
> = std::sync::OnceLock::new();

impl AccountPublicKey {
    /// Parse a 32-byte key, refusing invalid and weak (small-order) points.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let cache = KEY_CACHE.get_or_init(Default::default);
        if let Ok(c) = cache.lock() {
            if let Some(k) = c.get(bytes) {
                return Ok(*k);
            }
        }
        let key = Self::decompress(bytes)?;
        if let Ok(mut c) = cache.lock() {
            if c.len() >= ACCOUNT_KEY_CACHE {
                c.clear();
            }
            c.insert(*bytes, key);
        }
        Ok(key)
    }

    fn decompress(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        let key =
            ed25519_dalek::VerifyingKey::from_bytes(bytes).map_err(|e| KeyError::Encoding {
                what: "ed25519 public key",
                reason: e.to_string(),
            })?;
        if key.is_weak() {
            return Err(KeyError::WeakKey);
        }
        Ok(AccountPublicKey::new(key))
    }

    fn new(key: ed25519_dalek::VerifyingKey) -> Self {
        AccountPublicKey {
            key,
            address: crate::ids::Address(hash(Domain::Address, key.as_bytes()).0),
        }
    }

    /// The 32-byte encoding.
    pub fn as_bytes(&self) -> &[u8; 32] {
        self.key.as_bytes()
    }

    /// The account address of this key.
    pub fn address(&self) -> crate::ids::Address {
        self.address
    }

    /// Check one signature (same rule as a batch of one, see [`verify_account_batch`]).
    pub fn verify(&self, msg: &[u8], sig: &AccountSignature) -> Result<(), KeyError> {
        verify_account_batch(&[msg], &[*sig], &[*self])
    }
}

impl PartialOrd for AccountPublicKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for AccountPublicKey {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.as_bytes().cmp(other.as_bytes())
    }
}
impl std::fmt::Debug for AccountPublicKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AccountPublicKey({}..)",
            &hex::encode(self.as_bytes())[..12]
        )
    }
}
impl Encode for AccountPublicKey {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.as_bytes().encode(encoder)
    }
}
impl<C> Decode<C> for AccountPublicKey {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        let bytes = <[u8; 32]>::decode(decoder)?;
        AccountPublicKey::from_bytes(&bytes).map_err(to_decode_error)
    }
}
crate::codec::impl_borrow_decode!(AccountPublicKey);

/// An ed25519 signature.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct AccountSignature(ed25519_dalek::Signature);

impl AccountSignature {
    /// From its 64 bytes (checked when verified).
    pub fn from_bytes(bytes: &[u8; 64]) -> Self {
        AccountSignature(ed25519_dalek::Signature::from_bytes(bytes))
    }

    /// The 64 bytes.
    pub fn to_bytes(&self) -> [u8; 64] {
        self.0.to_bytes()
    }
}

impl std::fmt::Debug for AccountSignature {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "AccountSignature({}..)",
            &hex::encode(self.to_bytes())[..12]
        )
    }
}
impl Encode for AccountSignature {
    fn encode<E: Encoder>(&self, encoder: &mut E) -> Result<(), EncodeError> {
        self.to_bytes().encode(encoder)
    }
}
impl<C> Decode<C> for AccountSignature {
    fn decode<D: Decoder<Context = C>>(decoder: &mut D) -> Result<Self, DecodeError> {
        Ok(AccountSignature::from_bytes(&<[u8; 64]>::decode(decoder)?))
    }
}
crate::codec::impl_borrow_decode!(AccountSignature);

/// Check many ed25519 signatures at once. Fails if any one is bad; callers that need to know
/// which fall back to checking them one by one. Single checks use this same rule, so batching
/// never changes which signatures are accepted.
pub fn verify_account_batch(
    messages: &[&[u8]],
    signatures: &[AccountSignature],
    keys: &[AccountPublicKey],
) -> Result<(), KeyError> {
    if messages.len() != signatures.len() || messages.len() != keys.len() {
        return Err(KeyError::BatchShape {
            messages: messages.len(),
            signatures: signatures.len(),
            keys: keys.len(),
        });
    }
    if messages.is_empty() {
        return Ok(());
    }
    let sigs: Vec<ed25519_dalek::Signature> = signatures.iter().map(|s| s.0).collect();
    let vks: Vec<ed25519_dalek::VerifyingKey> = keys.iter().map(|k| k.key).collect();
    ed25519_dalek::verify_batch(messages, &sigs, &vks).map_err(|_| KeyError::BadSignature)
}
