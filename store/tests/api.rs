//! Reads, writes, prefix scans, snapshots and batch atomicity on a real RocksDB store.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};

use banyan_core::codec;
use banyan_store::{Column, Durability, Store, StoreError, StoreOptions, WriteBatch};
use common::open;

#[test]
fn typed_values_round_trip() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let hash = [7u8; 32];
    let mut b = WriteBatch::new();
    b.put(Column::State, b"n", &42u64);
    b.put(Column::Headers, b"h", &hash);
    b.put(Column::Blocks, b"t", &(9u64, hash, 3u32));
    assert_eq!(b.len(), 3);
    store.write(b, Durability::Sync).expect("write");

    assert_eq!(
        store.get::<u64>(Column::State, b"n").expect("get"),
        Some(42)
    );
    assert_eq!(
        store.get::<[u8; 32]>(Column::Headers, b"h").expect("get"),
        Some(hash)
    );
    assert_eq!(
        store
            .get::<(u64, [u8; 32], u32)>(Column::Blocks, b"t")
            .expect("get"),
        Some((9, hash, 3))
    );
    assert_eq!(
        store.get_raw(Column::State, b"n").expect("get_raw"),
        Some(codec::encode(&42u64))
    );
    // Absent key, and the same key in another column.
    assert_eq!(
        store.get::<u64>(Column::State, b"missing").expect("get"),
        None
    );
    assert_eq!(store.get::<u64>(Column::Outbox, b"n").expect("get"), None);
}

#[test]
fn a_value_that_does_not_decode_is_reported_as_corrupt() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut b = WriteBatch::new();
    b.put_raw(Column::State, &[0xab, 0xcd], vec![1u8, 2, 3]);
    store.write(b, Durability::Buffered).expect("write");

    let err = store
        .get::<u64>(Column::State, &[0xab, 0xcd])
        .expect_err("3 bytes are not a u64");
    assert!(err.is_corruption());
    match &err {
        StoreError::Corrupt {
            column, key_hex, ..
        } => {
            assert_eq!(*column, Column::State);
            assert_eq!(key_hex, "abcd");
        }
        other => panic!("expected Corrupt, got {other:?}"),
    }
    let msg = err.to_string();
    assert!(
        msg.contains("`state`") && msg.contains("abcd") && msg.contains("resync"),
        "{msg}"
    );
    // Trailing bytes are rejected too: a u32 is not a u64 + junk, nor a u64 a u32.
    assert!(store.get::<u32>(Column::State, &[0xab, 0xcd]).is_err());
}

#[test]
fn delete_removes_and_later_ops_in_a_batch_win() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut b = WriteBatch::new();
    b.put(Column::State, b"a", &1u64);
    b.put(Column::State, b"b", &2u64);
    store.write(b, Durability::Sync).expect("write");

    let mut b = WriteBatch::new();
    b.delete(Column::State, b"a");
    b.delete(Column::State, b"never-written");
    // Put then delete: deleted. Delete then put: present.
    b.put(Column::State, b"c", &3u64);
    b.delete(Column::State, b"c");
    b.delete(Column::State, b"b");
    b.put(Column::State, b"b", &20u64);
    store.write(b, Durability::Sync).expect("write");

    assert_eq!(store.get::<u64>(Column::State, b"a").expect("get"), None);
    assert_eq!(
        store.get::<u64>(Column::State, b"b").expect("get"),
        Some(20)
    );
    assert_eq!(store.get::<u64>(Column::State, b"c").expect("get"), None);
}

fn keys_of(iter: banyan_store::PrefixIter<'_>) -> Vec<Vec<u8>> {
    iter.map(|r| r.expect("scan").0.into_vec()).collect()
}

#[test]
fn prefix_scans_are_ordered_and_bounded() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let keys: [&[u8]; 10] = [
        b"ac",
        b"ab\xff",
        b"a",
        b"ab",
        b"ab\x00",
        b"b",
        b"aa\xff\xff",
        &[0xff, 0x00],
        &[0xff],
        &[0xff, 0xff],
    ];
    let mut b = WriteBatch::new();
    for (i, k) in keys.iter().enumerate() {
        b.put(Column::Headers, k, &(i as u64));
    }
    // The same keys in another column must not leak into scans of this one.
    b.put(Column::State, b"ab-other-column", &0u64);
    store.write(b, Durability::Sync).expect("write");

    let mut sorted: Vec<Vec<u8>> = keys.iter().map(|k| k.to_vec()).collect();
    sorted.sort();

    assert_eq!(
        keys_of(store.iter_prefix(Column::Headers, b"ab")),
        vec![b"ab".to_vec(), b"ab\x00".to_vec(), b"ab\xff".to_vec()]
    );
    assert_eq!(
        keys_of(store.iter_prefix(Column::Headers, b"aa\xff")),
        vec![b"aa\xff\xff".to_vec()]
    );
    // Prefixes with no upper bound: empty, and all 0xff.
    assert_eq!(keys_of(store.iter_prefix(Column::Headers, b"")), sorted);
    assert_eq!(
        keys_of(store.iter_prefix(Column::Headers, &[0xff])),
        vec![vec![0xff], vec![0xff, 0x00], vec![0xff, 0xff]]
    );
    assert!(keys_of(store.iter_prefix(Column::Headers, b"abc")).is_empty());
    assert!(keys_of(store.iter_prefix(Column::Outbox, b"")).is_empty());

    // Values come with their keys.
    let (k, v) = store
        .iter_prefix(Column::Headers, b"b")
        .next()
        .expect("one entry")
        .expect("scan");
    assert_eq!(&*k, b"b");
    assert_eq!(codec::decode::<u64>(&v, 8).expect("decode"), 5);
}

#[test]
fn snapshots_do_not_see_later_writes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let mut b = WriteBatch::new();
    b.put(Column::State, b"k/1", &1u64);
    b.put(Column::State, b"k/2", &2u64);
    store.write(b, Durability::Sync).expect("write");

    let snap = store.snapshot();
    let mut b = WriteBatch::new();
    b.put(Column::State, b"k/1", &100u64);
    b.delete(Column::State, b"k/2");
    b.put(Column::State, b"k/3", &3u64);
    store.write(b, Durability::Sync).expect("write");

    assert_eq!(
        snap.get::<u64>(Column::State, b"k/1").expect("get"),
        Some(1)
    );
    assert_eq!(
        snap.get::<u64>(Column::State, b"k/2").expect("get"),
        Some(2)
    );
    assert_eq!(snap.get_raw(Column::State, b"k/3").expect("get"), None);
    assert_eq!(
        keys_of(snap.iter_prefix(Column::State, b"k/")),
        vec![b"k/1".to_vec(), b"k/2".to_vec()]
    );
    // The live store sees the new state.
    assert_eq!(
        store.get::<u64>(Column::State, b"k/1").expect("get"),
        Some(100)
    );
    assert_eq!(
        keys_of(store.iter_prefix(Column::State, b"k/")),
        vec![b"k/1".to_vec(), b"k/3".to_vec()]
    );
    // A snapshot taken now sees it too.
    assert_eq!(
        store
            .snapshot()
            .get::<u64>(Column::State, b"k/3")
            .expect("get"),
        Some(3)
    );
}

#[test]
fn readers_see_a_batch_entirely_or_not_at_all() {
    const KEYS: u32 = 32;
    const BATCHES: u64 = 300;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let done = AtomicBool::new(false);

    std::thread::scope(|s| {
        let reader = s.spawn(|| {
            let mut observed = 0u64;
            let mut reads = 0u64;
            // Read at least a few times after the writer finished, so the last batch is seen.
            while !done.load(Ordering::Acquire) || reads < 3 {
                if done.load(Ordering::Acquire) {
                    reads += 1;
                }
                let snap = store.snapshot();
                let values: Vec<u64> = snap
                    .iter_prefix(Column::State, b"slot/")
                    .map(|r| codec::decode(&r.expect("scan").1, 8).expect("decode"))
                    .collect();
                let last: u64 = snap
                    .get(Column::Meta, common::LAST_KEY)
                    .expect("get")
                    .unwrap_or(0);
                if last == 0 {
                    assert!(
                        values.is_empty(),
                        "slots visible before any batch: {values:?}"
                    );
                } else {
                    assert_eq!(values.len(), KEYS as usize);
                    assert!(
                        values.iter().all(|v| *v == last),
                        "mixed batches: {values:?} at {last}"
                    );
                }
                assert!(last >= observed, "went back in time");
                observed = last;
            }
            observed
        });
        for batch in 1..=BATCHES {
            common::write_numbered_batch(&store, batch, KEYS, Durability::Buffered);
        }
        done.store(true, Ordering::Release);
        assert_eq!(reader.join().expect("reader"), BATCHES);
    });
    assert_eq!(common::assert_whole_batch_prefix(&store, KEYS), BATCHES);
}

#[test]
fn data_survives_a_clean_reopen() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        assert_eq!(store.default_durability(), Durability::Sync);
        for batch in 1..=5 {
            common::write_numbered_batch(&store, batch, 4, Durability::Buffered);
        }
    }
    let opts = StoreOptions {
        sync_writes_default: false,
        ..StoreOptions::default()
    };
    let store = Store::open(dir.path(), &opts).expect("reopen without create");
    assert_eq!(store.default_durability(), Durability::Buffered);
    assert_eq!(store.path(), dir.path());
    assert_eq!(common::assert_whole_batch_prefix(&store, 4), 5);
    store.flush().expect("flush");
    drop(store);
    let store = Store::open(dir.path(), &opts).expect("reopen after flush");
    assert_eq!(common::assert_whole_batch_prefix(&store, 4), 5);
}
