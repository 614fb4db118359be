//! Write-ahead-log recovery and corruption detection, on real files.
//!
//! The stores here are written with a large write buffer and never flushed, so every batch
//! lives only in the write-ahead log (`*.log`) until the files are damaged on purpose.

mod common;

use std::fs;
use std::path::{Path, PathBuf};

use banyan_store::{Column, Durability, Store, StoreError, WriteBatch};
use common::{assert_whole_batch_prefix, copy_dir, files_with_suffix, flip_bytes, open};

const KEYS: u32 = 8;
const BATCHES: u64 = 20;

/// A store holding `BATCHES` numbered batches in its write-ahead log only; returns its newest
/// log file.
fn store_with_batches_in_wal(path: &Path) -> PathBuf {
    {
        let store = open(path);
        for batch in 1..=BATCHES {
            common::write_numbered_batch(&store, batch, KEYS, Durability::Buffered);
        }
    }
    assert!(
        files_with_suffix(path, ".sst").is_empty(),
        "data was flushed to tables"
    );
    files_with_suffix(path, ".log")
        .pop()
        .expect("a write-ahead log")
}

fn truncate_by(file: &Path, bytes: u64) {
    let len = fs::metadata(file).expect("stat").len();
    let f = fs::OpenOptions::new()
        .write(true)
        .open(file)
        .expect("open log");
    f.set_len(len - bytes).expect("truncate");
}

#[test]
fn a_torn_tail_recovers_to_the_last_whole_batch() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = store_with_batches_in_wal(dir.path());
    truncate_by(&log, 10);
    let store = open(dir.path());
    assert_eq!(assert_whole_batch_prefix(&store, KEYS), BATCHES - 1);
    // The recovered store takes new writes and keeps them.
    common::write_numbered_batch(&store, BATCHES, KEYS, Durability::Sync);
    drop(store);
    assert_eq!(assert_whole_batch_prefix(&open(dir.path()), KEYS), BATCHES);
}

#[test]
fn a_log_cut_anywhere_recovers_a_prefix_of_whole_batches() {
    let pristine = tempfile::tempdir().expect("tempdir");
    let log = store_with_batches_in_wal(pristine.path());
    let log_name = log.file_name().expect("name").to_owned();
    let len = fs::metadata(&log).expect("stat").len();
    let mut previous = 0;
    // Cut points spread over the whole log, plus every one of the last 40 bytes.
    let mut cuts: Vec<u64> = (1..20).map(|i| len * i / 20).collect();
    cuts.extend(len.saturating_sub(40)..=len);
    for keep in cuts {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), dir.path());
        truncate_by(&dir.path().join(&log_name), len - keep);
        let store = open(dir.path());
        let last = assert_whole_batch_prefix(&store, KEYS);
        assert!(last >= previous, "keeping more of the log recovered less");
        previous = last;
    }
    assert_eq!(previous, BATCHES, "the whole log recovers every batch");
}

#[test]
fn a_log_corrupted_in_the_middle_fails_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = store_with_batches_in_wal(dir.path());
    let len = fs::metadata(&log).expect("stat").len() as usize;
    flip_bytes(&log, len / 2, 4);
    let err = Store::open(dir.path(), &common::create_opts()).expect_err("corrupt log");
    assert!(err.is_corruption(), "{err:?}");
    assert!(matches!(err, StoreError::CorruptDatabase { .. }));
    let msg = err.to_string();
    assert!(
        msg.contains("is damaged") && msg.contains("restore"),
        "{msg}"
    );
    // Refused every time, not repaired by a failed attempt.
    assert!(Store::open(dir.path(), &common::create_opts()).is_err());
}

/// The price of the mode, as documented: a last record that is complete but wrong (garbage
/// rather than missing bytes) is corruption too, not a torn write.
#[test]
fn garbage_in_the_last_record_fails_to_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let log = store_with_batches_in_wal(dir.path());
    let len = fs::metadata(&log).expect("stat").len() as usize;
    flip_bytes(&log, len - 5, 2);
    let err = Store::open(dir.path(), &common::create_opts()).expect_err("garbage tail");
    assert!(err.is_corruption(), "{err:?}");
}

/// The recovery-mode choice in the crate docs rests on these RocksDB behaviours: on the same
/// mid-log corruption, point-in-time recovery, or our mode without `paranoid_checks`, opens and
/// serves only part of the committed history.
#[test]
fn the_rejected_recovery_settings_would_serve_a_prefix_silently() {
    let pristine = tempfile::tempdir().expect("tempdir");
    let log = store_with_batches_in_wal(pristine.path());
    let len = fs::metadata(&log).expect("stat").len() as usize;
    flip_bytes(&log, len / 2, 4);

    let settings: [(rocksdb::DBRecoveryMode, bool); 2] = [
        (rocksdb::DBRecoveryMode::PointInTime, true),
        (rocksdb::DBRecoveryMode::TolerateCorruptedTailRecords, false),
    ];
    for (mode, paranoid) in settings {
        let dir = tempfile::tempdir().expect("tempdir");
        copy_dir(pristine.path(), dir.path());
        let mut opts = rocksdb::Options::default();
        opts.set_wal_recovery_mode(mode);
        opts.set_paranoid_checks(paranoid);
        let cfs = rocksdb::DB::list_cf(&opts, dir.path()).expect("list");
        let db = rocksdb::DB::open_cf(&opts, dir.path(), cfs).expect("opens despite damage");
        let meta = db.cf_handle(Column::Meta.name()).expect("meta");
        let last = db
            .get_cf(meta, common::LAST_KEY)
            .expect("get")
            .map(|v| banyan_core::codec::decode::<u64>(&v, 8).expect("decode"));
        assert!(
            last.unwrap_or(0) < BATCHES,
            "{mode:?} paranoid={paranoid}: expected a silent prefix, got {last:?}"
        );
    }
}

#[test]
fn a_corrupted_table_file_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let store = open(dir.path());
        let mut b = WriteBatch::new();
        for i in 0u64..2_000 {
            b.put(Column::State, &i.to_be_bytes(), &(i, [i as u8; 32]));
        }
        store.write(b, Durability::Sync).expect("write");
        store.flush().expect("flush");
    }
    // The biggest table file holds the state column; damage its first data block.
    let sst = files_with_suffix(dir.path(), ".sst")
        .into_iter()
        .max_by_key(|p| fs::metadata(p).expect("stat").len())
        .expect("a table file");
    flip_bytes(&sst, 100, 8);

    let result = Store::open(dir.path(), &common::create_opts()).and_then(|store| {
        let mut entries = 0usize;
        for item in store.iter_prefix(Column::State, b"") {
            item?;
            entries += 1;
        }
        for i in 0u64..2_000 {
            store.get::<(u64, [u8; 32])>(Column::State, &i.to_be_bytes())?;
        }
        Ok(entries)
    });
    let err = result.expect_err("damage must not go unnoticed");
    assert!(err.is_corruption(), "{err:?}");
    assert!(err.to_string().contains("resync"), "{err}");
}
