//! Binding a node's network identity to its validator key.
//!
//! A node's QUIC (TLS) identity is an ed25519 key of its own, never its account key. The
//! validator's BLS key signs that key's 32 bytes under [`NET_BINDING_DST`], a domain separation
//! tag used for nothing else, so a binding is never a vote, a proof of possession or a VRF
//! proof, and none of those is a binding. A peer that completes a TLS handshake with the network
//! key and shows a binding that verifies has proven which validator it is.

use banyan_core::keys::{AccountPublicKey, BlsPublicKey, BlsSecretKey, BlsSignature};

/// Domain separation tag of network-key bindings.
pub const NET_BINDING_DST: &[u8] = b"BANYAN_NET_IDENTITY_BLS_SIG_BLS12381G2_XMD:SHA-256_SSWU_RO_";

/// Why a binding was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "the binding does not verify: validator key {validator} did not sign network key {network}"
)]
pub struct BindingError {
    /// The validator key (hex).
    pub validator: String,
    /// The network key (hex).
    pub network: String,
}

/// Sign `network` with the validator key.
pub fn bind_network_key(validator: &BlsSecretKey, network: &AccountPublicKey) -> BlsSignature {
    validator.sign_with_dst(network.as_bytes(), NET_BINDING_DST)
}

/// Check that `sig` is `validator`'s binding of `network`.
pub fn verify_binding(
    validator: &BlsPublicKey,
    network: &AccountPublicKey,
    sig: &BlsSignature,
) -> Result<(), BindingError> {
    sig.verify_with_dst(network.as_bytes(), validator, NET_BINDING_DST)
        .map_err(|_| BindingError {
            validator: validator.to_hex(),
            network: hex::encode(network.as_bytes()),
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use banyan_core::keys::AccountSecretKey;

    #[test]
    fn binding_verifies_only_for_its_keys() {
        let mut rng = rand::thread_rng();
        let v = BlsSecretKey::generate(&mut rng);
        let n = AccountSecretKey::generate(&mut rng).public_key();
        let other = AccountSecretKey::generate(&mut rng).public_key();
        let sig = bind_network_key(&v, &n);
        assert!(verify_binding(&v.public_key(), &n, &sig).is_ok());
        assert!(verify_binding(&v.public_key(), &other, &sig).is_err());
        let v2 = BlsSecretKey::generate(&mut rng);
        assert!(verify_binding(&v2.public_key(), &n, &sig).is_err());
        // A plain signature of the same bytes is not a binding.
        let plain = v.sign(n.as_bytes());
        assert!(verify_binding(&v.public_key(), &n, &plain).is_err());
    }
}
