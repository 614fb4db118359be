//! Strategies and fixtures shared by core's tests.
#![allow(dead_code, missing_docs)]

use banyan_core::certificate::{
    Committee, CommitteeMember, QuorumCertificate, SignerBitmap, VoteData,
};
use banyan_core::codec::BoundedVec;
use banyan_core::hash::Digest;
use banyan_core::header::{Block, BlockHeader, CertifiedHeader};
use banyan_core::ids::*;
use banyan_core::keys::*;
use banyan_core::merkle::MerkleProof;
use banyan_core::tx::*;
use proptest::prelude::*;
use std::sync::OnceLock;

pub const POOL: usize = 8;

pub fn bls_keys() -> &'static Vec<BlsSecretKey> {
    static KEYS: OnceLock<Vec<BlsSecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..POOL)
            .map(|i| BlsSecretKey::from_seed(&[i as u8 + 1; 32]).expect("32-byte seed"))
            .collect()
    })
}

pub fn account_keys() -> &'static Vec<AccountSecretKey> {
    static KEYS: OnceLock<Vec<AccountSecretKey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        (0..POOL)
            .map(|i| AccountSecretKey::from_bytes(&[i as u8 + 1; 32]))
            .collect()
    })
}

pub fn bls_sigs() -> &'static Vec<BlsSignature> {
    static SIGS: OnceLock<Vec<BlsSignature>> = OnceLock::new();
    SIGS.get_or_init(|| bls_keys().iter().map(|k| k.sign(b"fixture")).collect())
}

pub fn committee(n: usize) -> (Vec<BlsSecretKey>, Committee) {
    let sks: Vec<BlsSecretKey> = (0..n)
        .map(|i| {
            let mut seed = [7u8; 32];
            seed[..8].copy_from_slice(&(i as u64).to_le_bytes());
            BlsSecretKey::from_seed(&seed).expect("32-byte seed")
        })
        .collect();
    let members = sks
        .iter()
        .map(|sk| CommitteeMember {
            key: sk
                .prove_possession()
                .verify(&sk.public_key())
                .expect("own pop"),
            stake: 10,
        })
        .collect();
    (
        sks,
        Committee::new(Epoch(1), members).expect("valid committee"),
    )
}

pub fn digest() -> impl Strategy<Value = Digest> {
    any::<[u8; 32]>().prop_map(Digest)
}
pub fn address() -> impl Strategy<Value = Address> {
    any::<[u8; 32]>().prop_map(Address)
}
pub fn asset() -> impl Strategy<Value = AssetId> {
    prop_oneof![Just(AssetId::NATIVE), any::<[u8; 32]>().prop_map(AssetId)]
}
pub fn amount() -> impl Strategy<Value = Amount> {
    any::<u128>().prop_map(Amount)
}
pub fn chain() -> impl Strategy<Value = ChainId> {
    any::<u32>().prop_map(ChainId)
}
pub fn bls_pk() -> impl Strategy<Value = BlsPublicKey> {
    (0..POOL).prop_map(|i| bls_keys()[i].public_key())
}
pub fn bls_sig() -> impl Strategy<Value = BlsSignature> {
    (0..POOL).prop_map(|i| bls_sigs()[i])
}
pub fn account_pk() -> impl Strategy<Value = AccountPublicKey> {
    (0..POOL).prop_map(|i| account_keys()[i].public_key())
}
pub fn account_sig() -> impl Strategy<Value = AccountSignature> {
    any::<[[u8; 32]; 2]>().prop_map(|[a, b]| {
        let mut s = [0u8; 64];
        s[..32].copy_from_slice(&a);
        s[32..].copy_from_slice(&b);
        AccountSignature::from_bytes(&s)
    })
}
pub fn bitmap() -> impl Strategy<Value = SignerBitmap> {
    (0usize..200).prop_flat_map(|len| {
        proptest::collection::vec(any::<u8>(), len.div_ceil(8)).prop_map(move |mut bits| {
            if len % 8 != 0 {
                if let Some(last) = bits.last_mut() {
                    *last &= (1u8 << (len % 8)) - 1;
                }
            }
            SignerBitmap::from_parts(len as u16, bits).expect("canonical by construction")
        })
    })
}
pub fn vote_data() -> impl Strategy<Value = VoteData> {
    (chain(), any::<u64>(), any::<u64>(), any::<u64>(), digest()).prop_map(
        |(chain, e, r, h, block)| VoteData {
            chain,
            epoch: Epoch(e),
            round: Round(r),
            height: Height(h),
            block,
        },
    )
}
pub fn qc() -> impl Strategy<Value = QuorumCertificate> {
    (vote_data(), bitmap(), bls_sig()).prop_map(|(data, signers, signature)| QuorumCertificate {
        data,
        signers,
        signature,
    })
}
pub fn header() -> impl Strategy<Value = BlockHeader> {
    (
        (chain(), any::<u64>(), any::<u64>(), any::<u64>()),
        (digest(), digest(), digest(), digest(), digest()),
        any::<u64>(),
        proptest::option::of(bls_sig()),
    )
        .prop_map(
            |((chain, e, h, r), (parent, state_root, tx_root, outbox_root, proposer), ts, vrf)| {
                BlockHeader {
                    chain,
                    epoch: Epoch(e),
                    height: Height(h),
                    round: Round(r),
                    parent,
                    state_root,
                    tx_root,
                    outbox_root,
                    proposer,
                    timestamp_ms: ts,
                    vrf_proof: vrf,
                }
            },
        )
}
pub fn certified_header() -> impl Strategy<Value = CertifiedHeader> {
    (proptest::collection::vec(header(), 0..4), qc()).prop_map(|(headers, commit_qc)| {
        CertifiedHeader {
            headers: BoundedVec::new(headers).expect("at most 3"),
            commit_qc,
        }
    })
}
pub fn merkle_proof() -> impl Strategy<Value = MerkleProof> {
    (
        any::<u64>(),
        any::<u64>(),
        proptest::collection::vec(digest(), 0..20),
    )
        .prop_map(|(index, leaf_count, s)| MerkleProof {
            index,
            leaf_count,
            siblings: BoundedVec::new(s).expect("below 64"),
        })
}
pub fn packet() -> impl Strategy<Value = Packet> {
    (
        (chain(), chain(), any::<u64>()),
        (address(), address()),
        (chain(), asset()),
        amount(),
        any::<u64>(),
    )
        .prop_map(
            |((source, destination, seq), (sender, recipient), (oc, oa), amount, t)| Packet {
                source,
                destination,
                sequence: Sequence(seq),
                sender,
                recipient,
                asset: AssetOrigin {
                    chain: oc,
                    asset: oa,
                },
                amount,
                timeout_height: Height(t),
            },
        )
}
pub fn packet_proof() -> impl Strategy<Value = PacketProof> {
    (certified_header(), merkle_proof())
        .prop_map(|(header, inclusion)| PacketProof { header, inclusion })
}
pub fn tx_kind() -> impl Strategy<Value = TxKind> {
    prop_oneof![
        (address(), asset(), amount()).prop_map(|(to, asset, amount)| TxKind::Transfer {
            to,
            asset,
            amount
        }),
        (0..POOL, amount()).prop_map(|(i, amount)| TxKind::Stake {
            validator_key: bls_keys()[i].public_key(),
            pop: Box::new(bls_keys()[i].prove_possession()),
            amount
        }),
        amount().prop_map(|amount| TxKind::Unstake { amount }),
        (any::<u16>(), any::<u32>(), any::<u64>(), amount()).prop_map(|(c, b, e, d)| {
            TxKind::SpawnSidechain {
                params: SidechainParams {
                    committee_size: c,
                    block_time_ms: b,
                    epoch_length: e,
                    deposit: d,
                },
            }
        }),
        chain().prop_map(|chain| TxKind::RetireSidechain { chain }),
        (chain(), address(), asset(), amount(), any::<u64>()).prop_map(
            |(destination, recipient, asset, amount, t)| TxKind::CrossChainSend {
                destination,
                recipient,
                asset,
                amount,
                timeout_height: Height(t)
            }
        ),
        (packet(), packet_proof()).prop_map(|(packet, proof)| TxKind::DeliverPacket {
            packet,
            proof: Box::new(proof)
        }),
        (
            packet(),
            prop_oneof![
                Just(Acknowledgement::Success),
                any::<u16>().prop_map(Acknowledgement::Failure)
            ],
            packet_proof()
        )
            .prop_map(|(packet, ack, proof)| TxKind::AcknowledgePacket {
                packet,
                ack,
                proof: Box::new(proof)
            }),
        (packet(), certified_header(), any::<u64>(), merkle_proof()).prop_map(
            |(packet, header, next, inclusion)| TxKind::TimeoutPacket {
                packet,
                proof: Box::new(NonDeliveryProof {
                    header,
                    next_receive: Sequence(next),
                    inclusion
                })
            }
        ),
        (
            address(),
            bls_pk(),
            vote_data(),
            bls_sig(),
            vote_data(),
            bls_sig()
        )
            .prop_map(|(offender, validator_key, a, sa, b, sb)| {
                TxKind::ReportEquivocation {
                    offender,
                    evidence: Box::new(VoteEquivocation {
                        validator_key,
                        first: SignedVote {
                            data: a,
                            signature: sa,
                        },
                        second: SignedVote {
                            data: b,
                            signature: sb,
                        },
                    }),
                }
            }),
        (
            address(),
            bls_pk(),
            vote_data(),
            bls_sig(),
            digest(),
            bls_sig()
        )
            .prop_map(|(offender, validator_key, a, sa, other, sb)| {
                let signed = |block, signature| SignedProposal {
                    chain: a.chain,
                    epoch: a.epoch,
                    round: a.round,
                    block,
                    signature,
                };
                TxKind::ReportProposalEquivocation {
                    offender,
                    evidence: Box::new(ProposalEquivocation {
                        validator_key,
                        first: signed(a.block, sa),
                        second: signed(other, sb),
                    }),
                }
            }),
    ]
}
pub fn tx_body() -> impl Strategy<Value = TxBody> {
    (
        chain(),
        digest(),
        account_pk(),
        any::<u64>(),
        amount(),
        tx_kind(),
    )
        .prop_map(|(chain, network, sender, nonce, fee, kind)| TxBody {
            chain,
            network,
            sender,
            nonce: Nonce(nonce),
            fee,
            kind,
        })
}
pub fn signed_tx() -> impl Strategy<Value = SignedTx> {
    (tx_body(), account_sig()).prop_map(|(body, signature)| SignedTx { body, signature })
}
pub fn block() -> impl Strategy<Value = Block> {
    (header(), proptest::collection::vec(signed_tx(), 0..4)).prop_map(|(header, txs)| Block {
        header,
        txs: BoundedVec::new(txs).expect("few"),
    })
}

/// A simple signed transfer for benches and fixtures.
pub fn transfer(from: &AccountSecretKey, nonce: u64, to: Address, amount: u128) -> SignedTx {
    TxBody::native_transfer(
        ChainId::MAIN,
        Digest::ZERO,
        from.public_key(),
        Nonce(nonce),
        Amount(1),
        to,
        Amount(amount),
    )
    .sign(from)
}
