//! The chain store: consensus round trips across reopen, and chains kept apart.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use banyan_chain::ChainStore;
use banyan_consensus::{BlockStore, EpochChangeProof, SafetyData, SafetyStorage};
use banyan_core::certificate::{QuorumCertificate, SignerBitmap, VoteData};
use banyan_core::codec::BoundedVec;
use banyan_core::ids::{ChainId, Epoch, Height, Round};
use banyan_core::keys::BlsSecretKey;
use common::*;

fn qc(
    chain: ChainId,
    epoch: u64,
    round: u64,
    block: banyan_core::hash::Digest,
) -> QuorumCertificate {
    let data = VoteData {
        chain,
        epoch: Epoch(epoch),
        round: Round(round),
        height: Height(round),
        block,
    };
    let key = BlsSecretKey::generate(&mut rng(5));
    let signers = SignerBitmap::from_parts(4, vec![0b0000_0001]).unwrap();
    QuorumCertificate {
        signature: key.sign(data.signing_message().as_bytes()),
        data,
        signers,
    }
}

#[test]
fn consensus_data_survives_reopen_and_chains_are_apart() {
    let f = fixture(4, 1, 10);
    let dir = tempfile::tempdir().unwrap();
    let block = f.genesis.block();
    let id = block.header.id();
    let safety = SafetyData {
        epoch: Epoch(2),
        last_voted_round: Round(9),
        last_proposed_round: Round(8),
        one_chain_round: Round(7),
        last_vote: None,
        last_timeout: None,
        last_proposal: Some((Round(8), id)),
    };
    let q = qc(ChainId::MAIN, 2, 9, id);
    {
        let store = open_store(dir.path());
        let mut main = ChainStore::new(store.clone(), ChainId::MAIN);
        let side = ChainStore::new(store, ChainId(5));
        BlockStore::insert(&mut main, block.clone()).unwrap();
        main.set_committed(id).unwrap();
        main.set_high_qc(&q).unwrap();
        SafetyStorage::store(&mut main, &safety).unwrap();
        // The sidechain sees none of it.
        assert!(!side.contains(&id).expect("readable"));
        assert!(BlockStore::get(&side, &id).expect("readable").is_none());
        assert_eq!(BlockStore::committed(&side), None);
        assert!(side.high_qc().is_none());
        assert_eq!(SafetyStorage::load(&side).unwrap(), None);
    }
    let store = open_store(dir.path());
    let main = ChainStore::new(store.clone(), ChainId::MAIN);
    assert!(main.contains(&id).expect("readable"));
    assert_eq!(BlockStore::get(&main, &id).expect("readable"), Some(block));
    assert_eq!(BlockStore::committed(&main), Some(id));
    assert_eq!(main.high_qc(), Some(q));
    assert_eq!(SafetyStorage::load(&main).unwrap(), Some(safety));
    let side = ChainStore::new(store, ChainId(5));
    assert!(!side.contains(&id).expect("readable"));
}

#[test]
fn chain_state_is_per_chain() {
    let f = fixture(4, 1, 10);
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = open_app(dir.path(), &f.genesis, 1);
    let funded = f.funded[0].public_key().address();
    assert_eq!(balance(&app, &funded).0, FUNDS);
    let store = app.store().store().clone();
    let side = ChainStore::new(store, ChainId(1));
    assert!(side.load_state().unwrap().is_empty());
    assert_eq!(side.committed().unwrap(), None);
    assert_eq!(side.epoch().unwrap(), None);
    assert_eq!(side.block_by_height(Height(0)).unwrap(), None);
    assert_eq!(
        side.balance(&funded, &banyan_core::ids::AssetId::NATIVE)
            .unwrap()
            .0,
        0
    );
    assert_eq!(app.store().load_state().unwrap(), *app.state());
    assert_eq!(app.store().load_keys().unwrap().len(), 4);
}

#[test]
fn epoch_proofs_are_archived() {
    let f = fixture(4, 1, 10);
    let dir = tempfile::tempdir().unwrap();
    let (app, _) = open_app(dir.path(), &f.genesis, 1);
    let genesis = f.genesis.block();
    let proof = EpochChangeProof {
        headers: BoundedVec::new(vec![genesis.header.clone(), genesis.header.clone()]).unwrap(),
        commit_qc: qc(ChainId::MAIN, 0, 3, genesis.header.id()),
    };
    let store = app.store();
    assert_eq!(store.epoch_proof(Epoch(0)).unwrap(), None);
    let e = store.put_epoch_proof(Epoch(1), &proof).unwrap_err();
    assert!(e.to_string().contains("epoch 0"), "{e}");
    store.put_epoch_proof(Epoch(0), &proof).unwrap();
    assert_eq!(store.epoch_proof(Epoch(0)).unwrap(), Some(proof));
    let other = ChainStore::new(store.store().clone(), ChainId(3));
    assert_eq!(other.epoch_proof(Epoch(0)).unwrap(), None);
}
