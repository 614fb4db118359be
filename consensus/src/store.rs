//! Blocks and the highest QC, behind a trait (RocksDB in the node, memory in the simulator).

use banyan_core::certificate::QuorumCertificate;
use banyan_core::hash::Digest;
use banyan_core::header::Block;
use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;

use crate::error::StorageError;

/// Where a replica keeps blocks it has accepted, its highest QC and its last committed block.
///
/// Contract: what was written survives a crash; a block returned by `get(id)` has
/// `header.id() == id`. Losing this store costs liveness (the replica syncs again), never
/// safety: safety lives in [`crate::safety::SafetyStorage`].
pub trait BlockStore {
    /// A block by id (`Ok(None)`: not stored; a read that fails is an error, never a
    /// missing block).
    fn get(&self, id: &Digest) -> Result<Option<Block>, StorageError>;
    /// Whether the block is stored.
    fn contains(&self, id: &Digest) -> Result<bool, StorageError>;
    /// Store a block.
    fn insert(&mut self, block: Block) -> Result<(), StorageError>;
    /// The last committed block (`None` = genesis).
    fn committed(&self) -> Option<Digest>;
    /// Record the last committed block.
    fn set_committed(&mut self, id: Digest) -> Result<(), StorageError>;
    /// The highest QC known.
    fn high_qc(&self) -> Option<QuorumCertificate>;
    /// Record the highest QC.
    fn set_high_qc(&mut self, qc: &QuorumCertificate) -> Result<(), StorageError>;
}

#[derive(Debug, Default)]
struct MemoryInner {
    blocks: HashMap<Digest, Block>,
    committed: Option<Digest>,
    high_qc: Option<QuorumCertificate>,
}

/// In-memory block store; clones share the same contents (a simulated disk).
#[derive(Clone, Debug, Default)]
pub struct MemoryBlockStore(Rc<RefCell<MemoryInner>>);

impl MemoryBlockStore {
    /// Number of blocks held.
    pub fn len(&self) -> usize {
        self.0.borrow().blocks.len()
    }

    /// Height of the last committed block (0 = genesis).
    pub fn committed_height(&self) -> u64 {
        let inner = self.0.borrow();
        inner
            .committed
            .and_then(|id| inner.blocks.get(&id))
            .map(|b| b.header.height.0)
            .unwrap_or(0)
    }

    /// Whether it holds no block.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BlockStore for MemoryBlockStore {
    fn get(&self, id: &Digest) -> Result<Option<Block>, StorageError> {
        Ok(self.0.borrow().blocks.get(id).cloned())
    }

    fn contains(&self, id: &Digest) -> Result<bool, StorageError> {
        Ok(self.0.borrow().blocks.contains_key(id))
    }

    fn insert(&mut self, block: Block) -> Result<(), StorageError> {
        let id = block.header.id();
        self.0.borrow_mut().blocks.insert(id, block);
        Ok(())
    }

    fn committed(&self) -> Option<Digest> {
        self.0.borrow().committed
    }

    fn set_committed(&mut self, id: Digest) -> Result<(), StorageError> {
        self.0.borrow_mut().committed = Some(id);
        Ok(())
    }

    fn high_qc(&self) -> Option<QuorumCertificate> {
        self.0.borrow().high_qc.clone()
    }

    fn set_high_qc(&mut self, qc: &QuorumCertificate) -> Result<(), StorageError> {
        self.0.borrow_mut().high_qc = Some(qc.clone());
        Ok(())
    }
}
