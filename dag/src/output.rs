//! What executing a block produces.

use banyan_core::tx::StateKey;
use banyan_core::value::StateValue;

/// The keys a block declares as written, each with its value after the block, in canonical
/// order: by first declared access in the block (transactions in block order, each one's
/// reads then writes in the order its access set lists them). A default value means the key
/// is now absent. The order depends on the block only, never on threads or hashing.
///
/// A key declared as written but left unchanged (say, the recipient of a failed transfer)
/// appears with its unchanged value: applying it is a no-op.
#[derive(Clone, Debug, Default)]
pub struct WriteSet {
    // Consecutive runs of entries (one per executor worker), in canonical order.
    parts: Vec<Vec<(StateKey, StateValue)>>,
}

impl WriteSet {
    pub(crate) fn from_parts(parts: Vec<Vec<(StateKey, StateValue)>>) -> Self {
        WriteSet { parts }
    }

    /// The entries in canonical order.
    pub fn iter(&self) -> impl Iterator<Item = (StateKey, StateValue)> + '_ {
        self.parts.iter().flatten().copied()
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.parts.iter().map(Vec::len).sum()
    }

    /// Whether there is no entry.
    pub fn is_empty(&self) -> bool {
        self.parts.iter().all(Vec::is_empty)
    }

    /// The entries as one vector.
    pub fn to_vec(&self) -> Vec<(StateKey, StateValue)> {
        self.iter().collect()
    }
}

impl PartialEq for WriteSet {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().eq(other.iter())
    }
}
impl Eq for WriteSet {}

/// How a block was run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// In block order on the calling thread.
    Serial,
    /// Along the conflict DAG on several threads.
    Parallel,
}

/// Figures about one execution, for metrics and benchmarks. They describe *how* the block was
/// run and may differ between thread counts; the results never do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ExecStats {
    /// Serial or parallel.
    pub mode: Mode,
    /// Worker threads started (1 when the block was sent to serial execution up front).
    pub threads: usize,
    /// Edges of the conflict DAG (0 when it was not built).
    pub edges: usize,
    /// Most writes to one key: a chain any schedule has to follow.
    pub hottest_key_writes: usize,
    /// `(transactions sampled, their critical path)` when the prefix sample alone sent the
    /// block to serial execution.
    pub sample: Option<(usize, usize)>,
}

/// The result of executing a block.
#[derive(Clone, Debug)]
pub struct BlockOutput<R> {
    /// One receipt per transaction, in block order.
    pub receipts: Vec<R>,
    /// The block's writes.
    pub write_set: WriteSet,
    /// How it was run.
    pub stats: ExecStats,
}
