//! Seeded generators of blocks for the executor's tests: small pools of accounts, assets and
//! chains so that transactions overlap, balances and sequences chosen so that every kind both
//! succeeds and fails, and a deterministic packet proof check.
#![allow(dead_code)]

use banyan_core::certificate::{QuorumCertificate, SignerBitmap, VoteData};
use banyan_core::hash::{hash, Digest, Domain};
use banyan_core::header::{BlockHeader, CertifiedHeader};
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce, Round, Sequence};
use banyan_core::keys::{
    AccountPublicKey, AccountSecretKey, AccountSignature, BlsPublicKey, BlsSecretKey,
    ProofOfPossession,
};
use banyan_core::merkle::MerkleProof;
use banyan_core::state::State;
use banyan_core::tx::{
    Acknowledgement, AssetOrigin, Equivocation, NonDeliveryProof, Packet, PacketProof,
    SidechainParams, SignedVote, StateKey, TxBody, TxKind, VoteEquivocation,
};
use banyan_core::value::StateValue;
use banyan_core::value::{
    LightClientState, PendingPackets, SidechainRecord, SidechainStatus, UnbondingEntry,
    ValidatorRecord,
};
use banyan_ledger::{Ledger, VerifiedTx};
use banyan_ledger::{PacketProofs, StakingRules};
use rand::{Rng as _, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::sync::OnceLock;

/// The height blocks are executed at.
pub const HEIGHT: Height = Height(5);
/// The epoch blocks are executed in.
pub const EPOCH: Epoch = Epoch(3);
/// The staking rules blocks are executed under: evidence of epoch 0 is expired at [`EPOCH`],
/// evidence of epoch 2 is not.
pub const RULES: StakingRules = StakingRules {
    unbonding_epochs: 2,
    slash_fraction_percent: 10,
    min_sidechain_deposit: MIN_DEPOSIT,
};
/// The least sidechain deposit blocks are executed under.
pub const MIN_DEPOSIT: Amount = Amount(1_000);

/// The sidechain a random state records as spawned by `spawner` (the id its spawn with a
/// nonce no random block reaches would have taken).
pub fn spawned_by(spawner: &Address) -> ChainId {
    banyan_core::tx::sidechain_id(spawner, Nonce(1 << 40))
}
/// Most accounts in the pool.
pub const MAX_ACCOUNTS: usize = 8;

/// A seeded stream (the same seed draws the same case), or a stream read from given bytes
/// (a fuzzer's input: each choice takes the next bytes, zeros once they run out, so the
/// fuzzer steers every choice).
pub enum Rng {
    Seeded(Box<ChaCha8Rng>),
    Bytes(Vec<u8>, usize),
}

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng::Seeded(Box::new(ChaCha8Rng::seed_from_u64(seed)))
    }

    pub fn from_bytes(bytes: &[u8]) -> Self {
        Rng::Bytes(bytes.to_vec(), 0)
    }

    pub fn next(&mut self) -> u64 {
        match self {
            Rng::Seeded(r) => r.gen(),
            Rng::Bytes(bytes, at) => {
                // Two bytes per choice: enough to steer every `below`/`chance`/`pick` here.
                let mut v = [0u8; 8];
                for b in v.iter_mut().take(2) {
                    *b = bytes.get(*at).copied().unwrap_or(0);
                    *at += 1;
                }
                u64::from_le_bytes(v)
            }
        }
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }

    pub fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }

    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

/// Keys and proofs made once per test binary.
pub struct Pool {
    pub keys: Vec<AccountPublicKey>,
    pub addrs: Vec<Address>,
    pub bls: Vec<(BlsPublicKey, ProofOfPossession)>,
    /// Valid equivocation evidence: for each BLS key, on chains 0 and 1, in epochs 0 and 2.
    pub evidence: Vec<VoteEquivocation>,
    pub packet_proof: PacketProof,
    pub non_delivery: NonDeliveryProof,
}

pub fn pool() -> &'static Pool {
    static POOL: OnceLock<Pool> = OnceLock::new();
    POOL.get_or_init(|| {
        let keys: Vec<AccountPublicKey> = (0..MAX_ACCOUNTS)
            .map(|i| {
                let seed = hash(Domain::Custom("banyan/dag/test/account"), &[i as u8]);
                AccountSecretKey::from_bytes(&seed.0).public_key()
            })
            .collect();
        let addrs = keys.iter().map(|k| k.address()).collect();
        let bls_keys: Vec<BlsSecretKey> = (0..2u8)
            .map(|i| {
                let seed = hash(Domain::Custom("banyan/dag/test/bls"), &[i]);
                BlsSecretKey::from_seed(&seed.0).expect("32-byte seed")
            })
            .collect();
        let bls = bls_keys
            .iter()
            .map(|k| (k.public_key(), k.prove_possession()))
            .collect();
        let mut evidence = Vec::new();
        for k in &bls_keys {
            for chain in [ChainId(0), ChainId(1)] {
                for epoch in [Epoch(0), Epoch(2)] {
                    let vote = |b: u8| {
                        let data = VoteData {
                            chain,
                            epoch,
                            round: Round(4),
                            height: Height(9),
                            block: Digest([b; 32]),
                        };
                        SignedVote {
                            data,
                            signature: k.sign(data.signing_message().as_bytes()),
                        }
                    };
                    evidence.push(VoteEquivocation {
                        validator_key: k.public_key(),
                        first: vote(1),
                        second: vote(2),
                    });
                }
            }
        }
        let header = BlockHeader {
            chain: ChainId(1),
            epoch: Epoch(0),
            height: Height(3),
            round: Round(0),
            parent: Digest::ZERO,
            state_root: Digest::ZERO,
            tx_root: Digest::ZERO,
            outbox_root: Digest::ZERO,
            proposer: Digest::ZERO,
            timestamp_ms: 0,
            vrf_proof: None,
        };
        let certified = CertifiedHeader {
            commit_qc: QuorumCertificate {
                data: VoteData {
                    chain: header.chain,
                    epoch: header.epoch,
                    round: header.round,
                    height: header.height,
                    block: header.id(),
                },
                signers: SignerBitmap::new(1).expect("one member"),
                signature: bls_keys[0].sign(b"banyan/dag/test"),
            },
            headers: banyan_core::codec::BoundedVec::new(vec![header]).expect("one header"),
        };
        let inclusion = MerkleProof {
            index: 0,
            leaf_count: 1,
            siblings: banyan_core::codec::BoundedVec::empty(),
        };
        Pool {
            keys,
            addrs,
            bls,
            evidence,
            packet_proof: PacketProof {
                header: certified.clone(),
                inclusion: inclusion.clone(),
            },
            non_delivery: NonDeliveryProof {
                header: certified,
                next_receive: Sequence(0),
                inclusion,
            },
        }
    })
}

/// Accepts a proof when this chain has a light client of the other chain and the packet's
/// commitment falls on the right side of a hash bit: arbitrary, but deterministic.
#[derive(Clone, Copy, Debug, Default)]
pub struct HashBitProofs;

fn accepted(client: &LightClientState, packet: &Packet, salt: u8) -> bool {
    client.height.0 > 0 && (packet.commitment().0[0] ^ salt) & 3 != 3
}

impl PacketProofs for HashBitProofs {
    fn delivery(&self, client: &LightClientState, packet: &Packet, _: &PacketProof) -> bool {
        accepted(client, packet, 0)
    }
    fn acknowledgement(
        &self,
        client: &LightClientState,
        packet: &Packet,
        ack: &Acknowledgement,
        _: &PacketProof,
    ) -> bool {
        accepted(
            client,
            packet,
            matches!(ack, Acknowledgement::Success) as u8,
        )
    }
    fn non_delivery(
        &self,
        client: &LightClientState,
        packet: &Packet,
        _: &NonDeliveryProof,
    ) -> bool {
        accepted(client, packet, 2)
    }
}

/// A foreign asset id of chain 1 and its bridged id here.
pub fn foreign_asset() -> AssetId {
    AssetId([7u8; 32])
}

pub fn bridged() -> AssetId {
    AssetId::bridged(ChainId(1), foreign_asset())
}

/// A local (non-native) asset.
pub fn local_asset() -> AssetId {
    AssetId([9u8; 32])
}

pub fn ledger(chain: ChainId) -> Ledger<HashBitProofs> {
    Ledger::new(chain, HEIGHT, HashBitProofs).with_staking(RULES, EPOCH)
}

fn set(state: &mut State, key: StateKey, value: StateValue) {
    state.set(key, value).expect("kind matches key");
}

/// A random block of `txs` transactions of every kind over `accounts` accounts, for `chain`,
/// with a state it executes against.
pub fn random_block(
    seed: u64,
    txs: usize,
    accounts: usize,
    chain: ChainId,
) -> (State, Vec<VerifiedTx>) {
    random_block_from(&mut Rng::new(seed), txs, accounts, chain)
}

/// [`random_block`] with every choice drawn from `rng`.
pub fn random_block_from(
    rng: &mut Rng,
    txs: usize,
    accounts: usize,
    chain: ChainId,
) -> (State, Vec<VerifiedTx>) {
    let p = pool();
    let accounts = accounts.clamp(1, MAX_ACCOUNTS);
    let amounts = [0u128, 5, 1_000, 1_000_000_000, u128::MAX - 3];
    let assets = [AssetId::NATIVE, local_asset(), bridged()];
    let mut state = State::new();
    for a in &p.addrs[..accounts] {
        for asset in assets {
            if rng.chance(80) {
                let v = rng.pick(&amounts[1..]);
                set(
                    &mut state,
                    StateKey::Balance(*a, asset),
                    StateValue::Amount(Amount(v)),
                );
            }
        }
        if rng.chance(30) {
            set(
                &mut state,
                StateKey::Account(*a),
                StateValue::Nonce(Nonce(rng.below(2) as u64)),
            );
        }
        if rng.chance(40) {
            let (key, _) = &p.bls[rng.below(2)];
            set(
                &mut state,
                StateKey::Validator(*a),
                StateValue::Validator(ValidatorRecord {
                    stake: Amount(rng.pick(&[0u128, 1, 50, u128::MAX - 1])),
                    key: *key.as_bytes(),
                }),
            );
            // An offence of this key on this chain already punished on this account.
            let punished = p
                .evidence
                .iter()
                .find(|e| e.validator_key == *key && e.slot().0 == chain && e.slot().1 == Epoch(2));
            if let (Some(e), true) = (punished, rng.chance(30)) {
                set(
                    &mut state,
                    StateKey::Offense(e.offense_id(a)),
                    StateValue::Flag(true),
                );
            }
            if rng.chance(50) {
                set(
                    &mut state,
                    StateKey::Unbonding(*a),
                    StateValue::Unbonding(UnbondingEntry {
                        amount: Amount(rng.pick(&[7u128, 1_000, u128::MAX])),
                        release_epoch: Epoch(rng.below(6) as u64),
                    }),
                );
            }
        }
    }
    for (key, _) in &p.bls {
        if rng.chance(20) {
            set(
                &mut state,
                StateKey::Jailed(key.validator_id()),
                StateValue::Flag(true),
            );
        }
    }
    for e in &p.evidence {
        if rng.chance(10) {
            let a = p.addrs[rng.below(accounts)];
            set(
                &mut state,
                StateKey::Offense(e.offense_id(&a)),
                StateValue::Flag(true),
            );
        }
    }
    if rng.chance(70) {
        set(
            &mut state,
            StateKey::SidechainRegistry,
            StateValue::Counter(rng.below(4) as u64),
        );
    }
    // Sidechains spawned earlier by pool accounts, some retired since.
    for a in &p.addrs[..accounts] {
        if rng.chance(30) {
            set(
                &mut state,
                StateKey::Sidechain(spawned_by(a)),
                StateValue::Sidechain(Some(SidechainRecord {
                    spawner: *a,
                    deposit: MIN_DEPOSIT,
                    committee_size: 4,
                    block_time_ms: 500,
                    epoch_length: 100,
                    activation_epoch: 1,
                    status: if rng.chance(70) {
                        SidechainStatus::Active
                    } else {
                        SidechainStatus::Retired { from_epoch: 2 }
                    },
                })),
            );
        }
    }
    for c in [1u32, 2] {
        set(
            &mut state,
            StateKey::LightClient(ChainId(c)),
            StateValue::LightClient(LightClientState {
                height: Height(10),
                header: Digest([c as u8; 32]),
                ..Default::default()
            }),
        );
        if rng.chance(50) {
            set(
                &mut state,
                StateKey::ChannelReceive(ChainId(c)),
                StateValue::Sequence(Sequence(rng.below(2) as u64)),
            );
        }
        if rng.chance(50) {
            let count = rng.below(4) as u64;
            set(
                &mut state,
                StateKey::ChannelSend(ChainId(c)),
                StateValue::Sequence(Sequence(count)),
            );
            set(
                &mut state,
                StateKey::ChannelPending(ChainId(c)),
                StateValue::Pending(PendingPackets {
                    first: Sequence(0),
                    count,
                }),
            );
        }
        for asset in assets {
            if rng.chance(50) {
                set(
                    &mut state,
                    StateKey::Escrow(ChainId(c), asset),
                    StateValue::Amount(Amount(rng.pick(&amounts[1..4]))),
                );
            }
        }
    }
    if rng.chance(50) {
        let origin = if rng.chance(80) {
            AssetOrigin {
                chain: ChainId(1),
                asset: foreign_asset(),
            }
        } else {
            AssetOrigin {
                chain: ChainId(2),
                asset: foreign_asset(),
            }
        };
        set(
            &mut state,
            StateKey::AssetOrigin(bridged()),
            StateValue::Origin(Some(origin)),
        );
    }

    let mut nonces: Vec<u64> = p.addrs[..accounts]
        .iter()
        .map(|a| match state.get(&StateKey::Account(*a)) {
            StateValue::Nonce(n) => n.0,
            _ => 0,
        })
        .collect();
    let origins = [
        AssetOrigin {
            chain,
            asset: AssetId::NATIVE,
        },
        AssetOrigin {
            chain,
            asset: local_asset(),
        },
        AssetOrigin {
            chain: ChainId(1),
            asset: foreign_asset(),
        },
        AssetOrigin {
            chain: ChainId(2),
            asset: foreign_asset(),
        },
    ];
    let mut block = Vec::with_capacity(txs);
    for _ in 0..txs {
        let from = rng.below(accounts);
        let nonce = if rng.chance(85) {
            nonces[from] += 1;
            nonces[from] - 1
        } else {
            rng.below(4) as u64
        };
        let other = |rng: &mut Rng| p.addrs[rng.below(accounts)];
        let packet = |rng: &mut Rng, outbound: bool| {
            let (source, destination) = if outbound {
                (
                    if rng.chance(85) { chain } else { ChainId(1) },
                    ChainId(rng.pick(&[1u32, 2])),
                )
            } else {
                (
                    ChainId(rng.pick(&[1u32, 2, 3])),
                    if rng.chance(85) { chain } else { ChainId(2) },
                )
            };
            Packet {
                source,
                destination,
                sequence: Sequence(rng.below(3) as u64),
                sender: other(rng),
                recipient: other(rng),
                asset: rng.pick(&origins),
                amount: Amount(rng.pick(&[1u128, 100, 1_000_000, u128::MAX])),
                timeout_height: Height(rng.pick(&[0u64, 5, 1_000])),
            }
        };
        let kind = match rng.below(22) {
            0..=8 => TxKind::Transfer {
                to: other(rng),
                asset: rng.pick(&assets),
                amount: Amount(rng.pick(&[0u128, 1, 50, 1_000_000, u128::MAX])),
            },
            9 => {
                let (validator_key, pop) = p.bls[rng.below(2)];
                TxKind::Stake {
                    validator_key,
                    pop: Box::new(pop),
                    amount: Amount(rng.pick(&[0u128, 10, 1_000_000])),
                }
            }
            10 | 20 => TxKind::Unstake {
                amount: Amount(rng.pick(&[0u128, 5, 1_000_000_000])),
            },
            21 => {
                // Mostly about this chain (the ledger refuses others).
                let here: Vec<&VoteEquivocation> =
                    p.evidence.iter().filter(|e| e.slot().0 == chain).collect();
                let evidence = if !here.is_empty() && rng.chance(85) {
                    here[rng.below(here.len())].clone()
                } else {
                    p.evidence[rng.below(p.evidence.len())].clone()
                };
                TxKind::ReportEquivocation {
                    offender: other(rng),
                    evidence: Box::new(evidence),
                }
            }
            11 => TxKind::SpawnSidechain {
                params: SidechainParams {
                    committee_size: rng.pick(&[0u16, 4]),
                    block_time_ms: 500,
                    epoch_length: 100,
                    deposit: Amount(rng.pick(&[0u128, MIN_DEPOSIT.0, 5_000, u128::MAX])),
                },
            },
            12 => TxKind::RetireSidechain {
                chain: if rng.chance(80) {
                    spawned_by(&other(rng))
                } else {
                    ChainId(rng.pick(&[0u32, 5]))
                },
            },
            13 | 14 => TxKind::CrossChainSend {
                destination: ChainId(rng.pick(&[0u32, 1, 2])),
                recipient: other(rng),
                asset: rng.pick(&assets),
                amount: Amount(rng.pick(&[0u128, 3, 1_000_000])),
                timeout_height: Height(rng.pick(&[0u64, 10])),
            },
            15 | 16 => TxKind::DeliverPacket {
                packet: packet(rng, false),
                proof: Box::new(p.packet_proof.clone()),
            },
            17 | 18 => TxKind::AcknowledgePacket {
                packet: packet(rng, true),
                ack: if rng.chance(50) {
                    Acknowledgement::Success
                } else {
                    Acknowledgement::Failure(1)
                },
                proof: Box::new(p.packet_proof.clone()),
            },
            _ => TxKind::TimeoutPacket {
                packet: packet(rng, true),
                proof: Box::new(p.non_delivery.clone()),
            },
        };
        let body = TxBody {
            chain: if rng.chance(97) { chain } else { ChainId(77) },
            network: banyan_core::hash::Digest::ZERO,
            sender: p.keys[from],
            nonce: Nonce(nonce),
            fee: Amount(rng.pick(&[0u128, 1, 7, 1_000_000_000_000])),
            kind,
        };
        // Signatures are not checked by execution; a fixed one keeps generation fast.
        let tx = banyan_core::tx::SignedTx {
            body,
            signature: AccountSignature::from_bytes(&[0u8; 64]),
        };
        block.push(VerifiedTx::assume_verified(tx));
    }
    (state, block)
}

/// A block of native transfers between `accounts` accounts, all valid.
pub fn transfer_block(seed: u64, txs: usize, accounts: usize) -> (State, Vec<VerifiedTx>) {
    let p = pool();
    let accounts = accounts.clamp(1, MAX_ACCOUNTS);
    let mut state = State::new();
    for a in &p.addrs[..accounts] {
        set(
            &mut state,
            StateKey::Balance(*a, AssetId::NATIVE),
            StateValue::Amount(Amount(1 << 60)),
        );
    }
    let mut rng = Rng::new(seed);
    let mut nonces = vec![0u64; accounts];
    let block = (0..txs)
        .map(|_| {
            let from = rng.below(accounts);
            let to = rng.below(accounts);
            nonces[from] += 1;
            VerifiedTx::assume_verified(banyan_core::tx::SignedTx {
                body: TxBody {
                    chain: ChainId::MAIN,
                    network: banyan_core::hash::Digest::ZERO,
                    sender: p.keys[from],
                    nonce: Nonce(nonces[from] - 1),
                    fee: Amount(1),
                    kind: TxKind::Transfer {
                        to: p.addrs[to],
                        asset: AssetId::NATIVE,
                        amount: Amount(1 + rng.below(10) as u128),
                    },
                },
                signature: AccountSignature::from_bytes(&[0u8; 64]),
            })
        })
        .collect();
    (state, block)
}
