//! The executor: the serial fast path and the DAG-parallel path, over one set of phases.
//!
//! A block runs in five phases on `T` workers of the executor's thread pool (`T = 1` is the
//! serial fast path: the calling thread alone, no DAG built). Each phase is cut into `T` tasks
//! (one per chunk of transactions or per shard of keys) that workers *claim*; a worker waits
//! only for the tasks of a phase to be done, never for another worker to show up, so a thread
//! the OS runs late costs time only if it has claimed work (the machine may be shared). A worker
//! that waits spins briefly, then naps; whoever ends the wait (the last task of a phase, new
//! work on a deque, the last transaction) wakes the nappers, so a nap costs a wake-up, not its
//! full length. The calling thread is worker 0 (no hand-over to the pool and back). Every
//! buffer is kept in the [`Executor`] and reused from block to block.
//!
//! - **A, access** (split by transactions): worker `t` takes the `t`-th contiguous run of
//!   transactions (its *chunk*) and records their access sets: keys in declaration order
//!   (reads, then writes), a write flag, and the key's hash, computed once; it also lists, per
//!   shard, which of these accesses hash to that shard. Oversized access sets and keys declared
//!   twice are refused here.
//! - **B, resolve** (split by keys): worker `t` walks, in block order, the accesses of every
//!   chunk that hash to its shard `t`. The first access to a key becomes the key's *slot* (its
//!   position `(chunk, index)` in the block, a number that depends on the block only). With
//!   the DAG, it keeps per key the last writer and the readers since that write and records each
//!   transaction's predecessors on its keys (the linear-time construction of the crate docs).
//!   A key met for the first time has its cell loaded from the state there and then, by the
//!   worker of its shard: state lookups are split by key, evenly, whichever chunk first
//!   touches the keys (the first chunk of a block touches most of them).
//! - **C, prepare**: every worker reaches the same decision, serial or parallel, from the shared
//!   figures; then worker `t` copies its chunk's slots from the shards, and for a parallel run
//!   builds the CSR successor lists of its own edges, sums the predecessor counters of its
//!   transactions and queues those with none.
//! - **D, execute**: along the DAG with work-stealing deques (a finished transaction's first
//!   ready successor runs next on the same worker, the others go on its deque), or in block
//!   order by the one worker that claims the serial task. A transaction that becomes ready is
//!   prefetched (its body, keys and slots) as it is released: in DAG order the hardware
//!   prefetchers cannot guess what comes next, and these loads were most of the parallel
//!   path's extra cost per transaction.
//! - **E, collect**: the write set, each worker collecting the written slots of its own chunk,
//!   so the parts come out in canonical order.
//!
//! Cells are `AtomicU64` words accessed with `Relaxed` loads and stores (plain moves on x86 and
//! ARM): the DAG, not a lock, keeps two transactions from touching a cell at once, and the
//! release/acquire on the predecessor counters and the deques carries each write to the
//! transactions that read it. Within a phase no two workers write to the same buffer, except
//! cells (ordered by the DAG) and counters (atomic).

use crate::error::{AccessError, ExecError};
use crate::keyhash::{fold, HKey};
use crate::output::{BlockOutput, ExecStats, Mode, WriteSet};
use crate::reference::check_access_set;
use crate::sync::{prefetch, AbortOnPanic, Sleepers, Waiter};
use crate::vm::{check_kind, TxView, Vm};
use crate::MAX_BLOCK_TXS;
use banyan_core::state::State;
use banyan_core::tx::{AccessSet, StateKey, MAX_ACCESS_KEYS};
use banyan_core::value::{StateValue, ValueKind, MAX_VALUE_WORDS};
use crossbeam_deque::{Steal, Stealer, Worker};
use hashbrown::hash_table::Entry;
use hashbrown::{DefaultHashBuilder, HashTable};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock, RwLock};

/// Most worker threads an executor runs.
pub const MAX_THREADS: usize = 64;
/// Blocks with fewer transactions run serially whatever their DAG.
pub const MIN_PARALLEL_TXS: usize = 64;
/// Transactions of the block prefix whose critical path is measured before anything else.
pub const SAMPLE_TXS: usize = 128;
/// The DAG path runs only when it promises at least this speedup, in percent (see
/// [`predicts_speedup`]).
pub const MIN_SPEEDUP_PERCENT: usize = 125;

/// Whether `txs` transactions whose critical path is `path` transactions long are worth
/// running on `threads` threads: a greedy schedule finishes within `txs / threads + path`
/// steps (Brent's bound), and that must beat `txs` steps by [`MIN_SPEEDUP_PERCENT`].
pub fn predicts_speedup(txs: usize, path: usize, threads: usize) -> bool {
    let steps = (txs / threads.max(1)).saturating_add(path);
    txs.saturating_mul(100) >= steps.saturating_mul(MIN_SPEEDUP_PERCENT)
}

const NONE: u32 = u32::MAX;
/// A slot is `chunk << CHUNK_SHIFT | index of the access in its chunk`.
const CHUNK_SHIFT: u32 = 24;
const LOCAL_MASK: u32 = (1 << CHUNK_SHIFT) - 1;
/// Words per cell: every value fits, and a cell is one 64-byte cache line.
const CELL_WORDS: usize = MAX_VALUE_WORDS;

/// How [`Executor::execute`] chooses between serial and DAG-parallel execution.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Schedule {
    /// Serial when the block is small or its DAG nearly a chain (see the crate docs), else
    /// parallel.
    #[default]
    Adaptive,
    /// Always along the DAG when there is more than one thread (tests, benchmarks).
    AlwaysParallel,
}

/// One worker's share of the block's accesses (phase A), and the cells of the keys first
/// touched there. Kept between blocks so that a block allocates nothing here.
#[derive(Default)]
struct ChunkScratch {
    set: AccessSet,
    /// Start of each transaction's accesses; one more entry than transactions.
    tx_start: Vec<u32>,
    keys: Vec<StateKey>,
    hashes: Vec<u64>,
    writes: Vec<bool>,
    /// For each shard, `(access, transaction in chunk)` of the accesses whose key hashes to it
    /// (only with more than one worker).
    by_shard: Vec<Vec<(u32, u32)>>,
    /// The slot each access resolves to (phase B).
    slots: Vec<AtomicU32>,
    /// `CELL_WORDS` words per access; used at the accesses that are first touches.
    cells: Vec<AtomicU64>,
    error: Option<ExecError>,
}

/// A key of the block as phase B tracks it. The key itself stays in its chunk (at `slot`),
/// keeping entries small enough for the table of a large block to stay in cache.
struct KeyEntry {
    hash: u64,
    slot: u32,
    last_writer: u32,
    /// Head of the list of readers since the last write, in `ShardScratch::readers`.
    readers: u32,
    writes: u32,
}

/// Successor lists of one worker's edges, indexed by predecessor.
#[derive(Default)]
struct Csr {
    offsets: Vec<u32>,
    cursor: Vec<u32>,
    succ: Vec<u32>,
}

impl Csr {
    fn build(&mut self, n: usize, edges: &[(u32, u32)]) {
        self.offsets.clear();
        self.offsets.resize(n + 1, 0);
        for &(p, _) in edges {
            self.offsets[p as usize + 1] += 1;
        }
        for i in 0..n {
            self.offsets[i + 1] += self.offsets[i];
        }
        self.cursor.clear();
        self.cursor.extend_from_slice(&self.offsets[..n]);
        self.succ.clear();
        self.succ.resize(edges.len(), 0);
        for &(p, s) in edges {
            let at = &mut self.cursor[p as usize];
            self.succ[*at as usize] = s;
            *at += 1;
        }
    }

    fn successors(&self, p: usize) -> &[u32] {
        match (self.offsets.get(p), self.offsets.get(p + 1)) {
            (Some(&a), Some(&b)) => self.succ.get(a as usize..b as usize).unwrap_or(&[]),
            _ => &[],
        }
    }
}

/// One worker's share of the keys (phase B) and of the DAG.
/// One shard's keys (phase B) and its part of the DAG.
#[derive(Default)]
struct ShardScratch {
    table: HashTable<KeyEntry>,
    readers: Vec<(u32, u32)>,
    preds: Vec<u32>,
    /// `(predecessor, successor)`, sorted by successor.
    edges: Vec<(u32, u32)>,
    /// Slots of the keys written, sorted.
    written: Vec<u32>,
    /// Most writes to one of this shard's keys.
    hottest: u32,
    /// Slots of this shard's accesses, chunk by chunk, in the order of the chunks' lists.
    resolved: Vec<u32>,
}

/// Successor lists of one shard's edges, and predecessor counts of one chunk (phase C).
#[derive(Default)]
struct CsrScratch {
    csr: Csr,
    counts: Vec<u32>,
}

/// The tasks of one phase (one per chunk or shard), claimed by whichever worker comes first,
/// so that a worker the OS is slow to run holds nobody up unless it has claimed something.
struct Phase {
    tasks: usize,
    next: AtomicUsize,
    done: AtomicUsize,
}

impl Phase {
    fn new(tasks: usize) -> Self {
        Phase {
            tasks,
            next: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
        }
    }

    fn claim(&self) -> Option<usize> {
        let k = self.next.fetch_add(1, Ordering::Relaxed);
        (k < self.tasks).then_some(k)
    }

    /// One task is done; the last one wakes the workers waiting for the phase.
    fn finish(&self, sleepers: &Sleepers) {
        if self.done.fetch_add(1, Ordering::Release) + 1 == self.tasks {
            sleepers.wake_all();
        }
    }

    /// Wait until every task of the phase is done; `false` if the run was aborted.
    fn wait(&self, abort: &AtomicBool, sleepers: &Sleepers) -> bool {
        let mut waiter = Waiter::new(sleepers);
        while self.done.load(Ordering::Acquire) < self.tasks {
            if abort.load(Ordering::Acquire) {
                return false;
            }
            waiter.wait();
        }
        !abort.load(Ordering::Acquire)
    }
}

const ACCESS: usize = 0;
const RESOLVE: usize = 1;
const PREPARE: usize = 2;
const SERIAL: usize = 3;
const COLLECT: usize = 4;

/// What the workers share during one block.
struct Shared<'s, V: Vm> {
    vm: &'s V,
    txs: &'s [V::Tx],
    state: Option<&'s State>,
    hasher: &'s DefaultHashBuilder,
    /// Chunks and shards (and workers started).
    threads: usize,
    build_dag: bool,
    execute: bool,
    schedule: Schedule,
    /// Transaction range of each chunk: `bounds[t] .. bounds[t + 1]`.
    bounds: Vec<usize>,
    chunks: &'s [RwLock<ChunkScratch>],
    shards: &'s [RwLock<ShardScratch>],
    csrs: &'s [RwLock<CsrScratch>],
    /// Each worker's deque, to steal from.
    stealers: Vec<OnceLock<Stealer<u32>>>,
    pending: &'s [AtomicU32],
    phases: [Phase; 5],
    abort: AtomicBool,
    /// Workers napping in a wait, to wake when it ends.
    sleepers: Sleepers,
    /// Most writes to one key of the block (a chain every schedule must follow).
    hottest: AtomicUsize,
    /// Transactions executed, on the DAG path.
    done: AtomicUsize,
    outs: Mutex<Vec<WorkerOut<V::Receipt>>>,
}

/// What a worker hands back.
struct WorkerOut<R> {
    /// Receipts of a serial run, in block order.
    ordered: Vec<R>,
    /// Receipts of a parallel run, with their transaction.
    receipts: Vec<(u32, R)>,
    error: Option<ExecError>,
    /// Write set parts, by chunk.
    parts: Vec<(usize, Vec<(StateKey, StateValue)>)>,
    parallel: bool,
}

impl<R> Default for WorkerOut<R> {
    fn default() -> Self {
        WorkerOut {
            ordered: Vec::new(),
            receipts: Vec::new(),
            error: None,
            parts: Vec::new(),
            parallel: false,
        }
    }
}

impl<R> WorkerOut<R> {
    fn fail(&mut self, e: ExecError) {
        let lower = match (&self.error, e.tx()) {
            (None, _) => true,
            (Some(old), Some(tx)) => old.tx().is_none_or(|o| tx < o),
            (Some(_), None) => false,
        };
        if lower {
            self.error = Some(e);
        }
    }
}

#[inline]
fn shard_of(hash: u64, threads: usize) -> usize {
    // Bits 32.. are free: hashbrown uses the low bits for the bucket and the top 7 as tag.
    (((hash >> 32) * threads as u64) >> 32) as usize
}

#[inline]
fn chunk_of(bounds: &[usize], tx: usize) -> usize {
    bounds.partition_point(|&b| b <= tx).saturating_sub(1)
}

/// The view a transaction executes against: its declared keys, resolved to cells.
struct CellView<'a> {
    keys: &'a [StateKey],
    writes: &'a [bool],
    slots: [u32; MAX_ACCESS_KEYS],
    chunks: &'a [&'a ChunkScratch],
}

impl CellView<'_> {
    #[inline]
    fn cell(&self, i: usize) -> &[AtomicU64] {
        let slot = self.slots[i];
        let chunk = self.chunks[(slot >> CHUNK_SHIFT) as usize];
        let at = (slot & LOCAL_MASK) as usize * CELL_WORDS;
        &chunk.cells[at..at + CELL_WORDS]
    }
}

impl TxView for CellView<'_> {
    #[inline]
    fn read(&self, key: &StateKey) -> Result<StateValue, AccessError> {
        let Some(i) = self.keys.iter().position(|k| k == key) else {
            return Err(AccessError::UndeclaredRead(*key));
        };
        let kind = ValueKind::of(key);
        let cell = self.cell(i);
        let mut words = [0u64; MAX_VALUE_WORDS];
        for (w, c) in words.iter_mut().zip(&cell[..kind.width()]) {
            *w = c.load(Ordering::Relaxed);
        }
        Ok(StateValue::from_words(kind, &words))
    }

    #[inline]
    fn write(&mut self, key: &StateKey, value: StateValue) -> Result<(), AccessError> {
        let Some(i) = self.keys.iter().position(|k| k == key) else {
            return Err(AccessError::UndeclaredWrite(*key));
        };
        if !self.writes[i] {
            return Err(AccessError::UndeclaredWrite(*key));
        }
        let kind = check_kind(key, &value)?;
        let mut words = [0u64; MAX_VALUE_WORDS];
        value.to_words(&mut words);
        for (c, w) in self.cell(i)[..kind.width()].iter().zip(words) {
            c.store(w, Ordering::Relaxed);
        }
        Ok(())
    }
}

/// Phase A: the access sets of `txs` (the first being block index `first`) into `chunk`.
fn access_phase<V: Vm>(
    vm: &V,
    txs: &[V::Tx],
    first: usize,
    hasher: &DefaultHashBuilder,
    shards: usize,
    chunk: &mut ChunkScratch,
) {
    let ChunkScratch {
        set,
        tx_start,
        keys,
        hashes,
        writes,
        by_shard,
        slots,
        cells,
        error,
    } = chunk;
    tx_start.clear();
    keys.clear();
    hashes.clear();
    writes.clear();
    *error = None;
    let sharded = shards > 1;
    if sharded {
        by_shard.resize_with(shards, Vec::new);
        for list in by_shard.iter_mut() {
            list.clear();
        }
    }
    tx_start.push(0);
    for (j, tx) in txs.iter().enumerate() {
        let i = first + j;
        if catch_unwind(AssertUnwindSafe(|| vm.access_into(tx, set))).is_err() {
            *error = Some(ExecError::VmPanicked { tx: i });
            return;
        }
        let count = set.reads.len() + set.writes.len();
        if count > MAX_ACCESS_KEYS {
            *error = check_access_set(i, set).err();
            return;
        }
        let start = keys.len();
        for (k, w) in set
            .reads
            .iter()
            .map(|k| (k, false))
            .chain(set.writes.iter().map(|k| (k, true)))
        {
            let h = hash_key(hasher, k);
            // A key declared twice: equal hashes first, then equal keys (rare).
            if hashes[start..].contains(&h) {
                let dup = hashes[start..]
                    .iter()
                    .zip(&keys[start..])
                    .any(|(o, ok)| *o == h && ok == k);
                if dup {
                    *error = Some(ExecError::DuplicateKey { tx: i, key: *k });
                    return;
                }
            }
            if sharded {
                if let Some(list) = by_shard.get_mut(shard_of(h, shards)) {
                    list.push((keys.len() as u32, j as u32));
                }
            }
            keys.push(*k);
            hashes.push(h);
            writes.push(w);
        }
        tx_start.push(keys.len() as u32);
    }
    let n = keys.len();
    if slots.len() < n {
        slots.resize_with(n, || AtomicU32::new(NONE));
    }
    if cells.len() < n * CELL_WORDS {
        cells.resize_with(n * CELL_WORDS, || AtomicU64::new(0));
    }
}

/// Load `key`'s value (`value`, or its default when absent) into the cell of access `local`.
#[inline]
fn init_cell(chunk: &ChunkScratch, local: usize, key: &StateKey, value: Option<&StateValue>) {
    let kind = ValueKind::of(key);
    let mut words = [0u64; MAX_VALUE_WORDS];
    if let Some(v) = value {
        v.to_words(&mut words);
    }
    let at = local * CELL_WORDS;
    for (c, w) in chunk.cells[at..at + kind.width()].iter().zip(words) {
        c.store(w, Ordering::Relaxed);
    }
}

/// Per-shard state of phase B.
struct Resolver<'a> {
    table: &'a mut HashTable<KeyEntry>,
    readers: &'a mut Vec<(u32, u32)>,
    preds: &'a mut Vec<u32>,
    edges: &'a mut Vec<(u32, u32)>,
    written: &'a mut Vec<u32>,
    /// With several workers, slots go here (in visiting order) rather than into the chunks,
    /// whose owners copy them over: no two workers write one cache line.
    resolved: Option<&'a mut Vec<u32>>,
    /// The state cells are loaded from, as each key is first met.
    state: Option<&'a State>,
    build_dag: bool,
    hottest: u32,
}

impl Resolver<'_> {
    /// Access `l` of chunk `c`, by transaction `tx`.
    #[inline]
    fn access(&mut self, chunks: &[&ChunkScratch], c: usize, l: usize, tx: u32) {
        let ch = chunks[c];
        let hash = ch.hashes[l];
        let key = &ch.keys[l];
        let write = ch.writes[l];
        let same = |e: &KeyEntry| {
            e.hash == hash
                && chunks
                    .get((e.slot >> CHUNK_SHIFT) as usize)
                    .and_then(|k| k.keys.get((e.slot & LOCAL_MASK) as usize))
                    == Some(key)
        };
        let entry = match self.table.entry(hash, same, |e| e.hash) {
            Entry::Occupied(o) => o.into_mut(),
            Entry::Vacant(v) => {
                // The key's first access: its cell is here, loaded now by the worker that owns
                // the key's shard (a cell is one cache line, so no other worker writes it).
                if let Some(state) = self.state {
                    init_cell(ch, l, key, state.lookup(key));
                }
                v.insert(KeyEntry {
                    hash,
                    slot: ((c as u32) << CHUNK_SHIFT) | l as u32,
                    last_writer: NONE,
                    readers: NONE,
                    writes: 0,
                })
                .into_mut()
            }
        };
        match &mut self.resolved {
            Some(out) => out.push(entry.slot),
            None => ch.slots[l].store(entry.slot, Ordering::Relaxed),
        }
        if write {
            if entry.writes == 0 {
                self.written.push(entry.slot);
            }
            entry.writes = entry.writes.saturating_add(1);
            self.hottest = self.hottest.max(entry.writes);
        }
        if !self.build_dag {
            return;
        }
        let last = entry.last_writer;
        if write {
            // After the readers since the last write (each of which follows that write), or
            // after the write itself when there is no other reader.
            let mut after_readers = false;
            let mut r = entry.readers;
            while let Some(&(reader, next)) = self.readers.get(r as usize) {
                if reader != tx {
                    self.preds.push(reader);
                    after_readers = true;
                }
                r = next;
            }
            if !after_readers && last != NONE && last != tx {
                self.preds.push(last);
            }
            entry.readers = NONE;
            entry.last_writer = tx;
        } else {
            if last != NONE && last != tx {
                self.preds.push(last);
            }
            if self
                .readers
                .get(entry.readers as usize)
                .is_none_or(|&(r, _)| r != tx)
            {
                self.readers.push((tx, entry.readers));
                entry.readers = (self.readers.len() - 1) as u32;
            }
        }
    }

    /// All of `tx`'s accesses on this shard are done: record its predecessors.
    #[inline]
    fn end_tx(&mut self, tx: u32) {
        match self.preds.len() {
            0 => {}
            1 => self.edges.push((self.preds[0], tx)),
            _ => {
                self.preds.sort_unstable();
                self.preds.dedup();
                self.edges.extend(self.preds.iter().map(|&p| (p, tx)));
            }
        }
        self.preds.clear();
    }
}

/// Phase B for shard `t`: resolve this shard's keys to slots and (when `build_dag`) record
/// each transaction's predecessors on these keys. Returns the most writes to one key.
fn resolve_phase<V: Vm>(
    t: usize,
    sh: &Shared<'_, V>,
    chunks: &[&ChunkScratch],
    shard: &mut ShardScratch,
) -> u32 {
    let ShardScratch {
        table,
        readers,
        preds,
        edges,
        written,
        resolved,
        ..
    } = shard;
    table.clear();
    readers.clear();
    edges.clear();
    written.clear();
    preds.clear();
    resolved.clear();
    let mut r = Resolver {
        table,
        readers,
        preds,
        edges,
        written,
        resolved: (sh.threads > 1).then_some(resolved),
        state: sh.state,
        build_dag: sh.build_dag,
        hottest: 0,
    };
    for (c, ch) in chunks.iter().enumerate() {
        let first_tx = sh.bounds[c];
        if sh.threads == 1 {
            for (j, range) in ch.tx_start.windows(2).enumerate() {
                let tx = (first_tx + j) as u32;
                for l in range[0] as usize..range[1] as usize {
                    r.access(chunks, c, l, tx);
                }
                r.end_tx(tx);
            }
        } else if let Some(list) = ch.by_shard.get(t) {
            // Phase A listed this shard's accesses of the chunk, grouped by transaction.
            let mut current = NONE;
            for &(l, j) in list {
                let tx = (first_tx as u32).saturating_add(j);
                if tx != current {
                    if current != NONE {
                        r.end_tx(current);
                    }
                    current = tx;
                }
                r.access(chunks, c, l as usize, tx);
            }
            if current != NONE {
                r.end_tx(current);
            }
        }
    }
    // Keys first written after being first read arrive out of order; nearly sorted anyway.
    r.written.sort_unstable();
    r.hottest
}

/// The longest path of the DAG given by the workers' edge lists (each sorted by successor).
fn critical_path(n: usize, lists: &[&[(u32, u32)]], depth: &mut Vec<u32>) -> usize {
    depth.clear();
    depth.resize(n, 1);
    let mut pos = [0usize; MAX_THREADS];
    let mut longest = usize::from(n > 0);
    for s in 0..n {
        let mut d = 1u32;
        for (list, at) in lists.iter().zip(pos.iter_mut()) {
            while let Some(&(p, succ)) = list.get(*at) {
                if succ as usize != s {
                    break;
                }
                d = d.max(depth[p as usize].saturating_add(1));
                *at += 1;
            }
        }
        depth[s] = d;
        longest = longest.max(d as usize);
    }
    longest
}

/// The chunk holding transaction `i`'s accesses, and their range in it.
#[inline]
fn accesses_of<'c, V: Vm>(
    sh: &Shared<'_, V>,
    chunks: &[&'c ChunkScratch],
    i: usize,
) -> (&'c ChunkScratch, usize, usize) {
    let c = chunk_of(&sh.bounds, i);
    let ch = chunks[c];
    let j = i - sh.bounds[c];
    (ch, ch.tx_start[j] as usize, ch.tx_start[j + 1] as usize)
}

/// Execute transaction `i` against the cells.
#[inline]
fn run_tx<V: Vm>(
    sh: &Shared<'_, V>,
    chunks: &[&ChunkScratch],
    i: usize,
) -> Result<V::Receipt, ExecError> {
    let (ch, a, b) = accesses_of(sh, chunks, i);
    let mut slots = [0u32; MAX_ACCESS_KEYS];
    for (s, l) in slots.iter_mut().zip(&ch.slots[a..b]) {
        *s = l.load(Ordering::Relaxed);
    }
    let mut view = CellView {
        keys: &ch.keys[a..b],
        writes: &ch.writes[a..b],
        slots,
        chunks,
    };
    match catch_unwind(AssertUnwindSafe(|| sh.vm.execute(&sh.txs[i], &mut view))) {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(source)) => Err(ExecError::Access { tx: i, source }),
        Err(_) => Err(ExecError::VmPanicked { tx: i }),
    }
}

/// Start loading what running transaction `i` reads first (the transaction, its keys and
/// their slots) while the worker finishes its current step: a transaction that becomes ready
/// was usually last touched long ago or by another core, and in DAG order the hardware
/// prefetchers cannot guess it.
#[inline(always)]
fn warm<V: Vm>(sh: &Shared<'_, V>, chunks: &[&ChunkScratch], i: usize) {
    prefetch(sh.txs.get(i..=i).unwrap_or(&[]));
    let (ch, a, b) = accesses_of(sh, chunks, i);
    prefetch(ch.keys.get(a..b).unwrap_or(&[]));
    prefetch(ch.slots.get(a..b).unwrap_or(&[]));
}

/// Phase D on the DAG: run ready transactions, own deque first (newest first, which follows
/// a dependency chain while its keys are hot in this core's cache), then steal.
fn run_dag<V: Vm>(
    t: usize,
    sh: &Shared<'_, V>,
    chunks: &[&ChunkScratch],
    csrs: &[&Csr],
    local: &Worker<u32>,
    out: &mut WorkerOut<V::Receipt>,
) {
    let n = sh.txs.len();
    let mut next: Option<u32> = None;
    let mut executed = 0usize;
    let mut waiter = Waiter::new(&sh.sleepers);
    loop {
        let task = next.take().or_else(|| local.pop()).or_else(|| {
            let mut retry = true;
            while retry {
                retry = false;
                for v in (1..sh.threads).map(|k| (t + k) % sh.threads) {
                    let Some(stealer) = sh.stealers[v].get() else {
                        continue;
                    };
                    match stealer.steal_batch_and_pop(local) {
                        Steal::Success(i) => return Some(i),
                        Steal::Retry => retry = true,
                        Steal::Empty => {}
                    }
                }
            }
            None
        });
        let Some(i) = task else {
            if executed > 0 {
                if sh.done.fetch_add(executed, Ordering::AcqRel) + executed >= n {
                    sh.sleepers.wake_all();
                }
                executed = 0;
            }
            if sh.done.load(Ordering::Acquire) >= n || sh.abort.load(Ordering::Acquire) {
                return;
            }
            waiter.wait();
            continue;
        };
        waiter.reset();
        let i = i as usize;
        match run_tx(sh, chunks, i) {
            Ok(r) => out.receipts.push((i as u32, r)),
            Err(e) => out.fail(e),
        }
        executed += 1;
        for csr in csrs {
            for &s in csr.successors(i) {
                // The last predecessor to finish sees 1 and needs no read-modify-write: no one
                // else will touch the counter again.
                let counter = &sh.pending[s as usize];
                if counter.load(Ordering::Acquire) == 1
                    || counter.fetch_sub(1, Ordering::AcqRel) == 1
                {
                    warm(sh, chunks, s as usize);
                    match next {
                        None => next = Some(s),
                        Some(_) => {
                            local.push(s);
                            sh.sleepers.wake_all();
                        }
                    }
                }
            }
        }
    }
}

/// Phase E for chunk `t`: the written keys first touched in this chunk, with their values.
fn collect_phase(
    t: usize,
    shards: &[&ShardScratch],
    chunk: &ChunkScratch,
) -> Vec<(StateKey, StateValue)> {
    let lo = (t as u32) << CHUNK_SHIFT;
    let hi = lo | LOCAL_MASK;
    let mut lists: Vec<&[u32]> = shards
        .iter()
        .map(|s| {
            let w = &s.written;
            let a = w.partition_point(|&e| e < lo);
            let b = w.partition_point(|&e| e <= hi);
            &w[a..b]
        })
        .collect();
    let total = lists.iter().map(|l| l.len()).sum();
    let mut part = Vec::with_capacity(total);
    loop {
        let mut best: Option<(usize, u32)> = None;
        for (li, l) in lists.iter().enumerate() {
            if let Some(&slot) = l.first() {
                if best.is_none_or(|(_, s)| slot < s) {
                    best = Some((li, slot));
                }
            }
        }
        let Some((li, slot)) = best else { break };
        lists[li] = &lists[li][1..];
        let local = (slot & LOCAL_MASK) as usize;
        let Some(key) = chunk.keys.get(local) else {
            break;
        };
        let kind = ValueKind::of(key);
        let at = local * CELL_WORDS;
        let mut words = [0u64; MAX_VALUE_WORDS];
        for (w, c) in words.iter_mut().zip(&chunk.cells[at..at + kind.width()]) {
            *w = c.load(Ordering::Relaxed);
        }
        part.push((*key, StateValue::from_words(kind, &words)));
    }
    part
}

/// One worker, through all phases; its output goes to `sh.outs`.
fn worker<V: Vm>(w: usize, sh: &Shared<'_, V>) {
    let _guard = AbortOnPanic(&sh.abort);
    sh.sleepers.register(w);
    let mut out = WorkerOut::default();
    work(w, sh, &mut out);
    if let Ok(mut outs) = sh.outs.lock() {
        outs.push(out);
    }
}

fn abort_with<R>(sh_abort: &AtomicBool, out: &mut WorkerOut<R>, why: &'static str) {
    out.fail(ExecError::Invariant(why));
    sh_abort.store(true, Ordering::Release);
}

fn work<V: Vm>(w: usize, sh: &Shared<'_, V>, out: &mut WorkerOut<V::Receipt>) {
    let n = sh.txs.len();
    const POISONED: &str = "a scratch lock was poisoned";

    // A: access sets, chunk by chunk.
    while let Some(k) = sh.phases[ACCESS].claim() {
        let (lo, hi) = (sh.bounds[k], sh.bounds[k + 1]);
        let Ok(mut chunk) = sh.chunks[k].write() else {
            return abort_with(&sh.abort, out, POISONED);
        };
        access_phase(
            sh.vm,
            &sh.txs[lo..hi],
            lo,
            sh.hasher,
            sh.threads,
            &mut chunk,
        );
        if chunk.error.is_some() {
            sh.abort.store(true, Ordering::Release);
        }
        for p in &sh.pending[lo..hi] {
            p.store(0, Ordering::Relaxed);
        }
        drop(chunk);
        sh.phases[ACCESS].finish(&sh.sleepers);
    }
    if !sh.phases[ACCESS].wait(&sh.abort, &sh.sleepers) {
        return;
    }
    let Ok(chunk_guards) = sh
        .chunks
        .iter()
        .map(|c| c.read())
        .collect::<Result<Vec<_>, _>>()
    else {
        return abort_with(&sh.abort, out, POISONED);
    };
    let chunks: Vec<&ChunkScratch> = chunk_guards.iter().map(|g| &**g).collect();

    // B: keys, shard by shard.
    while let Some(k) = sh.phases[RESOLVE].claim() {
        let Ok(mut shard) = sh.shards[k].write() else {
            return abort_with(&sh.abort, out, POISONED);
        };
        let hottest = resolve_phase(k, sh, &chunks, &mut shard);
        shard.hottest = hottest;
        sh.hottest.fetch_max(hottest as usize, Ordering::Relaxed);
        drop(shard);
        sh.phases[RESOLVE].finish(&sh.sleepers);
    }
    if !sh.phases[RESOLVE].wait(&sh.abort, &sh.sleepers) {
        return;
    }
    let Ok(shard_guards) = sh
        .shards
        .iter()
        .map(|c| c.read())
        .collect::<Result<Vec<_>, _>>()
    else {
        return abort_with(&sh.abort, out, POISONED);
    };
    let shards: Vec<&ShardScratch> = shard_guards.iter().map(|g| &**g).collect();

    // C: decide (every worker reaches the same answer from the same shared figures), then
    // prepare each chunk: its slots and, for the DAG, successor lists, predecessor
    // counters and roots.
    let parallel = sh.build_dag
        && sh.threads > 1
        && match sh.schedule {
            Schedule::AlwaysParallel => true,
            Schedule::Adaptive => {
                predicts_speedup(n, sh.hottest.load(Ordering::Relaxed), sh.threads)
            }
        };
    out.parallel = parallel;
    let local = Worker::new_lifo();
    if let Some(s) = sh.stealers.get(w) {
        let _ = s.set(local.stealer());
    }
    while let Some(k) = sh.phases[PREPARE].claim() {
        let chunk = chunks[k];
        let (lo, hi) = (sh.bounds[k], sh.bounds[k + 1]);
        if sh.threads > 1 {
            // This chunk's slots, from the shards that resolved them.
            for (u, list) in chunk.by_shard.iter().enumerate() {
                let Some(shard) = shards.get(u) else { continue };
                let offset: usize = chunks[..k]
                    .iter()
                    .map(|c| c.by_shard.get(u).map_or(0, Vec::len))
                    .sum();
                let from = shard.resolved.get(offset..).unwrap_or(&[]);
                for (&(l, _), &slot) in list.iter().zip(from) {
                    chunk.slots[l as usize].store(slot, Ordering::Relaxed);
                }
            }
        }
        if parallel || (sh.build_dag && !sh.execute) {
            let Ok(mut c) = sh.csrs[k].write() else {
                return abort_with(&sh.abort, out, POISONED);
            };
            let CsrScratch { csr, counts } = &mut *c;
            csr.build(n, &shards[k].edges);
            counts.clear();
            counts.resize(hi - lo, 0);
            for shard in &shards {
                let e = &shard.edges;
                let a = e.partition_point(|x| (x.1 as usize) < lo);
                let b = e.partition_point(|x| (x.1 as usize) < hi);
                for &(_, s) in &e[a..b] {
                    counts[s as usize - lo] += 1;
                }
            }
            for (i, (p, &c)) in sh.pending[lo..hi]
                .iter()
                .zip(counts.iter())
                .enumerate()
                .rev()
            {
                p.store(c, Ordering::Relaxed);
                if c == 0 && parallel {
                    local.push((lo + i) as u32);
                }
            }
        }
        sh.phases[PREPARE].finish(&sh.sleepers);
    }
    if !sh.phases[PREPARE].wait(&sh.abort, &sh.sleepers) || !sh.execute {
        return;
    }

    // D: execute.
    if parallel {
        let Ok(csr_guards) = sh
            .csrs
            .iter()
            .map(|c| c.read())
            .collect::<Result<Vec<_>, _>>()
        else {
            return abort_with(&sh.abort, out, POISONED);
        };
        let csrs: Vec<&Csr> = csr_guards.iter().map(|g| &g.csr).collect();
        run_dag(w, sh, &chunks, &csrs, &local, out);
    } else {
        if sh.phases[SERIAL].claim().is_some() {
            out.ordered.reserve(n);
            for i in 0..n {
                match run_tx(sh, &chunks, i) {
                    Ok(r) => out.ordered.push(r),
                    Err(e) => {
                        // Serial execution stops at the first broken transaction.
                        out.fail(e);
                        break;
                    }
                }
            }
            sh.phases[SERIAL].finish(&sh.sleepers);
        }
        if !sh.phases[SERIAL].wait(&sh.abort, &sh.sleepers) {
            return;
        }
    }

    // E: the write set, chunk by chunk.
    while let Some(k) = sh.phases[COLLECT].claim() {
        out.parts.push((k, collect_phase(k, &shards, chunks[k])));
        sh.phases[COLLECT].finish(&sh.sleepers);
    }
}

/// Executes blocks, serially or along their conflict DAG, with buffers reused across blocks.
///
/// Every method leaves the [`State`] it is given untouched and returns the block's receipts
/// and write set; [`State::apply`] then commits them.
pub struct Executor {
    threads: usize,
    schedule: Schedule,
    /// The workers of the DAG path (none for one thread, or if the OS refused threads).
    pool: Option<rayon::ThreadPool>,
    chunks: Vec<RwLock<ChunkScratch>>,
    shards: Vec<RwLock<ShardScratch>>,
    csrs: Vec<RwLock<CsrScratch>>,
    pending: Vec<AtomicU32>,
    sample_set: AccessSet,
    sample_depth: hashbrown::HashMap<HKey, (u32, u32)>,
    /// The keyed hasher of the per-block key tables (seeded per executor, so crafted keys
    /// cannot flood one bucket).
    hasher: DefaultHashBuilder,
}

/// The hash of `key` under `hasher`: the unkeyed fold of the key through the keyed hasher.
#[inline]
fn hash_key(hasher: &DefaultHashBuilder, key: &StateKey) -> u64 {
    use std::hash::BuildHasher;
    hasher.hash_one(fold(key))
}

impl std::fmt::Debug for Executor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Executor")
            .field("threads", &self.threads)
            .field("schedule", &self.schedule)
            .finish_non_exhaustive()
    }
}

/// Which phases a run goes through.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Run {
    /// One thread, no DAG.
    Serial,
    /// The DAG, then execution as the schedule decides.
    Dag { execute: bool },
}

/// The raw result of a run, before receipts are put in order.
struct RunOutput<R> {
    outs: Vec<WorkerOut<R>>,
    edges: usize,
    hottest: usize,
    threads: usize,
}

impl Executor {
    /// An executor running blocks on `threads` threads (clamped to `1..=MAX_THREADS`), with
    /// the [`Schedule::Adaptive`] schedule. With more than one thread it keeps a pool of
    /// `threads - 1` worker threads for its lifetime (the calling thread is the first worker,
    /// and runs the serial path alone); if the OS refuses to start them, every phase runs on
    /// the calling thread instead, with the same result.
    pub fn new(threads: usize) -> Self {
        let threads = threads.clamp(1, MAX_THREADS);
        let pool = (threads > 1)
            .then(|| {
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads - 1)
                    .thread_name(|i| format!("banyan-dag-{i}"))
                    .build()
                    .ok()
            })
            .flatten();
        Executor {
            threads,
            schedule: Schedule::Adaptive,
            pool,
            chunks: (0..threads).map(|_| RwLock::default()).collect(),
            shards: (0..threads).map(|_| RwLock::default()).collect(),
            csrs: (0..threads).map(|_| RwLock::default()).collect(),
            pending: Vec::new(),
            sample_set: AccessSet::default(),
            sample_depth: hashbrown::HashMap::new(),
            hasher: DefaultHashBuilder::default(),
        }
    }

    /// The same executor with another schedule.
    pub fn with_schedule(mut self, schedule: Schedule) -> Self {
        self.schedule = schedule;
        self
    }

    /// Threads it runs blocks on.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Its schedule.
    pub fn schedule(&self) -> Schedule {
        self.schedule
    }

    /// Execute `txs` serially in block order on the calling thread (the fast path: keys
    /// resolved once per block to cells, no DAG).
    pub fn execute_serial<V: Vm>(
        &mut self,
        vm: &V,
        state: &State,
        txs: &[V::Tx],
    ) -> Result<BlockOutput<V::Receipt>, ExecError> {
        let raw = self.run(vm, Some(state), txs, 1, Run::Serial)?;
        finish(raw, txs.len(), None)
    }

    /// Execute `txs` as the schedule decides: along the conflict DAG on this executor's
    /// threads, or serially. The result is the same either way, bit for bit.
    pub fn execute<V: Vm>(
        &mut self,
        vm: &V,
        state: &State,
        txs: &[V::Tx],
    ) -> Result<BlockOutput<V::Receipt>, ExecError> {
        let n = txs.len();
        if self.threads == 1 {
            return self.execute_serial(vm, state, txs);
        }
        if self.schedule == Schedule::Adaptive {
            if n < MIN_PARALLEL_TXS {
                return self.execute_serial(vm, state, txs);
            }
            let sample = self.sample(vm, txs);
            if !predicts_speedup(sample.0, sample.1, self.threads) {
                let raw = self.run(vm, Some(state), txs, 1, Run::Serial)?;
                return finish(raw, n, Some(sample));
            }
        }
        let threads = self.threads;
        let raw = self.run(vm, Some(state), txs, threads, Run::Dag { execute: true })?;
        finish(raw, n, None)
    }

    /// Build the conflict DAG of `access_sets` on this executor's threads (phases A to C,
    /// without state), reusing its buffers.
    pub fn conflict_dag(&mut self, access_sets: &[AccessSet]) -> Result<ConflictDag, ExecError> {
        let threads = self.threads;
        let raw = self.run(
            &AccessOnly,
            None,
            access_sets,
            threads,
            Run::Dag { execute: false },
        )?;
        let n = access_sets.len();
        let csrs: Vec<(Vec<u32>, Vec<u32>)> = self.csrs[..threads]
            .iter_mut()
            .filter_map(|c| c.get_mut().ok())
            .map(|c| (c.csr.offsets.clone(), c.csr.succ.clone()))
            .collect();
        let predecessors = self.pending[..n]
            .iter()
            .map(|p| p.load(Ordering::Relaxed))
            .collect();
        let lists: Vec<&[(u32, u32)]> = self.shards[..threads]
            .iter_mut()
            .filter_map(|s| s.get_mut().ok())
            .map(|s| &s.edges[..])
            .collect();
        let mut depth = Vec::new();
        let critical_path = critical_path(n, &lists, &mut depth);
        drop(raw);
        Ok(ConflictDag {
            n,
            csrs,
            predecessors,
            critical_path,
        })
    }

    /// The critical path of the first [`SAMPLE_TXS`] transactions: `(sampled, longest)`.
    fn sample<V: Vm>(&mut self, vm: &V, txs: &[V::Tx]) -> (usize, usize) {
        let map = &mut self.sample_depth;
        let set = &mut self.sample_set;
        map.clear();
        let sampled = txs.len().min(SAMPLE_TXS);
        let mut longest = 0u32;
        for tx in &txs[..sampled] {
            if catch_unwind(AssertUnwindSafe(|| vm.access_into(tx, set))).is_err() {
                // Let the full run report it.
                return (sampled, 0);
            }
            let mut d = 1u32;
            for k in &set.reads {
                if let Some(&(w, _)) = map.get(&HKey(*k)) {
                    d = d.max(w + 1);
                }
            }
            for k in &set.writes {
                if let Some(&(w, r)) = map.get(&HKey(*k)) {
                    d = d.max(w.max(r) + 1);
                }
            }
            for k in &set.reads {
                let e = map.entry(HKey(*k)).or_insert((0, 0));
                e.1 = e.1.max(d);
            }
            for k in &set.writes {
                map.insert(HKey(*k), (d, 0));
            }
            longest = longest.max(d);
        }
        (sampled, longest as usize)
    }

    fn run<V: Vm>(
        &mut self,
        vm: &V,
        state: Option<&State>,
        txs: &[V::Tx],
        threads: usize,
        run: Run,
    ) -> Result<RunOutput<V::Receipt>, ExecError> {
        let n = txs.len();
        if n > MAX_BLOCK_TXS {
            return Err(ExecError::TooManyTransactions {
                count: n,
                limit: MAX_BLOCK_TXS,
            });
        }
        let threads = threads.clamp(1, self.threads);
        if self.pending.len() < n {
            self.pending.resize_with(n, || AtomicU32::new(0));
        }
        let hasher = &self.hasher;
        let (build_dag, execute) = match run {
            Run::Serial => (false, true),
            Run::Dag { execute } => (true, execute),
        };
        let sh = Shared {
            vm,
            txs,
            state,
            hasher,
            threads,
            build_dag,
            execute,
            schedule: self.schedule,
            bounds: (0..=threads).map(|t| n * t / threads).collect(),
            chunks: &self.chunks[..threads],
            shards: &self.shards[..threads],
            csrs: &self.csrs[..threads],
            stealers: (0..threads).map(|_| OnceLock::new()).collect(),
            pending: &self.pending[..n],
            phases: [
                Phase::new(threads),
                Phase::new(threads),
                Phase::new(threads),
                Phase::new(1),
                Phase::new(threads),
            ],
            abort: AtomicBool::new(false),
            sleepers: Sleepers::new(threads),
            hottest: AtomicUsize::new(0),
            done: AtomicUsize::new(0),
            outs: Mutex::new(Vec::with_capacity(threads)),
        };
        let worker_lost = match (&self.pool, threads) {
            (Some(pool), 2..) => {
                let shared = &sh;
                let ran = catch_unwind(AssertUnwindSafe(|| {
                    pool.in_place_scope(|scope| {
                        for w in 1..threads {
                            scope.spawn(move |_| worker(w, shared));
                        }
                        worker(0, shared);
                    })
                }));
                ran.is_err()
            }
            // One thread, or no pool: the calling thread claims every task of every phase.
            _ => catch_unwind(AssertUnwindSafe(|| worker(0, &sh))).is_err(),
        };
        let aborted = sh.abort.load(Ordering::Acquire);
        let hottest = sh.hottest.load(Ordering::Relaxed);
        let mut outs = sh.outs.into_inner().unwrap_or_default();
        // Errors, lowest transaction first: access sets, then execution.
        if let Some(e) = self.chunks[..threads]
            .iter_mut()
            .filter_map(|c| c.get_mut().ok())
            .find_map(|c| c.error.take())
        {
            return Err(e);
        }
        if worker_lost {
            return Err(ExecError::Invariant("an executor worker panicked"));
        }
        let mut first: Option<ExecError> = None;
        for o in &mut outs {
            if let Some(e) = o.error.take() {
                let lower = match (&first, e.tx()) {
                    (None, _) => true,
                    (Some(f), Some(tx)) => f.tx().is_none_or(|ft| tx < ft),
                    (Some(_), None) => false,
                };
                if lower {
                    first = Some(e);
                }
            }
        }
        if let Some(e) = first {
            return Err(e);
        }
        if aborted {
            return Err(ExecError::Invariant("execution aborted without an error"));
        }
        let edges = self.shards[..threads]
            .iter_mut()
            .filter_map(|s| s.get_mut().ok())
            .map(|s| s.edges.len())
            .sum();
        Ok(RunOutput {
            outs,
            edges,
            hottest,
            threads,
        })
    }
}

/// Put receipts in block order and assemble the write set. `sample` is the prefix sample that
/// sent the block to serial execution, if it did.
fn finish<R>(
    raw: RunOutput<R>,
    n: usize,
    sample: Option<(usize, usize)>,
) -> Result<BlockOutput<R>, ExecError> {
    let RunOutput {
        outs,
        edges,
        hottest,
        threads,
    } = raw;
    let parallel = outs.iter().any(|o| o.parallel);
    let mut parts: Vec<(usize, Vec<(StateKey, StateValue)>)> = Vec::with_capacity(threads);
    let mut lists = Vec::with_capacity(outs.len());
    let mut ordered = Vec::new();
    for o in outs {
        parts.extend(o.parts);
        lists.push(o.receipts);
        if !o.ordered.is_empty() {
            ordered = o.ordered;
        }
    }
    parts.sort_unstable_by_key(|p| p.0);
    if parts.len() != threads {
        return Err(ExecError::Invariant("a write set part is missing"));
    }
    let parts = parts.into_iter().map(|(_, p)| p).collect();
    let receipts = if !parallel {
        // Serial: one worker ran everything in order.
        if ordered.len() != n {
            return Err(ExecError::Invariant("serial run missed a transaction"));
        }
        ordered
    } else {
        let mut slots: Vec<Option<R>> = (0..n).map(|_| None).collect();
        for (i, r) in lists.into_iter().flatten() {
            if let Some(s) = slots.get_mut(i as usize) {
                *s = Some(r);
            }
        }
        slots
            .into_iter()
            .collect::<Option<Vec<R>>>()
            .ok_or(ExecError::Invariant("a transaction was not executed"))?
    };
    Ok(BlockOutput {
        receipts,
        write_set: WriteSet::from_parts(parts),
        stats: ExecStats {
            mode: if parallel {
                Mode::Parallel
            } else {
                Mode::Serial
            },
            threads,
            edges,
            hottest_key_writes: hottest,
            sample,
        },
    })
}

/// Semantics that only declare access sets (the transactions *are* their access sets); used to
/// build a [`ConflictDag`] alone.
struct AccessOnly;

impl Vm for AccessOnly {
    type Tx = AccessSet;
    type Receipt = ();

    fn access_set(&self, tx: &AccessSet) -> AccessSet {
        tx.clone()
    }

    fn access_into(&self, tx: &AccessSet, out: &mut AccessSet) {
        out.reads.clear();
        out.reads.extend_from_slice(&tx.reads);
        out.writes.clear();
        out.writes.extend_from_slice(&tx.writes);
    }

    fn execute<W: TxView>(&self, _: &AccessSet, _: &mut W) -> Result<(), AccessError> {
        Ok(())
    }
}

/// The conflict DAG of a block: an edge from an earlier to a later transaction when both
/// declare a key and at least one writes it, kept only as far as needed to imply every such
/// ordering (per key: each write after the previous write and the reads since; each read after
/// the previous write).
#[derive(Clone, Debug)]
pub struct ConflictDag {
    n: usize,
    csrs: Vec<(Vec<u32>, Vec<u32>)>,
    predecessors: Vec<u32>,
    critical_path: usize,
}

impl ConflictDag {
    /// Build the DAG of `access_sets` (in block order) on `threads` threads.
    pub fn build(access_sets: &[AccessSet], threads: usize) -> Result<Self, ExecError> {
        Executor::new(threads).conflict_dag(access_sets)
    }

    /// Number of transactions.
    pub fn len(&self) -> usize {
        self.n
    }

    /// Whether there is no transaction.
    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    /// The transactions that must wait for `tx`. A successor may be listed more than once (once
    /// per worker that found the conflict); [`predecessor_count`](Self::predecessor_count)
    /// counts edges the same way.
    pub fn successors(&self, tx: usize) -> impl Iterator<Item = usize> + '_ {
        self.csrs.iter().flat_map(move |(offsets, succ)| {
            let range = match (offsets.get(tx), offsets.get(tx + 1)) {
                (Some(&a), Some(&b)) => a as usize..b as usize,
                _ => 0..0,
            };
            succ.get(range).unwrap_or(&[]).iter().map(|&s| s as usize)
        })
    }

    /// Number of edges into `tx`.
    pub fn predecessor_count(&self, tx: usize) -> usize {
        self.predecessors.get(tx).map_or(0, |&p| p as usize)
    }

    /// Number of edges.
    pub fn edge_count(&self) -> usize {
        self.csrs.iter().map(|(_, s)| s.len()).sum()
    }

    /// Transactions on the longest chain of dependencies (0 for an empty block).
    pub fn critical_path(&self) -> usize {
        self.critical_path
    }
}
