//! The VRF: a BLS signature under its own domain separation tag, hashed.
//!
//! - `prove(sk, x)`: `proof = BLS.Sign(sk, x, VRF_DST)`, `output = H("banyan/vrf/output", proof)`
//!   where `proof` is the 96-byte compressed G2 point.
//! - `verify(pk, x, proof)`: `BLS.Verify(pk, x, proof, VRF_DST)`, then the same hash.
//!
//! See the crate docs for why this is a VRF.

use crate::error::VrfError;
use banyan_core::hash::{hash, Domain};
use banyan_core::keys::{BlsPublicKey, BlsSecretKey, BlsSignature, KeyError};

/// Domain separation tag of VRF proofs: a hash-to-G2 suite of its own, so no consensus
/// signature ([`banyan_core::keys::BLS_SIG_DST`]) or proof of possession
/// ([`banyan_core::keys::BLS_POP_DST`]) is ever a VRF proof, and no VRF proof is a vote.
pub const VRF_DST: &[u8] = b"BANYAN_VRF_BLS12381G2_XMD:SHA-256_SSWU_RO_";

/// Most bytes of a VRF input. Banyan's own inputs are [`crate::leader::PROPOSER_INPUT_BYTES`].
pub const MAX_VRF_INPUT_BYTES: usize = 1024;

/// Hash domain of VRF outputs.
const OUTPUT_DOMAIN: Domain = Domain::Custom("banyan/vrf/output");

/// A VRF output: 32 bytes, pseudorandom to anyone without the secret key.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct VrfOutput(pub [u8; 32]);

impl VrfOutput {
    /// The bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// Lower-case hex.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl std::fmt::Debug for VrfOutput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "VrfOutput({}..)", &self.to_hex()[..16])
    }
}

/// A VRF proof: the unique BLS signature of the input under [`VRF_DST`]. Its point was
/// validated when it was parsed (in the prime-order subgroup, not the identity).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VrfProof(BlsSignature);

impl VrfProof {
    /// Parse and validate a 96-byte compressed proof.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, KeyError> {
        BlsSignature::from_bytes(bytes).map(VrfProof)
    }

    /// The compressed encoding.
    pub fn as_bytes(&self) -> &[u8; 96] {
        self.0.as_bytes()
    }

    /// The signature, as carried in [`banyan_core::header::BlockHeader::vrf_proof`].
    pub fn signature(&self) -> &BlsSignature {
        &self.0
    }

    /// The output this proof commits to (meaningful only once the proof has verified).
    pub fn output(&self) -> VrfOutput {
        VrfOutput(hash(OUTPUT_DOMAIN, self.0.as_bytes()).0)
    }
}

impl From<BlsSignature> for VrfProof {
    fn from(sig: BlsSignature) -> Self {
        VrfProof(sig)
    }
}

impl From<VrfProof> for BlsSignature {
    fn from(proof: VrfProof) -> Self {
        proof.0
    }
}

/// Evaluate the VRF of `sk` on `input`: the output and the proof that it is right.
pub fn prove(sk: &BlsSecretKey, input: &[u8]) -> Result<(VrfOutput, VrfProof), VrfError> {
    check_input(input)?;
    let proof = VrfProof(sk.sign_with_dst(input, VRF_DST));
    Ok((proof.output(), proof))
}

/// Check that `proof` is the VRF proof of `input` under `pk`; return its output.
pub fn verify(pk: &BlsPublicKey, input: &[u8], proof: &VrfProof) -> Result<VrfOutput, VrfError> {
    check_input(input)?;
    proof
        .0
        .verify_with_dst(input, pk, VRF_DST)
        .map_err(|_| VrfError::BadProof)?;
    Ok(proof.output())
}

fn check_input(input: &[u8]) -> Result<(), VrfError> {
    if input.len() > MAX_VRF_INPUT_BYTES {
        return Err(VrfError::InputTooLong {
            len: input.len(),
            max: MAX_VRF_INPUT_BYTES,
        });
    }
    Ok(())
}
