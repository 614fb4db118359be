//! Progress of long client work (`banyan load` reading, funding and signing accounts): a bar
//! on a terminal, else a line at every tenth of the way, so logs show it too.

use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// The progress of one piece of work of known size. Clones count into the same total, so
/// worker threads can share it.
#[derive(Clone)]
pub struct Progress {
    bar: Option<ProgressBar>,
    what: Arc<str>,
    total: u64,
    done: Arc<AtomicU64>,
    /// Next count at which a line is printed (without a bar).
    next_line: Arc<AtomicU64>,
}

impl Progress {
    /// Start showing `what` (e.g. "signing transactions") toward `total` steps, on standard
    /// error.
    pub fn new(what: &str, total: u64) -> Progress {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(total);
            let style = ProgressStyle::with_template(
                "{msg:24} [{bar:32}] {pos}/{len} ({percent}%, {per_sec}, eta {eta})",
            )
            .map(|s| s.progress_chars("=> "))
            .unwrap_or_else(|_| ProgressStyle::default_bar());
            bar.set_style(style);
            bar.set_message(what.to_string());
            bar
        });
        Progress {
            bar,
            what: what.into(),
            total,
            done: Arc::new(AtomicU64::new(0)),
            next_line: Arc::new(AtomicU64::new(Self::step(total))),
        }
    }

    fn step(total: u64) -> u64 {
        total.div_ceil(10).max(1)
    }

    /// `n` more steps done.
    pub fn inc(&self, n: u64) {
        let done = self.done.fetch_add(n, Ordering::Relaxed) + n;
        match &self.bar {
            Some(bar) => bar.inc(n),
            None => {
                // One thread crosses the total, and one wins each tenth.
                let crossed_total = done >= self.total && done - n < self.total;
                let next = self.next_line.load(Ordering::Relaxed);
                let tenth = done >= next
                    && self
                        .next_line
                        .compare_exchange(
                            next,
                            done + Self::step(self.total),
                            Ordering::Relaxed,
                            Ordering::Relaxed,
                        )
                        .is_ok();
                if crossed_total || tenth {
                    eprintln!("{}: {}/{}", self.what, done.min(self.total), self.total);
                }
            }
        }
    }

    /// Steps done so far.
    pub fn done(&self) -> u64 {
        self.done.load(Ordering::Relaxed)
    }

    /// The work is over: the bar is replaced by one line with the count (without a bar, the
    /// line at the total was printed already).
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
            eprintln!("{}: {}/{}", self.what, self.done(), self.total);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_from_many_threads() {
        let p = Progress::new("test", 10_000);
        std::thread::scope(|s| {
            for _ in 0..4 {
                let p = p.clone();
                s.spawn(move || {
                    for _ in 0..2_500 {
                        p.inc(1);
                    }
                });
            }
        });
        assert_eq!(p.done(), 10_000);
        p.finish();
        assert_eq!(p.done(), 10_000);
    }
}
