//! Opening a store, reading it, and committing batches to it.

use std::fs;
use std::path::{Path, PathBuf};

use banyan_core::codec::{self, Decode};
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DBCompressionType, DBRecoveryMode,
    DBWithThreadMode, Direction, FlushOptions, IteratorMode, Options, ReadOptions, SingleThreaded,
    WriteOptions,
};

use crate::batch::{Durability, Op, WriteBatch};
use crate::iter::{PrefixIter, Snapshot};
use crate::{Column, StoreError};

/// The RocksDB handle type. Named explicitly (not `rocksdb::DB`) so that another crate enabling
/// rocksdb's `multi-threaded-cf` feature cannot change it under us.
pub(crate) type Db = DBWithThreadMode<SingleThreaded>;

/// Key in [`Column::Meta`] holding the format marker. Reserved: chains must not write it.
pub const FORMAT_KEY: &[u8] = b"banyan/format";
/// First bytes of the format marker: says "this is a Banyan store".
pub const FORMAT_MAGIC: [u8; 8] = *b"BANYANDB";
/// The on-disk format this build reads and writes. The marker is [`FORMAT_MAGIC`] followed by
/// this number as 4 big-endian bytes.
pub const FORMAT_VERSION: u32 = 1;

/// Bits per key of the bloom filters on every column (about 1% false positives).
const BLOOM_BITS_PER_KEY: f64 = 10.0;
/// Most RocksDB info-log (`LOG`) files kept, and the size at which one is rolled.
const MAX_INFO_LOG_FILES: usize = 4;
const MAX_INFO_LOG_FILE_BYTES: usize = 16 << 20;
/// Bound on background flush + compaction threads; an embedded node shares its cores.
const MAX_BACKGROUND_JOBS: u8 = 16;
/// Sync SST and WAL data to disk incrementally rather than in large bursts.
const BYTES_PER_SYNC: u64 = 1 << 20;

/// How to open a store.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoreOptions {
    /// Create the directory and an empty store if the path does not exist or is an empty
    /// directory. Off by default, so a mistyped `--data-dir` is an error rather than a new, empty
    /// chain.
    pub create_if_missing: bool,
    /// What [`Store::default_durability`] returns: `true` for [`Durability::Sync`] (the default;
    /// committed blocks survive a power cut), `false` for [`Durability::Buffered`].
    pub sync_writes_default: bool,
    /// Most table files RocksDB keeps open at once (RocksDB raises values below 20 to 20).
    pub max_open_files: u32,
    /// Size of one memtable per column before it is flushed to a table file, in bytes. The
    /// default, 16 MiB, is smaller than RocksDB's 64 MiB on purpose: a chain rewrites the same
    /// state keys block after block, and every write searches a skiplist holding all their
    /// recent versions; with a quarter of them, writing a block of a 4-validator devnet at
    /// 15,000 tx/s took 11.6 ms instead of 16 ms (`banyan_block_persist_seconds`).
    pub write_buffer_bytes: usize,
    /// Background flush and compaction threads (clamped to 1..=16).
    pub background_jobs: u8,
}

impl Default for StoreOptions {
    fn default() -> Self {
        Self {
            create_if_missing: false,
            sync_writes_default: true,
            max_open_files: 512,
            write_buffer_bytes: 16 << 20,
            background_jobs: 2,
        }
    }
}

impl StoreOptions {
    /// RocksDB options shared by the database and every column family.
    fn rocks(&self) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_bloom_filter(BLOOM_BITS_PER_KEY, false);

        let mut o = Options::default();
        o.set_block_based_table_factory(&table);
        o.set_compression_type(DBCompressionType::Lz4);
        o.set_bottommost_compression_type(DBCompressionType::Lz4);
        o.set_write_buffer_size(self.write_buffer_bytes);
        o.set_max_background_jobs(i32::from(
            self.background_jobs.clamp(1, MAX_BACKGROUND_JOBS),
        ));
        o.set_max_open_files(i32::try_from(self.max_open_files).unwrap_or(i32::MAX));
        o.set_keep_log_file_num(MAX_INFO_LOG_FILES);
        o.set_max_log_file_size(MAX_INFO_LOG_FILE_BYTES);
        o.set_bytes_per_sync(BYTES_PER_SYNC);
        o.set_wal_bytes_per_sync(BYTES_PER_SYNC);
        // Recovery and corruption policy; see the crate docs for why each is set.
        o.set_wal_recovery_mode(DBRecoveryMode::TolerateCorruptedTailRecords);
        o.set_paranoid_checks(true);
        o.set_recycle_log_file_num(0);
        o.set_manual_wal_flush(false);
        o
    }
}

/// What sits at a data-directory path before we open it.
enum DirState {
    /// Nothing, or an empty directory: a new store may be created here.
    Fresh,
    /// A directory with a RocksDB `CURRENT` file.
    Rocks,
}

/// A Banyan store: RocksDB with the columns of [`Column`] and a format marker.
///
/// Reads see every batch whose [`write`](Store::write) has returned; a [`Snapshot`] pins the
/// state at one moment. All methods take `&self`; the store can be shared between threads.
pub struct Store {
    db: Db,
    path: PathBuf,
    default_durability: Durability,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("path", &self.path).finish()
    }
}

impl Store {
    /// Open the store at `path`, or create it there if `options.create_if_missing` allows and
    /// the path is absent or an empty directory.
    ///
    /// Opening replays the write-ahead log: a torn last record is dropped, any other damage
    /// fails with [`StoreError::CorruptDatabase`]. A path holding anything but a Banyan store
    /// fails with [`StoreError::NotADataDir`]; it is left unmodified (a foreign RocksDB database
    /// is only ever opened if it has a column named `meta`, to look for the marker).
    pub fn open(path: impl AsRef<Path>, options: &StoreOptions) -> Result<Store, StoreError> {
        let path = path.as_ref();
        let db = match inspect_dir(path)? {
            DirState::Fresh if options.create_if_missing => create(path, options)?,
            DirState::Fresh => {
                return Err(StoreError::NotFound {
                    path: path.to_path_buf(),
                })
            }
            DirState::Rocks => open_existing(path, options)?,
        };
        Ok(Store {
            db,
            path: path.to_path_buf(),
            default_durability: if options.sync_writes_default {
                Durability::Sync
            } else {
                Durability::Buffered
            },
        })
    }

    /// The data directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The durability chosen by [`StoreOptions::sync_writes_default`].
    pub fn default_durability(&self) -> Durability {
        self.default_durability
    }

    /// The bytes stored at `key` in `column`.
    pub fn get_raw(&self, column: Column, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.read_with(column, key, read_options(), |v| Ok(v.to_vec()))
    }

    /// The value stored at `key` in `column`, decoded with the canonical codec. A value that
    /// does not decode as `V` is [`StoreError::Corrupt`].
    pub fn get<V: Decode<()>>(&self, column: Column, key: &[u8]) -> Result<Option<V>, StoreError> {
        self.read_with(column, key, read_options(), |v| {
            decode_value(column, key, v)
        })
    }

    /// Every entry of `column` whose key starts with `prefix`, in key order.
    pub fn iter_prefix(&self, column: Column, prefix: &[u8]) -> PrefixIter<'_> {
        match self.cf(column) {
            Ok(cf) => {
                let (opts, mode) = prefix_scan(prefix);
                let inner = self.db.iterator_cf_opt(cf, opts, mode);
                PrefixIter::new(inner, prefix, &self.path)
            }
            Err(e) => PrefixIter::failed(e, &self.path),
        }
    }

    /// Like [`iter_prefix`](Self::iter_prefix), starting at the first key at or after
    /// `prefix || start` (keys in order, so a big-endian number in `start` seeks to the first
    /// entry numbered at least that).
    pub fn iter_prefix_from(&self, column: Column, prefix: &[u8], start: &[u8]) -> PrefixIter<'_> {
        match self.cf(column) {
            Ok(cf) => {
                let (opts, _) = prefix_scan(prefix);
                let mut from = prefix.to_vec();
                from.extend_from_slice(start);
                let inner = self.db.iterator_cf_opt(
                    cf,
                    opts,
                    IteratorMode::From(&from, Direction::Forward),
                );
                PrefixIter::new(inner, prefix, &self.path)
            }
            Err(e) => PrefixIter::failed(e, &self.path),
        }
    }

    /// A consistent view of the store as it is now, unaffected by later writes.
    pub fn snapshot(&self) -> Snapshot<'_> {
        Snapshot::new(self)
    }

    /// Apply `batch` atomically, as one RocksDB write batch: after a crash, either all of it is
    /// on disk or none of it is. Returns once the batch is visible to reads and as durable as
    /// `durability` says.
    pub fn write(&self, batch: WriteBatch, durability: Durability) -> Result<(), StoreError> {
        let mut rocks_batch = rocksdb::WriteBatch::default();
        for op in batch.ops {
            match op {
                Op::Put { column, key, value } => rocks_batch.put_cf(self.cf(column)?, key, value),
                Op::Delete { column, key } => rocks_batch.delete_cf(self.cf(column)?, key),
            }
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(durability == Durability::Sync);
        opts.disable_wal(false);
        self.db
            .write_opt(rocks_batch, &opts)
            .map_err(|e| StoreError::from_rocks(&self.path, e))
    }

    /// Write every column's memtable to table files and wait for it. Not needed for durability
    /// (the write-ahead log provides that); useful before a backup or to shorten the next
    /// recovery.
    pub fn flush(&self) -> Result<(), StoreError> {
        let cfs = Column::ALL
            .iter()
            .map(|c| self.cf(*c))
            .collect::<Result<Vec<_>, _>>()?;
        let mut opts = FlushOptions::default();
        opts.set_wait(true);
        self.db
            .flush_cfs_opt(&cfs, &opts)
            .map_err(|e| StoreError::from_rocks(&self.path, e))
    }

    pub(crate) fn db(&self) -> &Db {
        &self.db
    }

    /// The handle of `column`. Every column exists once `open` has returned; a missing one is
    /// reported rather than trusted.
    pub(crate) fn cf(&self, column: Column) -> Result<&ColumnFamily, StoreError> {
        self.db
            .cf_handle(column.name())
            .ok_or_else(|| StoreError::Engine {
                path: self.path.clone(),
                detail: format!("column family `{column}` is not open"),
            })
    }

    /// Look `key` up in `column` and hand the pinned bytes to `f`.
    pub(crate) fn read_with<T>(
        &self,
        column: Column,
        key: &[u8],
        opts: ReadOptions,
        f: impl FnOnce(&[u8]) -> Result<T, StoreError>,
    ) -> Result<Option<T>, StoreError> {
        let cf = self.cf(column)?;
        match self.db.get_pinned_cf_opt(cf, key, &opts) {
            Ok(Some(v)) => f(&v).map(Some),
            Ok(None) => Ok(None),
            Err(e) => Err(StoreError::from_rocks(&self.path, e)),
        }
    }
}

/// Read options for every read: block checksums verified (RocksDB's default, stated here so it
/// is never turned off by accident).
pub(crate) fn read_options() -> ReadOptions {
    let mut opts = ReadOptions::default();
    opts.set_verify_checksums(true);
    opts
}

/// Read options and start position for a scan of the keys starting with `prefix`: the scan
/// starts at `prefix` and RocksDB stops it at the first key past the prefix.
pub(crate) fn prefix_scan(prefix: &[u8]) -> (ReadOptions, IteratorMode<'_>) {
    let mut opts = read_options();
    if let Some(bound) = prefix_upper_bound(prefix) {
        opts.set_iterate_upper_bound(bound);
    }
    (opts, IteratorMode::From(prefix, Direction::Forward))
}

/// The smallest key greater than every key starting with `prefix`, or `None` when there is none
/// (the prefix is empty or all `0xff`).
pub(crate) fn prefix_upper_bound(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut bound = prefix.to_vec();
    while let Some(last) = bound.pop() {
        if last < u8::MAX {
            bound.push(last + 1);
            return Some(bound);
        }
    }
    None
}

/// Decode a stored value, reporting failure as corruption at (`column`, `key`).
pub(crate) fn decode_value<V: Decode<()>>(
    column: Column,
    key: &[u8],
    bytes: &[u8],
) -> Result<V, StoreError> {
    codec::decode(bytes, codec::MAX_DECODE_BYTES)
        .map_err(|e| StoreError::corrupt_value(column, key, e))
}

/// Look at `path` without modifying anything.
fn inspect_dir(path: &Path) -> Result<DirState, StoreError> {
    let meta = match fs::metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(DirState::Fresh),
        Err(e) => return Err(StoreError::from_io(path, &e)),
    };
    if !meta.is_dir() {
        return Err(StoreError::NotADataDir {
            path: path.to_path_buf(),
            reason: "it is a file, not a directory".into(),
        });
    }
    let mut names = Vec::new();
    for entry in fs::read_dir(path).map_err(|e| StoreError::from_io(path, &e))? {
        let entry = entry.map_err(|e| StoreError::from_io(path, &e))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    if names.is_empty() {
        return Ok(DirState::Fresh);
    }
    if names.iter().any(|n| n == "CURRENT") {
        return Ok(DirState::Rocks);
    }
    if names.iter().any(|n| looks_like_rocksdb_file(n)) {
        return Err(StoreError::CorruptDatabase {
            path: path.to_path_buf(),
            detail: "it holds RocksDB files but no CURRENT file (if the node was stopped while \
                     first creating this directory, it is safe to delete it and start again)"
                .into(),
        });
    }
    names.sort();
    Err(StoreError::NotADataDir {
        path: path.to_path_buf(),
        reason: format!("it holds other files, such as `{}`", names[0]),
    })
}

/// Whether a file name is one RocksDB writes in its directory.
fn looks_like_rocksdb_file(name: &str) -> bool {
    name == "LOCK"
        || name == "IDENTITY"
        || name.starts_with("LOG")
        || name.starts_with("MANIFEST-")
        || name.starts_with("OPTIONS-")
        || name.ends_with(".sst")
        || name.ends_with(".log")
}

/// Create a new store at a fresh `path`.
fn create(path: &Path, options: &StoreOptions) -> Result<Db, StoreError> {
    fs::create_dir_all(path).map_err(|e| StoreError::from_io(path, &e))?;
    let mut opts = options.rocks();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_error_if_exists(true);
    let cfs = Column::ALL
        .iter()
        .map(|c| ColumnFamilyDescriptor::new(c.name(), options.rocks()));
    let db =
        Db::open_cf_descriptors(&opts, path, cfs).map_err(|e| StoreError::from_rocks(path, e))?;
    write_marker(&db, path)?;
    Ok(db)
}

/// Open the RocksDB database at `path`, check that it is a Banyan store in our format, and add
/// any column this build declares that the store lacks.
fn open_existing(path: &Path, options: &StoreOptions) -> Result<Db, StoreError> {
    let opts = options.rocks();
    let existing = Db::list_cf(&opts, path).map_err(|e| open_error(path, e))?;
    if !existing.iter().any(|n| n == Column::Meta.name()) {
        return Err(StoreError::NotADataDir {
            path: path.to_path_buf(),
            reason: format!(
                "it is a RocksDB database without Banyan's columns (it has: {})",
                existing.join(", ")
            ),
        });
    }
    // Open exactly the column families already there, so nothing is added to a database that
    // turns out not to be ours.
    let cfs = existing
        .iter()
        .map(|name| ColumnFamilyDescriptor::new(name, options.rocks()));
    let mut db = Db::open_cf_descriptors(&opts, path, cfs).map_err(|e| open_error(path, e))?;

    match read_marker(&db, path)? {
        Some(marker) => check_marker(path, &marker)?,
        // A store whose creation was cut short between creating the columns and writing the
        // marker has no data at all; finish creating it. Anything with data is not ours.
        None if is_empty(&db, path, &existing)? => write_marker(&db, path)?,
        None => {
            return Err(StoreError::NotADataDir {
                path: path.to_path_buf(),
                reason: "it is a RocksDB database with data but no Banyan format marker".into(),
            })
        }
    }

    for column in Column::ALL {
        if db.cf_handle(column.name()).is_none() {
            db.create_cf(column.name(), &options.rocks())
                .map_err(|e| StoreError::from_rocks(path, e))?;
        }
    }
    Ok(db)
}

/// Classify an error from opening RocksDB, saying where damage was found.
fn open_error(path: &Path, err: rocksdb::Error) -> StoreError {
    match StoreError::from_rocks(path, err) {
        StoreError::CorruptDatabase { path, detail } => StoreError::CorruptDatabase {
            path,
            detail: format!(
                "{detail} (found while opening: replaying the write-ahead log or checking the \
                 table files)"
            ),
        },
        other => other,
    }
}

fn read_marker(db: &Db, path: &Path) -> Result<Option<Vec<u8>>, StoreError> {
    let Some(meta) = db.cf_handle(Column::Meta.name()) else {
        return Ok(None);
    };
    db.get_cf_opt(meta, FORMAT_KEY, &read_options())
        .map_err(|e| StoreError::from_rocks(path, e))
}

fn write_marker(db: &Db, path: &Path) -> Result<(), StoreError> {
    let meta = db
        .cf_handle(Column::Meta.name())
        .ok_or_else(|| StoreError::Engine {
            path: path.to_path_buf(),
            detail: "column family `meta` is not open".into(),
        })?;
    let mut marker = FORMAT_MAGIC.to_vec();
    marker.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    let mut opts = WriteOptions::default();
    opts.set_sync(true);
    db.put_cf_opt(meta, FORMAT_KEY, marker, &opts)
        .map_err(|e| StoreError::from_rocks(path, e))
}

fn check_marker(path: &Path, marker: &[u8]) -> Result<(), StoreError> {
    let not_ours = || StoreError::NotADataDir {
        path: path.to_path_buf(),
        reason: "its format marker is not Banyan's".into(),
    };
    let (magic, version) = marker
        .split_first_chunk::<8>()
        .ok_or_else(not_ours)
        .and_then(|(magic, rest)| {
            <[u8; 4]>::try_from(rest)
                .map(|v| (magic, u32::from_be_bytes(v)))
                .map_err(|_| not_ours())
        })?;
    if *magic != FORMAT_MAGIC {
        return Err(not_ours());
    }
    if version != FORMAT_VERSION {
        return Err(StoreError::UnsupportedFormat {
            path: path.to_path_buf(),
            found: version,
            supported: FORMAT_VERSION,
            advice: if version > FORMAT_VERSION {
                "upgrade banyan to a release that reads it"
            } else {
                "this build has no migration from that version: run the release that wrote it, \
                 or resync into an empty --data-dir"
            },
        });
    }
    Ok(())
}

/// Whether none of the column families `names` of `db` holds any key.
fn is_empty(db: &Db, path: &Path, names: &[String]) -> Result<bool, StoreError> {
    for name in names {
        let Some(cf) = db.cf_handle(name) else {
            continue;
        };
        if let Some(first) = db
            .iterator_cf_opt(cf, read_options(), IteratorMode::Start)
            .next()
        {
            first.map_err(|e| StoreError::from_rocks(path, e))?;
            return Ok(false);
        }
    }
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upper_bound_is_the_prefix_successor() {
        assert_eq!(prefix_upper_bound(b""), None);
        assert_eq!(prefix_upper_bound(&[0xff, 0xff]), None);
        assert_eq!(prefix_upper_bound(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_upper_bound(&[1, 0xff]), Some(vec![2]));
        assert_eq!(prefix_upper_bound(&[1, 0xfe, 0xff]), Some(vec![1, 0xff]));
    }

    #[test]
    fn marker_checks() {
        let p = Path::new("/x");
        let mut ok = FORMAT_MAGIC.to_vec();
        ok.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
        assert!(check_marker(p, &ok).is_ok());
        assert!(matches!(
            check_marker(p, b"short"),
            Err(StoreError::NotADataDir { .. })
        ));
        let mut long = ok.clone();
        long.push(0);
        assert!(matches!(
            check_marker(p, &long),
            Err(StoreError::NotADataDir { .. })
        ));
        let mut newer = FORMAT_MAGIC.to_vec();
        newer.extend_from_slice(&(FORMAT_VERSION + 1).to_be_bytes());
        assert!(matches!(
            check_marker(p, &newer),
            Err(StoreError::UnsupportedFormat { found, .. }) if found == FORMAT_VERSION + 1
        ));
    }
}
