//! Just enough DER to find the ed25519 key in an X.509 certificate.
//!
//! The parser walks `Certificate -> tbsCertificate -> subjectPublicKeyInfo` (RFC 5280 4.1) and
//! checks that the key is ed25519 as RFC 8410 encodes it: an `AlgorithmIdentifier` holding only
//! the OID 1.3.101.112 and a BIT STRING of 32 key bytes. It is bounded by the input (every length
//! is checked against the bytes that remain before anything is sliced, lengths are at most four
//! bytes long), strict about DER (minimal lengths, no indefinite form, no trailing bytes), never
//! allocates and never panics.
//!
//! A hand-written walk was chosen over a full X.509 crate because the transport needs one field
//! of self-signed certificates it compares to an allow-list; everything else in the certificate
//! is ignored, and the TLS handshake signature is then checked against exactly the
//! `SubjectPublicKeyInfo` bytes returned here, so the key that is allowed and the key that
//! proves possession can never come from two different parses.

use crate::PeerKey;

/// DER tag of a SEQUENCE.
const TAG_SEQUENCE: u8 = 0x30;
/// DER tag of an INTEGER.
const TAG_INTEGER: u8 = 0x02;
/// DER tag of a BIT STRING.
const TAG_BIT_STRING: u8 = 0x03;
/// DER tag of an OBJECT IDENTIFIER.
const TAG_OID: u8 = 0x06;
/// DER tag of the explicit `[0]` version field of a tbsCertificate.
const TAG_VERSION: u8 = 0xa0;
/// The content octets of the ed25519 OID 1.3.101.112 (RFC 8410).
const OID_ED25519: [u8; 3] = [0x2b, 0x65, 0x70];

/// Why a certificate does not yield an ed25519 public key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CertError {
    /// The bytes are not a well-formed DER X.509 certificate.
    #[error("malformed certificate: {0}; the peer must present a DER X.509 certificate")]
    Malformed(&'static str),
    /// The certificate is well formed but its key is not ed25519.
    #[error("certificate key is not ed25519; peers must use their ed25519 network key")]
    NotEd25519,
}

/// The ed25519 key found in a certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ed25519Spki<'a> {
    /// The raw 32-byte public key.
    pub key: PeerKey,
    /// The whole DER `SubjectPublicKeyInfo` (tag and length included) the key was read from.
    pub spki: &'a [u8],
}

/// A cursor over DER bytes.
struct Reader<'a> {
    rest: &'a [u8],
}

/// One DER element: its tag, its content, and its full encoding.
struct Tlv<'a> {
    tag: u8,
    content: &'a [u8],
    whole: &'a [u8],
}

impl<'a> Reader<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Reader { rest: bytes }
    }

    fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    fn peek_tag(&self) -> Option<u8> {
        self.rest.first().copied()
    }

    /// Read one element, checking its length against what remains.
    fn read(&mut self) -> Result<Tlv<'a>, CertError> {
        let input = self.rest;
        let (&tag, after_tag) = input
            .split_first()
            .ok_or(CertError::Malformed("element expected, input ended"))?;
        if tag & 0x1f == 0x1f {
            return Err(CertError::Malformed(
                "multi-byte tags are not used in certificates",
            ));
        }
        let (&first, mut after_len) = after_tag
            .split_first()
            .ok_or(CertError::Malformed("length expected, input ended"))?;
        let len = if first < 0x80 {
            usize::from(first)
        } else {
            let n = usize::from(first & 0x7f);
            if n == 0 {
                return Err(CertError::Malformed("indefinite length is not DER"));
            }
            if n > 4 {
                return Err(CertError::Malformed("length field longer than four bytes"));
            }
            if after_len.len() < n {
                return Err(CertError::Malformed("length field truncated"));
            }
            let (len_bytes, rest) = after_len.split_at(n);
            if len_bytes[0] == 0 {
                return Err(CertError::Malformed(
                    "length has a leading zero byte (not DER)",
                ));
            }
            let mut len = 0usize;
            for &b in len_bytes {
                len = (len << 8) | usize::from(b);
            }
            if len < 0x80 {
                return Err(CertError::Malformed("long-form length under 128 (not DER)"));
            }
            after_len = rest;
            len
        };
        if after_len.len() < len {
            return Err(CertError::Malformed(
                "element longer than the remaining input",
            ));
        }
        let (content, rest) = after_len.split_at(len);
        let header_len = input.len() - after_len.len();
        let whole = &input[..header_len + len];
        self.rest = rest;
        Ok(Tlv {
            tag,
            content,
            whole,
        })
    }

    /// Read one element and require its tag.
    fn expect(&mut self, tag: u8, what: &'static str) -> Result<Tlv<'a>, CertError> {
        let tlv = self.read()?;
        if tlv.tag != tag {
            return Err(CertError::Malformed(what));
        }
        Ok(tlv)
    }
}

/// Find the ed25519 public key of a DER X.509 certificate.
pub fn ed25519_spki(cert_der: &[u8]) -> Result<Ed25519Spki<'_>, CertError> {
    let mut outer = Reader::new(cert_der);
    let cert = outer.expect(TAG_SEQUENCE, "certificate is not a SEQUENCE")?;
    if !outer.is_empty() {
        return Err(CertError::Malformed("bytes after the certificate"));
    }
    let mut cert_fields = Reader::new(cert.content);
    let tbs = cert_fields.expect(TAG_SEQUENCE, "tbsCertificate is not a SEQUENCE")?;
    let mut tbs = Reader::new(tbs.content);
    if tbs.peek_tag() == Some(TAG_VERSION) {
        tbs.read()?;
    }
    tbs.expect(TAG_INTEGER, "serialNumber is not an INTEGER")?;
    tbs.expect(TAG_SEQUENCE, "signature algorithm is not a SEQUENCE")?;
    tbs.expect(TAG_SEQUENCE, "issuer is not a SEQUENCE")?;
    tbs.expect(TAG_SEQUENCE, "validity is not a SEQUENCE")?;
    tbs.expect(TAG_SEQUENCE, "subject is not a SEQUENCE")?;
    let spki = tbs.expect(TAG_SEQUENCE, "subjectPublicKeyInfo is not a SEQUENCE")?;
    let key = ed25519_key_of_spki(spki.content)?;
    Ok(Ed25519Spki {
        key,
        spki: spki.whole,
    })
}

/// Read the key from the content of a `SubjectPublicKeyInfo`.
fn ed25519_key_of_spki(content: &[u8]) -> Result<PeerKey, CertError> {
    let mut fields = Reader::new(content);
    let alg = fields.expect(TAG_SEQUENCE, "key algorithm is not a SEQUENCE")?;
    let bits = fields.expect(TAG_BIT_STRING, "public key is not a BIT STRING")?;
    if !fields.is_empty() {
        return Err(CertError::Malformed("bytes after the public key"));
    }
    let mut alg = Reader::new(alg.content);
    let oid = alg.expect(TAG_OID, "key algorithm has no OID")?;
    if oid.content != OID_ED25519 || !alg.is_empty() {
        // A different algorithm, or ed25519 with parameters RFC 8410 forbids.
        return Err(CertError::NotEd25519);
    }
    match bits.content.split_first() {
        Some((0, key)) => key
            .try_into()
            .map_err(|_| CertError::Malformed("ed25519 key is not 32 bytes")),
        Some(_) => Err(CertError::Malformed(
            "public key BIT STRING has unused bits",
        )),
        None => Err(CertError::Malformed("public key BIT STRING is empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_and_truncated_inputs_are_errors() {
        assert!(matches!(ed25519_spki(&[]), Err(CertError::Malformed(_))));
        assert!(matches!(
            ed25519_spki(&[0x30]),
            Err(CertError::Malformed(_))
        ));
        assert!(matches!(
            ed25519_spki(&[0x30, 0x05, 0x30]),
            Err(CertError::Malformed(_))
        ));
    }

    #[test]
    fn non_der_lengths_are_refused() {
        // Indefinite length.
        assert!(ed25519_spki(&[0x30, 0x80, 0x00, 0x00]).is_err());
        // Long form for a short length.
        assert!(ed25519_spki(&[0x30, 0x81, 0x01, 0x00]).is_err());
        // Leading zero in a long-form length.
        assert!(ed25519_spki(&[0x30, 0x82, 0x00, 0x81]).is_err());
        // A five-byte length, and a four-byte length far beyond the input.
        assert!(ed25519_spki(&[0x30, 0x85, 1, 0, 0, 0, 0]).is_err());
        assert!(ed25519_spki(&[0x30, 0x84, 0xff, 0xff, 0xff, 0xff, 0x00]).is_err());
    }

    #[test]
    fn trailing_bytes_are_refused() {
        assert_eq!(
            ed25519_spki(&[0x30, 0x00, 0x00]),
            Err(CertError::Malformed("bytes after the certificate"))
        );
    }

    /// A certificate skeleton around a given SPKI content.
    fn cert_with_spki(spki_content: &[u8]) -> Vec<u8> {
        let mut tbs = vec![
            0x02, 0x01, 0x01, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00, 0x30, 0x00,
        ];
        tbs.push(TAG_SEQUENCE);
        tbs.push(u8::try_from(spki_content.len()).expect("test SPKI is short"));
        tbs.extend_from_slice(spki_content);
        let mut cert = vec![TAG_SEQUENCE, u8::try_from(tbs.len()).expect("short")];
        cert.extend_from_slice(&tbs);
        let mut out = vec![TAG_SEQUENCE, u8::try_from(cert.len()).expect("short")];
        out.extend_from_slice(&cert);
        out
    }

    #[test]
    fn skeleton_with_ed25519_key_parses() {
        let mut spki = vec![0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];
        spki.extend_from_slice(&[7u8; 32]);
        let der = cert_with_spki(&spki);
        let found = ed25519_spki(&der).expect("well-formed skeleton");
        assert_eq!(found.key, [7u8; 32]);
        assert_eq!(found.spki.len(), spki.len() + 2);
    }

    #[test]
    fn other_algorithms_and_bad_keys_are_refused() {
        // P-256 OID (1.2.840.10045.2.1) instead of ed25519.
        let mut spki = vec![
            0x30, 0x09, 0x06, 0x07, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01, 0x03, 0x21, 0x00,
        ];
        spki.extend_from_slice(&[1u8; 32]);
        assert_eq!(
            ed25519_spki(&cert_with_spki(&spki)),
            Err(CertError::NotEd25519)
        );
        // ed25519 with a 31-byte key.
        let mut short = vec![0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x20, 0x00];
        short.extend_from_slice(&[1u8; 31]);
        assert!(matches!(
            ed25519_spki(&cert_with_spki(&short)),
            Err(CertError::Malformed(_))
        ));
        // ed25519 with unused bits in the BIT STRING.
        let mut unused = vec![0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x01];
        unused.extend_from_slice(&[1u8; 32]);
        assert!(matches!(
            ed25519_spki(&cert_with_spki(&unused)),
            Err(CertError::Malformed(_))
        ));
    }

    #[test]
    fn every_truncation_and_bit_flip_of_a_real_certificate_is_handled() {
        let identity = crate::tls::Identity::from_secret(&[9u8; 32]).expect("valid seed");
        let der = identity.cert.as_ref();
        assert_eq!(
            ed25519_spki(der).expect("own certificate").key,
            identity.key
        );
        for cut in 0..der.len() {
            assert!(ed25519_spki(&der[..cut]).is_err(), "prefix of {cut} bytes");
        }
        let mut flipped = der.to_vec();
        for i in 0..flipped.len() {
            for bit in 0..8 {
                flipped[i] ^= 1 << bit;
                // Must return, Ok or Err, without panicking.
                let _ = ed25519_spki(&flipped);
                flipped[i] ^= 1 << bit;
            }
        }
    }
}
