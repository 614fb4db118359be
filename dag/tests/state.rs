//! Values, their cell encoding, and the state root.

use banyan_core::hash::Digest;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce, Sequence};
use banyan_core::tx::{AssetOrigin, StateKey};
use banyan_dag::value::{
    LightClientState, PendingPackets, SidechainStatus, UnbondingEntry, ValidatorRecord,
    MAX_VALUE_WORDS,
};
use banyan_dag::{State, StateValue, ValueKind};
use proptest::prelude::*;

fn value_strategy() -> impl Strategy<Value = StateValue> {
    prop_oneof![
        any::<u64>().prop_map(|n| StateValue::Nonce(Nonce(n))),
        any::<u128>().prop_map(|a| StateValue::Amount(Amount(a))),
        (any::<u128>(), any::<[u8; 32]>(), any::<[u8; 16]>()).prop_map(|(s, a, b)| {
            let mut key = [0u8; 48];
            key[..32].copy_from_slice(&a);
            key[32..].copy_from_slice(&b);
            StateValue::Validator(ValidatorRecord {
                stake: Amount(s),
                key,
            })
        }),
        any::<u64>().prop_map(StateValue::Counter),
        any::<bool>().prop_map(|r| StateValue::Sidechain(if r {
            SidechainStatus::Retired
        } else {
            SidechainStatus::Active
        })),
        proptest::option::of((any::<u32>(), any::<[u8; 32]>())).prop_map(|o| StateValue::Origin(
            o.map(|(c, a)| AssetOrigin {
                chain: ChainId(c),
                asset: AssetId(a)
            })
        )),
        any::<u64>().prop_map(|s| StateValue::Sequence(Sequence(s))),
        (any::<u64>(), any::<u64>()).prop_map(|(f, c)| StateValue::Pending(PendingPackets {
            first: Sequence(f),
            count: c
        })),
        (any::<u64>(), any::<[u8; 32]>()).prop_map(|(h, d)| StateValue::LightClient(
            LightClientState {
                height: Height(h),
                header: Digest(d)
            }
        )),
        (any::<u128>(), any::<u64>()).prop_map(|(a, e)| StateValue::Unbonding(UnbondingEntry {
            amount: Amount(a),
            release_epoch: Epoch(e)
        })),
        any::<bool>().prop_map(StateValue::Flag),
    ]
}

proptest! {
    #[test]
    fn words_round_trip(v in value_strategy()) {
        let mut words = [0u64; MAX_VALUE_WORDS];
        v.to_words(&mut words);
        let width = v.kind().width();
        prop_assert!(width <= MAX_VALUE_WORDS);
        prop_assert_eq!(StateValue::from_words(v.kind(), &words[..width]), v);
        prop_assert_eq!(v.is_default(), v == v.kind().default_value());
    }

    #[test]
    fn root_does_not_depend_on_insertion_order(entries in proptest::collection::vec((any::<[u8; 32]>(), 1u128..), 0..40)) {
        let mut a = State::new();
        let mut b = State::new();
        for (k, v) in &entries {
            a.set(StateKey::Balance(Address(*k), AssetId::NATIVE), StateValue::Amount(Amount(*v))).expect("kind");
        }
        for (k, v) in entries.iter().rev() {
            b.set(StateKey::Balance(Address(*k), AssetId::NATIVE), StateValue::Amount(Amount(*v))).expect("kind");
        }
        // Later duplicates win in `a`, earlier ones in `b`: compare only when keys are distinct.
        let mut keys: Vec<_> = entries.iter().map(|e| e.0).collect();
        keys.sort();
        keys.dedup();
        if keys.len() == entries.len() {
            prop_assert_eq!(a.root(), b.root());
            prop_assert_eq!(a, b);
        }
    }
}

#[test]
fn defaults_are_absent_and_kinds_are_checked() {
    let key = StateKey::Balance(Address([1; 32]), AssetId::NATIVE);
    let mut s = State::new();
    let empty_root = s.root();
    assert_eq!(s.get(&key), StateValue::Amount(Amount::ZERO));
    s.set(key, StateValue::Amount(Amount(5))).expect("kind");
    assert_eq!(s.len(), 1);
    assert_ne!(s.root(), empty_root);
    s.set(key, StateValue::Amount(Amount::ZERO)).expect("kind");
    assert!(s.is_empty());
    assert_eq!(s.root(), empty_root);
    let err = s
        .set(key, StateValue::Nonce(Nonce(1)))
        .expect_err("wrong kind");
    assert_eq!(err.expected, ValueKind::Amount);
    assert_eq!(err.found, ValueKind::Nonce);
    for k in [
        StateKey::Account(Address([0; 32])),
        StateKey::Validator(Address([0; 32])),
        StateKey::SidechainRegistry,
        StateKey::Sidechain(ChainId(1)),
        StateKey::Escrow(ChainId(1), AssetId::NATIVE),
        StateKey::AssetOrigin(AssetId::NATIVE),
        StateKey::ChannelSend(ChainId(1)),
        StateKey::ChannelReceive(ChainId(1)),
        StateKey::ChannelPending(ChainId(1)),
        StateKey::LightClient(ChainId(1)),
        StateKey::Unbonding(Address([0; 32])),
        StateKey::Jailed(Digest([0; 32])),
        StateKey::Offense(Digest([0; 32])),
    ] {
        let d = StateValue::default_for(&k);
        assert_eq!(d.kind(), ValueKind::of(&k));
        assert!(d.is_default());
    }
    // A recorded origin of the main chain's native coin is not the absent origin.
    let origin = StateValue::Origin(Some(AssetOrigin {
        chain: ChainId::MAIN,
        asset: AssetId::NATIVE,
    }));
    assert!(!origin.is_default());
}

/// One step on a state: set a key (of a small pool, so keys come, change and go; amount 0
/// removes it), or fork (continue on a clone, leaving the original behind).
#[derive(Debug, Clone)]
enum Step {
    Set(u8, u128),
    Root,
    Fork,
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        6 => (any::<u8>(), prop_oneof![Just(0u128), 1u128..4, any::<u128>()])
            .prop_map(|(k, v)| Step::Set(k, v)),
        2 => Just(Step::Root),
        1 => Just(Step::Fork),
    ]
}

fn pool_key(k: u8) -> StateKey {
    let a = Address([k % 48; 32]);
    if k.is_multiple_of(2) {
        StateKey::Balance(a, AssetId::NATIVE)
    } else {
        StateKey::Account(a)
    }
}

proptest! {
    /// The kept tree gives the from-scratch root after any mix of updates, inserts and
    /// removals, and a clone changing it never changes the root of the state it came from.
    #[test]
    fn updated_root_equals_root(start in 0u8..60, steps in proptest::collection::vec(step(), 1..60)) {
        // Account keys hold nonces.
        let value = |k: u8, v: u128| match pool_key(k) {
            StateKey::Account(_) => StateValue::Nonce(Nonce(v as u64)),
            _ => StateValue::Amount(Amount(v)),
        };
        let mut s = State::new();
        for k in 0..start {
            let k = k.wrapping_mul(5);
            s.set(pool_key(k), value(k, u128::from(k) + 1)).expect("kind");
        }
        prop_assert_eq!(s.updated_root(), s.root());
        let mut left_behind: Vec<(State, Digest)> = Vec::new();
        for st in steps {
            match st {
                Step::Set(k, v) => s.set(pool_key(k), value(k, v)).expect("kind"),
                Step::Root => {
                    let r = s.updated_root();
                    prop_assert_eq!(r, s.root());
                }
                Step::Fork => {
                    let r = s.updated_root();
                    left_behind.push((s.clone(), r));
                }
            }
        }
        prop_assert_eq!(s.updated_root(), s.root());
        for (mut old, r) in left_behind {
            prop_assert_eq!(old.root(), r);
            prop_assert_eq!(old.updated_root(), r);
        }
    }
}
