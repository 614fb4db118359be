//! Values, their cell encoding, and the state root.

use banyan_core::hash::Digest;
use banyan_core::ids::{Address, Amount, AssetId, ChainId, Epoch, Height, Nonce, Sequence};
use banyan_core::smt::reference_root;
use banyan_core::state::State;
use banyan_core::state::{entry_hash, path_of, verify_entry};
use banyan_core::tx::{AssetOrigin, StateKey};
use banyan_core::value::{
    LightClientState, PendingPackets, SidechainRecord, SidechainStatus, UnbondingEntry,
    ValidatorRecord, MAX_VALUE_WORDS,
};
use banyan_core::value::{StateValue, ValueKind};
use proptest::prelude::*;
use std::collections::BTreeMap;

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
        proptest::option::of((
            any::<[u8; 32]>(),
            any::<u128>(),
            (1..=u16::MAX, any::<u16>(), any::<u32>(), any::<u32>()),
            0..=u32::MAX
        ))
        .prop_map(|o| StateValue::Sidechain(o.map(
            |(
                spawner,
                deposit,
                (committee_size, block_time_ms, epoch_length, activation_epoch),
                retired,
            )| {
                SidechainRecord {
                    spawner: Address(spawner),
                    deposit: Amount(deposit),
                    committee_size,
                    block_time_ms,
                    epoch_length,
                    activation_epoch,
                    status: if retired == 0 {
                        SidechainStatus::Active
                    } else {
                        SidechainStatus::Retired {
                            from_epoch: retired,
                        }
                    },
                }
            }
        ))),
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
        (any::<u64>(), any::<[u8; 32]>(), any::<u64>(), any::<u64>()).prop_map(|(h, d, e, m)| {
            StateValue::LightClient(LightClientState {
                height: Height(h),
                header: Digest(d),
                epoch: Epoch(e),
                main_epoch: Epoch(m),
            })
        }),
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

/// The root straight from the definition of the state tree, over a model map.
fn model_root(model: &BTreeMap<StateKey, StateValue>) -> Digest {
    let entries: Vec<(Digest, Digest)> = model
        .iter()
        .map(|(k, v)| (path_of(k), entry_hash(k, v)))
        .collect();
    reference_root(&entries)
}

proptest! {
    /// The persistent tree equals the naive definition after any mix of updates, inserts and
    /// removals (one at a time and in batches); a clone changing it never changes the state it
    /// came from; and every key proves its value, present or absent, while a wrong value does
    /// not prove.
    #[test]
    fn persistent_tree_equals_the_reference(start in 0u8..60, steps in proptest::collection::vec(step(), 1..60)) {
        // Account keys hold nonces.
        let value = |k: u8, v: u128| match pool_key(k) {
            StateKey::Account(_) => StateValue::Nonce(Nonce(v as u64)),
            _ => StateValue::Amount(Amount(v)),
        };
        let mut model: BTreeMap<StateKey, StateValue> = BTreeMap::new();
        let put = |model: &mut BTreeMap<StateKey, StateValue>, k: StateKey, v: StateValue| {
            if v.is_default() {
                model.remove(&k);
            } else {
                model.insert(k, v);
            }
        };
        let initial: Vec<_> = (0..start)
            .map(|k| k.wrapping_mul(5))
            .map(|k| (pool_key(k), value(k, u128::from(k) + 1)))
            .collect();
        let mut s = State::from_entries(initial.iter().copied()).expect("kind");
        for (k, v) in &initial {
            put(&mut model, *k, *v);
        }
        prop_assert_eq!(s.root(), model_root(&model));
        let mut left_behind: Vec<(State, Digest)> = Vec::new();
        let mut batch = Vec::new();
        for st in steps {
            match st {
                Step::Set(k, v) => {
                    // Every other write waits for the next root, to be applied as a batch.
                    if v % 2 == 0 {
                        batch.push((pool_key(k), value(k, v)));
                    } else {
                        s.set(pool_key(k), value(k, v)).expect("kind");
                        put(&mut model, pool_key(k), value(k, v));
                    }
                }
                Step::Root => {
                    s.set_many(batch.iter().copied()).expect("kind");
                    for (k, v) in batch.drain(..) {
                        put(&mut model, k, v);
                    }
                    prop_assert_eq!(s.root(), model_root(&model));
                    prop_assert_eq!(s.len(), model.len());
                    let root = s.root();
                    for k in (0..96u8).map(pool_key) {
                        let v = s.get(&k);
                        prop_assert_eq!(v, model.get(&k).copied().unwrap_or_else(|| StateValue::default_for(&k)));
                        let proof = s.prove(&k);
                        prop_assert!(verify_entry(&root, &k, &v, &proof).is_ok());
                        let wrong = match v {
                            StateValue::Nonce(n) => StateValue::Nonce(Nonce(n.0.wrapping_add(1))),
                            StateValue::Amount(a) => StateValue::Amount(Amount(a.0.wrapping_add(1))),
                            other => other,
                        };
                        prop_assert!(verify_entry(&root, &k, &wrong, &proof).is_err());
                    }
                }
                Step::Fork => left_behind.push((s.clone(), s.root())),
            }
        }
        s.set_many(batch.iter().copied()).expect("kind");
        for (k, v) in batch.drain(..) {
            put(&mut model, k, v);
        }
        prop_assert_eq!(s.root(), model_root(&model));
        let entries = s.sorted_entries();
        prop_assert_eq!(entries, model.into_iter().collect::<Vec<_>>());
        for (old, r) in left_behind {
            prop_assert_eq!(old.root(), r);
        }
    }
}
