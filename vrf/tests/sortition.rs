//! Committee sortition: seats, stake-proportional membership, rotation bounds, too few
//! validators, determinism and refused inputs.

mod support;

use banyan_core::certificate::{CommitteeMember, MAX_COMMITTEE_SIZE};
use banyan_core::ids::{ChainId, Epoch};
use banyan_vrf::sortition::MAX_SIDECHAINS;
use banyan_vrf::*;
use std::collections::BTreeSet;
use support::*;

fn params(committee_size: usize, num: u32, den: u32) -> SortitionParams {
    SortitionParams {
        committee_size,
        max_rotation: Fraction::new(num, den).expect("valid fraction"),
    }
}

fn chains(ids: &[u32]) -> Vec<ChainId> {
    ids.iter().map(|&i| ChainId(i)).collect()
}

#[test]
fn a_first_draw_fills_every_seat_with_distinct_validators() {
    let vs = validator_set(120, |i| 1 + (i as u64 % 7));
    let side = chains(&[9, 3, 4]);
    let p = params(25, 1, 4);
    let a = sortition(Epoch(1), &seed("first", 0), &vs, &side, &p, None).expect("valid");
    check_assignment(&a, &vs, &side, &p, None);
    assert!(!a.shared_seats());
    let served: usize = a.committees().iter().map(|c| c.members().len()).sum();
    assert_eq!(served, 100);
    let c = a
        .certificate_committee(ChainId(3))
        .expect("chain 3 has a committee");
    assert_eq!(c.len(), 25);
    assert_eq!(c.epoch(), Epoch(1));
    assert_eq!(
        a.certificate_committee(ChainId(5)).map(|_| ()),
        Err(VrfError::UnknownChain(ChainId(5)))
    );
}

#[test]
fn membership_frequency_is_proportional_to_stake() {
    // 200 validators in four stake classes (1..=4), 4 committees of 5: 20 seats for a total
    // stake of 500, so validator i serves with probability exactly 20 * stake_i / 500 and, if
    // it serves, on each chain with probability 1/4.
    const EPOCHS: u64 = 4_000;
    let n = 200;
    let stake = |i: usize| 1 + (i as u64 % 4);
    let vs = validator_set(n, stake);
    let side = chains(&[1, 2, 3]);
    let p = params(5, 1, 4);
    let mut per_validator = vec![0u64; n];
    let mut per_chain_class = vec![0u64; 16];
    for e in 0..EPOCHS {
        let a = sortition(Epoch(e), &seed("freq", e), &vs, &side, &p, None).expect("valid");
        for (k, c) in a.committees().iter().enumerate() {
            for m in c.members() {
                let pos = vs.position(&m.key).expect("member");
                per_validator[pos] += 1;
                per_chain_class[k * 4 + (m.stake as usize - 1)] += 1;
            }
        }
    }
    let expected: Vec<f64> = vs
        .members()
        .iter()
        .map(|m| EPOCHS as f64 * 20.0 * m.stake as f64 / 500.0)
        .collect();
    let chi = chi_square(&per_validator, &expected);
    let bound = chi_square_critical_999(n - 1);
    assert!(
        chi < bound,
        "per validator: chi-square {chi:.1} >= {bound:.1}"
    );

    // 50 validators per class, each on a given chain with probability stake/100.
    let expected: Vec<f64> = (0..16)
        .map(|cell| EPOCHS as f64 * 50.0 * ((cell % 4) as f64 + 1.0) / 100.0)
        .collect();
    let chi = chi_square(&per_chain_class, &expected);
    let bound = chi_square_critical_999(15);
    assert!(
        chi < bound,
        "per chain and class: chi-square {chi:.1} >= {bound:.1}"
    );
}

#[test]
fn a_validator_with_more_than_a_seat_worth_of_stake_always_serves() {
    // Whale: 1,000 of 1,099 total stake, 10 seats: 10 * 1000 >= 1099, included with
    // certainty; the 99 others share 9 seats proportionally.
    let vs = validator_set(100, |i| if i == 42 { 1_000 } else { 1 });
    let whale = keys(100)[42];
    let p = params(5, 0, 1);
    for e in 0..50 {
        let a =
            sortition(Epoch(e), &seed("whale", e), &vs, &[ChainId(1)], &p, None).expect("valid");
        assert_eq!(a.chains_of(&whale).len(), 1, "epoch {e}");
    }
}

/// Deterministic churn driven by the test's own seed stream.
fn churn(stream: &mut banyan_vrf::draw::DrawStream, n: usize) -> usize {
    stream.below(std::num::NonZeroU64::new(n as u64).expect("n > 0")) as usize
}

#[test]
fn rotation_fraction_is_respected_every_epoch_through_churn() {
    use banyan_core::hash::Domain;
    let p = params(20, 1, 4); // budget ceil(20 / 4) = 5
    let mut ids: Vec<usize> = (0..300).collect();
    let mut next_id = 300;
    let mut side = chains(&[1, 2, 3, 4]);
    let mut stream = banyan_vrf::draw::DrawStream::new(
        &seed("churn", 0),
        Domain::Custom("banyan/vrf/test-churn"),
        b"",
    );
    let stake = |i: usize| 1 + (i as u64 * 7919 % 13);
    let mut prev: Option<Assignment> = None;
    let mut full_rotations = 0;
    for e in 0..40u64 {
        // Up to 3 leave (sometimes a serving member), up to 3 join, a stake changes.
        for _ in 0..churn(&mut stream, 4) {
            let i = churn(&mut stream, ids.len());
            ids.swap_remove(i);
        }
        for _ in 0..churn(&mut stream, 4) {
            ids.push(next_id);
            next_id += 1;
        }
        let bump = ids[churn(&mut stream, ids.len())];
        let vs = members(&ids, |i| if i == bump { stake(i) + 100 } else { stake(i) });
        if e == 10 {
            side.push(ChainId(7));
        }
        if e == 20 {
            side.retain(|&c| c != ChainId(2));
        }
        let a =
            sortition(Epoch(e), &seed("churn", e), &vs, &side, &p, prev.as_ref()).expect("valid");
        check_assignment(&a, &vs, &side, &p, prev.as_ref());
        if prev.is_some() {
            for c in a.committees() {
                let st = c.stats();
                if st.kept + st.departed + st.rotated_out == 20 {
                    // Slack is ample (n ~ 300 >> 100 seats): exactly the budget rotates.
                    assert_eq!(st.rotated_out, 5usize.saturating_sub(st.departed));
                    full_rotations += 1;
                }
            }
        }
        prev = Some(a);
    }
    assert!(full_rotations > 100, "continuing committees were checked");
}

#[test]
fn departures_beyond_the_budget_are_all_replaced() {
    let p = params(10, 1, 10); // budget 1
    let vs = validator_set(60, |_| 1);
    let side = chains(&[1]);
    let a = sortition(Epoch(1), &seed("depart", 1), &vs, &side, &p, None).expect("valid");
    // Four of the main committee leave the set.
    let leaving: Vec<_> = a.committees()[0].members()[..4]
        .iter()
        .map(|m| m.key)
        .collect();
    let all = keys(60);
    let ids: Vec<usize> = (0..60).filter(|&i| !leaving.contains(&all[i])).collect();
    let vs2 = members(&ids, |_| 1);
    let b = sortition(Epoch(2), &seed("depart", 2), &vs2, &side, &p, Some(&a)).expect("valid");
    check_assignment(&b, &vs2, &side, &p, Some(&a));
    let st = b.committees()[0].stats();
    assert_eq!(
        (st.departed, st.rotated_out, st.joined, st.kept),
        (4, 0, 4, 6)
    );
    let other = b.committees()[1].stats();
    assert_eq!((other.departed, other.rotated_out, other.joined), (0, 1, 1));
}

#[test]
fn zero_rotation_keeps_committees_and_full_rotation_replaces_them() {
    let vs = validator_set(100, |i| 1 + i as u64 % 3);
    let side = chains(&[5]);
    let frozen = params(10, 0, 1);
    let a = sortition(Epoch(0), &seed("rot", 0), &vs, &side, &frozen, None).expect("valid");
    let b = sortition(Epoch(1), &seed("rot", 1), &vs, &side, &frozen, Some(&a)).expect("valid");
    assert_eq!(a.committees()[0].members(), b.committees()[0].members());
    assert_eq!(a.committees()[1].members(), b.committees()[1].members());

    let full = params(10, 1, 1);
    let c = sortition(Epoch(2), &seed("rot", 2), &vs, &side, &full, Some(&b)).expect("valid");
    check_assignment(&c, &vs, &side, &full, Some(&b));
    for (old, new) in b.committees().iter().zip(c.committees()) {
        let before: BTreeSet<_> = old.members().iter().map(|m| m.key).collect();
        assert!(new.members().iter().all(|m| !before.contains(&m.key)));
    }
}

#[test]
fn rotation_is_capped_by_the_slack_so_vacancies_can_be_filled() {
    // 44 validators, 4 committees of 10: slack 4, budget 5 per committee. Only 4 rotate in
    // total (main chain first), and every seat is still filled by a distinct validator.
    let vs = validator_set(44, |_| 1);
    let side = chains(&[1, 2, 3]);
    let p = params(10, 1, 2);
    let a = sortition(Epoch(0), &seed("slack", 0), &vs, &side, &p, None).expect("valid");
    let b = sortition(Epoch(1), &seed("slack", 1), &vs, &side, &p, Some(&a)).expect("valid");
    check_assignment(&b, &vs, &side, &p, Some(&a));
    let rotated: Vec<usize> = b
        .committees()
        .iter()
        .map(|c| c.stats().rotated_out)
        .collect();
    assert_eq!(rotated, vec![4, 0, 0, 0]);
}

#[test]
fn too_few_validators_share_seats_evenly() {
    // 10 validators, 4 committees of 4: 16 seats. Every validator serves 1 or 2 committees.
    let vs = validator_set(10, |i| 1 + i as u64);
    let side = chains(&[1, 2, 3]);
    let p = params(4, 1, 4);
    let a = sortition(Epoch(0), &seed("few", 0), &vs, &side, &p, None).expect("valid");
    check_assignment(&a, &vs, &side, &p, None);
    assert!(a.shared_seats());
    assert_eq!(a.max_committees_per_validator(), 2);
    for m in vs.members() {
        let n = a.chains_of(&m.key).len();
        assert!((1..=2).contains(&n), "{n} committees");
    }
}

#[test]
fn fewer_validators_than_a_committee_puts_everyone_everywhere() {
    let vs = validator_set(3, |i| 10 + i as u64);
    let side = chains(&[1, 2]);
    let p = params(5, 1, 2);
    let a = sortition(Epoch(0), &seed("tiny", 0), &vs, &side, &p, None).expect("valid");
    check_assignment(&a, &vs, &side, &p, None);
    for c in a.committees() {
        assert_eq!(c.members(), vs.members());
    }
    let b = sortition(Epoch(1), &seed("tiny", 1), &vs, &side, &p, Some(&a)).expect("valid");
    // Nobody can rotate: everyone is already on every committee.
    for (x, y) in a.committees().iter().zip(b.committees()) {
        assert_eq!(x.members(), y.members());
        assert_eq!(y.stats().rotated_out, 0);
    }
}

#[test]
fn shared_seats_rotate_within_the_budget_and_clear_when_validators_join() {
    let side = chains(&[1, 2, 3]);
    let p = params(6, 1, 3); // budget 2
    let mut prev: Option<Assignment> = None;
    // 15 validators for 24 seats, then 30 for 24.
    for e in 0..12u64 {
        let n = if e < 6 { 15 } else { 30 };
        let vs = validator_set(n, |i| 1 + i as u64 % 5);
        let a =
            sortition(Epoch(e), &seed("shared", e), &vs, &side, &p, prev.as_ref()).expect("valid");
        check_assignment(&a, &vs, &side, &p, prev.as_ref());
        assert_eq!(a.shared_seats(), e < 6);
        if e < 6 {
            assert!(
                a.max_committees_per_validator() <= 3,
                "load stays near 24 / 15"
            );
        }
        prev = Some(a);
    }
}

#[test]
fn the_draw_depends_only_on_its_inputs_not_their_order() {
    let vs = validator_set(80, |i| 1 + i as u64 % 9);
    let mut reversed: Vec<CommitteeMember> = vs.members().to_vec();
    reversed.reverse();
    let vs_rev = ValidatorSet::new(reversed).expect("valid");
    let p = params(8, 1, 4);
    let a = sortition(
        Epoch(3),
        &seed("order", 0),
        &vs,
        &chains(&[4, 2, 8]),
        &p,
        None,
    )
    .expect("valid");
    let b = sortition(
        Epoch(3),
        &seed("order", 0),
        &vs_rev,
        &chains(&[8, 4, 2]),
        &p,
        None,
    )
    .expect("valid");
    assert_eq!(a, b);
    assert_eq!(a.digest(), b.digest());
    let c = sortition(
        Epoch(3),
        &seed("order", 1),
        &vs,
        &chains(&[4, 2, 8]),
        &p,
        None,
    )
    .expect("valid");
    assert_ne!(a.digest(), c.digest(), "another seed, another draw");
}

#[test]
fn bad_inputs_are_refused() {
    let vs = validator_set(10, |_| 1);
    let s = seed("bad", 0);
    let p = params(3, 1, 3);
    let run = |side: &[ChainId], p: &SortitionParams| {
        sortition(Epoch(1), &s, &vs, side, p, None).map(|_| ())
    };
    assert_eq!(
        run(&chains(&[1, 2, 1]), &p),
        Err(VrfError::DuplicateSidechain(ChainId(1)))
    );
    assert_eq!(run(&chains(&[0]), &p), Err(VrfError::MainChainAsSidechain));
    let many: Vec<ChainId> = (1..=MAX_SIDECHAINS as u32 + 1).map(ChainId).collect();
    assert_eq!(
        run(&many, &p),
        Err(VrfError::TooManySidechains {
            got: MAX_SIDECHAINS + 1,
            max: MAX_SIDECHAINS
        })
    );
    for size in [0, MAX_COMMITTEE_SIZE + 1] {
        assert_eq!(
            run(&[], &params_unchecked(size)),
            Err(VrfError::BadCommitteeSize {
                got: size,
                max: MAX_COMMITTEE_SIZE
            })
        );
    }
    assert_eq!(
        Fraction::new(3, 2),
        Err(VrfError::BadRotationFraction { num: 3, den: 2 })
    );
    assert_eq!(
        Fraction::new(0, 0),
        Err(VrfError::BadRotationFraction { num: 0, den: 0 })
    );

    let a = sortition(Epoch(1), &s, &vs, &[], &p, None).expect("valid");
    for e in [1, 3, 0] {
        assert_eq!(
            sortition(Epoch(e), &s, &vs, &[], &p, Some(&a)).map(|_| ()),
            Err(VrfError::PreviousEpoch {
                epoch: Epoch(e),
                previous: Epoch(1)
            })
        );
    }

    let k = keys(2);
    assert_eq!(ValidatorSet::new(vec![]), Err(VrfError::EmptyValidatorSet));
    assert!(matches!(
        ValidatorSet::new(vec![CommitteeMember {
            key: k[0],
            stake: 0
        }]),
        Err(VrfError::ZeroStake(_))
    ));
    assert!(matches!(
        ValidatorSet::new(vec![
            CommitteeMember {
                key: k[1],
                stake: 1
            },
            CommitteeMember {
                key: k[0],
                stake: 1
            },
            CommitteeMember {
                key: k[1],
                stake: 2
            },
        ]),
        Err(VrfError::DuplicateValidator(_))
    ));
}

fn params_unchecked(committee_size: usize) -> SortitionParams {
    SortitionParams {
        committee_size,
        max_rotation: Fraction::ZERO,
    }
}

#[test]
fn rotation_budget_is_the_ceiling_of_the_fraction() {
    assert_eq!(params(20, 1, 4).rotation_budget(), 5);
    assert_eq!(params(21, 1, 4).rotation_budget(), 6);
    assert_eq!(params(7, 1, 100).rotation_budget(), 1);
    assert_eq!(params(7, 0, 5).rotation_budget(), 0);
    assert_eq!(params(7, 5, 5).rotation_budget(), 7);
    assert_eq!(Fraction::ONE.ceil_of(1024), 1024);
}

fn seats(list: &[(u32, usize)]) -> Vec<ChainSeats> {
    list.iter()
        .map(|&(chain, seats)| ChainSeats {
            chain: ChainId(chain),
            seats,
        })
        .collect()
}

#[test]
fn each_chain_gets_its_own_seats_and_the_main_chain_may_stay_out() {
    // Sidechains only (the main chain's committee is its registry), 3 + 5 + 2 seats of 12
    // validators: disjoint, each committee its own size, no main-chain committee.
    let vs = validator_set(12, |i| 1 + i as u64 % 3);
    let list = seats(&[(7, 5), (2, 3), (9, 2)]);
    let r = Fraction::new(1, 3).expect("valid fraction");
    let a = sortition_by_seats(Epoch(4), &seed("seats", 4), &vs, &list, r, None).expect("valid");
    assert!(!a.shared_seats());
    assert!(a.committee(ChainId::MAIN).is_none());
    let sizes: Vec<(u32, usize)> = a
        .committees()
        .iter()
        .map(|c| (c.chain().0, c.members().len()))
        .collect();
    assert_eq!(sizes, vec![(2, 3), (7, 5), (9, 2)]);
    let all: BTreeSet<_> = a
        .committees()
        .iter()
        .flat_map(|c| c.members().iter().map(|m| m.key))
        .collect();
    assert_eq!(all.len(), 10, "enough validators: nobody holds two seats");

    // Next epoch: each committee rotates at most ceil(c / 3) of its members by choice.
    let b =
        sortition_by_seats(Epoch(5), &seed("seats", 5), &vs, &list, r, Some(&a)).expect("valid");
    for (old, new) in a.committees().iter().zip(b.committees()) {
        let budget = r.ceil_of(old.members().len());
        let st = new.stats();
        assert!(st.rotated_out <= budget, "{:?}: {st:?}", new.chain());
        assert_eq!(st.kept + st.joined, old.members().len());
    }

    // More seats than validators: shared, and every committee still has distinct members.
    let crowded = seats(&[(1, 8), (2, 8)]);
    let c = sortition_by_seats(Epoch(1), &seed("seats", 1), &vs, &crowded, r, None).expect("valid");
    assert!(c.shared_seats());
    for committee in c.committees() {
        let distinct: BTreeSet<_> = committee.members().iter().map(|m| m.key).collect();
        assert_eq!(distinct.len(), 8);
    }

    // With one size for every chain and the main chain listed, it is `sortition`.
    let side = chains(&[3, 8]);
    let p = params(4, 1, 4);
    let same = sortition(Epoch(2), &seed("seats", 2), &vs, &side, &p, None).expect("valid");
    let by_seats = sortition_by_seats(
        Epoch(2),
        &seed("seats", 2),
        &vs,
        &seats(&[(0, 4), (3, 4), (8, 4)]),
        p.max_rotation,
        None,
    )
    .expect("valid");
    assert_eq!(same, by_seats);

    // Refused: a committee of 0 seats, a chain listed twice.
    assert_eq!(
        sortition_by_seats(Epoch(1), &seed("seats", 1), &vs, &seats(&[(1, 0)]), r, None)
            .map(|_| ()),
        Err(VrfError::BadCommitteeSize {
            got: 0,
            max: MAX_COMMITTEE_SIZE
        })
    );
    assert_eq!(
        sortition_by_seats(
            Epoch(1),
            &seed("seats", 1),
            &vs,
            &seats(&[(1, 2), (1, 3)]),
            r,
            None
        )
        .map(|_| ()),
        Err(VrfError::DuplicateSidechain(ChainId(1)))
    );
}
