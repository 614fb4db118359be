//! A set of writes committed together: all of them or none.

use banyan_core::codec::{self, Encode};

use crate::Column;

/// How hard [`Store::write`](crate::Store::write) works to make a batch survive a crash.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Durability {
    /// `fsync` the write-ahead log before returning: the batch survives a power cut.
    Sync,
    /// Hand the write-ahead log record to the operating system before returning, without
    /// `fsync`: the batch survives the process being killed (`kill -9`, a panic), but a power cut
    /// or kernel crash may lose the most recent batches — never part of one.
    Buffered,
}

/// One write in a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Op {
    Put {
        column: Column,
        key: Vec<u8>,
        value: Vec<u8>,
    },
    Delete {
        column: Column,
        key: Vec<u8>,
    },
}

/// Writes to apply atomically: after a crash either every one of them is on disk or none is.
///
/// Build one batch per committed block — the block, its header, the state changes and the new
/// "last committed" marker — and hand it to [`Store::write`](crate::Store::write), which applies
/// it as a single RocksDB write batch. Operations apply in the order they were added, so a later
/// put or delete of the same key wins.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WriteBatch {
    pub(crate) ops: Vec<Op>,
    payload_bytes: usize,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Set `key` in `column` to the canonical encoding of `value`.
    pub fn put<V: Encode>(&mut self, column: Column, key: &[u8], value: &V) {
        self.put_raw(column, key, codec::encode(value));
    }

    /// Set `key` in `column` to `value` as given.
    pub fn put_raw(&mut self, column: Column, key: &[u8], value: impl Into<Vec<u8>>) {
        let value = value.into();
        self.payload_bytes = self
            .payload_bytes
            .saturating_add(key.len())
            .saturating_add(value.len());
        self.ops.push(Op::Put {
            column,
            key: key.to_vec(),
            value,
        });
    }

    /// Remove `key` from `column` (a no-op if it is absent).
    pub fn delete(&mut self, column: Column, key: &[u8]) {
        self.payload_bytes = self.payload_bytes.saturating_add(key.len());
        self.ops.push(Op::Delete {
            column,
            key: key.to_vec(),
        });
    }

    /// Number of operations in the batch.
    pub fn len(&self) -> usize {
        self.ops.len()
    }

    /// Whether the batch has no operations.
    pub fn is_empty(&self) -> bool {
        self.ops.is_empty()
    }

    /// Total bytes of keys and values in the batch, for callers that bound batch size.
    pub fn payload_bytes(&self) -> usize {
        self.payload_bytes
    }
}
