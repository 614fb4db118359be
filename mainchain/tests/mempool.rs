//! Mempool admission, ordering and eviction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use banyan_core::ids::{Amount, ChainId, Nonce};
use banyan_core::keys::{AccountSecretKey, AccountSignature};
use banyan_core::tx::{TxBody, TxKind};
use banyan_mainchain::{Mempool, MempoolError, MempoolLimits, SignatureCounts};
use common::*;

fn pool(max_txs: usize, max_per_sender: usize) -> Mempool {
    Mempool::new(
        ChainId::MAIN,
        MempoolLimits {
            max_txs,
            max_per_sender,
            min_fee: Amount(MIN_FEE),
        },
    )
}

fn zero(_: &banyan_core::ids::Address) -> Nonce {
    Nonce(0)
}

#[test]
fn dedup_and_nonce_order_with_gaps() {
    let p = pool(100, 16);
    let k = AccountSecretKey::generate(&mut rng(1));
    // Out of order, with a gap at 3.
    let txs = vec![
        transfer(&k, 2, addr(1), 1),
        transfer(&k, 0, addr(1), 1),
        transfer(&k, 4, addr(1), 1),
        transfer(&k, 1, addr(1), 1),
    ];
    let r = p.insert(txs.clone(), zero);
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    assert_eq!(p.len(), 4);
    // The same transactions again are duplicates.
    let r = p.insert(vec![txs[0].clone()], zero);
    assert_eq!(r[0], Err(MempoolError::Duplicate));
    // A different transaction with a taken nonce.
    let r = p.insert(vec![transfer(&k, 2, addr(2), 5)], zero);
    assert_eq!(r[0], Err(MempoolError::NonceTaken(Nonce(2))));
    // Twice in one batch.
    let t5 = transfer(&k, 5, addr(1), 1);
    let r = p.insert(vec![t5.clone(), t5.clone()], zero);
    assert!(r[0].is_ok());
    assert_eq!(r[1], Err(MempoolError::Duplicate));

    let sel = p.select(100, usize::MAX, zero);
    let nonces: Vec<u64> = sel.iter().map(|t| t.body.nonce.0).collect();
    assert_eq!(nonces, vec![0, 1, 2], "selection stops at the gap");
    // Starting from the account's nonce.
    let sel = p.select(100, usize::MAX, |_| Nonce(4));
    let nonces: Vec<u64> = sel.iter().map(|t| t.body.nonce.0).collect();
    assert_eq!(nonces, vec![4, 5]);
    // Limits on count and bytes.
    assert_eq!(p.select(2, usize::MAX, zero).len(), 2);
    let one = banyan_core::codec::encoded_len(&txs[0]);
    assert_eq!(p.select(100, one * 2 + 1, zero).len(), 2);
}

#[test]
fn senders_in_arrival_order() {
    let p = pool(100, 16);
    let a = AccountSecretKey::generate(&mut rng(2));
    let b = AccountSecretKey::generate(&mut rng(3));
    p.insert(vec![transfer(&b, 0, addr(1), 1)], zero);
    p.insert(
        vec![transfer(&a, 0, addr(1), 1), transfer(&a, 1, addr(1), 1)],
        zero,
    );
    p.insert(vec![transfer(&b, 1, addr(1), 1)], zero);
    let sel = p.select(100, usize::MAX, zero);
    let order: Vec<(bool, u64)> = sel
        .iter()
        .map(|t| (t.body.sender == b.public_key(), t.body.nonce.0))
        .collect();
    assert_eq!(order, vec![(true, 0), (true, 1), (false, 0), (false, 1)]);
}

#[test]
fn stale_wrong_chain_low_fee_and_far_nonces_are_refused() {
    let p = pool(100, 16);
    let k = AccountSecretKey::generate(&mut rng(4));
    let r = p.insert(vec![transfer(&k, 3, addr(1), 1)], |_| Nonce(5));
    assert!(
        matches!(r[0], Err(MempoolError::StaleNonce { .. })),
        "{r:?}"
    );
    assert!(r[0]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains("stale or replayed nonce"));
    assert_eq!(r[0].as_ref().unwrap_err().reason(), "stale_nonce");

    let r = p.insert(vec![transfer(&k, 16, addr(1), 1)], zero);
    assert!(
        matches!(r[0], Err(MempoolError::NonceTooFar { .. })),
        "{r:?}"
    );

    let other_chain = TxBody {
        chain: ChainId(7),
        sender: k.public_key(),
        nonce: Nonce(0),
        fee: Amount(MIN_FEE),
        kind: TxKind::Unstake { amount: Amount(1) },
    }
    .sign(&k);
    let r = p.insert(vec![other_chain], zero);
    assert!(
        matches!(r[0], Err(MempoolError::WrongChain { .. })),
        "{r:?}"
    );
    assert_eq!(r[0].as_ref().unwrap_err().reason(), "wrong_chain");

    let cheap = tx(&k, 0, MIN_FEE - 1, TxKind::Unstake { amount: Amount(1) });
    let r = p.insert(vec![cheap], zero);
    assert!(matches!(r[0], Err(MempoolError::FeeTooLow { .. })), "{r:?}");
    assert_eq!(p.len(), 0);
}

#[test]
fn bad_signatures_are_named_in_a_batch() {
    let p = pool(100, 16);
    let k = AccountSecretKey::generate(&mut rng(5));
    let mut bad = transfer(&k, 1, addr(1), 1);
    bad.signature = AccountSignature::from_bytes(&[7u8; 64]);
    let txs = vec![
        transfer(&k, 0, addr(1), 1),
        bad,
        transfer(&k, 2, addr(1), 1),
    ];
    let r = p.insert(txs.clone(), zero);
    assert!(r[0].is_ok());
    assert!(matches!(r[1], Err(MempoolError::BadSignature(_))), "{r:?}");
    assert!(r[2].is_ok());
    assert_eq!(p.len(), 2);
    assert!(p.is_verified(&txs[0].id()));
    assert!(p.is_verified_tx(&txs[0]));
    // The pooled body under another signature is not "verified".
    let mut forged = txs[0].clone();
    forged.signature = AccountSignature::from_bytes(&[9u8; 64]);
    assert!(!p.is_verified_tx(&forged));
}

#[test]
fn per_sender_and_global_limits() {
    let p = pool(5, 3);
    let a = AccountSecretKey::generate(&mut rng(6));
    let r = p.insert((0..3).map(|n| transfer(&a, n, addr(1), 1)).collect(), zero);
    assert!(r.iter().all(|x| x.is_ok()));
    // Nonce 3 is beyond the per-sender window; nonce 2 taken; so use a fresh pool slot check.
    let r = p.insert(vec![transfer(&a, 2, addr(2), 1)], |_| Nonce(0));
    assert_eq!(r[0], Err(MempoolError::NonceTaken(Nonce(2))));
    let r = p.insert(vec![transfer(&a, 3, addr(1), 1)], |_| Nonce(1));
    assert_eq!(r[0], Err(MempoolError::SenderFull { max: 3 }));
    assert_eq!(r[0].as_ref().unwrap_err().reason(), "sender_full");

    let b = AccountSecretKey::generate(&mut rng(7));
    let r = p.insert((0..3).map(|n| transfer(&b, n, addr(1), 1)).collect(), zero);
    assert!(r[0].is_ok() && r[1].is_ok());
    assert_eq!(r[2], Err(MempoolError::Full { max: 5 }));
    assert_eq!(p.len(), 5);
}

#[test]
fn remove_committed_drops_committed_and_stale() {
    let p = pool(100, 16);
    let a = AccountSecretKey::generate(&mut rng(8));
    let b = AccountSecretKey::generate(&mut rng(9));
    let ta: Vec<_> = (0..4).map(|n| transfer(&a, n, addr(1), 1)).collect();
    let tb: Vec<_> = (0..2).map(|n| transfer(&b, n, addr(1), 1)).collect();
    p.insert(ta.clone(), zero);
    p.insert(tb.clone(), zero);
    assert_eq!(p.len(), 6);
    // a's transactions 0 and 1 committed; a's nonce is now 3 (another tx with nonce 2 was
    // committed elsewhere), so the pooled nonce 2 is stale too.
    let mut committed = banyan_dag::State::new();
    committed
        .set(
            banyan_core::tx::StateKey::Account(a.public_key().address()),
            banyan_dag::StateValue::Nonce(Nonce(3)),
        )
        .expect("a nonce under an account key");
    p.remove_committed(&ta[..2], std::sync::Arc::new(committed));
    assert_eq!(p.len(), 3);
    assert!(!p.is_verified(&ta[2].id()));
    assert!(p.is_verified(&ta[3].id()));
    let sel = p.select(100, usize::MAX, |x| {
        if *x == a.public_key().address() {
            Nonce(3)
        } else {
            Nonce(0)
        }
    });
    assert_eq!(sel.len(), 3);
}

#[test]
fn transactions_a_block_check_verified_are_not_checked_again() {
    let p = pool(100, 16);
    let k = AccountSecretKey::generate(&mut rng(9));
    let a = transfer(&k, 0, addr(1), 1);
    let b = transfer(&k, 1, addr(1), 1);
    p.note_block_verified([(a.id(), a.signature)]);
    // The same body under another signature is no such transaction: checked, and refused.
    let mut forged = a.clone();
    forged.signature = AccountSignature::from_bytes(&[9u8; 64]);
    let r = p.insert(vec![forged, b], zero);
    assert!(matches!(r[0], Err(MempoolError::BadSignature(_))), "{r:?}");
    assert!(r[1].is_ok());
    let counts = |admission, spared| SignatureCounts {
        admission,
        block: 1,
        spared,
    };
    assert_eq!(p.signature_counts(), counts(2, 0));
    // The transaction itself is admitted without a check.
    let r = p.insert(vec![a.clone()], zero);
    assert!(r[0].is_ok(), "{r:?}");
    assert!(p.is_verified_tx(&a));
    assert_eq!(p.signature_counts(), counts(2, 1));
}
