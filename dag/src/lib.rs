//! Execute a block's transactions in parallel along their conflict DAG, equal to serial.
//!
//! `banyan-dag` takes a block's transactions in block order, each with its declared access set
//! (the [`StateKey`](banyan_core::tx::StateKey)s it may read and write), and produces the
//! receipts and the write set that executing them one by one in block order would produce,
//! bit for bit, using several threads when the block allows it.
//!
//! # The conflict DAG
//!
//! Transactions `i < j` *conflict* when both declare a key and at least one writes it. The
//! DAG has an edge `i -> j` for enough conflicting pairs to imply all of them: per key, walking
//! the block in order and keeping the key's last writer and the readers since that write,
//! - a read by `j` gets an edge from the last writer, and `j` joins the readers;
//! - a write by `j` gets an edge from every reader since the last write (each of which already
//!   follows that write), or from the last writer when there was no such reader; `j` then
//!   becomes the last writer and the reader list is cleared.
//!
//! Every conflicting pair is then ordered by a path (writes to a key form a chain, and each
//! read hangs between the write before it and the write after it), and there are at most
//! twice as many edges as accesses: construction is linear, with no quadratic edge set. The
//! work is split by key hash across the threads, each walking the block in order for its own
//! keys ([`exec`] phase B); a transaction's predecessors are deduplicated per thread.
//!
//! The order of edges is only about *conflicting* declarations: two transactions that both
//! only read a key are not ordered, and a transaction that declares a key it does not touch is
//! ordered anyway (declarations are the contract, not the actual accesses).
//!
//! # Scheduling
//!
//! Every transaction has an atomic counter of unfinished predecessors and its successors in
//! flat CSR arrays. Workers of the executor's pool, each with a crossbeam work-stealing deque,
//! start from the transactions with no predecessor, each from those of its own contiguous part
//! of the block; finishing a transaction decrements its successors' counters (the last
//! predecessor needs no read-modify-write: it sees a count of one), and the first successor
//! that becomes ready runs next on the same worker while its keys are still in that core's
//! cache; the others go on its deque, where idle workers steal them.
//!
//! State lives in *cells*: before execution, every key of the block is resolved once to a slot
//! (the position of its first access in the block) and its value loaded into that slot's
//! cell of atomic words; transactions then read and write cells through a [`TxView`] that
//! knows only their declared keys. No lock is taken: the DAG guarantees that no two
//! transactions touching a cell run at once unless both only read it.
//!
//! # Why the result equals serial execution
//!
//! 1. A transaction reads only keys it declared ([`TxView`] refuses anything else with a
//!    typed error, in release builds too), and [`Vm::execute`] is a pure function of the
//!    transaction and of what it reads.
//! 2. When transaction `j` runs, every key it declares holds what serial execution would show
//!    it: every earlier writer of the key is an ancestor of `j` and has finished, the last of
//!    them wrote last (writers of a key form a chain), and no later writer has started (a later
//!    writer of a key `j` touches descends from `j`).
//! 3. So each transaction computes the same receipt and the same writes as in serial order,
//!    and each key ends with the value of its last writer in block order.
//! 4. Outputs are put in an order fixed by the block alone: receipts in block order, the write
//!    set by first access ([`WriteSet`]). Hash seeds and thread counts only decide which
//!    thread does what.
//!
//! The serial paths are kept: [`execute_reference`] (a plain overlay map, the reference) and
//! [`Executor::execute_serial`] (the single-thread fast path). Property tests hold the DAG
//! path equal to both for 1, 2, 4 and 8 threads.
//!
//! # Adaptivity
//!
//! Threads pay only when the DAG is wide. A greedy schedule of `n` transactions whose critical
//! path is `L` transactions long takes at most `n / T + L` steps on `T` threads (Brent's
//! bound); with [`Schedule::Adaptive`] the DAG path runs only when that bound promises a
//! speedup of at least [`MIN_SPEEDUP_PERCENT`]` / 100` ([`predicts_speedup`]). The test is made
//! twice, each time as cheaply as possible:
//! 1. before any thread starts, on the exact critical path of the first [`SAMPLE_TXS`]
//!    transactions (blocks of fewer than [`MIN_PARALLEL_TXS`] always run serially): a block
//!    whose transactions all conflict goes straight to the serial path and pays only for the
//!    sample;
//! 2. after keys are resolved, on the most writes to a single key in the whole block (writes to
//!    one key form a chain every schedule must follow), which the resolution counts for free.
//!
//! Both are lower bounds of the critical path, so a block made adversarially (a wide prefix,
//! then a long chain through distinct keys) can still be run on the DAG path; it is then as
//! correct, only slower than serial. [`ConflictDag::critical_path`] gives the exact figure.
//!
//! # State: slot cells, not a concurrent map
//!
//! The executor resolves each key of the block to a slot once (one keyed hash and one table
//! lookup per access, split across the threads by key) and then reads and writes fixed cells by
//! index: no hashing, locking or allocation per transaction, and no lock at all since the DAG
//! already orders every conflicting access. A `DashMap` overlay was measured against it
//! (criterion group `dag::state` in `banyan-ledger`'s benches): it costs a hash and a shard lock per access, and is slower
//! than the cells even on one thread, before any contention between threads.
//!
//! # What it does not know
//!
//! Transaction semantics come in through [`Vm`]; the executor itself knows nothing of them.
//! The state it reads and the values it keeps in its cells are the chain's vocabulary
//! (`banyan_core::state`, `banyan_core::value`). The semantics every chain shares live in
//! `banyan-ledger`, whose tests and benches also hold this executor equal to serial over
//! real ledger blocks; this crate's own tests use a synthetic [`Vm`].
//!
//! Architecture invariant: no I/O, no clock, no global state; the only threads are each
//! [`Executor`]'s own pool, and a block's borrowed data never outlives the call that runs it.
//! The crate's one `unsafe` block is a cache prefetch hint (x86_64 `prefetcht0`, which never
//! faults and never changes memory), used to load a transaction as it becomes ready.

pub mod error;
pub mod exec;
mod keyhash;
pub mod output;
pub mod reference;
mod sync;
pub mod vm;

pub use error::{AccessError, ExecError};
pub use exec::{
    predicts_speedup, ConflictDag, Executor, Schedule, MAX_THREADS, MIN_PARALLEL_TXS,
    MIN_SPEEDUP_PERCENT, SAMPLE_TXS,
};
pub use output::{BlockOutput, ExecStats, Mode, WriteSet};
pub use reference::execute_reference;
pub use vm::{TxView, Vm};

/// Most transactions in one block (the header's limit).
pub const MAX_BLOCK_TXS: usize = banyan_core::header::MAX_TXS_PER_BLOCK;
