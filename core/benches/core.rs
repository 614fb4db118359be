//! Hot paths of core: hashing, Merkle proofs, signatures, certificates and the codec.
//!
//! Run: `cargo bench -p banyan-core`. Each group puts the alternative or baseline beside the
//! measured path (SHA-256 beside BLAKE3, single ed25519 checks beside a batch).
#![allow(missing_docs)]

#[path = "../tests/support/mod.rs"]
mod support;

use banyan_core::certificate::{QuorumCertificate, VoteData};
use banyan_core::codec::{self, BoundedVec};
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::header::{Block, BlockHeader};
use banyan_core::ids::*;
use banyan_core::keys::*;
use banyan_core::merkle::MerkleTree;
use banyan_core::tx::{SignedTx, TxBody, TxKind};
use criterion::{black_box, criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use sha2::Digest as _;

fn hashing(c: &mut Criterion) {
    let mut g = c.benchmark_group("hash");
    for size in [64usize, 1024, 1 << 20] {
        let data = vec![7u8; size];
        g.throughput(Throughput::Bytes(size as u64));
        g.bench_with_input(BenchmarkId::new("banyan", size), &data, |b, d| {
            b.iter(|| hash(Domain::Transaction, black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("blake3", size), &data, |b, d| {
            b.iter(|| blake3::hash(black_box(d)))
        });
        g.bench_with_input(BenchmarkId::new("sha256", size), &data, |b, d| {
            b.iter(|| sha2::Sha256::digest(black_box(d)))
        });
    }
    g.finish();
}

fn merkle(c: &mut Criterion) {
    let mut g = c.benchmark_group("merkle");
    for n in [1_000usize, 100_000] {
        let leaves: Vec<Vec<u8>> = (0..n).map(|i| (i as u64).to_le_bytes().to_vec()).collect();
        let tree = MerkleTree::from_leaves(&leaves);
        let root = tree.root();
        let i = n / 3;
        let proof = tree.proof(i).expect("in range");
        g.bench_function(BenchmarkId::new("verify", n), |b| {
            b.iter(|| proof.verify(black_box(&root), black_box(&leaves[i])))
        });
    }
    let leaves: Vec<Digest> = (0..1000u64)
        .map(|i| hash(Domain::Transaction, &i.to_le_bytes()))
        .collect();
    g.bench_function("root/1000", |b| {
        b.iter(|| MerkleTree::from_leaf_hashes(black_box(leaves.clone())).root())
    });
    g.finish();
}

fn ed25519(c: &mut Criterion) {
    let mut g = c.benchmark_group("ed25519");
    let keys: Vec<AccountSecretKey> = (0..64u8)
        .map(|i| AccountSecretKey::from_bytes(&[i + 1; 32]))
        .collect();
    let msgs: Vec<[u8; 32]> = (0..64u8).map(|i| [i; 32]).collect();
    let sigs: Vec<AccountSignature> = keys.iter().zip(&msgs).map(|(k, m)| k.sign(m)).collect();
    let pks: Vec<AccountPublicKey> = keys.iter().map(|k| k.public_key()).collect();
    g.bench_function("verify/1", |b| {
        b.iter(|| pks[0].verify(black_box(&msgs[0]), &sigs[0]))
    });
    g.throughput(Throughput::Elements(64));
    g.bench_function("verify_each/64", |b| {
        b.iter(|| {
            for i in 0..64 {
                pks[i].verify(&msgs[i], &sigs[i]).expect("valid");
            }
        })
    });
    let refs: Vec<&[u8]> = msgs.iter().map(|m| &m[..]).collect();
    g.bench_function("verify_batch/64", |b| {
        b.iter(|| verify_account_batch(black_box(&refs), &sigs, &pks).expect("valid"))
    });
    g.finish();
}

fn bls(c: &mut Criterion) {
    let mut g = c.benchmark_group("bls");
    let sk = BlsSecretKey::from_seed(&[1; 32]).expect("seed");
    let pk = sk.public_key();
    let sig = sk.sign(b"message");
    g.bench_function("sign", |b| b.iter(|| sk.sign(black_box(b"message"))));
    g.bench_function("verify", |b| {
        b.iter(|| sig.verify(black_box(b"message"), &pk))
    });
    let sig_bytes = *sig.as_bytes();
    g.bench_function("decode_signature", |b| {
        b.iter(|| BlsSignature::from_bytes(black_box(&sig_bytes)))
    });
    for n in [4usize, 16, 100] {
        let (sks, committee) = support::committee(n);
        let data = VoteData {
            chain: ChainId::MAIN,
            epoch: committee.epoch(),
            round: Round(1),
            height: Height(1),
            block: Digest([1; 32]),
        };
        let msg = data.signing_message();
        let votes: Vec<(usize, BlsSignature)> = sks
            .iter()
            .enumerate()
            .map(|(i, k)| (i, k.sign(msg.as_bytes())))
            .collect();
        let qc = QuorumCertificate::aggregate(&committee, data, &votes).expect("quorum");
        g.bench_function(BenchmarkId::new("fast_aggregate_verify", n), |b| {
            b.iter(|| qc.verify(black_box(&committee)).expect("valid"))
        });
        g.bench_function(BenchmarkId::new("aggregate", n), |b| {
            b.iter(|| {
                QuorumCertificate::aggregate(&committee, data, black_box(&votes)).expect("quorum")
            })
        });
    }
    g.finish();
}

fn block_of(n: usize) -> Block {
    let keys: Vec<AccountSecretKey> = (0..16u8)
        .map(|i| AccountSecretKey::from_bytes(&[i + 1; 32]))
        .collect();
    let txs: Vec<SignedTx> = (0..n)
        .map(|i| {
            TxBody {
                chain: ChainId::MAIN,
                network: banyan_core::hash::Digest::ZERO,
                sender: keys[i % 16].public_key(),
                nonce: Nonce(i as u64),
                fee: Amount(1),
                kind: TxKind::Transfer {
                    to: keys[(i + 1) % 16].public_key().address(),
                    asset: AssetId::NATIVE,
                    amount: Amount(i as u128),
                },
            }
            .sign(&keys[i % 16])
        })
        .collect();
    Block {
        header: BlockHeader {
            chain: ChainId::MAIN,
            epoch: Epoch(0),
            height: Height(1),
            round: Round(1),
            parent: Digest::ZERO,
            state_root: Digest::ZERO,
            tx_root: Block::compute_tx_root(&txs),
            outbox_root: Digest::ZERO,
            proposer: Digest::ZERO,
            timestamp_ms: 0,
            vrf_proof: None,
        },
        txs: BoundedVec::new(txs).expect("under the limit"),
    }
}

fn codec_bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("codec");
    let block = block_of(1000);
    let bytes = codec::encode(&block);
    g.throughput(Throughput::Elements(1000));
    g.bench_function("encode_block/1000tx", |b| {
        b.iter(|| codec::encode(black_box(&block)))
    });
    g.bench_function("decode_block/1000tx", |b| {
        b.iter(|| codec::decode::<Block>(black_box(&bytes), bytes.len()).expect("valid"))
    });
    g.bench_function("tx_ids_and_root/1000tx", |b| {
        b.iter(|| Block::compute_tx_root(black_box(&block.txs)))
    });
    g.finish();
}

criterion_group!(benches, hashing, merkle, ed25519, bls, codec_bench);
criterion_main!(benches);
