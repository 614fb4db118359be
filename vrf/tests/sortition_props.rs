//! Property tests: for random validator sets, sidechain sets, committee sizes, rotation
//! fractions and churn, every assignment keeps every rule `check_assignment` knows, and the
//! draw is a pure function of its inputs.

mod support;

use banyan_core::ids::{ChainId, Epoch};
use banyan_vrf::*;
use proptest::prelude::*;
use support::*;

/// Test validators are drawn from this many keys.
const KEY_POOL: usize = 96;

/// Validator ids per epoch, sidechain ids, committee size, rotation fraction, stake salt.
type Scenario = (Vec<Vec<usize>>, Vec<u32>, usize, (u32, u32), u64);

fn scenario() -> impl Strategy<Value = Scenario> {
    (
        // Three epochs of validator ids (subsets of the key pool, each non-empty).
        prop::collection::vec(prop::collection::btree_set(0..KEY_POOL, 1..KEY_POOL), 3)
            .prop_map(|sets| sets.into_iter().map(|s| s.into_iter().collect()).collect()),
        prop::collection::btree_set(1u32..20, 0..6).prop_map(|s| s.into_iter().collect()),
        1usize..20,
        (0u32..=8).prop_flat_map(|den| (0..=den.max(1), Just(den.max(1)))),
        any::<u64>(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn every_assignment_keeps_the_rules(
        (epochs, side, size, (num, den), salt) in scenario()
    ) {
        keys(KEY_POOL);
        let side: Vec<ChainId> = side.into_iter().map(ChainId).collect();
        let p = SortitionParams {
            committee_size: size,
            max_rotation: Fraction::new(num, den).expect("num <= den"),
        };
        let mut prev: Option<Assignment> = None;
        for (e, ids) in epochs.iter().enumerate() {
            let vs = members(ids, |i| 1 + (i as u64 ^ salt) % 1000);
            let s = seed("prop", salt.wrapping_add(e as u64));
            // Sidechains come and go with the epoch.
            let chains: Vec<ChainId> = side.iter().copied().filter(|c| !(c.0 as usize + e).is_multiple_of(4)).collect();
            let a = sortition(Epoch(e as u64), &s, &vs, &chains, &p, prev.as_ref())
                .expect("valid inputs");
            check_assignment(&a, &vs, &chains, &p, prev.as_ref());
            let again = sortition(Epoch(e as u64), &s, &vs, &chains, &p, prev.as_ref())
                .expect("valid inputs");
            prop_assert_eq!(&a, &again);
            prev = Some(a);
        }
    }
}
