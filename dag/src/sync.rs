//! Small synchronisation pieces for the executor's workers.

use crossbeam_utils::Backoff;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::OnceLock;
use std::thread::Thread;
use std::time::Duration;

/// Snoozes (spins, then yields) before a waiting worker starts to sleep.
const SNOOZES_BEFORE_SLEEP: u32 = 128;
/// How long a waiting worker sleeps between looks once it has snoozed enough.
const SLEEP_BETWEEN_LOOKS: Duration = Duration::from_micros(50);

/// How a worker waits for others: spin, then yield, then sleep in short naps until woken
/// ([`Sleepers::wake_all`]) or the nap ends. On a machine whose cores are shared with other
/// work, a worker the OS has stopped may hold a task the others need; yielding alone can leave
/// the waiter spinning through whole time slices, while a nap hands the core over.
pub(crate) struct Waiter<'a> {
    backoff: Backoff,
    snoozes: u32,
    sleepers: &'a Sleepers,
}

impl<'a> Waiter<'a> {
    pub(crate) fn new(sleepers: &'a Sleepers) -> Self {
        Waiter {
            backoff: Backoff::new(),
            snoozes: 0,
            sleepers,
        }
    }

    /// Wait a little longer.
    pub(crate) fn wait(&mut self) {
        if self.snoozes < SNOOZES_BEFORE_SLEEP {
            self.snoozes += 1;
            self.backoff.snooze();
        } else {
            self.sleepers.asleep.fetch_add(1, Ordering::SeqCst);
            std::thread::park_timeout(SLEEP_BETWEEN_LOOKS);
            self.sleepers.asleep.fetch_sub(1, Ordering::SeqCst);
        }
    }

    /// Work arrived: start over.
    pub(crate) fn reset(&mut self) {
        self.snoozes = 0;
        self.backoff.reset();
    }
}

/// The workers of one run, so that the one that ends a wait can wake those napping in it.
pub(crate) struct Sleepers {
    threads: Vec<OnceLock<Thread>>,
    /// Workers napping now (a hint: a nap ends by itself anyway).
    asleep: AtomicUsize,
}

impl Sleepers {
    pub(crate) fn new(workers: usize) -> Self {
        Sleepers {
            threads: (0..workers).map(|_| OnceLock::new()).collect(),
            asleep: AtomicUsize::new(0),
        }
    }

    /// Worker `w` runs on the calling thread.
    pub(crate) fn register(&self, w: usize) {
        if let Some(slot) = self.threads.get(w) {
            let _ = slot.set(std::thread::current());
        }
    }

    /// Wake every napping worker (each one checks again what it waits for).
    pub(crate) fn wake_all(&self) {
        if self.asleep.load(Ordering::SeqCst) == 0 {
            return;
        }
        for t in self.threads.iter().filter_map(OnceLock::get) {
            t.unpark();
        }
    }
}

/// Raises `abort` if dropped while its thread unwinds, so that the other workers stop waiting
/// for one that will never arrive.
pub(crate) struct AbortOnPanic<'a>(pub(crate) &'a AtomicBool);

impl Drop for AbortOnPanic<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.store(true, Ordering::Release);
        }
    }
}

/// Most bytes [`prefetch`] asks for at once (eight cache lines).
const MAX_PREFETCH_BYTES: usize = 512;

/// Ask the CPU to start loading `items` (their first [`MAX_PREFETCH_BYTES`]) into this core's
/// cache, without waiting for them. A hint only: what the program computes does not change.
#[inline(always)]
pub(crate) fn prefetch<T>(items: &[T]) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let start = items.as_ptr().cast::<i8>();
        let bytes = std::mem::size_of_val(items).min(MAX_PREFETCH_BYTES);
        for offset in (0..bytes).step_by(64) {
            // SAFETY: `prefetch` instructions never fault and never change memory, whatever
            // the address (here always inside `items`); SSE is part of every x86_64 target.
            #[allow(unsafe_code)]
            unsafe {
                _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(offset))
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = items;
}
