//! Network identities and the TLS configuration that authenticates peers by ed25519 key.
//!
//! Each node presents a self-signed certificate for its ed25519 key. Nothing in the certificate
//! but its `SubjectPublicKeyInfo` matters: a peer is accepted iff that key is in the allowed set
//! and the TLS 1.3 `CertificateVerify` signature checks under that same key. Only the ed25519
//! signature scheme and only TLS 1.3 are offered.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use zeroize::Zeroizing;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{
    verify_tls13_signature, verify_tls13_signature_with_raw_key, CryptoProvider,
    WebPkiSupportedAlgorithms,
};
use rustls::pki_types::{
    CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, SubjectPublicKeyInfoDer,
    UnixTime,
};
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, DigitallySignedStruct, DistinguishedName, OtherError, SignatureScheme,
};

use crate::der::{ed25519_spki, CertError};
use crate::stats::Stats;
use crate::{short, NetError, PeerKey};

/// The server name every node dials and presents (keys, not names, identify peers).
pub const SERVER_NAME: &str = "banyan";

/// The ALPN protocol identifier of this transport.
pub const ALPN: &[u8] = b"banyan/1";

/// PKCS#8 v1 prefix of an ed25519 private key (RFC 8410 section 7): the 32-byte seed follows.
const PKCS8_ED25519_PREFIX: [u8; 16] = [
    0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20,
];

/// A node's network identity: key, certificate and private key.
pub(crate) struct Identity {
    /// The ed25519 public key.
    pub key: PeerKey,
    /// The self-signed certificate for `key`.
    pub cert: CertificateDer<'static>,
    /// The PKCS#8 encoding of the private key, wiped on drop.
    pkcs8: Zeroizing<Vec<u8>>,
}

impl Identity {
    /// Build the identity of a 32-byte ed25519 seed.
    pub fn from_secret(secret: &[u8; 32]) -> Result<Self, NetError> {
        let mut pkcs8 = Zeroizing::new(Vec::with_capacity(
            PKCS8_ED25519_PREFIX.len() + secret.len(),
        ));
        pkcs8.extend_from_slice(&PKCS8_ED25519_PREFIX);
        pkcs8.extend_from_slice(secret);
        let key_pair = rcgen::KeyPair::from_pkcs8_der_and_sign_algo(
            &PrivatePkcs8KeyDer::from(&pkcs8[..]),
            &rcgen::PKCS_ED25519,
        )
        .map_err(|e| NetError::Tls(format!("ed25519 key from the network secret: {e}")))?;
        let key: PeerKey = key_pair
            .public_key_raw()
            .try_into()
            .map_err(|_| NetError::Tls("ed25519 public key is not 32 bytes".to_string()))?;
        let params = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .map_err(|e| NetError::Tls(format!("certificate parameters: {e}")))?;
        let cert = params
            .self_signed(&key_pair)
            .map_err(|e| NetError::Tls(format!("self-signed certificate: {e}")))?;
        Ok(Identity {
            key,
            cert: cert.der().clone(),
            pkcs8,
        })
    }

    /// A copy of the private key for rustls (which keeps its own parsed key for the
    /// connection's lifetime).
    fn private_key(&self) -> PrivateKeyDer<'static> {
        PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(&self.pkcs8[..]).clone_key())
    }
}

/// The crypto provider shared by every configuration (ring).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for dialing one peer: only `expected` is accepted.
pub(crate) fn client_config(
    identity: &Identity,
    expected: PeerKey,
    stats: Arc<Stats>,
) -> Result<rustls::ClientConfig, NetError> {
    let verifier = Arc::new(PeerVerifier::new(
        HashSet::from([expected]),
        Some(stats),
        "server",
    ));
    let mut config = rustls::ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(format!("TLS 1.3 client: {e}")))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_client_auth_cert(vec![identity.cert.clone()], identity.private_key())
        .map_err(|e| NetError::Tls(format!("client certificate: {e}")))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The rustls server configuration: a client certificate is required, any allowed key accepted.
/// Refused clients are counted by the accept loop, which also sees handshakes that fail before
/// the verifier runs (no certificate, no usable signature scheme).
pub(crate) fn server_config(
    identity: &Identity,
    allowed: HashSet<PeerKey>,
) -> Result<rustls::ServerConfig, NetError> {
    let verifier = Arc::new(PeerVerifier::new(allowed, None, "client"));
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| NetError::Tls(format!("TLS 1.3 server: {e}")))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![identity.cert.clone()], identity.private_key())
        .map_err(|e| NetError::Tls(format!("server certificate: {e}")))?;
    config.alpn_protocols = vec![ALPN.to_vec()];
    Ok(config)
}

/// The ed25519 key of a peer's certificate chain as rustls hands it over after a handshake.
pub(crate) fn peer_key(certs: &[CertificateDer<'_>]) -> Option<PeerKey> {
    certs
        .first()
        .and_then(|cert| ed25519_spki(cert.as_ref()).ok())
        .map(|found| found.key)
}

/// Why a peer's certificate was refused (shown in the TLS error and the log).
#[derive(Debug, thiserror::Error)]
enum Refusal {
    #[error("{0}")]
    Cert(CertError),
    #[error("ed25519 key {0} is not an allowed peer; add it to the peer list if it should be")]
    Unknown(String),
}

/// Accepts a certificate iff its ed25519 key is allowed and the handshake signature verifies.
struct PeerVerifier {
    allowed: HashSet<PeerKey>,
    /// Where refusals are counted (`None` when the caller counts them).
    stats: Option<Arc<Stats>>,
    algorithms: WebPkiSupportedAlgorithms,
    /// "client" or "server": which side of the handshake is being checked, for the log.
    role: &'static str,
}

impl fmt::Debug for PeerVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PeerVerifier")
            .field("allowed", &self.allowed.len())
            .field("role", &self.role)
            .finish()
    }
}

impl PeerVerifier {
    fn new(allowed: HashSet<PeerKey>, stats: Option<Arc<Stats>>, role: &'static str) -> Self {
        PeerVerifier {
            allowed,
            stats,
            algorithms: rustls::crypto::ring::default_provider().signature_verification_algorithms,
            role,
        }
    }

    fn count(&self) {
        if let Some(stats) = &self.stats {
            stats.count_rejected_handshake();
        }
    }

    fn refuse(&self, refusal: Refusal) -> rustls::Error {
        self.count();
        tracing::warn!(peer_role = self.role, reason = %refusal, "refused a peer's TLS certificate");
        let cert_error = match refusal {
            Refusal::Cert(CertError::Malformed(_)) => CertificateError::BadEncoding,
            other => CertificateError::Other(OtherError(Arc::new(other))),
        };
        rustls::Error::InvalidCertificate(cert_error)
    }

    fn check_cert(&self, end_entity: &CertificateDer<'_>) -> Result<(), rustls::Error> {
        let found = ed25519_spki(end_entity.as_ref()).map_err(|e| self.refuse(Refusal::Cert(e)))?;
        if !self.allowed.contains(&found.key) {
            return Err(self.refuse(Refusal::Unknown(short(&found.key))));
        }
        Ok(())
    }

    fn check_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        let found = ed25519_spki(cert.as_ref()).map_err(|e| self.refuse(Refusal::Cert(e)))?;
        let spki = SubjectPublicKeyInfoDer::from(found.spki);
        // The signature must verify under the exact SPKI that was matched against the allow-list,
        // and under the certificate as webpki reads it; both being required rules out any
        // difference between the two parsers.
        let checked = verify_tls13_signature_with_raw_key(message, &spki, dss, &self.algorithms)
            .and_then(|_| verify_tls13_signature(message, cert, dss, &self.algorithms));
        checked.inspect_err(|e| {
            self.count();
            tracing::warn!(
                peer_role = self.role,
                peer = %short(&found.key),
                error = %e,
                "refused a peer: TLS 1.3 handshake signature does not verify"
            );
        })
    }

    fn schemes() -> Vec<SignatureScheme> {
        vec![SignatureScheme::ED25519]
    }

    fn no_tls12() -> rustls::Error {
        rustls::Error::General("TLS 1.2 is not supported; peers must use TLS 1.3".to_string())
    }
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.check_cert(end_entity)
            .map(|()| ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(Self::no_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Self::schemes()
    }
}

impl ClientCertVerifier for PeerVerifier {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        &[]
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        self.check_cert(end_entity)
            .map(|()| ClientCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(Self::no_tls12())
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.check_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        Self::schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_certificate_carries_the_seed_public_key() {
        let a = Identity::from_secret(&[1u8; 32]).expect("valid seed");
        let b = Identity::from_secret(&[1u8; 32]).expect("valid seed");
        let c = Identity::from_secret(&[2u8; 32]).expect("valid seed");
        assert_eq!(a.key, b.key);
        assert_ne!(a.key, c.key);
        assert_eq!(peer_key(std::slice::from_ref(&a.cert)), Some(a.key));
        assert_eq!(peer_key(&[]), None);
        assert_eq!(peer_key(&[CertificateDer::from(vec![0x30, 0x00])]), None);
    }

    #[test]
    fn verifier_refuses_unknown_and_malformed_certificates() {
        let stats = Arc::new(Stats::default());
        let good = Identity::from_secret(&[3u8; 32]).expect("valid seed");
        let other = Identity::from_secret(&[4u8; 32]).expect("valid seed");
        let verifier = PeerVerifier::new(HashSet::from([good.key]), Some(stats.clone()), "server");
        assert!(verifier.check_cert(&good.cert).is_ok());
        assert!(verifier.check_cert(&other.cert).is_err());
        assert!(matches!(
            verifier.check_cert(&CertificateDer::from(vec![1, 2, 3])),
            Err(rustls::Error::InvalidCertificate(
                CertificateError::BadEncoding
            ))
        ));
        assert_eq!(stats.snapshot().rejected_handshakes, 2);
    }
}
