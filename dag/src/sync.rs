//! Small synchronisation pieces for the executor's workers.

use crossbeam_utils::Backoff;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// Snoozes (spins, then yields) before a waiting worker starts to sleep.
const SNOOZES_BEFORE_SLEEP: u32 = 128;
/// How long a waiting worker sleeps between looks once it has snoozed enough.
const SLEEP_BETWEEN_LOOKS: Duration = Duration::from_micros(50);

/// How a worker waits for others: spin, then yield, then sleep in short naps. On a machine
/// whose cores are shared with other work, a worker the OS has stopped may hold a task the
/// others need; yielding alone can leave the waiter spinning through whole time slices, while
/// a nap hands the core over.
pub(crate) struct Waiter {
    backoff: Backoff,
    snoozes: u32,
}

impl Waiter {
    pub(crate) fn new() -> Self {
        Waiter {
            backoff: Backoff::new(),
            snoozes: 0,
        }
    }

    /// Wait a little longer.
    pub(crate) fn wait(&mut self) {
        if self.snoozes < SNOOZES_BEFORE_SLEEP {
            self.snoozes += 1;
            self.backoff.snooze();
        } else {
            std::thread::park_timeout(SLEEP_BETWEEN_LOOKS);
        }
    }

    /// Work arrived: start over.
    pub(crate) fn reset(&mut self) {
        self.snoozes = 0;
        self.backoff.reset();
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
