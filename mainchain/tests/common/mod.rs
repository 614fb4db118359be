//! Shared test fixtures: keys, a genesis, apps on temporary RocksDB stores, blocks.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use banyan_chain::{ChainApp, ChainParams, ChainStore, Mempool, MempoolLimits, NoopObserver};
use banyan_consensus::{Application, Payload};
use banyan_core::codec::BoundedVec;
use banyan_core::hash::Digest;
use banyan_core::header::{Block, BlockHeader};
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce, Round};
use banyan_core::keys::{AccountSecretKey, BlsSecretKey};
use banyan_core::tx::{SignedTx, TxBody, TxKind};
use banyan_mainchain::genesis::{build_genesis, Validator};
use banyan_mainchain::identity::bind_network_key;
use banyan_mainchain::{Genesis, GenesisFile, OwnRegistry};
use banyan_store::{Store, StoreOptions};
use rand::rngs::StdRng;
use rand::SeedableRng;

pub const MIN_FEE: u128 = 10;
pub const FUNDS: u128 = 1_000_000_000;

pub struct Fixture {
    pub validators: Vec<(BlsSecretKey, AccountSecretKey)>,
    pub funded: Vec<AccountSecretKey>,
    pub file: GenesisFile,
    pub genesis: Genesis,
}

thread_local! {
    /// The network of the test running on this thread: the genesis id of the last
    /// [`fixture`] it built (all zero before), which [`tx`] signs and [`mempool`] expects.
    static NETWORK: std::cell::Cell<Digest> = const { std::cell::Cell::new(Digest::ZERO) };
}

/// The network [`tx`] and [`mempool`] use on this thread.
pub fn network() -> Digest {
    NETWORK.with(|n| n.get())
}

pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

pub fn validator_input(
    name: &str,
    bls: &BlsSecretKey,
    acct: &AccountSecretKey,
    stake: u128,
) -> Validator {
    Validator {
        name: name.into(),
        account_key: acct.public_key(),
        network_key: network_key(acct).public_key(),
        bls_key: bls.public_key(),
        pop: bls.prove_possession(),
        network_binding: bind_network_key(bls, &network_key(acct).public_key()),
        stake: Amount(stake),
    }
}

/// The network (TLS) key of the node whose account key is `acct`: derived from it, so the
/// fixtures stay deterministic.
pub fn network_key(acct: &AccountSecretKey) -> AccountSecretKey {
    let seed = banyan_core::hash::hash(
        banyan_core::hash::Domain::Custom("test/network-key"),
        &acct.to_bytes()[..],
    );
    AccountSecretKey::from_bytes(&seed.0)
}

/// A genesis with `n` validators and `funded` funded accounts.
pub fn fixture(n: usize, funded: usize, epoch_length: u64) -> Fixture {
    let mut r = rng(7);
    let validators: Vec<(BlsSecretKey, AccountSecretKey)> = (0..n)
        .map(|_| {
            (
                BlsSecretKey::generate(&mut r),
                AccountSecretKey::generate(&mut r),
            )
        })
        .collect();
    let funded: Vec<AccountSecretKey> = (0..funded)
        .map(|_| AccountSecretKey::generate(&mut r))
        .collect();
    let params = ChainParams {
        chain: ChainId::MAIN,
        epoch_length,
        min_fee: Amount(MIN_FEE),
        max_block_txs: 1000,
        staking: banyan_ledger::StakingRules::default(),
    };
    let accounts: Vec<(Address, Amount)> = funded
        .iter()
        .map(|k| (k.public_key().address(), Amount(FUNDS)))
        .chain(
            validators
                .iter()
                .map(|(_, a)| (a.public_key().address(), Amount(FUNDS))),
        )
        .collect();
    let inputs: Vec<Validator> = validators
        .iter()
        .enumerate()
        .map(|(i, (b, a))| validator_input(&format!("v{i}"), b, a, 1000 + i as u128))
        .collect();
    let file = build_genesis(&params, 1_700_000_000_000, &accounts, &inputs).unwrap();
    let genesis = Genesis::validate(file.clone()).unwrap();
    NETWORK.with(|n| n.set(genesis.network()));
    Fixture {
        validators,
        funded,
        file,
        genesis,
    }
}

pub fn open_store(path: &Path) -> Arc<Store> {
    Arc::new(
        Store::open(
            path,
            &StoreOptions {
                create_if_missing: true,
                ..StoreOptions::default()
            },
        )
        .unwrap(),
    )
}

/// A mempool for this thread's [`network`].
pub fn mempool() -> Arc<Mempool> {
    mempool_of(network())
}

pub fn mempool_of(network: Digest) -> Arc<Mempool> {
    Arc::new(Mempool::new(
        ChainId::MAIN,
        network,
        MempoolLimits {
            min_fee: Amount(MIN_FEE),
            ..MempoolLimits::default()
        },
    ))
}

pub fn open_app(path: &Path, genesis: &Genesis, threads: usize) -> (ChainApp, Arc<Mempool>) {
    let store = ChainStore::new(open_store(path), ChainId::MAIN);
    let pool = mempool_of(genesis.network());
    let app = ChainApp::open(
        store,
        genesis,
        Box::new(OwnRegistry),
        pool.clone(),
        threads,
        Box::new(NoopObserver),
    )
    .unwrap();
    (app, pool)
}

pub fn tx(from: &AccountSecretKey, nonce: u64, fee: u128, kind: TxKind) -> SignedTx {
    TxBody {
        chain: ChainId::MAIN,
        network: network(),
        sender: from.public_key(),
        nonce: Nonce(nonce),
        fee: Amount(fee),
        kind,
    }
    .sign(from)
}

pub fn transfer(from: &AccountSecretKey, nonce: u64, to: Address, amount: u128) -> SignedTx {
    tx(
        from,
        nonce,
        MIN_FEE,
        TxKind::Transfer {
            to,
            asset: AssetId::NATIVE,
            amount: Amount(amount),
        },
    )
}

pub fn addr(n: u8) -> Address {
    Address([n; 32])
}

/// The block a leader would build from `payload` on `parent`.
pub fn block_from(parent: &Block, payload: Payload, round: u64) -> Block {
    Block {
        header: BlockHeader {
            chain: ChainId::MAIN,
            epoch: Epoch(0),
            height: Height(parent.header.height.0 + 1),
            round: Round(round),
            parent: parent.header.id(),
            state_root: payload.state_root,
            tx_root: Block::compute_tx_root(&payload.txs),
            outbox_root: payload.outbox_root,
            proposer: Digest::ZERO,
            timestamp_ms: parent.header.timestamp_ms + 1,
            vrf_proof: None,
        },
        txs: BoundedVec::new(payload.txs).unwrap(),
    }
}

/// Propose on `parent` with `app` and return the block.
pub fn propose(app: &mut ChainApp, parent: &Block, round: u64) -> Block {
    let payload = app.propose(parent).expect("proposes");
    block_from(parent, payload, round)
}

pub fn balance(app: &ChainApp, a: &Address) -> Amount {
    app.store().balance(a, &AssetId::NATIVE).unwrap()
}
