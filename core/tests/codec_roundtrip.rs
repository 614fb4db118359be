//! Every wire type round-trips through the canonical codec, and the codec is canonical: bytes
//! that decode re-encode to themselves.

mod support;

use banyan_core::codec::{self, Decode, Encode};
use proptest::prelude::*;
use support::*;

const LIMIT: usize = 1 << 20;

fn round_trip<T: Encode + Decode<()> + PartialEq + std::fmt::Debug>(value: &T) {
    let bytes = codec::encode(value);
    assert_eq!(codec::encoded_len(value), bytes.len());
    let back: T = codec::decode(&bytes, LIMIT).expect("decodes its own encoding");
    assert_eq!(&back, value);
    assert_eq!(codec::encode(&back), bytes, "encoding is deterministic");
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test] fn ids(c in chain(), a in address(), s in asset(), m in amount(), n in any::<u64>()) {
        round_trip(&c); round_trip(&a); round_trip(&s); round_trip(&m);
        round_trip(&banyan_core::ids::Nonce(n)); round_trip(&banyan_core::ids::Height(n));
        round_trip(&banyan_core::ids::Round(n)); round_trip(&banyan_core::ids::Epoch(n));
        round_trip(&banyan_core::ids::Sequence(n));
    }
    #[test] fn digests(d in digest()) { round_trip(&d); }
    #[test] fn keys(pk in bls_pk(), sig in bls_sig(), apk in account_pk(), asig in account_sig()) {
        round_trip(&pk); round_trip(&sig); round_trip(&apk); round_trip(&asig);
    }
    #[test] fn bitmaps(b in bitmap()) { round_trip(&b); }
    #[test] fn certificates(q in qc(), v in vote_data()) { round_trip(&q); round_trip(&v); }
    #[test] fn headers(h in header(), c in certified_header()) { round_trip(&h); round_trip(&c); }
    #[test] fn merkle_proofs(p in merkle_proof()) { round_trip(&p); }
    #[test] fn packets(p in packet(), pp in packet_proof()) { round_trip(&p); round_trip(&pp); }
    #[test] fn tx_kinds(k in tx_kind()) { round_trip(&k); }
    #[test] fn transactions(b in tx_body(), t in signed_tx()) { round_trip(&b); round_trip(&t); }
    #[test] fn blocks(b in block()) { round_trip(&b); }

    /// Canonicality: any input that decodes re-encodes to exactly itself, so no value has two
    /// encodings (ids and signatures are over encodings).
    #[test] fn decoding_is_canonical(t in signed_tx(), flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..4)) {
        let mut bytes = codec::encode(&t);
        for (i, v) in flips { let i = i.index(bytes.len()); bytes[i] = v; }
        if let Ok(decoded) = codec::decode::<banyan_core::tx::SignedTx>(&bytes, LIMIT) {
            prop_assert_eq!(codec::encode(&decoded), bytes);
        }
    }
}

#[test]
fn bridged_asset_ids_depend_on_origin() {
    use banyan_core::ids::{AssetId, ChainId};
    let a = AssetId::bridged(ChainId(1), AssetId::NATIVE);
    let b = AssetId::bridged(ChainId(2), AssetId::NATIVE);
    assert_ne!(a, b);
    assert_ne!(a, AssetId::NATIVE);
}

/// Pins the wire format: a silent change to the codec or to a type's layout changes this hash.
#[test]
fn wire_format_is_pinned() {
    use banyan_core::hash::{hash, Domain};
    let key = &account_keys()[0];
    let tx = transfer(key, 7, banyan_core::ids::Address([9; 32]), 1234);
    let bytes = codec::encode(&tx);
    assert_eq!(bytes.len(), 4 + 32 + 32 + 8 + 16 + 4 + 32 + 32 + 16 + 64);
    let digest = hash(Domain::Custom("test/wire"), &bytes);
    assert_eq!(digest.to_hex(), PINNED_TRANSFER_HASH, "wire format changed");
}

const PINNED_TRANSFER_HASH: &str =
    "895d9a3070f0ca6847edff786bc9d8306341d5baa8284758c99b9d43980a3a9c";
