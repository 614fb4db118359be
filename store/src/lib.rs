//! Keep chain state on disk in RocksDB, one atomic batch per committed block.
//!
//! # Model
//!
//! A [`Store`] is one RocksDB database in one data directory, with a fixed, declared set of
//! column families ([`Column`]). A chain commits each block as one [`WriteBatch`] — block,
//! header, state changes and the "last committed" pointer together — through
//! [`Store::write`], which applies it as a single RocksDB write batch. Values are encoded with
//! the canonical codec ([`banyan_core::codec`]); [`Store::get`] decodes them and reports a value
//! that does not decode as [`StoreError::Corrupt`], naming the column and key.
//!
//! ```
//! use banyan_store::{Column, Store, StoreOptions, WriteBatch};
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! let options = StoreOptions { create_if_missing: true, ..StoreOptions::default() };
//! let store = Store::open(dir.path().join("chain"), &options)?;
//!
//! // Commit a block: everything in one batch.
//! let height = 7u64;
//! let mut batch = WriteBatch::new();
//! batch.put(Column::Headers, &height.to_be_bytes(), &[0xabu8; 32]);
//! batch.put(Column::State, b"alice", &100u64);
//! batch.put(Column::Meta, b"last-committed", &height);
//! store.write(batch, store.default_durability())?;
//!
//! assert_eq!(store.get::<u64>(Column::Meta, b"last-committed")?, Some(7));
//! assert_eq!(store.iter_prefix(Column::State, b"al").count(), 1);
//! # Ok(())
//! # }
//! ```
//!
//! # Guarantees
//!
//! - **Atomic batches.** Readers, snapshots and recovery after a crash see a batch entirely or
//!   not at all. After `kill -9` the store reopens at exactly the state after some whole batch.
//! - **Durability.** [`Durability::Sync`] returns after the write-ahead log is `fsync`ed, so the
//!   batch survives a power cut. [`Durability::Buffered`] returns after the log record is handed
//!   to the operating system (`manual_wal_flush` is off), so the batch survives the process being
//!   killed, but a power cut may lose the newest batches — whole batches, never part of one.
//! - **Identity.** A new store gets a format marker ([`FORMAT_MAGIC`] + [`FORMAT_VERSION`]) under
//!   [`FORMAT_KEY`] in [`Column::Meta`]. [`Store::open`] refuses, without modifying it, any path
//!   that is not a Banyan store (a file, a directory of other files, a foreign RocksDB database)
//!   with [`StoreError::NotADataDir`], and a store in another format with
//!   [`StoreError::UnsupportedFormat`].
//! - **Damage is reported, never served.** See the next section.
//!
//! # Crash recovery and corruption
//!
//! The write-ahead log is replayed with `WALRecoveryMode::TolerateCorruptedTailRecords` and
//! `paranoid_checks` on. A crash while a record is being appended leaves the newest log ending
//! in an incomplete record (a torn tail, or zeroes from preallocation); that record is a batch
//! whose `write` never returned, so recovery drops it and the store reopens at the last whole
//! batch. Any other damage to the log — a record whose checksum fails (even the last one), a
//! broken record before the end — makes [`Store::open`] fail with
//! [`StoreError::CorruptDatabase`] instead of serving a state with a hole in it. The
//! alternatives were rejected: `PointInTimeRecovery` (RocksDB's default) stops replay silently
//! at the first damaged record and opens with only the batches before it, losing committed
//! blocks without a word; `AbsoluteConsistency` refuses a torn tail too, so an ordinary crash
//! would need manual repair; `SkipAnyCorruptedRecords` would serve state with holes.
//! `paranoid_checks` is required, not optional: without it RocksDB ignores log corruption
//! during replay whatever the recovery mode. Log recycling stays off, as recycled logs let a
//! stale record pass for the end of the log. The price of this choice: a torn tail whose bytes
//! are garbage rather than missing (possible after a power cut on a disk that reorders sector
//! writes) is treated as corruption, and the node must be restored or resynced rather than guess.
//!
//! Table files (SSTs) carry a checksum per block, verified on every read (`verify_checksums`,
//! set explicitly); with `paranoid_checks`, opening also checks that every table file the
//! manifest lists exists with its recorded size. A damaged table file therefore surfaces as
//! [`StoreError::CorruptDatabase`] from `open` or from the read that touches it, never as wrong
//! data.
//!
//! # Tuning
//!
//! Built for an embedded node that shares its machine: LZ4 compression on every level (the only
//! codec compiled in), a bloom filter per table, a bounded number of open files and background
//! jobs ([`StoreOptions`]), 16 MiB memtables (a quarter of RocksDB's default: shorter skiplist
//! searches for state keys rewritten every block), and at most a few small RocksDB info-log
//! files.

mod batch;
mod column;
mod error;
mod iter;
mod store;

pub use batch::{Durability, WriteBatch};
pub use column::Column;
pub use error::StoreError;
pub use iter::{Entry, PrefixIter, Snapshot};
pub use store::{Store, StoreOptions, FORMAT_KEY, FORMAT_MAGIC, FORMAT_VERSION};
