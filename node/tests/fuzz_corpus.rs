//! The fuzz targets' seed corpora (`fuzz/corpus/<target>/seed-*`) are real inputs of today's
//! formats: frames, messages, blocks and certificates taken from a running committee, a
//! request for every JSON-RPC method, transactions of every kind the seeds cover, proofs of
//! the fixed trees the targets check against, and byte streams that steer the ledger's block
//! generator. This test rebuilds them and compares them with the checked-in files, so a
//! change to an encoding cannot leave the fuzzers starting from inputs that no longer decode.
//! After such a change, rewrite them with
//! `BANYAN_WRITE_FUZZ_CORPUS=1 cargo test --release --workspace --test fuzz_corpus`.

#[allow(dead_code, missing_docs, clippy::unwrap_used)]
#[path = "../../fuzz/src/lib.rs"]
mod fuzz;

use banyan_consensus::sim::member_key;
use banyan_consensus::Message;
use banyan_core::codec::{self, BoundedVec};
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::header::Block;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce};
use banyan_core::keys::AccountSecretKey;
use banyan_core::tx::{SignedTx, TxBody, TxKind};
use banyan_wire as wire;
use std::collections::BTreeMap;
use std::path::PathBuf;

fn account(i: u8) -> AccountSecretKey {
    AccountSecretKey::from_bytes(&[i.wrapping_add(1); 32])
}

fn tx(i: u8, kind: TxKind) -> SignedTx {
    let key = account(i);
    TxBody {
        chain: ChainId::MAIN,
        network: hash(Domain::Custom("banyan/fuzz/network"), b"seed"),
        sender: key.public_key(),
        nonce: Nonce(u64::from(i)),
        fee: Amount(10),
        kind,
    }
    .sign(&key)
}

/// Every seed, by target and name.
fn seeds() -> BTreeMap<(&'static str, String), Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut put = |target: &'static str, name: String, bytes: Vec<u8>| {
        out.insert((target, name), bytes);
    };

    // A committee run in order until a few heights commit, with one round lost to a timeout.
    let mut cluster = fuzz::cluster(false);
    cluster.record_messages();
    let mut steps = 0;
    while cluster.committed_height() < 4 && steps < 10_000 {
        steps += 1;
        if cluster.in_flight().is_empty() || steps == 40 {
            cluster.advance(2_000);
        } else {
            let _ = cluster.deliver(0);
        }
    }
    assert!(
        cluster.committed_height() >= 4,
        "the seed committee commits"
    );
    cluster.check().expect("an in-order run is safe");

    let mut kinds: BTreeMap<&str, Vec<Message>> = BTreeMap::new();
    for m in cluster.sent() {
        let kind = match m {
            Message::Proposal(_) => "proposal",
            Message::Vote(_) => "vote",
            Message::Timeout(_) => "timeout",
            Message::SyncRequest(_) => "sync-request",
            Message::SyncResponse(_) => "sync-response",
            Message::EpochProofRequest(_) => "epoch-proof-request",
            Message::EpochProof(_) => "epoch-proof",
        };
        let list = kinds.entry(kind).or_default();
        if list.len() < 3 && !list.contains(m) {
            list.push(m.clone());
        }
    }
    for kind in ["proposal", "vote", "timeout"] {
        assert!(kinds.contains_key(kind), "the run sent a {kind}");
    }
    let proofs = cluster.commit_proofs().to_vec();
    assert!(!proofs.is_empty(), "the run proved its commits");
    let mut blocks = Vec::new();
    for (kind, list) in &kinds {
        for (i, m) in list.iter().enumerate() {
            put("consensus_message", format!("{kind}-{i}"), m.encode());
            let frame = wire::consensus_frame(ChainId::MAIN, m);
            put(
                "wire_frame",
                format!("consensus-{kind}-{i}"),
                frame.to_vec(),
            );
            if let Message::Proposal(p) = m {
                blocks.push(p.block.clone());
                if let Some(qc) = &p.justify {
                    let mut b = vec![1u8];
                    b.extend(codec::encode(qc));
                    put("certificate", format!("qc-{i}"), b);
                }
            }
        }
    }
    put(
        "consensus_message",
        "epoch-proof".into(),
        Message::EpochProof(Box::new(proofs[0].clone())).encode(),
    );
    for (i, p) in proofs.iter().take(2).enumerate() {
        let mut b = vec![0u8];
        b.extend(codec::encode(p));
        put("certificate", format!("certified-header-{i}"), b);
    }

    // Transactions of the kinds a fuzzer cannot easily build from nothing.
    let smt = fuzz::smt();
    let (path, _) = fuzz::smt_entry(5);
    let key0 = member_key(0);
    let txs = vec![
        tx(
            0,
            TxKind::Transfer {
                to: Address([7; 32]),
                asset: AssetId::NATIVE,
                amount: Amount(1_000),
            },
        ),
        tx(
            1,
            TxKind::Stake {
                validator_key: key0.public_key(),
                pop: Box::new(key0.prove_possession()),
                amount: Amount(5_000),
            },
        ),
        tx(2, TxKind::Unstake { amount: Amount(1) }),
        tx(
            3,
            TxKind::CrossChainSend {
                destination: ChainId(0x8000_0001),
                recipient: Address([9; 32]),
                asset: AssetId::NATIVE,
                amount: Amount(3),
                timeout_height: Height(100),
            },
        ),
        tx(
            4,
            TxKind::SubmitCheckpoint {
                chain: ChainId(0x8000_0001),
                main_epoch: Epoch(1),
                proof: Box::new(proofs[0].clone()),
            },
        ),
        tx(
            5,
            TxKind::SettleBalance {
                chain: ChainId(0x8000_0001),
                owner: Address([3; 32]),
                amount: Amount(42),
                header: Box::new(blocks[0].header.clone()),
                proof: Box::new(smt.prove(&path)),
            },
        ),
        tx(
            6,
            TxKind::RetireSidechain {
                chain: ChainId(0x8000_0001),
            },
        ),
    ];
    for (i, t) in txs.iter().enumerate() {
        put("transaction", format!("tx-{i}"), codec::encode(t));
    }
    let hexes: Vec<String> = txs.iter().map(wire::rpc::encode_tx_hex).collect();
    let address = hex::encode([7u8; 32]);
    let requests = [
        ("submit-tx", format!(r#"{{"jsonrpc":"2.0","id":1,"method":"banyan_submitTx","params":["{}"]}}"#, hexes[0])),
        ("submit-txs", format!(r#"{{"jsonrpc":"2.0","id":"a","method":"banyan_submitTxs","params":{{"txs":["{}","0x{}"]}}}}"#, hexes[1], hexes[4])),
        ("get-account", format!(r#"{{"jsonrpc":"2.0","id":2,"method":"banyan_getAccount","params":{{"address":"{address}","chain":0,"asset":"0x{}"}}}}"#, hex::encode([0u8; 32]))),
        ("batch", r#"[{"jsonrpc":"2.0","id":3,"method":"banyan_getBlock","params":[5,0]},{"jsonrpc":"2.0","method":"banyan_status"},{"jsonrpc":"2.0","id":4,"method":"banyan_getCertifiedHeader","params":{"chain":2147483649}},{"jsonrpc":"2.0","id":5,"method":"banyan_getSidechain","params":[2147483649]},{"jsonrpc":"2.0","id":6,"method":"banyan_getValidators"},{"jsonrpc":"2.0","id":7,"method":"rpc.discover","params":[]},{"jsonrpc":"2.0","id":null,"method":"banyan_stopChain","params":{"chain":1}}]"#.to_string()),
        ("bad-envelope", r#"[1,{"jsonrpc":"1.0","id":1,"method":"x"},{"jsonrpc":"2.0","id":[],"method":"banyan_status"},{"jsonrpc":"2.0","id":1,"method":"banyan_getBlock","params":"5"}]"#.to_string()),
    ];
    for (name, body) in requests {
        put("rpc_request", name.into(), body.into_bytes());
    }
    let txs_frame = wire::txs_frame(ChainId::MAIN, &txs).expect("seven transactions");
    put("wire_frame", "txs".into(), txs_frame.to_vec());
    let mut with_txs = blocks[0].clone();
    with_txs.header.tx_root = Block::compute_tx_root(&txs);
    with_txs.txs = BoundedVec::new(txs.clone()).expect("seven transactions");
    blocks.push(with_txs);
    for (i, b) in blocks.iter().enumerate() {
        put("block", format!("block-{i}"), codec::encode(b));
    }
    put(
        "wire_frame",
        "blocks-request".into(),
        wire::blocks_request_frame(ChainId(3), 1, 64).to_vec(),
    );
    let frame = wire::blocks_frame(ChainId::MAIN, blocks.clone()).expect("a few blocks");
    put("wire_frame", "blocks".into(), frame.to_vec());

    // Proofs of the fixed trees: input = selector, 32-byte query, proof.
    let proof_seed = |name: &str, selector: u8, query: Digest, proof: Vec<u8>| {
        let mut b = vec![selector];
        b.extend_from_slice(query.as_bytes());
        b.extend(proof);
        (name.to_string(), b)
    };
    let mut q5 = Digest([0; 32]);
    q5.0[0] = 5;
    let absent = hash(Domain::Custom("banyan/fuzz/absent"), b"seed");
    let mut q3 = Digest([0; 32]);
    q3.0[0] = 3;
    let merkle_proof = fuzz::merkle().proof(3).expect("leaf 3 of 13");
    for (name, bytes) in [
        proof_seed("smt-present", 0, q5, codec::encode(&smt.prove(&path))),
        proof_seed("smt-wrong-value", 2, q5, codec::encode(&smt.prove(&path))),
        proof_seed("smt-absent", 4, absent, codec::encode(&smt.prove(&absent))),
        proof_seed("merkle", 1, q3, codec::encode(&merkle_proof)),
    ] {
        put("state_proof", name, bytes);
    }

    // Blocks for the ledger: chain (even: main), accounts, transactions, then every choice.
    for (i, (chain, accounts, n)) in [(0u8, 7u8, 47u8), (1, 3, 20), (0, 1, 8), (0, 5, 33)]
        .into_iter()
        .enumerate()
    {
        let mut b = vec![chain, accounts, n];
        for j in 0..128u32 {
            let chunk = hash(
                Domain::Custom("banyan/fuzz/ledger-seed"),
                &[i as u8, (j & 0xff) as u8, (j >> 8) as u8],
            );
            b.extend_from_slice(chunk.as_bytes());
        }
        put("ledger_block", format!("block-{i}"), b);
    }

    // Schedules: in order; in order with time passing; with a restart and a corrupted message.
    put("replica", "in-order".into(), vec![0; 2_048]);
    put(
        "replica",
        "with-time".into(),
        [0, 0, 0, 0, 10, 50].repeat(300),
    );
    let mut mixed = [0u8, 0, 0, 0, 10, 60].repeat(100);
    mixed.extend([12, 1, 13, 2, 0, 40, 1, 0, 0, 15, 3, 2, 9, 0, 14, 0, 7, 0, 0]);
    mixed.extend([0u8, 0, 0, 0, 10, 60].repeat(100));
    put("replica", "restart-and-corrupt".into(), mixed);
    out
}

#[test]
fn seed_corpora_are_todays_encodings() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus");
    let write = std::env::var_os("BANYAN_WRITE_FUZZ_CORPUS").is_some();
    let seeds = seeds();
    let mut stale = Vec::new();
    for ((target, name), bytes) in &seeds {
        let dir = root.join(target);
        let path = dir.join(format!("seed-{name}"));
        if write {
            std::fs::create_dir_all(&dir).expect("create the corpus folder");
            std::fs::write(&path, bytes).expect("write a seed");
        } else if std::fs::read(&path).ok().as_ref() != Some(bytes) {
            stale.push(path.display().to_string());
        }
    }
    // Seeds no longer generated are stale too (inputs found by fuzzing are not named seed-*).
    for target in [
        "wire_frame",
        "rpc_request",
        "consensus_message",
        "transaction",
        "block",
        "certificate",
        "state_proof",
        "ledger_block",
        "replica",
    ] {
        let Ok(entries) = std::fs::read_dir(root.join(target)) else {
            stale.push(format!("{target}/ (missing)"));
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if let Some(seed) = name.strip_prefix("seed-") {
                if !seeds.contains_key(&(target, seed.to_string())) {
                    if write {
                        std::fs::remove_file(e.path()).expect("remove a stale seed");
                    } else {
                        stale.push(e.path().display().to_string());
                    }
                }
            }
        }
    }
    assert!(
        stale.is_empty(),
        "fuzz seeds differ from today's encodings: {stale:?}; rewrite them with \
         BANYAN_WRITE_FUZZ_CORPUS=1 cargo test --release --workspace --test fuzz_corpus"
    );
}
