//! Mempool admission, ordering, payment, expiry, throttling and eviction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use banyan_chain::mempool::CommittedAccounts;
use banyan_chain::{Mempool, MempoolError, MempoolLimits, SignatureCounts};
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Nonce};
use banyan_core::keys::{AccountSecretKey, AccountSignature};
use banyan_core::tx::{SignedTx, TxBody, TxKind};
use common::*;

fn limits(max_txs: usize, max_per_sender: usize) -> MempoolLimits {
    MempoolLimits {
        max_txs,
        max_per_sender,
        min_fee: Amount(MIN_FEE),
        ..MempoolLimits::default()
    }
}

fn pool(max_txs: usize, max_per_sender: usize) -> Mempool {
    Mempool::new(ChainId::MAIN, network(), limits(max_txs, max_per_sender))
}

fn zero(_: &Address) -> Nonce {
    Nonce(0)
}

/// Committed accounts for the tests: every account at nonce `nonce` holding `balance` of
/// every asset, except those set otherwise.
#[derive(Clone, Debug, Default)]
struct Accounts {
    nonce: Nonce,
    balance: Amount,
    nonces: HashMap<Address, Nonce>,
    balances: HashMap<(Address, AssetId), Amount>,
}

impl Accounts {
    /// Everyone rich, at nonce `nonce`.
    fn rich_at(nonce: u64) -> Self {
        Accounts {
            nonce: Nonce(nonce),
            balance: Amount(FUNDS),
            ..Accounts::default()
        }
    }

    /// Nobody funded, everyone at nonce 0.
    fn broke() -> Self {
        Accounts::default()
    }

    fn with_balance(mut self, k: &AccountSecretKey, asset: AssetId, amount: u128) -> Self {
        self.balances
            .insert((k.public_key().address(), asset), Amount(amount));
        self
    }
}

impl CommittedAccounts for Accounts {
    fn nonce(&self, a: &Address) -> Nonce {
        self.nonces.get(a).copied().unwrap_or(self.nonce)
    }
    fn balance(&self, a: &Address, asset: &AssetId) -> Amount {
        self.balances
            .get(&(*a, *asset))
            .copied()
            .unwrap_or(self.balance)
    }
}

fn rich() -> Accounts {
    Accounts::rich_at(0)
}

fn now() -> Instant {
    Instant::now()
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
    let r = p.insert(&txs, now(), &rich());
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    assert_eq!(p.len(), 4);
    // The same transactions again are duplicates.
    let r = p.insert(&[txs[0].clone()], now(), &rich());
    assert_eq!(r[0], Err(MempoolError::Duplicate));
    // A different transaction with a taken nonce.
    let r = p.insert(&[transfer(&k, 2, addr(2), 5)], now(), &rich());
    assert_eq!(r[0], Err(MempoolError::NonceTaken(Nonce(2))));
    // Twice in one batch.
    let t5 = transfer(&k, 5, addr(1), 1);
    let r = p.insert(&[t5.clone(), t5.clone()], now(), &rich());
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
    p.insert(&[transfer(&b, 0, addr(1), 1)], now(), &rich());
    p.insert(
        &[transfer(&a, 0, addr(1), 1), transfer(&a, 1, addr(1), 1)],
        now(),
        &rich(),
    );
    p.insert(&[transfer(&b, 1, addr(1), 1)], now(), &rich());
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
    let r = p.insert(&[transfer(&k, 3, addr(1), 1)], now(), &Accounts::rich_at(5));
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

    let r = p.insert(&[transfer(&k, 16, addr(1), 1)], now(), &rich());
    assert!(
        matches!(r[0], Err(MempoolError::NonceTooFar { .. })),
        "{r:?}"
    );

    let other_chain = TxBody {
        chain: ChainId(7),
        network: network(),
        sender: k.public_key(),
        nonce: Nonce(0),
        fee: Amount(MIN_FEE),
        kind: TxKind::Unstake { amount: Amount(1) },
    }
    .sign(&k);
    let r = p.insert(&[other_chain], now(), &rich());
    assert!(
        matches!(r[0], Err(MempoolError::WrongChain { .. })),
        "{r:?}"
    );
    assert_eq!(r[0].as_ref().unwrap_err().reason(), "wrong_chain");

    // Same chain id, another network: a replay from elsewhere.
    let other_network = TxBody {
        chain: ChainId::MAIN,
        network: banyan_core::hash::Digest([9; 32]),
        sender: k.public_key(),
        nonce: Nonce(0),
        fee: Amount(MIN_FEE),
        kind: TxKind::Unstake { amount: Amount(1) },
    }
    .sign(&k);
    let r = p.insert(&[other_network], now(), &rich());
    assert!(
        matches!(r[0], Err(MempoolError::WrongNetwork { .. })),
        "{r:?}"
    );
    assert_eq!(r[0].as_ref().unwrap_err().reason(), "wrong_network");

    let cheap = tx(&k, 0, MIN_FEE - 1, TxKind::Unstake { amount: Amount(1) });
    let r = p.insert(&[cheap], now(), &rich());
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
    let r = p.insert(&txs, now(), &rich());
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
    let r = p.insert(
        &(0..3)
            .map(|n| transfer(&a, n, addr(1), 1))
            .collect::<Vec<_>>(),
        now(),
        &rich(),
    );
    assert!(r.iter().all(|x| x.is_ok()));
    // Nonce 3 is beyond the per-sender window; nonce 2 taken; so use a fresh pool slot check.
    let r = p.insert(&[transfer(&a, 2, addr(2), 1)], now(), &rich());
    assert_eq!(r[0], Err(MempoolError::NonceTaken(Nonce(2))));
    let r = p.insert(&[transfer(&a, 3, addr(1), 1)], now(), &Accounts::rich_at(1));
    assert_eq!(r[0], Err(MempoolError::SenderFull { max: 3 }));
    assert_eq!(r[0].as_ref().unwrap_err().reason(), "sender_full");

    let b = AccountSecretKey::generate(&mut rng(7));
    let r = p.insert(
        &(0..3)
            .map(|n| transfer(&b, n, addr(1), 1))
            .collect::<Vec<_>>(),
        now(),
        &rich(),
    );
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
    p.insert(&ta, now(), &rich());
    p.insert(&tb, now(), &rich());
    assert_eq!(p.len(), 6);
    // a's transactions 0 and 1 committed; a's nonce is now 3 (another tx with nonce 2 was
    // committed elsewhere), so the pooled nonce 2 is stale too.
    let mut committed = banyan_core::state::State::new();
    committed
        .set(
            banyan_core::tx::StateKey::Account(a.public_key().address()),
            banyan_core::value::StateValue::Nonce(Nonce(3)),
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
    let r = p.insert(&[forged, b], now(), &rich());
    assert!(matches!(r[0], Err(MempoolError::BadSignature(_))), "{r:?}");
    assert!(r[1].is_ok());
    let counts = |admission, spared| SignatureCounts {
        admission,
        block: 1,
        spared,
    };
    assert_eq!(p.signature_counts(), counts(2, 0));
    // The transaction itself is admitted without a check.
    let r = p.insert(std::slice::from_ref(&a), now(), &rich());
    assert!(r[0].is_ok(), "{r:?}");
    assert!(p.is_verified_tx(&a));
    assert_eq!(p.signature_counts(), counts(2, 1));
}

fn cost(amount: u128) -> u128 {
    MIN_FEE + amount
}

fn cannot_pay(r: &Result<banyan_core::hash::Digest, MempoolError>) -> bool {
    matches!(r, Err(MempoolError::CannotPay { .. }))
}

#[test]
fn unfunded_sender_is_refused_without_a_signature_check() {
    let p = pool(100, 16);
    let k = AccountSecretKey::generate(&mut rng(20));
    let txs: Vec<_> = (0..8).map(|n| transfer(&k, n, addr(1), 1)).collect();
    let r = p.insert(&txs, now(), &Accounts::broke());
    assert!(r.iter().all(cannot_pay), "{r:?}");
    let e = r[0].as_ref().unwrap_err();
    assert_eq!(e.reason(), "cannot_pay");
    assert_eq!(
        e.to_string(),
        format!(
            "balance 0 of the native coin cannot pay {} for this transaction on top of 0 \
             pending: wait for pending transactions to commit or fund the account",
            cost(1)
        )
    );
    assert_eq!(p.len(), 0);
    assert_eq!(
        p.signature_counts().admission,
        0,
        "refused before any signature check"
    );

    // Even where fees are free, a key nobody funded gets nothing in: not a fee-only kind…
    let free = Mempool::new(
        ChainId::MAIN,
        network(),
        MempoolLimits {
            min_fee: Amount::ZERO,
            ..limits(100, 16)
        },
    );
    let unstake = tx(&k, 0, 0, TxKind::Unstake { amount: Amount(1) });
    // …nor a zero transfer.
    let nothing = tx(
        &k,
        1,
        0,
        TxKind::Transfer {
            to: addr(1),
            asset: AssetId::NATIVE,
            amount: Amount::ZERO,
        },
    );
    let r = free.insert(&[unstake.clone(), nothing], now(), &Accounts::broke());
    assert!(r.iter().all(cannot_pay), "{r:?}");
    assert_eq!(free.len(), 0);
    // With a coin, the fee-only transaction is in.
    let one = Accounts::broke().with_balance(&k, AssetId::NATIVE, 1);
    assert!(free.insert(&[unstake], now(), &one)[0].is_ok());
}

#[test]
fn a_funded_sender_queues_what_its_balance_pays_for() {
    let p = pool(100, 64);
    let k = AccountSecretKey::generate(&mut rng(21));
    let me = k.public_key().address();
    // Enough for exactly five transfers of 100 (fee + amount each), not six.
    let accounts = Accounts::broke().with_balance(&k, AssetId::NATIVE, 5 * cost(100) + 9);
    let txs: Vec<_> = (0..6).map(|n| transfer(&k, n, addr(1), 100)).collect();
    // One batch: the first five in, the sixth refused, counting the batch's own.
    let r = p.insert(&txs, now(), &accounts);
    assert!(r[..5].iter().all(|x| x.is_ok()), "{r:?}");
    assert_eq!(
        r[5],
        Err(MempoolError::CannotPay {
            asset: AssetId::NATIVE,
            balance: Amount(5 * cost(100) + 9),
            pending: Amount(5 * cost(100)),
            cost: Amount(cost(100)),
        })
    );
    assert_eq!(
        p.pending_spend(&me, &AssetId::NATIVE),
        Amount(5 * cost(100))
    );
    // The same again in a later batch: still refused; so is a fee-only transaction (9
    // coins are left, the fee is 10).
    assert!(cannot_pay(&p.insert(&txs[5..], now(), &accounts)[0]));
    let unstake = tx(&k, 5, MIN_FEE, TxKind::Unstake { amount: Amount(3) });
    assert!(cannot_pay(&p.insert(&[unstake], now(), &accounts)[0]));
    assert_eq!(p.len(), 5);

    // Another asset is paid from its own balance, the fee from the native one.
    let bridged = AssetId::bridged(ChainId(3), AssetId::NATIVE);
    let q = pool(100, 64);
    let accounts = Accounts::broke()
        .with_balance(&k, AssetId::NATIVE, 2 * MIN_FEE)
        .with_balance(&k, bridged, 70);
    let send = |n: u64, amount: u128| {
        tx(
            &k,
            n,
            MIN_FEE,
            TxKind::Transfer {
                to: addr(2),
                asset: bridged,
                amount: Amount(amount),
            },
        )
    };
    let r = q.insert(&[send(0, 50), send(1, 30)], now(), &accounts);
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(
        r[1],
        Err(MempoolError::CannotPay {
            asset: bridged,
            balance: Amount(70),
            pending: Amount(50),
            cost: Amount(30),
        })
    );
    assert!(r[1]
        .as_ref()
        .unwrap_err()
        .to_string()
        .contains(&format!("of asset {}", hex::encode(bridged.0))));
    let r = q.insert(&[send(1, 20)], now(), &accounts);
    assert!(r[0].is_ok(), "{r:?}");
    assert_eq!(q.pending_spend(&me, &bridged), Amount(70));
    assert_eq!(q.pending_spend(&me, &AssetId::NATIVE), Amount(2 * MIN_FEE));
    // The native balance is spent on fees now: nothing more, even fee-only.
    let r = q.insert(
        &[tx(&k, 2, MIN_FEE, TxKind::Unstake { amount: Amount(1) })],
        now(),
        &accounts,
    );
    assert!(cannot_pay(&r[0]), "{r:?}");

    // A stake locks its amount, a fee plus amount that overflows is refused as such.
    let bls = banyan_core::keys::BlsSecretKey::generate(&mut rng(22));
    let stake = |amount: u128| {
        tx(
            &k,
            0,
            MIN_FEE,
            TxKind::Stake {
                validator_key: bls.public_key(),
                pop: Box::new(bls.prove_possession()),
                amount: Amount(amount),
            },
        )
    };
    let s = pool(100, 64);
    let accounts = Accounts::broke().with_balance(&k, AssetId::NATIVE, 1000);
    assert!(cannot_pay(&s.insert(&[stake(1000)], now(), &accounts)[0]));
    let r = s.insert(&[stake(u128::MAX)], now(), &accounts);
    assert_eq!(r[0].as_ref().unwrap_err().reason(), "cost_overflow");
    assert!(s.insert(&[stake(1000 - MIN_FEE)], now(), &accounts)[0].is_ok());
}

#[test]
fn commit_and_removal_free_the_budget() {
    let p = pool(100, 64);
    let k = AccountSecretKey::generate(&mut rng(23));
    let me = k.public_key().address();
    let balance = 3 * cost(100);
    let accounts = Accounts::broke().with_balance(&k, AssetId::NATIVE, balance);
    let txs: Vec<_> = (0..4).map(|n| transfer(&k, n, addr(1), 100)).collect();
    let r = p.insert(&txs, now(), &accounts);
    assert!(
        r[..3].iter().all(|x| x.is_ok()) && cannot_pay(&r[3]),
        "{r:?}"
    );

    // Dropping one (a proposal found it unpayable) frees its cost.
    p.remove(&[txs[2].id()]);
    assert_eq!(
        p.pending_spend(&me, &AssetId::NATIVE),
        Amount(2 * cost(100))
    );
    assert!(p.insert(&txs[2..3], now(), &accounts)[0].is_ok());

    // Two commit, and the account is paid 1000 more in the same block: the committed
    // balance is what is left plus that, the pending total what is still pooled.
    let mut state = banyan_core::state::State::new();
    let left = balance - 2 * cost(100) + 1000;
    state
        .set(
            banyan_core::tx::StateKey::Account(me),
            banyan_core::value::StateValue::Nonce(Nonce(2)),
        )
        .unwrap();
    state
        .set(
            banyan_core::tx::StateKey::Balance(me, AssetId::NATIVE),
            banyan_core::value::StateValue::Amount(Amount(left)),
        )
        .unwrap();
    p.remove_committed(&txs[..2], std::sync::Arc::new(state));
    assert_eq!(p.len(), 1);
    assert_eq!(p.pending_spend(&me, &AssetId::NATIVE), Amount(cost(100)));
    // Against the committed state itself (what the node passes): nonce 3 is in, and as
    // many more as the rest pays for.
    let committed = p.committed_state().unwrap();
    let more: Vec<_> = (3..40).map(|n| transfer(&k, n, addr(1), 100)).collect();
    let r = p.insert(&more, now(), &*committed);
    let fits = ((left - cost(100)) / cost(100)) as usize;
    assert!(r[..fits].iter().all(|x| x.is_ok()), "{r:?}");
    assert!(r[fits..].iter().all(cannot_pay), "{r:?}");
    // Everything removed: nothing pending.
    let all: Vec<_> = txs.iter().chain(&more).map(SignedTx::id).collect();
    p.remove(&all);
    assert_eq!(p.len(), 0);
    assert_eq!(p.pending_spend(&me, &AssetId::NATIVE), Amount::ZERO);
}

#[test]
fn transactions_expire_at_their_ttl() {
    let ttl = Duration::from_secs(10);
    let p = Mempool::new(
        ChainId::MAIN,
        network(),
        MempoolLimits {
            tx_ttl: ttl,
            ..limits(100, 16)
        },
    );
    let k = AccountSecretKey::generate(&mut rng(24));
    let me = k.public_key().address();
    let t0 = Instant::now();
    let accounts = Accounts::broke().with_balance(&k, AssetId::NATIVE, 2 * cost(5));
    let a = transfer(&k, 0, addr(1), 5);
    let b = transfer(&k, 1, addr(1), 5);
    assert!(p.insert(std::slice::from_ref(&a), t0, &accounts)[0].is_ok());
    assert!(p.insert(
        std::slice::from_ref(&b),
        t0 + Duration::from_secs(4),
        &accounts
    )[0]
    .is_ok());
    assert_eq!(p.evict_expired(t0 + ttl - Duration::from_millis(1)), 0);
    assert_eq!(p.len(), 2);
    // At its TTL the first goes, and its cost with it.
    assert_eq!(p.evict_expired(t0 + ttl), 1);
    assert!(!p.is_verified(&a.id()) && p.is_verified(&b.id()));
    assert_eq!(p.pending_spend(&me, &AssetId::NATIVE), Amount(cost(5)));
    // The later nonce stays, unselectable behind the gap, until the sender sends the
    // expired one again (its cost was freed, so it is paid for).
    assert!(p.select(100, usize::MAX, zero).is_empty());
    assert!(p.insert(std::slice::from_ref(&a), t0 + ttl, &accounts)[0].is_ok());
    assert_eq!(p.select(100, usize::MAX, zero).len(), 2);
    // An insert evicts what expired before it admits anything.
    let c = AccountSecretKey::generate(&mut rng(25));
    let r = p.insert(
        &[transfer(&c, 0, addr(1), 5)],
        t0 + Duration::from_secs(14),
        &rich(),
    );
    assert!(r[0].is_ok());
    assert_eq!(p.len(), 2, "b (admitted at 4s) expired at 14s");
    assert!(!p.is_verified(&b.id()));
    assert_eq!(p.evict_expired(t0 + 2 * ttl), 1);
    assert_eq!(p.evict_expired(t0 + Duration::from_secs(24)), 1);
    assert!(p.is_empty());
    assert_eq!(p.pending_spend(&me, &AssetId::NATIVE), Amount::ZERO);
}

fn throttling_pool() -> Mempool {
    Mempool::new(
        ChainId::MAIN,
        network(),
        MempoolLimits {
            throttle_strikes: 3,
            throttle_window: Duration::from_secs(10),
            throttle_cooldown: Duration::from_secs(30),
            ..limits(100, 64)
        },
    )
}

#[test]
fn senders_of_unpayable_transactions_are_throttled_then_let_go() {
    let p = throttling_pool();
    let k = AccountSecretKey::generate(&mut rng(26));
    let t0 = Instant::now();
    let accounts = Accounts::broke().with_balance(&k, AssetId::NATIVE, cost(1));
    let txs: Vec<_> = (0..10).map(|n| transfer(&k, n, addr(1), 1)).collect();
    assert!(p.insert(&txs[..1], t0, &accounts)[0].is_ok());
    // Two strikes, then the window passes: they no longer count.
    for n in 1..3 {
        assert!(cannot_pay(&p.insert(&txs[n..n + 1], t0, &accounts)[0]));
    }
    let t1 = t0 + Duration::from_secs(10);
    for n in 1..3 {
        assert!(cannot_pay(&p.insert(&txs[n..n + 1], t1, &accounts)[0]));
    }
    // The third strike in the window throttles.
    assert!(cannot_pay(&p.insert(&txs[3..4], t1, &accounts)[0]));
    let checks = p.signature_counts().admission;
    let r = p.insert(&txs[4..], t1 + Duration::from_secs(1), &accounts);
    let e = r[0].as_ref().unwrap_err();
    assert_eq!(
        *e,
        MempoolError::Throttled {
            retry_after_ms: 29_000,
            strikes: 3,
            window_ms: 10_000,
        }
    );
    assert_eq!(e.reason(), "throttled");
    assert!(e.to_string().contains("fund the account or wait"), "{e}");
    assert!(r.iter().all(|x| x == &r[0]), "{r:?}");
    assert_eq!(
        p.signature_counts().admission,
        checks,
        "throttled transactions cost no signature check"
    );
    // Even a payable transaction waits for the cool-down.
    p.remove(&[txs[0].id()]);
    let r = p.insert(&txs[..1], t1 + Duration::from_secs(29), &accounts);
    assert!(matches!(r[0], Err(MempoolError::Throttled { .. })), "{r:?}");
    // After it, the sender is heard again.
    let r = p.insert(&txs[..1], t1 + Duration::from_secs(30), &accounts);
    assert!(r[0].is_ok(), "{r:?}");
    assert!(cannot_pay(
        &p.insert(&txs[1..2], t1 + Duration::from_secs(30), &accounts)[0]
    ));
}

#[test]
fn one_batch_of_unpayable_transactions_throttles_after_few_checks() {
    let p = throttling_pool();
    let k = AccountSecretKey::generate(&mut rng(27));
    let t0 = Instant::now();
    let accounts = Accounts::broke().with_balance(&k, AssetId::NATIVE, cost(1));
    let txs: Vec<_> = (0..50).map(|n| transfer(&k, n, addr(1), 1)).collect();
    let r = p.insert(&txs, t0, &accounts);
    assert!(r[0].is_ok());
    assert!(r[1..].iter().all(cannot_pay), "{r:?}");
    // The admitted one and three strikes were checked, not the other 46.
    assert_eq!(p.signature_counts().admission, 4);
    let r = p.insert(&txs[1..2], t0, &accounts);
    assert!(matches!(r[0], Err(MempoolError::Throttled { .. })), "{r:?}");
}

#[test]
fn forged_transactions_do_not_throttle_the_named_sender() {
    let p = throttling_pool();
    let victim = AccountSecretKey::generate(&mut rng(28));
    let t0 = Instant::now();
    let accounts = Accounts::broke().with_balance(&victim, AssetId::NATIVE, 2 * cost(1));
    // Unpayable transactions in the victim's name, under junk signatures, many times over.
    let forge = |round: u64, n: u64| {
        let mut t = transfer(&victim, n, addr(6), FUNDS + u128::from(round));
        t.signature = AccountSignature::from_bytes(&[(round * 20 + n) as u8; 64]);
        t
    };
    for round in 0..5u64 {
        let forged: Vec<_> = (0..20).map(|n| forge(round, n)).collect();
        let r = p.insert(&forged, t0, &accounts);
        // Those checked fail their signature check; the rest are refused for funds, unheard.
        assert!(
            r.iter().all(|x| matches!(
                x,
                Err(MempoolError::BadSignature(_)) | Err(MempoolError::CannotPay { .. })
            )),
            "{r:?}"
        );
        // Three (the strike allowance per batch) had their signatures checked, and failed.
        let checked = r
            .iter()
            .filter(|x| matches!(x, Err(MempoolError::BadSignature(_))))
            .count();
        assert_eq!(checked, 3, "{r:?}");
    }
    // The victim itself is not throttled.
    let own: Vec<_> = (0..2).map(|n| transfer(&victim, n, addr(1), 1)).collect();
    let r = p.insert(&own, t0, &accounts);
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    assert_eq!(p.len(), 2);
}

#[test]
fn fifty_unfunded_keys_take_no_slot_and_a_funded_sender_still_gets_in() {
    // The node's pool size; every key tries to park 2,000 transactions.
    let p = pool(200_000, 4096);
    let t0 = Instant::now();
    let funded = AccountSecretKey::generate(&mut rng(29));
    let accounts = Accounts::broke().with_balance(&funded, AssetId::NATIVE, 100 * cost(1));
    for key in 0..50u64 {
        let k = AccountSecretKey::generate(&mut rng(1000 + key));
        let txs: Vec<_> = (0..2000).map(|n| transfer(&k, n, addr(1), 1)).collect();
        for batch in txs.chunks(500) {
            let r = p.insert(batch, t0, &accounts);
            assert!(r.iter().all(cannot_pay), "key {key}: {r:?}");
        }
        assert_eq!(p.len(), 0, "key {key} took a slot");
    }
    assert_eq!(
        p.signature_counts().admission,
        0,
        "the flood cost no signature check"
    );
    let txs: Vec<_> = (0..100).map(|n| transfer(&funded, n, addr(1), 1)).collect();
    let r = p.insert(&txs, t0, &accounts);
    assert!(r.iter().all(|x| x.is_ok()), "{r:?}");
    assert_eq!(p.len(), 100);
    assert_eq!(p.select(1000, usize::MAX, zero).len(), 100);
}

/// Admission racing commits: a sender keeps exactly as many transactions pending as its
/// committed balance pays for, each new one sent as soon as the committed state it reads
/// says one more fits. A commit must never look half-done to admission (new balances with
/// the committed transactions still counted as pending), or a payable transaction is refused.
#[test]
fn admission_never_sees_a_commit_half_done() {
    const IN_FLIGHT: u64 = 4;
    const TOTAL: u64 = 3_000;
    let p = std::sync::Arc::new(pool(1_000, 64));
    let k = AccountSecretKey::generate(&mut rng(31));
    let me = k.public_key().address();
    let balance = u128::from(IN_FLIGHT) * cost(1);
    // Committed after `n` transactions: nonce n, balance unchanged (the account is paid
    // back what it spends in the same blocks).
    let state_at = |n: u64| {
        let mut s = banyan_core::state::State::new();
        s.set(
            banyan_core::tx::StateKey::Account(me),
            banyan_core::value::StateValue::Nonce(Nonce(n)),
        )
        .unwrap();
        s.set(
            banyan_core::tx::StateKey::Balance(me, AssetId::NATIVE),
            banyan_core::value::StateValue::Amount(Amount(balance)),
        )
        .unwrap();
        std::sync::Arc::new(s)
    };
    p.set_committed_state(state_at(0));
    let txs: std::sync::Arc<Vec<SignedTx>> =
        std::sync::Arc::new((0..TOTAL).map(|n| transfer(&k, n, addr(1), 1)).collect());

    let submitter = {
        let (p, txs) = (p.clone(), txs.clone());
        std::thread::spawn(move || {
            let mut next = 0u64;
            while next < TOTAL {
                let state = p.committed_state().unwrap();
                let committed = CommittedAccounts::nonce(&*state, &me).0;
                if next >= committed + IN_FLIGHT {
                    std::thread::yield_now();
                    continue;
                }
                let r = p.insert(&txs[next as usize..=next as usize], now(), &*state);
                if let Err(e) = &r[0] {
                    return Err(format!("nonce {next} refused: {e}"));
                }
                next += 1;
            }
            Ok(())
        })
    };
    for n in 0..TOTAL {
        // Commit transaction n once it is pooled.
        // The submitter pools in nonce order and every lower one is committed: n is pooled
        // once the pool holds anything.
        while p.is_empty() {
            if submitter.is_finished() {
                break;
            }
            std::thread::yield_now();
        }
        p.remove_committed(&txs[n as usize..=n as usize], state_at(n + 1));
    }
    submitter.join().unwrap().unwrap();
    assert!(p.is_empty());
}
