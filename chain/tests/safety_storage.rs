//! The RocksDB-backed `ChainStore` meets the same `SafetyStorage` contract as the in-memory
//! and simulator storages (`banyan_consensus::contract`), and its promises survive a real
//! close and reopen of the database.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::cell::RefCell;
use std::path::Path;
use std::sync::Arc;

use banyan_chain::ChainStore;
use banyan_consensus::{contract, SafetyData, SafetyStorage};
use banyan_core::hash::Digest;
use banyan_core::ids::{ChainId, Epoch, Round};
use banyan_store::{Store, StoreOptions};

const CHAIN: ChainId = ChainId(7);

fn open(path: &Path) -> Arc<Store> {
    let options = StoreOptions {
        create_if_missing: true,
        ..StoreOptions::default()
    };
    Arc::new(Store::open(path, &options).unwrap())
}

#[test]
fn rocksdb_chain_store_meets_the_safety_storage_contract() {
    // Every call gets its own fresh database; the directories live as long as the test.
    let dirs = RefCell::new(Vec::new());
    let verdict = contract::safety_storage(CHAIN, || {
        let dir = tempfile::tempdir().unwrap();
        let store = ChainStore::new(open(dir.path()), CHAIN);
        dirs.borrow_mut().push(dir);
        store
    });
    assert_eq!(verdict, Ok(()));
}

#[test]
fn safety_data_survives_closing_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let data = SafetyData {
        epoch: Epoch(1),
        last_voted_round: Round(12),
        last_proposed_round: Round(11),
        one_chain_round: Round(10),
        last_vote: None,
        last_timeout: None,
        last_proposal: Some((Round(11), Digest([3; 32]))),
    };
    {
        let mut store = ChainStore::new(open(dir.path()), CHAIN);
        SafetyStorage::store(&mut store, &data).unwrap();
    }
    // The database is closed (the last handle dropped) and opened again.
    let store = ChainStore::new(open(dir.path()), CHAIN);
    assert_eq!(SafetyStorage::load(&store).unwrap(), Some(data));
    // Another chain in the same database sees nothing of it.
    let other = ChainStore::new(store.store().clone(), ChainId(8));
    assert_eq!(SafetyStorage::load(&other).unwrap(), None);
}
