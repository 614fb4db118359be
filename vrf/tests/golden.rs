//! Golden vectors: fixed keys and inputs, pinned outputs. Any change to the VRF, the seed chain,
//! the stream, the leader draw or sortition fails here; such a change is a consensus change and
//! needs a new version of the rules, not new numbers pasted in.

mod support;

use banyan_core::certificate::{Committee, CommitteeMember};
use banyan_core::hash::{Digest, Domain};
use banyan_core::ids::{ChainId, Epoch, Round};
use banyan_vrf::draw::DrawStream;
use banyan_vrf::*;
use std::num::NonZeroU64;
use support::*;

#[test]
fn vrf_prove() {
    let sk = golden_secret(1);
    let (out, proof) = prove(&sk, b"banyan vrf golden vector 1").expect("short input");
    assert_eq!(hex::encode(proof.as_bytes()), GOLDEN_PROOF);
    assert_eq!(out.to_hex(), GOLDEN_OUTPUT);
    assert_eq!(
        verify(&sk.public_key(), b"banyan vrf golden vector 1", &proof),
        Ok(out)
    );
}

#[test]
fn proposer_input_and_output() {
    let sk = golden_secret(2);
    let seed = EpochSeed::genesis(&Digest::ZERO);
    let slot = Slot {
        chain: ChainId(3),
        epoch: Epoch(7),
        round: Round(11),
    };
    assert_eq!(hex::encode(slot.vrf_input(&seed)), GOLDEN_PROPOSER_INPUT);
    let (out, _) = prove_proposer(&sk, slot, &seed);
    assert_eq!(out.to_hex(), GOLDEN_PROPOSER_OUTPUT);
}

#[test]
fn seeds() {
    let g = EpochSeed::genesis(&Digest::ZERO);
    assert_eq!(g.to_hex(), GOLDEN_GENESIS_SEED);
    let outs: Vec<VrfOutput> = (1..=3u8)
        .map(|i| prove(&golden_secret(i), &[i]).expect("ok").0)
        .collect();
    let params = SeedParams {
        contributions_per_epoch: 2,
    };
    let s1 = next_epoch_seed(Epoch(0), &g, &outs, params).expect("ok");
    assert_eq!(s1.to_hex(), GOLDEN_SEED_1);
}

#[test]
fn stream_words_and_uniform_draws() {
    let seed = EpochSeed::genesis(&Digest::ZERO);
    let mut s = DrawStream::new(&seed, Domain::Custom("banyan/vrf/golden"), b"context");
    let words: Vec<String> = (0..5).map(|_| format!("{:016x}", s.next_u64())).collect();
    assert_eq!(words, GOLDEN_WORDS);
    let below: Vec<u64> = (0..8)
        .map(|_| s.below(NonZeroU64::new(1000).expect("non-zero")))
        .collect();
    assert_eq!(below, GOLDEN_BELOW);
}

fn golden_validators(n: u8) -> Vec<CommitteeMember> {
    (1..=n)
        .map(|i| CommitteeMember {
            key: verified(&golden_secret(i)),
            stake: 1_000 * (i as u64 % 5 + 1),
        })
        .collect()
}

#[test]
fn leader_schedule() {
    let committee = Committee::new(Epoch(7), golden_validators(8)).expect("valid");
    let schedule = LeaderSchedule::new(ChainId(3), EpochSeed::genesis(&Digest::ZERO), &committee);
    let leaders: Vec<usize> = (0..24).map(|r| schedule.leader_index(Round(r))).collect();
    assert_eq!(leaders, GOLDEN_LEADERS);
}

#[test]
fn sortition_first_draw_and_rotation() {
    let all = golden_validators(40);
    let vs = ValidatorSet::new(all.clone()).expect("valid");
    let params = SortitionParams {
        committee_size: 6,
        max_rotation: Fraction::new(1, 3).expect("valid"),
    };
    let side = [ChainId(5), ChainId(2), ChainId(9)];
    let seed1 = EpochSeed::genesis(&Digest([1; 32]));
    let a = sortition(Epoch(1), &seed1, &vs, &side, &params, None).expect("valid");
    assert_eq!(a.digest().to_hex(), GOLDEN_SORTITION_1);

    // Three validators leave; the next epoch rotates.
    let vs2 = ValidatorSet::new(all[3..].to_vec()).expect("valid");
    let seed2 = EpochSeed::genesis(&Digest([2; 32]));
    let b = sortition(Epoch(2), &seed2, &vs2, &side, &params, Some(&a)).expect("valid");
    assert_eq!(b.digest().to_hex(), GOLDEN_SORTITION_2);

    // Too few validators: shared seats.
    let vs3 = ValidatorSet::new(all[..15].to_vec()).expect("valid");
    let c = sortition(Epoch(1), &seed1, &vs3, &side, &params, None).expect("valid");
    assert!(c.shared_seats());
    assert_eq!(c.digest().to_hex(), GOLDEN_SORTITION_SHARED);
}

const GOLDEN_PROOF: &str = "96f137ab3d29049a59fec4b68c8c726ab582d471ed1dde30b55a21bc672f1923f75473888cecda8158a0143294f2da4d08c57a0c2abb9bfb0fef6e10cef996ad1e0b407c45a5c4e6fff82a9aebadbc4e5aba47959259e692fa5aaba9a7b5c7b2";
const GOLDEN_OUTPUT: &str = "33c1231d5a8fe672ff23b3b1e0b5a7575648c4b2ed3cb3061cb39c12dc162555";
const GOLDEN_PROPOSER_INPUT: &str = "62616e79616e2f6c65616465720300000007000000000000000b000000000000000d8cf6ae82ed40cd5649f69826bd4050ba0ec5c0066a2b52e569dae2f169ca15";
const GOLDEN_PROPOSER_OUTPUT: &str =
    "a2e85334c12b82688d52e1507eb6035d9e6c79ae8e3d94fb681d094fff7369f1";
const GOLDEN_GENESIS_SEED: &str =
    "0d8cf6ae82ed40cd5649f69826bd4050ba0ec5c0066a2b52e569dae2f169ca15";
const GOLDEN_SEED_1: &str = "20b6931aba97f17e02e85008f9de6497e650b4d9eb40e4f30f26da2573c2cfd4";
const GOLDEN_WORDS: [&str; 5] = [
    "d2866d9fd73324aa",
    "9838ccef2477aa53",
    "ec30d2919f44a6fa",
    "08b9757e949da240",
    "e113416f91db08ac",
];
const GOLDEN_BELOW: [u64; 8] = [436, 456, 592, 870, 669, 962, 456, 661];
const GOLDEN_LEADERS: [usize; 24] = [
    6, 3, 7, 6, 7, 1, 0, 1, 6, 5, 1, 3, 3, 4, 7, 6, 3, 1, 7, 2, 6, 6, 2, 5,
];
const GOLDEN_SORTITION_1: &str = "cdb28e3ee4f0d9b12a6204de28a4f6ffa90ed4f9baec92bacc6786a1298995d8";
const GOLDEN_SORTITION_2: &str = "366abc00031e794c5fada6177f9376538e745118408962161a04d9d6f639d419";
const GOLDEN_SORTITION_SHARED: &str =
    "77b7ffa0ca87d0a3e81c940ce8012bba18f1402880209524010cb475ec083433";
