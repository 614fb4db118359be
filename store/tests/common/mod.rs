//! Helpers shared by the store's integration tests.
// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use banyan_store::{Column, Durability, Store, StoreOptions, WriteBatch};

/// Options for a test store that may be created.
pub fn create_opts() -> StoreOptions {
    StoreOptions {
        create_if_missing: true,
        ..StoreOptions::default()
    }
}

/// Open (creating if needed) the store at `path`.
pub fn open(path: &Path) -> Store {
    Store::open(path, &create_opts()).expect("open store")
}

/// Key in `Meta` holding the number of the last batch written by [`write_numbered_batch`].
pub const LAST_KEY: &[u8] = b"test/last-batch";

fn batch_key(batch: u64, i: u32) -> Vec<u8> {
    let mut k = b"batch/".to_vec();
    k.extend_from_slice(&batch.to_be_bytes());
    k.extend_from_slice(&i.to_be_bytes());
    k
}

fn slot_key(i: u32) -> Vec<u8> {
    let mut k = b"slot/".to_vec();
    k.extend_from_slice(&i.to_be_bytes());
    k
}

/// Commit batch number `batch`: `keys` fresh keys in `Blocks` tagged `(batch, i)`, the same
/// `keys` slots in `State` overwritten with `batch`, and `LAST_KEY` set to `batch`.
pub fn write_numbered_batch(store: &Store, batch: u64, keys: u32, durability: Durability) {
    let mut b = WriteBatch::new();
    for i in 0..keys {
        b.put(Column::Blocks, &batch_key(batch, i), &(batch, i));
        b.put(Column::State, &slot_key(i), &batch);
    }
    b.put(Column::Meta, LAST_KEY, &batch);
    store.write(b, durability).expect("write batch");
}

/// Check that the store holds exactly batches `1..=last` written by [`write_numbered_batch`]
/// with `keys` keys each — every one complete, nothing from a later or partial batch — and
/// return `last` (0 when no batch is present).
pub fn assert_whole_batch_prefix(store: &Store, keys: u32) -> u64 {
    let last: u64 = store
        .get(Column::Meta, LAST_KEY)
        .expect("read last batch")
        .unwrap_or(0);
    let mut expected = Vec::new();
    for batch in 1..=last {
        for i in 0..keys {
            expected.push((batch_key(batch, i), (batch, i)));
        }
    }
    let found: Vec<(Vec<u8>, (u64, u32))> = store
        .iter_prefix(Column::Blocks, b"batch/")
        .map(|r| {
            let (k, v) = r.expect("scan batches");
            let v = banyan_core::codec::decode(&v, 64).expect("decode batch entry");
            (k.into_vec(), v)
        })
        .collect();
    assert_eq!(
        found.len(),
        expected.len(),
        "batch entries present do not match last batch {last}"
    );
    assert!(
        found == expected,
        "batch entries differ from batches 1..={last}"
    );
    for i in 0..keys {
        let slot: Option<u64> = store.get(Column::State, &slot_key(i)).expect("read slot");
        let want = if last == 0 { None } else { Some(last) };
        assert_eq!(slot, want, "slot {i} is not from the last whole batch");
    }
    last
}

/// The files in `dir` whose names end with `suffix`, sorted by name (RocksDB numbers files, so
/// the last is the newest).
pub fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list dir")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect();
    out.sort();
    out
}

/// Copy every file of `from` into the (existing) directory `to`.
pub fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).expect("list dir") {
        let entry = entry.expect("dir entry");
        if entry.file_type().expect("file type").is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).expect("copy file");
        }
    }
}

/// Invert `len` bytes of the file at `path` starting at `offset`.
pub fn flip_bytes(path: &Path, offset: usize, len: usize) {
    let mut bytes = fs::read(path).expect("read file");
    assert!(offset + len <= bytes.len(), "flip past the end of {path:?}");
    for b in &mut bytes[offset..offset + len] {
        *b = !*b;
    }
    fs::write(path, bytes).expect("write file");
}
