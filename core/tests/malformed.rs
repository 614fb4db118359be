//! Malformed input is refused with an error: no panic, and no allocation driven by a length
//! prefix. A counting allocator measures the peak heap use of each decode.

mod support;

use banyan_core::codec::{self, CodecError};
use banyan_core::header::Block;
use banyan_core::tx::{SignedTx, TxKind};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use support::*;

struct Counting;

thread_local! {
    // Per thread, so tests running in parallel do not see each other's allocations.
    static LIVE: Cell<isize> = const { Cell::new(0) };
    static PEAK: Cell<isize> = const { Cell::new(0) };
}

// SAFETY: delegates to the system allocator and only counts (const-initialised thread locals
// do not allocate).
#[allow(unsafe_code)]
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let _ = LIVE.try_with(|l| {
            let now = l.get() + layout.size() as isize;
            l.set(now);
            let _ = PEAK.try_with(|p| p.set(p.get().max(now)));
        });
        System.alloc(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        let _ = LIVE.try_with(|l| l.set(l.get() - layout.size() as isize));
        System.dealloc(ptr, layout)
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Peak bytes this thread allocated above its starting level while `f` ran.
fn peak_during<R>(f: impl FnOnce() -> R) -> (R, usize) {
    let base = LIVE.with(|l| l.get());
    PEAK.with(|p| p.set(base));
    let r = f();
    let peak = PEAK.with(|p| p.get());
    (r, (peak - base).max(0) as usize)
}

const LIMIT: usize = 1 << 20;
const SMALL_ALLOC: usize = 64 << 10;

fn sample_block() -> Block {
    let keys = account_keys();
    let txs: Vec<SignedTx> = (0..3)
        .map(|i| transfer(&keys[i], i as u64, keys[i + 1].public_key().address(), 5))
        .collect();
    Block {
        header: banyan_core::header::BlockHeader {
            chain: banyan_core::ids::ChainId::MAIN,
            epoch: banyan_core::ids::Epoch(0),
            height: banyan_core::ids::Height(1),
            round: banyan_core::ids::Round(1),
            parent: banyan_core::hash::Digest::ZERO,
            state_root: banyan_core::hash::Digest::ZERO,
            tx_root: Block::compute_tx_root(&txs),
            outbox_root: banyan_core::merkle::empty_root(),
            proposer: banyan_core::hash::Digest::ZERO,
            timestamp_ms: 1,
            vrf_proof: None,
        },
        txs: banyan_core::codec::BoundedVec::new(txs).expect("3 < max"),
    }
}

#[test]
fn malformed_inputs_are_rejected_without_large_allocations() {
    let block = sample_block();
    let good = codec::encode(&block);

    // Truncated at every length.
    for cut in 0..good.len() {
        let (r, peak) = peak_during(|| codec::decode::<Block>(&good[..cut], LIMIT));
        assert!(r.is_err(), "truncated at {cut} must fail");
        assert!(peak < SMALL_ALLOC, "truncated input allocated {peak} bytes");
    }

    // Trailing bytes.
    let mut trailing = good.clone();
    trailing.push(0);
    assert_eq!(
        codec::decode::<Block>(&trailing, LIMIT),
        Err(CodecError::TrailingBytes {
            consumed: good.len(),
            trailing: 1
        })
    );

    // Over the caller's limit: refused before reading.
    assert!(matches!(
        codec::decode::<Block>(&good, good.len() - 1),
        Err(CodecError::TooLarge { .. })
    ));

    // A length prefix of 2^60 for the transaction list (it follows the fixed-size header).
    let header_len = codec::encoded_len(&block.header);
    let mut huge = good.clone();
    huge[header_len..header_len + 8].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let (r, peak) = peak_during(|| codec::decode::<Block>(&huge, LIMIT));
    assert!(matches!(r, Err(CodecError::Malformed(_))), "{r:?}");
    assert!(peak < SMALL_ALLOC, "2^60 prefix allocated {peak} bytes");

    // A length prefix just under the list maximum, on a short input: must not reserve
    // anything close to max * size_of::<SignedTx>().
    let mut big = good.clone();
    big[header_len..header_len + 8].copy_from_slice(&60_000u64.to_le_bytes());
    let (r, peak) = peak_during(|| codec::decode::<Block>(&big, LIMIT));
    assert!(r.is_err());
    assert!(
        peak < 1 << 20,
        "in-range prefix on short input allocated {peak} bytes"
    );

    // A byte-string prefix of 2^60 (a Merkle proof's sibling list inside a packet proof is a
    // BoundedVec; a bitmap is a byte string): craft a signer bitmap with a huge prefix.
    let bitmap = banyan_core::certificate::SignerBitmap::new(16).expect("small");
    let mut bm = codec::encode(&bitmap);
    bm[2..10].copy_from_slice(&(1u64 << 60).to_le_bytes());
    let (r, peak) =
        peak_during(|| codec::decode::<banyan_core::certificate::SignerBitmap>(&bm, LIMIT));
    assert!(r.is_err());
    assert!(peak < SMALL_ALLOC, "bitmap prefix allocated {peak} bytes");

    // A wrong enum tag for the transaction kind (there are 9 kinds).
    let tx = &block.txs[0];
    let mut bad_tag = codec::encode(tx);
    let kind_offset = 4 + 32 + 8 + 16;
    assert!(matches!(tx.body.kind, TxKind::Transfer { .. }));
    bad_tag[kind_offset..kind_offset + 4].copy_from_slice(&200u32.to_le_bytes());
    assert!(matches!(
        codec::decode::<SignedTx>(&bad_tag, LIMIT),
        Err(CodecError::Malformed(_))
    ));

    // An invalid boolean / option tag in the header's optional VRF proof.
    let mut bad_option = codec::encode(&block.header);
    let last = bad_option.len() - 1;
    bad_option[last] = 2;
    assert!(codec::decode::<banyan_core::header::BlockHeader>(&bad_option, LIMIT).is_err());

    // Random garbage of many sizes never panics and never allocates much.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    for len in (0..2048).step_by(7) {
        let bytes: Vec<u8> = (0..len)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state as u8
            })
            .collect();
        let (_, peak) = peak_during(|| codec::decode::<Block>(&bytes, LIMIT));
        assert!(
            peak < SMALL_ALLOC,
            "garbage of {len} bytes allocated {peak}"
        );
    }
}

#[test]
fn invalid_points_and_keys_fail_to_decode() {
    use banyan_core::keys::{AccountPublicKey, BlsPublicKey, BlsSignature};
    // All-zero bytes are not a valid compressed G1/G2 point; 0xc0 || 0.. is infinity.
    assert!(codec::decode::<BlsPublicKey>(&[0u8; 48], LIMIT).is_err());
    let mut inf_pk = [0u8; 48];
    inf_pk[0] = 0xc0;
    assert!(codec::decode::<BlsPublicKey>(&inf_pk, LIMIT).is_err());
    let mut inf_sig = [0u8; 96];
    inf_sig[0] = 0xc0;
    assert!(codec::decode::<BlsSignature>(&inf_sig, LIMIT).is_err());
    // The ed25519 identity point is a weak key.
    let mut identity = [0u8; 32];
    identity[0] = 1;
    assert!(codec::decode::<AccountPublicKey>(&identity, LIMIT).is_err());
}
