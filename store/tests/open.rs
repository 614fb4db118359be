//! Opening: creating a store, refusing what is not one, format versions, locks, new columns.

mod common;

use std::fs;
use std::path::Path;

use banyan_store::{
    Column, Store, StoreError, StoreOptions, FORMAT_KEY, FORMAT_MAGIC, FORMAT_VERSION,
};
use common::{create_opts, open};

fn marker(magic: [u8; 8], version: u32) -> Vec<u8> {
    let mut m = magic.to_vec();
    m.extend_from_slice(&version.to_be_bytes());
    m
}

/// Open the RocksDB database at `path` directly, with all its column families.
fn raw_open(path: &Path) -> rocksdb::DB {
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).expect("list cfs");
    rocksdb::DB::open_cf(&rocksdb::Options::default(), path, cfs).expect("raw open")
}

fn assert_not_a_data_dir(err: StoreError, path: &Path) {
    let msg = err.to_string();
    match err {
        StoreError::NotADataDir { path: p, .. } => assert_eq!(p, path),
        other => panic!("expected NotADataDir, got {other:?}"),
    }
    assert!(msg.contains("is not a Banyan data directory"), "{msg}");
    assert!(
        msg.contains("point --data-dir at an empty directory or the right one"),
        "{msg}"
    );
}

#[test]
fn creates_a_missing_directory_with_a_format_marker() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("nested").join("data");
    let store = open(&path);
    assert_eq!(
        store.get_raw(Column::Meta, FORMAT_KEY).expect("marker"),
        Some(marker(FORMAT_MAGIC, FORMAT_VERSION))
    );
    drop(store);
    // And an existing empty directory.
    let empty = dir.path().join("empty");
    fs::create_dir(&empty).expect("mkdir");
    open(&empty);
}

#[test]
fn a_missing_directory_is_not_created_unless_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("absent");
    let err = Store::open(&path, &StoreOptions::default()).expect_err("absent");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert!(err.to_string().contains("banyan init"), "{err}");
    assert!(!path.exists());
    // Nor is an empty directory turned into a store.
    fs::create_dir(&path).expect("mkdir");
    let err = Store::open(&path, &StoreOptions::default()).expect_err("empty");
    assert!(matches!(err, StoreError::NotFound { .. }), "{err:?}");
    assert_eq!(fs::read_dir(&path).expect("list").count(), 0);
}

#[test]
fn a_file_or_a_directory_of_other_files_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("file");
    fs::write(&file, b"hello").expect("write");
    assert_not_a_data_dir(Store::open(&file, &create_opts()).expect_err("file"), &file);

    let other = dir.path().join("other");
    fs::create_dir(&other).expect("mkdir");
    fs::write(other.join("notes.txt"), b"random").expect("write");
    fs::write(other.join("blob.bin"), [0u8, 1, 2, 255]).expect("write");
    let err = Store::open(&other, &create_opts()).expect_err("other files");
    assert!(err.to_string().contains("blob.bin"), "{err}");
    assert_not_a_data_dir(err, &other);
    assert_eq!(
        fs::read_dir(&other).expect("list").count(),
        2,
        "directory was modified"
    );
}

#[test]
fn a_foreign_rocksdb_database_is_refused_untouched() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        let db = rocksdb::DB::open(&opts, path).expect("foreign db");
        db.put(b"someone", b"else's data").expect("put");
    }
    assert_not_a_data_dir(
        Store::open(path, &create_opts()).expect_err("foreign"),
        path,
    );
    let cfs = rocksdb::DB::list_cf(&rocksdb::Options::default(), path).expect("list");
    assert_eq!(
        cfs,
        vec!["default".to_string()],
        "column families were added"
    );
    let db = raw_open(path);
    assert_eq!(
        db.get(b"someone").expect("get"),
        Some(b"else's data".to_vec())
    );
}

#[test]
fn a_rocksdb_database_with_our_column_names_but_no_marker_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let names = Column::ALL.iter().map(|c| c.name());
        let db = rocksdb::DB::open_cf(&opts, path, names).expect("db");
        let state = db.cf_handle("state").expect("cf");
        db.put_cf(state, b"k", b"v").expect("put");
    }
    assert_not_a_data_dir(
        Store::open(path, &create_opts()).expect_err("no marker"),
        path,
    );
}

#[test]
fn an_interrupted_creation_is_finished() {
    // Columns created, process stopped before the marker was written: no data at all.
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    {
        let mut opts = rocksdb::Options::default();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        let names = Column::ALL.iter().map(|c| c.name());
        rocksdb::DB::open_cf(&opts, path, names).expect("db");
    }
    let store = open(path);
    assert!(store
        .get_raw(Column::Meta, FORMAT_KEY)
        .expect("marker")
        .is_some());
}

#[test]
fn other_format_versions_and_magics_are_refused() {
    let cases = [
        (marker(FORMAT_MAGIC, FORMAT_VERSION + 1), "upgrade banyan"),
        (marker(FORMAT_MAGIC, 0), "no migration"),
        (marker(*b"NOTOURS!", FORMAT_VERSION), ""),
        (b"garbage".to_vec(), ""),
    ];
    for (value, advice) in cases {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path();
        drop(open(path));
        {
            let db = raw_open(path);
            let meta = db.cf_handle("meta").expect("meta");
            db.put_cf(meta, FORMAT_KEY, &value).expect("put");
        }
        let err = Store::open(path, &create_opts()).expect_err("bad marker");
        if advice.is_empty() {
            assert_not_a_data_dir(err, path);
        } else {
            let msg = err.to_string();
            assert!(
                matches!(err, StoreError::UnsupportedFormat { .. }),
                "{err:?}"
            );
            assert!(msg.contains(advice), "{msg}");
        }
    }
}

#[test]
fn rocksdb_files_without_current_are_reported_as_damaged() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    drop(open(path));
    fs::remove_file(path.join("CURRENT")).expect("rm CURRENT");
    let err = Store::open(path, &create_opts()).expect_err("no CURRENT");
    assert!(err.is_corruption(), "{err:?}");
    assert!(err.to_string().contains("CURRENT"), "{err}");
}

#[test]
fn a_store_in_use_is_reported_as_locked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = open(dir.path());
    let err = Store::open(dir.path(), &create_opts()).expect_err("second open");
    assert!(matches!(err, StoreError::Locked { .. }), "{err:?}");
    assert!(err.to_string().contains("stop that process"), "{err}");
}

#[test]
fn a_column_missing_from_an_older_store_is_added() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path();
    drop(open(path));
    {
        let mut db = raw_open(path);
        db.drop_cf("outbox").expect("drop cf");
    }
    let store = open(path);
    let mut b = banyan_store::WriteBatch::new();
    b.put(Column::Outbox, b"p", &1u64);
    store
        .write(b, banyan_store::Durability::Sync)
        .expect("write");
    assert_eq!(
        store.get::<u64>(Column::Outbox, b"p").expect("get"),
        Some(1)
    );
}
