//! Genesis files: round trip and every validation error, named.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use banyan_core::ids::{Amount, Epoch, Height};
use banyan_core::keys::BlsSecretKey;
use banyan_core::merkle::empty_root;
use banyan_mainchain::{Genesis, GenesisError};
use common::*;

fn err_of(file: &banyan_mainchain::GenesisFile) -> String {
    match Genesis::from_json(&Genesis::to_json(file)) {
        Ok(_) => panic!("accepted an invalid genesis"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn round_trip_and_derived_values() {
    let f = fixture(4, 2, 10);
    let json = Genesis::to_json(&f.file);
    let g = Genesis::from_json(&json).unwrap();
    assert_eq!(g.file(), &f.file);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("genesis.json");
    std::fs::write(&path, &json).unwrap();
    let g2 = Genesis::from_file(&path).unwrap();
    assert_eq!(g2.block(), g.block());
    assert_eq!(g.params().epoch_length, 10);
    assert_eq!(g.params().min_fee, Amount(MIN_FEE));
    let b = g.block();
    assert_eq!(b.header.height, Height(0));
    assert_eq!(b.header.state_root, g.initial_state().root());
    assert_eq!(b.header.outbox_root, empty_root());
    assert_eq!(g.seed(), banyan_vrf::EpochSeed::genesis(&b.header.id()));
    let c = g.committee();
    assert_eq!(c.epoch(), Epoch(0));
    assert_eq!(c.len(), 4);
    // Bitmap order is by validator id.
    let ids: Vec<_> = c
        .members()
        .iter()
        .map(|m| m.key.key().validator_id())
        .collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(ids, sorted);
    assert_eq!(c.total_stake(), 1000 + 1001 + 1002 + 1003);
}

#[test]
fn missing_file_is_an_io_error() {
    let e = Genesis::from_file("/nonexistent/genesis.json").unwrap_err();
    assert!(matches!(e, GenesisError::Io { .. }), "{e}");
}

#[test]
fn bad_pop_is_named() {
    let mut f = fixture(3, 1, 10);
    let other = BlsSecretKey::generate(&mut rng(99));
    f.file.validators[1].pop = hex::encode(other.prove_possession().0.as_bytes());
    let e = err_of(&f.file);
    assert!(
        e.contains("validators[1]") && e.contains("\"v1\"") && e.contains("pop"),
        "{e}"
    );
}

#[test]
fn bad_binding_is_named() {
    let mut f = fixture(3, 1, 10);
    f.file.validators[2].network_binding = f.file.validators[0].network_binding.clone();
    let e = err_of(&f.file);
    assert!(
        e.contains("validators[2]") && e.contains("network_binding"),
        "{e}"
    );
}

#[test]
fn the_network_key_is_not_the_account_key() {
    // The account key as TLS identity (with a valid binding of it): refused.
    let mut f = fixture(3, 1, 10);
    let (bls, acct) = &f.validators[1];
    f.file.validators[1].network_key = hex::encode(acct.public_key().as_bytes());
    f.file.validators[1].network_binding = hex::encode(
        banyan_mainchain::identity::bind_network_key(bls, &acct.public_key()).as_bytes(),
    );
    let e = err_of(&f.file);
    assert!(
        e.contains("validators[1]") && e.contains("network_key is the account key"),
        "{e}"
    );
    // Two nodes with one network key: refused.
    let mut f = fixture(3, 1, 10);
    let (bls, _) = &f.validators[2];
    let shared = f.file.validators[0].network_key.clone();
    let key = banyan_core::keys::AccountPublicKey::from_bytes(
        &hex::decode(&shared).unwrap().try_into().unwrap(),
    )
    .unwrap();
    f.file.validators[2].network_key = shared;
    f.file.validators[2].network_binding =
        hex::encode(banyan_mainchain::identity::bind_network_key(bls, &key).as_bytes());
    let e = err_of(&f.file);
    assert!(
        e.contains("validators[2]") && e.contains("duplicate network_key"),
        "{e}"
    );
}

#[test]
fn duplicates_are_named() {
    let mut f = fixture(3, 2, 10);
    f.file.validators[2].bls_key = f.file.validators[0].bls_key.clone();
    f.file.validators[2].pop = f.file.validators[0].pop.clone();
    let e = err_of(&f.file);
    assert!(
        e.contains("validators[2]") && e.contains("duplicate bls_key"),
        "{e}"
    );

    let mut f = fixture(3, 2, 10);
    f.file.accounts[1].address = f.file.accounts[0].address.clone();
    let e = err_of(&f.file);
    assert!(
        e.contains("accounts[1]") && e.contains("duplicate address"),
        "{e}"
    );
}

#[test]
fn zero_stake_is_named() {
    let mut f = fixture(3, 1, 10);
    f.file.validators[0].stake = "0".into();
    let e = err_of(&f.file);
    assert!(
        e.contains("validators[0]") && e.contains("stake is zero"),
        "{e}"
    );
}

#[test]
fn bad_amounts_are_named() {
    let mut f = fixture(2, 2, 10);
    f.file.accounts[1].balance = "12.5".into();
    let e = err_of(&f.file);
    assert!(
        e.contains("accounts[1]") && e.contains("not a decimal amount"),
        "{e}"
    );

    let mut f = fixture(2, 2, 10);
    f.file.accounts[0].balance = "340282366920938463463374607431768211456".into(); // 2^128
    let e = err_of(&f.file);
    assert!(e.contains("accounts[0]") && e.contains("128 bits"), "{e}");

    let mut f = fixture(2, 2, 10);
    f.file.accounts[0].balance = u128::MAX.to_string();
    let e = err_of(&f.file);
    assert!(e.contains("overflows"), "{e}");

    let mut f = fixture(2, 2, 10);
    f.file.min_fee = "-1".into();
    let e = err_of(&f.file);
    assert!(e.contains("min_fee"), "{e}");
}

#[test]
fn parameters_are_checked() {
    let mut f = fixture(2, 1, 10);
    f.file.epoch_length = 0;
    assert!(err_of(&f.file).contains("epoch_length"));
    let mut f = fixture(2, 1, 10);
    f.file.max_block_txs = banyan_core::header::MAX_TXS_PER_BLOCK + 1;
    assert!(err_of(&f.file).contains("max_block_txs"));
    let mut f = fixture(2, 1, 10);
    f.file.validators.clear();
    assert!(err_of(&f.file).contains("at least one validator"));
    let e = Genesis::from_json("{\"chain_id\": 0").unwrap_err();
    assert!(matches!(e, GenesisError::Json(_)), "{e}");
}
