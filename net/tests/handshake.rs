//! Raw QUIC clients that do not present an acceptable certificate are refused.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use banyan_net::{public_key, NetConfig, Network, PeerConfig, SERVER_NAME};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls13_signature, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

/// Trusts any server certificate: the test is about the server refusing the client.
#[derive(Debug)]
struct AnyServer(WebPkiSupportedAlgorithms);

impl ServerCertVerifier for AnyServer {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }
    fn verify_tls12_signature(
        &self,
        _: &[u8],
        _: &CertificateDer<'_>,
        _: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Err(rustls::Error::General("TLS 1.2 not used".to_string()))
    }
    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.0)
    }
    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_schemes()
    }
}

fn client(with_p256_cert: bool) -> quinn::ClientConfig {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier = Arc::new(AnyServer(provider.signature_verification_algorithms));
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&[&rustls::version::TLS13])
        .expect("TLS 1.3")
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    let mut tls = if with_p256_cert {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).expect("P-256 key");
        let cert = rcgen::CertificateParams::new(vec![SERVER_NAME.to_string()])
            .expect("params")
            .self_signed(&key)
            .expect("certificate");
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        builder
            .with_client_auth_cert(vec![cert.der().clone()], der)
            .expect("client certificate")
    } else {
        builder.with_no_client_auth()
    };
    tls.alpn_protocols = vec![b"banyan/1".to_vec()];
    let crypto =
        quinn::crypto::rustls::QuicClientConfig::try_from(tls).expect("QUIC-capable TLS config");
    quinn::ClientConfig::new(Arc::new(crypto))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_without_an_ed25519_peer_certificate_are_refused() {
    let secret = [42u8; 32];
    let peer = PeerConfig {
        key: public_key(&[43u8; 32]).expect("valid secret"),
        addr: SocketAddr::from(([127, 0, 0, 1], 9)),
    };
    let (node, mut rx) = Network::start(NetConfig::new(
        SocketAddr::from(([127, 0, 0, 1], 0)),
        secret,
        vec![peer],
    ))
    .await
    .expect("node starts");

    let endpoint =
        quinn::Endpoint::client(SocketAddr::from(([127, 0, 0, 1], 0))).expect("client endpoint");
    for with_p256_cert in [false, true] {
        let before = node.stats().rejected_handshakes;
        let attempt = endpoint
            .connect_with(client(with_p256_cert), node.local_addr(), SERVER_NAME)
            .expect("connect starts")
            .await;
        if let Ok(conn) = attempt {
            // The client may finish its side first; the server then closes the connection.
            if let Ok(mut stream) = conn.open_uni().await {
                let mut frame = vec![0u8];
                frame.extend_from_slice(&4u32.to_le_bytes());
                frame.extend_from_slice(b"evil");
                let _ = stream.write_all(&frame).await;
            }
            tokio::time::timeout(Duration::from_secs(10), conn.closed())
                .await
                .expect("server closes the connection");
        }
        // Either the client offers no certificate, or its P-256 key cannot sign with the only
        // scheme the server accepts (ed25519): both are refused and counted.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        while node.stats().rejected_handshakes == before {
            assert!(
                tokio::time::Instant::now() < deadline,
                "refusal counted (P-256 client: {with_p256_cert})"
            );
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
    assert!(rx.consensus.try_recv().is_none(), "nothing delivered");
    assert_eq!(node.stats().frames_received.total(), 0);
    assert!(node.connected().is_empty());
    node.shutdown().await;
}
