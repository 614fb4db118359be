//! Prefix scans and snapshots.

use std::path::Path;

use banyan_core::codec::Decode;
use rocksdb::DBIteratorWithThreadMode;

use crate::store::{decode_value, prefix_scan, read_options, Db};
use crate::{Column, Store, StoreError};

/// A key and its value, as stored.
pub type Entry = (Box<[u8]>, Box<[u8]>);

/// The entries of one column whose keys start with a prefix, in key order.
///
/// Yields `Err` at most once — for a read that failed (for example a table block whose
/// checksum does not match) — and then ends.
pub struct PrefixIter<'a> {
    inner: Option<DBIteratorWithThreadMode<'a, Db>>,
    error: Option<StoreError>,
    prefix: Vec<u8>,
    path: &'a Path,
}

impl<'a> PrefixIter<'a> {
    pub(crate) fn new(
        inner: DBIteratorWithThreadMode<'a, Db>,
        prefix: &[u8],
        path: &'a Path,
    ) -> Self {
        Self {
            inner: Some(inner),
            error: None,
            prefix: prefix.to_vec(),
            path,
        }
    }

    pub(crate) fn failed(error: StoreError, path: &'a Path) -> Self {
        Self {
            inner: None,
            error: Some(error),
            prefix: Vec::new(),
            path,
        }
    }
}

impl Iterator for PrefixIter<'_> {
    type Item = Result<Entry, StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Some(e) = self.error.take() {
            return Some(Err(e));
        }
        let inner = self.inner.as_mut()?;
        let item = match inner.next() {
            // The upper bound set by `prefix_scan` already ends the scan at the last key with
            // the prefix (and a prefix without a bound — empty or all 0xff — has no keys past
            // it); checking again costs little and keeps the contract local.
            Some(Ok((key, value))) if key.starts_with(&self.prefix) => Some(Ok((key, value))),
            Some(Ok(_)) | None => None,
            Some(Err(e)) => Some(Err(StoreError::from_rocks(self.path, e))),
        };
        if !matches!(item, Some(Ok(_))) {
            self.inner = None;
        }
        item
    }
}

impl std::iter::FusedIterator for PrefixIter<'_> {}

/// A consistent, read-only view of a [`Store`] at the moment it was taken: writes committed
/// afterwards are invisible to it. Hold it briefly — it keeps RocksDB from discarding the
/// versions it sees.
pub struct Snapshot<'a> {
    store: &'a Store,
    inner: rocksdb::SnapshotWithThreadMode<'a, Db>,
}

impl<'a> Snapshot<'a> {
    pub(crate) fn new(store: &'a Store) -> Self {
        Self {
            store,
            inner: store.db().snapshot(),
        }
    }

    /// The bytes stored at `key` in `column` when the snapshot was taken.
    pub fn get_raw(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let mut opts = read_options();
        opts.set_snapshot(&self.inner);
        self.store.read_with(column, key, opts, |v| Ok(v.to_vec()))
    }

    /// The value stored at `key` in `column` when the snapshot was taken, decoded with the
    /// canonical codec.
    pub fn get<V: Decode<()>>(&self, column: Column, key: &[u8]) -> Result<Option<V>, StoreError> {
        let mut opts = read_options();
        opts.set_snapshot(&self.inner);
        self.store
            .read_with(column, key, opts, |v| decode_value(column, key, v))
    }

    /// Every entry of `column` whose key starts with `prefix` when the snapshot was taken, in
    /// key order.
    pub fn iter_prefix(&self, column: Column, prefix: &[u8]) -> PrefixIter<'_> {
        let path = self.store.path();
        match self.store.cf(column) {
            Ok(cf) => {
                let (opts, mode) = prefix_scan(prefix);
                // `iterator_cf_opt` sets this snapshot on the read options and ties the
                // iterator's lifetime to `&self`, so it cannot outlive the snapshot.
                PrefixIter::new(self.inner.iterator_cf_opt(cf, opts, mode), prefix, path)
            }
            Err(e) => PrefixIter::failed(e, path),
        }
    }
}

impl std::fmt::Debug for Snapshot<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Snapshot")
            .field("path", &self.store.path())
            .finish()
    }
}

impl std::fmt::Debug for PrefixIter<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PrefixIter")
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}
