//! Epoch seeds: the cut-off, the order rule, and agreement between the builder and the
//! one-shot function.

use banyan_core::hash::Digest;
use banyan_core::ids::{Epoch, Height};
use banyan_vrf::seed::MAX_SEED_CONTRIBUTIONS;
use banyan_vrf::*;

fn outputs(n: u8) -> Vec<VrfOutput> {
    (0..n).map(|i| VrfOutput([i; 32])).collect()
}

const PARAMS: SeedParams = SeedParams {
    contributions_per_epoch: 4,
};

#[test]
fn builder_and_function_agree_and_stop_at_the_cut_off() {
    let s0 = EpochSeed::genesis(&Digest([9; 32]));
    let outs = outputs(6);
    let mut b = SeedBuilder::new(Epoch(3), s0, PARAMS).expect("valid params");
    for (i, o) in outs.iter().enumerate() {
        let counted = b.push(Height(100 + 2 * i as u64), *o).expect("increasing");
        assert_eq!(counted, i < 4, "only the first 4 contributions count");
        assert_eq!(b.is_complete(), i >= 3);
    }
    assert_eq!(b.contributions(), 4);
    let want = next_epoch_seed(Epoch(3), &s0, &outs, PARAMS).expect("valid");
    assert_eq!(b.finish(), want);
    // Outputs past the cut-off change nothing.
    assert_eq!(next_epoch_seed(Epoch(3), &s0, &outs[..4], PARAMS), Ok(want));
}

#[test]
fn every_input_moves_the_seed() {
    let s0 = EpochSeed::genesis(&Digest::ZERO);
    let outs = outputs(4);
    let base = next_epoch_seed(Epoch(1), &s0, &outs, PARAMS).expect("ok");
    assert_ne!(next_epoch_seed(Epoch(2), &s0, &outs, PARAMS), Ok(base));
    assert_ne!(
        next_epoch_seed(
            Epoch(1),
            &EpochSeed::genesis(&Digest([1; 32])),
            &outs,
            PARAMS
        ),
        Ok(base)
    );
    let mut swapped = outs.clone();
    swapped.swap(0, 1);
    assert_ne!(next_epoch_seed(Epoch(1), &s0, &swapped, PARAMS), Ok(base));
    let mut changed = outs.clone();
    changed[3].0[31] ^= 1;
    assert_ne!(next_epoch_seed(Epoch(1), &s0, &changed, PARAMS), Ok(base));
    // A short epoch is told apart from a full one.
    assert_ne!(next_epoch_seed(Epoch(1), &s0, &outs[..3], PARAMS), Ok(base));
    assert_ne!(
        next_epoch_seed(Epoch(1), &s0, &[], PARAMS),
        next_epoch_seed(Epoch(1), &s0, &outs[..1], PARAMS)
    );
}

#[test]
fn a_short_epoch_fixes_the_seed_from_what_it_committed() {
    let s0 = EpochSeed::genesis(&Digest::ZERO);
    let mut b = SeedBuilder::new(Epoch(0), s0, PARAMS).expect("ok");
    b.push(Height(1), VrfOutput([1; 32])).expect("ok");
    assert!(!b.is_complete());
    assert_eq!(
        b.finish(),
        next_epoch_seed(Epoch(0), &s0, &[VrfOutput([1; 32])], PARAMS).expect("ok")
    );
}

#[test]
fn heights_must_increase() {
    let mut b = SeedBuilder::new(Epoch(0), EpochSeed::default(), PARAMS).expect("ok");
    b.push(Height(5), VrfOutput::default()).expect("first");
    for h in [5, 4] {
        assert_eq!(
            b.push(Height(h), VrfOutput::default()),
            Err(VrfError::SeedHeightOrder {
                last: Height(5),
                got: Height(h)
            })
        );
    }
    assert_eq!(
        b.contributions(),
        1,
        "refused contributions are not counted"
    );
}

#[test]
fn contribution_count_is_bounded() {
    for bad in [0, MAX_SEED_CONTRIBUTIONS + 1] {
        let p = SeedParams {
            contributions_per_epoch: bad,
        };
        let err = Err(VrfError::BadSeedContributions {
            got: bad,
            max: MAX_SEED_CONTRIBUTIONS,
        });
        assert_eq!(p.validate(), err);
        assert_eq!(
            SeedBuilder::new(Epoch(0), EpochSeed::default(), p).map(|_| ()),
            err
        );
        assert_eq!(
            next_epoch_seed(Epoch(0), &EpochSeed::default(), &[], p),
            err.map(|_: ()| EpochSeed::default())
        );
    }
}
